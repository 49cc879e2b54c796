//! The knowledge index with the embedding model: passages are embedded once and kept in
//! PostgreSQL by content hash and model, so that a restart, a re-import or a second replica
//! embeds nothing unchanged again; the engine then answers by meaning.

use std::sync::{Arc, Mutex};

use closer_knowledge::{read_dir, RetrieverSettings};
use closer_store::Store;
use sqlx::PgPool;

/// Two documents of the demo knowledge base: enough to answer, quick to embed.
fn documents() -> Vec<closer_knowledge::KnowledgeDocument> {
    let scanned = read_dir(&closer_tests::config_dir().join("kb"), |_, _| {})
        .expect("the demo knowledge base reads");
    scanned
        .documents
        .into_iter()
        .filter(|document| ["tarify.md", "probnyj-period.md"].contains(&document.source.as_str()))
        .collect()
}

/// Builds the index and returns it with every (done, total) progress report.
async fn build(
    store: &Store,
    model: &Arc<closer_embed::Model>,
) -> (closer_knowledge::Retriever, Vec<(usize, usize)>) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&reports);
    let retriever = closer_engine::index::build_retriever(
        store,
        documents(),
        &RetrieverSettings::default(),
        Some(Arc::clone(model)),
        move |done, total| recorded.lock().expect("a lock").push((done, total)),
    )
    .await
    .expect("the index builds");
    let reports = reports.lock().expect("a lock").clone();
    (retriever, reports)
}

#[sqlx::test(migrations = "../migrations")]
async fn passages_are_embedded_once_and_then_read_from_the_store(pool: PgPool) {
    let store = Store::from_pool(pool);
    let model = Arc::new(closer_embed::test_model());

    let (first, reports) = build(&store, &model).await;
    let total = first.embedding_texts().len();
    assert!(total > 5, "{total} passages");
    // Nothing cached at first: progress runs from 0 to every passage.
    assert_eq!(reports.first(), Some(&(0, total)));
    assert_eq!(reports.last(), Some(&(total, total)));

    // A second build (a restart, another replica) finds every vector in the store.
    let (second, reports) = build(&store, &model).await;
    assert_eq!(reports, vec![(total, total)]);
    assert_eq!(
        second.embedding_model().map(|model| model.id().to_owned()),
        Some(model.id().to_owned())
    );
    let question = "сколько стоит самый дешёвый тариф в месяц?";
    let lang = closer_model::Lang::Ru;
    let audience = closer_knowledge::AudienceFilter::PublicOnly;
    assert_eq!(
        first.answer(question, lang, audience),
        second.answer(question, lang, audience),
        "the cached vectors answer as the fresh ones"
    );
}
