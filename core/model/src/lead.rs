//! Leads: what the sales team receives when a prospect is ready to talk to them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::contact::Contact;
use crate::message::Channel;

/// The kinds of objection the playbook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectionKind {
    Price,
    Timing,
    Competitor,
    Trust,
    NeedToThink,
    NoBudget,
    Authority,
}

impl ObjectionKind {
    pub const ALL: [ObjectionKind; 7] = [
        ObjectionKind::Price,
        ObjectionKind::Timing,
        ObjectionKind::Competitor,
        ObjectionKind::Trust,
        ObjectionKind::NeedToThink,
        ObjectionKind::NoBudget,
        ObjectionKind::Authority,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectionKind::Price => "price",
            ObjectionKind::Timing => "timing",
            ObjectionKind::Competitor => "competitor",
            ObjectionKind::Trust => "trust",
            ObjectionKind::NeedToThink => "need_to_think",
            ObjectionKind::NoBudget => "no_budget",
            ObjectionKind::Authority => "authority",
        }
    }

    pub fn parse(name: &str) -> Option<ObjectionKind> {
        ObjectionKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl std::fmt::Display for ObjectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lead as the dialog produces it, before the store gives it an id.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewLead {
    pub contact: Contact,
    /// One or two sentences on what the prospect wants, in their words.
    pub summary: String,
    /// Qualification answers by question key (`need`, `volume`, `timeline`, `budget`).
    pub qualification: BTreeMap<String, String>,
    pub objections: Vec<ObjectionKind>,
    /// Whether every configured qualification question has an answer.
    pub qualified: bool,
}

/// A lead as stored, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub channel: Channel,
    /// The campaign of the link the prospect came from, when known.
    pub source_campaign: Option<String>,
    #[serde(flatten)]
    pub details: NewLead,
    pub created_at: DateTime<Utc>,
}

/// A tracker task a person asked for by hand (Slack's `/closer task`), handed to the trackers
/// through the same outbox as leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    /// The request's own idempotency key (a platform's command id): asking again with the same
    /// key finds the task created the first time.
    pub key: String,
    pub title: String,
    /// Who asked, as the platform names them.
    pub requested_by: String,
    /// The conversation the task is about, when it was asked for from one.
    pub conversation_id: Option<Uuid>,
    /// One configured target to create it in; `None` for every target that takes tasks.
    pub target: Option<String>,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: Uuid,
    pub title: String,
    pub requested_by: String,
    pub conversation_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}
