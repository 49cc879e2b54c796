//! Local fakes of the hand-off targets, speaking their wire contracts as
//! `shared/reference/trackers.md` describes them, with their errors and injectable faults.
//!
//! - [`FakeWebhookReceiver`]: a Standard Webhooks receiver. It verifies every delivery with the
//!   reference implementation (the `standardwebhooks` crate): a bad signature gets 401, and a
//!   repeated `webhook-id` is acknowledged without creating a second item, as receivers do.
//! - [`FakeYandexTracker`]: `POST /v2/issues/` with `unique` (409 on a repeat), `_search` by
//!   queue and tags, comments, `OAuth` tokens and the organization header, the error shape
//!   `{"errors":{},"errorMessages":[…],"statusCode":…}`; outages (503), injected statuses with
//!   `Retry-After`, and a create that succeeds but answers too late (a client timeout).

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve(router: Router) -> (SocketAddr, Arc<ServerGuard>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("a bound address");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (address, Arc::new(ServerGuard(server)))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An answer queued for the next request instead of the normal one.
#[derive(Debug, Clone, Copy)]
pub struct Injected {
    pub status: u16,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver

/// One verified delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub webhook_id: String,
    pub body: Value,
    /// Whether this `webhook-id` had been received before.
    pub repeated: bool,
}

#[derive(Default)]
struct ReceiverState {
    deliveries: Vec<Delivery>,
    seen: HashSet<String>,
    rejected: usize,
    injected: VecDeque<Injected>,
}

/// A Standard Webhooks receiver on 127.0.0.1.
#[derive(Clone)]
pub struct FakeWebhookReceiver {
    state: Arc<Mutex<ReceiverState>>,
    address: SocketAddr,
    _server: Arc<ServerGuard>,
}

/// The secret the receiver verifies with.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

impl FakeWebhookReceiver {
    pub async fn start() -> FakeWebhookReceiver {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let router = Router::new()
            .route("/hooks/closer", post(receive))
            .with_state(state.clone());
        let (address, server) = serve(router).await;
        FakeWebhookReceiver {
            state,
            address,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/closer", self.address)
    }

    /// The verified deliveries, repeats included, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.state).deliveries.clone()
    }

    /// The items created: one per distinct `webhook-id`.
    pub fn items(&self) -> usize {
        lock(&self.state).seen.len()
    }

    /// Deliveries refused for a missing or wrong signature.
    pub fn rejected(&self) -> usize {
        lock(&self.state).rejected
    }

    /// The next delivery gets this answer instead (after its signature is checked).
    pub fn inject(&self, status: u16, retry_after: Option<u64>) {
        lock(&self.state).injected.push_back(Injected {
            status,
            retry_after,
        });
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let verifier = match standardwebhooks::Webhook::new(WEBHOOK_SECRET) {
        Ok(verifier) => verifier,
        Err(error) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    };
    let mut state = lock(&state);
    if verifier.verify(&body, &headers).is_err() {
        state.rejected += 1;
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    if let Some(injected) = state.injected.pop_front() {
        return injected_answer(injected, "injected failure".to_owned());
    }
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let repeated = !state.seen.insert(webhook_id.clone());
    state.deliveries.push(Delivery {
        webhook_id: webhook_id.clone(),
        body,
        repeated,
    });
    let number = state.seen.len();
    Json(json!({ "id": format!("rcv-{webhook_id}"), "url": format!("https://crm.example.com/leads/{number}") }))
        .into_response()
}

fn injected_answer(injected: Injected, body: String) -> Response {
    let status = StatusCode::from_u16(injected.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    if let Some(seconds) = injected.retry_after {
        if let Ok(value) = seconds.to_string().parse() {
            response.headers_mut().insert("retry-after", value);
        }
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Yandex Tracker

/// The OAuth token the fake accepts.
pub const YANDEX_TOKEN: &str = "y0_fake-oauth-token";
/// The organization the fake belongs to (`X-Org-ID`).
pub const YANDEX_ORG: &str = "7654321";
/// The one queue the fake has.
pub const YANDEX_QUEUE: &str = "SALES";

/// An issue as the fake stores it.
#[derive(Debug, Clone)]
pub struct Issue {
    pub key: String,
    pub summary: String,
    pub description: String,
    pub tags: Vec<String>,
    pub unique: Option<String>,
    pub comments: Vec<String>,
}

#[derive(Default)]
struct TrackerState {
    issues: Vec<Issue>,
    down: bool,
    injected: VecDeque<Injected>,
    /// The next create is made, then answered only after this long.
    stall_next_create: Option<Duration>,
    requests: usize,
}

/// Yandex Tracker's API v2 on 127.0.0.1.
#[derive(Clone)]
pub struct FakeYandexTracker {
    state: Arc<Mutex<TrackerState>>,
    address: SocketAddr,
    _server: Arc<ServerGuard>,
}

impl FakeYandexTracker {
    pub async fn start() -> FakeYandexTracker {
        let state = Arc::new(Mutex::new(TrackerState::default()));
        let router = Router::new()
            .route("/v2/issues/", post(create_issue))
            .route("/v2/issues/_search", post(search_issues))
            .route("/v2/issues/{key}", get(get_issue))
            .route("/v2/issues/{key}/comments", post(add_comment))
            .with_state(state.clone());
        let (address, server) = serve(router).await;
        FakeYandexTracker {
            state,
            address,
            _server: server,
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn issues(&self) -> Vec<Issue> {
        lock(&self.state).issues.clone()
    }

    /// How many requests reached the fake (any answer).
    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }

    /// While down, every request gets 503.
    pub fn set_down(&self, down: bool) {
        lock(&self.state).down = down;
    }

    /// The next request gets this answer instead.
    pub fn inject(&self, status: u16, retry_after: Option<u64>) {
        lock(&self.state).injected.push_back(Injected {
            status,
            retry_after,
        });
    }

    /// The next create succeeds but is answered only after `delay`: longer than the client
    /// waits, it is a timeout whose outcome the client cannot know.
    pub fn stall_next_create(&self, delay: Duration) {
        lock(&self.state).stall_next_create = Some(delay);
    }
}

fn tracker_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "errors": {}, "errorMessages": [message], "statusCode": status.as_u16() })),
    )
        .into_response()
}

/// Authentication, outages and injected answers, before any method: the answer that refuses
/// the request, if any.
fn gate(state: &mut TrackerState, headers: &HeaderMap) -> Option<Response> {
    state.requests += 1;
    if state.down {
        return Some(tracker_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable",
        ));
    }
    if let Some(injected) = state.injected.pop_front() {
        let status =
            StatusCode::from_u16(injected.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = tracker_error(status, "injected failure");
        if let Some(seconds) = injected.retry_after {
            if let Ok(value) = seconds.to_string().parse() {
                response.headers_mut().insert("retry-after", value);
            }
        }
        return Some(response);
    }
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("OAuth {YANDEX_TOKEN}"));
    if !authorized {
        return Some(tracker_error(StatusCode::UNAUTHORIZED, "Not authorized"));
    }
    let org = headers
        .get("x-org-id")
        .or_else(|| headers.get("x-cloud-org-id"))
        .and_then(|value| value.to_str().ok());
    if org != Some(YANDEX_ORG) {
        return Some(tracker_error(
            StatusCode::UNAUTHORIZED,
            "Organization is not specified or the user is not in it",
        ));
    }
    None
}

fn issue_json(address: &str, issue: &Issue) -> Value {
    json!({
        "self": format!("{address}/v2/issues/{}", issue.key),
        "id": format!("5f{:022x}", issue.key.len() * 7919),
        "key": issue.key,
        "version": 1,
        "summary": issue.summary,
        "description": issue.description,
        "tags": issue.tags,
        "queue": { "id": "1", "key": YANDEX_QUEUE, "display": "Sales" },
        "status": { "key": "open", "display": "Open" },
        "createdAt": "2026-11-24T10:00:00.000+0000",
    })
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn queue_key(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(key) => Some(key.clone()),
        Value::Object(object) => object.get("key")?.as_str().map(str::to_owned),
        _ => None,
    }
}

async fn create_issue(
    State(state): State<Arc<Mutex<TrackerState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (stall, answer) = {
        let mut state = lock(&state);
        if let Some(response) = gate(&mut state, &headers) {
            return response;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return tracker_error(StatusCode::BAD_REQUEST, "Invalid JSON");
        };
        if queue_key(body.get("queue")).as_deref() != Some(YANDEX_QUEUE) {
            return tracker_error(StatusCode::NOT_FOUND, "Queue does not exist");
        }
        let Some(summary) = body.get("summary").and_then(Value::as_str) else {
            return tracker_error(StatusCode::UNPROCESSABLE_ENTITY, "Summary is required");
        };
        let unique = body
            .get("unique")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if unique.is_some() && state.issues.iter().any(|issue| issue.unique == unique) {
            return tracker_error(
                StatusCode::CONFLICT,
                "An issue with this unique value already exists",
            );
        }
        let issue = Issue {
            key: format!("{YANDEX_QUEUE}-{}", state.issues.len() + 1),
            summary: summary.to_owned(),
            description: body
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            tags: string_list(body.get("tags")),
            unique,
            comments: Vec::new(),
        };
        let answer = issue_json("https://api.tracker.yandex.net", &issue);
        state.issues.push(issue);
        (state.stall_next_create.take(), answer)
    };
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn search_issues(
    State(state): State<Arc<Mutex<TrackerState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = gate(&mut state, &headers) {
        return response;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return tracker_error(StatusCode::BAD_REQUEST, "Invalid JSON");
    };
    let filter = body.get("filter").cloned().unwrap_or(Value::Null);
    let queue = queue_key(filter.get("queue"));
    let tags = string_list(filter.get("tags"));
    let found: Vec<Value> = state
        .issues
        .iter()
        .filter(|_| queue.is_none() || queue.as_deref() == Some(YANDEX_QUEUE))
        .filter(|issue| tags.iter().all(|tag| issue.tags.contains(tag)))
        .map(|issue| issue_json("https://api.tracker.yandex.net", issue))
        .collect();
    let mut response = Json(Value::Array(found.clone())).into_response();
    if let Ok(total) = found.len().to_string().parse() {
        response.headers_mut().insert("x-total-count", total);
    }
    response
}

async fn get_issue(
    State(state): State<Arc<Mutex<TrackerState>>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = gate(&mut state, &headers) {
        return response;
    }
    match state.issues.iter().find(|issue| issue.key == key) {
        Some(issue) => Json(issue_json("https://api.tracker.yandex.net", issue)).into_response(),
        None => tracker_error(StatusCode::NOT_FOUND, "Issue does not exist"),
    }
}

async fn add_comment(
    State(state): State<Arc<Mutex<TrackerState>>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = gate(&mut state, &headers) {
        return response;
    }
    let text = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body.get("text").and_then(Value::as_str).map(str::to_owned));
    let Some(text) = text else {
        return tracker_error(StatusCode::UNPROCESSABLE_ENTITY, "Text is required");
    };
    let Some(issue) = state.issues.iter_mut().find(|issue| issue.key == key) else {
        return tracker_error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    issue.comments.push(text.clone());
    let id = issue.comments.len();
    (
        StatusCode::CREATED,
        Json(json!({ "self": format!("https://api.tracker.yandex.net/v2/issues/{key}/comments/{id}"), "id": id, "longId": format!("5fa{id:021}"), "text": text })),
    )
        .into_response()
}
