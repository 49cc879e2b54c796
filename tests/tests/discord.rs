//! End to end through the Discord adapter: the real adapter (serenity's gateway client, governor,
//! the store on the real PostgreSQL) against the local fake Discord REST API and gateway, from a
//! prospect's question in a channel to a lead left through `/contact` and a rating; a gateway
//! resume that replays a message; 429s; and the HTTP interactions endpoint's checks.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use closer_discord::{Discord, DiscordConfig, Interactions, Limits, Scope};
use closer_model::Channel;
use closer_store::Store;
use closer_tests::demo_engine;
use closer_tests::fake_discord::{Endpoint, FakeDiscord, Fault, Sent, APPLICATION_ID, FAKE_TOKEN};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::oneshot;

/// How long a test waits for a condition; generous, as tests share the database server.
const DEADLINE: Duration = Duration::from_secs(60);
/// The channel where the assistant answers everything.
const SALES_CHANNEL: u64 = 3001;
/// Another channel of the server, where it answers only when mentioned.
const GENERAL_CHANNEL: u64 = 3002;

fn config(fake: &FakeDiscord, interactions: Interactions) -> DiscordConfig {
    DiscordConfig {
        token: FAKE_TOKEN.to_owned().into(),
        application_id: APPLICATION_ID,
        api_url: fake.api_url(),
        scope: Scope {
            channels: HashSet::from([SALES_CHANNEL]),
            direct_messages: true,
        },
        register_commands: true,
        command_guilds: Vec::new(),
        interactions,
        limits: Limits::default(),
    }
}

/// The adapter, connected to the fake's gateway, until dropped.
struct Running {
    discord: Discord,
    _stop: oneshot::Sender<()>,
}

async fn start(pool: PgPool, fake: &FakeDiscord, interactions: Interactions) -> Running {
    let engine = demo_engine(pool, Vec::new()).await;
    let discord = Discord::connect(config(fake, interactions), engine)
        .await
        .expect("the adapter connects to the fake");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(discord.clone().run(async move {
        let _ = stopped.await;
    }));
    assert!(
        fake.wait_until(DEADLINE, FakeDiscord::connected).await,
        "the gateway client identifies"
    );
    Running {
        discord,
        _stop: stop,
    }
}

/// How many Discord messages the store says the chat's replies became.
async fn delivered_parts(pool: &PgPool, chat_id: &str) -> usize {
    let parts: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(cardinality(m.platform_reply_ids)), 0)::bigint
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE c.channel = 'discord' AND c.chat_id = $1 AND m.delivery = 'sent'",
    )
    .bind(chat_id)
    .fetch_one(pool)
    .await
    .expect("the store answers");
    usize::try_from(parts).unwrap_or(0)
}

