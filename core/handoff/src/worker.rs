//! The outbox worker: claims due hand-offs (`FOR UPDATE SKIP LOCKED`, so several Closer
//! processes can run one each), delivers each to its target and records the outcome.
//!
//! - A first attempt creates the item. A later one (the earlier outcome may be unknown: a
//!   timeout after the target created it) looks the item up first and creates it only when
//!   it is not there.
//! - Transient failures retry with exponential backoff and jitter — 5 s, 30 s, 2 min, 10 min,
//!   then hourly — or after the target's `Retry-After` when that is longer, for up to
//!   [`MAX_ATTEMPTS`] attempts. Permanent failures stop at once with the reason, for
//!   `closer leads` to show and `closer leads retry` to queue again.
//! - A target that fails transiently holds back its other pending hand-offs until its retry
//!   (one probe per backoff, not one per lead), so after an outage its backlog is due at once
//!   and delivered in the order the leads came.
//! - A claim is a lease: a worker that dies mid-delivery leaves a row that becomes due again
//!   when its lease ends, and the next attempt looks the item up first.
//! - Each row has its own lease, renewed before every call to its target, and every call is
//!   cut off at [`CALL_DEADLINE`], well inside [`LEASE`]: however slow a batch, a row is never
//!   due for another worker while a call for it is in flight. A row whose lease ran out before
//!   the worker reached it, and which another worker claimed meanwhile, is left to that worker
//!   (the renewal says so), and settling checks the lease too.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use closer_store::{ClaimedHandoff, Store, StoreError};

use crate::{Failure, Handoff, Target};

/// Attempts before a hand-off is given up as failed (about three days of hourly retries).
pub const MAX_ATTEMPTS: i32 = 72;
/// How long a claimed hand-off is reserved for the worker that claimed it, from the claim and
/// from each renewal before a call to the target.
pub const LEASE: Duration = Duration::from_secs(120);
/// The longest one call to a target (a lookup, or a create with its follow-up requests) may
/// take, whatever the target's own request timeout: a call still running when the row's lease
/// ran out could create the item a second worker creates too. The 30 s left of the lease cover
/// the store's round trips and clocks of different hosts running a little apart.
pub const CALL_DEADLINE: Duration = Duration::from_secs(90);
/// How many hand-offs one round claims.
const BATCH: i64 = 10;

/// The worker's clock: the system's, or a simulated one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Delivers the outbox. Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    targets: Arc<HashMap<String, Arc<dyn Target>>>,
    clock: Clock,
    /// `{id}` is replaced by the conversation's id.
    conversation_url: Option<String>,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
    /// Claimed, but taken over by another worker after its lease ran out, before this one
    /// reached it: left to that worker.
    pub lost: usize,
}

impl Worker {
    pub fn new(
        store: Store,
        targets: HashMap<String, Arc<dyn Target>>,
        conversation_url: Option<String>,
    ) -> Worker {
        Worker {
            store,
            targets: Arc::new(targets),
            clock: Arc::new(Utc::now),
            conversation_url,
        }
    }

