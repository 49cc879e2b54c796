//! The knowledge base's documents. A re-import is a sync of the whole set: new documents
//! are added, changed ones updated, unchanged ones left alone and missing ones removed,
//! in one transaction, so a reader sees either the old set or the new one.

use std::collections::{BTreeSet, HashMap};

use closer_model::{Audience, DocumentFormat, KnowledgeDocument, Lang};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::StoreError;
use crate::Store;

/// What [`Store::sync_documents`] did, by document source, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

impl Store {
    /// Makes the stored documents exactly `docs`. A document counts as changed when its
    /// content hash or any metadata (title, language, audience, tags, format) differs, so a
    /// better importer refreshes metadata of files whose text did not change.
    ///
    /// Concurrent syncs run one after the other (the table is locked against writers).
    ///
    /// # Errors
    /// [`StoreError::Rejected`] when two documents share a source (nothing is written);
    /// [`StoreError::Unavailable`].
    pub async fn sync_documents(
        &self,
        docs: &[KnowledgeDocument],
    ) -> Result<SyncReport, StoreError> {
        let mut seen = BTreeSet::new();
        for doc in docs {
            if !seen.insert(doc.source.as_str()) {
                return Err(StoreError::Rejected {
                    reason: format!(
                        "two knowledge-base documents have the source {:?}",
                        doc.source
                    ),
                });
            }
        }
        let result: Result<SyncReport, sqlx::Error> = async {
            let mut transaction = self.pool.begin().await?;
            sqlx::query("LOCK TABLE kb_documents IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *transaction)
                .await?;
            let stored_rows = sqlx::query(
                "SELECT source, title, lang, audience, tags, format, content_hash FROM kb_documents",
            )
            .fetch_all(&mut *transaction)
            .await?;
            let mut stored: HashMap<String, StoredMetadata> = HashMap::new();
            for row in &stored_rows {
                stored.insert(
                    row.try_get("source")?,
                    StoredMetadata {
                        title: row.try_get("title")?,
                        lang: row.try_get("lang")?,
                        audience: row.try_get("audience")?,
                        tags: row.try_get("tags")?,
                        format: row.try_get("format")?,
                        content_hash: row.try_get("content_hash")?,
                    },
                );
            }

            let mut report = SyncReport::default();
            for doc in docs {
                let existed = match stored.remove(&doc.source) {
                    Some(metadata) if metadata.matches(doc) => {
                        report.unchanged.push(doc.source.clone());
                        continue;
                    }
                    Some(_) => true,
                    None => false,
                };
                upsert(&mut transaction, doc).await?;
                if existed {
                    report.updated.push(doc.source.clone());
                } else {
                    report.added.push(doc.source.clone());
                }
            }
            // What is left of the stored set is missing from the new one.
            report.removed = stored.into_keys().collect();
            if !report.removed.is_empty() {
                sqlx::query("DELETE FROM kb_documents WHERE source = ANY($1)")
                    .bind(&report.removed)
                    .execute(&mut *transaction)
                    .await?;
            }
            transaction.commit().await?;
            for list in [&mut report.added, &mut report.updated, &mut report.unchanged, &mut report.removed] {
                list.sort();
            }
            Ok(report)
        }
        .await;
        result.map_err(|error| self.error(error))
    }

    /// Stores one document (an upload from the console), replacing the stored one with the
    /// same source; the other documents are left alone. Returns whether it was new.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn put_document(&self, doc: &KnowledgeDocument) -> Result<bool, StoreError> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(|error| self.error(error))?;
        upsert(&mut connection, doc)
            .await
            .map_err(|error| self.error(error))
    }

    /// Removes one document. Returns whether there was one with that source.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn delete_document(&self, source: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM kb_documents WHERE source = $1")
            .bind(source)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Every stored document, by source.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] when a stored audience or
    /// format is unknown to this build.
    pub async fn documents(&self) -> Result<Vec<KnowledgeDocument>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, title, lang, audience, tags, format, content, content_hash
             FROM kb_documents ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter()
            .map(|row| {
                let get = StoreError::Unexpected;
                let source: String = row.try_get("source").map_err(get)?;
                let lang: Option<String> = row.try_get("lang").map_err(get)?;
                let audience: String = row.try_get("audience").map_err(get)?;
                let format: String = row.try_get("format").map_err(get)?;
                Ok(KnowledgeDocument {
                    title: row.try_get("title").map_err(get)?,
                    lang: match lang {
                        Some(code) => Some(Lang::parse(&code).ok_or_else(|| {
                            StoreError::corrupt(format!("language {code:?} of {source}"))
                        })?),
                        None => None,
                    },
                    audience: Audience::parse(&audience).ok_or_else(|| {
                        StoreError::corrupt(format!("audience {audience:?} of {source}"))
                    })?,
                    tags: row.try_get("tags").map_err(get)?,
                    format: DocumentFormat::parse(&format).ok_or_else(|| {
                        StoreError::corrupt(format!("format {format:?} of {source}"))
                    })?,
                    content: row.try_get("content").map_err(get)?,
                    content_hash: row.try_get("content_hash").map_err(get)?,
                    source,
                })
            })
            .collect()
    }
}

/// What a stored document is compared on; its content is compared by hash.
struct StoredMetadata {
    title: String,
    lang: Option<String>,
    audience: String,
    tags: Vec<String>,
    format: String,
    content_hash: String,
}

impl StoredMetadata {
    fn matches(&self, doc: &KnowledgeDocument) -> bool {
        self.content_hash == doc.content_hash
            && self.title == doc.title
            && self.lang.as_deref() == doc.lang.map(Lang::as_str)
            && self.audience == doc.audience.as_str()
            && self.tags == doc.tags
            && self.format == doc.format.as_str()
    }
}

/// Stores a document, replacing the one with the same source; returns whether it was new.
async fn upsert(
    connection: &mut sqlx::PgConnection,
    doc: &KnowledgeDocument,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO kb_documents
             (source, title, lang, audience, tags, format, content, content_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (source) DO UPDATE
         SET title = EXCLUDED.title, lang = EXCLUDED.lang, audience = EXCLUDED.audience,
             tags = EXCLUDED.tags, format = EXCLUDED.format, content = EXCLUDED.content,
             content_hash = EXCLUDED.content_hash, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(&doc.source)
    .bind(&doc.title)
    .bind(doc.lang.map(Lang::as_str))
    .bind(doc.audience.as_str())
    .bind(&doc.tags)
    .bind(doc.format.as_str())
    .bind(&doc.content)
    .bind(&doc.content_hash)
    .fetch_one(connection)
    .await
}
