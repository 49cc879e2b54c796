//! The dialog quality harness: runs every scripted conversation of an evaluation set through
//! `step` and scores it as the evaluation README says.
//!
//! `cargo run --release -p closer-dialog --example dialogs -- /work/shared/eval/dialogs.jsonl [-v]`

use std::collections::BTreeMap;

use closer_dialog::{step, DialogConfig, DialogState, Effect, Input};
use closer_model::{Citation, InboundContent, KnowledgeAnswer, NewLead};
use serde::Deserialize;

#[derive(Deserialize)]
struct Dialog {
    id: String,
    turns: Vec<String>,
    expect: Expect,
}

#[derive(Deserialize)]
struct Expect {
    lead: bool,
    #[serde(default)]
    contact: BTreeMap<String, String>,
    #[serde(default)]
    interest: Vec<String>,
    #[serde(default)]
    objections: Vec<String>,
    handoff: Option<bool>,
}

fn normalise(text: &str) -> String {
    text.to_lowercase()
        .replace('ё', "е")
        .chars()
        .filter(|ch| ch.is_alphanumeric())
        .collect()
}

fn loose(text: &str) -> String {
    text.trim()
        .trim_matches(|ch: char| matches!(ch, '«' | '»' | '"' | '\'' | '“' | '”'))
        .trim()
        .to_lowercase()
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|arg| arg == "-v");
    let path = args
        .iter()
        .find(|arg| !arg.starts_with('-'))
        .cloned()
        .unwrap_or_else(|| "/work/shared/eval/dialogs.jsonl".to_owned());
    let playbook_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/playbook.toml");
    let config = DialogConfig::from_toml_str(&std::fs::read_to_string(playbook_path)?)?;
    let text = std::fs::read_to_string(&path)?;
    if path.ends_with("questions.jsonl") {
        return run_questions(&config, &text, verbose);
    }

    let (mut passed, mut total) = (0, 0);
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let dialog: Dialog = serde_json::from_str(line)?;
        total += 1;
        let mut state = DialogState::default();
        let mut lead: Option<NewLead> = None;
        let mut creates = 0;
        let mut handoff = false;
        let mut transcript = Vec::new();
        for turn in &dialog.turns {
            // The scoring reads no answer text, so any knowledge-base answer will do.
            let input = Input {
                content: InboundContent::Text { text: turn.clone() },
                sender_name: None,
                knowledge: Some(KnowledgeAnswer {
                    text: "[KB answer]".to_owned(),
                    citations: vec![Citation {
                        title: "KB".to_owned(),
                        source: "kb.md".to_owned(),
                    }],
                    score: 1.0,
                }),
                meaning: Vec::new(),
            };
            let result = step(&config, state, &input);
            state = result.state;
            transcript.push(format!("  > {turn}"));
            for reply in &result.replies {
                transcript.push(format!("    < [{:?}] {}", reply.kind, reply.text));
            }
            for effect in result.effects {
                match effect {
                    Effect::CreateLead(new) => {
                        creates += 1;
                        lead = Some(new);
                    }
                    Effect::UpdateLead(new) => lead = Some(new),
                    Effect::HandOff { .. } => handoff = true,
                    _ => {}
                }
            }
        }

        let mut failures = Vec::new();
        if creates > 1 {
            failures.push(format!("{creates} leads created"));
        }
        if lead.is_some() != dialog.expect.lead {
            failures.push(format!("lead exists: {}", lead.is_some()));
        }
        if let Some(lead) = &lead {
            for (field, expected) in &dialog.expect.contact {
                let contact = &lead.contact;
                let ok = match field.as_str() {
                    "phone" => {
                        contact.phone.as_ref().map(|phone| phone.digits()) == Some(digits(expected))
                    }
                    "email" => {
                        contact
                            .email
                            .as_ref()
                            .map(|email| email.as_str().to_owned())
                            == Some(expected.to_lowercase())
                    }
                    "name" => contact.name.as_deref().map(loose) == Some(loose(expected)),
                    "company" => contact.company.as_deref().map(loose) == Some(loose(expected)),
                    _ => true,
                };
                if !ok {
                    failures.push(format!(
                        "{field}: expected {expected:?}, got {:?}",
                        match field.as_str() {
                            "phone" => contact.phone.as_ref().map(ToString::to_string),
                            "email" => contact.email.as_ref().map(ToString::to_string),
                            "name" => contact.name.clone(),
                            _ => contact.company.clone(),
                        }
                    ));
                }
            }
            let summary = normalise(&lead.summary);
            for word in &dialog.expect.interest {
                if !summary.contains(&normalise(word)) {
                    failures.push(format!(
                        "interest {word:?} not in summary {:?}",
                        lead.summary
                    ));
                }
            }
        }
        for kind in &dialog.expect.objections {
            if !state.objections.iter().any(|seen| seen.as_str() == kind) {
                failures.push(format!(
                    "objection {kind} not recognised (saw {:?})",
                    state.objections
                ));
            }
        }
        if let Some(expected) = dialog.expect.handoff {
            if expected != handoff {
                failures.push(format!("handoff: {handoff}"));
            }
        }
        let ok = failures.is_empty();
        if ok {
            passed += 1;
        }
        println!(
            "{} {}{}",
            if ok { "PASS" } else { "FAIL" },
            dialog.id,
            if ok {
                String::new()
            } else {
                format!(": {}", failures.join("; "))
            }
        );
        if verbose || !ok {
            for line in &transcript {
                println!("{line}");
            }
            if let Some(lead) = &lead {
                println!("  lead: {:?} | {}", lead.contact, lead.summary);
            }
        }
    }
    println!(
        "passed {passed}/{total} ({:.1}%)",
        100.0 * f64::from(passed) / f64::from(total.max(1))
    );
    Ok(())
}

