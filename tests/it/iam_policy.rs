//! The function's IAM policy in `template.yaml` grants exactly the AWS operations
//! the code calls: every call is allowed (or the function fails in AWS with
//! AccessDenied, which no emulator test would notice) and nothing else is (least
//! privilege). The operations are derived from the source, not listed by hand, so
//! a new SDK call without its permission fails here; and they are the table of
//! operations (`src/cloud/operation.rs`) that errors, dry runs and the fault
//! wrapper name, so that table cannot miss a call or keep one no longer made.

use crate::common::template;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ec2_failover::cloud::Operation;
use serde_yaml::Value;

/// The one module that calls the AWS SDK (DESIGN.md: the `Cloud` trait's adapter).
const SDK_ADAPTER: &str = "src/cloud/sdk";

/// Fields of `SdkCloud` holding an SDK client, and the IAM service prefix of each.
const CLIENTS: &[(&str, &str)] = &[
    ("client", "ec2"),
    ("route53", "route53"),
    ("cloudwatch", "cloudwatch"),
    ("dynamodb", "dynamodb"),
    ("sns", "sns"),
    ("eventbridge", "events"),
];

/// Methods of an SDK client (or its configuration) that are not API operations.
const NOT_OPERATIONS: &[&str] = &["clone", "config", "to_builder"];

/// Permissions AWS checks for a call beyond the call's own action. Each is granted
/// only while the operation that needs it is called, and the reason is checked in
/// the source too (the parameter that triggers it).
const IMPLIED: &[Implied] = &[
    Implied {
        actions: &[
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:GenerateDataKeyWithoutPlaintext",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
        ],
        by: "ec2:RunInstances",
        when_source_has: ".image_id(",
        why: "launching from an AMI whose snapshots use a customer-managed KMS key \
              needs the caller's KMS permissions (only on KmsKeyArns; CreateGrant only \
              with kms:GrantIsForAWSResource)",
    },
    Implied {
        actions: &["ec2:CreateTags"],
        by: "ec2:RunInstances",
        when_source_has: ".tag_specifications(",
        why: "RunInstances with TagSpecifications is authorized as CreateTags too \
              (the policy limits it with ec2:CreateAction = RunInstances)",
    },
    Implied {
        actions: &["iam:PassRole"],
        by: "ec2:RunInstances",
        when_source_has: ".set_iam_instance_profile(",
        why: "launching with an instance profile passes its role to EC2 \
              (the policy limits it with iam:PassedToService = ec2.amazonaws.com)",
    },
];

/// Operations AWS does not authorize at all, so the policy must not grant them
/// (granting would be a permission that does nothing).
const NOT_AUTHORIZED: &[(&str, &str)] = &[(
    "route53:GetCheckerIpRanges",
    "Route 53 does not perform authorization for this API (GetCheckerIpRanges, API reference)",
)];

struct Implied {
    actions: &'static [&'static str],
    by: &'static str,
    when_source_has: &'static str,
    why: &'static str,
}

