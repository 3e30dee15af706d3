//! Assess: which instance failed and where this incident stands (fresh, or
//! a replacement to resume or leave alone), judged from the world alone.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cloud::{Instance, TAG_INCIDENT};
use crate::config::Settings;
use crate::error::FailoverError;
use crate::lookup::World;

/// Where this incident stands, judged from the world alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Situation {
    /// Nothing was done yet: replace `failed`.
    Fresh { failed: Instance },
    /// A replacement already exists; finish its steps instead of launching again.
    Continue {
        replacement: Box<Instance>,
        /// The instance it replaced, when it still exists (stopped or not).
        failed: Option<Instance>,
        failed_id: Option<String>,
        why: ContinueReason,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ContinueReason {
    /// Launched by this very incident (redelivery, retry, crash).
    SameIncident,
    /// Launched by another incident less than the cooldown ago.
    Cooldown { incident: String, age: Duration },
}

impl Situation {
    /// The instance this incident replaces, when it still exists.
    pub fn failed(&self) -> Option<&Instance> {
        match self {
            Situation::Fresh { failed } => Some(failed),
            Situation::Continue { failed, .. } => failed.as_ref(),
        }
    }

    /// The instance this incident replaces, when known.
    pub fn failed_id(&self) -> Option<String> {
        match self {
            Situation::Fresh { failed } => Some(failed.id.clone()),
            Situation::Continue { failed_id, .. } => failed_id.clone(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Situation::Fresh { failed } => format!(
                "{} ({}, {}) is the failed instance; a replacement will be launched",
                failed.id,
                failed.state.as_str(),
                failed.availability_zone
            ),
            Situation::Continue {
                replacement,
                failed_id,
                why,
                ..
            } => {
                let replaces = failed_id.as_deref().unwrap_or("an unknown instance");
                match why {
                    ContinueReason::SameIncident => format!(
                        "replacement {} for {replaces} was already launched by this incident; resuming",
                        replacement.id
                    ),
                    ContinueReason::Cooldown { incident, age } => format!(
                        "replacement {} for {replaces} was launched {} min ago by incident {incident}, within the cooldown; not replacing it again",
                        replacement.id,
                        age.as_secs() / 60
                    ),
                }
            }
        }
    }
}

/// Age from the first launch: an operator's restart does not make a
/// weeks-old replacement look young.
fn age(instance: &Instance, now: DateTime<Utc>) -> Option<Duration> {
    instance.age(now)
}

/// Decides what this incident has to do; with `cooldown`, a young
/// replacement of another incident is not replaced again.
pub fn assess(
    world: &World,
    settings: &Settings,
    (incident, cooldown): (&str, bool),
    now: DateTime<Utc>,
) -> Result<Situation, FailoverError> {
    let continue_with = |replacement: &Instance, why: ContinueReason| {
        // What it replaces, as its ClientToken says (a tag may be rewritten
        // since): the instance a resumed failover goes on to stop.
        let failed_id = replacement.launched_as().map(|(_, of)| of.to_owned());
        Situation::Continue {
            replacement: Box::new(replacement.clone()),
            failed: failed_id
                .as_deref()
                .and_then(|id| world.instance(id))
                .cloned(),
            failed_id,
            why,
        }
    };

    // 1. This incident already launched a replacement: resume it.
    if let Some(r) = world
        .instances
        .iter()
        // One that EC2 terminated on launch is not resumed: the next attempt
        // follows. A tag alone does not make an instance the incident's own:
        // the function must have launched it (its ClientToken says so).
        .filter(|i| i.tag(TAG_INCIDENT) == Some(incident) && !i.state.is_gone())
        .filter(|i| i.launched_as().is_some())
        .max_by_key(|i| i.launch_time)
    {
        return Ok(continue_with(r, ContinueReason::SameIncident));
    }

    // 2. A young replacement from another incident is up: do not replace it again.
    if let Some((r, a)) = world
        .instances
        .iter()
        .filter(|_| cooldown)
        // Only the function's own launch: a young instance anyone tagged
        // `replaces` would otherwise get the floating IP and the routes.
        .filter(|i| i.state.is_live() && i.vouched_replaces().is_some())
        .filter_map(|i| Some((i, age(i, now)?)))
        .filter(|(_, a)| *a < settings.failover.cooldown)
        .min_by_key(|(_, a)| *a)
    {
        let why = ContinueReason::Cooldown {
            incident: r.tag(TAG_INCIDENT).unwrap_or("unknown").to_owned(),
            age: a,
        };
        return Ok(continue_with(r, why));
    }

    // 3. Find the failed instance: the one running, else the one still serving.
    Ok(Situation::Fresh {
        failed: failed_instance(world, settings)?.clone(),
    })
}

/// The one live instance of the appliance; with none or several, the one the
/// floating IP or a managed route points at.
pub fn failed_instance<'a>(
    world: &'a World,
    settings: &Settings,
) -> Result<&'a Instance, FailoverError> {
    let live: Vec<&Instance> = world
        .instances
        .iter()
        .filter(|i| i.state.is_live())
        .collect();
    let serving = world.serving(settings);
    let name = &settings.appliance.instance_name;
    match live.as_slice() {
        [one] => Ok(*one),
        [] => serving.ok_or_else(|| FailoverError::Missing {
            what: format!(
                "no running instance in {} is tagged Name={name} (INSTANCE_NAME), and neither the floating IP nor the routes point at one",
                world.vpc_id
            ),
        }),
        many => serving
            .filter(|s| many.iter().any(|m| m.id == s.id))
            .ok_or_else(|| {
                let ids: Vec<&str> = many.iter().map(|i| i.id.as_str()).collect();
                FailoverError::Ambiguous {
                    what: format!(
                        "{} running instances are tagged Name={name} ({}) and the floating IP and routes point at none of them",
                        ids.len(),
                        ids.join(", ")
                    ),
                }
            }),
    }
}

