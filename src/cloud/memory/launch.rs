//! RunInstances: what EC2 checks before it launches, what it fills in, and
//! how a ClientToken makes a retried launch return the first instance.

use super::account::{Account, err, sorted_tags};
use super::records::InstanceRec;
use super::tags::check_tags;
use crate::cloud::{
    CloudError, Instance, InstanceState, LaunchRequest, MetadataOptions, Operation, is_burstable,
};

/// What EC2 fills in for metadata options a launch does not give.
pub(super) fn metadata_applied(asked: Option<&MetadataOptions>) -> MetadataOptions {
    let asked = asked.cloned().unwrap_or_default();
    MetadataOptions {
        http_tokens: asked.http_tokens.or_else(|| Some("optional".to_owned())),
        http_put_response_hop_limit: asked.http_put_response_hop_limit.or(Some(1)),
        http_endpoint: asked.http_endpoint.or_else(|| Some("enabled".to_owned())),
        instance_metadata_tags: asked
            .instance_metadata_tags
            .or_else(|| Some("disabled".to_owned())),
    }
}

/// A burstable instance's credit option: as launched, else its family's
/// default (T2 `standard`, later families `unlimited`).
pub(super) fn credits_applied(instance_type: &str, asked: Option<&str>) -> Option<String> {
    if !is_burstable(instance_type) {
        return None;
    }
    let default = if instance_type.starts_with("t2.") {
        "standard"
    } else {
        "unlimited"
    };
    Some(asked.unwrap_or(default).to_owned())
}

/// What RunInstances compares when a ClientToken comes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LaunchKey {
    pub(super) image_id: String,
    pub(super) instance_type: String,
    pub(super) subnet_id: String,
    pub(super) security_group_ids: Vec<String>,
    pub(super) key_name: Option<String>,
    pub(super) iam_instance_profile_arn: Option<String>,
    pub(super) tags: Vec<(String, String)>,
    pub(super) metadata_options: Option<MetadataOptions>,
    pub(super) ebs_optimized: Option<bool>,
    pub(super) user_data: Option<String>,
    pub(super) cpu_credits: Option<String>,
    pub(super) secondary_interfaces: Vec<crate::cloud::LaunchInterface>,
}

impl LaunchKey {
    fn of(r: &LaunchRequest) -> Self {
        let mut security_group_ids = r.security_group_ids.clone();
        security_group_ids.sort();
        Self {
            image_id: r.image_id.clone(),
            instance_type: r.instance_type.clone(),
            subnet_id: r.subnet_id.clone(),
            security_group_ids,
            key_name: r.key_name.clone(),
            iam_instance_profile_arn: r.iam_instance_profile_arn.clone(),
            tags: sorted_tags(&r.tags),
            metadata_options: r.metadata_options.clone(),
            ebs_optimized: r.ebs_optimized,
            user_data: r.user_data.clone(),
            cpu_credits: r.cpu_credits.clone(),
            secondary_interfaces: r.secondary_interfaces.clone(),
        }
    }
}

impl Account {
    pub(super) fn run_instance(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        const OP: Operation = Operation::RunInstances;
        let token = &req.client_token;
        if token.is_empty() || token.len() > 64 || !token.is_ascii() {
            return Err(err(
                OP,
                "InvalidParameterValue",
                format!("ClientToken {token:?} must be 1 to 64 ASCII characters"),
            ));
        }
        let key = LaunchKey::of(req);
        if let Some(answer) = self.replay(token, &key)? {
            return Ok(answer);
        }
        let (subnet, volumes) = self.check_launch(req)?;
        self.check_legs(req, &self.subnets[subnet].availability_zone)?;
        let id = self.launch(req, subnet, volumes);
        self.tokens.push((token.clone(), key, id.clone()));
        let i = self.instance_index(OP, &id)?;
        Ok(self.describe_instance(&self.instances[i]))
    }

    /// A ClientToken used before: the same instance, or EC2's refusal.
    pub(super) fn replay(
        &self,
        token: &str,
        key: &LaunchKey,
    ) -> Result<Option<Instance>, CloudError> {
        const OP: Operation = Operation::RunInstances;
        let Some((_, earlier, id)) = self.tokens.iter().find(|(t, _, _)| t == token) else {
            return Ok(None);
        };
        if earlier != key {
            return Err(err(
                OP,
                "IdempotentParameterMismatch",
                format!("The client token {token} was already used with different parameters"),
            ));
        }
        let r = &self.instances[self.instance_index(OP, id)?];
        if r.state.is_gone() {
            return Err(err(
                OP,
                "IdempotentInstanceTerminated",
                format!(
                    "The instance {} launched with client token {token} is terminated",
                    r.id
                ),
            ));
        }
        Ok(Some(self.describe_instance(r)))
    }

