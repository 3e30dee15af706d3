//! One invocation: payload in, report or typed error out.
//!
//! The handler parses the trigger first (a bad payload never reaches AWS),
//! decides whether it calls for action at all, and only then runs the pipeline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::checker_ranges;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::error::FailoverError;
use crate::event::{self, AlarmState, ManualAction, Trigger};
use crate::failover::{self, FailoverRequest};
use crate::report::Report;
use crate::stamp::{self, SnapshotRequest};

/// What lives for the whole life of the Lambda process: settings read once,
/// SDK clients built once.
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
        }
    }
}

/// Runs one group's job for a trigger the fleet routed to it (and parsed once),
/// then reports: the EMF line and the report or error log line.
pub(crate) async fn run<E: Cloud>(
    app: &App<E>,
    trigger: Trigger,
    invocation: &Invocation,
) -> Result<Report, FailoverError> {
    let started = Instant::now();
    let before = app.cloud.usage();
    let result = dispatch(app, trigger, invocation).await;
    let usage = app
        .cloud
        .usage()
        .zip(before)
        .map(|(after, before)| after.since(before));
    let line = crate::metrics::emf(
        &app.settings.instance_name,
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

async fn dispatch<E: Cloud>(
    app: &App<E>,
    trigger: Trigger,
    invocation: &Invocation,
) -> Result<Report, FailoverError> {
    let settings = &app.settings;
    let manual_incident = || {
        if invocation.request_id.is_empty() {
            format!("manual-{}", Utc::now().format("%Y%m%dT%H%M%S"))
        } else {
            invocation.request_id.clone()
        }
    };
    let request = |incident: String, reason: String, dry_run: bool| FailoverRequest {
        incident,
        reason,
        dry_run,
        deadline: invocation.deadline,
        now: Utc::now(),
        confirm_with: None,
    };

    match trigger {
        Trigger::Alarm(alarm) => {
            let incident = alarm.incident_id();
            let when = alarm.changed_at.to_rfc3339_opts(SecondsFormat::Secs, true);
            if alarm.state != AlarmState::Alarm {
                return Ok(Report::ignored(
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
            let mut req = request(incident, reason, settings.dry_run);
            // An operator's manual failover is its own confirmation; an alarm's is not.
            req.confirm_with = settings.health_check_id.clone();
            failover::run(&app.cloud, settings, &req).await
        }
        Trigger::Manual { action, reason } => {
            let reason = format!(
                "manual {}: {}",
                action.as_str(),
                reason.as_deref().unwrap_or("no reason given")
            );
            match action {
                ManualAction::Failover => {
                    let req = request(manual_incident(), reason, settings.dry_run);
                    failover::run(&app.cloud, settings, &req).await
                }
                ManualAction::Plan => {
                    failover::run(
                        &app.cloud,
                        settings,
                        &request(manual_incident(), reason, true),
                    )
                    .await
                }
                ManualAction::Snapshot => {
                    let now = Utc::now();
                    let req = SnapshotRequest {
                        incident: manual_incident(),
                        reason,
                        slot: now,
                        dry_run: settings.dry_run,
                        now,
                    };
                    stamp::run(&app.cloud, settings, &req).await
                }
                ManualAction::SyncCheckerRanges => {
                    checker_ranges::sync(
                        &app.cloud,
                        settings,
                        &manual_incident(),
                        &reason,
                        settings.dry_run,
                    )
                    .await
                }
            }
        }
        Trigger::Scheduled { rule, time } => {
            let now = Utc::now();
            // The slot (the time the schedule was due) names the AMI, so a
            // redelivery of this event finds the AMI instead of taking another.
            let slot = time.unwrap_or(now);
            let req = SnapshotRequest {
                incident: format!("schedule-{}", slot.format("%Y%m%dT%H%MZ")),
                reason: format!(
                    "schedule {} due at {}",
                    rule.as_deref().unwrap_or("(unnamed rule)"),
                    slot.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
                slot,
                dry_run: settings.dry_run,
                now,
            };
            stamp::run(&app.cloud, settings, &req).await
        }
        // The notification covers every AWS service's ranges; the sync itself
        // finds out whether the checkers' changed.
        Trigger::IpSpaceChanged => {
            checker_ranges::sync(
                &app.cloud,
                settings,
                &manual_incident(),
                "AWS published new IP ranges (AmazonIpSpaceChanged)",
                settings.dry_run,
            )
            .await
        }
    }
}
