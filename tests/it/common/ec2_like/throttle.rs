//! EC2's API throttling as documented ("Request throttling for the Amazon
//! EC2 API"): token buckets per account and region, which moto lacks.
//!
//! - Request rate: every API has a bucket of its own; each call takes one
//!   token. Non-mutating calls (`Describe*`, `Get*`) have 100 tokens and get 20
//!   back a second; mutating calls 200 tokens and 5 a second.
//! - Resource rate: the calls that start or end instances also spend one token
//!   per instance from a second bucket: RunInstances and StartInstances 1,000,
//!   refilled 2 a second; StopInstances and TerminateInstances 1,000, 20 a second.
//!
//! A call without tokens is answered `RequestLimitExceeded` (HTTP 503) and
//! changes nothing. Buckets start full. A test may scale every size and rate
//! down, so a handful of appliances meets what twenty would.

use std::collections::HashMap;
use std::time::Instant;

use super::form::{named_instances, param};

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// (size, refill per second) of a bucket.
type Spec = (f64, f64);

const NON_MUTATING: Spec = (100.0, 20.0);
const MUTATING: Spec = (200.0, 5.0);
const LAUNCHES: Spec = (1000.0, 2.0);
const ENDINGS: Spec = (1000.0, 20.0);

pub(super) struct Throttle {
    scale: f64,
    buckets: HashMap<String, Bucket>,
}

impl Throttle {
    pub(super) fn new(scale: f64) -> Self {
        Self {
            scale,
            buckets: HashMap::new(),
        }
    }

    /// Takes the call's tokens, or `false` when a bucket it needs is short
    /// (and then takes none).
    pub(super) fn admit(
        &mut self,
        action: &str,
        params: &[(String, String)],
        now: Instant,
    ) -> bool {
        let reads = action.starts_with("Describe") || action.starts_with("Get");
        let request = if reads { NON_MUTATING } else { MUTATING };
        let mut needs = vec![(format!("request {action}"), request, 1.0)];
        let instances = match action {
            "RunInstances" => param(params, "MaxCount").and_then(|n| n.parse().ok()),
            "StartInstances" | "StopInstances" | "TerminateInstances" => {
                Some(named_instances(params).len() as f64)
            }
            _ => None,
        };
        if let Some(n) = instances {
            let spec = if matches!(action, "RunInstances" | "StartInstances") {
                LAUNCHES
            } else {
                ENDINGS
            };
            needs.push((format!("resource {action}"), spec, n));
        }
        let enough = needs
            .iter()
            .all(|(key, spec, cost)| self.level(key, *spec, now) >= *cost);
        if enough {
            for (key, _, cost) in &needs {
                if let Some(b) = self.buckets.get_mut(key) {
                    b.tokens -= cost;
                }
            }
        }
        enough
    }

    /// The bucket's tokens now, after its refill since last seen.
    fn level(&mut self, key: &str, (size, refill): Spec, now: Instant) -> f64 {
        let (size, refill) = (size * self.scale, refill * self.scale);
        let b = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: size,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * refill).min(size);
        b.at = now;
        b.tokens
    }
}
