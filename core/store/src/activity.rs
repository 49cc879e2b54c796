//! What the store committed, announced in process: a wake-up signal for whoever acts on it
//! (a channel's sender, the Slack mirror, the console), never the record itself.
//!
//! Announcements are sent only after the commit they describe, so a listener that reads the
//! store on hearing one finds what was announced. They are best-effort and in process: a
//! listener that lags behind the channel's capacity gets `RecvError::Lagged` and must resync
//! from the store, and so must every listener when it starts (nothing is replayed).

use closer_model::Channel;
use uuid::Uuid;

/// How many announcements a slow listener may fall behind before it must resync.
pub(crate) const CAPACITY: usize = 1024;

/// One thing the store committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The conversation it concerns, when it concerns one.
    pub conversation_id: Option<Uuid>,
    /// The conversation's channel and the platform's chat id, so that a channel can tell at
    /// once whether it is concerned.
    pub channel: Option<Channel>,
    pub chat_id: Option<String>,
    pub kind: ActivityKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityKind {
    /// A message from the prospect was recorded.
    Inbound,
    /// The assistant's replies were queued (pending on channels that deliver from the store).
    Replies,
    /// A person wrote to the prospect; on channels that deliver from the store it is pending.
    PersonMessage,
    /// A person took the conversation over: the assistant is silent until it is handed back.
    TakenOver { by: String },
    /// The conversation is the assistant's again.
    HandedBack,
    /// A lead was created, with its hand-offs queued.
    LeadCreated { lead_id: Uuid },
    /// A task was created by hand, with its hand-offs queued.
    TaskCreated { task_id: Uuid },
    /// A hand-off reached its target.
    HandoffDelivered {
        lead_id: Option<Uuid>,
        task_id: Option<Uuid>,
        target: String,
        url: Option<String>,
    },
}

impl crate::Store {
    /// Runs forever: calls `kick(chat_id)` for every chat of `channel` that a person wrote to
    /// (their message is pending, for the channel's sender to deliver), and for every chat
    /// with pending messages when announcements were missed. A channel's sender runs this
    /// beside its own kicks after each message it handles.
    pub async fn follow_person_messages(&self, channel: Channel, kick: impl Fn(&str)) {
        use tokio::sync::broadcast::error::RecvError;
        let mut activity = self.subscribe();
        loop {
            match activity.recv().await {
                Ok(Activity {
                    channel: Some(of),
                    chat_id: Some(chat_id),
                    kind: ActivityKind::PersonMessage,
                    ..
                }) if of == channel => kick(&chat_id),
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, %channel, "announcements missed; rereading pending messages");
                    match self.chats_with_pending_replies(channel).await {
                        Ok(chats) => chats.iter().for_each(|chat| kick(chat)),
                        Err(error) => tracing::warn!(%error, "cannot read pending messages"),
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}
