//! Delivering the hand-off outbox: workers claim due rows with `FOR UPDATE SKIP LOCKED`, so
//! several workers never take the same row, and a claim is a lease — a worker that dies
//! mid-delivery leaves a row that becomes due again when its lease ends.
//!
//! Each claimed row has a lease of its own, named by a fresh token: the worker renews it
//! ([`Store::renew_handoff_lease`]) before each call to the target and settles the row only
//! with it, so a worker whose lease ran out and whose row another worker claimed learns so
//! before calling again, and cannot record an outcome over the new holder's.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use closer_model::{Lead, Task, WebLink};
use uuid::Uuid;

use sqlx::Row;

use crate::activity::{Activity, ActivityKind};
use crate::error::StoreError;
use crate::leads::{lead_from_row, LEAD_COLUMNS};
use crate::records::OutboxEntry;
use crate::tasks::{task_from_row, TASK_COLUMNS};
use crate::Store;

/// A hand-off claimed by one worker: deliver it, then mark it delivered or failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedHandoff {
    /// The row, already `in_flight` with its attempt counted.
    pub entry: OutboxEntry,
    pub subject: Subject,
    /// This claim's lease: renewing it and settling the row need it, and a later claim of the
    /// row (after the lease ran out) replaces it.
    pub lease_token: Uuid,
}

/// What a hand-off delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Lead(Lead),
    /// A task asked for by hand, with the lead of its conversation when it has one.
    Task {
        task: Task,
        lead: Option<Lead>,
    },
}

impl Subject {
    /// The lead, or the task's conversation's lead.
    pub fn lead(&self) -> Option<&Lead> {
        match self {
            Subject::Lead(lead) => Some(lead),
            Subject::Task { lead, .. } => lead.as_ref(),
        }
    }

    /// The conversation it comes from, when there is one.
    pub fn conversation_id(&self) -> Option<Uuid> {
        match self {
            Subject::Lead(lead) => Some(lead.conversation_id),
            Subject::Task { task, .. } => task.conversation_id,
        }
    }
}

