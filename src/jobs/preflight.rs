//! `preflight`: prove, before the outage, that a failover of the running
//! appliance would work, and change nothing.
//!
//! It looks as a failover does, plans one (the running appliance as the
//! failed instance), and answers a checklist, each item `ok`, `warn` or
//! `failed` with the reason: what was found, how old the AMI is, the health
//! check and its alarm, and the permissions, proven by EC2 itself: every
//! mutating call of a failover (and of a snapshot) is sent with `DryRun=true`,
//! the exact request a failover would send, so IAM, SCPs and the request's own
//! validity answer `DryRunOperation` (ok) or `UnauthorizedOperation` (failed).

mod kms;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::cloud::{
    Alarm, Cidr, Cloud, ImageRequest, Instance, LaunchRequest, Operation, Permission, Probe,
    TAG_GROUP, tag_value,
};
use crate::config::{Settings, Standby};
use crate::engine::{Change, Context, Decision, Step};
use crate::error::FailoverError;
use crate::lookup::{self, Inherited, UserData, World, image_age, inherit, world};
use crate::replacement::{self as plan, Situation};
use crate::report::{Outcome, Report, StepLog, StepStatus};

/// An AMI older than this is worth a warning: the replacement would run
/// stale software and configuration.
const STALE_AMI: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct PreflightRequest {
    pub incident: String,
    /// This function's ARN, when Lambda said (an alarm may invoke it directly).
    pub function_arn: Option<String>,
}

/// One item of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub status: StepStatus,
    pub detail: String,
}

impl Item {
    fn new(name: impl Into<String>, status: StepStatus, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// The calls a failover (and a snapshot) would make, as owned requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Calls {
    pub appliance: String,
    /// Every launch option a failover would try, in its order.
    pub launches: Vec<LaunchRequest>,
    pub address: Option<String>,
    /// What AssociateAddress names: the appliance, or, when it has several
    /// interfaces (EC2 refuses the instance then), the one holding the address.
    pub address_target: String,
    /// The primary interface of an appliance with several: source/dest check
    /// goes by interface then.
    pub primary_interface: Option<String>,
    /// (table, destination, whether the route exists: ReplaceRoute, else
    /// CreateRoute, and what a failover would point it at).
    pub routes: Vec<(String, Cidr, bool, String)>,
    pub image: ImageRequest,
}

impl Calls {
    fn probes(&self) -> Vec<Probe<'_>> {
        let id = self.appliance.as_str();
        let mut probes = vec![Probe::Stop(id)];
        probes.extend(self.launches.iter().map(Probe::Launch));
        probes.push(match &self.primary_interface {
            Some(eni) => Probe::DisableInterfaceSourceDestCheck(eni),
            None => Probe::DisableSourceDestCheck(id),
        });
        probes.extend(self.address.as_deref().map(|a| Probe::AssociateAddress {
            allocation_id: a,
            target: &self.address_target,
        }));
        for (table, destination, exists, target_id) in &self.routes {
            probes.push(match exists {
                true => Probe::ReplaceRoute {
                    table,
                    destination,
                    target_id,
                },
                false => Probe::CreateRoute {
                    table,
                    destination,
                    target_id,
                },
            });
        }
        probes.push(Probe::CreateImage(&self.image));
        probes
    }
}

/// The one live instance of the appliance, or the failed `appliance` item
/// that says why there is not exactly one.
fn the_appliance<'a>(world: &'a World, settings: &Settings) -> Result<&'a Instance, Item> {
    let live: Vec<&Instance> = world
        .instances
        .iter()
        .filter(|i| i.state.is_live())
        .collect();
    let why = match live.as_slice() {
        [one] => return Ok(one),
        [] => format!(
            "no running instance is tagged Name={} in {}",
            settings.appliance.instance_name, world.vpc_id
        ),
        many => {
            let ids: Vec<&str> = many.iter().map(|i| i.id.as_str()).collect();
            format!(
                "{} instances run under the name: {}",
                many.len(),
                ids.join(", ")
            )
        }
    };
    Err(Item::new("appliance", StepStatus::Failed, why))
}

