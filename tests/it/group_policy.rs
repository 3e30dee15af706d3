//! IAM for many groups: the template's policy, rendered for a deployment with
//! `FailoverGroups`, allows every call the groups' jobs really make, on
//! resources named nothing like the template's Name parameters, once the
//! operator has tagged them `ec2-failover:group`; and it allows none of it on
//! untagged resources, which preflight names before the outage.
//!
//! The calls come from running the jobs (preflight, failover, snapshot,
//! checker-range sync) in-process on the memory fake and reading the
//! recording wrapper's log; each becomes the request(s) IAM authorizes for it
//! (RunInstances: the instance with its request tags, the image, subnet,
//! groups, volume, interface, key pair, the launch-time CreateTags and the
//! instance profile's PassRole), with the tags the resources carry.

use crate::common;
use crate::common::template;

use std::collections::BTreeMap;

use common::REGION;
use common::iam_eval::{ACCOUNT, Policy, Request, glob};
use common::memory_world::{TwoGroups, seed_settings, two_groups};
use ec2_failover::cloud::faults::FaultyCloud;
use ec2_failover::cloud::memory::{MemoryCloud, WorldView};
use ec2_failover::cloud::{Cloud, RouteTarget, TAG_GROUP};
use ec2_failover::{Fleet, Outcome, Report, Response};
use serde_json::{Value, json};

type Recorded = FaultyCloud<MemoryCloud>;

/// The template's policy as deployed for the two groups: the single-appliance
/// parameters keep the names of the seed (sophos, public), which cover
/// neither prod-nat's instance nor its subnets.
fn groups_policy(doc: &str) -> Policy {
    Policy::render(&template(), &deployment(Some(doc)), REGION)
}

fn deployment(groups: Option<&str>) -> Vec<(&str, &str)> {
    let mut p = vec![
        ("InstanceName", "sophos"),
        ("AmiName", "sophos"),
        ("VpcName", "my-vpc"),
        ("SubnetName", "public"),
        ("HealthCheckType", "NONE"),
    ];
    p.extend(groups.map(|g| ("FailoverGroups", g)));
    p
}

/// Tags `ec2-failover:group=<group>` on a group's instance, AMIs, subnets and
/// route table, as docs/configuration.md ("Many appliances") asks the operator
/// to, except on `forgotten`.
fn tag_group(t: &TwoGroups, group: &str, a: &common::memory_world::Appliance, forgotten: &str) {
    let ids = [
        a.instance.as_str(),
        &a.old_ami,
        &a.new_ami,
        &a.subnet_a,
        &a.subnet_c,
        &a.route_table,
    ];
    let ids: Vec<&str> = ids.into_iter().filter(|id| *id != forgotten).collect();
    t.w.cloud.tag(&ids, &[(TAG_GROUP, group)]);
}

fn tag_seed(t: &TwoGroups) {
    let w = &t.w;
    let seed = common::memory_world::Appliance {
        vpc: w.vpc.clone(),
        subnet_a: w.subnet_a.clone(),
        subnet_c: w.subnet_c.clone(),
        igw: w.igw.clone(),
        route_table: w.route_table.clone(),
        security_group: w.security_group.clone(),
        instance: w.sophos.clone(),
        old_ami: w.old_ami.clone(),
        new_ami: w.new_ami.clone(),
        floating_ip: w.floating_ip.clone(),
    };
    tag_group(t, "tokyo-vpn", &seed, "");
}

async fn run(t: &TwoGroups, payload: Value, id: &str) -> Vec<Report> {
    run_on(&t.fleet, payload, id).await
}

async fn run_on(fleet: &Fleet<Recorded>, payload: Value, id: &str) -> Vec<Report> {
    let r = ec2_failover::handle(fleet, &payload, &common::invocation(id))
        .await
        .unwrap_or_else(|e| panic!("{payload}: {e}"));
    match r {
        Response::One(report) => vec![*report],
        Response::PerGroup(per) => per
            .groups
            .into_iter()
            .map(|g| {
                g.report
                    .unwrap_or_else(|| panic!("{}: {:?}", g.group, g.error))
            })
            .collect(),
    }
}

/// What the resources carry, from before and after the runs.
struct Tags(BTreeMap<String, Vec<(String, String)>>);

