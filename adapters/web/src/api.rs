//! The console's data as JSON under `/api`, for scripts and integrations: each page's data,
//! and the same actions (take over, hand back, write, retry). Every call needs a session or an
//! API token ([`ApiUser`]); a session's state-changing calls need the `X-CSRF-Token` header.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Duration, Utc};
use closer_engine::EngineError;
use closer_knowledge::AudienceFilter;
use closer_model::{Channel, ComponentState, ComponentStatus, Lead};
use closer_store::{
    ConsoleMessage, ConversationFilter, ConversationRecord, ConversationSummary, OutboxEntry,
    Period, StoreError,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::ApiUser;
use crate::WebState;

/// A JSON error: `{"error": "..."}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// A store failure as the console shows it: 503, without SQL or URLs.
pub fn store_error(failure: &StoreError) -> Response {
    tracing::warn!(error = %failure, "a console request failed in the store");
    error(StatusCode::SERVICE_UNAVAILABLE, failure.user_message())
}

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/dashboard", get(dashboard))
        .route("/api/conversations", get(conversations))
        .route("/api/conversations/{id}", get(conversation))
        .route("/api/conversations/{id}/take-over", post(take_over))
        .route("/api/conversations/{id}/hand-back", post(hand_back))
        .route("/api/conversations/{id}/messages", post(write))
        .route("/api/leads", get(leads))
        .route("/api/leads.csv", get(leads_csv))
        .route("/api/leads/{id}/retry", post(retry))
        .route(
            "/api/knowledge/documents",
            get(documents)
                .post(upload_document)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::knowledge::MAX_UPLOAD_BODY_BYTES,
                )),
        )
        .route(
            "/api/knowledge/documents/{*source}",
            axum::routing::delete(delete_document),
        )
        .route("/api/knowledge/reindex", post(reindex))
        .route("/api/knowledge/sync", get(sync_status).post(sync_now))
        .route("/api/knowledge/search", get(search))
        .route("/api/knowledge/unanswered", get(unanswered))
        .route("/api/health", get(health))
}

/// The dashboard's period (`today`, `7d`, `30d`, `90d`, `all`) and channel.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PeriodQuery {
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
}

impl PeriodQuery {
    pub fn period_name(&self) -> &str {
        match self.period.as_deref() {
            Some(name @ ("today" | "7d" | "30d" | "90d" | "all")) => name,
            _ => "30d",
        }
    }

    pub fn channel(&self) -> Option<Channel> {
        self.channel.as_deref().and_then(Channel::parse)
    }

    pub fn period(&self) -> Period {
        let now = Utc::now();
        let from = match self.period_name() {
            "today" => now
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map_or(now - Duration::days(1), |midnight| midnight.and_utc()),
            "7d" => now - Duration::days(7),
            "90d" => now - Duration::days(90),
            "all" => chrono::DateTime::<Utc>::UNIX_EPOCH,
            _ => now - Duration::days(30),
        };
        Period {
            from,
            // A little ahead, so that what happens while the page renders counts.
            to: now + Duration::minutes(1),
            channel: self.channel(),
        }
    }
}

async fn dashboard(
    _user: ApiUser,
    State(state): State<WebState>,
    Query(query): Query<PeriodQuery>,
) -> Response {
    match state.engine.store().dashboard(query.period()).await {
        Ok(dashboard) => Json(dashboard).into_response(),
        Err(failure) => store_error(&failure),
    }
}

/// The conversation list's filters as query parameters.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ConversationQuery {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub taken_over: Option<String>,
}

impl ConversationQuery {
    pub fn filter(&self) -> ConversationFilter {
        ConversationFilter {
            search: self.q.clone(),
            channel: self.channel.as_deref().and_then(Channel::parse),
            stage: self.stage.clone().filter(|stage| !stage.is_empty()),
            taken_over: matches!(self.taken_over.as_deref(), Some("1" | "true" | "on")),
            limit: 200,
        }
    }
}

async fn conversations(
    _user: ApiUser,
    State(state): State<WebState>,
    Query(query): Query<ConversationQuery>,
) -> Response {
    match state
        .engine
        .store()
        .console_conversations(&query.filter())
        .await
    {
        Ok(list) => Json::<Vec<ConversationSummary>>(list).into_response(),
        Err(failure) => store_error(&failure),
    }
}