/// Decides, without calling AWS, what the look says of the appliance, its
/// subnets, AMI and routes, and which calls a failover would make.
/// `inherited` is what a failover would read of the appliance before it
/// launches (see [`inherit_item`]).
pub fn checklist(
    world: &World,
    settings: &Settings,
    (incident, inherited): (&str, &Inherited),
    now: DateTime<Utc>,
) -> (Vec<Item>, Option<Calls>) {
    let mut items = vec![Item::new("discovery", StepStatus::Ok, world.summary())];
    let appliance = match the_appliance(world, settings) {
        Ok(one) => one,
        Err(why) => {
            items.push(why);
            return (items, None);
        }
    };
    items.push(Item::new(
        "appliance",
        StepStatus::Ok,
        format!(
            "{} ({}, {})",
            appliance.id, appliance.instance_type, appliance.availability_zone
        ),
    ));
    items.push(ami_item(world, now));
    items.extend(untrusted_item(world));
    let launches = launch_item(
        world,
        settings,
        (appliance, inherited, incident),
        now,
        &mut items,
    );
    let routes = routes(world, settings, appliance);
    items.extend(route_items(&routes));
    items.extend(group_tag_item(world, settings, appliance));
    items.extend(standby_item(world, settings, appliance, now));
    let primary = appliance
        .interface_at(0)
        .filter(|_| appliance.has_several_interfaces());
    let holder = world
        .address
        .as_ref()
        .and_then(|a| a.network_interface_id.as_deref())
        .filter(|eni| primary.is_some() && appliance.device_of(eni).is_some());
    let calls = Calls {
        appliance: appliance.id.clone(),
        launches,
        address: world.address.as_ref().map(|a| a.allocation_id.clone()),
        address_target: holder.or(primary).unwrap_or(&appliance.id).to_owned(),
        primary_interface: primary.map(str::to_owned),
        routes,
        image: image_request(settings, appliance),
    };
    (items, Some(calls))
}

/// With `STANDBY=warm|hot`: the standby a failover would promote, or a
/// warning that it would launch cold instead, and why.
fn standby_item(
    world: &World,
    settings: &Settings,
    appliance: &Instance,
    now: DateTime<Utc>,
) -> Option<Item> {
    let mode = settings.failover.standby;
    if mode == Standby::Cold {
        return None;
    }
    let item = match plan::promotion(world, appliance, "preflight", now) {
        Ok((step, standby)) => {
            let newest = plan::newest_image(&world.images).map(|i| i.id.as_str());
            let stale = match standby.image_id.as_deref() == newest {
                true => "",
                false => "; not from the newest AMI yet (the next upkeep replaces it)",
            };
            let call = match &step.decision {
                Decision::Make(change) => change.describe(),
                _ => String::new(),
            };
            Item::new(
                "standby",
                if stale.is_empty() {
                    StepStatus::Ok
                } else {
                    StepStatus::Warn
                },
                format!(
                    "STANDBY={}: a failover would promote {} ({}, {}): {call}{stale}",
                    mode.as_str(),
                    standby.id,
                    standby.availability_zone,
                    standby.image_id.as_deref().unwrap_or("AMI unknown")
                ),
            )
        }
        Err(why) => Item::new(
            "standby",
            StepStatus::Warn,
            format!(
                "STANDBY={}, but {why}: a failover would launch cold; run {{\"action\": \"standby\"}}",
                mode.as_str()
            ),
        ),
    };
    Some(item)
}

/// AMIs tagged `AMI_NAME` that no failover will launch: EC2 does not say
/// they were made of the appliance or a replacement, and `BASE_AMI_ID` does
/// not name them.
fn untrusted_item(world: &World) -> Option<Item> {
    if world.untrusted_images.is_empty() {
        return None;
    }
    let detail = format!(
        "{}; a failover launches only from an AMI made of the appliance or a replacement (SourceInstanceId), or one BASE_AMI_ID names: if one of these is yours, add it to BASE_AMI_ID",
        plan::untrusted(world)
    );
    Some(Item::new("ami_provenance", StepStatus::Warn, detail))
}

