//! SDK errors into [`CloudError`]: whether a retry can help, and what a dry
//! run's answer means.

use crate::cloud::{CloudError, Operation, Permission};

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// EC2's answer to a `DryRun=true` call: `DryRunOperation` is allowed,
/// `UnauthorizedOperation` denied; a success means the call was carried out
/// (an emulator that ignores DryRun), which must never pass for a proof.
pub(super) fn permission<T, E>(
    operation: Operation,
    answer: Result<T, SdkError<E>>,
) -> Result<Permission, CloudError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let Err(e) = answer else {
        return Err(CloudError::malformed(
            operation,
            "answered a DryRun request as if it had carried it out",
        ));
    };
    let e = cloud_error(operation, e);
    match e.code() {
        Some("DryRunOperation") => Ok(Permission::Allowed),
        Some("UnauthorizedOperation") => Ok(Permission::Denied(e.to_string())),
        _ => Err(e),
    }
}

/// The answer of a call whose output nothing reads: done, or the [`CloudError`].
pub(super) fn done<T, E>(
    operation: Operation,
    answer: Result<T, SdkError<E>>,
) -> Result<(), CloudError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    answer.map(|_| ()).map_err(|e| cloud_error(operation, e))
}

/// Turns an SDK error into a [`CloudError`], deciding whether a retry can help.
pub(super) fn cloud_error<E>(operation: Operation, err: SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match &err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let code = err.code().unwrap_or("Unknown").to_owned();
            let message = err
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
            let mut e = CloudError::service(operation, &code, message);
            if status.is_some_and(|s| s >= 500) {
                e.retryable = true;
            }
            e
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            CloudError::transport(operation, DisplayErrorContext(&err).to_string())
        }
        _ => CloudError::malformed(operation, DisplayErrorContext(&err).to_string()),
    }
}
