//! Property tests of event intake: no payload, however wrong, panics the parser,
//! every rejection says what was wrong and what was expected, and a rejected
//! payload makes no AWS call at all.

use crate::common;

use std::collections::BTreeMap;

use common::sample;
use ec2_failover::cloud::faults::FaultyCloud;
use ec2_failover::cloud::sdk::SdkCloud;
use ec2_failover::event::{self, Trigger};
use ec2_failover::{App, Fleet, Invocation};
use proptest::prelude::*;
use serde_json::Value;

/// Keys the parser looks for, so generated objects often look almost right.
const KEYS: &[&str] = &[
    "Records",
    "Sns",
    "Message",
    "EventSource",
    "action",
    "reason",
    "detail-type",
    "detail",
    "source",
    "alarmArn",
    "alarmData",
    "alarmName",
    "state",
    "value",
    "timestamp",
    "resources",
    "configuration",
    "metrics",
    "AlarmName",
    "AlarmArn",
    "NewStateValue",
    "StateChangeTime",
    "NewStateReason",
    "Trigger",
    "Dimensions",
    "name",
    "synctoken",
    "create-time",
];

const STRINGS: &[&str] = &[
    "ALARM",
    "OK",
    "INSUFFICIENT_DATA",
    "failover",
    "plan",
    "snapshot",
    "aws:sns",
    "aws.cloudwatch",
    "CloudWatch Alarm State Change",
    "Scheduled Event",
    "HealthCheckId",
    "arn:aws:cloudwatch:us-east-1:123456789012:alarm:sophos-health",
    "2026-11-21T09:00:00.000+0000",
    "2026-13-45T99:99:99",
    "",
    "{",
    "{\"AlarmArn\":1}",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(STRINGS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        let key = prop_oneof![
            proptest::sample::select(KEYS).prop_map(str::to_owned),
            "[a-zA-Z-]{1,10}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner.clone(), 0..6)
                .prop_map(|m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect())),
            // An SNS envelope around an arbitrary message, as a string.
            inner.prop_map(
                |m| serde_json::json!({"Records": [{"Sns": {"Message": m.to_string()}}]})
            ),
        ]
    })
}

/// Replaces the value at one path of `v` (chosen by `pick`) with `new`.
fn mutate(v: &mut Value, pick: &mut impl Iterator<Item = usize>, new: Value) {
    let children = match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    };
    let p = pick.next().unwrap_or(0);
    if children == 0 || p.is_multiple_of(4) {
        *v = new;
        return;
    }
    let i = p % children;
    match v {
        Value::Object(m) => {
            if let Some((_, child)) = m.iter_mut().nth(i) {
                mutate(child, pick, new);
            }
        }
        Value::Array(a) => mutate(&mut a[i], pick, new),
        _ => {}
    }
}

fn check(v: &Value) {
    match event::parse(v) {
        Ok(_) => {}
        Err(e) => {
            assert!(!e.problem.trim().is_empty(), "{v}: empty problem");
            assert!(!e.expected.trim().is_empty(), "{v}: empty expectation");
        }
    }
}

const SAMPLES: &[&str] = &[
    "sns-alarm.json",
    "sns-alarm-ok.json",
    "direct-alarm.json",
    "eventbridge-alarm.json",
    "manual-failover.json",
    "manual-plan.json",
    "manual-snapshot.json",
    "scheduled-snapshot.json",
    "manual-sync-checker-ranges.json",
    "manual-reconcile.json",
    "manual-preflight.json",
    "ip-space-changed.json",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        check(&v);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            check(&v);
        }
    }

    #[test]
    fn mutated_samples_never_panic(
        which in 0..SAMPLES.len(),
        path in prop::collection::vec(any::<usize>(), 1..6),
        new in arb_json(),
        inside_message in any::<bool>(),
    ) {
        let mut v = sample(SAMPLES[which]);
        let mut pick = path.into_iter();
        let sns_message = v["Records"][0]["Sns"]["Message"].as_str().map(str::to_owned);
        match sns_message {
            // Mutate inside the JSON string SNS wraps the alarm in.
            Some(text) if inside_message => {
                let mut m: Value = serde_json::from_str(&text).unwrap();
                mutate(&mut m, &mut pick, new);
                v["Records"][0]["Sns"]["Message"] = Value::String(m.to_string());
            }
            _ => mutate(&mut v, &mut pick, new),
        }
        check(&v);
    }
}

/// A cloud that would fail any call it got (nothing listens on port 9), wrapped
/// to record whether a call was even attempted.
fn unreachable_cloud() -> FaultyCloud<SdkCloud> {
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("ap-northeast-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build(),
    );
    FaultyCloud::new(SdkCloud::new(ec2, common::route53_at("http://127.0.0.1:9")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_rejected_payload_makes_no_aws_call(v in arb_json()) {
        prop_assume!(event::parse(&v).is_err());
        let cloud = unreachable_cloud();
        let app = App {
            cloud: cloud.clone(),
            settings: ec2_failover::Settings::from_lookup(|k| match k {
                "INSTANCE_NAME" | "AMI_NAME" => Some("sophos".into()),
                "VPC_NAME" => Some("my-vpc".into()),
                "SUBNET_NAME" => Some("public".into()),
                _ => None,
            }).unwrap(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let result = runtime.block_on(ec2_failover::handle(&Fleet::single(app), &v, &Invocation {
            request_id: "fuzz".into(),
            deadline: None,
            function_arn: None,
        }));
        prop_assert!(result.is_err());
        prop_assert!(cloud.calls().is_empty(), "{:?}", cloud.calls());
    }
}

#[test]
fn samples_parse_as_what_they_are() {
    for name in SAMPLES {
        let t = event::parse(&sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let is_alarm = matches!(t, Trigger::Alarm(_));
        let alarm_sample = !(name.starts_with("manual")
            || name.starts_with("scheduled")
            || name.starts_with("ip-space"));
        assert_eq!(is_alarm, alarm_sample, "{name}");
        if name.starts_with("ip-space") {
            assert_eq!(t, Trigger::IpSpaceChanged, "{name}");
        }
    }
}
