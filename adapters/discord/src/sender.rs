//! The paced sender: reads a conversation's pending replies from the store in order, sends
//! them within Discord's limits, and marks each sent or failed.
//!
//! - **Where**: to the conversation's channel (mentioning the prospect in a server channel),
//!   or, after a slash command or the contact form was deferred, as the interaction's
//!   follow-ups, the first of which replaces "the bot is thinking…". A follow-up refused
//!   because the interaction is gone (its 15 minutes are over) is sent to the channel instead.
//! - **Order**: one worker per conversation drains its queue oldest first; a conversation
//!   kicked while its worker runs is drained again before the worker exits. A 429 makes the
//!   worker wait and send the *same* message again, so nothing overtakes it.
//! - **Pacing** ([`crate::pace`]): the channel's bucket and the bot's global limit before each
//!   message; a 429 pauses its channel (or everything, when global) for its `retry_after`.
//! - **Failures**: Discord refusing a message (no permission, unknown channel) marks the
//!   reply failed with the reason, never retried; network errors and 5xx back off with jitter
//!   up to [`MAX_ATTEMPTS`]. The database being away delays the queue and loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use closer_engine::{DraftError, Drafts};
use closer_model::Channel;
use closer_store::{PendingReply, Store};
use tokio::time::Instant;

use crate::inbound::destination;
use crate::pace::{lock, Limits, Pacer};
use crate::render::{escape, render};
use crate::rest::{Rest, RestError};

/// Transient failures of one reply before it is given up as failed.
pub const MAX_ATTEMPTS: i32 = 10;
/// How many pending replies a worker reads at a time.
const BATCH: i64 = 20;
/// How long an interaction's token takes follow-ups (Discord allows 15 minutes).
const FOLLOWUP_WINDOW: Duration = Duration::from_secs(14 * 60);

/// Counters for logs and tests.
#[derive(Debug, Default)]
pub struct SenderStats {
    pub messages_sent: AtomicU64,
    pub rate_limited: AtomicU64,
    pub transient_errors: AtomicU64,
    pub replies_failed: AtomicU64,
}

/// The sender shared by the gateway and the interactions endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

struct Inner {
    rest: Rest,
    store: Store,
    pacer: Pacer,
    /// Conversations with a running worker; `true` when kicked again while it runs.
    active: Mutex<HashMap<String, bool>>,
    /// Deferred interactions whose follow-ups carry a conversation's replies.
    followups: Mutex<HashMap<String, Followup>>,
    stats: SenderStats,
}

struct Followup {
    token: String,
    expires: Instant,
    /// A reply went out through it: the interaction is answered, and once the queue is
    /// drained, later replies go to the channel.
    used: bool,
}

impl Sender {
    pub(crate) fn new(rest: Rest, store: Store, limits: Limits) -> Sender {
        Sender {
            inner: Arc::new(Inner {
                rest,
                store,
                pacer: Pacer::new(limits),
                active: Mutex::new(HashMap::new()),
                followups: Mutex::new(HashMap::new()),
                stats: SenderStats::default(),
            }),
        }
    }

    pub fn stats(&self) -> &SenderStats {
        &self.inner.stats
    }

    /// How many channels the pacer remembers; [`Sender::sweep`] forgets idle ones.
    pub fn tracked_channels(&self) -> usize {
        self.inner.pacer.tracked_channels()
    }

    /// Forgets idle channels' pacing and expired interactions.
    pub fn sweep(&self) {
        self.inner.pacer.sweep();
        let now = Instant::now();
        lock(&self.inner.followups).retain(|_, followup| followup.expires > now);
    }

    /// The next replies of `chat_id` answer a deferred interaction: they go as its follow-ups.
    pub fn follow_up(&self, chat_id: &str, token: &str) {
        lock(&self.inner.followups).insert(
            chat_id.to_owned(),
            Followup {
                token: token.to_owned(),
                expires: Instant::now() + FOLLOWUP_WINDOW,
                used: false,
            },
        );
    }

    /// Starts sending a conversation's pending replies, unless a worker is on it already.
    pub fn kick(&self, chat_id: &str) {
        {
            let mut active = lock(&self.inner.active);
            if let Some(again) = active.get_mut(chat_id) {
                *again = true;
                return;
            }
            active.insert(chat_id.to_owned(), false);
        }
        let sender = self.clone();
        let chat_id = chat_id.to_owned();
        tokio::spawn(async move { sender.drain(chat_id).await });
    }

