//! A local fake of Discord: the REST API (`/api/v10/…`) and the gateway (a WebSocket), which the
//! Discord adapter runs against.
//!
//! It speaks the wire contract of `shared/reference/platforms.md` section 3:
//! - **REST**: `GET /gateway` and `/gateway/bot`, `GET /users/@me`, `POST /channels/{id}/messages`
//!   (Discord's validations: 1–2,000 characters, at most 5 rows of 5 buttons, `custom_id` ≤ 100),
//!   `POST /interactions/{id}/{token}/callback` (once per interaction), follow-ups at
//!   `POST /webhooks/{application}/{token}` (only after the interaction was acknowledged), and the
//!   bulk overwrite of commands (`PUT /applications/{id}/commands`, `…/guilds/{id}/commands`).
//!   Errors come as Discord's `{"message", "code"}`; a channel's messages are limited to 5 per 5 s
//!   (a window, reported in `X-RateLimit-*` headers), beyond which it answers 429 with
//!   `{"message", "retry_after" (float seconds), "global"}` and `Retry-After`; 429s and errors can
//!   be injected.
//! - **Gateway**: HELLO with `heartbeat_interval`, IDENTIFY → READY (`session_id`,
//!   `resume_gateway_url`), heartbeats answered with ACKs, dispatches numbered by `s`,
//!   op 7 RECONNECT on request, and RESUME → the events the client missed, then RESUMED.
//!   Events dispatched while no client is connected wait for the resume, as Discord's do.
//!
//! Everything lives behind one mutex; every state change wakes a [`Notify`], so
//! [`FakeDiscord::wait_until`] re-checks its condition instead of sleeping.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message as Frame;

/// The token the fake accepts (sent as `Bot <token>`); anything else gets 401.
pub const FAKE_TOKEN: &str = "fake-discord-token";
/// The bot's user id, as `/users/@me` and READY report it.
pub const BOT_ID: u64 = 1001;
/// The application's id.
pub const APPLICATION_ID: u64 = 1001;
/// The server the test channels belong to.
pub const GUILD_ID: u64 = 9001;
/// The heartbeat interval HELLO announces.
const HEARTBEAT_INTERVAL_MS: u64 = 41_250;
/// Discord's limits.
const MAX_CONTENT_CHARS: usize = 2000;
const MAX_CUSTOM_ID_CHARS: usize = 100;
/// The channel message bucket: 5 per 5 s.
const CHANNEL_BUCKET: usize = 5;
const CHANNEL_WINDOW: Duration = Duration::from_secs(5);

/// A failure the next call of a route gets instead of its normal answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 429 with this `retry_after` (seconds) and `global` flag.
    RateLimited { retry_after: f64, global: bool },
    /// An error with this HTTP status, Discord's JSON code and message, e.g.
    /// 403 / 50013 "Missing Permissions".
    Error {
        status: u16,
        code: i64,
        message: String,
    },
}

/// The routes faults can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    CreateMessage,
    Followup,
    InteractionCallback,
}

/// One message the bot posted: in a channel, or as an interaction's follow-up.
#[derive(Debug, Clone)]
pub struct Sent {
    pub id: u64,
    pub channel_id: u64,
    pub content: String,
    pub components: Value,
    pub allowed_mentions: Value,
    /// The interaction token when it came as a follow-up.
    pub followup_of: Option<String>,
    pub at: Instant,
    /// How many times it was edited since (`content` and `components` are the latest).
    pub edits: usize,
}

impl Sent {
    /// The `custom_id`s of the message's buttons, in order.
    pub fn buttons(&self) -> Vec<String> {
        self.components
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row["components"].as_array())
            .flatten()
            .filter_map(|button| button["custom_id"].as_str().map(str::to_owned))
            .collect()
    }
}

/// One REST request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: Value,
    pub at: Instant,
}

/// An interaction the fake created, and what the bot answered.
#[derive(Debug, Clone)]
struct Pending {
    token: String,
    channel_id: u64,
    response: Option<Value>,
}

/// A running fake Discord; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeDiscord {
    shared: Arc<Shared>,
    rest_address: SocketAddr,
    gateway_address: SocketAddr,
    _servers: Arc<ServerGuard>,
}

