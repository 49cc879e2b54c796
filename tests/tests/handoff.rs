//! End to end: leads made in conversations go through the outbox to the fake targets, exactly
//! once — across a timeout after creation, a ten-minute outage (in simulated time), a rate
//! limit, a permanent error that a person fixes and retries, and a slow batch that outlives
//! its claim while a second worker runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use closer_handoff::{
    AmoCrm, AmoCrmConfig, Asana, AsanaConfig, Bitrix24, Bitrix24Config, HubSpot, HubSpotConfig,
    Jira, JiraConfig, JiraFlavor, Linear, LinearConfig, Target, Trello, TrelloConfig, Webhook,
    WebhookConfig, Worker, YandexTracker, YandexTrackerConfig,
};
use closer_model::Route;
use closer_store::{OutboxStatus, Store};
use closer_tests::fake_trackers::{
    FakeAmoCrm, FakeAsana, FakeBitrix24, FakeHubSpot, FakeJira, FakeLinear, FakeTrello,
    FakeWebhookReceiver, FakeYandexTracker, AMO_TOKEN, ASANA_PROJECT, ASANA_TOKEN, HUBSPOT_TOKEN,
    JIRA_API_TOKEN, JIRA_EMAIL, JIRA_PAT, JIRA_PROJECT, LINEAR_KEY, LINEAR_TEAM, TRELLO_KEY,
    TRELLO_LIST, TRELLO_TOKEN, WEBHOOK_SECRET, YANDEX_ORG, YANDEX_QUEUE, YANDEX_TOKEN,
};
use closer_tests::{demo_engine, text};
use sqlx::PgPool;
use uuid::Uuid;

/// A clock the test moves by hand.
#[derive(Clone)]
struct SimulatedTime(Arc<Mutex<DateTime<Utc>>>);

impl SimulatedTime {
    /// Starts a minute ahead of the database's clock, so what the test queues next is due
    /// however long a busy machine takes to make it.
    fn new() -> SimulatedTime {
        SimulatedTime(Arc::new(Mutex::new(
            Utc::now() + chrono::Duration::seconds(60),
        )))
    }

    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("the test's setup works");
        *now += chrono::Duration::from_std(by).expect("the test's setup works");
    }

    fn clock(&self) -> closer_handoff::Clock {
        let time = self.0.clone();
        Arc::new(move || *time.lock().expect("the test's setup works"))
    }
}

fn webhook(receiver: &FakeWebhookReceiver) -> Arc<dyn Target> {
    Arc::new(
        Webhook::new(
            "crm_webhook",
            WebhookConfig {
                url: receiver.url(),
                secret: WEBHOOK_SECRET.to_owned().into(),
                timeout: Duration::from_secs(5),
            },
        )
        .expect("the test's setup works"),
    )
}

fn tracker(fake: &FakeYandexTracker, token: &str, timeout: Duration) -> Arc<dyn Target> {
    Arc::new(
        YandexTracker::new(
            "tracker",
            YandexTrackerConfig {
                api_url: fake.api_url(),
                web_url: "https://tracker.yandex.ru".to_owned(),
                token: token.to_owned().into(),
                org_id: Some(YANDEX_ORG.to_owned()),
                cloud_org_id: None,
                queue: YANDEX_QUEUE.to_owned(),
                timeout,
            },
        )
        .expect("the test's setup works"),
    )
}

fn worker(pool: &PgPool, name: &str, target: Arc<dyn Target>, time: &SimulatedTime) -> Worker {
    Worker::new(
        Store::from_pool(pool.clone()),
        HashMap::from([(name.to_owned(), target)]),
        Some("https://closer.example.com/conversations/{id}".to_owned()),
    )
    .with_clock(time.clock())
}

/// A prospect asks, then leaves a name and a phone: a lead, queued for the routes' targets.
async fn make_lead(pool: &PgPool, routes: Vec<Route>, chat: &str, name: &str) -> Uuid {
    let engine = demo_engine(pool.clone(), routes).await;
    engine
        .handle(&text(chat, "m1", "сколько стоит ваш самый дешевый тариф?"))
        .await
        .expect("the test's setup works");
    let handled = engine
        .handle(&text(
            chat,
            "m2",
            &format!("Отлично, давайте созвонимся. {name}, +7 (903) 123-45-67"),
        ))
        .await
        .expect("the test's setup works");
    handled.lead_id.expect("the contact makes a lead")
}

async fn outbox(pool: &PgPool) -> Vec<closer_store::OutboxEntry> {
    let store = Store::from_pool(pool.clone());
    let mut entries: Vec<_> = store
        .leads(100)
        .await
        .expect("the test's setup works")
        .into_iter()
        .flat_map(|(_, entries)| entries)
        .collect();
    entries.sort_by_key(|entry| entry.id);
    entries
}

