//! The web console, its JSON API and the website chat, over HTTP against `spawn_app` and the
//! real PostgreSQL: nothing answers without a session or an API token, forms and session API
//! calls without their CSRF token are refused, sign-in is rate-limited; the chat's endpoints
//! are redelivery-safe, rate-limited and refuse oversized input; a chat appears in the console,
//! can be taken over, its lead retried and exported; `/metrics` counts it, on its own listener
//! and behind a bearer token when configured. Every answer carries the security headers, the
//! pages run under a Content-Security-Policy without inline script, and cookies are Secure
//! behind an HTTPS proxy.

use closer_store::Store;
use closer_tests::spawn_app;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

const EMAIL: &str = "manager@example.com";
const PASSWORD: &str = "correct horse battery";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// The `name=value` of a `Set-Cookie` header named `name`.
fn cookie_named(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(|value| {
            let pair = value.split(';').next().unwrap_or_default().to_owned();
            (pair, value.to_owned())
        })
}

/// The value of the first hidden `csrf` field in a page.
fn csrf_in(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .expect("the page has a csrf field")
        + r#"name="csrf" value=""#.len();
    html[start..]
        .split('"')
        .next()
        .expect("the field ends")
        .to_owned()
}

/// A signed-in browser: its session cookie and CSRF token.
struct Browser {
    client: reqwest::Client,
    address: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn sign_in(address: &str) -> Browser {
        let client = client();
        let page = client
            .get(format!("{address}/console/login"))
            .send()
            .await
            .expect("the login page");
        let (login_cookie, _) = cookie_named(&page, "closer_login_csrf").expect("a login token");
        let token = csrf_in(&page.text().await.expect("a body"));
        let response = client
            .post(format!("{address}/console/login"))
            .header(COOKIE, &login_cookie)
            .form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", &token)])
            .send()
            .await
            .expect("a sign-in");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (cookie, attributes) =
            cookie_named(&response, "closer_session").expect("a session cookie");
        assert!(attributes.contains("HttpOnly"), "{attributes}");
        assert!(attributes.contains("SameSite=Lax"), "{attributes}");
        let dashboard = client
            .get(format!("{address}/console/dashboard"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .expect("the dashboard");
        assert_eq!(dashboard.status(), StatusCode::OK);
        let csrf = csrf_in(&dashboard.text().await.expect("a body"));
        Browser {
            client,
            address: address.to_owned(),
            cookie,
            csrf,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("a response")
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.expect("JSON")
    }

    /// A session's API call with its CSRF header.
    async fn api_post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header(COOKIE, &self.cookie)
            .header("X-CSRF-Token", &self.csrf)
            .send()
            .await
            .expect("a response")
    }

    async fn form_post(&self, path: &str, csrf: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header(COOKIE, &self.cookie)
            .form(&[("csrf", csrf)])
            .send()
            .await
            .expect("a response")
    }
}

async fn with_account(pool: &PgPool) {
    let store = Store::from_pool(pool.clone());
    assert!(closer_web::auth::create_account(&store, EMAIL, PASSWORD)
        .await
        .expect("the account is created"));
}

/// Posts a visitor's message to the chat.
async fn chat(address: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{address}/chat/api/messages"))
        .json(&body)
        .send()
        .await
        .expect("a response")
}

const API_GETS: [&str; 9] = [
    "/api/dashboard",
    "/api/conversations",
    "/api/conversations/00000000-0000-0000-0000-000000000000",
    "/api/leads",
    "/api/leads.csv",
    "/api/knowledge/documents",
    "/api/knowledge/search?q=price",
    "/api/knowledge/unanswered",
    "/api/knowledge/sync",
];

#[sqlx::test(migrations = "../migrations")]
async fn nothing_answers_without_a_session_or_a_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    let client = client();
    for path in API_GETS.iter().chain(&["/api/health"]) {
        let response = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = response.json().await.expect("a JSON error");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    for path in [
        "/api/conversations/00000000-0000-0000-0000-000000000000/take-over",
        "/api/conversations/00000000-0000-0000-0000-000000000000/hand-back",
        "/api/leads/00000000-0000-0000-0000-000000000000/retry",
        "/api/conversations/00000000-0000-0000-0000-000000000000/messages",
        "/api/knowledge/documents",
        "/api/knowledge/reindex",
        "/api/knowledge/sync",
    ] {
        let response = client
            .post(format!("{}{path}", app.address))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    for path in [
        "/console/dashboard",
        "/console/conversations",
        "/console/leads",
        "/console/leads.csv",
        "/console/knowledge",
        "/console/health",
        "/console/try",
    ] {
        let response = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], "/console/login", "{path}");
    }
    // A made-up session cookie or token is no better.
    let response = client
        .get(format!("{}/api/leads", app.address))
        .header(COOKIE, "closer_session=forged")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client
        .get(format!("{}/api/leads", app.address))
        .bearer_auth("closer_forged")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// The security headers every answer of the console, its API and the chat carries.
fn assert_security_headers(response: &reqwest::Response, what: &str) {
    let headers = response.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_owned()
    };
    let policy = header("content-security-policy");
    assert!(
        policy.starts_with("default-src 'self';"),
        "{what}: {policy}"
    );
    assert!(policy.contains("script-src 'self';"), "{what}: {policy}");
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy}"
    );
    assert!(!policy.contains("unsafe-inline"), "{what}: {policy}");
    assert!(
        policy.contains(&closer_web::chat::widget_style_source()),
        "{what}: the widget's style element is allowed by its hash: {policy}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "same-origin", "{what}");
}

/// What a Content-Security-Policy without 'unsafe-inline' would block in a page: a `<script>`
/// without `src`, an `on…=` attribute, a `style` attribute or element.
fn inline_code(html: &str) -> Vec<String> {
    let lower = html.to_lowercase();
    let mut found = Vec::new();
    for (start, _) in lower.match_indices("<script") {
        let tag = &lower[start
            ..lower[start..]
                .find('>')
                .map_or(lower.len(), |end| start + end)];
        if !tag.contains(" src=") {
            found.push(tag.to_owned());
        }
    }
    if lower.contains("<style") {
        found.push("<style>".to_owned());
    }
    for (start, _) in lower.match_indices(" style=") {
        found.push(lower[start..(start + 40).min(lower.len())].to_owned());
    }
    // An event handler attribute: ` on` + letters + `=` inside a tag.
    let bytes = lower.as_bytes();
    for (start, _) in lower.match_indices(" on") {
        let name_end = bytes[start + 3..]
            .iter()
            .position(|byte| !byte.is_ascii_lowercase())
            .map_or(bytes.len(), |offset| start + 3 + offset);
        if name_end > start + 3 && bytes.get(name_end) == Some(&b'=') {
            let inside_tag = lower[..start].rfind('<') > lower[..start].rfind('>');
            if inside_tag {
                found.push(lower[start..(start + 40).min(lower.len())].to_owned());
            }
        }
    }
    found
}

