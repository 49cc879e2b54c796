//! The Discord channel, on serenity: prospects' messages and interactions in, the assistant's
//! replies out.
//!
//! - [`inbound`]: a message or an interaction to a platform-neutral message (pure).
//! - [`render`]: a reply to Discord messages — markdown escaped, 2,000-character parts,
//!   buttons for quick replies and the rating, compact citations (pure).
//! - [`sender`]: drains each conversation's pending replies from the store, paced by `pace`
//!   within Discord's limits, through `rest` (which reads 429s and rate-limit headers).
//! - `commands`: the slash commands `/ask` and `/contact` and the contact form.
//! - [`Discord`]: the gateway (serenity's client, which identifies, heartbeats, reconnects
//!   and resumes), or the HTTP interactions endpoint on Closer's own server.
//!
//! **Exactly once.** A message or interaction is handed to the engine, which commits it and
//! its replies (marked pending) in one transaction, deduplicated by the Discord message id
//! (or `interaction:{id}`). A gateway resume that replays events is answered from the store,
//! never twice; the conversation's state lives in the store, so a reconnect loses nothing.

mod commands;
pub mod inbound;
mod pace;
pub mod render;
mod rest;
pub mod sender;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::post;
use axum::{Json, Router};
use closer_engine::{Engine, EngineError, Guard, Handled, Verdict};
use closer_model::InboundMessage;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use serenity::all::{
    ApplicationId, ConnectionStage, Context, EventHandler, GatewayIntents, Interaction, Message,
    Ready, ResumedEvent, ShardStageUpdateEvent,
};
use serenity::http::HttpBuilder;
use serenity::interactions_endpoint::Verifier;

pub use inbound::{Identity, Planned, Response, Scope, Translated};
pub use pace::Limits;
pub use rest::RestError;
pub use sender::{Sender, SenderStats};

/// Discord's own API, which the REST calls go to unless a proxy or fake is configured.
pub const DISCORD_API: &str = "https://discord.com";
/// The headers Discord signs an interaction with.
pub const SIGNATURE_HEADER: &str = "x-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";

/// How interactions (slash commands, buttons, the contact form) reach Closer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interactions {
    /// Over the gateway, with the messages.
    Gateway,
    /// Discord posts them to `path` on Closer's HTTP server (the application's "Interactions
    /// Endpoint URL"); they are checked against the application's public key.
    Endpoint {
        path: String,
        /// The application's public key, 64 hex digits.
        public_key: String,
        /// How old a signed request may be; older ones are refused as possible replays.
        max_age: Duration,
    },
}

/// Everything the channel needs from configuration.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    pub token: SecretString,
    pub application_id: u64,
    /// Discord's REST API base ([`DISCORD_API`]), or a REST proxy or a local fake speaking it
    /// at `{api_url}/api/v10`.
    pub api_url: String,
    /// Where the assistant answers.
    pub scope: Scope,
    /// Register `/ask` and `/contact` on start (a bulk overwrite).
    pub register_commands: bool,
    /// The servers to register the commands in (they appear at once there); globally when
    /// empty.
    pub command_guilds: Vec<u64>,
    pub interactions: Interactions,
    pub limits: Limits,
}

/// Why the channel cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("Discord rejected the bot token (check discord.token): {0}")]
    Unauthorized(String),
    #[error("Discord could not be reached: {0}")]
    Unreachable(String),
    #[error("the slash commands could not be registered: {0}")]
    Commands(String),
    #[error("discord.public_key must be the application's public key, 64 hex digits")]
    InvalidPublicKey,
    #[error("the Discord gateway stopped: {0}")]
    Gateway(String),
}

/// The running channel. Cheap to clone.
#[derive(Clone)]
pub struct Discord {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    sender: Sender,
    rest: rest::Rest,
    me: Identity,
    scope: Scope,
    config: DiscordConfig,
    /// Checks the interactions endpoint's signatures.
    verifier: Option<Verifier>,
    /// Each event handled under it: a panic or a failure that repeats dead-letters the event.
    guard: Guard,
}

