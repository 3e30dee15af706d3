//! How the function's SDK clients are configured: adaptive retries, timeouts,
//! the environment's loader, and clients that count their calls.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::Client;

use super::SdkCloud;
use crate::cloud::usage::ApiUsage;

/// Attempts per call: the SDK's adaptive retry backs off (and slows the
/// client down) through a throttling burst of several seconds.
const MAX_ATTEMPTS: u32 = 8;

/// The longest wait before one retry. The SDK's default (20 s) also caps the
/// adaptive rate limiter's delay, which on a client that has just met its
/// first throttle is that whole 20 s: two throttled retries would pass the
/// operation timeout. 2 s keeps 8 attempts inside it.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How the function's clients retry: adaptively, with enough attempts to ride
/// out a burst of `RequestLimitExceeded`.
pub fn retry_config() -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_max_backoff(MAX_BACKOFF)
}

/// The longest one call may take, its retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a call may take: an API that does not answer in an impaired AZ
/// must not hold the failover until Lambda's own timeout.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK configuration loader of the function: the environment's region and
/// credentials, with [`retry_config`] and [`timeout_config`].
pub fn production_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
}

impl SdkCloud {
    pub fn new(ec2: Client, route53: aws_sdk_route53::Client) -> Self {
        Self {
            client: ec2,
            route53,
            cloudwatch: None,
            usage: None,
        }
    }

    /// The same clients, and this CloudWatch client for the alarms.
    pub fn with_alarms(self, cloudwatch: aws_sdk_cloudwatch::Client) -> Self {
        Self {
            cloudwatch: Some(cloudwatch),
            ..self
        }
    }

    /// Clients for every service from one SDK configuration (CloudWatch in
    /// `alarm_region`), counting their calls, retries and bytes (for the
    /// metrics line).
    pub fn from_conf(conf: &aws_config::SdkConfig, alarm_region: &str) -> Self {
        let alarms = conf
            .to_builder()
            .region(aws_config::Region::new(alarm_region.to_owned()))
            .build();
        Self::counting(conf.into(), conf.into(), (&alarms).into())
    }

    /// Clients from per-service configurations, with an [`ApiUsage`] interceptor
    /// added to each.
    pub fn counting(
        ec2: aws_sdk_ec2::Config,
        route53: aws_sdk_route53::Config,
        cloudwatch: aws_sdk_cloudwatch::Config,
    ) -> Self {
        let usage = ApiUsage::default();
        Self {
            client: Client::from_conf(ec2.to_builder().interceptor(usage.clone()).build()),
            route53: aws_sdk_route53::Client::from_conf(
                route53.to_builder().interceptor(usage.clone()).build(),
            ),
            cloudwatch: Some(aws_sdk_cloudwatch::Client::from_conf(
                cloudwatch.to_builder().interceptor(usage.clone()).build(),
            )),
            usage: Some(usage),
        }
    }
}
