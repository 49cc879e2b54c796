//! Remote answer sources: a service (AnythingLLM) that answers product questions in place of
//! the built-in retriever, behind a deadline and a circuit breaker, every outcome counted.
//!
//! The engine asks the remote source *before* it opens the conversation's transaction, so a
//! slow answer never holds the conversation's row lock (see `Engine::handle`). Whatever the
//! source does, the engine ends up with one of three things: an answer with citations, a
//! refusal (the dialog then declines and offers a person), or nothing usable, in which case the
//! built-in retriever answers as if no remote source were configured.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use closer_knowledge::anythingllm::{AnythingLlm, ChatMode, ChatOutcome, SessionId, StreamEvent};
use closer_model::{KnowledgeAnswer, Lang};
use tokio::sync::watch;

/// One product question for a remote source.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The prospect's words.
    pub text: &'a str,
    pub lang: Lang,
    /// The conversation's stable key (`channel:chat`): the source keeps one history per key.
    pub session: &'a str,
}

/// What a remote source answered.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceAnswer {
    /// An answer with the documents it came from (never without them).
    Answered(KnowledgeAnswer),
    /// The source has nothing to go on (AnythingLLM's query-mode refusal, or text without
    /// sources, which is never presented as fact).
    Refused,
}

/// Why a remote source gave no usable answer; the reason is for logs, never for a prospect.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// A service that answers product questions.
#[async_trait]
pub trait AnswerSource: Send + Sync {
    /// Its name in logs and metrics (`anythingllm`).
    fn name(&self) -> &'static str;

    /// Answers one question.
    ///
    /// # Errors
    /// [`SourceError`] when the source failed (down, slow, a refused key, a page instead of
    /// JSON): the engine falls back to the built-in retriever.
    async fn answer(&self, question: &Question<'_>) -> Result<SourceAnswer, SourceError>;

    /// Answers one question, putting the answer's text so far (the whole of it each time)
    /// into `progress` as it is written. A source that cannot stream answers at once.
    ///
    /// # Errors
    /// As [`AnswerSource::answer`].
    async fn answer_streaming(
        &self,
        question: &Question<'_>,
        progress: &watch::Sender<String>,
    ) -> Result<SourceAnswer, SourceError> {
        let _ = progress;
        self.answer(question).await
    }
}

fn source_answer(outcome: ChatOutcome) -> SourceAnswer {
    match outcome {
        ChatOutcome::Answered(answer) => SourceAnswer::Answered(answer.to_knowledge_answer()),
        ChatOutcome::Refused { .. } | ChatOutcome::Unsourced { .. } => SourceAnswer::Refused,
    }
}

#[async_trait]
impl AnswerSource for AnythingLlm {
    fn name(&self) -> &'static str {
        "anythingllm"
    }

    async fn answer(&self, question: &Question<'_>) -> Result<SourceAnswer, SourceError> {
        let session = SessionId::parse(question.session)
            .ok_or_else(|| SourceError("a question without a conversation".to_owned()))?;
        self.chat(question.text, ChatMode::Query, &session)
            .await
            .map(source_answer)
            .map_err(|error| SourceError(error.to_string()))
    }

    async fn answer_streaming(
        &self,
        question: &Question<'_>,
        progress: &watch::Sender<String>,
    ) -> Result<SourceAnswer, SourceError> {
        let session = SessionId::parse(question.session)
            .ok_or_else(|| SourceError("a question without a conversation".to_owned()))?;
        let failed =
            |error: closer_knowledge::anythingllm::AnythingLlmError| SourceError(error.to_string());
        let mut stream = self
            .stream_chat(question.text, ChatMode::Query, &session)
            .await
            .map_err(failed)?;
        let mut written = String::new();
        loop {
            match stream.next().await.map_err(failed)? {
                Some(StreamEvent::Text(more)) => {
                    written.push_str(&more);
                    progress.send_replace(written.clone());
                }
                Some(StreamEvent::Done(outcome)) => return Ok(source_answer(outcome)),
                None => {
                    return Err(SourceError(
                        "the answer's stream ended before the answer".to_owned(),
                    ))
                }
            }
        }
    }
}

