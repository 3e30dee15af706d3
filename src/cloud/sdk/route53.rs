//! Route 53: health check status, ports and checker ranges, and the A records
//! of a hosted zone.

use super::SdkCloud;
use super::errors::{cloud_error, done};
use crate::cloud::{CheckerReport, Cidr, CloudError, Operation, RecordSet};

use aws_sdk_route53::types::{
    ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

/// Route 53 lists names fully qualified and lowercase; compare them that way.
pub fn same_dns_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

pub(super) async fn health_check_status(
    cloud: &SdkCloud,
    health_check_id: &str,
) -> Result<CheckerReport, CloudError> {
    const OP: Operation = Operation::GetHealthCheckStatus;
    let out = cloud
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

pub(super) async fn health_check_port(
    cloud: &SdkCloud,
    health_check_id: &str,
) -> Result<Option<u16>, CloudError> {
    const OP: Operation = Operation::GetHealthCheck;
    let out = cloud
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

pub(super) async fn checker_ip_ranges(cloud: &SdkCloud) -> Result<Vec<Cidr>, CloudError> {
    const OP: Operation = Operation::GetCheckerIpRanges;
    let out = cloud
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

pub(super) async fn a_records(
    cloud: &SdkCloud,
    zone_id: &str,
    name: &str,
) -> Result<Vec<RecordSet>, CloudError> {
    const OP: Operation = Operation::ListResourceRecordSets;
    // Listing starts at name/type in Route 53's order; a few items cover the
    // record sets of a weighted or failover name, and what follows is not ours.
    let out = cloud
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

pub(super) async fn upsert_a_record(
    cloud: &SdkCloud,
    zone_id: &str,
    name: &str,
    ttl: i64,
    address: &str,
) -> Result<(), CloudError> {
    const OP: Operation = Operation::ChangeResourceRecordSets;
    let built = |e: aws_sdk_route53::error::BuildError| CloudError::malformed(OP, e.to_string());
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
    done(
        OP,
        cloud
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await,
    )
}
