//! `closer admin create EMAIL` and `closer admin token EMAIL`: console accounts and API tokens.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use closer_store::Store;

/// Creates a console account (or sets a new password for it), the password from a prompt
/// without echo, or from the first line of standard input when it is not a terminal.
///
/// # Errors
/// The password cannot be read, is too short or does not match its confirmation; the store fails.
pub async fn create(store: &Store, email: &str) -> anyhow::Result<()> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {email}: "))
            .context("while reading the password")?;
        let again = rpassword::prompt_password("The same password again: ")
            .context("while reading the password")?;
        anyhow::ensure!(
            first == again,
            "the two passwords differ; nothing was changed"
        );
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("while reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    let created = closer_web::auth::create_account(store, email, &password).await?;
    if created {
        println!(
            "Created the console account {email}. Sign in at /console on Closer's HTTP server."
        );
    } else {
        println!("Set a new password for {email}; its sessions are signed out.");
    }
    Ok(())
}

/// Creates an API token for an account and prints it once.
///
/// # Errors
/// No such account; the store fails.
pub async fn token(store: &Store, email: &str, name: &str) -> anyhow::Result<()> {
    let token = closer_web::auth::create_api_token(store, email, name).await?;
    println!("{token}");
    eprintln!(
        "An API token for {email} ({name}). It is shown once; send it as `Authorization: Bearer <token>` to /api/..."
    );
    Ok(())
}
