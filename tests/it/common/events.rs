//! What the function is invoked with in tests: the sample events of `events/`
//! and a Lambda invocation's context. Shared by both test crates (tests/it and
//! tests/log_lines.rs), so it depends on nothing else here.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};

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

/// The day the samples' alarms are written for.
const SAMPLE_DAY: &str = "2026-11-21";

/// The day the sample alarms change state in tests (`YYYY-MM-DD`): the day
/// of ten hours ago, the same for the whole test process. Their 09:00 is
/// then in the past and after the fixtures' AMIs (taken days before, as in
/// life), which matters since an incident launches from the newest AMI of
/// the time it began.
pub fn sample_day() -> &'static str {
    static DAY: OnceLock<String> = OnceLock::new();
    DAY.get_or_init(|| {
        (Utc::now() - TimeDelta::hours(10))
            .format("%Y-%m-%d")
            .to_string()
    })
}

/// The sample event `events/<name>`; an alarm's moved to [`sample_day`].
pub fn sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    if name.contains("alarm") {
        text = text.replace(SAMPLE_DAY, sample_day());
    }
    serde_json::from_str(&text).unwrap()
}

/// The schedule's event, due at `time` (RFC 3339).
pub fn scheduled_at(time: &str) -> Value {
    let mut v = sample("scheduled-snapshot.json");
    v["time"] = serde_json::json!(time);
    v
}
