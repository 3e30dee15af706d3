//! Issue 15's done-when, through the real binary against moto: with
//! `STANDBY=hot`, `{"action": "standby"}` leaves one running standby in 1c;
//! the alarm then moves the floating IP and the route to that very instance
//! with no RunInstances and no StartInstances before the move, and a new
//! standby is ensured elsewhere. With `warm`: one stopped standby, which the
//! alarm starts, launching nothing before the move. A redelivery changes
//! nothing and leaves one appliance holding the floating IP and one standby.
//! The EC2-like layer sits in front of moto for ClientTokens and its log.

use std::time::Duration;

use crate::common;

use aws_sdk_ec2::types::Filter;
use common::ec2_like::{Ec2Like, Ec2LikeBuilder};
use common::runtime_api::{Function, RuntimeApi};
use common::{Moto, VPN_CIDR, World, build_world, env_of, sample};
use serde_json::{Value, json};

struct Deployment {
    moto: Moto,
    w: World,
    layer: Ec2Like,
    api: RuntimeApi,
    _function: Function,
}

/// The function in `mode` behind an EC2-like layer with `rules` (and
/// ClientTokens honoured).
async fn deploy_on(mode: &str, rules: Ec2LikeBuilder) -> Deployment {
    let moto = Moto::start();
    let w = build_world(&moto.ec2()).await;
    let layer = rules.client_tokens().start(&moto.endpoint).await;
    let api = RuntimeApi::start().await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ec2-failover"));
    let env = env_of(&w, &[("STANDBY", mode)]);
    let function = Function::spawn(binary, &api, &layer.endpoint, &env);
    Deployment {
        moto,
        w,
        layer,
        api,
        _function: function,
    }
}

/// (id, state, AZ, promoted) of every non-terminated instance tagged as a standby.
type Seen = (String, String, String, bool);

impl Deployment {
    async fn invoke(&self, event: &Value) -> Value {
        let answer = self.api.invoke(&event.to_string()).await.1;
        assert!(answer.ok, "{}", answer.body);
        answer.json()
    }

    async fn standbys(&self) -> Vec<Seen> {
        let out = self
            .moto
            .ec2()
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag-key")
                    .values("ec2-failover:standby")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut seen = Vec::new();
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            let state = i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned());
            let state = state.unwrap_or_default();
            if state == "terminated" {
                continue;
            }
            let promoted = i
                .tags()
                .iter()
                .any(|t| t.key() == Some("ec2-failover:replaces"));
            let az = i
                .placement()
                .and_then(|p| p.availability_zone())
                .unwrap_or_default();
            seen.push((
                i.instance_id().unwrap().to_owned(),
                state,
                az.to_owned(),
                promoted,
            ));
        }
        seen
    }

    async fn eip_holder(&self) -> Option<String> {
        let out = self
            .moto
            .ec2()
            .describe_addresses()
            .public_ips(&self.w.floating_ip)
            .send()
            .await
            .unwrap();
        out.addresses()[0].instance_id().map(str::to_owned)
    }

    async fn route_target(&self) -> Option<String> {
        let out = self
            .moto
            .ec2()
            .describe_route_tables()
            .route_table_ids(&self.w.route_table)
            .send()
            .await
            .unwrap();
        let table = &out.route_tables()[0];
        let route = table
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some(VPN_CIDR))?;
        route.instance_id().map(str::to_owned)
    }

    /// The actions EC2 carried out before the first AssociateAddress.
    fn before_the_move(&self) -> Vec<String> {
        self.layer
            .log()
            .into_iter()
            .filter(|x| x.result == "OK")
            .map(|x| x.action)
            .take_while(|a| a != "AssociateAddress")
            .collect()
    }
}

/// The standby action, then the alarm, then its redelivery, in `mode`;
/// returns the deployment and the standby the action made.
async fn standby_then_alarm(mode: &str, wanted: &str) -> (Deployment, String) {
    standby_then_alarm_on(mode, wanted, Ec2Like::builder()).await
}

