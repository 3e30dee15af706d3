//! The failover pipeline end to end: the real SDK adapter against a moto server,
//! on the world of the seed article.

use crate::common;

use aws_sdk_ec2::types::{
    HttpTokensState, InstanceAttributeName, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceType, ResourceType,
};
use common::*;
use ec2_failover::cloud::{TAG_INCIDENT, TAG_REPLACES};
use ec2_failover::{FailoverError, Outcome, StepStatus};
use serde_json::json;

#[tokio::test]
async fn sns_alarm_moves_the_vpn_to_the_other_az() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));

    let report = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .expect("failover succeeds");

    assert_eq!(report.outcome, Outcome::FailedOver, "{report:#?}");
    assert_eq!(report.old_instance.as_deref(), Some(w.sophos.as_str()));
    assert_eq!(report.availability_zone.as_deref(), Some("ap-northeast-1c"));
    assert_eq!(report.image.as_deref(), Some(w.new_ami.as_str()));
    assert!(report.incident.starts_with("alarm-"), "{}", report.incident);
    assert!(report.reason.contains("sophos-health"), "{}", report.reason);
    let new_id = report.new_instance.clone().expect("a replacement");
    assert_ne!(new_id, w.sophos);

    // The replacement: other AZ, newest tagged AMI, copied type, group, key and tags.
    let new = describe(&ec2, &new_id).await;
    assert_eq!(new.state().unwrap().name().unwrap().as_str(), "running");
    assert_eq!(
        new.placement().unwrap().availability_zone(),
        Some("ap-northeast-1c")
    );
    assert_eq!(new.subnet_id(), Some(w.subnet_c.as_str()));
    assert_eq!(new.image_id(), Some(w.new_ami.as_str()));
    assert_eq!(new.instance_type().unwrap().as_str(), "t3.small");
    assert_eq!(new.key_name(), Some("ops"));
    let groups: Vec<&str> = new
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(groups, [w.security_group.as_str()]);
    assert_eq!(tag_of(&new, "Name").as_deref(), Some("sophos"));
    assert_eq!(tag_of(&new, "Role").as_deref(), Some("vpn-gateway"));
    assert_eq!(tag_of(&new, "Owner").as_deref(), Some("netops"));
    assert_eq!(tag_of(&new, TAG_INCIDENT), Some(report.incident.clone()));
    assert_eq!(tag_of(&new, TAG_REPLACES), Some(w.sophos.clone()));
    assert_eq!(new.source_dest_check(), Some(false));
    // The seed's appliance has no user data and IMDS defaults: none invented.
    assert_eq!(user_data(&ec2, &new_id).await, None);
    let imds = new
        .metadata_options()
        .expect("EC2 reports metadata options");
    assert_eq!(imds.http_tokens(), Some(&HttpTokensState::Optional));

    // The failed instance is stopping or stopped.
    let old = describe(&ec2, &w.sophos).await;
    let old_state = old.state().unwrap().name().unwrap().as_str().to_owned();
    assert!(
        old_state == "stopping" || old_state == "stopped",
        "{old_state}"
    );

    // Floating IP and VPN route follow; the default route stays on the IGW.
    assert_eq!(
        address_owner(&ec2, &w.floating_ip).await,
        Some(new_id.clone())
    );
    assert_eq!(
        route_target(&ec2, &w.route_table, VPN_CIDR).await,
        Some(new_id.clone())
    );
    assert_eq!(
        route_target(&ec2, &w.route_table, "0.0.0.0/0").await,
        Some(w.igw.clone())
    );

    // Bystanders untouched: the web instance and its EIP, the other VPC's sophos.
    let web = describe(&ec2, &w.web).await;
    assert_eq!(web.state().unwrap().name().unwrap().as_str(), "running");
    assert_eq!(address_owner(&ec2, &w.web_ip).await, Some(w.web.clone()));
    let foreign = describe(&ec2, &w.foreign_sophos).await;
    assert_eq!(foreign.state().unwrap().name().unwrap().as_str(), "running");

    // Exactly one replacement.
    let mut expected = vec![w.sophos.clone(), new_id.clone(), w.foreign_sophos.clone()];
    expected.sort();
    assert_eq!(instances_named(&ec2, "sophos").await, expected);

    // The report tells every step.
    for step in [
        "discover",
        "assess",
        "stop_failed_instance",
        "launch_replacement",
        "wait_for_replacement",
        "source_dest_check",
        "floating_ip",
    ] {
        assert!(
            report.step(step).is_some(),
            "missing step {step}: {report:#?}"
        );
    }
    let route_step = format!("route {} {VPN_CIDR}", w.route_table);
    assert_eq!(report.step(&route_step).unwrap().status, StepStatus::Done);
    assert_eq!(
        report.step("launch_replacement").unwrap().status,
        StepStatus::Done
    );
}

