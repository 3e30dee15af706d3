//! An AZ outage in small (issue 23): every appliance of one AZ alarms at once,
//! each alarm delivered twice at the same moment to a pool of function
//! processes, while EC2 throttles as its token buckets do and Route 53 as its
//! account quota does (both scaled down, so four appliances meet what twenty
//! would). Every group recovers, once, in parallel; throttling makes calls
//! wait, never a failover fail. `make bench` runs the full-size scenario.

use std::collections::BTreeSet;

use crate::common;

use common::fleet_world::outage;
use common::{describe, route_target};

const APPLIANCES: usize = 4;
const DELIVERIES: usize = 2;

#[tokio::test]
async fn every_appliance_of_an_az_recovers_at_once_through_throttling() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ec2-failover"));
    let mut stage = outage(binary, APPLIANCES, APPLIANCES * DELIVERIES, (0.05, 1.0)).await;
    let (fw, layer, route53, apis) = (&stage.fw, &stage.layer, &stage.route53, &stage.apis);
    let ec2 = stage.moto.ec2();
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
    for a in &stage.fw.appliances {
        let row = stage
            .moto
            .dynamodb()
            .get_item()
            .table_name(&stage.table)
            .key(
                "group",
                aws_sdk_dynamodb::types::AttributeValue::S(a.name.clone()),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        assert!(row.item().is_none(), "{}: its lease was given back", a.name);
    }
    for f in &mut stage.pool {
        assert!(
            f.child.try_wait().unwrap().is_none(),
            "no function process died"
        );
    }
}
