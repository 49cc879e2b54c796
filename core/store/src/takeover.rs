//! A person taking a conversation over: while `taken_over_by` is set the assistant stays
//! silent, and what the person writes is stored as an outbound message of the conversation
//! (kind `person`, with its author), pending on channels that deliver from the store, so the
//! prospect's own channel sender delivers it like any reply.

use closer_model::{Channel, ReplyKind};
use uuid::Uuid;

use crate::activity::{Activity, ActivityKind};
use crate::error::StoreError;
use crate::records::{parse_channel, reply_kind_name};
use crate::Store;

/// A person's message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonMessage {
    /// The message's row in `messages`.
    pub message_id: i64,
    pub channel: Channel,
    pub chat_id: String,
    /// The same key was stored before: nothing new was written.
    pub duplicate: bool,
}

impl Store {
    /// Marks the conversation as taken over by a person (`Some(who)`), or hands it back to
    /// the assistant (`None`). Returns whether the conversation exists.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn set_taken_over(
        &self,
        conversation_id: Uuid,
        taken_over_by: Option<&str>,
    ) -> Result<bool, StoreError> {
        let updated: Option<(String, String)> = sqlx::query_as(
            "UPDATE conversations SET taken_over_by = $2, updated_at = now() WHERE id = $1
             RETURNING channel, chat_id",
        )
        .bind(conversation_id)
        .bind(taken_over_by)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let Some((channel, chat_id)) = updated else {
            return Ok(false);
        };
        self.announce(Activity {
            conversation_id: Some(conversation_id),
            channel: parse_channel(&channel).ok(),
            chat_id: Some(chat_id),
            kind: match taken_over_by {
                Some(by) => ActivityKind::TakenOver { by: by.to_owned() },
                None => ActivityKind::HandedBack,
            },
        });
        Ok(true)
    }

    /// Stores what a person wrote to the prospect, once per `key` (the platform's id of the
    /// person's message, so that its retries are ignored). A conversation nobody has taken
    /// over is taken over by `author` in the same transaction: the assistant and a person
    /// never answer the prospect at the same time. Returns `None` when the conversation does
    /// not exist.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Rejected`] for an empty text.
    pub async fn record_person_message(
        &self,
        conversation_id: Uuid,
        key: &str,
        author: &str,
        text: &str,
    ) -> Result<Option<PersonMessage>, StoreError> {
        if text.trim().is_empty() {
            return Err(StoreError::Rejected {
                reason: "an empty message is not sent".to_owned(),
            });
        }
        let mut transaction = self.pool.begin().await.map_err(|error| self.error(error))?;
        let conversation: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT channel, chat_id, taken_over_by FROM conversations WHERE id = $1 FOR UPDATE",
        )
        .bind(conversation_id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| self.error(error))?;
        let Some((channel_name, chat_id, taken_over_by)) = conversation else {
            return Ok(None);
        };
        let channel = parse_channel(&channel_name)
            .map_err(|_| StoreError::corrupt(format!("channel {channel_name:?}")))?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO messages
                 (conversation_id, direction, channel, platform_message_id, kind, text, author,
                  delivery)
             VALUES ($1, 'out', $2, $3, $4, $5, $6, CASE WHEN $7 THEN 'pending' END)
             ON CONFLICT (conversation_id, platform_message_id) DO NOTHING
             RETURNING id",
        )
        .bind(conversation_id)
        .bind(&channel_name)
        .bind(format!("person:{key}"))
        .bind(reply_kind_name(ReplyKind::Person))
        .bind(text)
        .bind(author)
        .bind(channel.delivers_from_store())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| self.error(error))?;
        let message_id = match inserted {
            Some(id) => id,
            None => sqlx::query_scalar(
                "SELECT id FROM messages WHERE conversation_id = $1 AND platform_message_id = $2",
            )
            .bind(conversation_id)
            .bind(format!("person:{key}"))
            .fetch_one(&mut *transaction)
            .await
            .map_err(|error| self.error(error))?,
        };
        let takes_over = inserted.is_some() && taken_over_by.is_none();
        if takes_over {
            sqlx::query(
                "UPDATE conversations SET taken_over_by = $2, updated_at = now() WHERE id = $1",
            )
            .bind(conversation_id)
            .bind(author)
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error(error))?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| self.error(error))?;

        let announce = |kind| {
            self.announce(Activity {
                conversation_id: Some(conversation_id),
                channel: Some(channel),
                chat_id: Some(chat_id.clone()),
                kind,
            });
        };
        if takes_over {
            announce(ActivityKind::TakenOver {
                by: author.to_owned(),
            });
        }
        if inserted.is_some() {
            announce(ActivityKind::PersonMessage);
        }
        Ok(Some(PersonMessage {
            message_id,
            channel,
            chat_id: chat_id.clone(),
            duplicate: inserted.is_none(),
        }))
    }
}
