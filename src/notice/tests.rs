use std::time::Instant;

use super::*;
use crate::cloud::{CloudError, Operation};
use crate::report::{PlannedMove, StepLog};

fn report(outcome: Outcome, steps: &[(Step, Option<&str>, StepStatus, &str)]) -> Report {
    let mut log = StepLog::new();
    for (kind, subject, status, detail) in steps {
        log.record_on(*kind, *subject, *status, *detail, Instant::now());
    }
    Report::new(
        outcome,
        "alarm-sophos-20261121T0900Z",
        "alarm went ALARM",
        log.into_records(),
    )
}

fn failed_over() -> Report {
    let mut r = report(
        Outcome::FailedOver,
        &[
            (Step::Discover, None, StepStatus::Done, "found sophos"),
            (
                Step::Launch,
                None,
                StepStatus::Done,
                "i-new (t3.small) from ami-1",
            ),
            (
                Step::FloatingIp,
                Some("eipalloc-1"),
                StepStatus::Done,
                "AssociateAddress",
            ),
            (
                Step::Route,
                Some("rtb-1 10.0.0.0/16"),
                StepStatus::AlreadyDone,
                "already",
            ),
        ],
    );
    r.old_instance = Some("i-old".into());
    r.old_availability_zone = Some("ap-northeast-1a".into());
    r.new_instance = Some("i-new".into());
    r.availability_zone = Some("ap-northeast-1c".into());
    r.time_to_recover_s = Some(34);
    r
}

#[test]
fn a_planned_move_says_which_it_was() {
    for (planned, subject) in [
        (
            PlannedMove::Failback,
            "sophos: failed back from ap-northeast-1a to ap-northeast-1c in 34 s",
        ),
        (
            PlannedMove::Drill,
            "sophos: drill: failed over from ap-northeast-1a to ap-northeast-1c in 34 s",
        ),
    ] {
        let mut r = failed_over();
        r.planned = Some(planned);
        let notices = about("sophos", Work::FailsOver, &Ok(r));
        assert_eq!(notices[0].subject, subject);
        assert_eq!(notices[0].detail["planned"], planned.as_str());
        assert!(
            !notices[0].body.contains("Find out why"),
            "{}",
            notices[0].body
        );
    }
    let unplanned = about("sophos", Work::FailsOver, &Ok(failed_over()));
    assert!(unplanned[0].body.contains("\"failback\""));
}

#[test]
fn a_completed_failover_is_one_notice_with_a_subject_a_person_reads() {
    let notices = about("sophos", Work::FailsOver, &Ok(failed_over()));
    assert_eq!(notices.len(), 1, "{notices:#?}");
    let n = &notices[0];
    assert_eq!(n.kind, NoticeKind::FailoverCompleted);
    assert_eq!(n.kind.detail_type(), "Failover Completed");
    assert_eq!(
        n.subject,
        "sophos: failed over from ap-northeast-1a to ap-northeast-1c in 34 s"
    );
    for line in [
        "Before: i-old in ap-northeast-1a",
        "After: i-new in ap-northeast-1c",
        "floating_ip eipalloc-1 [done]",
        "What to do: nothing now",
    ] {
        assert!(n.body.contains(line), "{line:?} in\n{}", n.body);
    }
    assert!(!n.body.contains("rtb-1"), "a step already done is not news");
    assert_eq!(n.detail["group"], "sophos");
    assert_eq!(n.detail["new_instance"], "i-new");
    assert_eq!(n.detail["outcome"], "failed_over");
}

#[test]
fn a_duplicate_that_finds_the_failover_done_is_only_a_catch_up() {
    let mut again = failed_over();
    again.outcome = Outcome::AlreadyFailedOver;
    again.time_to_recover_s = None;
    let first = &about("sophos", Work::FailsOver, &Ok(failed_over()))[0];
    let late = &about("sophos", Work::FailsOver, &Ok(again))[0];
    assert!(late.catch_up && !first.catch_up);
    assert_eq!(late.fingerprint, first.fingerprint, "the same news");
    let mut nothing_moved = failed_over();
    nothing_moved.outcome = Outcome::AlreadyFailedOver;
    nothing_moved.new_instance = None;
    assert_eq!(about("sophos", Work::FailsOver, &Ok(nothing_moved)), vec![]);
}

#[test]
fn a_quiet_result_tells_nothing() {
    for outcome in [
        Outcome::Ignored,
        Outcome::Planned,
        Outcome::SnapshotTaken,
        Outcome::RangesSynced,
        Outcome::StandbyKept,
    ] {
        let r = report(
            outcome,
            &[
                (
                    Step::Fence,
                    Some("i-old"),
                    StepStatus::AlreadyDone,
                    "stopped",
                ),
                (
                    Step::Standby,
                    None,
                    StepStatus::Done,
                    "STANDBY=hot: appliance i-1",
                ),
            ],
        );
        assert_eq!(
            about("sophos", Work::FailsOver, &Ok(r)),
            vec![],
            "{outcome:?}"
        );
    }
    let fine = report(
        Outcome::Preflight,
        &[
            (Step::Preflight, Some("ami"), StepStatus::Ok, "ami-1"),
            (
                Step::Preflight,
                Some("alarm"),
                StepStatus::Warn,
                "no actions",
            ),
        ],
    );
    assert_eq!(about("sophos", Work::Other, &Ok(fine)), vec![]);
}

