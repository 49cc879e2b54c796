//! Discord's messages and interactions to platform-neutral messages: pure, no I/O.
//!
//! **Conversations.** A direct-message channel belongs to one prospect, so it is one
//! conversation (`chat_id` = the channel id). A server channel is shared, so each person
//! talking to the bot there has a conversation of their own (`chat_id` = `channel:user`),
//! with their own lead; replies go to the channel and mention them.
//!
//! **Deduplication.** A message is keyed by its snowflake id (unique across Discord), an
//! interaction by `interaction:{id}`; the engine processes a key once per conversation, so a
//! gateway resume that replays events answers nothing twice.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use closer_model::{Channel, InboundContent, InboundMessage};
use serenity::all::{
    ActionRowComponent, CommandDataOptionValue, CommandInteraction, ComponentInteraction,
    Interaction, Message, MessageType, ModalInteraction, User,
};

/// The name of the slash command that asks a question.
pub const ASK_COMMAND: &str = "ask";
/// The name of the slash command that opens the contact form.
pub const CONTACT_COMMAND: &str = "contact";
/// The `/ask` command's one option.
pub const QUESTION_OPTION: &str = "question";
/// The custom id of the "leave contact details" button: it opens the contact form.
pub const CONTACT_BUTTON_ID: &str = "closer:contact";
/// The custom id of the contact form (a modal).
pub const CONTACT_MODAL_ID: &str = "closer:contact:form";
/// The custom ids of the contact form's fields.
pub const NAME_FIELD: &str = "name";
pub const PHONE_FIELD: &str = "phone";
pub const EMAIL_FIELD: &str = "email";

/// The bot itself, as `GET /users/@me` tells: needed to see whether it is mentioned and to
/// ignore its own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: u64,
    pub username: String,
}

/// Where the assistant answers every message; elsewhere only when mentioned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Server channels where every message is for the assistant.
    pub channels: HashSet<u64>,
    /// Whether direct messages are answered.
    pub direct_messages: bool,
}