#[sqlx::test(migrations = "../migrations")]
async fn a_lead_reaches_the_signed_webhook_once_with_its_details(pool: PgPool) {
    let receiver = FakeWebhookReceiver::start().await;
    let time = SimulatedTime::new();
    let lead = make_lead(
        &pool,
        vec![Route::always("crm_webhook")],
        "w1",
        "Иван Петров",
    )
    .await;
    let worker = worker(&pool, "crm_webhook", webhook(&receiver), &time);

    let round = worker.run_once().await.unwrap();
    assert_eq!(round.delivered, 1);
    assert_eq!(
        receiver.rejected(),
        0,
        "the reference implementation verifies the signature"
    );
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1);
    let data = &deliveries[0].body["data"];
    assert_eq!(data["lead"]["id"], lead.to_string());
    assert_eq!(data["lead"]["contact"]["phone"], "+79031234567");
    assert!(data["title"].as_str().unwrap().contains("Иван Петров"));
    assert!(data["transcript"]
        .as_str()
        .unwrap()
        .contains("сколько стоит ваш самый дешевый тариф?"));
    assert!(data["conversation"]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://closer.example.com/conversations/"));

    let entry = &outbox(&pool).await[0];
    assert_eq!(entry.status, OutboxStatus::Delivered);
    assert_eq!(
        entry.external_url.as_deref(),
        Some("https://crm.example.com/leads/1")
    );
    time.advance(Duration::from_secs(3600));
    assert_eq!(
        worker.run_once().await.unwrap().claimed,
        0,
        "delivered once, done"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_timeout_after_the_tracker_created_the_issue_does_not_duplicate_it(pool: PgPool) {
    let fake = FakeYandexTracker::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("tracker")], "y1", "Анна Смирнова").await;
    let worker = worker(
        &pool,
        "tracker",
        tracker(&fake, YANDEX_TOKEN, Duration::from_millis(500)),
        &time,
    );
    fake.stall_next_create(Duration::from_secs(3));

    let first = worker.run_once().await.unwrap();
    assert_eq!(first.retrying, 1, "the create timed out: outcome unknown");
    assert_eq!(
        fake.issues().len(),
        1,
        "…but the tracker did create the issue"
    );

    time.advance(Duration::from_secs(60));
    let second = worker.run_once().await.unwrap();
    assert_eq!(second.delivered, 1);
    let issues = fake.issues();
    assert_eq!(
        issues.len(),
        1,
        "the retry found the issue instead of creating another"
    );
    let entry = &outbox(&pool).await[0];
    assert_eq!(entry.external_id.as_deref(), Some("SALES-1"));
    assert_eq!(
        entry.external_url.as_deref(),
        Some("https://tracker.yandex.ru/SALES-1")
    );
    assert!(issues[0].summary.contains("Анна Смирнова"));
    assert!(issues[0].description.contains("+79031234567"));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_repeated_create_is_refused_by_unique_and_resolved_to_the_existing_issue(pool: PgPool) {
    let fake = FakeYandexTracker::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("tracker")], "y2", "Олег").await;
    let target = tracker(&fake, YANDEX_TOKEN, Duration::from_secs(5));
    let worker = worker(&pool, "tracker", target.clone(), &time);
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);
    assert_eq!(
        fake.issues()[0].comments.len(),
        1,
        "the transcript as a comment"
    );

    // Another process that never saw the answer creates again: 409, and the same issue.
    let store = Store::from_pool(pool.clone());
    let (lead, entries) = store.leads(1).await.unwrap().remove(0);
    let handoff = closer_handoff::Handoff {
        key: closer_handoff::Handoff::short_key(&entries[0].idempotency_key),
        subject: closer_handoff::Subject::Lead(lead),
        transcript: Vec::new(),
        conversation_url: None,
        attempt: 1,
    };
    let again = target.create(&handoff).await.unwrap();
    assert_eq!(again.id, "SALES-1");
    assert_eq!(fake.issues().len(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_ten_minute_outage_delivers_everything_afterwards_in_order(pool: PgPool) {
    let fake = FakeYandexTracker::start().await;
    let time = SimulatedTime::new();
    let routes = vec![Route::always("tracker")];
    for (chat, name) in [
        ("o1", "Первый Клиент"),
        ("o2", "Второй Клиент"),
        ("o3", "Третий Клиент"),
    ] {
        make_lead(&pool, routes.clone(), chat, name).await;
    }
    let worker = worker(
        &pool,
        "tracker",
        tracker(&fake, YANDEX_TOKEN, Duration::from_secs(5)),
        &time,
    );

    fake.set_down(true);
    let mut probes_during_outage = 0;
    for _ in 0..10 {
        let round = worker.run_once().await.unwrap();
        assert_eq!(round.delivered, 0);
        probes_during_outage += round.claimed;
        time.advance(Duration::from_secs(60));
    }
    let requests_during_outage = fake.requests();
    assert!(
        requests_during_outage <= 5,
        "one probe per backoff, not one per lead per round: {requests_during_outage} requests"
    );
    assert!(probes_during_outage >= 3);
    assert!(outbox(&pool)
        .await
        .iter()
        .all(|entry| entry.status == OutboxStatus::Pending
            && entry
                .last_error
                .as_deref()
                .is_some_and(|error| error.contains("503"))));

    fake.set_down(false);
    for _ in 0..120 {
        worker.run_once().await.unwrap();
        if fake.issues().len() == 3 {
            break;
        }
        time.advance(Duration::from_secs(60));
    }
    let summaries: Vec<String> = fake
        .issues()
        .into_iter()
        .map(|issue| issue.summary)
        .collect();
    assert_eq!(summaries.len(), 3, "everything delivered after the outage");
    for (summary, name) in summaries
        .iter()
        .zip(["Первый Клиент", "Второй Клиент", "Третий Клиент"])
    {
        assert!(summary.contains(name), "in order: {summaries:?}");
    }
    assert!(outbox(&pool)
        .await
        .iter()
        .all(|entry| entry.status == OutboxStatus::Delivered));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rate_limit_is_waited_out_for_its_retry_after(pool: PgPool) {
    let receiver = FakeWebhookReceiver::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("crm_webhook")], "r1", "Пётр").await;
    let worker = worker(&pool, "crm_webhook", webhook(&receiver), &time);
    receiver.inject(429, Some(300));

    assert_eq!(worker.run_once().await.unwrap().retrying, 1);
    time.advance(Duration::from_secs(200));
    assert_eq!(
        worker.run_once().await.unwrap().claimed,
        0,
        "not before its Retry-After"
    );
    time.advance(Duration::from_secs(200));
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);
    assert_eq!(receiver.items(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_permanent_error_stops_shows_its_reason_and_can_be_retried(pool: PgPool) {
    let fake = FakeYandexTracker::start().await;
    let time = SimulatedTime::new();
    let lead = make_lead(&pool, vec![Route::always("tracker")], "p1", "Мария").await;
    let wrong = worker(
        &pool,
        "tracker",
        tracker(&fake, "expired-token", Duration::from_secs(5)),
        &time,
    );
    assert_eq!(wrong.run_once().await.unwrap().failed, 1);
    time.advance(Duration::from_secs(24 * 3600));
    assert_eq!(
        wrong.run_once().await.unwrap().claimed,
        0,
        "not retried by itself"
    );

    let store = Store::from_pool(pool.clone());
    let listing = closer::leads::render(&store.leads(10).await.unwrap());
    assert!(
        listing.contains("FAILED") && listing.contains("401") && listing.contains("Not authorized"),
        "{listing}"
    );

    // Someone fixes the token and runs `closer leads retry`.
    let prefix = &lead.to_string()[..8];
    assert_eq!(
        store.subject_ids_starting_with(prefix).await.unwrap(),
        vec![lead]
    );
    assert_eq!(store.retry_failed_handoffs(lead).await.unwrap(), 1);
    let fixed = worker(
        &pool,
        "tracker",
        tracker(&fake, YANDEX_TOKEN, Duration::from_secs(5)),
        &time,
    );
    assert_eq!(fixed.run_once().await.unwrap().delivered, 1);
    assert_eq!(fake.issues().len(), 1);
    let listing = closer::leads::render(&store.leads(10).await.unwrap());
    assert!(
        listing.contains("delivered https://tracker.yandex.ru/SALES-1"),
        "{listing}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn routing_sends_a_lead_only_to_the_targets_whose_rules_it_meets(pool: PgPool) {
    let routes = vec![
        Route::always("everything"),
        Route {
            target: "telegram_only".to_owned(),
            when: closer_model::RouteRule {
                channels: vec![closer_model::Channel::Telegram],
                ..Default::default()
            },
        },
    ];
    make_lead(&pool, routes, "route1", "Ирина").await;
    let targets: Vec<String> = outbox(&pool)
        .await
        .into_iter()
        .map(|entry| entry.target)
        .collect();
    assert_eq!(
        targets,
        vec!["everything"],
        "a web lead skips the Telegram-only target"
    );
}

fn bitrix(fake: &FakeBitrix24, timeout: Duration) -> Arc<dyn Target> {
    Arc::new(
        Bitrix24::new(
            "bitrix",
            Bitrix24Config {
                webhook_url: fake.webhook_url().into(),
                web_url: Some("https://acme.bitrix24.ru".to_owned()),
                timeout,
            },
        )
        .expect("the test's setup works"),
    )
}

fn jira(fake: &FakeJira, flavor: JiraFlavor, timeout: Duration) -> Arc<dyn Target> {
    let (email, token) = match flavor {
        JiraFlavor::Cloud => (Some(JIRA_EMAIL.to_owned()), JIRA_API_TOKEN),
        JiraFlavor::DataCenter => (None, JIRA_PAT),
    };
    Arc::new(
        Jira::new(
            "jira",
            JiraConfig {
                flavor,
                url: fake.url(),
                email,
                token: token.to_owned().into(),
                project: JIRA_PROJECT.to_owned(),
                issue_type: "Task".to_owned(),
                timeout,
            },
        )
        .expect("the test's setup works"),
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn bitrix24_gets_a_crm_lead_through_its_rate_limit_and_a_lost_answer_once(pool: PgPool) {
    let fake = FakeBitrix24::start().await;
    let time = SimulatedTime::new();
    make_lead(
        &pool,
        vec![Route::always("bitrix")],
        "b1",
        "Светлана Орлова",
    )
    .await;
    let worker = worker(
        &pool,
        "bitrix",
        bitrix(&fake, Duration::from_millis(500)),
        &time,
    );

    fake.inject_error(503, "QUERY_LIMIT_EXCEEDED");
    assert_eq!(
        worker.run_once().await.unwrap().retrying,
        1,
        "503 QUERY_LIMIT_EXCEEDED waits"
    );
    time.advance(Duration::from_secs(60));
    fake.stall_next_create(Duration::from_secs(3));
    assert_eq!(
        worker.run_once().await.unwrap().retrying,
        1,
        "the create's answer was lost"
    );
    time.advance(Duration::from_secs(60));
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);

    let leads = fake.leads();
    assert_eq!(leads.len(), 1, "found by ORIGIN_ID, not created again");
    let fields = &leads[0].fields;
    assert_eq!(fields["NAME"], "Светлана Орлова");
    assert_eq!(fields["PHONE"][0]["VALUE"], "+79031234567");
    assert_eq!(fields["ORIGINATOR_ID"], "closer");
    let entry = &outbox(&pool).await[0];
    assert_eq!(
        entry.external_url.as_deref(),
        Some("https://acme.bitrix24.ru/crm/lead/details/3465/")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn bitrix24_errors_inside_a_200_are_refusals(pool: PgPool) {
    let fake = FakeBitrix24::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("bitrix")], "b2", "Глеб").await;
    let worker = worker(
        &pool,
        "bitrix",
        bitrix(&fake, Duration::from_secs(5)),
        &time,
    );
    fake.inject_error(200, "ACCESS_DENIED");
    assert_eq!(worker.run_once().await.unwrap().failed, 1);
    let entry = &outbox(&pool).await[0];
    assert_eq!(entry.status, OutboxStatus::Failed);
    assert!(entry
        .last_error
        .as_deref()
        .unwrap()
        .contains("ACCESS_DENIED"));
    assert!(fake.leads().is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn jira_cloud_gets_an_issue_in_atlassian_document_format_once(pool: PgPool) {
    let fake = FakeJira::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("jira")], "j1", "Дмитрий").await;
    let worker = worker(
        &pool,
        "jira",
        jira(&fake, JiraFlavor::Cloud, Duration::from_millis(500)),
        &time,
    );
    fake.stall_next_create(Duration::from_secs(3));
    assert_eq!(worker.run_once().await.unwrap().retrying, 1);
    time.advance(Duration::from_secs(60));
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);

    let issues = fake.issues();
    assert_eq!(issues.len(), 1, "found by its label, not created again");
    assert_eq!(issues[0].fields["description"]["type"], "doc");
    let entry = &outbox(&pool).await[0];
    assert_eq!(entry.external_id.as_deref(), Some("SALES-1"));
    assert_eq!(
        entry.external_url.as_deref(),
        Some(format!("{}/browse/SALES-1", fake.url()).as_str())
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn jira_data_center_gets_plain_text_and_the_transcript_comment(pool: PgPool) {
    let fake = FakeJira::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("jira")], "j2", "Вера").await;
    let worker = worker(
        &pool,
        "jira",
        jira(&fake, JiraFlavor::DataCenter, Duration::from_secs(5)),
        &time,
    );
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);
    let issue = &fake.issues()[0];
    assert!(issue.fields["description"]
        .as_str()
        .unwrap()
        .contains("Вера"));
    assert!(issue.comments[0]
        .as_str()
        .unwrap()
        .contains("сколько стоит ваш самый дешевый тариф?"));
}

#[sqlx::test(migrations = "../migrations")]
async fn amocrm_gets_one_lead_through_a_429_an_empty_search_and_a_lost_answer(pool: PgPool) {
    let fake = FakeAmoCrm::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("amo")], "a1", "Егор Титов").await;
    let target = Arc::new(
        AmoCrm::new(
            "amo",
            AmoCrmConfig {
                url: fake.url(),
                token: AMO_TOKEN.to_owned().into(),
                timeout: Duration::from_millis(500),
            },
        )
        .unwrap(),
    );
    let worker = worker(&pool, "amo", target, &time);

    fake.inject(429, None);
    assert_eq!(worker.run_once().await.unwrap().retrying, 1);
    time.advance(Duration::from_secs(60));
    fake.stall_next_create(Duration::from_secs(3));
    // The lookup finds nothing (204, empty body), the create's answer is lost.
    assert_eq!(worker.run_once().await.unwrap().retrying, 1);
    time.advance(Duration::from_secs(60));
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);

    let leads = fake.leads();
    assert_eq!(leads.len(), 1, "found by its tag, not created again");
    assert_eq!(leads[0].contact["name"], "Егор Титов");
    let entry = &outbox(&pool).await[0];
    assert_eq!(
        entry.external_url.as_deref(),
        Some(format!("{}/leads/detail/{}", fake.url(), leads[0].id).as_str())
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn hubspot_gets_a_contact_a_deal_and_a_note_once(pool: PgPool) {
    let fake = FakeHubSpot::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("hubspot")], "h1", "Лев").await;
    let target: Arc<dyn Target> = Arc::new(
        HubSpot::new(
            "hubspot",
            HubSpotConfig {
                api_url: fake.url(),
                token: HUBSPOT_TOKEN.to_owned().into(),
                web_url: Some("https://app.hubspot.com/contacts/4242".to_owned()),
                key_property: "closer_key".to_owned(),
                timeout: Duration::from_millis(500),
            },
        )
        .unwrap(),
    );
    let worker = worker(&pool, "hubspot", target.clone(), &time);
    fake.stall_next_create(Duration::from_secs(3));
    assert_eq!(worker.run_once().await.unwrap().retrying, 1);
    time.advance(Duration::from_secs(60));
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);

    assert_eq!(
        fake.objects("deals").len(),
        1,
        "found by its key, not created again"
    );
    assert_eq!(fake.objects("contacts").len(), 1);
    let deal = &fake.objects("deals")[0];
    let entry = &outbox(&pool).await[0];
    assert_eq!(
        entry.external_url.as_deref(),
        Some(
            format!(
                "https://app.hubspot.com/contacts/4242/record/0-3/{}",
                deal["id"].as_str().unwrap()
            )
            .as_str()
        )
    );

    // A create that never learned of the first: the unique property answers 409, the deal is found.
    let store = Store::from_pool(pool.clone());
    let (lead, entries) = store.leads(1).await.unwrap().remove(0);
    let again = target
        .create(&closer_handoff::Handoff {
            key: closer_handoff::Handoff::short_key(&entries[0].idempotency_key),
            subject: closer_handoff::Subject::Lead(lead),
            transcript: Vec::new(),
            conversation_url: None,
            attempt: 1,
        })
        .await
        .unwrap();
    assert_eq!(Some(again.id.as_str()), deal["id"].as_str());
    assert_eq!(fake.objects("deals").len(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn linear_gets_one_issue_under_the_id_closer_chose(pool: PgPool) {
    let fake = FakeLinear::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("linear")], "l1", "Марк").await;
    let target: Arc<dyn Target> = Arc::new(
        Linear::new(
            "linear",
            LinearConfig {
                api_url: fake.url(),
                token: LINEAR_KEY.to_owned().into(),
                team_id: LINEAR_TEAM.to_owned(),
                timeout: Duration::from_millis(500),
            },
        )
        .unwrap(),
    );
    let worker = worker(&pool, "linear", target, &time);

    fake.inject(429, Some(30));
    assert_eq!(
        worker.run_once().await.unwrap().retrying,
        1,
        "a rate limit inside a 200 waits"
    );
    time.advance(Duration::from_secs(60));
    fake.stall_next_create(Duration::from_secs(3));
    assert_eq!(worker.run_once().await.unwrap().retrying, 1);
    time.advance(Duration::from_secs(60));
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);

    let issues = fake.issues();
    assert_eq!(issues.len(), 1, "found under its id, not created again");
    let entry = &outbox(&pool).await[0];
    assert_eq!(entry.external_id.as_deref(), Some("SAL-1"));
    assert_eq!(
        issues[0].id,
        closer_handoff::linear::issue_id(&closer_handoff::Handoff::short_key(
            &entry.idempotency_key
        ))
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn trello_gets_one_card_and_its_plain_text_errors_are_shown(pool: PgPool) {
    let fake = FakeTrello::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("trello")], "t1", "Нина").await;
    let trello = |list: &str| -> Arc<dyn Target> {
        Arc::new(
            Trello::new(
                "trello",
                TrelloConfig {
                    api_url: fake.url(),
                    key: TRELLO_KEY.to_owned(),
                    token: TRELLO_TOKEN.to_owned().into(),
                    list_id: list.to_owned(),
                    timeout: Duration::from_millis(500),
                },
            )
            .unwrap(),
        )
    };
    let wrong = worker(&pool, "trello", trello("no-such-list"), &time);
    assert_eq!(wrong.run_once().await.unwrap().failed, 1);
    let entry = &outbox(&pool).await[0];
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap()
            .contains("invalid value for idList"),
        "{entry:?}"
    );

    let store = Store::from_pool(pool.clone());
    store
        .retry_failed_handoffs(entry.lead_id.expect("a lead's hand-off"))
        .await
        .unwrap();
    let worker = worker(&pool, "trello", trello(TRELLO_LIST), &time);
    fake.inject(429, None);
    time.advance(Duration::from_secs(1));
    assert_eq!(worker.run_once().await.unwrap().retrying, 1);
    time.advance(Duration::from_secs(60));
    fake.stall_next_create(Duration::from_secs(3));
    assert_eq!(worker.run_once().await.unwrap().retrying, 1);
    time.advance(Duration::from_secs(180));
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);

    let cards = fake.cards();
    assert_eq!(cards.len(), 1, "found by its marker, not created again");
    let entry = &outbox(&pool).await[0];
    assert_eq!(
        entry.external_url.as_deref(),
        Some(cards[0].short_url.as_str())
    );
}

