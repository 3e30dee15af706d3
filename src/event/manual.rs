//! Manual (and scheduled) invokes: `{"action": "failover" | "plan" | "snapshot" |
//! "sync-checker-ranges" | "reconcile" | "preflight" | "standby", "reason": "..."}`,
//! `{"action": "failback" | "drill"}` (planned moves, while the alarm is OK),
//! and `{"action": "pause", "minutes": N, "reason": "..."}` / `{"action": "resume"}`.

use serde_json::Value;

use super::{EventError, Trigger, kind_of};

const EXPECTED: &str = "{\"action\": \"failover\"|\"plan\"|\"snapshot\"|\"sync-checker-ranges\"|\"reconcile\"|\"preflight\"|\"standby\"|\"failback\"|\"drill\"|\"resume\", \"reason\": \"...\"} or {\"action\": \"pause\", \"minutes\": N, \"reason\": \"...\"}";

/// The longest pause: a week. A pause forgotten for longer is a group
/// nobody protects.
pub const MAX_PAUSE_MINUTES: u32 = 7 * 24 * 60;

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
    /// Hands off the group for `minutes`: every job only reports what it
    /// would have done.
    Pause {
        minutes: u32,
    },
    /// Ends the group's pause now.
    Resume,
    /// Moves the appliance back to `HOME_AZ`, make-before-break, while its
    /// alarm is OK.
    Failback,
    /// A real failover to another AZ for practice, while the alarm is OK
    /// and no `DRILL_GUARDRAIL_ALARMS` alarm is in ALARM.
    Drill,
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
            Self::Pause { .. } => "pause",
            Self::Resume => "resume",
            Self::Failback => "failback",
            Self::Drill => "drill",
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
        Some("pause") => ManualAction::Pause {
            minutes: minutes(event)?,
        },
        Some("resume") => ManualAction::Resume,
        Some("failback") => ManualAction::Failback,
        Some("drill") => ManualAction::Drill,
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

/// A pause's `minutes`: a whole number from 1 to a week.
fn minutes(event: &Value) -> Result<u32, EventError> {
    let expected = format!(
        "{{\"action\": \"pause\", \"minutes\": 1 to {MAX_PAUSE_MINUTES}, \"reason\": \"...\"}}"
    );
    let given = &event["minutes"];
    match given.as_u64() {
        Some(m @ 1..) if m <= u64::from(MAX_PAUSE_MINUTES) => {
            Ok(u32::try_from(m).unwrap_or(MAX_PAUSE_MINUTES))
        }
        Some(m) => Err(EventError::new(
            format!("minutes is {m}, not 1 to {MAX_PAUSE_MINUTES}"),
            expected,
        )),
        None => Err(EventError::new(
            format!("minutes is {}, not a whole number", kind_of(given)),
            expected,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pause_needs_its_minutes_and_a_resume_nothing() {
        let pause = parse(&json!({"action": "pause", "minutes": 90, "reason": "patching"}));
        assert_eq!(
            pause,
            Ok(Trigger::Manual {
                action: ManualAction::Pause { minutes: 90 },
                reason: Some("patching".into())
            })
        );
        for bad in [
            json!(null),
            json!(0),
            json!(-5),
            json!(1.5),
            json!("60"),
            json!(20_000),
        ] {
            let e = parse(&json!({"action": "pause", "minutes": bad})).unwrap_err();
            assert!(e.problem.contains("minutes"), "{bad}: {e}");
        }
        for (name, action) in [
            ("failback", ManualAction::Failback),
            ("drill", ManualAction::Drill),
        ] {
            let parsed = parse(&json!({"action": name, "reason": "quiet hour"}));
            assert_eq!(
                parsed,
                Ok(Trigger::Manual {
                    action,
                    reason: Some("quiet hour".into())
                })
            );
            assert_eq!(action.as_str(), name);
        }
        assert!(matches!(
            parse(&json!({"action": "resume"})),
            Ok(Trigger::Manual {
                action: ManualAction::Resume,
                ..
            })
        ));
    }
}
