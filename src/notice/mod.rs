//! What is worth telling a person about a job's result, decided as pure data:
//! a failover that completed (with its time to recover), started and not yet
//! finished, or failed; an instance fenced; a standby replaced; a preflight
//! item failing; an incident handed to a human; a drill that stood down. A
//! quiet run (nothing moved, nothing failing) tells nothing.
//!
//! Each notice carries a fingerprint: what makes it the same news as one
//! told before. [`crate::notify`] tells a notice only when its fingerprint
//! differs from the last one told on its channel for the group, so a failure
//! repeated by Lambda's retries and every minute's reconcile is told once,
//! then again when it changes or a failover completes.

mod text;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::FailoverError;
use crate::report::{Outcome, PlannedMove, Report, StepStatus};
use crate::step::Step;

/// The kinds of notice; each is an EventBridge detail-type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoticeKind {
    FailoverCompleted,
    FailoverStarted,
    FailoverFailed,
    HandedOver,
    InstanceFenced,
    StandbyReplaced,
    PreflightFailed,
    GroupPaused,
    GroupResumed,
    /// A paused group's failover (an alarm's, the reconcile's) held back.
    FailoverHeld,
    /// A drill stood down (a guardrail alarm, the appliance's alarm not OK):
    /// whoever scheduled it would otherwise never learn it did not run.
    DrillNotRun,
}

impl NoticeKind {
    /// EventBridge's `DetailType`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Self::FailoverCompleted => "Failover Completed",
            Self::FailoverStarted => "Failover Started",
            Self::FailoverFailed => "Failover Failed",
            Self::HandedOver => "Incident Handed Over",
            Self::InstanceFenced => "Instance Fenced",
            Self::StandbyReplaced => "Standby Replaced",
            Self::PreflightFailed => "Preflight Failed",
            Self::GroupPaused => "Group Paused",
            Self::GroupResumed => "Group Resumed",
            Self::FailoverHeld => "Failover Held",
            Self::DrillNotRun => "Drill Not Run",
        }
    }

    /// The channel whose last fingerprint a notice is compared with: a
    /// failover's progress (started, failed, completed, handed over) is one
    /// story, so a completion ends a failure's silence.
    pub fn channel(self) -> &'static str {
        match self {
            Self::FailoverCompleted
            | Self::FailoverStarted
            | Self::FailoverFailed
            | Self::HandedOver => "failover",
            Self::InstanceFenced => "fence",
            Self::StandbyReplaced => "standby",
            Self::PreflightFailed => "preflight",
            Self::GroupPaused | Self::GroupResumed | Self::FailoverHeld => "pause",
            Self::DrillNotRun => "drill",
        }
    }
}

/// One thing to tell, ready for mail (subject, body) and EventBridge (detail).
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub group: String,
    pub incident: String,
    /// One line an operator reads in a mail list (at most 100 characters,
    /// SNS's limit).
    pub subject: String,
    /// Plain text: what happened, before and after, what to do.
    pub body: String,
    /// The report's fields (or the error's) and the group.
    pub detail: Value,
    /// What makes it the same news as one told before on its channel.
    pub fingerprint: String,
    /// Only a catch-up (a duplicate delivery found the failover done): told
    /// when the memory says the news was never told, say because the run that
    /// did the work could not reach SNS; without a memory, never.
    pub catch_up: bool,
}

/// What a job is, as far as telling goes: only jobs that may fail over
/// report their errors (a failed snapshot is Lambda's on-failure record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    FailsOver,
    /// A job that may fail over, run dry because the group is paused until then.
    Held(DateTime<Utc>),
    Other,
}

