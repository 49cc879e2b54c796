//! The paced sender: reads a Slack conversation's pending replies from the store in order,
//! posts them, and marks each sent or failed — the Telegram sender's shape.
//!
//! - **Order**: one worker per conversation with pending replies; it drains the queue oldest
//!   first and exits, and a conversation kicked while its worker runs is drained again.
//! - **Pacing**: Slack allows about one message a second per channel; the next message to a
//!   channel waits a full gap after Slack *answered* the previous one (threads of one channel
//!   share it).
//! - **Failures**: a 429 waits its `Retry-After` and sends the same message again (never
//!   dropped); Slack refusing the message (`channel_not_found`, `not_in_channel`) marks the
//!   reply failed with the reason, never retried; the network or Slack failing backs off and
//!   retries up to [`MAX_ATTEMPTS`]. Nothing is lost while the database is away: pending replies
//!   are read again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use closer_model::Channel;
use closer_store::{PendingReply, Store};
use tokio::time::Instant;

use crate::api::{Api, ApiError};
use crate::inbound::ChatRef;
use crate::render::render;

/// Transient failures of one reply before it is given up as failed.
pub const MAX_ATTEMPTS: i32 = 10;
/// How many pending replies a worker reads at a time.
const BATCH: i64 = 20;

/// Counters for logs and tests.
#[derive(Debug, Default)]
pub struct SenderStats {
    pub messages_sent: AtomicU64,
    pub retry_after: AtomicU64,
    pub transient_errors: AtomicU64,
    pub replies_failed: AtomicU64,
}

/// The Slack sender. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api,
    store: Store,
    pace: Pace,
    /// Conversations with a running worker; `true` when kicked again while it runs.
    active: Mutex<HashMap<String, bool>>,
    stats: SenderStats,
}

impl Sender {
    /// A sender posting at most `per_channel_per_second` messages a second to one channel.
    pub fn new(api: Api, store: Store, per_channel_per_second: f64) -> Sender {
        let rate = if per_channel_per_second.is_finite() && per_channel_per_second > 0.0 {
            per_channel_per_second
        } else {
            1.0
        };
        Sender {
            inner: Arc::new(Inner {
                api,
                store,
                pace: Pace::new(Duration::from_secs_f64(1.0 / rate)),
                active: Mutex::new(HashMap::new()),
                stats: SenderStats::default(),
            }),
        }
    }

