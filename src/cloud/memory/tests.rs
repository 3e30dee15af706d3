//! The account's rules, call by call, against EC2's and Route 53's documented
//! behaviour.

use super::*;
use crate::cloud::{CREATED_BY, Operation, TAG_IMAGE};
use crate::cloud::{
    Cidr, Cloud, ImageRequest, IngressRule, Instance, InstanceState, LaunchRequest, RecordSet,
    RouteTarget, TAG_CREATED_BY, Tag,
};

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

pub(super) struct Small {
    pub(super) cloud: MemoryCloud,
    pub(super) vpc: String,
    pub(super) subnet_a: String,
    pub(super) subnet_c: String,
    pub(super) sg: String,
    pub(super) image: String,
    pub(super) old: String,
}

pub(super) fn small() -> Small {
    let cloud = MemoryCloud::new();
    let vpc = cloud.add_vpc("my-vpc", cidr("10.0.0.0/16"));
    let subnet_a = cloud.add_subnet(&vpc, "ap-northeast-1a", cidr("10.0.1.0/24"), "public");
    let subnet_c = cloud.add_subnet(&vpc, "ap-northeast-1c", cidr("10.0.2.0/24"), "public");
    let sg = cloud.add_security_group(&vpc, "sophos");
    let image = cloud.add_image(ImageSpec::new("sophos_1").tag("Name", "sophos"));
    let old = cloud.add_instance(
        InstanceSpec::new(&subnet_a, "sophos")
            .groups(&[&sg])
            .key("ops")
            .image(&image),
    );
    Small {
        cloud,
        vpc,
        subnet_a,
        subnet_c,
        sg,
        image,
        old,
    }
}

fn launch(w: &Small, token: &str) -> LaunchRequest {
    LaunchRequest {
        image_id: w.image.clone(),
        instance_type: "t3.small".into(),
        subnet_id: w.subnet_c.clone(),
        security_group_ids: vec![w.sg.clone()],
        key_name: Some("ops".into()),
        iam_instance_profile_arn: Some("arn:aws:iam::123456789012:instance-profile/vpn".into()),
        tags: vec![Tag::new("Name", "sophos"), Tag::new("Role", "vpn")],
        client_token: token.into(),
        metadata_options: None,
        ebs_optimized: None,
        user_data: None,
        cpu_credits: None,
        secondary_interfaces: Vec::new(),
    }
}

#[tokio::test]
async fn run_instances_is_pending_then_running_and_carries_the_request() {
    let w = small();
    let new = w.cloud.run_instance(&launch(&w, "t-1")).await.unwrap();
    assert_eq!(new.state, InstanceState::Pending);
    assert_eq!(new.subnet_id.as_deref(), Some(w.subnet_c.as_str()));
    assert_eq!(new.availability_zone, "ap-northeast-1c");
    assert_eq!(new.vpc_id.as_deref(), Some(w.vpc.as_str()));
    assert_eq!(new.security_group_ids, std::slice::from_ref(&w.sg));
    assert_eq!(new.key_name.as_deref(), Some("ops"));
    assert!(new.iam_instance_profile_arn.is_some());
    assert_eq!(new.tag("Role"), Some("vpn"));
    assert!(new.private_ip.as_deref().unwrap().starts_with("10.0.2."));
    assert_eq!(new.network_interface_ids.len(), 1);
    assert!(new.launch_time.is_some());
    assert_eq!(new.source_dest_check, Some(true));
    let again = w.cloud.instance(&new.id).await.unwrap().unwrap();
    assert_eq!(again.state, InstanceState::Running);

    // Optionally pending for longer: two more looks.
    w.cloud.set_launch_pending_looks(2);
    let slow = w.cloud.run_instance(&launch(&w, "t-2")).await.unwrap();
    let mut states = Vec::new();
    for _ in 0..3 {
        states.push(w.cloud.instance(&slow.id).await.unwrap().unwrap().state);
    }
    assert_eq!(
        states,
        [
            InstanceState::Pending,
            InstanceState::Pending,
            InstanceState::Running
        ]
    );
}

