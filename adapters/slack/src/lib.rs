//! The Slack channel, on slack-morphism: the sales team's copilot.
//!
//! - [`api`]: the Web API client (an http-or-https connector, so a local fake can stand in)
//!   and its errors sorted into rate limits, refusals and outages.
//! - [`verify`]: the v0 request signature, checked on the raw body before anything parses.
//! - [`members`]: who may use the copilot — members of the configured workspace, not guests
//!   (unless allowed) nor people of other organisations — checked with `users.info`, cached.
//! - [`inbound`]: an event as a question (a DM or a mention) or a person's thread message (pure).
//! - [`render`]: a reply as Slack messages — mrkdwn escaped, split within Slack's limits,
//!   citations under the last part (pure).
//! - [`sender`]: delivers the pending replies from the store, paced per channel, 429s honoured.
//! - [`commands`]: `/closer ask|lead|task|stats`, acknowledged at once, the slow part answered
//!   through the command's `response_url`.
//! - [`leads`]: the hand-off target that posts each new lead to the team's channel (exactly
//!   once, found again by its message metadata), with "Take over" and "Open in tracker".
//! - `takeover`: "Take over" and "Hand back", the conversation mirrored into the lead's thread
//!   (driven by the store's activity, resumed from a stored position), and what the person
//!   writes there delivered to the prospect.
//! - `properties` (tests only): every parser of what Slack sends, and the signature check,
//!   property-tested on hostile text.
//! - [`Slack`]: the Events API routes on Closer's HTTP server, or Socket Mode.
//!
//! **The team is not a prospect.** Questions asked here go through
//! [`closer_engine::Engine::answer_team`]: internal documents included, no sales dialog, no
//! lead. Prospect channels keep the public audience. So only the team may ask: a question, a
//! command, a thread message to a prospect or a button press from anyone who is not a member
//! of the workspace gets a polite refusal that only they see, and nothing else happens.

pub mod api;
pub mod commands;
pub mod inbound;
pub mod leads;
pub mod members;
pub mod render;
pub mod sender;
mod takeover;
pub mod verify;

#[cfg(test)]
mod properties;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use closer_engine::Engine;
use closer_engine::Verdict;
use closer_model::Lang;
use secrecy::SecretString;
use slack_morphism::prelude::*;

pub use api::{Api, ApiError, BotIdentity};
pub use inbound::{translate, ChatRef, Translated};
pub use leads::{LeadPosts, LEAD_TARGET};
pub use members::Membership;
pub use sender::{Sender, SenderStats};
pub use verify::{Refused, Verifier};

/// How long an Events API request may work before it is answered anyway: Slack wants a 200
/// within 3 seconds and retries otherwise (the work goes on, and a retry is a duplicate).
const ANSWER_WITHIN: Duration = Duration::from_millis(2500);

/// How events reach Closer.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Slack posts events, commands and button presses to Closer's HTTP server:
    /// `{path}/events`, `{path}/commands`, `{path}/interactions`, each signed.
    Events {
        signing_secret: SecretString,
        path: String,
    },
    /// Closer opens a WebSocket to Slack (`apps.connections.open` with the app-level token):
    /// no public URL needed.
    SocketMode { app_token: SecretString },
}

/// What the team hears when the knowledge base has no answer, per language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    pub ru: String,
    pub en: String,
}

impl NotFound {
    pub fn text(&self, lang: Lang) -> String {
        match lang {
            Lang::Ru => self.ru.clone(),
            Lang::En => self.en.clone(),
        }
    }
}

impl Default for NotFound {
    fn default() -> Self {
        NotFound {
            ru: "В базе знаний нет ответа на этот вопрос.".to_owned(),
            en: "The knowledge base has no answer to that.".to_owned(),
        }
    }
}

/// Everything the channel needs from configuration.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// The bot token (`xoxb-…`).
    pub bot_token: SecretString,
    /// The Web API's base URL (`https://slack.com/api`, or a fake's).
    pub api_url: String,
    pub transport: Transport,
    /// The channel new leads are posted to (an id such as `C0123456789`); none: no posts.
    pub leads_channel: Option<String>,
    /// A link to a conversation, `{id}` standing for its id.
    pub conversation_url: Option<String>,
    /// Messages a second to one channel.
    pub per_channel_per_second: f64,
    pub not_found: NotFound,
    /// Who may use the copilot.
    pub membership: Membership,
}

