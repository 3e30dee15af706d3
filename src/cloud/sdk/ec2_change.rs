//! EC2's changes: instances launched, started, stopped and terminated; AMIs,
//! snapshots and tags; source/dest checks, Elastic IPs, routes and ingress.

use aws_config::retry::RetryConfig;

use super::SdkCloud;
use super::convert::{instance_of, ip_permission, sdk_tags};
use super::errors::{cloud_error, done};
use crate::cloud::{
    Cidr, CloudError, ImageRequest, IngressRule, Instance, LaunchRequest, Operation, Tag,
};
use aws_sdk_ec2::types::IpPermission;

pub(super) async fn create_image(
    cloud: &SdkCloud,
    request: &ImageRequest,
) -> Result<String, CloudError> {
    const OP: Operation = Operation::CreateImage;
    // Snapshots are tagged afterwards with CreateTags (a reconcile step that
    // also repairs older ones), so only the image is tagged here.
    let out = cloud
        .create_image_call(request)
        .send()
        .await
        .map_err(|e| cloud_error(OP, e))?;
    out.image_id()
        .map(str::to_owned)
        .ok_or_else(|| CloudError::malformed(OP, format!("{OP} returned no ImageId")))
}

pub(super) async fn create_tags(
    cloud: &SdkCloud,
    resource_ids: &[String],
    tags: &[Tag],
) -> Result<(), CloudError> {
    done(
        Operation::CreateTags,
        cloud
            .client
            .create_tags()
            .set_resources(Some(resource_ids.to_vec()))
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await,
    )
}

pub(super) async fn deregister_image(cloud: &SdkCloud, image_id: &str) -> Result<(), CloudError> {
    done(
        Operation::DeregisterImage,
        cloud
            .client
            .deregister_image()
            .image_id(image_id)
            .send()
            .await,
    )
}

pub(super) async fn delete_snapshot(cloud: &SdkCloud, snapshot_id: &str) -> Result<(), CloudError> {
    done(
        Operation::DeleteSnapshot,
        cloud
            .client
            .delete_snapshot()
            .snapshot_id(snapshot_id)
            .send()
            .await,
    )
}

pub(super) async fn stop_instance(
    cloud: &SdkCloud,
    id: &str,
    force: bool,
) -> Result<(), CloudError> {
    done(
        Operation::StopInstances,
        cloud.stop_call(id, force).send().await,
    )
}

pub(super) async fn start_instance(cloud: &SdkCloud, id: &str) -> Result<(), CloudError> {
    done(
        Operation::StartInstances,
        cloud.client.start_instances().instance_ids(id).send().await,
    )
}

pub(super) async fn terminate_instance(cloud: &SdkCloud, id: &str) -> Result<(), CloudError> {
    done(
        Operation::TerminateInstances,
        cloud
            .client
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await,
    )
}

pub(super) async fn run_instance(
    cloud: &SdkCloud,
    request: &LaunchRequest,
) -> Result<Instance, CloudError> {
    const OP: Operation = Operation::RunInstances;
    let out = cloud
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
        .ok_or_else(|| CloudError::malformed(OP, format!("{OP} returned no instance")))?;
    instance_of(OP, first)
}

pub(super) async fn disable_source_dest_check(
    cloud: &SdkCloud,
    instance_id: &str,
) -> Result<(), CloudError> {
    done(
        Operation::ModifyInstanceAttribute,
        cloud.source_dest_check_call(instance_id).send().await,
    )
}

pub(super) async fn disable_interface_source_dest_check(
    cloud: &SdkCloud,
    interface_id: &str,
) -> Result<(), CloudError> {
    done(
        Operation::ModifyNetworkInterfaceAttribute,
        cloud
            .interface_source_dest_check_call(interface_id)
            .send()
            .await,
    )
}

pub(super) async fn associate_address(
    cloud: &SdkCloud,
    allocation_id: &str,
    target: &str,
) -> Result<(), CloudError> {
    done(
        Operation::AssociateAddress,
        cloud.associate_call(allocation_id, target).send().await,
    )
}

pub(super) async fn replace_route(
    cloud: &SdkCloud,
    route_table_id: &str,
    destination: &Cidr,
    target_id: &str,
) -> Result<(), CloudError> {
    done(
        Operation::ReplaceRoute,
        cloud
            .replace_route_call(route_table_id, destination, target_id)
            .send()
            .await,
    )
}

pub(super) async fn create_route(
    cloud: &SdkCloud,
    route_table_id: &str,
    destination: &Cidr,
    target_id: &str,
) -> Result<(), CloudError> {
    done(
        Operation::CreateRoute,
        cloud
            .create_route_call(route_table_id, destination, target_id)
            .send()
            .await,
    )
}

pub(super) async fn authorize_ingress(
    cloud: &SdkCloud,
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
    done(
        Operation::AuthorizeSecurityGroupIngress,
        cloud
            .client
            .authorize_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(permissions))
            .send()
            .await,
    )
}

pub(super) async fn revoke_ingress(
    cloud: &SdkCloud,
    group_id: &str,
    rules: &[IngressRule],
) -> Result<(), CloudError> {
    let permissions: Vec<IpPermission> = rules
        .iter()
        .map(|r| ip_permission(&r.protocol, r.from_port, r.to_port, &r.cidr, None))
        .collect();
    done(
        Operation::RevokeSecurityGroupIngress,
        cloud
            .client
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(permissions))
            .send()
            .await,
    )
}
