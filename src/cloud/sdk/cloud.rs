//! [`Cloud`] for the SDK adapter: each method is the function of the same name
//! in its service's file (EC2 describes, EC2 changes and their dry runs,
//! Route 53, CloudWatch), so the impl is generated from the trait's method list.

use super::SdkCloud;
// Every call, by the trait method's name.
use super::{cloudwatch::*, ec2_change::*, ec2_describe::*, probe::*, route53::*};
use crate::cloud::usage::{ApiUsage, UsageSnapshot};
use crate::cloud::{
    Address, Alarm, AlarmQuery, CheckerReport, Cidr, Cloud, CloudError, GroupIngress, Image,
    ImageRequest, IngressRule, Instance, LaunchRequest, Permission, Probe, RecordSet, RouteTable,
    SecurityGroup, Snapshot, Subnet, Tag, Vpc,
};

/// `impl Cloud for SdkCloud`: `self::name` is the imported function (a bare
/// `name` could be an argument of the same name, as `probe` is).
macro_rules! sdk_cloud {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty
        $(=> $op:ident($target:expr))?;)*) => {
        impl Cloud for SdkCloud {
            $(async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, CloudError> {
                self::$name(self $(, $arg)*).await
            })*

            fn usage(&self) -> Option<UsageSnapshot> {
                self.usage.as_ref().map(ApiUsage::snapshot)
            }
        }
    };
}

cloud_methods!(sdk_cloud);
