//! The failover pipeline: discover → assess → stop + launch → wait → re-point.
//!
//! Every step is a reconcile: it looks at the world and acts only when the world
//! is not yet as wanted, so running the same incident again (SNS redelivery,
//! Lambda retry, a crash halfway) resumes instead of duplicating. The incident
//! id is the RunInstances ClientToken and a tag on the replacement, which is how
//! a later run recognises the replacement as its own.
//!
//! Round trips: one round of concurrent describes, then StopInstances and
//! RunInstances together, a few DescribeInstances while the replacement starts,
//! then source/dest check, floating IP and routes together.

pub mod discover;
pub mod plan;
pub mod steps;

use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::cloud::Ec2;
use crate::config::Settings;
use crate::error::FailoverError;
use crate::report::{Outcome, Report, StepLog, StepStatus};
use plan::{Situation, candidate_subnets, launch_request, newest_image, post_launch};

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
}

/// Runs (or, in a dry run, plans) one failover.
pub async fn run<E: Ec2>(
    ec2: &E,
    settings: &Settings,
    req: &FailoverRequest,
) -> Result<Report, FailoverError> {
    let mut log = StepLog::new(&req.incident);

    let t = Instant::now();
    let world = discover::discover(ec2, settings).await?;
    log.record("discover", StepStatus::Done, world.summary(), t);

    let t = Instant::now();
    let situation = plan::assess(&world, settings, &req.incident, req.now)?;
    log.record("assess", StepStatus::Done, situation.describe(), t);

    let deferred;
    let (replacement, failed_id, image) = match &situation {
        Situation::Fresh { failed } => {
            // Everything the launch needs is settled before anything is changed.
            let image = newest_image(&world.images).ok_or_else(|| FailoverError::Missing {
                what: format!(
                    "no available AMI owned by this account is tagged Name={} (AMI_NAME)",
                    settings.ami_name
                ),
            })?;
            let subnets = candidate_subnets(&world.subnets, &failed.availability_zone);
            let subnet = subnets.first().ok_or_else(|| FailoverError::Missing {
                what: format!(
                    "no subnet tagged Name={} (SUBNET_NAME) in {} lies outside {}, the failed instance's AZ",
                    settings.subnet_name, world.vpc_id, failed.availability_zone
                ),
            })?;
            let launch = launch_request(
                failed,
                image,
                subnet,
                world.security_group_ids.as_deref(),
                &req.incident,
            );

            if req.dry_run {
                steps::stop_failed(ec2, Some(failed), Some(&failed.id), true, &mut log).await;
                let detail = format!(
                    "RunInstances {} {} in {} ({}) groups [{}] ClientToken={}",
                    launch.image_id,
                    launch.instance_type,
                    subnet.id,
                    subnet.availability_zone,
                    launch.security_group_ids.join(", "),
                    launch.client_token
                );
                log.record(steps::LAUNCH, StepStatus::Planned, detail, Instant::now());
                let planned =
                    post_launch(&world, settings, "(replacement)", None, Some(&failed.id));
                steps::apply_all(ec2, planned, true, &mut log).await?;
                return Ok(finish(
                    req,
                    &situation,
                    Outcome::Planned,
                    Some(failed.id.clone()),
                    None,
                    Some(subnet.availability_zone.clone()),
                    Some(image.id.clone()),
                    log,
                ));
            }

            // The replacement does not need the failed instance to be stopped
            // first (in an AZ outage it may never stop), so both go at once.
            let t = Instant::now();
            let (stop_error, launched) = tokio::join!(
                async {
                    let mut stop_log = StepLog::new(&req.incident);
                    let e = steps::stop_failed(
                        ec2,
                        Some(failed),
                        Some(&failed.id),
                        false,
                        &mut stop_log,
                    )
                    .await;
                    (e, stop_log)
                },
                ec2.run_instance(&launch),
            );
            let (stop_error, stop_log) = stop_error;
            log.absorb(stop_log);
            deferred = stop_error;
            let replacement = match launched {
                Ok(r) => r,
                Err(e) => {
                    log.record(steps::LAUNCH, StepStatus::Failed, e.to_string(), t);
                    return Err(FailoverError::Aws {
                        step: steps::LAUNCH,
                        resource: format!("{} in {}", launch.image_id, subnet.id),
                        source: e,
                    });
                }
            };
            let detail = format!(
                "{} from {} ({}) in {} ({}), replacing {}",
                replacement.id,
                image.id,
                image.name.as_deref().unwrap_or("unnamed"),
                subnet.id,
                subnet.availability_zone,
                failed.id
            );
            log.record(steps::LAUNCH, StepStatus::Done, detail, t);
            (replacement, Some(failed.id.clone()), Some(image.id.clone()))
        }
        Situation::Continue {
            replacement,
            failed,
            failed_id,
            ..
        } => {
            deferred = steps::stop_failed(
                ec2,
                failed.as_ref(),
                failed_id.as_deref(),
                req.dry_run,
                &mut log,
            )
            .await;
            let detail = format!(
                "{} ({}) in {} was launched by incident {}",
                replacement.id,
                replacement.state.as_str(),
                replacement.availability_zone,
                replacement
                    .tag(crate::cloud::TAG_INCIDENT)
                    .unwrap_or("unknown")
            );
            log.record(
                steps::LAUNCH,
                StepStatus::AlreadyDone,
                detail,
                Instant::now(),
            );
            (
                (**replacement).clone(),
                failed_id.clone(),
                replacement.image_id.clone(),
            )
        }
    };

    let replacement = if req.dry_run {
        replacement
    } else {
        steps::wait_until_running(ec2, replacement, req.deadline, &mut log).await?
    };
    let planned = post_launch(
        &world,
        settings,
        &replacement.id,
        Some(&replacement),
        failed_id.as_deref(),
    );
    steps::apply_all(ec2, planned, req.dry_run, &mut log).await?;
    if let Some(e) = deferred {
        let report = serde_json::to_string(log.records()).unwrap_or_default();
        tracing::error!(incident = %req.incident, steps = %report, "failover moved the appliance but could not stop the failed instance");
        return Err(e);
    }

    let outcome = if req.dry_run {
        Outcome::Planned
    } else if log
        .records()
        .iter()
        .any(|r| r.status == StepStatus::Done && is_change(&r.step))
    {
        Outcome::FailedOver
    } else {
        Outcome::AlreadyFailedOver
    };
    Ok(finish(
        req,
        &situation,
        outcome,
        failed_id,
        Some(replacement.id.clone()),
        Some(replacement.availability_zone.clone()),
        image,
        log,
    ))
}

/// Steps that change the world (as opposed to looking at it).
fn is_change(step: &str) -> bool {
    !matches!(step, "discover" | "assess" | steps::WAIT)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    req: &FailoverRequest,
    situation: &Situation,
    outcome: Outcome,
    old_instance: Option<String>,
    new_instance: Option<String>,
    availability_zone: Option<String>,
    image: Option<String>,
    log: StepLog,
) -> Report {
    let report = Report {
        outcome,
        incident: req.incident.clone(),
        old_instance,
        new_instance,
        availability_zone,
        image,
        reason: format!("{}; {}", req.reason, situation.describe()),
        steps: log.into_records(),
    };
    tracing::info!(
        incident = %report.incident,
        outcome = ?report.outcome,
        old_instance = report.old_instance.as_deref().unwrap_or("-"),
        new_instance = report.new_instance.as_deref().unwrap_or("-"),
        "failover finished"
    );
    report
}