fn ami_item(world: &World, now: DateTime<Utc>) -> Item {
    match plan::newest_image(&world.images) {
        None => Item::new(
            "ami",
            StepStatus::Failed,
            "no available AMI owned by this account is tagged AMI_NAME: a failover cannot launch",
        ),
        Some(image) => {
            let age = image
                .creation_date
                .map(|c| (c, (now - c).to_std().unwrap_or_default()));
            let (status, note) = match age {
                Some((_, a)) if a > STALE_AMI => (
                    StepStatus::Warn,
                    "; older than 7 days: take a fresh one (`snapshot`)",
                ),
                Some(_) => (StepStatus::Ok, ""),
                None => (StepStatus::Warn, "; its creation time is unknown"),
            };
            let when = age.map_or_else(|| "age unknown".to_owned(), |(c, _)| image_age(c, now));
            Item::new("ami", status, format!("{} ({when}){note}", image.id))
        }
    }
}

/// Every launch option of a failover of `appliance` (each AZ, then each
/// fallback type), and the plan's item: preflight proves them all, since a
/// failover moves on to the next when EC2 refuses one.
fn launch_item(
    world: &World,
    settings: &Settings,
    (appliance, inherited, incident): (&Instance, &Inherited, &str),
    now: DateTime<Utc>,
    items: &mut Vec<Item>,
) -> Vec<LaunchRequest> {
    if plan::newest_image(&world.images).is_none() {
        // The ami item says why; nothing to prove RunInstances with.
        items.push(Item::new(
            format!("permission {}", Operation::RunInstances),
            StepStatus::Warn,
            "not proven: no AMI to launch from (see ami)",
        ));
        return Vec::new();
    }
    let situation = Situation::Fresh {
        failed: appliance.clone(),
    };
    // This run's own ClientToken: a dry run launches nothing, but a token is
    // never worth sharing between requests that may differ.
    let incident = plan::Incident {
        id: incident,
        began: now,
    };
    let planned = plan::launch_plan(world, settings, (&situation, inherited), incident, now, 0);
    let launch = match planned.map(|p| p.launch.decision) {
        Ok(Decision::Make(Change::Launch(launch))) => launch,
        Ok(_) => return Vec::new(),
        Err(e) => {
            items.push(Item::new("launch_plan", StepStatus::Failed, e.to_string()));
            return Vec::new();
        }
    };
    let Some(first) = launch.attempts.first() else {
        return Vec::new();
    };
    items.push(Item::new(
        "launch_plan",
        StepStatus::Ok,
        format!(
            "{} launch option(s), first {} in {} ({}){}",
            launch.attempts.len(),
            first.request.instance_type,
            first.request.subnet_id,
            first.availability_zone,
            launch.notes()
        ),
    ));
    launch.attempts.iter().map(|a| a.request.clone()).collect()
}

/// Reads what a failover would read of the appliance before launching (its
/// user data, its CPU credits), so the dry-run RunInstances carries them and
/// a denied DescribeInstanceAttribute shows here, not during the outage.
async fn inherit_item<C: Cloud>(
    cloud: &C,
    world: &World,
    settings: &Settings,
) -> (Inherited, Option<Item>) {
    // Without one live appliance the checklist already fails; nothing to read.
    let Ok(appliance) = the_appliance(world, settings) else {
        return (Inherited::default(), None);
    };
    match inherit::read(cloud, appliance).await {
        Ok(inherited) => {
            let (status, detail) = match &inherited.user_data {
                UserData::Base64(b) => (
                    StepStatus::Ok,
                    format!("user data ({} base64 chars) is copied", b.len()),
                ),
                UserData::Absent => (StepStatus::Ok, "no user data to copy".to_owned()),
                UserData::Unknown(why) => (StepStatus::Warn, why.clone()),
            };
            let credits = inherited
                .cpu_credits
                .as_ref()
                .map(|c| format!("; CPU credits {c}"))
                .unwrap_or_default();
            let item = Item::new("inherit", status, format!("{detail}{credits}"));
            (inherited, Some(item))
        }
        Err(e) => (
            Inherited::default(),
            Some(Item::new("inherit", StepStatus::Failed, e.to_string())),
        ),
    }
}

