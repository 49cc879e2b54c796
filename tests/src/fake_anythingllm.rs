//! A local fake of AnythingLLM's developer API (`/api/v1/...`) as
//! `shared/reference/anythingllm-api.md` describes it, quirks included: 403
//! `{"error":"No valid api key found."}` for any bad key; chat whose mode defaults to the
//! workspace's `chatMode` when left out (here `automatic`, which answers without sources like
//! chat mode); query-mode refusals as a 200 with no sources and no `chatId`; `type:"abort"` inside
//! a 200; `stream-chat` with `uuid` chunks, two `close:true` events and sources only in
//! `finalizeResponseStream`, a refusal as one `id` event then EOF; vector search with its renamed
//! metadata; raw-text documents stored under `custom-documents/raw-<title>-<uuid>.json`;
//! update-embeddings that answers 200 even when a path did not take; a workspace read that
//! answers an array (`[]` for an unknown slug); `sendStatus` errors as text/plain and unknown
//! paths as the web app's 200 HTML.
//!
//! Answers come from a crude retrieval over the embedded documents (shared word stems), enough
//! to cite the right document. Latency and failures are injectable, and every request is
//! recorded (method, path, JSON body) for assertions.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::{json, Value};

/// The API key the fake accepts.
pub const ANYTHINGLLM_KEY: &str = "ALLM-0KX9F2V-fake-developer-key";
/// The workspace the fake has.
pub const WORKSPACE: &str = "sales";
/// AnythingLLM's default refusal text.
pub const DEFAULT_REFUSAL: &str =
    "There is no relevant information in this workspace to answer your query.";

/// A failure the fake answers with instead of its normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `res.sendStatus(n)`: text/plain "Internal Server Error", "Bad Request", …
    PlainStatus(u16),
    /// 500 JSON in the abort shape (the language model is down).
    Exception(String),
    /// 200 with `type:"abort"` and the error.
    AbortInOk(String),
    /// 200 text/html: the web app, as a wrong base URL gets.
    Html,
    /// stream-chat only: a few chunks, then an `abort` event.
    StreamAbort(String),
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The JSON body (`Null` when there was none or it did not parse).
    pub body: Value,
    /// Whether the request carried the right key.
    pub authorized: bool,
}

#[derive(Debug, Clone)]
struct StoredDocument {
    title: String,
    text: String,
    author: String,
    description: String,
    doc_source: String,
}

#[derive(Debug)]
struct FakeState {
    slug: String,
    chat_mode: String,
    system_prompt: Option<String>,
    refusal: Option<String>,
    /// Locations embedded in the workspace, in the order they were added.
    embedded: Vec<String>,
    documents: BTreeMap<String, StoredDocument>,
    requests: Vec<Recorded>,
    /// Waited before answering chat and stream-chat.
    latency: Duration,
    /// Waited between stream chunks.
    chunk_delay: Duration,
    faults: VecDeque<Fault>,
    /// Answered to every chat and stream-chat while set.
    outage: Option<Fault>,
    /// update-embeddings ignores its adds (and still answers 200).
    embeddings_fail: bool,
    /// update-embeddings ignores its deletes (and still answers 200).
    deletes_fail: bool,
    next_chat_id: u64,
    next_uuid: u64,
    /// `(sessionId, message)` of every chat that reached the model.
    chats: Vec<(Option<String>, String)>,
    /// Resets received without a sessionId (they wipe every session-less chat).
    resets_without_session: usize,
}

impl Default for FakeState {
    fn default() -> Self {
        FakeState {
            slug: WORKSPACE.to_owned(),
            chat_mode: "automatic".to_owned(),
            system_prompt: None,
            refusal: None,
            embedded: Vec::new(),
            documents: BTreeMap::new(),
            requests: Vec::new(),
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            faults: VecDeque::new(),
            outage: None,
            embeddings_fail: false,
            deletes_fail: false,
            next_chat_id: 1,
            next_uuid: 1,
            chats: Vec::new(),
            resets_without_session: 0,
        }
    }
}

impl FakeState {
    fn uuid(&mut self) -> String {
        let n = self.next_uuid;
        self.next_uuid += 1;
        format!("00000000-0000-4000-8000-{n:012}")
    }
}

