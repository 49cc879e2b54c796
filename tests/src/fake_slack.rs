//! A local fake of Slack: the Web API methods Closer calls (`auth.test`, `chat.postMessage`,
//! `chat.postEphemeral`, `chat.update`, `conversations.history`, `users.info`,
//! `apps.connections.open`), `response_url` endpoints, a Socket Mode WebSocket, and a
//! [`Signer`] that posts signed events, commands and interactions to Closer the way Slack does.
//!
//! `users.info` answers Slack's user object (`team_id`, `deleted`, `is_bot`, `is_restricted`,
//! `is_ultra_restricted`, `is_stranger`, …) or `user_not_found`. The fake's directory holds
//! the people a test describes with [`FakeSlack::set_user`]; anyone else is a full member of
//! the fake's workspace `T1`, so tests about other things need not list their users.
//!
//! It answers like Slack (`shared/reference/platforms.md` section 2): errors are
//! `{"ok":false,"error":"…"}` inside a 200, a rate limit is a 429 with `Retry-After` (seconds),
//! a token is checked on every call, a section's text over 3,000 characters or more than 50
//! blocks is `invalid_blocks`, and a `response_url` takes five posts. Faults are injected per
//! method with [`FakeSlack::fail_next`]; every state change wakes a [`Notify`], so
//! [`FakeSlack::wait_until`] re-checks its condition instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::{mpsc, Notify};
use tungstenite_slack::tungstenite::Message as WsMessage;

/// The bot token the fake accepts.
pub const BOT_TOKEN: &str = "xoxb-fake-bot-token";
/// The app-level token Socket Mode connects with.
pub const APP_TOKEN: &str = "xapp-fake-app-token";
/// The signing secret the [`Signer`] signs with.
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The bot's user id, as `auth.test` reports it.
pub const BOT_USER: &str = "UCLOSER";
/// The fake's workspace, as `auth.test` reports it.
pub const TEAM_ID: &str = "T1";
/// Slack's limits, as the fake enforces them.
const SECTION_CHARS: usize = 3000;
const MAX_BLOCKS: usize = 50;
const MAX_TEXT_CHARS: usize = 40_000;
const RESPONSE_URL_POSTS: usize = 5;

/// A message the bot posted (and its later updates).
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: String,
    pub blocks: Value,
    pub metadata: Option<Value>,
    /// How many times `chat.update` changed it.
    pub updates: usize,
    pub at: Instant,
}

