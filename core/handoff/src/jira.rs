//! Jira: Cloud through REST v3 (the description and comments in Atlassian Document Format; a
//! plain string is refused with 400) and Data Center through REST v2 (plain text). Jira has no
//! idempotency key: the issue carries the label `closer-<key>`, and an earlier attempt's issue is
//! found by JQL on it.

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{http, item, Created, Failure, Handoff, Target};

/// Which Jira, and so which API version and authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JiraFlavor {
    /// `https://{site}.atlassian.net`, REST v3, `Basic email:api_token`.
    Cloud,
    /// A self-hosted server, REST v2, `Bearer <personal access token>`.
    DataCenter,
}

/// A Jira target's settings.
#[derive(Debug, Clone)]
pub struct JiraConfig {
    pub flavor: JiraFlavor,
    /// The site: `https://acme.atlassian.net` or `https://jira.acme.ru`.
    pub url: String,
    /// Cloud: the account's e-mail, for `Basic email:token`.
    pub email: Option<String>,
    /// Cloud: an API token; Data Center: a personal access token.
    pub token: SecretString,
    pub project: String,
    /// The issue type's name, `Task` by default.
    pub issue_type: String,
    pub timeout: Duration,
}

pub struct Jira {
    name: String,
    config: JiraConfig,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct IssueRef {
    key: String,
}

#[derive(Debug, Deserialize)]
struct Found {
    #[serde(default)]
    issues: Vec<IssueRef>,
}

impl Jira {
    /// # Errors
    /// Jira Cloud without an e-mail, or the HTTP client cannot be built.
    pub fn new(name: &str, mut config: JiraConfig) -> Result<Jira, String> {
        if config.flavor == JiraFlavor::Cloud && config.email.is_none() {
            return Err("Jira Cloud needs the account's email with its API token".to_owned());
        }
        config.url = config.url.trim_end_matches('/').to_owned();
        let client = http::client(config.timeout)?;
        Ok(Jira {
            name: name.to_owned(),
            config,
            client,
        })
    }

    fn api(&self) -> &'static str {
        match self.config.flavor {
            JiraFlavor::Cloud => "/rest/api/3",
            JiraFlavor::DataCenter => "/rest/api/2",
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let url = format!("{}{}{path}", self.config.url, self.api());
        let authorization = match (&self.config.flavor, &self.config.email) {
            (JiraFlavor::Cloud, Some(email)) => format!(
                "Basic {}",
                STANDARD.encode(format!("{email}:{}", self.config.token.expose_secret()))
            ),
            _ => format!("Bearer {}", self.config.token.expose_secret()),
        };
        self.client
            .request(method, url)
            .header("authorization", authorization)
            .header("accept", "application/json")
    }

    async fn send(&self, request: RequestBuilder) -> Result<String, Failure> {
        http::send(&self.name, request).await.map(|(_, body)| body)
    }

    /// Text in the API's format: Atlassian Document Format on Cloud (a paragraph per
    /// line), the string itself on Data Center.
    fn text(&self, text: &str) -> Value {
        match self.config.flavor {
            JiraFlavor::DataCenter => json!(text),
            JiraFlavor::Cloud => json!({
                "type": "doc",
                "version": 1,
                "content": text
                    .lines()
                    .map(|line| {
                        if line.is_empty() {
                            json!({ "type": "paragraph", "content": [] })
                        } else {
                            json!({ "type": "paragraph", "content": [{ "type": "text", "text": line }] })
                        }
                    })
                    .collect::<Vec<_>>(),
            }),
        }
    }

    fn created(&self, key: String) -> Created {
        Created {
            url: crate::web_link(&self.name, &format!("{}/browse/{key}", self.config.url)),
            id: key,
        }
    }

    fn label(handoff: &Handoff) -> String {
        format!("closer-{}", handoff.key)
    }
}

#[async_trait]
impl Target for Jira {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let item = item::item(handoff);
        let body = json!({ "fields": {
            "project": { "key": self.config.project },
            "issuetype": { "name": self.config.issue_type },
            "summary": item.title,
            "description": self.text(&item.description),
            "labels": ["closer", Self::label(handoff)],
        }});
        let answer = self
            .send(self.request(reqwest::Method::POST, "/issue").json(&body))
            .await?;
        let issue: IssueRef = serde_json::from_str(&answer).map_err(|error| {
            Failure::transient(format!(
                "{}: an unreadable answer to a create: {error}",
                self.name
            ))
        })?;
        if !handoff.transcript.is_empty() {
            let comment = json!({ "body": self.text(&item::transcript(&handoff.transcript)) });
            let request = self
                .request(
                    reqwest::Method::POST,
                    &format!("/issue/{}/comment", issue.key),
                )
                .json(&comment);
            // The issue is what matters; a lost comment is logged, not retried.
            if let Err(failure) = self.send(request).await {
                tracing::warn!(target_name = %self.name, issue = %issue.key, %failure, "the transcript comment was not added");
            }
        }
        Ok(self.created(issue.key))
    }

    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        let jql = format!(
            "project = \"{}\" AND labels = \"{}\"",
            self.config.project,
            Self::label(handoff)
        );
        let request = match self.config.flavor {
            JiraFlavor::Cloud => self
                .request(reqwest::Method::POST, "/search/jql")
                .json(&json!({ "jql": jql, "fields": ["key"], "maxResults": 1 })),
            JiraFlavor::DataCenter => self.request(reqwest::Method::GET, "/search").query(&[
                ("jql", jql.as_str()),
                ("fields", "key"),
                ("maxResults", "1"),
            ]),
        };
        let found: Found = serde_json::from_str(&self.send(request).await?).map_err(|error| {
            Failure::transient(format!(
                "{}: an unreadable search answer: {error}",
                self.name
            ))
        })?;
        Ok(found
            .issues
            .into_iter()
            .next()
            .map(|issue| self.created(issue.key)))
    }
}