type Shared = Arc<Mutex<FakeState>>;

struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The fake server; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeAnythingLlm {
    state: Shared,
    address: SocketAddr,
    _server: Arc<ServerGuard>,
}

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeAnythingLlm {
    /// Starts the fake on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start() -> FakeAnythingLlm {
        let state: Shared = Arc::new(Mutex::new(FakeState::default()));
        let router = Router::new()
            .route("/api/v1/auth", get(auth))
            .route("/api/v1/workspace/{slug}", get(get_workspace))
            .route("/api/v1/workspace/{slug}/chat", post(chat))
            .route("/api/v1/workspace/{slug}/stream-chat", post(stream_chat))
            .route(
                "/api/v1/workspace/{slug}/vector-search",
                post(vector_search),
            )
            .route(
                "/api/v1/workspace/{slug}/update-embeddings",
                post(update_embeddings),
            )
            .route("/api/v1/workspace/{slug}/update", post(update_workspace))
            .route("/api/v1/document/raw-text", post(raw_text))
            .route("/api/v1/system/remove-documents", delete(remove_documents))
            .fallback(spa)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeAnythingLlm {
            state,
            address,
            _server: Arc::new(ServerGuard(server)),
        }
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.state)
    }

    /// The instance's base URL, as a user configures it (`/api/v1` is the client's business).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// The requests to paths ending in `suffix`.
    pub fn requests_to(&self, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| request.path.ends_with(suffix))
            .collect()
    }

    /// `(sessionId, message)` of every chat that reached the model.
    pub fn chats(&self) -> Vec<(Option<String>, String)> {
        self.state().chats.clone()
    }

    pub fn resets_without_session(&self) -> usize {
        self.state().resets_without_session
    }

    /// Waits `latency` before answering each chat (and before a stream's first chunk).
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Waits `delay` between a stream's chunks.
    pub fn set_chunk_delay(&self, delay: Duration) {
        self.state().chunk_delay = delay;
    }

    /// The next chat or stream-chat gets `fault`.
    pub fn fail_next(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// Every chat and stream-chat gets `fault` until this is called with `None`.
    pub fn set_outage(&self, fault: Option<Fault>) {
        self.state().outage = fault;
    }

    /// update-embeddings leaves its adds out (and still answers 200), as #3607 reports.
    pub fn set_embeddings_fail(&self, fail: bool) {
        self.state().embeddings_fail = fail;
    }

    /// update-embeddings leaves its deletes undone (and still answers 200), the same failure
    /// on the other side.
    pub fn set_deletes_fail(&self, fail: bool) {
        self.state().deletes_fail = fail;
    }

    /// Stores and embeds a document directly, as someone using the web app would.
    pub fn seed_document(&self, title: &str, source: &str, text: &str) -> String {
        let mut state = self.state();
        let location = format!("custom-documents/{}-{}.json", slugify(title), state.uuid());
        state.documents.insert(
            location.clone(),
            StoredDocument {
                title: title.to_owned(),
                text: text.to_owned(),
                author: "Unknown".to_owned(),
                description: "Unknown".to_owned(),
                doc_source: source.to_owned(),
            },
        );
        state.embedded.push(location.clone());
        location
    }

    /// Takes a document out of the workspace, as someone using the web app would.
    pub fn unembed(&self, location: &str) {
        self.state()
            .embedded
            .retain(|embedded| embedded != location);
    }

    /// The embedded documents: `(location, title, text)`.
    pub fn embedded(&self) -> Vec<(String, String, String)> {
        let state = self.state();
        state
            .embedded
            .iter()
            .filter_map(|location| {
                state.documents.get(location).map(|document| {
                    (
                        location.clone(),
                        document.title.clone(),
                        document.text.clone(),
                    )
                })
            })
            .collect()
    }

    /// How many documents are stored (embedded or not).
    pub fn stored_documents(&self) -> usize {
        self.state().documents.len()
    }

    /// The workspace's system prompt and refusal text.
    pub fn persona(&self) -> (Option<String>, Option<String>) {
        let state = self.state();
        (state.system_prompt.clone(), state.refusal.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Plumbing: recording, auth, error shapes

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Value {
    // Express parses JSON and text/plain bodies; anything else is no body at all.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if content_type.contains("json") || content_type.contains("text/plain") {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    } else {
        Value::Null
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    // The server takes `split(" ")[1]`: any scheme word works.
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(' ').nth(1))
        == Some(ANYTHINGLLM_KEY)
}

/// Records the request; answers 403 when the key is wrong.
// A test fake's refusal is the response itself; its size does not matter here.
#[allow(clippy::result_large_err)]
fn admit(
    state: &Shared,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Value, Response> {
    let body = parse_body(headers, body);
    let ok = authorized(headers);
    lock(state).requests.push(Recorded {
        method: method.to_owned(),
        path: path.to_owned(),
        body: body.clone(),
        authorized: ok,
    });
    if ok {
        Ok(body)
    } else {
        Err(json_response(
            StatusCode::FORBIDDEN,
            json!({"error": "No valid api key found."}),
        ))
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn plain_status(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        status.canonical_reason().unwrap_or("Error").to_owned(),
    )
        .into_response()
}

fn html_page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        "<!DOCTYPE html><html lang=\"en\"><head><title>AnythingLLM | Your personal LLM trained on anything</title></head><body><div id=\"root\"></div></body></html>",
    )
        .into_response()
}

fn abort_body(id: &str, error: &str) -> Value {
    json!({"id": id, "type": "abort", "textResponse": null, "sources": [], "close": true, "error": error})
}

fn fault_response(state: &Shared, fault: &Fault) -> Response {
    let id = lock(state).uuid();
    match fault {
        Fault::PlainStatus(status) => plain_status(*status),
        Fault::Exception(message) | Fault::StreamAbort(message) => {
            json_response(StatusCode::INTERNAL_SERVER_ERROR, abort_body(&id, message))
        }
        Fault::AbortInOk(message) => json_response(StatusCode::OK, abort_body(&id, message)),
        Fault::Html => html_page(),
    }
}

/// The web app: any unknown path under `/api` in production.
async fn spa() -> Response {
    html_page()
}

async fn auth(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&state, "GET", "/api/v1/auth", &headers, &Bytes::new()) {
        return refused;
    }
    json_response(StatusCode::OK, json!({"authenticated": true}))
}

// ---------------------------------------------------------------------------------------------
// Retrieval

fn stems(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut stems: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() >= 4)
        .map(|word| word.chars().take(5).collect())
        .collect();
    stems.sort();
    stems.dedup();
    stems
}

