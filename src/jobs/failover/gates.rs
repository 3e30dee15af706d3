//! The gates before a new launch: Route 53 must still see the appliance
//! unhealthy, and the flap guard must allow another failover. A resumed
//! incident was already past both.

use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::cloud::{CheckerReport, CloudError};
use crate::config::Settings;
use crate::error::FailoverError;
use crate::lookup::World;
use crate::replacement::{Situation, recent_failovers};
use crate::report::{StepLog, StepStatus};
use crate::step::Step;

/// What Route 53 answered, when it was asked.
pub type Confirmation = Option<(String, Result<CheckerReport, CloudError>)>;

/// `Ok(Some(why))` when the failover should stand down, `Ok(None)` to go on,
/// an error when the flap guard refuses.
pub fn pass(
    world: &World,
    settings: &Settings,
    situation: &Situation,
    confirmation: Confirmation,
    now: DateTime<Utc>,
    log: &mut StepLog,
) -> Result<Option<String>, FailoverError> {
    if let Situation::Continue { .. } = situation {
        if confirmation.is_some() {
            let detail =
                "resuming a failover already under way; confirmation only gates a new launch";
            log.record(Step::Confirm, StepStatus::Skipped, detail, Instant::now());
        }
        return Ok(None);
    }
    if let Some(healthy) = confirm(confirmation, log) {
        return Ok(Some(healthy));
    }
    flap_guard(world, settings, now, log)?;
    Ok(None)
}

/// Records what Route 53 said. Returns the reason to stand down when most
/// checkers see the appliance healthy again; a failed look does not block the
/// failover (the alarm already is Route 53's verdict).
fn confirm(confirmation: Confirmation, log: &mut StepLog) -> Option<String> {
    let started = Instant::now();
    let (id, result) = confirmation?;
    match result {
        Ok(r) if r.mostly_healthy() => {
            let detail = format!(
                "{} of {} Route 53 checkers now report health check {id} healthy; not failing over",
                r.healthy, r.total
            );
            log.record(Step::Confirm, StepStatus::Done, detail.clone(), started);
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
            log.record(Step::Confirm, StepStatus::Done, detail, started);
            None
        }
        Err(e) => {
            let detail = format!("could not ask Route 53 ({e}); acting on the alarm alone");
            log.record(Step::Confirm, StepStatus::Failed, detail, started);
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
    let recent = recent_failovers(world, now, settings.failover.failover_window);
    let window_minutes = settings.failover.failover_window.as_secs() / 60;
    let ids: Vec<&str> = recent.iter().map(|i| i.id.as_str()).collect();
    if recent.len() >= settings.failover.max_failovers as usize {
        let e = FailoverError::FlapGuard {
            count: recent.len(),
            max: settings.failover.max_failovers,
            window_minutes,
            instances: ids.join(", "),
        };
        log.record(Step::FlapGuard, StepStatus::Failed, e.to_string(), t);
        return Err(e);
    }
    let detail = format!(
        "{} of at most {} failovers in the last {window_minutes} min",
        recent.len(),
        settings.failover.max_failovers
    );
    log.record(Step::FlapGuard, StepStatus::Done, detail, t);
    Ok(())
}