/// Every file of the adapter, one after another (sorted, so runs agree).
fn read_adapter() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(SDK_ADAPTER);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `describe_instances` -> `DescribeInstances`, as IAM names the action.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Source without `//` comment lines and without any whitespace, so a call
/// split by rustfmt (`self\n    .client\n    .describe_vpcs()`) reads as one.
fn squeezed(source: &str) -> String {
    source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Every `<client>.<operation>(` of the source (`self.client.…`, or a client
/// bound to that name), as IAM actions, with the number of call sites found.
fn derive_operations(source: &str) -> (BTreeSet<String>, usize) {
    let code = squeezed(source);
    let mut actions = BTreeSet::new();
    let mut sites = 0;
    for (field, service) in CLIENTS {
        let needle = format!("{field}.");
        let whole_word = |at: usize| {
            code[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
        };
        for (at, _) in code
            .match_indices(&needle)
            .filter(|(at, _)| whole_word(*at))
        {
            let rest = &code[at + needle.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.is_empty() || !rest[name.len()..].starts_with('(') {
                continue;
            }
            if NOT_OPERATIONS.contains(&name.as_str()) {
                continue;
            }
            assert!(
                !name.starts_with("wait_until_"),
                "{SDK_ADAPTER} uses the SDK waiter {name}: list the operations it polls here"
            );
            actions.insert(format!("{service}:{}", pascal(&name)));
            sites += 1;
        }
    }
    (actions, sites)
}

/// `!If [cond, a, b]` / `Fn::If`: both branches, since either may be deployed;
/// `!Ref AWS::NoValue` is nothing.
fn branches(v: &Value) -> Vec<&Value> {
    let arms = match v {
        Value::Tagged(t) if t.tag == "If" => Some(&t.value),
        Value::Mapping(m) if m.len() == 1 && m.contains_key("Fn::If") => m.get("Fn::If"),
        Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("AWS::NoValue") => {
            return Vec::new();
        }
        _ => None,
    };
    match arms {
        None => vec![v],
        Some(Value::Sequence(s)) if s.len() == 3 => s[1..].iter().flat_map(branches).collect(),
        Some(other) => panic!("malformed If: {other:?}"),
    }
}

/// The literal strings of a value; `!If` counts both branches, and computed
/// values (`!Sub`, `!Ref`: ARNs made at deploy time) count as none.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(s) => s.iter().flat_map(strings).collect(),
        Value::Tagged(t) if t.tag == "If" => branches(v).into_iter().flat_map(strings).collect(),
        Value::Mapping(m) if m.contains_key("Fn::If") => {
            branches(v).into_iter().flat_map(strings).collect()
        }
        _ => Vec::new(),
    }
}

struct Statement {
    sid: String,
    actions: Vec<String>,
    /// `Resource: "*"` (rather than ARNs).
    any_resource: bool,
}

/// The statements of the function's inline policies (every branch of every `!If`).
fn policy_statements(template: &Value) -> Vec<Statement> {
    let function = &template["Resources"]["FailoverFunction"];
    assert_eq!(
        function["Type"].as_str(),
        Some("AWS::Serverless::Function"),
        "template.yaml has no FailoverFunction"
    );
    let policies = function["Properties"]["Policies"]
        .as_sequence()
        .expect("FailoverFunction has a Policies list");
    let mut out = Vec::new();
    for policy in policies.iter().flat_map(branches) {
        let statements = policy["Statement"].as_sequence().unwrap_or_else(|| {
            panic!(
                "only inline policy documents are checked; SAM policy templates and \
                 managed policies grant what this test cannot see: {policy:?}"
            )
        });
        for st in statements.iter().flat_map(branches) {
            let sid = st["Sid"].as_str().unwrap_or("(no Sid)").to_owned();
            // A Deny grants nothing: it only narrows what the Allows grant
            // (group_policy evaluates it).
            if st["Effect"].as_str() == Some("Deny") {
                continue;
            }
            assert_eq!(st["Effect"].as_str(), Some("Allow"), "statement {sid}");
            assert!(
                st.get("NotAction").is_none() && st.get("NotResource").is_none(),
                "statement {sid}: NotAction/NotResource grant more than they name"
            );
            let actions = strings(&st["Action"]);
            assert!(!actions.is_empty(), "statement {sid} has no Action");
            out.push(Statement {
                sid,
                actions,
                any_resource: strings(&st["Resource"]).iter().any(|r| r == "*"),
            });
        }
    }
    out
}

/// What the policy grants: action -> the statements granting it.
fn granted(statements: &[Statement]) -> BTreeMap<String, Vec<String>> {
    let mut granted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for st in statements {
        for a in &st.actions {
            granted.entry(a.clone()).or_default().push(st.sid.clone());
        }
    }
    granted
}

#[test]
fn sdk_calls_live_only_in_the_adapter() {
    // Any other file using the SDK would make calls this test does not derive.
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR")).join(SDK_ADAPTER);
    fn walk(dir: &Path, adapter: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, adapter, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Configuration types (interceptors, in usage.rs) make no calls.
                let uses_clients = text
                    .lines()
                    .any(|l| l.contains("aws_sdk_") && !l.contains("::config::"));
                if uses_clients && !path.starts_with(adapter) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &adapter,
        &mut found,
    );
    assert!(
        found.is_empty(),
        "AWS SDK used outside {SDK_ADAPTER}: {found:?}"
    );
}

#[test]
fn every_sdk_call_is_seen() {
    // Each operation call ends in one `.send()`: as many sends as call sites found
    // means no call reached the SDK in a way the scan cannot see (an aliased client).
    let source = read_adapter();
    let (actions, sites) = derive_operations(&source);
    // A preflight re-sends a call's builder with DryRun: the same operation,
    // already counted where the builder names it.
    let squeezed = squeezed(&source);
    let sends =
        squeezed.matches(".send()").count() - squeezed.matches(".dry_run(true).send()").count();
    assert!(
        actions.len() >= 10,
        "found only {actions:?} in {SDK_ADAPTER}"
    );
    assert_eq!(
        sites, sends,
        "{SDK_ADAPTER} has {sends} .send() but {sites} `.client.`/`.route53.` operation calls \
         ({actions:?}); call operations as cloud.client.<op>() or cloud.route53.<op>()"
    );
}

#[test]
fn the_operation_table_is_what_the_adapter_calls() {
    let (called, _) = derive_operations(&read_adapter());
    let table: BTreeSet<String> = Operation::ALL
        .iter()
        .map(|op| format!("{}:{}", op.service().iam_prefix(), op.name()))
        .collect();
    let unlisted: Vec<&String> = called.difference(&table).collect();
    let uncalled: Vec<&String> = table.difference(&called).collect();
    assert!(
        unlisted.is_empty() && uncalled.is_empty(),
        "{SDK_ADAPTER} calls {unlisted:?}, which src/cloud/operation.rs does not list; \
         the table lists {uncalled:?}, which {SDK_ADAPTER} never calls"
    );
}

#[test]
fn derivation_reads_rustfmt_line_breaks() {
    let (actions, sites) = derive_operations(
        "let out = self\n    .client\n    .describe_vpcs()\n    .send();\n\
         // self.client.terminate_instances()\n\
         self.route53.get_health_check_status().send();\n\
         let c = self.client.clone();",
    );
    assert_eq!(
        actions.into_iter().collect::<Vec<_>>(),
        ["ec2:DescribeVpcs", "route53:GetHealthCheckStatus"]
    );
    assert_eq!(sites, 2);
}

#[test]
fn policy_grants_exactly_what_the_code_calls() {
    let source = read_adapter();
    let (called, _) = derive_operations(&source);
    let statements = policy_statements(&template());
    let granted = granted(&statements);

    let missing: Vec<&String> = called
        .iter()
        .filter(|a| !granted.contains_key(*a))
        .filter(|a| !NOT_AUTHORIZED.iter().any(|(n, _)| n == a))
        .collect();
    for (action, why) in NOT_AUTHORIZED {
        assert!(
            !granted.contains_key(*action),
            "template.yaml grants {action}, but {why}"
        );
    }
    assert!(
        missing.is_empty(),
        "{SDK_ADAPTER} calls {missing:?} but template.yaml's FailoverFunction policy does not \
         grant them: the function would fail with AccessDenied in AWS"
    );

    let mut unneeded = Vec::new();
    for action in granted.keys() {
        if called.contains(action) {
            continue;
        }
        match IMPLIED
            .iter()
            .find(|i| i.actions.contains(&action.as_str()))
        {
            Some(i) if called.contains(i.by) && source.contains(i.when_source_has) => {
                eprintln!("{action}: granted because {}", i.why);
            }
            Some(i) => unneeded.push(format!(
                "{action} (needed only when {} is called with {})",
                i.by, i.when_source_has
            )),
            None => unneeded.push(action.clone()),
        }
    }
    assert!(
        unneeded.is_empty(),
        "template.yaml grants {unneeded:?}, which {SDK_ADAPTER} never calls: remove them \
         (least privilege), or derive them here if AWS checks them implicitly"
    );
}

#[test]
fn policy_has_no_wildcard_actions_and_scopes_mutations() {
    for st in policy_statements(&template()) {
        for action in &st.actions {
            let (service, name) = action.split_once(':').unwrap_or_else(|| {
                panic!("statement {}: {action:?} is not service:Action", st.sid)
            });
            assert!(
                !service.is_empty() && !name.is_empty() && !action.contains('*'),
                "statement {}: wildcard action {action:?}",
                st.sid
            );
            // Resource "*" only where the action supports no resource-level
            // permissions: the read-only EC2 Describe* calls, the account's
            // EBS encryption settings (GetEbs*: no resource types) and
            // CloudWatch's DescribeAlarmsForMetric (Service Authorization Reference).
            if st.any_resource {
                assert!(
                    (service == "ec2"
                        && (name.starts_with("Describe") || name.starts_with("GetEbs")))
                        || action == "cloudwatch:DescribeAlarmsForMetric",
                    "statement {}: {action} is granted on Resource \"*\"; scope it to ARNs",
                    st.sid
                );
            }
        }
    }
}
