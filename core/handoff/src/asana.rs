//! Asana (REST 1.0): a task in a project, with the transcript as a comment (a story).
//!
//! Asana's own idempotency mechanism, `external.gid` found by `GET /tasks/external:{gid}`,
//! works for OAuth apps only; with a personal access token an earlier attempt's task is found
//! by the marker `closer-<key>` in its notes, among the project's tasks modified since the
//! lead or task was created (`GET /tasks?project=…&modified_since=…`, paginated). Bodies are
//! wrapped in `{"data": …}`, errors are `{"errors":[{"message"}]}`, and a 429 has `Retry-After`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::{http, item, Created, Failure, Handoff, Subject, Target};

/// How many pages of a project's recent tasks a lookup reads at most.
const LOOKUP_PAGES: usize = 10;

/// An Asana target's settings.
#[derive(Debug, Clone)]
pub struct AsanaConfig {
    /// `https://app.asana.com/api/1.0`.
    pub api_url: String,
    /// A personal access token or an OAuth token.
    pub token: SecretString,
    /// The project tasks go to.
    pub project: String,
    /// Set `external.gid` on tasks and look them up by it (OAuth apps only).
    pub external_ids: bool,
    pub timeout: Duration,
}

pub struct Asana {
    name: String,
    config: AsanaConfig,
    client: reqwest::Client,
}

impl Asana {
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(name: &str, mut config: AsanaConfig) -> Result<Asana, String> {
        config.api_url = config.api_url.trim_end_matches('/').to_owned();
        Ok(Asana {
            name: name.to_owned(),
            client: http::client(config.timeout)?,
            config,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.config.api_url))
            .bearer_auth(self.config.token.expose_secret())
    }

    /// The answer's `data`, or the failure the answer means.
    async fn data(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let (_, body) = http::send(&self.name, request).await?;
        let mut answer: Value = serde_json::from_str(&body).map_err(|error| {
            Failure::transient(format!("{}: an unreadable answer: {error}", self.name))
        })?;
        Ok(answer
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    fn marker(handoff: &Handoff) -> String {
        format!("closer-{}", handoff.key)
    }

    fn created(&self, task: &Value) -> Option<Created> {
        Some(Created {
            id: task.get("gid")?.as_str()?.to_owned(),
            url: task
                .get("permalink_url")
                .and_then(Value::as_str)
                .and_then(|url| crate::web_link(&self.name, url)),
        })
    }

    /// When the lead or task came to be: its item can only have been modified since.
    fn since(handoff: &Handoff) -> DateTime<Utc> {
        let created_at = match &handoff.subject {
            Subject::Lead(lead) => lead.created_at,
            Subject::Task { task, .. } => task.created_at,
        };
        created_at - chrono::Duration::minutes(5)
    }
}

#[async_trait]
impl Target for Asana {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let item = item::item(handoff);
        let mut task = json!({
            "name": item.title,
            "notes": format!("{}\n\n{}", item.description, Self::marker(handoff)),
            "projects": [self.config.project],
        });
        if self.config.external_ids {
            task["external"] = json!({ "gid": Self::marker(handoff) });
        }
        let task = self
            .data(
                self.request(reqwest::Method::POST, "/tasks")
                    .json(&json!({ "data": task })),
            )
            .await?;
        let created = self
            .created(&task)
            .ok_or_else(|| Failure::transient(format!("{}: the task has no gid", self.name)))?;
        if !handoff.transcript.is_empty() {
            let story = json!({ "data": { "text": item::transcript(&handoff.transcript) } });
            let request = self
                .request(
                    reqwest::Method::POST,
                    &format!("/tasks/{}/stories", created.id),
                )
                .json(&story);
            // The task is what matters; a lost comment is logged, not retried.
            if let Err(failure) = http::send(&self.name, request).await {
                tracing::warn!(target_name = %self.name, task = %created.id, %failure, "the transcript comment was not added");
            }
        }
        Ok(created)
    }

    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        let marker = Self::marker(handoff);
        if self.config.external_ids {
            let request = self
                .request(reqwest::Method::GET, &format!("/tasks/external:{marker}"))
                .query(&[("opt_fields", "permalink_url")]);
            let response = request
                .send()
                .await
                .map_err(|error| http::request_failed(&self.name, error))?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let (_, body) = http::read(&self.name, response).await?;
            let task: Value = serde_json::from_str(&body).map_err(|error| {
                Failure::transient(format!("{}: an unreadable answer: {error}", self.name))
            })?;
            return Ok(task.get("data").and_then(|found| self.created(found)));
        }
        let since = Self::since(handoff).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut offset: Option<String> = None;
        for _ in 0..LOOKUP_PAGES {
            let mut query = vec![
                ("project", self.config.project.clone()),
                ("modified_since", since.clone()),
                ("opt_fields", "notes,permalink_url".to_owned()),
                ("limit", "100".to_owned()),
            ];
            if let Some(offset) = &offset {
                query.push(("offset", offset.clone()));
            }
            let (_, body) = http::send(
                &self.name,
                self.request(reqwest::Method::GET, "/tasks").query(&query),
            )
            .await?;
            let page: Value = serde_json::from_str(&body).map_err(|error| {
                Failure::transient(format!("{}: an unreadable answer: {error}", self.name))
            })?;
            let found = page
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|task| {
                    task.get("notes")
                        .and_then(Value::as_str)
                        .is_some_and(|notes| notes.contains(&marker))
                });
            if let Some(task) = found {
                return Ok(self.created(task));
            }
            offset = page
                .get("next_page")
                .and_then(|next| next.get("offset"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if offset.is_none() {
                break;
            }
        }
        Ok(None)
    }
}
