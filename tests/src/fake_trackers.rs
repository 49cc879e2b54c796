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

/// A fake server on 127.0.0.1 with its state `S` behind one mutex; it stops when the last
/// clone is dropped.
pub struct Fake<S> {
    state: Arc<Mutex<S>>,
    address: SocketAddr,
    _server: Arc<ServerGuard>,
}

impl<S> Clone for Fake<S> {
    fn clone(&self) -> Self {
        Fake {
            state: self.state.clone(),
            address: self.address,
            _server: self._server.clone(),
        }
    }
}

impl<S: Default + Send + 'static> Fake<S> {
    /// Serves `routes` over a fresh default state on a free port.
    async fn serve(routes: Router<Arc<Mutex<S>>>) -> Fake<S> {
        let state = Arc::new(Mutex::new(S::default()));
        let router = routes.with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Fake {
            state,
            address,
            _server: Arc::new(ServerGuard(server)),
        }
    }

    fn state(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }

    fn base(&self) -> String {
        format!("http://{}", self.address)
    }
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

/// The faults a test queues on a fake: answers instead of the normal ones, and a create that
/// succeeds but is answered too late.
#[derive(Default)]
pub struct Faults {
    injected: VecDeque<Injected>,
    stall_next_create: Option<Duration>,
}

/// A fake's state that holds [`Faults`].
pub trait HasFaults {
    fn faults(&mut self) -> &mut Faults;
}

impl<S: HasFaults + Default + Send + 'static> Fake<S> {
    /// The next request gets `status` (with `Retry-After` when given) in the target's error shape.
    pub fn inject(&self, status: u16, retry_after: Option<u64>) {
        self.state().faults().injected.push_back(Injected {
            status,
            retry_after,
        });
    }

    /// The next create is made, then answered only after `delay`: longer than the client
    /// waits, it is a timeout whose outcome the client cannot know.
    pub fn stall_next_create(&self, delay: Duration) {
        self.state().faults().stall_next_create = Some(delay);
    }
}

/// Adds `Retry-After` to an answer.
fn with_retry_after(mut response: Response, seconds: Option<u64>) -> Response {
    if let Some(value) = seconds.and_then(|seconds| seconds.to_string().parse().ok()) {
        response.headers_mut().insert("retry-after", value);
    }
    response
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
/// The receiver's state.
pub struct ReceiverState {
    faults: Faults,
    deliveries: Vec<Delivery>,
    seen: HashSet<String>,
    rejected: usize,
}

impl HasFaults for ReceiverState {
    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }
}

/// A Standard Webhooks receiver on 127.0.0.1.
pub type FakeWebhookReceiver = Fake<ReceiverState>;

/// The secret the receiver verifies with.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

impl Fake<ReceiverState> {
    pub async fn start() -> FakeWebhookReceiver {
        Fake::serve(Router::new().route("/hooks/closer", post(receive))).await
    }

    pub fn url(&self) -> String {
        format!("{}/hooks/closer", self.base())
    }

