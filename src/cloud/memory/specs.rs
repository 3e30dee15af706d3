//! The specs a test world is built from: an instance or an AMI as a person
//! (or another tool) made it, before this function ever looked.

use chrono::{DateTime, Utc};

use crate::cloud::{InstanceState, MetadataOptions, Tag};

/// An instance to put into the world.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub subnet_id: String,
    pub instance_type: String,
    pub image_id: Option<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub security_group_ids: Vec<String>,
    pub tags: Vec<Tag>,
    pub state: InstanceState,
    pub source_dest_check: bool,
    /// Defaults to the world's clock.
    pub launch_time: Option<DateTime<Utc>>,
    /// Its own (non-Elastic) public address, shown while it runs.
    pub public_ip: Option<String>,
    /// EBS volumes: CreateImage makes one snapshot per volume.
    pub volumes: usize,
    /// Fields left `None` take EC2's defaults.
    pub metadata_options: MetadataOptions,
    pub ebs_optimized: bool,
    /// Base64, as EC2 keeps it.
    pub user_data: Option<String>,
    /// `None`: the type's default (burstable types only).
    pub cpu_credits: Option<String>,
    /// Interfaces beyond the primary, device 1, 2...: (subnet, groups).
    pub legs: Vec<(String, Vec<String>)>,
    /// The ClientToken it was launched with (`None`: launched without).
    pub client_token: Option<String>,
}

impl InstanceSpec {
    /// A running `t3.small` tagged `Name=name` in `subnet_id`.
    pub fn new(subnet_id: &str, name: &str) -> Self {
        Self {
            subnet_id: subnet_id.to_owned(),
            instance_type: "t3.small".to_owned(),
            image_id: None,
            key_name: None,
            iam_instance_profile_arn: None,
            security_group_ids: Vec::new(),
            tags: vec![Tag::new("Name", name)],
            state: InstanceState::Running,
            source_dest_check: true,
            launch_time: None,
            public_ip: None,
            volumes: 1,
            metadata_options: MetadataOptions::default(),
            ebs_optimized: false,
            user_data: None,
            cpu_credits: None,
            legs: Vec::new(),
            client_token: None,
        }
    }

    /// Launched with this ClientToken (as the function launches its own).
    pub fn client_token(mut self, token: &str) -> Self {
        self.client_token = Some(token.to_owned());
        self
    }

    /// One more network interface (the next device index) in `subnet_id`.
    pub fn leg(mut self, subnet_id: &str, groups: &[&str]) -> Self {
        let groups = groups.iter().map(|g| (*g).to_owned()).collect();
        self.legs.push((subnet_id.to_owned(), groups));
        self
    }

    pub fn metadata(mut self, options: MetadataOptions) -> Self {
        self.metadata_options = options;
        self
    }

    pub fn ebs_optimized(mut self, on: bool) -> Self {
        self.ebs_optimized = on;
        self
    }

    /// Base64 user data.
    pub fn user_data(mut self, base64: &str) -> Self {
        self.user_data = Some(base64.to_owned());
        self
    }

    pub fn cpu_credits(mut self, credits: &str) -> Self {
        self.cpu_credits = Some(credits.to_owned());
        self
    }

    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.retain(|t| t.key != key);
        self.tags.push(Tag::new(key, value));
        self
    }

    pub fn instance_type(mut self, instance_type: &str) -> Self {
        self.instance_type = instance_type.to_owned();
        self
    }

    pub fn image(mut self, image_id: &str) -> Self {
        self.image_id = Some(image_id.to_owned());
        self
    }

    /// The key pair (registered in the world if it is not yet).
    pub fn key(mut self, key_name: &str) -> Self {
        self.key_name = Some(key_name.to_owned());
        self
    }

    pub fn profile(mut self, arn: &str) -> Self {
        self.iam_instance_profile_arn = Some(arn.to_owned());
        self
    }

    pub fn groups(mut self, ids: &[&str]) -> Self {
        self.security_group_ids = ids.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    pub fn state(mut self, state: InstanceState) -> Self {
        self.state = state;
        self
    }

    pub fn source_dest_check(mut self, on: bool) -> Self {
        self.source_dest_check = on;
        self
    }

    pub fn launched(mut self, at: DateTime<Utc>) -> Self {
        self.launch_time = Some(at);
        self
    }

    pub fn public_ip(mut self, ip: &str) -> Self {
        self.public_ip = Some(ip.to_owned());
        self
    }

    pub fn volumes(mut self, n: usize) -> Self {
        self.volumes = n;
        self
    }
}

/// An AMI to put into the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub name: String,
    pub state: String,
    /// Defaults to the world's clock.
    pub creation_date: Option<DateTime<Utc>>,
    pub tags: Vec<Tag>,
    /// Snapshots (untagged) made for it.
    pub snapshots: usize,
    /// Owned by this account (`Owners=self`); public images are not.
    pub owned: bool,
    /// The instance CreateImage made it of (`None`: registered otherwise).
    pub source_instance_id: Option<String>,
    /// Published by another account (id or alias), not owned.
    pub publisher: Option<String>,
}

impl ImageSpec {
    /// An `available` AMI of this account named `name`, untagged, with one snapshot.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: "available".to_owned(),
            creation_date: None,
            tags: Vec::new(),
            snapshots: 1,
            owned: true,
            source_instance_id: None,
            publisher: None,
        }
    }

    /// Published by `owner` (an account id or alias such as `aws-marketplace`).
    pub fn published_by(mut self, owner: &str) -> Self {
        self.owned = false;
        self.publisher = Some(owner.to_owned());
        self
    }

    /// Made by CreateImage of `instance` (EC2's `SourceInstanceId`).
    pub fn of_instance(mut self, instance: &str) -> Self {
        self.source_instance_id = Some(instance.to_owned());
        self
    }

    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.retain(|t| t.key != key);
        self.tags.push(Tag::new(key, value));
        self
    }

    pub fn created(mut self, at: DateTime<Utc>) -> Self {
        self.creation_date = Some(at);
        self
    }

    pub fn state(mut self, state: &str) -> Self {
        self.state = state.to_owned();
        self
    }

    pub fn snapshots(mut self, n: usize) -> Self {
        self.snapshots = n;
        self
    }

    /// A public image of someone else (e.g. a base OS image).
    pub fn not_owned(mut self) -> Self {
        self.owned = false;
        self
    }
}
