//! `make bench`: cold start, failover time, peak memory and AWS cost of the
//! release binary, against moto on loopback, under a minimal Lambda Runtime
//! API emulator (this file). Writes BENCHMARKS.md and prints pass/fail lines
//! for the budgets; exits non-zero when one fails.
//!
//! Method, per measured run:
//! - cold start: from spawning the binary to its first `GET /runtime/invocation/next`
//!   (process start, settings, SDK clients, runtime ready);
//! - failover: from handing the SNS alarm to the function to receiving its
//!   response (the whole handler, every AWS call to moto included);
//! - peak RSS: `VmHWM` of the process after the failover;
//! - AWS calls and bytes received: from the function's own EMF metrics line,
//!   which an SDK interceptor fills (retries included).
//!
//! Account sizes 1, 100 and 2,000 unrelated instances test that the cost of a
//! failover does not grow with the account: calls must stay equal and bytes
//! within 1.5x. Time is reported too, but moto's own filtering slows with the
//! number of instances, so on moto time is not the measure of flatness.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use common::runtime_api::{Function, RuntimeApi};
use common::{Moto, build_world, sample};

const COLD_STARTS: usize = 15;
const FAILOVERS_PER_SIZE: usize = 5;
const ACCOUNT_SIZES: [usize; 3] = [1, 100, 2000];

const BUDGET_COLD_START_MS: f64 = 50.0;
const BUDGET_RSS_MB: f64 = 30.0;
const BUDGET_CALLS: u64 = 20;
const BUDGET_BYTES_RATIO: f64 = 1.5;

fn binary() -> PathBuf {
    std::env::var_os("BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/ec2-failover")
        })
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Adds `n` instances that have nothing to do with the appliance, in a VPC of
/// their own with room for thousands of addresses.
async fn add_unrelated_instances(ec2: &aws_sdk_ec2::Client, n: usize) {
    if n == 0 {
        return;
    }
    let image = common::base_image(ec2).await;
    let vpc = common::vpc(ec2, "10.50.0.0/16", "unrelated").await;
    let az = format!("{}a", common::REGION);
    let subnet = common::subnet(ec2, &vpc, "10.50.0.0/16", &az, "unrelated").await;
    let mut left = n;
    while left > 0 {
        let batch = left.min(250);
        ec2.run_instances()
            .image_id(&image)
            .instance_type(InstanceType::T3Micro)
            .min_count(batch as i32)
            .max_count(batch as i32)
            .subnet_id(&subnet)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("Name").value("unrelated").build())
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "adding unrelated instances: {}",
                    aws_sdk_ec2::error::DisplayErrorContext(&e)
                )
            });
        left -= batch;
    }
}

struct FailoverRun {
    handler_ms: f64,
    rss_mb: f64,
    calls: u64,
    bytes: u64,
    outcome: String,
}

async fn one_failover(unrelated: usize) -> FailoverRun {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    // The world already holds two unrelated instances (web, a sophos in another VPC).
    add_unrelated_instances(&ec2, unrelated.saturating_sub(1)).await;
    let api = RuntimeApi::start().await;
    let function = Function::spawn(&binary(), &api, &moto.endpoint, &common::env_of(&w, &[]));
    let (sent, answer) = api.invoke(&sample("sns-alarm.json").to_string()).await;
    let rss_kb = peak_rss_kb(function.child.id()).unwrap_or(0);
    // The EMF line is printed right before the answer; give the pipe a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let emf = function
        .emf_lines()
        .into_iter()
        .next()
        .expect("the function prints an EMF line");
    drop(function);
    let (answered, body) = (answer.at, answer.body);
    let outcome = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["outcome"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("error: {body}"));
    FailoverRun {
        handler_ms: (answered - sent).as_secs_f64() * 1000.0,
        rss_mb: rss_kb as f64 / 1024.0,
        calls: emf["AwsCalls"].as_u64().unwrap_or(0),
        bytes: emf["BytesReceived"].as_u64().unwrap_or(0),
        outcome,
    }
}

