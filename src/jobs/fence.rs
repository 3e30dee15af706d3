//! Fencing: an appliance that was replaced must not run again.
//!
//! A replaced instance that comes back (its AZ recovers and the instance runs
//! again, someone starts it, or its stop never took) is a second VPN gateway
//! or NAT with the same configuration as the live one. The fence looks at the
//! appliance's instances, follows the `ec2-failover:replaces` tags from each
//! live instance back to what it replaced (a tag only where the instance's
//! ClientToken says the function launched it for that very instance: anyone
//! may write a tag, see `cloud::provenance`), and stops every live ancestor: with
//! a plain stop first, and with `Force=true` once the instance has been
//! `stopping` for longer than [`FORCE_AFTER`] since its own stop request.
//!
//! It never stops the instance holding the floating IP, nor one a managed
//! route (`ROUTE_CIDRS` in the `ROUTE_TABLE_NAME` tables) points at: whatever
//! the tags say, that is the appliance the traffic reaches (a failover that
//! crashed before moving it, say), and stopping it would make an outage. And it
//! stops an instance only for a replacement that demonstrably took over (holds
//! the floating IP or a managed route): an appliance reached by DNS alone, or
//! a replacement not yet moved to, fences nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::cloud::{Cloud, Instance, InstanceState, RouteTarget, TAG_REPLACES};
use crate::config::Settings;
use crate::engine::{Change, Context, Decision, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup;
use crate::report::{StepLog, StepStatus};

/// How long a plain stop may take before it is forced: an orderly guest
/// shutdown takes a minute or two; EC2 itself forces after about ten.
pub const FORCE_AFTER: Duration = Duration::from_secs(5 * 60);

/// What the fence sees: the appliance's instances in its VPC, who holds the
/// floating IP, and what the managed routes point at (instance or ENI ids).
#[derive(Debug, Clone)]
pub struct Sight {
    pub instances: Vec<Instance>,
    pub holder: Option<String>,
    pub route_targets: Vec<String>,
}

impl Sight {
    /// Why `instance` carries the appliance's traffic, if it does.
    fn serving(&self, instance: &Instance) -> Option<&'static str> {
        if self.holder.as_deref() == Some(instance.id.as_str()) {
            Some("holds the floating IP")
        } else if self.route_targets.iter().any(|t| instance.owns_target(t)) {
            Some("is the target of a managed route")
        } else {
            None
        }
    }
}

/// Looks at the appliance's instances (in the VPC named by `VPC_NAME`) and
/// at the floating IP, in one round.
pub async fn look<C: Cloud>(cloud: &C, settings: &Settings) -> Result<Sight, FailoverError> {
    let name = &settings.appliance.instance_name;
    let vpc = lookup::vpc(cloud, &settings.appliance.vpc_name);
    let instances = async {
        cloud
            .instances_named(name)
            .await
            .map_err(FailoverError::during(
                Step::Fence,
                format!("instances tagged Name={name}"),
            ))
    };
    let holder = async {
        let Some(ip) = settings.failover.floating_ip else {
            return Ok::<_, FailoverError>(None);
        };
        let address = cloud.address(&ip.to_string()).await;
        let address = address.map_err(FailoverError::during(Step::Fence, ip.to_string()))?;
        Ok(address.and_then(|a| a.instance_id))
    };
    let (vpc, instances, holder, routes) =
        tokio::join!(vpc, instances, holder, route_targets(cloud, settings));
    Ok(Sight {
        instances: lookup::in_vpc(instances?, &vpc?),
        holder: holder?,
        route_targets: routes?,
    })
}