/// Why the channel cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("Slack rejected the bot token (check slack.bot_token): {0}")]
    Unauthorized(String),
    #[error("Slack could not be reached: {0}")]
    Unreachable(String),
    #[error("Socket Mode could not connect (check slack.app_token): {0}")]
    SocketMode(String),
}

/// The running channel. Cheap to clone.
#[derive(Clone)]
pub struct Slack {
    inner: Arc<Shared>,
}

struct Shared {
    api: Api,
    engine: Engine,
    sender: Sender,
    me: BotIdentity,
    config: SlackConfig,
    verifier: Option<Verifier>,
    mirrors: takeover::MirrorLocks,
    /// Each event handled under it: a panic or a failure that repeats dead-letters the event.
    guard: closer_engine::Guard,
    /// Who may use the copilot, and what Slack said about each person lately.
    members: members::Members,
}

impl Slack {
    /// Connects: checks the bot token with `auth.test` and learns the bot's user id.
    ///
    /// # Errors
    /// [`SlackError::Unauthorized`], [`SlackError::Unreachable`].
    pub async fn connect(config: SlackConfig, engine: Engine) -> Result<Slack, SlackError> {
        let api = Api::new(&config.api_url, &config.bot_token)
            .map_err(|error| SlackError::Unreachable(error.to_string()))?;
        let me = match api.auth_test().await {
            Ok(me) => me,
            Err(ApiError::Refused(reason)) => return Err(SlackError::Unauthorized(reason)),
            Err(error) => return Err(SlackError::Unreachable(error.to_string())),
        };
        let verifier = match &config.transport {
            Transport::Events { signing_secret, .. } => Some(Verifier::new(signing_secret)),
            Transport::SocketMode { .. } => None,
        };
        let sender = Sender::new(
            api.clone(),
            engine.store().clone(),
            config.per_channel_per_second,
        );
        tracing::info!(user_id = %me.user_id, team = %me.team, "connected to Slack");
        let guard = closer_engine::Guard::new(engine.store().clone(), closer_model::Channel::Slack);
        let members = members::Members::new(api.clone(), &config.membership, &me.team_id);
        Ok(Slack {
            inner: Arc::new(Shared {
                api,
                engine,
                sender,
                me,
                config,
                verifier,
                mirrors: takeover::MirrorLocks::default(),
                guard,
                members,
            }),
        })
    }

    pub fn identity(&self) -> &BotIdentity {
        &self.inner.me
    }

    pub fn sender(&self) -> &Sender {
        &self.inner.sender
    }

    pub fn api(&self) -> &Api {
        &self.inner.api
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn config(&self) -> &SlackConfig {
        &self.inner.config
    }

    /// The hand-off target posting new leads to the leads channel, when one is configured:
    /// register it among the hand-off targets as [`LEAD_TARGET`].
    pub fn lead_posts(&self) -> Option<LeadPosts> {
        self.inner.config.leads_channel.as_ref().map(|channel| {
            LeadPosts::new(
                self.inner.api.clone(),
                channel.clone(),
                self.inner.config.conversation_url.clone(),
            )
        })
    }

    /// The Events API routes, to mount on Closer's HTTP server; empty in Socket Mode.
    pub fn router(&self) -> Router {
        match &self.inner.config.transport {
            Transport::Events { path, .. } => {
                let path = path.trim_end_matches('/');
                Router::new()
                    .route(&format!("{path}/events"), post(events_route))
                    .route(&format!("{path}/commands"), post(commands_route))
                    .route(&format!("{path}/interactions"), post(interactions_route))
                    .with_state(self.clone())
            }
            Transport::SocketMode { .. } => Router::new(),
        }
    }

    /// Runs until `shutdown`: resumes replies left pending, and in Socket Mode keeps the
    /// WebSocket open.
    ///
    /// # Errors
    /// [`SlackError::SocketMode`] when Socket Mode cannot connect.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), SlackError> {
        self.inner.sender.resume().await;
        let sweeper = {
            let sender = self.inner.sender.clone();
            tokio::spawn(async move { sender.sweep_every(Duration::from_secs(60)).await })
        };
        let follower = {
            let slack = self.clone();
            tokio::spawn(async move { slack.follow_activity().await })
        };
        // Dead letters a person asked to try again (console, `closer dead-letters retry`).
        let retrier = {
            let slack = self.clone();
            tokio::spawn(
                async move { slack.retry_dead_letters_every(Duration::from_secs(5)).await },
            )
        };
        let result = match self.inner.config.transport.clone() {
            Transport::Events { .. } => {
                // Slack calls us: the token was checked at connect, nothing more to watch.
                self.inner.engine.health().connected("slack", "Events API");
                shutdown.await;
                Ok(())
            }
            Transport::SocketMode { app_token } => self.socket_mode(&app_token, shutdown).await,
        };
        sweeper.abort();
        follower.abort();
        retrier.abort();
        result
    }

