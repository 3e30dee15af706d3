//! CloudWatch's metric alarms, and which of them to look at.

use chrono::{DateTime, SecondsFormat, Utc};

use super::Operation;

/// Which CloudWatch alarms to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmQuery<'a> {
    /// `DescribeAlarms` of one alarm by name.
    Named(&'a str),
    /// `DescribeAlarmsForMetric`: the alarms on Route 53's `HealthCheckStatus`
    /// metric of this health check.
    ForHealthCheck(&'a str),
}

impl<'a> AlarmQuery<'a> {
    /// The API operation that answers the query.
    pub fn operation(&self) -> Operation {
        match self {
            AlarmQuery::Named(_) => Operation::DescribeAlarms,
            AlarmQuery::ForHealthCheck(_) => Operation::DescribeAlarmsForMetric,
        }
    }

    /// The alarm's name, or the health check's id.
    pub fn target(&self) -> &'a str {
        match self {
            AlarmQuery::Named(s) | AlarmQuery::ForHealthCheck(s) => s,
        }
    }
}

/// A CloudWatch metric alarm as `DescribeAlarms` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub name: String,
    pub arn: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: Option<String>,
    /// When the state last changed (`StateTransitionedTimestamp`).
    pub transitioned_at: Option<DateTime<Utc>>,
    /// When the state or its reason was last updated (`StateUpdatedTimestamp`).
    pub updated_at: Option<DateTime<Utc>>,
    /// The `HealthCheckId` dimension, when the alarm watches a Route 53 check.
    pub health_check_id: Option<String>,
    /// What the alarm notifies on ALARM (`AlarmActions`): SNS topics, Lambda
    /// functions... preflight checks that one of them reaches this function.
    pub actions: Vec<String>,
}

impl Alarm {
    /// When the alarm's state last changed: `StateTransitionedTimestamp`, else
    /// `StateUpdatedTimestamp` (all some regions' older alarms, and moto, report).
    pub fn changed_at(&self) -> Option<DateTime<Utc>> {
        self.transitioned_at.or(self.updated_at)
    }

    /// ` since <when it changed>` for a report's sentence; empty when unknown.
    pub fn since(&self) -> String {
        self.changed_at()
            .map(|t| format!(" since {}", t.to_rfc3339_opts(SecondsFormat::Secs, true)))
            .unwrap_or_default()
    }
}
