//! The AnythingLLM client: a workspace's chat in query mode (whole and streamed), vector
//! search, raw-text documents, update-embeddings, and the workspace's settings. AnythingLLM's
//! JSON stays in this module ([`wire`]); callers get plain types and errors they can branch on.
//!
//! The contract is `shared/reference/anythingllm-api.md`, read from AnythingLLM's code: a bad
//! key is 403 `{"error"}`; a query-mode refusal is a 200 with no sources and no `chatId`; a 200
//! can carry `type:"abort"`; an unknown path answers 200 HTML; `update-embeddings` answers 200
//! whatever became of the paths, so they are checked; a workspace read returns an array.
//! The API key is a [`SecretString`] sent only in the `Authorization` header: it never appears in
//! an error, a log line or a `Debug` print.

mod stream;
mod wire;

use std::time::Duration;

use closer_model::{Citation, KnowledgeAnswer};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

pub use stream::{strip_think, StreamEvent, StreamParser};
use wire::{ChatResponse, WireSource};

/// Where the workspace is and how to reach it.
#[derive(Debug, Clone)]
pub struct AnythingLlmSettings {
    /// The instance, e.g. `http://localhost:3001` (`/api/v1` is added when missing).
    pub base_url: String,
    /// The workspace's slug.
    pub workspace: String,
    pub api_key: SecretString,
    /// A bound on every request (a stream is bounded per read, not as a whole).
    pub request_timeout: Duration,
}

/// What went wrong talking to AnythingLLM. No variant carries the API key or a URL with it.
#[derive(Debug, thiserror::Error)]
pub enum AnythingLlmError {
    /// 403 `{"error":"No valid api key found."}`: the key is wrong or was revoked.
    #[error("AnythingLLM refused the API key (HTTP 403)")]
    Unauthorized,
    /// The workspace's slug is unknown to the instance.
    #[error("AnythingLLM has no workspace {0:?}")]
    UnknownWorkspace(String),
    /// No answer within the time allowed.
    #[error("AnythingLLM did not answer in time")]
    Timeout,
    /// No connection, or the connection broke.
    #[error("AnythingLLM is unreachable: {0}")]
    Unreachable(String),
    /// A page instead of JSON: a wrong base URL reaches AnythingLLM's web app, which answers
    /// 200 HTML for any unknown path.
    #[error(
        "AnythingLLM answered HTTP {status} with {content_type}, not JSON: check the base URL"
    )]
    NotJson { status: u16, content_type: String },
    /// An error status with its message (400 "Message is empty", 500 "Internal Server Error", …).
    #[error("AnythingLLM answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    /// `type:"abort"`, in a 200 or in a stream: the answer failed (the language model is down…).
    #[error("AnythingLLM could not answer: {0}")]
    Aborted(String),
    /// update-embeddings answered 200 but these documents are not (or still) in the workspace.
    #[error("AnythingLLM did not apply the embeddings of {0:?}")]
    NotEmbedded(Vec<String>),
    /// An answer that does not follow the contract.
    #[error("AnythingLLM's answer does not parse: {0}")]
    Malformed(String),
}

impl AnythingLlmError {
    /// Whether a later attempt may succeed without anyone changing the configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            AnythingLlmError::Timeout
            | AnythingLlmError::Unreachable(_)
            | AnythingLlmError::Aborted(_) => true,
            AnythingLlmError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// One document a chat answer was drawn from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The title as a prospect can read it.
    pub title: String,
    /// Where it came from: Closer's file name for documents `closer kb sync` pushed, else the
    /// document's URL or title.
    pub source: String,
    /// The chunk's text without its `<document_metadata>` header.
    pub excerpt: String,
    /// 0..1, one minus the cosine distance, when the vector database gives it.
    pub score: Option<f32>,
}

/// A chat answer drawn from the workspace's documents.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    /// The answer with any `<think>` section removed.
    pub text: String,
    /// Never empty: an answer without sources is [`ChatOutcome::Unsourced`].
    pub sources: Vec<Source>,
}

