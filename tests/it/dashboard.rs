//! The template's CloudWatch dashboard graphs what the function really emits.
//! A dashboard is a JSON string CloudFormation never checks: a metric renamed
//! in `src/metrics.rs`, an outcome spelled differently or a namespace left
//! unquoted would leave an empty graph that an operator reads as "nothing
//! happened". So the body is rendered here as CloudFormation would (`!Sub`),
//! parsed, and each search is held against the metric names, outcomes and
//! namespace of the code.

use std::collections::BTreeSet;
use std::path::Path;

use ec2_failover::metrics::NAMESPACE;
use ec2_failover::report::Outcome;
use serde_json::Value as Json;
use serde_yaml::Value;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// The dashboard's body with `${...}` rendered: the function's name and region.
fn dashboard_body() -> Json {
    let t: Value = serde_yaml::from_str(&read("template.yaml")).expect("template.yaml is YAML");
    let dashboard = &t["Resources"]["OperationsDashboard"];
    assert_eq!(dashboard["Type"], "AWS::CloudWatch::Dashboard");
    let Value::Tagged(sub) = &dashboard["Properties"]["DashboardBody"] else {
        panic!("DashboardBody is a !Sub")
    };
    assert!(sub.tag == "Sub", "DashboardBody is a !Sub, not {}", sub.tag);
    let text = sub.value.as_str().expect("!Sub of one string");
    let rendered = render(
        text,
        &[
            ("FailoverFunction", "fn-name"),
            ("AWS::Region", "ap-northeast-1"),
        ],
    );
    serde_json::from_str(&rendered).unwrap_or_else(|e| panic!("DashboardBody is not JSON: {e}"))
}

/// `!Sub` as CloudFormation does it; a `${...}` it cannot resolve fails.
fn render(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    assert!(
        !out.contains("${"),
        "an unresolved ${{...}} in the dashboard: {out}"
    );
    out
}

/// The metric names `src/metrics.rs` declares (`put("Name", ...)`).
fn emitted_metrics() -> BTreeSet<String> {
    let code = read("src/metrics.rs");
    let code = code
        .split("#[cfg(test)]")
        .next()
        .expect("code before the tests");
    let names: BTreeSet<String> = code
        .split("put(\n")
        .flat_map(|s| s.split("put("))
        .skip(1)
        .filter_map(|s| s.trim_start().strip_prefix('"')?.split('"').next())
        .map(str::to_owned)
        .collect();
    assert!(
        names.contains("Invocations"),
        "metrics.rs declares {names:?}"
    );
    names
}

fn outcome(o: Outcome) -> String {
    serde_json::to_value(o)
        .expect("an outcome")
        .as_str()
        .expect("a string")
        .to_owned()
}

/// Every SEARCH expression of every graph, with its widget's title.
fn searches(body: &Json) -> Vec<(String, String)> {
    let widgets = body["widgets"].as_array().expect("widgets");
    let mut out = Vec::new();
    for w in widgets.iter().filter(|w| w["type"] == "metric") {
        let title = w["properties"]["title"]
            .as_str()
            .expect("a title")
            .to_owned();
        for row in w["properties"]["metrics"].as_array().expect("metrics") {
            if let Some(e) = row[0]["expression"].as_str() {
                out.push((title.clone(), e.to_owned()));
            }
        }
    }
    out
}

/// `MetricName="X"`, `Outcome="Y"`: the value a search designator asks for.
fn designator<'a>(expression: &'a str, name: &str) -> Option<&'a str> {
    let start = expression.find(&format!("{name}=\""))? + name.len() + 2;
    expression[start..].split('"').next()
}

#[test]
fn every_graph_searches_a_metric_and_outcome_the_function_emits() {
    let body = dashboard_body();
    let (metrics, found) = (emitted_metrics(), searches(&body));
    let schema = format!("'{{\"{NAMESPACE}\",Appliance");
    let outcomes: BTreeSet<String> = [Outcome::FailedOver, Outcome::Fenced].map(outcome).into();
    for (title, e) in &found {
        assert!(
            e.starts_with(&format!("SEARCH({schema}")),
            "{title}: {e} searches another namespace"
        );
        let metric =
            designator(e, "MetricName").unwrap_or_else(|| panic!("{title}: no MetricName"));
        assert!(
            metrics.contains(metric),
            "{title}: {metric} is not one of {metrics:?}"
        );
        if let Some(o) = designator(e, "Outcome") {
            assert!(outcomes.contains(o), "{title}: no outcome is spelled {o}");
            assert!(
                e.contains(",Appliance,Outcome}"),
                "{title}: Outcome needs its dimension"
            );
        }
    }
    let asked: BTreeSet<&str> = found
        .iter()
        .filter_map(|(_, e)| designator(e, "MetricName"))
        .collect();
    for wanted in [
        "Failovers",
        "PlannedMoves",
        "Duration",
        "PreflightFailed",
        "Invocations",
        "FailedInvocations",
    ] {
        assert!(asked.contains(wanted), "the dashboard graphs no {wanted}");
    }
    let asked_outcomes: BTreeSet<&str> = found
        .iter()
        .filter_map(|(_, e)| designator(e, "Outcome"))
        .collect();
    assert_eq!(
        asked_outcomes,
        outcomes.iter().map(String::as_str).collect()
    );
}

#[test]
fn the_dashboard_shows_the_functions_own_errors_in_its_region() {
    let body = dashboard_body();
    let widgets = body["widgets"].as_array().expect("widgets");
    let lambda: Vec<&Json> = widgets
        .iter()
        .filter_map(|w| w["properties"]["metrics"].as_array())
        .flatten()
        .filter(|row| row[0] == "AWS/Lambda")
        .collect();
    let names: BTreeSet<&str> = lambda.iter().filter_map(|r| r[1].as_str()).collect();
    assert!(
        names.contains("Errors") && names.contains("Throttles"),
        "{names:?}"
    );
    assert!(
        lambda
            .iter()
            .all(|r| r[2] == "FunctionName" && r[3] == "fn-name")
    );
    for w in widgets.iter().filter(|w| w["type"] == "metric") {
        assert_eq!(
            w["properties"]["region"], "ap-northeast-1",
            "{}",
            w["properties"]["title"]
        );
    }
}
