//! The web console's reads and writes: accounts, sessions and API tokens (hashes only), the
//! conversation list and detailed transcripts, and the website chat's message feed.

use chrono::{DateTime, Utc};
use closer_model::{Channel, Citation, QuickReply};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::StoreError;
use crate::records::parse_channel;
use crate::Store;

/// A console account as stored: the password only as its argon2 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
}

/// A live session: who it belongs to and the CSRF token its forms must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub account_id: Uuid,
    pub email: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// One line of the console's conversation list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: Uuid,
    pub channel: Channel,
    pub chat_id: String,
    pub stage: Option<String>,
    pub taken_over_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub messages: i64,
    /// The newest message's text, for a preview.
    pub last_text: Option<String>,
    /// The lead's contact, when the conversation has a lead.
    pub lead_name: Option<String>,
    pub lead_phone: Option<String>,
    pub lead_email: Option<String>,
}

/// What the conversation list is narrowed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationFilter {
    /// Words found in any message, the chat id or the lead's contact (case-insensitive).
    pub search: Option<String>,
    pub channel: Option<Channel>,
    pub stage: Option<String>,
    /// Only conversations a person has taken over.
    pub taken_over: bool,
    pub limit: i64,
}

/// One message as the console (and the website chat) shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleMessage {
    pub id: i64,
    /// `in` from the prospect, `out` from the assistant or a person.
    pub direction: String,
    /// The reply kind of an outbound message, the content type of an inbound one.
    pub kind: String,
    pub text: String,
    pub quick_replies: Vec<QuickReply>,
    pub citations: Vec<Citation>,
    /// Who wrote it, for a message a person sent during a takeover.
    pub author: Option<String>,
    /// `pending`, `sent` or `failed` on channels that deliver from the store.
    pub delivery: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessagePayload {
    quick_replies: Vec<QuickReply>,
    citations: Vec<Citation>,
}

const MESSAGE_COLUMNS: &str = "id, direction, kind, text, payload, author, delivery, created_at";

fn console_message(row: &PgRow) -> Result<ConsoleMessage, StoreError> {
    let get = StoreError::Unexpected;
    let payload: serde_json::Value = row.try_get("payload").map_err(get)?;
    // Inbound payloads hold the content instead: they simply have no buttons or citations.
    let payload: MessagePayload = serde_json::from_value(payload).unwrap_or_default();
    Ok(ConsoleMessage {
        id: row.try_get("id").map_err(get)?,
        direction: row.try_get("direction").map_err(get)?,
        kind: row.try_get("kind").map_err(get)?,
        text: row.try_get("text").map_err(get)?,
        quick_replies: payload.quick_replies,
        citations: payload.citations,
        author: row.try_get("author").map_err(get)?,
        delivery: row.try_get("delivery").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
    })
}

