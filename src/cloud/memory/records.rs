//! What the account keeps per resource: EC2's and Route 53's records, with
//! the fields the rules need (more than a DescribeXxx shows).

use chrono::{DateTime, Utc};

use crate::cloud::{
    Cidr, IngressRule, InstanceState, MetadataOptions, RecordSet, RouteTarget, Snapshot, Tag,
};

#[derive(Debug, Clone)]
pub(super) struct InstanceRec {
    pub(super) id: String,
    pub(super) state: InstanceState,
    pub(super) vpc_id: String,
    pub(super) subnet_id: String,
    pub(super) availability_zone: String,
    pub(super) instance_type: String,
    pub(super) image_id: Option<String>,
    pub(super) key_name: Option<String>,
    pub(super) iam_instance_profile_arn: Option<String>,
    pub(super) security_group_ids: Vec<String>,
    pub(super) eni: String,
    pub(super) private_ip: String,
    pub(super) own_public_ip: Option<String>,
    pub(super) source_dest_check: bool,
    pub(super) launch_time: DateTime<Utc>,
    /// The primary ENI's attach time: a restart keeps it.
    pub(super) first_launch: DateTime<Utc>,
    pub(super) state_reason: Option<String>,
    /// `StateTransitionReason`: "User initiated (... GMT)" once stopped by a
    /// StopInstances, empty again after a start.
    pub(super) transition_reason: String,
    /// When a plain stop under way ends (`stopping` until then); `None`
    /// while stopping: a stop that never ends but forced.
    pub(super) stop_ends: Option<DateTime<Utc>>,
    pub(super) tags: Vec<Tag>,
    pub(super) volumes: Vec<String>,
    /// DescribeInstances calls that still see it `pending`.
    pub(super) pending_looks: usize,
    /// Looks after a StartInstances that still read it `stopped`.
    pub(super) stale: StaleStart,
    /// Filtered DescribeInstances calls that do not list it yet.
    pub(super) unlisted_looks: usize,
    pub(super) metadata_options: MetadataOptions,
    pub(super) ebs_optimized: bool,
    pub(super) user_data: Option<String>,
    pub(super) cpu_credits: Option<String>,
    /// Interfaces beyond the primary.
    pub(super) legs: Vec<LegRec>,
    /// The ClientToken RunInstances was given, which EC2 reports for good.
    pub(super) client_token: Option<String>,
}

/// DescribeInstances calls after a StartInstances that still read the
/// instance `stopped` (the state before the start), and whether this look
/// does.
#[derive(Debug, Clone, Default)]
pub(super) struct StaleStart {
    pub(super) looks: usize,
    pub(super) now: bool,
}

#[derive(Debug, Clone)]
pub(super) struct LegRec {
    pub(super) id: String,
    pub(super) device_index: i32,
    pub(super) subnet_id: String,
    pub(super) groups: Vec<String>,
    pub(super) source_dest_check: bool,
}

#[derive(Debug, Clone)]
pub(super) struct ImageRec {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) state: String,
    pub(super) creation_date: DateTime<Utc>,
    pub(super) tags: Vec<Tag>,
    pub(super) snapshot_ids: Vec<String>,
    pub(super) owned: bool,
    /// DescribeImages calls that still see it `pending`.
    pub(super) pending_looks: usize,
    /// `SourceInstanceId`: the instance CreateImage made it of.
    pub(super) source_instance_id: Option<String>,
    /// Another account (id or alias) that published it, when not owned.
    pub(super) publisher: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct SnapshotRec {
    pub(super) id: String,
    pub(super) tags: Vec<Tag>,
    pub(super) kms_key_id: Option<String>,
    pub(super) description: Option<String>,
}

impl SnapshotRec {
    pub(super) fn view(&self) -> Snapshot {
        Snapshot {
            id: self.id.clone(),
            tags: self.tags.clone(),
            kms_key_id: self.kms_key_id.clone(),
            description: self.description.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct AddressRec {
    pub(super) allocation_id: String,
    pub(super) public_ip: String,
    pub(super) instance_id: Option<String>,
    /// The interface it is on (the instance's primary one unless it was
    /// associated by interface).
    pub(super) eni: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct VpcRec {
    pub(super) id: String,
    pub(super) cidr: Cidr,
    pub(super) tags: Vec<Tag>,
}

#[derive(Debug, Clone)]
pub(super) struct SubnetRec {
    pub(super) id: String,
    pub(super) vpc_id: String,
    pub(super) availability_zone: String,
    pub(super) cidr: Cidr,
    pub(super) tags: Vec<Tag>,
    /// Next host number for a private address (AWS reserves the first four).
    pub(super) next_host: u32,
}

#[derive(Debug, Clone)]
pub(super) struct TableRec {
    pub(super) id: String,
    pub(super) vpc_id: String,
    pub(super) tags: Vec<Tag>,
    pub(super) routes: Vec<(Cidr, RouteTarget)>,
}

#[derive(Debug, Clone)]
pub(super) struct GroupRec {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) vpc_id: String,
    pub(super) tags: Vec<Tag>,
    pub(super) rules: Vec<IngressRule>,
}

#[derive(Debug, Clone)]
pub(super) struct ZoneRec {
    pub(super) id: String,
    /// Fully qualified, lowercase, with the trailing dot.
    pub(super) name: String,
    pub(super) records: Vec<RecordSet>,
}

#[derive(Debug, Clone)]
pub(super) struct HealthCheckRec {
    pub(super) id: String,
    pub(super) port: Option<u16>,
    pub(super) statuses: Vec<String>,
}
