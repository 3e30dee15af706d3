//! The AWS calls the function needs (EC2, Route 53's health checks, checker
//! ranges and record sets, and CloudWatch's alarms), as one small trait.
//!
//! The pipeline only ever talks to [`Cloud`]; [`sdk::SdkCloud`] is its one production
//! implementation (the AWS SDK). Keeping the surface this small lets a wrapper
//! fail the Nth call, and keeps the SDK's large types out of the planning code,
//! which works on the plain records below.
//!
//! Every `describe_*` is filtered server-side by tag or id, so the cost of a
//! failover does not grow with the number of instances in the account.

pub mod cidr;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod faults;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod sdk;
pub mod usage;

use std::future::Future;

use chrono::{DateTime, Utc};

pub use cidr::Cidr;
pub use error::CloudError;

/// Tag recording which incident launched a replacement (and so resumes it).
pub const TAG_INCIDENT: &str = "ec2-failover:incident";
/// Tag recording the instance a replacement took over from.
pub const TAG_REPLACES: &str = "ec2-failover:replaces";
/// Tag marking AMIs (and their snapshots) this tool created: only these are
/// ever pruned.
pub const TAG_CREATED_BY: &str = "ec2-failover:created-by";
/// The value of [`TAG_CREATED_BY`].
pub const CREATED_BY: &str = "ec2-failover";
/// Tag recording the instance an AMI was taken from.
pub const TAG_SOURCE_INSTANCE: &str = "ec2-failover:source-instance";
/// Tag on a snapshot naming the AMI it belongs to, so a snapshot left behind
/// by a crash between DeregisterImage and DeleteSnapshot can be recognised.
pub const TAG_IMAGE: &str = "ec2-failover:image";
/// The operator's tag on every resource of a failover group (instance, AMIs,
/// candidate subnets, route tables), value the group's name: the IAM policy of
/// a `FAILOVER_GROUPS` deployment allows its calls only on resources carrying
/// it. Unlike the bookkeeping tags above, replacements and AMIs inherit it.
pub const TAG_GROUP: &str = "ec2-failover:group";
/// The role tag of a standby (`STANDBY=warm|hot`), value its mode: an instance
/// tagged `Name=INSTANCE_NAME` with it, and not promoted ([`TAG_REPLACES`]),
/// is kept ready and is never "the one running appliance". A promoted standby
/// keeps it, as history.
pub const TAG_STANDBY: &str = "ec2-failover:standby";
/// When a standby was promoted to replacement (RFC 3339): its age as a
/// replacement counts from then.
pub const TAG_PROMOTED_AT: &str = "ec2-failover:promoted-at";
/// The appliance instance a standby was launched to back up.
pub const TAG_STANDBY_FOR: &str = "ec2-failover:standby-for";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Value of tag `key` in `tags`.
pub fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
    Unknown,
}

impl InstanceState {
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Unknown => "unknown",
        }
    }

    /// Up, or on its way up.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }

    /// Terminated, or on its way there: it will never run again.
    pub fn is_gone(self) -> bool {
        matches!(self, Self::ShuttingDown | Self::Terminated)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    pub availability_zone: String,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub instance_type: String,
    pub image_id: Option<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub security_group_ids: Vec<String>,
    pub network_interface_ids: Vec<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub source_dest_check: Option<bool>,
    /// When the instance last started: EC2 resets it on every start.
    pub launch_time: Option<DateTime<Utc>>,
    /// When the instance was first launched (its primary network interface's
    /// attach time), which a stop and start does not reset.
    pub first_launch: Option<DateTime<Utc>>,
    /// Why EC2 stopped or terminated it (`StateReason`), e.g.
    /// `Server.InternalError: Internal error on launch`.
    pub state_reason: Option<String>,
    pub tags: Vec<Tag>,
    /// How the instance metadata service answers it (IMDSv2, hop limit).
    pub metadata_options: Option<MetadataOptions>,
    pub ebs_optimized: Option<bool>,
    /// Network interfaces beyond the primary (device index 1, 2...), in
    /// device order: the LAN leg of a two-legged VPN gateway or firewall.
    pub secondary_interfaces: Vec<Interface>,
}

