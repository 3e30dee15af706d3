//! Notices through the front door: what a failover, its duplicates, the
//! reconciles and a failure repeated by retries tell the mail list and the
//! event bus. The memory of what was told is the lease table's.

use crate::common;

use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::faults::FaultyCloud;
use ec2_failover::cloud::memory::{MemoryAnnouncer, MemoryLeases};
use ec2_failover::{Outcome, StepStatus};
use serde_json::json;

use super::worlds::*;

fn detail_types(out: &MemoryAnnouncer) -> Vec<String> {
    out.events().into_iter().map(|e| e.detail_type).collect()
}

#[tokio::test]
async fn a_failover_is_one_mail_and_its_duplicates_and_reconciles_tell_nothing() {
    let (w, settings) = alarm_world();
    let (leases, out) = (MemoryLeases::default(), MemoryAnnouncer::default());
    let fleet = deployment(
        FaultyCloud::new(w.cloud.clone()),
        &settings,
        Some(&leases),
        &out,
    );

    let report = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::FailedOver, "{report:#?}");
    let mail = out.mail();
    assert_eq!(mail.len(), 1, "{mail:#?}");
    let old_az = w.cloud.peek_instance(&w.sophos).unwrap().availability_zone;
    let new_az = report.availability_zone.clone().unwrap();
    let prefix = format!("sophos: failed over from {old_az} to {new_az} in ");
    assert!(mail[0].subject.starts_with(&prefix), "{}", mail[0].subject);
    assert!(mail[0].subject.ends_with(" s"), "{}", mail[0].subject);
    assert!(
        mail[0]
            .body
            .contains(&format!("Before: {} in {old_az}", w.sophos)),
        "{}",
        mail[0].body
    );
    assert_eq!(detail_types(&out), ["Failover Completed"]);
    let detail: serde_json::Value = serde_json::from_str(&out.events()[0].detail).unwrap();
    assert_eq!(detail["group"], "sophos");
    assert_eq!(detail["new_instance"], json!(report.new_instance));
    let notify = report.step("notify").expect("the report says what it told");
    assert_eq!(notify.status, StepStatus::Done, "{notify:?}");

    for n in 2..=3 {
        let again = invoke(&fleet, &sample("sns-alarm.json"), &format!("req-{n}"))
            .await
            .unwrap();
        assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
        let quiet = invoke(&fleet, &json!({"action": "reconcile"}), &format!("rec-{n}")).await;
        assert!(quiet.is_ok(), "{quiet:?}");
    }
    assert_eq!(out.mail().len(), 1, "{:#?}", out.mail());
    assert_eq!(out.events().len(), 1);
}

#[tokio::test]
async fn a_failure_repeated_by_retries_and_reconciles_is_told_once_then_its_end() {
    let (w, settings) = alarm_world();
    let (leases, out) = (MemoryLeases::default(), MemoryAnnouncer::default());
    let cloud = failing(&w, "RunInstances", "", "InsufficientInstanceCapacity");
    let fleet = deployment(cloud.clone(), &settings, Some(&leases), &out);
    for delivery in 1..=3 {
        let e = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
            .await
            .unwrap_err();
        assert_eq!(
            e.error_type(),
            "Retryable.NoCapacity",
            "delivery {delivery}: {e}"
        );
        let tick = format!("rec-{delivery}");
        let tick = answer(&fleet, &json!({"action": "reconcile"}), &tick).await;
        assert_eq!(
            failed_reconcile(&tick).as_deref(),
            Some("Retryable.NoCapacity"),
            "a reconcile's failure answers per group"
        );
    }
    let mail = out.mail();
    assert_eq!(mail.len(), 1, "told once: {mail:#?}");
    assert_eq!(
        mail[0].subject,
        "sophos: failover failed (NoCapacity); a retry follows"
    );
    assert!(
        mail[0].body.contains("Retryable.NoCapacity"),
        "{}",
        mail[0].body
    );
    assert_eq!(detail_types(&out), ["Failover Failed"]);

    cloud.heal();
    let done = invoke(&fleet, &json!({"action": "reconcile"}), "rec-healed")
        .await
        .unwrap();
    assert_eq!(done.outcome, Outcome::FailedOver, "{done:#?}");
    let subjects: Vec<String> = out.mail().into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects.len(), 2, "then its end: {subjects:#?}");
    assert!(
        subjects[1].starts_with("sophos: failed over from "),
        "{subjects:#?}"
    );
    assert_eq!(
        detail_types(&out),
        ["Failover Failed", "Failover Completed"]
    );
}

#[tokio::test]
async fn a_notice_sns_refused_is_a_failed_step_and_the_next_delivery_tells_it() {
    let (w, settings) = alarm_world();
    let (leases, out) = (MemoryLeases::default(), MemoryAnnouncer::default());
    let fleet = deployment(
        FaultyCloud::new(w.cloud.clone()),
        &settings,
        Some(&leases),
        &out,
    );
    out.fail_next("Throttling");
    let report = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::FailedOver,
        "telling never fails the job"
    );
    let notify = report.step("notify").unwrap();
    assert_eq!(notify.status, StepStatus::Failed, "{notify:?}");
    assert!(out.mail().is_empty());

    let again = invoke(&fleet, &sample("sns-alarm.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver);
    let mail = out.mail();
    assert_eq!(mail.len(), 1, "the duplicate catches up: {mail:#?}");
    assert!(
        mail[0].subject.starts_with("sophos: failed over from "),
        "{}",
        mail[0].subject
    );
    let _ = invoke(&fleet, &sample("sns-alarm.json"), "req-3")
        .await
        .unwrap();
    assert_eq!(out.mail().len(), 1, "and only once");
}

#[tokio::test]
async fn without_a_memory_the_work_is_told_but_a_duplicate_tells_nothing() {
    let (w, settings) = alarm_world();
    let out = MemoryAnnouncer::default();
    let fleet = deployment(FaultyCloud::new(w.cloud.clone()), &settings, None, &out);
    invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    invoke(&fleet, &sample("sns-alarm.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(out.mail().len(), 1, "{:#?}", out.mail());
}

#[tokio::test]
async fn a_dry_run_tells_no_one_and_a_failing_preflight_does_once() {
    let (w, settings) = alarm_world();
    let (leases, out) = (MemoryLeases::default(), MemoryAnnouncer::default());
    let fleet = deployment(
        FaultyCloud::new(w.cloud.clone()),
        &settings,
        Some(&leases),
        &out,
    );
    let plan = invoke(&fleet, &json!({"action": "plan"}), "req-1")
        .await
        .unwrap();
    assert_eq!(plan.outcome, Outcome::Planned);
    assert!(out.mail().is_empty() && out.events().is_empty());

    let broken = failing(&w, "DescribeImages", "", "UnauthorizedOperation");
    let fleet = deployment(broken, &settings, Some(&leases), &out);
    for n in 1..=2 {
        let report = invoke(&fleet, &json!({"action": "preflight"}), &format!("pf-{n}")).await;
        let report = report.unwrap();
        assert!(
            report.steps.iter().any(|s| s.status == StepStatus::Failed),
            "{report:#?}"
        );
    }
    let mail = out.mail();
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert!(
        mail[0].subject.starts_with("sophos: preflight failing: "),
        "{}",
        mail[0].subject
    );
    assert_eq!(detail_types(&out), ["Preflight Failed"]);
}
