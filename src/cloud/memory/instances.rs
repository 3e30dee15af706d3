//! An instance's life: how DescribeInstances sees it, and the stop, start and
//! terminate state changes EC2 allows.

use std::net::Ipv4Addr;

use super::account::{Account, err};
use super::network::describe_leg;
use super::records::InstanceRec;
use crate::cloud::{Cidr, CloudError, Instance, InstanceState, Operation, current_stop_request};

impl Account {
    /// A private address of the subnet for a new instance.
    pub(super) fn private_ip(&mut self, subnet: usize) -> String {
        let s = &mut self.subnets[subnet];
        let host = s.next_host;
        s.next_host += 1;
        match s.cidr {
            Cidr::V4 { network, .. } => Ipv4Addr::from(u32::from(network) + host).to_string(),
            // IPv6-only subnets are not modelled; give a placeholder.
            Cidr::V6 { .. } => format!("10.255.255.{}", host % 250),
        }
    }

    /// DescribeInstances: pending instances whose looks are used up are running,
    /// or terminated with their StateReason when EC2 could not launch them;
    /// stopping ones whose stop has taken its time are stopped.
    pub(super) fn tick_instances(&mut self) {
        let now = self.now();
        for i in &mut self.instances {
            if i.state == InstanceState::Stopping && i.stop_ends.is_some_and(|end| end <= now) {
                i.state = InstanceState::Stopped;
            }
            i.stale.now = i.stale.looks > 0;
            if i.stale.now {
                i.stale.looks -= 1;
                continue;
            }
            if i.state == InstanceState::Pending {
                if i.pending_looks > 0 {
                    i.pending_looks -= 1;
                } else if i.state_reason.is_some() {
                    i.state = InstanceState::Terminated;
                } else {
                    i.state = InstanceState::Running;
                }
            }
        }
    }

    pub(super) fn describe_instance(&self, r: &InstanceRec) -> Instance {
        let gone = matches!(
            r.state,
            InstanceState::Terminated | InstanceState::ShuttingDown
        );
        let eip = self
            .addresses
            .iter()
            .find(|a| a.instance_id.as_deref() == Some(r.id.as_str()))
            .map(|a| a.public_ip.clone());
        let own = r
            .own_public_ip
            .clone()
            .filter(|_| r.state == InstanceState::Running);
        Instance {
            id: r.id.clone(),
            // Right after a start, EC2 may still answer the state before it.
            state: if r.stale.now {
                InstanceState::Stopped
            } else {
                r.state
            },
            availability_zone: r.availability_zone.clone(),
            subnet_id: Some(r.subnet_id.clone()),
            vpc_id: Some(r.vpc_id.clone()),
            instance_type: r.instance_type.clone(),
            image_id: r.image_id.clone(),
            key_name: r.key_name.clone(),
            iam_instance_profile_arn: r.iam_instance_profile_arn.clone(),
            security_group_ids: r.security_group_ids.clone(),
            network_interface_ids: if gone {
                Vec::new()
            } else {
                std::iter::once(r.eni.clone())
                    .chain(r.legs.iter().map(|l| l.id.clone()))
                    .collect()
            },
            private_ip: (!gone).then(|| r.private_ip.clone()),
            public_ip: eip.or(own),
            source_dest_check: Some(r.source_dest_check),
            launch_time: Some(r.launch_time),
            first_launch: Some(r.first_launch),
            state_reason: r.state_reason.clone(),
            stop_requested: current_stop_request(r.state, &r.transition_reason),
            tags: r.tags.clone(),
            metadata_options: Some(r.metadata_options.clone()),
            ebs_optimized: Some(r.ebs_optimized),
            secondary_interfaces: if gone {
                Vec::new()
            } else {
                r.legs.iter().map(describe_leg).collect()
            },
            client_token: r.client_token.clone(),
        }
    }

    /// StopInstances: a running (or pending) instance is `stopping` for the
    /// time a stop takes, then `stopped`, and its transition reason says when
    /// the stop was asked; a stuck one stays `stopping`; `Force` ends a stop
    /// under way at once. Asking again does not restart the stop's time.
    pub(super) fn stop_instance(&mut self, id: &str, force: bool) -> Result<(), CloudError> {
        const OP: Operation = Operation::StopInstances;
        let i = self.instance_index(OP, id)?;
        let stuck = self.stuck_stopping.iter().any(|s| s == id);
        let now = self.now();
        let takes = self.stop_takes;
        let r = &mut self.instances[i];
        match r.state {
            InstanceState::Pending | InstanceState::Running => {
                r.state = InstanceState::Stopping;
                r.transition_reason =
                    format!("User initiated ({})", now.format("%Y-%m-%d %H:%M:%S GMT"));
                r.stop_ends = (!stuck).then(|| now + takes);
            }
            InstanceState::Stopping | InstanceState::Stopped => {}
            other => {
                return Err(err(
                    OP,
                    "IncorrectInstanceState",
                    format!(
                        "This instance '{id}' is not in a state from which it can be stopped ({}).",
                        other.as_str()
                    ),
                ));
            }
        }
        if force {
            r.stop_ends = Some(now);
        }
        if r.state == InstanceState::Stopping && r.stop_ends.is_some_and(|end| end <= now) {
            r.state = InstanceState::Stopped;
        }
        Ok(())
    }

    /// StartInstances: a stopped instance is `pending` for a look, then
    /// `running`; one already up is left as it is, as EC2 does. The first
    /// looks after it may still read `stopped` (`set_stale_start_looks`).
    pub(super) fn start_instance(&mut self, id: &str) -> Result<(), CloudError> {
        const OP: Operation = Operation::StartInstances;
        let i = self.instance_index(OP, id)?;
        let now = self.now();
        let stale = self.stale_start_looks;
        let r = &mut self.instances[i];
        match r.state {
            InstanceState::Stopped => {
                r.state = InstanceState::Pending;
                r.pending_looks = 1;
                r.stale.looks = stale;
                r.launch_time = now;
                r.transition_reason.clear();
                Ok(())
            }
            InstanceState::Pending | InstanceState::Running => Ok(()),
            other => Err(err(
                OP,
                "IncorrectInstanceState",
                format!(
                    "The instance '{id}' is not in a state from which it can be started ({}).",
                    other.as_str()
                ),
            )),
        }
    }

    /// TerminateInstances: gone at once (EC2 passes through `shutting-down`),
    /// its floating IP released from it.
    pub(super) fn terminate_instance(&mut self, id: &str) -> Result<(), CloudError> {
        let i = self.instance_index(Operation::TerminateInstances, id)?;
        self.instances[i].state = InstanceState::Terminated;
        for a in &mut self.addresses {
            if a.instance_id.as_deref() == Some(id) {
                a.instance_id = None;
                a.eni = None;
            }
        }
        Ok(())
    }
}
