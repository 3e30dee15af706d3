//! The executor: the one place that turns a plan into AWS calls, or, in a dry
//! run, into the report's `planned` lines. Jobs never ask whether this is a dry
//! run; they hand their plan here and read back what each step yielded.

use std::time::{Duration, Instant};

use futures::future::join_all;

use super::{Change, Decision, Launch, LaunchAttempt, PlannedStep, Step};
use crate::cloud::{Cloud, CloudError, ErrorKind, Instance, LaunchRequest, Tag};
use crate::error::FailoverError;
use crate::report::{Outcome, StepLog, StepStatus};

/// Time kept back at the end of an invocation: one more AWS call may take its
/// whole timeout after the last look at the clock, and then the result must
/// still be recorded and returned. With less, Lambda could end the run first,
/// with no report and no metrics line.
pub const DEADLINE_MARGIN: Duration =
    Duration::from_secs(crate::cloud::sdk::OPERATION_TIMEOUT.as_secs() + 5);
/// Without a deadline (a local run), this many tries at most.
const MAX_TRIES_WITHOUT_DEADLINE: u32 = 6;

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
    /// When the invocation must have returned: retries stop in time.
    deadline: Option<Instant>,
}

impl<'a, C: Cloud> Executor<'a, C> {
    pub fn new(cloud: &'a C, dry_run: bool, deadline: Option<Instant>) -> Self {
        Self {
            cloud,
            dry_run,
            deadline,
        }
    }