impl Discord {
    /// Connects: checks the token with `GET /users/@me` and registers the slash commands.
    ///
    /// # Errors
    /// [`DiscordError::Unauthorized`] for a rejected token, [`DiscordError::Unreachable`] when
    /// the API does not answer, [`DiscordError::Commands`], [`DiscordError::InvalidPublicKey`].
    pub async fn connect(config: DiscordConfig, engine: Engine) -> Result<Discord, DiscordError> {
        let proxy = proxy_of(&config.api_url);
        let rest = rest::Rest::new(&config.token, proxy, config.application_id)
            .map_err(|error| DiscordError::Unreachable(error.to_string()))?;
        let me = match with_retries(|| rest.current_user()).await {
            Ok(answer) => Identity {
                id: answer
                    .body
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.parse().ok())
                    .unwrap_or(0),
                username: answer
                    .body
                    .get("username")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            },
            Err(error @ RestError::Rejected { .. }) => {
                return Err(DiscordError::Unauthorized(error.to_string()))
            }
            Err(error) => return Err(DiscordError::Unreachable(error.to_string())),
        };
        let verifier = match &config.interactions {
            Interactions::Endpoint { public_key, .. } => Some(verifier(public_key)?),
            Interactions::Gateway => None,
        };
        if config.register_commands {
            let body = commands::definitions();
            let guilds: Vec<Option<u64>> = if config.command_guilds.is_empty() {
                vec![None]
            } else {
                config.command_guilds.iter().copied().map(Some).collect()
            };
            for guild in guilds {
                with_retries(|| rest.overwrite_commands(guild, &body))
                    .await
                    .map_err(|error| DiscordError::Commands(error.to_string()))?;
            }
        }
        let sender = Sender::new(rest.clone(), engine.store().clone(), config.limits);
        let guard = Guard::new(engine.store().clone(), closer_model::Channel::Discord);
        tracing::info!(username = %me.username, "connected to Discord");
        Ok(Discord {
            inner: Arc::new(Inner {
                engine,
                sender,
                rest,
                me,
                scope: config.scope.clone(),
                config,
                verifier,
                guard,
            }),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.me
    }

    pub fn sender(&self) -> &Sender {
        &self.inner.sender
    }

    /// The interactions endpoint's route, to mount on Closer's HTTP server; empty when
    /// interactions come over the gateway.
    pub fn router(&self) -> Router {
        match &self.inner.config.interactions {
            Interactions::Endpoint { path, .. } => Router::new()
                .route(path, post(endpoint))
                .with_state(self.clone()),
            Interactions::Gateway => Router::new(),
        }
    }

    /// Runs until `shutdown`: resumes replies left pending, then connects to the gateway,
    /// which serenity keeps connected (heartbeats, reconnects, resumes).
    ///
    /// # Errors
    /// [`DiscordError::Gateway`] when the gateway refuses the bot for good (a bad token,
    /// intents not enabled for the application).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), DiscordError> {
        self.inner.sender.resume().await;
        let sweeper = {
            let sender = self.inner.sender.clone();
            tokio::spawn(async move { sender.sweep_every(Duration::from_secs(60)).await })
        };
        // What a salesperson writes during a takeover (from Slack, the console) is pending in
        // the store for this conversation: deliver it like any reply.
        let follower = {
            let sender = self.inner.sender.clone();
            let store = self.inner.engine.store().clone();
            tokio::spawn(async move {
                store
                    .follow_person_messages(closer_model::Channel::Discord, |chat| {
                        sender.kick(chat)
                    })
                    .await;
            })
        };
        // Dead letters a person asked to try again (console, `closer dead-letters retry`).
        let retrier = {
            let discord = self.clone();
            tokio::spawn(async move {
                discord
                    .retry_dead_letters_every(Duration::from_secs(5))
                    .await
            })
        };
        let config = &self.inner.config;
        let mut http = HttpBuilder::new(config.token.expose_secret())
            .application_id(ApplicationId::new(config.application_id.max(1)));
        if let Some(proxy) = proxy_of(&config.api_url) {
            // serenity's rate limiter ignores a proxy; Closer paces its own requests, and the
            // gateway client makes one (`GET /gateway`).
            http = http.proxy(proxy).ratelimiter_disabled(true);
        }
        let intents = GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::DIRECT_MESSAGES
            | GatewayIntents::MESSAGE_CONTENT;
        let built = serenity::all::ClientBuilder::new_with_http(http.build(), intents)
            .event_handler(Gateway {
                discord: self.clone(),
            })
            .await;
        let result = match built {
            Ok(mut client) => {
                let shards = client.shard_manager.clone();
                tokio::pin!(shutdown);
                let result = tokio::select! {
                    () = &mut shutdown => Ok(()),
                    result = client.start() => result.map_err(|error| DiscordError::Gateway(error.to_string())),
                };
                if let Err(error) = &result {
                    self.engine().health().down("discord", &error.to_string());
                }
                shards.shutdown_all().await;
                result
            }
            Err(error) => Err(DiscordError::Gateway(error.to_string())),
        };
        sweeper.abort();
        follower.abort();
        retrier.abort();
        result
    }

