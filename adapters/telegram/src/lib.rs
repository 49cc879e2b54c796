//! The Telegram channel, on teloxide: prospects' messages in, the assistant's replies out.
//!
//! - [`inbound`]: an update to a platform-neutral message (pure).
//! - [`render`]: a reply to Telegram messages — HTML escaping, 4,096-character parts,
//!   inline keyboards, the "share my phone" button (pure).
//! - [`sender`]: the sender that drains each chat's pending replies from the store, paced by
//!   `pace` within Telegram's limits.
//! - [`Telegram`]: long polling, or a webhook on Closer's own HTTP server.
//!
//! **Exactly once.** An update is handed to the engine, which commits the message and its
//! replies (marked pending) in one transaction, deduplicated by the Telegram message id.
//! Only then is it acknowledged: by the next `getUpdates` offset when polling, by the HTTP
//! 200 for a webhook. A crash before the commit gets the update redelivered and processed; a
//! crash after it gets it redelivered and ignored as a duplicate, and the sender sends
//! whatever replies are still pending when it starts.

pub mod inbound;
mod pace;
pub mod render;
pub mod sender;

use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use closer_engine::{Engine, Guard, Verdict};
use closer_model::Channel;
use futures::future::join_all;
use secrecy::{ExposeSecret, SecretString};
use teloxide::payloads::{GetUpdatesSetters, SetWebhookSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{AllowedUpdate, ChatAction, ChatId, Update};
use teloxide::{Bot, RequestError};

pub use inbound::{translate, Identity, Translated};
pub use sender::{Limits, Sender, SenderStats};

/// How often the channel looks for dead letters a person asked to try again.
const RETRY_CHECK: Duration = Duration::from_secs(5);

/// The header Telegram sends a webhook's secret in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// How updates reach Closer.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Long polling: no public URL needed.
    Polling {
        /// How long one `getUpdates` waits for an update.
        timeout: Duration,
    },
    /// Telegram posts updates to `public_url`, served on Closer's own HTTP server at `path`.
    Webhook {
        public_url: String,
        path: String,
        /// The `X-Telegram-Bot-Api-Secret-Token` Telegram must send; 1–256 of
        /// `[A-Za-z0-9_-]`. A random one is used when none is given.
        secret: Option<SecretString>,
    },
}

/// Everything the channel needs from configuration.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub token: SecretString,
    /// The Bot API's base URL, without a trailing slash (a local Bot API server, or a fake).
    pub api_url: String,
    pub mode: Mode,
    pub limits: Limits,
}

/// Why the channel cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("the Telegram API URL {url:?} is not a URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("Telegram rejected the bot token (check telegram.token): {0}")]
    Unauthorized(String),
    #[error("Telegram could not be reached at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the webhook could not be set: {0}")]
    Webhook(String),
    #[error("the webhook secret must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -")]
    InvalidSecret,
}

/// The running channel. Cheap to clone.
#[derive(Clone)]
pub struct Telegram {
    bot: Bot,
    engine: Engine,
    sender: Sender,
    me: Identity,
    mode: Mode,
    /// The webhook secret in force (configured, or generated at start).
    secret: Option<SecretString>,
    /// Each update handled under it: a panic or a repeating failure dead-letters the update
    /// instead of stopping the channel or holding back every update after it.
    guard: Guard,
}

