//! The lead as the sales team reads it: the prospect's need in their own words, the
//! qualification answers and the objections raised.

use std::sync::LazyLock;

use closer_model::{Lang, NewLead, ObjectionKind};
use regex::Regex;

use crate::config::DialogConfig;
use crate::contact::{blank_contact_details, ContactUpdate};
use crate::state::DialogState;
use crate::understand::{detect_smalltalk, normalise, truncate_words};

/// How long one message's note and the whole need part of the summary may be.
const NOTE_CHARS: usize = 160;
const NEED_CHARS: usize = 1000;

static NOTE_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[,.!;:]+(?:\s+|$)|[\n—–]+\s*|\s+-\s+").expect("the note separator is valid")
});

/// Words that carry no need on their own: a part made only of them is dropped
/// ("Sorry, typo, my number is", "Если что").
#[rustfmt::skip]
const FILLER_WORDS: &[&str] = &[
    "если", "что", "мне", "мой", "моя", "мои", "вот", "ну", "ой", "да", "нет", "ок", "стоп",
    "так", "тогда", "понял", "поняла", "ладно", "хорошо", "контакт", "контакты", "для", "связи",
    "правильный", "другой", "другая", "ошибся", "ошиблась", "извините", "is", "my", "me", "at",
    "to", "you", "can", "reach", "sorry", "typo", "ok", "okay", "please", "here", "it", "its",
    "the", "a", "and", "details", "send", "contact", "fine", "great", "alright", "so",
    // The kind of business left behind when its name is taken out ("салон «Мята»").
    "салон", "студия", "клиника", "сеть", "магазин", "компания", "фирма", "ресторан", "кафе",
    "агентство", "бюро", "центр", "ооо", "ип",
];

fn is_filler(part: &str) -> bool {
    part.split_whitespace().all(|word| {
        let word = normalise(word.trim_matches(|ch: char| !ch.is_alphanumeric()));
        word.is_empty() || FILLER_WORDS.contains(&word.as_str())
    })
}

/// What is left of a contact clause once the name and company are taken out.
static LEFTOVER_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:компания|компании|фирма|ооо|ип|ао|from|at|company|меня зовут|зовут|my name is|i'm|i am|this is|it's|я|это|и|and)$")
        .expect("the leftover label pattern is valid")
});

