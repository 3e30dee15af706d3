//! An EC2 that behaves like EC2: an HTTP layer on a loopback port in front of
//! moto, so the real SDK client, its retries and its timeouts meet what AWS
//! documents and moto never does.
//!
//! moto runs an instance the moment it is launched, knows a new id at once,
//! never throttles, never refuses and ignores `ClientToken`. The layer answers
//! some EC2 query-protocol requests itself (errors in EC2's
//! `<Response><Errors><Error>` shape with the documented HTTP status), passes
//! the rest to moto with `Connection: close` (one request per connection, each
//! routed afresh), and rewrites some of moto's answers. Which behaviours are on
//! is chosen per scenario with [`Ec2LikeBuilder`]; nothing is on by default, so
//! an unconfigured layer is a transparent proxy.
//!
//! Only instances launched *through the layer* are "new": the seed world is
//! built directly against moto, and the layer's windows start when moto
//! answered the RunInstances that made the instance. Likewise only starts
//! through the layer (StartInstances) open the pending window of a start.
//!
//! Every request is logged ([`Exchange`]: action, HTTP status, result) so a
//! test can assert on what the function asked and what it was told; with
//! `EC2_LIKE_TRACE` set in the environment each one is also printed as it happens.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::retry::RetryPartition;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use ec2_failover::cloud::sdk;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

use super::REGION;

/// How a hung action behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hang {
    /// The request is read and never answered (nor passed on): the caller's
    /// timeouts are all that end it.
    Forever,
    /// The request is passed on, and its answer sent, after this delay.
    For(Duration),
}

/// One request through the layer and what it was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The query-protocol `Action` (`RunInstances`, ...).
    pub action: String,
    /// HTTP status sent back; 0 while a hung request is unanswered.
    pub status: u16,
    /// `OK`, the EC2 error code, or `hung`.
    pub result: String,
    /// True when the layer answered (or hung) itself instead of moto.
    pub by_layer: bool,
    /// Instance ids the request names.
    pub instances: Vec<String>,
    /// (id, state name) of each instance in the answer as sent (RunInstances,
    /// DescribeInstances, Start/Stop/TerminateInstances), after the layer's
    /// rewrites: what the caller was told.
    pub answered: Vec<(String, String)>,
    /// When the answer was sent, since the layer started.
    pub at: Duration,
}

/// What EC2 says about an instance it terminated on launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateReason {
    pub code: String,
    pub message: String,
}

impl StateReason {
    /// EC2's own failure: `Server.InternalError: Internal error on launch`.
    pub fn server_internal_error() -> Self {
        Self::new(
            "Server.InternalError",
            "Server.InternalError: Internal error on launch",
        )
    }

    /// A failure EC2 blames on the request, e.g. an encrypted volume whose KMS
    /// key the account cannot use: `Client.InternalError: Client error on launch`.
    pub fn client_internal_error() -> Self {
        Self::new(
            "Client.InternalError",
            "Client.InternalError: Client error on launch",
        )
    }

