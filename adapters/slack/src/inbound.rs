//! A Slack event as what Closer does with it (pure).
//!
//! - A direct message to the bot, or a message mentioning it in a channel, is a question:
//!   an [`InboundMessage`] on [`Channel::Slack`] whose chat is the DM (`D…`) or the thread the
//!   mention starts or sits in (`C…:ts`), so the answer goes where the question was asked, and
//!   whose platform id is the message's `ts` (unique in its channel): a retried event, and the
//!   `message` event Slack sends beside an `app_mention`, are the same message to the engine.
//! - Any other message in a channel's thread may be a salesperson writing to a prospect in a
//!   taken-over lead's thread: [`Translated::ThreadMessage`].
//! - The bot's own messages, edits, joins and other subtypes are ignored.

use chrono::{TimeZone, Utc};
use closer_model::{Channel, InboundContent, InboundMessage};
use slack_morphism::prelude::*;

use crate::api::BotIdentity;

/// What an event amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Translated {
    /// A question for the assistant.
    Ask(InboundMessage),
    /// A person's message in a thread of a channel, not addressed to the bot.
    ThreadMessage {
        channel: String,
        thread_ts: String,
        ts: String,
        user: String,
        text: String,
    },
    Ignored(&'static str),
}

/// Where a Slack conversation's replies go: a channel, and the thread within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRef {
    pub channel: String,
    pub thread_ts: Option<String>,
}

impl ChatRef {
    /// A conversation's `chat_id` as stored: `D123` or `C123:1700000000.000100`.
    pub fn parse(chat_id: &str) -> ChatRef {
        match chat_id.split_once(':') {
            Some((channel, thread)) => ChatRef {
                channel: channel.to_owned(),
                thread_ts: Some(thread.to_owned()),
            },
            None => ChatRef {
                channel: chat_id.to_owned(),
                thread_ts: None,
            },
        }
    }

    pub fn chat_id(&self) -> String {
        match &self.thread_ts {
            Some(thread) => format!("{}:{thread}", self.channel),
            None => self.channel.clone(),
        }
    }
}

/// Translates one event callback.
pub fn translate(event: &SlackPushEventCallback, me: &BotIdentity) -> Translated {
    match &event.event {
        SlackEventCallbackBody::AppMention(mention) => {
            if mention.user.0 == me.user_id {
                return Translated::Ignored("the bot's own message");
            }
            let text = question_text(mention.content.text.as_deref().unwrap_or(""), me);
            let thread = mention
                .origin
                .thread_ts
                .clone()
                .unwrap_or_else(|| mention.origin.ts.clone());
            let chat = ChatRef {
                channel: mention.channel.0.clone(),
                thread_ts: Some(thread.0),
            };
            ask(chat, &mention.origin.ts.0, &mention.user.0, text)
        }
        SlackEventCallbackBody::Message(message) => {
            if message.subtype.is_some() || message.hidden == Some(true) {
                return Translated::Ignored("not a plain new message");
            }
            let Some(user) = message.sender.user.as_ref() else {
                return Translated::Ignored("no user");
            };
            if message.sender.bot_id.is_some() || user.0 == me.user_id {
                return Translated::Ignored("a bot's message");
            }
            let Some(channel) = message.origin.channel.as_ref() else {
                return Translated::Ignored("no channel");
            };
            let raw = message
                .content
                .as_ref()
                .and_then(|content| content.text.as_deref())
                .unwrap_or("");
            let direct = matches!(message.origin.channel_type, Some(ref kind) if kind.0 == "im")
                || channel.0.starts_with('D');
            if direct {
                let chat = ChatRef {
                    channel: channel.0.clone(),
                    thread_ts: None,
                };
                return ask(chat, &message.origin.ts.0, &user.0, question_text(raw, me));
            }
            if raw.contains(&format!("<@{}>", me.user_id)) {
                return Translated::Ignored("a mention: answered from its app_mention event");
            }
            match &message.origin.thread_ts {
                Some(thread_ts) if thread_ts.0 != message.origin.ts.0 => {
                    Translated::ThreadMessage {
                        channel: channel.0.clone(),
                        thread_ts: thread_ts.0.clone(),
                        ts: message.origin.ts.0.clone(),
                        user: user.0.clone(),
                        text: unescape(raw.trim()),
                    }
                }
                _ => Translated::Ignored("a channel message not addressed to the bot"),
            }
        }
        _ => Translated::Ignored("an event Closer does not use"),
    }
}

