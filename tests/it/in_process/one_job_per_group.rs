//! One job at a time per group, through the lease table (`LOCK_TABLE`): a held
//! group makes an invocation wait, then fail `Retryable.GroupBusy` having
//! changed nothing; a holder that died blocks its group only until its lease
//! expires; jobs of one group delivered together never interleave their changes.
//! Each "process" here is a fleet of its own over the one world and lease table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common;

use chrono::{TimeDelta, Utc};
use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::faults::{Call, Fault, FaultyCloud};
use ec2_failover::cloud::lease::Lease;
use ec2_failover::cloud::memory::{LeaseEvent, MemoryCloud, MemoryLeases};
use ec2_failover::lease::Locks;
use ec2_failover::{Fleet, Outcome, Settings};
use serde_json::json;

use super::worlds::*;

/// A function process: its own fleet over the world, recording its calls,
/// sharing the deployment's lease table.
fn process(
    cloud: FaultyCloud<MemoryCloud>,
    settings: &Settings,
    leases: &MemoryLeases,
    wait: Duration,
) -> Fleet<FaultyCloud<MemoryCloud>> {
    single(cloud, settings.clone()).with_locks(Locks::new(Arc::new(leases.clone()), Some(wait)))
}

fn held_by(request: &str, until: chrono::DateTime<Utc>) -> Lease {
    Lease {
        group: "sophos".into(),
        holder: format!("{request}#dead"),
        incident: "alarm-earlier".into(),
        until,
    }
}

#[tokio::test]
async fn a_held_group_answers_group_busy_and_changes_nothing() {
    let (w, settings) = alarm_world();
    let leases = MemoryLeases::default();
    leases.plant(held_by("req-other", Utc::now() + TimeDelta::minutes(10)));
    let before = w.view();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = process(cloud.clone(), &settings, &leases, Duration::from_secs(2));

    let started = Instant::now();
    let e = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.error_type(), "Retryable.GroupBusy", "{e}");
    assert!(
        e.to_string().contains("req-other") && e.to_string().contains("alarm-earlier"),
        "names the holder and its incident: {e}"
    );
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(5)).contains(&took),
        "{took:?}"
    );
    assert_eq!(cloud.calls(), Vec::<Call>::new(), "not even a look");
    assert_eq!(w.view(), before);

    // A plan is a look: it never waits for the lease.
    let started = Instant::now();
    let plan = invoke(&fleet, &json!({"action": "plan"}), "req-2")
        .await
        .unwrap();
    assert_eq!(plan.outcome, Outcome::Planned, "{plan:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a plan does not wait"
    );
}

#[tokio::test]
async fn a_holder_that_died_blocks_its_group_until_its_lease_expires_then_the_redelivery_converges()
{
    let (w, settings) = alarm_world();
    let leases = MemoryLeases::default();
    // The first delivery died at its third change (the floating IP's move),
    // holding the lease: Lambda ended it, the lease lasts until its expiry.
    let dying = FaultyCloud::new(w.cloud.clone()).with(Fault::DieAtMutation {
        k: 3,
        after_effect: false,
    });
    let first = single(dying, settings.clone());
    assert!(
        invoke(&first, &sample("sns-alarm.json"), "req-1")
            .await
            .is_err()
    );
    let expiry = Utc::now() + TimeDelta::seconds(2);
    leases.plant(held_by("req-1", expiry));

    let redelivery = process(
        FaultyCloud::new(w.cloud.clone()),
        &settings,
        &leases,
        Duration::from_secs(10),
    );
    let r = invoke(&redelivery, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    check_failover(&w, &w.view(), &w.view());
    let history = leases.history();
    let [LeaseEvent::Taken { at, .. }, LeaseEvent::Released { .. }] = history.as_slice() else {
        panic!("taken over once, given back: {history:?}");
    };
    assert!(
        *at >= expiry,
        "taken over only after the dead holder's expiry"
    );
    assert_eq!(leases.row("sophos"), None);
}

/// The window from a process's first change to its last, if it changed anything.
fn changes(calls: &[Call]) -> Option<(Instant, Instant)> {
    let mut at = calls.iter().filter(|c| c.mutating).map(|c| c.at);
    let first = at.next()?;
    Some((first, at.next_back().unwrap_or(first)))
}

#[tokio::test]
async fn an_alarm_a_manual_failover_and_an_upkeep_of_one_group_never_interleave() {
    let (w, mut settings) = alarm_world();
    settings.failover.standby = ec2_failover::config::Standby::Warm;
    let leases = MemoryLeases::default();
    let clouds: Vec<_> = (0..3).map(|_| FaultyCloud::new(w.cloud.clone())).collect();
    let fleets: Vec<_> = clouds
        .iter()
        .map(|c| process(c.clone(), &settings, &leases, Duration::from_secs(60)))
        .collect();
    let events = [
        sample("sns-alarm.json"),
        json!({"action": "failover", "reason": "drill"}),
        json!({"action": "standby"}),
    ];
    let (alarm, manual, upkeep) = tokio::join!(
        invoke(&fleets[0], &events[0], "req-alarm"),
        invoke(&fleets[1], &events[1], "req-manual"),
        invoke(&fleets[2], &events[2], "req-upkeep"),
    );
    for r in [&alarm, &manual, &upkeep] {
        assert!(r.is_ok(), "{r:#?}");
    }
    let windows: Vec<_> = clouds.iter().filter_map(|c| changes(&c.calls())).collect();
    assert!(!windows.is_empty());
    for (i, a) in windows.iter().enumerate() {
        for b in &windows[i + 1..] {
            assert!(a.1 < b.0 || b.1 < a.0, "two jobs changed the group at once");
        }
    }
    let history = leases.history();
    assert_eq!(
        history.len(),
        6,
        "three leases, each taken and given back: {history:?}"
    );
    for pair in history.chunks(2) {
        let [
            LeaseEvent::Taken { lease: t, .. },
            LeaseEvent::Released { lease: r, .. },
        ] = pair
        else {
            panic!("a lease was taken while another was held: {history:?}");
        };
        assert_eq!(t.holder, r.holder);
    }
    // One appliance serves: the floating IP's holder is the only running
    // `sophos` of the VPC that is not the standby.
    let view = w.view();
    let holder = view
        .address_owner(&w.floating_ip)
        .expect("the floating IP is on someone");
    let running: Vec<_> = view
        .named("sophos")
        .into_iter()
        .filter(|i| i.vpc_id == w.vpc && i.state == ec2_failover::cloud::InstanceState::Running)
        .filter(|i| i.tag(ec2_failover::cloud::TAG_STANDBY).is_none())
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(running, vec![holder], "{:#?}", [&alarm, &manual, &upkeep]);
}
