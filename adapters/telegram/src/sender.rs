//! Telegram's side of delivering pending replies ([`closer_engine::delivery`] runs the loop:
//! order per chat, retries, outcomes in the store): rendering a reply into HTML messages and
//! sending each within Telegram's limits.
//!
//! - **Pacing** ([`crate::pace`]): a gap per chat counted from the previous message's answer,
//!   and governor's GCRA for the bot overall, where a turn's first message goes ahead of
//!   follow-ups. Idle chats are swept periodically, so memory does not grow with every chat
//!   ever seen.
//! - **Failures**: a 429 is waited out and the same message sent again; a network error or
//!   Telegram's 5xx is transient; Telegram refusing the message (the bot was blocked, the chat
//!   is gone, the group moved) fails the reply for good; HTML Telegram cannot parse is sent
//!   again as plain text.
//! - **Drafts**: the reply replacing a streamed answer's draft edits it ("message is not
//!   modified" counts as delivered; a draft that is gone or cannot be edited gives way to a
//!   new message); a reply keyboard, which an edit cannot carry, deletes the draft instead.

use std::ops::Deref;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use closer_engine::{Delivery, DeliveryStats, DraftError, Drafts, SendError, Transport};
use closer_model::Channel;
use closer_store::{PendingReply, Store};
use teloxide::payloads::{EditMessageTextSetters, SendMessageSetters};
use teloxide::requests::Requester;
use teloxide::types::{ChatId, MessageId, ParseMode, ReplyMarkup};
use teloxide::{ApiError, Bot, RequestError};

use crate::pace::Pacer;
use crate::render::{render, Outgoing};

pub use closer_engine::delivery::MAX_ATTEMPTS;

/// Counters for logs, benchmarks and tests.
pub type SenderStats = DeliveryStats;

/// Telegram's limits on sending, configurable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub per_chat_per_second: u32,
    pub per_group_per_minute: u32,
    pub overall_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_chat_per_second: 1,
            per_group_per_minute: 20,
            overall_per_second: 30,
        }
    }
}

/// The sender shared by the polling loop and the webhook: the delivery loop through
/// Telegram (`kick`, `resume`, `stats`, `sweep`, `sweep_every` are the loop's, by `Deref`).
/// Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    delivery: Delivery<TelegramTransport>,
}

/// The Bot API behind the pacer: what the delivery loop sends through.
pub struct TelegramTransport {
    bot: Bot,
    pacer: Pacer,
}

/// One message of a reply, to its chat.
pub struct Part {
    chat: i64,
    outgoing: Outgoing,
    /// Telegram could not parse the HTML: the message goes as plain text from now on.
    plain: bool,
}

impl Sender {
    pub fn new(bot: Bot, store: Store, limits: Limits) -> Sender {
        Sender {
            delivery: Delivery::new(
                store,
                TelegramTransport {
                    bot,
                    pacer: Pacer::new(limits),
                },
            ),
        }
    }

    /// How many chats the pacer remembers; [`Delivery::sweep`] forgets idle ones.
    pub fn tracked_chats(&self) -> usize {
        self.delivery.transport().pacer.tracked_chats()
    }
}

impl Deref for Sender {
    type Target = Delivery<TelegramTransport>;

    fn deref(&self) -> &Self::Target {
        &self.delivery
    }
}

#[async_trait]
impl Transport for TelegramTransport {
    type Part = Part;
    const CHANNEL: Channel = Channel::Telegram;

    /// Forgets chats whose pacing state has expired.
    fn sweep(&self) {
        self.pacer.sweep();
    }

    fn render(&self, pending: &PendingReply, _first: bool) -> Result<Vec<Part>, String> {
        let chat = pending
            .chat_id
            .parse::<i64>()
            .map_err(|_| "not a Telegram chat id".to_owned())?;
        Ok(render(&pending.reply)
            .into_iter()
            .map(|outgoing| Part {
                chat,
                outgoing,
                plain: false,
            })
            .collect())
    }

