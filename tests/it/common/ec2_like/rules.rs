//! EC2's rules, where moto differs: new instances `pending` and unknown for a
//! while, `ClientToken` honoured, launches that die with a `stateReason`,
//! throttling, refusals, hangs, DryRun, snapshots still in use after a
//! DeregisterImage, no instance-level address or attribute calls on an
//! instance with several network interfaces, stops that take a while and
//! say when they were asked, EBS encryption by default and launches killed
//! by its key. What the layer decides before moto sees a request, and
//! how it rewrites moto's answers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use super::proxy::Shared;
use super::*;

pub(super) struct Launch {
    pub(super) at: Instant,
    pub(super) death: Option<StateReason>,
    /// The pending window in force at the launch.
    pub(super) pending: Option<Duration>,
}

/// A StopInstances through the layer, of an instance that was running.
pub(super) struct Stop {
    /// When it was asked, by the wall clock (the function's): the time its
    /// `stateTransitionReason` gives.
    pub(super) asked: DateTime<Utc>,
    /// When EC2 would have finished it: `stopping` until then.
    pub(super) ends: Instant,
}

pub(super) struct TokenRecord {
    /// The request's parameters but the token, sorted.
    params: Vec<(String, String)>,
    /// The first answer, replayed.
    answer: Vec<u8>,
    instances: Vec<String>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) rules: Rules,
    pub(super) launches: HashMap<String, Launch>,
    pub(super) launch_order: Vec<String>,
    /// Instances started through the layer: when, and the pending window then.
    pub(super) starts: HashMap<String, (Instant, Duration)>,
    /// Instances started through the layer while `stale_after_start` is set:
    /// until when a describe still reads them `stopped`.
    pub(super) stale_until: HashMap<String, Instant>,
    pub(super) tokens: HashMap<String, TokenRecord>,
    pub(super) calls: HashMap<String, u32>,
    /// (when, image, its snapshots) of each DeregisterImage that succeeded.
    pub(super) deregistered: Vec<(Instant, String, Vec<String>)>,
    pub(super) log: Vec<Exchange>,
    pub(super) requests: u64,
    /// Stops through the layer, by instance, until it is started again.
    pub(super) stops: HashMap<String, Stop>,
    /// Time a test let pass ([`Ec2Like::pass_time`]): the layer's windows
    /// see it, moto and the function do not.
    pub(super) ahead: Duration,
    /// Every launch and attach time before this wall time reads that much
    /// earlier ([`Ec2Like::age_everything`]).
    pub(super) aged: Option<(DateTime<Utc>, TimeDelta)>,
    /// EC2's token buckets, when the scenario models them.
    pub(super) throttle: Option<super::throttle::Throttle>,
}

/// What the layer decided before moto sees a request.
pub(super) enum Verdict {
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

