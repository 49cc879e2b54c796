//! The replies' outbox: on channels whose replies are sent by a background sender
//! ([`closer_model::Channel::delivers_from_store`]), a reply is committed `pending` with the
//! turn that produced it, and the sender reads the pending replies of a chat in order, sends
//! them, and marks each `sent` or `failed`. A reply survives a crash between the commit and
//! the send; one sent but not yet marked when the process dies is sent again on restart
//! (the platforms offer no way to ask whether a message went out), so a reply is delivered
//! at least once and, short of that instant, exactly once.

use closer_model::{Channel, Reply};

use crate::error::StoreError;
use crate::turn::reply_from_row;
use crate::Store;

/// A reply waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReply {
    /// The reply's row in `messages`: mark it with this id.
    pub message_id: i64,
    /// The platform's chat id of the conversation.
    pub chat_id: String,
    pub reply: Reply,
    /// Earlier attempts that failed transiently.
    pub attempts: i32,
    /// The platform's id of a draft message (a streamed answer) this reply replaces by an
    /// edit; `None` for a new message.
    pub replaces: Option<String>,
}

impl Store {
    /// The chats of `channel` with replies waiting, for a sender that starts up.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn chats_with_pending_replies(
        &self,
        channel: Channel,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT c.chat_id
             FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.delivery = 'pending' AND m.channel = $1",
        )
        .bind(channel.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }

    /// Up to `limit` replies waiting for one chat, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] when a stored reply does not parse.
    pub async fn pending_replies(
        &self,
        channel: Channel,
        chat_id: &str,
        limit: i64,
    ) -> Result<Vec<PendingReply>, StoreError> {
        let rows: Vec<(i64, String, String, serde_json::Value, i32, Option<String>)> =
            sqlx::query_as(
            "SELECT m.id, m.kind, m.text, m.payload, m.delivery_attempts, m.replaces_platform_id
             FROM conversations c JOIN messages m ON m.conversation_id = c.id
             WHERE c.channel = $1 AND c.chat_id = $2 AND m.channel = $1 AND m.delivery = 'pending'
             ORDER BY m.id
             LIMIT $3",
        )
        .bind(channel.as_str())
        .bind(chat_id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.into_iter()
            .map(|(message_id, kind, text, payload, attempts, replaces)| {
                Ok(PendingReply {
                    message_id,
                    chat_id: chat_id.to_owned(),
                    reply: reply_from_row((kind, text, payload))?,
                    attempts,
                    replaces,
                })
            })
            .collect()
    }

    /// Marks a reply sent, with the platform's ids of the messages it became (a long reply
    /// may be split into several).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn mark_reply_sent(
        &self,
        message_id: i64,
        platform_ids: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages
             SET delivery = 'sent', delivered_at = now(), platform_reply_ids = $2,
                 delivery_attempts = delivery_attempts + 1
             WHERE id = $1",
        )
        .bind(message_id)
        .bind(platform_ids)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(())
    }

    /// Marks a reply as never to be sent, with the reason (the bot was blocked, the chat is
    /// gone); it stays in the transcript.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn mark_reply_failed(&self, message_id: i64, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages
             SET delivery = 'failed', delivery_error = $2, delivery_attempts = delivery_attempts + 1
             WHERE id = $1",
        )
        .bind(message_id)
        .bind(reason)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(())
    }

    /// Records a failed attempt that will be retried; returns the attempts so far.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn note_reply_attempt(
        &self,
        message_id: i64,
        error: &str,
    ) -> Result<i32, StoreError> {
        sqlx::query_scalar(
            "UPDATE messages
             SET delivery_attempts = delivery_attempts + 1, delivery_error = $2
             WHERE id = $1
             RETURNING delivery_attempts",
        )
        .bind(message_id)
        .bind(error)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }

    /// How the replies of a conversation's chat stand: (pending, sent, failed).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn reply_delivery_counts(
        &self,
        channel: Channel,
        chat_id: &str,
    ) -> Result<(i64, i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE m.delivery = 'pending'),
                    count(*) FILTER (WHERE m.delivery = 'sent'),
                    count(*) FILTER (WHERE m.delivery = 'failed')
             FROM conversations c JOIN messages m ON m.conversation_id = c.id
             WHERE c.channel = $1 AND c.chat_id = $2",
        )
        .bind(channel.as_str())
        .bind(chat_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }
}