/// A network interface attached to an instance at a device index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub id: String,
    pub device_index: i32,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    pub source_dest_check: Option<bool>,
}

/// A network interface RunInstances creates beside the primary one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchInterface {
    pub device_index: i32,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
}

/// What a route target id names: EC2 ids say their kind (`eni-`, `i-`).
pub fn route_target_of(id: &str) -> RouteTarget {
    if id.starts_with("eni-") {
        RouteTarget::NetworkInterface(id.to_owned())
    } else {
        RouteTarget::Instance(id.to_owned())
    }
}

/// The instance metadata service options, as DescribeInstances reports them
/// and RunInstances takes them. Kept as EC2's words (`required`, `enabled`)
/// so a value this code does not know still passes through unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataOptions {
    /// `required` (IMDSv2 only) or `optional`.
    pub http_tokens: Option<String>,
    pub http_put_response_hop_limit: Option<i32>,
    /// `enabled` or `disabled`.
    pub http_endpoint: Option<String>,
    /// Tags readable through the metadata service: `enabled` or `disabled`.
    pub instance_metadata_tags: Option<String>,
}

/// Burstable types take a `CreditSpecification`; any other type is refused
/// one, so a fallback type never gets it.
pub fn is_burstable(instance_type: &str) -> bool {
    ["t2.", "t3.", "t3a.", "t4g."]
        .iter()
        .any(|family| instance_type.starts_with(family))
}

impl Instance {
    pub fn tag(&self, key: &str) -> Option<&str> {
        tag_value(&self.tags, key)
    }

    /// A standby kept ready in another AZ, not (yet) promoted to appliance.
    pub fn is_standby(&self) -> bool {
        self.tag(TAG_STANDBY).is_some() && self.tag(TAG_REPLACES).is_none()
    }

    /// How long ago it was first launched (a restart does not make it
    /// young), or, for a promoted standby, promoted: it became a replacement
    /// then, for the cooldown and the flap guard.
    pub fn age(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        let promoted = self
            .tag(TAG_PROMOTED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let launched = promoted.or(self.first_launch).or(self.launch_time)?;
        Some((now - launched).to_std().unwrap_or_default())
    }

    /// True when a route target (instance id or ENI id) names this instance.
    pub fn owns_target(&self, target: &str) -> bool {
        self.id == target || self.network_interface_ids.iter().any(|e| e == target)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub tags: Vec<Tag>,
}

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub allocation_id: String,
    pub public_ip: String,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub vpc_id: Option<String>,
}

/// Where a route sends its traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    Instance(String),
    NetworkInterface(String),
    /// Gateways, peering, NAT and the like: never ours to move.
    Other(String),
    None,
}

impl RouteTarget {
    /// The instance or interface id, the only targets an appliance can be.
    pub fn appliance_id(&self) -> Option<&str> {
        match self {
            RouteTarget::Instance(x) | RouteTarget::NetworkInterface(x) => Some(x),
            RouteTarget::Other(_) | RouteTarget::None => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Canonical text of the destination (as [`Cidr`] prints it).
    pub destination: String,
    pub target: RouteTarget,
    pub blackhole: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
    pub tags: Vec<Tag>,
}

impl RouteTable {
    pub fn route_to(&self, destination: &Cidr) -> Option<&Route> {
        let wanted = destination.to_string();
        self.routes.iter().find(|r| r.destination == wanted)
    }
}

/// What Route 53's checkers currently say about a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerReport {
    pub healthy: usize,
    pub total: usize,
    /// One failing checker's words, for the report.
    pub sample_failure: Option<String>,
}

impl CheckerReport {
    /// Route 53 status lines start with `Success` or `Failure`.
    pub fn from_statuses(statuses: &[&str]) -> Self {
        Self {
            healthy: statuses.iter().filter(|s| s.starts_with("Success")).count(),
            total: statuses.len(),
            sample_failure: statuses
                .iter()
                .find(|s| !s.starts_with("Success"))
                .map(|s| (*s).to_owned()),
        }
    }

