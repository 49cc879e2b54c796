//! The Closer side of the Telegram load benchmark (`telegram-load --bot closer`): the real
//! adapter, long polling the fake Bot API, over a fresh database with the demo knowledge base
//! and the embedding model.

use std::time::Duration;

use anyhow::Context;
use closer_store::Store;
use closer_telegram::{Limits, Mode, Telegram, TelegramConfig};

/// The benchmark's own database, dropped and created again at every run.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/closer_telegram_bench";

/// A running bot under benchmark; `stop` shuts it down.
pub struct BenchBot {
    pub stop: Box<dyn FnOnce() + Send>,
}

/// Starts Closer's Telegram adapter polling `api_url` with `token`, over the database named by
/// `CLOSER_BENCH_DATABASE_URL` (a local one by default), emptied first; `unlimited` lifts
/// Telegram's rate limits from its sender.
///
/// # Errors
/// The database or the fake cannot be reached.
pub async fn start_closer(api_url: &str, token: &str, unlimited: bool) -> anyhow::Result<BenchBot> {
    let url = std::env::var("CLOSER_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    closer_store::drop_database(&url).await?;
    closer_store::ensure_database(&url).await?;
    let store = Store::connect(&url, 10).await?;
    store.migrate().await?;
    // The whole pipeline: retrieval by meaning when the model file is there (`.ci/run` puts
    // it in `.models/`, or `CLOSER_EMBED_MODEL`), keyword search alone otherwise.
    let model_path = closer_embed::workspace_model_path();
    let model = if model_path.is_file() {
        let model = closer_embed::Model::load(&model_path)?;
        eprintln!("Closer answers with the embedding model {}.", model.id());
        Some(std::sync::Arc::new(model))
    } else {
        eprintln!(
            "No embedding model at {}: keyword search alone.",
            model_path.display()
        );
        None
    };
    let engine = crate::demo_engine_with_model(store.pool().clone(), Vec::new(), model).await;
    let telegram = Telegram::connect(
        TelegramConfig {
            token: token.to_owned().into(),
            api_url: api_url.to_owned(),
            mode: Mode::Polling {
                timeout: Duration::from_secs(10),
            },
            limits: if unlimited {
                Limits {
                    per_chat_per_second: 1_000,
                    per_group_per_minute: 100_000,
                    overall_per_second: 100_000,
                }
            } else {
                Limits::default()
            },
        },
        engine,
    )
    .await
    .context("while connecting to the fake Bot API")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(telegram.run(async move {
        let _ = stopped.await;
    }));
    Ok(BenchBot {
        stop: Box::new(move || {
            let _ = stop.send(());
        }),
    })
}