#[tokio::test]
async fn the_same_alarm_again_changes_nothing() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));
    let event = sample("sns-alarm.json");

    let first = handle(&app, &event, &invocation("req-1")).await.unwrap();
    assert_eq!(first.outcome, Outcome::FailedOver);
    let after_first = snapshot(&ec2).await;

    // SNS redelivers: a new request id, the same alarm state change.
    let again = handle(&app, &event, &invocation("req-2")).await.unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
    assert_eq!(again.incident, first.incident);
    assert_eq!(again.new_instance, first.new_instance);
    assert!(
        again
            .steps
            .iter()
            .all(|s| s.status != StepStatus::Done
                || ["discover", "assess"].contains(&s.step.as_str())),
        "{again:#?}"
    );
    assert_eq!(snapshot(&ec2).await, after_first);

    // The same state change through the other channels is the same incident too.
    for other in ["direct-alarm.json", "eventbridge-alarm.json"] {
        let r = handle(&app, &sample(other), &invocation("req-3"))
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::AlreadyFailedOver, "{other}: {r:#?}");
        assert_eq!(r.incident, first.incident, "{other}");
    }
    assert_eq!(snapshot(&ec2).await, after_first);
}

#[tokio::test]
async fn a_manual_failover_right_after_a_failover_is_within_the_cooldown() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));

    let first = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .unwrap();
    let after_first = snapshot(&ec2).await;

    let manual = handle(
        &app,
        &sample("manual-failover.json"),
        &invocation("req-manual"),
    )
    .await
    .unwrap();
    assert_eq!(manual.outcome, Outcome::AlreadyFailedOver, "{manual:#?}");
    assert_eq!(manual.incident, "req-manual");
    assert_eq!(manual.new_instance, first.new_instance);
    assert!(manual.reason.contains("cooldown"), "{}", manual.reason);
    assert_eq!(snapshot(&ec2).await, after_first);
}

#[tokio::test]
async fn after_the_cooldown_a_new_alarm_moves_the_replacement_on() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[("COOLDOWN_MINUTES", "0")]));

    let first = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .unwrap();
    let second = handle(&app, &sample("manual-failover.json"), &invocation("req-2"))
        .await
        .unwrap();
    assert_eq!(second.outcome, Outcome::FailedOver, "{second:#?}");
    assert_eq!(second.old_instance, first.new_instance);
    assert_eq!(second.availability_zone.as_deref(), Some("ap-northeast-1a"));
    let newest = second.new_instance.unwrap();
    assert_eq!(
        address_owner(&ec2, &w.floating_ip).await,
        Some(newest.clone())
    );
    assert_eq!(
        route_target(&ec2, &w.route_table, VPN_CIDR).await,
        Some(newest)
    );
}

#[tokio::test]
async fn ok_and_insufficient_data_change_nothing() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));
    let before = snapshot(&ec2).await;

    let ok = handle(&app, &sample("sns-alarm-ok.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(ok.outcome, Outcome::Ignored);
    assert!(ok.reason.contains("OK"), "{}", ok.reason);
    assert!(ok.steps.is_empty());

    let mut insufficient = sample("eventbridge-alarm.json");
    insufficient["detail"]["state"]["value"] = json!("INSUFFICIENT_DATA");
    let r = handle(&app, &insufficient, &invocation("req-2"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Ignored);

    assert_eq!(snapshot(&ec2).await, before);
}

#[tokio::test]
async fn a_malformed_event_is_an_error_and_changes_nothing() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));
    let before = snapshot(&ec2).await;

    let mut broken = sample("sns-alarm.json");
    broken["Records"][0]["Sns"]["Message"] = json!(
        "{\"AlarmName\": \"x\", \"AlarmArn\": \"arn:aws:cloudwatch:us-east-1:1:alarm:x\", \"NewStateValue\": \"ALARM\"}"
    );
    for (event, names) in [
        (broken, "StateChangeTime"),
        (json!({"hello": "world"}), "expected"),
        (json!({"action": "reboot"}), "reboot"),
    ] {
        let e = handle(&app, &event, &invocation("req-1"))
            .await
            .unwrap_err();
        assert!(matches!(e, FailoverError::Event(_)), "{e}");
        assert!(!e.retryable());
        assert_eq!(e.error_type(), "Permanent.BadEvent");
        assert!(e.to_string().contains(names), "{e}");
    }
    assert_eq!(snapshot(&ec2).await, before);
}

