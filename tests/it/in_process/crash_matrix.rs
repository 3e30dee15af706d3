//! The crash matrix: every job, dying at each of its mutating calls (both ways),
//! then retried and delivered again, ends as one clean run would.

use crate::common;

use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::TAG_MOVED_AT;
use ec2_failover::cloud::faults::{Fault, FaultyCloud};
use ec2_failover::cloud::memory::WorldView;
use ec2_failover::report::StepStatus;
use ec2_failover::{Outcome, Settings};
use serde_json::{Value, json};

use super::worlds::*;

type Check = fn(&MemWorld, &WorldView, &WorldView);

/// `view` with the move's mark read as a mark, not as the second it was
/// written (the clean run and a case's retry may straddle a second).
fn timeless(view: &WorldView) -> WorldView {
    let mut view = view.clone();
    for i in &mut view.instances {
        for (key, value) in &mut i.tags {
            if key == TAG_MOVED_AT {
                *value = "<time>".to_owned();
            }
        }
    }
    view
}

/// Every run of a case is one delivery: Lambda retries an asynchronous
/// event under its request id, which is a manual job's incident.
const DELIVERY: &str = "req-1";

/// Runs `payload` once cleanly, then, for every mutating call k of that run
/// and both ways of dying there, on a fresh world: a run that dies at k, a
/// retry through a new wrapper over the same world, and a third delivery. The
/// retry must end in the clean run's world, and the third must change nothing.
/// `done[0]` is the outcome of a run that acted; the others, of one that found
/// everything done (the crash came after AWS carried out the last call).
async fn crash_matrix(
    build: fn() -> (MemWorld, Settings),
    payload: &Value,
    done: &[Outcome],
    check: Check,
) -> Vec<&'static str> {
    // Dying before AWS saw a call leaves that call to the retry, which then acts.
    let acted = done[0];
    let (w, settings) = build();
    let before = w.view();
    let clean = FaultyCloud::new(w.cloud.clone());
    let report = invoke(&single(clean.clone(), settings.clone()), payload, DELIVERY)
        .await
        .unwrap_or_else(|e| panic!("the clean run fails: {e}"));
    assert_eq!(report.outcome, acted, "{report:#?}");
    let clean_view = w.view();
    check(&w, &before, &clean_view);
    let ops = mutations(&clean.calls());
    assert!(!ops.is_empty());

    for after_effect in [false, true] {
        for k in 1..=ops.len() {
            let case = format!("k={k} ({}) after_effect={after_effect}", ops[k - 1]);
            let (w, settings) = build();
            assert_eq!(w.view(), before, "worlds are built alike");
            let dying =
                FaultyCloud::new(w.cloud.clone()).with(Fault::DieAtMutation { k, after_effect });
            let first =
                report_or_error_type(&single(dying.clone(), settings.clone()), payload, DELIVERY)
                    .await;
            let calls = dying.calls();
            // The move's mark comes after the move, and its failure never fails
            // the run: in life the process ends there all the same; here the run
            // goes on and its report says the mark failed.
            let at_mark = calls
                .iter()
                .filter(|c| c.mutating)
                .nth(k - 1)
                .is_some_and(|c| c.target.contains(TAG_MOVED_AT));
            match first {
                Err(e) => assert!(
                    e.starts_with("Retryable."),
                    "{case}: a crash is worth a retry: {e}"
                ),
                Ok(r) => assert!(
                    at_mark && r.steps.iter().any(|s| s.status == StepStatus::Failed),
                    "{case}: a crash ends the run: {r:#?}"
                ),
            }
            let died = calls.iter().filter(|c| c.mutating).position(|c| c.failed);
            assert_eq!(died, Some(k - 1), "{case}: died where asked");
            assert_eq!(
                mutations(&calls)[k - 1],
                ops[k - 1],
                "{case}: same order as the clean run"
            );

            let retry = FaultyCloud::new(w.cloud.clone());
            let r = invoke(&single(retry.clone(), settings.clone()), payload, DELIVERY)
                .await
                .unwrap_or_else(|e| panic!("{case}: the retry fails: {e}"));
            // Only the mark left: the retry finds the move done.
            if after_effect || at_mark {
                assert!(done.contains(&r.outcome), "{case}: {r:#?}");
            } else {
                assert_eq!(r.outcome, acted, "{case}: {r:#?}");
            }
            let after = w.view();
            check(&w, &before, &after);
            assert_eq!(
                timeless(&after),
                timeless(&clean_view),
                "{case}: the world of one clean run"
            );

            let third = FaultyCloud::new(w.cloud.clone());
            invoke(&single(third.clone(), settings), payload, DELIVERY)
                .await
                .unwrap_or_else(|e| panic!("{case}: the third delivery fails: {e}"));
            assert!(
                mutations(&third.calls()).is_empty(),
                "{case}: {:?}",
                third.calls()
            );
            assert_eq!(timeless(&w.view()), timeless(&clean_view), "{case}");
        }
    }
    ops
}

#[tokio::test(start_paused = true)]
async fn a_failover_dying_at_any_mutating_call_resumes_into_one_clean_failover() {
    let ops = crash_matrix(
        failover_world,
        &sample("sns-alarm.json"),
        &[Outcome::FailedOver, Outcome::AlreadyFailedOver],
        check_failover,
    )
    .await;
    let mut sorted = ops.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "AssociateAddress",
            "ChangeResourceRecordSets",
            "CreateTags",
            "ModifyInstanceAttribute",
            "ReplaceRoute",
            "RunInstances",
            "StopInstances",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_dying_at_any_mutating_call_resumes_into_one_clean_failover() {
    let ops = crash_matrix(
        alarm_world,
        &json!({"action": "reconcile"}),
        &[Outcome::FailedOver, Outcome::AlreadyFailedOver],
        check_failover,
    )
    .await;
    assert_eq!(
        ops.len(),
        7,
        "the failover's six changes and the move's mark: {ops:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failback_dying_at_any_mutating_call_resumes_into_one_appliance_in_the_home_az() {
    let ops = crash_matrix(
        away_from_home,
        &json!({"action": "failback", "reason": "the outage is over"}),
        &[Outcome::FailedOver, Outcome::AlreadyFailedOver],
        check_failover,
    )
    .await;
    assert_eq!(
        ops.len(),
        7,
        "a failover's six changes and the move's mark: {ops:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_dying_at_any_mutating_call_resumes_into_one_ami_for_the_slot() {
    let ops = crash_matrix(
        snapshot_world,
        &scheduled_at(SLOT),
        &[Outcome::SnapshotTaken],
        check_snapshot,
    )
    .await;
    let mut sorted = ops.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "CreateImage",
            "CreateTags",
            "CreateTags",
            "DeleteSnapshot",
            "DeleteSnapshot",
            "DeregisterImage",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_checker_sync_dying_at_any_mutating_call_resumes_into_exactly_the_wanted_rules() {
    let ops = crash_matrix(
        checker_world,
        &json!({"action": "sync-checker-ranges"}),
        &[Outcome::RangesSynced],
        check_checker_ranges,
    )
    .await;
    assert_eq!(
        ops,
        [
            "RevokeSecurityGroupIngress",
            "AuthorizeSecurityGroupIngress"
        ]
    );
}
