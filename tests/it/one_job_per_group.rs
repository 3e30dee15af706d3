//! Issue 23's lease, through the real binary against moto's DynamoDB (the
//! EC2-like layer in front, logging each call with the access key it was
//! signed with, so the calls of several function processes can be told
//! apart): a held group answers `Retryable.GroupBusy` within seconds and
//! changes nothing; a process killed while holding its group blocks it only
//! until the lease expires, and the redelivery then converges; an alarm, a
//! manual failover and an upkeep delivered together in three processes never
//! interleave their changes.

use std::time::{Duration, Instant};

use crate::common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::ec2_like::{Ec2Like, Ec2LikeBuilder, Exchange};
use common::runtime_api::{Function, RuntimeApi};
use common::{Moto, World, build_world, env_of, sample, snapshot};
use serde_json::{Value, json};

/// moto with the seed world and the lease table, behind the EC2-like layer.
async fn world(layer: Ec2LikeBuilder) -> (Moto, World, Ec2Like, String) {
    let moto = Moto::start();
    let w = build_world(&moto.ec2()).await;
    let table = moto.lease_table().await;
    let layer = layer.client_tokens().start(&moto.endpoint).await;
    (moto, w, layer, table)
}

/// A function process under its own Runtime API, signing as `caller`.
fn process(
    api: &RuntimeApi,
    layer: &Ec2Like,
    w: &World,
    caller: &str,
    extra: &[(&str, &str)],
) -> Function {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ec2-failover"));
    let mut env = env_of(w, extra);
    env.push(("AWS_ACCESS_KEY_ID".into(), caller.into()));
    Function::spawn(binary, api, &layer.endpoint, &env)
}

/// The row of the single appliance's group (named after its instance).
async fn lease_row(moto: &Moto, table: &str) -> Option<Value> {
    let out = moto
        .dynamodb()
        .get_item()
        .table_name(table)
        .key("group", AttributeValue::S("sophos".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item().map(|item| {
        let text = |k: &str| match item.get(k) {
            Some(AttributeValue::S(v) | AttributeValue::N(v)) => json!(v),
            _ => Value::Null,
        };
        json!({"holder": text("holder"), "incident": text("incident"), "expires_at": text("expires_at")})
    })
}

#[tokio::test]
async fn a_held_group_answers_group_busy_within_seconds_and_changes_nothing() {
    let (moto, w, layer, table) = world(Ec2Like::builder()).await;
    let expires = chrono::Utc::now().timestamp() + 600;
    moto.dynamodb()
        .put_item()
        .table_name(&table)
        .item("group", AttributeValue::S("sophos".into()))
        .item("holder", AttributeValue::S("req-other#1".into()))
        .item("incident", AttributeValue::S("alarm-earlier".into()))
        .item("expires_at", AttributeValue::N(expires.to_string()))
        .send()
        .await
        .unwrap();
    let before = snapshot(&moto.ec2()).await;
    let api = RuntimeApi::start().await;
    let env = [("LOCK_TABLE", table.as_str()), ("LOCK_WAIT_SECONDS", "2")];
    let _function = process(&api, &layer, &w, "testing", &env);

    let (sent, answer) = api.invoke(&sample("sns-alarm.json").to_string()).await;
    let took = answer.at - sent;
    assert!(!answer.ok, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["errorType"], "Retryable.GroupBusy", "{body:#}");
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("req-other") && message.contains("alarm-earlier"),
        "{message}"
    );
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(6)).contains(&took),
        "answered after {took:?}"
    );
    let ec2_calls: Vec<_> = layer
        .log()
        .into_iter()
        .filter(|e| !["PutItem", "GetItem"].contains(&e.action.as_str()))
        .map(|e| e.action)
        .collect();
    assert_eq!(
        ec2_calls,
        Vec::<String>::new(),
        "nothing but the lease was asked"
    );
    assert_eq!(snapshot(&moto.ec2()).await, before);
    assert_eq!(
        lease_row(&moto, &table).await.map(|r| r["holder"].clone()),
        Some(json!("req-other#1"))
    );
}

