//! Reads of conversations: by chat, their transcript and their rating.

use closer_model::Channel;
use uuid::Uuid;

use crate::error::StoreError;
use crate::records::{ConversationRecord, TranscriptLine, CONVERSATION_COLUMNS};
use crate::turn::transcript_line;
use crate::Store;

impl Store {
    /// The conversation of one chat on one channel, if it has committed a turn or is in one.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] when the stored row does not parse.
    pub async fn conversation_by_chat(
        &self,
        channel: Channel,
        chat_id: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE channel = $1 AND chat_id = $2"
        ))
        .bind(channel.as_str())
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        row.as_ref()
            .map(ConversationRecord::from_row)
            .transpose()
            .map_err(|error| self.error(error))
    }

    /// Every message of the conversation, in and out, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] when a stored row does not parse.
    pub async fn transcript(
        &self,
        conversation_id: Uuid,
    ) -> Result<Vec<TranscriptLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, direction, kind, text, author, created_at FROM messages
             WHERE conversation_id = $1 ORDER BY id",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter().map(transcript_line).collect()
    }

    /// The conversation's messages after the one with id `after`, oldest first: what a mirror
    /// (the Slack thread of a taken-over conversation) has not shown yet.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] when a stored row does not parse.
    pub async fn transcript_after(
        &self,
        conversation_id: Uuid,
        after: i64,
    ) -> Result<Vec<TranscriptLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, direction, kind, text, author, created_at FROM messages
             WHERE conversation_id = $1 AND id > $2 ORDER BY id",
        )
        .bind(conversation_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter().map(transcript_line).collect()
    }

    /// One conversation by its id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] when the stored row does not parse.
    pub async fn conversation(
        &self,
        conversation_id: Uuid,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1"
        ))
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        row.as_ref()
            .map(ConversationRecord::from_row)
            .transpose()
            .map_err(|error| self.error(error))
    }

    /// The conversation's rating, 1 to 5, if the prospect gave one.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn rating(&self, conversation_id: Uuid) -> Result<Option<u8>, StoreError> {
        let score: Option<i16> =
            sqlx::query_scalar("SELECT score FROM ratings WHERE conversation_id = $1")
                .bind(conversation_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|error| self.error(error))?;
        score
            .map(|score| {
                u8::try_from(score).map_err(|_| StoreError::corrupt(format!("rating {score}")))
            })
            .transpose()
    }
}
