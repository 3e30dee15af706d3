//! Planned moves: a fail-back to `HOME_AZ`, and a drill. Both are failovers
//! asked for while all is well, so they run the failover's own steps
//! (launch before stop, the incident's ClientToken, crash safety, the flap
//! guard, the report) behind gates of their own before a new launch:
//!
//! - the appliance's alarm must be OK: during an outage the failover is in
//!   charge, and a planned move would race it;
//! - a fail-back needs `HOME_AZ` (a clear error without it), launches only
//!   there, and stands down when the appliance already runs there (so a
//!   daily `FailbackWindow` schedule tells no one anything);
//! - a drill stands down while a `DRILL_GUARDRAIL_ALARMS` alarm is in ALARM,
//!   or cannot be found: a guardrail nobody can read guards nothing.
//!
//! A redelivery of a planned move that already launched resumes it without
//! these gates (the failover's rule for every gate): its own move may be what
//! the alarm is reacting to.

use std::time::Instant;

use crate::cloud::{Alarm, AlarmQuery, Cloud, CloudError, Instance};
use crate::config::Settings;
use crate::error::FailoverError;
use crate::lookup::{self, World};
use crate::report::PlannedMove;
use crate::report::{StepLog, StepStatus};
use crate::step::Step;

/// What a planned move reads before it moves.
pub struct Readings {
    /// The appliance's alarm(s): `ALARM_NAME`, or those on `HEALTH_CHECK_ID`.
    appliance: Option<Result<Vec<Alarm>, CloudError>>,
    /// Each guardrail alarm by name (a drill's only).
    guardrails: Vec<(String, Result<Vec<Alarm>, CloudError>)>,
}

/// Reads the alarms `planned` is gated on, all at once.
pub async fn read<C: Cloud>(cloud: &C, settings: &Settings, planned: PlannedMove) -> Readings {
    let guarded: &[String] = match planned {
        PlannedMove::Drill => &settings.failover.drill_guardrail_alarms,
        PlannedMove::Failback => &[],
    };
    let appliance = async {
        match lookup::watch(settings) {
            Some(query) => Some(cloud.alarms(query).await),
            None => None,
        }
    };
    let guardrails =
        futures::future::join_all(guarded.iter().map(|name| async move {
            (name.clone(), cloud.alarms(AlarmQuery::Named(name)).await)
        }));
    let (appliance, guardrails) = tokio::join!(appliance, guardrails);
    Readings {
        appliance,
        guardrails,
    }
}

/// The AZ a fail-back goes to; a fail-back without `HOME_AZ` is refused
/// before anything is read.
pub fn home(
    settings: &Settings,
    planned: Option<PlannedMove>,
) -> Result<Option<&str>, FailoverError> {
    if planned != Some(PlannedMove::Failback) {
        return Ok(None);
    }
    match settings.failover.home_az.as_deref() {
        Some(home) => Ok(Some(home)),
        None => Err(FailoverError::Missing {
            what: "a fail-back needs HOME_AZ (the template's HomeAz parameter): the Availability Zone the appliance lives in when all is well".to_owned(),
        }),
    }
}

/// Keeps only what lies in `home`: a fail-back launches, or promotes a
/// standby, there and nowhere else.
pub fn narrow(world: &mut World, settings: &Settings, home: &str) -> Result<(), FailoverError> {
    world.subnets.retain(|s| s.availability_zone == home);
    world.leg_subnets.retain(|s| s.availability_zone == home);
    world.standbys.retain(|s| s.availability_zone == home);
    if world.subnets.is_empty() {
        return Err(FailoverError::Missing {
            what: format!(
                "no subnet tagged Name={} (SUBNET_NAME) in {} lies in {home} (HOME_AZ)",
                settings.failover.subnet_name, world.vpc_id
            ),
        });
    }
    Ok(())
}

/// `Ok(Some(why))` when the planned move should stand down before a new
/// launch; an error when what it must know cannot be read or is not set.
pub fn pass(
    (planned, readings): (PlannedMove, Readings),
    settings: &Settings,
    appliance: &Instance,
    log: &mut StepLog,
) -> Result<Option<String>, FailoverError> {
    let what = planned.as_str();
    if let Some(home) = home(settings, Some(planned))?
        && appliance.availability_zone == home
    {
        return Ok(Some(format!(
            "{} already runs in {home} (HOME_AZ): nothing to fail back",
            appliance.id
        )));
    }
    if let Some(why) = appliance_alarm(what, settings, readings.appliance, log)? {
        return Ok(Some(why));
    }
    match planned {
        PlannedMove::Drill => guardrails(readings.guardrails, log),
        PlannedMove::Failback => Ok(None),
    }
}

