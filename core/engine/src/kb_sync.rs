//! The knowledge base pushed to AnythingLLM: [`sync_workspace`] makes a workspace hold exactly
//! the public documents of the stored knowledge base, and gives it the persona's system prompt
//! and refusal text; [`WorkspaceSync`] keeps it that way while Closer runs, and tells the engine
//! whether the workspace may answer prospects.
//!
//! What was pushed is tracked in the store (document → hash of what was pushed → AnythingLLM's
//! location), not in the workspace: the store is Closer's one source of truth, a lookup is one
//! query instead of listing and parsing every document's metadata, and the hash covers exactly
//! what Closer sent. The workspace is still consulted: a tracked document whose location is no
//! longer embedded (someone removed it in the UI) is pushed again, and every embedded document
//! that nothing tracks is taken out — one of Closer's (recognised by its author,
//! [`CLOSER_AUTHOR`]) left by a sync that crashed between embedding and recording, or one that
//! someone else put there, which would otherwise answer prospects with text nobody marked
//! public. Each document is uploaded, embedded (verified) and recorded one at a time, so an
//! interrupted sync resumes where it stopped; two syncs of one workspace never overlap (the
//! store's [`closer_store::WorkspaceSyncLock`]).
//!
//! **Internal stays internal.** A workspace that does not hold exactly the store's public
//! documents must not answer a prospect. [`WorkspaceSync`] counts changes to the knowledge base
//! (every console upload and delete, before and after the store's write) and trusts the
//! workspace only when a sync that started after the last change has finished without error;
//! until then the engine does not ask AnythingLLM and the built-in retriever, which reads only
//! public documents, answers. It syncs at start, on every change, and every `check_every`
//! (which also catches documents added in AnythingLLM's own UI and changes made by `closer kb
//! import` in another process).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use closer_dialog::DialogConfig;
use closer_knowledge::anythingllm::{
    AnythingLlm, AnythingLlmError, DocumentMetadata, Workspace, CLOSER_AUTHOR,
};
use closer_model::{Audience, KnowledgeDocument, Lang};
use closer_store::{PushedDocument, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

/// Why a sync stopped. What was done before it is recorded: the next run goes on from there.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the workspace {0:?} does not exist in AnythingLLM: create it first")]
    NoWorkspace(String),
    #[error(transparent)]
    AnythingLlm(#[from] AnythingLlmError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a sync did, by document source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KbSyncReport {
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
    /// Documents of Closer's in the workspace that nothing tracked, taken out.
    pub strays_removed: usize,
    /// Documents Closer did not put in the workspace (by title), taken out of it: prospects
    /// must be answered only from the store's public documents.
    pub foreign_removed: Vec<String>,
    /// Whether the system prompt or the refusal text had to be set.
    pub persona_updated: bool,
}

impl KbSyncReport {
    /// Whether the sync changed anything.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty()
            && self.replaced.is_empty()
            && self.removed.is_empty()
            && self.strays_removed == 0
            && self.foreign_removed.is_empty()
            && !self.persona_updated)
    }

    /// What the sync did, in a line: "2 added, 0 replaced, 5 unchanged, 0 removed".
    pub fn summary(&self) -> String {
        let mut summary = format!(
            "{} added, {} replaced, {} unchanged, {} removed",
            self.added.len(),
            self.replaced.len(),
            self.unchanged.len(),
            self.removed.len(),
        );
        if self.strays_removed > 0 {
            summary.push_str(&format!(
                ", {} left over by an interrupted sync removed",
                self.strays_removed
            ));
        }
        if !self.foreign_removed.is_empty() {
            summary.push_str(&format!(
                ", {} not put there by Closer taken out ({})",
                self.foreign_removed.len(),
                self.foreign_removed.join(", ")
            ));
        }
        if self.persona_updated {
            summary.push_str("; system prompt and refusal text set from the playbook");
        }
        summary
    }
}

