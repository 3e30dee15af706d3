//! An instance as the function sees it (state, placement, interfaces,
//! metadata options), and what RunInstances is told about a replacement.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::provenance::{Role, launched_as};
use super::{TAG_PROMOTED_AT, TAG_REPLACES, TAG_STANDBY, Tag, tag_value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
    Unknown,
}

impl InstanceState {
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Unknown => "unknown",
        }
    }

    /// Up, or on its way up.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }

    /// Terminated, or on its way there: it will never run again.
    pub fn is_gone(self) -> bool {
        matches!(self, Self::ShuttingDown | Self::Terminated)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    pub availability_zone: String,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub instance_type: String,
    pub image_id: Option<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub security_group_ids: Vec<String>,
    pub network_interface_ids: Vec<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub source_dest_check: Option<bool>,
    /// When the instance last started: EC2 resets it on every start.
    pub launch_time: Option<DateTime<Utc>>,
    /// When the instance was first launched (its primary network interface's
    /// attach time), which a stop and start does not reset.
    pub first_launch: Option<DateTime<Utc>>,
    /// Why EC2 stopped or terminated it (`StateReason`), e.g.
    /// `Server.InternalError: Internal error on launch`.
    pub state_reason: Option<String>,
    /// When the stop it is in (`stopping` or `stopped`) was asked for, as
    /// EC2's `StateTransitionReason` says ([`stop_requested_at`]); `None`
    /// when EC2 did not say or said it in words this code does not read.
    pub stop_requested: Option<DateTime<Utc>>,
    pub tags: Vec<Tag>,
    /// How the instance metadata service answers it (IMDSv2, hop limit).
    pub metadata_options: Option<MetadataOptions>,
    pub ebs_optimized: Option<bool>,
    /// Network interfaces beyond the primary (device index 1, 2...), in
    /// device order: the LAN leg of a two-legged VPN gateway or firewall.
    pub secondary_interfaces: Vec<Interface>,
    /// The `ClientToken` RunInstances was given: set at launch, never
    /// after, so what it says of the function's own launches can be
    /// trusted where a tag cannot ([`super::provenance`]).
    pub client_token: Option<String>,
}

/// A network interface attached to an instance at a device index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub id: String,
    pub device_index: i32,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    pub source_dest_check: Option<bool>,
}

/// A network interface RunInstances creates beside the primary one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchInterface {
    pub device_index: i32,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
}

/// The instance metadata service options, as DescribeInstances reports them
/// and RunInstances takes them. Kept as EC2's words (`required`, `enabled`)
/// so a value this code does not know still passes through unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataOptions {
    /// `required` (IMDSv2 only) or `optional`.
    pub http_tokens: Option<String>,
    pub http_put_response_hop_limit: Option<i32>,
    /// `enabled` or `disabled`.
    pub http_endpoint: Option<String>,
    /// Tags readable through the metadata service: `enabled` or `disabled`.
    pub instance_metadata_tags: Option<String>,
}

/// When the current stop of an instance in `state` was asked for, from its
/// `StateTransitionReason`: the reason names the last transition, so only a
/// stopping or stopped instance's is its current stop's.
pub fn current_stop_request(state: InstanceState, reason: &str) -> Option<DateTime<Utc>> {
    matches!(state, InstanceState::Stopping | InstanceState::Stopped)
        .then(|| stop_requested_at(reason))
        .flatten()
}

