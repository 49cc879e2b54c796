//! Who may use the copilot: the members of the sales team's Slack workspace. Anyone who can
//! write to the bot — a guest, or someone of another organisation in a Slack Connect channel —
//! would otherwise get internal documents and could create leads and tasks, so every question,
//! command, thread message to a prospect and button press is checked first.
//!
//! A request that names another workspace (an event's `team_id`, a command's, a button
//! press's) is refused at once. Otherwise the person is looked up with `users.info` (scope
//! `users:read`): a member has the workspace's `team_id`, is not deactivated, not a stranger
//! (`is_stranger`: another organisation's user met through a shared channel), and not a guest
//! (`is_restricted`, `is_ultra_restricted`) unless guests are allowed. What Slack says is kept
//! per user for a while (`Membership::cache_for`), so a conversation costs one lookup; an
//! error (Slack unreachable, a missing scope) is never kept and never admits anyone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use closer_model::Lang;

use crate::api::{Api, ApiError, UserRecord};

/// Who counts as a member, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The workspace whose members the copilot serves (`T…`); the bot token's own workspace
    /// when not given.
    pub team_id: Option<String>,
    /// Let the workspace's guests (multi- and single-channel) in. People of other
    /// organisations are never let in.
    pub allow_guests: bool,
    /// How long what `users.info` said about a person is kept.
    pub cache_for: Duration,
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            team_id: None,
            allow_guests: false,
            cache_for: Duration::from_secs(300),
        }
    }
}

/// Where a person stands with the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Member,
    /// A multi- or single-channel guest of the workspace.
    Guest,
    /// Someone of another workspace or organisation (Slack Connect, a stranger).
    OtherOrganisation,
    /// Deactivated, or a bot.
    NotAPerson,
    /// Slack does not know them (`user_not_found`, `user_not_visible`).
    Unknown,
}

impl Standing {
    /// Whether a person of this standing may use the copilot.
    pub fn admitted(self, allow_guests: bool) -> bool {
        match self {
            Standing::Member => true,
            Standing::Guest => allow_guests,
            Standing::OtherOrganisation | Standing::NotAPerson | Standing::Unknown => false,
        }
    }
}

/// What `users.info` says about a person, against the workspace `team_id` (pure).
pub fn standing(user: &UserRecord, team_id: &str) -> Standing {
    if user.deleted || user.is_bot {
        Standing::NotAPerson
    } else if user.is_stranger || user.team_id.as_deref() != Some(team_id) {
        Standing::OtherOrganisation
    } else if user.is_restricted || user.is_ultra_restricted {
        Standing::Guest
    } else {
        Standing::Member
    }
}

/// What a non-member is told, politely, and nothing more.
pub fn refusal(lang: Lang) -> &'static str {
    match lang {
        Lang::Ru => {
            "Извините, я помогаю только сотрудникам отдела продаж — участникам этого рабочего пространства Slack. Гостям и пользователям других организаций я не отвечаю."
        }
        Lang::En => {
            "Sorry, I only help the sales team: members of this Slack workspace. I can't answer guests or people from other organisations."
        }
    }
}

/// What a person is told when Slack cannot say who they are right now.
pub fn unverified(lang: Lang) -> &'static str {
    match lang {
        Lang::Ru => "Не удалось проверить, что вы участник рабочего пространства; попробуйте через минуту.",
        Lang::En => "I could not check that you are a member of this workspace; please try again in a minute.",
    }
}

/// The membership check with its cache. Shared by every handler of the channel.
pub(crate) struct Members {
    api: Api,
    team_id: String,
    allow_guests: bool,
    cache_for: Duration,
    known: Mutex<HashMap<String, (Instant, Standing)>>,
}

/// More entries than this and the expired ones are swept on the next insert.
const SWEEP_ABOVE: usize = 10_000;

/// How long a `users.info` lookup may take: a slash command must be acknowledged within
/// Slack's 3 seconds, and an event answered within them.
const LOOKUP_WITHIN: Duration = Duration::from_secs(2);

