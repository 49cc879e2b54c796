//! The I/O side of recognition by meaning ([`closer_dialog::meaning`]): the playbook's examples
//! embedded once per model, off the async threads, and each message embedded as it comes (its
//! vector is cached by the retriever, so the knowledge search of the same text reuses it).

use std::sync::Arc;

use closer_dialog::{DialogConfig, ExampleIndex, Intent, Nearest};
use closer_knowledge::Retriever;
use tokio::sync::Mutex;

/// The examples' index for the model in use, built on first need.
#[derive(Default)]
pub(crate) struct Meaning {
    built: Mutex<Option<(String, Arc<ExampleIndex>)>>,
}

/// How many examples go through the model in one batch.
const EXAMPLE_BATCH: usize = 32;

impl Meaning {
    /// The index for `retriever`'s embedding model; `None` without a model or examples.
    /// Built once per model (a few seconds for a few hundred examples): the caller may warm it
    /// at start ([`crate::Engine::prepare_meaning`]).
    pub(crate) async fn index(
        &self,
        dialog: &Arc<DialogConfig>,
        retriever: &Retriever,
    ) -> Option<Arc<ExampleIndex>> {
        let model = Arc::clone(retriever.embedding_model()?);
        if dialog.examples.is_empty() {
            return None;
        }
        let mut built = self.built.lock().await;
        if let Some((model_id, index)) = built.as_ref() {
            if model_id == model.id() {
                return Some(Arc::clone(index));
            }
        }
        let examples = dialog.examples.len();
        let dialog = Arc::clone(dialog);
        let embedder = Arc::clone(&model);
        let started = std::time::Instant::now();
        let index = tokio::task::spawn_blocking(move || {
            let texts: Vec<&str> = dialog
                .examples
                .iter()
                .map(|example| example.text.as_str())
                .collect();
            let vectors: Vec<Vec<f32>> = texts
                .chunks(EXAMPLE_BATCH)
                .flat_map(|batch| embedder.embed_queries(batch))
                .collect();
            ExampleIndex::new(&dialog.examples, vectors, dialog.recognition)
        })
        .await
        .ok()
        .flatten()
        .map(Arc::new)?;
        tracing::info!(
            examples,
            elapsed_ms = started.elapsed().as_millis(),
            "the playbook's examples are embedded: intents are recognised by meaning"
        );
        *built = Some((model.id().to_owned(), Arc::clone(&index)));
        Some(index)
    }
}

/// How `text` compares with the examples, and the intents recognised: that of the whole
/// message (if it says one clearly) and those of its clauses ("the price is fine, but my partner
/// decides" raises an objection its whole does not show), each once. CPU-bound (the embeddings of
/// new texts), so called off the async threads.
pub(crate) fn recognise(
    index: &ExampleIndex,
    retriever: &Retriever,
    text: &str,
) -> Option<(Nearest, Vec<Intent>)> {
    let vector = retriever.query_vector(text)?;
    let nearest = index.nearest(&vector)?;
    let mut recognised: Vec<Intent> = index.recognise(&vector).into_iter().collect();
    for clause in closer_dialog::meaning::clauses(text) {
        let intent = retriever
            .query_vector(clause)
            .and_then(|vector| index.recognise_clause(&vector));
        if let Some(intent) = intent.filter(|intent| !recognised.contains(intent)) {
            recognised.push(intent);
        }
    }
    tracing::debug!(
        nearest = nearest.intent.as_str(),
        similarity = nearest.similarity,
        margin = nearest.margin,
        recognised = ?recognised,
        "recognised by meaning"
    );
    Some((nearest, recognised))
}
