//! The console and the website chat in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver by fantoccini; nothing is downloaded), under the
//! console's Content-Security-Policy: sign in, see
//! the dashboard's chart, chat through the widget, find the conversation in the console, take
//! it over, retry its failed lead, upload a knowledge document, and see a salesperson's message reach the widget over its
//! event stream.
//!
//! With `CLOSER_SCREENSHOTS=DIR` it saves `dashboard.png` and `conversation.png` there (the
//! README's pictures come from `CLOSER_SCREENSHOTS=docs`).

use std::time::Duration;

use closer_model::{Channel, InboundContent, InboundMessage};
use closer_store::Store;
use closer_tests::spawn_app;
use fantoccini::{Client, ClientBuilder, Locator};
use sqlx::PgPool;
use tokio::process::{Child, Command};

const EMAIL: &str = "manager@example.com";
const PASSWORD: &str = "correct horse battery";
const DEADLINE: Duration = Duration::from_secs(30);

/// chromedriver on a free port, killed when dropped.
struct Driver {
    _process: Child,
    url: String,
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let process = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver runs: install Debian's chromium and chromium-driver (.ci/run does)");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if reqwest::get(format!("{url}/status"))
            .await
            .is_ok_and(|response| response.status().is_success())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver {
        _process: process,
        url,
    }
}