/// The alarm in `event` moves the floating IP and the VPN route.
async fn fails_over_from(event: &str) {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));

    let r = handle(&app, &sample(event), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{event}: {r:#?}");
    let new_id = r.new_instance.unwrap();
    assert_eq!(
        address_owner(&ec2, &w.floating_ip).await,
        Some(new_id.clone())
    );
    assert_eq!(
        route_target(&ec2, &w.route_table, VPN_CIDR).await,
        Some(new_id)
    );
}

#[tokio::test]
async fn direct_invoke_alarm_fails_over() {
    fails_over_from("direct-alarm.json").await;
}

#[tokio::test]
async fn eventbridge_alarm_fails_over() {
    fails_over_from("eventbridge-alarm.json").await;
}

#[tokio::test]
async fn plan_and_dry_run_change_nothing_and_say_what_they_would_do() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let before = snapshot(&ec2).await;

    let app_live = app(&moto, settings(&w, &[]));
    let plan = handle(&app_live, &sample("manual-plan.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(plan.outcome, Outcome::Planned, "{plan:#?}");
    assert_eq!(plan.new_instance, None);
    assert_eq!(plan.availability_zone.as_deref(), Some("ap-northeast-1c"));
    assert_eq!(plan.image.as_deref(), Some(w.new_ami.as_str()));
    let launch = plan.step("launch_replacement").unwrap();
    assert_eq!(launch.status, StepStatus::Planned);
    assert!(
        launch.detail.contains(&w.new_ami) && launch.detail.contains(&w.subnet_c),
        "{}",
        launch.detail
    );
    assert_eq!(
        plan.step("stop_failed_instance").unwrap().status,
        StepStatus::Planned
    );
    assert_eq!(
        plan.step("floating_ip").unwrap().status,
        StepStatus::Planned
    );

    let app_dry = app(&moto, settings(&w, &[("DRY_RUN", "true")]));
    let dry = handle(&app_dry, &sample("sns-alarm.json"), &invocation("req-2"))
        .await
        .unwrap();
    assert_eq!(dry.outcome, Outcome::Planned);

    assert_eq!(snapshot(&ec2).await, before);
}

#[tokio::test]
async fn missing_pieces_stop_the_failover_before_any_change() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let before = snapshot(&ec2).await;

    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("AMI_NAME", "no-such-ami")], "AMI_NAME"),
        (&[("VPC_NAME", "no-such-vpc")], "VPC_NAME"),
        (
            &[
                ("SUBNET_NAME", "no-such-subnet"),
                ("ROUTE_TABLE_NAME", "public"),
            ],
            "SUBNET_NAME",
        ),
        (&[("ROUTE_TABLE_NAME", "no-such-table")], "ROUTE_TABLE_NAME"),
        (&[("FLOATING_IP", "198.51.100.77")], "FLOATING_IP"),
        (
            &[("SECURITY_GROUP_NAME", "no-such-group")],
            "SECURITY_GROUP_NAME",
        ),
    ];
    for (extra, says) in cases {
        let app = app(&moto, settings(&w, extra));
        let e = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
            .await
            .unwrap_err();
        assert!(matches!(e, FailoverError::Missing { .. }), "{extra:?}: {e}");
        assert!(e.to_string().contains(says), "{extra:?}: {e}");
        assert_eq!(e.error_type(), "Permanent.ResourceMissing");
    }
    assert_eq!(snapshot(&ec2).await, before);
}

#[tokio::test]
async fn a_failover_costs_a_handful_of_calls_and_the_metrics_count_them() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let cloud = ec2_failover::cloud::sdk::SdkCloud::counting(
        moto.ec2_conf(),
        route53_conf(&moto.endpoint),
        moto.cloudwatch_conf(),
    );
    let app = ec2_failover::App {
        cloud,
        settings: settings(&w, &[]),
    };
    use ec2_failover::cloud::Cloud;
    let before = app.cloud.usage().expect("the SDK adapter counts");
    let r = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver);
    let used = app.cloud.usage().unwrap().since(before);
    // 6 discovery describes (VPC, instances, subnets, route tables, images,
    // address; no security-group lookup here) and the event's alarm read
    // again (DescribeAlarms, beside them), the failed instance's user
    // data and (a t3) CPU credits, run, 1 look while waiting, stop,
    // source/dest check, EIP, route, the move's mark (CreateTags); then the
    // closing fence's one round of looks (VPC, instances, address, route tables).
    assert_eq!(used.calls, 20, "{used:?}");
    assert_eq!(used.retries, 0);
    assert!(used.bytes_received > 1000, "{used:?}");

    let line = ec2_failover::metrics::emf(
        "sophos",
        &Ok(r),
        std::time::Duration::from_millis(5),
        Some(used),
        0,
    );
    assert_eq!(line["AwsCalls"], 20);
    assert_eq!(line["Outcome"], "failed_over");
}