#[sqlx::test(migrations = "../migrations")]
async fn every_answer_carries_the_security_headers_and_no_page_runs_inline_code(pool: PgPool) {
    with_account(&pool).await;
    let app = spawn_app(pool).await;
    let login = client()
        .get(format!("{}/console/login", app.address))
        .send()
        .await
        .expect("the login page");
    assert_security_headers(&login, "/console/login");
    let html = login.text().await.expect("a body");
    assert!(inline_code(&html).is_empty(), "{:?}", inline_code(&html));
    for path in ["/api/leads", "/console/dashboard"] {
        let refused = client()
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("a response");
        assert_security_headers(&refused, &format!("{path} without a session"));
    }

    let browser = Browser::sign_in(&app.address).await;
    for path in [
        "/console/dashboard",
        "/console/conversations",
        "/console/leads",
        "/console/knowledge",
        "/console/health",
        "/console/try",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_security_headers(&page, path);
        let html = page.text().await.expect("a body");
        assert_eq!(inline_code(&html), Vec::<String>::new(), "{path}");
        assert!(
            html.contains(r#"<script src="/console/assets/console.js" defer>"#),
            "{path}"
        );
        if path == "/console/knowledge" {
            assert!(
                html.contains("data-confirm=\"Delete this document"),
                "deleting still asks first, from console.js"
            );
        }
    }
    for path in [
        "/api/leads",
        "/api/leads.csv",
        "/console/assets/console.js",
        "/console/assets/console.css",
        "/chat/widget.js",
    ] {
        let answer = browser.get(path).await;
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        assert_security_headers(&answer, path);
    }
    let script = browser.get("/console/assets/console.js").await;
    assert!(script.headers()["content-type"]
        .to_str()
        .expect("a type")
        .starts_with("text/javascript"));
    assert!(script
        .text()
        .await
        .expect("a body")
        .contains("data-confirm"));
    let widget = browser
        .get("/chat/widget.js")
        .await
        .text()
        .await
        .expect("a body");
    assert!(
        widget.contains(".closer-panel{") && !widget.contains("__CLOSER_WIDGET_CSS__"),
        "the widget carries its style sheet"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn cookies_are_secure_when_a_proxy_says_the_console_is_reached_over_https(pool: PgPool) {
    with_account(&pool).await;
    let app = spawn_app(pool).await;
    let client = client();
    let sign_in = |https: bool| {
        let client = client.clone();
        let address = app.address.clone();
        async move {
            let with_proto = |request: reqwest::RequestBuilder| {
                if https {
                    request.header("X-Forwarded-Proto", "https")
                } else {
                    request
                }
            };
            let page = with_proto(client.get(format!("{address}/console/login")))
                .send()
                .await
                .expect("the login page");
            let (login_cookie, login_attributes) =
                cookie_named(&page, "closer_login_csrf").expect("a login token");
            let token = csrf_in(&page.text().await.expect("a body"));
            let response = with_proto(client.post(format!("{address}/console/login")))
                .header(COOKIE, &login_cookie)
                .form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", &token)])
                .send()
                .await
                .expect("a sign-in");
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            let (session, session_attributes) =
                cookie_named(&response, "closer_session").expect("a session cookie");
            let logout_page = client
                .get(format!("{address}/console/dashboard"))
                .header(COOKIE, &session)
                .send()
                .await
                .expect("the dashboard");
            let csrf = csrf_in(&logout_page.text().await.expect("a body"));
            let logout = with_proto(client.post(format!("{address}/console/logout")))
                .header(COOKIE, &session)
                .form(&[("csrf", csrf.as_str())])
                .send()
                .await
                .expect("a sign-out");
            let (_, removal_attributes) =
                cookie_named(&logout, "closer_session").expect("the session cookie removed");
            [login_attributes, session_attributes, removal_attributes]
        }
    };
    let is_secure = |attributes: &str| {
        attributes
            .split(';')
            .any(|attribute| attribute.trim().eq_ignore_ascii_case("secure"))
    };
    for attributes in sign_in(true).await {
        assert!(is_secure(&attributes), "behind HTTPS: {attributes}");
        assert!(attributes.contains("HttpOnly"), "{attributes}");
    }
    for attributes in sign_in(false).await {
        assert!(!is_secure(&attributes), "plain HTTP: {attributes}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_ask_for_their_token_and_can_have_a_listener_of_their_own(pool: PgPool) {
    const TOKEN: &str = "metrics-token-for-the-test";
    let engine = closer_tests::demo_engine(pool, Vec::new()).await;
    let bind = || async {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port")
    };
    let token = || Some(secrecy::SecretString::from(TOKEN.to_owned()));
    let main =
        closer::server::Application::with_listener(bind().await, engine.clone()).with_routes(
            closer_web::router(engine.clone(), closer_web::WebConfig::default()),
        );
    let own = closer::server::MetricsServer::with_listener(
        bind().await,
        closer_web::metrics::router(token()),
    );
    let beside = closer::server::Application::with_listener(bind().await, engine)
        .with_routes(closer_web::metrics::router(token()));
    let (main_port, own_port, beside_port) = (main.port(), own.port(), beside.port());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    tokio::spawn(main.run_until_stopped(until_stopped()));
    tokio::spawn(own.run_until_stopped(until_stopped()));
    tokio::spawn(beside.run_until_stopped(until_stopped()));

    let scrape = |port: u16, token: Option<&'static str>| async move {
        let mut request = client().get(format!("http://127.0.0.1:{port}/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("a response")
    };
    assert_eq!(
        scrape(main_port, Some(TOKEN)).await.status(),
        StatusCode::NOT_FOUND,
        "with a listener of their own, metrics are not on the main server"
    );
    for port in [own_port, beside_port] {
        let refused = scrape(port, None).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.headers()["www-authenticate"]
            .to_str()
            .expect("a header")
            .starts_with("Bearer"));
        assert_eq!(
            scrape(port, Some("metrics-token")).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let scraped = scrape(port, Some(TOKEN)).await;
        assert_eq!(scraped.status(), StatusCode::OK);
        assert!(scraped.headers()["content-type"]
            .to_str()
            .expect("a type")
            .starts_with("text/plain"));
    }
    let _ = stop.send(true);
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_in_checks_the_password_the_form_token_and_the_rate(pool: PgPool) {
    with_account(&pool).await;
    let app = spawn_app(pool).await;
    let client = client();
    let page = client
        .get(format!("{}/console/login", app.address))
        .send()
        .await
        .expect("the login page");
    let (login_cookie, _) = cookie_named(&page, "closer_login_csrf").expect("a login token");
    let token = csrf_in(&page.text().await.expect("a body"));

    let attempt = |password: &'static str, csrf: String, cookie: Option<String>| {
        let client = client.clone();
        let address = app.address.clone();
        async move {
            let mut request = client.post(format!("{address}/console/login")).form(&[
                ("email", EMAIL),
                ("password", password),
                ("csrf", &csrf),
            ]);
            if let Some(cookie) = cookie {
                request = request.header(COOKIE, cookie);
            }
            request.send().await.expect("a response")
        }
    };
    let without_cookie = attempt(PASSWORD, token.clone(), None).await;
    assert_eq!(without_cookie.status(), StatusCode::FORBIDDEN, "login CSRF");
    assert!(cookie_named(&without_cookie, "closer_session").is_none());
    let wrong_token = attempt(PASSWORD, "forged".to_owned(), Some(login_cookie.clone())).await;
    assert_eq!(wrong_token.status(), StatusCode::FORBIDDEN);

    let wrong = attempt("wrong password!", token.clone(), Some(login_cookie.clone())).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_named(&wrong, "closer_session").is_none());
    assert!(wrong
        .text()
        .await
        .expect("a body")
        .contains("Wrong e-mail or password"));

    // Five attempts a minute per address: the sixth is refused even with the right password.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            attempt("wrong password!", token.clone(), Some(login_cookie.clone()))
                .await
                .status(),
        );
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let right = attempt(PASSWORD, token, Some(login_cookie)).await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[sqlx::test(migrations = "../migrations")]
async fn state_changes_need_the_csrf_token_and_api_tokens_work(pool: PgPool) {
    with_account(&pool).await;
    let app = spawn_app(pool.clone()).await;
    let browser = Browser::sign_in(&app.address).await;

    let answer = chat(
        &app.address,
        json!({ "visitor": "visitor-1", "id": "m1", "text": "сколько стоит ваш самый дешевый тариф?" }),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let list = browser.get_json("/api/conversations?channel=web").await;
    let id = list[0]["id"]
        .as_str()
        .expect("the chat is listed")
        .to_owned();

    // The session's API call without the header, or with a wrong one: refused, nothing changed.
    let bare = browser
        .client
        .post(format!("{}/api/conversations/{id}/take-over", app.address))
        .header(COOKIE, &browser.cookie)
        .send()
        .await
        .expect("a response");
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    let forged = browser
        .client
        .post(format!("{}/api/conversations/{id}/take-over", app.address))
        .header(COOKIE, &browser.cookie)
        .header("X-CSRF-Token", "forged")
        .send()
        .await
        .expect("a response");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // A form without its token: refused too.
    let form = browser
        .form_post(&format!("/console/conversations/{id}/take-over"), "forged")
        .await;
    assert_eq!(form.status(), StatusCode::FORBIDDEN);
    let detail = browser.get_json(&format!("/api/conversations/{id}")).await;
    assert!(
        detail["conversation"]["taken_over_by"].is_null(),
        "{detail}"
    );

    // With the token: taken over, and the visitor's next message gets no answer from the bot.
    let taken = browser
        .api_post(&format!("/api/conversations/{id}/take-over"))
        .await;
    assert_eq!(taken.status(), StatusCode::OK);
    let detail = browser.get_json(&format!("/api/conversations/{id}")).await;
    assert_eq!(detail["conversation"]["taken_over_by"], EMAIL);
    let quiet: Value = chat(
        &app.address,
        json!({ "visitor": "visitor-1", "id": "m2", "text": "алло?", "after": 1_000_000 }),
    )
    .await
    .json()
    .await
    .expect("JSON");
    assert_eq!(quiet["with_person"], true);
    assert_eq!(
        quiet["messages"],
        json!([]),
        "the assistant stays silent: {quiet}"
    );

    // The person writes from the console; the visitor's widget gets it, once per key.
    let write = |csrf: Option<String>| {
        let request = browser
            .client
            .post(format!("{}/api/conversations/{id}/messages", app.address))
            .header(COOKIE, &browser.cookie)
            .json(&json!({ "key": "k-1", "text": "Здравствуйте, это Мария из отдела продаж" }));
        match csrf {
            Some(csrf) => request.header("X-CSRF-Token", csrf),
            None => request,
        }
        .send()
    };
    let refused = write(None).await.expect("a response");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    for duplicate in [false, true] {
        let sent = write(Some(browser.csrf.clone())).await.expect("a response");
        assert_eq!(sent.status(), StatusCode::OK);
        let sent: Value = sent.json().await.expect("JSON");
        assert_eq!(sent["duplicate"], duplicate, "{sent}");
    }
    let polled: Value = client()
        .get(format!(
            "{}/chat/api/messages?visitor=visitor-1&after=0",
            app.address
        ))
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    let from_person: Vec<&Value> = polled["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["from"] == "person")
        .collect();
    assert_eq!(from_person.len(), 1, "{polled}");
    assert_eq!(
        from_person[0]["text"],
        "Здравствуйте, это Мария из отдела продаж"
    );

    // The form hands it back.
    let back = browser
        .form_post(
            &format!("/console/conversations/{id}/hand-back"),
            &browser.csrf,
        )
        .await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let detail = browser.get_json(&format!("/api/conversations/{id}")).await;
    assert!(
        detail["conversation"]["taken_over_by"].is_null(),
        "{detail}"
    );

    // An API token reads and acts without a session or CSRF token.
    let store = Store::from_pool(pool);
    let token = closer_web::auth::create_api_token(&store, EMAIL, "ci")
        .await
        .expect("a token");
    let leads = browser
        .client
        .get(format!("{}/api/leads", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .expect("a response");
    assert_eq!(leads.status(), StatusCode::OK);
    let taken = browser
        .client
        .post(format!("{}/api/conversations/{id}/take-over", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .expect("a response");
    assert_eq!(taken.status(), StatusCode::OK);
    assert!(
        sqlx::query_scalar::<_, Option<String>>("select token_hash from console_api_tokens")
            .fetch_one(store.pool())
            .await
            .expect("a row")
            .is_some_and(|hash| hash != token),
        "only the token's hash is stored"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_website_chat_answers_once_and_refuses_bad_input(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let script = client()
        .get(format!("{}/chat/widget.js", app.address))
        .send()
        .await
        .expect("the widget");
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script
        .text()
        .await
        .expect("a body")
        .contains("/chat/api/messages"));

    let start: Value = chat(
        &app.address,
        json!({ "visitor": "v-2", "id": "open-1", "start": true }),
    )
    .await
    .json()
    .await
    .expect("JSON");
    let greeting = &start["messages"];
    assert!(
        !greeting.as_array().expect("messages").is_empty(),
        "a greeting: {start}"
    );
    let last = greeting
        .as_array()
        .and_then(|messages| messages.last())
        .and_then(|message| message["id"].as_i64())
        .expect("an id");

    let question = json!({ "visitor": "v-2", "id": "q-1", "text": "сколько стоит ваш самый дешевый тариф?", "after": last });
    let first: Value = chat(&app.address, question.clone())
        .await
        .json()
        .await
        .expect("JSON");
    let messages = first["messages"].as_array().expect("messages").clone();
    assert_eq!(messages[0]["from"], "visitor");
    let answer = messages
        .iter()
        .find(|message| {
            message["from"] == "assistant"
                && !message["sources"].as_array().is_none_or(Vec::is_empty)
        })
        .unwrap_or_else(|| panic!("an answer with its sources: {first}"));
    assert!(!answer["text"].as_str().unwrap_or_default().is_empty());

    // The widget retries the same message (a lost response): the same answer, nothing new.
    let again: Value = chat(&app.address, question)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(again["messages"], first["messages"]);
    let inbound: i64 = sqlx::query_scalar(
        "select count(*) from messages where channel = 'web' and direction = 'in'",
    )
    .fetch_one(&pool)
    .await
    .expect("a count");
    assert_eq!(inbound, 2, "the start and the question, once each");

    // Too long a message: 413 with a clear error; too large a body: 413 before parsing.
    let long = chat(
        &app.address,
        json!({ "visitor": "v-2", "id": "q-2", "text": "а".repeat(2001) }),
    )
    .await;
    assert_eq!(long.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = long.json().await.expect("JSON");
    assert!(
        body["error"].as_str().expect("an error").contains("2000"),
        "{body}"
    );
    let huge = chat(
        &app.address,
        json!({ "visitor": "v-2", "id": "q-3", "text": "a".repeat(40_000) }),
    )
    .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Malformed: not JSON, a bad visitor id, no content.
    let malformed = client()
        .post(format!("{}/chat/api/messages", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("a response");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let bad_id = chat(
        &app.address,
        json!({ "visitor": "<script>", "id": "x", "text": "hi" }),
    )
    .await;
    assert_eq!(bad_id.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let empty = chat(&app.address, json!({ "visitor": "v-2", "id": "q-4" })).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Per visitor: a burst of five, then 429 with Retry-After; another visitor is unaffected.
    let mut statuses = Vec::new();
    for index in 0..8 {
        let response = chat(
            &app.address,
            json!({ "visitor": "v-3", "id": format!("burst-{index}"), "text": "привет" }),
        )
        .await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    assert!(
        statuses[..5].iter().all(|status| *status == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let other = chat(
        &app.address,
        json!({ "visitor": "v-4", "id": "1", "text": "привет" }),
    )
    .await;
    assert_eq!(other.status(), StatusCode::OK);

    // Polling returns what came after an id.
    let polled: Value = client()
        .get(format!(
            "{}/chat/api/messages?visitor=v-2&after={last}",
            app.address
        ))
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    assert_eq!(polled["messages"], first["messages"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_chat_shows_in_the_console_with_its_lead_and_its_retry(pool: PgPool) {
    with_account(&pool).await;
    let app = spawn_app(pool.clone()).await;
    let browser = Browser::sign_in(&app.address).await;
    for (id, text) in [
        ("1", "сколько стоит ваш самый дешевый тариф?"),
        ("2", "дорого"),
        (
            "3",
            "Отлично, давайте созвонимся. Иван Петров, +7 (903) 123-45-67",
        ),
    ] {
        let response = chat(
            &app.address,
            json!({ "visitor": "lead-visitor", "id": id, "text": text }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    // The list finds it by the phone; the transcript has citations, stage, objection, contact.
    let found = browser.get_json("/api/conversations?q=903").await;
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    let id = found[0]["id"].as_str().expect("an id").to_owned();
    let detail = browser.get_json(&format!("/api/conversations/{id}")).await;
    assert_eq!(detail["conversation"]["stage"], "lead_captured", "{detail}");
    assert_eq!(detail["lead"]["contact"]["phone"], "+79031234567");
    assert!(
        detail["objections"]
            .as_array()
            .is_some_and(|kinds| !kinds.is_empty()),
        "{detail}"
    );
    assert!(
        detail["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|message| !message["citations"].as_array().is_none_or(Vec::is_empty)),
        "{detail}"
    );
    let page = browser.get(&format!("/console/conversations/{id}")).await;
    let html = page.text().await.expect("a body");
    assert!(html.contains("Cited: "), "the page shows citations");
    assert!(html.contains("+79031234567"));

    // The hand-off fails for good; the console shows why, retries it, and exports it.
    let store = Store::from_pool(pool.clone());
    let claimed = store
        .claim_due_handoffs(chrono::Utc::now(), 10, std::time::Duration::from_secs(60))
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 1);
    store
        .mark_handoff_failed(
            claimed[0].entry.id,
            claimed[0].lease_token,
            "the tracker refused the token",
            None,
        )
        .await
        .expect("marked");
    let leads = browser.get_json("/api/leads").await;
    assert_eq!(leads[0]["handoffs"][0]["status"], "failed", "{leads}");
    assert_eq!(
        leads[0]["handoffs"][0]["last_error"],
        "the tracker refused the token"
    );
    let leads_page = browser
        .get("/console/leads")
        .await
        .text()
        .await
        .expect("a body");
    assert!(leads_page.contains("the tracker refused the token"));
    assert!(leads_page.contains("Retry"));
    let lead_id = leads[0]["lead"]["id"].as_str().expect("an id").to_owned();
    let retried = browser
        .form_post(&format!("/console/leads/{lead_id}/retry"), &browser.csrf)
        .await;
    assert_eq!(retried.status(), StatusCode::SEE_OTHER);
    let leads = browser.get_json("/api/leads").await;
    assert_eq!(leads[0]["handoffs"][0]["status"], "pending", "{leads}");
    let again = browser
        .api_post(&format!("/api/leads/{lead_id}/retry"))
        .await;
    assert_eq!(
        again.json::<Value>().await.expect("JSON")["queued"],
        0,
        "nothing failed now"
    );

    let csv = browser.get("/api/leads.csv").await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/csv"));
    let csv = csv.text().await.expect("a body");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("CSV");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].iter().any(|field| field == "+79031234567"), "{csv}");
    assert!(
        rows[0]
            .iter()
            .any(|field| field.starts_with("webhook: pending")),
        "{csv}"
    );

    // The dashboard counts it, on the web channel and not on Telegram, and draws the charts.
    let dashboard = browser
        .get_json("/api/dashboard?period=today&channel=web")
        .await;
    assert_eq!(dashboard["funnel"]["conversations"], 1, "{dashboard}");
    assert_eq!(dashboard["funnel"]["leads"], 1, "{dashboard}");
    assert!(
        dashboard["answered"].as_i64().unwrap_or_default() >= 1,
        "{dashboard}"
    );
    assert!(
        dashboard["objections"]
            .as_array()
            .is_some_and(|list| !list.is_empty()),
        "{dashboard}"
    );
    let telegram = browser
        .get_json("/api/dashboard?period=today&channel=telegram")
        .await;
    assert_eq!(telegram["funnel"]["conversations"], 0);
    let page = browser
        .get("/console/dashboard?period=today")
        .await
        .text()
        .await
        .expect("a body");
    assert!(page.contains("<svg"), "the funnel is drawn");
    assert!(page.contains("Funnel"));

    // Knowledge and health.
    let documents = browser.get_json("/api/knowledge/documents").await;
    assert!(documents.as_array().is_some_and(|list| !list.is_empty()));
    let search = browser
        .get_json("/api/knowledge/search?q=%D1%81%D0%BA%D0%BE%D0%BB%D1%8C%D0%BA%D0%BE%20%D1%81%D1%82%D0%BE%D0%B8%D1%82%20%D1%82%D0%B0%D1%80%D0%B8%D1%84")
        .await;
    assert!(search["answer"].is_string(), "{search}");
    assert!(search["passages"]
        .as_array()
        .is_some_and(|list| !list.is_empty()));
    let health = browser.get_json("/api/health").await;
    assert_eq!(health["database"], true);
    assert!(health["targets"][0]["target"] == "webhook", "{health}");

    // /metrics counts the chat's messages by channel.
    let metrics = client()
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("a response")
        .text()
        .await
        .expect("a body");
    assert!(
        metrics.contains(r#"closer_messages_total{channel="web"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("closer_reply_seconds_bucket"), "{metrics}");
}

/// A multipart upload form: `file` named `name`, and `audience` and `csrf` when given.
fn upload_form(
    name: &str,
    bytes: Vec<u8>,
    audience: Option<&str>,
    csrf: Option<&str>,
) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    if let Some(csrf) = csrf {
        form = form.text("csrf", csrf.to_owned());
    }
    if let Some(audience) = audience {
        form = form.text("audience", audience.to_owned());
    }
    form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    )
}

/// The sources of the passages retrieval finds for `query` (`internal` includes internal ones).
async fn found_sources(browser: &Browser, query: &str, internal: bool) -> Vec<String> {
    let path = format!(
        "/api/knowledge/search?q={}{}",
        query.replace(' ', "%20"),
        if internal { "&internal=1" } else { "" }
    );
    let result = browser.get_json(&path).await;
    result["passages"]
        .as_array()
        .expect("passages")
        .iter()
        .map(|passage| passage["source"].as_str().unwrap_or_default().to_owned())
        .collect()
}

const ZEBRA: &str = "# Zebra grooming\n\nThe zebra grooming service costs 4200 rubles per visit and includes fresh stripes.\n";
const QUAGGA: &str =
    "Quagga discount for partners: 17 percent on the first quagga order, internal only.\n";

#[sqlx::test(migrations = "../migrations")]
async fn knowledge_documents_are_uploaded_deleted_and_reindexed_from_the_console(pool: PgPool) {
    with_account(&pool).await;
    let app = spawn_app(pool.clone()).await;
    let browser = Browser::sign_in(&app.address).await;
    let api = format!("{}/api/knowledge/documents", app.address);
    assert!(found_sources(&browser, "zebra grooming", true)
        .await
        .is_empty());

    // Through the API, with the session's CSRF header: stored, listed, found at once.
    let uploaded = browser
        .client
        .post(&api)
        .header(COOKIE, &browser.cookie)
        .header("X-CSRF-Token", &browser.csrf)
        .multipart(upload_form(
            "zebra-care.md",
            ZEBRA.into(),
            Some("public"),
            None,
        ))
        .send()
        .await
        .expect("a response");
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let uploaded: Value = uploaded.json().await.expect("JSON");
    assert_eq!(uploaded["source"], "zebra-care.md", "{uploaded}");
    assert_eq!(uploaded["title"], "Zebra grooming", "{uploaded}");
    assert_eq!(uploaded["added"], true, "{uploaded}");
    let documents = browser.get_json("/api/knowledge/documents").await;
    let listed = documents
        .as_array()
        .expect("a list")
        .iter()
        .find(|document| document["source"] == "zebra-care.md")
        .expect("the upload is listed");
    assert_eq!(listed["audience"], "public");
    assert!(found_sources(&browser, "zebra grooming", false)
        .await
        .contains(&"zebra-care.md".to_owned()));
    let answer = browser
        .get_json("/api/knowledge/search?q=how%20much%20is%20zebra%20grooming")
        .await;
    assert!(
        answer["answer"]
            .as_str()
            .unwrap_or_default()
            .contains("4200"),
        "{answer}"
    );

    // From the page's form, as internal: only a search with internal documents finds it.
    let page = browser.get("/console/knowledge").await;
    let html = page.text().await.expect("a page");
    assert!(html.contains(r#"enctype="multipart/form-data""#), "{html}");
    assert!(html.contains("zebra-care.md"));
    let csrf = csrf_in(&html);
    let form = browser
        .client
        .post(format!("{}/console/knowledge/upload", app.address))
        .header(COOKIE, &browser.cookie)
        .multipart(upload_form(
            "quagga.txt",
            QUAGGA.into(),
            Some("internal"),
            Some(&csrf),
        ))
        .send()
        .await
        .expect("a response");
    assert_eq!(form.status(), StatusCode::SEE_OTHER);
    let location = form.headers()[LOCATION].to_str().expect("a location");
    assert!(location.contains("done=uploaded"), "{location}");
    assert!(!found_sources(&browser, "quagga discount", false)
        .await
        .contains(&"quagga.txt".to_owned()));
    assert!(found_sources(&browser, "quagga discount", true)
        .await
        .contains(&"quagga.txt".to_owned()));
    let notice = browser.get(location).await.text().await.expect("a page");
    assert!(notice.contains("Uploaded quagga.txt"), "{notice}");

    // Refused: no session, no CSRF header, a forged form token; nothing stored by any of them.
    let anonymous = client()
        .post(&api)
        .multipart(upload_form("sneaky.md", ZEBRA.into(), None, None))
        .send()
        .await
        .expect("a response");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let bare = browser
        .client
        .post(&api)
        .header(COOKIE, &browser.cookie)
        .multipart(upload_form("sneaky.md", ZEBRA.into(), None, None))
        .send()
        .await
        .expect("a response");
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    let forged = browser
        .client
        .post(format!("{}/console/knowledge/upload", app.address))
        .header(COOKIE, &browser.cookie)
        .multipart(upload_form("sneaky.md", ZEBRA.into(), None, Some("forged")))
        .send()
        .await
        .expect("a response");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let anonymous_delete = client()
        .delete(format!("{api}/zebra-care.md"))
        .send()
        .await
        .expect("a response");
    assert_eq!(anonymous_delete.status(), StatusCode::UNAUTHORIZED);
    let forged_delete = browser
        .client
        .post(format!("{}/console/knowledge/delete", app.address))
        .header(COOKIE, &browser.cookie)
        .form(&[("csrf", "forged"), ("source", "zebra-care.md")])
        .send()
        .await
        .expect("a response");
    assert_eq!(forged_delete.status(), StatusCode::FORBIDDEN);
    let reindex_without_token = browser
        .form_post("/console/knowledge/reindex", "forged")
        .await;
    assert_eq!(reindex_without_token.status(), StatusCode::FORBIDDEN);
    let documents = browser.get_json("/api/knowledge/documents").await;
    assert!(!documents.to_string().contains("sneaky.md"), "{documents}");
    assert!(
        documents.to_string().contains("zebra-care.md"),
        "{documents}"
    );

    // Files that are not knowledge documents: refused with the reason.
    let token = closer_web::auth::create_api_token(&Store::from_pool(pool.clone()), EMAIL, "kb")
        .await
        .expect("a token");
    let with_token = |form: reqwest::multipart::Form| {
        client()
            .post(&api)
            .header("Authorization", format!("Bearer {token}"))
            .multipart(form)
            .send()
    };
    let pdf = with_token(upload_form("deck.pdf", b"%PDF-1.7".to_vec(), None, None))
        .await
        .expect("a response");
    assert_eq!(pdf.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let pdf: Value = pdf.json().await.expect("JSON");
    assert!(
        pdf["error"].as_str().unwrap_or_default().contains(".pdf"),
        "{pdf}"
    );
    let too_big = vec![b'a'; closer_web::knowledge::MAX_UPLOAD_BYTES + 1];
    let oversized = with_token(upload_form("huge.txt", too_big, None, None))
        .await
        .expect("a response");
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let oversized: Value = oversized.json().await.expect("JSON");
    assert!(
        oversized["error"]
            .as_str()
            .unwrap_or_default()
            .contains("MiB"),
        "{oversized}"
    );
    let far_too_big = vec![b'a'; 3 * closer_web::knowledge::MAX_UPLOAD_BYTES];
    let refused = with_token(upload_form("huger.txt", far_too_big, None, None)).await;
    // The server may stop reading and answer before the client has sent everything.
    if let Ok(refused) = refused {
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let latin1 = with_token(upload_form("old.txt", vec![0xC0, 0xE8, 0xF0], None, None))
        .await
        .expect("a response");
    assert_eq!(latin1.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let documents = browser.get_json("/api/knowledge/documents").await;
    for name in ["deck.pdf", "huge.txt", "huger.txt", "old.txt"] {
        assert!(!documents.to_string().contains(name), "{name}: {documents}");
    }

    // Deleted through the API and from the page: gone from the list and from retrieval.
    let deleted = browser
        .client
        .delete(format!("{api}/zebra-care.md"))
        .header(COOKIE, &browser.cookie)
        .header("X-CSRF-Token", &browser.csrf)
        .send()
        .await
        .expect("a response");
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(!found_sources(&browser, "zebra grooming", true)
        .await
        .contains(&"zebra-care.md".to_owned()));
    let again = browser
        .client
        .delete(format!("{api}/zebra-care.md"))
        .header(COOKIE, &browser.cookie)
        .header("X-CSRF-Token", &browser.csrf)
        .send()
        .await
        .expect("a response");
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let from_page = browser
        .client
        .post(format!("{}/console/knowledge/delete", app.address))
        .header(COOKIE, &browser.cookie)
        .form(&[("csrf", browser.csrf.as_str()), ("source", "quagga.txt")])
        .send()
        .await
        .expect("a response");
    assert_eq!(from_page.status(), StatusCode::SEE_OTHER);
    assert!(!found_sources(&browser, "quagga discount", true)
        .await
        .contains(&"quagga.txt".to_owned()));

    // Re-index: the index is rebuilt from what the store holds.
    let stored = Store::from_pool(pool).documents().await.expect("documents");
    let reindexed = browser.api_post("/api/knowledge/reindex").await;
    assert_eq!(reindexed.status(), StatusCode::OK);
    let reindexed: Value = reindexed.json().await.expect("JSON");
    assert_eq!(reindexed["documents"], stored.len(), "{reindexed}");
    let from_page = browser
        .form_post("/console/knowledge/reindex", &browser.csrf)
        .await;
    assert_eq!(from_page.status(), StatusCode::SEE_OTHER);
}

/// Reads `/api/health` until `channel`'s connection is in `state`, or the deadline passes;
/// returns the last report.
async fn health_when(browser: &Browser, channel: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let health = browser.get_json("/api/health").await;
        let reached = health["channels"]
            .as_array()
            .and_then(|channels| {
                channels
                    .iter()
                    .find(|row| row["channel"] == channel)
                    .map(|row| row["connection"]["state"] == state)
            })
            .unwrap_or(false);
        if reached || tokio::time::Instant::now() >= deadline {
            return health;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn connection<'a>(health: &'a Value, channel: &str) -> &'a Value {
    health["channels"]
        .as_array()
        .and_then(|channels| channels.iter().find(|row| row["channel"] == channel))
        .map_or(&Value::Null, |row| &row["connection"])
}

#[sqlx::test(migrations = "../migrations")]
async fn the_health_page_shows_a_channels_live_connection(pool: PgPool) {
    use closer_tests::fake_telegram::{FakeTelegram, Fault, FAKE_TOKEN};
    with_account(&pool).await;
    let app = spawn_app(pool).await;
    let browser = Browser::sign_in(&app.address).await;
    let fake = FakeTelegram::start().await;
    // Telegram's getUpdates answers an error: the channel is down, with the error.
    fake.fail_next(
        "getUpdates",
        Fault::Api {
            code: 502,
            description: "Bad Gateway".to_owned(),
        },
    );
    let telegram = closer_telegram::Telegram::connect(
        closer_telegram::TelegramConfig {
            token: FAKE_TOKEN.to_owned().into(),
            api_url: fake.api_url(),
            mode: closer_telegram::Mode::Polling {
                timeout: std::time::Duration::from_secs(1),
            },
            limits: closer_telegram::Limits::default(),
        },
        app.engine.clone(),
    )
    .await
    .expect("the adapter connects to the fake");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(telegram.run(async move {
        let _ = stopped.await;
    }));

    let down = health_when(&browser, "telegram", "down").await;
    let telegram = connection(&down, "telegram");
    assert_eq!(telegram["state"], "down", "{down}");
    assert!(
        telegram["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("getUpdates failed"),
        "{down}"
    );
    assert!(telegram["last_ok_at"].is_null(), "{down}");
    assert!(!down.to_string().contains(FAKE_TOKEN), "{down}");
    let page = browser
        .get("/console/health")
        .await
        .text()
        .await
        .expect("a page");
    assert!(page.contains(r#"data-channel="telegram""#), "{page}");
    assert!(page.contains("state-down"), "{page}");

    // The next getUpdates answers: connected, by long polling, the last error kept.
    let up = health_when(&browser, "telegram", "connected").await;
    let telegram = connection(&up, "telegram");
    assert_eq!(telegram["state"], "connected", "{up}");
    assert_eq!(telegram["mode"], "long polling", "{up}");
    assert!(telegram["last_ok_at"].is_string(), "{up}");
    assert!(telegram["last_error"].is_string(), "{up}");
    let page = browser
        .get("/console/health")
        .await
        .text()
        .await
        .expect("a page");
    assert!(page.contains("state-connected"), "{page}");
    let _ = stop.send(());
}

/// One server-sent event: its id and its JSON data.
#[derive(Debug)]
struct ChatEvent {
    id: Option<String>,
    data: Value,
}

/// An open `/chat/api/events` stream, read event by event.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(address: &str, visitor: &str, after: i64, last_event_id: Option<i64>) -> Self {
        let mut request = client().get(format!(
            "{address}/chat/api/events?visitor={visitor}&after={after}"
        ));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("a stream");
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        assert_eq!(response.headers()["x-accel-buffering"], "no");
        EventStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next `messages` event (keep-alive comments skipped); `None` when the stream ends or
    /// the deadline passes.
    async fn next(&mut self) -> Option<ChatEvent> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(ChatEvent {
                    id,
                    data: serde_json::from_str(&data).expect("the event's data is JSON"),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads events until one satisfies `wanted`; `None` at the deadline or the stream's end.
    async fn until(&mut self, wanted: impl Fn(&ChatEvent) -> bool) -> Option<ChatEvent> {
        while let Some(event) = self.next().await {
            if wanted(&event) {
                return Some(event);
            }
        }
        None
    }
}

fn holds_person_text(event: &ChatEvent, text: &str) -> bool {
    event.data["messages"].as_array().is_some_and(|messages| {
        messages
            .iter()
            .any(|message| message["from"] == "person" && message["text"] == text)
    })
}

#[sqlx::test(migrations = "../migrations")]
async fn a_salespersons_message_reaches_the_visitors_event_stream(pool: PgPool) {
    with_account(&pool).await;
    let app = spawn_app(pool).await;
    let browser = Browser::sign_in(&app.address).await;
    let answer = chat(
        &app.address,
        json!({ "visitor": "sse-visitor", "id": "m1", "text": "сколько стоит ваш самый дешевый тариф?" }),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: Value = answer.json().await.expect("JSON");
    let seen = answer["messages"]
        .as_array()
        .and_then(|messages| {
            messages
                .iter()
                .filter_map(|message| message["id"].as_i64())
                .max()
        })
        .expect("the answer has messages");

    // The stream opens with where the chat stands: nothing new after what the widget shows.
    let mut stream = EventStream::open(&app.address, "sse-visitor", seen, None).await;
    let first = stream.next().await.expect("a first event");
    assert_eq!(first.data["messages"], json!([]), "{first:?}");
    assert_eq!(first.data["with_person"], false, "{first:?}");

    // A salesperson takes over and writes from the console: the open stream carries it.
    let list = browser.get_json("/api/conversations?channel=web").await;
    let id = list[0]["id"]
        .as_str()
        .expect("the chat is listed")
        .to_owned();
    let taken = browser
        .api_post(&format!("/api/conversations/{id}/take-over"))
        .await;
    assert_eq!(taken.status(), StatusCode::OK);
    let text = "Hello, this is Anna from the sales team.";
    let sent = browser
        .client
        .post(format!("{}/api/conversations/{id}/messages", app.address))
        .header(COOKIE, &browser.cookie)
        .header("X-CSRF-Token", &browser.csrf)
        .json(&json!({ "key": "sse-1", "text": text }))
        .send()
        .await
        .expect("a response");
    assert_eq!(sent.status(), StatusCode::OK);
    let event = stream
        .until(|event| holds_person_text(event, text))
        .await
        .expect("the salesperson's message arrives on the stream");
    assert_eq!(event.data["with_person"], true, "{event:?}");
    let person_id = event.data["messages"]
        .as_array()
        .and_then(|messages| messages.iter().find(|message| message["from"] == "person"))
        .and_then(|message| message["id"].as_i64())
        .expect("the message's id");
    assert_eq!(event.id, Some(person_id.to_string()));

    // A reconnect says the last id it saw: what came after is sent again, nothing before.
    let mut resumed = EventStream::open(&app.address, "sse-visitor", 0, Some(seen)).await;
    let replay = resumed.next().await.expect("a first event");
    assert!(holds_person_text(&replay, text), "{replay:?}");
    assert!(
        replay.data["messages"]
            .as_array()
            .is_some_and(|messages| messages
                .iter()
                .all(|message| message["id"].as_i64() > Some(seen))),
        "{replay:?}"
    );
    let mut current = EventStream::open(&app.address, "sse-visitor", 0, Some(person_id)).await;
    let nothing_new = current.next().await.expect("a first event");
    assert_eq!(nothing_new.data["messages"], json!([]), "{nothing_new:?}");
    assert_eq!(nothing_new.data["with_person"], true, "{nothing_new:?}");

    // The stream's checks are the poll's: a bad visitor id is refused.
    let refused = client()
        .get(format!("{}/chat/api/events?visitor=bad%20id", app.address))
        .send()
        .await
        .expect("a response");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// Reads `/api/knowledge/sync` until the workspace holds what the store holds and no sync is
/// running, or the deadline.
async fn in_sync(browser: &Browser) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = browser.get_json("/api/knowledge/sync").await;
        let settled = status["answering"] == true
            && status["out_of_sync"] == 0
            && status["run"]["running"] == false
            && status["run"]["finished_at"].is_string();
        if settled || tokio::time::Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn sync_status_of<'a>(status: &'a Value, source: &str) -> &'a Value {
    status["documents"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["source"] == source))
        .map_or(&Value::Null, |row| &row["status"])
}

#[sqlx::test(migrations = "../migrations")]
async fn the_knowledge_page_shows_and_runs_the_anythingllm_sync(pool: PgPool) {
    use closer_tests::fake_anythingllm::{FakeAnythingLlm, ANYTHINGLLM_KEY, WORKSPACE};
    with_account(&pool).await;
    let fake = FakeAnythingLlm::start().await;
    let client = closer_knowledge::anythingllm::AnythingLlm::new(
        &closer_knowledge::anythingllm::AnythingLlmSettings {
            base_url: fake.base_url(),
            workspace: WORKSPACE.to_owned(),
            api_key: secrecy::SecretString::from(ANYTHINGLLM_KEY.to_owned()),
            request_timeout: std::time::Duration::from_secs(10),
        },
    )
    .expect("a client");
    let engine = closer_tests::demo_engine(pool.clone(), Vec::new()).await;
    let sync = closer_engine::kb_sync::WorkspaceSync::new(
        engine.store().clone(),
        client,
        engine.dialog_config().clone(),
        std::time::Duration::from_secs(3600),
    );
    let engine = engine.with_workspace_sync(sync.clone());
    let app = closer_tests::spawn_app_on(engine, closer_web::WebConfig::default()).await;
    let browser = Browser::sign_in(&app.address).await;

    // Nothing pushed yet (the sync is not running): every public document is "never pushed",
    // internal ones are not pushed, and the workspace does not answer prospects.
    let before = browser.get_json("/api/knowledge/sync").await;
    assert_eq!(before["configured"], true, "{before}");
    assert_eq!(before["workspace"], WORKSPACE, "{before}");
    assert_eq!(before["in_sync"], 0, "{before}");
    assert_eq!(before["answering"], false, "{before}");
    assert_eq!(
        sync_status_of(&before, "en-faq.md"),
        "never_pushed",
        "{before}"
    );
    assert!(
        before["documents"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|row| row["status"] == "internal")),
        "{before}"
    );

    // "Sync now" without the CSRF token: refused.
    let forged = browser.form_post("/console/knowledge/sync", "forged").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let bare = browser
        .client
        .post(format!("{}/api/knowledge/sync", app.address))
        .header(COOKIE, &browser.cookie)
        .send()
        .await
        .expect("a response");
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);

    // The sync runs (as `closer serve` runs it); "Sync now" from the page asks for one more.
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sync.run(async move {
        let _ = stopped.await;
    }));
    let started = browser
        .form_post("/console/knowledge/sync", &browser.csrf)
        .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let after = in_sync(&browser).await;
    assert!(after["run"]["error"].is_null(), "{after}");
    assert_eq!(after["out_of_sync"], 0, "{after}");
    assert_eq!(after["answering"], true, "{after}");
    assert_eq!(sync_status_of(&after, "en-faq.md"), "in_sync", "{after}");
    assert!(!fake.embedded().is_empty());
    let page = browser
        .get("/console/knowledge")
        .await
        .text()
        .await
        .expect("a page");
    assert!(page.contains("in sync"), "{page}");
    assert!(page.contains("Answering prospects"), "{page}");
    assert!(page.contains("Sync now"), "{page}");

    // A document changed in the console and a new one: both are pushed by themselves, with no
    // "Sync now"; a sync through the API (202) then finds nothing to do.
    let changed = format!(
        "{}\n\nNew: gift cards are sold at the front desk.\n",
        Store::from_pool(pool.clone())
            .documents()
            .await
            .expect("documents")
            .iter()
            .find(|document| document.source == "en-faq.md")
            .expect("the FAQ")
            .content
    );
    for (name, text) in [("en-faq.md", changed.as_str()), ("zebra-care.md", ZEBRA)] {
        let uploaded = browser
            .client
            .post(format!("{}/api/knowledge/documents", app.address))
            .header(COOKIE, &browser.cookie)
            .header("X-CSRF-Token", &browser.csrf)
            .multipart(upload_form(name, text.into(), Some("public"), None))
            .send()
            .await
            .expect("a response");
        assert_eq!(uploaded.status(), StatusCode::CREATED);
    }
    let synced = in_sync(&browser).await;
    assert_eq!(synced["out_of_sync"], 0, "{synced}");
    assert_eq!(sync_status_of(&synced, "en-faq.md"), "in_sync", "{synced}");
    assert_eq!(
        sync_status_of(&synced, "zebra-care.md"),
        "in_sync",
        "{synced}"
    );
    assert!(fake
        .embedded()
        .iter()
        .any(|(_, _, text)| text.contains("gift cards are sold")));
    let again = browser.api_post("/api/knowledge/sync").await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let synced = in_sync(&browser).await;
    assert_eq!(synced["out_of_sync"], 0, "{synced}");
}

/// The value a browser sends for the `select` named `name` when nobody touches it: its
/// `selected` option's, else its first option's.
fn default_choice(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!(r#"<select name="{name}""#))?;
    let end = start + html[start..].find("</select>")?;
    let options: Vec<&str> = html[start..end].split("<option").skip(1).collect();
    let opening = |option: &&str| option.split('>').next().unwrap_or_default().to_owned();
    let chosen = options
        .iter()
        .find(|option| opening(option).contains("selected"))
        .or(options.first())?;
    let value = opening(chosen)
        .split("value=\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_owned();
    Some(value)
}

/// The stored audience of `source`, as the API lists it.
async fn audience_of(browser: &Browser, source: &str) -> Value {
    let documents = browser.get_json("/api/knowledge/documents").await;
    documents
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["source"] == source))
        .map_or(Value::Null, |row| row["audience"].clone())
}

const NOTES: &str = "---\ntitle: Discount rules\naudience: internal\n---\nManagers may give up to 7 percent on the zebra plan without approval.\n";

#[sqlx::test(migrations = "../migrations")]
async fn an_upload_from_the_form_keeps_the_files_own_audience_unless_a_person_picks_one(
    pool: PgPool,
) {
    with_account(&pool).await;
    let app = spawn_app(pool).await;
    let browser = Browser::sign_in(&app.address).await;
    let html = browser
        .get("/console/knowledge")
        .await
        .text()
        .await
        .expect("a page");
    let csrf = csrf_in(&html);
    let untouched = default_choice(&html, "audience").expect("the form has an audience select");
    let post = |name: &str, text: &str, audience: &str| {
        browser
            .client
            .post(format!("{}/console/knowledge/upload", app.address))
            .header(COOKIE, &browser.cookie)
            .multipart(upload_form(
                name,
                text.as_bytes().to_vec(),
                Some(audience),
                Some(&csrf),
            ))
            .send()
    };

    // The form as a browser sends it untouched: the file's own front matter decides.
    let uploaded = post("discount-rules.md", NOTES, &untouched)
        .await
        .expect("a response");
    assert_eq!(uploaded.status(), StatusCode::SEE_OTHER);
    assert_eq!(audience_of(&browser, "discount-rules.md").await, "internal");
    assert!(!found_sources(&browser, "zebra plan approval", false)
        .await
        .contains(&"discount-rules.md".to_owned()));
    let plain = post("zebra-care.md", ZEBRA, &untouched)
        .await
        .expect("a response");
    assert_eq!(plain.status(), StatusCode::SEE_OTHER);
    assert_eq!(audience_of(&browser, "zebra-care.md").await, "public");

    // A person's explicit choice overrides the file.
    let explicit = post("discount-rules.md", NOTES, "public")
        .await
        .expect("a response");
    assert_eq!(explicit.status(), StatusCode::SEE_OTHER);
    assert_eq!(audience_of(&browser, "discount-rules.md").await, "public");
    let explicit = post("zebra-care.md", ZEBRA, "internal")
        .await
        .expect("a response");
    assert_eq!(explicit.status(), StatusCode::SEE_OTHER);
    assert_eq!(audience_of(&browser, "zebra-care.md").await, "internal");

    // An audience the importer does not know: refused, naming the file and the value.
    let typo = post(
        "margins.md",
        "---\naudience: secret\n---\nOur margin is 40 percent.\n",
        &untouched,
    )
    .await
    .expect("a response");
    assert_eq!(typo.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let shown = typo.text().await.expect("a page");
    assert!(shown.contains("margins.md"), "{shown}");
    assert!(shown.contains("secret"), "{shown}");
    assert_eq!(audience_of(&browser, "margins.md").await, Value::Null);
}

#[sqlx::test(migrations = "../migrations")]
async fn without_anythingllm_the_knowledge_page_says_so(pool: PgPool) {
    with_account(&pool).await;
    let app = spawn_app(pool).await;
    let browser = Browser::sign_in(&app.address).await;
    let status = browser.get_json("/api/knowledge/sync").await;
    assert_eq!(status["configured"], false, "{status}");
    let refused = browser.api_post("/api/knowledge/sync").await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let refused: Value = refused.json().await.expect("JSON");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not configured"),
        "{refused}"
    );
    let page = browser
        .get("/console/knowledge")
        .await
        .text()
        .await
        .expect("a page");
    assert!(page.contains("AnythingLLM is not configured"), "{page}");
    let anonymous = client()
        .get(format!("{}/api/knowledge/sync", app.address))
        .send()
        .await
        .expect("a response");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