impl ChatAnswer {
    /// The answer as the knowledge base's answer: one citation per document, best first.
    pub fn to_knowledge_answer(&self) -> KnowledgeAnswer {
        let mut citations: Vec<Citation> = Vec::new();
        for source in &self.sources {
            if !citations
                .iter()
                .any(|citation| citation.source == source.source)
            {
                citations.push(Citation {
                    title: source.title.clone(),
                    source: source.source.clone(),
                });
            }
        }
        let score = self
            .sources
            .iter()
            .filter_map(|source| source.score)
            .fold(0.0_f32, f32::max);
        KnowledgeAnswer {
            text: self.text.clone(),
            citations,
            score,
        }
    }
}

/// What a chat in query mode gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatOutcome {
    /// An answer with the documents it came from.
    Answered(ChatAnswer),
    /// The query-mode refusal: no context was found (no sources, no `chatId`).
    Refused { text: String },
    /// Text without any source: never presented to a prospect as fact.
    Unsourced { text: String },
}

/// One hit of a vector search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub title: String,
    pub source: String,
    pub excerpt: String,
    pub score: Option<f32>,
}

/// The metadata a raw-text document is stored with; it comes back in chat sources.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentMetadata<'a> {
    pub title: &'a str,
    /// Closer's file name (`tarify.md`), sent as `docSource`, so citations name it.
    pub source: &'a str,
    pub description: &'a str,
}

/// A document stored by AnythingLLM, not yet (or no longer) embedded in a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// `custom-documents/raw-<title>-<uuid>.json`: what update-embeddings takes.
    pub location: String,
    pub title: String,
}

/// A workspace as [`AnythingLlm::workspace`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub slug: String,
    pub name: String,
    pub chat_mode: Option<String>,
    /// The system prompt (`openAiPrompt`).
    pub system_prompt: Option<String>,
    /// The query-mode refusal text (`queryRefusalResponse`).
    pub refusal_text: Option<String>,
    /// Every embedded document.
    pub documents: Vec<WorkspaceDocument>,
}

impl Workspace {
    /// Whether the document at `location` is embedded.
    pub fn embeds(&self, location: &str) -> bool {
        self.documents
            .iter()
            .any(|document| document.location == location)
    }
}

/// A document embedded in a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceDocument {
    /// Its `docpath`, the `location` it was stored at.
    pub location: String,
    /// From its stored metadata (a JSON string in the answer).
    pub title: Option<String>,
    pub author: Option<String>,
    pub source: Option<String>,
}

/// The author `closer kb sync` gives its documents, to recognise them in a workspace.
pub const CLOSER_AUTHOR: &str = "Closer kb sync";