    async fn socket_mode(
        &self,
        app_token: &SecretString,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), SlackError> {
        use secrecy::ExposeSecret;
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(self.inner.api.client())
                .with_user_state(self.clone()),
        );
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_push_events(socket_push_event)
            .with_command_events(socket_command)
            .with_interaction_events(socket_interaction);
        let listener = SlackClientSocketModeListener::new(
            &SlackClientSocketModeConfig::new().with_max_connections_count(1),
            environment,
            callbacks,
        );
        let token = SlackApiToken::new(SlackApiTokenValue::new(
            app_token.expose_secret().to_owned(),
        ));
        let health = self.inner.engine.health();
        if let Err(error) = listener.listen_for(&token).await {
            health.down("slack", &format!("Socket Mode could not connect: {error}"));
            return Err(SlackError::SocketMode(error.to_string()));
        }
        listener.start().await;
        tracing::info!("Slack Socket Mode connected");
        health.connected("slack", "Socket Mode");
        shutdown.await;
        listener.shutdown().await;
        Ok(())
    }

    /// Handles one event callback under the channel's guard: a panic, or a failure that
    /// repeats, dead-letters it; only the database being away asks Slack to deliver it again.
    pub async fn process_event_guarded(&self, event: &SlackPushEventCallback) -> Verdict {
        self.inner
            .guard
            .handle(
                &event.event_id.0,
                || serde_json::to_string(event).unwrap_or_default(),
                self.process_event(event),
            )
            .await
    }

    /// Every `period`, processes the dead letters a person asked to try again.
    async fn retry_dead_letters_every(&self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            for letter in self.inner.guard.retries().await {
                let verdict = match serde_json::from_str::<SlackPushEventCallback>(&letter.payload)
                {
                    Ok(event) => {
                        self.inner
                            .guard
                            .retry(&letter, self.process_event(&event))
                            .await
                    }
                    Err(error) => {
                        let reason = format!("the kept event does not parse: {error}");
                        self.inner
                            .guard
                            .retry(&letter, async {
                                Err(closer_engine::EngineError::Rejected(reason))
                            })
                            .await
                    }
                };
                tracing::info!(event_id = %letter.external_id, ?verdict, "a dead letter tried again");
            }
        }
    }

    /// Handles one event callback: a question is committed through the engine (deduplicated
    /// by the message's `ts`) and its answer left to the sender; a thread message may be a
    /// person writing to a prospect.
    ///
    /// # Errors
    /// The engine could not commit (the database is away): the event must be redelivered.
    pub async fn process_event(
        &self,
        event: &SlackPushEventCallback,
    ) -> Result<(), closer_engine::EngineError> {
        metrics::counter!("closer_messages_total", "channel" => "slack").increment(1);
        match translate(event, &self.inner.me) {
            Translated::Ignored(reason) => {
                tracing::debug!(event_id = %event.event_id.0, reason, "Slack event ignored");
                Ok(())
            }
            Translated::Ask(message) => {
                // `ask` puts the Slack user's id in the sender's name.
                let user = message.sender_name.clone().unwrap_or_default();
                let chat = ChatRef::parse(&message.chat_id);
                let lang = message
                    .content
                    .text()
                    .and_then(Lang::detect)
                    .unwrap_or_default();
                if !self
                    .member_or_refuse(&user, Some(&event.team_id.0), &chat, lang)
                    .await?
                {
                    return Ok(());
                }
                let started = std::time::Instant::now();
                let not_found = self.inner.config.not_found.clone();
                let handled = self
                    .inner
                    .engine
                    .answer_team(&message, |lang| not_found.text(lang))
                    .await?;
                metrics::histogram!("closer_reply_seconds", "channel" => "slack")
                    .record(started.elapsed().as_secs_f64());
                if !handled.replies.is_empty() || handled.duplicate {
                    self.inner.sender.kick(&message.chat_id);
                }
                Ok(())
            }
            Translated::ThreadMessage {
                channel,
                thread_ts,
                ts,
                user,
                text,
            } => {
                self.thread_message(&channel, &thread_ts, &ts, &user, &text)
                    .await
            }
        }
    }

    /// Whether `user` is a member of the workspace; if not, they are told so in a message only
    /// they see (in `chat`'s channel and thread), and the caller does nothing else.
    ///
    /// # Errors
    /// Slack cannot say who `user` is right now: nothing was done, and the event is worth
    /// delivering again.
    pub(crate) async fn member_or_refuse(
        &self,
        user: &str,
        request_team: Option<&str>,
        chat: &ChatRef,
        lang: Lang,
    ) -> Result<bool, closer_engine::EngineError> {
        match self.inner.members.admits(user, request_team).await {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.tell_only(user, chat, members::refusal(lang)).await;
                Ok(false)
            }
            Err(error) => Err(closer_engine::EngineError::Rejected(format!(
                "whether the Slack user is a member of the workspace could not be checked: {error}"
            ))),
        }
    }

    /// Whether `user` is a member of the workspace, for a command or a button press:
    /// `Err` carries what to tell them when they are not, or when Slack cannot say.
    pub(crate) async fn member(
        &self,
        user: &str,
        request_team: Option<&str>,
        lang: Lang,
    ) -> Result<(), &'static str> {
        match self.inner.members.admits(user, request_team).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(members::refusal(lang)),
            Err(_) => Err(members::unverified(lang)),
        }
    }

    /// A message only `user` sees, in `chat`'s channel and thread. Best effort: it is a
    /// courtesy, and failing to show it changes nothing else.
    pub(crate) async fn tell_only(&self, user: &str, chat: &ChatRef, text: &str) {
        if let Err(error) = self
            .inner
            .api
            .post_ephemeral(&chat.channel, user, chat.thread_ts.as_deref(), text)
            .await
        {
            tracing::warn!(%error, "could not tell a Slack user why they were refused");
        }
    }

    /// The answer refusing a request whose signature does not hold; `None` when it holds.
    fn refusal(&self, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
        let Some(verifier) = &self.inner.verifier else {
            return Some((StatusCode::NOT_FOUND, "Socket Mode is on").into_response());
        };
        verifier.verify(headers, body).err().map(|refused| {
            tracing::warn!(reason = %refused, "a Slack request was refused");
            metrics::counter!("closer_webhook_refused_total", "channel" => "slack").increment(1);
            (StatusCode::UNAUTHORIZED, refused.to_string()).into_response()
        })
    }
}

