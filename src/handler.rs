//! One group's part of an invocation: the trigger (parsed and routed by the
//! fleet) becomes a [`Job`] by a pure decision; the job runs on a
//! [`Context`] (the group's settings, an executor that knows whether this is
//! a dry run, the clock and the deadline), and the result is reported.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

use tracing::Instrument;

use crate::cloud::Cloud;
use crate::cloud::pause::PauseBook;
use crate::config::Settings;
use crate::engine::Context;
use crate::error::FailoverError;
use crate::event::{AlarmChange, AlarmState, ManualAction, Trigger};
use crate::jobs::chain;
use crate::jobs::checker_ranges::{self, SyncRequest};
use crate::jobs::failover::{FailoverRequest, PlannedMove};
use crate::jobs::preflight::{self, PreflightRequest};
use crate::jobs::reconcile::ReconcileRequest;
use crate::jobs::snapshot::SnapshotRequest;
use crate::jobs::standby::{self, StandbyRequest};
use crate::lease::Locks;
use crate::notice::{self, Work};
use crate::notify::Notifier;
use crate::pause::{self, PauseRequest};
use crate::report::Report;

/// What lives for the whole life of the Lambda process for one appliance:
/// settings read once, SDK clients built once ([`crate::Fleet::single`]).
#[derive(Debug, Clone)]
pub struct App<E> {
    pub cloud: E,
    pub settings: Settings,
}

/// What the runtime tells about this invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub deadline: Option<Instant>,
    /// This function's ARN as Lambda invoked it: preflight checks that the
    /// appliance's alarm reaches it.
    pub function_arn: Option<String>,
}

impl Invocation {
    /// From Lambda's context: the deadline is wall-clock milliseconds.
    pub fn from_context(ctx: &lambda_runtime::Context) -> Self {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let deadline = (ctx.deadline > 0).then(|| {
            let left = u128::from(ctx.deadline).saturating_sub(now_ms);
            Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX / 2))
        });
        Self {
            request_id: ctx.request_id.clone(),
            deadline,
            function_arn: Some(ctx.invoked_function_arn.clone()).filter(|a| !a.is_empty()),
        }
    }
}

/// Runs one group's job for a trigger the fleet routed to it (and parsed once),
/// tells people what is news, then reports: the EMF line and the report or
/// error log line.
pub(crate) async fn run<E: Cloud>(
    cloud: &E,
    settings: &Settings,
    trigger: Trigger,
    invocation: &Invocation,
    around: Around<'_>,
) -> Result<Report, FailoverError> {
    let started = Instant::now();
    let before = cloud.usage();
    let now = Utc::now();
    let job = job_for(trigger, settings, invocation, now);
    let span = tracing::info_span!("incident", incident = %job.incident());
    // A job that may change the group holds its lease; a look never waits.
    let dry = job.dry_run(settings);
    let lock = around.locks.filter(|_| !dry);
    let incident = job.incident().to_owned();
    let held = run_held(cloud, settings, job, invocation, (around, now));
    let result = holding((lock, around.group), &incident, invocation, held)
        .instrument(span.clone())
        .await;
    let _in_job = span.enter();
    let usage = cloud
        .usage()
        .zip(before)
        .map(|(after, before)| after.since(before));
    let line = crate::metrics::emf(
        &settings.appliance.instance_name,
        &result,
        started.elapsed(),
        usage,
        Utc::now().timestamp_millis(),
    );
    // EMF goes to stdout as one raw JSON line, outside the tracing format.
    println!("{line}");
    match &result {
        Ok(report) => tracing::info!(
            report = %serde_json::to_string(report).unwrap_or_default(),
            "report"
        ),
        Err(e) => tracing::error!(error_type = %e.error_type(), error = %e, "invocation failed"),
    }
    result
}

/// What a group's jobs run with besides its cloud and settings: its name,
/// the deployment's lease table and its notifier, when there are.
#[derive(Debug, Clone, Copy)]
pub struct Around<'a> {
    pub group: &'a str,
    pub locks: Option<&'a Locks>,
    pub notifier: Option<&'a Notifier>,
    /// Where the group's pause is kept (the lease table).
    pub pauses: Option<&'a dyn PauseBook>,
}

