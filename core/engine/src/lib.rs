//! The conversation engine: the I/O shell around the pure dialog.
//!
//! For every inbound message it does, in order: dedupe by the platform's message id and
//! lock the conversation (one store transaction), ask the knowledge base, step the pure
//! dialog, and commit the new state, the replies, and any lead with its hand-off outbox
//! rows in that same transaction. Only then are the replies returned to the channel, so a
//! crash before the commit leaves nothing half-done and a redelivery after it is answered
//! from the store instead of being processed twice.
//!
//! - `team`: the sales team acts through it too: taking a conversation over, writing to the
//!   prospect, handing it back, and creating tasks and leads by hand.
//! - [`answers`]: a remote answer source (AnythingLLM) asked before the transaction, behind a
//!   deadline and a circuit breaker, with the built-in retriever as the fallback.
//! - [`delivery`]: pending replies delivered from the store, one loop for every channel that
//!   delivers that way; a channel implements [`Transport`] (render a reply, send one part).
//! - [`drafts`]: a streamed answer shown as it is written, in a message the channel edits.
//! - [`index`]: the knowledge index built over the stored documents, with the passages'
//!   embeddings cached in the store by content hash and model.
//! - [`poison`]: one update handled under a guard, so a panic or a repeating failure is
//!   dead-lettered instead of stopping or blocking the channel.
//! - [`kb_sync`]: the stored knowledge base pushed to an AnythingLLM workspace (`closer kb sync`)
//!   and kept there while Closer runs; a workspace not known to hold exactly the public
//!   documents never answers a prospect.
//! - `meaning`: the playbook's examples embedded once per model, and each message recognised
//!   against them by meaning ([`closer_dialog::meaning`]).
//! - [`team_questions`]: the sales team's questions, answered from every document without the
//!   sales dialog.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use closer_dialog::{DialogConfig, DialogState, Effect, Input};
use closer_knowledge::{AudienceFilter, Retriever};
use closer_model::{InboundContent, InboundMessage, Lang, NewLead, Reply, Route};
use closer_store::{Store, StoreError, TurnOutcome, TurnStart};
use tracing::Instrument;
use uuid::Uuid;

pub mod answers;
pub mod delivery;
pub mod drafts;
pub mod index;
pub mod kb_sync;
mod meaning;
pub mod poison;
mod team;
pub mod team_questions;

pub use answers::{AnswerPolicy, AnswerSource, RemoteAnswers, RemoteOutcome};
pub use delivery::{Delivery, DeliveryStats, SendError, Transport};
pub use drafts::{DraftError, Drafts};
pub use poison::{Guard, Verdict};
pub use team::ManualLead;

/// Why a message could not be handled. The message is not lost: nothing was committed,
/// so the channel may deliver it again.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database is unreachable or failed; retry later.
    #[error("the conversation store is unavailable: {0}")]
    Store(#[from] StoreError),
    /// The request cannot be carried out as asked (an empty message, a note without a
    /// contact, an unknown target); the reason is fit to show the person who asked.
    #[error("{0}")]
    Rejected(String),
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
    /// The targets a task asked for by hand goes to: every routed target unless configured.
    task_targets: Arc<[String]>,
    /// A remote answer source (AnythingLLM) for product questions, when configured.
    remote_answers: Option<Arc<RemoteAnswers>>,
    /// The sync keeping the remote source's workspace to the store's public documents: the
    /// source is asked only while the workspace is known to hold them.
    workspace_sync: Option<Arc<kb_sync::WorkspaceSync>>,
    /// Where the adapters report their connections' state, for the console's health page.
    health: closer_model::Health,
    /// The playbook's examples embedded with the model in use: intents recognised by meaning.
    meaning: Arc<meaning::Meaning>,
}

