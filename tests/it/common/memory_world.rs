//! The seed article's world in a [`MemoryCloud`], as `build_world` makes it in
//! moto: VPC `my-vpc`, subnets `public` in 1a and 1c, the running `sophos` VPN
//! gateway with its tagged AMIs, a floating EIP on it, route table `public`
//! with the VPN client route, and bystanders that must not be touched.

use chrono::{DateTime, TimeDelta, Utc};
use ec2_failover::cloud::faults::FaultyCloud;
use ec2_failover::cloud::memory::{ImageSpec, InstanceSpec, MemoryCloud, WorldView};
use ec2_failover::cloud::{Cidr, RouteTarget, TAG_REPLACES};
use ec2_failover::{App, FailoverError, Fleet, Report, Response, Settings, groups};
use serde_json::{Value, json};

pub use super::seed::REGION;
use super::seed::VPN_CIDR;

pub const PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/sophos";

pub fn cidr(s: &str) -> Cidr {
    s.parse()
        .unwrap_or_else(|e| panic!("{s} is not a CIDR: {e}"))
}

pub fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - TimeDelta::days(days)
}

/// One single-instance appliance in its own VPC.
#[derive(Debug, Clone)]
pub struct Appliance {
    pub vpc: String,
    pub subnet_a: String,
    pub subnet_c: String,
    pub igw: String,
    pub route_table: String,
    pub security_group: String,
    pub instance: String,
    pub old_ami: String,
    pub new_ami: String,
    pub floating_ip: String,
}

/// What differs between two appliances of one account.
pub struct ApplianceNames<'a> {
    pub vpc: &'a str,
    pub vpc_cidr: &'a str,
    /// Prefix of the two subnets' CIDRs, e.g. `10.0` for 10.0.1.0/24 and 10.0.2.0/24.
    pub net: &'a str,
    pub subnet: &'a str,
    pub instance: &'a str,
    pub ami: &'a str,
    /// The route that follows the instance.
    pub route: &'a str,
}

/// Builds one appliance: VPC, two subnets (1a, 1c), an internet gateway, a
/// route table with `0.0.0.0/0 -> igw` (unless that is the appliance's own
/// route) and the appliance's route, a security group, the running instance
/// in 1a (source/dest check off, key `ops`, an instance profile), two AMIs
/// tagged with `ami` (the newer one two days old) and a floating EIP.
pub fn appliance(cloud: &MemoryCloud, base: &str, n: &ApplianceNames<'_>) -> Appliance {
    let vpc = cloud.add_vpc(n.vpc, cidr(n.vpc_cidr));
    let subnet_a = cloud.add_subnet(
        &vpc,
        &format!("{REGION}a"),
        cidr(&format!("{}.1.0/24", n.net)),
        n.subnet,
    );
    let subnet_c = cloud.add_subnet(
        &vpc,
        &format!("{REGION}c"),
        cidr(&format!("{}.2.0/24", n.net)),
        n.subnet,
    );
    let igw = cloud.add_internet_gateway(&vpc);
    let route_table = cloud.add_route_table(&vpc, n.subnet);
    if n.route != "0.0.0.0/0" {
        cloud.add_route(
            &route_table,
            cidr("0.0.0.0/0"),
            RouteTarget::Other(igw.clone()),
        );
    }
    let security_group = cloud.add_security_group(&vpc, n.instance);
    let instance = cloud.add_instance(
        InstanceSpec::new(&subnet_a, n.instance)
            .tag("Role", "vpn-gateway")
            .tag("Owner", "netops")
            .groups(&[&security_group])
            .key("ops")
            .profile(PROFILE)
            .image(base)
            .source_dest_check(false)
            .launched(days_ago(30)),
    );
    let old_ami = cloud.add_image(
        ImageSpec::new(&format!("{}_old", n.ami))
            .tag("Name", n.ami)
            .of_instance(&instance)
            .created(days_ago(21)),
    );
    let new_ami = cloud.add_image(
        ImageSpec::new(&format!("{}_new", n.ami))
            .tag("Name", n.ami)
            .of_instance(&instance)
            .created(days_ago(2)),
    );
    let floating_ip = cloud.add_address(Some(&instance)).public_ip;
    cloud.add_route(
        &route_table,
        cidr(n.route),
        RouteTarget::Instance(instance.clone()),
    );
    Appliance {
        vpc,
        subnet_a,
        subnet_c,
        igw,
        route_table,
        security_group,
        instance,
        old_ami,
        new_ami,
        floating_ip,
    }
}

