//! `closer eval`: runs an evaluation set (the format of `shared/eval/README.md`) through the
//! real engine and store on a fresh database, scores it, and prints the figures.
//!
//! The scoring follows the set's README to the letter, and `--json` writes every answer and
//! every dialog's outcome so that anyone can score a run independently.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use closer_engine::Engine;
use closer_model::{Channel, InboundContent, InboundMessage, Lead, ReplyKind};
use closer_store::Store;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{expose, Config};

/// An answer longer than this counts as wrong: a prospect in a messenger wants an answer.
pub const MAX_ANSWER_CHARS: usize = 400;

/// The arguments of `closer eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The knowledge-base folder of the set.
    #[arg(long)]
    pub kb: PathBuf,
    /// Questions, one JSON object per line.
    #[arg(long)]
    pub questions: Option<PathBuf>,
    /// Scripted dialogs, one JSON object per line.
    #[arg(long)]
    pub dialogs: Option<PathBuf>,
    /// Write one JSON line per question and per dialog to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Fail when answer accuracy is below this fraction (0.85) or percentage (85).
    #[arg(long)]
    pub min_accuracy: Option<f64>,
    /// Fail when the dialog pass rate is below this fraction or percentage.
    #[arg(long)]
    pub min_dialogs: Option<f64>,
    /// Print every wrong answer and failed dialog.
    #[arg(long, short)]
    pub verbose: bool,
    /// Who answers product questions: the built-in retriever, or the AnythingLLM workspace of
    /// `[anythingllm]` (the built-in one standing in when it fails), to compare them.
    #[arg(long, value_enum, default_value_t = AnswerSourceArg::Builtin)]
    pub answers: AnswerSourceArg,
    /// With `--answers anythingllm`: first make the workspace hold exactly the set's knowledge
    /// base (`kb sync`; documents an earlier sync pushed are replaced).
    #[arg(long)]
    pub sync_workspace: bool,
    /// With `--answers anythingllm`: the deadline per answer in milliseconds, instead of the
    /// configured one (a language model may need more than a chat user waits).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
}

/// The answer source `closer eval` runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnswerSourceArg {
    Builtin,
    Anythingllm,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub id: String,
    pub lang: String,
    pub question: String,
    pub kind: String,
    #[serde(default)]
    pub expect_all: Vec<String>,
    #[serde(default)]
    pub expect_any: Option<Vec<String>>,
    #[serde(default)]
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dialog {
    pub id: String,
    pub lang: String,
    pub turns: Vec<String>,
    pub expect: DialogExpectation,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DialogExpectation {
    pub lead: bool,
    #[serde(default)]
    pub contact: ExpectedContact,
    #[serde(default)]
    pub interest: Vec<String>,
    #[serde(default)]
    pub objections: Vec<String>,
    #[serde(default)]
    pub handoff: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExpectedContact {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
}

/// One line of `--json` for a question.
#[derive(Debug, Serialize)]
struct QuestionRecord<'a> {
    r#type: &'static str,
    id: &'a str,
    answer: &'a str,
    sources: &'a [String],
    declined: bool,
    latency_ms: f64,
}

/// One line of `--json` for a dialog.
#[derive(Debug, Serialize)]
struct DialogRecord<'a> {
    r#type: &'static str,
    id: &'a str,
    replies: &'a [String],
    lead: Option<LeadRecord>,
    objections: &'a [String],
    handoff: bool,
}

/// The lead's fields, as `--json` writes them and the scorer reads them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LeadRecord {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub summary: String,
}

impl From<&Lead> for LeadRecord {
    fn from(lead: &Lead) -> Self {
        let contact = &lead.details.contact;
        LeadRecord {
            name: contact.name.clone(),
            phone: contact.phone.as_ref().map(ToString::to_string),
            email: contact.email.as_ref().map(ToString::to_string),
            company: contact.company.clone(),
            summary: lead.details.summary.clone(),
        }
    }
}

