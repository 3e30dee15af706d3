//! The fleet: every failover group of one deployment, each with the clients of
//! its own region, and the routing of a trigger to the group(s) it concerns.
//!
//! An alarm concerns one group (by health check id, else alarm name); a manual
//! invoke names its group (or there is only one); a schedule, a `reconcile` or
//! `preflight` without a group or an `AmazonIpSpaceChanged` notification concerns every
//! group, which run side by side and report each for itself: one group's
//! failure never stops another.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::cloud::Cloud;
use crate::cloud::pause::PauseBook;
use crate::error::FailoverError;
use crate::event::{self, AlarmChange, EventError, ManualAction, Trigger};
use crate::groups::{self, Group};
use crate::handler::{self, App, Around, Invocation};
use crate::lease::Locks;
use crate::notify::Notifier;
use crate::report::Report;
use std::sync::Arc;

/// How many groups a trigger for every group runs at once.
const GROUPS_AT_ONCE: usize = 8;

/// One group (its name and settings, held once) and the clients of its
/// region, shared with the other groups there.
#[derive(Debug, Clone)]
pub struct Member<C> {
    pub group: Group,
    pub cloud: C,
}

impl<C: Cloud> Member<C> {
    pub fn name(&self) -> &str {
        &self.group.name
    }

    /// Runs the group's job inside a span naming the group, so every log line
    /// says which appliance it is about.
    async fn run(
        &self,
        trigger: Trigger,
        invocation: &Invocation,
        fleet: &Fleet<C>,
    ) -> Result<Report, FailoverError> {
        let span = tracing::info_span!("group", group = %self.group.name);
        let around = Around {
            group: &self.group.name,
            locks: fleet.locks.as_ref(),
            notifier: fleet.notifier.as_ref(),
            pauses: fleet.pauses.as_deref(),
        };
        handler::run(
            &self.cloud,
            &self.group.settings,
            trigger,
            invocation,
            around,
        )
        .instrument(span)
        .await
    }