impl Posted {
    /// The text of every section and context block, joined.
    pub fn block_text(&self) -> String {
        let mut texts = Vec::new();
        for block in self.blocks.as_array().into_iter().flatten() {
            if let Some(text) = block.pointer("/text/text").and_then(Value::as_str) {
                texts.push(text.to_owned());
            }
            for element in block
                .get("elements")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(text) = element.get("text").and_then(Value::as_str) {
                    texts.push(text.to_owned());
                }
            }
        }
        texts.join("\n")
    }

    /// The buttons' action ids (or URLs for link buttons).
    pub fn buttons(&self) -> Vec<Value> {
        self.blocks
            .as_array()
            .into_iter()
            .flatten()
            .filter(|block| block["type"] == "actions")
            .flat_map(|block| block["elements"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

/// A person as `users.info` describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub team_id: String,
    pub deleted: bool,
    pub is_bot: bool,
    /// A multi-channel guest.
    pub is_restricted: bool,
    /// A single-channel guest.
    pub is_ultra_restricted: bool,
    /// Of another organisation, sharing no channel the app sees.
    pub is_stranger: bool,
}

impl FakeUser {
    /// A full member of the fake's workspace.
    pub fn member() -> FakeUser {
        FakeUser {
            team_id: TEAM_ID.to_owned(),
            deleted: false,
            is_bot: false,
            is_restricted: false,
            is_ultra_restricted: false,
            is_stranger: false,
        }
    }

    /// A multi-channel guest of the fake's workspace.
    pub fn guest() -> FakeUser {
        FakeUser {
            is_restricted: true,
            ..FakeUser::member()
        }
    }

    /// A single-channel guest of the fake's workspace.
    pub fn single_channel_guest() -> FakeUser {
        FakeUser {
            is_restricted: true,
            is_ultra_restricted: true,
            ..FakeUser::member()
        }
    }

    /// Someone of another organisation met in a Slack Connect channel.
    pub fn external(team_id: &str) -> FakeUser {
        FakeUser {
            team_id: team_id.to_owned(),
            ..FakeUser::member()
        }
    }
}

/// A message only one person sees (`chat.postEphemeral`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ephemeral {
    pub channel: String,
    pub user: String,
    pub thread_ts: Option<String>,
    pub text: String,
}

/// A fault to answer the next call of a method with.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with `Retry-After: seconds`.
    RateLimited { retry_after_secs: u64 },
    /// `{"ok":false,"error":code}` inside a 200.
    Error(&'static str),
    /// A bare HTTP status.
    Status(u16),
}

#[derive(Default)]
struct State_ {
    posted: Vec<Posted>,
    calls: Vec<(String, Instant)>,
    faults: HashMap<String, VecDeque<Fault>>,
    rate_limited: usize,
    /// Posts per response_url id.
    responses: HashMap<String, Vec<Value>>,
    /// Channels with an enforced gap (1 message a second), and the last post to each.
    enforce_channel_rate: bool,
    last_post: HashMap<String, Instant>,
    sequence: u64,
    /// Socket Mode: the connection's sender, and the envelopes acknowledged.
    socket: Option<mpsc::UnboundedSender<String>>,
    acks: Vec<Value>,
    /// `users.info`'s directory: a described person, or `None` for one Slack does not know.
    users: HashMap<String, Option<FakeUser>>,
    ephemerals: Vec<Ephemeral>,
}

/// The fake. Cheap to clone.
#[derive(Clone)]
pub struct FakeSlack {
    address: SocketAddr,
    state: Arc<Mutex<State_>>,
    changed: Arc<Notify>,
}

type Shared = (Arc<Mutex<State_>>, Arc<Notify>, SocketAddr);

impl FakeSlack {
    /// Starts the Web API and the Socket Mode server on 127.0.0.1, each on a free port.
    pub async fn start() -> FakeSlack {
        let state = Arc::new(Mutex::new(State_::default()));
        let changed = Arc::new(Notify::new());
        let socket_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let socket_address = socket_listener.local_addr().expect("a bound address");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        let shared: Shared = (state.clone(), changed.clone(), socket_address);
        let router = Router::new()
            .route("/api/{method}", any(api))
            .route("/response/{id}", post(response_url))
            .with_state(shared);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let fake = FakeSlack {
            address,
            state,
            changed,
        };
        let socket_fake = fake.clone();
        tokio::spawn(async move { socket_fake.serve_sockets(socket_listener).await });
        fake
    }

    /// The Web API's base URL, for `slack.api_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.address)
    }

    /// A fresh `response_url` for a command or an interaction.
    pub fn response_url(&self, id: &str) -> String {
        format!("http://{}/response/{id}", self.address)
    }

    /// Enforces Slack's 1 message a second per channel (429 with `Retry-After: 1` otherwise).
    pub fn enforce_channel_rate(&self) {
        self.lock().enforce_channel_rate = true;
    }

    /// Answers the next call of `method` with `fault`.
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.lock()
            .faults
            .entry(method.to_owned())
            .or_default()
            .push_back(fault);
    }

    pub fn posted(&self) -> Vec<Posted> {
        self.lock().posted.clone()
    }

    /// The messages posted to a channel (and thread, when given), in order.
    pub fn posted_to(&self, channel: &str, thread_ts: Option<&str>) -> Vec<Posted> {
        self.lock()
            .posted
            .iter()
            .filter(|posted| posted.channel == channel && posted.thread_ts.as_deref() == thread_ts)
            .cloned()
            .collect()
    }

    /// The methods called, in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .map(|(method, _)| method.clone())
            .collect()
    }

    /// Describes a person for `users.info`.
    pub fn set_user(&self, id: &str, user: FakeUser) {
        self.lock().users.insert(id.to_owned(), Some(user));
    }

    /// Makes `users.info` answer `user_not_found` for `id`.
    pub fn forget_user(&self, id: &str) {
        self.lock().users.insert(id.to_owned(), None);
    }

    /// The messages only one person saw, in order.
    pub fn ephemerals(&self) -> Vec<Ephemeral> {
        self.lock().ephemerals.clone()
    }

    /// How many times `method` was called.
    pub fn calls_of(&self, method: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|(called, _)| called == method)
            .count()
    }

    /// How many calls were answered with 429.
    pub fn rate_limited(&self) -> usize {
        self.lock().rate_limited
    }

    /// What was posted to a `response_url`.
    pub fn responses(&self, id: &str) -> Vec<Value> {
        self.lock().responses.get(id).cloned().unwrap_or_default()
    }

    /// The Socket Mode envelopes acknowledged so far.
    pub fn acks(&self) -> Vec<Value> {
        self.lock().acks.clone()
    }

    /// Whether a Socket Mode client is connected.
    pub fn socket_connected(&self) -> bool {
        self.lock().socket.is_some()
    }

    /// Sends a Socket Mode envelope to the connected client.
    pub fn send_envelope(&self, envelope: Value) -> bool {
        let socket = self.lock().socket.clone();
        socket.is_some_and(|socket| socket.send(envelope.to_string()).is_ok())
    }

    /// Waits until `condition` holds or `deadline` passes; returns whether it held.
    pub async fn wait_until(
        &self,
        deadline: Duration,
        condition: impl Fn(&FakeSlack) -> bool,
    ) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let changed = self.changed.notified();
            if condition(self) {
                return true;
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return condition(self);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State_> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn serve_sockets(self, listener: tokio::net::TcpListener) {
        while let Ok((stream, _)) = listener.accept().await {
            let fake = self.clone();
            tokio::spawn(async move {
                let Ok(socket) = tungstenite_slack::accept_async(stream).await else {
                    return;
                };
                let (mut write, mut read) = socket.split();
                let (outgoing, mut queued) = mpsc::unbounded_channel::<String>();
                let hello = json!({"type": "hello", "num_connections": 1,
                    "debug_info": {"host": "fake"}, "connection_info": {"app_id": "A1"}});
                if write
                    .send(WsMessage::text(hello.to_string()))
                    .await
                    .is_err()
                {
                    return;
                }
                fake.lock().socket = Some(outgoing);
                fake.changed.notify_waiters();
                loop {
                    tokio::select! {
                        Some(text) = queued.recv() => {
                            if write.send(WsMessage::text(text)).await.is_err() { break; }
                        }
                        incoming = read.next() => match incoming {
                            Some(Ok(WsMessage::Text(text))) => {
                                if let Ok(ack) = serde_json::from_str::<Value>(text.as_str()) {
                                    fake.lock().acks.push(ack);
                                    fake.changed.notify_waiters();
                                }
                            }
                            Some(Ok(WsMessage::Ping(data))) => {
                                let _ = write.send(WsMessage::Pong(data)).await;
                            }
                            Some(Ok(_)) => {}
                            _ => break,
                        }
                    }
                }
                fake.lock().socket = None;
                fake.changed.notify_waiters();
            });
        }
    }
}

