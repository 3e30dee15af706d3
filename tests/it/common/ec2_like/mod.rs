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
//! Likewise a stop takes its time ([`Ec2LikeBuilder::stop_takes`]) only for a
//! StopInstances through the layer, which also gives the instance EC2's
//! `stateTransitionReason` ("User initiated (... GMT)").
//!
//! Only instances launched *through the layer* are "new": the seed world is
//! built directly against moto, and the layer's windows start when moto
//! answered the RunInstances that made the instance. Likewise only starts
//! through the layer (StartInstances) open the pending window of a start.
//!
//! Every request is logged ([`Exchange`]: action, HTTP status, result) so a
//! test can assert on what the function asked and what it was told; with
//! `EC2_LIKE_TRACE` set in the environment each one is also printed as it happens.

mod form;
mod http;
mod proxy;
mod rules;
mod throttle;
mod xml;

// The wire helpers, for the tests of the layer itself.
pub use form::*;
pub use http::*;
pub use rules::unauthorized_message;
pub use xml::*;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::retry::RetryPartition;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use ec2_failover::cloud::sdk;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::REGION;
use proxy::{Shared, lock};
use rules::State;

/// How a hung action behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hang {
    /// The request is read and never answered (nor passed on): the caller's
    /// timeouts are all that end it.
    Forever,
}

/// One request through the layer and what it was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The query-protocol `Action` (`RunInstances`, ...), or the operation of
    /// a JSON-protocol target (`PutItem`) passed on to moto untouched.
    pub action: String,
    /// The access key id the request was signed with.
    pub caller: String,
    /// HTTP status sent back; 0 while a hung request is unanswered.
    pub status: u16,
    /// `OK`, the EC2 error code, or `hung`.
    pub result: String,
    /// True when the layer answered (or hung) itself instead of moto.
    pub by_layer: bool,
    /// Instance ids the request names.
    pub instances: Vec<String>,
    /// The request's form parameters (`Force=true`, ...); for a JSON-protocol
    /// request passed on, its body as `json`.
    pub params: Vec<(String, String)>,
    /// (id, state name) of each instance in the answer as sent (RunInstances,
    /// DescribeInstances, Start/Stop/TerminateInstances), after the layer's
    /// rewrites: what the caller was told.
    pub answered: Vec<(String, String)>,
    /// When the answer was sent, since the layer started.
    pub at: Duration,
}

impl Exchange {
    /// An EC2 call that changes something (as `Operation` classes it).
    pub fn is_ec2_change(&self) -> bool {
        ec2_failover::cloud::Operation::ALL.iter().any(|op| {
            op.name() == self.action && op.mutating() && op.service().iam_prefix() == "ec2"
        })
    }
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
    /// (a) After a StartInstances, DescribeInstances still reads the instance
    /// `stopped` (the state before the start) for this long.
    stale_after_start: Option<Duration>,
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
    /// (e) The first `n` calls of every action answer `RequestLimitExceeded`.
    throttle_first: u32,
    /// (f) Hung actions.
    hangs: HashMap<String, Hang>,
    /// (g) Actions refused with `UnauthorizedOperation`.
    refused: HashSet<String>,
    /// (h) DeleteSnapshot answers `InvalidSnapshot.InUse` this long after the
    /// DeregisterImage of the AMI that used the snapshot.
    snapshot_in_use_for: Option<Duration>,
    /// (i) A plain StopInstances of a running instance keeps it `stopping`
    /// this long (none: stopped at once, as moto does).
    stop_takes: Option<Duration>,
    /// (i) EBS encryption by default on, with this default key (`None`: the
    /// AWS managed key); moto answers GetEbsEncryptionByDefault (false unless
    /// enabled in moto) but lacks GetEbsDefaultKmsKeyId.
    volumes_encrypted_with: Option<Option<String>>,
    /// (i) KMS keys the caller may not use: a launch whose volumes get one dies.
    forbidden_keys: Vec<String>,
    /// (j) EC2's token buckets ([`throttle`]), every size and rate times this.
    token_buckets: Option<f64>,
}

