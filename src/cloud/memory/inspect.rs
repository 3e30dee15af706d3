//! Looking at the world from a test: no side effects, and not a DescribeXxx
//! (nothing here counts as a look that moves a pending instance on).

use super::account::Account;
use super::records::SnapshotRec;
use super::{MemoryCloud, WorldView};
use crate::cloud::{Cidr, Image, IngressRule, Instance, RecordSet, RouteTarget, Snapshot};

impl MemoryCloud {
    /// Everything, comparable, without clocks.
    pub fn view(&self) -> WorldView {
        self.lock().view()
    }

    /// One instance as DescribeInstances would show it now, without counting
    /// as a look.
    pub fn peek_instance(&self, id: &str) -> Option<Instance> {
        let s = self.lock();
        s.instances
            .iter()
            .find(|i| i.id == id)
            .map(|r| s.describe_instance(r))
    }

    /// Every instance, terminated ones included, in launch order.
    pub fn all_instances(&self) -> Vec<Instance> {
        let s = self.lock();
        s.instances.iter().map(|r| s.describe_instance(r)).collect()
    }

    /// The instance the Elastic IP with this address is on.
    pub fn address_owner(&self, public_ip: &str) -> Option<String> {
        self.lock()
            .addresses
            .iter()
            .find(|a| a.public_ip == public_ip)
            .and_then(|a| a.instance_id.clone())
    }

    /// Where a route of a table points, if the table has it.
    pub fn route_target(&self, table_id: &str, destination: &Cidr) -> Option<RouteTarget> {
        self.lock()
            .tables
            .iter()
            .find(|t| t.id == table_id)?
            .routes
            .iter()
            .find(|(c, _)| c == destination)
            .map(|(_, t)| t.clone())
    }

    /// Every registered AMI (owned or not), as DescribeImages shows it.
    pub fn all_images(&self) -> Vec<Image> {
        self.lock()
            .images
            .iter()
            .map(Account::describe_image)
            .collect()
    }

    /// Every snapshot with its tags.
    pub fn all_snapshots(&self) -> Vec<Snapshot> {
        self.lock()
            .snapshots
            .iter()
            .map(SnapshotRec::view)
            .collect()
    }

    /// The CIDR ingress rules of a group, in the order they were added.
    pub fn ingress_rules(&self, group_id: &str) -> Vec<IngressRule> {
        self.lock()
            .groups
            .iter()
            .find(|g| g.id == group_id)
            .map(|g| g.rules.clone())
            .unwrap_or_default()
    }

    /// The record sets of a zone.
    pub fn records(&self, zone_id: &str) -> Vec<RecordSet> {
        let s = self.lock();
        let id = zone_id.trim_start_matches("/hostedzone/");
        s.zones
            .iter()
            .find(|z| z.id == id)
            .map(|z| z.records.clone())
            .unwrap_or_default()
    }
}