/// The workspace's system prompt, from the playbook's persona.
pub fn system_prompt(dialog: &DialogConfig) -> String {
    let persona = &dialog.persona;
    format!(
        "You are {assistant_en} ({assistant_ru}), the virtual sales assistant of {company}. \
         Answer prospects' questions about {company}'s products, prices, implementation and terms \
         using only the provided context. Reply in the language of the question (Russian or \
         English), briefly: at most 600 characters, no headings. Tone: {tone} If the context does \
         not contain the answer, say that you do not know; never invent facts, prices, dates or \
         promises.",
        assistant_en = persona.assistant_name.get(Lang::En),
        assistant_ru = persona.assistant_name.get(Lang::Ru),
        company = persona.company_name.get(Lang::En),
        tone = persona.tone.trim(),
    )
}

/// The workspace's refusal text: the playbook's decline, in both languages. Closer recognises a
/// refusal by its shape, not its text, and replies with its own decline and button anyway.
pub fn refusal_text(dialog: &DialogConfig) -> String {
    let decline = &dialog.phrases.decline;
    format!("{}\n\n{}", decline.get(Lang::Ru), decline.get(Lang::En))
}

/// The hash of what is pushed for a document: its title, source and text. The console compares
/// it with what the store says was pushed to tell a document in sync from one changed since.
pub fn pushed_hash(document: &KnowledgeDocument) -> String {
    let mut hasher = Sha256::new();
    for part in [&document.title, &document.source, &document.content] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

/// Makes the client's workspace hold exactly the store's public documents: pushes what is new
/// or changed, takes out what is no longer public, and takes out every document nothing
/// tracks. `progress(done, total, source)` is called as each document is dealt with.
///
/// # Errors
/// [`SyncError::NoWorkspace`]; AnythingLLM or the store failing (what was done is kept).
pub async fn sync_workspace(
    store: &Store,
    client: &AnythingLlm,
    dialog: &DialogConfig,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<KbSyncReport, SyncError> {
    let slug = client.workspace_slug().to_owned();
    // Held to the end: the documents, what was pushed and the workspace are read and changed
    // by one sync at a time.
    let _one_at_a_time = store.lock_workspace_sync(&slug).await?;
    let workspace = client
        .workspace()
        .await?
        .ok_or_else(|| SyncError::NoWorkspace(slug.clone()))?;
    // Internal documents (the sales team's notes) never go to a prospect-facing workspace.
    let documents: Vec<KnowledgeDocument> = store
        .documents()
        .await?
        .into_iter()
        .filter(|document| document.audience == Audience::Public)
        .collect();
    let mut pushed: BTreeMap<String, PushedDocument> = store
        .pushed_documents(&slug)
        .await?
        .into_iter()
        .map(|document| (document.source.clone(), document))
        .collect();
    let mut report = KbSyncReport::default();
    let mut embedded = workspace.clone();
    let wanted: BTreeSet<&str> = documents
        .iter()
        .map(|document| document.source.as_str())
        .collect();
    let total = documents.len()
        + pushed
            .keys()
            .filter(|source| !wanted.contains(source.as_str()))
            .count();
    let mut done = 0;

    for document in &documents {
        progress(done, total, &document.source);
        let hash = pushed_hash(document);
        let previous = pushed.remove(&document.source);
        if let Some(previous) = &previous {
            if previous.content_hash == hash && embedded.embeds(&previous.location) {
                report.unchanged.push(document.source.clone());
                done += 1;
                continue;
            }
        }
        let stored = client
            .upload_raw_text(
                &document.content,
                &DocumentMetadata {
                    title: &document.title,
                    source: &document.source,
                    description: "Closer knowledge base",
                },
            )
            .await?;
        let deletes: Vec<String> = previous
            .iter()
            .map(|previous| previous.location.clone())
            .filter(|location| embedded.embeds(location))
            .collect();
        embedded = client
            .update_embeddings(std::slice::from_ref(&stored.location), &deletes)
            .await?;
        store
            .record_pushed_document(
                &slug,
                &PushedDocument {
                    source: document.source.clone(),
                    content_hash: hash,
                    location: stored.location,
                },
            )
            .await?;
        remove_files(client, &deletes).await;
        if previous.is_some() {
            report.replaced.push(document.source.clone());
        } else {
            report.added.push(document.source.clone());
        }
        done += 1;
    }

    // What is left was pushed once and is no longer in the knowledge base.
    for (source, previous) in pushed {
        progress(done, total, &source);
        if embedded.embeds(&previous.location) {
            embedded = client
                .update_embeddings(&[], std::slice::from_ref(&previous.location))
                .await?;
            remove_files(client, std::slice::from_ref(&previous.location)).await;
        }
        store.forget_pushed_document(&slug, &source).await?;
        report.removed.push(source);
        done += 1;
    }
    progress(done, total, "");

    let untracked = remove_untracked(store, client, &slug, &embedded).await?;
    report.strays_removed = untracked.strays;
    report.foreign_removed = untracked.foreign;

    let prompt = system_prompt(dialog);
    let refusal = refusal_text(dialog);
    if workspace.system_prompt.as_deref() != Some(prompt.as_str())
        || workspace.refusal_text.as_deref() != Some(refusal.as_str())
    {
        client.update_workspace(&prompt, &refusal).await?;
        report.persona_updated = true;
    }
    Ok(report)
}

/// What [`remove_untracked`] took out.
struct Untracked {
    strays: usize,
    foreign: Vec<String>,
}

/// Takes out of the workspace every embedded document no row tracks. Closer's own (left by an
/// interrupted sync) have their files deleted too; a document someone else put there is only
/// taken out of this workspace, as its file is not Closer's and may serve other workspaces.
async fn remove_untracked(
    store: &Store,
    client: &AnythingLlm,
    slug: &str,
    workspace: &Workspace,
) -> Result<Untracked, SyncError> {
    let tracked: BTreeSet<String> = store
        .pushed_documents(slug)
        .await?
        .into_iter()
        .map(|document| document.location)
        .collect();
    let (strays, foreign): (Vec<_>, Vec<_>) = workspace
        .documents
        .iter()
        .filter(|document| !tracked.contains(&document.location))
        .partition(|document| document.author.as_deref() == Some(CLOSER_AUTHOR));
    let strays: Vec<String> = strays
        .into_iter()
        .map(|document| document.location.clone())
        .collect();
    let foreign_locations: Vec<String> = foreign
        .iter()
        .map(|document| document.location.clone())
        .collect();
    let foreign_names: Vec<String> = foreign
        .iter()
        .map(|document| {
            document
                .title
                .clone()
                .or_else(|| document.source.clone())
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| document.location.clone())
        })
        .collect();
    if strays.is_empty() && foreign_locations.is_empty() {
        return Ok(Untracked {
            strays: 0,
            foreign: Vec::new(),
        });
    }
    let deletes: Vec<String> = strays.iter().chain(&foreign_locations).cloned().collect();
    // Verified: a document that stays embedded fails the sync, so the workspace is not trusted.
    client.update_embeddings(&[], &deletes).await?;
    if !foreign_names.is_empty() {
        tracing::warn!(
            workspace = slug,
            documents = ?foreign_names,
            "documents Closer did not put in the AnythingLLM workspace were taken out of it"
        );
    }
    remove_files(client, &strays).await;
    Ok(Untracked {
        strays: strays.len(),
        foreign: foreign_names,
    })
}

/// Deletes the stored files of documents taken out of the workspace. Best effort: a file left
/// behind is only disk space, and the next upload stores a new one anyway.
async fn remove_files(client: &AnythingLlm, locations: &[String]) {
    if let Err(error) = client.remove_documents(locations).await {
        tracing::warn!(%error, "could not delete replaced documents' files from AnythingLLM");
    }
}

/// A sync run as the console shows it: running, or how the last one ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRun {
    pub running: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Documents dealt with so far, of `total`.
    pub done: usize,
    pub total: usize,
    /// The document being pushed.
    pub current: Option<String>,
    /// What the finished run did ([`KbSyncReport::summary`]).
    pub result: Option<String>,
    /// Why the finished run stopped; what it did before is kept and the next run resumes.
    pub error: Option<String>,
}

