//! Human takeover from the lead's post: "Take over" silences the assistant in that
//! conversation and mirrors it into the post's thread; what the person writes in the thread
//! goes to the prospect on the prospect's platform; "Hand back" returns the assistant.
//!
//! The mirror is driven by the store's [`closer_store::Activity`] wake-ups but reads the
//! store itself, from the position it remembers (`slack_mirrors`): a lagged wake-up, or a
//! restart, only means it catches up. A line is posted, then the position advanced; a crash
//! between the two posts that one line again, never skips one.

use std::collections::HashMap;
use std::sync::Arc;

use closer_store::{Activity, ActivityKind, Direction};
use slack_morphism::prelude::*;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::leads::{PostState, HAND_BACK_ACTION, LEAD_TARGET, TAKE_OVER_ACTION};
use crate::render::{split_escaped, SECTION_CHARS};
use crate::sender::lock;
use crate::Slack;

/// The kind of a message a person wrote to the prospect.
const PERSON_KIND: &str = "person";
/// How many messages one mirror round reads.
const MIRROR_BATCH: i64 = 50;

/// Serialises mirroring per conversation, so two wake-ups never post a line twice.
#[derive(Default)]
pub(crate) struct MirrorLocks(std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>);

impl MirrorLocks {
    fn of(&self, conversation_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.0).entry(conversation_id).or_default().clone()
    }
}

/// A press of a button on a message: which button, for which conversation, by whom, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeadButtonPress {
    pub action_id: String,
    pub conversation_id: Uuid,
    pub user: String,
    pub channel: String,
    pub post_ts: String,
}

/// The button presses of an interaction that carry a conversation id (pure): a lead post's
/// buttons carry it as their value; any other press, or one from nowhere, is nothing.
pub(crate) fn lead_button_presses(interaction: &SlackInteractionEvent) -> Vec<LeadButtonPress> {
    let SlackInteractionEvent::BlockActions(actions) = interaction else {
        return Vec::new();
    };
    let SlackInteractionActionContainer::Message(container) = &actions.container else {
        return Vec::new();
    };
    let channel = container
        .channel_id
        .as_ref()
        .map(|channel| channel.0.clone())
        .or_else(|| actions.channel.as_ref().map(|channel| channel.id.0.clone()));
    let (Some(channel), Some(user)) = (channel, actions.user.as_ref()) else {
        return Vec::new();
    };
    actions
        .actions
        .iter()
        .flatten()
        .filter_map(|action| {
            let conversation_id = Uuid::parse_str(action.value.as_deref()?).ok()?;
            Some(LeadButtonPress {
                action_id: action.action_id.0.clone(),
                conversation_id,
                user: user.id.0.clone(),
                channel: channel.clone(),
                post_ts: container.message_ts.0.clone(),
            })
        })
        .collect()
}

impl Slack {
    /// A button press on a lead's post.
    pub async fn process_interaction(&self, interaction: &SlackInteractionEvent) {
        let team = match interaction {
            SlackInteractionEvent::BlockActions(actions) => Some(actions.team.id.0.clone()),
            _ => None,
        };
        for press in lead_button_presses(interaction) {
            let LeadButtonPress {
                action_id,
                conversation_id,
                user,
                channel,
                post_ts,
            } = press;
            // Only the team takes a prospect's conversation over or hands it back.
            if let Err(refusal) = self
                .member(&user, team.as_deref(), closer_model::Lang::En)
                .await
            {
                let chat = crate::ChatRef {
                    channel: channel.clone(),
                    thread_ts: None,
                };
                self.tell_only(&user, &chat, refusal).await;
                continue;
            }
            let result = match action_id.as_str() {
                TAKE_OVER_ACTION => {
                    self.take_over(conversation_id, &user, &channel, &post_ts)
                        .await
                }
                HAND_BACK_ACTION => self.hand_back(conversation_id, &channel, &post_ts).await,
                _ => Ok(()),
            };
            if let Err(error) = result {
                tracing::warn!(%error, %conversation_id, "a lead button could not be handled");
            }
        }
    }

    async fn take_over(
        &self,
        conversation_id: Uuid,
        user: &str,
        channel: &str,
        post_ts: &str,
    ) -> Result<(), closer_engine::EngineError> {
        self.engine().take_over(conversation_id, user).await?;
        self.engine()
            .store()
            .start_mirror(conversation_id, channel, post_ts)
            .await?;
        self.refresh_post(conversation_id, channel, post_ts).await;
        self.mirror(conversation_id).await;
        Ok(())
    }

    async fn hand_back(
        &self,
        conversation_id: Uuid,
        channel: &str,
        post_ts: &str,
    ) -> Result<(), closer_engine::EngineError> {
        // What the prospect said last is in the thread before the assistant speaks again.
        self.mirror(conversation_id).await;
        self.engine().hand_back(conversation_id).await?;
        self.refresh_post(conversation_id, channel, post_ts).await;
        Ok(())
    }

    /// Updates a lead's post to the conversation's state: who has it, the tracker's link.
    async fn refresh_post(&self, conversation_id: Uuid, channel: &str, post_ts: &str) {
        let Some(posts) = self.lead_posts() else {
            return;
        };
        let store = self.engine().store();
        let Ok(Some(lead)) = store.lead_for_conversation(conversation_id).await else {
            return;
        };
        let state = self.post_state(lead.id, conversation_id).await;
        if let Err(error) = posts
            .update(&format!("{channel}:{post_ts}"), &lead, &state)
            .await
        {
            tracing::warn!(%error, "could not update the lead's post");
        }
    }