/// The appliance's alarm must be OK; why not, when it is not.
fn appliance_alarm(
    what: &str,
    settings: &Settings,
    found: Option<Result<Vec<Alarm>, CloudError>>,
    log: &mut StepLog,
) -> Result<Option<String>, FailoverError> {
    let t = Instant::now();
    let watched = match lookup::watch(settings) {
        Some(AlarmQuery::Named(name)) => format!("alarm {name} (ALARM_NAME)"),
        Some(AlarmQuery::ForHealthCheck(id)) => format!("the alarms on health check {id}"),
        None => String::new(),
    };
    let alarms = match found {
        None => {
            return Err(FailoverError::Missing {
                what: format!(
                    "a {what} runs only while the appliance's alarm is OK, and no alarm is configured: set ALARM_NAME or HEALTH_CHECK_ID"
                ),
            });
        }
        Some(Err(e)) => return Err(FailoverError::during(Step::Alarm, watched)(e)),
        Some(Ok(alarms)) if alarms.is_empty() => {
            return Err(FailoverError::Missing {
                what: format!(
                    "a {what} runs only while the appliance's alarm is OK, and {watched} was not found"
                ),
            });
        }
        Some(Ok(alarms)) => alarms,
    };
    if let Some(a) = alarms.iter().find(|a| a.state != "OK") {
        let why = format!(
            "alarm {} is {}{}: a {what} runs only while the appliance's alarm is OK (during an outage the failover is in charge)",
            a.name,
            a.state,
            a.since()
        );
        log.record(Step::Alarm, StepStatus::Skipped, why.clone(), t);
        return Ok(Some(why));
    }
    let names: Vec<&str> = alarms.iter().map(|a| a.name.as_str()).collect();
    let detail = format!("{} OK: the appliance is healthy", names.join(", "));
    log.record(Step::Alarm, StepStatus::Done, detail, t);
    Ok(None)
}

