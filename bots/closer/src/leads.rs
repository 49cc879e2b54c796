//! `closer leads`: the leads and the tasks asked for by hand, with where each hand-off stands,
//! and `closer leads retry ID` to queue a failed hand-off again.

use std::fmt::Write as _;

use anyhow::bail;
use closer_model::{Lead, Task};
use closer_store::{OutboxEntry, OutboxStatus, Store};

/// Prints the newest `limit` leads with their hand-offs.
///
/// # Errors
/// The store is unavailable.
pub async fn list(store: &Store, limit: i64) -> anyhow::Result<()> {
    let leads = store.leads(limit).await?;
    if leads.is_empty() {
        println!("No leads yet.");
    } else {
        print!("{}", render(&leads));
    }
    let tasks = store.tasks(limit).await?;
    if !tasks.is_empty() {
        println!("\nTasks");
        print!("{}", render_tasks(&tasks));
    }
    Ok(())
}

/// The tasks `closer leads` prints: one block per task, one line per hand-off.
pub fn render_tasks(tasks: &[(Task, Vec<OutboxEntry>)]) -> String {
    let mut out = String::new();
    for (task, outbox) in tasks {
        let id = short(&task.id);
        let _ = writeln!(
            out,
            "{id}  {}  {}  (asked for by {})",
            task.created_at.format("%Y-%m-%d %H:%M"),
            task.title,
            task.requested_by
        );
        render_handoffs(&mut out, outbox, &id);
    }
    out
}

/// The table `closer leads` prints: one block per lead, one line per hand-off.
pub fn render(leads: &[(Lead, Vec<OutboxEntry>)]) -> String {
    let mut out = String::new();
    for (lead, outbox) in leads {
        let contact = &lead.details.contact;
        let reach = [
            contact.name.clone(),
            contact.phone.as_ref().map(ToString::to_string),
            contact.email.as_ref().map(ToString::to_string),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let _ = writeln!(
            out,
            "{}  {}  {}  {}{}{}",
            short(&lead.id),
            lead.created_at.format("%Y-%m-%d %H:%M"),
            lead.channel.as_str(),
            if lead.details.qualified {
                "qualified  "
            } else {
                ""
            },
            reach,
            lead.source_campaign
                .as_ref()
                .map(|campaign| format!("  (campaign {campaign})"))
                .unwrap_or_default()
        );
        if !lead.details.summary.is_empty() {
            let _ = writeln!(out, "    need: {}", lead.details.summary);
        }
        render_handoffs(&mut out, outbox, &short(&lead.id));
    }
    out
}

/// One line per hand-off of a lead or a task (`id` as shown, for the retry hint).
fn render_handoffs(out: &mut String, outbox: &[OutboxEntry], id: &str) {
    if outbox.is_empty() {
        let _ = writeln!(out, "    no hand-off target");
    }
    for entry in outbox {
        let status = match entry.status {
            OutboxStatus::Delivered => format!(
                "delivered {}",
                entry
                    .external_url
                    .clone()
                    .or_else(|| entry.external_id.clone())
                    .unwrap_or_default()
            ),
            OutboxStatus::Failed => format!(
                "FAILED after {} attempts: {} (closer leads retry {id})",
                entry.attempts,
                entry.last_error.clone().unwrap_or_default(),
            ),
            OutboxStatus::Pending if entry.attempts > 0 => format!(
                "retrying at {} (attempt {} failed: {})",
                entry.next_attempt_at.format("%Y-%m-%d %H:%M:%S"),
                entry.attempts,
                entry.last_error.clone().unwrap_or_default()
            ),
            OutboxStatus::Pending => "queued".to_owned(),
            OutboxStatus::InFlight => "being delivered".to_owned(),
        };
        let _ = writeln!(out, "    → {}: {status}", entry.target);
    }
}

fn short(id: &uuid::Uuid) -> String {
    id.to_string()[..8].to_owned()
}

/// Queues the failed hand-offs of the lead or task `id` (its full id or the first characters
/// shown by `closer leads`) again.
///
/// # Errors
/// No lead or several leads match; the store is unavailable.
pub async fn retry(store: &Store, id: &str) -> anyhow::Result<()> {
    let id = id.trim();
    if id.len() < 4 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        bail!("{id:?} is not a lead or task id: give the id `closer leads` shows (8 characters or more)");
    }
    let matches = store.subject_ids_starting_with(id).await?;
    let lead_id = match matches.as_slice() {
        [one] => *one,
        [] => bail!("no lead or task has an id starting with {id}"),
        _ => bail!("several leads or tasks have an id starting with {id}; give more characters"),
    };
    let queued = store.retry_failed_handoffs(lead_id).await?;
    if queued == 0 {
        println!("{lead_id} has no failed hand-off to retry.");
    } else {
        println!(
            "Queued {queued} hand-off{} of {lead_id} again; `closer serve` delivers {}.",
            if queued == 1 { "" } else { "s" },
            if queued == 1 { "it" } else { "them" }
        );
    }
    Ok(())
}
