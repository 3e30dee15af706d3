//! Planning: pure decisions over what discovery found. No AWS calls here, so
//! every rule (which instance failed, which AZ, which AMI, which routes move)
//! has fast unit tests on fixtures.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::Digest;

use super::look::World;
use crate::cloud::Cidr;
use crate::cloud::{
    Address, CloudError, Image, Instance, LaunchInterface, LaunchRequest, RecordSet, Route,
    RouteTarget, Subnet, TAG_GROUP, TAG_INCIDENT, TAG_REPLACES, TAG_STANDBY, Tag, is_burstable,
    tag_value,
};
use crate::config::{DnsAddress, DnsRecord, Settings};
use crate::engine::{Change, Decision, Launch, LaunchAttempt, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup::image_age;

/// What a replacement inherits that DescribeInstances does not tell. Read
/// only before a new launch: a resumed incident or a stood-down one never pays
/// for these calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inherited {
    pub user_data: UserData,
    /// `standard` or `unlimited` (burstable types only).
    pub cpu_credits: Option<String>,
}

/// The failed instance's user data, as far as EC2 still tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UserData {
    #[default]
    Absent,
    /// Base64, as EC2 keeps it and RunInstances takes it.
    Base64(String),
    /// EC2 no longer knows the instance: the replacement launches without,
    /// and the report says why.
    Unknown(String),
}

impl UserData {
    fn base64(&self) -> Option<String> {
        match self {
            UserData::Base64(b) => Some(b.clone()),
            UserData::Absent | UserData::Unknown(_) => None,
        }
    }
}

/// Where this incident stands, judged from the world alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Situation {
    /// Nothing was done yet: replace `failed`.
    Fresh { failed: Instance },
    /// A replacement already exists; finish its steps instead of launching again.
    Continue {
        replacement: Box<Instance>,
        /// The instance it replaced, when it still exists (stopped or not).
        failed: Option<Instance>,
        failed_id: Option<String>,
        why: ContinueReason,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ContinueReason {
    /// Launched by this very incident (redelivery, retry, crash).
    SameIncident,
    /// Launched by another incident less than the cooldown ago.
    Cooldown { incident: String, age: Duration },
}

impl Situation {
    /// The instance this incident replaces, when it still exists.
    pub fn failed(&self) -> Option<&Instance> {
        match self {
            Situation::Fresh { failed } => Some(failed),
            Situation::Continue { failed, .. } => failed.as_ref(),
        }
    }

    /// The instance this incident replaces, when known.
    pub fn failed_id(&self) -> Option<String> {
        match self {
            Situation::Fresh { failed } => Some(failed.id.clone()),
            Situation::Continue { failed_id, .. } => failed_id.clone(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Situation::Fresh { failed } => format!(
                "{} ({}, {}) is the failed instance; a replacement will be launched",
                failed.id,
                failed.state.as_str(),
                failed.availability_zone
            ),
            Situation::Continue {
                replacement,
                failed_id,
                why,
                ..
            } => {
                let replaces = failed_id.as_deref().unwrap_or("an unknown instance");
                match why {
                    ContinueReason::SameIncident => format!(
                        "replacement {} for {replaces} was already launched by this incident; resuming",
                        replacement.id
                    ),
                    ContinueReason::Cooldown { incident, age } => format!(
                        "replacement {} for {replaces} was launched {} min ago by incident {incident}, within the cooldown; not replacing it again",
                        replacement.id,
                        age.as_secs() / 60
                    ),
                }
            }
        }
    }
}

/// Age from the first launch: an operator's restart does not make a
/// weeks-old replacement look young.
fn age(instance: &Instance, now: DateTime<Utc>) -> Option<Duration> {
    instance.age(now)
}

/// The instance the floating IP or one of the managed routes points at.
fn serving<'a>(world: &'a World, settings: &Settings) -> Option<&'a Instance> {
    let by_ip = world
        .address
        .as_ref()
        .and_then(|a| a.instance_id.as_deref())
        .and_then(|id| world.instance(id));
    by_ip.or_else(|| {
        world.route_tables.iter().find_map(|t| {
            settings.failover.route_cidrs.iter().find_map(|c| {
                let route = t.route_to(c)?;
                world.instances.iter().find(|i| match &route.target {
                    RouteTarget::Instance(x) | RouteTarget::NetworkInterface(x) => i.owns_target(x),
                    _ => false,
                })
            })
        })
    })
}

/// Decides what this incident has to do.
pub fn assess(
    world: &World,
    settings: &Settings,
    incident: &str,
    now: DateTime<Utc>,
) -> Result<Situation, FailoverError> {
    let continue_with = |replacement: &Instance, why: ContinueReason| {
        let failed_id = replacement.tag(TAG_REPLACES).map(str::to_owned);
        Situation::Continue {
            replacement: Box::new(replacement.clone()),
            failed: failed_id
                .as_deref()
                .and_then(|id| world.instance(id))
                .cloned(),
            failed_id,
            why,
        }
    };

    // 1. This incident already launched a replacement: resume it.
    if let Some(r) = world
        .instances
        .iter()
        // One that EC2 terminated on launch is not resumed: the next attempt follows.
        .filter(|i| i.tag(TAG_INCIDENT) == Some(incident) && !i.state.is_gone())
        .max_by_key(|i| i.launch_time)
    {
        return Ok(continue_with(r, ContinueReason::SameIncident));
    }

    // 2. A young replacement from another incident is up: do not replace it again.
    if let Some((r, a)) = world
        .instances
        .iter()
        .filter(|i| i.state.is_live() && i.tag(TAG_REPLACES).is_some())
        .filter_map(|i| Some((i, age(i, now)?)))
        .filter(|(_, a)| *a < settings.failover.cooldown)
        .min_by_key(|(_, a)| *a)
    {
        let why = ContinueReason::Cooldown {
            incident: r.tag(TAG_INCIDENT).unwrap_or("unknown").to_owned(),
            age: a,
        };
        return Ok(continue_with(r, why));
    }

    // 3. Find the failed instance: the one running, else the one still serving.
    Ok(Situation::Fresh {
        failed: failed_instance(world, settings)?.clone(),
    })
}

/// The one live instance of the appliance; with none or several, the one the
/// floating IP or a managed route points at.
pub fn failed_instance<'a>(
    world: &'a World,
    settings: &Settings,
) -> Result<&'a Instance, FailoverError> {
    let live: Vec<&Instance> = world
        .instances
        .iter()
        .filter(|i| i.state.is_live())
        .collect();
    let serving = serving(world, settings);
    let name = &settings.appliance.instance_name;
    match live.as_slice() {
        [one] => Ok(*one),
        [] => serving.ok_or_else(|| FailoverError::Missing {
            what: format!(
                "no running instance in {} is tagged Name={name} (INSTANCE_NAME), and neither the floating IP nor the routes point at one",
                world.vpc_id
            ),
        }),
        many => serving
            .filter(|s| many.iter().any(|m| m.id == s.id))
            .ok_or_else(|| {
                let ids: Vec<&str> = many.iter().map(|i| i.id.as_str()).collect();
                FailoverError::Ambiguous {
                    what: format!(
                        "{} running instances are tagged Name={name} ({}) and the floating IP and routes point at none of them",
                        ids.len(),
                        ids.join(", ")
                    ),
                }
            }),
    }
}

