//! The network steps after the launch: the floating IP, the managed routes
//! and the source/dest check, each decided against what the world holds.

use crate::cloud::{Address, Cidr, Instance, Route, RouteTarget};
use crate::engine::{Change, Decision, PlannedStep, Step};

fn target_text(t: &RouteTarget) -> String {
    match t {
        RouteTarget::Instance(x) | RouteTarget::NetworkInterface(x) | RouteTarget::Other(x) => {
            x.clone()
        }
        RouteTarget::None => "nothing".to_owned(),
    }
}

/// Decides one managed route. A route moves to the replacement when it points
/// at another instance of this appliance (the failed one or an earlier one), at
/// the failed instance's id even if it is gone, or is a blackhole; a missing
/// route is created. Any other target was set by someone else and stays.
pub fn route_decision(
    table: &str,
    destination: &Cidr,
    route: Option<&Route>,
    appliance: &[Instance],
    failed_id: Option<&str>,
    (replacement, current): (&str, Option<&Instance>),
) -> Decision {
    let replacement_instance = current.or_else(|| appliance.iter().find(|i| i.id == replacement));
    let Some(route) = route else {
        return Decision::Make(Change::CreateRoute {
            table: table.to_owned(),
            destination: *destination,
            to: route_target_for(None, appliance, replacement_instance, replacement),
        });
    };
    let target = route.target.appliance_id();
    let on_replacement = target.is_some_and(|t| {
        t == replacement || replacement_instance.is_some_and(|r| r.owns_target(t))
    });
    if on_replacement && !route.blackhole {
        return Decision::AlreadyDone(format!(
            "{table} {destination} already points at {replacement}"
        ));
    }
    let ours = route.blackhole
        || on_replacement
        || target.is_some_and(|t| {
            Some(t) == failed_id
                || appliance
                    .iter()
                    .any(|i| i.id != replacement && i.owns_target(t))
        });
    if ours {
        Decision::Make(Change::ReplaceRoute {
            table: table.to_owned(),
            destination: *destination,
            from: format!(
                "{}{}",
                target_text(&route.target),
                if route.blackhole { " (blackhole)" } else { "" }
            ),
            to: route_target_for(target, appliance, replacement_instance, replacement),
        })
    } else {
        Decision::LeaveAlone(format!(
            "{table} {destination} points at {}, which is not an instance of this appliance; left alone",
            target_text(&route.target)
        ))
    }
}

/// Where a route of the appliance goes: to the replacement, or, when it
/// pointed at another leg's interface (device 1, 2...: the LAN side of a
/// two-legged gateway), to the replacement's interface of that device. EC2
/// refuses a route to an instance with several interfaces, so a route of the
/// primary leg then names the replacement's primary interface.
pub fn route_target_for(
    target: Option<&str>,
    appliance: &[Instance],
    replacement_instance: Option<&Instance>,
    replacement: &str,
) -> String {
    let leg = target.and_then(|t| {
        appliance
            .iter()
            .flat_map(|i| &i.secondary_interfaces)
            .find(|l| l.id == t)
    });
    let device = leg.map_or(0, |l| l.device_index);
    let interface = replacement_instance
        .filter(|r| r.has_several_interfaces())
        .map(|r| r.interface_at(device));
    match (interface, device) {
        (None, 0) => replacement.to_owned(),
        (Some(Some(id)), _) => id.to_owned(),
        _ => format!("{replacement}'s device-{device} interface"),
    }
}