    /// [`Member::run`], unless the group sits out a trigger for every group:
    /// a scheduled fail-back of a group without a home (`home_az`) is no
    /// error to tell every day, only nothing to do.
    async fn run_unless_out(
        &self,
        trigger: Trigger,
        invocation: &Invocation,
        fleet: &Fleet<C>,
    ) -> Result<Report, FailoverError> {
        let homeless = self.group.settings.failover.home_az.is_none();
        match trigger {
            Trigger::Manual {
                action: ManualAction::Failback,
                ..
            } if homeless => Ok(Report::ignored(
                invocation.request_id.clone(),
                "no home_az (HOME_AZ) for this group: nothing to fail back to",
            )),
            trigger => self.run(trigger, invocation, fleet).await,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fleet<C> {
    pub members: Vec<Member<C>>,
    /// The groups' leases (`LOCK_TABLE`); without one, nothing but the
    /// function's reserved concurrency keeps two jobs of a group apart.
    pub locks: Option<Locks>,
    /// Where notices go (`NOTIFICATION_TOPIC_ARN`, `EVENT_BUS`); without
    /// one, only the report and the log tell.
    pub notifier: Option<Notifier>,
    /// Where the groups' pauses are kept (the lease table); without one,
    /// `pause` is refused.
    pub pauses: Option<Arc<dyn PauseBook>>,
}

/// What an invocation answers: one report, or one per group.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// Boxed: a report is several times the size of the per-group list.
    One(Box<Report>),
    PerGroup(FleetReport),
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// Always `per_group`; each group's own outcome is in `groups`.
    pub outcome: &'static str,
    pub groups: Vec<GroupResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupResult {
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl GroupResult {
    fn failed(group: &str, e: &FailoverError) -> Self {
        Self {
            group: group.to_owned(),
            report: None,
            error_type: Some(e.error_type()),
            error: Some(e.to_string()),
        }
    }
}

impl<C: Cloud + Clone> Fleet<C> {
    /// Builds the fleet, calling `clients_for` once per distinct region
    /// (`None`: the function's own) and sharing its clients between groups.
    pub fn new(groups: Vec<Group>, mut clients_for: impl FnMut(Option<&str>) -> C) -> Self {
        let mut by_region: BTreeMap<Option<String>, C> = BTreeMap::new();
        let members = groups
            .into_iter()
            .map(|group| {
                let region = group.settings.appliance.target_region.clone();
                let cloud = by_region
                    .entry(region.clone())
                    .or_insert_with(|| clients_for(region.as_deref()))
                    .clone();
                Member { group, cloud }
            })
            .collect();
        Fleet {
            members,
            locks: None,
            notifier: None,
            pauses: None,
        }
    }

    /// The same fleet, each job that changes a group holding its lease.
    pub fn with_locks(self, locks: Locks) -> Self {
        Self {
            locks: Some(locks),
            ..self
        }
    }

    /// The same fleet, its groups' pauses kept in `pauses`.
    pub fn with_pauses(self, pauses: Arc<dyn PauseBook>) -> Self {
        Self {
            pauses: Some(pauses),
            ..self
        }
    }

    /// The same fleet, telling people through `notifier`.
    pub fn with_notifier(self, notifier: Notifier) -> Self {
        Self {
            notifier: Some(notifier),
            ..self
        }
    }

    /// A fleet of one appliance, named after its instance.
    pub fn single(app: App<C>) -> Self {
        let group = Group {
            name: app.settings.appliance.instance_name.clone(),
            settings: app.settings,
        };
        Fleet {
            members: vec![Member {
                group,
                cloud: app.cloud,
            }],
            locks: None,
            notifier: None,
            pauses: None,
        }
    }
}

enum Route<'a, C> {
    One(&'a Member<C>),
    Every,
    /// No group: the incident and why.
    Nobody(String, String),
}

impl<C: Cloud> Fleet<C> {
    fn names(&self) -> String {
        self.members
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The one place that decides whether an alarm concerns a group: by health
    /// check id, then by alarm name. A lone group that names neither takes
    /// every alarm, as a single-appliance deployment always has.
    fn for_alarm(&self, alarm: &AlarmChange) -> Result<&Member<C>, String> {
        let health_check = alarm.health_check_id.as_deref();
        if let Some(member) =
            groups::for_alarm(&self.members, |m| &m.group, health_check, &alarm.name)
        {
            return Ok(member);
        }
        match self.members.as_slice() {
            [only] if only.group.alarm_name().is_none() => {
                match &only.group.settings.appliance.health_check_id {
                    None => Ok(only),
                    Some(wanted) => Err(format!(
                        "alarm {} watches health check {}, not {wanted} (HEALTH_CHECK_ID)",
                        alarm.name,
                        health_check.unwrap_or("none")
                    )),
                }
            }
            _ => Err(format!(
                "alarm {} (health check {}) matches no failover group ({})",
                alarm.name,
                health_check.unwrap_or("none"),
                self.names()
            )),
        }
    }

    fn route(&self, trigger: &Trigger, payload: &Value) -> Result<Route<'_, C>, EventError> {
        match trigger {
            Trigger::Alarm(alarm) => Ok(match self.for_alarm(alarm) {
                Ok(member) => Route::One(member),
                Err(why) => Route::Nobody(alarm.incident_id(), why),
            }),
            Trigger::Manual {
                action:
                    ManualAction::Reconcile
                    | ManualAction::Preflight
                    | ManualAction::Standby
                    | ManualAction::Failback,
                ..
            } if payload.get("group").is_none() => Ok(Route::Every),
            Trigger::Manual { .. } => match payload.get("group") {
                Some(Value::String(name)) => self
                    .members
                    .iter()
                    .find(|m| m.name() == name)
                    .map(Route::One)
                    .ok_or_else(|| {
                        EventError::new(
                            format!("group {name:?} is not a failover group"),
                            format!("\"group\" to be one of: {}", self.names()),
                        )
                    }),
                Some(other) => Err(EventError::new(
                    format!("group is {}, not a string", event::kind_of(other)),
                    format!("\"group\" to be one of: {}", self.names()),
                )),
                None => match self.members.as_slice() {
                    [only] => Ok(Route::One(only)),
                    _ => Err(EventError::new(
                        "a manual invoke names no group, and there are several",
                        format!("\"group\": one of {}", self.names()),
                    )),
                },
            },
            Trigger::Scheduled { .. } | Trigger::IpSpaceChanged => Ok(Route::Every),
        }
    }
}

/// The front door: serves one invocation for the whole fleet (a single
/// appliance is a fleet of one).
pub async fn handle<C: Cloud>(
    fleet: &Fleet<C>,
    payload: &Value,
    invocation: &Invocation,
) -> Result<Response, FailoverError> {
    // Parsed once: routing and every group's run share the trigger.
    let parsed = event::parse(payload).and_then(|t| Ok((fleet.route(&t, payload)?, t)));
    let (route, trigger) = match parsed {
        Ok(r) => r,
        Err(e) => {
            let e = FailoverError::from(e);
            tracing::error!(error_type = %e.error_type(), error = %e, "invocation failed");
            return Err(e);
        }
    };
    match route {
        Route::One(member) => {
            let mut report = member.run(trigger, invocation, fleet).await?;
            if fleet.members.len() > 1 {
                report.reason = format!("group {}: {}", member.name(), report.reason);
            }
            Ok(Response::One(Box::new(report)))
        }
        Route::Nobody(incident, reason) => {
            Ok(Response::One(Box::new(Report::ignored(incident, reason))))
        }
        Route::Every if fleet.members.len() == 1 => {
            let only = &fleet.members[0];
            let reconcile = matches!(
                trigger,
                Trigger::Manual {
                    action: ManualAction::Reconcile,
                    ..
                }
            );
            match only.run(trigger, invocation, fleet).await {
                Ok(report) => Ok(Response::One(Box::new(report))),
                // A reconcile's failure answers like one group's of several:
                // the function has told it, and the schedule's next run is the
                // retry, so neither Lambda's retries nor its on-failure record
                // (a mail a minute in an outage) would add anything.
                Err(e) if reconcile => Ok(Response::PerGroup(FleetReport {
                    outcome: "per_group",
                    groups: vec![GroupResult::failed(only.name(), &e)],
                })),
                Err(e) => Err(e),
            }
        }
        Route::Every => Ok(every_group(fleet, &trigger, invocation).await),
    }
}

/// A trigger for every group (a schedule, an IP-space change): each group
/// runs, concurrently, and one group's error does not hide the others' reports.
async fn every_group<C: Cloud>(
    fleet: &Fleet<C>,
    trigger: &Trigger,
    invocation: &Invocation,
) -> Response {
    // Side by side, a few at a time: twenty groups' looks at once would spend
    // EC2's request tokens that an alarm's failover may need.
    // (The runs are collected first: a stream over a mapping closure would
    // make this future's type too general for the compiler to prove it Send.)
    let runs: Vec<_> = fleet
        .members
        .iter()
        .map(|m| m.run_unless_out(trigger.clone(), invocation, fleet))
        .collect();
    let results: Vec<_> = futures::stream::iter(runs)
        .buffered(GROUPS_AT_ONCE)
        .collect()
        .await;
    let groups = fleet
        .members
        .iter()
        .zip(results)
        .map(|(m, r)| match r {
            Ok(report) => GroupResult {
                group: m.name().to_owned(),
                report: Some(report),
                error_type: None,
                error: None,
            },
            Err(e) => GroupResult::failed(m.name(), &e),
        })
        .collect();
    Response::PerGroup(FleetReport {
        outcome: "per_group",
        groups,
    })
}