#[tokio::test]
async fn a_client_token_returns_the_first_launch_or_refuses_other_parameters() {
    let w = small();
    let first = w.cloud.run_instance(&launch(&w, "alarm-1")).await.unwrap();
    let second = w.cloud.run_instance(&launch(&w, "alarm-1")).await.unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(
        w.cloud.all_instances().len(),
        2,
        "the old one and one launch"
    );

    // Same token, another subnet: AWS refuses, and launches nothing.
    let mut other = launch(&w, "alarm-1");
    other.subnet_id = w.subnet_a.clone();
    let e = w.cloud.run_instance(&other).await.unwrap_err();
    assert_eq!(e.code(), Some("IdempotentParameterMismatch"));
    assert_eq!(e.operation, Operation::RunInstances);
    assert!(!e.retryable);
    assert_eq!(w.cloud.all_instances().len(), 2);

    // Tag order and group order are not parameters that differ.
    let mut reordered = launch(&w, "alarm-1");
    reordered.tags.reverse();
    assert_eq!(w.cloud.run_instance(&reordered).await.unwrap().id, first.id);

    // Another token is another launch.
    let third = w.cloud.run_instance(&launch(&w, "alarm-2")).await.unwrap();
    assert_ne!(third.id, first.id);

    let too_long = launch(&w, &"x".repeat(65));
    let e = w.cloud.run_instance(&too_long).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterValue"));
}

#[tokio::test]
async fn run_instances_checks_what_it_is_given() {
    let w = small();
    let bad = |f: &dyn Fn(&mut LaunchRequest)| {
        let mut r = launch(&w, "t");
        f(&mut r);
        r
    };
    let code = |r: LaunchRequest| {
        let cloud = w.cloud.clone();
        async move {
            cloud
                .run_instance(&r)
                .await
                .unwrap_err()
                .code()
                .map(str::to_owned)
        }
    };
    assert_eq!(
        code(bad(&|r| r.image_id = "ami-0000000000000dead".into()))
            .await
            .as_deref(),
        Some("InvalidAMIID.NotFound")
    );
    assert_eq!(
        code(bad(&|r| r.subnet_id = "subnet-0nope".into()))
            .await
            .as_deref(),
        Some("InvalidSubnetID.NotFound")
    );
    assert_eq!(
        code(bad(&|r| r.key_name = Some("nobody".into())))
            .await
            .as_deref(),
        Some("InvalidKeyPair.NotFound")
    );
    assert_eq!(
        code(bad(&|r| r
            .tags
            .push(Tag::new("aws:cloudformation:stack-name", "x"))))
        .await
        .as_deref(),
        Some("InvalidParameterValue")
    );
    let other_vpc = w.cloud.add_vpc("other", cidr("10.9.0.0/16"));
    let foreign_sg = w.cloud.add_security_group(&other_vpc, "sophos");
    assert_eq!(
        code(bad(&|r| r.security_group_ids = vec![foreign_sg.clone()]))
            .await
            .as_deref(),
        Some("InvalidParameter")
    );
    assert_eq!(w.cloud.all_instances().len(), 1, "nothing was launched");
}

#[tokio::test]
async fn instances_named_lists_by_name_without_terminated_and_may_lag() {
    let w = small();
    let gone = w
        .cloud
        .add_instance(InstanceSpec::new(&w.subnet_c, "sophos").state(InstanceState::Terminated));
    w.cloud.add_instance(InstanceSpec::new(&w.subnet_c, "web"));
    let ids: Vec<String> = w
        .cloud
        .instances_named("sophos")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, std::slice::from_ref(&w.old));
    // By id, a terminated instance is still described.
    assert_eq!(
        w.cloud.instance(&gone).await.unwrap().unwrap().state,
        InstanceState::Terminated
    );
    assert!(
        w.cloud
            .instance("i-0000000000000nope")
            .await
            .unwrap()
            .is_none()
    );

    w.cloud.set_listing_lag(1);
    let new = w.cloud.run_instance(&launch(&w, "t-1")).await.unwrap();
    let listed = |v: Vec<Instance>| v.iter().any(|i| i.id == new.id);
    assert!(!listed(w.cloud.instances_named("sophos").await.unwrap()));
    assert!(w.cloud.instance(&new.id).await.unwrap().is_some());
    assert!(listed(w.cloud.instances_named("sophos").await.unwrap()));
}

