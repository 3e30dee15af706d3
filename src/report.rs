//! The JSON report an invocation returns, and the per-step log lines behind it.
//!
//! Each step is recorded once, with what it found or did, and logged as one
//! structured line at the same moment, so the log tells the story even when
//! the invocation dies before it can return its report.

use std::time::Instant;

use serde::Serialize;

use crate::step::Step;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// This invocation moved the appliance (or finished moving it).
    FailedOver,
    /// The work was already done; nothing needed changing.
    AlreadyFailedOver,
    /// The trigger does not call for action (alarm OK, ...).
    Ignored,
    /// Dry run: the steps say what would be done.
    Planned,
    /// An AMI of the appliance exists for this schedule slot (taken now or by
    /// an earlier delivery), and old ones were pruned.
    SnapshotTaken,
    /// The checker-range security group was reconciled (changed or already in step).
    RangesSynced,
    /// A replaced instance ran again and was stopped; nothing else changed.
    Fenced,
    /// The incident's floating IP, a route or the DNS record was moved by
    /// hand after its move: the incident is the operator's now, and the
    /// function stands down for it (nothing moved, nothing stopped).
    HandedOver,
    /// The standby was looked after (`{"action": "standby"}`): the steps say
    /// what it is and what was launched, started, stopped or retired.
    StandbyKept,
    /// A readiness checklist; nothing was changed (the steps say `ok`, `warn`
    /// or `failed`).
    Preflight,
    /// The group was paused (`{"action": "pause"}`): until it ends, every job
    /// reports what it would do and changes nothing.
    Paused,
    /// The group's pause was ended (`{"action": "resume"}`).
    Resumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// A preflight item that holds.
    Ok,
    /// A preflight item worth a look, which would not stop a failover.
    Warn,
    Done,
    AlreadyDone,
    Skipped,
    Planned,
    Failed,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Done => "done",
            Self::AlreadyDone => "already_done",
            Self::Skipped => "skipped",
            Self::Planned => "planned",
            Self::Failed => "failed",
        }
    }
}

/// Which planned move a failover is: one an operator or a schedule asked
/// for while all is well ([`crate::jobs::failover`]'s gates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedMove {
    /// Back to `HOME_AZ`.
    Failback,
    /// To another AZ, for practice.
    Drill,
}

impl PlannedMove {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failback => "failback",
            Self::Drill => "drill",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    /// What the report shows: the step's name, and its subject when it has one.
    pub step: String,
    /// The kind of step, for metrics and outcomes.
    #[serde(skip)]
    pub kind: Step,
    pub status: StepStatus,
    pub detail: String,
    pub ms: u64,
}

/// What one job of one group did. The instance and AMI fields are the
/// failover's (a snapshot names its AMI, a preflight the appliance); the
/// other jobs leave them `null`, which the JSON keeps: the report's shape is
/// the same for every job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    pub incident: String,
    pub old_instance: Option<String>,
    /// Where the replaced instance ran, when known.
    pub old_availability_zone: Option<String>,
    pub new_instance: Option<String>,
    pub availability_zone: Option<String>,
    pub image: Option<String>,
    /// When `image` was created (RFC 3339), so its age is plain to see.
    pub image_created: Option<String>,
    pub reason: String,
    /// A failover that moved the appliance: seconds from the incident's start
    /// (its alarm's transition to ALARM, or the operator's invoke) until the
    /// floating IP and routes served from the replacement.
    pub time_to_recover_s: Option<u64>,
    /// A planned move's kind (`failback`, `drill`); `null` for every other job.
    pub planned: Option<PlannedMove>,
    pub steps: Vec<StepRecord>,
    /// The follow-ups (fence, standby upkeep) that failed after the job:
    /// each is a failed step in `steps` too; counted in the metrics.
    #[serde(skip)]
    pub failed_follow_ups: Vec<Step>,
}

impl Report {
    /// A report naming no instance or AMI; a job that names one sets it.
    pub fn new(
        outcome: Outcome,
        incident: impl Into<String>,
        reason: impl Into<String>,
        steps: Vec<StepRecord>,
    ) -> Self {
        Self {
            outcome,
            incident: incident.into(),
            old_instance: None,
            old_availability_zone: None,
            new_instance: None,
            availability_zone: None,
            image: None,
            image_created: None,
            reason: reason.into(),
            time_to_recover_s: None,
            planned: None,
            steps,
            failed_follow_ups: Vec::new(),
        }
    }

    pub fn ignored(incident: impl Into<String>, reason: impl Into<String>) -> Self {
        let report = Self::new(Outcome::Ignored, incident, reason, Vec::new());
        tracing::info!(incident = %report.incident, reason = %report.reason, "ignored");
        report
    }

    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.step == name)
    }
}

/// Collects step records and logs each one as it is recorded. The incident
/// is not repeated on each line: the job's span carries it.
#[derive(Debug, Default)]
pub struct StepLog {
    records: Vec<StepRecord>,
}

impl StepLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(
        &mut self,
        kind: Step,
        status: StepStatus,
        detail: impl Into<String>,
        started: Instant,
    ) {
        self.record_on(kind, None, status, detail, started);
    }

    /// Records a step about one subject of several (a route, an AMI, ...).
    pub fn record_on(
        &mut self,
        kind: Step,
        subject: Option<&str>,
        status: StepStatus,
        detail: impl Into<String>,
        started: Instant,
    ) {
        let record = StepRecord {
            step: match subject {
                Some(s) => format!("{kind} {s}"),
                None => kind.as_str().to_owned(),
            },
            kind,
            status,
            detail: detail.into(),
            ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        if status == StepStatus::Failed {
            tracing::warn!(step = %record.step, status = status.as_str(),
                detail = %record.detail, ms = record.ms, "step");
        } else {
            tracing::info!(step = %record.step, status = status.as_str(),
                detail = %record.detail, ms = record.ms, "step");
        }
        self.records.push(record);
    }

    /// True when a step that changes the world was carried out.
    pub fn changed(&self) -> bool {
        self.records
            .iter()
            .any(|r| r.status == StepStatus::Done && r.kind.is_change())
    }

    /// Appends the records of a log kept by a concurrent branch.
    pub fn absorb(&mut self, other: StepLog) {
        self.records.extend(other.records);
    }

    pub fn records(&self) -> &[StepRecord] {
        &self.records
    }

    pub fn into_records(self) -> Vec<StepRecord> {
        self.records
    }
}
