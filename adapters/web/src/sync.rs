//! The AnythingLLM sync from the console: what `closer kb sync` last pushed (the store's
//! `anythingllm_documents`) against the documents now stored — in sync, changed since, never
//! pushed, removed since — and "Sync now", which runs the engine's
//! [`closer_engine::kb_sync::sync_workspace`] in the background, one run at a time, with its
//! progress and result kept for the page and the API.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use closer_engine::kb_sync::{pushed_hash, sync_workspace};
use closer_knowledge::anythingllm::AnythingLlm;
use closer_model::Audience;
use closer_store::StoreError;
use serde::{Deserialize, Serialize};

use crate::WebState;

/// The AnythingLLM workspace the knowledge base is pushed to, when `[anythingllm]` is
/// configured. The client should have the sync's (longer) request timeout.
#[derive(Clone)]
pub struct SyncTarget {
    pub client: AnythingLlm,
}

impl fmt::Debug for SyncTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SyncTarget")
            .field("workspace", &self.client.workspace_slug())
            .finish()
    }
}

/// Where one document stands against the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentSync {
    /// What was pushed is what is stored.
    InSync,
    /// Pushed, and changed in the store since.
    ChangedSince,
    /// A public document never pushed.
    NeverPushed,
    /// Pushed, and no longer a public document: the next sync takes it out.
    RemovedSince,
    /// An internal document: never pushed to a prospect-facing workspace.
    Internal,
}

impl DocumentSync {
    pub fn label(self) -> &'static str {
        match self {
            DocumentSync::InSync => "in sync",
            DocumentSync::ChangedSince => "changed since",
            DocumentSync::NeverPushed => "never pushed",
            DocumentSync::RemovedSince => "removed since",
            DocumentSync::Internal => "internal, not pushed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentSyncRow {
    pub source: String,
    pub status: DocumentSync,
    pub pushed_at: Option<DateTime<Utc>>,
}

/// A sync started from the console: running, or how the last one ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncRun {
    pub running: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Documents dealt with so far, of `total`.
    pub done: usize,
    pub total: usize,
    /// The document being pushed.
    pub current: Option<String>,
    /// What the finished run did ("2 added, 0 replaced, 5 unchanged, 0 removed").
    pub result: Option<String>,
    /// Why the finished run stopped; what it did before is kept and the next run resumes.
    pub error: Option<String>,
}

/// The sync status the knowledge page and `GET /api/knowledge/sync` show.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncStatus {
    pub configured: bool,
    pub workspace: Option<String>,
    pub documents: Vec<DocumentSyncRow>,
    pub in_sync: usize,
    /// Documents the next sync would push or take out.
    pub out_of_sync: usize,
    pub run: SyncRun,
}

/// The console's sync runs: one at a time, the last one's progress and result.
#[derive(Debug, Default)]
pub struct SyncRuns {
    run: Mutex<SyncRun>,
}

impl SyncRuns {
    pub fn new() -> Arc<SyncRuns> {
        Arc::new(SyncRuns::default())
    }

    pub fn current(&self) -> SyncRun {
        self.with(|run| run.clone())
    }

    fn with<T>(&self, change: impl FnOnce(&mut SyncRun) -> T) -> T {
        // A poisoned lock only means a panic mid-update of plain data.
        let mut run = match self.run.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut run)
    }
}

