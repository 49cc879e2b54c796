//! A local fake of the Telegram Bot API (`{base}/bot{TOKEN}/{method}`) that the Telegram adapter
//! and the load benchmark run against: long-poll `getUpdates` with offsets, webhooks, `sendMessage`
//! with Telegram's validations, rate limits answered with 429, and injectable faults.
//!
//! It speaks the wire protocol described in `shared/reference/platforms.md` section 1, including
//! teloxide's quirks: PascalCase method names (matched case-insensitively), multipart `setWebhook`,
//! the four flags `getMe` must carry, and callback messages with a non-zero `date`.
//!
//! Everything lives behind one mutex; every state change wakes a [`Notify`], so long polls, frozen
//! requests and [`FakeTelegram::wait_until`] re-check their condition instead of sleeping.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::{json, Map, Value};
use tokio::sync::Notify;

/// The token the fake accepts; any other token gets 401.
pub const FAKE_TOKEN: &str = "123456:TEST-fake-token";
/// The bot's own user id, as `getMe` reports it and as the `from` of the bot's messages.
pub const BOT_ID: i64 = 1000;
/// The bot's username, as `getMe` reports it.
pub const BOT_USERNAME: &str = "closer_test_bot";

/// The largest request body the fake reads (Telegram allows 50 MB uploads).
const MAX_BODY_BYTES: usize = 50 * 1024 * 1024;
/// Telegram's limit on a message's text, in characters.
const MAX_TEXT_CHARS: usize = 4096;
/// Telegram's limit on a button's `callback_data`, in bytes.
const MAX_CALLBACK_DATA_BYTES: usize = 64;
/// The HTML tags Telegram's `parse_mode=HTML` understands (with their synonyms).
const HTML_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
];

/// Telegram's documented rate limits, which the fake enforces on `sendMessage` and
/// `editMessageText`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Messages to one private chat in any one-second window.
    pub per_chat_per_second: u32,
    /// Messages to one group (a negative chat id) in any one-minute window.
    pub per_group_per_minute: u32,
    /// The overall rate, a GCRA over all chats.
    pub overall_per_second: u32,
    /// How many messages the overall GCRA lets through at once.
    pub overall_burst: u32,
}

impl Limits {
    /// Telegram's published limits: 1 message/s per chat, 20/min per group, 30/s overall
    /// (with a burst of 5, so a bot that fires everything at once is caught).
    pub fn telegram() -> Limits {
        Limits {
            per_chat_per_second: 1,
            per_group_per_minute: 20,
            overall_per_second: 30,
            overall_burst: 5,
        }
    }
}

/// A failure the next call of a method gets instead of its normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `parameters.retry_after` seconds (teloxide: `RequestError::RetryAfter`).
    RetryAfter(u64),
    /// An API error with this HTTP status and error code, e.g. 403 "Forbidden: bot was blocked
    /// by the user" or 400 "Bad Request: chat not found".
    Api { code: u16, description: String },
    /// HTTP 502 with a JSON error body (teloxide sleeps 10 s before parsing a 5xx).
    ServerError,
    /// HTTP 200 with the truncated body `{"ok":tru`.
    MalformedBody,
}

/// One request the fake received, failed or not.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method name in lower case (`sendmessage`), as written in the URL otherwise.
    pub method: String,
    /// The parameters as one JSON object, whether they came as JSON, a form or multipart.
    pub body: Value,
    /// When the call was recorded (after any delay set with [`FakeTelegram::set_delay`]).
    pub at: Instant,
}

/// One successful `sendMessage`.
#[derive(Debug, Clone)]
pub struct Sent {
    pub chat_id: i64,
    pub message_id: i64,
    pub text: String,
    pub parse_mode: Option<String>,
    pub reply_markup: Option<Value>,
    pub at: Instant,
}

/// A running fake Telegram Bot API server on 127.0.0.1; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeTelegram {
    shared: Arc<Shared>,
    address: SocketAddr,
    /// Used by [`FakeTelegram::deliver_to_webhook`].
    client: reqwest::Client,
    /// Aborts the server task when the last handle goes.
    _server: Arc<ServerGuard>,
}

struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Shared {
    state: Mutex<State>,
    /// Woken on every state change: long polls, frozen requests and `wait_until` re-check.
    changed: Notify,
}

