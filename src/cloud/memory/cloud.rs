//! [`Cloud`] for the in-memory account: each call takes the world's lock and
//! applies the account's rules (in the files named after their service).

use super::MemoryCloud;
use super::account::{Account, has_tag, named};
use super::records::SnapshotRec;
use crate::cloud::sdk::same_dns_name;
use crate::cloud::{
    Address, Alarm, AlarmQuery, CheckerReport, Cidr, Cloud, CloudError, GroupIngress, Image,
    ImageRequest, IngressRule, Instance, InstanceState, LaunchRequest, Operation, Permission,
    Probe, RecordSet, RouteTable, SecurityGroup, Snapshot, Subnet, TAG_CREATED_BY, Tag, Vpc,
};

impl Cloud for MemoryCloud {
    async fn vpcs_named(&self, name: &str) -> Result<Vec<Vpc>, CloudError> {
        Ok(self
            .lock()
            .vpcs
            .iter()
            .filter(|v| named(&v.tags, name))
            .map(|v| Vpc { id: v.id.clone() })
            .collect())
    }

    async fn instances_named(&self, name: &str) -> Result<Vec<Instance>, CloudError> {
        let mut s = self.lock();
        s.tick_instances();
        let mut found = Vec::new();
        for i in 0..s.instances.len() {
            let r = &s.instances[i];
            if !named(&r.tags, name)
                || !matches!(
                    r.state,
                    InstanceState::Pending
                        | InstanceState::Running
                        | InstanceState::Stopping
                        | InstanceState::Stopped
                )
            {
                continue;
            }
            if r.unlisted_looks > 0 {
                s.instances[i].unlisted_looks -= 1;
                continue;
            }
            found.push(s.describe_instance(r));
        }
        Ok(found)
    }

    async fn instance(&self, id: &str) -> Result<Option<Instance>, CloudError> {
        let mut s = self.lock();
        s.tick_instances();
        Ok(s.instances
            .iter()
            .find(|i| i.id == id)
            .map(|r| s.describe_instance(r)))
    }

    async fn subnets_named(&self, names: &[String]) -> Result<Vec<Subnet>, CloudError> {
        Ok(self
            .lock()
            .subnets
            .iter()
            .filter(|x| names.iter().any(|n| named(&x.tags, n)))
            .map(|x| Subnet {
                id: x.id.clone(),
                vpc_id: x.vpc_id.clone(),
                availability_zone: x.availability_zone.clone(),
                tags: x.tags.clone(),
            })
            .collect())
    }

    async fn route_tables_named(&self, name: &str) -> Result<Vec<RouteTable>, CloudError> {
        let s = self.lock();
        Ok(s.tables
            .iter()
            .filter(|t| named(&t.tags, name))
            .map(|t| s.describe_table(t))
            .collect())
    }

    async fn images_named(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        let mut s = self.lock();
        s.tick_images();
        Ok(s.images
            .iter()
            .filter(|i| i.owned && i.state == "available" && named(&i.tags, name))
            .map(Account::describe_image)
            .collect())
    }

    async fn tool_images(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        let mut s = self.lock();
        s.tick_images();
        Ok(s.images
            .iter()
            .filter(|i| {
                i.owned
                    && named(&i.tags, name)
                    && has_tag(&i.tags, TAG_CREATED_BY, crate::cloud::CREATED_BY)
            })
            .map(Account::describe_image)
            .collect())
    }

    async fn tool_snapshots(&self, name: &str) -> Result<Vec<Snapshot>, CloudError> {
        Ok(self
            .lock()
            .snapshots
            .iter()
            .filter(|x| {
                named(&x.tags, name) && has_tag(&x.tags, TAG_CREATED_BY, crate::cloud::CREATED_BY)
            })
            .map(SnapshotRec::view)
            .collect())
    }

    async fn snapshots_by_id(&self, ids: &[String]) -> Result<Vec<Snapshot>, CloudError> {
        Ok(self
            .lock()
            .snapshots
            .iter()
            .filter(|x| ids.contains(&x.id))
            .map(SnapshotRec::view)
            .collect())
    }

    async fn create_image(&self, request: &ImageRequest) -> Result<String, CloudError> {
        self.lock().create_image(request)
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &[Tag]) -> Result<(), CloudError> {
        self.lock().create_tags(resource_ids, tags)
    }

    async fn deregister_image(&self, image_id: &str) -> Result<(), CloudError> {
        self.lock().deregister_image(image_id)
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), CloudError> {
        self.lock().delete_snapshot(snapshot_id)
    }

    async fn address(&self, public_ip: &str) -> Result<Option<Address>, CloudError> {
        let s = self.lock();
        Ok(s.addresses
            .iter()
            .find(|a| a.public_ip == public_ip)
            .map(|a| Address {
                allocation_id: a.allocation_id.clone(),
                public_ip: a.public_ip.clone(),
                instance_id: a.instance_id.clone(),
                network_interface_id: a.instance_id.as_ref().and_then(|id| {
                    s.instances
                        .iter()
                        .find(|i| i.id == *id)
                        .map(|i| i.eni.clone())
                }),
            }))
    }

    async fn security_groups_named(&self, name: &str) -> Result<Vec<SecurityGroup>, CloudError> {
        Ok(self
            .lock()
            .groups
            .iter()
            .filter(|g| g.name == name)
            .map(|g| SecurityGroup {
                id: g.id.clone(),
                vpc_id: Some(g.vpc_id.clone()),
            })
            .collect())
    }

    async fn stop_instance(&self, id: &str, force: bool) -> Result<(), CloudError> {
        self.lock().stop_instance(id, force)
    }

