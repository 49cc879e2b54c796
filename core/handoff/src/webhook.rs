//! A signed webhook, per Standard Webhooks (<https://www.standardwebhooks.com>): every delivery
//! carries `webhook-id` (the same on every retry: the receiver's dedupe key),
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`.
//! The key is the secret's base64 after `whsec_`, or the secret's bytes when it has no prefix.

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use crate::{http, item, Created, Failure, Handoff, Subject, Target};

/// A webhook target's settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// The signing secret, `whsec_` + base64 of at least 24 random bytes.
    pub secret: SecretString,
    pub timeout: Duration,
}

pub struct Webhook {
    name: String,
    config: WebhookConfig,
    key: Vec<u8>,
    client: reqwest::Client,
}

/// What a receiver may answer with: the id and link of what it created.
#[derive(Debug, Default, Deserialize)]
struct Receipt {
    id: Option<serde_json::Value>,
    url: Option<String>,
}

impl Webhook {
    /// # Errors
    /// The secret has the `whsec_` prefix but is not base64 after it.
    pub fn new(name: &str, config: WebhookConfig) -> Result<Webhook, String> {
        let key = signing_key(config.secret.expose_secret())?;
        let client = http::client(config.timeout)?;
        Ok(Webhook {
            name: name.to_owned(),
            config,
            key,
            client,
        })
    }
}

impl Webhook {
    /// What the receiver's answer says it created: its id (else the event's), and its link
    /// when that is an http(s) URL. An answer that is not such JSON is a plain success.
    fn created(&self, body: &str, event_id: String) -> Created {
        let receipt: Receipt = serde_json::from_str(body).unwrap_or_default();
        let id = match receipt.id {
            Some(serde_json::Value::String(text)) => text,
            Some(other) if !other.is_null() => other.to_string(),
            _ => event_id,
        };
        Created {
            id,
            url: receipt
                .url
                .as_deref()
                .and_then(|url| crate::web_link(&self.name, url)),
        }
    }
}

/// The HMAC key a Standard Webhooks secret stands for.
///
/// # Errors
/// A `whsec_` secret that is not base64.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD.decode(encoded).map_err(|_| {
            "the webhook secret has the whsec_ prefix but is not base64 after it".to_owned()
        }),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl Target for Webhook {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let id = format!("evt_{}", handoff.key);
        let item = item::item(handoff);
        let conversation = handoff.subject.conversation_id().map(|id| {
            json!({
                "id": id,
                "channel": handoff.subject.lead().map(|lead| lead.channel),
                "url": handoff.conversation_url,
            })
        });
        let payload = match &handoff.subject {
            Subject::Lead(lead) => json!({
                "type": "lead.created",
                "id": id,
                "created_at": lead.created_at,
                "data": {
                    "handoff_key": handoff.key,
                    "title": item.title,
                    "description": item.description,
                    "lead": lead,
                    "conversation": conversation,
                    "transcript": item::transcript(&handoff.transcript),
                },
            }),
            Subject::Task { task, lead } => json!({
                "type": "task.created",
                "id": id,
                "created_at": task.created_at,
                "data": {
                    "handoff_key": handoff.key,
                    "title": item.title,
                    "description": item.description,
                    "task": task,
                    "lead": lead,
                    "conversation": conversation,
                    "transcript": item::transcript(&handoff.transcript),
                },
            }),
        };
        let body = serde_json::to_vec(&payload)
            .map_err(|error| Failure::permanent(format!("{}: {error}", self.name)))?;
        let timestamp = Utc::now().timestamp();
        let response = self
            .client
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature(&self.key, &id, timestamp, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|error| http::request_failed(&self.name, error))?;
        if response.status().as_u16() == 410 {
            return Err(Failure::permanent(format!(
                "{}: the receiver answered 410 Gone: the endpoint is disabled",
                self.name
            )));
        }
        let (_, body) = http::read(&self.name, response).await?;
        Ok(self.created(&body, id))
    }

    /// A receiver dedupes on `webhook-id`, so a repeated delivery is the lookup.
    async fn find(&self, _handoff: &Handoff) -> Result<Option<Created>, Failure> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn only_an_http_link_from_the_receiver_is_kept() {
        let webhook = Webhook::new(
            "crm",
            WebhookConfig {
                url: "http://127.0.0.1:9/".to_owned(),
                secret: "plain".to_owned().into(),
                timeout: Duration::from_secs(1),
            },
        )
        .unwrap();
        let created = |body: &str| webhook.created(body, "evt_1".to_owned());
        let kept = created(r#"{"id": 7, "url": "https://crm.example.com/leads/7"}"#);
        assert_eq!(kept.id, "7");
        assert_eq!(
            kept.url.as_ref().map(|url| url.as_str()),
            Some("https://crm.example.com/leads/7")
        );
        for url in [
            "javascript:alert(document.cookie)",
            " JAVASCRIPT:alert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "/leads/7",
        ] {
            let body = serde_json::json!({ "id": "L-1", "url": url }).to_string();
            let refused = created(&body);
            assert_eq!(
                (refused.id.as_str(), refused.url),
                ("L-1", None),
                "{url}: delivered, without the link"
            );
        }
        assert_eq!(created("OK").id, "evt_1", "a plain answer is a success");
    }

    #[test]
    fn a_whsec_secret_must_be_base64() {
        assert!(signing_key("whsec_!!!").is_err());
        assert_eq!(signing_key("plain").unwrap(), b"plain");
    }
}
