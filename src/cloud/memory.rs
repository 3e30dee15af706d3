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
//! - Route 53 refuses to UPSERT a simple record over routing-policy records of
//!   the same name (`InvalidChangeBatch`).
//!
//! The world lives behind `Arc<Mutex<..>>`: clones share it, so a test keeps a
//! handle to look at the world while the function under test (perhaps through
//! a [`super::faults::FaultyCloud`]) changes it. Ids are deterministic
//! (two worlds built the same way have the same ids) but look like AWS's, so
//! nothing can rely on them sorting in creation order.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};

use super::sdk::same_dns_name;
use super::{
    Address, Alarm, AlarmQuery, CheckerReport, Cidr, Cloud, CloudError, GroupIngress, Image,
    ImageRequest, IngressRule, Instance, InstanceState, Interface, LaunchRequest, MetadataOptions,
    Permission, Probe, RecordSet, Route, RouteTable, RouteTarget, SecurityGroup, Snapshot, Subnet,
    TAG_CREATED_BY, Tag, Vpc, is_burstable, route_target_of,
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
/// The code EC2 answers for an unknown id of this kind.
fn not_found_code(id: &str) -> &'static str {
    match id.split_once('-').map(|(p, _)| p) {
        Some("i") => "InvalidInstanceID.NotFound",
        Some("ami") => "InvalidAMIID.NotFound",
        Some("snap") => "InvalidSnapshot.NotFound",
        Some("vpc") => "InvalidVpcID.NotFound",
        Some("subnet") => "InvalidSubnetID.NotFound",
        Some("rtb") => "InvalidRouteTableID.NotFound",
        Some("sg") => "InvalidGroup.NotFound",
        _ => "InvalidID",
    }
}

/// EC2's limit of tags per resource.
const TAG_LIMIT: usize = 50;

/// An instance to put into the world.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub subnet_id: String,
    pub instance_type: String,
    pub image_id: Option<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub security_group_ids: Vec<String>,
    pub tags: Vec<Tag>,
    pub state: InstanceState,
    pub source_dest_check: bool,
    /// Defaults to the world's clock.
    pub launch_time: Option<DateTime<Utc>>,
    /// Its own (non-Elastic) public address, shown while it runs.
    pub public_ip: Option<String>,
    /// EBS volumes: CreateImage makes one snapshot per volume.
    pub volumes: usize,
    /// Fields left `None` take EC2's defaults.
    pub metadata_options: MetadataOptions,
    pub ebs_optimized: bool,
    /// Base64, as EC2 keeps it.
    pub user_data: Option<String>,
    /// `None`: the type's default (burstable types only).
    pub cpu_credits: Option<String>,
    /// Interfaces beyond the primary, device 1, 2...: (subnet, groups).
    pub legs: Vec<(String, Vec<String>)>,
}

/// What EC2 fills in for metadata options a launch does not give.
fn metadata_applied(asked: Option<&MetadataOptions>) -> MetadataOptions {
    let asked = asked.cloned().unwrap_or_default();
    MetadataOptions {
        http_tokens: asked.http_tokens.or_else(|| Some("optional".to_owned())),
        http_put_response_hop_limit: asked.http_put_response_hop_limit.or(Some(1)),
        http_endpoint: asked.http_endpoint.or_else(|| Some("enabled".to_owned())),
        instance_metadata_tags: asked
            .instance_metadata_tags
            .or_else(|| Some("disabled".to_owned())),
    }
}

/// A burstable instance's credit option: as launched, else its family's
/// default (T2 `standard`, later families `unlimited`).
fn credits_applied(instance_type: &str, asked: Option<&str>) -> Option<String> {
    if !is_burstable(instance_type) {
        return None;
    }
    let default = if instance_type.starts_with("t2.") {
        "standard"
    } else {
        "unlimited"
    };
    Some(asked.unwrap_or(default).to_owned())
}

fn describe_leg(l: &LegRec) -> Interface {
    Interface {
        id: l.id.clone(),
        device_index: l.device_index,
        subnet_id: l.subnet_id.clone(),
        security_group_ids: l.groups.clone(),
        source_dest_check: Some(l.source_dest_check),
    }
}

impl InstanceSpec {
    /// A running `t3.small` tagged `Name=name` in `subnet_id`.
    pub fn new(subnet_id: &str, name: &str) -> Self {
        Self {
            subnet_id: subnet_id.to_owned(),
            instance_type: "t3.small".to_owned(),
            image_id: None,
            key_name: None,
            iam_instance_profile_arn: None,
            security_group_ids: Vec::new(),
            tags: vec![Tag::new("Name", name)],
            state: InstanceState::Running,
            source_dest_check: true,
            launch_time: None,
            public_ip: None,
            volumes: 1,
            metadata_options: MetadataOptions::default(),
            ebs_optimized: false,
            user_data: None,
            cpu_credits: None,
            legs: Vec::new(),
        }
    }

    /// One more network interface (the next device index) in `subnet_id`.
    pub fn leg(mut self, subnet_id: &str, groups: &[&str]) -> Self {
        let groups = groups.iter().map(|g| (*g).to_owned()).collect();
        self.legs.push((subnet_id.to_owned(), groups));
        self
    }

    pub fn metadata(mut self, options: MetadataOptions) -> Self {
        self.metadata_options = options;
        self
    }

    pub fn ebs_optimized(mut self, on: bool) -> Self {
        self.ebs_optimized = on;
        self
    }

    /// Base64 user data.
    pub fn user_data(mut self, base64: &str) -> Self {
        self.user_data = Some(base64.to_owned());
        self
    }

    pub fn cpu_credits(mut self, credits: &str) -> Self {
        self.cpu_credits = Some(credits.to_owned());
        self
    }

    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.retain(|t| t.key != key);
        self.tags.push(Tag::new(key, value));
        self
    }

    pub fn instance_type(mut self, instance_type: &str) -> Self {
        self.instance_type = instance_type.to_owned();
        self
    }

    pub fn image(mut self, image_id: &str) -> Self {
        self.image_id = Some(image_id.to_owned());
        self
    }

    /// The key pair (registered in the world if it is not yet).
    pub fn key(mut self, key_name: &str) -> Self {
        self.key_name = Some(key_name.to_owned());
        self
    }

    pub fn profile(mut self, arn: &str) -> Self {
        self.iam_instance_profile_arn = Some(arn.to_owned());
        self
    }

    pub fn groups(mut self, ids: &[&str]) -> Self {
        self.security_group_ids = ids.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    pub fn state(mut self, state: InstanceState) -> Self {
        self.state = state;
        self
    }

    pub fn source_dest_check(mut self, on: bool) -> Self {
        self.source_dest_check = on;
        self
    }

    pub fn launched(mut self, at: DateTime<Utc>) -> Self {
        self.launch_time = Some(at);
        self
    }

    pub fn public_ip(mut self, ip: &str) -> Self {
        self.public_ip = Some(ip.to_owned());
        self
    }

    pub fn volumes(mut self, n: usize) -> Self {
        self.volumes = n;
        self
    }
}

/// An AMI to put into the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub name: String,
    pub state: String,
    /// Defaults to the world's clock.
    pub creation_date: Option<DateTime<Utc>>,
    pub tags: Vec<Tag>,
    /// Snapshots (untagged) made for it.
    pub snapshots: usize,
    /// Owned by this account (`Owners=self`); public images are not.
    pub owned: bool,
}

impl ImageSpec {
    /// An `available` AMI of this account named `name`, untagged, with one snapshot.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: "available".to_owned(),
            creation_date: None,
            tags: Vec::new(),
            snapshots: 1,
            owned: true,
        }
    }

    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.retain(|t| t.key != key);
        self.tags.push(Tag::new(key, value));
        self
    }

    pub fn created(mut self, at: DateTime<Utc>) -> Self {
        self.creation_date = Some(at);
        self
    }

    pub fn state(mut self, state: &str) -> Self {
        self.state = state.to_owned();
        self
    }

    pub fn snapshots(mut self, n: usize) -> Self {
        self.snapshots = n;
        self
    }

    /// A public image of someone else (e.g. a base OS image).
    pub fn not_owned(mut self) -> Self {
        self.owned = false;
        self
    }
}

/// Everything observable in the world, in a comparable form without clocks:
/// two worlds that went through the same changes compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldView {
    pub instances: Vec<InstanceView>,
    pub addresses: Vec<AddressView>,
    pub routes: Vec<RouteView>,
    pub images: Vec<ImageView>,
    pub snapshots: Vec<SnapshotView>,
    pub groups: Vec<GroupView>,
    pub records: Vec<RecordView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub availability_zone: String,
    pub state: InstanceState,
    pub instance_type: String,
    pub image_id: Option<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    /// Sorted.
    pub security_group_ids: Vec<String>,
    pub source_dest_check: bool,
    /// Sorted (key, value).
    pub tags: Vec<(String, String)>,
}

impl InstanceView {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressView {
    pub public_ip: String,
    pub allocation_id: String,
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    pub table: String,
    pub vpc_id: String,
    pub destination: String,
    pub target: RouteTarget,
    pub blackhole: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageView {
    pub id: String,
    pub name: String,
    pub state: String,
    pub tags: Vec<(String, String)>,
    pub snapshot_ids: Vec<String>,
}

impl ImageView {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotView {
    pub id: String,
    pub tags: Vec<(String, String)>,
}

impl SnapshotView {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One ingress rule as (protocol, from, to, cidr, description), sorted per group.
pub type RuleView = (String, Option<i32>, Option<i32>, String, Option<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub rules: Vec<RuleView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub zone_id: String,
    pub name: String,
    pub set_identifier: Option<String>,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    pub alias: bool,
}

impl WorldView {
    pub fn instance(&self, id: &str) -> Option<&InstanceView> {
        self.instances.iter().find(|i| i.id == id)
    }

    /// Instances tagged `Name=name`, terminated ones included.
    pub fn named(&self, name: &str) -> Vec<&InstanceView> {
        self.instances
            .iter()
            .filter(|i| i.tag("Name") == Some(name))
            .collect()
    }

    /// The instance the address with this public IP is associated with.
    pub fn address_owner(&self, public_ip: &str) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.public_ip == public_ip)
            .and_then(|a| a.instance_id.as_deref())
    }

    pub fn route(&self, table: &str, destination: &str) -> Option<&RouteView> {
        self.routes
            .iter()
            .find(|r| r.table == table && r.destination == destination)
    }

    pub fn image(&self, id: &str) -> Option<&ImageView> {
        self.images.iter().find(|i| i.id == id)
    }

    pub fn snapshot(&self, id: &str) -> Option<&SnapshotView> {
        self.snapshots.iter().find(|s| s.id == id)
    }