    /// The verified deliveries, repeats included, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state().deliveries.clone()
    }

    /// The items created: one per distinct `webhook-id`.
    pub fn items(&self) -> usize {
        self.state().seen.len()
    }

    /// Deliveries refused for a missing or wrong signature.
    pub fn rejected(&self) -> usize {
        self.state().rejected
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
    if let Some(injected) = state.faults.injected.pop_front() {
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
    with_retry_after((status, body).into_response(), injected.retry_after)
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
/// Yandex Tracker's state.
pub struct TrackerState {
    faults: Faults,
    issues: Vec<Issue>,
    down: bool,
    /// The next create is made, then answered only after this long.
    requests: usize,
}

impl HasFaults for TrackerState {
    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }
}

/// Yandex Tracker's API v2 on 127.0.0.1.
pub type FakeYandexTracker = Fake<TrackerState>;

impl Fake<TrackerState> {
    pub async fn start() -> FakeYandexTracker {
        Fake::serve(
            Router::new()
                .route("/v2/issues/", post(create_issue))
                .route("/v2/issues/_search", post(search_issues))
                .route("/v2/issues/{key}", get(get_issue))
                .route("/v2/issues/{key}/comments", post(add_comment)),
        )
        .await
    }

    pub fn api_url(&self) -> String {
        self.base()
    }

    pub fn issues(&self) -> Vec<Issue> {
        self.state().issues.clone()
    }

    /// How many requests reached the fake (any answer).
    pub fn requests(&self) -> usize {
        self.state().requests
    }

    /// While down, every request gets 503.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
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
    if let Some(injected) = state.faults.injected.pop_front() {
        let status =
            StatusCode::from_u16(injected.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let response = tracker_error(status, "injected failure");
        return Some(with_retry_after(response, injected.retry_after));
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
        (state.faults.stall_next_create.take(), answer)
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

// ---------------------------------------------------------------------------------------------
// Bitrix24

/// The incoming webhook's path the fake accepts: `/rest/{user}/{code}/`.
pub const BITRIX_WEBHOOK_PATH: &str = "/rest/1/fake-webhook-code/";

/// A CRM lead as the fake stores it.
#[derive(Debug, Clone)]
pub struct BitrixLead {
    pub id: u64,
    pub fields: Value,
    pub comments: Vec<String>,
}

/// An error Bitrix24 answers in its body, with the HTTP status it comes with (200 included).
#[derive(Debug, Clone)]
pub struct BitrixError {
    pub status: u16,
    pub code: String,
}

#[derive(Default)]
/// Bitrix24's state.
pub struct BitrixState {
    faults: Faults,
    leads: Vec<BitrixLead>,
    tasks: Vec<BitrixLead>,
    errors: VecDeque<BitrixError>,
}

impl HasFaults for BitrixState {
    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }
}

/// Bitrix24's REST API behind an incoming webhook, on 127.0.0.1.
pub type FakeBitrix24 = Fake<BitrixState>;

impl Fake<BitrixState> {
    pub async fn start() -> FakeBitrix24 {
        Fake::serve(Router::new().route("/rest/{user}/{code}/{method}", post(bitrix_call))).await
    }

    /// The incoming webhook's URL (the secret a portal admin copies).
    pub fn webhook_url(&self) -> String {
        format!("{}{BITRIX_WEBHOOK_PATH}", self.base())
    }

    pub fn leads(&self) -> Vec<BitrixLead> {
        self.state().leads.clone()
    }

    /// The tasks (`tasks.task.add`), with their comments.
    pub fn tasks(&self) -> Vec<BitrixLead> {
        self.state().tasks.clone()
    }

    /// The next call gets `{"error": code, …}` with this HTTP status (Bitrix24 answers some
    /// errors with 200; its rate limit is 503 `QUERY_LIMIT_EXCEEDED`).
    pub fn inject_error(&self, status: u16, code: &str) {
        self.state().errors.push_back(BitrixError {
            status,
            code: code.to_owned(),
        });
    }
}

fn bitrix_error(status: u16, code: &str, description: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

fn bitrix_result(result: Value) -> Response {
    Json(json!({ "result": result, "time": { "start": 1_764_000_000.0, "finish": 1_764_000_000.1, "duration": 0.1, "operating": 0.05, "operating_reset_at": 1_764_000_600 } }))
        .into_response()
}

async fn bitrix_call(
    State(state): State<Arc<Mutex<BitrixState>>>,
    Path((user, code, method)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if format!("/rest/{user}/{code}/") != BITRIX_WEBHOOK_PATH {
        return bitrix_error(401, "INVALID_CREDENTIALS", "Invalid request credentials");
    }
    let method = method.trim_end_matches(".json").to_owned();
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bitrix_error(400, "INVALID_REQUEST", "Invalid JSON");
    };
    let (stall, result) = {
        let mut state = lock(&state);
        if let Some(error) = state.errors.pop_front() {
            return bitrix_error(error.status, &error.code, "injected error");
        }
        if let Some(injected) = state.faults.injected.pop_front() {
            return with_retry_after(
                bitrix_error(injected.status, "INTERNAL_SERVER_ERROR", "injected failure"),
                injected.retry_after,
            );
        }
        match method.as_str() {
            "crm.lead.add" => {
                let fields = body.get("fields").cloned().unwrap_or(json!({}));
                let id = 3465 + state.leads.len() as u64;
                state.leads.push(BitrixLead {
                    id,
                    fields,
                    comments: Vec::new(),
                });
                (state.faults.stall_next_create.take(), json!(id))
            }
            "tasks.task.add" => {
                let fields = body.get("fields").cloned().unwrap_or(json!({}));
                let missing = |key: &str| {
                    fields
                        .get(key)
                        .is_none_or(|value| value.is_null() || value == &json!(""))
                };
                if missing("TITLE") {
                    return bitrix_error(400, "ERROR_CORE", "Task title not specified<br>");
                }
                if missing("RESPONSIBLE_ID") {
                    return bitrix_error(400, "ERROR_CORE", "Responsible person not specified<br>");
                }
                let id = 3711 + state.tasks.len() as u64;
                let title = fields.get("TITLE").cloned().unwrap_or_default();
                state.tasks.push(BitrixLead {
                    id,
                    fields,
                    comments: Vec::new(),
                });
                (
                    state.faults.stall_next_create.take(),
                    json!({ "task": { "id": id.to_string(), "title": title, "guid": format!("{{{id}}}") } }),
                )
            }
            "tasks.task.list" => {
                let wanted = body.get("filter").and_then(|filter| filter.get("XML_ID"));
                let found: Vec<Value> = state
                    .tasks
                    .iter()
                    .filter(|task| {
                        wanted.is_none_or(|wanted| task.fields.get("XML_ID") == Some(wanted))
                    })
                    .map(|task| json!({ "id": task.id.to_string() }))
                    .collect();
                return Json(
                    json!({ "result": { "tasks": found }, "total": found.len(), "time": {} }),
                )
                .into_response();
            }
            "task.commentitem.add" => {
                let id = body.get(0).and_then(|id| match id {
                    Value::String(text) => text.parse::<u64>().ok(),
                    other => other.as_u64(),
                });
                let comment = body
                    .get(1)
                    .and_then(|fields| fields.get("POST_MESSAGE"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let Some(task) = state.tasks.iter_mut().find(|task| Some(task.id) == id) else {
                    return bitrix_error(400, "ERROR_CORE", "Task not found or not accessible");
                };
                task.comments.push(comment);
                return bitrix_result(json!(task.comments.len()));
            }
            "crm.lead.list" => {
                let filter = body.get("filter").cloned().unwrap_or(json!({}));
                let found: Vec<Value> = state
                    .leads
                    .iter()
                    .filter(|lead| {
                        ["ORIGINATOR_ID", "ORIGIN_ID"].iter().all(|key| {
                            filter
                                .get(*key)
                                .is_none_or(|wanted| lead.fields.get(*key) == Some(wanted))
                        })
                    })
                    .map(|lead| json!({ "ID": lead.id.to_string() }))
                    .collect();
                return Json(json!({ "result": found, "total": found.len(), "time": {} }))
                    .into_response();
            }
            "crm.timeline.comment.add" => {
                let fields = body.get("fields").cloned().unwrap_or(json!({}));
                let id = fields.get("ENTITY_ID").and_then(|id| match id {
                    Value::String(text) => text.parse::<u64>().ok(),
                    other => other.as_u64(),
                });
                let comment = fields
                    .get("COMMENT")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let Some(lead) = state.leads.iter_mut().find(|lead| Some(lead.id) == id) else {
                    return bitrix_error(400, "", "Not found");
                };
                lead.comments.push(comment);
                return bitrix_result(json!(lead.comments.len()));
            }
            _ => return bitrix_error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!"),
        }
    };
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    bitrix_result(result)
}

// ---------------------------------------------------------------------------------------------
// Jira

/// Jira Cloud's account and API token, and Data Center's personal access token.
pub const JIRA_EMAIL: &str = "bot@acme.com";
pub const JIRA_API_TOKEN: &str = "jira-api-token";
pub const JIRA_PAT: &str = "jira-personal-access-token";
pub const JIRA_PROJECT: &str = "SALES";

/// An issue as the fake stores it.
#[derive(Debug, Clone)]
pub struct JiraIssue {
    pub key: String,
    pub fields: Value,
    pub comments: Vec<Value>,
}

#[derive(Default)]
/// Jira's state.
pub struct JiraState {
    faults: Faults,
    issues: Vec<JiraIssue>,
}

impl HasFaults for JiraState {
    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }
}

/// Jira's REST API, v3 (Cloud, ADF) under `/rest/api/3` and v2 (Data Center, plain text)
/// under `/rest/api/2`, on 127.0.0.1.
pub type FakeJira = Fake<JiraState>;

impl Fake<JiraState> {
    pub async fn start() -> FakeJira {
        Fake::serve(
            Router::new()
                .route("/rest/api/{version}/issue", post(jira_create))
                .route(
                    "/rest/api/{version}/issue/{key}/comment",
                    post(jira_comment),
                )
                .route("/rest/api/3/search/jql", post(jira_search_v3))
                .route(
                    "/rest/api/{version}/search",
                    get(jira_search_v2).post(jira_search_v2),
                ),
        )
        .await
    }

    pub fn url(&self) -> String {
        self.base()
    }

    pub fn issues(&self) -> Vec<JiraIssue> {
        self.state().issues.clone()
    }
}

fn jira_error(status: StatusCode, messages: &[&str], errors: Value) -> Response {
    (
        status,
        Json(json!({ "errorMessages": messages, "errors": errors })),
    )
        .into_response()
}

/// Authentication (v3: Basic e-mail and API token; v2: Bearer PAT) and injected answers. A
/// bad credential gets 401 with a plain-text body, as Jira's does.
fn jira_gate(state: &mut JiraState, version: &str, headers: &HeaderMap) -> Option<Response> {
    if let Some(injected) = state.faults.injected.pop_front() {
        let response = jira_error(
            StatusCode::from_u16(injected.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &["injected failure"],
            json!({}),
        );
        return Some(with_retry_after(response, injected.retry_after));
    }
    use base64::Engine as _;
    let expected = if version == "3" {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{JIRA_EMAIL}:{JIRA_API_TOKEN}"))
        )
    } else {
        format!("Bearer {JIRA_PAT}")
    };
    let given = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    if given != Some(expected.as_str()) {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                "Client must be authenticated to access this resource.",
            )
                .into_response(),
        );
    }
    None
}

/// v3 takes Atlassian Document Format, v2 a string.
fn text_problem(version: &str, value: &Value) -> Option<&'static str> {
    match (version, value) {
        ("3", Value::Object(doc)) if doc.get("type") == Some(&json!("doc")) => None,
        ("3", _) => Some(
            "Operation value must be an Atlassian Document (see the Atlassian Document Format)",
        ),
        (_, Value::String(_)) => None,
        _ => Some("Operation value must be a string"),
    }
}

async fn jira_create(
    State(state): State<Arc<Mutex<JiraState>>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (stall, answer) = {
        let mut state = lock(&state);
        if let Some(response) = jira_gate(&mut state, &version, &headers) {
            return response;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return jira_error(
                StatusCode::BAD_REQUEST,
                &["Unexpected character"],
                json!({}),
            );
        };
        let fields = body.get("fields").cloned().unwrap_or(json!({}));
        if fields["project"]["key"] != JIRA_PROJECT {
            return jira_error(
                StatusCode::BAD_REQUEST,
                &[],
                json!({ "project": "valid project is required" }),
            );
        }
        if !fields["summary"].is_string() {
            return jira_error(
                StatusCode::BAD_REQUEST,
                &[],
                json!({ "summary": "You must specify a summary of the issue." }),
            );
        }
        if let Some(description) = fields.get("description") {
            if let Some(problem) = text_problem(&version, description) {
                return jira_error(
                    StatusCode::BAD_REQUEST,
                    &[],
                    json!({ "description": problem }),
                );
            }
        }
        let number = state.issues.len() + 1;
        let key = format!("{JIRA_PROJECT}-{number}");
        state.issues.push(JiraIssue {
            key: key.clone(),
            fields,
            comments: Vec::new(),
        });
        let id = 10_000 + number;
        (
            state.faults.stall_next_create.take(),
            json!({ "id": id.to_string(), "key": key, "self": format!("https://acme.atlassian.net/rest/api/{version}/issue/{id}") }),
        )
    };
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn jira_comment(
    State(state): State<Arc<Mutex<JiraState>>>,
    Path((version, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = jira_gate(&mut state, &version, &headers) {
        return response;
    }
    let body_value = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body.get("body").cloned())
        .unwrap_or(Value::Null);
    if let Some(problem) = text_problem(&version, &body_value) {
        return jira_error(StatusCode::BAD_REQUEST, &[], json!({ "comment": problem }));
    }
    let Some(issue) = state.issues.iter_mut().find(|issue| issue.key == key) else {
        return jira_error(
            StatusCode::NOT_FOUND,
            &["Issue does not exist or you do not have permission to see it."],
            json!({}),
        );
    };
    issue.comments.push(body_value.clone());
    (
        StatusCode::CREATED,
        Json(json!({ "id": format!("{}", 10_100 + issue.comments.len()), "body": body_value, "created": "2026-11-24T10:00:00.000+0000" })),
    )
        .into_response()
}

/// The issues a JQL of the form `project = "P" AND labels = "L"` selects.
fn jql_matches(state: &JiraState, jql: &str) -> Vec<Value> {
    let label = jql
        .split("labels = ")
        .nth(1)
        .map(|rest| rest.trim().trim_matches('"').to_owned());
    state
        .issues
        .iter()
        .filter(|issue| {
            label.as_ref().is_none_or(|label| {
                issue.fields["labels"]
                    .as_array()
                    .is_some_and(|labels| labels.iter().any(|l| l == label.as_str()))
            })
        })
        .map(|issue| json!({ "id": issue.key.trim_start_matches("SALES-"), "key": issue.key }))
        .collect()
}

async fn jira_search_v3(
    State(state): State<Arc<Mutex<JiraState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = jira_gate(&mut state, "3", &headers) {
        return response;
    }
    let jql = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body.get("jql").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    Json(json!({ "issues": jql_matches(&state, &jql), "isLast": true })).into_response()
}

async fn jira_search_v2(
    State(state): State<Arc<Mutex<JiraState>>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    query: axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if version == "3" {
        return jira_error(
            StatusCode::GONE,
            &["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."],
            json!({}),
        );
    }
    let mut state = lock(&state);
    if let Some(response) = jira_gate(&mut state, &version, &headers) {
        return response;
    }
    let jql = query.get("jql").cloned().unwrap_or_default();
    let issues = jql_matches(&state, &jql);
    Json(json!({ "total": issues.len(), "issues": issues })).into_response()
}

// ---------------------------------------------------------------------------------------------
// amoCRM / Kommo

/// The long-lived token of the fake's private integration.
pub const AMO_TOKEN: &str = "amo-long-lived-token";

/// A lead as the fake stores it.
#[derive(Debug, Clone)]
pub struct AmoLead {
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
    pub contact: Value,
    pub notes: Vec<String>,
}

/// amoCRM's state.
#[derive(Default)]
pub struct AmoState {
    faults: Faults,
    leads: Vec<AmoLead>,
}

impl HasFaults for AmoState {
    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }
}

/// amoCRM's API v4 (the same contract as Kommo's), on 127.0.0.1.
pub type FakeAmoCrm = Fake<AmoState>;

impl Fake<AmoState> {
    pub async fn start() -> FakeAmoCrm {
        Fake::serve(
            Router::new()
                .route("/api/v4/leads/complex", post(amo_complex))
                .route("/api/v4/leads", get(amo_search))
                .route("/api/v4/leads/{id}/notes", post(amo_notes)),
        )
        .await
    }

    pub fn url(&self) -> String {
        self.base()
    }

    pub fn leads(&self) -> Vec<AmoLead> {
        self.state().leads.clone()
    }
}

/// amoCRM's errors: `application/problem+json`.
fn amo_problem(status: u16, detail: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        Json(json!({ "title": status.canonical_reason(), "type": format!("https://httpstatus.es/{}", status.as_u16()), "status": status.as_u16(), "detail": detail })),
    )
        .into_response();
    if let Ok(value) = "application/problem+json".parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

fn amo_gate(state: &mut AmoState, headers: &HeaderMap) -> Option<Response> {
    if let Some(injected) = state.faults.injected.pop_front() {
        return Some(amo_problem(injected.status, "injected failure"));
    }
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(format!("Bearer {AMO_TOKEN}").as_str());
    (!authorized).then(|| amo_problem(401, "Unauthorized"))
}

fn hal(value: Value) -> Response {
    let mut response = Json(value).into_response();
    if let Ok(value) = "application/hal+json".parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

async fn amo_complex(
    State(state): State<Arc<Mutex<AmoState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (stall, answer) = {
        let mut state = lock(&state);
        if let Some(response) = amo_gate(&mut state, &headers) {
            return response;
        }
        let Some(leads) = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|body| body.as_array().cloned())
        else {
            return amo_problem(400, "Request validation failed: the body must be an array");
        };
        let mut answer = Vec::new();
        for lead in leads {
            let id = 10_185_151 + state.leads.len() as u64;
            let tags = lead["_embedded"]["tags"]
                .as_array()
                .map(|tags| {
                    tags.iter()
                        .filter_map(|tag| tag["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            state.leads.push(AmoLead {
                id,
                name: lead["name"].as_str().unwrap_or_default().to_owned(),
                tags,
                contact: lead["_embedded"]["contacts"][0].clone(),
                notes: Vec::new(),
            });
            answer.push(json!({ "id": id, "contact_id": id + 7, "company_id": null, "request_id": [lead["request_id"].clone()], "merged": false }));
        }
        (state.faults.stall_next_create.take(), Value::Array(answer))
    };
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    Json(answer).into_response()
}

async fn amo_search(
    State(state): State<Arc<Mutex<AmoState>>>,
    headers: HeaderMap,
    query: axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = amo_gate(&mut state, &headers) {
        return response;
    }
    let wanted = query.get("query").cloned().unwrap_or_default();
    let found: Vec<Value> = state
        .leads
        .iter()
        .filter(|lead| lead.name.contains(&wanted) || lead.tags.contains(&wanted))
        .map(|lead| json!({ "id": lead.id, "name": lead.name }))
        .collect();
    if found.is_empty() {
        // amoCRM's quirk: no match is 204 with an empty body.
        return StatusCode::NO_CONTENT.into_response();
    }
    hal(json!({ "_page": 1, "_links": {}, "_embedded": { "leads": found } }))
}

async fn amo_notes(
    State(state): State<Arc<Mutex<AmoState>>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = amo_gate(&mut state, &headers) {
        return response;
    }
    let text = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|notes| notes[0]["params"]["text"].as_str().map(str::to_owned));
    let Some(text) = text else {
        return amo_problem(400, "Request validation failed");
    };
    let Some(lead) = state.leads.iter_mut().find(|lead| lead.id == id) else {
        return amo_problem(404, "Lead not found");
    };
    lead.notes.push(text);
    hal(json!({ "_embedded": { "notes": [{ "id": lead.notes.len(), "entity_id": id }] } }))
}

// ---------------------------------------------------------------------------------------------
// HubSpot

/// The fake's private app token.
pub const HUBSPOT_TOKEN: &str = "pat-eu1-fake-token";

/// HubSpot's state: objects by type (`contacts`, `deals`, `notes`), each a JSON object with
/// `id` and `properties`.
#[derive(Default)]
pub struct HubSpotState {
    faults: Faults,
    objects: std::collections::HashMap<String, Vec<Value>>,
}

impl HasFaults for HubSpotState {
    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }
}

/// HubSpot's CRM v3 objects API, on 127.0.0.1.
pub type FakeHubSpot = Fake<HubSpotState>;

impl Fake<HubSpotState> {
    pub async fn start() -> FakeHubSpot {
        Fake::serve(
            Router::new()
                .route("/crm/v3/objects/{kind}", post(hubspot_create))
                .route("/crm/v3/objects/{kind}/search", post(hubspot_search)),
        )
        .await
    }

    pub fn url(&self) -> String {
        self.base()
    }

    /// The objects of a type (`contacts`, `deals`, `notes`), in creation order.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        self.state().objects.get(kind).cloned().unwrap_or_default()
    }
}

fn hubspot_error(status: u16, category: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({ "status": "error", "message": message, "correlationId": "5e0b3b1c-fake", "category": category })),
    )
        .into_response()
}

