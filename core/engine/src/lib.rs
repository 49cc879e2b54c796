//! The conversation engine: the I/O shell around the pure dialog.
//!
//! For every inbound message it does, in order: dedupe by the platform's message id and
//! lock the conversation (one store transaction), ask the knowledge base, step the pure
//! dialog, and commit the new state, the replies, and any lead with its hand-off outbox
//! rows in that same transaction. Only then are the replies returned to the channel, so a
//! crash before the commit leaves nothing half-done and a redelivery after it is answered
//! from the store instead of being processed twice.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use closer_dialog::{DialogConfig, DialogState, Effect, Input};
use closer_knowledge::{AudienceFilter, Retriever};
use closer_model::{InboundContent, InboundMessage, Lang, NewLead, Reply, Route};
use closer_store::{Store, StoreError, TurnOutcome, TurnStart};
use tracing::Instrument;
use uuid::Uuid;

/// Why a message could not be handled. The message is not lost: nothing was committed,
/// so the channel may deliver it again.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database is unreachable or failed; retry later.
    #[error("the conversation store is unavailable: {0}")]
    Store(#[from] StoreError),
}

/// What became of one inbound message.
#[derive(Debug, Clone)]
pub struct Handled {
    pub conversation_id: Option<Uuid>,
    /// What to send to the prospect, in order.
    pub replies: Vec<Reply>,
    /// The message had been processed before: `replies` are the ones stored then.
    pub duplicate: bool,
    /// A lead created by this message.
    pub lead_id: Option<Uuid>,
}

/// The engine shared by every channel. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    dialog: Arc<DialogConfig>,
    /// Swapped whole when the knowledge base is re-imported, so a search never sees half an index.
    knowledge: Arc<RwLock<Arc<Retriever>>>,
    /// The hand-off routes a new lead is matched against, from configuration.
    routes: Arc<[Route]>,
}

