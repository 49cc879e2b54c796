//! Measures one turn (begin_turn + commit with two replies) on a fresh database:
//! `cargo run --release -p closer-store --example turn_latency [TURNS]`, with
//! `DATABASE_URL` pointing at the server (the database itself is created and dropped).

use std::time::{Duration, Instant};

use chrono::Utc;
use closer_model::{Channel, InboundContent, InboundMessage, Lang, Reply, ReplyKind};
use closer_store::{Store, TurnOutcome, TurnStart};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let turns: usize = std::env::args()
        .nth(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(500);
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut url = url::Url::parse(&base)?;
    url.set_path(&format!(
        "closer_turn_latency_{}",
        uuid::Uuid::new_v4().simple()
    ));
    let url = url.to_string();
    closer_store::ensure_database(&url).await?;
    let result = measure(&url, turns).await;
    closer_store::drop_database(&url).await?;
    let mut latencies = result?;
    latencies.sort();
    let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile) as usize];
    println!(
        "{turns} turns: p50 {:?}, p95 {:?}, max {:?}",
        at(0.5),
        at(0.95),
        at(1.0)
    );
    Ok(())
}

async fn measure(url: &str, turns: usize) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    let store = Store::connect(url, 4).await?;
    store.migrate().await?;
    let replies = [
        Reply::new(ReplyKind::Answer, "От 9 900 ₽ в месяц."),
        Reply::new(ReplyKind::Prompt, "Сколько заказов в день?"),
    ];
    let mut latencies = Vec::with_capacity(turns);
    for number in 0..turns {
        let message = InboundMessage {
            channel: Channel::Eval,
            // Ten turns per conversation, as in a short dialog.
            chat_id: format!("chat-{}", number / 10),
            platform_message_id: number.to_string(),
            sender_name: None,
            content: InboundContent::Text {
                text: "Сколько стоит?".to_owned(),
            },
            received_at: Utc::now(),
        };
        let started = Instant::now();
        let TurnStart::New(turn) = store.begin_turn(&message).await? else {
            return Err("a new message was taken for a duplicate".into());
        };
        turn.commit(TurnOutcome {
            state: serde_json::json!({ "turn": number }),
            lang: Lang::Ru,
            stage: "qualifying",
            replies: &replies,
            new_lead: None,
            lead_update: None,
            handoff_targets: &[],
            rating: None,
            events: &[],
            source_campaign: None,
        })
        .await?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}