struct State {
    limits: Option<Limits>,
    /// The overall GCRA, when limits are enforced.
    overall: Option<DefaultDirectRateLimiter>,
    /// When each chat was last sent to, within its window (1 s private, 60 s group).
    chat_windows: HashMap<i64, VecDeque<Instant>>,
    next_update_id: i64,
    /// Updates not yet acknowledged by an offset, in update_id order.
    queue: VecDeque<Value>,
    /// Every update ever queued, for `deliver_to_webhook`.
    all_updates: HashMap<i64, Value>,
    /// Update ids pushed raw: they bypass `allowed_updates`, so adapters can be shown unknown kinds.
    raw_update_ids: HashSet<i64>,
    /// The last non-empty `allowed_updates` (Telegram keeps it between calls); None = all kinds.
    allowed_updates: Option<Vec<String>>,
    acknowledged_offset: i64,
    /// Telegram numbers messages per chat; prospects' and the bot's messages share the counter.
    last_message_id: HashMap<i64, i64>,
    /// Every message in every chat, by (chat id, message id), for edits, replies and buttons.
    messages: HashMap<(i64, i64), Value>,
    next_callback_id: u64,
    calls: Vec<Call>,
    sent: Vec<Sent>,
    chats_with_replies: HashSet<i64>,
    too_many_requests: usize,
    faults: HashMap<String, VecDeque<Fault>>,
    delays: HashMap<String, Duration>,
    frozen: bool,
    webhook: Option<(String, Option<String>)>,
}

/// What a method call answers: the HTTP status and the body.
struct Answer {
    status: StatusCode,
    body: AnswerBody,
}

enum AnswerBody {
    Json(Value),
    Raw(&'static str),
}

impl Answer {
    fn ok(result: Value) -> Answer {
        Answer {
            status: StatusCode::OK,
            body: AnswerBody::Json(json!({"ok": true, "result": result})),
        }
    }

    fn error(code: u16, description: impl Into<String>) -> Answer {
        Answer {
            status: StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            body: AnswerBody::Json(
                json!({"ok": false, "error_code": code, "description": description.into()}),
            ),
        }
    }

    fn bad_request(description: impl std::fmt::Display) -> Answer {
        Answer::error(400, format!("Bad Request: {description}"))
    }

    fn retry_after(seconds: u64) -> Answer {
        Answer {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: AnswerBody::Json(json!({
                "ok": false,
                "error_code": 429,
                "description": format!("Too Many Requests: retry after {seconds}"),
                "parameters": {"retry_after": seconds},
            })),
        }
    }

    fn from_fault(fault: Fault) -> Answer {
        match fault {
            Fault::RetryAfter(seconds) => Answer::retry_after(seconds),
            Fault::Api { code, description } => Answer::error(code, description),
            Fault::ServerError => Answer::error(502, "Bad Gateway"),
            Fault::MalformedBody => Answer {
                status: StatusCode::OK,
                body: AnswerBody::Raw("{\"ok\":tru"),
            },
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self.body {
            AnswerBody::Json(value) => (self.status, Json(value)).into_response(),
            AnswerBody::Raw(text) => (
                self.status,
                [(header::CONTENT_TYPE, "application/json")],
                text,
            )
                .into_response(),
        }
    }
}

impl FakeTelegram {
    /// Starts the fake with Telegram's rate limits ([`Limits::telegram`]).
    pub async fn start() -> FakeTelegram {
        FakeTelegram::start_with(Some(Limits::telegram())).await
    }

    /// Starts the fake on 127.0.0.1 on a free port; `None` enforces no rate limits.
    ///
    /// # Panics
    /// No local port can be bound.
    pub async fn start_with(limits: Option<Limits>) -> FakeTelegram {
        let overall = limits.map(|limits| {
            let rate = NonZeroU32::new(limits.overall_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(limits.overall_burst.max(1)).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
        });
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                limits,
                overall,
                chat_windows: HashMap::new(),
                next_update_id: 1,
                queue: VecDeque::new(),
                all_updates: HashMap::new(),
                raw_update_ids: HashSet::new(),
                allowed_updates: None,
                acknowledged_offset: 0,
                last_message_id: HashMap::new(),
                messages: HashMap::new(),
                next_callback_id: 1,
                calls: Vec::new(),
                sent: Vec::new(),
                chats_with_replies: HashSet::new(),
                too_many_requests: 0,
                faults: HashMap::new(),
                delays: HashMap::new(),
                frozen: false,
                webhook: None,
            }),
            changed: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port for the fake Telegram");
        let address = listener.local_addr().expect("the fake's bound address");
        let router = Router::new()
            .route("/{token}/{method}", any(handle))
            .fallback(|| async { Answer::error(404, "Not Found") })
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeTelegram {
            shared,
            address,
            client: reqwest::Client::new(),
            _server: Arc::new(ServerGuard(server)),
        }
    }

    /// The base URL to give the bot (`Bot::set_api_url`), without a trailing slash.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A prospect writes `text` in the private chat `chat_id`; returns the update id.
    pub fn send_text(&self, chat_id: i64, text: &str) -> i64 {
        self.send_message(chat_id, json!({ "text": text }))
    }