/// The floating IP moves to the replacement. With one interface EC2 takes
/// the instance; with several it wants the interface named, and it is the
/// one at the device index that held the address on the appliance (the WAN
/// leg of a two-legged gateway keeps the public address). The address goes to
/// that interface's primary private IP, as EC2 does when none is named.
pub(super) fn floating_ip_decision(
    address: &Address,
    appliance: &[Instance],
    (replacement, current): (&str, Option<&Instance>),
) -> Decision {
    let device = address
        .network_interface_id
        .as_deref()
        .and_then(|eni| appliance.iter().find_map(|i| i.device_of(eni)))
        .unwrap_or(0);
    let interface = current
        .filter(|r| r.has_several_interfaces())
        .and_then(|r| r.interface_at(device))
        .map(str::to_owned);
    let on_it = address.instance_id.as_deref() == Some(replacement)
        && interface
            .as_ref()
            .is_none_or(|i| address.network_interface_id.as_ref() == Some(i));
    if on_it {
        return Decision::AlreadyDone(format!("{} is on {replacement}", address.public_ip));
    }
    Decision::Make(Change::MoveFloatingIp {
        allocation_id: address.allocation_id.clone(),
        public_ip: address.public_ip.clone(),
        from: address.instance_id.clone(),
        to: replacement.to_owned(),
        interface,
    })
}