impl Tags {
    async fn of(cloud: &Recorded, views: &[&WorldView]) -> Tags {
        let mut m = BTreeMap::new();
        for v in views {
            m.extend(v.instances.iter().map(|i| (i.id.clone(), i.tags.clone())));
            m.extend(v.images.iter().map(|i| (i.id.clone(), i.tags.clone())));
            m.extend(v.snapshots.iter().map(|s| (s.id.clone(), s.tags.clone())));
        }
        let cloud = cloud.inner();
        let names = ["public".to_owned(), "private".to_owned()];
        for s in cloud.subnets_named(&names).await.unwrap() {
            m.insert(s.id, s.tags.into_iter().map(|t| (t.key, t.value)).collect());
        }
        for name in &names {
            for r in cloud.route_tables_named(name).await.unwrap() {
                m.insert(r.id, r.tags.into_iter().map(|t| (t.key, t.value)).collect());
            }
        }
        Tags(m)
    }

    fn on(&self, id: &str) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .get(id)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn ec2(kind: &str, id: &str) -> String {
    match kind {
        // Image and snapshot ARNs carry no account.
        "image" | "snapshot" => format!("arn:aws:ec2:{REGION}::{kind}/{id}"),
        _ => format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{id}"),
    }
}

fn on_instance(action: &str, id: &str, tags: &Tags) -> Request {
    Request::new(action, ec2("instance", id)).resource_tags(tags.on(id))
}

/// A ModifyInstanceAttribute or ModifyNetworkInterfaceAttribute that turns
/// source/dest check off, as EC2 gives it to IAM (EC2 User Guide, "ec2:Attribute
/// condition key": the attribute's name, and a Value-only attribute's new value).
fn source_dest_check_off(r: Request) -> Request {
    r.with("ec2:Attribute", "SourceDestCheck")
        .with("ec2:Attribute/SourceDestCheck", "false")
}

/// Everything IAM authorizes for one RunInstances request.
fn launch_requests(l: &ec2_failover::cloud::LaunchRequest, tags: &Tags) -> Vec<Request> {
    let request_tags = || l.tags.iter().map(|t| (t.key.as_str(), t.value.as_str()));
    let run = "ec2:RunInstances";
    let mut out = vec![
        Request::new(run, ec2("instance", "*")).request_tags(request_tags()),
        Request::new(run, ec2("image", &l.image_id)).resource_tags(tags.on(&l.image_id)),
        Request::new(run, ec2("subnet", &l.subnet_id)).resource_tags(tags.on(&l.subnet_id)),
        Request::new(run, ec2("volume", "*")),
        Request::new(run, ec2("network-interface", "*")),
    ];
    out.extend(
        l.security_group_ids
            .iter()
            .map(|g| Request::new(run, ec2("security-group", g))),
    );
    out.extend(
        l.key_name
            .iter()
            .map(|k| Request::new(run, ec2("key-pair", k))),
    );
    for kind in ["instance", "volume"] {
        out.push(
            Request::new("ec2:CreateTags", ec2(kind, "*"))
                .with("ec2:CreateAction", "RunInstances")
                .request_tags(request_tags()),
        );
    }
    if let Some(profile) = &l.iam_instance_profile_arn {
        let name = profile.rsplit('/').next().unwrap_or_default();
        out.push(
            Request::new(
                "iam:PassRole",
                format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            )
            .with("iam:PassedToService", "ec2.amazonaws.com"),
        );
    }
    out
}

/// The tag keys a recorded CreateTags names (`ids with key key`).
fn tagged_keys(target: &str) -> Vec<&str> {
    match target.split_once(" with ") {
        Some((_, keys)) => keys.split(' ').collect(),
        None => Vec::new(),
    }
}

/// The requests of every call in the log, in order.
fn requests(cloud: &Recorded, tags: &Tags, after: &WorldView) -> Vec<Request> {
    let mut launches = cloud.launches().into_iter();
    let mut out = Vec::new();
    for call in cloud.calls() {
        let words: Vec<&str> = call.target.split(' ').collect();
        let first = words.first().copied().unwrap_or_default();
        let op = call.operation;
        let requests = match op {
            "GetCheckerIpRanges" => vec![], // Route 53 does not authorize it
            "GetHealthCheckStatus" | "GetHealthCheck" => vec![Request::new(
                &format!("route53:{op}"),
                format!("arn:aws:route53:::healthcheck/{first}"),
            )],
            "DescribeAlarms" => vec![Request::new(
                "cloudwatch:DescribeAlarms",
                format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{first}"),
            )],
            "DescribeAlarmsForMetric" => {
                vec![Request::new("cloudwatch:DescribeAlarmsForMetric", "*")]
            }
            // Describes, and the account's EBS encryption settings: no resource.
            _ if op.starts_with("Describe") || op.starts_with("GetEbs") => {
                vec![Request::new(&format!("ec2:{op}"), "*")]
            }
            "StopInstances" | "StartInstances" | "TerminateInstances" => {
                vec![on_instance(&format!("ec2:{op}"), first, tags)]
            }
            // The function's one attribute change, with the keys EC2 gives it.
            "ModifyInstanceAttribute" => vec![source_dest_check_off(on_instance(
                "ec2:ModifyInstanceAttribute",
                first,
                tags,
            ))],
            "RunInstances" => launch_requests(&launches.next().expect("a recorded launch"), tags),
            "AssociateAddress" => {
                let instance = words.get(1).map(|s| (*s).to_owned()).or_else(|| {
                    let a = after.addresses.iter().find(|a| a.allocation_id == first);
                    a.and_then(|a| a.instance_id.clone())
                });
                vec![
                    Request::new("ec2:AssociateAddress", ec2("elastic-ip", first)),
                    on_instance("ec2:AssociateAddress", &instance.expect("instance"), tags),
                ]
            }
            "ReplaceRoute" | "CreateRoute" => {
                let action = format!("ec2:{op}");
                let mut r = vec![
                    Request::new(&action, ec2("route-table", first)).resource_tags(tags.on(first)),
                ];
                let target = after.routes.iter().find(|x| {
                    x.table == first && Some(x.destination.as_str()) == words.get(1).copied()
                });
                if let Some(RouteTarget::Instance(id)) = target.map(|x| &x.target) {
                    r.push(on_instance(&action, id, tags));
                }
                r
            }
            "CreateImage" => vec![
                on_instance("ec2:CreateImage", first, tags),
                Request::new("ec2:CreateImage", ec2("image", "*")),
                Request::new("ec2:CreateImage", ec2("snapshot", "*")),
                Request::new("ec2:CreateTags", ec2("image", "*"))
                    .with("ec2:CreateAction", "CreateImage")
                    .request_tags([("Name", "nat"), ("ec2-failover:created-by", "ec2-failover")]),
            ],
            // On an instance: a standby's promotion, or one of the function's
            // marks; the keys it names carry their values afterwards.
            "CreateTags" if first.starts_with("i-") => {
                let keys = tagged_keys(&call.target);
                let added = tags
                    .on(first)
                    .filter(|(k, _)| keys.contains(k))
                    .collect::<Vec<_>>();
                vec![on_instance("ec2:CreateTags", first, tags).request_tags(added)]
            }
            "CreateTags" => words
                .iter()
                .take_while(|w| **w != "with")
                .map(|id| {
                    let kind = if id.starts_with("snap-") {
                        "snapshot"
                    } else {
                        "image"
                    };
                    Request::new("ec2:CreateTags", ec2(kind, id)).request_tags(tags.on(id))
                })
                .collect(),
            "DeregisterImage" | "DeleteSnapshot" => {
                let kind = if op == "DeleteSnapshot" {
                    "snapshot"
                } else {
                    "image"
                };
                vec![
                    Request::new(&format!("ec2:{op}"), ec2(kind, first))
                        .resource_tags(tags.on(first)),
                ]
            }
            "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" => {
                vec![Request::new(
                    &format!("ec2:{op}"),
                    ec2("security-group", first),
                )]
            }
            other => panic!("{other}: teach this test what IAM authorizes for it"),
        };
        out.extend(requests);
    }
    out
}

fn denied<'a>(policy: &Policy, requests: &'a [Request]) -> Vec<&'a Request> {
    requests
        .iter()
        .filter(|r| policy.allows(r).is_none())
        .collect()
}

