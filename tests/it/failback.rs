//! Issue 22's planned moves through the real binary against moto, the
//! EC2-like layer in front (ClientTokens honoured, a replacement pending a
//! while, the log of what EC2 carried out): a drill whose guardrail alarm is
//! in ALARM changes nothing; a fail-back killed while its replacement starts
//! is finished by Lambda's retry (the same request id) in a new process,
//! with one replacement in the home AZ holding the floating IP and routes;
//! with a hot standby, an alarm's failover and then a fail-back move the
//! appliance out and home again, the way back by promoting the standby that
//! waited in the home AZ.

use std::time::{Duration, Instant};

use crate::common;

use aws_sdk_cloudwatch::types::StateValue;
use common::alarmed::{
    ALARM, deploy_behind, put_alarm, put_alarm_named, set_state, set_state_of, sns_event,
};
use common::ec2_like::{Ec2Like, Exchange};
use common::runtime_api::{Function, RuntimeApi};
use common::{Moto, VPN_CIDR, address_owner, build_world, env_of, route_target, snapshot};
use serde_json::json;

const GUARDRAIL: &str = "orders-5xx";

fn ec2_changes(log: &[Exchange]) -> Vec<String> {
    log.iter()
        .filter(|e| e.result == "OK" && e.is_ec2_change())
        .map(|e| e.action.clone())
        .collect()
}

#[tokio::test]
async fn a_guarded_drill_changes_nothing_and_a_killed_failback_is_finished_by_its_retry() {
    let moto = Moto::start();
    let w = build_world(&moto.ec2()).await;
    put_alarm(&moto).await;
    set_state(&moto, StateValue::Ok).await;
    put_alarm_named(&moto, GUARDRAIL).await;
    set_state_of(&moto, GUARDRAIL, StateValue::Alarm).await;
    let layer = Ec2Like::builder()
        .client_tokens()
        .pending_for(Duration::from_secs(4))
        .start(&moto.endpoint)
        .await;
    // The appliance runs in 1a; its home is 1c.
    let env = env_of(
        &w,
        &[
            ("ALARM_NAME", ALARM),
            ("HOME_AZ", "ap-northeast-1c"),
            ("DRILL_GUARDRAIL_ALARMS", GUARDRAIL),
        ],
    );
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ec2-failover"));

    let api = RuntimeApi::start().await;
    let mut first = Function::spawn(binary, &api, &layer.endpoint, &env);
    let before = snapshot(&moto.ec2()).await;
    let drill = json!({"action": "drill", "reason": "practice"}).to_string();
    let refused = api.invoke(&drill).await.1;
    assert!(refused.ok, "{}", refused.body);
    let r = refused.json();
    assert_eq!(r["outcome"], "ignored", "{r:#}");
    assert!(
        r["reason"].as_str().unwrap_or_default().contains(GUARDRAIL),
        "{r:#}"
    );
    assert_eq!(ec2_changes(&layer.log()), Vec::<String>::new());
    assert_eq!(
        snapshot(&moto.ec2()).await,
        before,
        "the drill changed nothing"
    );

    // The fail-back's process dies while its replacement starts.
    let failback = json!({"action": "failback", "reason": "1c is home"}).to_string();
    const DELIVERY: &str = "req-failback-1";
    let pending = {
        let (api, event) = (api, failback.clone());
        tokio::spawn(async move { api.deliver(&event, Some(DELIVERY)).await })
    };
    let started = Instant::now();
    while layer.count("RunInstances", "OK") == 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "no launch");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.child.kill().unwrap();
    pending.abort();

    // Lambda retries the event under its request id, in a new process.
    let retry_api = RuntimeApi::start().await;
    let _second = Function::spawn(binary, &retry_api, &layer.endpoint, &env);
    let answer = retry_api.deliver(&failback, Some(DELIVERY)).await.1;
    assert!(answer.ok, "{}", answer.body);
    let r = answer.json();
    assert_eq!(r["outcome"], "failed_over", "{r:#}");
    assert_eq!(r["planned"], "failback", "{r:#}");
    let home = common::assert_failed_over_once(&moto.ec2(), &w).await;
    assert_eq!(r["new_instance"], json!(home), "{r:#}");
    assert_eq!(r["availability_zone"], "ap-northeast-1c", "{r:#}");
    assert_eq!(layer.count("RunInstances", "OK"), 1, "one launch in all");

    // A third delivery finds it done.
    let again = retry_api.deliver(&failback, Some(DELIVERY)).await.1;
    assert_eq!(
        again.json()["outcome"],
        "already_failed_over",
        "{}",
        again.body
    );
}

#[tokio::test]
async fn hot_an_alarm_moves_the_appliance_out_and_a_failback_promotes_the_standby_at_home() {
    let layer = Ec2Like::builder().client_tokens();
    let d = deploy_behind(layer, &[("STANDBY", "hot"), ("HOME_AZ", "ap-northeast-1a")]).await;
    let ec2 = d.moto.ec2();
    let standby = json!({"action": "standby", "reason": "test"}).to_string();
    let kept = d.invoke(&standby).await;
    assert_eq!(kept.json()["outcome"], "standby_kept", "{}", kept.body);

    let out = d.invoke(&sns_event(&d.moto).await).await.json();
    assert_eq!(out["outcome"], "failed_over", "{out:#}");
    assert_eq!(out["availability_zone"], "ap-northeast-1c", "{out:#}");
    let away = out["new_instance"].as_str().unwrap_or_default().to_owned();

    // The outage is over; the upkeep left a standby in 1a, the home AZ.
    set_state(&d.moto, StateValue::Ok).await;
    let mark = d.layer.log().len();
    let failback = json!({"action": "failback", "reason": "1a is well"}).to_string();
    let back = d.invoke(&failback).await.json();
    assert_eq!(back["outcome"], "failed_over", "{back:#}");
    assert_eq!(back["old_instance"], json!(away), "{back:#}");
    assert_eq!(back["availability_zone"], "ap-northeast-1a", "{back:#}");
    let home = back["new_instance"].as_str().unwrap_or_default().to_owned();
    let promoted = back["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["step"] == "promote_standby" && s["status"] == "done");
    assert!(promoted, "the standby at home was promoted: {back:#}");
    let moves: Vec<String> = d.layer.log()[mark..]
        .iter()
        .filter(|e| e.result == "OK")
        .map(|e| e.action.clone())
        .take_while(|a| a != "AssociateAddress")
        .collect();
    assert!(!moves.iter().any(|a| a == "RunInstances"), "{moves:?}");
    assert_eq!(
        address_owner(&ec2, &d.w.floating_ip).await,
        Some(home.clone())
    );
    assert_eq!(
        route_target(&ec2, &d.w.route_table, VPN_CIDR).await,
        Some(home)
    );

    // Tomorrow's FailbackWindow finds the appliance home.
    let mark = d.layer.log().len();
    let again = d.invoke(&failback).await.json();
    assert_eq!(again["outcome"], "ignored", "{again:#}");
    assert_eq!(ec2_changes(&d.layer.log()[mark..]), Vec::<String>::new());
}
