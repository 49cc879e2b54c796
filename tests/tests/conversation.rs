//! End to end: the HTTP server answers health checks, and a whole conversation runs through
//! the engine and the real PostgreSQL store, from a question to exactly one lead in the outbox.

use closer_model::ReplyKind;
use closer_tests::{spawn_app, text};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn health_and_readiness_answer(pool: PgPool) {
    let app = spawn_app(pool).await;
    let client = reqwest::Client::new();
    for path in ["/healthz", "/readyz"] {
        let response = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_conversation_ends_in_exactly_one_lead(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let engine = &app.engine;

    let answer = engine
        .handle(&text(
            "chat-1",
            "m1",
            "сколько стоит ваш самый дешевый тариф?",
        ))
        .await
        .unwrap();
    assert!(!answer.duplicate);
    let answered = answer
        .replies
        .iter()
        .find(|reply| reply.kind == ReplyKind::Answer)
        .expect("an answer");
    assert!(
        !answered.citations.is_empty(),
        "an answer cites its documents: {answered:?}"
    );

    let contact = text(
        "chat-1",
        "m2",
        "Отлично, давайте созвонимся. Иван Петров, +7 (903) 123-45-67",
    );
    let first = engine.handle(&contact).await.unwrap();
    assert!(
        first.lead_id.is_some(),
        "the contact creates the lead: {:?}",
        first.replies
    );

    // The platform redelivers the same message: the same replies, no second lead.
    let again = engine.handle(&contact).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.replies, first.replies);
    assert_eq!(again.lead_id, None);

    let leads: i64 = sqlx::query_scalar("select count(*) from leads")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(leads, 1);
    let outbox: i64 =
        sqlx::query_scalar("select count(*) from handoff_outbox where target = 'webhook'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        outbox, 1,
        "the lead is queued for its hand-off target in the same transaction"
    );
    let lead = engine
        .store()
        .lead_for_conversation(first.conversation_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lead.details.contact.phone.unwrap().as_str(), "+79031234567");
}

#[sqlx::test(migrations = "../migrations")]
async fn an_unanswerable_question_is_declined_with_an_offer_of_a_person(pool: PgPool) {
    let app = spawn_app(pool).await;
    let handled = app
        .engine
        .handle(&text(
            "chat-2",
            "m1",
            "do you support quantum teleportation of invoices?",
        ))
        .await
        .unwrap();
    let reply = &handled.replies[0];
    assert_eq!(reply.kind, ReplyKind::Declined, "{reply:?}");
    assert!(reply.citations.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn an_objection_is_answered_from_the_playbook_in_the_knowledge_base(pool: PgPool) {
    let app = spawn_app(pool).await;
    let handled = app
        .engine
        .handle(&text(
            "chat-3",
            "m1",
            "we already use another booking app, why switch",
        ))
        .await
        .unwrap();
    let reply = &handled.replies[0];
    assert_eq!(reply.kind, ReplyKind::Objection, "{reply:?}");
    assert!(
        reply
            .citations
            .iter()
            .any(|citation| citation.source == "en-objections.md"),
        "{reply:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_question_that_mentions_a_time_is_answered_not_taken_for_an_objection(pool: PgPool) {
    let app = spawn_app(pool).await;
    let handled = app
        .engine
        .handle(&text(
            "chat-4",
            "m1",
            "если через 2 недели поймем что не подходит, деньги вернете?",
        ))
        .await
        .unwrap();
    let reply = &handled.replies[0];
    assert_eq!(reply.kind, ReplyKind::Answer, "{reply:?}");
    assert!(reply.text.contains("30 дней"), "{reply:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_panic_or_a_repeating_failure_is_dead_lettered_and_the_database_away_waited_out(
    pool: PgPool,
) {
    use closer_engine::{EngineError, Guard, Verdict};
    use closer_model::Channel;
    use closer_store::Store;

    let store = Store::from_pool(pool.clone());
    let guard = Guard::new(store.clone(), Channel::Discord);

    let panicked = guard
        .handle("u1", || "{\"raw\":1}".to_owned(), async {
            let empty: Vec<u8> = Vec::new();
            // An index out of bounds, as a byte offset of another string once was.
            let _ = empty[usize::from(empty.is_empty())];
            Ok(())
        })
        .await;
    assert_eq!(panicked, Verdict::DeadLettered);

    let failing = || async { Err(EngineError::Rejected("cannot be processed".to_owned())) };
    for attempt in 1..closer_engine::poison::ATTEMPTS {
        let verdict = guard.handle("u2", String::new, failing()).await;
        assert_eq!(verdict, Verdict::RetryLater, "attempt {attempt}");
    }
    assert_eq!(
        guard.handle("u2", String::new, failing()).await,
        Verdict::DeadLettered
    );
    assert_eq!(
        guard.handle("u3", String::new, async { Ok(()) }).await,
        Verdict::Processed
    );

    let letters = store.dead_letters(10).await.unwrap();
    let ids: Vec<&str> = letters.iter().map(|l| l.external_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{letters:#?}");
    assert!(ids.contains(&"u1") && ids.contains(&"u2"));
    let panic = letters.iter().find(|l| l.external_id == "u1").unwrap();
    assert!(panic.reason.starts_with("panicked"), "{panic:?}");
    assert_eq!(panic.payload, "{\"raw\":1}");

    // Retried by hand and processed this time: resolved, gone from the list.
    assert!(store.request_dead_letter_retry(panic.id).await.unwrap());
    let retry = store.dead_letters_to_retry(Channel::Discord).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(
        guard.retry(&retry[0], async { Ok(()) }).await,
        Verdict::Processed
    );
    assert_eq!(store.dead_letters(10).await.unwrap().len(), 1);

    // The database away: even a panicking update cannot be recorded, so it waits to be
    // delivered again instead of being acknowledged and lost.
    pool.close().await;
    assert_eq!(
        guard
            .handle("u4", String::new, async {
                panic!("while the database is away");
            })
            .await,
        Verdict::RetryLater
    );
}