    pub fn group(&self, id: &str) -> Option<&GroupView> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The part of the world inside one VPC: its instances, routes, security
    /// groups and the addresses on its instances.
    pub fn vpc_part(&self, vpc_id: &str) -> WorldView {
        let instances: Vec<InstanceView> = self
            .instances
            .iter()
            .filter(|i| i.vpc_id == vpc_id)
            .cloned()
            .collect();
        let addresses = self
            .addresses
            .iter()
            .filter(|a| {
                a.instance_id
                    .as_deref()
                    .is_some_and(|id| instances.iter().any(|i| i.id == id))
            })
            .cloned()
            .collect();
        WorldView {
            addresses,
            routes: self
                .routes
                .iter()
                .filter(|r| r.vpc_id == vpc_id)
                .cloned()
                .collect(),
            groups: self
                .groups
                .iter()
                .filter(|g| g.vpc_id == vpc_id)
                .cloned()
                .collect(),
            instances,
            images: Vec::new(),
            snapshots: Vec::new(),
            records: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct InstanceRec {
    id: String,
    state: InstanceState,
    vpc_id: String,
    subnet_id: String,
    availability_zone: String,
    instance_type: String,
    image_id: Option<String>,
    key_name: Option<String>,
    iam_instance_profile_arn: Option<String>,
    security_group_ids: Vec<String>,
    eni: String,
    private_ip: String,
    own_public_ip: Option<String>,
    source_dest_check: bool,
    launch_time: DateTime<Utc>,
    /// The primary ENI's attach time: a restart keeps it.
    first_launch: DateTime<Utc>,
    state_reason: Option<String>,
    tags: Vec<Tag>,
    volumes: Vec<String>,
    /// DescribeInstances calls that still see it `pending`.
    pending_looks: usize,
    /// Filtered DescribeInstances calls that do not list it yet.
    unlisted_looks: usize,
    metadata_options: MetadataOptions,
    ebs_optimized: bool,
    user_data: Option<String>,
    cpu_credits: Option<String>,
    /// Interfaces beyond the primary.
    legs: Vec<LegRec>,
}

#[derive(Debug, Clone)]
struct LegRec {
    id: String,
    device_index: i32,
    subnet_id: String,
    groups: Vec<String>,
    source_dest_check: bool,
}

#[derive(Debug, Clone)]
struct ImageRec {
    id: String,
    name: String,
    state: String,
    creation_date: DateTime<Utc>,
    tags: Vec<Tag>,
    snapshot_ids: Vec<String>,
    owned: bool,
    /// DescribeImages calls that still see it `pending`.
    pending_looks: usize,
}

#[derive(Debug, Clone)]
struct SnapshotRec {
    id: String,
    tags: Vec<Tag>,
    kms_key_id: Option<String>,
}

impl SnapshotRec {
    fn view(&self) -> Snapshot {
        Snapshot {
            id: self.id.clone(),
            tags: self.tags.clone(),
            kms_key_id: self.kms_key_id.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct AddressRec {
    allocation_id: String,
    public_ip: String,
    instance_id: Option<String>,
}

#[derive(Debug, Clone)]
struct VpcRec {
    id: String,
    cidr: Cidr,
    tags: Vec<Tag>,
}

#[derive(Debug, Clone)]
struct SubnetRec {
    id: String,
    vpc_id: String,
    availability_zone: String,
    cidr: Cidr,
    tags: Vec<Tag>,
    /// Next host number for a private address (AWS reserves the first four).
    next_host: u32,
}

#[derive(Debug, Clone)]
struct TableRec {
    id: String,
    vpc_id: String,
    tags: Vec<Tag>,
    routes: Vec<(Cidr, RouteTarget)>,
}

#[derive(Debug, Clone)]
struct GroupRec {
    id: String,
    name: String,
    vpc_id: String,
    tags: Vec<Tag>,
    rules: Vec<IngressRule>,
}

#[derive(Debug, Clone)]
struct ZoneRec {
    id: String,
    /// Fully qualified, lowercase, with the trailing dot.
    name: String,
    records: Vec<RecordSet>,
}

#[derive(Debug, Clone)]
struct HealthCheckRec {
    id: String,
    port: Option<u16>,
    statuses: Vec<String>,
}

/// What RunInstances compares when a ClientToken comes again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LaunchKey {
    image_id: String,
    instance_type: String,
    subnet_id: String,
    security_group_ids: Vec<String>,
    key_name: Option<String>,
    iam_instance_profile_arn: Option<String>,
    tags: Vec<(String, String)>,
    metadata_options: Option<MetadataOptions>,
    ebs_optimized: Option<bool>,
    user_data: Option<String>,
    cpu_credits: Option<String>,
    secondary_interfaces: Vec<crate::cloud::LaunchInterface>,
}

impl LaunchKey {
    fn of(r: &LaunchRequest) -> Self {
        let mut security_group_ids = r.security_group_ids.clone();
        security_group_ids.sort();
        Self {
            image_id: r.image_id.clone(),
            instance_type: r.instance_type.clone(),
            subnet_id: r.subnet_id.clone(),
            security_group_ids,
            key_name: r.key_name.clone(),
            iam_instance_profile_arn: r.iam_instance_profile_arn.clone(),
            tags: sorted_tags(&r.tags),
            metadata_options: r.metadata_options.clone(),
            ebs_optimized: r.ebs_optimized,
            user_data: r.user_data.clone(),
            cpu_credits: r.cpu_credits.clone(),
            secondary_interfaces: r.secondary_interfaces.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Account {
    counter: u64,
    last_time: DateTime<Utc>,
    vpcs: Vec<VpcRec>,
    subnets: Vec<SubnetRec>,
    gateways: Vec<(String, String)>,
    tables: Vec<TableRec>,
    groups: Vec<GroupRec>,
    key_pairs: Vec<String>,
    instances: Vec<InstanceRec>,
    images: Vec<ImageRec>,
    snapshots: Vec<SnapshotRec>,
    addresses: Vec<AddressRec>,
    tokens: Vec<(String, LaunchKey, String)>,
    zones: Vec<ZoneRec>,
    health_checks: Vec<HealthCheckRec>,
    checker_ranges: Vec<Cidr>,
    launch_pending_looks: usize,
    image_pending_looks: usize,
    listing_lag: usize,
    rule_limit: usize,
    /// StateReasons of the next launches that EC2 terminates on launch.
    launch_deaths: Vec<String>,
    /// CloudWatch metric alarms (any region: one account's view).
    alarms: Vec<Alarm>,
    /// Instances a plain StopInstances leaves `stopping` (a guest that does
    /// not shut down); only `Force` brings them down.
    stuck_stopping: Vec<String>,
    /// Operations IAM (or an SCP) denies this function.
    denied: Vec<String>,
}

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

fn sorted_tags(tags: &[Tag]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    v.sort();
    v
}

fn has_tag(tags: &[Tag], key: &str, value: &str) -> bool {
    tags.iter().any(|t| t.key == key && t.value == value)
}

fn named(tags: &[Tag], name: &str) -> bool {
    has_tag(tags, "Name", name)
}

/// splitmix64: ids that look random but are the same in every run.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn err(operation: &'static str, code: &str, message: impl Into<String>) -> CloudError {
    CloudError::service(operation, code, message)
}

/// EC2 refuses tag keys in the `aws:` namespace and more than 50 tags.
fn check_tags(operation: &'static str, tags: &[Tag]) -> Result<(), CloudError> {
    if let Some(t) = tags
        .iter()
        .find(|t| t.key.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(err(
            operation,
            "InvalidParameterValue",
            format!(
                "Value ( {} ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use",
                t.key
            ),
        ));
    }
    if let Some(t) = tags.iter().find(|t| t.key.is_empty() || t.key.len() > 128) {
        return Err(err(
            operation,
            "InvalidParameterValue",
            format!("tag key {:?} must be 1 to 128 characters", t.key),
        ));
    }
    if tags.len() > TAG_LIMIT {
        return Err(err(
            operation,
            "TagLimitExceeded",
            format!("{} tags exceed the limit of {TAG_LIMIT}", tags.len()),
        ));
    }
    Ok(())
}

/// Adds or overwrites `new` in `tags`.
fn merge_tags(tags: &mut Vec<Tag>, new: &[Tag]) {
    for t in new {
        match tags.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value = t.value.clone(),
            None => tags.push(t.clone()),
        }
    }
}

/// Route 53 names: lowercase, fully qualified.
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

fn rule_key(r: &IngressRule) -> (&str, Option<i32>, Option<i32>, Cidr) {
    (r.protocol.as_str(), r.from_port, r.to_port, r.cidr)
}

fn is_v6(c: &Cidr) -> bool {
    matches!(c, Cidr::V6 { .. })
}

impl Account {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        mix(self.counter)
    }

    fn new_id(&mut self, prefix: &str) -> String {
        let n = self.next();
        format!("{prefix}-0{n:016x}")
    }

    /// The world's clock: wall time, strictly increasing (millisecond steps),
    /// so "newest" is never a tie.
    fn now(&mut self) -> DateTime<Utc> {
        let t = Utc::now().max(self.last_time + TimeDelta::milliseconds(1));
        self.last_time = t;
        t
    }

    fn instance_index(&self, operation: &'static str, id: &str) -> Result<usize, CloudError> {
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

    fn table_index(&self, operation: &'static str, id: &str) -> Result<usize, CloudError> {
        self.tables.iter().position(|t| t.id == id).ok_or_else(|| {
            err(
                operation,
                "InvalidRouteTableID.NotFound",
                format!("The routeTable ID '{id}' does not exist"),
            )
        })
    }

    fn group_index(&self, operation: &'static str, id: &str) -> Result<usize, CloudError> {
        self.groups.iter().position(|g| g.id == id).ok_or_else(|| {
            err(
                operation,
                "InvalidGroup.NotFound",
                format!("The security group '{id}' does not exist"),
            )
        })
    }

    fn zone_index(&self, operation: &'static str, id: &str) -> Result<usize, CloudError> {
        let id = id.trim_start_matches("/hostedzone/");
        self.zones.iter().position(|z| z.id == id).ok_or_else(|| {
            err(
                operation,
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {id}"),
            )
        })
    }

    fn health_check(
        &self,
        operation: &'static str,
        id: &str,
    ) -> Result<&HealthCheckRec, CloudError> {
        self.health_checks
            .iter()
            .find(|h| h.id == id)
            .ok_or_else(|| {
                err(
                    operation,
                    "NoSuchHealthCheck",
                    format!("A health check with id {id} does not exist."),
                )
            })
    }

    /// A private address of the subnet for a new instance.
    fn private_ip(&mut self, subnet: usize) -> String {
        let s = &mut self.subnets[subnet];
        let host = s.next_host;
        s.next_host += 1;
        match s.cidr {
            Cidr::V4 { network, .. } => Ipv4Addr::from(u32::from(network) + host).to_string(),
            // IPv6-only subnets are not modelled; give a placeholder.
            Cidr::V6 { .. } => format!("10.255.255.{}", host % 250),
        }
    }

    /// DescribeInstances: pending instances whose looks are used up are running,
    /// or terminated with their StateReason when EC2 could not launch them.
    fn tick_instances(&mut self) {
        for i in &mut self.instances {
            if i.state == InstanceState::Pending {
                if i.pending_looks > 0 {
                    i.pending_looks -= 1;
                } else if i.state_reason.is_some() {
                    i.state = InstanceState::Terminated;
                } else {
                    i.state = InstanceState::Running;
                }
            }
        }
    }

    /// DescribeImages: pending images whose looks are used up are available.
    fn tick_images(&mut self) {
        for i in &mut self.images {
            if i.state == "pending" {
                if i.pending_looks == 0 {
                    i.state = "available".to_owned();
                } else {
                    i.pending_looks -= 1;
                }
            }
        }
    }

    fn describe_instance(&self, r: &InstanceRec) -> Instance {
        let gone = matches!(
            r.state,
            InstanceState::Terminated | InstanceState::ShuttingDown
        );
        let eip = self
            .addresses
            .iter()
            .find(|a| a.instance_id.as_deref() == Some(r.id.as_str()))
            .map(|a| a.public_ip.clone());
        let own = r
            .own_public_ip
            .clone()
            .filter(|_| r.state == InstanceState::Running);
        Instance {
            id: r.id.clone(),
            state: r.state,
            availability_zone: r.availability_zone.clone(),
            subnet_id: Some(r.subnet_id.clone()),
            vpc_id: Some(r.vpc_id.clone()),
            instance_type: r.instance_type.clone(),
            image_id: r.image_id.clone(),
            key_name: r.key_name.clone(),
            iam_instance_profile_arn: r.iam_instance_profile_arn.clone(),
            security_group_ids: r.security_group_ids.clone(),
            network_interface_ids: if gone {
                Vec::new()
            } else {
                std::iter::once(r.eni.clone())
                    .chain(r.legs.iter().map(|l| l.id.clone()))
                    .collect()
            },
            private_ip: (!gone).then(|| r.private_ip.clone()),
            public_ip: eip.or(own),
            source_dest_check: Some(r.source_dest_check),
            launch_time: Some(r.launch_time),
            first_launch: Some(r.first_launch),
            state_reason: r.state_reason.clone(),
            tags: r.tags.clone(),
            metadata_options: Some(r.metadata_options.clone()),
            ebs_optimized: Some(r.ebs_optimized),
            secondary_interfaces: if gone {
                Vec::new()
            } else {
                r.legs.iter().map(describe_leg).collect()
            },
        }
    }

    fn describe_image(r: &ImageRec) -> Image {
        Image {
            id: r.id.clone(),
            name: Some(r.name.clone()),
            state: r.state.clone(),
            creation_date: Some(r.creation_date),
            tags: r.tags.clone(),
            // EC2 lists an AMI's snapshots once it has made them.
            snapshot_ids: if r.state == "pending" {
                Vec::new()
            } else {
                r.snapshot_ids.clone()
            },
        }
    }

    /// A route is a blackhole when its instance or interface is gone.
    fn blackhole(&self, target: &RouteTarget) -> bool {
        let alive = |i: &InstanceRec| {
            !matches!(
                i.state,
                InstanceState::Terminated | InstanceState::ShuttingDown
            )
        };
        match target {
            RouteTarget::Instance(id) => !self.instances.iter().any(|i| i.id == *id && alive(i)),
            RouteTarget::NetworkInterface(eni) => !self
                .instances
                .iter()
                .any(|i| (i.eni == *eni || i.legs.iter().any(|l| l.id == *eni)) && alive(i)),
            RouteTarget::Other(_) | RouteTarget::None => false,
        }
    }

    fn describe_table(&self, t: &TableRec) -> RouteTable {
        RouteTable {
            id: t.id.clone(),
            vpc_id: t.vpc_id.clone(),
            routes: t
                .routes
                .iter()
                .map(|(c, target)| Route {
                    destination: c.to_string(),
                    target: target.clone(),
                    blackhole: self.blackhole(target),
                })
                .collect(),
            tags: t.tags.clone(),
        }
    }

    fn new_snapshot(&mut self) -> String {
        let id = self.new_id("snap");
        self.snapshots.push(SnapshotRec {
            id: id.clone(),
            tags: Vec::new(),
            kms_key_id: None,
        });
        id
    }

    fn run_instance(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        const OP: &str = "RunInstances";
        let token = &req.client_token;
        if token.is_empty() || token.len() > 64 || !token.is_ascii() {
            return Err(err(
                OP,
                "InvalidParameterValue",
                format!("ClientToken {token:?} must be 1 to 64 ASCII characters"),
            ));
        }
        let key = LaunchKey::of(req);
        if let Some(answer) = self.replay(token, &key)? {
            return Ok(answer);
        }
        let (subnet, volumes) = self.check_launch(req)?;
        self.check_legs(req, &self.subnets[subnet].availability_zone)?;
        let id = self.launch(req, subnet, volumes);
        let i = self.instance_index(OP, &id)?;
        let answer = self.describe_instance(&self.instances[i]);
        self.tokens.push((token.clone(), key, id));
        Ok(answer)
    }

    /// A ClientToken used before: the same instance, or EC2's refusal.
    fn replay(&self, token: &str, key: &LaunchKey) -> Result<Option<Instance>, CloudError> {
        const OP: &str = "RunInstances";
        let Some((_, earlier, id)) = self.tokens.iter().find(|(t, _, _)| t == token) else {
            return Ok(None);
        };
        if earlier != key {
            return Err(err(
                OP,
                "IdempotentParameterMismatch",
                format!("The client token {token} was already used with different parameters"),
            ));
        }
        let r = &self.instances[self.instance_index(OP, id)?];
        if r.state.is_gone() {
            return Err(err(
                OP,
                "IdempotentInstanceTerminated",
                format!(
                    "The instance {} launched with client token {token} is terminated",
                    r.id
                ),
            ));
        }
        Ok(Some(self.describe_instance(r)))
    }

    /// What EC2 checks before it launches: the image, subnet, groups, key pair,
    /// type and tags. Returns the subnet's index and the volumes to create.
    fn check_launch(&self, req: &LaunchRequest) -> Result<(usize, usize), CloudError> {
        const OP: &str = "RunInstances";
        let image = self
            .images
            .iter()
            .find(|i| i.id == req.image_id)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidAMIID.NotFound",
                    format!("The image id '[{}]' does not exist", req.image_id),
                )
            })?;
        if image.state != "available" {
            return Err(err(
                OP,
                "InvalidAMIID.Unavailable",
                format!("The image id '[{}]' is {}", image.id, image.state),
            ));
        }
        let subnet = self
            .subnets
            .iter()
            .position(|s| s.id == req.subnet_id)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidSubnetID.NotFound",
                    format!("The subnet ID '{}' does not exist", req.subnet_id),
                )
            })?;
        self.check_placement(req, &self.subnets[subnet].vpc_id)?;
        check_tags(OP, &req.tags)?;
        Ok((subnet, image.snapshot_ids.len().max(1)))
    }

