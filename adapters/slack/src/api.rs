//! The Slack Web API as Closer uses it: slack-morphism's client on an http-or-https connector
//! (so a local fake can stand in for Slack), and its errors sorted into what callers act on.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

/// Why a Web API call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Slack answered 429: wait this long, then send the same request again.
    #[error("Slack asks to slow down for {0:?}")]
    RateLimited(Duration),
    /// Slack refused the request (`{"ok":false,"error":"…"}`): trying again will not help
    /// (`channel_not_found`, `not_in_channel`, `invalid_auth`, `invalid_blocks`).
    #[error("Slack refused the request: {0}")]
    Refused(String),
    /// The network or Slack failed (a timeout, a 5xx): worth trying again.
    #[error("Slack could not be reached: {0}")]
    Unavailable(String),
}

/// The errors Slack reports inside a 200 that are worth retrying.
const TRANSIENT_CODES: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
];

impl From<SlackClientError> for ApiError {
    fn from(error: SlackClientError) -> ApiError {
        match error {
            SlackClientError::RateLimitError(limit) => {
                ApiError::RateLimited(limit.retry_after.unwrap_or(Duration::from_secs(1)))
            }
            SlackClientError::ApiError(api) if TRANSIENT_CODES.contains(&api.code.as_str()) => {
                ApiError::Unavailable(api.code)
            }
            SlackClientError::ApiError(api) => ApiError::Refused(api.code),
            SlackClientError::HttpError(http) if http.status_code.is_client_error() => {
                ApiError::Refused(format!("HTTP {}", http.status_code))
            }
            other => ApiError::Unavailable(first_line(&other.to_string())),
        }
    }
}

/// A message as posted: where and its `ts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// Who the bot is, from `auth.test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    pub user_id: String,
    pub bot_id: Option<String>,
    /// The workspace's name.
    pub team: String,
    /// The workspace the bot token belongs to (`T…`): whose members the copilot answers,
    /// unless `slack.team_id` names another.
    pub team_id: String,
}

/// A Slack user as `users.info` describes them: what decides whether they are a member of
/// the workspace (see [`crate::members`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    /// The user's home workspace; another organisation's for a Slack Connect user.
    pub team_id: Option<String>,
    pub deleted: bool,
    pub is_bot: bool,
    /// A multi-channel guest.
    pub is_restricted: bool,
    /// A single-channel guest.
    pub is_ultra_restricted: bool,
    /// Of another workspace, and in no channel shared with this one that the app sees.
    pub is_stranger: bool,
}

/// The Web API client with the bot token. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    client: Arc<SlackHyperClient>,
    token: Arc<SlackApiToken>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

