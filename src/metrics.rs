//! One CloudWatch Embedded Metric Format (EMF) line per invocation.
//!
//! Printed to stdout as a single JSON object, CloudWatch Logs turns it into
//! metrics without any API call from the function: namespace `ec2-failover`,
//! dimensions `Appliance` and `Appliance`+`Outcome`. The metric an operator
//! should alarm on is `FailedInvocations` (Sum >= 1 over 5 minutes).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::cloud::usage::UsageSnapshot;
use crate::error::FailoverError;
use crate::report::{Outcome, Report};

pub const NAMESPACE: &str = "ec2-failover";

/// The outcome as the report spells it (`failed_over`, ...).
fn outcome_name(o: Outcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{o:?}"))
}

/// Steps with generated names (`route rtb-1 10.0.0.0/8`) are summed under their kind.
fn step_metric(step: &str) -> String {
    let kind = step.split_whitespace().next().unwrap_or(step);
    format!("Step_{kind}")
}

/// The EMF document for one invocation.
pub fn emf(
    appliance: &str,
    result: &Result<Report, FailoverError>,
    duration: Duration,
    usage: Option<UsageSnapshot>,
    timestamp_ms: i64,
) -> Value {
    let mut root = Map::new();
    let mut metrics: Vec<(String, &str)> = Vec::new();
    let mut put =
        |root: &mut Map<String, Value>, name: String, value: Value, unit: &'static str| {
            if !root.contains_key(&name) {
                metrics.push((name.clone(), unit));
            }
            root.insert(name, value);
        };

    let outcome = match result {
        Ok(r) => outcome_name(r.outcome),
        Err(_) => "error".to_owned(),
    };
    put(&mut root, "Invocations".into(), json!(1), "Count");
    let failed_over = matches!(result, Ok(r) if r.outcome == Outcome::FailedOver);
    put(
        &mut root,
        "Failovers".into(),
        json!(u8::from(failed_over)),
        "Count",
    );
    put(
        &mut root,
        "FailedInvocations".into(),
        json!(u8::from(result.is_err())),
        "Count",
    );
    put(
        &mut root,
        "Duration".into(),
        json!(duration.as_millis() as u64),
        "Milliseconds",
    );
    if let Some(u) = usage {
        put(&mut root, "AwsCalls".into(), json!(u.calls), "Count");
        put(&mut root, "AwsRetries".into(), json!(u.retries), "Count");
        put(
            &mut root,
            "BytesReceived".into(),
            json!(u.bytes_received),
            "Bytes",
        );
    }
    if let Ok(report) = result {
        for step in &report.steps {
            let name = step_metric(&step.step);
            let sum = root.get(&name).and_then(Value::as_u64).unwrap_or(0) + step.ms;
            put(&mut root, name, json!(sum), "Milliseconds");
        }
        root.insert("Incident".into(), json!(report.incident));
    }
    if let Err(e) = result {
        root.insert("ErrorType".into(), json!(e.error_type()));
        root.insert("Error".into(), json!(e.to_string()));
    }
    root.insert("Appliance".into(), json!(appliance));
    root.insert("Outcome".into(), json!(outcome));
    let declared: Vec<Value> = metrics
        .iter()
        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Appliance"], ["Appliance", "Outcome"]],
                "Metrics": declared,
            }],
        }),
    );
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{StepRecord, StepStatus};

    fn report() -> Report {
        let step = |name: &str, ms| StepRecord {
            step: name.into(),
            status: StepStatus::Done,
            detail: String::new(),
            ms,
        };
        Report {
            outcome: Outcome::FailedOver,
            incident: "alarm-1".into(),
            old_instance: Some("i-1".into()),
            new_instance: Some("i-2".into()),
            availability_zone: Some("ap-northeast-1c".into()),
            image: Some("ami-1".into()),
            image_created: None,
            reason: "test".into(),
            steps: vec![
                step("discover", 40),
                step("launch_replacement", 25),
                step("route rtb-1 10.242.2.0/24", 7),
                step("route rtb-2 10.242.2.0/24", 5),
            ],
        }
    }

    /// Every declared metric has a numeric value at the root, and every
    /// dimension named is a string at the root: what CloudWatch requires.
    fn assert_valid_emf(v: &Value) {
        let aws = &v["_aws"];
        assert!(aws["Timestamp"].is_i64());
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        for set in directive["Dimensions"].as_array().unwrap() {
            for d in set.as_array().unwrap() {
                assert!(v[d.as_str().unwrap()].is_string(), "dimension {d}");
            }
        }
        for m in directive["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "metric {name} has no value");
            assert!(m["Unit"].is_string());
        }
    }

    #[test]
    fn a_failover_line_carries_outcome_duration_steps_and_usage() {
        let usage = UsageSnapshot {
            calls: 14,
            retries: 1,
            bytes_received: 20_480,
        };
        let v = emf(
            "sophos",
            &Ok(report()),
            Duration::from_millis(1234),
            Some(usage),
            1_763_715_600_000,
        );
        assert_valid_emf(&v);
        assert_eq!(v["Outcome"], "failed_over");
        assert_eq!(v["Appliance"], "sophos");
        assert_eq!(v["Failovers"], 1);
        assert_eq!(v["FailedInvocations"], 0);
        assert_eq!(v["Duration"], 1234);
        assert_eq!(v["AwsCalls"], 14);
        assert_eq!(v["AwsRetries"], 1);
        assert_eq!(v["Step_route"], 12, "route steps are summed");
        assert_eq!(v["Step_launch_replacement"], 25);
        // One line: it must serialise without newlines.
        assert!(!serde_json::to_string(&v).unwrap().contains('\n'));
    }

    #[test]
    fn a_failed_invocation_counts_for_the_alarm() {
        let e = FailoverError::Missing {
            what: "no AMI".into(),
        };
        let v = emf("sophos", &Err(e), Duration::from_millis(80), None, 0);
        assert_valid_emf(&v);
        assert_eq!(v["Outcome"], "error");
        assert_eq!(v["FailedInvocations"], 1);
        assert_eq!(v["Failovers"], 0);
        assert_eq!(v["ErrorType"], "Permanent.ResourceMissing");
        assert!(v.get("AwsCalls").is_none());
    }
}
