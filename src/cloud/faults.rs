//! A [`Cloud`] wrapper that injects failures and records every call.
//!
//! Shaped after mountpoint-s3-client's `failure_client`: it wraps the real
//! adapter, so what is not failed really happens in AWS (or the emulator).
//! Tests use it to prove that a failover survives throttling, capacity errors
//! and a crash at any call; the benchmark uses its call log to count round trips.
//!
//! Its [`Cloud`] impl is generated from the trait's method list
//! (`cloud_methods!` in `cloud/mod.rs`): every call passes one gate as the
//! operation and target its entry names, so a new call needs no code here. The
//! few calls that do more (a hidden instance, a kept launch request, a dry run,
//! an alarm query naming its operation) have their own arm in `faulty_method!`.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use super::usage::UsageSnapshot;
use super::{
    Address, Alarm, AlarmQuery, CheckerReport, Cidr, Cloud, CloudError, GroupIngress, Image,
    ImageRequest, IngressRule, Instance, LaunchRequest, Operation, Permission, Probe, RecordSet,
    RouteTable, SecurityGroup, Snapshot, Subnet, Tag, Vpc,
};

/// One call that reached the wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: &'static str,
    /// The resource the call names (instance, subnet, route table...).
    pub target: String,
    /// True for calls that change something in AWS.
    pub mutating: bool,
    /// True when the wrapper failed it.
    pub failed: bool,
    /// When it was made: calls of several wrappers over one world can be ordered.
    pub at: std::time::Instant,
}

/// A failure to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Call `n` (1-based, every call counts) fails with AWS error `code`.
    FailCall { n: usize, code: String },
    /// Every call after the first `n` fails with AWS error `code`.
    FailAfter { n: usize, code: String },
    /// The invocation dies at the `k`-th mutating call (1-based): with
    /// `after_effect`, AWS carries the call out but the answer is lost; without,
    /// the call never reaches AWS. Every later call fails as well.
    DieAtMutation { k: usize, after_effect: bool },
    /// Calls to `operation` whose target contains `target` (any target when
    /// empty) fail with `code`, at most `times` times (always when `None`).
    FailOperation {
        operation: &'static str,
        target: String,
        code: String,
        times: Option<usize>,
    },
    /// DescribeInstances by id does not list the instance yet, as EC2 may not
    /// right after RunInstances; `times` looks (always when `None`).
    HideInstance { times: Option<usize> },
}

#[derive(Debug, Default)]
struct State {
    faults: Vec<(Fault, usize)>,
    calls: Vec<Call>,
    /// Every RunInstances request, sent or probed: what IAM would see of it.
    launches: Vec<LaunchRequest>,
    mutations: usize,
    dead: bool,
}

enum Gate {
    Proceed,
    Fail(CloudError),
    /// Let the call happen, then lose its answer.
    Lose(CloudError),
    Hide,
}

/// The call being gated: what each fault is matched against.
struct Attempt<'a> {
    operation: Operation,
    target: &'a str,
    mutating: bool,
    /// 1-based, every call counts.
    n: usize,
    /// 1-based count of mutating calls so far, this one included.
    mutation: usize,
}

impl Attempt<'_> {
    /// What `fault` (used `used` times so far) does to this call, if it hits it.
    fn hit_by(&self, fault: &Fault, used: usize) -> Option<Gate> {
        let op = self.operation;
        match fault {
            Fault::FailCall { n, code } if *n == self.n => Some(Gate::Fail(injected(op, code))),
            Fault::FailAfter { n, code } if self.n > *n => Some(Gate::Fail(injected(op, code))),
            Fault::DieAtMutation { k, after_effect } if self.mutating && *k == self.mutation => {
                Some(if *after_effect {
                    Gate::Lose(crashed(op))
                } else {
                    Gate::Fail(crashed(op))
                })
            }
            Fault::FailOperation {
                operation,
                target,
                code,
                times,
            } if *operation == op.name()
                && self.target.contains(target.as_str())
                && times.is_none_or(|max| used < max) =>
            {
                Some(Gate::Fail(injected(op, code)))
            }
            Fault::HideInstance { times }
                if op == Operation::DescribeInstances
                    && !self.mutating
                    && self.target.starts_with("i-")
                    && times.is_none_or(|max| used < max) =>
            {
                Some(Gate::Hide)
            }
            _ => None,
        }
    }
}

/// The wrapper. Clones share one call log and one set of faults.
#[derive(Debug, Clone)]
pub struct FaultyCloud<C> {
    inner: C,
    state: Arc<Mutex<State>>,
}

