//! The `closer` application: configuration, wiring and the subcommands.
//!
//! - [`config`] — the TOML file, environment overrides, secrets.
//! - [`database`] — connecting to (and provisioning) PostgreSQL.
//! - [`kb`] — `closer kb import` and `closer kb search`, and loading the knowledge base.
//! - [`chat`] — `closer chat` in the terminal.
//! - [`eval`] — `closer eval` on an evaluation set.
//! - [`leads`] — `closer leads` and `closer leads retry`.
//! - [`dead_letters`] — `closer dead-letters` and `closer dead-letters retry`.
//! - [`server`] — `closer serve`, the HTTP server.
//! - [`cli`] — the command line and what each command wires together.
//! - [`telemetry`] — logging.
//! - [`admin`] — `closer admin create` and `closer admin token` (console accounts).

pub mod admin;
pub mod chat;
pub mod cli;
pub mod config;
pub mod database;
pub mod dead_letters;
pub mod embeddings;
pub mod eval;
pub mod kb;
pub mod leads;
pub mod server;
pub mod telemetry;
