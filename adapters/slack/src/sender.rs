//! Slack's side of delivering pending replies ([`closer_engine::delivery`] runs the loop:
//! order per conversation, retries, outcomes in the store): rendering a reply into mrkdwn
//! messages and posting each, paced per channel.
//!
//! - **Pacing**: Slack allows about one message a second per channel; the next message to a
//!   channel waits a full gap after Slack *answered* the previous one (threads of one channel
//!   share it).
//! - **Failures**: a 429 waits its `Retry-After` and sends the same message again (never
//!   dropped); Slack refusing the message (`channel_not_found`, `not_in_channel`) fails the
//!   reply for good; the network or Slack failing is transient.
//! - [`Sender::post_paced`]: messages that are not replies (lead posts, mirrors) go through
//!   the same pacing, with the same 429 and retry handling.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use closer_engine::delivery::backoff;
use closer_engine::{Delivery, DeliveryStats, SendError, Transport};
use closer_model::Channel;
use closer_store::{PendingReply, Store};
use slack_morphism::prelude::SlackMessageContent;
use tokio::time::Instant;

use crate::api::{Api, ApiError};
use crate::inbound::ChatRef;
use crate::render::render;

pub use closer_engine::delivery::MAX_ATTEMPTS;

/// Counters for logs and tests.
pub type SenderStats = DeliveryStats;

/// The Slack sender: the delivery loop through Slack (`kick`, `resume`, `stats`,
/// `sweep_every` are the loop's, by `Deref`), and paced posts that are not replies. Cheap to
/// clone.
#[derive(Clone)]
pub struct Sender {
    delivery: Delivery<SlackTransport>,
}

/// Slack's Web API behind the per-channel pacing: what the delivery loop posts through.
pub struct SlackTransport {
    api: Api,
    pace: Pace,
}

/// One message of a reply, to its conversation's channel (and thread).
pub struct Part {
    chat: ChatRef,
    content: SlackMessageContent,
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
            delivery: Delivery::new(
                store,
                SlackTransport {
                    api,
                    pace: Pace::new(Duration::from_secs_f64(1.0 / rate)),
                },
            ),
        }
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
        content: SlackMessageContent,
    ) -> Result<crate::api::Posted, ApiError> {
        let slack = self.delivery.transport();
        let mut attempts = 0;
        loop {
            let result = slack.post(channel, thread_ts, content.clone()).await;
            match result {
                Err(ApiError::RateLimited(wait)) => {
                    self.stats().retry_after.fetch_add(1, Ordering::Relaxed);
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
}

impl Deref for Sender {
    type Target = Delivery<SlackTransport>;

    fn deref(&self) -> &Self::Target {
        &self.delivery
    }
}

impl SlackTransport {
    /// Posts one message once its channel's turn has come.
    async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        content: SlackMessageContent,
    ) -> Result<crate::api::Posted, ApiError> {
        self.pace.wait_turn(channel).await;
        let result = self.api.post(channel, thread_ts, content).await;
        self.pace.sent(channel);
        result
    }
}

#[async_trait]
impl Transport for SlackTransport {
    type Part = Part;
    const CHANNEL: Channel = Channel::Slack;

    /// Forgets channels whose gap has passed.
    fn sweep(&self) {
        self.pace.sweep();
    }

    fn render(&self, pending: &PendingReply, _first: bool) -> Result<Vec<Part>, String> {
        let chat = ChatRef::parse(&pending.chat_id);
        Ok(render(&pending.reply)
            .into_iter()
            .map(|content| Part {
                chat: chat.clone(),
                content,
            })
            .collect())
    }

    /// Slack's replies never replace a draft (answers are not streamed there): `edit` is
    /// not used.
    async fn send(
        &self,
        part: &mut Part,
        _first: bool,
        _edit: Option<&str>,
    ) -> Result<String, SendError> {
        let chat = &part.chat;
        match self
            .post(
                &chat.channel,
                chat.thread_ts.as_deref(),
                part.content.clone(),
            )
            .await
        {
            Ok(posted) => Ok(posted.ts),
            Err(ApiError::RateLimited(wait)) => Err(SendError::RetryAfter(wait)),
            Err(ApiError::Refused(reason)) => Err(SendError::Refused(reason)),
            Err(ApiError::Unavailable(reason)) => Err(SendError::Transient(reason)),
        }
    }
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
