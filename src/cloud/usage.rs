//! Counts what the AWS SDK does on the function's behalf: operations, attempts
//! (so retries), and bytes received. An SDK interceptor sees every call of
//! every client it is registered on, including the SDK's own retries, which a
//! wrapper around the trait would miss.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_ec2::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use serde::Serialize;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    attempts: AtomicU64,
    bytes_received: AtomicU64,
}

/// Shared counters; clones count into the same totals.
#[derive(Debug, Default, Clone)]
pub struct ApiUsage(Arc<Counters>);

/// Totals at one moment; subtract two to get one invocation's usage.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UsageSnapshot {
    pub calls: u64,
    pub retries: u64,
    pub bytes_received: u64,
}

impl UsageSnapshot {
    pub fn since(self, earlier: UsageSnapshot) -> UsageSnapshot {
        UsageSnapshot {
            calls: self.calls.saturating_sub(earlier.calls),
            retries: self.retries.saturating_sub(earlier.retries),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
        }
    }
}

impl ApiUsage {
    pub fn snapshot(&self) -> UsageSnapshot {
        let calls = self.0.calls.load(Ordering::Relaxed);
        let attempts = self.0.attempts.load(Ordering::Relaxed);
        UsageSnapshot {
            calls,
            retries: attempts.saturating_sub(calls),
            bytes_received: self.0.bytes_received.load(Ordering::Relaxed),
        }
    }
}

impl Intercept for ApiUsage {
    fn name(&self) -> &'static str {
        "ApiUsage"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        // The body is still a stream here; its declared length is what arrives.
        let length = response
            .headers()
            .get("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| response.body().bytes().map(|b| b.len() as u64))
            .unwrap_or(0);
        self.0.bytes_received.fetch_add(length, Ordering::Relaxed);
        Ok(())
    }
}
