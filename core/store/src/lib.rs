//! The PostgreSQL store: the only crate that writes SQL.
//!
//! - [`Store`]: a connection pool, the embedded migrations (`migrations/` at the workspace
//!   root), and the reads other crates need (leads, transcripts, ratings, documents).
//! - [`turn`]: one inbound message processed exactly once — [`Store::begin_turn`] dedupes
//!   the message and locks its conversation in one transaction, and [`Turn::commit`]
//!   saves everything the dialog step produced (state, replies, a lead with its hand-off
//!   outbox rows, a rating, events) in that same transaction.
//! - [`deliveries`]: the replies' outbox of channels with a background sender — pending
//!   replies per chat in order, marked sent or failed.
//! - [`dead_letters`]: updates and events a channel could not process, kept to be seen and
//!   retried by hand instead of blocking the channel's queue.
//! - [`drafts`]: the message a channel edits while a streamed answer is written.
//! - [`embeddings`]: the cache of passage embeddings, by model and text hash.
//! - [`documents`]: the knowledge base's documents, re-imported as a sync.
//! - [`outbox`]: delivering the hand-off outbox — claims with `FOR UPDATE SKIP LOCKED`
//!   as leases, then delivered or failed with a retry time — and taking a conversation over.
//! - [`records`]: the plain types the store reads back ([`ConversationRecord`],
//!   [`OutboxEntry`], [`TranscriptLine`]).
//! - [`team`]: the sales team's tools — `/closer stats`, a lead with its hand-offs, the lead
//!   behind a Slack post, and how far a taken-over conversation is mirrored.
//! - [`activity`]: what the store committed, announced in process ([`Store::subscribe`]) to
//!   wake whoever acts on it: a channel's sender, the Slack mirror, the console.
//! - `takeover` and `tasks`: a person taking a conversation over and writing to the
//!   prospect, and tracker tasks asked for by hand, queued in the hand-off outbox.
//! - [`anythingllm`]: what `closer kb sync` pushed to AnythingLLM workspaces, and the lock that
//!   keeps two syncs of one workspace apart.
//! - [`admin`]: URL redaction, and creating or dropping a whole database.
//! - [`error`]: [`StoreError`], whose messages never carry a password.
//! - [`console`]: the web console's accounts, sessions, API tokens, conversation list and
//!   detailed transcripts, and the website chat's message feed.
//! - [`analytics`]: the dashboard's funnel, ratings, reply times and objections.
//!
//! Queries use sqlx's runtime API (no database is needed to compile), and every SQL
//! statement of Closer lives in this crate.

pub mod activity;
pub mod admin;
pub mod analytics;
pub mod anythingllm;
pub mod console;
pub mod dead_letters;
pub mod deliveries;
pub mod documents;
pub mod drafts;
pub mod embeddings;
pub mod error;
pub mod outbox;
pub mod records;
pub mod team;
pub mod turn;

mod conversations;
mod leads;
mod takeover;
mod tasks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use activity::{Activity, ActivityKind};
pub use admin::{drop_database, ensure_database, redact_url};
pub use analytics::{Dashboard, Period};
pub use anythingllm::{PushedDocument, WorkspaceSyncLock};
pub use console::{ConsoleMessage, ConversationFilter, ConversationSummary};
pub use dead_letters::DeadLetter;
pub use deliveries::PendingReply;
pub use documents::SyncReport;
pub use error::StoreError;
pub use outbox::{ClaimedHandoff, Subject};
pub use records::{ConversationRecord, Direction, OutboxEntry, OutboxStatus, TranscriptLine};
pub use takeover::PersonMessage;
pub use tasks::Recorded;
pub use team::{MirrorLine, MirrorPosition, TeamStats};
pub use turn::{Committed, Turn, TurnOutcome, TurnStart};

/// How long an operation waits for a free connection before the database counts as
/// unavailable: long enough for a busy pool, short enough for a chat user to wait.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The database of conversations, leads, their hand-off outbox and the knowledge base.
/// Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// The server's URL without a password, for [`StoreError::Unavailable`].
    shown_url: Arc<str>,
    /// Announces what was committed, to wake senders and mirrors in this process.
    activity: tokio::sync::broadcast::Sender<Activity>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.shown_url)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to the database at `url` with at most `max_connections` connections,
    /// opening one at once so that an unreachable server is reported here.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] names the URL without its password when the server is
    /// unreachable or refuses us; [`StoreError::InvalidUrl`] when the URL does not parse.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        let options = PgConnectOptions::from_str(url)
            .map_err(|error| StoreError::from_sqlx(error, &shown))?;
        // One direct attempt first: the pool retries a refused connection until its
        // acquire timeout, and an unreachable server should be reported at once.
        let probe = options
            .connect()
            .await
            .map_err(|error| StoreError::from_sqlx(error, &shown))?;
        // Closing politely; the probe's outcome is already known.
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|error| StoreError::from_sqlx(error, &shown))?;
        Ok(Store::new(pool, shown))
    }

    /// Wraps an existing pool, e.g. the one `#[sqlx::test]` provides.
    pub fn from_pool(pool: PgPool) -> Store {
        let options = pool.connect_options();
        let database = options.get_database().unwrap_or_default();
        let shown = format!(
            "postgres://{}@{}:{}/{database}",
            options.get_username(),
            options.get_host(),
            options.get_port()
        );
        Store::new(pool, shown)
    }

    fn new(pool: PgPool, shown_url: String) -> Store {
        let (activity, _) = tokio::sync::broadcast::channel(activity::CAPACITY);
        Store {
            pool,
            shown_url: shown_url.into(),
            activity,
        }
    }

    /// Listens to what this store commits from now on (in this process). See [`activity`]:
    /// a listener resyncs from the store when it starts and when it lags.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Activity> {
        self.activity.subscribe()
    }

    /// Announces a committed change; nobody listening is fine.
    pub(crate) fn announce(&self, activity: Activity) {
        let _ = self.activity.send(activity);
    }

    /// The underlying pool, for tests and for crates that need a raw connection.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Checks that the database answers, for readiness probes.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|error| self.error(error))
    }

    /// Applies the embedded migrations that have not been applied yet.
    ///
    /// # Errors
    /// [`StoreError::Migrate`] when a migration fails or the database holds migrations this
    /// build does not know (a newer Closer ran against it).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations")
            .run(&self.pool)
            .await
            .map_err(|error| match error {
                sqlx::migrate::MigrateError::Execute(inner) if is_unavailable(&inner) => {
                    self.error(inner)
                }
                other => StoreError::Migrate(other),
            })
    }

    /// Classifies an error of an operation on this store's database.
    pub(crate) fn error(&self, error: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(error, &self.shown_url)
    }
}

fn is_unavailable(error: &sqlx::Error) -> bool {
    error::unavailable_reason(error).is_some()
}