impl Engine {
    pub fn new(
        store: Store,
        dialog: DialogConfig,
        knowledge: Retriever,
        routes: Vec<Route>,
    ) -> Engine {
        let mut task_targets: Vec<String> = Vec::new();
        for route in &routes {
            if !task_targets.contains(&route.target) {
                task_targets.push(route.target.clone());
            }
        }
        Engine {
            store,
            dialog: Arc::new(dialog),
            knowledge: Arc::new(RwLock::new(Arc::new(knowledge))),
            routes: routes.into(),
            task_targets: task_targets.into(),
            remote_answers: None,
            workspace_sync: None,
            health: closer_model::Health::new(),
            meaning: Arc::default(),
        }
    }

    /// Sends tasks asked for by hand to these targets only (by default, every target of the
    /// routes).
    #[must_use]
    pub fn with_task_targets(mut self, targets: Vec<String>) -> Engine {
        self.task_targets = targets.into();
        self
    }

    /// Answers product questions from `source` (AnythingLLM) under `policy`, the built-in
    /// retriever standing in when it is slow, down or its breaker open.
    #[must_use]
    pub fn with_answer_source(
        mut self,
        source: Arc<dyn AnswerSource>,
        policy: AnswerPolicy,
    ) -> Engine {
        self.remote_answers = Some(Arc::new(RemoteAnswers::new(source, policy)));
        self
    }

    /// The remote answer source, when one is configured.
    pub fn remote_answers(&self) -> Option<&Arc<RemoteAnswers>> {
        self.remote_answers.as_ref()
    }

    /// Asks the remote answer source only while `sync` says its workspace holds exactly the
    /// store's public documents; the caller runs [`kb_sync::WorkspaceSync::run`].
    #[must_use]
    pub fn with_workspace_sync(mut self, sync: Arc<kb_sync::WorkspaceSync>) -> Engine {
        self.workspace_sync = Some(sync);
        self
    }

    /// The sync of the remote source's workspace, when one is configured.
    pub fn workspace_sync(&self) -> Option<&Arc<kb_sync::WorkspaceSync>> {
        self.workspace_sync.as_ref()
    }

