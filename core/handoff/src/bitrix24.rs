//! Bitrix24 through an incoming webhook (`https://{portal}/rest/{user}/{code}/`): a CRM lead
//! (`crm.lead.add`) tagged `ORIGINATOR_ID`/`ORIGIN_ID`, by which an earlier attempt's lead is
//! found (`crm.lead.list`), and the transcript as a timeline comment; a task asked for by hand
//! becomes a task (`tasks.task.add`) assigned to the webhook's user, marked with `XML_ID` and
//! found by it (`tasks.task.list`). Bitrix24 answers errors
//! in the body, sometimes with HTTP 200, and its rate limit is 503 `QUERY_LIMIT_EXCEEDED`.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::{http, item, Created, Failure, Handoff, Subject, Target};

/// What Closer puts in `ORIGINATOR_ID`, with the hand-off key in `ORIGIN_ID`.
const ORIGINATOR: &str = "closer";

/// A Bitrix24 target's settings.
#[derive(Debug, Clone)]
pub struct Bitrix24Config {
    /// The incoming webhook's URL, a secret: `https://acme.bitrix24.ru/rest/1/abc123/`.
    pub webhook_url: SecretString,
    /// Where people open leads; the webhook's origin when `None`.
    pub web_url: Option<String>,
    pub timeout: Duration,
}

pub struct Bitrix24 {
    name: String,
    base: String,
    web_url: String,
    /// The webhook's user (`/rest/{user}/{code}/`): tasks are assigned to them.
    user_id: String,
    client: reqwest::Client,
}

impl Bitrix24 {
    /// # Errors
    /// The webhook URL is not a URL, or the HTTP client cannot be built.
    pub fn new(name: &str, config: Bitrix24Config) -> Result<Bitrix24, String> {
        let base = format!(
            "{}/",
            config.webhook_url.expose_secret().trim_end_matches('/')
        );
        let parsed = reqwest::Url::parse(&base)
            .map_err(|_| "the Bitrix24 webhook URL is not a URL".to_owned())?;
        let web_url = config
            .web_url
            .unwrap_or_else(|| parsed.origin().ascii_serialization())
            .trim_end_matches('/')
            .to_owned();
        let client = http::client(config.timeout)?;
        // `/rest/{user}/{code}/` (or the newer `/rest/api/{user}/{code}/`).
        let segments: Vec<&str> = parsed.path_segments().into_iter().flatten().collect();
        let user_id = segments
            .iter()
            .rev()
            .filter(|segment| !segment.is_empty())
            .nth(1)
            .filter(|user| user.chars().all(|c| c.is_ascii_digit()))
            .map_or_else(|| "1".to_owned(), |user| (*user).to_owned());
        Ok(Bitrix24 {
            name: name.to_owned(),
            base,
            web_url,
            user_id,
            client,
        })
    }

    /// Calls a REST method; its `result`, or the failure the answer means.
    async fn call(&self, method: &str, body: &Value) -> Result<Value, Failure> {
        let request = self
            .client
            .post(format!("{}{method}.json", self.base))
            .json(body);
        let answer = http::send_reading_body_errors(&self.name, request, |answer| {
            let code = answer.get("error")?.as_str()?;
            let description = answer
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let transient = matches!(
                code,
                "QUERY_LIMIT_EXCEEDED" | "OPERATION_TIME_LIMIT" | "INTERNAL_SERVER_ERROR"
            );
            Some((format!("{method}: {code} {description}"), transient))
        })
        .await?;
        answer.get("result").cloned().ok_or_else(|| {
            Failure::transient(format!(
                "{}: {method}: an answer without a result",
                self.name
            ))
        })
    }

    fn created(&self, id: String) -> Created {
        Created {
            url: crate::web_link(
                &self.name,
                &format!("{}/crm/lead/details/{id}/", self.web_url),
            ),
            id,
        }
    }
}

/// `3465` or `"3465"`, as Bitrix24 writes ids either way.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    }
}