#[test]
fn fences_new_standbys_and_failing_preflight_items_are_told() {
    let r = report(
        Outcome::Fenced,
        &[
            (
                Step::Fence,
                Some("i-old"),
                StepStatus::Done,
                "StopInstances i-old",
            ),
            (
                Step::Standby,
                None,
                StepStatus::Done,
                "i-sb2 (t3.small) from ami-1 in subnet-c (ap-northeast-1c), a standby for i-new",
            ),
        ],
    );
    let notices = about("sophos", Work::FailsOver, &Ok(r));
    let kinds: Vec<_> = notices.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [NoticeKind::InstanceFenced, NoticeKind::StandbyReplaced]
    );
    assert!(
        notices[0].subject.contains("stopped i-old"),
        "{}",
        notices[0].subject
    );
    assert!(
        notices[1].subject.contains("new standby i-sb2"),
        "{}",
        notices[1].subject
    );
    let failing = report(
        Outcome::Preflight,
        &[
            (Step::Preflight, Some("ami"), StepStatus::Ok, "ami-1"),
            (
                Step::Preflight,
                Some("iam"),
                StepStatus::Failed,
                "ec2:RunInstances denied",
            ),
        ],
    );
    let n = about("sophos", Work::Other, &Ok(failing));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].subject, "sophos: preflight failing: preflight iam");
    assert!(
        n[0].body.contains("ec2:RunInstances denied"),
        "{}",
        n[0].body
    );
}

#[test]
fn a_failover_error_is_under_way_or_failed_and_the_same_failure_reads_the_same() {
    let interrupted = FailoverError::Deadline {
        step: Step::Wait,
        detail: "i-new is pending".into(),
    };
    let n = about("sophos", Work::FailsOver, &Err(interrupted));
    assert_eq!(n[0].kind, NoticeKind::FailoverStarted);
    let throttled = || FailoverError::Aws {
        step: Step::Launch,
        resource: "subnet-c".into(),
        source: CloudError::service(Operation::RunInstances, "RequestLimitExceeded", "slow"),
    };
    let first = about("sophos", Work::FailsOver, &Err(throttled()));
    let again = about("sophos", Work::FailsOver, &Err(throttled()));
    assert_eq!(first[0].kind, NoticeKind::FailoverFailed);
    assert!(
        first[0].subject.contains("a retry follows"),
        "{}",
        first[0].subject
    );
    assert_eq!(first[0].fingerprint, again[0].fingerprint);
    let flap = FailoverError::FlapGuard {
        count: 3,
        max: 3,
        window_minutes: 60,
        instances: "i-1, i-2, i-3".into(),
    };
    let refused = about("sophos", Work::FailsOver, &Err(flap));
    assert!(
        refused[0].subject.contains("flap guard"),
        "{}",
        refused[0].subject
    );
    assert_ne!(refused[0].fingerprint, first[0].fingerprint);
    let busy = FailoverError::GroupBusy {
        group: "sophos".into(),
        holder: "req-1".into(),
        incident: "alarm-1".into(),
        until: "soon".into(),
        waited_s: 2,
    };
    assert_eq!(about("sophos", Work::FailsOver, &Err(busy)), vec![]);
    assert_eq!(about("sophos", Work::Other, &Err(throttled())), vec![]);
}

#[test]
fn a_subject_is_what_sns_accepts() {
    let long = format!("sophos: {}\nline two\u{1F6A8}", "x".repeat(200));
    let s = text::subject_line(&long);
    assert!(s.len() <= 100, "{}", s.len());
    assert!(s.chars().all(|c| (' '..='~').contains(&c)), "{s:?}");
    assert_eq!(text::subject_line(" a\tb "), "a b");
}

#[test]
fn a_drill_that_stood_down_is_told_and_a_fail_back_that_did_is_not() {
    let why =
        "alarm vpn-users is ALARM: a drill waits while a DRILL_GUARDRAIL_ALARMS alarm is ALARM";
    let stood_down = |planned: PlannedMove| {
        let mut r = report(Outcome::Ignored, &[]);
        r.reason = format!("manual {}: monthly; {why}", planned.as_str());
        r.planned = Some(planned);
        about("sophos", Work::FailsOver, &Ok(r))
    };
    let drill = stood_down(PlannedMove::Drill);
    assert_eq!(drill.len(), 1, "{drill:#?}");
    assert_eq!(drill[0].kind, NoticeKind::DrillNotRun);
    assert_eq!(drill[0].kind.detail_type(), "Drill Not Run");
    assert!(
        drill[0]
            .subject
            .starts_with("sophos: drill not run: alarm vpn-users is ALARM"),
        "{}",
        drill[0].subject
    );
    assert!(drill[0].body.contains("not moved"), "{}", drill[0].body);
    // Told once per drill: a redelivery of the same drill is the same news.
    assert_eq!(
        drill[0].fingerprint,
        stood_down(PlannedMove::Drill)[0].fingerprint
    );
    // A fail-back that finds the appliance home (every FailbackWindow run
    // after the first) is no news.
    assert_eq!(stood_down(PlannedMove::Failback), vec![]);
}

#[test]
fn an_incident_found_handed_over_is_only_a_catch_up() {
    let r = report(
        Outcome::Ignored,
        &[(
            Step::HandOver,
            None,
            StepStatus::AlreadyDone,
            "incident alarm-1 was handed to a human at 2026-11-21T10:00:00Z",
        )],
    );
    let notices = about("sophos", Work::FailsOver, &Ok(r));
    assert_eq!(notices.len(), 1, "{notices:#?}");
    assert_eq!(notices[0].kind, NoticeKind::HandedOver);
    assert!(notices[0].catch_up, "told only if the hand-over never was");
    assert_eq!(
        notices[0].fingerprint, "handed over alarm-sophos-20261121T0900Z",
        "the hand-over's own fingerprint"
    );
}
