//! The whole function in process: the public front door (`handle`) over the
//! in-memory cloud (`MemoryCloud`, AWS's documented rules), with faults
//! injected by `FaultyCloud`. No Python, no moto, no sleeping: the crash at
//! every mutating call of every job, idempotence, dry runs, the flap guard,
//! capacity fallback and fleet routing, each in a few milliseconds.
//!
//! Assertions look at the world and at the report's outcome, step names and
//! statuses, never at the wording of step details.

use crate::common;

use common::memory_world::*;
use common::{VPN_CIDR, sample};
use ec2_failover::cloud::faults::{Call, Fault, FaultyCloud};
use ec2_failover::cloud::memory::{ImageSpec, ImageView, InstanceSpec, MemoryCloud, WorldView};
use ec2_failover::cloud::{
    CREATED_BY, Cloud, IngressRule, InstanceState, MetadataOptions, RecordSet, RouteTarget,
    TAG_CREATED_BY, TAG_IMAGE, TAG_INCIDENT, TAG_REPLACES, TAG_SOURCE_INSTANCE,
};
use ec2_failover::jobs::checker_ranges::RULE_MARKER;
use ec2_failover::{FailoverError, Outcome, Report, Response, Settings, StepStatus};
use serde_json::{Value, json};

/// The health check of the sample alarms (their `HealthCheckId` dimension).
const SLOT: &str = "2026-11-21T18:00:00Z";
const SLOT_AMI: &str = "sophos-20261121T1800Z";

fn mutations(calls: &[Call]) -> Vec<&'static str> {
    calls
        .iter()
        .filter(|c| c.mutating)
        .map(|c| c.operation)
        .collect()
}

fn scheduled_at(time: &str) -> Value {
    let mut v = sample("scheduled-snapshot.json");
    v["time"] = json!(time);
    v
}

fn status(r: &Report, step: &str) -> Option<StepStatus> {
    r.step(step).map(|s| s.status)
}

fn rule(cidr_text: &str, port: i32, description: Option<&str>) -> IngressRule {
    IngressRule {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        cidr: cidr(cidr_text),
        description: description.map(str::to_owned),
    }
}

// ----- the three jobs' worlds ----------------------------------------------------