    /// The same worker on another clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Worker {
        self.clock = clock;
        self
    }

    /// Claims what is due and delivers it, one target item at a time, oldest first.
    ///
    /// # Errors
    /// The store is unavailable (nothing is lost: the rows stay due).
    pub async fn run_once(&self) -> Result<Round, StoreError> {
        let claimed = self
            .store
            .claim_due_handoffs((self.clock)(), BATCH, LEASE)
            .await?;
        let mut round = Round {
            claimed: claimed.len(),
            ..Round::default()
        };
        // Targets that failed transiently in this round, with when to try them again.
        let mut failing: HashMap<String, (DateTime<Utc>, String)> = HashMap::new();
        for handoff in claimed {
            let target = handoff.entry.target.clone();
            if let Some((retry_at, reason)) = failing.get(&target) {
                // Not attempted: the target just failed; it waits with the rest, in order.
                if self
                    .store
                    .mark_handoff_failed(
                        handoff.entry.id,
                        handoff.lease_token,
                        reason,
                        Some(*retry_at),
                    )
                    .await?
                {
                    round.retrying += 1;
                } else {
                    round.lost += 1;
                }
                continue;
            }
            match self.deliver(handoff).await? {
                Outcome::Delivered => round.delivered += 1,
                Outcome::Retrying { retry_at, reason } => {
                    round.retrying += 1;
                    self.store.postpone_handoffs(&target, retry_at).await?;
                    failing.insert(target, (retry_at, reason));
                }
                Outcome::Failed => round.failed += 1,
                Outcome::Lost => round.lost += 1,
            }
        }
        Ok(round)
    }

    /// Runs rounds until `shutdown`: at once while there is work, every `idle` otherwise.
    pub async fn run(self, idle: Duration, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut store_failures: u32 = 0;
        loop {
            let pause = match self.run_once().await {
                Ok(round) if round.claimed > 0 => {
                    store_failures = 0;
                    tracing::info!(?round, "hand-off round");
                    Duration::ZERO
                }
                Ok(_) => {
                    store_failures = 0;
                    idle
                }
                Err(error) => {
                    store_failures += 1;
                    let pause = Duration::from_secs(1 << store_failures.min(5));
                    tracing::warn!(%error, pause_s = pause.as_secs(), "the hand-off outbox cannot be read; retrying");
                    pause
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Renews the row's lease, then makes one call to its target, cut off at
    /// [`CALL_DEADLINE`]. `None` when the lease was lost (another worker claimed the row after
    /// it ran out): then the target is not called.
    async fn call_target<T>(
        &self,
        claimed: &ClaimedHandoff,
        call: impl Future<Output = Result<T, Failure>>,
    ) -> Result<Option<Result<T, Failure>>, StoreError> {
        let entry = &claimed.entry;
        if !self
            .store
            .renew_handoff_lease(entry.id, claimed.lease_token, (self.clock)(), LEASE)
            .await?
        {
            tracing::info!(target_name = %entry.target, outbox_id = entry.id, "another worker took this hand-off over after its lease ran out; leaving it");
            return Ok(None);
        }
        Ok(Some(
            match tokio::time::timeout(CALL_DEADLINE, call).await {
                Ok(result) => result,
                // The item may have been created: the next attempt looks for it first.
                Err(_) => Err(Failure::transient(format!(
                    "{}: no answer within {} s",
                    entry.target,
                    CALL_DEADLINE.as_secs()
                ))),
            },
        ))
    }

    /// Records the outcome, if this worker still holds the row; [`Outcome::Lost`] otherwise.
    async fn settle(
        &self,
        claimed: &ClaimedHandoff,
        reason: &str,
        retry_at: Option<DateTime<Utc>>,
        outcome: Outcome,
    ) -> Result<Outcome, StoreError> {
        let settled = self
            .store
            .mark_handoff_failed(claimed.entry.id, claimed.lease_token, reason, retry_at)
            .await?;
        Ok(if settled { outcome } else { Outcome::Lost })
    }

    async fn deliver(&self, claimed: ClaimedHandoff) -> Result<Outcome, StoreError> {
        let entry = &claimed.entry;
        let Some(target) = self.targets.get(&entry.target) else {
            let reason = format!(
                "no hand-off target named {:?} is configured (handoff.targets)",
                entry.target
            );
            return self.settle(&claimed, &reason, None, Outcome::Failed).await;
        };
        let conversation_id = claimed.subject.conversation_id();
        let transcript = match conversation_id {
            Some(conversation_id) => self.store.transcript(conversation_id).await?,
            None => Vec::new(),
        };
        let handoff = Handoff {
            key: Handoff::short_key(&entry.idempotency_key),
            conversation_url: self
                .conversation_url
                .as_ref()
                .and_then(|url| conversation_id.map(|id| url.replace("{id}", &id.to_string()))),
            subject: claimed.subject.clone(),
            transcript,
            attempt: entry.attempts,
        };
        let found = if entry.attempts > 1 {
            match self.call_target(&claimed, target.find(&handoff)).await? {
                None => return Ok(Outcome::Lost),
                Some(found) => found,
            }
        } else {
            Ok(None)
        };
        let result = match found {
            Ok(Some(created)) => Ok(created),
            Ok(None) => match self.call_target(&claimed, target.create(&handoff)).await? {
                None => return Ok(Outcome::Lost),
                Some(created) => created,
            },
            Err(failure) => Err(failure),
        };
        match result {
            Ok(created) => {
                let delivered = self
                    .store
                    .mark_handoff_delivered(
                        entry.id,
                        claimed.lease_token,
                        Some(&created.id),
                        created.url.as_ref(),
                    )
                    .await?;
                if !delivered {
                    // Only a call that outlived the lease gets here (the host stalled, or its
                    // clock runs far behind another worker's): the item is made, and the
                    // worker holding the row now finds it.
                    tracing::warn!(target_name = %entry.target, outbox_id = entry.id, id = %created.id, "handed off, but another worker holds this hand-off now");
                    return Ok(Outcome::Lost);
                }
                tracing::info!(target_name = %entry.target, outbox_id = entry.id, id = %created.id, "handed off");
                metrics::counter!("closer_handoffs_total", "outcome" => "delivered").increment(1);
                Ok(Outcome::Delivered)
            }
            Err(Failure::Transient {
                reason,
                retry_after,
            }) if entry.attempts < MAX_ATTEMPTS => {
                let wait = backoff(entry.attempts).max(retry_after.unwrap_or_default());
                let retry_at = (self.clock)()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
                tracing::warn!(target_name = %entry.target, attempts = entry.attempts, %reason, %retry_at, "hand-off failed; will retry");
                metrics::counter!("closer_handoffs_total", "outcome" => "retrying").increment(1);
                let retrying = Outcome::Retrying {
                    retry_at,
                    reason: reason.clone(),
                };
                self.settle(&claimed, &reason, Some(retry_at), retrying)
                    .await
            }
            Err(failure) => {
                let reason = match failure {
                    Failure::Transient { reason, .. } => {
                        format!("gave up after {} attempts: {reason}", entry.attempts)
                    }
                    Failure::Permanent { reason } => reason,
                };
                tracing::error!(target_name = %entry.target, outbox_id = entry.id, %reason, "hand-off failed");
                metrics::counter!("closer_handoffs_total", "outcome" => "failed").increment(1);
                self.settle(&claimed, &reason, None, Outcome::Failed).await
            }
        }
    }
}

enum Outcome {
    Delivered,
    Retrying {
        retry_at: DateTime<Utc>,
        reason: String,
    },
    Failed,
    /// Another worker holds the row now.
    Lost,
}

/// 5 s, 30 s, 2 min, 10 min, then hourly; each ±20 %.
pub fn backoff(attempts: i32) -> Duration {
    let base = match attempts {
        ..=1 => 5,
        2 => 30,
        3 => 120,
        4 => 600,
        _ => 3600,
    };
    Duration::from_secs(base).mul_f64(rand::random_range(0.8..1.2))
}
