//! Running the knowledge base from the console: uploading a file (the formats `closer kb
//! import` reads, parsed by the same [`closer_knowledge::parse_document`]), deleting a
//! document, and re-indexing — rebuilding the built-in retriever from the stored documents and
//! swapping it in whole with `Engine::replace_knowledge`, so a search never sees half an index.
//!
//! The store stays the one source of truth: every change is written there first, then the index
//! is rebuilt from what the store holds. Rebuilds run one at a time, each reading the store after
//! taking its turn, so the last one always reflects every change committed before it started.

use axum::extract::multipart::{Multipart, MultipartError};
use axum::http::StatusCode;
use axum::response::Response;
use closer_knowledge::SkipReason;
use closer_model::Audience;
use closer_store::StoreError;
use serde::{Deserialize, Serialize};

use crate::api::{error, store_error};
use crate::WebState;

/// The largest file the console accepts. A knowledge base is a few hundred documents of a few
/// pages each; anything bigger is a mistake (a PDF export, a database dump).
pub const MAX_UPLOAD_BYTES: usize = 2 * 1024 * 1024;

/// The body limit of the upload routes: the file and the form's few small fields.
pub const MAX_UPLOAD_BODY_BYTES: usize = MAX_UPLOAD_BYTES + 64 * 1024;

/// The longest file name kept as a document's source.
const MAX_FILE_NAME_CHARS: usize = 200;

/// Why a change to the knowledge base was refused or failed, each with the status it answers.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Not Markdown, text or CSV.
    #[error("{0}")]
    Unsupported(String),
    /// Larger than [`MAX_UPLOAD_BYTES`].
    #[error("the file is larger than {} MiB", MAX_UPLOAD_BYTES / (1024 * 1024))]
    TooLarge,
    /// The form or the file is not usable (no file, empty, not UTF-8, a bad CSV, a bad name).
    #[error("{0}")]
    Invalid(String),
    #[error("no such document")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The index could not be built; the previous one stays in use.
    #[error("the search index could not be rebuilt: {0}")]
    Index(String),
}

impl ChangeError {
    pub fn status(&self) -> StatusCode {
        match self {
            ChangeError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ChangeError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ChangeError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ChangeError::NotFound => StatusCode::NOT_FOUND,
            ChangeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ChangeError::Index(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON error the API answers.
    pub fn response(&self) -> Response {
        match self {
            ChangeError::Store(failure) => store_error(failure),
            other => error(other.status(), &other.to_string()),
        }
    }

    /// The text a page shows: the store's failure without SQL or URLs.
    pub fn user_message(&self) -> String {
        match self {
            ChangeError::Store(failure) => failure.user_message().to_owned(),
            other => other.to_string(),
        }
    }
}

/// A file posted from the upload form (`file`, `audience`, and on a page `csrf`).
#[derive(Debug, Default)]
pub struct Upload {
    pub file_name: String,
    pub bytes: Vec<u8>,
    /// The audience a person chose on upload; `None` ("as the file says", the form's default)
    /// keeps the file's front matter (public when it has none).
    pub audience: Option<Audience>,
    /// The page form's CSRF token (the API takes it as a header).
    pub csrf: Option<String>,
}

fn multipart_error(failure: &MultipartError) -> ChangeError {
    if failure.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ChangeError::TooLarge
    } else {
        ChangeError::Invalid(format!("malformed upload: {}", failure.body_text()))
    }
}

/// Reads the upload form. Fields other than `file`, `audience` and `csrf` are ignored.
///
/// # Errors
/// [`ChangeError::TooLarge`], or [`ChangeError::Invalid`] for a malformed form, a missing file
/// or an unknown audience.
pub async fn read_upload(mut multipart: Multipart) -> Result<Upload, ChangeError> {
    let mut upload = Upload::default();
    let mut has_file = false;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|failure| multipart_error(&failure))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                upload.file_name = field.file_name().unwrap_or_default().to_owned();
                upload.bytes = field
                    .bytes()
                    .await
                    .map_err(|failure| multipart_error(&failure))?
                    .to_vec();
                has_file = true;
            }
            "audience" => {
                let value = field
                    .text()
                    .await
                    .map_err(|failure| multipart_error(&failure))?;
                upload.audience = match value.trim() {
                    "" => None,
                    value => Some(Audience::parse(value).ok_or_else(|| {
                        ChangeError::Invalid("audience must be public or internal".to_owned())
                    })?),
                };
            }
            "csrf" => {
                upload.csrf = Some(
                    field
                        .text()
                        .await
                        .map_err(|failure| multipart_error(&failure))?,
                );
            }
            _ => {}
        }
    }
    if !has_file || upload.file_name.is_empty() {
        return Err(ChangeError::Invalid(
            "choose a file to upload (a form field named file)".to_owned(),
        ));
    }
    if upload.bytes.len() > MAX_UPLOAD_BYTES {
        return Err(ChangeError::TooLarge);
    }
    Ok(upload)
}