/// Compares what was pushed with what is stored.
///
/// # Errors
/// The store failing.
pub async fn status(state: &WebState) -> Result<SyncStatus, StoreError> {
    let run = state.sync_runs.current();
    let Some(target) = &state.config.anythingllm else {
        return Ok(SyncStatus {
            configured: false,
            workspace: None,
            documents: Vec::new(),
            in_sync: 0,
            out_of_sync: 0,
            run,
        });
    };
    let store = state.engine.store();
    let workspace = target.client.workspace_slug().to_owned();
    let mut pushed: BTreeMap<String, String> = store
        .pushed_documents(&workspace)
        .await?
        .into_iter()
        .map(|document| (document.source, document.content_hash))
        .collect();
    let mut times: BTreeMap<String, DateTime<Utc>> =
        store.pushed_times(&workspace).await?.into_iter().collect();
    let mut documents = Vec::new();
    for document in store.documents().await? {
        let was_pushed = pushed.remove(&document.source);
        let status = match (document.audience, was_pushed) {
            (Audience::Internal, None) => DocumentSync::Internal,
            (Audience::Internal, Some(_)) => DocumentSync::RemovedSince,
            (Audience::Public, None) => DocumentSync::NeverPushed,
            (Audience::Public, Some(hash)) if hash == pushed_hash(&document) => {
                DocumentSync::InSync
            }
            (Audience::Public, Some(_)) => DocumentSync::ChangedSince,
        };
        documents.push(DocumentSyncRow {
            pushed_at: times.remove(&document.source),
            source: document.source,
            status,
        });
    }
    // What is left was pushed, and its document is gone from the store.
    for source in pushed.into_keys() {
        documents.push(DocumentSyncRow {
            pushed_at: times.remove(&source),
            source,
            status: DocumentSync::RemovedSince,
        });
    }
    let in_sync = documents
        .iter()
        .filter(|row| row.status == DocumentSync::InSync)
        .count();
    let out_of_sync = documents
        .iter()
        .filter(|row| {
            matches!(
                row.status,
                DocumentSync::ChangedSince | DocumentSync::NeverPushed | DocumentSync::RemovedSince
            )
        })
        .count();
    Ok(SyncStatus {
        configured: true,
        workspace: Some(workspace),
        documents,
        in_sync,
        out_of_sync,
        run,
    })
}

/// Why a sync was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStarted {
    NotConfigured,
    AlreadyRunning,
}

impl NotStarted {
    pub fn message(self) -> &'static str {
        match self {
            NotStarted::NotConfigured => {
                "AnythingLLM is not configured: add an [anythingllm] section to the configuration"
            }
            NotStarted::AlreadyRunning => "a sync is already running",
        }
    }
}

/// Starts a sync in the background; its progress and result are in [`SyncRuns::current`].
///
/// # Errors
/// [`NotStarted`] when AnythingLLM is not configured or a sync is running.
pub fn start(state: &WebState) -> Result<(), NotStarted> {
    let target = state
        .config
        .anythingllm
        .clone()
        .ok_or(NotStarted::NotConfigured)?;
    let runs = Arc::clone(&state.sync_runs);
    let started = runs.with(|run| {
        if run.running {
            return false;
        }
        *run = SyncRun {
            running: true,
            started_at: Some(Utc::now()),
            ..SyncRun::default()
        };
        true
    });
    if !started {
        return Err(NotStarted::AlreadyRunning);
    }
    let engine = state.engine.clone();
    tokio::spawn(async move {
        let progress = |done: usize, total: usize, source: &str| {
            runs.with(|run| {
                run.done = done;
                run.total = total;
                run.current = (!source.is_empty()).then(|| source.to_owned());
            });
        };
        let outcome = sync_workspace(
            engine.store(),
            &target.client,
            engine.dialog_config(),
            progress,
        )
        .await;
        runs.with(|run| {
            run.running = false;
            run.finished_at = Some(Utc::now());
            run.current = None;
            match outcome {
                Ok(report) => {
                    run.result = Some(format!(
                        "{} added, {} replaced, {} unchanged, {} removed{}",
                        report.added.len(),
                        report.replaced.len(),
                        report.unchanged.len(),
                        report.removed.len(),
                        if report.persona_updated {
                            "; system prompt and refusal text set from the playbook"
                        } else {
                            ""
                        }
                    ));
                }
                Err(failure) => {
                    tracing::warn!(error = %failure, "the AnythingLLM sync from the console failed");
                    run.error = Some(failure.to_string());
                }
            }
        });
    });
    Ok(())
}