/// What the assistant answered to one question.
#[derive(Debug, Clone)]
pub struct AnswerOutcome {
    pub answer: String,
    pub sources: Vec<String>,
    pub declined: bool,
    /// The documents of the first three passages retrieval found (kind `retrieval` only).
    pub retrieved: Vec<String>,
}

/// What became of one dialog.
#[derive(Debug, Clone)]
pub struct DialogOutcome {
    pub lead: Option<LeadRecord>,
    pub objections: Vec<String>,
    pub handoff: bool,
}

/// Lower case, `ё` read as `е`, and every character that is not a letter or a digit removed.
pub fn normalise(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|ch| if ch == 'ё' { 'е' } else { ch })
        .filter(|ch| ch.is_alphanumeric())
        .collect()
}

/// Scores one answer by the README's rules.
pub fn answer_is_correct(question: &Question, outcome: &AnswerOutcome) -> bool {
    if outcome.answer.chars().count() > MAX_ANSWER_CHARS {
        return false;
    }
    match question.kind.as_str() {
        "unanswerable" => outcome.declined,
        // One answer per document: the right one must be among the first three found.
        "retrieval" => question
            .sources
            .iter()
            .any(|source| outcome.retrieved.contains(source)),
        "smalltalk" => {
            !outcome.declined && outcome.sources.is_empty() && !outcome.answer.trim().is_empty()
        }
        _ => {
            let answer = normalise(&outcome.answer);
            let all = question
                .expect_all
                .iter()
                .all(|expected| answer.contains(&normalise(expected)));
            let any = match &question.expect_any {
                Some(options) if !options.is_empty() => options
                    .iter()
                    .any(|expected| answer.contains(&normalise(expected))),
                _ => true,
            };
            all && any && !outcome.declined
        }
    }
}

/// Scores one dialog by the README's rules; returns the reasons it failed (empty: passed).
pub fn dialog_failures(dialog: &Dialog, outcome: &DialogOutcome) -> Vec<String> {
    let expect = &dialog.expect;
    let mut failures = Vec::new();
    match (&outcome.lead, expect.lead) {
        (None, true) => failures.push("no lead was created".to_owned()),
        (Some(_), false) => {
            failures.push("a lead was created although none was expected".to_owned())
        }
        _ => {}
    }
    if let Some(lead) = &outcome.lead {
        let digits = |text: &str| {
            text.chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        };
        let checks = [
            (
                "name",
                &expect.contact.name,
                &lead.name,
                normalise as fn(&str) -> String,
            ),
            (
                "phone",
                &expect.contact.phone,
                &lead.phone,
                digits as fn(&str) -> String,
            ),
            (
                "email",
                &expect.contact.email,
                &lead.email,
                normalise as fn(&str) -> String,
            ),
            (
                "company",
                &expect.contact.company,
                &lead.company,
                normalise as fn(&str) -> String,
            ),
        ];
        for (field, expected, actual, canonical) in checks {
            if let Some(expected) = expected {
                let matches = actual
                    .as_deref()
                    .is_some_and(|actual| canonical(actual) == canonical(expected));
                if !matches {
                    failures.push(format!("{field}: expected {expected:?}, got {actual:?}"));
                }
            }
        }
        let summary = normalise(&lead.summary);
        for word in &expect.interest {
            if !summary.contains(&normalise(word)) {
                failures.push(format!(
                    "interest {word:?} not in the summary {:?}",
                    lead.summary
                ));
            }
        }
    }
    for kind in &expect.objections {
        if !outcome.objections.contains(kind) {
            failures.push(format!(
                "objection {kind:?} not recognised (saw {:?})",
                outcome.objections
            ));
        }
    }
    if let Some(handoff) = expect.handoff {
        if handoff != outcome.handoff {
            failures.push(format!(
                "hand-off expected {handoff}, was {}",
                outcome.handoff
            ));
        }
    }
    failures
}

