//! The console's pages under `/console`, rendered on the server with maud (escaped by
//! construction, checked at compile time): sign-in, dashboard, conversations, leads, knowledge,
//! health and "try it". Every form carries the session's CSRF token; the sign-in form a
//! double-submit token of its own.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use chrono::{DateTime, Utc};
use closer_store::{ConsoleMessage, OutboxStatus};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{self, ConversationQuery, PeriodQuery, SearchQuery};
use crate::auth::{self, PageUser, Principal};
use crate::charts::{self, Bar, StackedBar};
use crate::knowledge;
use crate::WebState;

const CONSOLE_CSS: &str = include_str!("../assets/console.css");
/// The pages' behaviour (a confirmation before a delete): a file, since the
/// Content-Security-Policy allows no inline script.
const CONSOLE_JS: &str = include_str!("../assets/console.js");
const LOGIN_CSRF_COOKIE: &str = "closer_login_csrf";

pub fn router() -> Router<WebState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/dashboard") }),
        )
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(script))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/dashboard", get(dashboard))
        .route("/console/conversations", get(conversations))
        .route("/console/conversations/{id}", get(conversation))
        .route("/console/conversations/{id}/take-over", post(take_over))
        .route("/console/conversations/{id}/hand-back", post(hand_back))
        .route("/console/conversations/{id}/send", post(send))
        .route("/console/leads", get(leads))
        .route("/console/leads.csv", get(leads_csv))
        .route("/console/leads/{id}/retry", post(retry))
        .route("/console/dead-letters/{id}/retry", post(retry_dead_letter))
        .route("/console/knowledge", get(knowledge))
        .route(
            "/console/knowledge/upload",
            post(upload).layer(axum::extract::DefaultBodyLimit::max(
                knowledge::MAX_UPLOAD_BODY_BYTES,
            )),
        )
        .route("/console/knowledge/delete", post(delete_document))
        .route("/console/knowledge/reindex", post(reindex))
        .route("/console/knowledge/sync", post(sync_now))
        .route("/console/health", get(health))
        .route("/console/try", get(try_it))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CONSOLE_CSS,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CONSOLE_JS,
    )
        .into_response()
}