/// Waits until `channel` has received more than `already` messages and every reply the store
/// holds for `chat_id` has gone out; returns the new messages.
async fn replies_after(
    fake: &FakeDiscord,
    pool: &PgPool,
    channel: u64,
    chat_id: &str,
    already: usize,
) -> Vec<Sent> {
    let arrived = fake
        .wait_until(DEADLINE, |fake| fake.sent_to(channel).len() > already)
        .await;
    assert!(
        arrived,
        "channel {channel} got no reply; calls: {:#?}",
        fake.calls()
    );
    let store = Store::from_pool(pool.clone());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (pending, _, _) = store
            .reply_delivery_counts(Channel::Discord, chat_id)
            .await
            .expect("the store answers");
        if pending == 0 && delivered_parts(pool, chat_id).await == fake.sent_to(channel).len() {
            return fake.sent_to(channel).split_off(already);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{chat_id}: replies pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("the store answers")
}

#[sqlx::test(migrations = "../migrations")]
async fn a_prospect_asks_in_a_channel_leaves_contact_details_with_a_command_and_rates(
    pool: PgPool,
) {
    let fake = FakeDiscord::start().await;
    let _running = start(pool.clone(), &fake, Interactions::Gateway).await;
    let store = Store::from_pool(pool.clone());
    let (prospect, chat) = (4001, format!("{SALES_CHANNEL}:4001"));

    let commands = fake.commands();
    assert_eq!(
        commands.len(),
        1,
        "one bulk overwrite of the global commands"
    );
    let names: Vec<&str> = commands[0]
        .1
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|command| command["name"].as_str())
        .collect();
    assert_eq!(names, ["ask", "contact"]);

    // Chatter elsewhere and the bot's own messages are not for the assistant.
    fake.send_message(GENERAL_CHANNEL, true, 4002, "anyone up for lunch?");
    fake.send_message(
        SALES_CHANNEL,
        true,
        closer_tests::fake_discord::BOT_ID,
        "my own words",
    );

    fake.send_message(
        SALES_CHANNEL,
        true,
        prospect,
        "сколько стоит ваш самый дешевый тариф?",
    );
    let answer = replies_after(&fake, &pool, SALES_CHANNEL, &chat, 0).await;
    assert!(
        answer[0].content.starts_with("<@4001> "),
        "a reply in a shared channel mentions its prospect: {answer:#?}"
    );
    assert_eq!(answer[0].allowed_mentions["users"], json!(["4001"]));
    assert!(
        answer
            .iter()
            .any(|sent| sent.content.contains("-# 📄 Источник")),
        "an answer cites its documents compactly: {answer:#?}"
    );
    assert_eq!(
        count(
            &pool,
            "select count(*) from messages where direction = 'in'"
        )
        .await,
        1,
        "only the prospect's question was taken in"
    );

    // Mentioned in another channel: answered there, the mention stripped.
    fake.send_message(
        GENERAL_CHANNEL,
        true,
        4002,
        "<@1001> what is the price of the cheapest plan?",
    );
    let mentioned = replies_after(
        &fake,
        &pool,
        GENERAL_CHANNEL,
        &format!("{GENERAL_CHANNEL}:4002"),
        0,
    )
    .await;
    assert!(mentioned[0].content.starts_with("<@4002> "));
    let text: String = sqlx::query_scalar(
        "select text from messages where direction = 'in' order by id desc limit 1",
    )
    .fetch_one(&pool)
    .await
    .expect("the question is stored");
    assert_eq!(text, "what is the price of the cheapest plan?");

    let sent = fake.sent_to(SALES_CHANNEL).len();
    fake.send_message(
        SALES_CHANNEL,
        true,
        prospect,
        "Хотим подключить, давайте созвонимся.",
    );
    let asked = replies_after(&fake, &pool, SALES_CHANNEL, &chat, sent).await;
    assert!(
        asked
            .iter()
            .any(|sent| sent.buttons().contains(&"closer:contact".to_owned())),
        "the request for contact details offers the form: {asked:#?}"
    );

    // `/contact` opens the form; submitting it makes the lead.
    let command = fake.slash_command(SALES_CHANNEL, true, prospect, "contact", json!([]));
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.response_to(command).is_some())
            .await,
        "the command is answered"
    );
    let form = fake.response_to(command).expect("a response");
    assert_eq!(form["type"], 9, "a modal: {form}");
    assert_eq!(form["data"]["custom_id"], "closer:contact:form");

    let sent = fake.sent_to(SALES_CHANNEL).len();
    let submitted = fake.submit_form(
        SALES_CHANNEL,
        true,
        prospect,
        "closer:contact:form",
        &[
            ("name", "Иван Петров"),
            ("phone", "+7 903 123-45-67"),
            ("email", "ivan@example.com"),
        ],
    );
    let confirmed = replies_after(&fake, &pool, SALES_CHANNEL, &chat, sent).await;
    assert_eq!(
        fake.response_to(submitted).expect("a response")["type"],
        5,
        "deferred"
    );
    let token = format!("interaction-token-{submitted}");
    assert_eq!(
        confirmed[0].followup_of.as_deref(),
        Some(token.as_str()),
        "the replies follow up the form: {confirmed:#?}"
    );
    let conversation = store
        .conversation_by_chat(Channel::Discord, &chat)
        .await
        .expect("the store answers")
        .expect("the conversation is stored");
    let lead = store
        .lead_for_conversation(conversation.id)
        .await
        .expect("the store answers")
        .expect("the form makes the lead");
    let contact = &lead.details.contact;
    assert_eq!(
        contact.phone.as_ref().map(|phone| phone.as_str()),
        Some("+79031234567")
    );
    assert_eq!(
        contact.email.as_ref().map(|email| email.as_str()),
        Some("ivan@example.com")
    );
    assert_eq!(contact.name.as_deref(), Some("Иван Петров"));

    // The rating: five buttons; pressing 5 records it.
    let rating = confirmed
        .iter()
        .find(|sent| sent.buttons().len() == 5)
        .unwrap_or_else(|| panic!("a 1-to-5 rating is asked: {confirmed:#?}"));
    assert_eq!(rating.buttons()[4], "rate:5");
    let sent = fake.sent_to(SALES_CHANNEL).len();
    let press = fake.press_button(SALES_CHANNEL, true, prospect, rating.id, "rate:5");
    replies_after(&fake, &pool, SALES_CHANNEL, &chat, sent).await;
    assert_eq!(fake.response_to(press).expect("a response")["type"], 6);
    assert_eq!(
        store
            .rating(conversation.id)
            .await
            .expect("the store answers"),
        Some(5)
    );

    // The form sent again changes nothing: one lead.
    let again = fake.submit_form(
        SALES_CHANNEL,
        true,
        prospect,
        "closer:contact:form",
        &[("phone", "+7 903 123-45-67")],
    );
    let sent = fake.sent_to(SALES_CHANNEL).len();
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.response_to(again).is_some())
            .await
    );
    replies_after(&fake, &pool, SALES_CHANNEL, &chat, sent).await;
    assert_eq!(
        count(&pool, "select count(*) from leads").await,
        1,
        "the lead is created once"
    );
    assert_eq!(
        fake.rate_limited(),
        0,
        "the pacing kept within the channel's bucket"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_resume_replaying_a_message_answers_it_once_and_loses_nothing(pool: PgPool) {
    let fake = FakeDiscord::start().await;
    let _running = start(pool.clone(), &fake, Interactions::Gateway).await;
    let (dm, prospect) = (5001, 4001);
    let chat = dm.to_string();

    fake.send_message(
        dm,
        false,
        prospect,
        "Здравствуйте! Сколько стоит тариф Старт?",
    );
    let seen = fake.last_sequence();
    let first = replies_after(&fake, &pool, dm, &chat, 0).await;
    assert!(!first.is_empty());

    // Discord asks for a reconnect; a message arrives while the bot is away, and the resume
    // replays the first message too.
    fake.replay_on_resume_from(seen);
    fake.request_reconnect();
    fake.send_message(dm, false, prospect, "А есть пробный период?");
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.gateway_counts().1 == 1
            && fake.connected())
            .await,
        "the client resumes"
    );
    let sent = first.len();
    let second = replies_after(&fake, &pool, dm, &chat, sent).await;
    assert!(
        !second.is_empty(),
        "the message sent during the reconnect is answered"
    );
    assert_eq!(fake.gateway_counts().0, 1, "resumed, not identified again");
    assert_eq!(
        count(
            &pool,
            "select count(*) from messages where direction = 'in'"
        )
        .await,
        2,
        "the replayed message is not taken in twice"
    );
    // Let the replayed message's duplicate kick settle, then nothing more has been sent.
    let store = Store::from_pool(pool.clone());
    let (pending, sent_replies, _) = store
        .reply_delivery_counts(Channel::Discord, &chat)
        .await
        .expect("the store answers");
    assert_eq!(pending, 0);
    assert_eq!(
        usize::try_from(sent_replies).unwrap_or(0),
        first.len() + second.len(),
        "every reply was sent once: {:#?}",
        fake.sent_to(dm)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_429_is_honoured_and_the_order_kept(pool: PgPool) {
    let fake = FakeDiscord::start().await;
    let running = start(pool.clone(), &fake, Interactions::Gateway).await;
    let (dm, prospect) = (5002, 4003);
    let chat = dm.to_string();
    fake.fail_next(
        Endpoint::CreateMessage,
        Fault::RateLimited {
            retry_after: 0.4,
            global: false,
        },
    );
    fake.fail_next(
        Endpoint::CreateMessage,
        Fault::RateLimited {
            retry_after: 0.3,
            global: true,
        },
    );
    for question in [
        "Сколько стоит тариф Старт?",
        "А есть пробный период?",
        "Как подключить?",
    ] {
        fake.send_message(dm, false, prospect, question);
    }
    let store = Store::from_pool(pool.clone());
    assert!(
        fake.wait_until(DEADLINE, |fake| fake.sent_to(dm).len() >= 3)
            .await,
        "the replies arrive"
    );
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while store
        .reply_delivery_counts(Channel::Discord, &chat)
        .await
        .expect("the store answers")
        .0
        > 0
    {
        assert!(tokio::time::Instant::now() < deadline, "replies pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = replies_after(&fake, &pool, dm, &chat, 0).await;
    assert_eq!(fake.rate_limited(), 2);
    assert_eq!(
        running
            .discord
            .sender()
            .stats()
            .retry_after
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    // The retry waited out both 429s: 0.4 s, then 0.3 s more.
    let calls = fake.calls();
    let limited: Vec<_> = calls.iter().filter(|call| call.status == 429).collect();
    assert_eq!(limited.len(), 2);
    let first_sent = sent.first().expect("a message").at;
    assert!(
        first_sent.duration_since(limited[1].at) >= Duration::from_millis(300),
        "the global retry_after was honoured"
    );
    assert!(
        limited[1].at.duration_since(limited[0].at) >= Duration::from_millis(400),
        "the channel's retry_after was honoured"
    );

    // The order of the messages is the order of the replies in the store.
    let conversation = store
        .conversation_by_chat(Channel::Discord, &chat)
        .await
        .expect("the store answers")
        .expect("stored");
    let replies: Vec<String> = store
        .transcript(conversation.id)
        .await
        .expect("the store answers")
        .into_iter()
        .filter(|line| line.direction == closer_store::Direction::Out)
        .map(|line| line.text)
        .collect();
    assert_eq!(
        replies.len(),
        sent.len(),
        "one message per reply: {sent:#?}"
    );
    for (reply, message) in replies.iter().zip(&sent) {
        let first_words: String = reply.chars().take(20).collect();
        let shown = message.content.replace('\\', "");
        assert!(
            shown.starts_with(first_words.trim()),
            "in order: {reply:?} vs {:?}",
            message.content
        );
    }
}

/// Signs an interaction like Discord: Ed25519 over the timestamp and the body.
fn signed(key: &SigningKey, timestamp: i64, body: &str) -> (String, String) {
    let timestamp = timestamp.to_string();
    let signature = key.sign(format!("{timestamp}{body}").as_bytes());
    (hex::encode(signature.to_bytes()), timestamp)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

#[sqlx::test(migrations = "../migrations")]
async fn the_interactions_endpoint_checks_signatures_and_their_age_and_defers(pool: PgPool) {
    let fake = FakeDiscord::start().await;
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let interactions = Interactions::Endpoint {
        path: "/discord/interactions".to_owned(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        max_age: Duration::from_secs(300),
    };
    let engine = demo_engine(pool.clone(), Vec::new()).await;
    let running = start(pool.clone(), &fake, interactions).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!(
        "http://{}/discord/interactions",
        listener.local_addr().expect("bound")
    );
    let app = closer::server::Application::with_listener(listener, engine)
        .with_routes(running.discord.router());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let post = |body: String, signature: String, timestamp: String| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", timestamp)
            .body(body)
            .send()
    };

    let ping = json!({"id": "1", "application_id": APPLICATION_ID.to_string(), "type": 1,
                      "token": "t", "version": 1})
    .to_string();
    let (signature, timestamp) = signed(&key, now(), &ping);
    let pong = post(ping.clone(), signature, timestamp)
        .await
        .expect("answers");
    assert_eq!(pong.status(), 200);
    assert_eq!(pong.json::<Value>().await.expect("JSON")["type"], 1);

    // A bad signature, a signature of another body, an old and a future timestamp: 401.
    let stranger = SigningKey::from_bytes(&[8u8; 32]);
    let (forged, timestamp) = signed(&stranger, now(), &ping);
    assert_eq!(
        post(ping.clone(), forged, timestamp)
            .await
            .expect("answers")
            .status(),
        401
    );
    let (other, timestamp) = signed(&key, now(), "{}");
    assert_eq!(
        post(ping.clone(), other, timestamp)
            .await
            .expect("answers")
            .status(),
        401
    );
    for skew in [-301, 301] {
        let (signature, timestamp) = signed(&key, now() + skew, &ping);
        assert_eq!(
            post(ping.clone(), signature, timestamp)
                .await
                .expect("answers")
                .status(),
            401,
            "a timestamp {skew} s away"
        );
    }
    let missing = client
        .post(&url)
        .body(ping.clone())
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), 401);
    let (signature, timestamp) = signed(&key, now(), "not json");
    assert_eq!(
        post("not json".to_owned(), signature, timestamp)
            .await
            .expect("answers")
            .status(),
        400
    );

    // `/ask` in a direct message: deferred at once, the answer follows up.
    let dm = 5003;
    let ask = fake.interaction_payload(
        2,
        dm,
        false,
        4004,
        json!({"id": "7001", "name": "ask", "type": 1,
               "options": [{"name": "question", "type": 3, "value": "Сколько стоит тариф Старт?"}]}),
    );
    let body = ask.to_string();
    let (signature, timestamp) = signed(&key, now(), &body);
    let deferred = post(body, signature, timestamp).await.expect("answers");
    assert_eq!(deferred.status(), 200);
    let response: Value = deferred.json().await.expect("JSON");
    assert_eq!(response["type"], 5);
    let id = ask["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("an id");
    fake.record_response(id, response);
    let answer = replies_after(&fake, &pool, dm, &dm.to_string(), 0).await;
    let token = ask["token"].as_str().expect("a token");
    assert!(
        answer
            .iter()
            .all(|sent| sent.followup_of.as_deref() == Some(token)),
        "the answer follows up the command: {answer:#?}"
    );
    assert_eq!(
        count(
            &pool,
            "select count(*) from messages where direction = 'in'"
        )
        .await,
        1,
        "refused calls are never processed"
    );
    drop(stop);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_salespersons_words_reach_a_discord_prospect_during_a_takeover(pool: PgPool) {
    let fake = FakeDiscord::start().await;
    let running = start(pool.clone(), &fake, Interactions::Gateway).await;
    let (prospect, chat) = (4005, format!("{SALES_CHANNEL}:4005"));
    fake.send_message(SALES_CHANNEL, true, prospect, "Сколько стоит тариф?");
    let before = replies_after(&fake, &pool, SALES_CHANNEL, &chat, 0)
        .await
        .len();

    let engine = running.discord.engine().clone();
    let conversation = engine
        .store()
        .conversation_by_chat(Channel::Discord, &chat)
        .await
        .expect("the store answers")
        .expect("the conversation exists")
        .id;
    assert!(engine
        .take_over(conversation, "Anna")
        .await
        .expect("taken over"));
    for _ in 0..2 {
        engine
            .send_as_person(
                conversation,
                "slack-ts-1",
                "Anna",
                "Здравствуйте! Я Анна, менеджер.",
            )
            .await
            .expect("stored")
            .expect("the conversation exists");
    }
    let person = replies_after(&fake, &pool, SALES_CHANNEL, &chat, before).await;
    assert_eq!(person.len(), 1, "delivered once: {person:#?}");
    assert_eq!(person[0].content, "<@4005> Здравствуйте! Я Анна, менеджер.");
}
