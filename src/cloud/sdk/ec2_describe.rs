//! EC2's describes: VPCs, subnets, route tables, instances and their
//! attributes, AMIs, snapshots, Elastic IPs and security groups, read through
//! tag filters and paginators.

use super::SdkCloud;
use super::convert::{
    created_by_tool, filter, image_of, ingress_rules, instance_of, name_tag, route_of, snapshot_of,
    tags_of,
};
use super::errors::cloud_error;
use crate::cloud::{
    Address, CloudError, GroupIngress, Image, Instance, Operation, RouteTable, SecurityGroup,
    Snapshot, Subnet, Vpc,
};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::InstanceAttributeName;

pub(super) async fn vpcs_named(cloud: &SdkCloud, name: &str) -> Result<Vec<Vpc>, CloudError> {
    const OP: Operation = Operation::DescribeVpcs;
    let out = cloud
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

pub(super) async fn instances_named(
    cloud: &SdkCloud,
    name: &str,
) -> Result<Vec<Instance>, CloudError> {
    const OP: Operation = Operation::DescribeInstances;
    let mut pages = cloud
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

pub(super) async fn instance(cloud: &SdkCloud, id: &str) -> Result<Option<Instance>, CloudError> {
    const OP: Operation = Operation::DescribeInstances;
    let out = cloud
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

pub(super) async fn subnets_named(
    cloud: &SdkCloud,
    names: &[String],
) -> Result<Vec<Subnet>, CloudError> {
    const OP: Operation = Operation::DescribeSubnets;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = cloud
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

pub(super) async fn route_tables_named(
    cloud: &SdkCloud,
    name: &str,
) -> Result<Vec<RouteTable>, CloudError> {
    const OP: Operation = Operation::DescribeRouteTables;
    let out = cloud
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

pub(super) async fn images_named(cloud: &SdkCloud, name: &str) -> Result<Vec<Image>, CloudError> {
    const OP: Operation = Operation::DescribeImages;
    let out = cloud
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

pub(super) async fn images_published(
    cloud: &SdkCloud,
    owners: &[String],
    name: &str,
) -> Result<Vec<Image>, CloudError> {
    const OP: Operation = Operation::DescribeImages;
    let out = cloud
        .client
        .describe_images()
        .set_owners(Some(owners.to_vec()))
        .filters(filter("name", &[&format!("{name}*")]))
        .filters(filter("state", &["available"]))
        .send()
        .await
        .map_err(|e| cloud_error(OP, e))?;
    Ok(out.images().iter().filter_map(image_of).collect())
}

pub(super) async fn tool_images(cloud: &SdkCloud, name: &str) -> Result<Vec<Image>, CloudError> {
    const OP: Operation = Operation::DescribeImages;
    let out = cloud
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

pub(super) async fn tool_snapshots(
    cloud: &SdkCloud,
    name: &str,
) -> Result<Vec<Snapshot>, CloudError> {
    const OP: Operation = Operation::DescribeSnapshots;
    let mut pages = cloud
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

pub(super) async fn snapshots_by_id(
    cloud: &SdkCloud,
    ids: &[String],
) -> Result<Vec<Snapshot>, CloudError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = cloud
        .client
        .describe_snapshots()
        .owner_ids("self")
        .set_snapshot_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| cloud_error(Operation::DescribeSnapshots, e))?;
    Ok(out.snapshots().iter().filter_map(snapshot_of).collect())
}

pub(super) async fn ebs_encryption_by_default(cloud: &SdkCloud) -> Result<bool, CloudError> {
    const OP: Operation = Operation::GetEbsEncryptionByDefault;
    let out = cloud
        .client
        .get_ebs_encryption_by_default()
        .send()
        .await
        .map_err(|e| cloud_error(OP, e))?;
    out.ebs_encryption_by_default()
        .ok_or_else(|| CloudError::malformed(OP, "no EbsEncryptionByDefault in the answer"))
}

pub(super) async fn ebs_default_kms_key(cloud: &SdkCloud) -> Result<String, CloudError> {
    const OP: Operation = Operation::GetEbsDefaultKmsKeyId;
    let out = cloud
        .client
        .get_ebs_default_kms_key_id()
        .send()
        .await
        .map_err(|e| cloud_error(OP, e))?;
    // No key at all is not the AWS managed key: say so rather than guess.
    out.kms_key_id()
        .map(str::to_owned)
        .ok_or_else(|| CloudError::malformed(OP, "no KmsKeyId in the answer"))
}

pub(super) async fn address(
    cloud: &SdkCloud,
    public_ip: &str,
) -> Result<Option<Address>, CloudError> {
    const OP: Operation = Operation::DescribeAddresses;
    let out = cloud
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

pub(super) async fn security_groups_named(
    cloud: &SdkCloud,
    name: &str,
) -> Result<Vec<SecurityGroup>, CloudError> {
    const OP: Operation = Operation::DescribeSecurityGroups;
    let out = cloud
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

pub(super) async fn user_data(
    cloud: &SdkCloud,
    instance_id: &str,
) -> Result<Option<String>, CloudError> {
    const OP: Operation = Operation::DescribeInstanceAttribute;
    let out = cloud
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

pub(super) async fn cpu_credits(
    cloud: &SdkCloud,
    instance_id: &str,
) -> Result<Option<String>, CloudError> {
    const OP: Operation = Operation::DescribeInstanceCreditSpecifications;
    let out = cloud
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

pub(super) async fn security_group_ingress(
    cloud: &SdkCloud,
    id_or_name: &str,
    vpc_id: Option<&str>,
) -> Result<Vec<GroupIngress>, CloudError> {
    const OP: Operation = Operation::DescribeSecurityGroups;
    // Filters, not GroupIds: an unknown id then lists nothing instead of failing.
    let call = cloud.client.describe_security_groups();
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
