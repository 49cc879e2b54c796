//! The live state of each connection Closer keeps — a channel's polling loop, gateway or
//! socket — as its adapter last reported it: connected, degraded or down, when it last worked,
//! and the last error. Adapters report; the console's health page, `/api/health` and
//! `/readyz` read. Platform-neutral: a component is a name (`telegram`, `discord`, `slack`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest error text kept, in characters: enough to read, never a whole HTML page.
const MAX_ERROR_CHARS: usize = 300;

/// Where a component stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    /// Configured, not connected yet.
    Starting,
    /// Its last contact with the platform worked.
    Connected,
    /// It works with trouble (asked to slow down, reconnecting).
    Degraded,
    /// Its last contact with the platform failed.
    Down,
}

impl ComponentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentState::Starting => "starting",
            ComponentState::Connected => "connected",
            ComponentState::Degraded => "degraded",
            ComponentState::Down => "down",
        }
    }
}

/// One component's state as last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentStatus {
    pub name: String,
    pub state: ComponentState,
    /// How it is connected (`long polling`, `webhook`, `gateway`, `Socket Mode`…).
    pub mode: Option<String>,
    /// When the state last changed.
    pub since: DateTime<Utc>,
    /// When its last contact with the platform worked.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// The last error, kept after a recovery so that the page can show what happened.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The registry of components' states, shared by the adapters that report and the pages that
/// show. Cheap to clone; every clone is the same registry.
#[derive(Debug, Clone, Default)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<String, ComponentStatus>>>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// Names a configured component, `starting` until it reports (kept as it is if it has).
    pub fn register(&self, name: &str) {
        self.update(name, |_| {});
    }

    /// The component's contact with the platform worked.
    pub fn connected(&self, name: &str, mode: &str) {
        self.update(name, |status| {
            let now = Utc::now();
            if status.state != ComponentState::Connected {
                status.since = now;
            }
            status.state = ComponentState::Connected;
            status.mode = Some(mode.to_owned());
            status.last_ok_at = Some(now);
        });
    }

    /// The component works with trouble; `error` says what.
    pub fn degraded(&self, name: &str, error: &str) {
        self.failed(name, ComponentState::Degraded, error);
    }

    /// The component's contact with the platform failed; `error` says how. It must hold no
    /// secret: adapters pass what they would log.
    pub fn down(&self, name: &str, error: &str) {
        self.failed(name, ComponentState::Down, error);
    }

    fn failed(&self, name: &str, state: ComponentState, error: &str) {
        self.update(name, |status| {
            let now = Utc::now();
            if status.state != state {
                status.since = now;
            }
            status.state = state;
            status.last_error = Some(error.chars().take(MAX_ERROR_CHARS).collect());
            status.last_error_at = Some(now);
        });
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut ComponentStatus)) {
        // A poisoned lock only means a reporter panicked mid-update of plain data.
        let mut components = match self.components.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let status = components
            .entry(name.to_owned())
            .or_insert_with(|| ComponentStatus {
                name: name.to_owned(),
                state: ComponentState::Starting,
                mode: None,
                since: Utc::now(),
                last_ok_at: None,
                last_error: None,
                last_error_at: None,
            });
        change(status);
    }

    /// One component's state, when it is registered or has reported.
    pub fn get(&self, name: &str) -> Option<ComponentStatus> {
        self.snapshot()
            .into_iter()
            .find(|status| status.name == name)
    }

    /// Every component's state, by name.
    pub fn snapshot(&self) -> Vec<ComponentStatus> {
        let components = match self.components.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        components.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_goes_down_and_comes_back_keeping_its_last_error() {
        let health = Health::new();
        health.register("telegram");
        assert_eq!(
            health.get("telegram").map(|status| status.state),
            Some(ComponentState::Starting)
        );
        health.down("telegram", &"x".repeat(1000));
        let down = health.get("telegram").expect("reported");
        assert_eq!(down.state, ComponentState::Down);
        assert_eq!(
            down.last_error.as_ref().map(String::len),
            Some(MAX_ERROR_CHARS)
        );
        assert!(down.last_ok_at.is_none());
        health.connected("telegram", "long polling");
        let up = health.get("telegram").expect("reported");
        assert_eq!(up.state, ComponentState::Connected);
        assert_eq!(up.mode.as_deref(), Some("long polling"));
        assert!(up.last_ok_at.is_some() && up.last_error.is_some());
        health.register("telegram");
        assert_eq!(
            health.get("telegram").map(|status| status.state),
            Some(ComponentState::Connected)
        );
        assert_eq!(health.snapshot().len(), 1);
    }
}
