//! The browser-facing side of Closer, mounted on its HTTP server: the website chat (a channel,
//! `web`), the sales team's console (server-rendered HTML with SVG charts) and its JSON API,
//! and `/metrics`.
//!
//! - [`chat`] — `/chat/widget.js` and the visitor's endpoints, rate-limited per visitor.
//! - [`auth`] — accounts (argon2), session cookies, API tokens, CSRF, the sign-in limit.
//! - [`pages`] — the console's pages under `/console`.
//! - [`api`] — the same data as JSON under `/api`.
//! - [`knowledge`] — uploading, deleting and re-indexing knowledge documents.
//! - [`sync`] — the AnythingLLM workspace's sync: its status, "Sync now", and the change every
//!   upload and delete starts.
//! - [`charts`] — bar charts as SVG, drawn on the server.
//! - [`metrics`] — the Prometheus exporter and `GET /metrics`, behind a bearer token when one
//!   is configured.
//! - [`security`] — the Content-Security-Policy and the other security headers on every answer.
//!
//! Nothing is loaded from elsewhere: the scripts, the style sheets and the charts are served by
//! Closer itself, so the console works offline. SQL stays in `closer-store`.

pub mod api;
pub mod auth;
pub mod charts;
pub mod chat;
pub mod knowledge;
pub mod metrics;
pub mod pages;
pub mod security;
pub mod sync;

use std::sync::Arc;

use axum::Router;
use closer_engine::Engine;

/// What the console and the chat need from configuration.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Serve the console and its API under `/console` and `/api`.
    pub console: bool,
    /// Serve the website chat under `/chat`.
    pub chat: bool,
    /// Mark the console's cookies `Secure` always. Without it they are `Secure` when the request
    /// came over HTTPS as the reverse proxy reports it (`X-Forwarded-Proto: https`).
    pub secure_cookies: bool,
    /// How long a session lasts, in hours.
    pub session_hours: i64,
    /// The longest visitor message accepted, in characters.
    pub chat_max_message_chars: usize,
    /// How many messages one visitor may send per minute (a burst of up to 5).
    pub chat_messages_per_minute: u32,
    /// The sites allowed to read the chat's answers (`https://www.example.com`); any when empty.
    pub chat_allowed_origins: Vec<String>,
    /// Sign-in attempts per e-mail address per minute, and for all addresses together.
    pub login_attempts_per_minute: u32,
    pub login_attempts_overall_per_minute: u32,
    /// The configured channels and hand-off targets, for the health page.
    pub channels: Vec<String>,
    pub targets: Vec<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            console: true,
            chat: true,
            secure_cookies: false,
            session_hours: 12,
            chat_max_message_chars: 2000,
            chat_messages_per_minute: 20,
            chat_allowed_origins: Vec::new(),
            login_attempts_per_minute: 5,
            login_attempts_overall_per_minute: 60,
            channels: Vec::new(),
            targets: Vec::new(),
        }
    }
}

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    pub engine: Engine,
    pub config: Arc<WebConfig>,
    pub chat_limiters: Arc<chat::ChatLimiters>,
    pub login_limiter: Arc<auth::LoginLimiter>,
    /// Held while the knowledge base is re-indexed, so rebuilds run one at a time.
    pub reindexing: Arc<tokio::sync::Mutex<()>>,
}

/// The routes of the chat and the console as `config` enables them, ready to merge into
/// Closer's server. Starts the sweeper of idle rate-limiter keys, so it must be called inside
/// a Tokio runtime.
pub fn router(engine: Engine, config: WebConfig) -> Router {
    let chat_limiters = chat::ChatLimiters::new(config.chat_messages_per_minute);
    let login_limiter = auth::LoginLimiter::new(
        config.login_attempts_per_minute,
        config.login_attempts_overall_per_minute,
    );
    chat::sweep(
        Arc::downgrade(&chat_limiters),
        Arc::downgrade(&login_limiter),
    );
    let mut router = Router::new();
    if config.chat {
        router = router.merge(chat::router());
    }
    if config.console {
        router = router.merge(pages::router()).merge(api::router());
    }
    router
        .layer(axum::middleware::map_response(security::add_headers))
        .with_state(WebState {
            engine,
            config: Arc::new(config),
            chat_limiters,
            login_limiter,
            reindexing: Arc::new(tokio::sync::Mutex::new(())),
        })
}
