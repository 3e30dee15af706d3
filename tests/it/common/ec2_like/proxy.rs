//! The layer's plumbing: one connection, one request, answered by the rules
//! or passed to moto with `Connection: close`; every exchange logged.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use super::rules::{State, Verdict};
use super::*;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) struct Shared {
    /// moto, as `127.0.0.1:port`.
    pub(super) upstream: String,
    pub(super) started: Instant,
    pub(super) state: Mutex<State>,
    pub(super) connections: Mutex<Vec<AbortHandle>>,
}

/// (id, state name) of each instance in an answer of `action`, for the log.
fn states_told(action: &str, body: &[u8]) -> Vec<(String, String)> {
    let with_instances = [
        "RunInstances",
        "DescribeInstances",
        "StartInstances",
        "StopInstances",
        "TerminateInstances",
    ];
    if !with_instances.contains(&action) {
        return Vec::new();
    }
    instance_states(&String::from_utf8_lossy(body))
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The layer's clock: the monotonic one, plus the time a test let pass.
    pub(super) fn now(&self) -> Instant {
        Instant::now() + self.state().ahead
    }

    pub(super) fn record(
        &self,
        (caller, action): (&str, &str),
        status: u16,
        result: &str,
        by_layer: bool,
        params: &[(String, String)],
    ) {
        self.record_answer(
            (caller, action),
            (status, result),
            by_layer,
            params,
            Vec::new(),
        );
    }

    fn record_answer(
        &self,
        (caller, action): (&str, &str),
        (status, result): (u16, &str),
        by_layer: bool,
        params: &[(String, String)],
        answered: Vec<(String, String)>,
    ) {
        let at = self.started.elapsed();
        let named = named_instances(params);
        if std::env::var_os("EC2_LIKE_TRACE").is_some() {
            eprintln!(
                "ec2_like {:>6}ms {action} {result} {named:?}",
                at.as_millis()
            );
        }
        self.state().log.push(Exchange {
            action: action.to_owned(),
            caller: caller.to_owned(),
            status,
            result: result.to_owned(),
            by_layer,
            instances: named,
            params: params.to_vec(),
            answered,
            at,
        });
    }

    pub(super) async fn serve(&self, mut client: TcpStream) {
        let Some((head, body)) = read_request(&mut client).await else {
            return;
        };
        let answer = self.answer(&head, &body).await;
        let _ = client.write_all(&answer).await;
        let _ = client.shutdown().await;
    }

    async fn answer(&self, head: &str, body: &[u8]) -> Vec<u8> {
        let params = parse_form(body);
        // EC2's query action, or a JSON protocol's target (DynamoDB's
        // `DynamoDB_20120810.PutItem`), which the layer passes on untouched.
        let action = param(&params, "Action")
            .or_else(|| header(head, "x-amz-target").and_then(|t| t.rsplit('.').next()))
            .unwrap_or("(none)")
            .to_owned();
        let who = caller_of(head);
        if param(&params, "Action").is_none() {
            return self.pass_on((&who, &action), head, body).await;
        }
        let now = self.now();
        let verdict = self.state().verdict(&action, &params, now);
        match verdict {
            Verdict::Answer(bytes) => {
                let (status, code) = status_and_code(&bytes);
                self.record((&who, &action), status, &code, true, &params);
                return bytes;
            }
            Verdict::Hang(Hang::Forever) => {
                self.record((&who, &action), 0, "hung", true, &params);
                std::future::pending::<()>().await;
            }
            Verdict::Pass => {}
        }
        let auth = header(head, "authorization").unwrap_or_default().to_owned();
        if action == "RunInstances"
            && let Some(answer) = self.idempotent_launch(&auth, &params).await
        {
            let (status, code) = status_and_code(&answer);
            let answered = parse_response(&answer)
                .map(|a| states_told(&action, &a.body))
                .unwrap_or_default();
            self.record_answer((&who, &action), (status, &code), true, &params, answered);
            return answer;
        }
        if let Some(answer) = self.one_interface_rule(&auth, &action, &params).await {
            let (status, code) = status_and_code(&answer);
            self.record((&who, &action), status, &code, true, &params);
            return answer;
        }
        let images = match (action.as_str(), param(&params, "ImageId")) {
            ("DeregisterImage", Some(image)) => {
                Some((image.to_owned(), self.snapshots_of(&auth, image).await))
            }
            _ => None,
        };
        let Some(answer) = self.forward(head, body).await else {
            self.record((&who, &action), 502, "upstream unreachable", true, &params);
            return plain_response(502, "upstream unreachable");
        };
        let answer = self
            .ec2_answer(&action, (&auth, &params), images, answer)
            .await;
        let code = if answer.status == 200 {
            "OK".to_owned()
        } else {
            error_code(&answer.body).unwrap_or_else(|| answer.status.to_string())
        };
        let answered = states_told(&action, &answer.body);
        self.record_answer(
            (&who, &action),
            (answer.status, &code),
            false,
            &params,
            answered,
        );
        answer.render()
    }
}

impl Shared {
    /// A request of another protocol (DynamoDB's JSON), to moto untouched:
    /// EC2's rules are not its rules.
    async fn pass_on(&self, who: (&str, &str), head: &str, body: &[u8]) -> Vec<u8> {
        let Some(answer) = self.forward(head, body).await else {
            self.record(who, 502, "upstream unreachable", false, &[]);
            return plain_response(502, "upstream unreachable");
        };
        let result = if answer.status == 200 {
            "OK".to_owned()
        } else {
            answer.status.to_string()
        };
        // A JSON protocol's request body (PutEvents' entries), for the tests.
        let json = vec![(
            "json".to_owned(),
            String::from_utf8_lossy(body).into_owned(),
        )];
        self.record(who, answer.status, &result, false, &json);
        answer.render()
    }
}

/// The access key id a request is signed with (`Credential=KEY/...`): tests
/// give each function process its own, to tell their calls apart.
fn caller_of(head: &str) -> String {
    header(head, "authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

impl Shared {
    /// One request of the layer's own to moto, signed like the caller's.
    pub(super) async fn moto(&self, auth: &str, params: &[(&str, &str)]) -> Option<Upstream> {
        let mut body = String::from("Version=2016-11-15");
        for (k, v) in params {
            body.push('&');
            body.push_str(&encode_form(k));
            body.push('=');
            body.push_str(&encode_form(v));
        }
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
            self.upstream,
            body.len()
        );
        self.forward(&head, body.as_bytes()).await
    }

    /// Sends one request to moto with `Connection: close` and reads its answer.
    async fn forward(&self, head: &str, body: &[u8]) -> Option<Upstream> {
        let mut up = TcpStream::connect(&self.upstream).await.ok()?;
        let mut request: String = head
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        request.push_str("Connection: close\r\n\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        up.write_all(&bytes).await.ok()?;
        let mut raw = Vec::new();
        up.read_to_end(&mut raw).await.ok()?;
        parse_response(&raw)
    }
}
