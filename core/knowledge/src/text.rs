//! Text analysis shared by indexing and querying: normalisation, tokens, per-script stemming, the lexicon.
//!
//! Both sides go through the same [`normalize`] and [`stem`], so a question matches the KB
//! whatever the inflection, `ё`/`е`, case or thousands separator. Only questions go through the
//! lexicon (colloquial words, abbreviations, the bilingual glossary) and the stop-word list.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use regex::Regex;
use rust_stemmers::{Algorithm, Stemmer};

const LEXICON: &str = include_str!("../data/lexicon.txt");
const GLOSSARY: &str = include_str!("../data/glossary.txt");
const STOPWORDS: &str = include_str!("../data/stopwords.txt");
const PLACES: &str = include_str!("../data/places.txt");

/// Lower case, `ё` as `е`, and digit groups joined (`12 900`, `12,900` → `12900`) so prices match
/// however they are written.
pub fn normalize(text: &str) -> String {
    static THOUSANDS: OnceLock<Regex> = OnceLock::new();
    let thousands = THOUSANDS.get_or_init(|| {
        Regex::new(r"(\d)[ \u{00a0}\u{202f},](\d{3})\b").expect("a valid constant regex")
    });
    let mut text = text.to_lowercase().replace('ё', "е");
    // Twice, because `1 234 567` overlaps itself in one pass.
    for _ in 0..2 {
        text = thousands.replace_all(&text, "$1$2").into_owned();
    }
    fold_model_codes(&text)
}

/// Model codes are written with Latin or Cyrillic look-alike letters at random ("T-60", "Т-60"):
/// inside a hyphen-joined token with a digit, look-alike Cyrillic letters become Latin and a
/// hyphen between letters and digits goes, so every spelling of a code is one word ("t60").
fn fold_model_codes(text: &str) -> String {
    static CODE: OnceLock<Regex> = OnceLock::new();
    let code = CODE.get_or_init(|| {
        Regex::new(r"[\p{L}\d]+(?:-[\p{L}\d]+)+|[\p{L}]+\d[\p{L}\d]*|\d+[\p{L}]+[\p{L}\d]*")
            .expect("a valid constant regex")
    });
    code.replace_all(text, |captures: &regex::Captures| {
        let token = &captures[0];
        if !token.chars().any(|character| character.is_ascii_digit()) {
            return token.to_string();
        }
        let segments: Vec<String> = token.split('-').map(fold_homoglyphs).collect();
        let mut joined = String::new();
        for (position, segment) in segments.iter().enumerate() {
            if position > 0 {
                let previous_is_letters = segments[position - 1]
                    .chars()
                    .last()
                    .is_some_and(char::is_alphabetic);
                let next_is_digit = segment.chars().next().is_some_and(|c| c.is_ascii_digit());
                // "t-60" is one code; "2-3" is a range and "ск-220" already folded stays joined.
                if !(previous_is_letters && next_is_digit) {
                    joined.push('-');
                }
            }
            joined.push_str(segment);
        }
        joined
    })
    .into_owned()
}

/// A segment's Cyrillic letters as their Latin look-alikes, when every Cyrillic letter in it has one.
fn fold_homoglyphs(segment: &str) -> String {
    let fold = |character: char| match character {
        'а' => Some('a'),
        'в' => Some('b'),
        'е' => Some('e'),
        'к' => Some('k'),
        'м' => Some('m'),
        'н' => Some('h'),
        'о' => Some('o'),
        'р' => Some('p'),
        'с' => Some('c'),
        'т' => Some('t'),
        'х' => Some('x'),
        'у' => Some('y'),
        _ => None,
    };
    if segment
        .chars()
        .any(|character| is_cyrillic(character) && fold(character).is_none())
    {
        return segment.to_string();
    }
    segment
        .chars()
        .map(|character| fold(character).unwrap_or(character))
        .collect()
}

/// The words of a normalised text: runs of letters and digits.
pub fn words(normalized: &str) -> impl Iterator<Item = &str> {
    normalized
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
}

fn is_cyrillic(character: char) -> bool {
    ('\u{0400}'..='\u{04FF}').contains(&character)
}

