//! One inbound message, processed exactly once.
//!
//! [`Store::begin_turn`] opens a transaction, creates or locks the conversation's row
//! (`SELECT … FOR UPDATE`, so turns of one chat run one after the other) and records the
//! inbound message under a unique `(conversation, platform message id)` key. A message seen
//! before is a [`TurnStart::Duplicate`] carrying the replies stored the first time, and
//! nothing is written. Otherwise the open [`Turn`] holds the transaction until
//! [`Turn::commit`] saves the dialog's new state, the replies (linked to the inbound
//! message), a lead with one hand-off outbox row per target, a rating and events — all or
//! nothing. Dropping a `Turn` without committing rolls everything back, the inbound message
//! included, so the channel's redelivery is processed afresh.

use std::collections::BTreeSet;

use closer_model::{Citation, InboundContent, InboundMessage, Lang, NewLead, QuickReply, Reply};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::activity::{Activity, ActivityKind};
use crate::error::StoreError;
use crate::leads;
use crate::records::{parse_reply_kind, reply_kind_name, ConversationRecord, CONVERSATION_COLUMNS};
use crate::Store;

/// What [`Store::begin_turn`] found.
// One value per message, matched at once: boxing the turn would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum TurnStart {
    /// The message was processed before: send these replies again (they may be none).
    Duplicate { replies: Vec<Reply> },
    /// A new message: step the dialog, then [`Turn::commit`].
    New(Turn),
}

/// An inbound message being processed: the conversation's row is locked and the message
/// recorded, in a transaction that [`Turn::commit`] completes.
#[derive(Debug)]
pub struct Turn {
    /// The conversation as it was before this message.
    pub conversation: ConversationRecord,
    /// The inbound message's row: the replies point back at it.
    inbound_message_id: i64,
    /// The platform's id of the inbound message, which a draft is recorded by.
    inbound_platform_id: String,
    /// The reply (by index) that replaces a streamed draft, and the draft's platform id.
    draft: Option<(usize, String)>,
    transaction: Transaction<'static, Postgres>,
    /// For classifying errors with the server's (redacted) URL.
    store: Store,
}

/// Everything one dialog step produced, saved by [`Turn::commit`].
#[derive(Debug, Clone)]
pub struct TurnOutcome<'a> {
    /// The dialog's new state, stored as it is.
    pub state: serde_json::Value,
    pub lang: Lang,
    /// The dialog's stage name, for analytics.
    pub stage: &'a str,
    /// What is sent to the prospect, in order.
    pub replies: &'a [Reply],
    /// A lead captured by this message. A conversation has at most one lead: when it has
    /// one already, this is applied as an update and no second hand-off is queued.
    pub new_lead: Option<&'a NewLead>,
    /// New details for the conversation's lead; contact fields left `None` keep their
    /// stored values. Ignored when the conversation has no lead.
    pub lead_update: Option<&'a NewLead>,
    /// The hand-off targets a new lead is queued for: one outbox row each.
    pub handoff_targets: &'a [String],
    /// A rating of the conversation, 1 to 5; a later rating replaces it.
    pub rating: Option<u8>,
    /// Analytics events: a name and its detail.
    pub events: &'a [(String, serde_json::Value)],
    /// The campaign of the link the prospect came from, when this message says so; it
    /// replaces the conversation's earlier one.
    pub source_campaign: Option<&'a str>,
}

/// What [`Turn::commit`] saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The lead created by this turn (not one that was only updated).
    pub lead_id: Option<Uuid>,
}

/// How a reply's extras are kept in `messages.payload`; every field defaults, so rows
/// written by an older build still read.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct ReplyPayload {
    quick_replies: Vec<QuickReply>,
    citations: Vec<Citation>,
    request_contact: bool,
}

