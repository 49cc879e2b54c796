//! Database administration: URL redaction, and creating or dropping a whole database
//! (first-run provisioning, and a fresh database per `closer eval` run).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::error::StoreError;

/// The database every PostgreSQL server has, used to create or drop other databases.
const MAINTENANCE_DATABASE: &str = "postgres";

/// `url` with its password (in the authority or as a `password=` query parameter) replaced
/// by `***`, fit for logs and error messages. A text that is not a URL is not shown at all.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparsable database URL>".to_owned();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return "<unparsable database URL>".to_owned();
    }
    if parsed.query_pairs().any(|(key, _)| key == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "password" {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Creates the database `url` names when it does not exist, connecting to the same
/// server's `postgres` database to do so. Returns whether it was created.
///
/// Two callers racing to create the same database both succeed; one of them gets `true`.
///
/// # Errors
/// [`StoreError::InvalidUrl`] when the URL does not parse; [`StoreError::Unavailable`]
/// when the server cannot be reached or refuses us; [`StoreError::Unexpected`] when, for
/// example, the user may not create databases.
pub async fn ensure_database(url: &str) -> Result<bool, StoreError> {
    let shown = redact_url(url);
    let (options, name) = target_database(url, &shown)?;
    let mut connection = maintenance_connection(&options, &shown).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut connection)
            .await
            .map_err(|error| StoreError::from_sqlx(error, &shown))?;
    if exists {
        return Ok(false);
    }
    let created = match sqlx::query(&format!("CREATE DATABASE {}", quote_identifier(&name)))
        .execute(&mut connection)
        .await
    {
        Ok(_) => true,
        // 42P04 duplicate_database: someone else created it in the meantime.
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P04") => false,
        Err(error) => return Err(StoreError::from_sqlx(error, &shown)),
    };
    // Closing politely; a failure here changes nothing about the database.
    let _ = connection.close().await;
    Ok(created)
}

/// Drops the database `url` names, if it exists, disconnecting its sessions first
/// (`WITH (FORCE)`).
///
/// # Errors
/// [`StoreError::Rejected`] for the server's maintenance or template databases;
/// otherwise as [`ensure_database`].
pub async fn drop_database(url: &str) -> Result<(), StoreError> {
    let shown = redact_url(url);
    let (options, name) = target_database(url, &shown)?;
    if matches!(
        name.as_str(),
        MAINTENANCE_DATABASE | "template0" | "template1"
    ) {
        return Err(StoreError::Rejected {
            reason: format!("refusing to drop the database {name:?}"),
        });
    }
    let mut connection = maintenance_connection(&options, &shown).await?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_identifier(&name)
    ))
    .execute(&mut connection)
    .await
    .map_err(|error| StoreError::from_sqlx(error, &shown))?;
    let _ = connection.close().await;
    Ok(())
}

/// The connection options of `url` and the name of the database it points at (PostgreSQL's
/// default, the user name, when the URL names none).
fn target_database(url: &str, shown: &str) -> Result<(PgConnectOptions, String), StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|error| StoreError::InvalidUrl {
        url: shown.to_owned(),
        reason: match error {
            sqlx::Error::Configuration(cause) => cause.to_string(),
            other => other.to_string(),
        },
    })?;
    let name = options
        .get_database()
        .unwrap_or_else(|| options.get_username())
        .to_owned();
    if name.is_empty() {
        return Err(StoreError::InvalidUrl {
            url: shown.to_owned(),
            reason: "it names no database".to_owned(),
        });
    }
    Ok((options, name))
}

async fn maintenance_connection(
    options: &PgConnectOptions,
    shown: &str,
) -> Result<PgConnection, StoreError> {
    options
        .clone()
        .database(MAINTENANCE_DATABASE)
        .connect()
        .await
        .map_err(|error| StoreError::from_sqlx(error, shown))
}

/// A PostgreSQL identifier in double quotes, inner quotes doubled: safe for any name.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        let table = [
            (
                "postgres://closer:s3cret@db:5432/closer",
                "postgres://closer:***@db:5432/closer",
            ),
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            (
                "postgres://u@h/d?sslmode=require&password=s3cret",
                "postgres://u@h/d?sslmode=require&password=***",
            ),
            ("host=db password=s3cret", "<unparsable database URL>"),
        ];
        for (url, expected) in table {
            assert_eq!(redact_url(url), expected, "{url}");
        }
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_identifier("closer_eval"), "\"closer_eval\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