/// A document Closer did not put in the workspace, and when a sync took it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignDocument {
    pub title: String,
    pub removed_at: DateTime<Utc>,
}

/// Where the workspace stands, for the console's health and knowledge pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceHealth {
    pub workspace: String,
    /// Whether prospects' questions go to AnythingLLM now.
    pub answering: bool,
    /// Why they do not, when they do not.
    pub reason: Option<String>,
    /// When a sync last finished without error.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// The documents Closer did not put there that syncs took out, newest first.
    pub foreign_removed: Vec<ForeignDocument>,
    /// The current or last sync run.
    pub run: SyncRun,
}

/// How many taken-out foreign documents the health page remembers.
const FOREIGN_KEPT: usize = 20;

#[derive(Debug, Default)]
struct KeeperState {
    /// Bumped by every change of the knowledge base.
    changes: u64,
    /// The change count the last successful sync started at; `None` before one, or after a
    /// failure (the workspace may then hold anything).
    synced_at_change: Option<u64>,
    last_synced_at: Option<DateTime<Utc>>,
    foreign_removed: Vec<ForeignDocument>,
    run: SyncRun,
}

/// Keeps one AnythingLLM workspace holding exactly the store's public documents while Closer
/// runs, and says whether it may answer prospects (see the module's documentation).
pub struct WorkspaceSync {
    store: Store,
    /// A client with the sync's (longer) request timeout: embedding a document takes a while.
    client: AnythingLlm,
    dialog: Arc<DialogConfig>,
    /// How often the workspace is checked when nothing changes in this process.
    check_every: Duration,
    state: Mutex<KeeperState>,
    /// Wakes the loop of [`WorkspaceSync::run`]; a wake-up during a run makes another run.
    wake: Notify,
    /// One run at a time in this process (the store's lock keeps processes apart).
    runs: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for WorkspaceSync {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WorkspaceSync")
            .field("workspace", &self.client.workspace_slug())
            .field("check_every", &self.check_every)
            .finish_non_exhaustive()
    }
}