/// Everything the conversation page shows.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConversationDetail {
    pub conversation: ConversationRecord,
    pub messages: Vec<ConsoleMessage>,
    pub objections: Vec<String>,
    pub lead: Option<Lead>,
    pub handoffs: Vec<OutboxEntry>,
    pub rating: Option<u8>,
}

/// Loads a conversation's page data; `None` when there is no such conversation.
///
/// # Errors
/// The store failing.
pub async fn conversation_detail(
    state: &WebState,
    id: Uuid,
) -> Result<Option<ConversationDetail>, StoreError> {
    let store = state.engine.store();
    let Some(mut conversation) = store.conversation(id).await? else {
        return Ok(None);
    };
    // The dialog's state is the dialog's business; the page shows what the store names.
    conversation.state = serde_json::Value::Null;
    let lead = store.lead_for_conversation(id).await?;
    let handoffs = match &lead {
        Some(lead) => store.lead_handoffs(lead.id).await?,
        None => Vec::new(),
    };
    Ok(Some(ConversationDetail {
        messages: store.console_messages(id).await?,
        objections: store.conversation_objections(id).await?,
        rating: store.rating(id).await?,
        lead,
        handoffs,
        conversation,
    }))
}

fn parse_id(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id).ok()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such conversation or lead")
}

async fn conversation(
    _user: ApiUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match conversation_detail(&state, id).await {
        Ok(Some(detail)) => Json(detail).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such conversation"),
        Err(failure) => store_error(&failure),
    }
}

/// Takes a conversation over for `by` (`Some`) or hands it back (`None`).
///
/// # Errors
/// The store failing; `Ok(false)` when there is no such conversation.
pub async fn set_takeover(
    state: &WebState,
    id: Uuid,
    by: Option<&str>,
) -> Result<bool, StoreError> {
    let done = match by {
        Some(by) => state.engine.take_over(id, by).await,
        None => state.engine.hand_back(id).await,
    };
    done.map_err(|failure| match failure {
        EngineError::Store(failure) => failure,
        EngineError::Rejected(reason) => StoreError::Rejected { reason },
    })
}

/// What a person writes to the prospect from the console: `key` makes a resubmission (a
/// double click, a retried call) store it once.
#[derive(Debug, Deserialize)]
pub struct PersonMessageBody {
    pub key: String,
    pub text: String,
}

/// The longest message a person may write from the console.
pub const MAX_PERSON_MESSAGE_CHARS: usize = 4000;

/// Stores a person's message for the prospect (taking the conversation over if nobody had).
pub async fn send_as_person(
    state: &WebState,
    id: Uuid,
    by: &str,
    body: &PersonMessageBody,
) -> Response {
    let key = body.key.trim();
    if key.is_empty() || key.len() > 128 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "key must be 1 to 128 characters",
        );
    }
    if body.text.chars().count() > MAX_PERSON_MESSAGE_CHARS {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a message may be at most {MAX_PERSON_MESSAGE_CHARS} characters long"),
        );
    }
    match state
        .engine
        .send_as_person(id, &format!("console:{key}"), by, &body.text)
        .await
    {
        Ok(Some(sent)) => Json(serde_json::json!({ "duplicate": sent.duplicate })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such conversation"),
        Err(EngineError::Rejected(reason)) => error(StatusCode::UNPROCESSABLE_ENTITY, &reason),
        Err(EngineError::Store(failure)) => store_error(&failure),
    }
}

async fn write(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
    body: Result<Json<PersonMessageBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match body {
        Ok(Json(body)) => send_as_person(&state, id, &user.email, &body).await,
        Err(rejection) => error(rejection.status(), &rejection.body_text()),
    }
}

async fn take_over(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
) -> Response {
    takeover_response(&state, &id, Some(&user.email)).await
}

async fn hand_back(
    _user: ApiUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
) -> Response {
    takeover_response(&state, &id, None).await
}

