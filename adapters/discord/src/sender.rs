//! Discord's side of delivering pending replies ([`closer_engine::delivery`] runs the loop:
//! order per conversation, retries, outcomes in the store): rendering a reply into messages
//! and sending each within Discord's limits.
//!
//! - **Where**: to the conversation's channel (mentioning the prospect in a server channel),
//!   or, after a slash command or the contact form was deferred, as the interaction's
//!   follow-ups, the first of which replaces "the bot is thinking…". A follow-up refused
//!   because the interaction is gone (its 15 minutes are over) is sent to the channel instead.
//! - **Pacing** ([`crate::pace`]): the channel's bucket and the bot's global limit before each
//!   message; a 429 pauses its channel (or everything, when global) for its `retry_after`, and
//!   the same message is sent again after it.
//! - **Failures**: Discord refusing a message (no permission, unknown channel) fails the reply
//!   for good; network errors and 5xx are transient.
//! - **Drafts**: the reply replacing a streamed answer's draft edits it (PATCH); a draft that
//!   is gone (404) gives way to a new message.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use closer_engine::{Delivery, DeliveryStats, DraftError, Drafts, SendError, Transport};
use closer_model::Channel;
use closer_store::{PendingReply, Store};
use tokio::time::Instant;

use crate::inbound::destination;
use crate::pace::{lock, Limits, Pacer};
use crate::render::{escape, render, Outgoing};
use crate::rest::{Rest, RestError};

pub use closer_engine::delivery::MAX_ATTEMPTS;

/// How long an interaction's token takes follow-ups (Discord allows 15 minutes).
const FOLLOWUP_WINDOW: Duration = Duration::from_secs(14 * 60);

/// Counters for logs and tests.
pub type SenderStats = DeliveryStats;

/// The sender shared by the gateway and the interactions endpoint: the delivery loop through
/// Discord (`kick`, `resume`, `stats`, `sweep`, `sweep_every` are the loop's, by `Deref`).
/// Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    delivery: Delivery<DiscordTransport>,
}

/// Discord's REST API behind the pacer: what the delivery loop sends through.
pub struct DiscordTransport {
    rest: Rest,
    pacer: Pacer,
    /// Deferred interactions whose follow-ups carry a conversation's replies.
    followups: Mutex<HashMap<String, Followup>>,
}

struct Followup {
    token: String,
    expires: Instant,
    /// A reply went out through it: the interaction is answered, and once the queue is
    /// drained, later replies go to the channel.
    used: bool,
}

/// One message of a reply, to its conversation's channel (or interaction).
pub struct Part {
    chat_id: String,
    channel: u64,
    outgoing: Outgoing,
}

impl Sender {
    pub(crate) fn new(rest: Rest, store: Store, limits: Limits) -> Sender {
        Sender {
            delivery: Delivery::new(
                store,
                DiscordTransport {
                    rest,
                    pacer: Pacer::new(limits),
                    followups: Mutex::new(HashMap::new()),
                },
            ),
        }
    }

    /// How many channels the pacer remembers; [`Delivery::sweep`] forgets idle ones.
    pub fn tracked_channels(&self) -> usize {
        self.discord().pacer.tracked_channels()
    }

    /// The next replies of `chat_id` answer a deferred interaction: they go as its follow-ups.
    pub fn follow_up(&self, chat_id: &str, token: &str) {
        lock(&self.discord().followups).insert(
            chat_id.to_owned(),
            Followup {
                token: token.to_owned(),
                expires: Instant::now() + FOLLOWUP_WINDOW,
                used: false,
            },
        );
    }

    fn discord(&self) -> &DiscordTransport {
        self.delivery.transport()
    }
}

impl Deref for Sender {
    type Target = Delivery<DiscordTransport>;

    fn deref(&self) -> &Self::Target {
        &self.delivery
    }
}

impl DiscordTransport {
    fn followup_token(&self, chat_id: &str) -> Option<String> {
        let now = Instant::now();
        lock(&self.followups)
            .get(chat_id)
            .filter(|followup| followup.expires > now)
            .map(|followup| followup.token.clone())
    }
}

#[async_trait]
impl Transport for DiscordTransport {
    type Part = Part;
    const CHANNEL: Channel = Channel::Discord;

    /// Forgets idle channels' pacing and expired interactions.
    fn sweep(&self) {
        self.pacer.sweep();
        let now = Instant::now();
        lock(&self.followups).retain(|_, followup| followup.expires > now);
    }

    fn render(&self, pending: &PendingReply, first: bool) -> Result<Vec<Part>, String> {
        let (channel, user) = destination(&pending.chat_id)
            .ok_or_else(|| "not a Discord conversation id".to_owned())?;
        let via_followup = self.followup_token(&pending.chat_id).is_some();
        // A follow-up shows whose command it answers; a channel message says it with a mention.
        let mention = user.filter(|_| first && !via_followup);
        Ok(render(&pending.reply, mention)
            .into_iter()
            .map(|outgoing| Part {
                chat_id: pending.chat_id.clone(),
                channel,
                outgoing,
            })
            .collect())
    }

