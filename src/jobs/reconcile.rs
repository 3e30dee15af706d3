//! `reconcile`: level-triggered follow-through, on a clock.
//!
//! A CloudWatch alarm acts on a state *transition*: it notifies once, and
//! Lambda retries an asynchronous event twice within about three minutes. A
//! throttling storm or a bad minute in the other AZ outlasts that, and then
//! nobody tries again while the appliance stays down. The reconcile reads the
//! alarm's state instead: while it says `ALARM`, the failover runs under the
//! very incident the alarm's own event names (the alarm ARN and the time its
//! state changed), so a reconcile and a late delivery are one incident and
//! never two replacements; cooldown, flap guard and Route 53's confirmation
//! apply as for the event. Then the fence stops any replaced instance that
//! runs again, and the standby (`STANDBY=warm|hot`) is kept ready.
//!
//! An incident is open until its move is complete, whatever the alarm says
//! now: a failover that moved the floating IP but not a route leaves an
//! appliance that answers on its IP (so the alarm turns OK) while the VPN
//! clients' route still points at the stopped instance. So when the alarm
//! calls for nothing, a live replacement without its incident's move mark
//! ([`TAG_MOVED_AT`]) is finished under its own incident ([`unfinished`]);
//! who owns an incident moved by hand is the failover's rule
//! (`replacement::hands`).
//!
//! This module is the reconcile's own part, the alarm and the open incident:
//! what they say ([`look`], [`decide`], [`unfinished`]). Running the failover it calls for and the
//! follow-ups is composing jobs, which [`crate::jobs::chain::reconcile`] does.

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::cloud::{
    Alarm, AlarmQuery, Cloud, Instance, TAG_HANDED_OVER, TAG_INCIDENT, TAG_MOVED_AT,
};
use crate::engine::Context;
use crate::error::FailoverError;
use crate::event::incident_for;
use crate::lookup;
use crate::report::{StepLog, StepStatus};
use crate::step::Step;

#[derive(Debug, Clone)]
pub struct ReconcileRequest {
    /// This run's own incident (its request id), for when the alarm names none.
    pub incident: String,
}

/// What the alarm asks of the appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The alarm is `ALARM` since `began`: fail over under this incident.
    Failover {
        incident: String,
        reason: String,
        began: DateTime<Utc>,
    },
    /// The alarm calls for nothing, but `incident` is open: finish it.
    Finish {
        incident: String,
        reason: String,
        /// Its replacement's launch (the incident began before).
        began: Option<DateTime<Utc>>,
    },
    /// Nothing to do; why.
    Nothing(String),
}

/// The open incident among the appliance's instances, if any: the newest
/// live replacement whose move is neither marked complete nor handed over.
/// `quiet` is why the alarm calls for nothing.
pub fn unfinished(instances: &[Instance], quiet: &str) -> Option<Verdict> {
    let open = instances
        .iter()
        .filter(|i| i.state.is_live() && i.launched_as().is_some())
        .filter(|i| i.tag(TAG_MOVED_AT).is_none() && i.tag(TAG_HANDED_OVER).is_none())
        .filter_map(|i| Some((i, i.tag(TAG_INCIDENT)?)))
        .max_by_key(|(i, _)| i.launch_time)?;
    let (r, incident) = open;
    Some(Verdict::Finish {
        incident: incident.to_owned(),
        reason: format!(
            "{quiet}; but incident {incident} is open: its replacement {} ({}, {}) carries no {TAG_MOVED_AT} mark, so its move did not complete; finishing it",
            r.id,
            r.state.as_str(),
            r.availability_zone
        ),
        began: r.launch_time,
    })
}

/// Decides, without calling AWS, what the alarm(s) found for `watch` ask.
pub fn decide(watch: Option<AlarmQuery<'_>>, alarms: &[Alarm]) -> Verdict {
    let Some(watch) = watch else {
        return Verdict::Nothing(
            "no alarm to look at: set ALARM_NAME (alarm_name in a group) or HEALTH_CHECK_ID"
                .to_owned(),
        );
    };
    let firing = alarms
        .iter()
        .filter(|a| a.state == "ALARM")
        .max_by_key(|a| a.changed_at());
    match (firing, alarms.first()) {
        (Some(alarm), _) => match alarm.changed_at() {
            Some(at) => Verdict::Failover {
                incident: incident_for(&alarm.arn, at),
                began: at,
                reason: format!(
                    "alarm {} is ALARM since {} (found by a reconcile): {}",
                    alarm.name,
                    at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    alarm.reason.as_deref().unwrap_or("no reason given")
                ),
            },
            None => Verdict::Nothing(format!(
                "alarm {} is ALARM, but CloudWatch gives no time of the change to name its incident by",
                alarm.name
            )),
        },
        (None, Some(alarm)) => Verdict::Nothing(format!(
            "alarm {} is {}{}; only ALARM calls for a failover",
            alarm.name,
            alarm.state,
            alarm.since()
        )),
        (None, None) => Verdict::Nothing(match watch {
            AlarmQuery::Named(name) => {
                format!("no alarm is named {name} (ALARM_NAME) in ALARM_REGION")
            }
            AlarmQuery::ForHealthCheck(id) => format!(
                "no alarm in ALARM_REGION watches health check {id} (HEALTH_CHECK_ID); set ALARM_NAME"
            ),
        }),
    }
}