    /// Groups in the subnet's VPC, a known key pair, a type.
    fn check_placement(&self, req: &LaunchRequest, vpc_id: &str) -> Result<(), CloudError> {
        const OP: &str = "RunInstances";
        for g in &req.security_group_ids {
            let group = &self.groups[self.group_index(OP, g)?];
            if group.vpc_id != vpc_id {
                return Err(err(
                    OP,
                    "InvalidParameter",
                    format!(
                        "Security group {g} and subnet {} belong to different networks.",
                        req.subnet_id
                    ),
                ));
            }
        }
        if let Some(k) = &req.key_name
            && !self.key_pairs.contains(k)
        {
            return Err(err(
                OP,
                "InvalidKeyPair.NotFound",
                format!("The key pair '{k}' does not exist"),
            ));
        }
        if req.instance_type.is_empty() {
            return Err(err(
                OP,
                "InvalidParameterValue",
                "Invalid value '' for InstanceType.",
            ));
        }
        if req.cpu_credits.is_some() && !is_burstable(&req.instance_type) {
            return Err(err(
                OP,
                "InvalidParameterCombination",
                format!(
                    "CPU credits are not supported for instance type {}",
                    req.instance_type
                ),
            ));
        }
        Ok(())
    }

    /// The new instance, `pending`; returns its id.
    fn launch(&mut self, req: &LaunchRequest, subnet: usize, volumes: usize) -> String {
        let id = self.new_id("i");
        let eni = self.new_id("eni");
        let volumes = (0..volumes).map(|_| self.new_id("vol")).collect();
        let private_ip = self.private_ip(subnet);
        let launch_time = self.now();
        // EC2 accepts the launch, then terminates the instance.
        let dies = (!self.launch_deaths.is_empty()).then(|| self.launch_deaths.remove(0));
        let legs = req
            .secondary_interfaces
            .iter()
            .map(|l| {
                (
                    l.device_index,
                    l.subnet_id.clone(),
                    l.security_group_ids.clone(),
                )
            })
            .collect();
        let legs = self.new_legs(legs);
        let s = &self.subnets[subnet];
        let record = InstanceRec {
            id: id.clone(),
            state: InstanceState::Pending,
            vpc_id: s.vpc_id.clone(),
            subnet_id: s.id.clone(),
            availability_zone: s.availability_zone.clone(),
            instance_type: req.instance_type.clone(),
            image_id: Some(req.image_id.clone()),
            key_name: req.key_name.clone(),
            iam_instance_profile_arn: req.iam_instance_profile_arn.clone(),
            security_group_ids: req.security_group_ids.clone(),
            eni,
            private_ip,
            own_public_ip: None,
            source_dest_check: true,
            launch_time,
            first_launch: launch_time,
            state_reason: dies,
            tags: req.tags.clone(),
            volumes,
            pending_looks: self.launch_pending_looks,
            unlisted_looks: self.listing_lag,
            metadata_options: metadata_applied(req.metadata_options.as_ref()),
            ebs_optimized: req.ebs_optimized.unwrap_or(false),
            user_data: req.user_data.clone(),
            cpu_credits: credits_applied(&req.instance_type, req.cpu_credits.as_deref()),
            legs,
        };
        self.instances.push(record);
        id
    }

    fn create_image(&mut self, req: &ImageRequest) -> Result<String, CloudError> {
        const OP: &str = "CreateImage";
        let i = self.instance_index(OP, &req.instance_id)?;
        let state = self.instances[i].state;
        if !matches!(state, InstanceState::Running | InstanceState::Stopped) {
            return Err(err(
                OP,
                "IncorrectInstanceState",
                format!(
                    "The instance '{}' is {}, not running or stopped",
                    req.instance_id,
                    state.as_str()
                ),
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c);
        if !(3..=128).contains(&req.name.len()) || !req.name.chars().all(allowed) {
            return Err(err(
                OP,
                "InvalidAMIName.Malformed",
                format!("AMI name {:?} is not 3-128 allowed characters", req.name),
            ));
        }
        if req.description.len() > 255 {
            return Err(err(
                OP,
                "InvalidParameterValue",
                "the description is longer than 255 characters",
            ));
        }
        if let Some(other) = self.images.iter().find(|x| x.owned && x.name == req.name) {
            return Err(err(
                OP,
                "InvalidAMIName.Duplicate",
                format!(
                    "AMI name {} is already in use by AMI {}",
                    req.name, other.id
                ),
            ));
        }
        check_tags(OP, &req.tags)?;
        let volumes = self.instances[i].volumes.len();
        let id = self.new_id("ami");
        let snapshot_ids = (0..volumes).map(|_| self.new_snapshot()).collect();
        let creation_date = self.now();
        let pending = self.image_pending_looks;
        self.images.push(ImageRec {
            id: id.clone(),
            name: req.name.clone(),
            state: if pending == 0 { "available" } else { "pending" }.to_owned(),
            creation_date,
            tags: req.tags.clone(),
            snapshot_ids,
            owned: true,
            pending_looks: pending,
        });
        Ok(id)
    }

    fn create_tags(&mut self, ids: &[String], tags: &[Tag]) -> Result<(), CloudError> {
        const OP: &str = "CreateTags";
        check_tags(OP, tags)?;
        // Every resource must exist, or nothing is tagged.
        if let Some(id) = ids.iter().find(|id| self.tags_of_mut(id).is_none()) {
            return Err(err(
                OP,
                not_found_code(id),
                format!("The ID '{id}' does not exist"),
            ));
        }
        for id in ids {
            if let Some(t) = self.tags_of_mut(id) {
                merge_tags(t, tags);
                if t.len() > TAG_LIMIT {
                    return Err(err(
                        OP,
                        "TagLimitExceeded",
                        format!("{id} would have more than {TAG_LIMIT} tags"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The tags of a taggable resource, by its id's prefix.
    fn tags_of_mut(&mut self, id: &str) -> Option<&mut Vec<Tag>> {
        match id.split_once('-').map(|(p, _)| p) {
            Some("i") => self
                .instances
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("ami") => self
                .images
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("snap") => self
                .snapshots
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("vpc") => self
                .vpcs
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("subnet") => self
                .subnets
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("rtb") => self
                .tables
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            Some("sg") => self
                .groups
                .iter_mut()
                .find(|x| x.id == id)
                .map(|x| &mut x.tags),
            _ => None,
        }
    }

    fn deregister_image(&mut self, id: &str) -> Result<(), CloudError> {
        let i = self
            .images
            .iter()
            .position(|x| x.id == id && x.owned)
            .ok_or_else(|| {
                err(
                    "DeregisterImage",
                    "InvalidAMIID.NotFound",
                    format!("The image id '[{id}]' does not exist"),
                )
            })?;
        // Its snapshots stay (and are billed) until deleted.
        self.images.remove(i);
        Ok(())
    }

    fn delete_snapshot(&mut self, id: &str) -> Result<(), CloudError> {
        const OP: &str = "DeleteSnapshot";
        let i = self
            .snapshots
            .iter()
            .position(|x| x.id == id)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidSnapshot.NotFound",
                    format!("The snapshot '{id}' does not exist."),
                )
            })?;
        if let Some(image) = self
            .images
            .iter()
            .find(|x| x.snapshot_ids.iter().any(|s| s == id))
        {
            return Err(err(
                OP,
                "InvalidSnapshot.InUse",
                format!("The snapshot {id} is currently in use by {}", image.id),
            ));
        }
        self.snapshots.remove(i);
        Ok(())
    }

    fn stop_instance(&mut self, id: &str, force: bool) -> Result<(), CloudError> {
        const OP: &str = "StopInstances";
        let i = self.instance_index(OP, id)?;
        let stuck = !force && self.stuck_stopping.iter().any(|s| s == id);
        let r = &mut self.instances[i];
        match r.state {
            InstanceState::Pending | InstanceState::Running | InstanceState::Stopping => {
                r.state = if stuck {
                    InstanceState::Stopping
                } else {
                    InstanceState::Stopped
                };
                Ok(())
            }
            InstanceState::Stopped => Ok(()),
            other => Err(err(
                OP,
                "IncorrectInstanceState",
                format!(
                    "This instance '{id}' is not in a state from which it can be stopped ({}).",
                    other.as_str()
                ),
            )),
        }
    }

    /// StartInstances: a stopped instance is `pending` for a look, then
    /// `running`; one already up is left as it is, as EC2 does.
    fn start_instance(&mut self, id: &str) -> Result<(), CloudError> {
        const OP: &str = "StartInstances";
        let i = self.instance_index(OP, id)?;
        let now = self.now();
        let r = &mut self.instances[i];
        match r.state {
            InstanceState::Stopped => {
                r.state = InstanceState::Pending;
                r.pending_looks = 1;
                r.launch_time = now;
                Ok(())
            }
            InstanceState::Pending | InstanceState::Running => Ok(()),
            other => Err(err(
                OP,
                "IncorrectInstanceState",
                format!(
                    "The instance '{id}' is not in a state from which it can be started ({}).",
                    other.as_str()
                ),
            )),
        }
    }

    /// TerminateInstances: gone at once (EC2 passes through `shutting-down`),
    /// its floating IP released from it.
    fn terminate_instance(&mut self, id: &str) -> Result<(), CloudError> {
        let i = self.instance_index("TerminateInstances", id)?;
        self.instances[i].state = InstanceState::Terminated;
        for a in &mut self.addresses {
            if a.instance_id.as_deref() == Some(id) {
                a.instance_id = None;
            }
        }
        Ok(())
    }

    /// New interfaces at the given device indexes: (device, subnet, groups).
    fn new_legs(&mut self, legs: Vec<(i32, String, Vec<String>)>) -> Vec<LegRec> {
        legs.into_iter()
            .map(|(device_index, subnet_id, groups)| LegRec {
                id: self.new_id("eni"),
                device_index,
                subnet_id,
                groups,
                source_dest_check: true,
            })
            .collect()
    }

    /// The instance an interface (primary or leg) is attached to.
    fn interface_owner(&self, operation: &'static str, eni: &str) -> Result<usize, CloudError> {
        self.instances
            .iter()
            .position(|i| i.eni == eni || i.legs.iter().any(|l| l.id == eni))
            .ok_or_else(|| {
                err(
                    operation,
                    "InvalidNetworkInterfaceID.NotFound",
                    format!("The networkInterface ID '{eni}' does not exist"),
                )
            })
    }

    fn disable_interface_source_dest_check(&mut self, eni: &str) -> Result<(), CloudError> {
        const OP: &str = "ModifyNetworkInterfaceAttribute";
        let i = self.interface_owner(OP, eni)?;
        let r = &mut self.instances[i];
        match r.legs.iter_mut().find(|l| l.id == eni) {
            Some(leg) => leg.source_dest_check = false,
            None => r.source_dest_check = false,
        }
        Ok(())
    }

    /// EC2 puts every interface of an instance in one AZ.
    fn check_legs(&self, req: &LaunchRequest, az: &str) -> Result<(), CloudError> {
        const OP: &str = "RunInstances";
        for leg in &req.secondary_interfaces {
            let subnet = self
                .subnets
                .iter()
                .find(|s| s.id == leg.subnet_id)
                .ok_or_else(|| {
                    err(
                        OP,
                        "InvalidSubnetID.NotFound",
                        format!("The subnet ID '{}' does not exist", leg.subnet_id),
                    )
                })?;
            if subnet.availability_zone != az {
                return Err(err(
                    OP,
                    "InvalidParameterCombination",
                    "Network interfaces and an instance-level subnet ID may not be specified on the same request; all subnets must be in one Availability Zone",
                ));
            }
        }
        Ok(())
    }

    fn disable_source_dest_check(&mut self, id: &str) -> Result<(), CloudError> {
        const OP: &str = "ModifyInstanceAttribute";
        let i = self.instance_index(OP, id)?;
        let r = &mut self.instances[i];
        if matches!(
            r.state,
            InstanceState::Terminated | InstanceState::ShuttingDown
        ) {
            return Err(err(
                OP,
                "IncorrectInstanceState",
                format!("The instance '{id}' is {}", r.state.as_str()),
            ));
        }
        r.source_dest_check = false;
        Ok(())
    }

    fn associate_address(
        &mut self,
        allocation_id: &str,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "AssociateAddress";
        let a = self
            .addresses
            .iter()
            .position(|x| x.allocation_id == allocation_id)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidAllocationID.NotFound",
                    format!("The allocation ID '{allocation_id}' does not exist"),
                )
            })?;
        let i = self.instance_index(OP, instance_id)?;
        let state = self.instances[i].state;
        if matches!(
            state,
            InstanceState::Pending | InstanceState::ShuttingDown | InstanceState::Terminated
        ) {
            return Err(err(
                OP,
                "IncorrectInstanceState",
                format!(
                    "The {} instance '{instance_id}' is not in a valid state for this operation.",
                    state.as_str()
                ),
            ));
        }
        // AllowReassociation: it leaves whatever it was on.
        self.addresses[a].instance_id = Some(instance_id.to_owned());
        Ok(())
    }

    fn route_target_instance(
        &self,
        operation: &'static str,
        table: usize,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        let i = if instance_id.starts_with("eni-") {
            self.interface_owner(operation, instance_id)?
        } else {
            let i = self.instance_index(operation, instance_id)?;
            if !self.instances[i].legs.is_empty() {
                return Err(err(
                    operation,
                    "InvalidInstanceID",
                    format!(
                        "There are multiple interfaces attached to instance '{instance_id}'. Please specify an interface ID for the operation instead."
                    ),
                ));
            }
            i
        };
        let t = &self.tables[table];
        if self.instances[i].vpc_id != t.vpc_id {
            return Err(err(
                operation,
                "InvalidParameterValue",
                format!(
                    "The instance {instance_id} and route table {} belong to different networks",
                    t.id
                ),
            ));
        }
        Ok(())
    }

    fn replace_route(
        &mut self,
        table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "ReplaceRoute";
        let t = self.table_index(OP, table_id)?;
        self.route_target_instance(OP, t, instance_id)?;
        let route = self.tables[t]
            .routes
            .iter_mut()
            .find(|(c, _)| c == destination)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidRoute.NotFound",
                    format!(
                        "There is no route defined for '{destination}' in the route table. Use CreateRoute instead."
                    ),
                )
            })?;
        route.1 = route_target_of(instance_id);
        Ok(())
    }

