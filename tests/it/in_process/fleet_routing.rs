//! Fleet routing: with several groups, an alarm fails over only its own group,
//! a manual invoke names its group, schedules and IP-space changes reach each.

use crate::common;

use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::TAG_SOURCE_INSTANCE;
use ec2_failover::jobs::checker_ranges::RULE_MARKER;
use ec2_failover::{FailoverError, Outcome, Report, Response, StepStatus};
use serde_json::{Value, json};

use super::worlds::*;

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
        Response::One(report) => *report,
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

#[tokio::test(start_paused = true)]
async fn a_scheduled_failback_moves_the_groups_that_have_a_home_and_no_other() {
    let mut t = two_groups();
    t.fleet.members[1].group.settings.failover.home_az = Some("ap-northeast-1c".into());
    set_alarm_state(&t.w, "nat-health", "OK");
    let vpn_before = t.w.view().vpc_part(&t.w.vpc);
    let window = json!({"action": "failback", "reason": "FailbackWindow schedule"});
    let Response::PerGroup(r) = fleet_invoke(&t, &window, "req-1").await.unwrap() else {
        panic!("a failback without a group runs for every group")
    };
    let outcome = |g: &str| {
        let found = r
            .groups
            .iter()
            .find(|x| x.group == g)
            .and_then(|x| x.report.as_ref());
        found.map(|report| report.outcome)
    };
    assert_eq!(outcome("tokyo-vpn"), Some(Outcome::Ignored), "{r:#?}");
    assert_eq!(outcome("prod-nat"), Some(Outcome::FailedOver), "{r:#?}");
    assert_eq!(
        t.w.view().vpc_part(&t.w.vpc),
        vpn_before,
        "no home, no move"
    );
    let view = t.w.view();
    let nat = replacements(&view, &t.nat.vpc, "nat", &t.nat.instance);
    let [nat] = nat.as_slice() else {
        panic!("one NAT replacement: {nat:?}")
    };
    assert_eq!(
        view.instance(nat).unwrap().availability_zone,
        "ap-northeast-1c"
    );
}