fn hubspot_gate(state: &mut HubSpotState, headers: &HeaderMap) -> Option<Response> {
    if let Some(injected) = state.faults.injected.pop_front() {
        let response = if injected.status == 429 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({ "status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT", "policyName": "SECONDLY" })),
            )
                .into_response()
        } else {
            hubspot_error(injected.status, "INJECTED", "injected failure")
        };
        return Some(with_retry_after(response, injected.retry_after));
    }
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(format!("Bearer {HUBSPOT_TOKEN}").as_str());
    (!authorized).then(|| {
        hubspot_error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.",
        )
    })
}

async fn hubspot_create(
    State(state): State<Arc<Mutex<HubSpotState>>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (stall, answer) = {
        let mut state = lock(&state);
        if let Some(response) = hubspot_gate(&mut state, &headers) {
            return response;
        }
        if !["contacts", "deals", "notes"].contains(&kind.as_str()) {
            return hubspot_error(404, "OBJECT_NOT_FOUND", "Unknown object type");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return hubspot_error(400, "VALIDATION_ERROR", "Invalid input JSON");
        };
        let properties = body.get("properties").cloned().unwrap_or(json!({}));
        let existing = state.objects.entry(kind.clone()).or_default();
        if kind == "contacts" {
            if let Some(email) = properties.get("email") {
                if let Some(other) = existing.iter().find(|o| o["properties"]["email"] == *email) {
                    return hubspot_error(
                        409,
                        "CONFLICT",
                        &format!(
                            "Contact already exists. Existing ID: {}",
                            other["id"].as_str().unwrap_or_default()
                        ),
                    );
                }
            }
        }
        if kind == "deals" {
            if let Some(key) = properties.get("closer_key") {
                if existing
                    .iter()
                    .any(|o| o["properties"]["closer_key"] == *key)
                {
                    return hubspot_error(
                        409,
                        "CONFLICT",
                        "A deal with this value of the unique property closer_key already exists",
                    );
                }
            }
        }
        if kind == "notes" && properties.get("hs_timestamp").is_none() {
            return hubspot_error(
                400,
                "VALIDATION_ERROR",
                "Property values were not valid: hs_timestamp is required",
            );
        }
        let id = (512 + existing.len()).to_string();
        let object = json!({ "id": id, "properties": properties, "associations": body.get("associations"), "createdAt": "2026-11-24T10:00:00Z", "updatedAt": "2026-11-24T10:00:00Z", "archived": false });
        existing.push(object.clone());
        let stall = if kind == "deals" {
            state.faults.stall_next_create.take()
        } else {
            None
        };
        (stall, object)
    };
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn hubspot_search(
    State(state): State<Arc<Mutex<HubSpotState>>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = hubspot_gate(&mut state, &headers) {
        return response;
    }
    let filter = serde_json::from_slice::<Value>(&body)
        .ok()
        .map(|body| body["filterGroups"][0]["filters"][0].clone())
        .unwrap_or(Value::Null);
    let (Some(property), Some(value)) = (filter["propertyName"].as_str(), filter.get("value"))
    else {
        return hubspot_error(400, "VALIDATION_ERROR", "filterGroups are required");
    };
    let results: Vec<Value> = state
        .objects
        .get(&kind)
        .map(|objects| {
            objects
                .iter()
                .filter(|object| object["properties"][property] == *value)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "total": results.len(), "results": results })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Linear

/// The fake's personal API key (sent as is, without `Bearer`) and its one team.
pub const LINEAR_KEY: &str = "lin_api_fake0123456789";
pub const LINEAR_TEAM: &str = "9cfb482a-81e3-4154-b5b9-2c805e70a02d";

/// An issue as the fake stores it.
#[derive(Debug, Clone)]
pub struct LinearIssue {
    pub id: String,
    pub identifier: String,
    pub title: String,
    pub description: String,
    pub comments: Vec<String>,
}

/// Linear's state.
#[derive(Default)]
pub struct LinearState {
    faults: Faults,
    issues: Vec<LinearIssue>,
}

impl HasFaults for LinearState {
    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }
}

/// Linear's GraphQL API (`issueCreate`, `commentCreate`, `issue(id:)`), on 127.0.0.1.
pub type FakeLinear = Fake<LinearState>;

impl Fake<LinearState> {
    pub async fn start() -> FakeLinear {
        Fake::serve(Router::new().route("/graphql", post(linear_graphql))).await
    }

    pub fn url(&self) -> String {
        format!("{}/graphql", self.base())
    }

    pub fn issues(&self) -> Vec<LinearIssue> {
        self.state().issues.clone()
    }
}

/// A GraphQL error; Linear answers most inside a 200.
fn linear_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "data": null, "errors": [{ "message": message, "extensions": { "type": kind, "userError": true, "userPresentableMessage": message } }] })),
    )
        .into_response()
}

