//! The console's dashboard figures for a period and an optional channel: the funnel, ratings,
//! reply times, answered and declined questions, objections and how their conversations ended.

use chrono::{DateTime, Utc};
use closer_model::Channel;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::StoreError;
use crate::Store;

/// The conversations that started in `[from, to)`, on one channel or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub channel: Option<Channel>,
}

/// Conversations → engaged → qualified → leads → delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    pub conversations: i64,
    /// The prospect wrote at least twice (opening the chat does not count).
    pub engaged: i64,
    /// At least one qualification answer is known, or the lead is qualified.
    pub qualified: i64,
    pub leads: i64,
    /// Leads delivered to at least one tracker or CRM.
    pub delivered: i64,
}

/// Reply time percentiles of one channel, in seconds, from the prospect's message to the
/// first reply's delivery (or its commit, on channels that show replies at once; or the first
/// words of a streamed answer, shown as a draft before the reply took its place).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyTimes {
    pub channel: String,
    pub p50: f64,
    pub p95: f64,
    pub count: i64,
}

/// One objection kind: how many conversations raised it and how they ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectionOutcome {
    pub kind: String,
    pub conversations: i64,
    pub ended_with_lead: i64,
    pub handed_off: i64,
    /// Neither a lead nor a hand-off (yet).
    pub open: i64,
}

/// A question the assistant could not answer, grouped by its normalised text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnansweredQuestion {
    pub text: String,
    pub times: i64,
    pub last_asked: DateTime<Utc>,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub period: Period,
    pub funnel: Funnel,
    /// Leads per conversation, 0 to 1; `None` without conversations.
    pub conversion: Option<f64>,
    /// How many ratings of 1, 2, 3, 4 and 5.
    pub ratings: [i64; 5],
    pub average_rating: Option<f64>,
    pub reply_times: Vec<ReplyTimes>,
    pub answered: i64,
    pub declined: i64,
    pub objections: Vec<ObjectionOutcome>,
}

/// The period's conversations, as a CTE every dashboard query starts from.
const PERIOD_CONVERSATIONS: &str = "WITH period AS (
    SELECT id, channel, stage, state FROM conversations
    WHERE created_at >= $1 AND created_at < $2 AND ($3::text IS NULL OR channel = $3))";

impl Store {
    /// The dashboard's figures for `period`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn dashboard(&self, period: Period) -> Result<Dashboard, StoreError> {
        let channel = period.channel.map(Channel::as_str);
        let error = |error| self.error(error);
        let funnel_row = sqlx::query(&format!(
            "{PERIOD_CONVERSATIONS}
             SELECT
               (SELECT count(*) FROM period) AS conversations,
               (SELECT count(*) FROM period p WHERE
                   (SELECT count(*) FROM messages m WHERE m.conversation_id = p.id
                      AND m.direction = 'in' AND m.kind <> 'start') >= 2) AS engaged,
               (SELECT count(*) FROM period p WHERE
                   EXISTS (SELECT 1 FROM leads l WHERE l.conversation_id = p.id AND l.qualified)
                   OR COALESCE(p.state->'qualification', '{{}}'::jsonb) <> '{{}}'::jsonb)
                   AS qualified,
               (SELECT count(*) FROM leads l JOIN period p ON p.id = l.conversation_id) AS leads,
               (SELECT count(DISTINCT l.id) FROM leads l JOIN period p ON p.id = l.conversation_id
                  JOIN handoff_outbox o ON o.lead_id = l.id AND o.status = 'delivered')
                   AS delivered"
        ))
        .bind(period.from)
        .bind(period.to)
        .bind(channel)
        .fetch_one(&self.pool)
        .await
        .map_err(error)?;
        let get = StoreError::Unexpected;
        let funnel = Funnel {
            conversations: funnel_row.try_get("conversations").map_err(get)?,
            engaged: funnel_row.try_get("engaged").map_err(get)?,
            qualified: funnel_row.try_get("qualified").map_err(get)?,
            leads: funnel_row.try_get("leads").map_err(get)?,
            delivered: funnel_row.try_get("delivered").map_err(get)?,
        };

