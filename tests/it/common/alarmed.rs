//! A deployment through the real binary: moto with the seed world and the
//! appliance's alarm (in ALARM), the EC2-like layer in front, and the function
//! watching the alarm by name, as the template wires it.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::ec2_like::{Ec2Like, Ec2LikeBuilder};
use super::runtime_api::{Answer, Function, RuntimeApi};
use super::{Moto, World, build_world, env_of, sample};

/// The appliance's alarm.
pub const ALARM: &str = "sophos-health";

pub const HEALTH_CHECK: &str = "6f0c8d52-5a4e-4c1e-9a3b-2b7f1e0d9c11";

/// The alarm on the health check's metric, as the template makes it.
pub async fn put_alarm(moto: &Moto) {
    put_alarm_named(moto, ALARM).await;
}

/// An alarm named `name` on the health check's metric.
pub async fn put_alarm_named(moto: &Moto, name: &str) {
    moto.cloudwatch()
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/Route53")
        .metric_name("HealthCheckStatus")
        .dimensions(
            Dimension::builder()
                .name("HealthCheckId")
                .value(HEALTH_CHECK)
                .build(),
        )
        .statistic(Statistic::Minimum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .unwrap();
}

pub async fn set_state(moto: &Moto, state: StateValue) {
    set_state_of(moto, ALARM, state).await;
}

pub async fn set_state_of(moto: &Moto, name: &str, state: StateValue) {
    moto.cloudwatch()
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason("Threshold Crossed: 1 datapoint [0.0] was less than 1.0")
        .send()
        .await
        .unwrap();
}

/// The SNS notification CloudWatch sent for the alarm's current state.
pub async fn sns_event(moto: &Moto) -> String {
    let out = moto
        .cloudwatch()
        .describe_alarms()
        .alarm_names(ALARM)
        .send()
        .await
        .unwrap();
    let alarm = &out.metric_alarms()[0];
    let changed = alarm
        .state_transitioned_timestamp()
        .or(alarm.state_updated_timestamp())
        .expect("a state time");
    let changed = DateTime::<Utc>::from_timestamp(changed.secs(), changed.subsec_nanos())
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string();
    let mut event = sample("sns-alarm.json");
    let text = event["Records"][0]["Sns"]["Message"].as_str().unwrap();
    let mut message: Value = serde_json::from_str(text).unwrap();
    message["AlarmArn"] = json!(alarm.alarm_arn().unwrap());
    message["StateChangeTime"] = json!(changed);
    event["Records"][0]["Sns"]["Message"] = json!(message.to_string());
    event.to_string()
}

pub struct Deployment {
    pub moto: Moto,
    pub w: World,
    pub layer: Ec2Like,
    pub api: RuntimeApi,
    pub function: Function,
}

/// moto with the seed world and the alarm in ALARM, the EC2-like layer in
/// front (refusing RunInstances until healed), and the function watching
/// the alarm by name.
pub async fn deploy(extra: &[(&str, &str)]) -> Deployment {
    let layer = Ec2Like::builder().client_tokens().refuse("RunInstances");
    deploy_behind(layer, extra).await
}

/// The same world and alarm behind the layer `layer` makes.
pub async fn deploy_behind(layer: Ec2LikeBuilder, extra: &[(&str, &str)]) -> Deployment {
    let moto = Moto::start();
    deploy_on(moto, layer, extra).await
}

/// As the template deploys it: with the lease table (which also remembers
/// what was told) and the notification topic.
pub async fn deploy_telling(layer: Ec2LikeBuilder, extra: &[(&str, &str)]) -> Deployment {
    let moto = Moto::start();
    let (table, topic) = (moto.lease_table().await, moto.notification_topic().await);
    let mut settings = vec![
        ("LOCK_TABLE", table.as_str()),
        ("NOTIFICATION_TOPIC_ARN", topic.as_str()),
    ];
    settings.extend_from_slice(extra);
    deploy_on(moto, layer, &settings).await
}

async fn deploy_on(moto: Moto, layer: Ec2LikeBuilder, extra: &[(&str, &str)]) -> Deployment {
    let w = build_world(&moto.ec2()).await;
    put_alarm(&moto).await;
    set_state(&moto, StateValue::Alarm).await;
    let layer = layer.start(&moto.endpoint).await;
    let mut settings = vec![("ALARM_NAME", ALARM)];
    settings.extend_from_slice(extra);
    let api = RuntimeApi::start().await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ec2-failover"));
    let function = Function::spawn(binary, &api, &layer.endpoint, &env_of(&w, &settings));
    Deployment {
        moto,
        w,
        layer,
        api,
        function,
    }
}

impl Deployment {
    pub async fn invoke(&self, event: &str) -> Answer {
        self.api.invoke(event).await.1
    }

    /// A reconcile, which must answer (a failing one answers per group).
    pub async fn reconcile(&self) -> Value {
        let answer = self
            .invoke(&json!({"action": "reconcile"}).to_string())
            .await;
        assert!(answer.ok, "{}", answer.body);
        answer.json()
    }
}