struct ServerGuard(Vec<tokio::task::JoinHandle<()>>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    gateway_url: String,
    next_id: u64,
    calls: Vec<Call>,
    sent: Vec<Sent>,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    /// Each channel's message times within the current window.
    windows: HashMap<u64, VecDeque<Instant>>,
    rate_limited: usize,
    interactions: HashMap<u64, Pending>,
    commands: Vec<(Option<u64>, Value)>,
    gateway: Gateway,
}

#[derive(Default)]
struct Gateway {
    /// The connection that has identified or resumed, and its outbox.
    live: Option<(u64, mpsc::UnboundedSender<String>)>,
    next_connection: u64,
    session_id: Option<String>,
    /// Every dispatch of the session, by sequence number.
    log: Vec<(u64, Value)>,
    /// On the next RESUME, replay from this sequence even if the client saw it.
    replay_from: Option<u64>,
    identifies: usize,
    resumes: usize,
    heartbeats: usize,
}

impl FakeDiscord {
    /// Starts the REST API and the gateway on two ports of 127.0.0.1.
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start() -> FakeDiscord {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_id: 100_000,
                ..State::default()
            }),
            changed: Notify::new(),
        });
        let rest = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let gateway = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let rest_address = rest.local_addr().expect("bound");
        let gateway_address = gateway.local_addr().expect("bound");
        lock(&shared).gateway_url = format!("ws://{gateway_address}");
        let router = Router::new()
            .route("/api/v10/{*path}", any(rest_call))
            .with_state(shared.clone());
        let rest_task = tokio::spawn(async move {
            let _ = axum::serve(rest, router).await;
        });
        let gateway_task = tokio::spawn(accept_gateway(gateway, shared.clone()));
        FakeDiscord {
            shared,
            rest_address,
            gateway_address,
            _servers: Arc::new(ServerGuard(vec![rest_task, gateway_task])),
        }
    }

    /// The base URL to configure as the adapter's `api_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.rest_address)
    }

    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.gateway_address)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    fn next_id(&self) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        state.next_id
    }

    /// A prospect's message in `channel` (in the test server when `in_server`, else a DM
    /// channel); returns its id. The bot's mention `<@1001>` in `content` is listed in
    /// `mentions`, as Discord does.
    pub fn send_message(&self, channel: u64, in_server: bool, author: u64, content: &str) -> u64 {
        let id = self.next_id();
        let mentions = if content.contains(&format!("<@{BOT_ID}>")) {
            vec![user(BOT_ID, true)]
        } else {
            Vec::new()
        };
        let mut message = message_json(id, channel, user(author, false), content);
        message["mentions"] = Value::Array(mentions);
        if in_server {
            message["guild_id"] = json!(GUILD_ID.to_string());
            message["member"] = json!({"roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00",
                                       "deaf": false, "mute": false, "flags": 0});
        }
        self.dispatch("MESSAGE_CREATE", message);
        id
    }

    /// A slash command by `user` in `channel`; returns the interaction's id.
    pub fn slash_command(
        &self,
        channel: u64,
        in_server: bool,
        user_id: u64,
        name: &str,
        options: Value,
    ) -> u64 {
        let data = json!({"id": "7001", "name": name, "type": 1, "options": options});
        let interaction = self.interaction(2, channel, in_server, user_id, data, None);
        self.dispatch_interaction(interaction)
    }

    /// A press of the button `custom_id` under the bot's message `message_id`.
    pub fn press_button(
        &self,
        channel: u64,
        in_server: bool,
        user_id: u64,
        message_id: u64,
        custom_id: &str,
    ) -> u64 {
        let data = json!({"custom_id": custom_id, "component_type": 2});
        let message = message_json(message_id, channel, user(BOT_ID, true), "…");
        let interaction = self.interaction(3, channel, in_server, user_id, data, Some(message));
        self.dispatch_interaction(interaction)
    }

    /// The contact form submitted with `fields` (custom id, value).
    pub fn submit_form(
        &self,
        channel: u64,
        in_server: bool,
        user_id: u64,
        custom_id: &str,
        fields: &[(&str, &str)],
    ) -> u64 {
        let rows: Vec<Value> = fields
            .iter()
            .map(|(id, value)| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "value": value}]}))
            .collect();
        let data = json!({"custom_id": custom_id, "components": rows});
        let interaction = self.interaction(5, channel, in_server, user_id, data, None);
        self.dispatch_interaction(interaction)
    }

    /// An interaction's payload as Discord would post it to an endpoint (registered, so the
    /// bot can respond and follow up), without dispatching it on the gateway.
    pub fn interaction_payload(
        &self,
        kind: u64,
        channel: u64,
        in_server: bool,
        user_id: u64,
        data: Value,
    ) -> Value {
        self.interaction(kind, channel, in_server, user_id, data, None)
    }

    fn interaction(
        &self,
        kind: u64,
        channel: u64,
        in_server: bool,
        user_id: u64,
        data: Value,
        message: Option<Value>,
    ) -> Value {
        let id = self.next_id();
        let token = format!("interaction-token-{id}");
        self.state().interactions.insert(
            id,
            Pending {
                token: token.clone(),
                channel_id: channel,
                response: None,
            },
        );
        let mut interaction = json!({
            "id": id.to_string(), "application_id": APPLICATION_ID.to_string(), "type": kind,
            "data": data, "channel_id": channel.to_string(), "token": token, "version": 1,
            "app_permissions": "0", "locale": "ru", "entitlements": [],
            "authorizing_integration_owners": {}, "attachment_size_limit": 10_485_760,
        });
        if let (1, Some(object)) = (kind, interaction.as_object_mut()) {
            object.remove("data");
        }
        if in_server {
            interaction["guild_id"] = json!(GUILD_ID.to_string());
            interaction["guild_locale"] = json!("en-US");
            interaction["member"] = json!({"user": user(user_id, false), "roles": [],
                "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                "flags": 0, "permissions": "0"});
        } else {
            interaction["user"] = user(user_id, false);
        }
        if let Some(message) = message {
            interaction["message"] = message;
        }
        interaction
    }

    fn dispatch_interaction(&self, interaction: Value) -> u64 {
        let id = interaction["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or(0);
        self.dispatch("INTERACTION_CREATE", interaction);
        id
    }

    /// Sends a dispatch to the connected client, numbered by the session's next `s`; kept for
    /// a resume when no client is connected.
    pub fn dispatch(&self, event: &str, data: Value) -> u64 {
        let mut state = self.state();
        let gateway = &mut state.gateway;
        let seq = gateway.log.last().map_or(1, |(seq, _)| seq + 1);
        let frame = json!({"op": 0, "s": seq, "t": event, "d": data});
        gateway.log.push((seq, frame.clone()));
        if let Some((_, outbox)) = &gateway.live {
            let _ = outbox.send(frame.to_string());
        }
        drop(state);
        self.shared.changed.notify_waiters();
        seq
    }

    /// The sequence number of the last dispatch.
    pub fn last_sequence(&self) -> u64 {
        self.state().gateway.log.last().map_or(0, |(seq, _)| *seq)
    }

    /// Sends op 7 RECONNECT: the client must reconnect and resume.
    pub fn request_reconnect(&self) {
        let mut state = self.state();
        if let Some((_, outbox)) = state.gateway.live.take() {
            let _ = outbox.send(json!({"op": 7, "d": null}).to_string());
        }
    }

    /// Makes the next RESUME replay from `seq`, events the client has already seen included
    /// (Discord delivers at least once).
    pub fn replay_on_resume_from(&self, seq: u64) {
        self.state().gateway.replay_from = Some(seq);
    }

    /// (identifies, resumes, heartbeats) seen by the gateway.
    pub fn gateway_counts(&self) -> (usize, usize, usize) {
        let gateway = &self.state().gateway;
        (gateway.identifies, gateway.resumes, gateway.heartbeats)
    }

    /// Whether a client has identified or resumed and is connected.
    pub fn connected(&self) -> bool {
        self.state().gateway.live.is_some()
    }

    /// The next call of `endpoint` gets `fault`.
    pub fn fail_next(&self, endpoint: Endpoint, fault: Fault) {
        self.state()
            .faults
            .entry(endpoint)
            .or_default()
            .push_back(fault);
    }

    /// Every message posted, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.state().sent.clone()
    }

    /// The messages posted in `channel`, follow-ups included.
    pub fn sent_to(&self, channel: u64) -> Vec<Sent> {
        self.state()
            .sent
            .iter()
            .filter(|sent| sent.channel_id == channel)
            .cloned()
            .collect()
    }

    /// Every REST call, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// How many 429s the fake answered.
    pub fn rate_limited(&self) -> usize {
        self.state().rate_limited
    }

    /// The bot's response to interaction `id`.
    pub fn response_to(&self, id: u64) -> Option<Value> {
        self.state()
            .interactions
            .get(&id)
            .and_then(|pending| pending.response.clone())
    }

    /// Records the bot's response to interaction `id` given as the HTTP answer of an
    /// interactions endpoint (Discord then accepts follow-ups).
    pub fn record_response(&self, id: u64, response: Value) {
        if let Some(pending) = self.state().interactions.get_mut(&id) {
            pending.response = Some(response);
        }
        self.shared.changed.notify_waiters();
    }

    /// The commands registered: (guild, the body of the bulk overwrite).
    pub fn commands(&self) -> Vec<(Option<u64>, Value)> {
        self.state().commands.clone()
    }

    /// Waits until `condition` holds or `deadline` passes; returns whether it held.
    pub async fn wait_until(
        &self,
        deadline: Duration,
        condition: impl Fn(&FakeDiscord) -> bool,
    ) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let changed = self.shared.changed.notified();
            if condition(self) {
                return true;
            }
            // A timer too: some conditions depend on the store, which does not wake us.
            let tick = tokio::time::Instant::now() + Duration::from_millis(50);
            if tokio::time::timeout_at(until.min(tick), changed)
                .await
                .is_err()
                && tokio::time::Instant::now() >= until
            {
                return condition(self);
            }
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn user(id: u64, bot: bool) -> Value {
    let mut user = json!({"id": id.to_string(), "username": if bot { "closer".to_owned() } else { format!("prospect{id}") },
           "discriminator": "0", "global_name": if bot { Value::Null } else { json!(format!("Prospect {id}")) },
           "avatar": null, "bot": bot});
    if bot {
        user["verified"] = json!(true);
        user["mfa_enabled"] = json!(false);
        user["flags"] = json!(0);
    }
    user
}

fn message_json(id: u64, channel: u64, author: Value, content: &str) -> Value {
    json!({"id": id.to_string(), "channel_id": channel.to_string(), "content": content,
           "timestamp": "2026-11-28T10:00:00.000000+00:00", "edited_timestamp": null,
           "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
           "attachments": [], "embeds": [], "pinned": false, "type": 0, "author": author})
}

/// Discord's error body.
fn error(status: u16, code: i64, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        axum::Json(json!({"message": message, "code": code})),
    )
        .into_response()
}

fn too_many(retry_after: f64, global: bool) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global})),
    )
        .into_response();
    let headers = response.headers_mut();
    let whole = retry_after.ceil().max(0.0).to_string();
    headers.insert(
        "retry-after",
        HeaderValue::from_str(&whole).unwrap_or(HeaderValue::from_static("1")),
    );
    headers.insert(
        "x-ratelimit-scope",
        HeaderValue::from_static(if global { "global" } else { "user" }),
    );
    if global {
        headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
    }
    response
}