impl Telegram {
    /// Connects: checks the token with `getMe` and learns the bot's username.
    ///
    /// # Errors
    /// [`TelegramError::Unauthorized`] for a rejected token, [`TelegramError::Unreachable`]
    /// when the API does not answer, [`TelegramError::InvalidUrl`], [`TelegramError::InvalidSecret`].
    pub async fn connect(
        config: TelegramConfig,
        engine: Engine,
    ) -> Result<Telegram, TelegramError> {
        let api_url = config.api_url.trim_end_matches('/').to_owned();
        let url = reqwest_url(&api_url)?;
        let poll_timeout = match &config.mode {
            Mode::Polling { timeout } => *timeout,
            Mode::Webhook { .. } => Duration::ZERO,
        };
        // The long poll must end before the HTTP client gives up on it.
        let client = teloxide::net::default_reqwest_settings()
            .timeout(poll_timeout + Duration::from_secs(15))
            .build()
            .map_err(|error| TelegramError::Unreachable {
                url: api_url.clone(),
                reason: error.to_string(),
            })?;
        let bot = Bot::with_client(config.token.expose_secret(), client).set_api_url(url);
        let me = match bot.get_me().await {
            Ok(me) => Identity {
                id: me.user.id.0,
                username: me.user.username.clone().unwrap_or_default(),
            },
            Err(RequestError::Api(error)) => {
                return Err(TelegramError::Unauthorized(error.to_string()))
            }
            Err(error) => {
                return Err(TelegramError::Unreachable {
                    url: api_url,
                    reason: error.to_string(),
                })
            }
        };
        let secret = match &config.mode {
            Mode::Webhook { secret, .. } => {
                let secret = secret.clone().unwrap_or_else(random_secret);
                if !valid_secret(secret.expose_secret()) {
                    return Err(TelegramError::InvalidSecret);
                }
                Some(secret)
            }
            Mode::Polling { .. } => None,
        };
        let sender = Sender::new(bot.clone(), engine.store().clone(), config.limits);
        let guard = Guard::new(engine.store().clone(), Channel::Telegram);
        tracing::info!(username = %me.username, "connected to Telegram");
        Ok(Telegram {
            bot,
            engine,
            sender,
            me,
            mode: config.mode,
            secret,
            guard,
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.me
    }

    /// The engine this adapter hands its updates to.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The webhook's route, to mount on Closer's HTTP server; empty when polling.
    pub fn router(&self) -> Router {
        match &self.mode {
            Mode::Webhook { path, .. } => Router::new()
                .route(path, post(webhook))
                .with_state(self.clone()),
            Mode::Polling { .. } => Router::new(),
        }
    }

    /// Runs until `shutdown`: resumes replies left pending, then polls, or registers the
    /// webhook and waits.
    ///
    /// # Errors
    /// [`TelegramError::Webhook`] when Telegram refuses the webhook.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), TelegramError> {
        self.sender.resume().await;
        let sweeper = {
            let sender = self.sender.clone();
            tokio::spawn(async move { sender.sweep_every(Duration::from_secs(60)).await })
        };
        // What a salesperson writes during a takeover (from Slack, the console) is pending
        // in the store for this chat: deliver it like any reply.
        let follower = {
            let sender = self.sender.clone();
            let store = self.engine.store().clone();
            tokio::spawn(async move {
                store
                    .follow_person_messages(Channel::Telegram, |chat| sender.kick(chat))
                    .await;
            })
        };
        // Dead letters a person asked to try again (console, `closer dead-letters retry`).
        let retrier = {
            let telegram = self.clone();
            tokio::spawn(async move { telegram.retry_dead_letters_every(RETRY_CHECK).await })
        };
        let result = match self.mode.clone() {
            Mode::Polling { timeout } => {
                self.poll(timeout, shutdown).await;
                Ok(())
            }
            Mode::Webhook { public_url, .. } => match self.set_webhook(&public_url).await {
                Ok(()) => {
                    self.engine.health().connected("telegram", "webhook");
                    shutdown.await;
                    Ok(())
                }
                Err(error) => {
                    self.engine.health().down("telegram", &error.to_string());
                    Err(error)
                }
            },
        };
        sweeper.abort();
        follower.abort();
        retrier.abort();
        result
    }

    async fn set_webhook(&self, public_url: &str) -> Result<(), TelegramError> {
        let url =
            reqwest_url(public_url).map_err(|error| TelegramError::Webhook(error.to_string()))?;
        let secret = self
            .secret
            .as_ref()
            .map(|secret| secret.expose_secret().to_owned())
            .unwrap_or_default();
        self.bot
            .set_webhook(url)
            .secret_token(secret)
            .allowed_updates(allowed_updates())
            .await
            .map_err(|error| TelegramError::Webhook(error.to_string()))?;
        tracing::info!(url = public_url, "Telegram webhook set");
        Ok(())
    }

    /// The long-polling loop. The offset sent with each `getUpdates` acknowledges the updates
    /// below it, so it only moves past an update once the engine has committed it.
    async fn poll(&self, timeout: Duration, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        // A webhook left set makes getUpdates fail; polling replaces it.
        match self.bot.get_webhook_info().await {
            Ok(info) if info.url.is_some() => {
                if let Err(error) = self.bot.delete_webhook().await {
                    tracing::warn!(%error, "could not remove the webhook set earlier");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not read the webhook's state"),
        }
        let mut offset: i32 = 0;
        let mut failures: u32 = 0;
        loop {
            let request = self
                .bot
                .get_updates()
                .offset(offset)
                .timeout(u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX))
                .allowed_updates(allowed_updates());
            let result = tokio::select! {
                () = &mut shutdown => break,
                result = request.send() => result,
            };
            let updates = match result {
                Ok(updates) => updates.into_iter().map(Ok).collect(),
                Err(RequestError::InvalidJson { raw, .. }) => tolerant_updates(&raw),
                Err(RequestError::RetryAfter(seconds)) => {
                    tracing::warn!(
                        wait_s = seconds.seconds(),
                        "getUpdates: Telegram asks to slow down"
                    );
                    let health = self.engine.health();
                    health.degraded("telegram", "getUpdates: Telegram asks to slow down");
                    tokio::time::sleep(seconds.duration()).await;
                    continue;
                }
                Err(error) => {
                    failures += 1;
                    let wait = poll_backoff(failures);
                    tracing::warn!(%error, failures, wait_ms = wait.as_millis() as u64, "getUpdates failed; retrying");
                    let health = self.engine.health();
                    health.down("telegram", &format!("getUpdates failed: {error}"));
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(wait) => continue,
                    }
                }
            };
            failures = 0;
            self.engine.health().connected("telegram", "long polling");
            match self.process_batch(updates).await {
                Ok(Some(next)) => offset = next,
                Ok(None) => {}
                Err(next) => {
                    // Something could not be committed (the database is away): poll again
                    // from the first update not committed, after a pause.
                    if let Some(next) = next {
                        offset = next;
                    }
                    failures += 1;
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(poll_backoff(failures)) => {}
                    }
                }
            }
        }
        // Acknowledge what was committed, so a restart does not fetch it again.
        if offset > 0 {
            let acknowledge = self.bot.get_updates().offset(offset).limit(1).timeout(0);
            let _ = tokio::time::timeout(Duration::from_secs(3), acknowledge.send()).await;
        }
    }