    async fn run_instance(&self, request: &LaunchRequest) -> Result<Instance, CloudError> {
        self.lock().run_instance(request)
    }

    async fn start_instance(&self, id: &str) -> Result<(), CloudError> {
        self.lock().start_instance(id)
    }

    async fn terminate_instance(&self, id: &str) -> Result<(), CloudError> {
        self.lock().terminate_instance(id)
    }

    async fn user_data(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        let s = self.lock();
        let i = s.instance_index(Operation::DescribeInstanceAttribute, instance_id)?;
        Ok(s.instances[i].user_data.clone())
    }

    async fn cpu_credits(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        let s = self.lock();
        let i = s.instance_index(Operation::DescribeInstanceCreditSpecifications, instance_id)?;
        Ok(s.instances[i].cpu_credits.clone())
    }

    async fn disable_source_dest_check(&self, instance_id: &str) -> Result<(), CloudError> {
        self.lock().disable_source_dest_check(instance_id)
    }

    async fn disable_interface_source_dest_check(
        &self,
        interface_id: &str,
    ) -> Result<(), CloudError> {
        self.lock()
            .disable_interface_source_dest_check(interface_id)
    }

    async fn associate_address(
        &self,
        allocation_id: &str,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        self.lock().associate_address(allocation_id, instance_id)
    }

    async fn replace_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        self.lock()
            .replace_route(route_table_id, destination, instance_id)
    }

    async fn create_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        self.lock()
            .create_route(route_table_id, destination, instance_id)
    }

    async fn probe(&self, probe: Probe<'_>) -> Result<Permission, CloudError> {
        // The call on a copy of the world: EC2's checks, none of its effects.
        let mut scratch = self.lock().clone();
        let op = probe.operation();
        if scratch.denied.iter().any(|d| d == op.name()) {
            return Ok(Permission::Denied(format!(
                "UnauthorizedOperation: You are not authorized to perform this operation ({op})"
            )));
        }
        let checked = match probe {
            Probe::Stop(id) => scratch.stop_instance(id, false),
            Probe::Launch(r) => scratch.run_instance(r).map(|_| ()),
            Probe::DisableSourceDestCheck(id) => scratch.disable_source_dest_check(id),
            Probe::AssociateAddress {
                allocation_id,
                instance_id,
            } => scratch.associate_address(allocation_id, instance_id),
            Probe::ReplaceRoute {
                table,
                destination,
                target_id,
            } => scratch.replace_route(table, destination, target_id),
            Probe::CreateRoute {
                table,
                destination,
                target_id,
            } => scratch.create_route(table, destination, target_id),
            Probe::CreateImage(r) => scratch.create_image(r).map(|_| ()),
        };
        checked.map(|()| Permission::Allowed)
    }

    async fn alarms(&self, query: AlarmQuery<'_>) -> Result<Vec<Alarm>, CloudError> {
        let s = self.lock();
        Ok(s.alarms
            .iter()
            .filter(|a| match query {
                AlarmQuery::Named(name) => a.name == name,
                AlarmQuery::ForHealthCheck(id) => a.health_check_id.as_deref() == Some(id),
            })
            .cloned()
            .collect())
    }

    async fn health_check_status(
        &self,
        health_check_id: &str,
    ) -> Result<CheckerReport, CloudError> {
        let s = self.lock();
        let h = s.health_check(Operation::GetHealthCheckStatus, health_check_id)?;
        let statuses: Vec<&str> = h.statuses.iter().map(String::as_str).collect();
        Ok(CheckerReport::from_statuses(&statuses))
    }

    async fn health_check_port(&self, health_check_id: &str) -> Result<Option<u16>, CloudError> {
        let s = self.lock();
        Ok(s.health_check(Operation::GetHealthCheck, health_check_id)?
            .port)
    }

    async fn checker_ip_ranges(&self) -> Result<Vec<Cidr>, CloudError> {
        Ok(self.lock().checker_ranges.clone())
    }

    async fn security_group_ingress(
        &self,
        id_or_name: &str,
        vpc_id: Option<&str>,
    ) -> Result<Vec<GroupIngress>, CloudError> {
        let s = self.lock();
        // Filters, as the adapter uses: an unknown id lists nothing.
        Ok(s.groups
            .iter()
            .filter(|g| {
                if id_or_name.starts_with("sg-") {
                    g.id == id_or_name
                } else {
                    g.name == id_or_name && vpc_id.is_none_or(|v| g.vpc_id == v)
                }
            })
            .map(|g| s.group_ingress(g))
            .collect())
    }

    async fn authorize_ingress(
        &self,
        group_id: &str,
        port: u16,
        ranges: &[Cidr],
        description: &str,
    ) -> Result<(), CloudError> {
        self.lock()
            .authorize_ingress(group_id, port, ranges, description)
    }

    async fn revoke_ingress(
        &self,
        group_id: &str,
        rules: &[IngressRule],
    ) -> Result<(), CloudError> {
        self.lock().revoke_ingress(group_id, rules)
    }

    async fn a_records(&self, zone_id: &str, name: &str) -> Result<Vec<RecordSet>, CloudError> {
        let s = self.lock();
        let z = s.zone_index(Operation::ListResourceRecordSets, zone_id)?;
        Ok(s.zones[z]
            .records
            .iter()
            .filter(|r| same_dns_name(&r.name, name))
            .cloned()
            .collect())
    }

    async fn upsert_a_record(
        &self,
        zone_id: &str,
        name: &str,
        ttl: i64,
        address: &str,
    ) -> Result<(), CloudError> {
        self.lock().upsert_a_record(zone_id, name, ttl, address)
    }
}