/// A tracker whose every create waits until the test lets it through, announcing its
/// hand-off key first: a slow batch, with the test moving the clock while a create is in flight.
struct SlowCreates {
    inner: Arc<dyn Target>,
    entered: tokio::sync::mpsc::UnboundedSender<String>,
    release: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl Target for SlowCreates {
    async fn create(
        &self,
        handoff: &closer_handoff::Handoff,
    ) -> Result<closer_handoff::Created, closer_handoff::Failure> {
        let _ = self.entered.send(handoff.key.clone());
        self.release
            .acquire()
            .await
            .expect("the test's setup works")
            .forget();
        self.inner.create(handoff).await
    }

    async fn find(
        &self,
        handoff: &closer_handoff::Handoff,
    ) -> Result<Option<closer_handoff::Created>, closer_handoff::Failure> {
        self.inner.find(handoff).await
    }
}

/// Waits, with a deadline, until the slow worker begins its next create.
async fn create_begins(entered: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(30), entered.recv())
        .await
        .expect("the slow worker reaches its next create")
        .expect("the slow worker is running")
}

#[sqlx::test(migrations = "../migrations")]
async fn a_slow_batch_outliving_its_claim_beside_a_second_worker_creates_each_card_once(
    pool: PgPool,
) {
    const DEADLINE: Duration = Duration::from_secs(30);
    let fake = FakeTrello::start().await;
    let time = SimulatedTime::new();
    for (chat, name) in [("slow1", "Анна"), ("slow2", "Борис"), ("slow3", "Вера")] {
        make_lead(&pool, vec![Route::always("trello")], chat, name).await;
    }
    let trello: Arc<dyn Target> = Arc::new(
        Trello::new(
            "trello",
            TrelloConfig {
                api_url: fake.url(),
                key: TRELLO_KEY.to_owned(),
                token: TRELLO_TOKEN.to_owned().into(),
                list_id: TRELLO_LIST.to_owned(),
                timeout: Duration::from_secs(5),
            },
        )
        .expect("the test's setup works"),
    );
    let (entered_sender, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let slow = worker(
        &pool,
        "trello",
        Arc::new(SlowCreates {
            inner: trello.clone(),
            entered: entered_sender,
            release: release.clone(),
        }),
        &time,
    );
    let second = worker(&pool, "trello", trello, &time);

    // The slow worker claims all three rows at once (a lease of two minutes from the claim).
    let batch = tokio::spawn(async move { slow.run_once().await });
    // The first card takes 50 s.
    create_begins(&mut entered).await;
    time.advance(Duration::from_secs(50));
    release.add_permits(1);
    // The second takes 80 s: while it is in flight, the claim's two minutes are over.
    create_begins(&mut entered).await;
    time.advance(Duration::from_secs(80));
    // A second process's worker runs now. The row in flight was leased anew before its call;
    // the third row was not reached yet, so its lease ran out and the second worker takes it.
    let taken_over = second.run_once().await.expect("the second worker's round");
    // The slow create finishes, and any create after it goes through at once; the slow worker
    // then finds its third row taken and leaves it.
    release.add_permits(10);
    let slow_round = tokio::time::timeout(DEADLINE, batch)
        .await
        .expect("the slow round ends")
        .expect("the slow round does not panic")
        .expect("the slow round");

    let cards = fake.cards();
    let entries = outbox(&pool).await;
    assert_eq!(entries.len(), 3);
    for entry in &entries {
        let marker = format!(
            "closer-{}",
            closer_handoff::Handoff::short_key(&entry.idempotency_key)
        );
        let made: Vec<_> = cards
            .iter()
            .filter(|card| card.desc.contains(&marker))
            .collect();
        assert_eq!(made.len(), 1, "one card per lead: {cards:#?}");
        assert_eq!(entry.status, OutboxStatus::Delivered, "{entry:?}");
        assert_eq!(entry.external_id.as_deref(), Some(made[0].id.as_str()));
    }
    assert_eq!(cards.len(), 3, "{cards:#?}");
    assert_eq!(
        (taken_over.claimed, taken_over.delivered),
        (1, 1),
        "the second worker took only the row whose lease ran out"
    );
    assert_eq!(
        (slow_round.claimed, slow_round.delivered, slow_round.lost),
        (3, 2, 1),
        "the slow worker left the row the second worker took"
    );
}

fn asana(fake: &FakeAsana, external_ids: bool) -> Arc<dyn Target> {
    Arc::new(
        Asana::new(
            "asana",
            AsanaConfig {
                api_url: fake.url(),
                token: ASANA_TOKEN.to_owned().into(),
                project: ASANA_PROJECT.to_owned(),
                external_ids,
                timeout: Duration::from_millis(500),
            },
        )
        .expect("the test's setup works"),
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn asana_gets_one_task_found_by_its_marker_across_pages_after_a_lost_answer(pool: PgPool) {
    let fake = FakeAsana::start().await;
    fake.page_size(2);
    for other in [
        "Renew the office lease",
        "Quarterly report",
        "Call the bank",
    ] {
        fake.add_other_task(other);
    }
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("asana")], "a1", "Олег").await;
    let worker = worker(&pool, "asana", asana(&fake, false), &time);

    fake.inject(429, Some(30));
    assert_eq!(worker.run_once().await.unwrap().retrying, 1, "429 waits");
    time.advance(Duration::from_secs(31));
    fake.stall_next_create(Duration::from_secs(3));
    assert_eq!(
        worker.run_once().await.unwrap().retrying,
        1,
        "the create's answer was lost"
    );
    time.advance(Duration::from_secs(60));
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);

    let ours: Vec<_> = fake
        .tasks()
        .into_iter()
        .filter(|task| task.name.starts_with("Lead: Олег"))
        .collect();
    assert_eq!(ours.len(), 1, "found on the second page, not created again");
    assert!(
        ours[0].notes.contains("- Phone: +79031234567"),
        "{}",
        ours[0].notes
    );
    let entry = &outbox(&pool).await[0];
    assert_eq!(entry.external_id.as_deref(), Some(ours[0].gid.as_str()));
    assert_eq!(
        entry.external_url.as_deref(),
        Some(format!("https://app.asana.com/0/{ASANA_PROJECT}/{}", ours[0].gid).as_str())
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn asana_oauth_apps_use_external_ids_and_a_bad_token_is_a_refusal(pool: PgPool) {
    let fake = FakeAsana::start().await;
    let time = SimulatedTime::new();
    make_lead(&pool, vec![Route::always("asana")], "a2", "Вера").await;

    // A personal access token cannot set external ids: Asana refuses, and says why.
    let refused = worker(&pool, "asana", asana(&fake, true), &time);
    assert_eq!(refused.run_once().await.unwrap().failed, 1);
    let entry = &outbox(&pool).await[0];
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("OAuth apps"),
        "{entry:?}"
    );

    fake.as_oauth_app();
    let store = Store::from_pool(pool.clone());
    store
        .retry_failed_handoffs(entry.lead_id.expect("a lead's hand-off"))
        .await
        .unwrap();
    time.advance(Duration::from_secs(1));
    fake.stall_next_create(Duration::from_secs(3));
    assert_eq!(refused.run_once().await.unwrap().retrying, 1);
    time.advance(Duration::from_secs(60));
    assert_eq!(refused.run_once().await.unwrap().delivered, 1);
    let tasks = fake.tasks();
    assert_eq!(tasks.len(), 1, "found by its external id");
    assert!(tasks[0]
        .external
        .as_deref()
        .unwrap_or_default()
        .starts_with("closer-"));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_task_asked_for_by_hand_becomes_one_bitrix24_task_about_its_lead(pool: PgPool) {
    let fake = FakeBitrix24::start().await;
    let time = SimulatedTime::new();
    let lead = make_lead(&pool, vec![Route::always("bitrix")], "bt1", "Пётр").await;
    let engine = demo_engine(pool.clone(), vec![Route::always("bitrix")]).await;
    let store = Store::from_pool(pool.clone());
    let conversation = store
        .leads(10)
        .await
        .unwrap()
        .into_iter()
        .find(|(stored, _)| stored.id == lead)
        .expect("the lead is stored")
        .0
        .conversation_id;
    let worker = worker(
        &pool,
        "bitrix",
        bitrix(&fake, Duration::from_millis(500)),
        &time,
    );
    assert_eq!(
        worker.run_once().await.unwrap().delivered,
        1,
        "the lead itself"
    );

    let request = closer_model::NewTask {
        key: "slack:cmd-1".to_owned(),
        title: "Перезвонить Петру в пятницу".to_owned(),
        requested_by: "anna".to_owned(),
        conversation_id: Some(conversation),
        target: None,
    };
    let first = engine.queue_task(&request).await.unwrap();
    let again = engine.queue_task(&request).await.unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate, "a retried command finds its task");
    assert_eq!(first.value.id, again.value.id);

    time.advance(Duration::from_secs(1));
    fake.stall_next_create(Duration::from_secs(3));
    assert_eq!(
        worker.run_once().await.unwrap().retrying,
        1,
        "the answer was lost"
    );
    time.advance(Duration::from_secs(60));
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);

    // `closer leads` lists the task with where its hand-off stands, and finds it by its id.
    let listing = closer::leads::render_tasks(&store.tasks(10).await.unwrap());
    assert!(
        listing.contains("Перезвонить Петру в пятницу")
            && listing.contains("asked for by anna")
            && listing.contains("→ bitrix: delivered"),
        "{listing}"
    );
    assert_eq!(
        store
            .subject_ids_starting_with(&first.value.id.to_string()[..8])
            .await
            .unwrap(),
        vec![first.value.id]
    );

    let tasks = fake.tasks();
    assert_eq!(tasks.len(), 1, "found by XML_ID, not created again");
    assert_eq!(fake.leads().len(), 1, "a task is not a second CRM lead");
    let fields = &tasks[0].fields;
    assert_eq!(fields["TITLE"], "Перезвонить Петру в пятницу");
    assert_eq!(fields["RESPONSIBLE_ID"], "1", "the webhook's user");
    let description = fields["DESCRIPTION"].as_str().unwrap_or_default();
    assert!(description.contains("Asked for by anna"), "{description}");
    assert!(
        description.contains("- Phone: +79031234567"),
        "{description}"
    );

    let unknown = closer_model::NewTask {
        key: "slack:cmd-2".to_owned(),
        target: Some("jira".to_owned()),
        ..request
    };
    assert!(matches!(
        engine.queue_task(&unknown).await,
        Err(closer_engine::EngineError::Rejected(_))
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_lead_typed_by_a_person_is_handed_off_once(pool: PgPool) {
    let receiver = FakeWebhookReceiver::start().await;
    let time = SimulatedTime::new();
    let engine = demo_engine(pool.clone(), vec![Route::always("crm_webhook")]).await;
    let request = closer_engine::ManualLead {
        key: "slack:cmd-9".to_owned(),
        note: "Мария Соколова, maria@salon.ru, хочет внедрение в 5 филиалах".to_owned(),
        requested_by: "anna".to_owned(),
        channel: closer_model::Channel::Slack,
    };
    let first = engine.record_manual_lead(&request).await.unwrap();
    let again = engine.record_manual_lead(&request).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(first.value, again.value);
    let no_contact = closer_engine::ManualLead {
        key: "slack:cmd-10".to_owned(),
        note: "позвонить тому клиенту".to_owned(),
        ..request
    };
    assert!(matches!(
        engine.record_manual_lead(&no_contact).await,
        Err(closer_engine::EngineError::Rejected(_))
    ));

    let worker = worker(&pool, "crm_webhook", webhook(&receiver), &time);
    assert_eq!(worker.run_once().await.unwrap().delivered, 1);
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1);
    let lead = &deliveries[0].body["data"]["lead"];
    assert_eq!(lead["contact"]["email"], "maria@salon.ru");
    assert_eq!(lead["channel"], "slack");
}
