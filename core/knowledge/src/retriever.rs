//! The built-in retriever: an in-memory tantivy index over passages, with the units' sentence
//! embeddings when a model is in use (retrieval by meaning, fused with the keyword score);
//! unit-level reranking by query-term coverage and similarity, the calibrated decision to
//! decline, and the composition of a short answer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use closer_embed::{Model, QueryBatcher};

use closer_model::{Audience, Citation, KnowledgeAnswer, KnowledgeDocument, Lang};
use serde::Deserialize;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, STORED,
};
use tantivy::tokenizer::{TextAnalyzer, WhitespaceTokenizer};
use tantivy::{doc, Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use crate::chunk::chunk_document;
use crate::text::{
    analyze_question, cyrillic_to_latin, edit_distance_within, latin_to_cyrillic,
    looks_like_russian_verb, normalize, stem, stems, words, AnalyzedQuestion,
};
use crate::KnowledgeError;

/// A list item shorter than this, next to a unit already in the answer, does not count
/// against the answer's unit limit.
const SHORT_LIST_ITEM_CHARS: usize = 80;

/// The hard limit on an answer's length, whatever the configuration says: longer is a document,
/// not a messenger answer.
pub const HARD_MAX_ANSWER_CHARS: usize = 400;

/// `[knowledge.retriever]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrieverSettings {
    /// The longest answer, in characters (at most 400).
    pub max_answer_chars: usize,
    /// The share of the question's weighted content words the best sentence (with its headings)
    /// must cover; below it the assistant declines. 0.0–1.0.
    pub min_coverage: f32,
    /// The largest weighted share of question words the KB never mentions that still gets an
    /// answer; above it the question is about something the KB does not cover. 0.0–1.0.
    pub max_unknown_share: f32,
    /// The weight of a question word the KB never mentions, against ln(1 + passages / frequency)
    /// of known words (about 1 for common, 4–5 for rare words).
    pub unknown_word_weight: f32,
    /// When the best sentence is shorter than this, the sentence after it is shown too.
    pub context_after_chars: usize,
    /// How many passages tantivy hands to the sentence-level reranking.
    pub candidate_passages: usize,
    /// How many sentences, list items or table rows an answer may combine.
    pub max_answer_units: usize,
    /// A further sentence joins the answer when its score is at least this share of the best one.
    pub secondary_score_ratio: f32,
    /// A further unit joins the answer only when it covers at least this weighted share of the
    /// question that the units already chosen leave uncovered. 0.0–1.0.
    pub min_added_coverage: f32,
    /// How much a unit's own score counts against the coverage it adds when composing.
    pub coverage_score_weight: f32,
    /// How much each feature of a candidate unit counts in its score.
    pub ranking: RankingWeights,
    /// How many of the units closest by meaning join the lexical candidates.
    pub dense_candidates: usize,
    /// With embeddings: the least probability that the best unit answers the question (by the
    /// calibrated model of the retrieval signals) for it to be shown. 0.0–1.0.
    pub min_answer_probability: f32,
    /// With embeddings: up to this length, room left in the answer goes to the next best
    /// units even when they add nothing the question asked (a near-miss best unit often has
    /// the answer right behind it); beyond it only units that add what was asked join.
    pub fill_up_to_chars: usize,
    /// The best unit is shown with the rest of its block (paragraph, list, FAQ answer) up to
    /// this many characters; a longer block is cut to the units nearest the best one.
    pub block_chars: usize,
    /// The objection-handling guide: the public documents whose title or tags hold one of
    /// these word beginnings (lower case). An objection is answered from them first.
    pub guide_markers: Vec<String>,
}

/// `[knowledge.retriever.ranking]`: the weight of each feature of a candidate unit (a sentence,
/// a list item, a table row) in its score; the best scored unit leads the answer. The defaults
/// were fitted on the training sets (`docs/retrieval.md` tells which and how to refit); the
/// weight of the question's coverage is 1 and the others count against it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankingWeights {
    /// The weighted share of the question's words the unit covers (with its headings).
    pub coverage: f32,
    /// Its passage's keyword (BM25) score against the best passage's.
    pub keywords: f32,
    /// The weighted share of the question's words in its document's title.
    pub about_document: f32,
    /// With embeddings: its similarity by meaning less the closest unit's, ×10 (a unit 0.1
    /// less similar than the closest loses this much).
    pub meaning: f32,
    /// With embeddings: 1 / (1 + its place among the units closest by meaning).
    pub meaning_rank: f32,
    /// Its document is in the question's language: a Russian and an English document often say
    /// the same, and the prospect should read their own language.
    pub same_language: f32,
    /// The question asks for a number and the unit has one.
    pub number: f32,
    /// The question asks what something costs and the unit states a price (a figure with a
    /// currency, a price column).
    pub price: f32,
    /// The unit is longer than an answer may be (usually negative).
    pub long: f32,
    /// The unit is itself a question (usually negative: a question answers nothing).
    pub question: f32,
    /// A compared table row: counted once where the compared columns differ, and against
    /// where they are alike.
    pub compared: f32,
}

impl Default for RankingWeights {
    fn default() -> RankingWeights {
        RankingWeights {
            coverage: 1.0,
            keywords: 0.15,
            about_document: 0.0,
            meaning: 0.77,
            meaning_rank: 0.0,
            // Not fitted: a product rule, the prospect's own language first.
            same_language: 0.15,
            number: 0.35,
            price: 0.69,
            long: -0.05,
            question: -0.3,
            compared: 0.15,
        }
    }
}

impl Default for RetrieverSettings {
    fn default() -> RetrieverSettings {
        RetrieverSettings {
            max_answer_chars: 350,
            min_coverage: 0.4,
            max_unknown_share: 0.45,
            unknown_word_weight: 4.0,
            context_after_chars: 120,
            candidate_passages: 40,
            max_answer_units: 5,
            secondary_score_ratio: 0.5,
            min_added_coverage: 0.3,
            coverage_score_weight: 0.5,
            ranking: RankingWeights::default(),
            dense_candidates: 20,
            min_answer_probability: 0.3,
            fill_up_to_chars: 250,
            block_chars: 200,
            guide_markers: vec!["возражени".to_owned(), "objection".to_owned()],
        }
    }
}

/// Which documents a reader may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceFilter {
    /// Prospects: public documents only.
    PublicOnly,
    /// The sales team: internal notes too.
    All,
    /// Prospects raising an objection: the public documents of the objection-handling guide
    /// ([`RetrieverSettings::guide_markers`]).
    GuideOnly,
}

impl AudienceFilter {
    fn admits(self, document: &DocumentInfo) -> bool {
        match self {
            AudienceFilter::All => true,
            AudienceFilter::PublicOnly => document.audience == Audience::Public,
            AudienceFilter::GuideOnly => document.audience == Audience::Public && document.guide,
        }
    }
}

/// One search result for `closer kb search`.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub score: f32,
    pub source: String,
    pub title: String,
    pub text: String,
}

