//! The AWS operations the function calls, each written once: its name (as IAM,
//! CloudTrail and the report spell it), its service, and whether it changes
//! anything.
//!
//! Everything that names a call reads this table: the SDK adapter and the
//! memory world put the operation in their errors, the fault wrapper matches
//! and logs calls by it, the dry runs name the call they prove, and
//! `tests/it/iam_policy.rs` checks that the table is exactly what the adapter
//! calls and the template's policy grants. The name comes from the variant
//! (`stringify!`), so a typo cannot make two spellings of one call.
//!
//! How an operation's error codes classify is the same for every operation
//! ([`super::error::ErrorKind`]); where a code means something else for one
//! call (`InvalidInstanceID.NotFound` after a launch, or for a stop), the
//! executor decides per change.

use std::fmt;

/// The AWS service an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Ec2,
    Route53,
    CloudWatch,
    DynamoDb,
    Sns,
    EventBridge,
}

impl Service {
    /// The service's prefix in IAM actions (`ec2:RunInstances`).
    pub const fn iam_prefix(self) -> &'static str {
        match self {
            Service::Ec2 => "ec2",
            Service::Route53 => "route53",
            Service::CloudWatch => "cloudwatch",
            Service::DynamoDb => "dynamodb",
            Service::Sns => "sns",
            Service::EventBridge => "events",
        }
    }
}

/// The table: `Name Service reads|changes`, one line per operation.
macro_rules! operations {
    ($($name:ident $service:ident $effect:ident,)*) => {
        /// One AWS API operation the function calls.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $($name,)*
        }

        impl Operation {
            /// Every operation, in table order.
            pub const ALL: &[Operation] = &[$(Operation::$name,)*];

            /// The API name, e.g. `RunInstances`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name),)*
                }
            }

            pub const fn service(self) -> Service {
                match self {
                    $(Operation::$name => Service::$service,)*
                }
            }

            /// True for calls that change something in AWS (their dry runs do not).
            pub const fn mutating(self) -> bool {
                match self {
                    $(Operation::$name => operations!(@mutating $effect),)*
                }
            }
        }
    };
    (@mutating reads) => { false };
    (@mutating changes) => { true };
}

operations! {
    // EC2: what a run looks at.
    DescribeAddresses                       Ec2         reads,
    DescribeImages                          Ec2         reads,
    DescribeInstanceAttribute               Ec2         reads,
    DescribeInstanceCreditSpecifications    Ec2         reads,
    DescribeInstances                       Ec2         reads,
    DescribeRouteTables                     Ec2         reads,
    DescribeSecurityGroups                  Ec2         reads,
    DescribeSnapshots                       Ec2         reads,
    DescribeSubnets                         Ec2         reads,
    DescribeVpcs                            Ec2         reads,
    GetEbsDefaultKmsKeyId                   Ec2         reads,
    GetEbsEncryptionByDefault               Ec2         reads,
    // EC2: what it changes.
    AssociateAddress                        Ec2         changes,
    AuthorizeSecurityGroupIngress           Ec2         changes,
    CreateImage                             Ec2         changes,
    CreateRoute                             Ec2         changes,
    CreateTags                              Ec2         changes,
    DeleteSnapshot                          Ec2         changes,
    DeregisterImage                         Ec2         changes,
    ModifyInstanceAttribute                 Ec2         changes,
    ModifyNetworkInterfaceAttribute         Ec2         changes,
    ReplaceRoute                            Ec2         changes,
    RevokeSecurityGroupIngress              Ec2         changes,
    RunInstances                            Ec2         changes,
    StartInstances                          Ec2         changes,
    StopInstances                           Ec2         changes,
    TerminateInstances                      Ec2         changes,
    // Route 53.
    GetCheckerIpRanges                      Route53     reads,
    GetHealthCheck                          Route53     reads,
    GetHealthCheckStatus                    Route53     reads,
    ListResourceRecordSets                  Route53     reads,
    ChangeResourceRecordSets                Route53     changes,
    // CloudWatch (in ALARM_REGION).
    DescribeAlarms                          CloudWatch  reads,
    DescribeAlarmsForMetric                 CloudWatch  reads,
    // DynamoDB: the groups' leases (LOCK_TABLE).
    DeleteItem                              DynamoDb    changes,
    GetItem                                 DynamoDb    reads,
    PutItem                                 DynamoDb    changes,
    // The notices: mail through the notification topic, events on the bus.
    Publish                                 Sns         changes,
    PutEvents                               EventBridge changes,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_variants_and_unique() {
        assert_eq!(Operation::RunInstances.name(), "RunInstances");
        assert_eq!(Operation::GetHealthCheck.to_string(), "GetHealthCheck");
        let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len());
    }

    #[test]
    fn describes_and_gets_read_the_rest_change() {
        for op in Operation::ALL {
            let reads = ["Describe", "Get", "List"]
                .iter()
                .any(|p| op.name().starts_with(p));
            assert_eq!(op.mutating(), !reads, "{op}");
        }
    }
}