async fn takeover_response(state: &WebState, id: &str, by: Option<&str>) -> Response {
    let Some(id) = parse_id(id) else {
        return not_found();
    };
    match set_takeover(state, id, by).await {
        Ok(true) => Json(serde_json::json!({ "taken_over_by": by })).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such conversation"),
        Err(failure) => store_error(&failure),
    }
}

/// One lead with where each of its hand-offs stands.
#[derive(Debug, Serialize, Deserialize)]
pub struct LeadRow {
    pub lead: Lead,
    pub handoffs: Vec<OutboxEntry>,
}

const LEAD_LIMIT: i64 = 500;

async fn leads(_user: ApiUser, State(state): State<WebState>) -> Response {
    match state.engine.store().leads(LEAD_LIMIT).await {
        Ok(leads) => Json(
            leads
                .into_iter()
                .map(|(lead, handoffs)| LeadRow { lead, handoffs })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(failure) => store_error(&failure),
    }
}

/// A cell of text from outside (a prospect's name or words, a tracker's error) made safe to open
/// in a spreadsheet: one starting with `=`, `+`, `-`, `@`, a tab or a carriage return would be
/// read as a formula (`=HYPERLINK(…)`, `@SUM(…)`, DDE), so it gets a leading `'`, as OWASP's CSV
/// injection guidance advises. The quote shows in the cell; the text is otherwise unchanged.
pub fn spreadsheet_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The leads as CSV: one row per lead, each target's status in one column. Every cell of text
/// is [`spreadsheet_safe`]; ids, times, the channel, the E.164 phone (a `+` and digits only,
/// which a spreadsheet can only read as a number) and `qualified` are Closer's own and kept
/// as they are.
///
/// # Errors
/// The CSV writer failing (it writes to memory, so only on a bug).
pub fn leads_as_csv(leads: &[(Lead, Vec<OutboxEntry>)]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "id",
        "created_at",
        "channel",
        "name",
        "phone",
        "email",
        "company",
        "qualified",
        "summary",
        "objections",
        "campaign",
        "conversation_id",
        "handoffs",
    ])?;
    for (lead, handoffs) in leads {
        let contact = &lead.details.contact;
        let objections: Vec<&str> = lead
            .details
            .objections
            .iter()
            .map(|kind| kind.as_str())
            .collect();
        let handoffs: Vec<String> = handoffs
            .iter()
            .map(|entry| {
                let mut status = format!("{}: {}", entry.target, entry.status.as_str());
                if let Some(url) = &entry.external_url {
                    status.push_str(&format!(" {url}"));
                }
                if let Some(reason) = entry
                    .last_error
                    .as_ref()
                    .filter(|_| entry.status != closer_store::OutboxStatus::Delivered)
                {
                    status.push_str(&format!(" ({reason})"));
                }
                status
            })
            .collect();
        let text = |value: &str| spreadsheet_safe(value).into_owned();
        writer.write_record([
            lead.id.to_string(),
            lead.created_at.to_rfc3339(),
            lead.channel.as_str().to_owned(),
            text(contact.name.as_deref().unwrap_or_default()),
            contact
                .phone
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            text(
                &contact
                    .email
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            text(contact.company.as_deref().unwrap_or_default()),
            lead.details.qualified.to_string(),
            text(&lead.details.summary),
            text(&objections.join(" ")),
            text(lead.source_campaign.as_deref().unwrap_or_default()),
            lead.conversation_id.to_string(),
            text(&handoffs.join("; ")),
        ])?;
    }
    writer
        .into_inner()
        .map_err(|error| error.into_error().into())
}

/// The CSV export's response, shared with the console page's link.
pub async fn csv_response(state: &WebState) -> Response {
    let leads = match state.engine.store().leads(100_000).await {
        Ok(leads) => leads,
        Err(failure) => return store_error(&failure),
    };
    match leads_as_csv(&leads) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"closer-leads.csv\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(failure) => {
            tracing::warn!(error = %failure, "cannot write the leads as CSV");
            error(StatusCode::INTERNAL_SERVER_ERROR, "cannot write the CSV")
        }
    }
}

async fn leads_csv(_user: ApiUser, State(state): State<WebState>) -> Response {
    csv_response(&state).await
}

