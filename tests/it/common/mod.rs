//! Shared helpers for the integration tests: a private moto server per test
//! (reset and reused after it),
//! SDK clients pointed at it, the seed article's world, and a way to snapshot
//! the world to prove that something changed nothing.

pub mod alarmed;
pub mod ec2_like;
pub mod events;
pub mod fleet_world;
pub mod iam_eval;
pub mod memory_world;
pub mod route53_standin;
pub mod runtime_api;
pub mod seed;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, InstanceType, ResourceType, Tag, TagSpecification,
};
use ec2_failover::cloud::Cloud;
use ec2_failover::cloud::sdk::SdkCloud;
use ec2_failover::{App, FailoverError, Fleet, Invocation, Report, Response, Settings};
use serde_json::Value;

pub use events::{invocation, sample, sample_day, scheduled_at};
pub use seed::{REGION, VPN_CIDR};

/// A moto server of this test's own: a fresh one, or one another test
/// finished with, reset (`/moto-api/reset`) to the state a new server starts
/// in. Starting moto costs about 2.4 s of CPU (Python imports, then EC2's
/// backend on the first call), a reset about 0.4 s: with a hundred moto
/// tests on 2 cores, that was most of the test run.
pub struct Moto {
    server: Option<Server>,
    pub endpoint: String,
}

/// One moto process, the port it listens on, and the shell that ends it
/// when the test process ends (idle servers outlive every test, not that).
struct Server {
    child: Child,
    watcher: Option<Child>,
    port: u16,
}

/// The port werkzeug says moto listens on (" * Running on http://127.0.0.1:N");
/// the rest of its log is read and dropped, so a full pipe never stalls it.
fn listening_port(stderr: std::process::ChildStderr) -> u16 {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let port = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let (_, after) = line.split_once("Running on http://127.0.0.1:")?;
            after.trim().trim_end_matches('/').parse::<u16>().ok()
        })
        .expect("moto_server said which port it listens on");
    std::thread::spawn(move || lines.for_each(drop));
    port
}

/// Servers no test holds, ready for the next.
static IDLE: std::sync::Mutex<Vec<Server>> = std::sync::Mutex::new(Vec::new());

impl Server {
    /// A new moto process on a free port.
    fn spawn() -> Server {
        let path = std::env::var_os("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server")
            });
        assert!(
            path.exists(),
            "moto_server not found at {}; run `make test`, which installs it into .venv",
            path.display()
        );
        // Port 0: moto binds a free port itself and says which. A port picked
        // here and handed over would be free only until moto (a second of
        // Python start-up) binds it: meanwhile another test's server or
        // stand-in may take it, and two tests then share one moto.
        let mut child = Command::new(&path)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let port = listening_port(child.stderr.take().expect("moto's stderr"));
        let watch = format!(
            "while kill -0 {parent} 2>/dev/null && kill -0 {moto} 2>/dev/null; do sleep 1; done; kill {moto} 2>/dev/null",
            parent = std::process::id(),
            moto = child.id()
        );
        let watcher = Command::new("sh").args(["-c", &watch]).spawn().ok();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not listen on {addr} within 60s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Server {
            child,
            watcher,
            port,
        }
    }

    /// Back to a new server's state; false when moto did not say so.
    fn reset(&self) -> bool {
        use std::io::{Read, Write};
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "POST /moto-api/reset HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.kill();
            let _ = watcher.wait();
        }
    }
}

impl Moto {
    pub fn start() -> Moto {
        let idle = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let server = idle.unwrap_or_else(Server::spawn);
        Moto {
            endpoint: format!("http://127.0.0.1:{}", server.port),
            server: Some(server),
        }
    }

    /// EC2 configuration signed with dummy credentials (moto misroutes unsigned requests).
    pub fn ec2_conf(&self) -> aws_sdk_ec2::Config {
        self.ec2_conf_in(REGION)
    }

    pub fn ec2_conf_in(&self, region: &str) -> aws_sdk_ec2::Config {
        aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .build()
    }

    pub fn ec2(&self) -> Client {
        Client::from_conf(self.ec2_conf())
    }

    pub fn ec2_in(&self, region: &str) -> Client {
        Client::from_conf(self.ec2_conf_in(region))
    }

    pub fn route53(&self) -> aws_sdk_route53::Client {
        route53_at(&self.endpoint)
    }