    /// Processes one batch: chats in parallel, each chat's updates in order. Returns the
    /// offset acknowledging the batch, or, when an update could not be committed, the offset
    /// of the first such update.
    async fn process_batch(
        &self,
        updates: Vec<Result<Update, Unparsed>>,
    ) -> Result<Option<i32>, Option<i32>> {
        let mut by_chat: Vec<(Option<i64>, Vec<Update>)> = Vec::new();
        let mut highest: Option<i32> = None;
        for update in updates {
            let id = match &update {
                Ok(update) => i32::try_from(update.id.0).unwrap_or(i32::MAX),
                Err(unparsed) => unparsed.id,
            };
            let update = match update {
                Ok(update) => update,
                Err(unparsed) => {
                    let kept = self
                        .guard
                        .bury(&unparsed.id.to_string(), &unparsed.reason, &unparsed.raw)
                        .await;
                    if kept == Verdict::RetryLater {
                        // Nothing of the batch is processed yet: all of it comes again.
                        return Err(None);
                    }
                    highest = Some(highest.map_or(id, |highest: i32| highest.max(id)));
                    continue;
                }
            };
            highest = Some(highest.map_or(id, |highest: i32| highest.max(id)));
            let chat = update.chat().map(|chat| chat.id.0);
            match by_chat
                .iter_mut()
                .find(|(key, _)| *key == chat && chat.is_some())
            {
                Some((_, list)) => list.push(update),
                None => by_chat.push((chat, vec![update])),
            }
        }
        let results = join_all(by_chat.into_iter().map(|(_, updates)| async move {
            for update in updates {
                let id = i32::try_from(update.id.0).unwrap_or(i32::MAX);
                if self.process_guarded(&update).await == Verdict::RetryLater {
                    return Some(id);
                }
            }
            None
        }))
        .await;
        match results.into_iter().flatten().min() {
            Some(failed) => Err(Some(failed)),
            None => Ok(highest.map(|id| id.saturating_add(1))),
        }
    }

    /// Handles one update under the channel's guard: a panic, or a failure that repeats,
    /// dead-letters it; only the database being away asks for it to be delivered again.
    pub async fn process_guarded(&self, update: &Update) -> Verdict {
        let id = update.id.0.to_string();
        if let Some(reason) = malformed(update) {
            let payload = serde_json::to_string(update).unwrap_or_default();
            return self.guard.bury(&id, reason, &payload).await;
        }
        self.guard
            .handle(
                &id,
                || serde_json::to_string(update).unwrap_or_default(),
                self.process(update),
            )
            .await
    }

