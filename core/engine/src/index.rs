//! Building the knowledge index: the retriever over the stored documents and, when an embedding
//! model is in use, the passages' vectors, taken from the store's cache where an earlier run (or
//! another replica) embedded the same text with the same model, and embedded and kept otherwise.

use std::sync::Arc;

use closer_embed::Model;
use closer_knowledge::{KnowledgeDocument, Retriever, RetrieverSettings};
use closer_store::Store;
use sha2::{Digest, Sha256};

use crate::EngineError;

/// How many passages one embedding call takes: large enough to batch well, small enough for
/// progress to move.
const EMBED_BATCH: usize = 32;

/// Builds the retriever over `documents`; with a `model`, adds the passages' embeddings.
/// `progress(done, total)` is called as passages are embedded (cached ones count as done).
///
/// # Errors
/// [`EngineError::Store`] when the cache cannot be read or written, [`EngineError::Rejected`]
/// when the index cannot be built.
pub async fn build_retriever(
    store: &Store,
    documents: Vec<KnowledgeDocument>,
    settings: &RetrieverSettings,
    model: Option<Arc<Model>>,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<Retriever, EngineError> {
    let settings = settings.clone();
    let retriever = blocking(move || Retriever::build(&documents, &settings))
        .await?
        .map_err(|error| EngineError::Rejected(error.to_string()))?;
    let Some(model) = model else {
        return Ok(retriever);
    };
    let texts = retriever.embedding_texts();
    let hashes: Vec<String> = texts
        .iter()
        .map(|text| hex::encode(Sha256::digest(text.as_bytes())))
        .collect();
    let cached = store.cached_embeddings(model.id(), &hashes).await?;
    let mut vectors: Vec<Vec<f32>> = hashes
        .iter()
        .map(|hash| cached.get(hash).cloned().unwrap_or_default())
        .collect();
    let missing: Vec<usize> = (0..texts.len())
        .filter(|index| vectors[*index].len() != model.dim())
        .collect();
    let total = texts.len();
    let progress = Arc::new(progress);
    progress(total - missing.len(), total);
    let mut done = total - missing.len();
    for batch in missing.chunks(EMBED_BATCH) {
        let batch_texts: Vec<String> = batch.iter().map(|index| texts[*index].clone()).collect();
        let embedder = Arc::clone(&model);
        let embedded = blocking(move || {
            let borrowed: Vec<&str> = batch_texts.iter().map(String::as_str).collect();
            embedder.embed_passages(&borrowed)
        })
        .await?;
        let mut fresh = Vec::with_capacity(batch.len());
        for (index, vector) in batch.iter().zip(embedded) {
            fresh.push((hashes[*index].clone(), vector.clone()));
            vectors[*index] = vector;
        }
        store.store_embeddings(model.id(), &fresh).await?;
        done += batch.len();
        progress(done, total);
    }
    retriever
        .with_embeddings(model, &vectors)
        .map_err(|error| EngineError::Rejected(error.to_string()))
}

/// Runs CPU-bound work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| EngineError::Rejected(format!("indexing stopped: {error}")))
}
