//! Recognition by meaning with the real embedding model: phrasings that no playbook pattern
//! and no example holds word for word are recognised by what they mean, and questions stay
//! questions.

use std::sync::Arc;

use closer_dialog::Intent;
use closer_engine::Engine;
use closer_knowledge::{read_dir, RetrieverSettings};
use closer_model::{ObjectionKind, ReplyKind};
use closer_store::Store;
use sqlx::PgPool;

/// The engine over the demo tariffs with the model, and the shipped playbook.
async fn engine(pool: PgPool) -> Engine {
    closer_tests::init_logs();
    let store = Store::from_pool(pool);
    let documents: Vec<_> = read_dir(&closer_tests::config_dir().join("kb"), |_, _| {})
        .expect("the demo knowledge base reads")
        .documents
        .into_iter()
        .filter(|document| document.source == "tarify.md")
        .collect();
    store
        .sync_documents(&documents)
        .await
        .expect("the documents store");
    let retriever = closer_engine::index::build_retriever(
        &store,
        documents,
        &RetrieverSettings::default(),
        Some(Arc::new(closer_embed::test_model())),
        |_, _| {},
    )
    .await
    .expect("the index builds");
    let playbook = std::fs::read_to_string(closer_tests::config_dir().join("playbook.toml"))
        .expect("the playbook reads");
    let dialog =
        closer_dialog::DialogConfig::from_toml_str(&playbook).expect("the playbook parses");
    Engine::new(store, dialog, retriever, Vec::new())
}

#[sqlx::test(migrations = "../migrations")]
async fn intents_are_recognised_by_meaning_and_questions_stay_questions(pool: PgPool) {
    let engine = engine(pool).await;
    engine.prepare_meaning().await;
    let table = [
        (
            "I'd like a human being to walk me through the contract",
            Some(Intent::Handoff),
        ),
        (
            "честно говоря, цена выше, чем я готов отдать",
            Some(Intent::Objection(ObjectionKind::Price)),
        ),
        (
            "вернёмся к этому, когда закончится сезон",
            Some(Intent::Objection(ObjectionKind::Timing)),
        ),
        ("сколько стоит базовый тариф?", None),
        ("what does the pro plan include?", None),
    ];
    for (text, expected) in table {
        assert_eq!(
            engine.recognise(text).await,
            Vec::from_iter(expected),
            "{text}"
        );
    }

    // The dialog acts on it: a request for a person no pattern knows reaches a person.
    let handled = engine
        .handle(&closer_tests::text(
            "meaning-1",
            "m1",
            "can a real person from your team phone me about the terms?",
        ))
        .await
        .expect("handled");
    assert_eq!(handled.replies[0].kind, ReplyKind::Handoff);
}