/// A conversation's history partition at AnythingLLM (`sessionId`): never empty, because a
/// reset without one wipes every conversation of the workspace that has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A session id from a conversation's stable key; `None` for an empty one.
    pub fn parse(key: &str) -> Option<SessionId> {
        let key = key.trim();
        (!key.is_empty()).then(|| SessionId(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The chat mode. Only `query` answers strictly from the documents (and refuses otherwise);
/// it is what a sales assistant uses. The mode is always sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatMode {
    Query,
    Chat,
}

impl ChatMode {
    fn as_str(self) -> &'static str {
        match self {
            ChatMode::Query => "query",
            ChatMode::Chat => "chat",
        }
    }
}

/// A client of one AnythingLLM workspace. Cheap to clone.
#[derive(Clone)]
pub struct AnythingLlm {
    http: reqwest::Client,
    /// `…/api/v1`, without a trailing slash.
    api: String,
    workspace: String,
    api_key: SecretString,
}

impl std::fmt::Debug for AnythingLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnythingLlm")
            .field("api", &self.api)
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl AnythingLlm {
    /// A client of `settings.workspace`; it connects on first use.
    ///
    /// # Errors
    /// [`AnythingLlmError::Unreachable`] when no HTTP client can be built (no TLS backend).
    pub fn new(settings: &AnythingLlmSettings) -> Result<AnythingLlm, AnythingLlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(5)))
            .read_timeout(settings.request_timeout)
            .build()
            .map_err(|error| AnythingLlmError::Unreachable(error.without_url().to_string()))?;
        let base = settings.base_url.trim().trim_end_matches('/');
        let api = if base.ends_with("/api/v1") {
            base.to_owned()
        } else if base.ends_with("/api") {
            format!("{base}/v1")
        } else {
            format!("{base}/api/v1")
        };
        Ok(AnythingLlm {
            http,
            api,
            workspace: settings.workspace.clone(),
            api_key: settings.api_key.clone(),
        })
    }

    pub fn workspace_slug(&self) -> &str {
        &self.workspace
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.api)
    }

    fn workspace_url(&self, action: &str) -> String {
        let slug = url_segment(&self.workspace);
        if action.is_empty() {
            self.url(&format!("workspace/{slug}"))
        } else {
            self.url(&format!("workspace/{slug}/{action}"))
        }
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(self.api_key.expose_secret())
    }

    /// Checks the key (`GET /v1/auth`).
    ///
    /// # Errors
    /// [`AnythingLlmError::Unauthorized`] for a bad key; the transport's errors.
    pub async fn check_auth(&self) -> Result<(), AnythingLlmError> {
        let response = send(self.request(reqwest::Method::GET, self.url("auth"))).await?;
        let _: serde_json::Value = read_json(response, &self.workspace).await?;
        Ok(())
    }

    /// Asks the workspace, in `mode`, within the conversation's session.
    ///
    /// # Errors
    /// Every [`AnythingLlmError`] but [`AnythingLlmError::NotEmbedded`]; a refusal is not an
    /// error but [`ChatOutcome::Refused`].
    pub async fn chat(
        &self,
        message: &str,
        mode: ChatMode,
        session: &SessionId,
    ) -> Result<ChatOutcome, AnythingLlmError> {
        let body = wire::ChatRequest {
            message,
            mode: mode.as_str(),
            session_id: session.as_str(),
            reset: false,
        };
        let response = send(
            self.request(reqwest::Method::POST, self.workspace_url("chat"))
                .json(&body),
        )
        .await?;
        let answer: ChatResponse = read_json(response, &self.workspace).await?;
        if answer.kind.as_deref() == Some("abort") {
            return Err(AnythingLlmError::Aborted(
                answer
                    .error_message()
                    .unwrap_or_else(|| "no reason given".to_owned()),
            ));
        }
        Ok(classify_answer(answer))
    }

    /// Asks the workspace and streams the answer as it is written.
    ///
    /// # Errors
    /// The errors of [`AnythingLlm::chat`] that come before the stream starts (400 JSON, 403).
    pub async fn stream_chat(
        &self,
        message: &str,
        mode: ChatMode,
        session: &SessionId,
    ) -> Result<ChatStream, AnythingLlmError> {
        let body = wire::ChatRequest {
            message,
            mode: mode.as_str(),
            session_id: session.as_str(),
            reset: false,
        };
        let response = send(
            self.request(reqwest::Method::POST, self.workspace_url("stream-chat"))
                .json(&body),
        )
        .await?;
        let content_type = content_type(&response);
        if !response.status().is_success() || !content_type.starts_with("text/event-stream") {
            // Validation errors come as JSON before the stream; read them as a chat answer.
            let answer: ChatResponse = read_json(response, &self.workspace).await?;
            return Err(match answer.error_message() {
                Some(message) => AnythingLlmError::Aborted(message),
                None => AnythingLlmError::Malformed(format!(
                    "stream-chat answered {content_type}, not an event stream"
                )),
            });
        }
        Ok(ChatStream {
            response,
            parser: StreamParser::default(),
            queued: std::collections::VecDeque::new(),
            ended: false,
        })
    }

    /// Forgets the session's history at AnythingLLM. It takes a [`SessionId`], never nothing:
    /// a reset without a session would wipe every session-less chat of the workspace.
    ///
    /// # Errors
    /// As [`AnythingLlm::chat`].
    pub async fn reset_session(&self, session: &SessionId) -> Result<(), AnythingLlmError> {
        let body = wire::ChatRequest {
            message: "",
            mode: ChatMode::Query.as_str(),
            session_id: session.as_str(),
            reset: true,
        };
        let response = send(
            self.request(reqwest::Method::POST, self.workspace_url("chat"))
                .json(&body),
        )
        .await?;
        let _: ChatResponse = read_json(response, &self.workspace).await?;
        Ok(())
    }

    /// The workspace's chunks nearest to `query`, with no language model involved.
    ///
    /// # Errors
    /// The transport's and the contract's errors; no vectors is an empty list, not an error.
    pub async fn vector_search(
        &self,
        query: &str,
        top_n: u32,
        score_threshold: f64,
    ) -> Result<Vec<SearchHit>, AnythingLlmError> {
        let body = wire::VectorSearchRequest {
            query,
            top_n,
            score_threshold,
        };
        let response = send(
            self.request(reqwest::Method::POST, self.workspace_url("vector-search"))
                .json(&body),
        )
        .await?;
        let found: wire::VectorSearchResponse = read_json(response, &self.workspace).await?;
        if found.results.is_empty() {
            if let Some(message) = found.message {
                tracing::debug!(%message, "vector search found nothing");
            }
        }
        Ok(found
            .results
            .into_iter()
            .map(|hit| {
                let title = hit
                    .metadata
                    .title
                    .clone()
                    .unwrap_or_else(|| "document".to_owned());
                SearchHit {
                    source: hit
                        .metadata
                        .doc_source
                        .clone()
                        .filter(|source| !source.is_empty())
                        .or(hit.metadata.url.clone())
                        .unwrap_or_else(|| title.clone()),
                    title,
                    excerpt: strip_document_metadata(hit.text.as_deref().unwrap_or_default()),
                    score: hit.score.map(|score| score as f32),
                }
            })
            .collect())
    }

    /// Stores `text` as a document (not yet embedded in any workspace).
    ///
    /// # Errors
    /// 422 for a missing title or empty text as [`AnythingLlmError::Status`]; the transport's.
    pub async fn upload_raw_text(
        &self,
        text: &str,
        metadata: &DocumentMetadata<'_>,
    ) -> Result<StoredDocument, AnythingLlmError> {
        let body = wire::RawTextRequest {
            text_content: text,
            metadata: wire::RawTextMetadata {
                title: metadata.title,
                doc_author: CLOSER_AUTHOR,
                description: metadata.description,
                doc_source: metadata.source,
            },
        };
        let response = send(
            self.request(reqwest::Method::POST, self.url("document/raw-text"))
                .json(&body),
        )
        .await?;
        let uploaded: wire::UploadResponse = read_json(response, &self.workspace).await?;
        if !uploaded.success {
            return Err(AnythingLlmError::Status {
                status: 200,
                message: uploaded.error.unwrap_or_else(|| "not stored".to_owned()),
            });
        }
        let document =
            uploaded.documents.into_iter().next().ok_or_else(|| {
                AnythingLlmError::Malformed("raw-text stored no document".to_owned())
            })?;
        let location = document.location.ok_or_else(|| {
            AnythingLlmError::Malformed("raw-text's document has no location".to_owned())
        })?;
        Ok(StoredDocument {
            location,
            title: document.title.unwrap_or_else(|| metadata.title.to_owned()),
        })
    }

    /// Embeds `adds` into the workspace and takes `deletes` out of it (both `location`s), then
    /// checks the answer: update-embeddings answers 200 even when a path failed.
    ///
    /// # Errors
    /// [`AnythingLlmError::NotEmbedded`] naming the paths that did not take; the transport's.
    pub async fn update_embeddings(
        &self,
        adds: &[String],
        deletes: &[String],
    ) -> Result<Workspace, AnythingLlmError> {
        let body = wire::UpdateEmbeddingsRequest { adds, deletes };
        let response = send(
            self.request(
                reqwest::Method::POST,
                self.workspace_url("update-embeddings"),
            )
            .json(&body),
        )
        .await?;
        let envelope: wire::WorkspaceEnvelope<wire::WorkspaceWire> =
            read_json(response, &self.workspace).await?;
        let workspace = envelope
            .workspace
            .map(workspace_from_wire)
            .ok_or_else(|| AnythingLlmError::UnknownWorkspace(self.workspace.clone()))?;
        let missing: Vec<String> = adds
            .iter()
            .filter(|add| !workspace.embeds(add))
            .chain(deletes.iter().filter(|delete| workspace.embeds(delete)))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(AnythingLlmError::NotEmbedded(missing));
        }
        Ok(workspace)
    }

    /// Deletes stored documents from the instance (after they left the workspace).
    ///
    /// # Errors
    /// The transport's and the contract's errors.
    pub async fn remove_documents(&self, locations: &[String]) -> Result<(), AnythingLlmError> {
        if locations.is_empty() {
            return Ok(());
        }
        let body = wire::RemoveDocumentsRequest { names: locations };
        let response = send(
            self.request(reqwest::Method::DELETE, self.url("system/remove-documents"))
                .json(&body),
        )
        .await?;
        let _: serde_json::Value = read_json(response, &self.workspace).await?;
        Ok(())
    }

    /// The workspace, or `None` when the slug is unknown (AnythingLLM answers `[]`).
    ///
    /// # Errors
    /// The transport's and the contract's errors.
    pub async fn workspace(&self) -> Result<Option<Workspace>, AnythingLlmError> {
        let response = send(self.request(reqwest::Method::GET, self.workspace_url(""))).await?;
        let envelope: wire::WorkspaceEnvelope<Vec<wire::WorkspaceWire>> =
            read_json(response, &self.workspace).await?;
        Ok(envelope
            .workspace
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(workspace_from_wire))
    }

    /// Sets the workspace's system prompt and its query-mode refusal text.
    ///
    /// # Errors
    /// [`AnythingLlmError::UnknownWorkspace`]; the transport's and the contract's errors.
    pub async fn update_workspace(
        &self,
        system_prompt: &str,
        refusal_text: &str,
    ) -> Result<(), AnythingLlmError> {
        let body = wire::WorkspaceUpdateRequest {
            open_ai_prompt: system_prompt,
            query_refusal_response: refusal_text,
        };
        let response = send(
            self.request(reqwest::Method::POST, self.workspace_url("update"))
                .json(&body),
        )
        .await?;
        let _: serde_json::Value = read_json(response, &self.workspace).await?;
        Ok(())
    }
}

