//! The world as a test compares it: every observable record in a sorted,
//! clock-free form, so two worlds that went through the same changes are equal.

use super::account::{Account, sorted_tags};
use crate::cloud::{InstanceState, RouteTarget};

/// Everything observable in the world, in a comparable form without clocks:
/// two worlds that went through the same changes compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldView {
    pub instances: Vec<InstanceView>,
    pub addresses: Vec<AddressView>,
    pub routes: Vec<RouteView>,
    pub images: Vec<ImageView>,
    pub snapshots: Vec<SnapshotView>,
    pub groups: Vec<GroupView>,
    pub records: Vec<RecordView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub availability_zone: String,
    pub state: InstanceState,
    pub instance_type: String,
    pub image_id: Option<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    /// Sorted.
    pub security_group_ids: Vec<String>,
    pub source_dest_check: bool,
    /// Sorted (key, value).
    pub tags: Vec<(String, String)>,
}

impl InstanceView {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressView {
    pub public_ip: String,
    pub allocation_id: String,
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    pub table: String,
    pub vpc_id: String,
    pub destination: String,
    pub target: RouteTarget,
    pub blackhole: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageView {
    pub id: String,
    pub name: String,
    pub state: String,
    pub tags: Vec<(String, String)>,
    pub snapshot_ids: Vec<String>,
}

impl ImageView {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotView {
    pub id: String,
    pub tags: Vec<(String, String)>,
}

impl SnapshotView {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One ingress rule as (protocol, from, to, cidr, description), sorted per group.
pub type RuleView = (String, Option<i32>, Option<i32>, String, Option<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub rules: Vec<RuleView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub zone_id: String,
    pub name: String,
    pub set_identifier: Option<String>,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    pub alias: bool,
}

impl WorldView {
    pub fn instance(&self, id: &str) -> Option<&InstanceView> {
        self.instances.iter().find(|i| i.id == id)
    }

    /// Instances tagged `Name=name`, terminated ones included.
    pub fn named(&self, name: &str) -> Vec<&InstanceView> {
        self.instances
            .iter()
            .filter(|i| i.tag("Name") == Some(name))
            .collect()
    }

    /// The instance the address with this public IP is associated with.
    pub fn address_owner(&self, public_ip: &str) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.public_ip == public_ip)
            .and_then(|a| a.instance_id.as_deref())
    }

    pub fn route(&self, table: &str, destination: &str) -> Option<&RouteView> {
        self.routes
            .iter()
            .find(|r| r.table == table && r.destination == destination)
    }

    pub fn image(&self, id: &str) -> Option<&ImageView> {
        self.images.iter().find(|i| i.id == id)
    }

    pub fn snapshot(&self, id: &str) -> Option<&SnapshotView> {
        self.snapshots.iter().find(|s| s.id == id)
    }

    pub fn group(&self, id: &str) -> Option<&GroupView> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The part of the world inside one VPC: its instances, routes, security
    /// groups and the addresses on its instances.
    pub fn vpc_part(&self, vpc_id: &str) -> WorldView {
        let instances: Vec<InstanceView> = self
            .instances
            .iter()
            .filter(|i| i.vpc_id == vpc_id)
            .cloned()
            .collect();
        let addresses = self
            .addresses
            .iter()
            .filter(|a| {
                a.instance_id
                    .as_deref()
                    .is_some_and(|id| instances.iter().any(|i| i.id == id))
            })
            .cloned()
            .collect();
        WorldView {
            addresses,
            routes: self
                .routes
                .iter()
                .filter(|r| r.vpc_id == vpc_id)
                .cloned()
                .collect(),
            groups: self
                .groups
                .iter()
                .filter(|g| g.vpc_id == vpc_id)
                .cloned()
                .collect(),
            instances,
            images: Vec::new(),
            snapshots: Vec::new(),
            records: Vec::new(),
        }
    }
}

impl Account {
    pub(super) fn view(&self) -> WorldView {
        let (instances, addresses, routes) = self.network_view();
        let (images, snapshots) = self.storage_view();
        let (groups, records) = self.access_view();
        WorldView {
            instances,
            addresses,
            routes,
            images,
            snapshots,
            groups,
            records,
        }
    }