/// What a message means for Closer.
#[derive(Debug, Clone, PartialEq)]
pub enum Translated {
    /// A message for the assistant, to be answered in `channel_id`.
    Inbound {
        message: InboundMessage,
        channel_id: u64,
    },
    /// Nothing for the assistant; the reason is for the log.
    Ignored(&'static str),
}

/// Translates one message from the gateway.
pub fn translate_message(message: &Message, me: &Identity, scope: &Scope) -> Translated {
    if message.author.bot || message.author.id.get() == me.id || message.webhook_id.is_some() {
        return Translated::Ignored("a message from a bot or a webhook");
    }
    if !matches!(
        message.kind,
        MessageType::Regular | MessageType::InlineReply
    ) {
        return Translated::Ignored("a system message");
    }
    let channel_id = message.channel_id.get();
    let direct = message.guild_id.is_none();
    let mentioned = message.mentions.iter().any(|user| user.id.get() == me.id)
        || message
            .referenced_message
            .as_ref()
            .is_some_and(|original| original.author.id.get() == me.id);
    if direct && !scope.direct_messages {
        return Translated::Ignored("a direct message while direct messages are off");
    }
    if !direct && !scope.channels.contains(&channel_id) && !mentioned {
        return Translated::Ignored("a message in another channel that does not mention the bot");
    }
    let text = strip_mention(&message.content, me.id);
    let content = if text.is_empty() {
        if message.attachments.is_empty() && message.sticker_items.is_empty() {
            // A bare mention: the prospect says hello.
            InboundContent::Start { campaign: None }
        } else {
            InboundContent::Unsupported {
                what: if message.sticker_items.is_empty() {
                    "attachment".to_owned()
                } else {
                    "sticker".to_owned()
                },
            }
        }
    } else {
        InboundContent::Text { text }
    };
    Translated::Inbound {
        message: InboundMessage {
            channel: Channel::Discord,
            chat_id: chat_id(channel_id, !direct, message.author.id.get()),
            platform_message_id: message.id.get().to_string(),
            sender_name: sender_name(&message.author),
            content,
            received_at: timestamp(message.timestamp.unix_timestamp()),
        },
        channel_id,
    }
}

/// The conversation key of a person in a channel: the channel alone for a direct message,
/// `channel:user` in a server.
pub fn chat_id(channel_id: u64, in_server: bool, user_id: u64) -> String {
    if in_server {
        format!("{channel_id}:{user_id}")
    } else {
        channel_id.to_string()
    }
}

/// Where a conversation's replies go: the channel, and the person to mention in a server.
pub fn destination(chat_id: &str) -> Option<(u64, Option<u64>)> {
    match chat_id.split_once(':') {
        Some((channel, user)) => Some((channel.parse().ok()?, Some(user.parse().ok()?))),
        None => Some((chat_id.parse().ok()?, None)),
    }
}

/// Removes the bot's mentions (`<@id>` and `<@!id>`) from `text` and tidies the spaces.
pub fn strip_mention(text: &str, bot_id: u64) -> String {
    let plain = format!("<@{bot_id}>");
    let nick = format!("<@!{bot_id}>");
    text.replace(&plain, " ")
        .replace(&nick, " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// What Closer does with an interaction: the immediate response (within Discord's 3 s), and
/// the message for the engine, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub response: Response,
    pub inbound: Option<InboundMessage>,
}

/// The immediate response to an interaction, in Closer's terms; `lib` builds serenity's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// PING → PONG (the HTTP endpoint only).
    Pong,
    /// "The bot is thinking…": the replies follow as follow-up messages of the interaction.
    DeferReply,
    /// A button press acknowledged silently: the replies follow in the channel.
    Acknowledge,
    /// Open the contact form, its labels in this language (Discord's locale, `ru` or other).
    ContactForm { russian: bool },
    /// A short message only the person sees: the reason nothing else happens.
    Notice(&'static str),
}

/// Plans the response to one interaction.
pub fn plan_interaction(interaction: &Interaction, me: &Identity, scope: &Scope) -> Planned {
    match interaction {
        Interaction::Ping(_) => Planned {
            response: Response::Pong,
            inbound: None,
        },
        Interaction::Command(command) => plan_command(command, me, scope),
        Interaction::Component(component) => plan_component(component, scope),
        Interaction::Modal(modal) => plan_modal(modal, scope),
        _ => Planned {
            response: Response::Notice("This is not something I can answer."),
            inbound: None,
        },
    }
}

fn plan_command(command: &CommandInteraction, me: &Identity, scope: &Scope) -> Planned {
    if command.guild_id.is_none() && !scope.direct_messages {
        return notice("I answer in the server's channels, not in direct messages.");
    }
    let russian = command.locale.starts_with("ru");
    match command.data.name.as_str() {
        ASK_COMMAND => {
            let question = command
                .data
                .options
                .iter()
                .find(|option| option.name == QUESTION_OPTION)
                .and_then(|option| match &option.value {
                    CommandDataOptionValue::String(text) => Some(strip_mention(text, me.id)),
                    _ => None,
                })
                .unwrap_or_default();
            let content = if question.is_empty() {
                InboundContent::Start { campaign: None }
            } else {
                InboundContent::Text { text: question }
            };
            Planned {
                response: Response::DeferReply,
                inbound: Some(interaction_message(
                    command.id.get(),
                    command.channel_id.get(),
                    command.guild_id.is_some(),
                    &command.user,
                    content,
                )),
            }
        }
        CONTACT_COMMAND => Planned {
            response: Response::ContactForm { russian },
            inbound: None,
        },
        _ => notice("I do not know that command."),
    }
}

fn plan_component(component: &ComponentInteraction, scope: &Scope) -> Planned {
    if component.guild_id.is_none() && !scope.direct_messages {
        return notice("I answer in the server's channels, not in direct messages.");
    }
    let custom_id = component.data.custom_id.as_str();
    if custom_id == CONTACT_BUTTON_ID {
        return Planned {
            response: Response::ContactForm {
                russian: component.locale.starts_with("ru"),
            },
            inbound: None,
        };
    }
    if custom_id.is_empty() {
        return Planned {
            response: Response::Acknowledge,
            inbound: None,
        };
    }
    Planned {
        response: Response::Acknowledge,
        inbound: Some(interaction_message(
            component.id.get(),
            component.channel_id.get(),
            component.guild_id.is_some(),
            &component.user,
            InboundContent::QuickReply {
                payload: custom_id.to_owned(),
            },
        )),
    }
}

/// The contact form's fields become one message: the phone and e-mail as the prospect's own
/// words (the dialog extracts them as from any message), the name as the sender's name, which
/// the lead takes when the text names nobody.
fn plan_modal(modal: &ModalInteraction, scope: &Scope) -> Planned {
    if modal.guild_id.is_none() && !scope.direct_messages {
        return notice("I answer in the server's channels, not in direct messages.");
    }
    if modal.data.custom_id != CONTACT_MODAL_ID {
        return notice("This form is no longer in use.");
    }
    let field = |wanted: &str| -> Option<String> {
        modal
            .data
            .components
            .iter()
            .flat_map(|row| row.components.iter())
            .find_map(|component| match component {
                ActionRowComponent::InputText(input) if input.custom_id == wanted => {
                    input.value.clone()
                }
                _ => None,
            })
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let name = field(NAME_FIELD);
    let details: Vec<String> = [field(PHONE_FIELD), field(EMAIL_FIELD)]
        .into_iter()
        .flatten()
        .collect();
    if details.is_empty() {
        return notice("Please leave a phone number or an e-mail address.");
    }
    let mut message = interaction_message(
        modal.id.get(),
        modal.channel_id.get(),
        modal.guild_id.is_some(),
        &modal.user,
        InboundContent::Text {
            text: details.join("\n"),
        },
    );
    if name.is_some() {
        message.sender_name = name;
    }
    Planned {
        response: Response::DeferReply,
        inbound: Some(message),
    }
}

fn notice(text: &'static str) -> Planned {
    Planned {
        response: Response::Notice(text),
        inbound: None,
    }
}

fn interaction_message(
    interaction_id: u64,
    channel_id: u64,
    in_server: bool,
    user: &User,
    content: InboundContent,
) -> InboundMessage {
    InboundMessage {
        channel: Channel::Discord,
        chat_id: chat_id(channel_id, in_server, user.id.get()),
        platform_message_id: format!("interaction:{interaction_id}"),
        sender_name: sender_name(user),
        content,
        // An interaction's snowflake carries its creation time.
        received_at: timestamp(snowflake_seconds(interaction_id)),
    }
}

fn sender_name(user: &User) -> Option<String> {
    user.global_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .or_else(|| Some(user.name.clone()).filter(|name| !name.trim().is_empty()))
}

/// Seconds since the Unix epoch when the snowflake was made.
fn snowflake_seconds(id: u64) -> i64 {
    const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
    i64::try_from(((id >> 22) + DISCORD_EPOCH_MS) / 1000).unwrap_or(0)
}

fn timestamp(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const BOT: u64 = 1001;

    fn me() -> Identity {
        Identity {
            id: BOT,
            username: "closer".to_owned(),
        }
    }

    fn scope() -> Scope {
        Scope {
            channels: HashSet::from([3001]),
            direct_messages: true,
        }
    }

    fn user(id: u64, bot: bool) -> Value {
        json!({"id": id.to_string(), "username": format!("user{id}"), "discriminator": "0",
               "global_name": null, "avatar": null, "bot": bot})
    }

    fn message(channel: u64, guild: Option<u64>, author: Value, content: &str) -> Message {
        let mentions: Vec<Value> = if content.contains(&format!("<@{BOT}>")) {
            vec![user(BOT, true)]
        } else {
            Vec::new()
        };
        serde_json::from_value(json!({
            "id": "2001", "channel_id": channel.to_string(),
            "guild_id": guild.map(|id| id.to_string()),
            "content": content, "timestamp": "2026-11-28T10:00:00.000000+00:00",
            "edited_timestamp": null, "tts": false, "mention_everyone": false,
            "mentions": mentions, "mention_roles": [], "attachments": [], "embeds": [],
            "pinned": false, "type": 0, "author": author
        }))
        .expect("a message parses")
    }

    fn text_of(translated: &Translated) -> Option<(&str, &str)> {
        match translated {
            Translated::Inbound { message, .. } => match &message.content {
                InboundContent::Text { text } => Some((message.chat_id.as_str(), text.as_str())),
                _ => None,
            },
            Translated::Ignored(_) => None,
        }
    }

    #[test]
    fn configured_channels_and_direct_messages_are_answered_and_others_only_when_mentioned() {
        let prospect = user(4001, false);
        let configured = message(3001, Some(9), prospect.clone(), "How much is it?");
        assert_eq!(
            text_of(&translate_message(&configured, &me(), &scope())),
            Some(("3001:4001", "How much is it?"))
        );
        let direct = message(5001, None, prospect.clone(), "Hi");
        assert_eq!(
            text_of(&translate_message(&direct, &me(), &scope())),
            Some(("5001", "Hi"))
        );
        let elsewhere = message(3002, Some(9), prospect.clone(), "chatting");
        assert!(matches!(
            translate_message(&elsewhere, &me(), &scope()),
            Translated::Ignored(_)
        ));
        let mentioned = message(
            3002,
            Some(9),
            prospect.clone(),
            "<@1001>  what is the price?",
        );
        assert_eq!(
            text_of(&translate_message(&mentioned, &me(), &scope())),
            Some(("3002:4001", "what is the price?"))
        );
        let no_dms = Scope {
            direct_messages: false,
            ..scope()
        };
        assert!(matches!(
            translate_message(&direct, &me(), &no_dms),
            Translated::Ignored(_)
        ));
    }

    #[test]
    fn bots_and_the_bot_itself_are_ignored() {
        let own = message(3001, Some(9), user(BOT, true), "my own reply");
        assert!(matches!(
            translate_message(&own, &me(), &scope()),
            Translated::Ignored(_)
        ));
        let other_bot = message(3001, Some(9), user(77, true), "beep");
        assert!(matches!(
            translate_message(&other_bot, &me(), &scope()),
            Translated::Ignored(_)
        ));
    }

    #[test]
    fn a_bare_mention_is_a_greeting_and_the_message_id_is_the_key() {
        let hello = message(3002, Some(9), user(4001, false), "<@1001>");
        let Translated::Inbound {
            message,
            channel_id,
        } = translate_message(&hello, &me(), &scope())
        else {
            panic!("a mention is for the bot");
        };
        assert_eq!(channel_id, 3002);
        assert_eq!(message.platform_message_id, "2001");
        assert_eq!(message.content, InboundContent::Start { campaign: None });
        assert_eq!(message.sender_name.as_deref(), Some("user4001"));
    }

    #[test]
    fn destinations_come_back_from_chat_ids() {
        assert_eq!(destination("3001:4001"), Some((3001, Some(4001))));
        assert_eq!(destination("5001"), Some((5001, None)));
        assert_eq!(destination("x"), None);
        assert_eq!(destination("1:x"), None);
    }

    mod properties {
        use closer_testing::{cases, nasty_text, nasty_text_with};
        use proptest::prelude::*;

        use super::*;

        /// Discord's own syntax in a message: the bot's mention both ways, others', pings.
        const DISCORD_PIECES: &[&str] = &[
            "<@1001>",
            "<@!1001>",
            "<@1001",
            "<@4001>",
            "@everyone",
            "<#3001>",
            "<:e:1>",
        ];

        fn interaction(kind: u64, data: Value, guild: bool, locale: &str) -> Interaction {
            let mut interaction = json!({
                "id": "175928847299117063", "application_id": "11", "type": kind,
                "data": data, "channel_id": "3001", "token": "t", "version": 1,
                "app_permissions": "0", "locale": locale, "entitlements": [],
                "authorizing_integration_owners": {}, "attachment_size_limit": 10_485_760,
            });
            if guild {
                interaction["guild_id"] = json!("9");
                interaction["member"] = json!({"user": user(4001, false), "roles": [],
                    "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false,
                    "mute": false, "flags": 0, "permissions": "0"});
            } else {
                interaction["user"] = user(4001, false);
            }
            if kind == 3 {
                interaction["message"] =
                    serde_json::to_value(message(3001, Some(9), user(BOT, true), "…"))
                        .expect("a message serializes");
            }
            serde_json::from_str(&interaction.to_string()).expect("an interaction parses")
        }

        proptest! {
            #![proptest_config(cases(128))]

            /// A message in a configured channel is read as its words with the bot's mentions
            /// removed and the spaces tidied, whatever it holds.
            #[test]
            fn a_channel_message_is_read_without_the_mention(text in nasty_text_with(DISCORD_PIECES)) {
                let translated = translate_message(&message(3001, Some(9), user(4001, false), &text), &me(), &scope());
                let Translated::Inbound { message, channel_id } = translated else {
                    return Err(TestCaseError::fail(format!("{translated:?}")));
                };
                prop_assert_eq!(channel_id, 3001);
                let expected = strip_mention(&text, BOT);
                prop_assert!(!expected.contains("<@1001>") && !expected.contains("<@!1001>"));
                match message.content {
                    InboundContent::Text { text: read } => {
                        prop_assert_eq!(read.split_whitespace().collect::<Vec<_>>().join(" "), read.clone());
                        prop_assert_eq!(read, expected);
                    }
                    InboundContent::Start { .. } => prop_assert!(expected.is_empty()),
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                }
            }

            /// `/ask` carries its question as a text (a start when blank), keyed by the
            /// interaction; the locale never matters to the question.
            #[test]
            fn an_ask_command_carries_its_question(
                question in nasty_text_with(DISCORD_PIECES),
                guild in any::<bool>(),
                locale in nasty_text(),
            ) {
                let data = json!({"id": "7001", "name": ASK_COMMAND, "type": 1,
                    "options": [{"name": QUESTION_OPTION, "type": 3, "value": question}]});
                let planned = plan_interaction(&interaction(2, data, guild, &locale), &me(), &scope());
                prop_assert_eq!(planned.response, Response::DeferReply);
                let inbound = planned.inbound.expect("a question for the engine");
                prop_assert_eq!(inbound.platform_message_id, "interaction:175928847299117063");
                let expected = strip_mention(&question, BOT);
                match inbound.content {
                    InboundContent::Text { text } => prop_assert_eq!(text, expected),
                    InboundContent::Start { .. } => prop_assert!(expected.is_empty()),
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                }
            }

            /// A button's custom id comes back as the quick reply's payload, as it was.
            #[test]
            fn a_button_press_carries_its_custom_id(custom_id in nasty_text_with(&[CONTACT_BUTTON_ID])) {
                let data = json!({"custom_id": custom_id, "component_type": 2});
                let planned = plan_interaction(&interaction(3, data, true, "en-US"), &me(), &scope());
                if custom_id == CONTACT_BUTTON_ID {
                    prop_assert_eq!(planned.response, Response::ContactForm { russian: false });
                } else if custom_id.is_empty() {
                    prop_assert_eq!(planned.inbound, None);
                } else {
                    let inbound = planned.inbound.expect("a quick reply");
                    prop_assert_eq!(inbound.content, InboundContent::QuickReply { payload: custom_id });
                }
            }

            /// The contact form's fields become one message of the phone and the e-mail, the
            /// name as the sender's; a form without either is refused with a notice.
            #[test]
            fn the_contact_form_becomes_one_message(
                name in nasty_text(),
                phone in nasty_text_with(&["+7 916 123-45-67", "8", " "]),
                email in nasty_text_with(&["anna@example.com", "@", "."]),
            ) {
                let rows: Vec<Value> = [(NAME_FIELD, &name), (PHONE_FIELD, &phone), (EMAIL_FIELD, &email)]
                    .iter()
                    .map(|(id, value)| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "value": value}]}))
                    .collect();
                let data = json!({"custom_id": CONTACT_MODAL_ID, "components": rows});
                let planned = plan_interaction(&interaction(5, data, true, "ru"), &me(), &scope());
                let details: Vec<&str> = [phone.trim(), email.trim()]
                    .into_iter()
                    .filter(|value| !value.is_empty())
                    .collect();
                match planned.inbound {
                    None => prop_assert!(details.is_empty()),
                    Some(inbound) => {
                        prop_assert_eq!(inbound.content, InboundContent::Text { text: details.join("\n") });
                        if !name.trim().is_empty() {
                            prop_assert_eq!(inbound.sender_name, Some(name.trim().to_owned()));
                        }
                    }
                }
            }

            /// A conversation's key comes back as where to answer; any other string is no
            /// destination, and nothing panics.
            #[test]
            fn destinations_round_trip_and_junk_is_refused(
                channel in any::<u64>(),
                user_id in any::<u64>(),
                in_server in any::<bool>(),
                junk in nasty_text_with(&[":", "1", "18446744073709551616"]),
            ) {
                let expected = (channel, in_server.then_some(user_id));
                prop_assert_eq!(destination(&chat_id(channel, in_server, user_id)), Some(expected));
                let _ = destination(&junk);
            }
        }
    }

    #[test]
    fn snowflakes_carry_their_time() {
        // 175928847299117063 is Discord's documented example: 2016-04-30 11:18:25.796 UTC.
        assert_eq!(snowflake_seconds(175_928_847_299_117_063), 1_462_015_105);
    }
}
