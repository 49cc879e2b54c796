//! The store against the real PostgreSQL: each test gets a fresh, migrated database.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use closer_model::{
    Audience, Channel, Citation, Contact, DocumentFormat, Email, InboundContent, InboundMessage,
    KnowledgeDocument, Lang, NewLead, ObjectionKind, Phone, QuickReply, Reply, ReplyKind,
};
use closer_store::{
    Direction, OutboxStatus, Store, StoreError, SyncReport, Turn, TurnOutcome, TurnStart,
};
use serde_json::json;
use sqlx::PgPool;

fn inbound(chat_id: &str, message_id: &str, text: &str) -> InboundMessage {
    InboundMessage {
        channel: Channel::Telegram,
        chat_id: chat_id.to_owned(),
        platform_message_id: message_id.to_owned(),
        sender_name: Some("Dmitry".to_owned()),
        content: InboundContent::Text {
            text: text.to_owned(),
        },
        received_at: Utc::now(),
    }
}

fn outcome<'a>(state: serde_json::Value, replies: &'a [Reply]) -> TurnOutcome<'a> {
    TurnOutcome {
        state,
        lang: Lang::Ru,
        stage: "qualifying",
        replies,
        new_lead: None,
        lead_update: None,
        handoff_targets: &[],
        rating: None,
        events: &[],
        source_campaign: None,
    }
}

fn answer(text: &str) -> Reply {
    Reply {
        kind: ReplyKind::Answer,
        text: text.to_owned(),
        quick_replies: vec![QuickReply {
            label: "Тарифы".to_owned(),
            payload: "prices".to_owned(),
        }],
        citations: vec![Citation {
            title: "Тарифы".to_owned(),
            source: "tarify.md".to_owned(),
        }],
        request_contact: true,
    }
}

fn lead(summary: &str, phone: Option<&str>, company: Option<&str>) -> NewLead {
    NewLead {
        contact: Contact {
            name: Some("Дмитрий Орлов".to_owned()),
            phone: phone.map(|text| Phone::parse(text).expect("a valid test phone")),
            email: Some(Email::parse("d.orlov@stroymix.ru").expect("a valid test e-mail")),
            company: company.map(str::to_owned),
        },
        summary: summary.to_owned(),
        qualification: BTreeMap::from([("volume".to_owned(), "300 заказов в день".to_owned())]),
        objections: vec![ObjectionKind::Price],
        qualified: false,
    }
}