/// The frame of every signed-in page.
fn layout(title: &str, user: Option<&Principal>, active: &str, body: Markup) -> Markup {
    let nav = [
        ("dashboard", "/console/dashboard", "Dashboard"),
        ("conversations", "/console/conversations", "Conversations"),
        ("leads", "/console/leads", "Leads"),
        ("knowledge", "/console/knowledge", "Knowledge"),
        ("health", "/console/health", "Health"),
        ("try", "/console/try", "Try it"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Closer" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                @if let Some(user) = user {
                    header.top {
                        a.brand href="/console/dashboard" { "Closer" }
                        nav {
                            @for (key, href, label) in nav {
                                a class=(if key == active { "active" } else { "" }) href=(href) { (label) }
                            }
                        }
                        form.logout method="post" action="/console/logout" {
                            (csrf_field(user))
                            span.who { (user.email) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn csrf_field(user: &Principal) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf()); }
}

fn page(title: &str, user: &Principal, active: &str, body: Markup) -> Response {
    layout(title, Some(user), active, body).into_response()
}

fn problem(status: StatusCode, user: Option<&Principal>, message: &str) -> Response {
    (
        status,
        layout(
            "Problem",
            user,
            "",
            html! { h1 { "Something is not right" } p.error { (message) } },
        ),
    )
        .into_response()
}

/// A duration for people: milliseconds under a second, seconds above.
fn seconds(value: f64) -> String {
    if value < 1.0 {
        format!("{:.0} ms", value * 1000.0)
    } else {
        format!("{value:.1} s")
    }
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

// ---------------------------------------------------------------------------------------------
// Sign in and out.

#[derive(Debug, Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

fn login_form(token: &str, message: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        "",
        html! {
            section.login {
                h1 { "Closer" }
                p { "Sign in to the sales console." }
                @if let Some(message) = message { p.error role="alert" { (message) } }
                form method="post" action="/console/login" {
                    input type="hidden" name="csrf" value=(token);
                    label { "E-mail" input type="email" name="email" required autocomplete="username"; }
                    label { "Password" input type="password" name="password" required autocomplete="current-password"; }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

fn login_cookie(secure: bool, token: String) -> Cookie<'static> {
    Cookie::build((LOGIN_CSRF_COOKIE, token))
        .path("/console/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build()
}

async fn login_page(State(state): State<WebState>, headers: HeaderMap, jar: CookieJar) -> Response {
    let token = auth::random_token();
    let secure = auth::secure_cookies(state.config.secure_cookies, &headers);
    let jar = jar.add(login_cookie(secure, token.clone()));
    (jar, login_form(&token, None)).into_response()
}

async fn login(
    State(state): State<WebState>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let token = auth::random_token();
    let secure = auth::secure_cookies(state.config.secure_cookies, &headers);
    let again = |jar: CookieJar, status: StatusCode, message: &str| {
        let jar = jar.add(login_cookie(secure, token.clone()));
        (status, jar, login_form(&token, Some(message))).into_response()
    };
    let Ok(Form(form)) = form else {
        return again(
            jar,
            StatusCode::BAD_REQUEST,
            "Fill in the e-mail and the password.",
        );
    };
    let expected = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|cookie| cookie.value().to_owned());
    if !expected
        .is_some_and(|expected| !form.csrf.is_empty() && auth::same_secret(&expected, &form.csrf))
    {
        return again(
            jar,
            StatusCode::FORBIDDEN,
            "The form expired. Please sign in again.",
        );
    }
    if !state.login_limiter.allow(&form.email) {
        return again(
            jar,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts. Wait a minute and try again.",
        );
    }
    let store = state.engine.store();
    let account = match store.console_account(form.email.trim()).await {
        Ok(account) => account,
        Err(failure) => return api::store_error(&failure),
    };
    // The hash is checked even without an account, so that timing does not tell who exists.
    let dummy = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$cHzRWwNm6cRVZ2DrAwVVkD6XwBNxS9XZWJ9sp4yTjA4";
    let verified = auth::verify_password(
        &form.password,
        account
            .as_ref()
            .map_or(dummy, |account| &account.password_hash),
    );
    let Some(account) = account.filter(|_| verified) else {
        tracing::info!("a console sign-in failed");
        return again(jar, StatusCode::UNAUTHORIZED, "Wrong e-mail or password.");
    };
    let session = auth::random_token();
    let hours = state.config.session_hours.max(1);
    if let Err(failure) = store
        .create_console_session(
            &auth::token_hash(&session),
            account.id,
            &auth::random_token(),
            Utc::now() + chrono::Duration::hours(hours),
        )
        .await
    {
        return api::store_error(&failure);
    }
    tracing::info!(email = %account.email, "signed in to the console");
    let jar = jar
        .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/console/login"))
        .add(auth::session_cookie(session, secure, hours));
    (jar, Redirect::to("/console/dashboard")).into_response()
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The id in the path of a form posted to one row's action, once the form's CSRF token is
/// checked; a refusal or a "not found" naming `what` otherwise.
fn posted_id(
    user: &Principal,
    form: &CsrfForm,
    id: &str,
    what: &str,
) -> Result<Uuid, Box<Response>> {
    if let Some(refused) = check_csrf(user, form) {
        return Err(Box::new(refused));
    }
    Uuid::parse_str(id).map_err(|_| {
        Box::new(problem(
            StatusCode::NOT_FOUND,
            Some(user),
            &format!("No such {what}."),
        ))
    })
}

/// Checks a posted form's CSRF token: `None` when it is right, else the refusal page.
fn check_csrf(user: &Principal, form: &CsrfForm) -> Option<Response> {
    if user.csrf_ok(Some(&form.csrf)) {
        None
    } else {
        Some(problem(
            StatusCode::FORBIDDEN,
            Some(user),
            "The form expired or did not come from this console. Reload the page and try again.",
        ))
    }
}

async fn logout(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = check_csrf(&user, &form) {
        return refused;
    }
    if let Some(cookie) = jar.get(auth::SESSION_COOKIE) {
        if let Err(failure) = state
            .engine
            .store()
            .delete_console_session(&auth::token_hash(cookie.value()))
            .await
        {
            return api::store_error(&failure);
        }
    }
    let jar = jar.add(auth::removal_cookie(auth::secure_cookies(
        state.config.secure_cookies,
        &headers,
    )));
    (jar, Redirect::to("/console/login")).into_response()
}

// ---------------------------------------------------------------------------------------------
// Dashboard.

const CHANNELS: [&str; 5] = ["telegram", "discord", "slack", "web", "cli"];

fn period_filter(query: &PeriodQuery, action: &str) -> Markup {
    let periods = [
        ("today", "Today"),
        ("7d", "7 days"),
        ("30d", "30 days"),
        ("90d", "90 days"),
        ("all", "All time"),
    ];
    let channel = query.channel.clone().unwrap_or_default();
    html! {
        form.filters method="get" action=(action) {
            label { "Period "
                select name="period" {
                    @for (value, label) in periods {
                        option value=(value) selected[query.period_name() == value] { (label) }
                    }
                }
            }
            label { "Channel "
                select name="channel" {
                    option value="" { "All" }
                    @for name in CHANNELS {
                        option value=(name) selected[channel == name] { (name) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
    }
}

async fn dashboard(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Query(query): Query<PeriodQuery>,
) -> Response {
    let store = state.engine.store();
    let period = query.period();
    let dashboard = match store.dashboard(period).await {
        Ok(dashboard) => dashboard,
        Err(failure) => return api::store_error(&failure),
    };
    let funnel = dashboard.funnel;
    let funnel_bars = [
        Bar::count("Conversations", funnel.conversations),
        Bar::count("Engaged", funnel.engaged),
        Bar::count("Qualified", funnel.qualified),
        Bar::count("Leads", funnel.leads),
        Bar::count("Delivered", funnel.delivered),
    ];
    let rating_bars: Vec<Bar> = dashboard
        .ratings
        .iter()
        .enumerate()
        .map(|(index, count)| Bar::count(format!("{} ★", index + 1), *count))
        .collect();
    let reply_bars: Vec<Bar> = dashboard
        .reply_times
        .iter()
        .flat_map(|times| {
            [
                Bar {
                    label: format!("{} p50", times.channel),
                    value: times.p50,
                    shown: seconds(times.p50),
                },
                Bar {
                    label: format!("{} p95", times.channel),
                    value: times.p95,
                    shown: seconds(times.p95),
                },
            ]
        })
        .collect();
    let answer_bars = [
        Bar::count("Answered", dashboard.answered),
        Bar::count("Declined", dashboard.declined),
    ];
    let objection_bars: Vec<StackedBar> = dashboard
        .objections
        .iter()
        .map(|objection| StackedBar {
            label: objection.kind.clone(),
            parts: vec![
                objection.ended_with_lead as f64,
                objection.handed_off as f64,
                objection.open as f64,
            ],
        })
        .collect();
    let unanswered = store
        .unanswered_questions(period, 10)
        .await
        .unwrap_or_default();
    let body = html! {
        h1 { "Dashboard" }
        (period_filter(&query, "/console/dashboard"))
        section.cards {
            div.card { div.big { (funnel.conversations) } div { "conversations" } }
            div.card { div.big { (funnel.leads) } div { "leads" } }
            div.card { div.big {
                @match dashboard.conversion { Some(rate) => { (format!("{:.1} %", rate * 100.0)) }, None => { "–" } }
            } div { "conversion" } }
            div.card { div.big {
                @match dashboard.average_rating { Some(average) => { (format!("{average:.2}")) }, None => { "–" } }
            } div { "average rating" } }
        }
        div.grid {
            section.panel #funnel { h2 { "Funnel" } (charts::bars("Funnel", &funnel_bars, "#2563eb")) }
            section.panel #ratings { h2 { "Ratings" } (charts::bars("Ratings", &rating_bars, "#f59e0b")) }
            section.panel #reply-times { h2 { "Reply time" } (charts::bars("Reply time p50 and p95 per channel", &reply_bars, "#0d9488")) }
            section.panel #answers { h2 { "Questions" } (charts::bars("Answered and declined questions", &answer_bars, "#7c3aed")) }
            section.panel #objections { h2 { "Objections and how those conversations ended" }
                (charts::stacked("Objections", &objection_bars, &[("lead", "#16a34a"), ("handed off", "#f59e0b"), ("open", "#9ca3af")])) }
            section.panel #unanswered { h2 { "Questions without an answer" }
                @if unanswered.is_empty() { p.muted { "None in this period." } }
                ol { @for question in &unanswered { li { (question.text) " " span.muted { "×" (question.times) } } } }
                p { a href="/console/knowledge" { "All unanswered questions" } }
            }
        }
    };
    page("Dashboard", &user, "dashboard", body)
}

// ---------------------------------------------------------------------------------------------
// Conversations.

async fn conversations(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Query(query): Query<ConversationQuery>,
) -> Response {
    let list = match state
        .engine
        .store()
        .console_conversations(&query.filter())
        .await
    {
        Ok(list) => list,
        Err(failure) => return api::store_error(&failure),
    };
    let channel = query.channel.clone().unwrap_or_default();
    let stage = query.stage.clone().unwrap_or_default();
    let stages = ["new", "talking", "lead_captured", "handed_off"];
    let body = html! {
        h1 { "Conversations" }
        form.filters method="get" action="/console/conversations" {
            input type="search" name="q" placeholder="Words, phone, e-mail…" value=(query.q.clone().unwrap_or_default());
            select name="channel" {
                option value="" { "All channels" }
                @for name in CHANNELS { option value=(name) selected[channel == name] { (name) } }
            }
            select name="stage" {
                option value="" { "Any stage" }
                @for name in stages { option value=(name) selected[stage == name] { (name) } }
            }
            label { input type="checkbox" name="taken_over" value="1" checked[query.filter().taken_over]; " taken over" }
            button type="submit" { "Search" }
        }
        table.list {
            thead { tr { th { "Last message" } th { "Channel" } th { "Stage" } th { "Contact" } th { "Messages" } th { "Preview" } } }
            tbody {
                @for item in &list {
                    tr {
                        td { a href={ "/console/conversations/" (item.id) } { (when(item.last_message_at)) } }
                        td { (item.channel.as_str()) }
                        td { (item.stage.clone().unwrap_or_default())
                            @if let Some(by) = &item.taken_over_by { " " span.badge { "taken over by " (by) } } }
                        td { (item.lead_name.clone().unwrap_or_default()) " "
                             (item.lead_phone.clone().unwrap_or_default()) " "
                             (item.lead_email.clone().unwrap_or_default()) }
                        td { (item.messages) }
                        td.preview { (preview(item.last_text.as_deref().unwrap_or(""))) }
                    }
                }
            }
        }
        @if list.is_empty() { p.muted { "No conversation matches." } }
    };
    page("Conversations", &user, "conversations", body)
}

fn preview(text: &str) -> String {
    let mut cut: String = text.chars().take(80).collect();
    if text.chars().count() > 80 {
        cut.push('…');
    }
    cut
}

fn message_view(message: &ConsoleMessage) -> Markup {
    let who = match (message.direction.as_str(), &message.author) {
        ("in", _) => "Prospect".to_owned(),
        (_, Some(author)) => author.clone(),
        _ => "Assistant".to_owned(),
    };
    let class = if message.direction == "in" {
        "msg in"
    } else if message.author.is_some() {
        "msg person"
    } else {
        "msg out"
    };
    html! {
        div class=(class) {
            div.meta { (who) " · " (when(message.created_at)) " · " span.kind { (message.kind) }
                @if let Some(delivery) = &message.delivery { " · " (delivery) } }
            div.text { (message.text) }
            @if !message.quick_replies.is_empty() {
                div.buttons { @for button in &message.quick_replies { span.button { (button.label) } } }
            }
            @if !message.citations.is_empty() {
                div.cited { "Cited: "
                    @for (index, citation) in message.citations.iter().enumerate() {
                        @if index > 0 { ", " }
                        span title=(citation.source) { (citation.title) }
                    }
                }
            }
        }
    }
}

async fn conversation(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return problem(StatusCode::NOT_FOUND, Some(&user), "No such conversation.");
    };
    let detail = match api::conversation_detail(&state, id).await {
        Ok(Some(detail)) => detail,
        Ok(None) => return problem(StatusCode::NOT_FOUND, Some(&user), "No such conversation."),
        Err(failure) => return api::store_error(&failure),
    };
    let conversation = &detail.conversation;
    let body = html! {
        p { a href="/console/conversations" { "← Conversations" } }
        h1 { "Conversation on " (conversation.channel.as_str()) }
        div.columns {
            section.transcript #transcript {
                @for message in &detail.messages { (message_view(message)) }
                @if detail.messages.is_empty() { p.muted { "No messages yet." } }
            }
            aside.facts {
                dl {
                    dt { "Chat" } dd { (conversation.chat_id) }
                    dt { "Started" } dd { (when(conversation.created_at)) }
                    dt { "Stage" } dd #stage { (conversation.stage.clone().unwrap_or_else(|| "new".to_owned())) }
                    dt { "Language" } dd { (conversation.lang.map(|lang| lang.as_str()).unwrap_or("–")) }
                    dt { "Campaign" } dd { (conversation.source_campaign.clone().unwrap_or_else(|| "–".to_owned())) }
                    dt { "Objections" } dd #objections {
                        @if detail.objections.is_empty() { "none" } @else { (detail.objections.join(", ")) } }
                    dt { "Rating" } dd { @match detail.rating { Some(score) => { (score) " ★" }, None => { "–" } } }
                }
                h2 { "Contact" }
                @if let Some(lead) = &detail.lead {
                    @let contact = &lead.details.contact;
                    dl #contact {
                        dt { "Name" } dd { (contact.name.clone().unwrap_or_else(|| "–".to_owned())) }
                        dt { "Phone" } dd { (contact.phone.as_ref().map(ToString::to_string).unwrap_or_else(|| "–".to_owned())) }
                        dt { "E-mail" } dd { (contact.email.as_ref().map(ToString::to_string).unwrap_or_else(|| "–".to_owned())) }
                        dt { "Company" } dd { (contact.company.clone().unwrap_or_else(|| "–".to_owned())) }
                        dt { "Qualified" } dd { (if lead.details.qualified { "yes" } else { "no" }) }
                        dt { "Need" } dd { (lead.details.summary) }
                    }
                    h2 { "Hand-off" }
                    ul { @for entry in &detail.handoffs { li { (handoff_status(entry)) } } }
                } @else { p.muted { "No contact yet." } }
                h2 { "Write to the prospect" }
                form.write method="post" action={ "/console/conversations/" (conversation.id) "/send" } {
                    (csrf_field(&user))
                    // One key per rendering: a double submission stores the message once.
                    input type="hidden" name="key" value=(auth::random_token());
                    textarea name="text" required maxlength=(api::MAX_PERSON_MESSAGE_CHARS) placeholder="Your message; the assistant stays silent while you write" {}
                    button type="submit" { "Send" }
                }
                h2 { "Takeover" }
                @if let Some(by) = &conversation.taken_over_by {
                    p #takeover { "Taken over by " strong { (by) } ": the assistant is silent." }
                    form method="post" action={ "/console/conversations/" (conversation.id) "/hand-back" } {
                        (csrf_field(&user))
                        button type="submit" { "Hand back to the assistant" }
                    }
                } @else {
                    p #takeover.muted { "The assistant is answering." }
                    form method="post" action={ "/console/conversations/" (conversation.id) "/take-over" } {
                        (csrf_field(&user))
                        button type="submit" { "Take over" }
                    }
                }
            }
        }
    };
    page("Conversation", &user, "conversations", body)
}

fn handoff_status(entry: &closer_store::OutboxEntry) -> Markup {
    html! {
        strong { (entry.target) } ": "
        @match entry.status {
            OutboxStatus::Delivered => {
                span.ok { "delivered" }
                // Rows delivered before links were checked at the boundary may hold any URL.
                @if let Some(link) = entry.external_url.as_deref().and_then(|url| closer_model::WebLink::parse(url).ok()) {
                    " " a href=(link.as_str()) rel="noreferrer" { "open" }
                }
            }
            OutboxStatus::Failed => {
                span.bad { "failed" }
                @if let Some(reason) = &entry.last_error { " — " (reason) }
            }
            OutboxStatus::Pending | OutboxStatus::InFlight => {
                span.wait { (entry.status.as_str()) }
                " (attempt " (entry.attempts) ")"
                @if let Some(reason) = &entry.last_error { " — " (reason) }
            }
        }
    }
}

async fn take_over(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_takeover(&user, &state, &id, &form, true).await
}

async fn hand_back(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_takeover(&user, &state, &id, &form, false).await
}

async fn set_takeover(
    user: &Principal,
    state: &WebState,
    id: &str,
    form: &CsrfForm,
    take: bool,
) -> Response {
    if let Some(refused) = check_csrf(user, form) {
        return refused;
    }
    let Ok(id) = Uuid::parse_str(id) else {
        return problem(StatusCode::NOT_FOUND, Some(user), "No such conversation.");
    };
    let by = take.then_some(user.email.as_str());
    match api::set_takeover(state, id, by).await {
        Ok(true) => Redirect::to(&format!("/console/conversations/{id}")).into_response(),
        Ok(false) => problem(StatusCode::NOT_FOUND, Some(user), "No such conversation."),
        Err(failure) => api::store_error(&failure),
    }
}

#[derive(Debug, Deserialize)]
struct WriteForm {
    #[serde(default)]
    csrf: String,
    key: String,
    text: String,
}

async fn send(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
    Form(form): Form<WriteForm>,
) -> Response {
    let csrf = CsrfForm { csrf: form.csrf };
    let id = match posted_id(&user, &csrf, &id, "conversation") {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let body = api::PersonMessageBody {
        key: form.key,
        text: form.text,
    };
    let response = api::send_as_person(&state, id, &user.email, &body).await;
    if response.status().is_success() {
        Redirect::to(&format!("/console/conversations/{id}")).into_response()
    } else {
        problem(
            response.status(),
            Some(&user),
            "The message was not sent: it is empty or too long, or the conversation is gone.",
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Leads.

async fn leads(PageUser(user): PageUser, State(state): State<WebState>) -> Response {
    let leads = match state.engine.store().leads(500).await {
        Ok(leads) => leads,
        Err(failure) => return api::store_error(&failure),
    };
    let body = html! {
        h1 { "Leads" }
        p { a.button href="/console/leads.csv" download { "Export CSV" } }
        table.list #leads {
            thead { tr { th { "Created" } th { "Contact" } th { "Channel" } th { "Need" } th { "Hand-off" } th {} } }
            tbody {
                @for (lead, handoffs) in &leads {
                    @let contact = &lead.details.contact;
                    tr {
                        td { a href={ "/console/conversations/" (lead.conversation_id) } { (when(lead.created_at)) } }
                        td { (contact.name.clone().unwrap_or_default()) br;
                             (contact.phone.as_ref().map(ToString::to_string).unwrap_or_default()) " "
                             (contact.email.as_ref().map(ToString::to_string).unwrap_or_default()) }
                        td { (lead.channel.as_str()) }
                        td.preview { (preview(&lead.details.summary)) }
                        td { ul.plain { @for entry in handoffs { li { (handoff_status(entry)) } } }
                             @if handoffs.is_empty() { span.muted { "no target" } } }
                        td {
                            @if handoffs.iter().any(|entry| entry.status == OutboxStatus::Failed) {
                                form method="post" action={ "/console/leads/" (lead.id) "/retry" } {
                                    (csrf_field(&user))
                                    button type="submit" { "Retry" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if leads.is_empty() { p.muted { "No leads yet." } }
    };
    page("Leads", &user, "leads", body)
}

async fn leads_csv(PageUser(_user): PageUser, State(state): State<WebState>) -> Response {
    api::csv_response(&state).await
}

async fn retry(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let id = match posted_id(&user, &form, &id, "lead") {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    match state.engine.store().retry_failed_handoffs(id).await {
        Ok(_) => Redirect::to("/console/leads").into_response(),
        Err(failure) => api::store_error(&failure),
    }
}

async fn retry_dead_letter(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let id = match posted_id(&user, &form, &id, "dead letter") {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    match state.engine.store().request_dead_letter_retry(id).await {
        Ok(true) => Redirect::to("/console/health").into_response(),
        Ok(false) => problem(StatusCode::NOT_FOUND, Some(&user), "No such dead letter."),
        Err(failure) => api::store_error(&failure),
    }
}

// ---------------------------------------------------------------------------------------------
// Knowledge, health, try it.

/// The knowledge page's query: the search box, and what the last action did.
#[derive(Debug, Default, Deserialize)]
struct KnowledgeQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    internal: Option<String>,
    /// `uploaded`, `deleted` or `reindexed`, after a form's redirect.
    #[serde(default)]
    done: Option<String>,
    /// The document the action was about.
    #[serde(default)]
    doc: Option<String>,
}

/// What the last action did, as the page says it; fixed texts, so a link cannot make the
/// console say something else.
fn notice(query: &KnowledgeQuery) -> Option<String> {
    let doc = query.doc.clone().unwrap_or_default();
    match query.done.as_deref()? {
        "uploaded" => Some(format!("Uploaded {doc}; the knowledge base is re-indexed.")),
        "deleted" => Some(format!("Deleted {doc}; the knowledge base is re-indexed.")),
        "reindexed" => Some("Re-indexed the knowledge base from the stored documents.".to_owned()),
        "sync" => Some("AnythingLLM sync started; this page shows its progress.".to_owned()),
        _ => None,
    }
}

fn knowledge_redirect(done: &str, doc: &str) -> Response {
    let query = query_pair("done", done) + "&" + &query_pair("doc", doc);
    Redirect::to(&format!("/console/knowledge?{query}")).into_response()
}

/// `key=value` with the value percent-encoded for a query string.
fn query_pair(key: &str, value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{key}={encoded}")
}

async fn upload(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let Ok(multipart) = multipart else {
        return problem(
            StatusCode::BAD_REQUEST,
            Some(&user),
            "The upload form was not sent as a file upload.",
        );
    };
    let upload = match knowledge::read_upload(multipart).await {
        Ok(upload) => upload,
        Err(failure) => {
            return problem(failure.status(), Some(&user), &upload_refusal(&failure));
        }
    };
    let csrf = CsrfForm {
        csrf: upload.csrf.clone().unwrap_or_default(),
    };
    if let Some(refused) = check_csrf(&user, &csrf) {
        return refused;
    }
    match knowledge::upload(&state, upload).await {
        Ok(uploaded) => knowledge_redirect("uploaded", &uploaded.source),
        Err(failure) => problem(failure.status(), Some(&user), &upload_refusal(&failure)),
    }
}

fn upload_refusal(failure: &knowledge::ChangeError) -> String {
    format!("The file was not uploaded: {}.", failure.user_message())
}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf: String,
    source: String,
}

async fn delete_document(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Form(form): Form<DeleteForm>,
) -> Response {
    if let Some(refused) = check_csrf(&user, &CsrfForm { csrf: form.csrf }) {
        return refused;
    }
    match knowledge::delete(&state, &form.source).await {
        Ok(_) => knowledge_redirect("deleted", &form.source),
        Err(failure) => problem(
            failure.status(),
            Some(&user),
            &format!("The document was not deleted: {}.", failure.user_message()),
        ),
    }
}

async fn reindex(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = check_csrf(&user, &form) {
        return refused;
    }
    match knowledge::reindex(&state).await {
        Ok(_) => knowledge_redirect("reindexed", ""),
        Err(failure) => problem(
            failure.status(),
            Some(&user),
            &format!(
                "The knowledge base was not re-indexed: {}.",
                failure.user_message()
            ),
        ),
    }
}

async fn sync_now(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = check_csrf(&user, &form) {
        return refused;
    }
    match crate::sync::start(&state) {
        Ok(()) => knowledge_redirect("sync", ""),
        Err(refused) => problem(StatusCode::CONFLICT, Some(&user), refused.message()),
    }
}

/// The AnythingLLM section of the knowledge page.
fn sync_section(user: &Principal, status: &crate::sync::SyncStatus) -> Markup {
    let run = &status.run;
    html! {
        section.panel #anythingllm {
            h2 { "AnythingLLM sync" }
            @if !status.configured {
                p.muted #sync-state { "AnythingLLM is not configured: the built-in retriever answers. Add an "
                    code { "[anythingllm]" } " section to the configuration to answer through a workspace." }
            } @else {
                p #sync-state {
                    "Workspace " strong { (status.workspace.clone().unwrap_or_default()) } ": "
                    @if status.out_of_sync == 0 { span.ok { "in sync" } " (" (status.in_sync) " documents)" }
                    @else { span.wait { (status.out_of_sync) " to push or take out" } ", " (status.in_sync) " in sync" }
                }
                p #sync-answering {
                    @if status.answering { span.ok { "Answering prospects" } " from the store's public documents; every upload and delete is synced at once." }
                    @else { span.bad { "Not answering prospects" } ": " (status.reason.clone().unwrap_or_default()) }
                }
                @if run.running {
                    // The page follows the run without a script.
                    meta http-equiv="refresh" content="2";
                    p #sync-run { "Syncing: " (run.done) " of " (run.total) " documents"
                        @if let Some(current) = &run.current { " — " (current) } "…" }
                } @else if let Some(finished) = run.finished_at {
                    @if let Some(failure) = &run.error {
                        p.bad #sync-run { "The sync of " (when(finished)) " stopped: " (failure) ". What it pushed is kept; syncing again resumes." }
                    } @else {
                        p.ok #sync-run { "Synced " (when(finished)) ": " (run.result.clone().unwrap_or_default()) "." }
                    }
                }
                form.inline method="post" action="/console/knowledge/sync" {
                    (csrf_field(user))
                    button type="submit" disabled[run.running] { "Sync now" }
                    span.muted { " pushes the public documents and takes out everything else, as " code { "closer kb sync" } " does; uploads and deletes sync by themselves." }
                }
                table.list #sync-documents { thead { tr { th { "Document" } th { "Status" } th { "Last pushed" } } }
                    tbody { @for row in &status.documents {
                        tr data-status=(format!("{:?}", row.status)) {
                            td { (row.source) }
                            td { span class=(match row.status {
                                crate::sync::DocumentSync::InSync => "ok",
                                crate::sync::DocumentSync::Internal => "muted",
                                _ => "wait",
                            }) { (row.status.label()) } }
                            td { (row.pushed_at.map(when).unwrap_or_else(|| "–".to_owned())) }
                        }
                    } } }
            }
        }
    }
}

async fn knowledge(
    PageUser(user): PageUser,
    State(state): State<WebState>,
    Query(page_query): Query<KnowledgeQuery>,
) -> Response {
    let documents = match api::document_rows(&state).await {
        Ok(documents) => documents,
        Err(failure) => return api::store_error(&failure),
    };
    let notice = notice(&page_query);
    let sync_status = match crate::sync::status(&state).await {
        Ok(status) => status,
        Err(failure) => return api::store_error(&failure),
    };
    let query = SearchQuery {
        q: page_query.q.chars().take(1000).collect(),
        internal: page_query.internal,
    };
    let result = api::run_search(&state, &query);
    let unanswered = state
        .engine
        .store()
        .unanswered_questions(PeriodQuery::default().period(), 50)
        .await
        .unwrap_or_default();
    let body = html! {
        h1 { "Knowledge" }
        @if let Some(notice) = &notice { p.notice role="status" { (notice) } }
        section.panel {
            h2 { "What retrieval finds" }
            form.filters method="get" action="/console/knowledge" {
                input type="search" name="q" placeholder="Ask as a prospect would…" value=(result.query);
                label { input type="checkbox" name="internal" value="1" checked[query.internal.is_some()]; " include internal documents" }
                button type="submit" { "Search" }
            }
            @if !result.query.is_empty() {
                h3 { "The assistant's answer" }
                @match &result.answer {
                    Some(answer) => { p.answer #answer { (answer) } p.muted { "Cited: " (result.cited.join(", ")) } }
                    None => { p.answer #answer.muted { "No answer: the assistant would say it does not know and offer a person." } }
                }
                h3 { "Passages" }
                ol { @for passage in &result.passages {
                    li { strong { (passage.title) } " " span.muted { (passage.source) " · " (format!("{:.2}", passage.score)) } br; (preview(&passage.text)) }
                } }
            }
        }
        section.panel {
            h2 { "Questions the assistant could not answer (30 days)" }
            @if unanswered.is_empty() { p.muted { "None." } }
            table.list { tbody { @for question in &unanswered {
                tr { td { (question.text) } td { "×" (question.times) } td { (when(question.last_asked)) } }
            } } }
        }
        section.panel #documents {
            h2 { "Documents (" (documents.len()) ")" }
            form.upload #upload method="post" action="/console/knowledge/upload" enctype="multipart/form-data" {
                (csrf_field(&user))
                label { "File (.md, .txt or .csv, at most " (knowledge::MAX_UPLOAD_BYTES / (1024 * 1024)) " MiB) "
                    input type="file" name="file" required accept=".md,.markdown,.txt,.csv"; }
                // The file's own front matter decides unless a person picks an audience: a
                // preselected "public" would publish every internal note uploaded as is.
                label { "Audience "
                    select name="audience" {
                        option value="" selected { "as the file says (its front matter; public if none)" }
                        option value="public" { "public (prospects)" }
                        option value="internal" { "internal (the sales team)" }
                    }
                }
                button type="submit" { "Upload" }
            }
            p.muted { "A file with the name of a stored document replaces it. " code { "closer kb import DIR" }
                " makes the knowledge base exactly a folder (uploads not in it are removed); Re-index then makes this server use it." }
            table.list { thead { tr { th { "Document" } th { "Audience" } th { "Language" } th { "Format" } th { "Characters" } th {} } }
                tbody { @for document in &documents {
                    tr { td { strong { (document.title) } br; span.muted.source { (document.source) } }
                         td { span class={ "badge " (document.audience) } { (document.audience) } }
                         td { (document.lang.clone().unwrap_or_default()) } td { (document.format) } td { (document.chars) }
                         td { form.inline method="post" action="/console/knowledge/delete"
                             data-confirm="Delete this document from the knowledge base?" {
                             (csrf_field(&user))
                             input type="hidden" name="source" value=(document.source);
                             button.danger type="submit" title={ "Delete " (document.source) } { "Delete" }
                         } } }
                } } }
            form.inline method="post" action="/console/knowledge/reindex" {
                (csrf_field(&user))
                button type="submit" { "Re-index" }
                span.muted { " rebuilds the search index from the stored documents." }
            }
        }
        (sync_section(&user, &sync_status))
    };
    page("Knowledge", &user, "knowledge", body)
}

async fn health(PageUser(user): PageUser, State(state): State<WebState>) -> Response {
    let report = api::health_report(&state).await;
    let body = html! {
        h1 { "Health" }
        section.panel {
            h2 { "Database" }
            @if report.database { p.ok { "answering" } } @else { p.bad { "not answering: " (report.database_error.clone().unwrap_or_default()) } }
        }
        section.panel #channels {
            h2 { "Channels" }
            table.list { thead { tr { th { "Channel" } th { "Connection" } th { "Last message" } th { "Replies pending" } th { "Failed" } th { "Last error" } } }
                tbody { @for channel in &report.channels {
                    @let deliveries = &channel.deliveries;
                    tr data-channel=(deliveries.channel) {
                        td { (deliveries.channel) }
                        td.connection { (connection_cell(channel.connection.as_ref(), &deliveries.channel)) }
                        td { (deliveries.last_message_at.map(when).unwrap_or_else(|| "–".to_owned())) }
                        td { (deliveries.pending) } td class=(if deliveries.failed > 0 { "bad" } else { "" }) { (deliveries.failed) }
                        td { (deliveries.last_error.clone().unwrap_or_default()) " " span.muted { (deliveries.last_error_at.map(when).unwrap_or_default()) } } }
                } } }
        }
        section.panel #targets {
            h2 { "Trackers and CRMs" }
            table.list { thead { tr { th { "Target" } th { "State" } th { "Pending" } th { "Failed" } th { "Delivered" } th { "Last delivered" } th { "Last error" } } }
                tbody { @for row in &report.targets {
                    @let target = &row.deliveries;
                    tr data-target=(target.target) { td { (target.target) }
                         td { span class={ "state-" (row.state.as_str()) } { (target_state_label(row.state)) } }
                         td { (target.pending) } td class=(if target.failed > 0 { "bad" } else { "" }) { (target.failed) }
                         td { (target.delivered) } td { (target.last_delivered_at.map(when).unwrap_or_else(|| "–".to_owned())) }
                         td { (target.last_error.clone().unwrap_or_default()) " " span.muted { (target.last_error_at.map(when).unwrap_or_default()) } } }
                } } }
            @if report.targets.is_empty() { p.muted { "No hand-off target is configured." } }
        }
        @if let Some(workspace) = &report.anythingllm { (anythingllm_health(workspace)) }
        section.panel #dead-letters {
            h2 { "Dead letters" }
            p.muted { "Updates a channel could not process. They no longer hold up the queue; Retry has the channel try one again." }
            @if report.dead_letters.is_empty() { p.ok { "none" } } @else {
                table.list { thead { tr { th { "When" } th { "Channel" } th { "Update" } th { "Attempts" } th { "Reason" } th {} } }
                    tbody { @for letter in &report.dead_letters {
                        tr data-dead-letter=(letter.id) {
                            td { (when(letter.last_failed_at)) } td { (letter.channel) } td { (letter.external_id) }
                            td { (letter.attempts) } td.bad { (letter.reason) }
                            td { @if letter.retry_requested { span.muted { "retry requested" } } @else {
                                form method="post" action={ "/console/dead-letters/" (letter.id) "/retry" } {
                                    (csrf_field(&user))
                                    button type="submit" { "Retry" }
                                } } }
                        }
                    } } }
            }
        }
    };
    page("Health", &user, "health", body)
}

/// The AnythingLLM workspace on the health page: whether it answers prospects, and the
/// documents someone else put there that syncs took out.
fn anythingllm_health(workspace: &crate::sync::WorkspaceHealth) -> Markup {
    html! {
        section.panel #anythingllm-health {
            h2 { "AnythingLLM" }
            p #anythingllm-state {
                "Workspace " strong { (workspace.workspace) } ": "
                @if workspace.answering { span class="state state-connected" { "answering prospects" } }
                @else { span class="state state-down" { "not answering prospects" } " — " (workspace.reason.clone().unwrap_or_default()) }
                br;
                span.muted { "last synced " (workspace.last_synced_at.map(when).unwrap_or_else(|| "never".to_owned())) }
            }
            @if !workspace.foreign_removed.is_empty() {
                p.bad { "Documents Closer did not put in the workspace were taken out of it (prospects are answered only from the knowledge base's public documents):" }
                table.list #anythingllm-foreign { thead { tr { th { "Document" } th { "Taken out" } } }
                    tbody { @for document in &workspace.foreign_removed {
                        tr { td { (document.title) } td { (when(document.removed_at)) } }
                    } } }
            }
        }
    }
}

/// A channel's live connection: its state, how it is connected, since when, its last error.
fn connection_cell(connection: Option<&closer_model::ComponentStatus>, channel: &str) -> Markup {
    html! {
        @match connection {
            Some(status) => {
                span class={ "state state-" (status.state.as_str()) } { (status.state.as_str()) }
                @if let Some(mode) = &status.mode { " · " (mode) }
                br;
                span.muted { "since " (when(status.since))
                    @if let Some(ok) = status.last_ok_at { " · last ok " (when(ok)) } }
                @if let Some(error) = &status.last_error {
                    br; span.bad.connection-error { (error) } " " span.muted { (status.last_error_at.map(when).unwrap_or_default()) }
                }
            }
            None if channel == "web" => { span.state-connected { "served by Closer" } }
            None => { span.muted { "not reported" } }
        }
    }
}

fn target_state_label(state: closer_model::ComponentState) -> &'static str {
    match state {
        closer_model::ComponentState::Connected => "delivering",
        closer_model::ComponentState::Down => "failing",
        closer_model::ComponentState::Degraded => "degraded",
        closer_model::ComponentState::Starting => "no attempt yet",
    }
}

async fn try_it(PageUser(user): PageUser, State(state): State<WebState>) -> Response {
    let body = html! {
        h1 { "Try it" }
        p { "The website chat as your visitors see it. Paste this into your site:" }
        pre { code { (PreEscaped("&lt;script src=\"https://YOUR-CLOSER/chat/widget.js\" defer&gt;&lt;/script&gt;")) } }
        @if state.config.chat {
            div #try-chat.try {}
            script src="/chat/widget.js" data-target="#try-chat" data-title="Chat with us" defer {}
        } @else {
            p.muted { "The website chat is off ([web] chat = false)." }
        }
    };
    page("Try it", &user, "try", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_page_says_when_anythingllm_does_not_answer_and_what_was_taken_out() {
        let now = Utc::now();
        let refused = crate::sync::WorkspaceHealth {
            workspace: "sales".to_owned(),
            answering: false,
            reason: Some("the last sync failed (update-embeddings did not apply)".to_owned()),
            last_synced_at: Some(now),
            foreign_removed: vec![closer_engine::kb_sync::ForeignDocument {
                title: "Partner <price> list".to_owned(),
                removed_at: now,
            }],
            run: crate::sync::SyncRun::default(),
        };
        let html = anythingllm_health(&refused).into_string();
        assert!(html.contains("not answering prospects"), "{html}");
        assert!(html.contains("the last sync failed"), "{html}");
        assert!(
            html.contains("Partner &lt;price&gt; list"),
            "escaped: {html}"
        );
        let answering = crate::sync::WorkspaceHealth {
            answering: true,
            reason: None,
            foreign_removed: Vec::new(),
            ..refused
        };
        let html = anythingllm_health(&answering).into_string();
        assert!(html.contains("answering prospects"), "{html}");
        assert!(!html.contains("not answering"), "{html}");
    }
}