fn linear_issue_json(issue: &LinearIssue) -> Value {
    json!({ "id": issue.id, "identifier": issue.identifier, "url": format!("https://linear.app/acme/issue/{}", issue.identifier) })
}

async fn linear_graphql(
    State(state): State<Arc<Mutex<LinearState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let stall = {
        let mut state = lock(&state);
        if let Some(injected) = state.faults.injected.pop_front() {
            // Linear's rate limit is an error inside the answer, not a 429.
            return if injected.status == 429 {
                with_retry_after(
                    linear_error(StatusCode::OK, "ratelimited", "Rate limit exceeded"),
                    injected.retry_after,
                )
            } else {
                linear_error(
                    StatusCode::from_u16(injected.status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "internal error",
                    "injected failure",
                )
            };
        }
        if headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            != Some(LINEAR_KEY)
        {
            return linear_error(
                StatusCode::BAD_REQUEST,
                "authentication error",
                "Authentication required, not authenticated",
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return linear_error(StatusCode::BAD_REQUEST, "invalid input", "Invalid JSON");
        };
        let query = body["query"].as_str().unwrap_or_default();
        let variables = &body["variables"];
        if query.contains("issueCreate") {
            let input = &variables["i"];
            if input["teamId"] != LINEAR_TEAM {
                return linear_error(StatusCode::OK, "invalid input", "Entity not found: Team");
            }
            let id = input["id"].as_str().unwrap_or_default().to_owned();
            if state.issues.iter().any(|issue| issue.id == id) {
                return linear_error(
                    StatusCode::OK,
                    "invalid input",
                    "Argument Validation Error: an issue with this id already exists",
                );
            }
            let issue = LinearIssue {
                identifier: format!("SAL-{}", state.issues.len() + 1),
                id,
                title: input["title"].as_str().unwrap_or_default().to_owned(),
                description: input["description"].as_str().unwrap_or_default().to_owned(),
                comments: Vec::new(),
            };
            let answer = json!({ "data": { "issueCreate": { "success": true, "issue": linear_issue_json(&issue) } } });
            state.issues.push(issue);
            (state.faults.stall_next_create.take(), answer)
        } else if query.contains("commentCreate") {
            let input = &variables["c"];
            let target = input["issueId"].as_str().unwrap_or_default();
            let Some(issue) = state
                .issues
                .iter_mut()
                .find(|issue| issue.id == target || issue.identifier == target)
            else {
                return linear_error(StatusCode::OK, "invalid input", "Entity not found: Issue");
            };
            issue
                .comments
                .push(input["body"].as_str().unwrap_or_default().to_owned());
            (
                None,
                json!({ "data": { "commentCreate": { "success": true } } }),
            )
        } else if query.contains("issue(") {
            let wanted = variables["id"].as_str().unwrap_or_default();
            match state
                .issues
                .iter()
                .find(|issue| issue.id == wanted || issue.identifier == wanted)
            {
                Some(issue) => (
                    None,
                    json!({ "data": { "issue": linear_issue_json(issue) } }),
                ),
                None => {
                    return linear_error(StatusCode::OK, "invalid input", "Entity not found: Issue")
                }
            }
        } else {
            return linear_error(
                StatusCode::BAD_REQUEST,
                "graphql error",
                "Unknown operation",
            );
        }
    };
    let (stall, answer) = stall;
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    Json(answer).into_response()
}

// ---------------------------------------------------------------------------------------------
// Trello

/// The fake's API key and token, and its one list.
pub const TRELLO_KEY: &str = "0123456789abcdef0123456789abcdef";
pub const TRELLO_TOKEN: &str = "ATTAfake-trello-token";
pub const TRELLO_LIST: &str = "65f0a1b2c3d4e5f6a7b8c9d0";

/// A card as the fake stores it.
#[derive(Debug, Clone)]
pub struct TrelloCard {
    pub id: String,
    pub short_url: String,
    pub name: String,
    pub desc: String,
    pub comments: Vec<String>,
}

/// Trello's state.
#[derive(Default)]
pub struct TrelloState {
    faults: Faults,
    cards: Vec<TrelloCard>,
}

impl HasFaults for TrelloState {
    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }
}

/// Trello's REST API v1 (cards, comments, search), on 127.0.0.1.
pub type FakeTrello = Fake<TrelloState>;

impl Fake<TrelloState> {
    pub async fn start() -> FakeTrello {
        Fake::serve(
            Router::new()
                .route("/1/cards", post(trello_create))
                .route("/1/cards/{id}/actions/comments", post(trello_comment))
                .route("/1/search", get(trello_search)),
        )
        .await
    }

    pub fn url(&self) -> String {
        self.base()
    }

    pub fn cards(&self) -> Vec<TrelloCard> {
        self.state().cards.clone()
    }
}

type Query = axum::extract::Query<std::collections::HashMap<String, String>>;

/// Trello's errors are plain text, but its 429 is JSON.
fn trello_gate(state: &mut TrelloState, query: &Query) -> Option<Response> {
    if let Some(injected) = state.faults.injected.pop_front() {
        return Some(if injected.status == 429 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({ "error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded" })),
            )
                .into_response()
        } else {
            (
                StatusCode::from_u16(injected.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "injected failure",
            )
                .into_response()
        });
    }
    if query.get("key").map(String::as_str) != Some(TRELLO_KEY) {
        return Some((StatusCode::UNAUTHORIZED, "invalid key").into_response());
    }
    if query.get("token").map(String::as_str) != Some(TRELLO_TOKEN) {
        return Some((StatusCode::UNAUTHORIZED, "invalid token").into_response());
    }
    None
}

