//! The paced sender: reads a chat's pending replies from the store in order, sends them
//! within Telegram's limits, and marks each sent or failed.
//!
//! - **Pacing** ([`crate::pace`]): a gap per chat counted from the previous message's answer,
//!   and governor's GCRA for the bot overall, where a turn's first message goes ahead of
//!   follow-ups. Idle chats are swept periodically, so memory does not grow with every chat
//!   ever seen.
//! - **Order**: one worker per chat with pending replies; it drains the chat's queue oldest
//!   first and exits, and a chat kicked while its worker runs is drained again before it
//!   exits.
//! - **Failures**: a 429 waits its `retry_after` and sends the same message again (never
//!   dropped); a network error or Telegram's 5xx backs off exponentially and retries, up to
//!   [`MAX_ATTEMPTS`]; Telegram refusing the message (the bot was blocked, the chat is gone)
//!   marks the reply failed with the reason and moves on, never retried; HTML Telegram cannot
//!   parse is sent again as plain text. The database being away delays the queue, and
//!   nothing is lost: pending replies are read from the store again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use closer_engine::{DraftError, Drafts};
use closer_model::Channel;
use closer_store::{PendingReply, Store};
use teloxide::payloads::{EditMessageTextSetters, SendMessageSetters};
use teloxide::requests::Requester;
use teloxide::types::{ChatId, MessageId, ParseMode, ReplyMarkup};
use teloxide::{ApiError, Bot, RequestError};

use crate::pace::{lock, Pacer};
use crate::render::{render, Outgoing};

/// Transient failures of one reply before it is given up as failed.
pub const MAX_ATTEMPTS: i32 = 10;
/// How many pending replies a worker reads at a time.
const BATCH: i64 = 20;

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

/// Counters for logs, benchmarks and tests.
#[derive(Debug, Default)]
pub struct SenderStats {
    pub messages_sent: AtomicU64,
    pub retry_after: AtomicU64,
    pub transient_errors: AtomicU64,
    pub replies_failed: AtomicU64,
}

/// The sender shared by the polling loop and the webhook. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

struct Inner {
    bot: Bot,
    store: Store,
    pacer: Pacer,
    /// Chats with a running worker; `true` when kicked again while it runs.
    active: Mutex<HashMap<String, bool>>,
    stats: SenderStats,
}

impl Sender {
    pub fn new(bot: Bot, store: Store, limits: Limits) -> Sender {
        Sender {
            inner: Arc::new(Inner {
                bot,
                store,
                pacer: Pacer::new(limits),
                active: Mutex::new(HashMap::new()),
                stats: SenderStats::default(),
            }),
        }
    }

    pub fn stats(&self) -> &SenderStats {
        &self.inner.stats
    }

    /// How many chats the pacer remembers; [`Sender::sweep`] forgets idle ones.
    pub fn tracked_chats(&self) -> usize {
        self.inner.pacer.tracked_chats()
    }

    /// Forgets chats whose pacing state has expired.
    pub fn sweep(&self) {
        self.inner.pacer.sweep();
    }

    /// Starts sending a chat's pending replies, unless a worker is on it already.
    pub fn kick(&self, chat_id: &str) {
        {
            let mut active = lock(&self.inner.active);
            if let Some(again) = active.get_mut(chat_id) {
                *again = true;
                return;
            }
            active.insert(chat_id.to_owned(), false);
        }
        let sender = self.clone();
        let chat_id = chat_id.to_owned();
        tokio::spawn(async move { sender.drain(chat_id).await });
    }

