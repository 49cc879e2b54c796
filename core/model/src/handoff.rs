//! Which hand-off targets a new lead goes to: routes from configuration, matched against the
//! lead when it is created; and the [`WebLink`] a target gives back for what it created.

use std::fmt;

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

/// Why a link is not shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("not a URL: {0}")]
    Unparsable(url::ParseError),
    #[error("not an http(s) link (scheme {0:?})")]
    Scheme(String),
    #[error("the link is longer than {MAX_LINK_CHARS} characters")]
    TooLong,
}

/// The longest link kept: trackers' links are short, and Slack refuses a button's URL past 3,000.
pub const MAX_LINK_CHARS: usize = 2048;

/// A link to what a hand-off target created, which the sales team is shown (the console, Slack,
/// the CSV export) and may click: an absolute `http` or `https` URL with a host, never
/// `javascript:`, `data:` or `file:`, since it comes from outside (a webhook receiver's answer, a
/// tracker's JSON). Kept as the parser serialises it, so what was checked is what is shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct WebLink(String);

impl WebLink {
    /// # Errors
    /// [`LinkError`] when the text is not an absolute http(s) URL with a host, or is too long.
    pub fn parse(text: &str) -> Result<WebLink, LinkError> {
        if text.len() > MAX_LINK_CHARS {
            return Err(LinkError::TooLong);
        }
        let url = url::Url::parse(text.trim()).map_err(LinkError::Unparsable)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LinkError::Scheme(url.scheme().to_owned()));
        }
        // http(s) URLs always have a host once parsed ("https://" alone does not parse).
        if url.host_str().is_none_or(str::is_empty) {
            return Err(LinkError::Unparsable(url::ParseError::EmptyHost));
        }
        let text: String = url.into();
        if text.len() > MAX_LINK_CHARS {
            return Err(LinkError::TooLong);
        }
        Ok(WebLink(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebLink {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl From<WebLink> for String {
    fn from(link: WebLink) -> String {
        link.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_links_are_kept() {
        for good in [
            "https://tracker.example.com/SALES-1",
            "http://crm.local:8080/leads/1?tab=info#top",
            "  https://trello.com/c/abc  ",
        ] {
            let link = WebLink::parse(good).unwrap_or_else(|error| panic!("{good}: {error}"));
            assert!(link.as_str().starts_with("http"), "{link}");
        }
        assert_eq!(
            WebLink::parse("HTTPS://Tracker.Example.com/a b")
                .unwrap()
                .as_str(),
            "https://tracker.example.com/a%20b",
            "kept as parsed, so what is shown is what was checked"
        );
        for bad in [
            "javascript:alert(document.cookie)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            "\u{0}javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "ftp://example.com/x",
            "//evil.example.com/x",
            "/relative/path",
            "https://",
            "",
            "not a url",
        ] {
            assert!(WebLink::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_LINK_CHARS));
        assert_eq!(WebLink::parse(&long), Err(LinkError::TooLong));
    }

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