/// The newest available image; ties go to the larger id so the choice is stable.
pub fn newest_image(images: &[Image]) -> Option<&Image> {
    images
        .iter()
        .filter(|i| i.state == "available")
        .max_by(|a, b| {
            a.creation_date
                .cmp(&b.creation_date)
                .then_with(|| a.id.cmp(&b.id))
        })
}

/// Subnets outside `failed_az`, in a fixed order: AZs after the failed one
/// (alphabetically, wrapping around) come first, so repeated failovers rotate
/// through the AZs instead of bouncing between two; subnet id breaks ties.
pub fn candidate_subnets<'a>(subnets: &'a [Subnet], failed_az: &str) -> Vec<&'a Subnet> {
    let mut out: Vec<&Subnet> = subnets
        .iter()
        .filter(|s| s.availability_zone != failed_az)
        .collect();
    out.sort_by(|a, b| {
        let after = |s: &Subnet| s.availability_zone.as_str() <= failed_az;
        (after(a), &a.availability_zone, &a.id).cmp(&(after(b), &b.availability_zone, &b.id))
    });
    out
}

/// Tags the replacement inherits: the user's own, never `aws:` ones (EC2 rejects
/// them) nor our bookkeeping tags, which are set fresh. The failover-group tag
/// is the operator's and is inherited: a group's policy needs it on the
/// replacement (its launch, and the next failover's calls on it).
///
/// EC2 allows 50 tags a resource and refuses a launch with more: after our own
/// two, at most 48 are inherited, `Name` first (it is how the appliance is
/// found), then the group tag. Returns the tags and the keys dropped.
pub fn inherited_tags(failed: &Instance) -> (Vec<Tag>, Vec<String>) {
    let mut user: Vec<&Tag> = failed
        .tags
        .iter()
        .filter(|t| !t.key.starts_with("aws:"))
        .filter(|t| !t.key.starts_with("ec2-failover:") || t.key == TAG_GROUP)
        .collect();
    user.sort_by_key(|t| (t.key != "Name", t.key != TAG_GROUP));
    let room = MAX_TAGS - OWN_TAGS;
    let dropped = user.iter().skip(room).map(|t| t.key.clone()).collect();
    (user.into_iter().take(room).cloned().collect(), dropped)
}

/// EC2's limit of tags on one resource.
const MAX_TAGS: usize = 50;
/// The tags a replacement gets from this tool: the incident and what it
/// replaces (a standby's two: its mode and the appliance it backs up).
const OWN_TAGS: usize = 2;

/// ClientToken for RunInstances: at most 64 ASCII characters, stable per
/// incident, generation and launch attempt. Each attempt needs its own token:
/// EC2 rejects a token reused with other parameters (another AZ or type), and
/// keeps a token at least 24 h after its instance terminated
/// (`IdempotentInstanceTerminated`): a new generation starts fresh tokens.
pub fn client_token(incident: &str, generation: u32, attempt: usize) -> String {
    let raw = match (generation, attempt) {
        (0, 0) => incident.to_owned(),
        (0, n) => format!("{incident}-{n}"),
        (g, n) => format!("{incident}-g{g}-{n}"),
    };
    let clean: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if clean.is_empty() || clean.len() > 64 || clean.len() != raw.len() {
        // Too long or not plain ASCII: a digest keeps it unique and stable.
        let digest = sha2::Sha256::digest(raw.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let head: String = clean.chars().take(31).collect();
        format!("{head}-{hex}")
    } else {
        clean
    }
}

/// One way to launch the replacement: an instance type in a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement<'a> {
    pub instance_type: String,
    pub subnet: &'a Subnet,
    /// The other legs' interfaces, in this subnet's AZ.
    pub legs: Vec<LaunchInterface>,
}

/// The order in which launches are tried when AZs run out of capacity: the
/// failed instance's own type in every candidate AZ first, then each of
/// `FALLBACK_INSTANCE_TYPES` in every candidate AZ.
pub fn launch_attempts<'a>(
    own_type: &str,
    subnets: &[&'a Subnet],
    fallback_types: &[String],
) -> Vec<Placement<'a>> {
    let mut types = vec![own_type.to_owned()];
    for t in fallback_types {
        if !types.contains(t) {
            types.push(t.clone());
        }
    }
    types
        .iter()
        .flat_map(|t| {
            subnets.iter().map(move |s| Placement {
                instance_type: t.clone(),
                subnet: s,
                legs: Vec::new(),
            })
        })
        .collect()
}

/// One more leg of the appliance: its device index, the name of its subnets
/// and the groups of the original's interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg<'a> {
    pub device_index: i32,
    pub subnet_name: &'a str,
    pub security_group_ids: &'a [String],
}

/// The original's interfaces beyond the primary, each with the subnet name
/// `SUBNET_NAMES` gives its device index. A leg without a name is refused
/// before anything changes: a VPN gateway relaunched without its LAN leg
/// would run and route nothing.
pub fn legs_of<'a>(
    failed: &'a Instance,
    settings: &'a Settings,
) -> Result<Vec<Leg<'a>>, FailoverError> {
    let names = &settings.failover.subnet_names;
    failed
        .secondary_interfaces
        .iter()
        .map(|i| {
            let name = usize::try_from(i.device_index).ok().and_then(|d| names.get(d));
            let name = name.ok_or_else(|| FailoverError::Missing {
                what: format!(
                    "{} has a network interface at device index {} ({} in {}), but SUBNET_NAMES ({}) names no subnet for it: add the name of that leg's subnets",
                    failed.id,
                    i.device_index,
                    i.id,
                    i.subnet_id,
                    names.join(",")
                ),
            })?;
            Ok(Leg {
                device_index: i.device_index,
                subnet_name: name,
                security_group_ids: &i.security_group_ids,
            })
        })
        .collect()
}

/// The legs' interfaces in `az`: the first subnet (by id) of each leg's name
/// there; `None` when the AZ lacks one.
fn legs_in(world: &World, legs: &[Leg<'_>], az: &str) -> Option<Vec<LaunchInterface>> {
    legs.iter()
        .map(|leg| {
            let subnet = world
                .leg_subnets
                .iter()
                .filter(|s| s.availability_zone == az)
                .filter(|s| tag_value(&s.tags, "Name") == Some(leg.subnet_name))
                .min_by(|a, b| a.id.cmp(&b.id))?;
            Some(LaunchInterface {
                device_index: leg.device_index,
                subnet_id: subnet.id.clone(),
                security_group_ids: leg.security_group_ids.to_vec(),
            })
        })
        .collect()
}

/// The stop and the launch of this incident: what a new failover does, or
/// what a resumed one finds already done.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPlan {
    pub stop: PlannedStep,
    pub launch: PlannedStep,
    /// The AMI a new replacement launches from.
    pub image: Option<String>,
    /// Where the first launch attempt goes (what a plan reports).
    pub availability_zone: Option<String>,
    /// What a new launch read of the original (`None`: not read, as for a
    /// resumed incident); a later round of tokens launches the same way.
    pub inherited: Option<Inherited>,
}