async fn new_turn(store: &Store, message: &InboundMessage) -> Turn {
    match store.begin_turn(message).await.expect("begin_turn") {
        TurnStart::New(turn) => turn,
        TurnStart::Duplicate { .. } => {
            panic!("{} was taken for a duplicate", message.platform_message_id)
        }
    }
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_turn_round_trips_and_a_redelivery_is_answered_from_the_store(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let first = inbound("42", "1", "Сколько стоит?");
    let turn = new_turn(&store, &first).await;
    assert_eq!(turn.conversation.state, serde_json::Value::Null);
    assert_eq!(turn.conversation.chat_id, "42");
    let replies = [
        answer("От 9 900 ₽ в месяц."),
        Reply::new(ReplyKind::Prompt, "Сколько заказов в день?"),
    ];
    let committed = turn
        .commit(outcome(json!({ "turns": 1 }), &replies))
        .await
        .expect("commit");
    assert_eq!(committed.lead_id, None);

    let record = store
        .conversation_by_chat(Channel::Telegram, "42")
        .await
        .expect("read")
        .expect("the conversation exists");
    assert_eq!(record.state, json!({ "turns": 1 }));
    assert_eq!(record.lang, Some(Lang::Ru));
    assert_eq!(record.stage.as_deref(), Some("qualifying"));

    let messages_before = count(&pool, "messages").await;
    match store.begin_turn(&first).await.expect("begin_turn") {
        TurnStart::Duplicate { replies: stored } => assert_eq!(stored, replies),
        TurnStart::New(_) => panic!("a redelivery was processed again"),
    }
    assert_eq!(
        count(&pool, "messages").await,
        messages_before,
        "a duplicate writes nothing"
    );

    let transcript = store.transcript(record.id).await.expect("transcript");
    let lines: Vec<(Direction, Option<ReplyKind>, &str)> = transcript
        .iter()
        .map(|line| (line.direction, line.kind, line.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (Direction::In, None, "Сколько стоит?"),
            (
                Direction::Out,
                Some(ReplyKind::Answer),
                "От 9 900 ₽ в месяц."
            ),
            (
                Direction::Out,
                Some(ReplyKind::Prompt),
                "Сколько заказов в день?"
            ),
        ]
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn turns_of_one_conversation_see_the_previous_state(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let turn = new_turn(&store, &inbound("7", "1", "привет")).await;
    let conversation_id = turn.conversation.id;
    turn.commit(outcome(json!({ "turns": 1 }), &[]))
        .await
        .expect("commit");

    let turn = new_turn(&store, &inbound("7", "2", "ещё вопрос")).await;
    assert_eq!(turn.conversation.id, conversation_id);
    assert_eq!(turn.conversation.state, json!({ "turns": 1 }));
    turn.commit(outcome(json!({ "turns": 2 }), &[]))
        .await
        .expect("commit");

    // A redelivery of a message that got no replies is still a duplicate, with none.
    match store
        .begin_turn(&inbound("7", "1", "привет"))
        .await
        .expect("begin_turn")
    {
        TurnStart::Duplicate { replies } => assert!(replies.is_empty()),
        TurnStart::New(_) => panic!("a redelivery was processed again"),
    }
    assert_eq!(count(&pool, "conversations").await, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_same_message_id_in_two_chats_is_two_messages(pool: PgPool) {
    // Telegram numbers messages per chat: message 1 of chat A is not message 1 of chat B.
    let store = Store::from_pool(pool);
    for chat in ["A", "B"] {
        let turn = new_turn(&store, &inbound(chat, "1", "привет")).await;
        turn.commit(outcome(json!({}), &[])).await.expect("commit");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_turn_dropped_without_commit_leaves_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let message = inbound("9", "1", "привет");
    drop(new_turn(&store, &message).await);
    assert_eq!(count(&pool, "messages").await, 0);
    assert_eq!(count(&pool, "conversations").await, 0);
    // The redelivery is processed afresh.
    new_turn(&store, &message).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_lead_and_its_outbox_rows_commit_together_once_per_conversation(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let targets = ["tracker".to_owned(), "slack".to_owned()];
    let start = InboundMessage {
        content: InboundContent::Start {
            campaign: Some("autumn".to_owned()),
        },
        ..inbound("5", "0", "")
    };
    let turn = new_turn(&store, &start).await;
    turn.commit(TurnOutcome {
        source_campaign: Some("autumn"),
        ..outcome(json!({}), &[])
    })
    .await
    .expect("commit");

    let first_lead = lead("Нужен склад на 300 заказов", Some("+7 921 555-12-34"), None);
    let turn = new_turn(&store, &inbound("5", "1", "+7 921 555-12-34")).await;
    let conversation_id = turn.conversation.id;
    let committed = turn
        .commit(TurnOutcome {
            new_lead: Some(&first_lead),
            handoff_targets: &targets,
            ..outcome(json!({}), &[])
        })
        .await
        .expect("commit");
    let lead_id = committed.lead_id.expect("a lead was created");

    let stored = store
        .lead_for_conversation(conversation_id)
        .await
        .expect("read")
        .expect("a lead");
    assert_eq!(stored.id, lead_id);
    assert_eq!(stored.channel, Channel::Telegram);
    assert_eq!(stored.source_campaign.as_deref(), Some("autumn"));
    assert_eq!(stored.details, first_lead);

    // A second new lead for the same conversation updates the first; no second hand-off.
    let second_lead = lead("Нужен склад на 500 заказов", None, Some("СтройМикс"));
    let turn = new_turn(&store, &inbound("5", "2", "СтройМикс")).await;
    let committed = turn
        .commit(TurnOutcome {
            new_lead: Some(&second_lead),
            handoff_targets: &targets,
            ..outcome(json!({}), &[])
        })
        .await
        .expect("commit");
    assert_eq!(committed.lead_id, None);

    let leads = store.leads(10).await.expect("leads");
    assert_eq!(leads.len(), 1);
    let (stored, outbox) = &leads[0];
    assert_eq!(stored.details.summary, "Нужен склад на 500 заказов");
    assert_eq!(stored.details.contact.company.as_deref(), Some("СтройМикс"));
    assert_eq!(
        stored.details.contact.phone.as_ref().map(Phone::as_str),
        Some("+79215551234"),
        "an update without a phone keeps the stored one"
    );
    let rows: Vec<(&str, OutboxStatus, String)> = outbox
        .iter()
        .map(|entry| {
            (
                entry.target.as_str(),
                entry.status,
                entry.idempotency_key.clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("slack", OutboxStatus::Pending, format!("{lead_id}:slack")),
            (
                "tracker",
                OutboxStatus::Pending,
                format!("{lead_id}:tracker")
            ),
        ]
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_lead_update_changes_fields(pool: PgPool) {
    let store = Store::from_pool(pool);
    let turn = new_turn(&store, &inbound("6", "1", "hi")).await;
    let conversation_id = turn.conversation.id;
    let created = lead("Needs a warehouse", Some("+1 (415) 555-0100"), None);
    turn.commit(TurnOutcome {
        new_lead: Some(&created),
        ..outcome(json!({}), &[])
    })
    .await
    .expect("commit");

    let mut updated = lead("Needs a warehouse by March", None, Some("Acme"));
    updated.qualified = true;
    updated.objections = vec![ObjectionKind::Price, ObjectionKind::Timing];
    updated
        .qualification
        .insert("timeline".to_owned(), "March".to_owned());
    let turn = new_turn(&store, &inbound("6", "2", "by March")).await;
    turn.commit(TurnOutcome {
        lead_update: Some(&updated),
        ..outcome(json!({}), &[])
    })
    .await
    .expect("commit");

    let stored = store
        .lead_for_conversation(conversation_id)
        .await
        .expect("read")
        .expect("a lead");
    let expected = NewLead {
        contact: Contact {
            phone: created.contact.phone.clone(),
            ..updated.contact.clone()
        },
        ..updated
    };
    assert_eq!(stored.details, expected);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_rating_is_replaced_and_checked(pool: PgPool) {
    let store = Store::from_pool(pool);
    let mut conversation_id = None;
    for (number, score) in [(1, 5), (2, 3)] {
        let turn = new_turn(&store, &inbound("8", &number.to_string(), "оценка")).await;
        conversation_id = Some(turn.conversation.id);
        turn.commit(TurnOutcome {
            rating: Some(score),
            ..outcome(json!({}), &[])
        })
        .await
        .expect("commit");
    }
    let conversation_id = conversation_id.expect("a conversation");
    assert_eq!(
        store.rating(conversation_id).await.expect("rating"),
        Some(3)
    );

    let turn = new_turn(&store, &inbound("8", "3", "оценка")).await;
    let error = turn
        .commit(TurnOutcome {
            rating: Some(6),
            ..outcome(json!({}), &[])
        })
        .await
        .expect_err("6 is out of range");
    assert!(matches!(error, StoreError::Rejected { .. }), "{error:?}");
    assert_eq!(
        store.rating(conversation_id).await.expect("rating"),
        Some(3)
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn events_are_recorded(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let turn = new_turn(&store, &inbound("10", "1", "позовите человека")).await;
    let events = [("handoff".to_owned(), json!({ "reason": "asked" }))];
    turn.commit(TurnOutcome {
        events: &events,
        ..outcome(json!({}), &[])
    })
    .await
    .expect("commit");
    let stored: (String, serde_json::Value) = sqlx::query_as("SELECT name, detail FROM events")
        .fetch_one(&pool)
        .await
        .expect("event");
    assert_eq!(stored, ("handoff".to_owned(), json!({ "reason": "asked" })));
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_stored_value_that_does_not_parse_is_corrupt(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let turn = new_turn(&store, &inbound("11", "1", "hi")).await;
    let conversation_id = turn.conversation.id;
    let created = lead("x", Some("+79215551234"), None);
    turn.commit(TurnOutcome {
        new_lead: Some(&created),
        ..outcome(json!({}), &[])
    })
    .await
    .expect("commit");
    sqlx::query("UPDATE leads SET phone = 'not a phone'")
        .execute(&pool)
        .await
        .expect("update");
    let error = store
        .lead_for_conversation(conversation_id)
        .await
        .expect_err("corrupt");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}

fn document(source: &str, hash: &str) -> KnowledgeDocument {
    KnowledgeDocument {
        source: source.to_owned(),
        title: format!("Title of {source}"),
        lang: Some(Lang::Ru),
        audience: Audience::Public,
        tags: vec!["pricing".to_owned()],
        format: DocumentFormat::Markdown,
        content: format!("# {source}\n\n{hash}"),
        content_hash: hash.to_owned(),
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_document_import_is_a_sync(pool: PgPool) {
    let store = Store::from_pool(pool);
    let strings = |list: &[&str]| {
        list.iter()
            .map(|text| (*text).to_owned())
            .collect::<Vec<_>>()
    };
    let first = [
        document("a.md", "1"),
        document("b.md", "1"),
        document("c.md", "1"),
    ];
    let report = store.sync_documents(&first).await.expect("sync");
    assert_eq!(
        report,
        SyncReport {
            added: strings(&["a.md", "b.md", "c.md"]),
            ..SyncReport::default()
        }
    );

    let mut retitled = document("c.md", "1");
    retitled.audience = Audience::Internal;
    let second = [
        document("d.md", "1"),
        document("b.md", "2"),
        document("a.md", "1"),
        retitled,
    ];
    let report = store.sync_documents(&second).await.expect("sync");
    assert_eq!(
        report,
        SyncReport {
            added: strings(&["d.md"]),
            updated: strings(&["b.md", "c.md"]),
            unchanged: strings(&["a.md"]),
            removed: Vec::new(),
        }
    );

    let report = store.sync_documents(&second[..2]).await.expect("sync");
    assert_eq!(report.removed, strings(&["a.md", "c.md"]));
    let mut expected = second[..2].to_vec();
    expected.sort_by(|left, right| left.source.cmp(&right.source));
    assert_eq!(store.documents().await.expect("documents"), expected);

    let error = store
        .sync_documents(&[document("a.md", "1"), document("a.md", "2")])
        .await
        .expect_err("two documents with one source");
    assert!(matches!(error, StoreError::Rejected { .. }), "{error:?}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_turns_of_one_chat_serialize(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let first = new_turn(&store, &inbound("12", "1", "первое")).await;

    // The second message waits for the first turn's lock on the conversation row.
    let second = tokio::spawn({
        let store = store.clone();
        async move { store.begin_turn(&inbound("12", "2", "второе")).await }
    });
    wait_for_a_lock_wait(&pool).await;
    assert!(!second.is_finished());
    first
        .commit(outcome(json!({ "turns": 1 }), &[]))
        .await
        .expect("commit");

    match second.await.expect("the task").expect("begin_turn") {
        TurnStart::New(turn) => assert_eq!(turn.conversation.state, json!({ "turns": 1 })),
        TurnStart::Duplicate { .. } => panic!("a new message was taken for a duplicate"),
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_deliveries_of_one_message_are_processed_once(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let message = inbound("13", "1", "привет");
    let first = new_turn(&store, &message).await;
    let redelivery = tokio::spawn({
        let store = store.clone();
        let message = message.clone();
        async move { store.begin_turn(&message).await }
    });
    wait_for_a_lock_wait(&pool).await;
    let replies = [Reply::new(ReplyKind::Smalltalk, "Здравствуйте!")];
    first
        .commit(outcome(json!({}), &replies))
        .await
        .expect("commit");
    match redelivery.await.expect("the task").expect("begin_turn") {
        TurnStart::Duplicate { replies: stored } => assert_eq!(stored, replies),
        TurnStart::New(_) => panic!("a redelivery was processed twice"),
    }
}

/// Returns once some session of this test's database waits for a lock.
async fn wait_for_a_lock_wait(pool: &PgPool) {
    let waiting = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(pool)
            .await
            .expect("pg_stat_activity");
            if waiting > 0 {
                return;
            }
            // Polling a condition, not sleeping for one: the interval only bounds the cost.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the second session never waited for the lock");
}

#[sqlx::test(migrations = "../../migrations")]
async fn migrations_apply_twice(pool: PgPool) {
    let store = Store::from_pool(pool);
    store
        .migrate()
        .await
        .expect("migrations already applied are skipped");
}

#[tokio::test]
async fn ensure_database_creates_once_and_drop_removes_it() {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set by .cargo/config.toml");
    let mut url = url::Url::parse(&base).expect("DATABASE_URL parses");
    let name = format!("closer_store_test_{}", uuid::Uuid::new_v4().simple());
    url.set_path(&name);
    let url = url.to_string();

    assert!(closer_store::ensure_database(&url).await.expect("create"));
    assert!(!closer_store::ensure_database(&url).await.expect("exists"));
    let store = Store::connect(&url, 2).await.expect("connect");
    store.migrate().await.expect("migrate");
    closer_store::drop_database(&url)
        .await
        .expect("drop while connected");
    assert!(closer_store::ensure_database(&url)
        .await
        .expect("create again"));
    closer_store::drop_database(&url).await.expect("drop");
    closer_store::drop_database(&url)
        .await
        .expect("dropping a missing database is fine");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_without_the_password() {
    let url = "postgres://closer:s3cret@127.0.0.1:1/closer";
    let error = Store::connect(url, 2)
        .await
        .expect_err("nothing listens on port 1");
    assert!(
        matches!(&error, StoreError::Unavailable { url, .. } if url == "postgres://closer:***@127.0.0.1:1/closer"),
        "{error:?}"
    );
    assert!(!error.to_string().contains("s3cret"), "{error}");
    let error = closer_store::ensure_database(url)
        .await
        .expect_err("nothing listens on port 1");
    assert!(
        matches!(&error, StoreError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_outbox_is_claimed_as_leases_and_settled(pool: PgPool) {
    let store = Store::from_pool(pool);
    let targets = ["tracker".to_owned()];
    let turn = new_turn(&store, &inbound("14", "1", "+7 921 555-12-34")).await;
    let created = lead("Нужен склад", Some("+79215551234"), None);
    let lead_id = turn
        .commit(TurnOutcome {
            new_lead: Some(&created),
            handoff_targets: &targets,
            ..outcome(json!({}), &[])
        })
        .await
        .expect("commit")
        .lead_id
        .expect("a lead");
    let lease = Duration::from_secs(60);

    let claimed = store
        .claim_due_handoffs(chrono::Utc::now(), 10, lease)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (
            claimed[0].entry.status,
            claimed[0].entry.attempts,
            claimed[0].subject.lead().map(|lead| lead.id)
        ),
        (OutboxStatus::InFlight, 1, Some(lead_id))
    );
    let outbox_id = claimed[0].entry.id;
    assert!(
        store
            .claim_due_handoffs(chrono::Utc::now(), 10, lease)
            .await
            .expect("claim")
            .is_empty(),
        "leased"
    );

    // A failure with a retry time in the past is due again at once.
    let retry_at = Utc::now() - chrono::Duration::seconds(1);
    assert!(store
        .mark_handoff_failed(
            outbox_id,
            claimed[0].lease_token,
            "HTTP 503",
            Some(retry_at)
        )
        .await
        .expect("failed"));
    // A lease of zero stands for a worker that died: the row is due again.
    let died = store
        .claim_due_handoffs(chrono::Utc::now(), 10, Duration::ZERO)
        .await
        .expect("claim");
    assert_eq!(died[0].entry.attempts, 2);
    assert_eq!(died[0].entry.last_error.as_deref(), Some("HTTP 503"));
    let claimed = store
        .claim_due_handoffs(chrono::Utc::now(), 10, lease)
        .await
        .expect("claim");
    assert_eq!(claimed[0].entry.attempts, 3);
    assert_ne!(claimed[0].lease_token, died[0].lease_token);

    let link = closer_model::WebLink::parse("https://tracker.example/CLOSER-1").expect("a link");
    assert!(store
        .mark_handoff_delivered(
            outbox_id,
            claimed[0].lease_token,
            Some("CLOSER-1"),
            Some(&link)
        )
        .await
        .expect("delivered"));
    assert!(!store
        .mark_handoff_failed(outbox_id, claimed[0].lease_token, "late failure", None)
        .await
        .expect("failed"));
    let leads = store.leads(10).await.expect("leads");
    let entry = &leads[0].1[0];
    assert_eq!(
        (
            entry.status,
            entry.external_id.as_deref(),
            entry.last_error.as_deref()
        ),
        (OutboxStatus::Delivered, Some("CLOSER-1"), None),
        "a delivered row stays delivered"
    );
    assert!(entry.delivered_at.is_some());
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_lease_taken_over_can_neither_be_renewed_nor_settled_by_its_old_holder(pool: PgPool) {
    let store = Store::from_pool(pool);
    let targets = ["tracker".to_owned()];
    let turn = new_turn(&store, &inbound("15", "1", "+7 921 555-12-34")).await;
    let created = lead("Нужен склад", Some("+79215551234"), None);
    turn.commit(TurnOutcome {
        new_lead: Some(&created),
        handoff_targets: &targets,
        ..outcome(json!({}), &[])
    })
    .await
    .expect("commit");
    let lease = Duration::from_secs(120);
    let start = Utc::now();

    // The first worker claims the row, and renews its lease before a call to the target.
    let first = store
        .claim_due_handoffs(start, 10, lease)
        .await
        .expect("claim")
        .remove(0);
    let outbox_id = first.entry.id;
    let renewed_at = start + chrono::Duration::seconds(100);
    assert!(store
        .renew_handoff_lease(outbox_id, first.lease_token, renewed_at, lease)
        .await
        .expect("renew"));
    // The claim's two minutes are over, the renewal's are not: nobody else may take it.
    assert!(store
        .claim_due_handoffs(start + chrono::Duration::seconds(150), 10, lease)
        .await
        .expect("claim")
        .is_empty());

    // The renewed lease runs out too (the worker hangs): a second worker claims the row.
    let second = store
        .claim_due_handoffs(renewed_at + chrono::Duration::seconds(121), 10, lease)
        .await
        .expect("claim")
        .remove(0);
    assert_eq!((second.entry.id, second.entry.attempts), (outbox_id, 2));
    assert_ne!(second.lease_token, first.lease_token);

    // The first worker wakes up: it can neither renew nor settle, so it stops.
    let later = renewed_at + chrono::Duration::seconds(125);
    assert!(!store
        .renew_handoff_lease(outbox_id, first.lease_token, later, lease)
        .await
        .expect("renew"));
    let link = closer_model::WebLink::parse("https://tracker.example/FIRST").expect("a link");
    assert!(!store
        .mark_handoff_delivered(outbox_id, first.lease_token, Some("FIRST"), Some(&link))
        .await
        .expect("delivered"));
    assert!(!store
        .mark_handoff_failed(outbox_id, first.lease_token, "HTTP 503", Some(later))
        .await
        .expect("failed"));
    let entry = &store.leads(10).await.expect("leads")[0].1[0];
    assert_eq!(
        (entry.status, entry.external_id.as_deref()),
        (OutboxStatus::InFlight, None),
        "the second worker's row is untouched"
    );

    // The second worker holds the row and settles it.
    assert!(store
        .renew_handoff_lease(outbox_id, second.lease_token, later, lease)
        .await
        .expect("renew"));
    assert!(store
        .mark_handoff_delivered(outbox_id, second.lease_token, Some("SECOND"), None)
        .await
        .expect("delivered"));
    assert!(
        !store
            .renew_handoff_lease(outbox_id, second.lease_token, later, lease)
            .await
            .expect("renew"),
        "a settled row has no lease left to renew"
    );
    let entry = &store.leads(10).await.expect("leads")[0].1[0];
    assert_eq!(
        (entry.status, entry.external_id.as_deref()),
        (OutboxStatus::Delivered, Some("SECOND"))
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_conversation_can_be_taken_over(pool: PgPool) {
    let store = Store::from_pool(pool);
    let turn = new_turn(&store, &inbound("15", "1", "привет")).await;
    let conversation_id = turn.conversation.id;
    turn.commit(outcome(json!({}), &[])).await.expect("commit");
    assert!(store
        .set_taken_over(conversation_id, Some("anna"))
        .await
        .expect("take over"));
    let turn = new_turn(&store, &inbound("15", "2", "есть кто?")).await;
    assert_eq!(turn.conversation.taken_over_by.as_deref(), Some("anna"));
    drop(turn);
    assert!(!store
        .set_taken_over(uuid::Uuid::new_v4(), None)
        .await
        .expect("no such conversation"));
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_persons_message_is_stored_once_pending_and_announced(pool: PgPool) {
    let store = Store::from_pool(pool);
    let mut activity = store.subscribe();
    let turn = new_turn(&store, &inbound("16", "1", "хочу поговорить с человеком")).await;
    let conversation_id = turn.conversation.id;
    turn.commit(outcome(json!({}), &[answer("Соединяю")]))
        .await
        .expect("commit");
    assert_eq!(
        activity.recv().await.expect("announced").kind,
        closer_store::ActivityKind::Inbound
    );
    assert_eq!(
        activity.recv().await.expect("announced").kind,
        closer_store::ActivityKind::Replies
    );
    store
        .mark_reply_sent(
            store
                .pending_replies(Channel::Telegram, "16", 10)
                .await
                .expect("pending")[0]
                .message_id,
            &["100".to_owned()],
        )
        .await
        .expect("sent");

    let first = store
        .record_person_message(
            conversation_id,
            "1700000000.000100",
            "Anna",
            "Здравствуйте, я Анна",
        )
        .await
        .expect("stored")
        .expect("the conversation exists");
    let again = store
        .record_person_message(
            conversation_id,
            "1700000000.000100",
            "Anna",
            "Здравствуйте, я Анна",
        )
        .await
        .expect("stored")
        .expect("the conversation exists");
    assert!(!first.duplicate);
    assert!(again.duplicate, "a platform's retry is stored once");
    assert_eq!(first.message_id, again.message_id);
    assert_eq!(
        (first.channel, first.chat_id.as_str()),
        (Channel::Telegram, "16")
    );

    // Nobody had taken the conversation over: the person's message does, so that the
    // assistant and the person never both answer.
    let kinds: Vec<_> = [activity.recv().await, activity.recv().await]
        .into_iter()
        .map(|activity| activity.expect("announced").kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            closer_store::ActivityKind::TakenOver {
                by: "Anna".to_owned()
            },
            closer_store::ActivityKind::PersonMessage
        ]
    );
    assert!(activity.try_recv().is_err(), "the repeat announces nothing");

    let pending = store
        .pending_replies(Channel::Telegram, "16", 10)
        .await
        .expect("pending");
    assert_eq!(
        pending.len(),
        1,
        "the person's message waits for the sender"
    );
    assert_eq!(pending[0].reply.kind, ReplyKind::Person);
    assert_eq!(pending[0].reply.text, "Здравствуйте, я Анна");
    let transcript = store.transcript(conversation_id).await.expect("transcript");
    let last = transcript.last().expect("a line");
    assert_eq!(last.author.as_deref(), Some("Anna"));
    let after = store
        .transcript_after(conversation_id, transcript[transcript.len() - 2].id)
        .await
        .expect("transcript");
    assert_eq!(after.len(), 1);

    assert!(matches!(
        store
            .record_person_message(conversation_id, "2", "Anna", "  ")
            .await,
        Err(StoreError::Rejected { .. })
    ));
    assert_eq!(
        store
            .record_person_message(uuid::Uuid::new_v4(), "3", "Anna", "hello")
            .await
            .expect("no such conversation"),
        None
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_task_is_stored_once_per_key_and_claimed_with_its_conversations_lead(pool: PgPool) {
    let store = Store::from_pool(pool);
    let turn = new_turn(&store, &inbound("17", "1", "Иван, +7 903 123-45-67")).await;
    let conversation_id = turn.conversation.id;
    let lead = NewLead {
        contact: Contact {
            name: Some("Иван".to_owned()),
            phone: Phone::parse("+7 903 123-45-67").ok(),
            ..Contact::default()
        },
        summary: "CRM".to_owned(),
        ..NewLead::default()
    };
    turn.commit(TurnOutcome {
        new_lead: Some(&lead),
        ..outcome(json!({}), &[])
    })
    .await
    .expect("commit");

    let task = closer_model::NewTask {
        key: "slack:T1".to_owned(),
        title: "Перезвонить".to_owned(),
        requested_by: "anna".to_owned(),
        conversation_id: Some(conversation_id),
        target: None,
    };
    let targets = vec!["jira".to_owned(), "bitrix".to_owned()];
    let first = store.create_task(&task, &targets).await.expect("stored");
    let again = store.create_task(&task, &targets).await.expect("stored");
    assert!(again.duplicate);
    assert_eq!(first.value, again.value);
    assert!(matches!(
        store
            .create_task(
                &closer_model::NewTask {
                    key: "slack:T2".to_owned(),
                    title: " ".to_owned(),
                    ..task.clone()
                },
                &targets
            )
            .await,
        Err(StoreError::Rejected { .. })
    ));

    let claimed = store
        .claim_due_handoffs(
            Utc::now() + chrono::Duration::seconds(1),
            10,
            Duration::from_secs(60),
        )
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 2, "one row per target, once");
    for handoff in &claimed {
        assert_eq!(handoff.entry.task_id, Some(first.value.id));
        assert_eq!(handoff.entry.lead_id, None);
        match &handoff.subject {
            closer_store::Subject::Task { task, lead } => {
                assert_eq!(task.title, "Перезвонить");
                assert_eq!(
                    lead.as_ref()
                        .and_then(|lead| lead.details.contact.name.as_deref()),
                    Some("Иван"),
                    "the task carries its conversation's lead"
                );
            }
            other => panic!("a task, not {other:?}"),
        }
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn embeddings_are_cached_by_model_and_text_hash(pool: PgPool) {
    let store = Store::from_pool(pool);
    let vectors = vec![
        ("h1".to_owned(), vec![0.5f32, -0.25, 1.0]),
        ("h2".to_owned(), vec![0.0f32, 0.75, -1.0]),
    ];
    store.store_embeddings("model-a", &vectors).await.unwrap();
    // Stored again (a second replica, a re-import): kept once, the first value wins.
    store
        .store_embeddings("model-a", &[("h1".to_owned(), vec![9.0, 9.0, 9.0])])
        .await
        .unwrap();
    let hashes = vec!["h1".to_owned(), "h2".to_owned(), "h3".to_owned()];
    let found = store.cached_embeddings("model-a", &hashes).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found["h1"], vec![0.5f32, -0.25, 1.0]);
    assert_eq!(found["h2"], vec![0.0f32, 0.75, -1.0]);
    // Another model's vectors are its own.
    let other = store.cached_embeddings("model-b", &hashes).await.unwrap();
    assert!(other.is_empty());
}
