//! Planned moves in process: a fail-back brings the appliance home after a
//! failover, launch before stop; a drill is a real failover with its time
//! to recover. The gates that hold either back (the alarm not OK, already
//! home, no `HOME_AZ`, a drill's guardrail in ALARM or missing, a pause)
//! change nothing. The crash matrix of a fail-back is in `crash_matrix`.

use crate::common;

use common::VPN_CIDR;
use common::memory_world::*;
use ec2_failover::cloud::faults::FaultyCloud;
use ec2_failover::cloud::memory::MemoryCloud;
use ec2_failover::cloud::{InstanceState, RouteTarget, TAG_REPLACES};
use ec2_failover::report::PlannedMove;
use ec2_failover::{Fleet, Outcome, Settings, StepStatus};
use serde_json::{Value, json};

use super::worlds::*;

fn failback() -> Value {
    json!({"action": "failback", "reason": "the outage is over"})
}

fn drill() -> Value {
    json!({"action": "drill", "reason": "monthly practice"})
}

fn fleet(
    w: &MemWorld,
    s: &Settings,
) -> (Fleet<FaultyCloud<MemoryCloud>>, FaultyCloud<MemoryCloud>) {
    let cloud = FaultyCloud::new(w.cloud.clone());
    (single(cloud.clone(), s.clone()), cloud)
}

/// One appliance serves: `id`, running in `az`, holding the floating IP and
/// the VPN route.
fn assert_serves(w: &MemWorld, id: &str, az: &str) {
    let view = w.view();
    let serving = view.instance(id).expect("the serving instance");
    assert_eq!(
        (serving.state, serving.availability_zone.as_str()),
        (InstanceState::Running, az)
    );
    assert_eq!(view.address_owner(&w.floating_ip), Some(id));
    let vpn = view.route(&w.route_table, VPN_CIDR).expect("the VPN route");
    assert_eq!(vpn.target, RouteTarget::Instance(id.to_owned()));
    let live: Vec<&str> = view
        .named("sophos")
        .into_iter()
        .filter(|i| i.vpc_id == w.vpc && i.state == InstanceState::Running)
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(live, [id], "one appliance runs");
}

#[tokio::test(start_paused = true)]
async fn a_failover_then_a_failback_brings_the_appliance_home_launch_before_stop() {
    let (w, mut s) = away_from_home();
    s.failover.home_az = Some("ap-northeast-1a".into());
    let (fleet, cloud) = fleet(&w, &s);
    let out = json!({"action": "failover", "reason": "1a is impaired"});
    let out = invoke(&fleet, &out, "req-out").await.unwrap();
    assert_eq!(out.outcome, Outcome::FailedOver, "{out:#?}");
    let away = out.new_instance.clone().expect("the replacement");
    assert_serves(&w, &away, "ap-northeast-1c");

    let before = cloud.calls().len();
    let back = invoke(&fleet, &failback(), "req-back").await.unwrap();
    assert_eq!(back.outcome, Outcome::FailedOver, "{back:#?}");
    assert_eq!(back.planned, Some(PlannedMove::Failback));
    assert_eq!(back.old_instance.as_deref(), Some(away.as_str()));
    assert!(back.time_to_recover_s.is_some(), "{back:#?}");
    assert_eq!(status(&back, "alarm"), Some(StepStatus::Done));
    let home = back.new_instance.clone().expect("the new home instance");
    assert_serves(&w, &home, "ap-northeast-1a");
    let view = w.view();
    assert_eq!(
        view.instance(&home).unwrap().tag(TAG_REPLACES),
        Some(away.as_str())
    );
    for stopped in [&w.sophos, &away] {
        assert_eq!(
            view.instance(stopped).unwrap().state,
            InstanceState::Stopped
        );
    }
    let ops = mutations(&cloud.calls()[before..]);
    let at = |op| ops.iter().position(|o| *o == op).unwrap_or(usize::MAX);
    assert!(
        at("RunInstances") < at("StopInstances"),
        "make before break: {ops:?}"
    );

    // Tomorrow's FailbackWindow, and the reconcile, find it home: nothing to do.
    let before = cloud.calls().len();
    let again = invoke(&fleet, &failback(), "req-tomorrow").await.unwrap();
    assert_eq!(again.outcome, Outcome::Ignored, "{again:#?}");
    let tick = invoke(&fleet, &json!({"action": "reconcile"}), "rec-1")
        .await
        .unwrap();
    assert_eq!(tick.outcome, Outcome::Ignored, "{tick:#?}");
    assert_eq!(mutations(&cloud.calls()[before..]), Vec::<&str>::new());
    assert_serves(&w, &home, "ap-northeast-1a");
}

