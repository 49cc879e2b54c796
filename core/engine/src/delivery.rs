//! Delivery of pending replies from the store, the same for every channel that delivers that
//! way (Telegram, Discord, Slack): reads a chat's pending replies in order, sends them through
//! the channel's [`Transport`], and marks each sent (with the platform's ids) or failed (with
//! the reason).
//!
//! - **Order**: one worker per chat with pending replies; it drains the chat's queue oldest
//!   first and exits, and a chat kicked while its worker runs is drained again before the
//!   worker exits, so nothing kicked is left behind and two workers never share a chat.
//! - **Failures**: a 429 ([`SendError::RetryAfter`]) waits and sends the *same* part again,
//!   never dropped and never overtaken; a transient failure is noted on the reply and backs
//!   off exponentially with jitter, up to [`MAX_ATTEMPTS`]; a refusal marks the reply failed
//!   with the reason, never retried. The database being away delays the queue and loses
//!   nothing: pending replies are read from the store again, and outcomes are written again.
//! - **Drafts**: a reply that replaces the draft of a streamed answer
//!   ([`PendingReply::replaces`]) delivers its first part as an edit of the draft; a draft that
//!   is gone, or cannot carry the part, gives way to a new message.
//!
//! The channel only renders a reply into its parts and sends one part, within its pacing; it
//! never sees the store.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use closer_model::Channel;
use closer_store::{PendingReply, Store, StoreError};

/// Transient failures of one reply before it is given up as failed.
pub const MAX_ATTEMPTS: i32 = 10;
/// How many pending replies a worker reads at a time.
const BATCH: i64 = 20;

/// Why one part could not be sent; the loop branches on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The platform asks to slow down: the same part is sent again after this long.
    #[error("rate limited for {0:?}")]
    RetryAfter(Duration),
    /// The platform refuses the part for good (the bot was blocked, the chat is gone): the
    /// reply is marked failed with this reason.
    #[error("{0}")]
    Refused(String),
    /// The network or the platform failed: the reply is retried with backoff.
    #[error("{0}")]
    Transient(String),
    /// The draft to edit is gone or cannot carry this part: the part is sent as a new message.
    #[error("the draft cannot be edited")]
    EditTargetGone,
}

/// One channel's side of delivery: what a reply becomes, and how one part of it is sent.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// One message of a reply, with what the channel needs to send it (its destination).
    type Part: Send + Sync;

    /// The channel whose pending replies this transport delivers.
    const CHANNEL: Channel;

    /// Renders a pending reply into the messages it becomes; `first` is true while nothing
    /// has gone out since the worker was kicked (this is the first the prospect sees of a
    /// turn, e.g. the reply to mention the prospect in).
    ///
    /// # Errors
    /// The reason the reply can never be delivered (e.g. a chat id that is not the
    /// platform's); the reply is marked failed with it.
    fn render(&self, pending: &PendingReply, first: bool) -> Result<Vec<Self::Part>, String>;

    /// Waits for the channel's pacing, then sends `part` — or, given `edit`, replaces that
    /// message with it — and returns the platform's id of the message. `first` is true until
    /// a part of the worker's turn has gone out. The part is mutable so the transport can
    /// remember what it learned for the next attempt (Telegram: plain text only).
    ///
    /// # Errors
    /// [`SendError`], which says what the loop does next.
    async fn send(
        &self,
        part: &mut Self::Part,
        first: bool,
        edit: Option<&str>,
    ) -> Result<String, SendError>;

    /// Called when a chat's worker has drained its queue and exits.
    fn drained(&self, _chat_id: &str) {}

    /// Forgets state kept for chats that have gone idle (their pacing), so memory does not
    /// grow with every chat ever served.
    fn sweep(&self) {}
}

/// Counters for logs, benchmarks and tests.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Parts sent (or edited into a draft).
    pub messages_sent: AtomicU64,
    /// 429s waited out.
    pub retry_after: AtomicU64,
    pub transient_errors: AtomicU64,
    pub replies_failed: AtomicU64,
}

/// The delivery loop of one channel. Cheap to clone.
pub struct Delivery<T: Transport> {
    inner: Arc<Inner<T>>,
}

