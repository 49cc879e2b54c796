//! Drafts of streamed answers: the message a channel shows and edits while an answer is being
//! written, recorded by the inbound message it answers so a redelivery of that message edits
//! the same draft instead of showing a second one. The turn's commit hands the draft to the
//! reply that replaces it ([`crate::Turn::replace_draft`]) and removes its row here.

use closer_model::Channel;

use crate::error::StoreError;
use crate::Store;

impl Store {
    /// The draft shown for an inbound message before, if any: its platform id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn draft_for(
        &self,
        channel: Channel,
        chat_id: &str,
        inbound_platform_id: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT platform_message_id FROM reply_drafts
             WHERE channel = $1 AND chat_id = $2 AND inbound_platform_id = $3",
        )
        .bind(channel.as_str())
        .bind(chat_id)
        .bind(inbound_platform_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }

    /// Records the draft shown for an inbound message; a draft recorded before is kept (it is
    /// the one on the prospect's screen) and returned.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn record_draft(
        &self,
        channel: Channel,
        chat_id: &str,
        inbound_platform_id: &str,
        platform_message_id: &str,
    ) -> Result<String, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO reply_drafts (channel, chat_id, inbound_platform_id, platform_message_id)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel, chat_id, inbound_platform_id)
                 DO UPDATE SET channel = EXCLUDED.channel
             RETURNING platform_message_id",
        )
        .bind(channel.as_str())
        .bind(chat_id)
        .bind(inbound_platform_id)
        .bind(platform_message_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }
}
