//! The one error type every cloud call returns.
//!
//! It keeps what an operator needs to act on a failed call: which operation,
//! the AWS error code, AWS's message, and whether repeating the call can help.
//! The SDK already retries throttling and 5xx a few times; a `CloudError` that is
//! still `retryable` means a later invocation (Lambda's own retry) may succeed.

use std::fmt;

use super::Operation;

/// AWS error codes after which a later attempt can succeed.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "TooManyRequestsException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "IncorrectInstanceState",
    "PriorRequestNotComplete",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CloudError {
    /// The API operation, e.g. `RunInstances`.
    pub operation: Operation,
    /// The AWS error code, when AWS answered with one.
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
}

impl CloudError {
    /// An error AWS answered with `code`; retryability follows from the code.
    pub fn service(operation: Operation, code: &str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: Some(code.to_owned()),
            message: message.into(),
            retryable: RETRYABLE_CODES.contains(&code),
        }
    }

    /// A call that never got an answer (timeout, connection refused): retryable.
    pub fn transport(operation: Operation, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            message: message.into(),
            retryable: true,
        }
    }

    /// AWS answered but the answer lacks something the code relies on.
    pub fn malformed(operation: Operation, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            message: message.into(),
            retryable: false,
        }
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
        assert!(
            CloudError::service(Operation::RunInstances, "RequestLimitExceeded", "slow down")
                .retryable
        );
        assert!(
            CloudError::service(
                Operation::RunInstances,
                "InsufficientInstanceCapacity",
                "none"
            )
            .retryable
        );
        assert!(
            !CloudError::service(Operation::RunInstances, "InvalidAMIID.NotFound", "gone")
                .retryable
        );
        assert!(
            !CloudError::service(Operation::RunInstances, "UnauthorizedOperation", "no").retryable
        );
        assert!(CloudError::transport(Operation::DescribeVpcs, "connection refused").retryable);
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
