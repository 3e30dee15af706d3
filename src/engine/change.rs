//! Typed changes: everything a job may do to the world, as data.
//!
//! A plan is a list of these; the executor is the only code that turns one into
//! AWS calls (or, in a dry run, into a line of the report). `describe` starts
//! with the API operation, so a plan reads as the calls a run would make.

use crate::cloud::{Cidr, ImageRequest, IngressRule, LaunchRequest, Operation as Op, Tag};

/// One way to launch the replacement, and where that is (for the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchAttempt {
    pub request: LaunchRequest,
    pub availability_zone: String,
}

impl LaunchAttempt {
    /// `t3.small in ap-northeast-1c`.
    pub fn label(&self) -> String {
        format!(
            "{} in {}",
            self.request.instance_type, self.availability_zone
        )
    }
}

/// RunInstances with its fallbacks: each attempt is tried in order while EC2
/// answers that it has no capacity there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub attempts: Vec<LaunchAttempt>,
    /// The AMI, as the report tells it (`ami-1 (sophos, 2 h 3 min old)`).
    pub image: String,
    /// The instance the replacement takes over from (or, for a standby,
    /// the appliance it backs up).
    pub replacing: String,
    /// A standby, launched beside the appliance rather than in its place.
    pub standby: bool,
    /// Inherited tag keys left off: EC2 allows 50 tags a resource.
    pub dropped_tags: Vec<String>,
    /// Why the original's user data could not be read, when it could not:
    /// the replacement then launches without, and the report must say so.
    pub user_data_unknown: Option<String>,
}

impl Launch {
    /// What the report adds about what the replacement inherits, and what
    /// it could not.
    pub fn notes(&self) -> String {
        let mut note = self
            .attempts
            .first()
            .map(|a| like_note(&a.request))
            .unwrap_or_default();
        if let Some(why) = &self.user_data_unknown {
            note.push_str(&format!("; user data NOT copied: {why}"));
        }
        if !self.dropped_tags.is_empty() {
            note.push_str(&format!(
                "; tags not copied (EC2 allows 50): {}",
                self.dropped_tags.join(", ")
            ));
        }
        note
    }
}

