//! What follows what, declared once: after a failover the fence (a replaced
//! instance must not run again) and the standby's upkeep (a promoted standby
//! is the appliance now, and a new one is needed elsewhere); after a snapshot
//! the upkeep (a new AMI supersedes the standby); in every reconcile both,
//! whatever the alarm said. The handler runs every failover, snapshot and
//! reconcile through here, so a failover ends the same way whether an
//! alarm's event, an operator or a reconcile started it.
//!
//! One error policy for every follow-up: its failure is a failed step in the
//! report and counts in the metrics (`FollowUpsFailed`); it never hides the
//! main job's outcome and never skips the next follow-up. A fence that can
//! never succeed (a permission missing) would otherwise fail every reconcile
//! and starve the standby of its upkeep; the next reconcile tries again.
//!
//! This is the one module that composes jobs (`src/layers.rs` allows it and
//! nothing else): the jobs themselves stay siblings. Every job of a chain
//! runs on the same [`Context`]: one executor, one clock, one deadline.

use std::time::Instant;

use crate::cloud::Cloud;
use crate::engine::Context;
use crate::error::FailoverError;
use crate::jobs::failover::{self, FailoverRequest};
use crate::jobs::reconcile::{self, ReconcileRequest, Verdict};
use crate::jobs::snapshot::{self, SnapshotRequest};
use crate::jobs::{fence, standby};
use crate::report::{Outcome, Report, StepLog, StepStatus};
use crate::step::Step;

/// A job that runs after another, on the same executor and clock, to keep
/// up with what the other changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Stop replaced instances that run again.
    Fence,
    /// Keep the standby ready (`STANDBY=warm|hot`), without waiting for a
    /// new one to run.
    Standby,
}

impl FollowUp {
    /// The step this follow-up records, and its failure is recorded as.
    pub fn step(self) -> Step {
        match self {
            Self::Fence => Step::Fence,
            Self::Standby => Step::Standby,
        }
    }
}

/// When a follow-up runs, judged by the report as the job and the
/// follow-ups before it left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Not after a job that stood down (`ignored`): nothing changed that
    /// needs keeping up with.
    UnlessIgnored,
}