/// The parts of a message that say what the prospect wants, without greetings, thanks,
/// contact details, requests for a person or refusals; `None` when nothing is left.
pub fn condense_need(
    config: &DialogConfig,
    text: &str,
    update: &ContactUpdate,
    lang: Lang,
) -> Option<String> {
    let mut rest = blank_contact_details(text);
    for value in [&update.name, &update.company].into_iter().flatten() {
        rest = rest.replace(value.as_str(), " , ");
    }
    let detect = &config.detect;
    let parts: Vec<&str> = NOTE_SEPARATOR
        .split(&rest)
        .map(str::trim)
        .filter(|part| part.chars().filter(|ch| ch.is_alphabetic()).count() >= 2)
        .filter(|part| !LEFTOVER_LABEL.is_match(part) && !is_filler(part))
        .filter(|part| {
            let normalised = normalise(part);
            detect_smalltalk(config, &normalised, lang).is_none()
                && !detect.handoff.is_match(&normalised, lang)
                && !detect.contact_refusal.is_match(&normalised, lang)
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(truncate_words(&parts.join(", "), NOTE_CHARS - 1))
}

fn qualification_label(key: &str, lang: Lang) -> &str {
    match (key, lang) {
        ("need", Lang::Ru) => "потребность",
        ("volume", Lang::Ru) => "объём",
        ("timeline", Lang::Ru) => "сроки",
        ("budget", Lang::Ru) => "бюджет",
        ("need", Lang::En) => "need",
        ("volume", Lang::En) => "volume",
        ("timeline", Lang::En) => "timeline",
        ("budget", Lang::En) => "budget",
        (other, _) => other,
    }
}

fn objection_label(kind: ObjectionKind, lang: Lang) -> &'static str {
    match lang {
        Lang::En => kind.as_str(),
        Lang::Ru => match kind {
            ObjectionKind::Price => "цена",
            ObjectionKind::Timing => "не время",
            ObjectionKind::Competitor => "конкурент",
            ObjectionKind::Trust => "доверие",
            ObjectionKind::NeedToThink => "надо подумать",
            ObjectionKind::NoBudget => "нет бюджета",
            ObjectionKind::Authority => "решает не он",
        },
    }
}

/// The summary for the sales team, in the prospect's language. The labels are for the
/// team, not the prospect, so they live here rather than in the playbook.
pub fn summarise(state: &DialogState) -> String {
    let lang = state.lang;
    let (need_label, none, qualification_title, objections_title, handed_off) = match lang {
        Lang::Ru => (
            "Запрос",
            "Запрос не описан.",
            "Квалификация",
            "Возражения",
            "Просил связать с менеджером.",
        ),
        Lang::En => (
            "Wants",
            "No request described.",
            "Qualification",
            "Objections",
            "Asked to talk to a person.",
        ),
    };
    let mut parts = Vec::new();
    if state.need_notes.is_empty() {
        parts.push(none.to_owned());
    } else {
        let notes = truncate_words(&state.need_notes.join("; "), NEED_CHARS - 1);
        parts.push(format!("{need_label}: {notes}."));
    }
    if !state.qualification.is_empty() {
        let answers: Vec<String> = state
            .qualification
            .iter()
            .map(|(key, answer)| format!("{} — {answer}", qualification_label(key, lang)))
            .collect();
        parts.push(format!("{qualification_title}: {}.", answers.join("; ")));
    }
    if !state.objections.is_empty() {
        let kinds: Vec<&str> = state
            .objections
            .iter()
            .map(|kind| objection_label(*kind, lang))
            .collect();
        parts.push(format!("{objections_title}: {}.", kinds.join(", ")));
    }
    if state.handed_off {
        parts.push(handed_off.to_owned());
    }
    parts.join(" ")
}

/// The lead from what the dialog knows now.
pub fn build_lead(
    config: &DialogConfig,
    state: &DialogState,
    sender_name: Option<&str>,
) -> NewLead {
    let mut contact = state.contact.clone();
    if contact.name.is_none() {
        contact.name = sender_name
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned);
    }
    let qualified = !config.qualification.is_empty()
        && config
            .qualification
            .iter()
            .all(|question| state.qualification.contains_key(&question.key));
    NewLead {
        contact,
        summary: summarise(state),
        qualification: state.qualification.clone(),
        objections: state.objections.clone(),
        qualified,
    }
}

/// Why a note typed by a person does not make a lead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualLeadError {
    #[error("the note names no phone number or e-mail address to reach the prospect")]
    NoContact,
}

/// A lead from a note a person typed (`/closer lead Ivan Petrov, +7 903 123-45-67, wants a
/// demo`): the contact details found in it, and the rest of the note as the need.
///
/// # Errors
/// [`ManualLeadError::NoContact`] when the note has neither a phone nor an e-mail: a lead the
/// team cannot reach is not a lead.
pub fn lead_from_note(note: &str) -> Result<NewLead, ManualLeadError> {
    let mut contact = closer_model::Contact::default();
    crate::contact::extract_contact(note).apply_to(&mut contact);
    if contact.phone.is_none() && contact.email.is_none() {
        return Err(ManualLeadError::NoContact);
    }
    let mut need = crate::contact::blank_contact_details(note);
    for known in [contact.name.as_deref(), contact.company.as_deref()]
        .into_iter()
        .flatten()
    {
        need = need.replacen(known, "", 1);
    }
    let need = need
        .split([',', ';'])
        .map(str::trim)
        .filter(|part| part.chars().any(char::is_alphanumeric))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(NewLead {
        contact,
        summary: need,
        ..NewLead::default()
    })
}