    /// Every `period`, processes the dead letters a person asked to try again.
    async fn retry_dead_letters_every(&self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            for letter in self.guard.retries().await {
                match parse_update(letter.payload.as_bytes()) {
                    Ok(update) => {
                        let work = async {
                            match malformed(&update) {
                                Some(reason) => {
                                    Err(closer_engine::EngineError::Rejected(reason.to_owned()))
                                }
                                None => self.process(&update).await,
                            }
                        };
                        let verdict = self.guard.retry(&letter, work).await;
                        tracing::info!(update_id = %letter.external_id, ?verdict, "a dead letter tried again");
                    }
                    Err(error) => {
                        let reason = format!("the kept update does not parse: {error}");
                        let verdict = self
                            .guard
                            .retry(&letter, async {
                                Err(closer_engine::EngineError::Rejected(reason))
                            })
                            .await;
                        tracing::warn!(update_id = %letter.external_id, ?verdict, "a dead letter could not be tried again");
                    }
                }
            }
        }
    }

    /// Handles one update: translate, acknowledge a button, show typing, commit through the
    /// engine, then let the sender send what is pending.
    ///
    /// # Errors
    /// The engine could not commit (the database is away): the update must be redelivered.
    pub async fn process(&self, update: &Update) -> Result<(), closer_engine::EngineError> {
        match translate(update, &self.me) {
            Translated::Ignored(reason) => {
                tracing::debug!(update_id = update.id.0, reason, "update ignored");
                Ok(())
            }
            Translated::AcknowledgeOnly { callback_id } => {
                self.acknowledge_callback(callback_id);
                Ok(())
            }
            Translated::Inbound {
                message,
                chat_id,
                callback_id,
            } => {
                if let Some(callback_id) = callback_id {
                    self.acknowledge_callback(callback_id);
                }
                let bot = self.bot.clone();
                tokio::spawn(async move {
                    // Cosmetic: a failure here changes nothing.
                    let _ = bot
                        .send_chat_action(ChatId(chat_id), ChatAction::Typing)
                        .await;
                });
                // An answer streamed by the answer source shows as it is written.
                let handled = self.engine.handle_streaming(&message, &self.sender).await?;
                if !handled.replies.is_empty() || handled.duplicate {
                    self.sender.kick(&message.chat_id);
                }
                Ok(())
            }
        }
    }

    fn acknowledge_callback(&self, callback_id: String) {
        let bot = self.bot.clone();
        tokio::spawn(async move {
            // A press answered twice (a redelivery) is refused as too old: harmless.
            if let Err(error) = bot.answer_callback_query(callback_id.into()).await {
                tracing::debug!(%error, "could not acknowledge a button press");
            }
        });
    }
}

