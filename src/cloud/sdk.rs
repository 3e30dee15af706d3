//! [`Cloud`] on the AWS SDK: the production adapter, and the one the integration
//! tests run against the emulator (and, for what moto lacks, a stand-in).

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, CreditSpecificationRequest, Filter, HttpTokensState,
    IamInstanceProfileSpecification, InstanceAttributeName, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceMetadataOptionsResponse, InstanceMetadataTagsState,
    InstanceNetworkInterfaceSpecification, InstanceType, IpPermission, IpRange, Ipv6Range,
    ResourceType, TagSpecification,
};
use aws_sdk_route53::types::{
    ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use chrono::{DateTime, Utc};

use super::Cidr;
use super::usage::{ApiUsage, UsageSnapshot};
use aws_sdk_ec2::operation as ec2op;

use super::{
    Address, Alarm, AlarmQuery, CREATED_BY, CheckerReport, Cloud, CloudError, GroupIngress, Image,
    ImageRequest, IngressRule, Instance, InstanceState, Interface, LaunchRequest, MetadataOptions,
    Permission, Probe, RecordSet, Route, RouteTable, RouteTarget, SecurityGroup, Snapshot, Subnet,
    TAG_CREATED_BY, Tag, Vpc, route_target_of,
};

/// A ReplaceRoute or CreateRoute builder given its target (an instance, or
/// an interface by its `eni-` id) and destination (IPv4 or IPv6): the two are
/// different SDK types with the same setters and no common trait.
macro_rules! route_call {
    ($call:expr, $destination:expr, $target_id:expr) => {{
        let call = $call;
        let call = match route_target_of($target_id) {
            RouteTarget::NetworkInterface(eni) => call.network_interface_id(eni),
            _ => call.instance_id($target_id),
        };
        match $destination {
            Cidr::V4 { .. } => call.destination_cidr_block($destination.to_string()),
            Cidr::V6 { .. } => call.destination_ipv6_cidr_block($destination.to_string()),
        }
    }};
}

/// EC2, Route 53 and CloudWatch through the AWS SDK. Cheap to clone; build
/// once per region and reuse across invocations.
#[derive(Clone, Debug)]
pub struct SdkCloud {
    client: Client,
    route53: aws_sdk_route53::Client,
    /// In `ALARM_REGION`; without it, looking at alarms is an error.
    cloudwatch: Option<aws_sdk_cloudwatch::Client>,
    usage: Option<ApiUsage>,
}

/// Attempts per call: the SDK's adaptive retry backs off (and slows the
/// client down) through a throttling burst of several seconds.
const MAX_ATTEMPTS: u32 = 8;

/// The longest wait before one retry. The SDK's default (20 s) also caps the
/// adaptive rate limiter's delay, which on a client that has just met its
/// first throttle is that whole 20 s: two throttled retries would pass the
/// operation timeout. 2 s keeps 8 attempts inside it.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How the function's clients retry: adaptively, with enough attempts to ride
/// out a burst of `RequestLimitExceeded`.
pub fn retry_config() -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_max_backoff(MAX_BACKOFF)
}

/// How long a call may take: an API that does not answer in an impaired AZ
/// must not hold the failover until Lambda's own timeout.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build()
}

/// The SDK configuration loader of the function: the environment's region and
/// credentials, with [`retry_config`] and [`timeout_config`].
pub fn production_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
}

impl SdkCloud {
    pub fn new(ec2: Client, route53: aws_sdk_route53::Client) -> Self {
        Self {
            client: ec2,
            route53,
            cloudwatch: None,
            usage: None,
        }
    }

    /// The same clients, and this CloudWatch client for the alarms.
    pub fn with_alarms(self, cloudwatch: aws_sdk_cloudwatch::Client) -> Self {
        Self {
            cloudwatch: Some(cloudwatch),
            ..self
        }
    }

    /// Clients for every service from one SDK configuration (CloudWatch in
    /// `alarm_region`), counting their calls, retries and bytes (for the
    /// metrics line).
    pub fn from_conf(conf: &aws_config::SdkConfig, alarm_region: &str) -> Self {
        let alarms = conf
            .to_builder()
            .region(aws_config::Region::new(alarm_region.to_owned()))
            .build();
        Self::counting(conf.into(), conf.into(), (&alarms).into())
    }

    /// Clients from per-service configurations, with an [`ApiUsage`] interceptor
    /// added to each.
    pub fn counting(
        ec2: aws_sdk_ec2::Config,
        route53: aws_sdk_route53::Config,
        cloudwatch: aws_sdk_cloudwatch::Config,
    ) -> Self {
        let usage = ApiUsage::default();
        Self {
            client: Client::from_conf(ec2.to_builder().interceptor(usage.clone()).build()),
            route53: aws_sdk_route53::Client::from_conf(
                route53.to_builder().interceptor(usage.clone()).build(),
            ),
            cloudwatch: Some(aws_sdk_cloudwatch::Client::from_conf(
                cloudwatch.to_builder().interceptor(usage.clone()).build(),
            )),
            usage: Some(usage),
        }
    }
}