/// Reads a JSON-lines file, naming the file and line of a bad line.
fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a valid line", path.display(), number + 1))
        })
        .collect()
}

/// Runs the set on a fresh database that is dropped afterwards, prints the report, and fails
/// when a threshold is not met.
///
/// # Errors
/// The set cannot be read, the database cannot be created, or a threshold is missed.
pub async fn run(config: &Config, args: &EvalArgs) -> anyhow::Result<()> {
    let questions: Vec<Question> = match &args.questions {
        Some(path) => read_jsonl(path)?,
        None => Vec::new(),
    };
    let dialogs: Vec<Dialog> = match &args.dialogs {
        Some(path) => read_jsonl(path)?,
        None => Vec::new(),
    };
    if questions.is_empty() && dialogs.is_empty() {
        bail!("nothing to evaluate: give --questions and/or --dialogs");
    }

    let (base_url, _) = config.database_url()?;
    let database_url = fresh_database_url(expose(&base_url))?;
    let shown = closer_store::redact_url(&database_url);
    closer_store::ensure_database(&database_url)
        .await
        .map_err(|error| {
            anyhow::anyhow!("cannot create the evaluation database {shown}: {error}")
        })?;
    let cache = embeddings_cache(expose(&base_url)).await;
    let result = run_on(config, args, &database_url, cache, &questions, &dialogs).await;
    if let Err(error) = closer_store::drop_database(&database_url).await {
        eprintln!("could not drop the evaluation database {shown}: {error}");
    }
    let report = result?;
    report.print();
    report.check(args)
}

/// The store whose embeddings cache the evaluation uses: the configured database's, so that a
/// set evaluated again (CI, a tuning session) embeds nothing unchanged; `None` when it cannot be
/// had, and the throwaway evaluation database caches instead.
async fn embeddings_cache(base_url: &str) -> Option<Store> {
    closer_store::ensure_database(base_url).await.ok()?;
    let store = Store::connect(base_url, 2).await.ok()?;
    store.migrate().await.ok()?;
    Some(store)
}