/// `#!/bin/sh\necho vpn up\n`, base64 as EC2 keeps user data.
const USER_DATA: &str = "IyEvYmluL3NoCmVjaG8gdnBuIHVwCg==";

async fn user_data(ec2: &aws_sdk_ec2::Client, id: &str) -> Option<String> {
    ec2.describe_instance_attribute()
        .instance_id(id)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap()
        .user_data()
        .and_then(|v| v.value())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[tokio::test]
async fn an_imdsv2_appliance_with_user_data_is_replaced_by_one_launched_alike() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    // Deployed as organisations do: IMDSv2 only (an SCP denies launches
    // without), a hop limit for containers, user data, EBS-optimised.
    let vpn = ec2
        .run_instances()
        .image_id(base_image(&ec2).await)
        .instance_type(InstanceType::T3Small)
        .min_count(1)
        .max_count(1)
        .subnet_id(&w.subnet_a)
        .security_group_ids(&w.security_group)
        .key_name("ops")
        .user_data(USER_DATA)
        .ebs_optimized(true)
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .build(),
        )
        .tag_specifications(name_tag(ResourceType::Instance, "vpn2"))
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    let ip = eip_for(&ec2, &vpn).await;
    // The seed's AMIs were made of another instance: the operator vouches.
    let vouched = format!("{},{}", w.old_ami, w.new_ami);
    let app = app(
        &moto,
        settings(
            &w,
            &[
                ("INSTANCE_NAME", "vpn2"),
                ("FLOATING_IP", &ip),
                ("ROUTE_CIDRS", ""),
                ("BASE_AMI_ID", &vouched),
            ],
        ),
    );

    let r = handle(&app, &sample("manual-failover.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.old_instance.as_deref(), Some(vpn.as_str()));
    let new_id = r.new_instance.clone().expect("a replacement");
    assert_eq!(address_owner(&ec2, &ip).await, Some(new_id.clone()));

    let new = describe(&ec2, &new_id).await;
    assert_eq!(
        new.placement().unwrap().availability_zone(),
        Some("ap-northeast-1c")
    );
    let imds = new.metadata_options().expect("metadata options");
    assert_eq!(imds.http_tokens(), Some(&HttpTokensState::Required));
    assert_eq!(imds.http_put_response_hop_limit(), Some(2));
    assert_eq!(
        imds.http_endpoint(),
        Some(&InstanceMetadataEndpointState::Enabled)
    );
    assert_eq!(new.ebs_optimized(), Some(true));
    assert_eq!(user_data(&ec2, &new_id).await.as_deref(), Some(USER_DATA));
    // The seed's own appliance was not touched.
    let sophos = describe(&ec2, &w.sophos).await;
    assert_eq!(sophos.state().unwrap().name().unwrap().as_str(), "running");
}

/// The interface of `instance` at `device` (id, subnet, groups, source/dest check).
async fn leg(
    ec2: &aws_sdk_ec2::Client,
    instance: &str,
    device: i32,
) -> Option<(String, String, Vec<String>, Option<bool>)> {
    let i = describe(ec2, instance).await;
    i.network_interfaces()
        .iter()
        .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(device))
        .map(|n| {
            (
                n.network_interface_id().unwrap_or_default().to_owned(),
                n.subnet_id().unwrap_or_default().to_owned(),
                n.groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect(),
                n.source_dest_check(),
            )
        })
}

