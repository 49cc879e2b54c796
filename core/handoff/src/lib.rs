//! Lead hand-off: the outbox [`worker`] that delivers every lead (and every task asked for by
//! hand) to its targets exactly once,
//! and the targets, each a module behind the one [`Target`] trait.
//!
//! - [`item`]: what every target creates, composed once: a title, the contact, the need, the
//!   qualification, the objections, the source and a link back to the conversation.
//! - [`http`]: how an HTTP answer is classified: transient (timeouts, 408, 429 with its
//!   `Retry-After`, 5xx) or permanent (other 4xx), the same for every target.
//! - [`webhook`]: a signed webhook (Standard Webhooks), for 1C, RetailCRM, Zapier, Make, n8n.
//! - [`yandex_tracker`]: Yandex Tracker, idempotent by its `unique` field.
//! - [`bitrix24`]: Bitrix24 CRM leads (found by `ORIGIN_ID`) and tasks (found by `XML_ID`)
//!   through an incoming webhook.
//! - [`amocrm`]: amoCRM / Kommo leads with their contact, found by a tag.
//! - [`hubspot`]: HubSpot contact + deal + note, found by a unique deal property.
//! - [`jira`]: Jira Cloud (REST v3, Atlassian Document Format) and Data Center (REST v2),
//!   found by a label.
//! - [`linear`]: Linear issues with an id derived from the hand-off key.
//! - [`trello`]: Trello cards, found by a marker in the description.
//! - [`asana`]: Asana tasks, found by `external.gid` (OAuth apps) or a marker in the notes.
//!
//! **Exactly once.** The outbox row is written with the lead, in one transaction. A delivery
//! whose outcome is unknown (a timeout after the target created the item) is retried by
//! looking the item up first, by the target's own idempotency mechanism or a marker tag, and
//! creating it only when it is not there.

pub mod amocrm;
pub mod asana;
pub mod bitrix24;
pub mod http;
pub mod hubspot;
pub mod item;
pub mod jira;
pub mod linear;
pub mod trello;
pub mod webhook;
pub mod worker;
pub mod yandex_tracker;

use std::time::Duration;

use async_trait::async_trait;
use closer_model::{Contact, Task, WebLink};
pub use closer_store::Subject;
use closer_store::TranscriptLine;
use sha2::{Digest, Sha256};

pub use amocrm::{AmoCrm, AmoCrmConfig};
pub use asana::{Asana, AsanaConfig};
pub use bitrix24::{Bitrix24, Bitrix24Config};
pub use hubspot::{HubSpot, HubSpotConfig};
pub use jira::{Jira, JiraConfig, JiraFlavor};
pub use linear::{Linear, LinearConfig};
pub use trello::{Trello, TrelloConfig};
pub use webhook::{Webhook, WebhookConfig};
pub use worker::{Clock, Worker};
pub use yandex_tracker::{YandexTracker, YandexTrackerConfig};

/// One lead (or task) to hand to one target.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// Stable for this lead and target, whatever the attempt: the target's idempotency key.
    pub key: String,
    /// What is handed off: a lead, or a task a person asked for.
    pub subject: Subject,
    pub transcript: Vec<TranscriptLine>,
    /// A link back to the conversation, when Closer is configured with its public URL.
    pub conversation_url: Option<String>,
    /// This delivery's attempt, from 1.
    pub attempt: i32,
}

impl Handoff {
    /// The prospect's contact details, when the hand-off concerns a prospect.
    pub fn contact(&self) -> Option<&Contact> {
        self.subject.lead().map(|lead| &lead.details.contact)
    }

    /// A task asked for by hand rather than a lead.
    pub fn task(&self) -> Option<&Task> {
        match &self.subject {
            Subject::Task { task, .. } => Some(task),
            Subject::Lead(_) => None,
        }
    }

    /// A short key derived from the outbox row's idempotency key: 24 hex digits of its SHA-256,
    /// fit for fields with length or character limits.
    pub fn short_key(idempotency_key: &str) -> String {
        let digest = Sha256::digest(idempotency_key.as_bytes());
        hex::encode(digest)[..24].to_owned()
    }
}

/// What a target created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    /// Where the sales team opens it: only ever an http(s) link ([`web_link`]).
    pub url: Option<WebLink>,
}

/// The link a target gave (or Closer made from its configured web address) for what it
/// created, kept only when it is an http(s) URL: the console and Slack show it as a link, so a
/// `javascript:` URL in a receiver's answer must never reach them. Anything else is logged
/// and left out; the hand-off still counts as delivered.
pub fn web_link(target: &str, text: &str) -> Option<WebLink> {
    match WebLink::parse(text) {
        Ok(link) => Some(link),
        Err(error) => {
            tracing::warn!(target_name = %target, %error, "the link to the created item is not shown");
            None
        }
    }
}

/// Why a delivery did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Worth trying again: a timeout, a rate limit, the target being down.
    #[error("{reason}")]
    Transient {
        reason: String,
        /// How long the target asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Trying again will not help until someone changes something: bad credentials, a
    /// missing project, a rejected field.
    #[error("{reason}")]
    Permanent { reason: String },
}

impl Failure {
    pub fn transient(reason: impl Into<String>) -> Failure {
        Failure::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Failure {
        Failure::Permanent {
            reason: reason.into(),
        }
    }
}

/// A tracker or CRM a lead or a task can be handed to.
#[async_trait]
pub trait Target: Send + Sync {
    /// Creates the item for the lead or task (and adds the transcript where the target can).
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure>;

    /// Finds the item an earlier attempt may have created; `None` when there is none, or the
    /// target dedupes repeated creates itself.
    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure>;
}