/// The Events API: signature first (401, nothing parsed), then `url_verification` answered,
/// then the event committed before the 200 — within Slack's 3 seconds, or the 200 goes
/// anyway and the work finishes behind it.
async fn events_route(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = slack.refusal(&headers, &body) {
        return refused;
    }
    let event: SlackPushEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "a Slack event does not parse");
            return (StatusCode::BAD_REQUEST, "not a Slack event").into_response();
        }
    };
    match event {
        SlackPushEvent::UrlVerification(verification) => {
            (StatusCode::OK, verification.challenge).into_response()
        }
        SlackPushEvent::AppRateLimited(limited) => {
            tracing::warn!(team = %limited.team_id, "Slack dropped events: the app is rate limited");
            StatusCode::OK.into_response()
        }
        SlackPushEvent::EventCallback(callback) => {
            if let Some(retry) = headers.get("x-slack-retry-num") {
                tracing::info!(event_id = %callback.event_id.0, retry = ?retry, "Slack retried an event");
            }
            let work = {
                let slack = slack.clone();
                tokio::spawn(async move { slack.process_event_guarded(&callback).await })
            };
            match tokio::time::timeout(ANSWER_WITHIN, work).await {
                Ok(Ok(Verdict::Processed | Verdict::DeadLettered)) | Err(_) => {
                    StatusCode::OK.into_response()
                }
                Ok(Ok(Verdict::RetryLater)) => {
                    tracing::warn!("event not committed; Slack will retry it");
                    (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response()
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "processing an event crashed");
                    (StatusCode::INTERNAL_SERVER_ERROR, "failed").into_response()
                }
            }
        }
    }
}