/// A streamed answer being read.
#[derive(Debug)]
pub struct ChatStream {
    response: Response,
    parser: StreamParser,
    queued: std::collections::VecDeque<StreamEvent>,
    ended: bool,
}

impl ChatStream {
    /// The next piece of the answer, or its end; `None` after [`StreamEvent::Done`].
    ///
    /// # Errors
    /// [`AnythingLlmError::Aborted`] mid-stream; a broken connection; a stream that ends early.
    pub async fn next(&mut self) -> Result<Option<StreamEvent>, AnythingLlmError> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            match self.response.chunk().await.map_err(transport_error)? {
                Some(bytes) => self.queued.extend(self.parser.feed(&bytes)?),
                None => {
                    self.ended = true;
                    self.queued.extend(self.parser.finish()?);
                }
            }
        }
    }
}

/// Turns a chat answer (not an abort) into its outcome.
pub(crate) fn classify_answer(answer: ChatResponse) -> ChatOutcome {
    let has_chat_id = answer.has_chat_id();
    let text = strip_think(answer.text_response.as_deref().unwrap_or_default());
    let sources: Vec<Source> = answer
        .sources
        .unwrap_or_default()
        .into_iter()
        .map(source_from_wire)
        .collect();
    if sources.is_empty() {
        if has_chat_id {
            ChatOutcome::Unsourced { text }
        } else {
            ChatOutcome::Refused { text }
        }
    } else if text.is_empty() {
        ChatOutcome::Unsourced { text }
    } else {
        ChatOutcome::Answered(ChatAnswer { text, sources })
    }
}