/// How the engine treats a remote source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerPolicy {
    /// How long a prospect's answer may wait for the source before the built-in one is used.
    pub deadline: Duration,
    /// Consecutive failures (errors and timeouts) that open the breaker.
    pub breaker_failures: u32,
    /// How long an open breaker skips the source before one probe question is let through.
    pub breaker_cool_down: Duration,
    /// Show answers as they are written, on channels that can edit a message: the deadline
    /// then bounds the wait for the first words, and `stream_limit` the whole answer.
    pub stream: bool,
    pub stream_limit: Duration,
}

impl Default for AnswerPolicy {
    fn default() -> Self {
        AnswerPolicy {
            deadline: Duration::from_secs(2),
            breaker_failures: 5,
            breaker_cool_down: Duration::from_secs(30),
            stream: true,
            stream_limit: Duration::from_secs(60),
        }
    }
}

/// What became of one question, as counted in `closer_anythingllm_answers_total{outcome}`.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteOutcome {
    Answered(KnowledgeAnswer),
    Refused,
    /// The deadline passed: the built-in retriever answers.
    Timeout,
    /// The source failed: the built-in retriever answers.
    Error,
    /// The breaker is open: the source was not asked, the built-in retriever answers.
    BreakerOpen,
}

impl RemoteOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            RemoteOutcome::Answered(_) => "answered",
            RemoteOutcome::Refused => "refused",
            RemoteOutcome::Timeout => "timeout",
            RemoteOutcome::Error => "error",
            RemoteOutcome::BreakerOpen => "breaker_open",
        }
    }
}

/// A remote source with its deadline and breaker.
pub struct RemoteAnswers {
    source: Arc<dyn AnswerSource>,
    policy: AnswerPolicy,
    breaker: Mutex<Breaker>,
}

impl RemoteAnswers {
    pub fn new(source: Arc<dyn AnswerSource>, policy: AnswerPolicy) -> RemoteAnswers {
        RemoteAnswers {
            source,
            policy,
            breaker: Mutex::new(Breaker::new(
                policy.breaker_failures,
                policy.breaker_cool_down,
            )),
        }
    }