async fn trello_create(
    State(state): State<Arc<Mutex<TrelloState>>>,
    query: Query,
    body: Bytes,
) -> Response {
    let (stall, answer) = {
        let mut state = lock(&state);
        if let Some(response) = trello_gate(&mut state, &query) {
            return response;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
        let field = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| query.get(name).cloned())
        };
        if field("idList").as_deref() != Some(TRELLO_LIST) {
            return (StatusCode::BAD_REQUEST, "invalid value for idList").into_response();
        }
        let number = state.cards.len() + 1;
        let short = format!("aB3dE{number:03}");
        let card = TrelloCard {
            id: format!("65f0a1{number:018x}"),
            short_url: format!("https://trello.com/c/{short}"),
            name: field("name").unwrap_or_default(),
            desc: field("desc").unwrap_or_default(),
            comments: Vec::new(),
        };
        let answer = json!({ "id": card.id, "idShort": number, "shortLink": short, "shortUrl": card.short_url, "url": format!("https://trello.com/c/{short}/{number}-lead"), "idList": TRELLO_LIST, "name": card.name, "desc": card.desc });
        state.cards.push(card);
        (state.faults.stall_next_create.take(), answer)
    };
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    Json(answer).into_response()
}

async fn trello_comment(
    State(state): State<Arc<Mutex<TrelloState>>>,
    Path(id): Path<String>,
    query: Query,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = trello_gate(&mut state, &query) {
        return response;
    }
    let Some(text) = query.get("text").cloned() else {
        return (StatusCode::BAD_REQUEST, "invalid value for text").into_response();
    };
    let Some(card) = state.cards.iter_mut().find(|card| card.id == id) else {
        return (StatusCode::NOT_FOUND, "could not find the card").into_response();
    };
    card.comments.push(text.clone());
    Json(json!({ "id": format!("c{}", card.comments.len()), "type": "commentCard", "data": { "text": text } }))
        .into_response()
}

