//! Property tests of everything that reads what Slack sends: the signature check, events,
//! slash commands and button presses, and the renderer's split at Slack's limit.

use axum::http::{HeaderMap, HeaderValue};
use closer_testing::{cases, nasty_text, nasty_text_with};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

use crate::api::BotIdentity;
use crate::commands::{parse, Subcommand};
use crate::inbound::{question_text, translate, unescape, Translated};
use crate::leads::TAKE_OVER_ACTION;
use crate::render::{escape, split_escaped};
use crate::takeover::lead_button_presses;
use crate::verify::{Refused, Verifier};
use crate::{parse_command, parse_interaction};

/// Slack's syntax in a message: mentions of the bot and of others, escapes, links.
const SLACK_PIECES: &[&str] = &[
    "<@UBOT>",
    "<@U1>",
    "<!channel>",
    "&lt;",
    "&gt;",
    "&amp;",
    "&amp;lt;",
    "<http://x|y>",
    "&",
];

fn me() -> BotIdentity {
    BotIdentity {
        user_id: "UBOT".to_owned(),
        bot_id: Some("BBOT".to_owned()),
        team: "Acme".to_owned(),
        team_id: "T1".to_owned(),
    }
}

fn signed_headers(secret: &str, timestamp: &str, body: &[u8]) -> HeaderMap {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-slack-signature",
        HeaderValue::from_str(&signature).expect("hex is a header value"),
    );
    headers.insert(
        "x-slack-request-timestamp",
        HeaderValue::from_str(timestamp).expect("digits are a header value"),
    );
    headers
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