    /// The registry every adapter reports its connection's state to.
    pub fn health(&self) -> &closer_model::Health {
        &self.health
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

    /// Embeds the playbook's examples with the knowledge base's model now, so that the first
    /// message does not wait for it (a few seconds); without a model it does nothing.
    pub async fn prepare_meaning(&self) {
        self.meaning.index(&self.dialog, &self.knowledge()).await;
    }

    /// The intents and objections `text` expresses by its meaning (the whole message's first,
    /// then its clauses'), when an embedding model is in use and the playbook has examples.
    pub async fn recognise(&self, text: &str) -> Vec<closer_dialog::Intent> {
        self.compare_meaning(text)
            .await
            .map(|(_, recognised)| recognised)
            .unwrap_or_default()
    }

    /// How `text` compares with the playbook's examples (the nearest intent, how near, by how
    /// much) and the intents recognised, for `closer eval` to show where a miss comes from.
    pub async fn compare_meaning(
        &self,
        text: &str,
    ) -> Option<(closer_dialog::Nearest, Vec<closer_dialog::Intent>)> {
        let knowledge = self.knowledge();
        let index = self.meaning.index(&self.dialog, &knowledge).await?;
        let text = text.to_owned();
        tokio::task::spawn_blocking(move || meaning::recognise(&index, &knowledge, &text))
            .await
            .ok()
            .flatten()
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
        self.handle_inner(inbound, None).instrument(span).await
    }

    /// Handles one inbound message exactly once, as [`Engine::handle`] does, showing an answer
    /// streamed by the remote answer source as it is written, in a draft message the channel
    /// edits (`drafts`); the reply that carries the answer then replaces the draft.
    ///
    /// # Errors
    /// As [`Engine::handle`].
    pub async fn handle_streaming(
        &self,
        inbound: &InboundMessage,
        drafts: &dyn Drafts,
    ) -> Result<Handled, EngineError> {
        let span = tracing::info_span!(
            "message",
            channel = inbound.channel.as_str(),
            conversation_id = tracing::field::Empty
        );
        self.handle_inner(inbound, Some(drafts))
            .instrument(span)
            .await
    }

    async fn handle_inner(
        &self,
        inbound: &InboundMessage,
        drafts: Option<&dyn Drafts>,
    ) -> Result<Handled, EngineError> {
        let started = Instant::now();
        // The remote source is asked before the transaction: its answer may take seconds,
        // and the conversation's row stays unlocked meanwhile.
        let (remote, draft) = self.ask_remote(inbound, drafts).await?;
        let mut turn = match self.store.begin_turn(inbound).await? {
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
        let conversation_id = turn.conversation.id;
        tracing::Span::current()
            .record("conversation_id", tracing::field::display(conversation_id));
        metrics::counter!("closer_messages_total", "channel" => inbound.channel.as_str())
            .increment(1);

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

        let remote_knowledge = match remote {
            Some(RemoteOutcome::Answered(answer)) => Some(Some(answer)),
            // A refusal: the dialog declines and offers a person; nothing is guessed.
            Some(RemoteOutcome::Refused) => Some(None),
            // Slow, failed, breaker open, or not asked: the built-in retriever answers.
            _ => None,
        };
        let meaning = match inbound.content.text() {
            Some(text) => self.recognise(text).await,
            None => Vec::new(),
        };
        let knowledge = match remote_knowledge {
            Some(knowledge) => knowledge,
            None => {
                let retrieval_started = Instant::now();
                let answer = self.built_in_answer(inbound, &state, &meaning).await;
                if inbound.content.text().is_some() {
                    metrics::histogram!("closer_retrieval_seconds")
                        .record(retrieval_started.elapsed().as_secs_f64());
                }
                answer
            }
        };
        let input = Input {
            content: inbound.content.clone(),
            sender_name: inbound.sender_name.clone(),
            knowledge,
            meaning,
        };
        let step = closer_dialog::step(&self.dialog, state, &input);
        if let Some(draft) = draft {
            if let Some(index) = drafts::replacing_reply(&step.replies) {
                turn.replace_draft(index, draft);
            }
        }
        self.finish_turn(inbound, turn, step, source_campaign, started)
            .await
    }

    /// The built-in retriever's answer to the message's text. With an embedding model the
    /// question is embedded off the async threads (CPU-bound, some 15 ms).
    async fn built_in_answer(
        &self,
        inbound: &InboundMessage,
        state: &DialogState,
        meaning: &[closer_dialog::Intent],
    ) -> Option<closer_model::KnowledgeAnswer> {
        let text = inbound.content.text()?;
        let lang = Lang::detect(text).unwrap_or(state.lang());
        let knowledge = self.knowledge();
        // An objection is searched with the playbook's words for it, then in the prospect's
        // own words, then with the playbook's words alone; the first query that finds a
        // good answer wins (`closer_dialog::knowledge_queries`).
        let queries = closer_dialog::knowledge_queries(&self.dialog, text, lang, meaning);
        // An objection is answered from the company's objection-handling guide when it has one:
        // its passage nearest to the objection (with the playbook's words for the kind).
        let objection = !closer_dialog::objections(&self.dialog, text, lang, meaning).is_empty();
        let prospect_text = text.to_owned();
        let search = move || {
            objection
                .then(|| queries.first())
                .flatten()
                .and_then(|query| knowledge.guide_answer(query, &prospect_text, lang))
                .or_else(|| {
                    queries
                        .iter()
                        .find_map(|query| knowledge.answer(query, lang, AudienceFilter::PublicOnly))
                })
        };
        if self.knowledge().embedding_model().is_none() {
            return search();
        }
        tokio::task::spawn_blocking(search).await.ok().flatten()
    }

    /// Asks the remote answer source, when one is configured and the message is a question
    /// the dialog would answer from the knowledge base. Read without a lock: a message of the
    /// same chat committed meanwhile can only make the question asked for nothing, or answered
    /// by the built-in retriever, never processed twice (the transaction decides that).
    ///
    /// With `drafts`, and streaming in the policy, the answer is shown as it is written; the
    /// draft's platform id comes back with the outcome.
    async fn ask_remote(
        &self,
        inbound: &InboundMessage,
        drafts: Option<&dyn Drafts>,
    ) -> Result<(Option<RemoteOutcome>, Option<String>), EngineError> {
        let (Some(remote), Some(text)) = (&self.remote_answers, inbound.content.text()) else {
            return Ok((None, None));
        };
        let conversation = self
            .store
            .conversation_by_chat(inbound.channel, &inbound.chat_id)
            .await?;
        let state = match &conversation {
            Some(conversation) => {
                if conversation.taken_over_by.is_some()
                    || self
                        .store
                        .inbound_recorded(conversation.id, &inbound.platform_message_id)
                        .await?
                {
                    return Ok((None, None));
                }
                restore_state(&conversation.state)
            }
            None => DialogState::default(),
        };
        if !uses_knowledge(&self.dialog, &state, inbound) {
            return Ok((None, None));
        }
        // A workspace that may hold an internal or stale document (a change not synced yet, a
        // failed sync, a document someone else added) is not asked: the built-in retriever,
        // which reads only public documents, answers.
        if self
            .workspace_sync
            .as_ref()
            .is_some_and(|sync| !sync.may_answer())
        {
            metrics::counter!("closer_anythingllm_answers_total", "outcome" => "not_in_sync")
                .increment(1);
            tracing::debug!(
                "the AnythingLLM workspace is not in sync: the built-in retriever answers"
            );
            return Ok((None, None));
        }
        let lang = Lang::detect(text).unwrap_or(state.lang());
        let session = format!("{}:{}", inbound.channel.as_str(), inbound.chat_id);
        let question = answers::Question {
            text,
            lang,
            session: &session,
        };
        match drafts.filter(|_| remote.policy().stream) {
            Some(drafts) => {
                let (progress, written) = tokio::sync::watch::channel(String::new());
                let target = drafts::DraftFor {
                    channel: inbound.channel,
                    chat_id: &inbound.chat_id,
                    inbound_platform_id: &inbound.platform_message_id,
                };
                let (outcome, draft) = tokio::join!(
                    remote.ask_streaming(&question, progress),
                    drafts::show(&self.store, drafts, target, written)
                );
                Ok((Some(outcome), draft))
            }
            None => Ok((Some(remote.ask(&question).await), None)),
        }
    }

    /// Commits what the dialog's step produced and returns the replies.
    async fn finish_turn(
        &self,
        inbound: &InboundMessage,
        turn: closer_store::Turn,
        step: closer_dialog::Step,
        source_campaign: Option<String>,
        started: Instant,
    ) -> Result<Handled, EngineError> {
        let conversation_id = turn.conversation.id;
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
        let channel = inbound.channel.as_str();
        if let Some(lead_id) = committed.lead_id {
            tracing::info!(%lead_id, "lead captured");
            metrics::counter!("closer_leads_total", "channel" => channel).increment(1);
        }
        // Until the replies are committed: channels that deliver from the store add their pacing.
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

/// Whether the dialog would use a knowledge-base answer for this message: the dialog is pure,
/// so it is stepped once, aside, with a marked answer, and its replies are checked for it.
fn uses_knowledge(dialog: &DialogConfig, state: &DialogState, inbound: &InboundMessage) -> bool {
    const PROBE: &str = "closer:probe";
    let probe = closer_model::KnowledgeAnswer {
        text: "Probe.".to_owned(),
        citations: vec![closer_model::Citation {
            title: PROBE.to_owned(),
            source: PROBE.to_owned(),
        }],
        score: 1.0,
    };
    let input = Input {
        content: inbound.content.clone(),
        sender_name: inbound.sender_name.clone(),
        knowledge: Some(probe),
        meaning: Vec::new(),
    };
    closer_dialog::step(dialog, state.clone(), &input)
        .replies
        .iter()
        .any(|reply| {
            reply
                .citations
                .iter()
                .any(|citation| citation.source == PROBE)
        })
}
