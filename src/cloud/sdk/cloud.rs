//! [`Cloud`] for the SDK adapter: each call is the function of the same name
//! in its service's file (EC2 describes, EC2 changes and their dry runs,
//! Route 53, CloudWatch).

use super::SdkCloud;
use super::{cloudwatch, ec2_change, ec2_describe, probe, route53};
use crate::cloud::usage::{ApiUsage, UsageSnapshot};
use crate::cloud::{
    Address, Alarm, AlarmQuery, CheckerReport, Cidr, Cloud, CloudError, GroupIngress, Image,
    ImageRequest, IngressRule, Instance, LaunchRequest, Permission, Probe, RecordSet, RouteTable,
    SecurityGroup, Snapshot, Subnet, Tag, Vpc,
};

impl Cloud for SdkCloud {
    async fn vpcs_named(&self, name: &str) -> Result<Vec<Vpc>, CloudError> {
        ec2_describe::vpcs_named(self, name).await
    }

    async fn instances_named(&self, name: &str) -> Result<Vec<Instance>, CloudError> {
        ec2_describe::instances_named(self, name).await
    }

    async fn instance(&self, id: &str) -> Result<Option<Instance>, CloudError> {
        ec2_describe::instance(self, id).await
    }

    async fn subnets_named(&self, names: &[String]) -> Result<Vec<Subnet>, CloudError> {
        ec2_describe::subnets_named(self, names).await
    }

    async fn route_tables_named(&self, name: &str) -> Result<Vec<RouteTable>, CloudError> {
        ec2_describe::route_tables_named(self, name).await
    }

    async fn images_named(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        ec2_describe::images_named(self, name).await
    }

    async fn tool_images(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        ec2_describe::tool_images(self, name).await
    }

    async fn tool_snapshots(&self, name: &str) -> Result<Vec<Snapshot>, CloudError> {
        ec2_describe::tool_snapshots(self, name).await
    }

    async fn snapshots_by_id(&self, ids: &[String]) -> Result<Vec<Snapshot>, CloudError> {
        ec2_describe::snapshots_by_id(self, ids).await
    }

    async fn create_image(&self, request: &ImageRequest) -> Result<String, CloudError> {
        ec2_change::create_image(self, request).await
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &[Tag]) -> Result<(), CloudError> {
        ec2_change::create_tags(self, resource_ids, tags).await
    }

    async fn deregister_image(&self, image_id: &str) -> Result<(), CloudError> {
        ec2_change::deregister_image(self, image_id).await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), CloudError> {
        ec2_change::delete_snapshot(self, snapshot_id).await
    }

    async fn address(&self, public_ip: &str) -> Result<Option<Address>, CloudError> {
        ec2_describe::address(self, public_ip).await
    }

    async fn security_groups_named(&self, name: &str) -> Result<Vec<SecurityGroup>, CloudError> {
        ec2_describe::security_groups_named(self, name).await
    }

    async fn stop_instance(&self, id: &str, force: bool) -> Result<(), CloudError> {
        ec2_change::stop_instance(self, id, force).await
    }

    async fn start_instance(&self, id: &str) -> Result<(), CloudError> {
        ec2_change::start_instance(self, id).await
    }

    async fn terminate_instance(&self, id: &str) -> Result<(), CloudError> {
        ec2_change::terminate_instance(self, id).await
    }

    async fn run_instance(&self, request: &LaunchRequest) -> Result<Instance, CloudError> {
        ec2_change::run_instance(self, request).await
    }

    async fn user_data(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        ec2_describe::user_data(self, instance_id).await
    }

    async fn cpu_credits(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        ec2_describe::cpu_credits(self, instance_id).await
    }

    async fn disable_source_dest_check(&self, instance_id: &str) -> Result<(), CloudError> {
        ec2_change::disable_source_dest_check(self, instance_id).await
    }

    async fn disable_interface_source_dest_check(
        &self,
        interface_id: &str,
    ) -> Result<(), CloudError> {
        ec2_change::disable_interface_source_dest_check(self, interface_id).await
    }

    async fn associate_address(&self, allocation_id: &str, target: &str) -> Result<(), CloudError> {
        ec2_change::associate_address(self, allocation_id, target).await
    }

    async fn replace_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        target_id: &str,
    ) -> Result<(), CloudError> {
        ec2_change::replace_route(self, route_table_id, destination, target_id).await
    }

    async fn create_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        target_id: &str,
    ) -> Result<(), CloudError> {
        ec2_change::create_route(self, route_table_id, destination, target_id).await
    }

    fn usage(&self) -> Option<UsageSnapshot> {
        self.usage.as_ref().map(ApiUsage::snapshot)
    }

    async fn health_check_status(
        &self,
        health_check_id: &str,
    ) -> Result<CheckerReport, CloudError> {
        route53::health_check_status(self, health_check_id).await
    }

    async fn probe(&self, probe: Probe<'_>) -> Result<Permission, CloudError> {
        probe::probe(self, probe).await
    }

    async fn alarms(&self, query: AlarmQuery<'_>) -> Result<Vec<Alarm>, CloudError> {
        cloudwatch::alarms(self, query).await
    }

    async fn health_check_port(&self, health_check_id: &str) -> Result<Option<u16>, CloudError> {
        route53::health_check_port(self, health_check_id).await
    }

    async fn checker_ip_ranges(&self) -> Result<Vec<Cidr>, CloudError> {
        route53::checker_ip_ranges(self).await
    }

    async fn security_group_ingress(
        &self,
        id_or_name: &str,
        vpc_id: Option<&str>,
    ) -> Result<Vec<GroupIngress>, CloudError> {
        ec2_describe::security_group_ingress(self, id_or_name, vpc_id).await
    }

    async fn authorize_ingress(
        &self,
        group_id: &str,
        port: u16,
        ranges: &[Cidr],
        description: &str,
    ) -> Result<(), CloudError> {
        ec2_change::authorize_ingress(self, group_id, port, ranges, description).await
    }

    async fn revoke_ingress(
        &self,
        group_id: &str,
        rules: &[IngressRule],
    ) -> Result<(), CloudError> {
        ec2_change::revoke_ingress(self, group_id, rules).await
    }

    async fn a_records(&self, zone_id: &str, name: &str) -> Result<Vec<RecordSet>, CloudError> {
        route53::a_records(self, zone_id, name).await
    }

    async fn upsert_a_record(
        &self,
        zone_id: &str,
        name: &str,
        ttl: i64,
        address: &str,
    ) -> Result<(), CloudError> {
        route53::upsert_a_record(self, zone_id, name, ttl, address).await
    }
}
