//! An incident from start to end, whatever the alarm says now: a move that
//! did not complete is finished by the reconcile after the alarm turned OK; a
//! move a human undid is handed to that human, once, and never fought; the
//! AMI schedule's own reboot (`NO_REBOOT=false`) is not an outage.

use crate::common;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use common::memory_world::*;
use common::{VPN_CIDR, sample};
use ec2_failover::cloud::faults::{Fault, FaultyCloud};
use ec2_failover::cloud::memory::ImageSpec;
use ec2_failover::cloud::{
    Alarm, CREATED_BY, Cloud, InstanceState, RouteTarget, TAG_CREATED_BY, TAG_HANDED_OVER,
    TAG_MOVED_AT,
};
use ec2_failover::{Outcome, StepStatus};
use serde_json::json;

use super::worlds::*;

/// The world's alarm, now in `state` since `at`.
fn alarm(w: &MemWorld, state: &str, at: DateTime<Utc>) {
    w.cloud.set_alarm(Alarm {
        name: "sophos-health".into(),
        arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:sophos-health".into(),
        state: state.into(),
        reason: Some("Threshold Crossed".into()),
        transitioned_at: Some(at),
        updated_at: None,
        health_check_id: Some(HEALTH_CHECK.into()),
        actions: vec![],
    });
}

fn reconcile() -> serde_json::Value {
    json!({"action": "reconcile"})
}

fn vpn_route(w: &MemWorld) -> RouteTarget {
    w.view()
        .route(&w.route_table, VPN_CIDR)
        .expect("the VPN route")
        .target
        .clone()
}

/// A failover whose route move EC2 refused: the floating IP is on the
/// replacement, the VPN route still on the failed instance.
async fn half_moved() -> (MemWorld, ec2_failover::Settings, String) {
    let (w, settings) = alarm_world();
    let broken = FaultyCloud::new(w.cloud.clone()).with(Fault::FailOperation {
        operation: "ReplaceRoute",
        target: String::new(),
        code: "InternalError".into(),
        times: None,
    });
    let first = invoke(
        &single(broken, settings.clone()),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await;
    assert!(first.is_err(), "the route did not move: {first:?}");
    let [new] = <[String; 1]>::try_from(replacements(&w.view(), &w.vpc, "sophos", &w.sophos))
        .unwrap_or_else(|all| panic!("one replacement: {all:?}"));
    assert_eq!(w.view().address_owner(&w.floating_ip), Some(new.as_str()));
    assert_eq!(vpn_route(&w), RouteTarget::Instance(w.sophos.clone()));
    (w, settings, new)
}

#[tokio::test(start_paused = true)]
async fn a_move_that_did_not_complete_is_finished_by_the_reconcile_after_the_alarm_turned_ok() {
    let (w, settings, new) = half_moved().await;
    // The replacement answers on the floating IP: the health check, then the
    // alarm, see the appliance healthy, while VPN clients still route to the
    // stopped instance.
    alarm(&w, "OK", Utc::now());
    let fleet = single(w.cloud.clone(), settings.clone());
    let r = invoke(&fleet, &reconcile(), "req-2").await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.new_instance.as_deref(), Some(new.as_str()));
    assert_eq!(vpn_route(&w), RouteTarget::Instance(new.clone()));
    let view = w.view();
    check_failover(&w, &view, &view);
    let marked = w.cloud.peek_instance(&new).expect("the replacement");
    assert!(
        marked.tag(TAG_MOVED_AT).is_some(),
        "the move is marked complete"
    );

    // Closed: the next reconcile changes nothing.
    let cloud = FaultyCloud::new(w.cloud.clone());
    let again = invoke(&single(cloud.clone(), settings), &reconcile(), "req-3")
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::Ignored, "{again:#?}");
    assert!(mutations(&cloud.calls()).is_empty(), "{:?}", cloud.calls());
    assert_eq!(w.view(), view);
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_with_the_alarm_ok_and_no_open_incident_looks_and_changes_nothing() {
    let (w, settings) = alarm_world();
    alarm(&w, "OK", Utc::now());
    let before = w.view();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = invoke(&single(cloud.clone(), settings), &reconcile(), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Ignored, "{r:#?}");
    assert!(mutations(&cloud.calls()).is_empty(), "{:?}", cloud.calls());
    assert_eq!(w.view(), before);
}

/// After a complete failover, the operator starts the repaired original and
/// moves the floating IP back to it by hand, while the alarm is still ALARM.
async fn failed_back_by_hand() -> (MemWorld, ec2_failover::Settings, String) {
    let (w, settings) = alarm_world();
    // The transition the sample alarm events report.
    let at = format!("{}T09:00:00Z", common::sample_day());
    alarm(&w, "ALARM", at.parse().unwrap());
    let fleet = single(w.cloud.clone(), settings.clone());
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new = r.new_instance.expect("a replacement");
    w.cloud.restart(&w.sophos, Utc::now());
    let address = w
        .cloud
        .address(&w.floating_ip)
        .await
        .unwrap()
        .expect("the floating IP");
    w.cloud
        .associate_address(&address.allocation_id, &w.sophos)
        .await
        .unwrap();
    (w, settings, new)
}