impl Store {
    /// Begins processing one inbound message in one transaction: creates or locks the
    /// conversation's row and records the message, unless it was recorded before.
    ///
    /// Two deliveries of the same message racing each other serialize on the conversation's
    /// row: the second sees the first's committed message and is a duplicate.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database is out of reach; [`StoreError::Corrupt`]
    /// when the stored conversation or replies do not parse.
    pub async fn begin_turn(&self, inbound: &InboundMessage) -> Result<TurnStart, StoreError> {
        let mut transaction = self.pool.begin().await.map_err(|error| self.error(error))?;
        let conversation = lock_conversation(&mut transaction, inbound)
            .await
            .map_err(|error| self.error(error))?;

        let (kind, text) = describe_inbound(&inbound.content);
        let payload = serde_json::json!({
            "content": inbound.content,
            "sender_name": inbound.sender_name,
            "received_at": inbound.received_at,
        });
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO messages
                 (conversation_id, direction, channel, platform_message_id, kind, text, payload)
             VALUES ($1, 'in', $2, $3, $4, $5, $6)
             ON CONFLICT (conversation_id, platform_message_id) DO NOTHING
             RETURNING id",
        )
        .bind(conversation.id)
        .bind(inbound.channel.as_str())
        .bind(&inbound.platform_message_id)
        .bind(kind)
        .bind(&text)
        .bind(&payload)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| self.error(error))?;

        match inserted {
            Some(inbound_message_id) => Ok(TurnStart::New(Turn {
                conversation,
                inbound_message_id,
                inbound_platform_id: inbound.platform_message_id.clone(),
                draft: None,
                transaction,
                store: self.clone(),
            })),
            None => {
                let replies = stored_replies(
                    &mut transaction,
                    conversation.id,
                    &inbound.platform_message_id,
                )
                .await
                .map_err(|error| self.error(error))?;
                // Nothing was written; ending the transaction releases the row lock now.
                transaction
                    .rollback()
                    .await
                    .map_err(|error| self.error(error))?;
                let replies = replies
                    .into_iter()
                    .map(reply_from_row)
                    .collect::<Result<_, _>>()?;
                Ok(TurnStart::Duplicate { replies })
            }
        }
    }
}

impl Turn {
    /// The id of the inbound message's row, for logs.
    pub fn inbound_message_id(&self) -> i64 {
        self.inbound_message_id
    }

    /// Makes the reply at `reply_index` replace the draft message `platform_id` (shown while
    /// the answer was streamed) by an edit, instead of arriving as a new message.
    pub fn replace_draft(&mut self, reply_index: usize, platform_id: String) {
        self.draft = Some((reply_index, platform_id));
    }

    /// Saves everything the step produced and commits, releasing the conversation's lock.
    ///
    /// # Errors
    /// [`StoreError::Rejected`] for a rating outside 1..=5; [`StoreError::Unavailable`]
    /// when the database is out of reach. Nothing is saved then, not even the inbound
    /// message.
    pub async fn commit(self, outcome: TurnOutcome<'_>) -> Result<Committed, StoreError> {
        if let Some(score) = outcome.rating {
            if !(1..=5).contains(&score) {
                return Err(StoreError::Rejected {
                    reason: format!("a rating must be 1 to 5, not {score}"),
                });
            }
        }
        let Turn {
            conversation,
            inbound_message_id,
            inbound_platform_id,
            draft,
            mut transaction,
            store,
        } = self;
        let lead_id = save_outcome(
            &mut transaction,
            &conversation,
            inbound_message_id,
            &outcome,
            draft.as_ref().map(|(index, id)| (*index, id.as_str())),
        )
        .await
        .map_err(|error| store.error(error))?;
        if draft.is_some() {
            // The reply row carries the draft from now on, and when it was first shown.
            sqlx::query(
                "WITH shown AS (
                     DELETE FROM reply_drafts
                     WHERE channel = $1 AND chat_id = $2 AND inbound_platform_id = $3
                     RETURNING created_at
                 )
                 UPDATE messages SET first_shown_at = shown.created_at
                 FROM shown
                 WHERE messages.reply_to = $4 AND messages.replaces_platform_id IS NOT NULL",
            )
            .bind(conversation.channel.as_str())
            .bind(&conversation.chat_id)
            .bind(&inbound_platform_id)
            .bind(inbound_message_id)
            .execute(&mut *transaction)
            .await
            .map_err(|error| store.error(error))?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| store.error(error))?;
        let announce = |kind| {
            store.announce(Activity {
                conversation_id: Some(conversation.id),
                channel: Some(conversation.channel),
                chat_id: Some(conversation.chat_id.clone()),
                kind,
            });
        };
        announce(ActivityKind::Inbound);
        if !outcome.replies.is_empty() {
            announce(ActivityKind::Replies);
        }
        if let Some(lead_id) = lead_id {
            announce(ActivityKind::LeadCreated { lead_id });
        }
        Ok(Committed { lead_id })
    }
}

