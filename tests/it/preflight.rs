//! `{"action": "preflight"}`: the readiness checklist, in process on the
//! memory cloud, then through the SDK adapter against moto behind the
//! EC2-like layer (which answers DryRun on the route calls as EC2 does, where
//! moto would really replace the route).

use crate::common;

use common::memory_world::*;
use ec2_failover::cloud::faults::{Fault, FaultyCloud};
use ec2_failover::cloud::{Alarm, Cloud, TAG_GROUP};
use ec2_failover::report::StepRecord;
use ec2_failover::{Outcome, Report, StepStatus};
use serde_json::{Value, json};

fn preflight() -> Value {
    json!({"action": "preflight"})
}

fn item<'a>(r: &'a Report, name: &str) -> &'a StepRecord {
    r.steps
        .iter()
        .find(|s| s.step == format!("preflight {name}"))
        .unwrap_or_else(|| panic!("no item {name}: {r:#?}"))
}

fn failed(r: &Report) -> Vec<&str> {
    r.steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .map(|s| s.step.as_str())
        .collect()
}

/// The topic the template subscribes this function to, where the alarm notifies.
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ec2-failover-health";

/// The seed world with its health check, and the alarm the reconcile follows.
fn watched_world() -> (MemWorld, ec2_failover::Settings) {
    let w = seed_world();
    w.cloud.add_health_check(HEALTH_CHECK, Some(443));
    w.cloud.set_alarm(Alarm {
        name: "sophos-health".into(),
        arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:sophos-health".into(),
        state: "OK".into(),
        reason: None,
        transitioned_at: None,
        updated_at: Some(chrono::Utc::now()),
        health_check_id: Some(HEALTH_CHECK.into()),
        actions: vec![TOPIC.into()],
    });
    let settings = seed_settings(
        &w,
        &[
            ("HEALTH_CHECK_ID", HEALTH_CHECK),
            ("ALARM_TOPIC_ARNS", TOPIC),
        ],
    );
    (w, settings)
}

#[tokio::test(start_paused = true)]
async fn a_ready_appliance_passes_every_item_and_nothing_changes() {
    let (w, settings) = watched_world();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let before = w.view();
    let r = invoke(&single(cloud.clone(), settings), &preflight(), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Preflight, "{r:#?}");
    assert!(failed(&r).is_empty(), "{r:#?}");
    for name in [
        "discovery",
        "appliance",
        "ami",
        "inherit",
        "launch_plan",
        "health_check",
        "alarm",
    ] {
        assert_eq!(item(&r, name).status, StepStatus::Ok, "{name}: {r:#?}");
    }
    let proven: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.step.starts_with("preflight permission"))
        .map(|s| s.step.split_whitespace().nth(2).unwrap_or_default())
        .collect();
    assert_eq!(
        proven,
        [
            "StopInstances",
            "RunInstances",
            "ModifyInstanceAttribute",
            "AssociateAddress",
            "ReplaceRoute",
            "CreateImage"
        ],
        "{r:#?}"
    );
    assert_eq!(w.view(), before, "a preflight changes nothing");
    assert!(
        cloud.calls().iter().all(|c| !c.mutating),
        "{:?}",
        cloud.calls()
    );
    assert_eq!(r.old_instance.as_deref(), Some(w.sophos.as_str()));
}

#[tokio::test(start_paused = true)]
async fn without_an_ami_only_the_ami_item_fails() {
    let (w, settings) = watched_world();
    for ami in [&w.old_ami, &w.new_ami] {
        w.cloud.deregister_image(ami).await.unwrap();
    }
    let r = invoke(&single(w.cloud.clone(), settings), &preflight(), "req-1")
        .await
        .unwrap();
    assert_eq!(failed(&r), ["preflight ami"], "{r:#?}");
    assert_eq!(item(&r, "permission RunInstances").status, StepStatus::Warn);
}

#[tokio::test(start_paused = true)]
async fn a_call_iam_denies_fails_its_item_and_counts_as_a_failed_preflight() {
    let (w, settings) = watched_world();
    w.cloud.deny("AssociateAddress");
    let r = invoke(&single(w.cloud.clone(), settings), &preflight(), "req-1")
        .await
        .unwrap();
    let failed = failed(&r);
    assert_eq!(failed.len(), 1, "{r:#?}");
    assert!(
        failed[0].starts_with("preflight permission AssociateAddress"),
        "{failed:?}"
    );
    let emf = ec2_failover::metrics::emf("sophos", &Ok(r), std::time::Duration::ZERO, None, 0);
    assert_eq!(emf["PreflightFailed"], 1, "{emf:#}");
}

