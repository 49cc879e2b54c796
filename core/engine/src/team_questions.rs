//! The sales team's questions (Slack): answered from every document, the team's internal ones
//! included, and recorded like any turn — deduplicated by the platform's message id, the answer
//! committed as a reply — but without the sales dialog: a salesperson is not a prospect, so
//! no qualification question, no request for contact details and no lead.

use closer_knowledge::AudienceFilter;
use closer_model::{InboundMessage, Lang, Reply, ReplyKind};
use closer_store::{TurnOutcome, TurnStart};
use tracing::Instrument;

use crate::{Engine, EngineError, Handled};

/// The stage recorded for the team's conversations.
const TEAM_STAGE: &str = "team";

impl Engine {
    /// Answers a question from the sales team exactly once: the knowledge base's answer with
    /// its citations (internal documents included), or `declined(lang)` when it has none.
    ///
    /// # Errors
    /// [`EngineError::Store`] when the database fails; nothing has been committed then.
    pub async fn answer_team(
        &self,
        inbound: &InboundMessage,
        declined: impl Fn(Lang) -> String,
    ) -> Result<Handled, EngineError> {
        let span = tracing::info_span!(
            "team_question",
            channel = inbound.channel.as_str(),
            conversation_id = tracing::field::Empty
        );
        async move {
            let turn = match self.store.begin_turn(inbound).await? {
                TurnStart::Duplicate { replies } => {
                    tracing::info!("duplicate question ignored");
                    return Ok(Handled {
                        conversation_id: None,
                        replies,
                        duplicate: true,
                        lead_id: None,
                    });
                }
                TurnStart::New(turn) => turn,
            };
            let conversation_id = turn.conversation.id;
            tracing::Span::current()
                .record("conversation_id", tracing::field::display(conversation_id));
            let text = inbound.content.text().unwrap_or_default();
            let lang = Lang::detect(text)
                .or(turn.conversation.lang)
                .unwrap_or_default();
            let answer = self.team_answer(text, lang);
            let answered = answer.is_some();
            let reply = match answer {
                Some(answer) => Reply {
                    kind: ReplyKind::Answer,
                    text: answer.text,
                    citations: answer.citations,
                    ..Reply::default()
                },
                None => Reply::new(ReplyKind::Declined, declined(lang)),
            };
            let replies = [reply];
            let events = [(
                "team_question".to_owned(),
                serde_json::json!({ "answered": answered }),
            )];
            let state = turn.conversation.state.clone();
            turn.commit(TurnOutcome {
                state,
                lang,
                stage: TEAM_STAGE,
                replies: &replies,
                new_lead: None,
                lead_update: None,
                handoff_targets: &[],
                rating: None,
                events: &events,
                source_campaign: None,
            })
            .await?;
            Ok(Handled {
                conversation_id: Some(conversation_id),
                replies: replies.to_vec(),
                duplicate: false,
                lead_id: None,
            })
        }
        .instrument(span)
        .await
    }

    /// The knowledge base's answer for the team: the same search as a prospect's (the playbook's
    /// words for a recognised objection first), over every audience.
    pub fn team_answer(&self, text: &str, lang: Lang) -> Option<closer_model::KnowledgeAnswer> {
        if text.trim().is_empty() {
            return None;
        }
        let knowledge = self.knowledge();
        let query = closer_dialog::knowledge_query(self.dialog_config(), text, lang, &[]);
        knowledge
            .answer(&query, lang, AudienceFilter::All)
            .or_else(|| {
                (query != text)
                    .then(|| knowledge.answer(text, lang, AudienceFilter::All))
                    .flatten()
            })
    }
}
