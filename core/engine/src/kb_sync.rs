//! `closer kb sync`: makes an AnythingLLM workspace hold exactly the public documents of the
//! stored knowledge base, and gives it the persona's system prompt and refusal text.
//!
//! What was pushed is tracked in the store (document → hash of what was pushed → AnythingLLM's
//! location), not in the workspace: the store is Closer's one source of truth, a lookup is one
//! query instead of listing and parsing every document's metadata, and the hash covers exactly
//! what Closer sent. The workspace is still consulted: a tracked document whose location is no
//! longer embedded (someone removed it in the UI) is pushed again, and a document of Closer's
//! (recognised by its author, [`CLOSER_AUTHOR`]) that nothing tracks — left by a sync that
//! crashed between embedding and recording — is taken out. Each document is uploaded, embedded
//! (verified) and recorded one at a time, so an interrupted sync resumes where it stopped.

use std::collections::{BTreeMap, BTreeSet};

use closer_dialog::DialogConfig;
use closer_knowledge::anythingllm::{
    AnythingLlm, AnythingLlmError, DocumentMetadata, Workspace, CLOSER_AUTHOR,
};
use closer_model::{Audience, KnowledgeDocument, Lang};
use closer_store::{PushedDocument, Store, StoreError};
use sha2::{Digest, Sha256};

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
            && !self.persona_updated)
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

/// Pushes the store's public documents to the client's workspace; `progress(done, total,
/// source)` is called as each document is dealt with.
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

    report.strays_removed = remove_strays(store, client, &slug, &embedded).await?;

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

/// Takes out documents of Closer's that no row tracks.
async fn remove_strays(
    store: &Store,
    client: &AnythingLlm,
    slug: &str,
    workspace: &Workspace,
) -> Result<usize, SyncError> {
    let tracked: BTreeSet<String> = store
        .pushed_documents(slug)
        .await?
        .into_iter()
        .map(|document| document.location)
        .collect();
    let strays: Vec<String> = workspace
        .documents
        .iter()
        .filter(|document| document.author.as_deref() == Some(CLOSER_AUTHOR))
        .map(|document| document.location.clone())
        .filter(|location| !tracked.contains(location))
        .collect();
    if !strays.is_empty() {
        client.update_embeddings(&[], &strays).await?;
        remove_files(client, &strays).await;
    }
    Ok(strays.len())
}

/// Deletes the stored files of documents taken out of the workspace. Best effort: a file left
/// behind is only disk space, and the next upload stores a new one anyway.
async fn remove_files(client: &AnythingLlm, locations: &[String]) {
    if let Err(error) = client.remove_documents(locations).await {
        tracing::warn!(%error, "could not delete replaced documents' files from AnythingLLM");
    }
}
