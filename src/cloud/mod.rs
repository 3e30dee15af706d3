//! The AWS calls the function needs (EC2, Route 53's health checks, checker
//! ranges and record sets, and CloudWatch's alarms), as one small trait.
//!
//! The pipeline only ever talks to [`Cloud`]; [`sdk::SdkCloud`] is its one production
//! implementation (the AWS SDK). Keeping the surface this small lets a wrapper
//! fail the Nth call, and keeps the SDK's large types out of the planning code,
//! which works on the plain records re-exported here (one file per idea).
//!
//! Every `describe_*` is filtered server-side by tag or id, so the cost of a
//! failover does not grow with the number of instances in the account.
//!
//! The trait's methods are written once, in `cloud_methods!`: the trait is
//! generated from that list, and so are the implementations that only route a
//! call (the SDK adapter to its service's function, the memory world to its
//! account, the fault wrapper through its gate). A hand-written trait would be
//! the list's signatures a second time, which every new call had to repeat.

/// The [`Cloud`] trait's methods, each written once, handed to the macro `$then`.
///
/// An entry is a method's doc, its signature (`&self`, the arguments, the `Ok`
/// type of its `Result<_, CloudError>`), and after `=>` the operation it calls
/// and the resource that call names (what the fault wrapper matches and logs).
/// `probe` and `alarms` have none: their argument names the operation.
macro_rules! cloud_methods {
    ($then:ident) => {
        $then! {
            /// VPCs tagged `Name=name`.
            fn vpcs_named(&self, name: &str) -> Vec<Vpc> => DescribeVpcs(name);

            /// Instances tagged `Name=name` that are not terminated.
            fn instances_named(&self, name: &str) -> Vec<Instance> => DescribeInstances(name);

            /// One instance by id; `None` when EC2 does not (yet) know it.
            fn instance(&self, id: &str) -> Option<Instance> => DescribeInstances(id);

            /// Subnets tagged `Name` = any of `names` (every leg's, in one call).
            fn subnets_named(&self, names: &[String]) -> Vec<Subnet>
                => DescribeSubnets(names.join(","));

            /// Route tables tagged `Name=name`.
            fn route_tables_named(&self, name: &str) -> Vec<RouteTable>
                => DescribeRouteTables(name);

            /// `available` images owned by this account and tagged `Name=name`.
            fn images_named(&self, name: &str) -> Vec<Image> => DescribeImages(name);

            /// `available` images published by `owners` (account ids or aliases such
            /// as `aws-marketplace`) whose AMI name starts with `name`: tags on
            /// another account's AMI are its owner's, so the name is what there is.
            fn images_published(&self, owners: &[String], name: &str) -> Vec<Image>
                => DescribeImages(owners.join(","));

            /// Images in any state owned by this account, tagged `Name=name` and
            /// created by this tool ([`TAG_CREATED_BY`]).
            fn tool_images(&self, name: &str) -> Vec<Image> => DescribeImages(name);

            /// Snapshots owned by this account, tagged `Name=name` and created by this tool.
            fn tool_snapshots(&self, name: &str) -> Vec<Snapshot> => DescribeSnapshots(name);

            /// Snapshots owned by this account, by id (an AMI's, to see their keys).
            fn snapshots_by_id(&self, ids: &[String]) -> Vec<Snapshot>
                => DescribeSnapshots(ids.join(","));

            /// `GetEbsEncryptionByDefault`: whether EC2 encrypts every new volume
            /// of this account in this region (a launch from an unencrypted AMI too).
            fn ebs_encryption_by_default(&self) -> bool => GetEbsEncryptionByDefault("");

            /// `GetEbsDefaultKmsKeyId`: the key those volumes get, as EC2 names it
            /// (a key ARN, or an alias; [`AWS_MANAGED_EBS_KEY`] when the account set none).
            fn ebs_default_kms_key(&self) -> String => GetEbsDefaultKmsKeyId("");

            /// CreateImage; returns the new image id.
            fn create_image(&self, request: &ImageRequest) -> String
                => CreateImage(format!("{} {}", request.instance_id, request.name));

            /// CreateTags on these resources (adds or overwrites these keys only).
            fn create_tags(&self, resource_ids: &[String], tags: &[Tag]) -> ()
                => CreateTags(format!("{} with {}", resource_ids.join(" "),
                    tags.iter().map(|t| t.key.as_str()).collect::<Vec<_>>().join(" ")));

            fn deregister_image(&self, image_id: &str) -> () => DeregisterImage(image_id);

            fn delete_snapshot(&self, snapshot_id: &str) -> () => DeleteSnapshot(snapshot_id);

            /// The Elastic IP with this public address, if the account has it.
            fn address(&self, public_ip: &str) -> Option<Address> => DescribeAddresses(public_ip);

            /// Security groups with this group name.
            fn security_groups_named(&self, name: &str) -> Vec<SecurityGroup>
                => DescribeSecurityGroups(name);

            /// StopInstances; `force` skips the guest's orderly shutdown (for an
            /// instance a plain stop did not bring down).
            fn stop_instance(&self, id: &str, force: bool) -> () => StopInstances(id);

            fn run_instance(&self, request: &LaunchRequest) -> Instance
                => RunInstances(format!("{} {}", request.subnet_id, request.instance_type));

            /// StartInstances of one stopped instance (a warm standby).
            fn start_instance(&self, id: &str) -> () => StartInstances(id);

            /// TerminateInstances of one instance (a standby that is superseded).
            fn terminate_instance(&self, id: &str) -> () => TerminateInstances(id);

            /// `DescribeInstanceAttribute` `userData`: base64, as EC2 keeps it; `None`
            /// when the instance has none. An instance EC2 no longer knows is the
            /// error `InvalidInstanceID.NotFound`.
            fn user_data(&self, instance_id: &str) -> Option<String>
                => DescribeInstanceAttribute(instance_id);

            /// `DescribeInstanceCreditSpecifications` of one burstable instance:
            /// `standard` or `unlimited`.
            fn cpu_credits(&self, instance_id: &str) -> Option<String>
                => DescribeInstanceCreditSpecifications(instance_id);

            fn disable_source_dest_check(&self, instance_id: &str) -> ()
                => ModifyInstanceAttribute(instance_id);

            /// `ModifyNetworkInterfaceAttribute` SourceDestCheck=false on one
            /// interface: the instance attribute covers only the primary one.
            fn disable_interface_source_dest_check(&self, interface_id: &str) -> ()
                => ModifyNetworkInterfaceAttribute(interface_id);

            /// Associates the address with `target`, taking it from wherever it
            /// is: an instance (`i-...`) with one network interface, or an
            /// interface (`eni-...`), which EC2 requires for an instance with several.
            fn associate_address(&self, allocation_id: &str, target: &str) -> ()
                => AssociateAddress(format!("{allocation_id} {target}"));

            /// Points the route at `target_id`: an instance, or a network interface
            /// (`eni-...`) for a leg other than the primary.
            fn replace_route(&self, route_table_id: &str, destination: &Cidr, target_id: &str) -> ()
                => ReplaceRoute(format!("{route_table_id} {destination}"));

            fn create_route(&self, route_table_id: &str, destination: &Cidr, target_id: &str) -> ()
                => CreateRoute(format!("{route_table_id} {destination}"));

            /// Route 53 `GetHealthCheckStatus`: what each checker sees right now.
            fn health_check_status(&self, health_check_id: &str) -> CheckerReport
                => GetHealthCheckStatus(health_check_id);

            /// The call with `DryRun=true`: allowed or denied, changing nothing. Any
            /// other answer (a bad parameter, a missing resource) is an error.
            fn probe(&self, probe: Probe<'_>) -> Permission;

            /// CloudWatch alarms (in `ALARM_REGION`, where Route 53's metrics live).
            fn alarms(&self, query: AlarmQuery<'_>) -> Vec<Alarm>;

            /// Route 53 `GetHealthCheck`: the port the checkers connect to (`None` for
            /// health checks without one, e.g. calculated or alarm-based).
            fn health_check_port(&self, health_check_id: &str) -> Option<u16>
                => GetHealthCheck(health_check_id);

            /// Route 53 `GetCheckerIpRanges`: every range the health checkers use, IPv4 and IPv6.
            fn checker_ip_ranges(&self) -> Vec<Cidr> => GetCheckerIpRanges("");

            /// `DescribeSecurityGroups` of one group by id (`sg-...`), or by name within `vpc_id`.
            fn security_group_ingress(&self, id_or_name: &str, vpc_id: Option<&str>)
                -> Vec<GroupIngress> => DescribeSecurityGroups(id_or_name);

            /// `AuthorizeSecurityGroupIngress`: TCP `port` from each range, every rule
            /// carrying `description`; one call for all ranges.
            fn authorize_ingress(&self, group_id: &str, port: u16, ranges: &[Cidr], description: &str)
                -> () => AuthorizeSecurityGroupIngress(group_id);

            /// `RevokeSecurityGroupIngress` of exactly these rules (protocol, ports and
            /// range must match; AWS does not need the description to match).
            fn revoke_ingress(&self, group_id: &str, rules: &[IngressRule]) -> ()
                => RevokeSecurityGroupIngress(group_id);

            /// `ListResourceRecordSets` from `name`/`A`: the A record set(s) of that name
            /// (several only for weighted, failover... records).
            fn a_records(&self, zone_id: &str, name: &str) -> Vec<RecordSet>
                => ListResourceRecordSets(format!("{zone_id} {name}"));

            /// `ChangeResourceRecordSets` UPSERT of a simple A record: creates it, or
            /// replaces its value and TTL.
            fn upsert_a_record(&self, zone_id: &str, name: &str, ttl: i64, address: &str) -> ()
                => ChangeResourceRecordSets(format!("{zone_id} {name}"));
        }
    };
}

mod alarms;
pub mod cidr;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod faults;
mod images;
mod instances;
pub mod lease;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
mod network;
pub mod notices;
pub mod operation;
pub mod pause;
mod probe;
pub mod provenance;
mod route53;
pub mod sdk;
mod tags;
pub mod usage;

use std::future::Future;

pub use cidr::Cidr;
pub use error::{CloudError, ErrorKind};
pub use operation::{Operation, Service};

pub use alarms::{Alarm, AlarmQuery};
pub use images::{AWS_MANAGED_EBS_KEY, Image, ImageRequest, Snapshot, is_aws_managed_ebs_key};
pub use instances::{
    Instance, InstanceState, Interface, LaunchInterface, LaunchRequest, MetadataOptions,
    current_stop_request, is_burstable, stop_requested_at,
};
pub use network::{
    Address, GroupIngress, IngressRule, Route, RouteTable, RouteTarget, SecurityGroup, Subnet, Vpc,
    route_target_of,
};
pub use probe::{Permission, Probe};
pub use route53::{CheckerReport, RecordSet};
pub use tags::{
    CREATED_BY, TAG_CREATED_BY, TAG_GROUP, TAG_HANDED_OVER, TAG_IMAGE, TAG_INCIDENT, TAG_MOVED_AT,
    TAG_PROMOTED_AT, TAG_REPLACES, TAG_SOURCE_INSTANCE, TAG_STANDBY, TAG_STANDBY_FOR, Tag,
    tag_value,
};

/// The trait from the list: one async method per entry, and [`Cloud::usage`].
macro_rules! cloud_trait {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty
        $(=> $op:ident($target:expr))?;)*) => {
        /// The EC2, Route 53 and CloudWatch operations of a failover and of the
        /// AMI lifecycle. Each method is one API call, so a wrapper counting calls
        /// counts AWS round trips.
        pub trait Cloud: Send + Sync {
            $($(#[$doc])*
            fn $name(&self $(, $arg: $ty)*)
                -> impl Future<Output = Result<$ret, CloudError>> + Send;)*

            /// AWS calls, retries and bytes so far, where the implementation counts them.
            fn usage(&self) -> Option<usage::UsageSnapshot> {
                None
            }
        }
    };
}

cloud_methods!(cloud_trait);