/// The mutating calls, built once for the real call and for its dry run.
impl SdkCloud {
    fn stop_call(
        &self,
        id: &str,
        force: bool,
    ) -> ec2op::stop_instances::builders::StopInstancesFluentBuilder {
        self.client.stop_instances().instance_ids(id).force(force)
    }

    fn run_call(
        &self,
        request: &LaunchRequest,
    ) -> ec2op::run_instances::builders::RunInstancesFluentBuilder {
        let spec = |kind: ResourceType| {
            TagSpecification::builder()
                .resource_type(kind)
                .set_tags(Some(sdk_tags(&request.tags)))
                .build()
        };
        let call = self
            .client
            .run_instances()
            .image_id(&request.image_id)
            .instance_type(InstanceType::from(request.instance_type.as_str()))
            .min_count(1)
            .max_count(1);
        // More than one leg: every interface is specified (EC2 refuses a
        // top-level subnet or groups beside NetworkInterfaces), and each is
        // tagged like the instance, which the policy's conditions read.
        let call = if request.secondary_interfaces.is_empty() {
            call.subnet_id(&request.subnet_id)
                .set_security_group_ids(Some(request.security_group_ids.clone()))
        } else {
            interfaces_of(request)
                .into_iter()
                .fold(call, |c, i| c.network_interfaces(i))
                .tag_specifications(spec(ResourceType::NetworkInterface))
        };
        call.set_key_name(request.key_name.clone())
            .set_iam_instance_profile(
                request
                    .iam_instance_profile_arn
                    .as_ref()
                    .map(|arn| IamInstanceProfileSpecification::builder().arn(arn).build()),
            )
            .client_token(&request.client_token)
            .tag_specifications(spec(ResourceType::Instance))
            .tag_specifications(spec(ResourceType::Volume))
            .set_metadata_options(request.metadata_options.as_ref().map(metadata_request))
            .set_ebs_optimized(request.ebs_optimized)
            .set_user_data(request.user_data.clone())
            .set_credit_specification(
                request
                    .cpu_credits
                    .as_ref()
                    .map(|c| CreditSpecificationRequest::builder().cpu_credits(c).build()),
            )
    }

    fn interface_source_dest_check_call(
        &self,
        interface_id: &str,
    ) -> ec2op::modify_network_interface_attribute::builders::ModifyNetworkInterfaceAttributeFluentBuilder
    {
        self.client
            .modify_network_interface_attribute()
            .network_interface_id(interface_id)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build())
    }

    fn source_dest_check_call(
        &self,
        instance_id: &str,
    ) -> ec2op::modify_instance_attribute::builders::ModifyInstanceAttributeFluentBuilder {
        self.client
            .modify_instance_attribute()
            .instance_id(instance_id)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build())
    }

    fn associate_call(
        &self,
        allocation_id: &str,
        instance_id: &str,
    ) -> ec2op::associate_address::builders::AssociateAddressFluentBuilder {
        self.client
            .associate_address()
            .allocation_id(allocation_id)
            .instance_id(instance_id)
            .allow_reassociation(true)
    }

    fn replace_route_call(
        &self,
        table: &str,
        destination: &Cidr,
        target_id: &str,
    ) -> ec2op::replace_route::builders::ReplaceRouteFluentBuilder {
        route_call!(
            self.client.replace_route().route_table_id(table),
            destination,
            target_id
        )
    }

    fn create_route_call(
        &self,
        table: &str,
        destination: &Cidr,
        target_id: &str,
    ) -> ec2op::create_route::builders::CreateRouteFluentBuilder {
        route_call!(
            self.client.create_route().route_table_id(table),
            destination,
            target_id
        )
    }

    fn create_image_call(
        &self,
        request: &ImageRequest,
    ) -> ec2op::create_image::builders::CreateImageFluentBuilder {
        // Snapshots are tagged afterwards with CreateTags (a reconcile step that
        // also repairs older ones), so only the image is tagged here.
        self.client
            .create_image()
            .instance_id(&request.instance_id)
            .name(&request.name)
            .description(&request.description)
            .no_reboot(request.no_reboot)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .set_tags(Some(sdk_tags(&request.tags)))
                    .build(),
            )
    }
}

/// EC2's answer to a `DryRun=true` call: `DryRunOperation` is allowed,
/// `UnauthorizedOperation` denied; a success means the call was carried out
/// (an emulator that ignores DryRun), which must never pass for a proof.
fn permission<T, E>(
    operation: &'static str,
    answer: Result<T, SdkError<E>>,
) -> Result<Permission, CloudError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let Err(e) = answer else {
        return Err(CloudError::malformed(
            operation,
            "answered a DryRun request as if it had carried it out",
        ));
    };
    let e = cloud_error(operation, e);
    match e.code() {
        Some("DryRunOperation") => Ok(Permission::Allowed),
        Some("UnauthorizedOperation") => Ok(Permission::Denied(e.to_string())),
        _ => Err(e),
    }
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
        .build()
}