fn source_from_wire(source: WireSource) -> Source {
    let title = source
        .title
        .clone()
        .filter(|title| !title.trim().is_empty())
        .unwrap_or_else(|| "document".to_owned());
    let origin = source
        .doc_source
        .filter(|origin| !origin.trim().is_empty() && !origin.contains(' '))
        .or(source.url.filter(|url| !url.trim().is_empty()))
        .unwrap_or_else(|| title.clone());
    Source {
        title,
        source: origin,
        excerpt: strip_document_metadata(source.text.as_deref().unwrap_or_default()),
        score: source.score.map(|score| score as f32),
    }
}

/// A chunk's text without the `<document_metadata>…</document_metadata>` header.
pub fn strip_document_metadata(text: &str) -> String {
    const CLOSE: &str = "</document_metadata>";
    let text = text.trim_start();
    match (text.starts_with("<document_metadata>"), text.find(CLOSE)) {
        (true, Some(end)) => text[end + CLOSE.len()..].trim().to_owned(),
        _ => text.trim().to_owned(),
    }
}

fn workspace_from_wire(workspace: wire::WorkspaceWire) -> Workspace {
    Workspace {
        slug: workspace.slug.unwrap_or_default(),
        name: workspace.name.unwrap_or_default(),
        chat_mode: workspace.chat_mode,
        system_prompt: workspace.open_ai_prompt,
        refusal_text: workspace.query_refusal_response,
        documents: workspace
            .documents
            .into_iter()
            .filter_map(|document| {
                let metadata: serde_json::Value = document
                    .metadata
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or_default();
                let field = |key: &str| {
                    metadata
                        .get(key)
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                };
                Some(WorkspaceDocument {
                    location: document.docpath?,
                    title: field("title"),
                    author: field("docAuthor"),
                    source: field("docSource"),
                })
            })
            .collect(),
    }
}