    /// CloudWatch in us-east-1, where Route 53's health-check metrics live.
    pub fn cloudwatch_conf(&self) -> aws_sdk_cloudwatch::Config {
        aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build()
    }

    /// DynamoDB in the function's region (the lease table's).
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new(REGION))
                .endpoint_url(&self.endpoint)
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "testing", "testing", None, None, "tests",
                ))
                .build(),
        )
    }

    /// SNS in the function's region (the notification topic's).
    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .region(aws_sdk_sns::config::Region::new(REGION))
                .endpoint_url(&self.endpoint)
                .credentials_provider(aws_sdk_sns::config::Credentials::new(
                    "testing", "testing", None, None, "tests",
                ))
                .build(),
        )
    }

    /// The notification topic; returns its ARN, for `NOTIFICATION_TOPIC_ARN`.
    pub async fn notification_topic(&self) -> String {
        let out = self.sns().create_topic().name("ec2-failover").send().await;
        let out = out.expect("CreateTopic in moto");
        out.topic_arn().expect("a topic ARN").to_owned()
    }

    /// The lease table as the template makes it (partition key `group`);
    /// returns its name, for `LOCK_TABLE`.
    pub async fn lease_table(&self) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        const TABLE: &str = "ec2-failover-locks";
        self.dynamodb()
            .create_table()
            .table_name(TABLE)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("group")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("group")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("CreateTable in moto");
        TABLE.to_owned()
    }

    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::from_conf(self.cloudwatch_conf())
    }
}

/// A Route 53 client for an endpoint (moto, or a stand-in for what moto lacks).
/// The SAM template, as YAML.
pub fn template() -> serde_yaml::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

pub fn route53_at(endpoint: &str) -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::from_conf(route53_conf(endpoint))
}

pub fn route53_conf(endpoint: &str) -> aws_sdk_route53::Config {
    aws_sdk_route53::Config::builder()
        .behavior_version(aws_sdk_route53::config::BehaviorVersion::latest())
        .region(aws_sdk_route53::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_route53::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .build()
}

impl Drop for Moto {
    /// The server goes back to the pool, reset, for the next test; one that
    /// does not reset is stopped.
    fn drop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        match server.reset() {
            true => IDLE.lock().unwrap_or_else(|e| e.into_inner()).push(server),
            false => server.stop(),
        }
    }
}

pub fn name_tag(kind: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key("Name").value(name).build())
        .build()
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The seed article's world: VPC `my-vpc`, subnets `public` in two AZs, the
/// `sophos` VPN instance with its tagged AMIs, a floating EIP, route table
/// `public` with the VPN client route, and bystanders that must not be touched.
#[derive(Debug, Clone)]
pub struct World {
    pub vpc: String,
    pub subnet_a: String,
    pub subnet_c: String,
    pub igw: String,
    pub route_table: String,
    pub security_group: String,
    pub sophos: String,
    pub old_ami: String,
    pub new_ami: String,
    pub floating_ip: String,
    pub web: String,
    pub web_ip: String,
    /// An instance also named `sophos`, but in another VPC.
    pub foreign_sophos: String,
}

/// A VPC tagged `Name=name`.
pub async fn vpc(ec2: &Client, cidr: &str, name: &str) -> String {
    ec2.create_vpc()
        .cidr_block(cidr)
        .tag_specifications(name_tag(ResourceType::Vpc, name))
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_owned()
}

/// A subnet of `vpc` in `az`, tagged `Name=name`.
pub async fn subnet(ec2: &Client, vpc: &str, cidr: &str, az: &str, name: &str) -> String {
    ec2.create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr)
        .availability_zone(az)
        .tag_specifications(name_tag(ResourceType::Subnet, name))
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_owned()
}

/// A route table tagged `Name=name` in `vpc`.
pub async fn route_table(ec2: &Client, vpc: &str, name: &str) -> String {
    ec2.create_route_table()
        .vpc_id(vpc)
        .tag_specifications(name_tag(ResourceType::RouteTable, name))
        .send()
        .await
        .unwrap()
        .route_table()
        .unwrap()
        .route_table_id()
        .unwrap()
        .to_owned()
}