#[tokio::test]
async fn an_elastic_ip_moves_but_not_onto_a_pending_instance() {
    let w = small();
    let eip = w.cloud.add_address(Some(&w.old));
    let found = w.cloud.address(&eip.public_ip).await.unwrap().unwrap();
    assert_eq!(found.instance_id.as_deref(), Some(w.old.as_str()));
    assert!(found.network_interface_id.is_some());
    assert!(w.cloud.address("198.51.100.1").await.unwrap().is_none());

    let new = w.cloud.run_instance(&launch(&w, "t-1")).await.unwrap();
    let e = w
        .cloud
        .associate_address(&eip.allocation_id, &new.id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("IncorrectInstanceState"));
    assert_eq!(w.cloud.address_owner(&eip.public_ip), Some(w.old.clone()));

    w.cloud.instance(&new.id).await.unwrap();
    w.cloud
        .associate_address(&eip.allocation_id, &new.id)
        .await
        .unwrap();
    assert_eq!(w.cloud.address_owner(&eip.public_ip), Some(new.id.clone()));
    assert_eq!(
        w.cloud.peek_instance(&new.id).unwrap().public_ip,
        Some(eip.public_ip.clone())
    );
    assert_eq!(w.cloud.peek_instance(&w.old).unwrap().public_ip, None);
    let e = w
        .cloud
        .associate_address("eipalloc-0nope", &new.id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidAllocationID.NotFound"));
}

/// EC2 wants the interface named for an instance with several: "If the
/// instance has more than one network interface, you must specify a network
/// interface ID" (AssociateAddress), and ModifyInstanceAttribute's
/// SourceDestCheck is refused the same way.
#[tokio::test]
async fn an_instance_with_two_interfaces_takes_its_address_and_check_by_interface_only() {
    let w = small();
    let lan = w
        .cloud
        .add_subnet(&w.vpc, "ap-northeast-1a", cidr("10.0.9.0/24"), "lan");
    let gw = w
        .cloud
        .add_instance(InstanceSpec::new(&w.subnet_a, "gw").leg(&lan, &[]));
    let eip = w.cloud.add_address(None);
    let refused = |e: crate::cloud::CloudError| {
        assert_eq!(e.code(), Some("InvalidInstanceID"), "{e}");
        assert!(e.message.contains("multiple interfaces"), "{e}");
    };
    refused(
        w.cloud
            .associate_address(&eip.allocation_id, &gw)
            .await
            .unwrap_err(),
    );
    refused(w.cloud.disable_source_dest_check(&gw).await.unwrap_err());
    assert_eq!(w.cloud.address_owner(&eip.public_ip), None, "nothing moved");

    let described = w.cloud.peek_instance(&gw).unwrap();
    let (primary, leg) = (
        described.interface_at(0).unwrap().to_owned(),
        described.interface_at(1).unwrap().to_owned(),
    );
    w.cloud
        .associate_address(&eip.allocation_id, &leg)
        .await
        .unwrap();
    let found = w.cloud.address(&eip.public_ip).await.unwrap().unwrap();
    assert_eq!(
        found.instance_id.as_deref(),
        Some(gw.as_str()),
        "EC2 names the instance too"
    );
    assert_eq!(found.network_interface_id.as_deref(), Some(leg.as_str()));
    w.cloud
        .disable_interface_source_dest_check(&primary)
        .await
        .unwrap();
    assert_eq!(
        w.cloud.peek_instance(&gw).unwrap().source_dest_check,
        Some(false)
    );
}

#[tokio::test]
async fn routes_are_replaced_only_when_present_and_created_only_when_absent() {
    let w = small();
    let rtb = w.cloud.add_route_table(&w.vpc, "public");
    let igw = w.cloud.add_internet_gateway(&w.vpc);
    let vpn = cidr("10.242.2.0/24");
    w.cloud
        .add_route(&rtb, cidr("0.0.0.0/0"), RouteTarget::Other(igw.clone()));

    let e = w.cloud.replace_route(&rtb, &vpn, &w.old).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidRoute.NotFound"));
    w.cloud.create_route(&rtb, &vpn, &w.old).await.unwrap();
    let e = w.cloud.create_route(&rtb, &vpn, &w.old).await.unwrap_err();
    assert_eq!(e.code(), Some("RouteAlreadyExists"));
    assert_eq!(
        w.cloud.route_target(&rtb, &vpn),
        Some(RouteTarget::Instance(w.old.clone()))
    );

    let new = w.cloud.run_instance(&launch(&w, "t-1")).await.unwrap();
    w.cloud.replace_route(&rtb, &vpn, &new.id).await.unwrap();
    let tables = w.cloud.route_tables_named("public").await.unwrap();
    let route = tables[0].route_to(&vpn).unwrap();
    assert_eq!(route.target, RouteTarget::Instance(new.id.clone()));
    assert!(!route.blackhole);
    assert_eq!(
        tables[0].route_to(&cidr("0.0.0.0/0")).unwrap().target,
        RouteTarget::Other(igw)
    );
    assert!(
        tables[0].route_to(&cidr("10.0.0.0/16")).is_some(),
        "local route"
    );

    let e = w
        .cloud
        .replace_route("rtb-0nope", &vpn, &new.id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidRouteTableID.NotFound"));
    let e = w
        .cloud
        .replace_route(&rtb, &vpn, "i-0nope")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
}

#[tokio::test]
async fn a_route_to_a_terminated_instance_is_a_blackhole() {
    let w = small();
    let rtb = w.cloud.add_route_table(&w.vpc, "public");
    let gone = w
        .cloud
        .add_instance(InstanceSpec::new(&w.subnet_c, "sophos").state(InstanceState::Terminated));
    let vpn = cidr("10.242.2.0/24");
    w.cloud.add_route(&rtb, vpn, RouteTarget::Instance(gone));
    let tables = w.cloud.route_tables_named("public").await.unwrap();
    assert!(tables[0].route_to(&vpn).unwrap().blackhole);
}

#[tokio::test]
async fn ami_names_are_unique_and_snapshots_come_untagged() {
    let w = small();
    let request = ImageRequest {
        instance_id: w.old.clone(),
        name: "sophos-20261121T1800Z".into(),
        description: "test".into(),
        no_reboot: true,
        tags: vec![
            Tag::new("Name", "sophos"),
            Tag::new(TAG_CREATED_BY, CREATED_BY),
        ],
    };
    let ami = w.cloud.create_image(&request).await.unwrap();
    let e = w.cloud.create_image(&request).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidAMIName.Duplicate"));

    let tool = w.cloud.tool_images("sophos").await.unwrap();
    assert_eq!(tool.len(), 1);
    assert_eq!(tool[0].id, ami);
    assert_eq!(tool[0].state, "available");
    assert_eq!(tool[0].snapshot_ids.len(), 1);
    // The seeded AMI is tagged Name=sophos but not by the tool.
    let usable: Vec<String> = w
        .cloud
        .images_named("sophos")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(usable.len(), 2);
    assert!(usable.contains(&w.image));
    assert!(w.cloud.tool_snapshots("sophos").await.unwrap().is_empty());

    let snaps = tool[0].snapshot_ids.clone();
    let tags = [
        Tag::new("Name", "sophos"),
        Tag::new(TAG_CREATED_BY, CREATED_BY),
        Tag::new(TAG_IMAGE, &ami),
    ];
    w.cloud.create_tags(&snaps, &tags).await.unwrap();
    let tagged = w.cloud.tool_snapshots("sophos").await.unwrap();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].tag(TAG_IMAGE), Some(ami.as_str()));

    let e = w
        .cloud
        .create_tags(&["snap-0nope".into()], &tags)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidSnapshot.NotFound"));
    let mut malformed = request.clone();
    malformed.name = "sophos:20261121".into();
    let e = w.cloud.create_image(&malformed).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidAMIName.Malformed"));
}