#[tokio::test]
async fn a_two_legged_gateway_fails_over_with_its_lan_leg_and_lan_route() {
    use aws_sdk_ec2::types::InstanceNetworkInterfaceSpecification as Nic;
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let private_a = subnet(&ec2, &w.vpc, "10.0.11.0/24", "ap-northeast-1a", "private").await;
    let private_c = subnet(&ec2, &w.vpc, "10.0.12.0/24", "ap-northeast-1c", "private").await;
    let lan_group = group(&ec2, &w.vpc, "lan").await;
    // WAN at device 0 in public, LAN at device 1 in private: a VPN gateway
    // as firewalls and VPN appliances are deployed, IMDSv2 and user data.
    let nic = |device: i32, subnet: &str, group: &str| {
        Nic::builder()
            .device_index(device)
            .subnet_id(subnet)
            .groups(group)
            .build()
    };
    let gw = ec2
        .run_instances()
        .image_id(base_image(&ec2).await)
        .instance_type(InstanceType::T3Small)
        .min_count(1)
        .max_count(1)
        .network_interfaces(nic(0, &w.subnet_a, &w.security_group))
        .network_interfaces(nic(1, &private_a, &lan_group))
        .user_data(USER_DATA)
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .build(),
        )
        .tag_specifications(name_tag(ResourceType::Instance, "gw"))
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    let (old_lan, ..) = leg(&ec2, &gw, 1).await.expect("the original's LAN leg");
    let (old_wan, ..) = leg(&ec2, &gw, 0).await.expect("the original's WAN leg");
    let table = route_table(&ec2, &w.vpc, "private").await;
    ec2.create_route()
        .route_table_id(&table)
        .destination_cidr_block("0.0.0.0/0")
        .network_interface_id(&old_lan)
        .send()
        .await
        .unwrap();
    // The VPN's range to the gateway's WAN side (EC2 wants an interface for
    // a route to an instance with several).
    ec2.create_route()
        .route_table_id(&table)
        .destination_cidr_block(VPN_CIDR)
        .network_interface_id(&old_wan)
        .send()
        .await
        .unwrap();
    let ip = eip_for(&ec2, &gw).await;
    // EC2 as it is: AssociateAddress and ModifyInstanceAttribute SourceDestCheck
    // by instance are refused on an instance with two interfaces (moto
    // accepts both), and DescribeAddresses names the instance of an address
    // associated by interface.
    let layer = common::ec2_like::Ec2Like::builder()
        .start(&moto.endpoint)
        .await;
    let app = ec2_failover::App {
        cloud: ec2_failover::cloud::sdk::SdkCloud::new(
            aws_sdk_ec2::Client::from_conf(layer.ec2_conf()),
            moto.route53(),
        ),
        settings: settings(
            &w,
            &[
                ("INSTANCE_NAME", "gw"),
                ("SUBNET_NAMES", "public,private"),
                ("ROUTE_TABLE_NAME", "private"),
                ("ROUTE_CIDRS", &format!("0.0.0.0/0,{VPN_CIDR}")),
                ("FLOATING_IP", &ip),
                // The seed's AMIs were made of another instance.
                ("BASE_AMI_ID", &format!("{},{}", w.old_ami, w.new_ami)),
            ],
        ),
    };

    let r = handle(&app, &sample("manual-failover.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new_id = r.new_instance.clone().expect("a replacement");
    let new = describe(&ec2, &new_id).await;
    assert_eq!(
        new.placement().unwrap().availability_zone(),
        Some("ap-northeast-1c")
    );
    let (wan, wan_subnet, wan_groups, _) = leg(&ec2, &new_id, 0).await.expect("a WAN leg");
    assert_eq!(wan_subnet, w.subnet_c);
    assert_eq!(wan_groups, std::slice::from_ref(&w.security_group));
    let (lan, lan_subnet, lan_groups, lan_check) = leg(&ec2, &new_id, 1).await.expect("a LAN leg");
    assert_eq!(
        lan_subnet, private_c,
        "the LAN leg in the private subnet of 1c"
    );
    assert_eq!(lan_groups, [lan_group]);
    assert_eq!(
        lan_check,
        Some(false),
        "source/dest check off on the LAN leg"
    );
    assert_ne!(lan, wan);
    assert_eq!(
        route_target(&ec2, &table, "0.0.0.0/0").await.as_deref(),
        Some(lan.as_str()),
        "the private route moved from {old_lan} to the new LAN interface"
    );
    assert_eq!(
        route_target(&ec2, &table, VPN_CIDR).await.as_deref(),
        Some(wan.as_str()),
        "the WAN route moved from {old_wan} to the new WAN interface"
    );
    assert_eq!(
        address_interface(&ec2, &ip).await.as_deref(),
        Some(wan.as_str()),
        "the EIP on the new WAN leg, where the original had it"
    );
    let wan_check = leg(&ec2, &new_id, 0).await.and_then(|l| l.3);
    assert_eq!(
        wan_check,
        Some(false),
        "source/dest check off on the WAN leg"
    );
    // A redelivery finds it all done: the address is on the replacement's
    // WAN interface, so it is not moved again.
    let again = handle(&app, &sample("manual-failover.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
    let imds = new.metadata_options().expect("metadata options");
    assert_eq!(imds.http_tokens(), Some(&HttpTokensState::Required));
    assert_eq!(user_data(&ec2, &new_id).await.as_deref(), Some(USER_DATA));
}
