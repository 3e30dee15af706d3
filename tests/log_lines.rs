//! Every log line names the appliance it is about.
//!
//! A test binary of its own: tracing decides once per call site, process-wide,
//! whether anyone listens, so a subscriber scoped to one test races with the
//! other tests' threads registering the same call sites. Alone in its process
//! the capture is deterministic. The fleet is in memory: the spans are the
//! point here, not the SDK.

// The `it` crate's world builders, borrowed file by file (its `common` as a
// whole would bring the moto helpers too). This crate uses a few of them only.
#[allow(dead_code)]
#[path = "it/common/events.rs"]
mod events;
#[allow(dead_code)]
#[path = "it/common/memory_world.rs"]
mod memory_world;
#[path = "it/common/seed.rs"]
mod seed;

use ec2_failover::handle;
use events::{invocation, sample};
use lambda_runtime::tracing::{Level, subscriber};
use memory_world::two_groups;
use serde_json::Value;

/// A `MakeWriter` that keeps every log line for the test to read.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The first span field called `key` on a JSON log line.
fn span_field<'a>(line: &'a Value, key: &str) -> Option<&'a str> {
    line["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find_map(|s| s[key].as_str()))
}

#[tokio::test]
async fn every_log_line_of_a_two_group_schedule_names_its_group() {
    let t = two_groups();
    let captured = Captured::default();
    let writer = captured.clone();
    // Lambda's JSON log format (AWS_LAMBDA_LOG_FORMAT=JSON), into a buffer;
    // the test's runtime polls every group on this thread.
    let json = subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .with_max_level(Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let guard = subscriber::util::SubscriberInitExt::set_default(json);
    let run = handle(
        &t.fleet,
        &sample("scheduled-snapshot.json"),
        &invocation("req-1"),
    )
    .await;
    drop(guard);
    run.unwrap();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let steps = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "step")
        .count();
    assert!(
        steps >= 8,
        "a snapshot of two groups logs its steps: {text}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for line in &lines {
        let group = span_field(line, "group");
        seen.insert(group.unwrap_or_else(|| panic!("a line without its group: {line}")));
        assert!(
            span_field(line, "incident").is_some_and(|i| i.starts_with("schedule-")),
            "a line without its incident: {line}"
        );
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["prod-nat", "tokyo-vpn"]
    );
}
