//! Reads and writes for the sales team's tools (the Slack adapter): the day's figures for
//! `/closer stats`, a lead with its hand-offs, the conversation behind a lead's post, and how
//! far a taken-over conversation has been mirrored into the lead's thread.

use chrono::{DateTime, Utc};
use closer_model::{Channel, Lead};
use sqlx::Row;
use uuid::Uuid;

use crate::error::StoreError;
use crate::leads::{lead_from_row, LEAD_COLUMNS};
use crate::records::{Direction, OutboxEntry};
use crate::Store;

/// The prospects' figures since a moment (the team's own conversations are not counted).
#[derive(Debug, Clone, PartialEq)]
pub struct TeamStats {
    /// Prospects' conversations with a message since then.
    pub conversations: i64,
    /// Leads created since then.
    pub leads: i64,
    /// Ratings given since then: how many and their average.
    pub ratings: i64,
    pub average_rating: Option<f64>,
}

impl TeamStats {
    /// Leads per conversation, when there were conversations.
    pub fn conversion(&self) -> Option<f64> {
        (self.conversations > 0).then(|| self.leads as f64 / self.conversations as f64)
    }
}

/// A message of a conversation, for mirroring.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorLine {
    pub message_id: i64,
    pub direction: Direction,
    /// The reply's kind for an outbound message, the content type for an inbound one.
    pub kind: String,
    pub text: String,
}

/// Where a conversation is mirrored, and how far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPosition {
    pub conversation_id: Uuid,
    pub channel: String,
    pub thread_ts: String,
    pub last_message_id: i64,
}

impl Store {
    /// The prospects' figures since `since`, every channel but `team_channel`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn team_stats(
        &self,
        since: DateTime<Utc>,
        team_channel: Channel,
    ) -> Result<TeamStats, StoreError> {
        let row = sqlx::query(
            "SELECT
                 (SELECT count(*) FROM conversations
                  WHERE last_message_at >= $1 AND channel <> $2) AS conversations,
                 (SELECT count(*) FROM leads WHERE created_at >= $1) AS leads,
                 (SELECT count(*) FROM ratings WHERE created_at >= $1) AS ratings,
                 (SELECT avg(score)::float8 FROM ratings WHERE created_at >= $1) AS average",
        )
        .bind(since)
        .bind(team_channel.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let get = |error| self.error(error);
        Ok(TeamStats {
            conversations: row.try_get("conversations").map_err(get)?,
            leads: row.try_get("leads").map_err(get)?,
            ratings: row.try_get("ratings").map_err(get)?,
            average_rating: row.try_get("average").map_err(get)?,
        })
    }

    /// A lead by id, with its hand-off outbox rows.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`].
    pub async fn lead_with_handoffs(
        &self,
        lead_id: Uuid,
    ) -> Result<Option<(Lead, Vec<OutboxEntry>)>, StoreError> {
        let row = sqlx::query(&format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1"))
            .bind(lead_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        let Some(row) = row else { return Ok(None) };
        let lead = lead_from_row(&row)?;
        let rows = sqlx::query(&format!(
            "SELECT {} FROM handoff_outbox WHERE lead_id = $1 ORDER BY id",
            OutboxEntry::COLUMNS
        ))
        .bind(lead_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let entries = rows
            .iter()
            .map(OutboxEntry::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((lead, entries)))
    }

    /// The lead whose hand-off to `target` created the item `external_id` (a Slack post).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`].
    pub async fn lead_by_external_id(
        &self,
        target: &str,
        external_id: &str,
    ) -> Result<Option<Lead>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM leads l
             WHERE l.id = (SELECT lead_id FROM handoff_outbox
                           WHERE target = $1 AND external_id = $2 LIMIT 1)",
            prefixed(LEAD_COLUMNS, "l.")
        ))
        .bind(target)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        row.as_ref().map(lead_from_row).transpose()
    }

    /// Starts mirroring a conversation into a thread (from its first message), or keeps the
    /// position it has.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn start_mirror(
        &self,
        conversation_id: Uuid,
        channel: &str,
        thread_ts: &str,
    ) -> Result<MirrorPosition, StoreError> {
        let row = sqlx::query(
            "INSERT INTO slack_mirrors (conversation_id, channel, thread_ts)
             VALUES ($1, $2, $3)
             ON CONFLICT (conversation_id) DO UPDATE SET updated_at = now()
             RETURNING channel, thread_ts, last_message_id",
        )
        .bind(conversation_id)
        .bind(channel)
        .bind(thread_ts)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let get = |error| self.error(error);
        Ok(MirrorPosition {
            conversation_id,
            channel: row.try_get("channel").map_err(get)?,
            thread_ts: row.try_get("thread_ts").map_err(get)?,
            last_message_id: row.try_get("last_message_id").map_err(get)?,
        })
    }

    /// Where a conversation is mirrored, if it is.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn mirror_position(
        &self,
        conversation_id: Uuid,
    ) -> Result<Option<MirrorPosition>, StoreError> {
        let row = sqlx::query(
            "SELECT channel, thread_ts, last_message_id FROM slack_mirrors
             WHERE conversation_id = $1",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let get = |error| self.error(error);
        row.map(|row| {
            Ok(MirrorPosition {
                conversation_id,
                channel: row.try_get("channel").map_err(get)?,
                thread_ts: row.try_get("thread_ts").map_err(get)?,
                last_message_id: row.try_get("last_message_id").map_err(get)?,
            })
        })
        .transpose()
    }

    /// The conversations being mirrored, to resume after a start or a lagged wake-up.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn mirrored_conversations(&self) -> Result<Vec<Uuid>, StoreError> {
        sqlx::query_scalar(
            "SELECT m.conversation_id FROM slack_mirrors m
             JOIN conversations c ON c.id = m.conversation_id
             WHERE c.taken_over_by IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }

    /// Messages of a conversation after `after_id`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`].
    pub async fn messages_after(
        &self,
        conversation_id: Uuid,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<MirrorLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, direction, kind, text FROM messages
             WHERE conversation_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(conversation_id)
        .bind(after_id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter()
            .map(|row| {
                let get = |error| self.error(error);
                let direction: String = row.try_get("direction").map_err(get)?;
                Ok(MirrorLine {
                    message_id: row.try_get("id").map_err(get)?,
                    direction: if direction == "in" {
                        Direction::In
                    } else {
                        Direction::Out
                    },
                    kind: row.try_get("kind").map_err(get)?,
                    text: row.try_get("text").map_err(get)?,
                })
            })
            .collect()
    }

    /// Records that messages up to `message_id` are mirrored; never moves backwards.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn advance_mirror(
        &self,
        conversation_id: Uuid,
        message_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE slack_mirrors SET last_message_id = GREATEST(last_message_id, $2),
                 updated_at = now()
             WHERE conversation_id = $1",
        )
        .bind(conversation_id)
        .bind(message_id)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(())
    }
}

/// `a, b` as `l.a, l.b`.
fn prefixed(columns: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(|column| format!("{prefix}{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