async fn rest_call(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(_) => {
                return record(
                    &shared,
                    &method,
                    &path,
                    Value::Null,
                    error(400, 50109, "The request body contains invalid JSON."),
                )
            }
        }
    };
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(format!("Bot {FAKE_TOKEN}").as_str());
    let response = if authorized {
        route(&shared, &method, &path, &body)
    } else {
        error(401, 0, "401: Unauthorized")
    };
    record(&shared, &method, &path, body, response)
}

fn record(
    shared: &Shared,
    method: &Method,
    path: &str,
    body: Value,
    response: Response,
) -> Response {
    let mut state = lock(shared);
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        state.rate_limited += 1;
    }
    state.calls.push(Call {
        method: method.to_string(),
        path: path.to_owned(),
        status: response.status().as_u16(),
        body,
        at: Instant::now(),
    });
    drop(state);
    shared.changed.notify_waiters();
    response
}

fn route(shared: &Shared, method: &Method, path: &str, body: &Value) -> Response {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut state = lock(shared);
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["gateway"]) => axum::Json(json!({"url": state.gateway_url})).into_response(),
        ("GET", ["gateway", "bot"]) => axum::Json(json!({"url": state.gateway_url, "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}))
        .into_response(),
        ("GET", ["users", "@me"]) => axum::Json(user(BOT_ID, true)).into_response(),
        ("POST", ["channels", channel, "messages"]) => {
            let Ok(channel) = channel.parse::<u64>() else {
                return error(404, 10003, "Unknown Channel");
            };
            if let Some(fault) = take_fault(&mut state, Endpoint::CreateMessage) {
                return fault;
            }
            // The channel's bucket: a window of 5 s from its first message.
            let now = Instant::now();
            let window = state.windows.entry(channel).or_default();
            while window.front().is_some_and(|first| now.duration_since(*first) >= CHANNEL_WINDOW) {
                window.pop_front();
            }
            if window.len() >= CHANNEL_BUCKET {
                let retry_after = window
                    .front()
                    .map_or(1.0, |first| (CHANNEL_WINDOW - now.duration_since(*first)).as_secs_f64());
                return too_many((retry_after * 1000.0).ceil() / 1000.0, false);
            }
            if let Some(problem) = validate(body) {
                return problem;
            }
            window.push_back(now);
            let remaining = CHANNEL_BUCKET - window.len();
            let reset_after = window
                .front()
                .map_or(0.0, |first| (CHANNEL_WINDOW - now.duration_since(*first)).as_secs_f64());
            let message = post(&mut state, channel, body, None);
            drop(state);
            shared.changed.notify_waiters();
            let mut response = axum::Json(message).into_response();
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from(CHANNEL_BUCKET));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
            headers.insert(
                "x-ratelimit-reset-after",
                HeaderValue::from_str(&format!("{reset_after:.3}")).unwrap_or(HeaderValue::from_static("5")),
            );
            headers.insert("x-ratelimit-bucket", HeaderValue::from_static("channel-messages"));
            response
        }
        ("PATCH", ["channels", channel, "messages", message]) => {
            let (Ok(channel), Ok(message)) = (channel.parse::<u64>(), message.parse::<u64>()) else {
                return error(404, 10008, "Unknown Message");
            };
            if let Some(problem) = validate(body) {
                return problem;
            }
            let Some(sent) = state
                .sent
                .iter_mut()
                .find(|sent| sent.id == message && sent.channel_id == channel)
            else {
                return error(404, 10008, "Unknown Message");
            };
            if let Some(content) = body["content"].as_str() {
                sent.content = content.to_owned();
            }
            if let Some(components) = body.get("components") {
                sent.components = components.clone();
            }
            sent.edits += 1;
            let mut edited = message_json(message, channel, user(BOT_ID, true), &sent.content);
            edited["components"] = sent.components.clone();
            drop(state);
            shared.changed.notify_waiters();
            axum::Json(edited).into_response()
        }
        ("POST", ["interactions", id, token, "callback"]) => {
            if let Some(fault) = take_fault(&mut state, Endpoint::InteractionCallback) {
                return fault;
            }
            let Some(pending) = id.parse::<u64>().ok().and_then(|id| state.interactions.get_mut(&id)) else {
                return error(404, 10062, "Unknown interaction");
            };
            if pending.token != *token {
                return error(401, 50027, "Invalid Webhook Token");
            }
            if pending.response.is_some() {
                return error(400, 40060, "Interaction has already been acknowledged.");
            }
            pending.response = Some(body.clone());
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["webhooks", application, token]) => {
            if *application != APPLICATION_ID.to_string() {
                return error(404, 10015, "Unknown Webhook");
            }
            if let Some(fault) = take_fault(&mut state, Endpoint::Followup) {
                return fault;
            }
            let found = state
                .interactions
                .values()
                .find(|pending| pending.token == *token)
                .map(|pending| (pending.channel_id, pending.response.is_some()));
            let Some((channel, acknowledged)) = found else {
                return error(404, 10015, "Unknown Webhook");
            };
            if !acknowledged {
                return error(404, 10062, "Unknown interaction");
            }
            if let Some(problem) = validate(body) {
                return problem;
            }
            let message = post(&mut state, channel, body, Some((*token).to_owned()));
            axum::Json(message).into_response()
        }
        ("PUT", ["applications", application, "commands"]) if *application == APPLICATION_ID.to_string() => {
            state.commands.push((None, body.clone()));
            axum::Json(registered(body)).into_response()
        }
        ("PUT", ["applications", application, "guilds", guild, "commands"]) if *application == APPLICATION_ID.to_string() => {
            state.commands.push((guild.parse().ok(), body.clone()));
            axum::Json(registered(body)).into_response()
        }
        _ => error(404, 0, "404: Not Found"),
    }
}