    /// More than half of the checkers that answered see the endpoint healthy.
    pub fn mostly_healthy(&self) -> bool {
        self.total > 0 && self.healthy * 2 > self.total
    }
}

/// One CIDR-sourced ingress rule of a security group (rules from other groups
/// or prefix lists are never ours, so they are not listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, `-1` (all), as EC2 reports it.
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidr: Cidr,
    pub description: Option<String>,
}

/// A security group with its CIDR ingress rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupIngress {
    pub id: String,
    pub name: String,
    pub vpc_id: Option<String>,
    pub rules: Vec<IngressRule>,
}

/// The one record set of a name and type, as Route 53 lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    pub name: String,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    /// Set on weighted, failover, latency... records; a simple record has none.
    pub set_identifier: Option<String>,
    /// An alias record points at an AWS resource, not at addresses.
    pub alias: bool,
}

/// A mutating call asked with `DryRun=true`: would EC2 (IAM, SCPs, the
/// request's own validity) allow it? Nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe<'a> {
    Stop(&'a str),
    Launch(&'a LaunchRequest),
    DisableSourceDestCheck(&'a str),
    AssociateAddress {
        allocation_id: &'a str,
        instance_id: &'a str,
    },
    /// `target_id`: the instance, or the interface a route of another leg
    /// (or of a multi-legged instance) must name.
    ReplaceRoute {
        table: &'a str,
        destination: &'a Cidr,
        target_id: &'a str,
    },
    CreateRoute {
        table: &'a str,
        destination: &'a Cidr,
        target_id: &'a str,
    },
    CreateImage(&'a ImageRequest),
}

impl Probe<'_> {
    /// The API operation, as IAM and the report name it.
    pub fn operation(&self) -> &'static str {
        match self {
            Probe::Stop(_) => "StopInstances",
            Probe::Launch(_) => "RunInstances",
            Probe::DisableSourceDestCheck(_) => "ModifyInstanceAttribute",
            Probe::AssociateAddress { .. } => "AssociateAddress",
            Probe::ReplaceRoute { .. } => "ReplaceRoute",
            Probe::CreateRoute { .. } => "CreateRoute",
            Probe::CreateImage(_) => "CreateImage",
        }
    }

    /// The resource the call acts on.
    pub fn target(&self) -> String {
        match self {
            Probe::Stop(id) | Probe::DisableSourceDestCheck(id) => (*id).to_owned(),
            Probe::Launch(r) => format!("{} {}", r.subnet_id, r.instance_type),
            Probe::AssociateAddress { allocation_id, .. } => (*allocation_id).to_owned(),
            Probe::ReplaceRoute {
                table, destination, ..
            }
            | Probe::CreateRoute {
                table, destination, ..
            } => format!("{table} {destination}"),
            Probe::CreateImage(r) => r.instance_id.clone(),
        }
    }
}

/// EC2's answer to a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// `DryRunOperation`: the call would have succeeded.
    Allowed,
    /// `UnauthorizedOperation`, with EC2's message (an encoded reason, when
    /// IAM gives one).
    Denied(String),
}