/// The instance and ENI targets of the `ROUTE_CIDRS` routes in the tables
/// tagged `ROUTE_TABLE_NAME` (no call without `ROUTE_CIDRS`).
async fn route_targets<C: Cloud>(
    cloud: &C,
    settings: &Settings,
) -> Result<Vec<String>, FailoverError> {
    let failover = &settings.failover;
    if failover.route_cidrs.is_empty() {
        return Ok(Vec::new());
    }
    let name = &failover.route_table_name;
    let tables = cloud
        .route_tables_named(name)
        .await
        .map_err(FailoverError::during(
            Step::Fence,
            format!("route tables tagged Name={name}"),
        ))?;
    let targets = tables.iter().flat_map(|t| {
        failover
            .route_cidrs
            .iter()
            .filter_map(|c| t.route_to(c))
            .filter_map(|r| match &r.target {
                RouteTarget::Instance(id) | RouteTarget::NetworkInterface(id) => Some(id.clone()),
                _ => None,
            })
    });
    Ok(targets.collect())
}

/// Decides, without calling AWS, which replaced instances to stop.
pub fn plan(sight: &Sight, now: DateTime<Utc>) -> Vec<PlannedStep> {
    let by_id: BTreeMap<&str, &Instance> =
        sight.instances.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut fenced: BTreeMap<&str, PlannedStep> = BTreeMap::new();
    for live in sight.instances.iter().filter(|i| i.state.is_live()) {
        // Only a replacement that demonstrably took over (it holds the
        // floating IP or a managed route) justifies stopping what it replaced.
        let took_over = sight.serving(live).is_some();
        for old in ancestors(live, &by_id) {
            if fenced.contains_key(old.id.as_str()) {
                continue;
            }
            let step = match took_over {
                true => fence_one(old, live, sight.serving(old), now),
                false => not_taken_over(old, live),
            };
            if let Some(step) = step {
                fenced.insert(old.id.as_str(), step);
            }
        }
    }
    for claim in sight.instances.iter().filter_map(unvouched) {
        fenced.entry(claim.0).or_insert(claim.1);
    }
    if fenced.is_empty() {
        return vec![PlannedStep::new(
            Step::Fence,
            Decision::AlreadyDone("no replaced instance is running".to_owned()),
        )];
    }
    fenced.into_values().collect()
}

/// What `live` replaced, and what that replaced, as far as the tags the
/// ClientTokens back and the look reach (bounded: a tag loop cannot run
/// forever).
fn ancestors<'a>(live: &'a Instance, by_id: &BTreeMap<&str, &'a Instance>) -> Vec<&'a Instance> {
    let mut found = Vec::new();
    let mut at = live;
    while let Some(old) = at.vouched_replaces().and_then(|id| by_id.get(id)) {
        if old.id == live.id || found.iter().any(|f: &&Instance| f.id == old.id) {
            break;
        }
        found.push(*old);
        at = old;
    }
    found
}

/// A `replaces` tag the instance's ClientToken does not back (anyone may
/// write a tag): what it names is not stopped for it, and the report says so.
fn unvouched(i: &Instance) -> Option<(&str, PlannedStep)> {
    let named = i.tag(TAG_REPLACES)?;
    if i.vouched_replaces().is_some() {
        return None;
    }
    let why = format!(
        "{} is tagged {TAG_REPLACES}={named}, but EC2's record of its launch (its ClientToken) does not say the function launched it to replace {named}: {named} is not stopped for it",
        i.id
    );
    Some((
        named,
        PlannedStep::on(Step::Fence, named.to_owned(), Decision::LeaveAlone(why)),
    ))
}

/// A live replaced instance whose replacement carries no traffic yet (a
/// failover that has not moved anything, or an appliance reached by DNS
/// alone): left running, and said so.
fn not_taken_over(old: &Instance, live: &Instance) -> Option<PlannedStep> {
    old.state.is_live().then(|| {
        PlannedStep::on(
            Step::Fence,
            old.id.clone(),
            Decision::LeaveAlone(format!(
                "{old} runs though {live} replaced it, but {live} holds neither the floating IP nor a managed route: nothing shows it took over, so {old} is left running",
                old = old.id,
                live = live.id
            )),
        )
    })
}

