//! Faults, retries and bad signals: the failover (an alarm's, or an
//! operator's fail-back) must end in the world of one clean run whatever
//! happens on the way, and must not act on a stale or
//! unconfirmed alarm. Real SDK adapter against moto, faults injected by
//! `FaultyCloud` around it.

use crate::common;

use std::time::{Duration, Instant};

use common::route53_standin::Route53StandIn;
use common::*;
use ec2_failover::cloud::TAG_MOVED_AT;
use ec2_failover::cloud::faults::{Fault, FaultyCloud};
use ec2_failover::cloud::sdk::SdkCloud;
use ec2_failover::{App, FailoverError, Invocation, Outcome, StepStatus};

/// A fail-back's settings: the appliance's alarm, and its home.
const HOME: &[(&str, &str)] = &[
    ("ALARM_NAME", common::alarmed::ALARM),
    ("HOME_AZ", "ap-northeast-1c"),
];

/// What a crash case delivers: an alarm's failover, or an operator's
/// fail-back (the appliance in 1a, its home 1c, its alarm OK), each
/// delivered again under the same request id, as Lambda retries.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    Alarm,
    Failback,
}

impl Delivery {
    /// The world, the function over it (faults to inject) and the event.
    async fn deploy(self, moto: &Moto) -> (World, App<FaultyCloud<SdkCloud>>, serde_json::Value) {
        let w = build_world(&moto.ec2()).await;
        let sdk = SdkCloud::new(moto.ec2(), moto.route53());
        let (extra, event): (&[(&str, &str)], _) = match self {
            Delivery::Alarm => (&[], sample("sns-alarm.json")),
            Delivery::Failback => {
                common::alarmed::put_alarm(moto).await;
                let ok = aws_sdk_cloudwatch::types::StateValue::Ok;
                common::alarmed::set_state(moto, ok).await;
                let event = serde_json::json!({"action": "failback", "reason": "home"});
                (HOME, event)
            }
        };
        let sdk = sdk.with_alarms(moto.cloudwatch());
        let app = App {
            cloud: FaultyCloud::new(sdk),
            settings: settings(&w, extra),
        };
        (w, app, event)
    }
}

/// Mutating calls of one uninterrupted run, counted through the wrapper.
async fn mutating_calls_of_a_clean_run(delivery: Delivery) -> usize {
    let moto = Moto::start();
    let (_w, app, event) = delivery.deploy(&moto).await;
    let r = handle(&app, &event, &invocation("req-0")).await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let ops: Vec<&str> = app
        .cloud
        .calls()
        .iter()
        .filter(|c| c.mutating)
        .map(|c| c.operation)
        .collect();
    let mut sorted = ops.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "AssociateAddress",
            "CreateTags",
            "ModifyInstanceAttribute",
            "ReplaceRoute",
            "RunInstances",
            "StopInstances"
        ]
    );
    ops.len()
}

/// Dies at mutating call k, then delivers the same event again: the world
/// must be that of one clean run.
async fn crash_at(delivery: Delivery, k: usize, after_effect: bool) {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let (w, app, event) = delivery.deploy(&moto).await;
    let app = App {
        cloud: app.cloud.with(Fault::DieAtMutation { k, after_effect }),
        settings: app.settings,
    };
    let cloud = app.cloud.clone();
    let case = format!("{delivery:?} k={k} after_effect={after_effect}");
    let first = handle(&app, &event, &invocation("req-1")).await;
    // The move's mark comes after the move and its failure never fails the
    // run (in life the process ends there all the same).
    let at_mark = cloud
        .calls()
        .iter()
        .filter(|c| c.mutating)
        .nth(k - 1)
        .is_some_and(|c| c.target.contains(TAG_MOVED_AT));
    match first {
        Err(e) => assert!(e.retryable(), "{case}: a crash is worth a retry: {e}"),
        Ok(r) => assert!(at_mark, "{case}: a crash ends the run: {r:#?}"),
    }

    cloud.heal();
    let r = handle(&app, &event, &invocation("req-1"))
        .await
        .unwrap_or_else(|e| panic!("{case}: retry failed: {e}"));
    // When AWS carried out the very last call before the crash, the retry
    // finds the run complete; otherwise it finishes it.
    let expected: &[Outcome] = if after_effect || at_mark {
        &[Outcome::FailedOver, Outcome::AlreadyFailedOver]
    } else {
        &[Outcome::FailedOver]
    };
    assert!(expected.contains(&r.outcome), "{case}: {r:#?}");
    let new_id = assert_failed_over_once(&ec2, &w).await;
    assert_eq!(r.new_instance.as_deref(), Some(new_id.as_str()));

    // And a third delivery finds nothing left to do.
    let again = handle(&app, &event, &invocation("req-1")).await.unwrap();
    assert_eq!(
        again.outcome,
        Outcome::AlreadyFailedOver,
        "{case}: {again:#?}"
    );
}

