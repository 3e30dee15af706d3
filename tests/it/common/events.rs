//! What the function is invoked with in tests: the sample events of `events/`
//! and a Lambda invocation's context. Shared by both test crates (tests/it and
//! tests/log_lines.rs), so it depends on nothing else here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ec2_failover::Invocation;
use serde_json::Value;

/// A Lambda invocation with two minutes left, as the runtime would give it.
pub fn invocation(request_id: &str) -> Invocation {
    Invocation {
        request_id: request_id.to_owned(),
        deadline: Some(Instant::now() + Duration::from_secs(120)),
        function_arn: None,
    }
}

/// The sample event `events/<name>`.
pub fn sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The schedule's event, due at `time` (RFC 3339).
pub fn scheduled_at(time: &str) -> Value {
    let mut v = sample("scheduled-snapshot.json");
    v["time"] = serde_json::json!(time);
    v
}
