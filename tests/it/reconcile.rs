//! Level-triggered follow-through (`{"action": "reconcile"}`) and fencing:
//! in process on the memory cloud (every scenario of issue 13, fast), then
//! through the real binary against moto, which serves CloudWatch alarms.

use crate::common;

use chrono::{DateTime, Utc};
use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::faults::{Fault, FaultyCloud};
use ec2_failover::cloud::{Alarm, InstanceState};
use ec2_failover::{Outcome, Report, Response, StepStatus};
use serde_json::{Value, json};

const ALARM: &str = "sophos-health";
const ALARM_ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:sophos-health";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `time` (`HH:MM:SSZ`) on the day the sample alarm events happen.
fn on_sample_day(time: &str) -> DateTime<Utc> {
    at(&format!("{}T{time}", common::sample_day()))
}

/// The alarm of `events/sns-alarm.json` in `state` since its StateChangeTime
/// (reported, as moto does, without StateTransitionedTimestamp).
fn sophos_alarm(state: &str) -> Alarm {
    Alarm {
        name: ALARM.into(),
        arn: ALARM_ARN.into(),
        state: state.into(),
        reason: Some("Threshold Crossed: 1 datapoint [0.0] was less than 1.0".into()),
        transitioned_at: None,
        updated_at: Some(on_sample_day("09:00:00Z")),
        health_check_id: None,
        actions: vec![],
    }
}

fn reconcile() -> Value {
    json!({"action": "reconcile"})
}

fn steps<'a>(r: &'a Report, name: &str) -> Vec<&'a ec2_failover::report::StepRecord> {
    r.steps
        .iter()
        .filter(|s| s.step.starts_with(name))
        .collect()
}

