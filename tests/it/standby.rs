//! Warm and hot standby (`STANDBY`), in process on the memory cloud: the
//! upkeep keeps exactly one standby ready in another AZ; a failover promotes
//! it (start, or nothing at all) instead of launching; a crash at any
//! mutating call, redelivered, ends with one appliance holding the floating
//! IP and at most one standby. The same through the real binary against
//! moto is `standby_binary`.

use crate::common;

use common::memory_world::*;
use common::{VPN_CIDR, sample};
use ec2_failover::cloud::faults::{Call, Fault, FaultyCloud};
use ec2_failover::cloud::memory::{ImageSpec, InstanceSpec, MemoryCloud, WorldView};
use ec2_failover::cloud::provenance::{Role, token};
use ec2_failover::cloud::{InstanceState, RouteTarget, TAG_INCIDENT, TAG_REPLACES, TAG_STANDBY};
use ec2_failover::{Outcome, Report, Settings, StepStatus};
use serde_json::{Value, json};

fn standby_action() -> Value {
    json!({"action": "standby", "reason": "test"})
}

fn standby_world(mode: &str) -> (MemWorld, Settings) {
    let w = seed_world();
    let s = seed_settings(&w, &[("STANDBY", mode)]);
    (w, s)
}

/// Standbys of the seed appliance that are not terminated.
fn standbys(view: &WorldView, w: &MemWorld) -> Vec<(String, InstanceState, String)> {
    view.named("sophos")
        .into_iter()
        .filter(|i| i.vpc_id == w.vpc && i.tag(TAG_STANDBY).is_some())
        .filter(|i| i.tag(TAG_REPLACES).is_none())
        .filter(|i| i.state != InstanceState::Terminated)
        .map(|i| (i.id.clone(), i.state, i.availability_zone.clone()))
        .collect()
}

/// The mutating calls, in order.
fn mutations(calls: &[Call]) -> Vec<(&'static str, String)> {
    calls
        .iter()
        .filter(|c| c.mutating && !c.failed)
        .map(|c| (c.operation, c.target.clone()))
        .collect()
}

/// The operations of the mutating calls, in order.
fn ops(calls: &[Call]) -> Vec<&'static str> {
    mutations(calls).into_iter().map(|(op, _)| op).collect()
}

/// The mutating calls made before the floating IP moved, but the stop of
/// the failed instance, which goes beside the move.
fn before_the_move(calls: &[Call]) -> Vec<&'static str> {
    ops(calls)
        .into_iter()
        .take_while(|op| *op != "AssociateAddress")
        .filter(|op| *op != "StopInstances")
        .collect()
}

async fn run(cloud: &FaultyCloud<MemoryCloud>, s: &Settings, payload: &Value) -> Report {
    invoke(&single(cloud.clone(), s.clone()), payload, "req-1")
        .await
        .unwrap_or_else(|e| panic!("{payload}: {e}"))
}

/// The standby action on a fresh world: one standby in 1c, in `wanted` state.
async fn ensured(mode: &str, wanted: InstanceState) -> (MemWorld, Settings, String) {
    let (w, s) = standby_world(mode);
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &standby_action()).await;
    assert_eq!(r.outcome, Outcome::StandbyKept, "{r:#?}");
    let [(id, state, az)] = standbys(&w.view(), &w)
        .try_into()
        .unwrap_or_else(|v: Vec<_>| panic!("one standby, got {v:?}: {r:#?}"));
    assert_eq!((state, az.as_str()), (wanted, "ap-northeast-1c"), "{r:#?}");
    let standby = w.view().instance(&id).cloned().expect("the standby");
    assert_eq!(standby.image_id.as_deref(), Some(w.new_ami.as_str()));
    assert_eq!(standby.tag(TAG_STANDBY), Some(mode));
    assert_eq!(
        standby.security_group_ids,
        std::slice::from_ref(&w.security_group)
    );
    // A second upkeep finds it ready and changes nothing.
    let again = FaultyCloud::new(w.cloud.clone());
    run(&again, &s, &standby_action()).await;
    assert_eq!(mutations(&again.calls()), [], "{:?}", again.calls());
    (w, s, id)
}