async fn trello_search(State(state): State<Arc<Mutex<TrelloState>>>, query: Query) -> Response {
    let mut state = lock(&state);
    if let Some(response) = trello_gate(&mut state, &query) {
        return response;
    }
    let wanted = query.get("query").cloned().unwrap_or_default();
    let cards: Vec<Value> = state
        .cards
        .iter()
        .filter(|card| {
            !wanted.is_empty() && (card.desc.contains(&wanted) || card.name.contains(&wanted))
        })
        .map(|card| json!({ "id": card.id, "name": card.name, "shortUrl": card.short_url }))
        .collect();
    Json(json!({ "options": { "terms": [{ "text": wanted }], "modelTypes": ["cards"] }, "cards": cards }))
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Asana

/// The fake's personal access token, its project and its workspace.
pub const ASANA_TOKEN: &str = "2/1200000000000/1209999999999:fakeasanatoken";
pub const ASANA_PROJECT: &str = "1201234567890";

/// A task as the fake stores it.
#[derive(Debug, Clone)]
pub struct AsanaTask {
    pub gid: String,
    pub name: String,
    pub notes: String,
    /// `external.gid`, which the API accepts from OAuth apps only.
    pub external: Option<String>,
    pub comments: Vec<String>,
    /// When it was created or last changed, for `modified_since`.
    pub modified_at: chrono::DateTime<chrono::Utc>,
}

/// Asana's state.
#[derive(Default)]
pub struct AsanaState {
    faults: Faults,
    tasks: Vec<AsanaTask>,
    /// Whether the token is an OAuth app's (accepts `external`), not a personal access token.
    oauth_app: bool,
    /// How many tasks a page of `GET /tasks` holds at most, to exercise pagination.
    page_size: Option<usize>,
}

impl HasFaults for AsanaState {
    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }
}

