//! `/closer`: `ask <question>`, `lead <name and contact>`, `task <title>`, `stats`.
//!
//! Slack wants an answer within 3 seconds, so each command is acknowledged at once and its
//! slow part (retrieval, the store) answered through the command's `response_url`. A lead or
//! a task is keyed by the command's `trigger_id`: a command delivered twice queues one.

use chrono::{TimeZone, Utc};
use closer_engine::{EngineError, ManualLead};
use closer_model::{Channel, Lang, NewTask, Reply, ReplyKind};
use serde::Serialize;
use slack_morphism::prelude::*;

use crate::leads::LEAD_TARGET;
use crate::render::{escape, render};
use crate::Slack;

/// What Slack shows at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ack {
    /// `ephemeral`: only the person who typed the command sees it.
    pub response_type: &'static str,
    pub text: String,
}

impl Ack {
    fn ephemeral(text: impl Into<String>) -> Ack {
        Ack {
            response_type: "ephemeral",
            text: text.into(),
        }
    }
}

/// A parsed `/closer` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subcommand {
    Ask(String),
    Lead(String),
    Task(String),
    Stats,
    /// `help`, nothing, or something unknown (named, to say so).
    Usage(Option<String>),
}

/// The usage text, shown for `help` and for anything unknown.
pub const USAGE: &str = "Usage:\n\
• `/closer ask <question>`: an answer from the knowledge base, internal notes included\n\
• `/closer lead <name, phone or e-mail, what they need>`: record a lead and hand it off\n\
• `/closer task <title>`: a task in the tracker (linked to the lead when run in its thread)\n\
• `/closer stats`: today's conversations, leads, conversion and average rating";

/// Parses the command's text (pure).
pub fn parse(text: &str) -> Subcommand {
    let text = text.trim();
    let (word, rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(word, rest)| (word, rest.trim()));
    match (word.to_lowercase().as_str(), rest) {
        ("ask", rest) if !rest.is_empty() => Subcommand::Ask(rest.to_owned()),
        ("lead", rest) if !rest.is_empty() => Subcommand::Lead(rest.to_owned()),
        ("task", rest) if !rest.is_empty() => Subcommand::Task(rest.to_owned()),
        ("stats", _) => Subcommand::Stats,
        ("" | "help", _) => Subcommand::Usage(None),
        (_, _) => Subcommand::Usage(Some(word.to_owned())),
    }
}