struct DocumentInfo {
    source: String,
    title: String,
    lang: Option<Lang>,
    audience: Audience,
    title_stems: HashSet<String>,
    /// Part of the objection-handling guide.
    guide: bool,
}

/// How much nearer by meaning another passage may stand to an objection than the guide's nearest
/// before the message is taken for a question about that passage instead.
const GUIDE_TOLERANCE: f32 = 0.02;

/// Whether `document` belongs to the objection-handling guide: its title or a tag holds one of
/// `markers` (word beginnings, lower case).
fn is_guide(document: &KnowledgeDocument, markers: &[String]) -> bool {
    let described = format!("{} {}", document.title, document.tags.join(" "))
        .to_lowercase()
        .replace('ё', "е");
    markers
        .iter()
        .any(|marker| !marker.is_empty() && described.contains(&marker.to_lowercase()))
}

struct IndexedChunk {
    document: usize,
    headings: Vec<String>,
    heading_stems: HashSet<String>,
    units: std::ops::Range<usize>,
}

struct Unit {
    chunk: usize,
    text: String,
    stems: HashSet<String>,
    /// The stems of the FAQ question just before this unit, when there is one: the answer to
    /// "Can we pay by card?" rarely repeats the question's words.
    question_stems: HashSet<String>,
    /// The unit is itself a question; the answer is the unit after it.
    is_question: bool,
    /// The block the unit belongs to, numbered across the KB: a paragraph, one list or a table
    /// row, and in an FAQ the answer after its question. A block is shown as a whole when it fits.
    block: usize,
    /// In an FAQ answer, the question it answers (a unit index).
    answers: Option<usize>,
    has_digit: bool,
    /// The unit states a price: a figure with a currency, or a price column of a table row.
    has_money: bool,
}

/// A unit shorter than this ("Yes.", "Да.") is never added to fill an answer: away from its
/// block it says nothing.
const MIN_FILLER_CHARS: usize = 25;

/// What the decision to answer a question is made from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signals {
    /// The weighted share of the question's words the KB never mentions.
    pub unknown_share: f32,
    /// A name (a product, a company) the KB never mentions is asked about.
    pub unknown_name: bool,
    /// The weighted share of the question's words the best unit covers (with its headings).
    pub coverage: f32,
    /// The best unit's similarity to the question by meaning (0 without embeddings).
    pub similarity: f32,
    /// The highest similarity of any candidate unit.
    pub best_similarity: f32,
    /// How far the closest unit stands out from the knowledge base as a whole, in standard
    /// deviations of the similarities of all units: the question is about something in
    /// particular, not the company's subject in general.
    pub similarity_z: f32,
    /// Whether the best unit's document is the document of the unit closest by meaning: keyword
    /// and meaning agree on where the answer is (1.0) or not (0.0).
    pub agreement: f32,
    /// How far the closest unit stands above the fifth closest (0 without embeddings).
    pub top_gap: f32,
    /// The best unit's document is in another language than the question (1.0) or the same
    /// (0.0): its words cannot be the question's, so its coverage tells less.
    pub cross_language: f32,
    /// Whether embeddings were in use.
    pub dense: bool,
}

/// The logistic model that decides whether to answer when embeddings are in use: for each
/// signal its mean, its standard deviation and its weight; then the intercept. Fitted (balanced
/// classes, L2 0.01) on the training sets (`../shared/eval`, the demo set, Парта, Tablewise and
/// ЛингваПро): answerable questions answered right against unanswerable ones. The other sets
/// in `config/eval-sets/` measure it; they were not used. `docs/retrieval.md` tells how to refit.
const ANSWER_MODEL: ([(f32, f32, f32); 5], f32) = (
    [
        // best similarity, similarity z, coverage, unknown share, cross language
        (0.869, 0.025, 0.701),
        (3.408, 0.875, 0.553),
        (0.577, 0.312, 0.813),
        (0.209, 0.281, -0.626),
        (0.088, 0.283, 0.414),
    ],
    1.027,
);

impl Signals {
    /// The probability that the best unit answers the question, by [`ANSWER_MODEL`].
    pub fn answer_probability(&self) -> f32 {
        let (features, intercept) = ANSWER_MODEL;
        let values = [
            self.best_similarity,
            self.similarity_z,
            self.coverage,
            self.unknown_share,
            self.cross_language,
        ];
        let logit = intercept
            + features
                .iter()
                .zip(values)
                .map(|((mean, deviation, weight), value)| weight * (value - mean) / deviation)
                .sum::<f32>();
        1.0 / (1.0 + (-logit).exp())
    }
}

/// A question word resolved against the KB vocabulary.
struct ResolvedTerm {
    stems: Vec<String>,
    weight: f32,
}

/// The features a candidate unit is ranked by; its score is their weighted sum
/// ([`RankingWeights`]).
const FEATURES: usize = 11;
/// The weighted share of the question's words the unit covers (with its headings).
const F_COVERAGE: usize = 0;
/// Its passage's keyword (BM25) score against the best passage's.
const F_KEYWORDS: usize = 1;
/// The weighted share of the question's words in its document's title.
const F_ABOUT_DOCUMENT: usize = 2;
/// Its similarity by meaning less the closest unit's, ×10 (0 for the closest).
const F_MEANING: usize = 3;
/// 1 / (1 + its place among the units closest by meaning); 0 beyond them.
const F_MEANING_RANK: usize = 4;
/// Its document is in the question's language.
const F_SAME_LANGUAGE: usize = 5;
/// The question asks for a number and the unit has one.
const F_NUMBER: usize = 6;
/// The question asks a price and the unit states one.
const F_PRICE: usize = 7;
/// Longer than an answer may be.
const F_LONG: usize = 8;
/// The unit is itself a question.
const F_QUESTION: usize = 9;
/// A compared table row: 1 where the compared columns differ, -1 where they are alike.
const F_COMPARED: usize = 10;

struct ScoredUnit {
    unit: usize,
    score: f32,
    /// What the score was made from (see [`FEATURES`]).
    features: [f32; FEATURES],
    coverage: f32,
    /// The unit's similarity to the question by meaning (0 without embeddings).
    similarity: f32,
    /// How much of each resolved question term (0–1, by index) the unit covers, for composing
    /// an answer that covers the question rather than repeats its best part.
    term_coverage: Vec<f32>,
    /// The weight of each resolved term, shared by every unit of one question.
    term_weights: std::rc::Rc<Vec<f32>>,
    /// The heading carried a question word the sentence lacks, so it is shown with the sentence.
    needs_heading: bool,
    /// A table row of a comparison question cut down to the compared columns.
    compared_row: Option<String>,
    /// The compared columns of this table row hold the same value: it tells no difference.
    alike_row: bool,
}