/// A change of the knowledge base under way: the workspace is not trusted from the moment it
/// is made until a sync started after it is dropped has finished. Made before the store's
/// write and dropped after it, so no question is answered from the old workspace in between.
#[must_use = "the change ends, and the sync is woken, when this is dropped"]
pub struct KnowledgeChange {
    sync: Arc<WorkspaceSync>,
}

impl Drop for KnowledgeChange {
    fn drop(&mut self) {
        self.sync.bump();
        self.sync.wake.notify_one();
    }
}

impl WorkspaceSync {
    /// Keeps `client`'s workspace in step with `store`; nothing runs until
    /// [`WorkspaceSync::run`] (or [`WorkspaceSync::sync_now`]) is called, and until a sync has
    /// finished the workspace does not answer prospects.
    pub fn new(
        store: Store,
        client: AnythingLlm,
        dialog: DialogConfig,
        check_every: Duration,
    ) -> Arc<WorkspaceSync> {
        Arc::new(WorkspaceSync {
            store,
            client,
            dialog: Arc::new(dialog),
            check_every: check_every.max(Duration::from_millis(100)),
            state: Mutex::new(KeeperState::default()),
            wake: Notify::new(),
            runs: tokio::sync::Mutex::new(()),
        })
    }

    pub fn workspace_slug(&self) -> &str {
        self.client.workspace_slug()
    }

    fn with<T>(&self, change: impl FnOnce(&mut KeeperState) -> T) -> T {
        // A poisoned lock only means a panic mid-update of plain data.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut state)
    }

