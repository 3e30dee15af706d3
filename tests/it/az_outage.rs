//! An AZ outage in small (issue 23): every appliance of one AZ alarms at once,
//! each alarm delivered twice at the same moment to a pool of function
//! processes, while EC2 throttles as its token buckets do and Route 53 as its
//! account quota does (both scaled down, so four appliances meet what twenty
//! would). Every group recovers, once, in parallel; throttling makes calls
//! wait, never a failover fail. `make bench` runs the full-size scenario.

use std::collections::BTreeSet;

use crate::common;

use common::ec2_like::Ec2Like;
use common::fleet_world::fleet_world;
use common::route53_standin::Route53StandIn;
use common::runtime_api::{Function, RuntimeApi};
use common::{Moto, describe, route_target};
use ec2_failover::cloud::memory::CHECKER_FAILURE;

const APPLIANCES: usize = 4;
const DELIVERIES: usize = 2;

#[tokio::test]
async fn every_appliance_of_an_az_recovers_at_once_through_throttling() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let fw = fleet_world(&ec2, APPLIANCES).await;
    let table = moto.lease_table().await;
    let layer = Ec2Like::builder()
        .client_tokens()
        .token_buckets(0.05)
        .start(&moto.endpoint)
        .await;
    let route53 = Route53StandIn::start(&[CHECKER_FAILURE; 8]).await;
    route53.throttle(1.0);
    let env: Vec<(String, String)> = [
        ("FAILOVER_GROUPS", fw.groups()),
        ("LOCK_TABLE", table),
        ("AWS_ENDPOINT_URL_ROUTE_53", route53.endpoint.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ec2-failover"));
    let mut apis = Vec::new();
    for _ in 0..APPLIANCES * DELIVERIES {
        apis.push(RuntimeApi::start().await);
    }
    let _pool: Vec<Function> = apis
        .iter()
        .map(|api| Function::spawn(binary, api, &layer.endpoint, &env))
        .collect();
    let events: Vec<String> = (0..APPLIANCES * DELIVERIES)
        .map(|i| fw.appliances[i % APPLIANCES].alarm().to_string())
        .collect();
    let answers = futures::future::join_all(
        apis.iter()
            .zip(&events)
            .map(|(api, event)| api.invoke(event)),
    )
    .await;

    let mut failed_over = BTreeSet::new();
    for (_, answer) in &answers {
        assert!(answer.ok, "a delivery failed: {}", answer.body);
        let report = answer.json();
        match report["outcome"].as_str() {
            Some("failed_over") => assert!(failed_over.insert(report["old_instance"].to_string())),
            Some("already_failed_over") => {}
            other => panic!("{other:?}: {report:#}"),
        }
    }
    assert_eq!(failed_over.len(), APPLIANCES, "each group failed over once");
    let mut replacements = BTreeSet::new();
    for a in &fw.appliances {
        let holder = common::address_owner(&ec2, &a.floating_ip)
            .await
            .expect("a holder");
        assert_ne!(
            holder, a.instance,
            "{} still on its failed instance",
            a.name
        );
        let new = describe(&ec2, &holder).await;
        assert_eq!(
            new.subnet_id(),
            Some(fw.seed.subnet_c.as_str()),
            "{}",
            a.name
        );
        assert_eq!(
            route_target(&ec2, &a.route_table, &a.cidr).await,
            Some(holder.clone())
        );
        replacements.insert(holder);
        let moved = layer.log().into_iter().any(|e| {
            e.action == "AssociateAddress"
                && e.result == "OK"
                && common::ec2_like::param(&e.params, "AllocationId") == Some(a.allocation.as_str())
        });
        assert!(
            moved,
            "{}: its floating IP was moved by allocation id",
            a.name
        );
        assert_eq!(
            common::instances_named(&ec2, &a.name).await.len(),
            2,
            "{}: the original and one replacement",
            a.name
        );
    }
    assert_eq!(replacements.len(), APPLIANCES);
    let throttled = layer
        .log()
        .iter()
        .filter(|e| e.result == "RequestLimitExceeded")
        .count();
    assert!(throttled > 0, "EC2's buckets ran dry at least once");
    assert!(
        route53.throttled() > 0,
        "Route 53's quota ran dry at least once"
    );
}
