//! Tests of the fake Telegram Bot API itself, driven with plain reqwest (JSON, form and multipart)
//! and, for teloxide's quirks, with a teloxide `Bot` pointed at it.

use std::time::{Duration, Instant};

use closer_tests::fake_telegram::{FakeTelegram, Fault, Limits, BOT_USERNAME, FAKE_TOKEN};
use serde_json::{json, Value};
use teloxide::payloads::{GetUpdatesSetters, SetWebhookSetters};
use teloxide::requests::Requester;
use teloxide::types::{ChatId, UpdateKind};
use teloxide::{Bot, RequestError};

/// How long any test waits for something the fake should do at once.
const PATIENCE: Duration = Duration::from_secs(5);

fn method_url(fake: &FakeTelegram, method: &str) -> String {
    format!("{}/bot{FAKE_TOKEN}/{method}", fake.api_url())
}

fn teloxide_bot(fake: &FakeTelegram) -> Bot {
    Bot::new(FAKE_TOKEN).set_api_url(fake.api_url().parse().expect("the fake's URL parses"))
}

/// POSTs a JSON body; returns the HTTP status and the parsed answer.
async fn post_json(fake: &FakeTelegram, method: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(method_url(fake, method))
        .json(&body)
        .send()
        .await
        .expect("the fake answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

async fn get_updates(fake: &FakeTelegram, offset: i64, timeout: u64) -> Vec<Value> {
    let (status, answer) = post_json(
        fake,
        "getUpdates",
        json!({"offset": offset, "timeout": timeout}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["result"].as_array().expect("a list").clone()
}

fn update_ids(updates: &[Value]) -> Vec<i64> {
    updates
        .iter()
        .map(|update| update["update_id"].as_i64().expect("an update id"))
        .collect()
}

#[tokio::test]
async fn method_names_match_case_insensitively_and_unknown_ones_are_404() {
    let fake = FakeTelegram::start_with(None).await;
    for method in ["getMe", "GetMe", "GETME", "getme"] {
        let (status, answer) = post_json(&fake, method, json!({})).await;
        assert_eq!(status, 200, "{method}: {answer}");
        assert_eq!(answer["result"]["username"], BOT_USERNAME);
    }
    let (status, answer) = post_json(&fake, "sendTelepathy", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(
        answer,
        json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"})
    );
    let methods: Vec<String> = fake.calls().into_iter().map(|call| call.method).collect();
    assert_eq!(
        methods,
        ["getme", "getme", "getme", "getme", "sendtelepathy"]
    );
}

#[tokio::test]
async fn a_wrong_token_is_401() {
    let fake = FakeTelegram::start_with(None).await;
    let response = reqwest::Client::new()
        .post(format!("{}/bot123:wrong/getMe", fake.api_url()))
        .json(&json!({}))
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(response.status().as_u16(), 401);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(
        answer,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    assert_eq!(fake.calls().len(), 1, "failed calls are recorded too");
}

#[tokio::test]
async fn teloxide_parses_get_me_and_get_webhook_info() {
    let fake = FakeTelegram::start_with(None).await;
    let bot = teloxide_bot(&fake);
    let me = bot.get_me().await.expect("getMe parses");
    assert_eq!(me.username(), BOT_USERNAME);
    let info = bot.get_webhook_info().await.expect("getWebhookInfo parses");
    assert!(info.url.is_none());
    let methods: Vec<String> = fake.calls().into_iter().map(|call| call.method).collect();
    assert_eq!(methods, ["getme", "getwebhookinfo"]);
}

#[tokio::test]
async fn a_long_poll_returns_an_update_queued_while_it_waits() {
    let fake = FakeTelegram::start_with(None).await;
    let polling = tokio::spawn({
        let fake = fake.clone();
        async move { get_updates(&fake, 0, 10).await }
    });
    assert!(
        fake.wait_until(PATIENCE, |fake| fake.calls().len() == 1)
            .await
    );
    let started = Instant::now();
    let update_id = fake.send_text(42, "Сколько стоит тариф?");
    let updates = polling.await.expect("the poll finishes");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at once"
    );
    assert_eq!(update_ids(&updates), [update_id]);
    let message = &updates[0]["message"];
    assert_eq!(message["text"], "Сколько стоит тариф?");
    assert_eq!(message["message_id"], 1);
    assert_eq!(
        message["chat"],
        json!({"id": 42, "type": "private", "first_name": "Prospect42"})
    );
    assert_eq!(message["from"]["id"], 42);
    assert_ne!(message["date"], 0);
}

#[tokio::test]
async fn an_empty_long_poll_answers_an_empty_list_after_its_timeout() {
    let fake = FakeTelegram::start_with(None).await;
    let started = Instant::now();
    let updates = get_updates(&fake, 0, 1).await;
    let waited = started.elapsed();
    assert!(updates.is_empty());
    assert!(waited >= Duration::from_millis(990), "waited {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
}

#[tokio::test]
async fn an_offset_acknowledges_and_forgets_the_updates_below_it() {
    let fake = FakeTelegram::start_with(None).await;
    let first = fake.send_text(1, "one");
    let second = fake.send_text(1, "two");
    let third = fake.send_text(2, "three");
    assert_eq!(
        update_ids(&get_updates(&fake, 0, 0).await),
        [first, second, third]
    );
    // Not acknowledged yet: asked again, they come again.
    assert_eq!(
        update_ids(&get_updates(&fake, 0, 0).await),
        [first, second, third]
    );
    assert_eq!(update_ids(&get_updates(&fake, third, 0).await), [third]);
    assert_eq!(fake.acknowledged_offset(), third);
    // Forgotten for good: even offset 0 no longer returns them.
    assert_eq!(update_ids(&get_updates(&fake, 0, 0).await), [third]);
    assert!(get_updates(&fake, third + 1, 0).await.is_empty());
    assert_eq!(fake.acknowledged_offset(), third + 1);
    // Message ids count per chat.
    let fourth = fake.send_text(2, "four");
    let updates = get_updates(&fake, 0, 0).await;
    assert_eq!(update_ids(&updates), [fourth]);
    assert_eq!(updates[0]["message"]["message_id"], 2);
}

#[tokio::test]
async fn a_limit_and_allowed_updates_shape_what_get_updates_returns() {
    let fake = FakeTelegram::start_with(None).await;
    let message = fake.send_text(5, "hello");
    fake.edit_text(5, 1, "hello again");
    let raw = fake.push_raw_update(json!({"message_reaction": {"chat": {"id": 5}}}));
    let (_, answer) = post_json(
        &fake,
        "getUpdates",
        json!({"allowed_updates": ["message", "callback_query"], "limit": 1}),
    )
    .await;
    assert_eq!(
        update_ids(answer["result"].as_array().expect("a list")),
        [message]
    );
    // Telegram keeps allowed_updates between calls; raw updates always come through.
    assert_eq!(update_ids(&get_updates(&fake, 0, 0).await), [message, raw]);
}

#[tokio::test]
async fn teloxide_reads_callback_queries_with_their_message_and_group_replies() {
    let fake = FakeTelegram::start_with(None).await;
    let bot = teloxide_bot(&fake);
    let menu = bot
        .send_message(ChatId(42), "Pick a plan")
        .await
        .expect("sendMessage");
    let pressed = fake.press_button(42, menu.id.0.into(), "plan:pro");
    let replied = fake.send_group_text(
        -100,
        7,
        "@closer_test_bot how much?",
        Some(menu.id.0.into()),
    );
    let contact = fake.share_contact(42, "+79991234567", "Anna");
    let photo = fake.send_message(
        42,
        json!({"photo": [{"file_id": "f1", "file_unique_id": "u1", "width": 1, "height": 1}],
               "caption": "this one"}),
    );
    let updates = bot
        .get_updates()
        .timeout(0)
        .await
        .expect("getUpdates parses");
    let ids: Vec<i64> = updates
        .iter()
        .map(|update| i64::from(update.id.0))
        .collect();
    assert_eq!(ids, [pressed, replied, contact, photo]);
    let UpdateKind::CallbackQuery(query) = &updates[0].kind else {
        panic!("a callback query: {:?}", updates[0].kind);
    };
    assert_eq!(query.data.as_deref(), Some("plan:pro"));
    let message = query.regular_message().expect("an accessible message");
    assert_eq!(message.id, menu.id);
    assert_eq!(message.text(), Some("Pick a plan"));
    let UpdateKind::Message(group) = &updates[1].kind else {
        panic!("a message: {:?}", updates[1].kind);
    };
    assert_eq!(group.chat.id, ChatId(-100));
    let original = group.reply_to_message().expect("a reply");
    assert_eq!(original.from.as_ref().map(|user| user.is_bot), Some(true));
    let UpdateKind::Message(shared) = &updates[2].kind else {
        panic!("a message: {:?}", updates[2].kind);
    };
    assert_eq!(
        shared
            .contact()
            .map(|contact| contact.phone_number.as_str()),
        Some("+79991234567")
    );
    let UpdateKind::Message(photo) = &updates[3].kind else {
        panic!("a message: {:?}", updates[3].kind);
    };
    assert_eq!(photo.caption(), Some("this one"));
    assert!(photo.photo().is_some());
}

#[tokio::test]
async fn teloxide_set_webhook_is_multipart_and_records_url_and_secret() {
    let fake = FakeTelegram::start_with(None).await;
    let bot = teloxide_bot(&fake);

    // A tiny receiver standing in for the bot's webhook endpoint.
    let (seen_sender, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::Json<Value>| async move {
                let secret = headers
                    .get("x-telegram-bot-api-secret-token")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let _ = seen_sender.send((secret, body.0));
                axum::http::StatusCode::OK
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let hook_url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    bot.set_webhook(hook_url.parse().expect("a URL"))
        .secret_token("s3cret-token")
        .await
        .expect("setWebhook");
    assert_eq!(
        fake.webhook(),
        Some((hook_url.clone(), Some("s3cret-token".to_owned())))
    );
    let info = bot.get_webhook_info().await.expect("getWebhookInfo");
    assert_eq!(info.url.map(|url| url.to_string()), Some(hook_url));

    // While a webhook is set, getUpdates conflicts, as on Telegram.
    let (status, _) = post_json(&fake, "getUpdates", json!({})).await;
    assert_eq!(status, 409);

    let update_id = fake.send_text(42, "via the webhook");
    assert_eq!(fake.deliver_to_webhook(update_id).await.as_u16(), 200);
    let (secret, update) = seen.recv().await.expect("the receiver got it");
    assert_eq!(secret.as_deref(), Some("s3cret-token"));
    assert_eq!(update["message"]["text"], "via the webhook");

    bot.delete_webhook().await.expect("deleteWebhook");
    assert_eq!(fake.webhook(), None);
}

#[tokio::test]
async fn send_message_checks_text_length_html_and_callback_data() {
    let fake = FakeTelegram::start_with(None).await;
    let cases = [
        (
            json!({"chat_id": 1}),
            400,
            "Bad Request: message text is empty",
        ),
        (
            json!({"chat_id": 1, "text": ""}),
            400,
            "Bad Request: message text is empty",
        ),
        (
            json!({"chat_id": 1, "text": "я".repeat(4097)}),
            400,
            "Bad Request: message is too long",
        ),
        (json!({"chat_id": 1, "text": "я".repeat(4096)}), 200, ""),
        (
            json!({"chat_id": 1, "text": "a < b", "parse_mode": "HTML"}),
            400,
            "Bad Request: can't parse entities",
        ),
        (
            json!({"chat_id": 1, "text": "Fish & chips", "parse_mode": "HTML"}),
            400,
            "Bad Request: can't parse entities",
        ),
        (
            json!({"chat_id": 1, "text": "<foo>x</foo>", "parse_mode": "HTML"}),
            400,
            "Bad Request: can't parse entities",
        ),
        (
            json!({"chat_id": 1, "text": "a < b & c", "parse_mode": "MarkdownV2"}),
            200,
            "",
        ),
        (
            json!({"chat_id": 1, "parse_mode": "HTML",
                   "text": "<b>Pro</b> &lt; <i>Max</i> &amp; <a href=\"https://x.test\">more</a> &#8381; <tg-spoiler>!</tg-spoiler>"}),
            200,
            "",
        ),
        (
            json!({"chat_id": 1, "text": "buttons",
                   "reply_markup": {"inline_keyboard": [[{"text": "ok", "callback_data": "x".repeat(64)}]]}}),
            200,
            "",
        ),
        (
            json!({"chat_id": 1, "text": "buttons",
                   "reply_markup": {"inline_keyboard": [[{"text": "too long", "callback_data": "x".repeat(65)}]]}}),
            400,
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            // 33 two-byte letters: 33 characters but 66 bytes.
            json!({"chat_id": 1, "text": "buttons",
                   "reply_markup": {"inline_keyboard": [[{"text": "bytes", "callback_data": "я".repeat(33)}]]}}),
            400,
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            json!({"chat_id": "77", "text": "a string chat id"}),
            200,
            "",
        ),
    ];
    for (body, status, description) in cases {
        let (got_status, answer) = post_json(&fake, "sendMessage", body.clone()).await;
        assert_eq!(got_status, status, "{body}: {answer}");
        if status == 200 {
            assert_eq!(answer["ok"], true);
        } else {
            let got = answer["description"].as_str().expect("a description");
            assert!(got.starts_with(description), "{body}: {got}");
            assert_eq!(answer["error_code"], status);
        }
    }
    let sent = fake.sent();
    assert_eq!(sent.len(), 5);
    assert_eq!(fake.sent_to(77).len(), 1);
    assert_eq!(sent[1].parse_mode.as_deref(), Some("MarkdownV2"));
    assert_eq!(
        sent[3]
            .reply_markup
            .as_ref()
            .map(|markup| markup["inline_keyboard"][0][0]["text"].clone()),
        Some(json!("ok"))
    );
    assert_eq!(fake.calls().len(), 13, "failed calls are recorded too");
}

#[tokio::test]
async fn form_and_multipart_bodies_are_parsed_into_json() {
    let fake = FakeTelegram::start_with(None).await;
    let client = reqwest::Client::new();
    let markup = r#"{"inline_keyboard":[[{"text":"Yes","callback_data":"yes"}]]}"#;
    let form = client
        .post(method_url(&fake, "sendMessage"))
        .form(&[("chat_id", "5"), ("text", "123"), ("reply_markup", markup)])
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(form.status().as_u16(), 200);
    let multipart = reqwest::multipart::Form::new()
        .text("chat_id", "-100500")
        .text("text", "true")
        .text("parse_mode", "HTML");
    let multipart = client
        .post(method_url(&fake, "SendMessage"))
        .multipart(multipart)
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(multipart.status().as_u16(), 200);
    let sent = fake.sent();
    assert_eq!((sent[0].chat_id, sent[0].text.as_str()), (5, "123"));
    assert_eq!(
        sent[0].reply_markup,
        Some(serde_json::from_str(markup).expect("JSON"))
    );
    assert_eq!((sent[1].chat_id, sent[1].text.as_str()), (-100500, "true"));
    let calls = fake.calls();
    assert_eq!(calls[1].body["parse_mode"], "HTML");
    assert_eq!(calls[1].body["chat_id"], -100500);
}

#[tokio::test]
async fn a_queued_retry_after_reaches_teloxide_as_request_error_retry_after() {
    let fake = FakeTelegram::start_with(None).await;
    let bot = teloxide_bot(&fake);
    fake.fail_next("sendMessage", Fault::RetryAfter(1));
    let error = bot
        .send_message(ChatId(42), "hello")
        .await
        .expect_err("the fault");
    match error {
        RequestError::RetryAfter(seconds) => assert_eq!(seconds.seconds(), 1),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    assert_eq!(fake.too_many_requests(), 1);
    assert!(fake.sent().is_empty());
    bot.send_message(ChatId(42), "hello")
        .await
        .expect("only the next call fails");
    assert_eq!(fake.sent_to(42).len(), 1);
}

#[tokio::test]
async fn other_faults_answer_as_queued_and_once_each() {
    let fake = FakeTelegram::start_with(None).await;
    fake.fail_next(
        "SENDMESSAGE",
        Fault::Api {
            code: 403,
            description: "Forbidden: bot was blocked by the user".to_owned(),
        },
    );
    fake.fail_next("sendmessage", Fault::ServerError);
    fake.fail_next("sendMessage", Fault::MalformedBody);
    let body = json!({"chat_id": 9, "text": "hi"});
    let (status, answer) = post_json(&fake, "sendMessage", body.clone()).await;
    assert_eq!(status, 403);
    assert_eq!(
        answer["description"],
        "Forbidden: bot was blocked by the user"
    );
    let (status, answer) = post_json(&fake, "sendMessage", body.clone()).await;
    assert_eq!((status, answer["ok"].clone()), (502, json!(false)));
    let response = reqwest::Client::new()
        .post(method_url(&fake, "sendMessage"))
        .json(&body)
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("a body"), "{\"ok\":tru");
    let (status, _) = post_json(&fake, "sendMessage", body).await;
    assert_eq!(status, 200);
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let fake = FakeTelegram::start().await;
    let mut statuses = Vec::new();
    for text in ["one", "two", "three"] {
        let (status, answer) =
            post_json(&fake, "sendMessage", json!({"chat_id": 7, "text": text})).await;
        if status == 429 {
            assert_eq!(answer["parameters"]["retry_after"], 1);
            assert_eq!(answer["description"], "Too Many Requests: retry after 1");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 429, 429]);
    assert_eq!(fake.too_many_requests(), 2);
    // Another chat is not held back by chat 7.
    let (status, _) = post_json(&fake, "sendMessage", json!({"chat_id": 8, "text": "hi"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn group_and_overall_limits_apply() {
    let fake = FakeTelegram::start_with(Some(Limits {
        per_chat_per_second: 100,
        per_group_per_minute: 2,
        overall_per_second: 1000,
        overall_burst: 1000,
    }))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post_json(&fake, "sendMessage", json!({"chat_id": -5, "text": "hi"})).await);
    }
    assert_eq!(
        statuses
            .iter()
            .map(|(status, _)| *status)
            .collect::<Vec<_>>(),
        [200, 200, 429]
    );
    let retry_after = statuses[2].1["parameters"]["retry_after"]
        .as_u64()
        .expect("seconds");
    assert!((59..=60).contains(&retry_after), "{retry_after}");

    let fake = FakeTelegram::start_with(Some(Limits {
        per_chat_per_second: 1,
        per_group_per_minute: 20,
        overall_per_second: 30,
        overall_burst: 5,
    }))
    .await;
    let mut statuses = Vec::new();
    for chat_id in 1..=7 {
        statuses.push(
            post_json(
                &fake,
                "sendMessage",
                json!({"chat_id": chat_id, "text": "hi"}),
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses[..5], [200; 5], "the burst goes through");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn a_frozen_fake_holds_requests_until_thawed() {
    let fake = FakeTelegram::start_with(None).await;
    fake.freeze();
    let request = tokio::spawn({
        let fake = fake.clone();
        async move { post_json(&fake, "getMe", json!({})).await }
    });
    let mut request = std::pin::pin!(request);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut request)
            .await
            .is_err(),
        "held while frozen"
    );
    assert!(fake.calls().is_empty(), "a held request is not recorded");
    fake.thaw();
    let (status, _) = request.await.expect("the request finishes");
    assert_eq!(status, 200);
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn a_delay_holds_a_method_and_edits_are_checked() {
    let fake = FakeTelegram::start_with(None).await;
    fake.set_delay("answerCallbackQuery", Duration::from_millis(200));
    let started = Instant::now();
    let (status, _) = post_json(
        &fake,
        "answerCallbackQuery",
        json!({"callback_query_id": "cbq1"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(fake.calls()[0].at >= started + Duration::from_millis(200));

    let (_, sent) = post_json(&fake, "sendMessage", json!({"chat_id": 3, "text": "v1"})).await;
    let message_id = sent["result"]["message_id"].clone();
    let (status, answer) = post_json(
        &fake,
        "editMessageText",
        json!({"chat_id": 3, "message_id": message_id, "text": "v1"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(answer["description"]
        .as_str()
        .expect("text")
        .starts_with("Bad Request: message is not modified"));
    let (status, answer) = post_json(
        &fake,
        "editMessageText",
        json!({"chat_id": 3, "message_id": message_id, "text": "v2"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["text"], "v2");
    assert!(
        !fake
            .wait_until(Duration::from_millis(100), |fake| fake.sent().len() > 1)
            .await
    );
}