    /// A member `user_id` writes `text` in the supergroup `chat_id` (negative), optionally replying
    /// to the bot's message `reply_to_message_id`; returns the update id.
    pub fn send_group_text(
        &self,
        chat_id: i64,
        user_id: i64,
        text: &str,
        reply_to_message_id: Option<i64>,
    ) -> i64 {
        self.queue_message(
            chat_id,
            user_id,
            json!({ "text": text }),
            reply_to_message_id,
        )
    }

    /// A prospect's private message with `fields` (photo, sticker, voice, document, contact,
    /// caption, text…) merged into the message object; returns the update id.
    pub fn send_message(&self, chat_id: i64, fields: Value) -> i64 {
        self.queue_message(chat_id, chat_id, fields, None)
    }

    /// Queues a message from `user_id` in `chat_id` with `fields` merged in, optionally a reply
    /// to the bot's message `reply_to_message_id`.
    fn queue_message(
        &self,
        chat_id: i64,
        user_id: i64,
        fields: Value,
        reply_to_message_id: Option<i64>,
    ) -> i64 {
        self.mutate(|state| {
            let message_id = state.next_message_id(chat_id);
            let mut message = json!({
                "message_id": message_id,
                "date": unix_now(),
                "chat": chat_json(chat_id),
                "from": user_json(user_id),
            });
            merge(&mut message, fields);
            if let Some(replied) = reply_to_message_id {
                message["reply_to_message"] = state.bot_message(chat_id, replied);
            }
            state
                .messages
                .insert((chat_id, message_id), message.clone());
            state.queue_update("message", message)
        })
    }

    /// The prospect shares their own contact (the "share my phone" button); returns the update id.
    pub fn share_contact(&self, chat_id: i64, phone: &str, first_name: &str) -> i64 {
        self.send_message(
            chat_id,
            json!({"contact": {"phone_number": phone, "first_name": first_name, "user_id": chat_id}}),
        )
    }

    /// The prospect edits their message `message_id` to `text`: an `edited_message` update.
    pub fn edit_text(&self, chat_id: i64, message_id: i64, text: &str) -> i64 {
        self.mutate(|state| {
            let now = unix_now();
            let mut message = state
                .messages
                .get(&(chat_id, message_id))
                .cloned()
                .unwrap_or_else(|| {
                    json!({
                        "message_id": message_id,
                        "date": now,
                        "chat": chat_json(chat_id),
                        "from": user_json(chat_id),
                    })
                });
            message["text"] = json!(text);
            message["edit_date"] = json!(now);
            state
                .messages
                .insert((chat_id, message_id), message.clone());
            state.queue_update("edited_message", message)
        })
    }

    /// The prospect presses an inline button carrying `data` under the bot's message `message_id`.
    pub fn press_button(&self, chat_id: i64, message_id: i64, data: &str) -> i64 {
        self.mutate(|state| {
            let id = state.next_callback_id;
            state.next_callback_id += 1;
            let callback = json!({
                "id": format!("cbq{id}"),
                "chat_instance": format!("ci{chat_id}"),
                "data": data,
                "from": user_json(chat_id),
                "message": state.bot_message(chat_id, message_id),
            });
            state.queue_update("callback_query", callback)
        })
    }

    /// Queues any JSON object as an update (an `update_id` is assigned when missing). Raw updates
    /// are delivered whatever `allowed_updates` says, so an adapter can be shown unknown kinds.
    ///
    /// # Panics
    /// `update` is not a JSON object.
    pub fn push_raw_update(&self, update: Value) -> i64 {
        assert!(update.is_object(), "an update is a JSON object");
        self.mutate(|state| {
            let mut update = update;
            let update_id = match update.get("update_id").and_then(Value::as_i64) {
                Some(id) => {
                    state.next_update_id = state.next_update_id.max(id + 1);
                    id
                }
                None => {
                    let id = state.next_update_id;
                    state.next_update_id += 1;
                    update["update_id"] = json!(id);
                    id
                }
            };
            state.raw_update_ids.insert(update_id);
            state.all_updates.insert(update_id, update.clone());
            let position = state
                .queue
                .iter()
                .position(|queued| update_id_of(queued) > update_id)
                .unwrap_or(state.queue.len());
            state.queue.insert(position, update);
            update_id
        })
    }

    /// The update `update_id` as it was queued, to redeliver or post by hand.
    ///
    /// # Panics
    /// The update was never queued.
    pub fn update(&self, update_id: i64) -> Value {
        self.shared
            .lock()
            .all_updates
            .get(&update_id)
            .cloned()
            .unwrap_or_else(|| panic!("update {update_id} was never queued"))
    }

    /// Every request received, in arrival order, including failed ones.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// A message as the chat shows it now (after edits), or `None` when it was never sent or
    /// has been deleted.
    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<Value> {
        self.shared
            .lock()
            .messages
            .get(&(chat_id, message_id))
            .cloned()
    }