/// Creates the conversation's row when it is new, then locks it for this transaction.
async fn lock_conversation(
    connection: &mut PgConnection,
    inbound: &InboundMessage,
) -> Result<ConversationRecord, sqlx::Error> {
    sqlx::query(
        "INSERT INTO conversations (id, channel, chat_id) VALUES ($1, $2, $3)
         ON CONFLICT (channel, chat_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(inbound.channel.as_str())
    .bind(&inbound.chat_id)
    .execute(&mut *connection)
    .await?;
    let row = sqlx::query(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations
         WHERE channel = $1 AND chat_id = $2 FOR UPDATE"
    ))
    .bind(inbound.channel.as_str())
    .bind(&inbound.chat_id)
    .fetch_one(&mut *connection)
    .await?;
    ConversationRecord::from_row(&row)
}

/// The replies stored for an inbound message processed before, in the order sent.
async fn stored_replies(
    connection: &mut PgConnection,
    conversation_id: Uuid,
    platform_message_id: &str,
) -> Result<Vec<(String, String, serde_json::Value)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT reply.kind, reply.text, reply.payload
         FROM messages inbound JOIN messages reply ON reply.reply_to = inbound.id
         WHERE inbound.conversation_id = $1 AND inbound.platform_message_id = $2
         ORDER BY reply.id",
    )
    .bind(conversation_id)
    .bind(platform_message_id)
    .fetch_all(connection)
    .await
}

pub(crate) fn reply_from_row(
    (kind, text, payload): (String, String, serde_json::Value),
) -> Result<Reply, StoreError> {
    let kind = parse_reply_kind(&kind)
        .ok_or_else(|| StoreError::corrupt(format!("reply kind {kind:?}")))?;
    let payload: ReplyPayload = serde_json::from_value(payload)
        .map_err(|error| StoreError::corrupt(format!("reply payload: {error}")))?;
    Ok(Reply {
        kind,
        text,
        quick_replies: payload.quick_replies,
        citations: payload.citations,
        request_contact: payload.request_contact,
    })
}

/// The inbound message's content type and a line of text for the transcript.
fn describe_inbound(content: &InboundContent) -> (&'static str, String) {
    match content {
        InboundContent::Text { text } => ("text", text.clone()),
        InboundContent::Start {
            campaign: Some(campaign),
        } => ("start", format!("/start {campaign}")),
        InboundContent::Start { campaign: None } => ("start", "/start".to_owned()),
        InboundContent::QuickReply { payload } => ("quick_reply", payload.clone()),
        InboundContent::SharedContact {
            phone,
            name: Some(name),
        } => ("shared_contact", format!("{name} {phone}")),
        InboundContent::SharedContact { phone, name: None } => {
            ("shared_contact", phone.to_string())
        }
        InboundContent::Unsupported { what } => ("unsupported", format!("[{what}]")),
    }
}

