//! The acting half of each step: the AWS calls, made only after planning said
//! they are needed, and recorded in the step log either way.

use std::time::{Duration, Instant};

use super::plan::{Change, Decision, PlannedStep};
use crate::cloud::{Cloud, CloudError, Instance, InstanceState};
use crate::error::FailoverError;
use crate::report::{StepLog, StepStatus};

/// How often to look at a replacement that is still starting.
pub const POLL_INTERVAL: Duration = Duration::from_secs(3);
/// Time kept back at the end of an invocation to record and return the result.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

pub const STOP: &str = "stop_failed_instance";
pub const LAUNCH: &str = "launch_replacement";
pub const WAIT: &str = "wait_for_replacement";

/// Stops the failed instance without waiting for it to reach `stopped`: in an AZ
/// outage it may never get there. Returns the error to report once the rest of
/// the failover is done, so a stop that fails never delays the replacement.
pub async fn stop_failed<E: Cloud>(
    ec2: &E,
    failed: Option<&Instance>,
    failed_id: Option<&str>,
    dry_run: bool,
    log: &mut StepLog,
) -> Option<FailoverError> {
    let started = Instant::now();
    let Some(failed) = failed else {
        let detail = match failed_id {
            Some(id) => format!("{id} no longer exists (terminated)"),
            None => "the replaced instance is not recorded".to_owned(),
        };
        log.record(STOP, StepStatus::AlreadyDone, detail, started);
        return None;
    };
    if !failed.state.is_live() {
        let detail = format!("{} is already {}", failed.id, failed.state.as_str());
        log.record(STOP, StepStatus::AlreadyDone, detail, started);
        return None;
    }
    if dry_run {
        let detail = format!("StopInstances {}", failed.id);
        log.record(STOP, StepStatus::Planned, detail, started);
        return None;
    }
    match ec2.stop_instance(&failed.id).await {
        Ok(()) => {
            let detail = format!("stop requested for {} (not waiting for it)", failed.id);
            log.record(STOP, StepStatus::Done, detail, started);
            None
        }
        Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => {
            let detail = format!("{} no longer exists", failed.id);
            log.record(STOP, StepStatus::AlreadyDone, detail, started);
            None
        }
        Err(e) => {
            log.record(STOP, StepStatus::Failed, e.to_string(), started);
            Some(FailoverError::Aws {
                step: STOP,
                resource: failed.id.clone(),
                source: e,
            })
        }
    }
}