#[tokio::test]
async fn a_process_killed_holding_its_group_blocks_it_until_the_lease_expires_then_the_redelivery_converges()
 {
    // The replacement takes a while to run, so the first process is killed
    // in the middle of its failover, holding the lease.
    let (moto, w, layer, table) =
        world(Ec2Like::builder().pending_for(Duration::from_secs(6))).await;
    let env = [("LOCK_TABLE", table.as_str())];
    let event = sample("sns-alarm.json").to_string();
    let short = RuntimeApi::with_timeout(Duration::from_secs(5)).await;
    let mut first = process(&short, &layer, &w, "first", &env);
    let started = Instant::now();
    let pending = tokio::spawn(async move { short.invoke(&event).await });
    while layer.count("RunInstances", "OK") == 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "no launch");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.child.kill().unwrap();
    pending.abort();
    let row = lease_row(&moto, &table)
        .await
        .expect("the dead process's lease");
    let expires: i64 = row["expires_at"].as_str().unwrap().parse().unwrap();

    let api = RuntimeApi::start().await;
    let second = process(&api, &layer, &w, "second", &env);
    let answer = api.invoke(&sample("sns-alarm.json").to_string()).await.1;
    assert!(answer.ok, "{}", answer.body);
    assert_eq!(answer.json()["outcome"], "failed_over", "{}", answer.body);
    assert!(
        chrono::Utc::now().timestamp() >= expires,
        "taken over only once the dead holder's lease expired"
    );
    common::assert_failed_over_once(&moto.ec2(), &w).await;
    assert_eq!(lease_row(&moto, &table).await, None, "given back");
    let waited = second
        .lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("waiting for it"));
    assert!(waited, "the redelivery says it waits for the group");
}

#[tokio::test]
async fn an_alarm_a_manual_failover_and_an_upkeep_in_three_processes_never_interleave() {
    let (moto, w, layer, table) = world(Ec2Like::builder()).await;
    let env = [("LOCK_TABLE", table.as_str()), ("STANDBY", "warm")];
    let callers = ["alarm", "manual", "upkeep"];
    let events = [
        sample("sns-alarm.json").to_string(),
        json!({"action": "failover", "reason": "drill"}).to_string(),
        json!({"action": "standby"}).to_string(),
    ];
    let mut apis = Vec::new();
    for _ in callers {
        apis.push(RuntimeApi::start().await);
    }
    let _functions: Vec<_> = apis
        .iter()
        .zip(callers)
        .map(|(api, caller)| process(api, &layer, &w, caller, &env))
        .collect();
    let (a, b, c) = tokio::join!(
        apis[0].invoke(&events[0]),
        apis[1].invoke(&events[1]),
        apis[2].invoke(&events[2]),
    );
    for (_, answer) in [&a, &b, &c] {
        assert!(answer.ok, "{}", answer.body);
    }

    let log = layer.log();
    let mut windows = Vec::new();
    for caller in callers {
        let own: Vec<&Exchange> = log.iter().filter(|e| e.caller == caller).collect();
        let changes: Vec<_> = own
            .iter()
            .filter(|e| e.is_ec2_change())
            .map(|e| e.at)
            .collect();
        let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
            continue;
        };
        // Every change lies between the process's lease and its giving back.
        let took = own
            .iter()
            .find(|e| e.action == "PutItem" && e.result == "OK");
        let gave = own.iter().rfind(|e| e.action == "DeleteItem");
        let (took, gave) = (took.expect("a lease").at, gave.expect("given back").at);
        assert!(
            took < *first && *last < gave,
            "{caller} changed outside its lease"
        );
        windows.push((caller, *first, *last));
    }
    assert!(!windows.is_empty());
    for (i, (x, x0, x1)) in windows.iter().enumerate() {
        for (y, y0, y1) in &windows[i + 1..] {
            assert!(x1 < y0 || y1 < x0, "{x} and {y} changed the group at once");
        }
    }
    assert_eq!(lease_row(&moto, &table).await, None);
    // One appliance serves from the other AZ, holding the floating IP and
    // the route, and the failed instance is stopped.
    let ec2 = moto.ec2();
    let holder = common::address_owner(&ec2, &w.floating_ip)
        .await
        .expect("the floating IP's holder");
    assert_ne!(holder, w.sophos);
    let serving = common::describe(&ec2, &holder).await;
    assert_eq!(
        serving.state().and_then(|s| s.name()).map(|n| n.as_str()),
        Some("running")
    );
    assert_eq!(
        common::route_target(&ec2, &w.route_table, common::VPN_CIDR).await,
        Some(holder)
    );
    let old = common::describe(&ec2, &w.sophos).await;
    let old = old
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned());
    assert!(
        matches!(old.as_deref(), Some("stopping" | "stopped")),
        "{old:?}"
    );
}
