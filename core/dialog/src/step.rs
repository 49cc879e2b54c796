//! One turn of the dialog: (config, state, input) → (state, replies, effects).

use closer_model::{
    InboundContent, KnowledgeAnswer, Lang, NewLead, ObjectionKind, QuickReply, Reply, ReplyKind,
};
use serde::Serialize;
use serde_json::json;

use crate::config::{DialogConfig, Phrase};
use crate::contact::{extract_contact, name_alone, ContactUpdate};
use crate::meaning::Intent;
use crate::state::{DialogState, Stage};
use crate::summary::{build_lead, condense_need};
use crate::understand::{
    bare_rating, bounded, clause_around, detect_objections, detect_smalltalk, is_question,
    normalise, objections, truncate_sentences, truncate_words, Smalltalk,
};

/// The replies to one message together stay within this many characters: a prospect in a
/// messenger wants an answer, not a document (and the evaluation counts longer ones wrong).
pub const MAX_REPLY_CHARS: usize = 400;

/// A qualification question rides along with an answer only while the whole reply stays this
/// short: a prospect reads one to three sentences, and after a long answer the question waits
/// for a later turn (it is asked again then, as it was never put).
const QUALIFICATION_REPLY_CHARS: usize = 250;

/// The payload of the "talk to a person" button.
pub const HANDOFF_PAYLOAD: &str = "handoff";
/// The prefix of the rating buttons' payloads: `rate:1` … `rate:5`.
pub const RATING_PAYLOAD_PREFIX: &str = "rate:";

/// What the dialog is given for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub content: InboundContent,
    /// The platform's display name: a weak hint for the name when the prospect gives none.
    pub sender_name: Option<String>,
    /// What the knowledge base answered for this message's text, in the prospect's language;
    /// `None` when it has no good answer (or the message has no text). The engine asks for every
    /// text message; the dialog decides whether the message is a question needing it.
    pub knowledge: Option<KnowledgeAnswer>,
    /// The intents and objections the message expresses by its meaning, as the engine recognised
    /// them against the playbook's examples ([`crate::meaning`]): that of the whole message and
    /// those of its clauses, each once; empty when nothing was recognised or no embedding model is
    /// in use. The playbook's patterns are read as well.
    pub meaning: Vec<Intent>,
}

/// What the engine must do besides sending the replies, in the same transaction as the state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Effect {
    /// The conversation's lead, emitted exactly once.
    CreateLead(NewLead),
    /// The lead changed after it was created (a corrected phone, more of the need).
    UpdateLead(NewLead),
    /// A person takes over the conversation.
    HandOff { reason: String },
    /// The prospect rated the conversation 1–5.
    RecordRating(u8),
    /// An analytics event.
    Event {
        name: String,
        detail: serde_json::Value,
    },
}

/// The result of one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub state: DialogState,
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
}

/// The dialog's turn: understands the message, decides what to say and what must happen.
/// Never panics, whatever the input.
pub fn step(config: &DialogConfig, state: DialogState, input: &Input) -> Step {
    let mut turn = Turn {
        config,
        state,
        replies: Vec::new(),
        effects: Vec::new(),
        sender_name: input.sender_name.clone(),
    };
    turn.state.turns = turn.state.turns.saturating_add(1);
    match &input.content {
        InboundContent::Start { campaign } => turn.start(campaign.as_deref()),
        InboundContent::QuickReply { payload } => turn.quick_reply(payload, input),
        InboundContent::SharedContact { phone, name } => {
            let update = ContactUpdate {
                name: name.clone().filter(|name| !name.trim().is_empty()),
                phone: Some(phone.clone()),
                ..ContactUpdate::default()
            };
            let changed = update.apply_to(&mut turn.state.contact);
            turn.sync_lead(changed, true);
        }
        InboundContent::Unsupported { what } => {
            let text = turn.render(&config.phrases.unsupported);
            turn.replies.push(Reply::new(ReplyKind::Smalltalk, text));
            turn.event("unsupported_content", json!({ "what": what }));
        }
        InboundContent::Text { text } => turn.text(text, input.knowledge.as_ref(), &input.meaning),
    }
    if turn.replies.is_empty() {
        // Every message gets an answer, even one that changed nothing.
        let text = turn.render(&config.phrases.smalltalk_acknowledgement);
        turn.replies.push(Reply::new(ReplyKind::Smalltalk, text));
    }
    Step {
        state: turn.state,
        replies: turn.replies,
        effects: turn.effects,
    }
}

