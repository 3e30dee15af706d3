//! Dry runs: the mutating calls asked with `DryRun=true`, and EC2's answer.

use super::{Cidr, ImageRequest, LaunchRequest, Operation};

/// A mutating call asked with `DryRun=true`: would EC2 (IAM, SCPs, the
/// request's own validity) allow it? Nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe<'a> {
    Stop(&'a str),
    Launch(&'a LaunchRequest),
    DisableSourceDestCheck(&'a str),
    /// ModifyNetworkInterfaceAttribute: the primary interface of an instance
    /// with several, which is refused the instance attribute.
    DisableInterfaceSourceDestCheck(&'a str),
    /// `target`: the instance, or the interface an instance with several
    /// network interfaces must be given by.
    AssociateAddress {
        allocation_id: &'a str,
        target: &'a str,
    },
    /// `target_id`: the instance, or the interface a route of another leg
    /// (or of a multi-legged instance) must name.
    ReplaceRoute {
        table: &'a str,
        destination: &'a Cidr,
        target_id: &'a str,
    },
    CreateRoute {
        table: &'a str,
        destination: &'a Cidr,
        target_id: &'a str,
    },
    CreateImage(&'a ImageRequest),
}

impl Probe<'_> {
    /// The API operation, as IAM and the report name it.
    pub fn operation(&self) -> Operation {
        match self {
            Probe::Stop(_) => Operation::StopInstances,
            Probe::Launch(_) => Operation::RunInstances,
            Probe::DisableInterfaceSourceDestCheck(_) => Operation::ModifyNetworkInterfaceAttribute,
            Probe::DisableSourceDestCheck(_) => Operation::ModifyInstanceAttribute,
            Probe::AssociateAddress { .. } => Operation::AssociateAddress,
            Probe::ReplaceRoute { .. } => Operation::ReplaceRoute,
            Probe::CreateRoute { .. } => Operation::CreateRoute,
            Probe::CreateImage(_) => Operation::CreateImage,
        }
    }

    /// The resource the call acts on.
    pub fn target(&self) -> String {
        match self {
            Probe::Stop(id)
            | Probe::DisableSourceDestCheck(id)
            | Probe::DisableInterfaceSourceDestCheck(id) => (*id).to_owned(),
            Probe::Launch(r) => format!("{} {}", r.subnet_id, r.instance_type),
            Probe::AssociateAddress { allocation_id, .. } => (*allocation_id).to_owned(),
            Probe::ReplaceRoute {
                table, destination, ..
            }
            | Probe::CreateRoute {
                table, destination, ..
            } => format!("{table} {destination}"),
            Probe::CreateImage(r) => r.instance_id.clone(),
        }
    }
}

/// EC2's answer to a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// `DryRunOperation`: the call would have succeeded.
    Allowed,
    /// `UnauthorizedOperation`, with EC2's message (an encoded reason, when
    /// IAM gives one).
    Denied(String),
}