/// Every crash case of `delivery`, side by side: each waits on moto and on
/// modelled timings far more than on a core.
async fn crash_everywhere(delivery: Delivery, after_effect: bool) {
    let n = mutating_calls_of_a_clean_run(delivery).await;
    futures::future::join_all((1..=n).map(|k| crash_at(delivery, k, after_effect))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_any_mutating_call_reaches_aws_resumes_cleanly() {
    crash_everywhere(Delivery::Alarm, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_aws_did_a_mutating_call_resumes_cleanly() {
    crash_everywhere(Delivery::Alarm, true).await;
}

// A fail-back dying before a call reached AWS leaves moto as it was; the
// in-process crash matrix (in_process::crash_matrix) covers that half, and
// this one the half where moto's state must be read back through the SDK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_crashing_after_aws_did_a_mutating_call_is_finished_by_its_retry() {
    crash_everywhere(Delivery::Failback, true).await;
}

#[tokio::test]
async fn ten_deliveries_of_one_alarm_launch_one_replacement() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));
    let event = sample("sns-alarm.json");
    let mut outcomes = Vec::new();
    for i in 0..10 {
        let r = handle(&app, &event, &invocation(&format!("req-{i}")))
            .await
            .unwrap();
        outcomes.push(r.outcome);
    }
    assert_eq!(outcomes[0], Outcome::FailedOver);
    assert!(
        outcomes[1..]
            .iter()
            .all(|o| *o == Outcome::AlreadyFailedOver),
        "{outcomes:?}"
    );
    assert_failed_over_once(&ec2, &w).await;
}

#[tokio::test]
async fn throttled_stop_does_not_delay_the_move_and_the_retry_finishes_it() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let cloud = faulty(&moto).with(Fault::FailOperation {
        operation: "StopInstances",
        target: String::new(),
        code: "RequestLimitExceeded".into(),
        times: None,
    });
    let app = App {
        cloud: cloud.clone(),
        settings: settings(&w, &[]),
    };
    let event = sample("sns-alarm.json");
    let e = handle(&app, &event, &invocation("req-1"))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.AwsCallFailed", "{e}");
    assert!(e.to_string().contains("stop_failed_instance"), "{e}");
    // The VPN is back already: the floating IP and the route moved.
    let moved = address_owner(&ec2, &w.floating_ip).await.unwrap();
    assert_ne!(moved, w.sophos);
    assert_eq!(
        route_target(&ec2, &w.route_table, VPN_CIDR).await,
        Some(moved)
    );

    cloud.heal();
    let r = handle(&app, &event, &invocation("req-2")).await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver);
    assert_eq!(
        r.step("stop_failed_instance").unwrap().status,
        StepStatus::Done
    );
    assert_failed_over_once(&ec2, &w).await;
}

#[tokio::test]
async fn out_of_time_while_waiting_is_retryable_and_the_retry_resumes() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    // EC2 may not list a new instance for a while; here it never does in time.
    let cloud = faulty(&moto).with(Fault::HideInstance { times: None });
    let app = App {
        cloud: cloud.clone(),
        settings: settings(&w, &[]),
    };
    let event = sample("sns-alarm.json");
    let short = Invocation {
        request_id: "req-1".into(),
        deadline: Some(Instant::now() + Duration::from_secs(6)),
        function_arn: None,
    };
    let e = handle(&app, &event, &short).await.unwrap_err();
    assert!(matches!(e, FailoverError::Deadline { .. }), "{e}");
    assert_eq!(e.error_type(), "Retryable.DeadlineReached");
    assert!(e.to_string().contains("wait_for_replacement"), "{e}");
    // Stopped where it said: launched, but nothing moved yet.
    assert_eq!(
        address_owner(&ec2, &w.floating_ip).await,
        Some(w.sophos.clone())
    );

    cloud.heal();
    let r = handle(&app, &event, &invocation("req-2")).await.unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(
        r.step("launch_replacement").unwrap().status,
        StepStatus::AlreadyDone
    );
    assert_failed_over_once(&ec2, &w).await;
}

