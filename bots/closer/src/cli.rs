//! The command line: each subcommand loads what it needs and hands over to its module.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use closer_engine::Engine;

use crate::config::Config;
use crate::{admin, chat, database, dead_letters, eval, kb, leads, server, telemetry};

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
    /// List the leads and where each hand-off stands; `retry` queues a failed one again.
    Leads {
        #[command(subcommand)]
        command: Option<LeadsCommand>,
        /// How many of the newest leads to show.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// List the updates a channel could not process; `retry` has the running server try one
    /// again.
    DeadLetters {
        #[command(subcommand)]
        command: Option<DeadLettersCommand>,
        /// How many of the newest to show.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Apply the database migrations.
    Migrate,
    /// Manage the web console's accounts and API tokens.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a console account, or set a new password; the password is read from a prompt
    /// (or from standard input when it is not a terminal).
    Create { email: String },
    /// Create an API token for an account, for `Authorization: Bearer` calls to /api.
    Token {
        email: String,
        /// A name to recognise the token by.
        #[arg(long, default_value = "api")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LeadsCommand {
    /// Queue the failed hand-offs of a lead again (the id `closer leads` shows).
    Retry { id: String },
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Ask the running `closer serve` to process a dead letter again (the id the list shows).
    Retry { id: String },
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Import a folder of Markdown, text and CSV files; a re-import syncs changes and deletions.
    Import { dir: PathBuf },
    /// Push the knowledge base to the AnythingLLM workspace of `[anythingllm]`: changed
    /// documents replaced, deleted ones removed, the persona's prompt and refusal text set.
    Sync,
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
            serve(&config).await
        }
        Command::Chat => {
            telemetry::init(&config.log, interactive_level);
            let store = database::open_store(&config).await?;
            let engine = build_engine(&config, store).await?;
            if let Some(sync) = engine.workspace_sync() {
                // AnythingLLM answers once the workspace is known to hold the public documents.
                tokio::spawn(sync.clone().run(std::future::pending()));
            }
            chat::run(&engine).await
        }
        Command::Kb { command } => {
            telemetry::init(&config.log, interactive_level);
            let store = database::open_store(&config).await?;
            match command {
                KbCommand::Import { dir } => kb::import_and_sync(&config, &store, &dir).await,
                KbCommand::Sync => kb::sync(&config, &store).await,
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
        Command::Leads { command, limit } => {
            telemetry::init(&config.log, interactive_level);
            let store = database::open_store(&config).await?;
            match command {
                None => leads::list(&store, limit).await,
                Some(LeadsCommand::Retry { id }) => leads::retry(&store, &id).await,
            }
        }
        Command::DeadLetters { command, limit } => {
            telemetry::init(&config.log, interactive_level);
            let store = database::open_store(&config).await?;
            match command {
                None => dead_letters::list(&store, limit).await,
                Some(DeadLettersCommand::Retry { id }) => dead_letters::retry(&store, &id).await,
            }
        }
        Command::Admin { command } => {
            telemetry::init(&config.log, interactive_level);
            let store = database::open_store(&config).await?;
            match command {
                AdminCommand::Create { email } => admin::create(&store, &email).await,
                AdminCommand::Token { email, name } => admin::token(&store, &email, &name).await,
            }
        }
        Command::Migrate => {
            telemetry::init(&config.log, "info");
            database::open_store(&config).await?;
            println!("Migrations applied.");
            Ok(())
        }
    }
}

/// `closer serve`: the HTTP server and every configured channel, until Ctrl-C or SIGTERM.
/// A channel that fails for good (Telegram refusing the webhook) stops the process.
async fn serve(config: &Config) -> anyhow::Result<()> {
    let store = database::open_store(config).await?;
    let mut targets = config.handoff_targets()?;
    // Installed before anything records, so that no early sample is lost.
    let metrics = closer_web::metrics::router(config.metrics_token()?);
    let engine = build_engine(config, store.clone()).await?;
    let mut app = server::Application::build(&config.server.listen, engine.clone()).await?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let mut channels = tokio::task::JoinSet::new();
    let metrics_at = match &config.metrics.listen {
        Some(listen) => {
            let metrics = server::MetricsServer::build(listen, metrics).await?;
            channels.spawn(metrics.run_until_stopped(stopped(stopping.clone())));
            format!("{listen}/metrics")
        }
        None => {
            app = app.with_routes(metrics);
            format!("{}/metrics", config.server.listen)
        }
    };
    let telegram = config.telegram()?;
    let discord = config.discord()?;
    let slack = config.slack()?;
    if telegram.is_none() && discord.is_none() && slack.is_none() {
        eprintln!("No channel is configured (see the [telegram], [discord] and [slack] sections of config/closer.toml).");
    }
    if let Some(telegram) = telegram {
        // Shown as starting on the health page until the adapter reports its connection.
        engine.health().register("telegram");
        let telegram = closer_telegram::Telegram::connect(telegram, engine.clone())
            .await
            .context("while connecting to Telegram")?;
        eprintln!("Telegram: answering as @{}.", telegram.identity().username);
        app = app.with_routes(telegram.router());
        let shutdown = stopped(stopping.clone());
        channels.spawn(async move {
            telegram
                .run(shutdown)
                .await
                .context("the Telegram channel stopped")
        });
    }
    if let Some(discord) = discord {
        // Shown as starting on the health page until the adapter reports its connection.
        engine.health().register("discord");
        let discord = closer_discord::Discord::connect(discord, engine.clone())
            .await
            .context("while connecting to Discord")?;
        eprintln!("Discord: answering as {}.", discord.identity().username);
        app = app.with_routes(discord.router());
        let shutdown = stopped(stopping.clone());
        channels.spawn(async move {
            discord
                .run(shutdown)
                .await
                .context("the Discord channel stopped")
        });
    }
    if let Some(slack) = slack {
        // Shown as starting on the health page until the adapter reports its connection.
        engine.health().register("slack");
        let slack = closer_slack::Slack::connect(slack, engine.clone())
            .await
            .context("while connecting to Slack")?;
        eprintln!(
            "Slack: answering the team as <@{}>.",
            slack.identity().user_id
        );
        app = app.with_routes(slack.router());
        if let Some(posts) = slack.lead_posts() {
            targets.insert(
                closer_slack::LEAD_TARGET.to_owned(),
                std::sync::Arc::new(posts),
            );
        }
        let shutdown = stopped(stopping.clone());
        channels.spawn(async move {
            slack
                .run(shutdown)
                .await
                .context("the Slack channel stopped")
        });
    }
    if let Some(web) = &config.web {
        let mut channel_names = vec!["web".to_owned()];
        if config.telegram.token.is_some() || config.telegram.token_file.is_some() {
            channel_names.push("telegram".to_owned());
        }
        if config.discord.token.is_some() || config.discord.token_file.is_some() {
            channel_names.push("discord".to_owned());
        }
        if config.slack.bot_token.is_some() || config.slack.bot_token_file.is_some() {
            channel_names.push("slack".to_owned());
        }
        let target_names = targets.keys().cloned().collect();
        let web_config = web.to_web_config(channel_names, target_names);
        app = app.with_routes(closer_web::router(engine.clone(), web_config));
        if web.console {
            eprintln!("Console: /console (accounts: `closer admin create EMAIL`).");
        }
        if web.chat {
            eprintln!("Website chat: <script src=\"…/chat/widget.js\" defer></script>.");
        }
    }
    if let Some(sync) = engine.workspace_sync() {
        // The workspace is synced at start, after every change in the console, and checked on
        // a schedule; prospects get AnythingLLM's answers only while it is in sync.
        let sync = sync.clone();
        let shutdown = stopped(stopping.clone());
        channels.spawn(async move {
            sync.run(shutdown).await;
            Ok(())
        });
    }
    if !targets.is_empty() {
        let names: Vec<&str> = targets.keys().map(String::as_str).collect();
        eprintln!("Hand-off: leads go to {}.", names.join(", "));
        let worker = closer_handoff::Worker::new(
            store.clone(),
            targets,
            config.handoff.conversation_url.clone(),
        );
        let idle = std::time::Duration::from_millis(config.handoff.poll_interval_ms.max(50));
        let shutdown = stopped(stopping.clone());
        channels.spawn(async move {
            worker.run(idle, shutdown).await;
            Ok(())
        });
    }
    eprintln!(
        "Closer is serving on {} (health: /healthz, readiness: /readyz; metrics: {metrics_at}).",
        config.server.listen
    );
    tracing::info!(port = app.port(), "closer is serving");
    let server = tokio::spawn(app.run_until_stopped(stopped(stopping)));
    let mut failure = None;
    tokio::select! {
        () = server::shutdown_signal() => {}
        Some(ended) = channels.join_next() => {
            failure = match ended {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error),
                Err(error) => Some(anyhow::anyhow!("a channel crashed: {error}")),
            };
        }
    }
    let _ = stop.send(true);
    while let Some(ended) = channels.join_next().await {
        if let Ok(Err(error)) = ended {
            tracing::warn!(
                error = format!("{error:#}"),
                "a channel stopped with an error"
            );
        }
    }
    server.await.context("the HTTP server crashed")??;
    failure.map_or(Ok(()), Err)
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
    let engine = Engine::new(store, dialog, knowledge, config.handoff_routes())
        .with_task_targets(config.task_targets());
    // The playbook's examples are embedded now, not when the first prospect writes.
    engine.prepare_meaning().await;
    Ok(match config.anythingllm()? {
        Some(setup) => {
            let client = closer_knowledge::anythingllm::AnythingLlm::new(&setup.settings)
                .context("while setting up the AnythingLLM client")?;
            tracing::info!(
                workspace = client.workspace_slug(),
                deadline_ms = setup.policy.deadline.as_millis() as u64,
                "product questions are answered by AnythingLLM"
            );
            // The sync's own client has the sync's longer timeout (embedding takes a while).
            let mut sync_settings = setup.settings.clone();
            sync_settings.request_timeout = setup.sync_timeout;
            let sync_client = closer_knowledge::anythingllm::AnythingLlm::new(&sync_settings)
                .context("while setting up the AnythingLLM client")?;
            let sync = closer_engine::kb_sync::WorkspaceSync::new(
                engine.store().clone(),
                sync_client,
                engine.dialog_config().clone(),
                setup.check_every,
            );
            engine
                .with_answer_source(std::sync::Arc::new(client), setup.policy)
                .with_workspace_sync(sync)
        }
        None => engine,
    })
}