/// Slash commands: signature first, then the form parsed, then acknowledged at once with
/// the slow part sent to the `response_url`.
async fn commands_route(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = slack.refusal(&headers, &body) {
        return refused;
    }
    let (command, thread_ts) = match parse_command(&body) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::warn!(%error, "a Slack command does not parse");
            return (StatusCode::BAD_REQUEST, "not a Slack command").into_response();
        }
    };
    let ack = commands::handle(&slack, command, thread_ts).await;
    Json(ack).into_response()
}

/// A slash command's form, and the thread it was typed in when Slack says so.
fn parse_command(
    body: &[u8],
) -> Result<(SlackCommandEvent, Option<String>), serde_urlencoded::de::Error> {
    #[derive(serde::Deserialize)]
    struct Thread {
        thread_ts: Option<String>,
    }
    let command: SlackCommandEvent = serde_urlencoded::from_bytes(body)?;
    let thread_ts = serde_urlencoded::from_bytes::<Thread>(body)
        .ok()
        .and_then(|thread| thread.thread_ts);
    Ok((command, thread_ts))
}

/// A button press's form: its `payload` field, parsed as JSON.
fn parse_interaction(body: &[u8]) -> Option<SlackInteractionEvent> {
    #[derive(serde::Deserialize)]
    struct Form {
        payload: String,
    }
    serde_urlencoded::from_bytes::<Form>(body)
        .ok()
        .and_then(|form| serde_json::from_str::<SlackInteractionEvent>(&form.payload).ok())
}

/// Button presses: signature first, then the `payload` form field parsed as JSON.
async fn interactions_route(
    State(slack): State<Slack>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = slack.refusal(&headers, &body) {
        return refused;
    }
    let Some(interaction) = parse_interaction(&body) else {
        tracing::warn!("a Slack interaction does not parse");
        return (StatusCode::BAD_REQUEST, "not a Slack interaction").into_response();
    };
    slack.process_interaction(&interaction).await;
    StatusCode::OK.into_response()
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn state_of(state: &SlackClientEventsUserState) -> Option<Slack> {
    state.read().await.get_user_state::<Slack>().cloned()
}

/// Socket Mode: the envelope is acknowledged when this returns, so an error (nothing
/// committed) leaves it unacknowledged and Slack delivers it again.
async fn socket_push_event(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> Result<(), BoxError> {
    let Some(slack) = state_of(&state).await else {
        return Ok(());
    };
    match slack.process_event_guarded(&event).await {
        Verdict::Processed | Verdict::DeadLettered => Ok(()),
        Verdict::RetryLater => {
            Err("the event was not committed; Slack will deliver it again".into())
        }
    }
}

async fn socket_command(
    command: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> Result<SlackCommandEventResponse, BoxError> {
    let Some(slack) = state_of(&state).await else {
        return Err("the Slack channel is not running".into());
    };
    let ack = commands::handle(&slack, command, None).await;
    Ok(SlackCommandEventResponse::new(
        SlackMessageContent::new().with_text(ack.text),
    ))
}

async fn socket_interaction(
    interaction: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> Result<(), BoxError> {
    if let Some(slack) = state_of(&state).await {
        slack.process_interaction(&interaction).await;
    }
    Ok(())
}