    pub fn policy(&self) -> AnswerPolicy {
        self.policy
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // The breaker's state is a few numbers, whole after any panic.
        self.breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the breaker is open now (for tests and health reports).
    pub fn breaker_is_open(&self) -> bool {
        self.breaker().is_open(Instant::now())
    }

    /// Asks the source within the deadline, through the breaker, and counts the outcome.
    pub async fn ask(&self, question: &Question<'_>) -> RemoteOutcome {
        self.guarded(async {
            tokio::time::timeout(self.policy.deadline, self.source.answer(question))
                .await
                .ok()
        })
        .await
    }

    /// Asks the source for an answer written as it streams, putting the text so far into
    /// `progress` (dropped at the end, which tells the reader the answer is complete). The
    /// deadline bounds the wait for the first words; once they are there the answer may take
    /// up to the policy's `stream_limit`. Through the breaker, counted like [`RemoteAnswers::ask`].
    pub async fn ask_streaming(
        &self,
        question: &Question<'_>,
        progress: watch::Sender<String>,
    ) -> RemoteOutcome {
        let mut written = progress.subscribe();
        let answer = self.source.answer_streaming(question, &progress);
        let policy = self.policy;
        self.guarded(async move {
            tokio::pin!(answer);
            let first_words = tokio::time::sleep(policy.deadline);
            let whole = tokio::time::sleep(policy.stream_limit);
            tokio::pin!(first_words, whole);
            let mut started = false;
            loop {
                tokio::select! {
                    result = &mut answer => return Some(result),
                    () = &mut first_words, if !started => return None,
                    () = &mut whole => return None,
                    changed = written.changed(), if !started => {
                        started = changed.is_err() || !written.borrow_and_update().is_empty();
                    }
                }
            }
        })
        .await
    }

    /// Runs one question through the breaker and counts its outcome; `asking` gives `None`
    /// when it ran out of time.
    async fn guarded(
        &self,
        asking: impl std::future::Future<Output = Option<Result<SourceAnswer, SourceError>>>,
    ) -> RemoteOutcome {
        let name = self.source.name();
        let admitted = self.breaker().admit(Instant::now());
        if !admitted {
            metrics::counter!("closer_anythingllm_answers_total", "outcome" => "breaker_open")
                .increment(1);
            tracing::debug!(
                source = name,
                "breaker open: the built-in retriever answers"
            );
            return RemoteOutcome::BreakerOpen;
        }
        let started = Instant::now();
        let outcome = match asking.await {
            Some(Ok(SourceAnswer::Answered(answer))) => RemoteOutcome::Answered(answer),
            Some(Ok(SourceAnswer::Refused)) => RemoteOutcome::Refused,
            Some(Err(error)) => {
                tracing::warn!(source = name, %error, "the answer source failed; the built-in retriever answers");
                RemoteOutcome::Error
            }
            None => {
                tracing::warn!(
                    source = name,
                    deadline_ms = self.policy.deadline.as_millis() as u64,
                    "the answer source is too slow; the built-in retriever answers"
                );
                RemoteOutcome::Timeout
            }
        };
        let failed = matches!(outcome, RemoteOutcome::Error | RemoteOutcome::Timeout);
        {
            let mut breaker = self.breaker();
            if failed {
                if breaker.failure(Instant::now()) {
                    tracing::warn!(source = name, "the answer source's breaker opened");
                }
            } else {
                breaker.success();
            }
        }
        let label = outcome.label();
        metrics::counter!("closer_anythingllm_answers_total", "outcome" => label).increment(1);
        metrics::histogram!("closer_anythingllm_answer_seconds", "outcome" => label)
            .record(started.elapsed().as_secs_f64());
        outcome
    }
}

/// A circuit breaker: closed, open after `threshold` consecutive failures, and after the
/// cool-down half-open, letting one probe through; the probe's success closes it, its failure
/// opens it for another cool-down. Time is passed in, so it is tested without waiting.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// A probe is out: other questions keep skipping the source until it returns.
    probing: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cool_down,
            consecutive_failures: 0,
            open_until: None,
            probing: false,
        }
    }

    /// Whether the source may be asked now; when half-open, the caller is the probe.
    pub fn admit(&mut self, now: Instant) -> bool {
        match self.open_until {
            None => true,
            Some(until) if now < until => false,
            Some(_) if self.probing => false,
            Some(_) => {
                self.probing = true;
                true
            }
        }
    }

    /// The source answered (a refusal included: it is up).
    pub fn success(&mut self) {
        self.consecutive_failures = 0;
        self.open_until = None;
        self.probing = false;
    }

    /// The source failed; returns whether this opened the breaker.
    pub fn failure(&mut self, now: Instant) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let was_probe = std::mem::take(&mut self.probing);
        if was_probe || self.consecutive_failures >= self.threshold {
            let opened_now = was_probe || self.open_until.is_none();
            self.open_until = Some(now + self.cool_down);
            return opened_now && !was_probe;
        }
        false
    }

    pub fn is_open(&self, now: Instant) -> bool {
        self.open_until
            .is_some_and(|until| now < until || self.probing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_probes_after_the_cool_down() {
        let start = Instant::now();
        let cool_down = Duration::from_secs(30);
        let mut breaker = Breaker::new(3, cool_down);
        // Failures interrupted by a success do not add up.
        assert!(breaker.admit(start));
        assert!(!breaker.failure(start));
        assert!(!breaker.failure(start));
        breaker.success();
        assert!(!breaker.failure(start));
        assert!(!breaker.failure(start));
        assert!(breaker.failure(start), "the third in a row opens it");
        assert!(!breaker.admit(start + Duration::from_secs(29)));
        assert!(breaker.is_open(start + Duration::from_secs(29)));

        // Half-open: one probe, and nobody else while it is out.
        let later = start + cool_down;
        assert!(breaker.admit(later));
        assert!(!breaker.admit(later));
        // The probe fails: open for another cool-down.
        breaker.failure(later);
        assert!(!breaker.admit(later + Duration::from_secs(1)));
        let again = later + cool_down;
        assert!(breaker.admit(again));
        breaker.success();
        assert!(!breaker.is_open(again));
        assert!(breaker.admit(again));
        assert!(breaker.admit(again));
    }
}
