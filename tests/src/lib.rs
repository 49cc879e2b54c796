//! Test support for Closer's end-to-end tests: `spawn_app` starts the whole application on
//! port 0 over a fresh, migrated database with the demo knowledge base and playbook.
//! The local fake servers: [`fake_telegram`] (the Bot API), [`fake_trackers`] (the
//! hand-off targets), [`fake_anythingllm`] (AnythingLLM's developer API), [`fake_discord`]
//! (Discord's REST API and gateway) and [`fake_slack`] (the Web API, Socket Mode and a request
//! signer).

pub mod fake_anythingllm;
pub mod fake_discord;
pub mod fake_slack;
pub mod fake_telegram;
pub mod fake_trackers;
pub mod telegram_bench;

use std::path::{Path, PathBuf};

use closer_engine::Engine;
use closer_model::{Channel, InboundContent, InboundMessage};
use closer_store::Store;
use sqlx::PgPool;
use tokio::sync::oneshot;

/// Sends the code's logs to the test's output (shown when a test fails); `RUST_LOG` filters
/// them, warnings and errors by default.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The repository's `config/` folder.
pub fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

/// The engine over `pool` with the demo knowledge base and the shipped playbook.
///
/// # Panics
/// The demo files are missing or invalid: a test failure, not a runtime condition.
pub async fn demo_engine(pool: PgPool, routes: Vec<closer_model::Route>) -> Engine {
    demo_engine_with_model(pool, routes, None).await
}

/// [`demo_engine`] with retrieval by meaning when `model` is given (the passages are embedded
/// into the test's database first).
///
/// # Panics
/// The demo files are missing or invalid: a test failure, not a runtime condition.
pub async fn demo_engine_with_model(
    pool: PgPool,
    routes: Vec<closer_model::Route>,
    model: Option<std::sync::Arc<closer_embed::Model>>,
) -> Engine {
    init_logs();
    let store = Store::from_pool(pool);
    let scanned = closer_knowledge::read_dir(&config_dir().join("kb"), |_, _| {})
        .expect("the demo knowledge base reads");
    store
        .sync_documents(&scanned.documents)
        .await
        .expect("the demo knowledge base stores");
    let retriever = closer_engine::index::build_retriever(
        &store,
        scanned.documents,
        &Default::default(),
        model,
        |_, _| {},
    )
    .await
    .expect("the demo knowledge base indexes");
    let playbook =
        std::fs::read_to_string(config_dir().join("playbook.toml")).expect("the playbook reads");
    let dialog =
        closer_dialog::DialogConfig::from_toml_str(&playbook).expect("the playbook parses");
    Engine::new(store, dialog, retriever, routes)
}

/// A running Closer: its address, its engine, and a handle that stops it when dropped.
pub struct TestApp {
    pub address: String,
    pub engine: Engine,
    _stop: oneshot::Sender<()>,
}

/// Starts the HTTP server on 127.0.0.1:0 over `pool`.
///
/// # Panics
/// The port cannot be bound.
pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, closer_web::WebConfig::default()).await
}

/// Starts the HTTP server on 127.0.0.1:0 over `pool`, the console and chat configured by `web`.
///
/// # Panics
/// The port cannot be bound.
pub async fn spawn_app_with(pool: PgPool, web: closer_web::WebConfig) -> TestApp {
    let engine = demo_engine(pool, vec![closer_model::Route::always("webhook")]).await;
    spawn_app_on(engine, web).await
}

/// Starts the HTTP server on 127.0.0.1:0 for `engine`, the console and chat configured by `web`.
///
/// # Panics
/// The port cannot be bound.
pub async fn spawn_app_on(engine: Engine, web: closer_web::WebConfig) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let app = closer::server::Application::with_listener(listener, engine.clone())
        .with_routes(closer_web::metrics::router(None))
        .with_routes(closer_web::router(engine.clone(), web));
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        engine,
        _stop: stop,
    }
}

/// A text message from a prospect in chat `chat_id`, with the platform id `message_id`.
pub fn text(chat_id: &str, message_id: &str, text: &str) -> InboundMessage {
    InboundMessage {
        channel: Channel::Web,
        chat_id: chat_id.to_owned(),
        platform_message_id: message_id.to_owned(),
        sender_name: None,
        content: InboundContent::Text {
            text: text.to_owned(),
        },
        received_at: chrono::Utc::now(),
    }
}