fn name_tag(name: &str) -> Filter {
    filter("tag:Name", &[name])
}

/// Turns an SDK error into a [`CloudError`], deciding whether a retry can help.
fn cloud_error<E>(operation: &'static str, err: SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match &err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let code = err.code().unwrap_or("Unknown").to_owned();
            let message = err
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
            let mut e = CloudError::service(operation, &code, message);
            if status.is_some_and(|s| s >= 500) {
                e.retryable = true;
            }
            e
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            CloudError::transport(operation, DisplayErrorContext(&err).to_string())
        }
        _ => CloudError::malformed(operation, DisplayErrorContext(&err).to_string()),
    }
}

fn tags_of(tags: &[aws_sdk_ec2::types::Tag]) -> Vec<Tag> {
    tags.iter()
        .filter_map(|t| Some(Tag::new(t.key()?, t.value().unwrap_or_default())))
        .collect()
}

fn sdk_tags(tags: &[Tag]) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|t| {
            aws_sdk_ec2::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
        })
        .collect()
}

fn image_of(i: &aws_sdk_ec2::types::Image) -> Option<Image> {
    Some(Image {
        id: i.image_id()?.to_owned(),
        name: i.name().map(str::to_owned),
        state: i.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        creation_date: i.creation_date().and_then(parse_creation_date),
        tags: tags_of(i.tags()),
        snapshot_ids: i
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
            .collect(),
    })
}

fn created_by_tool() -> Filter {
    filter(&format!("tag:{TAG_CREATED_BY}"), &[CREATED_BY])
}

fn to_chrono(t: &aws_sdk_ec2::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn instance_of(
    operation: &'static str,
    i: &aws_sdk_ec2::types::Instance,
) -> Result<Instance, CloudError> {
    let id = i
        .instance_id()
        .ok_or_else(|| CloudError::malformed(operation, "instance without InstanceId"))?;
    Ok(Instance {
        id: id.to_owned(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| InstanceState::parse(n.as_str()))
            .unwrap_or(InstanceState::Unknown),
        availability_zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_owned(),
        subnet_id: i.subnet_id().map(str::to_owned),
        vpc_id: i.vpc_id().map(str::to_owned),
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        image_id: i.image_id().map(str::to_owned),
        key_name: i.key_name().map(str::to_owned),
        iam_instance_profile_arn: i
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .map(str::to_owned),
        security_group_ids: primary_groups(i),
        network_interface_ids: i
            .network_interfaces()
            .iter()
            .filter_map(|n| n.network_interface_id().map(str::to_owned))
            .collect(),
        private_ip: i.private_ip_address().map(str::to_owned),
        public_ip: i.public_ip_address().map(str::to_owned),
        source_dest_check: i.source_dest_check(),
        launch_time: i.launch_time().and_then(to_chrono),
        first_launch: i
            .network_interfaces()
            .iter()
            .filter_map(|n| n.attachment())
            .find(|a| a.device_index() == Some(0))
            .and_then(|a| a.attach_time())
            .and_then(to_chrono),
        state_reason: i
            .state_reason()
            .and_then(|r| reason_text(r.code(), r.message())),
        tags: tags_of(i.tags()),
        metadata_options: i.metadata_options().map(metadata_of),
        ebs_optimized: i.ebs_optimized(),
        secondary_interfaces: secondary_interfaces(i.network_interfaces()),
    })
}

/// The groups of the primary interface (device 0): with more than one leg,
/// the instance-level list may mix in the other interfaces' groups.
fn primary_groups(i: &aws_sdk_ec2::types::Instance) -> Vec<String> {
    let primary = i
        .network_interfaces()
        .iter()
        .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0));
    match primary {
        Some(n) if !n.groups().is_empty() => group_ids(n.groups()),
        _ => group_ids(i.security_groups()),
    }
}

fn group_ids(groups: &[aws_sdk_ec2::types::GroupIdentifier]) -> Vec<String> {
    groups
        .iter()
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect()
}

/// The interfaces at device index 1 and up, in device order.
fn secondary_interfaces(all: &[aws_sdk_ec2::types::InstanceNetworkInterface]) -> Vec<Interface> {
    let mut legs: Vec<Interface> = all
        .iter()
        .filter_map(|n| {
            let device_index = n.attachment()?.device_index()?;
            (device_index > 0).then(|| Interface {
                id: n.network_interface_id().unwrap_or_default().to_owned(),
                device_index,
                subnet_id: n.subnet_id().unwrap_or_default().to_owned(),
                security_group_ids: group_ids(n.groups()),
                source_dest_check: n.source_dest_check(),
            })
        })
        .collect();
    legs.sort_by_key(|l| l.device_index);
    legs
}

/// RunInstances' NetworkInterfaces for a launch with more than one leg.
fn interfaces_of(request: &LaunchRequest) -> Vec<InstanceNetworkInterfaceSpecification> {
    let primary = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(&request.subnet_id)
        .set_groups(Some(request.security_group_ids.clone()))
        .build();
    let legs = request.secondary_interfaces.iter().map(|l| {
        InstanceNetworkInterfaceSpecification::builder()
            .device_index(l.device_index)
            .subnet_id(&l.subnet_id)
            .set_groups(Some(l.security_group_ids.clone()))
            .build()
    });
    std::iter::once(primary).chain(legs).collect()
}