/// `generation` numbers the rounds of ClientTokens: 0 first, one more each
/// time every token of the round is spent on replacements EC2 terminated.
pub fn launch_plan(
    world: &World,
    settings: &Settings,
    (situation, inherited): (&Situation, &Inherited),
    incident: &str,
    now: DateTime<Utc>,
    generation: u32,
) -> Result<LaunchPlan, FailoverError> {
    let failed = match situation {
        Situation::Fresh { failed } => failed,
        Situation::Continue {
            replacement,
            failed,
            failed_id,
            ..
        } => {
            let detail = format!(
                "{} ({}) in {} was launched by incident {}",
                replacement.id,
                replacement.state.as_str(),
                replacement.availability_zone,
                replacement.tag(TAG_INCIDENT).unwrap_or("unknown")
            );
            return Ok(LaunchPlan {
                stop: stop_step(failed.as_ref(), failed_id.as_deref()),
                launch: PlannedStep::new(Step::Launch, Decision::AlreadyDone(detail)),
                image: replacement.image_id.clone(),
                availability_zone: Some(replacement.availability_zone.clone()),
                inherited: None,
            });
        }
    };
    let (launch, image) = replacement_launch(
        world,
        settings,
        (failed, inherited),
        (incident, generation),
        now,
    )?;
    Ok(LaunchPlan {
        stop: stop_step(Some(failed), Some(&failed.id)),
        availability_zone: launch.attempts.first().map(|a| a.availability_zone.clone()),
        launch: PlannedStep::new(Step::Launch, Decision::Make(Change::Launch(launch))),
        image: Some(image.id.clone()),
        inherited: Some(inherited.clone()),
    })
}

/// Every launch option in order: candidate subnets of AZs that have a subnet
/// for each of the failed instance's legs, each with those legs.
fn placements<'a>(
    world: &'a World,
    settings: &Settings,
    failed: &Instance,
) -> Result<Vec<Placement<'a>>, FailoverError> {
    let legs = legs_of(failed, settings)?;
    let usable: Vec<(&Subnet, Vec<LaunchInterface>)> =
        candidate_subnets(&world.subnets, &failed.availability_zone)
            .into_iter()
            .filter_map(|s| Some((s, legs_in(world, &legs, &s.availability_zone)?)))
            .collect();
    let subnets: Vec<&Subnet> = usable.iter().map(|(s, _)| *s).collect();
    let mut placements = launch_attempts(
        &failed.instance_type,
        &subnets,
        &settings.failover.fallback_instance_types,
    );
    if placements.is_empty() {
        return Err(FailoverError::Missing {
            what: format!(
                "no subnet tagged Name={} (SUBNET_NAMES) in {} lies outside {}, the failed instance's AZ, in an AZ that has them all",
                settings.failover.subnet_names.join(" and "),
                world.vpc_id,
                failed.availability_zone
            ),
        });
    }
    for p in &mut placements {
        let legs = usable.iter().find(|(s, _)| s.id == p.subnet.id);
        p.legs = legs.map(|(_, l)| l.clone()).unwrap_or_default();
    }
    Ok(placements)
}

/// The newest available AMI, which a launch needs (`what` says for what).
pub fn newest_required<'a>(
    world: &'a World,
    settings: &Settings,
    what: &str,
) -> Result<&'a Image, FailoverError> {
    newest_image(&world.images).ok_or_else(|| FailoverError::Missing {
        what: format!(
            "no available AMI owned by this account is tagged Name={} (AMI_NAME){what}",
            settings.appliance.ami_name
        ),
    })
}

/// RunInstances of a replacement for `original` from the newest AMI, with
/// this incident's tags and this round's tokens; and that AMI.
fn replacement_launch<'a>(
    world: &'a World,
    settings: &Settings,
    original: (&Instance, &Inherited),
    (incident, generation): (&str, u32),
    now: DateTime<Utc>,
) -> Result<(Launch, &'a Image), FailoverError> {
    let image = newest_required(world, settings, "")?;
    let own = replacement_tags(incident, original.0);
    let launch = launch_change(
        world,
        settings,
        (original, &own),
        image,
        (incident, generation),
        now,
    )?;
    Ok((launch, image))
}

/// The tags of our own a replacement carries: the incident that launched
/// it (how a redelivery resumes it) and what it replaces.
pub fn replacement_tags(incident: &str, failed: &Instance) -> [Tag; 2] {
    [
        Tag::new(TAG_INCIDENT, incident),
        Tag::new(TAG_REPLACES, &failed.id),
    ]
}

/// RunInstances like `failed` (a replacement, or a standby when `own` says
/// so), with every fallback in order. `seed` names the ClientTokens.
pub fn launch_change(
    world: &World,
    settings: &Settings,
    ((failed, inherited), own): ((&Instance, &Inherited), &[Tag]),
    image: &Image,
    (seed, generation): (&str, u32),
    now: DateTime<Utc>,
) -> Result<Launch, FailoverError> {
    let placements = placements(world, settings, failed)?;
    let groups = world.security_group_ids.as_deref();
    let attempts = placements
        .iter()
        .enumerate()
        .map(|(n, p)| LaunchAttempt {
            request: launch_request(
                (failed, inherited),
                image,
                p,
                groups,
                own,
                client_token(seed, generation, n),
            ),
            availability_zone: p.subnet.availability_zone.clone(),
        })
        .collect();
    Ok(Launch {
        attempts,
        dropped_tags: inherited_tags(failed).1,
        user_data_unknown: match &inherited.user_data {
            UserData::Unknown(why) => Some(why.clone()),
            UserData::Absent | UserData::Base64(_) => None,
        },
        image: format!(
            "{} ({}, {})",
            image.id,
            image.name.as_deref().unwrap_or("unnamed"),
            image
                .creation_date
                .map(|c| image_age(c, now))
                .unwrap_or_else(|| "creation time unknown".to_owned())
        ),
        replacing: failed.id.clone(),
        standby: own.iter().any(|t| t.key == TAG_STANDBY),
    })
}

/// The launch step that follows a replacement EC2 terminated on launch: the
/// options after the one it came from (the next AZ, then type), each with its
/// own unused token. `None` when no option is left.
pub fn after(step: &PlannedStep, dead: &Instance) -> Option<PlannedStep> {
    let Decision::Make(Change::Launch(launch)) = &step.decision else {
        return None;
    };
    let used = launch.attempts.iter().position(|a| {
        Some(&a.request.subnet_id) == dead.subnet_id.as_ref()
            && a.request.instance_type == dead.instance_type
    })?;
    let rest = launch.attempts.get(used + 1..).filter(|r| !r.is_empty())?;
    let next = Launch {
        attempts: rest.to_vec(),
        replacing: format!("{} (after {} died on launch)", launch.replacing, dead.id),
        ..launch.clone()
    };
    Some(PlannedStep::new(
        Step::Launch,
        Decision::Make(Change::Launch(next)),
    ))
}

