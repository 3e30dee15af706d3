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
//!   behind; tool snapshots whose AMI no longer exists are deleted on the next run.

use std::collections::HashSet;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::cloud::{
    CREATED_BY, Cloud, CloudError, Image, ImageRequest, Instance, InstanceState, Snapshot,
    TAG_CREATED_BY, TAG_IMAGE, TAG_SOURCE_INSTANCE, Tag,
};
use crate::config::Settings;
use crate::error::FailoverError;
use crate::failover::plan::image_age;
use crate::report::{Outcome, Report, StepLog, StepStatus};

/// One snapshot run, as the handler derived it from the trigger.
#[derive(Debug, Clone)]
pub struct SnapshotRequest {
    pub incident: String,
    pub reason: String,
    /// The schedule slot this AMI stands for; it names the AMI.
    pub slot: DateTime<Utc>,
    pub dry_run: bool,
    pub now: DateTime<Utc>,
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

/// Takes (or, in a dry run, plans) the AMI of this schedule slot and prunes
/// old ones.
pub async fn run<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    req: &SnapshotRequest,
) -> Result<Report, FailoverError> {
    let mut log = StepLog::new(&req.incident);
    let name = stamp_name(&settings.instance_name, req.slot);

    // Look: one round of concurrent, tag-filtered describes.
    let t = Instant::now();
    let (vpcs, instances, images, snapshots) = tokio::join!(
        cloud.vpcs_named(&settings.vpc_name),
        cloud.instances_named(&settings.instance_name),
        cloud.tool_images(&settings.ami_name),
        cloud.tool_snapshots(&settings.ami_name),
    );
    let vpc_id = crate::failover::discover::one_vpc(
        vpcs.map_err(FailoverError::during(
            "discover",
            format!("VPC tagged Name={}", settings.vpc_name),
        ))?,
        settings,
    )?;
    let instances: Vec<Instance> = instances
        .map_err(FailoverError::during(
            "discover",
            format!("instances tagged Name={}", settings.instance_name),
        ))?
        .into_iter()
        .filter(|i| i.vpc_id.as_deref() == Some(vpc_id.as_str()))
        .collect();
    let images = images.map_err(FailoverError::during(
        "discover",
        format!("tool AMIs tagged Name={}", settings.ami_name),
    ))?;
    let snapshots = snapshots.map_err(FailoverError::during(
        "discover",
        format!("tool snapshots tagged Name={}", settings.ami_name),
    ))?;
    let detail = format!(
        "{vpc_id}: instances [{}]; {} AMI(s) and {} snapshot(s) created by this tool tagged Name={}",
        instances
            .iter()
            .map(|i| format!("{} ({})", i.id, i.state.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        images.len(),
        snapshots.len(),
        settings.ami_name
    );
    log.record("discover", StepStatus::Done, detail, t);

    // Act 1: the AMI of this slot.
    let t = Instant::now();
    let existing = images.iter().find(|i| i.name.as_deref() == Some(&name));
    let (image_id, source, created) = match existing {
        Some(image) => {
            let detail = format!(
                "{} ({name}, {}) already exists for this slot",
                image.id, image.state
            );
            log.record("create_image", StepStatus::AlreadyDone, detail, t);
            (
                Some(image.id.clone()),
                image.tag(TAG_SOURCE_INSTANCE).map(str::to_owned),
                false,
            )
        }
        None => {
            let source = source_instance(&instances, settings, &vpc_id)?;
            let request = ImageRequest {
                instance_id: source.id.clone(),
                name: name.clone(),
                description: format!(
                    "ec2-failover AMI of {} ({}) for {}",
                    source.id,
                    settings.instance_name,
                    req.slot.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
                no_reboot: settings.no_reboot,
                tags: vec![
                    Tag::new("Name", &settings.ami_name),
                    Tag::new(TAG_CREATED_BY, CREATED_BY),
                    Tag::new(TAG_SOURCE_INSTANCE, &source.id),
                ],
            };
            let what = format!(
                "CreateImage {} name {name} NoReboot={} tagged Name={}",
                source.id, settings.no_reboot, settings.ami_name
            );
            if req.dry_run {
                log.record("create_image", StepStatus::Planned, what, t);
                (None, Some(source.id.clone()), false)
            } else {
                match cloud.create_image(&request).await {
                    Ok(id) => {
                        log.record("create_image", StepStatus::Done, format!("{id}: {what}"), t);
                        (Some(id), Some(source.id.clone()), true)
                    }
                    // AWS keeps AMI names unique per account and region: an earlier
                    // delivery of this slot made it (and the look missed it, e.g.
                    // the answer of that call was lost before its tags were listed).
                    Err(e) if e.code() == Some("InvalidAMIName.Duplicate") => {
                        let detail = format!("an AMI named {name} already exists ({e})");
                        log.record("create_image", StepStatus::AlreadyDone, detail, t);
                        (None, Some(source.id.clone()), false)
                    }
                    Err(e) => {
                        log.record("create_image", StepStatus::Failed, e.to_string(), t);
                        return Err(FailoverError::during("create_image", source.id.clone())(e));
                    }
                }
            }
        }
    };

    // Look again only when something new exists: its snapshots are listed now.
    let images = if created {
        cloud
            .tool_images(&settings.ami_name)
            .await
            .map_err(FailoverError::during(
                "tag_snapshots",
                format!("tool AMIs tagged Name={}", settings.ami_name),
            ))?
    } else {
        images
    };

    // Act 2: every snapshot of every tool AMI carries the tool's tags.
    tag_snapshots(cloud, settings, &images, &snapshots, req.dry_run, &mut log).await?;

    // Act 3: retention.
    let in_use: Vec<(String, String)> = instances
        .iter()
        .filter(|i| i.state.is_live())
        .filter_map(|i| Some((i.image_id.clone()?, i.id.clone())))
        .collect();
    let decisions = retention(&images, settings.ami_retention, &in_use);
    let mut removed_snapshots: HashSet<String> = HashSet::new();
    let mut kept = Vec::new();
    for (image, decision) in &decisions {
        match decision {
            Keep::Retained => kept.push(image.id.clone()),
            Keep::Pending => kept.push(format!("{} ({})", image.id, image.state)),
            Keep::InUse(instance) => {
                let detail = format!(
                    "{} ({}) is beyond AMI_RETENTION={} but {instance} runs from it; kept",
                    image.id,
                    image.name.as_deref().unwrap_or("unnamed"),
                    settings.ami_retention
                );
                log.record(
                    format!("prune {}", image.id),
                    StepStatus::Skipped,
                    detail,
                    Instant::now(),
                );
            }
            Keep::Remove(why) => {
                removed_snapshots.extend(image.snapshot_ids.iter().cloned());
                prune(cloud, image, why, req.dry_run, &mut log).await?;
            }
        }
    }
    let detail = format!(
        "keeping the newest {} available AMI(s) created by this tool: [{}]",
        settings.ami_retention,
        kept.join(", ")
    );
    log.record("retention", StepStatus::Done, detail, Instant::now());

    // Act 4: snapshots whose AMI is gone (a crash after DeregisterImage).
    let known: HashSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
    let in_images: HashSet<&str> = images
        .iter()
        .flat_map(|i| i.snapshot_ids.iter().map(String::as_str))
        .collect();
    for snapshot in &snapshots {
        let Some(owner) = snapshot.tag(TAG_IMAGE) else {
            continue;
        };
        if known.contains(owner)
            || in_images.contains(snapshot.id.as_str())
            || removed_snapshots.contains(&snapshot.id)
        {
            continue;
        }
        let t = Instant::now();
        let step = format!("orphan {}", snapshot.id);
        let what = format!(
            "DeleteSnapshot {}: its AMI {owner} no longer exists",
            snapshot.id
        );
        if req.dry_run {
            log.record(step, StepStatus::Planned, what, t);
            continue;
        }
        match delete_snapshot(cloud, &snapshot.id).await {
            Ok(status) => log.record(step, status, what, t),
            Err(e) => {
                log.record(step, StepStatus::Failed, e.to_string(), t);
                return Err(FailoverError::during(
                    "orphan_snapshots",
                    snapshot.id.clone(),
                )(e));
            }
        }
    }

    let image = image_id
        .as_ref()
        .and_then(|id| images.iter().find(|i| &i.id == id));
    let image_created = image.and_then(|i| i.creation_date);
    let reason = format!(
        "{}; AMI {name} of {}{}",
        req.reason,
        source.as_deref().unwrap_or("the appliance"),
        match (image, image_created) {
            (Some(i), Some(c)) => format!(" is {} ({}, {})", i.id, i.state, image_age(c, req.now)),
            (Some(i), None) => format!(" is {} ({})", i.id, i.state),
            _ if req.dry_run => " would be created".to_owned(),
            _ => " exists".to_owned(),
        }
    );
    let report = Report {
        outcome: if req.dry_run {
            Outcome::Planned
        } else {
            Outcome::SnapshotTaken
        },
        incident: req.incident.clone(),
        old_instance: None,
        new_instance: None,
        availability_zone: None,
        image: image_id,
        image_created: image_created.map(|c| c.to_rfc3339_opts(SecondsFormat::Secs, true)),
        reason,
        steps: log.into_records(),
    };
    tracing::info!(incident = %report.incident, outcome = ?report.outcome,
        image = report.image.as_deref().unwrap_or("-"), "snapshot finished");
    Ok(report)
}

/// The one running instance of the appliance: that is what the AMI is of.
fn source_instance<'a>(
    instances: &'a [Instance],
    settings: &Settings,
    vpc_id: &str,
) -> Result<&'a Instance, FailoverError> {
    let running: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.state == InstanceState::Running)
        .collect();
    match running.as_slice() {
        [one] => Ok(one),
        [] => Err(FailoverError::Missing {
            what: format!(
                "no running instance tagged Name={} (INSTANCE_NAME) in {vpc_id} to take an AMI of",
                settings.instance_name
            ),
        }),
        many => Err(FailoverError::Ambiguous {
            what: format!(
                "{} running instances are tagged Name={} in {vpc_id} ({}); not guessing which to take an AMI of",
                many.len(),
                settings.instance_name,
                many.iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

async fn tag_snapshots<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    images: &[Image],
    snapshots: &[Snapshot],
    dry_run: bool,
    log: &mut StepLog,
) -> Result<(), FailoverError> {
    let t = Instant::now();
    let tagged: HashSet<&str> = snapshots.iter().map(|s| s.id.as_str()).collect();
    let mut waiting = Vec::new();
    let mut acted = false;
    for image in images {
        if image.snapshot_ids.is_empty() {
            // EC2 lists an AMI's snapshots once it has made them.
            if image.state == "pending" {
                waiting.push(image.id.clone());
            }
            continue;
        }
        let untagged: Vec<String> = image
            .snapshot_ids
            .iter()
            .filter(|s| !tagged.contains(s.as_str()))
            .cloned()
            .collect();
        if untagged.is_empty() {
            continue;
        }
        acted = true;
        let t = Instant::now();
        let step = format!("tag_snapshots {}", image.id);
        let what = format!(
            "CreateTags [{}] as snapshots of {}",
            untagged.join(", "),
            image.id
        );
        if dry_run {
            log.record(step, StepStatus::Planned, what, t);
            continue;
        }
        let mut tags = vec![
            Tag::new("Name", &settings.ami_name),
            Tag::new(TAG_CREATED_BY, CREATED_BY),
            Tag::new(TAG_IMAGE, &image.id),
        ];
        if let Some(source) = image.tag(TAG_SOURCE_INSTANCE) {
            tags.push(Tag::new(TAG_SOURCE_INSTANCE, source));
        }
        if let Err(e) = cloud.create_tags(&untagged, &tags).await {
            log.record(step, StepStatus::Failed, e.to_string(), t);
            return Err(FailoverError::during("tag_snapshots", untagged.join(", "))(
                e,
            ));
        }
        log.record(step, StepStatus::Done, what, t);
    }
    if !acted {
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
        log.record("tag_snapshots", StepStatus::AlreadyDone, detail, t);
    }
    Ok(())
}

/// Deregisters one tool AMI, then deletes its snapshots (AWS keeps them
/// otherwise, and bills for them).
async fn prune<C: Cloud>(
    cloud: &C,
    image: &Image,
    why: &str,
    dry_run: bool,
    log: &mut StepLog,
) -> Result<(), FailoverError> {
    let t = Instant::now();
    let step = format!("prune {}", image.id);
    let what = format!(
        "DeregisterImage {} ({}, {why}), then DeleteSnapshot [{}]",
        image.id,
        image.name.as_deref().unwrap_or("unnamed"),
        image.snapshot_ids.join(", ")
    );
    if dry_run {
        log.record(step, StepStatus::Planned, what, t);
        return Ok(());
    }
    match cloud.deregister_image(&image.id).await {
        Ok(()) => {}
        // Deregistered by an earlier run whose answer was lost.
        Err(e) if e.code().is_some_and(|c| c.starts_with("InvalidAMIID.")) => {}
        Err(e) => {
            log.record(step, StepStatus::Failed, e.to_string(), t);
            return Err(FailoverError::during("prune", image.id.clone())(e));
        }
    }
    let results =
        futures::future::join_all(image.snapshot_ids.iter().map(|s| delete_snapshot(cloud, s)))
            .await;
    for (snapshot, result) in image.snapshot_ids.iter().zip(results) {
        if let Err(e) = result {
            log.record(step, StepStatus::Failed, e.to_string(), t);
            return Err(FailoverError::during("prune", snapshot.clone())(e));
        }
    }
    log.record(step, StepStatus::Done, what, t);
    Ok(())
}

/// DeleteSnapshot, where "already gone" is done too.
async fn delete_snapshot<C: Cloud>(cloud: &C, id: &str) -> Result<StepStatus, CloudError> {
    match cloud.delete_snapshot(id).await {
        Ok(()) => Ok(StepStatus::Done),
        Err(e) if e.code() == Some("InvalidSnapshot.NotFound") => Ok(StepStatus::AlreadyDone),
        Err(e) => Err(e),
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
