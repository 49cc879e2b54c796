//! AnythingLLM as the answer source, against the local fake of its developer API: the client's
//! contract (refusals, aborts inside a 200, HTML and plain-text errors, streams with two
//! closes), `kb sync` idempotence, refusals turned into the assistant's own decline, the
//! deadline and the breaker falling back to the built-in retriever, the key kept out of errors,
//! a whole Telegram conversation answered through AnythingLLM, and the workspace kept to the
//! store's public documents (synced on every change, strangers taken out, a workspace out of
//! sync never asked).

use std::sync::Arc;
use std::time::Duration;

use closer_engine::kb_sync::{sync_workspace, WorkspaceSync};
use closer_engine::{AnswerPolicy, DraftError, Drafts, Engine};
use closer_knowledge::anythingllm::{
    AnythingLlm, AnythingLlmError, AnythingLlmSettings, ChatMode, ChatOutcome, SessionId,
    StreamEvent,
};
use closer_model::{Audience, Channel, ReplyKind};
use closer_store::Store;
use closer_tests::fake_anythingllm::{FakeAnythingLlm, Fault, ANYTHINGLLM_KEY, WORKSPACE};
use closer_tests::{demo_engine, text};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(60);

fn settings(fake: &FakeAnythingLlm, key: &str) -> AnythingLlmSettings {
    AnythingLlmSettings {
        base_url: fake.base_url(),
        workspace: WORKSPACE.to_owned(),
        api_key: SecretString::from(key.to_owned()),
        request_timeout: Duration::from_secs(10),
    }
}

fn client(fake: &FakeAnythingLlm) -> AnythingLlm {
    AnythingLlm::new(&settings(fake, ANYTHINGLLM_KEY)).expect("a client")
}

fn session(key: &str) -> SessionId {
    SessionId::parse(key).expect("a session id")
}

/// A workspace holding one English pricing document.
fn seed_pricing(fake: &FakeAnythingLlm) {
    fake.seed_document(
        "Pricing",
        "en-pricing.md",
        "Plans.\n\nThe Pro plan costs 49 USD per month per workspace and includes unlimited bookings.",
    );
}

/// The demo engine answering product questions through `fake`.
async fn engine_with(pool: PgPool, fake: &FakeAnythingLlm, policy: AnswerPolicy) -> Engine {
    demo_engine(pool, Vec::new())
        .await
        .with_answer_source(Arc::new(client(fake)), policy)
}

fn quick_policy() -> AnswerPolicy {
    AnswerPolicy {
        deadline: Duration::from_secs(5),
        breaker_failures: 2,
        breaker_cool_down: Duration::from_millis(300),
        stream: false,
        stream_limit: Duration::from_secs(30),
    }
}

// ---------------------------------------------------------------------------------------------
// The client's contract

#[tokio::test]
async fn chat_answers_with_citations_and_refuses_in_query_mode() {
    let fake = FakeAnythingLlm::start().await;
    let client = client(&fake);
    let conversation = session("web:1");

    // No documents at all: the refusal shape (200, no sources, no chatId).
    let refused = client
        .chat("How much is the Pro plan?", ChatMode::Query, &conversation)
        .await
        .expect("a 200");
    assert!(
        matches!(refused, ChatOutcome::Refused { .. }),
        "{refused:?}"
    );

    seed_pricing(&fake);
    let answered = client
        .chat("How much is the Pro plan?", ChatMode::Query, &conversation)
        .await
        .expect("a 200");
    let ChatOutcome::Answered(answer) = answered else {
        panic!("an answer: {answered:?}");
    };
    assert!(answer.text.contains("49 USD"), "{answer:?}");
    assert!(
        !answer.text.contains("think"),
        "reasoning is stripped: {answer:?}"
    );
    assert_eq!(answer.sources[0].title, "Pricing");
    assert_eq!(answer.sources[0].source, "en-pricing.md");
    assert!(!answer.sources[0].excerpt.contains("document_metadata"));
    assert!(answer.sources[0].score.is_some_and(|score| score > 0.0));

    // Every chat carried the mode and the session.
    for request in fake.requests_to("/chat") {
        assert_eq!(request.body["mode"], "query", "{request:?}");
        assert_eq!(request.body["sessionId"], "web:1", "{request:?}");
    }
}

#[tokio::test]
async fn leaving_the_mode_out_would_get_an_unsourced_answer_so_it_is_always_sent() {
    let fake = FakeAnythingLlm::start().await;
    seed_pricing(&fake);
    // What a client that leaves `mode` out gets from a new workspace (chatMode automatic): an
    // answer from general knowledge, with a chatId and no sources.
    let raw: Value = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/workspace/{WORKSPACE}/chat",
            fake.base_url()
        ))
        .bearer_auth(ANYTHINGLLM_KEY)
        .json(&serde_json::json!({"message": "Can you write me a poem?", "sessionId": "x"}))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    assert!(raw["chatId"].is_number() && raw["sources"] == serde_json::json!([]));

    let client = client(&fake);
    let outcome = client
        .chat(
            "Can you write me a poem?",
            ChatMode::Query,
            &session("web:2"),
        )
        .await
        .expect("a 200");
    assert!(
        matches!(outcome, ChatOutcome::Refused { .. }),
        "{outcome:?}"
    );
    let mut stream = client
        .stream_chat("How much is Pro?", ChatMode::Query, &session("web:2"))
        .await
        .expect("a stream");
    while stream.next().await.expect("a valid stream").is_some() {}
    client
        .reset_session(&session("web:2"))
        .await
        .expect("a reset");
    let sent: Vec<Value> = fake
        .requests()
        .into_iter()
        .filter(|request| request.path.contains("chat"))
        .map(|request| request.body)
        .collect();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert!(
        sent[1..]
            .iter()
            .all(|body| body["mode"] == "query" && body["sessionId"] == "web:2"),
        "mode and session always sent: {sent:?}"
    );
    assert_eq!(fake.resets_without_session(), 0);
}

