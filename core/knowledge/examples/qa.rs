//! The quality harness: answers an evaluation set's questions and scores them by the eval README rules.
//!
//! `cargo run --release -p closer-knowledge --example qa -- <eval dir> [-v]`
//! or `... -- --kb <dir> --questions <file> [-v]`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use closer_knowledge::{read_dir, AudienceFilter, Retriever, RetrieverSettings};
use closer_model::Lang;

fn normalize(text: &str) -> String {
    text.to_lowercase()
        .replace('ё', "е")
        .chars()
        .filter(|character| character.is_alphanumeric())
        .collect()
}

/// Whether `text` holds every `expect_all` string and, when given, one `expect_any` string,
/// both sides normalised as the evaluation README says.
fn holds_expected(text: &str, expect_all: &[String], expect_any: &[String]) -> bool {
    let normalized = normalize(text);
    expect_all
        .iter()
        .all(|expected| normalized.contains(&normalize(expected)))
        && (expect_any.is_empty()
            || expect_any
                .iter()
                .any(|expected| normalized.contains(&normalize(expected))))
}

fn strings(value: &serde_json::Value, key: &str) -> Vec<String> {
    value[key]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The vectors of `texts`, from the cache file where they were embedded before.
fn cached_embeddings(
    model: &closer_embed::Model,
    texts: &[String],
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    use sha2::Digest;
    let dir = PathBuf::from("target/qa-embeddings");
    std::fs::create_dir_all(&dir)?;
    let dim = model.dim();
    let mut vectors = Vec::with_capacity(texts.len());
    let mut missing = Vec::new();
    for (index, text) in texts.iter().enumerate() {
        let key = hex::encode(sha2::Sha256::digest(format!("{}\n{text}", model.id())));
        let path = dir.join(key);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == dim * 4 => vectors.push(
                bytes
                    .chunks_exact(4)
                    .map(|four| f32::from_le_bytes([four[0], four[1], four[2], four[3]]))
                    .collect(),
            ),
            _ => {
                vectors.push(Vec::new());
                missing.push((index, path));
            }
        }
    }
    for batch in missing.chunks(32) {
        let batch_texts: Vec<&str> = batch
            .iter()
            .map(|(index, _)| texts[*index].as_str())
            .collect();
        for ((index, path), vector) in batch.iter().zip(model.embed_passages(&batch_texts)) {
            let bytes: Vec<u8> = vector
                .iter()
                .flat_map(|value| value.to_le_bytes())
                .collect();
            std::fs::write(path, bytes)?;
            vectors[*index] = vector;
        }
    }
    Ok(vectors)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let verbose = arguments.iter().any(|argument| argument == "-v");
    let mut kb_dir = None;
    let mut questions_file = None;
    let mut index = 0;
    while index < arguments.len() {
        match arguments[index].as_str() {
            "--kb" => {
                kb_dir = arguments.get(index + 1).map(PathBuf::from);
                index += 1;
            }
            "--questions" => {
                questions_file = arguments.get(index + 1).map(PathBuf::from);
                index += 1;
            }
            "-v" => {}
            dir => {
                kb_dir = Some(PathBuf::from(dir).join("kb"));
                questions_file = Some(PathBuf::from(dir).join("questions.jsonl"));
            }
        }
        index += 1;
    }
    let (Some(kb_dir), Some(questions_file)) = (kb_dir, questions_file) else {
        return Err("usage: qa <eval dir> | --kb <dir> --questions <file> [-v]".into());
    };
    let scanned = read_dir(&kb_dir, |_, _| {})?;
    for skipped in &scanned.skipped {
        println!("skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    let started = Instant::now();
    // `QA_SETTINGS='{"min_coverage":0.45}'` tries other settings without rebuilding.
    let settings: RetrieverSettings = match std::env::var("QA_SETTINGS") {
        Ok(json) => serde_json::from_str(&json)?,
        Err(_) => RetrieverSettings::default(),
    };
    let mut retriever = Retriever::build(&scanned.documents, &settings)?;
    // `QA_MODEL=path` (or `.models/e5-small-q4.bin`) adds sentence embeddings; `QA_MODEL=off`
    // leaves them out. Vectors are cached in `target/qa-embeddings/` by the text's hash.
    let model_path = std::env::var("QA_MODEL").unwrap_or_else(|_| ".models/e5-small-q4.bin".into());
    if model_path != "off" {
        let model = std::sync::Arc::new(closer_embed::Model::load(std::path::Path::new(
            &model_path,
        ))?);
        let texts = retriever.embedding_texts();
        let embedded_at = Instant::now();
        let vectors = cached_embeddings(&model, &texts)?;
        println!(
            "embedded {} units in {:?}",
            texts.len(),
            embedded_at.elapsed()
        );
        retriever = retriever.with_embeddings(model, &vectors)?;
    }
    // `QA_FEATURES=FILE` (with `QA_RANKS=1`) writes each candidate unit's ranking features and
    // whether it holds the expected answer, for fitting the ranking weights.
    let mut features_dump = std::env::var("QA_FEATURES")
        .ok()
        .map(std::fs::File::create)
        .transpose()?;
    let mut dump = std::env::var("QA_DUMP")
        .ok()
        .map(std::fs::File::create)
        .transpose()?;
    println!(
        "built {} documents, {} passages in {:?}",
        scanned.documents.len(),
        retriever.passage_count(),
        started.elapsed()
    );

    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut per_lang: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut correct, mut total, mut false_declines) = (0, 0, 0);
    let mut latencies = Vec::new();
    let mut lengths = Vec::new();
    for line in std::fs::read_to_string(&questions_file)?.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let question: serde_json::Value = serde_json::from_str(line)?;
        let kind = question["kind"].as_str().unwrap_or_default().to_string();
        if kind == "smalltalk" {
            continue;
        }
        let lang = Lang::parse(question["lang"].as_str().unwrap_or("ru")).unwrap_or_default();
        let text = question["question"].as_str().unwrap_or_default();
        let started = Instant::now();
        let answer = retriever.answer(text, lang, AudienceFilter::PublicOnly);
        latencies.push(started.elapsed());
        if let Some(answer) = &answer {
            lengths.push(answer.text.chars().count());
        }
        let expect_all = strings(&question, "expect_all");
        let expect_any = strings(&question, "expect_any");
        let is_correct = match (&answer, kind.as_str()) {
            (None, "unanswerable") => true,
            (Some(_), "unanswerable") | (None, _) => false,
            (Some(answer), _) => {
                answer.text.chars().count() <= 400
                    && holds_expected(&answer.text, &expect_all, &expect_any)
            }
        };
        if let Some(dump) = dump.as_mut() {
            use std::io::Write;
            let signals = retriever.signals(text, lang, AudienceFilter::PublicOnly);
            let sources = question["sources"].to_string();
            let cited = answer.as_ref().map(|answer| {
                answer
                    .citations
                    .iter()
                    .any(|citation| sources.contains(&citation.source))
            });
            writeln!(
                dump,
                "{}",
                serde_json::json!({
                    "id": question["id"], "kind": kind,
                    "answered": answer.is_some(), "correct": is_correct, "lang": lang.as_str(), "cited_right": cited,
                    "unknown_share": signals.map(|s| s.unknown_share),
                    "unknown_name": signals.map(|s| s.unknown_name),
                    "coverage": signals.map(|s| s.coverage),
                    "similarity": signals.map(|s| s.similarity),
                    "best_similarity": signals.map(|s| s.best_similarity),
                    "similarity_z": signals.map(|s| s.similarity_z),
                    "agreement": signals.map(|s| s.agreement),
                    "top_gap": signals.map(|s| s.top_gap),
                    "cross_language": signals.map(|s| s.cross_language),
                })
            )?;
        }
        if std::env::var_os("QA_RANKS").is_some() && kind != "unanswerable" {
            let ranked = retriever.ranked_units(text, lang);
            let holds = |unit: &str| holds_expected(unit, &expect_all, &expect_any);
            let by_score = ranked.iter().position(|(unit, _, _, _)| holds(unit));
            let mut by_meaning: Vec<_> = ranked.iter().collect();
            by_meaning.sort_by(|left, right| right.2.total_cmp(&left.2));
            let dense_rank = by_meaning.iter().position(|(unit, _, _, _)| holds(unit));
            if let Some(file) = features_dump.as_mut() {
                use std::io::Write;
                let units: Vec<_> = ranked
                    .iter()
                    .map(|(unit, _, _, features)| serde_json::json!({"gold": holds(unit), "f": features}))
                    .collect();
                writeln!(
                    file,
                    "{}",
                    serde_json::json!({"id": question["id"], "lang": lang.as_str(), "units": units})
                )?;
            }
            println!(
                "RANK {} score {:?} meaning {:?} of {}",
                question["id"].as_str().unwrap_or_default(),
                by_score,
                dense_rank,
                ranked.len()
            );
        }
        if answer.is_none() && kind != "unanswerable" {
            false_declines += 1;
        }
        total += 1;
        correct += usize::from(is_correct);
        for (key, map) in [
            (kind.clone(), &mut per_kind),
            (lang.as_str().to_string(), &mut per_lang),
        ] {
            let entry = map.entry(key).or_default();
            entry.0 += usize::from(is_correct);
            entry.1 += 1;
        }
        if verbose && !is_correct {
            println!(
                "FAIL {} [{kind}] {text}\n  expected all {expect_all:?} any {expect_any:?} sources {}",
                question["id"].as_str().unwrap_or_default(),
                question["sources"]
            );
            match &answer {
                Some(answer) => println!(
                    "  got ({:.2}) {:?}\n  from {:?}{}",
                    answer.score,
                    answer.text,
                    answer
                        .citations
                        .iter()
                        .map(|citation| citation.source.as_str())
                        .collect::<Vec<_>>(),
                    // `QA_EXPLAIN=1` shows the resolved terms of wrong answers too.
                    if std::env::var_os("QA_EXPLAIN").is_some() {
                        format!("\n  {}", retriever.explain(text).replace('\n', "\n  "))
                    } else {
                        String::new()
                    }
                ),
                None => println!(
                    "  got: declined\n  {}",
                    retriever.explain(text).replace('\n', "\n  ")
                ),
            }
        }
    }
    latencies.sort();
    lengths.sort();
    println!(
        "answer length p50 {} p95 {}",
        lengths.get(lengths.len() / 2).copied().unwrap_or_default(),
        lengths
            .get(lengths.len() * 95 / 100)
            .copied()
            .unwrap_or_default()
    );
    let percentile = |share: f64| {
        latencies
            .get(((latencies.len() as f64 * share) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let percent = |(good, all): (usize, usize)| 100.0 * good as f64 / all.max(1) as f64;
    println!(
        "accuracy {correct}/{total} = {:.1}%",
        percent((correct, total))
    );
    for (kind, counts) in &per_kind {
        println!(
            "  kind {kind:<13} {}/{} = {:.1}%",
            counts.0,
            counts.1,
            percent(*counts)
        );
    }
    for (lang, counts) in &per_lang {
        println!(
            "  lang {lang:<13} {}/{} = {:.1}%",
            counts.0,
            counts.1,
            percent(*counts)
        );
    }
    let declined = per_kind.get("unanswerable").copied().unwrap_or_default();
    println!(
        "unanswerable declined {:.1}%, false declines {false_declines}",
        percent(declined)
    );
    println!(
        "latency p50 {:?} p95 {:?}",
        percentile(0.5),
        percentile(0.95)
    );
    Ok(())
}