fn metadata_of(m: &InstanceMetadataOptionsResponse) -> MetadataOptions {
    MetadataOptions {
        http_tokens: m.http_tokens().map(|t| t.as_str().to_owned()),
        http_put_response_hop_limit: m.http_put_response_hop_limit(),
        http_endpoint: m.http_endpoint().map(|e| e.as_str().to_owned()),
        instance_metadata_tags: m.instance_metadata_tags().map(|t| t.as_str().to_owned()),
    }
}

/// EC2's words back into the SDK's enums; a word the SDK does not know
/// travels as `Unknown` and is sent as it was read.
fn metadata_request(m: &MetadataOptions) -> InstanceMetadataOptionsRequest {
    InstanceMetadataOptionsRequest::builder()
        .set_http_tokens(m.http_tokens.as_deref().map(HttpTokensState::from))
        .set_http_put_response_hop_limit(m.http_put_response_hop_limit)
        .set_http_endpoint(
            m.http_endpoint
                .as_deref()
                .map(InstanceMetadataEndpointState::from),
        )
        .set_instance_metadata_tags(
            m.instance_metadata_tags
                .as_deref()
                .map(InstanceMetadataTagsState::from),
        )
        .build()
}

fn route_of(r: &aws_sdk_ec2::types::Route) -> Option<Route> {
    let destination = match (r.destination_cidr_block(), r.destination_ipv6_cidr_block()) {
        (Some(v4), _) => canonical(v4),
        (None, Some(v6)) => canonical(v6),
        // Prefix-list routes are never ours to manage.
        _ => return None,
    };
    let target = if let Some(i) = r.instance_id() {
        RouteTarget::Instance(i.to_owned())
    } else if let Some(n) = r.network_interface_id() {
        RouteTarget::NetworkInterface(n.to_owned())
    } else if let Some(other) = r
        .gateway_id()
        .or(r.nat_gateway_id())
        .or(r.transit_gateway_id())
        .or(r.vpc_peering_connection_id())
        .or(r.egress_only_internet_gateway_id())
        .or(r.local_gateway_id())
        .or(r.carrier_gateway_id())
        .or(r.core_network_arn())
    {
        RouteTarget::Other(other.to_owned())
    } else {
        RouteTarget::None
    };
    let blackhole = r
        .state()
        .is_some_and(|s| *s == aws_sdk_ec2::types::RouteState::Blackhole);
    Some(Route {
        destination,
        target,
        blackhole,
    })
}

/// EC2 prints CIDRs in canonical form already; parsing again makes IPv6
/// spellings compare equal to the configured ones.
fn canonical(cidr: &str) -> String {
    cidr.parse::<Cidr>()
        .map(|c| c.to_string())
        .unwrap_or_else(|_| cidr.to_owned())
}

/// The CIDR ingress rules of one permission set; unparsable ranges are skipped
/// (they cannot be ours, and a rule we cannot read must not stop the sync).
fn ingress_rules(p: &IpPermission) -> Vec<IngressRule> {
    let rule = |cidr: Option<&str>, description: Option<&str>| {
        Some(IngressRule {
            protocol: p.ip_protocol().unwrap_or("-1").to_owned(),
            from_port: p.from_port(),
            to_port: p.to_port(),
            cidr: cidr?.parse().ok()?,
            description: description.map(str::to_owned),
        })
    };
    p.ip_ranges()
        .iter()
        .filter_map(|r| rule(r.cidr_ip(), r.description()))
        .chain(
            p.ipv6_ranges()
                .iter()
                .filter_map(|r| rule(r.cidr_ipv6(), r.description())),
        )
        .collect()
}

/// One permission per range, so each rule keeps its own protocol and ports.
fn ip_permission(
    protocol: &str,
    from: Option<i32>,
    to: Option<i32>,
    cidr: &Cidr,
    description: Option<&str>,
) -> IpPermission {
    let p = IpPermission::builder()
        .ip_protocol(protocol)
        .set_from_port(from)
        .set_to_port(to);
    match cidr {
        Cidr::V4 { .. } => p.ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr.to_string())
                .set_description(description.map(str::to_owned))
                .build(),
        ),
        Cidr::V6 { .. } => p.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(cidr.to_string())
                .set_description(description.map(str::to_owned))
                .build(),
        ),
    }
    .build()
}

/// Route 53 lists names fully qualified and lowercase; compare them that way.
pub fn same_dns_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn parse_creation_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

impl Cloud for SdkCloud {
    async fn vpcs_named(&self, name: &str) -> Result<Vec<Vpc>, CloudError> {
        const OP: &str = "DescribeVpcs";
        let out = self
            .client
            .describe_vpcs()
            .filters(name_tag(name))
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(out
            .vpcs()
            .iter()
            .filter_map(|v| {
                Some(Vpc {
                    id: v.vpc_id()?.to_owned(),
                })
            })
            .collect())
    }

