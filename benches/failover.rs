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

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use common::{Moto, World, build_world, sample, settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

const COLD_STARTS: usize = 15;
const FAILOVERS_PER_SIZE: usize = 5;
const ACCOUNT_SIZES: [usize; 3] = [1, 100, 2000];

const BUDGET_COLD_START_MS: f64 = 50.0;
const BUDGET_RSS_MB: f64 = 30.0;
const BUDGET_CALLS: u64 = 20;
const BUDGET_BYTES_RATIO: f64 = 1.5;

/// What the emulator saw of one function process.
#[derive(Debug, Default)]
struct Timeline {
    first_next: Option<Instant>,
    response: Option<(Instant, String)>,
}

/// A minimal Lambda Runtime API: hands out queued events on `/next` and
/// records when the function asked and answered.
struct RuntimeApi {
    addr: String,
    events: mpsc::UnboundedSender<(String, oneshot::Sender<()>)>,
    timeline: Arc<Mutex<Timeline>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    Some((request_line, String::from_utf8_lossy(&body).to_string()))
}

async fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(msg.as_bytes()).await;
}

impl RuntimeApi {
    async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::unbounded_channel::<(String, oneshot::Sender<()>)>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let tl = timeline.clone();
        let task = tokio::spawn(async move {
            let mut seq = 0u64;
            let pending: Arc<Mutex<Option<oneshot::Sender<()>>>> = Arc::default();
            while let Ok((mut stream, _)) = listener.accept().await {
                let (rx, tl, pending) = (rx.clone(), tl.clone(), pending.clone());
                seq += 1;
                let conn = seq;
                tokio::spawn(async move {
                    while let Some((line, body)) = read_request(&mut stream).await {
                        if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
                            tl.lock()
                                .unwrap()
                                .first_next
                                .get_or_insert_with(Instant::now);
                            let Some((event, done)) = rx.lock().await.recv().await else {
                                return;
                            };
                            *pending.lock().unwrap() = Some(done);
                            let deadline = chrono::Utc::now().timestamp_millis() + 600_000;
                            let headers = format!(
                                "Lambda-Runtime-Aws-Request-Id: bench-{conn}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:ap-northeast-1:123456789012:function:ec2-failover\r\n"
                            );
                            respond(&mut stream, "200 OK", &headers, &event).await;
                        } else if line.starts_with("POST /2018-06-01/runtime/invocation/") {
                            tl.lock().unwrap().response = Some((Instant::now(), body));
                            respond(&mut stream, "202 Accepted", "", "{}").await;
                            if let Some(done) = pending.lock().unwrap().take() {
                                let _ = done.send(());
                            }
                        } else {
                            respond(&mut stream, "202 Accepted", "", "{}").await;
                        }
                    }
                });
            }
        });
        RuntimeApi {
            addr,
            events: tx,
            timeline,
            task,
        }
    }
}

fn binary() -> PathBuf {
    std::env::var_os("BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/ec2-failover")
        })
}

/// Starts the function under the emulator; stdout lines are collected.
fn spawn(
    api: &RuntimeApi,
    moto: &Moto,
    env: &[(String, String)],
) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "ec2-failover")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", common::REGION)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {}: {e} (run `make bench`, which builds it)",
            binary().display()
        )
    });
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines)
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

fn env_of(w: &World) -> Vec<(String, String)> {
    let s = settings(w, &[]);
    vec![
        ("INSTANCE_NAME".into(), s.appliance.instance_name),
        ("AMI_NAME".into(), s.appliance.ami_name),
        ("VPC_NAME".into(), s.appliance.vpc_name),
        ("SUBNET_NAME".into(), s.failover.subnet_name),
        ("ROUTE_CIDRS".into(), common::VPN_CIDR.into()),
        ("FLOATING_IP".into(), w.floating_ip.clone()),
    ]
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
    let (mut child, lines) = spawn(&api, &moto, &env_of(&w));
    let (done_tx, done_rx) = oneshot::channel();
    let event = sample("sns-alarm.json").to_string();
    // Wait until the function asks for work, then time the invocation.
    while api.timeline.lock().unwrap().first_next.is_none() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let sent = Instant::now();
    api.events.send((event, done_tx)).unwrap();
    tokio::time::timeout(Duration::from_secs(120), done_rx)
        .await
        .expect("the function answers within 2 minutes")
        .unwrap();
    let (answered, body) = api.timeline.lock().unwrap().response.clone().unwrap();
    let rss_kb = peak_rss_kb(child.id()).unwrap_or(0);
    // The EMF line is printed right before the answer; give the pipe a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = child.kill();
    let _ = child.wait();
    let emf = lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("_aws").is_some())
        .expect("the function prints an EMF line");
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
    let (mut child, _) = spawn(&api, moto, env);
    let ready = loop {
        if let Some(t) = api.timeline.lock().unwrap().first_next {
            break t;
        }
        if started.elapsed() > Duration::from_secs(30) {
            panic!("the function did not ask for an event within 30s");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
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
    let env = env_of(&w);
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