fn take_fault(state: &mut State, endpoint: Endpoint) -> Option<Response> {
    match state.faults.get_mut(&endpoint)?.pop_front()? {
        Fault::RateLimited {
            retry_after,
            global,
        } => Some(too_many(retry_after, global)),
        Fault::Error {
            status,
            code,
            message,
        } => Some(error(status, code, &message)),
    }
}

/// Discord's checks on a message body: the error response when it fails one.
fn validate(body: &Value) -> Option<Response> {
    let content = body["content"].as_str().unwrap_or("");
    let rows = body["components"].as_array().cloned().unwrap_or_default();
    if content.is_empty() && rows.is_empty() {
        return Some(error(400, 50006, "Cannot send an empty message"));
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Some(error(
            400,
            50035,
            "Invalid Form Body: content: Must be 2000 or fewer in length.",
        ));
    }
    if rows.len() > 5 {
        return Some(error(
            400,
            50035,
            "Invalid Form Body: components: Must be 5 or fewer in length.",
        ));
    }
    let mut ids = HashSet::new();
    for row in &rows {
        let buttons = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"] != 1 || buttons.is_empty() || buttons.len() > 5 {
            return Some(error(
                400,
                50035,
                "Invalid Form Body: components: an action row holds 1 to 5 components.",
            ));
        }
        for button in buttons {
            let id = button["custom_id"].as_str().unwrap_or("");
            if id.is_empty()
                || id.chars().count() > MAX_CUSTOM_ID_CHARS
                || !ids.insert(id.to_owned())
            {
                return Some(error(400, 50035, "Invalid Form Body: custom_id: must be 1 to 100 characters, unique in the message."));
            }
            if button["label"]
                .as_str()
                .is_some_and(|label| label.chars().count() > 80)
            {
                return Some(error(
                    400,
                    50035,
                    "Invalid Form Body: label: Must be 80 or fewer in length.",
                ));
            }
        }
    }
    None
}

