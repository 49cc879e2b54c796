//! The knowledge base: importing a folder of documents, the built-in tantivy retriever, and the
//! composition of short extractive answers.
//!
//! - [`import`]: which files become [`KnowledgeDocument`]s, front matter, skip reasons.
//! - [`chunk`]: documents into passages (heading sections, table rows, CSV rows) of answer units.
//! - [`text`]: normalisation, per-script stemming and the lexicon of colloquial words.
//! - [`retriever`]: the in-memory index with the units' embeddings, reranking by words and
//!   meaning, the calibrated decision to decline, and the answer.
//! - [`anythingllm`]: the client of an AnythingLLM workspace, the other answer source (chat in
//!   query mode with citations, streaming, documents and embeddings); its JSON stays there.
//!
//! This crate writes no SQL; it reads files only in [`read_dir`], and only [`anythingllm`]
//! does network I/O.

use std::path::PathBuf;

pub mod anythingllm;
pub mod chunk;
pub mod import;
pub mod retriever;
pub mod text;

pub use closer_model::KnowledgeDocument;
pub use import::{parse_document, read_dir, ScannedKnowledgeBase, SkipReason, SkippedFile};
pub use retriever::{
    AudienceFilter, Passage, RankingWeights, Retriever, RetrieverSettings, Signals,
    HARD_MAX_ANSWER_CHARS,
};

/// What can go wrong while importing or indexing.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The knowledge-base folder itself cannot be listed.
    #[error("cannot read the knowledge-base folder {path}: {reason}")]
    Folder { path: PathBuf, reason: String },
    /// The search index could not be built.
    #[error("cannot build the search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The embeddings handed to the retriever do not fit its passages.
    #[error("the embeddings do not fit the knowledge base: {0}")]
    Embeddings(String),
}

#[cfg(test)]
mod tests;