    /// Stopping through the layer: a stop asked for that has not taken its time.
    fn stopping(&self, id: &str, now: Instant) -> bool {
        self.stops.get(id).is_some_and(|s| now < s.ends)
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
    pub(super) fn verdict(
        &mut self,
        action: &str,
        params: &[(String, String)],
        now: Instant,
    ) -> Verdict {
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
        if let Some(t) = self.throttle.as_mut()
            && !t.admit(action, params, now)
        {
            return Verdict::Answer(self.error(
                503,
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ));
        }
        let n = self.calls.entry(action.to_owned()).or_default();
        *n += 1;
        if *n <= self.rules.throttle_first {
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
            "GetEbsEncryptionByDefault" | "GetEbsDefaultKmsKeyId" => self.ebs_defaults(action),
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
                if action == "StartInstances"
                    && let Some(id) = named.iter().find(|id| self.stopping(id, now))
                {
                    let message = format!(
                        "The instance '{id}' is not in a state from which it can be started."
                    );
                    return Verdict::Answer(self.error(400, "IncorrectInstanceState", &message));
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

    /// (i) The account's EBS encryption by default, when the scenario sets
    /// it; GetEbsDefaultKmsKeyId always (moto lacks it): the key set, else
    /// the AWS managed key, as EC2 answers when the account chose none.
    fn ebs_defaults(&mut self, action: &str) -> Verdict {
        let setting = self.rules.volumes_encrypted_with.clone();
        let element = match (action, setting) {
            ("GetEbsEncryptionByDefault", None) => return Verdict::Pass,
            ("GetEbsEncryptionByDefault", Some(_)) => {
                "<ebsEncryptionByDefault>true</ebsEncryptionByDefault>".to_owned()
            }
            (_, key) => format!(
                "<kmsKeyId>{}</kmsKeyId>",
                escape(key.flatten().as_deref().unwrap_or("alias/aws/ebs"))
            ),
        };
        let id = self.request_id();
        Verdict::Answer(ok_response(action, &element, &id))
    }

    /// (i) Why EC2 kills a launch whose volumes get a key the caller may not use.
    fn key_death(&self) -> Option<StateReason> {
        let key = self.rules.volumes_encrypted_with.as_ref()?;
        let key = key.as_deref().unwrap_or("alias/aws/ebs");
        self.rules
            .forbidden_keys
            .iter()
            .any(|k| k == key)
            .then(StateReason::client_internal_error)
    }

    /// Rewrites DescribeInstances and RunInstances answers: new instances
    /// still `pending`, dead ones with their reason, unlisted ones left out.
    fn rewrite(&self, action: &str, body: &str, now: Instant) -> String {
        let rewritten = rewrite_instances(body, |id, item| {
            if action == "DescribeInstances" && self.unlisted(id, now) {
                return None;
            }
            if action == "DescribeInstances"
                && self.stale_until.get(id).is_some_and(|until| now < *until)
            {
                return Some(replace_element(item, "instanceState", STOPPED_STATE));
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
            let item = self.as_stopped_through_layer(id, &item, now);
            Some(self.aged_times(&item))
        });
        drop_empty_reservations(&rewritten)
    }

    /// (i) An instance stopped through the layer is `stopping` until its stop
    /// has taken its time (moto stops at once), and says when the stop was
    /// asked in EC2's words (moto writes `UTC` for `GMT`).
    fn as_stopped_through_layer(&self, id: &str, item: &str, now: Instant) -> String {
        let Some(stop) = self.stops.get(id) else {
            return item.to_owned();
        };
        let moto_says = element_text(item, "instanceState").and_then(|s| element_text(s, "name"));
        if moto_says != Some("stopped") {
            return item.to_owned();
        }
        let item = match now < stop.ends {
            true => replace_element(item, "instanceState", STOPPING_STATE),
            false => item.to_owned(),
        };
        let reason = format!("<reason>{}</reason>", user_initiated(stop.asked));
        replace_element(&item, "reason", &reason)
    }

    /// (j) Launch and attach times from before [`Ec2Like::age_everything`],
    /// that much earlier.
    fn aged_times(&self, item: &str) -> String {
        let Some((mark, by)) = self.aged else {
            return item.to_owned();
        };
        let shift = |tag: &str, xml: &str| {
            splice(xml, tag, |element| {
                let text = element_text(element, tag)?;
                let Ok(t) = DateTime::parse_from_rfc3339(text) else {
                    return Some(element.to_owned());
                };
                let t = t.with_timezone(&Utc);
                let t = if t < mark { t - by } else { t };
                Some(format!(
                    "<{tag}>{}</{tag}>",
                    t.format("%Y-%m-%dT%H:%M:%S%.3fZ")
                ))
            })
        };
        shift("attachTime", &shift("launchTime", item))
    }
}

/// EC2's `StateTransitionReason` for a stop asked at `asked`.
pub fn user_initiated(asked: DateTime<Utc>) -> String {
    format!("User initiated ({})", asked.format("%Y-%m-%d %H:%M:%S GMT"))
}

const STOPPING_STATE: &str = "<instanceState><code>64</code><name>stopping</name></instanceState>";
const STOPPING_PREVIOUS: &str =
    "<previousState><code>64</code><name>stopping</name></previousState>";

const PENDING_STATE: &str = "<instanceState><code>0</code><name>pending</name></instanceState>";
const STOPPED_STATE: &str = "<instanceState><code>80</code><name>stopped</name></instanceState>";
const PENDING_CURRENT: &str = "<currentState><code>0</code><name>pending</name></currentState>";

impl Shared {
    /// moto's answer as EC2 would give it, and what the layer learns from it
    /// (launches, starts, deregistered images).
    pub(super) async fn ec2_answer(
        &self,
        action: &str,
        (auth, params): (&str, &[(String, String)]),
        images: Option<(String, Vec<String>)>,
        answer: Upstream,
    ) -> Upstream {
        match (action, answer.status) {
            ("RunInstances", 200) => self.launched(auth, params, answer).await,
            ("StartInstances", 200) => self.started(answer),
            ("StopInstances", 200) => self.stopped(params, answer),
            ("DescribeInstances", 200) => {
                let body = String::from_utf8_lossy(&answer.body).into_owned();
                let now = self.now();
                let body = self.state().rewrite(action, &body, now);
                answer.with_body(body.into_bytes())
            }
            ("DescribeAddresses", 200) => self.address_holders(auth, answer).await,
            ("DeregisterImage", 200) => {
                if let Some((image, snapshots)) = images {
                    let now = self.now();
                    self.state().deregistered.push((now, image, snapshots));
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
        let now = self.now();
        let mut s = self.state();
        if let Some(stale) = s.rules.stale_after_start {
            let body = String::from_utf8_lossy(&answer.body).into_owned();
            rewrite_instances(&body, |id, item| {
                let before =
                    element_text(item, "previousState").and_then(|p| element_text(p, "name"));
                if before == Some("stopped") {
                    s.stale_until.insert(id.to_owned(), now + stale);
                }
                Some(item.to_owned())
            });
        }
        // Started again: the stop is over (the rules refused a start while
        // stopping).
        for id in instance_ids(&String::from_utf8_lossy(&answer.body)) {
            s.stops.remove(&id);
        }
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

    /// (i) A StopInstances moto carried out (at once): a running instance's
    /// stop takes `stop_takes` from now (none: done at once) and is
    /// remembered with its wall-clock time; `Force` ends one under way now;
    /// asking again does not restart it.
    fn stopped(&self, params: &[(String, String)], answer: Upstream) -> Upstream {
        let now = self.now();
        let forced = param(params, "Force") == Some("true");
        let mut s = self.state();
        let takes = s.rules.stop_takes.unwrap_or_default();
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        let body = rewrite_instances(&body, |id, item| {
            let was_stopping = s.stopping(id, now);
            let before = element_text(item, "previousState").and_then(|p| element_text(p, "name"));
            if !s.stops.contains_key(id) && matches!(before, Some("running" | "pending")) {
                let ends = if forced { now } else { now + takes };
                let asked = Utc::now();
                s.stops.insert(id.to_owned(), Stop { asked, ends });
            }
            if forced && let Some(stop) = s.stops.get_mut(id) {
                stop.ends = stop.ends.min(now);
            }
            Some(match was_stopping {
                true => replace_element(item, "previousState", STOPPING_PREVIOUS),
                false => item.to_owned(),
            })
        });
        answer.with_body(body.into_bytes())
    }

    /// (c) A RunInstances whose token EC2 has seen: the first answer again, or
    /// the documented error. `None` passes the request on (a new token, or
    /// tokens not honoured).
    pub(super) async fn idempotent_launch(
        &self,
        auth: &str,
        params: &[(String, String)],
    ) -> Option<Vec<u8>> {
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
        let now = self.now();
        let deaths: Vec<(String, StateReason)> = {
            let mut s = self.state();
            let mut deaths = Vec::new();
            for id in &ids {
                let death = s.rules.deaths.pop_front().or_else(|| s.key_death());
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

    /// (e) EC2 refuses to pick an interface for the caller: AssociateAddress
    /// by instance, and ModifyInstanceAttribute's SourceDestCheck or groups,
    /// on an instance with more than one network interface ("If the instance
    /// has more than one network interface, you must specify a network
    /// interface ID", AssociateAddress API reference). moto accepts both.
    /// Always on, as in EC2.
    pub(super) async fn one_interface_rule(
        &self,
        auth: &str,
        action: &str,
        params: &[(String, String)],
    ) -> Option<Vec<u8>> {
        let by_instance = match action {
            "AssociateAddress" => param(params, "NetworkInterfaceId").is_none(),
            "ModifyInstanceAttribute" => params
                .iter()
                .any(|(k, _)| k.starts_with("SourceDestCheck") || k.starts_with("GroupId")),
            _ => false,
        };
        let id = param(params, "InstanceId").filter(|_| by_instance)?;
        if self.interface_count(auth, id).await < 2 {
            return None;
        }
        let message = format!(
            "There are multiple interfaces attached to instance '{id}'. Please specify an interface ID for the operation instead."
        );
        Some(self.state().error(400, "InvalidInstanceID", &message))
    }

    /// (f) EC2 lists the instance an address is on also when the address was
    /// associated by interface (the instance the interface is attached to);
    /// moto leaves `instanceId` empty then.
    async fn address_holders(&self, auth: &str, answer: Upstream) -> Upstream {
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        let mut holders = Vec::new();
        for item in elements(&body, "item").into_iter().map(|r| &body[r]) {
            let no_instance = element_text(item, "instanceId").is_none_or(str::is_empty);
            if let Some(eni) =
                element_text(item, "networkInterfaceId").filter(|e| no_instance && !e.is_empty())
            {
                holders.push((eni.to_owned(), self.attached_to(auth, eni).await));
            }
        }
        let body = splice(&body, "item", |item| {
            let holder = element_text(item, "networkInterfaceId")
                .and_then(|eni| holders.iter().find(|(e, _)| e == eni))
                .and_then(|(_, i)| i.as_deref());
            let Some(instance) = holder else {
                return Some(item.to_owned());
            };
            let element = format!("<instanceId>{}</instanceId>", escape(instance));
            if !elements(item, "instanceId").is_empty() {
                return Some(replace_element(item, "instanceId", &element));
            }
            let end = item.rfind("</item>")?;
            Some(format!("{}{element}{}", &item[..end], &item[end..]))
        });
        answer.with_body(body.into_bytes())
    }

    /// The instance moto has `eni` attached to.
    async fn attached_to(&self, auth: &str, eni: &str) -> Option<String> {
        let answer = self
            .moto(
                auth,
                &[
                    ("Action", "DescribeNetworkInterfaces"),
                    ("NetworkInterfaceId.1", eni),
                ],
            )
            .await?;
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        let attachment = element_text(&body, "attachment")?;
        element_text(attachment, "instanceId")
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
    }

    /// How many network interfaces moto has attached to `id`.
    async fn interface_count(&self, auth: &str, id: &str) -> usize {
        let Some(answer) = self
            .moto(
                auth,
                &[("Action", "DescribeInstances"), ("InstanceId.1", id)],
            )
            .await
        else {
            return 0;
        };
        let body = String::from_utf8_lossy(&answer.body);
        let mut ids = all_texts(&body, "networkInterfaceId");
        ids.sort();
        ids.dedup();
        ids.len()
    }

    /// The snapshots of an AMI, asked of moto before it is deregistered.
    pub(super) async fn snapshots_of(&self, auth: &str, image: &str) -> Vec<String> {
        let Some(answer) = self
            .moto(auth, &[("Action", "DescribeImages"), ("ImageId.1", image)])
            .await
        else {
            return Vec::new();
        };
        let body = String::from_utf8_lossy(&answer.body);
        all_texts(&body, "snapshotId")
    }
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