    fn create_route(
        &mut self,
        table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "CreateRoute";
        let t = self.table_index(OP, table_id)?;
        self.route_target_instance(OP, t, instance_id)?;
        if self.tables[t].routes.iter().any(|(c, _)| c == destination) {
            return Err(err(
                OP,
                "RouteAlreadyExists",
                format!("The route identified by {destination} already exists."),
            ));
        }
        self.tables[t]
            .routes
            .push((*destination, route_target_of(instance_id)));
        Ok(())
    }

    fn group_ingress(&self, g: &GroupRec) -> GroupIngress {
        GroupIngress {
            id: g.id.clone(),
            name: g.name.clone(),
            vpc_id: Some(g.vpc_id.clone()),
            rules: g.rules.clone(),
        }
    }

    fn authorize_ingress(
        &mut self,
        group_id: &str,
        port: u16,
        ranges: &[Cidr],
        description: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "AuthorizeSecurityGroupIngress";
        let g = self.group_index(OP, group_id)?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c);
        if description.len() > 255 || !description.chars().all(allowed) {
            return Err(err(
                OP,
                "InvalidParameterValue",
                format!("Invalid rule description {description:?}"),
            ));
        }
        let new: Vec<IngressRule> = ranges
            .iter()
            .map(|c| IngressRule {
                protocol: "tcp".to_owned(),
                from_port: Some(i32::from(port)),
                to_port: Some(i32::from(port)),
                cidr: *c,
                description: Some(description.to_owned()),
            })
            .collect();
        let group = &self.groups[g];
        for (n, rule) in new.iter().enumerate() {
            let again = new[..n].iter().any(|r| rule_key(r) == rule_key(rule));
            if again || group.rules.iter().any(|r| rule_key(r) == rule_key(rule)) {
                return Err(err(
                    OP,
                    "InvalidPermission.Duplicate",
                    format!(
                        "the specified rule \"peer: {}, TCP, from port: {port}, to port: {port}, ALLOW\" already exists",
                        rule.cidr
                    ),
                ));
            }
        }
        for v6 in [false, true] {
            let count =
                |rules: &[IngressRule]| rules.iter().filter(|r| is_v6(&r.cidr) == v6).count();
            if count(&group.rules) + count(&new) > self.rule_limit {
                return Err(err(
                    OP,
                    "RulesPerSecurityGroupLimitExceeded",
                    "The maximum number of rules per security group has been reached.",
                ));
            }
        }
        self.groups[g].rules.extend(new);
        Ok(())
    }

    fn revoke_ingress(&mut self, group_id: &str, rules: &[IngressRule]) -> Result<(), CloudError> {
        const OP: &str = "RevokeSecurityGroupIngress";
        let g = self.group_index(OP, group_id)?;
        let group = &self.groups[g];
        // A non-default VPC refuses the whole request if one rule is not there.
        if let Some(missing) = rules
            .iter()
            .find(|r| !group.rules.iter().any(|x| rule_key(x) == rule_key(r)))
        {
            return Err(err(
                OP,
                "InvalidPermission.NotFound",
                format!(
                    "The specified rule does not exist in this security group: {} {} {:?}-{:?}",
                    missing.cidr, missing.protocol, missing.from_port, missing.to_port
                ),
            ));
        }
        self.groups[g]
            .rules
            .retain(|x| !rules.iter().any(|r| rule_key(x) == rule_key(r)));
        Ok(())
    }

    fn upsert_a_record(
        &mut self,
        zone_id: &str,
        name: &str,
        ttl: i64,
        address: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "ChangeResourceRecordSets";
        let z = self.zone_index(OP, zone_id)?;
        let zone = &self.zones[z];
        let name = fqdn(name);
        let batch = |m: String| err(OP, "InvalidChangeBatch", m);
        if !(name == zone.name || name.ends_with(&format!(".{}", zone.name))) {
            return Err(batch(format!(
                "RRSet with DNS name {name} is not permitted in zone {}",
                zone.name
            )));
        }
        if address.parse::<Ipv4Addr>().is_err() {
            return Err(batch(format!(
                "Invalid Resource Record: FATAL problem: ARRDATAIllegalIPv4Address encountered at {address}"
            )));
        }
        if !(0..=i64::from(i32::MAX)).contains(&ttl) {
            return Err(err(
                OP,
                "InvalidInput",
                format!("TTL {ttl} is out of range"),
            ));
        }
        if zone
            .records
            .iter()
            .any(|r| same_dns_name(&r.name, &name) && r.set_identifier.is_some())
        {
            return Err(batch(format!(
                "RRSet of type A with DNS name {name} is not permitted because a conflicting RRSet of type A with the same DNS name already exists in zone {}.",
                zone.name
            )));
        }
        let record = RecordSet {
            name: name.clone(),
            ttl: Some(ttl),
            values: vec![address.to_owned()],
            set_identifier: None,
            alias: false,
        };
        let records = &mut self.zones[z].records;
        match records.iter_mut().find(|r| same_dns_name(&r.name, &name)) {
            Some(r) => *r = record,
            None => records.push(record),
        }
        Ok(())
    }

    fn view(&self) -> WorldView {
        let (instances, addresses, routes) = self.network_view();
        let (images, snapshots) = self.storage_view();
        let (groups, records) = self.access_view();
        WorldView {
            instances,
            addresses,
            routes,
            images,
            snapshots,
            groups,
            records,
        }
    }

    fn network_view(&self) -> (Vec<InstanceView>, Vec<AddressView>, Vec<RouteView>) {
        let mut instances: Vec<InstanceView> = self
            .instances
            .iter()
            .map(|r| {
                let mut security_group_ids = r.security_group_ids.clone();
                security_group_ids.sort();
                InstanceView {
                    id: r.id.clone(),
                    vpc_id: r.vpc_id.clone(),
                    subnet_id: r.subnet_id.clone(),
                    availability_zone: r.availability_zone.clone(),
                    state: r.state,
                    instance_type: r.instance_type.clone(),
                    image_id: r.image_id.clone(),
                    key_name: r.key_name.clone(),
                    iam_instance_profile_arn: r.iam_instance_profile_arn.clone(),
                    security_group_ids,
                    source_dest_check: r.source_dest_check,
                    tags: sorted_tags(&r.tags),
                }
            })
            .collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        let mut addresses: Vec<AddressView> = self
            .addresses
            .iter()
            .map(|a| AddressView {
                public_ip: a.public_ip.clone(),
                allocation_id: a.allocation_id.clone(),
                instance_id: a.instance_id.clone(),
            })
            .collect();
        addresses.sort_by(|a, b| a.public_ip.cmp(&b.public_ip));
        let mut routes: Vec<RouteView> = self
            .tables
            .iter()
            .flat_map(|t| {
                t.routes.iter().map(|(c, target)| RouteView {
                    table: t.id.clone(),
                    vpc_id: t.vpc_id.clone(),
                    destination: c.to_string(),
                    target: target.clone(),
                    blackhole: self.blackhole(target),
                })
            })
            .collect();
        routes.sort_by(|a, b| (&a.table, &a.destination).cmp(&(&b.table, &b.destination)));
        (instances, addresses, routes)
    }

    fn storage_view(&self) -> (Vec<ImageView>, Vec<SnapshotView>) {
        let mut images: Vec<ImageView> = self
            .images
            .iter()
            .map(|i| ImageView {
                id: i.id.clone(),
                name: i.name.clone(),
                state: i.state.clone(),
                tags: sorted_tags(&i.tags),
                snapshot_ids: i.snapshot_ids.clone(),
            })
            .collect();
        images.sort_by(|a, b| a.id.cmp(&b.id));
        let mut snapshots: Vec<SnapshotView> = self
            .snapshots
            .iter()
            .map(|s| SnapshotView {
                id: s.id.clone(),
                tags: sorted_tags(&s.tags),
            })
            .collect();
        snapshots.sort_by(|a, b| a.id.cmp(&b.id));
        (images, snapshots)
    }

