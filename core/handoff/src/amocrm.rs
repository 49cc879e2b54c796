//! amoCRM / Kommo (API v4): a lead with its contact in one complex create, tagged
//! `closer-<key>`, by which an earlier attempt's lead is found (`?query=`; no match is 204 with
//! an empty body), and the transcript as a note.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::{http, item, Created, Failure, Handoff, Target};

/// An amoCRM or Kommo target's settings.
#[derive(Debug, Clone)]
pub struct AmoCrmConfig {
    /// The account: `https://acme.amocrm.ru` or `https://acme.kommo.com`.
    pub url: String,
    /// A long-lived token of a private integration.
    pub token: SecretString,
    pub timeout: Duration,
}

pub struct AmoCrm {
    name: String,
    url: String,
    token: SecretString,
    client: reqwest::Client,
}

impl AmoCrm {
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(name: &str, config: AmoCrmConfig) -> Result<AmoCrm, String> {
        Ok(AmoCrm {
            name: name.to_owned(),
            url: config.url.trim_end_matches('/').to_owned(),
            client: http::client(config.timeout)?,
            token: config.token,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(self.token.expose_secret())
    }

    async fn send(
        &self,
        request: RequestBuilder,
    ) -> Result<(reqwest::StatusCode, String), Failure> {
        http::send(&self.name, request).await
    }

    fn created(&self, id: u64) -> Created {
        Created {
            id: id.to_string(),
            url: crate::web_link(&self.name, &format!("{}/leads/detail/{id}", self.url)),
        }
    }

    fn tag(handoff: &Handoff) -> String {
        format!("closer-{}", handoff.key)
    }
}

#[async_trait]
impl Target for AmoCrm {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let item = item::item(handoff);
        let mut embedded = json!({
            "tags": [{ "name": "closer" }, { "name": Self::tag(handoff) }],
        });
        // A task asked for by hand outside a conversation has no prospect to attach.
        if let Some(contact) = handoff.contact() {
            let mut fields = Vec::new();
            if let Some(phone) = &contact.phone {
                fields.push(json!({ "field_code": "PHONE", "values": [{ "value": phone.to_string(), "enum_code": "WORK" }] }));
            }
            if let Some(email) = &contact.email {
                fields.push(json!({ "field_code": "EMAIL", "values": [{ "value": email.to_string(), "enum_code": "WORK" }] }));
            }
            embedded["contacts"] = json!([{
                "name": contact.name.clone().unwrap_or_else(|| item.title.clone()),
                "custom_fields_values": fields,
            }]);
        }
        let body = json!([{
            "name": item.title,
            "request_id": handoff.key,
            "_embedded": embedded,
        }]);
        let (_, answer) = self
            .send(
                self.request(reqwest::Method::POST, "/api/v4/leads/complex")
                    .json(&body),
            )
            .await?;
        let id = serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|answer| answer.get(0)?.get("id")?.as_u64())
            .ok_or_else(|| {
                Failure::transient(format!("{}: the complex create answered no id", self.name))
            })?;
        let mut text = item.description;
        if !handoff.transcript.is_empty() {
            text.push_str("\n\n");
            text.push_str(&item::transcript(&handoff.transcript));
        }
        let note = json!([{ "note_type": "common", "params": { "text": text } }]);
        let request = self
            .request(reqwest::Method::POST, &format!("/api/v4/leads/{id}/notes"))
            .json(&note);
        // The lead is what matters; a lost note is logged, not retried.
        if let Err(failure) = self.send(request).await {
            tracing::warn!(target_name = %self.name, lead = id, %failure, "the note was not added");
        }
        Ok(self.created(id))
    }

    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        let request = self
            .request(reqwest::Method::GET, "/api/v4/leads")
            .query(&[("query", Self::tag(handoff))]);
        let (status, body) = self.send(request).await?;
        if status == reqwest::StatusCode::NO_CONTENT || body.trim().is_empty() {
            return Ok(None);
        }
        let id = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|answer| {
                answer
                    .get("_embedded")?
                    .get("leads")?
                    .get(0)?
                    .get("id")?
                    .as_u64()
            });
        Ok(id.map(|id| self.created(id)))
    }
}
