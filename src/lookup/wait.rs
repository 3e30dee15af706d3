//! Waiting for a new instance (a replacement, a standby) to run: a look,
//! repeated within the invocation's deadline, because the floating IP can
//! only be associated with a running instance.

use std::time::{Duration, Instant};

use super::VolumeEncryption;
use crate::cloud::{Cloud, Instance, InstanceState, is_aws_managed_ebs_key};
use crate::error::FailoverError;
use crate::report::{StepLog, StepStatus};
use crate::step::Step;

/// How often to look at a replacement that is still starting. The time from
/// `running` to the next look is part of the time to recover (up to this
/// much, half on average), and a DescribeInstances of one id a second is far
/// below EC2's request rate limits.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Consecutive failed looks after which the wait gives up (retryably).
const MAX_FAILED_LOOKS: u32 = 3;
/// Looks that may still read `stopped` right after StartInstances: EC2 is
/// eventually consistent, and a describe may answer the state before the
/// start. Taking such a read for a failed start would launch a cold
/// replacement beside the standby that is starting: two appliances. Only a
/// standby still `stopped` after this many looks (seconds) failed to start.
const STALE_START_LOOKS: u32 = 20;
use crate::engine::DEADLINE_MARGIN;

/// Waits, within the invocation's deadline, until the replacement is `running`:
/// the floating IP can only be associated with a running instance.
pub async fn until_running<E: Cloud>(
    ec2: &E,
    replacement: Instance,
    deadline: Option<Instant>,
    log: &mut StepLog,
) -> Result<Instance, FailoverError> {
    let started = Instant::now();
    let id = replacement.id.clone();
    // Pending as far as we know: launched, or started by the promotion.
    let starting = replacement.state == InstanceState::Pending;
    let mut current = replacement;
    let mut polls = 0u32;
    let mut failed_looks = 0u32;
    loop {
        if let Some(done) = judged(ec2, &current, polls, started, log).await {
            return done;
        }
        if polls > 0 {
            if let Some(late) = out_of_time(deadline, &current, started, log) {
                return Err(late);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        polls += 1;
        match ec2.instance(&id).await {
            Ok(found) => {
                current = match found {
                    Some(seen) if starting && stale_start(&seen, polls) => current,
                    Some(seen) => seen,
                    None => current,
                };
                failed_looks = 0;
            }
            // A describe that keeps failing (after the SDK's own retries) is
            // left to Lambda's retry instead of spinning until the deadline.
            Err(e) if e.retryable && failed_looks + 1 < MAX_FAILED_LOOKS => {
                failed_looks += 1;
                tracing::warn!(instance = %id, error = %e, "describe failed while waiting; will look again");
            }
            Err(e) => {
                log.record(Step::Wait, StepStatus::Failed, e.to_string(), started);
                return Err(FailoverError::Aws {
                    step: Step::Wait,
                    resource: id,
                    source: e,
                });
            }
        }
    }
}

/// The error of a wait whose next look would leave too little of the
/// invocation's time for a report; `None` while there is time.
fn out_of_time(
    deadline: Option<Instant>,
    current: &Instance,
    started: Instant,
    log: &mut StepLog,
) -> Option<FailoverError> {
    let deadline = deadline?;
    if Instant::now() + POLL_INTERVAL + DEADLINE_MARGIN < deadline {
        return None;
    }
    let detail = format!(
        "{} still {} after {}s",
        current.id,
        current.state.as_str(),
        started.elapsed().as_secs()
    );
    log.record(Step::Wait, StepStatus::Failed, detail.clone(), started);
    Some(FailoverError::Deadline {
        step: Step::Wait,
        detail,
    })
}

/// A look that reads `stopped` an instance just started, within the looks
/// EC2 may take to show the start.
fn stale_start(seen: &Instance, polls: u32) -> bool {
    let stale = seen.state == InstanceState::Stopped && polls <= STALE_START_LOOKS;
    if stale {
        tracing::info!(instance = %seen.id, look = polls,
            "still reads stopped after StartInstances; EC2 may not show the start yet");
    }
    stale
}

/// [`judge`], with what an operator needs to know of a death that a KMS key
/// may have caused: EC2's reason (`Client.InternalError`, or one naming KMS)
/// does not say which key. Read only then, so a launch that runs costs no call.
async fn judged<E: Cloud>(
    ec2: &E,
    current: &Instance,
    polls: u32,
    started: Instant,
    log: &mut StepLog,
) -> Option<Result<Instance, FailoverError>> {
    let dead = !matches!(
        current.state,
        InstanceState::Running | InstanceState::Pending | InstanceState::Unknown
    );
    let reason = current.state_reason.as_deref().unwrap_or_default();
    let of_a_key = reason.starts_with("Client.InternalError") || reason.contains("KMS");
    let hint = match dead && of_a_key {
        true => Some(key_hint(ec2).await),
        false => None,
    };
    judge(current, hint.as_deref(), polls, started, log)
}

/// Which key a death of a key points at: with EBS encryption by default on
/// and a customer managed default key, that key (every launch meets it);
/// otherwise the AMI's snapshots' keys.
async fn key_hint<E: Cloud>(ec2: &E) -> String {
    const FIX: &str = "add it to KmsKeyArns (preflight's kms item checks it)";
    match super::volume_encryption(ec2).await {
        Ok(VolumeEncryption::ByDefault { key }) if !is_aws_managed_ebs_key(&key) => format!(
            "EBS encryption by default is on with the key {key} (GetEbsDefaultKmsKeyId), which every new volume gets: unless the function may use it, every launch dies so; {FIX}"
        ),
        Ok(_) => format!("an AMI snapshot's KMS key the function may not use? {FIX}"),
        Err(e) => format!(
            "an AMI snapshot's key or the account's default EBS key (GetEbsDefaultKmsKeyId: {e}) the function may not use? {FIX}"
        ),
    }
}

/// The wait's verdict on the latest look: running (done), still starting
/// (`None`: look again), or dead, with EC2's reason (and `hint`, what it
/// may mean).
fn judge(
    current: &Instance,
    hint: Option<&str>,
    polls: u32,
    started: Instant,
    log: &mut StepLog,
) -> Option<Result<Instance, FailoverError>> {
    let id = &current.id;
    match current.state {
        InstanceState::Running => {
            let detail = format!(
                "{id} is running in {} ({polls} look(s))",
                current.availability_zone
            );
            let status = if polls == 0 {
                StepStatus::AlreadyDone
            } else {
                StepStatus::Done
            };
            log.record(Step::Wait, status, detail, started);
            Some(Ok(current.clone()))
        }
        // Not listed yet right after launch, or on its way up.
        InstanceState::Pending | InstanceState::Unknown => None,
        other => {
            let reason = current
                .state_reason
                .clone()
                .unwrap_or_else(|| "EC2 gave no reason".to_owned());
            let reason = match hint {
                Some(hint) => format!("{reason}; {hint}"),
                None => reason,
            };
            let detail = format!("{id} is {} instead of starting: {reason}", other.as_str());
            log.record(Step::Wait, StepStatus::Failed, detail, started);
            Some(Err(FailoverError::ReplacementFailed {
                instance: id.clone(),
                state: other.as_str().to_owned(),
                reason,
            }))
        }
    }
}