fn post(state: &mut State, channel: u64, body: &Value, followup_of: Option<String>) -> Value {
    state.next_id += 1;
    let id = state.next_id;
    let content = body["content"].as_str().unwrap_or("").to_owned();
    state.sent.push(Sent {
        id,
        channel_id: channel,
        content: content.clone(),
        components: body.get("components").cloned().unwrap_or(Value::Null),
        allowed_mentions: body.get("allowed_mentions").cloned().unwrap_or(Value::Null),
        followup_of,
        at: Instant::now(),
        edits: 0,
    });
    let mut message = message_json(id, channel, user(BOT_ID, true), &content);
    message["components"] = body.get("components").cloned().unwrap_or(json!([]));
    message
}

fn registered(body: &Value) -> Value {
    let commands = body.as_array().cloned().unwrap_or_default();
    Value::Array(
        commands
            .into_iter()
            .enumerate()
            .map(|(index, mut command)| {
                command["id"] = json!((8000 + index).to_string());
                command["application_id"] = json!(APPLICATION_ID.to_string());
                command["version"] = json!("1");
                command
            })
            .collect(),
    )
}

async fn accept_gateway(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Ok(socket) = tokio_tungstenite::accept_async(stream).await {
                gateway_connection(socket, shared).await;
            }
        });
    }
}