struct Hit {
    location: String,
    score: f64,
    excerpt: String,
}

/// The embedded documents sharing stems with `query`, best first, at most `top_n`.
fn retrieve(state: &FakeState, query: &str, top_n: usize, threshold: f64) -> Vec<Hit> {
    let wanted = stems(query);
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<Hit> = state
        .embedded
        .iter()
        .filter_map(|location| {
            let document = state.documents.get(location)?;
            let have = stems(&format!("{} {}", document.title, document.text));
            let shared = wanted.iter().filter(|stem| have.contains(stem)).count();
            let score = shared as f64 / wanted.len() as f64;
            if shared == 0 || score < threshold {
                return None;
            }
            // The paragraph sharing the most stems is the chunk.
            let excerpt = document
                .text
                .split("\n\n")
                .max_by_key(|paragraph| {
                    let paragraph_stems = stems(paragraph);
                    wanted
                        .iter()
                        .filter(|stem| paragraph_stems.contains(stem))
                        .count()
                })
                .unwrap_or_default()
                .trim()
                .to_owned();
            Some(Hit {
                location: location.clone(),
                score,
                excerpt,
            })
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(top_n);
    hits
}

fn source_json(state: &FakeState, hit: &Hit) -> Value {
    let document = state.documents.get(&hit.location);
    let title = document.map_or("", |document| document.title.as_str());
    json!({
        "id": format!("vec-{}", hit.location.len()),
        "url": format!("file:///app/server/storage/documents/{}", hit.location),
        "title": title,
        "docAuthor": document.map_or("", |document| document.author.as_str()),
        "description": document.map_or("", |document| document.description.as_str()),
        "docSource": document.map_or("", |document| document.doc_source.as_str()),
        "chunkSource": "",
        "published": "11/28/2026, 10:00:00 AM",
        "wordCount": hit.excerpt.split_whitespace().count(),
        "token_count_estimate": hit.excerpt.len() / 4,
        "_distance": 1.0 - hit.score,
        "score": hit.score,
        "text": format!(
            "<document_metadata>\nsourceDocument: {title}\npublished: 11/28/2026, 10:00:00 AM\n</document_metadata>\n\n{}",
            hit.excerpt
        ),
    })
}

/// What the model "writes" from the hits: the best excerpt's first sentences.
fn compose(state: &FakeState, hits: &[Hit]) -> String {
    let best = &hits[0];
    let title = state
        .documents
        .get(&best.location)
        .map_or("", |document| document.title.as_str());
    let excerpt: String = best.excerpt.chars().take(300).collect();
    format!("<think>The context has {title}.</think>{excerpt}")
}

// ---------------------------------------------------------------------------------------------
// Chat

/// What one chat request comes to, decided under the lock.
enum ChatPlan {
    Respond(Response),
    Answer {
        id: String,
        text: String,
        sources: Vec<Value>,
        chat_id: Option<u64>,
    },
}

fn plan_chat(state: &Shared, slug: &str, body: &Value, streaming: bool) -> ChatPlan {
    let mut guard = lock(state);
    let id = guard.uuid();
    if let Some(fault) = guard.faults.pop_front().or_else(|| guard.outage.clone()) {
        drop(guard);
        if let (Fault::StreamAbort(message), false) = (&fault, streaming) {
            return ChatPlan::Respond(json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                abort_body(&id, message),
            ));
        }
        if matches!(fault, Fault::StreamAbort(_)) {
            // Handled by the stream: a few chunks, then the abort.
            return ChatPlan::Answer {
                id,
                text: String::new(),
                sources: vec![json!({"abort": fault_message(&fault)})],
                chat_id: None,
            };
        }
        return ChatPlan::Respond(fault_response(state, &fault));
    }
    if slug != guard.slug {
        return ChatPlan::Respond(json_response(
            StatusCode::BAD_REQUEST,
            abort_body(&id, &format!("Workspace {slug} is not a valid workspace.")),
        ));
    }
    let mode = match body.get("mode").and_then(Value::as_str) {
        Some(mode) => mode.to_owned(),
        None => guard.chat_mode.clone(),
    };
    if !["automatic", "chat", "query"].contains(&mode.as_str()) {
        return ChatPlan::Respond(json_response(
            StatusCode::BAD_REQUEST,
            abort_body(&id, &format!("{mode} is not a valid mode.")),
        ));
    }
    let session = body
        .get("sessionId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if body.get("reset").and_then(Value::as_bool) == Some(true) {
        if session.is_none() {
            guard.resets_without_session += 1;
        }
        return ChatPlan::Answer {
            id,
            text: "Chat history was reset!".to_owned(),
            sources: Vec::new(),
            chat_id: None,
        };
    }
    if message.trim().is_empty() {
        return ChatPlan::Respond(json_response(
            StatusCode::BAD_REQUEST,
            abort_body(&id, "Message is empty"),
        ));
    }
    guard.chats.push((session, message.clone()));
    let hits = retrieve(&guard, &message, 4, 0.25);
    if hits.is_empty() {
        if mode == "query" {
            let refusal = guard
                .refusal
                .clone()
                .unwrap_or_else(|| DEFAULT_REFUSAL.to_owned());
            return ChatPlan::Answer {
                id,
                text: refusal,
                sources: Vec::new(),
                chat_id: None,
            };
        }
        // chat (and automatic without tool calling): general knowledge, no sources.
        let chat_id = guard.next_chat_id;
        guard.next_chat_id += 1;
        return ChatPlan::Answer {
            id,
            text: "Sure! Most companies in your situation find our product very useful.".to_owned(),
            sources: Vec::new(),
            chat_id: Some(chat_id),
        };
    }
    let sources = hits.iter().map(|hit| source_json(&guard, hit)).collect();
    let text = compose(&guard, &hits);
    let chat_id = guard.next_chat_id;
    guard.next_chat_id += 1;
    ChatPlan::Answer {
        id,
        text,
        sources,
        chat_id: Some(chat_id),
    }
}

fn fault_message(fault: &Fault) -> String {
    match fault {
        Fault::StreamAbort(message) | Fault::Exception(message) | Fault::AbortInOk(message) => {
            message.clone()
        }
        _ => String::new(),
    }
}

fn latency(state: &Shared) -> (Duration, Duration) {
    let guard = lock(state);
    (guard.latency, guard.chunk_delay)
}

async fn chat(
    State(state): State<Shared>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v1/workspace/{slug}/chat");
    let body = match admit(&state, "POST", &path, &headers, &body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let (wait, _) = latency(&state);
    tokio::time::sleep(wait).await;
    match plan_chat(&state, &slug, &body, false) {
        ChatPlan::Respond(response) => response,
        ChatPlan::Answer {
            id,
            text,
            sources,
            chat_id,
        } => {
            let mut answer = json!({
                "id": id, "type": "textResponse", "close": true, "error": null,
                "textResponse": text, "sources": sources,
            });
            match chat_id {
                Some(chat_id) => {
                    answer["chatId"] = json!(chat_id);
                    answer["metrics"] = json!({"prompt_tokens": 812, "completion_tokens": 64,
                        "total_tokens": 876, "outputTps": 31.2, "duration": 2.05,
                        "model": "fake-llm", "provider": "FakeLLM", "timestamp": "2026-11-28T10:00:00Z"});
                }
                None => answer["metrics"] = json!({}),
            }
            json_response(StatusCode::OK, answer)
        }
    }
}

async fn stream_chat(
    State(state): State<Shared>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v1/workspace/{slug}/stream-chat");
    let body = match admit(&state, "POST", &path, &headers, &body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let plan = plan_chat(&state, &slug, &body, true);
    let (id, text, sources, chat_id) = match plan {
        ChatPlan::Respond(response) => return response,
        ChatPlan::Answer {
            id,
            text,
            sources,
            chat_id,
        } => (id, text, sources, chat_id),
    };
    let (wait, chunk_delay) = latency(&state);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let send = |event: Value| {
            let sender = sender.clone();
            async move {
                sender
                    .send(Ok(Bytes::from(format!("data: {event}\n\n"))))
                    .await
                    .is_ok()
            }
        };
        tokio::time::sleep(wait).await;
        if let Some(abort) = sources.first().and_then(|source| source.get("abort")) {
            for word in ["Pro ", "costs "] {
                send(
                    json!({"uuid": id, "type": "textResponseChunk", "textResponse": word,
                    "sources": [], "close": false, "error": false}),
                )
                .await;
                tokio::time::sleep(chunk_delay).await;
            }
            send(
                json!({"uuid": id, "type": "abort", "textResponse": null, "sources": [],
                "close": true, "error": abort}),
            )
            .await;
            return;
        }
        let Some(chat_id) = chat_id.filter(|_| !sources.is_empty()) else {
            // A refusal (or an unsourced answer, or a reset): one event using `id`, then EOF.
            let mut event = json!({"id": id, "type": "textResponse", "textResponse": text,
                "sources": [], "close": true, "error": null, "metrics": {}});
            if let Some(chat_id) = chat_id {
                event["chatId"] = json!(chat_id);
            }
            send(event).await;
            return;
        };
        let mut pieces: Vec<String> = Vec::new();
        let mut rest = text.as_str();
        // Pieces of a few characters, splitting the <think> tags too.
        while !rest.is_empty() {
            let cut = rest
                .char_indices()
                .nth(9)
                .map_or(rest.len(), |(index, _)| index);
            pieces.push(rest[..cut].to_owned());
            rest = &rest[cut..];
        }
        for piece in pieces {
            if !send(
                json!({"uuid": id, "type": "textResponseChunk", "textResponse": piece,
                "sources": [], "close": false, "error": false}),
            )
            .await
            {
                return;
            }
            tokio::time::sleep(chunk_delay).await;
        }
        send(
            json!({"uuid": id, "type": "textResponseChunk", "textResponse": "",
            "sources": [], "close": true, "error": false}),
        )
        .await;
        send(
            json!({"uuid": id, "type": "finalizeResponseStream", "close": true, "error": false,
            "chatId": chat_id, "metrics": {"model": "fake-llm"}, "sources": sources}),
        )
        .await;
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| plain_status(500))
}

// ---------------------------------------------------------------------------------------------
// Vector search, documents, workspace

async fn vector_search(
    State(state): State<Shared>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v1/workspace/{slug}/vector-search");
    let body = match admit(&state, "POST", &path, &headers, &body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let guard = lock(&state);
    if slug != guard.slug {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("Workspace {slug} is not a valid workspace.")}),
        );
    }
    let query = body.get("query").and_then(Value::as_str).unwrap_or("");
    if query.trim().is_empty() {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"message": "Query parameter cannot be empty."}),
        );
    }
    if guard.embedded.is_empty() {
        return json_response(
            StatusCode::OK,
            json!({"results": [], "message": "No embeddings found for this workspace."}),
        );
    }
    // An invalid topN or threshold falls back to the workspace's values (4, 0.25).
    let top_n = body
        .get("topN")
        .and_then(Value::as_u64)
        .filter(|n| *n >= 1)
        .unwrap_or(4) as usize;
    let threshold = body
        .get("scoreThreshold")
        .and_then(Value::as_f64)
        .filter(|t| (0.0..=1.0).contains(t))
        .unwrap_or(0.25);
    let results: Vec<Value> = retrieve(&guard, query, top_n, threshold)
        .iter()
        .map(|hit| {
            let document = guard.documents.get(&hit.location);
            json!({
                "id": format!("vec-{}", hit.location.len()),
                "text": format!("<document_metadata>\nsourceDocument: x\n</document_metadata>\n\n{}", hit.excerpt),
                "metadata": {
                    "url": format!("file:///app/server/storage/documents/{}", hit.location),
                    "title": document.map_or("", |document| document.title.as_str()),
                    "author": document.map_or("", |document| document.author.as_str()),
                    "description": document.map_or("", |document| document.description.as_str()),
                    "docSource": document.map_or("", |document| document.doc_source.as_str()),
                    "chunkSource": "", "published": "11/28/2026, 10:00:00 AM",
                    "wordCount": 10, "tokenCount": 12,
                },
                "distance": 1.0 - hit.score,
                "score": hit.score,
            })
        })
        .collect();
    json_response(StatusCode::OK, json!({"results": results}))
}