impl Ec2LikeBuilder {
    /// (a) Keep every new instance `pending` for `d` after its launch (moto runs
    /// it at once), refusing AssociateAddress on it meanwhile.
    pub fn pending_for(mut self, d: Duration) -> Self {
        self.rules.pending_for = Some(d);
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

    /// (j) Throttle as EC2's documented token buckets do (per API request
    /// buckets, and per-instance resource buckets for launches, starts, stops
    /// and terminations), every bucket's size and refill rate times `scale`
    /// (1.0: EC2's own figures).
    pub fn token_buckets(mut self, scale: f64) -> Self {
        self.rules.token_buckets = Some(scale);
        self
    }

    /// (e) The first `n` calls of every EC2 action answer `RequestLimitExceeded`
    /// (HTTP 503): a burst, as EC2's token buckets give.
    pub fn throttle_first(mut self, n: u32) -> Self {
        self.rules.throttle_first = n;
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

    /// (a) After a StartInstances, DescribeInstances still reads the started
    /// instance `stopped` for `d` (EC2's eventual consistency).
    pub fn stale_after_start(mut self, d: Duration) -> Self {
        self.rules.stale_after_start = Some(d);
        self
    }

    /// (h) Answer `InvalidSnapshot.InUse` to DeleteSnapshot for `d` after the
    /// DeregisterImage of the AMI that used the snapshot.
    pub fn snapshot_in_use_for(mut self, d: Duration) -> Self {
        self.rules.snapshot_in_use_for = Some(d);
        self
    }

    /// (i) Keep an instance a plain StopInstances stopped `stopping` for `d`
    /// (moto stops at once); StartInstances is refused meanwhile, `Force`
    /// ends it.
    pub fn stop_takes(mut self, d: Duration) -> Self {
        self.rules.stop_takes = Some(d);
        self
    }

    /// (i) EBS encryption by default on, every new volume encrypted with `key`
    /// (`None`: the AWS managed key, `alias/aws/ebs`): the layer answers
    /// GetEbsEncryptionByDefault and GetEbsDefaultKmsKeyId (which moto lacks).
    pub fn encrypt_volumes_by_default(mut self, key: Option<&str>) -> Self {
        self.rules.volumes_encrypted_with = Some(key.map(str::to_owned));
        self
    }

    /// (i) The caller may not use this KMS key: with encryption by default on
    /// with it, every launch is terminated right after RunInstances accepted
    /// it (`Client.InternalError`), as EC2 does when it cannot use the key.
    pub fn forbid_kms_key(mut self, key: &str) -> Self {
        self.rules.forbidden_keys.push(key.to_owned());
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
                throttle: self.rules.token_buckets.map(throttle::Throttle::new),
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
    #[allow(
        dead_code,
        reason = "used by benches/failover.rs, which borrows these helpers"
    )]
    pub fn set_pending(&self, after_launch: Option<Duration>, after_start: Option<Duration>) {
        let mut s = self.shared.state();
        s.rules.pending_for = after_launch;
        s.rules.pending_after_start = after_start;
    }

    /// (i) Changes how long the stops to come take (`None`: at once); stops
    /// under way keep theirs.
    pub fn set_stop_takes(&self, d: Option<Duration>) {
        self.shared.state().rules.stop_takes = d;
    }

    /// Lets `d` pass for the layer's windows (pending, unknown, stopping,
    /// snapshots in use) at once; moto's clock and the function's do not move.
    pub fn pass_time(&self, d: Duration) {
        self.shared.state().ahead += d;
    }

    /// (j) Everything so far happened `d` earlier: DescribeInstances reports
    /// the launch and attach times from before now that much older (a world
    /// built hours ago, its standby launched then); later times are as moto
    /// gives them.
    pub fn age_everything(&self, d: Duration) {
        let by = chrono::TimeDelta::from_std(d).expect("a duration chrono can hold");
        self.shared.state().aged = Some((chrono::Utc::now(), by));
    }

    /// The instant the layer started: [`Exchange::at`] is measured from it.
    #[allow(
        dead_code,
        reason = "used by benches/failover.rs, which borrows these helpers"
    )]
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