    /// The engine this adapter hands its messages to.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Handles one message from the gateway: translate, commit through the engine, then let
    /// the sender send what is pending.
    pub async fn process_message(&self, message: &Message) {
        let id = format!("message:{}", message.id.get());
        let payload = || serde_json::to_string(message).unwrap_or_default();
        let verdict = self
            .inner
            .guard
            .handle(&id, payload, self.translate_and_handle(message))
            .await;
        self.settle(&id, verdict, payload).await;
    }

    async fn translate_and_handle(&self, message: &Message) -> Result<(), EngineError> {
        match inbound::translate_message(message, &self.inner.me, &self.inner.scope) {
            Translated::Ignored(reason) => {
                tracing::debug!(message_id = message.id.get(), reason, "message ignored");
                Ok(())
            }
            Translated::Inbound { message, .. } => self.handle(message).await,
        }
    }

    /// The gateway never delivers an event twice, so one that is still to be retried when the
    /// guard gives up waiting (the database stayed away) is kept as a dead letter rather than
    /// dropped.
    async fn settle(&self, id: &str, verdict: Verdict, payload: impl FnOnce() -> String) {
        if verdict == Verdict::RetryLater {
            let kept = self
                .inner
                .guard
                .bury(
                    id,
                    "could not be committed: the database stayed away",
                    &payload(),
                )
                .await;
            if kept == Verdict::RetryLater {
                tracing::error!(
                    id,
                    "a Discord event could not be committed nor kept, and is dropped"
                );
            }
        }
    }

