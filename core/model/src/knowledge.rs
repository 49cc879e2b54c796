//! Knowledge-base documents as imported and stored, and the answer the knowledge base gives.

use serde::{Deserialize, Serialize};

use crate::lang::Lang;
use crate::message::Citation;

/// Who may see a document: prospects' channels show only public ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    #[default]
    Public,
    /// The sales team's own material (internal notes); never shown to a prospect.
    Internal,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Public => "public",
            Audience::Internal => "internal",
        }
    }

    pub fn parse(name: &str) -> Option<Audience> {
        match name.trim().to_ascii_lowercase().as_str() {
            "public" => Some(Audience::Public),
            "internal" => Some(Audience::Internal),
            _ => None,
        }
    }
}

/// The format a document was imported from; it decides how it is split into passages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    Markdown,
    Text,
    Csv,
}

impl DocumentFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentFormat::Markdown => "markdown",
            DocumentFormat::Text => "text",
            DocumentFormat::Csv => "csv",
        }
    }

    pub fn parse(name: &str) -> Option<DocumentFormat> {
        match name {
            "markdown" => Some(DocumentFormat::Markdown),
            "text" => Some(DocumentFormat::Text),
            "csv" => Some(DocumentFormat::Csv),
            _ => None,
        }
    }
}

/// One file of the knowledge base, as imported: the raw text is kept so that the
/// index can be rebuilt with a better chunker without importing again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeDocument {
    /// The file's path relative to the knowledge-base folder (`tarify.md`); unique.
    pub source: String,
    /// From the front matter, else the first heading, else the file name.
    pub title: String,
    /// From the front matter, else detected from the text.
    pub lang: Option<Lang>,
    pub audience: Audience,
    pub tags: Vec<String>,
    pub format: DocumentFormat,
    /// The file's whole text, front matter included.
    pub content: String,
    /// A hash of `content`: re-importing an unchanged file changes nothing.
    pub content_hash: String,
}

/// What the knowledge base answers to a question, when it has a good enough answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeAnswer {
    /// At most the configured length, composed from the best passages.
    pub text: String,
    /// The documents the text was taken from, best first.
    pub citations: Vec<Citation>,
    /// The retriever's confidence, for logs and analytics; not comparable across retrievers.
    pub score: f32,
}