/// The stem of one normalised word: the Russian stemmer for Cyrillic words, the English one for
/// Latin words, the word itself for numbers and codes.
pub fn stem(word: &str) -> String {
    static RUSSIAN: OnceLock<Stemmer> = OnceLock::new();
    static ENGLISH: OnceLock<Stemmer> = OnceLock::new();
    let has_digit = word.chars().any(|character| character.is_ascii_digit());
    if has_digit {
        return word.to_string();
    }
    if word.chars().any(is_cyrillic) {
        RUSSIAN
            .get_or_init(|| Stemmer::create(Algorithm::Russian))
            .stem(word)
            .into_owned()
    } else if word
        .chars()
        .all(|character| character.is_ascii_alphabetic())
    {
        ENGLISH
            .get_or_init(|| Stemmer::create(Algorithm::English))
            .stem(word)
            .into_owned()
    } else {
        word.to_string()
    }
}

/// The stems of a text, in order, for indexing.
pub fn stems(text: &str) -> Vec<String> {
    words(&normalize(text)).map(stem).collect()
}

/// The general vocabulary that turns a prospect's words into the KB's: loaded once from the data files.
pub struct Lexicon {
    /// Colloquial word or abbreviation → standard words (empty: a filler word). Each entry is a
    /// group of alternatives: one question term that any of them matches.
    replacements: HashMap<String, Vec<Vec<String>>>,
    /// Colloquial phrases of several words ("been around", "пол года") → standard words, longest
    /// first: their meaning is not in any one of their words.
    phrases: Vec<(Vec<String>, Vec<Vec<String>>)>,
    /// Stem → the stems of its synonyms and translations.
    synonyms: HashMap<String, Vec<String>>,
    stopwords: HashSet<String>,
    stop_stems: HashSet<String>,
    /// Stems of the names of major cities and countries: a place the KB does not list is a
    /// generic "city", not a subject the KB knows nothing about.
    places: HashSet<String>,
}