#[tokio::test]
async fn a_pending_ami_lists_no_snapshots_and_is_not_usable_yet() {
    let w = small();
    w.cloud.set_image_pending_looks(2);
    let request = ImageRequest {
        instance_id: w.old.clone(),
        name: "sophos-1".into(),
        description: String::new(),
        no_reboot: true,
        tags: vec![
            Tag::new("Name", "sophos"),
            Tag::new(TAG_CREATED_BY, CREATED_BY),
        ],
    };
    let ami = w.cloud.create_image(&request).await.unwrap();
    let look = w.cloud.tool_images("sophos").await.unwrap();
    assert_eq!(
        (look[0].state.as_str(), look[0].snapshot_ids.len()),
        ("pending", 0)
    );
    assert!(
        !w.cloud
            .images_named("sophos")
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == ami)
    );
    let look = w.cloud.tool_images("sophos").await.unwrap();
    assert_eq!(
        (look[0].state.as_str(), look[0].snapshot_ids.len()),
        ("available", 1)
    );
}

#[tokio::test]
async fn deregister_and_delete_refuse_the_unknown_and_snapshots_in_use() {
    let w = small();
    let snap = w.cloud.all_images()[0].snapshot_ids[0].clone();
    let e = w.cloud.delete_snapshot(&snap).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidSnapshot.InUse"));
    w.cloud.deregister_image(&w.image).await.unwrap();
    let e = w.cloud.deregister_image(&w.image).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidAMIID.NotFound"));
    // Deregistering leaves the snapshot; now it can go.
    assert!(w.cloud.all_snapshots().iter().any(|s| s.id == snap));
    w.cloud.delete_snapshot(&snap).await.unwrap();
    let e = w.cloud.delete_snapshot(&snap).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidSnapshot.NotFound"));
}