fn slugify(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

async fn raw_text(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match admit(&state, "POST", "/api/v1/document/raw-text", &headers, &body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let text = body
        .get("textContent")
        .and_then(Value::as_str)
        .unwrap_or("");
    let metadata = body.get("metadata").cloned().unwrap_or(Value::Null);
    let field = |key: &str| metadata.get(key).and_then(Value::as_str).map(str::to_owned);
    let Some(title) = field("title").filter(|title| !title.is_empty()) else {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"success": false, "error": "You are missing required metadata key:value pairs in your request. Required metadata key:values are 'title'"}),
        );
    };
    if text.is_empty() {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"success": false, "error": "The 'textContent' key cannot have an empty value."}),
        );
    }
    let mut guard = lock(&state);
    let location = format!(
        "custom-documents/raw-{}-{}.json",
        slugify(&title),
        guard.uuid()
    );
    let document = StoredDocument {
        title: title.clone(),
        text: text.to_owned(),
        author: field("docAuthor").unwrap_or_else(|| "no author specified".to_owned()),
        description: field("description").unwrap_or_else(|| "Unknown".to_owned()),
        doc_source: field("docSource")
            .unwrap_or_else(|| "a text file uploaded by the user.".to_owned()),
    };
    guard.documents.insert(location.clone(), document.clone());
    if body.get("addToWorkspaces").and_then(Value::as_str) == Some(WORKSPACE) {
        guard.embedded.push(location.clone());
    }
    json_response(
        StatusCode::OK,
        json!({"success": true, "error": null, "documents": [{
            "id": guard.uuid(), "url": format!("file://{location}"), "title": title,
            "docAuthor": document.author, "description": document.description,
            "docSource": document.doc_source, "chunkSource": "", "published": "11/28/2026",
            "wordCount": text.split_whitespace().count(), "pageContent": text,
            "token_count_estimate": text.len() / 4, "location": location,
        }]}),
    )
}