#[derive(Deserialize)]
struct Question {
    id: String,
    question: String,
    kind: String,
}

/// Checks how single questions are classified: every answerable kind gets the knowledge-base
/// answer (as Answer or Objection), unanswerable ones (given no knowledge) are declined, small
/// talk is small talk without citations; and nothing exceeds the length limit.
fn run_questions(config: &DialogConfig, text: &str, verbose: bool) -> anyhow::Result<()> {
    let (mut passed, mut total) = (0, 0);
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let question: Question = serde_json::from_str(line)?;
        total += 1;
        let knowledge = (question.kind != "unanswerable").then(|| KnowledgeAnswer {
            text: "KBANSWER".to_owned(),
            citations: vec![Citation {
                title: "KB".to_owned(),
                source: "kb.md".to_owned(),
            }],
            score: 1.0,
        });
        let input = Input {
            content: InboundContent::Text {
                text: question.question.clone(),
            },
            sender_name: None,
            knowledge,
            meaning: Vec::new(),
        };
        let result = step(config, DialogState::default(), &input);
        let joined: String = result
            .replies
            .iter()
            .map(|reply| reply.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        let declined = result
            .replies
            .iter()
            .any(|reply| reply.kind == closer_model::ReplyKind::Declined);
        let cites = result
            .replies
            .iter()
            .any(|reply| !reply.citations.is_empty());
        let smalltalk = result
            .replies
            .iter()
            .any(|reply| reply.kind == closer_model::ReplyKind::Smalltalk);
        let ok = joined.chars().count() <= 400
            && match question.kind.as_str() {
                "unanswerable" => declined,
                "smalltalk" => smalltalk && !declined && !cites,
                _ => joined.contains("KBANSWER") && !declined,
            };
        if ok {
            passed += 1;
        }
        if verbose || !ok {
            let kinds: Vec<String> = result
                .replies
                .iter()
                .map(|reply| format!("{:?}", reply.kind))
                .collect();
            println!(
                "{} {} [{}] {} -> {:?}",
                if ok { "PASS" } else { "FAIL" },
                question.id,
                question.kind,
                question.question,
                kinds
            );
        }
    }
    println!("questions classified right: {passed}/{total}");
    Ok(())
}
