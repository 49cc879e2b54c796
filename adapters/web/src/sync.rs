//! The AnythingLLM workspace from the console: what was last pushed (the store's
//! `anythingllm_documents`) against the documents now stored — in sync, changed since, never
//! pushed, removed since — whether the workspace answers prospects now, and "Sync now". The
//! syncing itself is the engine's [`closer_engine::kb_sync::WorkspaceSync`], which runs after
//! every change made here (upload, delete) and on its own schedule; the console starts a
//! change with [`knowledge_change`] and shows the sync's progress and result.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use closer_engine::kb_sync::{pushed_hash, ForeignDocument, KnowledgeChange};
pub use closer_engine::kb_sync::{SyncRun, WorkspaceHealth};
use closer_model::Audience;
use closer_store::StoreError;
use serde::{Deserialize, Serialize};

use crate::WebState;

/// Starts a change of the knowledge base: held across the store's write, it keeps the
/// AnythingLLM workspace from answering prospects until a sync has caught up with the change,
/// and wakes that sync when dropped. `None` when AnythingLLM is not configured.
pub fn knowledge_change(state: &WebState) -> Option<KnowledgeChange> {
    state.engine.workspace_sync().map(|sync| sync.change())
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

/// The sync status the knowledge page and `GET /api/knowledge/sync` show.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncStatus {
    pub configured: bool,
    pub workspace: Option<String>,
    /// Whether prospects' questions go to the workspace now (it holds what the store holds).
    pub answering: bool,
    /// Why they do not, when they do not.
    pub reason: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Documents Closer did not put in the workspace that syncs took out, newest first.
    pub foreign_removed: Vec<ForeignDocument>,
    pub documents: Vec<DocumentSyncRow>,
    pub in_sync: usize,
    /// Documents the next sync would push or take out.
    pub out_of_sync: usize,
    pub run: SyncRun,
}

/// Compares what was pushed with what is stored.
///
/// # Errors
/// The store failing.
pub async fn status(state: &WebState) -> Result<SyncStatus, StoreError> {
    let Some(sync) = state.engine.workspace_sync() else {
        return Ok(SyncStatus {
            configured: false,
            workspace: None,
            answering: false,
            reason: None,
            last_synced_at: None,
            foreign_removed: Vec::new(),
            documents: Vec::new(),
            in_sync: 0,
            out_of_sync: 0,
            run: SyncRun::default(),
        });
    };
    let health = sync.health();
    let store = state.engine.store();
    let workspace = health.workspace.clone();
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
        answering: health.answering,
        reason: health.reason,
        last_synced_at: health.last_synced_at,
        foreign_removed: health.foreign_removed,
        documents,
        in_sync,
        out_of_sync,
        run: health.run,
    })
}

/// Why a sync was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStarted {
    NotConfigured,
}

impl NotStarted {
    pub fn message(self) -> &'static str {
        match self {
            NotStarted::NotConfigured => {
                "AnythingLLM is not configured: add an [anythingllm] section to the configuration"
            }
        }
    }
}

/// Asks for a sync now, run in the background after the one under way, if any; its progress
/// and result are in [`status`].
///
/// # Errors
/// [`NotStarted`] when AnythingLLM is not configured.
pub fn start(state: &WebState) -> Result<(), NotStarted> {
    let sync = state
        .engine
        .workspace_sync()
        .ok_or(NotStarted::NotConfigured)?;
    sync.request_sync();
    Ok(())
}
