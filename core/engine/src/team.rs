//! What the sales team does through the engine: take a conversation over, write to the
//! prospect, hand it back; create a tracker task or a lead by hand. Each goes through the
//! store once per request key, so a platform's retry of the request changes nothing, and
//! leads and tasks reach the trackers through the same hand-off outbox as every lead.

use closer_model::{Channel, NewTask, Task};
use closer_store::{PersonMessage, Recorded, StoreError};
use uuid::Uuid;

use crate::{Engine, EngineError};

/// A lead a person typed in (Slack's `/closer lead`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualLead {
    /// The request's idempotency key (the platform's id of the command).
    pub key: String,
    /// The person's note: a name, a phone or e-mail, what the prospect wants.
    pub note: String,
    pub requested_by: String,
    /// Where the person typed it; the lead's source.
    pub channel: Channel,
}

impl Engine {
    /// A person takes the conversation over: the assistant stays silent in it until
    /// [`Engine::hand_back`]. Returns whether the conversation exists.
    ///
    /// # Errors
    /// [`EngineError::Store`] when the database fails.
    pub async fn take_over(&self, conversation_id: Uuid, by: &str) -> Result<bool, EngineError> {
        tracing::info!(%conversation_id, "conversation taken over");
        Ok(self.store.set_taken_over(conversation_id, Some(by)).await?)
    }

    /// The assistant answers the conversation again. Returns whether it exists.
    ///
    /// # Errors
    /// [`EngineError::Store`] when the database fails.
    pub async fn hand_back(&self, conversation_id: Uuid) -> Result<bool, EngineError> {
        tracing::info!(%conversation_id, "conversation handed back");
        Ok(self.store.set_taken_over(conversation_id, None).await?)
    }

    /// Queues what a person wrote for the prospect, once per `key` (the id of the person's
    /// message on their platform). The prospect's channel delivers it like any reply; a
    /// conversation nobody had taken over is taken over by `by`. `None` when the conversation
    /// does not exist.
    ///
    /// # Errors
    /// [`EngineError::Rejected`] for an empty text; [`EngineError::Store`].
    pub async fn send_as_person(
        &self,
        conversation_id: Uuid,
        key: &str,
        by: &str,
        text: &str,
    ) -> Result<Option<PersonMessage>, EngineError> {
        self.store
            .record_person_message(conversation_id, key, by, text.trim())
            .await
            .map_err(rejected)
    }

    /// Creates a tracker task, handed to `task.target` or to every target that takes tasks.
    ///
    /// # Errors
    /// [`EngineError::Rejected`] for an empty title, an unknown target or no target at all;
    /// [`EngineError::Store`].
    pub async fn queue_task(&self, task: &NewTask) -> Result<Recorded<Task>, EngineError> {
        let targets: Vec<String> = match &task.target {
            Some(target) if self.task_targets.contains(target) => vec![target.clone()],
            Some(target) => {
                return Err(EngineError::Rejected(format!(
                    "no hand-off target named {target:?} takes tasks"
                )))
            }
            None => self.task_targets.to_vec(),
        };
        let recorded = self
            .store
            .create_task(task, &targets)
            .await
            .map_err(rejected)?;
        if !recorded.duplicate {
            tracing::info!(task_id = %recorded.value.id, "task queued");
        }
        Ok(recorded)
    }

    /// Creates a lead from a person's note and hands it to the targets its routes choose.
    ///
    /// # Errors
    /// [`EngineError::Rejected`] when the note has no phone or e-mail; [`EngineError::Store`].
    pub async fn record_manual_lead(
        &self,
        request: &ManualLead,
    ) -> Result<Recorded<Uuid>, EngineError> {
        let lead = closer_dialog::lead_from_note(&request.note)
            .map_err(|error| EngineError::Rejected(error.to_string()))?;
        let targets = closer_model::route(&self.routes, request.channel, None, &lead);
        let recorded = self
            .store
            .record_manual_lead(
                request.channel,
                &request.key,
                &request.requested_by,
                &request.note,
                &lead,
                &targets,
            )
            .await?;
        if !recorded.duplicate {
            tracing::info!(lead_id = %recorded.value, "lead recorded by hand");
            metrics::counter!("closer_leads_total", "channel" => request.channel.as_str())
                .increment(1);
        }
        Ok(recorded)
    }
}

/// The store's refusal of bad input becomes the engine's; other errors stay store errors.
fn rejected(error: StoreError) -> EngineError {
    match error {
        StoreError::Rejected { reason } => EngineError::Rejected(reason),
        other => EngineError::Store(other),
    }
}