#[tokio::test]
async fn a_stream_arrives_in_pieces_and_ends_on_finalize_with_sources() {
    let fake = FakeAnythingLlm::start().await;
    seed_pricing(&fake);
    let client = client(&fake);
    let mut stream = client
        .stream_chat(
            "How much is the Pro plan?",
            ChatMode::Query,
            &session("web:3"),
        )
        .await
        .expect("a stream");
    let mut pieces = Vec::new();
    let mut done = None;
    while let Some(event) = stream.next().await.expect("a valid stream") {
        match event {
            StreamEvent::Text(piece) => pieces.push(piece),
            StreamEvent::Done(outcome) => done = Some(outcome),
        }
    }
    assert!(pieces.len() > 3, "the answer arrives in pieces: {pieces:?}");
    let streamed: String = pieces.concat();
    assert!(
        !streamed.contains("<think>") && !streamed.contains("context has"),
        "{streamed}"
    );
    let Some(ChatOutcome::Answered(answer)) = done else {
        panic!("the stream ends with a sourced answer: {done:?}");
    };
    assert_eq!(answer.text, streamed.trim());
    assert_eq!(answer.sources[0].source, "en-pricing.md");

    // A refusal is one event, then the end of the stream.
    let mut refusal = client
        .stream_chat(
            "Do you sell spaceships?",
            ChatMode::Query,
            &session("web:3"),
        )
        .await
        .expect("a stream");
    assert!(matches!(
        refusal.next().await,
        Ok(Some(StreamEvent::Done(ChatOutcome::Refused { .. })))
    ));
    assert!(matches!(refusal.next().await, Ok(None)));

    // An abort in the middle is an error, after the pieces already shown.
    fake.fail_next(Fault::StreamAbort("The LLM provider went away".to_owned()));
    let mut aborted = client
        .stream_chat(
            "How much is the Pro plan?",
            ChatMode::Query,
            &session("web:3"),
        )
        .await
        .expect("a stream");
    let mut outcome = Ok(None);
    for _ in 0..10 {
        outcome = aborted.next().await;
        if !matches!(outcome, Ok(Some(StreamEvent::Text(_)))) {
            break;
        }
    }
    assert!(
        matches!(&outcome, Err(AnythingLlmError::Aborted(message)) if message.contains("went away")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn error_shapes_are_told_apart() {
    let fake = FakeAnythingLlm::start().await;
    let client = client(&fake);
    let conversation = session("web:4");
    let ask = || client.chat("How much?", ChatMode::Query, &conversation);

    fake.fail_next(Fault::PlainStatus(500));
    assert!(
        matches!(ask().await, Err(AnythingLlmError::Status { status: 500, message }) if message == "Internal Server Error")
    );
    fake.fail_next(Fault::Html);
    assert!(matches!(
        ask().await,
        Err(AnythingLlmError::NotJson { status: 200, .. })
    ));
    fake.fail_next(Fault::AbortInOk(
        "No text completion could be completed with this input.".to_owned(),
    ));
    assert!(
        matches!(ask().await, Err(AnythingLlmError::Aborted(message)) if message.starts_with("No text completion"))
    );
    fake.fail_next(Fault::Exception("connect ECONNREFUSED".to_owned()));
    assert!(
        matches!(ask().await, Err(AnythingLlmError::Status { status: 500, message }) if message == "connect ECONNREFUSED")
    );

    // A base URL that reaches the web app rather than the API.
    let wrong = AnythingLlm::new(&AnythingLlmSettings {
        base_url: format!("{}/app", fake.base_url()),
        ..settings(&fake, ANYTHINGLLM_KEY)
    })
    .expect("a client");
    assert!(matches!(
        wrong.workspace().await,
        Err(AnythingLlmError::NotJson { .. })
    ));

    // An unknown workspace: get answers [] (None), chat answers 400.
    let unknown = AnythingLlm::new(&AnythingLlmSettings {
        workspace: "nope".to_owned(),
        ..settings(&fake, ANYTHINGLLM_KEY)
    })
    .expect("a client");
    assert_eq!(unknown.workspace().await.expect("a 200"), None);
    assert!(matches!(
        unknown.chat("Hi there", ChatMode::Query, &conversation).await,
        Err(AnythingLlmError::UnknownWorkspace(slug)) if slug == "nope"
    ));

    // Vector search: nothing embedded is an empty list; a hit carries its renamed metadata.
    assert!(client
        .vector_search("pricing", 4, 0.2)
        .await
        .expect("a 200")
        .is_empty());
    seed_pricing(&fake);
    let hits = client
        .vector_search("Pro plan pricing", 4, 0.2)
        .await
        .expect("a 200");
    assert_eq!(hits[0].source, "en-pricing.md");
    assert!(!hits[0].excerpt.contains("document_metadata"));
}

#[tokio::test]
async fn the_key_never_appears_in_errors() {
    let fake = FakeAnythingLlm::start().await;
    let secret = "sk-ALLM-never-print-me-42";
    let wrong = AnythingLlm::new(&settings(&fake, secret)).expect("a client");
    let error = wrong
        .chat("How much?", ChatMode::Query, &session("web:5"))
        .await
        .expect_err("a 403");
    assert!(matches!(error, AnythingLlmError::Unauthorized), "{error:?}");
    let unreachable = AnythingLlm::new(&AnythingLlmSettings {
        base_url: "http://127.0.0.1:9".to_owned(),
        ..settings(&fake, secret)
    })
    .expect("a client");
    let down = unreachable
        .check_auth()
        .await
        .expect_err("nothing listens on port 9");
    assert!(matches!(down, AnythingLlmError::Unreachable(_)), "{down:?}");
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        down.to_string(),
        format!("{down:?}"),
        format!("{wrong:?}"),
    ] {
        assert!(!shown.contains(secret), "the key leaked: {shown}");
    }
    assert!(fake.requests().iter().all(|request| !request.authorized));
}

// ---------------------------------------------------------------------------------------------
// kb sync

#[sqlx::test(migrations = "../migrations")]
async fn a_second_sync_changes_nothing_and_changes_are_replaced_or_removed(pool: PgPool) {
    let engine = demo_engine(pool.clone(), Vec::new()).await;
    let store = engine.store().clone();
    let fake = FakeAnythingLlm::start().await;
    let client = client(&fake);
    let dialog = engine.dialog_config();

    let documents = store.documents().await.expect("documents");
    let public: Vec<&str> = documents
        .iter()
        .filter(|document| document.audience == Audience::Public)
        .map(|document| document.source.as_str())
        .collect();
    assert!(
        public.len() < documents.len(),
        "the demo has internal notes"
    );

    let mut calls = 0;
    let first = sync_workspace(&store, &client, dialog, |_, _, _| calls += 1)
        .await
        .expect("the first sync");
    assert!(calls > public.len());
    assert_eq!(first.added.len(), public.len());
    assert!(first.persona_updated);
    let embedded = fake.embedded();
    assert_eq!(embedded.len(), public.len());
    assert!(
        embedded
            .iter()
            .all(|(_, title, _)| !title.to_lowercase().contains("внутренн")),
        "internal notes never reach the workspace"
    );
    let (prompt, refusal) = fake.persona();
    assert!(prompt.is_some_and(|prompt| prompt.contains("Demo Company")));
    assert!(refusal.is_some_and(|refusal| refusal.contains("manager")));

    let uploads = fake.requests_to("/raw-text").len();
    let second = sync_workspace(&store, &client, dialog, |_, _, _| {})
        .await
        .expect("the second sync");
    assert!(!second.changed(), "{second:?}");
    assert_eq!(second.unchanged.len(), public.len());
    assert_eq!(
        fake.requests_to("/raw-text").len(),
        uploads,
        "nothing uploaded again"
    );
    assert_eq!(
        fake.requests_to("/update").len(),
        1,
        "the persona is set once"
    );

    // One document changes, one disappears, and one is taken out in AnythingLLM's web app.
    let mut changed: Vec<_> = documents.clone();
    let faq = changed
        .iter_mut()
        .find(|document| document.source == "en-faq.md")
        .expect("the English FAQ");
    faq.content
        .push_str("\n\nNew: the Pro plan now includes SMS reminders.\n");
    faq.content_hash = "changed".to_owned();
    changed.retain(|document| document.source != "en-security.md");
    store.sync_documents(&changed).await.expect("the re-import");
    let pushed = store.pushed_documents(WORKSPACE).await.expect("tracked");
    let overview = pushed
        .iter()
        .find(|document| document.source == "en-overview.md")
        .expect("the overview was pushed");
    fake.unembed(&overview.location);

    let third = sync_workspace(&store, &client, dialog, |_, _, _| {})
        .await
        .expect("the third sync");
    assert_eq!(third.replaced, ["en-faq.md", "en-overview.md"]);
    assert_eq!(third.removed, ["en-security.md"]);
    assert!(third.added.is_empty());
    let embedded = fake.embedded();
    assert_eq!(embedded.len(), public.len() - 1);
    assert!(
        embedded
            .iter()
            .any(|(_, _, text)| text.contains("now includes SMS reminders")),
        "the new version is embedded"
    );
    // The replaced and removed files are deleted; the overview's old file stays, as someone
    // took it out by hand and it is no longer Closer's to delete.
    assert_eq!(fake.stored_documents(), public.len());
    let fourth = sync_workspace(&store, &client, dialog, |_, _, _| {})
        .await
        .expect("the fourth sync");
    assert!(!fourth.changed(), "{fourth:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn embeddings_that_silently_fail_are_reported(pool: PgPool) {
    let engine = demo_engine(pool.clone(), Vec::new()).await;
    let fake = FakeAnythingLlm::start().await;
    fake.set_embeddings_fail(true);
    let error = sync_workspace(
        engine.store(),
        &client(&fake),
        engine.dialog_config(),
        |_, _, _| {},
    )
    .await
    .expect_err("update-embeddings answered 200 but embedded nothing");
    assert!(error.to_string().contains("did not apply"), "{error}");
    assert!(engine
        .store()
        .pushed_documents(WORKSPACE)
        .await
        .expect("tracked")
        .is_empty());
    // Once AnythingLLM works again, the sync completes.
    fake.set_embeddings_fail(false);
    let report = sync_workspace(
        engine.store(),
        &client(&fake),
        engine.dialog_config(),
        |_, _, _| {},
    )
    .await
    .expect("the sync completes");
    assert!(!report.added.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The engine: refusals, deadline, breaker

#[sqlx::test(migrations = "../migrations")]
async fn answers_come_from_anythingllm_and_a_refusal_is_the_assistants_own_decline(pool: PgPool) {
    let fake = FakeAnythingLlm::start().await;
    seed_pricing(&fake);
    let engine = engine_with(pool, &fake, quick_policy()).await;

    let answered = engine
        .handle(&text("c1", "1", "How much does the Pro plan cost?"))
        .await
        .expect("handled");
    let answer = &answered.replies[0];
    assert_eq!(answer.kind, ReplyKind::Answer, "{answered:?}");
    assert!(answer.text.contains("49 USD"), "{answer:?}");
    assert_eq!(answer.citations[0].source, "en-pricing.md");

    let refused = engine
        .handle(&text("c1", "2", "Do you sell quantum spaceships?"))
        .await
        .expect("handled");
    let decline = &refused.replies[0];
    assert_eq!(decline.kind, ReplyKind::Declined, "{refused:?}");
    assert!(decline.citations.is_empty());
    assert!(
        decline
            .quick_replies
            .iter()
            .any(|button| button.payload == "handoff"),
        "a person is offered: {decline:?}"
    );

    // Small talk and contact details are the dialog's own: AnythingLLM is not asked.
    let asked = fake.chats().len();
    engine
        .handle(&text("c1", "3", "Thanks!"))
        .await
        .expect("handled");
    engine
        .handle(&text("c1", "4", "My email is anna@example.com"))
        .await
        .expect("handled");
    assert_eq!(fake.chats().len(), asked, "{:?}", fake.chats());
    // A redelivered question is not asked again.
    let again = engine
        .handle(&text("c1", "1", "How much does the Pro plan cost?"))
        .await
        .expect("handled");
    assert!(again.duplicate);
    assert_eq!(fake.chats().len(), asked);
    assert!(fake
        .chats()
        .iter()
        .all(|(session, _)| session.as_deref() == Some("web:c1")));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_slow_anythingllm_gives_way_to_the_built_in_answer(pool: PgPool) {
    let fake = FakeAnythingLlm::start().await;
    seed_pricing(&fake);
    fake.set_latency(Duration::from_secs(5));
    let engine = engine_with(
        pool,
        &fake,
        AnswerPolicy {
            deadline: Duration::from_millis(300),
            ..quick_policy()
        },
    )
    .await;
    let handled = engine
        .handle(&text("c2", "1", "Сколько стоит тариф?"))
        .await
        .expect("handled");
    let answer = &handled.replies[0];
    assert_eq!(answer.kind, ReplyKind::Answer, "{handled:?}");
    assert!(
        answer
            .citations
            .iter()
            .any(|citation| citation.source == "tarify.md" || citation.source == "prajs-list.csv"),
        "the built-in retriever answered: {answer:?}"
    );
    assert_eq!(fake.requests_to("/chat").len(), 1, "AnythingLLM was asked");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_breaker_opens_on_failures_and_a_probe_closes_it(pool: PgPool) {
    let fake = FakeAnythingLlm::start().await;
    seed_pricing(&fake);
    let engine = engine_with(pool, &fake, quick_policy()).await;
    let remote = engine.remote_answers().expect("a remote source").clone();

    // Two failures of different shapes: both answered by the built-in retriever.
    fake.set_outage(Some(Fault::PlainStatus(500)));
    fake.fail_next(Fault::Html);
    for id in ["1", "2"] {
        let handled = engine
            .handle(&text("c3", id, "Сколько стоит тариф?"))
            .await
            .expect("handled");
        assert_eq!(handled.replies[0].kind, ReplyKind::Answer, "{handled:?}");
    }
    assert!(remote.breaker_is_open());
    let asked = fake.requests_to("/chat").len();
    assert_eq!(asked, 2);

    // Open: AnythingLLM is not asked, the prospect still gets an answer.
    let handled = engine
        .handle(&text("c3", "3", "Сколько стоит тариф?"))
        .await
        .expect("handled");
    assert_eq!(handled.replies[0].kind, ReplyKind::Answer);
    assert_eq!(fake.requests_to("/chat").len(), asked, "not hammered");

    // AnythingLLM comes back; after the cool-down one question probes it and closes the breaker.
    fake.set_outage(None);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while remote.breaker_is_open() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cool-down never ends"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let probed = engine
        .handle(&text("c3", "4", "How much does the Pro plan cost?"))
        .await
        .expect("handled");
    assert_eq!(fake.requests_to("/chat").len(), asked + 1);
    assert_eq!(
        probed.replies[0].citations[0].source, "en-pricing.md",
        "{probed:?}"
    );
    assert!(!remote.breaker_is_open());
}

// ---------------------------------------------------------------------------------------------
// A whole Telegram conversation

/// An engine answering through `anythingllm` under `policy`, its workspace holding the demo
/// knowledge base.
async fn synced_engine(
    pool: PgPool,
    anythingllm: &FakeAnythingLlm,
    policy: AnswerPolicy,
) -> Engine {
    let engine = engine_with(pool, anythingllm, policy).await;
    let report = sync_workspace(
        engine.store(),
        &client(anythingllm),
        engine.dialog_config(),
        |_, _, _| {},
    )
    .await
    .expect("the knowledge base is pushed");
    assert!(!report.added.is_empty());
    engine
}

/// The Telegram adapter polling `telegram` for `engine`, until the returned sender is dropped.
async fn run_telegram(
    engine: Engine,
    telegram: &closer_tests::fake_telegram::FakeTelegram,
) -> tokio::sync::oneshot::Sender<()> {
    use closer_telegram::{Limits, Mode, Telegram, TelegramConfig};
    let adapter = Telegram::connect(
        TelegramConfig {
            token: closer_tests::fake_telegram::FAKE_TOKEN.to_owned().into(),
            api_url: telegram.api_url(),
            mode: Mode::Polling {
                timeout: Duration::from_secs(5),
            },
            limits: Limits::default(),
        },
        engine,
    )
    .await
    .expect("the adapter connects");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(adapter.run(async move {
        let _ = stopped.await;
    }));
    stop
}

#[sqlx::test(migrations = "../migrations")]
async fn a_telegram_conversation_is_answered_through_anythingllm(pool: PgPool) {
    use closer_tests::fake_telegram::FakeTelegram;

    let anythingllm = FakeAnythingLlm::start().await;
    let engine = synced_engine(pool.clone(), &anythingllm, quick_policy()).await;
    let telegram = FakeTelegram::start().await;
    let _stop = run_telegram(engine, &telegram).await;
    let chat = 701;
    let wait_for = |count: usize| {
        let telegram = telegram.clone();
        async move {
            assert!(
                telegram
                    .wait_until(DEADLINE, |fake| fake.sent_to(chat).len() >= count)
                    .await,
                "chat {chat}: fewer than {count} messages: {:#?}",
                telegram.sent_to(chat)
            );
            telegram.sent_to(chat)
        }
    };

    telegram.send_text(chat, "/start");
    let sent = wait_for(1).await.len();
    telegram.send_text(chat, "Сколько стоит тариф Салон?");
    let answer = wait_for(sent + 1).await;
    let answer = &answer[sent];
    assert!(answer.text.contains("Источник"), "cited: {answer:#?}");
    assert!(!answer.text.contains("think"), "{answer:#?}");
    let chats = anythingllm.chats();
    assert_eq!(chats.len(), 1, "{chats:?}");
    assert_eq!(chats[0].0.as_deref(), Some("telegram:701"));

    let sent = telegram.sent_to(chat).len();
    telegram.send_text(chat, "Меня зовут Анна, мой телефон +7 903 123-45-67");
    wait_for(sent + 1).await;
    let store = Store::from_pool(pool.clone());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let lead = loop {
        let conversation = store
            .conversation_by_chat(Channel::Telegram, &chat.to_string())
            .await
            .expect("the store answers")
            .expect("the conversation");
        if let Some(lead) = store
            .lead_for_conversation(conversation.id)
            .await
            .expect("the store answers")
        {
            break lead;
        }
        assert!(tokio::time::Instant::now() < deadline, "no lead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        lead.details
            .contact
            .phone
            .as_ref()
            .map(|phone| phone.as_str()),
        Some("+79031234567")
    );
    assert_eq!(
        anythingllm.chats().len(),
        1,
        "contacts are the dialog's, not AnythingLLM's"
    );
}

// ---------------------------------------------------------------------------------------------
// Streamed answers shown as drafts

/// A channel's screen: every draft sent or edited, with when.
#[derive(Default)]
struct Screen {
    shown: std::sync::Mutex<Vec<Shown>>,
}

#[derive(Debug, Clone)]
struct Shown {
    edit: bool,
    id: String,
    text: String,
    at: tokio::time::Instant,
}

impl Screen {
    fn shown(&self) -> Vec<Shown> {
        self.shown.lock().expect("not poisoned").clone()
    }

    fn record(&self, edit: bool, id: &str, text: &str) {
        self.shown.lock().expect("not poisoned").push(Shown {
            edit,
            id: id.to_owned(),
            text: text.to_owned(),
            at: tokio::time::Instant::now(),
        });
    }
}

#[async_trait::async_trait]
impl Drafts for Screen {
    fn edit_interval(&self) -> Duration {
        Duration::from_millis(200)
    }

    async fn send_draft(&self, _chat_id: &str, text: &str) -> Result<String, DraftError> {
        let id = format!("d{}", self.shown().len());
        self.record(false, &id, text);
        Ok(id)
    }

    async fn edit_draft(&self, _chat_id: &str, id: &str, text: &str) -> Result<(), DraftError> {
        self.record(true, id, text);
        Ok(())
    }
}

fn streaming_policy() -> AnswerPolicy {
    AnswerPolicy {
        stream: true,
        ..quick_policy()
    }
}

/// A prospect's message on Telegram, whose replies are delivered from the store.
fn telegram_text(chat: &str, id: &str, words: &str) -> closer_model::InboundMessage {
    let mut message = text(chat, id, words);
    message.channel = Channel::Telegram;
    message
}

/// The replies of a chat waiting for Telegram's sender, with the draft each replaces.
async fn pending(store: &Store, chat: &str) -> Vec<(ReplyKind, Option<String>, bool)> {
    store
        .pending_replies(Channel::Telegram, chat, 20)
        .await
        .expect("the store answers")
        .into_iter()
        .map(|pending| {
            (
                pending.reply.kind,
                pending.replaces,
                !pending.reply.citations.is_empty(),
            )
        })
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_streamed_answer_shows_as_it_is_written_and_its_reply_replaces_the_draft(pool: PgPool) {
    let fake = FakeAnythingLlm::start().await;
    seed_pricing(&fake);
    fake.set_chunk_delay(Duration::from_millis(60));
    let engine = engine_with(pool.clone(), &fake, streaming_policy()).await;
    let screen = Screen::default();
    let message = telegram_text("s1", "1", "How much does the Pro plan cost?");
    let handled = engine
        .handle_streaming(&message, &screen)
        .await
        .expect("handled");

    let shown = screen.shown();
    assert!(shown.len() >= 2, "sent, then edited: {shown:#?}");
    assert!(!shown[0].edit && shown.iter().skip(1).all(|shown| shown.edit));
    assert!(shown.iter().all(|shown| shown.id == "d0"), "{shown:#?}");
    assert!(shown.iter().all(|shown| shown.text.ends_with('…')));
    assert!(
        !shown.iter().any(|shown| shown.text.contains("think")),
        "{shown:#?}"
    );
    for pair in shown.windows(2) {
        assert!(
            pair[1].text.len() > pair[0].text.len(),
            "it grows: {shown:#?}"
        );
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(200),
            "edits are paced: {shown:#?}"
        );
    }
    assert_eq!(fake.requests_to("/stream-chat").len(), 1);
    assert!(fake.requests_to("/chat").is_empty());

    // The answer, with its sources, replaces the draft; any other reply is a new message.
    let answer = handled
        .replies
        .iter()
        .find(|reply| reply.kind == ReplyKind::Answer)
        .expect("an answer");
    assert!(answer.text.contains("49 USD"), "{answer:?}");
    assert_eq!(answer.citations[0].source, "en-pricing.md");
    // The reply-time figures count from when the first words were shown.
    let shown_first: bool = sqlx::query_scalar(
        "SELECT first_shown_at < created_at FROM messages WHERE replaces_platform_id = 'd0'",
    )
    .fetch_one(&pool)
    .await
    .expect("the replacing reply");
    assert!(shown_first);
    let store = Store::from_pool(pool);
    let replies = pending(&store, "s1").await;
    assert_eq!(
        replies
            .iter()
            .filter(|(_, replaces, _)| replaces.is_some())
            .collect::<Vec<_>>(),
        vec![&(ReplyKind::Answer, Some("d0".to_owned()), true)],
        "{replies:?}"
    );
    assert_eq!(
        store
            .draft_for(Channel::Telegram, "s1", "1")
            .await
            .expect("the store answers"),
        None,
        "the reply carries the draft now"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_redelivered_message_edits_the_draft_already_on_screen(pool: PgPool) {
    let fake = FakeAnythingLlm::start().await;
    seed_pricing(&fake);
    fake.set_chunk_delay(Duration::from_millis(30));
    let store = Store::from_pool(pool.clone());
    // The first delivery showed draft "d7", then the process died before its commit.
    store
        .record_draft(Channel::Telegram, "s2", "1", "d7")
        .await
        .expect("recorded");
    let engine = engine_with(pool, &fake, streaming_policy()).await;
    let screen = Screen::default();
    engine
        .handle_streaming(
            &telegram_text("s2", "1", "How much does the Pro plan cost?"),
            &screen,
        )
        .await
        .expect("handled");
    let shown = screen.shown();
    assert!(!shown.is_empty());
    assert!(
        shown.iter().all(|shown| shown.edit && shown.id == "d7"),
        "no second draft: {shown:#?}"
    );
    assert!(pending(&store, "s2").await.contains(&(
        ReplyKind::Answer,
        Some("d7".to_owned()),
        true
    )));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stream_broken_midway_is_replaced_by_the_built_in_answer(pool: PgPool) {
    let fake = FakeAnythingLlm::start().await;
    seed_pricing(&fake);
    fake.set_chunk_delay(Duration::from_millis(30));
    fake.fail_next(Fault::StreamAbort(
        "No text completion could be completed with this input.".to_owned(),
    ));
    let engine = engine_with(pool.clone(), &fake, streaming_policy()).await;
    let screen = Screen::default();
    let handled = engine
        .handle_streaming(&telegram_text("s3", "1", "Сколько стоит тариф?"), &screen)
        .await
        .expect("handled");
    let shown = screen.shown();
    assert!(!shown.is_empty(), "the first words were shown");
    let answer = &handled.replies[0];
    assert_eq!(answer.kind, ReplyKind::Answer, "{handled:?}");
    assert!(
        answer
            .citations
            .iter()
            .all(|citation| citation.source != "en-pricing.md"),
        "the built-in retriever answered: {answer:?}"
    );
    let store = Store::from_pool(pool);
    assert_eq!(
        pending(&store, "s3").await[0],
        (ReplyKind::Answer, Some("d0".to_owned()), true),
        "the built-in answer replaces the broken draft"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn no_words_before_the_deadline_means_no_draft_and_the_built_in_answer(pool: PgPool) {
    let fake = FakeAnythingLlm::start().await;
    seed_pricing(&fake);
    fake.set_latency(Duration::from_secs(5));
    let engine = engine_with(
        pool.clone(),
        &fake,
        AnswerPolicy {
            deadline: Duration::from_millis(300),
            ..streaming_policy()
        },
    )
    .await;
    let screen = Screen::default();
    let handled = engine
        .handle_streaming(&telegram_text("s4", "1", "Сколько стоит тариф?"), &screen)
        .await
        .expect("handled");
    assert!(screen.shown().is_empty(), "{:#?}", screen.shown());
    assert_eq!(handled.replies[0].kind, ReplyKind::Answer);
    let store = Store::from_pool(pool);
    assert!(pending(&store, "s4")
        .await
        .iter()
        .all(|(_, replaces, _)| replaces.is_none()));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_telegram_prospect_sees_the_answer_written_then_the_cited_reply_in_its_place(
    pool: PgPool,
) {
    use closer_tests::fake_telegram::FakeTelegram;

    let anythingllm = FakeAnythingLlm::start().await;
    let engine = synced_engine(pool, &anythingllm, streaming_policy()).await;
    // A model writing for about three seconds.
    anythingllm.set_chunk_delay(Duration::from_millis(100));
    let telegram = FakeTelegram::start().await;
    let _stop = run_telegram(engine, &telegram).await;
    let chat = 702;
    telegram.send_text(chat, "/start");
    assert!(
        telegram
            .wait_until(DEADLINE, |fake| !fake.sent_to(chat).is_empty())
            .await
    );
    let before = telegram.sent_to(chat).len();
    telegram.send_text(chat, "Сколько стоит тариф Салон?");

    // The first words arrive as a plain message marked as being written.
    assert!(
        telegram
            .wait_until(DEADLINE, |fake| fake.sent_to(chat).len() > before)
            .await
    );
    let draft = telegram.sent_to(chat)[before].clone();
    assert!(draft.text.ends_with('…'), "{draft:#?}");
    assert!(!draft.text.contains("Источник"), "{draft:#?}");

    // It is edited as more arrives, then replaced by the reply with its sources.
    let replaced = |fake: &FakeTelegram| {
        fake.message(chat, draft.message_id)
            .and_then(|message| message["text"].as_str().map(str::to_owned))
            .is_some_and(|text| text.contains("Источник"))
    };
    assert!(
        telegram.wait_until(DEADLINE, replaced).await,
        "{:#?}",
        telegram.message(chat, draft.message_id)
    );
    let edits: Vec<_> = telegram
        .calls()
        .into_iter()
        .filter(|call| {
            call.method == "editmessagetext" && call.body["message_id"] == draft.message_id
        })
        .collect();
    assert!(
        edits.len() >= 2,
        "edited while written, then replaced: {edits:#?}"
    );
    let last = edits.last().expect("edits");
    assert_eq!(last.body["parse_mode"], "HTML");
    assert!(!last.body["text"]
        .as_str()
        .unwrap_or_default()
        .ends_with('…'));
    // Within Telegram's limit of a message a second per chat.
    let to_chat: Vec<_> = telegram
        .calls()
        .into_iter()
        .filter(|call| {
            matches!(call.method.as_str(), "sendmessage" | "editmessagetext")
                && call.body["chat_id"] == chat
        })
        .collect();
    for pair in to_chat.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(900),
            "paced: {to_chat:#?}"
        );
    }
    // The answer is on screen once: no other message repeats it.
    let repeated: Vec<_> = telegram
        .sent_to(chat)
        .into_iter()
        .filter(|sent| sent.message_id != draft.message_id && sent.text.contains("Источник"))
        .collect();
    assert!(repeated.is_empty(), "{repeated:#?}");
    assert_eq!(telegram.too_many_requests(), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_discord_prospect_sees_the_answer_written_then_the_cited_reply_in_its_place(
    pool: PgPool,
) {
    use closer_discord::{Discord, DiscordConfig, Interactions, Limits, Scope};
    use closer_tests::fake_discord::{FakeDiscord, APPLICATION_ID, FAKE_TOKEN};

    let anythingllm = FakeAnythingLlm::start().await;
    let engine = synced_engine(pool, &anythingllm, streaming_policy()).await;
    anythingllm.set_chunk_delay(Duration::from_millis(100));

    let discord = FakeDiscord::start().await;
    let sales = 3001;
    let adapter = Discord::connect(
        DiscordConfig {
            token: FAKE_TOKEN.to_owned().into(),
            application_id: APPLICATION_ID,
            api_url: discord.api_url(),
            scope: Scope {
                channels: std::collections::HashSet::from([sales]),
                direct_messages: true,
            },
            register_commands: false,
            command_guilds: Vec::new(),
            interactions: Interactions::Gateway,
            limits: Limits::default(),
        },
        engine,
    )
    .await
    .expect("the adapter connects");
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(adapter.run(async move {
        let _ = stopped.await;
    }));
    assert!(discord.wait_until(DEADLINE, FakeDiscord::connected).await);

    discord.send_message(sales, true, 4242, "Сколько стоит тариф Салон?");
    assert!(
        discord
            .wait_until(DEADLINE, |fake| !fake.sent_to(sales).is_empty())
            .await
    );
    let draft = discord.sent_to(sales)[0].clone();
    assert!(draft.content.ends_with('…'), "{draft:#?}");
    assert!(!draft.content.contains("Источник"), "{draft:#?}");
    let replaced = |fake: &FakeDiscord| {
        fake.sent_to(sales)
            .iter()
            .any(|sent| sent.id == draft.id && sent.content.contains("Источник"))
    };
    assert!(
        discord.wait_until(DEADLINE, replaced).await,
        "{:#?}",
        discord.sent_to(sales)
    );
    let sent = discord.sent_to(sales);
    let answer = sent
        .iter()
        .find(|sent| sent.id == draft.id)
        .expect("the draft");
    assert!(
        answer.edits >= 2,
        "edited while written, then replaced: {answer:#?}"
    );
    assert!(
        !answer.content.ends_with('…'),
        "the reply in its place: {answer:#?}"
    );
    assert_eq!(
        sent.iter()
            .filter(|sent| sent.content.contains("Источник"))
            .count(),
        1,
        "the answer is on screen once: {sent:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Internal stays internal: the workspace holds the store's public documents and nothing else

const ZEBRA: &str = "# Zebra grooming\n\nThe zebra grooming service costs 4200 rubles per visit and includes fresh stripes.\n";

/// The demo engine answering through `fake`, its workspace kept by a running
/// [`WorkspaceSync`] that checks every `check_every`; the sync stops with the returned sender.
async fn kept_engine(
    pool: PgPool,
    fake: &FakeAnythingLlm,
    check_every: Duration,
) -> (Engine, Arc<WorkspaceSync>, tokio::sync::oneshot::Sender<()>) {
    let engine = engine_with(pool, fake, quick_policy()).await;
    let sync = WorkspaceSync::new(
        engine.store().clone(),
        client(fake),
        engine.dialog_config().clone(),
        check_every,
    );
    let engine = engine.with_workspace_sync(sync.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sync.clone().run(async move {
        let _ = stopped.await;
    }));
    (engine, sync, stop)
}

/// Waits until `condition` holds, or fails the test naming `what` after the deadline.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the workspace embeds a document titled `title`.
fn embeds(fake: &FakeAnythingLlm, title: &str) -> bool {
    fake.embedded()
        .iter()
        .any(|(_, embedded, _)| embedded == title)
}

/// A console account with an API token, for the JSON API.
async fn api_token(store: &Store) -> String {
    assert!(
        closer_web::auth::create_account(store, "owner@example.com", "correct horse battery")
            .await
            .expect("the account is created")
    );
    closer_web::auth::create_api_token(store, "owner@example.com", "tests")
        .await
        .expect("a token")
}

/// Uploads `text` as `name` through the console's API, with `audience` when given.
async fn upload(address: &str, token: &str, name: &str, text: &str, audience: Option<&str>) {
    let mut form = reqwest::multipart::Form::new();
    if let Some(audience) = audience {
        form = form.text("audience", audience.to_owned());
    }
    let form = form.part(
        "file",
        reqwest::multipart::Part::bytes(text.as_bytes().to_vec()).file_name(name.to_owned()),
    );
    let response = reqwest::Client::new()
        .post(format!("{address}/api/knowledge/documents"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
}

/// `GET /api/health`'s AnythingLLM part.
async fn workspace_health(address: &str, token: &str) -> Value {
    let health: Value = reqwest::Client::new()
        .get(format!("{address}/api/health"))
        .bearer_auth(token)
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    health["anythingllm"].clone()
}

/// Whether any reply cites `source` or says `words`.
fn shows(handled: &closer_engine::Handled, source: &str, words: &str) -> bool {
    handled.replies.iter().any(|reply| {
        reply.text.contains(words)
            || reply
                .citations
                .iter()
                .any(|citation| citation.source == source)
    })
}

#[sqlx::test(migrations = "../migrations")]
async fn a_document_made_internal_leaves_the_workspace_and_no_prospect_answer_cites_it(
    pool: PgPool,
) {
    let fake = FakeAnythingLlm::start().await;
    // An hour between checks: only the changes themselves can trigger the syncs below.
    let (engine, sync, _stop) = kept_engine(pool.clone(), &fake, Duration::from_secs(3600)).await;
    let token = api_token(engine.store()).await;
    let app = closer_tests::spawn_app_on(engine.clone(), closer_web::WebConfig::default()).await;
    until("the first sync", || sync.may_answer()).await;

    // Uploaded public: it reaches the workspace by itself, and AnythingLLM answers with it.
    upload(&app.address, &token, "zebra-care.md", ZEBRA, Some("public")).await;
    until("the upload is embedded", || {
        embeds(&fake, "Zebra grooming") && sync.may_answer()
    })
    .await;
    let question = "How much is the zebra grooming?";
    let public = engine
        .handle(&text("z1", "1", question))
        .await
        .expect("handled");
    assert!(shows(&public, "zebra-care.md", "4200"), "{public:?}");
    assert!(fake
        .chats()
        .iter()
        .any(|(session, _)| session.as_deref() == Some("web:z1")));

    // Made internal: from the moment the change is stored, no prospect answer shows it —
    // not even before the workspace has caught up.
    upload(
        &app.address,
        &token,
        "zebra-care.md",
        ZEBRA,
        Some("internal"),
    )
    .await;
    let at_once = engine
        .handle(&text("z2", "1", question))
        .await
        .expect("handled");
    assert!(!shows(&at_once, "zebra-care.md", "4200"), "{at_once:?}");
    until("the internal document leaves the workspace", || {
        !embeds(&fake, "Zebra grooming") && sync.may_answer()
    })
    .await;
    let later = engine
        .handle(&text("z3", "1", question))
        .await
        .expect("handled");
    assert!(!shows(&later, "zebra-care.md", "4200"), "{later:?}");
    assert!(
        fake.chats()
            .iter()
            .any(|(session, _)| session.as_deref() == Some("web:z3")),
        "the workspace, in sync again, answers again"
    );
    let health = workspace_health(&app.address, &token).await;
    assert_eq!(health["answering"], true, "{health}");
}

#[sqlx::test(migrations = "../migrations")]
async fn documents_someone_else_puts_in_the_workspace_are_taken_out_and_shown_on_health(
    pool: PgPool,
) {
    let fake = FakeAnythingLlm::start().await;
    let (engine, sync, _stop) = kept_engine(pool.clone(), &fake, Duration::from_millis(200)).await;
    let token = api_token(engine.store()).await;
    let app = closer_tests::spawn_app_on(engine.clone(), closer_web::WebConfig::default()).await;
    until("the first sync", || sync.may_answer()).await;

    // Someone adds a document in AnythingLLM's own UI: the next check takes it out.
    fake.seed_document(
        "Partner price list",
        "partners.md",
        "The zebra partner discount is 17 percent on every partner order.",
    );
    until("the stranger is taken out", || {
        !embeds(&fake, "Partner price list")
    })
    .await;
    let health = workspace_health(&app.address, &token).await;
    assert_eq!(health["answering"], true, "{health}");
    assert_eq!(
        health["foreign_removed"][0]["title"], "Partner price list",
        "{health}"
    );
    let asked = engine
        .handle(&text("p1", "1", "What is the zebra partner discount?"))
        .await
        .expect("handled");
    assert!(!shows(&asked, "partners.md", "17 percent"), "{asked:?}");

    // One that cannot be taken out: the workspace stops answering prospects, and Health says
    // why, until it can.
    fake.set_deletes_fail(true);
    fake.seed_document(
        "Margins",
        "margins.md",
        "The zebra margin on partner orders is 40 percent.",
    );
    until("the workspace is refused", || !sync.may_answer()).await;
    let health = workspace_health(&app.address, &token).await;
    assert_eq!(health["answering"], false, "{health}");
    assert!(
        health["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("failed"),
        "{health}"
    );
    let chats = fake.chats().len();
    let refused = engine
        .handle(&text(
            "p2",
            "1",
            "What is the zebra margin on partner orders?",
        ))
        .await
        .expect("handled");
    assert!(!shows(&refused, "margins.md", "40 percent"), "{refused:?}");
    assert_eq!(fake.chats().len(), chats, "AnythingLLM is not asked");

    fake.set_deletes_fail(false);
    until("the workspace is clean again", || {
        !embeds(&fake, "Margins") && sync.may_answer()
    })
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn kb_import_syncs_the_workspace_and_refuses_an_unknown_audience(pool: PgPool) {
    closer_tests::init_logs();
    let fake = FakeAnythingLlm::start().await;
    let store = Store::from_pool(pool);
    let dir = std::env::temp_dir().join(format!("closer-kb-import-{}", uuid::Uuid::new_v4()));
    let kb = dir.join("kb");
    std::fs::create_dir_all(&kb).expect("a folder");
    let config_path = dir.join("closer.toml");
    std::fs::write(
        &config_path,
        format!(
            "[knowledge.embeddings]\nmodel = \"off\"\n\n[anythingllm]\nbase_url = \"{}\"\nworkspace = \"{WORKSPACE}\"\napi_key = \"{ANYTHINGLLM_KEY}\"\n",
            fake.base_url()
        ),
    )
    .expect("the configuration is written");
    let config = closer::config::Config::load(Some(&config_path)).expect("the configuration");
    let write = |name: &str, text: &str| std::fs::write(kb.join(name), text).expect("written");
    write("zebra.md", ZEBRA);
    write(
        "notes.md",
        "---\ntitle: Sales notes\naudience: internal\n---\nThe zebra discount limit is 7 percent.\n",
    );

    closer::kb::import_and_sync(&config, &store, &kb)
        .await
        .expect("imported and synced");
    assert!(embeds(&fake, "Zebra grooming"), "{:?}", fake.embedded());
    assert!(!embeds(&fake, "Sales notes"), "{:?}", fake.embedded());

    // The public document turns internal in its front matter: the import takes it out.
    write(
        "zebra.md",
        &format!("---\naudience: internal\n---\n{ZEBRA}"),
    );
    closer::kb::import_and_sync(&config, &store, &kb)
        .await
        .expect("imported and synced");
    assert!(fake.embedded().is_empty(), "{:?}", fake.embedded());

    // A typo in an audience: nothing is imported, and the error names the file and the value.
    let before = store.documents().await.expect("documents");
    write(
        "pricing.md",
        "---\naudience: pubilc\n---\nThe zebra plan costs 10 USD.\n",
    );
    write("zebra.md", ZEBRA);
    let error = closer::kb::import_and_sync(&config, &store, &kb)
        .await
        .expect_err("an unknown audience stops the import");
    let message = format!("{error:#}");
    assert!(message.contains("pricing.md"), "{message}");
    assert!(message.contains("\"pubilc\""), "{message}");
    assert_eq!(store.documents().await.expect("documents"), before);
    assert!(fake.embedded().is_empty(), "{:?}", fake.embedded());
    let _ = std::fs::remove_dir_all(&dir);
}