#[tokio::test]
async fn the_flap_guard_refuses_a_third_failover_within_the_window() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(
        &moto,
        settings(&w, &[("COOLDOWN_MINUTES", "0"), ("MAX_FAILOVERS", "2")]),
    );
    let first = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(first.outcome, Outcome::FailedOver);
    let second = handle(&app, &sample("manual-failover.json"), &invocation("req-2"))
        .await
        .unwrap();
    assert_eq!(second.outcome, Outcome::FailedOver);
    let before = snapshot(&ec2).await;

    let e = handle(&app, &sample("manual-failover.json"), &invocation("req-3"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, FailoverError::FlapGuard { count: 2, .. }),
        "{e}"
    );
    assert_eq!(e.error_type(), "Permanent.FlapGuard");
    let text = e.to_string();
    assert!(
        text.contains("MAX_FAILOVERS=2") && text.contains("60 min"),
        "{text}"
    );
    assert_eq!(
        snapshot(&ec2).await,
        before,
        "a refused failover changes nothing"
    );

    // A wider limit lets the same request through: the guard, not the world, refused.
    let relaxed = app_with(
        &app,
        settings(&w, &[("COOLDOWN_MINUTES", "0"), ("MAX_FAILOVERS", "3")]),
    );
    let third = handle(
        &relaxed,
        &sample("manual-failover.json"),
        &invocation("req-4"),
    )
    .await
    .unwrap();
    assert_eq!(third.outcome, Outcome::FailedOver);
}

fn app_with(app: &App<SdkCloud>, settings: ec2_failover::Settings) -> App<SdkCloud> {
    App {
        cloud: app.cloud.clone(),
        settings,
    }
}

/// The SNS sample, re-addressed to another health check id.
fn alarm_for_health_check(id: &str) -> serde_json::Value {
    let mut event = sample("sns-alarm.json");
    let message = event["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut message: serde_json::Value = serde_json::from_str(&message).unwrap();
    message["Trigger"]["Dimensions"][0]["value"] = id.into();
    event["Records"][0]["Sns"]["Message"] = message.to_string().into();
    event
}

#[tokio::test]
async fn an_alarm_route53_no_longer_confirms_is_ignored() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let check = moto
        .route53()
        .create_health_check()
        .caller_reference("sophos")
        .health_check_config(
            aws_sdk_route53::types::HealthCheckConfig::builder()
                .ip_address(&w.floating_ip)
                .port(443)
                .r#type(aws_sdk_route53::types::HealthCheckType::Tcp)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .health_check()
        .unwrap()
        .id()
        .to_owned();
    let app = app(&moto, settings(&w, &[("HEALTH_CHECK_ID", &check)]));
    let before = snapshot(&ec2).await;

    // Moto's checkers all report success: the appliance is healthy again.
    let r = handle(&app, &alarm_for_health_check(&check), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Ignored, "{r:#?}");
    assert!(r.reason.contains("healthy"), "{}", r.reason);
    assert_eq!(r.step("confirm").unwrap().status, StepStatus::Done);

    // An alarm on some other health check is not ours.
    let other = handle(&app, &sample("sns-alarm.json"), &invocation("req-2"))
        .await
        .unwrap();
    assert_eq!(other.outcome, Outcome::Ignored);
    assert!(other.reason.contains("HEALTH_CHECK_ID"), "{}", other.reason);

    assert_eq!(snapshot(&ec2).await, before);
}

#[tokio::test]
async fn a_confirmed_failure_fails_over_and_a_resume_skips_the_confirmation() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let check = "6f0c8d52-5a4e-4c1e-9a3b-2b7f1e0d9c11";
    let failing = Route53StandIn::start(&[
        "Failure: Connection timed out. The endpoint or the internet connection is down.",
        "Failure: Connection timed out. The endpoint or the internet connection is down.",
        "Success: TCP connection established.",
    ])
    .await;
    let cloud = FaultyCloud::new(SdkCloud::new(ec2.clone(), route53_at(&failing.endpoint))).with(
        Fault::DieAtMutation {
            k: 3,
            after_effect: false,
        },
    );
    let app = App {
        cloud: cloud.clone(),
        settings: settings(&w, &[("HEALTH_CHECK_ID", check)]),
    };
    let event = sample("sns-alarm.json");
    // Confirmed (1 of 3 healthy), launched, then the run dies.
    handle(&app, &event, &invocation("req-1"))
        .await
        .unwrap_err();
    assert!(
        cloud
            .calls()
            .iter()
            .any(|c| c.operation == "GetHealthCheckStatus")
    );
    assert!(
        cloud
            .calls()
            .iter()
            .any(|c| c.operation == "RunInstances" && !c.failed)
    );

    // The redelivery sees a healthy check (the replacement may already answer)
    // but must finish the failover it started rather than stand down.
    let healthy = Route53StandIn::start(&["Success: TCP connection established."; 3]).await;
    let resumed = App {
        cloud: SdkCloud::new(ec2.clone(), route53_at(&healthy.endpoint)),
        settings: app.settings.clone(),
    };
    let r = handle(&resumed, &event, &invocation("req-2"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.step("confirm").unwrap().status, StepStatus::Skipped);
    assert_failed_over_once(&ec2, &w).await;
}

#[tokio::test]
async fn a_confirmed_failure_reports_what_the_checkers_saw() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let check = "6f0c8d52-5a4e-4c1e-9a3b-2b7f1e0d9c11";
    let failing = Route53StandIn::start(&[
        "Failure: Connection timed out.",
        "Failure: Connection timed out.",
    ])
    .await;
    let app = App {
        cloud: SdkCloud::new(ec2.clone(), route53_at(&failing.endpoint)),
        settings: settings(&w, &[("HEALTH_CHECK_ID", check)]),
    };
    let r = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver);
    let confirm = r.step("confirm").unwrap();
    assert!(
        confirm.detail.contains("0 of 2") && confirm.detail.contains("Connection timed out"),
        "{}",
        confirm.detail
    );
    assert_failed_over_once(&ec2, &w).await;
}

