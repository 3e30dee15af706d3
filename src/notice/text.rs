//! The words of a notice: a subject an operator reads in a mail list and a
//! plain-text body (what happened, before and after, what to do).

use std::fmt::Write as _;

use crate::error::FailoverError;
use crate::report::{PlannedMove, Report, StepStatus};
use crate::step::Step;

use super::NoticeKind;

/// SNS's longest subject.
const SUBJECT_MAX: usize = 100;

/// A subject SNS accepts: ASCII without line breaks or control characters,
/// at most 100 characters.
pub(super) fn subject_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c,
            _ => ' ',
        })
        .take(SUBJECT_MAX)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The instances the report's fence stopped.
pub(super) fn fenced(report: &Report) -> Vec<&str> {
    report
        .steps
        .iter()
        .filter(|s| s.kind == Step::Fence && s.status == StepStatus::Done)
        .filter_map(|s| s.step.strip_prefix("fence "))
        .collect()
}

/// The standby the report's upkeep launched (the launch's detail names it first).
pub(super) fn new_standby(report: &Report) -> Option<&str> {
    report
        .steps
        .iter()
        .find(|s| {
            s.kind == Step::Standby
                && s.status == StepStatus::Done
                && s.detail.contains(" a standby for ")
        })
        .and_then(|s| s.detail.split_whitespace().next())
}

pub(super) fn of_report(kind: NoticeKind, group: &str, r: &Report) -> (String, String) {
    let subject = match kind {
        NoticeKind::FailoverCompleted => {
            let from = r
                .old_availability_zone
                .as_deref()
                .map(|az| format!(" from {az}"))
                .unwrap_or_default();
            let to = r.availability_zone.as_deref().unwrap_or("another AZ");
            let took = r
                .time_to_recover_s
                .map(|s| format!(" in {s} s"))
                .unwrap_or_default();
            let moved = match r.planned {
                Some(PlannedMove::Failback) => "failed back",
                Some(PlannedMove::Drill) => "drill: failed over",
                None => "failed over",
            };
            format!("{group}: {moved}{from} to {to}{took}")
        }
        NoticeKind::HandedOver => {
            format!("{group}: moved by hand; ec2-failover stands down for this incident")
        }
        NoticeKind::InstanceFenced => format!(
            "{group}: stopped {}, a replaced instance that ran again",
            fenced(r).join(", ")
        ),
        NoticeKind::StandbyReplaced => format!(
            "{group}: new standby {} launched",
            new_standby(r).unwrap_or("instance")
        ),
        NoticeKind::PreflightFailed => {
            let failing: Vec<&str> = super::failed_steps(r).collect();
            format!("{group}: preflight failing: {}", failing.join(", "))
        }
        NoticeKind::GroupPaused => format!("{group}: {}", first_clause(&r.reason, 1)),
        NoticeKind::GroupResumed => format!("{group}: pause ended; failovers are on again"),
        NoticeKind::FailoverHeld => format!(
            "{group}: a failover was held back: {}",
            first_clause(&r.reason, 0)
        ),
        NoticeKind::DrillNotRun => {
            format!("{group}: drill not run: {}", first_clause(&r.reason, 1))
        }
        NoticeKind::FailoverStarted | NoticeKind::FailoverFailed => format!("{group}: failover"),
    };
    let mut body = format!("{subject}.\n\n");
    facts(&mut body, group, r);
    let _ = write!(body, "\nWhat to do: {}\n", to_do(kind, r));
    (subject, body)
}

/// Group, incident, why, before and after, and the steps that changed or failed.
fn facts(body: &mut String, group: &str, r: &Report) {
    let _ = writeln!(
        body,
        "Group: {group}\nIncident: {}\nWhy: {}",
        r.incident, r.reason
    );
    let at = |id: &Option<String>, az: &Option<String>| match (id, az) {
        (Some(id), Some(az)) => Some(format!("{id} in {az}")),
        (Some(id), None) => Some(id.clone()),
        _ => None,
    };
    if let Some(before) = at(&r.old_instance, &r.old_availability_zone) {
        let _ = writeln!(body, "Before: {before}");
    }
    if let Some(after) = at(&r.new_instance, &r.availability_zone) {
        let image = match (&r.image, &r.image_created) {
            (Some(i), Some(c)) => format!(", from {i} (created {c})"),
            (Some(i), None) => format!(", from {i}"),
            _ => String::new(),
        };
        let _ = writeln!(body, "After: {after}{image}");
    }
    if let Some(s) = r.time_to_recover_s {
        let _ = writeln!(body, "Time to recover: {s} s");
    }
    let told: Vec<_> = r
        .steps
        .iter()
        .filter(|s| {
            (s.kind.is_change() && s.status == StepStatus::Done) || s.status == StepStatus::Failed
        })
        .collect();
    if !told.is_empty() {
        body.push_str("\nWhat it did (and what failed):\n");
        for s in told {
            let _ = writeln!(body, "  - {} [{}]: {}", s.step, s.status.as_str(), s.detail);
        }
    }
}

