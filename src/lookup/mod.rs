//! Looks that several jobs share, so that no job needs another's: the one
//! VPC, the appliance's instances in it, an AMI's age and tags, the alarm
//! that watches the appliance; and, for the jobs that replace or back up the
//! appliance (failover, standby, preflight), the round of describes that
//! sees its world ([`world`]), what a replacement inherits of it
//! ([`inherit`]) and the wait for a new instance to run ([`wait`]).

pub mod inherit;
pub mod wait;
pub mod world;

pub use inherit::{Inherited, UserData};
pub use world::World;

use chrono::{DateTime, Utc};

use crate::cloud::{
    AlarmQuery, CREATED_BY, Cloud, CloudError, Instance, TAG_CREATED_BY, TAG_GROUP,
    TAG_SOURCE_INSTANCE, Tag, Vpc,
};
use crate::config::Settings;
use crate::error::FailoverError;
use crate::step::Step;

/// The id of the one VPC tagged `VPC_NAME`; none or several is an error that
/// names them, before anything is changed.
pub fn one_vpc(vpcs: Vec<Vpc>, vpc_name: &str) -> Result<String, FailoverError> {
    match vpcs.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(FailoverError::Missing {
            what: format!("no VPC is tagged Name={vpc_name} (VPC_NAME)"),
        }),
        many => Err(FailoverError::Ambiguous {
            what: format!(
                "{} VPCs are tagged Name={vpc_name} ({}); VPC_NAME must name exactly one",
                many.len(),
                many.iter()
                    .map(|v| v.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Looks up the one VPC tagged `vpc_name`.
pub async fn vpc<C: Cloud>(cloud: &C, vpc_name: &str) -> Result<String, FailoverError> {
    let vpcs = cloud
        .vpcs_named(vpc_name)
        .await
        .map_err(FailoverError::during(
            Step::Discover,
            format!("VPC tagged Name={vpc_name}"),
        ))?;
    one_vpc(vpcs, vpc_name)
}

/// The instances (of a Name-tag look) that are in `vpc_id`: an instance of the
/// same name in another VPC is another appliance.
pub fn in_vpc(instances: Vec<Instance>, vpc_id: &str) -> Vec<Instance> {
    instances
        .into_iter()
        .filter(|i| i.vpc_id.as_deref() == Some(vpc_id))
        .collect()
}

/// How old an AMI is, in the words an operator reads at a glance.
pub fn image_age(created: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - created).num_minutes();
    if minutes < 0 {
        return "created in the future by this clock".to_owned();
    }
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if days > 0 {
        format!("{days} d {hours} h old")
    } else if hours > 0 {
        format!("{hours} h {mins} min old")
    } else {
        format!("{mins} min old")
    }
}

/// The tags of an AMI taken from `source`: found by `Name`, pruned only by the
/// created-by mark, and the source's failover-group tag, without which a
/// group's next launch from it is not authorized (the policy's group
/// statements condition on it).
pub fn image_tags(ami_name: &str, source: &Instance) -> Vec<Tag> {
    let mut tags = vec![
        Tag::new("Name", ami_name),
        Tag::new(TAG_CREATED_BY, CREATED_BY),
        Tag::new(TAG_SOURCE_INSTANCE, &source.id),
    ];
    if let Some(group) = source.tag(TAG_GROUP) {
        tags.push(Tag::new(TAG_GROUP, group));
    }
    tags
}

/// Which alarm watches the appliance: `ALARM_NAME`, else the alarm(s) on
/// `HEALTH_CHECK_ID`'s metric; `None` when neither is configured. The
/// reconcile follows it, preflight checks that it reaches this function.
pub fn watch(settings: &Settings) -> Option<AlarmQuery<'_>> {
    let appliance = &settings.appliance;
    match (&appliance.alarm_name, &appliance.health_check_id) {
        (Some(name), _) => Some(AlarmQuery::Named(name)),
        (None, Some(id)) => Some(AlarmQuery::ForHealthCheck(id)),
        (None, None) => None,
    }
}

/// How EC2 encrypts the volumes of a new instance, whatever the AMI's snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeEncryption {
    /// Encryption by default is off: new volumes are as the AMI's snapshots are.
    AsTheAmi,
    /// Encryption by default is on: every new volume is encrypted with `key`,
    /// as GetEbsDefaultKmsKeyId names it ([`crate::cloud::AWS_MANAGED_EBS_KEY`] or the
    /// account's own key, by key ARN or alias).
    ByDefault { key: String },
}

/// The account's EBS encryption by default in this region: one read, and the
/// key's only when it is on.
pub async fn volume_encryption<C: Cloud>(cloud: &C) -> Result<VolumeEncryption, CloudError> {
    if !cloud.ebs_encryption_by_default().await? {
        return Ok(VolumeEncryption::AsTheAmi);
    }
    let key = cloud.ebs_default_kms_key().await?;
    Ok(VolumeEncryption::ByDefault { key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_age_reads_at_a_glance() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let now = t("2026-11-21T09:00:00Z");
        assert_eq!(image_age(t("2026-11-21T08:59:30Z"), now), "0 min old");
        assert_eq!(image_age(t("2026-11-21T06:48:00Z"), now), "2 h 12 min old");
        assert_eq!(image_age(t("2026-11-18T07:00:00Z"), now), "3 d 2 h old");
        assert!(image_age(t("2026-11-22T00:00:00Z"), now).contains("future"));
    }

    #[test]
    fn one_vpc_names_what_it_found() {
        let vpc = |id: &str| Vpc { id: id.into() };
        assert_eq!(one_vpc(vec![vpc("vpc-1")], "my-vpc").unwrap(), "vpc-1");
        let none = one_vpc(vec![], "my-vpc").unwrap_err().to_string();
        assert!(none.contains("Name=my-vpc"), "{none}");
        let many = one_vpc(vec![vpc("vpc-1"), vpc("vpc-2")], "my-vpc")
            .unwrap_err()
            .to_string();
        assert!(many.contains("vpc-1, vpc-2"), "{many}");
    }
}