impl<T: Transport> Clone for Delivery<T> {
    fn clone(&self) -> Self {
        Delivery {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<T> {
    transport: T,
    store: Store,
    /// Chats with a running worker; `true` when kicked again while it runs.
    active: Mutex<HashMap<String, bool>>,
    stats: DeliveryStats,
}

impl<T: Transport> Delivery<T> {
    pub fn new(store: Store, transport: T) -> Delivery<T> {
        Delivery {
            inner: Arc::new(Inner {
                transport,
                store,
                active: Mutex::new(HashMap::new()),
                stats: DeliveryStats::default(),
            }),
        }
    }

    pub fn transport(&self) -> &T {
        &self.inner.transport
    }

    pub fn stats(&self) -> &DeliveryStats {
        &self.inner.stats
    }

    /// Forgets the transport's state of idle chats ([`Transport::sweep`]).
    pub fn sweep(&self) {
        self.inner.transport.sweep();
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

    /// Starts sending a chat's pending replies, unless a worker is on it already.
    pub fn kick(&self, chat_id: &str) {
        {
            let mut active = lock(&self.inner.active);
            if let Some(again) = active.get_mut(chat_id) {
                *again = true;
                return;
            }
            active.insert(chat_id.to_owned(), false);
        }
        let delivery = self.clone();
        let chat_id = chat_id.to_owned();
        tokio::spawn(async move { delivery.drain(chat_id).await });
    }

    /// Kicks every chat with replies left pending, e.g. by a crash; retries until the store
    /// answers.
    pub async fn resume(&self) {
        let channel = T::CHANNEL;
        let mut delay = Duration::from_millis(500);
        loop {
            match self.inner.store.chats_with_pending_replies(channel).await {
                Ok(chats) => {
                    if !chats.is_empty() {
                        tracing::info!(%channel, chats = chats.len(), "resuming replies left pending");
                    }
                    for chat in chats {
                        self.kick(&chat);
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%channel, %error, "cannot read pending replies; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn drain(&self, chat_id: String) {
        let channel = T::CHANNEL;
        let mut store_delay = Duration::from_millis(200);
        // The first message a worker sends is the first reply the prospect sees of a turn.
        let mut first = true;
        loop {
            let pending = match self
                .inner
                .store
                .pending_replies(channel, &chat_id, BATCH)
                .await
            {
                Ok(pending) => pending,
                Err(error) => {
                    tracing::warn!(%channel, %error, chat_id, "cannot read pending replies; retrying");
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
                self.inner.transport.drained(&chat_id);
                return;
            }
            for reply in pending {
                self.deliver(reply, &mut first).await;
            }
        }
    }

    /// Sends one reply (one or more messages) and records the outcome.
    async fn deliver(&self, pending: PendingReply, first: &mut bool) {
        let channel = T::CHANNEL;
        let chat_id = pending.chat_id.as_str();
        let parts = match self.inner.transport.render(&pending, *first) {
            Ok(parts) => parts,
            Err(reason) => {
                self.give_up(&pending, &reason).await;
                return;
            }
        };
        let mut sent_ids = Vec::new();
        let mut attempts = pending.attempts;
        for (index, mut part) in parts.into_iter().enumerate() {
            // The reply's first message replaces the draft of a streamed answer, by an edit.
            let mut edit = pending.replaces.as_deref().filter(|_| index == 0);
            loop {
                match self.inner.transport.send(&mut part, *first, edit).await {
                    Ok(id) => {
                        *first = false;
                        self.inner
                            .stats
                            .messages_sent
                            .fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("closer_messages_sent_total", "channel" => channel.as_str())
                            .increment(1);
                        sent_ids.push(id);
                        break;
                    }
                    Err(SendError::EditTargetGone) => {
                        tracing::info!(%channel, chat_id, "the draft cannot be edited; sending the reply as a new message");
                        edit = None;
                    }
                    Err(SendError::RetryAfter(wait)) => {
                        self.inner.stats.retry_after.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("closer_rate_limited_total", "channel" => channel.as_str())
                            .increment(1);
                        tracing::warn!(%channel, chat_id, wait_ms = wait.as_millis() as u64, "the platform asks to slow down");
                        tokio::time::sleep(wait).await;
                    }
                    Err(SendError::Refused(reason)) => {
                        // Retrying would only repeat the refusal.
                        tracing::warn!(%channel, chat_id, %reason, "the platform refused the reply; not retrying");
                        self.give_up(&pending, &reason).await;
                        return;
                    }
                    Err(SendError::Transient(reason)) => {
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
                            tracing::error!(%channel, chat_id, %reason, attempts, "giving up on a reply");
                            self.give_up(&pending, &reason).await;
                            return;
                        }
                        let wait = backoff(attempts);
                        tracing::warn!(%channel, chat_id, %reason, attempts, wait_ms = wait.as_millis() as u64, "sending failed; retrying");
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
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let channel = T::CHANNEL;
        let mut delay = Duration::from_millis(200);
        for _ in 0..30 {
            match write(self.inner.store.clone()).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%channel, %error, "cannot record a reply's delivery; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        tracing::error!(%channel, "could not record a reply's delivery; it may be sent again");
    }
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to a minute.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    let base = Duration::from_millis(500) * 2u32.pow(exponent);
    let jitter = rand::random_range(0.8..1.2);
    base.mul_f64(jitter).min(Duration::from_secs(60))
}

/// A mutex's guard; a panic elsewhere while it was held leaves plain data, still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_a_ceiling() {
        for (attempts, base_ms) in [
            (0, 500),
            (1, 500),
            (2, 1000),
            (3, 2000),
            (8, 64_000),
            (50, 64_000),
        ] {
            let wait = backoff(attempts).as_millis();
            let low = (base_ms as f64 * 0.8) as u128;
            let high = ((base_ms as f64 * 1.2) as u128).min(60_000);
            assert!(
                (low..=high).contains(&wait),
                "attempt {attempts}: {wait} ms"
            );
        }
    }
}
