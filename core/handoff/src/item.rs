//! What every target creates for a lead, composed once: a title and a plain-text description
//! (targets with rich formats convert it), and the transcript for a comment or note.

use closer_store::{Direction, TranscriptLine};

use crate::Handoff;

/// The longest title a target gets; trackers cut or refuse longer ones.
const TITLE_CHARS: usize = 120;

/// A lead as a tracker item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub title: String,
    pub description: String,
}

/// Composes the item for a hand-off.
pub fn item(handoff: &Handoff) -> Item {
    let lead = &handoff.lead;
    let contact = &lead.details.contact;
    let who = contact
        .name
        .clone()
        .or_else(|| contact.company.clone())
        .or_else(|| contact.phone.as_ref().map(ToString::to_string))
        .or_else(|| contact.email.as_ref().map(ToString::to_string))
        .unwrap_or_else(|| format!("{} prospect", lead.channel.as_str()));
    let summary = lead.details.summary.trim();
    let title = if summary.is_empty() {
        format!("Lead: {who}")
    } else {
        format!("Lead: {who} — {summary}")
    };

    let mut lines = Vec::new();
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
    match &handoff.conversation_url {
        Some(url) => lines.push(format!("Conversation: {url}")),
        None => lines.push(format!("Conversation: {}", lead.conversation_id)),
    }
    lines.push(format!(
        "Closer lead {} (hand-off {})",
        lead.id, handoff.key
    ));
    Item {
        title: shorten(&title, TITLE_CHARS),
        description: lines.join("\n"),
    }
}

/// The conversation as text, one line per message, for a comment or a note.
pub fn transcript(lines: &[TranscriptLine]) -> String {
    lines
        .iter()
        .map(|line| {
            let who = match line.direction {
                Direction::In => "Prospect",
                Direction::Out => "Assistant",
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
            lead: Lead {
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
            },
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
    fn a_long_title_is_shortened() {
        let mut long = handoff();
        long.lead.details.summary = "очень ".repeat(50);
        assert_eq!(item(&long).title.chars().count(), TITLE_CHARS);
    }
}