async fn retry(_user: ApiUser, State(state): State<WebState>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match state.engine.store().retry_failed_handoffs(id).await {
        Ok(queued) => Json(serde_json::json!({ "queued": queued })).into_response(),
        Err(failure) => store_error(&failure),
    }
}

/// A knowledge-base document as the console lists it (without its text).
#[derive(Debug, Serialize, Deserialize)]
pub struct DocumentRow {
    pub source: String,
    pub title: String,
    pub lang: Option<String>,
    pub audience: String,
    pub tags: Vec<String>,
    pub format: String,
    pub chars: usize,
}

/// The stored documents.
///
/// # Errors
/// The store failing.
pub async fn document_rows(state: &WebState) -> Result<Vec<DocumentRow>, StoreError> {
    Ok(state
        .engine
        .store()
        .documents()
        .await?
        .into_iter()
        .map(|document| DocumentRow {
            chars: document.content.chars().count(),
            lang: document.lang.map(|lang| lang.as_str().to_owned()),
            audience: document.audience.as_str().to_owned(),
            format: document.format.as_str().to_owned(),
            tags: document.tags,
            title: document.title,
            source: document.source,
        })
        .collect())
}

async fn documents(_user: ApiUser, State(state): State<WebState>) -> Response {
    match document_rows(&state).await {
        Ok(rows) => Json(rows).into_response(),
        Err(failure) => store_error(&failure),
    }
}

/// `POST /api/knowledge/documents`: a multipart form with `file` and optionally `audience`.
async fn upload_document(
    _user: ApiUser,
    State(state): State<WebState>,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let multipart = match multipart {
        Ok(multipart) => multipart,
        Err(rejection) => return error(rejection.status(), &rejection.body_text()),
    };
    let uploaded = match crate::knowledge::read_upload(multipart).await {
        Ok(upload) => crate::knowledge::upload(&state, upload).await,
        Err(failure) => Err(failure),
    };
    match uploaded {
        Ok(uploaded) => (StatusCode::CREATED, Json(uploaded)).into_response(),
        Err(failure) => failure.response(),
    }
}

async fn delete_document(
    _user: ApiUser,
    State(state): State<WebState>,
    Path(source): Path<String>,
) -> Response {
    match crate::knowledge::delete(&state, &source).await {
        Ok(documents) => {
            Json(serde_json::json!({ "deleted": source, "documents": documents })).into_response()
        }
        Err(failure) => failure.response(),
    }
}

/// `GET /api/knowledge/sync`: each document against what was last pushed to AnythingLLM, and
/// the console's last sync run.
async fn sync_status(_user: ApiUser, State(state): State<WebState>) -> Response {
    match crate::sync::status(&state).await {
        Ok(status) => Json(status).into_response(),
        Err(failure) => store_error(&failure),
    }
}

/// `POST /api/knowledge/sync`: asks for a sync in the background (202); its progress is in
/// `GET /api/knowledge/sync`.
async fn sync_now(_user: ApiUser, State(state): State<WebState>) -> Response {
    match crate::sync::start(&state) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "started": true })),
        )
            .into_response(),
        Err(refused) => error(StatusCode::CONFLICT, refused.message()),
    }
}