    /// The successful `sendMessage` calls, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.shared.lock().sent.clone()
    }

    /// The successful `sendMessage` calls to `chat_id`, in order.
    pub fn sent_to(&self, chat_id: i64) -> Vec<Sent> {
        let state = self.shared.lock();
        state
            .sent
            .iter()
            .filter(|sent| sent.chat_id == chat_id)
            .cloned()
            .collect()
    }

    /// How many distinct chats got at least one successful `sendMessage` (cheap: for load tests,
    /// where cloning `sent()` on every state change would cost more than the bot under test).
    pub fn chats_with_replies(&self) -> usize {
        self.shared.lock().chats_with_replies.len()
    }

    /// How many 429 answers the fake gave (rate limits and queued `Fault::RetryAfter`).
    pub fn too_many_requests(&self) -> usize {
        self.shared.lock().too_many_requests
    }

    /// The highest `offset` a `getUpdates` asked with (0 before any).
    pub fn acknowledged_offset(&self) -> i64 {
        self.shared.lock().acknowledged_offset
    }

    /// Waits until `condition` holds, re-checking it on every state change of the fake; false
    /// when `deadline` passes first.
    pub async fn wait_until(
        &self,
        deadline: Duration,
        mut condition: impl FnMut(&FakeTelegram) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if condition(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return condition(self);
            }
        }
    }

    /// The next call of `method` (case-insensitive) gets `fault`; faults queue up in order.
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.mutate(|state| {
            state
                .faults
                .entry(method.to_lowercase())
                .or_default()
                .push_back(fault);
        });
    }

    /// Every later call of `method` waits `delay` before it is recorded and processed.
    pub fn set_delay(&self, method: &str, delay: Duration) {
        self.mutate(|state| {
            state.delays.insert(method.to_lowercase(), delay);
        });
    }

    /// From now on every request waits, unrecorded, until [`FakeTelegram::thaw`]; a long poll
    /// already running holds its answer too.
    pub fn freeze(&self) {
        self.mutate(|state| state.frozen = true);
    }

    /// Lets frozen requests through.
    pub fn thaw(&self) {
        self.mutate(|state| state.frozen = false);
    }

    /// The url and secret token of the last `setWebhook`; `deleteWebhook` clears it.
    pub fn webhook(&self) -> Option<(String, Option<String>)> {
        self.shared.lock().webhook.clone()
    }

    /// POSTs the queued update `update_id` to the webhook url, with the secret token in
    /// `X-Telegram-Bot-Api-Secret-Token` when one was set; returns the bot's HTTP status.
    ///
    /// # Panics
    /// No webhook is set, the update was never queued, or the request cannot be sent.
    pub async fn deliver_to_webhook(&self, update_id: i64) -> reqwest::StatusCode {
        let (webhook, update) = {
            let state = self.shared.lock();
            (
                state.webhook.clone(),
                state.all_updates.get(&update_id).cloned(),
            )
        };
        let (url, secret) = webhook.expect("a webhook set with setWebhook");
        let update = update.unwrap_or_else(|| panic!("update {update_id} was never queued"));
        let mut request = self.client.post(url).json(&update);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send().await.expect("the webhook answers").status()
    }

    fn mutate<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let result = change(&mut self.shared.lock());
        self.shared.changed.notify_waiters();
        result
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the fake's state from the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn mutate<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let result = change(&mut self.lock());
        self.changed.notify_waiters();
        result
    }

    /// Waits until `check` returns something, re-checking on every state change; None once
    /// `deadline` passes.
    async fn wait_for<T>(
        &self,
        deadline: Option<tokio::time::Instant>,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = check(&mut self.lock()) {
                return Some(found);
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return None;
                    }
                }
                None => notified.await,
            }
        }
    }

    async fn wait_thawed(&self) {
        self.wait_for(None, |state| (!state.frozen).then_some(()))
            .await;
    }
}

impl State {
    fn next_message_id(&mut self, chat_id: i64) -> i64 {
        let last = self.last_message_id.entry(chat_id).or_insert(0);
        *last += 1;
        *last
    }

    /// The bot's message `message_id` in `chat_id`, or a stand-in when it never sent one.
    fn bot_message(&self, chat_id: i64, message_id: i64) -> Value {
        self.messages
            .get(&(chat_id, message_id))
            .filter(|message| message["from"]["id"] == json!(BOT_ID))
            .cloned()
            .unwrap_or_else(|| {
                json!({
                    "message_id": message_id,
                    "date": unix_now(),
                    "chat": chat_json(chat_id),
                    "from": bot_user_json(),
                    "text": "",
                })
            })
    }

