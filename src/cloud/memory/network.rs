//! The network rules: interfaces (ENIs) and their source/dest check, Elastic
//! IPs, route tables and their blackholes, and security group ingress.

use super::account::{Account, err};
use super::records::{GroupRec, InstanceRec, LegRec, TableRec};
use crate::cloud::{
    Cidr, CloudError, GroupIngress, IngressRule, InstanceState, Interface, Operation, Route,
    RouteTable, RouteTarget, route_target_of,
};

pub(super) fn describe_leg(l: &LegRec) -> Interface {
    Interface {
        id: l.id.clone(),
        device_index: l.device_index,
        subnet_id: l.subnet_id.clone(),
        security_group_ids: l.groups.clone(),
        source_dest_check: Some(l.source_dest_check),
    }
}

pub(super) fn rule_key(r: &IngressRule) -> (&str, Option<i32>, Option<i32>, Cidr) {
    (r.protocol.as_str(), r.from_port, r.to_port, r.cidr)
}

pub(super) fn is_v6(c: &Cidr) -> bool {
    matches!(c, Cidr::V6 { .. })
}

impl Account {
    /// A route is a blackhole when its instance or interface is gone.
    pub(super) fn blackhole(&self, target: &RouteTarget) -> bool {
        let alive = |i: &InstanceRec| {
            !matches!(
                i.state,
                InstanceState::Terminated | InstanceState::ShuttingDown
            )
        };
        match target {
            RouteTarget::Instance(id) => !self.instances.iter().any(|i| i.id == *id && alive(i)),
            RouteTarget::NetworkInterface(eni) => !self
                .instances
                .iter()
                .any(|i| (i.eni == *eni || i.legs.iter().any(|l| l.id == *eni)) && alive(i)),
            RouteTarget::Other(_) | RouteTarget::None => false,
        }
    }

    pub(super) fn describe_table(&self, t: &TableRec) -> RouteTable {
        RouteTable {
            id: t.id.clone(),
            vpc_id: t.vpc_id.clone(),
            routes: t
                .routes
                .iter()
                .map(|(c, target)| Route {
                    destination: c.to_string(),
                    target: target.clone(),
                    blackhole: self.blackhole(target),
                })
                .collect(),
            tags: t.tags.clone(),
        }
    }

    /// New interfaces at the given device indexes: (device, subnet, groups).
    pub(super) fn new_legs(&mut self, legs: Vec<(i32, String, Vec<String>)>) -> Vec<LegRec> {
        legs.into_iter()
            .map(|(device_index, subnet_id, groups)| LegRec {
                id: self.new_id("eni"),
                device_index,
                subnet_id,
                groups,
                source_dest_check: true,
            })
            .collect()
    }

    /// The instance an interface (primary or leg) is attached to.
    pub(super) fn interface_owner(
        &self,
        operation: Operation,
        eni: &str,
    ) -> Result<usize, CloudError> {
        self.instances
            .iter()
            .position(|i| i.eni == eni || i.legs.iter().any(|l| l.id == eni))
            .ok_or_else(|| {
                err(
                    operation,
                    "InvalidNetworkInterfaceID.NotFound",
                    format!("The networkInterface ID '{eni}' does not exist"),
                )
            })
    }

    pub(super) fn disable_interface_source_dest_check(
        &mut self,
        eni: &str,
    ) -> Result<(), CloudError> {
        const OP: Operation = Operation::ModifyNetworkInterfaceAttribute;
        let i = self.interface_owner(OP, eni)?;
        let r = &mut self.instances[i];
        match r.legs.iter_mut().find(|l| l.id == eni) {
            Some(leg) => leg.source_dest_check = false,
            None => r.source_dest_check = false,
        }
        Ok(())
    }

    pub(super) fn disable_source_dest_check(&mut self, id: &str) -> Result<(), CloudError> {
        const OP: Operation = Operation::ModifyInstanceAttribute;
        let i = self.one_interface(OP, id)?;
        let r = &mut self.instances[i];
        if matches!(
            r.state,
            InstanceState::Terminated | InstanceState::ShuttingDown
        ) {
            return Err(err(
                OP,
                "IncorrectInstanceState",
                format!("The instance '{id}' is {}", r.state.as_str()),
            ));
        }
        r.source_dest_check = false;
        Ok(())
    }

