//! Platform-neutral types that every Closer crate speaks.
//!
//! - [`lang`]: the prospect's language and how it is detected from a message.
//! - [`message`]: what arrives from a channel ([`InboundMessage`]) and what the
//!   assistant answers ([`Reply`]), with quick replies and citations.
//! - [`contact`]: validated contact details ([`Phone`] in E.164, [`Email`]) and
//!   the [`Contact`] a prospect has given so far.
//! - [`knowledge`]: knowledge-base documents as stored, and the answer the
//!   knowledge base gives to a question.
//! - [`lead`]: objection kinds, the [`Lead`] handed to the sales team, and the [`Task`]s a
//!   person asks for by hand.
//! - [`handoff`]: the [`Route`]s that choose which targets a new lead goes to, and the
//!   [`WebLink`] a target gives back for what it created.
//! - [`health`]: the live state of each connection, reported by adapters ([`Health`]).
//!
//! Nothing here knows a platform's wire format, SQL or a tracker: adapters and
//! clients translate to and from these types at their boundary.

pub mod contact;
pub mod handoff;
pub mod health;
pub mod knowledge;
pub mod lang;
pub mod lead;
pub mod message;

pub use contact::{Contact, Email, ParseError, Phone};
pub use handoff::{route, LinkError, Route, RouteRule, WebLink};
pub use health::{ComponentState, ComponentStatus, Health};
pub use knowledge::{Audience, DocumentFormat, KnowledgeAnswer, KnowledgeDocument};
pub use lang::Lang;
pub use lead::{Lead, NewLead, NewTask, ObjectionKind, Task};
pub use message::{
    Channel, Citation, InboundContent, InboundMessage, QuickReply, Reply, ReplyKind,
};