impl Engine {
    pub fn new(
        store: Store,
        dialog: DialogConfig,
        knowledge: Retriever,
        routes: Vec<Route>,
    ) -> Engine {
        Engine {
            store,
            dialog: Arc::new(dialog),
            knowledge: Arc::new(RwLock::new(Arc::new(knowledge))),
            routes: routes.into(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn dialog_config(&self) -> &DialogConfig {
        &self.dialog
    }

    /// The knowledge base in use now.
    pub fn knowledge(&self) -> Arc<Retriever> {
        // A poisoned lock only means a writer panicked while swapping an Arc: the value is whole.
        match self.knowledge.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the knowledge base, e.g. after `kb import`.
    pub fn replace_knowledge(&self, retriever: Retriever) {
        let fresh = Arc::new(retriever);
        match self.knowledge.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// Handles one inbound message exactly once.
    ///
    /// # Errors
    /// [`EngineError::Store`] when the database fails; nothing has been committed then.
    pub async fn handle(&self, inbound: &InboundMessage) -> Result<Handled, EngineError> {
        let span = tracing::info_span!(
            "message",
            channel = inbound.channel.as_str(),
            conversation_id = tracing::field::Empty
        );
        self.handle_inner(inbound).instrument(span).await
    }

    async fn handle_inner(&self, inbound: &InboundMessage) -> Result<Handled, EngineError> {
        let started = Instant::now();
        let turn = match self.store.begin_turn(inbound).await? {
            TurnStart::Duplicate { replies } => {
                tracing::info!("duplicate message ignored");
                return Ok(Handled {
                    conversation_id: None,
                    replies,
                    duplicate: true,
                    lead_id: None,
                });
            }
            TurnStart::New(turn) => turn,
        };
        let channel = inbound.channel.as_str();
        metrics::counter!("closer_messages_total", "channel" => channel).increment(1);
        let conversation_id = turn.conversation.id;
        tracing::Span::current()
            .record("conversation_id", tracing::field::display(conversation_id));

        let state = restore_state(&turn.conversation.state);
        let source_campaign = match &inbound.content {
            InboundContent::Start {
                campaign: Some(campaign),
            } => Some(campaign.clone()),
            _ => None,
        };

        // A person has taken the conversation over: record the message, say nothing.
        if turn.conversation.taken_over_by.is_some() {
            let state_json = serde_json::to_value(&state).unwrap_or(serde_json::Value::Null);
            let lang = state.lang();
            turn.commit(TurnOutcome {
                state: state_json,
                lang,
                stage: state.stage_name(),
                replies: &[],
                new_lead: None,
                lead_update: None,
                handoff_targets: &[],
                rating: None,
                events: &[],
                source_campaign: source_campaign.as_deref(),
            })
            .await?;
            return Ok(Handled {
                conversation_id: Some(conversation_id),
                replies: Vec::new(),
                duplicate: false,
                lead_id: None,
            });
        }

        let retrieval_started = Instant::now();
        let knowledge = inbound.content.text().and_then(|text| {
            let lang = Lang::detect(text).unwrap_or(state.lang());
            let knowledge = self.knowledge();
            // An objection searches with the playbook's words for it first; when that finds
            // nothing (the words can dilute a question that merely sounds like an objection),
            // the prospect's own words still get their answer.
            let query = closer_dialog::knowledge_query(&self.dialog, text, lang);
            knowledge
                .answer(&query, lang, AudienceFilter::PublicOnly)
                .or_else(|| {
                    (query != text)
                        .then(|| knowledge.answer(text, lang, AudienceFilter::PublicOnly))
                        .flatten()
                })
        });
        if inbound.content.text().is_some() {
            metrics::histogram!("closer_retrieval_seconds")
                .record(retrieval_started.elapsed().as_secs_f64());
        }
        let input = Input {
            content: inbound.content.clone(),
            sender_name: inbound.sender_name.clone(),
            knowledge,
        };
        let step = closer_dialog::step(&self.dialog, state, &input);

        let mut new_lead: Option<NewLead> = None;
        let mut lead_update: Option<NewLead> = None;
        let mut rating = None;
        let mut events: Vec<(String, serde_json::Value)> = Vec::new();
        for effect in step.effects {
            match effect {
                Effect::CreateLead(lead) => new_lead = Some(lead),
                Effect::UpdateLead(lead) => lead_update = Some(lead),
                Effect::RecordRating(score) => rating = Some(score),
                Effect::HandOff { reason } => {
                    events.push((
                        "handoff".to_owned(),
                        serde_json::json!({ "reason": reason }),
                    ));
                }
                Effect::Event { name, detail } => events.push((name.to_string(), detail)),
            }
        }
        let targets = new_lead.as_ref().map_or_else(Vec::new, |lead| {
            let campaign = source_campaign
                .as_deref()
                .or(turn.conversation.source_campaign.as_deref());
            closer_model::route(&self.routes, inbound.channel, campaign, lead)
        });
        let state_json = serde_json::to_value(&step.state).unwrap_or(serde_json::Value::Null);
        let committed = turn
            .commit(TurnOutcome {
                state: state_json,
                lang: step.state.lang(),
                stage: step.state.stage_name(),
                replies: &step.replies,
                new_lead: new_lead.as_ref(),
                lead_update: lead_update.as_ref(),
                handoff_targets: &targets,
                rating,
                events: &events,
                source_campaign: source_campaign.as_deref(),
            })
            .await?;
        if let Some(lead_id) = committed.lead_id {
            tracing::info!(%lead_id, "lead captured");
            metrics::counter!("closer_leads_total", "channel" => channel).increment(1);
        }
        // Until the reply is committed: channels that deliver from the store add their pacing.
        metrics::counter!("closer_replies_total", "channel" => channel)
            .increment(step.replies.len() as u64);
        metrics::histogram!("closer_reply_seconds", "channel" => channel)
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            replies = step.replies.len(),
            "handled"
        );
        Ok(Handled {
            conversation_id: Some(conversation_id),
            replies: step.replies,
            duplicate: false,
            lead_id: committed.lead_id,
        })
    }
}

/// The stored dialog state, or a fresh one for a new conversation. A state that no longer
/// parses (after an incompatible upgrade) starts the dialog over rather than failing every
/// message of that conversation: the transcript and any lead are kept in their own tables.
fn restore_state(stored: &serde_json::Value) -> DialogState {
    if stored.is_null() {
        return DialogState::default();
    }
    serde_json::from_value(stored.clone()).unwrap_or_else(|error| {
        tracing::warn!(%error, "stored dialog state does not parse; starting the dialog over");
        DialogState::default()
    })
}