impl Lexicon {
    pub fn shared() -> &'static Lexicon {
        static LEXICON_CELL: OnceLock<Lexicon> = OnceLock::new();
        LEXICON_CELL.get_or_init(|| Lexicon::parse(LEXICON, GLOSSARY, STOPWORDS))
    }

    fn parse(lexicon: &str, glossary: &str, stopwords: &str) -> Lexicon {
        let mut replacements = HashMap::new();
        let mut phrases = Vec::new();
        for line in data_lines_owned(lexicon) {
            let Some((colloquial, standard)) = line.split_once('=') else {
                continue;
            };
            // `a b` is a phrase of two terms; `a | b` one term with two alternatives.
            let standard: Vec<Vec<String>> = if standard.contains('|') {
                vec![words(&normalize(standard)).map(str::to_string).collect()]
            } else {
                words(&normalize(standard))
                    .map(|word| vec![word.to_string()])
                    .collect()
            };
            for word in colloquial.split(',') {
                let word = normalize(word.trim());
                let phrase: Vec<String> = words(&word).map(str::to_string).collect();
                if phrase.len() > 1 {
                    phrases.push((phrase, standard.clone()));
                } else if !word.is_empty() {
                    replacements.insert(word, standard.clone());
                }
            }
        }
        // The longest phrase wins where two start at one word.
        phrases.sort_by_key(|(phrase, _): &(Vec<String>, Vec<Vec<String>>)| {
            std::cmp::Reverse(phrase.len())
        });
        let mut synonyms: HashMap<String, Vec<String>> = HashMap::new();
        for line in data_lines_owned(glossary) {
            let group: Vec<String> = line
                .split(',')
                .map(|term| stems(term.trim()).join(" "))
                .filter(|term| !term.is_empty() && !term.contains(' '))
                .collect();
            for term in &group {
                let entry = synonyms.entry(term.clone()).or_default();
                for other in &group {
                    if other != term && !entry.contains(other) {
                        entry.push(other.clone());
                    }
                }
            }
        }
        // A place's Russian and English names answer for each other, like glossary words.
        for line in data_lines_owned(PLACES) {
            let group: Vec<String> = line
                .split(',')
                .map(|name| stems(name.trim()).join(" "))
                .filter(|name| !name.is_empty() && !name.contains(' '))
                .collect();
            for name in &group {
                let entry = synonyms.entry(name.clone()).or_default();
                for other in &group {
                    if other != name && !entry.contains(other) {
                        entry.push(other.clone());
                    }
                }
            }
        }
        let stopwords: HashSet<String> = data_lines_owned(stopwords)
            .flat_map(|line| {
                words(&normalize(line))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        let stop_stems = stopwords.iter().map(|word| stem(word)).collect();
        let places = data_lines_owned(PLACES)
            .flat_map(|line| line.split(','))
            .map(|name| stems(name.trim()).join(" "))
            .filter(|name| !name.is_empty() && !name.contains(' '))
            .collect();
        Lexicon {
            replacements,
            phrases,
            synonyms,
            stopwords,
            stop_stems,
            places,
        }
    }

    /// The standard words for a colloquial phrase starting at the first of `words`, with the
    /// number of words it spans.
    pub fn phrase_at(&self, words: &[&str]) -> Option<(usize, &[Vec<String>])> {
        self.phrases.iter().find_map(|(phrase, standard)| {
            (words.len() >= phrase.len()
                && phrase
                    .iter()
                    .zip(words)
                    .all(|(expected, word)| expected == word))
            .then_some((phrase.len(), standard.as_slice()))
        })
    }

    /// The standard words for a colloquial one, if the lexicon knows it.
    pub fn replacement(&self, word: &str) -> Option<&[Vec<String>]> {
        self.replacements.get(word).map(Vec::as_slice)
    }

    pub fn synonyms(&self, stem: &str) -> &[String] {
        self.synonyms.get(stem).map_or(&[], Vec::as_slice)
    }

    /// Whether a stem names a major city or country.
    pub fn is_place(&self, stem: &str) -> bool {
        self.places.contains(stem)
    }

    pub fn is_stopword(&self, word: &str) -> bool {
        self.stopwords.contains(word) || self.stop_stems.contains(&stem(word))
    }
}

fn data_lines_owned(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// One content word of a question with every stem that counts as a match for it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTerm {
    /// The word as the prospect wrote it (normalised), for diagnostics.
    pub word: String,
    /// The word's own stem first, then lexicon and glossary alternatives.
    pub alternatives: Vec<String>,
    /// A name-like word (Latin inside a Russian question, or letters with digits): when the KB
    /// never mentions it, the question is about something the KB does not cover.
    pub is_name_like: bool,
    /// The word names a major city or country (from the gazetteer).
    pub is_place: bool,
}

/// What a question asks for, beyond its content words.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzedQuestion {
    pub terms: Vec<QueryTerm>,
    /// "How much", "how many", "price": an answer with a figure is preferred.
    pub wants_number: bool,
    /// "How much", "price", "cost": an answer with a money figure is preferred.
    pub wants_price: bool,
    /// "What is the difference", "X or Y", "X vs Y": table rows where the compared columns
    /// differ answer best.
    pub wants_comparison: bool,
}

/// Stems of words that only say "differ", dropped from a question's terms.
const DIFFERENCE_WORDS: &[&str] = &["отлича", "отлич", "разниц", "differ", "vs", "versus"];

/// Stems and words that ask to compare two things.
const COMPARISON_CUES: &[&str] = &[
    "отлича",
    "отлич",
    "разниц",
    "сравн",
    "или",
    "vs",
    "versus",
    "differ",
    "compar",
    "or",
    "между",
    "between",
    "против",
];

const PRICE_CUES: &[&str] = &[
    "цена",
    "цен",
    "стоимост",
    "стоит",
    "стоят",
    "почем",
    "price",
    "cost",
    "прайс",
];

const NUMBER_CUES: &[&str] = &[
    "сколько",
    "скольк",
    "цена",
    "стоимость",
    "стоит",
    "почем",
    "how",
    "price",
    "cost",
    "much",
    "many",
    "long",
    "often",
    "когда",
    "какая",
    "какой",
    "срок",
    "лимит",
    "limit",
    "скидка",
];

