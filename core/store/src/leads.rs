//! Leads and their hand-off outbox: written inside a turn, read by the eval and the console.

use std::collections::{BTreeMap, HashMap};

use closer_model::{Contact, Email, Lead, NewLead, ObjectionKind, Phone};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::error::StoreError;
use crate::records::{parse_channel, ConversationRecord, OutboxEntry};
use crate::Store;

pub(crate) const LEAD_COLUMNS: &str =
    "id, conversation_id, channel, name, phone, email, company, summary, \
     qualification, objections, qualified, source_campaign, created_at";

/// Inserts the conversation's lead unless it has one; returns whether it was inserted.
pub(crate) async fn insert_lead(
    connection: &mut PgConnection,
    lead_id: Uuid,
    conversation: &ConversationRecord,
    source_campaign: Option<&str>,
    lead: &NewLead,
) -> Result<bool, sqlx::Error> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO leads (id, conversation_id, channel, name, phone, email, company, summary,
                            qualification, objections, qualified, source_campaign)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (conversation_id) DO NOTHING
         RETURNING id",
    )
    .bind(lead_id)
    .bind(conversation.id)
    .bind(conversation.channel.as_str())
    .bind(lead.contact.name.as_deref())
    .bind(lead.contact.phone.as_ref().map(Phone::as_str))
    .bind(lead.contact.email.as_ref().map(Email::as_str))
    .bind(lead.contact.company.as_deref())
    .bind(&lead.summary)
    .bind(sqlx::types::Json(&lead.qualification))
    .bind(objection_names(&lead.objections))
    .bind(lead.qualified)
    .bind(source_campaign)
    .fetch_optional(connection)
    .await?;
    Ok(inserted.is_some())
}

/// Applies new details to the conversation's lead, if it has one. A contact field left
/// `None` and an empty summary keep what is stored: an update never forgets a phone.
pub(crate) async fn update_lead(
    connection: &mut PgConnection,
    conversation_id: Uuid,
    lead: &NewLead,
) -> Result<(), sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE leads
         SET name = COALESCE($2, name), phone = COALESCE($3, phone),
             email = COALESCE($4, email), company = COALESCE($5, company),
             summary = COALESCE(NULLIF($6, ''), summary), qualification = $7,
             objections = $8, qualified = $9, updated_at = now()
         WHERE conversation_id = $1",
    )
    .bind(conversation_id)
    .bind(lead.contact.name.as_deref())
    .bind(lead.contact.phone.as_ref().map(Phone::as_str))
    .bind(lead.contact.email.as_ref().map(Email::as_str))
    .bind(lead.contact.company.as_deref())
    .bind(&lead.summary)
    .bind(sqlx::types::Json(&lead.qualification))
    .bind(objection_names(&lead.objections))
    .bind(lead.qualified)
    .execute(connection)
    .await?;
    if updated.rows_affected() == 0 {
        tracing::warn!(%conversation_id, "a lead update for a conversation without a lead is ignored");
    }
    Ok(())
}

/// Queues the lead's hand-off to one target. The idempotency key (lead and target) is
/// what the worker sends to the target, so a retried delivery creates one task.
pub(crate) async fn queue_handoff(
    connection: &mut PgConnection,
    lead_id: Uuid,
    target: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO handoff_outbox (lead_id, target, idempotency_key) VALUES ($1, $2, $3)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(lead_id)
    .bind(target)
    .bind(format!("{lead_id}:{target}"))
    .execute(connection)
    .await?;
    Ok(())
}

fn objection_names(objections: &[ObjectionKind]) -> Vec<&'static str> {
    objections.iter().map(|kind| kind.as_str()).collect()
}

pub(crate) fn lead_from_row(row: &PgRow) -> Result<Lead, StoreError> {
    let get = StoreError::Unexpected;
    let channel: String = row.try_get("channel").map_err(get)?;
    let phone: Option<String> = row.try_get("phone").map_err(get)?;
    let email: Option<String> = row.try_get("email").map_err(get)?;
    let qualification: serde_json::Value = row.try_get("qualification").map_err(get)?;
    let objections: Vec<String> = row.try_get("objections").map_err(get)?;
    let phone = phone
        .map(|text| Phone::parse(&text))
        .transpose()
        .map_err(|error| StoreError::corrupt(format!("lead phone: {error}")))?;
    let email = email
        .map(|text| Email::parse(&text))
        .transpose()
        .map_err(|error| StoreError::corrupt(format!("lead e-mail: {error}")))?;
    let qualification: BTreeMap<String, String> = serde_json::from_value(qualification)
        .map_err(|error| StoreError::corrupt(format!("lead qualification: {error}")))?;
    let objections = objections
        .iter()
        .map(|name| {
            ObjectionKind::parse(name)
                .ok_or_else(|| StoreError::corrupt(format!("objection kind {name:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Lead {
        id: row.try_get("id").map_err(get)?,
        conversation_id: row.try_get("conversation_id").map_err(get)?,
        channel: parse_channel(&channel)
            .map_err(|_| StoreError::corrupt(format!("channel {channel:?}")))?,
        source_campaign: row.try_get("source_campaign").map_err(get)?,
        details: NewLead {
            contact: Contact {
                name: row.try_get("name").map_err(get)?,
                phone,
                email,
                company: row.try_get("company").map_err(get)?,
            },
            summary: row.try_get("summary").map_err(get)?,
            qualification,
            objections,
            qualified: row.try_get("qualified").map_err(get)?,
        },
        created_at: row.try_get("created_at").map_err(get)?,
    })
}

impl Store {
    /// The conversation's lead, if it has one.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] when a stored field does not parse.
    pub async fn lead_for_conversation(
        &self,
        conversation_id: Uuid,
    ) -> Result<Option<Lead>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE conversation_id = $1"
        ))
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        row.as_ref().map(lead_from_row).transpose()
    }

    /// The newest `limit` leads, newest first, each with its hand-off outbox rows.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] when a stored field does not parse.
    pub async fn leads(&self, limit: i64) -> Result<Vec<(Lead, Vec<OutboxEntry>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads ORDER BY created_at DESC, id LIMIT $1"
        ))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let leads = rows
            .iter()
            .map(lead_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<Uuid> = leads.iter().map(|lead| lead.id).collect();
        let mut outbox = self.handoffs_of(&ids).await?;
        Ok(leads
            .into_iter()
            .map(|lead| {
                let entries = outbox.remove(&lead.id).unwrap_or_default();
                (lead, entries)
            })
            .collect())
    }

    /// The hand-offs of these leads or tasks, by the lead's or task's id, oldest first.
    pub(crate) async fn handoffs_of(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<OutboxEntry>>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM handoff_outbox
             WHERE lead_id = ANY($1) OR task_id = ANY($1) ORDER BY id",
            OutboxEntry::COLUMNS
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let mut outbox: HashMap<Uuid, Vec<OutboxEntry>> = HashMap::new();
        for row in &rows {
            let entry = OutboxEntry::from_row(row)?;
            if let Some(subject) = entry.lead_id.or(entry.task_id) {
                outbox.entry(subject).or_default().push(entry);
            }
        }
        Ok(outbox)
    }
}