proptest! {
    #![proptest_config(cases(96))]

    /// A body signed with the secret now passes; the same signature on any other body, or
    /// with another secret, does not; a stale one is refused as stale.
    #[test]
    fn the_signature_holds_only_for_the_signed_body(
        body in nasty_text_with(SLACK_PIECES),
        other in nasty_text(),
        secret in "[ -~]{1,40}",
    ) {
        let verifier = Verifier::new(&SecretString::from(secret.clone()));
        let timestamp = now().to_string();
        let headers = signed_headers(&secret, &timestamp, body.as_bytes());
        prop_assert_eq!(verifier.verify(&headers, body.as_bytes()), Ok(()));
        if other != body {
            prop_assert_eq!(verifier.verify(&headers, other.as_bytes()), Err(Refused::BadSignature));
        }
        let wrong = Verifier::new(&SecretString::from(format!("{secret}x")));
        prop_assert_eq!(wrong.verify(&headers, body.as_bytes()), Err(Refused::BadSignature));
        let stale = (now() - 3600).to_string();
        let old = signed_headers(&secret, &stale, body.as_bytes());
        prop_assert_eq!(verifier.verify(&old, body.as_bytes()), Err(Refused::Stale));
    }

    /// Headers of any content, and bodies that are not UTF-8, are refused without a panic.
    #[test]
    fn any_signature_headers_are_refused_without_panicking(
        signature in nasty_text_with(&["v0=", "v1=", "0123456789abcdef"]),
        timestamp in nasty_text_with(&["1700000000", "-", "99999999999999999999"]),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let verifier = Verifier::new(&SecretString::from("secret".to_owned()));
        let mut headers = HeaderMap::new();
        for (name, value) in [("x-slack-signature", &signature), ("x-slack-request-timestamp", &timestamp)] {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.insert(name, value);
            }
        }
        prop_assert!(verifier.verify(&headers, &body).is_err());
    }

    /// A direct message is a question of its words, the bot's mention gone, Slack's escapes
    /// undone and the spaces tidied.
    #[test]
    fn a_direct_message_is_a_question_of_its_words(text in nasty_text_with(SLACK_PIECES)) {
        let callback = serde_json::from_value(json!({
            "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1", "event_time": 1_700_000_000,
            "event": {"type": "message", "channel": "D1", "channel_type": "im", "user": "U1",
                "text": text, "ts": "1700000000.000100"}
        }))
        .expect("an event callback parses");
        let expected = question_text(&text, &me());
        match translate(&callback, &me()) {
            Translated::Ask(message) => {
                prop_assert_eq!(message.content.text(), Some(expected.as_str()));
                prop_assert_eq!(message.chat_id, "D1");
            }
            Translated::Ignored(reason) => {
                prop_assert!(expected.is_empty(), "{reason}: {expected:?}");
            }
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
    }

    /// A mention asks in its thread; a thread reply by a person is passed on as written
    /// (unescaped), and no timestamp of any shape panics.
    #[test]
    fn mentions_and_thread_replies_translate_without_panicking(
        text in nasty_text_with(SLACK_PIECES),
        ts in nasty_text_with(&["1700000000", ".", "000100", "-", "99999999999999999999"]),
    ) {
        for event in [
            json!({"type": "app_mention", "channel": "C1", "user": "U1", "text": text, "ts": ts}),
            json!({"type": "message", "channel": "C1", "channel_type": "channel", "user": "U2",
                "text": text, "ts": ts, "thread_ts": "1.0"}),
        ] {
            let callback = serde_json::from_value(json!({
                "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1",
                "event_time": 1_700_000_000, "event": event
            }))
            .expect("an event callback parses");
            match translate(&callback, &me()) {
                Translated::Ask(message) => {
                    prop_assert_eq!(message.chat_id, format!("C1:{ts}"));
                    prop_assert!(!message.content.text().unwrap_or_default().is_empty());
                }
                Translated::ThreadMessage { text: read, .. } => {
                    prop_assert_eq!(read, unescape(text.trim()));
                }
                Translated::Ignored(_) => {}
            }
        }
    }

    /// What Closer escapes for mrkdwn, unescaping gives back.
    #[test]
    fn unescaping_undoes_escaping(text in nasty_text_with(SLACK_PIECES)) {
        prop_assert_eq!(unescape(&escape(&text)), text);
    }

    /// A command's form parses whatever its text, the text reaching the parser as typed;
    /// `ask`, `lead` and `task` carry the rest of the line, trimmed.
    #[test]
    fn a_command_form_carries_its_text(
        text in nasty_text_with(&["ask ", "lead ", "task ", "stats", "help", "ASK"]),
        thread_ts in proptest::option::of(nasty_text()),
    ) {
        let mut fields = vec![
            ("token", "unused".to_owned()), ("team_id", "T1".to_owned()),
            ("team_domain", "acme".to_owned()), ("channel_id", "C1".to_owned()),
            ("channel_name", "sales".to_owned()), ("user_id", "U1".to_owned()),
            ("user_name", "anna".to_owned()), ("command", "/closer".to_owned()),
            ("text", text.clone()), ("response_url", "https://hooks.example/r1".to_owned()),
            ("trigger_id", "trigger-1".to_owned()),
        ];
        if let Some(thread_ts) = &thread_ts {
            fields.push(("thread_ts", thread_ts.clone()));
        }
        let body = serde_urlencoded::to_string(&fields).expect("a form encodes");
        let (command, thread) = parse_command(body.as_bytes()).expect("a command parses");
        prop_assert_eq!(thread, thread_ts);
        let typed = command.text.unwrap_or_default();
        prop_assert_eq!(&typed, &text);
        match parse(&typed) {
            Subcommand::Ask(rest) | Subcommand::Lead(rest) | Subcommand::Task(rest) => {
                prop_assert!(!rest.is_empty() && rest.trim() == rest);
                prop_assert!(typed.trim().ends_with(&rest));
            }
            Subcommand::Stats | Subcommand::Usage(_) => {}
        }
    }

    /// Any body posted to the commands or interactions route parses or is refused, never a
    /// panic.
    #[test]
    fn any_form_body_parses_or_is_refused(
        body in nasty_text_with(&["payload=", "%7B", "%", "&", "=", "text=", "+"]),
    ) {
        let _ = parse_command(body.as_bytes());
        let _ = parse_interaction(body.as_bytes());
    }

    /// A lead post's button press comes back with its conversation, its presser and its
    /// post, whatever the strings around it; a value that is not a conversation id is no
    /// press.
    #[test]
    fn a_button_press_names_its_conversation(
        value in proptest::option::of(nasty_text()),
        user in nasty_text(),
        channel in nasty_text(),
        ts in nasty_text(),
        conversation in any::<u128>(),
    ) {
        let conversation_id = Uuid::from_u128(conversation);
        let value = value.unwrap_or_else(|| conversation_id.to_string());
        let payload = json!({"type": "block_actions", "team": {"id": "T1", "domain": "acme"},
            "user": {"id": user, "username": "anna", "team_id": "T1"},
            "api_app_id": "A1", "token": "unused", "trigger_id": "trigger-1",
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
            "channel": {"id": channel, "name": "leads"},
            "actions": [{"type": "button", "action_id": TAKE_OVER_ACTION, "block_id": "b1",
                "value": value, "action_ts": "1.0", "text": {"type": "plain_text", "text": "x"}}]});
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("a form encodes");
        let interaction = parse_interaction(body.as_bytes()).expect("an interaction parses");
        let presses = lead_button_presses(&interaction);
        match Uuid::parse_str(&value) {
            Ok(id) => {
                prop_assert_eq!(presses.len(), 1);
                prop_assert_eq!(presses[0].conversation_id, id);
                prop_assert_eq!(&presses[0].user, &user);
                prop_assert_eq!(&presses[0].channel, &channel);
                prop_assert_eq!(&presses[0].post_ts, &ts);
            }
            Err(_) => prop_assert!(presses.is_empty()),
        }
    }

    /// Every part is within the limit after escaping, none is blank, no escape is cut, and
    /// the parts rejoin to the escaped text but for the whitespace at a cut.
    #[test]
    fn split_parts_fit_after_escaping_and_rejoin(
        text in nasty_text_with(&["\n\n", "\n", " ", "&", "<", ">", "&amp;"]),
        limit in 1usize..300,
    ) {
        let parts = split_escaped(&text, limit);
        let without_whitespace =
            |text: &str| -> String { text.chars().filter(|c| !c.is_whitespace()).collect() };
        for part in &parts {
            prop_assert!(part.chars().count() <= limit.max(8), "{part:?}");
            prop_assert!(!part.trim().is_empty(), "{part:?}");
            // An escape is whole: unescaping the part alone gives no stray `&` sequence start.
            prop_assert_eq!(escape(&unescape(part)), part.clone());
        }
        prop_assert_eq!(without_whitespace(&parts.concat()), without_whitespace(&escape(&text)));
    }
}