    /// Kicks every conversation with replies left pending, e.g. by a crash; retries until
    /// the store answers.
    pub async fn resume(&self) {
        let mut delay = Duration::from_millis(500);
        loop {
            match self
                .inner
                .store
                .chats_with_pending_replies(Channel::Discord)
                .await
            {
                Ok(chats) => {
                    if !chats.is_empty() {
                        tracing::info!(
                            chats = chats.len(),
                            "resuming Discord replies left pending"
                        );
                    }
                    for chat in chats {
                        self.kick(&chat);
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read pending replies; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Sweeps every `period`, forever.
    pub async fn sweep_every(&self, period: Duration) {
        let mut interval = tokio::time::interval(period);
        interval.tick().await;
        loop {
            interval.tick().await;
            self.sweep();
        }
    }

    async fn drain(&self, chat_id: String) {
        let mut store_delay = Duration::from_millis(200);
        // The first message of a drain mentions the prospect in a server channel.
        let mut first = true;
        loop {
            let pending = match self
                .inner
                .store
                .pending_replies(Channel::Discord, &chat_id, BATCH)
                .await
            {
                Ok(pending) => pending,
                Err(error) => {
                    tracing::warn!(%error, chat_id, "cannot read pending replies; retrying");
                    tokio::time::sleep(store_delay).await;
                    store_delay = (store_delay * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            store_delay = Duration::from_millis(200);
            if pending.is_empty() {
                let mut active = lock(&self.inner.active);
                if active.get(&chat_id).copied().unwrap_or(false) {
                    active.insert(chat_id.clone(), false);
                    first = true;
                    continue;
                }
                active.remove(&chat_id);
                let mut followups = lock(&self.inner.followups);
                if followups
                    .get(&chat_id)
                    .is_some_and(|followup| followup.used)
                {
                    followups.remove(&chat_id);
                }
                return;
            }
            for reply in pending {
                self.deliver(reply, &mut first).await;
            }
        }
    }

    fn followup_token(&self, chat_id: &str) -> Option<String> {
        let now = Instant::now();
        lock(&self.inner.followups)
            .get(chat_id)
            .filter(|followup| followup.expires > now)
            .map(|followup| followup.token.clone())
    }

    /// Sends one reply (one or more messages) and records the outcome.
    async fn deliver(&self, pending: PendingReply, first: &mut bool) {
        let Some((channel, user)) = destination(&pending.chat_id) else {
            self.give_up(&pending, "not a Discord conversation id")
                .await;
            return;
        };
        let mut sent_ids = Vec::new();
        let mut attempts = pending.attempts;
        let via_followup = self.followup_token(&pending.chat_id).is_some();
        // A follow-up shows whose command it answers; a channel message says it with a mention.
        let mention = user.filter(|_| *first && !via_followup);
        for (index, part) in render(&pending.reply, mention).into_iter().enumerate() {
            // The reply's first message replaces the draft of a streamed answer, by an edit.
            let mut draft = pending
                .replaces
                .as_deref()
                .and_then(|id| id.parse::<u64>().ok())
                .filter(|_| index == 0);
            loop {
                self.inner.pacer.wait_turn(channel).await;
                let token = self.followup_token(&pending.chat_id);
                let result = match (&token, draft) {
                    (_, Some(id)) => self.inner.rest.edit_message(channel, id, &part.body).await,
                    (Some(token), None) => self.inner.rest.create_followup(token, &part.body).await,
                    (None, None) => self.inner.rest.create_message(channel, &part.body).await,
                };
                match result {
                    Err(RestError::Rejected { status: 404, .. }) if draft.is_some() => {
                        tracing::info!(
                            channel,
                            "the draft is gone; sending the reply as a new message"
                        );
                        draft = None;
                    }
                    Ok(answer) => {
                        if let Some(wait) = answer.exhausted_for {
                            self.inner.pacer.pause_channel(channel, wait);
                        }
                        if token.is_some() && draft.is_none() {
                            if let Some(followup) =
                                lock(&self.inner.followups).get_mut(&pending.chat_id)
                            {
                                followup.used = true;
                            }
                        }
                        *first = false;
                        self.inner
                            .stats
                            .messages_sent
                            .fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("closer_messages_sent_total", "channel" => "discord")
                            .increment(1);
                        let id = answer
                            .body
                            .get("id")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or_default();
                        sent_ids.push(id.to_owned());
                        break;
                    }
                    Err(RestError::RateLimited {
                        retry_after,
                        global,
                    }) => {
                        self.inner
                            .stats
                            .rate_limited
                            .fetch_add(1, Ordering::Relaxed);
                        metrics::counter!(
                            "closer_rate_limited_total",
                            "channel" => "discord",
                            "scope" => if global { "global" } else { "channel" }
                        )
                        .increment(1);
                        tracing::warn!(
                            channel,
                            wait_ms = retry_after.as_millis() as u64,
                            global,
                            "Discord asks to slow down"
                        );
                        if global {
                            self.inner.pacer.pause_all(retry_after);
                        } else {
                            self.inner.pacer.pause_channel(channel, retry_after);
                        }
                    }
                    Err(error) if token.is_some() && error.is_unknown_interaction() => {
                        tracing::info!(channel, %error, "the interaction is gone; replying in the channel");
                        lock(&self.inner.followups).remove(&pending.chat_id);
                    }
                    Err(error @ RestError::Rejected { .. }) => {
                        let reason = error.to_string();
                        tracing::warn!(channel, %reason, "Discord refused the reply; not retrying");
                        self.give_up(&pending, &reason).await;
                        return;
                    }
                    Err(error @ RestError::Unavailable(_)) => {
                        self.inner
                            .stats
                            .transient_errors
                            .fetch_add(1, Ordering::Relaxed);
                        let reason = error.to_string();
                        attempts = match self
                            .inner
                            .store
                            .note_reply_attempt(pending.message_id, &reason)
                            .await
                        {
                            Ok(attempts) => attempts,
                            Err(_) => attempts.saturating_add(1),
                        };
                        if attempts >= MAX_ATTEMPTS {
                            tracing::error!(channel, %reason, attempts, "giving up on a reply");
                            self.give_up(&pending, &reason).await;
                            return;
                        }
                        let wait = backoff(attempts);
                        tracing::warn!(channel, %reason, attempts, wait_ms = wait.as_millis() as u64, "sending failed; retrying");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        let id = pending.message_id;
        self.record(|store| {
            let ids = sent_ids.clone();
            async move { store.mark_reply_sent(id, &ids).await }
        })
        .await;
    }

    async fn give_up(&self, pending: &PendingReply, reason: &str) {
        self.inner
            .stats
            .replies_failed
            .fetch_add(1, Ordering::Relaxed);
        let id = pending.message_id;
        self.record(|store| {
            let reason = reason.to_owned();
            async move { store.mark_reply_failed(id, &reason).await }
        })
        .await;
    }

    /// Writes an outcome, retrying while the database is away: an outcome lost here would
    /// send the reply again.
    async fn record<F, Fut>(&self, write: F)
    where
        F: Fn(Store) -> Fut,
        Fut: std::future::Future<Output = Result<(), closer_store::StoreError>>,
    {
        let mut delay = Duration::from_millis(200);
        for _ in 0..30 {
            match write(self.inner.store.clone()).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot record a reply's delivery; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        tracing::error!("could not record a reply's delivery; it may be sent again");
    }
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to a minute.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    let base = Duration::from_millis(500) * 2u32.pow(exponent);
    let jitter = rand::random_range(0.8..1.2);
    base.mul_f64(jitter).min(Duration::from_secs(60))
}

/// Streamed answers in channel messages: the draft is sent and edited within the channel's
/// pacing. An answer to a slash command comes as the interaction's follow-up and is not
/// streamed.
#[async_trait]
impl Drafts for Sender {
    async fn send_draft(&self, chat_id: &str, text: &str) -> Result<String, DraftError> {
        let (channel, _) = destination(chat_id)
            .ok_or_else(|| DraftError(format!("not a Discord conversation: {chat_id}")))?;
        if self.followup_token(chat_id).is_some() {
            return Err(DraftError(
                "a command's answer comes as its follow-up, whole".to_owned(),
            ));
        }
        self.inner.pacer.wait_turn(channel).await;
        let answer = self
            .inner
            .rest
            .create_message(channel, &draft_body(text))
            .await
            .map_err(|error| DraftError(error.to_string()))?;
        if let Some(wait) = answer.exhausted_for {
            self.inner.pacer.pause_channel(channel, wait);
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
        self.inner.pacer.wait_turn(channel).await;
        let answer = self
            .inner
            .rest
            .edit_message(channel, id, &draft_body(text))
            .await
            .map_err(|error| DraftError(error.to_string()))?;
        if let Some(wait) = answer.exhausted_for {
            self.inner.pacer.pause_channel(channel, wait);
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
