//! An appliance with two legs (WAN + LAN interfaces): both legs kept, the LAN
//! route follows the LAN interface, unnamed leg subnets refused, preflight.

use crate::common;

use common::memory_world::*;
use common::{VPN_CIDR, sample};
use ec2_failover::cloud::faults::FaultyCloud;
use ec2_failover::cloud::memory::InstanceSpec;
use ec2_failover::cloud::{Cloud, RouteTarget};
use ec2_failover::{Outcome, Settings, StepStatus};
use serde_json::json;

use super::worlds::*;

/// A VPN gateway in the seed VPC with a WAN interface in `public` and a LAN
/// interface (device 1, its own security group) in `private`, IMDSv2 and user
/// data; the `private` route table's default route points at its LAN
/// interface. Returns the gateway, its LAN interface, the LAN group, the
/// private subnet in 1c and the route table.
struct TwoLegs {
    gateway: String,
    lan: String,
    lan_group: String,
    private_c: String,
    table: String,
    ip: String,
}

fn two_legged_gateway(w: &MemWorld) -> TwoLegs {
    let az = |z: &str| format!("{}{z}", common::REGION);
    let private_a = w
        .cloud
        .add_subnet(&w.vpc, &az("a"), cidr("10.0.11.0/24"), "private");
    let private_c = w
        .cloud
        .add_subnet(&w.vpc, &az("c"), cidr("10.0.12.0/24"), "private");
    let lan_group = w.cloud.add_security_group(&w.vpc, "lan");
    let gateway = w.cloud.add_instance(
        InstanceSpec::new(&w.subnet_a, "gw")
            .groups(&[&w.security_group])
            .leg(&private_a, &[&lan_group])
            .image(&w.base_image)
            .metadata(imdsv2())
            .user_data(USER_DATA),
    );
    let lan = w
        .cloud
        .peek_instance(&gateway)
        .unwrap()
        .secondary_interfaces[0]
        .id
        .clone();
    w.cloud.disable_leg_source_dest_check(&lan);
    let table = w.cloud.add_route_table(&w.vpc, "private");
    w.cloud.add_route(
        &table,
        cidr("0.0.0.0/0"),
        RouteTarget::NetworkInterface(lan.clone()),
    );
    // The VPN's own range goes to the gateway itself (its WAN side).
    w.cloud.add_route(
        &table,
        cidr(VPN_CIDR),
        RouteTarget::Instance(gateway.clone()),
    );
    let ip = w.cloud.add_address(Some(&gateway)).public_ip;
    TwoLegs {
        gateway,
        lan,
        lan_group,
        private_c,
        table,
        ip,
    }
}

fn two_legged_settings(w: &MemWorld, g: &TwoLegs, subnet_names: &str) -> Settings {
    seed_settings(
        w,
        &[
            ("INSTANCE_NAME", "gw"),
            ("SUBNET_NAMES", subnet_names),
            ("ROUTE_TABLE_NAME", "private"),
            ("ROUTE_CIDRS", &format!("0.0.0.0/0,{VPN_CIDR}")),
            ("FLOATING_IP", &g.ip),
            // The seed's AMIs were made of sophos: the operator vouches.
            ("BASE_AMI_ID", &format!("{},{}", w.old_ami, w.new_ami)),
        ],
    )
}

#[tokio::test(start_paused = true)]
async fn a_two_legged_gateway_keeps_both_legs_and_its_lan_route_follows_the_lan_interface() {
    let w = seed_world();
    let g = two_legged_gateway(&w);
    let settings = two_legged_settings(&w, &g, "public,private");
    let r = invoke(
        &single(w.cloud.clone(), settings),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.old_instance.as_deref(), Some(g.gateway.as_str()));
    let new_id = r.new_instance.clone().expect("a replacement");
    let new = w.cloud.peek_instance(&new_id).unwrap();
    assert_eq!(new.availability_zone, format!("{}c", common::REGION));
    assert_eq!(new.subnet_id.as_deref(), Some(w.subnet_c.as_str()));
    assert_eq!(new.source_dest_check, Some(false));
    let [leg] = new.secondary_interfaces.as_slice() else {
        panic!("one LAN leg: {new:#?}");
    };
    assert_eq!(leg.device_index, 1);
    assert_eq!(leg.subnet_id, g.private_c);
    assert_eq!(leg.security_group_ids, std::slice::from_ref(&g.lan_group));
    assert_eq!(
        leg.source_dest_check,
        Some(false),
        "it forwards LAN traffic"
    );
    assert_eq!(
        w.cloud.route_target(&g.table, &cidr("0.0.0.0/0")),
        Some(RouteTarget::NetworkInterface(leg.id.clone())),
        "the LAN route moved from {} to the new LAN interface",
        g.lan
    );
    assert_eq!(
        w.cloud.address_owner(&g.ip).as_deref(),
        Some(new_id.as_str())
    );
    // EC2 refuses a route, an address and the source/dest attribute by
    // instance on an instance with several interfaces: they name the
    // replacement's primary interface, the leg that held them before.
    let primary: Vec<&String> = new
        .network_interface_ids
        .iter()
        .filter(|id| **id != leg.id)
        .collect();
    let address = w.cloud.address(&g.ip).await.unwrap().expect("the EIP");
    assert_eq!(address.network_interface_id.as_ref(), Some(primary[0]));
    assert_eq!(
        w.cloud.route_target(&g.table, &cidr(VPN_CIDR)),
        Some(RouteTarget::NetworkInterface(primary[0].clone()))
    );
    assert_eq!(new.metadata_options, Some(imdsv2()));
    assert_eq!(
        w.cloud.user_data(&new_id).await.unwrap().as_deref(),
        Some(USER_DATA)
    );
    // A redelivery finds it all done.
    let again = invoke(
        &single(
            w.cloud.clone(),
            two_legged_settings(&w, &g, "public,private"),
        ),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_leg_subnet_names_does_not_name_is_refused_before_anything_changes() {
    let w = seed_world();
    let g = two_legged_gateway(&w);
    let before = w.view();
    let e = invoke(
        &single(w.cloud.clone(), two_legged_settings(&w, &g, "")),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.ResourceMissing", "{e}");
    assert!(e.to_string().contains("device index 1"), "{e}");
    assert!(e.to_string().contains(&g.lan), "{e}");
    assert_eq!(w.view(), before);
}

#[tokio::test(start_paused = true)]
async fn a_preflight_of_a_two_legged_gateway_proves_the_launch_and_the_routes_it_would_send() {
    let w = seed_world();
    let g = two_legged_gateway(&w);
    let cloud = FaultyCloud::new(w.cloud.clone());
    let before = w.view();
    let r = invoke(
        &single(cloud.clone(), two_legged_settings(&w, &g, "public,private")),
        &json!({"action": "preflight"}),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Preflight, "{r:#?}");
    let failed: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .map(|s| s.step.as_str())
        .collect();
    assert!(failed.is_empty(), "{r:#?}");
    let proven: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.step.starts_with("preflight permission ReplaceRoute"))
        .map(|s| s.step.as_str())
        .collect();
    assert_eq!(proven.len(), 2, "both routes of the private table: {r:#?}");
    assert_eq!(w.view(), before, "a preflight changes nothing");
}
