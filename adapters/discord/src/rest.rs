//! Discord's REST API as Closer calls it: serenity names the routes and builds the requests,
//! and this module sends them and reads the answers itself, so that a 429's `retry_after`
//! (seconds, a float, in the JSON body), its `global` flag and the `X-RateLimit-*` headers
//! reach the pacer. serenity's own rate limiter reads them too, but keeps them to itself and,
//! while on, ignores a proxy (a local fake or a REST proxy): see ARCHITECTURE.md.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use serenity::all::{ApplicationId, ChannelId, GuildId, InteractionId, MessageId};
use serenity::http::{LightMethod, Request, Route};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a request failed, as callers act on it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    /// A 429: wait `retry_after`, for this route or (`global`) for everything, then try again.
    #[error("Discord asks to wait {retry_after:?} (global: {global})")]
    RateLimited { retry_after: Duration, global: bool },
    /// Discord refused the request for good (no permission, unknown channel, bad token).
    #[error("Discord refused the request (HTTP {status}, code {code}): {message}")]
    Rejected {
        status: u16,
        code: i64,
        message: String,
    },
    /// Discord could not be reached or failed (a timeout, a 5xx): worth retrying.
    #[error("Discord could not be reached or failed: {0}")]
    Unavailable(String),
}

impl RestError {
    /// Discord's JSON error codes for an interaction or its webhook that no longer exists
    /// (its 15 minutes are over, or it was never acknowledged).
    pub fn is_unknown_interaction(&self) -> bool {
        matches!(
            self,
            RestError::Rejected {
                code: 10015 | 10062,
                ..
            }
        ) || matches!(self, RestError::Rejected { status: 404, .. })
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub body: Value,
    /// The route's bucket is used up: the time until it refills (`X-RateLimit-Reset-After`).
    pub exhausted_for: Option<Duration>,
}

/// The REST client. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Rest {
    client: reqwest::Client,
    /// `Bot <token>`.
    authorization: SecretString,
    /// Replaces `https://discord.com` in every URL (a local fake or a REST proxy).
    proxy: Option<String>,
    pub application_id: u64,
}

impl Rest {
    pub(crate) fn new(
        token: &SecretString,
        proxy: Option<String>,
        application_id: u64,
    ) -> Result<Rest, RestError> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|error| RestError::Unavailable(error.without_url().to_string()))?;
        let token = token.expose_secret().trim();
        let authorization = if token.starts_with("Bot ") {
            token.to_owned()
        } else {
            format!("Bot {token}")
        };
        Ok(Rest {
            client,
            authorization: SecretString::from(authorization),
            proxy: proxy.map(|url| url.trim_end_matches('/').to_owned()),
            application_id,
        })
    }

    fn application(&self) -> ApplicationId {
        ApplicationId::new(self.application_id.max(1))
    }

    /// `GET /users/@me`: the bot's own user.
    pub(crate) async fn current_user(&self) -> Result<Answer, RestError> {
        self.call(Route::UserMe, LightMethod::Get, None).await
    }

    /// `POST /channels/{id}/messages`.
    pub(crate) async fn create_message(
        &self,
        channel: u64,
        body: &Value,
    ) -> Result<Answer, RestError> {
        let channel_id = ChannelId::new(channel.max(1));
        self.call(
            Route::ChannelMessages { channel_id },
            LightMethod::Post,
            Some(body),
        )
        .await
    }

    /// `PATCH /channels/{id}/messages/{message}`: a message's new content and buttons.
    pub(crate) async fn edit_message(
        &self,
        channel: u64,
        message: u64,
        body: &Value,
    ) -> Result<Answer, RestError> {
        let route = Route::ChannelMessage {
            channel_id: ChannelId::new(channel.max(1)),
            message_id: MessageId::new(message.max(1)),
        };
        self.call(route, LightMethod::Patch, Some(body)).await
    }

    /// `POST /webhooks/{application}/{token}`: a follow-up message of an interaction.
    pub(crate) async fn create_followup(
        &self,
        token: &str,
        body: &Value,
    ) -> Result<Answer, RestError> {
        let route = Route::WebhookFollowupMessages {
            application_id: self.application(),
            token,
        };
        self.call(route, LightMethod::Post, Some(body)).await
    }

    /// `POST /interactions/{id}/{token}/callback`: the response to an interaction.
    pub(crate) async fn respond(
        &self,
        interaction: u64,
        token: &str,
        body: &Value,
    ) -> Result<Answer, RestError> {
        let route = Route::InteractionResponse {
            interaction_id: InteractionId::new(interaction.max(1)),
            token,
        };
        self.call(route, LightMethod::Post, Some(body)).await
    }

    /// `PUT /applications/{id}/commands` or `…/guilds/{guild}/commands`: replaces the
    /// application's commands with `commands`.
    pub(crate) async fn overwrite_commands(
        &self,
        guild: Option<u64>,
        commands: &Value,
    ) -> Result<Answer, RestError> {
        let application_id = self.application();
        let route = match guild {
            Some(guild) => Route::GuildCommands {
                application_id,
                guild_id: GuildId::new(guild.max(1)),
            },
            None => Route::Commands { application_id },
        };
        self.call(route, LightMethod::Put, Some(commands)).await
    }

    async fn call(
        &self,
        route: Route<'_>,
        method: LightMethod,
        body: Option<&Value>,
    ) -> Result<Answer, RestError> {
        let bytes = body.map(|body| body.to_string().into_bytes());
        let request = Request::new(route, method)
            .body(bytes)
            .build(
                &self.client,
                self.authorization.expose_secret(),
                self.proxy.as_deref(),
            )
            .map_err(|error| {
                RestError::Unavailable(format!("the request cannot be built: {error}"))
            })?;
        let response = request
            .send()
            .await
            .map_err(|error| RestError::Unavailable(error.without_url().to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|error| RestError::Unavailable(error.without_url().to_string()))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            let exhausted =
                header(&headers, "x-ratelimit-remaining").is_some_and(|left| left <= 0.0);
            let exhausted_for = exhausted
                .then(|| header(&headers, "x-ratelimit-reset-after"))
                .flatten()
                .and_then(seconds);
            return Ok(Answer {
                body,
                exhausted_for,
            });
        }
        if status.as_u16() == 429 {
            // The body's float is the precise figure; the header is whole seconds.
            let retry_after = body
                .get("retry_after")
                .and_then(Value::as_f64)
                .or_else(|| header(&headers, "retry-after"))
                .and_then(seconds)
                .unwrap_or(Duration::from_secs(1));
            let global = body.get("global").and_then(Value::as_bool) == Some(true)
                || headers
                    .get("x-ratelimit-global")
                    .and_then(|value| value.to_str().ok())
                    == Some("true")
                || headers
                    .get("x-ratelimit-scope")
                    .and_then(|value| value.to_str().ok())
                    == Some("global");
            return Err(RestError::RateLimited {
                retry_after,
                global,
            });
        }
        if status.is_server_error() {
            return Err(RestError::Unavailable(format!("HTTP {status}")));
        }
        Err(RestError::Rejected {
            status: status.as_u16(),
            code: body.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .chars()
                .take(300)
                .collect(),
        })
    }
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<f64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A non-negative, finite number of seconds, at most an hour (a garbled figure must not
/// stall a channel for days).
fn seconds(value: f64) -> Option<Duration> {
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value.min(3600.0)))
}