/// The first launch of a new round of ClientTokens, for when a replacement
/// EC2 terminated leaves no option of its round untried. `None` without an
/// AMI or a candidate subnet.
pub fn relaunch(
    world: &World,
    settings: &Settings,
    original: (&Instance, &Inherited),
    dead: &Instance,
    (incident, generation): (&str, u32),
    now: DateTime<Utc>,
) -> Option<PlannedStep> {
    let (launch, _) =
        replacement_launch(world, settings, original, (incident, generation), now).ok()?;
    let launch = Launch {
        replacing: format!("{} (after {} died on launch)", original.0.id, dead.id),
        ..launch
    };
    Some(PlannedStep::new(
        Step::Launch,
        Decision::Make(Change::Launch(launch)),
    ))
}

/// Stops the failed instance unless it is already down or gone. Never waits
/// for the stop: in an AZ outage it may never finish.
pub fn stop_step(failed: Option<&Instance>, failed_id: Option<&str>) -> PlannedStep {
    let decision = match (failed, failed_id) {
        (Some(f), _) if f.state.is_live() => Decision::Make(Change::Stop {
            instance: f.id.clone(),
            force: false,
        }),
        (Some(f), _) => Decision::AlreadyDone(format!("{} is already {}", f.id, f.state.as_str())),
        (None, Some(id)) => Decision::AlreadyDone(format!("{id} no longer exists (terminated)")),
        (None, None) => Decision::AlreadyDone("the replaced instance is not recorded".to_owned()),
    };
    PlannedStep::new(Step::StopFailed, decision)
}

/// Replacements this tool launched within `window` before `now`: the flap
/// guard's memory, kept in AWS as the replacements' own tags and launch times.
pub fn recent_failovers(world: &World, now: DateTime<Utc>, window: Duration) -> Vec<&Instance> {
    world
        .instances
        .iter()
        .filter(|i| i.tag(TAG_REPLACES).is_some())
        .filter(|i| age(i, now).is_some_and(|a| a < window))
        .collect()
}

/// RunInstances for one placement, launching like the original: its type
/// (unless a fallback), groups, key, profile, tags, metadata options, EBS
/// optimisation, user data and CPU credits. `token` is the attempt's ClientToken.
pub fn launch_request(
    (failed, inherited): (&Instance, &Inherited),
    image: &Image,
    attempt: &Placement<'_>,
    security_group_ids: Option<&[String]>,
    own: &[Tag],
    token: String,
) -> LaunchRequest {
    let (mut tags, _) = inherited_tags(failed);
    tags.extend_from_slice(own);
    LaunchRequest {
        image_id: image.id.clone(),
        instance_type: attempt.instance_type.clone(),
        subnet_id: attempt.subnet.id.clone(),
        security_group_ids: security_group_ids
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| failed.security_group_ids.clone()),
        key_name: failed.key_name.clone(),
        iam_instance_profile_arn: failed.iam_instance_profile_arn.clone(),
        tags,
        client_token: token,
        metadata_options: failed.metadata_options.clone(),
        // Only on the original's own type, which is known to take it: a
        // fallback type that cannot be EBS-optimized refuses the launch, and
        // the types that can (every Nitro type) are by default.
        ebs_optimized: failed
            .ebs_optimized
            .filter(|on| *on && attempt.instance_type == failed.instance_type),
        user_data: inherited.user_data.base64(),
        // A fallback type outside the burstable families refuses the option.
        cpu_credits: inherited
            .cpu_credits
            .clone()
            .filter(|_| is_burstable(&attempt.instance_type)),
        secondary_interfaces: attempt.legs.clone(),
    }
}

fn target_text(t: &RouteTarget) -> String {
    match t {
        RouteTarget::Instance(x) | RouteTarget::NetworkInterface(x) | RouteTarget::Other(x) => {
            x.clone()
        }
        RouteTarget::None => "nothing".to_owned(),
    }
}

/// Decides one managed route. A route moves to the replacement when it points
/// at another instance of this appliance (the failed one or an earlier one), at
/// the failed instance's id even if it is gone, or is a blackhole; a missing
/// route is created. Any other target was set by someone else and stays.
pub fn route_decision(
    table: &str,
    destination: &Cidr,
    route: Option<&Route>,
    appliance: &[Instance],
    failed_id: Option<&str>,
    (replacement, current): (&str, Option<&Instance>),
) -> Decision {
    let replacement_instance = current.or_else(|| appliance.iter().find(|i| i.id == replacement));
    let Some(route) = route else {
        return Decision::Make(Change::CreateRoute {
            table: table.to_owned(),
            destination: *destination,
            to: route_target_for(None, appliance, replacement_instance, replacement),
        });
    };
    let target = route.target.appliance_id();
    let on_replacement = target.is_some_and(|t| {
        t == replacement || replacement_instance.is_some_and(|r| r.owns_target(t))
    });
    if on_replacement && !route.blackhole {
        return Decision::AlreadyDone(format!(
            "{table} {destination} already points at {replacement}"
        ));
    }
    let ours = route.blackhole
        || on_replacement
        || target.is_some_and(|t| {
            Some(t) == failed_id
                || appliance
                    .iter()
                    .any(|i| i.id != replacement && i.owns_target(t))
        });
    if ours {
        Decision::Make(Change::ReplaceRoute {
            table: table.to_owned(),
            destination: *destination,
            from: format!(
                "{}{}",
                target_text(&route.target),
                if route.blackhole { " (blackhole)" } else { "" }
            ),
            to: route_target_for(target, appliance, replacement_instance, replacement),
        })
    } else {
        Decision::LeaveAlone(format!(
            "{table} {destination} points at {}, which is not an instance of this appliance; left alone",
            target_text(&route.target)
        ))
    }
}

/// Where a route of the appliance goes: to the replacement, or, when it
/// pointed at another leg's interface (device 1, 2...: the LAN side of a
/// two-legged gateway), to the replacement's interface of that device. EC2
/// refuses a route to an instance with several interfaces, so a route of the
/// primary leg then names the replacement's primary interface.
pub fn route_target_for(
    target: Option<&str>,
    appliance: &[Instance],
    replacement_instance: Option<&Instance>,
    replacement: &str,
) -> String {
    let leg = target.and_then(|t| {
        appliance
            .iter()
            .flat_map(|i| &i.secondary_interfaces)
            .find(|l| l.id == t)
    });
    let device = leg.map_or(0, |l| l.device_index);
    let Some(r) = replacement_instance.filter(|r| !r.secondary_interfaces.is_empty()) else {
        return match device {
            0 => replacement.to_owned(),
            d => format!("{replacement}'s device-{d} interface"),
        };
    };
    let interface = match device {
        0 => r
            .network_interface_ids
            .iter()
            .find(|id| !r.secondary_interfaces.iter().any(|l| &l.id == *id)),
        d => r
            .secondary_interfaces
            .iter()
            .find(|l| l.device_index == d)
            .map(|l| &l.id),
    };
    interface
        .cloned()
        .unwrap_or_else(|| format!("{replacement}'s device-{device} interface"))
}