struct Turn<'a> {
    config: &'a DialogConfig,
    state: DialogState,
    replies: Vec<Reply>,
    effects: Vec<Effect>,
    sender_name: Option<String>,
}

/// What the main reply of a text turn was, to decide what may follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Main {
    Answer,
    Declined,
    Objection,
    Smalltalk,
    NeedAcknowledged,
    ContactOnly,
    Handoff,
    Refusal,
    ContactRequest,
    Closing,
}

impl Turn<'_> {
    fn lang(&self) -> Lang {
        self.state.lang
    }

    fn render(&self, phrase: &Phrase) -> String {
        let name = self
            .state
            .contact
            .name
            .as_deref()
            .map(|name| name.split_whitespace().next().unwrap_or(name));
        self.config.render(phrase, self.lang(), name)
    }

    fn event(&mut self, name: &str, detail: serde_json::Value) {
        self.effects.push(Effect::Event {
            name: name.to_owned(),
            detail,
        });
    }

    fn used_chars(&self) -> usize {
        let texts: usize = self
            .replies
            .iter()
            .map(|reply| reply.text.chars().count())
            .sum();
        // Channels that join replies into one message put a blank line between them.
        texts + 2 * self.replies.len().saturating_sub(1)
    }

    fn fits(&self, text: &str) -> bool {
        let separator = if self.replies.is_empty() { 0 } else { 2 };
        self.used_chars() + separator + text.chars().count() <= MAX_REPLY_CHARS
    }

    /// Adds a reply that must be sent: when the budget is exceeded, the first reply (a
    /// knowledge-base answer) is shortened at a sentence boundary to make room.
    fn push_required(&mut self, reply: Reply) {
        if !self.fits(&reply.text) {
            let needed = self.used_chars() + 2 + reply.text.chars().count() - MAX_REPLY_CHARS;
            if let Some(first) = self.replies.first_mut() {
                let keep = first.text.chars().count().saturating_sub(needed).max(40);
                first.text = truncate_sentences(&first.text, keep);
            }
        }
        if self.fits(&reply.text) {
            self.replies.push(reply);
        }
    }

    /// Adds a reply only when it fits in the budget.
    fn push_optional(&mut self, reply: Reply) -> bool {
        if self.fits(&reply.text) {
            self.replies.push(reply);
            true
        } else {
            false
        }
    }

    fn start(&mut self, campaign: Option<&str>) {
        self.state.greeted = true;
        if self.state.stage == Stage::New {
            self.state.stage = Stage::Talking;
        }
        let text = self.render(&self.config.phrases.greeting);
        self.replies.push(Reply::new(ReplyKind::Smalltalk, text));
        self.event("conversation_started", json!({ "campaign": campaign }));
    }

    fn quick_reply(&mut self, payload: &str, input: &Input) {
        if payload == HANDOFF_PAYLOAD {
            self.hand_off("the prospect pressed the button to talk to a person");
            self.request_rating();
            return;
        }
        if let Some(value) = payload.strip_prefix(RATING_PAYLOAD_PREFIX) {
            if let Ok(rating) = value.trim().parse::<u8>() {
                if (1..=5).contains(&rating) {
                    self.record_rating(rating);
                    return;
                }
            }
        }
        // A button this version does not know carries text the prospect chose: read it as text.
        self.text(payload, input.knowledge.as_ref(), &input.meaning);
    }

    fn record_rating(&mut self, rating: u8) {
        if self.state.rating.is_none() {
            self.state.rating = Some(rating);
            self.effects.push(Effect::RecordRating(rating));
        }
        self.state.awaiting_rating = false;
        self.state.rating_requested = true;
        let text = self.render(&self.config.phrases.rating_thanks);
        self.replies.push(Reply::new(ReplyKind::Confirmation, text));
    }

    fn request_rating(&mut self) {
        if self.state.rating_requested || self.state.rating.is_some() {
            return;
        }
        let text = self.render(&self.config.phrases.rating_request);
        let reply = Reply {
            kind: ReplyKind::Prompt,
            text,
            quick_replies: (1..=5)
                .map(|value| QuickReply {
                    label: value.to_string(),
                    payload: format!("{RATING_PAYLOAD_PREFIX}{value}"),
                })
                .collect(),
            ..Reply::default()
        };
        if self.push_optional(reply) {
            self.state.rating_requested = true;
            self.state.awaiting_rating = true;
        }
    }

    fn hand_off(&mut self, reason: &str) {
        if self.state.handed_off {
            let text = self.render(&self.config.phrases.handoff_again);
            self.replies.push(Reply::new(ReplyKind::Handoff, text));
            return;
        }
        self.state.handed_off = true;
        self.state.stage = Stage::HandedOff;
        self.effects.push(Effect::HandOff {
            reason: truncate_words(reason, 299),
        });
        let reachable = self.state.contact.is_reachable();
        self.state.contact_requested_last_turn = !reachable;
        let phrase = if reachable {
            &self.config.phrases.handoff
        } else {
            &self.config.phrases.handoff_with_contact_request
        };
        let reply = Reply {
            kind: ReplyKind::Handoff,
            text: self.render(phrase),
            request_contact: !reachable,
            ..Reply::default()
        };
        self.replies.push(reply);
    }

    fn text(&mut self, raw_text: &str, knowledge: Option<&KnowledgeAnswer>, meaning: &[Intent]) {
        let config = self.config;
        let text = bounded(raw_text);
        if let Some(lang) = Lang::detect(&text) {
            self.state.lang = lang;
        }
        let lang = self.lang();
        if self.state.stage == Stage::New {
            self.state.stage = Stage::Talking;
        }
        let normalised = normalise(&text);
        let mut update = extract_contact(&text);
        let contact_was_requested = std::mem::take(&mut self.state.contact_requested_last_turn);
        if contact_was_requested && update.name.is_none() {
            update.name = name_alone(&text);
        }
        let gave_reachable = update.phone.is_some() || update.email.is_some();

        if self.state.awaiting_rating && !gave_reachable {
            if let Some(rating) = bare_rating(&text) {
                self.record_rating(rating);
                return;
            }
        }

        let contact_changed = update.apply_to(&mut self.state.contact);
        let detect = &config.detect;
        // "вы живой человек?" asks about the assistant, it does not ask for a person.
        let wants_person = (detect.handoff.is_match(&normalised, lang)
            || meaning.contains(&Intent::Handoff))
            && !detect.bot_question.is_match(&normalised, lang);
        let objections = objections(config, &text, lang, meaning);
        let question = is_question(config, &text, &normalised, lang);
        // A question the knowledge base cannot answer, whose objection only its meaning
        // suggests ("is there liability insurance?" is near "what guarantees do you give?"),
        // is declined as a question, with or without its question mark: the playbook's
        // general words would answer something else.
        let objection_answers = !objections.is_empty()
            && (knowledge.is_some()
                || !question
                || !detect_objections(config, &text, lang).is_empty());
        let smalltalk = detect_smalltalk(config, &normalised, lang).or_else(|| {
            meaning.iter().find_map(|intent| match intent {
                Intent::Smalltalk(kind) => Some(*kind),
                _ => None,
            })
        });
        let refuses_contact = detect.contact_refusal.is_match(&normalised, lang)
            || meaning.contains(&Intent::ContactRefusal);
        let buying_intent = detect.buying_intent.is_match(&normalised, lang)
            || meaning.contains(&Intent::BuyingIntent);
        let states_need = detect.need.is_match(&normalised, lang);
        // A message that gives contacts, objects, or asks is not the answer to the question
        // asked last turn (its unprompted answers are still recognised by their patterns).
        let answered_qualification = self.capture_qualification(
            &text,
            &normalised,
            question
                || smalltalk.is_some()
                || wants_person
                || refuses_contact
                || gave_reachable
                || buying_intent
                || !objections.is_empty(),
            smalltalk.is_some()
                || wants_person
                || refuses_contact
                || gave_reachable
                || !objections.is_empty(),
        );
        if refuses_contact {
            self.state.contact_refused = true;
        }
        for kind in &objections {
            if !self.state.objections.contains(kind) {
                self.state.objections.push(*kind);
                self.event("objection", json!({ "kind": kind.as_str() }));
            }
        }

        if smalltalk.is_none() {
            if let Some(note) = condense_need(config, &text, &update, lang) {
                if !self.state.need_notes.contains(&note) {
                    self.state.need_notes.push(note);
                }
            }
        }

        let main = if wants_person {
            self.hand_off(&text);
            Main::Handoff
        } else if gave_reachable && !text.contains('?') {
            Main::ContactOnly
        } else if objection_answers {
            self.answer_objection(&objections, knowledge);
            Main::Objection
        } else if let Some(kind) = smalltalk.filter(|_| !gave_reachable) {
            self.smalltalk(kind);
            Main::Smalltalk
        } else if refuses_contact {
            if question {
                if let Some(answer) = knowledge {
                    self.answer(answer);
                }
            }
            let text = self.render(&config.phrases.contact_refused);
            self.push_optional(Reply::new(ReplyKind::Smalltalk, text));
            Main::Refusal
        } else if buying_intent && !question {
            if self.state.contact.is_reachable() {
                Main::Closing
            } else if !self.state.contact_refused {
                self.request_contact();
                Main::ContactRequest
            } else {
                self.answer_or_decline(knowledge)
            }
        } else if !question && (answered_qualification || states_need) {
            // The knowledge base found something relevant to what they told about their
            // business (a plan for their size, a product for their need): say it.
            match knowledge {
                Some(answer) => {
                    self.answer(answer);
                    Main::Answer
                }
                None => {
                    let text = self.render(&config.phrases.need_acknowledged);
                    self.replies.push(Reply::new(ReplyKind::Prompt, text));
                    Main::NeedAcknowledged
                }
            }
        } else if !question && (update.name.is_some() || update.company.is_some()) {
            // "меня зовут Иван": an introduction, not a question to decline.
            if !self.state.contact.is_reachable() && !self.state.contact_refused {
                self.request_contact();
            }
            Main::ContactOnly
        } else if !question && knowledge.is_none() && detect.statement.is_match(&normalised, lang) {
            // "у нас онлайн-школа, сидим на …": the prospect told about themselves and asked
            // nothing, so "I don't know" would answer a question nobody asked. It is context
            // for the sales team (kept as the need when none is known yet); the dialog goes on.
            let need_key = "need";
            if !self.state.qualification.contains_key(need_key)
                && config
                    .qualification
                    .iter()
                    .any(|question| question.key == need_key)
            {
                self.state
                    .qualification
                    .insert(need_key.to_owned(), truncate_words(text.trim(), 119));
            }
            let text = self.render(&config.phrases.need_acknowledged);
            self.replies.push(Reply::new(ReplyKind::Prompt, text));
            Main::NeedAcknowledged
        } else {
            self.answer_or_decline(knowledge)
        };

        // The rating is asked when the prospect is wrapping up, not when they leave their
        // contacts in the first message and go on asking.
        let closing = buying_intent
            || main == Main::Closing
            || (main == Main::ContactOnly && self.state.turns >= 3);
        let lead_created_now = self.sync_lead(contact_changed, closing);

        if main == Main::Handoff {
            self.request_rating();
            return;
        }
        if lead_created_now || self.state.handed_off {
            return;
        }
        if self.state.lead_created {
            if matches!(main, Main::Smalltalk | Main::Closing | Main::ContactOnly) {
                self.request_rating();
            }
            return;
        }
        self.follow_up(main, buying_intent);
    }

    fn answer_or_decline(&mut self, knowledge: Option<&KnowledgeAnswer>) -> Main {
        match knowledge {
            Some(answer) => {
                self.answer(answer);
                Main::Answer
            }
            None => {
                self.decline();
                Main::Declined
            }
        }
    }

    fn answer(&mut self, answer: &KnowledgeAnswer) {
        self.state.questions_answered = self.state.questions_answered.saturating_add(1);
        let reply = Reply {
            kind: ReplyKind::Answer,
            text: truncate_sentences(answer.text.trim(), MAX_REPLY_CHARS),
            citations: answer.citations.clone(),
            ..Reply::default()
        };
        self.replies.push(reply);
    }

    fn decline(&mut self) {
        let reply = Reply {
            kind: ReplyKind::Declined,
            text: self.render(&self.config.phrases.decline),
            quick_replies: vec![QuickReply {
                label: self.render(&self.config.phrases.offer_person_button),
                payload: HANDOFF_PAYLOAD.to_owned(),
            }],
            ..Reply::default()
        };
        self.replies.push(reply);
        self.event("declined", json!({ "lang": self.lang() }));
    }

    fn answer_objection(&mut self, kinds: &[ObjectionKind], knowledge: Option<&KnowledgeAnswer>) {
        let reply = match knowledge {
            Some(answer) => Reply {
                kind: ReplyKind::Objection,
                text: truncate_sentences(answer.text.trim(), MAX_REPLY_CHARS),
                citations: answer.citations.clone(),
                ..Reply::default()
            },
            None => {
                let kind = kinds.first().copied();
                let fallback = kind.and_then(|kind| {
                    self.config
                        .objections
                        .iter()
                        .find(|rule| rule.kind == kind)
                        .map(|rule| self.render(&rule.fallback))
                });
                Reply::new(ReplyKind::Objection, fallback.unwrap_or_default())
            }
        };
        self.replies.push(reply);
    }

    fn smalltalk(&mut self, kind: Smalltalk) {
        let phrases = &self.config.phrases;
        let phrase = match kind {
            Smalltalk::Greeting if !self.state.greeted => &phrases.greeting,
            Smalltalk::Greeting => &phrases.smalltalk_greeting,
            Smalltalk::Thanks => &phrases.smalltalk_thanks,
            Smalltalk::Farewell => &phrases.smalltalk_farewell,
            Smalltalk::AboutAssistant => &phrases.smalltalk_bot,
            Smalltalk::Acknowledgement => &phrases.smalltalk_acknowledgement,
        };
        self.state.greeted = true;
        let text = self.render(phrase);
        self.replies.push(Reply::new(ReplyKind::Smalltalk, text));
    }

    fn request_contact(&mut self) -> bool {
        let reply = Reply {
            kind: ReplyKind::Prompt,
            text: self.render(&self.config.phrases.contact_request),
            request_contact: true,
            ..Reply::default()
        };
        let pushed = self.push_optional(reply);
        if pushed {
            self.state.contact_requests = self.state.contact_requests.saturating_add(1);
            self.state.contact_requested_last_turn = true;
            self.state.last_prompt_turn = Some(self.state.turns);
            self.event("contact_requested", json!({ "turn": self.state.turns }));
        }
        pushed
    }

    /// After the main reply: a request for contacts when the prospect is engaged, else a
    /// qualification question at a natural moment; at most one, and not on every turn.
    fn follow_up(&mut self, main: Main, buying_intent: bool) {
        if !matches!(
            main,
            Main::Answer | Main::Objection | Main::NeedAcknowledged | Main::Declined
        ) {
            return;
        }
        let asked_last_turn =
            self.state.last_prompt_turn == Some(self.state.turns.saturating_sub(1));
        let reachable = self.state.contact.is_reachable();
        let may_ask_contact = !reachable && !self.state.contact_refused;
        if may_ask_contact
            && ((buying_intent && self.state.contact_requests < 3)
                || (self.state.questions_answered >= 2 && self.state.contact_requests == 0))
            && self.request_contact()
        {
            return;
        }
        if main == Main::Declined || (asked_last_turn && main != Main::NeedAcknowledged) {
            return;
        }
        let turns = self.state.turns;
        let next = self.config.qualification.iter().find(|question| {
            question.ask_from_turn <= turns
                && !self.state.qualification.contains_key(&question.key)
                && !self.state.asked_qualification.contains(&question.key)
        });
        if let Some(question) = next {
            let text = self.config.render(&question.question, self.lang(), None);
            let separator = if self.replies.is_empty() { 0 } else { 2 };
            if self.used_chars() + separator + text.chars().count() > QUALIFICATION_REPLY_CHARS {
                return;
            }
            if self.push_optional(Reply::new(ReplyKind::Prompt, text)) {
                self.state.asked_qualification.push(question.key.clone());
                self.state.pending_qualification = Some(question.key.clone());
                self.state.last_prompt_turn = Some(turns);
            }
        }
    }

    /// Records qualification answers: any the message gives unprompted, and the answer to the
    /// question asked last turn. Returns whether the message answered one.
    fn capture_qualification(
        &mut self,
        text: &str,
        normalised: &str,
        not_an_answer: bool,
        not_an_answer_to_need: bool,
    ) -> bool {
        let lang = self.lang();
        let mut answered = false;
        for question in &self.config.qualification {
            if self.state.qualification.contains_key(&question.key) {
                continue;
            }
            if let Some((start, end)) = question.detect.find(normalised, lang) {
                let answer = clause_around(normalised, start, end);
                if !answer.is_empty() {
                    self.state
                        .qualification
                        .insert(question.key.clone(), answer);
                    answered = true;
                }
            }
        }
        // A detailed first message about the business describes the need even without the
        // words the `need` patterns look for; asking "what is your task?" after it would
        // show the prospect they were not listened to.
        const DETAILED_WORDS: usize = 8;
        let need_key = "need";
        if !not_an_answer_to_need
            && self.state.need_notes.is_empty()
            && !self.state.qualification.contains_key(need_key)
            && self
                .config
                .qualification
                .iter()
                .any(|question| question.key == need_key)
            && text.split_whitespace().count() >= DETAILED_WORDS
        {
            self.state
                .qualification
                .insert(need_key.to_owned(), truncate_words(text.trim(), 119));
            // Not reported as an answer: the message may still be a question to answer.
        }
        if let Some(key) = self.state.pending_qualification.take() {
            if !not_an_answer && !self.state.qualification.contains_key(&key) {
                let answer = truncate_words(text.trim(), 119);
                if answer.chars().any(char::is_alphanumeric) {
                    self.state.qualification.insert(key, answer);
                    answered = true;
                }
            }
        }
        answered
    }

    /// Creates the lead once the prospect is reachable, or updates it when it changed.
    /// Returns whether the lead was created in this turn.
    fn sync_lead(&mut self, contact_changed: bool, closing: bool) -> bool {
        if !self.state.contact.is_reachable() {
            return false;
        }
        let lead = build_lead(self.config, &self.state, self.sender_name.as_deref());
        if !self.state.lead_created {
            self.state.lead_created = true;
            if self.state.stage != Stage::HandedOff {
                self.state.stage = Stage::LeadCaptured;
            }
            self.effects.push(Effect::CreateLead(lead.clone()));
            self.state.last_lead = Some(lead);
            let text = self.render(&self.config.phrases.lead_confirmation);
            self.push_required(Reply::new(ReplyKind::Confirmation, text));
            // Ask for the rating now when the prospect is wrapping up; otherwise later,
            // when they are done asking.
            if closing || self.state.handed_off {
                self.request_rating();
            }
            return true;
        }
        if self.state.last_lead.as_ref() != Some(&lead) {
            self.effects.push(Effect::UpdateLead(lead.clone()));
            self.state.last_lead = Some(lead);
            if contact_changed {
                let text = self.render(&self.config.phrases.lead_updated);
                self.push_required(Reply::new(ReplyKind::Confirmation, text));
            }
        }
        if closing && self.replies.is_empty() {
            let text = self.render(&self.config.phrases.lead_confirmation);
            self.replies.push(Reply::new(ReplyKind::Confirmation, text));
        }
        false
    }
}