/// Preflight of every group, a failover of prod-nat, an AMI of every group and
/// the checker-range sync: the calls a deployment of two groups makes.
async fn every_job(t: &TwoGroups) -> Vec<Report> {
    let mut reports = run(t, json!({"action": "preflight"}), "req-1").await;
    let failover = json!({"action": "failover", "group": "prod-nat", "reason": "test"});
    reports.extend(run(t, failover, "req-2").await);
    for group in ["tokyo-vpn", "prod-nat"] {
        let snapshot = json!({"action": "snapshot", "group": group, "reason": "test"});
        reports.extend(run(t, snapshot, &format!("req-3-{group}")).await);
    }
    let sync = json!({"action": "sync-checker-ranges", "group": "tokyo-vpn"});
    reports.extend(run(t, sync, "req-4").await);
    reports
}

#[tokio::test(start_paused = true)]
async fn every_call_of_two_groups_is_allowed_on_their_tagged_resources() {
    let t = two_groups();
    tag_seed(&t);
    tag_group(&t, "prod-nat", &t.nat, "");
    let before = t.w.view();
    let reports = every_job(&t).await;
    let preflight: Vec<_> = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Preflight)
        .collect();
    assert_eq!(preflight.len(), 2);
    for r in &preflight {
        let tag_item = r.steps.iter().find(|s| s.step == "preflight group_tags");
        let tag_item = tag_item.unwrap_or_else(|| panic!("no group_tags item: {r:#?}"));
        assert_eq!(
            tag_item.status,
            ec2_failover::report::StepStatus::Ok,
            "{tag_item:?}"
        );
    }
    assert!(
        reports.iter().any(|r| r.outcome == Outcome::FailedOver),
        "{reports:#?}"
    );
    let after = t.w.view();
    let replacement = after
        .instances
        .iter()
        .find(|i| i.tag("Name") == Some("nat") && i.id != t.nat.instance)
        .expect("a replacement");
    assert_eq!(replacement.tag(TAG_GROUP), Some("prod-nat"), "inherited");
    let new_amis: Vec<_> = after
        .images
        .iter()
        .filter(|i| i.tag("ec2-failover:created-by").is_some())
        .collect();
    assert_eq!(new_amis.len(), 2, "one AMI per group");
    assert!(
        new_amis.iter().all(|i| i.tag(TAG_GROUP).is_some()),
        "{new_amis:?}"
    );

    let tags = Tags::of(&t.cloud, &[&before, &after]).await;
    let requests = requests(&t.cloud, &tags, &after);
    let actions: std::collections::BTreeSet<&str> =
        requests.iter().map(|r| r.action.as_str()).collect();
    for a in [
        "ec2:RunInstances",
        "ec2:StopInstances",
        "ec2:ReplaceRoute",
        "ec2:CreateImage",
        "ec2:AssociateAddress",
        "iam:PassRole",
        "route53:GetHealthCheckStatus",
        "ec2:AuthorizeSecurityGroupIngress",
    ] {
        assert!(actions.contains(a), "the jobs made no {a}: {actions:?}");
    }
    let policy = groups_policy(&t.doc);
    let denied = denied(&policy, &requests);
    assert!(denied.is_empty(), "the groups' policy denies {denied:#?}");
}

