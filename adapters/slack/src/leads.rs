//! New leads posted to the team's channel, as a hand-off target: the post rides the hand-off
//! outbox (written with the lead, in its transaction), so it is made exactly once and survives
//! a restart, with the outbox's retries and backoff.
//!
//! - **Create**: `chat.postMessage` with the lead (contact, summary, qualification,
//!   objections, a link to the conversation), the buttons "Take over" and, once a tracker has
//!   the lead, "Open in tracker"; the message's metadata carries the hand-off key.
//! - **Find**: a retry whose earlier attempt may have posted (a timeout) looks through the
//!   channel's recent history with `include_all_metadata` for that key before posting again.
//! - The created item's id is `channel:ts`, which is how the post is updated later and how a
//!   reply in its thread is traced back to the lead.

use async_trait::async_trait;
use closer_handoff::{Created, Failure, Handoff, Target};
use closer_model::Lead;
use slack_morphism::prelude::*;

use crate::api::{Api, ApiError};
use crate::render::escape;

/// The hand-off target's name: the binary registers [`LeadPosts`] under it.
pub const LEAD_TARGET: &str = "slack";
/// The metadata event type of a lead post.
pub const LEAD_EVENT_TYPE: &str = "closer_lead";
/// The action ids of the lead post's buttons.
pub const TAKE_OVER_ACTION: &str = "closer_take_over";
pub const HAND_BACK_ACTION: &str = "closer_hand_back";
pub const OPEN_TRACKER_ACTION: &str = "closer_open_tracker";
/// How far back a retry looks for an earlier post.
const HISTORY_LIMIT: u16 = 200;

/// Posts leads to one channel.
#[derive(Debug, Clone)]
pub struct LeadPosts {
    api: Api,
    channel: String,
    conversation_url: Option<String>,
}

/// How a lead post looks now: who took the conversation, and the tracker's link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostState {
    pub taken_over_by: Option<String>,
    pub tracker_url: Option<String>,
}

impl LeadPosts {
    pub fn new(api: Api, channel: String, conversation_url: Option<String>) -> LeadPosts {
        LeadPosts {
            api,
            channel,
            conversation_url,
        }
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The conversation's link for a lead, when Closer knows its public URL.
    pub fn conversation_link(&self, lead: &Lead) -> Option<String> {
        self.conversation_url
            .as_ref()
            .map(|url| url.replace("{id}", &lead.conversation_id.to_string()))
    }

    /// Updates a lead's post (`channel:ts`) to its current state.
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn update(
        &self,
        post_id: &str,
        lead: &Lead,
        state: &PostState,
    ) -> Result<(), ApiError> {
        let Some((channel, ts)) = post_id.split_once(':') else {
            return Err(ApiError::Refused(format!("not a Slack post id: {post_id}")));
        };
        let content = lead_message(lead, self.conversation_link(lead).as_deref(), state, None);
        self.api.update(channel, ts, content).await
    }
}

#[async_trait]
impl Target for LeadPosts {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let lead = posted_lead(handoff)?;
        let content = lead_message(
            lead,
            handoff
                .conversation_url
                .as_deref()
                .or(self.conversation_link(lead).as_deref()),
            &PostState::default(),
            Some(&handoff.key),
        );
        let posted = self
            .api
            .post(&self.channel, None, content)
            .await
            .map_err(failure)?;
        Ok(Created {
            id: format!("{}:{}", posted.channel, posted.ts),
            url: None,
        })
    }

    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        posted_lead(handoff)?;
        let found = self
            .api
            .find_by_metadata(
                &self.channel,
                LEAD_EVENT_TYPE,
                "key",
                &handoff.key,
                HISTORY_LIMIT,
            )
            .await
            .map_err(failure)?;
        Ok(found.map(|ts| Created {
            id: format!("{}:{ts}", self.channel),
            url: None,
        }))
    }
}

