//! What every target creates for a lead or a task, composed once: a title and a plain-text description
//! (targets with rich formats convert it), and the transcript for a comment or note.

use closer_store::{Direction, TranscriptLine};

use closer_model::Lead;

use crate::{Handoff, Subject};

/// The longest title a target gets; trackers cut or refuse longer ones.
const TITLE_CHARS: usize = 120;

/// A lead or a task as a tracker item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub title: String,
    pub description: String,
}

/// Composes the item for a hand-off.
pub fn item(handoff: &Handoff) -> Item {
    let mut lines = Vec::new();
    let title = match &handoff.subject {
        Subject::Lead(lead) => {
            lead_lines(lead, &mut lines);
            lead_title(lead)
        }
        Subject::Task { task, lead } => {
            lines.push(format!("Asked for by {} in Closer", task.requested_by));
            if let Some(lead) = lead {
                lines.push(String::new());
                lines.push(format!("About the lead «{}»", lead_title(lead)));
                lines.push(String::new());
                lead_lines(lead, &mut lines);
            }
            task.title.clone()
        }
    };
    lines.push(String::new());
    match (&handoff.conversation_url, handoff.subject.conversation_id()) {
        (Some(url), _) => lines.push(format!("Conversation: {url}")),
        (None, Some(id)) => lines.push(format!("Conversation: {id}")),
        (None, None) => {}
    }
    lines.push(match &handoff.subject {
        Subject::Lead(lead) => format!("Closer lead {} (hand-off {})", lead.id, handoff.key),
        Subject::Task { task, .. } => {
            format!("Closer task {} (hand-off {})", task.id, handoff.key)
        }
    });
    Item {
        title: shorten(&title, TITLE_CHARS),
        description: lines.join("\n"),
    }
}

fn lead_title(lead: &Lead) -> String {
    let contact = &lead.details.contact;
    let who = contact
        .name
        .clone()
        .or_else(|| contact.company.clone())
        .or_else(|| contact.phone.as_ref().map(ToString::to_string))
        .or_else(|| contact.email.as_ref().map(ToString::to_string))
        .unwrap_or_else(|| format!("{} prospect", lead.channel.as_str()));
    let summary = lead.details.summary.trim();
    if summary.is_empty() {
        format!("Lead: {who}")
    } else {
        format!("Lead: {who} — {summary}")
    }
}

/// The lead's contact, need, qualification, objections and source.
fn lead_lines(lead: &Lead, lines: &mut Vec<String>) {
    let contact = &lead.details.contact;
    lines.push("Contact".to_owned());
    for (label, value) in [
        ("Name", contact.name.clone()),
        ("Company", contact.company.clone()),
        ("Phone", contact.phone.as_ref().map(ToString::to_string)),
        ("Email", contact.email.as_ref().map(ToString::to_string)),
    ] {
        if let Some(value) = value {
            lines.push(format!("- {label}: {value}"));
        }
    }
    let summary = lead.details.summary.trim();
    if !summary.is_empty() {
        lines.push(String::new());
        lines.push(format!("Need: {summary}"));
    }
    if !lead.details.qualification.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "Qualification ({})",
            if lead.details.qualified {
                "qualified"
            } else {
                "not fully qualified"
            }
        ));
        for (question, answer) in &lead.details.qualification {
            lines.push(format!("- {question}: {answer}"));
        }
    }
    if !lead.details.objections.is_empty() {
        let objections: Vec<&str> = lead.details.objections.iter().map(|o| o.as_str()).collect();
        lines.push(String::new());
        lines.push(format!("Objections: {}", objections.join(", ")));
    }
    lines.push(String::new());
    let mut source = format!("Source: {}", lead.channel.as_str());
    if let Some(campaign) = &lead.source_campaign {
        source.push_str(&format!(", campaign {campaign}"));
    }
    lines.push(source);
}