async fn browser(driver: &Driver) -> Client {
    // Two rustls providers are linked into the tests (ring and aws-lc-rs, from different
    // crates); the WebDriver client needs one chosen. Another test may have chosen already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1360,1000", "--lang=en-US"],
        }),
    );
    ClientBuilder::rustls()
        .expect("a TLS configuration")
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Waits until an element matching `css` contains `needle`; returns its text.
async fn wait_for_text(client: &Client, css: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(elements) = client.find_all(Locator::Css(css)).await {
            for element in elements {
                if let Ok(text) = element.text().await {
                    if text.contains(needle) {
                        return text;
                    }
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {css} with {needle:?} on {}",
            client
                .current_url()
                .await
                .map(|url| url.to_string())
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    if let Ok(dir) = std::env::var("CLOSER_SCREENSHOTS") {
        let png = client.screenshot().await.expect("a screenshot");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(dir);
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        std::fs::write(dir.join(name), png).expect("the screenshot is saved");
    }
}

/// A few conversations from the demo dialogs, so that the dashboard has something to draw.
async fn some_history(app: &closer_tests::TestApp) {
    let dialogs = std::fs::read_to_string(closer_tests::config_dir().join("eval/dialogs.jsonl"))
        .expect("the demo dialogs");
    for (index, line) in dialogs.lines().take(6).enumerate() {
        let dialog: serde_json::Value = serde_json::from_str(line).expect("a dialog");
        let channel = if index % 2 == 0 {
            Channel::Web
        } else {
            Channel::Telegram
        };
        let mut turns: Vec<String> = dialog["turns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|turn| turn.as_str().map(str::to_owned))
            .collect();
        turns.push(["5", "4", "5"][index % 3].to_owned());
        for (number, text) in turns.into_iter().enumerate() {
            app.engine
                .handle(&InboundMessage {
                    channel,
                    chat_id: format!("history-{index}"),
                    platform_message_id: number.to_string(),
                    sender_name: None,
                    content: InboundContent::Text { text },
                    received_at: chrono::Utc::now(),
                })
                .await
                .expect("the engine answers");
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_manager_signs_in_watches_a_chat_takes_it_over_and_retries_its_lead(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    closer_web::auth::create_account(&store, EMAIL, PASSWORD)
        .await
        .expect("an account");
    let app = spawn_app(pool.clone()).await;
    some_history(&app).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;

    // Sign in; the dashboard draws its charts.
    client
        .goto(&format!("{}/console/dashboard", app.address))
        .await
        .expect("the console");
    let email = client
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css("input[name=email]"))
        .await
        .expect("the sign-in form, after a redirect");
    email.send_keys(EMAIL).await.expect("typed");
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("the password field")
        .send_keys(PASSWORD)
        .await
        .expect("typed");
    client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("clicked");
    let chart = client
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css("#funnel svg.chart rect"))
        .await
        .expect("the funnel chart");
    let width: f64 = chart
        .attr("width")
        .await
        .expect("an attribute")
        .and_then(|width| width.parse().ok())
        .expect("a width");
    assert!(width > 0.0, "the first bar is drawn");
    wait_for_text(&client, "#funnel", "Conversations").await;
    screenshot(&client, "dashboard.png").await;

    // Chat through the widget on the "Try it" page, as a visitor would.
    client
        .goto(&format!("{}/console/try", app.address))
        .await
        .expect("the try page");
    wait_for_text(&client, ".closer-assistant", "").await;
    // The widget's <style> element is allowed by the console's Content-Security-Policy (by its
    // hash): its rules apply (a blocked sheet leaves the head without its blue).
    let head_colour = client
        .execute(
            "return getComputedStyle(document.querySelector('.closer-head')).backgroundColor",
            Vec::new(),
        )
        .await
        .expect("a script runs");
    assert_eq!(
        head_colour,
        serde_json::json!("rgb(37, 99, 235)"),
        "the widget's style applies"
    );
    let input = client
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css(".closer-form textarea"))
        .await
        .expect("the chat's input");
    input
        .send_keys("сколько стоит ваш самый дешевый тариф?")
        .await
        .expect("typed");
    client
        .find(Locator::Css(".closer-form button"))
        .await
        .expect("send")
        .click()
        .await
        .expect("clicked");
    wait_for_text(&client, ".closer-assistant", "Sources:").await;
    input
        .send_keys("Отлично, давайте созвонимся. Анна Смирнова, +7 (912) 555-01-02")
        .await
        .expect("typed");
    client
        .find(Locator::Css(".closer-form button"))
        .await
        .expect("send")
        .click()
        .await
        .expect("clicked");
    wait_for_text(&client, ".closer-visitor", "Анна Смирнова").await;

    // The conversation is in the console, with its contact; take it over.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while store
        .lead_for_conversation(
            store
                .console_conversations(&closer_store::ConversationFilter {
                    search: Some("912".to_owned()),
                    ..Default::default()
                })
                .await
                .expect("the list")
                .first()
                .map(|found| found.id)
                .unwrap_or_default(),
        )
        .await
        .expect("a lead lookup")
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lead was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .goto(&format!("{}/console/conversations?q=912", app.address))
        .await
        .expect("the list");
    client
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css("table.list tbody a"))
        .await
        .expect("the conversation is listed")
        .click()
        .await
        .expect("clicked");
    wait_for_text(&client, "#contact", "+79125550102").await;
    wait_for_text(&client, "#transcript", "Cited:").await;
    client
        .find(Locator::Css("form[action$='/take-over'] button"))
        .await
        .expect("the take-over button")
        .click()
        .await
        .expect("clicked");
    wait_for_text(&client, "#takeover", EMAIL).await;
    screenshot(&client, "conversation.png").await;

    // The lead's hand-off fails for good; the leads page shows why, and Retry queues it again.
    let claimed = store
        .claim_due_handoffs(chrono::Utc::now(), 10, Duration::from_secs(60))
        .await
        .expect("claimed");
    for handoff in &claimed {
        store
            .mark_handoff_failed(
                handoff.entry.id,
                handoff.lease_token,
                "the tracker refused the token",
                None,
            )
            .await
            .expect("marked");
    }
    client
        .goto(&format!("{}/console/leads", app.address))
        .await
        .expect("the leads");
    wait_for_text(&client, "#leads", "the tracker refused the token").await;
    let before = client
        .find_all(Locator::Css("form[action$='/retry'] button"))
        .await
        .expect("retry buttons")
        .len();
    assert!(before > 0, "a failed lead offers a retry");
    client
        .find(Locator::Css("form[action$='/retry'] button"))
        .await
        .expect("a retry button")
        .click()
        .await
        .expect("clicked");
    wait_for_text(&client, "#leads", "pending").await;
    let after = client
        .find_all(Locator::Css("form[action$='/retry'] button"))
        .await
        .expect("retry buttons")
        .len();
    assert_eq!(
        after,
        before - 1,
        "the retried lead has no failed hand-off left"
    );

    // Knowledge: a file uploaded through the page's form, as internal, is listed and found.
    let folder = std::env::temp_dir().join(format!("closer-upload-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("a temporary folder");
    let file = folder.join("okapi-notes.md");
    std::fs::write(
        &file,
        "# Okapi notes\n\nThe okapi discount for resellers is 12 percent, for the sales team only.\n",
    )
    .expect("the file is written");
    client
        .goto(&format!("{}/console/knowledge", app.address))
        .await
        .expect("the knowledge page");
    client
        .find(Locator::Css("#upload input[type=file]"))
        .await
        .expect("the file input")
        .send_keys(&file.to_string_lossy())
        .await
        .expect("the file is chosen");
    client
        .find(Locator::Css("#upload select[name=audience]"))
        .await
        .expect("the audience")
        .select_by_value("internal")
        .await
        .expect("internal is chosen");
    client
        .find(Locator::Css("#upload button[type=submit]"))
        .await
        .expect("the upload button")
        .click()
        .await
        .expect("clicked");
    wait_for_text(&client, ".notice", "Uploaded okapi-notes.md").await;
    wait_for_text(&client, "#documents", "Okapi notes").await;
    client
        .goto(&format!(
            "{}/console/knowledge?q=okapi%20discount&internal=1",
            app.address
        ))
        .await
        .expect("a search");
    wait_for_text(&client, "#answer", "12 percent").await;
    let _ = std::fs::remove_dir_all(&folder);
    // Deleting asks first.
    client
        .find(Locator::Css("button[title='Delete okapi-notes.md']"))
        .await
        .expect("the delete button")
        .click()
        .await
        .expect("clicked");
    client
        .accept_alert()
        .await
        .expect("the deletion is confirmed");
    wait_for_text(&client, ".notice", "Deleted okapi-notes.md").await;
    assert!(
        !client
            .find(Locator::Css("#documents"))
            .await
            .expect("the documents")
            .text()
            .await
            .expect("their text")
            .contains("Okapi notes"),
        "the deleted document is not listed"
    );
    client
        .goto(&format!("{}/console/health", app.address))
        .await
        .expect("the health page");
    wait_for_text(&client, "#targets", "webhook").await;

    // Back in the widget, which listens to its event stream: a salesperson's message arrives
    // without a reload, over server-sent events rather than polling.
    client
        .goto(&format!("{}/console/try", app.address))
        .await
        .expect("the try page");
    wait_for_text(&client, ".closer-visitor", "Анна Смирнова").await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while client
        .find(Locator::Css(".closer-chat[data-live='events']"))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the widget's event stream did not open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let conversation = store
        .console_conversations(&closer_store::ConversationFilter {
            search: Some("912".to_owned()),
            ..Default::default()
        })
        .await
        .expect("the list")
        .first()
        .map(|found| found.id)
        .expect("the conversation");
    app.engine
        .send_as_person(
            conversation,
            "browser-sse-1",
            EMAIL,
            "Anna, this is Maria: I will call you at 3 pm.",
        )
        .await
        .expect("the message is stored");
    wait_for_text(&client, ".closer-person", "I will call you at 3 pm").await;
    assert!(
        client
            .find(Locator::Css(".closer-chat[data-live='events']"))
            .await
            .is_ok(),
        "delivered over the event stream, not by polling"
    );
    client.close().await.expect("the session closes");
}