impl Store {
    /// Creates a console account, or sets a new password for an existing one; returns whether
    /// the account is new. The e-mail is stored lower-cased.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn upsert_console_account(
        &self,
        email: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let created: bool = sqlx::query_scalar(
            "INSERT INTO console_accounts (id, email, password_hash) VALUES ($1, lower($2), $3)
             ON CONFLICT (email) DO UPDATE
                 SET password_hash = EXCLUDED.password_hash, updated_at = now()
             RETURNING (xmax = 0)",
        )
        .bind(Uuid::new_v4())
        .bind(email)
        .bind(password_hash)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        if !created {
            // A new password signs every old session out.
            sqlx::query(
                "DELETE FROM console_sessions WHERE account_id =
                     (SELECT id FROM console_accounts WHERE email = lower($1))",
            )
            .bind(email)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        }
        Ok(created)
    }

    /// The account with this e-mail (any case).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn console_account(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        let row: Option<(Uuid, String, String)> = sqlx::query_as(
            "SELECT id, email, password_hash FROM console_accounts WHERE email = lower($1)",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(row.map(|(id, email, password_hash)| AccountRecord {
            id,
            email,
            password_hash,
        }))
    }

    /// Records a new session under the hash of its cookie's token; expired sessions are swept.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn create_console_session(
        &self,
        token_hash: &str,
        account_id: Uuid,
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at < now()")
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, account_id, csrf_token, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(csrf_token)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(())
    }

    /// The unexpired session with this token hash.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<(Uuid, String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT session.account_id, account.email, session.csrf_token, session.expires_at
             FROM console_sessions session
             JOIN console_accounts account ON account.id = session.account_id
             WHERE session.token_hash = $1 AND session.expires_at > now()",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(row.map(
            |(account_id, email, csrf_token, expires_at)| SessionRecord {
                account_id,
                email,
                csrf_token,
                expires_at,
            },
        ))
    }

    /// Ends a session (sign out).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn delete_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    /// Records an API token (its hash) for the account with this e-mail; `false` when there
    /// is no such account.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn create_api_token(
        &self,
        email: &str,
        name: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO console_api_tokens (id, account_id, name, token_hash)
             SELECT $1, id, $3, $4 FROM console_accounts WHERE email = lower($2)",
        )
        .bind(Uuid::new_v4())
        .bind(email)
        .bind(name)
        .bind(token_hash)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(inserted.rows_affected() > 0)
    }

    /// The e-mail of the account an API token (by hash) belongs to; notes its use.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn api_token_account(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "UPDATE console_api_tokens token SET last_used_at = now()
             FROM console_accounts account
             WHERE token.token_hash = $1 AND account.id = token.account_id
             RETURNING account.email",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }

    /// Conversations, newest activity first, narrowed by `filter`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] for an unknown stored channel.
    pub async fn console_conversations(
        &self,
        filter: &ConversationFilter,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let search = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(|text| format!("%{}%", text.replace(['\\', '%', '_'], "")));
        let rows = sqlx::query(
            "SELECT c.id, c.channel, c.chat_id, c.stage, c.taken_over_by, c.created_at,
                    c.last_message_at,
                    (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS messages,
                    (SELECT m.text FROM messages m WHERE m.conversation_id = c.id
                     ORDER BY m.id DESC LIMIT 1) AS last_text,
                    l.name AS lead_name, l.phone AS lead_phone, l.email AS lead_email
             FROM conversations c LEFT JOIN leads l ON l.conversation_id = c.id
             WHERE ($1::text IS NULL OR c.channel = $1)
               AND ($2::text IS NULL OR c.stage = $2)
               AND (NOT $3 OR c.taken_over_by IS NOT NULL)
               AND ($4::text IS NULL OR c.chat_id ILIKE $4 OR l.name ILIKE $4
                    OR l.phone ILIKE $4 OR l.email ILIKE $4
                    OR EXISTS (SELECT 1 FROM messages m
                               WHERE m.conversation_id = c.id AND m.text ILIKE $4))
             ORDER BY c.last_message_at DESC, c.id
             LIMIT $5",
        )
        .bind(filter.channel.map(Channel::as_str))
        .bind(filter.stage.as_deref().filter(|stage| !stage.is_empty()))
        .bind(filter.taken_over)
        .bind(search)
        .bind(if filter.limit > 0 { filter.limit } else { 100 })
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter()
            .map(|row| {
                let get = StoreError::Unexpected;
                let channel: String = row.try_get("channel").map_err(get)?;
                Ok(ConversationSummary {
                    id: row.try_get("id").map_err(get)?,
                    channel: parse_channel(&channel)
                        .map_err(|_| StoreError::corrupt(format!("channel {channel:?}")))?,
                    chat_id: row.try_get("chat_id").map_err(get)?,
                    stage: row.try_get("stage").map_err(get)?,
                    taken_over_by: row.try_get("taken_over_by").map_err(get)?,
                    created_at: row.try_get("created_at").map_err(get)?,
                    last_message_at: row.try_get("last_message_at").map_err(get)?,
                    messages: row.try_get("messages").map_err(get)?,
                    last_text: row.try_get("last_text").map_err(get)?,
                    lead_name: row.try_get("lead_name").map_err(get)?,
                    lead_phone: row.try_get("lead_phone").map_err(get)?,
                    lead_email: row.try_get("lead_email").map_err(get)?,
                })
            })
            .collect()
    }

    /// Every message of a conversation with its buttons and citations, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn console_messages(
        &self,
        conversation_id: Uuid,
    ) -> Result<Vec<ConsoleMessage>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY id"
        ))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter().map(console_message).collect()
    }

    /// The messages of one chat after the message `after` (an id from an earlier call), oldest
    /// first, at most `limit`: what the website chat polls for.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn chat_messages_after(
        &self,
        channel: Channel,
        chat_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ConsoleMessage>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE conversation_id = (SELECT id FROM conversations
                                      WHERE channel = $1 AND chat_id = $2)
               AND id > $3
             ORDER BY id LIMIT $4"
        ))
        .bind(channel.as_str())
        .bind(chat_id)
        .bind(after)
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter().map(console_message).collect()
    }

    /// The objection kinds recorded in a conversation, in the order first met.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn conversation_objections(
        &self,
        conversation_id: Uuid,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT kind FROM (
                 SELECT detail->>'kind' AS kind, min(id) AS first
                 FROM events WHERE conversation_id = $1 AND name = 'objection'
                 GROUP BY 1) kinds
             WHERE kind IS NOT NULL ORDER BY first",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }
}

