//! The failover pipeline: discover → assess → gates → stop + launch → wait →
//! re-point.
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
//! Round trips: one round of concurrent describes (plus the health-check
//! status), then StopInstances and RunInstances together, a few
//! DescribeInstances while the replacement starts, then source/dest check,
//! floating IP and routes together.

pub mod discover;
pub mod plan;
pub mod steps;

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::cloud::{CheckerReport, Cloud, CloudError, Image, Instance, TAG_INCIDENT};
use crate::config::Settings;
use crate::error::FailoverError;
use crate::report::{Outcome, Report, StepLog, StepStatus};
use discover::World;
use plan::{
    LaunchAttempt, Situation, candidate_subnets, image_age, launch_attempts, launch_request,
    newest_image, post_launch, recent_failovers,
};

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

/// AWS error codes that mean "not here, not this type, right now".
const CAPACITY_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "Unsupported",
];

/// Runs (or, in a dry run, plans) one failover.
pub async fn run<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    req: &FailoverRequest,
) -> Result<Report, FailoverError> {
    let mut log = StepLog::new(&req.incident);

    let t = Instant::now();
    let (world, confirmation) = tokio::join!(discover::discover(cloud, settings), async {
        match &req.confirm_with {
            Some(id) => Some((id.clone(), cloud.health_check_status(id).await)),
            None => None,
        }
    });
    let world = world?;
    log.record("discover", StepStatus::Done, world.summary(), t);

    let t = Instant::now();
    let situation = plan::assess(&world, settings, &req.incident, req.now)?;
    log.record("assess", StepStatus::Done, situation.describe(), t);

    let (replacement, failed_id, image, deferred) = match &situation {
        Situation::Fresh { failed } => {
            if let Some(healthy) = confirm(confirmation, &mut log, t) {
                return Ok(finish(
                    req,
                    Outcome::Ignored,
                    Some(failed.id.clone()),
                    None,
                    None,
                    None,
                    &healthy,
                    log,
                ));
            }
            flap_guard(&world, settings, req.now, &mut log)?;
            match fresh(cloud, settings, req, &world, failed, &mut log).await? {
                Fresh::Planned(report) => return Ok(report),
                Fresh::Launched {
                    replacement,
                    image,
                    stop_error,
                } => (
                    *replacement,
                    Some(failed.id.clone()),
                    Some(image),
                    stop_error,
                ),
            }
        }
        Situation::Continue {
            replacement,
            failed,
            failed_id,
            ..
        } => {
            if confirmation.is_some() {
                let detail =
                    "resuming a failover already under way; confirmation only gates a new launch";
                log.record("confirm", StepStatus::Skipped, detail, Instant::now());
            }
            let stop_error = steps::stop_failed(
                cloud,
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
                replacement.tag(TAG_INCIDENT).unwrap_or("unknown")
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
                stop_error,
            )
        }
    };

    let replacement = if req.dry_run {
        replacement
    } else {
        steps::wait_until_running(cloud, replacement, req.deadline, &mut log).await?
    };
    let planned = post_launch(
        &world,
        settings,
        &replacement.id,
        Some(&replacement),
        failed_id.as_deref(),
    );
    steps::apply_all(cloud, planned, req.dry_run, &mut log).await?;
    if let Some(e) = deferred {
        let steps = serde_json::to_string(log.records()).unwrap_or_default();
        tracing::error!(incident = %req.incident, steps = %steps,
            "the appliance moved, but the failed instance could not be stopped");
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
    let used = image.map(|id| used_image(&world, id, req.now));
    let why = match &used {
        Some(u) => format!("{}; {}", situation.describe(), u.describe()),
        None => situation.describe(),
    };
    Ok(finish(
        req,
        outcome,
        failed_id,
        Some(replacement.id.clone()),
        Some(replacement.availability_zone.clone()),
        used,
        &why,
        log,
    ))
}

/// The AMI a replacement came from, as the report tells it.
#[derive(Debug, Clone)]
struct UsedImage {
    id: String,
    created: Option<DateTime<Utc>>,
    age: Option<String>,
}

impl UsedImage {
    fn describe(&self) -> String {
        match (&self.created, &self.age) {
            (Some(c), Some(age)) => format!(
                "launched from {} created {} ({age})",
                self.id,
                c.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            _ => format!("launched from {} (creation time unknown)", self.id),
        }
    }
}

fn used_image(world: &World, id: String, now: DateTime<Utc>) -> UsedImage {
    let created = world
        .images
        .iter()
        .find(|i| i.id == id)
        .and_then(|i| i.creation_date);
    UsedImage {
        age: created.map(|c| image_age(c, now)),
        created,
        id,
    }
}

/// Records what Route 53 said. Returns the reason to stand down when most
/// checkers see the appliance healthy again; a failed look does not block the
/// failover (the alarm already is Route 53's verdict).
fn confirm(
    confirmation: Option<(String, Result<CheckerReport, CloudError>)>,
    log: &mut StepLog,
    started: Instant,
) -> Option<String> {
    let (id, result) = confirmation?;
    match result {
        Ok(r) if r.mostly_healthy() => {
            let detail = format!(
                "{} of {} Route 53 checkers now report health check {id} healthy; not failing over",
                r.healthy, r.total
            );
            log.record("confirm", StepStatus::Done, detail.clone(), started);
            Some(detail)
        }
        Ok(r) => {
            let detail = format!(
                "failure confirmed: {} of {} Route 53 checkers report health check {id} healthy{}",
                r.healthy,
                r.total,
                r.sample_failure
                    .map(|s| format!(" (e.g. \"{s}\")"))
                    .unwrap_or_default()
            );
            log.record("confirm", StepStatus::Done, detail, started);
            None
        }
        Err(e) => {
            let detail = format!("could not ask Route 53 ({e}); acting on the alarm alone");
            log.record("confirm", StepStatus::Failed, detail, started);
            None
        }
    }
}

fn flap_guard(
    world: &World,
    settings: &Settings,
    now: DateTime<Utc>,
    log: &mut StepLog,
) -> Result<(), FailoverError> {
    let t = Instant::now();
    let recent = recent_failovers(world, now, settings.failover_window);
    let window_minutes = settings.failover_window.as_secs() / 60;
    let ids: Vec<&str> = recent.iter().map(|i| i.id.as_str()).collect();
    if recent.len() >= settings.max_failovers as usize {
        let e = FailoverError::FlapGuard {
            count: recent.len(),
            max: settings.max_failovers,
            window_minutes,
            instances: ids.join(", "),
        };
        log.record("flap_guard", StepStatus::Failed, e.to_string(), t);
        return Err(e);
    }
    let detail = format!(
        "{} of at most {} failovers in the last {window_minutes} min",
        recent.len(),
        settings.max_failovers
    );
    log.record("flap_guard", StepStatus::Done, detail, t);
    Ok(())
}

enum Fresh {
    Planned(Report),
    Launched {
        replacement: Box<Instance>,
        image: String,
        stop_error: Option<FailoverError>,
    },
}

/// A new failover: settle everything the launch needs before changing
/// anything, then stop the failed instance and launch the replacement at once.
async fn fresh<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    req: &FailoverRequest,
    world: &World,
    failed: &Instance,
    log: &mut StepLog,
) -> Result<Fresh, FailoverError> {
    let image = newest_image(&world.images).ok_or_else(|| FailoverError::Missing {
        what: format!(
            "no available AMI owned by this account is tagged Name={} (AMI_NAME)",
            settings.ami_name
        ),
    })?;
    let subnets = candidate_subnets(&world.subnets, &failed.availability_zone);
    let attempts = launch_attempts(
        &failed.instance_type,
        &subnets,
        &settings.fallback_instance_types,
    );
    let Some(first) = attempts.first() else {
        return Err(FailoverError::Missing {
            what: format!(
                "no subnet tagged Name={} (SUBNET_NAME) in {} lies outside {}, the failed instance's AZ",
                settings.subnet_name, world.vpc_id, failed.availability_zone
            ),
        });
    };
    let groups = world.security_group_ids.as_deref();

    if req.dry_run {
        steps::stop_failed(cloud, Some(failed), Some(&failed.id), true, log).await;
        let launch = launch_request(failed, image, (0, first), groups, &req.incident);
        let fallbacks: Vec<String> = attempts[1..]
            .iter()
            .map(|a| format!("{} in {}", a.instance_type, a.subnet.availability_zone))
            .collect();
        let detail = format!(
            "RunInstances {} {} in {} ({}) groups [{}] ClientToken={}{}",
            launch.image_id,
            launch.instance_type,
            first.subnet.id,
            first.subnet.availability_zone,
            launch.security_group_ids.join(", "),
            launch.client_token,
            if fallbacks.is_empty() {
                String::new()
            } else {
                format!("; if out of capacity: {}", fallbacks.join(", then "))
            }
        );
        log.record(steps::LAUNCH, StepStatus::Planned, detail, Instant::now());
        let planned = post_launch(world, settings, "(replacement)", None, Some(&failed.id));
        steps::apply_all(cloud, planned, true, log).await?;
        let reason = format!(
            "{} is the failed instance; the steps say what a failover would do",
            failed.id
        );
        let mut report_log = StepLog::new(&req.incident);
        std::mem::swap(&mut report_log, log);
        return Ok(Fresh::Planned(finish(
            req,
            Outcome::Planned,
            Some(failed.id.clone()),
            None,
            Some(first.subnet.availability_zone.clone()),
            Some(used_image(world, image.id.clone(), req.now)),
            &reason,
            report_log,
        )));
    }

    // The replacement does not need the failed instance stopped first (in an
    // AZ outage it may never stop), so both calls go at once.
    let t = Instant::now();
    let ((stop_error, stop_log), launched) = tokio::join!(
        async {
            let mut stop_log = StepLog::new(&req.incident);
            let e = steps::stop_failed(cloud, Some(failed), Some(&failed.id), false, &mut stop_log)
                .await;
            (e, stop_log)
        },
        launch_first_available(cloud, failed, image, &attempts, groups, &req.incident),
    );
    log.absorb(stop_log);
    match launched {
        Ok((replacement, attempt, passed_over)) => {
            let detail = format!(
                "{} ({}) from {} ({}, {}) in {} ({}), replacing {}{}",
                replacement.id,
                attempt.instance_type,
                image.id,
                image.name.as_deref().unwrap_or("unnamed"),
                image
                    .creation_date
                    .map(|c| image_age(c, req.now))
                    .unwrap_or_else(|| "creation time unknown".to_owned()),
                attempt.subnet.id,
                attempt.subnet.availability_zone,
                failed.id,
                if passed_over.is_empty() {
                    String::new()
                } else {
                    format!("; no capacity first for: {}", passed_over.join("; "))
                }
            );
            log.record(steps::LAUNCH, StepStatus::Done, detail, t);
            Ok(Fresh::Launched {
                replacement: Box::new(replacement),
                image: image.id.clone(),
                stop_error,
            })
        }
        Err(e) => {
            log.record(steps::LAUNCH, StepStatus::Failed, e.to_string(), t);
            Err(e)
        }
    }
}

/// Tries each launch attempt in order, moving on only when EC2 says it has no
/// capacity (or does not offer the type) there. Returns the replacement, the
/// attempt that worked, and what was passed over.
async fn launch_first_available<'a, C: Cloud>(
    cloud: &C,
    failed: &Instance,
    image: &Image,
    attempts: &'a [LaunchAttempt<'a>],
    groups: Option<&[String]>,
    incident: &str,
) -> Result<(Instance, &'a LaunchAttempt<'a>, Vec<String>), FailoverError> {
    let mut passed_over = Vec::new();
    for (n, attempt) in attempts.iter().enumerate() {
        let request = launch_request(failed, image, (n, attempt), groups, incident);
        match cloud.run_instance(&request).await {
            Ok(instance) => return Ok((instance, attempt, passed_over)),
            Err(e) if e.code().is_some_and(|c| CAPACITY_CODES.contains(&c)) => {
                tracing::warn!(incident, instance_type = %attempt.instance_type,
                    subnet = %attempt.subnet.id, error = %e, "no capacity; trying the next option");
                passed_over.push(format!(
                    "{} in {} ({})",
                    attempt.instance_type,
                    attempt.subnet.availability_zone,
                    e.code().unwrap_or_default()
                ));
            }
            Err(source) => {
                return Err(FailoverError::Aws {
                    step: steps::LAUNCH,
                    resource: format!(
                        "{} {} in {}",
                        request.image_id, request.instance_type, request.subnet_id
                    ),
                    source,
                });
            }
        }
    }
    Err(FailoverError::NoCapacity {
        tried: passed_over.join("; "),
    })
}

/// Steps that change the world (as opposed to looking at it).
fn is_change(step: &str) -> bool {
    !matches!(
        step,
        "discover" | "assess" | "confirm" | "flap_guard" | steps::WAIT
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    req: &FailoverRequest,
    outcome: Outcome,
    old_instance: Option<String>,
    new_instance: Option<String>,
    availability_zone: Option<String>,
    image: Option<UsedImage>,
    why: &str,
    log: StepLog,
) -> Report {
    let report = Report {
        outcome,
        incident: req.incident.clone(),
        old_instance,
        new_instance,
        availability_zone,
        image_created: image
            .as_ref()
            .and_then(|i| i.created)
            .map(|c| c.to_rfc3339_opts(SecondsFormat::Secs, true)),
        image: image.map(|i| i.id),
        reason: format!("{}; {why}", req.reason),
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
