//! The failover job: look → assess → gates → launch → wait → stop + re-point.
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
//! The job runs in two rounds of plan and execute, because the network steps
//! are decided against the replacement as it is once running: one round of
//! concurrent describes (plus the health-check status), then RunInstances, a
//! few DescribeInstances while the replacement starts (a replacement EC2
//! terminates is followed by the next option), then StopInstances beside
//! source/dest check, floating IP, routes and DNS. The failed instance is
//! stopped only once its replacement runs: until then the appliance, however
//! impaired, is all there is.

mod gates;
mod handover;
mod planned;

pub use crate::report::PlannedMove;

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::cloud::{AlarmQuery, Cloud, Instance};
use crate::config::{Settings, Standby};
use crate::engine::{Applied, Change, Context, Decision, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup::{Inherited, World, image_age, inherit, wait, world};
use crate::replacement::{self as plan, LaunchPlan, Situation, post_launch};
use crate::report::{Outcome, Report, StepLog, StepStatus};

/// One failover request, as the handler derived it from the trigger.
#[derive(Debug, Clone)]
pub struct FailoverRequest {
    pub incident: String,
    /// Why the failover runs (the alarm's reason, the operator's words).
    pub reason: String,
    /// Ask Route 53 about this health check before launching (alarm triggers).
    pub confirm_with: Option<String>,
    /// The alarm state change an event reported: read the alarm again before
    /// a new launch, since Lambda may deliver the event late.
    pub event: Option<AlarmEvent>,
    /// When the incident began: its alarm's transition to ALARM. `None` for
    /// an operator's request, which begins when it runs.
    pub began: Option<DateTime<Utc>>,
    /// A reconcile finishes an incident its alarm no longer calls for: only
    /// a replacement the incident launched is taken further, nothing new.
    pub finishing: bool,
    /// A fail-back or a drill: gated on the alarm being OK (and for a drill
    /// on its guardrails); a fail-back launches only in `HOME_AZ`.
    pub planned: Option<PlannedMove>,
}

/// What an alarm event said: this alarm went ALARM at this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmEvent {
    pub name: String,
    pub changed_at: DateTime<Utc>,
}

impl FailoverRequest {
    /// For an alarm that went ALARM at `began` (its event, or the reconcile
    /// reading its state): Route 53 confirms first, when `HEALTH_CHECK_ID`
    /// names the health check.
    pub fn on_alarm(
        incident: String,
        reason: String,
        began: DateTime<Utc>,
        settings: &Settings,
    ) -> Self {
        Self {
            incident,
            reason,
            confirm_with: settings.appliance.health_check_id.clone(),
            event: None,
            began: Some(began),
            finishing: false,
            planned: None,
        }
    }

    /// The same, for an alarm's event rather than a look at the alarm.
    pub fn from_event(mut self, name: &str, changed_at: DateTime<Utc>) -> Self {
        self.event = Some(AlarmEvent {
            name: name.to_owned(),
            changed_at,
        });
        self
    }

    /// For an operator (`{"action": "failover"}` or `"plan"`): the request
    /// is its own confirmation.
    pub fn by_operator(incident: String, reason: String) -> Self {
        Self {
            incident,
            reason,
            confirm_with: None,
            event: None,
            began: None,
            finishing: false,
            planned: None,
        }
    }

    /// For a planned move (`{"action": "failback"}` or `"drill"`): an
    /// operator's failover behind the planned move's gates.
    pub fn planned(incident: String, reason: String, planned: PlannedMove) -> Self {
        Self {
            planned: Some(planned),
            ..Self::by_operator(incident, reason)
        }
    }

    /// For a reconcile that finds `incident` unfinished (its replacement
    /// launched at `began`, its move not complete) while the alarm no longer
    /// calls for a failover.
    pub fn finishing(incident: String, reason: String, began: Option<DateTime<Utc>>) -> Self {
        Self {
            incident,
            reason,
            confirm_with: None,
            event: None,
            began,
            finishing: true,
            planned: None,
        }
    }

    /// The incident, with when it began (`now` for an operator's).
    fn incident_at(&self, now: DateTime<Utc>) -> plan::Incident<'_> {
        plan::Incident {
            id: &self.incident,
            began: self.began.unwrap_or(now),
        }
    }
}