/// A security group named `name` in `vpc`.
pub async fn group(ec2: &Client, vpc: &str, name: &str) -> String {
    ec2.create_security_group()
        .group_name(name)
        .description(format!("{name} (test)"))
        .vpc_id(vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned()
}

pub async fn tag(ec2: &Client, id: &str, key: &str, value: &str) {
    ec2.create_tags()
        .resources(id)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await
        .unwrap();
}

pub async fn base_image(ec2: &Client) -> String {
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    images
        .images()
        .iter()
        .find_map(|i| i.image_id().map(str::to_owned))
        .expect("moto lists public images")
}

pub async fn launch(
    ec2: &Client,
    image: &str,
    subnet: &str,
    groups: &[&str],
    tags: &[(&str, &str)],
) -> String {
    let spec = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build();
    let out = ec2
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::T3Small)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .set_security_group_ids(Some(groups.iter().map(|g| (*g).to_owned()).collect()))
        .key_name("ops")
        .tag_specifications(spec)
        .send()
        .await
        .unwrap();
    out.instances()[0].instance_id().unwrap().to_owned()
}

pub async fn create_ami(ec2: &Client, instance: &str, name: &str, tag_name: &str) -> String {
    let id = ec2
        .create_image()
        .instance_id(instance)
        .name(name)
        .no_reboot(true)
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_owned();
    tag(ec2, &id, "Name", tag_name).await;
    id
}

pub async fn eip_for(ec2: &Client, instance: &str) -> String {
    let a = ec2
        .allocate_address()
        .domain("vpc".into())
        .send()
        .await
        .unwrap();
    ec2.associate_address()
        .allocation_id(a.allocation_id().unwrap())
        .instance_id(instance)
        .send()
        .await
        .unwrap();
    a.public_ip().unwrap().to_owned()
}

pub async fn build_world(ec2: &Client) -> World {
    build_world_in(ec2, REGION).await
}

