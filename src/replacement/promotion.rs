//! The standby a failover promotes instead of launching, and why a standby
//! cannot stand in for the appliance: the failover promotes by it, preflight
//! reports what it would promote, and the standby's upkeep keeps only a
//! standby fit by the same rule.

use chrono::{DateTime, SecondsFormat, Utc};

use super::replacement_tags;
use crate::cloud::{Instance, InstanceState, TAG_PROMOTED_AT, Tag};
use crate::engine::{Change, Decision, PlannedStep, Step};
use crate::lookup::World;

/// Why `standby` cannot stand in for `appliance`; `None` when it can.
pub fn unfit(standby: &Instance, appliance: &Instance) -> Option<String> {
    let id = &standby.id;
    if standby.availability_zone == appliance.availability_zone {
        return Some(format!(
            "standby {id} is in {}, the appliance's own AZ",
            standby.availability_zone
        ));
    }
    if standby.secondary_interfaces.len() != appliance.secondary_interfaces.len() {
        return Some(format!(
            "standby {id} has {} network interface(s) besides the primary, the appliance {}",
            standby.secondary_interfaces.len(),
            appliance.secondary_interfaces.len()
        ));
    }
    match standby.state {
        InstanceState::Running | InstanceState::Pending | InstanceState::Stopped => None,
        other => Some(format!("standby {id} is {}", other.as_str())),
    }
}

/// The standby a failover of `failed` promotes, and the step that does it;
/// `Err` says why there is none (the failover then launches cold). A running
/// one is preferred (no start), then one on its way up, then a stopped one.
pub fn promotion(
    world: &World,
    failed: &Instance,
    incident: &str,
    now: DateTime<Utc>,
) -> Result<(PlannedStep, Instance), String> {
    let rank = |s: &Instance| match s.state {
        InstanceState::Running => 0,
        InstanceState::Pending => 1,
        _ => 2,
    };
    let live: Vec<&Instance> = world
        .standbys
        .iter()
        .filter(|s| !s.state.is_gone())
        .collect();
    let best = live
        .iter()
        .filter(|s| unfit(s, failed).is_none())
        .min_by_key(|s| (rank(s), std::cmp::Reverse(s.launch_time), s.id.clone()));
    let Some(standby) = best else {
        let why: Vec<String> = live.iter().filter_map(|s| unfit(s, failed)).collect();
        return Err(match why.is_empty() {
            true => "no standby exists".to_owned(),
            false => why.join("; "),
        });
    };
    let start = standby.state == InstanceState::Stopped;
    let mut tags = replacement_tags(incident, failed).to_vec();
    tags.push(Tag::new(
        TAG_PROMOTED_AT,
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
    ));
    let step = PlannedStep::new(
        Step::Promote,
        Decision::Make(Change::Promote {
            standby: standby.id.clone(),
            start,
            tags,
        }),
    );
    let mut promoted = (*standby).clone();
    if start {
        promoted.state = InstanceState::Pending;
    }
    Ok((step, promoted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{now, standby, with_standbys as seen};

    #[test]
    fn a_running_standby_outside_the_failed_az_is_promoted_with_tags_only() {
        let (w, failed) = seen(vec![
            standby(
                "i-stopped",
                InstanceState::Stopped,
                "ap-northeast-1c",
                "ami-new",
            ),
            standby(
                "i-running",
                InstanceState::Running,
                "ap-northeast-1c",
                "ami-old",
            ),
            standby(
                "i-beside",
                InstanceState::Running,
                "ap-northeast-1a",
                "ami-new",
            ),
        ]);
        let (step, promoted) = promotion(&w, &failed, "alarm-1", now()).unwrap();
        assert_eq!(promoted.id, "i-running");
        let Decision::Make(Change::Promote { start, tags, .. }) = &step.decision else {
            panic!("{step:?}")
        };
        assert!(!start);
        let keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "ec2-failover:incident",
                "ec2-failover:replaces",
                TAG_PROMOTED_AT
            ]
        );
        // Only a stopped one left: started first, and waited for as pending.
        let (w, failed) = seen(vec![standby(
            "i-stopped",
            InstanceState::Stopped,
            "ap-northeast-1c",
            "ami-new",
        )]);
        let (step, promoted) = promotion(&w, &failed, "alarm-1", now()).unwrap();
        assert!(matches!(
            step.decision,
            Decision::Make(Change::Promote { start: true, .. })
        ));
        assert_eq!(promoted.state, InstanceState::Pending);
    }

    #[test]
    fn no_fit_standby_says_why_and_the_failover_launches_cold() {
        let (w, failed) = seen(vec![]);
        assert_eq!(
            promotion(&w, &failed, "a", now()).unwrap_err(),
            "no standby exists"
        );
        let (w, failed) = seen(vec![
            standby(
                "i-beside",
                InstanceState::Running,
                "ap-northeast-1a",
                "ami-new",
            ),
            standby(
                "i-stopping",
                InstanceState::Stopping,
                "ap-northeast-1c",
                "ami-new",
            ),
        ]);
        let why = promotion(&w, &failed, "a", now()).unwrap_err();
        assert!(
            why.contains("the appliance's own AZ") && why.contains("stopping"),
            "{why}"
        );
    }
}