    fn queue_update(&mut self, kind: &str, payload: Value) -> i64 {
        let update_id = self.next_update_id;
        self.next_update_id += 1;
        let update = json!({ "update_id": update_id, kind: payload });
        self.all_updates.insert(update_id, update.clone());
        self.queue.push_back(update);
        update_id
    }

    /// Forgets what `offset` acknowledges, as Telegram does: everything below a positive offset,
    /// everything but the last `-offset` updates for a negative one.
    fn acknowledge(&mut self, offset: i64) {
        self.acknowledged_offset = self.acknowledged_offset.max(offset);
        if offset > 0 {
            while self
                .queue
                .front()
                .is_some_and(|update| update_id_of(update) < offset)
            {
                self.queue.pop_front();
            }
        } else if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            while self.queue.len() > keep {
                self.queue.pop_front();
            }
        }
    }

    fn deliverable(&self, limit: usize) -> Vec<Value> {
        self.queue
            .iter()
            .filter(|update| self.allowed(update))
            .take(limit)
            .cloned()
            .collect()
    }

    fn allowed(&self, update: &Value) -> bool {
        let Some(allowed) = &self.allowed_updates else {
            return true;
        };
        if self.raw_update_ids.contains(&update_id_of(update)) {
            return true;
        }
        update
            .as_object()
            .into_iter()
            .flat_map(|object| object.keys())
            .any(|key| key != "update_id" && allowed.iter().any(|kind| kind == key))
    }

    /// Applies the rate limits to one message to `chat_id`; Err(seconds to wait) when over one.
    fn check_limits(&mut self, chat_id: i64) -> Result<(), u64> {
        let Some(limits) = self.limits else {
            return Ok(());
        };
        let now = Instant::now();
        let (window, most) = if chat_id < 0 {
            (Duration::from_secs(60), limits.per_group_per_minute)
        } else {
            (Duration::from_secs(1), limits.per_chat_per_second)
        };
        let most = usize::try_from(most.max(1)).unwrap_or(usize::MAX);
        let recent = self.chat_windows.entry(chat_id).or_default();
        while recent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= window)
        {
            recent.pop_front();
        }
        if recent.len() >= most {
            let oldest = recent[recent.len() - most];
            return Err(whole_seconds(
                window.saturating_sub(now.duration_since(oldest)),
            ));
        }
        if let Some(overall) = &self.overall {
            if let Err(not_until) = overall.check() {
                return Err(whole_seconds(
                    not_until.wait_time_from(DefaultClock::default().now()),
                ));
            }
        }
        recent.push_back(now);
        Ok(())
    }
}

/// The one route: `/{bot<TOKEN>}/{method}`.
async fn handle(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path((token, method_in_url)): Path<(String, String)>,
    request: Request,
) -> Answer {
    shared.wait_thawed().await;
    let method = method_in_url.to_lowercase();
    let delay = shared.lock().delays.get(&method).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
        shared.wait_thawed().await;
    }
    let body = read_parameters(request).await;
    let parameters = body.clone().unwrap_or_else(|_| json!({}));
    let fault = shared.mutate(|state| {
        state.calls.push(Call {
            method: method.clone(),
            body: parameters.clone(),
            at: Instant::now(),
        });
        if token.strip_prefix("bot") != Some(FAKE_TOKEN) {
            return Some(Answer::error(401, "Unauthorized"));
        }
        if !KNOWN_METHODS.contains(&method.as_str()) {
            return Some(Answer::error(404, "Not Found: method not found"));
        }
        if let Some(fault) = state.faults.get_mut(&method).and_then(VecDeque::pop_front) {
            if matches!(fault, Fault::RetryAfter(_)) {
                state.too_many_requests += 1;
            }
            return Some(Answer::from_fault(fault));
        }
        None
    });
    if let Some(answer) = fault {
        return answer;
    }
    let parameters = match body {
        Ok(parameters) => parameters,
        Err(problem) => return Answer::bad_request(problem),
    };
    if method == "getupdates" {
        return get_updates(&shared, &parameters).await;
    }
    shared.mutate(|state| {
        let answer = call(state, &method, &parameters);
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            state.too_many_requests += 1;
        }
        answer
    })
}

const KNOWN_METHODS: &[&str] = &[
    "getme",
    "getwebhookinfo",
    "setwebhook",
    "deletewebhook",
    "getupdates",
    "sendmessage",
    "editmessagetext",
    "editmessagereplymarkup",
    "answercallbackquery",
    "sendchataction",
    "setmycommands",
    "deletemessage",
];

