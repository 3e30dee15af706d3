//! What a failed invocation says: which step, which resource, and whether a
//! retry can help.
//!
//! Lambda shows `error_type` and `error_message`; the type starts with
//! `Retryable.` or `Permanent.` so an operator (or an alarm on the on-failure
//! destination) can tell "wait for the retry" from "a human must fix this".

use lambda_runtime::Diagnostic;

use crate::cloud::CloudError;
use crate::event::EventError;
use crate::step::Step;

#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error(transparent)]
    Event(#[from] EventError),

    /// An AWS call failed during a step.
    #[error("step {step} on {resource}: {source}")]
    Aws {
        step: Step,
        resource: String,
        #[source]
        source: CloudError,
    },

    /// The world does not hold what the configuration names (no VPC, no AMI, ...).
    /// Found before any change is made.
    #[error("{what}; nothing was changed")]
    Missing { what: String },

    /// The world is in a state the function will not guess its way through.
    #[error("{what}; nothing was changed")]
    Ambiguous { what: String },

    /// Every replacement died on launch (EC2 terminated it, e.g. for a KMS key
    /// it may not use); a human should look before trying again.
    #[error(
        "replacement {instance} is {state} right after launch ({reason}) and no launch option is left; the failed instance was not stopped and the floating IP and routes were not moved"
    )]
    ReplacementFailed {
        instance: String,
        state: String,
        reason: String,
    },

    /// No replacement was launched, so nothing was stopped or moved.
    #[error(
        "{cause}; no replacement was launched, so {failed} was not stopped and nothing was changed"
    )]
    NotLaunched {
        cause: Box<FailoverError>,
        failed: String,
    },

    /// Every launch option's ClientToken was spent on replacements EC2
    /// terminated; the next round of tokens follows.
    #[error("every launch option's ClientToken is spent; tried {tried}")]
    TokensSpent { tried: String },

    /// The invocation ran out of time while waiting; the retry resumes here.
    #[error("out of time at step {step}: {detail}; a retry of the same event resumes from here")]
    Deadline { step: Step, detail: String },

    /// Too many failovers in the window: something keeps failing the appliance
    /// (or the health check is wrong), and moving it again will not help.
    #[error(
        "flap guard: {count} failover(s) within the last {window_minutes} min ({instances}) reached MAX_FAILOVERS={max}; refusing to fail over again, a human must look; nothing was changed"
    )]
    FlapGuard {
        count: usize,
        max: u32,
        window_minutes: u64,
        instances: String,
    },

    /// No candidate AZ had capacity for any allowed instance type.
    #[error("no capacity to launch the replacement; tried {tried}")]
    NoCapacity { tried: String },

    /// EC2 refused every launch option for what it is, not for capacity: the
    /// type is not offered in the AZ, or does not fit the AMI (architecture,
    /// ENA, boot mode). The same options again will not launch.
    #[error(
        "no launch option can be launched: tried {tried}; a retry will not help: check FALLBACK_INSTANCE_TYPES against the AMI (architecture, ENA, boot mode) and the AZs the candidate subnets are in (preflight proves every option)"
    )]
    NoLaunchOption { tried: String },

    /// Another invocation holds the group's lease (a job of the same
    /// appliance is running); this one waited as long as it could.
    #[error(
        "group {group} is held by request {holder} (incident {incident}) until {until}; waited {waited_s} s and changed nothing; a retry (Lambda's, or the next reconcile) finds it free"
    )]
    GroupBusy {
        group: String,
        holder: String,
        incident: String,
        until: String,
        waited_s: u64,
    },
}

impl FailoverError {
    /// For `map_err`: an AWS call failed during `step`, on `resource`.
    pub fn during(
        step: Step,
        resource: impl Into<String>,
    ) -> impl FnOnce(CloudError) -> FailoverError {
        let resource = resource.into();
        move |source| FailoverError::Aws {
            step,
            resource,
            source,
        }
    }

    pub fn retryable(&self) -> bool {
        match self {
            Self::Aws { source, .. } => source.retryable,
            Self::Deadline { .. }
            | Self::NoCapacity { .. }
            | Self::TokensSpent { .. }
            | Self::GroupBusy { .. } => true,
            Self::NotLaunched { cause, .. } => cause.retryable(),
            Self::Event(_)
            | Self::Missing { .. }
            | Self::Ambiguous { .. }
            | Self::ReplacementFailed { .. }
            | Self::NoLaunchOption { .. }
            | Self::FlapGuard { .. } => false,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Event(_) => "BadEvent",
            Self::Aws { .. } => "AwsCallFailed",
            Self::Missing { .. } => "ResourceMissing",
            Self::Ambiguous { .. } => "Ambiguous",
            Self::ReplacementFailed { .. } => "ReplacementFailed",
            Self::Deadline { .. } => "DeadlineReached",
            Self::FlapGuard { .. } => "FlapGuard",
            Self::NoCapacity { .. } => "NoCapacity",
            Self::NoLaunchOption { .. } => "NoLaunchOption",
            Self::TokensSpent { .. } => "TokensSpent",
            Self::GroupBusy { .. } => "GroupBusy",
            Self::NotLaunched { cause, .. } => cause.kind(),
        }
    }

    /// `Retryable.AwsCallFailed`, `Permanent.BadEvent`, ...
    pub fn error_type(&self) -> String {
        let class = if self.retryable() {
            "Retryable"
        } else {
            "Permanent"
        };
        format!("{class}.{}", self.kind())
    }
}

impl From<FailoverError> for Diagnostic {
    fn from(e: FailoverError) -> Self {
        Diagnostic {
            error_type: e.error_type(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_says_whether_a_retry_helps() {
        let throttled = FailoverError::Aws {
            step: Step::Launch,
            resource: "subnet-1".into(),
            source: CloudError::service(
                crate::cloud::Operation::RunInstances,
                "RequestLimitExceeded",
                "slow down",
            ),
        };
        assert_eq!(throttled.error_type(), "Retryable.AwsCallFailed");
        let d: Diagnostic = throttled.into();
        assert!(
            d.error_message.contains("launch_replacement"),
            "{}",
            d.error_message
        );
        assert!(d.error_message.contains("subnet-1"), "{}", d.error_message);
        let missing = FailoverError::Missing {
            what: "no AMI".into(),
        };
        assert_eq!(missing.error_type(), "Permanent.ResourceMissing");
    }
}