/// Waits, within the invocation's deadline, until the replacement is `running`:
/// the floating IP can only be associated with a running instance.
pub async fn wait_until_running<E: Cloud>(
    ec2: &E,
    replacement: Instance,
    deadline: Option<Instant>,
    log: &mut StepLog,
) -> Result<Instance, FailoverError> {
    let started = Instant::now();
    let id = replacement.id.clone();
    let mut current = replacement;
    let mut polls = 0u32;
    loop {
        match current.state {
            InstanceState::Running => {
                let detail = format!(
                    "{id} is running in {} ({} look(s))",
                    current.availability_zone, polls
                );
                let status = if polls == 0 {
                    StepStatus::AlreadyDone
                } else {
                    StepStatus::Done
                };
                log.record(WAIT, status, detail, started);
                return Ok(current);
            }
            InstanceState::Pending | InstanceState::Unknown => {}
            other => {
                let detail = format!("{id} is {} instead of starting", other.as_str());
                log.record(WAIT, StepStatus::Failed, detail, started);
                return Err(FailoverError::ReplacementFailed {
                    instance: id,
                    state: other.as_str().to_owned(),
                });
            }
        }
        if polls > 0 {
            if let Some(deadline) = deadline
                && Instant::now() + POLL_INTERVAL + DEADLINE_MARGIN >= deadline
            {
                let detail = format!(
                    "{id} still {} after {}s",
                    current.state.as_str(),
                    started.elapsed().as_secs()
                );
                log.record(WAIT, StepStatus::Failed, detail.clone(), started);
                return Err(FailoverError::Deadline { step: WAIT, detail });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        polls += 1;
        match ec2.instance(&id).await {
            Ok(Some(latest)) => current = latest,
            // Not listed yet right after launch: keep waiting.
            Ok(None) => {}
            Err(e) if e.retryable => {
                tracing::warn!(instance = %id, error = %e, "describe failed while waiting; will look again");
            }
            Err(e) => {
                log.record(WAIT, StepStatus::Failed, e.to_string(), started);
                return Err(FailoverError::Aws {
                    step: WAIT,
                    resource: id,
                    source: e,
                });
            }
        }
    }
}

async fn apply<E: Cloud>(ec2: &E, change: &Change) -> Result<(), CloudError> {
    match change {
        Change::DisableSourceDestCheck { instance } => {
            ec2.disable_source_dest_check(instance).await
        }
        Change::MoveFloatingIp {
            allocation_id, to, ..
        } => ec2.associate_address(allocation_id, to).await,
        Change::CreateRoute {
            table,
            destination,
            to,
        } => ec2.create_route(table, destination, to).await,
        Change::ReplaceRoute {
            table,
            destination,
            to,
            ..
        } => ec2.replace_route(table, destination, to).await,
        Change::UpsertRecord {
            zone_id,
            name,
            ttl,
            to,
            ..
        } => ec2.upsert_a_record(zone_id, name, *ttl, to).await,
    }
}

fn resource_of(change: &Change) -> String {
    match change {
        Change::DisableSourceDestCheck { instance } => instance.clone(),
        Change::MoveFloatingIp {
            allocation_id,
            public_ip,
            ..
        } => format!("{public_ip} ({allocation_id})"),
        Change::CreateRoute {
            table, destination, ..
        }
        | Change::ReplaceRoute {
            table, destination, ..
        } => format!("{table} {destination}"),
        Change::UpsertRecord { zone_id, name, .. } => format!("{name} in {zone_id}"),
    }
}

fn step_name(step: &str) -> &'static str {
    match step {
        "source_dest_check" => "source_dest_check",
        "floating_ip" => "floating_ip",
        "dns_record" => "dns_record",
        _ => "route",
    }
}

/// Carries out the post-launch steps. They do not depend on each other, so
/// their calls run concurrently; every outcome is recorded, and the first
/// failure is returned after all of them have finished.
pub async fn apply_all<E: Cloud>(
    ec2: &E,
    steps: Vec<PlannedStep>,
    dry_run: bool,
    log: &mut StepLog,
) -> Result<(), FailoverError> {
    let started = Instant::now();
    let mut calls = Vec::new();
    for s in steps {
        match s.decision {
            Decision::AlreadyDone(detail) => {
                log.record(s.step, StepStatus::AlreadyDone, detail, started)
            }
            Decision::LeaveAlone(detail) => {
                log.record(s.step, StepStatus::Skipped, detail, started)
            }
            Decision::Make(change) if dry_run => {
                log.record(s.step, StepStatus::Planned, change.describe(), started)
            }
            Decision::Make(change) => calls.push((s.step, change)),
        }
    }
    let results = futures::future::join_all(calls.iter().map(|(_, change)| async move {
        let t = Instant::now();
        (apply(ec2, change).await, t)
    }))
    .await;
    let mut first_error = None;
    for ((step, change), (result, t)) in calls.into_iter().zip(results) {
        match result {
            Ok(()) => log.record(step, StepStatus::Done, change.describe(), t),
            Err(e) => {
                log.record(
                    step.clone(),
                    StepStatus::Failed,
                    format!("{}: {e}", change.describe()),
                    t,
                );
                first_error.get_or_insert(FailoverError::Aws {
                    step: step_name(&step),
                    resource: resource_of(&change),
                    source: e,
                });
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
