//! One CloudWatch Embedded Metric Format (EMF) line per invocation.
//!
//! Printed to stdout as a single JSON object, CloudWatch Logs turns it into
//! metrics without any API call from the function: namespace `ec2-failover`,
//! dimensions `Appliance` and `Appliance`+`Outcome`. The metrics an operator
//! should alarm on are `FailedInvocations` and `FollowUpsFailed` (Sum >= 1
//! over 5 minutes).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::cloud::usage::UsageSnapshot;
use crate::error::FailoverError;
use crate::report::{Outcome, Report, StepRecord, StepStatus};

pub const NAMESPACE: &str = "ec2-failover";

/// The outcome as the report spells it (`failed_over`, ...).
fn outcome_name(o: Outcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{o:?}"))
}

/// The document being built: values at the root, and the metrics declared.
#[derive(Default)]
struct Document {
    root: Map<String, Value>,
    declared: Vec<(String, &'static str)>,
}

impl Document {
    fn put(&mut self, name: &str, value: Value, unit: &'static str) {
        if !self.root.contains_key(name) {
            self.declared.push((name.to_owned(), unit));
        }
        self.root.insert(name.to_owned(), value);
    }

    /// Steps about one subject of several (`route rtb-1 10.0.0.0/8`) are
    /// summed under their kind.
    fn add_steps(&mut self, steps: &[StepRecord]) {
        for step in steps {
            let name = format!("Step_{}", step.kind.as_str());
            let sum = self.root.get(&name).and_then(Value::as_u64).unwrap_or(0) + step.ms;
            self.put(&name, json!(sum), "Milliseconds");
        }
    }

    fn add_usage(&mut self, u: UsageSnapshot) {
        self.put("AwsCalls", json!(u.calls), "Count");
        self.put("AwsRetries", json!(u.retries), "Count");
        self.put("BytesReceived", json!(u.bytes_received), "Bytes");
    }

    fn finish(mut self, timestamp_ms: i64) -> Value {
        let declared: Vec<Value> = self
            .declared
            .iter()
            .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
            .collect();
        self.root.insert(
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
        Value::Object(self.root)
    }
}

/// The EMF document for one invocation.
pub fn emf(
    appliance: &str,
    result: &Result<Report, FailoverError>,
    duration: Duration,
    usage: Option<UsageSnapshot>,
    timestamp_ms: i64,
) -> Value {
    let mut doc = Document::default();
    doc.put("Invocations", json!(1), "Count");
    doc.put("Failovers", json!(moved(result, false)), "Count");
    doc.put("PlannedMoves", json!(moved(result, true)), "Count");
    doc.put(
        "FailedInvocations",
        json!(u8::from(result.is_err())),
        "Count",
    );
    // A follow-up (fence, standby upkeep) that failed leaves the job's
    // outcome standing, so it is counted on its own: a fence that keeps
    // failing pages like a failed invocation.
    let follow_ups_failed = result.as_ref().map_or(0, |r| r.failed_follow_ups.len());
    doc.put("FollowUpsFailed", json!(follow_ups_failed), "Count");
    // A preflight with a failed item pages before the outage does.
    let preflight_failed = matches!(result, Ok(r) if r.outcome == Outcome::Preflight
        && r.steps.iter().any(|s| s.status == StepStatus::Failed));
    if matches!(result, Ok(r) if r.outcome == Outcome::Preflight) {
        doc.put(
            "PreflightFailed",
            json!(u8::from(preflight_failed)),
            "Count",
        );
    }
    doc.put(
        "Duration",
        json!(duration.as_millis() as u64),
        "Milliseconds",
    );
    if let Some(u) = usage {
        doc.add_usage(u);
    }
    let outcome = match result {
        Ok(report) => {
            doc.add_steps(&report.steps);
            doc.root.insert("Incident".into(), json!(report.incident));
            outcome_name(report.outcome)
        }
        Err(e) => {
            doc.root.insert("ErrorType".into(), json!(e.error_type()));
            doc.root.insert("Error".into(), json!(e.to_string()));
            "error".to_owned()
        }
    };
    doc.root.insert("Appliance".into(), json!(appliance));
    doc.root.insert("Outcome".into(), json!(outcome));
    doc.finish(timestamp_ms)
}

/// 1 when the job moved the appliance, as a planned move or not. A fail-back
/// or a drill moves it too but is no outage: the count of failovers is what
/// went wrong, the planned moves are apart.
fn moved(result: &Result<Report, FailoverError>, planned: bool) -> u8 {
    let report = result.as_ref().ok();
    u8::from(
        report.is_some_and(|r| r.outcome == Outcome::FailedOver && r.planned.is_some() == planned),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::PlannedMove;
    use crate::step::Step;

    fn report() -> Report {
        let step = |kind: Step, subject: Option<&str>, ms| StepRecord {
            step: match subject {
                Some(s) => format!("{kind} {s}"),
                None => kind.as_str().to_owned(),
            },
            kind,
            status: StepStatus::Done,
            detail: String::new(),
            ms,
        };
        Report {
            outcome: Outcome::FailedOver,
            incident: "alarm-1".into(),
            old_instance: Some("i-1".into()),
            old_availability_zone: Some("ap-northeast-1a".into()),
            new_instance: Some("i-2".into()),
            availability_zone: Some("ap-northeast-1c".into()),
            image: Some("ami-1".into()),
            image_created: None,
            reason: "test".into(),
            time_to_recover_s: Some(30),
            planned: None,
            steps: vec![
                step(Step::Discover, None, 40),
                step(Step::Launch, None, 25),
                step(Step::Route, Some("rtb-1 10.242.2.0/24"), 7),
                step(Step::Route, Some("rtb-2 10.242.2.0/24"), 5),
            ],
            failed_follow_ups: Vec::new(),
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
        assert_eq!(v["PlannedMoves"], 0);
        assert_eq!(v["FailedInvocations"], 0);
        assert_eq!(v["FollowUpsFailed"], 0);
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

    #[test]
    fn a_failed_follow_up_counts_beside_the_jobs_outcome() {
        let mut r = report();
        r.failed_follow_ups.push(Step::Fence);
        let v = emf("sophos", &Ok(r), Duration::from_millis(80), None, 0);
        assert_valid_emf(&v);
        assert_eq!(v["Outcome"], "failed_over");
        assert_eq!(v["FailedInvocations"], 0);
        assert_eq!(v["FollowUpsFailed"], 1);
    }

    #[test]
    fn a_fail_back_or_drill_is_a_planned_move_not_a_failover() {
        for planned in [PlannedMove::Failback, PlannedMove::Drill] {
            let mut r = report();
            r.planned = Some(planned);
            let v = emf("sophos", &Ok(r), Duration::from_millis(80), None, 0);
            assert_valid_emf(&v);
            assert_eq!(v["Failovers"], 0, "{planned:?}");
            assert_eq!(v["PlannedMoves"], 1, "{planned:?}");
        }
    }
}