    /// What EC2 checks before it launches: the image, subnet, groups, key pair,
    /// type and tags. Returns the subnet's index and the volumes to create.
    pub(super) fn check_launch(&self, req: &LaunchRequest) -> Result<(usize, usize), CloudError> {
        const OP: Operation = Operation::RunInstances;
        let image = self
            .images
            .iter()
            .find(|i| i.id == req.image_id)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidAMIID.NotFound",
                    format!("The image id '[{}]' does not exist", req.image_id),
                )
            })?;
        if image.state != "available" {
            return Err(err(
                OP,
                "InvalidAMIID.Unavailable",
                format!("The image id '[{}]' is {}", image.id, image.state),
            ));
        }
        let subnet = self
            .subnets
            .iter()
            .position(|s| s.id == req.subnet_id)
            .ok_or_else(|| {
                err(
                    OP,
                    "InvalidSubnetID.NotFound",
                    format!("The subnet ID '{}' does not exist", req.subnet_id),
                )
            })?;
        self.check_placement(req, &self.subnets[subnet].vpc_id)?;
        check_tags(OP, &req.tags)?;
        Ok((subnet, image.snapshot_ids.len().max(1)))
    }

    /// Groups in the subnet's VPC, a known key pair, a type.
    pub(super) fn check_placement(
        &self,
        req: &LaunchRequest,
        vpc_id: &str,
    ) -> Result<(), CloudError> {
        const OP: Operation = Operation::RunInstances;
        for g in &req.security_group_ids {
            let group = &self.groups[self.group_index(OP, g)?];
            if group.vpc_id != vpc_id {
                return Err(err(
                    OP,
                    "InvalidParameter",
                    format!(
                        "Security group {g} and subnet {} belong to different networks.",
                        req.subnet_id
                    ),
                ));
            }
        }
        if let Some(k) = &req.key_name
            && !self.key_pairs.contains(k)
        {
            return Err(err(
                OP,
                "InvalidKeyPair.NotFound",
                format!("The key pair '{k}' does not exist"),
            ));
        }
        if req.instance_type.is_empty() {
            return Err(err(
                OP,
                "InvalidParameterValue",
                "Invalid value '' for InstanceType.",
            ));
        }
        if req.cpu_credits.is_some() && !is_burstable(&req.instance_type) {
            return Err(err(
                OP,
                "InvalidParameterCombination",
                format!(
                    "CPU credits are not supported for instance type {}",
                    req.instance_type
                ),
            ));
        }
        Ok(())
    }

    /// The new instance, `pending`; returns its id.
    pub(super) fn launch(&mut self, req: &LaunchRequest, subnet: usize, volumes: usize) -> String {
        let id = self.new_id("i");
        let eni = self.new_id("eni");
        let volumes = (0..volumes).map(|_| self.new_id("vol")).collect();
        let private_ip = self.private_ip(subnet);
        let launch_time = self.now();
        // EC2 accepts the launch, then terminates the instance.
        let dies = match self.launch_deaths.is_empty() {
            false => Some(self.launch_deaths.remove(0)),
            true => self.volume_key_refused(),
        };
        let legs = req
            .secondary_interfaces
            .iter()
            .map(|l| {
                (
                    l.device_index,
                    l.subnet_id.clone(),
                    l.security_group_ids.clone(),
                )
            })
            .collect();
        let legs = self.new_legs(legs);
        let s = &self.subnets[subnet];
        let record = InstanceRec {
            id: id.clone(),
            state: InstanceState::Pending,
            vpc_id: s.vpc_id.clone(),
            subnet_id: s.id.clone(),
            availability_zone: s.availability_zone.clone(),
            instance_type: req.instance_type.clone(),
            image_id: Some(req.image_id.clone()),
            key_name: req.key_name.clone(),
            iam_instance_profile_arn: req.iam_instance_profile_arn.clone(),
            security_group_ids: req.security_group_ids.clone(),
            eni,
            private_ip,
            own_public_ip: None,
            source_dest_check: true,
            launch_time,
            first_launch: launch_time,
            state_reason: dies,
            transition_reason: String::new(),
            stop_ends: None,
            tags: req.tags.clone(),
            volumes,
            pending_looks: self.launch_pending_looks,
            stale: Default::default(),
            unlisted_looks: self.listing_lag,
            metadata_options: metadata_applied(req.metadata_options.as_ref()),
            ebs_optimized: req.ebs_optimized.unwrap_or(false),
            user_data: req.user_data.clone(),
            cpu_credits: credits_applied(&req.instance_type, req.cpu_credits.as_deref()),
            legs,
            client_token: Some(req.client_token.clone()),
        };
        self.instances.push(record);
        id
    }

    /// The key new volumes get with encryption by default on.
    pub(super) fn default_volume_key(&self) -> &str {
        self.ebs_default_key
            .as_deref()
            .unwrap_or(crate::cloud::AWS_MANAGED_EBS_KEY)
    }

    /// With encryption by default on, EC2 encrypts every new volume with the
    /// default key using the caller's KMS rights (even from an unencrypted AMI):
    /// a key the role may not use kills the instance after RunInstances
    /// accepted it, with this StateReason. The AWS managed key needs no grant.
    fn volume_key_refused(&self) -> Option<String> {
        let key = self.default_volume_key();
        (self.ebs_encryption_by_default && self.unusable_keys.iter().any(|k| k == key))
            .then(|| "Client.InternalError: Client error on launch".to_owned())
    }

    /// EC2 puts every interface of an instance in one AZ.
    pub(super) fn check_legs(&self, req: &LaunchRequest, az: &str) -> Result<(), CloudError> {
        const OP: Operation = Operation::RunInstances;
        for leg in &req.secondary_interfaces {
            let subnet = self
                .subnets
                .iter()
                .find(|s| s.id == leg.subnet_id)
                .ok_or_else(|| {
                    err(
                        OP,
                        "InvalidSubnetID.NotFound",
                        format!("The subnet ID '{}' does not exist", leg.subnet_id),
                    )
                })?;
            if subnet.availability_zone != az {
                return Err(err(
                    OP,
                    "InvalidParameterCombination",
                    "Network interfaces and an instance-level subnet ID may not be specified on the same request; all subnets must be in one Availability Zone",
                ));
            }
        }
        Ok(())
    }
}
