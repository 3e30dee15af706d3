//! The worlds the in-process tests start from (the failover's, the snapshot's,
//! the checker sync's) with what each job must leave behind, and small
//! readers of calls and reports the areas share.

use crate::common;

use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::faults::{Call, FaultyCloud};
use ec2_failover::cloud::memory::{ImageSpec, ImageView, MemoryCloud, WorldView};
use ec2_failover::cloud::{
    CREATED_BY, IngressRule, MetadataOptions, RecordSet, TAG_CREATED_BY, TAG_IMAGE,
    TAG_SOURCE_INSTANCE,
};
use ec2_failover::jobs::checker_ranges::RULE_MARKER;
use ec2_failover::{Report, Settings, StepStatus};
use serde_json::{Value, json};

/// The health check of the sample alarms (their `HealthCheckId` dimension).
pub(super) const SLOT: &str = "2026-11-21T18:00:00Z";
pub(super) const SLOT_AMI: &str = "sophos-20261121T1800Z";

pub(super) fn mutations(calls: &[Call]) -> Vec<&'static str> {
    calls
        .iter()
        .filter(|c| c.mutating)
        .map(|c| c.operation)
        .collect()
}

pub(super) fn scheduled_at(time: &str) -> Value {
    let mut v = sample("scheduled-snapshot.json");
    v["time"] = json!(time);
    v
}

pub(super) fn status(r: &Report, step: &str) -> Option<StepStatus> {
    r.step(step).map(|s| s.status)
}

pub(super) fn rule(cidr_text: &str, port: i32, description: Option<&str>) -> IngressRule {
    IngressRule {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        cidr: cidr(cidr_text),
        description: description.map(str::to_owned),
    }
}

/// The seed world, plus a DNS record that follows the appliance and a health
/// check that most checkers see failing: every step of a failover acts.
pub(super) fn failover_world() -> (MemWorld, Settings) {
    let w = seed_world();
    let zone = w.cloud.add_hosted_zone("example.com");
    let private = w
        .cloud
        .peek_instance(&w.sophos)
        .and_then(|i| i.private_ip)
        .expect("a private address");
    w.cloud.add_record(
        &zone,
        RecordSet {
            name: "vpn.example.com".into(),
            ttl: Some(300),
            values: vec![private],
            set_identifier: None,
            alias: false,
        },
    );
    w.cloud.add_health_check(HEALTH_CHECK, Some(443));
    w.cloud.set_health(HEALTH_CHECK, 1, 8);
    let s = seed_settings(
        &w,
        &[
            ("HEALTH_CHECK_ID", HEALTH_CHECK),
            ("DNS_ZONE_ID", &zone),
            ("DNS_RECORD_NAME", "vpn.example.com"),
        ],
    );
    (w, s)
}

/// The failover world after its outage: the alarm OK, and the appliance
/// (in 1a) away from its home, 1c (`HOME_AZ`), so a fail-back moves it
/// there as a failover would.
pub(super) fn away_from_home() -> (MemWorld, Settings) {
    let (w, mut settings) = alarm_world();
    set_alarm_state(&w, "sophos-health", "OK");
    settings.failover.home_az = Some("ap-northeast-1c".into());
    (w, settings)
}

/// The failover world, its alarm in ALARM and followed by name.
pub(super) fn alarm_world() -> (MemWorld, Settings) {
    let (w, mut settings) = failover_world();
    settings.appliance.alarm_name = Some("sophos-health".into());
    w.cloud.set_alarm(ec2_failover::cloud::Alarm {
        name: "sophos-health".into(),
        arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:sophos-health".into(),
        state: "ALARM".into(),
        reason: Some("Threshold Crossed".into()),
        // A fixed time: every world of the crash matrix is the same transition.
        transitioned_at: Some(chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_413)),
        updated_at: None,
        health_check_id: Some(HEALTH_CHECK.into()),
        actions: vec![],
    });
    (w, settings)
}

pub(super) fn check_failover(w: &MemWorld, _before: &WorldView, after: &WorldView) {
    let new_id = assert_failed_over_once(after, w);
    let private = w
        .cloud
        .peek_instance(&new_id)
        .and_then(|i| i.private_ip)
        .expect("the replacement's private address");
    let [record] = after.records.as_slice() else {
        panic!("one record: {:?}", after.records)
    };
    assert_eq!(
        (record.name.as_str(), record.ttl, record.values.clone()),
        ("vpn.example.com.", Some(60), vec![private])
    );
}

