//! Many appliances in one AZ, the world of an AZ outage (issue 23): the seed
//! world, plus `n` appliances `vpn-00`, `vpn-01`... in its subnet of 1a, each
//! with its own AMI, Elastic IP, route table (`rt-vpn-NN`, route
//! `10.(100+N).0.0/24` to it) and health check; one failover group each.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::AttributeBooleanValue;
use serde_json::{Value, json};

use super::ec2_like::Ec2Like;
use super::route53_standin::Route53StandIn;
use super::runtime_api::{Function, RuntimeApi};
use super::{Moto, World, build_world, create_ami, launch, route_table};
use ec2_failover::cloud::memory::CHECKER_FAILURE;

#[derive(Debug, Clone)]
pub struct Appliance {
    pub name: String,
    pub instance: String,
    pub floating_ip: String,
    /// The floating IP's allocation id, as AssociateAddress names it.
    pub allocation: String,
    pub route_table: String,
    pub cidr: String,
    pub health_check: String,
}

impl Appliance {
    /// The alarm on this appliance's health check, as SNS delivers it.
    pub fn alarm(&self) -> Value {
        let mut event = super::sample("sns-alarm.json");
        let text = event["Records"][0]["Sns"]["Message"]
            .as_str()
            .unwrap_or_default();
        let mut message: Value = serde_json::from_str(text).unwrap();
        let alarm = format!("{}-health", self.name);
        message["AlarmName"] = json!(alarm);
        message["AlarmArn"] = json!(format!(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
        ));
        message["Trigger"]["Dimensions"][0]["value"] = json!(self.health_check);
        event["Records"][0]["Sns"]["Message"] = json!(message.to_string());
        event
    }
}

pub struct FleetWorld {
    pub seed: World,
    pub appliances: Vec<Appliance>,
}

impl FleetWorld {
    /// `FAILOVER_GROUPS`: one group per appliance, named after it.
    pub fn groups(&self) -> String {
        let groups: Vec<Value> = self
            .appliances
            .iter()
            .map(|a| {
                json!({
                    "name": a.name, "alarm_name": format!("{}-health", a.name),
                    "health_check_id": a.health_check,
                    "instance_name": a.name, "ami_name": a.name, "vpc_name": "my-vpc",
                    "subnet_name": "public", "route_table_name": a.route_table_name(),
                    "route_cidrs": [a.cidr], "floating_ip": a.floating_ip,
                })
            })
            .collect();
        Value::Array(groups).to_string()
    }
}

impl Appliance {
    fn route_table_name(&self) -> String {
        format!("rt-{}", self.name)
    }
}

pub async fn fleet_world(ec2: &Client, n: usize) -> FleetWorld {
    let seed = build_world(ec2).await;
    let base = super::base_image(ec2).await;
    let mut appliances = Vec::new();
    for i in 0..n {
        let name = format!("vpn-{i:02}");
        let instance = launch(
            ec2,
            &base,
            &seed.subnet_a,
            &[&seed.security_group],
            &[("Name", &name)],
        )
        .await;
        ec2.modify_instance_attribute()
            .instance_id(&instance)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build())
            .send()
            .await
            .unwrap();
        create_ami(ec2, &instance, &format!("{name}_1"), &name).await;
        let eip = ec2
            .allocate_address()
            .domain("vpc".into())
            .send()
            .await
            .unwrap();
        let (floating_ip, allocation) = (eip.public_ip().unwrap(), eip.allocation_id().unwrap());
        ec2.associate_address()
            .allocation_id(allocation)
            .instance_id(&instance)
            .send()
            .await
            .unwrap();
        let table = route_table(ec2, &seed.vpc, &format!("rt-{name}")).await;
        let cidr = format!("10.{}.0.0/24", 100 + i);
        ec2.create_route()
            .route_table_id(&table)
            .destination_cidr_block(&cidr)
            .instance_id(&instance)
            .send()
            .await
            .unwrap();
        appliances.push(Appliance {
            name,
            instance,
            floating_ip: floating_ip.to_owned(),
            allocation: allocation.to_owned(),
            route_table: table,
            cidr,
            health_check: format!("0000{i:04}-5a4e-4c1e-9a3b-2b7f1e0d9c11"),
        });
    }
    FleetWorld { seed, appliances }
}

/// An AZ outage's stage: the fleet world of `groups` appliances in moto, the
/// lease table, the EC2-like layer with EC2's token buckets (times `scale`),
/// the Route 53 stand-in seeing every health check fail and allowing
/// `route53_per_second`, and a pool of `processes` function processes (as
/// Lambda runs concurrent events), process `i` under `apis[i]`, signing as
/// `proc-NN` so the layer's log tells their calls apart.
pub struct Outage {
    pub moto: Moto,
    pub fw: FleetWorld,
    pub table: String,
    pub layer: Ec2Like,
    pub route53: Route53StandIn,
    pub apis: Vec<RuntimeApi>,
    pub pool: Vec<Function>,
}

pub async fn outage(
    binary: &std::path::Path,
    groups: usize,
    processes: usize,
    (scale, route53_per_second): (f64, f64),
) -> Outage {
    let moto = Moto::start();
    let fw = fleet_world(&moto.ec2(), groups).await;
    let table = moto.lease_table().await;
    let layer = Ec2Like::builder()
        .client_tokens()
        .token_buckets(scale)
        .start(&moto.endpoint)
        .await;
    let route53 = Route53StandIn::start(&[CHECKER_FAILURE; 8]).await;
    route53.throttle(route53_per_second);
    let mut apis = Vec::new();
    for _ in 0..processes {
        apis.push(RuntimeApi::start().await);
    }
    let pool = apis
        .iter()
        .enumerate()
        .map(|(i, api)| {
            let env = [
                ("FAILOVER_GROUPS", fw.groups()),
                ("LOCK_TABLE", table.clone()),
                ("AWS_ENDPOINT_URL_ROUTE_53", route53.endpoint.clone()),
                ("AWS_ACCESS_KEY_ID", format!("proc-{i:02}")),
            ];
            let env: Vec<(String, String)> =
                env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            Function::spawn(binary, api, &layer.endpoint, &env)
        })
        .collect();
    Outage {
        moto,
        fw,
        table,
        layer,
        route53,
        apis,
        pool,
    }
}
