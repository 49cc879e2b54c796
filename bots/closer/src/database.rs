//! Connecting to PostgreSQL: the configured URL or a local database provisioned on first use.

use anyhow::Context;
use closer_store::Store;

use crate::config::{expose, Config};

/// Connects to the configured database, creating it when it does not exist yet, and applies
/// the migrations. Says on stderr when it falls back to, or creates, the local database.
///
/// # Errors
/// The server is unreachable or refuses us (the message names the URL without its password),
/// or a migration fails.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let (url, is_default) = config.database_url()?;
    let url = expose(&url);
    let shown = closer_store::redact_url(url);
    if is_default {
        eprintln!("No database configured (database.url or CLOSER__DATABASE__URL): using the local PostgreSQL at {shown}.");
    }
    let created = closer_store::ensure_database(url).await.map_err(|error| {
        anyhow::anyhow!(
            "{error}. Start PostgreSQL there, or set CLOSER__DATABASE__URL to a server you can reach."
        )
    })?;
    if created {
        eprintln!("Created the database at {shown}.");
    }
    let store = Store::connect(url, config.database.max_connections)
        .await
        .with_context(|| format!("while connecting to {shown}"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("while applying the migrations to {shown}"))?;
    Ok(store)
}