/// Runs the job once its lease is held: read the group's pause now (a pause
/// set while the job waited holds it too), run the job (dry while paused),
/// then tell what is news. A dry run tells no one, but a preflight's failing
/// items are news, and so is an alarm a pause held back.
async fn run_held<E: Cloud>(
    cloud: &E,
    settings: &Settings,
    job: Job,
    invocation: &Invocation,
    (around, now): (Around<'_>, DateTime<Utc>),
) -> Result<Report, FailoverError> {
    let (group, book) = (around.group, around.pauses);
    let by = (invocation.request_id.as_str(), now);
    let notifier = around.notifier;
    let job = match job {
        Job::Pause(req) => {
            let r = pause::pause(book, group, &req, by).await;
            return tell(notifier, group, Work::Other, r).await;
        }
        Job::Resume { incident, reason } => {
            let r = pause::resume(book, group, (&incident, &reason)).await;
            return tell(notifier, group, Work::Other, r).await;
        }
        other => other,
    };
    let paused = match &job {
        Job::Ignore(_) => None,
        _ => pause::active(book, group, now).await,
    };
    let dry = job.dry_run(settings) || paused.is_some();
    let tells = !dry || paused.is_some() || matches!(job, Job::Preflight(_));
    let ctx = Context::new(cloud, settings, (dry, job.deadline(invocation)), now);
    let work = match (&paused, job.work()) {
        (Some(p), Work::FailsOver) => Work::Held(p.until),
        (_, work) => work,
    };
    let result = run_job(&ctx, job).await;
    let result = match &paused {
        Some(p) => result.map(|r| pause::held(r, p)),
        None => result,
    };
    tell(notifier.filter(|_| tells), group, work, result).await
}

/// Tells what of `result` is news; the report gains the `notify` step.
async fn tell(
    notifier: Option<&Notifier>,
    group: &str,
    work: Work,
    mut result: Result<Report, FailoverError>,
) -> Result<Report, FailoverError> {
    let Some(notifier) = notifier else {
        return result;
    };
    let notices = notice::about(group, work, &result);
    if let Some(step) = notifier.tell(group, &notices, Utc::now()).await
        && let Ok(report) = &mut result
    {
        report.steps.push(step);
    }
    result
}

/// Runs `work` while holding the group's lease, when there is a lease table.
async fn holding(
    (locks, group): (Option<&Locks>, &str),
    incident: &str,
    invocation: &Invocation,
    work: impl Future<Output = Result<Report, FailoverError>>,
) -> Result<Report, FailoverError> {
    let Some(locks) = locks else {
        return work.await;
    };
    let held = locks
        .take(group, incident, &invocation.request_id, invocation.deadline)
        .await?;
    let result = work.await;
    held.release().await;
    result
}

/// What a trigger asks of one group.
#[derive(Debug, Clone)]
pub enum Job {
    Failover(FailoverRequest),
    /// `{"action": "plan"}`: a failover, only planned, whatever `DRY_RUN` says.
    Plan(FailoverRequest),
    Snapshot(SnapshotRequest),
    SyncCheckerRanges(SyncRequest),
    Reconcile(ReconcileRequest),
    Preflight(PreflightRequest),
    Standby(StandbyRequest),
    /// `{"action": "pause"}`: hands off the group for a while.
    Pause(PauseRequest),
    /// `{"action": "resume"}`: the pause ends now.
    Resume {
        incident: String,
        reason: String,
    },
    /// Nothing to do; the report says why.
    Ignore(Report),
}

impl Job {
    /// Whether the job may fail over, for what its errors are worth telling.
    fn work(&self) -> Work {
        match self {
            Job::Failover(_) | Job::Reconcile(_) => Work::FailsOver,
            _ => Work::Other,
        }
    }

    pub fn incident(&self) -> &str {
        match self {
            Job::Failover(r) | Job::Plan(r) => &r.incident,
            Job::Snapshot(r) => &r.incident,
            Job::SyncCheckerRanges(r) => &r.incident,
            Job::Reconcile(r) => &r.incident,
            Job::Preflight(r) => &r.incident,
            Job::Standby(r) => &r.incident,
            Job::Pause(r) => &r.incident,
            Job::Resume { incident, .. } => incident,
            Job::Ignore(r) => &r.incident,
        }
    }

    /// When the invocation must have returned, for the jobs that wait:
    /// failovers, reconciles (which may fail over) and the standby action;
    /// the other jobs are short.
    fn deadline(&self, invocation: &Invocation) -> Option<Instant> {
        match self {
            Job::Failover(_) | Job::Plan(_) | Job::Reconcile(_) | Job::Standby(_) => {
                invocation.deadline
            }
            _ => None,
        }
    }

    /// Whether the job only reports its plan: with `DRY_RUN`, and always
    /// for a plan.
    pub fn dry_run(&self, settings: &Settings) -> bool {
        match self {
            // Proves with DryRun calls; changes nothing either way.
            Job::Plan(_) | Job::Preflight(_) | Job::Ignore(_) => true,
            // The operator's switch: it changes no appliance, DRY_RUN or not.
            Job::Pause(_) | Job::Resume { .. } => false,
            _ => settings.dry_run,
        }
    }
}

async fn run_job<E: Cloud>(ctx: &Context<'_, E>, job: Job) -> Result<Report, FailoverError> {
    // Each job's future is boxed: their state machines (SDK futures inside
    // joins) are large, and the invocation should not carry them on its stack.
    // A failover, a snapshot and a reconcile end with their follow-ups.
    match job {
        Job::Failover(req) | Job::Plan(req) => Box::pin(chain::failover(ctx, &req)).await,
        Job::Standby(req) => Box::pin(standby::run(ctx, &req)).await,
        Job::Reconcile(req) => Box::pin(chain::reconcile(ctx, &req)).await,
        Job::Preflight(req) => Box::pin(preflight::run(ctx, &req)).await,
        Job::Snapshot(req) => Box::pin(chain::snapshot(ctx, &req)).await,
        Job::SyncCheckerRanges(req) => Box::pin(checker_ranges::sync(ctx, &req)).await,
        Job::Ignore(report) => Ok(report),
        // Run before the context exists (run_held): they change no appliance.
        Job::Pause(_) | Job::Resume { .. } => Err(FailoverError::Ambiguous {
            what: "a pause or resume reached the job runner".to_owned(),
        }),
    }
}

/// Decides, without calling AWS, what a trigger asks of this group.
pub fn job_for(
    trigger: Trigger,
    settings: &Settings,
    invocation: &Invocation,
    now: DateTime<Utc>,
) -> Job {
    match trigger {
        Trigger::Alarm(alarm) => on_alarm(&alarm, settings),
        Trigger::Manual { action, reason } => {
            let reason = format!(
                "manual {}: {}",
                action.as_str(),
                reason.as_deref().unwrap_or("no reason given")
            );
            on_manual(action, reason, invocation, now)
        }
        Trigger::Scheduled { rule, time } => {
            // The slot (the time the schedule was due) names the AMI, so a
            // redelivery of this event finds the AMI instead of taking another.
            let slot = time.unwrap_or(now);
            Job::Snapshot(SnapshotRequest {
                incident: format!("schedule-{}", slot.format("%Y%m%dT%H%MZ")),
                reason: format!(
                    "schedule {} due at {}",
                    rule.as_deref().unwrap_or("(unnamed rule)"),
                    slot.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
                slot,
            })
        }
        // The notification covers every AWS service's ranges; the sync itself
        // finds out whether the checkers' changed.
        Trigger::IpSpaceChanged => Job::SyncCheckerRanges(SyncRequest {
            incident: manual_incident(invocation, now),
            reason: "AWS published new IP ranges (AmazonIpSpaceChanged)".to_owned(),
        }),
    }
}

fn on_alarm(alarm: &AlarmChange, settings: &Settings) -> Job {
    let incident = alarm.incident_id();
    let when = alarm.changed_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    if alarm.state != AlarmState::Alarm {
        return Job::Ignore(Report::ignored(
            incident,
            format!(
                "alarm {} is {} since {when}; only ALARM triggers a failover",
                alarm.name,
                alarm.state.as_str()
            ),
        ));
    }
    let reason = format!(
        "alarm {} went ALARM at {when}: {}",
        alarm.name,
        alarm.reason.as_deref().unwrap_or("no reason given")
    );
    let request = FailoverRequest::on_alarm(incident, reason, alarm.changed_at, settings);
    Job::Failover(request.from_event(&alarm.name, alarm.changed_at))
}

fn on_manual(
    action: ManualAction,
    reason: String,
    invocation: &Invocation,
    now: DateTime<Utc>,
) -> Job {
    let incident = manual_incident(invocation, now);
    match action {
        ManualAction::Failover => Job::Failover(FailoverRequest::by_operator(incident, reason)),
        ManualAction::Plan => Job::Plan(FailoverRequest::by_operator(incident, reason)),
        ManualAction::Snapshot => Job::Snapshot(SnapshotRequest {
            incident,
            reason,
            slot: now,
        }),
        ManualAction::SyncCheckerRanges => Job::SyncCheckerRanges(SyncRequest { incident, reason }),
        ManualAction::Preflight => Job::Preflight(PreflightRequest {
            incident,
            function_arn: invocation.function_arn.clone(),
        }),
        ManualAction::Standby => Job::Standby(StandbyRequest { incident, reason }),
        ManualAction::Reconcile => Job::Reconcile(ReconcileRequest { incident }),
        ManualAction::Pause { minutes } => Job::Pause(PauseRequest {
            incident,
            reason,
            minutes,
        }),
        ManualAction::Resume => Job::Resume { incident, reason },
        ManualAction::Failback => Job::Failover(FailoverRequest::planned(
            incident,
            reason,
            PlannedMove::Failback,
        )),
        ManualAction::Drill => Job::Failover(FailoverRequest::planned(
            incident,
            reason,
            PlannedMove::Drill,
        )),
    }
}

/// A manual run's incident is its Lambda request id.
fn manual_incident(invocation: &Invocation, now: DateTime<Utc>) -> String {
    if invocation.request_id.is_empty() {
        format!("manual-{}", now.format("%Y%m%dT%H%M%S"))
    } else {
        invocation.request_id.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event;

    fn settings(extra: &[(&str, &str)]) -> Settings {
        Settings::from_lookup(|k| {
            let base = match k {
                "INSTANCE_NAME" | "AMI_NAME" => Some("sophos"),
                "VPC_NAME" => Some("my-vpc"),
                "SUBNET_NAME" => Some("public"),
                _ => None,
            };
            extra
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| *v)
                .or(base)
                .map(str::to_owned)
        })
        .unwrap()
    }

    fn job(sample: &str, settings: &Settings) -> Job {
        let text = std::fs::read_to_string(format!("events/{sample}")).unwrap();
        let trigger = event::parse(&serde_json::from_str(&text).unwrap()).unwrap();
        let invocation = Invocation {
            request_id: "req-1".into(),
            deadline: None,
            function_arn: None,
        };
        let now = DateTime::parse_from_rfc3339("2026-11-21T09:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        job_for(trigger, settings, &invocation, now)
    }

    #[test]
    fn an_alarm_fails_over_under_its_incident_and_asks_route53_first() {
        let s = settings(&[("HEALTH_CHECK_ID", "hc-1")]);
        let Job::Failover(req) = job("sns-alarm.json", &s) else {
            panic!("an ALARM fails over");
        };
        assert!(req.incident.starts_with("alarm-"), "{}", req.incident);
        assert_eq!(req.confirm_with.as_deref(), Some("hc-1"));
        assert!(!Job::Failover(req).dry_run(&s));
        assert!(matches!(job("sns-alarm-ok.json", &s), Job::Ignore(r) if r.reason.contains("OK")));
    }

    #[test]
    fn a_manual_run_is_its_own_incident_and_a_plan_is_always_dry() {
        let s = settings(&[]);
        let plan = job("manual-plan.json", &s);
        assert!(plan.dry_run(&s), "a plan is a failover, dry");
        let Job::Plan(plan) = plan else {
            panic!("a plan is a failover, dry");
        };
        assert_eq!(plan.incident, "req-1");
        assert_eq!(plan.confirm_with, None, "an operator confirms by asking");
        let dry = settings(&[("DRY_RUN", "true")]);
        let manual = job("manual-failover.json", &dry);
        assert!(matches!(manual, Job::Failover(_)), "{manual:?}");
        assert!(manual.dry_run(&dry), "DRY_RUN holds for every job");
        assert!(!job("manual-failover.json", &s).dry_run(&s));
    }

    #[test]
    fn schedules_snapshot_under_their_slot_and_ip_space_changes_sync() {
        let s = settings(&[]);
        let Job::Snapshot(req) = job("scheduled-snapshot.json", &s) else {
            panic!("a schedule takes an AMI");
        };
        assert_eq!(req.incident, "schedule-20261121T1800Z");
        assert!(matches!(
            job("ip-space-changed.json", &s),
            Job::SyncCheckerRanges(_)
        ));
        assert!(matches!(
            job("manual-sync-checker-ranges.json", &s),
            Job::SyncCheckerRanges(r) if r.incident == "req-1"
        ));
        let dry = settings(&[("DRY_RUN", "true")]);
        let reconcile = job("manual-reconcile.json", &dry);
        assert!(reconcile.dry_run(&dry), "{reconcile:?}");
        assert!(matches!(reconcile, Job::Reconcile(r) if r.incident == "req-1"));
    }
}