    /// Every `period`, processes the dead letters a person asked to try again. An
    /// interaction's token has expired by then: its message is handled, with replies sent to
    /// the channel instead of as a follow-up.
    async fn retry_dead_letters_every(&self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            for letter in self.inner.guard.retries().await {
                let verdict = if letter.external_id.starts_with("interaction:") {
                    match serde_json::from_str::<Interaction>(&letter.payload) {
                        Ok(interaction) => {
                            let planned = inbound::plan_interaction(
                                &interaction,
                                &self.inner.me,
                                &self.inner.scope,
                            );
                            let work = async {
                                match planned.inbound {
                                    Some(message) => self.handle(message).await,
                                    None => Ok(()),
                                }
                            };
                            self.inner.guard.retry(&letter, work).await
                        }
                        Err(error) => self.unreadable(&letter, &error).await,
                    }
                } else {
                    match serde_json::from_str::<Message>(&letter.payload) {
                        Ok(message) => {
                            let work = self.translate_and_handle(&message);
                            self.inner.guard.retry(&letter, work).await
                        }
                        Err(error) => self.unreadable(&letter, &error).await,
                    }
                };
                tracing::info!(id = %letter.external_id, ?verdict, "a dead letter tried again");
            }
        }
    }

    async fn unreadable(
        &self,
        letter: &closer_store::DeadLetter,
        error: &serde_json::Error,
    ) -> Verdict {
        let reason = format!("the kept event does not parse: {error}");
        self.inner
            .guard
            .retry(letter, async { Err(EngineError::Rejected(reason)) })
            .await
    }

    /// Handles one interaction from the gateway: the response first (Discord waits 3 s at
    /// most), then the message through the engine, whose replies follow.
    pub async fn process_interaction(&self, interaction: &Interaction) {
        let id = format!("interaction:{}", interaction.id().get());
        let payload = || serde_json::to_string(interaction).unwrap_or_default();
        let verdict = self
            .inner
            .guard
            .handle(&id, payload, self.respond_and_handle(interaction))
            .await;
        self.settle(&id, verdict, payload).await;
    }

    async fn respond_and_handle(&self, interaction: &Interaction) -> Result<(), EngineError> {
        let planned = inbound::plan_interaction(interaction, &self.inner.me, &self.inner.scope);
        let body = commands::response_body(&planned.response);
        let responded = self
            .inner
            .rest
            .respond(interaction.id().get(), interaction.token(), &body)
            .await;
        if let Err(error) = &responded {
            tracing::warn!(%error, "could not respond to an interaction");
        }
        if let Some(message) = planned.inbound {
            if responded.is_ok() && planned.response == Response::DeferReply {
                self.inner
                    .sender
                    .follow_up(&message.chat_id, interaction.token());
            }
            return self.handle(message).await;
        }
        Ok(())
    }

    /// Commits a message through the engine, retrying a while when the database is away (the
    /// gateway does not deliver an event twice on its own), then kicks the sender.
    ///
    /// # Errors
    /// The engine refused the message, or the database stayed away.
    async fn handle(&self, message: InboundMessage) -> Result<(), EngineError> {
        let mut last = None;
        let mut delay = Duration::from_millis(250);
        for attempt in 1..=8 {
            // An answer streamed by the answer source shows as it is written.
            match self
                .inner
                .engine
                .handle_streaming(&message, &self.inner.sender)
                .await
            {
                Ok(handled) => {
                    self.after(&message, &handled);
                    return Ok(());
                }
                Err(EngineError::Store(error)) if error.is_transient() => {
                    tracing::warn!(%error, attempt, "a Discord message could not be committed; retrying");
                    last = Some(error);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(15));
                }
                Err(error) => return Err(error),
            }
        }
        Err(last.map_or_else(
            || EngineError::Rejected("not committed".to_owned()),
            EngineError::Store,
        ))
    }

    fn after(&self, message: &InboundMessage, handled: &Handled) {
        metrics::counter!("closer_messages_total", "channel" => "discord").increment(1);
        if !handled.replies.is_empty() || handled.duplicate {
            self.inner.sender.kick(&message.chat_id);
        }
    }
}

/// serenity's gateway events, handed to the channel.
struct Gateway {
    discord: Discord,
}

#[serenity::async_trait]
impl EventHandler for Gateway {
    async fn ready(&self, _context: Context, ready: Ready) {
        tracing::info!(session = %ready.session_id, "Discord gateway ready");
        self.discord
            .engine()
            .health()
            .connected("discord", "gateway");
    }

    async fn resume(&self, _context: Context, _event: ResumedEvent) {
        tracing::info!("Discord gateway session resumed");
        self.discord
            .engine()
            .health()
            .connected("discord", "gateway");
    }

    async fn shard_stage_update(&self, _context: Context, event: ShardStageUpdateEvent) {
        // serenity reconnects by itself; until it has, the gateway is degraded.
        if event.new != ConnectionStage::Connected {
            let stage = format!("gateway {}", event.new);
            self.discord.engine().health().degraded("discord", &stage);
        }
    }

    async fn message(&self, _context: Context, message: Message) {
        self.discord.process_message(&message).await;
    }

    async fn interaction_create(&self, _context: Context, interaction: Interaction) {
        self.discord.process_interaction(&interaction).await;
    }
}

