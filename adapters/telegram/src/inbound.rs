//! Telegram's updates to platform-neutral messages: pure, no I/O.
//!
//! The platform message id a message is deduplicated by is the Telegram message id (unique
//! within its chat, and the store dedupes per conversation), so the same message arriving
//! twice — a redelivered update, or once by webhook and once by polling — is processed once.
//! An edit is a message of its own (the prospect corrected a question or a phone number),
//! keyed by the message id and the edit's time; a button press is keyed by the callback id.

use chrono::{DateTime, Utc};
use closer_model::{Channel, InboundContent, InboundMessage, Phone};
use teloxide::types::{
    CallbackQuery, Chat, MediaKind, Message, MessageKind, Update, UpdateKind, User, UserId,
};

/// The bot itself, as `getMe` tells: needed to see whether a group message is addressed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: u64,
    /// Without the `@`.
    pub username: String,
}

/// What an update means for Closer.
#[derive(Debug, Clone, PartialEq)]
pub enum Translated {
    /// A message for the assistant.
    Inbound {
        message: InboundMessage,
        /// The numeric chat id, for the typing indicator.
        chat_id: i64,
        /// A button press to acknowledge (so the button stops spinning).
        callback_id: Option<String>,
    },
    /// A button press that carries nothing for the assistant: acknowledge it, nothing else.
    AcknowledgeOnly { callback_id: String },
    /// Nothing for the assistant: a group message not addressed to the bot, a channel post,
    /// an update kind Closer does not ask for. The reason is for the log.
    Ignored(&'static str),
}

/// The longest campaign name kept from a `/start` link; Telegram allows 64 characters.
const MAX_CAMPAIGN_CHARS: usize = 64;

/// Translates one update.
pub fn translate(update: &Update, me: &Identity) -> Translated {
    match &update.kind {
        UpdateKind::Message(message) => translate_message(message, me, None),
        UpdateKind::EditedMessage(message) => {
            let edited_at = message.edit_date().copied().unwrap_or(message.date);
            translate_message(message, me, Some(edited_at))
        }
        UpdateKind::CallbackQuery(query) => translate_callback(query),
        UpdateKind::ChannelPost(_) | UpdateKind::EditedChannelPost(_) => {
            Translated::Ignored("a channel post")
        }
        UpdateKind::Error(_) => Translated::Ignored("an update kind Closer does not read"),
        _ => Translated::Ignored("an update kind Closer does not ask for"),
    }
}

fn translate_message(
    message: &Message,
    me: &Identity,
    edited_at: Option<DateTime<Utc>>,
) -> Translated {
    let Some(from) = message.from.as_ref() else {
        return Translated::Ignored("a message without a sender");
    };
    if from.is_bot {
        return Translated::Ignored("a message from a bot");
    }
    if message.chat.is_channel() {
        return Translated::Ignored("a channel post");
    }
    let group = !message.chat.is_private();
    if group && !addressed_to_bot(message, me) {
        return Translated::Ignored("a group message not addressed to the bot");
    }
    let content = match content_of(message, me, group) {
        Some(content) => content,
        None => return Translated::Ignored("a service message"),
    };
    let platform_message_id = match edited_at {
        None => message.id.0.to_string(),
        Some(at) => format!("{}:edit:{}", message.id.0, at.timestamp()),
    };
    Translated::Inbound {
        message: InboundMessage {
            channel: Channel::Telegram,
            chat_id: message.chat.id.0.to_string(),
            platform_message_id,
            sender_name: sender_name(from),
            content,
            received_at: edited_at.unwrap_or(message.date),
        },
        chat_id: message.chat.id.0,
        callback_id: None,
    }
}

fn translate_callback(query: &CallbackQuery) -> Translated {
    let callback_id = query.id.0.clone();
    let (Some(data), Some(message)) = (query.data.as_ref(), query.message.as_ref()) else {
        return Translated::AcknowledgeOnly { callback_id };
    };
    let chat: &Chat = message.chat();
    if query.from.is_bot {
        return Translated::AcknowledgeOnly { callback_id };
    }
    Translated::Inbound {
        message: InboundMessage {
            channel: Channel::Telegram,
            chat_id: chat.id.0.to_string(),
            platform_message_id: format!("callback:{callback_id}"),
            sender_name: sender_name(&query.from),
            content: InboundContent::QuickReply {
                payload: data.clone(),
            },
            received_at: Utc::now(),
        },
        chat_id: chat.id.0,
        callback_id: Some(callback_id),
    }
}

/// In a group the bot answers only when it is mentioned, called by a command addressed to
/// it, or replied to.
fn addressed_to_bot(message: &Message, me: &Identity) -> bool {
    let replied_to_bot = message
        .reply_to_message()
        .and_then(|original| original.from.as_ref())
        .is_some_and(|author| author.id == UserId(me.id));
    let text = message.text().or_else(|| message.caption()).unwrap_or("");
    replied_to_bot || mentions(text, &me.username)
}

/// Whether `text` contains `@username` as a whole word (Telegram usernames are
/// case-insensitive).
fn mentions(text: &str, username: &str) -> bool {
    !mention_ranges(text, username).is_empty()
}

/// The byte ranges of `text` that are `@username` as a whole word. Usernames are ASCII
/// (letters, digits, `_`), so the comparison ignores ASCII case on `text`'s own bytes: no
/// offset found in a lower-cased copy ever indexes the original, whose letters may lower-case
/// to a different length (`İ`, `ẞ`, the Kelvin sign).
fn mention_ranges(text: &str, username: &str) -> Vec<std::ops::Range<usize>> {
    let wanted = username.as_bytes();
    if wanted.is_empty() {
        return Vec::new();
    }
    text.match_indices('@')
        .filter_map(|(at, _)| {
            let end = at + 1 + wanted.len();
            let candidate = text.as_bytes().get(at + 1..end)?;
            if !candidate.eq_ignore_ascii_case(wanted) {
                return None;
            }
            let after = text.get(end..)?.chars().next();
            (!after.is_some_and(|c| c.is_alphanumeric() || c == '_')).then_some(at..end)
        })
        .collect()
}

/// Removes `@username` mentions of the bot from `text`.
fn strip_mention(text: &str, username: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = 0;
    for range in mention_ranges(text, username) {
        result.push_str(&text[rest..range.start]);
        rest = range.end;
    }
    result.push_str(&text[rest..]);
    result.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn content_of(message: &Message, me: &Identity, group: bool) -> Option<InboundContent> {
    let MessageKind::Common(common) = &message.kind else {
        return None;
    };
    let typed = |text: &str| -> InboundContent {
        let text = if group {
            strip_mention(text, &me.username)
        } else {
            text.trim().to_owned()
        };
        if let Some(command) = command_of(&text, &me.username) {
            return command;
        }
        if text.is_empty() {
            InboundContent::Start { campaign: None }
        } else {
            InboundContent::Text { text }
        }
    };
    Some(match &common.media_kind {
        MediaKind::Text(media) => typed(&media.text),
        MediaKind::Contact(media) => match contact_phone(&media.contact.phone_number) {
            Some(phone) => InboundContent::SharedContact {
                phone,
                name: Some(
                    [
                        Some(media.contact.first_name.as_str()),
                        media.contact.last_name.as_deref(),
                    ]
                    .into_iter()
                    .flatten()
                    .filter(|part| !part.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(" "),
                )
                .filter(|name| !name.is_empty()),
            },
            None => InboundContent::Text {
                text: media.contact.phone_number.clone(),
            },
        },
        other => match message.caption() {
            // A photo of a question with a caption: the caption is what can be answered.
            Some(caption) if !caption.trim().is_empty() => typed(caption),
            _ => InboundContent::Unsupported {
                what: media_name(other).to_owned(),
            },
        },
    })
}

/// Telegram sends a shared contact's number in international form, usually without its `+`.
fn contact_phone(raw: &str) -> Option<Phone> {
    Phone::parse(raw)
        .or_else(|_| Phone::parse(&format!("+{}", raw.trim())))
        .ok()
}

/// `/start [campaign]` and `/help`, optionally addressed as `/start@bot`; other commands are
/// read as the words they are.
fn command_of(text: &str, username: &str) -> Option<InboundContent> {
    let rest = text.strip_prefix('/')?;
    let (word, argument) = match rest.split_once(char::is_whitespace) {
        Some((word, argument)) => (word, argument.trim()),
        None => (rest, ""),
    };
    let (command, addressee) = match word.split_once('@') {
        Some((command, addressee)) => (command, Some(addressee)),
        None => (word, None),
    };
    if addressee.is_some_and(|addressee| !addressee.eq_ignore_ascii_case(username)) {
        return None;
    }
    match command.to_lowercase().as_str() {
        "start" => Some(InboundContent::Start {
            campaign: campaign(argument),
        }),
        "help" => Some(InboundContent::Start { campaign: None }),
        _ => {
            let words = format!("{command} {argument}");
            let words = words.trim();
            (!words.is_empty()).then(|| InboundContent::Text {
                text: words.to_owned(),
            })
        }
    }
}

/// A deep-link payload kept as the campaign: Telegram allows `[A-Za-z0-9_-]`, up to 64.
fn campaign(argument: &str) -> Option<String> {
    let cleaned: String = argument
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(MAX_CAMPAIGN_CHARS)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

fn sender_name(user: &User) -> Option<String> {
    let name = user.full_name();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn media_name(media: &MediaKind) -> &'static str {
    match media {
        MediaKind::Animation(_) => "animation",
        MediaKind::Audio(_) => "audio",
        MediaKind::Document(_) => "file",
        MediaKind::Photo(_) => "photo",
        MediaKind::Sticker(_) => "sticker",
        MediaKind::Video(_) => "video",
        MediaKind::VideoNote(_) => "video message",
        MediaKind::Voice(_) => "voice message",
        MediaKind::Location(_) | MediaKind::Venue(_) => "location",
        MediaKind::Poll(_) => "poll",
        _ => "message",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn me() -> Identity {
        Identity {
            id: 1000,
            username: "closer_test_bot".to_owned(),
        }
    }

    fn update(value: serde_json::Value) -> Update {
        // From text, as updates arrive: teloxide's `Update` does not deserialize from a `Value`.
        serde_json::from_str(&value.to_string()).expect("a valid update")
    }

    fn private(fields: serde_json::Value) -> Update {
        let mut message = json!({
            "message_id": 7, "date": 1_700_000_000,
            "chat": {"id": 42, "type": "private", "first_name": "Anna"},
            "from": {"id": 42, "is_bot": false, "first_name": "Anna", "last_name": "K"},
        });
        if let (Some(message), Some(fields)) = (message.as_object_mut(), fields.as_object()) {
            message.extend(fields.clone());
        }
        update(json!({"update_id": 1, "message": message}))
    }

    fn content(translated: Translated) -> InboundContent {
        match translated {
            Translated::Inbound { message, .. } => message.content,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn a_private_text_is_a_message_keyed_by_its_message_id() {
        let Translated::Inbound {
            message, chat_id, ..
        } = translate(&private(json!({"text": "Сколько стоит?"})), &me())
        else {
            panic!("not a message");
        };
        assert_eq!(chat_id, 42);
        assert_eq!(message.chat_id, "42");
        assert_eq!(message.platform_message_id, "7");
        assert_eq!(message.sender_name.as_deref(), Some("Anna K"));
        assert_eq!(
            message.content,
            InboundContent::Text {
                text: "Сколько стоит?".to_owned()
            }
        );
    }

    #[test]
    fn start_carries_the_campaign_of_the_deep_link() {
        let got = content(translate(
            &private(
                json!({"text": "/start spring_promo-2026", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}),
            ),
            &me(),
        ));
        assert_eq!(
            got,
            InboundContent::Start {
                campaign: Some("spring_promo-2026".to_owned())
            }
        );
        let plain = content(translate(&private(json!({"text": "/start"})), &me()));
        assert_eq!(plain, InboundContent::Start { campaign: None });
        let junk = content(translate(&private(json!({"text": "/start <b>!!"})), &me()));
        assert_eq!(
            junk,
            InboundContent::Start {
                campaign: Some("b".to_owned())
            }
        );
    }

    #[test]
    fn a_shared_contact_fills_phone_and_name() {
        let got = content(translate(
            &private(
                json!({"contact": {"phone_number": "79161234567", "first_name": "Anna", "last_name": "K", "user_id": 42}}),
            ),
            &me(),
        ));
        let InboundContent::SharedContact { phone, name } = got else {
            panic!("not a contact: {got:?}");
        };
        assert_eq!(phone.as_str(), "+79161234567");
        assert_eq!(name.as_deref(), Some("Anna K"));
    }

    #[test]
    fn media_without_a_caption_is_unsupported_and_a_caption_is_read() {
        let sticker = content(translate(
            &private(
                json!({"sticker": {"file_id": "f", "file_unique_id": "u", "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false}}),
            ),
            &me(),
        ));
        assert_eq!(
            sticker,
            InboundContent::Unsupported {
                what: "sticker".to_owned()
            }
        );
        let photo =
            json!({"photo": [{"file_id": "f", "file_unique_id": "u", "width": 90, "height": 90}]});
        let uncaptioned = content(translate(&private(photo.clone()), &me()));
        assert_eq!(
            uncaptioned,
            InboundContent::Unsupported {
                what: "photo".to_owned()
            }
        );
        let mut captioned = photo;
        captioned["caption"] = json!("Есть такой тариф?");
        assert_eq!(
            content(translate(&private(captioned), &me())),
            InboundContent::Text {
                text: "Есть такой тариф?".to_owned()
            }
        );
    }

    #[test]
    fn an_edit_is_a_new_message_keyed_by_its_edit_time() {
        let edited = update(json!({"update_id": 2, "edited_message": {
            "message_id": 7, "date": 1_700_000_000, "edit_date": 1_700_000_100,
            "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": false, "first_name": "Anna"},
            "text": "My phone is +7 916 123-45-67"}}));
        let Translated::Inbound { message, .. } = translate(&edited, &me()) else {
            panic!("not a message");
        };
        assert_eq!(message.platform_message_id, "7:edit:1700000100");
    }

    #[test]
    fn a_button_press_is_a_quick_reply_keyed_by_the_callback() {
        let press = update(json!({"update_id": 3, "callback_query": {
            "id": "cbq1", "chat_instance": "c", "data": "rate:5",
            "from": {"id": 42, "is_bot": false, "first_name": "Anna"},
            "message": {"message_id": 101, "date": 1_700_000_000, "chat": {"id": 42, "type": "private"}, "text": "Rate us"}}}));
        let Translated::Inbound {
            message,
            callback_id,
            ..
        } = translate(&press, &me())
        else {
            panic!("not a message");
        };
        assert_eq!(callback_id.as_deref(), Some("cbq1"));
        assert_eq!(message.platform_message_id, "callback:cbq1");
        assert_eq!(
            message.content,
            InboundContent::QuickReply {
                payload: "rate:5".to_owned()
            }
        );
    }

    fn group(text: &str, reply_to_bot: bool) -> Update {
        let mut message = json!({
            "message_id": 9, "date": 1_700_000_000,
            "chat": {"id": -100_123, "type": "supergroup", "title": "Buyers"},
            "from": {"id": 77, "is_bot": false, "first_name": "Oleg"},
            "text": text,
        });
        if reply_to_bot {
            message["reply_to_message"] = json!({"message_id": 5, "date": 1_700_000_000,
                "chat": {"id": -100_123, "type": "supergroup", "title": "Buyers"},
                "from": {"id": 1000, "is_bot": true, "first_name": "Closer"}, "text": "Hello"});
        }
        update(json!({"update_id": 4, "message": message}))
    }

    #[test]
    fn in_a_group_only_mentions_and_replies_to_the_bot_are_read() {
        assert_eq!(
            translate(&group("what a day", false), &me()),
            Translated::Ignored("a group message not addressed to the bot")
        );
        assert_eq!(
            translate(&group("@closer_test_botanist hi", false), &me()),
            Translated::Ignored("a group message not addressed to the bot")
        );
        assert_eq!(
            content(translate(
                &group("@Closer_Test_Bot сколько стоит?", false),
                &me()
            )),
            InboundContent::Text {
                text: "сколько стоит?".to_owned()
            }
        );
        assert_eq!(
            content(translate(&group("and for 5 staff?", true), &me())),
            InboundContent::Text {
                text: "and for 5 staff?".to_owned()
            }
        );
        assert_eq!(
            content(translate(
                &group("/start@closer_test_bot promo", false),
                &me()
            )),
            InboundContent::Start {
                campaign: Some("promo".to_owned())
            }
        );
    }

    #[test]
    fn letters_that_lower_case_to_another_length_never_shift_a_mention() {
        // `İ` lower-cases to three bytes, `ẞ` and the Kelvin sign to fewer: the offsets of a
        // lower-cased copy are not the original's, which once panicked on this message.
        for text in [
            "İİ @closer_test_bot ẞẞ цена?",
            "ẞİ @CLOSER_TEST_BOT цена?",
            "\u{212A}\u{212A}\u{212A} @closer_test_bot İ",
            "@closer_test_bot",
        ] {
            let translated = translate(&group(text, false), &me());
            let Translated::Inbound { message, .. } = translated else {
                panic!("{text:?} mentions the bot: {translated:?}");
            };
            if let InboundContent::Text { text: read } = message.content {
                assert!(!read.contains('@'), "{text:?} read as {read:?}");
            }
        }
        assert_eq!(
            strip_mention("İẞ @closer_test_bot ẞİ", "closer_test_bot"),
            "İẞ ẞİ"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_group_text_translates_without_panicking(text in "\\PC{0,200}", at in 0usize..200) {
            // The mention placed anywhere in arbitrary text, case-changing letters included.
            let cut = text.char_indices().map(|(i, _)| i).nth(at).unwrap_or(text.len());
            let with_mention = format!("{} @Closer_Test_Bot {}", &text[..cut], &text[cut..]);
            let _ = translate(&group(&text, false), &me());
            let translated = translate(&group(&with_mention, false), &me());
            proptest::prop_assert!(!matches!(translated, Translated::Ignored(_)));
        }
    }

    mod properties {
        use closer_testing::{cases, nasty_text, nasty_text_with};
        use proptest::prelude::*;

        use super::*;

        /// The syntax Telegram text carries: commands, mentions of the bot and of others.
        const TELEGRAM_PIECES: &[&str] = &[
            "/start",
            "/help",
            "/start@closer_test_bot ",
            "/price@other_bot",
            "@closer_test_bot",
            "@Closer_Test_Bot",
            "@closer_test_botanist",
            "@",
            "/",
        ];

        /// Entities of any type, offset and length, as a client that counts differently (or
        /// a forged update) may send: translation must not trust them.
        fn entities() -> impl Strategy<Value = serde_json::Value> {
            proptest::collection::vec(
                (
                    proptest::sample::select(&[
                        "bot_command",
                        "mention",
                        "bold",
                        "italic",
                        "code",
                        "hashtag",
                        "spoiler",
                    ]),
                    0u32..5000,
                    0u32..5000,
                ),
                0..4,
            )
            .prop_map(|entities| {
                json!(entities
                    .into_iter()
                    .map(|(kind, offset, length)| json!({"type": kind, "offset": offset, "length": length}))
                    .collect::<Vec<_>>())
            })
        }

        fn is_start_or_text(content: &InboundContent) -> bool {
            matches!(
                content,
                InboundContent::Start { .. } | InboundContent::Text { .. }
            )
        }

        proptest! {
            #![proptest_config(cases(128))]

            /// A private text is always read: as the trimmed text itself unless it is a
            /// command, and never as anything but a text or a start.
            #[test]
            fn a_private_text_with_any_entities_is_read_as_written(
                text in nasty_text_with(TELEGRAM_PIECES),
                entities in entities(),
            ) {
                let got = content(translate(&private(json!({"text": text, "entities": entities})), &me()));
                prop_assert!(is_start_or_text(&got), "{got:?}");
                let trimmed = text.trim();
                if !trimmed.is_empty() && !trimmed.starts_with('/') {
                    prop_assert_eq!(got, InboundContent::Text { text: trimmed.to_owned() });
                }
            }

            /// A caption is read like a text; media without one is named, never dropped.
            #[test]
            fn a_caption_is_read_like_a_text(
                caption in nasty_text_with(TELEGRAM_PIECES),
                entities in entities(),
            ) {
                let photo = json!({
                    "photo": [{"file_id": "f", "file_unique_id": "u", "width": 90, "height": 90}],
                    "caption": caption,
                    "caption_entities": entities,
                });
                let got = content(translate(&private(photo), &me()));
                if caption.trim().is_empty() {
                    prop_assert_eq!(got, InboundContent::Unsupported { what: "photo".to_owned() });
                } else {
                    prop_assert!(is_start_or_text(&got), "{got:?}");
                }
            }

            /// `/start` takes only what a deep link may carry as the campaign, at most 64 of
            /// `A-Z a-z 0-9 _ -`, whatever follows it.
            #[test]
            fn a_start_command_keeps_only_a_valid_campaign(argument in nasty_text()) {
                let got = content(translate(&private(json!({"text": format!("/start {argument}")})), &me()));
                let InboundContent::Start { campaign } = got else {
                    return Err(TestCaseError::fail(format!("not a start: {got:?}")));
                };
                if let Some(campaign) = campaign {
                    prop_assert!(!campaign.is_empty() && campaign.len() <= MAX_CAMPAIGN_CHARS);
                    prop_assert!(campaign
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'));
                }
            }

            /// In a group, a text that mentions the bot is read without the mention, whatever
            /// surrounds it; one that does not is left to the people in the group.
            #[test]
            fn a_group_text_is_read_only_when_it_mentions_the_bot(
                text in nasty_text_with(TELEGRAM_PIECES),
            ) {
                let translated = translate(&group(&text, false), &me());
                if mentions(&text, "closer_test_bot") {
                    let got = content(translated);
                    prop_assert!(is_start_or_text(&got), "{got:?}");
                    if let InboundContent::Text { text: read } = got {
                        prop_assert!(!mentions(&read, "closer_test_bot"), "{read:?}");
                    }
                } else {
                    prop_assert_eq!(
                        translated,
                        Translated::Ignored("a group message not addressed to the bot")
                    );
                }
            }

            /// An edit is its own message, keyed by the message id and the edit's time.
            #[test]
            fn an_edit_is_keyed_by_its_message_and_time(
                text in nasty_text_with(TELEGRAM_PIECES),
                message_id in 1i32..i32::MAX,
                edit_date in 1_600_000_000i64..2_000_000_000,
            ) {
                let edited = update(json!({"update_id": 2, "edited_message": {
                    "message_id": message_id, "date": 1_500_000_000, "edit_date": edit_date,
                    "chat": {"id": 42, "type": "private"},
                    "from": {"id": 42, "is_bot": false, "first_name": "Anna"},
                    "text": text}}));
                let Translated::Inbound { message, .. } = translate(&edited, &me()) else {
                    return Err(TestCaseError::fail("an edit is a message"));
                };
                prop_assert_eq!(message.platform_message_id, format!("{message_id}:edit:{edit_date}"));
            }

            /// A button's data comes back as the quick reply's payload, byte for byte, keyed by
            /// the callback; a press without data or message is acknowledged only.
            #[test]
            fn a_button_press_carries_its_data_as_the_payload(
                data in nasty_text(),
                id in nasty_text(),
                with_message in any::<bool>(),
            ) {
                let mut query = json!({
                    "id": id, "chat_instance": "c", "data": data,
                    "from": {"id": 42, "is_bot": false, "first_name": "Anna"},
                });
                if with_message {
                    query["message"] = json!({"message_id": 101, "date": 1_700_000_000,
                        "chat": {"id": 42, "type": "private"}, "text": "Rate us"});
                }
                let translated = translate(&update(json!({"update_id": 3, "callback_query": query})), &me());
                if with_message {
                    let Translated::Inbound { message, callback_id, .. } = translated else {
                        return Err(TestCaseError::fail(format!("not a message: {translated:?}")));
                    };
                    prop_assert_eq!(callback_id.as_deref(), Some(id.as_str()));
                    prop_assert_eq!(message.platform_message_id, format!("callback:{id}"));
                    prop_assert_eq!(message.content, InboundContent::QuickReply { payload: data });
                } else {
                    prop_assert_eq!(translated, Translated::AcknowledgeOnly { callback_id: id });
                }
            }

            /// A shared contact is a phone with a tidy name, or, when the number does not
            /// parse, the number as the prospect's words: never lost, never a panic.
            #[test]
            fn a_shared_contact_is_a_phone_or_the_words_it_carried(
                phone_number in nasty_text_with(&["+", "7", "79161234567", "8 916 123 45 67", " ", "-"]),
                first_name in nasty_text(),
                last_name in proptest::option::of(nasty_text()),
            ) {
                let got = content(translate(
                    &private(json!({"contact": {"phone_number": phone_number, "first_name": first_name, "last_name": last_name}})),
                    &me(),
                ));
                match got {
                    InboundContent::SharedContact { name, .. } => {
                        if let Some(name) = name {
                            prop_assert!(!name.is_empty());
                        }
                    }
                    InboundContent::Text { text } => prop_assert_eq!(text, phone_number),
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                }
            }
        }
    }

    #[test]
    fn unknown_update_kinds_and_bots_are_ignored() {
        let unknown = update(json!({"update_id": 5, "some_future_kind": {"x": 1}}));
        assert!(matches!(translate(&unknown, &me()), Translated::Ignored(_)));
        let from_bot = update(json!({"update_id": 6, "message": {
            "message_id": 1, "date": 1_700_000_000, "chat": {"id": 42, "type": "private"},
            "from": {"id": 5, "is_bot": true, "first_name": "Other"}, "text": "hi"}}));
        assert_eq!(
            translate(&from_bot, &me()),
            Translated::Ignored("a message from a bot")
        );
    }
}