/// The same world in another region (the client must be for that region).
pub async fn build_world_in(ec2: &Client, region: &str) -> World {
    let (az_a, az_c) = (format!("{region}a"), format!("{region}c"));
    let vpc = vpc(ec2, "10.0.0.0/16", "my-vpc").await;
    let subnet_a = subnet(ec2, &vpc, "10.0.1.0/24", &az_a, "public").await;
    let subnet_c = subnet(ec2, &vpc, "10.0.2.0/24", &az_c, "public").await;

    let igw = ec2
        .create_internet_gateway()
        .send()
        .await
        .unwrap()
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_owned();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let route_table = route_table(ec2, &vpc, "public").await;
    for s in [&subnet_a, &subnet_c] {
        ec2.associate_route_table()
            .route_table_id(&route_table)
            .subnet_id(s)
            .send()
            .await
            .unwrap();
    }
    ec2.create_route()
        .route_table_id(&route_table)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();

    let security_group = group(ec2, &vpc, "sophos").await;
    ec2.create_key_pair().key_name("ops").send().await.unwrap();

    let base = base_image(ec2).await;
    let sophos = launch(
        ec2,
        &base,
        &subnet_a,
        &[&security_group],
        &[
            ("Name", "sophos"),
            ("Role", "vpn-gateway"),
            ("Owner", "netops"),
        ],
    )
    .await;
    ec2.modify_instance_attribute()
        .instance_id(&sophos)
        .source_dest_check(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .unwrap();
    let old_ami = create_ami(ec2, &sophos, "sophos_20261101", "sophos").await;
    // EC2 creation dates have one-second resolution: make "newest" unambiguous.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new_ami = create_ami(ec2, &sophos, "sophos_20261120", "sophos").await;
    // An AMI with another Name tag must never be chosen, however new.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    create_ami(ec2, &sophos, "web_20261121", "web").await;

    let floating_ip = eip_for(ec2, &sophos).await;
    ec2.create_route()
        .route_table_id(&route_table)
        .destination_cidr_block(VPN_CIDR)
        .instance_id(&sophos)
        .send()
        .await
        .unwrap();

    let web = launch(
        ec2,
        &base,
        &subnet_a,
        &[&security_group],
        &[("Name", "web")],
    )
    .await;
    let web_ip = eip_for(ec2, &web).await;

    // Same Name tag in another VPC: the function must not mistake it for ours.
    let other_vpc = self::vpc(ec2, "10.9.0.0/16", "other-vpc").await;
    let other_subnet = subnet(ec2, &other_vpc, "10.9.1.0/24", &az_a, "other").await;
    let foreign_sophos = launch(ec2, &base, &other_subnet, &[], &[("Name", "sophos")]).await;

    World {
        vpc,
        subnet_a,
        subnet_c,
        igw,
        route_table,
        security_group,
        sophos,
        old_ami,
        new_ami,
        floating_ip,
        web,
        web_ip,
        foreign_sophos,
    }
}

/// The function's settings for the seed world, as the environment would give them.
pub fn settings(world: &World, extra: &[(&str, &str)]) -> Settings {
    let env = env_of(world, extra);
    Settings::from_lookup(|k| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
        .expect("valid test settings")
}

/// The seed world's configuration as environment variables, `extra` added or
/// replacing: what the tests' settings and the real binary are given.
pub fn env_of(world: &World, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("INSTANCE_NAME".into(), "sophos".into()),
        ("AMI_NAME".into(), "sophos".into()),
        ("VPC_NAME".into(), "my-vpc".into()),
        ("SUBNET_NAME".into(), "public".into()),
        ("ROUTE_CIDRS".into(), VPN_CIDR.into()),
        ("FLOATING_IP".into(), world.floating_ip.clone()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

pub fn app(moto: &Moto, settings: Settings) -> App<SdkCloud> {
    App {
        cloud: SdkCloud::new(moto.ec2(), moto.route53()),
        settings,
    }
}

/// One appliance's invocation through the front door, as a fleet of one.
pub async fn handle<C: Cloud + Clone>(
    app: &App<C>,
    payload: &Value,
    invocation: &Invocation,
) -> Result<Report, FailoverError> {
    match ec2_failover::handle(&Fleet::single(app.clone()), payload, invocation).await? {
        Response::One(report) => Ok(*report),
        Response::PerGroup(r) => panic!("a fleet of one answered per group: {r:?}"),
    }
}

/// (id, state, az, sorted tags) of one instance.
pub type InstanceView = (String, String, String, Vec<(String, String)>);

/// Everything observable a failover could change, in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// (id, state, az, tags) of every instance in the account.
    pub instances: Vec<InstanceView>,
    /// (public ip, instance) of every address.
    pub addresses: Vec<(String, Option<String>)>,
    /// (table, destination, target) of every route.
    pub routes: Vec<(String, String, String)>,
}

pub async fn snapshot(ec2: &Client) -> Snapshot {
    let mut instances = Vec::new();
    for r in ec2
        .describe_instances()
        .send()
        .await
        .unwrap()
        .reservations()
    {
        for i in r.instances() {
            let mut tags: Vec<(String, String)> = i
                .tags()
                .iter()
                .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
                .collect();
            tags.sort();
            instances.push((
                i.instance_id().unwrap().to_owned(),
                i.state().unwrap().name().unwrap().as_str().to_owned(),
                i.placement()
                    .unwrap()
                    .availability_zone()
                    .unwrap()
                    .to_owned(),
                tags,
            ));
        }
    }
    instances.sort();
    let mut addresses: Vec<_> = ec2
        .describe_addresses()
        .send()
        .await
        .unwrap()
        .addresses()
        .iter()
        .map(|a| {
            (
                a.public_ip().unwrap().to_owned(),
                a.instance_id().map(str::to_owned),
            )
        })
        .collect();
    addresses.sort();
    let mut routes = Vec::new();
    for t in ec2
        .describe_route_tables()
        .send()
        .await
        .unwrap()
        .route_tables()
    {
        for r in t.routes() {
            routes.push((
                t.route_table_id().unwrap().to_owned(),
                r.destination_cidr_block()
                    .or(r.destination_ipv6_cidr_block())
                    .unwrap_or("-")
                    .to_owned(),
                r.instance_id()
                    .or(r.gateway_id())
                    .or(r.network_interface_id())
                    .unwrap_or("-")
                    .to_owned(),
            ));
        }
    }
    routes.sort();
    Snapshot {
        instances,
        addresses,
        routes,
    }
}

pub async fn describe(ec2: &Client, id: &str) -> aws_sdk_ec2::types::Instance {
    ec2.describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .clone()
}

pub async fn route_target(ec2: &Client, table: &str, cidr: &str) -> Option<String> {
    let out = ec2
        .describe_route_tables()
        .route_table_ids(table)
        .send()
        .await
        .unwrap();
    out.route_tables()[0]
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some(cidr))
        .map(|r| {
            r.instance_id()
                .or(r.gateway_id())
                .or(r.network_interface_id())
                .unwrap_or("-")
                .to_owned()
        })
}

/// The Elastic IP `ip` as DescribeAddresses lists it.
async fn address(ec2: &Client, ip: &str) -> Option<aws_sdk_ec2::types::Address> {
    let out = ec2
        .describe_addresses()
        .filters(filter("public-ip", ip))
        .send()
        .await
        .unwrap();
    out.addresses()
        .iter()
        .find(|a| a.public_ip() == Some(ip))
        .cloned()
}

pub async fn address_owner(ec2: &Client, ip: &str) -> Option<String> {
    address(ec2, ip).await?.instance_id().map(str::to_owned)
}

/// The network interface the Elastic IP `ip` is on.
pub async fn address_interface(ec2: &Client, ip: &str) -> Option<String> {
    address(ec2, ip)
        .await?
        .network_interface_id()
        .map(str::to_owned)
}

/// Ids of the non-terminated instances tagged `Name=name`.
pub async fn instances_named(ec2: &Client, name: &str) -> Vec<String> {
    let out = ec2
        .describe_instances()
        .filters(filter("tag:Name", name))
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .map(|i| i.instance_id().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

pub fn tag_of(i: &aws_sdk_ec2::types::Instance, key: &str) -> Option<String> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value().map(str::to_owned))
}

/// Asserts the world of one complete failover from the seed world: exactly one
/// replacement (running, in 1c, source/dest check off), the floating IP and
/// the VPN route on it, the failed instance stopped, bystanders untouched and
/// nothing else launched. Returns the replacement's id.
pub async fn assert_failed_over_once(ec2: &Client, w: &World) -> String {
    let mut ours: Vec<String> = instances_named(ec2, "sophos")
        .await
        .into_iter()
        .filter(|id| *id != w.sophos && *id != w.foreign_sophos)
        .collect();
    assert_eq!(ours.len(), 1, "exactly one replacement, got {ours:?}");
    let new_id = ours.remove(0);
    let new = describe(ec2, &new_id).await;
    assert_eq!(new.state().unwrap().name().unwrap().as_str(), "running");
    assert_eq!(new.subnet_id(), Some(w.subnet_c.as_str()));
    assert_eq!(
        new.source_dest_check(),
        Some(false),
        "source/dest check off"
    );
    assert_eq!(
        tag_of(&new, "ec2-failover:replaces"),
        Some(w.sophos.clone())
    );
    let old = describe(ec2, &w.sophos).await;
    let old_state = old.state().unwrap().name().unwrap().as_str().to_owned();
    assert!(
        old_state == "stopping" || old_state == "stopped",
        "failed instance is {old_state}"
    );
    assert_eq!(
        address_owner(ec2, &w.floating_ip).await,
        Some(new_id.clone())
    );
    assert_eq!(
        route_target(ec2, &w.route_table, VPN_CIDR).await,
        Some(new_id.clone())
    );
    assert_eq!(
        route_target(ec2, &w.route_table, "0.0.0.0/0").await,
        Some(w.igw.clone())
    );
    assert_eq!(address_owner(ec2, &w.web_ip).await, Some(w.web.clone()));
    // Nothing orphaned: every instance in the account is accounted for.
    let all = snapshot(ec2).await.instances.len();
    assert_eq!(
        all, 4,
        "sophos, its replacement, web and the foreign sophos"
    );
    new_id
}

/// The SDK adapter wrapped for fault injection.
pub fn faulty(moto: &Moto) -> ec2_failover::cloud::faults::FaultyCloud<SdkCloud> {
    ec2_failover::cloud::faults::FaultyCloud::new(SdkCloud::new(moto.ec2(), moto.route53()))
}

pub fn by(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

/// The account's own image `id`, if it is still registered.
pub async fn own_image(ec2: &Client, id: &str) -> Option<aws_sdk_ec2::types::Image> {
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(by("image-id", id))
        .send()
        .await
        .unwrap();
    out.images().first().cloned()
}

/// The EBS snapshots of an image's block device mappings.
pub fn snapshot_ids(i: &aws_sdk_ec2::types::Image) -> Vec<String> {
    i.block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect()
}

/// Snapshot ids of the account's AMI `id` (none once it is deregistered).
pub async fn image_snapshot_ids(ec2: &Client, id: &str) -> Vec<String> {
    own_image(ec2, id)
        .await
        .map(|i| snapshot_ids(&i))
        .unwrap_or_default()
}

pub async fn snapshot_exists(ec2: &Client, id: &str) -> bool {
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(by("snapshot-id", id))
        .send()
        .await
        .unwrap();
    !out.snapshots().is_empty()
}