/// What the report says besides the steps.
#[derive(Debug, Default)]
struct Summary {
    old_instance: Option<String>,
    old_availability_zone: Option<String>,
    new_instance: Option<String>,
    availability_zone: Option<String>,
    image: Option<String>,
    why: String,
}

/// What one failover works with, so its steps need not pass it around.
struct Failover<'a, C> {
    ctx: &'a Context<'a, C>,
    req: &'a FailoverRequest,
}

/// Runs (or, through a dry-run executor, plans) one failover.
pub async fn run<C: Cloud>(
    ctx: &Context<'_, C>,
    req: &FailoverRequest,
) -> Result<Report, FailoverError> {
    let (settings, now) = (ctx.settings, ctx.now);
    let job = Failover { ctx, req };
    let mut log = StepLog::new();
    // Boxed: its join of five looks is a large future, and the failover's
    // own would carry it inline (a debug build overflowed a 2 MiB stack).
    let (world, situation, confirmation) = Box::pin(job.look_and_assess(&mut log)).await?;
    let stand_down = match job.whose(&world, &situation, &mut log).await? {
        handover::Whose::Ours => None,
        handover::Whose::Not(outcome, why) => Some((outcome, why)),
    };
    let gate = match stand_down {
        Some(down) => Some(down),
        None => gates::pass(&world, settings, &situation, confirmation, now, &mut log)?
            .map(|why| (Outcome::Ignored, why)),
    };
    if let Some((outcome, healthy)) = gate {
        let summary = Summary {
            old_instance: situation.failed_id(),
            old_availability_zone: situation.failed().map(|f| f.availability_zone.clone()),
            why: healthy,
            ..Summary::default()
        };
        return Ok(report((req, now), outcome, summary, &world, log));
    }
    // Launch first, and stop the failed instance only once a replacement
    // runs: a refused launch, or replacements that all die on launch (a KMS
    // key they may not use), leave the appliance as it was.
    let (launch, launched, generation) = job.launch(&world, &situation, &mut log).await?;
    let replacement = job
        .until_running(
            &world,
            &situation,
            (&launch, generation),
            launched,
            &mut log,
        )
        .await?;
    job.stop_beside_move(&world, &situation, &launch, replacement.as_ref(), &mut log)
        .await?;
    let done = if log.changed() {
        Outcome::FailedOver
    } else {
        Outcome::AlreadyFailedOver
    };
    job.mark_moved(replacement.as_ref(), &mut log).await;
    let summary = failed_over(&situation, launch, replacement);
    Ok(report(
        (req, now),
        ctx.exec.outcome(done),
        summary,
        &world,
        log,
    ))
}

/// What the report of a failover that got this far says: the instance
/// replaced, the one now serving, where, from which AMI, and why.
fn failed_over(
    situation: &Situation,
    launch: LaunchPlan,
    replacement: Option<Instance>,
) -> Summary {
    let why = why(situation, &launch);
    Summary {
        old_instance: situation.failed_id(),
        old_availability_zone: situation.failed().map(|f| f.availability_zone.clone()),
        availability_zone: replacement
            .as_ref()
            .map(|r| r.availability_zone.clone())
            .or(launch.availability_zone),
        new_instance: replacement.map(|r| r.id),
        image: launch.image,
        why,
    }
}

/// What the report says was done about the failed instance: a promoted
/// standby is not the launch a fresh situation's description announces.
fn why(situation: &Situation, launch: &LaunchPlan) -> String {
    match (situation, &launch.launch.decision) {
        (Situation::Fresh { failed }, Decision::Make(Change::Promote { standby, .. })) => format!(
            "{} ({}, {}) is the failed instance; standby {standby} took its place",
            failed.id,
            failed.state.as_str(),
            failed.availability_zone
        ),
        _ => situation.describe(),
    }
}

/// A launch that failed before any replacement existed: nothing was stopped.
fn not_launched(cause: FailoverError, situation: &Situation) -> FailoverError {
    match situation.failed_id() {
        Some(failed) => FailoverError::NotLaunched {
            cause: Box::new(cause),
            failed,
        },
        None => cause,
    }
}