/// Asana's REST API 1.0 (tasks, stories, project task lists, external ids), on 127.0.0.1.
pub type FakeAsana = Fake<AsanaState>;

impl Fake<AsanaState> {
    pub async fn start() -> FakeAsana {
        Fake::serve(
            Router::new()
                .route("/api/1.0/tasks", post(asana_create).get(asana_list))
                .route("/api/1.0/tasks/{gid}", get(asana_get))
                .route("/api/1.0/tasks/{gid}/stories", post(asana_story)),
        )
        .await
    }

    /// The API's base URL, as configured (`…/api/1.0`).
    pub fn url(&self) -> String {
        format!("{}/api/1.0", self.base())
    }

    pub fn tasks(&self) -> Vec<AsanaTask> {
        self.state().tasks.clone()
    }

    /// Makes the token an OAuth app's, for which `external` ids work.
    pub fn as_oauth_app(&self) {
        self.state().oauth_app = true;
    }

    /// Pages of `GET /tasks` hold at most `size` tasks.
    pub fn page_size(&self, size: usize) {
        self.state().page_size = Some(size);
    }

    /// Adds a task made by someone else, to be skipped by lookups.
    pub fn add_other_task(&self, name: &str) {
        let mut state = self.state();
        let gid = format!("1204567890{:03}", state.tasks.len() + 1);
        state.tasks.push(AsanaTask {
            gid,
            name: name.to_owned(),
            notes: String::new(),
            external: None,
            comments: Vec::new(),
            modified_at: chrono::Utc::now(),
        });
    }
}

fn asana_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "errors": [{ "message": message, "help": "For more information on API status codes and how to handle them, read the docs on errors: https://developers.asana.com/docs/errors" }] })),
    )
        .into_response()
}