/// [`standby_then_alarm`] behind a layer with `rules`.
async fn standby_then_alarm_on(
    mode: &str,
    wanted: &str,
    rules: Ec2LikeBuilder,
) -> (Deployment, String) {
    let d = deploy_on(mode, rules).await;
    let r = d
        .invoke(&json!({"action": "standby", "reason": "test"}))
        .await;
    assert_eq!(r["outcome"], "standby_kept", "{r:#}");
    let standbys = d.standbys().await;
    let [(standby, state, az, false)] = standbys.as_slice() else {
        panic!("one standby: {standbys:?} {r:#}");
    };
    assert_eq!(
        (state.as_str(), az.as_str()),
        (wanted, "ap-northeast-1c"),
        "{r:#}"
    );
    let standby = standby.clone();
    let log_mark = d.layer.log().len();

    let r = d.invoke(&sample("sns-alarm.json")).await;
    assert_eq!(r["outcome"], "failed_over", "{r:#}");
    assert_eq!(r["new_instance"], json!(standby), "{r:#}");
    assert_eq!(d.eip_holder().await.as_deref(), Some(standby.as_str()));
    assert_eq!(d.route_target().await.as_deref(), Some(standby.as_str()));
    let before: Vec<String> = d.before_the_move().into_iter().skip(log_mark).collect();
    assert!(!before.iter().any(|a| a == "RunInstances"), "{before:?}");
    // Then a new standby, elsewhere than the new appliance's 1c.
    let after = d.standbys().await;
    let fresh: Vec<&Seen> = after.iter().filter(|s| !s.3).collect();
    let [(_, _, az, _)] = fresh.as_slice() else {
        panic!("one new standby: {after:?} {r:#}")
    };
    assert_eq!(az, "ap-northeast-1a");

    let again = d.invoke(&sample("sns-alarm.json")).await;
    assert_eq!(again["outcome"], "already_failed_over", "{again:#}");
    assert_eq!(d.eip_holder().await.as_deref(), Some(standby.as_str()));
    let left: Vec<Seen> = d.standbys().await.into_iter().filter(|s| !s.3).collect();
    assert_eq!(left.len(), 1, "{left:?}");
    (d, standby)
}

#[tokio::test]
async fn hot_the_alarm_moves_the_network_to_the_running_standby_without_launch_or_start() {
    let (d, _) = standby_then_alarm("hot", "running").await;
    let actions: Vec<String> = d.layer.log().into_iter().map(|x| x.action).collect();
    assert!(
        !actions.iter().any(|a| a == "StartInstances"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn warm_the_alarm_starts_the_stopped_standby_and_launches_nothing_before_the_move() {
    let (d, standby) = standby_then_alarm("warm", "stopped").await;
    let starts: Vec<Vec<String>> = d
        .layer
        .log()
        .into_iter()
        .filter(|x| x.action == "StartInstances" && x.result == "OK")
        .map(|x| x.instances)
        .collect();
    assert_eq!(starts, [vec![standby]]);
}

/// EC2 may still describe the standby `stopped` for a while after
/// StartInstances: the promotion waits for the start to show and launches no
/// cold replacement beside it (`standby_then_alarm` asserts no RunInstances
/// before the move and one new standby after).
#[tokio::test]
async fn warm_a_standby_read_stopped_after_its_start_is_still_the_one_promoted() {
    let rules = Ec2Like::builder().stale_after_start(Duration::from_secs(3));
    let (d, standby) = standby_then_alarm_on("warm", "stopped", rules).await;
    let log = d.layer.log();
    let started = log
        .iter()
        .position(|x| x.action == "StartInstances" && x.result == "OK")
        .expect("the standby was started");
    let read_stopped = log[started..].iter().any(|x| {
        x.action == "DescribeInstances" && x.answered.contains(&(standby.clone(), "stopped".into()))
    });
    assert!(read_stopped, "the layer answered the stale state");
}