impl Bitrix24 {
    /// A task (`tasks.task.add`) assigned to the webhook's user, marked with `XML_ID`.
    async fn create_task(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let item = item::item(handoff);
        let fields = json!({
            "TITLE": item.title,
            "DESCRIPTION": item.description,
            "RESPONSIBLE_ID": self.user_id,
            "XML_ID": Self::task_marker(handoff),
        });
        let result = self
            .call("tasks.task.add", &json!({ "fields": fields }))
            .await?;
        let id = result
            .get("task")
            .and_then(|task| task.get("id"))
            .and_then(id_text)
            .ok_or_else(|| {
                Failure::transient(format!("{}: tasks.task.add answered no id", self.name))
            })?;
        if !handoff.transcript.is_empty() {
            let comment = json!([id, { "POST_MESSAGE": item::transcript(&handoff.transcript) }]);
            // The task is what matters; a lost comment is logged, not retried.
            if let Err(failure) = self.call("task.commentitem.add", &comment).await {
                tracing::warn!(target_name = %self.name, task = %id, %failure, "the transcript comment was not added");
            }
        }
        Ok(self.created_task(id))
    }

    async fn find_task(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        let result = self
            .call(
                "tasks.task.list",
                &json!({
                    "filter": { "XML_ID": Self::task_marker(handoff) },
                    "select": ["ID"],
                }),
            )
            .await?;
        Ok(result
            .get("tasks")
            .and_then(Value::as_array)
            .and_then(|tasks| tasks.first())
            .and_then(|task| task.get("id"))
            .and_then(id_text)
            .map(|id| self.created_task(id)))
    }

    fn task_marker(handoff: &Handoff) -> String {
        format!("{ORIGINATOR}-{}", handoff.key)
    }

    fn created_task(&self, id: String) -> Created {
        Created {
            url: crate::web_link(
                &self.name,
                &format!(
                    "{}/company/personal/user/{}/tasks/task/view/{id}/",
                    self.web_url, self.user_id
                ),
            ),
            id,
        }
    }
}

#[async_trait]
impl Target for Bitrix24 {
    async fn create(&self, handoff: &Handoff) -> Result<Created, Failure> {
        let Subject::Lead(lead) = &handoff.subject else {
            return self.create_task(handoff).await;
        };
        let item = item::item(handoff);
        let contact = &lead.details.contact;
        let mut fields = json!({
            "TITLE": item.title,
            "SOURCE_ID": "OTHER",
            "SOURCE_DESCRIPTION": format!("Closer, {}", lead.channel.as_str()),
            "COMMENTS": item.description,
            "ORIGINATOR_ID": ORIGINATOR,
            "ORIGIN_ID": handoff.key,
        });
        if let Some(name) = &contact.name {
            fields["NAME"] = json!(name);
        }
        if let Some(company) = &contact.company {
            fields["COMPANY_TITLE"] = json!(company);
        }
        if let Some(phone) = &contact.phone {
            fields["PHONE"] = json!([{ "VALUE": phone.to_string(), "VALUE_TYPE": "WORK" }]);
        }
        if let Some(email) = &contact.email {
            fields["EMAIL"] = json!([{ "VALUE": email.to_string(), "VALUE_TYPE": "WORK" }]);
        }
        let result = self
            .call(
                "crm.lead.add",
                &json!({ "fields": fields, "params": { "REGISTER_SONET_EVENT": "Y" } }),
            )
            .await?;
        let id = id_text(&result).ok_or_else(|| {
            Failure::transient(format!("{}: crm.lead.add answered no id", self.name))
        })?;
        if !handoff.transcript.is_empty() {
            let comment = json!({ "fields": {
                "ENTITY_ID": id, "ENTITY_TYPE": "lead",
                "COMMENT": item::transcript(&handoff.transcript),
            }});
            // The lead is what matters; a lost comment is logged, not retried.
            if let Err(failure) = self.call("crm.timeline.comment.add", &comment).await {
                tracing::warn!(target_name = %self.name, lead = %id, %failure, "the transcript comment was not added");
            }
        }
        Ok(self.created(id))
    }

    async fn find(&self, handoff: &Handoff) -> Result<Option<Created>, Failure> {
        if handoff.task().is_some() {
            return self.find_task(handoff).await;
        }
        let result = self
            .call(
                "crm.lead.list",
                &json!({
                    "filter": { "ORIGINATOR_ID": ORIGINATOR, "ORIGIN_ID": handoff.key },
                    "select": ["ID"],
                }),
            )
            .await?;
        Ok(result
            .as_array()
            .and_then(|leads| leads.first())
            .and_then(|lead| lead.get("ID"))
            .and_then(id_text)
            .map(|id| self.created(id)))
    }
}
