//! HubSpot (CRM v3): a contact (an existing one is reused: 409 names it), a deal associated
//! with it carrying the hand-off key in a property that has unique values (`closer_key` by
//! default, created once by an admin), and the transcript as a note on the deal. An earlier
//! attempt's deal is found by searching that property.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::{http, item, Created, Failure, Handoff, Target};

/// A HubSpot target's settings.
#[derive(Debug, Clone)]
pub struct HubSpotConfig {
    /// `https://api.hubapi.com`.
    pub api_url: String,
    /// A private app's token.
    pub token: SecretString,
    /// Where a record opens: `https://app.hubspot.com/contacts/{portalId}`; no link when `None`.
    pub web_url: Option<String>,
    /// The deal property with unique values that holds the hand-off key.
    pub key_property: String,
    pub timeout: Duration,
}

enum Answer {
    Done(Value),
    Conflict(String),
}

pub struct HubSpot {
    name: String,
    config: HubSpotConfig,
    client: reqwest::Client,
}

impl HubSpot {
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(name: &str, mut config: HubSpotConfig) -> Result<HubSpot, String> {
        config.api_url = config.api_url.trim_end_matches('/').to_owned();
        config.web_url = config
            .web_url
            .map(|url| url.trim_end_matches('/').to_owned());
        Ok(HubSpot {
            name: name.to_owned(),
            client: http::client(config.timeout)?,
            config,
        })
    }

    fn request(&self, path: &str) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.config.api_url))
            .bearer_auth(self.config.token.expose_secret())
    }

    /// Posts `body`; the answer, or `Conflict` with HubSpot's message for a 409.
    async fn post(&self, path: &str, body: &Value) -> Result<Answer, Failure> {
        let response = self
            .request(path)
            .json(body)
            .send()
            .await
            .map_err(|error| http::request_failed(&self.name, error))?;
        if response.status() == reqwest::StatusCode::CONFLICT {
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|error| error.get("message")?.as_str().map(str::to_owned))
                .unwrap_or(text);
            return Ok(Answer::Conflict(message));
        }
        let (_, text) = http::read(&self.name, response).await?;
        serde_json::from_str(&text)
            .map(Answer::Done)
            .map_err(|error| {
                Failure::transient(format!(
                    "{}: {path}: an unreadable answer: {error}",
                    self.name
                ))
            })
    }

    /// The contact's id: created, or the existing one a 409 names.
    async fn contact(&self, handoff: &Handoff) -> Result<Option<String>, Failure> {
        // A task asked for by hand outside a conversation has no prospect to attach.
        let Some(contact) = handoff.contact() else {
            return Ok(None);
        };
        let mut properties = json!({});
        if let Some(name) = &contact.name {
            properties["firstname"] = json!(name);
        }
        if let Some(email) = &contact.email {
            properties["email"] = json!(email.to_string());
        }
        if let Some(phone) = &contact.phone {
            properties["phone"] = json!(phone.to_string());
        }
        if let Some(company) = &contact.company {
            properties["company"] = json!(company);
        }
        Ok(
            match self
                .post(
                    "/crm/v3/objects/contacts",
                    &json!({ "properties": properties }),
                )
                .await?
            {
                Answer::Done(created) => {
                    created.get("id").and_then(Value::as_str).map(str::to_owned)
                }
                // "Contact already exists. Existing ID: 512"
                Answer::Conflict(message) => message
                    .split("Existing ID: ")
                    .nth(1)
                    .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect()),
            },
        )
    }

    fn created(&self, id: String) -> Created {
        Created {
            url: self
                .config
                .web_url
                .as_ref()
                .and_then(|web| crate::web_link(&self.name, &format!("{web}/record/0-3/{id}"))),
            id,
        }
    }
}

#[async_trait]
impl Target for HubSpot {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let item = item::item(handoff);
        let contact = self.contact(handoff).await?;
        let mut deal = json!({ "properties": {
            "dealname": item.title,
            "pipeline": "default",
            "dealstage": "appointmentscheduled",
            "description": item.description,
            self.config.key_property.as_str(): handoff.key,
        }});
        if let Some(contact) = contact {
            deal["associations"] = json!([{ "to": { "id": contact }, "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3 }] }]);
        }
        let deal = match self.post("/crm/v3/objects/deals", &deal).await? {
            Answer::Done(deal) => deal,
            Answer::Conflict(_) => {
                // The key's property has unique values: an earlier attempt made this deal.
                return self.find(handoff).await?.ok_or_else(|| {
                    Failure::transient(format!(
                        "{}: the deal exists (409) but is not found yet",
                        self.name
                    ))
                });
            }
        };
        let id = deal
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Failure::transient(format!("{}: the deal has no id", self.name)))?;
        if !handoff.transcript.is_empty() {
            let note = json!({
                "properties": {
                    "hs_timestamp": Utc::now().to_rfc3339(),
                    "hs_note_body": item::transcript(&handoff.transcript),
                },
                "associations": [{ "to": { "id": id }, "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 214 }] }],
            });
            // The deal is what matters; a lost note is logged, not retried.
            if let Err(failure) = self.post("/crm/v3/objects/notes", &note).await {
                tracing::warn!(target_name = %self.name, deal = %id, %failure, "the transcript note was not added");
            }
        }
        Ok(self.created(id))
    }

    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        let search = json!({ "filterGroups": [{ "filters": [{
            "propertyName": self.config.key_property, "operator": "EQ", "value": handoff.key,
        }] }], "limit": 1 });
        let Answer::Done(found) = self.post("/crm/v3/objects/deals/search", &search).await? else {
            return Ok(None);
        };
        Ok(found
            .get("results")
            .and_then(|results| results.get(0))
            .and_then(|deal| deal.get("id"))
            .and_then(Value::as_str)
            .map(|id| self.created(id.to_owned())))
    }
}
