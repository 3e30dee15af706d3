//! Many appliances, one deployment: two failover groups in two regions, against
//! moto through the real SDK adapter. The two regions hold identically named
//! worlds, so only region scoping keeps the groups apart.

use crate::common;

use common::*;
use ec2_failover::cloud::sdk::SdkCloud;
use ec2_failover::{FailoverError, Outcome, groups};
use ec2_failover::{Fleet, Response, handle};
use serde_json::json;

const TOKYO: &str = "ap-northeast-1";
const DUBLIN: &str = "eu-west-1";

struct TwoRegions {
    moto: Moto,
    tokyo: World,
    dublin: World,
    fleet: Fleet<SdkCloud>,
}

async fn two_regions() -> TwoRegions {
    let moto = Moto::start();
    let tokyo = build_world_in(&moto.ec2_in(TOKYO), TOKYO).await;
    let dublin = build_world_in(&moto.ec2_in(DUBLIN), DUBLIN).await;
    let group = |name: &str, region: &str, alarm: &str, w: &World| {
        json!({
            "name": name, "region": region, "alarm_name": alarm,
            "instance_name": "sophos", "ami_name": "sophos", "vpc_name": "my-vpc",
            "subnet_name": "public", "route_cidrs": [VPN_CIDR], "floating_ip": w.floating_ip,
        })
    };
    let doc = json!([
        group("tokyo-vpn", TOKYO, "sophos-health", &tokyo),
        group("dublin-vpn", DUBLIN, "dublin-health", &dublin),
    ])
    .to_string();
    let groups = groups::from_lookup(|k| (k == "FAILOVER_GROUPS").then(|| doc.clone())).unwrap();
    let mut built = Vec::new();
    let fleet = Fleet::new(groups, |region| {
        let region = region.expect("every group names its region").to_owned();
        built.push(region.clone());
        SdkCloud::new(moto.ec2_in(&region), moto.route53())
    });
    assert_eq!(built, [TOKYO, DUBLIN], "clients are built once per region");
    TwoRegions {
        moto,
        tokyo,
        dublin,
        fleet,
    }
}

fn one(r: Response) -> ec2_failover::Report {
    match r {
        Response::One(report) => *report,
        Response::PerGroup(p) => panic!("expected one report, got {p:?}"),
    }
}

#[tokio::test]
async fn an_alarm_fails_over_only_its_own_group() {
    let t = two_regions().await;
    let dublin_ec2 = t.moto.ec2_in(DUBLIN);
    let dublin_before = snapshot(&dublin_ec2).await;

    let r = one(
        handle(&t.fleet, &sample("sns-alarm.json"), &invocation("req-1"))
            .await
            .unwrap(),
    );
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert!(r.reason.starts_with("group tokyo-vpn:"), "{}", r.reason);
    assert_failed_over_once(&t.moto.ec2_in(TOKYO), &t.tokyo).await;
    assert_eq!(
        snapshot(&dublin_ec2).await,
        dublin_before,
        "the other group is untouched"
    );

    // An alarm no group answers to is ignored, and says so.
    let mut stranger = sample("eventbridge-alarm.json");
    stranger["detail"]["alarmName"] = json!("someone-elses-alarm");
    stranger["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["HealthCheckId"] =
        json!("hc-unknown");
    let r = one(handle(&t.fleet, &stranger, &invocation("req-2"))
        .await
        .unwrap());
    assert_eq!(r.outcome, Outcome::Ignored);
    assert!(
        r.reason.contains("matches no failover group"),
        "{}",
        r.reason
    );
    assert_eq!(snapshot(&dublin_ec2).await, dublin_before);
}

#[tokio::test]
async fn a_manual_invoke_must_name_its_group_when_there_are_several() {
    let t = two_regions().await;
    let tokyo_before = snapshot(&t.moto.ec2_in(TOKYO)).await;
    let dublin_before = snapshot(&t.moto.ec2_in(DUBLIN)).await;

    let e = handle(
        &t.fleet,
        &sample("manual-failover.json"),
        &invocation("req-1"),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, FailoverError::Event(_)), "{e}");
    assert!(
        e.to_string().contains("tokyo-vpn") && e.to_string().contains("dublin-vpn"),
        "{e}"
    );
    let mut unknown = sample("manual-failover.json");
    unknown["group"] = json!("paris-vpn");
    let e = handle(&t.fleet, &unknown, &invocation("req-2"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("paris-vpn"), "{e}");
    assert_eq!(snapshot(&t.moto.ec2_in(TOKYO)).await, tokyo_before);
    assert_eq!(snapshot(&t.moto.ec2_in(DUBLIN)).await, dublin_before);

    let mut named = sample("manual-failover.json");
    named["group"] = json!("dublin-vpn");
    let r = one(handle(&t.fleet, &named, &invocation("req-3"))
        .await
        .unwrap());
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.availability_zone.as_deref(), Some("eu-west-1c"));
    assert_failed_over_once(&t.moto.ec2_in(DUBLIN), &t.dublin).await;
    assert_eq!(snapshot(&t.moto.ec2_in(TOKYO)).await, tokyo_before);
}

#[tokio::test]
async fn the_scheduled_snapshot_covers_every_group_and_reports_each() {
    let t = two_regions().await;
    let r = handle(
        &t.fleet,
        &sample("scheduled-snapshot.json"),
        &invocation("req-1"),
    )
    .await
    .unwrap();
    let Response::PerGroup(per) = r else {
        panic!("expected a report per group, got {r:?}")
    };
    let value = serde_json::to_value(&per).unwrap();
    assert_eq!(value["outcome"], "per_group");
    let names: Vec<&str> = per.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["tokyo-vpn", "dublin-vpn"]);
    for (g, region) in per.groups.iter().zip([TOKYO, DUBLIN]) {
        let report = g
            .report
            .as_ref()
            .unwrap_or_else(|| panic!("{}: {:?}", g.group, g.error));
        assert_eq!(report.outcome, Outcome::SnapshotTaken, "{}", g.group);
        let ami = report.image.clone().expect("the new AMI");
        let images = t
            .moto
            .ec2_in(region)
            .describe_images()
            .image_ids(&ami)
            .send()
            .await
            .unwrap();
        assert_eq!(images.images().len(), 1, "{ami} lives in {region}");
    }
}

#[tokio::test]
async fn one_groups_failure_does_not_stop_the_others() {
    let t = two_regions().await;
    // Dublin's appliance is gone: its snapshot cannot run, Tokyo's still does.
    let dublin = t.moto.ec2_in(DUBLIN);
    dublin
        .terminate_instances()
        .instance_ids(&t.dublin.sophos)
        .send()
        .await
        .unwrap();
    let r = handle(
        &t.fleet,
        &sample("scheduled-snapshot.json"),
        &invocation("req-1"),
    )
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
}

#[test]
fn a_bad_groups_document_stops_the_cold_start_naming_group_and_key() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ec2-failover"))
        .env_clear()
        .env("AWS_REGION", "ap-northeast-1")
        .env(
            "FAILOVER_GROUPS",
            r#"[{"name": "tokyo-vpn", "instance_name": "sophos", "vpc_name": "my-vpc", "subnet_name": "public"}]"#,
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("tokyo-vpn") && text.contains("ami_name"),
        "{text}"
    );
}
