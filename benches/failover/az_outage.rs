//! The AZ outage (issue 23): twenty appliances of one AZ alarm at once, every
//! alarm delivered three times at the same moment to a pool of sixty function
//! processes (Lambda runs each concurrent event in a sandbox of its own), cold
//! standby, under the latency model (a new instance is `pending` 30 s) and
//! EC2's token buckets at their documented sizes, with Route 53's quota of 5
//! requests a second; the groups' leases in moto's DynamoDB.
//!
//! Measured from the first delivery: when each group's floating IP and route
//! reached its replacement (the layer's log), the last of them; the
//! replacements made; and, per group, that the three processes' EC2 changes
//! never overlapped (the layer logs each call's signing key: one per process).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::common;
use super::common::ec2_like::Exchange;
use super::common::fleet_world::{FleetWorld, Outage as Stage, outage};
use super::{binary, median};
use ec2_failover::cloud::Operation;

const GROUPS: usize = 20;
const DELIVERIES: usize = 3;
const PENDING_AFTER_LAUNCH: Duration = Duration::from_secs(30);
/// The last group back within this many times one group's cold time to recover.
const BUDGET_RATIO: f64 = 1.5;

pub struct Outage {
    /// Seconds from the first delivery to each group's recovery, by group.
    pub recovered: BTreeMap<String, f64>,
    pub replacements: usize,
    pub failed_deliveries: Vec<String>,
    /// Groups whose jobs' EC2 changes overlapped.
    pub overlapping: Vec<String>,
    pub throttled_ec2: usize,
    pub throttled_route53: usize,
    pub leases_left: usize,
}

impl Outage {
    fn last(&self) -> Option<f64> {
        self.recovered.values().copied().reduce(f64::max)
    }
}

pub async fn run() -> Outage {
    let stage = outage(&binary(), GROUPS, GROUPS * DELIVERIES, (1.0, 5.0)).await;
    let Stage {
        moto,
        fw,
        table,
        layer,
        route53,
        apis,
        pool,
    } = stage;
    let ec2 = moto.ec2();
    for api in &apis {
        api.ready().await;
    }
    layer.set_pending(Some(PENDING_AFTER_LAUNCH), None);
    // Delivery i goes to process i, for group i % GROUPS.
    let events: Vec<String> = (0..GROUPS * DELIVERIES)
        .map(|i| fw.appliances[i % GROUPS].alarm().to_string())
        .collect();
    let t0 = Instant::now() - layer.origin();
    let answers =
        futures::future::join_all(apis.iter().zip(&events).map(|(api, e)| api.invoke(e))).await;
    drop(pool);
    let failed_deliveries = answers
        .iter()
        .filter(|(_, a)| !a.ok)
        .map(|(_, a)| a.body.chars().take(300).collect())
        .collect();
    let log = layer.log();
    let mut leases_left = 0;
    for a in &fw.appliances {
        let row = moto
            .dynamodb()
            .get_item()
            .table_name(&table)
            .key(
                "group",
                aws_sdk_dynamodb::types::AttributeValue::S(a.name.clone()),
            )
            .consistent_read(true)
            .send()
            .await;
        leases_left += usize::from(row.is_ok_and(|r| r.item().is_some()));
    }
    Outage {
        recovered: recovered(&fw, &log, t0),
        replacements: replacements(&ec2, &fw).await,
        failed_deliveries,
        overlapping: overlapping(&fw, &log),
        throttled_ec2: log
            .iter()
            .filter(|e| e.result == "RequestLimitExceeded")
            .count(),
        throttled_route53: route53.throttled(),
        leases_left,
    }
}

/// Per group, seconds from `t0` to the later of its floating IP's and its
/// route's successful move.
fn recovered(fw: &FleetWorld, log: &[Exchange], t0: Duration) -> BTreeMap<String, f64> {
    let ok = |e: &&Exchange, action: &str| e.result == "OK" && e.action == action;
    fw.appliances
        .iter()
        .filter_map(|a| {
            let param =
                |e: &Exchange, k: &str| common::ec2_like::param(&e.params, k).map(str::to_owned);
            let eip = log
                .iter()
                .filter(|e| ok(e, "AssociateAddress"))
                .find(|e| param(e, "AllocationId").as_deref() == Some(a.allocation.as_str()))?;
            let route = log
                .iter()
                .filter(|e| ok(e, "ReplaceRoute"))
                .find(|e| param(e, "RouteTableId").as_deref() == Some(a.route_table.as_str()))?;
            let at = eip.at.max(route.at).saturating_sub(t0);
            Some((a.name.clone(), at.as_secs_f64()))
        })
        .collect()
}