/// No guardrail may be in ALARM, or missing; why not, when one is.
fn guardrails(
    found: Vec<(String, Result<Vec<Alarm>, CloudError>)>,
    log: &mut StepLog,
) -> Result<Option<String>, FailoverError> {
    let t = Instant::now();
    if found.is_empty() {
        let detail =
            "no DRILL_GUARDRAIL_ALARMS: the drill is guarded by the appliance's alarm alone";
        log.record(Step::Guardrails, StepStatus::Skipped, detail, t);
        return Ok(None);
    }
    let mut ok = Vec::new();
    for (name, alarms) in found {
        let alarms = alarms.map_err(FailoverError::during(
            Step::Guardrails,
            format!("guardrail alarm {name}"),
        ))?;
        let refusal = match alarms.iter().find(|a| a.name == name) {
            None => Some(format!(
                "guardrail alarm {name} (DRILL_GUARDRAIL_ALARMS) was not found: a guardrail nobody can read guards nothing; no drill"
            )),
            Some(a) if a.state == "ALARM" => Some(format!(
                "guardrail alarm {name} is ALARM{}: no drill while it is",
                a.since()
            )),
            Some(_) => None,
        };
        if let Some(why) = refusal {
            log.record(Step::Guardrails, StepStatus::Skipped, why.clone(), t);
            return Ok(Some(why));
        }
        ok.push(name);
    }
    let detail = format!("guardrail alarm(s) not in ALARM: {}", ok.join(", "));
    log.record(Step::Guardrails, StepStatus::Done, detail, t);
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::InstanceState;
    use crate::test_fixtures::{instance, settings_with};

    fn alarm(name: &str, state: &str) -> Alarm {
        Alarm {
            name: name.into(),
            arn: format!("arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:{name}"),
            state: state.into(),
            reason: None,
            transitioned_at: None,
            updated_at: None,
            health_check_id: None,
            actions: Vec::new(),
        }
    }

    fn readings(appliance: &str, guardrails: &[(&str, Option<&str>)]) -> Readings {
        Readings {
            appliance: Some(Ok(vec![alarm("vpn-health", appliance)])),
            guardrails: guardrails
                .iter()
                .map(|(n, state)| {
                    let found = state.map(|s| alarm(n, s)).into_iter().collect();
                    ((*n).to_owned(), Ok(found))
                })
                .collect(),
        }
    }

    fn planned_settings() -> Settings {
        settings_with(&[
            ("ALARM_NAME", "vpn-health"),
            ("HOME_AZ", "ap-northeast-1a"),
            ("DRILL_GUARDRAIL_ALARMS", "orders-5xx"),
        ])
    }

    #[test]
    fn a_failback_goes_only_while_the_alarm_is_ok_and_the_appliance_is_away() {
        let s = planned_settings();
        let away = instance("i-away", InstanceState::Running, "ap-northeast-1c");
        let home = instance("i-home", InstanceState::Running, "ap-northeast-1a");
        let mut log = StepLog::new();
        let go = pass(
            (PlannedMove::Failback, readings("OK", &[])),
            &s,
            &away,
            &mut log,
        );
        assert_eq!(go.unwrap(), None);
        let there = pass(
            (PlannedMove::Failback, readings("OK", &[])),
            &s,
            &home,
            &mut log,
        );
        assert!(
            there
                .unwrap()
                .unwrap()
                .contains("already runs in ap-northeast-1a")
        );
        for state in ["ALARM", "INSUFFICIENT_DATA"] {
            let why = pass(
                (PlannedMove::Failback, readings(state, &[])),
                &s,
                &away,
                &mut log,
            );
            let why = why.unwrap().unwrap();
            assert!(why.contains(state) && why.contains("only while"), "{why}");
        }
    }

    #[test]
    fn a_failback_without_home_az_or_an_alarm_is_a_clear_error() {
        let away = instance("i-away", InstanceState::Running, "ap-northeast-1c");
        let no_home = settings_with(&[("ALARM_NAME", "vpn-health")]);
        let mut log = StepLog::new();
        let e = pass(
            (PlannedMove::Failback, readings("OK", &[])),
            &no_home,
            &away,
            &mut log,
        );
        assert!(e.unwrap_err().to_string().contains("HOME_AZ"));
        let no_alarm = settings_with(&[("HOME_AZ", "ap-northeast-1a")]);
        let none = Readings {
            appliance: None,
            guardrails: Vec::new(),
        };
        let e = pass((PlannedMove::Failback, none), &no_alarm, &away, &mut log).unwrap_err();
        assert!(e.to_string().contains("ALARM_NAME"), "{e}");
        assert!(!e.retryable());
    }

    #[test]
    fn a_drill_stands_down_for_a_guardrail_in_alarm_or_missing() {
        let s = planned_settings();
        let serving = instance("i-1", InstanceState::Running, "ap-northeast-1a");
        let mut log = StepLog::new();
        let mut drill = |g: Option<&str>| {
            let r = readings("OK", &[("orders-5xx", g)]);
            pass((PlannedMove::Drill, r), &s, &serving, &mut log).unwrap()
        };
        assert_eq!(drill(Some("OK")), None, "a drill may leave home");
        assert_eq!(drill(Some("INSUFFICIENT_DATA")), None);
        let why = drill(Some("ALARM")).unwrap();
        assert!(why.contains("orders-5xx is ALARM"), "{why}");
        let why = drill(None).unwrap();
        assert!(why.contains("not found"), "{why}");
    }

    #[test]
    fn a_failback_looks_only_at_the_home_az() {
        use crate::test_fixtures::world;
        let s = planned_settings();
        let mut w = world(Vec::new());
        let before = w.subnets.len();
        narrow(&mut w, &s, "ap-northeast-1a").unwrap();
        assert!(w.subnets.len() < before, "{:?}", w.subnets);
        assert!(
            w.subnets
                .iter()
                .all(|s| s.availability_zone == "ap-northeast-1a")
        );
        let e = narrow(&mut w, &s, "ap-northeast-1z").unwrap_err();
        assert!(e.to_string().contains("ap-northeast-1z (HOME_AZ)"), "{e}");
    }
}
