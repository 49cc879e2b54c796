//! Poison input never stops or blocks a channel. One update or event is handled under a
//! guard: a panic while handling it is caught, logged with its id and dead-lettered at once; a
//! failure other than the database being away is retried a few times, then dead-lettered; the
//! database being away is waited out (the update is kept for later, nothing is lost). A person
//! can ask for a dead letter to be tried again; the channel takes those back through
//! [`Guard::retries`].

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use closer_model::Channel;
use closer_store::{DeadLetter, Store};
use futures::FutureExt;

use crate::EngineError;

/// How many times a failing update is tried before it is dead-lettered.
pub const ATTEMPTS: u32 = 3;

/// What the channel does with the update after handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Processed (or deduplicated): acknowledge it.
    Processed,
    /// Not processed, and worth trying again later (the database is away, or a failure not
    /// yet repeated enough): do not acknowledge it.
    RetryLater,
    /// Recorded as a dead letter: acknowledge it and move on.
    DeadLettered,
}

/// The guard one channel handles its updates under. Cheap to clone.
#[derive(Clone)]
pub struct Guard {
    store: Store,
    channel: Channel,
    /// Failed attempts per update id, forgotten once the update is processed or dead-lettered.
    attempts: Arc<Mutex<HashMap<String, u32>>>,
}

impl Guard {
    pub fn new(store: Store, channel: Channel) -> Guard {
        Guard {
            store,
            channel,
            attempts: Arc::default(),
        }
    }

    /// Handles one update, identified by `external_id`: runs `work`, catching a panic.
    /// `payload` gives the raw update to keep with a dead letter; it is only called for one.
    pub async fn handle<Work>(
        &self,
        external_id: &str,
        payload: impl FnOnce() -> String,
        work: Work,
    ) -> Verdict
    where
        Work: Future<Output = Result<(), EngineError>>,
    {
        let reason = match AssertUnwindSafe(work).catch_unwind().await {
            Ok(Ok(())) => {
                self.forget(external_id);
                return Verdict::Processed;
            }
            Ok(Err(EngineError::Store(error))) if error.is_transient() => {
                return Verdict::RetryLater;
            }
            Ok(Err(error)) => {
                let attempts = self.count_attempt(external_id);
                if attempts < ATTEMPTS {
                    tracing::warn!(channel = self.channel.as_str(), external_id, attempts, %error,
                        "an update failed; it will be tried again");
                    return Verdict::RetryLater;
                }
                format!("failed {attempts} times: {error}")
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(channel = self.channel.as_str(), external_id, panic = %message,
                    "handling an update panicked; it is dead-lettered and the channel goes on");
                format!("panicked: {message}")
            }
        };
        self.bury(external_id, &reason, &payload()).await
    }

    /// Records `external_id` as a dead letter at once, e.g. an update that does not parse.
    /// [`Verdict::RetryLater`] when even that cannot be recorded (the database is away).
    pub async fn bury(&self, external_id: &str, reason: &str, payload: &str) -> Verdict {
        match self
            .store
            .record_dead_letter(self.channel, external_id, reason, payload)
            .await
        {
            Ok(id) => {
                self.forget(external_id);
                metrics::counter!("closer_dead_letters_total", "channel" => self.channel.as_str())
                    .increment(1);
                tracing::warn!(channel = self.channel.as_str(), external_id, dead_letter = %id, reason,
                    "an update was dead-lettered");
                Verdict::DeadLettered
            }
            Err(error) => {
                tracing::warn!(channel = self.channel.as_str(), external_id, %error,
                    "could not record a dead letter; the update will be tried again");
                Verdict::RetryLater
            }
        }
    }

    /// The dead letters of this channel a person asked to try again.
    pub async fn retries(&self) -> Vec<DeadLetter> {
        match self.store.dead_letters_to_retry(self.channel).await {
            Ok(letters) => letters,
            Err(error) => {
                tracing::debug!(%error, "could not read the dead letters to retry");
                Vec::new()
            }
        }
    }

    /// Tries a dead letter again with `work`; resolves it when that succeeds.
    pub async fn retry<Work>(&self, letter: &DeadLetter, work: Work) -> Verdict
    where
        Work: Future<Output = Result<(), EngineError>>,
    {
        // A retried letter fails at once into a dead letter again rather than three more times.
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(letter.external_id.clone(), ATTEMPTS - 1);
        let verdict = self
            .handle(&letter.external_id, || letter.payload.clone(), work)
            .await;
        if verdict == Verdict::Processed {
            if let Err(error) = self.store.resolve_dead_letter(letter.id).await {
                tracing::warn!(%error, "a retried dead letter was processed but not marked so");
            }
        }
        verdict
    }

    fn count_attempt(&self, external_id: &str) -> u32 {
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = attempts.entry(external_id.to_owned()).or_insert(0);
        *count += 1;
        *count
    }

    fn forget(&self, external_id: &str) {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(external_id);
    }
}

/// A panic's message, when it carried one.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