/// Splits a question into content terms with their alternatives.
pub fn analyze_question(question: &str) -> AnalyzedQuestion {
    let lexicon = Lexicon::shared();
    let normalized = normalize(question);
    let has_cyrillic = normalized.chars().any(is_cyrillic);
    let mut analyzed = AnalyzedQuestion::default();
    let mut seen = HashSet::new();
    let tokens: Vec<&str> = words(&normalized).collect();
    let mut position = 0;
    while position < tokens.len() {
        // An ordinal written with digits ("4й", "2х") is its number.
        let word = strip_ordinal_suffix(tokens[position]);
        let phrase = lexicon.phrase_at(&tokens[position..]);
        position += phrase.map_or(1, |(length, _)| length);
        let groups: Vec<Vec<String>> = match phrase
            .map(|(_, standard)| standard)
            .or_else(|| lexicon.replacement(word))
        {
            Some(standard) => standard.to_vec(),
            None => vec![vec![word.to_string()]],
        };
        for standard in groups.iter().flatten() {
            if NUMBER_CUES.iter().any(|cue| standard.starts_with(cue)) {
                analyzed.wants_number = true;
            }
            if PRICE_CUES.iter().any(|cue| standard.starts_with(cue)) {
                analyzed.wants_price = true;
            }
        }
        let replaced = phrase.is_some() || lexicon.replacement(word).is_some();
        // "Differs" names no subject: as a term it finds sentences about differences in
        // general ("the main differences are:") and misspelt look-alikes, not the compared rows.
        if is_cue(word, DIFFERENCE_WORDS) {
            continue;
        }
        for group in groups {
            let Some(standard) = group.first().cloned() else {
                continue;
            };
            if lexicon.is_stopword(&standard) {
                continue;
            }
            // Single letters and one-digit numbers carry no subject ("3 склада" keeps "склад").
            if standard.chars().count() < 2 {
                continue;
            }
            let own_stem = stem(&standard);
            if !seen.insert(own_stem.clone()) {
                continue;
            }
            let mut alternatives = vec![own_stem.clone()];
            for member in &group {
                let member_stem = stem(member);
                for candidate in std::iter::once(&member_stem).chain(lexicon.synonyms(&member_stem))
                {
                    if !alternatives.contains(candidate) {
                        alternatives.push(candidate.clone());
                    }
                }
            }
            let has_letter = standard.chars().any(char::is_alphabetic);
            let has_digit = standard.chars().any(|character| character.is_ascii_digit());
            let is_latin = standard
                .chars()
                .all(|character| character.is_ascii_alphanumeric());
            let is_name_like = !replaced
                && ((has_letter && has_digit) || (has_cyrillic && is_latin && has_letter));
            let is_place = lexicon.is_place(&own_stem);
            analyzed.terms.push(QueryTerm {
                word: standard,
                alternatives,
                is_name_like: is_name_like && !is_place,
                is_place,
            });
        }
    }
    analyzed.wants_comparison = tokens.iter().any(|token| is_cue(token, COMPARISON_CUES));
    // "How much is it" without a price word: "сколько" alone asks for a count as often.
    if normalized.contains("how much") || normalized.contains("сколько стои") {
        analyzed.wants_price = true;
    }
    analyzed
}

/// Whether a word is one of the cues: the word itself for short cues ("or", "vs"), its stem's
/// beginning for longer ones ("отлича" for "отличается").
fn is_cue(word: &str, cues: &[&str]) -> bool {
    let word_stem = stem(word);
    cues.iter()
        .any(|cue| word == *cue || (cue.chars().count() >= 5 && word_stem.starts_with(cue)))
}

/// "4й", "10го", "2х" → "4", "10", "2"; other words as they are.
fn strip_ordinal_suffix(word: &str) -> &str {
    let digits_end = word
        .char_indices()
        .find(|(_, character)| !character.is_ascii_digit())
        .map_or(word.len(), |(position, _)| position);
    if digits_end == 0 || digits_end == word.len() {
        return word;
    }
    const SUFFIXES: &[&str] = &[
        "й", "я", "е", "х", "ю", "м", "го", "му", "ми", "ий", "ый", "ой", "ая", "ое", "ых", "ом",
        "th", "st", "nd", "rd",
    ];
    if SUFFIXES.contains(&&word[digits_end..]) {
        &word[..digits_end]
    } else {
        word
    }
}

