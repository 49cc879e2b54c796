//! The cache of passage embeddings: vectors keyed by the model's id and the hash of the text
//! embedded, shared by every process on the database.

use std::collections::HashMap;

use sqlx::Row;

use crate::error::StoreError;
use crate::Store;

/// How many rows one insert carries.
const BATCH: usize = 500;

impl Store {
    /// The cached vectors of `model` for the texts with these hashes; hashes not cached are
    /// absent from the map.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn cached_embeddings(
        &self,
        model: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>, StoreError> {
        let mut found = HashMap::new();
        for batch in hashes.chunks(BATCH * 4) {
            let rows = sqlx::query(
                "SELECT content_hash, vector FROM embeddings
                 WHERE model = $1 AND content_hash = ANY($2)",
            )
            .bind(model)
            .bind(batch)
            .fetch_all(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
            for row in rows {
                let hash: String = row
                    .try_get("content_hash")
                    .map_err(|error| StoreError::corrupt(format!("an embedding: {error}")))?;
                let bytes: Vec<u8> = row
                    .try_get("vector")
                    .map_err(|error| StoreError::corrupt(format!("an embedding: {error}")))?;
                found.insert(hash, from_bytes(&bytes));
            }
        }
        Ok(found)
    }

    /// Keeps vectors of `model` by the hashes of their texts; one kept before stays as it is.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn store_embeddings(
        &self,
        model: &str,
        vectors: &[(String, Vec<f32>)],
    ) -> Result<(), StoreError> {
        for batch in vectors.chunks(BATCH) {
            let hashes: Vec<&str> = batch.iter().map(|(hash, _)| hash.as_str()).collect();
            let dims: Vec<i32> = batch
                .iter()
                .map(|(_, vector)| i32::try_from(vector.len()).unwrap_or(i32::MAX))
                .collect();
            let bytes: Vec<Vec<u8>> = batch.iter().map(|(_, vector)| to_bytes(vector)).collect();
            sqlx::query(
                "INSERT INTO embeddings (model, content_hash, dim, vector)
                 SELECT $1, hash, dim, vector FROM UNNEST($2::text[], $3::int[], $4::bytea[])
                     AS rows(hash, dim, vector)
                 ON CONFLICT (model, content_hash) DO NOTHING",
            )
            .bind(model)
            .bind(&hashes)
            .bind(&dims)
            .bind(&bytes)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        }
        Ok(())
    }
}

fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

fn from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn vectors_round_trip_through_bytes() {
        let vector = vec![0.0, -1.5, 3.25e-7, f32::MAX];
        assert_eq!(super::from_bytes(&super::to_bytes(&vector)), vector);
    }
}
