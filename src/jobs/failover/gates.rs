//! The gates before a new launch: an alarm event must not be stale (its alarm
//! still in that ALARM), the outage must not be the AMI schedule's own reboot,
//! Route 53 must still see the appliance unhealthy, and the flap guard must
//! allow another failover; a planned move has its own gates first
//! ([`planned`]). A resumed incident was already past them all.

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use super::AlarmEvent;
use super::planned::{self, Readings};
use crate::cloud::{Alarm, CheckerReport, CloudError, Image, Instance};
use crate::config::Settings;
use crate::error::FailoverError;
use crate::lookup::World;
use crate::replacement::{Situation, recent_failovers};
use crate::report::PlannedMove;
use crate::report::{StepLog, StepStatus};
use crate::step::Step;

/// What was asked before a new launch, and the answers.
pub struct Confirmation {
    /// Route 53's checkers on the health check, when it is known.
    pub route53: Option<(String, Result<CheckerReport, CloudError>)>,
    /// The alarm an event reported, read again.
    pub alarm: Option<(AlarmEvent, Result<Vec<Alarm>, CloudError>)>,
    /// When the alarm went ALARM (`None`: an operator's failover).
    pub alarm_began: Option<DateTime<Utc>>,
    /// A planned move's own readings (its alarm, a drill's guardrails).
    pub planned: Option<(PlannedMove, Readings)>,
    /// The function's AMIs in any state ([`crate::cloud::Cloud::tool_images`]), read when
    /// the AMI schedule reboots (`NO_REBOOT=false`) and an alarm began.
    pub schedule_images: Option<Result<Vec<Image>, CloudError>>,
}

/// How long after the schedule's reboot (`NO_REBOOT=false`) an alarm is
/// taken for that reboot: a reboot for CreateImage takes a few minutes, and
/// the health check, then the alarm, need a minute or two each to see the
/// appliance answer again. An appliance still down after this is down.
pub const REBOOT_GRACE: TimeDelta = TimeDelta::minutes(10);

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
        if confirmation.route53.is_some() {
            let detail =
                "resuming a failover already under way; confirmation only gates a new launch";
            log.record(Step::Confirm, StepStatus::Skipped, detail, Instant::now());
        }
        return Ok(None);
    }
    let failed = situation.failed();
    if let (Some(planned), Some(appliance)) = (confirmation.planned, failed)
        && let Some(why) = planned::pass(planned, settings, appliance, log)?
    {
        return Ok(Some(why));
    }
    if let Some(stale) = still_alarming(confirmation.alarm, log) {
        return Ok(Some(stale));
    }
    let reboot = failed.zip(confirmation.alarm_began).and_then(|(f, began)| {
        let images = confirmation.schedule_images.as_ref()?;
        own_reboot(f, images, began, now, log)
    });
    if let Some(reboot) = reboot {
        return Ok(Some(reboot));
    }
    if let Some(healthy) = confirm(confirmation.route53, log) {
        return Ok(Some(healthy));
    }
    flap_guard(world, settings, now, log)?;
    Ok(None)
}

