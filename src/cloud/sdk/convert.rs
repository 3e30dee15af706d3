//! SDK types into the domain's types and back: instances, interfaces,
//! images, snapshots, routes, ingress rules, tags and filters.

use crate::cloud::{
    CREATED_BY, Cidr, CloudError, Image, IngressRule, Instance, InstanceState, Interface,
    LaunchRequest, MetadataOptions, Operation, Route, RouteTarget, Snapshot, TAG_CREATED_BY, Tag,
    current_stop_request,
};
use aws_sdk_ec2::types::{
    Filter, HttpTokensState, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceMetadataOptionsResponse, InstanceMetadataTagsState,
    InstanceNetworkInterfaceSpecification, IpPermission, IpRange, Ipv6Range,
};
use chrono::{DateTime, Utc};

pub(super) fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
        .build()
}

pub(super) fn name_tag(name: &str) -> Filter {
    filter("tag:Name", &[name])
}

pub(super) fn tags_of(tags: &[aws_sdk_ec2::types::Tag]) -> Vec<Tag> {
    tags.iter()
        .filter_map(|t| Some(Tag::new(t.key()?, t.value().unwrap_or_default())))
        .collect()
}

pub(super) fn sdk_tags(tags: &[Tag]) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|t| {
            aws_sdk_ec2::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
        })
        .collect()
}

pub(super) fn image_of(i: &aws_sdk_ec2::types::Image) -> Option<Image> {
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
        source_instance_id: non_empty(i.source_instance_id()),
    })
}

pub(super) fn created_by_tool() -> Filter {
    filter(&format!("tag:{TAG_CREATED_BY}"), &[CREATED_BY])
}

pub(super) fn to_chrono(t: &aws_sdk_ec2::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

pub(super) fn instance_of(
    operation: Operation,
    i: &aws_sdk_ec2::types::Instance,
) -> Result<Instance, CloudError> {
    let id = i
        .instance_id()
        .ok_or_else(|| CloudError::malformed(operation, "instance without InstanceId"))?;
    let state = i
        .state()
        .and_then(|s| s.name())
        .map(|n| InstanceState::parse(n.as_str()))
        .unwrap_or(InstanceState::Unknown);
    Ok(Instance {
        id: id.to_owned(),
        state,
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
        source_dest_check: primary_source_dest_check(i),
        launch_time: i.launch_time().and_then(to_chrono),
        first_launch: primary_interface(i)
            .and_then(|n| n.attachment())
            .and_then(|a| a.attach_time())
            .and_then(to_chrono),
        state_reason: i
            .state_reason()
            .and_then(|r| reason_text(r.code(), r.message())),
        stop_requested: current_stop_request(
            state,
            i.state_transition_reason().unwrap_or_default(),
        ),
        tags: tags_of(i.tags()),
        metadata_options: i.metadata_options().map(metadata_of),
        ebs_optimized: i.ebs_optimized(),
        secondary_interfaces: secondary_interfaces(i.network_interfaces()),
        client_token: non_empty(i.client_token()),
    })
}

/// A string EC2 may send empty for "none".
fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|t| !t.is_empty()).map(str::to_owned)
}

/// The attribute the function changes: on EC2 the instance's mirrors its
/// primary interface's, but moto keeps the two apart, so it is read where it
/// is written: the primary interface's own for an instance with several
/// (changed by interface), else the instance's.
fn primary_source_dest_check(i: &aws_sdk_ec2::types::Instance) -> Option<bool> {
    match primary_interface(i) {
        Some(n) if i.network_interfaces().len() > 1 => {
            n.source_dest_check().or(i.source_dest_check())
        }
        _ => i.source_dest_check(),
    }
}

/// The instance's interface at device index 0.
fn primary_interface(
    i: &aws_sdk_ec2::types::Instance,
) -> Option<&aws_sdk_ec2::types::InstanceNetworkInterface> {
    i.network_interfaces()
        .iter()
        .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
}

/// The groups of the primary interface (device 0): with more than one leg,
/// the instance-level list may mix in the other interfaces' groups.
pub(super) fn primary_groups(i: &aws_sdk_ec2::types::Instance) -> Vec<String> {
    match primary_interface(i) {
        Some(n) if !n.groups().is_empty() => group_ids(n.groups()),
        _ => group_ids(i.security_groups()),
    }
}