/// A slug as one path segment: slugs are lower-case words and dashes; anything else is escaped.
fn url_segment(slug: &str) -> String {
    slug.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

async fn send(request: reqwest::RequestBuilder) -> Result<Response, AnythingLlmError> {
    request.send().await.map_err(transport_error)
}

/// A request that got no answer. The URL is left out (it names the instance, harmless, but
/// keeping errors free of URLs is one rule less to think about); the key is only in a header.
fn transport_error(error: reqwest::Error) -> AnythingLlmError {
    let error = error.without_url();
    if error.is_timeout() {
        return AnythingLlmError::Timeout;
    }
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    AnythingLlmError::Unreachable(reason)
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Reads a JSON answer, or the error it means: 403 for the key, a page instead of JSON, the
/// abort shape or `{"message"}`/`{"error"}` with an error status, plain-text statuses.
async fn read_json<T: DeserializeOwned>(
    response: Response,
    workspace: &str,
) -> Result<T, AnythingLlmError> {
    let status = response.status();
    let content_type = content_type(&response);
    let body = response.text().await.map_err(transport_error)?;
    if status == StatusCode::FORBIDDEN && !body.contains("deletion is blocked") {
        return Err(AnythingLlmError::Unauthorized);
    }
    let is_json = content_type.contains("json")
        || (content_type.is_empty() && body.trim_start().starts_with('{'));
    if content_type.contains("html") || (status.is_success() && !is_json) {
        return Err(AnythingLlmError::NotJson {
            status: status.as_u16(),
            content_type: if content_type.is_empty() {
                "no content type".to_owned()
            } else {
                content_type
            },
        });
    }
    if !status.is_success() {
        let message = if is_json {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|value| {
                    ["error", "message"].iter().find_map(|key| {
                        value
                            .get(key)
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned)
                    })
                })
                .unwrap_or_else(|| shorten(&body))
        } else {
            shorten(&body)
        };
        if status == StatusCode::BAD_REQUEST && message.contains("is not a valid workspace") {
            return Err(AnythingLlmError::UnknownWorkspace(workspace.to_owned()));
        }
        return Err(AnythingLlmError::Status {
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_str(&body).map_err(|error| AnythingLlmError::Malformed(error.to_string()))
}

fn shorten(body: &str) -> String {
    body.trim().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_has_no_sources_and_no_chat_id() {
        let refusal: ChatResponse = serde_json::from_str(
            r#"{"id":"x","type":"textResponse","textResponse":"There is no relevant information in this workspace to answer your query.","sources":[],"close":true,"error":null,"metrics":{}}"#,
        )
        .expect("parses");
        assert!(matches!(
            classify_answer(refusal),
            ChatOutcome::Refused { .. }
        ));
        let unsourced: ChatResponse = serde_json::from_str(
            r#"{"id":"x","type":"textResponse","textResponse":"Sure!","sources":[],"close":true,"error":null,"chatId":7}"#,
        )
        .expect("parses");
        assert!(matches!(
            classify_answer(unsourced),
            ChatOutcome::Unsourced { .. }
        ));
    }

    #[test]
    fn sources_become_readable_citations() {
        let answer: ChatResponse = serde_json::from_str(
            r#"{"id":"x","type":"textResponse","textResponse":"<think>price?</think>Pro costs 10.","chatId":42,"error":null,
               "sources":[{"id":"v1","url":"file:///x/pricing.txt","title":"Pricing","docSource":"en-pricing.md","_distance":0.41,"score":0.59,
                 "text":"<document_metadata>\nsourceDocument: pricing.txt\npublished: 1/16/2024\n</document_metadata>\n\nPro plan: 10 USD"},
                 {"title":"Pricing","docSource":"en-pricing.md","text":"More","score":0.5},
                 {"title":"FAQ","url":"file:///x/faq.txt","docSource":"a text file uploaded by the user.","text":"Q","score":0.3}]}"#,
        )
        .expect("parses");
        let ChatOutcome::Answered(answer) = classify_answer(answer) else {
            panic!("an answer");
        };
        assert_eq!(answer.text, "Pro costs 10.");
        assert_eq!(answer.sources[0].excerpt, "Pro plan: 10 USD");
        let knowledge = answer.to_knowledge_answer();
        let cited: Vec<(&str, &str)> = knowledge
            .citations
            .iter()
            .map(|citation| (citation.title.as_str(), citation.source.as_str()))
            .collect();
        assert_eq!(
            cited,
            [("Pricing", "en-pricing.md"), ("FAQ", "file:///x/faq.txt")]
        );
        assert!((knowledge.score - 0.59).abs() < 1e-6);
    }

    #[test]
    fn the_key_never_prints() {
        let client = AnythingLlm::new(&AnythingLlmSettings {
            base_url: "http://127.0.0.1:1/".to_owned(),
            workspace: "sales".to_owned(),
            api_key: SecretString::from("sk-very-secret"),
            request_timeout: Duration::from_secs(1),
        })
        .expect("a client");
        assert!(!format!("{client:?}").contains("sk-very-secret"));
        assert_eq!(client.api, "http://127.0.0.1:1/api/v1");
    }

    #[test]
    fn a_session_id_is_never_empty() {
        assert_eq!(SessionId::parse("  "), None);
        assert_eq!(
            SessionId::parse("telegram:42").map(|id| id.0),
            Some("telegram:42".to_owned())
        );
    }
}
