//! Eventual consistency and replacements that die: EC2 may not list a new
//! instance right after RunInstances, though the floating IP and the routes
//! already name it; replacements terminated on launch are followed by the next
//! option; more tags than a launch allows still fail over.

use crate::common;

use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::faults::{Fault, FaultyCloud};
use ec2_failover::cloud::memory::WorldView;
use ec2_failover::cloud::{InstanceState, TAG_INCIDENT, TAG_REPLACES};
use ec2_failover::{FailoverError, Outcome, StepStatus};

use super::worlds::*;

/// SNS and EventBridge deliver the same alarm (one incident, docs/operator-guide.md
/// "Events") back to back: the second delivery comes right after a finished failover.
#[tokio::test(start_paused = true)]
async fn a_redelivery_before_ec2_lists_the_replacement_is_already_failed_over() {
    let (w, settings) = failover_world();
    w.cloud.set_listing_lag(1);
    let fleet = single(w.cloud.clone(), settings);
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver);
    let after = w.view();
    let again = invoke(&fleet, &sample("eventbridge-alarm.json"), "req-2").await;
    assert_eq!(w.view(), after, "a redelivery changes nothing");
    let again = again.unwrap_or_else(|e| panic!("{}: {e}", e.error_type()));
    assert_eq!(again.outcome, Outcome::AlreadyFailedOver, "{again:#?}");
}

/// A crash at the last step (DNS), after the floating IP and the route moved;
/// the retry comes before EC2 lists the replacement.
#[tokio::test(start_paused = true)]
async fn a_retry_before_ec2_lists_the_replacement_finishes_the_failover() {
    let (w, settings) = failover_world();
    w.cloud.set_listing_lag(1);
    let clean = mutations(&clean_failover_calls().await);
    // The last move; the move's mark follows it.
    assert_eq!(
        clean[clean.len() - 2..],
        ["ChangeResourceRecordSets", "CreateTags"]
    );
    let dying = FaultyCloud::new(w.cloud.clone()).with(Fault::DieAtMutation {
        k: clean.len() - 1,
        after_effect: false,
    });
    let event = sample("sns-alarm.json");
    invoke(&single(dying, settings.clone()), &event, "req-1")
        .await
        .unwrap_err();
    let r = invoke(&single(w.cloud.clone(), settings), &event, "req-2")
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", e.error_type()));
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(status(&r, "dns_record"), Some(StepStatus::Done));
    let after = w.view();
    check_failover(&w, &after, &after);
}