/// Follow-ups, in the order they run.
#[derive(Debug, Clone, Copy)]
pub struct Chain(pub &'static [(FollowUp, When)]);

/// After a failover: the fence, then the upkeep (unless the failover stood
/// down: Route 53 saw the appliance healthy, nothing moved).
pub const AFTER_FAILOVER: Chain = Chain(&[
    (FollowUp::Fence, When::Always),
    (FollowUp::Standby, When::UnlessIgnored),
]);

/// After a snapshot: the upkeep, which moves the standby to the new AMI.
pub const AFTER_SNAPSHOT: Chain = Chain(&[(FollowUp::Standby, When::Always)]);

/// In every reconcile, after the failover the alarm called for, if any.
pub const IN_RECONCILE: Chain = Chain(&[
    (FollowUp::Fence, When::Always),
    (FollowUp::Standby, When::Always),
]);

/// A failover, then [`AFTER_FAILOVER`].
pub async fn failover<C: Cloud>(
    ctx: &Context<'_, C>,
    req: &FailoverRequest,
) -> Result<Report, FailoverError> {
    AFTER_FAILOVER.after(ctx, failover::run(ctx, req)).await
}

/// A snapshot, then [`AFTER_SNAPSHOT`].
pub async fn snapshot<C: Cloud>(
    ctx: &Context<'_, C>,
    req: &SnapshotRequest,
) -> Result<Report, FailoverError> {
    AFTER_SNAPSHOT.after(ctx, snapshot::run(ctx, req)).await
}

/// A reconcile: what the alarm says and the failover it calls for, then
/// [`IN_RECONCILE`].
pub async fn reconcile<C: Cloud>(
    ctx: &Context<'_, C>,
    req: &ReconcileRequest,
) -> Result<Report, FailoverError> {
    IN_RECONCILE.after(ctx, follow_the_alarm(ctx, req)).await
}

/// The reconcile's own part: the alarm's look and the failover it calls for
/// (under the incident the alarm's own event names); their failure is the
/// reconcile's.
async fn follow_the_alarm<C: Cloud>(
    ctx: &Context<'_, C>,
    req: &ReconcileRequest,
) -> Result<Report, FailoverError> {
    let mut log = StepLog::new();
    let verdict = reconcile::look(ctx, &mut log).await?;
    Ok(match verdict {
        Verdict::Failover {
            incident,
            reason,
            began,
        } => {
            let failover = FailoverRequest::on_alarm(incident, reason, began, ctx.settings);
            after_the_look(ctx, log, &failover).await?
        }
        Verdict::Finish {
            incident,
            reason,
            began,
        } => {
            let failover = FailoverRequest::finishing(incident, reason, began);
            after_the_look(ctx, log, &failover).await?
        }
        Verdict::Nothing(why) => {
            let mut report = Report::ignored(req.incident.clone(), why);
            report.steps = log.into_records();
            report
        }
    })
}

/// The failover the reconcile's look called for, its steps after the look's.
async fn after_the_look<C: Cloud>(
    ctx: &Context<'_, C>,
    log: StepLog,
    failover: &FailoverRequest,
) -> Result<Report, FailoverError> {
    let report = Box::pin(failover::run(ctx, failover)).await?;
    let mut steps = log.into_records();
    steps.extend(report.steps);
    Ok(Report { steps, ..report })
}

impl Chain {
    /// The job, then its follow-ups; the job's failure is the chain's.
    async fn after<C: Cloud>(
        &self,
        ctx: &Context<'_, C>,
        job: impl Future<Output = Result<Report, FailoverError>>,
    ) -> Result<Report, FailoverError> {
        let mut report = Box::pin(job).await?;
        Box::pin(self.run(ctx, &mut report)).await;
        Ok(report)
    }

    /// Runs every follow-up whose time has come, each recording its steps in
    /// `report`. A failure is recorded (a failed step, and in
    /// `failed_follow_ups` for the metrics) and the next follow-up runs.
    pub async fn run<C: Cloud>(&self, ctx: &Context<'_, C>, report: &mut Report) {
        for &(follow_up, when) in self.0 {
            if when == When::UnlessIgnored && report.outcome == Outcome::Ignored {
                continue;
            }
            let mut log = StepLog::new();
            let t = Instant::now();
            let ran = match follow_up {
                FollowUp::Fence => fence(ctx, &mut log, report).await,
                FollowUp::Standby => standby::after(ctx, report.outcome, &mut log).await,
            };
            if let Err(e) = ran {
                let step = follow_up.step();
                tracing::warn!(follow_up = %step, error = %e,
                    "a follow-up failed; the job's outcome stands, the next run tries again");
                if !log.records().iter().any(|r| r.status == StepStatus::Failed) {
                    log.record(step, StepStatus::Failed, e.to_string(), t);
                }
                report.failed_follow_ups.push(step);
            }
            report.steps.extend(log.into_records());
        }
    }
}

/// The fence, into `log`; a fence that stopped something while nothing else
/// changed makes the outcome `fenced`.
async fn fence<C: Cloud>(
    ctx: &Context<'_, C>,
    log: &mut StepLog,
    report: &mut Report,
) -> Result<(), FailoverError> {
    fence::run(ctx, log).await?;
    let acted = log
        .records()
        .iter()
        .any(|r| r.kind.is_change() && matches!(r.status, StepStatus::Done | StepStatus::Planned));
    if acted
        && matches!(
            report.outcome,
            Outcome::Ignored | Outcome::AlreadyFailedOver
        )
    {
        report.outcome = ctx.exec.outcome(Outcome::Fenced);
    }
    Ok(())
}