/// The interactions endpoint: the signature and its age checked first (401 otherwise, and
/// nothing processed), PING answered with PONG, and anything that needs the engine deferred
/// at once, its replies following as follow-up messages.
async fn endpoint(State(discord): State<Discord>, headers: HeaderMap, body: Bytes) -> HttpResponse {
    let Interactions::Endpoint { max_age, .. } = &discord.inner.config.interactions else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(signature), Some(timestamp), Some(verifier)) = (
        header(SIGNATURE_HEADER),
        header(TIMESTAMP_HEADER),
        discord.inner.verifier.as_ref(),
    ) else {
        return (StatusCode::UNAUTHORIZED, "missing signature").into_response();
    };
    if !fresh(timestamp, *max_age, chrono::Utc::now().timestamp()) {
        tracing::warn!("a Discord interaction with an old or malformed timestamp was refused");
        return (StatusCode::UNAUTHORIZED, "stale timestamp").into_response();
    }
    if verifier.verify(signature, timestamp, &body).is_err() {
        tracing::warn!("a Discord interaction with a bad signature was refused");
        return (StatusCode::UNAUTHORIZED, "invalid request signature").into_response();
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(interaction) => interaction,
        Err(error) => {
            tracing::warn!(%error, "a signed Discord interaction does not parse");
            return (StatusCode::BAD_REQUEST, "not an interaction").into_response();
        }
    };
    let planned = inbound::plan_interaction(&interaction, &discord.inner.me, &discord.inner.scope);
    let body = commands::response_body(&planned.response);
    if let Some(message) = planned.inbound {
        if planned.response == Response::DeferReply {
            discord
                .inner
                .sender
                .follow_up(&message.chat_id, interaction.token());
        }
        tokio::spawn(async move {
            // The response must reach Discord before the first follow-up; a follow-up that
            // still comes too soon is refused and sent to the channel instead.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let id = format!("interaction:{}", interaction.id().get());
            let payload = || serde_json::to_string(&interaction).unwrap_or_default();
            let verdict = discord
                .inner
                .guard
                .handle(&id, payload, discord.handle(message))
                .await;
            discord.settle(&id, verdict, payload).await;
        });
    }
    Json(body).into_response()
}

/// Whether a signed request's `X-Signature-Timestamp` (Unix seconds) is within `max_age` of
/// `now`, either way (a clock ahead of ours is as suspect as an old request).
fn fresh(timestamp: &str, max_age: Duration, now: i64) -> bool {
    let Ok(signed) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    let age = now.saturating_sub(signed).unsigned_abs();
    age <= max_age.as_secs()
}

fn verifier(public_key: &str) -> Result<Verifier, DiscordError> {
    let key = public_key.trim();
    if key.len() != 64 || !key.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(DiscordError::InvalidPublicKey);
    }
    let mut bytes = [0u8; 32];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&key[index * 2..index * 2 + 2], 16)
            .map_err(|_| DiscordError::InvalidPublicKey)?;
    }
    Verifier::try_new(bytes).map_err(|_| DiscordError::InvalidPublicKey)
}

/// The base URL that replaces Discord's in requests, when it is not Discord's own.
fn proxy_of(api_url: &str) -> Option<String> {
    let url = api_url.trim().trim_end_matches('/');
    (url != DISCORD_API && !url.is_empty()).then(|| url.to_owned())
}

/// A start-up call, retried after a 429 or an outage a few times.
async fn with_retries<F, Fut>(call: F) -> Result<rest::Answer, RestError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<rest::Answer, RestError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Err(RestError::RateLimited { retry_after, .. }) if attempt < 4 => {
                tokio::time::sleep(retry_after).await;
            }
            Err(RestError::Unavailable(_)) if attempt < 4 => {
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_older_or_newer_than_the_window_are_refused() {
        let window = Duration::from_secs(300);
        assert!(fresh("1000", window, 1000));
        assert!(fresh("1000", window, 1300));
        assert!(!fresh("1000", window, 1301));
        assert!(!fresh("1400", window, 1000));
        assert!(!fresh("soon", window, 1000));
        assert!(!fresh("", window, 1000));
    }

    #[test]
    fn a_public_key_must_be_64_hex_digits() {
        assert!(verifier("zz").is_err());
        assert!(verifier(&"g".repeat(64)).is_err());
    }

    #[test]
    fn only_a_foreign_api_url_is_a_proxy() {
        assert_eq!(proxy_of("https://discord.com/"), None);
        assert_eq!(
            proxy_of("http://127.0.0.1:9000/"),
            Some("http://127.0.0.1:9000".to_owned())
        );
    }
}
