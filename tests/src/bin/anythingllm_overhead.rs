//! Measures what Closer adds on top of AnythingLLM's own latency, and the time to the first
//! visible output with a slow AnythingLLM, against the local fake:
//!
//! - the fake answers after `--latency-ms`; the client alone (one `chat` call) gives
//!   AnythingLLM's latency as a caller sees it, and the whole engine (peek, the dry-run dialog
//!   step, AnythingLLM, the store's transaction, the dialog, the commit) gives Closer's; the
//!   difference, p50 and p99, is Closer's overhead;
//! - with a slow fake (`--slow-ms`, beyond the deadline), the time until the prospect has an
//!   answer (the built-in one, at the deadline), and with streaming the time to the first
//!   streamed words.
//!
//! `cargo run --release -p closer-tests --bin anythingllm-overhead -- --requests 300`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use closer_engine::{AnswerPolicy, DraftError, Drafts};
use closer_knowledge::anythingllm::{AnythingLlm, AnythingLlmSettings, ChatMode, SessionId};
use closer_store::Store;
use closer_tests::fake_anythingllm::{FakeAnythingLlm, ANYTHINGLLM_KEY, WORKSPACE};
use secrecy::SecretString;

#[derive(Debug, Parser)]
struct Args {
    /// Questions per measurement.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// The fake's latency per answer, in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// A slow AnythingLLM's latency to its first output, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    slow_ms: u64,
    /// The deadline per answer, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    deadline_ms: u64,
}

/// A channel that notes when it was first asked to show an answer being written.
#[derive(Default)]
struct FirstShown {
    first: std::sync::Mutex<Option<Instant>>,
}

#[async_trait::async_trait]
impl Drafts for FirstShown {
    async fn send_draft(&self, _chat_id: &str, _text: &str) -> Result<String, DraftError> {
        if let Ok(mut first) = self.first.lock() {
            first.get_or_insert_with(Instant::now);
        }
        Ok("1".to_owned())
    }

    async fn edit_draft(&self, _chat: &str, _id: &str, _text: &str) -> Result<(), DraftError> {
        Ok(())
    }
}

fn percentile(samples: &mut [Duration], fraction: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples
        .get(index)
        .map_or(0.0, |sample| sample.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = std::env::var("CLOSER_BENCH_DATABASE_URL").unwrap_or_else(|_| {
        "postgres://postgres@127.0.0.1:5432/closer_anythingllm_bench".to_owned()
    });
    closer_store::drop_database(&url).await?;
    closer_store::ensure_database(&url).await?;
    let store = Store::connect(&url, 10).await?;
    store.migrate().await?;

    let fake = FakeAnythingLlm::start().await;
    fake.seed_document(
        "Pricing",
        "en-pricing.md",
        "Plans.\n\nThe Pro plan costs 49 USD per month per workspace and includes unlimited bookings.",
    );
    fake.set_latency(Duration::from_millis(args.latency_ms));
    let client = AnythingLlm::new(&AnythingLlmSettings {
        base_url: fake.base_url(),
        workspace: WORKSPACE.to_owned(),
        api_key: SecretString::from(ANYTHINGLLM_KEY.to_owned()),
        request_timeout: Duration::from_secs(30),
    })
    .context("a client")?;
    let policy = AnswerPolicy {
        deadline: Duration::from_millis(args.deadline_ms),
        ..AnswerPolicy::default()
    };
    let engine = closer_tests::demo_engine(store.pool().clone(), Vec::new())
        .await
        .with_answer_source(Arc::new(client.clone()), policy);
    let question = "How much does the Pro plan cost?";

    // Warm up connections and caches.
    for n in 0..10 {
        let session = SessionId::parse(&format!("warm:{n}")).context("a session")?;
        client.chat(question, ChatMode::Query, &session).await?;
        engine
            .handle(&closer_tests::text(&format!("warm-{n}"), "1", question))
            .await?;
    }

    let mut direct = Vec::with_capacity(args.requests);
    let mut through_closer = Vec::with_capacity(args.requests);
    for n in 0..args.requests {
        let session = SessionId::parse(&format!("direct:{n}")).context("a session")?;
        let started = Instant::now();
        client.chat(question, ChatMode::Query, &session).await?;
        direct.push(started.elapsed());

        // A new conversation each time: the full path, the conversation's creation included.
        let started = Instant::now();
        let handled = engine
            .handle(&closer_tests::text(&format!("bench-{n}"), "1", question))
            .await?;
        through_closer.push(started.elapsed());
        anyhow::ensure!(
            handled.replies[0]
                .citations
                .iter()
                .any(|citation| citation.source == "en-pricing.md"),
            "answered by AnythingLLM"
        );
    }
    let (d50, d99) = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
    let (c50, c99) = (
        percentile(&mut through_closer, 0.5),
        percentile(&mut through_closer, 0.99),
    );
    println!(
        "{} questions, fake AnythingLLM latency {} ms",
        args.requests, args.latency_ms
    );
    println!("  AnythingLLM alone (client):  p50 {d50:.1} ms, p99 {d99:.1} ms");
    println!("  through Closer's engine:     p50 {c50:.1} ms, p99 {c99:.1} ms");
    println!(
        "  Closer's overhead:           p50 {:.1} ms, p99 {:.1} ms",
        c50 - d50,
        c99 - d99
    );

    // A slow AnythingLLM: the answer at the deadline, from the built-in retriever.
    fake.set_latency(Duration::from_millis(args.slow_ms));
    fake.set_chunk_delay(Duration::from_millis(50));
    let mut fallback = Vec::new();
    for n in 0..5 {
        let started = Instant::now();
        engine
            .handle(&closer_tests::text(
                &format!("slow-{n}"),
                "1",
                "Сколько стоит тариф?",
            ))
            .await?;
        fallback.push(started.elapsed());
    }
    println!(
        "slow AnythingLLM ({} ms to its first output), deadline {} ms:",
        args.slow_ms, args.deadline_ms
    );
    println!(
        "  first visible output without streaming (built-in answer at the deadline): p50 {:.0} ms",
        percentile(&mut fallback, 0.5)
    );
    // Streaming: the first words as soon as AnythingLLM writes them, shown by the engine as a
    // draft on a channel that edits messages (the time until the channel is asked to show them).
    let first_token = args.deadline_ms / 2;
    fake.set_latency(Duration::from_millis(first_token));
    let streaming = closer_tests::demo_engine(store.pool().clone(), Vec::new())
        .await
        .with_answer_source(
            Arc::new(client.clone()),
            AnswerPolicy {
                stream: true,
                ..policy
            },
        );
    let mut first_words = Vec::new();
    let mut whole = Vec::new();
    for n in 0..5 {
        let screen = FirstShown::default();
        let mut message = closer_tests::text(&format!("stream-{n}"), "1", question);
        message.channel = closer_model::Channel::Telegram;
        let started = Instant::now();
        streaming.handle_streaming(&message, &screen).await?;
        whole.push(started.elapsed());
        let shown = screen
            .first
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .context("the answer was shown as it was written")?;
        first_words.push(shown - started);
    }
    println!(
        "  streamed, AnythingLLM at {first_token} ms to its first token: first words shown p50 {:.0} ms, answer committed p50 {:.0} ms",
        percentile(&mut first_words, 0.5),
        percentile(&mut whole, 0.5)
    );
    drop(store);
    closer_store::drop_database(&url).await.ok();
    Ok(())
}