fn floating_ip_decision(address: &Address, replacement: &str) -> Decision {
    if address.instance_id.as_deref() == Some(replacement) {
        Decision::AlreadyDone(format!("{} is on {replacement}", address.public_ip))
    } else {
        Decision::Make(Change::MoveFloatingIp {
            allocation_id: address.allocation_id.clone(),
            public_ip: address.public_ip.clone(),
            from: address.instance_id.clone(),
            to: replacement.to_owned(),
        })
    }
}

/// The address the DNS record should hold: the floating IP goes to the
/// replacement, so when public it wins over the replacement's own public IP.
/// `Err` says why there is none yet.
fn dns_target(
    dns: &DnsRecord,
    settings: &Settings,
    replacement: &str,
    current: Option<&Instance>,
) -> Result<String, String> {
    match dns.address {
        DnsAddress::Public => {
            if let Some(ip) = settings.failover.floating_ip {
                return Ok(ip.to_string());
            }
            current.and_then(|i| i.public_ip.clone()).ok_or_else(|| {
                format!("{replacement} has no public address (and no FLOATING_IP is set)")
            })
        }
        DnsAddress::Private => current
            .and_then(|i| i.private_ip.clone())
            .ok_or_else(|| format!("{replacement} has no private address yet")),
    }
}

/// Decides the DNS step: already right, a record set we must not overwrite
/// (alias, or weighted/failover records that a simple UPSERT would clash with),
/// or an UPSERT.
pub fn dns_decision(
    dns: &DnsRecord,
    records: &[RecordSet],
    target: Result<String, String>,
) -> Decision {
    if let Some(r) = records
        .iter()
        .find(|r| r.alias || r.set_identifier.is_some())
    {
        let kind = if r.alias {
            "an alias record".to_owned()
        } else {
            format!(
                "a routing-policy record (SetIdentifier {})",
                r.set_identifier.as_deref().unwrap_or_default()
            )
        };
        return Decision::LeaveAlone(format!(
            "{} A in {} is {kind}; only a simple record follows the appliance (point the record at FLOATING_IP instead)",
            dns.name, dns.zone_id
        ));
    }
    let to = match target {
        Ok(to) => to,
        // In a dry run the replacement does not exist yet: say what will be used.
        Err(why) => return Decision::LeaveAlone(format!("{} not updated: {why}", dns.name)),
    };
    let current = records.first();
    if current.is_some_and(|r| r.values == [to.clone()] && r.ttl == Some(dns.ttl)) {
        return Decision::AlreadyDone(format!("{} A already {to} (TTL {})", dns.name, dns.ttl));
    }
    Decision::Make(Change::UpsertRecord {
        zone_id: dns.zone_id.clone(),
        name: dns.name.clone(),
        ttl: dns.ttl,
        from: current.map(|r| r.values.clone()).unwrap_or_default(),
        to,
    })
}

/// The record could not be looked at: UPSERT anyway (repeating it is harmless,
/// and Route 53 refuses it rather than flatten a routing-policy record).
fn blind_upsert(dns: &DnsRecord, target: Result<String, String>, error: &CloudError) -> Decision {
    match target {
        Ok(to) => Decision::Make(Change::UpsertRecord {
            zone_id: dns.zone_id.clone(),
            name: dns.name.clone(),
            ttl: dns.ttl,
            from: vec![format!("unknown, the look failed: {error}")],
            to,
        }),
        Err(why) => Decision::LeaveAlone(format!("{} not updated: {why}", dns.name)),
    }
}

/// Source/dest check off on the replacement (the instance attribute covers
/// its primary interface only) and on each of its other legs, which forward
/// traffic too.
pub fn source_dest_steps(replacement: &str, current: Option<&Instance>) -> Vec<PlannedStep> {
    let primary = match current.and_then(|i| i.source_dest_check) {
        Some(false) => {
            Decision::AlreadyDone(format!("source/dest check is already off on {replacement}"))
        }
        _ => Decision::Make(Change::DisableSourceDestCheck {
            instance: replacement.to_owned(),
        }),
    };
    let legs = current.map_or(&[][..], |c| &c.secondary_interfaces[..]);
    let legs = legs.iter().map(|leg| {
        let decision = match leg.source_dest_check {
            Some(false) => {
                Decision::AlreadyDone(format!("source/dest check is already off on {}", leg.id))
            }
            _ => Decision::Make(Change::DisableInterfaceSourceDestCheck {
                interface: leg.id.clone(),
            }),
        };
        PlannedStep::on(Step::SourceDestCheck, leg.id.clone(), decision)
    });
    std::iter::once(PlannedStep::new(Step::SourceDestCheck, primary))
        .chain(legs)
        .collect()
}

