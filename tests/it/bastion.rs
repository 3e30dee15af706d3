//! The bastion pattern of the second seed: Route 53 checker ranges kept in the
//! security group, a DNS record that follows the instance, and a primary
//! bastion relaunched in another AZ with its own EIP while the secondary stays
//! as it is. Real SDK adapter against moto; `GetCheckerIpRanges`, which moto
//! lacks, comes from the loopback stand-in, which passes every other Route 53
//! call through to moto.

use crate::common;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, HealthCheckConfig, HealthCheckType, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, RrType,
};
use common::route53_standin::Route53StandIn;
use common::*;
use ec2_failover::cloud::faults::{Fault, FaultyCloud};
use ec2_failover::cloud::sdk::SdkCloud;
use ec2_failover::jobs::checker_ranges::RULE_MARKER;
use ec2_failover::{App, Outcome, Settings, StepStatus};

const PORT: i32 = 2222;

/// Adds one TCP rule the way a person or another tool would.
async fn allow(ec2: &Client, group: &str, cidr: &str, port: i32, description: Option<&str>) {
    let p = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port);
    let p = if cidr.contains(':') {
        p.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(cidr)
                .set_description(description.map(str::to_owned))
                .build(),
        )
    } else {
        p.ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .set_description(description.map(str::to_owned))
                .build(),
        )
    };
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(p.build())
        .send()
        .await
        .unwrap();
}

/// (range, from port, to port, description) of every CIDR ingress rule, sorted.
type RuleView = (String, i32, i32, String);

async fn rules(ec2: &Client, group: &str) -> Vec<RuleView> {
    let out = ec2
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .unwrap();
    let mut found = Vec::new();
    for p in out.security_groups()[0].ip_permissions() {
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        for r in p.ip_ranges() {
            let d = r.description().unwrap_or_default().to_owned();
            found.push((r.cidr_ip().unwrap().to_owned(), from, to, d));
        }
        for r in p.ipv6_ranges() {
            let d = r.description().unwrap_or_default().to_owned();
            found.push((r.cidr_ipv6().unwrap().to_owned(), from, to, d));
        }
    }
    found.sort();
    found
}

fn rule(cidr: &str, port: i32, description: &str) -> RuleView {
    (cidr.to_owned(), port, port, description.to_owned())
}

