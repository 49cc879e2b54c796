//! Linear (GraphQL): an issue created with a client-chosen id — a UUID derived from the
//! hand-off key, the same on every attempt — so an earlier attempt's issue is found by
//! `issue(id:)`. Errors come inside a 200 (or a 400) as `errors[].extensions.type`.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{http, item, Created, Failure, Handoff, Target};

/// A Linear target's settings.
#[derive(Debug, Clone)]
pub struct LinearConfig {
    /// `https://api.linear.app/graphql`.
    pub api_url: String,
    /// A personal API key (`lin_api_…`, sent without `Bearer`).
    pub token: SecretString,
    /// The team's id (a UUID).
    pub team_id: String,
    pub timeout: Duration,
}

pub struct Linear {
    name: String,
    config: LinearConfig,
    client: reqwest::Client,
}

/// The issue's id for a hand-off key: a version-4-shaped UUID from its SHA-256.
pub fn issue_id(key: &str) -> String {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&Sha256::digest(key.as_bytes())[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

impl Linear {
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(name: &str, config: LinearConfig) -> Result<Linear, String> {
        Ok(Linear {
            name: name.to_owned(),
            client: http::client(config.timeout)?,
            config,
        })
    }

    /// Runs a GraphQL operation; its `data`, or the failure its `errors` mean.
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, Failure> {
        let request = self
            .client
            .post(&self.config.api_url)
            .header("authorization", self.config.token.expose_secret())
            .json(&json!({ "query": query, "variables": variables }));
        let answer = http::send_reading_body_errors(&self.name, request, |answer| {
            let error = answer.get("errors")?.get(0)?;
            let kind = error["extensions"]["type"].as_str().unwrap_or_default();
            let message = error["message"].as_str().unwrap_or_default();
            let transient = matches!(kind, "ratelimited" | "internal error" | "lock timeout");
            Some((format!("{kind}: {message}"), transient))
        })
        .await?;
        answer
            .get("data")
            .cloned()
            .ok_or_else(|| Failure::transient(format!("{}: an answer without data", self.name)))
    }

    fn created(&self, issue: &Value) -> Option<Created> {
        Some(Created {
            id: issue.get("identifier")?.as_str()?.to_owned(),
            url: issue
                .get("url")
                .and_then(Value::as_str)
                .and_then(|url| crate::web_link(&self.name, url)),
        })
    }
}

#[async_trait]
impl Target for Linear {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let item = item::item(handoff);
        let id = issue_id(&handoff.key);
        let data = self
            .graphql(
                "mutation($i: IssueCreateInput!) { issueCreate(input: $i) { success issue { id identifier url } } }",
                json!({ "i": { "id": id, "teamId": self.config.team_id, "title": item.title, "description": item.description } }),
            )
            .await;
        let data = match data {
            Ok(data) => data,
            Err(Failure::Permanent { reason }) => {
                // The id may be taken by an earlier attempt's issue.
                return match self.find(handoff).await? {
                    Some(created) => Ok(created),
                    None => Err(Failure::Permanent { reason }),
                };
            }
            Err(failure) => return Err(failure),
        };
        let created = self.created(&data["issueCreate"]["issue"]).ok_or_else(|| {
            Failure::transient(format!("{}: issueCreate answered no issue", self.name))
        })?;
        if !handoff.transcript.is_empty() {
            let comment = self
                .graphql(
                    "mutation($c: CommentCreateInput!) { commentCreate(input: $c) { success } }",
                    json!({ "c": { "issueId": id, "body": item::transcript(&handoff.transcript) } }),
                )
                .await;
            // The issue is what matters; a lost comment is logged, not retried.
            if let Err(failure) = comment {
                tracing::warn!(target_name = %self.name, issue = %created.id, %failure, "the transcript comment was not added");
            }
        }
        Ok(created)
    }

    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        let found = self
            .graphql(
                "query($id: String!) { issue(id: $id) { id identifier url } }",
                json!({ "id": issue_id(&handoff.key) }),
            )
            .await;
        match found {
            Ok(data) => Ok(self.created(&data["issue"])),
            // Linear answers a missing entity with an error, not a null.
            Err(Failure::Permanent { reason }) if reason.contains("not found") => Ok(None),
            Err(failure) => Err(failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_id_is_a_stable_v4_uuid() {
        let id = issue_id("3f2a");
        assert_eq!(id, issue_id("3f2a"));
        assert_ne!(id, issue_id("3f2b"));
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }
}