/// One gateway connection: HELLO, then IDENTIFY or RESUME, heartbeats, and dispatches through
/// the connection's outbox once it is live.
async fn gateway_connection(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    shared: Arc<Shared>,
) {
    let (mut write, mut read) = socket.split();
    let (outbox, mut frames) = mpsc::unbounded_channel::<String>();
    let connection = {
        let mut state = lock(&shared);
        state.gateway.next_connection += 1;
        state.gateway.next_connection
    };
    let hello =
        json!({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": null, "t": null});
    if write.send(Frame::Text(hello.to_string())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                let reconnect = frame.contains("\"op\":7");
                if write.send(Frame::Text(frame)).await.is_err() {
                    break;
                }
                if reconnect {
                    // Discord closes the connection after asking for a reconnect.
                    let _ = write.send(Frame::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Library(4000),
                        reason: "reconnect".into(),
                    }))).await;
                    break;
                }
            }
            incoming = read.next() => {
                let Some(Ok(incoming)) = incoming else { break };
                let text = match incoming {
                    Frame::Text(text) => text,
                    Frame::Close(_) => break,
                    _ => continue,
                };
                let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                    let _ = write.send(Frame::Close(None)).await;
                    break;
                };
                gateway_op(&shared, connection, &outbox, &payload);
                shared.changed.notify_waiters();
            }
        }
    }
    let mut state = lock(&shared);
    if state
        .gateway
        .live
        .as_ref()
        .is_some_and(|(live, _)| *live == connection)
    {
        state.gateway.live = None;
    }
    drop(state);
    shared.changed.notify_waiters();
}