#[tokio::test(start_paused = true)]
async fn a_failback_stands_down_during_an_alarm_and_at_home_and_needs_a_home_az() {
    let (w, s) = away_from_home();
    let (fleet, cloud) = fleet(&w, &s);
    let before = w.view();
    set_alarm_state(&w, "sophos-health", "ALARM");
    let held = invoke(&fleet, &failback(), "req-1").await.unwrap();
    assert_eq!(held.outcome, Outcome::Ignored, "{held:#?}");
    assert_eq!(status(&held, "alarm"), Some(StepStatus::Skipped));

    set_alarm_state(&w, "sophos-health", "OK");
    let mut home = s.clone();
    home.failover.home_az = Some("ap-northeast-1a".into());
    let at_home = invoke(&single(cloud.clone(), home), &failback(), "req-2")
        .await
        .unwrap();
    assert_eq!(at_home.outcome, Outcome::Ignored, "{at_home:#?}");

    let mut unset = s.clone();
    unset.failover.home_az = None;
    let e = invoke(&single(cloud.clone(), unset), &failback(), "req-3")
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.ResourceMissing");
    assert!(e.to_string().contains("HOME_AZ"), "{e}");
    assert_eq!(mutations(&cloud.calls()), Vec::<&str>::new());
    assert_eq!(w.view(), before, "nothing changed");
}

#[tokio::test(start_paused = true)]
async fn a_drill_waits_for_its_guardrails_then_fails_over_and_says_how_long_it_took() {
    let (w, mut s) = away_from_home();
    s.failover.drill_guardrail_alarms = vec!["orders-5xx".into()];
    let (fleet, cloud) = fleet(&w, &s);
    let before = w.view();
    // A guardrail nobody can find guards nothing: no drill.
    let missing = invoke(&fleet, &drill(), "req-1").await.unwrap();
    assert_eq!(missing.outcome, Outcome::Ignored, "{missing:#?}");
    set_alarm_state(&w, "orders-5xx", "ALARM");
    let refused = invoke(&fleet, &drill(), "req-2").await.unwrap();
    assert_eq!(refused.outcome, Outcome::Ignored, "{refused:#?}");
    assert_eq!(status(&refused, "guardrails"), Some(StepStatus::Skipped));
    assert_eq!(mutations(&cloud.calls()), Vec::<&str>::new());
    assert_eq!(w.view(), before, "nothing changed");

    set_alarm_state(&w, "orders-5xx", "OK");
    let ran = invoke(&fleet, &drill(), "req-3").await.unwrap();
    assert_eq!(ran.outcome, Outcome::FailedOver, "{ran:#?}");
    assert_eq!(ran.planned, Some(PlannedMove::Drill));
    assert_eq!(status(&ran, "guardrails"), Some(StepStatus::Done));
    assert!(ran.time_to_recover_s.is_some(), "{ran:#?}");
    let new = ran.new_instance.expect("the drill's replacement");
    assert_serves(&w, &new, "ap-northeast-1c");
}

#[tokio::test(start_paused = true)]
async fn a_paused_group_runs_no_drill_and_a_completed_one_is_told_as_a_drill() {
    let (w, s) = away_from_home();
    let (function, out) = telling(&w, &s);
    let pause = json!({"action": "pause", "minutes": 30, "reason": "change freeze"});
    invoke(&function, &pause, "op-1").await.unwrap();
    let before = w.view();
    let held = invoke(&function, &drill(), "req-1").await.unwrap();
    assert_eq!(held.outcome, Outcome::Planned, "{held:#?}");
    assert_eq!(status(&held, "pause"), Some(StepStatus::Skipped));
    assert_eq!(w.view(), before, "a paused group is not drilled");

    invoke(&function, &json!({"action": "resume"}), "op-2")
        .await
        .unwrap();
    let ran = invoke(&function, &drill(), "req-2").await.unwrap();
    assert_eq!(ran.outcome, Outcome::FailedOver, "{ran:#?}");
    let mail = out.mail();
    let last = mail.last().expect("the drill is told");
    assert!(
        last.subject
            .starts_with("sophos: drill: failed over from ap-northeast-1a to ap-northeast-1c in "),
        "{:?}",
        last.subject
    );
    let events = out.events();
    assert_eq!(
        events.last().map(|e| e.detail_type.as_str()),
        Some("Failover Completed")
    );
}

/// A scheduled drill that a guardrail refuses would otherwise pass unseen:
/// it is told, once for that drill, and the appliance stays where it is.
#[tokio::test(start_paused = true)]
async fn a_drill_a_guardrail_refuses_is_told_once() {
    let (w, mut s) = away_from_home();
    s.failover.drill_guardrail_alarms = vec!["orders-5xx".into()];
    set_alarm_state(&w, "orders-5xx", "ALARM");
    let (function, out) = telling(&w, &s);
    let before = w.view();
    for _ in 0..2 {
        let refused = invoke(&function, &drill(), "req-1").await.unwrap();
        assert_eq!(refused.outcome, Outcome::Ignored, "{refused:#?}");
    }
    assert_eq!(w.view(), before, "nothing moved");
    let mail = out.mail();
    assert_eq!(mail.len(), 1, "told once: {mail:#?}");
    assert!(
        mail[0].subject.starts_with("sophos: drill not run: "),
        "{:?}",
        mail[0].subject
    );
    assert!(mail[0].body.contains("orders-5xx"), "{}", mail[0].body);
    let events = out.events();
    assert_eq!(
        events
            .iter()
            .map(|e| e.detail_type.as_str())
            .collect::<Vec<_>>(),
        ["Drill Not Run"]
    );
}
