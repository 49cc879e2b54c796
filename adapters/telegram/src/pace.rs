//! Pacing within Telegram's limits, and who goes first when the bot is at its limit.
//!
//! - **Per chat** (1 message a second to a private chat, 20 a minute to a group): the gap is
//!   counted from when the previous message's answer came back, so the next one arrives at
//!   least a full gap after it — Telegram counts arrivals. (A keyed governor limiter counts from
//!   when a message was *admitted*; with hundreds of chats queued behind the bot's overall limit
//!   a message can wait seconds between admission and sending, and its successor then arrives too
//!   soon: that measured as 41 429s in a 1,000-chat burst.)
//! - **Overall** (30 a second): a governor GCRA without bursts, behind a gate that lets the most
//!   urgent waiter through each time it opens: a chat's first message of a turn (its first
//!   visible reply) ranks as if it had waited [`FIRST_REPLY_HEADSTART`] longer than it has, so
//!   it overtakes follow-ups queued shortly before it, and a follow-up waits at most that much
//!   longer than it would in plain arrival order.
//!
//! Idle chats are swept so memory does not grow with every chat ever seen.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::sender::Limits;

/// How much sooner than its arrival a turn's first message ranks at the gate.
pub const FIRST_REPLY_HEADSTART: Duration = Duration::from_secs(10);

pub(crate) struct Pacer {
    chat_gap: Duration,
    group_gap: Duration,
    /// When each recently served chat may receive its next message.
    next: Mutex<HashMap<i64, Instant>>,
    gate: Arc<Gate>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

struct Gate {
    limiter: DefaultDirectRateLimiter,
    /// Waiters by rank (then arrival); each is let through by completing its sender.
    waiting: Mutex<BTreeMap<(Instant, u64), oneshot::Sender<()>>>,
    sequence: AtomicU64,
    arrived: Notify,
}

impl Pacer {
    pub(crate) fn new(limits: Limits) -> Pacer {
        let overall = Duration::from_secs_f64(1.0 / f64::from(limits.overall_per_second.max(1)));
        let quota = Quota::with_period(overall)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        Pacer {
            chat_gap: Duration::from_secs_f64(1.0 / f64::from(limits.per_chat_per_second.max(1))),
            group_gap: Duration::from_secs_f64(
                60.0 / f64::from(limits.per_group_per_minute.max(1)),
            ),
            next: Mutex::new(HashMap::new()),
            gate: Arc::new(Gate {
                limiter: RateLimiter::direct(quota),
                waiting: Mutex::new(BTreeMap::new()),
                sequence: AtomicU64::new(0),
                arrived: Notify::new(),
            }),
            dispatcher: Mutex::new(None),
        }
    }

    /// Waits until `chat` may receive a message and the bot may send one. `first`: the
    /// message is the first of a turn, a reply the prospect is waiting to see.
    pub(crate) async fn wait_turn(&self, chat: i64, first: bool) {
        let ready = lock(&self.next).get(&chat).copied();
        if let Some(ready) = ready {
            tokio::time::sleep_until(ready).await;
        }
        self.start_dispatcher();
        let (open, opened) = oneshot::channel();
        let now = Instant::now();
        let rank = if first {
            now.checked_sub(FIRST_REPLY_HEADSTART).unwrap_or(now)
        } else {
            now
        };
        let sequence = self.gate.sequence.fetch_add(1, Ordering::Relaxed);
        lock(&self.gate.waiting).insert((rank, sequence), open);
        self.gate.arrived.notify_one();
        // The dispatcher never drops a waiter unserved while it runs.
        let _ = opened.await;
    }

    /// Records that a message to `chat` has just been answered by Telegram.
    pub(crate) fn sent(&self, chat: i64) {
        let gap = if chat < 0 {
            self.group_gap
        } else {
            self.chat_gap
        };
        lock(&self.next).insert(chat, Instant::now() + gap);
    }

    pub(crate) fn tracked_chats(&self) -> usize {
        lock(&self.next).len()
    }

    /// Forgets chats whose gap has passed.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let mut next = lock(&self.next);
        next.retain(|_, ready| *ready > now);
        next.shrink_to_fit();
    }

    fn start_dispatcher(&self) {
        let mut dispatcher = lock(&self.dispatcher);
        if dispatcher.is_none() {
            let gate = self.gate.clone();
            *dispatcher = Some(tokio::spawn(async move { gate.dispatch().await }));
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        if let Some(dispatcher) = lock(&self.dispatcher).take() {
            dispatcher.abort();
        }
    }
}

impl Gate {
    /// Opens the gate at the overall rate, each time for the best-ranked waiter.
    async fn dispatch(&self) {
        loop {
            let arrived = self.arrived.notified();
            if lock(&self.waiting).is_empty() {
                arrived.await;
                continue;
            }
            self.limiter.until_ready().await;
            // A waiter that went away (its worker was stopped) wastes this slot; that is all.
            let next = lock(&self.waiting).pop_first();
            if let Some((_, open)) = next {
                let _ = open.send(());
            }
        }
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

    fn limits(overall_per_second: u32) -> Limits {
        Limits {
            per_chat_per_second: 1,
            per_group_per_minute: 20,
            overall_per_second,
        }
    }

    #[tokio::test]
    async fn a_turns_first_message_overtakes_queued_follow_ups() {
        let pacer = Arc::new(Pacer::new(limits(5)));
        // Take the one slot there is now, so that everything after this queues.
        pacer.wait_turn(1, false).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (chat, first) in [(2, false), (3, false), (4, true)] {
            let (pacer, order) = (pacer.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                pacer.wait_turn(chat, first).await;
                lock(&order).push(chat);
            }));
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*lock(&order), vec![4, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_chat_waits_a_full_gap_after_its_last_message_was_answered() {
        let pacer = Pacer::new(limits(1000));
        pacer.wait_turn(7, true).await;
        pacer.sent(7);
        let answered = Instant::now();
        pacer.wait_turn(7, false).await;
        assert!(answered.elapsed() >= Duration::from_secs(1));
        // Another chat is not held up by it.
        let other = Instant::now();
        pacer.wait_turn(8, true).await;
        assert!(other.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_group_gets_its_share_of_twenty_a_minute() {
        let pacer = Pacer::new(limits(1000));
        pacer.sent(-100);
        let ready = lock(&pacer.next)[&-100];
        let gap = ready - Instant::now();
        assert!(gap > Duration::from_millis(2900) && gap <= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_chats_are_swept() {
        let pacer = Pacer::new(Limits {
            per_chat_per_second: 1000,
            ..limits(1000)
        });
        pacer.sent(1);
        pacer.sent(-2);
        assert_eq!(pacer.tracked_chats(), 2);
        tokio::time::advance(Duration::from_millis(5)).await;
        pacer.sweep();
        assert_eq!(
            pacer.tracked_chats(),
            1,
            "the group's 3 s gap has not passed"
        );
    }
}