fn ask(chat: ChatRef, ts: &str, user: &str, text: String) -> Translated {
    if text.is_empty() {
        return Translated::Ignored("an empty question");
    }
    Translated::Ask(InboundMessage {
        channel: Channel::Slack,
        chat_id: chat.chat_id(),
        platform_message_id: ts.to_owned(),
        sender_name: Some(user.to_owned()),
        content: InboundContent::Text { text },
        received_at: received_at(ts),
    })
}

/// The question without the bot's mention, with Slack's escapes undone.
pub fn question_text(raw: &str, me: &BotIdentity) -> String {
    let without = raw.replace(&format!("<@{}>", me.user_id), " ");
    unescape(
        without
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .trim(),
    )
}

/// Slack escapes `&`, `<` and `>` in the text it sends; the engine reads plain text.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A message's `ts` is its time in seconds (with a sequence after the dot).
fn received_at(ts: &str) -> chrono::DateTime<Utc> {
    ts.split('.')
        .next()
        .and_then(|seconds| seconds.parse::<i64>().ok())
        .and_then(|seconds| Utc.timestamp_opt(seconds, 0).single())
        .unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn me() -> BotIdentity {
        BotIdentity {
            user_id: "UBOT".to_owned(),
            bot_id: Some("BBOT".to_owned()),
            team: "Acme".to_owned(),
            team_id: "T1".to_owned(),
        }
    }

    fn callback(event: serde_json::Value) -> SlackPushEventCallback {
        serde_json::from_value(json!({
            "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1", "event_time": 1700000000,
            "event": event
        }))
        .expect("a valid event callback")
    }

    #[test]
    fn a_direct_message_is_a_question_in_the_dm() {
        let translated = translate(
            &callback(
                json!({"type": "message", "channel": "D1", "channel_type": "im",
                "user": "U1", "text": "price &lt;Pro&gt; &amp; setup?", "ts": "1700000000.000100"}),
            ),
            &me(),
        );
        let Translated::Ask(message) = translated else {
            panic!("{translated:?}")
        };
        assert_eq!(message.chat_id, "D1");
        assert_eq!(message.platform_message_id, "1700000000.000100");
        assert_eq!(message.content.text(), Some("price <Pro> & setup?"));
    }

    #[test]
    fn a_mention_asks_in_its_thread_without_the_mention() {
        let translated = translate(
            &callback(json!({"type": "app_mention", "channel": "C1", "user": "U1",
                "text": "<@UBOT> how much is Pro?", "ts": "1700000001.000200"})),
            &me(),
        );
        let Translated::Ask(message) = translated else {
            panic!("{translated:?}")
        };
        assert_eq!(message.chat_id, "C1:1700000001.000200");
        assert_eq!(message.content.text(), Some("how much is Pro?"));
    }

    #[test]
    fn bots_edits_and_plain_channel_chatter_are_ignored_and_thread_replies_noted() {
        for event in [
            json!({"type": "message", "channel": "D1", "channel_type": "im", "bot_id": "BBOT",
                "user": "UBOT", "text": "my own", "ts": "1.1"}),
            json!({"type": "message", "subtype": "message_changed", "channel": "D1", "ts": "1.2"}),
            json!({"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1",
                "text": "lunch?", "ts": "1.3"}),
            json!({"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1",
                "text": "<@UBOT> hi", "ts": "1.4", "thread_ts": "1.0"}),
            json!({"type": "reaction_added", "user": "U1", "reaction": "+1",
                "item": {"type": "message", "channel": "C1", "ts": "1.0"}, "event_ts": "1.5"}),
        ] {
            let translated = translate(&callback(event.clone()), &me());
            assert!(
                matches!(translated, Translated::Ignored(_)),
                "{event}: {translated:?}"
            );
        }
        let translated = translate(
            &callback(
                json!({"type": "message", "channel": "C9", "channel_type": "channel",
                "user": "U2", "text": "Hello, I am Anna &amp; I will help", "ts": "2.1", "thread_ts": "2.0"}),
            ),
            &me(),
        );
        assert_eq!(
            translated,
            Translated::ThreadMessage {
                channel: "C9".to_owned(),
                thread_ts: "2.0".to_owned(),
                ts: "2.1".to_owned(),
                user: "U2".to_owned(),
                text: "Hello, I am Anna & I will help".to_owned(),
            }
        );
    }
}