/// The built-in retriever: an in-memory tantivy index over passages of the documents.
pub struct Retriever {
    settings: RetrieverSettings,
    reader: IndexReader,
    terms_field: tantivy::schema::Field,
    chunk_field: tantivy::schema::Field,
    documents: Vec<DocumentInfo>,
    chunks: Vec<IndexedChunk>,
    units: Vec<Unit>,
    /// Passage frequency of every stem, for term weights.
    chunk_frequency: HashMap<String, usize>,
    /// Every stem by its first character, for typo-tolerant lookup.
    vocabulary_by_initial: HashMap<char, Vec<String>>,
    /// Every KB word (normalised, as written) with its stem, by first character: a misspelt
    /// word is closer to the written form ("integraton" / "integration") than to its stem.
    words_by_initial: HashMap<char, Vec<(String, String)>>,
    /// The sentence embeddings of the units, when a model is in use: retrieval by meaning.
    dense: Option<Dense>,
}

/// Dense retrieval: one unit vector per unit (row-major, `units × dim`) and the model that
/// embeds the questions, with a small cache of query vectors (the dialog asks the playbook's
/// own queries again and again).
struct Dense {
    /// Embeds the questions, those of concurrent conversations together.
    queries_batcher: QueryBatcher,
    vectors: Vec<f32>,
    dim: usize,
    queries: Mutex<HashMap<String, Arc<Vec<f32>>>>,
}

/// Below this many units, the similarity's z-score is not used (see [`Signals::similarity_z`]).
const MIN_UNITS_FOR_Z: usize = 50;

/// How many query vectors the cache keeps before it starts afresh.
const QUERY_CACHE_SIZE: usize = 512;

impl Dense {
    fn query(&self, text: &str) -> Arc<Vec<f32>> {
        let cached = self
            .queries
            .lock()
            .ok()
            .and_then(|cache| cache.get(text).cloned());
        if let Some(vector) = cached {
            return vector;
        }
        let vector = Arc::new(self.queries_batcher.embed_query(text));
        if let Ok(mut cache) = self.queries.lock() {
            if cache.len() >= QUERY_CACHE_SIZE {
                cache.clear();
            }
            cache.insert(text.to_string(), Arc::clone(&vector));
        }
        vector
    }

    /// The similarity of every unit to the query vector.
    fn similarities(&self, query: &[f32]) -> Vec<f32> {
        dot_all(&self.vectors, self.dim, query)
    }
}

/// The dot product of `query` with every row of `rows` (row-major, `dim` wide).
fn dot_all(rows: &[f32], dim: usize, query: &[f32]) -> Vec<f32> {
    rows.chunks_exact(dim)
        .map(|row| row.iter().zip(query).map(|(a, b)| a * b).sum())
        .collect()
}

impl Dense {}

const STEM_TOKENIZER: &str = "closer_stems";

impl Retriever {
    /// Chunks the documents and indexes the passages in RAM.
    ///
    /// # Errors
    /// [`KnowledgeError::Index`] when tantivy fails (it should not for an in-memory index).
    pub fn build(
        documents: &[KnowledgeDocument],
        settings: &RetrieverSettings,
    ) -> Result<Retriever, KnowledgeError> {
        let mut schema_builder = Schema::builder();
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(STEM_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs);
        let terms_field = schema_builder.add_text_field(
            "terms",
            TextOptions::default().set_indexing_options(indexing),
        );
        let chunk_field = schema_builder.add_u64_field("chunk", STORED | FAST);
        let index = Index::create_in_ram(schema_builder.build());
        index.tokenizers().register(
            STEM_TOKENIZER,
            TextAnalyzer::from(WhitespaceTokenizer::default()),
        );
        // One thread and tantivy's smallest arena: a KB is a few hundred documents.
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000)?;