    async fn post_state(&self, lead_id: Uuid, conversation_id: Uuid) -> PostState {
        let store = self.engine().store();
        let tracker_url = match store.lead_with_handoffs(lead_id).await {
            Ok(Some((_, entries))) => entries
                .into_iter()
                .filter(|entry| entry.target != LEAD_TARGET)
                .find_map(|entry| entry.external_url),
            _ => None,
        };
        let taken_over_by = store
            .conversation(conversation_id)
            .await
            .ok()
            .flatten()
            .and_then(|conversation| conversation.taken_over_by);
        PostState {
            taken_over_by,
            tracker_url,
        }
    }

    /// A person's message in a thread: when the thread is a taken-over lead's post, it goes
    /// to the prospect, once per Slack message.
    pub(crate) async fn thread_message(
        &self,
        channel: &str,
        thread_ts: &str,
        ts: &str,
        user: &str,
        text: &str,
    ) -> Result<(), closer_engine::EngineError> {
        let store = self.engine().store();
        let Some(lead) = store
            .lead_by_external_id(LEAD_TARGET, &format!("{channel}:{thread_ts}"))
            .await?
        else {
            return Ok(());
        };
        let taken = store
            .conversation(lead.conversation_id)
            .await?
            .and_then(|conversation| conversation.taken_over_by);
        if taken.is_none() || text.trim().is_empty() {
            return Ok(());
        }
        // Only the team writes to a prospect.
        let chat = crate::ChatRef {
            channel: channel.to_owned(),
            thread_ts: Some(thread_ts.to_owned()),
        };
        let lang = closer_model::Lang::detect(text).unwrap_or_default();
        if !self.member_or_refuse(user, None, &chat, lang).await? {
            return Ok(());
        }
        self.engine()
            .send_as_person(
                lead.conversation_id,
                &format!("slack:{channel}:{ts}"),
                user,
                text,
            )
            .await?;
        Ok(())
    }

    /// Follows the store's activity until the sender goes away: mirrors taken-over
    /// conversations and shows a tracker's link on the lead's post once it is known.
    pub async fn follow_activity(&self) {
        let mut activity = self.engine().store().subscribe();
        self.resync().await;
        loop {
            match activity.recv().await {
                Ok(event) => self.on_activity(event).await,
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "activity lagged; catching up from the store");
                    self.resync().await;
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    async fn on_activity(&self, event: Activity) {
        match event.kind {
            ActivityKind::HandoffDelivered {
                lead_id: Some(lead_id),
                target,
                ..
            } if target != LEAD_TARGET => {
                self.show_tracker_link(lead_id).await;
            }
            ActivityKind::Inbound | ActivityKind::Replies | ActivityKind::PersonMessage => {
                let Some(conversation_id) = event.conversation_id else {
                    return;
                };
                if let Ok(Some(_)) = self.engine().store().mirror_position(conversation_id).await {
                    self.mirror(conversation_id).await;
                }
            }
            _ => {}
        }
    }

    async fn resync(&self) {
        match self.engine().store().mirrored_conversations().await {
            Ok(conversations) => {
                for conversation_id in conversations {
                    self.mirror(conversation_id).await;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the mirrored conversations"),
        }
    }

    async fn show_tracker_link(&self, lead_id: Uuid) {
        let store = self.engine().store();
        let Ok(Some((lead, entries))) = store.lead_with_handoffs(lead_id).await else {
            return;
        };
        let Some(post_id) = entries
            .iter()
            .find(|entry| entry.target == LEAD_TARGET)
            .and_then(|entry| entry.external_id.clone())
        else {
            return;
        };
        let Some((channel, ts)) = post_id.split_once(':') else {
            return;
        };
        self.refresh_post(lead.conversation_id, channel, ts).await;
    }

    /// Posts the conversation's messages not yet mirrored into the lead's thread, in order.
    pub(crate) async fn mirror(&self, conversation_id: Uuid) {
        let guard = self.inner.mirrors.of(conversation_id);
        let _mirroring = guard.lock().await;
        let store = self.engine().store();
        loop {
            let position = match store.mirror_position(conversation_id).await {
                Ok(Some(position)) => position,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the mirror's position");
                    return;
                }
            };
            let lines = match store
                .messages_after(conversation_id, position.last_message_id, MIRROR_BATCH)
                .await
            {
                Ok(lines) => lines,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the conversation to mirror");
                    return;
                }
            };
            if lines.is_empty() {
                return;
            }
            for line in lines {
                if line.kind == PERSON_KIND {
                    // The person wrote it in this thread: it is there already.
                } else {
                    let who = match line.direction {
                        Direction::In => "Prospect",
                        Direction::Out => "Assistant",
                    };
                    let body = split_escaped(&line.text, SECTION_CHARS - 40)
                        .into_iter()
                        .next()
                        .unwrap_or_default();
                    let content = crate::render::message(&format!("*{who}:* {}", body), None);
                    if let Err(error) = self
                        .sender()
                        .post_paced(&position.channel, Some(&position.thread_ts), content)
                        .await
                    {
                        tracing::warn!(%error, "could not mirror a message into the lead's thread");
                        return;
                    }
                }
                if let Err(error) = store.advance_mirror(conversation_id, line.message_id).await {
                    tracing::warn!(%error, "cannot record the mirror's position");
                    return;
                }
            }
        }
    }
}