async fn reindex(_user: ApiUser, State(state): State<WebState>) -> Response {
    match crate::knowledge::reindex(&state).await {
        Ok(documents) => Json(serde_json::json!({ "documents": documents })).into_response(),
        Err(failure) => failure.response(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
    /// Include the sales team's internal documents.
    #[serde(default)]
    pub internal: Option<String>,
}

/// What retrieval finds for a question, and the answer the assistant would give.
#[derive(Debug, Serialize, Deserialize)]
pub struct SearchResult {
    pub query: String,
    pub answer: Option<String>,
    pub cited: Vec<String>,
    pub passages: Vec<PassageRow>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PassageRow {
    pub score: f32,
    pub source: String,
    pub title: String,
    pub text: String,
}

/// Runs the knowledge base's retrieval for `query`.
pub fn run_search(state: &WebState, query: &SearchQuery) -> SearchResult {
    let audience = if matches!(query.internal.as_deref(), Some("1" | "true" | "on")) {
        AudienceFilter::All
    } else {
        AudienceFilter::PublicOnly
    };
    let knowledge = state.engine.knowledge();
    let text = query.q.trim();
    let lang = closer_model::Lang::detect(text).unwrap_or_default();
    let answer = (!text.is_empty())
        .then(|| knowledge.answer(text, lang, audience))
        .flatten();
    SearchResult {
        query: text.to_owned(),
        cited: answer
            .as_ref()
            .map(|answer| {
                answer
                    .citations
                    .iter()
                    .map(|citation| citation.title.clone())
                    .collect()
            })
            .unwrap_or_default(),
        answer: answer.map(|answer| answer.text),
        passages: if text.is_empty() {
            Vec::new()
        } else {
            knowledge
                .search(text, audience, 8)
                .into_iter()
                .map(|passage| PassageRow {
                    score: passage.score,
                    source: passage.source,
                    title: passage.title,
                    text: passage.text,
                })
                .collect()
        },
    }
}

async fn search(
    _user: ApiUser,
    State(state): State<WebState>,
    Query(query): Query<SearchQuery>,
) -> Response {
    if query.q.chars().count() > 1000 {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "a query may be at most 1000 characters",
        );
    }
    Json(run_search(&state, &query)).into_response()
}

async fn unanswered(
    _user: ApiUser,
    State(state): State<WebState>,
    Query(query): Query<PeriodQuery>,
) -> Response {
    match state
        .engine
        .store()
        .unanswered_questions(query.period(), 100)
        .await
    {
        Ok(questions) => Json(questions).into_response(),
        Err(failure) => store_error(&failure),
    }
}

/// The health page's data: the database, each channel's connection and deliveries, each
/// target's hand-offs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Health {
    pub database: bool,
    pub database_error: Option<String>,
    pub channels: Vec<ChannelRow>,
    pub targets: Vec<TargetRow>,
    /// Updates and events a channel could not process, newest first.
    #[serde(default)]
    pub dead_letters: Vec<DeadLetterRow>,
    /// The AnythingLLM workspace, when configured: whether it answers prospects now.
    #[serde(default)]
    pub anythingllm: Option<crate::sync::WorkspaceHealth>,
}

/// A dead letter as the health page and `/api/health` show it (the payload stays in the store:
/// it is the prospect's raw message).
#[derive(Debug, Serialize, Deserialize)]
pub struct DeadLetterRow {
    pub id: Uuid,
    pub channel: String,
    pub external_id: String,
    pub reason: String,
    pub attempts: i32,
    pub last_failed_at: chrono::DateTime<chrono::Utc>,
    pub retry_requested: bool,
}

/// A channel: its live connection as its adapter last reported it, and its deliveries.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChannelRow {
    #[serde(flatten)]
    pub deliveries: closer_store::console::ChannelHealth,
    /// `None` for a channel without a connection of its own to report (the console's chat).
    pub connection: Option<ComponentStatus>,
}

/// A hand-off target: where its deliveries stand, and the state they add up to — `connected`
/// when its last attempt delivered, `down` when its last attempt failed, `starting` before any.
#[derive(Debug, Serialize, Deserialize)]
pub struct TargetRow {
    #[serde(flatten)]
    pub deliveries: closer_store::console::TargetHealth,
    pub state: ComponentState,
}

/// What a target's deliveries say about it: the worker's last outcome is the store's record.
fn target_state(target: &closer_store::console::TargetHealth) -> ComponentState {
    match (target.last_delivered_at, target.last_error_at) {
        (_, Some(failed)) if target.last_delivered_at.is_none_or(|ok| failed > ok) => {
            ComponentState::Down
        }
        (Some(_), _) => ComponentState::Connected,
        _ => ComponentState::Starting,
    }
}