impl Api {
    /// A client of the Web API at `api_url` (`https://slack.com/api`, or a fake's address).
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when the system's TLS roots cannot be loaded.
    pub fn new(api_url: &str, bot_token: &SecretString) -> Result<Api, ApiError> {
        install_crypto_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|error| ApiError::Unavailable(format!("TLS roots: {error}")))?
            .https_or_http()
            .enable_http1()
            .build();
        // No rate control from the library: its chat.postMessage limit is per team, and Closer
        // paces per channel and honours each 429's Retry-After itself.
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(api_url.trim_end_matches('/'));
        Ok(Api {
            client: Arc::new(SlackClient::new(connector)),
            token: Arc::new(SlackApiToken::new(SlackApiTokenValue::new(
                bot_token.expose_secret().to_owned(),
            ))),
        })
    }

    /// slack-morphism's client, for Socket Mode.
    pub(crate) fn client(&self) -> Arc<SlackHyperClient> {
        self.client.clone()
    }

    /// `auth.test`: checks the token and learns the bot's user id.
    ///
    /// # Errors
    /// [`ApiError::Refused`] for a bad token; [`ApiError::Unavailable`].
    pub async fn auth_test(&self) -> Result<BotIdentity, ApiError> {
        let session = self.client.open_session(&self.token);
        let me = session.auth_test().await?;
        Ok(BotIdentity {
            user_id: me.user_id.0,
            bot_id: me.bot_id.map(|id| id.0),
            team: me.team,
            team_id: me.team_id.0,
        })
    }

    /// `users.info` (scope `users:read`): who `user` is, as far as membership goes.
    ///
    /// # Errors
    /// [`ApiError::Refused`] (`user_not_found`, `missing_scope`, …); [`ApiError`].
    pub async fn user_info(&self, user: &str) -> Result<UserRecord, ApiError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiUsersInfoRequest::new(SlackUserId::new(user.to_owned()));
        let found = session.users_info(&request).await?.user;
        let flag = |value: Option<bool>| value.unwrap_or(false);
        Ok(UserRecord {
            id: found.id.0,
            team_id: found.team_id.map(|team| team.0),
            deleted: flag(found.deleted),
            is_bot: flag(found.flags.is_bot),
            is_restricted: flag(found.flags.is_restricted),
            is_ultra_restricted: flag(found.flags.is_ultra_restricted),
            is_stranger: flag(found.flags.is_stranger),
        })
    }

    /// `chat.postEphemeral`: a message only `user` sees, in `channel` (and thread).
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        thread_ts: Option<&str>,
        text: &str,
    ) -> Result<(), ApiError> {
        let session = self.client.open_session(&self.token);
        let mut request = SlackApiChatPostEphemeralRequest::new(
            SlackChannelId::new(channel.to_owned()),
            SlackUserId::new(user.to_owned()),
            SlackMessageContent::new().with_text(text.to_owned()),
        );
        if let Some(thread_ts) = thread_ts {
            request = request.with_thread_ts(SlackTs::new(thread_ts.to_owned()));
        }
        session.chat_post_ephemeral(&request).await?;
        Ok(())
    }

    /// `chat.postMessage`, in a thread when `thread_ts` is given.
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        content: SlackMessageContent,
    ) -> Result<Posted, ApiError> {
        let session = self.client.open_session(&self.token);
        let mut request =
            SlackApiChatPostMessageRequest::new(SlackChannelId::new(channel.to_owned()), content)
                .with_unfurl_links(false);
        if let Some(thread_ts) = thread_ts {
            request = request.with_thread_ts(SlackTs::new(thread_ts.to_owned()));
        }
        let posted = session.chat_post_message(&request).await?;
        Ok(Posted {
            channel: posted.channel.0,
            ts: posted.ts.0,
        })
    }

    /// `chat.update` of the bot's message `ts`.
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        content: SlackMessageContent,
    ) -> Result<(), ApiError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId::new(channel.to_owned()),
            content,
            SlackTs::new(ts.to_owned()),
        );
        session.chat_update(&request).await?;
        Ok(())
    }

    /// The `ts` of the newest message in `channel` (of the last `limit`) whose metadata is of
    /// `event_type` and carries `key = value`: how an earlier post is found again.
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn find_by_metadata(
        &self,
        channel: &str,
        event_type: &str,
        key: &str,
        value: &str,
        limit: u16,
    ) -> Result<Option<String>, ApiError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiConversationsHistoryRequest::new()
            .with_channel(SlackChannelId::new(channel.to_owned()))
            .with_include_all_metadata(true)
            .with_limit(limit);
        let history = session.conversations_history(&request).await?;
        Ok(history
            .messages
            .into_iter()
            .find(|message| {
                message.content.metadata.as_ref().is_some_and(|metadata| {
                    metadata.event_type == event_type
                        && metadata
                            .event_payload
                            .as_ref()
                            .and_then(|payload| payload.get(key))
                            .is_some_and(|found| found == value)
                })
            })
            .map(|message| message.origin.ts.0))
    }

    /// Posts to a `response_url` (a slash command's or a button's), which Slack accepts for
    /// 30 minutes, 5 times.
    ///
    /// # Errors
    /// [`ApiError::Refused`] for a URL that is not one; [`ApiError`].
    pub async fn respond(
        &self,
        response_url: &str,
        content: SlackMessageContent,
        replace_original: bool,
    ) -> Result<(), ApiError> {
        let url = url::Url::parse(response_url)
            .map_err(|_| ApiError::Refused("the response_url is not a URL".to_owned()))?;
        let mut request = SlackApiPostWebhookMessageRequest::new(content);
        if replace_original {
            request = request.with_replace_original(true);
        }
        self.client
            .respond_to_event(&SlackResponseUrl::new(url), &request)
            .await?;
        Ok(())
    }
}

/// rustls needs one crypto provider per process; hyper-rustls and tokio-tungstenite both look
/// for it. Installing it twice is harmless (the second attempt is refused).
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}
