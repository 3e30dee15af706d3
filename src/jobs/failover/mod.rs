//! The failover job: look → assess → gates → stop + launch → wait → re-point.
//!
//! Every step is a reconcile: it looks at the world and acts only when the world
//! is not yet as wanted, so running the same incident again (SNS redelivery,
//! Lambda retry, a crash halfway) resumes instead of duplicating. The incident
//! id is the RunInstances ClientToken and a tag on the replacement, which is how
//! a later run recognises the replacement as its own.
//!
//! Gates apply only before a new launch, never to a resumed one: Route 53 must
//! still see the appliance unhealthy (`HEALTH_CHECK_ID`), and the flap guard
//! must allow another failover. A resumed incident was already past both.
//!
//! The job runs in two rounds of plan and execute, because the network steps
//! are decided against the replacement as it is once running: one round of
//! concurrent describes (plus the health-check status), then StopInstances and
//! RunInstances together, a few DescribeInstances while the replacement
//! starts, then source/dest check, floating IP, routes and DNS together.

mod gates;
pub mod look;
pub mod plan;
mod wait;

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::cloud::{Cloud, Instance};
use crate::config::Settings;
use crate::engine::{Applied, Executor, Step};
use crate::error::FailoverError;
use crate::lookup::image_age;
use crate::report::{Outcome, Report, StepLog, StepStatus};
use look::World;
use plan::{LaunchPlan, Situation, post_launch};

/// One failover request, as the handler derived it from the trigger.
#[derive(Debug, Clone)]
pub struct FailoverRequest {
    pub incident: String,
    /// Why the failover runs (the alarm's reason, the operator's words).
    pub reason: String,
    pub dry_run: bool,
    /// When the invocation must have returned.
    pub deadline: Option<Instant>,
    pub now: DateTime<Utc>,
    /// Ask Route 53 about this health check before launching (alarm triggers).
    pub confirm_with: Option<String>,
}

/// What the report says besides the steps.
#[derive(Debug, Default)]
struct Summary {
    old_instance: Option<String>,
    new_instance: Option<String>,
    availability_zone: Option<String>,
    image: Option<String>,
    why: String,
}

/// Runs (or, through a dry-run executor, plans) one failover.
pub async fn run<C: Cloud>(
    cloud: &C,
    exec: &Executor<'_, C>,
    settings: &Settings,
    req: &FailoverRequest,
) -> Result<Report, FailoverError> {
    let mut log = StepLog::new();
    let (world, situation, confirmation) = look_and_assess(cloud, settings, req, &mut log).await?;
    let gate = gates::pass(
        &world,
        settings,
        &situation,
        confirmation,
        req.now,
        &mut log,
    )?;
    if let Some(healthy) = gate {
        let summary = Summary {
            old_instance: situation.failed_id(),
            why: healthy,
            ..Summary::default()
        };
        return Ok(report(req, Outcome::Ignored, summary, &world, log));
    }
    let launch = plan::launch_plan(&world, settings, &situation, &req.incident, req.now)?;
    let (replacement, stop_error) =
        stop_and_launch(cloud, exec, &situation, &launch, req, &mut log).await?;
    let id = replacement
        .as_ref()
        .map_or("(replacement)", |r| r.id.as_str());
    let failed_id = situation.failed_id();
    let network = post_launch(
        &world,
        settings,
        id,
        replacement.as_ref(),
        failed_id.as_deref(),
    );
    exec.all(&network, &mut log).await?;
    if let Some(e) = stop_error {
        let steps = serde_json::to_string(log.records()).unwrap_or_default();
        tracing::error!(steps = %steps, "the appliance moved, but the failed instance could not be stopped");
        return Err(e);
    }
    let done = if log.changed() {
        Outcome::FailedOver
    } else {
        Outcome::AlreadyFailedOver
    };
    let summary = Summary {
        old_instance: failed_id,
        availability_zone: replacement
            .as_ref()
            .map(|r| r.availability_zone.clone())
            .or(launch.availability_zone),
        new_instance: replacement.map(|r| r.id),
        image: launch.image,
        why: situation.describe(),
    };
    Ok(report(req, exec.outcome(done), summary, &world, log))
}

/// One round of looks (with Route 53's view, for an alarm), then where this
/// incident stands.
async fn look_and_assess<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    req: &FailoverRequest,
    log: &mut StepLog,
) -> Result<(World, Situation, gates::Confirmation), FailoverError> {
    let t = Instant::now();
    let (world, confirmation) = tokio::join!(look::look(cloud, settings), async {
        match &req.confirm_with {
            Some(id) => Some((id.clone(), cloud.health_check_status(id).await)),
            None => None,
        }
    });
    let world = world?;
    log.record(Step::Discover, StepStatus::Done, world.summary(), t);
    let t = Instant::now();
    let situation = plan::assess(&world, settings, &req.incident, req.now)?;
    log.record(Step::Assess, StepStatus::Done, situation.describe(), t);
    Ok((world, situation, confirmation))
}

/// Stops the failed instance and launches the replacement at once: the
/// replacement does not need the stop (in an AZ outage it may never finish).
/// Returns the replacement once running (none in a dry run), and the stop's
/// error, reported only after the appliance has moved.
async fn stop_and_launch<C: Cloud>(
    cloud: &C,
    exec: &Executor<'_, C>,
    situation: &Situation,
    launch: &LaunchPlan,
    req: &FailoverRequest,
    log: &mut StepLog,
) -> Result<(Option<Instance>, Option<FailoverError>), FailoverError> {
    let mut results = exec
        .each(&[launch.stop.clone(), launch.launch.clone()], log)
        .await;
    let launched = results.pop().unwrap_or(Ok(Applied::Nothing))?;
    let stop_error = results.pop().and_then(Result::err);
    let replacement = match (launched, situation) {
        (Applied::Launched(instance), _) => Some(*instance),
        (_, Situation::Continue { replacement, .. }) => Some((**replacement).clone()),
        _ => None,
    };
    let running = match replacement {
        Some(r) => Some(wait::until_running(cloud, r, req.deadline, log).await?),
        None => None,
    };
    Ok((running, stop_error))
}

fn report(
    req: &FailoverRequest,
    outcome: Outcome,
    summary: Summary,
    world: &World,
    log: StepLog,
) -> Report {
    let created = summary
        .image
        .as_deref()
        .and_then(|id| world.images.iter().find(|i| i.id == id))
        .and_then(|i| i.creation_date);
    let used = summary.image.as_ref().map(|id| match created {
        Some(c) => format!(
            "AMI {id} created {} ({})",
            c.to_rfc3339_opts(SecondsFormat::Secs, true),
            image_age(c, req.now)
        ),
        None => format!("AMI {id} (creation time unknown)"),
    });
    let why = match (outcome, used) {
        (Outcome::Ignored, _) | (_, None) => summary.why,
        (_, Some(used)) => format!("{}; {used}", summary.why),
    };
    let report = Report {
        outcome,
        incident: req.incident.clone(),
        old_instance: summary.old_instance,
        new_instance: summary.new_instance,
        availability_zone: summary.availability_zone,
        image_created: created.map(|c| c.to_rfc3339_opts(SecondsFormat::Secs, true)),
        image: summary.image,
        reason: format!("{}; {why}", req.reason),
        steps: log.into_records(),
    };
    tracing::info!(
        outcome = ?report.outcome,
        old_instance = report.old_instance.as_deref().unwrap_or("-"),
        new_instance = report.new_instance.as_deref().unwrap_or("-"),
        "failover finished"
    );
    report
}