/// A file name as a document's source: its last path component, without control characters.
fn source_name(file_name: &str) -> Result<String, ChangeError> {
    let name = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim();
    if name.is_empty()
        || name.starts_with('.')
        || name.chars().count() > MAX_FILE_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ChangeError::Invalid(format!(
            "the file name must be 1 to {MAX_FILE_NAME_CHARS} characters, not start with a dot, and hold no control characters"
        )));
    }
    Ok(name.to_owned())
}

/// What an upload did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Uploaded {
    pub source: String,
    pub title: String,
    pub audience: String,
    /// A new document (else one with the same file name was replaced).
    pub added: bool,
    /// The documents the rebuilt index holds.
    pub documents: usize,
}

/// Stores an uploaded file as a document and rebuilds the index.
///
/// # Errors
/// See [`ChangeError`]; a file that is not a knowledge document is refused with the reason
/// `closer kb import` would give.
pub async fn upload(state: &WebState, upload: Upload) -> Result<Uploaded, ChangeError> {
    let source = source_name(&upload.file_name)?;
    let mut document = closer_knowledge::parse_document(&source, &upload.bytes).map_err(
        |reason| match reason {
            SkipReason::UnsupportedExtension(_) => ChangeError::Unsupported(reason.to_string()),
            other => ChangeError::Invalid(format!("{source}: {other}")),
        },
    )?;
    // Only a person's explicit choice overrides what the file says about itself.
    if let Some(audience) = upload.audience {
        document.audience = audience;
    }
    let added = {
        // The AnythingLLM workspace stops answering prospects until it holds the change.
        let _change = crate::sync::knowledge_change(state);
        state.engine.store().put_document(&document).await?
    };
    tracing::info!(source = %document.source, added, "a knowledge document was uploaded from the console");
    let documents = reindex(state).await?;
    Ok(Uploaded {
        audience: document.audience.as_str().to_owned(),
        source: document.source,
        title: document.title,
        added,
        documents,
    })
}

/// Deletes a document and rebuilds the index.
///
/// # Errors
/// [`ChangeError::NotFound`]; the store or the index failing.
pub async fn delete(state: &WebState, source: &str) -> Result<usize, ChangeError> {
    let deleted = {
        let _change = crate::sync::knowledge_change(state);
        state.engine.store().delete_document(source).await?
    };
    if !deleted {
        return Err(ChangeError::NotFound);
    }
    tracing::info!(%source, "a knowledge document was deleted from the console");
    reindex(state).await
}

/// Rebuilds the built-in retriever from the stored documents, with the settings of the one in
/// use, and swaps it in. Returns how many documents it holds.
///
/// # Errors
/// The store failing, or the index not building (the previous one stays in use).
pub async fn reindex(state: &WebState) -> Result<usize, ChangeError> {
    let _turn = state.reindexing.lock().await;
    let documents = state.engine.store().documents().await?;
    let settings = state.engine.knowledge().settings().clone();
    let count = documents.len();
    // The model in use embeds the new passages; unchanged ones come from the store's cache.
    let model = state.engine.knowledge().embedding_model().cloned();
    let built = closer_engine::index::build_retriever(
        state.engine.store(),
        documents,
        &settings,
        model,
        |done, total| {
            if done < total {
                tracing::info!(done, total, "embedding the knowledge base's passages");
            }
        },
    )
    .await
    .map_err(|failure| ChangeError::Index(failure.to_string()))?;
    state.engine.replace_knowledge(built);
    tracing::info!(documents = count, "the knowledge base was re-indexed");
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_becomes_its_last_component() {
        assert_eq!(source_name("prices.md").ok().as_deref(), Some("prices.md"));
        assert_eq!(
            source_name("C:\\docs\\faq.txt").ok().as_deref(),
            Some("faq.txt")
        );
        assert_eq!(source_name("../../etc/x.md").ok().as_deref(), Some("x.md"));
        assert!(source_name("").is_err());
        assert!(source_name("dir/").is_err());
        assert!(source_name(".hidden.md").is_err());
        assert!(source_name("a\u{0}b.md").is_err());
    }
}
