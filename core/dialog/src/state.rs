//! The dialog's memory between turns, stored by the engine as opaque JSON.

use std::collections::BTreeMap;

use closer_model::{Contact, Lang, NewLead, ObjectionKind};
use serde::{Deserialize, Serialize};

/// Where the conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Nothing said yet.
    #[default]
    New,
    /// Questions and answers; no way to reach the prospect yet.
    Talking,
    /// A lead exists.
    LeadCaptured,
    /// A person takes over (a lead may exist or not).
    HandedOff,
}

impl Stage {
    /// The stage's name as stored next to the conversation (for queries and dashboards).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Talking => "talking",
            Stage::LeadCaptured => "lead_captured",
            Stage::HandedOff => "handed_off",
        }
    }
}

/// Everything the dialog remembers. Every field has a default, so a state saved by an
/// older version still loads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DialogState {
    pub stage: Stage,
    /// The language of the last message with letters.
    pub lang: Lang,
    pub contact: Contact,
    /// Qualification answers by key (`need`, `volume`, `timeline`, `budget`).
    pub qualification: BTreeMap<String, String>,
    /// Qualification questions already asked: each is asked at most once.
    pub asked_qualification: Vec<String>,
    /// The question asked in the previous reply, whose answer the next message may be.
    pub pending_qualification: Option<String>,
    pub objections: Vec<ObjectionKind>,
    /// The prospect's own words about what they want, condensed, oldest first.
    pub need_notes: Vec<String>,
    pub lead_created: bool,
    /// The lead as last emitted, to emit an update only when it changes.
    pub last_lead: Option<NewLead>,
    pub handed_off: bool,
    pub rating_requested: bool,
    pub awaiting_rating: bool,
    pub rating: Option<u8>,
    pub greeted: bool,
    /// How many times the assistant asked for contact details.
    pub contact_requests: u32,
    /// The previous reply asked for contact details: a bare name now is the answer.
    pub contact_requested_last_turn: bool,
    /// The prospect said they will not leave contact details: do not ask again.
    pub contact_refused: bool,
    /// The prospect's messages so far.
    pub turns: u32,
    /// Questions answered from the knowledge base.
    pub questions_answered: u32,
    /// The turn in which the assistant last asked something (a qualification question or
    /// for contacts), so it does not ask on every turn.
    pub last_prompt_turn: Option<u32>,
}

impl DialogState {
    /// The conversation's language: that of the last message with letters.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The objection kinds recognised so far, first seen first.
    pub fn objections(&self) -> &[ObjectionKind] {
        &self.objections
    }

    /// Whether the prospect was handed to a person.
    pub fn handed_off(&self) -> bool {
        self.handed_off
    }

    /// The stage's name, as stored next to the conversation.
    pub fn stage_name(&self) -> &'static str {
        self.stage.as_str()
    }
}