/// Instances of the appliances' names other than the originals, not terminated.
async fn replacements(ec2: &aws_sdk_ec2::Client, fw: &FleetWorld) -> usize {
    let mut n = 0;
    for a in &fw.appliances {
        let ids = common::instances_named(ec2, &a.name).await;
        n += ids.iter().filter(|id| **id != a.instance).count();
    }
    n
}

/// Groups where two processes' EC2 changes overlapped in time.
fn overlapping(fw: &FleetWorld, log: &[Exchange]) -> Vec<String> {
    let mutating = |e: &Exchange| {
        Operation::ALL
            .iter()
            .any(|op| op.name() == e.action && op.mutating() && op.service().iam_prefix() == "ec2")
    };
    let mut out = Vec::new();
    for (g, a) in fw.appliances.iter().enumerate() {
        let windows: Vec<(Duration, Duration)> = (0..DELIVERIES)
            .filter_map(|d| {
                let caller = format!("proc-{:02}", d * GROUPS + g);
                let at: Vec<Duration> = log
                    .iter()
                    .filter(|e| e.caller == caller && mutating(e))
                    .map(|e| e.at)
                    .collect();
                Some((*at.first()?, *at.last()?))
            })
            .collect();
        let clash = windows
            .iter()
            .enumerate()
            .any(|(i, x)| windows[i + 1..].iter().any(|y| !(x.1 < y.0 || y.1 < x.0)));
        if clash {
            out.push(a.name.clone());
        }
    }
    out
}

pub fn section(o: &Outage, cold_recover: Option<f64>) -> String {
    let times: Vec<f64> = o.recovered.values().copied().collect();
    let last = o.last().map_or("none".to_owned(), |l| format!("{l:.1} s"));
    let single = cold_recover.map_or("not measured".to_owned(), |c| {
        format!("at least {:.0} s ({GROUPS} x {c:.1} s, computed: one failover after another, before Lambda's retry backoff)", c * GROUPS as f64)
    });
    format!(
        "## AZ outage ({GROUPS} groups, each alarm delivered {DELIVERIES} times at once)\n\n\
         Method: {GROUPS} appliances in ap-northeast-1a, one failover group each (benches/failover/az_outage.rs); every alarm \
         delivered {DELIVERIES} times at the same moment to a pool of {} function processes, each with its own Runtime \
         API emulator; cold standby, a new instance `pending` {} s; EC2's token buckets at their documented sizes and \
         Route 53's 5 requests a second (the EC2-like layer and the Route 53 stand-in); the leases in moto's DynamoDB. \
         Recovered = the later of the group's successful AssociateAddress and ReplaceRoute, from the first delivery.\n\n\
         | | last group recovered | median group | replacements | failed deliveries | groups with overlapping jobs | EC2 calls throttled | Route 53 calls throttled |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n\
         | per-group leases (now) | {last} | {:.1} s | {} | {} | {} | {} | {} |\n\
         | one slot (`ReservedConcurrentExecutions: 1`, before) | {single} | | | | | | |\n\n",
        GROUPS * DELIVERIES,
        PENDING_AFTER_LAUNCH.as_secs(),
        median(&times),
        o.replacements,
        o.failed_deliveries.len(),
        o.overlapping.len(),
        o.throttled_ec2,
        o.throttled_route53,
    )
}

pub fn budgets(o: &Outage, cold_recover: Option<f64>) -> Vec<(bool, String)> {
    let mut out = vec![
        (
            o.recovered.len() == GROUPS,
            format!(
                "AZ outage: every group recovered: {} of {GROUPS}",
                o.recovered.len()
            ),
        ),
        (
            o.replacements == GROUPS,
            format!(
                "AZ outage: exactly {GROUPS} replacements: {}",
                o.replacements
            ),
        ),
        (
            o.failed_deliveries.is_empty(),
            format!("AZ outage: no delivery failed: {:?}", o.failed_deliveries),
        ),
        (
            o.overlapping.is_empty(),
            format!(
                "AZ outage: no two jobs of one group overlapped: {:?}",
                o.overlapping
            ),
        ),
        (
            o.leases_left == 0,
            format!("AZ outage: every lease given back: {} left", o.leases_left),
        ),
    ];
    match (o.last(), cold_recover) {
        (Some(last), Some(cold)) => out.push((
            last <= BUDGET_RATIO * cold,
            format!("AZ outage: last group recovered {last:.1} s <= {BUDGET_RATIO} x one group's cold time to recover ({cold:.1} s)"),
        )),
        _ => out.push((false, "AZ outage: last group's time not measured".to_owned())),
    }
    out
}
