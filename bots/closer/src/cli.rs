//! The command line: each subcommand loads what it needs and hands over to its module.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use closer_engine::Engine;

use crate::config::Config;
use crate::{chat, database, eval, kb, server, telemetry};

/// Closer: a self-hosted AI sales assistant.
#[derive(Debug, Parser)]
#[command(name = "closer", version, about)]
pub struct Cli {
    /// The configuration file [default: config/closer.toml when it exists, else built-in defaults].
    #[arg(long, global = true, env = "CLOSER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the long-running process: migrations, the HTTP server, the channels.
    Serve,
    /// Talk to the assistant in the terminal, as a prospect would.
    Chat,
    /// Manage the knowledge base.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// Run an evaluation set through the assistant and score it.
    Eval(eval::EvalArgs),
    /// Apply the database migrations.
    Migrate,
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Import a folder of Markdown, text and CSV files; a re-import syncs changes and deletions.
    Import { dir: PathBuf },
    /// Show the passages retrieval finds for a query, with their scores.
    Search {
        query: String,
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Include internal documents, as the sales team sees them.
        #[arg(long)]
        internal: bool,
    },
}

/// Runs the command.
///
/// # Errors
/// Whatever the command fails with, with context for the user.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    let interactive_level = "warn";
    match cli.command {
        Command::Serve => {
            telemetry::init(&config.log, "info");
            let store = database::open_store(&config).await?;
            let engine = build_engine(&config, store).await?;
            let app = server::Application::build(&config.server.listen, engine).await?;
            tracing::info!(port = app.port(), "closer is serving");
            eprintln!(
                "Closer is serving on {} (health: /healthz, readiness: /readyz).",
                config.server.listen
            );
            app.run_until_stopped(server::shutdown_signal()).await
        }
        Command::Chat => {
            telemetry::init(&config.log, interactive_level);
            let store = database::open_store(&config).await?;
            let engine = build_engine(&config, store).await?;
            chat::run(&engine).await
        }
        Command::Kb { command } => {
            telemetry::init(&config.log, interactive_level);
            let store = database::open_store(&config).await?;
            match command {
                KbCommand::Import { dir } => kb::import(&store, &dir, true).await,
                KbCommand::Search {
                    query,
                    limit,
                    internal,
                } => kb::search(&config, &store, &query, limit, internal).await,
            }
        }
        Command::Eval(args) => {
            telemetry::init(&config.log, interactive_level);
            eval::run(&config, &args).await
        }
        Command::Migrate => {
            telemetry::init(&config.log, "info");
            database::open_store(&config).await?;
            println!("Migrations applied.");
            Ok(())
        }
    }
}

/// The engine every channel shares: the store, the dialog configuration and the knowledge base.
///
/// # Errors
/// The playbook or the knowledge base cannot be loaded.
pub async fn build_engine(config: &Config, store: closer_store::Store) -> anyhow::Result<Engine> {
    let dialog = closer_dialog::DialogConfig::from_toml_str(&config.playbook_text()?)
        .with_context(|| {
            format!(
                "while reading the playbook {}",
                config.resolve(&config.assistant.playbook).display()
            )
        })?;
    let knowledge = kb::load(config, &store).await?;
    Ok(Engine::new(
        store,
        dialog,
        knowledge,
        config.handoff.targets.clone(),
    ))
}