fn bastion_settings(extra: &[(&str, &str)]) -> Settings {
    let mut env: Vec<(String, String)> = vec![
        ("INSTANCE_NAME".into(), "bastion-1".into()),
        ("AMI_NAME".into(), "bastion".into()),
        ("VPC_NAME".into(), "my-vpc".into()),
        ("SUBNET_NAME".into(), "public".into()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    Settings::from_lookup(|k| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
        .expect("valid test settings")
}

async fn tcp_health_check(route53: &aws_sdk_route53::Client, ip: &str, port: i32) -> String {
    route53
        .create_health_check()
        .caller_reference(format!("bastion-{ip}-{port}"))
        .health_check_config(
            HealthCheckConfig::builder()
                .ip_address(ip)
                .port(port)
                .r#type(HealthCheckType::Tcp)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .health_check()
        .unwrap()
        .id()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checker_ranges_are_reconciled_idempotently_and_foreign_rules_stay() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let vpc_id = vpc(&ec2, "10.0.0.0/16", "my-vpc").await;
    let sg = group(&ec2, &vpc_id, "bastion").await;
    // The same name in another VPC: the name is resolved within VPC_NAME only.
    let other_vpc = vpc(&ec2, "10.9.0.0/16", "other-vpc").await;
    let other_sg = group(&ec2, &other_vpc, "bastion").await;

    // What the group holds before the first sync.
    allow(&ec2, &sg, "15.177.0.0/18", PORT, Some("added by hand")).await;
    allow(&ec2, &sg, "203.0.113.0/24", PORT, Some("office")).await;
    allow(&ec2, &sg, "2600:1f18:7fff:f800::/56", PORT, None).await;
    allow(&ec2, &sg, "107.23.255.0/26", PORT, Some(RULE_MARKER)).await;
    allow(&ec2, &sg, "54.183.255.128/26", 22, Some(RULE_MARKER)).await;

    // The port comes from the health check (moto serves GetHealthCheck).
    let health_check = tcp_health_check(&moto.route53(), "198.51.100.10", PORT).await;
    let standin = Route53StandIn::with_ranges(
        &[
            "15.177.0.0/18",
            "54.183.255.128/26",
            "2600:1f14:fff:f800::/56",
        ],
        &moto.endpoint,
    )
    .await;
    let cloud = FaultyCloud::new(SdkCloud::new(ec2.clone(), route53_at(&standin.endpoint)));
    let app = App {
        cloud: cloud.clone(),
        settings: bastion_settings(&[
            ("CHECKER_SECURITY_GROUP", "bastion"),
            ("HEALTH_CHECK_ID", &health_check),
        ]),
    };

    let r = handle(
        &app,
        &sample("manual-sync-checker-ranges.json"),
        &invocation("req-1"),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::RangesSynced, "{r:#?}");
    let step = |r: &ec2_failover::Report, name: &str| r.step(name).unwrap().clone();
    assert!(
        step(&r, "discover")
            .detail
            .contains("TCP port 2222 from health check"),
        "{r:#?}"
    );
    assert_eq!(step(&r, "authorize_ranges").status, StepStatus::Done);
    assert_eq!(
        step(&r, "authorize_ranges").detail,
        "added 2: 54.183.255.128/26, 2600:1f14:fff:f800::/56"
    );
    assert_eq!(step(&r, "revoke_ranges").status, StepStatus::Done);
    assert!(
        step(&r, "revoke_ranges").detail.starts_with("removed 2"),
        "{r:#?}"
    );
    assert!(
        step(&r, "kept_ranges")
            .detail
            .contains("covered by rules not ours 1: 15.177.0.0/18"),
        "{r:#?}"
    );
    let expected = vec![
        rule("15.177.0.0/18", PORT, "added by hand"),
        rule("203.0.113.0/24", PORT, "office"),
        rule("2600:1f14:fff:f800::/56", PORT, RULE_MARKER),
        rule("2600:1f18:7fff:f800::/56", PORT, ""),
        rule("54.183.255.128/26", PORT, RULE_MARKER),
    ];
    assert_eq!(rules(&ec2, &sg).await, expected);
    assert!(rules(&ec2, &other_sg).await.is_empty());

    // AWS announces new ranges, but the checkers' did not change: nothing to do,
    // and not one mutating call.
    let before = cloud.calls().len();
    let r = handle(&app, &sample("ip-space-changed.json"), &invocation("req-2"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::RangesSynced);
    for name in ["revoke_ranges", "authorize_ranges", "kept_ranges"] {
        assert_eq!(step(&r, name).status, StepStatus::AlreadyDone, "{r:#?}");
    }
    let mutations: Vec<_> = cloud.calls()[before..]
        .iter()
        .filter(|c| c.mutating)
        .cloned()
        .collect();
    assert!(mutations.is_empty(), "{mutations:?}");
    assert_eq!(rules(&ec2, &sg).await, expected);

    // Route 53 retires one range and adds another: exactly those two change.
    standin.set_ranges(&["15.177.0.0/18", "54.228.16.0/26", "2600:1f14:fff:f800::/56"]);
    let r = handle(&app, &sample("ip-space-changed.json"), &invocation("req-3"))
        .await
        .unwrap();
    assert_eq!(
        step(&r, "authorize_ranges").detail,
        "added 1: 54.228.16.0/26"
    );
    assert_eq!(
        step(&r, "revoke_ranges").detail,
        "removed 1: 54.183.255.128/26 tcp/2222"
    );
    assert_eq!(
        rules(&ec2, &sg).await,
        vec![
            rule("15.177.0.0/18", PORT, "added by hand"),
            rule("203.0.113.0/24", PORT, "office"),
            rule("2600:1f14:fff:f800::/56", PORT, RULE_MARKER),
            rule("2600:1f18:7fff:f800::/56", PORT, ""),
            rule("54.228.16.0/26", PORT, RULE_MARKER),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sync_and_an_explicit_port_change_nothing_unasked() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let vpc_id = vpc(&ec2, "10.0.0.0/16", "my-vpc").await;
    let sg = group(&ec2, &vpc_id, "bastion").await;
    let standin = Route53StandIn::with_ranges(&["15.177.0.0/18"], &moto.endpoint).await;
    let app = |extra: &[(&str, &str)]| App {
        cloud: SdkCloud::new(ec2.clone(), route53_at(&standin.endpoint)),
        settings: bastion_settings(extra),
    };

    // By group id, without a health check: the default port, 22. Dry run first.
    let dry = app(&[("CHECKER_SECURITY_GROUP", &sg), ("DRY_RUN", "true")]);
    let r = handle(
        &dry,
        &sample("manual-sync-checker-ranges.json"),
        &invocation("req-1"),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Planned);
    assert_eq!(
        r.step("authorize_ranges").unwrap().status,
        StepStatus::Planned
    );
    assert!(rules(&ec2, &sg).await.is_empty());

    let live = app(&[("CHECKER_SECURITY_GROUP", &sg)]);
    handle(
        &live,
        &sample("ip-space-changed.json"),
        &invocation("req-2"),
    )
    .await
    .unwrap();
    assert_eq!(
        rules(&ec2, &sg).await,
        vec![rule("15.177.0.0/18", 22, RULE_MARKER)]
    );

    // CHECKER_PORT moves our rule to the new port.
    let moved = app(&[("CHECKER_SECURITY_GROUP", &sg), ("CHECKER_PORT", "443")]);
    handle(
        &moved,
        &sample("ip-space-changed.json"),
        &invocation("req-3"),
    )
    .await
    .unwrap();
    assert_eq!(
        rules(&ec2, &sg).await,
        vec![rule("15.177.0.0/18", 443, RULE_MARKER)]
    );

    // Without CHECKER_SECURITY_GROUP the notification is acknowledged, nothing more.
    let r = handle(
        &app(&[]),
        &sample("ip-space-changed.json"),
        &invocation("req-4"),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Ignored);
}

/// The seed's two bastions, each with its own EIP, and Route 53 records.
struct Bastions {
    subnet_a: String,
    subnet_c: String,
    primary: String,
    secondary: String,
    eip_a: String,
    eip_b: String,
    zone: String,
}

async fn build_bastions(ec2: &Client, route53: &aws_sdk_route53::Client) -> Bastions {
    let vpc_id = vpc(ec2, "10.0.0.0/16", "my-vpc").await;
    let subnet_a = subnet(ec2, &vpc_id, "10.0.1.0/24", "ap-northeast-1a", "public").await;
    let subnet_c = subnet(ec2, &vpc_id, "10.0.2.0/24", "ap-northeast-1c", "public").await;
    let sg = group(ec2, &vpc_id, "bastion").await;
    ec2.create_key_pair().key_name("ops").send().await.unwrap();
    let base = base_image(ec2).await;
    let primary = launch(ec2, &base, &subnet_a, &[&sg], &[("Name", "bastion-1")]).await;
    let secondary = launch(ec2, &base, &subnet_c, &[&sg], &[("Name", "bastion-2")]).await;
    create_ami(ec2, &primary, "bastion_20261120", "bastion").await;
    let eip_a = eip_for(ec2, &primary).await;
    let eip_b = eip_for(ec2, &secondary).await;

    let zone = route53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("bastion-zone")
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .to_owned();
    let health_check = tcp_health_check(route53, &eip_a, 22).await;
    // The seed's DNS failover pair on the EIPs, and a simple record of the
    // primary's private address for the DNS step to keep up to date.
    let failover = |id: &str, role: ResourceRecordSetFailover, ip: &str, check: Option<&str>| {
        ResourceRecordSet::builder()
            .name("ssh.example.com")
            .r#type(RrType::A)
            .ttl(60)
            .set_identifier(id)
            .failover(role)
            .set_health_check_id(check.map(str::to_owned))
            .resource_records(ResourceRecord::builder().value(ip).build().unwrap())
            .build()
            .unwrap()
    };
    let private_a = describe(ec2, &primary)
        .await
        .private_ip_address()
        .unwrap()
        .to_owned();
    let records = [
        failover(
            "primary",
            ResourceRecordSetFailover::Primary,
            &eip_a,
            Some(&health_check),
        ),
        failover(
            "secondary",
            ResourceRecordSetFailover::Secondary,
            &eip_b,
            None,
        ),
        ResourceRecordSet::builder()
            .name("bastion-1.example.com")
            .r#type(RrType::A)
            .ttl(300)
            .resource_records(ResourceRecord::builder().value(&private_a).build().unwrap())
            .build()
            .unwrap(),
    ];
    let mut batch = ChangeBatch::builder();
    for r in records {
        batch = batch.changes(
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(r)
                .build()
                .unwrap(),
        );
    }
    route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(batch.build().unwrap())
        .send()
        .await
        .unwrap();

    Bastions {
        subnet_a,
        subnet_c,
        primary,
        secondary,
        eip_a,
        eip_b,
        zone,
    }
}

/// (name, set identifier, ttl, values) of every A record in the zone, sorted.
async fn a_records(
    route53: &aws_sdk_route53::Client,
    zone: &str,
) -> Vec<(String, String, i64, Vec<String>)> {
    let out = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    let mut found: Vec<_> = out
        .resource_record_sets()
        .iter()
        .filter(|r| *r.r#type() == RrType::A)
        .map(|r| {
            (
                r.name().to_owned(),
                r.set_identifier().unwrap_or_default().to_owned(),
                r.ttl().unwrap_or_default(),
                r.resource_records()
                    .iter()
                    .map(|v| v.value().to_owned())
                    .collect(),
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_bastion_moves_az_with_its_own_eip_and_dns_follows() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let route53 = moto.route53();
    let b = build_bastions(&ec2, &route53).await;
    let records_before = a_records(&route53, &b.zone).await;
    let app = App {
        cloud: SdkCloud::new(ec2.clone(), route53.clone()),
        settings: bastion_settings(&[
            ("FLOATING_IP", &b.eip_a),
            ("DNS_ZONE_ID", &b.zone),
            ("DNS_RECORD_NAME", "bastion-1.example.com"),
        ]),
    };

    let r = handle(&app, &sample("manual-failover.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new_id = r.new_instance.clone().unwrap();
    let new = describe(&ec2, &new_id).await;
    assert_eq!(new.subnet_id(), Some(b.subnet_c.as_str()), "another AZ");
    assert_ne!(new.subnet_id(), Some(b.subnet_a.as_str()));
    assert_eq!(tag_of(&new, "Name").as_deref(), Some("bastion-1"));
    // The primary's own EIP is back on the primary, so Route 53's PRIMARY
    // record is healthy again and DNS fails back to it.
    assert_eq!(address_owner(&ec2, &b.eip_a).await, Some(new_id.clone()));
    let old = describe(&ec2, &b.primary).await;
    let old_state = old.state().unwrap().name().unwrap().as_str().to_owned();
    assert!(
        old_state == "stopping" || old_state == "stopped",
        "{old_state}"
    );
    // The secondary and its EIP are untouched.
    let secondary = describe(&ec2, &b.secondary).await;
    assert_eq!(
        secondary.state().unwrap().name().unwrap().as_str(),
        "running"
    );
    assert_eq!(
        address_owner(&ec2, &b.eip_b).await,
        Some(b.secondary.clone())
    );
    assert_eq!(
        instances_named(&ec2, "bastion-2").await,
        vec![b.secondary.clone()]
    );

    // The simple record follows the replacement's private address with DNS_TTL;
    // the failover pair still names the two EIPs.
    let private_new = new.private_ip_address().unwrap().to_owned();
    let mut expected = records_before.clone();
    for r in expected.iter_mut() {
        if r.0 == "bastion-1.example.com." {
            r.2 = 60;
            r.3 = vec![private_new.clone()];
        }
    }
    assert_eq!(a_records(&route53, &b.zone).await, expected);
    assert_eq!(r.step("dns_record").unwrap().status, StepStatus::Done);
    let primary_record = expected.iter().find(|r| r.1 == "primary").unwrap();
    assert_eq!(primary_record.3, vec![b.eip_a.clone()]);

    // The same request again: nothing left to do, DNS included.
    let again = handle(&app, &sample("manual-failover.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
    assert_eq!(
        again.step("dns_record").unwrap().status,
        StepStatus::AlreadyDone
    );
    assert_eq!(a_records(&route53, &b.zone).await, expected);

    // Pointed at the seed's failover records, the step refuses to flatten them
    // into a simple record.
    let on_failover_pair = App {
        cloud: SdkCloud::new(ec2.clone(), route53.clone()),
        settings: bastion_settings(&[
            ("FLOATING_IP", &b.eip_a),
            ("DNS_ZONE_ID", &b.zone),
            ("DNS_RECORD_NAME", "ssh.example.com"),
            ("DNS_ADDRESS", "public"),
        ]),
    };
    let plan = handle(
        &on_failover_pair,
        &sample("manual-plan.json"),
        &invocation("req-2"),
    )
    .await
    .unwrap();
    let dns = plan.step("dns_record").unwrap();
    assert_eq!(dns.status, StepStatus::Skipped, "{plan:#?}");
    assert!(dns.detail.contains("SetIdentifier"), "{}", dns.detail);
    assert_eq!(a_records(&route53, &b.zone).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route53_look_that_fails_does_not_keep_the_bastion_down() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let route53 = moto.route53();
    let b = build_bastions(&ec2, &route53).await;
    let cloud =
        FaultyCloud::new(SdkCloud::new(ec2.clone(), route53.clone())).with(Fault::FailOperation {
            operation: "ListResourceRecordSets",
            target: String::new(),
            code: "AccessDenied".into(),
            times: None,
        });
    let app = App {
        cloud: cloud.clone(),
        settings: bastion_settings(&[
            ("FLOATING_IP", &b.eip_a),
            ("DNS_ZONE_ID", &b.zone),
            ("DNS_RECORD_NAME", "bastion-1.example.com"),
        ]),
    };
    let r = handle(&app, &sample("manual-failover.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new_id = r.new_instance.clone().unwrap();
    assert_eq!(address_owner(&ec2, &b.eip_a).await, Some(new_id.clone()));
    let dns = r.step("dns_record").unwrap();
    assert_eq!(dns.status, StepStatus::Done, "{r:#?}");
    assert!(dns.detail.contains("the look failed"), "{}", dns.detail);
    let private_new = describe(&ec2, &new_id)
        .await
        .private_ip_address()
        .unwrap()
        .to_owned();
    let record = a_records(&route53, &b.zone)
        .await
        .into_iter()
        .find(|r| r.0 == "bastion-1.example.com.")
        .unwrap();
    assert_eq!((record.2, record.3), (60, vec![private_new]));
}
