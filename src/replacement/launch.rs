//! The replacement's launch: what it inherits, which AMI, which placements
//! (AZ, type, legs) in which order, its tags and its ClientTokens; and the
//! stop of the failed instance that goes with it.

use chrono::{DateTime, Utc};

use crate::cloud::provenance::{self, Role};
use crate::cloud::{
    Image, Instance, LaunchInterface, LaunchRequest, Subnet, TAG_GROUP, TAG_INCIDENT, TAG_REPLACES,
    TAG_STANDBY, Tag, is_burstable, tag_value,
};
use crate::config::Settings;
use crate::engine::{Change, Decision, Launch, LaunchAttempt, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup::{Inherited, UserData, World, image_age};

use super::Incident;

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

/// The name of one launch attempt, which its ClientToken digests
/// ([`provenance::token`]): stable per incident, generation and attempt.
/// Each attempt needs its own token: EC2 rejects a token reused with other
/// parameters (another AZ or type), and keeps a token at least 24 h after its
/// instance terminated (`IdempotentInstanceTerminated`): a new generation
/// starts fresh tokens.
pub fn attempt_name(incident: &str, generation: u32, attempt: usize) -> String {
    match (generation, attempt) {
        (0, 0) => incident.to_owned(),
        (0, n) => format!("{incident}-{n}"),
        (g, n) => format!("{incident}-g{g}-{n}"),
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

/// The AMI an incident launches from: the newest available one created by
/// the time the incident began. Every try of one incident (Lambda's
/// retries, a redelivery, the reconcile) then sends RunInstances the same
/// image under the same ClientToken: an AMI the schedule takes mid-incident
/// would change the parameters, and EC2 refuses a token reused with other
/// parameters (`IdempotentParameterMismatch`), which would leave the incident
/// stuck. With no AMI that old (the first one is being taken), the newest.
pub fn incident_image(images: &[Image], began: DateTime<Utc>) -> Option<&Image> {
    let by_then: Vec<Image> = images
        .iter()
        .filter(|i| i.creation_date.is_some_and(|c| c <= began))
        .cloned()
        .collect();
    let chosen = newest_image(&by_then).or_else(|| newest_image(images))?;
    images.iter().find(|i| i.id == chosen.id)
}

/// The newest available AMI, which a launch needs (`what` says for what).
pub fn newest_required<'a>(
    world: &'a World,
    settings: &Settings,
    what: &str,
) -> Result<&'a Image, FailoverError> {
    newest_image(&world.images).ok_or_else(|| {
        let skipped = match world.untrusted_images.is_empty() {
            true => String::new(),
            false => format!(" (skipped: {}; BASE_AMI_ID vouches for one)", untrusted(world)),
        };
        FailoverError::Missing {
            what: format!(
                "no available AMI owned by this account is tagged Name={} (AMI_NAME) and made of the appliance or a replacement{what}{skipped}",
                settings.appliance.ami_name
            ),
        }
    })
}

/// The AMIs set apart as untrusted, each with what EC2 says it was made of.
pub fn untrusted(world: &World) -> String {
    let each: Vec<String> = world
        .untrusted_images
        .iter()
        .map(|i| {
            let of = i.source_instance_id.as_deref().map_or_else(
                || "not made by CreateImage".to_owned(),
                |s| format!("made of {s}, not of the appliance or a replacement"),
            );
            format!("{} ({of})", i.id)
        })
        .collect();
    format!("untrusted AMI(s) tagged AMI_NAME: {}", each.join(", "))
}

/// RunInstances of a replacement for `original` from the incident's AMI
/// ([`incident_image`]), with this incident's tags and this round's tokens;
/// and that AMI.
pub(super) fn replacement_launch<'a>(
    world: &'a World,
    settings: &Settings,
    original: (&Instance, &Inherited),
    (incident, generation): (Incident<'_>, u32),
    now: DateTime<Utc>,
) -> Result<(Launch, &'a Image), FailoverError> {
    let image = match incident_image(&world.images, incident.began) {
        Some(image) => image,
        None => newest_required(world, settings, "")?,
    };
    let own = replacement_tags(incident.id, original.0);
    let launch = launch_change(
        world,
        settings,
        (original, &own),
        image,
        (incident.id, generation),
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
    let standby = own.iter().any(|t| t.key == TAG_STANDBY);
    // The token says what the launch is for; EC2 keeps it for good.
    let role = if standby {
        Role::Standby
    } else {
        Role::Replacement
    };
    let token = |n| provenance::token(role, &failed.id, &attempt_name(seed, generation, n));
    let attempts = placements
        .iter()
        .enumerate()
        .map(|(n, p)| LaunchAttempt {
            request: launch_request((failed, inherited), image, p, groups, own, token(n)),
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
        standby,
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
    (incident, generation): (Incident<'_>, u32),
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

#[cfg(test)]
mod tests {
    use super::super::{Situation, launch_plan};
    use super::*;
    use crate::cloud::{InstanceState, MetadataOptions};
    use crate::test_fixtures::{image, instance, now, settings, subnet, world};

    fn incident(id: &str) -> Incident<'_> {
        Incident { id, began: now() }
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
    fn an_incident_keeps_the_ami_it_began_with_when_a_newer_one_appears() {
        let began = now();
        let before = image("ami-before", "2026-11-20T00:00:00.000Z");
        let older = image("ami-older", "2026-11-01T00:00:00.000Z");
        let mut during = image("ami-during", "2026-11-21T00:00:00.000Z");
        during.creation_date = Some(began + chrono::Duration::minutes(30));
        let images = vec![older.clone(), before.clone(), during.clone()];
        assert_eq!(incident_image(&images, began).unwrap().id, "ami-before");
        // A later incident takes the new one.
        let later = began + chrono::Duration::hours(1);
        assert_eq!(incident_image(&images, later).unwrap().id, "ami-during");
        // With none that old (the first AMI is being taken), the newest.
        assert_eq!(
            incident_image(std::slice::from_ref(&during), began)
                .unwrap()
                .id,
            "ami-during"
        );
        // A pending one is never chosen, however old.
        let mut pending = before;
        pending.state = "pending".into();
        assert_eq!(
            incident_image(&[older, pending], began).unwrap().id,
            "ami-older"
        );
        assert!(incident_image(&[], began).is_none());
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
            attempt_name("alarm-1", 0, 0),
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
            attempt_name("alarm-1", 0, 2),
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
        let plan = launch_plan(
            &w,
            &s,
            (&situation, &inherited),
            incident("alarm-1"),
            now(),
            0,
        )
        .unwrap();
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
            incident("alarm-1"),
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
    fn each_attempt_has_its_own_token_within_ec2s_limit() {
        assert_eq!(attempt_name("abc-123", 0, 0), "abc-123");
        assert_eq!(attempt_name("abc-123", 0, 1), "abc-123-1");
        assert_eq!(attempt_name("abc-123", 2, 1), "abc-123-g2-1");
        let token = |incident: &str, g, n| {
            provenance::token(
                Role::Replacement,
                "i-0123456789abcdef0",
                &attempt_name(incident, g, n),
            )
        };
        for incident in [
            "x".repeat(100).as_str(),
            "ü/ß",
            "alarm-8e245aa99b2ea865cde6",
        ] {
            let tokens = [
                token(incident, 0, 0),
                token(incident, 0, 1),
                token(incident, 1, 0),
            ];
            for t in &tokens {
                assert!(t.is_ascii() && t.len() <= 64, "{t}");
            }
            assert!(tokens[0] != tokens[1] && tokens[1] != tokens[2] && tokens[0] != tokens[2]);
            assert_eq!(tokens[0], token(incident, 0, 0), "stable");
        }
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
}
