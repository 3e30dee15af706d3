//! The network an appliance lives in: VPCs, subnets, Elastic IPs, route
//! tables and their targets, and security groups with their ingress rules.

use super::{Cidr, Tag};

/// What a route target id names: EC2 ids say their kind (`eni-`, `i-`).
pub fn route_target_of(id: &str) -> RouteTarget {
    if id.starts_with("eni-") {
        RouteTarget::NetworkInterface(id.to_owned())
    } else {
        RouteTarget::Instance(id.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub allocation_id: String,
    pub public_ip: String,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub vpc_id: Option<String>,
}

/// Where a route sends its traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    Instance(String),
    NetworkInterface(String),
    /// Gateways, peering, NAT and the like: never ours to move.
    Other(String),
    None,
}

impl RouteTarget {
    /// The instance or interface id, the only targets an appliance can be.
    pub fn appliance_id(&self) -> Option<&str> {
        match self {
            RouteTarget::Instance(x) | RouteTarget::NetworkInterface(x) => Some(x),
            RouteTarget::Other(_) | RouteTarget::None => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Canonical text of the destination (as [`Cidr`] prints it).
    pub destination: String,
    pub target: RouteTarget,
    pub blackhole: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
    pub tags: Vec<Tag>,
}

impl RouteTable {
    pub fn route_to(&self, destination: &Cidr) -> Option<&Route> {
        let wanted = destination.to_string();
        self.routes.iter().find(|r| r.destination == wanted)
    }
}

/// One CIDR-sourced ingress rule of a security group (rules from other groups
/// or prefix lists are never ours, so they are not listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, `-1` (all), as EC2 reports it.
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidr: Cidr,
    pub description: Option<String>,
}

/// A security group with its CIDR ingress rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupIngress {
    pub id: String,
    pub name: String,
    pub vpc_id: Option<String>,
    pub rules: Vec<IngressRule>,
}