/// Records what the alarm says now. Returns the reason to stand down when the
/// event is stale: Lambda retries a failed event for minutes and a throttled
/// one for up to `MaximumEventAgeInSeconds`, so an ALARM may arrive after its
/// alarm went back to OK (the appliance is healthy: moving it would be the
/// outage), or after a newer transition, which is an incident of its own.
/// A failed read does not block the failover: the event is the alarm's word.
fn still_alarming(
    alarm: Option<(AlarmEvent, Result<Vec<Alarm>, CloudError>)>,
    log: &mut StepLog,
) -> Option<String> {
    let started = Instant::now();
    let (event, found) = alarm?;
    let when = event.changed_at.to_rfc3339();
    let current = match found.map(|a| a.into_iter().find(|a| a.name == event.name)) {
        Ok(Some(current)) => current,
        Ok(None) => {
            let detail = format!(
                "alarm {} not found; acting on its event of {when}",
                event.name
            );
            log.record(Step::Alarm, StepStatus::Warn, detail, started);
            return None;
        }
        Err(e) => {
            let detail = format!(
                "could not read alarm {} ({e}); acting on its event of {when}",
                event.name
            );
            log.record(Step::Alarm, StepStatus::Failed, detail, started);
            return None;
        }
    };
    let since = current
        .changed_at()
        .map_or_else(String::new, |t| format!(" since {}", t.to_rfc3339()));
    // Only StateTransitionedTimestamp says when the state changed; the updated
    // time moves with every new reason, so it cannot date a transition.
    let newer = current
        .transitioned_at
        .filter(|t| *t > event.changed_at + chrono::TimeDelta::seconds(1));
    let stale = match (current.state.as_str(), newer) {
        ("ALARM", None) => None,
        ("ALARM", Some(t)) => Some(format!(
            "alarm {} went ALARM again at {}, after this event's change at {when}: that newer change is an incident of its own; not failing over under this one",
            event.name,
            t.to_rfc3339()
        )),
        (state, _) => Some(format!(
            "alarm {} is {state} now{since}; this event of its ALARM at {when} is stale; not failing over",
            event.name
        )),
    };
    let detail = stale.clone().unwrap_or_else(|| {
        format!(
            "alarm {} is still ALARM{since}, as its event says",
            event.name
        )
    });
    log.record(Step::Alarm, StepStatus::Done, detail, started);
    stale
}

/// The reason to stand down when the alarm began with the AMI schedule's
/// reboot of `failed` and that reboot is less than [`REBOOT_GRACE`] ago:
/// Route 53 would confirm the outage, and a failover would replace a healthy
/// appliance that is starting again. The reboot is known from EC2's own
/// record of the image it made (`SourceInstanceId` = the appliance, and its
/// `CreationDate`), which no tag can forge. Standing down is a delay of at
/// most the grace for a real outage that coincides with the reboot: the
/// reconcile fails over after it if the alarm is still ALARM.
fn own_reboot(
    failed: &Instance,
    images: &Result<Vec<Image>, CloudError>,
    began: DateTime<Utc>,
    now: DateTime<Utc>,
    log: &mut StepLog,
) -> Option<String> {
    let t = Instant::now();
    let images = match images {
        Ok(images) => images,
        Err(e) => {
            let detail = format!("could not read the AMI schedule's images ({e}): not held back");
            log.record(Step::Confirm, StepStatus::Done, detail, t);
            return None;
        }
    };
    // An alarm already firing before the reboot is an outage of its own.
    let (image, at) = images
        .iter()
        .filter(|i| i.source_instance_id.as_deref() == Some(failed.id.as_str()))
        .filter_map(|i| Some((i, i.creation_date?)))
        .filter(|(_, at)| began + TimeDelta::minutes(1) >= *at && began <= *at + REBOOT_GRACE)
        .max_by_key(|(_, at)| *at)?;
    let until = at + REBOOT_GRACE;
    let text = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    if now >= until {
        let detail = format!(
            "the alarm began with the AMI schedule's reboot of {} for {} at {}, but is still ALARM {} min later: a real outage",
            failed.id,
            image.id,
            text(at),
            REBOOT_GRACE.num_minutes()
        );
        log.record(Step::Confirm, StepStatus::Done, detail, t);
        return None;
    }
    let why = format!(
        "the alarm went ALARM at {}, with the AMI schedule's reboot of {} for CreateImage of {} at {} (NO_REBOOT=false): the schedule's own outage; not failing over. If the alarm is still ALARM at {}, the reconcile fails over",
        text(began),
        failed.id,
        image.id,
        text(at),
        text(until)
    );
    log.record(Step::Confirm, StepStatus::Done, why.clone(), t);
    Some(why)
}

/// Records what Route 53 said. Returns the reason to stand down when most
/// checkers see the appliance healthy again; a failed look does not block the
/// failover (the alarm already is Route 53's verdict).
fn confirm(
    confirmation: Option<(String, Result<CheckerReport, CloudError>)>,
    log: &mut StepLog,
) -> Option<String> {
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