#[tokio::test(start_paused = true)]
async fn untagged_resources_are_denied_and_preflight_names_them() {
    let t = two_groups();
    tag_seed(&t);
    // The operator forgot the NAT's other-AZ subnet.
    tag_group(&t, "prod-nat", &t.nat, &t.nat.subnet_c);
    let before = t.w.view();
    let reports = run(
        &t,
        json!({"action": "preflight", "group": "prod-nat"}),
        "req-1",
    )
    .await;
    let item = reports[0]
        .steps
        .iter()
        .find(|s| s.step == "preflight group_tags")
        .unwrap();
    assert_eq!(
        item.status,
        ec2_failover::report::StepStatus::Failed,
        "{item:?}"
    );
    assert!(item.detail.contains(&t.nat.subnet_c), "{item:?}");
    let tags = Tags::of(&t.cloud, &[&before]).await;
    let requests = requests(&t.cloud, &tags, &before);
    let policy = groups_policy(&t.doc);
    let denied: Vec<String> = denied(&policy, &requests)
        .iter()
        .map(|r| r.resource.clone())
        .collect();
    assert_eq!(
        denied,
        [ec2("subnet", &t.nat.subnet_c)],
        "only the launch into the untagged subnet"
    );
}

#[test]
fn without_group_tags_the_single_appliance_policy_would_deny_a_group() {
    // The policy before groups were authorized by tag: Name conditions of the
    // single appliance. A NAT instance named `nat` is outside them.
    let policy = Policy::render(&template(), &deployment(None), REGION);
    let stop = Request::new("ec2:StopInstances", ec2("instance", "i-nat"))
        .resource_tags([("Name", "nat"), (TAG_GROUP, "prod-nat")]);
    assert!(policy.allows(&stop).is_none());
    let sophos = Request::new("ec2:StopInstances", ec2("instance", "i-1"))
        .resource_tags([("Name", "sophos")]);
    assert_eq!(
        policy.allows(&sophos).map(|s| s.sid.as_str()),
        Some("ActOnTheApplianceOnly")
    );
    // With groups, the tag (not the name) decides, and an empty tag is none.
    let groups = Policy::render(&template(), &deployment(Some("[]")), REGION);
    assert!(groups.allows(&stop).is_some());
    let untagged = Request::new("ec2:StopInstances", ec2("instance", "i-1"))
        .resource_tags([("Name", "sophos"), (TAG_GROUP, "")]);
    assert!(groups.allows(&untagged).is_none());
}