/// The step for one replaced instance, or `None` when it is down already.
fn fence_one(
    old: &Instance,
    live: &Instance,
    serving: Option<&str>,
    now: DateTime<Utc>,
) -> Option<PlannedStep> {
    let why = format!("{} replaced it", live.id);
    let decision = match (old.state, serving) {
        (InstanceState::Running | InstanceState::Stopping | InstanceState::Pending, Some(how)) => {
            Decision::LeaveAlone(format!(
                "{} {how}, so it carries the appliance's traffic, though {why}",
                old.id
            ))
        }
        _ => fence_by_state(old, live, &why, now)?,
    };
    Some(PlannedStep::on(Step::Fence, old.id.clone(), decision))
}

/// The fence of a replaced instance that carries no traffic, by its state.
fn fence_by_state(
    old: &Instance,
    live: &Instance,
    why: &str,
    now: DateTime<Utc>,
) -> Option<Decision> {
    let decision = match old.state {
        InstanceState::Running => Decision::Make(Change::Stop {
            instance: old.id.clone(),
            force: false,
        }),
        InstanceState::Stopping => fence_stopping(old, live, why, now),
        InstanceState::Pending => Decision::LeaveAlone(format!(
            "{} is starting ({why}); the next run stops it once it runs",
            old.id
        )),
        _ => return None,
    };
    Some(decision)
}

/// A plain stop that has had [`FORCE_AFTER`] is forced; a younger one is
/// left to finish, saying since when it is stopping.
fn fence_stopping(old: &Instance, live: &Instance, why: &str, now: DateTime<Utc>) -> Decision {
    let (since, from) = stopping_since(old, live);
    let stopping_for = since.map_or(Duration::ZERO, |t| (now - t).to_std().unwrap_or_default());
    if stopping_for >= FORCE_AFTER {
        return Decision::Make(Change::Stop {
            instance: old.id.clone(),
            force: true,
        });
    }
    let since = since.map_or("an unknown time".to_owned(), |t| {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    });
    Decision::LeaveAlone(format!(
        "{} is stopping since {since} ({from}; {why}); forced if still stopping {} min after that",
        old.id,
        FORCE_AFTER.as_secs() / 60
    ))
}

/// Since when `old` has been stopping, and what that time is.
///
/// Its own stop request, when EC2 says it (`StateTransitionReason`): a stop
/// asked for a minute ago gets its five minutes even when its replacement is
/// a standby launched hours before. Waiting never makes the outage worse: the
/// fence only gets here for an instance that carries no traffic, and a
/// `stopping` instance cannot run again before it has stopped, while a forced
/// stop skips the guest's shutdown (file systems not flushed) of an instance
/// that may be started again. Only when the time is unknown is it counted,
/// as before, from its replacement's launch or its own last start, whichever
/// is later.
fn stopping_since(old: &Instance, live: &Instance) -> (Option<DateTime<Utc>>, &'static str) {
    if let Some(asked) = old.stop_requested {
        return (Some(asked), "its stop request");
    }
    let since = [live.first_launch.or(live.launch_time), old.launch_time]
        .into_iter()
        .flatten()
        .max();
    (
        since,
        "EC2 gives no stop time: counted from its replacement's launch or its last start",
    )
}

