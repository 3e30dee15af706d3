//! [`Cloud`] on the AWS SDK: the production adapter, and the one the integration
//! tests run against the emulator (and, for what moto lacks, a stand-in).

mod calls;
mod cloud;
mod cloudwatch;
mod config;
mod convert;
mod ec2_change;
mod ec2_describe;
mod errors;
mod lease;
mod notices;
mod probe;
mod route53;

use aws_sdk_ec2::Client;

use super::usage::ApiUsage;

pub use config::{OPERATION_TIMEOUT, production_loader, retry_config, timeout_config};
pub use lease::SdkLeases;
pub use notices::SdkAnnouncer;
pub use route53::same_dns_name;

/// EC2, Route 53 and CloudWatch through the AWS SDK. Cheap to clone; build
/// once per region and reuse across invocations.
#[derive(Clone, Debug)]
pub struct SdkCloud {
    client: Client,
    route53: aws_sdk_route53::Client,
    /// In `ALARM_REGION`; without it, looking at alarms is an error.
    cloudwatch: Option<aws_sdk_cloudwatch::Client>,
    usage: Option<ApiUsage>,
}