/// `; like the original: IMDS tokens required, hop limit 2, user data (24
/// base64 chars), EbsOptimized, CPU credits unlimited`: what the launch copies
/// beyond type, groups, key, profile and tags; empty when it copies none.
fn like_note(r: &LaunchRequest) -> String {
    let mut like = Vec::new();
    if let Some(m) = &r.metadata_options {
        like.extend(m.http_tokens.as_ref().map(|t| format!("IMDS tokens {t}")));
        like.extend(
            m.http_put_response_hop_limit
                .map(|h| format!("hop limit {h}")),
        );
        like.extend(
            m.http_endpoint
                .as_ref()
                .filter(|e| *e != "enabled")
                .map(|e| format!("metadata endpoint {e}")),
        );
        like.extend(
            m.instance_metadata_tags
                .as_ref()
                .filter(|t| *t == "enabled")
                .map(|_| "tags in metadata".to_owned()),
        );
    }
    like.extend(
        r.user_data
            .as_ref()
            .map(|u| format!("user data ({} base64 chars)", u.len())),
    );
    if r.ebs_optimized == Some(true) {
        like.push("EbsOptimized".to_owned());
    }
    like.extend(r.cpu_credits.as_ref().map(|c| format!("CPU credits {c}")));
    if like.is_empty() {
        String::new()
    } else {
        format!("; like the original: {}", like.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// StopInstances, never waiting for the stop; `force` for an instance a
    /// plain stop did not bring down.
    Stop {
        instance: String,
        force: bool,
    },
    Launch(Launch),
    /// A standby becomes the replacement: StartInstances when it is stopped
    /// (warm), then CreateTags with the incident and what it replaces.
    Promote {
        standby: String,
        start: bool,
        tags: Vec<Tag>,
    },
    /// StartInstances of a stopped standby (`STANDBY=hot`).
    Start {
        instance: String,
    },
    /// TerminateInstances of a standby that is superseded or not wanted.
    Terminate {
        instance: String,
        why: String,
    },
    DisableSourceDestCheck {
        instance: String,
    },
    /// The same for a leg's own interface (ModifyNetworkInterfaceAttribute).
    DisableInterfaceSourceDestCheck {
        interface: String,
    },
    MoveFloatingIp {
        allocation_id: String,
        public_ip: String,
        from: Option<String>,
        to: String,
        /// `to`'s interface that takes it, when `to` has several (EC2 then
        /// wants the interface, not the instance).
        interface: Option<String>,
    },
    CreateRoute {
        table: String,
        destination: Cidr,
        to: String,
    },
    ReplaceRoute {
        table: String,
        destination: Cidr,
        from: String,
        to: String,
    },
    /// Route 53 UPSERT of the simple A record to the replacement's address.
    UpsertRecord {
        zone_id: String,
        name: String,
        ttl: i64,
        from: Vec<String>,
        to: String,
    },
    CreateImage(ImageRequest),
    /// CreateTags on an instance of the appliance: the function's own marks
    /// (a replacement's move done or handed over, the schedule's reboot).
    MarkInstance {
        instance: String,
        tag: Tag,
        why: &'static str,
    },
    /// CreateTags on an AMI's snapshots.
    TagSnapshots {
        image: String,
        snapshots: Vec<String>,
        tags: Vec<Tag>,
    },
    /// DeregisterImage, then DeleteSnapshot of each of its snapshots.
    Prune {
        image: String,
        name: String,
        why: &'static str,
        snapshots: Vec<String>,
    },
    /// DeleteSnapshot of a snapshot whose AMI is gone.
    DeleteSnapshot {
        snapshot: String,
        image: String,
    },
    RevokeIngress {
        group: String,
        rules: Vec<IngressRule>,
    },
    AuthorizeIngress {
        group: String,
        port: u16,
        ranges: Vec<Cidr>,
        description: String,
    },
}

/// The instance an address goes to, and the interface when it is named.
fn onto(instance: &str, interface: Option<&str>) -> String {
    match interface {
        Some(i) => format!("{instance} (interface {i})"),
        None => instance.to_owned(),
    }
}

impl Change {
    /// What AssociateAddress names for a floating-IP move: the interface when
    /// the instance has several, else the instance.
    pub fn address_target(&self) -> Option<&str> {
        match self {
            Change::MoveFloatingIp { to, interface, .. } => {
                Some(interface.as_deref().unwrap_or(to))
            }
            _ => None,
        }
    }

    /// The API call, as an operator would read it.
    pub fn describe(&self) -> String {
        match self {
            Change::Stop {
                instance,
                force: false,
            } => format!("{} {instance}", Op::StopInstances),
            Change::Stop {
                instance,
                force: true,
            } => format!("{} {instance} Force=true", Op::StopInstances),
            Change::Launch(launch) => describe_launch(launch),
            Change::MarkInstance { instance, tag, why } => {
                format!(
                    "{} {instance} {}={}: {why}",
                    Op::CreateTags,
                    tag.key,
                    tag.value
                )
            }
            Change::Promote { .. } | Change::Start { .. } | Change::Terminate { .. } => {
                describe_standby(self)
            }
            Change::DisableSourceDestCheck { .. }
            | Change::DisableInterfaceSourceDestCheck { .. }
            | Change::MoveFloatingIp { .. }
            | Change::CreateRoute { .. }
            | Change::ReplaceRoute { .. }
            | Change::UpsertRecord { .. } => describe_network(self),
            other => describe_upkeep(other),
        }
    }

    /// The resource an error names.
    pub fn resource(&self) -> String {
        match self {
            Change::Stop { instance, .. }
            | Change::DisableSourceDestCheck { instance }
            | Change::Start { instance }
            | Change::Terminate { instance, .. } => instance.clone(),
            Change::Promote { standby, .. } => standby.clone(),
            Change::DisableInterfaceSourceDestCheck { interface } => interface.clone(),
            Change::Launch(launch) if launch.standby => format!("standby for {}", launch.replacing),
            Change::Launch(launch) => format!("replacement for {}", launch.replacing),
            Change::MoveFloatingIp {
                allocation_id,
                public_ip,
                ..
            } => format!("{public_ip} ({allocation_id})"),
            Change::CreateRoute {
                table, destination, ..
            }
            | Change::ReplaceRoute {
                table, destination, ..
            } => format!("{table} {destination}"),
            Change::UpsertRecord { zone_id, name, .. } => format!("{name} in {zone_id}"),
            Change::CreateImage(request) => request.instance_id.clone(),
            Change::TagSnapshots { snapshots, .. } => snapshots.join(", "),
            Change::MarkInstance { instance, .. } => instance.clone(),
            Change::Prune { image, .. } => image.clone(),
            Change::DeleteSnapshot { snapshot, .. } => snapshot.clone(),
            Change::RevokeIngress { group, .. } | Change::AuthorizeIngress { group, .. } => {
                group.clone()
            }
        }
    }
}

/// The moves of the traffic: source/dest checks, the floating IP, routes, DNS.
fn describe_network(change: &Change) -> String {
    match change {
        Change::DisableSourceDestCheck { instance } => {
            format!(
                "{} {instance} SourceDestCheck=false",
                Op::ModifyInstanceAttribute
            )
        }
        Change::DisableInterfaceSourceDestCheck { interface } => {
            format!(
                "{} {interface} SourceDestCheck=false",
                Op::ModifyNetworkInterfaceAttribute
            )
        }
        Change::MoveFloatingIp {
            allocation_id,
            public_ip,
            from,
            to,
            interface,
        } => format!(
            "{} {public_ip} ({allocation_id}) from {} to {} AllowReassociation=true",
            Op::AssociateAddress,
            from.as_deref().unwrap_or("nothing"),
            onto(to, interface.as_deref())
        ),
        Change::CreateRoute {
            table,
            destination,
            to,
        } => format!("{} {table} {destination} -> {to}", Op::CreateRoute),
        Change::ReplaceRoute {
            table,
            destination,
            from,
            to,
        } => format!(
            "{} {table} {destination} from {from} -> {to}",
            Op::ReplaceRoute
        ),
        Change::UpsertRecord {
            zone_id,
            name,
            ttl,
            from,
            to,
        } => format!(
            "{} {zone_id} UPSERT {name} A {to} TTL {ttl} (was {})",
            Op::ChangeResourceRecordSets,
            if from.is_empty() {
                "absent".to_owned()
            } else {
                from.join(" ")
            }
        ),
        other => format!("{other:?}"),
    }
}

/// The standby's changes.
fn describe_standby(change: &Change) -> String {
    match change {
        Change::Promote {
            standby,
            start,
            tags,
        } => format!(
            "{}{} {standby} {}",
            if *start {
                format!("{} {standby}, then ", Op::StartInstances)
            } else {
                String::new()
            },
            Op::CreateTags,
            tags.iter()
                .map(|t| format!("{}={}", t.key, t.value))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Change::Start { instance } => format!("{} {instance}", Op::StartInstances),
        Change::Terminate { instance, why } => {
            format!("{} {instance}: {why}", Op::TerminateInstances)
        }
        other => format!("{other:?}"),
    }
}

fn describe_launch(launch: &Launch) -> String {
    let Some(first) = launch.attempts.first() else {
        return format!(
            "{}: no way to launch a replacement for {}",
            Op::RunInstances,
            launch.replacing
        );
    };
    let r = &first.request;
    let fallbacks: Vec<String> = launch.attempts[1..]
        .iter()
        .map(LaunchAttempt::label)
        .collect();
    format!(
        "{} {} {} in {} ({}) groups [{}] ClientToken={}{}{}",
        Op::RunInstances,
        r.image_id,
        r.instance_type,
        r.subnet_id,
        first.availability_zone,
        r.security_group_ids.join(", "),
        r.client_token,
        if fallbacks.is_empty() {
            String::new()
        } else {
            format!("; if out of capacity: {}", fallbacks.join(", then "))
        },
        launch.notes()
    )
}

/// The AMI and security-group changes.
fn describe_upkeep(change: &Change) -> String {
    match change {
        Change::CreateImage(r) => {
            let name_tag = r.tags.iter().find(|t| t.key == "Name");
            format!(
                "{} {} name {} NoReboot={} tagged Name={}",
                Op::CreateImage,
                r.instance_id,
                r.name,
                r.no_reboot,
                name_tag.map(|t| t.value.as_str()).unwrap_or("-")
            )
        }
        Change::TagSnapshots {
            image, snapshots, ..
        } => format!(
            "{} [{}] as snapshots of {image}",
            Op::CreateTags,
            snapshots.join(", ")
        ),
        Change::Prune {
            image,
            name,
            why,
            snapshots,
        } => format!(
            "{} {image} ({name}, {why}), then {} [{}]",
            Op::DeregisterImage,
            Op::DeleteSnapshot,
            snapshots.join(", ")
        ),
        Change::DeleteSnapshot { snapshot, image } => {
            format!(
                "{} {snapshot}: its AMI {image} no longer exists",
                Op::DeleteSnapshot
            )
        }
        Change::RevokeIngress { rules, .. } => format!(
            "removed {}: {}",
            rules.len(),
            rules.iter().map(rule_text).collect::<Vec<_>>().join(", ")
        ),
        Change::AuthorizeIngress { ranges, .. } => format!(
            "added {}: {}",
            ranges.len(),
            ranges
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        // The failover's own changes are described by `Change::describe`.
        other => format!("{other:?}"),
    }
}

/// `203.0.113.0/24 tcp/22`.
pub fn rule_text(r: &IngressRule) -> String {
    let ports = match (r.from_port, r.to_port) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "all".to_owned(),
    };
    format!("{} {}/{ports}", r.cidr, r.protocol)
}