/// One appliance holds the floating IP and the route, it is `id`, it runs,
/// and at most one standby is left, in another AZ.
fn assert_moved_to(w: &MemWorld, id: &str) {
    let view = w.view();
    assert_eq!(view.address_owner(&w.floating_ip), Some(id));
    let vpn = view.route(&w.route_table, VPN_CIDR).expect("the VPN route");
    assert_eq!(vpn.target, RouteTarget::Instance(id.to_owned()));
    let new = view.instance(id).expect("the new appliance");
    assert_eq!(new.state, InstanceState::Running);
    assert!(!new.source_dest_check);
    assert_eq!(new.tag(TAG_REPLACES), Some(w.sophos.as_str()));
    let old = view.instance(&w.sophos).expect("the failed instance");
    assert_eq!(old.state, InstanceState::Stopped);
    let left = standbys(&view, w);
    assert!(left.len() <= 1, "at most one standby: {left:?}");
    assert!(
        left.iter().all(|(_, _, az)| *az != new.availability_zone),
        "{left:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn hot_the_alarm_moves_the_network_to_the_running_standby_without_a_launch_or_start() {
    let (w, s, standby) = ensured("hot", InstanceState::Running).await;
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &sample("sns-alarm.json")).await;
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.new_instance.as_deref(), Some(standby.as_str()));
    assert_eq!(status(&r, "promote_standby"), Some(StepStatus::Done));
    assert!(
        r.reason
            .contains(&format!("standby {standby} took its place")),
        "{}",
        r.reason
    );
    let before = before_the_move(&cloud.calls());
    // The standby's source/dest check was turned off by its upkeep, ahead.
    assert_eq!(before, ["CreateTags"], "{:?}", cloud.calls());
    assert_moved_to(&w, &standby);
    // A new standby was launched after the move, in another AZ than 1c.
    let after = ops(&cloud.calls());
    assert_eq!(
        after.iter().filter(|op| **op == "RunInstances").count(),
        1,
        "{after:?}"
    );
    let [(_, _, az)] = standbys(&w.view(), &w).try_into().expect("a new standby");
    assert_eq!(az, "ap-northeast-1a");
}

#[tokio::test(start_paused = true)]
async fn hot_a_failback_promotes_the_standby_waiting_in_the_home_az() {
    let (w, mut s, standby) = ensured("hot", InstanceState::Running).await;
    s.appliance.alarm_name = Some("sophos-health".into());
    set_alarm_state(&w, "sophos-health", "OK");
    s.failover.home_az = Some("ap-northeast-1c".into());
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &json!({"action": "failback"})).await;
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.new_instance.as_deref(), Some(standby.as_str()));
    assert_eq!(status(&r, "promote_standby"), Some(StepStatus::Done));
    assert_eq!(
        before_the_move(&cloud.calls()),
        ["CreateTags"],
        "{:?}",
        cloud.calls()
    );
    assert_moved_to(&w, &standby);
}

#[tokio::test(start_paused = true)]
async fn warm_the_alarm_starts_the_stopped_standby_and_launches_nothing_before_the_move() {
    let (w, s, standby) = ensured("warm", InstanceState::Stopped).await;
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &sample("sns-alarm.json")).await;
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let before = before_the_move(&cloud.calls());
    assert_eq!(
        before,
        ["StartInstances", "CreateTags"],
        "{:?}",
        cloud.calls()
    );
    assert_moved_to(&w, &standby);
    let promoted = w
        .view()
        .instance(&standby)
        .cloned()
        .expect("the promoted standby");
    assert!(promoted.tag(TAG_INCIDENT).is_some());
}