fn to_do(kind: NoticeKind, r: &Report) -> String {
    let old = r.old_instance.as_deref().unwrap_or("the replaced instance");
    match kind {
        NoticeKind::FailoverCompleted if r.planned.is_some() => format!(
            "nothing: the appliance serves from {}; {old} stays stopped until you terminate it.",
            r.new_instance.as_deref().unwrap_or("the replacement")
        ),
        NoticeKind::FailoverCompleted => format!(
            "nothing now: the appliance serves from {}. Find out why {old} failed; it stays stopped (the fence stops it if it runs again) until you terminate it. Once its AZ is well, {{\"action\": \"failback\"}} moves the appliance home (HOME_AZ), launch before stop.",
            r.new_instance.as_deref().unwrap_or("the replacement")
        ),
        NoticeKind::HandedOver => "the incident is yours: the function moves nothing for it and never stops the instance that holds the floating IP. A new alarm starts a new incident.".to_owned(),
        NoticeKind::InstanceFenced => "find out who started it (CloudTrail: StartInstances); terminate it once you no longer need it.".to_owned(),
        NoticeKind::StandbyReplaced => "nothing: the next failover promotes it.".to_owned(),
        NoticeKind::PreflightFailed => "fix each failing item above, then invoke {\"action\": \"preflight\"} to check again; a failover may fail until then.".to_owned(),
        NoticeKind::GroupPaused => "nothing, unless the pause was a mistake: {\"action\": \"resume\"} ends it now. While it lasts, no alarm fails the appliance over.".to_owned(),
        NoticeKind::GroupResumed => "nothing: the reconcile follows the alarm again within a minute.".to_owned(),
        NoticeKind::FailoverHeld => "the appliance is not being failed over. If it should be, invoke {\"action\": \"resume\"}: the next reconcile acts on the alarm. You are told once per pause.".to_owned(),
        NoticeKind::DrillNotRun => "nothing, if the reason above is expected; the appliance was not moved. The next scheduled drill tries again, or invoke {\"action\": \"drill\"} once the reason is gone.".to_owned(),
        NoticeKind::FailoverStarted | NoticeKind::FailoverFailed => String::new(),
    }
}

/// The `n`th `;`-separated clause of a report's reason.
fn first_clause(reason: &str, n: usize) -> &str {
    reason.split("; ").nth(n).unwrap_or(reason)
}

pub(super) fn of_error(kind: NoticeKind, group: &str, e: &FailoverError) -> (String, String) {
    let subject = match (kind, e) {
        (NoticeKind::FailoverStarted, _) => format!(
            "{group}: failover under way, interrupted ({}); a retry resumes it",
            e.kind()
        ),
        (_, FailoverError::FlapGuard { .. }) => {
            format!("{group}: failover refused by the flap guard; a human must look")
        }
        _ if e.retryable() => format!("{group}: failover failed ({}); a retry follows", e.kind()),
        _ => format!("{group}: failover FAILED ({}); a human must look", e.kind()),
    };
    let to_do = if e.retryable() {
        "nothing yet: Lambda retries the event and the reconcile tries every minute. You are told again when the failover completes or fails differently; if it keeps failing, the error above says what to fix."
    } else {
        "fix what the error names (invoke {\"action\": \"preflight\"} to see every item), then invoke {\"action\": \"reconcile\"} or wait for the schedule's next run. You are told again when this changes."
    };
    let body = format!(
        "{subject}.\n\nGroup: {group}\nError: {}\nError type: {}\n\nWhat to do: {to_do}\n",
        e,
        e.error_type()
    );
    (subject, body)
}
