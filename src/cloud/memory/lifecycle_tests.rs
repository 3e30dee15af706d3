//! The memory fake's instance lifecycle: stops that take their time and
//! say when they were asked, starts EC2 may not show at once.

use super::tests::small;
use super::*;
use crate::cloud::{Cloud, InstanceState};

#[tokio::test]
async fn a_start_may_read_stopped_for_a_few_looks_then_pending_then_running() {
    let w = small();
    w.cloud.stop_instance(&w.old, false).await.unwrap();
    w.cloud.set_stale_start_looks(2);
    w.cloud.start_instance(&w.old).await.unwrap();
    let mut states = Vec::new();
    for _ in 0..4 {
        let seen = w.cloud.instance(&w.old).await.unwrap().unwrap();
        states.push(seen.state);
    }
    use InstanceState::{Pending, Running, Stopped};
    assert_eq!(states, [Stopped, Stopped, Pending, Running]);
}

#[tokio::test]
async fn a_stop_takes_the_time_a_test_sets_says_when_it_was_asked_and_force_ends_it() {
    let w = small();
    let minutes = |m: u64| std::time::Duration::from_secs(60 * m);
    w.cloud.set_stop_takes(minutes(3));
    let asked = chrono::Utc::now();
    w.cloud.stop_instance(&w.old, false).await.unwrap();
    let seen = |cloud: &MemoryCloud, id: &str| {
        let i = cloud.peek_instance(id).unwrap();
        (i.state, i.stop_requested)
    };
    let (state, requested) = seen(&w.cloud, &w.old);
    assert_eq!(state, InstanceState::Stopping);
    let requested = requested.expect("StateTransitionReason says when");
    assert!((requested - asked).num_seconds().abs() <= 1, "{requested}");
    // Asking again does not restart the stop; its time passes on the
    // world's clock, looked at by DescribeInstances.
    w.cloud.pass_time(minutes(2));
    w.cloud.stop_instance(&w.old, false).await.unwrap();
    w.cloud.instance(&w.old).await.unwrap();
    assert_eq!(seen(&w.cloud, &w.old).0, InstanceState::Stopping);
    // (A second more: the world's clock runs a few ms ahead of the wall's.)
    w.cloud
        .pass_time(minutes(1) + std::time::Duration::from_secs(1));
    w.cloud.instance(&w.old).await.unwrap();
    assert_eq!(
        seen(&w.cloud, &w.old),
        (InstanceState::Stopped, Some(requested))
    );
    // Started again, it has no stop; a forced stop ends the next one at once.
    w.cloud.start_instance(&w.old).await.unwrap();
    w.cloud.instance(&w.old).await.unwrap();
    assert_eq!(seen(&w.cloud, &w.old), (InstanceState::Pending, None));
    w.cloud.stop_instance(&w.old, false).await.unwrap();
    w.cloud.stop_instance(&w.old, true).await.unwrap();
    assert_eq!(seen(&w.cloud, &w.old).0, InstanceState::Stopped);
    // One stuck stops whatever the time, until forced.
    let stuck = w
        .cloud
        .add_instance(InstanceSpec::new(&w.subnet_c, "stuck"));
    w.cloud.stick_when_stopped(&stuck);
    w.cloud.stop_instance(&stuck, false).await.unwrap();
    w.cloud.pass_time(minutes(60));
    w.cloud.instance(&stuck).await.unwrap();
    assert_eq!(seen(&w.cloud, &stuck).0, InstanceState::Stopping);
    w.cloud.stop_instance(&stuck, true).await.unwrap();
    assert_eq!(seen(&w.cloud, &stuck).0, InstanceState::Stopped);
}

#[tokio::test]
async fn stop_and_attribute_changes_follow_ec2() {
    let w = small();
    w.cloud.stop_instance(&w.old, false).await.unwrap();
    assert_eq!(
        w.cloud.peek_instance(&w.old).unwrap().state,
        InstanceState::Stopped
    );
    // Stopping a stopped instance is fine; an unknown one is not.
    w.cloud.stop_instance(&w.old, false).await.unwrap();
    let e = w
        .cloud
        .stop_instance("i-0000000000000nope", false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
    let gone = w
        .cloud
        .add_instance(InstanceSpec::new(&w.subnet_c, "x").state(InstanceState::Terminated));
    let e = w.cloud.stop_instance(&gone, false).await.unwrap_err();
    assert_eq!(e.code(), Some("IncorrectInstanceState"));

    w.cloud.disable_source_dest_check(&w.old).await.unwrap();
    assert_eq!(
        w.cloud.peek_instance(&w.old).unwrap().source_dest_check,
        Some(false)
    );
    let e = w
        .cloud
        .disable_source_dest_check("i-0000000000000nope")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
}
