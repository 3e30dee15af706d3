//! CloudWatch: the metric alarms, by name or on a Route 53 health check.

use super::SdkCloud;
use super::convert::to_chrono;
use super::errors::cloud_error;
use crate::cloud::{Alarm, AlarmQuery, CloudError, Operation};

pub(super) fn health_check_dimension(id: &str) -> aws_sdk_cloudwatch::types::Dimension {
    aws_sdk_cloudwatch::types::Dimension::builder()
        .name("HealthCheckId")
        .value(id)
        .build()
}

pub(super) fn alarm_of(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> Alarm {
    Alarm {
        name: a.alarm_name().unwrap_or_default().to_owned(),
        arn: a.alarm_arn().unwrap_or_default().to_owned(),
        state: a
            .state_value()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        reason: a.state_reason().map(str::to_owned),
        transitioned_at: a.state_transitioned_timestamp().and_then(to_chrono),
        updated_at: a.state_updated_timestamp().and_then(to_chrono),
        health_check_id: a
            .dimensions()
            .iter()
            .find(|d| d.name() == Some("HealthCheckId"))
            .and_then(|d| d.value())
            .map(str::to_owned),
        actions: a.alarm_actions().to_vec(),
    }
}

pub(super) async fn alarms(
    cloud: &SdkCloud,
    query: AlarmQuery<'_>,
) -> Result<Vec<Alarm>, CloudError> {
    let Some(cloudwatch) = &cloud.cloudwatch else {
        return Err(CloudError::service(
            Operation::DescribeAlarms,
            "NoCloudWatchClient",
            "this deployment has no CloudWatch client (ALARM_REGION)",
        ));
    };
    let (found, wanted) = match query {
        AlarmQuery::Named(name) => (
            cloudwatch
                .describe_alarms()
                .alarm_names(name)
                .send()
                .await
                .map_err(|e| cloud_error(Operation::DescribeAlarms, e))?
                .metric_alarms,
            None,
        ),
        AlarmQuery::ForHealthCheck(id) => (
            cloudwatch
                .describe_alarms_for_metric()
                .namespace("AWS/Route53")
                .metric_name("HealthCheckStatus")
                .dimensions(health_check_dimension(id))
                .send()
                .await
                .map_err(|e| cloud_error(Operation::DescribeAlarmsForMetric, e))?
                .metric_alarms,
            Some(id),
        ),
    };
    // The dimension is filtered here too: CloudWatch matches it exactly,
    // and an emulator may not.
    Ok(found
        .unwrap_or_default()
        .iter()
        .map(alarm_of)
        .filter(|a| wanted.is_none() || a.health_check_id.as_deref() == wanted)
        .collect())
}