/// The time in a `StateTransitionReason`: EC2 writes "User initiated
/// (2026-11-21 08:59:00 GMT)" (moto writes `UTC` for `GMT`). Any other text,
/// an empty one included, is `None`: the time is unknown, never guessed.
pub fn stop_requested_at(reason: &str) -> Option<DateTime<Utc>> {
    let reason = reason.trim();
    let open = reason.rfind('(')?;
    let inside = reason.get(open + 1..)?.strip_suffix(')')?.trim();
    let stamp = inside
        .strip_suffix(" GMT")
        .or_else(|| inside.strip_suffix(" UTC"))?;
    NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Burstable types take a `CreditSpecification`; any other type is refused
/// one, so a fallback type never gets it.
pub fn is_burstable(instance_type: &str) -> bool {
    ["t2.", "t3.", "t3a.", "t4g."]
        .iter()
        .any(|family| instance_type.starts_with(family))
}

impl Instance {
    pub fn tag(&self, key: &str) -> Option<&str> {
        tag_value(&self.tags, key)
    }

    /// More than one network interface: EC2 then refuses the instance-level
    /// calls that act on "the" interface (AssociateAddress by instance,
    /// ModifyInstanceAttribute SourceDestCheck) and wants the interface named.
    pub fn has_several_interfaces(&self) -> bool {
        !self.secondary_interfaces.is_empty()
    }

    /// The id of the interface at `device` (0 is the primary).
    pub fn interface_at(&self, device: i32) -> Option<&str> {
        match device {
            0 => self
                .network_interface_ids
                .iter()
                .find(|id| !self.secondary_interfaces.iter().any(|l| &l.id == *id)),
            d => self
                .secondary_interfaces
                .iter()
                .find(|l| l.device_index == d)
                .map(|l| &l.id),
        }
        .map(String::as_str)
    }

    /// The device index `interface` is attached at, when it is this instance's.
    pub fn device_of(&self, interface: &str) -> Option<i32> {
        match self.secondary_interfaces.iter().find(|l| l.id == interface) {
            Some(leg) => Some(leg.device_index),
            None => self
                .network_interface_ids
                .iter()
                .any(|id| id == interface)
                .then_some(0),
        }
    }

    /// A standby kept ready in another AZ, not (yet) promoted to appliance:
    /// tagged so, and launched by the function as one (its ClientToken).
    pub fn is_standby(&self) -> bool {
        self.tagged_standby() && self.launched_as().map(|(role, _)| role) == Some(Role::Standby)
    }

    /// Tagged as a standby, but not launched by the function as one: a tag
    /// anyone may write, which the function does not act on.
    pub fn claims_standby(&self) -> bool {
        self.tagged_standby() && !self.is_standby()
    }

    /// Tagged as a standby not (yet) promoted, launched as one or not:
    /// either way it is not the appliance.
    pub fn tagged_standby(&self) -> bool {
        self.tag(TAG_STANDBY).is_some() && self.tag(TAG_REPLACES).is_none()
    }

    /// What the function launched this instance as, and for which instance,
    /// as its ClientToken says; `None` when the function did not launch it.
    pub fn launched_as(&self) -> Option<(Role, &str)> {
        launched_as(self.client_token.as_deref()?)
    }

    /// The instance this one replaced, when its `ec2-failover:replaces` tag
    /// and its ClientToken agree: a replacement launched for that instance,
    /// or a standby of it that was promoted.
    pub fn vouched_replaces(&self) -> Option<&str> {
        let tagged = self.tag(TAG_REPLACES)?;
        let (_, launched_for) = self.launched_as()?;
        (launched_for == tagged).then_some(tagged)
    }

    /// How long ago it was first launched (a restart does not make it
    /// young), or, for a promoted standby, promoted: it became a replacement
    /// then, for the cooldown and the flap guard.
    pub fn age(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        let promoted = self
            .tag(TAG_PROMOTED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let launched = promoted.or(self.first_launch).or(self.launch_time)?;
        Some((now - launched).to_std().unwrap_or_default())
    }

    /// True when a route target (instance id or ENI id) names this instance.
    pub fn owns_target(&self, target: &str) -> bool {
        self.id == target || self.network_interface_ids.iter().any(|e| e == target)
    }
}

/// Everything RunInstances is told about the replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub tags: Vec<Tag>,
    /// Makes a repeated RunInstances return the first launch instead of a second one.
    pub client_token: String,
    /// The original's metadata options: an SCP may deny a launch without IMDSv2.
    pub metadata_options: Option<MetadataOptions>,
    /// `Some(true)` only: false is EC2's default, and saying it changes nothing.
    pub ebs_optimized: Option<bool>,
    /// Base64, passed through as DescribeInstanceAttribute gave it.
    pub user_data: Option<String>,
    /// `standard` or `unlimited`, for a burstable type only.
    pub cpu_credits: Option<String>,
    /// The original's other legs, each in the chosen AZ's subnet for it.
    pub secondary_interfaces: Vec<LaunchInterface>,
}

#[cfg(test)]
mod tests {
    use super::stop_requested_at;

    #[test]
    fn a_stop_request_time_is_read_from_ec2s_and_motos_words_and_nothing_else() {
        let at = |s: &str| stop_requested_at(s).map(|t| t.to_rfc3339());
        let expected = Some("2026-11-21T08:59:07+00:00".to_owned());
        assert_eq!(at("User initiated (2026-11-21 08:59:07 GMT)"), expected);
        assert_eq!(at("User initiated (2026-11-21 08:59:07 UTC)"), expected);
        for unknown in [
            "",
            "User initiated",
            "User initiated (2026-11-21 08:59:07)",
            "User initiated (2026-11-21T08:59:07Z)",
            "User initiated (2026-13-41 08:59:07 GMT)",
            "User initiated (2026-11-21 08:59:07 GMT",
            "Server initiated (\u{1f600} GMT)",
            "((((",
        ] {
            assert_eq!(at(unknown), None, "{unknown:?}");
        }
    }
}
