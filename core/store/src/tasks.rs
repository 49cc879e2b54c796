//! Hand-offs a person asks for by hand: tracker tasks (`/closer task`) and leads typed in
//! (`/closer lead`). Each is stored once per request key, with its hand-off outbox rows in
//! the same transaction, so a platform's retry of the request creates nothing twice.

use std::collections::BTreeSet;

use closer_model::{Channel, NewLead, NewTask, Task};
use sqlx::Row;
use uuid::Uuid;

use crate::activity::{Activity, ActivityKind};
use crate::error::StoreError;
use crate::leads;
use crate::records::{ConversationRecord, OutboxEntry, CONVERSATION_COLUMNS};
use crate::Store;

/// What a request by hand produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded<T> {
    pub value: T,
    /// The same request key was recorded before: this is what it produced then.
    pub duplicate: bool,
}

pub(crate) const TASK_COLUMNS: &str = "id, title, requested_by, conversation_id, created_at";

pub(crate) fn task_from_row(row: &sqlx::postgres::PgRow) -> Result<Task, sqlx::Error> {
    Ok(Task {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        requested_by: row.try_get("requested_by")?,
        conversation_id: row.try_get("conversation_id")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// The newest `limit` tasks, each with its hand-offs, for `closer leads`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn tasks(&self, limit: i64) -> Result<Vec<(Task, Vec<OutboxEntry>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks ORDER BY created_at DESC, id LIMIT $1"
        ))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let tasks = rows
            .iter()
            .map(task_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| self.error(error))?;
        let ids: Vec<Uuid> = tasks.iter().map(|task| task.id).collect();
        let mut outbox = self.handoffs_of(&ids).await?;
        Ok(tasks
            .into_iter()
            .map(|task| {
                let entries = outbox.remove(&task.id).unwrap_or_default();
                (task, entries)
            })
            .collect())
    }

    /// Stores a task and queues it for each of `targets`, once per `task.key`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Rejected`] for an empty title or no target.
    pub async fn create_task(
        &self,
        task: &NewTask,
        targets: &[String],
    ) -> Result<Recorded<Task>, StoreError> {
        if task.title.trim().is_empty() {
            return Err(StoreError::Rejected {
                reason: "a task needs a title".to_owned(),
            });
        }
        if targets.is_empty() {
            return Err(StoreError::Rejected {
                reason: "no hand-off target takes tasks".to_owned(),
            });
        }
        let mut transaction = self.pool.begin().await.map_err(|error| self.error(error))?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO tasks (id, key, title, requested_by, conversation_id)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key) DO NOTHING
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(Uuid::new_v4())
        .bind(&task.key)
        .bind(task.title.trim())
        .bind(&task.requested_by)
        .bind(task.conversation_id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| self.error(error))?;
        let (row, duplicate) = match inserted {
            Some(row) => (row, false),
            None => (
                sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE key = $1"))
                    .bind(&task.key)
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(|error| self.error(error))?,
                true,
            ),
        };
        let stored = task_from_row(&row).map_err(|error| self.error(error))?;
        if !duplicate {
            let targets: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
            for target in targets {
                sqlx::query(
                    "INSERT INTO handoff_outbox (task_id, target, idempotency_key)
                     VALUES ($1, $2, $3) ON CONFLICT (idempotency_key) DO NOTHING",
                )
                .bind(stored.id)
                .bind(target)
                .bind(format!("task:{}:{target}", stored.id))
                .execute(&mut *transaction)
                .await
                .map_err(|error| self.error(error))?;
            }
        }
        transaction
            .commit()
            .await
            .map_err(|error| self.error(error))?;
        if !duplicate {
            self.announce(Activity {
                conversation_id: stored.conversation_id,
                channel: None,
                chat_id: None,
                kind: ActivityKind::TaskCreated { task_id: stored.id },
            });
        }
        Ok(Recorded {
            value: stored,
            duplicate,
        })
    }

    /// Stores a lead a person typed in on `channel` (the request's note as the conversation's
    /// one message) and queues it for each of `targets`, once per `key`. Returns the lead's id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn record_manual_lead(
        &self,
        channel: Channel,
        key: &str,
        requested_by: &str,
        note: &str,
        lead: &NewLead,
        targets: &[String],
    ) -> Result<Recorded<Uuid>, StoreError> {
        let chat_id = format!("manual:{key}");
        let mut transaction = self.pool.begin().await.map_err(|error| self.error(error))?;
        let created: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO conversations (id, channel, chat_id, stage, taken_over_by)
             VALUES ($1, $2, $3, 'manual', $4)
             ON CONFLICT (channel, chat_id) DO NOTHING
             RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(channel.as_str())
        .bind(&chat_id)
        .bind(requested_by)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| self.error(error))?;
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE channel = $1 AND chat_id = $2"
        ))
        .bind(channel.as_str())
        .bind(&chat_id)
        .fetch_one(&mut *transaction)
        .await
        .map_err(|error| self.error(error))?;
        let conversation = ConversationRecord::from_row(&row).map_err(|error| self.error(error))?;
        if created.is_none() {
            let existing: Option<Uuid> =
                sqlx::query_scalar("SELECT id FROM leads WHERE conversation_id = $1")
                    .bind(conversation.id)
                    .fetch_optional(&mut *transaction)
                    .await
                    .map_err(|error| self.error(error))?;
            if let Some(lead_id) = existing {
                return Ok(Recorded {
                    value: lead_id,
                    duplicate: true,
                });
            }
        }
        sqlx::query(
            "INSERT INTO messages (conversation_id, direction, channel, platform_message_id, kind,
                                   text, author)
             VALUES ($1, 'in', $2, $3, 'manual', $4, $5)
             ON CONFLICT (conversation_id, platform_message_id) DO NOTHING",
        )
        .bind(conversation.id)
        .bind(channel.as_str())
        .bind(key)
        .bind(note)
        .bind(requested_by)
        .execute(&mut *transaction)
        .await
        .map_err(|error| self.error(error))?;
        let lead_id = Uuid::new_v4();
        leads::insert_lead(&mut transaction, lead_id, &conversation, None, lead)
            .await
            .map_err(|error| self.error(error))?;
        let targets: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
        for target in targets {
            leads::queue_handoff(&mut transaction, lead_id, target)
                .await
                .map_err(|error| self.error(error))?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| self.error(error))?;
        self.announce(Activity {
            conversation_id: Some(conversation.id),
            channel: Some(channel),
            chat_id: Some(chat_id),
            kind: ActivityKind::LeadCreated { lead_id },
        });
        Ok(Recorded {
            value: lead_id,
            duplicate: false,
        })
    }
}