#[test]
fn the_evaluator_globs_as_iam_does() {
    assert!(glob(
        "arn:aws:ec2:*:1:instance/*",
        "arn:aws:ec2:x:1:instance/i-1",
        false
    ));
    assert!(!glob(
        "arn:aws:ec2:*:1:instance/*",
        "arn:aws:ec2:x:2:instance/i-1",
        false
    ));
    assert!(glob("?*", "a", false));
    assert!(!glob("?*", "", false));
    assert!(glob("ec2:describe*", "ec2:DescribeVpcs", true));
}

#[tokio::test(start_paused = true)]
async fn every_call_of_a_single_appliance_is_allowed_by_its_names() {
    // The same calls with the single-appliance policy: Name conditions, no
    // group tags anywhere.
    let w = common::memory_world::seed_world();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let fleet = common::memory_world::single(cloud.clone(), seed_settings(&w, &[]));
    let before = w.view();
    run_on(&fleet, json!({"action": "preflight"}), "req-1").await;
    let failover = json!({"action": "failover", "reason": "test"});
    let r = run_on(&fleet, failover, "req-2").await;
    assert_eq!(r[0].outcome, Outcome::FailedOver, "{r:#?}");
    run_on(
        &fleet,
        json!({"action": "snapshot", "reason": "test"}),
        "req-3",
    )
    .await;
    let after = w.view();
    let tags = Tags::of(&cloud, &[&before, &after]).await;
    let requests = requests(&cloud, &tags, &after);
    assert!(requests.iter().any(|r| r.action == "ec2:RunInstances"));
    let policy = Policy::render(&template(), &deployment(None), REGION);
    let denied = denied(&policy, &requests);
    assert!(
        denied.is_empty(),
        "the single appliance's policy denies {denied:#?}"
    );
}

#[test]
fn a_group_may_upsert_its_a_record_in_any_zone_and_nothing_else() {
    let groups = Policy::render(&template(), &deployment(Some("[]")), REGION);
    let change = |action: &str, kind: &str| {
        Request::new(
            "route53:ChangeResourceRecordSets",
            "arn:aws:route53:::hostedzone/Z9",
        )
        .with("route53:ChangeResourceRecordSetsActions", action)
        .with("route53:ChangeResourceRecordSetsRecordTypes", kind)
        .with(
            "route53:ChangeResourceRecordSetsNormalizedRecordNames",
            "vpn.example.com",
        )
    };
    assert!(groups.allows(&change("UPSERT", "A")).is_some());
    assert!(groups.allows(&change("DELETE", "A")).is_none());
    assert!(groups.allows(&change("UPSERT", "TXT")).is_none());
    let single = Policy::render(&template(), &deployment(None), REGION);
    assert!(
        single.allows(&change("UPSERT", "A")).is_none(),
        "no DnsZoneId: no DNS grant"
    );
}