/// Writes the outcome inside the turn's transaction; returns the id of a lead it created.
async fn save_outcome(
    connection: &mut PgConnection,
    conversation: &ConversationRecord,
    inbound_message_id: i64,
    outcome: &TurnOutcome<'_>,
    draft: Option<(usize, &str)>,
) -> Result<Option<Uuid>, sqlx::Error> {
    let source_campaign: Option<String> = sqlx::query_scalar(
        "UPDATE conversations
         SET state = $2, lang = $3, stage = $4, source_campaign = COALESCE($5, source_campaign),
             updated_at = now(), last_message_at = now()
         WHERE id = $1
         RETURNING source_campaign",
    )
    .bind(conversation.id)
    .bind(&outcome.state)
    .bind(outcome.lang.as_str())
    .bind(outcome.stage)
    .bind(outcome.source_campaign)
    .fetch_one(&mut *connection)
    .await?;

    for (index, reply) in outcome.replies.iter().enumerate() {
        let replaces = draft.and_then(|(at, id)| (at == index).then_some(id));
        let payload = ReplyPayload {
            quick_replies: reply.quick_replies.clone(),
            citations: reply.citations.clone(),
            request_contact: reply.request_contact,
        };
        sqlx::query(
            "INSERT INTO messages
                 (conversation_id, direction, channel, kind, text, payload, reply_to, delivery,
                  replaces_platform_id)
             VALUES ($1, 'out', $2, $3, $4, $5, $6, CASE WHEN $7 THEN 'pending' END, $8)",
        )
        .bind(conversation.id)
        .bind(conversation.channel.as_str())
        .bind(reply_kind_name(reply.kind))
        .bind(&reply.text)
        .bind(sqlx::types::Json(&payload))
        .bind(inbound_message_id)
        .bind(conversation.channel.delivers_from_store())
        .bind(replaces)
        .execute(&mut *connection)
        .await?;
    }

    let mut created_lead = None;
    if let Some(lead) = outcome.new_lead {
        let lead_id = Uuid::new_v4();
        let inserted = leads::insert_lead(
            &mut *connection,
            lead_id,
            conversation,
            source_campaign.as_deref(),
            lead,
        )
        .await?;
        if inserted {
            let targets: BTreeSet<&str> =
                outcome.handoff_targets.iter().map(String::as_str).collect();
            for target in targets {
                leads::queue_handoff(&mut *connection, lead_id, target).await?;
            }
            created_lead = Some(lead_id);
        } else {
            tracing::warn!(
                conversation_id = %conversation.id,
                "the conversation has a lead already; the new lead updates it"
            );
            leads::update_lead(&mut *connection, conversation.id, lead).await?;
        }
    }
    if let Some(lead) = outcome.lead_update {
        leads::update_lead(&mut *connection, conversation.id, lead).await?;
    }

    if let Some(score) = outcome.rating {
        sqlx::query(
            "INSERT INTO ratings (conversation_id, score) VALUES ($1, $2)
             ON CONFLICT (conversation_id) DO UPDATE SET score = EXCLUDED.score, created_at = now()",
        )
        .bind(conversation.id)
        .bind(i16::from(score))
        .execute(&mut *connection)
        .await?;
    }

    for (name, detail) in outcome.events {
        sqlx::query("INSERT INTO events (conversation_id, name, detail) VALUES ($1, $2, $3)")
            .bind(conversation.id)
            .bind(name)
            .bind(detail)
            .execute(&mut *connection)
            .await?;
    }
    Ok(created_lead)
}

/// Reads rows of `messages` into transcript lines; shared with the transcript query.
pub(crate) fn transcript_line(
    row: &sqlx::postgres::PgRow,
) -> Result<crate::records::TranscriptLine, StoreError> {
    use crate::records::{Direction, TranscriptLine};
    let get = |error| StoreError::Unexpected(error);
    let direction: String = row.try_get("direction").map_err(get)?;
    let kind: String = row.try_get("kind").map_err(get)?;
    let direction = match direction.as_str() {
        "in" => Direction::In,
        "out" => Direction::Out,
        other => return Err(StoreError::corrupt(format!("message direction {other:?}"))),
    };
    let kind = match direction {
        Direction::In => None,
        Direction::Out => Some(
            parse_reply_kind(&kind)
                .ok_or_else(|| StoreError::corrupt(format!("reply kind {kind:?}")))?,
        ),
    };
    Ok(TranscriptLine {
        id: row.try_get("id").map_err(get)?,
        direction,
        text: row.try_get("text").map_err(get)?,
        kind,
        author: row.try_get("author").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
    })
}
