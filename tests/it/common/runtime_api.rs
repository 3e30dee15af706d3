//! The real binary under a minimal Lambda Runtime API emulator: the tests and
//! `make bench` hand it events as Lambda does and read its answers, its
//! stdout (the EMF line) and its timeline.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// What the function answered to one event.
#[derive(Debug, Clone)]
pub struct Answer {
    #[allow(
        dead_code,
        reason = "read by benches/failover.rs, which borrows these helpers"
    )]
    pub at: Instant,
    /// False when it posted an error (`/error`) rather than a response.
    pub ok: bool,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// When the function first asked for work.
#[derive(Debug, Default)]
pub struct Timeline {
    pub first_next: Option<Instant>,
}

/// An event, the request id it is delivered under (a new one when `None`),
/// and where its answer goes.
type Queued = (String, Option<String>, oneshot::Sender<Answer>);

/// A minimal Runtime API: hands out queued events on `/next` and passes the
/// function's answer back to whoever queued the event.
pub struct RuntimeApi {
    pub addr: String,
    events: mpsc::UnboundedSender<Queued>,
    pub timeline: Arc<Mutex<Timeline>>,
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

/// Serves one connection of the function's runtime client.
async fn serve(
    mut stream: TcpStream,
    conn: u64,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>>,
    timeline: Arc<Mutex<Timeline>>,
    pending: Arc<Mutex<Option<oneshot::Sender<Answer>>>>,
    timeout_ms: i64,
) {
    while let Some((line, body)) = read_request(&mut stream).await {
        if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
            timeline
                .lock()
                .unwrap()
                .first_next
                .get_or_insert_with(Instant::now);
            let Some((event, request_id, answer)) = rx.lock().await.recv().await else {
                return;
            };
            *pending.lock().unwrap() = Some(answer);
            let deadline = chrono::Utc::now().timestamp_millis() + timeout_ms;
            let request_id = request_id.unwrap_or_else(|| format!("req-{conn}-{deadline}"));
            let headers = format!(
                "Lambda-Runtime-Aws-Request-Id: {request_id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:ap-northeast-1:123456789012:function:ec2-failover\r\n"
            );
            respond(&mut stream, "200 OK", &headers, &event).await;
        } else if line.starts_with("POST /2018-06-01/runtime/invocation/") {
            let ok = !line.contains("/error");
            respond(&mut stream, "202 Accepted", "", "{}").await;
            if let Some(answer) = pending.lock().unwrap().take() {
                let _ = answer.send(Answer {
                    at: Instant::now(),
                    ok,
                    body,
                });
            }
        } else {
            respond(&mut stream, "202 Accepted", "", "{}").await;
        }
    }
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        Self::with_timeout(Duration::from_secs(600)).await
    }

    /// A Runtime API whose invocations have `timeout` (the function's
    /// configured timeout: each deadline is that long after the event is handed out).
    pub async fn with_timeout(timeout: Duration) -> RuntimeApi {
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::unbounded_channel::<Queued>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let tl = timeline.clone();
        let task = tokio::spawn(async move {
            let pending: Arc<Mutex<Option<oneshot::Sender<Answer>>>> = Arc::default();
            let mut conn = 0u64;
            while let Ok((stream, _)) = listener.accept().await {
                conn += 1;
                tokio::spawn(serve(
                    stream,
                    conn,
                    rx.clone(),
                    tl.clone(),
                    pending.clone(),
                    timeout_ms,
                ));
            }
        });
        RuntimeApi {
            addr,
            events: tx,
            timeline,
            task,
        }
    }

    /// Waits until the function asks for work.
    pub async fn ready(&self) -> Instant {
        let started = Instant::now();
        loop {
            if let Some(t) = self.timeline.lock().unwrap().first_next {
                return t;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the function did not ask for an event within 30s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Hands `event` to the function (once it is ready) and waits for its
    /// answer; returns when it was sent and the answer.
    pub async fn invoke(&self, event: &str) -> (Instant, Answer) {
        self.deliver(event, None).await
    }

    /// Hands `event` to the function under `request_id`, as Lambda hands an
    /// asynchronous event to its retries, and waits for the answer.
    pub async fn deliver(&self, event: &str, request_id: Option<&str>) -> (Instant, Answer) {
        self.ready().await;
        let (tx, rx) = oneshot::channel();
        let sent = Instant::now();
        let queued = (event.to_owned(), request_id.map(str::to_owned), tx);
        self.events.send(queued).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .expect("the function answers within 2 minutes")
            .expect("the emulator passes the answer on");
        (sent, answer)
    }
}

/// The function's process, its stdout lines collected.
pub struct Function {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    /// Starts `binary` under `api` with AWS at `endpoint` (dummy credentials)
    /// and `env` as its configuration.
    pub fn spawn(
        binary: &Path,
        api: &RuntimeApi,
        endpoint: &str,
        env: &[(String, String)],
    ) -> Self {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", "ec2-failover")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", super::REGION)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Function { child, lines }
    }

    /// The EMF lines printed so far (one per invocation).
    pub fn emf_lines(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    }
}
