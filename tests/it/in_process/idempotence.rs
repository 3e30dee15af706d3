//! Idempotence, dry runs and gates: redeliveries launch nothing more, a plan or
//! dry run changes nothing, the flap guard, the cooldown and Route 53's
//! confirmation refuse before anything changes.

use crate::common;

use common::memory_world::*;
use common::{VPN_CIDR, sample};
use ec2_failover::cloud::faults::FaultyCloud;
use ec2_failover::{FailoverError, Outcome, StepStatus};

use super::worlds::*;

#[tokio::test(start_paused = true)]
async fn ten_deliveries_of_one_alarm_launch_one_replacement() {
    let w = seed_world();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = single(cloud.clone(), seed_settings(&w, &[]));
    let event = sample("sns-alarm.json");
    let mut outcomes = Vec::new();
    for i in 0..10 {
        let r = invoke(&fleet, &event, &format!("req-{i}")).await.unwrap();
        outcomes.push(r.outcome);
    }
    assert_eq!(outcomes[0], Outcome::FailedOver);
    assert!(
        outcomes[1..]
            .iter()
            .all(|o| *o == Outcome::AlreadyFailedOver),
        "{outcomes:?}"
    );
    assert_failed_over_once(&w.view(), &w);
    let launches = cloud
        .calls()
        .iter()
        .filter(|c| c.operation == "RunInstances")
        .count();
    assert_eq!(
        launches, 1,
        "later deliveries find the replacement by its tag"
    );
}

#[tokio::test(start_paused = true)]
async fn a_plan_or_dry_run_makes_no_mutating_call_and_plans_what_a_failover_then_does() {
    let w = seed_world();
    // Something for every job to want: no checker rules yet.
    w.cloud.set_checker_ranges(&checker_ranges());
    let before = w.view();
    let cloud = FaultyCloud::new(w.cloud.clone());

    let plan = invoke(
        &single(cloud.clone(), seed_settings(&w, &[])),
        &sample("manual-plan.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(plan.outcome, Outcome::Planned);

    let dry = single(
        cloud.clone(),
        seed_settings(
            &w,
            &[("DRY_RUN", "true"), ("CHECKER_SECURITY_GROUP", "sophos")],
        ),
    );
    for (payload, step) in [
        (sample("sns-alarm.json"), "launch_replacement"),
        (sample("manual-failover.json"), "launch_replacement"),
        (scheduled_at(SLOT), "create_image"),
        (
            sample("manual-sync-checker-ranges.json"),
            "authorize_ranges",
        ),
        (sample("ip-space-changed.json"), "authorize_ranges"),
    ] {
        let r = invoke(&dry, &payload, "req-dry").await.unwrap();
        assert_eq!(r.outcome, Outcome::Planned, "{r:#?}");
        assert_eq!(status(&r, step), Some(StepStatus::Planned), "{r:#?}");
    }
    assert!(mutations(&cloud.calls()).is_empty(), "{:?}", cloud.calls());
    assert_eq!(w.view(), before, "nothing changed");

    // The planned steps are exactly the steps a real failover then carries out.
    let mut planned: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Planned)
        .map(|s| s.step.clone())
        .collect();
    planned.sort();
    let done = invoke(
        &single(cloud.clone(), seed_settings(&w, &[])),
        &sample("manual-failover.json"),
        "req-2",
    )
    .await
    .unwrap();
    assert_eq!(done.outcome, Outcome::FailedOver);
    let mut made: Vec<String> = done
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Done && s.step != "wait_for_replacement")
        .filter(|s| !["discover", "assess", "confirm", "flap_guard"].contains(&s.step.as_str()))
        .map(|s| s.step.clone())
        .collect();
    made.sort();
    assert_eq!(planned, made, "{done:#?}");
    assert_eq!(
        planned,
        [
            "floating_ip".to_owned(),
            "launch_replacement".to_owned(),
            "mark_moved".to_owned(),
            format!("route {} {VPN_CIDR}", w.route_table),
            "source_dest_check".to_owned(),
            "stop_failed_instance".to_owned(),
        ]
    );
    assert_failed_over_once(&w.view(), &w);
}