/// The seed world and its handle.
#[derive(Debug, Clone)]
pub struct MemWorld {
    pub cloud: MemoryCloud,
    pub base_image: String,
    pub vpc: String,
    pub subnet_a: String,
    pub subnet_c: String,
    pub igw: String,
    pub route_table: String,
    pub security_group: String,
    pub sophos: String,
    pub old_ami: String,
    pub new_ami: String,
    /// Newer than both, but tagged `Name=web`: never to be chosen.
    pub web_ami: String,
    pub floating_ip: String,
    pub web: String,
    pub web_ip: String,
    pub other_vpc: String,
    /// An instance also named `sophos`, but in another VPC.
    pub foreign_sophos: String,
}

impl MemWorld {
    pub fn view(&self) -> WorldView {
        self.cloud.view()
    }
}

pub fn seed_world() -> MemWorld {
    let cloud = MemoryCloud::new();
    let base_image = cloud.add_image(
        ImageSpec::new("amzn2-ami-hvm-2.0.20261101-x86_64-gp2")
            .not_owned()
            .created(days_ago(60)),
    );
    let a = appliance(
        &cloud,
        &base_image,
        &ApplianceNames {
            vpc: "my-vpc",
            vpc_cidr: "10.0.0.0/16",
            net: "10.0",
            subnet: "public",
            instance: "sophos",
            ami: "sophos",
            route: VPN_CIDR,
        },
    );
    let web_ami = cloud.add_image(
        ImageSpec::new("web_20261121")
            .tag("Name", "web")
            .created(days_ago(1)),
    );
    let web = cloud.add_instance(
        InstanceSpec::new(&a.subnet_a, "web")
            .groups(&[&a.security_group])
            .key("ops")
            .image(&base_image),
    );
    let web_ip = cloud.add_address(Some(&web)).public_ip;
    let other_vpc = cloud.add_vpc("other-vpc", cidr("10.9.0.0/16"));
    let other_subnet = cloud.add_subnet(
        &other_vpc,
        &format!("{REGION}a"),
        cidr("10.9.1.0/24"),
        "other",
    );
    let foreign_sophos =
        cloud.add_instance(InstanceSpec::new(&other_subnet, "sophos").image(&base_image));
    MemWorld {
        cloud,
        base_image,
        vpc: a.vpc,
        subnet_a: a.subnet_a,
        subnet_c: a.subnet_c,
        igw: a.igw,
        route_table: a.route_table,
        security_group: a.security_group,
        sophos: a.instance,
        old_ami: a.old_ami,
        new_ami: a.new_ami,
        web_ami,
        floating_ip: a.floating_ip,
        web,
        web_ip,
        other_vpc,
        foreign_sophos,
    }
}

/// Sets (or adds) alarm `name` in `state`, changed at a fixed time.
pub fn set_alarm_state(w: &MemWorld, name: &str, state: &str) {
    w.cloud.set_alarm(ec2_failover::cloud::Alarm {
        name: name.into(),
        arn: format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
        state: state.into(),
        reason: None,
        transitioned_at: Some(chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_413)),
        updated_at: None,
        health_check_id: None,
        actions: vec![],
    });
}

/// Settings from KEY=VALUE pairs, as the environment would give them.
pub fn settings_from(pairs: &[(&str, &str)]) -> Settings {
    let env: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::from_lookup(|k| {
        env.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("invalid test settings: {e}"))
}

/// The function's settings for the seed world; `extra` overrides or adds.
pub fn seed_settings(w: &MemWorld, extra: &[(&str, &str)]) -> Settings {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("INSTANCE_NAME", "sophos"),
        ("AMI_NAME", "sophos"),
        ("VPC_NAME", "my-vpc"),
        ("SUBNET_NAME", "public"),
        ("ROUTE_CIDRS", VPN_CIDR),
        ("FLOATING_IP", &w.floating_ip),
    ];
    pairs.extend_from_slice(extra);
    settings_from(&pairs)
}

