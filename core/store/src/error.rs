//! The store's errors: variants a caller can act on, with messages that never carry secrets.

/// Why a store operation failed.
///
/// `Display` never includes a password or a stored value: it is safe to log. It may still
/// name tables or constraints, so show [`StoreError::user_message`] to end users instead.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The server cannot be reached, refused the connection, the pool timed out or the
    /// connection was lost. Retrying later may succeed.
    #[error("the database at {url} is unavailable: {reason}")]
    Unavailable {
        /// The server's URL with its password replaced by `***`.
        url: String,
        /// What went wrong, e.g. "connection refused"; never a secret.
        reason: String,
    },
    /// The database URL cannot be parsed or misses a part the operation needs.
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The caller passed something the store refuses, e.g. a rating outside 1..=5 or two
    /// knowledge-base documents with the same source. Nothing was written.
    #[error("rejected by the store: {reason}")]
    Rejected { reason: String },
    /// The embedded migrations could not be applied.
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A stored value does not parse back, e.g. a phone number or an enum name.
    #[error("corrupt stored value: {what}")]
    Corrupt { what: String },
    /// Any other database failure.
    #[error("unexpected database error: {0}")]
    Unexpected(#[source] sqlx::Error),
}

impl StoreError {
    /// A short message fit for an end user's screen: no SQL, no URL, no values.
    pub fn user_message(&self) -> &'static str {
        match self {
            StoreError::Unavailable { .. } => {
                "The database is unavailable right now; please try again later."
            }
            StoreError::InvalidUrl { .. } => "The database URL in the configuration is invalid.",
            StoreError::Rejected { .. } => "The request was rejected as invalid.",
            StoreError::Migrate(_) => "The database schema could not be updated.",
            StoreError::Corrupt { .. } | StoreError::Unexpected(_) => "An internal error occurred.",
        }
    }

    /// Whether the same operation may succeed when retried later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// Classifies a sqlx error from an operation on the database at `url` (already redacted).
    pub(crate) fn from_sqlx(error: sqlx::Error, url: &str) -> StoreError {
        if let Some(reason) = unavailable_reason(&error) {
            return StoreError::Unavailable {
                url: url.to_owned(),
                reason,
            };
        }
        match error {
            sqlx::Error::Configuration(cause) => StoreError::InvalidUrl {
                url: url.to_owned(),
                reason: cause.to_string(),
            },
            sqlx::Error::Decode(cause) => StoreError::Corrupt {
                what: cause.to_string(),
            },
            sqlx::Error::ColumnDecode { index, source } => StoreError::Corrupt {
                what: format!("column {index}: {source}"),
            },
            other => StoreError::Unexpected(other),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
        StoreError::Corrupt { what: what.into() }
    }
}

/// Why the error means the server is out of reach, or `None` when it is some other failure.
pub(crate) fn unavailable_reason(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Io(io) => Some(io.to_string()),
        sqlx::Error::Tls(tls) => Some(format!("TLS: {tls}")),
        sqlx::Error::PoolTimedOut => Some("timed out waiting for a connection".to_owned()),
        sqlx::Error::PoolClosed => Some("the connection pool is closed".to_owned()),
        sqlx::Error::WorkerCrashed => Some("the connection worker crashed".to_owned()),
        sqlx::Error::Protocol(message) => Some(format!("protocol error: {message}")),
        sqlx::Error::Database(database) => {
            let code = database.code()?;
            // Class 08: connection exceptions; 28: authorization (a wrong password or
            // user); 3D000: the database does not exist; 53300: too many connections;
            // 57P01..57P03: the server is shutting down or starting up.
            let unreachable = code.starts_with("08")
                || code.starts_with("28")
                || matches!(
                    code.as_ref(),
                    "3D000" | "53300" | "57P01" | "57P02" | "57P03"
                );
            unreachable.then(|| database.message().to_owned())
        }
        _ => None,
    }
}