/// Every `ROUTE_CIDRS` route in every managed table, and whether it exists.
/// Each managed route, and what a failover would point it at, with the
/// appliance in the replacement's place.
fn routes(
    world: &World,
    settings: &Settings,
    appliance: &Instance,
) -> Vec<(String, Cidr, bool, String)> {
    world
        .route_tables
        .iter()
        .flat_map(|t| {
            settings.failover.route_cidrs.iter().map(|c| {
                let route = t.route_to(c);
                let target = route.and_then(|r| r.target.appliance_id());
                let to = plan::route_target_for(
                    target,
                    &world.instances,
                    Some(appliance),
                    &appliance.id,
                );
                (t.id.clone(), *c, route.is_some(), to)
            })
        })
        .collect()
}

fn route_items(routes: &[(String, Cidr, bool, String)]) -> Vec<Item> {
    routes
        .iter()
        .map(|(table, cidr, exists, _)| {
            let name = format!("route {table} {cidr}");
            match exists {
                true => Item::new(name, StepStatus::Ok, "present; a failover re-points it"),
                false => Item::new(
                    name,
                    StepStatus::Warn,
                    "missing; a failover creates it (is ROUTE_CIDRS right?)",
                ),
            }
        })
        .collect()
}

/// What an alarm that reaches neither the function nor its topics leads to.
const UNREACHED: &str =
    "unless an EventBridge rule sends its state changes here, nothing starts a failover";

/// Why an untagged resource of a group fails its preflight.
const ONLY_TAGGED: &str =
    "the policy allows a group's calls only on resources tagged ec2-failover:group";

/// In a `FAILOVER_GROUPS` deployment the policy allows a group's calls only on
/// resources tagged `ec2-failover:group` (template.yaml): a resource without
/// it would meet `UnauthorizedOperation` in the outage. Names what lacks it;
/// a tag naming another group is allowed by IAM but worth a warning.
fn group_tag_item(world: &World, settings: &Settings, appliance: &Instance) -> Option<Item> {
    let group = settings.appliance.group.as_deref()?;
    let mut resources: Vec<(&str, Option<&str>)> = vec![(&appliance.id, appliance.tag(TAG_GROUP))];
    if let Some(image) = plan::newest_image(&world.images) {
        resources.push((&image.id, image.tag(TAG_GROUP)));
    }
    resources.extend(
        world
            .subnets
            .iter()
            .map(|s| (s.id.as_str(), tag_value(&s.tags, TAG_GROUP))),
    );
    resources.extend(
        world
            .route_tables
            .iter()
            .map(|t| (t.id.as_str(), tag_value(&t.tags, TAG_GROUP))),
    );
    let missing: Vec<&str> = resources
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(id, _)| *id)
        .collect();
    let other: Vec<String> = resources
        .iter()
        .filter_map(|(id, v)| v.filter(|v| *v != group).map(|v| format!("{id} ({v})")))
        .collect();
    let item = |status, detail: String| Some(Item::new("group_tags", status, detail));
    if !missing.is_empty() {
        return item(
            StepStatus::Failed,
            format!(
                "{ONLY_TAGGED}; missing on {} (tag them {TAG_GROUP}={group})",
                missing.join(", ")
            ),
        );
    }
    if !other.is_empty() {
        return item(
            StepStatus::Warn,
            format!("tagged for another group: {}", other.join(", ")),
        );
    }
    item(
        StepStatus::Ok,
        format!("{} resources tagged {TAG_GROUP}={group}", resources.len()),
    )
}