fn asana_gate(state: &mut AsanaState, headers: &HeaderMap) -> Option<Response> {
    if let Some(injected) = state.faults.injected.pop_front() {
        let status =
            StatusCode::from_u16(injected.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if injected.status == 429 {
            "You have made too many requests recently. Please, be chill."
        } else {
            "injected failure"
        };
        return Some(with_retry_after(
            asana_error(status, message),
            injected.retry_after,
        ));
    }
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(format!("Bearer {ASANA_TOKEN}").as_str());
    if !authorized {
        return Some(asana_error(StatusCode::UNAUTHORIZED, "Not Authorized"));
    }
    None
}

fn asana_task_json(task: &AsanaTask) -> Value {
    json!({
        "gid": task.gid,
        "resource_type": "task",
        "name": task.name,
        "notes": task.notes,
        "permalink_url": format!("https://app.asana.com/0/{ASANA_PROJECT}/{}", task.gid),
        "completed": false,
        "external": task.external.as_ref().map(|gid| json!({ "gid": gid, "data": null })),
    })
}

async fn asana_create(
    State(state): State<Arc<Mutex<AsanaState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (stall, answer) = {
        let mut state = lock(&state);
        if let Some(response) = asana_gate(&mut state, &headers) {
            return response;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return asana_error(
                StatusCode::BAD_REQUEST,
                "Could not parse request data, invalid JSON",
            );
        };
        let Some(data) = body.get("data") else {
            return asana_error(StatusCode::BAD_REQUEST, "data: Missing input");
        };
        let projects: Vec<&str> = data
            .get("projects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if projects.is_empty() && data.get("workspace").is_none() && data.get("parent").is_none() {
            return asana_error(StatusCode::BAD_REQUEST, "workspace: Missing input");
        }
        if projects.iter().any(|project| *project != ASANA_PROJECT) {
            return asana_error(StatusCode::NOT_FOUND, "projects: Unknown object: 1");
        }
        let external = data
            .get("external")
            .and_then(|external| external.get("gid"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if external.is_some() && !state.oauth_app {
            return asana_error(
                StatusCode::BAD_REQUEST,
                "external: External data can only be set by OAuth apps",
            );
        }
        if let Some(gid) = &external {
            if state
                .tasks
                .iter()
                .any(|task| task.external.as_ref() == Some(gid))
            {
                return asana_error(StatusCode::BAD_REQUEST, "external: gid is already in use");
            }
        }
        let text = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let task = AsanaTask {
            gid: format!("1204567890{:03}", state.tasks.len() + 1),
            name: text("name"),
            notes: text("notes"),
            external,
            comments: Vec::new(),
            modified_at: chrono::Utc::now(),
        };
        let answer = json!({ "data": asana_task_json(&task) });
        state.tasks.push(task);
        (state.faults.stall_next_create.take(), answer)
    };
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn asana_list(
    State(state): State<Arc<Mutex<AsanaState>>>,
    headers: HeaderMap,
    query: Query,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = asana_gate(&mut state, &headers) {
        return response;
    }
    if query.get("project").map(String::as_str) != Some(ASANA_PROJECT) {
        return asana_error(
            StatusCode::BAD_REQUEST,
            "Must specify exactly one of project, tag, section, user task list, or assignee + workspace",
        );
    }
    let since = match query.get("modified_since") {
        Some(text) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(since) => Some(since.with_timezone(&chrono::Utc)),
            Err(_) => {
                return asana_error(StatusCode::BAD_REQUEST, "modified_since: Not a valid date");
            }
        },
        None => None,
    };
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .unwrap_or(100)
        .min(state.page_size.unwrap_or(100));
    let offset = query
        .get("offset")
        .and_then(|offset| offset.strip_prefix("eyJ"))
        .and_then(|offset| offset.parse::<usize>().ok())
        .unwrap_or(0);
    let matching: Vec<&AsanaTask> = state
        .tasks
        .iter()
        .filter(|task| since.is_none_or(|since| task.modified_at >= since))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|task| asana_task_json(task))
        .collect();
    let next = offset + page.len();
    let next_page = (next < matching.len()).then(|| {
        json!({ "offset": format!("eyJ{next}"), "path": format!("/tasks?offset=eyJ{next}"), "uri": "" })
    });
    Json(json!({ "data": page, "next_page": next_page })).into_response()
}

async fn asana_get(
    State(state): State<Arc<Mutex<AsanaState>>>,
    Path(gid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = asana_gate(&mut state, &headers) {
        return response;
    }
    let found = match gid.strip_prefix("external:") {
        Some(external) => {
            if !state.oauth_app {
                return asana_error(
                    StatusCode::BAD_REQUEST,
                    "external: External data can only be read by OAuth apps",
                );
            }
            state
                .tasks
                .iter()
                .find(|task| task.external.as_deref() == Some(external))
        }
        None => state.tasks.iter().find(|task| task.gid == gid),
    };
    match found {
        Some(task) => Json(json!({ "data": asana_task_json(task) })).into_response(),
        None => asana_error(StatusCode::NOT_FOUND, "task: Unknown object"),
    }
}

async fn asana_story(
    State(state): State<Arc<Mutex<AsanaState>>>,
    Path(gid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&state);
    if let Some(response) = asana_gate(&mut state, &headers) {
        return response;
    }
    let text = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body.get("data")?.get("text")?.as_str().map(str::to_owned));
    let Some(text) = text else {
        return asana_error(StatusCode::BAD_REQUEST, "text: Missing input");
    };
    let Some(task) = state.tasks.iter_mut().find(|task| task.gid == gid) else {
        return asana_error(StatusCode::NOT_FOUND, "task: Unknown object");
    };
    task.comments.push(text);
    let story = task.comments.len();
    (
        StatusCode::CREATED,
        Json(json!({ "data": { "gid": format!("1205{story:09}"), "resource_type": "story", "type": "comment", "text": task.comments.last() } })),
    )
        .into_response()
}
