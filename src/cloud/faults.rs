//! A [`Cloud`] wrapper that injects failures and records every call.
//!
//! Shaped after mountpoint-s3-client's `failure_client`: it wraps the real
//! adapter, so what is not failed really happens in AWS (or the emulator).
//! Tests use it to prove that a failover survives throttling, capacity errors
//! and a crash at any call; the benchmark uses its call log to count round trips.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Cidr;
use super::{
    Address, Alarm, AlarmQuery, CheckerReport, Cloud, CloudError, GroupIngress, Image,
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

impl<C: Cloud> Cloud for FaultyCloud<C> {
    fn usage(&self) -> Option<super::usage::UsageSnapshot> {
        self.inner.usage()
    }

    async fn vpcs_named(&self, name: &str) -> Result<Vec<Vpc>, CloudError> {
        self.call(Operation::DescribeVpcs, name, false, || {
            self.inner.vpcs_named(name)
        })
        .await
    }

    async fn instances_named(&self, name: &str) -> Result<Vec<Instance>, CloudError> {
        self.call(Operation::DescribeInstances, name, false, || {
            self.inner.instances_named(name)
        })
        .await
    }

    async fn instance(&self, id: &str) -> Result<Option<Instance>, CloudError> {
        match self.gate(Operation::DescribeInstances, id, false) {
            Gate::Proceed => self.inner.instance(id).await,
            Gate::Hide => Ok(None),
            Gate::Fail(e) | Gate::Lose(e) => Err(e),
        }
    }

    async fn subnets_named(&self, names: &[String]) -> Result<Vec<Subnet>, CloudError> {
        self.call(Operation::DescribeSubnets, &names.join(","), false, || {
            self.inner.subnets_named(names)
        })
        .await
    }

    async fn route_tables_named(&self, name: &str) -> Result<Vec<RouteTable>, CloudError> {
        self.call(Operation::DescribeRouteTables, name, false, || {
            self.inner.route_tables_named(name)
        })
        .await
    }

    async fn images_named(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        self.call(Operation::DescribeImages, name, false, || {
            self.inner.images_named(name)
        })
        .await
    }

    async fn tool_images(&self, name: &str) -> Result<Vec<Image>, CloudError> {
        self.call(Operation::DescribeImages, name, false, || {
            self.inner.tool_images(name)
        })
        .await
    }

    async fn tool_snapshots(&self, name: &str) -> Result<Vec<Snapshot>, CloudError> {
        self.call(Operation::DescribeSnapshots, name, false, || {
            self.inner.tool_snapshots(name)
        })
        .await
    }

    async fn create_image(&self, request: &ImageRequest) -> Result<String, CloudError> {
        let target = format!("{} {}", request.instance_id, request.name);
        self.call(Operation::CreateImage, &target, true, || {
            self.inner.create_image(request)
        })
        .await
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &[Tag]) -> Result<(), CloudError> {
        self.call(Operation::CreateTags, &resource_ids.join(" "), true, || {
            self.inner.create_tags(resource_ids, tags)
        })
        .await
    }

    async fn deregister_image(&self, image_id: &str) -> Result<(), CloudError> {
        self.call(Operation::DeregisterImage, image_id, true, || {
            self.inner.deregister_image(image_id)
        })
        .await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), CloudError> {
        self.call(Operation::DeleteSnapshot, snapshot_id, true, || {
            self.inner.delete_snapshot(snapshot_id)
        })
        .await
    }

    async fn address(&self, public_ip: &str) -> Result<Option<Address>, CloudError> {
        self.call(Operation::DescribeAddresses, public_ip, false, || {
            self.inner.address(public_ip)
        })
        .await
    }

    async fn snapshots_by_id(&self, ids: &[String]) -> Result<Vec<Snapshot>, CloudError> {
        self.call(Operation::DescribeSnapshots, &ids.join(","), false, || {
            self.inner.snapshots_by_id(ids)
        })
        .await
    }

    async fn security_groups_named(&self, name: &str) -> Result<Vec<SecurityGroup>, CloudError> {
        self.call(Operation::DescribeSecurityGroups, name, false, || {
            self.inner.security_groups_named(name)
        })
        .await
    }

    async fn stop_instance(&self, id: &str, force: bool) -> Result<(), CloudError> {
        self.call(Operation::StopInstances, id, true, || {
            self.inner.stop_instance(id, force)
        })
        .await
    }

    async fn start_instance(&self, id: &str) -> Result<(), CloudError> {
        self.call(Operation::StartInstances, id, true, || {
            self.inner.start_instance(id)
        })
        .await
    }

    async fn terminate_instance(&self, id: &str) -> Result<(), CloudError> {
        self.call(Operation::TerminateInstances, id, true, || {
            self.inner.terminate_instance(id)
        })
        .await
    }

    async fn run_instance(&self, request: &LaunchRequest) -> Result<Instance, CloudError> {
        let target = format!("{} {}", request.subnet_id, request.instance_type);
        self.lock().launches.push(request.clone());
        self.call(Operation::RunInstances, &target, true, || {
            self.inner.run_instance(request)
        })
        .await
    }

    async fn user_data(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        self.call(
            Operation::DescribeInstanceAttribute,
            instance_id,
            false,
            || self.inner.user_data(instance_id),
        )
        .await
    }

    async fn cpu_credits(&self, instance_id: &str) -> Result<Option<String>, CloudError> {
        self.call(
            Operation::DescribeInstanceCreditSpecifications,
            instance_id,
            false,
            || self.inner.cpu_credits(instance_id),
        )
        .await
    }

    async fn disable_source_dest_check(&self, instance_id: &str) -> Result<(), CloudError> {
        self.call(
            Operation::ModifyInstanceAttribute,
            instance_id,
            true,
            || self.inner.disable_source_dest_check(instance_id),
        )
        .await
    }

    async fn disable_interface_source_dest_check(
        &self,
        interface_id: &str,
    ) -> Result<(), CloudError> {
        self.call(
            Operation::ModifyNetworkInterfaceAttribute,
            interface_id,
            true,
            || self.inner.disable_interface_source_dest_check(interface_id),
        )
        .await
    }

    async fn associate_address(
        &self,
        allocation_id: &str,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        let target = format!("{allocation_id} {instance_id}");
        self.call(Operation::AssociateAddress, &target, true, || {
            self.inner.associate_address(allocation_id, instance_id)
        })
        .await
    }

    async fn replace_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        let target = format!("{route_table_id} {destination}");
        self.call(Operation::ReplaceRoute, &target, true, || {
            self.inner
                .replace_route(route_table_id, destination, instance_id)
        })
        .await
    }

    async fn create_route(
        &self,
        route_table_id: &str,
        destination: &Cidr,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        let target = format!("{route_table_id} {destination}");
        self.call(Operation::CreateRoute, &target, true, || {
            self.inner
                .create_route(route_table_id, destination, instance_id)
        })
        .await
    }

    async fn probe(&self, probe: Probe<'_>) -> Result<Permission, CloudError> {
        // A dry run changes nothing: it is not a mutating call.
        if let Probe::Launch(request) = probe {
            self.lock().launches.push(request.clone());
        }
        self.call(probe.operation(), &probe.target(), false, || {
            self.inner.probe(probe)
        })
        .await
    }

    async fn alarms(&self, query: AlarmQuery<'_>) -> Result<Vec<Alarm>, CloudError> {
        self.call(query.operation(), query.target(), false, || {
            self.inner.alarms(query)
        })
        .await
    }

    async fn health_check_status(
        &self,
        health_check_id: &str,
    ) -> Result<CheckerReport, CloudError> {
        self.call(
            Operation::GetHealthCheckStatus,
            health_check_id,
            false,
            || self.inner.health_check_status(health_check_id),
        )
        .await
    }

    async fn health_check_port(&self, health_check_id: &str) -> Result<Option<u16>, CloudError> {
        self.call(Operation::GetHealthCheck, health_check_id, false, || {
            self.inner.health_check_port(health_check_id)
        })
        .await
    }

    async fn checker_ip_ranges(&self) -> Result<Vec<Cidr>, CloudError> {
        self.call(Operation::GetCheckerIpRanges, "", false, || {
            self.inner.checker_ip_ranges()
        })
        .await
    }

    async fn security_group_ingress(
        &self,
        id_or_name: &str,
        vpc_id: Option<&str>,
    ) -> Result<Vec<GroupIngress>, CloudError> {
        self.call(Operation::DescribeSecurityGroups, id_or_name, false, || {
            self.inner.security_group_ingress(id_or_name, vpc_id)
        })
        .await
    }

    async fn authorize_ingress(
        &self,
        group_id: &str,
        port: u16,
        ranges: &[Cidr],
        description: &str,
    ) -> Result<(), CloudError> {
        self.call(
            Operation::AuthorizeSecurityGroupIngress,
            group_id,
            true,
            || {
                self.inner
                    .authorize_ingress(group_id, port, ranges, description)
            },
        )
        .await
    }

    async fn revoke_ingress(
        &self,
        group_id: &str,
        rules: &[IngressRule],
    ) -> Result<(), CloudError> {
        self.call(
            Operation::RevokeSecurityGroupIngress,
            group_id,
            true,
            || self.inner.revoke_ingress(group_id, rules),
        )
        .await
    }

    async fn a_records(&self, zone_id: &str, name: &str) -> Result<Vec<RecordSet>, CloudError> {
        let target = format!("{zone_id} {name}");
        self.call(Operation::ListResourceRecordSets, &target, false, || {
            self.inner.a_records(zone_id, name)
        })
        .await
    }

    async fn upsert_a_record(
        &self,
        zone_id: &str,
        name: &str,
        ttl: i64,
        address: &str,
    ) -> Result<(), CloudError> {
        let target = format!("{zone_id} {name}");
        self.call(Operation::ChangeResourceRecordSets, &target, true, || {
            self.inner.upsert_a_record(zone_id, name, ttl, address)
        })
        .await
    }
}