    fn access_view(&self) -> (Vec<GroupView>, Vec<RecordView>) {
        let mut groups: Vec<GroupView> = self
            .groups
            .iter()
            .map(|g| {
                let mut rules: Vec<RuleView> = g
                    .rules
                    .iter()
                    .map(|r| {
                        (
                            r.protocol.clone(),
                            r.from_port,
                            r.to_port,
                            r.cidr.to_string(),
                            r.description.clone(),
                        )
                    })
                    .collect();
                rules.sort();
                GroupView {
                    id: g.id.clone(),
                    name: g.name.clone(),
                    vpc_id: g.vpc_id.clone(),
                    rules,
                }
            })
            .collect();
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        let mut records: Vec<RecordView> = self
            .zones
            .iter()
            .flat_map(|z| {
                z.records.iter().map(|r| RecordView {
                    zone_id: z.id.clone(),
                    name: r.name.clone(),
                    set_identifier: r.set_identifier.clone(),
                    ttl: r.ttl,
                    values: r.values.clone(),
                    alias: r.alias,
                })
            })
            .collect();
        records.sort_by(|a, b| {
            (&a.zone_id, &a.name, &a.set_identifier).cmp(&(&b.zone_id, &b.name, &b.set_identifier))
        });
        (groups, records)
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
                image_pending_looks: 0,
                listing_lag: 0,
                rule_limit: DEFAULT_RULE_LIMIT,
                launch_deaths: Vec::new(),
                alarms: Vec::new(),
                stuck_stopping: Vec::new(),
                denied: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Account> {
        // A panic elsewhere cannot leave the world half-written; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ----- building the world -------------------------------------------------

    /// A VPC tagged `Name=name`; returns its id.
    pub fn add_vpc(&self, name: &str, cidr: Cidr) -> String {
        let mut s = self.lock();
        let id = s.new_id("vpc");
        s.vpcs.push(VpcRec {
            id: id.clone(),
            cidr,
            tags: vec![Tag::new("Name", name)],
        });
        id
    }

    /// A subnet of `vpc_id` in `az`, tagged `Name=name`; returns its id.
    pub fn add_subnet(&self, vpc_id: &str, az: &str, cidr: Cidr, name: &str) -> String {
        let mut s = self.lock();
        assert!(
            s.vpcs.iter().any(|v| v.id == vpc_id),
            "add_subnet: no VPC {vpc_id}"
        );
        let id = s.new_id("subnet");
        s.subnets.push(SubnetRec {
            id: id.clone(),
            vpc_id: vpc_id.to_owned(),
            availability_zone: az.to_owned(),
            cidr,
            tags: vec![Tag::new("Name", name)],
            next_host: 4,
        });
        id
    }

    /// An internet gateway attached to `vpc_id`; returns its id.
    pub fn add_internet_gateway(&self, vpc_id: &str) -> String {
        let mut s = self.lock();
        let id = s.new_id("igw");
        s.gateways.push((id.clone(), vpc_id.to_owned()));
        id
    }

    /// A route table of `vpc_id` tagged `Name=name`, with its `local` route.
    pub fn add_route_table(&self, vpc_id: &str, name: &str) -> String {
        let mut s = self.lock();
        let cidr = s
            .vpcs
            .iter()
            .find(|v| v.id == vpc_id)
            .map(|v| v.cidr)
            .unwrap_or_else(|| panic!("add_route_table: no VPC {vpc_id}"));
        let id = s.new_id("rtb");
        s.tables.push(TableRec {
            id: id.clone(),
            vpc_id: vpc_id.to_owned(),
            tags: vec![Tag::new("Name", name)],
            routes: vec![(cidr, RouteTarget::Other("local".to_owned()))],
        });
        id
    }

    /// A route, whatever its target (an instance, an interface, a gateway).
    pub fn add_route(&self, table_id: &str, destination: Cidr, target: RouteTarget) {
        let mut s = self.lock();
        let t = s
            .tables
            .iter_mut()
            .find(|t| t.id == table_id)
            .unwrap_or_else(|| panic!("add_route: no route table {table_id}"));
        assert!(
            !t.routes.iter().any(|(c, _)| *c == destination),
            "add_route: {table_id} already routes {destination}"
        );
        t.routes.push((destination, target));
    }

    /// A security group named `name` in `vpc_id`, without rules.
    pub fn add_security_group(&self, vpc_id: &str, name: &str) -> String {
        let mut s = self.lock();
        assert!(
            !s.groups
                .iter()
                .any(|g| g.vpc_id == vpc_id && g.name == name),
            "add_security_group: {vpc_id} already has a group named {name}"
        );
        let id = s.new_id("sg");
        s.groups.push(GroupRec {
            id: id.clone(),
            name: name.to_owned(),
            vpc_id: vpc_id.to_owned(),
            tags: Vec::new(),
            rules: Vec::new(),
        });
        id
    }

    /// An ingress rule, as a person or another tool would add it.
    pub fn add_ingress(&self, group_id: &str, rule: IngressRule) {
        let mut s = self.lock();
        let g = s
            .groups
            .iter_mut()
            .find(|g| g.id == group_id)
            .unwrap_or_else(|| panic!("add_ingress: no security group {group_id}"));
        assert!(
            !g.rules.iter().any(|r| rule_key(r) == rule_key(&rule)),
            "add_ingress: EC2 would refuse a duplicate of {rule:?}"
        );
        g.rules.push(rule);
    }

    pub fn add_key_pair(&self, name: &str) {
        let mut s = self.lock();
        if !s.key_pairs.iter().any(|k| k == name) {
            s.key_pairs.push(name.to_owned());
        }
    }

    /// DeleteKeyPair: instances launched with it keep running, but no new
    /// instance can be launched with it.
    pub fn remove_key_pair(&self, name: &str) {
        self.lock().key_pairs.retain(|k| k != name);
    }

    /// An instance as described; returns its id.
    pub fn add_instance(&self, spec: InstanceSpec) -> String {
        let mut s = self.lock();
        let subnet = s
            .subnets
            .iter()
            .position(|x| x.id == spec.subnet_id)
            .unwrap_or_else(|| panic!("add_instance: no subnet {}", spec.subnet_id));
        if let Some(k) = &spec.key_name
            && !s.key_pairs.contains(k)
        {
            s.key_pairs.push(k.clone());
        }
        let id = s.new_id("i");
        let eni = s.new_id("eni");
        let volumes = (0..spec.volumes.max(1)).map(|_| s.new_id("vol")).collect();
        let private_ip = s.private_ip(subnet);
        let legs = (1..)
            .zip(spec.legs)
            .map(|(d, (subnet, groups))| (d, subnet, groups))
            .collect();
        let legs = s.new_legs(legs);
        let launch_time = match spec.launch_time {
            Some(t) => t,
            None => s.now(),
        };
        let sub = &s.subnets[subnet];
        let cpu_credits = credits_applied(&spec.instance_type, spec.cpu_credits.as_deref());
        let record = InstanceRec {
            id: id.clone(),
            state: spec.state,
            vpc_id: sub.vpc_id.clone(),
            subnet_id: sub.id.clone(),
            availability_zone: sub.availability_zone.clone(),
            instance_type: spec.instance_type,
            image_id: spec.image_id,
            key_name: spec.key_name,
            iam_instance_profile_arn: spec.iam_instance_profile_arn,
            security_group_ids: spec.security_group_ids,
            eni,
            private_ip,
            own_public_ip: spec.public_ip,
            source_dest_check: spec.source_dest_check,
            launch_time,
            first_launch: launch_time,
            state_reason: None,
            tags: spec.tags,
            volumes,
            pending_looks: 0,
            unlisted_looks: 0,
            metadata_options: metadata_applied(Some(&spec.metadata_options)),
            ebs_optimized: spec.ebs_optimized,
            user_data: spec.user_data,
            cpu_credits,
            legs,
        };
        s.instances.push(record);
        id
    }

    /// An AMI as described, with its (untagged) snapshots; returns its id.
    pub fn add_image(&self, spec: ImageSpec) -> String {
        let mut s = self.lock();
        assert!(
            !(spec.owned && s.images.iter().any(|i| i.owned && i.name == spec.name)),
            "add_image: EC2 would refuse a second AMI named {}",
            spec.name
        );
        let id = s.new_id("ami");
        let snapshot_ids = (0..spec.snapshots).map(|_| s.new_snapshot()).collect();
        let creation_date = match spec.creation_date {
            Some(t) => t,
            None => s.now(),
        };
        s.images.push(ImageRec {
            id: id.clone(),
            name: spec.name,
            state: spec.state,
            creation_date,
            tags: spec.tags,
            snapshot_ids,
            owned: spec.owned,
            pending_looks: 0,
        });
        id
    }

    /// Tags resources, as CreateTags does (a builder shortcut).
    pub fn tag(&self, resource_ids: &[&str], tags: &[(&str, &str)]) {
        let ids: Vec<String> = resource_ids.iter().map(|r| (*r).to_owned()).collect();
        let tags: Vec<Tag> = tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect();
        if let Err(e) = self.lock().create_tags(&ids, &tags) {
            panic!("tag: {e}");
        }
    }

    /// Allocates an Elastic IP, associated with `instance_id` when given.
    pub fn add_address(&self, instance_id: Option<&str>) -> Address {
        let mut s = self.lock();
        if let Some(i) = instance_id {
            assert!(
                s.instances.iter().any(|x| x.id == i),
                "add_address: no instance {i}"
            );
        }
        let allocation_id = s.new_id("eipalloc");
        let n = s.addresses.len();
        let public_ip = format!("203.0.113.{}", 10 + n);
        s.addresses.push(AddressRec {
            allocation_id: allocation_id.clone(),
            public_ip: public_ip.clone(),
            instance_id: instance_id.map(str::to_owned),
        });
        let network_interface_id = instance_id.and_then(|i| {
            s.instances
                .iter()
                .find(|x| x.id == i)
                .map(|x| x.eni.clone())
        });
        Address {
            allocation_id,
            public_ip,
            instance_id: instance_id.map(str::to_owned),
            network_interface_id,
        }
    }

    /// A public hosted zone; returns its id (without `/hostedzone/`).
    pub fn add_hosted_zone(&self, name: &str) -> String {
        let mut s = self.lock();
        let n = s.next();
        let id = format!("Z{n:016X}");
        s.zones.push(ZoneRec {
            id: id.clone(),
            name: fqdn(name),
            records: Vec::new(),
        });
        id
    }

    /// An A record set (simple, routing-policy or alias) in a zone.
    pub fn add_record(&self, zone_id: &str, mut record: RecordSet) {
        let mut s = self.lock();
        let z = s
            .zone_index("ChangeResourceRecordSets", zone_id)
            .unwrap_or_else(|e| panic!("add_record: {e}"));
        record.name = fqdn(&record.name);
        s.zones[z].records.push(record);
    }

    /// A metric alarm, or its new state: `state` since `at` (both timestamps,
    /// as CloudWatch reports a transition).
    pub fn set_alarm(&self, alarm: Alarm) {
        let mut s = self.lock();
        s.alarms.retain(|a| a.name != alarm.name);
        s.alarms.push(alarm);
    }

    /// The snapshots of `image` are encrypted with this KMS key.
    pub fn encrypt_image(&self, image: &str, kms_key_id: &str) {
        let mut s = self.lock();
        let ids: Vec<String> = s
            .images
            .iter()
            .filter(|i| i.id == image)
            .flat_map(|i| i.snapshot_ids.clone())
            .collect();
        for snap in s.snapshots.iter_mut().filter(|x| ids.contains(&x.id)) {
            snap.kms_key_id = Some(kms_key_id.to_owned());
        }
    }

    /// IAM denies `operation` (`RunInstances`, ...): its dry run answers
    /// `UnauthorizedOperation`. (Only dry runs consult it.)
    pub fn deny(&self, operation: &str) {
        self.lock().denied.push(operation.to_owned());
    }

    /// A plain stop of this instance leaves it `stopping` for good; only a
    /// forced stop brings it down.
    pub fn stick_when_stopped(&self, instance_id: &str) {
        self.lock().stuck_stopping.push(instance_id.to_owned());
    }

    /// A health check with `port` (none for calculated ones), every checker healthy.
    pub fn add_health_check(&self, id: &str, port: Option<u16>) {
        let mut s = self.lock();
        s.health_checks.push(HealthCheckRec {
            id: id.to_owned(),
            port,
            statuses: vec![CHECKER_SUCCESS.to_owned(); DEFAULT_CHECKERS],
        });
    }

    /// What the checkers of a health check report now: `healthy` of `total` succeed.
    pub fn set_health(&self, id: &str, healthy: usize, total: usize) {
        let mut s = self.lock();
        let h = s
            .health_checks
            .iter_mut()
            .find(|h| h.id == id)
            .unwrap_or_else(|| panic!("set_health: no health check {id}"));
        h.statuses = (0..total)
            .map(|n| {
                if n < healthy {
                    CHECKER_SUCCESS
                } else {
                    CHECKER_FAILURE
                }
                .to_owned()
            })
            .collect();
    }

    /// The ranges `GetCheckerIpRanges` answers from now on.
    pub fn set_checker_ranges(&self, ranges: &[Cidr]) {
        self.lock().checker_ranges = ranges.to_vec();
    }

    /// New instances stay `pending` for this many DescribeInstances calls after
    /// the RunInstances answer (0, the default: running from the first look).
    pub fn set_launch_pending_looks(&self, looks: usize) {
        self.lock().launch_pending_looks = looks;
    }

    /// New AMIs stay `pending` (without snapshots listed) for this many
    /// DescribeImages calls (0, the default: `available` at once).
    pub fn set_image_pending_looks(&self, looks: usize) {
        self.lock().image_pending_looks = looks;
    }

    /// DescribeInstances filtered by tag does not list a new instance for this
    /// many calls after its launch (EC2's eventual consistency); by id it does.
    pub fn set_listing_lag(&self, looks: usize) {
        self.lock().listing_lag = looks;
    }

    /// The next launches, one per reason, are accepted by RunInstances and then
    /// terminated by EC2 with that StateReason (e.g. a KMS key it cannot use:
    /// `Client.InternalError: Client error on launch`).
    pub fn kill_next_launches(&self, reasons: &[&str]) {
        self.lock().launch_deaths = reasons.iter().map(|r| (*r).to_owned()).collect();
    }

    /// An operator stopped and started the instance at `at`: EC2 resets its
    /// LaunchTime, but not its primary network interface's attach time.
    pub fn restart(&self, instance_id: &str, at: DateTime<Utc>) {
        let mut s = self.lock();
        if let Some(i) = s.instances.iter_mut().find(|i| i.id == instance_id) {
            i.launch_time = at;
            i.state = InstanceState::Running;
        }
    }

    /// Inbound rules allowed per group and IP family (EC2's default is 60).
    pub fn set_rule_limit(&self, limit: usize) {
        self.lock().rule_limit = limit;
    }

    // ----- looking at the world (no side effects, not a DescribeXxx) ----------

    /// Everything, comparable, without clocks.
    /// Source/dest check off on an instance's other interface, as an
    /// operator deploys a gateway's LAN leg.
    pub fn disable_leg_source_dest_check(&self, interface_id: &str) {
        self.lock()
            .disable_interface_source_dest_check(interface_id)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn view(&self) -> WorldView {
        self.lock().view()
    }

    /// One instance as DescribeInstances would show it now, without counting
    /// as a look.
    pub fn peek_instance(&self, id: &str) -> Option<Instance> {
        let s = self.lock();
        s.instances
            .iter()
            .find(|i| i.id == id)
            .map(|r| s.describe_instance(r))
    }

    /// Every instance, terminated ones included, in launch order.
    pub fn all_instances(&self) -> Vec<Instance> {
        let s = self.lock();
        s.instances.iter().map(|r| s.describe_instance(r)).collect()
    }

    /// The instance the Elastic IP with this address is on.
    pub fn address_owner(&self, public_ip: &str) -> Option<String> {
        self.lock()
            .addresses
            .iter()
            .find(|a| a.public_ip == public_ip)
            .and_then(|a| a.instance_id.clone())
    }

    /// Where a route of a table points, if the table has it.
    pub fn route_target(&self, table_id: &str, destination: &Cidr) -> Option<RouteTarget> {
        self.lock()
            .tables
            .iter()
            .find(|t| t.id == table_id)?
            .routes
            .iter()
            .find(|(c, _)| c == destination)
            .map(|(_, t)| t.clone())
    }

    /// Every registered AMI (owned or not), as DescribeImages shows it.
    pub fn all_images(&self) -> Vec<Image> {
        self.lock()
            .images
            .iter()
            .map(Account::describe_image)
            .collect()
    }

    /// Every snapshot with its tags.
    pub fn all_snapshots(&self) -> Vec<Snapshot> {
        self.lock()
            .snapshots
            .iter()
            .map(SnapshotRec::view)
            .collect()
    }

    /// The CIDR ingress rules of a group, in the order they were added.
    pub fn ingress_rules(&self, group_id: &str) -> Vec<IngressRule> {
        self.lock()
            .groups
            .iter()
            .find(|g| g.id == group_id)
            .map(|g| g.rules.clone())
            .unwrap_or_default()
    }

    /// The record sets of a zone.
    pub fn records(&self, zone_id: &str) -> Vec<RecordSet> {
        let s = self.lock();
        let id = zone_id.trim_start_matches("/hostedzone/");
        s.zones
            .iter()
            .find(|z| z.id == id)
            .map(|z| z.records.clone())
            .unwrap_or_default()
    }
}

impl Cloud for MemoryCloud {
    async fn vpcs_named(&self, name: &str) -> Result<Vec<Vpc>, CloudError> {
        Ok(self
            .lock()
            .vpcs
            .iter()
            .filter(|v| named(&v.tags, name))
            .map(|v| Vpc { id: v.id.clone() })
            .collect())
    }

    async fn instances_named(&self, name: &str) -> Result<Vec<Instance>, CloudError> {
        let mut s = self.lock();
        s.tick_instances();
        let mut found = Vec::new();
        for i in 0..s.instances.len() {
            let r = &s.instances[i];
            if !named(&r.tags, name)
                || !matches!(
                    r.state,
                    InstanceState::Pending
                        | InstanceState::Running
                        | InstanceState::Stopping
                        | InstanceState::Stopped
                )
            {
                continue;
            }
            if r.unlisted_looks > 0 {
                s.instances[i].unlisted_looks -= 1;
                continue;
            }
            found.push(s.describe_instance(r));
        }
        Ok(found)
    }

    async fn instance(&self, id: &str) -> Result<Option<Instance>, CloudError> {
        let mut s = self.lock();
        s.tick_instances();
        Ok(s.instances
            .iter()
            .find(|i| i.id == id)
            .map(|r| s.describe_instance(r)))
    }

    async fn subnets_named(&self, names: &[String]) -> Result<Vec<Subnet>, CloudError> {
        Ok(self
            .lock()
            .subnets
            .iter()
            .filter(|x| names.iter().any(|n| named(&x.tags, n)))
            .map(|x| Subnet {
                id: x.id.clone(),
                vpc_id: x.vpc_id.clone(),
                availability_zone: x.availability_zone.clone(),
                tags: x.tags.clone(),
            })
            .collect())
    }

    async fn route_tables_named(&self, name: &str) -> Result<Vec<RouteTable>, CloudError> {
        let s = self.lock();
        Ok(s.tables
            .iter()
            .filter(|t| named(&t.tags, name))
            .map(|t| s.describe_table(t))
            .collect())
    }

    async fn images_named(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        let mut s = self.lock();
        s.tick_images();
        Ok(s.images
            .iter()
            .filter(|i| i.owned && i.state == "available" && named(&i.tags, name))
            .map(Account::describe_image)
            .collect())
    }

    async fn tool_images(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        let mut s = self.lock();
        s.tick_images();
        Ok(s.images
            .iter()
            .filter(|i| {
                i.owned
                    && named(&i.tags, name)
                    && has_tag(&i.tags, TAG_CREATED_BY, super::CREATED_BY)
            })
            .map(Account::describe_image)
            .collect())
    }

    async fn tool_snapshots(&self, name: &str) -> Result<Vec<Snapshot>, CloudError> {
        Ok(self
            .lock()
            .snapshots
            .iter()
            .filter(|x| named(&x.tags, name) && has_tag(&x.tags, TAG_CREATED_BY, super::CREATED_BY))
            .map(SnapshotRec::view)
            .collect())
    }

    async fn snapshots_by_id(&self, ids: &[String]) -> Result<Vec<Snapshot>, CloudError> {
        Ok(self
            .lock()
            .snapshots
            .iter()
            .filter(|x| ids.contains(&x.id))
            .map(SnapshotRec::view)
            .collect())
    }

    async fn create_image(&self, request: &ImageRequest) -> Result<String, CloudError> {
        self.lock().create_image(request)
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &[Tag]) -> Result<(), CloudError> {
        self.lock().create_tags(resource_ids, tags)
    }

    async fn deregister_image(&self, image_id: &str) -> Result<(), CloudError> {
        self.lock().deregister_image(image_id)
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), CloudError> {
        self.lock().delete_snapshot(snapshot_id)
    }

    async fn address(&self, public_ip: &str) -> Result<Option<Address>, CloudError> {
        let s = self.lock();
        Ok(s.addresses
            .iter()
            .find(|a| a.public_ip == public_ip)
            .map(|a| Address {
                allocation_id: a.allocation_id.clone(),
                public_ip: a.public_ip.clone(),
                instance_id: a.instance_id.clone(),
                network_interface_id: a.instance_id.as_ref().and_then(|id| {
                    s.instances
                        .iter()
                        .find(|i| i.id == *id)
                        .map(|i| i.eni.clone())
                }),
            }))
    }

    async fn security_groups_named(&self, name: &str) -> Result<Vec<SecurityGroup>, CloudError> {
        Ok(self
            .lock()
            .groups
            .iter()
            .filter(|g| g.name == name)
            .map(|g| SecurityGroup {
                id: g.id.clone(),
                vpc_id: Some(g.vpc_id.clone()),
            })
            .collect())
    }

    async fn stop_instance(&self, id: &str, force: bool) -> Result<(), CloudError> {
        self.lock().stop_instance(id, force)
    }

    async fn run_instance(&self, request: &LaunchRequest) -> Result<Instance, CloudError> {
        self.lock().run_instance(request)
    }

    async fn start_instance(&self, id: &str) -> Result<(), CloudError> {
        self.lock().start_instance(id)
    }

    async fn terminate_instance(&self, id: &str) -> Result<(), CloudError> {
        self.lock().terminate_instance(id)
    }

    async fn user_data(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        let s = self.lock();
        let i = s.instance_index("DescribeInstanceAttribute", instance_id)?;
        Ok(s.instances[i].user_data.clone())
    }

    async fn cpu_credits(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        let s = self.lock();
        let i = s.instance_index("DescribeInstanceCreditSpecifications", instance_id)?;
        Ok(s.instances[i].cpu_credits.clone())
    }

    async fn disable_source_dest_check(&self, instance_id: &str) -> Result<(), CloudError> {
        self.lock().disable_source_dest_check(instance_id)
    }

    async fn disable_interface_source_dest_check(
        &self,
        interface_id: &str,
    ) -> Result<(), CloudError> {
        self.lock()
            .disable_interface_source_dest_check(interface_id)
    }

    async fn associate_address(
        &self,
        allocation_id: &str,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        self.lock().associate_address(allocation_id, instance_id)
    }

    async fn replace_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        self.lock()
            .replace_route(route_table_id, destination, instance_id)
    }

    async fn create_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        self.lock()
            .create_route(route_table_id, destination, instance_id)
    }

    async fn probe(&self, probe: Probe<'_>) -> Result<Permission, CloudError> {
        // The call on a copy of the world: EC2's checks, none of its effects.
        let mut scratch = self.lock().clone();
        let op = probe.operation();
        if scratch.denied.iter().any(|d| d == op) {
            return Ok(Permission::Denied(format!(
                "UnauthorizedOperation: You are not authorized to perform this operation ({op})"
            )));
        }
        let checked = match probe {
            Probe::Stop(id) => scratch.stop_instance(id, false),
            Probe::Launch(r) => scratch.run_instance(r).map(|_| ()),
            Probe::DisableSourceDestCheck(id) => scratch.disable_source_dest_check(id),
            Probe::AssociateAddress {
                allocation_id,
                instance_id,
            } => scratch.associate_address(allocation_id, instance_id),
            Probe::ReplaceRoute {
                table,
                destination,
                target_id,
            } => scratch.replace_route(table, destination, target_id),
            Probe::CreateRoute {
                table,
                destination,
                target_id,
            } => scratch.create_route(table, destination, target_id),
            Probe::CreateImage(r) => scratch.create_image(r).map(|_| ()),
        };
        checked.map(|()| Permission::Allowed)
    }

    async fn alarms(&self, query: AlarmQuery<'_>) -> Result<Vec<Alarm>, CloudError> {
        let s = self.lock();
        Ok(s.alarms
            .iter()
            .filter(|a| match query {
                AlarmQuery::Named(name) => a.name == name,
                AlarmQuery::ForHealthCheck(id) => a.health_check_id.as_deref() == Some(id),
            })
            .cloned()
            .collect())
    }

    async fn health_check_status(
        &self,
        health_check_id: &str,
    ) -> Result<CheckerReport, CloudError> {
        let s = self.lock();
        let h = s.health_check("GetHealthCheckStatus", health_check_id)?;
        let statuses: Vec<&str> = h.statuses.iter().map(String::as_str).collect();
        Ok(CheckerReport::from_statuses(&statuses))
    }

    async fn health_check_port(&self, health_check_id: &str) -> Result<Option<u16>, CloudError> {
        let s = self.lock();
        Ok(s.health_check("GetHealthCheck", health_check_id)?.port)
    }

    async fn checker_ip_ranges(&self) -> Result<Vec<Cidr>, CloudError> {
        Ok(self.lock().checker_ranges.clone())
    }

    async fn security_group_ingress(
        &self,
        id_or_name: &str,
        vpc_id: Option<&str>,
    ) -> Result<Vec<GroupIngress>, CloudError> {
        let s = self.lock();
        // Filters, as the adapter uses: an unknown id lists nothing.
        Ok(s.groups
            .iter()
            .filter(|g| {
                if id_or_name.starts_with("sg-") {
                    g.id == id_or_name
                } else {
                    g.name == id_or_name && vpc_id.is_none_or(|v| g.vpc_id == v)
                }
            })
            .map(|g| s.group_ingress(g))
            .collect())
    }

    async fn authorize_ingress(
        &self,
        group_id: &str,
        port: u16,
        ranges: &[Cidr],
        description: &str,
    ) -> Result<(), CloudError> {
        self.lock()
            .authorize_ingress(group_id, port, ranges, description)
    }

    async fn revoke_ingress(
        &self,
        group_id: &str,
        rules: &[IngressRule],
    ) -> Result<(), CloudError> {
        self.lock().revoke_ingress(group_id, rules)
    }

    async fn a_records(&self, zone_id: &str, name: &str) -> Result<Vec<RecordSet>, CloudError> {
        let s = self.lock();
        let z = s.zone_index("ListResourceRecordSets", zone_id)?;
        Ok(s.zones[z]
            .records
            .iter()
            .filter(|r| same_dns_name(&r.name, name))
            .cloned()
            .collect())
    }

    async fn upsert_a_record(
        &self,
        zone_id: &str,
        name: &str,
        ttl: i64,
        address: &str,
    ) -> Result<(), CloudError> {
        self.lock().upsert_a_record(zone_id, name, ttl, address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{CREATED_BY, TAG_IMAGE};

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    struct Small {
        cloud: MemoryCloud,
        vpc: String,
        subnet_a: String,
        subnet_c: String,
        sg: String,
        image: String,
        old: String,
    }

    fn small() -> Small {
        let cloud = MemoryCloud::new();
        let vpc = cloud.add_vpc("my-vpc", cidr("10.0.0.0/16"));
        let subnet_a = cloud.add_subnet(&vpc, "ap-northeast-1a", cidr("10.0.1.0/24"), "public");
        let subnet_c = cloud.add_subnet(&vpc, "ap-northeast-1c", cidr("10.0.2.0/24"), "public");
        let sg = cloud.add_security_group(&vpc, "sophos");
        let image = cloud.add_image(ImageSpec::new("sophos_1").tag("Name", "sophos"));
        let old = cloud.add_instance(
            InstanceSpec::new(&subnet_a, "sophos")
                .groups(&[&sg])
                .key("ops")
                .image(&image),
        );
        Small {
            cloud,
            vpc,
            subnet_a,
            subnet_c,
            sg,
            image,
            old,
        }
    }

    fn launch(w: &Small, token: &str) -> LaunchRequest {
        LaunchRequest {
            image_id: w.image.clone(),
            instance_type: "t3.small".into(),
            subnet_id: w.subnet_c.clone(),
            security_group_ids: vec![w.sg.clone()],
            key_name: Some("ops".into()),
            iam_instance_profile_arn: Some("arn:aws:iam::123456789012:instance-profile/vpn".into()),
            tags: vec![Tag::new("Name", "sophos"), Tag::new("Role", "vpn")],
            client_token: token.into(),
            metadata_options: None,
            ebs_optimized: None,
            user_data: None,
            cpu_credits: None,
            secondary_interfaces: Vec::new(),
        }
    }

    #[tokio::test]
    async fn run_instances_is_pending_then_running_and_carries_the_request() {
        let w = small();
        let new = w.cloud.run_instance(&launch(&w, "t-1")).await.unwrap();
        assert_eq!(new.state, InstanceState::Pending);
        assert_eq!(new.subnet_id.as_deref(), Some(w.subnet_c.as_str()));
        assert_eq!(new.availability_zone, "ap-northeast-1c");
        assert_eq!(new.vpc_id.as_deref(), Some(w.vpc.as_str()));
        assert_eq!(new.security_group_ids, std::slice::from_ref(&w.sg));
        assert_eq!(new.key_name.as_deref(), Some("ops"));
        assert!(new.iam_instance_profile_arn.is_some());
        assert_eq!(new.tag("Role"), Some("vpn"));
        assert!(new.private_ip.as_deref().unwrap().starts_with("10.0.2."));
        assert_eq!(new.network_interface_ids.len(), 1);
        assert!(new.launch_time.is_some());
        assert_eq!(new.source_dest_check, Some(true));
        let again = w.cloud.instance(&new.id).await.unwrap().unwrap();
        assert_eq!(again.state, InstanceState::Running);

        // Optionally pending for longer: two more looks.
        w.cloud.set_launch_pending_looks(2);
        let slow = w.cloud.run_instance(&launch(&w, "t-2")).await.unwrap();
        let mut states = Vec::new();
        for _ in 0..3 {
            states.push(w.cloud.instance(&slow.id).await.unwrap().unwrap().state);
        }
        assert_eq!(
            states,
            [
                InstanceState::Pending,
                InstanceState::Pending,
                InstanceState::Running
            ]
        );
    }

    #[tokio::test]
    async fn a_client_token_returns_the_first_launch_or_refuses_other_parameters() {
        let w = small();
        let first = w.cloud.run_instance(&launch(&w, "alarm-1")).await.unwrap();
        let second = w.cloud.run_instance(&launch(&w, "alarm-1")).await.unwrap();
        assert_eq!(first.id, second.id);
        assert_eq!(
            w.cloud.all_instances().len(),
            2,
            "the old one and one launch"
        );

        // Same token, another subnet: AWS refuses, and launches nothing.
        let mut other = launch(&w, "alarm-1");
        other.subnet_id = w.subnet_a.clone();
        let e = w.cloud.run_instance(&other).await.unwrap_err();
        assert_eq!(e.code(), Some("IdempotentParameterMismatch"));
        assert_eq!(e.operation, "RunInstances");
        assert!(!e.retryable);
        assert_eq!(w.cloud.all_instances().len(), 2);

        // Tag order and group order are not parameters that differ.
        let mut reordered = launch(&w, "alarm-1");
        reordered.tags.reverse();
        assert_eq!(w.cloud.run_instance(&reordered).await.unwrap().id, first.id);

        // Another token is another launch.
        let third = w.cloud.run_instance(&launch(&w, "alarm-2")).await.unwrap();
        assert_ne!(third.id, first.id);

        let too_long = launch(&w, &"x".repeat(65));
        let e = w.cloud.run_instance(&too_long).await.unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterValue"));
    }

    #[tokio::test]
    async fn run_instances_checks_what_it_is_given() {
        let w = small();
        let bad = |f: &dyn Fn(&mut LaunchRequest)| {
            let mut r = launch(&w, "t");
            f(&mut r);
            r
        };
        let code = |r: LaunchRequest| {
            let cloud = w.cloud.clone();
            async move {
                cloud
                    .run_instance(&r)
                    .await
                    .unwrap_err()
                    .code()
                    .map(str::to_owned)
            }
        };
        assert_eq!(
            code(bad(&|r| r.image_id = "ami-0000000000000dead".into()))
                .await
                .as_deref(),
            Some("InvalidAMIID.NotFound")
        );
        assert_eq!(
            code(bad(&|r| r.subnet_id = "subnet-0nope".into()))
                .await
                .as_deref(),
            Some("InvalidSubnetID.NotFound")
        );
        assert_eq!(
            code(bad(&|r| r.key_name = Some("nobody".into())))
                .await
                .as_deref(),
            Some("InvalidKeyPair.NotFound")
        );
        assert_eq!(
            code(bad(&|r| r
                .tags
                .push(Tag::new("aws:cloudformation:stack-name", "x"))))
            .await
            .as_deref(),
            Some("InvalidParameterValue")
        );
        let other_vpc = w.cloud.add_vpc("other", cidr("10.9.0.0/16"));
        let foreign_sg = w.cloud.add_security_group(&other_vpc, "sophos");
        assert_eq!(
            code(bad(&|r| r.security_group_ids = vec![foreign_sg.clone()]))
                .await
                .as_deref(),
            Some("InvalidParameter")
        );
        assert_eq!(w.cloud.all_instances().len(), 1, "nothing was launched");
    }

    #[tokio::test]
    async fn instances_named_lists_by_name_without_terminated_and_may_lag() {
        let w = small();
        let gone = w.cloud.add_instance(
            InstanceSpec::new(&w.subnet_c, "sophos").state(InstanceState::Terminated),
        );
        w.cloud.add_instance(InstanceSpec::new(&w.subnet_c, "web"));
        let ids: Vec<String> = w
            .cloud
            .instances_named("sophos")
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, std::slice::from_ref(&w.old));
        // By id, a terminated instance is still described.
        assert_eq!(
            w.cloud.instance(&gone).await.unwrap().unwrap().state,
            InstanceState::Terminated
        );
        assert!(
            w.cloud
                .instance("i-0000000000000nope")
                .await
                .unwrap()
                .is_none()
        );

        w.cloud.set_listing_lag(1);
        let new = w.cloud.run_instance(&launch(&w, "t-1")).await.unwrap();
        let listed = |v: Vec<Instance>| v.iter().any(|i| i.id == new.id);
        assert!(!listed(w.cloud.instances_named("sophos").await.unwrap()));
        assert!(w.cloud.instance(&new.id).await.unwrap().is_some());
        assert!(listed(w.cloud.instances_named("sophos").await.unwrap()));
    }

    #[tokio::test]
    async fn stop_and_attribute_changes_follow_ec2() {
        let w = small();
        w.cloud.stop_instance(&w.old, false).await.unwrap();
        assert_eq!(
            w.cloud.peek_instance(&w.old).unwrap().state,
            InstanceState::Stopped
        );
        // Stopping a stopped instance is fine; an unknown one is not.
        w.cloud.stop_instance(&w.old, false).await.unwrap();
        let e = w
            .cloud
            .stop_instance("i-0000000000000nope", false)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
        let gone = w
            .cloud
            .add_instance(InstanceSpec::new(&w.subnet_c, "x").state(InstanceState::Terminated));
        let e = w.cloud.stop_instance(&gone, false).await.unwrap_err();
        assert_eq!(e.code(), Some("IncorrectInstanceState"));

        w.cloud.disable_source_dest_check(&w.old).await.unwrap();
        assert_eq!(
            w.cloud.peek_instance(&w.old).unwrap().source_dest_check,
            Some(false)
        );
        let e = w
            .cloud
            .disable_source_dest_check("i-0000000000000nope")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
    }

    #[tokio::test]
    async fn an_elastic_ip_moves_but_not_onto_a_pending_instance() {
        let w = small();
        let eip = w.cloud.add_address(Some(&w.old));
        let found = w.cloud.address(&eip.public_ip).await.unwrap().unwrap();
        assert_eq!(found.instance_id.as_deref(), Some(w.old.as_str()));
        assert!(found.network_interface_id.is_some());
        assert!(w.cloud.address("198.51.100.1").await.unwrap().is_none());

        let new = w.cloud.run_instance(&launch(&w, "t-1")).await.unwrap();
        let e = w
            .cloud
            .associate_address(&eip.allocation_id, &new.id)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("IncorrectInstanceState"));
        assert_eq!(w.cloud.address_owner(&eip.public_ip), Some(w.old.clone()));

        w.cloud.instance(&new.id).await.unwrap();
        w.cloud
            .associate_address(&eip.allocation_id, &new.id)
            .await
            .unwrap();
        assert_eq!(w.cloud.address_owner(&eip.public_ip), Some(new.id.clone()));
        assert_eq!(
            w.cloud.peek_instance(&new.id).unwrap().public_ip,
            Some(eip.public_ip.clone())
        );
        assert_eq!(w.cloud.peek_instance(&w.old).unwrap().public_ip, None);
        let e = w
            .cloud
            .associate_address("eipalloc-0nope", &new.id)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidAllocationID.NotFound"));
    }

    #[tokio::test]
    async fn routes_are_replaced_only_when_present_and_created_only_when_absent() {
        let w = small();
        let rtb = w.cloud.add_route_table(&w.vpc, "public");
        let igw = w.cloud.add_internet_gateway(&w.vpc);
        let vpn = cidr("10.242.2.0/24");
        w.cloud
            .add_route(&rtb, cidr("0.0.0.0/0"), RouteTarget::Other(igw.clone()));

        let e = w.cloud.replace_route(&rtb, &vpn, &w.old).await.unwrap_err();
        assert_eq!(e.code(), Some("InvalidRoute.NotFound"));
        w.cloud.create_route(&rtb, &vpn, &w.old).await.unwrap();
        let e = w.cloud.create_route(&rtb, &vpn, &w.old).await.unwrap_err();
        assert_eq!(e.code(), Some("RouteAlreadyExists"));
        assert_eq!(
            w.cloud.route_target(&rtb, &vpn),
            Some(RouteTarget::Instance(w.old.clone()))
        );

        let new = w.cloud.run_instance(&launch(&w, "t-1")).await.unwrap();
        w.cloud.replace_route(&rtb, &vpn, &new.id).await.unwrap();
        let tables = w.cloud.route_tables_named("public").await.unwrap();
        let route = tables[0].route_to(&vpn).unwrap();
        assert_eq!(route.target, RouteTarget::Instance(new.id.clone()));
        assert!(!route.blackhole);
        assert_eq!(
            tables[0].route_to(&cidr("0.0.0.0/0")).unwrap().target,
            RouteTarget::Other(igw)
        );
        assert!(
            tables[0].route_to(&cidr("10.0.0.0/16")).is_some(),
            "local route"
        );

        let e = w
            .cloud
            .replace_route("rtb-0nope", &vpn, &new.id)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidRouteTableID.NotFound"));
        let e = w
            .cloud
            .replace_route(&rtb, &vpn, "i-0nope")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
    }

    #[tokio::test]
    async fn a_route_to_a_terminated_instance_is_a_blackhole() {
        let w = small();
        let rtb = w.cloud.add_route_table(&w.vpc, "public");
        let gone = w.cloud.add_instance(
            InstanceSpec::new(&w.subnet_c, "sophos").state(InstanceState::Terminated),
        );
        let vpn = cidr("10.242.2.0/24");
        w.cloud.add_route(&rtb, vpn, RouteTarget::Instance(gone));
        let tables = w.cloud.route_tables_named("public").await.unwrap();
        assert!(tables[0].route_to(&vpn).unwrap().blackhole);
    }

    #[tokio::test]
    async fn ami_names_are_unique_and_snapshots_come_untagged() {
        let w = small();
        let request = ImageRequest {
            instance_id: w.old.clone(),
            name: "sophos-20261121T1800Z".into(),
            description: "test".into(),
            no_reboot: true,
            tags: vec![
                Tag::new("Name", "sophos"),
                Tag::new(TAG_CREATED_BY, CREATED_BY),
            ],
        };
        let ami = w.cloud.create_image(&request).await.unwrap();
        let e = w.cloud.create_image(&request).await.unwrap_err();
        assert_eq!(e.code(), Some("InvalidAMIName.Duplicate"));

        let tool = w.cloud.tool_images("sophos").await.unwrap();
        assert_eq!(tool.len(), 1);
        assert_eq!(tool[0].id, ami);
        assert_eq!(tool[0].state, "available");
        assert_eq!(tool[0].snapshot_ids.len(), 1);
        // The seeded AMI is tagged Name=sophos but not by the tool.
        let usable: Vec<String> = w
            .cloud
            .images_named("sophos")
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(usable.len(), 2);
        assert!(usable.contains(&w.image));
        assert!(w.cloud.tool_snapshots("sophos").await.unwrap().is_empty());

        let snaps = tool[0].snapshot_ids.clone();
        let tags = [
            Tag::new("Name", "sophos"),
            Tag::new(TAG_CREATED_BY, CREATED_BY),
            Tag::new(TAG_IMAGE, &ami),
        ];
        w.cloud.create_tags(&snaps, &tags).await.unwrap();
        let tagged = w.cloud.tool_snapshots("sophos").await.unwrap();
        assert_eq!(tagged.len(), 1);
        assert_eq!(tagged[0].tag(TAG_IMAGE), Some(ami.as_str()));

        let e = w
            .cloud
            .create_tags(&["snap-0nope".into()], &tags)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidSnapshot.NotFound"));
        let mut malformed = request.clone();
        malformed.name = "sophos:20261121".into();
        let e = w.cloud.create_image(&malformed).await.unwrap_err();
        assert_eq!(e.code(), Some("InvalidAMIName.Malformed"));
    }

    #[tokio::test]
    async fn a_pending_ami_lists_no_snapshots_and_is_not_usable_yet() {
        let w = small();
        w.cloud.set_image_pending_looks(2);
        let request = ImageRequest {
            instance_id: w.old.clone(),
            name: "sophos-1".into(),
            description: String::new(),
            no_reboot: true,
            tags: vec![
                Tag::new("Name", "sophos"),
                Tag::new(TAG_CREATED_BY, CREATED_BY),
            ],
        };
        let ami = w.cloud.create_image(&request).await.unwrap();
        let look = w.cloud.tool_images("sophos").await.unwrap();
        assert_eq!(
            (look[0].state.as_str(), look[0].snapshot_ids.len()),
            ("pending", 0)
        );
        assert!(
            !w.cloud
                .images_named("sophos")
                .await
                .unwrap()
                .iter()
                .any(|i| i.id == ami)
        );
        let look = w.cloud.tool_images("sophos").await.unwrap();
        assert_eq!(
            (look[0].state.as_str(), look[0].snapshot_ids.len()),
            ("available", 1)
        );
    }

    #[tokio::test]
    async fn deregister_and_delete_refuse_the_unknown_and_snapshots_in_use() {
        let w = small();
        let snap = w.cloud.all_images()[0].snapshot_ids[0].clone();
        let e = w.cloud.delete_snapshot(&snap).await.unwrap_err();
        assert_eq!(e.code(), Some("InvalidSnapshot.InUse"));
        w.cloud.deregister_image(&w.image).await.unwrap();
        let e = w.cloud.deregister_image(&w.image).await.unwrap_err();
        assert_eq!(e.code(), Some("InvalidAMIID.NotFound"));
        // Deregistering leaves the snapshot; now it can go.
        assert!(w.cloud.all_snapshots().iter().any(|s| s.id == snap));
        w.cloud.delete_snapshot(&snap).await.unwrap();
        let e = w.cloud.delete_snapshot(&snap).await.unwrap_err();
        assert_eq!(e.code(), Some("InvalidSnapshot.NotFound"));
    }

    fn rule(c: &str, port: i32, description: Option<&str>) -> IngressRule {
        IngressRule {
            protocol: "tcp".into(),
            from_port: Some(port),
            to_port: Some(port),
            cidr: cidr(c),
            description: description.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn ingress_rules_refuse_duplicates_and_missing_revokes_atomically() {
        let w = small();
        w.cloud
            .add_ingress(&w.sg, rule("15.177.0.0/18", 22, Some("by hand")));
        // A duplicate whatever its description, and then nothing is added.
        let e = w
            .cloud
            .authorize_ingress(
                &w.sg,
                22,
                &[cidr("54.228.16.0/26"), cidr("15.177.0.0/18")],
                "mine",
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidPermission.Duplicate"));
        assert_eq!(w.cloud.ingress_rules(&w.sg).len(), 1);
        w.cloud
            .authorize_ingress(&w.sg, 22, &[cidr("54.228.16.0/26")], "mine")
            .await
            .unwrap();
        assert_eq!(w.cloud.ingress_rules(&w.sg).len(), 2);

        // Revoke needs no description, but every rule must be there.
        let e = w
            .cloud
            .revoke_ingress(
                &w.sg,
                &[
                    rule("54.228.16.0/26", 22, None),
                    rule("54.228.16.0/26", 443, None),
                ],
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidPermission.NotFound"));
        assert_eq!(w.cloud.ingress_rules(&w.sg).len(), 2);
        w.cloud
            .revoke_ingress(&w.sg, &[rule("54.228.16.0/26", 22, None)])
            .await
            .unwrap();
        assert_eq!(
            w.cloud.ingress_rules(&w.sg),
            [rule("15.177.0.0/18", 22, Some("by hand"))]
        );

        let by_name = w
            .cloud
            .security_group_ingress("sophos", Some(&w.vpc))
            .await
            .unwrap();
        assert_eq!(by_name.len(), 1);
        assert!(
            w.cloud
                .security_group_ingress("sophos", Some("vpc-0other"))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            w.cloud
                .security_group_ingress("sg-0nope", None)
                .await
                .unwrap()
                .is_empty()
        );
        let e = w
            .cloud
            .authorize_ingress("sg-0nope", 22, &[cidr("54.228.16.0/26")], "mine")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidGroup.NotFound"));

        w.cloud.set_rule_limit(2);
        let e = w
            .cloud
            .authorize_ingress(&w.sg, 22, &[cidr("1.0.0.0/24"), cidr("2.0.0.0/24")], "x")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("RulesPerSecurityGroupLimitExceeded"));
    }

    #[tokio::test]
    async fn route53_reports_checkers_ports_ranges_and_upserts_records() {
        let cloud = MemoryCloud::new();
        cloud.add_health_check("hc-1", Some(443));
        assert!(
            cloud
                .health_check_status("hc-1")
                .await
                .unwrap()
                .mostly_healthy()
        );
        cloud.set_health("hc-1", 1, 3);
        let r = cloud.health_check_status("hc-1").await.unwrap();
        assert_eq!((r.healthy, r.total), (1, 3));
        assert!(!r.mostly_healthy());
        assert_eq!(cloud.health_check_port("hc-1").await.unwrap(), Some(443));
        let e = cloud.health_check_status("hc-2").await.unwrap_err();
        assert_eq!(e.code(), Some("NoSuchHealthCheck"));
        cloud.set_checker_ranges(&[cidr("15.177.0.0/18")]);
        assert_eq!(
            cloud.checker_ip_ranges().await.unwrap(),
            [cidr("15.177.0.0/18")]
        );

        let zone = cloud.add_hosted_zone("example.com");
        cloud
            .upsert_a_record(&zone, "vpn.example.com", 60, "10.0.1.5")
            .await
            .unwrap();
        cloud
            .upsert_a_record(
                &format!("/hostedzone/{zone}"),
                "vpn.example.com.",
                30,
                "10.0.2.9",
            )
            .await
            .unwrap();
        let records = cloud.a_records(&zone, "vpn.example.com.").await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].name, "vpn.example.com.");
        assert_eq!(
            (records[0].ttl, records[0].values.clone()),
            (Some(30), vec!["10.0.2.9".to_owned()])
        );

        cloud.add_record(
            &zone,
            RecordSet {
                name: "ssh.example.com".into(),
                ttl: Some(60),
                values: vec!["203.0.113.1".into()],
                set_identifier: Some("primary".into()),
                alias: false,
            },
        );
        let e = cloud
            .upsert_a_record(&zone, "ssh.example.com", 60, "10.0.2.9")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidChangeBatch"));
        let e = cloud
            .upsert_a_record(&zone, "vpn.example.org", 60, "10.0.2.9")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidChangeBatch"));
        let e = cloud
            .a_records("Z0NOPE", "vpn.example.com")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("NoSuchHostedZone"));
    }

    #[test]
    fn clones_share_one_world_and_worlds_built_alike_compare_equal() {
        let a = small();
        let b = small();
        assert_eq!(a.cloud.view(), b.cloud.view());
        assert_eq!(a.old, b.old, "ids are deterministic");
        let clone = a.cloud.clone();
        clone.add_key_pair("other");
        clone.tag(&[&a.old], &[("Owner", "netops")]);
        assert_eq!(
            a.cloud.view().instance(&a.old).unwrap().tag("Owner"),
            Some("netops")
        );
        assert_ne!(a.cloud.view(), b.cloud.view());
    }
}