/// Right after StartInstances EC2 may still describe the standby `stopped`:
/// the failover waits for the start to show instead of taking the read for a
/// failed start and launching a cold replacement beside the standby that is
/// starting (two appliances).
#[tokio::test(start_paused = true)]
async fn warm_a_standby_still_read_stopped_after_its_start_is_waited_for_not_replaced() {
    let (w, s, standby) = ensured("warm", InstanceState::Stopped).await;
    w.cloud.set_stale_start_looks(3);
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &sample("sns-alarm.json")).await;
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let before = before_the_move(&cloud.calls());
    assert_eq!(
        before,
        ["StartInstances", "CreateTags"],
        "no cold launch: {:?}",
        cloud.calls()
    );
    assert_moved_to(&w, &standby);
    assert_eq!(r.new_instance.as_deref(), Some(standby.as_str()));
}

/// Issue 21 item 2 on the memory fake: a warm standby launched hours ago is
/// promoted, and the failed appliance takes 3 minutes to stop. The
/// failover's fence, and a redelivery's, leave the stop to finish (it was
/// asked seconds ago, whatever the standby's age); it is never forced.
#[tokio::test(start_paused = true)]
async fn warm_a_standby_launched_hours_ago_does_not_cut_the_old_appliances_stop_short() {
    let (w, s) = standby_world("warm");
    let standby = w.cloud.add_instance(
        InstanceSpec::new(&w.subnet_c, "sophos")
            .state(InstanceState::Stopped)
            .launched(chrono::Utc::now() - chrono::Duration::hours(6))
            .tag(TAG_STANDBY, "warm")
            .groups(&[&w.security_group])
            .key("ops")
            .profile(PROFILE)
            .image(&w.new_ami)
            .client_token(&token(Role::Standby, &w.sophos, "standby-hours-ago")),
    );
    let three_minutes = std::time::Duration::from_secs(180);
    w.cloud.set_stop_takes(three_minutes);
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &sample("sns-alarm.json")).await;
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.new_instance.as_deref(), Some(standby.as_str()), "{r:#?}");
    let old = || w.view().instance(&w.sophos).map(|i| i.state);
    assert_eq!(
        old(),
        Some(InstanceState::Stopping),
        "forced at once: {r:#?}"
    );
    let fence = r
        .steps
        .iter()
        .find(|x| x.step == format!("fence {}", w.sophos));
    let fence = fence.unwrap_or_else(|| panic!("a fence step: {r:#?}"));
    assert!(fence.detail.contains("its stop request"), "{fence:?}");

    w.cloud
        .pass_time(three_minutes + std::time::Duration::from_secs(1));
    let again = run(&cloud, &s, &sample("sns-alarm.json")).await;
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
    assert_eq!(old(), Some(InstanceState::Stopped));
    // A forced stop would be a second StopInstances of it.
    let calls = cloud.calls();
    let stops = calls
        .iter()
        .filter(|c| c.operation == "StopInstances" && c.target == w.sophos);
    assert_eq!(stops.count(), 1, "one plain stop, never forced: {calls:?}");
}

