//! The one error type every cloud call returns, and what its AWS error codes mean.
//!
//! It keeps what an operator needs to act on a failed call: which operation,
//! the AWS error code, AWS's message, what kind of failure that is
//! ([`ErrorKind`], the one place codes are classified) and whether repeating
//! the call can help. The SDK already retries throttling and 5xx a few times; a
//! `CloudError` that is still `retryable` means a later invocation (Lambda's own
//! retry) may succeed.

use std::fmt;

use super::Operation;

/// What a failed call means, read from AWS's error code. The executor decides
/// from it whether to back off, try the next launch option or leave a snapshot
/// for later; [`ErrorKind::retryable`] says whether a later invocation may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// AWS asks the caller to slow down (or a Route 53 change is still in
    /// progress): back off and try again.
    Throttled,
    /// AWS failed on its side, or the call got no answer (timeout, connection).
    Transient,
    /// EC2 has no capacity for this type in this AZ right now: the next launch
    /// option may have it, and so may a later invocation.
    NoCapacity,
    /// This launch option is not to be had here: the type is not offered in
    /// the AZ (`Unsupported`), does not fit the AMI (architecture, ENA, boot
    /// mode: `InvalidParameterCombination`), the subnet has no free address,
    /// the vCPU quota is used up, or there is no host or volume capacity. The
    /// next option may work; the same one again does not (unless AWS answered
    /// with a 5xx status).
    CannotLaunchHere,
    /// EC2 does not know the instance: not yet (right after RunInstances; EC2
    /// is eventually consistent) or no longer. Which one depends on the call.
    InstanceNotFound,
    /// The instance is not in a state the call accepts, e.g. still pending.
    WrongInstanceState,
    /// A snapshot still in use, as for a while after its AMI was deregistered.
    SnapshotInUse,
    /// The launch's ClientToken was spent on an instance EC2 terminated (EC2
    /// keeps it at least 24 h): this attempt can never launch again.
    TokenSpent,
    /// Anything else: a bad parameter, a denied or missing resource, an answer
    /// the code cannot read. Repeating the call does not help.
    Permanent,
}

impl ErrorKind {
    /// The kind of AWS error code `code`; codes not listed are permanent.
    pub fn of_code(code: &str) -> Self {
        match code {
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "PriorRequestNotComplete" => ErrorKind::Throttled,
            "InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable" => {
                ErrorKind::Transient
            }
            "InsufficientInstanceCapacity" | "InsufficientCapacity" => ErrorKind::NoCapacity,
            "InsufficientHostCapacity"
            | "InsufficientFreeAddressesInSubnet"
            | "InsufficientVolumeCapacity"
            | "VcpuLimitExceeded"
            | "Unsupported"
            | "InvalidParameterCombination" => ErrorKind::CannotLaunchHere,
            "InvalidInstanceID.NotFound" => ErrorKind::InstanceNotFound,
            "IncorrectInstanceState" => ErrorKind::WrongInstanceState,
            "InvalidSnapshot.InUse" => ErrorKind::SnapshotInUse,
            "IdempotentInstanceTerminated" => ErrorKind::TokenSpent,
            _ => ErrorKind::Permanent,
        }
    }

    /// Whether a later attempt (another invocation) can succeed.
    pub const fn retryable(self) -> bool {
        match self {
            ErrorKind::Throttled
            | ErrorKind::Transient
            | ErrorKind::NoCapacity
            | ErrorKind::WrongInstanceState => true,
            ErrorKind::CannotLaunchHere
            | ErrorKind::InstanceNotFound
            | ErrorKind::SnapshotInUse
            | ErrorKind::TokenSpent
            | ErrorKind::Permanent => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CloudError {
    /// The API operation, e.g. `RunInstances`.
    pub operation: Operation,
    /// The AWS error code, when AWS answered with one.
    pub code: Option<String>,
    pub message: String,
    /// The kind's [`ErrorKind::retryable`]; the adapter also sets it for any
    /// answer with a 5xx status.
    pub retryable: bool,
    kind: ErrorKind,
}

impl CloudError {
    /// An error AWS answered with `code`; its kind and retryability follow from the code.
    pub fn service(operation: Operation, code: &str, message: impl Into<String>) -> Self {
        Self::of_kind(
            operation,
            Some(code.to_owned()),
            message,
            ErrorKind::of_code(code),
        )
    }

    /// A call that never got an answer (timeout, connection refused): transient.
    pub fn transport(operation: Operation, message: impl Into<String>) -> Self {
        Self::of_kind(operation, None, message, ErrorKind::Transient)
    }

    /// AWS answered but the answer lacks something the code relies on.
    pub fn malformed(operation: Operation, message: impl Into<String>) -> Self {
        Self::of_kind(operation, None, message, ErrorKind::Permanent)
    }

    fn of_kind(
        operation: Operation,
        code: Option<String>,
        message: impl Into<String>,
        kind: ErrorKind,
    ) -> Self {
        Self {
            operation,
            code,
            message: message.into(),
            retryable: kind.retryable(),
            kind,
        }
    }

    /// What the failure means (from the code, or how the call failed).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(
                f,
                "{} failed with {}: {}",
                self.operation, code, self.message
            ),
            None => write!(f, "{} failed: {}", self.operation, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_capacity_are_retryable_but_bad_parameters_are_not() {
        let retryable = |code| CloudError::service(Operation::RunInstances, code, "m").retryable;
        for code in [
            "Throttling",
            "ThrottlingException",
            "RequestLimitExceeded",
            "RequestThrottled",
            "TooManyRequestsException",
            "PriorRequestNotComplete",
            "InternalError",
            "InternalFailure",
            "ServiceUnavailable",
            "Unavailable",
            "InsufficientInstanceCapacity",
            "InsufficientCapacity",
            "IncorrectInstanceState",
        ] {
            assert!(retryable(code), "{code}");
        }
        for code in [
            "InvalidAMIID.NotFound",
            "UnauthorizedOperation",
            "InsufficientHostCapacity",
            "InsufficientFreeAddressesInSubnet",
            "InsufficientVolumeCapacity",
            "VcpuLimitExceeded",
            "Unsupported",
            "InvalidInstanceID.NotFound",
            "InvalidSnapshot.InUse",
            "IdempotentInstanceTerminated",
        ] {
            assert!(!retryable(code), "{code}");
        }
        let lost = CloudError::transport(Operation::DescribeVpcs, "connection refused");
        assert!(lost.retryable);
        assert_eq!(lost.kind(), ErrorKind::Transient);
        let odd = CloudError::malformed(Operation::DescribeVpcs, "no VpcId");
        assert!(!odd.retryable);
        assert_eq!(odd.kind(), ErrorKind::Permanent);
    }

    #[test]
    fn display_names_operation_and_code() {
        let e = CloudError::service(
            Operation::AssociateAddress,
            "InvalidAllocationID.NotFound",
            "eipalloc-1",
        );
        assert_eq!(
            e.to_string(),
            "AssociateAddress failed with InvalidAllocationID.NotFound: eipalloc-1"
        );
    }
}
