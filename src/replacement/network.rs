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
    let Some(r) = replacement_instance.filter(|r| !r.secondary_interfaces.is_empty()) else {
        return match device {
            0 => replacement.to_owned(),
            d => format!("{replacement}'s device-{d} interface"),
        };
    };
    let interface = match device {
        0 => r
            .network_interface_ids
            .iter()
            .find(|id| !r.secondary_interfaces.iter().any(|l| &l.id == *id)),
        d => r
            .secondary_interfaces
            .iter()
            .find(|l| l.device_index == d)
            .map(|l| &l.id),
    };
    interface
        .cloned()
        .unwrap_or_else(|| format!("{replacement}'s device-{device} interface"))
}

pub(super) fn floating_ip_decision(address: &Address, replacement: &str) -> Decision {
    if address.instance_id.as_deref() == Some(replacement) {
        Decision::AlreadyDone(format!("{} is on {replacement}", address.public_ip))
    } else {
        Decision::Make(Change::MoveFloatingIp {
            allocation_id: address.allocation_id.clone(),
            public_ip: address.public_ip.clone(),
            from: address.instance_id.clone(),
            to: replacement.to_owned(),
        })
    }
}

/// Source/dest check off on the replacement (the instance attribute covers
/// its primary interface only) and on each of its other legs, which forward
/// traffic too.
pub fn source_dest_steps(replacement: &str, current: Option<&Instance>) -> Vec<PlannedStep> {
    let primary = match current.and_then(|i| i.source_dest_check) {
        Some(false) => {
            Decision::AlreadyDone(format!("source/dest check is already off on {replacement}"))
        }
        _ => Decision::Make(Change::DisableSourceDestCheck {
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
}
