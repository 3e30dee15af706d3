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
}

impl Snapshot {
    pub fn tag(&self, key: &str) -> Option<&str> {
        tag_value(&self.tags, key)
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
