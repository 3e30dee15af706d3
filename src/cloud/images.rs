//! AMIs and their snapshots, and what CreateImage is told about a new AMI.

use chrono::{DateTime, Utc};

use super::{Tag, tag_value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub state: String,
    /// ISO 8601 as EC2 reports it; compared as time, not as text.
    pub creation_date: Option<DateTime<Utc>>,
    pub tags: Vec<Tag>,
    /// EBS snapshots of its block device mappings (none yet while EC2 is
    /// still creating them).
    pub snapshot_ids: Vec<String>,
    /// The instance CreateImage made it of (`SourceInstanceId`), as EC2
    /// records it: no tag can change it. `None` for an AMI registered,
    /// copied or imported.
    pub source_instance_id: Option<String>,
}

impl Image {
    pub fn tag(&self, key: &str) -> Option<&str> {
        tag_value(&self.tags, key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub tags: Vec<Tag>,
    /// The KMS key of an encrypted snapshot (`None`: not encrypted).
    pub kms_key_id: Option<String>,
    /// Set when it was made and never changed after; CreateImage writes
    /// `Created by CreateImage(<instance>) for <ami>` (EC2 may add ` from <volume>`).
    pub description: Option<String>,
}

impl Snapshot {
    pub fn tag(&self, key: &str) -> Option<&str> {
        tag_value(&self.tags, key)
    }

    /// The instance and AMI of the CreateImage that made it, by its
    /// description: EC2's record, which no tag can change.
    pub fn made_by_create_image(&self) -> Option<(&str, &str)> {
        let rest = self
            .description
            .as_deref()?
            .strip_prefix("Created by CreateImage(")?;
        let (instance, rest) = rest.split_once(") for ")?;
        let image = rest.split(' ').next()?;
        let ids = instance.starts_with("i-") && image.starts_with("ami-");
        ids.then_some((instance, image))
    }
}

/// The AWS managed key of EBS, as GetEbsDefaultKmsKeyId names it when the
/// account chose no key of its own: EBS uses it on the caller's behalf, so it
/// needs no KMS grant in the function's policy.
pub const AWS_MANAGED_EBS_KEY: &str = "alias/aws/ebs";

/// Whether `key`, as GetEbsDefaultKmsKeyId names it, is [`AWS_MANAGED_EBS_KEY`]
/// (by its alias or its alias ARN).
pub fn is_aws_managed_ebs_key(key: &str) -> bool {
    let alias = key
        .strip_prefix("alias/")
        .or_else(|| key.split_once(":alias/").map(|(_, name)| name));
    alias.is_some_and(|name| format!("alias/{name}") == AWS_MANAGED_EBS_KEY)
}

/// Everything CreateImage is told about a new AMI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    pub instance_id: String,
    pub name: String,
    pub description: String,
    pub no_reboot: bool,
    /// Applied to the image at creation.
    pub tags: Vec<Tag>,
}

#[cfg(test)]
mod tests {
    use super::Snapshot;

    fn described(text: &str) -> Snapshot {
        Snapshot {
            id: "snap-1".into(),
            tags: Vec::new(),
            kms_key_id: None,
            description: Some(text.into()),
        }
    }

    #[test]
    fn a_snapshot_names_its_create_image_only_in_ec2s_words() {
        let ec2 = described("Created by CreateImage(i-0abc) for ami-0def");
        assert_eq!(ec2.made_by_create_image(), Some(("i-0abc", "ami-0def")));
        let with_volume = described("Created by CreateImage(i-0abc) for ami-0def from vol-0123");
        assert_eq!(
            with_volume.made_by_create_image(),
            Some(("i-0abc", "ami-0def"))
        );
        for other in [
            "nightly backup",
            "Created by CreateImage(vol-1) for ami-0def",
            "Created by CreateImage(i-0abc) for snap-1",
            "created by createimage(i-0abc) for ami-0def",
        ] {
            assert_eq!(described(other).made_by_create_image(), None, "{other}");
        }
        let none = Snapshot {
            description: None,
            ..ec2
        };
        assert_eq!(none.made_by_create_image(), None);
    }
}
