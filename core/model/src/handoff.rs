//! Which hand-off targets a new lead goes to: routes from configuration, matched against the
//! lead when it is created.

use serde::{Deserialize, Serialize};

use crate::{Channel, NewLead};

/// One hand-off target and the leads it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The target's name in configuration.
    pub target: String,
    #[serde(default)]
    pub when: RouteRule,
}

/// Conditions a lead must meet, all of them; an empty rule takes every lead.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteRule {
    /// Only qualified leads (`true`) or only unqualified ones (`false`).
    pub qualified: Option<bool>,
    /// Only leads from these channels.
    pub channels: Vec<Channel>,
    /// Only leads whose summary or need mentions one of these words (case-insensitive).
    pub interests: Vec<String>,
    /// Only leads that came from one of these campaigns.
    pub campaigns: Vec<String>,
}

impl Route {
    /// A target that takes every lead.
    pub fn always(target: impl Into<String>) -> Route {
        Route {
            target: target.into(),
            when: RouteRule::default(),
        }
    }

    /// Whether a lead from `channel` (and `campaign`) goes to this target.
    pub fn accepts(&self, channel: Channel, campaign: Option<&str>, lead: &NewLead) -> bool {
        let rule = &self.when;
        let qualified = rule.qualified.is_none_or(|wanted| wanted == lead.qualified);
        let channel = rule.channels.is_empty() || rule.channels.contains(&channel);
        let campaign = rule.campaigns.is_empty()
            || campaign.is_some_and(|campaign| rule.campaigns.iter().any(|c| c == campaign));
        let interest = rule.interests.is_empty() || {
            let mut text = lead.summary.to_lowercase();
            for (key, value) in &lead.qualification {
                text.push(' ');
                text.push_str(key);
                text.push(' ');
                text.push_str(&value.to_lowercase());
            }
            rule.interests
                .iter()
                .any(|interest| text.contains(&interest.to_lowercase()))
        };
        qualified && channel && campaign && interest
    }
}

/// The targets of `routes` that take the lead, each once, in configuration order.
pub fn route(
    routes: &[Route],
    channel: Channel,
    campaign: Option<&str>,
    lead: &NewLead,
) -> Vec<String> {
    let mut targets: Vec<String> = Vec::new();
    for route in routes {
        if route.accepts(channel, campaign, lead) && !targets.contains(&route.target) {
            targets.push(route.target.clone());
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(qualified: bool, summary: &str) -> NewLead {
        NewLead {
            summary: summary.to_owned(),
            qualified,
            ..NewLead::default()
        }
    }

    #[test]
    fn rules_pick_targets_by_qualification_channel_interest_and_campaign() {
        let routes = vec![
            Route::always("webhook"),
            Route {
                target: "crm".to_owned(),
                when: RouteRule {
                    qualified: Some(true),
                    ..RouteRule::default()
                },
            },
            Route {
                target: "tracker".to_owned(),
                when: RouteRule {
                    channels: vec![Channel::Telegram],
                    interests: vec!["Внедрение".to_owned()],
                    ..RouteRule::default()
                },
            },
            Route {
                target: "promo".to_owned(),
                when: RouteRule {
                    campaigns: vec!["spring".to_owned()],
                    ..RouteRule::default()
                },
            },
        ];
        let need = lead(false, "нужно внедрение для 3 филиалов");
        assert_eq!(
            route(&routes, Channel::Telegram, None, &need),
            vec!["webhook", "tracker"]
        );
        assert_eq!(route(&routes, Channel::Web, None, &need), vec!["webhook"]);
        assert_eq!(
            route(&routes, Channel::Web, Some("spring"), &lead(true, "")),
            vec!["webhook", "crm", "promo"]
        );
    }
}