    pub fn stats(&self) -> &SenderStats {
        &self.inner.stats
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

    /// Kicks every conversation with replies left pending; retries until the store answers.
    pub async fn resume(&self) {
        let mut delay = Duration::from_millis(500);
        loop {
            match self
                .inner
                .store
                .chats_with_pending_replies(Channel::Slack)
                .await
            {
                Ok(chats) => {
                    for chat in chats {
                        self.kick(&chat);
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read pending Slack replies; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Forgets channels whose gap has passed, every `period`, forever.
    pub async fn sweep_every(&self, period: Duration) {
        let mut interval = tokio::time::interval(period);
        interval.tick().await;
        loop {
            interval.tick().await;
            self.inner.pace.sweep();
        }
    }

    async fn wait_turn(&self, channel: &str) {
        self.inner.pace.wait_turn(channel).await;
    }

    fn sent(&self, channel: &str) {
        self.inner.pace.sent(channel);
    }

    /// Posts one message paced for its channel, waiting out 429s and retrying transient
    /// failures a few times: for messages that are not replies (lead posts, mirrors).
    ///
    /// # Errors
    /// [`ApiError::Refused`], or the last transient error after [`MAX_ATTEMPTS`].
    pub async fn post_paced(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        content: slack_morphism::prelude::SlackMessageContent,
    ) -> Result<crate::api::Posted, ApiError> {
        let mut attempts = 0;
        loop {
            self.wait_turn(channel).await;
            let result = self
                .inner
                .api
                .post(channel, thread_ts, content.clone())
                .await;
            self.sent(channel);
            match result {
                Err(ApiError::RateLimited(wait)) => {
                    self.inner.stats.retry_after.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("closer_rate_limited_total", "channel" => "slack")
                        .increment(1);
                    tokio::time::sleep(wait).await;
                }
                Err(ApiError::Unavailable(reason)) if attempts + 1 < MAX_ATTEMPTS => {
                    attempts += 1;
                    tracing::warn!(%reason, attempts, "posting to Slack failed; retrying");
                    tokio::time::sleep(backoff(attempts)).await;
                }
                other => return other,
            }
        }
    }

    async fn drain(&self, chat_id: String) {
        let mut store_delay = Duration::from_millis(200);
        loop {
            let pending = match self
                .inner
                .store
                .pending_replies(Channel::Slack, &chat_id, BATCH)
                .await
            {
                Ok(pending) => pending,
                Err(error) => {
                    tracing::warn!(%error, "cannot read pending Slack replies; retrying");
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
                    continue;
                }
                active.remove(&chat_id);
                return;
            }
            for reply in pending {
                self.deliver(reply).await;
            }
        }
    }

    /// Sends one reply (one or more messages) and records the outcome.
    async fn deliver(&self, pending: PendingReply) {
        let chat = ChatRef::parse(&pending.chat_id);
        let mut sent_ids = Vec::new();
        let mut attempts = pending.attempts;
        for part in render(&pending.reply) {
            loop {
                self.wait_turn(&chat.channel).await;
                let result = self
                    .inner
                    .api
                    .post(&chat.channel, chat.thread_ts.as_deref(), part.clone())
                    .await;
                self.sent(&chat.channel);
                match result {
                    Ok(posted) => {
                        self.inner
                            .stats
                            .messages_sent
                            .fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("closer_messages_sent_total", "channel" => "slack")
                            .increment(1);
                        sent_ids.push(posted.ts);
                        break;
                    }
                    Err(ApiError::RateLimited(wait)) => {
                        self.inner.stats.retry_after.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("closer_rate_limited_total", "channel" => "slack")
                            .increment(1);
                        tracing::warn!(
                            wait_ms = wait.as_millis() as u64,
                            "Slack asks to slow down"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    Err(ApiError::Refused(reason)) => {
                        tracing::warn!(%reason, "Slack refused the reply; not retrying");
                        self.give_up(&pending, &reason).await;
                        return;
                    }
                    Err(ApiError::Unavailable(reason)) => {
                        self.inner
                            .stats
                            .transient_errors
                            .fetch_add(1, Ordering::Relaxed);
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
                            tracing::error!(%reason, attempts, "giving up on a Slack reply");
                            self.give_up(&pending, &reason).await;
                            return;
                        }
                        tokio::time::sleep(backoff(attempts)).await;
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
                    tracing::warn!(%error, "cannot record a Slack reply's delivery; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        tracing::error!("could not record a Slack reply's delivery; it may be sent again");
    }
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to a minute.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    let base = Duration::from_millis(500) * 2u32.pow(exponent);
    base.mul_f64(rand::random_range(0.8..1.2))
        .min(Duration::from_secs(60))
}

/// A mutex's guard; a panic elsewhere while it was held leaves plain data, still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Per-channel pacing: when each recently served channel may receive its next message.
pub(crate) struct Pace {
    gap: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl Pace {
    pub(crate) fn new(gap: Duration) -> Pace {
        Pace {
            gap,
            next: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until `channel` may receive a message.
    pub(crate) async fn wait_turn(&self, channel: &str) {
        let ready = lock(&self.next).get(channel).copied();
        if let Some(ready) = ready {
            tokio::time::sleep_until(ready).await;
        }
    }

    /// Records that Slack has just answered a message to `channel`.
    pub(crate) fn sent(&self, channel: &str) {
        lock(&self.next).insert(channel.to_owned(), Instant::now() + self.gap);
    }

    /// Forgets channels whose gap has passed.
    pub(crate) fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut next = lock(&self.next);
        next.retain(|_, ready| *ready > now);
        next.shrink_to_fit();
        next.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_channel_waits_a_full_gap_and_other_channels_do_not() {
        let pace = Pace::new(Duration::from_secs(1));
        pace.sent("C1");
        let start = Instant::now();
        pace.wait_turn("C1").await;
        assert!(start.elapsed() >= Duration::from_secs(1));
        let other = Instant::now();
        pace.wait_turn("C2").await;
        assert_eq!(other.elapsed(), Duration::ZERO);
        assert_eq!(pace.sweep(), 0, "the gap has passed: forgotten");
    }
}