    async fn send(
        &self,
        part: &mut Part,
        _first: bool,
        edit: Option<&str>,
    ) -> Result<String, SendError> {
        let channel = part.channel;
        let draft = edit.and_then(|id| id.parse::<u64>().ok());
        loop {
            self.pacer.wait_turn(channel).await;
            let token = self.followup_token(&part.chat_id);
            let body = &part.outgoing.body;
            let result = match (&token, draft) {
                (_, Some(id)) => self.rest.edit_message(channel, id, body).await,
                (Some(token), None) => self.rest.create_followup(token, body).await,
                (None, None) => self.rest.create_message(channel, body).await,
            };
            return match result {
                Err(RestError::Rejected { status: 404, .. }) if draft.is_some() => {
                    Err(SendError::EditTargetGone)
                }
                Ok(answer) => {
                    if let Some(wait) = answer.exhausted_for {
                        self.pacer.pause_channel(channel, wait);
                    }
                    if token.is_some() && draft.is_none() {
                        if let Some(followup) = lock(&self.followups).get_mut(&part.chat_id) {
                            followup.used = true;
                        }
                    }
                    let id = answer
                        .body
                        .get("id")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default();
                    Ok(id.to_owned())
                }
                Err(RestError::RateLimited {
                    retry_after,
                    global,
                }) => {
                    if global {
                        tracing::warn!(channel, "Discord's global limit: every channel waits");
                        self.pacer.pause_all(retry_after);
                    } else {
                        self.pacer.pause_channel(channel, retry_after);
                    }
                    Err(SendError::RetryAfter(retry_after))
                }
                Err(error) if token.is_some() && error.is_unknown_interaction() => {
                    tracing::info!(channel, %error, "the interaction is gone; replying in the channel");
                    lock(&self.followups).remove(&part.chat_id);
                    continue;
                }
                Err(error @ RestError::Rejected { .. }) => {
                    Err(SendError::Refused(error.to_string()))
                }
                Err(error @ RestError::Unavailable(_)) => {
                    Err(SendError::Transient(error.to_string()))
                }
            };
        }
    }

    /// An interaction answered through its follow-ups is done with: later replies go to the
    /// channel.
    fn drained(&self, chat_id: &str) {
        let mut followups = lock(&self.followups);
        if followups.get(chat_id).is_some_and(|followup| followup.used) {
            followups.remove(chat_id);
        }
    }
}

/// Streamed answers in channel messages: the draft is sent and edited within the channel's
/// pacing. An answer to a slash command comes as the interaction's follow-up and is not
/// streamed.
#[async_trait]
impl Drafts for Sender {
    async fn send_draft(&self, chat_id: &str, text: &str) -> Result<String, DraftError> {
        let (channel, _) = destination(chat_id)
            .ok_or_else(|| DraftError(format!("not a Discord conversation: {chat_id}")))?;
        if self.discord().followup_token(chat_id).is_some() {
            return Err(DraftError(
                "a command's answer comes as its follow-up, whole".to_owned(),
            ));
        }
        self.discord().pacer.wait_turn(channel).await;
        let answer = self
            .discord()
            .rest
            .create_message(channel, &draft_body(text))
            .await
            .map_err(|error| DraftError(error.to_string()))?;
        if let Some(wait) = answer.exhausted_for {
            self.discord().pacer.pause_channel(channel, wait);
        }
        answer
            .body
            .get("id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| DraftError("Discord answered without a message id".to_owned()))
    }

    async fn edit_draft(
        &self,
        chat_id: &str,
        message_id: &str,
        text: &str,
    ) -> Result<(), DraftError> {
        let (channel, _) = destination(chat_id)
            .ok_or_else(|| DraftError(format!("not a Discord conversation: {chat_id}")))?;
        let id = message_id
            .parse::<u64>()
            .map_err(|_| DraftError(format!("not a Discord message id: {message_id}")))?;
        self.discord().pacer.wait_turn(channel).await;
        let answer = self
            .discord()
            .rest
            .edit_message(channel, id, &draft_body(text))
            .await
            .map_err(|error| DraftError(error.to_string()))?;
        if let Some(wait) = answer.exhausted_for {
            self.discord().pacer.pause_channel(channel, wait);
        }
        Ok(())
    }
}

/// A draft's message: its text escaped (within Discord's 2,000 characters), mentioning nobody.
fn draft_body(text: &str) -> serde_json::Value {
    let content: String = escape(text).chars().take(2000).collect();
    serde_json::json!({
        "content": content,
        "allowed_mentions": { "parse": [] },
    })
}