/// The seed world with three earlier AMIs of this tool: the oldest (two
/// snapshots) is beyond `AMI_RETENTION=3` once the slot's AMI exists, and the
/// newest still has untagged snapshots (an earlier run died before tagging).
pub(super) fn snapshot_world() -> (MemWorld, Settings) {
    let w = seed_world();
    for (slot, days, snapshots, tagged) in [
        ("20261118T1800Z", 4, 2, true),
        ("20261119T1800Z", 3, 1, true),
        ("20261120T1800Z", 2, 1, false),
    ] {
        let ami = w.cloud.add_image(
            ImageSpec::new(&format!("sophos-{slot}"))
                .tag("Name", "sophos")
                .tag(TAG_CREATED_BY, CREATED_BY)
                .tag(TAG_SOURCE_INSTANCE, &w.sophos)
                .of_instance(&w.sophos)
                .created(days_ago(days))
                .snapshots(snapshots),
        );
        if tagged {
            let snaps = snapshots_of(&w.cloud, &ami);
            let snaps: Vec<&str> = snaps.iter().map(String::as_str).collect();
            w.cloud.tag(
                &snaps,
                &[
                    ("Name", "sophos"),
                    (TAG_CREATED_BY, CREATED_BY),
                    (TAG_IMAGE, &ami),
                    (TAG_SOURCE_INSTANCE, &w.sophos),
                ],
            );
        }
    }
    let s = seed_settings(&w, &[]);
    (w, s)
}

pub(super) fn snapshots_of(cloud: &MemoryCloud, ami: &str) -> Vec<String> {
    cloud
        .all_images()
        .into_iter()
        .find(|i| i.id == ami)
        .map(|i| i.snapshot_ids)
        .unwrap_or_default()
}

pub(super) fn image_named<'a>(view: &'a WorldView, name: &str) -> Option<&'a ImageView> {
    view.images.iter().find(|i| i.name == name)
}

pub(super) fn check_snapshot(w: &MemWorld, before: &WorldView, after: &WorldView) {
    let slot: Vec<_> = after.images.iter().filter(|i| i.name == SLOT_AMI).collect();
    assert_eq!(
        slot.len(),
        1,
        "exactly one AMI of the slot: {:?}",
        after.images
    );
    let ami = slot[0];
    assert_eq!(ami.tag("Name"), Some("sophos"));
    assert_eq!(ami.tag(TAG_CREATED_BY), Some(CREATED_BY));
    assert_eq!(ami.tag(TAG_SOURCE_INSTANCE), Some(w.sophos.as_str()));
    assert!(!ami.snapshot_ids.is_empty());
    // Every snapshot of every tool AMI carries the tool's tags.
    for image in after
        .images
        .iter()
        .filter(|i| i.tag(TAG_CREATED_BY).is_some())
    {
        for s in &image.snapshot_ids {
            let snap = after.snapshot(s).expect("the AMI's snapshot exists");
            assert_eq!(snap.tag(TAG_IMAGE), Some(image.id.as_str()), "{s}");
            assert_eq!(snap.tag(TAG_CREATED_BY), Some(CREATED_BY), "{s}");
            assert_eq!(snap.tag("Name"), Some("sophos"), "{s}");
        }
    }
    // The oldest tool AMI is gone with both its snapshots; the other two stay.
    let oldest = image_named(before, "sophos-20261118T1800Z").expect("seeded");
    assert!(after.image(&oldest.id).is_none(), "pruned");
    assert_eq!(oldest.snapshot_ids.len(), 2);
    for s in &oldest.snapshot_ids {
        assert!(after.snapshot(s).is_none(), "{s} deleted with its AMI");
    }
    for name in ["sophos-20261119T1800Z", "sophos-20261120T1800Z"] {
        assert!(image_named(after, name).is_some(), "{name} is kept");
    }
    // AMIs this tool did not make, and their snapshots, are untouched.
    for id in [&w.old_ami, &w.new_ami, &w.web_ami, &w.base_image] {
        assert_eq!(after.image(id), before.image(id), "{id}");
        for s in &before.image(id).expect("seeded").snapshot_ids {
            assert_eq!(after.snapshot(s), before.snapshot(s), "{s}");
        }
    }
    assert_eq!(after.instances, before.instances, "no instance changed");
}

pub(super) const CHECKER_PORT: i32 = 2222;

