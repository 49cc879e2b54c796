//! Streamed answers shown as they are written: one message (the draft) that the channel sends
//! when the first words arrive and edits as more do, at most once per
//! [`Drafts::edit_interval`]. The reply committed at the end of the turn replaces the draft by
//! one last edit (see `closer_store::Turn::replace_draft`), so the prospect ends up with the
//! same messages as without streaming, only sooner.
//!
//! The loop here is the same for every channel; a channel only says how to send and edit a
//! message ([`Drafts`]) and paces those calls within its platform's limits. The draft is
//! recorded by the inbound message it answers as soon as the platform gives it an id, so a
//! redelivery of that message edits the draft already on screen instead of adding another.

use std::time::Duration;

use async_trait::async_trait;
use closer_model::Channel;
use closer_store::Store;
use tokio::sync::watch;
use tokio::time::Instant;

/// Why a draft could not be shown; the answer is still delivered as a normal reply.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DraftError(pub String);

/// A channel that can show an answer while it is written, by editing a message.
#[async_trait]
pub trait Drafts: Send + Sync {
    /// The shortest time between two edits of a draft.
    fn edit_interval(&self) -> Duration {
        Duration::from_millis(1200)
    }

    /// Sends a new message showing `text`; returns the platform's id of it.
    ///
    /// # Errors
    /// [`DraftError`] when the platform refused or could not be reached.
    async fn send_draft(&self, chat_id: &str, text: &str) -> Result<String, DraftError>;

    /// Replaces the text of the draft `message_id`.
    ///
    /// # Errors
    /// [`DraftError`] when the platform refused or could not be reached.
    async fn edit_draft(
        &self,
        chat_id: &str,
        message_id: &str,
        text: &str,
    ) -> Result<(), DraftError>;
}

/// The most a draft shows; the committed reply, split as the channel needs, shows the rest.
const MAX_DRAFT_CHARS: usize = 1800;
/// Marks a draft as still being written.
const WRITING: &str = " …";

/// Which inbound message a draft answers.
pub(crate) struct DraftFor<'a> {
    pub channel: Channel,
    pub chat_id: &'a str,
    pub inbound_platform_id: &'a str,
}

/// Shows the text arriving on `text` as a draft until its sender is dropped; returns the
/// draft's platform id when one was shown. A failure only stops the showing: the answer is
/// delivered as a normal reply all the same.
pub(crate) async fn show(
    store: &Store,
    drafts: &dyn Drafts,
    target: DraftFor<'_>,
    mut text: watch::Receiver<String>,
) -> Option<String> {
    let DraftFor {
        channel,
        chat_id,
        inbound_platform_id,
    } = target;
    let interval = drafts.edit_interval();
    // A redelivered message: the draft shown the first time is edited, never duplicated.
    let mut draft = store
        .draft_for(channel, chat_id, inbound_platform_id)
        .await
        .unwrap_or_else(|error| {
            tracing::debug!(%error, "cannot read an earlier draft");
            None
        });
    let mut shown = String::new();
    // Nothing shown yet: the first words go out at once.
    let mut last_shown: Option<Instant> = None;
    loop {
        if text.changed().await.is_err() {
            break;
        }
        // Wait for the next slot; text arriving meanwhile is shown together. When the answer
        // ends meanwhile, the committed reply replaces the draft: nothing more to show.
        if let Some(last) = last_shown {
            let slot = last + interval;
            let mut ended = false;
            while Instant::now() < slot {
                match tokio::time::timeout_at(slot, text.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => {
                        ended = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if ended {
                break;
            }
        }
        let current = text.borrow_and_update().trim().to_owned();
        if current.is_empty() || current == shown {
            continue;
        }
        let display = draft_text(&current);
        let result = match &draft {
            Some(id) => drafts.edit_draft(chat_id, id, &display).await,
            None => match drafts.send_draft(chat_id, &display).await {
                Ok(id) => {
                    metrics::counter!("closer_drafts_total", "channel" => channel.as_str())
                        .increment(1);
                    draft = Some(
                        store
                            .record_draft(channel, chat_id, inbound_platform_id, &id)
                            .await
                            .unwrap_or_else(|error| {
                                tracing::warn!(%error, "cannot record a draft; a redelivery may show another");
                                id
                            }),
                    );
                    Ok(())
                }
                Err(error) => Err(error),
            },
        };
        if let Err(error) = result {
            // The reply is delivered as usual (replacing the draft when there is one).
            tracing::warn!(%error, "cannot show the answer as it is written");
            break;
        }
        shown = current;
        last_shown = Some(Instant::now());
    }
    draft
}

/// What a draft shows: the text so far, cut at a word within [`MAX_DRAFT_CHARS`], marked as
/// still being written.
fn draft_text(text: &str) -> String {
    let mut cut = text;
    if let Some((end, _)) = text.char_indices().nth(MAX_DRAFT_CHARS) {
        cut = &text[..end];
        if let Some(space) = cut.rfind(char::is_whitespace) {
            cut = &cut[..space];
        }
    }
    format!("{}{WRITING}", cut.trim_end())
}

/// Which of a turn's replies replaces the draft: the answer (it carries the citations), else the
/// assistant's refusal, else the first.
pub(crate) fn replacing_reply(replies: &[closer_model::Reply]) -> Option<usize> {
    use closer_model::ReplyKind;
    replies
        .iter()
        .position(|reply| !reply.citations.is_empty())
        .or_else(|| {
            replies
                .iter()
                .position(|reply| reply.kind == ReplyKind::Declined)
        })
        .or(if replies.is_empty() { None } else { Some(0) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use closer_model::{Citation, Reply, ReplyKind};

    #[test]
    fn a_draft_is_cut_at_a_word_and_marked_as_being_written() {
        assert_eq!(draft_text("Prices start "), "Prices start …");
        let long = "word ".repeat(1000);
        let shown = draft_text(&long);
        assert!(shown.chars().count() <= MAX_DRAFT_CHARS + WRITING.chars().count());
        assert!(shown.ends_with("word …"), "{shown}");
    }

    #[test]
    fn the_answer_replaces_the_draft_else_the_refusal_else_the_first_reply() {
        let greeting = Reply::new(ReplyKind::Smalltalk, "Hi!");
        let mut answer = Reply::new(ReplyKind::Answer, "It costs 10.");
        answer.citations.push(Citation {
            title: "Prices".to_owned(),
            source: "prices.md".to_owned(),
        });
        let question = Reply::new(ReplyKind::Prompt, "When do you start?");
        let declined = Reply::new(ReplyKind::Declined, "I don't know.");
        assert_eq!(
            replacing_reply(&[greeting.clone(), answer, question.clone()]),
            Some(1)
        );
        assert_eq!(
            replacing_reply(&[greeting.clone(), declined, question.clone()]),
            Some(1)
        );
        assert_eq!(replacing_reply(&[question]), Some(0));
        assert_eq!(replacing_reply(&[]), None);
    }
}