    pub fn new(code: &str, message: &str) -> Self {
        Self {
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// The behaviours of one scenario; [`Ec2LikeBuilder::start`] starts the layer.
#[derive(Debug, Clone, Default)]
pub struct Ec2LikeBuilder {
    rules: Rules,
}

#[derive(Debug, Clone, Default)]
struct Rules {
    /// (a) A new instance reads `pending` this long, and AssociateAddress on it
    /// is refused with `IncorrectInstanceState` meanwhile. Each launch keeps
    /// the window in force when it was launched.
    pending_for: Option<Duration>,
    /// (a) The same for an instance started by StartInstances, from the start.
    pending_after_start: Option<Duration>,
    /// (b) A new instance is `InvalidInstanceID.NotFound` to every call that
    /// names it for this long.
    unknown_for: Option<Duration>,
    /// (b) ... except DescribeInstances, which lists it after this (default:
    /// `unknown_for`).
    listed_after: Option<Duration>,
    /// (c) ClientToken honoured as EC2 does.
    client_tokens: bool,
    /// (d) The next launches, one reason each, are terminated right after
    /// RunInstances accepted them.
    deaths: VecDeque<StateReason>,
    /// (e) The first `n` calls of every action (or only of `throttle_only`)
    /// answer `RequestLimitExceeded`.
    throttle_first: u32,
    throttle_only: Option<String>,
    /// (f) Hung actions.
    hangs: HashMap<String, Hang>,
    /// (g) Actions refused with `UnauthorizedOperation`.
    refused: HashSet<String>,
    /// (h) DeleteSnapshot answers `InvalidSnapshot.InUse` this long after the
    /// DeregisterImage of the AMI that used the snapshot.
    snapshot_in_use_for: Option<Duration>,
}

impl Ec2LikeBuilder {
    /// (a) Keep every new instance `pending` for `d` after its launch (moto runs
    /// it at once), refusing AssociateAddress on it meanwhile.
    pub fn pending_for(mut self, d: Duration) -> Self {
        self.rules.pending_for = Some(d);
        self
    }

    /// (a) Keep an instance started by StartInstances `pending` for `d` after
    /// the start (moto runs it at once; EC2 takes ~15 s), refusing
    /// AssociateAddress on it meanwhile; StartInstances answers `pending`.
    pub fn pending_after_start(mut self, d: Duration) -> Self {
        self.rules.pending_after_start = Some(d);
        self
    }

    /// (b) Answer `InvalidInstanceID.NotFound` for `d` after a new instance's
    /// launch to every call that names it (ModifyInstanceAttribute,
    /// AssociateAddress, CreateRoute/ReplaceRoute, DescribeInstances by id...),
    /// and leave it out of filtered DescribeInstances listings meanwhile.
    pub fn unknown_for(mut self, d: Duration) -> Self {
        self.rules.unknown_for = Some(d);
        self
    }

    /// (b) Let DescribeInstances (by id and filtered) know a new instance `d`
    /// after its launch, while other calls wait for `unknown_for`: EC2's API
    /// endpoints converge separately, so an instance seen running may still be
    /// unknown to ModifyInstanceAttribute.
    pub fn listed_after(mut self, d: Duration) -> Self {
        self.rules.listed_after = Some(d);
        self
    }

    /// (c) Honour RunInstances `ClientToken` as EC2 does: the same token with the
    /// same parameters answers the first launch again, with other parameters
    /// `IdempotentParameterMismatch`, and once that instance is terminated
    /// `IdempotentInstanceTerminated` (EC2 keeps tokens at least 24 h).
    pub fn client_tokens(mut self) -> Self {
        self.rules.client_tokens = true;
        self
    }

    /// (d) Terminate the next launches, one per reason, right after RunInstances
    /// accepted them (really, in moto), and report the reason as their
    /// `stateReason`.
    pub fn terminate_launches(mut self, reasons: &[StateReason]) -> Self {
        self.rules.deaths = reasons.iter().cloned().collect();
        self
    }

    /// (e) The first `n` calls of every EC2 action answer `RequestLimitExceeded`
    /// (HTTP 503): a burst, as EC2's token buckets give.
    pub fn throttle_first(mut self, n: u32) -> Self {
        self.rules.throttle_first = n;
        self.rules.throttle_only = None;
        self
    }

    /// (e) The first `n` calls of `action` only are throttled.
    pub fn throttle_action(mut self, action: &str, n: u32) -> Self {
        self.rules.throttle_first = n;
        self.rules.throttle_only = Some(action.to_owned());
        self
    }

    /// (f) Hang every call of `action`.
    pub fn hang(mut self, action: &str, how: Hang) -> Self {
        self.rules.hangs.insert(action.to_owned(), how);
        self
    }

    /// (g) Refuse every call of `action` with `UnauthorizedOperation` (HTTP 403),
    /// as IAM or an SCP does; nothing reaches moto.
    pub fn refuse(mut self, action: &str) -> Self {
        self.rules.refused.insert(action.to_owned());
        self
    }

    /// (h) Answer `InvalidSnapshot.InUse` to DeleteSnapshot for `d` after the
    /// DeregisterImage of the AMI that used the snapshot.
    pub fn snapshot_in_use_for(mut self, d: Duration) -> Self {
        self.rules.snapshot_in_use_for = Some(d);
        self
    }

    /// Starts the layer on a free 127.0.0.1 port in front of `upstream` (moto's
    /// endpoint, itself on 127.0.0.1).
    pub async fn start(self, upstream: &str) -> Ec2Like {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        assert!(
            upstream.starts_with("127.0.0.1:"),
            "the layer only talks to 127.0.0.1, not {upstream}"
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let endpoint = format!(
            "http://{}",
            listener.local_addr().expect("the listener's address")
        );
        let shared = Arc::new(Shared {
            upstream,
            started: Instant::now(),
            state: Mutex::new(State {
                rules: self.rules,
                ..State::default()
            }),
            connections: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let one = accepting.clone();
                let handle = tokio::spawn(async move { one.serve(stream).await });
                let mut open = lock(&accepting.connections);
                open.retain(|h| !h.is_finished());
                open.push(handle.abort_handle());
            }
        });
        Ec2Like {
            endpoint,
            shared,
            task,
        }
    }
}

/// The layer, serving until dropped.
pub struct Ec2Like {
    pub endpoint: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Ec2Like {
    fn drop(&mut self) {
        self.task.abort();
        for h in lock(&self.shared.connections).drain(..) {
            h.abort();
        }
    }
}

impl Ec2Like {
    pub fn builder() -> Ec2LikeBuilder {
        Ec2LikeBuilder::default()
    }

    /// An EC2 client configuration for the layer as the function builds its
    /// own (`sdk::production_loader`: adaptive retry, connect, attempt and
    /// operation timeouts), signed with the same dummy credentials as
    /// [`super::Moto::ec2_conf`].
    pub fn ec2_conf(&self) -> aws_sdk_ec2::Config {
        self.point(
            aws_sdk_ec2::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
                .retry_config(sdk::retry_config())
                .timeout_config(sdk::timeout_config())
                .build(),
        )
    }

    /// `conf` (the function's own retry and timeout settings, say) pointed at
    /// the layer, with a retry partition of its own: the SDK's default one is
    /// process-wide, so its retry quota and adaptive rate limiter would carry
    /// one test's throttling into the tests running beside it.
    pub fn point(&self, conf: aws_sdk_ec2::Config) -> aws_sdk_ec2::Config {
        conf.to_builder()
            .endpoint_url(&self.endpoint)
            .retry_partition(RetryPartition::custom(format!("ec2-like {}", self.endpoint)).build())
            .build()
    }

    /// Switches off the faults (throttling, hangs, refusals) and keeps what EC2
    /// always does (ClientToken, pending and unknown windows, snapshots in use):
    /// the outage is over, the retry comes.
    pub fn heal(&self) {
        let mut s = self.shared.state();
        s.rules.throttle_first = 0;
        s.rules.hangs.clear();
        s.rules.refused.clear();
    }

    /// (a) Changes the pending windows for the launches and starts to come
    /// (`None`: they run at once); instances launched or started before keep
    /// theirs. E.g. a standby built quickly, then a failover measured under
    /// EC2's times.
    pub fn set_pending(&self, after_launch: Option<Duration>, after_start: Option<Duration>) {
        let mut s = self.shared.state();
        s.rules.pending_for = after_launch;
        s.rules.pending_after_start = after_start;
    }

    /// The instant the layer started: [`Exchange::at`] is measured from it.
    pub fn origin(&self) -> Instant {
        self.shared.started
    }

    /// Every request so far, in the order answered (hung ones when they hung).
    pub fn log(&self) -> Vec<Exchange> {
        self.shared.state().log.clone()
    }

    /// The results (`OK`, an error code, `hung`) of every call of `action`.
    pub fn results(&self, action: &str) -> Vec<String> {
        self.shared
            .state()
            .log
            .iter()
            .filter(|e| e.action == action)
            .map(|e| e.result.clone())
            .collect()
    }

    /// How many calls of `action` got `result`.
    pub fn count(&self, action: &str, result: &str) -> usize {
        self.results(action).iter().filter(|r| *r == result).count()
    }

    /// Time since the layer started, the clock of [`Exchange::at`].
    pub fn clock(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Instances launched through the layer, in launch order.
    pub fn launched(&self) -> Vec<String> {
        self.shared.state().launch_order.clone()
    }

    /// Instances the layer terminated on launch, with their reasons.
    pub fn terminated_on_launch(&self) -> Vec<(String, StateReason)> {
        let s = self.shared.state();
        s.launch_order
            .iter()
            .filter_map(|id| Some((id.clone(), s.launches.get(id)?.death.clone()?)))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Shared {
    /// moto, as `127.0.0.1:port`.
    upstream: String,
    started: Instant,
    state: Mutex<State>,
    connections: Mutex<Vec<AbortHandle>>,
}

struct Launch {
    at: Instant,
    death: Option<StateReason>,
    /// The pending window in force at the launch.
    pending: Option<Duration>,
}

struct TokenRecord {
    /// The request's parameters but the token, sorted.
    params: Vec<(String, String)>,
    /// The first answer, replayed.
    answer: Vec<u8>,
    instances: Vec<String>,
}

#[derive(Default)]
struct State {
    rules: Rules,
    launches: HashMap<String, Launch>,
    launch_order: Vec<String>,
    /// Instances started through the layer: when, and the pending window then.
    starts: HashMap<String, (Instant, Duration)>,
    tokens: HashMap<String, TokenRecord>,
    calls: HashMap<String, u32>,
    /// (when, image, its snapshots) of each DeregisterImage that succeeded.
    deregistered: Vec<(Instant, String, Vec<String>)>,
    log: Vec<Exchange>,
    requests: u64,
}

/// What the layer decided before moto sees a request.
enum Verdict {
    Answer(Vec<u8>),
    Hang(Hang),
    Pass,
}

impl State {
    /// Age of a new instance, `None` for one not launched through the layer.
    fn age(&self, id: &str, now: Instant) -> Option<Duration> {
        self.launches.get(id).map(|l| now.duration_since(l.at))
    }

    fn within(&self, id: &str, window: Option<Duration>, now: Instant) -> bool {
        matches!((self.age(id, now), window), (Some(age), Some(w)) if age < w)
    }

    fn unlisted(&self, id: &str, now: Instant) -> bool {
        let window = self.rules.listed_after.or(self.rules.unknown_for);
        self.within(id, window, now)
    }

    fn is_pending(&self, id: &str, now: Instant) -> bool {
        let launching = self.launches.get(id).is_some_and(|l| {
            l.death.is_none() && l.pending.is_some_and(|w| now.duration_since(l.at) < w)
        });
        let starting = self
            .starts
            .get(id)
            .is_some_and(|(at, w)| now.duration_since(*at) < *w);
        launching || starting
    }

    fn request_id(&mut self) -> String {
        self.requests += 1;
        format!("ec2like-{:012}", self.requests)
    }

    fn error(&mut self, status: u16, code: &str, message: &str) -> Vec<u8> {
        let id = self.request_id();
        error_response(status, code, message, &id)
    }

    /// Faults and EC2 rules that need no look at moto, in the order AWS would
    /// apply them: authorisation, throttling, then the resource rules.
    fn verdict(&mut self, action: &str, params: &[(String, String)], now: Instant) -> Verdict {
        if self.rules.refused.contains(action) {
            let message = unauthorized_message(action);
            return Verdict::Answer(self.error(403, "UnauthorizedOperation", &message));
        }
        // Always on: a permitted DryRun is answered `DryRunOperation` (HTTP
        // 412) and changes nothing; moto ignores DryRun on the route calls and
        // really replaces or creates the route.
        let dry_run = param(params, "DryRun") == Some("true");
        if dry_run && matches!(action, "ReplaceRoute" | "CreateRoute") {
            return Verdict::Answer(self.error(
                412,
                "DryRunOperation",
                "Request would have succeeded, but DryRun flag is set.",
            ));
        }
        let n = self.calls.entry(action.to_owned()).or_default();
        *n += 1;
        let throttled = *n <= self.rules.throttle_first
            && self
                .rules
                .throttle_only
                .as_deref()
                .is_none_or(|only| only == action);
        if throttled {
            return Verdict::Answer(self.error(
                503,
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ));
        }
        if let Some(how) = self.rules.hangs.get(action) {
            return Verdict::Hang(*how);
        }
        self.resource_rules(action, params, now)
    }

    fn resource_rules(
        &mut self,
        action: &str,
        params: &[(String, String)],
        now: Instant,
    ) -> Verdict {
        let named = named_instances(params);
        match action {
            "RunInstances" => Verdict::Pass,
            "DescribeInstances" => {
                let unknown: Vec<&String> =
                    named.iter().filter(|id| self.unlisted(id, now)).collect();
                if unknown.is_empty() {
                    return Verdict::Pass;
                }
                let message = not_found_message(&unknown);
                Verdict::Answer(self.error(400, "InvalidInstanceID.NotFound", &message))
            }
            _ => {
                if let Some(id) = named
                    .iter()
                    .find(|id| self.within(id, self.rules.unknown_for, now))
                {
                    let message = not_found_message(&[id]);
                    return Verdict::Answer(self.error(
                        400,
                        "InvalidInstanceID.NotFound",
                        &message,
                    ));
                }
                // EC2's words: "The pending instance 'i-...' is not in a valid
                // state for this operation."
                let target = param(params, "InstanceId");
                let dead = target.filter(|id| {
                    self.launches.get(*id).is_some_and(|l| l.death.is_some())
                        && matches!(action, "AssociateAddress" | "ModifyInstanceAttribute")
                });
                let pending =
                    target.filter(|id| action == "AssociateAddress" && self.is_pending(id, now));
                let wrong = dead
                    .map(|id| (id, "terminated"))
                    .or(pending.map(|id| (id, "pending")));
                if let Some((id, state)) = wrong {
                    let message = format!(
                        "The {state} instance '{id}' is not in a valid state for this operation."
                    );
                    return Verdict::Answer(self.error(400, "IncorrectInstanceState", &message));
                }
                if action == "DeleteSnapshot"
                    && let (Some(snapshot), Some(window)) =
                        (param(params, "SnapshotId"), self.rules.snapshot_in_use_for)
                    && let Some((_, image, _)) = self.deregistered.iter().find(|(at, _, snaps)| {
                        now.duration_since(*at) < window && snaps.iter().any(|s| s == snapshot)
                    })
                {
                    let message = format!("The snapshot {snapshot} is currently in use by {image}");
                    return Verdict::Answer(self.error(400, "InvalidSnapshot.InUse", &message));
                }
                Verdict::Pass
            }
        }
    }

    /// Rewrites DescribeInstances and RunInstances answers: new instances
    /// still `pending`, dead ones with their reason, unlisted ones left out.
    fn rewrite(&self, action: &str, body: &str, now: Instant) -> String {
        let rewritten = rewrite_instances(body, |id, item| {
            if action == "DescribeInstances" && self.unlisted(id, now) {
                return None;
            }
            let death = self.launches.get(id).and_then(|l| l.death.as_ref());
            let running = element_text(item, "instanceState").and_then(|s| element_text(s, "name"))
                == Some("running");
            let item = if action == "RunInstances" || (running && self.is_pending(id, now)) {
                // EC2 answers a launch, and lists a starting instance, so.
                let item = replace_element(item, "instanceState", PENDING_STATE);
                set_state_reason(&item, Some(("pending", "pending")))
            } else if let Some(reason) = death {
                set_state_reason(item, Some((&reason.code, &reason.message)))
            } else if is_empty_state_reason(item) {
                // EC2 leaves StateReason out for an instance that has none.
                set_state_reason(item, None)
            } else {
                item.to_owned()
            };
            Some(item)
        });
        drop_empty_reservations(&rewritten)
    }
}

const PENDING_STATE: &str = "<instanceState><code>0</code><name>pending</name></instanceState>";
const PENDING_CURRENT: &str = "<currentState><code>0</code><name>pending</name></currentState>";

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
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn record(&self, action: &str, status: u16, result: &str, by_layer: bool, named: &[String]) {
        self.record_answer(action, (status, result), by_layer, named, Vec::new());
    }

    fn record_answer(
        &self,
        action: &str,
        (status, result): (u16, &str),
        by_layer: bool,
        named: &[String],
        answered: Vec<(String, String)>,
    ) {
        let at = self.started.elapsed();
        if std::env::var_os("EC2_LIKE_TRACE").is_some() {
            eprintln!(
                "ec2_like {:>6}ms {action} {result} {named:?}",
                at.as_millis()
            );
        }
        self.state().log.push(Exchange {
            action: action.to_owned(),
            status,
            result: result.to_owned(),
            by_layer,
            instances: named.to_vec(),
            answered,
            at,
        });
    }

    async fn serve(&self, mut client: TcpStream) {
        let Some((head, body)) = read_request(&mut client).await else {
            return;
        };
        let answer = self.answer(&head, &body).await;
        let _ = client.write_all(&answer).await;
        let _ = client.shutdown().await;
    }

    async fn answer(&self, head: &str, body: &[u8]) -> Vec<u8> {
        let params = parse_form(body);
        let action = param(&params, "Action").unwrap_or("(none)").to_owned();
        let named = named_instances(&params);
        let verdict = self.state().verdict(&action, &params, Instant::now());
        match verdict {
            Verdict::Answer(bytes) => {
                let (status, code) = status_and_code(&bytes);
                self.record(&action, status, &code, true, &named);
                return bytes;
            }
            Verdict::Hang(Hang::Forever) => {
                self.record(&action, 0, "hung", true, &named);
                std::future::pending::<()>().await;
            }
            Verdict::Hang(Hang::For(d)) => {
                tokio::time::sleep(d).await;
                let verdict = self
                    .state()
                    .resource_rules(&action, &params, Instant::now());
                if let Verdict::Answer(bytes) = verdict {
                    let (status, code) = status_and_code(&bytes);
                    self.record(&action, status, &code, true, &named);
                    return bytes;
                }
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
            self.record_answer(&action, (status, &code), true, &named, answered);
            return answer;
        }
        let images = match (action.as_str(), param(&params, "ImageId")) {
            ("DeregisterImage", Some(image)) => {
                Some((image.to_owned(), self.snapshots_of(&auth, image).await))
            }
            _ => None,
        };
        let Some(answer) = self.forward(head, body).await else {
            self.record(&action, 502, "upstream unreachable", true, &named);
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
        self.record_answer(&action, (answer.status, &code), false, &named, answered);
        answer.render()
    }

    /// moto's answer as EC2 would give it, and what the layer learns from it
    /// (launches, starts, deregistered images).
    async fn ec2_answer(
        &self,
        action: &str,
        (auth, params): (&str, &[(String, String)]),
        images: Option<(String, Vec<String>)>,
        answer: Upstream,
    ) -> Upstream {
        match (action, answer.status) {
            ("RunInstances", 200) => self.launched(auth, params, answer).await,
            ("StartInstances", 200) => self.started(answer),
            ("DescribeInstances", 200) => {
                let body = String::from_utf8_lossy(&answer.body).into_owned();
                let body = self.state().rewrite(action, &body, Instant::now());
                answer.with_body(body.into_bytes())
            }
            ("DeregisterImage", 200) => {
                if let Some((image, snapshots)) = images {
                    self.state()
                        .deregistered
                        .push((Instant::now(), image, snapshots));
                }
                answer
            }
            _ => answer,
        }
    }

    /// (a) A StartInstances moto accepted: with `pending_after_start`, each
    /// instance it really started opens its pending window now and is
    /// answered `pending`, as EC2 does. One already running or pending is left
    /// as it is and answered so (moto says `pending` whatever it was).
    fn started(&self, answer: Upstream) -> Upstream {
        let now = Instant::now();
        let mut s = self.state();
        let Some(window) = s.rules.pending_after_start else {
            return answer;
        };
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        let body = rewrite_instances(&body, |id, item| {
            let before = element_text(item, "previousState").and_then(|p| element_text(p, "name"));
            if matches!(before, Some("running" | "pending")) {
                let (code, name) = if s.is_pending(id, now) {
                    (0, "pending")
                } else {
                    (16, "running")
                };
                let unchanged =
                    |tag: &str| format!("<{tag}><code>{code}</code><name>{name}</name></{tag}>");
                let item = replace_element(item, "previousState", &unchanged("previousState"));
                return Some(replace_element(
                    &item,
                    "currentState",
                    &unchanged("currentState"),
                ));
            }
            s.starts.insert(id.to_owned(), (now, window));
            Some(replace_element(item, "currentState", PENDING_CURRENT))
        });
        answer.with_body(body.into_bytes())
    }

    /// (c) A RunInstances whose token EC2 has seen: the first answer again, or
    /// the documented error. `None` passes the request on (a new token, or
    /// tokens not honoured).
    async fn idempotent_launch(&self, auth: &str, params: &[(String, String)]) -> Option<Vec<u8>> {
        let token = param(params, "ClientToken")?;
        let (same, answer, instances) = {
            let s = self.state();
            if !s.rules.client_tokens {
                return None;
            }
            let seen = s.tokens.get(token)?;
            (
                seen.params == without_token(params),
                seen.answer.clone(),
                seen.instances.clone(),
            )
        };
        if !same {
            let message = format!(
                "Arguments on this idempotent request are inconsistent with arguments used in previous request(s) (client token {token})."
            );
            return Some(
                self.state()
                    .error(400, "IdempotentParameterMismatch", &message),
            );
        }
        let mut terminated = false;
        for id in &instances {
            let state = self.instance_state(auth, id).await;
            terminated |= matches!(state.as_deref(), Some("shutting-down" | "terminated"));
        }
        if terminated {
            let message = format!(
                "The client token {token} has already been used for an instance that has since been terminated."
            );
            return Some(
                self.state()
                    .error(400, "IdempotentInstanceTerminated", &message),
            );
        }
        Some(answer)
    }

    /// A RunInstances moto accepted: remembers the launch (and its token), kills
    /// it when the scenario says so, and answers as EC2 does (`pending`).
    async fn launched(
        &self,
        auth: &str,
        params: &[(String, String)],
        answer: Upstream,
    ) -> Upstream {
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        let ids = instance_ids(&body);
        let now = Instant::now();
        let deaths: Vec<(String, StateReason)> = {
            let mut s = self.state();
            let mut deaths = Vec::new();
            for id in &ids {
                let death = s.rules.deaths.pop_front();
                if let Some(d) = &death {
                    deaths.push((id.clone(), d.clone()));
                }
                let pending = s.rules.pending_for;
                s.launches.insert(
                    id.clone(),
                    Launch {
                        at: now,
                        death,
                        pending,
                    },
                );
                s.launch_order.push(id.clone());
            }
            deaths
        };
        for (id, _) in &deaths {
            let _ = self
                .moto(
                    auth,
                    &[("Action", "TerminateInstances"), ("InstanceId.1", id)],
                )
                .await;
        }
        let mut s = self.state();
        let body = s.rewrite("RunInstances", &body, now);
        let answer = answer.with_body(body.into_bytes());
        if let Some(token) = param(params, "ClientToken")
            && s.rules.client_tokens
        {
            s.tokens.insert(
                token.to_owned(),
                TokenRecord {
                    params: without_token(params),
                    answer: answer.render(),
                    instances: ids,
                },
            );
        }
        answer
    }

    /// moto's state name of `id`, asked directly (not logged, no rules).
    async fn instance_state(&self, auth: &str, id: &str) -> Option<String> {
        let answer = self
            .moto(
                auth,
                &[("Action", "DescribeInstances"), ("InstanceId.1", id)],
            )
            .await?;
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        let state = element_text(&body, "instanceState")?;
        element_text(state, "name").map(str::to_owned)
    }

    /// The snapshots of an AMI, asked of moto before it is deregistered.
    async fn snapshots_of(&self, auth: &str, image: &str) -> Vec<String> {
        let Some(answer) = self
            .moto(auth, &[("Action", "DescribeImages"), ("ImageId.1", image)])
            .await
        else {
            return Vec::new();
        };
        let body = String::from_utf8_lossy(&answer.body);
        all_texts(&body, "snapshotId")
    }

    /// One request of the layer's own to moto, signed like the caller's.
    async fn moto(&self, auth: &str, params: &[(&str, &str)]) -> Option<Upstream> {
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

// ---------------------------------------------------------------------------
// HTTP

/// Reads one request: its head (up to the blank line) and a body of
/// `Content-Length` bytes.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&request, b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    Some((head, request[head_end..head_end + length].to_vec()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (case-insensitive) in an HTTP head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// An answer from moto: status, head lines (status line first) and body.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub status: u16,
    pub head: Vec<String>,
    pub body: Vec<u8>,
}

impl Upstream {
    fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The answer as bytes, with its own `Content-Length` and `Connection: close`.
    pub fn render(&self) -> Vec<u8> {
        let mut out = String::new();
        for (i, line) in self.head.iter().enumerate() {
            let lower = line.to_ascii_lowercase();
            let framing = ["content-length:", "transfer-encoding:", "connection:"]
                .iter()
                .any(|h| lower.starts_with(h));
            if i == 0 || !framing {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Parses a complete HTTP/1.1 response (moto closes the connection after it);
/// a chunked body is decoded.
pub fn parse_response(raw: &[u8]) -> Option<Upstream> {
    let head_end = find(raw, b"\r\n\r\n")?;
    let head_text = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let head: Vec<String> = head_text.split("\r\n").map(str::to_owned).collect();
    let status = head.first()?.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &raw[head_end + 4..];
    let chunked = header(&head_text, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        match header(&head_text, "content-length").and_then(|v| v.parse::<usize>().ok()) {
            Some(n) => rest.get(..n)?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Some(Upstream { status, head, body })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// EC2's error answer: `<Response><Errors><Error>` with the documented status.
pub fn error_response(status: u16, code: &str, message: &str, request_id: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        escape(code),
        escape(message),
        escape(request_id)
    );
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nx-amzn-RequestId: {request_id}\r\nConnection: close\r\n\r\n{body}",
        reason_phrase(status),
        body.len()
    )
    .into_bytes()
}

fn plain_response(status: u16, text: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        reason_phrase(status),
        text.len()
    )
    .into_bytes()
}

/// Status and error code (or `OK`) of a rendered answer.
fn status_and_code(answer: &[u8]) -> (u16, String) {
    match parse_response(answer) {
        Some(a) if a.status == 200 => (200, "OK".to_owned()),
        Some(a) => (
            a.status,
            error_code(&a.body).unwrap_or_else(|| a.status.to_string()),
        ),
        None => (0, "unparsable".to_owned()),
    }
}

/// The `<Code>` of an EC2 error body.
pub fn error_code(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    element_text(&text, "Code").map(str::to_owned)
}

/// `UnauthorizedOperation`'s message, with an encoded authorization failure
/// message as IAM gives (here hex of the decoded text, which
/// `sts decode-authorization-message` would return).
pub fn unauthorized_message(action: &str) -> String {
    let decoded = format!(
        "{{\"allowed\":false,\"explicitDeny\":false,\"matchedStatements\":{{\"items\":[]}},\"context\":{{\"action\":\"ec2:{action}\",\"principal\":{{\"arn\":\"arn:aws:sts::123456789012:assumed-role/ec2-failover/ec2-failover\"}}}}}}"
    );
    let encoded: String = decoded.bytes().map(|b| format!("{b:02x}")).collect();
    format!(
        "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/ec2-failover/ec2-failover is not authorized to perform: ec2:{action}. Encoded authorization failure message: {encoded}"
    )
}

fn not_found_message(ids: &[&String]) -> String {
    match ids {
        [one] => format!("The instance ID '{one}' does not exist"),
        many => format!(
            "The instance IDs '{}' do not exist",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// ---------------------------------------------------------------------------
// The query protocol's form body

/// `application/x-www-form-urlencoded` pairs, in order.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_form(k), decode_form(v))
        })
        .collect()
}

pub fn decode_form(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn encode_form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first value of parameter `name`.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Instance ids a request names (`InstanceId`, `InstanceId.1`, ...), in order.
pub fn named_instances(params: &[(String, String)]) -> Vec<String> {
    params
        .iter()
        .filter(|(k, v)| (k == "InstanceId" || k.starts_with("InstanceId.")) && v.starts_with("i-"))
        .map(|(_, v)| v.clone())
        .collect()
}

/// The parameters that must match for a ClientToken replay: all but the token.
pub fn without_token(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "ClientToken")
        .cloned()
        .collect();
    rest.sort();
    rest
}

// ---------------------------------------------------------------------------
// XML, just enough for EC2's answers (no attributes, no CDATA)

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The next `<tag>` or `<tag/>` (not `<tagX>`) at or after `from`:
/// (start, end of the opening tag, self-closing).
fn next_open(xml: &str, tag: &str, from: usize) -> Option<(usize, usize, bool)> {
    let pattern = format!("<{tag}");
    let mut at = from;
    while let Some(i) = xml.get(at..)?.find(&pattern) {
        let start = at + i;
        let after = start + pattern.len();
        match xml.as_bytes().get(after) {
            Some(b'>') => return Some((start, after + 1, false)),
            Some(b'/') if xml.as_bytes().get(after + 1) == Some(&b'>') => {
                return Some((start, after + 2, true));
            }
            Some(c) if c.is_ascii_whitespace() => {
                let end = start + xml[start..].find('>')? + 1;
                return Some((start, end, xml.as_bytes()[end - 2] == b'/'));
            }
            _ => at = after,
        }
    }
    None
}

/// Ranges of the outermost `tag` elements in `xml`, nested ones included in
/// their parent's range.
pub fn elements(xml: &str, tag: &str) -> Vec<Range<usize>> {
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut at = 0;
    while let Some((start, open_end, self_closing)) = next_open(xml, tag, at) {
        if self_closing {
            found.push(start..open_end);
            at = open_end;
            continue;
        }
        let mut depth = 1;
        let mut cursor = open_end;
        let end = loop {
            let next_close = xml[cursor..].find(&close).map(|i| cursor + i);
            let next_nested = next_open(xml, tag, cursor)
                .filter(|(s, _, sc)| !sc && next_close.is_none_or(|c| *s < c));
            match (next_nested, next_close) {
                (Some((_, nested_end, _)), _) => {
                    depth += 1;
                    cursor = nested_end;
                }
                (None, Some(c)) => {
                    depth -= 1;
                    cursor = c + close.len();
                    if depth == 0 {
                        break Some(cursor);
                    }
                }
                (None, None) => break None,
            }
        };
        let Some(end) = end else { break };
        found.push(start..end);
        at = end;
    }
    found
}

/// The text inside the first `<tag>...</tag>`, `""` for `<tag/>`.
pub fn element_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let range = elements(xml, tag).into_iter().next()?;
    let element = &xml[range];
    let inner_start = element.find('>')? + 1;
    let inner_end = element.rfind("</").filter(|e| *e >= inner_start);
    Some(inner_end.map_or("", |e| &element[inner_start..e]))
}

/// The texts of every outermost `tag` element.
pub fn all_texts(xml: &str, tag: &str) -> Vec<String> {
    elements(xml, tag)
        .into_iter()
        .filter_map(|r| element_text(&xml[r], tag).map(str::to_owned))
        .collect()
}

/// Replaces each outermost `tag` element with `f(element)`, or removes it.
pub fn splice(xml: &str, tag: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut last = 0;
    for r in elements(xml, tag) {
        out.push_str(&xml[last..r.start]);
        if let Some(new) = f(&xml[r.clone()]) {
            out.push_str(&new);
        }
        last = r.end;
    }
    out.push_str(&xml[last..]);
    out
}

/// Replaces the first `tag` element of `xml` with `new` (unchanged if absent).
pub fn replace_element(xml: &str, tag: &str, new: &str) -> String {
    match elements(xml, tag).into_iter().next() {
        Some(r) => format!("{}{new}{}", &xml[..r.start], &xml[r.end..]),
        None => xml.to_owned(),
    }
}

/// Each instance `<item>` of every `<instancesSet>` through `f(id, item)`;
/// `None` leaves the instance out.
pub fn rewrite_instances(xml: &str, mut f: impl FnMut(&str, &str) -> Option<String>) -> String {
    splice(xml, "instancesSet", |set| {
        Some(splice(set, "item", |item| {
            match element_text(item, "instanceId") {
                Some(id) => f(id, item),
                None => Some(item.to_owned()),
            }
        }))
    })
}

/// The ids of the instances in an answer, in order.
pub fn instance_ids(xml: &str) -> Vec<String> {
    let mut ids = Vec::new();
    rewrite_instances(xml, |id, item| {
        ids.push(id.to_owned());
        Some(item.to_owned())
    });
    ids
}

/// (id, state name) of the instances in an answer, in order: `instanceState`
/// (DescribeInstances, RunInstances) or `currentState` (Start/Stop/Terminate).
pub fn instance_states(xml: &str) -> Vec<(String, String)> {
    let mut states = Vec::new();
    rewrite_instances(xml, |id, item| {
        let state = element_text(item, "instanceState")
            .or_else(|| element_text(item, "currentState"))
            .and_then(|s| element_text(s, "name"))
            .unwrap_or_default();
        states.push((id.to_owned(), state.to_owned()));
        Some(item.to_owned())
    });
    states
}

/// Leaves out reservations whose every instance was left out: EC2 never lists
/// an empty reservation.
pub fn drop_empty_reservations(xml: &str) -> String {
    splice(xml, "reservationSet", |set| {
        Some(splice(set, "item", |reservation| {
            let has_instances = elements(reservation, "instancesSet")
                .into_iter()
                .any(|r| !elements(&reservation[r], "item").is_empty());
            has_instances.then(|| reservation.to_owned())
        }))
    })
}

fn is_empty_state_reason(item: &str) -> bool {
    element_text(item, "stateReason").is_some_and(|inner| {
        element_text(inner, "code").unwrap_or_default().is_empty()
            && element_text(inner, "message")
                .unwrap_or_default()
                .is_empty()
    })
}

/// Sets (or, with `None`, removes) an instance item's `stateReason`.
pub fn set_state_reason(item: &str, reason: Option<(&str, &str)>) -> String {
    let new = reason.map_or(String::new(), |(code, message)| {
        format!(
            "<stateReason><code>{}</code><message>{}</message></stateReason>",
            escape(code),
            escape(message)
        )
    });
    if !elements(item, "stateReason").is_empty() {
        return replace_element(item, "stateReason", &new);
    }
    match item.rfind("</item>") {
        Some(end) => format!("{}{new}{}", &item[..end], &item[end..]),
        None => item.to_owned(),
    }
}
