//! End to end through the Slack adapter: the real adapter (slack-morphism, the store on the real
//! PostgreSQL) mounted on Closer's HTTP server, against the local fake Slack, with requests
//! signed like Slack's: the signature and url_verification, questions answered with the team's
//! internal documents (which prospects never see), retries answered once, 429s honoured, long
//! answers split and escaped, slash commands, Socket Mode, and leads posted to the channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use closer_handoff::{Target, Worker};
use closer_model::{Channel, InboundContent, InboundMessage, Route};
use closer_slack::{Membership, NotFound, Slack, SlackConfig, Transport, LEAD_TARGET};
use closer_store::Store;
use closer_telegram::{Limits, Mode, Telegram, TelegramConfig};
use closer_tests::fake_slack::{
    button_press, direct_message, event_callback, mention, now, FakeSlack, FakeUser, Fault, Signer,
    APP_TOKEN, BOT_TOKEN, SIGNING_SECRET,
};
use closer_tests::fake_telegram::{FakeTelegram, FAKE_TOKEN};
use closer_tests::{demo_engine, text};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::oneshot;

/// How long a test waits for a condition; generous, as the tests share the database server.
const DEADLINE: Duration = Duration::from_secs(60);
/// The internal notes' title, in the demo knowledge base (audience: internal).
const INTERNAL_TITLE: &str = "Внутренние заметки отдела продаж";
/// A question only the internal notes answer.
const INTERNAL_QUESTION: &str = "Какую скидку менеджер может дать без согласования?";
const LEADS_CHANNEL: &str = "CLEADS";

fn config(fake: &FakeSlack, transport: Transport) -> SlackConfig {
    SlackConfig {
        bot_token: BOT_TOKEN.to_owned().into(),
        api_url: fake.api_url(),
        transport,
        leads_channel: Some(LEADS_CHANNEL.to_owned()),
        conversation_url: Some("https://closer.example.com/conversations/{id}".to_owned()),
        per_channel_per_second: 1.0,
        not_found: NotFound::default(),
        membership: Membership::default(),
    }
}

fn events() -> Transport {
    Transport::Events {
        signing_secret: SIGNING_SECRET.to_owned().into(),
        path: "/slack".to_owned(),
    }
}

/// Closer's HTTP server with the Slack routes, running until dropped.
struct Running {
    slack: Slack,
    signer: Signer,
    store: Store,
    _stop: oneshot::Sender<()>,
}

async fn start(pool: PgPool, config: SlackConfig) -> Running {
    let engine = demo_engine(pool.clone(), vec![Route::always(LEAD_TARGET)]).await;
    let slack = Slack::connect(config, engine.clone())
        .await
        .expect("the adapter connects to the fake");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let app = closer::server::Application::with_listener(listener, engine.clone())
        .with_routes(slack.router());
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let (stop_slack, slack_stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
        let _ = stop_slack.send(());
    }));
    tokio::spawn(slack.clone().run(async move {
        let _ = slack_stopped.await;
    }));
    Running {
        slack,
        signer: Signer::new(format!("{address}/slack")),
        store: Store::from_pool(pool),
        _stop: stop,
    }
}

