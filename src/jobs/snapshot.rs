//! Stamp lifecycle: AMIs of the appliance on a schedule, and their retention,
//! so a failover never launches from a stale image.
//!
//! Like the failover it is a reconcile: one round of looks, then each step acts
//! only where the world is not yet as wanted.
//!
//! - The AMI's name is derived from the schedule slot (minute resolution), so a
//!   redelivered schedule event finds the AMI it already made instead of making
//!   a second one. AWS refuses a duplicate name (`InvalidAMIName.Duplicate`),
//!   which counts as done as well.
//! - Snapshots are tagged with CreateTags after the image exists; the same step
//!   repairs any earlier tool AMI whose snapshots are still untagged.
//! - Retention keeps the newest `AMI_RETENTION` *available* tool AMIs (pending
//!   ones are kept and not counted, so a failover always has that many usable
//!   images), never touches AMIs this tool did not create (tag
//!   [`TAG_CREATED_BY`]), and never removes the AMI a live instance of the
//!   appliance was launched from.
//! - A crash between DeregisterImage and DeleteSnapshot would leave snapshots
//!   behind; tool snapshots whose AMI no longer exists are deleted on the next run,
//!   when EC2's description says CreateImage made them of the lineage for it.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::cloud::provenance;
use crate::cloud::{
    CREATED_BY, Cloud, Image, ImageRequest, Instance, InstanceState, Snapshot, TAG_CREATED_BY,
    TAG_IMAGE, TAG_SOURCE_INSTANCE, Tag,
};
use crate::config::Settings;
use crate::engine::{Applied, Change, Context, Decision, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup::{self, image_age};
use crate::report::{Outcome, Report, StepLog, StepStatus};

/// One snapshot run, as the handler derived it from the trigger.
#[derive(Debug, Clone)]
pub struct SnapshotRequest {
    pub incident: String,
    pub reason: String,
    /// The schedule slot this AMI stands for; it names the AMI.
    pub slot: DateTime<Utc>,
}

/// The AMI name for `instance_name` at `slot`: `sophos-20261121T0900Z`.
/// Characters AWS does not allow in AMI names become `_`; the result fits the
/// 128-character limit.
pub fn stamp_name(instance_name: &str, slot: DateTime<Utc>) -> String {
    let suffix = slot.format("-%Y%m%dT%H%MZ").to_string();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c);
    let prefix: String = instance_name
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .take(128 - suffix.len())
        .collect();
    format!("{prefix}{suffix}")
}

/// What retention decided for one tool AMI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Among the newest `AMI_RETENTION` available ones.
    Retained,
    /// Still being created: kept, not counted.
    Pending,
    /// Older than the retention allows, but a live instance runs from it.
    InUse(String),
    /// To be deregistered, with its snapshots deleted.
    Remove(&'static str),
}

/// Decides, newest first, what happens to each tool AMI. `in_use` maps image
/// ids to the live instance launched from them.
pub fn retention<'a>(
    images: &'a [Image],
    keep: u32,
    in_use: &[(String, String)],
) -> Vec<(&'a Image, Keep)> {
    let mut sorted: Vec<&Image> = images.iter().collect();
    sorted.sort_by(|a, b| {
        b.creation_date
            .cmp(&a.creation_date)
            .then_with(|| b.id.cmp(&a.id))
    });
    let mut kept = 0u32;
    sorted
        .into_iter()
        .map(|image| {
            let user = in_use.iter().find(|(img, _)| *img == image.id);
            let decision = match image.state.as_str() {
                "available" if kept < keep => {
                    kept += 1;
                    Keep::Retained
                }
                "available" | "failed" => match user {
                    Some((_, instance)) => Keep::InUse(instance.clone()),
                    None if image.state == "failed" => Keep::Remove("creation failed"),
                    None => Keep::Remove("older than the retention"),
                },
                // pending, or a state this version does not know: leave it be.
                _ => Keep::Pending,
            };
            (image, decision)
        })
        .collect()
}

/// What the snapshot job sees: one round of concurrent, tag-filtered describes.
struct Seen {
    vpc_id: String,
    /// The appliance's instances in the VPC.
    instances: Vec<Instance>,
    /// AMIs (any state) and snapshots this tool created.
    images: Vec<Image>,
    snapshots: Vec<Snapshot>,
}