#[tokio::test]
async fn no_capacity_in_one_az_moves_on_to_the_next() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    // A third `public` subnet, in ap-northeast-1d.
    let subnet_d = subnet(&ec2, &w.vpc, "10.0.3.0/24", "ap-northeast-1d", "public").await;
    let cloud = faulty(&moto).with(Fault::FailOperation {
        operation: "RunInstances",
        target: w.subnet_c.clone(),
        code: "InsufficientInstanceCapacity".into(),
        times: None,
    });
    let app = App {
        cloud: cloud.clone(),
        settings: settings(&w, &[]),
    };
    let r = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.availability_zone.as_deref(), Some("ap-northeast-1d"));
    let launch = r.step("launch_replacement").unwrap();
    assert!(
        launch.detail.contains("InsufficientInstanceCapacity"),
        "{}",
        launch.detail
    );
    let new = describe(&ec2, r.new_instance.as_deref().unwrap()).await;
    assert_eq!(new.subnet_id(), Some(subnet_d.as_str()));
    assert_eq!(address_owner(&ec2, &w.floating_ip).await, r.new_instance);
}

#[tokio::test]
async fn no_capacity_for_the_type_anywhere_falls_back_to_the_next_type() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let cloud = faulty(&moto).with(Fault::FailOperation {
        operation: "RunInstances",
        target: "t3.small".into(),
        code: "InsufficientInstanceCapacity".into(),
        times: None,
    });
    let app = App {
        cloud: cloud.clone(),
        settings: settings(&w, &[("FALLBACK_INSTANCE_TYPES", "t3.medium,m5.large")]),
    };
    let r = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new = describe(&ec2, r.new_instance.as_deref().unwrap()).await;
    assert_eq!(new.instance_type().unwrap().as_str(), "t3.medium");
    assert_eq!(new.subnet_id(), Some(w.subnet_c.as_str()));

    // With no fallback left, the error says what was tried and that a retry may help.
    let moto2 = Moto::start();
    let ec2b = moto2.ec2();
    let w2 = build_world(&ec2b).await;
    let none = faulty(&moto2).with(Fault::FailOperation {
        operation: "RunInstances",
        target: String::new(),
        code: "InsufficientInstanceCapacity".into(),
        times: None,
    });
    let app2 = App {
        cloud: none,
        settings: settings(&w2, &[("FALLBACK_INSTANCE_TYPES", "t3.medium")]),
    };
    let e = handle(&app2, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.NoCapacity", "{e}");
    assert!(
        e.to_string().contains("t3.small in ap-northeast-1c")
            && e.to_string().contains("t3.medium in ap-northeast-1c"),
        "{e}"
    );
    assert_eq!(
        address_owner(&ec2b, &w2.floating_ip).await,
        Some(w2.sophos.clone())
    );
}

#[tokio::test]
async fn a_plan_lists_the_calls_a_failover_then_makes_and_makes_none_of_them() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let cloud = faulty(&moto);
    let app = App {
        cloud: cloud.clone(),
        settings: settings(&w, &[]),
    };
    let before = snapshot(&ec2).await;
    let plan = handle(&app, &sample("manual-plan.json"), &invocation("req-1"))
        .await
        .unwrap();
    assert_eq!(plan.outcome, Outcome::Planned);
    assert!(
        cloud.calls().iter().all(|c| !c.mutating),
        "{:?}",
        cloud.calls()
    );
    assert_eq!(snapshot(&ec2).await, before);

    let mut planned: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Planned)
        .map(|s| s.detail.split_whitespace().next().unwrap().to_owned())
        .collect();
    planned.sort();

    let done = handle(&app, &sample("manual-failover.json"), &invocation("req-2"))
        .await
        .unwrap();
    assert_eq!(done.outcome, Outcome::FailedOver);
    let mut made: Vec<String> = cloud
        .calls()
        .iter()
        .filter(|c| c.mutating)
        .map(|c| c.operation.to_owned())
        .collect();
    made.sort();
    assert_eq!(planned, made);
}