impl Store {
    /// Claims up to `limit` hand-offs that are due at `now` (pending ones whose time has come,
    /// and in-flight ones whose lease ran out), oldest first. Each is marked `in_flight`, its
    /// attempt counted, given a fresh lease token, and is not due again for `lease` unless
    /// renewed. `now` comes from the caller's clock, so that retry schedules can be tested in
    /// simulated time.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] when a lead does not parse.
    pub async fn claim_due_handoffs(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<ClaimedHandoff>, StoreError> {
        let rows = sqlx::query(&format!(
            "WITH due AS (
                 SELECT id FROM handoff_outbox
                 WHERE status IN ('pending', 'in_flight') AND next_attempt_at <= $3
                 ORDER BY next_attempt_at, id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE handoff_outbox AS outbox
             SET status = 'in_flight', attempts = outbox.attempts + 1,
                 next_attempt_at = $3 + make_interval(secs => $2), updated_at = now(),
                 lease_token = gen_random_uuid()
             FROM due WHERE outbox.id = due.id
             RETURNING {}, outbox.lease_token",
            prefixed(OutboxEntry::COLUMNS, "outbox.")
        ))
        .bind(limit.max(0))
        .bind(lease.as_secs_f64())
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let mut entries = rows
            .iter()
            .map(|row| {
                let lease_token: Uuid = row
                    .try_get("lease_token")
                    .map_err(|error| self.error(error))?;
                Ok((OutboxEntry::from_row(row)?, lease_token))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        entries.sort_by_key(|(entry, _)| (entry.created_at, entry.id));

        let task_ids: Vec<Uuid> = entries
            .iter()
            .filter_map(|(entry, _)| entry.task_id)
            .collect();
        let task_rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ANY($1)"
        ))
        .bind(&task_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let mut tasks: HashMap<Uuid, Task> = HashMap::new();
        for row in &task_rows {
            let task = task_from_row(row).map_err(|error| self.error(error))?;
            tasks.insert(task.id, task);
        }
        // A task's conversation's lead goes with it, so the task can name the contact.
        let task_conversations: Vec<Uuid> = tasks
            .values()
            .filter_map(|task| task.conversation_id)
            .collect();
        let lead_ids: Vec<Uuid> = entries
            .iter()
            .filter_map(|(entry, _)| entry.lead_id)
            .collect();
        let lead_rows = sqlx::query(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE id = ANY($1) OR conversation_id = ANY($2)"
        ))
        .bind(&lead_ids)
        .bind(&task_conversations)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let mut leads: HashMap<Uuid, Lead> = HashMap::new();
        for row in &lead_rows {
            let lead = lead_from_row(row)?;
            leads.insert(lead.id, lead);
        }
        entries
            .into_iter()
            .map(|(entry, lease_token)| {
                // The foreign keys keep a row's lead or task; one can only be missing if it
                // was deleted (with its rows, by cascade) between the queries.
                let subject = match (entry.lead_id, entry.task_id) {
                    (Some(lead_id), _) => leads.get(&lead_id).cloned().map(Subject::Lead),
                    (None, Some(task_id)) => tasks.get(&task_id).cloned().map(|task| {
                        let lead = task.conversation_id.and_then(|conversation_id| {
                            leads
                                .values()
                                .find(|lead| lead.conversation_id == conversation_id)
                                .cloned()
                        });
                        Subject::Task { task, lead }
                    }),
                    (None, None) => None,
                }
                .ok_or_else(|| {
                    StoreError::corrupt(format!("hand-off {} has no lead or task", entry.id))
                })?;
                Ok(ClaimedHandoff {
                    entry,
                    subject,
                    lease_token,
                })
            })
            .collect()
    }

    /// Extends the lease of a claimed hand-off to `now + lease`, if `lease_token` still holds
    /// it; returns whether it does. `false` means another worker claimed the row after this
    /// lease ran out (or it was settled): the caller must not call the target for it again.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn renew_handoff_lease(
        &self,
        outbox_id: i64,
        lease_token: Uuid,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE handoff_outbox
             SET next_attempt_at = $3 + make_interval(secs => $4), updated_at = now()
             WHERE id = $1 AND lease_token = $2 AND status = 'in_flight'",
        )
        .bind(outbox_id)
        .bind(lease_token)
        .bind(now)
        .bind(lease.as_secs_f64())
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Records that the hand-off was delivered, with what the target created, if `lease_token`
    /// still holds the row; returns whether it did (otherwise nothing changes: the row belongs
    /// to the worker that claimed it since).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn mark_handoff_delivered(
        &self,
        outbox_id: i64,
        lease_token: Uuid,
        external_id: Option<&str>,
        external_url: Option<&WebLink>,
    ) -> Result<bool, StoreError> {
        let external_url = external_url.map(WebLink::as_str);
        let delivered = sqlx::query(
            "UPDATE handoff_outbox AS outbox
             SET status = 'delivered', external_id = $2, external_url = $3, last_error = NULL,
                 delivered_at = now(), updated_at = now(), lease_token = NULL
             WHERE id = $1 AND lease_token = $4 AND status = 'in_flight'
             RETURNING outbox.lead_id, outbox.task_id, outbox.target,
                 COALESCE((SELECT conversation_id FROM leads WHERE id = outbox.lead_id),
                          (SELECT conversation_id FROM tasks WHERE id = outbox.task_id))
                     AS conversation_id",
        )
        .bind(outbox_id)
        .bind(external_id)
        .bind(external_url)
        .bind(lease_token)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let Some(row) = delivered else {
            return Ok(false);
        };
        let get = |column: &str| -> Result<Option<Uuid>, StoreError> {
            row.try_get(column).map_err(StoreError::Unexpected)
        };
        self.announce(Activity {
            conversation_id: get("conversation_id")?,
            channel: None,
            chat_id: None,
            kind: ActivityKind::HandoffDelivered {
                lead_id: get("lead_id")?,
                task_id: get("task_id")?,
                target: row.try_get("target").map_err(StoreError::Unexpected)?,
                url: external_url.map(str::to_owned),
            },
        });
        Ok(true)
    }

    /// Records a failed delivery: to be retried at `retry_at`, or given up (`failed`) when
    /// `None` — if `lease_token` still holds the row; returns whether it did. A row another
    /// worker claimed since (and perhaps delivered) stays as that worker leaves it.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn mark_handoff_failed(
        &self,
        outbox_id: i64,
        lease_token: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let settled = sqlx::query(
            "UPDATE handoff_outbox
             SET status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
                 next_attempt_at = COALESCE($3, next_attempt_at), last_error = $2,
                 updated_at = now(), lease_token = NULL
             WHERE id = $1 AND lease_token = $4 AND status = 'in_flight'",
        )
        .bind(outbox_id)
        .bind(error)
        .bind(retry_at)
        .bind(lease_token)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(settled.rows_affected() == 1)
    }

    /// Holds back every pending hand-off to `target` due before `until` to `until`: the target
    /// is failing, so one probe per backoff is enough, and when it recovers its backlog is due
    /// at once and delivered in order. Returns how many were held back.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn postpone_handoffs(
        &self,
        target: &str,
        until: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE handoff_outbox SET next_attempt_at = $2, updated_at = now()
             WHERE target = $1 AND status = 'pending' AND next_attempt_at < $2",
        )
        .bind(target)
        .bind(until)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(done.rows_affected())
    }

    /// Queues the failed hand-offs of a lead (or of a task, by its id) again, due at once;
    /// returns how many. The next attempt looks the item up before creating it, as after any
    /// failure.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn retry_failed_handoffs(&self, lead_id: Uuid) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE handoff_outbox
             SET status = 'pending', next_attempt_at = now(), updated_at = now()
             WHERE (lead_id = $1 OR task_id = $1) AND status = 'failed'",
        )
        .bind(lead_id)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(done.rows_affected())
    }

    /// The leads and tasks whose id starts with `prefix` (as `closer leads` shows them,
    /// shortened), at most two: one is the match, two say the prefix is too short.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn subject_ids_starting_with(&self, prefix: &str) -> Result<Vec<Uuid>, StoreError> {
        let pattern = format!("{}%", prefix.to_lowercase().replace(['\\', '%', '_'], ""));
        sqlx::query_scalar(
            "SELECT id FROM (
                 SELECT id, created_at FROM leads WHERE id::text LIKE $1
                 UNION ALL
                 SELECT id, created_at FROM tasks WHERE id::text LIKE $1
             ) found ORDER BY created_at LIMIT 2",
        )
        .bind(pattern)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }
}

/// `a, b` as `outbox.a, outbox.b`: the outbox's columns are ambiguous next to the CTE's.
fn prefixed(columns: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(|column| format!("{prefix}{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