/// Gathers [`Health`]; a database that does not answer is reported, not an error.
pub async fn health_report(state: &WebState) -> Health {
    let store = state.engine.store();
    let (database, database_error) = match store.ping().await {
        Ok(()) => (true, None),
        Err(failure) => (false, Some(failure.user_message().to_owned())),
    };
    let mut channels = store.channel_health().await.unwrap_or_default();
    for name in &state.config.channels {
        if !channels.iter().any(|channel| &channel.channel == name) {
            channels.push(closer_store::console::ChannelHealth::idle(name));
        }
    }
    let connections = state.engine.health().snapshot();
    // Adapters that reported but were left out of the configured list still show.
    for connection in &connections {
        if !channels
            .iter()
            .any(|channel| channel.channel == connection.name)
        {
            channels.push(closer_store::console::ChannelHealth::idle(&connection.name));
        }
    }
    let mut targets = store.target_health().await.unwrap_or_default();
    for name in &state.config.targets {
        if !targets.iter().any(|target| &target.target == name) {
            targets.push(closer_store::console::TargetHealth::idle(name));
        }
    }
    let dead_letters = store
        .dead_letters(50)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|letter| DeadLetterRow {
            id: letter.id,
            channel: letter.channel,
            external_id: letter.external_id,
            reason: letter.reason,
            attempts: letter.attempts,
            last_failed_at: letter.last_failed_at,
            retry_requested: letter.retry_requested_at.is_some(),
        })
        .collect();
    Health {
        database,
        database_error,
        dead_letters,
        anythingllm: state.engine.workspace_sync().map(|sync| sync.health()),
        channels: channels
            .into_iter()
            .map(|deliveries| ChannelRow {
                connection: connections
                    .iter()
                    .find(|connection| connection.name == deliveries.channel)
                    .cloned(),
                deliveries,
            })
            .collect(),
        targets: targets
            .into_iter()
            .map(|deliveries| TargetRow {
                state: target_state(&deliveries),
                deliveries,
            })
            .collect(),
    }
}

async fn health(_user: ApiUser, State(state): State<WebState>) -> Response {
    Json(health_report(&state).await).into_response()
}

#[cfg(test)]
mod tests {
    use closer_model::{Contact, NewLead, Phone};

    use super::*;

    #[test]
    fn a_cell_that_would_be_a_formula_is_quoted() {
        for (text, shown) in [
            (
                "=HYPERLINK(\"http://evil.example\",\"x\")",
                "'=HYPERLINK(\"http://evil.example\",\"x\")",
            ),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1+1", "'\t=1+1"),
            ("\r=1+1", "'\r=1+1"),
            ("Иван Петров", "Иван Петров"),
            ("a = b", "a = b"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(text), shown, "{text:?}");
        }
    }

    #[test]
    fn the_leads_export_neutralises_formulas_in_what_prospects_wrote() {
        let lead = Lead {
            id: Uuid::nil(),
            conversation_id: Uuid::nil(),
            channel: Channel::Web,
            source_campaign: Some("@campaign".to_owned()),
            details: NewLead {
                contact: Contact {
                    name: Some("=cmd|' /C calc'!A0".to_owned()),
                    phone: Some(Phone::parse("+7 903 123-45-67").expect("a phone")),
                    email: None,
                    company: Some("-1+1".to_owned()),
                },
                summary: "+IMPORTXML(\"http://evil.example\",\"//a\")".to_owned(),
                ..NewLead::default()
            },
            created_at: chrono::DateTime::UNIX_EPOCH,
        };
        let bytes = leads_as_csv(&[(lead, Vec::new())]).expect("CSV");
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let headers = reader.headers().expect("headers").clone();
        let row = reader.records().next().expect("a row").expect("a record");
        let cell = |name: &str| {
            let index = headers
                .iter()
                .position(|header| header == name)
                .expect("a column");
            row[index].to_owned()
        };
        assert_eq!(cell("name"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("company"), "'-1+1");
        assert_eq!(
            cell("summary"),
            "'+IMPORTXML(\"http://evil.example\",\"//a\")"
        );
        assert_eq!(cell("campaign"), "'@campaign");
        assert_eq!(
            cell("phone"),
            "+79031234567",
            "an E.164 number stays a number"
        );
        for value in row.iter() {
            assert!(
                !value.starts_with(['=', '-', '@', '\t', '\r'])
                    && (!value.starts_with('+') || value == "+79031234567"),
                "{value:?} reaches a spreadsheet as a formula"
            );
        }
    }
}