/// The lead a hand-off posts: the leads channel takes leads, not tasks.
fn posted_lead(handoff: &Handoff) -> Result<&Lead, Failure> {
    match &handoff.subject {
        closer_handoff::Subject::Lead(lead) => Ok(lead),
        closer_handoff::Subject::Task { .. } => Err(Failure::permanent(
            "the Slack leads channel takes leads, not tasks",
        )),
    }
}

fn failure(error: ApiError) -> Failure {
    match error {
        ApiError::RateLimited(wait) => Failure::Transient {
            reason: "Slack rate limit (429)".to_owned(),
            retry_after: Some(wait),
        },
        ApiError::Unavailable(reason) => Failure::transient(reason),
        ApiError::Refused(reason) => {
            Failure::permanent(format!("Slack refused the post: {reason}"))
        }
    }
}

/// The lead post (pure): a summary section, the details as fields, and the buttons.
pub fn lead_message(
    lead: &Lead,
    conversation_url: Option<&str>,
    state: &PostState,
    key: Option<&str>,
) -> SlackMessageContent {
    let details = &lead.details;
    let contact = &details.contact;
    let who = contact
        .name
        .clone()
        .or_else(|| contact.company.clone())
        .unwrap_or_else(|| format!("{} prospect", lead.channel.as_str()));
    let headline = format!("*New lead: {}* ({})", escape(&who), lead.channel.as_str());
    let mut lines = vec![headline.clone()];
    let mut reach = Vec::new();
    if let Some(phone) = &contact.phone {
        reach.push(phone.to_string());
    }
    if let Some(email) = &contact.email {
        reach.push(email.to_string());
    }
    if let Some(company) = contact.company.as_ref().filter(|_| contact.name.is_some()) {
        reach.push(company.clone());
    }
    if !reach.is_empty() {
        lines.push(format!("*Contact:* {}", escape(&reach.join(", "))));
    }
    if !details.summary.trim().is_empty() {
        lines.push(format!("*Need:* {}", escape(details.summary.trim())));
    }
    if !details.qualification.is_empty() {
        let answers: Vec<String> = details
            .qualification
            .iter()
            .map(|(question, answer)| format!("{question}: {}", escape(answer)))
            .collect();
        lines.push(format!(
            "*Qualification* ({}): {}",
            if details.qualified {
                "qualified"
            } else {
                "partly"
            },
            answers.join("; ")
        ));
    }
    if !details.objections.is_empty() {
        let objections: Vec<&str> = details.objections.iter().map(|o| o.as_str()).collect();
        lines.push(format!("*Objections:* {}", objections.join(", ")));
    }
    match conversation_url {
        Some(url) => lines.push(format!("<{}|Open the conversation>", escape(url))),
        None => lines.push(format!("Conversation `{}`", lead.conversation_id)),
    }
    if let Some(by) = &state.taken_over_by {
        lines.push(format!("_Taken over by <@{}>: the assistant is silent; write in this thread to answer the prospect._", escape(by)));
    }
    let mut text = lines.join("\n");
    if text.chars().count() > crate::render::SECTION_CHARS {
        text = text
            .chars()
            .take(crate::render::SECTION_CHARS - 1)
            .collect();
        text.push('…');
    }
    let conversation = lead.conversation_id.to_string();
    let mut buttons = vec![match &state.taken_over_by {
        None => SlackActionBlockElement::Button(
            SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from("Take over"))
                .with_action_id(SlackActionId::new(TAKE_OVER_ACTION.to_owned()))
                .with_value(conversation.clone())
                .with_style(SlackBlockButtonStyle::Primary),
        ),
        Some(_) => SlackActionBlockElement::Button(
            SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from("Hand back"))
                .with_action_id(SlackActionId::new(HAND_BACK_ACTION.to_owned()))
                .with_value(conversation.clone()),
        ),
    }];
    // Only an http(s) link becomes a button: a row stored before links were checked at the
    // boundary could hold any scheme ("javascript:…").
    if let Some(url) = state
        .tracker_url
        .as_deref()
        .and_then(|url| closer_model::WebLink::parse(url).ok())
        .and_then(|link| url::Url::parse(&link.to_string()).ok())
    {
        buttons.push(SlackActionBlockElement::Button(
            SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from("Open in tracker"))
                .with_action_id(SlackActionId::new(OPEN_TRACKER_ACTION.to_owned()))
                .with_url(url),
        ));
    }
    let blocks = vec![
        SlackBlock::Section(
            SlackSectionBlock::new()
                .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text))),
        ),
        SlackBlock::Actions(SlackActionsBlock::new(buttons)),
    ];
    let mut content = SlackMessageContent::new()
        .with_text(format!("New lead: {}", escape(&who)))
        .with_blocks(blocks);
    if let Some(key) = key {
        content = content.with_metadata(
            SlackMessageMetadata::new(LEAD_EVENT_TYPE.to_owned()).with_event_payload(
                [
                    ("key".to_owned(), key.to_owned()),
                    ("lead_id".to_owned(), lead.id.to_string()),
                    ("conversation_id".to_owned(), conversation),
                ]
                .into_iter()
                .collect(),
            ),
        );
    }
    content
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;
    use closer_model::{Channel, Contact, NewLead, ObjectionKind, Phone};
    use uuid::Uuid;

    use super::*;

    fn lead() -> Lead {
        Lead {
            id: Uuid::nil(),
            conversation_id: Uuid::nil(),
            channel: Channel::Telegram,
            source_campaign: None,
            details: NewLead {
                contact: Contact {
                    name: Some("Анна <Smith>".to_owned()),
                    phone: Phone::parse("+7 921 555-12-34").ok(),
                    ..Contact::default()
                },
                summary: "CRM for 3 salons & a clinic".to_owned(),
                qualification: BTreeMap::from([("timeline".to_owned(), "March".to_owned())]),
                objections: vec![ObjectionKind::Price],
                qualified: false,
            },
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_lead_post_shows_the_lead_escaped_with_its_buttons_and_key() {
        let content = lead_message(
            &lead(),
            Some("https://closer.example.com/c/1"),
            &PostState::default(),
            Some("abc123"),
        );
        let json = serde_json::to_value(&content).unwrap();
        let text = json["blocks"][0]["text"]["text"].as_str().unwrap();
        for expected in [
            "*New lead: Анна &lt;Smith&gt;* (telegram)",
            "*Contact:* +79215551234",
            "*Need:* CRM for 3 salons &amp; a clinic",
            "timeline: March",
            "*Objections:* price",
            "<https://closer.example.com/c/1|Open the conversation>",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        assert_eq!(
            json["blocks"][1]["elements"][0]["action_id"],
            TAKE_OVER_ACTION
        );
        assert_eq!(json["blocks"][1]["elements"].as_array().unwrap().len(), 1);
        assert_eq!(json["metadata"]["event_type"], LEAD_EVENT_TYPE);
        assert_eq!(json["metadata"]["event_payload"]["key"], "abc123");
    }

    #[test]
    fn taken_over_it_offers_hand_back_and_the_tracker_link() {
        let content = lead_message(
            &lead(),
            None,
            &PostState {
                taken_over_by: Some("U42".to_owned()),
                tracker_url: Some("https://tracker.example.com/SALES-1".to_owned()),
            },
            None,
        );
        let json = serde_json::to_value(&content).unwrap();
        assert!(json["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("<@U42>"));
        assert_eq!(
            json["blocks"][1]["elements"][0]["action_id"],
            HAND_BACK_ACTION
        );
        assert_eq!(
            json["blocks"][1]["elements"][1]["url"],
            "https://tracker.example.com/SALES-1"
        );
        assert!(json.get("metadata").is_none());
    }

    #[test]
    fn a_stored_link_that_is_not_http_is_no_button() {
        for stored in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
        ] {
            let content = lead_message(
                &lead(),
                None,
                &PostState {
                    taken_over_by: Some("U42".to_owned()),
                    tracker_url: Some(stored.to_owned()),
                },
                None,
            );
            let json = serde_json::to_value(&content).unwrap();
            let buttons = json["blocks"][1]["elements"].as_array().unwrap();
            assert_eq!(buttons.len(), 1, "{stored}: {buttons:?}");
        }
    }
}
