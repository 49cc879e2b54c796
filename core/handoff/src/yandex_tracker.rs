//! Yandex Tracker (API v2): an issue in a queue, idempotent by the issue's `unique` field — a
//! second create with the same value creates nothing and answers 409. The issue also carries
//! the tag `closer-<key>`, by which an earlier attempt's issue is found.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::{http, item, Created, Failure, Handoff, Target};

/// A Yandex Tracker target's settings.
#[derive(Debug, Clone)]
pub struct YandexTrackerConfig {
    /// `https://api.tracker.yandex.net`.
    pub api_url: String,
    /// Where people open issues: `https://tracker.yandex.ru`.
    pub web_url: String,
    /// An OAuth token (`Authorization: OAuth …`).
    pub token: SecretString,
    /// The Yandex 360 organization (`X-Org-ID`)…
    pub org_id: Option<String>,
    /// …or the Yandex Cloud organization (`X-Cloud-Org-ID`).
    pub cloud_org_id: Option<String>,
    /// The queue's key, e.g. `SALES`.
    pub queue: String,
    pub timeout: Duration,
}

pub struct YandexTracker {
    name: String,
    config: YandexTrackerConfig,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct Issue {
    key: String,
}

impl YandexTracker {
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(name: &str, mut config: YandexTrackerConfig) -> Result<YandexTracker, String> {
        config.api_url = config.api_url.trim_end_matches('/').to_owned();
        config.web_url = config.web_url.trim_end_matches('/').to_owned();
        let client = http::client(config.timeout)?;
        Ok(YandexTracker {
            name: name.to_owned(),
            config,
            client,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.config.api_url))
            .header(
                "authorization",
                format!("OAuth {}", self.config.token.expose_secret()),
            );
        if let Some(org) = &self.config.org_id {
            request = request.header("x-org-id", org);
        }
        if let Some(org) = &self.config.cloud_org_id {
            request = request.header("x-cloud-org-id", org);
        }
        request
    }

    async fn send(
        &self,
        request: RequestBuilder,
    ) -> Result<(reqwest::StatusCode, String), Failure> {
        http::send(&self.name, request).await
    }

    fn created(&self, key: String) -> Created {
        Created {
            url: crate::web_link(&self.name, &format!("{}/{key}", self.config.web_url)),
            id: key,
        }
    }

    fn tag(handoff: &Handoff) -> String {
        format!("closer-{}", handoff.key)
    }
}

#[async_trait]
impl Target for YandexTracker {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let item = item::item(handoff);
        let body = json!({
            "queue": self.config.queue,
            "summary": item.title,
            "description": item.description,
            "tags": ["closer", Self::tag(handoff)],
            "unique": Self::tag(handoff),
        });
        let request = self
            .request(reqwest::Method::POST, "/v2/issues/")
            .json(&body);
        let response = request
            .send()
            .await
            .map_err(|error| http::request_failed(&self.name, error))?;
        if response.status() == reqwest::StatusCode::CONFLICT {
            // `unique`: an earlier attempt created it.
            return match self.find(handoff).await? {
                Some(created) => Ok(created),
                None => Err(Failure::transient(format!(
                    "{}: the issue exists (409) but is not found yet",
                    self.name
                ))),
            };
        }
        let (_, body) = http::read(&self.name, response).await?;
        let issue = serde_json::from_str::<Issue>(&body).map_err(|error| {
            Failure::transient(format!(
                "{}: an unreadable answer to a create: {error}",
                self.name
            ))
        })?;
        if !handoff.transcript.is_empty() {
            let comment = json!({ "text": item::transcript(&handoff.transcript) });
            let request = self
                .request(
                    reqwest::Method::POST,
                    &format!("/v2/issues/{}/comments", issue.key),
                )
                .json(&comment);
            // The issue is what matters; a lost transcript comment is logged, not retried
            // (a retry could not tell whether the comment went through).
            if let Err(failure) = self.send(request).await {
                tracing::warn!(target_name = %self.name, issue = %issue.key, %failure, "the transcript comment was not added");
            }
        }
        Ok(self.created(issue.key))
    }

    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        let body = json!({ "filter": { "queue": self.config.queue, "tags": Self::tag(handoff) } });
        let request = self
            .request(reqwest::Method::POST, "/v2/issues/_search?perPage=1")
            .json(&body);
        let (_, body) = self.send(request).await?;
        let issues: Vec<Issue> = serde_json::from_str(&body).map_err(|error| {
            Failure::transient(format!(
                "{}: an unreadable search answer: {error}",
                self.name
            ))
        })?;
        Ok(issues
            .into_iter()
            .next()
            .map(|issue| self.created(issue.key)))
    }
}