    async fn instances_named(&self, name: &str) -> Result<Vec<Instance>, CloudError> {
        const OP: &str = "DescribeInstances";
        let mut pages = self
            .client
            .describe_instances()
            .filters(name_tag(name))
            .filters(filter(
                "instance-state-name",
                &["pending", "running", "stopping", "stopped"],
            ))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| cloud_error(OP, e))?;
            for r in page.reservations() {
                for i in r.instances() {
                    found.push(instance_of(OP, i)?);
                }
            }
        }
        Ok(found)
    }

    async fn instance(&self, id: &str) -> Result<Option<Instance>, CloudError> {
        const OP: &str = "DescribeInstances";
        let out = self
            .client
            .describe_instances()
            .instance_ids(id)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // Right after RunInstances, EC2 may not list the instance yet.
            Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => return Ok(None),
            Err(e) => return Err(cloud_error(OP, e)),
        };
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id))
            .map(|i| instance_of(OP, i))
            .transpose()
    }

    async fn subnets_named(&self, names: &[String]) -> Result<Vec<Subnet>, CloudError> {
        const OP: &str = "DescribeSubnets";
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let out = self
            .client
            .describe_subnets()
            .filters(filter("tag:Name", &names))
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(out
            .subnets()
            .iter()
            .filter_map(|s| {
                Some(Subnet {
                    id: s.subnet_id()?.to_owned(),
                    vpc_id: s.vpc_id()?.to_owned(),
                    availability_zone: s.availability_zone()?.to_owned(),
                    tags: tags_of(s.tags()),
                })
            })
            .collect())
    }

    async fn route_tables_named(&self, name: &str) -> Result<Vec<RouteTable>, CloudError> {
        const OP: &str = "DescribeRouteTables";
        let out = self
            .client
            .describe_route_tables()
            .filters(name_tag(name))
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(out
            .route_tables()
            .iter()
            .filter_map(|t| {
                Some(RouteTable {
                    id: t.route_table_id()?.to_owned(),
                    vpc_id: t.vpc_id()?.to_owned(),
                    routes: t.routes().iter().filter_map(route_of).collect(),
                    tags: tags_of(t.tags()),
                })
            })
            .collect())
    }

    async fn images_named(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        const OP: &str = "DescribeImages";
        let out = self
            .client
            .describe_images()
            .owners("self")
            .filters(name_tag(name))
            .filters(filter("state", &["available"]))
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(out.images().iter().filter_map(image_of).collect())
    }

    async fn tool_images(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        const OP: &str = "DescribeImages";
        let out = self
            .client
            .describe_images()
            .owners("self")
            .filters(name_tag(name))
            .filters(created_by_tool())
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(out.images().iter().filter_map(image_of).collect())
    }

    async fn tool_snapshots(&self, name: &str) -> Result<Vec<Snapshot>, CloudError> {
        const OP: &str = "DescribeSnapshots";
        let mut pages = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .filters(name_tag(name))
            .filters(created_by_tool())
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| cloud_error(OP, e))?;
            found.extend(page.snapshots().iter().filter_map(snapshot_of));
        }
        Ok(found)
    }

    async fn snapshots_by_id(&self, ids: &[String]) -> Result<Vec<Snapshot>, CloudError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .set_snapshot_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| cloud_error("DescribeSnapshots", e))?;
        Ok(out.snapshots().iter().filter_map(snapshot_of).collect())
    }

    async fn create_image(&self, request: &ImageRequest) -> Result<String, CloudError> {
        const OP: &str = "CreateImage";
        // Snapshots are tagged afterwards with CreateTags (a reconcile step that
        // also repairs older ones), so only the image is tagged here.
        let out = self
            .create_image_call(request)
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        out.image_id()
            .map(str::to_owned)
            .ok_or_else(|| CloudError::malformed(OP, "CreateImage returned no ImageId"))
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &[Tag]) -> Result<(), CloudError> {
        self.client
            .create_tags()
            .set_resources(Some(resource_ids.to_vec()))
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .map_err(|e| cloud_error("CreateTags", e))?;
        Ok(())
    }

    async fn deregister_image(&self, image_id: &str) -> Result<(), CloudError> {
        self.client
            .deregister_image()
            .image_id(image_id)
            .send()
            .await
            .map_err(|e| cloud_error("DeregisterImage", e))?;
        Ok(())
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), CloudError> {
        self.client
            .delete_snapshot()
            .snapshot_id(snapshot_id)
            .send()
            .await
            .map_err(|e| cloud_error("DeleteSnapshot", e))?;
        Ok(())
    }

    async fn address(&self, public_ip: &str) -> Result<Option<Address>, CloudError> {
        const OP: &str = "DescribeAddresses";
        let out = self
            .client
            .describe_addresses()
            .filters(filter("public-ip", &[public_ip]))
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(out
            .addresses()
            .iter()
            .filter(|a| a.public_ip() == Some(public_ip))
            .find_map(|a| {
                Some(Address {
                    allocation_id: a.allocation_id()?.to_owned(),
                    public_ip: public_ip.to_owned(),
                    instance_id: a.instance_id().filter(|s| !s.is_empty()).map(str::to_owned),
                    network_interface_id: a.network_interface_id().map(str::to_owned),
                })
            }))
    }

    async fn security_groups_named(&self, name: &str) -> Result<Vec<SecurityGroup>, CloudError> {
        const OP: &str = "DescribeSecurityGroups";
        let out = self
            .client
            .describe_security_groups()
            .filters(filter("group-name", &[name]))
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(out
            .security_groups()
            .iter()
            .filter_map(|g| {
                Some(SecurityGroup {
                    id: g.group_id()?.to_owned(),
                    vpc_id: g.vpc_id().map(str::to_owned),
                })
            })
            .collect())
    }

    async fn stop_instance(&self, id: &str, force: bool) -> Result<(), CloudError> {
        self.stop_call(id, force)
            .send()
            .await
            .map_err(|e| cloud_error("StopInstances", e))?;
        Ok(())
    }

    async fn start_instance(&self, id: &str) -> Result<(), CloudError> {
        self.client
            .start_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| cloud_error("StartInstances", e))?;
        Ok(())
    }

    async fn terminate_instance(&self, id: &str) -> Result<(), CloudError> {
        self.client
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| cloud_error("TerminateInstances", e))?;
        Ok(())
    }

    async fn run_instance(&self, request: &LaunchRequest) -> Result<Instance, CloudError> {
        const OP: &str = "RunInstances";
        let out = self
            .run_call(request)
            // Capacity errors are 5xx, which the SDK would retry in place; the
            // next AZ or type is the better retry, so they go to the fallback
            // at once (throttling is retried by the executor).
            .customize()
            .config_override(
                aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        let first = out
            .instances()
            .first()
            .ok_or_else(|| CloudError::malformed(OP, "RunInstances returned no instance"))?;
        instance_of(OP, first)
    }

    async fn user_data(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        const OP: &str = "DescribeInstanceAttribute";
        let out = self
            .client
            .describe_instance_attribute()
            .instance_id(instance_id)
            .attribute(InstanceAttributeName::UserData)
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        // EC2 leaves the value out for an instance without user data; an
        // emulator may send it empty.
        Ok(out
            .user_data()
            .and_then(|v| v.value())
            .filter(|v| !v.is_empty())
            .map(str::to_owned))
    }

    async fn cpu_credits(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        const OP: &str = "DescribeInstanceCreditSpecifications";
        let out = self
            .client
            .describe_instance_credit_specifications()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(out
            .instance_credit_specifications()
            .iter()
            .find(|c| c.instance_id() == Some(instance_id))
            .and_then(|c| c.cpu_credits())
            .map(str::to_owned))
    }

    async fn disable_source_dest_check(&self, instance_id: &str) -> Result<(), CloudError> {
        self.source_dest_check_call(instance_id)
            .send()
            .await
            .map_err(|e| cloud_error("ModifyInstanceAttribute", e))?;
        Ok(())
    }

    async fn disable_interface_source_dest_check(
        &self,
        interface_id: &str,
    ) -> Result<(), CloudError> {
        self.interface_source_dest_check_call(interface_id)
            .send()
            .await
            .map_err(|e| cloud_error("ModifyNetworkInterfaceAttribute", e))?;
        Ok(())
    }

    async fn associate_address(
        &self,
        allocation_id: &str,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        self.associate_call(allocation_id, instance_id)
            .send()
            .await
            .map_err(|e| cloud_error("AssociateAddress", e))?;
        Ok(())
    }

    async fn replace_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        target_id: &str,
    ) -> Result<(), CloudError> {
        self.replace_route_call(route_table_id, destination, target_id)
            .send()
            .await
            .map_err(|e| cloud_error("ReplaceRoute", e))?;
        Ok(())
    }

    async fn create_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        target_id: &str,
    ) -> Result<(), CloudError> {
        self.create_route_call(route_table_id, destination, target_id)
            .send()
            .await
            .map_err(|e| cloud_error("CreateRoute", e))?;
        Ok(())
    }

    fn usage(&self) -> Option<UsageSnapshot> {
        self.usage.as_ref().map(ApiUsage::snapshot)
    }

    async fn health_check_status(
        &self,
        health_check_id: &str,
    ) -> Result<CheckerReport, CloudError> {
        const OP: &str = "GetHealthCheckStatus";
        let out = self
            .route53
            .get_health_check_status()
            .health_check_id(health_check_id)
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        let statuses: Vec<&str> = out
            .health_check_observations()
            .iter()
            .filter_map(|o| o.status_report().and_then(|r| r.status()))
            .collect();
        Ok(CheckerReport::from_statuses(&statuses))
    }

    async fn probe(&self, probe: Probe<'_>) -> Result<Permission, CloudError> {
        let op = probe.operation();
        match probe {
            Probe::Stop(id) => permission(op, self.stop_call(id, false).dry_run(true).send().await),
            Probe::Launch(r) => permission(op, self.run_call(r).dry_run(true).send().await),
            Probe::DisableSourceDestCheck(id) => permission(
                op,
                self.source_dest_check_call(id).dry_run(true).send().await,
            ),
            Probe::AssociateAddress {
                allocation_id,
                instance_id,
            } => permission(
                op,
                self.associate_call(allocation_id, instance_id)
                    .dry_run(true)
                    .send()
                    .await,
            ),
            Probe::ReplaceRoute {
                table,
                destination,
                target_id,
            } => permission(
                op,
                self.replace_route_call(table, destination, target_id)
                    .dry_run(true)
                    .send()
                    .await,
            ),
            Probe::CreateRoute {
                table,
                destination,
                target_id,
            } => permission(
                op,
                self.create_route_call(table, destination, target_id)
                    .dry_run(true)
                    .send()
                    .await,
            ),
            Probe::CreateImage(r) => {
                permission(op, self.create_image_call(r).dry_run(true).send().await)
            }
        }
    }

    async fn alarms(&self, query: AlarmQuery<'_>) -> Result<Vec<Alarm>, CloudError> {
        let Some(cloudwatch) = &self.cloudwatch else {
            return Err(CloudError::service(
                "DescribeAlarms",
                "NoCloudWatchClient",
                "this deployment has no CloudWatch client (ALARM_REGION)",
            ));
        };
        let (found, wanted) = match query {
            AlarmQuery::Named(name) => (
                cloudwatch
                    .describe_alarms()
                    .alarm_names(name)
                    .send()
                    .await
                    .map_err(|e| cloud_error("DescribeAlarms", e))?
                    .metric_alarms,
                None,
            ),
            AlarmQuery::ForHealthCheck(id) => (
                cloudwatch
                    .describe_alarms_for_metric()
                    .namespace("AWS/Route53")
                    .metric_name("HealthCheckStatus")
                    .dimensions(health_check_dimension(id))
                    .send()
                    .await
                    .map_err(|e| cloud_error("DescribeAlarmsForMetric", e))?
                    .metric_alarms,
                Some(id),
            ),
        };
        // The dimension is filtered here too: CloudWatch matches it exactly,
        // and an emulator may not.
        Ok(found
            .unwrap_or_default()
            .iter()
            .map(alarm_of)
            .filter(|a| wanted.is_none() || a.health_check_id.as_deref() == wanted)
            .collect())
    }

    async fn health_check_port(&self, health_check_id: &str) -> Result<Option<u16>, CloudError> {
        const OP: &str = "GetHealthCheck";
        let out = self
            .route53
            .get_health_check()
            .health_check_id(health_check_id)
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        let port = out
            .health_check()
            .and_then(|h| h.health_check_config())
            .and_then(|c| c.port());
        port.map(|p| {
            u16::try_from(p).map_err(|_| {
                CloudError::malformed(OP, format!("health check port {p} is not a TCP port"))
            })
        })
        .transpose()
    }

    async fn checker_ip_ranges(&self) -> Result<Vec<Cidr>, CloudError> {
        const OP: &str = "GetCheckerIpRanges";
        let out = self
            .route53
            .get_checker_ip_ranges()
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        // A range we cannot parse would be silently dropped from the group;
        // refuse the whole answer instead.
        out.checker_ip_ranges()
            .iter()
            .map(|r| {
                r.parse::<Cidr>()
                    .map_err(|p| CloudError::malformed(OP, format!("checker range {r:?}: {p}")))
            })
            .collect()
    }

    async fn security_group_ingress(
        &self,
        id_or_name: &str,
        vpc_id: Option<&str>,
    ) -> Result<Vec<GroupIngress>, CloudError> {
        const OP: &str = "DescribeSecurityGroups";
        // Filters, not GroupIds: an unknown id then lists nothing instead of failing.
        let call = self.client.describe_security_groups();
        let call = if id_or_name.starts_with("sg-") {
            call.filters(filter("group-id", &[id_or_name]))
        } else {
            let call = call.filters(filter("group-name", &[id_or_name]));
            match vpc_id {
                Some(vpc) => call.filters(filter("vpc-id", &[vpc])),
                None => call,
            }
        };
        let out = call.send().await.map_err(|e| cloud_error(OP, e))?;
        Ok(out
            .security_groups()
            .iter()
            .filter_map(|g| {
                Some(GroupIngress {
                    id: g.group_id()?.to_owned(),
                    name: g.group_name().unwrap_or_default().to_owned(),
                    vpc_id: g.vpc_id().map(str::to_owned),
                    rules: g.ip_permissions().iter().flat_map(ingress_rules).collect(),
                })
            })
            .collect())
    }

    async fn authorize_ingress(
        &self,
        group_id: &str,
        port: u16,
        ranges: &[Cidr],
        description: &str,
    ) -> Result<(), CloudError> {
        let port = i32::from(port);
        let permissions: Vec<IpPermission> = ranges
            .iter()
            .map(|c| ip_permission("tcp", Some(port), Some(port), c, Some(description)))
            .collect();
        self.client
            .authorize_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(permissions))
            .send()
            .await
            .map_err(|e| cloud_error("AuthorizeSecurityGroupIngress", e))?;
        Ok(())
    }

    async fn revoke_ingress(
        &self,
        group_id: &str,
        rules: &[IngressRule],
    ) -> Result<(), CloudError> {
        let permissions: Vec<IpPermission> = rules
            .iter()
            .map(|r| ip_permission(&r.protocol, r.from_port, r.to_port, &r.cidr, None))
            .collect();
        self.client
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(permissions))
            .send()
            .await
            .map_err(|e| cloud_error("RevokeSecurityGroupIngress", e))?;
        Ok(())
    }

    async fn a_records(&self, zone_id: &str, name: &str) -> Result<Vec<RecordSet>, CloudError> {
        const OP: &str = "ListResourceRecordSets";
        // Listing starts at name/type in Route 53's order; a few items cover the
        // record sets of a weighted or failover name, and what follows is not ours.
        let out = self
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(name)
            .start_record_type(RrType::A)
            .max_items(10)
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(out
            .resource_record_sets()
            .iter()
            .filter(|r| *r.r#type() == RrType::A && same_dns_name(r.name(), name))
            .map(|r| RecordSet {
                name: r.name().to_owned(),
                ttl: r.ttl(),
                values: r
                    .resource_records()
                    .iter()
                    .map(|v| v.value().to_owned())
                    .collect(),
                set_identifier: r.set_identifier().map(str::to_owned),
                alias: r.alias_target().is_some(),
            })
            .collect())
    }

    async fn upsert_a_record(
        &self,
        zone_id: &str,
        name: &str,
        ttl: i64,
        address: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "ChangeResourceRecordSets";
        let built =
            |e: aws_sdk_route53::error::BuildError| CloudError::malformed(OP, e.to_string());
        let record = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .ttl(ttl)
            .resource_records(
                ResourceRecord::builder()
                    .value(address)
                    .build()
                    .map_err(built)?,
            )
            .build()
            .map_err(built)?;
        let change = aws_sdk_route53::types::Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(record)
            .build()
            .map_err(built)?;
        let batch = ChangeBatch::builder()
            .comment("ec2-failover: the record follows the appliance")
            .changes(change)
            .build()
            .map_err(built)?;
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        Ok(())
    }
}

