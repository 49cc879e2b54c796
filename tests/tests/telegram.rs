//! End to end through the Telegram adapter: the real adapter (teloxide, governor, the store on
//! the real PostgreSQL) against the local fake Bot API, from a prospect's first message to a
//! rated lead; the webhook's secret; 429s, a blocked bot and malformed updates; and a kill in
//! the middle of a burst, after which every chat is answered exactly once.

use std::time::Duration;

use closer_model::Channel;
use closer_store::Store;
use closer_telegram::{Limits, Mode, Telegram, TelegramConfig};
use closer_tests::demo_engine;
use closer_tests::fake_telegram::{FakeTelegram, Fault, Sent, FAKE_TOKEN};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::oneshot;

/// How long a test waits for a condition; generous, as the tests share the database server and
/// its connections (sqlx::test gives all of a binary's tests 20) with each other.
const DEADLINE: Duration = Duration::from_secs(60);

fn config(fake: &FakeTelegram, mode: Mode) -> TelegramConfig {
    TelegramConfig {
        token: FAKE_TOKEN.to_owned().into(),
        api_url: fake.api_url(),
        mode,
        limits: Limits::default(),
    }
}

fn polling() -> Mode {
    Mode::Polling {
        timeout: Duration::from_secs(5),
    }
}

/// The adapter, long polling the fake, until dropped.
struct Running {
    telegram: Telegram,
    _stop: oneshot::Sender<()>,
}

async fn start_polling(pool: PgPool, fake: &FakeTelegram) -> Running {
    let engine = demo_engine(pool, Vec::new()).await;
    let telegram = Telegram::connect(config(fake, polling()), engine)
        .await
        .expect("the adapter connects to the fake");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(telegram.clone().run(async move {
        let _ = stopped.await;
    }));
    Running {
        telegram,
        _stop: stop,
    }
}

