//! Messages in and replies out, in the terms of a conversation rather than of any platform.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contact::Phone;

/// Where a conversation takes place. Used as a metric label, so the set is closed and small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `closer chat` in a terminal.
    Cli,
    Telegram,
    Slack,
    Discord,
    Web,
    /// `closer eval` talking to the engine directly.
    Eval,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Cli => "cli",
            Channel::Telegram => "telegram",
            Channel::Slack => "slack",
            Channel::Discord => "discord",
            Channel::Web => "web",
            Channel::Eval => "eval",
        }
    }

    /// Whether replies on this channel are sent by a background sender reading them from the
    /// store (marked pending when committed), rather than returned to the caller and shown at
    /// once. A crash between the commit and the send then delays a reply instead of losing it.
    pub fn delivers_from_store(self) -> bool {
        matches!(self, Channel::Telegram | Channel::Slack | Channel::Discord)
    }

    pub fn parse(name: &str) -> Option<Channel> {
        Some(match name {
            "cli" => Channel::Cli,
            "telegram" => Channel::Telegram,
            "slack" => Channel::Slack,
            "discord" => Channel::Discord,
            "web" => Channel::Web,
            "eval" => Channel::Eval,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message from a prospect, already translated from the platform's format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub channel: Channel,
    /// The platform's id of the chat (a Telegram chat id, a Slack channel, a web visitor).
    /// Together with `channel` it names the conversation.
    pub chat_id: String,
    /// The platform's id of this message: a redelivery carries the same id and is ignored.
    pub platform_message_id: String,
    /// The sender's display name on the platform, when it has one; a hint for the lead's name.
    pub sender_name: Option<String>,
    pub content: InboundContent,
    pub received_at: DateTime<Utc>,
}

/// What the prospect sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundContent {
    /// Free text typed by the prospect.
    Text { text: String },
    /// The prospect opened the chat (Telegram's `/start`), possibly from a campaign link.
    Start { campaign: Option<String> },
    /// The prospect pressed a quick-reply button; `payload` is what the button carried.
    QuickReply { payload: String },
    /// The prospect shared a contact card (Telegram's "share my phone").
    SharedContact { phone: Phone, name: Option<String> },
    /// Something the assistant cannot read (a photo, a sticker, a voice message); `what` names it.
    Unsupported { what: String },
}

impl InboundContent {
    /// The text the prospect typed, if any.
    pub fn text(&self) -> Option<&str> {
        match self {
            InboundContent::Text { text } => Some(text),
            _ => None,
        }
    }
}

/// What a reply is, so that channels, analytics and `closer eval` can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// An answer composed from the knowledge base; it carries citations.
    Answer,
    /// The knowledge base has no answer: the assistant says so and offers a person.
    Declined,
    /// Greeting, thanks, small talk.
    Smalltalk,
    /// An answer to an objection from the playbook.
    Objection,
    /// A question the assistant asks: a qualification question, a request for contact details.
    #[default]
    Prompt,
    /// The conversation is handed to a person.
    Handoff,
    /// A confirmation (the lead was recorded, the rating was stored).
    Confirmation,
    /// A person of the sales team writing during a takeover, in their own words.
    Person,
}

/// One reply of the assistant, rendered by each adapter in its platform's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Reply {
    pub kind: ReplyKind,
    /// Plain text; adapters escape it for their markup.
    pub text: String,
    /// Buttons under the message; empty for none.
    pub quick_replies: Vec<QuickReply>,
    /// The documents the text was taken from.
    pub citations: Vec<Citation>,
    /// Whether the channel should offer its own "share my contact" control.
    pub request_contact: bool,
}

impl Reply {
    pub fn new(kind: ReplyKind, text: impl Into<String>) -> Reply {
        Reply {
            kind,
            text: text.into(),
            ..Reply::default()
        }
    }

    /// The titles of the documents the reply cites, each once, in order.
    pub fn cited_titles(&self) -> Vec<&str> {
        let mut titles: Vec<&str> = Vec::new();
        for citation in &self.citations {
            if !titles.contains(&citation.title.as_str()) {
                titles.push(&citation.title);
            }
        }
        titles
    }

    /// The word a channel shows before the cited titles: "Sources", "Источник".
    pub fn sources_label(lang: crate::Lang, count: usize) -> &'static str {
        match (lang, count) {
            (crate::Lang::Ru, 1) => "Источник",
            (crate::Lang::Ru, _) => "Источники",
            (_, 1) => "Source",
            (_, _) => "Sources",
        }
    }
}

/// A button with the text it shows and the payload it sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReply {
    pub label: String,
    /// At most 64 bytes, so that every platform can carry it.
    pub payload: String,
}

/// A knowledge-base document an answer is taken from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Citation {
    /// The document's title as a prospect can read it.
    pub title: String,
    /// The document's file name in the knowledge base (`tarify.md`).
    pub source: String,
}
