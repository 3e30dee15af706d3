//! Issue 24's forged tags, through the real binary against moto (which
//! returns each instance's ClientToken and each AMI's SourceInstanceId, as
//! EC2 does): an instance someone tagged as a standby survives the upkeep
//! that terminates every real one; an instance a forged
//! `ec2-failover:replaces` tag names is not stopped by the fence; a newer AMI
//! with the appliance's `Name`, made of another instance, is not launched
//! (the older one made of the appliance is) and preflight warns of it; and
//! an AMI someone tagged as the tool's survives the retention that prunes the
//! tool's own. Each report names what it left alone and why.

use crate::common;

use common::ec2_like::Ec2Like;
use common::runtime_api::{Function, RuntimeApi};
use common::{Moto, World, build_world, create_ami, describe, env_of, launch, own_image, tag};
use ec2_failover::cloud::{CREATED_BY, TAG_CREATED_BY};
use serde_json::{Value, json};

/// One function process over moto (the EC2-like layer in front, ClientTokens
/// honoured), configured with `extra`.
struct Process {
    api: RuntimeApi,
    _function: Function,
}

async fn process(layer: &Ec2Like, w: &World, extra: &[(&str, &str)]) -> Process {
    let api = RuntimeApi::start().await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ec2-failover"));
    let function = Function::spawn(binary, &api, &layer.endpoint, &env_of(w, extra));
    Process {
        api,
        _function: function,
    }
}

impl Process {
    async fn invoke(&self, event: Value) -> Value {
        let answer = self.api.invoke(&event.to_string()).await.1;
        assert!(answer.ok, "{}", answer.body);
        answer.json()
    }
}

async fn state(moto: &Moto, id: &str) -> String {
    let i = describe(&moto.ec2(), id).await;
    i.state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default()
}

/// The report's step on `subject` (`standby i-...`, `fence i-...`).
fn step_on<'a>(report: &'a Value, subject: &str) -> Option<&'a Value> {
    report["steps"]
        .as_array()?
        .iter()
        .find(|s| s["step"].as_str().is_some_and(|n| n.ends_with(subject)))
}