/// Waits until `chat` has no reply pending and at least one sent; returns (sent, failed).
async fn settled(store: &Store, chat: &str) -> (i64, i64) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (pending, sent, failed) = store
            .reply_delivery_counts(Channel::Slack, chat)
            .await
            .expect("the store answers");
        if pending == 0 && sent + failed > 0 {
            return (sent, failed);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replies of {chat} still pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn conversations(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM conversations")
        .fetch_one(store.pool())
        .await
        .expect("the store answers")
}

#[sqlx::test(migrations = "../migrations")]
async fn url_verification_is_answered_and_unsigned_or_stale_requests_change_nothing(pool: PgPool) {
    let fake = FakeSlack::start().await;
    let app = start(pool, config(&fake, events())).await;

    let challenge = json!({"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"});
    assert_eq!(
        app.signer.event(&challenge).await,
        (
            200,
            "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".to_owned()
        )
    );

    let question = event_callback(
        "Ev1",
        direct_message("D1", "U1", "1.1", "Сколько стоит тариф?"),
    );
    let body = question.to_string();
    // Unsigned.
    let unsigned = reqwest::Client::new()
        .post(format!("{}/events", app.signer.base))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("Closer answers");
    assert_eq!(unsigned.status().as_u16(), 401);
    // Signed with another secret.
    let mut forger = app.signer.clone();
    forger.secret = "not-the-secret".to_owned();
    assert_eq!(forger.event(&question).await.0, 401);
    // Signed correctly, but six minutes ago (a replay), or from the future.
    for timestamp in [now() - 360, now() + 360] {
        let (status, _) = app
            .signer
            .post_raw("/events", "application/json", body.clone(), timestamp, &[])
            .await;
        assert_eq!(status, 401, "timestamp {timestamp}");
    }
    // A signed command and interaction with a tampered body are refused the same way.
    let mut tampered = app.signer.clone();
    tampered.secret = "x".to_owned();
    assert_eq!(tampered.command(&[("text", "stats")]).await.0, 401);
    assert_eq!(
        tampered
            .interaction(&button_press("C1", "1.0", "U1", "closer_take_over", "x"))
            .await
            .0,
        401
    );
    assert_eq!(conversations(&app.store).await, 0, "nothing was processed");
    assert!(fake.posted().is_empty());
    // A signed body that is not an event is a 400, not a crash.
    assert_eq!(app.signer.event(&json!({"type": "nonsense"})).await.0, 400);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_team_gets_internal_documents_that_prospects_never_see(pool: PgPool) {
    let fake = FakeSlack::start().await;
    let app = start(pool.clone(), config(&fake, events())).await;

    let (status, _) = app
        .signer
        .event(&event_callback(
            "Ev1",
            direct_message("D1", "U1", "1700000000.000100", INTERNAL_QUESTION),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(settled(&app.store, "D1").await, (1, 0));
    let answer = fake.posted_to("D1", None);
    assert_eq!(answer.len(), 1);
    let shown = answer[0].block_text();
    assert!(shown.contains("7%"), "{shown}");
    assert!(
        shown.contains(INTERNAL_TITLE),
        "cites the internal notes: {shown}"
    );

    // The team's question made no lead and asked nothing back.
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&pool)
        .await
        .expect("the store answers");
    assert_eq!(leads, 0);
    assert!(!shown.contains('?'), "no qualification question: {shown}");

    // The same question from prospects, on every prospect channel, never shows them.
    for channel in [Channel::Telegram, Channel::Web, Channel::Discord] {
        let handled = app
            .slack
            .engine()
            .handle(&InboundMessage {
                channel,
                chat_id: format!("prospect-{channel}"),
                platform_message_id: "1".to_owned(),
                sender_name: None,
                content: InboundContent::Text {
                    text: INTERNAL_QUESTION.to_owned(),
                },
                received_at: chrono::Utc::now(),
            })
            .await
            .expect("the engine answers");
        for reply in &handled.replies {
            assert!(
                reply.citations.iter().all(|c| c.title != INTERNAL_TITLE),
                "{channel}: {reply:?}"
            );
            assert!(
                !reply.text.contains("без согласования"),
                "{channel}: {reply:?}"
            );
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn retries_and_duplicate_events_never_answer_twice(pool: PgPool) {
    let fake = FakeSlack::start().await;
    let app = start(pool, config(&fake, events())).await;
    let question = event_callback(
        "Ev7",
        direct_message("D7", "U1", "7.1", "Сколько стоит тариф Старт?"),
    );
    assert_eq!(app.signer.event(&question).await.0, 200);
    assert_eq!(app.signer.event_retry(&question, 1).await.0, 200);
    assert_eq!(app.signer.event_retry(&question, 2).await.0, 200);
    // A mention arrives twice: as app_mention and as a channel message; one answer, in its thread.
    let mentioned = event_callback(
        "Ev8",
        mention("CTEAM", "U2", "8.1", "сколько стоит тариф Старт?"),
    );
    let as_message = event_callback(
        "Ev9",
        json!({"type": "message", "channel": "CTEAM", "channel_type": "channel", "user": "U2",
            "text": "<@UCLOSER> сколько стоит тариф Старт?", "ts": "8.1"}),
    );
    assert_eq!(app.signer.event(&mentioned).await.0, 200);
    assert_eq!(app.signer.event(&as_message).await.0, 200);
    assert_eq!(app.signer.event_retry(&mentioned, 1).await.0, 200);

    assert_eq!(settled(&app.store, "D7").await, (1, 0));
    assert_eq!(settled(&app.store, "CTEAM:8.1").await, (1, 0));
    // Give a wrongly queued second answer every chance to show up before counting.
    assert!(
        !fake
            .wait_until(Duration::from_millis(1500), |fake| fake.posted().len() > 2)
            .await
    );
    assert_eq!(fake.posted_to("D7", None).len(), 1);
    assert_eq!(fake.posted_to("CTEAM", Some("8.1")).len(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_429_is_waited_out_and_the_channel_is_paced(pool: PgPool) {
    let fake = FakeSlack::start().await;
    fake.enforce_channel_rate();
    fake.fail_next(
        "chat.postMessage",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    let app = start(pool, config(&fake, events())).await;
    for (index, question) in [
        "Сколько стоит тариф Старт?",
        "Есть ли пробный период?",
        "Как перенести базу клиентов?",
    ]
    .into_iter()
    .enumerate()
    {
        let ts = format!("9.{index}");
        let event = event_callback(
            &format!("Ev{index}"),
            direct_message("D9", "U1", &ts, question),
        );
        assert_eq!(app.signer.event(&event).await.0, 200);
    }
    let arrived = fake
        .wait_until(DEADLINE, |fake| fake.posted_to("D9", None).len() >= 3)
        .await;
    assert!(arrived, "calls: {:?}", fake.calls());
    assert_eq!(settled(&app.store, "D9").await, (3, 0));
    let posted = fake.posted_to("D9", None);
    // One 429 injected, and none provoked: the channel was paced at one message a second.
    assert_eq!(fake.rate_limited(), 1);
    assert_eq!(
        app.slack
            .sender()
            .stats()
            .retry_after
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    for pair in posted.windows(2) {
        assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(950));
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_long_answer_is_split_within_slacks_limits_and_escaped(pool: PgPool) {
    let fake = FakeSlack::start().await;
    let mut config = config(&fake, events());
    // The "no answer" text is configurable: a long one with mrkdwn's control characters.
    let paragraph = "Цены <уточняйте> у менеджера & в прайсе > договора. ".repeat(50);
    let long = format!("{paragraph}\n\n{paragraph}\n\n{paragraph}");
    config.not_found = NotFound {
        ru: long.clone(),
        en: long.clone(),
    };
    let app = start(pool, config).await;
    let event = event_callback(
        "Ev1",
        direct_message("D2", "U1", "2.1", "квантовая телепортация бегемотов"),
    );
    assert_eq!(app.signer.event(&event).await.0, 200);
    assert_eq!(settled(&app.store, "D2").await, (1, 0));
    let parts = fake.posted_to("D2", None);
    assert!(parts.len() >= 3, "{} parts", parts.len());
    let mut shown = String::new();
    for part in &parts {
        let text = part.block_text();
        assert!(text.chars().count() <= 3000);
        assert!(
            !text.contains('<') && !text.contains('>'),
            "unescaped: {text}"
        );
        shown.push_str(&text);
        shown.push(' ');
    }
    assert_eq!(shown.matches("&lt;уточняйте&gt;").count(), 150);
    assert_eq!(shown.matches("&amp;").count(), 150);
}

#[sqlx::test(migrations = "../migrations")]
async fn slash_commands_answer_at_once_and_then_through_the_response_url(pool: PgPool) {
    let fake = FakeSlack::start().await;
    let app = start(pool, config(&fake, events())).await;
    let command = |text: &'static str, id: &'static str| {
        let response_url = fake.response_url(id);
        let signer = app.signer.clone();
        async move {
            signer
                .command(&[
                    ("token", "unused"),
                    ("team_id", "T1"),
                    ("team_domain", "acme"),
                    ("channel_id", "CTEAM"),
                    ("channel_name", "sales"),
                    ("user_id", "U1"),
                    ("user_name", "anna"),
                    ("command", "/closer"),
                    ("text", text),
                    ("response_url", &response_url),
                    ("trigger_id", &format!("trigger-{id}")),
                ])
                .await
        }
    };
    let (status, body) = command("help", "r1").await;
    assert_eq!(status, 200);
    assert!(body.contains("/closer ask"), "{body}");
    let (status, body) = command("deploy now", "r2").await;
    assert_eq!(status, 200);
    assert!(body.contains("I don't know `deploy`"), "{body}");

    let (status, body) = command(
        "ask Какую скидку менеджер может дать без согласования?",
        "r3",
    )
    .await;
    assert_eq!(status, 200);
    let ack: Value = serde_json::from_str(&body).expect("a JSON acknowledgement");
    assert_eq!(ack["response_type"], "ephemeral");
    assert!(
        fake.wait_until(DEADLINE, |fake| !fake.responses("r3").is_empty())
            .await
    );
    let answer = fake.responses("r3")[0].to_string();
    assert!(answer.contains(INTERNAL_TITLE), "{answer}");

    // Today's figures: one prospect conversation with a lead.
    let engine = app.slack.engine();
    engine
        .handle(&text("p1", "m1", "сколько стоит ваш самый дешевый тариф?"))
        .await
        .expect("the engine answers");
    engine
        .handle(&text(
            "p1",
            "m2",
            "Отлично, давайте созвонимся. Анна, +7 (903) 123-45-67",
        ))
        .await
        .expect("the engine answers");
    let (status, _) = command("stats", "r4").await;
    assert_eq!(status, 200);
    assert!(
        fake.wait_until(DEADLINE, |fake| !fake.responses("r4").is_empty())
            .await
    );
    let stats = fake.responses("r4")[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(stats.contains("Conversations: 1"), "{stats}");
    assert!(stats.contains("Leads: 1"), "{stats}");
    assert!(stats.contains("Conversion: 100%"), "{stats}");
}

#[sqlx::test(migrations = "../migrations")]
async fn socket_mode_answers_and_acknowledges_each_envelope(pool: PgPool) {
    let fake = FakeSlack::start().await;
    let app = start(
        pool,
        config(
            &fake,
            Transport::SocketMode {
                app_token: APP_TOKEN.to_owned().into(),
            },
        ),
    )
    .await;
    assert!(
        fake.wait_until(DEADLINE, FakeSlack::socket_connected).await,
        "calls: {:?}",
        fake.calls()
    );
    let envelope = json!({"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": false,
        "payload": event_callback("Ev1", direct_message("D5", "U1", "5.1", INTERNAL_QUESTION))});
    assert!(fake.send_envelope(envelope));
    assert!(
        fake.wait_until(DEADLINE, |fake| fake
            .acks()
            .iter()
            .any(|ack| ack["envelope_id"] == "env-1"))
            .await
    );
    assert_eq!(settled(&app.store, "D5").await, (1, 0));
    assert!(fake.posted_to("D5", None)[0]
        .block_text()
        .contains(INTERNAL_TITLE));
    // The events routes are not mounted in Socket Mode.
    let (status, _) = app
        .signer
        .event(&json!({"type": "url_verification", "challenge": "x"}))
        .await;
    assert_eq!(status, 404);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_new_lead_is_posted_to_the_channel_once_and_found_again(pool: PgPool) {
    let fake = FakeSlack::start().await;
    let app = start(pool.clone(), config(&fake, events())).await;
    let engine = app.slack.engine();
    engine
        .handle(&text("p1", "m1", "сколько стоит ваш самый дешевый тариф?"))
        .await
        .expect("the engine answers");
    let lead = engine
        .handle(&text(
            "p1",
            "m2",
            "Отлично, давайте созвонимся. Анна <Ltd>, +7 (903) 123-45-67",
        ))
        .await
        .expect("the engine answers")
        .lead_id
        .expect("a lead");
    let posts: Arc<dyn Target> = Arc::new(app.slack.lead_posts().expect("a leads channel"));
    let worker = Worker::new(
        app.store.clone(),
        HashMap::from([(LEAD_TARGET.to_owned(), posts.clone())]),
        Some("https://closer.example.com/conversations/{id}".to_owned()),
    );
    // The first attempt meets a 429: retried later, then posted once.
    fake.fail_next(
        "chat.postMessage",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    let round = worker.run_once().await.expect("the store answers");
    assert_eq!(round.retrying, 1);
    let posted = fake.posted_to(LEADS_CHANNEL, None);
    assert!(posted.is_empty());
    sqlx::query("UPDATE handoff_outbox SET next_attempt_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .expect("the store answers");
    let round = worker.run_once().await.expect("the store answers");
    assert_eq!(round.delivered, 1);
    let posted = fake.posted_to(LEADS_CHANNEL, None);
    assert_eq!(posted.len(), 1);
    let post = &posted[0];
    let shown = post.block_text();
    for expected in ["Анна &lt;Ltd&gt;", "+79031234567", "Open the conversation"] {
        assert!(shown.contains(expected), "{expected} in {shown}");
    }
    assert_eq!(post.buttons()[0]["action_id"], "closer_take_over");
    let (_, entries) = app
        .store
        .lead_with_handoffs(lead)
        .await
        .expect("the store answers")
        .expect("the lead");
    assert_eq!(
        entries[0].external_id.as_deref(),
        Some(format!("{LEADS_CHANNEL}:{}", post.ts).as_str())
    );
    // After an unknown outcome, a retry finds the post by its metadata instead of posting again.
    let handoff = closer_handoff::Handoff {
        key: closer_handoff::Handoff::short_key(&entries[0].idempotency_key),
        subject: closer_handoff::Subject::Lead(
            app.store
                .lead_with_handoffs(lead)
                .await
                .expect("the store answers")
                .expect("the lead")
                .0,
        ),
        transcript: Vec::new(),
        conversation_url: None,
        attempt: 2,
    };
    let found = posts.find(&handoff).await.expect("the fake answers");
    assert_eq!(
        found.map(|created| created.id),
        entries[0].external_id.clone()
    );
    assert_eq!(fake.posted_to(LEADS_CHANNEL, None).len(), 1);
}

/// Runs the hand-off worker with the Slack leads channel until the test ends.
fn deliver_leads(app: &Running) -> tokio::task::JoinHandle<()> {
    let posts: Arc<dyn Target> = Arc::new(app.slack.lead_posts().expect("a leads channel"));
    let worker = Worker::new(
        app.store.clone(),
        HashMap::from([(LEAD_TARGET.to_owned(), posts)]),
        None,
    );
    tokio::spawn(worker.run(Duration::from_millis(100), std::future::pending()))
}

#[sqlx::test(migrations = "../migrations")]
async fn a_telegram_lead_is_taken_over_from_slack_and_handed_back(pool: PgPool) {
    let slack_fake = FakeSlack::start().await;
    let app = start(pool.clone(), config(&slack_fake, events())).await;
    let _worker = deliver_leads(&app);
    // The prospect's bot on the fake Telegram, over the same engine and store.
    let telegram_fake = FakeTelegram::start().await;
    let telegram = Telegram::connect(
        TelegramConfig {
            token: FAKE_TOKEN.to_owned().into(),
            api_url: telegram_fake.api_url(),
            mode: Mode::Polling {
                timeout: Duration::from_secs(5),
            },
            limits: Limits::default(),
        },
        app.slack.engine().clone(),
    )
    .await
    .expect("the Telegram adapter connects to its fake");
    let (_stop_telegram, telegram_stopped) = oneshot::channel::<()>();
    tokio::spawn(telegram.run(async move {
        let _ = telegram_stopped.await;
    }));

    let chat = 4242;
    telegram_fake.send_text(chat, "сколько стоит ваш самый дешевый тариф?");
    assert!(
        telegram_fake
            .wait_until(DEADLINE, |fake| !fake.sent_to(chat).is_empty())
            .await
    );
    telegram_fake.send_text(
        chat,
        "Отлично, давайте созвонимся. Анна, +7 (903) 123-45-67",
    );
    // The lead arrives in the channel, once.
    assert!(
        slack_fake
            .wait_until(DEADLINE, |fake| !fake
                .posted_to(LEADS_CHANNEL, None)
                .is_empty())
            .await,
        "calls: {:?}",
        slack_fake.calls()
    );
    let post = slack_fake.posted_to(LEADS_CHANNEL, None)[0].clone();
    assert!(post.block_text().contains("Анна"), "{}", post.block_text());
    let take_over = post.buttons()[0].clone();
    assert_eq!(take_over["action_id"], "closer_take_over");
    let conversation = take_over["value"]
        .as_str()
        .expect("a conversation id")
        .to_owned();
    // Everything the assistant said so far has reached the prospect.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (pending, _, _) = app
            .store
            .reply_delivery_counts(Channel::Telegram, &chat.to_string())
            .await
            .expect("the store answers");
        if pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Telegram replies pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let replies_before = telegram_fake.sent_to(chat).len();

    // A guest of the workspace cannot take it over: only they are told why.
    slack_fake.set_user("UGUEST", FakeUser::guest());
    let (status, _) = app
        .signer
        .interaction(&button_press(
            LEADS_CHANNEL,
            &post.ts,
            "UGUEST",
            "closer_take_over",
            &conversation,
        ))
        .await;
    assert_eq!(status, 200);
    assert!(
        slack_fake
            .wait_until(DEADLINE, |fake| fake
                .ephemerals()
                .iter()
                .any(
                    |shown| shown.user == "UGUEST" && shown.channel == LEADS_CHANNEL
                ))
            .await
    );
    let id = uuid::Uuid::parse_str(&conversation).expect("a uuid");
    assert!(app
        .store
        .conversation(id)
        .await
        .expect("the store answers")
        .and_then(|c| c.taken_over_by)
        .is_none());

    // A salesperson takes it over: the post says so and the conversation is mirrored.
    let (status, _) = app
        .signer
        .interaction(&button_press(
            LEADS_CHANNEL,
            &post.ts,
            "USALES",
            "closer_take_over",
            &conversation,
        ))
        .await;
    assert_eq!(status, 200);
    assert!(
        slack_fake
            .wait_until(DEADLINE, |fake| {
                fake.posted_to(LEADS_CHANNEL, None)[0].buttons()[0]["action_id"]
                    == "closer_hand_back"
                    && fake
                        .posted_to(LEADS_CHANNEL, Some(&post.ts))
                        .iter()
                        .any(|line| line.block_text().contains("+7 (903) 123-45-67"))
            })
            .await,
        "thread: {:?}",
        slack_fake.posted_to(LEADS_CHANNEL, Some(&post.ts))
    );
    // The prospect writes: the bot stays silent, and the message is mirrored to the thread.
    telegram_fake.send_text(chat, "А когда вы сможете позвонить?");
    assert!(
        slack_fake
            .wait_until(DEADLINE, |fake| fake
                .posted_to(LEADS_CHANNEL, Some(&post.ts))
                .iter()
                .any(|line| line
                    .block_text()
                    .contains("когда вы сможете позвонить")))
            .await
    );
    // A guest writing in the thread reaches nobody but themselves.
    let intruder = thread_message_event(
        "Ev-guest",
        LEADS_CHANNEL,
        "UGUEST",
        &post.ts,
        "1700009998.000001",
        "Скидка 50%, только сегодня",
    );
    assert_eq!(app.signer.event(&intruder).await.0, 200);
    assert!(
        slack_fake
            .wait_until(DEADLINE, |fake| fake.ephemerals().iter().any(|shown| {
                shown.user == "UGUEST" && shown.thread_ts.as_deref() == Some(post.ts.as_str())
            }))
            .await
    );
    // The salesperson answers in the thread; it reaches the Telegram chat once, even retried.
    let answer = thread_message_event(
        "Ev-person",
        LEADS_CHANNEL,
        "USALES",
        &post.ts,
        "1700009999.000001",
        "Анна, позвоню сегодня в 15:00 & пришлю договор",
    );
    assert_eq!(app.signer.event(&answer).await.0, 200);
    assert_eq!(app.signer.event_retry(&answer, 1).await.0, 200);
    assert!(
        telegram_fake
            .wait_until(DEADLINE, |fake| fake
                .sent_to(chat)
                .iter()
                .any(|sent| sent.text.contains("позвоню сегодня в 15:00")))
            .await
    );
    let after = telegram_fake.sent_to(chat).split_off(replies_before);
    assert_eq!(after.len(), 1, "only the person's message, once: {after:?}");
    assert!(!after[0].text.contains("50%"), "not the guest's: {after:?}");
    assert!(
        !after[0].text.contains("USALES"),
        "the prospect never sees who wrote"
    );

    // Hand back: the bot answers again.
    let (status, _) = app
        .signer
        .interaction(&button_press(
            LEADS_CHANNEL,
            &post.ts,
            "USALES",
            "closer_hand_back",
            &conversation,
        ))
        .await;
    assert_eq!(status, 200);
    let store = app.store.clone();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while store
        .conversation(id)
        .await
        .expect("the store answers")
        .and_then(|c| c.taken_over_by)
        .is_some()
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = telegram_fake.sent_to(chat).len();
    telegram_fake.send_text(chat, "Есть ли пробный период?");
    assert!(
        telegram_fake
            .wait_until(DEADLINE, |fake| fake.sent_to(chat).len() > before)
            .await
    );
}

fn thread_message_event(
    id: &str,
    channel: &str,
    user: &str,
    thread_ts: &str,
    ts: &str,
    text: &str,
) -> Value {
    event_callback(
        id,
        closer_tests::fake_slack::thread_message(channel, user, thread_ts, ts, text),
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn a_lead_typed_in_slack_is_recorded_once_even_when_the_command_comes_twice(pool: PgPool) {
    let fake = FakeSlack::start().await;
    let app = start(pool.clone(), config(&fake, events())).await;
    let response_url = fake.response_url("lead");
    let fields = [
        ("team_id", "T1"),
        ("channel_id", "CTEAM"),
        ("user_id", "U1"),
        ("command", "/closer"),
        (
            "text",
            "lead Ольга Смирнова +7 921 555-12-34, хочет CRM для двух салонов",
        ),
        ("response_url", response_url.as_str()),
        ("trigger_id", "trigger-lead-1"),
    ];
    assert_eq!(app.signer.command(&fields).await.0, 200);
    assert!(
        fake.wait_until(DEADLINE, |fake| !fake.responses("lead").is_empty())
            .await
    );
    assert_eq!(app.signer.command(&fields).await.0, 200);
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.responses("lead").len() == 2)
            .await
    );
    let second = fake.responses("lead")[1]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(second.contains("recorded already"), "{second}");
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&pool)
        .await
        .expect("the store answers");
    assert_eq!(leads, 1);
    // A note without a phone or e-mail is refused with the reason.
    let refused_url = fake.response_url("refused");
    let fields = [
        ("team_id", "T1"),
        ("channel_id", "CTEAM"),
        ("user_id", "U1"),
        ("command", "/closer"),
        ("text", "lead someone nice"),
        ("response_url", refused_url.as_str()),
        ("trigger_id", "trigger-lead-2"),
    ];
    assert_eq!(app.signer.command(&fields).await.0, 200);
    assert!(
        fake.wait_until(DEADLINE, |fake| !fake.responses("refused").is_empty())
            .await
    );
    let refused = fake.responses("refused")[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(refused.contains("No lead recorded"), "{refused}");
}

/// Counts rows of `table` (a fixed name from the test).
async fn rows(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .expect("the store answers")
}

#[sqlx::test(migrations = "../migrations")]
async fn only_members_of_the_workspace_get_answers_and_commands(pool: PgPool) {
    let fake = FakeSlack::start().await;
    fake.set_user("UGUEST", FakeUser::guest());
    fake.set_user("USINGLE", FakeUser::single_channel_guest());
    fake.set_user("UEXT", FakeUser::external("TPARTNER"));
    fake.set_user(
        "USTRANGER",
        FakeUser {
            is_stranger: true,
            ..FakeUser::external("TOTHER")
        },
    );
    fake.forget_user("UGONE");
    let app = start(pool, config(&fake, events())).await;

    // Questions from guests and other organisations, by DM and by mention: each is told, in a
    // message only they see, that the copilot is the team's; nothing is answered or stored.
    let asks = [
        (
            "Ev-g1",
            direct_message("DG1", "UGUEST", "10.1", INTERNAL_QUESTION),
        ),
        (
            "Ev-g2",
            direct_message("DG2", "USINGLE", "10.2", INTERNAL_QUESTION),
        ),
        (
            "Ev-g3",
            mention("CSHARED", "UEXT", "10.3", INTERNAL_QUESTION),
        ),
        (
            "Ev-g4",
            mention("CSHARED", "USTRANGER", "10.4", INTERNAL_QUESTION),
        ),
        (
            "Ev-g5",
            direct_message("DG5", "UGONE", "10.5", INTERNAL_QUESTION),
        ),
    ];
    for (id, event) in &asks {
        assert_eq!(
            app.signer.event(&event_callback(id, event.clone())).await.0,
            200,
            "{id}"
        );
    }
    // An event delivered for another workspace the app is installed in, from a member's id.
    let mut elsewhere = event_callback(
        "Ev-g6",
        direct_message("DG6", "U1", "10.6", INTERNAL_QUESTION),
    );
    elsewhere["team_id"] = json!("TOTHER");
    assert_eq!(app.signer.event(&elsewhere).await.0, 200);
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.ephemerals().len() > asks.len())
            .await,
        "{:?}",
        fake.ephemerals()
    );
    let refused: Vec<(String, String, Option<String>)> = fake
        .ephemerals()
        .into_iter()
        .map(|shown| {
            assert!(shown.text.contains("отдела продаж"), "{shown:?}");
            (shown.user, shown.channel, shown.thread_ts)
        })
        .collect();
    for expected in [
        ("UGUEST", "DG1", None),
        ("USINGLE", "DG2", None),
        ("UEXT", "CSHARED", Some("10.3")),
        ("USTRANGER", "CSHARED", Some("10.4")),
        ("UGONE", "DG5", None),
        ("U1", "DG6", None),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.map(str::to_owned),
        );
        assert!(refused.contains(&expected), "{expected:?} in {refused:?}");
    }
    assert!(
        fake.posted().is_empty(),
        "nothing answered: {:?}",
        fake.posted()
    );
    assert_eq!(conversations(&app.store).await, 0, "nothing stored");

    // Slash commands from a guest: refused at once, only they see it, and nothing is created.
    let command = |user: &'static str, text: &'static str, id: &'static str| {
        let response_url = fake.response_url(id);
        let signer = app.signer.clone();
        async move {
            let (status, body) = signer
                .command(&[
                    ("team_id", "T1"),
                    ("channel_id", "CTEAM"),
                    ("user_id", user),
                    ("command", "/closer"),
                    ("text", text),
                    ("response_url", &response_url),
                    ("trigger_id", &format!("trigger-{id}")),
                ])
                .await;
            assert_eq!(status, 200, "{body}");
            serde_json::from_str::<Value>(&body).expect("a JSON acknowledgement")
        }
    };
    for (text, id) in [
        (
            "ask Какую скидку менеджер может дать без согласования?",
            "g-ask",
        ),
        ("lead Ольга +7 921 555-12-34 хочет CRM", "g-lead"),
        ("task позвонить Ольге", "g-task"),
        ("stats", "g-stats"),
        ("help", "g-help"),
    ] {
        let ack = command("UGUEST", text, id).await;
        assert_eq!(ack["response_type"], "ephemeral", "{ack}");
        let shown = ack["text"].as_str().unwrap_or_default();
        assert!(
            shown.contains("only help the sales team") || shown.contains("отдела продаж"),
            "{text}: {ack}"
        );
        assert!(
            !shown.contains("/closer ask"),
            "no usage for a guest: {ack}"
        );
    }
    // A member's command goes through; by the time it is answered, the guest's would have been.
    let ack = command(
        "U1",
        "ask Какую скидку менеджер может дать без согласования?",
        "m-ask",
    )
    .await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Looking up"),
        "{ack}"
    );
    assert!(
        fake.wait_until(DEADLINE, |fake| !fake.responses("m-ask").is_empty())
            .await
    );
    assert!(fake.responses("m-ask")[0]
        .to_string()
        .contains(INTERNAL_TITLE));
    for id in ["g-ask", "g-lead", "g-task", "g-stats", "g-help"] {
        assert!(
            fake.responses(id).is_empty(),
            "{id}: {:?}",
            fake.responses(id)
        );
    }
    assert_eq!(rows(&app.store, "leads").await, 0);
    assert_eq!(rows(&app.store, "tasks").await, 0);

    // A member asks twice: answered, and Slack is asked who they are once (kept for a while).
    let looked_up = fake.calls_of("users.info");
    for (id, ts) in [("Ev-m1", "11.1"), ("Ev-m2", "11.2")] {
        let event = event_callback(id, direct_message("DM1", "U9", ts, INTERNAL_QUESTION));
        assert_eq!(app.signer.event(&event).await.0, 200);
    }
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.posted_to("DM1", None).len() >= 2)
            .await
    );
    assert!(fake.posted_to("DM1", None)[0]
        .block_text()
        .contains(INTERNAL_TITLE));
    assert_eq!(fake.calls_of("users.info"), looked_up + 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn guests_may_ask_when_allowed_but_other_organisations_never_and_slack_down_admits_nobody(
    pool: PgPool,
) {
    let fake = FakeSlack::start().await;
    fake.set_user("UGUEST", FakeUser::guest());
    fake.set_user("UEXT", FakeUser::external("TPARTNER"));
    let mut allowing = config(&fake, events());
    allowing.membership.allow_guests = true;
    let app = start(pool, allowing).await;

    let guest = event_callback(
        "Ev-a1",
        direct_message("DA1", "UGUEST", "12.1", INTERNAL_QUESTION),
    );
    assert_eq!(app.signer.event(&guest).await.0, 200);
    assert_eq!(settled(&app.store, "DA1").await, (1, 0));
    assert!(fake.posted_to("DA1", None)[0]
        .block_text()
        .contains(INTERNAL_TITLE));

    let external = event_callback(
        "Ev-a2",
        direct_message("DA2", "UEXT", "12.2", INTERNAL_QUESTION),
    );
    assert_eq!(app.signer.event(&external).await.0, 200);
    assert!(
        fake.wait_until(DEADLINE, |fake| fake
            .ephemerals()
            .iter()
            .any(|shown| shown.user == "UEXT"))
            .await
    );
    assert!(fake.posted_to("DA2", None).is_empty());

    // Slack cannot say who someone is: nothing is answered, and Slack is asked to deliver the
    // event again; once it can, the retried event is answered.
    fake.fail_next("users.info", Fault::Status(500));
    let unknown = event_callback(
        "Ev-a3",
        direct_message("DA3", "UNEW", "12.3", INTERNAL_QUESTION),
    );
    let (status, _) = app.signer.event(&unknown).await;
    assert_eq!(status, 503);
    assert!(fake.posted_to("DA3", None).is_empty());
    assert_eq!(app.signer.event_retry(&unknown, 1).await.0, 200);
    assert_eq!(settled(&app.store, "DA3").await, (1, 0));
}
