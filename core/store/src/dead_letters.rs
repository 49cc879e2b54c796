//! Dead letters: inbound updates and events a channel could not process, kept with the reason
//! and the raw payload so the channel's queue moves on. A person lists them (console, CLI) and
//! asks for one to be tried again; the channel takes the requested ones back.

use chrono::{DateTime, Utc};
use closer_model::Channel;
use sqlx::Row;
use uuid::Uuid;

use crate::error::StoreError;
use crate::Store;

/// One update or event that could not be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: Uuid,
    pub channel: String,
    /// The platform's id of the update or event.
    pub external_id: String,
    pub reason: String,
    /// The raw update as it arrived (JSON for every channel today).
    pub payload: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub last_failed_at: DateTime<Utc>,
    pub retry_requested_at: Option<DateTime<Utc>>,
}

/// The longest payload kept: a dead letter must not become a way to fill the database.
const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

impl Store {
    /// Records that `external_id` of `channel` could not be processed; the same one again adds
    /// an attempt and takes back any retry request (it was tried and failed again).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn record_dead_letter(
        &self,
        channel: Channel,
        external_id: &str,
        reason: &str,
        payload: &str,
    ) -> Result<Uuid, StoreError> {
        let mut payload = payload.to_owned();
        if payload.len() > MAX_PAYLOAD_BYTES {
            let mut cut = MAX_PAYLOAD_BYTES;
            while !payload.is_char_boundary(cut) {
                cut -= 1;
            }
            payload.truncate(cut);
        }
        // NUL cannot be stored in a PostgreSQL text column.
        let payload = payload.replace('\0', "\u{FFFD}");
        let reason = reason.replace('\0', "\u{FFFD}");
        sqlx::query_scalar(
            "INSERT INTO dead_letters (id, channel, external_id, reason, payload)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (channel, external_id) DO UPDATE
                 SET reason = EXCLUDED.reason, attempts = dead_letters.attempts + 1,
                     last_failed_at = now(), retry_requested_at = NULL, resolved_at = NULL
             RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(channel.as_str())
        .bind(external_id)
        .bind(reason)
        .bind(payload)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }

    /// The dead letters not resolved yet, newest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, channel, external_id, reason, payload, attempts, created_at,
                    last_failed_at, retry_requested_at
             FROM dead_letters WHERE resolved_at IS NULL
             ORDER BY last_failed_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter().map(dead_letter).collect()
    }

    /// Asks the channel to try a dead letter again. Returns whether an open one had that id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn request_dead_letter_retry(&self, id: Uuid) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE dead_letters SET retry_requested_at = now()
             WHERE id = $1 AND resolved_at IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(result.rows_affected() > 0)
    }

    /// The dead letters of `channel` a person asked to try again, oldest request first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn dead_letters_to_retry(
        &self,
        channel: Channel,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, channel, external_id, reason, payload, attempts, created_at,
                    last_failed_at, retry_requested_at
             FROM dead_letters
             WHERE channel = $1 AND resolved_at IS NULL AND retry_requested_at IS NOT NULL
             ORDER BY retry_requested_at LIMIT 100",
        )
        .bind(channel.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter().map(dead_letter).collect()
    }

    /// Marks a dead letter processed after a retry.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn resolve_dead_letter(&self, id: Uuid) -> Result<(), StoreError> {
        sqlx::query("UPDATE dead_letters SET resolved_at = now() WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|error| self.error(error))
    }
}

fn dead_letter(row: &sqlx::postgres::PgRow) -> Result<DeadLetter, StoreError> {
    let read = |error: sqlx::Error| StoreError::corrupt(format!("a dead letter: {error}"));
    Ok(DeadLetter {
        id: row.try_get("id").map_err(read)?,
        channel: row.try_get("channel").map_err(read)?,
        external_id: row.try_get("external_id").map_err(read)?,
        reason: row.try_get("reason").map_err(read)?,
        payload: row.try_get("payload").map_err(read)?,
        attempts: row.try_get("attempts").map_err(read)?,
        created_at: row.try_get("created_at").map_err(read)?,
        last_failed_at: row.try_get("last_failed_at").map_err(read)?,
        retry_requested_at: row.try_get("retry_requested_at").map_err(read)?,
    })
}