fn workspace_json(state: &FakeState) -> Value {
    let documents: Vec<Value> = state
        .embedded
        .iter()
        .enumerate()
        .filter_map(|(index, location)| {
            let document = state.documents.get(location)?;
            let metadata = json!({
                "title": document.title, "docAuthor": document.author,
                "description": document.description, "docSource": document.doc_source,
                "chunkSource": "", "published": "11/28/2026",
            });
            Some(json!({
                "id": index + 1, "docId": format!("doc-{index}"),
                "filename": location.rsplit('/').next().unwrap_or_default(),
                "docpath": location, "workspaceId": 1,
                "metadata": metadata.to_string(), "pinned": false, "watched": false,
            }))
        })
        .collect();
    json!({
        "id": 1, "name": "Sales", "slug": state.slug, "chatMode": state.chat_mode,
        "openAiPrompt": state.system_prompt, "queryRefusalResponse": state.refusal,
        "similarityThreshold": 0.25, "topN": 4, "openAiHistory": 20,
        "documents": documents, "threads": [],
    })
}

async fn get_workspace(
    State(state): State<Shared>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/api/v1/workspace/{slug}");
    if let Err(refused) = admit(&state, "GET", &path, &headers, &Bytes::new()) {
        return refused;
    }
    let guard = lock(&state);
    if slug != guard.slug {
        // An unknown slug is a 200 with an empty array.
        return json_response(StatusCode::OK, json!({"workspace": []}));
    }
    json_response(
        StatusCode::OK,
        json!({"workspace": [workspace_json(&guard)]}),
    )
}

