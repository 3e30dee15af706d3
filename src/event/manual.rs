//! Manual (and scheduled) invokes: `{"action": "failover" | "plan" | "snapshot" |
//! "sync-checker-ranges" | "reconcile" | "preflight" | "standby", "reason": "..."}`.

use serde_json::Value;

use super::{EventError, Trigger, kind_of};

const EXPECTED: &str = "{\"action\": \"failover\"|\"plan\"|\"snapshot\"|\"sync-checker-ranges\"|\"reconcile\"|\"preflight\"|\"standby\", \"reason\": \"...\"}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualAction {
    Failover,
    /// A failover dry run: report the calls, change nothing.
    Plan,
    Snapshot,
    SyncCheckerRanges,
    /// Follow the alarm's state (fail over while it is `ALARM`), then fence:
    /// what the reconcile schedule sends, for every group.
    Reconcile,
    /// Prove a failover would work, changing nothing (every group).
    Preflight,
    /// Keep the standby (`STANDBY=warm|hot`) ready: launched from the newest
    /// AMI in another AZ, in its mode's state (every group).
    Standby,
}

impl ManualAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failover => "failover",
            Self::Plan => "plan",
            Self::Snapshot => "snapshot",
            Self::SyncCheckerRanges => "sync-checker-ranges",
            Self::Reconcile => "reconcile",
            Self::Preflight => "preflight",
            Self::Standby => "standby",
        }
    }
}

pub(super) fn parse(event: &Value) -> Result<Trigger, EventError> {
    let action = &event["action"];
    let action = match action.as_str() {
        Some("failover") => ManualAction::Failover,
        Some("plan") => ManualAction::Plan,
        Some("snapshot") => ManualAction::Snapshot,
        Some("sync-checker-ranges") => ManualAction::SyncCheckerRanges,
        Some("reconcile") => ManualAction::Reconcile,
        Some("preflight") => ManualAction::Preflight,
        Some("standby") => ManualAction::Standby,
        Some(other) => {
            return Err(EventError::new(
                format!("action {other:?} is unknown"),
                EXPECTED,
            ));
        }
        None => {
            return Err(EventError::new(
                format!("action is {}, not a string", kind_of(action)),
                EXPECTED,
            ));
        }
    };
    let reason = match event.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(EventError::new(
                format!("reason is {}, not a string", kind_of(other)),
                EXPECTED,
            ));
        }
    };
    Ok(Trigger::Manual { action, reason })
}
