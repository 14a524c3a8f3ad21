//! Presence's Prometheus metrics, registered with the relay's (`live_relay_presence_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Action {
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Code {
    pub code: &'static str,
}

/// Handles on the counters (cheap to clone: they share their values).
#[derive(Debug, Clone, Default)]
pub struct PresenceMetrics {
    /// Members in this node's sets (its grace periods included).
    pub members: Gauge,
    /// Diffs announced, by action (`join`, `update`, `leave`).
    pub events: Family<Action, Counter>,
    /// Joins that took over a member still present (a reconnect within the grace period).
    pub resumes: Counter,
    /// Members removed when their grace period ended.
    pub swept: Counter,
    /// Presence frames refused, by error code.
    pub refused: Family<Code, Counter>,
}

impl PresenceMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "presence_members",
            "Presence members (their grace periods included)",
            self.members.clone(),
        );
        registry.register(
            "presence_events",
            "Presence diffs announced, by action",
            self.events.clone(),
        );
        registry.register(
            "presence_resumes",
            "Presence joins that resumed a member within its grace period (nothing announced)",
            self.resumes.clone(),
        );
        registry.register(
            "presence_swept",
            "Presence members removed when their grace period ended",
            self.swept.clone(),
        );
        registry.register(
            "presence_refused",
            "Presence frames refused, by error code",
            self.refused.clone(),
        );
    }

    pub fn event(&self, action: &'static str) {
        self.events.get_or_create(&Action { action }).inc();
    }

    pub fn refuse(&self, code: &'static str) {
        self.refused.get_or_create(&Code { code }).inc();
    }
}