/// The Levenshtein distance between two words, stopping early past `limit`.
pub fn edit_distance_within(left: &str, right: &str, limit: usize) -> Option<usize> {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    if left.len().abs_diff(right.len()) > limit {
        return None;
    }
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (row, left_char) in left.iter().enumerate() {
        let mut current = vec![row + 1; right.len() + 1];
        for (column, right_char) in right.iter().enumerate() {
            let substitution = previous[column] + usize::from(left_char != right_char);
            current[column + 1] = substitution
                .min(previous[column + 1] + 1)
                .min(current[column] + 1);
        }
        if current.iter().min().copied().unwrap_or(0) > limit {
            return None;
        }
        previous = current;
    }
    let distance = previous[right.len()];
    (distance <= limit).then_some(distance)
}

/// A Latin word spelt in Cyrillic ("paletta" → "палетта"), so that a name written either way is
/// found; `None` for words that are not plain Latin.
pub fn latin_to_cyrillic(word: &str) -> Option<String> {
    if word.is_empty() || !word.chars().all(|character| character.is_ascii_lowercase()) {
        return None;
    }
    const PAIRS: &[(&str, &str)] = &[
        ("shch", "щ"),
        ("sch", "щ"),
        ("zh", "ж"),
        ("kh", "х"),
        ("ts", "ц"),
        ("ch", "ч"),
        ("sh", "ш"),
        ("yu", "ю"),
        ("ya", "я"),
        ("yo", "е"),
        ("ye", "е"),
        ("a", "а"),
        ("b", "б"),
        ("v", "в"),
        ("g", "г"),
        ("d", "д"),
        ("e", "е"),
        ("z", "з"),
        ("i", "и"),
        ("y", "и"),
        ("k", "к"),
        ("l", "л"),
        ("m", "м"),
        ("n", "н"),
        ("o", "о"),
        ("p", "п"),
        ("r", "р"),
        ("s", "с"),
        ("t", "т"),
        ("u", "у"),
        ("f", "ф"),
        ("h", "х"),
        ("c", "к"),
        ("w", "в"),
        ("x", "кс"),
        ("q", "к"),
        ("j", "дж"),
    ];
    let mut rest = word;
    let mut cyrillic = String::new();
    'outer: while !rest.is_empty() {
        for (latin, letter) in PAIRS {
            if let Some(after) = rest.strip_prefix(latin) {
                cyrillic.push_str(letter);
                rest = after;
                continue 'outer;
            }
        }
        return None;
    }
    Some(cyrillic)
}

/// Whether a Russian word looks like a verb or participle by its ending: such words ("падают",
/// "дорабатывать") rarely name what a question is about, unlike nouns ("мегамаркет").
pub fn looks_like_russian_verb(word: &str) -> bool {
    const ENDINGS: &[&str] = &[
        "ть", "ться", "тся", "ете", "ите", "ает", "яет", "ует", "ют", "ят", "ем", "ишь", "ешь",
        "ал", "ала", "али", "ил", "ила", "или", "ся", "сь", "ти", "ут", "ит", "щая", "щий", "щее",
        "щие", "нный", "нная",
    ];
    word.chars().any(is_cyrillic) && ENDINGS.iter().any(|ending| word.ends_with(ending))
}

/// A Russian word spelt in Latin ("андроид" → "android"), the other way round from [`latin_to_cyrillic`].
pub fn cyrillic_to_latin(word: &str) -> Option<String> {
    if word.is_empty() || !word.chars().all(is_cyrillic) {
        return None;
    }
    let mut latin = String::new();
    for character in word.chars() {
        let letters = match character {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' => "g",
            'д' => "d",
            'е' | 'ё' | 'э' => "e",
            'ж' => "zh",
            'з' => "z",
            'и' => "i",
            'й' => "y",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'о' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ф' => "f",
            'х' => "kh",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ы' => "y",
            'ю' => "yu",
            'я' => "ya",
            'ь' | 'ъ' => "",
            _ => return None,
        };
        latin.push_str(letters);
    }
    Some(latin)
}