/// Source/dest check off on the replacement's primary interface and on each
/// of its other legs, which forward traffic too. With one interface the
/// instance attribute is the primary's; with several EC2 refuses the instance
/// attribute, so every leg goes by its interface.
pub fn source_dest_steps(replacement: &str, current: Option<&Instance>) -> Vec<PlannedStep> {
    let by_interface = current
        .filter(|c| c.has_several_interfaces())
        .and_then(|c| c.interface_at(0));
    let primary = match (current.and_then(|i| i.source_dest_check), by_interface) {
        (Some(false), _) => {
            Decision::AlreadyDone(format!("source/dest check is already off on {replacement}"))
        }
        (_, Some(interface)) => Decision::Make(Change::DisableInterfaceSourceDestCheck {
            interface: interface.to_owned(),
        }),
        (_, None) => Decision::Make(Change::DisableSourceDestCheck {
            instance: replacement.to_owned(),
        }),
    };
    let legs = current.map_or(&[][..], |c| &c.secondary_interfaces[..]);
    let legs = legs.iter().map(|leg| {
        let decision = match leg.source_dest_check {
            Some(false) => {
                Decision::AlreadyDone(format!("source/dest check is already off on {}", leg.id))
            }
            _ => Decision::Make(Change::DisableInterfaceSourceDestCheck {
                interface: leg.id.clone(),
            }),
        };
        PlannedStep::on(Step::SourceDestCheck, leg.id.clone(), decision)
    });
    std::iter::once(PlannedStep::new(Step::SourceDestCheck, primary))
        .chain(legs)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::InstanceState;
    use crate::test_fixtures::instance;

    #[test]
    fn routes_move_only_when_they_point_at_the_appliance() {
        let cidr: Cidr = "10.242.2.0/24".parse().unwrap();
        let appliance = vec![
            instance("i-old", InstanceState::Stopped, "ap-northeast-1a"),
            instance("i-new", InstanceState::Running, "ap-northeast-1c"),
        ];
        let decide = |target: RouteTarget, blackhole: bool| {
            let r = Route {
                destination: cidr.to_string(),
                target,
                blackhole,
            };
            route_decision(
                "rtb-1",
                &cidr,
                Some(&r),
                &appliance,
                Some("i-old"),
                ("i-new", None),
            )
        };
        assert!(matches!(
            decide(RouteTarget::Instance("i-old".into()), false),
            Decision::Make(Change::ReplaceRoute { .. })
        ));
        assert!(matches!(
            decide(RouteTarget::NetworkInterface("eni-i-old".into()), false),
            Decision::Make(Change::ReplaceRoute { .. })
        ));
        assert!(matches!(
            decide(RouteTarget::Instance("i-gone".into()), true),
            Decision::Make(Change::ReplaceRoute { .. })
        ));
        assert!(matches!(
            decide(RouteTarget::Instance("i-new".into()), false),
            Decision::AlreadyDone(_)
        ));
        assert!(matches!(
            decide(RouteTarget::NetworkInterface("eni-i-new".into()), false),
            Decision::AlreadyDone(_)
        ));
        assert!(matches!(
            decide(RouteTarget::Other("igw-1".into()), false),
            Decision::LeaveAlone(_)
        ));
        assert!(matches!(
            decide(RouteTarget::Instance("i-someone-else".into()), false),
            Decision::LeaveAlone(_)
        ));
        assert!(matches!(
            route_decision(
                "rtb-1",
                &cidr,
                None,
                &appliance,
                Some("i-old"),
                ("i-new", None)
            ),
            Decision::Make(Change::CreateRoute { .. })
        ));
    }

    /// An instance with a LAN leg at device 1 beside its primary interface.
    fn two_legged(id: &str, state: InstanceState, az: &str) -> Instance {
        let mut i = instance(id, state, az);
        let lan = format!("eni-{id}-lan");
        i.network_interface_ids.push(lan.clone());
        i.secondary_interfaces.push(crate::cloud::Interface {
            id: lan,
            device_index: 1,
            subnet_id: format!("subnet-lan-{az}"),
            security_group_ids: vec!["sg-lan".into()],
            source_dest_check: Some(false),
        });
        i
    }

    fn address_on(instance: &str, eni: &str) -> Address {
        Address {
            allocation_id: "eipalloc-1".into(),
            public_ip: "203.0.113.10".into(),
            instance_id: Some(instance.into()),
            network_interface_id: Some(eni.into()),
        }
    }

    #[test]
    fn the_floating_ip_goes_to_the_leg_that_held_it_when_the_replacement_has_several() {
        let old = two_legged("i-old", InstanceState::Stopped, "ap-northeast-1a");
        let new = two_legged("i-new", InstanceState::Running, "ap-northeast-1c");
        let appliance = [old.clone(), new.clone()];
        let interface =
            |a: &Address| match floating_ip_decision(a, &appliance, ("i-new", Some(&new))) {
                Decision::Make(Change::MoveFloatingIp { interface, to, .. }) => {
                    assert_eq!(to, "i-new");
                    interface
                }
                other => panic!("{other:?}"),
            };
        // On the WAN (primary) leg of the original: the replacement's primary.
        assert_eq!(
            interface(&address_on("i-old", "eni-i-old")).as_deref(),
            Some("eni-i-new")
        );
        // On the LAN leg: the replacement's LAN leg.
        assert_eq!(
            interface(&address_on("i-old", "eni-i-old-lan")).as_deref(),
            Some("eni-i-new-lan")
        );
        // Already on the replacement's right interface: done; on its other one: moved.
        let done = floating_ip_decision(
            &address_on("i-new", "eni-i-new"),
            &appliance,
            ("i-new", Some(&new)),
        );
        assert!(matches!(done, Decision::AlreadyDone(_)), "{done:?}");
        // One interface: by instance, as before.
        let single = instance("i-one", InstanceState::Running, "ap-northeast-1c");
        let by_instance = floating_ip_decision(
            &address_on("i-old", "eni-i-old"),
            &[instance("i-old", InstanceState::Stopped, "ap-northeast-1a")],
            ("i-one", Some(&single)),
        );
        assert!(matches!(
            by_instance,
            Decision::Make(Change::MoveFloatingIp {
                interface: None,
                ..
            })
        ));
    }

    #[test]
    fn source_dest_check_goes_by_interface_on_every_leg_of_a_multi_legged_replacement() {
        let new = two_legged("i-new", InstanceState::Running, "ap-northeast-1c");
        let steps = source_dest_steps("i-new", Some(&new));
        let changes: Vec<&Decision> = steps.iter().map(|s| &s.decision).collect();
        assert!(
            matches!(changes[0], Decision::Make(Change::DisableInterfaceSourceDestCheck { interface }) if interface == "eni-i-new"),
            "{changes:?}"
        );
        assert!(
            matches!(changes[1], Decision::AlreadyDone(_)),
            "the LAN leg is off already"
        );
        let single = instance("i-one", InstanceState::Running, "ap-northeast-1c");
        let steps = source_dest_steps("i-one", Some(&single));
        assert!(matches!(
            &steps[0].decision,
            Decision::Make(Change::DisableSourceDestCheck { instance }) if instance == "i-one"
        ));
    }
}