/// Looks at the configured alarm and records what it says.
pub async fn look<C: Cloud>(
    ctx: &Context<'_, C>,
    log: &mut StepLog,
) -> Result<Verdict, FailoverError> {
    let (cloud, settings) = (ctx.cloud(), ctx.settings);
    let t = Instant::now();
    let watch = lookup::watch(settings);
    let alarms = match watch {
        None => Vec::new(),
        Some(query) => {
            let what = match query {
                AlarmQuery::Named(name) => format!("alarm {name}"),
                AlarmQuery::ForHealthCheck(id) => format!("alarms on health check {id}"),
            };
            let found = cloud.alarms(query).await;
            found.map_err(|e| {
                let e = FailoverError::during(Step::Alarm, what)(e);
                log.record(Step::Alarm, StepStatus::Failed, e.to_string(), t);
                e
            })?
        }
    };
    let verdict = decide(watch, &alarms);
    let verdict = match verdict {
        Verdict::Nothing(why) => open_incident(ctx, why).await?,
        v => v,
    };
    let detail = match &verdict {
        Verdict::Failover { reason, .. } | Verdict::Finish { reason, .. } => reason.clone(),
        Verdict::Nothing(why) => why.clone(),
    };
    log.record(Step::Alarm, StepStatus::Done, detail, t);
    Ok(verdict)
}

/// When the alarm calls for nothing: the appliance's instances in its VPC,
/// for an incident still open.
async fn open_incident<C: Cloud>(
    ctx: &Context<'_, C>,
    quiet: String,
) -> Result<Verdict, FailoverError> {
    let (cloud, appliance) = (ctx.cloud(), &ctx.settings.appliance);
    let name = &appliance.instance_name;
    let (vpc, instances) = tokio::join!(
        lookup::vpc(cloud, &appliance.vpc_name),
        cloud.instances_named(name)
    );
    let instances = instances.map_err(FailoverError::during(
        Step::Discover,
        format!("instances tagged Name={name}"),
    ))?;
    let instances = lookup::in_vpc(instances, &vpc?);
    Ok(unfinished(&instances, &quiet).unwrap_or(Verdict::Nothing(quiet)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn alarm(name: &str, state: &str, transitioned: Option<&str>, updated: &str) -> Alarm {
        Alarm {
            name: name.into(),
            arn: format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
            state: state.into(),
            reason: Some("Threshold Crossed".into()),
            transitioned_at: transitioned.map(at),
            updated_at: Some(at(updated)),
            health_check_id: Some("hc-1".into()),
            actions: vec![],
        }
    }

    #[test]
    fn an_alarm_in_alarm_fails_over_under_the_incident_its_event_names() {
        let a = alarm(
            "sophos-health",
            "ALARM",
            Some("2026-11-21T09:00:00.123Z"),
            "2026-11-21T09:04:00Z",
        );
        let Verdict::Failover {
            incident, reason, ..
        } = decide(
            Some(AlarmQuery::Named("sophos-health")),
            std::slice::from_ref(&a),
        )
        else {
            panic!("ALARM fails over");
        };
        // The SNS event of that transition carries the transition time.
        assert_eq!(
            incident,
            incident_for(&a.arn, at("2026-11-21T09:00:00.123Z"))
        );
        assert!(reason.contains("sophos-health"), "{reason}");
        // Without StateTransitionedTimestamp, StateUpdatedTimestamp names it.
        let moto = alarm("sophos-health", "ALARM", None, "2026-11-21T09:04:00Z");
        assert!(matches!(
            decide(Some(AlarmQuery::ForHealthCheck("hc-1")), std::slice::from_ref(&moto)),
            Verdict::Failover { incident, .. } if incident == incident_for(&moto.arn, at("2026-11-21T09:04:00Z"))
        ));
    }

    #[test]
    fn ok_missing_or_unconfigured_alarms_change_nothing_and_say_why() {
        let said = |w, alarms: &[Alarm]| match decide(w, alarms) {
            Verdict::Nothing(why) => why,
            v => panic!("{v:?}"),
        };
        let ok = alarm("sophos-health", "OK", None, "2026-11-21T09:04:00Z");
        assert!(said(Some(AlarmQuery::Named("sophos-health")), &[ok]).contains("is OK since"));
        assert!(said(Some(AlarmQuery::Named("sophos-health")), &[]).contains("no alarm is named"));
        assert!(said(Some(AlarmQuery::ForHealthCheck("hc-1")), &[]).contains("hc-1"));
        assert!(said(None, &[]).contains("ALARM_NAME"));
    }

    #[test]
    fn of_several_alarms_on_a_health_check_the_one_in_alarm_counts() {
        let ok = alarm("a-ok", "OK", None, "2026-11-21T09:10:00Z");
        let firing = alarm("b-firing", "ALARM", None, "2026-11-21T09:00:00Z");
        assert!(matches!(
            decide(Some(AlarmQuery::ForHealthCheck("hc-1")), &[ok, firing.clone()]),
            Verdict::Failover { incident, .. } if incident == incident_for(&firing.arn, at("2026-11-21T09:00:00Z"))
        ));
    }
}
