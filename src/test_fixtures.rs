//! The worlds unit tests plan against: one appliance's settings, a fixed
//! clock, instances, subnets, images and the VPC that holds them. Shared by
//! every module's tests so each builds its fixtures the same way.

use chrono::{DateTime, Utc};

use crate::cloud::provenance::{self, Role};
use crate::cloud::{Image, Instance, InstanceState, RouteTable, Subnet, TAG_STANDBY, Tag};
use crate::config::Settings;
use crate::lookup::World;

pub(crate) fn settings() -> Settings {
    settings_with(&[])
}

/// [`settings`], with `extra` variables set (or overridden).
pub(crate) fn settings_with(extra: &[(&str, &str)]) -> Settings {
    Settings::from_lookup(|k| {
        if let Some((_, v)) = extra.iter().find(|(name, _)| *name == k) {
            return Some((*v).to_owned());
        }
        match k {
            "INSTANCE_NAME" | "AMI_NAME" => Some("sophos"),
            "VPC_NAME" => Some("my-vpc"),
            "SUBNET_NAME" => Some("public"),
            "ROUTE_CIDRS" => Some("10.242.2.0/24"),
            _ => None,
        }
        .map(str::to_owned)
    })
    .unwrap()
}

pub(crate) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) fn instance(id: &str, state: InstanceState, az: &str) -> Instance {
    Instance {
        id: id.into(),
        state,
        availability_zone: az.into(),
        subnet_id: Some(format!("subnet-{az}")),
        vpc_id: Some("vpc-1".into()),
        instance_type: "t3.small".into(),
        image_id: Some("ami-old".into()),
        key_name: Some("ops".into()),
        iam_instance_profile_arn: None,
        security_group_ids: vec!["sg-1".into()],
        network_interface_ids: vec![format!("eni-{id}")],
        private_ip: None,
        public_ip: None,
        source_dest_check: Some(true),
        launch_time: Some(now() - chrono::Duration::days(30)),
        first_launch: Some(now() - chrono::Duration::days(30)),
        state_reason: None,
        stop_requested: None,
        tags: vec![
            Tag::new("Name", "sophos"),
            Tag::new("aws:cloudformation:stack-name", "x"),
        ],
        metadata_options: None,
        ebs_optimized: None,
        secondary_interfaces: vec![],
        client_token: None,
    }
}

pub(crate) fn subnet(id: &str, az: &str) -> Subnet {
    Subnet {
        id: id.into(),
        vpc_id: "vpc-1".into(),
        availability_zone: az.into(),
        tags: vec![],
    }
}

pub(crate) fn world(instances: Vec<Instance>) -> World {
    World {
        standbys: vec![],
        vpc_id: "vpc-1".into(),
        instances,
        subnets: vec![
            subnet("subnet-a", "ap-northeast-1a"),
            subnet("subnet-c", "ap-northeast-1c"),
        ],
        leg_subnets: vec![],
        route_tables: vec![RouteTable {
            id: "rtb-1".into(),
            vpc_id: "vpc-1".into(),
            routes: vec![],
            tags: vec![],
        }],
        images: vec![],
        untrusted_images: vec![],
        address: None,
        security_group_ids: None,
        dns_records: None,
    }
}

pub(crate) fn image(id: &str, created: &str) -> Image {
    Image {
        id: id.into(),
        name: None,
        state: "available".into(),
        creation_date: Some(
            DateTime::parse_from_rfc3339(created)
                .unwrap()
                .with_timezone(&Utc),
        ),
        tags: vec![],
        snapshot_ids: vec![],
        source_instance_id: Some("i-app".into()),
    }
}

/// A standby (tagged `warm`) launched from `ami`.
pub(crate) fn standby(id: &str, state: InstanceState, az: &str, ami: &str) -> Instance {
    let mut i = instance(id, state, az);
    i.image_id = Some(ami.into());
    i.tags.push(Tag::new(TAG_STANDBY, "warm"));
    // Launched by the function as the appliance's standby, as EC2 recalls.
    i.client_token = Some(provenance::token(Role::Standby, "i-app", id));
    i
}

/// The appliance running in 1a, AMIs old and new, and these standbys.
pub(crate) fn with_standbys(standbys: Vec<Instance>) -> (World, Instance) {
    let appliance = instance("i-app", InstanceState::Running, "ap-northeast-1a");
    let mut w = world(vec![appliance.clone()]);
    w.images = vec![
        image("ami-old", "2026-11-01T00:00:00Z"),
        image("ami-new", "2026-11-20T00:00:00Z"),
    ];
    w.standbys = standbys;
    (w, appliance)
}
