//! Level-triggered follow-through (`{"action": "reconcile"}`) and fencing:
//! in process on the memory cloud (every scenario of issue 13, fast), then
//! through the real binary against moto, which serves CloudWatch alarms.

mod common;

use chrono::{DateTime, Utc};
use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::faults::{Fault, FaultyCloud};
use ec2_failover::cloud::{Alarm, InstanceState};
use ec2_failover::{FailoverError, Outcome, Report, StepStatus};
use serde_json::{Value, json};

const ALARM: &str = "sophos-health";
const ALARM_ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:sophos-health";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The alarm of `events/sns-alarm.json` in `state` since its StateChangeTime
/// (reported, as moto does, without StateTransitionedTimestamp).
fn sophos_alarm(state: &str) -> Alarm {
    Alarm {
        name: ALARM.into(),
        arn: ALARM_ARN.into(),
        state: state.into(),
        reason: Some("Threshold Crossed: 1 datapoint [0.0] was less than 1.0".into()),
        transitioned_at: None,
        updated_at: Some(at("2026-11-21T09:00:00Z")),
        health_check_id: None,
    }
}

fn reconcile() -> Value {
    json!({"action": "reconcile"})
}

fn steps<'a>(r: &'a Report, name: &str) -> Vec<&'a ec2_failover::report::StepRecord> {
    r.steps
        .iter()
        .filter(|s| s.step.starts_with(name))
        .collect()
}

/// The seed world watched by `ALARM_NAME`, with RunInstances refused
/// (InsufficientInstanceCapacity) `refusals` times.
fn world(
    refusals: usize,
) -> (
    MemWorld,
    FaultyCloud<ec2_failover::cloud::memory::MemoryCloud>,
) {
    let w = seed_world();
    let cloud = FaultyCloud::new(w.cloud.clone()).with(Fault::FailOperation {
        operation: "RunInstances",
        target: String::new(),
        code: "InsufficientInstanceCapacity".into(),
        times: Some(refusals),
    });
    (w, cloud)
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_finishes_what_three_failed_deliveries_could_not_and_then_holds() {
    let (w, cloud) = world(3);
    w.cloud.set_alarm(sophos_alarm("ALARM"));
    let fleet = single(cloud.clone(), seed_settings(&w, &[("ALARM_NAME", ALARM)]));
    let event = sample("sns-alarm.json");
    for delivery in 1..=3 {
        let e = invoke(&fleet, &event, &format!("req-{delivery}"))
            .await
            .unwrap_err();
        assert!(e.retryable(), "delivery {delivery}: {e}");
    }
    assert_eq!(
        w.view().address_owner(&w.floating_ip),
        Some(w.sophos.as_str())
    );

    let r = invoke(&fleet, &reconcile(), "tick-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let replacement = assert_failed_over_once(&w.view(), &w);
    let alarm_step = steps(&r, "alarm");
    assert!(alarm_step[0].detail.contains("is ALARM since"), "{r:#?}");

    // The same incident as the event's: a second reconcile, and a late
    // delivery of the event, find it complete.
    let before = w.view();
    let again = invoke(&fleet, &reconcile(), "tick-2").await.unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
    assert_eq!(again.incident, r.incident);
    let late = invoke(&fleet, &event, "req-late").await.unwrap();
    assert_eq!(late.outcome, Outcome::AlreadyFailedOver, "{late:#?}");
    assert_eq!(
        late.incident, r.incident,
        "one incident, however it is seen"
    );
    assert_eq!(w.view(), before, "nothing changed");
    assert_eq!(assert_failed_over_once(&w.view(), &w), replacement);

    // Back to OK: nothing to do.
    w.cloud.set_alarm(sophos_alarm("OK"));
    let ok = invoke(&fleet, &reconcile(), "tick-3").await.unwrap();
    assert_eq!(ok.outcome, Outcome::Ignored, "{ok:#?}");
    assert!(ok.reason.contains("is OK"), "{}", ok.reason);
    assert_eq!(w.view(), before);
}

#[tokio::test(start_paused = true)]
async fn a_replaced_instance_started_again_is_stopped_by_the_next_reconcile() {
    let (w, cloud) = world(0);
    w.cloud.set_alarm(sophos_alarm("ALARM"));
    let fleet = single(cloud, seed_settings(&w, &[("ALARM_NAME", ALARM)]));
    invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    w.cloud.set_alarm(sophos_alarm("OK"));
    // Behind the function's back: the old appliance runs again.
    w.cloud.restart(&w.sophos, Utc::now());
    let r = invoke(&fleet, &reconcile(), "tick-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::Fenced, "{r:#?}");
    let fence = steps(&r, "fence");
    assert_eq!(fence[0].step, format!("fence {}", w.sophos));
    assert_eq!(fence[0].status, StepStatus::Done);
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Stopped)
    );
    let quiet = invoke(&fleet, &reconcile(), "tick-2").await.unwrap();
    assert_eq!(quiet.outcome, Outcome::Ignored, "{quiet:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_instance_still_stopping_is_reported_not_yet_forced() {
    let (w, cloud) = world(0);
    w.cloud.stick_when_stopped(&w.sophos);
    let fleet = single(cloud, seed_settings(&w, &[("ALARM_NAME", ALARM)]));
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    // Every failover ends with the fence: the failed instance is still
    // stopping, which is reported, not yet forced.
    let fence = steps(&r, "fence");
    assert_eq!(fence[0].status, StepStatus::Skipped, "{r:#?}");
    assert!(
        fence[0].detail.contains("forced if still stopping"),
        "{r:#?}"
    );
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Stopping)
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_reconcile_plans_the_failover_and_changes_nothing() {
    let (w, cloud) = world(0);
    w.cloud.set_alarm(sophos_alarm("ALARM"));
    let settings = seed_settings(&w, &[("ALARM_NAME", ALARM), ("DRY_RUN", "true")]);
    let fleet = single(cloud.clone(), settings);
    let before = w.view();
    let r = invoke(&fleet, &reconcile(), "tick-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::Planned, "{r:#?}");
    assert!(
        steps(&r, "launch_replacement")[0].status == StepStatus::Planned,
        "{r:#?}"
    );
    assert_eq!(w.view(), before);
    assert!(
        cloud.calls().iter().all(|c| !c.mutating),
        "{:?}",
        cloud.calls()
    );
}

#[tokio::test(start_paused = true)]
async fn without_an_alarm_to_look_at_a_reconcile_says_what_to_configure() {
    let (w, cloud) = world(0);
    let fleet = single(cloud, seed_settings(&w, &[]));
    let r = invoke(&fleet, &reconcile(), "tick-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::Ignored);
    assert!(r.reason.contains("ALARM_NAME"), "{}", r.reason);
    let fleet = single(
        FaultyCloud::new(w.cloud.clone()),
        seed_settings(&w, &[("ALARM_NAME", "nope")]),
    );
    let r = invoke(&fleet, &reconcile(), "tick-2").await.unwrap();
    assert!(r.reason.contains("no alarm is named nope"), "{}", r.reason);
    let failing = FaultyCloud::new(w.cloud.clone()).with(Fault::FailOperation {
        operation: "DescribeAlarms",
        target: String::new(),
        code: "AccessDenied".into(),
        times: None,
    });
    let fleet = single(failing, seed_settings(&w, &[("ALARM_NAME", ALARM)]));
    let e = invoke(&fleet, &reconcile(), "tick-3").await.unwrap_err();
    assert!(
        matches!(e, FailoverError::Aws { .. }) && e.to_string().contains("alarm"),
        "{e}"
    );
}