pub(super) fn group_ids(groups: &[aws_sdk_ec2::types::GroupIdentifier]) -> Vec<String> {
    groups
        .iter()
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect()
}

/// The interfaces at device index 1 and up, in device order.
pub(super) fn secondary_interfaces(
    all: &[aws_sdk_ec2::types::InstanceNetworkInterface],
) -> Vec<Interface> {
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
pub(super) fn interfaces_of(request: &LaunchRequest) -> Vec<InstanceNetworkInterfaceSpecification> {
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

pub(super) fn metadata_of(m: &InstanceMetadataOptionsResponse) -> MetadataOptions {
    MetadataOptions {
        http_tokens: m.http_tokens().map(|t| t.as_str().to_owned()),
        http_put_response_hop_limit: m.http_put_response_hop_limit(),
        http_endpoint: m.http_endpoint().map(|e| e.as_str().to_owned()),
        instance_metadata_tags: m.instance_metadata_tags().map(|t| t.as_str().to_owned()),
    }
}

/// EC2's words back into the SDK's enums; a word the SDK does not know
/// travels as `Unknown` and is sent as it was read.
pub(super) fn metadata_request(m: &MetadataOptions) -> InstanceMetadataOptionsRequest {
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

pub(super) fn route_of(r: &aws_sdk_ec2::types::Route) -> Option<Route> {
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
pub(super) fn canonical(cidr: &str) -> String {
    cidr.parse::<Cidr>()
        .map(|c| c.to_string())
        .unwrap_or_else(|_| cidr.to_owned())
}

/// The CIDR ingress rules of one permission set; unparsable ranges are skipped
/// (they cannot be ours, and a rule we cannot read must not stop the sync).
pub(super) fn ingress_rules(p: &IpPermission) -> Vec<IngressRule> {
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
pub(super) fn ip_permission(
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

pub(super) fn parse_creation_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

pub(super) fn snapshot_of(s: &aws_sdk_ec2::types::Snapshot) -> Option<Snapshot> {
    Some(Snapshot {
        id: s.snapshot_id()?.to_owned(),
        tags: tags_of(s.tags()),
        kms_key_id: match s.encrypted() {
            Some(true) => Some(s.kms_key_id().unwrap_or("the default EBS key").to_owned()),
            _ => None,
        },
        description: s.description().map(str::to_owned),
    })
}

/// An instance's `StateReason` as one line: EC2 may send empty elements
/// (`<code/>`), and its message usually starts with the code already.
pub(super) fn reason_text(code: Option<&str>, message: Option<&str>) -> Option<String> {
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
    use super::{instance_of, reason_text};
    use crate::cloud::Operation;
    use aws_sdk_ec2::types::{Instance, InstanceState, InstanceStateName};

    fn described(state: InstanceStateName, reason: &str) -> Instance {
        Instance::builder()
            .instance_id("i-old")
            .state(InstanceState::builder().name(state).build())
            .state_transition_reason(reason)
            .build()
    }

    #[test]
    fn a_stopping_instance_says_when_its_stop_was_asked_for_or_it_is_unknown() {
        let requested = |state, reason| {
            instance_of(Operation::DescribeInstances, &described(state, reason))
                .map(|i| i.stop_requested.map(|t| t.to_rfc3339()))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let at = Some("2026-11-21T08:59:07+00:00".to_owned());
        let aws = "User initiated (2026-11-21 08:59:07 GMT)";
        let moto = "User initiated (2026-11-21 08:59:07 UTC)";
        assert_eq!(requested(InstanceStateName::Stopping, aws), at);
        assert_eq!(requested(InstanceStateName::Stopped, moto), at);
        assert_eq!(requested(InstanceStateName::Stopping, "garbage (x)"), None);
        assert_eq!(requested(InstanceStateName::Stopping, ""), None);
        // A running instance's reason is of an older transition, not a stop.
        assert_eq!(requested(InstanceStateName::Running, aws), None);
    }

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