#[tokio::test(start_paused = true)]
async fn a_replacement_ec2_terminates_on_launch_is_followed_by_the_next_option_at_once() {
    let w = seed_world();
    w.cloud
        .kill_next_launches(&["Client.InternalError: Client error on launch"]);
    let settings = seed_settings(&w, &[("FALLBACK_INSTANCE_TYPES", "t3.medium")]);
    let r = invoke(
        &single(w.cloud.clone(), settings),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let waits = step(&r, "wait_for_replacement");
    assert_eq!(waits[0].status, StepStatus::Failed);
    assert!(
        waits[0].detail.contains("Client error on launch"),
        "the report names the reason: {}",
        waits[0].detail
    );
    let launches = step(&r, "launch_replacement");
    assert_eq!(launches.len(), 2, "{r:#?}");
    let view = w.view();
    let new = r.new_instance.clone().expect("a replacement");
    assert_eq!(view.address_owner(&w.floating_ip), Some(new.as_str()));
    let new = view.instance(&new).expect("the replacement");
    assert_eq!(
        new.instance_type, "t3.medium",
        "the next option: the fallback type"
    );
    assert_eq!(new.state, InstanceState::Running);
    let dead = view
        .named("sophos")
        .into_iter()
        .filter(|i| i.state == InstanceState::Terminated)
        .count();
    assert_eq!(dead, 1, "the dead replacement stays dead; no third launch");
}

#[tokio::test(start_paused = true)]
async fn with_no_option_left_a_new_token_generation_follows_in_the_same_invocation() {
    let w = seed_world();
    w.cloud
        .kill_next_launches(&["Server.InternalError: Internal error on launch"]);
    let fleet = single(w.cloud.clone(), seed_settings(&w, &[]));
    let r = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let launches = step(&r, "launch_replacement");
    assert_eq!(launches.len(), 2, "{r:#?}");
    let view = w.view();
    let dead = dead_replacements(&view, &w);
    let [dead] = dead.as_slice() else {
        panic!("one replacement died: {dead:?}")
    };
    assert!(
        launches[1]
            .detail
            .contains(&format!("after {dead} died on launch")),
        "{}",
        launches[1].detail
    );
    let waits = step(&r, "wait_for_replacement");
    assert!(
        waits[0].detail.contains("Internal error on launch"),
        "the report says why it died: {}",
        waits[0].detail
    );
    let new = r.new_instance.expect("a replacement");
    assert_ne!(&new, dead);
    assert_eq!(view.address_owner(&w.floating_ip), Some(new.as_str()));
    assert_eq!(
        view.instance(&new).map(|i| i.state),
        Some(InstanceState::Running)
    );
}

/// The replacements EC2 terminated in the seed world's VPC.
fn dead_replacements(view: &WorldView, w: &MemWorld) -> Vec<String> {
    view.named("sophos")
        .into_iter()
        .filter(|i| i.vpc_id == w.vpc && i.id != w.sophos)
        .filter(|i| i.state == InstanceState::Terminated)
        .map(|i| i.id.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn replacements_that_keep_dying_end_after_max_failovers_rounds() {
    let w = seed_world();
    let reason = "Client.InternalError: Client error on launch";
    w.cloud.kill_next_launches(&[reason; 6]);
    let fleet = single(
        w.cloud.clone(),
        seed_settings(&w, &[("MAX_FAILOVERS", "2")]),
    );
    let e = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap_err();
    assert!(
        matches!(e, FailoverError::ReplacementFailed { ref reason, .. } if reason.contains("Client error on launch")),
        "{e}"
    );
    assert!(!e.retryable(), "{e}");
    let view = w.view();
    let dead = dead_replacements(&view, &w);
    assert_eq!(dead.len(), 3, "round 0, then MAX_FAILOVERS more: {dead:?}");
    assert_eq!(
        view.address_owner(&w.floating_ip),
        Some(w.sophos.as_str()),
        "the floating IP stays where it was"
    );
    assert_eq!(
        view.instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running),
        "no replacement ran, so the appliance was not stopped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_old_replacement_is_not_young_for_the_cooldown_or_the_flap_guard() {
    let w = seed_world();
    // sophos itself replaced another instance a month ago, and an operator
    // restarted it just now: EC2 reset its LaunchTime.
    w.cloud.tag(
        &[w.sophos.as_str()],
        &[
            (TAG_REPLACES, "i-0aaaaaaaaaaaaaaaa"),
            (TAG_INCIDENT, "alarm-last-month"),
        ],
    );
    w.cloud.restart(&w.sophos, chrono::Utc::now());
    let settings = seed_settings(&w, &[("MAX_FAILOVERS", "1")]);
    let r = invoke(
        &single(w.cloud.clone(), settings),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_ne!(r.new_instance.as_deref(), Some(w.sophos.as_str()));
}

#[tokio::test(start_paused = true)]
async fn an_instance_with_more_tags_than_ec2_allows_on_a_launch_still_fails_over() {
    let w = seed_world();
    let extra: Vec<(String, String)> = (0..47)
        .map(|n| (format!("cost-{n:02}"), "x".into()))
        .collect();
    let pairs: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    w.cloud.tag(&[w.sophos.as_str()], &pairs);
    let r = invoke(
        &single(w.cloud.clone(), seed_settings(&w, &[])),
        &sample("sns-alarm.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let launch = step(&r, "launch_replacement")[0];
    assert!(
        launch.detail.contains("tags not copied"),
        "{}",
        launch.detail
    );
    let new = w
        .view()
        .instance(&r.new_instance.unwrap())
        .cloned()
        .unwrap();
    assert_eq!(new.tag("Name"), Some("sophos"));
    assert!(new.tag(TAG_INCIDENT).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_default_ebs_key_the_role_may_not_use_kills_every_replacement_and_the_report_names_it() {
    // Encryption by default with a customer managed key outside KMS_KEY_ARNS:
    // every launch, from any AMI, dies; the appliance is left running.
    let w = seed_world();
    let key = "arn:aws:kms:ap-northeast-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    w.cloud.encrypt_volumes_by_default(Some(key));
    w.cloud.forbid_kms_key(key);
    let fleet = single(
        w.cloud.clone(),
        seed_settings(&w, &[("MAX_FAILOVERS", "1")]),
    );
    let e = invoke(&fleet, &sample("sns-alarm.json"), "req-1")
        .await
        .unwrap_err();
    let FailoverError::ReplacementFailed { ref reason, .. } = e else {
        panic!("{e}");
    };
    assert!(reason.contains("Client error on launch"), "{reason}");
    assert!(
        reason.contains("GetEbsDefaultKmsKeyId") && reason.contains("KmsKeyArns"),
        "points at the default EBS key and the fix: {reason}"
    );
    let view = w.view();
    assert_eq!(dead_replacements(&view, &w).len(), 2, "every option died");
    assert_eq!(
        view.instance(&w.sophos).map(|i| i.state),
        Some(InstanceState::Running),
        "no replacement ran, so the appliance was not stopped"
    );
}