/// One channel's state as the health page shows it: its last message and its replies' outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelHealth {
    pub channel: String,
    pub last_message_at: Option<DateTime<Utc>>,
    /// Replies waiting for the channel's sender.
    pub pending: i64,
    pub failed: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl ChannelHealth {
    /// A configured channel with no message yet.
    pub fn idle(channel: &str) -> ChannelHealth {
        ChannelHealth {
            channel: channel.to_owned(),
            last_message_at: None,
            pending: 0,
            failed: 0,
            last_error: None,
            last_error_at: None,
        }
    }
}

/// One hand-off target's state: its outbox rows by status and its last error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub target: String,
    pub pending: i64,
    pub failed: i64,
    pub delivered: i64,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// The newest error of a row not delivered since.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl TargetHealth {
    /// A configured target with no hand-off yet.
    pub fn idle(target: &str) -> TargetHealth {
        TargetHealth {
            target: target.to_owned(),
            pending: 0,
            failed: 0,
            delivered: 0,
            last_delivered_at: None,
            last_error: None,
            last_error_at: None,
        }
    }
}

impl Store {
    /// The hand-off outbox rows of one lead, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] for an unknown status.
    pub async fn lead_handoffs(
        &self,
        lead_id: Uuid,
    ) -> Result<Vec<crate::records::OutboxEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM handoff_outbox WHERE lead_id = $1 ORDER BY id",
            crate::records::OutboxEntry::COLUMNS
        ))
        .bind(lead_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter()
            .map(crate::records::OutboxEntry::from_row)
            .collect()
    }

    /// Every channel that has conversations: its last message and its replies' outbox.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn channel_health(&self) -> Result<Vec<ChannelHealth>, StoreError> {
        let rows: Vec<ChannelRow> = sqlx::query_as(
            "SELECT channel, max(created_at) AS last_message_at,
                    count(*) FILTER (WHERE delivery = 'pending') AS pending,
                    count(*) FILTER (WHERE delivery = 'failed') AS failed,
                    (array_agg(delivery_error ORDER BY id DESC)
                        FILTER (WHERE delivery = 'failed'))[1] AS last_error,
                    max(created_at) FILTER (WHERE delivery = 'failed') AS last_error_at
             FROM messages GROUP BY channel ORDER BY channel",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(rows
            .into_iter()
            .map(
                |(channel, last_message_at, pending, failed, last_error, last_error_at)| {
                    ChannelHealth {
                        channel,
                        last_message_at,
                        pending,
                        failed,
                        last_error,
                        last_error_at,
                    }
                },
            )
            .collect())
    }

    /// Every hand-off target with outbox rows: counts by status and its newest error.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn target_health(&self) -> Result<Vec<TargetHealth>, StoreError> {
        let rows: Vec<TargetRow> = sqlx::query_as(
            "SELECT target,
                    count(*) FILTER (WHERE status IN ('pending', 'in_flight')) AS pending,
                    count(*) FILTER (WHERE status = 'failed') AS failed,
                    count(*) FILTER (WHERE status = 'delivered') AS delivered,
                    max(delivered_at) AS last_delivered_at,
                    (array_agg(last_error ORDER BY updated_at DESC)
                        FILTER (WHERE status <> 'delivered' AND last_error IS NOT NULL))[1]
                        AS last_error,
                    max(updated_at) FILTER (WHERE status <> 'delivered' AND last_error IS NOT NULL)
                        AS last_error_at
             FROM handoff_outbox GROUP BY target ORDER BY target",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    target,
                    pending,
                    failed,
                    delivered,
                    last_delivered_at,
                    last_error,
                    last_error_at,
                )| {
                    TargetHealth {
                        target,
                        pending,
                        failed,
                        delivered,
                        last_delivered_at,
                        last_error,
                        last_error_at,
                    }
                },
            )
            .collect())
    }
}

type ChannelRow = (
    String,
    Option<DateTime<Utc>>,
    i64,
    i64,
    Option<String>,
    Option<DateTime<Utc>>,
);

type TargetRow = (
    String,
    i64,
    i64,
    i64,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<DateTime<Utc>>,
);