async fn cold_start_ms(moto: &Moto, env: &[(String, String)]) -> f64 {
    let api = RuntimeApi::start().await;
    let started = Instant::now();
    let function = Function::spawn(&binary(), &api, &moto.endpoint, env);
    let ready = api.ready().await;
    drop(function);
    (ready - started).as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.1}–{max:.1}")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {mem} RAM, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; nothing to list.
    }
    let mut out = String::new();
    let mut budgets: Vec<(bool, String)> = Vec::new();

    // Cold start: settings and clients only, no AWS call before the first event.
    let moto = Moto::start();
    let w = build_world(&moto.ec2()).await;
    let env = common::env_of(&w, &[]);
    let mut cold = Vec::new();
    for _ in 0..COLD_STARTS {
        cold.push(cold_start_ms(&moto, &env).await);
    }
    drop(moto);

    let mut rows = Vec::new();
    let mut per_size = Vec::new();
    for size in ACCOUNT_SIZES {
        let mut runs = Vec::new();
        for _ in 0..FAILOVERS_PER_SIZE {
            runs.push(one_failover(size).await);
        }
        let ms: Vec<f64> = runs.iter().map(|r| r.handler_ms).collect();
        let rss: Vec<f64> = runs.iter().map(|r| r.rss_mb).collect();
        let calls: Vec<f64> = runs.iter().map(|r| r.calls as f64).collect();
        let bytes: Vec<f64> = runs.iter().map(|r| r.bytes as f64).collect();
        let outcomes: Vec<&str> = runs.iter().map(|r| r.outcome.as_str()).collect();
        assert!(
            outcomes.iter().all(|o| *o == "failed_over"),
            "every measured run must fail over: {outcomes:?}"
        );
        rows.push(format!(
            "| {size} | {:.1} ({}) | {:.1} ({}) | {:.0} ({}) | {:.0} ({}) |",
            median(&ms),
            spread(&ms),
            median(&rss),
            spread(&rss),
            median(&calls),
            spread(&calls),
            median(&bytes),
            spread(&bytes),
        ));
        per_size.push((size, median(&calls), median(&bytes), median(&rss)));
    }

    let zip = std::env::var("BENCH_ZIP").ok().filter(|p| !p.is_empty());
    let zip_size = zip
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());

    let cold_median = median(&cold);
    budgets.push((
        cold_median < BUDGET_COLD_START_MS,
        format!("cold start median {cold_median:.1} ms < {BUDGET_COLD_START_MS} ms"),
    ));
    let rss_max = per_size.iter().map(|p| p.3).fold(0.0, f64::max);
    budgets.push((
        rss_max < BUDGET_RSS_MB,
        format!("peak RSS {rss_max:.1} MB < {BUDGET_RSS_MB} MB"),
    ));
    let calls_max = per_size.iter().map(|p| p.1).fold(0.0, f64::max) as u64;
    budgets.push((
        calls_max <= BUDGET_CALLS,
        format!("AWS calls per failover {calls_max} <= {BUDGET_CALLS}"),
    ));
    let (_, calls_1, bytes_1, _) = per_size[0];
    let (_, calls_n, bytes_n, _) = per_size[per_size.len() - 1];
    budgets.push((
        calls_n == calls_1,
        format!("calls flat: {calls_n:.0} at 2,000 instances == {calls_1:.0} at 1"),
    ));
    let ratio = bytes_n / bytes_1;
    budgets.push((
        ratio <= BUDGET_BYTES_RATIO,
        format!("bytes flat: {bytes_n:.0} at 2,000 instances is {ratio:.2}x the {bytes_1:.0} at 1 (<= {BUDGET_BYTES_RATIO}x)"),
    ));

    out.push_str("# Benchmarks\n\n");
    out.push_str("Written by `make bench` (benches/failover.rs); rerun it to refresh. Figures are medians with (min–max) over the runs.\n\n");
    out.push_str(&format!("Machine: {}.\n\n", machine()));
    out.push_str(
        "Method: the release binary runs under a minimal Lambda Runtime API emulator (benches/failover.rs) \
         with moto server on 127.0.0.1 as AWS. Cold start is spawn to the first `GET /runtime/invocation/next`. \
         Failover time is from handing the SNS alarm (events/sns-alarm.json) to the function to receiving its answer, \
         on the seed article's world (tests/common) plus N unrelated instances. Peak RSS is VmHWM after the failover. \
         AWS calls and bytes received come from the function's own EMF line (SDK interceptor; retries included). \
         Moto answers on loopback and starts instances at once, so failover time here is the function's own cost \
         plus moto's, not what AWS takes (real EC2 needs tens of seconds to start an instance); moto's filtering also \
         slows as the account grows, which is why flatness is judged by calls and bytes, not time.\n\n",
    );
    out.push_str(&format!(
        "## Cold start ({COLD_STARTS} runs)\n\n{cold_median:.1} ms median ({} ms)\n\n",
        spread(&cold)
    ));
    out.push_str(&format!(
        "## Failover ({FAILOVERS_PER_SIZE} runs per account size)\n\n| unrelated instances | failover ms | peak RSS MB | AWS calls | bytes received |\n| --- | --- | --- | --- | --- |\n{}\n\n",
        rows.join("\n")
    ));
    out.push_str(&match (zip.as_deref(), zip_size) {
        (Some(p), Some(n)) => format!(
            "## Artifact\n\n{p}: {n} bytes ({:.2} MiB){}\n\n",
            n as f64 / 1024.0 / 1024.0,
            if p.contains("target/lambda/") {
                ", the arm64 Lambda zip of `make build`"
            } else {
                ", the host's release binary zipped as `bootstrap` (run `make build` first to measure the arm64 Lambda zip instead)"
            }
        ),
        _ => "## Artifact\n\nnot measured (BENCH_ZIP unset or missing)\n\n".to_owned(),
    });
    out.push_str("## Budgets\n\n");
    for (ok, line) in &budgets {
        out.push_str(&format!(
            "- {}: {line}\n",
            if *ok { "PASS" } else { "FAIL" }
        ));
    }

    print!("{out}");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    std::fs::write(&path, &out).unwrap();
    println!("\nwritten to {}", path.display());
    if budgets.iter().any(|(ok, _)| !ok) {
        std::process::exit(1);
    }
}