fn rule(c: &str, port: i32, description: Option<&str>) -> IngressRule {
    IngressRule {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        cidr: cidr(c),
        description: description.map(str::to_owned),
    }
}

#[tokio::test]
async fn ingress_rules_refuse_duplicates_and_missing_revokes_atomically() {
    let w = small();
    w.cloud
        .add_ingress(&w.sg, rule("15.177.0.0/18", 22, Some("by hand")));
    authorize_refuses_a_duplicate_and_adds_nothing(&w).await;
    revoke_refuses_a_missing_rule_and_removes_nothing(&w).await;
    groups_are_found_by_name_or_id_and_hold_a_limited_number_of_rules(&w).await;
}

async fn authorize_refuses_a_duplicate_and_adds_nothing(w: &Small) {
    // A duplicate whatever its description, and then nothing is added.
    let e = w
        .cloud
        .authorize_ingress(
            &w.sg,
            22,
            &[cidr("54.228.16.0/26"), cidr("15.177.0.0/18")],
            "mine",
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidPermission.Duplicate"));
    assert_eq!(w.cloud.ingress_rules(&w.sg).len(), 1);
    w.cloud
        .authorize_ingress(&w.sg, 22, &[cidr("54.228.16.0/26")], "mine")
        .await
        .unwrap();
    assert_eq!(w.cloud.ingress_rules(&w.sg).len(), 2);
}

async fn revoke_refuses_a_missing_rule_and_removes_nothing(w: &Small) {
    // Revoke needs no description, but every rule must be there.
    let e = w
        .cloud
        .revoke_ingress(
            &w.sg,
            &[
                rule("54.228.16.0/26", 22, None),
                rule("54.228.16.0/26", 443, None),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidPermission.NotFound"));
    assert_eq!(w.cloud.ingress_rules(&w.sg).len(), 2);
    w.cloud
        .revoke_ingress(&w.sg, &[rule("54.228.16.0/26", 22, None)])
        .await
        .unwrap();
    assert_eq!(
        w.cloud.ingress_rules(&w.sg),
        [rule("15.177.0.0/18", 22, Some("by hand"))]
    );
}

async fn groups_are_found_by_name_or_id_and_hold_a_limited_number_of_rules(w: &Small) {
    let by_name = w
        .cloud
        .security_group_ingress("sophos", Some(&w.vpc))
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);
    assert!(
        w.cloud
            .security_group_ingress("sophos", Some("vpc-0other"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        w.cloud
            .security_group_ingress("sg-0nope", None)
            .await
            .unwrap()
            .is_empty()
    );
    let e = w
        .cloud
        .authorize_ingress("sg-0nope", 22, &[cidr("54.228.16.0/26")], "mine")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidGroup.NotFound"));

    w.cloud.set_rule_limit(2);
    let e = w
        .cloud
        .authorize_ingress(&w.sg, 22, &[cidr("1.0.0.0/24"), cidr("2.0.0.0/24")], "x")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("RulesPerSecurityGroupLimitExceeded"));
}

#[tokio::test]
async fn route53_reports_checkers_ports_ranges_and_upserts_records() {
    let cloud = MemoryCloud::new();
    health_checks_report_their_checkers_port_and_ranges(&cloud).await;
    upsert_replaces_a_simple_record_and_refuses_conflicts(&cloud).await;
}

async fn health_checks_report_their_checkers_port_and_ranges(cloud: &MemoryCloud) {
    cloud.add_health_check("hc-1", Some(443));
    assert!(
        cloud
            .health_check_status("hc-1")
            .await
            .unwrap()
            .mostly_healthy()
    );
    cloud.set_health("hc-1", 1, 3);
    let r = cloud.health_check_status("hc-1").await.unwrap();
    assert_eq!((r.healthy, r.total), (1, 3));
    assert!(!r.mostly_healthy());
    assert_eq!(cloud.health_check_port("hc-1").await.unwrap(), Some(443));
    let e = cloud.health_check_status("hc-2").await.unwrap_err();
    assert_eq!(e.code(), Some("NoSuchHealthCheck"));
    cloud.set_checker_ranges(&[cidr("15.177.0.0/18")]);
    assert_eq!(
        cloud.checker_ip_ranges().await.unwrap(),
        [cidr("15.177.0.0/18")]
    );
}

async fn upsert_replaces_a_simple_record_and_refuses_conflicts(cloud: &MemoryCloud) {
    let zone = cloud.add_hosted_zone("example.com");
    cloud
        .upsert_a_record(&zone, "vpn.example.com", 60, "10.0.1.5")
        .await
        .unwrap();
    cloud
        .upsert_a_record(
            &format!("/hostedzone/{zone}"),
            "vpn.example.com.",
            30,
            "10.0.2.9",
        )
        .await
        .unwrap();
    let records = cloud.a_records(&zone, "vpn.example.com.").await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name, "vpn.example.com.");
    assert_eq!(
        (records[0].ttl, records[0].values.clone()),
        (Some(30), vec!["10.0.2.9".to_owned()])
    );

    cloud.add_record(
        &zone,
        RecordSet {
            name: "ssh.example.com".into(),
            ttl: Some(60),
            values: vec!["203.0.113.1".into()],
            set_identifier: Some("primary".into()),
            alias: false,
        },
    );
    let e = cloud
        .upsert_a_record(&zone, "ssh.example.com", 60, "10.0.2.9")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidChangeBatch"));
    let e = cloud
        .upsert_a_record(&zone, "vpn.example.org", 60, "10.0.2.9")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidChangeBatch"));
    let e = cloud
        .a_records("Z0NOPE", "vpn.example.com")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchHostedZone"));
}

#[test]
fn clones_share_one_world_and_worlds_built_alike_compare_equal() {
    let a = small();
    let b = small();
    assert_eq!(a.cloud.view(), b.cloud.view());
    assert_eq!(a.old, b.old, "ids are deterministic");
    let clone = a.cloud.clone();
    clone.add_key_pair("other");
    clone.tag(&[&a.old], &[("Owner", "netops")]);
    assert_eq!(
        a.cloud.view().instance(&a.old).unwrap().tag("Owner"),
        Some("netops")
    );
    assert_ne!(a.cloud.view(), b.cloud.view());
}

#[tokio::test]
async fn with_encryption_by_default_on_a_key_the_role_may_not_use_kills_every_launch() {
    let w = small();
    let key = "arn:aws:kms:ap-northeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    // Off by default, and the default key is the AWS managed one.
    assert!(!w.cloud.ebs_encryption_by_default().await.unwrap());
    assert_eq!(
        w.cloud.ebs_default_kms_key().await.unwrap(),
        "alias/aws/ebs"
    );
    w.cloud.forbid_kms_key(key);
    let alive = w.cloud.run_instance(&launch(&w, "t-0")).await.unwrap();
    assert_eq!(
        w.cloud.instance(&alive.id).await.unwrap().unwrap().state,
        InstanceState::Running,
        "with encryption by default off, the key is never used"
    );

    w.cloud.encrypt_volumes_by_default(Some(key));
    assert!(w.cloud.ebs_encryption_by_default().await.unwrap());
    assert_eq!(w.cloud.ebs_default_kms_key().await.unwrap(), key);
    // The AMI is unencrypted: its volumes get the default key all the same.
    for token in ["t-1", "t-2"] {
        let new = w.cloud.run_instance(&launch(&w, token)).await.unwrap();
        assert_eq!(new.state, InstanceState::Pending, "EC2 accepts the launch");
        let dead = w.cloud.instance(&new.id).await.unwrap().unwrap();
        assert_eq!(dead.state, InstanceState::Terminated);
        assert_eq!(
            dead.state_reason.as_deref(),
            Some("Client.InternalError: Client error on launch")
        );
    }

    // The AWS managed key needs no grant.
    w.cloud.encrypt_volumes_by_default(None);
    let managed = w.cloud.run_instance(&launch(&w, "t-3")).await.unwrap();
    assert_eq!(
        w.cloud.instance(&managed.id).await.unwrap().unwrap().state,
        InstanceState::Running
    );
}