/// Every method but `getUpdates`, answered at once under the lock.
fn call(state: &mut State, method: &str, parameters: &Value) -> Answer {
    match method {
        "getme" => Answer::ok(json!({
            "id": BOT_ID,
            "is_bot": true,
            "first_name": "F",
            "username": BOT_USERNAME,
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
            "has_main_web_app": false,
        })),
        "getwebhookinfo" => {
            let url = state
                .webhook
                .as_ref()
                .map(|(url, _)| url.clone())
                .unwrap_or_default();
            Answer::ok(json!({
                "url": url,
                "has_custom_certificate": false,
                "pending_update_count": state.queue.len(),
            }))
        }
        "setwebhook" => {
            let Some(url) = string_field(parameters, "url") else {
                return Answer::bad_request(
                    "bad webhook: An HTTPS URL must be provided for webhook",
                );
            };
            if url.is_empty() {
                state.webhook = None;
            } else {
                state.webhook = Some((url, string_field(parameters, "secret_token")));
            }
            if parameters["drop_pending_updates"] == json!(true) {
                state.queue.clear();
            }
            Answer::ok(json!(true))
        }
        "deletewebhook" => {
            state.webhook = None;
            if parameters["drop_pending_updates"] == json!(true) {
                state.queue.clear();
            }
            Answer::ok(json!(true))
        }
        "sendmessage" => send_message(state, parameters),
        "editmessagetext" => edit_message_text(state, parameters),
        "deletemessage" => {
            let Some((chat_id, message_id)) = message_address(parameters) else {
                return Answer::bad_request("chat_id and message_id are required");
            };
            match state.messages.remove(&(chat_id, message_id)) {
                Some(_) => Answer::ok(json!(true)),
                None => Answer::bad_request("message to delete not found"),
            }
        }
        "editmessagereplymarkup" => {
            let Some((chat_id, message_id)) = message_address(parameters) else {
                return Answer::ok(json!(true));
            };
            if let Err(answer) = check_reply_markup(parameters) {
                return answer;
            }
            let Some(message) = state.messages.get_mut(&(chat_id, message_id)) else {
                return Answer::bad_request("message to edit not found");
            };
            match parameters.get("reply_markup") {
                Some(markup) => message["reply_markup"] = markup.clone(),
                None => {
                    if let Some(object) = message.as_object_mut() {
                        object.remove("reply_markup");
                    }
                }
            }
            message["edit_date"] = json!(unix_now());
            Answer::ok(message.clone())
        }
        _ => Answer::ok(json!(true)),
    }
}

fn send_message(state: &mut State, parameters: &Value) -> Answer {
    let chat_id = match chat_id_field(parameters) {
        Ok(chat_id) => chat_id,
        Err(answer) => return answer,
    };
    let text = match checked_text(parameters) {
        Ok(text) => text,
        Err(answer) => return answer,
    };
    if let Err(answer) = check_reply_markup(parameters) {
        return answer;
    }
    if let Err(seconds) = state.check_limits(chat_id) {
        return Answer::retry_after(seconds);
    }
    let message_id = state.next_message_id(chat_id);
    let mut message = json!({
        "message_id": message_id,
        "date": unix_now(),
        "chat": chat_json(chat_id),
        "from": bot_user_json(),
        "text": text,
    });
    let reply_markup = parameters.get("reply_markup").cloned();
    if let Some(markup) = reply_markup
        .as_ref()
        .filter(|markup| markup.get("inline_keyboard").is_some())
    {
        message["reply_markup"] = markup.clone();
    }
    state
        .messages
        .insert((chat_id, message_id), message.clone());
    state.sent.push(Sent {
        chat_id,
        message_id,
        text,
        parse_mode: string_field(parameters, "parse_mode"),
        reply_markup,
        at: Instant::now(),
    });
    state.chats_with_replies.insert(chat_id);
    Answer::ok(message)
}

fn edit_message_text(state: &mut State, parameters: &Value) -> Answer {
    let text = match checked_text(parameters) {
        Ok(text) => text,
        Err(answer) => return answer,
    };
    if let Err(answer) = check_reply_markup(parameters) {
        return answer;
    }
    let Some((chat_id, message_id)) = message_address(parameters) else {
        // An inline message (`inline_message_id`): Telegram answers true.
        return if parameters.get("inline_message_id").is_some() {
            Answer::ok(json!(true))
        } else {
            Answer::bad_request("chat_id and message_id are required")
        };
    };
    let Some(current) = state.messages.get(&(chat_id, message_id)).cloned() else {
        return Answer::bad_request("message to edit not found");
    };
    let markup = parameters.get("reply_markup").cloned();
    if current["text"] == json!(text) && current.get("reply_markup") == markup.as_ref() {
        return Answer::bad_request(
            "message is not modified: specified new message content and reply markup are exactly \
             the same as a current content and reply markup of the message",
        );
    }
    if let Err(seconds) = state.check_limits(chat_id) {
        return Answer::retry_after(seconds);
    }
    let mut message = current;
    message["text"] = json!(text);
    message["edit_date"] = json!(unix_now());
    if let Some(object) = message.as_object_mut() {
        match markup {
            Some(markup) => object.insert("reply_markup".to_owned(), markup),
            None => object.remove("reply_markup"),
        };
    }
    state
        .messages
        .insert((chat_id, message_id), message.clone());
    Answer::ok(message)
}

