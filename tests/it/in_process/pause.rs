//! Hands off: a paused group's alarm, reconcile, fence and upkeep change
//! nothing and say what they would have done; the alarm is told once; a
//! resume (or the pause's end) lets the reconcile act. The pause lives in the
//! lease table, so another process of the function sees it too.

use crate::common;

use chrono::{TimeDelta, Utc};
use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::faults::FaultyCloud;
use ec2_failover::cloud::memory::{MemoryAnnouncer, MemoryCloud, MemoryLeases};
use ec2_failover::cloud::pause::{Pause, PauseBook};
use ec2_failover::{Fleet, Outcome, Settings, StepStatus};
use serde_json::json;

use super::worlds::*;

/// One process of the function over the world and the deployment's lease
/// table (which keeps the pause), telling `out`.
fn process(
    w: &MemWorld,
    settings: &Settings,
    leases: &MemoryLeases,
    out: &MemoryAnnouncer,
) -> Fleet<FaultyCloud<MemoryCloud>> {
    deployment(
        FaultyCloud::new(w.cloud.clone()),
        settings,
        Some(leases),
        out,
    )
}

fn subjects(out: &MemoryAnnouncer) -> Vec<String> {
    out.mail().into_iter().map(|m| m.subject).collect()
}

#[tokio::test]
async fn a_paused_group_holds_its_alarm_tells_it_once_and_a_resume_lets_the_reconcile_act() {
    let (w, settings) = alarm_world();
    let (leases, out) = (MemoryLeases::default(), MemoryAnnouncer::default());
    let operator = process(&w, &settings, &leases, &out);
    let paused = invoke(
        &operator,
        &json!({"action": "pause", "minutes": 60, "reason": "patching the VPN"}),
        "op-1",
    )
    .await
    .unwrap();
    assert_eq!(paused.outcome, Outcome::Paused, "{paused:#?}");
    assert_eq!(subjects(&out).len(), 1);
    assert!(
        subjects(&out)[0].starts_with("sophos: paused until "),
        "{:?}",
        subjects(&out)
    );

    // Another process sees the pause: the alarm, its redelivery and the
    // reconciles change nothing, and the held failover is told once.
    let before = w.view();
    let other = process(&w, &settings, &leases, &out);
    for n in 1..=2 {
        let held = invoke(&other, &sample("sns-alarm.json"), &format!("req-{n}"))
            .await
            .unwrap();
        assert_eq!(held.outcome, Outcome::Planned, "{held:#?}");
        let step = held.step("pause").expect("the report names the pause");
        assert_eq!(step.status, StepStatus::Skipped);
        assert!(held.reason.contains("patching the VPN"), "{}", held.reason);
        let tick = invoke(&other, &json!({"action": "reconcile"}), &format!("rec-{n}")).await;
        assert_eq!(tick.unwrap().outcome, Outcome::Planned);
    }
    assert_eq!(w.view(), before, "nothing changed while paused");
    let told = subjects(&out);
    assert_eq!(told.len(), 2, "{told:#?}");
    assert!(
        told[1].starts_with("sophos: a failover was held back: "),
        "{told:#?}"
    );

    let preflight = invoke(&other, &json!({"action": "preflight"}), "pf-1")
        .await
        .unwrap();
    assert_eq!(
        preflight.step("pause").map(|s| s.status),
        Some(StepStatus::Warn)
    );

    let resumed = invoke(&operator, &json!({"action": "resume"}), "op-2")
        .await
        .unwrap();
    assert_eq!(resumed.outcome, Outcome::Resumed);
    let acted = invoke(&other, &json!({"action": "reconcile"}), "rec-3")
        .await
        .unwrap();
    assert_eq!(acted.outcome, Outcome::FailedOver, "{acted:#?}");
    check_failover(&w, &before, &w.view());
    let told = subjects(&out);
    assert_eq!(told.len(), 4, "resumed, then failed over: {told:#?}");
    assert!(
        told[2].contains("pause ended") && told[3].contains("failed over from"),
        "{told:#?}"
    );
}

#[tokio::test]
async fn a_pause_ends_by_itself_and_needs_the_lease_table() {
    let (w, settings) = alarm_world();
    let (leases, out) = (MemoryLeases::default(), MemoryAnnouncer::default());
    leases
        .set_pause(&Pause {
            group: "sophos".into(),
            until: Utc::now() - TimeDelta::minutes(1),
            reason: "over".into(),
            by: "op-0".into(),
        })
        .await
        .unwrap();
    let fleet = process(&w, &settings, &leases, &out);
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::FailedOver,
        "an ended pause holds nothing"
    );

    let bare = single(FaultyCloud::new(w.cloud.clone()), settings.clone());
    let e = invoke(&bare, &json!({"action": "pause", "minutes": 5}), "op-1")
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.ResourceMissing", "{e}");
    assert!(e.to_string().contains("LOCK_TABLE"), "{e}");
    let bad = invoke(&fleet, &json!({"action": "pause"}), "op-2")
        .await
        .unwrap_err();
    assert_eq!(bad.error_type(), "Permanent.BadEvent", "{bad}");
}