/// Acknowledges a command at once and starts its slow part. `thread_ts`: the thread the
/// command was typed in, when Slack says so.
pub async fn handle(slack: &Slack, command: SlackCommandEvent, thread_ts: Option<String>) -> Ack {
    metrics::counter!("closer_commands_total", "channel" => "slack").increment(1);
    let text = command.text.clone().unwrap_or_default();
    // Only the team asks, records leads and tasks, or reads the figures; anyone else is told
    // so, only they see it, and nothing is created.
    let lang = Lang::detect(&text).unwrap_or_default();
    if let Err(refusal) = slack
        .member(&command.user_id.0, Some(&command.team_id.0), lang)
        .await
    {
        return Ack::ephemeral(refusal);
    }
    match parse(&text) {
        Subcommand::Usage(None) => Ack::ephemeral(USAGE),
        Subcommand::Usage(Some(word)) => {
            Ack::ephemeral(format!("I don't know `{}`.\n{USAGE}", escape(&word)))
        }
        Subcommand::Ask(question) => {
            let slack = slack.clone();
            let response_url = command.response_url.0.to_string();
            let shown = format!("Looking up: {}", escape(&question));
            tokio::spawn(async move {
                let lang = Lang::detect(&question).unwrap_or_default();
                let reply = match slack.engine().team_answer(&question, lang) {
                    Some(answer) => Reply {
                        kind: ReplyKind::Answer,
                        text: answer.text,
                        citations: answer.citations,
                        ..Reply::default()
                    },
                    None => Reply::new(ReplyKind::Declined, slack.config().not_found.text(lang)),
                };
                // A response_url takes five posts; an answer is at most 400 characters, one part.
                for part in render(&reply).into_iter().take(5) {
                    respond(&slack, &response_url, part).await;
                }
            });
            Ack::ephemeral(shown)
        }
        Subcommand::Stats => {
            let slack = slack.clone();
            let response_url = command.response_url.0.to_string();
            tokio::spawn(async move {
                let text = stats_text(&slack).await;
                respond(
                    &slack,
                    &response_url,
                    SlackMessageContent::new().with_text(text),
                )
                .await;
            });
            Ack::ephemeral("Counting today's figures…")
        }
        Subcommand::Lead(note) => {
            let slack = slack.clone();
            let response_url = command.response_url.0.to_string();
            let request = ManualLead {
                key: format!("slack:{}", command.trigger_id.0),
                note,
                requested_by: command.user_id.0.clone(),
                channel: Channel::Slack,
            };
            tokio::spawn(async move {
                let text = match slack.engine().record_manual_lead(&request).await {
                    Ok(recorded) if recorded.duplicate => {
                        format!("This lead was recorded already (`{}`).", recorded.value)
                    }
                    Ok(recorded) => format!(
                        "Lead recorded (`{}`) and queued for the hand-off targets.",
                        recorded.value
                    ),
                    Err(EngineError::Rejected(reason)) => {
                        format!("No lead recorded: {}.", escape(&reason))
                    }
                    Err(error) => {
                        tracing::warn!(%error, "a lead from Slack could not be recorded");
                        "No lead recorded: the database is unavailable; try again.".to_owned()
                    }
                };
                respond(
                    &slack,
                    &response_url,
                    SlackMessageContent::new().with_text(text),
                )
                .await;
            });
            Ack::ephemeral("Recording the lead…")
        }
        Subcommand::Task(title) => {
            let slack = slack.clone();
            let response_url = command.response_url.0.to_string();
            let channel = command.channel_id.0.clone();
            let key = format!("slack:{}", command.trigger_id.0);
            let requested_by = command.user_id.0.clone();
            tokio::spawn(async move {
                // Inside a lead's thread, the task is about that lead's conversation.
                let conversation_id = match thread_ts {
                    Some(thread_ts) => slack
                        .engine()
                        .store()
                        .lead_by_external_id(LEAD_TARGET, &format!("{channel}:{thread_ts}"))
                        .await
                        .ok()
                        .flatten()
                        .map(|lead| lead.conversation_id),
                    None => None,
                };
                let task = NewTask {
                    key,
                    title,
                    requested_by,
                    conversation_id,
                    target: None,
                };
                let text = match slack.engine().queue_task(&task).await {
                    Ok(recorded) if recorded.duplicate => {
                        "This task was queued already.".to_owned()
                    }
                    Ok(_) => format!(
                        "Task queued for the tracker{}.",
                        if conversation_id.is_some() {
                            ", linked to this lead's conversation"
                        } else {
                            ""
                        }
                    ),
                    Err(EngineError::Rejected(reason)) => {
                        format!("No task created: {}.", escape(&reason))
                    }
                    Err(error) => {
                        tracing::warn!(%error, "a task from Slack could not be queued");
                        "No task created: the database is unavailable; try again.".to_owned()
                    }
                };
                respond(
                    &slack,
                    &response_url,
                    SlackMessageContent::new().with_text(text),
                )
                .await;
            });
            Ack::ephemeral("Creating the task…")
        }
    }
}

/// Today's figures (since midnight UTC), as text.
async fn stats_text(slack: &Slack) -> String {
    let now = Utc::now();
    let midnight = Utc
        .from_local_datetime(&now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .unwrap_or(now);
    match slack
        .engine()
        .store()
        .team_stats(midnight, Channel::Slack)
        .await
    {
        Ok(stats) => {
            let conversion = stats
                .conversion()
                .map_or("—".to_owned(), |share| format!("{:.0}%", share * 100.0));
            let rating = stats.average_rating.map_or("—".to_owned(), |average| {
                format!("{average:.1} of 5 ({} ratings)", stats.ratings)
            });
            format!(
                "*Today* (since 00:00 UTC)\nConversations: {}\nLeads: {}\nConversion: {conversion}\nAverage rating: {rating}",
                stats.conversations, stats.leads
            )
        }
        Err(error) => {
            tracing::warn!(%error, "stats unavailable");
            "The figures are unavailable right now; try again in a minute.".to_owned()
        }
    }
}

async fn respond(slack: &Slack, response_url: &str, content: SlackMessageContent) {
    if let Err(error) = slack.api().respond(response_url, content, false).await {
        tracing::warn!(%error, "could not answer through the response_url");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_parse() {
        let table = [
            (
                "ask how much is Pro?",
                Subcommand::Ask("how much is Pro?".to_owned()),
            ),
            ("  ASK  what  ", Subcommand::Ask("what".to_owned())),
            (
                "lead Anna +7 921 555-12-34 wants 3 salons",
                Subcommand::Lead("Anna +7 921 555-12-34 wants 3 salons".to_owned()),
            ),
            (
                "task call back Anna",
                Subcommand::Task("call back Anna".to_owned()),
            ),
            ("stats", Subcommand::Stats),
            ("", Subcommand::Usage(None)),
            ("help", Subcommand::Usage(None)),
            ("ask", Subcommand::Usage(Some("ask".to_owned()))),
            ("deploy now", Subcommand::Usage(Some("deploy".to_owned()))),
        ];
        for (text, expected) in table {
            assert_eq!(parse(text), expected, "{text}");
        }
    }
}