#[tokio::test(start_paused = true)]
async fn every_standby_call_is_allowed_and_only_on_a_standby() {
    // A warm standby's whole life: launched, stopped once it runs, started
    // and tagged by the failover, and the next one launched after it.
    let w = common::memory_world::seed_world();
    let cloud = FaultyCloud::new(w.cloud.clone());
    let settings = seed_settings(&w, &[("STANDBY", "warm")]);
    let fleet = common::memory_world::single(cloud.clone(), settings);
    let before = w.view();
    run_on(
        &fleet,
        json!({"action": "standby", "reason": "test"}),
        "req-1",
    )
    .await;
    let failover = json!({"action": "failover", "reason": "test"});
    let r = run_on(&fleet, failover, "req-2").await;
    assert_eq!(r[0].outcome, Outcome::FailedOver, "{r:#?}");
    let after = w.view();
    let tags = Tags::of(&cloud, &[&before, &after]).await;
    let requests = requests(&cloud, &tags, &after);
    let actions: std::collections::BTreeSet<&str> =
        requests.iter().map(|r| r.action.as_str()).collect();
    for a in [
        "ec2:StartInstances",
        "ec2:CreateTags",
        "ec2:StopInstances",
        "ec2:RunInstances",
    ] {
        assert!(actions.contains(a), "no {a}: {actions:?}");
    }
    let policy = Policy::render(&template(), &deployment(None), REGION);
    let denied = denied(&policy, &requests);
    assert!(denied.is_empty(), "the policy denies {denied:#?}");
    // Never the appliance: it carries no standby tag.
    for action in ["ec2:TerminateInstances", "ec2:StartInstances"] {
        let on_appliance = on_instance(action, &w.sophos, &tags);
        assert!(
            policy.allows(&on_appliance).is_none(),
            "{action} on the appliance"
        );
    }
    // A promotion may add only its own tags.
    let standby_id = r[0].new_instance.clone().expect("the promoted standby");
    let renamed = on_instance("ec2:CreateTags", &standby_id, &tags).request_tags([("Name", "x")]);
    assert!(
        policy.allows(&renamed).is_none(),
        "a promotion that renames"
    );
}

#[test]
fn the_appliance_may_be_marked_with_the_incidents_marks_only() {
    use ec2_failover::cloud::{TAG_HANDED_OVER, TAG_MOVED_AT, TAG_REPLACES};
    let policy = Policy::render(&template(), &deployment(None), REGION);
    let mark = |id: &str, name: &str, key: &str| {
        Request::new("ec2:CreateTags", ec2("instance", id))
            .resource_tags([("Name", name)])
            .request_tags([(key, "2026-11-21T09:00:00Z")])
    };
    for key in [TAG_MOVED_AT, TAG_HANDED_OVER] {
        assert_eq!(
            policy
                .allows(&mark("i-1", "sophos", key))
                .map(|s| s.sid.as_str()),
            Some("MarkTheAppliance"),
            "{key}"
        );
        assert!(
            policy.allows(&mark("i-web", "web", key)).is_none(),
            "{key} on another instance"
        );
    }
    // Not the tags the fence and the failover trust, nor its name.
    for key in [
        TAG_REPLACES,
        "Name",
        "ec2-failover:standby",
        "ec2-failover:image-reboot",
    ] {
        assert!(
            policy.allows(&mark("i-1", "sophos", key)).is_none(),
            "{key} on the appliance"
        );
    }
}

#[test]
fn the_tag_guard_lets_only_the_functions_role_write_or_remove_its_tags() {
    let rendered = common::iam_eval::output(&template(), &deployment(None), "TagGuardPolicy");
    let text = rendered.and_then(|v| v.as_str().map(str::to_owned));
    // JSON is YAML: the evaluator reads the policy document as it is.
    let scp: serde_yaml::Value =
        serde_yaml::from_str(&text.expect("the output is text")).expect("the guard is a policy");
    let statements = scp["Statement"].as_sequence().expect("statements");
    assert_eq!(statements.len(), 1, "{scp:?}");
    assert_eq!(statements[0]["Effect"].as_str(), Some("Deny"));
    let guard = Policy::of(statements);
    let developer = format!("arn:aws:iam::{ACCOUNT}:role/developer");
    let function = "<FailoverFunctionRole.Arn>";
    let denied = |action: &str, who: &str, key: &str| {
        let request = Request::new(action, ec2("instance", "i-1"))
            .with("aws:PrincipalArn", who)
            .with("aws:TagKeys", key);
        guard.denies(&request)
    };
    for action in ["ec2:CreateTags", "ec2:DeleteTags"] {
        assert!(
            denied(action, &developer, "ec2-failover:standby"),
            "{action}"
        );
        assert!(
            denied(action, &developer, "ec2-failover:replaces"),
            "{action}"
        );
        assert!(
            !denied(action, &developer, "Name"),
            "{action}: other tags are free"
        );
        assert!(
            !denied(action, function, "ec2-failover:standby"),
            "{action}: the function may"
        );
    }
}