/// The seed world, plus a DNS record that follows the appliance and a health
/// check that most checkers see failing: every step of a failover acts.
fn failover_world() -> (MemWorld, Settings) {
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

fn check_failover(w: &MemWorld, _before: &WorldView, after: &WorldView) {
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
fn snapshot_world() -> (MemWorld, Settings) {
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

fn snapshots_of(cloud: &MemoryCloud, ami: &str) -> Vec<String> {
    cloud
        .all_images()
        .into_iter()
        .find(|i| i.id == ami)
        .map(|i| i.snapshot_ids)
        .unwrap_or_default()
}

fn image_named<'a>(view: &'a WorldView, name: &str) -> Option<&'a ImageView> {
    view.images.iter().find(|i| i.name == name)
}

fn check_snapshot(w: &MemWorld, before: &WorldView, after: &WorldView) {
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

const CHECKER_PORT: i32 = 2222;

/// The seed world's `sophos` group with rules of every kind, a group of the
/// same name in another VPC, a health check on port 2222 and the checker
/// ranges Route 53 serves.
fn checker_world() -> (MemWorld, Settings) {
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

fn check_checker_ranges(w: &MemWorld, before: &WorldView, after: &WorldView) {
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

// ----- the crash matrix ---------------------------------------------------------

type Check = fn(&MemWorld, &WorldView, &WorldView);

/// Runs `payload` once cleanly, then, for every mutating call k of that run
/// and both ways of dying there, on a fresh world: a run that dies at k, a
/// retry through a new wrapper over the same world, and a third delivery. The
/// retry must end in the clean run's world, and the third must change nothing.
/// `done[0]` is the outcome of a run that acted; the others, of one that found
/// everything done (the crash came after AWS carried out the last call).
async fn crash_matrix(
    build: fn() -> (MemWorld, Settings),
    payload: &Value,
    done: &[Outcome],
    check: Check,
) -> Vec<&'static str> {
    // Dying before AWS saw a call leaves that call to the retry, which then acts.
    let acted = done[0];
    let (w, settings) = build();
    let before = w.view();
    let clean = FaultyCloud::new(w.cloud.clone());
    let report = invoke(&single(clean.clone(), settings.clone()), payload, "clean")
        .await
        .unwrap_or_else(|e| panic!("the clean run fails: {e}"));
    assert_eq!(report.outcome, acted, "{report:#?}");
    let clean_view = w.view();
    check(&w, &before, &clean_view);
    let ops = mutations(&clean.calls());
    assert!(!ops.is_empty());

    for after_effect in [false, true] {
        for k in 1..=ops.len() {
            let case = format!("k={k} ({}) after_effect={after_effect}", ops[k - 1]);
            let (w, settings) = build();
            assert_eq!(w.view(), before, "worlds are built alike");
            let dying =
                FaultyCloud::new(w.cloud.clone()).with(Fault::DieAtMutation { k, after_effect });
            let e = invoke(&single(dying.clone(), settings.clone()), payload, "first")
                .await
                .expect_err(&case);
            assert!(e.retryable(), "{case}: a crash is worth a retry: {e}");
            let calls = dying.calls();
            let died = calls.iter().filter(|c| c.mutating).position(|c| c.failed);
            assert_eq!(died, Some(k - 1), "{case}: died where asked");
            assert_eq!(
                mutations(&calls)[k - 1],
                ops[k - 1],
                "{case}: same order as the clean run"
            );

            let retry = FaultyCloud::new(w.cloud.clone());
            let r = invoke(&single(retry.clone(), settings.clone()), payload, "retry")
                .await
                .unwrap_or_else(|e| panic!("{case}: the retry fails: {e}"));
            if after_effect {
                assert!(done.contains(&r.outcome), "{case}: {r:#?}");
            } else {
                assert_eq!(r.outcome, acted, "{case}: {r:#?}");
            }
            let after = w.view();
            check(&w, &before, &after);
            assert_eq!(after, clean_view, "{case}: the world of one clean run");

            let third = FaultyCloud::new(w.cloud.clone());
            invoke(&single(third.clone(), settings), payload, "third")
                .await
                .unwrap_or_else(|e| panic!("{case}: the third delivery fails: {e}"));
            assert!(
                mutations(&third.calls()).is_empty(),
                "{case}: {:?}",
                third.calls()
            );
            assert_eq!(w.view(), clean_view, "{case}");
        }
    }
    ops
}

#[tokio::test(start_paused = true)]
async fn a_failover_dying_at_any_mutating_call_resumes_into_one_clean_failover() {
    let ops = crash_matrix(
        failover_world,
        &sample("sns-alarm.json"),
        &[Outcome::FailedOver, Outcome::AlreadyFailedOver],
        check_failover,
    )
    .await;
    let mut sorted = ops.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "AssociateAddress",
            "ChangeResourceRecordSets",
            "ModifyInstanceAttribute",
            "ReplaceRoute",
            "RunInstances",
            "StopInstances",
        ]
    );
}

/// The failover world, its alarm in ALARM and followed by name.
fn reconcile_world() -> (MemWorld, Settings) {
    let (w, mut settings) = failover_world();
    settings.appliance.alarm_name = Some("sophos-health".into());
    w.cloud.set_alarm(ec2_failover::cloud::Alarm {
        name: "sophos-health".into(),
        arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:sophos-health".into(),
        state: "ALARM".into(),
        reason: Some("Threshold Crossed".into()),
        // A fixed time: every world of the matrix is the same alarm transition.
        transitioned_at: Some(chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_413)),
        updated_at: None,
        health_check_id: Some(HEALTH_CHECK.into()),
        actions: vec![],
    });
    (w, settings)
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_dying_at_any_mutating_call_resumes_into_one_clean_failover() {
    let ops = crash_matrix(
        reconcile_world,
        &json!({"action": "reconcile"}),
        &[Outcome::FailedOver, Outcome::AlreadyFailedOver],
        check_failover,
    )
    .await;
    assert_eq!(ops.len(), 6, "the failover's six changes: {ops:?}");
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_dying_at_any_mutating_call_resumes_into_one_ami_for_the_slot() {
    let ops = crash_matrix(
        snapshot_world,
        &scheduled_at(SLOT),
        &[Outcome::SnapshotTaken],
        check_snapshot,
    )
    .await;
    let mut sorted = ops.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "CreateImage",
            "CreateTags",
            "CreateTags",
            "DeleteSnapshot",
            "DeleteSnapshot",
            "DeregisterImage",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_checker_sync_dying_at_any_mutating_call_resumes_into_exactly_the_wanted_rules() {
    let ops = crash_matrix(
        checker_world,
        &json!({"action": "sync-checker-ranges"}),
        &[Outcome::RangesSynced],
        check_checker_ranges,
    )
    .await;
    assert_eq!(
        ops,
        [
            "RevokeSecurityGroupIngress",
            "AuthorizeSecurityGroupIngress"
        ]
    );
}

// ----- idempotence, dry runs, gates ---------------------------------------------

#[tokio::test(start_paused = true)]
async fn ten_deliveries_of_one_alarm_launch_one_replacement() {
    let w = seed_world();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = single(cloud.clone(), seed_settings(&w, &[]));
    let event = sample("sns-alarm.json");
    let mut outcomes = Vec::new();
    for i in 0..10 {
        let r = invoke(&fleet, &event, &format!("req-{i}")).await.unwrap();
        outcomes.push(r.outcome);
    }
    assert_eq!(outcomes[0], Outcome::FailedOver);
    assert!(
        outcomes[1..]
            .iter()
            .all(|o| *o == Outcome::AlreadyFailedOver),
        "{outcomes:?}"
    );
    assert_failed_over_once(&w.view(), &w);
    let launches = cloud
        .calls()
        .iter()
        .filter(|c| c.operation == "RunInstances")
        .count();
    assert_eq!(
        launches, 1,
        "later deliveries find the replacement by its tag"
    );
}

#[tokio::test(start_paused = true)]
async fn a_plan_or_dry_run_makes_no_mutating_call_and_plans_what_a_failover_then_does() {
    let w = seed_world();
    // Something for every job to want: no checker rules yet.
    w.cloud.set_checker_ranges(&checker_ranges());
    let before = w.view();
    let cloud = FaultyCloud::new(w.cloud.clone());

    let plan = invoke(
        &single(cloud.clone(), seed_settings(&w, &[])),
        &sample("manual-plan.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(plan.outcome, Outcome::Planned);

    let dry = single(
        cloud.clone(),
        seed_settings(
            &w,
            &[("DRY_RUN", "true"), ("CHECKER_SECURITY_GROUP", "sophos")],
        ),
    );
    for (payload, step) in [
        (sample("sns-alarm.json"), "launch_replacement"),
        (sample("manual-failover.json"), "launch_replacement"),
        (scheduled_at(SLOT), "create_image"),
        (
            sample("manual-sync-checker-ranges.json"),
            "authorize_ranges",
        ),
        (sample("ip-space-changed.json"), "authorize_ranges"),
    ] {
        let r = invoke(&dry, &payload, "req-dry").await.unwrap();
        assert_eq!(r.outcome, Outcome::Planned, "{r:#?}");
        assert_eq!(status(&r, step), Some(StepStatus::Planned), "{r:#?}");
    }
    assert!(mutations(&cloud.calls()).is_empty(), "{:?}", cloud.calls());
    assert_eq!(w.view(), before, "nothing changed");

    // The planned steps are exactly the steps a real failover then carries out.
    let mut planned: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Planned)
        .map(|s| s.step.clone())
        .collect();
    planned.sort();
    let done = invoke(
        &single(cloud.clone(), seed_settings(&w, &[])),
        &sample("manual-failover.json"),
        "req-2",
    )
    .await
    .unwrap();
    assert_eq!(done.outcome, Outcome::FailedOver);
    let mut made: Vec<String> = done
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Done && s.step != "wait_for_replacement")
        .filter(|s| !["discover", "assess", "confirm", "flap_guard"].contains(&s.step.as_str()))
        .map(|s| s.step.clone())
        .collect();
    made.sort();
    assert_eq!(planned, made);
    assert_eq!(
        planned,
        [
            "floating_ip".to_owned(),
            "launch_replacement".to_owned(),
            format!("route {} {VPN_CIDR}", w.route_table),
            "source_dest_check".to_owned(),
            "stop_failed_instance".to_owned(),
        ]
    );
    assert_failed_over_once(&w.view(), &w);
}

#[tokio::test(start_paused = true)]
async fn the_flap_guard_refuses_after_max_failovers_and_changes_nothing() {
    let w = seed_world();
    let settings =
        |max: &str| seed_settings(&w, &[("COOLDOWN_MINUTES", "0"), ("MAX_FAILOVERS", max)]);
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = single(cloud.clone(), settings("2"));
    let first = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(first.outcome, Outcome::FailedOver);
    assert_eq!(status(&first, "flap_guard"), Some(StepStatus::Done));
    let second = invoke(&fleet, &sample("manual-failover.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(second.outcome, Outcome::FailedOver, "{second:#?}");
    assert_eq!(
        second.old_instance, first.new_instance,
        "the replacement failed over"
    );
    let before = w.view();
    let calls_before = cloud.calls().len();

    let e = invoke(&fleet, &sample("manual-failover.json"), "req-3")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            FailoverError::FlapGuard {
                count: 2,
                max: 2,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.error_type(), "Permanent.FlapGuard");
    assert!(!e.retryable());
    assert!(mutations(&cloud.calls()[calls_before..]).is_empty());
    assert_eq!(w.view(), before, "a refused failover changes nothing");

    // The guard, not the world, refused: a wider limit lets the same request through.
    let relaxed = single(cloud.clone(), settings("3"));
    let third = invoke(&relaxed, &sample("manual-failover.json"), "req-3")
        .await
        .unwrap();
    assert_eq!(third.outcome, Outcome::FailedOver);
}

#[tokio::test(start_paused = true)]
async fn a_young_replacement_is_not_replaced_again_within_the_cooldown() {
    let w = seed_world();
    let fleet = single(w.cloud.clone(), seed_settings(&w, &[]));
    let first = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(first.outcome, Outcome::FailedOver);
    let after_first = w.view();
    // Another incident minutes later (COOLDOWN_MINUTES=15): no second launch.
    let r = invoke(&fleet, &sample("manual-failover.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::AlreadyFailedOver, "{r:#?}");
    assert_eq!(r.new_instance, first.new_instance);
    assert_eq!(
        status(&r, "launch_replacement"),
        Some(StepStatus::AlreadyDone)
    );
    assert_eq!(w.view(), after_first);
}

#[tokio::test(start_paused = true)]
async fn an_alarm_route53_no_longer_confirms_is_ignored() {
    let w = seed_world();
    w.cloud.add_health_check(HEALTH_CHECK, Some(443));
    w.cloud.set_health(HEALTH_CHECK, 6, 8);
    let before = w.view();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = single(
        cloud.clone(),
        seed_settings(&w, &[("HEALTH_CHECK_ID", HEALTH_CHECK)]),
    );
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Ignored, "{r:#?}");
    assert_eq!(status(&r, "confirm"), Some(StepStatus::Done));
    assert!(mutations(&cloud.calls()).is_empty());
    assert_eq!(w.view(), before);

    // Most checkers failing: the same alarm fails over.
    w.cloud.set_health(HEALTH_CHECK, 3, 8);
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_failed_over_once(&w.view(), &w);
}

// ----- launching ----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn no_capacity_in_one_az_moves_on_to_the_next() {
    let w = seed_world();
    let subnet_d = w
        .cloud
        .add_subnet(&w.vpc, "ap-northeast-1d", cidr("10.0.3.0/24"), "public");
    let cloud = failing(
        &w,
        "RunInstances",
        &w.subnet_c,
        "InsufficientInstanceCapacity",
    );
    let r = invoke(
        &single(cloud.clone(), seed_settings(&w, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.availability_zone.as_deref(), Some("ap-northeast-1d"));
    let view = w.view();
    let ours = replacements(&view, &w.vpc, "sophos", &w.sophos);
    assert_eq!(ours.len(), 1, "{ours:?}");
    let new = view.instance(&ours[0]).unwrap();
    assert_eq!(new.subnet_id, subnet_d);
    assert_eq!(r.new_instance.as_deref(), Some(new.id.as_str()));
    assert_eq!(view.address_owner(&w.floating_ip), Some(new.id.as_str()));
    let launches: Vec<Call> = cloud
        .calls()
        .into_iter()
        .filter(|c| c.operation == "RunInstances")
        .collect();
    assert_eq!(launches.len(), 2, "1c refused, then 1d");
    assert!(launches[0].failed && !launches[1].failed);
}

#[tokio::test(start_paused = true)]
async fn no_capacity_for_the_type_anywhere_falls_back_to_the_next_type() {
    let w = seed_world();
    let cloud = failing(
        &w,
        "RunInstances",
        "t3.small",
        "InsufficientInstanceCapacity",
    );
    let r = invoke(
        &single(
            cloud,
            seed_settings(&w, &[("FALLBACK_INSTANCE_TYPES", "t3.medium,m5.large")]),
        ),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let view = w.view();
    let ours = replacements(&view, &w.vpc, "sophos", &w.sophos);
    assert_eq!(ours.len(), 1, "{ours:?}");
    let new = view.instance(&ours[0]).unwrap();
    assert_eq!(new.instance_type, "t3.medium");
    assert_eq!(new.subnet_id, w.subnet_c);
    assert_eq!(view.address_owner(&w.floating_ip), Some(new.id.as_str()));
}

#[tokio::test(start_paused = true)]
async fn with_no_capacity_anywhere_the_error_is_retryable_and_nothing_moves() {
    let w = seed_world();
    let cloud = failing(&w, "RunInstances", "", "InsufficientInstanceCapacity");
    let e = invoke(
        &single(
            cloud,
            seed_settings(&w, &[("FALLBACK_INSTANCE_TYPES", "t3.medium")]),
        ),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.NoCapacity", "{e}");
    let view = w.view();
    assert!(replacements(&view, &w.vpc, "sophos", &w.sophos).is_empty());
    assert_eq!(view.address_owner(&w.floating_ip), Some(w.sophos.as_str()));
    assert_eq!(
        view.route(&w.route_table, VPN_CIDR)
            .map(|r| r.target.clone()),
        Some(ec2_failover::cloud::RouteTarget::Instance(w.sophos.clone()))
    );
}

/// DESIGN.md: "Never make an outage worse: stop the failed instance only once
/// a replacement has been accepted by EC2." An alarm can be wrong (a checker
/// outage, a security-group change); the appliance may still be serving.
#[tokio::test(start_paused = true)]
async fn a_launch_ec2_refuses_never_stops_the_failed_instance() {
    let w = seed_world();
    let cloud = failing(&w, "RunInstances", "", "InsufficientInstanceCapacity");
    invoke(
        &single(cloud, seed_settings(&w, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running),
        "no replacement was accepted, so the failed instance must not be stopped"
    );
}

/// The same rule when EC2 refuses the launch for good: the appliance's key
/// pair was deleted (instances keep running without it; launches fail).
#[tokio::test(start_paused = true)]
async fn a_launch_refused_for_good_never_stops_the_failed_instance() {
    let w = seed_world();
    w.cloud.remove_key_pair("ops");
    let e = invoke(
        &single(w.cloud.clone(), seed_settings(&w, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    assert!(!e.retryable(), "{e}");
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running),
        "no replacement was accepted, so the failed instance must not be stopped"
    );
}

/// A retry that does not see the replacement yet (EC2's filtered describes
/// are eventually consistent) launches again with the same ClientToken, and
/// EC2 answers with the first launch: still one replacement.
#[tokio::test(start_paused = true)]
async fn a_retry_that_cannot_see_the_replacement_yet_gets_it_back_by_client_token() {
    let (w, settings) = failover_world();
    w.cloud.set_listing_lag(1);
    let k = 1 + mutations(&clean_failover_calls().await)
        .iter()
        .position(|op| *op == "RunInstances")
        .expect("a launch");
    let dying = FaultyCloud::new(w.cloud.clone()).with(Fault::DieAtMutation {
        k,
        after_effect: true,
    });
    let event = sample("sns-alarm.json");
    invoke(&single(dying, settings.clone()), &event, "req-1")
        .await
        .unwrap_err();
    let launched = replacements(&w.view(), &w.vpc, "sophos", &w.sophos);
    assert_eq!(launched.len(), 1, "EC2 launched it; the answer was lost");

    let retry = FaultyCloud::new(w.cloud.clone());
    let r = invoke(&single(retry.clone(), settings), &event, "req-2")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let launches: Vec<bool> = retry
        .calls()
        .iter()
        .filter(|c| c.operation == "RunInstances")
        .map(|c| c.failed)
        .collect();
    assert_eq!(
        launches,
        [false],
        "the retry launched again, and EC2 answered"
    );
    assert_eq!(r.new_instance.as_ref(), Some(&launched[0]));
    assert_eq!(status(&r, "launch_replacement"), Some(StepStatus::Done));
    let new_id = assert_failed_over_once(&w.view(), &w);
    assert_eq!(new_id, launched[0]);
    let incident = w
        .view()
        .instance(&new_id)
        .unwrap()
        .tag(TAG_INCIDENT)
        .map(str::to_owned);
    assert_eq!(incident, Some(r.incident.clone()));
}

async fn clean_failover_calls() -> Vec<Call> {
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

// ----- fleet routing ------------------------------------------------------------

fn nat_alarm() -> Value {
    let mut e = sample("eventbridge-alarm.json");
    e["resources"] = json!(["arn:aws:cloudwatch:us-east-1:123456789012:alarm:nat-health"]);
    e["detail"]["alarmName"] = json!("nat-health");
    e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["HealthCheckId"] =
        json!("0d3c4b2a-0000-4000-8000-000000000000");
    e
}

async fn fleet_invoke(
    t: &TwoGroups,
    payload: &Value,
    request: &str,
) -> Result<Response, FailoverError> {
    ec2_failover::handle(&t.fleet, payload, &common::invocation(request)).await
}

fn one(r: Response) -> Report {
    match r {
        Response::One(report) => report,
        Response::PerGroup(p) => panic!("expected one report, got {p:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_alarm_fails_over_only_its_own_group() {
    let t = two_groups();
    let prod_before = t.w.view().vpc_part(&t.nat.vpc);
    let r = one(fleet_invoke(&t, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap());
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.old_instance.as_deref(), Some(t.w.sophos.as_str()));
    let view = t.w.view();
    assert_eq!(
        replacements(&view, &t.w.vpc, "sophos", &t.w.sophos).len(),
        1
    );
    assert_eq!(view.vpc_part(&t.nat.vpc), prod_before, "prod is untouched");

    // The NAT's alarm, by name: only the NAT moves.
    let vpn_before = view.vpc_part(&t.w.vpc);
    let r = one(fleet_invoke(&t, &nat_alarm(), "req-2").await.unwrap());
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.old_instance.as_deref(), Some(t.nat.instance.as_str()));
    let view = t.w.view();
    let nats = replacements(&view, &t.nat.vpc, "nat", &t.nat.instance);
    assert_eq!(nats.len(), 1, "{nats:?}");
    assert_eq!(
        view.address_owner(&t.nat.floating_ip),
        Some(nats[0].as_str())
    );
    let default = view.route(&t.nat.route_table, "0.0.0.0/0").unwrap();
    assert_eq!(
        default.target,
        ec2_failover::cloud::RouteTarget::Instance(nats[0].clone())
    );
    assert_eq!(view.vpc_part(&t.w.vpc), vpn_before, "the VPN is untouched");

    // An alarm no group answers to: ignored, without one AWS call.
    let calls = t.cloud.calls().len();
    let mut stranger = nat_alarm();
    stranger["detail"]["alarmName"] = json!("someone-elses-alarm");
    let r = one(fleet_invoke(&t, &stranger, "req-3").await.unwrap());
    assert_eq!(r.outcome, Outcome::Ignored);
    assert_eq!(t.cloud.calls().len(), calls);
}

#[tokio::test(start_paused = true)]
async fn a_manual_invoke_must_name_its_group_when_there_are_several() {
    let t = two_groups();
    let before = t.w.view();
    let e = fleet_invoke(&t, &sample("manual-failover.json"), "req-1")
        .await
        .unwrap_err();
    assert!(matches!(e, FailoverError::Event(_)), "{e}");
    assert_eq!(e.error_type(), "Permanent.BadEvent");
    let mut unknown = sample("manual-failover.json");
    unknown["group"] = json!("paris-vpn");
    let e = fleet_invoke(&t, &unknown, "req-2").await.unwrap_err();
    assert_eq!(e.error_type(), "Permanent.BadEvent");
    assert!(
        t.cloud.calls().is_empty(),
        "no AWS call: {:?}",
        t.cloud.calls()
    );
    assert_eq!(t.w.view(), before);

    let mut named = sample("manual-failover.json");
    named["group"] = json!("prod-nat");
    let r = one(fleet_invoke(&t, &named, "req-3").await.unwrap());
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.availability_zone.as_deref(), Some("ap-northeast-1c"));
    let view = t.w.view();
    assert_eq!(
        replacements(&view, &t.nat.vpc, "nat", &t.nat.instance).len(),
        1
    );
    assert_eq!(view.vpc_part(&t.w.vpc), before.vpc_part(&t.w.vpc));
}

#[tokio::test(start_paused = true)]
async fn a_schedule_snapshots_every_group_and_reports_each() {
    let t = two_groups();
    let r = fleet_invoke(&t, &scheduled_at(SLOT), "req-1")
        .await
        .unwrap();
    let Response::PerGroup(per) = r else {
        panic!("expected a report per group, got {r:?}")
    };
    assert_eq!(serde_json::to_value(&per).unwrap()["outcome"], "per_group");
    let names: Vec<&str> = per.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["tokyo-vpn", "prod-nat"]);
    let view = t.w.view();
    for (g, (name, instance)) in per
        .groups
        .iter()
        .zip([("sophos", &t.w.sophos), ("nat", &t.nat.instance)])
    {
        let report = g
            .report
            .as_ref()
            .unwrap_or_else(|| panic!("{}: {:?}", g.group, g.error));
        assert_eq!(report.outcome, Outcome::SnapshotTaken, "{}", g.group);
        assert_eq!(status(report, "create_image"), Some(StepStatus::Done));
        let ami = view
            .image(report.image.as_deref().expect("the slot's AMI"))
            .expect("registered");
        assert_eq!(ami.name, format!("{name}-20261121T1800Z"));
        assert_eq!(ami.tag("Name"), Some(name));
        assert_eq!(ami.tag(TAG_SOURCE_INSTANCE), Some(instance.as_str()));
    }

    // One group's failure does not stop the other: the NAT is down.
    let t = two_groups();
    t.w.cloud
        .tag(&[&t.nat.instance], &[("Name", "nat-retired")]);
    let r = fleet_invoke(&t, &scheduled_at(SLOT), "req-2")
        .await
        .unwrap();
    let Response::PerGroup(per) = r else {
        panic!("expected a report per group")
    };
    assert_eq!(
        per.groups[0].report.as_ref().map(|r| r.outcome),
        Some(Outcome::SnapshotTaken)
    );
    assert!(per.groups[1].report.is_none());
    assert_eq!(
        per.groups[1].error_type.as_deref(),
        Some("Permanent.ResourceMissing")
    );
    let nat_amis =
        t.w.view()
            .images
            .iter()
            .filter(|i| i.tag("Name") == Some("nat"))
            .count();
    assert_eq!(nat_amis, 2, "no AMI was taken for the failed group");
}

#[tokio::test(start_paused = true)]
async fn ip_space_changes_sync_every_group_that_has_a_checker_group() {
    let t = two_groups();
    let r = fleet_invoke(&t, &sample("ip-space-changed.json"), "req-1")
        .await
        .unwrap();
    let Response::PerGroup(per) = r else {
        panic!("expected a report per group, got {r:?}")
    };
    let outcomes: Vec<Option<Outcome>> = per
        .groups
        .iter()
        .map(|g| g.report.as_ref().map(|r| r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [Some(Outcome::RangesSynced), Some(Outcome::Ignored)]
    );
    let mut rules: Vec<String> =
        t.w.cloud
            .ingress_rules(&t.w.security_group)
            .into_iter()
            .map(|r| {
                assert_eq!((r.from_port, r.to_port), (Some(443), Some(443)));
                assert_eq!(r.description.as_deref(), Some(RULE_MARKER));
                r.cidr.to_string()
            })
            .collect();
    rules.sort();
    let mut wanted: Vec<String> = checker_ranges().iter().map(ToString::to_string).collect();
    wanted.sort();
    assert_eq!(rules, wanted);
    assert!(t.w.cloud.ingress_rules(&t.nat.security_group).is_empty());
}

// ----- eventual consistency -------------------------------------------------------
//
// EC2 documents that a DescribeInstances right after RunInstances may not list
// the new instance yet. The floating IP and the routes, though, already name
// it once they moved.

/// SNS and EventBridge deliver the same alarm (one incident, README) back to
/// back: the second delivery comes right after a finished failover.
#[tokio::test(start_paused = true)]
async fn a_redelivery_before_ec2_lists_the_replacement_is_already_failed_over() {
    let (w, settings) = failover_world();
    w.cloud.set_listing_lag(1);
    let fleet = single(w.cloud.clone(), settings);
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver);
    let after = w.view();
    let again = invoke(&fleet, &sample("eventbridge-alarm.json"), "req-2").await;
    assert_eq!(w.view(), after, "a redelivery changes nothing");
    let again = again.unwrap_or_else(|e| panic!("{}: {e}", e.error_type()));
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
}

/// A crash at the last step (DNS), after the floating IP and the route moved;
/// the retry comes before EC2 lists the replacement.
#[tokio::test(start_paused = true)]
async fn a_retry_before_ec2_lists_the_replacement_finishes_the_failover() {
    let (w, settings) = failover_world();
    w.cloud.set_listing_lag(1);
    let clean = mutations(&clean_failover_calls().await);
    assert_eq!(clean.last(), Some(&"ChangeResourceRecordSets"));
    let dying = FaultyCloud::new(w.cloud.clone()).with(Fault::DieAtMutation {
        k: clean.len(),
        after_effect: false,
    });
    let event = sample("sns-alarm.json");
    invoke(&single(dying, settings.clone()), &event, "req-1")
        .await
        .unwrap_err();
    let r = invoke(&single(w.cloud.clone(), settings), &event, "req-2")
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", e.error_type()));
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(status(&r, "dns_record"), Some(StepStatus::Done));
    let after = w.view();
    check_failover(&w, &after, &after);
}

/// The report's step of this name.
fn step<'a>(r: &'a Report, name: &str) -> Vec<&'a ec2_failover::report::StepRecord> {
    r.steps.iter().filter(|s| s.step == name).collect()
}

#[tokio::test(start_paused = true)]
async fn a_replacement_ec2_terminates_on_launch_is_followed_by_the_next_option_at_once() {
    let w = seed_world();
    w.cloud
        .kill_next_launches(&["Client.InternalError: Client error on launch"]);
    let settings = seed_settings(&w, &[("FALLBACK_INSTANCE_TYPES", "t3.medium")]);
    let r = invoke(
        &single(w.cloud.clone(), settings),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let waits = step(&r, "wait_for_replacement");
    assert_eq!(waits[0].status, StepStatus::Failed);
    assert!(
        waits[0].detail.contains("Client error on launch"),
        "the report names the reason: {}",
        waits[0].detail
    );
    let launches = step(&r, "launch_replacement");
    assert_eq!(launches.len(), 2, "{r:#?}");
    let view = w.view();
    let new = r.new_instance.clone().expect("a replacement");
    assert_eq!(view.address_owner(&w.floating_ip), Some(new.as_str()));
    let new = view.instance(&new).expect("the replacement");
    assert_eq!(
        new.instance_type, "t3.medium",
        "the next option: the fallback type"
    );
    assert_eq!(new.state, InstanceState::Running);
    let dead = view
        .named("sophos")
        .into_iter()
        .filter(|i| i.state == InstanceState::Terminated)
        .count();
    assert_eq!(dead, 1, "the dead replacement stays dead; no third launch");
}

#[tokio::test(start_paused = true)]
async fn with_no_option_left_a_new_token_generation_follows_in_the_same_invocation() {
    let w = seed_world();
    w.cloud
        .kill_next_launches(&["Server.InternalError: Internal error on launch"]);
    let fleet = single(w.cloud.clone(), seed_settings(&w, &[]));
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let launches = step(&r, "launch_replacement");
    assert_eq!(launches.len(), 2, "{r:#?}");
    let view = w.view();
    let dead = dead_replacements(&view, &w);
    let [dead] = dead.as_slice() else {
        panic!("one replacement died: {dead:?}")
    };
    assert!(
        launches[1]
            .detail
            .contains(&format!("after {dead} died on launch")),
        "{}",
        launches[1].detail
    );
    let waits = step(&r, "wait_for_replacement");
    assert!(
        waits[0].detail.contains("Internal error on launch"),
        "the report says why it died: {}",
        waits[0].detail
    );
    let new = r.new_instance.expect("a replacement");
    assert_ne!(&new, dead);
    assert_eq!(view.address_owner(&w.floating_ip), Some(new.as_str()));
    assert_eq!(
        view.instance(&new).map(|i| i.state),
        Some(InstanceState::Running)
    );
}

/// The replacements EC2 terminated in the seed world's VPC.
fn dead_replacements(view: &WorldView, w: &MemWorld) -> Vec<String> {
    view.named("sophos")
        .into_iter()
        .filter(|i| i.vpc_id == w.vpc && i.id != w.sophos)
        .filter(|i| i.state == InstanceState::Terminated)
        .map(|i| i.id.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn replacements_that_keep_dying_end_after_max_failovers_rounds() {
    let w = seed_world();
    let reason = "Client.InternalError: Client error on launch";
    w.cloud.kill_next_launches(&[reason; 6]);
    let fleet = single(
        w.cloud.clone(),
        seed_settings(&w, &[("MAX_FAILOVERS", "2")]),
    );
    let e = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap_err();
    assert!(
        matches!(e, FailoverError::ReplacementFailed { ref reason, .. } if reason.contains("Client error on launch")),
        "{e}"
    );
    assert!(!e.retryable(), "{e}");
    let view = w.view();
    let dead = dead_replacements(&view, &w);
    assert_eq!(dead.len(), 3, "round 0, then MAX_FAILOVERS more: {dead:?}");
    assert_eq!(
        view.address_owner(&w.floating_ip),
        Some(w.sophos.as_str()),
        "the floating IP stays where it was"
    );
    assert_eq!(
        view.instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running),
        "no replacement ran, so the appliance was not stopped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_old_replacement_is_not_young_for_the_cooldown_or_the_flap_guard() {
    let w = seed_world();
    // sophos itself replaced another instance a month ago, and an operator
    // restarted it just now: EC2 reset its LaunchTime.
    w.cloud.tag(
        &[w.sophos.as_str()],
        &[
            (TAG_REPLACES, "i-0aaaaaaaaaaaaaaaa"),
            (TAG_INCIDENT, "alarm-last-month"),
        ],
    );
    w.cloud.restart(&w.sophos, chrono::Utc::now());
    let settings = seed_settings(&w, &[("MAX_FAILOVERS", "1")]);
    let r = invoke(
        &single(w.cloud.clone(), settings),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_ne!(r.new_instance.as_deref(), Some(w.sophos.as_str()));
}

#[tokio::test(start_paused = true)]
async fn an_instance_with_more_tags_than_ec2_allows_on_a_launch_still_fails_over() {
    let w = seed_world();
    let extra: Vec<(String, String)> = (0..47)
        .map(|n| (format!("cost-{n:02}"), "x".into()))
        .collect();
    let pairs: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    w.cloud.tag(&[w.sophos.as_str()], &pairs);
    let r = invoke(
        &single(w.cloud.clone(), seed_settings(&w, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let launch = step(&r, "launch_replacement")[0];
    assert!(
        launch.detail.contains("tags not copied"),
        "{}",
        launch.detail
    );
    let new = w
        .view()
        .instance(&r.new_instance.unwrap())
        .cloned()
        .unwrap();
    assert_eq!(new.tag("Name"), Some("sophos"));
    assert!(new.tag(TAG_INCIDENT).is_some());
}

// ----- launching like the original ---------------------------------------------

/// `#!/bin/sh\necho vpn up\n`, base64 as EC2 keeps user data.
const USER_DATA: &str = "IyEvYmluL3NoCmVjaG8gdnBuIHVwCg==";

fn imdsv2() -> MetadataOptions {
    MetadataOptions {
        http_tokens: Some("required".into()),
        http_put_response_hop_limit: Some(2),
        http_endpoint: Some("enabled".into()),
        instance_metadata_tags: Some("enabled".into()),
    }
}

/// A second appliance in the seed VPC, deployed the way organisations do:
/// IMDSv2 only, user data, EBS-optimised, unlimited CPU credits, its own EIP.
/// Returns it and the settings that protect it.
fn deployed_appliance(w: &MemWorld) -> (String, Settings) {
    let vpn = w.cloud.add_instance(
        InstanceSpec::new(&w.subnet_a, "vpn2")
            .groups(&[&w.security_group])
            .key("ops")
            .image(&w.base_image)
            .metadata(imdsv2())
            .ebs_optimized(true)
            .user_data(USER_DATA)
            .cpu_credits("unlimited"),
    );
    let ip = w.cloud.add_address(Some(&vpn)).public_ip;
    let settings = seed_settings(
        w,
        &[
            ("INSTANCE_NAME", "vpn2"),
            ("FLOATING_IP", &ip),
            ("ROUTE_CIDRS", ""),
        ],
    );
    (vpn, settings)
}

#[tokio::test(start_paused = true)]
async fn a_replacement_is_launched_like_the_original() {
    let w = seed_world();
    let (vpn, settings) = deployed_appliance(&w);
    let r = invoke(
        &single(w.cloud.clone(), settings),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.old_instance.as_deref(), Some(vpn.as_str()));
    let new_id = r.new_instance.clone().expect("a replacement");
    let new = w.cloud.peek_instance(&new_id).expect("it exists");
    assert_eq!(new.metadata_options, Some(imdsv2()));
    assert_eq!(new.ebs_optimized, Some(true));
    assert_eq!(
        w.cloud.user_data(&new_id).await.unwrap().as_deref(),
        Some(USER_DATA)
    );
    assert_eq!(
        w.cloud.cpu_credits(&new_id).await.unwrap().as_deref(),
        Some("unlimited")
    );
}

#[tokio::test(start_paused = true)]
async fn an_original_ec2_no_longer_knows_fails_over_without_its_user_data_and_says_so() {
    let w = seed_world();
    let (_, settings) = deployed_appliance(&w);
    let cloud = failing(
        &w,
        "DescribeInstanceAttribute",
        "",
        "InvalidInstanceID.NotFound",
    );
    let r = invoke(
        &single(cloud, settings),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new_id = r.new_instance.clone().expect("a replacement");
    assert_eq!(w.cloud.user_data(&new_id).await.unwrap(), None);
    // What could still be read is still copied.
    let new = w.cloud.peek_instance(&new_id).expect("it exists");
    assert_eq!(new.metadata_options, Some(imdsv2()));
    let launch = step(&r, "launch_replacement")[0];
    assert!(
        launch.detail.contains("user data NOT copied"),
        "{}",
        launch.detail
    );
}

#[tokio::test(start_paused = true)]
async fn a_user_data_read_that_fails_otherwise_stops_before_anything_changes() {
    let w = seed_world();
    let (vpn, settings) = deployed_appliance(&w);
    let before = w.view();
    let cloud = failing(&w, "DescribeInstanceAttribute", "", "UnauthorizedOperation");
    let e = invoke(
        &single(cloud.clone(), settings),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    assert!(matches!(e, FailoverError::NotLaunched { .. }), "{e}");
    assert_eq!(e.error_type(), "Permanent.AwsCallFailed");
    assert!(e.to_string().contains(&vpn), "{e}");
    assert_eq!(mutations(&cloud.calls()), Vec::<&str>::new());
    assert_eq!(w.view(), before);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_type_without_cpu_credits_is_launched_without_them() {
    let w = seed_world();
    let (_, settings) = deployed_appliance(&w);
    let mut settings = settings;
    settings.failover.fallback_instance_types = vec!["m5.large".into()];
    let cloud = failing(
        &w,
        "RunInstances",
        "t3.small",
        "InsufficientInstanceCapacity",
    );
    let r = invoke(
        &single(cloud, settings),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new_id = r.new_instance.clone().expect("a replacement");
    let new = w.cloud.peek_instance(&new_id).expect("it exists");
    assert_eq!(new.instance_type, "m5.large");
    assert_eq!(new.metadata_options, Some(imdsv2()));
    assert_eq!(
        w.cloud.user_data(&new_id).await.unwrap().as_deref(),
        Some(USER_DATA)
    );
}

// ----- an appliance with two legs (WAN + LAN) ----------------------------------

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
    // EC2 refuses a route to an instance with several interfaces: the
    // instance's route names the replacement's primary interface.
    let primary: Vec<&String> = new
        .network_interface_ids
        .iter()
        .filter(|id| **id != leg.id)
        .collect();
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