    pub(super) fn network_view(&self) -> (Vec<InstanceView>, Vec<AddressView>, Vec<RouteView>) {
        let mut instances: Vec<InstanceView> = self
            .instances
            .iter()
            .map(|r| {
                let mut security_group_ids = r.security_group_ids.clone();
                security_group_ids.sort();
                InstanceView {
                    id: r.id.clone(),
                    vpc_id: r.vpc_id.clone(),
                    subnet_id: r.subnet_id.clone(),
                    availability_zone: r.availability_zone.clone(),
                    state: r.state,
                    instance_type: r.instance_type.clone(),
                    image_id: r.image_id.clone(),
                    key_name: r.key_name.clone(),
                    iam_instance_profile_arn: r.iam_instance_profile_arn.clone(),
                    security_group_ids,
                    source_dest_check: r.source_dest_check,
                    tags: sorted_tags(&r.tags),
                }
            })
            .collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        let mut addresses: Vec<AddressView> = self
            .addresses
            .iter()
            .map(|a| AddressView {
                public_ip: a.public_ip.clone(),
                allocation_id: a.allocation_id.clone(),
                instance_id: a.instance_id.clone(),
            })
            .collect();
        addresses.sort_by(|a, b| a.public_ip.cmp(&b.public_ip));
        let mut routes: Vec<RouteView> = self
            .tables
            .iter()
            .flat_map(|t| {
                t.routes.iter().map(|(c, target)| RouteView {
                    table: t.id.clone(),
                    vpc_id: t.vpc_id.clone(),
                    destination: c.to_string(),
                    target: target.clone(),
                    blackhole: self.blackhole(target),
                })
            })
            .collect();
        routes.sort_by(|a, b| (&a.table, &a.destination).cmp(&(&b.table, &b.destination)));
        (instances, addresses, routes)
    }

    pub(super) fn storage_view(&self) -> (Vec<ImageView>, Vec<SnapshotView>) {
        let mut images: Vec<ImageView> = self
            .images
            .iter()
            .map(|i| ImageView {
                id: i.id.clone(),
                name: i.name.clone(),
                state: i.state.clone(),
                tags: sorted_tags(&i.tags),
                snapshot_ids: i.snapshot_ids.clone(),
            })
            .collect();
        images.sort_by(|a, b| a.id.cmp(&b.id));
        let mut snapshots: Vec<SnapshotView> = self
            .snapshots
            .iter()
            .map(|s| SnapshotView {
                id: s.id.clone(),
                tags: sorted_tags(&s.tags),
            })
            .collect();
        snapshots.sort_by(|a, b| a.id.cmp(&b.id));
        (images, snapshots)
    }

    pub(super) fn access_view(&self) -> (Vec<GroupView>, Vec<RecordView>) {
        let mut groups: Vec<GroupView> = self
            .groups
            .iter()
            .map(|g| {
                let mut rules: Vec<RuleView> = g
                    .rules
                    .iter()
                    .map(|r| {
                        (
                            r.protocol.clone(),
                            r.from_port,
                            r.to_port,
                            r.cidr.to_string(),
                            r.description.clone(),
                        )
                    })
                    .collect();
                rules.sort();
                GroupView {
                    id: g.id.clone(),
                    name: g.name.clone(),
                    vpc_id: g.vpc_id.clone(),
                    rules,
                }
            })
            .collect();
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        let mut records: Vec<RecordView> = self
            .zones
            .iter()
            .flat_map(|z| {
                z.records.iter().map(|r| RecordView {
                    zone_id: z.id.clone(),
                    name: r.name.clone(),
                    set_identifier: r.set_identifier.clone(),
                    ttl: r.ttl,
                    values: r.values.clone(),
                    alias: r.alias,
                })
            })
            .collect();
        records.sort_by(|a, b| {
            (&a.zone_id, &a.name, &a.set_identifier).cmp(&(&b.zone_id, &b.name, &b.set_identifier))
        });
        (groups, records)
    }
}
