//! Event intake: every payload the function accepts becomes one [`Trigger`].
//!
//! Parsing is total and happens before any AWS call: a payload of no known shape,
//! or a known shape with a malformed field, is an [`EventError`] that says what
//! was expected, and nothing in AWS is touched. The structs are deliberately
//! tolerant (CloudWatch sends `"AlarmDescription": null`, extra fields come and
//! go); only the fields the decision needs are required.

mod alarm;
mod manual;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use alarm::{AlarmChange, AlarmState, Channel, incident_for};
pub use manual::ManualAction;

/// What asked the function to act.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A CloudWatch alarm changed state (through SNS, a direct invoke or EventBridge).
    Alarm(AlarmChange),
    /// An operator invoked the function by hand.
    Manual {
        action: ManualAction,
        reason: Option<String>,
    },
    /// An EventBridge schedule fired (AMI snapshots). `time` is when it was
    /// due; a redelivery carries the same time, which names the AMI.
    Scheduled {
        rule: Option<String>,
        time: Option<DateTime<Utc>>,
    },
    /// AWS published new IP ranges (Route 53 checker-range sync).
    IpSpaceChanged,
}

/// A payload the function cannot act on. `expected` says what would have worked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad event: {problem}; expected {expected}")]
pub struct EventError {
    pub problem: String,
    pub expected: String,
}

impl EventError {
    pub(crate) fn new(problem: impl Into<String>, expected: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
            expected: expected.into(),
        }
    }
}

const KNOWN_SHAPES: &str = "an SNS notification (Records[0].Sns.Message), a CloudWatch alarm \
invoke (source \"aws.cloudwatch\" with alarmData), an EventBridge \"CloudWatch Alarm State \
Change\" or \"Scheduled Event\", or a manual invoke {\"action\": \"failover\"|\"plan\"|\"snapshot\"|\
\"sync-checker-ranges\"|\"reconcile\"|\"preflight\", \"reason\": \"...\"}";

/// EventBridge's envelope `time` (RFC 3339); absent is allowed, malformed is not.
fn scheduled_time(event: &Value) -> Result<Option<DateTime<Utc>>, EventError> {
    match event.get("time") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                EventError::new(
                    format!("Scheduled Event time is {s:?}"),
                    "time to be an RFC 3339 time like 2026-11-21T09:00:00Z",
                )
            }),
        Some(other) => Err(EventError::new(
            format!("Scheduled Event time is {}", kind_of(other)),
            "time to be an RFC 3339 time like 2026-11-21T09:00:00Z",
        )),
    }
}

/// Classifies and validates a raw invocation payload.
pub fn parse(event: &Value) -> Result<Trigger, EventError> {
    let Some(obj) = event.as_object() else {
        return Err(EventError::new(
            format!("the payload is {}, not a JSON object", kind_of(event)),
            KNOWN_SHAPES,
        ));
    };
    if obj.contains_key("Records") {
        return parse_sns(event);
    }
    if obj.contains_key("action") {
        return manual::parse(event);
    }
    if let Some(detail_type) = obj.get("detail-type") {
        return match detail_type.as_str() {
            Some("CloudWatch Alarm State Change") => {
                alarm::from_eventbridge(event).map(Trigger::Alarm)
            }
            Some("Scheduled Event") => Ok(Trigger::Scheduled {
                rule: event
                    .get("resources")
                    .and_then(|r| r.get(0))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                time: scheduled_time(event)?,
            }),
            _ => Err(EventError::new(
                format!("EventBridge detail-type {detail_type} is not one this function handles"),
                "\"CloudWatch Alarm State Change\" or \"Scheduled Event\"",
            )),
        };
    }
    if obj.contains_key("alarmData") {
        return alarm::from_direct_invoke(event).map(Trigger::Alarm);
    }
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).take(8).collect();
    keys.sort_unstable();
    Err(EventError::new(
        format!("unrecognised payload with keys {keys:?}"),
        KNOWN_SHAPES,
    ))
}

fn parse_sns(event: &Value) -> Result<Trigger, EventError> {
    const EXPECTED: &str =
        "an SNS event with exactly one record whose Sns.Message is a JSON string";
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| EventError::new("Records is not a list", EXPECTED))?;
    let [record] = records.as_slice() else {
        return Err(EventError::new(
            format!("Records holds {} entries", records.len()),
            EXPECTED,
        ));
    };
    let sns = record
        .get("Sns")
        .ok_or_else(|| EventError::new("Records[0] has no Sns object", EXPECTED))?;
    let message = sns.get("Message").and_then(Value::as_str).ok_or_else(|| {
        EventError::new(
            "Records[0].Sns.Message is missing or not a string",
            EXPECTED,
        )
    })?;
    let message: Value = serde_json::from_str(message).map_err(|e| {
        EventError::new(
            format!("Records[0].Sns.Message is not JSON ({e})"),
            "a CloudWatch alarm notification or an AmazonIpSpaceChanged notification",
        )
    })?;
    if message.get("AlarmArn").is_some() || message.get("NewStateValue").is_some() {
        return alarm::from_sns_message(&message).map(Trigger::Alarm);
    }
    if message.get("synctoken").is_some() && message.get("create-time").is_some() {
        return Ok(Trigger::IpSpaceChanged);
    }
    Err(EventError::new(
        "Records[0].Sns.Message is neither a CloudWatch alarm nor an AmazonIpSpaceChanged notification",
        "a message with AlarmArn, NewStateValue and StateChangeTime, or with synctoken and create-time",
    ))
}

pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(name: &str) -> Value {
        let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn alarm(name: &str) -> AlarmChange {
        match parse(&sample(name)).unwrap() {
            Trigger::Alarm(a) => a,
            other => panic!("{name} parsed as {other:?}"),
        }
    }

    #[test]
    fn sns_sample_is_a_complete_sns_event() {
        // The official strict struct accepts our sample: it is what SNS really sends.
        let strict: Result<aws_lambda_events::event::sns::SnsEvent, _> =
            serde_json::from_value(sample("sns-alarm.json"));
        assert!(strict.is_ok(), "{strict:?}");
    }

    #[test]
    fn sns_alarm_with_null_description() {
        let a = alarm("sns-alarm.json");
        assert_eq!(a.name, "sophos-health");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.channel, Channel::Sns);
        assert_eq!(
            a.health_check_id.as_deref(),
            Some("6f0c8d52-5a4e-4c1e-9a3b-2b7f1e0d9c11")
        );
        assert_eq!(a.changed_at.to_rfc3339(), "2026-11-21T09:00:00+00:00");
    }

    #[test]
    fn the_same_state_change_is_the_same_incident_on_every_channel() {
        let sns = alarm("sns-alarm.json");
        let direct = alarm("direct-alarm.json");
        let bridge = alarm("eventbridge-alarm.json");
        assert_eq!(direct.channel, Channel::Direct);
        assert_eq!(bridge.channel, Channel::EventBridge);
        assert_eq!(sns.incident_id(), direct.incident_id());
        assert_eq!(sns.incident_id(), bridge.incident_id());
        assert_eq!(direct.health_check_id, sns.health_check_id);
        assert_eq!(bridge.health_check_id, sns.health_check_id);
        assert_ne!(sns.incident_id(), alarm("sns-alarm-ok.json").incident_id());
    }

    #[test]
    fn ok_state_parses_as_ok() {
        assert_eq!(alarm("sns-alarm-ok.json").state, AlarmState::Ok);
    }

    #[test]
    fn manual_samples() {
        assert_eq!(
            parse(&sample("manual-failover.json")).unwrap(),
            Trigger::Manual {
                action: ManualAction::Failover,
                reason: Some("VPN unreachable from the office; failing over by hand".into())
            }
        );
        assert!(matches!(
            parse(&sample("manual-plan.json")).unwrap(),
            Trigger::Manual {
                action: ManualAction::Plan,
                ..
            }
        ));
    }

    #[test]
    fn scheduled_and_ip_space_changed_are_recognised() {
        let sched = json!({"detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-11-21T09:00:00Z",
            "resources": ["arn:aws:events:ap-northeast-1:123456789012:rule/ami-daily"], "detail": {}});
        assert_eq!(
            parse(&sched).unwrap(),
            Trigger::Scheduled {
                rule: Some("arn:aws:events:ap-northeast-1:123456789012:rule/ami-daily".into()),
                time: DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
            }
        );
        let mut bad = sched.clone();
        bad["time"] = json!("yesterday");
        let e = parse(&bad).unwrap_err();
        assert!(e.problem.contains("yesterday"), "{e}");
        let msg = json!({"create-time": "2026-11-21T03:13:12Z", "synctoken": "1763694792",
            "md5": "7fd59f5c7f5cf643036cbd4443ad3e4b", "url": "https://ip-ranges.amazonaws.com/ip-ranges.json"});
        let ev =
            json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": msg.to_string()}}]});
        assert_eq!(parse(&ev).unwrap(), Trigger::IpSpaceChanged);
    }

    #[test]
    fn unknown_shapes_say_what_was_expected() {
        for bad in [
            json!(null),
            json!("failover"),
            json!([1, 2]),
            json!({}),
            json!({"hello": "world"}),
            json!({"Records": []}),
            json!({"Records": [{"Sns": {"Message": "not json"}}]}),
            json!({"Records": [{"Sns": {"Message": 42}}]}),
            json!({"Records": [{"Sns": {"Message": "{\"foo\": 1}"}}]}),
            json!({"detail-type": "EC2 Instance State-change Notification"}),
            json!({"action": "reboot"}),
            json!({"action": 7}),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(
                !e.problem.is_empty() && !e.expected.is_empty(),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn malformed_alarm_fields_are_named() {
        let mut ev = sample("sns-alarm.json");
        let msg: Value =
            serde_json::from_str(ev["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        let cases: [(&str, Value, &str); 4] = [
            ("StateChangeTime", json!("yesterday"), "StateChangeTime"),
            ("NewStateValue", json!("BROKEN"), "NewStateValue"),
            (
                "AlarmArn",
                json!("arn:aws:sns:us-east-1:1:topic"),
                "AlarmArn",
            ),
            ("NewStateValue", json!(null), "NewStateValue"),
        ];
        for (field, value, named) in cases {
            let mut m = msg.clone();
            m[field] = value;
            ev["Records"][0]["Sns"]["Message"] = Value::String(m.to_string());
            let e = parse(&ev).unwrap_err();
            assert!(e.to_string().contains(named), "{field}: {e}");
        }
    }
}