async fn run_on(
    config: &Config,
    args: &EvalArgs,
    database_url: &str,
    cache: Option<Store>,
    questions: &[Question],
    dialogs: &[Dialog],
) -> anyhow::Result<Report> {
    let store = Store::connect(database_url, 4).await?;
    store.migrate().await?;
    let scanned = closer_knowledge::read_dir(&args.kb, |_, _| {})
        .with_context(|| format!("while reading the knowledge base {}", args.kb.display()))?;
    for skipped in &scanned.skipped {
        eprintln!("skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    store.sync_documents(&scanned.documents).await?;
    let model = crate::embeddings::model(&config.knowledge.embeddings).await;
    eprintln!(
        "Retrieval: {}.",
        model
            .as_ref()
            .map_or("keywords alone".to_owned(), |model| format!(
                "keywords and meaning ({})",
                model.id()
            ))
    );
    let retriever = closer_engine::index::build_retriever(
        cache.as_ref().unwrap_or(&store),
        scanned.documents.clone(),
        &config.knowledge.retriever,
        model,
        crate::embeddings::progress(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    )
    .await?;
    let dialog_config = closer_dialog::DialogConfig::from_toml_str(&config.playbook_text()?)?;
    let mut engine = Engine::new(store.clone(), dialog_config, retriever, Vec::new());
    if args.answers == AnswerSourceArg::Anythingllm {
        let mut setup = config
            .anythingllm()?
            .context("--answers anythingllm needs an [anythingllm] section in the configuration")?;
        if let Some(deadline_ms) = args.deadline_ms {
            setup.policy.deadline = Duration::from_millis(deadline_ms.max(1));
        }
        if args.sync_workspace {
            let mut sync_settings = setup.settings.clone();
            sync_settings.request_timeout = setup.sync_timeout;
            let client = closer_knowledge::anythingllm::AnythingLlm::new(&sync_settings)?;
            let report = closer_engine::kb_sync::sync_workspace(
                &store,
                &client,
                engine.dialog_config(),
                |_, _, _| {},
            )
            .await
            .context("while pushing the set's knowledge base to AnythingLLM")?;
            eprintln!(
                "AnythingLLM workspace {:?}: {} documents pushed, {} earlier ones removed.",
                client.workspace_slug(),
                report.added.len(),
                report.strays_removed
            );
        }
        let client = closer_knowledge::anythingllm::AnythingLlm::new(&setup.settings)?;
        eprintln!(
            "Answers from AnythingLLM (workspace {:?}, deadline {} ms).",
            client.workspace_slug(),
            setup.policy.deadline.as_millis()
        );
        engine = engine.with_answer_source(std::sync::Arc::new(client), setup.policy);
    }
    // The playbook's examples are embedded before the clock starts, as `serve` does at start.
    engine.prepare_meaning().await;

    let mut json = match &args.json {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("while creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut report = Report::default();
    let run_id = Uuid::new_v4().simple().to_string();

    for question in questions {
        let started = Instant::now();
        let handled = engine
            .handle(&message(
                &format!("{run_id}-q-{}", question.id),
                0,
                &question.question,
            ))
            .await?;
        let latency = started.elapsed();
        report.latencies.push(latency);
        let outcome = AnswerOutcome {
            answer: handled
                .replies
                .iter()
                .map(|reply| reply.text.as_str())
                .collect::<Vec<_>>()
                .join("\n\n"),
            sources: handled
                .replies
                .iter()
                .flat_map(|reply| {
                    reply
                        .citations
                        .iter()
                        .map(|citation| citation.source.clone())
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            declined: handled
                .replies
                .iter()
                .any(|reply| reply.kind == ReplyKind::Declined),
            retrieved: if question.kind == "retrieval" {
                engine
                    .knowledge()
                    .search(
                        &question.question,
                        closer_knowledge::AudienceFilter::PublicOnly,
                        3,
                    )
                    .into_iter()
                    .map(|passage| passage.source)
                    .collect()
            } else {
                Vec::new()
            },
        };
        let correct = answer_is_correct(question, &outcome);
        report.record_question(question, &outcome, correct);
        if args.verbose && !correct {
            println!(
                "WRONG {} [{} {}] {:?}\n  expected all {:?} any {:?} from {:?}\n  answer ({}{}): {}\n",
                question.id,
                question.kind,
                question.lang,
                question.question,
                question.expect_all,
                question.expect_any,
                question.sources,
                if outcome.declined { "declined, " } else { "" },
                outcome.sources.join(", "),
                outcome.answer.replace('\n', " / ")
            );
        }
        if let Some(out) = json.as_mut() {
            let record = QuestionRecord {
                r#type: "question",
                id: &question.id,
                answer: &outcome.answer,
                sources: &outcome.sources,
                declined: outcome.declined,
                latency_ms: latency.as_secs_f64() * 1000.0,
            };
            serde_json::to_writer(&mut *out, &record)?;
            writeln!(out)?;
        }
    }

    for dialog in dialogs {
        let chat_id = format!("{run_id}-d-{}", dialog.id);
        let mut replies = Vec::new();
        let mut conversation_id = None;
        for (number, turn) in dialog.turns.iter().enumerate() {
            let started = Instant::now();
            let handled = engine.handle(&message(&chat_id, number, turn)).await?;
            report.latencies.push(started.elapsed());
            conversation_id = conversation_id.or(handled.conversation_id);
            replies.push(
                handled
                    .replies
                    .iter()
                    .map(|reply| reply.text.as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            );
        }
        let lead = match conversation_id {
            Some(id) => store.lead_for_conversation(id).await?,
            None => None,
        };
        let state = match store.conversation_by_chat(Channel::Eval, &chat_id).await? {
            Some(record) => serde_json::from_value::<closer_dialog::DialogState>(record.state)
                .unwrap_or_default(),
            None => closer_dialog::DialogState::default(),
        };
        let objections: Vec<String> = state
            .objections()
            .iter()
            .map(|kind| kind.as_str().to_owned())
            .collect();
        let outcome = DialogOutcome {
            lead: lead.as_ref().map(LeadRecord::from),
            objections,
            handoff: state.handed_off(),
        };
        let failures = dialog_failures(dialog, &outcome);
        report.record_dialog(dialog, &outcome, failures.is_empty());
        if args.verbose && !failures.is_empty() {
            println!(
                "FAILED {} [{}]: {}",
                dialog.id,
                dialog.lang,
                failures.join("; ")
            );
            // Each turn with what it was nearest to by meaning, so a miss shows where it
            // comes from.
            for turn in &dialog.turns {
                let meaning = match engine.compare_meaning(turn).await {
                    Some((nearest, recognised)) => format!(
                        "{} {:.3} (+{:.3}){}",
                        nearest.intent.as_str(),
                        nearest.similarity,
                        nearest.margin,
                        if recognised.is_empty() {
                            String::new()
                        } else {
                            let names: Vec<&str> =
                                recognised.iter().map(|intent| intent.as_str()).collect();
                            format!(" ✓ {}", names.join(", "))
                        }
                    ),
                    None => "-".to_owned(),
                };
                println!("  > {turn}\n      [{meaning}]");
            }
            println!();
        }
        if let Some(out) = json.as_mut() {
            let record = DialogRecord {
                r#type: "dialog",
                id: &dialog.id,
                replies: &replies,
                lead: outcome.lead.clone(),
                objections: &outcome.objections,
                handoff: outcome.handoff,
            };
            serde_json::to_writer(&mut *out, &record)?;
            writeln!(out)?;
        }
    }
    if let Some(mut out) = json {
        out.flush()?;
    }
    Ok(report)
}

fn message(chat_id: &str, number: usize, text: &str) -> InboundMessage {
    InboundMessage {
        channel: Channel::Eval,
        chat_id: chat_id.to_owned(),
        platform_message_id: format!("{chat_id}-{number}"),
        sender_name: None,
        content: InboundContent::Text {
            text: text.to_owned(),
        },
        received_at: Utc::now(),
    }
}

/// The URL of a new, uniquely named database on the same server as `base`.
fn fresh_database_url(base: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(base).context("the database URL is not a valid URL")?;
    url.set_path(&format!(
        "closer_eval_{}",
        &Uuid::new_v4().simple().to_string()[..12]
    ));
    Ok(url.to_string())
}

/// A fraction out of a count.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    passed: usize,
    total: usize,
}

impl Tally {
    fn add(&mut self, passed: bool) {
        self.total += 1;
        self.passed += usize::from(passed);
    }

    fn rate(self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.passed as f64 / self.total as f64
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:5.1}%  ({}/{})",
            self.rate() * 100.0,
            self.passed,
            self.total
        )
    }
}

#[derive(Debug, Default)]
struct Report {
    answers: Tally,
    by_kind: BTreeMap<String, Tally>,
    by_lang: BTreeMap<String, Tally>,
    declined_correctly: Tally,
    /// Answerable questions the assistant declined.
    false_declines: usize,
    dialogs: Tally,
    dialogs_by_lang: BTreeMap<String, Tally>,
    /// Dialogs that should end with a lead and did.
    conversion: Tally,
    /// Leads created for a dialog that should not have one.
    false_leads: usize,
    latencies: Vec<Duration>,
    /// The length in characters of every answer given (declines and small talk aside).
    answer_lengths: Vec<usize>,
}

/// The value at `fraction` of the sorted values (nearest rank), 0 for none.
fn nearest_rank<T: Copy + Default>(sorted: &[T], fraction: f64) -> T {
    match sorted.len() {
        0 => T::default(),
        len => sorted[((len as f64 * fraction).ceil() as usize).clamp(1, len) - 1],
    }
}

impl Report {
    fn record_question(&mut self, question: &Question, outcome: &AnswerOutcome, correct: bool) {
        self.answers.add(correct);
        self.by_kind
            .entry(question.kind.clone())
            .or_default()
            .add(correct);
        self.by_lang
            .entry(question.lang.clone())
            .or_default()
            .add(correct);
        if !outcome.declined && question.kind != "smalltalk" && !outcome.answer.is_empty() {
            self.answer_lengths.push(outcome.answer.chars().count());
        }
        if question.kind == "unanswerable" {
            self.declined_correctly.add(outcome.declined);
        } else if question.kind != "smalltalk" && outcome.declined {
            self.false_declines += 1;
        }
    }

    fn record_dialog(&mut self, dialog: &Dialog, outcome: &DialogOutcome, passed: bool) {
        self.dialogs.add(passed);
        self.dialogs_by_lang
            .entry(dialog.lang.clone())
            .or_default()
            .add(passed);
        if dialog.expect.lead {
            self.conversion.add(outcome.lead.is_some());
        } else if outcome.lead.is_some() {
            self.false_leads += 1;
        }
    }

    fn percentile(&self, fraction: f64) -> f64 {
        let mut sorted: Vec<f64> = self
            .latencies
            .iter()
            .map(|latency| latency.as_secs_f64() * 1000.0)
            .collect();
        sorted.sort_by(f64::total_cmp);
        nearest_rank(&sorted, fraction)
    }

    fn print(&self) {
        println!("Answers");
        println!("  accuracy            {}", self.answers);
        for (kind, tally) in &self.by_kind {
            println!("    {kind:<17} {tally}");
        }
        for (lang, tally) in &self.by_lang {
            println!("    lang {lang:<12} {tally}");
        }
        println!("  declined correctly  {}", self.declined_correctly);
        println!("  false declines      {}", self.false_declines);
        let mut lengths = self.answer_lengths.clone();
        lengths.sort_unstable();
        println!(
            "  answer length       p50 {} p95 {} max {} characters ({} answers)",
            nearest_rank(&lengths, 0.50),
            nearest_rank(&lengths, 0.95),
            lengths.last().copied().unwrap_or_default(),
            lengths.len()
        );
        println!("Dialogs");
        println!("  passed              {}", self.dialogs);
        for (lang, tally) in &self.dialogs_by_lang {
            println!("    lang {lang:<12} {tally}");
        }
        println!("  lead conversion     {}", self.conversion);
        println!("  unexpected leads    {}", self.false_leads);
        println!(
            "Latency per answer (engine and store, {} answers)",
            self.latencies.len()
        );
        println!(
            "  p50 {:.1} ms   p95 {:.1} ms   p99 {:.1} ms",
            self.percentile(0.50),
            self.percentile(0.95),
            self.percentile(0.99)
        );
    }

    fn check(&self, args: &EvalArgs) -> anyhow::Result<()> {
        let as_fraction = |value: f64| if value > 1.0 { value / 100.0 } else { value };
        if let Some(minimum) = args.min_accuracy.map(as_fraction) {
            if self.answers.total > 0 && self.answers.rate() < minimum {
                bail!(
                    "answer accuracy {:.1}% is below --min-accuracy {:.1}%",
                    self.answers.rate() * 100.0,
                    minimum * 100.0
                );
            }
        }
        if let Some(minimum) = args.min_dialogs.map(as_fraction) {
            if self.dialogs.total > 0 && self.dialogs.rate() < minimum {
                bail!(
                    "dialog pass rate {:.1}% is below --min-dialogs {:.1}%",
                    self.dialogs.rate() * 100.0,
                    minimum * 100.0
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(kind: &str, all: &[&str], any: Option<&[&str]>) -> Question {
        Question {
            id: "q".into(),
            lang: "ru".into(),
            question: "?".into(),
            kind: kind.into(),
            expect_all: all.iter().map(|s| s.to_string()).collect(),
            expect_any: any.map(|options| options.iter().map(|s| s.to_string()).collect()),
            sources: vec![],
        }
    }

    fn answer(text: &str, declined: bool, sources: &[&str]) -> AnswerOutcome {
        AnswerOutcome {
            answer: text.into(),
            declined,
            sources: sources.iter().map(|s| s.to_string()).collect(),
            retrieved: Vec::new(),
        }
    }

    #[test]
    fn normalises_like_the_readme() {
        assert_eq!(normalise("49 900 ₽"), "49900");
        assert_eq!(normalise("Ёлка, PRO!"), "елкаpro");
        assert!(normalise("Стоит 49 900 рублей").contains(&normalise("49 900 ₽")));
    }

    #[test]
    fn scores_answers() {
        let price = question("price", &["49 900 ₽"], None);
        assert!(answer_is_correct(
            &price,
            &answer("Тариф стоит 49900 рублей.", false, &["a.md"])
        ));
        assert!(!answer_is_correct(
            &price,
            &answer("Тариф стоит 49900 рублей.", true, &["a.md"])
        ));
        assert!(!answer_is_correct(
            &price,
            &answer(&format!("49900 {}", "x".repeat(400)), false, &[])
        ));
        let any = question("fact", &["Бизнес"], Some(&["3", "три"]));
        assert!(answer_is_correct(
            &any,
            &answer("На тарифе Бизнес — до трёх... три склада", false, &[])
        ));
        assert!(!answer_is_correct(
            &any,
            &answer("На тарифе Бизнес", false, &[])
        ));
        let unanswerable = question("unanswerable", &[], None);
        assert!(answer_is_correct(
            &unanswerable,
            &answer("Не знаю, позвать менеджера?", true, &[])
        ));
        assert!(!answer_is_correct(
            &unanswerable,
            &answer("Да, есть.", false, &["a.md"])
        ));
        let smalltalk = question("smalltalk", &[], None);
        assert!(answer_is_correct(
            &smalltalk,
            &answer("Здравствуйте! Чем помочь?", false, &[])
        ));
        assert!(!answer_is_correct(
            &smalltalk,
            &answer("Здравствуйте!", false, &["a.md"])
        ));
    }

    #[test]
    fn scores_dialogs() {
        let dialog = Dialog {
            id: "d".into(),
            lang: "ru".into(),
            turns: vec![],
            expect: DialogExpectation {
                lead: true,
                contact: ExpectedContact {
                    phone: Some("+79215551234".into()),
                    name: Some("Марина Белова".into()),
                    ..Default::default()
                },
                interest: vec!["Ozon".into()],
                objections: vec!["price".into()],
                handoff: None,
            },
        };
        let good = DialogOutcome {
            lead: Some(LeadRecord {
                name: Some("марина белова".into()),
                phone: Some("+7 921 555 12 34".into()),
                summary: "Склад, продаём на Ozon".into(),
                ..Default::default()
            }),
            objections: vec!["price".into()],
            handoff: false,
        };
        assert_eq!(dialog_failures(&dialog, &good), Vec::<String>::new());
        let no_lead = DialogOutcome {
            lead: None,
            ..good.clone()
        };
        assert_eq!(
            dialog_failures(&dialog, &no_lead),
            vec!["no lead was created".to_owned()]
        );
        let wrong_phone = DialogOutcome {
            lead: Some(LeadRecord {
                phone: Some("+79215550000".into()),
                ..good.lead.clone().unwrap()
            }),
            ..good.clone()
        };
        assert_eq!(dialog_failures(&dialog, &wrong_phone).len(), 1);
    }

    #[test]
    fn fresh_database_urls_keep_the_server() {
        let url =
            fresh_database_url("postgres://u:p@db.example:5433/closer?sslmode=disable").unwrap();
        assert!(
            url.starts_with("postgres://u:p@db.example:5433/closer_eval_"),
            "{url}"
        );
        assert!(url.ends_with("?sslmode=disable"), "{url}");
    }
}
