//! The dry runs: each change of a failover sent with `DryRun=true`, so IAM
//! and EC2's checks answer before anything is changed.

use super::SdkCloud;
use crate::cloud::{CloudError, Permission, Probe};

use super::errors::permission;

pub(super) async fn probe(cloud: &SdkCloud, probe: Probe<'_>) -> Result<Permission, CloudError> {
    let op = probe.operation();
    match probe {
        Probe::Stop(id) => permission(op, cloud.stop_call(id, false).dry_run(true).send().await),
        Probe::Launch(r) => permission(op, cloud.run_call(r).dry_run(true).send().await),
        Probe::DisableInterfaceSourceDestCheck(eni) => permission(
            op,
            cloud
                .interface_source_dest_check_call(eni)
                .dry_run(true)
                .send()
                .await,
        ),
        Probe::DisableSourceDestCheck(id) => permission(
            op,
            cloud.source_dest_check_call(id).dry_run(true).send().await,
        ),
        Probe::AssociateAddress {
            allocation_id,
            target,
        } => permission(
            op,
            cloud
                .associate_call(allocation_id, target)
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
            cloud
                .replace_route_call(table, destination, target_id)
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
            cloud
                .create_route_call(table, destination, target_id)
                .dry_run(true)
                .send()
                .await,
        ),
        Probe::CreateImage(r) => {
            permission(op, cloud.create_image_call(r).dry_run(true).send().await)
        }
    }
}
