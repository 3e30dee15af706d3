//! CloudWatch alarm state changes, in the three envelopes AWS delivers them.
//!
//! Read field by field from the JSON value rather than through strict structs:
//! CloudWatch sends nulls and extra fields freely, and an error should name the
//! exact field that was wrong (`Records[0].Sns.Message.StateChangeTime`).

use crate::cloud::provenance::digest_hex;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::{EventError, kind_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Alarm,
    Ok,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "ALARM",
            Self::Ok => "OK",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// How the alarm reached the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sns,
    Direct,
    EventBridge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmChange {
    pub name: String,
    pub arn: String,
    /// Region code taken from the ARN (SNS only gives a display name).
    pub region: String,
    pub state: AlarmState,
    pub changed_at: DateTime<Utc>,
    pub reason: Option<String>,
    /// The `HealthCheckId` dimension, when the alarm watches a Route 53 health check.
    pub health_check_id: Option<String>,
    pub channel: Channel,
}

impl AlarmChange {
    /// Stable id of this state change: the same alarm transition gives the same id
    /// whichever channel delivered it and however often, so redeliveries resume
    /// one incident instead of starting another.
    pub fn incident_id(&self) -> String {
        incident_for(&self.arn, self.changed_at)
    }
}

/// The incident of the alarm `arn`'s state change at `changed_at` (to the
/// millisecond, as CloudWatch's events carry it), whoever sees it: an event's
/// delivery or a reconcile that reads the alarm.
pub fn incident_for(arn: &str, changed_at: DateTime<Utc>) -> String {
    let when = changed_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    format!("alarm-{}", digest_hex(&format!("{arn}|{when}"), 10))
}

/// `Records[0].Sns.Message` of an SNS alarm notification (already JSON-decoded).
pub(super) fn from_sns_message(m: &Value) -> Result<AlarmChange, EventError> {
    let at = "Records[0].Sns.Message";
    let arn = alarm_arn(m, at, "AlarmArn")?;
    Ok(AlarmChange {
        name: string(m, at, "AlarmName")?,
        region: region_of(&arn),
        arn,
        state: state(m, at, "NewStateValue")?,
        changed_at: timestamp(m, at, "StateChangeTime")?,
        reason: optional_string(m, "NewStateReason"),
        health_check_id: m
            .get("Trigger")
            .and_then(|t| t.get("Dimensions"))
            .and_then(Value::as_array)
            .and_then(|dims| {
                dims.iter().find_map(|d| {
                    let name = d.get("name").or_else(|| d.get("Name"))?.as_str()?;
                    let value = d.get("value").or_else(|| d.get("Value"))?.as_str()?;
                    (name == "HealthCheckId").then(|| value.to_owned())
                })
            }),
        channel: Channel::Sns,
    })
}

/// A CloudWatch alarm invoking the function directly (`source: aws.cloudwatch`).
pub(super) fn from_direct_invoke(e: &Value) -> Result<AlarmChange, EventError> {
    let arn = alarm_arn(e, "event", "alarmArn")?;
    let data = object(e, "event", "alarmData")?;
    alarm_data(data, "alarmData", arn, Channel::Direct)
}

/// EventBridge `CloudWatch Alarm State Change`: the ARN is `resources[0]`.
pub(super) fn from_eventbridge(e: &Value) -> Result<AlarmChange, EventError> {
    let resources = e
        .get("resources")
        .ok_or_else(|| missing("event", "resources"))?;
    let arn = alarm_arn(resources, "event", "0").map_err(|err| {
        EventError::new(err.problem.replace("event.0", "resources[0]"), err.expected)
    })?;
    let detail = object(e, "event", "detail")?;
    alarm_data(detail, "detail", arn, Channel::EventBridge)
}

/// The `alarmData` / `detail` body shared by direct invokes and EventBridge.
fn alarm_data(
    d: &Value,
    at: &str,
    arn: String,
    channel: Channel,
) -> Result<AlarmChange, EventError> {
    let state_obj = object(d, at, "state")?;
    let state_at = format!("{at}.state");
    Ok(AlarmChange {
        name: string(d, at, "alarmName")?,
        region: region_of(&arn),
        arn,
        state: state(state_obj, &state_at, "value")?,
        changed_at: timestamp(state_obj, &state_at, "timestamp")?,
        reason: optional_string(state_obj, "reason"),
        health_check_id: d
            .get("configuration")
            .and_then(|c| c.get("metrics"))
            .and_then(Value::as_array)
            .and_then(|metrics| {
                metrics.iter().find_map(|m| {
                    m.get("metricStat")?
                        .get("metric")?
                        .get("dimensions")?
                        .get("HealthCheckId")?
                        .as_str()
                        .map(str::to_owned)
                })
            }),
        channel,
    })
}

fn missing(at: &str, field: &str) -> EventError {
    EventError::new(
        format!("{at}.{field} is missing"),
        format!("{field} as in a CloudWatch alarm notification"),
    )
}

fn get<'a>(v: &'a Value, at: &str, field: &str) -> Result<&'a Value, EventError> {
    match field.parse::<usize>() {
        Ok(i) => v.get(i),
        Err(_) => v.get(field),
    }
    .filter(|x| !x.is_null())
    .ok_or_else(|| missing(at, field))
}