        let mut infos = Vec::new();
        let mut chunks = Vec::new();
        let mut units = Vec::new();
        let mut chunk_frequency: HashMap<String, usize> = HashMap::new();
        let mut next_block = 0usize;
        for (document_index, document) in documents.iter().enumerate() {
            // Tags describe the whole document as well as its title does.
            let title_stems: HashSet<String> =
                stems(&format!("{} {}", document.title, document.tags.join(" ")))
                    .into_iter()
                    .collect();
            for chunk in chunk_document(document) {
                let chunk_index = chunks.len();
                let heading_stems: HashSet<String> =
                    stems(&chunk.headings.join(" ")).into_iter().collect();
                let first_unit = units.len();
                let mut all_stems: Vec<String> = title_stems.iter().cloned().collect();
                all_stems.extend(heading_stems.iter().cloned());
                // The words of the question an FAQ answer answers, for every unit of the answer;
                // the words leading up to a question belong to it ("I rent. Can you…?").
                let mut question_words: HashSet<String> = HashSet::new();
                let mut answer_question: HashSet<String> = HashSet::new();
                let mut local_block = None;
                let mut answers = None;
                for (text, block_in_chunk) in chunk.units.into_iter().zip(chunk.blocks) {
                    let unit_stems = stems(&text);
                    all_stems.extend(unit_stems.iter().cloned());
                    let is_question = text.trim_end().ends_with('?');
                    let unit_stems: HashSet<String> = unit_stems.into_iter().collect();
                    let after_question = units.len() > first_unit
                        && units
                            .last()
                            .is_some_and(|previous: &Unit| previous.is_question);
                    if after_question && !is_question {
                        // The answer after an FAQ question is a block of its own.
                        next_block += 1;
                        answer_question = std::mem::take(&mut question_words);
                        answers = Some(units.len() - 1);
                    } else if local_block != Some(block_in_chunk)
                        || is_question && !answer_question.is_empty()
                    {
                        next_block += 1;
                        question_words.clear();
                        answer_question.clear();
                        answers = None;
                    }
                    local_block = Some(block_in_chunk);
                    if answer_question.is_empty() {
                        question_words.extend(unit_stems.iter().cloned());
                        if is_question {
                            // What leads up to a question in its paragraph ("I rent my flat.")
                            // is part of the question: never shown as an answer.
                            for earlier in units[first_unit..].iter_mut().rev() {
                                if earlier.block != next_block {
                                    break;
                                }
                                earlier.is_question = true;
                            }
                        }
                    }
                    let question_stems = answer_question.clone();
                    units.push(Unit {
                        block: next_block,
                        answers,
                        chunk: chunk_index,
                        has_digit: text.chars().any(|character| character.is_ascii_digit()),
                        has_money: states_price(&text),
                        stems: unit_stems,
                        question_stems,
                        is_question,
                        text,
                    });
                }
                let distinct: HashSet<&String> = all_stems.iter().collect();
                for stem_text in distinct {
                    *chunk_frequency.entry(stem_text.clone()).or_default() += 1;
                }
                writer.add_document(doc!(
                    terms_field => all_stems.join(" "),
                    chunk_field => chunk_index as u64,
                ))?;
                chunks.push(IndexedChunk {
                    document: document_index,
                    headings: chunk.headings,
                    heading_stems,
                    units: first_unit..units.len(),
                });
            }
            infos.push(DocumentInfo {
                source: document.source.clone(),
                title: document.title.clone(),
                lang: document.lang,
                audience: document.audience,
                title_stems,
                guide: is_guide(document, &settings.guide_markers),
            });
        }
        writer.commit()?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut vocabulary_by_initial: HashMap<char, Vec<String>> = HashMap::new();
        for stem_text in chunk_frequency.keys() {
            if let Some(initial) = stem_text.chars().next() {
                vocabulary_by_initial
                    .entry(initial)
                    .or_default()
                    .push(stem_text.clone());
            }
        }
        // Sorted, so that fuzzy matches and with them the query's clauses come in one order.
        for stems_list in vocabulary_by_initial.values_mut() {
            stems_list.sort();
        }
        let mut words_by_initial: HashMap<char, Vec<(String, String)>> = HashMap::new();
        let mut seen_words = HashSet::new();
        for unit in &units {
            for word in words(&normalize(&unit.text)) {
                if word.chars().count() >= 5 && seen_words.insert(word.to_string()) {
                    if let Some(initial) = word.chars().next() {
                        words_by_initial
                            .entry(initial)
                            .or_default()
                            .push((word.to_string(), stem(word)));
                    }
                }
            }
        }
        let mut settings = settings.clone();
        settings.max_answer_chars = settings.max_answer_chars.clamp(80, HARD_MAX_ANSWER_CHARS);
        Ok(Retriever {
            settings,
            reader,
            terms_field,
            chunk_field,
            documents: infos,
            chunks,
            units,
            chunk_frequency,
            vocabulary_by_initial,
            words_by_initial,
            dense: None,
        })
    }

    /// The texts to embed as passages, one for each unit, in order. The document's title and
    /// the unit's headings give a sentence its subject ("Тариф «Старт»: 990 ₽ в месяц" alone
    /// says little about what it prices), and every sentence of an FAQ answer is embedded with
    /// its question.
    pub fn embedding_texts(&self) -> Vec<String> {
        self.units
            .iter()
            .map(|unit| {
                let chunk = &self.chunks[unit.chunk];
                let mut context = vec![self.documents[chunk.document].title.as_str()];
                context.extend(chunk.headings.iter().map(String::as_str));
                context.dedup();
                let mut text = context.join(" / ");
                text.push_str(": ");
                if let Some(question) = unit.answers {
                    text.push_str(&self.units[question].text);
                    text.push(' ');
                }
                text.push_str(&unit.text);
                text
            })
            .collect()
    }

    /// Uses sentence embeddings: `vectors` holds one vector per text of
    /// [`Retriever::embedding_texts`], in order, made by `model`.
    ///
    /// # Errors
    /// [`KnowledgeError::Embeddings`] when the count or a length does not match.
    pub fn with_embeddings(
        mut self,
        model: Arc<Model>,
        vectors: &[Vec<f32>],
    ) -> Result<Retriever, KnowledgeError> {
        let dim = model.dim();
        let expected = self.units.len();
        if vectors.len() != expected || vectors.iter().any(|vector| vector.len() != dim) {
            return Err(KnowledgeError::Embeddings(format!(
                "{} vectors for {expected} texts of dimension {dim}",
                vectors.len(),
            )));
        }
        self.dense = Some(Dense {
            queries_batcher: QueryBatcher::new(model),
            vectors: vectors.concat(),
            dim,
            queries: Mutex::new(HashMap::new()),
        });
        Ok(self)
    }

    /// The embedding of `text` as a query, from the cache the searches share (so a search of the
    /// same text reuses it); `None` without a model.
    pub fn query_vector(&self, text: &str) -> Option<Arc<Vec<f32>>> {
        self.dense.as_ref().map(|dense| dense.query(text))
    }

    /// The embedding model in use, if any.
    pub fn embedding_model(&self) -> Option<&Arc<Model>> {
        self.dense
            .as_ref()
            .map(|dense| dense.queries_batcher.model())
    }

    /// The settings the index was built with, so that a rebuild (a re-index from the
    /// console) keeps the configured ones.
    pub fn settings(&self) -> &RetrieverSettings {
        &self.settings
    }

    /// How many passages the index holds.
    pub fn passage_count(&self) -> usize {
        self.chunks.len()
    }

    /// The best passages for a query, best first.
    pub fn search(&self, query: &str, audience: AudienceFilter, limit: usize) -> Vec<Passage> {
        let analyzed = analyze_question(query);
        let (resolved, _) = self.resolve(&analyzed);
        let scored = self.score_units(
            Some(query),
            &resolved,
            &analyzed,
            None,
            audience,
            (&mut 0.0, &mut Vec::new()),
        );
        let mut seen_chunks = HashSet::new();
        scored
            .iter()
            .filter(|scored_unit| seen_chunks.insert(self.units[scored_unit.unit].chunk))
            .take(limit)
            .map(|scored_unit| {
                let chunk = &self.chunks[self.units[scored_unit.unit].chunk];
                let document = &self.documents[chunk.document];
                let mut text = chunk.headings.join(" / ");
                for unit in &self.units[chunk.units.clone()] {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&unit.text);
                }
                Passage {
                    score: scored_unit.score,
                    source: document.source.clone(),
                    title: document.title.clone(),
                    text: truncate_chars(&text, HARD_MAX_ANSWER_CHARS),
                }
            })
            .collect()
    }

    /// How a question is understood: each content word with the KB stems it matched and its
    /// weight, and the share of unknown words. For `closer kb search --explain` and tuning.
    pub fn explain(&self, question: &str) -> String {
        let analyzed = analyze_question(question);
        let (resolved, unknown_share) = self.resolve(&analyzed);
        let mut lines: Vec<String> = analyzed
            .terms
            .iter()
            .zip(&resolved)
            .map(|(term, resolved)| {
                format!(
                    "{} {:?} -> {:?} w={:.2}{}",
                    term.word,
                    term.alternatives,
                    resolved.stems,
                    resolved.weight,
                    if term.is_name_like { " name" } else { "" }
                )
            })
            .collect();
        lines.push(format!(
            "unknown share {unknown_share:.2}, wants number {}",
            analyzed.wants_number
        ));
        lines.join("\n")
    }

    /// A composed answer within the configured length, or `None` when the KB has no good enough answer.
    pub fn answer(
        &self,
        question: &str,
        lang: Lang,
        audience: AudienceFilter,
    ) -> Option<KnowledgeAnswer> {
        let (scored, signals) = self.rank(question, lang, audience)?;
        if !self.confident(&signals) {
            return None;
        }
        Some(self.compose(&scored))
    }

    /// The objection-handling guide's answer to an objection: its passage nearest to `query`
    /// (the prospect's words with the playbook's words for the kind), by meaning and words.
    /// `None` without a guide, and when some other passage stands nearer by meaning to the
    /// prospect's own words `text` than anything in the guide: then the message asks about
    /// that ("is a Saturday move dearer?"), whatever stance it seemed to take.
    pub fn guide_answer(&self, query: &str, text: &str, lang: Lang) -> Option<KnowledgeAnswer> {
        if !self
            .documents
            .iter()
            .any(|document| AudienceFilter::GuideOnly.admits(document))
        {
            return None;
        }
        if let Some(dense) = &self.dense {
            let similarities = dense.similarities(&dense.query(text));
            let (mut in_guide, mut elsewhere) = (f32::MIN, f32::MIN);
            for (unit, similarity) in similarities.iter().enumerate() {
                let document = &self.documents[self.chunks[self.units[unit].chunk].document];
                if AudienceFilter::GuideOnly.admits(document) {
                    in_guide = in_guide.max(*similarity);
                } else if AudienceFilter::PublicOnly.admits(document) {
                    elsewhere = elsewhere.max(*similarity);
                }
            }
            if in_guide + GUIDE_TOLERANCE < elsewhere {
                return None;
            }
        }
        let (scored, _) = self.rank(query, lang, AudienceFilter::GuideOnly)?;
        (!scored.is_empty()).then(|| self.compose(&scored))
    }

    /// Every candidate unit's text with its final score and its similarity by meaning, best
    /// first: for the quality harness's diagnostics (`QA_RANKS=1`), not for answering.
    pub fn ranked_units(&self, question: &str, lang: Lang) -> Vec<(String, f32, f32, Vec<f32>)> {
        self.rank(question, lang, AudienceFilter::PublicOnly)
            .map(|(scored, _)| {
                scored
                    .iter()
                    .map(|unit| {
                        (
                            self.units[unit.unit].text.clone(),
                            unit.score,
                            unit.similarity,
                            unit.features.to_vec(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the decision to answer a question is made from, for tuning and `kb search --explain`.
    pub fn signals(&self, question: &str, lang: Lang, audience: AudienceFilter) -> Option<Signals> {
        self.rank(question, lang, audience)
            .map(|(_, signals)| signals)
    }

    fn rank(
        &self,
        question: &str,
        lang: Lang,
        audience: AudienceFilter,
    ) -> Option<(Vec<ScoredUnit>, Signals)> {
        let analyzed = analyze_question(question);
        if analyzed.terms.is_empty() {
            return None;
        }
        let (resolved, unknown_share) = self.resolve(&analyzed);
        let unknown_name = analyzed
            .terms
            .iter()
            .zip(&resolved)
            .any(|(term, resolved)| term.is_name_like && resolved.stems.is_empty());
        let mut similarity_z = 0.0;
        let mut closest = Vec::new();
        let scored = self.score_units(
            Some(question),
            &resolved,
            &analyzed,
            Some(lang),
            audience,
            (&mut similarity_z, &mut closest),
        );
        let best = scored.first()?;
        let document_of = |unit: usize| self.chunks[self.units[unit].chunk].document;
        let agreement = closest.first().map_or(0.0, |(unit, _)| {
            f32::from(u8::from(document_of(*unit) == document_of(best.unit)))
        });
        let top_gap = match (closest.first(), closest.get(4)) {
            (Some((_, first)), Some((_, fifth))) => first - fifth,
            _ => 0.0,
        };
        let signals = Signals {
            unknown_share,
            unknown_name,
            coverage: best.coverage,
            similarity: best.similarity,
            best_similarity: scored
                .iter()
                .map(|scored_unit| scored_unit.similarity)
                .fold(0.0, f32::max),
            similarity_z,
            agreement,
            top_gap,
            cross_language: f32::from(u8::from(
                self.documents[document_of(best.unit)]
                    .lang
                    .or_else(|| Lang::detect(&self.units[best.unit].text))
                    .is_some_and(|unit_lang| unit_lang != lang),
            )),
            dense: self.dense.is_some(),
        };
        Some((scored, signals))
    }

    /// Whether the best unit answers the question well enough to be shown. With embeddings, a
    /// logistic model of the five signals decides (see [`ANSWER_MODEL`]); without them, the
    /// lexical thresholds of the settings.
    fn confident(&self, signals: &Signals) -> bool {
        if signals.unknown_name {
            return false;
        }
        if !signals.dense {
            return signals.unknown_share <= self.settings.max_unknown_share
                && signals.coverage >= self.settings.min_coverage;
        }
        signals.answer_probability() >= self.settings.min_answer_probability
    }

    /// Maps each question term to the KB stems that count for it, and its weight; returns the
    /// weighted share of terms the KB never mentions.
    fn resolve(&self, analyzed: &AnalyzedQuestion) -> (Vec<ResolvedTerm>, f32) {
        let chunk_count = self.chunks.len().max(1) as f32;
        // A word the KB never uses weighs as much as a rare KB word: more would let every
        // conversational verb ("падают", "around") sink an answerable question.
        let unknown_weight = self.settings.unknown_word_weight;
        let weight_of = |stem_text: &str| {
            let frequency = self.chunk_frequency.get(stem_text).copied().unwrap_or(0) as f32;
            (1.0 + chunk_count / frequency.max(1.0)).ln()
        };
        let mut resolved = Vec::new();
        let (mut total, mut unknown) = (0.0f32, 0.0f32);
        for term in &analyzed.terms {
            let mut found: Vec<String> = term
                .alternatives
                .iter()
                .filter(|alternative| self.chunk_frequency.contains_key(*alternative))
                .cloned()
                .collect();
            if found.is_empty() && term.word.chars().count() >= 4 {
                // A Russian word written in Latin ("sklad") is that word before it is a typo of
                // a similar Latin one.
                if let Some(cyrillic) = latin_to_cyrillic(&term.word) {
                    let cyrillic_stem = stem(&cyrillic);
                    if self.chunk_frequency.contains_key(&cyrillic_stem) {
                        found.push(cyrillic_stem);
                    }
                }
            }
            if found.is_empty() {
                found = self.fuzzy_matches(&term.word);
            }
            if found.is_empty() {
                // A plural of an abbreviation the stemmer leaves alone ("SKUs").
                if let Some(singular) = term.word.strip_suffix('s') {
                    if self.chunk_frequency.contains_key(singular) {
                        found.push(singular.to_string());
                    }
                }
            }
            if found.is_empty() {
                // A name written in Latin in the question and in Cyrillic in the KB ("Paletta").
                let transliterated =
                    latin_to_cyrillic(&term.word).or_else(|| cyrillic_to_latin(&term.word));
                if let Some(cyrillic) = transliterated {
                    let cyrillic_stem = stem(&cyrillic);
                    found = if self.chunk_frequency.contains_key(&cyrillic_stem) {
                        vec![cyrillic_stem]
                    } else {
                        self.fuzzy_matches(&cyrillic)
                    };
                }
            }
            if found.is_empty() && term.is_place {
                // A city the KB does not list: the answer is the KB's word on places in
                // general, which the rest of the question finds; the name itself weighs nothing.
                resolved.push(ResolvedTerm {
                    stems: found,
                    weight: 0.0,
                });
                continue;
            }
            if found.is_empty() && term.word.chars().count() <= 2 && !term.is_name_like {
                // Short unknown words are particles and abbreviations of no subject: they weigh nothing.
                resolved.push(ResolvedTerm {
                    stems: found,
                    weight: 0.0,
                });
                continue;
            }
            let weight = if found.is_empty() {
                if looks_like_russian_verb(&term.word) {
                    unknown_weight * 0.3
                } else {
                    unknown_weight
                }
            } else {
                // The own stem's rarity decides the weight; synonyms should not make a common
                // word look rare or a rare word look common.
                found
                    .iter()
                    .map(|stem_text| weight_of(stem_text))
                    .fold(f32::MAX, f32::min)
            };
            total += weight;
            if found.is_empty() {
                unknown += weight;
            }
            resolved.push(ResolvedTerm {
                stems: found,
                weight,
            });
        }
        let share = if total > 0.0 { unknown / total } else { 1.0 };
        (resolved, share)
    }

    /// KB stems within a small edit distance of a misspelt word (1 from 5 letters, 2 from 9), or
    /// that extend its stem (a compound such as "техподдержка" is not split, but "поддерж" is found).
    fn fuzzy_matches(&self, word: &str) -> Vec<String> {
        let length = word.chars().count();
        if length < 5 || word.chars().any(|character| character.is_ascii_digit()) {
            return Vec::new();
        }
        let limit = if length >= 9 { 2 } else { 1 };
        let own_stem = stem(word);
        let mut matches = Vec::new();
        let candidates = own_stem
            .chars()
            .next()
            .and_then(|initial| self.vocabulary_by_initial.get(&initial));
        for candidate in candidates.into_iter().flatten() {
            if edit_distance_within(&own_stem, candidate, limit).is_some()
                || edit_distance_within(word, candidate, limit).is_some()
            {
                matches.push(candidate.clone());
            }
        }
        let written = word
            .chars()
            .next()
            .and_then(|initial| self.words_by_initial.get(&initial));
        for (candidate, candidate_stem) in written.into_iter().flatten() {
            if !matches.contains(candidate_stem)
                && edit_distance_within(word, candidate, limit).is_some()
            {
                matches.push(candidate_stem.clone());
            }
        }
        matches
    }

    fn candidate_chunks(&self, resolved: &[ResolvedTerm]) -> Vec<(usize, f32)> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for term in resolved {
            for stem_text in &term.stems {
                let query = TermQuery::new(
                    Term::from_field_text(self.terms_field, stem_text),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(query), term.weight)),
                ));
            }
        }
        if clauses.is_empty() {
            return Vec::new();
        }
        let searcher = self.reader.searcher();
        let top = searcher
            .search(
                &BooleanQuery::new(clauses),
                &TopDocs::with_limit(self.settings.candidate_passages.max(1)).order_by_score(),
            )
            .unwrap_or_default();
        top.into_iter()
            .filter_map(|(score, address)| {
                let stored: TantivyDocument = searcher.doc(address).ok()?;
                let chunk = stored.get_first(self.chunk_field)?.as_u64()?;
                Some((usize::try_from(chunk).ok()?, score))
            })
            .collect()
    }

    fn score_units(
        &self,
        question: Option<&str>,
        resolved: &[ResolvedTerm],
        analyzed: &AnalyzedQuestion,
        lang: Option<Lang>,
        audience: AudienceFilter,
        (similarity_z, closest): (&mut f32, &mut Vec<(usize, f32)>),
    ) -> Vec<ScoredUnit> {
        let mut candidates = self.candidate_chunks(resolved);
        let top_chunk_score = candidates.first().map_or(1.0, |(_, score)| score.max(1e-6));
        // By meaning: every unit's similarity, and the chunks of the closest units join the
        // lexical candidates (a paraphrase shares no word with its answer).
        let similarities = match (&self.dense, question) {
            (Some(dense), Some(question)) => dense.similarities(&dense.query(question)),
            _ => Vec::new(),
        };
        let mut best_similarity = 0.0f32;
        let mut meaning_rank = HashMap::new();
        if !similarities.is_empty() {
            let mut order: Vec<usize> = (0..self.units.len())
                .filter(|unit| {
                    let document = self.chunks[self.units[*unit].chunk].document;
                    audience.admits(&self.documents[document])
                })
                .collect();
            order.sort_by(|left, right| similarities[*right].total_cmp(&similarities[*left]));
            best_similarity = order.first().map_or(0.0, |unit| similarities[*unit]);
            meaning_rank.extend(
                order
                    .iter()
                    .take(self.settings.dense_candidates)
                    .enumerate()
                    .map(|(rank, unit)| (*unit, rank)),
            );
            closest.extend(
                order
                    .iter()
                    .take(5)
                    .map(|unit| (*unit, similarities[*unit])),
            );
            let count = order.len().max(1) as f32;
            let mean = order.iter().map(|unit| similarities[*unit]).sum::<f32>() / count;
            let variance = order
                .iter()
                .map(|unit| (similarities[*unit] - mean).powi(2))
                .sum::<f32>()
                / count;
            // A handful of units tells nothing of the KB's spread: the z-score is neutral.
            *similarity_z = if order.len() >= MIN_UNITS_FOR_Z {
                (best_similarity - mean) / variance.sqrt().max(1e-4)
            } else {
                ANSWER_MODEL.0[1].0
            };
            for unit in order.iter().take(self.settings.dense_candidates) {
                let chunk = self.units[*unit].chunk;
                if !candidates.iter().any(|(candidate, _)| *candidate == chunk) {
                    candidates.push((chunk, 0.0));
                }
            }
        }
        let total_weight: f32 = resolved
            .iter()
            .map(|term| term.weight)
            .sum::<f32>()
            .max(1e-6);
        let term_weights = std::rc::Rc::new(resolved.iter().map(|term| term.weight).collect());
        let weights = self.unit_weights();
        let mut scored = Vec::new();
        for (chunk_index, chunk_score) in candidates {
            let Some(chunk) = self.chunks.get(chunk_index) else {
                continue;
            };
            let document = &self.documents[chunk.document];
            if !audience.admits(document) {
                continue;
            }
            for unit_index in chunk.units.clone() {
                let unit = &self.units[unit_index];
                // An FAQ question is never shown as an answer: the unit after it carries its
                // words (and, with embeddings, its meaning).
                if unit.is_question && chunk.units.contains(&(unit_index + 1)) {
                    continue;
                }
                let mut covered = 0.0;
                let mut needs_heading = false;
                let mut term_coverage = Vec::with_capacity(resolved.len());
                for term in resolved {
                    let found_in = |stems: &HashSet<String>| {
                        term.stems.iter().any(|stem| stems.contains(stem))
                    };
                    let in_unit = found_in(&unit.stems);
                    let share = if in_unit {
                        1.0
                    } else if found_in(&unit.question_stems) {
                        0.9
                    } else if found_in(&chunk.heading_stems) {
                        needs_heading = true;
                        0.85
                    } else if found_in(&document.title_stems) {
                        0.6
                    } else {
                        0.0
                    };
                    covered += share * term.weight;
                    term_coverage.push(share);
                }
                let coverage = covered / total_weight;
                // Among sentences that cover the question alike, prefer the document about it.
                let about_document: f32 = resolved
                    .iter()
                    .filter(|term| {
                        term.stems
                            .iter()
                            .any(|stem_text| document.title_stems.contains(stem_text))
                    })
                    .map(|term| term.weight)
                    .sum::<f32>()
                    / total_weight;
                let similarity = similarities.get(unit_index).copied().unwrap_or(0.0);
                let mut features = [0.0f32; FEATURES];
                features[F_COVERAGE] = coverage;
                features[F_KEYWORDS] = chunk_score / top_chunk_score;
                features[F_ABOUT_DOCUMENT] = about_document;
                if !similarities.is_empty() {
                    features[F_MEANING] = (similarity - best_similarity) * 10.0;
                    features[F_MEANING_RANK] = meaning_rank
                        .get(&unit_index)
                        .map_or(0.0, |rank| 1.0 / (1.0 + *rank as f32));
                }
                features[F_SAME_LANGUAGE] =
                    f32::from(u8::from(lang.is_some() && document.lang == lang));
                features[F_NUMBER] = f32::from(u8::from(analyzed.wants_number && unit.has_digit));
                features[F_PRICE] = f32::from(u8::from(analyzed.wants_price && unit.has_money));
                features[F_LONG] = f32::from(u8::from(unit.text.chars().count() > 400));
                features[F_QUESTION] = f32::from(u8::from(unit.is_question));
                let mut compared_row = None;
                let mut alike_row = false;
                if analyzed.wants_comparison {
                    if let Some((row, differs)) = compared_columns(&unit.text, resolved) {
                        // "How does A differ from B": the rows where A and B differ answer it;
                        // rows where they are alike answer nothing.
                        features[F_COMPARED] = if differs { 1.0 } else { -1.0 };
                        compared_row = Some(row);
                        alike_row = !differs;
                    }
                }
                let score = weights
                    .iter()
                    .zip(&features)
                    .map(|(weight, feature)| weight * feature)
                    .sum();
                scored.push(ScoredUnit {
                    unit: unit_index,
                    score,
                    features,
                    coverage,
                    similarity,
                    term_coverage,
                    term_weights: std::rc::Rc::clone(&term_weights),
                    needs_heading,
                    compared_row,
                    alike_row,
                });
            }
        }
        // Ties go to the earlier unit (document order), so that repeated runs answer alike.
        scored.sort_by(|left, right| {
            right
                .score
                .total_cmp(&left.score)
                .then(left.unit.cmp(&right.unit))
        });
        scored
    }

    /// The weight of each unit feature ([`FEATURES`]), from the settings.
    fn unit_weights(&self) -> [f32; FEATURES] {
        let ranking = &self.settings.ranking;
        let mut weights = [0.0; FEATURES];
        weights[F_COVERAGE] = ranking.coverage;
        weights[F_KEYWORDS] = ranking.keywords;
        weights[F_ABOUT_DOCUMENT] = ranking.about_document;
        weights[F_MEANING] = ranking.meaning;
        weights[F_MEANING_RANK] = ranking.meaning_rank;
        weights[F_SAME_LANGUAGE] = ranking.same_language;
        weights[F_NUMBER] = ranking.number;
        weights[F_PRICE] = ranking.price;
        weights[F_LONG] = ranking.long;
        weights[F_QUESTION] = ranking.question;
        weights[F_COMPARED] = ranking.compared;
        weights
    }

    fn unit_text(&self, scored: &ScoredUnit) -> String {
        let unit = &self.units[scored.unit];
        let text = scored.compared_row.as_ref().unwrap_or(&unit.text);
        self.with_heading(scored, text.clone())
    }

    /// `text` of `scored`'s unit, after the heading it needs when the heading carries words of
    /// the question.
    fn with_heading(&self, scored: &ScoredUnit, text: String) -> String {
        let chunk = &self.chunks[self.units[scored.unit].chunk];
        match chunk.headings.last() {
            Some(heading) if scored.needs_heading => format!("{heading}: {text}"),
            _ => text,
        }
    }

    /// The units shown for `best`: it and its block's other units (not questions) around it,
    /// nearest first, the next before the previous, while they fit in `block_chars`; in order.
    fn block_around(&self, best: &ScoredUnit) -> Vec<usize> {
        let mut shown = vec![best.unit];
        if best.compared_row.is_some() {
            return shown;
        }
        let unit = &self.units[best.unit];
        let chunk = &self.chunks[unit.chunk];
        let in_block = |index: usize| {
            chunk.units.contains(&index)
                && self.units[index].block == unit.block
                && !self.units[index].is_question
        };
        let mut length = self.unit_text(best).chars().count();
        let (mut before, mut after) = (best.unit, best.unit);
        loop {
            let mut grew = false;
            for candidate in [after + 1, before.wrapping_sub(1)] {
                if candidate == usize::MAX || !in_block(candidate) {
                    continue;
                }
                let added = 1 + self.units[candidate].text.chars().count();
                if length + added > self.settings.block_chars {
                    continue;
                }
                length += added;
                shown.push(candidate);
                if candidate > after {
                    after = candidate;
                } else {
                    before = candidate;
                }
                grew = true;
                break;
            }
            if !grew {
                break;
            }
        }
        shown.sort_unstable();
        shown
    }

    /// The text of `shown` (units of one block, in order): sentences joined as a paragraph,
    /// list items one per line; headings before it when the best unit needs them.
    fn block_text(&self, best: &ScoredUnit, shown: &[usize]) -> String {
        if shown.len() == 1 {
            return self.unit_text(best);
        }
        let sentences = shown[..shown.len() - 1].iter().all(|index| {
            self.units[*index]
                .text
                .trim_end()
                .ends_with(['.', '!', '?', '…'])
        });
        let texts: Vec<&str> = shown
            .iter()
            .map(|index| self.units[*index].text.as_str())
            .collect();
        self.with_heading(best, texts.join(if sentences { " " } else { "\n" }))
    }

    fn compose(&self, scored: &[ScoredUnit]) -> KnowledgeAnswer {
        let cap = self.settings.max_answer_chars;
        let best = &scored[0];
        let best_chunk = self.units[best.unit].chunk;
        // The best unit is read with the rest of its block (the paragraph or FAQ answer it
        // comes from), which its author wrote to be read whole: "Yes." + the condition after it.
        let shown = self.block_around(best);
        let mut parts = vec![truncate_chars(&self.block_text(best, &shown), cap)];
        let mut used_units = shown;
        let mut length = parts[0].chars().count();
        // A short sentence often needs the one after it ("No, it is cloud-only." + the alternative).
        let next_unit = best.unit + 1;
        // A table row cut down to the compared columns stands alone; the next row is no context.
        if used_units.len() == 1
            && length < self.settings.context_after_chars
            && best.compared_row.is_none()
            && self.chunks[best_chunk].units.contains(&next_unit)
            && !self.units[next_unit].is_question
        {
            let next_text = &self.units[next_unit].text;
            if length + 1 + next_text.chars().count() <= cap {
                length += 1 + next_text.chars().count();
                parts.push(next_text.clone());
                used_units.push(next_unit);
            }
        }
        // Greedy coverage: a further unit joins when it covers question terms the chosen units
        // leave uncovered (so both sides of a comparison are shown), or when it directly
        // continues a chosen unit of the best passage (the next item of the same list).
        let weights = std::rc::Rc::clone(&best.term_weights);
        let total_weight: f32 = weights.iter().sum::<f32>().max(1e-6);
        let mut covered: Vec<f32> = best.term_coverage.clone();
        let covered_by = |covered: &mut Vec<f32>, unit: usize| {
            if let Some(scored_unit) = scored.iter().find(|scored_unit| scored_unit.unit == unit) {
                for (share, added) in covered.iter_mut().zip(&scored_unit.term_coverage) {
                    *share = share.max(*added);
                }
            }
        };
        for used in used_units.clone() {
            covered_by(&mut covered, used);
        }
        let best_document = self.chunks[best_chunk].document;
        let threshold = best.score * self.settings.secondary_score_ratio;
        // Rows cut down to two columns are short, and a comparison is told by several of them.
        let unit_limit = if best.compared_row.is_some() {
            self.settings.max_answer_units.max(1) + 3
        } else {
            self.settings.max_answer_units.max(1)
        };
        // Short items of one list ("- 1C: Trade Management") count as one unit together: a
        // list of five configurations is one answer, not five.
        let mut counted_units = used_units.len();
        while counted_units < unit_limit && used_units.len() < unit_limit + 3 {
            let mut choice: Option<(usize, f32)> = None;
            for (position, candidate) in scored.iter().enumerate().skip(1) {
                if candidate.score < threshold {
                    break;
                }
                let unit = &self.units[candidate.unit];
                let duplicate = used_units
                    .iter()
                    .any(|used| *used == candidate.unit || self.units[*used].text == unit.text);
                if duplicate
                    || candidate.alike_row
                    || length + 1 + self.unit_text(candidate).chars().count() > cap
                {
                    continue;
                }
                let gain: f32 = candidate
                    .term_coverage
                    .iter()
                    .zip(&covered)
                    .zip(weights.iter())
                    .map(|((share, already), weight)| (share - already).max(0.0) * weight)
                    .sum::<f32>()
                    / total_weight;
                let continues_best = unit.chunk == best_chunk
                    && used_units
                        .iter()
                        .any(|used| used.abs_diff(candidate.unit) == 1);
                // Coverage counts, but a much weaker unit should not push out a strong one.
                let mut value = gain
                    + self.settings.coverage_score_weight * candidate.score / best.score.max(1e-6);
                if gain < self.settings.min_added_coverage {
                    if !continues_best {
                        continue;
                    }
                    // A continuation adds context but no new terms: it ranks below any unit that does.
                    value -= gain;
                } else if self.chunks[unit.chunk].document == best_document {
                    value *= 1.2;
                }
                if choice.is_none_or(|(_, best_value)| value > best_value) {
                    choice = Some((position, value));
                }
            }
            // Nothing adds coverage: the rest of the room goes to the next best units, as a
            // near-miss best unit often has the answer right behind it (keyword retrieval
            // alone; with embeddings the best unit is trusted and the answer kept short).
            let choice = choice.or_else(|| {
                let room = if self.dense.is_some() {
                    self.settings.fill_up_to_chars.min(cap)
                } else {
                    cap
                };
                scored
                    .iter()
                    .enumerate()
                    .skip(1)
                    .take_while(|(_, candidate)| candidate.score >= threshold)
                    .find(|(_, candidate)| {
                        let unit = &self.units[candidate.unit];
                        // A fragment ("Yes.") means nothing away from its block.
                        unit.text.chars().count() >= MIN_FILLER_CHARS
                            && !candidate.alike_row
                            && !used_units.iter().any(|used| {
                                *used == candidate.unit || self.units[*used].text == unit.text
                            })
                            && length + 1 + self.unit_text(candidate).chars().count() <= room
                    })
                    .map(|(position, _)| (position, 0.0))
            });
            let Some((position, _)) = choice else {
                break;
            };
            let candidate = &scored[position];
            let text = self.unit_text(candidate);
            let continues_list = text.chars().count() < SHORT_LIST_ITEM_CHARS
                && used_units.iter().any(|used| {
                    used.abs_diff(candidate.unit) == 1
                        && self.units[*used].chunk == self.units[candidate.unit].chunk
                });
            if !continues_list {
                counted_units += 1;
            }
            length += 1 + text.chars().count();
            parts.push(text);
            used_units.push(candidate.unit);
            covered_by(&mut covered, candidate.unit);
        }
        let mut citations: Vec<Citation> = Vec::new();
        for unit in &used_units {
            let document = &self.documents[self.chunks[self.units[*unit].chunk].document];
            if !citations
                .iter()
                .any(|citation| citation.source == document.source)
            {
                citations.push(Citation {
                    title: document.title.clone(),
                    source: document.source.clone(),
                });
            }
        }
        KnowledgeAnswer {
            text: parts.join("\n"),
            citations,
            score: best.score,
        }
    }
}

/// A rendered table row split into its label and (column, value) cells.
fn table_cells(row: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let (label, cells) = row.split_once(": ")?;
    let cells: Vec<(&str, &str)> = cells
        .split("; ")
        .map(|cell| cell.split_once(" — "))
        .collect::<Option<Vec<_>>>()?;
    Some((label, cells))
}

/// Whether a question term names a table column.
fn names_column(column: &str, resolved: &[ResolvedTerm]) -> bool {
    let column_stems = stems(column);
    resolved.iter().any(|term| {
        term.stems
            .iter()
            .any(|stem_text| column_stems.contains(stem_text))
    })
}

/// A table row ("label: column — value; column — value") of which at least two columns are
/// named by the question: the row cut down to those columns, and whether their values differ.
fn compared_columns(row: &str, resolved: &[ResolvedTerm]) -> Option<(String, bool)> {
    let (label, cells) = table_cells(row)?;
    if cells.len() < 2 {
        return None;
    }
    let named: Vec<&(&str, &str)> = cells
        .iter()
        .filter(|(column, _)| names_column(column, resolved))
        .collect();
    if named.len() < 2 {
        return None;
    }
    let first_value = normalize(named[0].1);
    let differs = named
        .iter()
        .any(|(_, value)| normalize(value) != first_value);
    let shown: Vec<String> = named
        .iter()
        .map(|(column, value)| format!("{column} — {value}"))
        .collect();
    Some((format!("{label}: {}", shown.join("; ")), differs))
}

fn truncate_chars(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut truncated: String = text.chars().take(limit.saturating_sub(1)).collect();
    if let Some(space) = truncated.rfind(' ') {
        truncated.truncate(space);
    }
    truncated.push('…');
    truncated
}

/// Whether a unit states a price: a figure followed by a currency, or a table cell under a
/// price column ("цена с НДС (руб.): 4590").
fn states_price(text: &str) -> bool {
    static MONEY: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let money = MONEY.get_or_init(|| {
        regex::Regex::new(
            r"(?i)\d[\d\s\u{00a0}\u{202f},.]*\s?(₽|руб|р\.|rub|usd|eur|\$|€|тыс\.?\s?(₽|руб))|[$€]\s?\d|(цена|стоимость|price|cost)[^:;,\d]{0,40}\d",
        )
        .expect("a valid constant regex")
    });
    money.is_match(text)
}