fn ok(mut body: Value) -> Response {
    body["ok"] = Value::Bool(true);
    Json(body).into_response()
}

fn slack_error(code: &str) -> Response {
    Json(json!({"ok": false, "error": code})).into_response()
}

fn rate_limited(retry_after_secs: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, retry_after_secs.to_string())],
        Json(json!({"ok": false, "error": "ratelimited"})),
    )
        .into_response()
}

/// The request's parameters: a JSON body, a form body, or the query string.
fn parameters(headers: &HeaderMap, query: &HashMap<String, String>, body: &Bytes) -> Value {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if json_body {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let mut map = serde_json::Map::new();
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    for (key, value) in query
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(form)
    {
        map.insert(key, Value::String(value));
    }
    Value::Object(map)
}

async fn api(
    State((state, changed, socket_address)): State<Shared>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let params = parameters(&headers, &query, &body);
    let response = {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.calls.push((method.clone(), Instant::now()));
        let fault = state.faults.get_mut(&method).and_then(VecDeque::pop_front);
        match fault {
            Some(Fault::RateLimited { retry_after_secs }) => {
                state.rate_limited += 1;
                rate_limited(retry_after_secs)
            }
            Some(Fault::Error(code)) => slack_error(code),
            Some(Fault::Status(status)) => StatusCode::from_u16(status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response(),
            None => answer(&mut state, &method, &token, &params, socket_address),
        }
    };
    changed.notify_waiters();
    response
}

fn answer(
    state: &mut State_,
    method: &str,
    token: &str,
    params: &Value,
    socket_address: SocketAddr,
) -> Response {
    if method == "apps.connections.open" {
        return if token == APP_TOKEN {
            ok(json!({"url": format!("ws://{socket_address}/link")}))
        } else {
            slack_error("invalid_auth")
        };
    }
    if token != BOT_TOKEN {
        return slack_error(if token.is_empty() {
            "not_authed"
        } else {
            "invalid_auth"
        });
    }
    let text_of = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
    match method {
        "auth.test" => ok(json!({"url": "https://acme.slack.com/", "team": "Acme",
            "user": "closer", "team_id": TEAM_ID, "user_id": BOT_USER, "bot_id": "BCLOSER"})),
        "users.info" => {
            let Some(id) = text_of("user") else {
                return slack_error("user_not_found");
            };
            let user = match state.users.get(&id) {
                Some(Some(user)) => user.clone(),
                Some(None) => return slack_error("user_not_found"),
                None => FakeUser::member(),
            };
            let mut body = json!({"id": id, "team_id": user.team_id, "name": id.to_lowercase(),
                "deleted": user.deleted, "color": "9f69e7", "real_name": id,
                "tz": "Europe/Moscow", "tz_label": "Moscow Time", "tz_offset": 10800,
                "profile": {"real_name": id, "display_name": id, "team": user.team_id},
                "is_admin": false, "is_owner": false, "is_primary_owner": false,
                "is_restricted": user.is_restricted, "is_ultra_restricted": user.is_ultra_restricted,
                "is_bot": user.is_bot, "is_app_user": false, "updated": 1_700_000_000,
                "has_2fa": false});
            // Slack sends is_stranger only for strangers.
            if user.is_stranger {
                body["is_stranger"] = Value::Bool(true);
            }
            ok(json!({"user": body}))
        }
        "chat.postEphemeral" => {
            let (Some(channel), Some(user)) = (text_of("channel"), text_of("user")) else {
                return slack_error("channel_not_found");
            };
            if let Err(code) = validate(params) {
                return slack_error(code);
            }
            state.sequence += 1;
            let ts = format!("{}.{:06}", 1_700_000_000 + state.sequence, state.sequence);
            state.ephemerals.push(Ephemeral {
                channel,
                user,
                thread_ts: text_of("thread_ts"),
                text: text_of("text").unwrap_or_default(),
            });
            ok(json!({"message_ts": ts}))
        }
        "chat.postMessage" => {
            let Some(channel) = text_of("channel") else {
                return slack_error("channel_not_found");
            };
            if channel.starts_with("CGONE") {
                return slack_error("channel_not_found");
            }
            let now = Instant::now();
            if state.enforce_channel_rate {
                if let Some(last) = state.last_post.get(&channel) {
                    if now.duration_since(*last) < Duration::from_millis(950) {
                        state.rate_limited += 1;
                        return rate_limited(1);
                    }
                }
            }
            if let Err(code) = validate(params) {
                return slack_error(code);
            }
            state.sequence += 1;
            let seconds = 1_700_000_000 + state.sequence;
            let ts = format!("{seconds}.{:06}", state.sequence);
            state.last_post.insert(channel.clone(), now);
            let posted = Posted {
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts: text_of("thread_ts"),
                text: text_of("text").unwrap_or_default(),
                blocks: params.get("blocks").cloned().unwrap_or(Value::Null),
                metadata: params.get("metadata").cloned(),
                updates: 0,
                at: now,
            };
            state.posted.push(posted);
            ok(json!({"channel": channel, "ts": ts,
                "message": {"type": "message", "text": text_of("text").unwrap_or_default(), "ts": ts}}))
        }
        "chat.update" => {
            let (Some(channel), Some(ts)) = (text_of("channel"), text_of("ts")) else {
                return slack_error("message_not_found");
            };
            if let Err(code) = validate(params) {
                return slack_error(code);
            }
            let Some(message) = state
                .posted
                .iter_mut()
                .find(|posted| posted.channel == channel && posted.ts == ts)
            else {
                return slack_error("message_not_found");
            };
            message.text = text_of("text").unwrap_or_default();
            message.blocks = params.get("blocks").cloned().unwrap_or(Value::Null);
            message.updates += 1;
            ok(json!({"channel": channel, "ts": ts, "text": message.text,
                "message": {"type": "message", "text": message.text, "ts": ts}}))
        }
        "conversations.history" => {
            let Some(channel) = text_of("channel") else {
                return slack_error("channel_not_found");
            };
            let with_metadata = text_of("include_all_metadata").as_deref() == Some("true");
            let limit = text_of("limit")
                .and_then(|limit| limit.parse::<usize>().ok())
                .unwrap_or(100);
            let messages: Vec<Value> = state
                .posted
                .iter()
                .rev()
                .filter(|posted| posted.channel == channel && posted.thread_ts.is_none())
                .take(limit)
                .map(|posted| {
                    let mut message = json!({"type": "message", "ts": posted.ts,
                        "text": posted.text, "bot_id": "BCLOSER"});
                    if let (true, Some(metadata)) = (with_metadata, &posted.metadata) {
                        message["metadata"] = metadata.clone();
                    }
                    message
                })
                .collect();
            ok(json!({"messages": messages, "has_more": false}))
        }
        _ => slack_error("unknown_method"),
    }
}

/// Slack's checks on a message: text length, number of blocks, a section's text.
fn validate(params: &Value) -> Result<(), &'static str> {
    let text_chars = params
        .get("text")
        .and_then(Value::as_str)
        .map_or(0, |text| text.chars().count());
    if text_chars > MAX_TEXT_CHARS {
        return Err("msg_too_long");
    }
    let blocks = params.get("blocks").and_then(Value::as_array);
    if text_chars == 0 && blocks.is_none_or(Vec::is_empty) {
        return Err("no_text");
    }
    if let Some(blocks) = blocks {
        if blocks.len() > MAX_BLOCKS {
            return Err("invalid_blocks");
        }
        for block in blocks {
            let chars = block
                .pointer("/text/text")
                .and_then(Value::as_str)
                .map_or(0, |text| text.chars().count());
            if chars > SECTION_CHARS {
                return Err("invalid_blocks");
            }
        }
    }
    Ok(())
}

async fn response_url(
    State((state, changed, _)): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    let response = {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let posts = state.responses.entry(id).or_default();
        if posts.len() >= RESPONSE_URL_POSTS {
            (StatusCode::NOT_FOUND, "used_url").into_response()
        } else {
            posts.push(message);
            (StatusCode::OK, "ok").into_response()
        }
    };
    changed.notify_waiters();
    response
}

/// Signs and posts requests to Closer the way Slack does.
#[derive(Debug, Clone)]
pub struct Signer {
    /// Closer's base URL and the Slack routes' prefix (`http://127.0.0.1:P/slack`).
    pub base: String,
    pub secret: String,
    client: reqwest::Client,
}

impl Signer {
    pub fn new(base: impl Into<String>) -> Signer {
        Signer {
            base: base.into(),
            secret: SIGNING_SECRET.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// `v0=` + hex(HMAC-SHA256(secret, `v0:{timestamp}:{body}`)).
    pub fn signature(&self, timestamp: i64, body: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("HMAC takes any key");
        mac.update(format!("v0:{timestamp}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Posts `body` to `{base}{path}` signed at `timestamp`, with extra headers.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        timestamp: i64,
        headers: &[(&str, String)],
    ) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, content_type)
            .header("x-slack-request-timestamp", timestamp.to_string())
            .header("x-slack-signature", self.signature(timestamp, &body));
        for (name, value) in headers {
            request = request.header(*name, value.clone());
        }
        let response = request.body(body).send().await.expect("Closer answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Posts an Events API body signed now.
    pub async fn event(&self, body: &Value) -> (u16, String) {
        self.post_raw("/events", "application/json", body.to_string(), now(), &[])
            .await
    }

    /// Posts an Events API body as Slack's `retry`-th retry.
    pub async fn event_retry(&self, body: &Value, retry: u32) -> (u16, String) {
        let headers = [
            ("x-slack-retry-num", retry.to_string()),
            ("x-slack-retry-reason", "http_timeout".to_owned()),
        ];
        self.post_raw(
            "/events",
            "application/json",
            body.to_string(),
            now(),
            &headers,
        )
        .await
    }

    /// Posts a slash command (form-encoded) signed now.
    pub async fn command(&self, fields: &[(&str, &str)]) -> (u16, String) {
        let body = serde_urlencoded::to_string(fields).expect("a form encodes");
        self.post_raw(
            "/commands",
            "application/x-www-form-urlencoded",
            body,
            now(),
            &[],
        )
        .await
    }

    /// Posts an interaction (`payload=<json>`) signed now.
    pub async fn interaction(&self, payload: &Value) -> (u16, String) {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())])
            .expect("a form encodes");
        self.post_raw(
            "/interactions",
            "application/x-www-form-urlencoded",
            body,
            now(),
            &[],
        )
        .await
    }
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An `event_callback` envelope around `event`.
pub fn event_callback(event_id: &str, event: Value) -> Value {
    json!({"token": "unused", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event_id": event_id, "event_time": now(), "event": event})
}

/// A direct message from `user` to the bot.
pub fn direct_message(channel: &str, user: &str, ts: &str, text: &str) -> Value {
    json!({"type": "message", "channel": channel, "channel_type": "im", "user": user,
        "text": text, "ts": ts, "event_ts": ts})
}

/// A message mentioning the bot in a channel.
pub fn mention(channel: &str, user: &str, ts: &str, text: &str) -> Value {
    json!({"type": "app_mention", "channel": channel, "user": user,
        "text": format!("<@{BOT_USER}> {text}"), "ts": ts, "event_ts": ts})
}

/// A message in a thread of a channel.
pub fn thread_message(channel: &str, user: &str, thread_ts: &str, ts: &str, text: &str) -> Value {
    json!({"type": "message", "channel": channel, "channel_type": "channel", "user": user,
        "text": text, "ts": ts, "thread_ts": thread_ts, "event_ts": ts})
}

/// A `block_actions` payload: `user` pressed `action_id` (with `value`) on message `ts`.
pub fn button_press(channel: &str, ts: &str, user: &str, action_id: &str, value: &str) -> Value {
    json!({"type": "block_actions", "team": {"id": "T1", "domain": "acme"},
        "user": {"id": user, "username": user, "team_id": "T1"},
        "api_app_id": "A1", "token": "unused", "trigger_id": format!("trigger-{ts}-{action_id}"),
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
        "channel": {"id": channel, "name": "leads"},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b1",
            "value": value, "action_ts": "1.0", "text": {"type": "plain_text", "text": "x"}}]})
}