/// Every step after the replacement is up, decided against the world as found.
/// `replacement` is the replacement's id; `current` its latest description,
/// when it exists yet.
pub fn post_launch(
    world: &World,
    settings: &Settings,
    replacement: &str,
    current: Option<&Instance>,
    failed_id: Option<&str>,
) -> Vec<PlannedStep> {
    let mut steps = source_dest_steps(replacement, current);
    if let Some(address) = &world.address {
        steps.push(PlannedStep::new(
            Step::FloatingIp,
            floating_ip_decision(address, replacement),
        ));
    }
    for table in &world.route_tables {
        for cidr in &settings.failover.route_cidrs {
            steps.push(PlannedStep::on(
                Step::Route,
                format!("{} {cidr}", table.id),
                route_decision(
                    &table.id,
                    cidr,
                    table.route_to(cidr),
                    &world.instances,
                    failed_id,
                    (replacement, current),
                ),
            ));
        }
    }
    if let Some(dns) = &settings.dns {
        let target = match (current, dns.address, settings.failover.floating_ip) {
            (Some(_), ..) => dns_target(dns, settings, replacement, current),
            // Dry run: the floating IP is known, the replacement's own addresses are not.
            (None, DnsAddress::Public, Some(ip)) => Ok(ip.to_string()),
            (None, address, _) => Ok(format!("({replacement}'s {} address)", address.as_str())),
        };
        let decision = match &world.dns_records {
            Some(Err(e)) => blind_upsert(dns, target, e),
            Some(Ok(records)) => dns_decision(dns, records, target),
            None => dns_decision(dns, &[], target),
        };
        steps.push(PlannedStep::new(Step::DnsRecord, decision));
    }
    steps
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cloud::{InstanceState, MetadataOptions, RouteTable};

    pub(crate) fn settings() -> Settings {
        Settings::from_lookup(|k| {
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
            tags: vec![
                Tag::new("Name", "sophos"),
                Tag::new("aws:cloudformation:stack-name", "x"),
            ],
            metadata_options: None,
            ebs_optimized: None,
            secondary_interfaces: vec![],
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
        }
    }

    #[test]
    fn the_single_running_instance_is_the_failed_one() {
        let w = world(vec![
            instance("i-old", InstanceState::Stopped, "ap-northeast-1c"),
            instance("i-live", InstanceState::Running, "ap-northeast-1a"),
        ]);
        match assess(&w, &settings(), "alarm-1", now()).unwrap() {
            Situation::Fresh { failed } => assert_eq!(failed.id, "i-live"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn with_none_running_the_floating_ip_names_the_failed_instance() {
        let mut w = world(vec![
            instance("i-1", InstanceState::Stopped, "ap-northeast-1a"),
            instance("i-2", InstanceState::Stopping, "ap-northeast-1c"),
        ]);
        w.address = Some(Address {
            allocation_id: "eipalloc-1".into(),
            public_ip: "203.0.113.10".into(),
            instance_id: Some("i-2".into()),
            network_interface_id: None,
        });
        match assess(&w, &settings(), "alarm-1", now()).unwrap() {
            Situation::Fresh { failed } => assert_eq!(failed.id, "i-2"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn with_none_running_a_route_names_the_failed_instance() {
        let mut w = world(vec![
            instance("i-1", InstanceState::Stopped, "ap-northeast-1a"),
            instance("i-2", InstanceState::Stopped, "ap-northeast-1c"),
        ]);
        w.route_tables[0].routes.push(Route {
            destination: "10.242.2.0/24".into(),
            target: RouteTarget::NetworkInterface("eni-i-1".into()),
            blackhole: false,
        });
        match assess(&w, &settings(), "alarm-1", now()).unwrap() {
            Situation::Fresh { failed } => assert_eq!(failed.id, "i-1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nothing_to_fail_over_and_ambiguity_are_errors() {
        let w = world(vec![instance(
            "i-1",
            InstanceState::Stopped,
            "ap-northeast-1a",
        )]);
        let e = assess(&w, &settings(), "alarm-1", now()).unwrap_err();
        assert!(matches!(e, FailoverError::Missing { .. }), "{e}");
        let w = world(vec![
            instance("i-1", InstanceState::Running, "ap-northeast-1a"),
            instance("i-2", InstanceState::Running, "ap-northeast-1c"),
        ]);
        let e = assess(&w, &settings(), "alarm-1", now()).unwrap_err();
        assert!(matches!(e, FailoverError::Ambiguous { .. }), "{e}");
        assert!(
            e.to_string().contains("i-1") && e.to_string().contains("i-2"),
            "{e}"
        );
    }

    #[test]
    fn a_replacement_of_this_incident_is_resumed() {
        let mut r = instance("i-new", InstanceState::Pending, "ap-northeast-1c");
        r.tags.push(Tag::new(TAG_INCIDENT, "alarm-1"));
        r.tags.push(Tag::new(TAG_REPLACES, "i-old"));
        let w = world(vec![
            instance("i-old", InstanceState::Running, "ap-northeast-1a"),
            r,
        ]);
        match assess(&w, &settings(), "alarm-1", now()).unwrap() {
            Situation::Continue {
                replacement,
                failed,
                why,
                ..
            } => {
                assert_eq!(replacement.id, "i-new");
                assert_eq!(failed.map(|f| f.id).as_deref(), Some("i-old"));
                assert_eq!(why, ContinueReason::SameIncident);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_young_replacement_is_not_replaced_but_an_old_one_is() {
        let mut r = instance("i-new", InstanceState::Running, "ap-northeast-1c");
        r.tags.push(Tag::new(TAG_INCIDENT, "alarm-0"));
        r.tags.push(Tag::new(TAG_REPLACES, "i-old"));
        r.launch_time = Some(now() - chrono::Duration::minutes(5));
        r.first_launch = Some(now() - chrono::Duration::minutes(5));
        let w = world(vec![
            instance("i-old", InstanceState::Stopped, "ap-northeast-1a"),
            r.clone(),
        ]);
        let s = assess(&w, &settings(), "alarm-2", now()).unwrap();
        assert!(
            matches!(&s, Situation::Continue { why: ContinueReason::Cooldown { age, .. }, .. } if age.as_secs() == 300),
            "{s:?}"
        );
        assert!(s.describe().contains("within the cooldown"));

        r.launch_time = Some(now() - chrono::Duration::minutes(16));

        r.first_launch = Some(now() - chrono::Duration::minutes(16));
        let w = world(vec![
            instance("i-old", InstanceState::Stopped, "ap-northeast-1a"),
            r,
        ]);
        match assess(&w, &settings(), "alarm-2", now()).unwrap() {
            Situation::Fresh { failed } => assert_eq!(failed.id, "i-new"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn newest_available_image_wins_by_time_not_by_text() {
        let images = vec![
            image("ami-b", "2026-11-01T00:00:00.000Z"),
            image("ami-a", "2026-11-20T00:00:00.000Z"),
            image("ami-c", "2026-09-30T00:00:00.000Z"),
        ];
        assert_eq!(newest_image(&images).unwrap().id, "ami-a");
        let mut pending = image("ami-z", "2026-11-21T00:00:00.000Z");
        pending.state = "pending".into();
        let mut with_pending = images.clone();
        with_pending.push(pending);
        assert_eq!(newest_image(&with_pending).unwrap().id, "ami-a");
        assert!(newest_image(&[]).is_none());
    }

    #[test]
    fn subnets_rotate_through_the_other_azs() {
        let subnets = vec![
            subnet("subnet-c", "ap-northeast-1c"),
            subnet("subnet-a", "ap-northeast-1a"),
            subnet("subnet-d", "ap-northeast-1d"),
            subnet("subnet-a2", "ap-northeast-1a"),
        ];
        let order = |az| -> Vec<&str> {
            candidate_subnets(&subnets, az)
                .iter()
                .map(|s| s.id.as_str())
                .collect()
        };
        assert_eq!(order("ap-northeast-1a"), ["subnet-c", "subnet-d"]);
        assert_eq!(
            order("ap-northeast-1c"),
            ["subnet-d", "subnet-a", "subnet-a2"]
        );
        assert_eq!(
            order("ap-northeast-1d"),
            ["subnet-a", "subnet-a2", "subnet-c"]
        );
        // The seed's `tr 'ac' 'ca'` bug: the region name must never be rewritten.
        assert!(
            order("ap-northeast-1a")
                .iter()
                .all(|s| !s.contains("northeast-1a"))
        );
    }

    #[test]
    fn launch_copies_the_instance_and_records_the_incident() {
        let failed = instance("i-old", InstanceState::Running, "ap-northeast-1a");
        let c = subnet("subnet-c", "ap-northeast-1c");
        let attempt = Placement {
            instance_type: "t3.small".into(),
            subnet: &c,
            legs: vec![],
        };
        let req = launch_request(
            (&failed, &Inherited::default()),
            &image("ami-new", "2026-11-20T00:00:00Z"),
            &attempt,
            None,
            &replacement_tags("alarm-1", &failed),
            client_token("alarm-1", 0, 0),
        );
        assert_eq!(req.image_id, "ami-new");
        assert_eq!(req.instance_type, "t3.small");
        assert_eq!(req.security_group_ids, ["sg-1"]);
        assert_eq!(req.key_name.as_deref(), Some("ops"));
        assert_eq!(req.client_token, "alarm-1");
        let keys: Vec<&str> = req.tags.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["Name", TAG_INCIDENT, TAG_REPLACES]);
        let over = launch_request(
            (&failed, &Inherited::default()),
            &image("ami-new", "2026-11-20T00:00:00Z"),
            &attempt,
            Some(&["sg-9".to_owned()]),
            &replacement_tags("alarm-1", &failed),
            client_token("alarm-1", 0, 2),
        );
        assert_eq!(over.security_group_ids, ["sg-9"]);
        assert_eq!(over.client_token, "alarm-1-2");
        // An original with EC2's defaults adds nothing to the request.
        assert_eq!(req.metadata_options, None);
        assert_eq!(req.ebs_optimized, None);
        assert_eq!(req.user_data, None);
        assert_eq!(req.cpu_credits, None);
    }

    fn imdsv2(hops: i32) -> MetadataOptions {
        MetadataOptions {
            http_tokens: Some("required".into()),
            http_put_response_hop_limit: Some(hops),
            http_endpoint: Some("enabled".into()),
            instance_metadata_tags: Some("enabled".into()),
        }
    }

    #[test]
    fn every_launch_option_launches_like_the_original() {
        let mut failed = instance("i-old", InstanceState::Running, "ap-northeast-1a");
        failed.metadata_options = Some(imdsv2(2));
        failed.ebs_optimized = Some(true);
        let inherited = Inherited {
            user_data: UserData::Base64("IyEvYmluL3NoCmVjaG8gaGk=".into()),
            cpu_credits: Some("unlimited".into()),
        };
        let mut s = settings();
        s.failover.fallback_instance_types = vec!["m5.large".into()];
        let mut w = world(vec![failed.clone()]);
        w.images = vec![image("ami-new", "2026-11-20T00:00:00Z")];
        let situation = Situation::Fresh { failed };
        let plan = launch_plan(&w, &s, (&situation, &inherited), "alarm-1", now(), 0).unwrap();
        assert_eq!(plan.inherited.as_ref(), Some(&inherited));
        let Decision::Make(Change::Launch(launch)) = &plan.launch.decision else {
            panic!("a launch: {plan:?}");
        };
        let types: Vec<&str> = launch
            .attempts
            .iter()
            .map(|a| a.request.instance_type.as_str())
            .collect();
        assert!(
            types.contains(&"t3.small") && types.contains(&"m5.large"),
            "{types:?}"
        );
        for a in &launch.attempts {
            let r = &a.request;
            assert_eq!(r.metadata_options, Some(imdsv2(2)), "{}", a.label());
            // Asked only on the original's type: another may refuse it.
            let ebs = (r.instance_type == "t3.small").then_some(true);
            assert_eq!(r.ebs_optimized, ebs, "{}", a.label());
            assert_eq!(r.user_data.as_deref(), Some("IyEvYmluL3NoCmVjaG8gaGk="));
            // EC2 refuses CPU credits for a type that has none.
            let credits = (r.instance_type == "t3.small").then(|| "unlimited".to_owned());
            assert_eq!(r.cpu_credits, credits, "{}", a.label());
        }
        assert!(
            launch
                .notes()
                .contains("like the original: IMDS tokens required, hop limit 2, tags in metadata, user data (24 base64 chars), EbsOptimized, CPU credits unlimited"),
            "{}",
            launch.notes()
        );
        assert_eq!(launch.user_data_unknown, None);
    }

    #[test]
    fn unknown_user_data_is_launched_without_and_the_report_says_so() {
        let failed = instance("i-old", InstanceState::Running, "ap-northeast-1a");
        let inherited = Inherited {
            user_data: UserData::Unknown("EC2 no longer knows i-old".into()),
            cpu_credits: None,
        };
        let mut w = world(vec![failed.clone()]);
        w.images = vec![image("ami-new", "2026-11-20T00:00:00Z")];
        let situation = Situation::Fresh { failed };
        let plan = launch_plan(
            &w,
            &settings(),
            (&situation, &inherited),
            "alarm-1",
            now(),
            0,
        )
        .unwrap();
        let Decision::Make(Change::Launch(launch)) = &plan.launch.decision else {
            panic!("a launch: {plan:?}");
        };
        assert!(
            launch
                .attempts
                .iter()
                .all(|a| a.request.user_data.is_none())
        );
        assert!(
            launch
                .notes()
                .contains("user data NOT copied: EC2 no longer knows i-old"),
            "{}",
            launch.notes()
        );
    }

    #[test]
    fn past_ec2s_tag_limit_name_and_our_own_tags_stay_and_the_rest_is_cut() {
        let mut failed = instance("i-old", InstanceState::Running, "ap-northeast-1a");
        failed.tags = (0..60).map(|n| Tag::new(format!("k{n:02}"), "v")).collect();
        failed.tags.push(Tag::new("Name", "sophos"));
        failed.tags.push(Tag::new(TAG_GROUP, "tokyo-vpn"));
        failed.tags.push(Tag::new(TAG_INCIDENT, "alarm-0"));
        let (kept, dropped) = inherited_tags(&failed);
        assert_eq!(kept.len(), 48);
        assert_eq!(kept[0].key, "Name");
        assert_eq!(kept[1], Tag::new(TAG_GROUP, "tokyo-vpn"));
        assert!(!kept.iter().any(|t| t.key == TAG_INCIDENT), "set fresh");
        assert_eq!(dropped.len(), 14);
        assert_eq!(dropped[0], "k46");
        let c = subnet("subnet-c", "ap-northeast-1c");
        let placement = Placement {
            instance_type: "t3.small".into(),
            subnet: &c,
            legs: vec![],
        };
        let image = image("ami-new", "2026-11-20T00:00:00Z");
        let original = (&failed, &Inherited::default());
        let own = replacement_tags("alarm-1", &failed);
        let req = launch_request(original, &image, &placement, None, &own, "t".into());
        assert_eq!(req.tags.len(), 50);
        assert!(req.tags.iter().any(|t| t.key == TAG_INCIDENT));
        assert!(req.tags.iter().any(|t| t.key == TAG_REPLACES));
    }

    #[test]
    fn client_token_is_bounded_ascii_and_unique_per_attempt() {
        assert_eq!(client_token("abc-123", 0, 0), "abc-123");
        assert_eq!(client_token("abc-123", 0, 1), "abc-123-1");
        assert_eq!(client_token("abc-123", 2, 1), "abc-123-g2-1");
        let long = "x".repeat(100);
        let (t0, t1) = (client_token(&long, 0, 0), client_token(&long, 0, 1));
        let g1 = client_token(&long, 1, 0);
        assert!(t0.len() <= 64 && t1.len() <= 64 && t0 != t1, "{t0} {t1}");
        assert!(g1.len() <= 64 && g1 != t0 && g1 != t1, "{g1}");
        let odd = client_token("ü/ß", 0, 0);
        assert!(
            odd.is_ascii() && !odd.is_empty() && odd.len() <= 64,
            "{odd}"
        );
        assert_eq!(odd, client_token("ü/ß", 0, 0));
    }

    #[test]
    fn launch_attempts_go_through_every_az_before_changing_type() {
        let c = subnet("subnet-c", "ap-northeast-1c");
        let d = subnet("subnet-d", "ap-northeast-1d");
        let order: Vec<(String, String)> = launch_attempts(
            "t3.small",
            &[&c, &d],
            &["t3.medium".into(), "t3.small".into()],
        )
        .into_iter()
        .map(|a| (a.instance_type, a.subnet.id.clone()))
        .collect();
        let expected = [
            ("t3.small", "subnet-c"),
            ("t3.small", "subnet-d"),
            ("t3.medium", "subnet-c"),
            ("t3.medium", "subnet-d"),
        ];
        assert_eq!(order, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn recent_failovers_count_only_replacements_inside_the_window() {
        let mut young = instance("i-young", InstanceState::Stopped, "ap-northeast-1c");
        young.tags.push(Tag::new(TAG_REPLACES, "i-x"));
        young.launch_time = Some(now() - chrono::Duration::minutes(20));
        young.first_launch = Some(now() - chrono::Duration::minutes(20));
        let mut old = young.clone();
        old.id = "i-old".into();
        old.launch_time = Some(now() - chrono::Duration::minutes(90));
        old.first_launch = Some(now() - chrono::Duration::minutes(90));
        let original = instance("i-orig", InstanceState::Stopped, "ap-northeast-1a");
        let w = world(vec![young, old, original]);
        let recent: Vec<&str> = recent_failovers(&w, now(), Duration::from_secs(3600))
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(recent, ["i-young"]);
    }

    #[test]
    fn routes_move_only_when_they_point_at_the_appliance() {
        let cidr: Cidr = "10.242.2.0/24".parse().unwrap();
        let appliance = vec![
            instance("i-old", InstanceState::Stopped, "ap-northeast-1a"),
            instance("i-new", InstanceState::Running, "ap-northeast-1c"),
        ];
        let decide = |target: RouteTarget, blackhole: bool| {
            let r = Route {
                destination: cidr.to_string(),
                target,
                blackhole,
            };
            route_decision(
                "rtb-1",
                &cidr,
                Some(&r),
                &appliance,
                Some("i-old"),
                ("i-new", None),
            )
        };
        assert!(matches!(
            decide(RouteTarget::Instance("i-old".into()), false),
            Decision::Make(Change::ReplaceRoute { .. })
        ));
        assert!(matches!(
            decide(RouteTarget::NetworkInterface("eni-i-old".into()), false),
            Decision::Make(Change::ReplaceRoute { .. })
        ));
        assert!(matches!(
            decide(RouteTarget::Instance("i-gone".into()), true),
            Decision::Make(Change::ReplaceRoute { .. })
        ));
        assert!(matches!(
            decide(RouteTarget::Instance("i-new".into()), false),
            Decision::AlreadyDone(_)
        ));
        assert!(matches!(
            decide(RouteTarget::NetworkInterface("eni-i-new".into()), false),
            Decision::AlreadyDone(_)
        ));
        assert!(matches!(
            decide(RouteTarget::Other("igw-1".into()), false),
            Decision::LeaveAlone(_)
        ));
        assert!(matches!(
            decide(RouteTarget::Instance("i-someone-else".into()), false),
            Decision::LeaveAlone(_)
        ));
        assert!(matches!(
            route_decision(
                "rtb-1",
                &cidr,
                None,
                &appliance,
                Some("i-old"),
                ("i-new", None)
            ),
            Decision::Make(Change::CreateRoute { .. })
        ));
    }

    fn dns() -> DnsRecord {
        DnsRecord {
            zone_id: "Z1".into(),
            name: "ssh.example.com.".into(),
            ttl: 60,
            address: DnsAddress::Private,
        }
    }

    fn record(values: &[&str], ttl: i64) -> RecordSet {
        RecordSet {
            name: "ssh.example.com.".into(),
            ttl: Some(ttl),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            set_identifier: None,
            alias: false,
        }
    }

    #[test]
    fn dns_record_is_upserted_unless_already_right_or_not_ours() {
        let to = || Ok("10.0.2.9".to_owned());
        assert!(matches!(
            dns_decision(&dns(), &[record(&["10.0.2.9"], 60)], to()),
            Decision::AlreadyDone(_)
        ));
        let Decision::Make(Change::UpsertRecord {
            from, to: new, ttl, ..
        }) = dns_decision(&dns(), &[record(&["10.0.1.5"], 60)], to())
        else {
            panic!("expected an UPSERT");
        };
        assert_eq!(
            (from, new, ttl),
            (vec!["10.0.1.5".to_owned()], "10.0.2.9".to_owned(), 60)
        );
        // A TTL other than DNS_TTL is corrected too.
        assert!(matches!(
            dns_decision(&dns(), &[record(&["10.0.2.9"], 300)], to()),
            Decision::Make(_)
        ));
        assert!(matches!(dns_decision(&dns(), &[], to()), Decision::Make(_)));
        let mut failover = record(&["203.0.113.1"], 60);
        failover.set_identifier = Some("primary".into());
        assert!(matches!(
            dns_decision(&dns(), &[failover], to()),
            Decision::LeaveAlone(_)
        ));
        assert!(matches!(
            dns_decision(&dns(), &[], Err("no address".into())),
            Decision::LeaveAlone(_)
        ));
    }

    #[test]
    fn a_failed_look_still_upserts_the_record() {
        let mut w = world(vec![]);
        let mut s = settings();
        s.dns = Some(dns());
        w.dns_records = Some(Err(CloudError::service(
            "ListResourceRecordSets",
            "AccessDenied",
            "no",
        )));
        let mut i = instance("i-new", InstanceState::Running, "ap-northeast-1c");
        i.private_ip = Some("10.0.2.9".into());
        let steps = post_launch(&w, &s, "i-new", Some(&i), None);
        let dns_step = steps.iter().find(|p| p.step == Step::DnsRecord).unwrap();
        assert!(
            matches!(&dns_step.decision, Decision::Make(Change::UpsertRecord { to, .. }) if to == "10.0.2.9"),
            "{dns_step:?}"
        );
    }

    #[test]
    fn public_dns_prefers_the_floating_ip() {
        let mut s = settings();
        s.failover.floating_ip = Some("203.0.113.10".parse().unwrap());
        let mut d = dns();
        d.address = DnsAddress::Public;
        let mut i = instance("i-new", InstanceState::Running, "ap-northeast-1c");
        i.public_ip = Some("198.51.100.7".into());
        i.private_ip = Some("10.0.2.9".into());
        assert_eq!(
            dns_target(&d, &s, "i-new", Some(&i)).unwrap(),
            "203.0.113.10"
        );
        s.failover.floating_ip = None;
        assert_eq!(
            dns_target(&d, &s, "i-new", Some(&i)).unwrap(),
            "198.51.100.7"
        );
        d.address = DnsAddress::Private;
        assert_eq!(dns_target(&d, &s, "i-new", Some(&i)).unwrap(), "10.0.2.9");
        i.public_ip = None;
        d.address = DnsAddress::Public;
        assert!(dns_target(&d, &s, "i-new", Some(&i)).is_err());
    }
}
