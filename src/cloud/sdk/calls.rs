//! EC2's mutating calls as SDK builders, built once for the real call and for
//! its dry run, so both send the same request.

use super::SdkCloud;
use super::convert::{interfaces_of, metadata_request, sdk_tags};
use crate::cloud::{Cidr, ImageRequest, LaunchRequest, RouteTarget, route_target_of};

use aws_sdk_ec2::operation as ec2op;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, CreditSpecificationRequest, IamInstanceProfileSpecification,
    InstanceType, ResourceType, TagSpecification,
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

/// The mutating calls, built once for the real call and for its dry run.
impl SdkCloud {
    pub(super) fn stop_call(
        &self,
        id: &str,
        force: bool,
    ) -> ec2op::stop_instances::builders::StopInstancesFluentBuilder {
        self.client.stop_instances().instance_ids(id).force(force)
    }

    pub(super) fn run_call(
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

    pub(super) fn interface_source_dest_check_call(
        &self,
        interface_id: &str,
    ) -> ec2op::modify_network_interface_attribute::builders::ModifyNetworkInterfaceAttributeFluentBuilder
    {
        self.client
            .modify_network_interface_attribute()
            .network_interface_id(interface_id)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build())
    }

    pub(super) fn source_dest_check_call(
        &self,
        instance_id: &str,
    ) -> ec2op::modify_instance_attribute::builders::ModifyInstanceAttributeFluentBuilder {
        self.client
            .modify_instance_attribute()
            .instance_id(instance_id)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build())
    }

    /// By instance or by interface, as the target's id says.
    pub(super) fn associate_call(
        &self,
        allocation_id: &str,
        target: &str,
    ) -> ec2op::associate_address::builders::AssociateAddressFluentBuilder {
        let call = self
            .client
            .associate_address()
            .allocation_id(allocation_id)
            .allow_reassociation(true);
        match route_target_of(target) {
            RouteTarget::NetworkInterface(eni) => call.network_interface_id(eni),
            _ => call.instance_id(target),
        }
    }

    pub(super) fn replace_route_call(
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

    pub(super) fn create_route_call(
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

    pub(super) fn create_image_call(
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