/// What a job's result is worth telling, most important first.
pub fn about(group: &str, work: Work, result: &Result<Report, FailoverError>) -> Vec<Notice> {
    match result {
        // Told once per pause: its end names it.
        Ok(report) if let Work::Held(until) = work => match would_change(report) {
            true => vec![notice(
                NoticeKind::FailoverHeld,
                group,
                report,
                format!("held until {}", until.timestamp()),
            )],
            false => Vec::new(),
        },
        Ok(report) => of_report(group, report),
        Err(e) if work != Work::Other => of_error(group, e).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// A dry run's report that planned a change.
fn would_change(report: &Report) -> bool {
    report
        .steps
        .iter()
        .any(|s| s.status == StepStatus::Planned && s.kind.is_change())
}

fn notice(kind: NoticeKind, group: &str, report: &Report, fingerprint: String) -> Notice {
    let (subject, body) = text::of_report(kind, group, report);
    Notice {
        kind,
        group: group.to_owned(),
        incident: report.incident.clone(),
        subject: text::subject_line(&subject),
        body,
        detail: detail_of(group, report),
        fingerprint,
        catch_up: report.outcome == Outcome::AlreadyFailedOver,
    }
}

fn of_report(group: &str, report: &Report) -> Vec<Notice> {
    let mut notices: Vec<Notice> = of_outcome(report)
        .into_iter()
        .map(|(kind, fingerprint)| notice(kind, group, report, fingerprint))
        .collect();
    // A hand-over mark found on the incident: told only if the hand-over
    // itself never was (the function tells its own at once), so a mark
    // someone else wrote, which keeps the function off the incident, does
    // not do so silently.
    if report.outcome == Outcome::Ignored {
        for n in notices
            .iter_mut()
            .filter(|n| n.kind == NoticeKind::HandedOver)
        {
            n.catch_up = true;
        }
    }
    let mut add = |kind: NoticeKind, fingerprint: String| {
        notices.push(notice(kind, group, report, fingerprint));
    };
    let fenced = text::fenced(report);
    if !fenced.is_empty() {
        add(
            NoticeKind::InstanceFenced,
            format!("fenced {}", fenced.join(",")),
        );
    }
    if let Some(standby) = text::new_standby(report) {
        add(NoticeKind::StandbyReplaced, format!("standby {standby}"));
    }
    if report.outcome == Outcome::Preflight {
        let failing: Vec<&str> = failed_steps(report).collect();
        if !failing.is_empty() {
            add(
                NoticeKind::PreflightFailed,
                format!("preflight {}", failing.join(",")),
            );
        }
    }
    notices
}

/// The news of a report's outcome, if any: its kind and fingerprint.
fn of_outcome(report: &Report) -> Option<(NoticeKind, String)> {
    let incident = &report.incident;
    match report.outcome {
        Outcome::Paused => Some((NoticeKind::GroupPaused, format!("paused {}", report.reason))),
        Outcome::Resumed if report.steps.iter().any(|s| s.status == StepStatus::Done) => {
            Some((NoticeKind::GroupResumed, format!("resumed {incident}")))
        }
        // The replacement, not the incident: the alarm's event and a
        // reconcile may name one failover's incident differently.
        Outcome::FailedOver | Outcome::AlreadyFailedOver => {
            let new = report.new_instance.as_deref()?;
            Some((NoticeKind::FailoverCompleted, format!("completed {new}")))
        }
        Outcome::HandedOver => Some((NoticeKind::HandedOver, format!("handed over {incident}"))),
        Outcome::Ignored if report.planned == Some(PlannedMove::Drill) => {
            Some((NoticeKind::DrillNotRun, format!("drill not run {incident}")))
        }
        Outcome::Ignored if handed_over_before(report) => {
            Some((NoticeKind::HandedOver, format!("handed over {incident}")))
        }
        _ => None,
    }
}

/// The incident was found handed to a human already (its replacement's mark).
fn handed_over_before(report: &Report) -> bool {
    report
        .steps
        .iter()
        .any(|s| s.kind == Step::HandOver && s.status == StepStatus::AlreadyDone)
}

/// The steps that failed, by name.
fn failed_steps(report: &Report) -> impl Iterator<Item = &str> {
    report
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .map(|s| s.step.as_str())
}

/// A failover that ended in an error: under way (a replacement exists and a
/// retry resumes) or failed. Another job holding the group, or an event that
/// is not one, is nothing to tell: the holder tells its own story.
fn of_error(group: &str, e: &FailoverError) -> Option<Notice> {
    if matches!(e, FailoverError::GroupBusy { .. } | FailoverError::Event(_)) {
        return None;
    }
    let (step, resource) = match e {
        FailoverError::Aws { step, resource, .. } => (Some(*step), resource.as_str()),
        FailoverError::Deadline { step, .. } => (Some(*step), ""),
        _ => (None, ""),
    };
    let under_way = e.retryable() && step.is_some_and(after_launch);
    let kind = if under_way {
        NoticeKind::FailoverStarted
    } else {
        NoticeKind::FailoverFailed
    };
    let (subject, body) = text::of_error(kind, group, e);
    Some(Notice {
        kind,
        group: group.to_owned(),
        incident: String::new(),
        subject: text::subject_line(&subject),
        body,
        detail: json!({
            "group": group,
            "error_type": e.error_type(),
            "error": e.to_string(),
            "retryable": e.retryable(),
        }),
        // Not the incident: a reconcile's run of the same failure has its own.
        fingerprint: format!(
            "{} {} {} {resource}",
            kind.detail_type(),
            e.kind(),
            step.map_or("-", Step::as_str)
        ),
        catch_up: false,
    })
}

/// Steps a failover reaches only once its replacement exists.
fn after_launch(step: Step) -> bool {
    matches!(
        step,
        Step::Wait
            | Step::StopFailed
            | Step::SourceDestCheck
            | Step::FloatingIp
            | Step::Route
            | Step::DnsRecord
            | Step::MarkMoved
    )
}

/// The report's JSON fields with the group beside them.
fn detail_of(group: &str, report: &Report) -> Value {
    let mut detail = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    if let Value::Object(fields) = &mut detail {
        fields.insert("group".to_owned(), Value::String(group.to_owned()));
    }
    detail
}

#[cfg(test)]
mod tests;
