//! What `closer kb sync` pushed to AnythingLLM workspaces (document → hash → location), the
//! lock that keeps two syncs of one workspace apart, and the engine's lock-free check that an
//! inbound message was already processed.

use sqlx::Row;
use uuid::Uuid;

use crate::error::StoreError;
use crate::Store;

/// One document as it was pushed to a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedDocument {
    /// The document's file name in the knowledge base.
    pub source: String,
    /// The hash of what was pushed.
    pub content_hash: String,
    /// AnythingLLM's location of the stored document.
    pub location: String,
}

/// Held while one workspace is synced: syncs of the same workspace — the server's, and
/// `closer kb import`'s or `closer kb sync`'s in another process — run one after another, so
/// one never takes a document the other has just embedded, and not yet recorded, for a
/// stranger. A transaction-scoped advisory lock: dropping the guard ends its transaction
/// (rolled back, it wrote nothing) and so releases the lock, whatever happened meanwhile.
pub struct WorkspaceSyncLock {
    _transaction: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl std::fmt::Debug for WorkspaceSyncLock {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("WorkspaceSyncLock")
    }
}

impl Store {
    /// Waits until no other sync of `workspace` runs, in this process or another, and holds
    /// that until the returned guard is dropped.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn lock_workspace_sync(
        &self,
        workspace: &str,
    ) -> Result<WorkspaceSyncLock, StoreError> {
        let mut transaction = self.pool.begin().await.map_err(|error| self.error(error))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("closer:anythingllm-sync:{workspace}"))
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error(error))?;
        Ok(WorkspaceSyncLock {
            _transaction: transaction,
        })
    }

    /// Every document pushed to `workspace`, by source.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn pushed_documents(
        &self,
        workspace: &str,
    ) -> Result<Vec<PushedDocument>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, content_hash, location FROM anythingllm_documents
             WHERE workspace = $1 ORDER BY source",
        )
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        rows.iter()
            .map(|row| {
                Ok(PushedDocument {
                    source: row.try_get("source")?,
                    content_hash: row.try_get("content_hash")?,
                    location: row.try_get("location")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|error| self.error(error))
    }

    /// When each document of `workspace` was last pushed, by source: for the console's sync
    /// status.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn pushed_times(
        &self,
        workspace: &str,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, StoreError> {
        sqlx::query_as(
            "SELECT source, pushed_at FROM anythingllm_documents
             WHERE workspace = $1 ORDER BY source",
        )
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }

    /// Records that `document` is now embedded in `workspace` (replacing an older version).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn record_pushed_document(
        &self,
        workspace: &str,
        document: &PushedDocument,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO anythingllm_documents (workspace, source, content_hash, location)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace, source) DO UPDATE
                 SET content_hash = EXCLUDED.content_hash,
                     location = EXCLUDED.location,
                     pushed_at = now()",
        )
        .bind(workspace)
        .bind(&document.source)
        .bind(&document.content_hash)
        .bind(&document.location)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(())
    }

    /// Forgets a document taken out of `workspace`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn forget_pushed_document(
        &self,
        workspace: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM anythingllm_documents WHERE workspace = $1 AND source = $2")
            .bind(workspace)
            .bind(source)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    /// Whether the conversation already holds this inbound message: read without a lock, so
    /// the engine can skip a slow remote question for a redelivery. The turn's transaction
    /// still decides what is a duplicate.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn inbound_recorded(
        &self,
        conversation_id: Uuid,
        platform_message_id: &str,
    ) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM messages
                 WHERE conversation_id = $1 AND platform_message_id = $2 AND direction = 'in')",
        )
        .bind(conversation_id)
        .bind(platform_message_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }
}