/// Which CloudWatch alarms to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmQuery<'a> {
    /// `DescribeAlarms` of one alarm by name.
    Named(&'a str),
    /// `DescribeAlarmsForMetric`: the alarms on Route 53's `HealthCheckStatus`
    /// metric of this health check.
    ForHealthCheck(&'a str),
}

/// A CloudWatch metric alarm as `DescribeAlarms` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub name: String,
    pub arn: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: Option<String>,
    /// When the state last changed (`StateTransitionedTimestamp`).
    pub transitioned_at: Option<DateTime<Utc>>,
    /// When the state or its reason was last updated (`StateUpdatedTimestamp`).
    pub updated_at: Option<DateTime<Utc>>,
    /// The `HealthCheckId` dimension, when the alarm watches a Route 53 check.
    pub health_check_id: Option<String>,
    /// What the alarm notifies on ALARM (`AlarmActions`): SNS topics, Lambda
    /// functions... preflight checks that one of them reaches this function.
    pub actions: Vec<String>,
}

/// Everything RunInstances is told about the replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub tags: Vec<Tag>,
    /// Makes a repeated RunInstances return the first launch instead of a second one.
    pub client_token: String,
    /// The original's metadata options: an SCP may deny a launch without IMDSv2.
    pub metadata_options: Option<MetadataOptions>,
    /// `Some(true)` only: false is EC2's default, and saying it changes nothing.
    pub ebs_optimized: Option<bool>,
    /// Base64, passed through as DescribeInstanceAttribute gave it.
    pub user_data: Option<String>,
    /// `standard` or `unlimited`, for a burstable type only.
    pub cpu_credits: Option<String>,
    /// The original's other legs, each in the chosen AZ's subnet for it.
    pub secondary_interfaces: Vec<LaunchInterface>,
}

/// The EC2 operations of a failover and of the AMI lifecycle. Each method is
/// one API call, so a wrapper counting calls counts AWS round trips.
pub trait Cloud: Send + Sync {
    /// VPCs tagged `Name=name`.
    fn vpcs_named(&self, name: &str) -> impl Future<Output = Result<Vec<Vpc>, CloudError>> + Send;

    /// Instances tagged `Name=name` that are not terminated.
    fn instances_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<Instance>, CloudError>> + Send;

