//! The account: every record of the one region the world models, its clock,
//! its id generator and the lookups every rule starts from.

use chrono::{DateTime, TimeDelta, Utc};

use super::launch::LaunchKey;
use super::records::{
    AddressRec, GroupRec, HealthCheckRec, ImageRec, InstanceRec, SnapshotRec, SubnetRec, TableRec,
    VpcRec, ZoneRec,
};
use crate::cloud::{Alarm, Cidr, CloudError, Operation, Tag};

#[derive(Debug, Clone)]
pub(super) struct Account {
    pub(super) counter: u64,
    pub(super) last_time: DateTime<Utc>,
    pub(super) vpcs: Vec<VpcRec>,
    pub(super) subnets: Vec<SubnetRec>,
    pub(super) gateways: Vec<(String, String)>,
    pub(super) tables: Vec<TableRec>,
    pub(super) groups: Vec<GroupRec>,
    pub(super) key_pairs: Vec<String>,
    pub(super) instances: Vec<InstanceRec>,
    pub(super) images: Vec<ImageRec>,
    pub(super) snapshots: Vec<SnapshotRec>,
    pub(super) addresses: Vec<AddressRec>,
    pub(super) tokens: Vec<(String, LaunchKey, String)>,
    pub(super) zones: Vec<ZoneRec>,
    pub(super) health_checks: Vec<HealthCheckRec>,
    pub(super) checker_ranges: Vec<Cidr>,
    pub(super) launch_pending_looks: usize,
    /// Looks after a StartInstances that still read the instance `stopped`.
    pub(super) stale_start_looks: usize,
    pub(super) image_pending_looks: usize,
    pub(super) listing_lag: usize,
    pub(super) rule_limit: usize,
    /// StateReasons of the next launches that EC2 terminates on launch.
    pub(super) launch_deaths: Vec<String>,
    /// CloudWatch metric alarms (any region: one account's view).
    pub(super) alarms: Vec<Alarm>,
    /// Instances a plain StopInstances leaves `stopping` (a guest that does
    /// not shut down); only `Force` brings them down.
    pub(super) stuck_stopping: Vec<String>,
    /// How long a plain stop keeps an instance `stopping` (zero: stopped at once).
    pub(super) stop_takes: TimeDelta,
    /// How far the world's clock runs ahead of the wall clock (`pass_time`).
    pub(super) ahead: TimeDelta,
    /// Operations IAM (or an SCP) denies this function.
    pub(super) denied: Vec<String>,
    /// EBS encryption by default (the account's setting in this region).
    pub(super) ebs_encryption_by_default: bool,
    /// The default key of that encryption; `None`: the AWS managed key.
    pub(super) ebs_default_key: Option<String>,
    /// KMS keys the function's role may not use (not in its policy).
    pub(super) unusable_keys: Vec<String>,
}

pub(super) fn sorted_tags(tags: &[Tag]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    v.sort();
    v
}

pub(super) fn has_tag(tags: &[Tag], key: &str, value: &str) -> bool {
    tags.iter().any(|t| t.key == key && t.value == value)
}

pub(super) fn named(tags: &[Tag], name: &str) -> bool {
    has_tag(tags, "Name", name)
}

/// splitmix64: ids that look random but are the same in every run.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(super) fn err(operation: Operation, code: &str, message: impl Into<String>) -> CloudError {
    CloudError::service(operation, code, message)
}

impl Account {
    pub(super) fn next(&mut self) -> u64 {
        self.counter += 1;
        mix(self.counter)
    }

    pub(super) fn new_id(&mut self, prefix: &str) -> String {
        let n = self.next();
        format!("{prefix}-0{n:016x}")
    }

    /// The world's clock: wall time (plus the time a test let pass),
    /// strictly increasing (millisecond steps), so "newest" is never a tie.
    pub(super) fn now(&mut self) -> DateTime<Utc> {
        let t = (Utc::now() + self.ahead).max(self.last_time + TimeDelta::milliseconds(1));
        self.last_time = t;
        t
    }

    pub(super) fn instance_index(
        &self,
        operation: Operation,
        id: &str,
    ) -> Result<usize, CloudError> {
        self.instances
            .iter()
            .position(|i| i.id == id)
            .ok_or_else(|| {
                err(
                    operation,
                    "InvalidInstanceID.NotFound",
                    format!("The instance ID '{id}' does not exist"),
                )
            })
    }

    pub(super) fn table_index(&self, operation: Operation, id: &str) -> Result<usize, CloudError> {
        self.tables.iter().position(|t| t.id == id).ok_or_else(|| {
            err(
                operation,
                "InvalidRouteTableID.NotFound",
                format!("The routeTable ID '{id}' does not exist"),
            )
        })
    }

    pub(super) fn group_index(&self, operation: Operation, id: &str) -> Result<usize, CloudError> {
        self.groups.iter().position(|g| g.id == id).ok_or_else(|| {
            err(
                operation,
                "InvalidGroup.NotFound",
                format!("The security group '{id}' does not exist"),
            )
        })
    }
}
