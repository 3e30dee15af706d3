//! Hands off: `{"action": "pause", "minutes": N}` keeps every job of a group
//! from changing it until the pause ends (by itself, or `{"action":
//! "resume"}`). A paused job runs as a dry run: its report says what it would
//! have done, and an alarm's failover is told once. The pause lives in the
//! lease table ([`crate::cloud::pause`] says why), written under the group's
//! lease, and is read after a job takes the lease, so no job that started
//! before the pause changes the group after it.

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::cloud::pause::{Pause, PauseBook};
use crate::error::FailoverError;
use crate::report::{Outcome, Report, StepLog, StepStatus};
use crate::step::Step;

/// `{"action": "pause"}` for one group.
#[derive(Debug, Clone)]
pub struct PauseRequest {
    pub incident: String,
    pub reason: String,
    pub minutes: u32,
}

fn needs_table() -> FailoverError {
    FailoverError::Missing {
        what: "a pause is kept in the lease table and LOCK_TABLE is not set".to_owned(),
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Pauses `group` for the request's minutes (a new pause replaces the old).
pub async fn pause(
    book: Option<&dyn PauseBook>,
    group: &str,
    req: &PauseRequest,
    (by, now): (&str, DateTime<Utc>),
) -> Result<Report, FailoverError> {
    let book = book.ok_or_else(needs_table)?;
    let t = Instant::now();
    let pause = Pause {
        group: group.to_owned(),
        until: now + TimeDelta::minutes(i64::from(req.minutes)),
        reason: req.reason.clone(),
        by: by.to_owned(),
    };
    book.set_pause(&pause)
        .await
        .map_err(FailoverError::during(Step::Pause, format!("pause#{group}")))?;
    let detail = format!(
        "paused until {} ({} min): every job reports what it would do and changes nothing",
        at(pause.until),
        req.minutes
    );
    let mut log = StepLog::new();
    log.record(Step::Pause, StepStatus::Done, &detail, t);
    let reason = format!(
        "{}; {detail}; {{\"action\": \"resume\"}} ends it sooner",
        req.reason
    );
    Ok(Report::new(
        Outcome::Paused,
        &req.incident,
        reason,
        log.into_records(),
    ))
}

/// Ends `group`'s pause now.
pub async fn resume(
    book: Option<&dyn PauseBook>,
    group: &str,
    (incident, reason): (&str, &str),
) -> Result<Report, FailoverError> {
    let book = book.ok_or_else(needs_table)?;
    let t = Instant::now();
    let was = book
        .clear_pause(group)
        .await
        .map_err(FailoverError::during(Step::Pause, format!("pause#{group}")))?;
    let (status, detail) = if was {
        (StepStatus::Done, "pause ended: jobs change the group again")
    } else {
        (StepStatus::AlreadyDone, "the group was not paused")
    };
    let mut log = StepLog::new();
    log.record(Step::Pause, status, detail, t);
    let reason = format!("{reason}; {detail}");
    Ok(Report::new(
        Outcome::Resumed,
        incident,
        reason,
        log.into_records(),
    ))
}

/// The group's pause, when one is in force at `now`. A pause that cannot be
/// read is not in force (the lease, read next, tells whether the table works).
pub async fn active(
    book: Option<&dyn PauseBook>,
    group: &str,
    now: DateTime<Utc>,
) -> Option<Pause> {
    match book?.pause(group).await {
        Ok(p) => p.filter(|p| p.until > now),
        Err(e) => {
            tracing::warn!(error = %e, "the group's pause could not be read; acting as not paused");
            None
        }
    }
}

/// What a paused job's report says: its reason begins with the pause, and a
/// `pause` step names it (`warn` in a preflight, `skipped` elsewhere).
pub fn held(mut report: Report, pause: &Pause) -> Report {
    let detail = format!(
        "paused until {} ({}, by request {}): nothing was changed",
        at(pause.until),
        pause.reason,
        pause.by
    );
    let status = if report.outcome == Outcome::Preflight {
        StepStatus::Warn
    } else {
        StepStatus::Skipped
    };
    let mut log = StepLog::new();
    log.record(Step::Pause, status, &detail, Instant::now());
    report.steps.splice(0..0, log.into_records());
    report.reason = format!("{detail}; {}", report.reason);
    report
}