/// Long poll: answers at once when updates at or above `offset` are queued, else waits for one
/// or for `timeout` seconds.
async fn get_updates(shared: &Shared, parameters: &Value) -> Answer {
    let offset = integer_field(parameters, "offset").unwrap_or(0);
    let limit = integer_field(parameters, "limit")
        .unwrap_or(100)
        .clamp(1, 100);
    let limit = usize::try_from(limit).unwrap_or(100);
    let timeout = integer_field(parameters, "timeout").unwrap_or(0).max(0);
    let webhook_set = shared.mutate(|state| {
        state.acknowledge(offset);
        if let Some(kinds) = parameters.get("allowed_updates").and_then(Value::as_array) {
            let kinds: Vec<String> = kinds
                .iter()
                .filter_map(|kind| kind.as_str().map(str::to_owned))
                .collect();
            state.allowed_updates = (!kinds.is_empty()).then_some(kinds);
        }
        state.webhook.is_some()
    });
    if webhook_set {
        return Answer::error(
            409,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook \
             to delete the webhook first",
        );
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(u64::try_from(timeout).unwrap_or(0));
    let found = shared
        .wait_for(Some(deadline), |state| {
            if state.frozen {
                return None;
            }
            let updates = state.deliverable(limit);
            (!updates.is_empty()).then_some(updates)
        })
        .await;
    // A poll that ran out while the fake was frozen answers only after the thaw.
    shared.wait_thawed().await;
    Answer::ok(Value::Array(found.unwrap_or_default()))
}

/// The request's parameters as one JSON object, from the query string and a JSON, form or
/// multipart body. Form and multipart fields that hold JSON objects, arrays, integers or booleans
/// are parsed (`reply_markup`, `allowed_updates`, `offset`…); text fields stay strings.
async fn read_parameters(request: Request) -> Result<Value, String> {
    let mut fields = Map::new();
    if let Some(query) = request.uri().query() {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = form_value(&name, &value);
            fields.insert(name.into_owned(), value);
        }
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|error| format!("can't parse multipart: {error}"))?;
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|error| format!("can't parse multipart: {error}"))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let bytes = field
                .bytes()
                .await
                .map_err(|error| format!("can't parse multipart: {error}"))?;
            let value = match file_name {
                Some(file_name) => json!({"file_name": file_name, "size": bytes.len()}),
                None => form_value(&name, &String::from_utf8_lossy(&bytes)),
            };
            fields.insert(name, value);
        }
        return Ok(Value::Object(fields));
    }
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|error| format!("can't read the body: {error}"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(fields));
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        for (name, value) in url::form_urlencoded::parse(&bytes) {
            let value = form_value(&name, &value);
            fields.insert(name.into_owned(), value);
        }
        return Ok(Value::Object(fields));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(object)) => {
            for (name, value) in object {
                // Some clients send the markup as a JSON string even in a JSON body.
                let value = match (&value, name.as_str()) {
                    (Value::String(text), "reply_markup" | "allowed_updates") => {
                        serde_json::from_str(text).unwrap_or(value)
                    }
                    _ => value,
                };
                fields.insert(name, value);
            }
            Ok(Value::Object(fields))
        }
        Ok(_) => Err("the JSON body is not an object".to_owned()),
        Err(error) => Err(format!("can't parse JSON body: {error}")),
    }
}

/// A form field's value: JSON when it is an object, an array, an integer or a boolean (except in
/// the free-text fields), the string otherwise.
fn form_value(name: &str, value: &str) -> Value {
    let trimmed = value.trim();
    let looks_like_json = trimmed.starts_with('{')
        || trimmed.starts_with('[')
        || trimmed == "true"
        || trimmed == "false"
        || (!trimmed.is_empty()
            && trimmed
                .strip_prefix('-')
                .unwrap_or(trimmed)
                .chars()
                .all(|c| c.is_ascii_digit())
            && !trimmed.strip_prefix('-').unwrap_or(trimmed).is_empty());
    let free_text = matches!(
        name,
        "text" | "caption" | "secret_token" | "url" | "callback_query_id" | "data"
    );
    if looks_like_json && !free_text {
        if let Ok(parsed) = serde_json::from_str(trimmed) {
            return parsed;
        }
    }
    Value::String(value.to_owned())
}