fn gateway_op(
    shared: &Shared,
    connection: u64,
    outbox: &mpsc::UnboundedSender<String>,
    payload: &Value,
) {
    let mut state = lock(shared);
    let gateway_url = state.gateway_url.clone();
    let gateway = &mut state.gateway;
    match payload["op"].as_u64() {
        Some(1) => {
            gateway.heartbeats += 1;
            let _ = outbox.send(json!({"op": 11, "d": null}).to_string());
        }
        Some(2) => {
            let token = payload["d"]["token"].as_str().unwrap_or("");
            if token != format!("Bot {FAKE_TOKEN}") && token != FAKE_TOKEN {
                let _ = outbox.send(json!({"op": 9, "d": false}).to_string());
                return;
            }
            gateway.identifies += 1;
            let session = format!("session-{}", gateway.identifies);
            gateway.session_id = Some(session.clone());
            gateway.log.clear();
            gateway.live = Some((connection, outbox.clone()));
            let ready = json!({"op": 0, "s": 1, "t": "READY", "d": {
                "v": 10, "user": user(BOT_ID, true), "guilds": [], "session_id": session,
                "resume_gateway_url": gateway_url, "shard": [0, 1],
                "application": {"id": APPLICATION_ID.to_string(), "flags": 0}}});
            gateway.log.push((1, ready.clone()));
            let _ = outbox.send(ready.to_string());
        }
        Some(6) => {
            let session = payload["d"]["session_id"].as_str().unwrap_or("");
            if gateway.session_id.as_deref() != Some(session) {
                let _ = outbox.send(json!({"op": 9, "d": false}).to_string());
                return;
            }
            gateway.resumes += 1;
            let seen = payload["d"]["seq"].as_u64().unwrap_or(0);
            let from = gateway
                .replay_from
                .take()
                .map_or(seen + 1, |replay| replay.min(seen + 1));
            for (seq, frame) in &gateway.log {
                if *seq >= from {
                    let _ = outbox.send(frame.to_string());
                }
            }
            let seq = gateway.log.last().map_or(1, |(seq, _)| seq + 1);
            let resumed = json!({"op": 0, "s": seq, "t": "RESUMED", "d": {}});
            gateway.log.push((seq, resumed.clone()));
            let _ = outbox.send(resumed.to_string());
            gateway.live = Some((connection, outbox.clone()));
        }
        _ => {}
    }
}