/// The seed world's `sophos` group with rules of every kind, a group of the
/// same name in another VPC, a health check on port 2222 and the checker
/// ranges Route 53 serves.
pub(super) fn checker_world() -> (MemWorld, Settings) {
    let w = seed_world();
    let sg = &w.security_group;
    for r in [
        rule("15.177.0.0/18", CHECKER_PORT, Some("added by hand")),
        rule("0.0.0.0/0", 443, Some("web")),
        rule("2600:1f18:7fff:f800::/56", CHECKER_PORT, None),
        rule("107.23.255.0/26", CHECKER_PORT, Some(RULE_MARKER)),
        rule("54.183.255.128/26", 22, Some(RULE_MARKER)),
    ] {
        w.cloud.add_ingress(sg, r);
    }
    let elsewhere = w.cloud.add_security_group(&w.other_vpc, "sophos");
    w.cloud.add_ingress(
        &elsewhere,
        rule("107.23.255.0/26", CHECKER_PORT, Some(RULE_MARKER)),
    );
    w.cloud.add_health_check(HEALTH_CHECK, Some(2222));
    w.cloud.set_checker_ranges(&checker_ranges());
    let s = seed_settings(
        &w,
        &[
            ("CHECKER_SECURITY_GROUP", "sophos"),
            ("HEALTH_CHECK_ID", HEALTH_CHECK),
        ],
    );
    (w, s)
}

pub(super) fn check_checker_ranges(w: &MemWorld, before: &WorldView, after: &WorldView) {
    let view = |r: IngressRule| {
        (
            r.protocol,
            r.from_port,
            r.to_port,
            r.cidr.to_string(),
            r.description,
        )
    };
    let mut wanted: Vec<_> = [
        rule("15.177.0.0/18", CHECKER_PORT, Some("added by hand")),
        rule("0.0.0.0/0", 443, Some("web")),
        rule("2600:1f18:7fff:f800::/56", CHECKER_PORT, None),
        rule("54.183.255.128/26", CHECKER_PORT, Some(RULE_MARKER)),
        rule("54.228.16.0/26", CHECKER_PORT, Some(RULE_MARKER)),
        rule("2600:1f14:fff:f800::/56", CHECKER_PORT, Some(RULE_MARKER)),
    ]
    .map(view)
    .to_vec();
    wanted.sort();
    let group = after.group(&w.security_group).expect("the group");
    assert_eq!(group.rules, wanted);
    for g in after.groups.iter().filter(|g| g.id != w.security_group) {
        assert_eq!(Some(g), before.group(&g.id), "another group changed");
    }
}

pub(super) async fn clean_failover_calls() -> Vec<Call> {
    let (w, settings) = failover_world();
    let cloud = FaultyCloud::new(w.cloud.clone());
    invoke(
        &single(cloud.clone(), settings),
        &sample("sns-alarm.json"),
        "clean",
    )
    .await
    .unwrap();
    cloud.calls()
}

/// The report's step of this name.
pub(super) fn step<'a>(r: &'a Report, name: &str) -> Vec<&'a ec2_failover::report::StepRecord> {
    r.steps.iter().filter(|s| s.step == name).collect()
}

/// `#!/bin/sh\necho vpn up\n`, base64 as EC2 keeps user data.
pub(super) const USER_DATA: &str = "IyEvYmluL3NoCmVjaG8gdnBuIHVwCg==";

pub(super) fn imdsv2() -> MetadataOptions {
    MetadataOptions {
        http_tokens: Some("required".into()),
        http_put_response_hop_limit: Some(2),
        http_endpoint: Some("enabled".into()),
        instance_metadata_tags: Some("enabled".into()),
    }
}

/// A deployment over the world with a lease table of its own (so it
/// remembers what it told) and the topic and bus it tells, in memory.
pub(super) fn telling(
    w: &MemWorld,
    settings: &Settings,
) -> (
    ec2_failover::Fleet<FaultyCloud<MemoryCloud>>,
    ec2_failover::cloud::memory::MemoryAnnouncer,
) {
    let (leases, out) = Default::default();
    let cloud = FaultyCloud::new(w.cloud.clone());
    (deployment(cloud, settings, Some(&leases), &out), out)
}

/// A deployment over `cloud` with the lease table (the lease, the pause and
/// the memory of what was told), when given, and a topic and bus in memory.
pub(super) fn deployment(
    cloud: FaultyCloud<MemoryCloud>,
    settings: &Settings,
    leases: Option<&ec2_failover::cloud::memory::MemoryLeases>,
    out: &ec2_failover::cloud::memory::MemoryAnnouncer,
) -> ec2_failover::Fleet<FaultyCloud<MemoryCloud>> {
    use std::sync::Arc;
    let fleet = single(cloud, settings.clone());
    let notifier = |memory| ec2_failover::notify::Notifier::new(Arc::new(out.clone()), memory);
    let Some(leases) = leases else {
        return fleet.with_notifier(notifier(None));
    };
    let table = Arc::new(leases.clone());
    let wait = Some(std::time::Duration::from_secs(2));
    fleet
        .with_locks(ec2_failover::lease::Locks::new(table.clone(), wait))
        .with_pauses(table.clone())
        .with_notifier(notifier(Some(table)))
}
