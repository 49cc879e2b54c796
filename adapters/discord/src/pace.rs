//! Pacing within Discord's rate limits, in front of every message Closer sends.
//!
//! - **Per channel** (5 messages per 5 seconds by default, the bucket Discord is observed to
//!   give a channel's messages): a governor keyed limiter with a burst of 5, refilling one
//!   message a second. Discord's bucket is a window, which a GCRA cannot match exactly, so the
//!   headers decide at its edge: when a response says `X-RateLimit-Remaining: 0`, the channel
//!   waits `X-RateLimit-Reset-After` before its next message.
//! - **Globally** (50 requests a second): a governor limiter for the bot.
//! - **Told to wait**: a 429 pauses its channel, or every channel when Discord marks it
//!   global, for its `retry_after`; nothing is sent there until then.
//!
//! Idle channels are swept, so memory does not grow with every channel ever seen.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// Discord's limits on sending, configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Messages to one channel within `channel_period`.
    pub per_channel: u32,
    pub channel_period: Duration,
    /// Requests per second for the whole bot.
    pub global_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_channel: 5,
            channel_period: Duration::from_secs(5),
            global_per_second: 50,
        }
    }
}

pub(crate) struct Pacer {
    per_channel: DefaultKeyedRateLimiter<u64>,
    global: DefaultDirectRateLimiter,
    /// Channels Discord told to wait, and until when.
    channel_pauses: Mutex<HashMap<u64, Instant>>,
    /// When Discord's global limit lets the bot send again.
    global_pause: Mutex<Option<Instant>>,
}

impl Pacer {
    pub(crate) fn new(limits: Limits) -> Pacer {
        let per_channel = NonZeroU32::new(limits.per_channel).unwrap_or(NonZeroU32::MIN);
        let refill = limits.channel_period / per_channel.get();
        let channel_quota = Quota::with_period(refill)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(per_channel);
        let global = NonZeroU32::new(limits.global_per_second).unwrap_or(NonZeroU32::MIN);
        Pacer {
            per_channel: RateLimiter::keyed(channel_quota),
            global: RateLimiter::direct(Quota::per_second(global)),
            channel_pauses: Mutex::new(HashMap::new()),
            global_pause: Mutex::new(None),
        }
    }

    /// Waits until a message may go to `channel`.
    pub(crate) async fn wait_turn(&self, channel: u64) {
        self.wait_out_pauses(channel).await;
        self.per_channel.until_key_ready(&channel).await;
        // The channel's turn may have taken a while; a pause set meanwhile still holds.
        self.wait_out_pauses(channel).await;
        self.global.until_ready().await;
    }

    async fn wait_out_pauses(&self, channel: u64) {
        loop {
            let channel_pause = lock(&self.channel_pauses).get(&channel).copied();
            let global_pause = *lock(&self.global_pause);
            let until = channel_pause.into_iter().chain(global_pause).max();
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    /// Discord asked `channel` to wait `wait` (a 429, or an exhausted bucket).
    pub(crate) fn pause_channel(&self, channel: u64, wait: Duration) {
        let until = Instant::now() + wait;
        let mut pauses = lock(&self.channel_pauses);
        let entry = pauses.entry(channel).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Discord's global limit was hit: nothing is sent anywhere for `wait`.
    pub(crate) fn pause_all(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut pause = lock(&self.global_pause);
        *pause = Some(pause.map_or(until, |earlier| earlier.max(until)));
    }

    /// How many channels the limiter and the pauses remember.
    pub(crate) fn tracked_channels(&self) -> usize {
        self.per_channel.len() + lock(&self.channel_pauses).len()
    }

    /// Forgets channels whose limits and pauses have expired.
    pub(crate) fn sweep(&self) {
        self.per_channel.retain_recent();
        self.per_channel.shrink_to_fit();
        let now = Instant::now();
        let mut pauses = lock(&self.channel_pauses);
        pauses.retain(|_, until| *until > now);
        pauses.shrink_to_fit();
    }
}

/// A mutex's guard; a panic elsewhere while it was held leaves plain data, still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_paused_channel_waits_and_others_do_not() {
        let pacer = Pacer::new(Limits::default());
        pacer.pause_channel(1, Duration::from_secs(2));
        let started = Instant::now();
        pacer.wait_turn(2).await;
        assert!(started.elapsed() < Duration::from_millis(100));
        pacer.wait_turn(1).await;
        assert!(started.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_global_pause_holds_every_channel_and_the_longest_pause_wins() {
        let pacer = Pacer::new(Limits::default());
        pacer.pause_all(Duration::from_secs(3));
        pacer.pause_all(Duration::from_secs(1));
        let started = Instant::now();
        pacer.wait_turn(7).await;
        assert!(started.elapsed() >= Duration::from_secs(3));
    }

    #[test]
    fn the_channel_bucket_lets_five_through_at_once_and_then_holds() {
        let pacer = Pacer::new(Limits::default());
        let allowed = (0..8)
            .filter(|_| pacer.per_channel.check_key(&42).is_ok())
            .count();
        assert_eq!(allowed, 5);
        assert!(
            pacer.per_channel.check_key(&43).is_ok(),
            "another channel is not held"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expired_pauses_are_swept() {
        let pacer = Pacer::new(Limits::default());
        pacer.pause_channel(1, Duration::from_millis(10));
        pacer.pause_channel(2, Duration::from_secs(60));
        tokio::time::advance(Duration::from_millis(20)).await;
        pacer.sweep();
        assert_eq!(lock(&pacer.channel_pauses).len(), 1);
    }
}