    /// One instance by id; `None` when EC2 does not (yet) know it.
    fn instance(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Instance>, CloudError>> + Send;

    /// Subnets tagged `Name` = any of `names` (every leg's, in one call).
    fn subnets_named(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<Subnet>, CloudError>> + Send;

    /// Route tables tagged `Name=name`.
    fn route_tables_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<RouteTable>, CloudError>> + Send;

    /// `available` images owned by this account and tagged `Name=name`.
    fn images_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<Image>, CloudError>> + Send;

    /// Images in any state owned by this account, tagged `Name=name` and
    /// created by this tool ([`TAG_CREATED_BY`]).
    fn tool_images(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<Image>, CloudError>> + Send;

    /// Snapshots owned by this account, tagged `Name=name` and created by this tool.
    fn tool_snapshots(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<Snapshot>, CloudError>> + Send;

    /// Snapshots owned by this account, by id (an AMI's, to see their keys).
    fn snapshots_by_id(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<Snapshot>, CloudError>> + Send;

    /// CreateImage; returns the new image id.
    fn create_image(
        &self,
        request: &ImageRequest,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;

    /// CreateTags on these resources (adds or overwrites these keys only).
    fn create_tags(
        &self,
        resource_ids: &[String],
        tags: &[Tag],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    fn deregister_image(
        &self,
        image_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    fn delete_snapshot(
        &self,
        snapshot_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// The Elastic IP with this public address, if the account has it.
    fn address(
        &self,
        public_ip: &str,
    ) -> impl Future<Output = Result<Option<Address>, CloudError>> + Send;

    /// Security groups with this group name.
    fn security_groups_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<SecurityGroup>, CloudError>> + Send;

    /// StopInstances; `force` skips the guest's orderly shutdown (for an
    /// instance a plain stop did not bring down).
    fn stop_instance(
        &self,
        id: &str,
        force: bool,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    fn run_instance(
        &self,
        request: &LaunchRequest,
    ) -> impl Future<Output = Result<Instance, CloudError>> + Send;

    /// StartInstances of one stopped instance (a warm standby).
    fn start_instance(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// TerminateInstances of one instance (a standby that is superseded).
    fn terminate_instance(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// `DescribeInstanceAttribute` `userData`: base64, as EC2 keeps it; `None`
    /// when the instance has none. An instance EC2 no longer knows is the
    /// error `InvalidInstanceID.NotFound`.
    fn user_data(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = Result<Option<String>, CloudError>> + Send;

    /// `DescribeInstanceCreditSpecifications` of one burstable instance:
    /// `standard` or `unlimited`.
    fn cpu_credits(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = Result<Option<String>, CloudError>> + Send;

    fn disable_source_dest_check(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// `ModifyNetworkInterfaceAttribute` SourceDestCheck=false on one
    /// interface: the instance attribute covers only the primary one.
    fn disable_interface_source_dest_check(
        &self,
        interface_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// Associates the address with the instance, taking it from wherever it is.
    fn associate_address(
        &self,
        allocation_id: &str,
        instance_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// Points the route at `target_id`: an instance, or a network interface
    /// (`eni-...`) for a leg other than the primary.
    fn replace_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        target_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    fn create_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        target_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// Route 53 `GetHealthCheckStatus`: what each checker sees right now.
    fn health_check_status(
        &self,
        health_check_id: &str,
    ) -> impl Future<Output = Result<CheckerReport, CloudError>> + Send;

    /// The call with `DryRun=true`: allowed or denied, changing nothing. Any
    /// other answer (a bad parameter, a missing resource) is an error.
    fn probe(
        &self,
        probe: Probe<'_>,
    ) -> impl Future<Output = Result<Permission, CloudError>> + Send;

    /// CloudWatch alarms (in `ALARM_REGION`, where Route 53's metrics live).
    fn alarms(
        &self,
        query: AlarmQuery<'_>,
    ) -> impl Future<Output = Result<Vec<Alarm>, CloudError>> + Send;

    /// AWS calls, retries and bytes so far, where the implementation counts them.
    fn usage(&self) -> Option<usage::UsageSnapshot> {
        None
    }
    /// Route 53 `GetHealthCheck`: the port the checkers connect to (`None` for
    /// health checks without one, e.g. calculated or alarm-based).
    fn health_check_port(
        &self,
        health_check_id: &str,
    ) -> impl Future<Output = Result<Option<u16>, CloudError>> + Send;

    /// Route 53 `GetCheckerIpRanges`: every range the health checkers use, IPv4 and IPv6.
    fn checker_ip_ranges(&self) -> impl Future<Output = Result<Vec<Cidr>, CloudError>> + Send;

    /// `DescribeSecurityGroups` of one group by id (`sg-...`), or by name within `vpc_id`.
    fn security_group_ingress(
        &self,
        id_or_name: &str,
        vpc_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<GroupIngress>, CloudError>> + Send;

    /// `AuthorizeSecurityGroupIngress`: TCP `port` from each range, every rule
    /// carrying `description`; one call for all ranges.
    fn authorize_ingress(
        &self,
        group_id: &str,
        port: u16,
        ranges: &[Cidr],
        description: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// `RevokeSecurityGroupIngress` of exactly these rules (protocol, ports and
    /// range must match; AWS does not need the description to match).
    fn revoke_ingress(
        &self,
        group_id: &str,
        rules: &[IngressRule],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// `ListResourceRecordSets` from `name`/`A`: the A record set(s) of that name
    /// (several only for weighted, failover... records).
    fn a_records(
        &self,
        zone_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<Vec<RecordSet>, CloudError>> + Send;

    /// `ChangeResourceRecordSets` UPSERT of a simple A record: creates it, or
    /// replaces its value and TTL.
    fn upsert_a_record(
        &self,
        zone_id: &str,
        name: &str,
        ttl: i64,
        address: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}