fn string_field(parameters: &Value, name: &str) -> Option<String> {
    match parameters.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn integer_field(parameters: &Value, name: &str) -> Option<i64> {
    match parameters.get(name)? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// `chat_id` as a number or a numeric string; a `@username` names no chat the fake knows.
fn chat_id_field(parameters: &Value) -> Result<i64, Answer> {
    match parameters.get("chat_id") {
        None | Some(Value::Null) => Err(Answer::bad_request("chat_id is empty")),
        Some(_) => integer_field(parameters, "chat_id")
            .ok_or_else(|| Answer::bad_request("chat not found")),
    }
}

fn message_address(parameters: &Value) -> Option<(i64, i64)> {
    Some((
        integer_field(parameters, "chat_id")?,
        integer_field(parameters, "message_id")?,
    ))
}

/// The message text after Telegram's checks: present, at most 4096 characters, valid HTML when
/// `parse_mode` is HTML.
fn checked_text(parameters: &Value) -> Result<String, Answer> {
    let text = string_field(parameters, "text").unwrap_or_default();
    if text.trim().is_empty() {
        return Err(Answer::bad_request("message text is empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Answer::bad_request("message is too long"));
    }
    let html = string_field(parameters, "parse_mode")
        .is_some_and(|mode| mode.eq_ignore_ascii_case("html"));
    if html {
        if let Some(problem) = html_problem(&text) {
            return Err(Answer::bad_request(format!(
                "can't parse entities: {problem}"
            )));
        }
    }
    Ok(text)
}

/// A cheap version of Telegram's HTML check: every `<` opens a known tag that closes with `>`,
/// and every `&` starts a known entity.
fn html_problem(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut offset = 0;
    while offset < bytes.len() {
        match bytes[offset] {
            b'<' => {
                let rest = &text[offset + 1..];
                let Some(end) = rest.find('>') else {
                    return Some(format!(
                        "Can't find end of the tag starting at byte offset {offset}"
                    ));
                };
                let inner = &rest[..end];
                let closing = inner.starts_with('/');
                let name = inner
                    .trim_start_matches('/')
                    .split(|c: char| c.is_whitespace())
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if !HTML_TAGS.contains(&name.as_str()) {
                    let kind = if closing { "end" } else { "start" };
                    return Some(format!(
                        "Unsupported {kind} tag \"{name}\" at byte offset {offset}"
                    ));
                }
                offset += end + 2;
            }
            b'&' => {
                if !starts_with_entity(&text[offset + 1..]) {
                    return Some(format!("Character entity expected at byte offset {offset}"));
                }
                offset += 1;
            }
            _ => offset += 1,
        }
    }
    None
}

fn starts_with_entity(rest: &str) -> bool {
    if ["lt;", "gt;", "amp;", "quot;"]
        .iter()
        .any(|entity| rest.starts_with(entity))
    {
        return true;
    }
    let Some(number) = rest.strip_prefix('#') else {
        return false;
    };
    let (digits, hex) = match number.strip_prefix(['x', 'X']) {
        Some(hex) => (hex, true),
        None => (number, false),
    };
    let Some(end) = digits.find(';') else {
        return false;
    };
    let digits = &digits[..end];
    !digits.is_empty()
        && digits.chars().all(|c| {
            if hex {
                c.is_ascii_hexdigit()
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Inline buttons' `callback_data` must be 1–64 bytes.
fn check_reply_markup(parameters: &Value) -> Result<(), Answer> {
    let rows = parameters
        .get("reply_markup")
        .and_then(|markup| markup.get("inline_keyboard"))
        .and_then(Value::as_array);
    let buttons = rows
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten();
    for button in buttons {
        if let Some(data) = button.get("callback_data").and_then(Value::as_str) {
            if data.is_empty() || data.len() > MAX_CALLBACK_DATA_BYTES {
                return Err(Answer::bad_request("BUTTON_DATA_INVALID"));
            }
        }
    }
    Ok(())
}

fn chat_json(chat_id: i64) -> Value {
    if chat_id < 0 {
        json!({"id": chat_id, "type": "supergroup", "title": format!("Group{}", -chat_id)})
    } else {
        json!({"id": chat_id, "type": "private", "first_name": format!("Prospect{chat_id}")})
    }
}

fn user_json(user_id: i64) -> Value {
    json!({"id": user_id, "is_bot": false, "first_name": format!("Prospect{user_id}")})
}

fn bot_user_json() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "F", "username": BOT_USERNAME})
}

fn update_id_of(update: &Value) -> i64 {
    update["update_id"].as_i64().unwrap_or(i64::MAX)
}

fn merge(target: &mut Value, fields: Value) {
    if let (Some(target), Value::Object(fields)) = (target.as_object_mut(), fields) {
        target.extend(fields);
    }
}

/// Seconds to wait, rounded up, at least 1 (Telegram never says "retry after 0").
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
