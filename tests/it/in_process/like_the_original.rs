//! Launching like the original: user data, IMDSv2 and CPU credits carried
//! over to the replacement, and what happens when they cannot be read.

use crate::common;

use common::memory_world::*;
use common::sample;
use ec2_failover::cloud::Cloud;
use ec2_failover::cloud::memory::InstanceSpec;
use ec2_failover::{FailoverError, Outcome, Settings};

use super::worlds::*;

/// A second appliance in the seed VPC, deployed the way organisations do:
/// IMDSv2 only, user data, EBS-optimised, unlimited CPU credits, its own EIP.
/// Returns it and the settings that protect it.
fn deployed_appliance(w: &MemWorld) -> (String, Settings) {
    let vpn = w.cloud.add_instance(
        InstanceSpec::new(&w.subnet_a, "vpn2")
            .groups(&[&w.security_group])
            .key("ops")
            .image(&w.base_image)
            .metadata(imdsv2())
            .ebs_optimized(true)
            .user_data(USER_DATA)
            .cpu_credits("unlimited"),
    );
    let ip = w.cloud.add_address(Some(&vpn)).public_ip;
    let settings = seed_settings(
        w,
        &[
            ("INSTANCE_NAME", "vpn2"),
            ("FLOATING_IP", &ip),
            ("ROUTE_CIDRS", ""),
            // The seed's AMIs were made of sophos: the operator vouches.
            ("BASE_AMI_ID", &format!("{},{}", w.old_ami, w.new_ami)),
        ],
    );
    (vpn, settings)
}

#[tokio::test(start_paused = true)]
async fn a_replacement_is_launched_like_the_original() {
    let w = seed_world();
    let (vpn, settings) = deployed_appliance(&w);
    let r = invoke(
        &single(w.cloud.clone(), settings),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    assert_eq!(r.old_instance.as_deref(), Some(vpn.as_str()));
    let new_id = r.new_instance.clone().expect("a replacement");
    let new = w.cloud.peek_instance(&new_id).expect("it exists");
    assert_eq!(new.metadata_options, Some(imdsv2()));
    assert_eq!(new.ebs_optimized, Some(true));
    assert_eq!(
        w.cloud.user_data(&new_id).await.unwrap().as_deref(),
        Some(USER_DATA)
    );
    assert_eq!(
        w.cloud.cpu_credits(&new_id).await.unwrap().as_deref(),
        Some("unlimited")
    );
}

#[tokio::test(start_paused = true)]
async fn an_original_ec2_no_longer_knows_fails_over_without_its_user_data_and_says_so() {
    let w = seed_world();
    let (_, settings) = deployed_appliance(&w);
    let cloud = failing(
        &w,
        "DescribeInstanceAttribute",
        "",
        "InvalidInstanceID.NotFound",
    );
    let r = invoke(
        &single(cloud, settings),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new_id = r.new_instance.clone().expect("a replacement");
    assert_eq!(w.cloud.user_data(&new_id).await.unwrap(), None);
    // What could still be read is still copied.
    let new = w.cloud.peek_instance(&new_id).expect("it exists");
    assert_eq!(new.metadata_options, Some(imdsv2()));
    let launch = step(&r, "launch_replacement")[0];
    assert!(
        launch.detail.contains("user data NOT copied"),
        "{}",
        launch.detail
    );
}

#[tokio::test(start_paused = true)]
async fn a_user_data_read_that_fails_otherwise_stops_before_anything_changes() {
    let w = seed_world();
    let (vpn, settings) = deployed_appliance(&w);
    let before = w.view();
    let cloud = failing(&w, "DescribeInstanceAttribute", "", "UnauthorizedOperation");
    let e = invoke(
        &single(cloud.clone(), settings),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap_err();
    assert!(matches!(e, FailoverError::NotLaunched { .. }), "{e}");
    assert_eq!(e.error_type(), "Permanent.AwsCallFailed");
    assert!(e.to_string().contains(&vpn), "{e}");
    assert_eq!(mutations(&cloud.calls()), Vec::<&str>::new());
    assert_eq!(w.view(), before);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_type_without_cpu_credits_is_launched_without_them() {
    let w = seed_world();
    let (_, settings) = deployed_appliance(&w);
    let mut settings = settings;
    settings.failover.fallback_instance_types = vec!["m5.large".into()];
    let cloud = failing(
        &w,
        "RunInstances",
        "t3.small",
        "InsufficientInstanceCapacity",
    );
    let r = invoke(
        &single(cloud, settings),
        &sample("manual-failover.json"),
        "req-1",
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::FailedOver, "{r:#?}");
    let new_id = r.new_instance.clone().expect("a replacement");
    let new = w.cloud.peek_instance(&new_id).expect("it exists");
    assert_eq!(new.instance_type, "m5.large");
    assert_eq!(new.metadata_options, Some(imdsv2()));
    assert_eq!(
        w.cloud.user_data(&new_id).await.unwrap().as_deref(),
        Some(USER_DATA)
    );
}
