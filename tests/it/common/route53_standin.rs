//! A stand-in for the Route 53 operations moto lacks or cannot vary, over real
//! HTTP on a loopback port, so the real Route 53 client and adapter parse a
//! real AWS-shaped response:
//! - `GetHealthCheckStatus` with the checker observations a test chooses;
//! - `GetCheckerIpRanges` (moto answers 404) with the ranges a test chooses,
//!   changeable between invocations.
//!
//! Every other request is passed through to an upstream (moto) when one is
//! given, so one Route 53 client reaches both, as the function's does in AWS.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Route53StandIn {
    pub endpoint: String,
    ranges: Arc<Mutex<Vec<String>>>,
    throttle: Arc<Mutex<Throttle>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Route53StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Route 53's API quota, "five requests per second per AWS account" for every
/// Route 53 call together, as a token bucket of that many tokens refilled at
/// that rate (off unless a test asks for it).
#[derive(Default)]
struct Throttle {
    per_second: Option<f64>,
    tokens: f64,
    at: Option<std::time::Instant>,
    throttled: usize,
}

impl Throttle {
    fn admit(&mut self) -> bool {
        let Some(rate) = self.per_second else {
            return true;
        };
        let now = std::time::Instant::now();
        let elapsed = self
            .at
            .map_or(rate, |at| now.duration_since(at).as_secs_f64() * rate);
        self.tokens = (self.tokens + elapsed).min(rate);
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        self.throttled += 1;
        false
    }
}

const XMLNS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

fn status_xml(statuses: &[String]) -> String {
    let observations: String = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "<HealthCheckObservation><Region>us-east-1</Region><IPAddress>15.177.2.{i}</IPAddress>\
                 <StatusReport><Status>{s}</Status><CheckedTime>2026-11-21T09:00:0{i}.000Z</CheckedTime></StatusReport>\
                 </HealthCheckObservation>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetHealthCheckStatusResponse xmlns=\"{XMLNS}\">\
         <HealthCheckObservations>{observations}</HealthCheckObservations></GetHealthCheckStatusResponse>"
    )
}

/// The documented response shape: `CheckerIpRanges` holding `member` strings.
fn ranges_xml(ranges: &[String]) -> String {
    let members: String = ranges
        .iter()
        .map(|r| format!("<member>{r}</member>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetCheckerIpRangesResponse xmlns=\"{XMLNS}\">\
         <CheckerIpRanges>{members}</CheckerIpRanges></GetCheckerIpRangesResponse>"
    )
}

fn reply(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nx-amzn-RequestId: standin\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Sends one request to `upstream` and copies the answer back. The request is
/// rewritten to `Connection: close`, so each connection carries one request
/// and the next one is routed afresh.
async fn pass_through(upstream: &str, head: &str, body: &[u8], client: &mut TcpStream) {
    let Ok(mut up) = TcpStream::connect(upstream.trim_start_matches("http://")).await else {
        let _ = client
            .write_all(reply("502 Bad Gateway", "upstream unreachable").as_bytes())
            .await;
        return;
    };
    let mut request: String = head
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    request.push_str("Connection: close\r\n\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    if up.write_all(&bytes).await.is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer).await;
    let _ = client.write_all(&answer).await;
}

impl Route53StandIn {
    /// Answers every GetHealthCheckStatus with one observation per status line
    /// (Route 53 writes `Success: ...` or `Failure: ...`).
    pub async fn start(statuses: &[&str]) -> Route53StandIn {
        Self::serve(statuses, &[], None).await
    }

    /// Serves GetCheckerIpRanges with `ranges`, and passes everything else
    /// (GetHealthCheck, record sets...) to moto at `upstream`.
    pub async fn with_ranges(ranges: &[&str], upstream: &str) -> Route53StandIn {
        Self::serve(&[], ranges, Some(upstream.to_owned())).await
    }

    /// Throttles every request beyond `per_second` a second (Route 53's
    /// account quota is 5), answering `Throttling` as Route 53 does.
    pub fn throttle(&self, per_second: f64) {
        self.throttle.lock().unwrap().per_second = Some(per_second);
    }

    /// Requests answered `Throttling` so far.
    pub fn throttled(&self) -> usize {
        self.throttle.lock().unwrap().throttled
    }

    /// What the next GetCheckerIpRanges answers (Route 53 changed its list).
    pub fn set_ranges(&self, ranges: &[&str]) {
        *self.ranges.lock().unwrap() = ranges.iter().map(|r| (*r).to_owned()).collect();
    }

    async fn serve(statuses: &[&str], ranges: &[&str], upstream: Option<String>) -> Route53StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let status_body = Arc::new(status_xml(
            &statuses.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        ));
        let ranges = Arc::new(Mutex::new(
            ranges.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>(),
        ));
        let shared_ranges = ranges.clone();
        let throttle = Arc::new(Mutex::new(Throttle::default()));
        let shared_throttle = throttle.clone();
        let upstream = Arc::new(upstream);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let status_body = status_body.clone();
                let ranges = shared_ranges.clone();
                let throttle = shared_throttle.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
                    let length: usize = head
                        .split("\r\n")
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while request.len() < head_end + length {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = &request[head_end..head_end + length];
                    let admitted = throttle.lock().unwrap().admit();
                    let response = if !admitted {
                        reply(
                            "400 Bad Request",
                            &format!(
                                "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>standin</RequestId></ErrorResponse>"
                            ),
                        )
                    } else if head.starts_with("GET /2013-04-01/healthcheck/")
                        && head.contains("/status")
                        && upstream.is_none()
                    {
                        reply("200 OK", &status_body)
                    } else if head.starts_with("GET /2013-04-01/checkeripranges") {
                        let list = ranges.lock().unwrap().clone();
                        reply("200 OK", &ranges_xml(&list))
                    } else if let Some(up) = upstream.as_ref() {
                        pass_through(up, &head, body, &mut stream).await;
                        let _ = stream.shutdown().await;
                        return;
                    } else {
                        reply(
                            "400 Bad Request",
                            "<ErrorResponse><Error><Code>InvalidInput</Code><Message>stand-in serves GetHealthCheckStatus and GetCheckerIpRanges only</Message></Error></ErrorResponse>",
                        )
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Route53StandIn {
            endpoint,
            ranges,
            throttle,
            task,
        }
    }
}