/// The conversation as text, one line per message, for a comment or a note.
pub fn transcript(lines: &[TranscriptLine]) -> String {
    lines
        .iter()
        .map(|line| {
            let who = match (line.direction, &line.author) {
                (Direction::In, _) => "Prospect".to_owned(),
                (Direction::Out, Some(person)) => person.clone(),
                (Direction::Out, None) => "Assistant".to_owned(),
            };
            format!(
                "[{}] {who}: {}",
                line.created_at.format("%Y-%m-%d %H:%M"),
                line.text
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(limit - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;
    use closer_model::{Channel, Contact, Lead, NewLead, ObjectionKind, Phone};
    use uuid::Uuid;

    use super::*;

    fn handoff() -> Handoff {
        Handoff {
            key: "3f2a".to_owned(),
            subject: Subject::Lead(Lead {
                id: Uuid::nil(),
                conversation_id: Uuid::nil(),
                channel: Channel::Telegram,
                source_campaign: Some("spring".to_owned()),
                details: NewLead {
                    contact: Contact {
                        name: Some("Иван Петров".to_owned()),
                        phone: Phone::parse("+7 903 123-45-67").ok(),
                        ..Contact::default()
                    },
                    summary: "CRM для 3 салонов".to_owned(),
                    qualification: BTreeMap::from([("timeline".to_owned(), "в марте".to_owned())]),
                    objections: vec![ObjectionKind::Price],
                    qualified: false,
                },
                created_at: Utc::now(),
            }),
            transcript: Vec::new(),
            conversation_url: Some("https://closer.example.com/c/1".to_owned()),
            attempt: 1,
        }
    }

    #[test]
    fn the_item_carries_contact_need_qualification_objections_source_and_link() {
        let item = item(&handoff());
        assert_eq!(item.title, "Lead: Иван Петров — CRM для 3 салонов");
        for expected in [
            "- Phone: +79031234567",
            "Need: CRM для 3 салонов",
            "- timeline: в марте",
            "Objections: price",
            "Source: telegram, campaign spring",
            "Conversation: https://closer.example.com/c/1",
        ] {
            assert!(
                item.description.contains(expected),
                "{expected} in {}",
                item.description
            );
        }
    }

    #[test]
    fn a_task_carries_its_title_who_asked_and_the_lead_it_is_about() {
        let Subject::Lead(lead) = handoff().subject else {
            unreachable!("the test hand-off is a lead")
        };
        let task = closer_model::Task {
            id: Uuid::nil(),
            title: "Позвонить Ивану до пятницы".to_owned(),
            requested_by: "anna".to_owned(),
            conversation_id: Some(lead.conversation_id),
            created_at: Utc::now(),
        };
        let about_lead = Handoff {
            subject: Subject::Task {
                task: task.clone(),
                lead: Some(lead),
            },
            ..handoff()
        };
        let item = item(&about_lead);
        assert_eq!(item.title, "Позвонить Ивану до пятницы");
        for expected in [
            "Asked for by anna in Closer",
            "About the lead «Lead: Иван Петров — CRM для 3 салонов»",
            "- Phone: +79031234567",
            "Conversation: https://closer.example.com/c/1",
            "Closer task 00000000-0000-0000-0000-000000000000 (hand-off 3f2a)",
        ] {
            assert!(
                item.description.contains(expected),
                "{expected} in {}",
                item.description
            );
        }
        let alone = Handoff {
            subject: Subject::Task {
                task: closer_model::Task {
                    conversation_id: None,
                    ..task
                },
                lead: None,
            },
            conversation_url: None,
            ..handoff()
        };
        let item = super::item(&alone);
        assert!(
            !item.description.contains("Conversation"),
            "{}",
            item.description
        );
        assert!(
            !item.description.contains("Contact"),
            "{}",
            item.description
        );
    }

    #[test]
    fn a_long_title_is_shortened() {
        let mut long = handoff();
        if let Subject::Lead(lead) = &mut long.subject {
            lead.details.summary = "очень ".repeat(50);
        }
        assert_eq!(item(&long).title.chars().count(), TITLE_CHARS);
    }
}
