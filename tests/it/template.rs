//! template.yaml deploys what the code expects: a parameter for every environment
//! variable `src/config/` reads (and no variable the code ignores), the
//! function's runtime settings, and a `## Parameters` section in
//! docs/configuration.md that lists the template's parameters one to one.
//! The docs that describe it stay walkable too: every relative link in
//! README.md and docs/*.md leads to a file, and heading, that exists.

use crate::common::template;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml::Value;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

fn function_properties(t: &Value) -> &Value {
    &t["Resources"]["FailoverFunction"]["Properties"]
}

/// `"INSTANCE_NAME"`-like string literals of src/config/ outside its tests:
/// the variables the function reads.
fn variables_read_by_config() -> BTreeSet<String> {
    // config/ reads one appliance's variables; groups.rs reads FAILOVER_GROUPS.
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config"))
            .unwrap()
            .map(|e| format!("src/config/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
    files.push("src/groups.rs".to_owned());
    let code: String = files
        .iter()
        .map(|f| read(f).split("#[cfg(test)]").next().unwrap().to_owned())
        .collect();
    code.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() > 2
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// The parameters a value refers to with `!Ref`, in every branch of `!If`.
fn refs(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => {
            t.value.as_str().map(str::to_owned).into_iter().collect()
        }
        Value::Tagged(t) => refs(&t.value),
        Value::Sequence(s) => s.iter().flat_map(refs).collect(),
        Value::Mapping(m) => m.values().flat_map(refs).collect(),
        _ => BTreeSet::new(),
    }
}

/// Parameter -> the variable its Description names (`VAR - meaning`), for the
/// parameters that feed the function's environment.
fn parameter_variables(t: &Value) -> BTreeMap<String, Option<String>> {
    t["Parameters"]
        .as_mapping()
        .expect("template.yaml has Parameters")
        .iter()
        .map(|(name, p)| {
            let name = name.as_str().unwrap().to_owned();
            let description = p["Description"].as_str().unwrap_or_default();
            let variable = description
                .split_once(" - ")
                .map(|(v, _)| v)
                .filter(|v| v.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .map(str::to_owned);
            (name, variable)
        })
        .collect()
}

/// Variables the stack sets from a resource of its own, not from a parameter.
const FROM_RESOURCES: &[(&str, &str)] = &[
    ("LOCK_TABLE", "LockTable"),
    ("NOTIFICATION_TOPIC_ARN", "NotificationTopic"),
];

#[test]
fn environment_matches_the_variables_config_reads() {
    let t = template();
    let env = function_properties(&t)["Environment"]["Variables"]
        .as_mapping()
        .expect("FailoverFunction has Environment.Variables");
    let in_template: BTreeSet<String> =
        env.keys().map(|k| k.as_str().unwrap().to_owned()).collect();
    let read_by_code = variables_read_by_config();
    assert!(read_by_code.contains("INSTANCE_NAME"), "{read_by_code:?}");
    assert_eq!(
        in_template, read_by_code,
        "template.yaml's environment and the variables src/config/ reads differ"
    );

    // Each variable comes from the parameter whose Description names it, or
    // from a resource of the stack.
    let params = parameter_variables(&t);
    for (key, value) in env {
        let variable = key.as_str().unwrap();
        if let Some((_, resource)) = FROM_RESOURCES.iter().find(|(v, _)| *v == variable) {
            assert!(
                refs(value).contains(*resource),
                "{variable} is not {resource}"
            );
            continue;
        }
        let expected: Vec<&String> = params
            .iter()
            .filter(|(_, v)| v.as_deref() == Some(variable))
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            expected.len(),
            1,
            "exactly one parameter's Description must start with `{variable} - `"
        );
        assert!(
            refs(value).contains(expected[0]),
            "{variable} is not set from parameter {}",
            expected[0]
        );
    }
}

#[test]
fn function_runs_as_designed() {
    let t = template();
    let f = &t["Resources"]["FailoverFunction"];
    let p = &f["Properties"];
    assert_eq!(
        f["Metadata"]["BuildMethod"].as_str(),
        Some("rust-cargolambda")
    );
    assert_eq!(
        f["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some("ec2-failover")
    );
    assert_eq!(p["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(p["Architectures"][0].as_str(), Some("arm64"));
    assert_eq!(p["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    // Groups run side by side (a cap only when MaxConcurrency is given); the
    // lease table keeps two jobs off one group.
    let cap = serde_yaml::to_string(&p["ReservedConcurrentExecutions"]).unwrap();
    assert!(
        cap.contains("HasMaxConcurrency") && cap.contains("AWS::NoValue"),
        "{cap}"
    );
    let locks = &t["Resources"]["LockTable"]["Properties"];
    assert_eq!(locks["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        locks["KeySchema"][0]["AttributeName"].as_str(),
        Some("group")
    );
    assert_eq!(
        locks["AttributeDefinitions"][0]["AttributeType"].as_str(),
        Some("S")
    );
    // The role may hold leases in this table only, and do nothing else there.
    let statements = serde_yaml::to_string(&p["Policies"]).unwrap();
    let lease = statements
        .split("- Sid: ")
        .find(|s| s.starts_with("HoldTheGroupsLease"))
        .expect("the lease statement");
    assert!(lease.contains("!GetAtt LockTable.Arn"), "{lease}");
    let dynamodb: Vec<&str> = lease
        .split_whitespace()
        .filter(|w| w.starts_with("dynamodb:"))
        .collect();
    assert_eq!(
        dynamodb,
        [
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem"
        ]
    );
    let ttl = &locks["TimeToLiveSpecification"];
    assert_eq!(
        ttl["AttributeName"].as_str(),
        Some("expires_at"),
        "the lease's expiry"
    );
    assert_eq!(ttl["Enabled"].as_bool(), Some(true));
    let timeout = p["Timeout"].as_u64().expect("Timeout");
    assert!((120..=900).contains(&timeout), "Timeout {timeout}");
    let invoke = &p["EventInvokeConfig"];
    assert!(invoke["MaximumRetryAttempts"].as_u64().is_some());
    // What the function could not report itself; a success is never mailed
    // (tests/it/notifications.rs counts a day's mail).
    assert_eq!(
        invoke["DestinationConfig"]["OnFailure"]["Type"].as_str(),
        Some("SNS")
    );
    assert!(invoke["DestinationConfig"]["OnSuccess"].is_null());
}

/// The doc, and its heading, whose table lists the template's parameters.
const PARAMETERS_DOC: &str = "docs/configuration.md";
const PARAMETERS_HEADING: &str = "Parameters";

/// Rows of docs/configuration.md's "Parameters" table: parameter -> variable cell.
fn documented_parameters() -> BTreeMap<String, String> {
    let doc = read(PARAMETERS_DOC);
    let section = doc
        .split("\n## ")
        .find(|s| s.lines().next() == Some(PARAMETERS_HEADING))
        .unwrap_or_else(|| panic!("{PARAMETERS_DOC} has a `## {PARAMETERS_HEADING}` section"));
    let mut rows = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `Parameter` | `VARIABLE` or - | default | meaning |
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let parameter = cells[1].trim_matches('`').to_owned();
        let variable = cells[2].trim_matches('`').to_owned();
        assert!(
            rows.insert(parameter.clone(), variable).is_none(),
            "{PARAMETERS_DOC} lists parameter {parameter} twice"
        );
    }
    rows
}

#[test]
fn the_configuration_doc_lists_every_parameter_one_to_one() {
    let t = template();
    let params = parameter_variables(&t);
    let documented = documented_parameters();
    let in_template: BTreeSet<&String> = params.keys().collect();
    let in_doc: BTreeSet<&String> = documented.keys().collect();
    assert_eq!(
        in_doc, in_template,
        "{PARAMETERS_DOC}'s {PARAMETERS_HEADING} table and template.yaml's Parameters differ"
    );
    for (parameter, variable) in &params {
        let cell = &documented[parameter];
        match variable {
            Some(v) => assert_eq!(cell, v, "{PARAMETERS_DOC}: {parameter} sets {v}"),
            None => assert!(
                !cell.chars().any(|c| c.is_ascii_uppercase()),
                "{PARAMETERS_DOC}: {parameter} sets no variable, but the table says {cell}"
            ),
        }
    }
}

/// `!If [Condition, a, b]` as (condition, a, b).
fn if_of(v: &Value) -> (String, Value, Value) {
    let Value::Tagged(t) = v else {
        panic!("not an !If: {v:?}")
    };
    assert_eq!(t.tag.to_string(), "!If");
    let s = t.value.as_sequence().expect("!If takes a list");
    (
        s[0].as_str().unwrap().to_owned(),
        s[1].clone(),
        s[2].clone(),
    )
}

#[test]
fn detection_speed_and_standby_choose_as_the_docs_say() {
    let t = template();
    let p = &t["Parameters"];
    let allowed = |name: &str| -> Vec<String> {
        p[name]["AllowedValues"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(allowed("DetectionSpeed"), ["standard", "fast"]);
    assert_eq!(p["DetectionSpeed"]["Default"].as_str(), Some("standard"));
    assert_eq!(allowed("Standby"), ["cold", "warm", "hot"]);
    assert_eq!(p["Standby"]["Default"].as_str(), Some("cold"));
    let fast = &t["Conditions"]["FastDetection"];
    let Value::Tagged(eq) = fast else {
        panic!("{fast:?}")
    };
    assert_eq!(eq.tag.to_string(), "!Equals");
    assert_eq!(eq.value[1].as_str(), Some("fast"));
    let check = &t["Resources"]["ApplianceHealthCheck"]["Properties"]["HealthCheckConfig"];
    let number = |v: &Value| v.as_u64().unwrap();
    let (cond, fast_interval, standard_interval) = if_of(&check["RequestInterval"]);
    assert_eq!(
        (
            cond.as_str(),
            number(&fast_interval),
            number(&standard_interval)
        ),
        ("FastDetection", 10, 30)
    );
    let (cond, fast_failures, standard_failures) = if_of(&check["FailureThreshold"]);
    assert_eq!(
        (
            cond.as_str(),
            number(&fast_failures),
            number(&standard_failures)
        ),
        ("FastDetection", 2, 3)
    );
}

// ----- the docs' links --------------------------------------------------------------
//
// README.md is the front page and docs/ holds the rest: a section that moves
// must take its links along, or a newcomer walks into a dead end.

/// README.md and every docs/*.md, as paths from the crate's root.
fn markdown_docs() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut docs: Vec<String> = std::fs::read_dir(dir)
        .expect("docs/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    docs.insert(0, "README.md".to_owned());
    docs
}

/// The lines of a markdown text outside its fenced code blocks, where `#` and
/// brackets are code, not headings and links.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The anchors GitHub gives a text's headings: lower case, punctuation other
/// than `-` and `_` dropped, spaces as `-`, a repeated one suffixed `-1`, `-2`.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for line in prose(text) {
        let title = line.trim_start_matches('#');
        if title.len() == line.len() || !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let repeats = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(match *repeats {
            0 => slug,
            n => format!("{slug}-{n}"),
        });
        *repeats += 1;
    }
    anchors
}

/// The targets of a text's inline links, `[text](target)`, outside code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let end = rest.find(')').expect("a link's target ends with `)`");
            targets.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_in_the_docs_leads_somewhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dead = Vec::new();
    for doc in markdown_docs() {
        let text = read(&doc);
        let here = Path::new(&doc).parent().unwrap_or(Path::new(""));
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target.as_str(), None),
            };
            // `(#anchor)` is this doc; otherwise the path is from the doc's folder.
            let linked = if file.is_empty() {
                doc.clone()
            } else {
                here.join(file).to_string_lossy().into_owned()
            };
            if !root.join(&linked).exists() {
                dead.push(format!("{doc}: ({target}): no file {linked}"));
                continue;
            }
            if let Some(anchor) = anchor
                && linked.ends_with(".md")
                && !anchors(&read(&linked)).contains(anchor)
            {
                dead.push(format!(
                    "{doc}: ({target}): no heading #{anchor} in {linked}"
                ));
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}