#[tokio::test(start_paused = true)]
async fn a_floating_ip_moved_back_by_hand_hands_the_incident_over_once_and_is_never_fought() {
    let (w, settings, new) = failed_back_by_hand().await;
    let by_hand = w.view();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = single(cloud.clone(), settings);
    let r = invoke(&fleet, &reconcile(), "req-2").await.unwrap();
    assert_eq!(r.outcome, Outcome::HandedOver, "{r:#?}");
    let hand_over = r.step("hand_over").expect("a hand_over step");
    assert_eq!(hand_over.status, StepStatus::Done, "{r:#?}");
    // The report says what was moved where, for the operator's mail.
    assert!(
        r.reason.contains("moved by hand") && r.reason.contains(&w.floating_ip),
        "{}",
        r.reason
    );
    assert_eq!(
        mutations(&cloud.calls()),
        ["CreateTags"],
        "only the hand-over's mark"
    );
    let marked = w.cloud.peek_instance(&new).expect("the replacement");
    assert!(marked.tag(TAG_HANDED_OVER).is_some());
    let view = w.view();
    assert_eq!(view.address_owner(&w.floating_ip), Some(w.sophos.as_str()));
    let original = view.instance(&w.sophos).expect("the original");
    assert_eq!(original.state, InstanceState::Running, "never fenced");
    assert_eq!(
        view.instance(&new).map(|i| i.state),
        Some(InstanceState::Running)
    );

    // Told once: later reconciles of the same incident change nothing.
    for n in 3..6 {
        let calls_before = cloud.calls().len();
        let again = invoke(&fleet, &reconcile(), &format!("req-{n}"))
            .await
            .unwrap();
        assert_eq!(again.outcome, Outcome::Ignored, "{again:#?}");
        let later: Vec<_> = cloud.calls()[calls_before..].to_vec();
        assert!(mutations(&later).is_empty(), "{later:?}");
    }
    let after = w.view();
    assert_eq!(after.address_owner(&w.floating_ip), Some(w.sophos.as_str()));
    assert_eq!(
        after.route(&w.route_table, VPN_CIDR),
        by_hand.route(&w.route_table, VPN_CIDR)
    );
    assert_eq!(
        after.instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running)
    );
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_alarm_after_a_hand_move_does_not_move_anything_back() {
    let (w, settings, _new) = failed_back_by_hand().await;
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = single(cloud.clone(), settings);
    let r = invoke(&fleet, &sample("eventbridge-alarm.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::HandedOver, "{r:#?}");
    assert_eq!(
        w.view().address_owner(&w.floating_ip),
        Some(w.sophos.as_str())
    );
    let stops: Vec<_> = cloud
        .calls()
        .into_iter()
        .filter(|c| c.operation == "StopInstances")
        .collect();
    assert!(stops.is_empty(), "nothing is stopped: {stops:?}");
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An AMI of `instance` as the schedule's CreateImage leaves it, made at `at`
/// (EC2's `SourceInstanceId` and `CreationDate`).
fn schedule_image(
    w: &MemWorld,
    settings: &ec2_failover::Settings,
    instance: &str,
    at: DateTime<Utc>,
) {
    let spec = ImageSpec::new(&format!("sophos-{}", at.timestamp()))
        .of_instance(instance)
        .created(at)
        .tag("Name", &settings.appliance.ami_name)
        .tag(TAG_CREATED_BY, CREATED_BY);
    w.cloud.add_image(spec);
}

#[tokio::test(start_paused = true)]
async fn the_ami_schedules_own_reboot_is_not_failed_over_until_its_grace_has_passed() {
    let (w, mut settings) = alarm_world();
    settings.stamp.no_reboot = false;
    let fleet = single(w.cloud.clone(), settings.clone());
    let snap = invoke(&fleet, &sample("manual-snapshot.json"), "req-1")
        .await
        .unwrap();
    let image = snap.image_created.clone().expect("the schedule's AMI");
    // The appliance carries no mark: EC2's record of the image is the evidence.
    let original = w.cloud.peek_instance(&w.sophos).expect("the appliance");
    assert!(
        original.tag("ec2-failover:image-reboot").is_none(),
        "{original:?}"
    );

    // The reboot fails the health check: the alarm fires at once.
    alarm(&w, "ALARM", Utc::now());
    let r = invoke(&fleet, &reconcile(), "req-2").await.unwrap();
    assert_eq!(r.outcome, Outcome::Ignored, "{r:#?}");
    assert!(r.reason.contains(&image), "{r:#?}");
    assert!(replacements(&w.view(), &w.vpc, "sophos", &w.sophos).is_empty());

    // As if eleven minutes passed with the appliance still down: the alarm
    // began with an earlier AMI's reboot.
    let rebooted = Utc::now() - TimeDelta::minutes(11);
    schedule_image(&w, &settings, &w.sophos, rebooted);
    alarm(&w, "ALARM", rebooted + TimeDelta::minutes(1));
    let r = invoke(&fleet, &reconcile(), "req-3").await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
}

#[tokio::test(start_paused = true)]
async fn an_alarm_that_began_before_the_schedules_reboot_is_an_outage_of_its_own() {
    let (w, mut settings) = alarm_world();
    settings.stamp.no_reboot = false;
    alarm(&w, "ALARM", Utc::now() - TimeDelta::minutes(5));
    schedule_image(&w, &settings, &w.sophos, Utc::now());
    let fleet = single(w.cloud.clone(), settings);
    let r = invoke(&fleet, &reconcile(), "req-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
}

/// A tag saying the appliance was just rebooted for an AMI holds nothing
/// back: only EC2's record of an image made of it does. Nor does an AMI of
/// another instance made as the alarm began.
#[tokio::test(start_paused = true)]
async fn a_forged_reboot_mark_or_another_instances_image_does_not_hold_a_failover_back() {
    let (w, mut settings) = alarm_world();
    settings.stamp.no_reboot = false;
    let began = Utc::now();
    w.cloud.tag(
        &[&w.sophos],
        &[("ec2-failover:image-reboot", &rfc3339(began))],
    );
    schedule_image(&w, &settings, "i-0123456789abcdef0", began);
    alarm(&w, "ALARM", began);
    let fleet = single(w.cloud.clone(), settings);
    let r = invoke(&fleet, &reconcile(), "req-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
}

/// A young instance someone tagged as a replacement of the appliance is no
/// replacement: the alarm's failover launches its own, and the floating IP
/// and the route go there, never to the impostor.
#[tokio::test(start_paused = true)]
async fn a_young_instance_tagged_as_a_replacement_by_someone_else_gets_nothing() {
    let (w, settings) = failover_world();
    let impostor = w.cloud.add_instance(
        ec2_failover::cloud::memory::InstanceSpec::new(&w.subnet_c, "sophos")
            .tag(ec2_failover::cloud::TAG_REPLACES, &w.sophos)
            .tag(ec2_failover::cloud::TAG_INCIDENT, "alarm-earlier")
            .groups(&[&w.security_group])
            .image(&w.new_ami),
    );
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = invoke(&single(cloud, settings), &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new = r.new_instance.clone().expect("a replacement of its own");
    assert_ne!(new, impostor);
    let view = w.view();
    assert_eq!(view.address_owner(&w.floating_ip), Some(new.as_str()));
    let vpn = view.route(&w.route_table, VPN_CIDR).expect("the VPN route");
    assert_eq!(vpn.target, RouteTarget::Instance(new.clone()));
    assert_eq!(
        view.instance(&impostor).map(|i| i.state),
        Some(InstanceState::Running)
    );
}

/// A hand-over mark someone else wrote on a replacement whose move did not
/// complete keeps the function off the incident, as a person's would; but
/// the function never told of a hand-over, so it tells of this one, once.
#[tokio::test(start_paused = true)]
async fn a_forged_hand_over_mark_is_told_once_not_obeyed_in_silence() {
    let (w, settings, new) = half_moved().await;
    w.cloud
        .tag(&[&new], &[(TAG_HANDED_OVER, &rfc3339(Utc::now()))]);
    let (function, out) = telling(&w, &settings);
    for n in 2..5 {
        let r = invoke(&function, &sample("sns-alarm.json"), &format!("req-{n}"))
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Ignored, "{r:#?}");
    }
    let mail = out.mail();
    assert_eq!(mail.len(), 1, "told once: {mail:#?}");
    assert!(
        mail[0]
            .subject
            .contains("ec2-failover stands down for this incident"),
        "{:?}",
        mail[0].subject
    );
    assert!(
        mail[0].body.contains("handed to a human"),
        "{}",
        mail[0].body
    );
}

/// The function's own hand-over is told as it happens, and only then.
#[tokio::test(start_paused = true)]
async fn a_hand_over_is_told_when_it_happens_and_not_again() {
    let (w, settings, _new) = failed_back_by_hand().await;
    let (function, out) = telling(&w, &settings);
    let outcomes: Vec<Outcome> = three_reconciles(&function).await;
    assert_eq!(
        outcomes,
        [Outcome::HandedOver, Outcome::Ignored, Outcome::Ignored]
    );
    let mail = out.mail();
    assert_eq!(mail.len(), 1, "told once: {mail:#?}");
    assert!(
        mail[0].subject.contains("moved by hand"),
        "{:?}",
        mail[0].subject
    );
}

/// The outcomes of three reconciles, one after another.
async fn three_reconciles<C: ec2_failover::cloud::Cloud + Clone + 'static>(
    function: &ec2_failover::Fleet<C>,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for n in 2..5 {
        let r = invoke(function, &reconcile(), &format!("req-{n}")).await;
        out.push(r.unwrap().outcome);
    }
    out
}