/// The world behind a wrapper that fails every call of `operation` whose
/// target contains `target` (any target when empty) with the AWS error `code`.
pub fn failing(
    w: &MemWorld,
    operation: &'static str,
    target: &str,
    code: &str,
) -> ec2_failover::cloud::faults::FaultyCloud<ec2_failover::cloud::memory::MemoryCloud> {
    ec2_failover::cloud::faults::FaultyCloud::new(w.cloud.clone()).with(
        ec2_failover::cloud::faults::Fault::FailOperation {
            operation,
            target: target.to_owned(),
            code: code.to_owned(),
            times: None,
        },
    )
}

/// A fleet of one appliance over `cloud`.
pub fn single<C: ec2_failover::cloud::Cloud + Clone>(cloud: C, settings: Settings) -> Fleet<C> {
    Fleet::single(App { cloud, settings })
}

/// One invocation through the front door, answered as the fleet answers.
pub async fn answer<C: ec2_failover::cloud::Cloud + Clone>(
    fleet: &Fleet<C>,
    payload: &Value,
    request_id: &str,
) -> Result<Response, FailoverError> {
    ec2_failover::handle(fleet, payload, &super::events::invocation(request_id)).await
}

/// The error type of a reconcile that failed: it answers per group.
pub fn failed_reconcile(answer: &Result<Response, FailoverError>) -> Option<String> {
    match answer {
        Ok(Response::PerGroup(r)) => r.groups.first().and_then(|g| g.error_type.clone()),
        _ => None,
    }
}

/// One invocation's report, or its error type: a reconcile's failure answers
/// per group, any other job's fails the invocation.
pub async fn report_or_error_type<C: ec2_failover::cloud::Cloud + Clone>(
    fleet: &Fleet<C>,
    payload: &Value,
    request_id: &str,
) -> Result<Report, String> {
    let answer = answer(fleet, payload, request_id).await;
    if let Some(error_type) = failed_reconcile(&answer) {
        return Err(error_type);
    }
    match answer {
        Ok(Response::One(report)) => Ok(*report),
        Ok(Response::PerGroup(r)) => panic!("expected one report, got one per group: {r:?}"),
        Err(e) => Err(e.error_type()),
    }
}

/// One invocation of a fleet of one, through the front door.
pub async fn invoke<C: ec2_failover::cloud::Cloud + Clone>(
    fleet: &Fleet<C>,
    payload: &Value,
    request_id: &str,
) -> Result<Report, FailoverError> {
    match ec2_failover::handle(fleet, payload, &super::events::invocation(request_id)).await? {
        Response::One(report) => Ok(*report),
        Response::PerGroup(r) => panic!("expected one report, got one per group: {r:?}"),
    }
}

/// The replacements of `instance` in `vpc`: instances of that name in the VPC
/// other than the original, not terminated.
pub fn replacements(view: &WorldView, vpc: &str, name: &str, original: &str) -> Vec<String> {
    view.named(name)
        .into_iter()
        .filter(|i| i.vpc_id == vpc && i.id != original)
        .filter(|i| i.state != ec2_failover::cloud::InstanceState::Terminated)
        .map(|i| i.id.clone())
        .collect()
}