    /// Kicks every chat with replies left pending, e.g. by a crash; retries until the store
    /// answers.
    pub async fn resume(&self) {
        let mut delay = Duration::from_millis(500);
        loop {
            match self
                .inner
                .store
                .chats_with_pending_replies(Channel::Telegram)
                .await
            {
                Ok(chats) => {
                    if !chats.is_empty() {
                        tracing::info!(chats = chats.len(), "resuming replies left pending");
                    }
                    for chat in chats {
                        self.kick(&chat);
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read pending replies; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Sweeps the pacer's idle chats every `period`, forever.
    pub async fn sweep_every(&self, period: Duration) {
        let mut interval = tokio::time::interval(period);
        interval.tick().await;
        loop {
            interval.tick().await;
            self.sweep();
        }
    }

    async fn drain(&self, chat_id: String) {
        let mut store_delay = Duration::from_millis(200);
        // The first message a worker sends is the first reply the prospect sees of a turn.
        let mut first = true;
        loop {
            let pending = match self
                .inner
                .store
                .pending_replies(Channel::Telegram, &chat_id, BATCH)
                .await
            {
                Ok(pending) => pending,
                Err(error) => {
                    tracing::warn!(%error, chat_id, "cannot read pending replies; retrying");
                    tokio::time::sleep(store_delay).await;
                    store_delay = (store_delay * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            store_delay = Duration::from_millis(200);
            if pending.is_empty() {
                let mut active = lock(&self.inner.active);
                if active.get(&chat_id).copied().unwrap_or(false) {
                    active.insert(chat_id.clone(), false);
                    first = true;
                    continue;
                }
                active.remove(&chat_id);
                return;
            }
            for reply in pending {
                self.deliver(reply, &mut first).await;
            }
        }
    }

    /// Sends one reply (one or more messages) and records the outcome.
    async fn deliver(&self, pending: PendingReply, first: &mut bool) {
        let Ok(chat) = pending.chat_id.parse::<i64>() else {
            self.give_up(&pending, "not a Telegram chat id").await;
            return;
        };
        let mut sent_ids = Vec::new();
        let mut attempts = pending.attempts;
        for (index, part) in render(&pending.reply).into_iter().enumerate() {
            let mut plain = false;
            // The reply's first message replaces the draft of a streamed answer, by an edit.
            let mut draft = if index == 0 {
                pending
                    .replaces
                    .as_deref()
                    .and_then(|id| id.parse::<i32>().ok())
            } else {
                None
            };
            let inline = matches!(part.markup, None | Some(ReplyMarkup::InlineKeyboard(_)));
            if let (Some(id), false) = (draft, inline) {
                // An edit carries inline buttons only, not a keyboard or its removal: the
                // draft goes, a new message comes.
                let _ = self
                    .inner
                    .bot
                    .delete_message(ChatId(chat), MessageId(id))
                    .await;
                draft = None;
            }
            loop {
                self.inner.pacer.wait_turn(chat, *first).await;
                let result = match draft {
                    Some(id) => self.edit(chat, id, &part, plain).await,
                    None => self.send(chat, &part, plain).await,
                };
                self.inner.pacer.sent(chat);
                match result {
                    Err(RequestError::Api(ApiError::MessageNotModified)) if draft.is_some() => {
                        // Edited before (the outcome was lost to a crash): it is delivered.
                        *first = false;
                        sent_ids.extend(draft.map(|id| id.to_string()));
                        break;
                    }
                    Err(RequestError::Api(
                        ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited,
                    )) if draft.is_some() => {
                        tracing::info!(
                            chat,
                            "the draft is gone; sending the reply as a new message"
                        );
                        draft = None;
                    }
                    Ok(message_id) => {
                        *first = false;
                        self.inner
                            .stats
                            .messages_sent
                            .fetch_add(1, Ordering::Relaxed);
                        sent_ids.push(message_id.to_string());
                        break;
                    }
                    Err(RequestError::RetryAfter(seconds)) => {
                        self.inner.stats.retry_after.fetch_add(1, Ordering::Relaxed);
                        let wait = seconds.duration();
                        tracing::warn!(chat, wait_s = wait.as_secs(), "Telegram asks to slow down");
                        tokio::time::sleep(wait).await;
                    }
                    Err(RequestError::Api(ApiError::CantParseEntities(reason))) if !plain => {
                        tracing::warn!(chat, %reason, "Telegram cannot parse the HTML; sending plain text");
                        plain = true;
                    }
                    Err(error @ (RequestError::Api(_) | RequestError::MigrateToChatId(_))) => {
                        // Telegram refuses this message for good: the bot was blocked, the
                        // chat is gone, the group moved. Retrying would only repeat it.
                        let reason = error.to_string();
                        tracing::warn!(chat, %reason, "Telegram refused the reply; not retrying");
                        self.give_up(&pending, &reason).await;
                        return;
                    }
                    Err(error) => {
                        self.inner
                            .stats
                            .transient_errors
                            .fetch_add(1, Ordering::Relaxed);
                        let reason = error.to_string();
                        attempts = match self
                            .inner
                            .store
                            .note_reply_attempt(pending.message_id, &reason)
                            .await
                        {
                            Ok(attempts) => attempts,
                            Err(_) => attempts.saturating_add(1),
                        };
                        if attempts >= MAX_ATTEMPTS {
                            tracing::error!(chat, %reason, attempts, "giving up on a reply");
                            self.give_up(&pending, &reason).await;
                            return;
                        }
                        let wait = backoff(attempts);
                        tracing::warn!(chat, %reason, attempts, wait_ms = wait.as_millis() as u64, "sending failed; retrying");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        self.record(|store| {
            let ids = sent_ids.clone();
            let id = pending.message_id;
            async move { store.mark_reply_sent(id, &ids).await }
        })
        .await;
    }

    async fn give_up(&self, pending: &PendingReply, reason: &str) {
        self.inner
            .stats
            .replies_failed
            .fetch_add(1, Ordering::Relaxed);
        let id = pending.message_id;
        self.record(|store| {
            let reason = reason.to_owned();
            async move { store.mark_reply_failed(id, &reason).await }
        })
        .await;
    }

    /// Writes an outcome, retrying while the database is away: an outcome lost here would
    /// send the reply again.
    async fn record<F, Fut>(&self, write: F)
    where
        F: Fn(Store) -> Fut,
        Fut: std::future::Future<Output = Result<(), closer_store::StoreError>>,
    {
        let mut delay = Duration::from_millis(200);
        for _ in 0..30 {
            match write(self.inner.store.clone()).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot record a reply's delivery; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        tracing::error!("could not record a reply's delivery; it may be sent again");
    }

    async fn send(&self, chat: i64, part: &Outgoing, plain: bool) -> Result<i32, RequestError> {
        let text = if plain { &part.plain } else { &part.html };
        let mut request = self.inner.bot.send_message(ChatId(chat), text.clone());
        if !plain {
            request = request.parse_mode(ParseMode::Html);
        }
        if let Some(markup) = &part.markup {
            request = request.reply_markup(markup.clone());
        }
        request.await.map(|message| message.id.0)
    }

    /// Replaces the text (and inline buttons) of the message `message_id`.
    async fn edit(
        &self,
        chat: i64,
        message_id: i32,
        part: &Outgoing,
        plain: bool,
    ) -> Result<i32, RequestError> {
        let text = if plain { &part.plain } else { &part.html };
        let mut request =
            self.inner
                .bot
                .edit_message_text(ChatId(chat), MessageId(message_id), text.clone());
        if !plain {
            request = request.parse_mode(ParseMode::Html);
        }
        if let Some(ReplyMarkup::InlineKeyboard(keyboard)) = &part.markup {
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
        self.inner.pacer.wait_turn(chat, true).await;
        let result = self.inner.bot.send_message(ChatId(chat), text).await;
        self.inner.pacer.sent(chat);
        let message = result.map_err(|error| DraftError(error.to_string()))?;
        self.inner
            .stats
            .messages_sent
            .fetch_add(1, Ordering::Relaxed);
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
        self.inner.pacer.wait_turn(chat, false).await;
        let result = self
            .inner
            .bot
            .edit_message_text(ChatId(chat), MessageId(id), text)
            .await;
        self.inner.pacer.sent(chat);
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

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to a minute.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    let base = Duration::from_millis(500) * 2u32.pow(exponent);
    let jitter = rand::random_range(0.8..1.2);
    base.mul_f64(jitter).min(Duration::from_secs(60))
}
