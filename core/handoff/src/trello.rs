//! Trello (REST v1): a card in a list, with the marker `closer-<key>` in its description, by
//! which an earlier attempt's card is found (`/1/search`); the transcript as a comment.
//! Trello's errors are plain text, and it has no `Retry-After`.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::{http, item, Created, Failure, Handoff, Target};

/// A Trello target's settings.
#[derive(Debug, Clone)]
pub struct TrelloConfig {
    /// `https://api.trello.com`.
    pub api_url: String,
    pub key: String,
    pub token: SecretString,
    /// The list cards go to.
    pub list_id: String,
    pub timeout: Duration,
}

pub struct Trello {
    name: String,
    config: TrelloConfig,
    client: reqwest::Client,
}

impl Trello {
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(name: &str, mut config: TrelloConfig) -> Result<Trello, String> {
        config.api_url = config.api_url.trim_end_matches('/').to_owned();
        Ok(Trello {
            name: name.to_owned(),
            client: http::client(config.timeout)?,
            config,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/1{path}", self.config.api_url))
            .query(&[
                ("key", self.config.key.as_str()),
                ("token", self.config.token.expose_secret()),
            ])
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let (_, body) = http::send(&self.name, request).await?;
        serde_json::from_str(&body).map_err(|error| {
            Failure::transient(format!("{}: an unreadable answer: {error}", self.name))
        })
    }

    fn created(&self, card: &Value) -> Option<Created> {
        Some(Created {
            id: card.get("id")?.as_str()?.to_owned(),
            url: card
                .get("shortUrl")
                .or_else(|| card.get("url"))
                .and_then(Value::as_str)
                .and_then(|url| crate::web_link(&self.name, url)),
        })
    }

    fn marker(handoff: &Handoff) -> String {
        format!("closer-{}", handoff.key)
    }
}

#[async_trait]
impl Target for Trello {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let item = item::item(handoff);
        let description = format!("{}\n\n{}", item.description, Self::marker(handoff));
        let card = self
            .json(
                self.request(reqwest::Method::POST, "/cards")
                    .json(&json!({ "idList": self.config.list_id, "name": item.title, "desc": description, "pos": "bottom" })),
            )
            .await?;
        let created = self
            .created(&card)
            .ok_or_else(|| Failure::transient(format!("{}: the card has no id", self.name)))?;
        if !handoff.transcript.is_empty() {
            let request = self
                .request(
                    reqwest::Method::POST,
                    &format!("/cards/{}/actions/comments", created.id),
                )
                .query(&[("text", item::transcript(&handoff.transcript))]);
            // The card is what matters; a lost comment is logged, not retried.
            if let Err(failure) = http::send(&self.name, request).await {
                tracing::warn!(target_name = %self.name, card = %created.id, %failure, "the transcript comment was not added");
            }
        }
        Ok(created)
    }

    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        let found = self
            .json(self.request(reqwest::Method::GET, "/search").query(&[
                ("query", Self::marker(handoff).as_str()),
                ("modelTypes", "cards"),
                ("cards_limit", "1"),
            ]))
            .await?;
        Ok(found
            .get("cards")
            .and_then(|cards| cards.get(0))
            .and_then(|found| self.created(found)))
    }
}