/// Asserts the world of one complete failover from the seed world: exactly
/// one replacement (running in 1c from the newest `sophos` AMI, with the old
/// instance's type, groups, key, profile and tags, source/dest check off), the
/// floating IP and the VPN route on it, the failed instance stopped,
/// bystanders untouched and nothing else launched. Returns the replacement.
pub fn assert_failed_over_once(view: &WorldView, w: &MemWorld) -> String {
    let mut ours = replacements(view, &w.vpc, "sophos", &w.sophos);
    assert_eq!(ours.len(), 1, "exactly one replacement, got {ours:?}");
    let new_id = ours.remove(0);
    let new = view.instance(&new_id).expect("the replacement");
    let old = view.instance(&w.sophos).expect("the failed instance");
    assert_eq!(new.state, ec2_failover::cloud::InstanceState::Running);
    assert_eq!(new.subnet_id, w.subnet_c);
    assert!(!new.source_dest_check, "source/dest check off");
    assert_eq!(new.image_id.as_deref(), Some(w.new_ami.as_str()));
    assert_eq!(new.instance_type, old.instance_type);
    assert_eq!(new.security_group_ids, old.security_group_ids);
    assert_eq!(new.key_name, old.key_name);
    assert_eq!(new.iam_instance_profile_arn, old.iam_instance_profile_arn);
    for key in ["Name", "Role", "Owner"] {
        assert_eq!(new.tag(key), old.tag(key), "tag {key} is inherited");
    }
    assert_eq!(new.tag(TAG_REPLACES), Some(w.sophos.as_str()));
    assert_eq!(old.state, ec2_failover::cloud::InstanceState::Stopped);
    assert_eq!(view.address_owner(&w.floating_ip), Some(new_id.as_str()));
    let vpn = view.route(&w.route_table, VPN_CIDR).expect("the VPN route");
    assert_eq!(vpn.target, RouteTarget::Instance(new_id.clone()));
    assert!(!vpn.blackhole);
    let default = view
        .route(&w.route_table, "0.0.0.0/0")
        .expect("default route");
    assert_eq!(default.target, RouteTarget::Other(w.igw.clone()));
    assert_eq!(view.address_owner(&w.web_ip), Some(w.web.as_str()));
    let web = view.instance(&w.web).expect("web");
    assert_eq!(web.state, ec2_failover::cloud::InstanceState::Running);
    let foreign = view.instance(&w.foreign_sophos).expect("foreign sophos");
    assert_eq!(foreign.state, ec2_failover::cloud::InstanceState::Running);
    assert_eq!(
        view.instances.len(),
        4,
        "sophos, its replacement, web and the foreign sophos"
    );
    new_id
}

/// The health check the in-process worlds watch.
pub const HEALTH_CHECK: &str = "6f0c8d52-5a4e-4c1e-9a3b-2b7f1e0d9c11";

/// Route 53 checker ranges as `ip-ranges.json` lists them (IPv4 and IPv6).
pub fn checker_ranges() -> Vec<ec2_failover::cloud::Cidr> {
    [
        "15.177.0.0/18",
        "54.183.255.128/26",
        "54.228.16.0/26",
        "2600:1f14:fff:f800::/56",
    ]
    .map(cidr)
    .to_vec()
}

pub struct TwoGroups {
    pub w: MemWorld,
    pub nat: Appliance,
    pub cloud: FaultyCloud<MemoryCloud>,
    pub fleet: Fleet<FaultyCloud<MemoryCloud>>,
    /// The `FAILOVER_GROUPS` document of the two.
    pub doc: String,
}

/// The seed world's VPN gateway (group `tokyo-vpn`, selected by its health
/// check) and a NAT instance in VPC `prod` (group `prod-nat`, selected by its
/// alarm name), in one account.
pub fn two_groups() -> TwoGroups {
    let w = seed_world();
    let nat = appliance(
        &w.cloud,
        &w.base_image,
        &ApplianceNames {
            vpc: "prod",
            vpc_cidr: "10.1.0.0/16",
            net: "10.1",
            subnet: "private",
            instance: "nat",
            ami: "nat",
            route: "0.0.0.0/0",
        },
    );
    w.cloud.add_health_check(HEALTH_CHECK, Some(443));
    w.cloud.set_health(HEALTH_CHECK, 0, 8);
    w.cloud.set_checker_ranges(&checker_ranges());
    let doc = json!([
        {"name": "tokyo-vpn", "instance_name": "sophos", "ami_name": "sophos",
         "vpc_name": "my-vpc", "subnet_name": "public", "route_cidrs": [VPN_CIDR],
         "floating_ip": w.floating_ip, "health_check_id": HEALTH_CHECK,
         "checker_security_group": "sophos", "checker_port": 443},
        {"name": "prod-nat", "instance_name": "nat", "ami_name": "nat",
         "vpc_name": "prod", "subnet_name": "private", "route_cidrs": "0.0.0.0/0",
         "floating_ip": nat.floating_ip, "alarm_name": "nat-health"},
    ])
    .to_string();
    let groups = groups::from_lookup(|k| (k == "FAILOVER_GROUPS").then(|| doc.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let cloud = FaultyCloud::new(w.cloud.clone());
    let mut regions = Vec::new();
    let fleet = Fleet::new(groups, |region| {
        regions.push(region.map(str::to_owned));
        cloud.clone()
    });
    assert_eq!(regions, [None], "one client set for the one region");
    TwoGroups {
        w,
        nat,
        cloud,
        fleet,
        doc,
    }
}