fn snapshot_of(s: &aws_sdk_ec2::types::Snapshot) -> Option<Snapshot> {
    Some(Snapshot {
        id: s.snapshot_id()?.to_owned(),
        tags: tags_of(s.tags()),
        kms_key_id: match s.encrypted() {
            Some(true) => Some(s.kms_key_id().unwrap_or("the default EBS key").to_owned()),
            _ => None,
        },
    })
}

fn health_check_dimension(id: &str) -> aws_sdk_cloudwatch::types::Dimension {
    aws_sdk_cloudwatch::types::Dimension::builder()
        .name("HealthCheckId")
        .value(id)
        .build()
}

fn alarm_of(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> Alarm {
    Alarm {
        name: a.alarm_name().unwrap_or_default().to_owned(),
        arn: a.alarm_arn().unwrap_or_default().to_owned(),
        state: a
            .state_value()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        reason: a.state_reason().map(str::to_owned),
        transitioned_at: a.state_transitioned_timestamp().and_then(to_chrono),
        updated_at: a.state_updated_timestamp().and_then(to_chrono),
        health_check_id: a
            .dimensions()
            .iter()
            .find(|d| d.name() == Some("HealthCheckId"))
            .and_then(|d| d.value())
            .map(str::to_owned),
        actions: a.alarm_actions().to_vec(),
    }
}

/// An instance's `StateReason` as one line: EC2 may send empty elements
/// (`<code/>`), and its message usually starts with the code already.
fn reason_text(code: Option<&str>, message: Option<&str>) -> Option<String> {
    let code = code.map(str::trim).filter(|c| !c.is_empty());
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    match (code, message) {
        (Some(c), Some(m)) if m.starts_with(c) => Some(m.to_owned()),
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (c, m) => c.or(m).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::reason_text;

    #[test]
    fn a_state_reason_reads_as_one_line_and_empty_elements_are_no_reason() {
        let said = |c, m| reason_text(c, m);
        assert_eq!(said(Some(""), Some("")), None);
        assert_eq!(said(None, Some("  ")), None);
        assert_eq!(
            said(
                Some("Server.InternalError"),
                Some("Server.InternalError: Internal error on launch")
            )
            .as_deref(),
            Some("Server.InternalError: Internal error on launch")
        );
        assert_eq!(
            said(
                Some("Client.VolumeLimitExceeded"),
                Some("Volume limit exceeded")
            )
            .as_deref(),
            Some("Client.VolumeLimitExceeded: Volume limit exceeded")
        );
        assert_eq!(
            said(Some(""), Some("User initiated")).as_deref(),
            Some("User initiated")
        );
    }
}