#[tokio::test(start_paused = true)]
async fn a_refused_user_data_read_fails_the_inherit_item() {
    let (w, settings) = watched_world();
    let cloud = FaultyCloud::new(w.cloud.clone()).with(Fault::FailOperation {
        operation: "DescribeInstanceAttribute",
        target: String::new(),
        code: "UnauthorizedOperation".into(),
        times: None,
    });
    let r = invoke(&single(cloud, settings), &preflight(), "req-1")
        .await
        .unwrap();
    // A failover would stop there: the preflight says so before the outage.
    assert_eq!(failed(&r), ["preflight inherit"], "{r:#?}");
    assert!(
        item(&r, "inherit").detail.contains("UnauthorizedOperation"),
        "{r:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_preflight_runs_every_group_and_each_reports() {
    let t = two_groups();
    let r = ec2_failover::handle(&t.fleet, &preflight(), &common::invocation("req-1"))
        .await
        .unwrap();
    let ec2_failover::Response::PerGroup(per) = r else {
        panic!("one report per group: {r:?}");
    };
    assert_eq!(per.groups.len(), 2);
    for g in &per.groups {
        let report = g.report.as_ref().unwrap_or_else(|| panic!("{g:?}"));
        assert_eq!(report.outcome, Outcome::Preflight, "{report:#?}");
    }
}

// ----- the SDK adapter, against moto behind the EC2-like layer --------------------

mod against_moto {
    use super::*;
    use common::ec2_like::Ec2Like;
    use common::{Moto, build_world, settings, snapshot};
    use ec2_failover::App;
    use ec2_failover::cloud::sdk::SdkCloud;

    async fn preflight_through(layer: Ec2Like, moto: &Moto, w: &common::World) -> Report {
        let cloud = SdkCloud::new(
            aws_sdk_ec2::Client::from_conf(layer.ec2_conf()),
            moto.route53(),
        )
        .with_alarms(moto.cloudwatch());
        let app = App {
            cloud,
            settings: settings(w, &[]),
        };
        let r = common::handle(&app, &preflight(), &common::invocation("req-1"))
            .await
            .unwrap();
        drop(layer);
        r
    }

    #[tokio::test]
    async fn the_seed_world_is_ready_and_the_route_is_untouched() {
        let moto = Moto::start();
        let ec2 = moto.ec2();
        let w = build_world(&ec2).await;
        let before = snapshot(&ec2).await;
        let layer = Ec2Like::builder().start(&moto.endpoint).await;
        let r = preflight_through(layer, &moto, &w).await;
        assert!(failed(&r).is_empty(), "{r:#?}");
        assert_eq!(
            item(
                &r,
                &format!(
                    "permission ReplaceRoute {} {}",
                    w.route_table,
                    common::VPN_CIDR
                )
            )
            .status,
            StepStatus::Ok
        );
        assert_eq!(
            snapshot(&ec2).await,
            before,
            "nothing changed, routes included"
        );
    }

    #[tokio::test]
    async fn without_an_ami_only_the_ami_item_fails_against_moto_too() {
        let moto = Moto::start();
        let ec2 = moto.ec2();
        let w = build_world(&ec2).await;
        for ami in [&w.old_ami, &w.new_ami] {
            ec2.deregister_image().image_id(ami).send().await.unwrap();
        }
        let layer = Ec2Like::builder().start(&moto.endpoint).await;
        let r = preflight_through(layer, &moto, &w).await;
        assert_eq!(failed(&r), ["preflight ami"], "{r:#?}");
        assert_eq!(item(&r, "permission RunInstances").status, StepStatus::Warn);
    }

    #[tokio::test]
    async fn a_group_reads_its_tags_through_the_sdk_and_names_what_lacks_one() {
        // A FAILOVER_GROUPS deployment authorizes by the ec2-failover:group
        // tag: the adapter must read it off instances, images, subnets and
        // route tables, and preflight must name an untagged one.
        let moto = Moto::start();
        let ec2 = moto.ec2();
        let w = build_world(&ec2).await;
        let tagged = [
            &w.sophos,
            &w.old_ami,
            &w.new_ami,
            &w.subnet_a,
            &w.route_table,
        ];
        ec2.create_tags()
            .set_resources(Some(tagged.iter().map(|s| s.to_string()).collect()))
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key(TAG_GROUP)
                    .value("tokyo-vpn")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut settings = settings(&w, &[]);
        settings.appliance.group = Some("tokyo-vpn".into());
        let app = App {
            cloud: SdkCloud::new(ec2.clone(), moto.route53()).with_alarms(moto.cloudwatch()),
            settings,
        };
        let r = common::handle(&app, &preflight(), &common::invocation("req-1"))
            .await
            .unwrap();
        let tags = item(&r, "group_tags");
        assert_eq!(tags.status, StepStatus::Failed, "{r:#?}");
        assert!(
            tags.detail.ends_with(&format!(
                "missing on {} (tag them {TAG_GROUP}=tokyo-vpn)",
                w.subnet_c
            )),
            "{}",
            tags.detail
        );
    }

    #[tokio::test]
    async fn the_alarm_item_reads_the_alarm_actions_through_the_sdk() {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
        let moto = Moto::start();
        let w = build_world(&moto.ec2()).await;
        moto.cloudwatch()
            .put_metric_alarm()
            .alarm_name("sophos-health")
            .namespace("AWS/Route53")
            .metric_name("HealthCheckStatus")
            .statistic(Statistic::Minimum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .alarm_actions(TOPIC)
            .send()
            .await
            .unwrap();
        let cloud = SdkCloud::new(moto.ec2(), moto.route53()).with_alarms(moto.cloudwatch());
        let alarm_item = |topics: &str| {
            let app = App {
                cloud: cloud.clone(),
                settings: settings(
                    &w,
                    &[
                        ("ALARM_NAME", "sophos-health"),
                        ("ALARM_TOPIC_ARNS", topics),
                    ],
                ),
            };
            async move {
                let r = common::handle(&app, &preflight(), &common::invocation("req-1"))
                    .await
                    .unwrap();
                item(&r, "alarm").clone()
            }
        };
        let reached = alarm_item(TOPIC).await;
        assert_eq!(reached.status, StepStatus::Ok, "{reached:?}");
        assert!(
            reached.detail.contains("notifies this function"),
            "{reached:?}"
        );
        let elsewhere = alarm_item("arn:aws:sns:us-east-1:123456789012:other").await;
        assert_eq!(elsewhere.status, StepStatus::Warn, "{elsewhere:?}");
        assert!(
            elsewhere.detail.contains(TOPIC),
            "names the actions: {elsewhere:?}"
        );
    }

    /// Through the real binary (as Lambda runs it), EC2 behind the layer:
    /// with EBS encryption by default on a customer managed key outside
    /// KMS_KEY_ARNS, the `kms` item fails naming the key; granted, it is ok.
    #[tokio::test]
    async fn the_binary_names_a_default_ebs_key_not_granted() {
        use common::env_of;
        use common::runtime_api::{Function, RuntimeApi};
        let moto = Moto::start();
        let w = build_world(&moto.ec2()).await;
        let layer = Ec2Like::builder()
            .encrypt_volumes_by_default(Some(DEFAULT_KEY))
            .start(&moto.endpoint)
            .await;
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ec2-failover"));
        let kms_of = |extra: &[(&str, &str)]| {
            let env = env_of(&w, extra);
            let endpoint = layer.endpoint.clone();
            async move {
                let api = RuntimeApi::start().await;
                let _function = Function::spawn(binary, &api, &endpoint, &env);
                let answer = api.invoke(&preflight().to_string()).await.1;
                assert!(answer.ok, "{}", answer.body);
                let report = answer.json();
                let steps = report["steps"].as_array().cloned().unwrap_or_default();
                let kms = steps.into_iter().find(|s| s["step"] == "preflight kms");
                kms.unwrap_or_else(|| panic!("no kms item: {report:#}"))
            }
        };
        let kms = kms_of(&[]).await;
        assert_eq!(kms["status"], "failed", "{kms:#}");
        let detail = kms["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(DEFAULT_KEY), "{kms:#}");
        assert!(detail.contains("KmsKeyArns"), "{kms:#}");
        let granted = kms_of(&[("KMS_KEY_ARNS", DEFAULT_KEY)]).await;
        assert_eq!(granted["status"], "ok", "{granted:#}");
        assert_eq!(layer.count("GetEbsDefaultKmsKeyId", "OK"), 2);
    }

    #[tokio::test]
    async fn a_refused_stop_fails_its_item() {
        let moto = Moto::start();
        let ec2 = moto.ec2();
        let w = build_world(&ec2).await;
        let layer = Ec2Like::builder()
            .refuse("StopInstances")
            .start(&moto.endpoint)
            .await;
        let r = preflight_through(layer, &moto, &w).await;
        let failed = failed(&r);
        assert_eq!(failed.len(), 1, "{r:#?}");
        assert!(failed[0].contains("StopInstances"), "{failed:?}");
        let why = &item(&r, &format!("permission StopInstances {}", w.sophos)).detail;
        assert!(why.contains("UnauthorizedOperation"), "{why}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_ami_encrypted_with_a_key_not_granted_is_a_warning() {
    let (w, _) = watched_world();
    let key = "arn:aws:kms:ap-northeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    w.cloud.encrypt_image(&w.new_ami, key);
    let without = seed_settings(&w, &[("HEALTH_CHECK_ID", HEALTH_CHECK)]);
    let r = invoke(&single(w.cloud.clone(), without), &preflight(), "req-1")
        .await
        .unwrap();
    let kms = item(&r, "kms");
    assert_eq!(kms.status, StepStatus::Warn, "{r:#?}");
    assert!(kms.detail.contains(key), "{}", kms.detail);
    let with = seed_settings(
        &w,
        &[("HEALTH_CHECK_ID", HEALTH_CHECK), ("KMS_KEY_ARNS", key)],
    );
    let r = invoke(&single(w.cloud.clone(), with), &preflight(), "req-2")
        .await
        .unwrap();
    assert_eq!(item(&r, "kms").status, StepStatus::Ok, "{r:#?}");
}

/// A customer managed key of the account (not the AWS managed `alias/aws/ebs`).
const DEFAULT_KEY: &str =
    "arn:aws:kms:ap-northeast-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

#[tokio::test(start_paused = true)]
async fn a_default_ebs_key_not_granted_fails_the_kms_item_naming_it_and_the_fix() {
    // The AMI is unencrypted, but EC2 encrypts every new volume with the
    // account's default key: without KMS rights on it the replacement dies.
    let (w, settings) = watched_world();
    w.cloud.encrypt_volumes_by_default(Some(DEFAULT_KEY));
    w.cloud.forbid_kms_key(DEFAULT_KEY);
    let r = invoke(&single(w.cloud.clone(), settings), &preflight(), "req-1")
        .await
        .unwrap();
    assert_eq!(failed(&r), ["preflight kms"], "{r:#?}");
    let kms = item(&r, "kms");
    assert!(kms.detail.contains(DEFAULT_KEY), "{}", kms.detail);
    assert!(kms.detail.contains("KmsKeyArns"), "{}", kms.detail);
    assert!(r.reason.ends_with("1 failed"), "{}", r.reason);
}

#[tokio::test(start_paused = true)]
async fn a_granted_or_aws_managed_default_ebs_key_is_ok_and_named() {
    let (w, _) = watched_world();
    w.cloud.encrypt_volumes_by_default(Some(DEFAULT_KEY));
    let granted = seed_settings(
        &w,
        &[
            ("HEALTH_CHECK_ID", HEALTH_CHECK),
            ("KMS_KEY_ARNS", DEFAULT_KEY),
        ],
    );
    let r = invoke(&single(w.cloud.clone(), granted), &preflight(), "req-1")
        .await
        .unwrap();
    let kms = item(&r, "kms");
    assert_eq!(kms.status, StepStatus::Ok, "{r:#?}");
    assert!(
        kms.detail
            .contains(&format!("new volumes get {DEFAULT_KEY}")),
        "{}",
        kms.detail
    );

    w.cloud.encrypt_volumes_by_default(None);
    let plain = seed_settings(&w, &[("HEALTH_CHECK_ID", HEALTH_CHECK)]);
    let r = invoke(&single(w.cloud.clone(), plain), &preflight(), "req-2")
        .await
        .unwrap();
    let kms = item(&r, "kms");
    assert_eq!(kms.status, StepStatus::Ok, "{r:#?}");
    assert!(
        kms.detail.contains("AWS managed key (alias/aws/ebs)"),
        "{}",
        kms.detail
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_read_of_the_default_ebs_key_is_a_warning_not_a_failure() {
    let (w, settings) = watched_world();
    w.cloud.encrypt_volumes_by_default(Some(DEFAULT_KEY));
    let cloud = FaultyCloud::new(w.cloud.clone()).with(Fault::FailOperation {
        operation: "GetEbsDefaultKmsKeyId",
        target: String::new(),
        code: "UnauthorizedOperation".into(),
        times: None,
    });
    let r = invoke(&single(cloud, settings), &preflight(), "req-1")
        .await
        .unwrap();
    assert!(failed(&r).is_empty(), "{r:#?}");
    let kms = item(&r, "kms");
    assert_eq!(kms.status, StepStatus::Warn, "{r:#?}");
    assert!(
        kms.detail.contains("UnauthorizedOperation"),
        "{}",
        kms.detail
    );
}
