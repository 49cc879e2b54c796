//! The sales dialog: a pure function from (playbook, state, message) to (state, replies, effects).
//!
//! - [`config`]: the playbook (`config/playbook.toml`): persona, phrases, qualification
//!   questions, objection triggers and intent recognisers, validated on load.
//! - [`state`]: what the dialog remembers between turns (stored by the engine as JSON).
//! - [`step`](mod@step): one turn: understand, decide, reply, and the effects for the engine.
//! - [`contact`]: phone, e-mail, name and company found in free text.
//! - [`meaning`]: intents and objections recognised by meaning, against the playbook's examples.
//! - [`understand`]: small talk, questions, objections and ratings recognised in a message.
//! - [`summary`]: the lead's summary for the sales team.
//!
//! Invariant: no I/O of any kind (files, network, clock, randomness): data in, data out.

pub mod config;
pub mod contact;
pub mod meaning;
pub mod state;
pub mod step;
pub mod summary;
pub mod understand;

pub use config::{ConfigError, DialogConfig, Phrase};
pub use contact::{extract_contact, ContactUpdate};
pub use meaning::{Example, ExampleIndex, Intent, Nearest, Thresholds};
pub use state::{DialogState, Stage};
pub use step::{
    step, Effect, Input, Step, HANDOFF_PAYLOAD, MAX_REPLY_CHARS, RATING_PAYLOAD_PREFIX,
};
pub use summary::{lead_from_note, ManualLeadError};
pub use understand::{detect_objections, knowledge_queries, knowledge_query, objections};
