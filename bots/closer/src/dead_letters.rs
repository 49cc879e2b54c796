//! `closer dead-letters`: the updates and events a channel could not process, and
//! `closer dead-letters retry ID` to have the running channel try one again.

use std::fmt::Write as _;

use anyhow::{bail, Context};
use closer_store::{DeadLetter, Store};

/// Prints the open dead letters, newest first.
///
/// # Errors
/// The store is unavailable.
pub async fn list(store: &Store, limit: i64) -> anyhow::Result<()> {
    let letters = store.dead_letters(limit).await?;
    if letters.is_empty() {
        println!("No dead letters: every update was processed.");
    } else {
        print!("{}", render(&letters));
    }
    Ok(())
}

/// One block per dead letter: its id, channel, the platform's id, attempts and the reason.
pub fn render(letters: &[DeadLetter]) -> String {
    let mut out = String::new();
    for letter in letters {
        let _ = writeln!(
            out,
            "{}  {}  {} {}  {} attempt(s){}",
            letter.id,
            letter.last_failed_at.format("%Y-%m-%d %H:%M"),
            letter.channel,
            letter.external_id,
            letter.attempts,
            if letter.retry_requested_at.is_some() {
                "  (retry requested)"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "    {}", letter.reason);
    }
    out
}

/// Asks the running channel to try the dead letter `id` again.
///
/// # Errors
/// `id` is not a dead letter's id, or the store is unavailable.
pub async fn retry(store: &Store, id: &str) -> anyhow::Result<()> {
    let id = uuid::Uuid::parse_str(id.trim()).with_context(|| {
        format!("{id:?} is not a dead letter's id (`closer dead-letters` lists them)")
    })?;
    if !store.request_dead_letter_retry(id).await? {
        bail!("no open dead letter has the id {id}");
    }
    println!("Dead letter {id} will be tried again by the running `closer serve` within seconds.");
    Ok(())
}