fn object<'a>(v: &'a Value, at: &str, field: &str) -> Result<&'a Value, EventError> {
    let x = get(v, at, field)?;
    if x.is_object() {
        Ok(x)
    } else {
        Err(EventError::new(
            format!("{at}.{field} is {}", kind_of(x)),
            format!("{field} to be a JSON object"),
        ))
    }
}

fn string(v: &Value, at: &str, field: &str) -> Result<String, EventError> {
    let x = get(v, at, field)?;
    x.as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            EventError::new(
                format!(
                    "{at}.{field} is {}",
                    if x.is_string() { "empty" } else { kind_of(x) }
                ),
                format!("{field} to be a non-empty string"),
            )
        })
}

fn optional_string(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn state(v: &Value, at: &str, field: &str) -> Result<AlarmState, EventError> {
    let s = string(v, at, field)?;
    match s.as_str() {
        "ALARM" => Ok(AlarmState::Alarm),
        "OK" => Ok(AlarmState::Ok),
        "INSUFFICIENT_DATA" => Ok(AlarmState::InsufficientData),
        _ => Err(EventError::new(
            format!("{at}.{field} is {s:?}"),
            format!("{field} to be ALARM, OK or INSUFFICIENT_DATA"),
        )),
    }
}

/// CloudWatch writes `2026-11-21T09:00:00.000+0000`; EventBridge's envelope uses RFC 3339.
fn timestamp(v: &Value, at: &str, field: &str) -> Result<DateTime<Utc>, EventError> {
    let s = string(v, at, field)?;
    DateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(&s))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            EventError::new(
                format!("{at}.{field} is {s:?}"),
                format!("{field} to be a time like 2026-11-21T09:00:00.000+0000"),
            )
        })
}

/// `arn:PARTITION:cloudwatch:REGION:ACCOUNT:alarm:NAME`.
fn alarm_arn(v: &Value, at: &str, field: &str) -> Result<String, EventError> {
    let arn = string(v, at, field)?;
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let well_formed = parts.len() == 7
        && parts[0] == "arn"
        && parts[2] == "cloudwatch"
        && !parts[3].is_empty()
        && parts[5] == "alarm"
        && !parts[6].is_empty();
    if well_formed {
        Ok(arn)
    } else {
        Err(EventError::new(
            format!("{at}.{field} is {arn:?}"),
            format!(
                "{field} to be a CloudWatch alarm ARN (arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME)"
            ),
        ))
    }
}

fn region_of(arn: &str) -> String {
    arn.split(':').nth(3).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_in_both_formats() {
        for s in [
            "2026-11-21T09:00:00.000+0000",
            "2026-11-21T09:00:00Z",
            "2026-11-21T18:00:00.000+0900",
        ] {
            let t = timestamp(&json!({ "t": s }), "x", "t").unwrap();
            assert_eq!(t.to_rfc3339(), "2026-11-21T09:00:00+00:00", "{s}");
        }
    }

    #[test]
    fn an_incident_id_is_short_plain_ascii() {
        let a = from_sns_message(&json!({
            "AlarmName": "a", "AlarmArn": "arn:aws:cloudwatch:eu-west-1:1:alarm:a",
            "NewStateValue": "ALARM", "StateChangeTime": "2026-11-21T09:00:00.000+0000"
        }))
        .unwrap();
        let id = a.incident_id();
        assert!(
            id.starts_with("alarm-") && id.len() <= 64 && id.is_ascii(),
            "{id}"
        );
        assert_eq!(a.region, "eu-west-1");
    }
}