    /// The cloud the calls go to.
    pub fn cloud(&self) -> &'a C {
        self.cloud
    }

    /// When the invocation must have returned, if Lambda said.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
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
        match self.call_with_retries(change).await {
            Ok(Applied::ImageCreated(id)) => Ok((
                Applied::ImageCreated(id.clone()),
                StepStatus::Done,
                format!("{id}: {}", change.describe()),
            )),
            Ok(_) => Ok(match change {
                Change::Stop { instance, .. } => (
                    Applied::Done,
                    StepStatus::Done,
                    format!("stop requested for {instance} (not waiting for it)"),
                ),
                _ => done,
            }),
            Err(e) => match already_done(change, &e) {
                Some(detail) => Ok((Applied::Nothing, StepStatus::AlreadyDone, detail)),
                None => {
                    match left_for_later(change, &e).or_else(|| never_carried_out(change, &e)) {
                        Some((status, detail)) => Ok((Applied::Nothing, status, detail)),
                        None => Err(fail(e)),
                    }
                }
            },
        }
    }

    /// The call, tried again with backoff while AWS throttles or does not know
    /// a new instance yet, and the invocation has time. A stop is never
    /// retried here: nothing waits for it, and a later run repeats it.
    async fn call_with_retries(&self, change: &Change) -> Result<Applied, CloudError> {
        let mut tries = 0u32;
        loop {
            // Boxed: one state machine over every kind of AWS call is large.
            let result = Box::pin(self.call(change)).await;
            match &result {
                Err(e) if retries(change, e) && self.time_for(tries) => {
                    tracing::warn!(error = %e, tries, "trying again");
                    tokio::time::sleep(backoff(tries)).await;
                    tries += 1;
                }
                _ => return result,
            }
        }
    }

    /// True when one more try, after its backoff, still leaves the margin.
    fn time_for(&self, tries: u32) -> bool {
        match self.deadline {
            Some(d) => Instant::now() + backoff(tries) + DEADLINE_MARGIN < d,
            None => tries + 1 < MAX_TRIES_WITHOUT_DEADLINE,
        }
    }

    /// The AWS call(s) of one change.
    async fn call(&self, change: &Change) -> Result<Applied, CloudError> {
        let c = self.cloud;
        match change {
            Change::Stop { instance, force } => c.stop_instance(instance, *force).await,
            Change::Promote {
                standby,
                start,
                tags,
            } => self.promote(standby, *start, tags).await,
            Change::Start { instance } => c.start_instance(instance).await,
            Change::Terminate { instance, .. } => c.terminate_instance(instance).await,
            Change::DisableSourceDestCheck { instance } => {
                c.disable_source_dest_check(instance).await
            }
            Change::DisableInterfaceSourceDestCheck { interface } => {
                c.disable_interface_source_dest_check(interface).await
            }
            Change::MoveFloatingIp { allocation_id, .. } => {
                c.associate_address(allocation_id, change.address_target().unwrap_or_default())
                    .await
            }
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
            Change::TagSnapshots { .. } | Change::MarkInstance { .. } => self.tag(change).await,
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

    /// CreateTags of a change that tags (snapshots, an instance's mark).
    async fn tag(&self, change: &Change) -> Result<(), CloudError> {
        match change {
            Change::TagSnapshots {
                snapshots, tags, ..
            } => self.cloud.create_tags(snapshots, tags).await,
            Change::MarkInstance { instance, tag, .. } => {
                let (ids, tags) = (std::slice::from_ref(instance), std::slice::from_ref(tag));
                self.cloud.create_tags(ids, tags).await
            }
            _ => Ok(()),
        }
    }

    /// Starts a stopped standby (when `start`), then tags it as the
    /// replacement: a crash in between leaves a running standby, which the
    /// next run promotes with the tags alone. A start EC2 refuses (no
    /// capacity in that AZ) leaves it an untagged standby, and the failover
    /// launches instead.
    async fn promote(&self, standby: &str, start: bool, tags: &[Tag]) -> Result<(), CloudError> {
        if start {
            self.cloud.start_instance(standby).await?;
        }
        self.cloud.create_tags(&[standby.to_owned()], tags).await
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

    /// RunInstances, tried again while throttled and time allows.
    async fn run_instance(&self, r: &LaunchRequest) -> Result<Instance, CloudError> {
        let mut tries = 0u32;
        loop {
            match self.cloud.run_instance(r).await {
                Err(e) if is_throttling(&e) && self.time_for(tries) => {
                    tokio::time::sleep(backoff(tries)).await;
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    /// Tries each launch attempt in order, moving on when EC2 says it has no
    /// capacity (or does not offer the type) there, or that the attempt's
    /// token was spent on a replacement it terminated.
    async fn launch(
        &self,
        launch: &Launch,
    ) -> Result<(Applied, StepStatus, String), FailoverError> {
        let mut passed = PassedOver::default();
        for attempt in &launch.attempts {
            let r = &attempt.request;
            match self.run_instance(r).await {
                Ok(instance) => {
                    let detail = launched(launch, attempt, &instance, &passed.notes);
                    return Ok((
                        Applied::Launched(Box::new(instance)),
                        StepStatus::Done,
                        detail,
                    ));
                }
                Err(e) => passed
                    .note(attempt, e)
                    .map_err(|source| FailoverError::Aws {
                        step: Step::Launch,
                        resource: format!("{} {} in {}", r.image_id, r.instance_type, r.subnet_id),
                        source,
                    })?,
            }
        }
        Err(passed.into_error())
    }
}

/// The launch options EC2 refused so far, and why.
#[derive(Default)]
struct PassedOver {
    notes: Vec<String>,
    /// A ClientToken spent on a replacement EC2 terminated.
    spent: bool,
    /// A refusal for capacity, which a later invocation may not meet.
    capacity: bool,
}

impl PassedOver {
    /// Records a refusal that is about this option (this AZ, this type, this
    /// token) and lets the next option be tried; any other error (a denied
    /// call, a bad AMI, a call that got no answer and may have launched) ends
    /// the launch: trying on could not help, or could launch twice.
    fn note(&mut self, attempt: &LaunchAttempt, e: CloudError) -> Result<(), CloudError> {
        let label = attempt.label();
        match e.kind() {
            ErrorKind::TokenSpent => {
                self.spent = true;
                let token = &attempt.request.client_token;
                self.notes.push(format!(
                    "{label} (its ClientToken {token} was spent on a replacement EC2 terminated)"
                ));
            }
            // Not here, not this type, right now: the next option (another
            // AZ, then another type) may succeed.
            kind @ (ErrorKind::NoCapacity | ErrorKind::CannotLaunchHere) => {
                self.capacity |= kind == ErrorKind::NoCapacity;
                tracing::warn!(attempt = %label, subnet = %attempt.request.subnet_id, error = %e,
                    "EC2 refused this launch option; trying the next");
                self.notes
                    .push(format!("{label} ({})", e.code().unwrap_or_default()));
            }
            _ => return Err(e),
        }
        Ok(())
    }

    fn into_error(self) -> FailoverError {
        let tried = self.notes.join("; ");
        match (self.spent, self.capacity) {
            (true, _) => FailoverError::TokensSpent { tried },
            (false, true) => FailoverError::NoCapacity { tried },
            (false, false) => FailoverError::NoLaunchOption { tried },
        }
    }
}

/// What a successful launch reports: the instance, where, from what, for
/// whom, and the options passed over first.
fn launched(
    launch: &Launch,
    attempt: &LaunchAttempt,
    instance: &Instance,
    passed_over: &[String],
) -> String {
    let r = &attempt.request;
    format!(
        "{} ({}) from {} in {} ({}), {} {}{}{}",
        instance.id,
        r.instance_type,
        launch.image,
        r.subnet_id,
        attempt.availability_zone,
        if launch.standby {
            "a standby for"
        } else {
            "replacing"
        },
        launch.replacing,
        if passed_over.is_empty() {
            String::new()
        } else {
            format!("; passed over first: {}", passed_over.join("; "))
        },
        launch.notes()
    )
}

/// Throttling: back off and try again, for as long as the invocation has time.
fn is_throttling(e: &CloudError) -> bool {
    e.kind() == ErrorKind::Throttled
}

/// Whether a failed call of this change is worth another try.
fn retries(change: &Change, e: &CloudError) -> bool {
    match change {
        Change::Stop { .. } | Change::Launch(_) => false,
        Change::DisableSourceDestCheck { .. }
        | Change::DisableInterfaceSourceDestCheck { .. }
        | Change::MoveFloatingIp { .. }
        | Change::CreateRoute { .. }
        | Change::ReplaceRoute { .. } => {
            // A new instance may be unknown to other calls, or still pending, for
            // a while (EC2 is eventually consistent): changes that name it try again.
            is_throttling(e)
                || matches!(
                    e.kind(),
                    ErrorKind::InstanceNotFound | ErrorKind::WrongInstanceState
                )
        }
        Change::Prune { .. } | Change::DeleteSnapshot { .. } => {
            // EC2 answers InvalidSnapshot.InUse for a while after DeregisterImage.
            is_throttling(e) || e.kind() == ErrorKind::SnapshotInUse
        }
        _ => is_throttling(e),
    }
}

/// A snapshot still in use after its AMI was deregistered: it keeps its
/// `ec2-failover:image` tag, so the orphan step of a later run deletes it.
/// The run does not fail for it.
fn left_for_later(change: &Change, e: &CloudError) -> Option<(StepStatus, String)> {
    if e.kind() != ErrorKind::SnapshotInUse {
        return None;
    }
    let later = "still in use after the deregistration; a later run's orphan step deletes it";
    match change {
        Change::Prune { image, .. } => Some((
            StepStatus::Done,
            format!(
                "{}; deregistered {image}, a snapshot is {later} ({e})",
                change.describe()
            ),
        )),
        Change::DeleteSnapshot { snapshot, .. } => {
            Some((StepStatus::Skipped, format!("{snapshot} is {later} ({e})")))
        }
        _ => None,
    }
}

/// 0.25 s, 0.5 s, 1 s, 2 s, then 4 s between tries.
fn backoff(tries: u32) -> Duration {
    Duration::from_millis(250 << tries.min(4))
}

/// A stop EC2 will never carry out, whoever asks: stop protection
/// (`OperationNotPermitted`), or an instance that cannot be stopped at all
/// (an instance-store root, a Spot instance: `UnsupportedOperation`). Failing
/// for it would fail every later run too (Lambda's retries, each reconcile's
/// fence) while the appliance has already moved; so it is a warning that names
/// what the operator must do, and the run goes on.
fn never_carried_out(change: &Change, e: &CloudError) -> Option<(StepStatus, String)> {
    let Change::Stop { instance, .. } = change else {
        return None;
    };
    let what = match e.code()? {
        "OperationNotPermitted" => format!(
            "{instance} has stop protection; turn it off (aws ec2 modify-instance-attribute --instance-id {instance} --no-disable-api-stop) or stop it by hand"
        ),
        "UnsupportedOperation" => format!(
            "EC2 cannot stop {instance} (an instance-store root or a Spot instance); terminate it by hand once nothing needs it"
        ),
        _ => return None,
    };
    Some((
        StepStatus::Warn,
        format!("EC2 will never carry out this stop: {what} ({e})"),
    ))
}

/// An error that means an earlier run (whose answer was lost) already made
/// the change: the step's detail, or `None` when it is a real failure.
fn already_done(change: &Change, e: &CloudError) -> Option<String> {
    match (change, e.code()?) {
        (
            Change::Stop { instance, .. } | Change::Terminate { instance, .. },
            "InvalidInstanceID.NotFound",
        ) => Some(format!("{instance} no longer exists")),
        // AWS keeps AMI names unique per account and region.
        (Change::CreateImage(r), "InvalidAMIName.Duplicate") => {
            Some(format!("an AMI named {} already exists ({e})", r.name))
        }
        (Change::DeleteSnapshot { .. }, "InvalidSnapshot.NotFound") => Some(change.describe()),
        _ => None,
    }
}
