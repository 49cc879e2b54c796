//! The plain types the store reads back, and how a database row becomes one.

use chrono::{DateTime, Utc};
use closer_model::{Channel, Lang, ReplyKind};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::StoreError;

/// The columns [`ConversationRecord::from_row`] reads, for every query that returns one.
pub(crate) const CONVERSATION_COLUMNS: &str = "id, channel, chat_id, lang, stage, state, \
     source_campaign, taken_over_by, created_at, last_message_at";

/// One conversation: a chat on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub id: Uuid,
    pub channel: Channel,
    pub chat_id: String,
    /// The dialog's state as it last committed; `Null` for a new conversation.
    pub state: serde_json::Value,
    /// The conversation's language as the dialog last saw it; `None` before the first commit.
    pub lang: Option<Lang>,
    /// The dialog's stage name, for analytics and the console; `None` before the first commit.
    pub stage: Option<String>,
    /// The campaign of the link the prospect last came from.
    pub source_campaign: Option<String>,
    /// Who took the conversation over; the assistant stays silent while it is set.
    pub taken_over_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
}

impl ConversationRecord {
    pub(crate) fn from_row(row: &PgRow) -> Result<ConversationRecord, sqlx::Error> {
        let channel: String = row.try_get("channel")?;
        let lang: Option<String> = row.try_get("lang")?;
        let state: Option<serde_json::Value> = row.try_get("state")?;
        Ok(ConversationRecord {
            id: row.try_get("id")?,
            channel: parse_channel(&channel)?,
            chat_id: row.try_get("chat_id")?,
            state: state.unwrap_or(serde_json::Value::Null),
            // An unknown language is not worth failing a conversation over: the dialog
            // keeps its own language in `state`.
            lang: lang.as_deref().and_then(Lang::parse),
            stage: row.try_get("stage")?,
            source_campaign: row.try_get("source_campaign")?,
            taken_over_by: row.try_get("taken_over_by")?,
            created_at: row.try_get("created_at")?,
            last_message_at: row.try_get("last_message_at")?,
        })
    }
}

/// Whether a message came from the prospect or from the assistant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// One line of a conversation's transcript, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// The message's row id: increasing, so a reader can remember how far it has read.
    pub id: i64,
    pub direction: Direction,
    /// What the prospect typed (or a description of what they sent), or the reply's text.
    pub text: String,
    /// The reply's kind, for an outbound line.
    pub kind: Option<ReplyKind>,
    /// The person who wrote an outbound line during a takeover; `None` for the assistant.
    pub author: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Where a hand-off of a lead to one target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for its `next_attempt_at`.
    Pending,
    /// A worker is delivering it now.
    InFlight,
    Delivered,
    /// Given up after too many attempts; `last_error` says why.
    Failed,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::InFlight => "in_flight",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Option<OutboxStatus> {
        Some(match name {
            "pending" => OutboxStatus::Pending,
            "in_flight" => OutboxStatus::InFlight,
            "delivered" => OutboxStatus::Delivered,
            "failed" => OutboxStatus::Failed,
            _ => return None,
        })
    }
}

/// One row of the hand-off outbox: a lead or a task to deliver to one target (a tracker, a chat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: i64,
    /// What is handed off: a lead, or a task asked for by hand (exactly one is set).
    pub lead_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    /// The configured target's name.
    pub target: String,
    /// Sent to the target so that a retried delivery does not create a second task.
    pub idempotency_key: String,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The target's id and link for what was created there, once delivered.
    pub external_id: Option<String>,
    pub external_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl OutboxEntry {
    pub(crate) const COLUMNS: &'static str =
        "id, lead_id, task_id, target, idempotency_key, status, \
         attempts, next_attempt_at, last_error, external_id, external_url, created_at, \
         updated_at, delivered_at";

    pub(crate) fn from_row(row: &PgRow) -> Result<OutboxEntry, StoreError> {
        let status: String = row.try_get("status").map_err(StoreError::Unexpected)?;
        let entry = || -> Result<OutboxEntry, sqlx::Error> {
            Ok(OutboxEntry {
                id: row.try_get("id")?,
                lead_id: row.try_get("lead_id")?,
                task_id: row.try_get("task_id")?,
                target: row.try_get("target")?,
                idempotency_key: row.try_get("idempotency_key")?,
                status: OutboxStatus::Pending,
                attempts: row.try_get("attempts")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                last_error: row.try_get("last_error")?,
                external_id: row.try_get("external_id")?,
                external_url: row.try_get("external_url")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                delivered_at: row.try_get("delivered_at")?,
            })
        };
        let mut entry = entry().map_err(StoreError::Unexpected)?;
        entry.status = OutboxStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt(format!("hand-off status {status:?}")))?;
        Ok(entry)
    }
}

/// A stored channel name back to a [`Channel`]; a name this build does not know is a
/// decode error, reported as corrupt by the caller.
pub(crate) fn parse_channel(name: &str) -> Result<Channel, sqlx::Error> {
    Channel::parse(name)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown channel {name:?}").into()))
}

/// A reply kind as stored (its serde name, e.g. `answer`).
pub(crate) fn reply_kind_name(kind: ReplyKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        // ReplyKind is a plain unit enum: it always serialises to a string.
        _ => format!("{kind:?}").to_lowercase(),
    }
}

pub(crate) fn parse_reply_kind(name: &str) -> Option<ReplyKind> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}