async fn look<C: Cloud>(cloud: &C, settings: &Settings) -> Result<Seen, FailoverError> {
    let (vpc_id, instances, images, snapshots) = tokio::join!(
        lookup::vpc(cloud, &settings.appliance.vpc_name),
        cloud.instances_named(&settings.appliance.instance_name),
        cloud.tool_images(&settings.appliance.ami_name),
        cloud.tool_snapshots(&settings.appliance.ami_name),
    );
    let vpc_id = vpc_id?;
    let during = |what: &str| {
        FailoverError::during(
            Step::Discover,
            format!("{what} tagged Name={}", settings.appliance.ami_name),
        )
    };
    Ok(Seen {
        instances: lookup::in_vpc(
            instances.map_err(FailoverError::during(
                Step::Discover,
                format!("instances tagged Name={}", settings.appliance.instance_name),
            ))?,
            &vpc_id,
        ),
        images: images.map_err(during("tool AMIs"))?,
        snapshots: snapshots.map_err(during("tool snapshots"))?,
        vpc_id,
    })
}

impl Seen {
    fn summary(&self, settings: &Settings) -> String {
        format!(
            "{}: instances [{}]; {} AMI(s) and {} snapshot(s) created by this tool tagged Name={}",
            self.vpc_id,
            self.instances
                .iter()
                .map(|i| format!("{} ({})", i.id, i.state.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            self.images.len(),
            self.snapshots.len(),
            settings.appliance.ami_name
        )
    }
}

/// Takes (or, through a dry-run executor, plans) the AMI of this schedule
/// slot, then tags, prunes and cleans up.
pub async fn run<C: Cloud>(
    ctx: &Context<'_, C>,
    req: &SnapshotRequest,
) -> Result<Report, FailoverError> {
    let (cloud, exec, settings) = (ctx.cloud(), &ctx.exec, ctx.settings);
    let mut log = StepLog::new();
    let t = Instant::now();
    let seen = look(cloud, settings).await?;
    log.record(Step::Discover, StepStatus::Done, seen.summary(settings), t);

    let name = stamp_name(&settings.appliance.instance_name, req.slot);
    let create = create_image(&seen, settings, req, &name)?;
    let applied = exec
        .in_order(std::slice::from_ref(&create.step), &mut log)
        .await?;
    let applied = applied.into_iter().next().unwrap_or(Applied::Nothing);
    let images = images_after(cloud, settings, &seen, &applied).await?;
    exec.in_order(&upkeep(&seen, &images, settings), &mut log)
        .await?;

    let image_id = match &applied {
        Applied::ImageCreated(id) => Some(id.clone()),
        _ => create.existing,
    };
    let image = image_id
        .as_ref()
        .and_then(|id| images.iter().find(|i| &i.id == id));
    let what = slot_image(image, &applied, ctx.now);
    let reason = format!(
        "{}; AMI {name} of {}{what}",
        req.reason,
        create.source.as_deref().unwrap_or("the appliance")
    );
    let outcome = exec.outcome(Outcome::SnapshotTaken);
    let report = Report {
        image_created: image
            .and_then(|i| i.creation_date)
            .map(|c| c.to_rfc3339_opts(SecondsFormat::Secs, true)),
        image: image_id,
        ..Report::new(outcome, &req.incident, reason, log.into_records())
    };
    tracing::info!(outcome = ?report.outcome,
        image = report.image.as_deref().unwrap_or("-"), "snapshot finished");
    Ok(report)
}

/// The tool's AMIs after the create: looked at again only when something
/// new exists (its snapshots are listed now), else the first look's.
async fn images_after<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    seen: &Seen,
    applied: &Applied,
) -> Result<Vec<Image>, FailoverError> {
    match applied {
        Applied::ImageCreated(_) => cloud
            .tool_images(&settings.appliance.ami_name)
            .await
            .map_err(FailoverError::during(
                Step::TagSnapshots,
                format!("tool AMIs tagged Name={}", settings.appliance.ami_name),
            )),
        _ => Ok(seen.images.clone()),
    }
}

/// What the report says of the slot's AMI, after its name.
fn slot_image(image: Option<&Image>, applied: &Applied, now: DateTime<Utc>) -> String {
    match (image, applied) {
        (Some(i), _) => match i.creation_date {
            Some(c) => format!(" is {} ({}, {})", i.id, i.state, image_age(c, now)),
            None => format!(" is {} ({})", i.id, i.state),
        },
        (None, Applied::Planned) => " would be created".to_owned(),
        (None, _) => " exists".to_owned(),
    }
}

/// The AMI of this slot: already there, or to be created from the one
/// running instance of the appliance.
struct CreatePlan {
    step: PlannedStep,
    /// The slot's AMI, when it already exists.
    existing: Option<String>,
    /// The instance the AMI is (or will be) of.
    source: Option<String>,
}

fn create_image(
    seen: &Seen,
    settings: &Settings,
    req: &SnapshotRequest,
    name: &str,
) -> Result<CreatePlan, FailoverError> {
    if let Some(image) = seen.images.iter().find(|i| i.name.as_deref() == Some(name)) {
        let detail = format!(
            "{} ({name}, {}) already exists for this slot",
            image.id, image.state
        );
        return Ok(CreatePlan {
            step: PlannedStep::new(Step::CreateImage, Decision::AlreadyDone(detail)),
            existing: Some(image.id.clone()),
            source: image.tag(TAG_SOURCE_INSTANCE).map(str::to_owned),
        });
    }
    let source = source_instance(&seen.instances, settings, &seen.vpc_id)?;
    let request = ImageRequest {
        instance_id: source.id.clone(),
        name: name.to_owned(),
        description: format!(
            "ec2-failover AMI of {} ({}) for {}",
            source.id,
            settings.appliance.instance_name,
            req.slot.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        no_reboot: settings.stamp.no_reboot,
        tags: lookup::image_tags(&settings.appliance.ami_name, source),
    };
    Ok(CreatePlan {
        step: PlannedStep::new(
            Step::CreateImage,
            Decision::Make(Change::CreateImage(request)),
        ),
        existing: None,
        source: Some(source.id.clone()),
    })
}

/// Everything after the slot's AMI: tag snapshots, prune to the retention,
/// delete snapshots whose AMI is gone. Pure: decided from what was seen.
fn upkeep(seen: &Seen, all: &[Image], settings: &Settings) -> Vec<PlannedStep> {
    let (images, lineage, mut steps) = made_by_the_lineage(seen, all);
    let images = images.as_slice();
    steps.extend(tag_snapshots(images, &seen.snapshots, settings));
    // A stopped standby needs its AMI no less than a running instance does.
    let in_use: Vec<(String, String)> = seen
        .instances
        .iter()
        .filter(|i| i.state.is_live() || (i.is_standby() && !i.state.is_gone()))
        .filter_map(|i| Some((i.image_id.clone()?, i.id.clone())))
        .collect();
    let mut kept = Vec::new();
    let mut pruned: HashSet<&str> = HashSet::new();
    for (image, decision) in retention(images, settings.stamp.ami_retention, &in_use) {
        let name = image.name.as_deref().unwrap_or("unnamed");
        match decision {
            Keep::Retained => kept.push(image.id.clone()),
            Keep::Pending => kept.push(format!("{} ({})", image.id, image.state)),
            Keep::InUse(instance) => {
                let detail = format!(
                    "{} ({name}) is beyond AMI_RETENTION={} but {instance} runs from it; kept",
                    image.id, settings.stamp.ami_retention
                );
                steps.push(PlannedStep::on(
                    Step::Prune,
                    &image.id,
                    Decision::LeaveAlone(detail),
                ));
            }
            Keep::Remove(why) => {
                pruned.extend(image.snapshot_ids.iter().map(String::as_str));
                let change = Change::Prune {
                    image: image.id.clone(),
                    name: name.to_owned(),
                    why,
                    snapshots: image.snapshot_ids.clone(),
                };
                steps.push(PlannedStep::on(
                    Step::Prune,
                    &image.id,
                    Decision::Make(change),
                ));
            }
        }
    }
    let detail = format!(
        "keeping the newest {} available AMI(s) created by this tool: [{}]",
        settings.stamp.ami_retention,
        kept.join(", ")
    );
    steps.push(PlannedStep::new(Step::Retention, Decision::Noted(detail)));
    steps.extend(orphans(all, &seen.snapshots, &pruned, &lineage));
    steps
}

/// Every snapshot of every tool AMI carries the tool's tags.
fn tag_snapshots(
    images: &[Image],
    snapshots: &[Snapshot],
    settings: &Settings,
) -> Vec<PlannedStep> {
    let tagged: HashSet<&str> = snapshots.iter().map(|s| s.id.as_str()).collect();
    let mut steps = Vec::new();
    for image in images {
        let untagged: Vec<String> = image
            .snapshot_ids
            .iter()
            .filter(|s| !tagged.contains(s.as_str()))
            .cloned()
            .collect();
        if untagged.is_empty() {
            continue;
        }
        let mut tags = vec![
            Tag::new("Name", &settings.appliance.ami_name),
            Tag::new(TAG_CREATED_BY, CREATED_BY),
            Tag::new(TAG_IMAGE, &image.id),
        ];
        if let Some(source) = image.tag(TAG_SOURCE_INSTANCE) {
            tags.push(Tag::new(TAG_SOURCE_INSTANCE, source));
        }
        let change = Change::TagSnapshots {
            image: image.id.clone(),
            snapshots: untagged,
            tags,
        };
        steps.push(PlannedStep::on(
            Step::TagSnapshots,
            &image.id,
            Decision::Make(change),
        ));
    }
    if steps.is_empty() {
        steps.push(PlannedStep::new(
            Step::TagSnapshots,
            Decision::AlreadyDone(all_tagged(images)),
        ));
    }
    steps
}

fn all_tagged(images: &[Image]) -> String {
    // EC2 lists an AMI's snapshots once it has made them.
    let waiting: Vec<&str> = images
        .iter()
        .filter(|i| i.snapshot_ids.is_empty() && i.state == "pending")
        .map(|i| i.id.as_str())
        .collect();
    let mut detail = format!(
        "every listed snapshot of the {} AMI(s) created by this tool is tagged",
        images.len()
    );
    if !waiting.is_empty() {
        detail.push_str(&format!(
            "; {} still pending with no snapshots listed yet (the next run tags them)",
            waiting.join(", ")
        ));
    }
    detail
}

/// Tool snapshots whose AMI no longer exists (a crash after DeregisterImage).
/// Deleted only when EC2's description says CreateImage made it of the
/// lineage for that AMI: the tags that found it anyone may write on any
/// snapshot (a backup, say); a description is written once, at creation.
fn orphans(
    images: &[Image],
    snapshots: &[Snapshot],
    pruned: &HashSet<&str>,
    lineage: &BTreeSet<String>,
) -> Vec<PlannedStep> {
    let known: HashSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
    let in_images: HashSet<&str> = images
        .iter()
        .flat_map(|i| i.snapshot_ids.iter().map(String::as_str))
        .collect();
    snapshots
        .iter()
        .filter_map(|snapshot| {
            let owner = snapshot.tag(TAG_IMAGE)?;
            let id = snapshot.id.as_str();
            if known.contains(owner) || in_images.contains(id) || pruned.contains(id) {
                return None;
            }
            let decision = match snapshot.made_by_create_image() {
                Some((of, image)) if image == owner && lineage.contains(of) => {
                    Decision::Make(Change::DeleteSnapshot {
                        snapshot: snapshot.id.clone(),
                        image: owner.to_owned(),
                    })
                }
                _ => Decision::LeaveAlone(format!(
                    "{id} is tagged {TAG_IMAGE}={owner}, an AMI that is gone, but EC2's description ({}) does not say CreateImage made it of the appliance or a replacement for {owner}: not this tool's to delete",
                    snapshot.description.as_deref().unwrap_or("none")
                )),
            };
            Some(PlannedStep::on(Step::Orphan, id, decision))
        })
        .collect()
}

/// The tool's AMIs EC2 says were made of the appliance's lineage (its
/// `SourceInstanceId`): only those are tagged and pruned. The others carry
/// the tool's tag, which anyone may write; each is left alone, and said so.
fn made_by_the_lineage(
    seen: &Seen,
    all: &[Image],
) -> (Vec<Image>, BTreeSet<String>, Vec<PlannedStep>) {
    let serving = seen.instances.iter().filter(|i| runs_as_the_appliance(i));
    let lineage = provenance::lineage(&seen.instances, serving.map(|i| i.id.as_str()));
    let (ours, foreign): (Vec<&Image>, Vec<&Image>) = all
        .iter()
        .partition(|i| provenance::trusted(i, &lineage, &[]));
    let steps = foreign.iter().map(|i| {
        let of = i.source_instance_id.as_deref().unwrap_or("no instance (not made by CreateImage)");
        let why = format!(
            "{} is tagged {TAG_CREATED_BY}, but EC2 says (SourceInstanceId) it was made of {of}, not of the appliance or a replacement: not this tool's to prune",
            i.id
        );
        PlannedStep::on(Step::Prune, &i.id, Decision::LeaveAlone(why))
    });
    let steps = steps.collect();
    (ours.into_iter().cloned().collect(), lineage, steps)
}

/// Running and not a standby: a standby runs beside the appliance (hot)
/// but is not it, whoever tagged it so.
fn runs_as_the_appliance(i: &Instance) -> bool {
    i.state == InstanceState::Running && !i.tagged_standby()
}

fn source_instance<'a>(
    instances: &'a [Instance],
    settings: &Settings,
    vpc_id: &str,
) -> Result<&'a Instance, FailoverError> {
    let running: Vec<&Instance> = instances
        .iter()
        .filter(|i| runs_as_the_appliance(i))
        .collect();
    match running.as_slice() {
        [one] => Ok(one),
        [] => Err(FailoverError::Missing {
            what: format!(
                "no running instance tagged Name={} (INSTANCE_NAME) in {vpc_id} to take an AMI of",
                settings.appliance.instance_name
            ),
        }),
        many => Err(FailoverError::Ambiguous {
            what: format!(
                "{} running instances are tagged Name={} in {vpc_id} ({}); not guessing which to take an AMI of",
                many.len(),
                settings.appliance.instance_name,
                many.iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn image(id: &str, state: &str, created: &str) -> Image {
        Image {
            id: id.into(),
            name: None,
            state: state.into(),
            creation_date: Some(t(created)),
            tags: vec![],
            snapshot_ids: vec![],
            source_instance_id: Some("i-app".into()),
        }
    }

    #[test]
    fn stamp_names_follow_the_slot_and_aws_rules() {
        let slot = t("2026-11-21T09:00:59Z");
        assert_eq!(stamp_name("sophos", slot), "sophos-20261121T0900Z");
        assert_eq!(stamp_name("vpn:gw#1", slot), "vpn_gw_1-20261121T0900Z");
        let long = "x".repeat(300);
        assert_eq!(stamp_name(&long, slot).len(), 128);
    }

    #[test]
    fn retention_keeps_newest_available_spares_in_use_and_pending() {
        let images = vec![
            image("ami-1", "available", "2026-11-17T09:00:00Z"),
            image("ami-2", "available", "2026-11-18T09:00:00Z"),
            image("ami-3", "available", "2026-11-19T09:00:00Z"),
            image("ami-4", "failed", "2026-11-20T09:00:00Z"),
            image("ami-5", "available", "2026-11-20T10:00:00Z"),
            image("ami-6", "pending", "2026-11-21T09:00:00Z"),
        ];
        let in_use = vec![("ami-1".to_owned(), "i-live".to_owned())];
        let d: Vec<(&str, Keep)> = retention(&images, 2, &in_use)
            .into_iter()
            .map(|(i, k)| (i.id.as_str(), k))
            .collect();
        assert_eq!(
            d,
            [
                ("ami-6", Keep::Pending),
                ("ami-5", Keep::Retained),
                ("ami-4", Keep::Remove("creation failed")),
                ("ami-3", Keep::Retained),
                ("ami-2", Keep::Remove("older than the retention")),
                ("ami-1", Keep::InUse("i-live".into())),
            ]
        );
    }
}