/// Waits until chat `chat` has received more than `already` messages and every reply the
/// store holds for it has arrived; returns the new ones.
async fn replies_after(fake: &FakeTelegram, pool: &PgPool, chat: i64, already: usize) -> Vec<Sent> {
    let arrived = fake
        .wait_until(DEADLINE, |fake| fake.sent_to(chat).len() > already)
        .await;
    assert!(
        arrived,
        "chat {chat} got no reply; calls: {:#?}",
        fake.calls()
    );
    let store = Store::from_pool(pool.clone());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (pending, _, _) = store
            .reply_delivery_counts(Channel::Telegram, &chat.to_string())
            .await
            .expect("the store answers");
        if pending == 0 && delivered_parts(pool, chat).await == fake.sent_to(chat).len() {
            return fake.sent_to(chat).split_off(already);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chat {chat}: replies pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the store shows no reply of `chat` pending.
async fn settled(store: &Store, chat: i64) -> (i64, i64, i64) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let counts = store
            .reply_delivery_counts(Channel::Telegram, &chat.to_string())
            .await
            .expect("the store answers");
        if counts.0 == 0 && counts.1 + counts.2 > 0 {
            return counts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replies of chat {chat} still pending: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn buttons(sent: &Sent) -> Vec<Value> {
    sent.reply_markup
        .as_ref()
        .and_then(|markup| markup.get("inline_keyboard"))
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .filter_map(Value::as_array)
                .flatten()
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_prospect_goes_from_a_campaign_link_to_a_rated_lead(pool: PgPool) {
    let fake = FakeTelegram::start().await;
    let running = start_polling(pool.clone(), &fake).await;
    let store = Store::from_pool(pool.clone());
    let chat = 501;

    fake.send_text(chat, "/start spring_promo");
    let greeting = replies_after(&fake, &pool, chat, 0).await;
    assert!(!greeting[0].text.is_empty());

    let question = fake.send_text(chat, "сколько стоит ваш самый дешевый тариф?");
    let sent = fake.sent_to(chat).len();
    let answer = replies_after(&fake, &pool, chat, sent).await;
    assert_eq!(answer[0].parse_mode.as_deref(), Some("HTML"));
    assert!(
        answer[0].text.contains("Источник"),
        "an answer cites its documents: {answer:#?}"
    );
    assert!(
        fake.calls()
            .iter()
            .any(|call| call.method == "sendchataction" && call.body["action"] == "typing"),
        "a typing indicator is shown"
    );

    let sent = fake.sent_to(chat).len();
    fake.send_text(chat, "Хотим подключить, давайте созвонимся.");
    let asked = replies_after(&fake, &pool, chat, sent).await;
    let contact_button = asked.iter().find(|sent| {
        sent.reply_markup
            .as_ref()
            .and_then(|markup| markup.get("keyboard"))
            .is_some_and(|keyboard| keyboard.to_string().contains("\"request_contact\":true"))
    });
    assert!(
        contact_button.is_some(),
        "the assistant asks for contact details with a share-my-phone button: {asked:#?}"
    );

    let sent = fake.sent_to(chat).len();
    let shared = fake.share_contact(chat, "+79031234567", "Иван");
    let confirmed = replies_after(&fake, &pool, chat, sent).await;
    let conversation = store
        .conversation_by_chat(Channel::Telegram, &chat.to_string())
        .await
        .unwrap()
        .expect("the conversation is stored");
    let lead = store
        .lead_for_conversation(conversation.id)
        .await
        .unwrap()
        .expect("the shared contact makes the lead");
    assert_eq!(
        lead.details
            .contact
            .phone
            .as_ref()
            .map(|phone| phone.as_str()),
        Some("+79031234567")
    );
    assert_eq!(lead.details.contact.name.as_deref(), Some("Иван"));
    assert_eq!(lead.source_campaign.as_deref(), Some("spring_promo"));

    let rated = confirmed
        .iter()
        .find(|sent| buttons(sent).len() == 5)
        .unwrap_or_else(|| {
            panic!("the lead is confirmed and a 1-to-5 rating asked: {confirmed:#?}")
        });
    assert!(
        confirmed[0]
            .reply_markup
            .as_ref()
            .is_some_and(|markup| markup["remove_keyboard"] == true),
        "the share-my-phone keyboard is removed: {confirmed:#?}"
    );

    // Telegram delivers the contact and an earlier question again: nothing new happens.
    let sent = fake.sent_to(chat).len();
    fake.push_raw_update(json!({ "message": fake.update(shared)["message"] }));
    fake.push_raw_update(json!({ "message": fake.update(question)["message"] }));
    let thanks = fake.send_text(chat, "Спасибо!");
    let welcome = replies_after(&fake, &pool, chat, sent).await;
    assert_eq!(
        welcome.len(),
        1,
        "only the thanks is answered: {welcome:#?}"
    );

    let five = buttons(rated)
        .into_iter()
        .find(|button| button["text"] == "5")
        .expect("a button 5");
    let data = five["callback_data"].as_str().expect("callback data");
    assert!(data.len() <= 64);

    let sent = fake.sent_to(chat).len();
    fake.press_button(chat, rated.message_id, data);
    replies_after(&fake, &pool, chat, sent).await;
    assert_eq!(store.rating(conversation.id).await.unwrap(), Some(5));
    assert!(
        fake.wait_until(DEADLINE, |fake| fake
            .calls()
            .iter()
            .any(|call| call.method == "answercallbackquery"))
            .await,
        "the button press is acknowledged"
    );

    let leads: i64 = sqlx::query_scalar("select count(*) from leads")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(leads, 1, "one lead, whatever was redelivered");
    let inbound: i64 = sqlx::query_scalar("select count(*) from messages where direction = 'in'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(inbound, 6, "six messages, the redelivered ones not again");
    assert!(fake.acknowledged_offset() > thanks);
    settled(&store, chat).await;
    drop(running);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_objection_is_answered_and_media_gets_a_polite_note(pool: PgPool) {
    let fake = FakeTelegram::start().await;
    let _running = start_polling(pool.clone(), &fake).await;
    let chat = 502;

    fake.send_text(chat, "we already use another booking app, why switch");
    let objection = replies_after(&fake, &pool, chat, 0).await;
    assert!(!objection[0].text.is_empty());
    let kind: String =
        sqlx::query_scalar("select kind from messages where direction = 'out' order by id limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kind, "objection");

    let sent = fake.sent_to(chat).len();
    fake.send_message(chat, json!({ "sticker": { "file_id": "s1", "file_unique_id": "u1",
        "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false } }));
    let note = replies_after(&fake, &pool, chat, sent).await;
    assert!(
        note[0].text.to_lowercase().contains("text") || note[0].text.contains("текст"),
        "the prospect is told the assistant reads text: {note:#?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_webhook_checks_the_secret_token(pool: PgPool) {
    let fake = FakeTelegram::start().await;
    let engine = demo_engine(pool.clone(), Vec::new()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/telegram/webhook");
    let telegram = Telegram::connect(
        config(
            &fake,
            Mode::Webhook {
                public_url: url.clone(),
                path: "/telegram/webhook".to_owned(),
                secret: Some("s3cret-token".to_owned().into()),
            },
        ),
        engine.clone(),
    )
    .await
    .unwrap();
    let app =
        closer::server::Application::with_listener(listener, engine).with_routes(telegram.router());
    let (stop, stopped) = oneshot::channel::<()>();
    let (stop_channel, channel_stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    tokio::spawn(telegram.run(async move {
        let _ = channel_stopped.await;
    }));
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.webhook().is_some())
            .await
    );
    assert_eq!(
        fake.webhook(),
        Some((url.clone(), Some("s3cret-token".to_owned())))
    );

    let chat = 503;
    let update = fake.send_text(chat, "Сколько стоит тариф?");
    let client = reqwest::Client::new();
    let body = fake.update(update);
    for secret in [None, Some("wrong")] {
        let mut request = client.post(&url).json(&body);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "secret {secret:?}");
    }
    let inbound: i64 = sqlx::query_scalar("select count(*) from messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(inbound, 0, "a refused call is never processed");

    let malformed = client
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", "s3cret-token")
        .body("{\"update_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);

    assert_eq!(fake.deliver_to_webhook(update).await, 200);
    let answer = replies_after(&fake, &pool, chat, 0).await;
    assert!(answer[0].text.contains("Источник"), "{answer:#?}");
    // Telegram retries a webhook call it did not see answered: the same update, once.
    assert_eq!(fake.deliver_to_webhook(update).await, 200);
    let store = Store::from_pool(pool.clone());
    settled(&store, chat).await;
    let inbound: i64 = sqlx::query_scalar("select count(*) from messages where direction = 'in'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(inbound, 1);
    let _ = (stop.send(()), stop_channel.send(()));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_429_is_waited_out_and_the_reply_still_arrives_once(pool: PgPool) {
    let fake = FakeTelegram::start().await;
    let running = start_polling(pool.clone(), &fake).await;
    let store = Store::from_pool(pool.clone());
    let chat = 504;
    fake.fail_next("sendMessage", Fault::RetryAfter(1));

    fake.send_text(chat, "Сколько стоит тариф?");
    settled(&store, chat).await;
    let (pending, sent, failed) = store
        .reply_delivery_counts(Channel::Telegram, &chat.to_string())
        .await
        .unwrap();
    assert_eq!((pending, failed), (0, 0));
    assert_eq!(fake.too_many_requests(), 1);
    assert_eq!(
        running
            .telegram
            .sender()
            .stats()
            .retry_after
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let parts = delivered_parts(&pool, chat).await;
    assert_eq!(
        fake.sent_to(chat).len(),
        parts,
        "each reply arrives once (stored replies: {sent})"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_blocked_bot_gives_up_on_the_reply_without_a_retry_storm(pool: PgPool) {
    let fake = FakeTelegram::start().await;
    let running = start_polling(pool.clone(), &fake).await;
    let store = Store::from_pool(pool.clone());
    let chat = 505;
    fake.fail_next(
        "sendMessage",
        Fault::Api {
            code: 403,
            description: "Forbidden: bot was blocked by the user".to_owned(),
        },
    );

    fake.send_text(chat, "Сколько стоит тариф?");
    let (pending, _, failed) = settled(&store, chat).await;
    assert_eq!(pending, 0);
    assert_eq!(failed, 1, "the refused reply is marked failed");
    let error: String =
        sqlx::query_scalar("select delivery_error from messages where delivery = 'failed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(error.contains("blocked"), "{error}");
    let attempts = fake
        .calls()
        .iter()
        .filter(|call| call.method == "sendmessage")
        .count();
    // The refused reply once, then the rest of the turn's replies.
    assert_eq!(attempts, fake.sent_to(chat).len() + 1);
    assert_eq!(
        running
            .telegram
            .sender()
            .stats()
            .replies_failed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // The prospect unblocks the bot and writes again: answered.
    let sent = fake.sent_to(chat).len();
    fake.send_text(chat, "А пробный период есть?");
    replies_after(&fake, &pool, chat, sent).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_and_malformed_updates_are_skipped_and_the_queue_moves_on(pool: PgPool) {
    let fake = FakeTelegram::start().await;
    let _running = start_polling(pool.clone(), &fake).await;
    let chat = 506;

    fake.fail_next("getUpdates", Fault::MalformedBody);
    let unknown = fake.push_raw_update(json!({ "business_connection": { "id": "b1" } }));
    let broken = fake.push_raw_update(json!({ "message": { "message_id": "not a number" } }));
    fake.send_text(chat, "Сколько стоит тариф?");
    replies_after(&fake, &pool, chat, 0).await;
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.acknowledged_offset()
            > broken.max(unknown))
            .await,
        "the unparseable updates are acknowledged, not fetched forever"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_mention_among_case_changing_letters_is_answered_and_crashes_nothing(pool: PgPool) {
    // One group message like this once panicked the channel and, never acknowledged, came
    // back at every start.
    let fake = FakeTelegram::start().await;
    let _running = start_polling(pool.clone(), &fake).await;
    let group = -701;
    fake.send_group_text(
        group,
        81,
        "İİ ẞẞ @closer_test_bot ẞİ сколько стоит тариф?",
        None,
    );
    replies_after(&fake, &pool, group, 0).await;
    fake.send_text(507, "А пробный период есть?");
    replies_after(&fake, &pool, 507, 0).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_update_that_does_not_parse_is_a_dead_letter_that_can_be_retried(pool: PgPool) {
    let fake = FakeTelegram::start().await;
    let _running = start_polling(pool.clone(), &fake).await;
    fake.fail_next("getUpdates", Fault::MalformedBody);
    let broken = fake.push_raw_update(json!({ "message": { "message_id": "not a number" } }));
    fake.send_text(508, "Сколько стоит тариф?");
    replies_after(&fake, &pool, 508, 0).await;
    let store = Store::from_pool(pool.clone());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let letters = loop {
        let letters = store.dead_letters(10).await.expect("the store answers");
        if !letters.is_empty() {
            break letters;
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert_eq!(letters[0].external_id, broken.to_string());
    assert!(letters[0].reason.contains("does not parse"), "{letters:#?}");
    assert!(letters[0].payload.contains("not a number"));

    // Asked to try again, it fails again (it still does not parse): kept, one attempt more.
    assert!(store
        .request_dead_letter_retry(letters[0].id)
        .await
        .expect("the store answers"));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let now = store.dead_letters(10).await.expect("the store answers");
        if now.len() == 1 && now[0].attempts == 2 && now[0].retry_requested_at.is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not retried: {now:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many Telegram messages the store says were sent to `chat`.
async fn delivered_parts(pool: &PgPool, chat: i64) -> usize {
    let parts: i64 = sqlx::query_scalar(
        "select coalesce(sum(cardinality(m.platform_reply_ids)), 0)::bigint
         from messages m join conversations c on c.id = m.conversation_id
         where c.channel = 'telegram' and c.chat_id = $1 and m.delivery = 'sent'",
    )
    .bind(chat.to_string())
    .fetch_one(pool)
    .await
    .expect("the store answers");
    usize::try_from(parts).expect("a count")
}

/// How many Telegram messages the store says were sent, to every chat.
async fn delivered_parts_in_all(pool: &PgPool) -> usize {
    let parts: i64 = sqlx::query_scalar(
        "select coalesce(sum(cardinality(platform_reply_ids)), 0)::bigint
         from messages where delivery = 'sent'",
    )
    .fetch_one(pool)
    .await
    .expect("the store answers");
    usize::try_from(parts).expect("a count")
}

/// Kill Closer in the middle of a burst (its whole runtime, as a crash would), start it again
/// on the same database: every chat answered, none twice, every message read once.
#[sqlx::test(migrations = "../migrations")]
async fn a_kill_during_a_burst_loses_and_duplicates_nothing(pool: PgPool) {
    const CHATS: i64 = 40;
    let fake = FakeTelegram::start().await;
    let options = (*pool.connect_options()).clone();

    // The first Closer runs on its own runtime, so that it can be killed outright.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api_url = fake.api_url();
    let (connected, is_connected) = oneshot::channel::<()>();
    doomed.spawn({
        let options = options.clone();
        async move {
            let pool = PgPoolOptions::new()
                .max_connections(5)
                .connect_with(options)
                .await
                .unwrap();
            let engine = demo_engine(pool, Vec::new()).await;
            let telegram = Telegram::connect(
                TelegramConfig {
                    token: FAKE_TOKEN.to_owned().into(),
                    api_url,
                    mode: polling(),
                    limits: Limits::default(),
                },
                engine,
            )
            .await
            .unwrap();
            let _ = connected.send(());
            telegram.run(std::future::pending()).await
        }
    });
    is_connected.await.unwrap();
    for chat in 1..=CHATS {
        fake.send_text(chat, "Сколько стоит тариф?");
    }
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.sent().len() >= 10)
            .await
    );
    // Freeze Telegram and let the sends it already accepted be recorded: the kill then comes
    // with replies pending and updates unacknowledged. (A crash between Telegram accepting a
    // message and the store recording it would send that one message again: the Bot API has
    // no idempotency key. That window is one HTTP response long and is not what this tests.)
    fake.freeze();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while delivered_parts_in_all(&pool).await != fake.sent().len() {
        assert!(tokio::time::Instant::now() < deadline, "sends are recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::spawn_blocking(move || doomed.shutdown_timeout(Duration::from_secs(10)))
        .await
        .unwrap();
    fake.thaw();
    let before_restart = fake.sent().len();
    let pending: i64 = sqlx::query_scalar(
        "select count(*) from messages where direction = 'out' and delivery = 'pending'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let answered_before = fake.chats_with_replies();
    assert!(
        answered_before < usize::try_from(CHATS).unwrap(),
        "the kill came in the middle of the burst"
    );

    let _running = start_polling(pool.clone(), &fake).await;
    let everyone = fake
        .wait_until(Duration::from_secs(60), |fake| {
            fake.chats_with_replies() == usize::try_from(CHATS).unwrap()
        })
        .await;
    assert!(everyone, "every chat is answered after the restart");
    let store = Store::from_pool(pool.clone());
    for chat in 1..=CHATS {
        settled(&store, chat).await;
        assert_eq!(
            fake.sent_to(chat).len(),
            delivered_parts(&pool, chat).await,
            "chat {chat} got each reply once"
        );
    }
    let inbound: i64 = sqlx::query_scalar("select count(*) from messages where direction = 'in'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(inbound, CHATS, "every message read once");
    eprintln!(
        "killed after {before_restart} messages ({answered_before} chats answered, \
         {pending} replies pending); the rest after the restart"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn idle_chats_are_forgotten_by_the_pacer(pool: PgPool) {
    let fake = FakeTelegram::start().await;
    let running = start_polling(pool.clone(), &fake).await;
    let store = Store::from_pool(pool.clone());
    for chat in [601, 602, 603] {
        fake.send_text(chat, "Привет");
    }
    for chat in [601, 602, 603] {
        settled(&store, chat).await;
    }
    let sender = running.telegram.sender();
    assert!(sender.tracked_chats() > 0);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        sender.sweep();
        if sender.tracked_chats() == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "idle chats stay");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn in_a_group_the_bot_answers_only_when_addressed(pool: PgPool) {
    let fake = FakeTelegram::start().await;
    let _running = start_polling(pool.clone(), &fake).await;
    let group = -700;

    fake.send_group_text(group, 71, "Коллеги, кто идёт на обед?", None);
    fake.send_group_text(
        group,
        72,
        "@closer_test_bot сколько стоит ваш самый дешевый тариф?",
        None,
    );
    let answer = replies_after(&fake, &pool, group, 0).await;
    assert!(answer[0].text.contains("Источник"), "{answer:#?}");
    let sent = fake.sent_to(group).len();
    fake.send_group_text(
        group,
        71,
        "А пробный период есть?",
        Some(answer[0].message_id),
    );
    replies_after(&fake, &pool, group, sent).await;

    let read: Vec<String> =
        sqlx::query_scalar("select text from messages where direction = 'in' order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        read,
        vec![
            "сколько стоит ваш самый дешевый тариф?".to_owned(),
            "А пробный период есть?".to_owned()
        ],
        "the mention is stripped and the chatter not read"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_salespersons_words_reach_the_prospect_and_the_bot_stays_silent_until_handed_back(
    pool: PgPool,
) {
    let fake = FakeTelegram::start().await;
    let running = start_polling(pool.clone(), &fake).await;
    let chat = 507;
    fake.send_text(chat, "Сколько стоит тариф?");
    let before = replies_after(&fake, &pool, chat, 0).await.len();

    let engine = running.telegram.engine().clone();
    let conversation = engine
        .store()
        .conversation_by_chat(Channel::Telegram, &chat.to_string())
        .await
        .expect("the store answers")
        .expect("the conversation exists")
        .id;
    assert!(engine
        .take_over(conversation, "Anna")
        .await
        .expect("taken over"));
    let sent = engine
        .send_as_person(
            conversation,
            "slack-ts-1",
            "Anna",
            "Здравствуйте! Я Анна, менеджер.",
        )
        .await
        .expect("stored")
        .expect("the conversation exists");
    let retried = engine
        .send_as_person(
            conversation,
            "slack-ts-1",
            "Anna",
            "Здравствуйте! Я Анна, менеджер.",
        )
        .await
        .expect("stored")
        .expect("the conversation exists");
    assert!(retried.duplicate);
    assert_eq!(sent.message_id, retried.message_id);
    let person = replies_after(&fake, &pool, chat, before).await;
    assert_eq!(person.len(), 1, "delivered once: {person:#?}");
    assert_eq!(person[0].text, "Здравствуйте! Я Анна, менеджер.");

    // Taken over: the prospect's next message is recorded and the assistant says nothing.
    let count = fake.sent_to(chat).len();
    fake.send_text(chat, "А скидки есть?");
    let store = Store::from_pool(pool.clone());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while store
        .transcript(conversation)
        .await
        .expect("the store answers")
        .last()
        .is_none_or(|line| line.text != "А скидки есть?")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message is recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.sent_to(chat).len(), count, "the bot is silent");

    assert!(engine.hand_back(conversation).await.expect("handed back"));
    fake.send_text(chat, "Сколько стоит тариф?");
    assert!(
        !replies_after(&fake, &pool, chat, count).await.is_empty(),
        "the bot answers again"
    );
}