/// For every mutating call of a clean hot or warm failover (the upkeep after
/// it included) and both ways of dying there: the run that dies, then a
/// redelivery, then a third. One appliance holds the floating IP and the
/// route, at most one standby is left, and the third delivery changes nothing.
async fn crash_anywhere(mode: &str, wanted: InstanceState) {
    let (w, s, _) = ensured(mode, wanted).await;
    let clean = FaultyCloud::new(w.cloud.clone());
    run(&clean, &s, &sample("sns-alarm.json")).await;
    let ops = mutations(&clean.calls());
    assert!(ops.len() >= 5, "{ops:?}");
    for after_effect in [false, true] {
        for k in 1..=ops.len() {
            let case = format!(
                "{mode} k={k} ({:?}) after_effect={after_effect}",
                ops[k - 1]
            );
            let (w, s, standby) = ensured(mode, wanted).await;
            let dying =
                FaultyCloud::new(w.cloud.clone()).with(Fault::DieAtMutation { k, after_effect });
            // A crash in the upkeep after the move is the next run's to mend.
            let _ = invoke(
                &single(dying.clone(), s.clone()),
                &sample("sns-alarm.json"),
                "first",
            )
            .await;
            let retry = FaultyCloud::new(w.cloud.clone());
            let r = invoke(
                &single(retry.clone(), s.clone()),
                &sample("sns-alarm.json"),
                "retry",
            )
            .await
            .unwrap_or_else(|e| panic!("{case}: the retry fails: {e}"));
            assert!(
                matches!(r.outcome, Outcome::FailedOver | Outcome::AlreadyFailedOver),
                "{case}: {r:#?}"
            );
            assert_moved_to(&w, &standby);
            let third = FaultyCloud::new(w.cloud.clone());
            let r = run(&third, &s, &sample("sns-alarm.json")).await;
            assert_eq!(r.outcome, Outcome::AlreadyFailedOver, "{case}: {r:#?}");
            // Only the new standby is settled, once it runs: stopped (warm),
            // its source/dest check turned off ahead of its promotion.
            let next: Vec<String> = standbys(&w.view(), &w).into_iter().map(|s| s.0).collect();
            let changed = mutations(&third.calls());
            assert!(
                changed.iter().all(|(op, target)| next.contains(target)
                    && (*op == "ModifyInstanceAttribute"
                        || (mode == "warm" && *op == "StopInstances"))),
                "{case}: {changed:?}"
            );
            assert_moved_to(&w, &standby);
            let left = standbys(&w.view(), &w);
            assert_eq!(left.len(), 1, "{case}: the next standby: {left:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn hot_a_failover_dying_at_any_mutating_call_ends_on_the_standby_with_one_new_standby() {
    crash_anywhere("hot", InstanceState::Running).await;
}

#[tokio::test(start_paused = true)]
async fn warm_a_failover_dying_at_any_mutating_call_ends_on_the_standby_with_one_new_standby() {
    crash_anywhere("warm", InstanceState::Stopped).await;
}

fn status(r: &Report, step: &str) -> Option<StepStatus> {
    r.step(step).map(|s| s.status)
}

#[tokio::test(start_paused = true)]
async fn a_standby_ec2_will_not_start_falls_back_to_a_cold_launch_and_says_so() {
    let (w, s, standby) = ensured("warm", InstanceState::Stopped).await;
    let cloud = failing(&w, "StartInstances", "", "InsufficientInstanceCapacity");
    let r = run(&cloud, &s, &sample("sns-alarm.json")).await;
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let promote: Vec<StepStatus> = r
        .steps
        .iter()
        .filter(|x| x.step == "promote_standby")
        .map(|x| x.status)
        .collect();
    assert_eq!(promote, [StepStatus::Failed, StepStatus::Skipped], "{r:#?}");
    assert_eq!(status(&r, "launch_replacement"), Some(StepStatus::Done));
    let new = r.new_instance.clone().expect("a launched replacement");
    assert_ne!(new, standby);
    assert_moved_to(&w, &new);
    // The standby it could not start is still a standby, in the new appliance's
    // AZ now, so it is superseded by one launched elsewhere once that runs.
    let view = w.view();
    let kept = view.instance(&standby).expect("the standby");
    assert!(kept.tag(TAG_REPLACES).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_standby_in_the_failed_instances_az_is_not_promoted() {
    let (w, s, standby) = ensured("hot", InstanceState::Running).await;
    // The appliance moves to 1c by a cold failover: the standby there is no use.
    let cold = seed_settings(&w, &[("STANDBY", "cold")]);
    let cloud = FaultyCloud::new(w.cloud.clone());
    run(
        &cloud,
        &cold,
        &json!({"action": "failover", "reason": "maintenance"}),
    )
    .await;
    let view = w.view();
    let appliance = view
        .address_owner(&w.floating_ip)
        .expect("an appliance")
        .to_owned();
    assert_ne!(appliance, standby);
    // The hot upkeep launches a standby in 1a and retires the one in 1c at
    // once: an outage of 1c would take both.
    let upkeep = FaultyCloud::new(w.cloud.clone());
    let r = run(&upkeep, &s, &standby_action()).await;
    let done = ops(&upkeep.calls());
    assert_eq!(
        done,
        [
            "RunInstances",
            "TerminateInstances",
            "ModifyInstanceAttribute"
        ],
        "{r:#?}"
    );
    let [(_, state, az)] = standbys(&w.view(), &w).try_into().expect("one standby");
    assert_eq!(
        (state, az.as_str()),
        (InstanceState::Running, "ap-northeast-1a")
    );
    assert_eq!(
        w.view().instance(&standby).map(|i| i.state),
        Some(InstanceState::Terminated)
    );
}

#[tokio::test(start_paused = true)]
async fn a_newer_ami_supersedes_the_standby_launch_first_then_terminate() {
    let (w, s, old) = ensured("warm", InstanceState::Stopped).await;
    let newer = w.cloud.add_image(
        ImageSpec::new("sophos_newer")
            .tag("Name", "sophos")
            .of_instance(&w.sophos)
            .created(days_ago(0)),
    );
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &standby_action()).await;
    let done = ops(&cloud.calls());
    assert_eq!(
        done,
        [
            "RunInstances",
            "StopInstances",
            "ModifyInstanceAttribute",
            "TerminateInstances"
        ],
        "{r:#?}"
    );
    let [(id, state, _)] = standbys(&w.view(), &w).try_into().expect("one standby");
    assert_eq!(state, InstanceState::Stopped);
    assert_eq!(
        w.view().instance(&id).and_then(|i| i.image_id.clone()),
        Some(newer)
    );
    assert_eq!(
        w.view().instance(&old).map(|i| i.state),
        Some(InstanceState::Terminated)
    );
}

#[tokio::test(start_paused = true)]
async fn cold_retires_standbys_left_from_a_warmer_mode_and_the_schedules_leave_them_be() {
    let (w, _, standby) = ensured("hot", InstanceState::Running).await;
    let cold = seed_settings(&w, &[("STANDBY", "cold")]);
    let reconcile = FaultyCloud::new(w.cloud.clone());
    run(&reconcile, &cold, &json!({"action": "reconcile"})).await;
    assert_eq!(mutations(&reconcile.calls()), []);
    let cloud = FaultyCloud::new(w.cloud.clone());
    run(&cloud, &cold, &standby_action()).await;
    let done = ops(&cloud.calls());
    assert_eq!(done, ["TerminateInstances"]);
    assert_eq!(standbys(&w.view(), &w), []);
    assert_eq!(
        w.view().instance(&standby).map(|i| i.state),
        Some(InstanceState::Terminated)
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_plans_the_promotion_and_changes_nothing() {
    let (w, s, standby) = ensured("warm", InstanceState::Stopped).await;
    let before = w.view();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &json!({"action": "plan"})).await;
    assert_eq!(r.outcome, Outcome::Planned);
    assert_eq!(mutations(&cloud.calls()), []);
    assert_eq!(w.view(), before);
    let promote = r.step("promote_standby").expect("the promotion");
    assert_eq!(promote.status, StepStatus::Planned);
    assert!(
        promote
            .detail
            .contains(&format!("StartInstances {standby}")),
        "{}",
        promote.detail
    );
}

#[tokio::test(start_paused = true)]
async fn preflight_names_the_standby_a_failover_would_promote_or_warns_it_would_launch_cold() {
    let (w, s) = standby_world("warm");
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &json!({"action": "preflight"})).await;
    let item = r.step("preflight standby").expect("a standby item");
    assert_eq!(item.status, StepStatus::Warn, "{item:?}");
    assert!(item.detail.contains("launch cold"), "{}", item.detail);
    let (w, s, standby) = ensured("warm", InstanceState::Stopped).await;
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = run(&cloud, &s, &json!({"action": "preflight"})).await;
    let item = r.step("preflight standby").expect("a standby item");
    assert_eq!(item.status, StepStatus::Ok, "{item:?}");
    assert!(
        item.detail.contains(&format!("StartInstances {standby}")),
        "{}",
        item.detail
    );
    assert_eq!(mutations(&cloud.calls()), []);
}
