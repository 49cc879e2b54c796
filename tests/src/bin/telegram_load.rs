//! `telegram-load`: a load test of a Telegram bot against the fake Bot API with Telegram's rate
//! limits. One text message arrives in each of `--chats` private chats at once; the table shows
//! how fast every chat got its first answer, how many 429s the bot provoked and its peak memory.
//!
//! ```sh
//! cargo run --release -p closer-tests --bin telegram-load -- --bot aiogram --chats 200
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use closer_tests::fake_telegram::{FakeTelegram, Limits, FAKE_TOKEN};
use closer_tests::telegram_bench;

/// What prospects ask, in turn, one per chat.
const QUESTIONS: &[&str] = &[
    "Сколько стоит тариф?",
    "Do you integrate with Google Calendar?",
    "Здравствуйте! Есть ли у вас пробный период?",
    "How long does onboarding take for a team of 20?",
    "Можно оплатить по счёту для юрлица?",
    "Is my data stored in the EU?",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BotKind {
    /// Closer's Telegram adapter, in this process.
    Closer,
    /// The aiogram echo bot (`tests/benchmarks/aiogram_echo.py`), as a child process.
    Aiogram,
}

/// Load-tests a Telegram bot against the fake Bot API with Telegram's rate limits.
#[derive(Debug, Parser)]
struct Arguments {
    /// How many private chats each send one message at once.
    #[arg(long, default_value_t = 1000)]
    chats: i64,
    /// Which bot to run.
    #[arg(long, value_enum, default_value_t = BotKind::Closer)]
    bot: BotKind,
    /// The Python interpreter for `--bot aiogram` (one with aiogram 3 installed).
    #[arg(long, default_value = "python3")]
    python: String,
    /// Neither the fake nor Closer applies Telegram's rate limits: the pipeline's own speed
    /// (retrieval with embeddings, dialog, PostgreSQL) rather than Telegram's 30 messages/s.
    #[arg(long)]
    unlimited: bool,
    /// How long to wait for every chat to be answered, in seconds.
    #[arg(long, default_value_t = 600)]
    deadline: u64,
}

/// The bot under test, and how its memory is measured.
enum RunningBot {
    Closer {
        stop: Box<dyn FnOnce() + Send>,
        peak_before_kib: Option<u64>,
    },
    Aiogram {
        child: tokio::process::Child,
        peak_kib: Arc<AtomicU64>,
        sampler: tokio::task::JoinHandle<()>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    if arguments.chats < 1 {
        bail!("--chats must be at least 1");
    }
    let fake = FakeTelegram::start_with((!arguments.unlimited).then(Limits::telegram)).await;
    let api_url = fake.api_url();
    let bot = start_bot(&arguments, &api_url).await?;

    let polling = fake
        .wait_until(Duration::from_secs(60), |fake| {
            fake.calls().iter().any(|call| call.method == "getupdates")
        })
        .await;
    if !polling {
        stop_bot(bot).await;
        bail!("the bot did not call getUpdates within 60 s");
    }

    let mut injected_at = HashMap::new();
    for chat_id in 1..=arguments.chats {
        let question = QUESTIONS[usize::try_from(chat_id - 1).unwrap_or(0) % QUESTIONS.len()];
        // Every text differs, so no cache (of query embeddings, say) answers it for free.
        fake.send_text(chat_id, &format!("{question} (чат {chat_id})"));
        injected_at.insert(chat_id, Instant::now());
    }
    let injection = Instant::now();
    let expected = usize::try_from(arguments.chats).unwrap_or(usize::MAX);
    let complete = fake
        .wait_until(Duration::from_secs(arguments.deadline), |fake| {
            fake.chats_with_replies() >= expected
        })
        .await;

    let memory = peak_memory(&bot);
    stop_bot(bot).await;

    let sent = fake.sent();
    let mut first_reply: HashMap<i64, Instant> = HashMap::new();
    for message in &sent {
        first_reply.entry(message.chat_id).or_insert(message.at);
    }
    let mut latencies: Vec<Duration> = first_reply
        .iter()
        .filter_map(|(chat_id, replied)| {
            injected_at
                .get(chat_id)
                .map(|asked| replied.saturating_duration_since(*asked))
        })
        .collect();
    latencies.sort();
    let last_reply = sent.iter().map(|message| message.at).max();
    let wall = last_reply.map_or(Duration::ZERO, |last| {
        last.saturating_duration_since(injection)
    });
    let throughput = if wall.is_zero() {
        0.0
    } else {
        sent.len() as f64 / wall.as_secs_f64()
    };

    let bot_name = match arguments.bot {
        BotKind::Closer => "closer",
        BotKind::Aiogram => "aiogram",
    };
    let rows = [
        ("bot", bot_name.to_owned()),
        (
            "chats answered",
            format!("{} of {}", first_reply.len(), arguments.chats),
        ),
        ("sendMessage (successful)", sent.len().to_string()),
        (
            "wall time, injection → last reply",
            format!("{:.2} s", wall.as_secs_f64()),
        ),
        ("throughput", format!("{throughput:.1} messages/s")),
        (
            "first reply p50",
            milliseconds(percentile(&latencies, 0.50)),
        ),
        (
            "first reply p95",
            milliseconds(percentile(&latencies, 0.95)),
        ),
        (
            "first reply p99",
            milliseconds(percentile(&latencies, 0.99)),
        ),
        ("429 answers", fake.too_many_requests().to_string()),
        ("peak memory (VmHWM)", memory),
    ];
    let width = rows
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    println!();
    for (name, value) in rows {
        println!("| {name:<width$} | {value} |");
    }
    if !complete {
        bail!(
            "only {} of {} chats were answered within {} s",
            first_reply.len(),
            arguments.chats,
            arguments.deadline
        );
    }
    Ok(())
}

async fn start_bot(arguments: &Arguments, api_url: &str) -> anyhow::Result<RunningBot> {
    match arguments.bot {
        BotKind::Closer => {
            let peak_before_kib = vm_hwm_kib("self");
            let bot = telegram_bench::start_closer(api_url, FAKE_TOKEN, arguments.unlimited)
                .await
                .context("while starting Closer's Telegram adapter")?;
            Ok(RunningBot::Closer {
                stop: bot.stop,
                peak_before_kib,
            })
        }
        BotKind::Aiogram => {
            let script =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benchmarks/aiogram_echo.py");
            let child = tokio::process::Command::new(&arguments.python)
                .arg(&script)
                .args(["--api-url", api_url, "--token", FAKE_TOKEN])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| {
                    format!("while starting {} {}", arguments.python, script.display())
                })?;
            let pid = child.id().context("the aiogram bot has a pid")?;
            let peak_kib = Arc::new(AtomicU64::new(0));
            let sampler = tokio::spawn({
                let peak_kib = peak_kib.clone();
                async move {
                    // VmHWM is already a high-water mark; sampling keeps the last value read
                    // before the process goes away.
                    while let Some(kib) = vm_hwm_kib(&pid.to_string()) {
                        peak_kib.fetch_max(kib, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            });
            Ok(RunningBot::Aiogram {
                child,
                peak_kib,
                sampler,
            })
        }
    }
}

fn peak_memory(bot: &RunningBot) -> String {
    match bot {
        RunningBot::Closer {
            peak_before_kib, ..
        } => format!(
            "{} before the bot → {} after (this process: bot and fake)",
            mebibytes(*peak_before_kib),
            mebibytes(vm_hwm_kib("self"))
        ),
        RunningBot::Aiogram {
            child, peak_kib, ..
        } => {
            if let Some(kib) = child.id().and_then(|pid| vm_hwm_kib(&pid.to_string())) {
                peak_kib.fetch_max(kib, Ordering::Relaxed);
            }
            format!(
                "{} (python child)",
                mebibytes(Some(peak_kib.load(Ordering::Relaxed)))
            )
        }
    }
}

async fn stop_bot(bot: RunningBot) {
    match bot {
        RunningBot::Closer { stop, .. } => stop(),
        RunningBot::Aiogram {
            mut child, sampler, ..
        } => {
            sampler.abort();
            let _ = child.kill().await;
        }
    }
}

/// `VmHWM` (peak resident memory) from `/proc/<pid>/status`, in KiB.
fn vm_hwm_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mebibytes(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "unknown".to_owned(),
        |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
    )
}

/// The nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], fraction: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn milliseconds(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |duration| format!("{} ms", duration.as_millis()),
    )
}