impl Members {
    pub(crate) fn new(api: Api, membership: &Membership, own_team_id: &str) -> Members {
        Members {
            api,
            team_id: membership
                .team_id
                .clone()
                .filter(|team| !team.trim().is_empty())
                .unwrap_or_else(|| own_team_id.to_owned()),
            allow_guests: membership.allow_guests,
            cache_for: membership.cache_for,
            known: Mutex::new(HashMap::new()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Standing)>> {
        // A poisoned lock only means a panic mid-update of plain data.
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `user` may use the copilot. `request_team` is the workspace the request says it
    /// comes from, when it says so.
    ///
    /// # Errors
    /// [`ApiError`] when Slack cannot tell (unreachable, rate-limited, a missing scope): the
    /// person is not admitted, and the caller says so or has Slack try again.
    pub(crate) async fn admits(
        &self,
        user: &str,
        request_team: Option<&str>,
    ) -> Result<bool, ApiError> {
        let standing = self.standing_of(user, request_team).await?;
        let admitted = standing.admitted(self.allow_guests);
        if !admitted {
            tracing::info!(
                user,
                ?standing,
                "a Slack user who is not a member of the workspace was refused"
            );
            metrics::counter!("closer_slack_refused_total", "standing" => standing_label(standing))
                .increment(1);
        }
        Ok(admitted)
    }

    async fn standing_of(
        &self,
        user: &str,
        request_team: Option<&str>,
    ) -> Result<Standing, ApiError> {
        if request_team.is_some_and(|team| !team.is_empty() && team != self.team_id) {
            return Ok(Standing::OtherOrganisation);
        }
        let now = Instant::now();
        if let Some((until, standing)) = self.known().get(user) {
            if *until > now {
                return Ok(*standing);
            }
        }
        let lookup = tokio::time::timeout(LOOKUP_WITHIN, self.api.user_info(user))
            .await
            .unwrap_or_else(|_| Err(ApiError::Unavailable("users.info took too long".to_owned())));
        let standing = match lookup {
            Ok(record) => standing(&record, &self.team_id),
            Err(ApiError::Refused(code))
                if matches!(code.as_str(), "user_not_found" | "user_not_visible") =>
            {
                Standing::Unknown
            }
            Err(error) => {
                tracing::warn!(user, %error, "users.info failed: the Slack user cannot be checked (the app needs the users:read scope)");
                return Err(error);
            }
        };
        let mut known = self.known();
        if known.len() > SWEEP_ABOVE {
            known.retain(|_, (until, _)| *until > now);
        }
        known.insert(user.to_owned(), (now + self.cache_for, standing));
        Ok(standing)
    }
}

fn standing_label(standing: Standing) -> &'static str {
    match standing {
        Standing::Member => "member",
        Standing::Guest => "guest",
        Standing::OtherOrganisation => "other_organisation",
        Standing::NotAPerson => "not_a_person",
        Standing::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(change: impl FnOnce(&mut UserRecord)) -> UserRecord {
        let mut record = UserRecord {
            id: "U1".to_owned(),
            team_id: Some("T1".to_owned()),
            ..UserRecord::default()
        };
        change(&mut record);
        record
    }

    #[test]
    fn only_full_members_of_the_workspace_are_admitted_unless_guests_are_allowed() {
        let table = [
            (user(|_| {}), Standing::Member),
            (user(|u| u.is_restricted = true), Standing::Guest),
            (user(|u| u.is_ultra_restricted = true), Standing::Guest),
            (
                user(|u| u.team_id = Some("TOTHER".to_owned())),
                Standing::OtherOrganisation,
            ),
            (user(|u| u.team_id = None), Standing::OtherOrganisation),
            (user(|u| u.is_stranger = true), Standing::OtherOrganisation),
            (
                user(|u| {
                    u.team_id = Some("TOTHER".to_owned());
                    u.is_restricted = true;
                }),
                Standing::OtherOrganisation,
            ),
            (user(|u| u.deleted = true), Standing::NotAPerson),
            (user(|u| u.is_bot = true), Standing::NotAPerson),
        ];
        for (record, expected) in &table {
            assert_eq!(standing(record, "T1"), *expected, "{record:?}");
        }
        let admitted = |allow_guests: bool| -> Vec<Standing> {
            table
                .iter()
                .map(|(_, standing)| *standing)
                .filter(|standing| standing.admitted(allow_guests))
                .collect()
        };
        assert_eq!(admitted(false), [Standing::Member]);
        assert_eq!(
            admitted(true),
            [Standing::Member, Standing::Guest, Standing::Guest]
        );
        assert!(!Standing::Unknown.admitted(true));
    }
}