/// The webhook: the secret header checked first (401 otherwise, and nothing processed),
/// then the update committed before the 200, so a failure makes Telegram deliver it again.
async fn webhook(
    State(telegram): State<Telegram>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let given = headers
        .get(SECRET_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let expected = telegram
        .secret
        .as_ref()
        .map(|secret| secret.expose_secret().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        tracing::warn!("a Telegram webhook call without the right secret token was refused");
        return (StatusCode::UNAUTHORIZED, "wrong or missing secret token");
    }
    let update: Update = match parse_update(&body) {
        Ok(update) => update,
        Err(error) => {
            tracing::warn!(%error, "a Telegram webhook call carried no valid update");
            return (StatusCode::BAD_REQUEST, "the body is not a Telegram update");
        }
    };
    match telegram.process_guarded(&update).await {
        Verdict::Processed | Verdict::DeadLettered => (StatusCode::OK, "ok"),
        Verdict::RetryLater => {
            tracing::warn!(
                update_id = update.id.0,
                "update not committed; Telegram will deliver it again"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}

/// An update that does not parse: its id and its raw JSON, to keep as a dead letter.
#[derive(Debug)]
struct Unparsed {
    id: i32,
    raw: String,
    reason: String,
}

/// A `getUpdates` answer teloxide could not parse as a whole: each update parsed on its own,
/// and one that does not parse kept aside by id, so one bad update does not stall the queue.
fn tolerant_updates(raw: &str) -> Vec<Result<Update, Unparsed>> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(raw) else {
        tracing::warn!("getUpdates answered with something that is not JSON");
        return Vec::new();
    };
    let items = value
        .get("result")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    items
        .into_iter()
        .filter_map(|item| {
            let id = item
                .get("update_id")
                .and_then(serde_json::Value::as_i64)
                .and_then(|id| i32::try_from(id).ok());
            let raw = item.to_string();
            match parse_update(raw.as_bytes()) {
                Ok(update) => Some(Ok(update)),
                Err(error) => {
                    tracing::warn!(%error, update_id = ?id, "an update does not parse");
                    id.map(|id| {
                        Err(Unparsed {
                            id,
                            raw,
                            reason: format!("the update does not parse: {error}"),
                        })
                    })
                }
            }
        })
        .collect()
}

/// Parses one update from its JSON, keeping the raw JSON of one teloxide cannot read in
/// `UpdateKind::Error` as its `getUpdates` does: teloxide's `Deserialize` alone leaves an empty
/// object there, and [`malformed`] could not tell a message that does not parse (a dead
/// letter) from a kind Closer does not read (ignored). Parsed from text: teloxide's `Update`
/// does not deserialize from a `serde_json::Value` (it would come out as `UpdateKind::Error`).
fn parse_update(raw: &[u8]) -> serde_json::Result<Update> {
    let mut update: Update = serde_json::from_slice(raw)?;
    if let teloxide::types::UpdateKind::Error(value) = &mut update.kind {
        *value = serde_json::from_slice(raw)?;
    }
    Ok(update)
}

/// Why an update of a kind Closer reads (a message, an edit, a button press) could not be
/// read: teloxide keeps such an update as `UpdateKind::Error` with its raw JSON. Kinds Closer
/// does not read at all are ignored instead, as Telegram adds new ones.
fn malformed(update: &Update) -> Option<&'static str> {
    let teloxide::types::UpdateKind::Error(raw) = &update.kind else {
        return None;
    };
    ["message", "edited_message", "callback_query"]
        .iter()
        .any(|kind| raw.get(kind).is_some())
        .then_some("the update does not parse as a message, an edit or a button press")
}

fn allowed_updates() -> Vec<AllowedUpdate> {
    vec![
        AllowedUpdate::Message,
        AllowedUpdate::EditedMessage,
        AllowedUpdate::CallbackQuery,
    ]
}

fn poll_backoff(failures: u32) -> Duration {
    let exponent = failures.clamp(1, 7) - 1;
    Duration::from_millis(500 * 2u64.pow(exponent)).min(Duration::from_secs(60))
}

fn reqwest_url(url: &str) -> Result<reqwest::Url, TelegramError> {
    reqwest::Url::parse(url).map_err(|error| TelegramError::InvalidUrl {
        url: url.to_owned(),
        reason: error.to_string(),
    })
}

fn valid_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

fn random_secret() -> SecretString {
    use rand::distr::{Alphanumeric, SampleString};
    SecretString::from(Alphanumeric.sample_string(&mut rand::rng(), 32))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use closer_testing::{cases, nasty_text, nasty_text_with};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(cases(64))]

        /// Whatever `getUpdates` answers, it is read without a panic, and an update that does
        /// not parse is kept aside by its id, not lost.
        #[test]
        fn any_get_updates_answer_is_read_without_panicking(
            raw in nasty_text_with(&["{", "}", "[", "]", "\"result\":", "\"update_id\":", "1", ",", "\"message\":", "null"]),
            text in nasty_text(),
            id in 1i32..i32::MAX,
        ) {
            let _ = tolerant_updates(&raw);
            let body = serde_json::json!({"ok": true, "result": [
                {"update_id": id, "message": {"message_id": 1, "date": 1_700_000_000,
                    "chat": {"id": 42, "type": "private"}, "text": text}},
                {"update_id": id, "message": {"message_id": "not a number", "text": text}},
            ]});
            let updates = tolerant_updates(&body.to_string());
            prop_assert_eq!(updates.len(), 2);
            prop_assert!(updates[0].as_ref().is_ok_and(|update| malformed(update).is_none()));
            prop_assert!(updates[1].as_ref().is_ok_and(|update| malformed(update).is_some()));
        }
    }

    #[test]
    fn a_message_that_does_not_parse_is_malformed_however_it_arrives() {
        // teloxide's `Deserialize` once left `UpdateKind::Error({})`: a broken message from
        // the webhook, or a dead letter tried again, was ignored as an unknown kind.
        let broken = br#"{"update_id": 7, "message": {"message_id": "not a number"}}"#;
        let update = parse_update(broken).expect("an update with an unreadable message");
        assert!(malformed(&update).is_some());
        let kept = serde_json::to_string(&update).expect("serializes");
        assert!(kept.contains("not a number"), "{kept}");
        let unknown = parse_update(br#"{"update_id": 8, "some_future_kind": {"x": 1}}"#)
            .expect("an update of an unknown kind");
        assert!(malformed(&unknown).is_none());
    }
}