async fn update_workspace(
    State(state): State<Shared>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v1/workspace/{slug}/update");
    let body = match admit(&state, "POST", &path, &headers, &body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let mut guard = lock(&state);
    if slug != guard.slug {
        return plain_status(400);
    }
    if let Some(prompt) = body.get("openAiPrompt").and_then(Value::as_str) {
        guard.system_prompt = Some(prompt.to_owned());
    }
    if let Some(refusal) = body.get("queryRefusalResponse").and_then(Value::as_str) {
        guard.refusal = Some(refusal.to_owned());
    }
    if let Some(mode) = body.get("chatMode").and_then(Value::as_str) {
        guard.chat_mode = mode.to_owned();
    }
    json_response(
        StatusCode::OK,
        json!({"workspace": workspace_json(&guard), "message": null}),
    )
}

async fn update_embeddings(
    State(state): State<Shared>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v1/workspace/{slug}/update-embeddings");
    let body = match admit(&state, "POST", &path, &headers, &body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let mut guard = lock(&state);
    if slug != guard.slug {
        return plain_status(400);
    }
    let list = |key: &str| -> Vec<String> {
        body.get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    if !guard.deletes_fail {
        for delete in list("deletes") {
            guard.embedded.retain(|embedded| *embedded != delete);
        }
    }
    for add in list("adds") {
        // A path that is not a stored document (a file name instead of a location) is skipped
        // silently, and the answer is 200 all the same.
        if !guard.embeddings_fail
            && guard.documents.contains_key(&add)
            && !guard.embedded.contains(&add)
        {
            guard.embedded.push(add);
        }
    }
    json_response(StatusCode::OK, json!({"workspace": workspace_json(&guard)}))
}

async fn remove_documents(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match admit(
        &state,
        "DELETE",
        "/api/v1/system/remove-documents",
        &headers,
        &body,
    ) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let mut guard = lock(&state);
    for name in body
        .get("names")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        guard.documents.remove(name);
        guard.embedded.retain(|embedded| embedded != name);
    }
    json_response(
        StatusCode::OK,
        json!({"success": true, "message": "Documents removed successfully"}),
    )
}