/// Replacements this tool launched within `window` before `now`: the flap
/// guard's memory, kept in AWS as the replacements' own tokens, tags and
/// launch times (a tag alone, which anyone may write, could hold every
/// failover back).
pub fn recent_failovers(world: &World, now: DateTime<Utc>, window: Duration) -> Vec<&Instance> {
    world
        .instances
        .iter()
        .filter(|i| i.vouched_replaces().is_some())
        .filter(|i| age(i, now).is_some_and(|a| a < window))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::provenance::{Role, token};
    use crate::cloud::{Address, InstanceState, Route, RouteTarget, TAG_REPLACES, Tag};
    use crate::test_fixtures::{instance, now, settings, world};

    #[test]
    fn the_single_running_instance_is_the_failed_one() {
        let w = world(vec![
            instance("i-old", InstanceState::Stopped, "ap-northeast-1c"),
            instance("i-live", InstanceState::Running, "ap-northeast-1a"),
        ]);
        match assess(&w, &settings(), ("alarm-1", true), now()).unwrap() {
            Situation::Fresh { failed } => assert_eq!(failed.id, "i-live"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn with_none_running_the_floating_ip_names_the_failed_instance() {
        let mut w = world(vec![
            instance("i-1", InstanceState::Stopped, "ap-northeast-1a"),
            instance("i-2", InstanceState::Stopping, "ap-northeast-1c"),
        ]);
        w.address = Some(Address {
            allocation_id: "eipalloc-1".into(),
            public_ip: "203.0.113.10".into(),
            instance_id: Some("i-2".into()),
            network_interface_id: None,
        });
        match assess(&w, &settings(), ("alarm-1", true), now()).unwrap() {
            Situation::Fresh { failed } => assert_eq!(failed.id, "i-2"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn with_none_running_a_route_names_the_failed_instance() {
        let mut w = world(vec![
            instance("i-1", InstanceState::Stopped, "ap-northeast-1a"),
            instance("i-2", InstanceState::Stopped, "ap-northeast-1c"),
        ]);
        w.route_tables[0].routes.push(Route {
            destination: "10.242.2.0/24".into(),
            target: RouteTarget::NetworkInterface("eni-i-1".into()),
            blackhole: false,
        });
        match assess(&w, &settings(), ("alarm-1", true), now()).unwrap() {
            Situation::Fresh { failed } => assert_eq!(failed.id, "i-1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nothing_to_fail_over_and_ambiguity_are_errors() {
        let w = world(vec![instance(
            "i-1",
            InstanceState::Stopped,
            "ap-northeast-1a",
        )]);
        let e = assess(&w, &settings(), ("alarm-1", true), now()).unwrap_err();
        assert!(matches!(e, FailoverError::Missing { .. }), "{e}");
        let w = world(vec![
            instance("i-1", InstanceState::Running, "ap-northeast-1a"),
            instance("i-2", InstanceState::Running, "ap-northeast-1c"),
        ]);
        let e = assess(&w, &settings(), ("alarm-1", true), now()).unwrap_err();
        assert!(matches!(e, FailoverError::Ambiguous { .. }), "{e}");
        assert!(
            e.to_string().contains("i-1") && e.to_string().contains("i-2"),
            "{e}"
        );
    }

    #[test]
    fn a_replacement_of_this_incident_is_resumed() {
        let mut r = instance("i-new", InstanceState::Pending, "ap-northeast-1c");
        r.tags.push(Tag::new(TAG_INCIDENT, "alarm-1"));
        r.tags.push(Tag::new(TAG_REPLACES, "i-old"));
        // The same tags on an instance the function did not launch: not resumed.
        let forged = world(vec![
            instance("i-old", InstanceState::Running, "ap-northeast-1a"),
            r.clone(),
        ]);
        let s = assess(&forged, &settings(), ("alarm-1", true), now());
        assert!(!matches!(s, Ok(Situation::Continue { .. })), "{s:?}");
        r.client_token = Some(token(Role::Replacement, "i-old", "alarm-1"));
        // Its tag rewritten since to name another instance: the token decides.
        r.tags.retain(|t| t.key != TAG_REPLACES);
        r.tags.push(Tag::new(TAG_REPLACES, "i-victim"));
        let w = world(vec![
            instance("i-old", InstanceState::Running, "ap-northeast-1a"),
            instance("i-victim", InstanceState::Running, "ap-northeast-1c"),
            r,
        ]);
        match assess(&w, &settings(), ("alarm-1", true), now()).unwrap() {
            Situation::Continue {
                replacement,
                failed,
                why,
                ..
            } => {
                assert_eq!(replacement.id, "i-new");
                assert_eq!(failed.map(|f| f.id).as_deref(), Some("i-old"));
                assert_eq!(why, ContinueReason::SameIncident);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_young_replacement_is_not_replaced_but_an_old_one_is() {
        let mut r = instance("i-new", InstanceState::Running, "ap-northeast-1c");
        r.tags.push(Tag::new(TAG_INCIDENT, "alarm-0"));
        r.tags.push(Tag::new(TAG_REPLACES, "i-old"));
        r.launch_time = Some(now() - chrono::Duration::minutes(5));
        r.first_launch = Some(now() - chrono::Duration::minutes(5));
        // Tagged so by anyone, it is no replacement: it does not take the network.
        let forged = world(vec![
            instance("i-old", InstanceState::Stopped, "ap-northeast-1a"),
            r.clone(),
        ]);
        let s = assess(&forged, &settings(), ("alarm-2", true), now()).unwrap();
        assert!(matches!(&s, Situation::Fresh { .. }), "{s:?}");
        r.client_token = Some(token(Role::Replacement, "i-old", "alarm-0"));
        let w = world(vec![
            instance("i-old", InstanceState::Stopped, "ap-northeast-1a"),
            r.clone(),
        ]);
        let s = assess(&w, &settings(), ("alarm-2", true), now()).unwrap();
        assert!(
            matches!(&s, Situation::Continue { why: ContinueReason::Cooldown { age, .. }, .. } if age.as_secs() == 300),
            "{s:?}"
        );
        assert!(s.describe().contains("within the cooldown"));

        r.launch_time = Some(now() - chrono::Duration::minutes(16));

        r.first_launch = Some(now() - chrono::Duration::minutes(16));
        let w = world(vec![
            instance("i-old", InstanceState::Stopped, "ap-northeast-1a"),
            r,
        ]);
        match assess(&w, &settings(), ("alarm-2", true), now()).unwrap() {
            Situation::Fresh { failed } => assert_eq!(failed.id, "i-new"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn recent_failovers_count_only_replacements_inside_the_window() {
        let mut young = instance("i-young", InstanceState::Stopped, "ap-northeast-1c");
        young.tags.push(Tag::new(TAG_REPLACES, "i-x"));
        let mut forged = young.clone();
        forged.id = "i-forged".into();
        young.client_token = Some(token(Role::Replacement, "i-x", "alarm-1"));
        young.launch_time = Some(now() - chrono::Duration::minutes(20));
        young.first_launch = Some(now() - chrono::Duration::minutes(20));
        let mut old = young.clone();
        old.id = "i-old".into();
        old.launch_time = Some(now() - chrono::Duration::minutes(90));
        old.first_launch = Some(now() - chrono::Duration::minutes(90));
        let original = instance("i-orig", InstanceState::Stopped, "ap-northeast-1a");
        let w = world(vec![young, old, original, forged]);
        let recent: Vec<&str> = recent_failovers(&w, now(), Duration::from_secs(3600))
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(recent, ["i-young"]);
    }
}
