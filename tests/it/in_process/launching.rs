//! Launching: capacity fallback over AZs and instance types, launches EC2
//! refuses (never stopping the failed instance first), ClientToken recovery.

use crate::common;

use common::memory_world::*;
use common::{VPN_CIDR, sample};
use ec2_failover::cloud::faults::{Call, Fault, FaultyCloud};
use ec2_failover::cloud::memory::ImageSpec;
use ec2_failover::cloud::{InstanceState, TAG_INCIDENT};
use ec2_failover::{Outcome, Settings, StepStatus};
use serde_json::{Value, json};

use super::worlds::*;

#[tokio::test(start_paused = true)]
async fn no_capacity_in_one_az_moves_on_to_the_next() {
    let w = seed_world();
    let subnet_d = w
        .cloud
        .add_subnet(&w.vpc, "ap-northeast-1d", cidr("10.0.3.0/24"), "public");
    let cloud = failing(
        &w,
        "RunInstances",
        &w.subnet_c,
        "InsufficientInstanceCapacity",
    );
    let r = invoke(
        &single(cloud.clone(), seed_settings(&w, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.availability_zone.as_deref(), Some("ap-northeast-1d"));
    let view = w.view();
    let ours = replacements(&view, &w.vpc, "sophos", &w.sophos);
    assert_eq!(ours.len(), 1, "{ours:?}");
    let new = view.instance(&ours[0]).unwrap();
    assert_eq!(new.subnet_id, subnet_d);
    assert_eq!(r.new_instance.as_deref(), Some(new.id.as_str()));
    assert_eq!(view.address_owner(&w.floating_ip), Some(new.id.as_str()));
    let launches: Vec<Call> = cloud
        .calls()
        .into_iter()
        .filter(|c| c.operation == "RunInstances")
        .collect();
    assert_eq!(launches.len(), 2, "1c refused, then 1d");
    assert!(launches[0].failed && !launches[1].failed);
}

#[tokio::test(start_paused = true)]
async fn no_capacity_for_the_type_anywhere_falls_back_to_the_next_type() {
    let w = seed_world();
    let cloud = failing(
        &w,
        "RunInstances",
        "t3.small",
        "InsufficientInstanceCapacity",
    );
    let r = invoke(
        &single(
            cloud,
            seed_settings(&w, &[("FALLBACK_INSTANCE_TYPES", "t3.medium,m5.large")]),
        ),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let view = w.view();
    let ours = replacements(&view, &w.vpc, "sophos", &w.sophos);
    assert_eq!(ours.len(), 1, "{ours:?}");
    let new = view.instance(&ours[0]).unwrap();
    assert_eq!(new.instance_type, "t3.medium");
    assert_eq!(new.subnet_id, w.subnet_c);
    assert_eq!(view.address_owner(&w.floating_ip), Some(new.id.as_str()));
}

#[tokio::test(start_paused = true)]
async fn with_no_capacity_anywhere_the_error_is_retryable_and_nothing_moves() {
    let w = seed_world();
    let cloud = failing(&w, "RunInstances", "", "InsufficientInstanceCapacity");
    let e = invoke(
        &single(
            cloud,
            seed_settings(&w, &[("FALLBACK_INSTANCE_TYPES", "t3.medium")]),
        ),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.NoCapacity", "{e}");
    let view = w.view();
    assert!(replacements(&view, &w.vpc, "sophos", &w.sophos).is_empty());
    assert_eq!(view.address_owner(&w.floating_ip), Some(w.sophos.as_str()));
    assert_eq!(
        view.route(&w.route_table, VPN_CIDR)
            .map(|r| r.target.clone()),
        Some(ec2_failover::cloud::RouteTarget::Instance(w.sophos.clone()))
    );
}

/// DESIGN.md: "Never make an outage worse: stop the failed instance only once
/// a replacement has been accepted by EC2." An alarm can be wrong (a checker
/// outage, a security-group change); the appliance may still be serving.
#[tokio::test(start_paused = true)]
async fn a_launch_ec2_refuses_never_stops_the_failed_instance() {
    let w = seed_world();
    let cloud = failing(&w, "RunInstances", "", "InsufficientInstanceCapacity");
    invoke(
        &single(cloud, seed_settings(&w, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running),
        "no replacement was accepted, so the failed instance must not be stopped"
    );
}

/// The same rule when EC2 refuses the launch for good: the appliance's key
/// pair was deleted (instances keep running without it; launches fail).
#[tokio::test(start_paused = true)]
async fn a_launch_refused_for_good_never_stops_the_failed_instance() {
    let w = seed_world();
    w.cloud.remove_key_pair("ops");
    let e = invoke(
        &single(w.cloud.clone(), seed_settings(&w, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    assert!(!e.retryable(), "{e}");
    assert_eq!(
        w.view().instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running),
        "no replacement was accepted, so the failed instance must not be stopped"
    );
}

/// A failover world whose first delivery dies right after RunInstances was
/// carried out (its answer lost), while EC2's filtered describes do not list
/// the replacement yet: the world, its settings, the event and the one
/// replacement EC2 launched.
async fn a_launch_whose_answer_was_lost() -> (MemWorld, Settings, Value, Vec<String>) {
    let (w, settings) = failover_world();
    w.cloud.set_listing_lag(1);
    let k = 1 + mutations(&clean_failover_calls().await)
        .iter()
        .position(|op| *op == "RunInstances")
        .expect("a launch");
    let dying = FaultyCloud::new(w.cloud.clone()).with(Fault::DieAtMutation {
        k,
        after_effect: true,
    });
    let event = sample("sns-alarm.json");
    invoke(&single(dying, settings.clone()), &event, "req-1")
        .await
        .unwrap_err();
    let launched = replacements(&w.view(), &w.vpc, "sophos", &w.sophos);
    assert_eq!(launched.len(), 1, "EC2 launched it; the answer was lost");
    (w, settings, event, launched)
}

/// A retry that does not see the replacement yet (EC2's filtered describes
/// are eventually consistent) launches again with the same ClientToken, and
/// EC2 answers with the first launch: still one replacement.
#[tokio::test(start_paused = true)]
async fn a_retry_that_cannot_see_the_replacement_yet_gets_it_back_by_client_token() {
    let (w, settings, event, launched) = a_launch_whose_answer_was_lost().await;

    let retry = FaultyCloud::new(w.cloud.clone());
    let r = invoke(&single(retry.clone(), settings), &event, "req-2")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let launches: Vec<bool> = retry
        .calls()
        .iter()
        .filter(|c| c.operation == "RunInstances")
        .map(|c| c.failed)
        .collect();
    assert_eq!(
        launches,
        [false],
        "the retry launched again, and EC2 answered"
    );
    assert_eq!(r.new_instance.as_ref(), Some(&launched[0]));
    assert_eq!(status(&r, "launch_replacement"), Some(StepStatus::Done));
    let new_id = assert_failed_over_once(&w.view(), &w);
    assert_eq!(new_id, launched[0]);
    let incident = w
        .view()
        .instance(&new_id)
        .unwrap()
        .tag(TAG_INCIDENT)
        .map(str::to_owned);
    assert_eq!(incident, Some(r.incident.clone()));
}

/// The schedule takes a newer AMI between two tries of one incident (the
/// first launch's answer was lost and EC2 does not list the replacement
/// yet). The retry keeps the incident's AMI, so RunInstances under the same
/// ClientToken gets the first launch back; with the new AMI EC2 would refuse
/// the token (`IdempotentParameterMismatch`) on every try of the incident.
#[tokio::test(start_paused = true)]
async fn a_newer_ami_taken_between_two_tries_keeps_the_incidents_launch() {
    let (w, settings, event, launched) = a_launch_whose_answer_was_lost().await;
    let newer = w.cloud.add_image(
        ImageSpec::new("sophos_snapshot")
            .tag("Name", "sophos")
            .of_instance(&w.sophos),
    );

    let retry = FaultyCloud::new(w.cloud.clone());
    let r = invoke(&single(retry.clone(), settings), &event, "req-2")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let launches: Vec<bool> = retry
        .calls()
        .iter()
        .filter(|c| c.operation == "RunInstances")
        .map(|c| c.failed)
        .collect();
    assert_eq!(launches, [false], "EC2 answered the first launch again");
    assert_eq!(r.new_instance.as_ref(), Some(&launched[0]));
    let new_id = assert_failed_over_once(&w.view(), &w);
    assert_eq!(new_id, launched[0]);
    assert_eq!(r.image.as_deref(), Some(w.new_ami.as_str()));
    assert_ne!(r.image.as_deref(), Some(newer.as_str()));
}

/// A fallback type that does not fit the AMI (another architecture, no ENA,
/// another boot mode) or is not offered in the AZ is refused for what it is,
/// not for capacity; the failover passes it over like one without capacity.
#[tokio::test(start_paused = true)]
async fn a_type_ec2_refuses_for_what_it_is_is_passed_over_for_the_next() {
    let w = seed_world();
    let cloud = FaultyCloud::new(w.cloud.clone())
        .with(Fault::FailOperation {
            operation: "RunInstances",
            target: "t3.small".into(),
            code: "InvalidParameterCombination".into(),
            times: None,
        })
        .with(Fault::FailOperation {
            operation: "RunInstances",
            target: "c7g.large".into(),
            code: "Unsupported".into(),
            times: None,
        });
    let settings = seed_settings(&w, &[("FALLBACK_INSTANCE_TYPES", "c7g.large,t3.medium")]);
    let r = invoke(&single(cloud, settings), &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let view = w.view();
    let ours = replacements(&view, &w.vpc, "sophos", &w.sophos);
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(view.instance(&ours[0]).unwrap().instance_type, "t3.medium");
    let launch = r
        .steps
        .iter()
        .find(|s| s.step == "launch_replacement")
        .unwrap();
    for code in ["InvalidParameterCombination", "Unsupported"] {
        assert!(launch.detail.contains(code), "{}", launch.detail);
    }
}

/// When every option is refused that way, a retry would be refused again:
/// the error says so (permanent, naming the options), and nothing moves.
#[tokio::test(start_paused = true)]
async fn when_ec2_refuses_every_option_for_what_it_is_the_error_is_permanent() {
    let w = seed_world();
    let cloud = failing(&w, "RunInstances", "", "InvalidParameterCombination");
    let settings = seed_settings(&w, &[("FALLBACK_INSTANCE_TYPES", "t3.medium")]);
    let e = invoke(&single(cloud, settings), &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.NoLaunchOption", "{e}");
    assert!(e.to_string().contains("t3.medium"), "{e}");
    let view = w.view();
    assert!(replacements(&view, &w.vpc, "sophos", &w.sophos).is_empty());
    assert_eq!(view.address_owner(&w.floating_ip), Some(w.sophos.as_str()));
    assert_eq!(
        view.instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running)
    );
}

/// Preflight proves every launch option a failover would try, not only the
/// first: a fallback type EC2 would refuse shows as a warning by name.
#[tokio::test(start_paused = true)]
async fn a_preflight_proves_every_launch_option() {
    let w = seed_world();
    let cloud = failing(
        &w,
        "RunInstances",
        "m5.large",
        "InvalidParameterCombination",
    );
    let settings = seed_settings(&w, &[("FALLBACK_INSTANCE_TYPES", "t3.medium,m5.large")]);
    let r = invoke(
        &single(cloud.clone(), settings),
        &serde_json::json!({"action": "preflight"}),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Preflight, "{r:#?}");
    let launches: Vec<_> = r
        .steps
        .iter()
        .filter(|s| s.step.starts_with("preflight permission RunInstances"))
        .collect();
    let probed = cloud
        .calls()
        .into_iter()
        .filter(|c| c.operation == "RunInstances")
        .count();
    assert_eq!(launches.len(), probed, "one item per proven option: {r:#?}");
    assert!(
        launches.len() >= 3,
        "every type in each candidate AZ: {r:#?}"
    );
    for item in &launches {
        let expected = match item.step.ends_with("m5.large") {
            true => StepStatus::Warn,
            false => StepStatus::Ok,
        };
        assert_eq!(item.status, expected, "{item:?}");
    }
    assert!(
        r.steps.iter().all(|s| s.status != StepStatus::Failed),
        "{r:#?}"
    );
}

/// An AMI another account published (a Marketplace image) is launched only
/// when `AMI_OWNERS` trusts its publisher; its AMI name, not a tag (tags on
/// another account's AMI are its owner's), matches `AMI_NAME`.
#[tokio::test(start_paused = true)]
async fn a_published_ami_is_launched_only_from_an_owner_ami_owners_trusts() {
    let (w, settings) = failover_world();
    let published = w.cloud.add_image(
        ImageSpec::new("sophos-utm-9.8-marketplace")
            .published_by("aws-marketplace")
            .created(days_ago(1)),
    );
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = invoke(
        &single(cloud, settings.clone()),
        &json!({"action": "plan"}),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(
        r.image.as_deref(),
        Some(w.new_ami.as_str()),
        "not trusted: {r:#?}"
    );

    let mut trusting = settings;
    trusting.appliance.ami_owners = vec!["aws-marketplace".into()];
    let cloud = FaultyCloud::new(w.cloud.clone());
    let r = invoke(&single(cloud, trusting), &sample("sns-alarm.json"), "req-2")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.image.as_deref(), Some(published.as_str()), "{r:#?}");
}
