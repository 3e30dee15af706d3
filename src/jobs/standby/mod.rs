//! The standby (`STANDBY=warm|hot`): a second instance of the appliance kept
//! ready in another AZ, so that a failover starts it (warm) or only moves the
//! network to it (hot) instead of launching from the AMI.
//!
//! The upkeep is level-triggered like the rest: look → plan → execute. It runs
//! for `{"action": "standby"}`, and as a follow-up ([`crate::jobs::chain`])
//! after the snapshot schedule (a new AMI supersedes the standby), at the end
//! of every reconcile and after every failover (the promoted standby is the
//! appliance now; a new one is needed in another AZ). With `STANDBY=cold`
//! only the explicit action runs it, to retire standbys left from a warmer
//! mode; the schedules then cost nothing.

pub mod plan;

use std::time::Instant;

use crate::cloud::{Cloud, Instance, InstanceState};
use crate::config::{Settings, Standby};
use crate::engine::{Applied, Context, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup::{Inherited, World, inherit, wait, world};
use crate::replacement::failed_instance;
use crate::report::{Outcome, Report, StepLog, StepStatus};

/// `{"action": "standby"}` for one group.
#[derive(Debug, Clone)]
pub struct StandbyRequest {
    pub incident: String,
    pub reason: String,
}

/// `{"action": "standby"}`: the upkeep, waiting for a new standby to run
/// (to stop it, warm) while the invocation has time.
pub async fn run<C: Cloud>(
    ctx: &Context<'_, C>,
    req: &StandbyRequest,
) -> Result<Report, FailoverError> {
    let mut log = StepLog::new();
    upkeep(ctx, Wait::ForANewStandby, &mut log).await?;
    let mode = ctx.settings.failover.standby.as_str();
    let reason = format!("{}; STANDBY={mode}", req.reason);
    let outcome = ctx.exec.outcome(Outcome::StandbyKept);
    let report = Report::new(outcome, &req.incident, reason, log.into_records());
    tracing::info!(outcome = ?report.outcome, "standby upkeep finished");
    Ok(report)
}

/// Whether the upkeep waits for a standby on its way up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// To stop it (warm) or retire what it supersedes: the explicit action.
    ForANewStandby,
    /// The next run does that: a follow-up of another job never waits.
    No,
}

/// Looks, plans and carries out the upkeep, recording every step in `log`.
/// A standby still starting is waited for (when asked) and looked at once more.
pub async fn upkeep<C: Cloud>(
    ctx: &Context<'_, C>,
    waits: Wait,
    log: &mut StepLog,
) -> Result<(), FailoverError> {
    let (cloud, settings) = (ctx.cloud(), ctx.settings);
    for round in 0..2 {
        let t = Instant::now();
        let world = world::look(cloud, settings).await?;
        let Some(appliance) = running_appliance(&world, settings, log, t)? else {
            return Ok(());
        };
        let steps = plan_for(ctx, &world, appliance).await?;
        let applied = ctx.exec.in_order(&steps, log).await?;
        match starting(&world, settings, appliance, applied) {
            Some(standby) if waits == Wait::ForANewStandby && round == 0 => {
                wait::until_running(cloud, standby, ctx.deadline(), log).await?;
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// The appliance the standby backs up, when it runs. A stopped or missing
/// appliance (a failover under way, an operator's maintenance) leaves the
/// standby alone: it may be what the next failover needs.
fn running_appliance<'a>(
    world: &'a World,
    settings: &Settings,
    log: &mut StepLog,
    t: Instant,
) -> Result<Option<&'a Instance>, FailoverError> {
    let mode = settings.failover.standby;
    let appliance = match failed_instance(world, settings) {
        Ok(a) => a,
        Err(FailoverError::Missing { what }) => {
            let detail = format!("STANDBY={}: standby left as it is: {what}", mode.as_str());
            log.record(Step::Standby, StepStatus::Skipped, detail, t);
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let standbys: Vec<String> = world
        .standbys
        .iter()
        .map(|s| format!("{} ({}, {})", s.id, s.state.as_str(), s.availability_zone))
        .collect();
    let seen = format!(
        "STANDBY={}: appliance {} ({}, {}); standby [{}]",
        mode.as_str(),
        appliance.id,
        appliance.state.as_str(),
        appliance.availability_zone,
        standbys.join(", ")
    );
    if appliance.state != InstanceState::Running && mode != Standby::Cold {
        let detail = format!("{seen}; the appliance is not running, the standby is left as it is");
        log.record(Step::Standby, StepStatus::Skipped, detail, t);
        return Ok(None);
    }
    log.record(Step::Standby, StepStatus::Done, seen, t);
    Ok(Some(appliance))
}

/// The plan, reading what a new standby inherits only when one is launched.
async fn plan_for<C: Cloud>(
    ctx: &Context<'_, C>,
    world: &World,
    appliance: &Instance,
) -> Result<Vec<PlannedStep>, FailoverError> {
    let settings = ctx.settings;
    let launches = settings.failover.standby != Standby::Cold
        && plan::keeper(world, settings, appliance).is_none();
    let inherited = match launches {
        true => inherit::read(ctx.cloud(), appliance).await?,
        false => Inherited::default(),
    };
    plan::upkeep(world, settings, appliance, &inherited, ctx.now)
}

/// The standby on its way up after this round: the one just launched, or
/// the keeper still pending (a dry run only looks at it).
fn starting(
    world: &World,
    settings: &Settings,
    appliance: &Instance,
    applied: Vec<Applied>,
) -> Option<Instance> {
    let launched = applied.into_iter().find_map(|a| match a {
        Applied::Launched(i) => Some(*i),
        _ => None,
    });
    launched.or_else(|| {
        plan::keeper(world, settings, appliance)
            .filter(|k| k.state == InstanceState::Pending)
            .cloned()
    })
}

/// The upkeep as a follow-up of another job (failover, reconcile, snapshot;
/// see [`crate::jobs::chain`], which records a failure without failing the
/// job): nothing with `STANDBY=cold` or after a dry run's plan (`outcome`
/// is the job's).
pub async fn after<C: Cloud>(
    ctx: &Context<'_, C>,
    outcome: Outcome,
    log: &mut StepLog,
) -> Result<(), FailoverError> {
    if ctx.settings.failover.standby == Standby::Cold || outcome == Outcome::Planned {
        return Ok(());
    }
    upkeep(ctx, Wait::No, log).await
}