impl<C: Cloud> FaultyCloud<C> {
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            state: Arc::default(),
        }
    }

    pub fn with(self, fault: Fault) -> Self {
        self.lock().faults.push((fault, 0));
        self
    }

    /// Every call so far, in the order they were made.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every RunInstances request that reached the wrapper (launched or dry
    /// run), in order: a launch is authorized on all it names (image, subnet,
    /// groups, tags...), which its call log line cannot carry.
    pub fn launches(&self) -> Vec<LaunchRequest> {
        self.lock().launches.clone()
    }

    /// Removes all faults and revives a dead wrapper (the next invocation).
    pub fn heal(&self) {
        let mut s = self.lock();
        s.faults.clear();
        s.dead = false;
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave State half-written; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gate(&self, operation: Operation, target: &str, mutating: bool) -> Gate {
        let mut s = self.lock();
        let n = s.calls.len() + 1;
        if mutating {
            s.mutations += 1;
        }
        let call = Attempt {
            operation,
            target,
            mutating,
            n,
            mutation: s.mutations,
        };
        let gate = if s.dead {
            Gate::Fail(crashed(operation))
        } else {
            let hit = s.faults.iter_mut().find_map(|(fault, used)| {
                let gate = call.hit_by(fault, *used)?;
                *used += 1;
                Some((gate, matches!(fault, Fault::DieAtMutation { .. })))
            });
            match hit {
                Some((gate, died)) => {
                    s.dead |= died;
                    gate
                }
                None => Gate::Proceed,
            }
        };
        let failed = !matches!(gate, Gate::Proceed | Gate::Hide);
        s.calls.push(Call {
            operation: operation.name(),
            target: target.to_owned(),
            mutating,
            failed,
            at: std::time::Instant::now(),
        });
        gate
    }

    async fn call<T, F>(
        &self,
        operation: Operation,
        target: &str,
        mutating: bool,
        f: impl FnOnce() -> F,
    ) -> Result<T, CloudError>
    where
        F: Future<Output = Result<T, CloudError>>,
    {
        match self.gate(operation, target, mutating) {
            Gate::Proceed | Gate::Hide => f().await,
            Gate::Fail(e) => Err(e),
            Gate::Lose(e) => {
                let _ = f().await;
                Err(e)
            }
        }
    }
}

fn injected(operation: Operation, code: &str) -> CloudError {
    CloudError::service(operation, code, "injected by FaultyCloud")
}

fn crashed(operation: Operation) -> CloudError {
    CloudError::transport(operation, "injected crash: the invocation died here")
}

/// `impl Cloud for FaultyCloud`, from the trait's method list: each call goes
/// through [`FaultyCloud::call`] as the operation and target its entry names.
macro_rules! faulty_cloud {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty
        $(=> $op:ident($target:expr))?;)*) => {
        impl<C: Cloud> Cloud for FaultyCloud<C> {
            $(faulty_method! { $name($($arg: $ty),*) -> $ret $(=> $op($target))? })*

            fn usage(&self) -> Option<UsageSnapshot> {
                self.inner.usage()
            }
        }
    };
}

/// One method of the wrapper; the calls that do more than pass the gate have
/// their own arm, before the one for all others.
macro_rules! faulty_method {
    // DescribeInstances by id may not list a new instance yet: a hide fault
    // answers `None` without asking.
    (instance($id:ident: $ty:ty) -> $ret:ty => $op:ident($target:expr)) => {
        async fn instance(&self, $id: $ty) -> Result<$ret, CloudError> {
            let op = Operation::$op;
            match self.gate(op, &$target, op.mutating()) {
                Gate::Proceed => self.inner.instance($id).await,
                Gate::Hide => Ok(None),
                Gate::Fail(e) | Gate::Lose(e) => Err(e),
            }
        }
    };
    // Every launch is kept whole (what IAM authorizes), beside its call.
    (run_instance($request:ident: $ty:ty) -> $ret:ty => $op:ident($target:expr)) => {
        async fn run_instance(&self, $request: $ty) -> Result<$ret, CloudError> {
            let op = Operation::$op;
            self.lock().launches.push($request.clone());
            self.call(op, &$target, op.mutating(), || self.inner.run_instance($request))
                .await
        }
    };
    // A dry run changes nothing: it is not a mutating call, whatever it asks.
    // A launch's is kept too.
    (probe($probe:ident: $ty:ty) -> $ret:ty) => {
        async fn probe(&self, $probe: $ty) -> Result<$ret, CloudError> {
            if let Probe::Launch(request) = $probe {
                self.lock().launches.push(request.clone());
            }
            self.call($probe.operation(), &$probe.target(), false, || {
                self.inner.probe($probe)
            })
            .await
        }
    };
    // The query names its operation.
    (alarms($query:ident: $ty:ty) -> $ret:ty) => {
        async fn alarms(&self, $query: $ty) -> Result<$ret, CloudError> {
            let op = $query.operation();
            self.call(op, $query.target(), op.mutating(), || self.inner.alarms($query))
                .await
        }
    };
    ($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $op:ident($target:expr)) => {
        async fn $name(&self, $($arg: $ty),*) -> Result<$ret, CloudError> {
            let op = Operation::$op;
            self.call(op, &$target, op.mutating(), || self.inner.$name($($arg),*))
                .await
        }
    };
}

cloud_methods!(faulty_cloud);
