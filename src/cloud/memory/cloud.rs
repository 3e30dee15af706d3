//! [`Cloud`] for the in-memory account: each call takes the world's lock and
//! calls the account's method of the same name (generated from the trait's
//! method list). The reads are here; the changes apply the account's rules in
//! the files named after their service.

use super::MemoryCloud;
use super::account::{Account, has_tag, named};
use super::records::SnapshotRec;
use crate::cloud::sdk::same_dns_name;
use crate::cloud::{
    Address, Alarm, AlarmQuery, CheckerReport, Cidr, Cloud, CloudError, GroupIngress, Image,
    ImageRequest, IngressRule, Instance, InstanceState, LaunchRequest, Operation, Permission,
    Probe, RecordSet, RouteTable, SecurityGroup, Snapshot, Subnet, TAG_CREATED_BY, Tag, Vpc,
};

/// `impl Cloud for MemoryCloud`: the account's method of the same name, under the lock.
macro_rules! memory_cloud {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty
        $(=> $op:ident($target:expr))?;)*) => {
        impl Cloud for MemoryCloud {
            $(async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, CloudError> {
                self.lock().$name($($arg),*)
            })*
        }
    };
}

cloud_methods!(memory_cloud);

/// The reads, and the dry run.
impl Account {
    pub(super) fn vpcs_named(&self, name: &str) -> Result<Vec<Vpc>, CloudError> {
        Ok(self
            .vpcs
            .iter()
            .filter(|v| named(&v.tags, name))
            .map(|v| Vpc { id: v.id.clone() })
            .collect())
    }