/// The report's step on `id` is `skipped`, and says `because`.
fn assert_left_alone(report: &Value, id: &str, because: &str) {
    let left = step_on(report, id).unwrap_or_else(|| panic!("the report names {id}: {report:#}"));
    assert_eq!(left["status"], "skipped", "{left:#}");
    let detail = left["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(because), "{left:#}");
}

/// moto with the seed world, the EC2-like layer in front (ClientTokens honoured).
async fn world() -> (Moto, World, Ec2Like) {
    let moto = Moto::start();
    let w = build_world(&moto.ec2()).await;
    let layer = Ec2Like::builder()
        .client_tokens()
        .start(&moto.endpoint)
        .await;
    (moto, w, layer)
}

/// A running instance in the appliance's VPC, named like it, launched by
/// someone else (moto gives it its default token), with `tags`.
async fn planted(moto: &Moto, w: &World, tags: &[(&str, &str)]) -> String {
    let mut all = vec![("Name", "sophos")];
    all.extend_from_slice(tags);
    launch(
        &moto.ec2(),
        &w.new_ami,
        &w.subnet_c,
        &[&w.security_group],
        &all,
    )
    .await
}

#[tokio::test]
async fn an_instance_tagged_as_a_standby_by_someone_else_survives_the_upkeep() {
    let (moto, w, layer) = world().await;
    let hot = process(&layer, &w, &[("STANDBY", "hot")]).await;
    let kept = hot.invoke(json!({"action": "standby"})).await;
    assert_eq!(kept["outcome"], "standby_kept", "{kept:#}");
    let real = kept["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|s| {
            s["detail"]
                .as_str()?
                .split_whitespace()
                .next()
                .filter(|w| w.starts_with("i-"))
        })
        .map(str::to_owned);
    let forged = planted(
        &moto,
        &w,
        &[
            ("ec2-failover:standby", "hot"),
            ("ec2-failover:standby-for", &w.sophos),
        ],
    )
    .await;

    // STANDBY=cold retires every standby: the real one, never the forged one.
    let cold = process(&layer, &w, &[("STANDBY", "cold")]).await;
    let r = cold.invoke(json!({"action": "standby"})).await;
    assert_eq!(state(&moto, &forged).await, "running", "{r:#}");
    assert_left_alone(&r, &forged, "ClientToken");
    let real = real.unwrap_or_else(|| panic!("the standby the hot upkeep launched: {kept:#}"));
    assert_eq!(
        state(&moto, &real).await,
        "terminated",
        "the real standby is retired: {r:#}"
    );
}

#[tokio::test]
async fn an_instance_a_forged_replaces_tag_names_is_not_stopped_by_the_fence() {
    let (moto, w, layer) = world().await;
    let victim = planted(&moto, &w, &[]).await;
    // The appliance holds the floating IP and the route; someone tags it as
    // having replaced the victim.
    tag(&moto.ec2(), &w.sophos, "ec2-failover:replaces", &victim).await;
    let function = process(&layer, &w, &[]).await;
    let r = function.invoke(json!({"action": "reconcile"})).await;
    assert_eq!(state(&moto, &victim).await, "running", "{r:#}");
    assert_left_alone(&r, &victim, "ClientToken");
    let stops = layer.count("StopInstances", "OK");
    assert_eq!(stops, 0, "nothing was stopped: {r:#}");
}

/// An AMI tagged `Name=sophos`, made of an instance outside the appliance's
/// lineage (a build box anyone could start), newer than every real one.
async fn planted_ami(moto: &Moto, w: &World) -> String {
    let ec2 = moto.ec2();
    let builder = launch(
        &ec2,
        &w.new_ami,
        &w.subnet_c,
        &[&w.security_group],
        &[("Name", "builder")],
    )
    .await;
    create_ami(&ec2, &builder, "sophos_planted", "sophos").await
}

#[tokio::test]
async fn a_planted_newer_ami_is_not_launched_and_preflight_warns_of_it() {
    let (moto, w, layer) = world().await;
    let planted = planted_ami(&moto, &w).await;
    let function = process(&layer, &w, &[]).await;
    let ready = function.invoke(json!({"action": "preflight"})).await;
    let warned = step_on(&ready, "ami_provenance")
        .unwrap_or_else(|| panic!("preflight names the planted AMI: {ready:#}"));
    assert_eq!(warned["status"], "warn", "{warned:#}");
    assert!(
        warned["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&planted),
        "{warned:#}"
    );

    let r = function
        .invoke(json!({"action": "failover", "reason": "test"}))
        .await;
    assert_eq!(r["outcome"], "failed_over", "{r:#}");
    assert_eq!(
        r["image"],
        json!(w.new_ami),
        "the newest AMI made of the appliance: {r:#}"
    );
    let new = r["new_instance"].as_str().unwrap_or_default();
    let launched = describe(&moto.ec2(), new).await;
    assert_eq!(launched.image_id(), Some(w.new_ami.as_str()));
}

#[tokio::test]
async fn an_ami_someone_tagged_as_the_tools_survives_the_retention() {
    let (moto, w, layer) = world().await;
    let ec2 = moto.ec2();
    let ours = create_ami(&ec2, &w.sophos, "sophos-20261101T1800Z", "sophos").await;
    let foreign = planted_ami(&moto, &w).await;
    for ami in [&ours, &foreign] {
        tag(&ec2, ami, TAG_CREATED_BY, CREATED_BY).await;
    }
    // Creation times have a second's grain: the snapshot's AMI comes later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let function = process(&layer, &w, &[("AMI_RETENTION", "1")]).await;
    let r = function
        .invoke(json!({"action": "snapshot", "reason": "test"}))
        .await;
    assert_eq!(r["outcome"], "snapshot_taken", "{r:#}");
    assert!(
        own_image(&ec2, &foreign).await.is_some(),
        "the foreign AMI stays: {r:#}"
    );
    assert_left_alone(&r, &foreign, "SourceInstanceId");
    assert!(
        own_image(&ec2, &ours).await.is_none(),
        "the tool's own old AMI is pruned: {r:#}"
    );
}

/// The SDK adapter asks EC2 (moto) for an owner's published AMIs by AMI name.
#[tokio::test]
async fn the_amis_an_owner_published_are_found_by_their_name() {
    use ec2_failover::cloud::Cloud;
    let moto = Moto::start();
    let cloud = ec2_failover::cloud::sdk::SdkCloud::new(moto.ec2(), moto.route53());
    let owners = ["amazon".to_owned()];
    let found = cloud
        .images_published(&owners, "amzn2-ami-hvm")
        .await
        .unwrap();
    assert!(!found.is_empty(), "moto publishes Amazon Linux 2 AMIs");
    assert!(
        found.iter().all(|i| i
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("amzn2-ami-hvm"))),
        "{found:?}"
    );
    let none = cloud.images_published(&owners, "sophos").await.unwrap();
    assert_eq!(none, Vec::new());
}