    fn bump(&self) {
        self.with(|state| state.changes += 1);
    }

    /// Whether the workspace holds what the store holds now: a sync that started after the
    /// last change finished without error. The engine asks AnythingLLM only then.
    pub fn may_answer(&self) -> bool {
        self.with(|state| state.synced_at_change == Some(state.changes))
    }

    /// Starts a change of the knowledge base (see [`KnowledgeChange`]).
    pub fn change(self: &Arc<Self>) -> KnowledgeChange {
        self.bump();
        KnowledgeChange {
            sync: Arc::clone(self),
        }
    }

    /// Asks the running loop for a sync now ("Sync now"); it runs after the one under way.
    pub fn request_sync(&self) {
        self.wake.notify_one();
    }

    /// Where the workspace stands.
    pub fn health(&self) -> WorkspaceHealth {
        self.with(|state| {
            let answering = state.synced_at_change == Some(state.changes);
            let reason = if answering {
                None
            } else if state.run.running {
                Some("a sync is running; the built-in retriever answers until it has finished".to_owned())
            } else if let Some(error) = &state.run.error {
                Some(format!(
                    "the last sync failed ({error}); the built-in retriever answers until a sync succeeds"
                ))
            } else if state.synced_at_change.is_none() {
                Some("not synced yet; the built-in retriever answers until the first sync has finished".to_owned())
            } else {
                Some("the knowledge base changed since the last sync; the built-in retriever answers until the next one has finished".to_owned())
            };
            WorkspaceHealth {
                workspace: self.client.workspace_slug().to_owned(),
                answering,
                reason,
                last_synced_at: state.last_synced_at,
                foreign_removed: state.foreign_removed.clone(),
                run: state.run.clone(),
            }
        })
    }

    /// Syncs the workspace once, after any run under way, and records how it went.
    ///
    /// # Errors
    /// As [`sync_workspace`]; the workspace is then not trusted until a sync succeeds.
    pub async fn sync_now(&self) -> Result<KbSyncReport, SyncError> {
        let _turn = self.runs.lock().await;
        // Read after taking the turn and before reading the store: a change made after this
        // point bumps the count again, so this run cannot vouch for it.
        let started_at_change = self.with(|state| {
            state.run = SyncRun {
                running: true,
                started_at: Some(Utc::now()),
                ..SyncRun::default()
            };
            state.changes
        });
        let outcome = sync_workspace(
            &self.store,
            &self.client,
            &self.dialog,
            |done, total, source| {
                self.with(|state| {
                    state.run.done = done;
                    state.run.total = total;
                    state.run.current = (!source.is_empty()).then(|| source.to_owned());
                });
            },
        )
        .await;
        let now = Utc::now();
        self.with(|state| {
            state.run.running = false;
            state.run.finished_at = Some(now);
            state.run.current = None;
            match &outcome {
                Ok(report) => {
                    state.synced_at_change = Some(started_at_change);
                    state.last_synced_at = Some(now);
                    state.run.result = Some(report.summary());
                    for title in &report.foreign_removed {
                        state.foreign_removed.insert(
                            0,
                            ForeignDocument {
                                title: title.clone(),
                                removed_at: now,
                            },
                        );
                    }
                    state.foreign_removed.truncate(FOREIGN_KEPT);
                }
                Err(error) => {
                    state.synced_at_change = None;
                    state.run.error = Some(error.to_string());
                }
            }
        });
        match &outcome {
            Ok(report) if report.changed() => tracing::info!(
                workspace = self.client.workspace_slug(),
                result = report.summary(),
                "the AnythingLLM workspace was synced"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(
                workspace = self.client.workspace_slug(),
                %error,
                "the AnythingLLM workspace could not be synced; the built-in retriever answers prospects until it is"
            ),
        }
        outcome
    }

    /// Syncs at once, then after every change and request, and every `check_every`, until
    /// `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = self.sync_now() => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.check_every) => {}
            }
        }
    }
}