/// The alarms found, and whether one of them notifies this function: directly,
/// or through a topic of `ALARM_TOPIC_ARNS`. An alarm that notifies neither
/// starts no failover (unless an EventBridge rule forwards its state changes,
/// which the function cannot see: hence a warning, not a failure).
fn alarm_item(found: &[Alarm], topics: &[String], function_arn: Option<&str>) -> Item {
    let states: Vec<String> = found
        .iter()
        .map(|a| format!("{} is {}", a.name, a.state))
        .collect();
    let states = states.join("; ");
    // An alias or version qualifies the ARN an action or the context names.
    let function = function_arn.map(unqualified);
    let reaches = |action: &String| {
        topics.contains(action) || function.is_some_and(|f| unqualified(action) == f)
    };
    if topics.is_empty() && function.is_none() {
        return Item::new(
            "alarm",
            StepStatus::Ok,
            format!("{states} (its actions not checked: no ALARM_TOPIC_ARNS, no function ARN)"),
        );
    }
    if found.iter().any(|a| a.actions.iter().any(reaches)) {
        return Item::new(
            "alarm",
            StepStatus::Ok,
            format!("{states}; it notifies this function"),
        );
    }
    let actions: Vec<&str> = found
        .iter()
        .flat_map(|a| &a.actions)
        .map(String::as_str)
        .collect();
    Item::new(
        "alarm",
        StepStatus::Warn,
        format!(
            "{states}, but its actions ({}) reach neither this function nor ALARM_TOPIC_ARNS: {UNREACHED}",
            if actions.is_empty() {
                "none".to_owned()
            } else {
                actions.join(", ")
            },
        ),
    )
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`, without `:ALIAS` or `:VERSION`.
fn unqualified(arn: &str) -> &str {
    match arn.match_indices(':').nth(6) {
        Some((at, _)) if arn.contains(":function:") => &arn[..at],
        _ => arn,
    }
}

/// CreateImage as the snapshot job sends it (name aside).
fn image_request(settings: &Settings, appliance: &Instance) -> ImageRequest {
    ImageRequest {
        instance_id: appliance.id.clone(),
        name: format!("{}-preflight", settings.appliance.ami_name),
        description: "ec2-failover preflight (DryRun)".to_owned(),
        no_reboot: settings.stamp.no_reboot,
        tags: lookup::image_tags(&settings.appliance.ami_name, appliance),
    }
}

/// Each probe's answer as an item. A refused launch option after the first
/// is a warning: a failover reaches it only when the ones before it have no
/// capacity, and then passes it over too (or stops at it, if denied).
async fn prove<C: Cloud>(cloud: &C, calls: &Calls) -> Vec<Item> {
    let probes = calls.probes();
    let answers = futures::future::join_all(probes.iter().map(|p| cloud.probe(*p))).await;
    let first_launch = probes.iter().position(|p| matches!(p, Probe::Launch(_)));
    probes
        .iter()
        .zip(answers)
        .enumerate()
        .map(|(i, (p, answer))| {
            let name = format!("permission {} {}", p.operation(), p.target());
            let fallback = matches!(p, Probe::Launch(_)) && Some(i) != first_launch;
            let refused = match fallback {
                true => StepStatus::Warn,
                false => StepStatus::Failed,
            };
            match answer {
                Ok(Permission::Allowed) => {
                    Item::new(name, StepStatus::Ok, "DryRunOperation: EC2 would allow it")
                }
                Ok(Permission::Denied(why)) => Item::new(name, refused, why),
                Err(e) => Item::new(name, refused, e.to_string()),
            }
        })
        .collect()
}

/// The health check (when configured) and the alarm the reconcile follows.
async fn watch_items<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    function_arn: Option<&str>,
) -> Vec<Item> {
    let mut items = Vec::new();
    if let Some(id) = &settings.appliance.health_check_id {
        items.push(match cloud.health_check_status(id).await {
            Ok(r) => Item::new(
                "health_check",
                if r.mostly_healthy() {
                    StepStatus::Ok
                } else {
                    StepStatus::Warn
                },
                format!("{id}: {} of {} checkers see it healthy", r.healthy, r.total),
            ),
            Err(e) => Item::new("health_check", StepStatus::Failed, e.to_string()),
        });
    }
    let alarm = match lookup::watch(settings) {
        None => Item::new(
            "alarm",
            StepStatus::Warn,
            "no ALARM_NAME or HEALTH_CHECK_ID: the reconcile cannot follow an alarm",
        ),
        Some(query) => match cloud.alarms(query).await {
            Ok(found) if found.is_empty() => Item::new(
                "alarm",
                StepStatus::Failed,
                format!(
                    "no alarm found for {query:?} in ALARM_REGION: nothing would trigger a failover"
                ),
            ),
            Ok(found) => alarm_item(&found, &settings.appliance.alarm_topic_arns, function_arn),
            Err(e) => Item::new("alarm", StepStatus::Failed, e.to_string()),
        },
    };
    items.push(alarm);
    items
}

/// Looks, plans and proves; changes nothing (its proofs are DryRun calls
/// of their own, not the executor's).
pub async fn run<C: Cloud>(
    ctx: &Context<'_, C>,
    req: &PreflightRequest,
) -> Result<Report, FailoverError> {
    let (cloud, settings) = (ctx.cloud(), ctx.settings);
    let t = Instant::now();
    let watch = watch_items(cloud, settings, req.function_arn.as_deref());
    let (world, watched) = tokio::join!(world::look(cloud, settings), watch);
    let mut items = match world {
        Ok(world) => {
            let (inherited, read) = inherit_item(cloud, &world, settings).await;
            let (mut items, calls) =
                checklist(&world, settings, (&req.incident, &inherited), ctx.now);
            items.extend(read);
            if let Some(calls) = calls {
                items.extend(prove(cloud, &calls).await);
            }
            items.push(kms::kms_item(cloud, &world, settings).await);
            items
        }
        Err(e) => vec![Item::new("discovery", StepStatus::Failed, e.to_string())],
    };
    items.extend(watched);
    let mut log = StepLog::new();
    for item in &items {
        log.record_on(
            Step::Preflight,
            Some(&item.name),
            item.status,
            &item.detail,
            t,
        );
    }
    let count = |s: StepStatus| items.iter().filter(|i| i.status == s).count();
    let reason = format!(
        "preflight: {} ok, {} warn, {} failed",
        count(StepStatus::Ok),
        count(StepStatus::Warn),
        count(StepStatus::Failed)
    );
    Ok(Report {
        old_instance: items
            .iter()
            .find(|i| i.name == "appliance" && i.status == StepStatus::Ok)
            .and_then(|i| i.detail.split_whitespace().next().map(str::to_owned)),
        ..Report::new(
            Outcome::Preflight,
            &req.incident,
            reason,
            log.into_records(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(actions: &[&str]) -> Alarm {
        Alarm {
            name: "sophos-health".into(),
            arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:sophos-health".into(),
            state: "OK".into(),
            reason: None,
            transitioned_at: None,
            updated_at: None,
            health_check_id: None,
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:health";
    const FUNCTION: &str = "arn:aws:lambda:ap-northeast-1:123456789012:function:ec2-failover";

    #[test]
    fn an_alarm_reaches_the_function_through_a_topic_or_directly_under_any_alias() {
        let via_topic = alarm_item(&[alarm(&[TOPIC])], &[TOPIC.to_owned()], None);
        assert_eq!(via_topic.status, StepStatus::Ok, "{via_topic:?}");
        let live = format!("{FUNCTION}:live");
        let direct = alarm_item(&[alarm(&[FUNCTION])], &[], Some(&live));
        assert_eq!(direct.status, StepStatus::Ok, "{direct:?}");
        let version = format!("{FUNCTION}:7");
        let aliased = alarm_item(&[alarm(&[&version])], &[], Some(FUNCTION));
        assert_eq!(aliased.status, StepStatus::Ok, "{aliased:?}");
    }

    #[test]
    fn an_alarm_that_notifies_elsewhere_is_a_warning_naming_its_actions() {
        let other = "arn:aws:sns:us-east-1:123456789012:ops-pager";
        let item = alarm_item(&[alarm(&[other])], &[TOPIC.to_owned()], Some(FUNCTION));
        assert_eq!(item.status, StepStatus::Warn);
        assert!(item.detail.contains(other), "{item:?}");
        let silent = alarm_item(&[alarm(&[])], &[TOPIC.to_owned()], None);
        assert_eq!(silent.status, StepStatus::Warn);
        assert!(silent.detail.contains("(none)"), "{silent:?}");
        let unchecked = alarm_item(&[alarm(&[other])], &[], None);
        assert_eq!(unchecked.status, StepStatus::Ok, "nothing to compare with");
        assert!(unchecked.detail.contains("not checked"), "{unchecked:?}");
    }
}
