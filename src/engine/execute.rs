//! The executor: the one place that turns a plan into AWS calls, or, in a dry
//! run, into the report's `planned` lines. Jobs never ask whether this is a dry
//! run; they hand their plan here and read back what each step yielded.

use std::time::Instant;

use futures::future::join_all;

use super::{Change, Decision, Launch, PlannedStep, Step};
use crate::cloud::{Cloud, CloudError, Instance};
use crate::error::FailoverError;
use crate::report::{Outcome, StepLog, StepStatus};

/// AWS error codes that mean "not here, not this type, right now".
const CAPACITY_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "Unsupported",
];

/// What a step yielded that a later step needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Nothing new: already done, left alone or noted.
    Nothing,
    /// A dry run reported the change instead of making it.
    Planned,
    /// The change was made.
    Done,
    Launched(Box<Instance>),
    ImageCreated(String),
}

/// How one step ended, before it is recorded.
struct Ended {
    status: StepStatus,
    detail: String,
    started: Instant,
    result: Result<Applied, FailoverError>,
}

#[derive(Debug, Clone, Copy)]
pub struct Executor<'a, C> {
    cloud: &'a C,
    dry_run: bool,
}

impl<'a, C: Cloud> Executor<'a, C> {
    pub fn new(cloud: &'a C, dry_run: bool) -> Self {
        Self { cloud, dry_run }
    }

    /// The report's outcome: `done` when the plan was carried out, `planned`
    /// when it was only reported.
    pub fn outcome(&self, done: Outcome) -> Outcome {
        if self.dry_run { Outcome::Planned } else { done }
    }

    /// Carries out steps that do not depend on each other, concurrently. Every
    /// step is recorded, in plan order; each yields its own result.
    pub async fn each(
        &self,
        steps: &[PlannedStep],
        log: &mut StepLog,
    ) -> Vec<Result<Applied, FailoverError>> {
        let ended = join_all(steps.iter().map(|s| self.carry_out(s))).await;
        steps
            .iter()
            .zip(ended)
            .map(|(s, e)| {
                log.record_on(s.step, s.subject.as_deref(), e.status, e.detail, e.started);
                e.result
            })
            .collect()
    }

    /// [`Executor::each`], then the first failure, if any.
    pub async fn all(
        &self,
        steps: &[PlannedStep],
        log: &mut StepLog,
    ) -> Result<Vec<Applied>, FailoverError> {
        self.each(steps, log).await.into_iter().collect()
    }

    /// Carries out steps one after the other, stopping at the first failure.
    pub async fn in_order(
        &self,
        steps: &[PlannedStep],
        log: &mut StepLog,
    ) -> Result<Vec<Applied>, FailoverError> {
        let mut applied = Vec::with_capacity(steps.len());
        for s in steps {
            let e = self.carry_out(s).await;
            log.record_on(s.step, s.subject.as_deref(), e.status, e.detail, e.started);
            applied.push(e.result?);
        }
        Ok(applied)
    }

    async fn carry_out(&self, s: &PlannedStep) -> Ended {
        let started = Instant::now();
        let (status, detail, result) = match &s.decision {
            Decision::AlreadyDone(d) => (StepStatus::AlreadyDone, d.clone(), Ok(Applied::Nothing)),
            Decision::LeaveAlone(d) => (StepStatus::Skipped, d.clone(), Ok(Applied::Nothing)),
            Decision::Noted(d) => (StepStatus::Done, d.clone(), Ok(Applied::Nothing)),
            Decision::Make(change) if self.dry_run => {
                (StepStatus::Planned, change.describe(), Ok(Applied::Planned))
            }
            Decision::Make(change) => match self.apply(s.step, change).await {
                Ok((applied, status, detail)) => (status, detail, Ok(applied)),
                Err(e) => (StepStatus::Failed, e.to_string(), Err(e)),
            },
        };
        Ended {
            status,
            detail,
            started,
            result,
        }
    }

    async fn apply(
        &self,
        step: Step,
        change: &Change,
    ) -> Result<(Applied, StepStatus, String), FailoverError> {
        if let Change::Launch(launch) = change {
            return Box::pin(self.launch(launch)).await;
        }
        let fail = |source: CloudError| FailoverError::Aws {
            step,
            resource: change.resource(),
            source,
        };
        let done = (Applied::Done, StepStatus::Done, change.describe());
        // Boxed: one state machine over every kind of AWS call is large.
        match Box::pin(self.call(change)).await {
            Ok(Applied::ImageCreated(id)) => Ok((
                Applied::ImageCreated(id.clone()),
                StepStatus::Done,
                format!("{id}: {}", change.describe()),
            )),
            Ok(_) => Ok(match change {
                Change::Stop { instance } => (
                    Applied::Done,
                    StepStatus::Done,
                    format!("stop requested for {instance} (not waiting for it)"),
                ),
                _ => done,
            }),
            Err(e) => match already_done(change, &e) {
                Some(detail) => Ok((Applied::Nothing, StepStatus::AlreadyDone, detail)),
                None => Err(fail(e)),
            },
        }
    }