/// Look, plan and carry out the fence, recording its steps in `log`.
pub async fn run<C: Cloud>(ctx: &Context<'_, C>, log: &mut StepLog) -> Result<(), FailoverError> {
    let t = Instant::now();
    let sight = match look(ctx.cloud(), ctx.settings).await {
        Ok(sight) => sight,
        Err(e) => {
            log.record(Step::Fence, StepStatus::Failed, e.to_string(), t);
            return Err(e);
        }
    };
    ctx.exec.all(&plan(&sight, ctx.now), log).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Tag;
    use crate::cloud::provenance::{Role, token};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// An instance launched `minutes` ago, replacing `replaces` when given.
    fn instance(id: &str, state: InstanceState, minutes: i64, replaces: Option<&str>) -> Instance {
        let launched = now() - chrono::Duration::minutes(minutes);
        let mut tags = vec![Tag::new("Name", "sophos")];
        tags.extend(replaces.map(|r| Tag::new(TAG_REPLACES, r)));
        Instance {
            id: id.into(),
            state,
            availability_zone: "ap-northeast-1a".into(),
            subnet_id: None,
            vpc_id: Some("vpc-1".into()),
            instance_type: "t3.small".into(),
            image_id: None,
            key_name: None,
            iam_instance_profile_arn: None,
            security_group_ids: Vec::new(),
            network_interface_ids: Vec::new(),
            private_ip: None,
            public_ip: None,
            source_dest_check: None,
            launch_time: Some(launched),
            first_launch: Some(launched),
            state_reason: None,
            stop_requested: None,
            tags,
            metadata_options: None,
            ebs_optimized: None,
            secondary_interfaces: Vec::new(),
            // The function's own launches say what they replaced.
            client_token: replaces.map(|r| token(Role::Replacement, r, id)),
        }
    }

    fn decisions(instances: Vec<Instance>, holder: &str) -> Vec<(Option<String>, Decision)> {
        let sight = Sight {
            instances,
            holder: Some(holder.to_owned()),
            route_targets: vec!["i-route".to_owned()],
        };
        plan(&sight, now())
            .into_iter()
            .map(|s| (s.subject, s.decision))
            .collect()
    }

    fn stop(id: &str, force: bool) -> Decision {
        Decision::Make(Change::Stop {
            instance: id.into(),
            force,
        })
    }

    use InstanceState::{Pending, Running, Stopped, Stopping, Terminated};

    #[test]
    fn a_replaces_tag_its_token_does_not_back_stops_nothing() {
        let victim = instance("i-victim", InstanceState::Running, 10, None);
        let mut by_hand = instance("i-app", InstanceState::Running, 600, Some("i-victim"));
        by_hand.client_token = None;
        let mut other = instance("i-app", InstanceState::Running, 600, Some("i-victim"));
        other.client_token = Some(token(Role::Replacement, "i-else", "alarm-1"));
        for serving in [by_hand, other] {
            let d = decisions(vec![serving, victim.clone()], "i-app");
            let [(Some(subject), Decision::LeaveAlone(why))] = d.as_slice() else {
                panic!("{d:?}")
            };
            assert_eq!(subject, "i-victim");
            assert!(why.contains("ClientToken"), "{why}");
        }
    }

    #[test]
    fn a_replaced_instance_that_runs_again_is_stopped() {
        let d = decisions(
            vec![
                instance("i-old", Running, 60 * 24, None),
                instance("i-new", Running, 60, Some("i-old")),
            ],
            "i-new",
        );
        assert_eq!(d, [(Some("i-old".into()), stop("i-old", false))]);
    }

    #[test]
    fn a_stop_that_does_not_take_is_forced_after_five_minutes() {
        let young = decisions(
            vec![
                instance("i-old", Stopping, 60 * 24, None),
                instance("i-new", Running, 2, Some("i-old")),
            ],
            "i-new",
        );
        assert!(
            matches!(&young[0].1, Decision::LeaveAlone(n) if n.contains("forced")),
            "{young:?}"
        );
        let old = decisions(
            vec![
                instance("i-old", Stopping, 60 * 24, None),
                instance("i-new", Running, 6, Some("i-old")),
            ],
            "i-new",
        );
        assert_eq!(old, [(Some("i-old".into()), stop("i-old", true))]);
        // Started again a minute ago by someone: the five minutes start then.
        let restarted = decisions(
            vec![
                instance("i-old", Stopping, 1, None),
                instance("i-new", Running, 60 * 24 * 30, Some("i-old")),
            ],
            "i-new",
        );
        assert!(
            matches!(&restarted[0].1, Decision::LeaveAlone(_)),
            "{restarted:?}"
        );
    }

    /// `instance` stopping since its stop request `minutes` ago, as EC2's
    /// StateTransitionReason says.
    fn asked_to_stop(mut old: Instance, minutes: i64) -> Instance {
        old.stop_requested = Some(now() - chrono::Duration::minutes(minutes));
        old
    }

    #[test]
    fn a_stop_gets_five_minutes_from_its_own_request_after_a_standby_promotion() {
        // The promoted standby was launched hours ago; the old appliance was
        // asked to stop a minute ago, by the failover that promoted it.
        let standby = || instance("i-standby", Running, 60 * 5, Some("i-old"));
        let old = || instance("i-old", Stopping, 60 * 24, None);
        let young = decisions(vec![asked_to_stop(old(), 1), standby()], "i-standby");
        assert!(
            matches!(&young[..], [(_, Decision::LeaveAlone(n))]
                if n.contains("stopping since 2026-11-21 08:59:00 UTC (its stop request")),
            "{young:?}"
        );
        let late = decisions(vec![asked_to_stop(old(), 6), standby()], "i-standby");
        assert_eq!(late, [(Some("i-old".into()), stop("i-old", true))]);
        // When EC2 gives no stop time, the old rule: hours since the launch.
        let unknown = decisions(vec![old(), standby()], "i-standby");
        assert_eq!(unknown, [(Some("i-old".into()), stop("i-old", true))]);
    }

    #[test]
    fn what_carries_the_traffic_is_never_stopped_and_nothing_without_a_live_replacement() {
        let d = decisions(
            vec![
                instance("i-old", Running, 60 * 24, None),
                instance("i-new", Running, 60, Some("i-old")),
            ],
            "i-old",
        );
        assert!(
            matches!(&d[0].1, Decision::LeaveAlone(w) if w.contains("floating IP")),
            "{d:?}"
        );
        let d = decisions(
            vec![
                instance("i-route", Running, 60 * 24, None),
                instance("i-new", Running, 60, Some("i-route")),
            ],
            "i-new",
        );
        assert!(
            matches!(&d[0].1, Decision::LeaveAlone(w) if w.contains("managed route")),
            "{d:?}"
        );
        for state in [Stopped, Terminated, Stopping] {
            let d = decisions(
                vec![
                    instance("i-old", Running, 60 * 24, None),
                    instance("i-new", state, 60, Some("i-old")),
                ],
                "i-old",
            );
            assert!(
                matches!(&d[..], [(None, Decision::AlreadyDone(_))]),
                "{state:?}: {d:?}"
            );
        }
    }

    #[test]
    fn a_replacement_that_carries_no_traffic_fences_nothing() {
        let d = decisions(
            vec![
                instance("i-old", Running, 60 * 24, None),
                instance("i-new", Running, 60, Some("i-old")),
            ],
            "i-elsewhere",
        );
        assert!(
            matches!(&d[..], [(Some(id), Decision::LeaveAlone(w))] if id == "i-old" && w.contains("took over")),
            "{d:?}"
        );
    }

    #[test]
    fn every_live_ancestor_is_fenced_and_a_tag_loop_ends() {
        let d = decisions(
            vec![
                instance("i-a", Running, 300, None),
                instance("i-b", Stopped, 200, Some("i-a")),
                instance("i-c", Pending, 1, Some("i-b")),
            ],
            "i-c",
        );
        assert_eq!(d, [(Some("i-a".into()), stop("i-a", false))]);
        let looped = decisions(
            vec![
                instance("i-a", Running, 300, Some("i-b")),
                instance("i-b", Running, 200, Some("i-a")),
            ],
            "i-b",
        );
        assert_eq!(looped.len(), 2, "{looped:?}");
    }
}