    /// AssociateAddress by instance (`i-...`, one interface only, as EC2
    /// requires) or by interface (`eni-...`). AllowReassociation: it leaves
    /// whatever it was on.
    pub(super) fn associate_address(
        &mut self,
        allocation_id: &str,
        target: &str,
    ) -> Result<(), CloudError> {
        const OP: Operation = Operation::AssociateAddress;
        let a = self
            .addresses
            .iter()
            .position(|x| x.allocation_id == allocation_id)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidAllocationID.NotFound",
                    format!("The allocation ID '{allocation_id}' does not exist"),
                )
            })?;
        let (i, by_interface) = match route_target_of(target) {
            RouteTarget::NetworkInterface(eni) => (self.interface_owner(OP, &eni)?, Some(eni)),
            _ => (self.one_interface(OP, target)?, None),
        };
        let r = &self.instances[i];
        if matches!(
            r.state,
            InstanceState::Pending | InstanceState::ShuttingDown | InstanceState::Terminated
        ) {
            return Err(err(
                OP,
                "IncorrectInstanceState",
                format!(
                    "The {} instance '{}' is not in a valid state for this operation.",
                    r.state.as_str(),
                    r.id
                ),
            ));
        }
        let eni = by_interface.unwrap_or_else(|| r.eni.clone());
        let (id, address) = (r.id.clone(), &mut self.addresses[a]);
        address.instance_id = Some(id);
        address.eni = Some(eni);
        Ok(())
    }

    /// The instance `id`, which must have a single network interface: EC2
    /// refuses instance-level address and attribute calls on one with
    /// several ("Please specify an interface ID").
    pub(super) fn one_interface(
        &self,
        operation: Operation,
        id: &str,
    ) -> Result<usize, CloudError> {
        let i = self.instance_index(operation, id)?;
        if !self.instances[i].legs.is_empty() {
            return Err(err(
                operation,
                "InvalidInstanceID",
                format!(
                    "There are multiple interfaces attached to instance '{id}'. Please specify an interface ID for the operation instead."
                ),
            ));
        }
        Ok(i)
    }

    pub(super) fn route_target_instance(
        &self,
        operation: Operation,
        table: usize,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        let i = if instance_id.starts_with("eni-") {
            self.interface_owner(operation, instance_id)?
        } else {
            self.one_interface(operation, instance_id)?
        };
        let t = &self.tables[table];
        if self.instances[i].vpc_id != t.vpc_id {
            return Err(err(
                operation,
                "InvalidParameterValue",
                format!(
                    "The instance {instance_id} and route table {} belong to different networks",
                    t.id
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn replace_route(
        &mut self,
        table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        const OP: Operation = Operation::ReplaceRoute;
        let t = self.table_index(OP, table_id)?;
        self.route_target_instance(OP, t, instance_id)?;
        let route = self.tables[t]
            .routes
            .iter_mut()
            .find(|(c, _)| c == destination)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidRoute.NotFound",
                    format!(
                        "There is no route defined for '{destination}' in the route table. Use {} instead.",
                        Operation::CreateRoute
                    ),
                )
            })?;
        route.1 = route_target_of(instance_id);
        Ok(())
    }

    pub(super) fn create_route(
        &mut self,
        table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        const OP: Operation = Operation::CreateRoute;
        let t = self.table_index(OP, table_id)?;
        self.route_target_instance(OP, t, instance_id)?;
        if self.tables[t].routes.iter().any(|(c, _)| c == destination) {
            return Err(err(
                OP,
                "RouteAlreadyExists",
                format!("The route identified by {destination} already exists."),
            ));
        }
        self.tables[t]
            .routes
            .push((*destination, route_target_of(instance_id)));
        Ok(())
    }

    pub(super) fn group_ingress(&self, g: &GroupRec) -> GroupIngress {
        GroupIngress {
            id: g.id.clone(),
            name: g.name.clone(),
            vpc_id: Some(g.vpc_id.clone()),
            rules: g.rules.clone(),
        }
    }

    pub(super) fn authorize_ingress(
        &mut self,
        group_id: &str,
        port: u16,
        ranges: &[Cidr],
        description: &str,
    ) -> Result<(), CloudError> {
        const OP: Operation = Operation::AuthorizeSecurityGroupIngress;
        let g = self.group_index(OP, group_id)?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c);
        if description.len() > 255 || !description.chars().all(allowed) {
            return Err(err(
                OP,
                "InvalidParameterValue",
                format!("Invalid rule description {description:?}"),
            ));
        }
        let new: Vec<IngressRule> = ranges
            .iter()
            .map(|c| IngressRule {
                protocol: "tcp".to_owned(),
                from_port: Some(i32::from(port)),
                to_port: Some(i32::from(port)),
                cidr: *c,
                description: Some(description.to_owned()),
            })
            .collect();
        let group = &self.groups[g];
        for (n, rule) in new.iter().enumerate() {
            let again = new[..n].iter().any(|r| rule_key(r) == rule_key(rule));
            if again || group.rules.iter().any(|r| rule_key(r) == rule_key(rule)) {
                return Err(err(
                    OP,
                    "InvalidPermission.Duplicate",
                    format!(
                        "the specified rule \"peer: {}, TCP, from port: {port}, to port: {port}, ALLOW\" already exists",
                        rule.cidr
                    ),
                ));
            }
        }
        for v6 in [false, true] {
            let count =
                |rules: &[IngressRule]| rules.iter().filter(|r| is_v6(&r.cidr) == v6).count();
            if count(&group.rules) + count(&new) > self.rule_limit {
                return Err(err(
                    OP,
                    "RulesPerSecurityGroupLimitExceeded",
                    "The maximum number of rules per security group has been reached.",
                ));
            }
        }
        self.groups[g].rules.extend(new);
        Ok(())
    }

    pub(super) fn revoke_ingress(
        &mut self,
        group_id: &str,
        rules: &[IngressRule],
    ) -> Result<(), CloudError> {
        const OP: Operation = Operation::RevokeSecurityGroupIngress;
        let g = self.group_index(OP, group_id)?;
        let group = &self.groups[g];
        // A non-default VPC refuses the whole request if one rule is not there.
        if let Some(missing) = rules
            .iter()
            .find(|r| !group.rules.iter().any(|x| rule_key(x) == rule_key(r)))
        {
            return Err(err(
                OP,
                "InvalidPermission.NotFound",
                format!(
                    "The specified rule does not exist in this security group: {} {} {:?}-{:?}",
                    missing.cidr, missing.protocol, missing.from_port, missing.to_port
                ),
            ));
        }
        self.groups[g]
            .rules
            .retain(|x| !rules.iter().any(|r| rule_key(x) == rule_key(r)));
        Ok(())
    }
}