#[test]
fn the_role_passes_only_the_appliances_role_opens_only_the_checker_group_and_marks_only_new_amis() {
    let role = format!("arn:aws:iam::{ACCOUNT}:role/sophos-instance");
    let checker = "sg-0123456789abcdef0";
    let mut params = deployment(None);
    params.extend([
        ("InstanceRoleArns", role.as_str()),
        ("CheckerSecurityGroup", checker),
    ]);
    let narrow = Policy::render(&template(), &params, REGION);
    let by_default = Policy::render(&template(), &deployment(None), REGION);
    let passes = |p: &Policy, arn: &str, service: &str| {
        let r = Request::new("iam:PassRole", arn).with("iam:PassedToService", service);
        p.allows(&r).is_some()
    };
    let admin = format!("arn:aws:iam::{ACCOUNT}:role/admin");
    assert!(passes(&narrow, &role, "ec2.amazonaws.com"));
    assert!(
        !passes(&narrow, &admin, "ec2.amazonaws.com"),
        "another role"
    );
    assert!(
        !passes(&narrow, &role, "lambda.amazonaws.com"),
        "another service"
    );
    assert!(
        passes(&by_default, &admin, "ec2.amazonaws.com"),
        "unset: any role, to EC2"
    );
    assert!(!passes(&by_default, &admin, "lambda.amazonaws.com"));

    for action in [
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress",
    ] {
        let on = |sg: &str| narrow.allows(&Request::new(action, ec2("security-group", sg)));
        assert!(on(checker).is_some(), "{action} on the checker group");
        assert!(
            on("sg-0fedcba9876543210").is_none(),
            "{action} on another group"
        );
    }
    let mut by_name = deployment(None);
    by_name.push(("CheckerSecurityGroup", "route53-checkers"));
    let by_name = Policy::render(&template(), &by_name, REGION);
    let any = Request::new(
        "ec2:AuthorizeSecurityGroupIngress",
        ec2("security-group", "sg-1"),
    );
    assert!(
        by_name.allows(&any).is_some(),
        "a group given by name: any (as documented)"
    );

    let mark = |p: &Policy, at: Option<&str>| {
        let r = Request::new("ec2:CreateTags", ec2("image", "ami-1"))
            .request_tags([("ec2-failover:created-by", "ec2-failover")]);
        let r = match at {
            Some(action) => r.with("ec2:CreateAction", action),
            None => r,
        };
        p.allows(&r).is_some()
    };
    assert!(
        mark(&by_default, Some("CreateImage")),
        "a new AMI is marked at creation"
    );
    assert!(
        !mark(&by_default, None),
        "an existing AMI cannot be made the tool's"
    );
}

#[test]
fn with_hosted_zone_ids_the_groups_may_change_records_in_those_zones_only() {
    let mut params = deployment(Some("[]"));
    params.push(("HostedZoneIds", "Z1,Z2"));
    let listed = Policy::render(&template(), &params, REGION);
    let upsert = |zone: &str| {
        Request::new(
            "route53:ChangeResourceRecordSets",
            format!("arn:aws:route53:::hostedzone/{zone}"),
        )
        .with("route53:ChangeResourceRecordSetsActions", "UPSERT")
        .with("route53:ChangeResourceRecordSetsRecordTypes", "A")
    };
    let list = |zone: &str| {
        Request::new(
            "route53:ListResourceRecordSets",
            format!("arn:aws:route53:::hostedzone/{zone}"),
        )
    };
    for zone in ["Z1", "Z2"] {
        assert!(listed.allows(&upsert(zone)).is_some(), "{zone}");
        assert!(listed.allows(&list(zone)).is_some(), "{zone}");
    }
    assert!(listed.allows(&upsert("Z3")).is_none(), "a zone not listed");
    assert!(listed.allows(&list("Z3")).is_none(), "a zone not listed");
}