        let rating_rows: Vec<(i16, i64)> = sqlx::query_as(&format!(
            "{PERIOD_CONVERSATIONS}
             SELECT r.score, count(*) FROM ratings r JOIN period p ON p.id = r.conversation_id
             GROUP BY r.score"
        ))
        .bind(period.from)
        .bind(period.to)
        .bind(channel)
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        let mut ratings = [0_i64; 5];
        for (score, count) in rating_rows {
            if let Some(slot) = usize::try_from(score - 1)
                .ok()
                .and_then(|index| ratings.get_mut(index))
            {
                *slot = count;
            }
        }
        let rated: i64 = ratings.iter().sum();
        let average_rating = (rated > 0).then(|| {
            let total: i64 = ratings
                .iter()
                .zip(1_i64..)
                .map(|(count, score)| count * score)
                .sum();
            total as f64 / rated as f64
        });

        let reply_rows = sqlx::query(
            "SELECT channel, percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS p50,
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY secs) AS p95, count(*) AS n
             FROM (
                 SELECT i.channel, GREATEST(0, EXTRACT(EPOCH FROM
                        min(COALESCE(o.first_shown_at, o.delivered_at, o.created_at))
                        - COALESCE((i.payload->>'received_at')::timestamptz, i.created_at)))::float8
                        AS secs
                 FROM messages i JOIN messages o ON o.reply_to = i.id
                 WHERE i.direction = 'in' AND i.created_at >= $1 AND i.created_at < $2
                   AND ($3::text IS NULL OR i.channel = $3)
                   AND (o.delivery IS NULL OR o.delivery = 'sent')
                 GROUP BY i.id, i.channel, i.payload, i.created_at) replies
             GROUP BY channel ORDER BY channel",
        )
        .bind(period.from)
        .bind(period.to)
        .bind(channel)
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        let reply_times = reply_rows
            .iter()
            .map(|row| {
                Ok(ReplyTimes {
                    channel: row.try_get("channel")?,
                    p50: row.try_get::<Option<f64>, _>("p50")?.unwrap_or(0.0),
                    p95: row.try_get::<Option<f64>, _>("p95")?.unwrap_or(0.0),
                    count: row.try_get("n")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(get)?;

        let (answered, declined): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE kind = 'answer'), count(*) FILTER (WHERE kind = 'declined')
             FROM messages
             WHERE direction = 'out' AND created_at >= $1 AND created_at < $2
               AND ($3::text IS NULL OR channel = $3)",
        )
        .bind(period.from)
        .bind(period.to)
        .bind(channel)
        .fetch_one(&self.pool)
        .await
        .map_err(error)?;

        let objection_rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(&format!(
            "{PERIOD_CONVERSATIONS}
             SELECT e.detail->>'kind' AS kind, count(DISTINCT p.id),
                    count(DISTINCT p.id) FILTER (WHERE l.id IS NOT NULL),
                    count(DISTINCT p.id) FILTER (WHERE l.id IS NULL AND p.stage = 'handed_off')
             FROM events e JOIN period p ON p.id = e.conversation_id
             LEFT JOIN leads l ON l.conversation_id = p.id
             WHERE e.name = 'objection' AND e.detail->>'kind' IS NOT NULL
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
        ))
        .bind(period.from)
        .bind(period.to)
        .bind(channel)
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        let objections = objection_rows
            .into_iter()
            .map(
                |(kind, conversations, ended_with_lead, handed_off)| ObjectionOutcome {
                    kind,
                    conversations,
                    ended_with_lead,
                    handed_off,
                    open: conversations - ended_with_lead - handed_off,
                },
            )
            .collect();

        Ok(Dashboard {
            period,
            conversion: (funnel.conversations > 0)
                .then(|| funnel.leads as f64 / funnel.conversations as f64),
            funnel,
            ratings,
            average_rating,
            reply_times,
            answered,
            declined,
            objections,
        })
    }

    /// The questions answered with "I don't know" in `period`, grouped by their lower-cased
    /// text, most frequent first: what the team should write into the knowledge base next.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn unanswered_questions(
        &self,
        period: Period,
        limit: i64,
    ) -> Result<Vec<UnansweredQuestion>, StoreError> {
        let rows: Vec<(String, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT lower(btrim(i.text)) AS question, count(*), max(i.created_at)
             FROM messages i JOIN messages o ON o.reply_to = i.id AND o.kind = 'declined'
             WHERE i.direction = 'in' AND i.created_at >= $1 AND i.created_at < $2
               AND ($3::text IS NULL OR i.channel = $3)
             GROUP BY 1 ORDER BY 2 DESC, 3 DESC LIMIT $4",
        )
        .bind(period.from)
        .bind(period.to)
        .bind(period.channel.map(Channel::as_str))
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(rows
            .into_iter()
            .map(|(text, times, last_asked)| UnansweredQuestion {
                text,
                times,
                last_asked,
            })
            .collect())
    }
}