    /// The AWS call(s) of one change.
    async fn call(&self, change: &Change) -> Result<Applied, CloudError> {
        let c = self.cloud;
        match change {
            Change::Stop { instance } => c.stop_instance(instance).await,
            Change::DisableSourceDestCheck { instance } => {
                c.disable_source_dest_check(instance).await
            }
            Change::MoveFloatingIp {
                allocation_id, to, ..
            } => c.associate_address(allocation_id, to).await,
            Change::CreateRoute {
                table,
                destination,
                to,
            } => c.create_route(table, destination, to).await,
            Change::ReplaceRoute {
                table,
                destination,
                to,
                ..
            } => c.replace_route(table, destination, to).await,
            Change::UpsertRecord {
                zone_id,
                name,
                ttl,
                to,
                ..
            } => c.upsert_a_record(zone_id, name, *ttl, to).await,
            Change::CreateImage(request) => {
                return c.create_image(request).await.map(Applied::ImageCreated);
            }
            Change::TagSnapshots {
                snapshots, tags, ..
            } => c.create_tags(snapshots, tags).await,
            Change::Prune {
                image, snapshots, ..
            } => self.prune(image, snapshots).await,
            Change::DeleteSnapshot { snapshot, .. } => c.delete_snapshot(snapshot).await,
            Change::RevokeIngress { group, rules } => c.revoke_ingress(group, rules).await,
            Change::AuthorizeIngress {
                group,
                port,
                ranges,
                description,
            } => c.authorize_ingress(group, *port, ranges, description).await,
            Change::Launch(_) => Ok(()),
        }
        .map(|()| Applied::Done)
    }

    /// Deregisters an AMI, then deletes its snapshots (AWS keeps them otherwise,
    /// and bills for them). Either may have been done by a run whose answer was lost.
    async fn prune(&self, image: &str, snapshots: &[String]) -> Result<(), CloudError> {
        match self.cloud.deregister_image(image).await {
            Err(e) if !e.code().is_some_and(|c| c.starts_with("InvalidAMIID.")) => return Err(e),
            _ => {}
        }
        let deleted = join_all(snapshots.iter().map(|s| self.cloud.delete_snapshot(s))).await;
        deleted
            .into_iter()
            .filter(|r| !matches!(r, Err(e) if e.code() == Some("InvalidSnapshot.NotFound")))
            .collect()
    }

    /// Tries each launch attempt in order, moving on only when EC2 says it has
    /// no capacity (or does not offer the type) there.
    async fn launch(
        &self,
        launch: &Launch,
    ) -> Result<(Applied, StepStatus, String), FailoverError> {
        let mut passed_over = Vec::new();
        for attempt in &launch.attempts {
            let r = &attempt.request;
            match self.cloud.run_instance(r).await {
                Ok(instance) => {
                    let detail = format!(
                        "{} ({}) from {} in {} ({}), replacing {}{}",
                        instance.id,
                        r.instance_type,
                        launch.image,
                        r.subnet_id,
                        attempt.availability_zone,
                        launch.replacing,
                        if passed_over.is_empty() {
                            String::new()
                        } else {
                            format!("; no capacity first for: {}", passed_over.join("; "))
                        }
                    );
                    return Ok((
                        Applied::Launched(Box::new(instance)),
                        StepStatus::Done,
                        detail,
                    ));
                }
                Err(e) if e.code().is_some_and(|c| CAPACITY_CODES.contains(&c)) => {
                    tracing::warn!(attempt = %attempt.label(), subnet = %r.subnet_id, error = %e,
                        "no capacity; trying the next option");
                    passed_over.push(format!(
                        "{} ({})",
                        attempt.label(),
                        e.code().unwrap_or_default()
                    ));
                }
                Err(source) => {
                    return Err(FailoverError::Aws {
                        step: Step::Launch,
                        resource: format!("{} {} in {}", r.image_id, r.instance_type, r.subnet_id),
                        source,
                    });
                }
            }
        }
        Err(FailoverError::NoCapacity {
            tried: passed_over.join("; "),
        })
    }
}

/// An error that means an earlier run (whose answer was lost) already made
/// the change: the step's detail, or `None` when it is a real failure.
fn already_done(change: &Change, e: &CloudError) -> Option<String> {
    match (change, e.code()?) {
        (Change::Stop { instance }, "InvalidInstanceID.NotFound") => {
            Some(format!("{instance} no longer exists"))
        }
        // AWS keeps AMI names unique per account and region.
        (Change::CreateImage(r), "InvalidAMIName.Duplicate") => {
            Some(format!("an AMI named {} already exists ({e})", r.name))
        }
        (Change::DeleteSnapshot { .. }, "InvalidSnapshot.NotFound") => Some(change.describe()),
        _ => None,
    }
}