    pub(super) fn instances_named(&mut self, name: &str) -> Result<Vec<Instance>, CloudError> {
        self.tick_instances();
        let mut found = Vec::new();
        for i in 0..self.instances.len() {
            let r = &self.instances[i];
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
                self.instances[i].unlisted_looks -= 1;
                continue;
            }
            found.push(self.describe_instance(r));
        }
        Ok(found)
    }

    pub(super) fn instance(&mut self, id: &str) -> Result<Option<Instance>, CloudError> {
        self.tick_instances();
        Ok(self
            .instances
            .iter()
            .find(|i| i.id == id)
            .map(|r| self.describe_instance(r)))
    }

    pub(super) fn subnets_named(&self, names: &[String]) -> Result<Vec<Subnet>, CloudError> {
        Ok(self
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

    pub(super) fn route_tables_named(&self, name: &str) -> Result<Vec<RouteTable>, CloudError> {
        Ok(self
            .tables
            .iter()
            .filter(|t| named(&t.tags, name))
            .map(|t| self.describe_table(t))
            .collect())
    }

    pub(super) fn images_named(&mut self, name: &str) -> Result<Vec<Image>, CloudError> {
        self.tick_images();
        Ok(self
            .images
            .iter()
            .filter(|i| i.owned && i.state == "available" && named(&i.tags, name))
            .map(Account::describe_image)
            .collect())
    }

    pub(super) fn images_published(
        &mut self,
        owners: &[String],
        name: &str,
    ) -> Result<Vec<Image>, CloudError> {
        self.tick_images();
        Ok(self
            .images
            .iter()
            .filter(|i| i.state == "available" && i.name.starts_with(name))
            .filter(|i| i.publisher.as_ref().is_some_and(|p| owners.contains(p)))
            .map(Account::describe_image)
            .collect())
    }

    pub(super) fn tool_images(&mut self, name: &str) -> Result<Vec<Image>, CloudError> {
        self.tick_images();
        Ok(self
            .images
            .iter()
            .filter(|i| {
                i.owned
                    && named(&i.tags, name)
                    && has_tag(&i.tags, TAG_CREATED_BY, crate::cloud::CREATED_BY)
            })
            .map(Account::describe_image)
            .collect())
    }

    pub(super) fn tool_snapshots(&self, name: &str) -> Result<Vec<Snapshot>, CloudError> {
        Ok(self
            .snapshots
            .iter()
            .filter(|x| {
                named(&x.tags, name) && has_tag(&x.tags, TAG_CREATED_BY, crate::cloud::CREATED_BY)
            })
            .map(SnapshotRec::view)
            .collect())
    }

    pub(super) fn snapshots_by_id(&self, ids: &[String]) -> Result<Vec<Snapshot>, CloudError> {
        Ok(self
            .snapshots
            .iter()
            .filter(|x| ids.contains(&x.id))
            .map(SnapshotRec::view)
            .collect())
    }

    pub(super) fn ebs_encryption_by_default(&self) -> Result<bool, CloudError> {
        Ok(self.ebs_encryption_by_default)
    }

    pub(super) fn ebs_default_kms_key(&self) -> Result<String, CloudError> {
        Ok(self.default_volume_key().to_owned())
    }

    pub(super) fn address(&self, public_ip: &str) -> Result<Option<Address>, CloudError> {
        Ok(self
            .addresses
            .iter()
            .find(|a| a.public_ip == public_ip)
            .map(|a| Address {
                allocation_id: a.allocation_id.clone(),
                public_ip: a.public_ip.clone(),
                instance_id: a.instance_id.clone(),
                network_interface_id: a.eni.clone(),
            }))
    }

    pub(super) fn security_groups_named(
        &self,
        name: &str,
    ) -> Result<Vec<SecurityGroup>, CloudError> {
        Ok(self
            .groups
            .iter()
            .filter(|g| g.name == name)
            .map(|g| SecurityGroup {
                id: g.id.clone(),
                vpc_id: Some(g.vpc_id.clone()),
            })
            .collect())
    }

    pub(super) fn user_data(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        let i = self.instance_index(Operation::DescribeInstanceAttribute, instance_id)?;
        Ok(self.instances[i].user_data.clone())
    }

    pub(super) fn cpu_credits(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        let i =
            self.instance_index(Operation::DescribeInstanceCreditSpecifications, instance_id)?;
        Ok(self.instances[i].cpu_credits.clone())
    }

    pub(super) fn probe(&self, probe: Probe<'_>) -> Result<Permission, CloudError> {
        // The call on a copy of the world: EC2's checks, none of its effects.
        let mut scratch = self.clone();
        let op = probe.operation();
        if scratch.denied.iter().any(|d| d == op.name()) {
            return Ok(Permission::Denied(format!(
                "UnauthorizedOperation: You are not authorized to perform this operation ({op})"
            )));
        }
        let checked = match probe {
            Probe::Stop(id) => scratch.stop_instance(id, false),
            Probe::Launch(r) => scratch.run_instance(r).map(|_| ()),
            Probe::DisableInterfaceSourceDestCheck(eni) => {
                scratch.disable_interface_source_dest_check(eni)
            }
            Probe::DisableSourceDestCheck(id) => scratch.disable_source_dest_check(id),
            Probe::AssociateAddress {
                allocation_id,
                target,
            } => scratch.associate_address(allocation_id, target),
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

    pub(super) fn alarms(&self, query: AlarmQuery<'_>) -> Result<Vec<Alarm>, CloudError> {
        Ok(self
            .alarms
            .iter()
            .filter(|a| match query {
                AlarmQuery::Named(name) => a.name == name,
                AlarmQuery::ForHealthCheck(id) => a.health_check_id.as_deref() == Some(id),
            })
            .cloned()
            .collect())
    }

    pub(super) fn health_check_status(
        &self,
        health_check_id: &str,
    ) -> Result<CheckerReport, CloudError> {
        let h = self.health_check(Operation::GetHealthCheckStatus, health_check_id)?;
        let statuses: Vec<&str> = h.statuses.iter().map(String::as_str).collect();
        Ok(CheckerReport::from_statuses(&statuses))
    }

    pub(super) fn health_check_port(
        &self,
        health_check_id: &str,
    ) -> Result<Option<u16>, CloudError> {
        Ok(self
            .health_check(Operation::GetHealthCheck, health_check_id)?
            .port)
    }

    pub(super) fn checker_ip_ranges(&self) -> Result<Vec<Cidr>, CloudError> {
        Ok(self.checker_ranges.clone())
    }

    pub(super) fn security_group_ingress(
        &self,
        id_or_name: &str,
        vpc_id: Option<&str>,
    ) -> Result<Vec<GroupIngress>, CloudError> {
        // Filters, as the adapter uses: an unknown id lists nothing.
        Ok(self
            .groups
            .iter()
            .filter(|g| {
                if id_or_name.starts_with("sg-") {
                    g.id == id_or_name
                } else {
                    g.name == id_or_name && vpc_id.is_none_or(|v| g.vpc_id == v)
                }
            })
            .map(|g| self.group_ingress(g))
            .collect())
    }

    pub(super) fn a_records(
        &self,
        zone_id: &str,
        name: &str,
    ) -> Result<Vec<RecordSet>, CloudError> {
        let z = self.zone_index(Operation::ListResourceRecordSets, zone_id)?;
        Ok(self.zones[z]
            .records
            .iter()
            .filter(|r| same_dns_name(&r.name, name))
            .cloned()
            .collect())
    }
}