/// The seed world watched by `ALARM_NAME`, with RunInstances refused
/// (InsufficientInstanceCapacity) `refusals` times.
fn world(
    refusals: usize,
) -> (
    MemWorld,
    FaultyCloud<ec2_failover::cloud::memory::MemoryCloud>,
) {
    let w = seed_world();
    let cloud = FaultyCloud::new(w.cloud.clone()).with(Fault::FailOperation {
        operation: "RunInstances",
        target: String::new(),
        code: "InsufficientInstanceCapacity".into(),
        times: Some(refusals),
    });
    (w, cloud)
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_finishes_what_three_failed_deliveries_could_not_and_then_holds() {
    let (w, cloud) = world(3);
    w.cloud.set_alarm(sophos_alarm("ALARM"));
    let fleet = single(cloud.clone(), seed_settings(&w, &[("ALARM_NAME", ALARM)]));
    let event = sample("sns-alarm.json");
    for delivery in 1..=3 {
        let e = invoke(&fleet, &event, &format!("req-{delivery}"))
            .await
            .unwrap_err();
        assert!(e.retryable(), "delivery {delivery}: {e}");
    }
    assert_eq!(
        w.view().address_owner(&w.floating_ip),
        Some(w.sophos.as_str())
    );

    let r = invoke(&fleet, &reconcile(), "tick-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let replacement = assert_failed_over_once(&w.view(), &w);
    let alarm_step = steps(&r, "alarm");
    assert!(alarm_step[0].detail.contains("is ALARM since"), "{r:#?}");

    // The same incident as the event's: a second reconcile, and a late
    // delivery of the event, find it complete.
    let before = w.view();
    let again = invoke(&fleet, &reconcile(), "tick-2").await.unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
    assert_eq!(again.incident, r.incident);
    let late = invoke(&fleet, &event, "req-late").await.unwrap();
    assert_eq!(late.outcome, Outcome::AlreadyFailedOver, "{late:#?}");
    assert_eq!(
        late.incident, r.incident,
        "one incident, however it is seen"
    );
    assert_eq!(w.view(), before, "nothing changed");
    assert_eq!(assert_failed_over_once(&w.view(), &w), replacement);

    // Back to OK: nothing to do.
    w.cloud.set_alarm(sophos_alarm("OK"));
    let ok = invoke(&fleet, &reconcile(), "tick-3").await.unwrap();
    assert_eq!(ok.outcome, Outcome::Ignored, "{ok:#?}");
    assert!(ok.reason.contains("is OK"), "{}", ok.reason);
    assert_eq!(w.view(), before);
}

#[tokio::test(start_paused = true)]
async fn a_replaced_instance_started_again_is_stopped_by_the_next_reconcile() {
    let (w, cloud) = world(0);
    w.cloud.set_alarm(sophos_alarm("ALARM"));
    let fleet = single(cloud, seed_settings(&w, &[("ALARM_NAME", ALARM)]));
    invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    w.cloud.set_alarm(sophos_alarm("OK"));
    // Behind the function's back: the old appliance runs again.
    w.cloud.restart(&w.sophos, Utc::now());
    let r = invoke(&fleet, &reconcile(), "tick-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::Fenced, "{r:#?}");
    let fence = steps(&r, "fence");
    assert_eq!(fence[0].step, format!("fence {}", w.sophos));
    assert_eq!(fence[0].status, StepStatus::Done);
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Stopped)
    );
    let quiet = invoke(&fleet, &reconcile(), "tick-2").await.unwrap();
    assert_eq!(quiet.outcome, Outcome::Ignored, "{quiet:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_instance_still_stopping_is_reported_not_yet_forced() {
    let (w, cloud) = world(0);
    w.cloud.stick_when_stopped(&w.sophos);
    let fleet = single(cloud, seed_settings(&w, &[("ALARM_NAME", ALARM)]));
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    // Every failover ends with the fence: the failed instance is still
    // stopping, which is reported, not yet forced.
    let fence = steps(&r, "fence");
    assert_eq!(fence[0].status, StepStatus::Skipped, "{r:#?}");
    assert!(
        fence[0].detail.contains("forced if still stopping"),
        "{r:#?}"
    );
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Stopping)
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_reconcile_plans_the_failover_and_changes_nothing() {
    let (w, cloud) = world(0);
    w.cloud.set_alarm(sophos_alarm("ALARM"));
    let settings = seed_settings(&w, &[("ALARM_NAME", ALARM), ("DRY_RUN", "true")]);
    let fleet = single(cloud.clone(), settings);
    let before = w.view();
    let r = invoke(&fleet, &reconcile(), "tick-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::Planned, "{r:#?}");
    assert!(
        steps(&r, "launch_replacement")[0].status == StepStatus::Planned,
        "{r:#?}"
    );
    assert_eq!(w.view(), before);
    assert!(
        cloud.calls().iter().all(|c| !c.mutating),
        "{:?}",
        cloud.calls()
    );
}

#[tokio::test(start_paused = true)]
async fn without_an_alarm_to_look_at_a_reconcile_says_what_to_configure() {
    let (w, cloud) = world(0);
    let fleet = single(cloud, seed_settings(&w, &[]));
    let r = invoke(&fleet, &reconcile(), "tick-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::Ignored);
    assert!(r.reason.contains("ALARM_NAME"), "{}", r.reason);
    let fleet = single(
        FaultyCloud::new(w.cloud.clone()),
        seed_settings(&w, &[("ALARM_NAME", "nope")]),
    );
    let r = invoke(&fleet, &reconcile(), "tick-2").await.unwrap();
    assert!(r.reason.contains("no alarm is named nope"), "{}", r.reason);
    let failing = FaultyCloud::new(w.cloud.clone()).with(Fault::FailOperation {
        operation: "DescribeAlarms",
        target: String::new(),
        code: "AccessDenied".into(),
        times: None,
    });
    let fleet = single(failing, seed_settings(&w, &[("ALARM_NAME", ALARM)]));
    // A reconcile's failure answers per group: no Lambda retry, no
    // on-failure record; the error is there to read.
    let answer = answer(&fleet, &reconcile(), "tick-3").await;
    assert_eq!(
        failed_reconcile(&answer).as_deref(),
        Some("Permanent.AwsCallFailed"),
        "{answer:?}"
    );
    let Ok(Response::PerGroup(r)) = answer else {
        unreachable!()
    };
    assert!(
        r.groups[0].error.as_deref().unwrap().contains("alarm"),
        "{r:?}"
    );
}

// ----- through the real binary, against moto ------------------------------------

mod binary {
    use super::*;
    use aws_sdk_cloudwatch::types::StateValue;
    use common::alarmed::{deploy, deploy_behind, set_state, sns_event};
    use common::ec2_like::{Ec2Like, param};
    use common::snapshot;

    #[tokio::test]
    async fn the_reconcile_schedule_finishes_the_failover_fences_and_otherwise_holds_still() {
        let d = deploy(&[]).await;
        let ec2 = d.moto.ec2();
        let event = sns_event(&d.moto).await;
        for delivery in 1..=3 {
            let answer = d.invoke(&event).await;
            assert!(!answer.ok, "delivery {delivery}: {}", answer.body);
        }
        assert_eq!(
            common::address_owner(&ec2, &d.w.floating_ip).await,
            Some(d.w.sophos.clone())
        );
        d.layer.heal();

        let first = d.reconcile().await;
        assert_eq!(first["outcome"], "failed_over", "{first:#}");
        let replacement = common::assert_failed_over_once(&ec2, &d.w).await;
        let launches = d.layer.count("RunInstances", "OK");
        // A reconcile's EMF line counts the failover it finished.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let emf = d.function.emf_lines();
        assert_eq!(emf.len(), 4, "one EMF line per invocation");
        assert_eq!(emf[3]["Failovers"], 1, "{:#}", emf[3]);

        let before = snapshot(&ec2).await;
        let second = d.reconcile().await;
        assert_eq!(second["outcome"], "already_failed_over", "{second:#}");
        assert_eq!(second["incident"], first["incident"]);
        let late = d.invoke(&event).await;
        assert_eq!(
            late.json()["outcome"],
            "already_failed_over",
            "{}",
            late.body
        );
        assert_eq!(
            late.json()["incident"],
            first["incident"],
            "the event and the reconcile name one incident"
        );
        set_state(&d.moto, StateValue::Ok).await;
        let ok = d.reconcile().await;
        assert_eq!(ok["outcome"], "ignored", "{ok:#}");
        assert_eq!(snapshot(&ec2).await, before, "nothing changed");
        assert_eq!(
            d.layer.count("RunInstances", "OK"),
            launches,
            "no second launch"
        );

        // The old appliance runs again, behind the function's back.
        ec2.start_instances()
            .instance_ids(&d.w.sophos)
            .send()
            .await
            .unwrap();
        let fenced = d.reconcile().await;
        assert_eq!(fenced["outcome"], "fenced", "{fenced:#}");
        let old = common::describe(&ec2, &d.w.sophos).await;
        assert_eq!(
            old.state().and_then(|s| s.name()).map(|n| n.as_str()),
            Some("stopped")
        );
        assert_eq!(
            common::address_owner(&ec2, &d.w.floating_ip).await,
            Some(replacement)
        );
    }

    /// (state, StateTransitionReason) of `id`, as EC2 (the layer) reports it.
    async fn seen_through(layer: &Ec2Like, id: &str) -> (String, String) {
        let ec2 = aws_sdk_ec2::Client::from_conf(layer.ec2_conf());
        let out = ec2.describe_instances().instance_ids(id).send().await;
        let out = out.expect("DescribeInstances through the layer");
        let i = &out.reservations()[0].instances()[0];
        let state = i.state().and_then(|s| s.name()).map(|n| n.as_str());
        let reason = i.state_transition_reason().unwrap_or_default();
        (state.unwrap_or_default().to_owned(), reason.to_owned())
    }

    /// The StopInstances calls through the layer, and those with `Force=true`.
    fn stops(layer: &Ec2Like) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
        let stops: Vec<_> = layer
            .log()
            .into_iter()
            .filter(|x| x.action == "StopInstances")
            .collect();
        let forced = stops
            .iter()
            .filter(|x| param(&x.params, "Force") == Some("true"))
            .map(|x| x.instances.clone());
        let forced = forced.collect();
        (stops.into_iter().map(|x| x.instances).collect(), forced)
    }

    /// Issue 21's done-when (item 2): a warm standby launched hours ago is
    /// promoted, and the old appliance takes 3 minutes to stop. Neither the
    /// failover's fence nor a reconcile while it is stopping forces it (its
    /// stop was asked seconds ago, whatever the standby's age), and it ends
    /// stopped.
    #[tokio::test]
    async fn a_warm_promotion_whose_old_instance_takes_three_minutes_to_stop_never_forces_it() {
        let layer = Ec2Like::builder().client_tokens();
        let d = deploy_behind(layer, &[("STANDBY", "warm")]).await;
        let standby = json!({"action": "standby", "reason": "test"});
        let kept = d.invoke(&standby.to_string()).await;
        assert_eq!(kept.json()["outcome"], "standby_kept", "{}", kept.body);
        let three_minutes = std::time::Duration::from_secs(180);
        d.layer
            .age_everything(std::time::Duration::from_secs(6 * 3600));
        d.layer.set_stop_takes(Some(three_minutes));

        let failover = d.invoke(&sns_event(&d.moto).await).await;
        assert_eq!(
            failover.json()["outcome"],
            "failed_over",
            "{}",
            failover.body
        );
        assert_eq!(
            stops(&d.layer).1,
            Vec::<Vec<String>>::new(),
            "forced at once"
        );
        let (state, reason) = seen_through(&d.layer, &d.w.sophos).await;
        assert_eq!(state, "stopping");
        assert!(
            reason.starts_with("User initiated (") && reason.ends_with(" GMT)"),
            "{reason}"
        );
        let stopping = d.reconcile().await;
        assert_eq!(stopping["outcome"], "already_failed_over", "{stopping:#}");
        assert!(
            stopping.to_string().contains("stopping since")
                && stopping.to_string().contains("its stop request"),
            "{stopping:#}"
        );

        d.layer.pass_time(three_minutes);
        let after = d.reconcile().await;
        assert_eq!(after["outcome"], "already_failed_over", "{after:#}");
        let (all, forced) = stops(&d.layer);
        assert!(all.contains(&vec![d.w.sophos.clone()]), "{all:?}");
        assert_eq!(forced, Vec::<Vec<String>>::new(), "a forced stop");
        assert_eq!(seen_through(&d.layer, &d.w.sophos).await.0, "stopped");
    }

    /// Issue 22's done-when (item 4): after a failover, the operator starts
    /// the repaired original and moves the floating IP back to it by hand
    /// while the alarm is still ALARM. The reconcile hands the incident over
    /// once, then leaves it: the floating IP stays, nothing is stopped.
    #[tokio::test]
    async fn a_floating_ip_moved_back_by_hand_is_left_there_and_nothing_is_stopped() {
        let d = deploy_behind(Ec2Like::builder().client_tokens(), &[]).await;
        let ec2 = d.moto.ec2();
        let event = sns_event(&d.moto).await;
        let first = d.invoke(&event).await;
        assert_eq!(first.json()["outcome"], "failed_over", "{}", first.body);
        let replacement = common::assert_failed_over_once(&ec2, &d.w).await;

        ec2.start_instances()
            .instance_ids(&d.w.sophos)
            .send()
            .await
            .unwrap();
        let addresses = ec2
            .describe_addresses()
            .public_ips(&d.w.floating_ip)
            .send()
            .await
            .unwrap();
        let allocation = addresses.addresses()[0].allocation_id().unwrap().to_owned();
        ec2.associate_address()
            .allocation_id(allocation)
            .instance_id(&d.w.sophos)
            .allow_reassociation(true)
            .send()
            .await
            .unwrap();
        let (stops_before, _) = stops(&d.layer);

        let handed = d.reconcile().await;
        assert_eq!(handed["outcome"], "handed_over", "{handed:#}");
        assert!(
            handed["reason"].as_str().unwrap().contains("moved by hand"),
            "{handed:#}"
        );
        let by_hand = snapshot(&ec2).await;
        for _ in 0..2 {
            let again = d.reconcile().await;
            assert_eq!(again["outcome"], "ignored", "{again:#}");
            let late = d.invoke(&event).await;
            assert_eq!(late.json()["outcome"], "ignored", "{}", late.body);
        }
        assert_eq!(
            snapshot(&ec2).await,
            by_hand,
            "nothing changed after the hand-over"
        );
        assert_eq!(
            common::address_owner(&ec2, &d.w.floating_ip).await,
            Some(d.w.sophos.clone())
        );
        for id in [&d.w.sophos, &replacement] {
            let i = common::describe(&ec2, id).await;
            let state = i.state().and_then(|s| s.name()).map(|n| n.as_str());
            assert_eq!(state, Some("running"), "{id}");
        }
        assert_eq!(
            stops(&d.layer).0,
            stops_before,
            "no StopInstances after the hand move"
        );
    }

    #[tokio::test]
    async fn a_dry_run_reconcile_plans_the_failover_and_changes_nothing() {
        let d = deploy(&[("DRY_RUN", "true")]).await;
        d.layer.heal();
        let ec2 = d.moto.ec2();
        let before = snapshot(&ec2).await;
        let planned = d.reconcile().await;
        assert_eq!(planned["outcome"], "planned", "{planned:#}");
        assert_eq!(snapshot(&ec2).await, before);
        assert_eq!(d.layer.count("RunInstances", "OK"), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_without_a_group_follows_every_groups_alarm() {
    let t = two_groups();
    // tokyo-vpn is watched through its health check's metric, prod-nat by name.
    t.w.cloud.set_alarm(Alarm {
        health_check_id: Some(HEALTH_CHECK.into()),
        ..sophos_alarm("OK")
    });
    t.w.cloud.set_alarm(Alarm {
        name: "nat-health".into(),
        arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:nat-health".into(),
        ..sophos_alarm("ALARM")
    });
    let r = ec2_failover::handle(&t.fleet, &reconcile(), &common::invocation("tick-1"))
        .await
        .unwrap();
    let ec2_failover::Response::PerGroup(per) = r else {
        panic!("one report per group: {r:?}");
    };
    let outcome = |group: &str| {
        let g = per.groups.iter().find(|g| g.group == group).unwrap();
        let report = g.report.as_ref().unwrap_or_else(|| panic!("{g:?}"));
        (report.outcome, report.reason.clone())
    };
    let (vpn, why) = outcome("tokyo-vpn");
    assert_eq!(vpn, Outcome::Ignored, "{why}");
    assert!(why.contains("is OK"), "{why}");
    assert_eq!(outcome("prod-nat").0, Outcome::FailedOver);
    let view = t.w.cloud.view();
    assert_ne!(
        view.address_owner(&t.nat.floating_ip),
        Some(t.nat.instance.as_str()),
        "the NAT's floating IP moved"
    );
    assert_eq!(
        view.address_owner(&t.w.floating_ip),
        Some(t.w.sophos.as_str())
    );
}

#[tokio::test(start_paused = true)]
async fn a_fence_that_fails_after_a_failover_leaves_the_failover_reported() {
    // A clean failover's calls: the fence's look (VPC, instances, address) is
    // the last three.
    let clean = seed_world();
    let counted = FaultyCloud::new(clean.cloud.clone());
    invoke(
        &single(counted.clone(), seed_settings(&clean, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    let before_fence = counted.calls().len() - 3;

    let w = seed_world();
    let cloud = FaultyCloud::new(w.cloud.clone()).with(Fault::FailAfter {
        n: before_fence,
        code: "UnauthorizedOperation".into(),
    });
    let r = invoke(
        &single(cloud, seed_settings(&w, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let fence = steps(&r, "fence");
    assert_eq!(fence[0].status, StepStatus::Failed, "{r:#?}");
    assert_failed_over_once(&w.view(), &w);
}

/// Lambda retries a failed or throttled event for up to an hour: an ALARM that
/// arrives after its alarm went back to OK is stale and moves nothing (the
/// appliance is healthy: moving it would be the outage), and one older than
/// the alarm's current ALARM is left to that newer change's own incident.
/// When the alarm still says what the event says, the failover goes ahead.
#[tokio::test(start_paused = true)]
async fn a_late_alarm_event_is_checked_against_the_alarm_before_anything_moves() {
    let event = sample("sns-alarm.json"); // StateChangeTime 09:00:00Z (on the sample day)
    let cases = [
        (sophos_alarm("OK"), "is OK now"),
        (
            Alarm {
                transitioned_at: Some(on_sample_day("09:40:00Z")),
                ..sophos_alarm("ALARM")
            },
            &format!("went ALARM again at {}T09:40:00", common::sample_day()),
        ),
    ];
    for (alarm, why) in cases {
        let (w, cloud) = world(0);
        w.cloud.set_alarm(alarm);
        let before = w.view();
        let fleet = single(cloud, seed_settings(&w, &[("ALARM_NAME", ALARM)]));
        let r = invoke(&fleet, &event, "req-late").await.unwrap();
        assert_eq!(r.outcome, Outcome::Ignored, "{why}: {r:#?}");
        assert!(r.reason.contains(why), "{why}: {}", r.reason);
        assert_eq!(w.view(), before, "{why}: nothing changed");
    }
    let (w, cloud) = world(0);
    w.cloud.set_alarm(Alarm {
        transitioned_at: Some(on_sample_day("09:00:00Z")),
        ..sophos_alarm("ALARM")
    });
    let fleet = single(cloud, seed_settings(&w, &[("ALARM_NAME", ALARM)]));
    let r = invoke(&fleet, &event, "req-1").await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let alarm = steps(&r, "alarm");
    assert!(alarm[0].detail.contains("still ALARM"), "{alarm:?}");
}

/// A fence that can never succeed (StopInstances denied on the replaced
/// instance) is a failed step and a count in the metrics; the reconcile
/// still reports what the alarm said, and the standby's upkeep after it runs,
/// every time.
#[tokio::test(start_paused = true)]
async fn a_fence_that_fails_still_lets_the_upkeep_run_and_the_report_carries_both() {
    let (w, cloud) = world(0);
    let settings = seed_settings(&w, &[("ALARM_NAME", ALARM), ("STANDBY", "warm")]);
    w.cloud.set_alarm(sophos_alarm("ALARM"));
    invoke(
        &single(cloud, settings.clone()),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    w.cloud.set_alarm(sophos_alarm("OK"));
    w.cloud.restart(&w.sophos, Utc::now());
    let denied = FaultyCloud::new(w.cloud.clone()).with(Fault::FailOperation {
        operation: "StopInstances",
        target: w.sophos.clone(),
        code: "UnauthorizedOperation".into(),
        times: None,
    });
    let fleet = single(denied, settings);
    for tick in ["tick-1", "tick-2"] {
        let r = invoke(&fleet, &reconcile(), tick).await.unwrap();
        assert_eq!(r.outcome, Outcome::Ignored, "{tick}: {r:#?}");
        assert!(r.reason.contains("is OK"), "{tick}: {}", r.reason);
        let fence = steps(&r, "fence");
        assert_eq!(fence[0].step, format!("fence {}", w.sophos), "{r:#?}");
        assert_eq!(fence[0].status, StepStatus::Failed, "{tick}: {r:#?}");
        let at = |name: &str| r.steps.iter().position(|s| s.step.starts_with(name));
        assert!(
            at("standby") > at("fence"),
            "{tick}: the upkeep ran after the fence: {r:#?}"
        );
        assert!(
            steps(&r, "standby")
                .iter()
                .all(|s| s.status != StepStatus::Failed),
            "{tick}: {r:#?}"
        );
        let emf = ec2_failover::metrics::emf("sophos", &Ok(r), Default::default(), None, 0);
        assert_eq!(emf["FollowUpsFailed"], 1, "{emf:#}");
        assert_eq!(emf["FailedInvocations"], 0, "{emf:#}");
    }
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running)
    );
}

#[tokio::test(start_paused = true)]
async fn an_old_instance_that_still_carries_the_traffic_is_never_fenced() {
    // A NAT-like appliance: routes, no floating IP. The failover dies right
    // after RunInstances, before anything moved; the alarm then clears.
    let (w, _) = world(0);
    let settings = seed_settings(&w, &[("ALARM_NAME", ALARM), ("FLOATING_IP", "")]);
    let crashing = FaultyCloud::new(w.cloud.clone()).with(Fault::DieAtMutation {
        k: 1,
        after_effect: true,
    });
    w.cloud.set_alarm(sophos_alarm("ALARM"));
    invoke(
        &single(crashing, settings.clone()),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    w.cloud.set_alarm(sophos_alarm("OK"));
    let r = invoke(
        &single(FaultyCloud::new(w.cloud.clone()), settings),
        &reconcile(),
        "tick-1",
    )
    .await
    .unwrap();
    // The route it left is on the failed instance, which runs: the incident
    // is handed over, not finished onto the idle replacement.
    assert_eq!(r.outcome, Outcome::HandedOver, "{r:#?}");
    assert!(r.reason.contains("held by a running instance"), "{r:#?}");
    let fence = steps(&r, "fence");
    assert_eq!(fence[0].step, format!("fence {}", w.sophos), "{r:#?}");
    assert_eq!(fence[0].status, StepStatus::Skipped, "{r:#?}");
    assert!(fence[0].detail.contains("managed route"), "{r:#?}");
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running)
    );
}