#[tokio::test(start_paused = true)]
async fn the_flap_guard_refuses_after_max_failovers_and_changes_nothing() {
    let w = seed_world();
    let settings =
        |max: &str| seed_settings(&w, &[("COOLDOWN_MINUTES", "0"), ("MAX_FAILOVERS", max)]);
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = single(cloud.clone(), settings("2"));
    let first = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(first.outcome, Outcome::FailedOver);
    assert_eq!(status(&first, "flap_guard"), Some(StepStatus::Done));
    let second = invoke(&fleet, &sample("manual-failover.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(second.outcome, Outcome::FailedOver, "{second:#?}");
    assert_eq!(
        second.old_instance, first.new_instance,
        "the replacement failed over"
    );
    let before = w.view();
    let calls_before = cloud.calls().len();

    let e = invoke(&fleet, &sample("manual-failover.json"), "req-3")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            FailoverError::FlapGuard {
                count: 2,
                max: 2,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.error_type(), "Permanent.FlapGuard");
    assert!(!e.retryable());
    assert!(mutations(&cloud.calls()[calls_before..]).is_empty());
    assert_eq!(w.view(), before, "a refused failover changes nothing");

    // The guard, not the world, refused: a wider limit lets the same request through.
    let relaxed = single(cloud.clone(), settings("3"));
    let third = invoke(&relaxed, &sample("manual-failover.json"), "req-3")
        .await
        .unwrap();
    assert_eq!(third.outcome, Outcome::FailedOver);
}

#[tokio::test(start_paused = true)]
async fn a_young_replacement_is_not_replaced_again_within_the_cooldown() {
    let w = seed_world();
    let fleet = single(w.cloud.clone(), seed_settings(&w, &[]));
    let first = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(first.outcome, Outcome::FailedOver);
    let after_first = w.view();
    // Another incident minutes later (COOLDOWN_MINUTES=15): no second launch.
    let r = invoke(&fleet, &sample("manual-failover.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::AlreadyFailedOver, "{r:#?}");
    assert_eq!(r.new_instance, first.new_instance);
    assert_eq!(
        status(&r, "launch_replacement"),
        Some(StepStatus::AlreadyDone)
    );
    assert_eq!(w.view(), after_first);
}

#[tokio::test(start_paused = true)]
async fn an_alarm_route53_no_longer_confirms_is_ignored() {
    let w = seed_world();
    w.cloud.add_health_check(HEALTH_CHECK, Some(443));
    w.cloud.set_health(HEALTH_CHECK, 6, 8);
    let before = w.view();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = single(
        cloud.clone(),
        seed_settings(&w, &[("HEALTH_CHECK_ID", HEALTH_CHECK)]),
    );
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Ignored, "{r:#?}");
    assert_eq!(status(&r, "confirm"), Some(StepStatus::Done));
    assert!(mutations(&cloud.calls()).is_empty());
    assert_eq!(w.view(), before);

    // Most checkers failing: the same alarm fails over.
    w.cloud.set_health(HEALTH_CHECK, 3, 8);
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_failed_over_once(&w.view(), &w);
}

/// A stop EC2 will never carry out (stop protection: `OperationNotPermitted`;
/// a Spot or instance-store instance: `UnsupportedOperation`) is a warning
/// that says what to do, never a failure: the appliance has moved, and a
/// failure would fail every redelivery and every later run too.
#[tokio::test(start_paused = true)]
async fn a_stop_ec2_will_never_carry_out_warns_and_fails_nothing() {
    for code in ["OperationNotPermitted", "UnsupportedOperation"] {
        let w = seed_world();
        let cloud = failing(&w, "StopInstances", &w.sophos, code);
        let fleet = single(cloud, seed_settings(&w, &[]));
        let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::FailedOver, "{code}: {r:#?}");
        let stop = r
            .steps
            .iter()
            .find(|s| s.step == "stop_failed_instance")
            .expect("a stop step");
        assert_eq!(stop.status, StepStatus::Warn, "{code}: {stop:?}");
        assert!(
            stop.detail.contains("never carry out") && stop.detail.contains(&w.sophos),
            "{stop:?}"
        );
        let new = r.new_instance.clone().expect("a replacement");
        assert_eq!(w.view().address_owner(&w.floating_ip), Some(new.as_str()));
        // The redelivery, as Lambda sends it after an error, finds nothing to fail on.
        let again = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
            .await
            .unwrap();
        assert!(
            again.steps.iter().all(|s| s.status != StepStatus::Failed),
            "{code}: {again:#?}"
        );
    }
}
