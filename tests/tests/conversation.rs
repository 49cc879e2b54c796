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