impl<C: Cloud> Failover<'_, C> {
    /// One round of looks (with Route 53's view, for an alarm), then where
    /// this incident stands.
    async fn look_and_assess(
        &self,
        log: &mut StepLog,
    ) -> Result<(World, Situation, gates::Confirmation), FailoverError> {
        let (cloud, req, settings) = (self.ctx.cloud(), self.req, self.ctx.settings);
        let home = planned::home(settings, req.planned)?;
        let t = Instant::now();
        let (world, route53, alarm, readings, schedule_images) = tokio::join!(
            world::look(cloud, settings),
            async {
                match &req.confirm_with {
                    Some(id) => Some((id.clone(), cloud.health_check_status(id).await)),
                    None => None,
                }
            },
            async {
                match &req.event {
                    Some(e) => Some((e.clone(), cloud.alarms(AlarmQuery::Named(&e.name)).await)),
                    None => None,
                }
            },
            async {
                match req.planned {
                    Some(p) => Some((p, planned::read(cloud, settings, p).await)),
                    None => None,
                }
            },
            async {
                let reboots = !settings.stamp.no_reboot && req.began.is_some();
                match reboots {
                    true => Some(cloud.tool_images(&settings.appliance.ami_name).await),
                    false => None,
                }
            }
        );
        let confirmation = gates::Confirmation {
            route53,
            alarm,
            alarm_began: req.began,
            planned: readings,
            schedule_images,
        };
        let mut world = world?;
        log.record(Step::Discover, StepStatus::Done, world.summary(), t);
        if let Some(home) = home {
            planned::narrow(&mut world, settings, home)?;
        }
        let t = Instant::now();
        // A planned move is no duplicate of the failover before it: the
        // cooldown, meant for the alarms of one outage, does not hold it.
        let cooldown = req.planned.is_none();
        let situation = plan::assess(&world, settings, (&req.incident, cooldown), self.ctx.now)?;
        log.record(Step::Assess, StepStatus::Done, situation.describe(), t);
        Ok((world, situation, confirmation))
    }

    /// What a new launch copies beyond DescribeInstances; `None` for a
    /// resumed incident, which launches nothing (yet).
    async fn inherit(&self, situation: &Situation) -> Result<Option<Inherited>, FailoverError> {
        match situation {
            Situation::Fresh { failed } => inherit::read(self.ctx.cloud(), failed)
                .await
                .map(Some)
                .map_err(|e| not_launched(e, situation)),
            Situation::Continue { .. } => Ok(None),
        }
    }

    /// RunInstances (or what a resumed incident finds of it). When every
    /// option's ClientToken is spent on replacements EC2 terminated, the next
    /// generation of tokens is tried, as many times as MAX_FAILOVERS allows.
    async fn launch(
        &self,
        world: &World,
        situation: &Situation,
        log: &mut StepLog,
    ) -> Result<(LaunchPlan, Option<Instance>, u32), FailoverError> {
        let (settings, req) = (self.ctx.settings, self.req);
        if let Some(promoted) = self.promote(world, situation, log).await? {
            return Ok(promoted);
        }
        let mut generation = 0;
        // A resumed incident launches nothing here, so it reads nothing.
        let inherited = self.inherit(situation).await?.unwrap_or_default();
        loop {
            let plan = plan::launch_plan(
                world,
                settings,
                (situation, &inherited),
                req.incident_at(self.ctx.now),
                self.ctx.now,
                generation,
            )?;
            match self
                .ctx
                .exec
                .in_order(std::slice::from_ref(&plan.launch), log)
                .await
            {
                Ok(applied) => {
                    let launched = replacement_of(applied, situation);
                    return Ok((plan, launched, generation));
                }
                Err(FailoverError::TokensSpent { .. })
                    if generation < settings.failover.max_failovers =>
                {
                    generation += 1;
                }
                Err(e) => return Err(not_launched(e, situation)),
            }
        }
    }

    /// With a warm or hot standby, a new failover promotes it instead of
    /// launching: started when stopped, then tagged as the replacement.
    /// `None` (and a cold launch) when there is none fit, or EC2 refuses to
    /// start or tag it; the report says which. A call whose answer was lost
    /// (it may have been carried out) is an error: a retry resumes it.
    async fn promote(
        &self,
        world: &World,
        situation: &Situation,
        log: &mut StepLog,
    ) -> Result<Option<(LaunchPlan, Option<Instance>, u32)>, FailoverError> {
        let Situation::Fresh { failed } = situation else {
            return Ok(None);
        };
        if self.ctx.settings.failover.standby == Standby::Cold {
            return Ok(None);
        }
        let t = Instant::now();
        let (step, standby) = match plan::promotion(world, failed, &self.req.incident, self.ctx.now)
        {
            Ok(found) => found,
            Err(why) => {
                let detail = format!("{why}: falling back to a cold launch from the AMI");
                tracing::warn!(%detail, "no standby to promote");
                log.record(Step::Promote, StepStatus::Skipped, detail, t);
                return Ok(None);
            }
        };
        let planned = match self
            .ctx
            .exec
            .in_order(std::slice::from_ref(&step), log)
            .await
        {
            Ok(applied) => applied.contains(&Applied::Planned),
            Err(e) if refused(&e) => {
                let detail = format!("{e}: falling back to a cold launch from the AMI");
                tracing::warn!(%detail, "the standby could not be promoted");
                log.record(Step::Promote, StepStatus::Skipped, detail, t);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let plan = LaunchPlan {
            stop: plan::stop_step(Some(failed), Some(&failed.id)),
            launch: step,
            image: standby.image_id.clone(),
            availability_zone: Some(standby.availability_zone.clone()),
            inherited: None,
        };
        // A dry run only planned the promotion: nothing to wait for.
        let replacement = (!planned).then_some(standby);
        Ok(Some((plan, replacement, 0)))
    }

    /// Waits for the replacement to run. A replacement EC2 terminates on
    /// launch is followed by the next option (the next AZ, then type), then by
    /// a new round of tokens, while the invocation has time. `None` in a dry
    /// run, where nothing was launched.
    async fn until_running(
        &self,
        world: &World,
        situation: &Situation,
        (launch, mut generation): (&LaunchPlan, u32),
        launched: Option<Instance>,
        log: &mut StepLog,
    ) -> Result<Option<Instance>, FailoverError> {
        let mut step = launch.launch.clone();
        let mut candidate = launched;
        let mut inherited = launch.inherited.clone();
        loop {
            let Some(r) = candidate else { return Ok(None) };
            match wait::until_running(self.ctx.cloud(), r.clone(), self.ctx.deadline(), log).await {
                Ok(running) => return Ok(Some(running)),
                Err(e @ FailoverError::ReplacementFailed { .. }) => {
                    let next = self
                        .next_launch(
                            world,
                            situation,
                            (&step, &r),
                            &mut generation,
                            &mut inherited,
                        )
                        .await?;
                    step = next.ok_or(e)?;
                    let applied = self
                        .ctx
                        .exec
                        .in_order(std::slice::from_ref(&step), log)
                        .await?;
                    candidate = replacement_of(applied, situation);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Stops the failed instance beside the move: a stop that hangs in an
    /// impaired AZ never delays the floating IP, the routes or DNS. A failed
    /// move is the error; a failed stop is one only once the appliance moved.
    async fn stop_beside_move(
        &self,
        world: &World,
        situation: &Situation,
        launch: &LaunchPlan,
        replacement: Option<&Instance>,
        log: &mut StepLog,
    ) -> Result<(), FailoverError> {
        let mut stop_log = StepLog::new();
        let (stopped, moved) = tokio::join!(
            self.ctx
                .exec
                .each(std::slice::from_ref(&launch.stop), &mut stop_log),
            self.move_to(world, situation, replacement, log)
        );
        log.absorb(stop_log);
        moved?;
        if let Some(Err(e)) = stopped.into_iter().next() {
            let steps = serde_json::to_string(log.records()).unwrap_or_default();
            tracing::error!(steps = %steps, "the appliance moved, but the failed instance could not be stopped");
            return Err(e);
        }
        Ok(())
    }

    /// Moves the floating IP, routes and DNS to the running replacement.
    async fn move_to(
        &self,
        world: &World,
        situation: &Situation,
        replacement: Option<&Instance>,
        log: &mut StepLog,
    ) -> Result<(), FailoverError> {
        let id = replacement.map_or("(replacement)", |r| r.id.as_str());
        let failed_id = situation.failed_id();
        let network = post_launch(
            world,
            self.ctx.settings,
            id,
            replacement,
            failed_id.as_deref(),
        );
        self.ctx.exec.all(&network, log).await?;
        Ok(())
    }

    /// What follows a replacement EC2 terminated on launch: the next option
    /// of this round of tokens, else the first of a new round, as many rounds
    /// as MAX_FAILOVERS allows. `None`: nothing left to try here. A resumed
    /// incident reads what the new round inherits only now, when it needs it.
    async fn next_launch(
        &self,
        world: &World,
        situation: &Situation,
        (step, dead): (&PlannedStep, &Instance),
        generation: &mut u32,
        inherited: &mut Option<Inherited>,
    ) -> Result<Option<PlannedStep>, FailoverError> {
        if let Some(next) = plan::after(step, dead) {
            return Ok(Some(next));
        }
        let Some(failed) = situation.failed() else {
            return Ok(None);
        };
        if *generation >= self.ctx.settings.failover.max_failovers {
            return Ok(None);
        }
        let known = match inherited.take() {
            Some(known) => known,
            None => inherit::read(self.ctx.cloud(), failed).await?,
        };
        *generation += 1;
        let round = (self.req.incident_at(self.ctx.now), *generation);
        let next = plan::relaunch(
            world,
            self.ctx.settings,
            (failed, &known),
            dead,
            round,
            self.ctx.now,
        );
        *inherited = Some(known);
        Ok(next)
    }
}

/// AWS answered with an error code: the call was refused, not lost.
fn refused(e: &FailoverError) -> bool {
    matches!(e, FailoverError::Aws { source, .. } if source.code().is_some())
}

/// The replacement a launch step yielded: the one RunInstances returned, or
/// the one a resumed incident already has; none in a dry run.
fn replacement_of(applied: Vec<Applied>, situation: &Situation) -> Option<Instance> {
    match (applied.into_iter().next(), situation) {
        (Some(Applied::Launched(instance)), _) => Some(*instance),
        (_, Situation::Continue { replacement, .. }) => Some((**replacement).clone()),
        _ => None,
    }
}

fn report(
    (req, now): (&FailoverRequest, DateTime<Utc>),
    outcome: Outcome,
    summary: Summary,
    world: &World,
    log: StepLog,
) -> Report {
    let created = summary
        .image
        .as_deref()
        .and_then(|id| world.images.iter().find(|i| i.id == id))
        .and_then(|i| i.creation_date);
    let used = summary.image.as_ref().map(|id| match created {
        Some(c) => format!(
            "AMI {id} created {} ({})",
            c.to_rfc3339_opts(SecondsFormat::Secs, true),
            image_age(c, now)
        ),
        None => format!("AMI {id} (creation time unknown)"),
    });
    let why = match (outcome, used) {
        (Outcome::Ignored, _) | (_, None) => summary.why,
        (_, Some(used)) => format!("{}; {used}", summary.why),
    };
    let reason = format!("{}; {why}", req.reason);
    // Read at the end: the invocation's clock (`now`) is its start.
    let recovered = (outcome == Outcome::FailedOver).then(|| {
        let began = req.began.unwrap_or(now);
        u64::try_from((Utc::now() - began).num_seconds()).unwrap_or(0)
    });
    let report = Report {
        old_instance: summary.old_instance,
        old_availability_zone: summary.old_availability_zone,
        time_to_recover_s: recovered,
        planned: req.planned,
        new_instance: summary.new_instance,
        availability_zone: summary.availability_zone,
        image_created: created.map(|c| c.to_rfc3339_opts(SecondsFormat::Secs, true)),
        image: summary.image,
        ..Report::new(outcome, &req.incident, reason, log.into_records())
    };
    tracing::info!(
        outcome = ?report.outcome,
        old_instance = report.old_instance.as_deref().unwrap_or("-"),
        new_instance = report.new_instance.as_deref().unwrap_or("-"),
        "failover finished"
    );
    report
}
