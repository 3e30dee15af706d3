//! An in-memory [`Cloud`]: one account in one region, with EC2's and Route 53's
//! documented rules, so orchestration, fleet routing and the crash matrix run
//! as fast unit tests without an emulator.
//!
//! Where it matters it behaves like AWS, not like moto:
//! - RunInstances honours `ClientToken`: the same token with the same
//!   parameters returns the instance it launched before; with other
//!   parameters it fails `IdempotentParameterMismatch`.
//! - A new instance is `pending` in the RunInstances answer and `running` from
//!   the next DescribeInstances on (or later: [`MemoryCloud::set_launch_pending_looks`]).
//!   A filtered (tag) DescribeInstances may not list it yet
//!   ([`MemoryCloud::set_listing_lag`]), as EC2 is eventually consistent.
//! - A plain StopInstances leaves the instance `stopping` for the time a test
//!   sets ([`MemoryCloud::set_stop_takes`], none by default), and
//!   `StateTransitionReason` says when it was asked ("User initiated (... GMT)");
//!   `Force` stops it at once.
//! - AMI names are unique per account (`InvalidAMIName.Duplicate`); CreateImage
//!   makes one untagged snapshot per volume; a snapshot of a registered AMI
//!   cannot be deleted (`InvalidSnapshot.InUse`).
//! - An Elastic IP is associated only with an instance that is not pending
//!   (`IncorrectInstanceState`), and moves (reassociation allowed).
//! - ReplaceRoute of a missing route fails `InvalidRoute.NotFound`, CreateRoute
//!   of an existing one `RouteAlreadyExists`; a route to a terminated instance
//!   is a blackhole.
//! - A second ingress rule with the same protocol, ports and range fails
//!   `InvalidPermission.Duplicate` whatever its description; revoking a rule
//!   that is not there fails `InvalidPermission.NotFound` (non-default VPC), and
//!   neither changes any rule of the request.
//! - With EBS encryption by default on ([`MemoryCloud::encrypt_volumes_by_default`]),
//!   every launch dies on launch (`Client.InternalError`) when the default key
//!   is one the function may not use ([`MemoryCloud::forbid_kms_key`]).
//! - Route 53 refuses to UPSERT a simple record over routing-policy records of
//!   the same name (`InvalidChangeBatch`).
//!
//! The world lives behind `Arc<Mutex<..>>`: clones share it, so a test keeps a
//! handle to look at the world while the function under test (perhaps through
//! a [`super::faults::FaultyCloud`]) changes it. Ids are deterministic
//! (two worlds built the same way have the same ids) but look like AWS's, so
//! nothing can rely on them sorting in creation order.

mod account;
mod announcer;
mod cloud;
mod images;
mod inspect;
mod instances;
mod launch;
mod leases;
#[cfg(test)]
mod lifecycle_tests;
mod network;
mod records;
mod route53;
mod setup;
mod specs;
mod tags;
#[cfg(test)]
mod tests;
mod views;

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};

use account::Account;

pub use announcer::{Mail, MemoryAnnouncer};
pub use leases::{LeaseEvent, MemoryLeases};
pub use specs::{ImageSpec, InstanceSpec};
pub use views::{
    AddressView, GroupView, ImageView, InstanceView, RecordView, RouteView, RuleView, SnapshotView,
    WorldView,
};

/// What a healthy Route 53 checker reports.
pub const CHECKER_SUCCESS: &str = "Success: HTTP Status Code 200, OK";
/// What a failing Route 53 checker reports.
pub const CHECKER_FAILURE: &str =
    "Failure: Connection timed out. The endpoint or the internet connection is down.";
/// Checkers a new health check has (Route 53 uses about this many regions' worth).
pub const DEFAULT_CHECKERS: usize = 8;
/// EC2's default quota of inbound rules per security group, per IP family.
pub const DEFAULT_RULE_LIMIT: usize = 60;

/// The in-memory cloud. Clones share one world.
#[derive(Debug, Clone)]
pub struct MemoryCloud {
    state: Arc<Mutex<Account>>,
}

impl Default for MemoryCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCloud {
    /// An empty account.
    pub fn new() -> Self {
        let ranges = [
            "15.177.0.0/18",
            "54.183.255.128/26",
            "54.228.16.0/26",
            "2600:1f14:fff:f800::/56",
        ]
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect();
        Self {
            state: Arc::new(Mutex::new(Account {
                counter: 0,
                last_time: DateTime::<Utc>::MIN_UTC,
                vpcs: Vec::new(),
                subnets: Vec::new(),
                gateways: Vec::new(),
                tables: Vec::new(),
                groups: Vec::new(),
                key_pairs: Vec::new(),
                instances: Vec::new(),
                images: Vec::new(),
                snapshots: Vec::new(),
                addresses: Vec::new(),
                tokens: Vec::new(),
                zones: Vec::new(),
                health_checks: Vec::new(),
                checker_ranges: ranges,
                launch_pending_looks: 0,
                stale_start_looks: 0,
                image_pending_looks: 0,
                listing_lag: 0,
                rule_limit: DEFAULT_RULE_LIMIT,
                launch_deaths: Vec::new(),
                alarms: Vec::new(),
                stuck_stopping: Vec::new(),
                stop_takes: TimeDelta::zero(),
                ahead: TimeDelta::zero(),
                denied: Vec::new(),
                ebs_encryption_by_default: false,
                ebs_default_key: None,
                unusable_keys: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Account> {
        // A panic elsewhere cannot leave the world half-written; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