    async fn send(
        &self,
        part: &mut Part,
        first: bool,
        edit: Option<&str>,
    ) -> Result<String, SendError> {
        let chat = part.chat;
        let draft = edit.and_then(|id| id.parse::<i32>().ok());
        let inline = matches!(
            part.outgoing.markup,
            None | Some(ReplyMarkup::InlineKeyboard(_))
        );
        if let (Some(id), false) = (draft, inline) {
            // An edit carries inline buttons only, not a keyboard or its removal: the draft
            // goes, a new message comes.
            let _ = self.bot.delete_message(ChatId(chat), MessageId(id)).await;
            return Err(SendError::EditTargetGone);
        }
        loop {
            self.pacer.wait_turn(chat, first).await;
            let result = match draft {
                Some(id) => self.edit(chat, id, part).await,
                None => self.send_new(chat, part).await,
            };
            self.pacer.sent(chat);
            return match (result, draft) {
                (Ok(message_id), _) => Ok(message_id.to_string()),
                // Edited before (the outcome was lost to a crash): it is delivered.
                (Err(RequestError::Api(ApiError::MessageNotModified)), Some(id)) => {
                    Ok(id.to_string())
                }
                (
                    Err(RequestError::Api(
                        ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited,
                    )),
                    Some(_),
                ) => Err(SendError::EditTargetGone),
                (Err(RequestError::RetryAfter(seconds)), _) => {
                    Err(SendError::RetryAfter(seconds.duration()))
                }
                (Err(RequestError::Api(ApiError::CantParseEntities(reason))), _) if !part.plain => {
                    tracing::warn!(chat, %reason, "Telegram cannot parse the HTML; sending plain text");
                    part.plain = true;
                    continue;
                }
                // Telegram refuses this message for good: the bot was blocked, the chat is
                // gone, the group moved.
                (Err(error @ (RequestError::Api(_) | RequestError::MigrateToChatId(_))), _) => {
                    Err(SendError::Refused(error.to_string()))
                }
                (Err(error), _) => Err(SendError::Transient(error.to_string())),
            };
        }
    }
}

impl TelegramTransport {
    async fn send_new(&self, chat: i64, part: &Part) -> Result<i32, RequestError> {
        let outgoing = &part.outgoing;
        let text = if part.plain {
            &outgoing.plain
        } else {
            &outgoing.html
        };
        let mut request = self.bot.send_message(ChatId(chat), text.clone());
        if !part.plain {
            request = request.parse_mode(ParseMode::Html);
        }
        if let Some(markup) = &outgoing.markup {
            request = request.reply_markup(markup.clone());
        }
        request.await.map(|message| message.id.0)
    }

    /// Replaces the text (and inline buttons) of the message `message_id`.
    async fn edit(&self, chat: i64, message_id: i32, part: &Part) -> Result<i32, RequestError> {
        let outgoing = &part.outgoing;
        let text = if part.plain {
            &outgoing.plain
        } else {
            &outgoing.html
        };
        let mut request =
            self.bot
                .edit_message_text(ChatId(chat), MessageId(message_id), text.clone());
        if !part.plain {
            request = request.parse_mode(ParseMode::Html);
        }
        if let Some(ReplyMarkup::InlineKeyboard(keyboard)) = &outgoing.markup {
            request = request.reply_markup(keyboard.clone());
        }
        request.await.map(|_| message_id)
    }
}

/// Streamed answers: the draft is plain text, sent and edited within the chat's pacing.
#[async_trait]
impl Drafts for Sender {
    async fn send_draft(&self, chat_id: &str, text: &str) -> Result<String, DraftError> {
        let chat = telegram_chat(chat_id)?;
        let telegram = self.delivery.transport();
        telegram.pacer.wait_turn(chat, true).await;
        let result = telegram.bot.send_message(ChatId(chat), text).await;
        telegram.pacer.sent(chat);
        let message = result.map_err(|error| DraftError(error.to_string()))?;
        self.stats().messages_sent.fetch_add(1, Ordering::Relaxed);
        Ok(message.id.0.to_string())
    }

    async fn edit_draft(
        &self,
        chat_id: &str,
        message_id: &str,
        text: &str,
    ) -> Result<(), DraftError> {
        let chat = telegram_chat(chat_id)?;
        let id = message_id
            .parse::<i32>()
            .map_err(|_| DraftError(format!("not a Telegram message id: {message_id}")))?;
        let telegram = self.delivery.transport();
        telegram.pacer.wait_turn(chat, false).await;
        let result = telegram
            .bot
            .edit_message_text(ChatId(chat), MessageId(id), text)
            .await;
        telegram.pacer.sent(chat);
        match result {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            Err(error) => Err(DraftError(error.to_string())),
        }
    }
}

fn telegram_chat(chat_id: &str) -> Result<i64, DraftError> {
    chat_id
        .parse::<i64>()
        .map_err(|_| DraftError(format!("not a Telegram chat id: {chat_id}")))
}
