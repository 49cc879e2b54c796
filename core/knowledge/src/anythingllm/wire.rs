//! AnythingLLM's JSON, as its code (not its swagger) writes it: every field optional or
//! defaulted, because the fields vary by version and vector database.

use serde::{Deserialize, Serialize};

/// The body of `/chat` and `/stream-chat`. `mode` is always sent: left out, the workspace's
/// `chatMode` applies, which may be `automatic` (the agent) on new workspaces.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatRequest<'a> {
    pub message: &'a str,
    pub mode: &'static str,
    pub session_id: &'a str,
    pub reset: bool,
}

/// A chat answer, an error answer (`type:"abort"`), or one event of a stream.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ChatResponse {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text_response: Option<String>,
    pub sources: Option<Vec<WireSource>>,
    pub close: Option<bool>,
    /// `null`, `false` (stream chunks) or the error's message.
    pub error: serde_json::Value,
    pub chat_id: Option<serde_json::Value>,
}

impl ChatResponse {
    /// The error's message, when the answer carries one.
    pub fn error_message(&self) -> Option<String> {
        match &self.error {
            serde_json::Value::String(message) if !message.is_empty() => Some(message.clone()),
            serde_json::Value::Null | serde_json::Value::Bool(false) => None,
            serde_json::Value::String(_) => None,
            other => Some(other.to_string()),
        }
    }

    /// Whether the answer was stored as a chat (a refusal is not: it has no `chatId`).
    pub fn has_chat_id(&self) -> bool {
        self.chat_id.as_ref().is_some_and(|value| !value.is_null())
    }
}

/// One entry of `sources[]`: the chunk's stored metadata, its `text` and its `score`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WireSource {
    pub title: Option<String>,
    pub url: Option<String>,
    pub doc_source: Option<String>,
    pub description: Option<String>,
    pub text: Option<String>,
    pub score: Option<f64>,
}

/// The body of `/vector-search`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VectorSearchRequest<'a> {
    pub query: &'a str,
    #[serde(rename = "topN")]
    pub top_n: u32,
    pub score_threshold: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct VectorSearchResponse {
    pub results: Vec<VectorSearchResult>,
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct VectorSearchResult {
    pub text: Option<String>,
    pub metadata: VectorSearchMetadata,
    pub score: Option<f64>,
}

/// Vector search renames the chunk's fields (`docAuthor` → `author`); only what we read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct VectorSearchMetadata {
    pub title: Option<String>,
    pub url: Option<String>,
    pub doc_source: Option<String>,
}

/// The body of `/document/raw-text`. The workspace is not named: embedding is a separate,
/// verified step (update-embeddings).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawTextRequest<'a> {
    pub text_content: &'a str,
    pub metadata: RawTextMetadata<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawTextMetadata<'a> {
    pub title: &'a str,
    pub doc_author: &'a str,
    pub description: &'a str,
    pub doc_source: &'a str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UploadResponse {
    pub success: bool,
    pub error: Option<String>,
    pub documents: Vec<UploadedDocumentWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UploadedDocumentWire {
    pub location: Option<String>,
    pub title: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct UpdateEmbeddingsRequest<'a> {
    pub adds: &'a [String],
    pub deletes: &'a [String],
}

/// `update-embeddings` and update answer `{"workspace": {…}}`, get answers `{"workspace": [{…}]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WorkspaceEnvelope<T> {
    pub workspace: Option<T>,
    pub message: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WorkspaceWire {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub chat_mode: Option<String>,
    pub open_ai_prompt: Option<String>,
    pub query_refusal_response: Option<String>,
    pub documents: Vec<WorkspaceDocumentWire>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct WorkspaceDocumentWire {
    pub docpath: Option<String>,
    pub filename: Option<String>,
    /// A JSON string, not an object.
    pub metadata: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkspaceUpdateRequest<'a> {
    pub open_ai_prompt: &'a str,
    pub query_refusal_response: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct RemoveDocumentsRequest<'a> {
    pub names: &'a [String],
}