#[test]
fn with_allowed_regions_the_groups_ec2_calls_reach_those_regions_only() {
    let stop_in = |p: &Policy, region: &str| {
        let r = Request::new(
            "ec2:StopInstances",
            format!("arn:aws:ec2:{region}:{ACCOUNT}:instance/i-1"),
        )
        .resource_tags([("ec2-failover:group", "prod-nat")])
        .with("aws:RequestedRegion", region);
        p.allows(&r).is_some()
    };
    let everywhere = groups_policy("[]");
    assert!(stop_in(&everywhere, "eu-west-1"), "unset: every region");
    let mut params = deployment(Some("[]"));
    params.push(("AllowedRegions", "ap-northeast-1,us-east-1"));
    let listed = Policy::render(&template(), &params, REGION);
    assert!(stop_in(&listed, "ap-northeast-1"));
    assert!(stop_in(&listed, "us-east-1"));
    assert!(!stop_in(&listed, "eu-west-1"), "a region not listed");
    // The single appliance's grants name its region already; no Deny there.
    let mut single = deployment(None);
    single.push(("AllowedRegions", "us-east-1"));
    let single = Policy::render(&template(), &single, REGION);
    let mine = Request::new("ec2:DescribeInstances", "*").with("aws:RequestedRegion", REGION);
    assert!(single.allows(&mine).is_some());
}

#[test]
fn the_appliances_attributes_change_only_as_far_as_source_dest_check_off() {
    let policy = Policy::render(&template(), &deployment(None), REGION);
    let appliance = [("Name", "sophos")];
    let modify = |action: &str, kind: &str, keys: &[(&str, &str)]| {
        let r = Request::new(action, ec2(kind, "x-1")).resource_tags(appliance);
        keys.iter().fold(r, |r, (k, v)| r.with(k, *v))
    };
    let mia = "ec2:ModifyInstanceAttribute";
    let off = source_dest_check_off(modify(mia, "instance", &[]));
    assert!(policy.allows(&off).is_some(), "the function's own change");
    // Either key alone, or none (if EC2 ever leaves them out), still fails over.
    for keys in [
        &[("ec2:Attribute/SourceDestCheck", "false")][..],
        &[("ec2:Attribute", "sourceDestCheck")],
        &[],
    ] {
        let r = modify(mia, "instance", keys);
        assert!(policy.allows(&r).is_some(), "allowed with {keys:?}");
    }
    for (what, keys) in [
        (
            "user data, by its value",
            &[("ec2:Attribute/UserData", "IyEvYmluL3No")][..],
        ),
        (
            "user data, by name",
            &[
                ("ec2:Attribute", "userData"),
                ("ec2:Attribute/UserData", "x"),
            ],
        ),
        (
            "the instance type",
            &[
                ("ec2:Attribute", "InstanceType"),
                ("ec2:Attribute/InstanceType", "p5.48xlarge"),
            ],
        ),
        (
            "termination protection",
            &[("ec2:Attribute", "DisableApiTermination")],
        ),
        (
            "source/dest check back on",
            &[("ec2:Attribute/SourceDestCheck", "true")],
        ),
    ] {
        assert!(
            policy.allows(&modify(mia, "instance", keys)).is_none(),
            "{what} is denied"
        );
    }
    // Security groups and volumes are authorized on those resources: never granted.
    assert!(policy.allows(&modify(mia, "security-group", &[])).is_none());
    assert!(policy.allows(&modify(mia, "volume", &[])).is_none());

    let leg = "ec2:ModifyNetworkInterfaceAttribute";
    let leg_off = source_dest_check_off(modify(leg, "network-interface", &[]));
    assert!(
        policy.allows(&leg_off).is_some(),
        "a leg's source/dest check"
    );
    let described = modify(
        leg,
        "network-interface",
        &[("ec2:Attribute", "description")],
    );
    assert!(
        policy.allows(&described).is_none(),
        "a leg's other attributes"
    );
}
