//! The stamp lifecycle end to end: scheduled AMIs, their snapshots' tags,
//! retention, and the failover that launches from them; the real SDK adapter
//! against a moto server, on the world of the seed article.

use crate::common;

use std::time::Duration;

use aws_sdk_ec2::Client;
use common::*;
use ec2_failover::cloud::faults::Fault;
use ec2_failover::{App, FailoverError, Outcome, StepStatus};

/// Ids of the AMIs tagged as created by ec2-failover, sorted.
async fn tool_images(ec2: &Client) -> Vec<String> {
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(by("tag:ec2-failover:created-by", "ec2-failover"))
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = out
        .images()
        .iter()
        .map(|i| i.image_id().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn snapshot_tags(ec2: &Client, id: &str) -> Option<Vec<(String, String)>> {
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(by("snapshot-id", id))
        .send()
        .await
        .unwrap();
    out.snapshots().first().map(|s| {
        let mut tags: Vec<(String, String)> = s
            .tags()
            .iter()
            .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
            .collect();
        tags.sort();
        tags
    })
}

fn image_tag(i: &aws_sdk_ec2::types::Image, key: &str) -> Option<String> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value().map(str::to_owned))
}

/// EC2 creation dates have one-second resolution: keep "newest" unambiguous.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

#[tokio::test]
async fn scheduled_snapshot_takes_a_tagged_ami_once_and_tags_its_snapshots() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));

    let report = handle(
        &app,
        &sample("scheduled-snapshot.json"),
        &invocation("req-1"),
    )
    .await
    .expect("snapshot succeeds");
    assert_eq!(report.outcome, Outcome::SnapshotTaken, "{report:#?}");
    assert_eq!(report.incident, "schedule-20261121T1800Z");
    assert_eq!(
        report.step("create_image").map(|s| s.status),
        Some(StepStatus::Done)
    );
    let ami = report.image.clone().expect("the new AMI");
    assert!(report.image_created.is_some(), "{report:#?}");

    let i = own_image(&ec2, &ami).await.expect("the AMI is registered");
    assert_eq!(i.name(), Some("sophos-20261121T1800Z"));
    assert_eq!(image_tag(&i, "Name").as_deref(), Some("sophos"));
    assert_eq!(
        image_tag(&i, "ec2-failover:created-by").as_deref(),
        Some("ec2-failover")
    );
    assert_eq!(
        image_tag(&i, "ec2-failover:source-instance"),
        Some(w.sophos.clone())
    );
    let snaps = snapshot_ids(&i);
    assert!(!snaps.is_empty(), "the AMI has EBS snapshots");
    for s in &snaps {
        let tags = snapshot_tags(&ec2, s).await.expect("snapshot exists");
        for (k, v) in [
            ("Name", "sophos"),
            ("ec2-failover:created-by", "ec2-failover"),
            ("ec2-failover:image", ami.as_str()),
            ("ec2-failover:source-instance", w.sophos.as_str()),
        ] {
            assert!(
                tags.contains(&(k.to_owned(), v.to_owned())),
                "{s} lacks {k}={v}: {tags:?}"
            );
        }
    }

    // The same schedule event again (EventBridge delivers at least once):
    // no second AMI, and no call that changes anything.
    let cloud = faulty(&moto);
    let again = App {
        cloud: cloud.clone(),
        settings: app.settings.clone(),
    };
    let report = handle(
        &again,
        &sample("scheduled-snapshot.json"),
        &invocation("req-2"),
    )
    .await
    .expect("redelivery succeeds");
    assert_eq!(report.outcome, Outcome::SnapshotTaken, "{report:#?}");
    assert_eq!(report.image.as_deref(), Some(ami.as_str()));
    assert_eq!(
        report.step("create_image").map(|s| s.status),
        Some(StepStatus::AlreadyDone)
    );
    assert_eq!(tool_images(&ec2).await, vec![ami.clone()]);
    let mutations: Vec<_> = cloud.calls().into_iter().filter(|c| c.mutating).collect();
    assert!(mutations.is_empty(), "{mutations:?}");
}

#[tokio::test]
async fn manual_snapshot_repairs_untagged_snapshots_of_tool_amis() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));

    // An AMI of this tool whose snapshots were never tagged (the invocation
    // died right after CreateImage).
    let cloud = faulty(&moto).with(Fault::DieAtMutation {
        k: 2,
        after_effect: false,
    });
    let dying = App {
        cloud: cloud.clone(),
        settings: app.settings.clone(),
    };
    let err = handle(
        &dying,
        &sample("manual-snapshot.json"),
        &invocation("req-1"),
    )
    .await
    .expect_err("dies at CreateTags");
    assert!(err.retryable(), "{err}");
    let [first] = tool_images(&ec2).await.try_into().expect("one tool AMI");
    let untagged = snapshot_ids(&own_image(&ec2, &first).await.unwrap());
    for s in &untagged {
        let tags = snapshot_tags(&ec2, s).await.unwrap();
        assert!(!tags.iter().any(|(k, _)| k == "ec2-failover:created-by"));
    }

    tick().await;
    let report = handle(&app, &sample("manual-snapshot.json"), &invocation("req-2"))
        .await
        .expect("the next run succeeds");
    assert_eq!(report.outcome, Outcome::SnapshotTaken, "{report:#?}");
    assert_eq!(
        report
            .step(&format!("tag_snapshots {first}"))
            .map(|s| s.status),
        Some(StepStatus::Done),
        "{report:#?}"
    );
    for s in &untagged {
        let tags = snapshot_tags(&ec2, s).await.unwrap();
        assert!(
            tags.contains(&("ec2-failover:image".to_owned(), first.clone())),
            "{tags:?}"
        );
    }
}

#[tokio::test]
async fn runs_prune_to_the_retention_sparing_foreign_and_in_use_amis() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[("AMI_RETENTION", "2")]));
    let foreign: Vec<(String, Vec<String>)> = {
        let mut v = Vec::new();
        let out = ec2.describe_images().owners("self").send().await.unwrap();
        for i in out.images() {
            v.push((i.image_id().unwrap().to_owned(), snapshot_ids(i)));
        }
        v
    };
    assert!(foreign.iter().any(|(id, _)| *id == w.new_ami));

    tick().await;
    let first = handle(
        &app,
        &scheduled_at("2026-11-18T18:00:00Z"),
        &invocation("s1"),
    )
    .await
    .expect("first snapshot")
    .image
    .expect("first AMI");

    // The failover launches from the newest available AMI: the one just taken.
    let report = handle(&app, &sample("sns-alarm.json"), &invocation("f1"))
        .await
        .expect("failover succeeds");
    assert_eq!(report.outcome, Outcome::FailedOver, "{report:#?}");
    assert_eq!(report.image.as_deref(), Some(first.as_str()));
    assert!(report.image_created.is_some(), "{report:#?}");
    let launch = report.step("launch_replacement").expect("launch step");
    assert!(
        launch.detail.contains(&first) && launch.detail.contains("min old"),
        "{}",
        launch.detail
    );
    assert!(report.reason.contains(&first), "{}", report.reason);
    let replacement = report.new_instance.clone().expect("replacement");
    assert_eq!(
        describe(&ec2, &replacement).await.image_id(),
        Some(first.as_str())
    );

    // Three more scheduled runs, from the replacement now.
    let mut taken = vec![first.clone()];
    let mut last = None;
    for time in [
        "2026-11-19T18:00:00Z",
        "2026-11-20T18:00:00Z",
        "2026-11-21T18:00:00Z",
    ] {
        tick().await;
        let report = handle(&app, &scheduled_at(time), &invocation(time))
            .await
            .expect("snapshot succeeds");
        assert_eq!(report.outcome, Outcome::SnapshotTaken, "{report:#?}");
        taken.push(report.image.clone().expect("an AMI"));
        last = Some(report);
    }
    let last = last.expect("ran");
    let i = own_image(&ec2, &taken[3]).await.expect("newest exists");
    assert_eq!(
        image_tag(&i, "ec2-failover:source-instance"),
        Some(replacement.clone())
    );

    // Kept: the two newest, and the one the replacement runs from.
    let mut expected = vec![first.clone(), taken[2].clone(), taken[3].clone()];
    expected.sort();
    assert_eq!(tool_images(&ec2).await, expected);
    assert_eq!(
        last.step(&format!("prune {first}")).map(|s| s.status),
        Some(StepStatus::Skipped),
        "{last:#?}"
    );
    // The pruned one is gone with its snapshots.
    assert!(own_image(&ec2, &taken[1]).await.is_none());
    // Foreign AMIs (not created by this tool, even those tagged Name=sophos)
    // and their snapshots are untouched.
    for (id, snaps) in &foreign {
        assert!(own_image(&ec2, id).await.is_some(), "{id} was removed");
        for s in snaps {
            assert!(snapshot_tags(&ec2, s).await.is_some(), "{s} was deleted");
        }
    }
}

#[tokio::test]
async fn a_crash_between_deregister_and_delete_leaves_no_orphan_snapshot() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[("AMI_RETENTION", "1")]));

    let first = handle(
        &app,
        &scheduled_at("2026-11-20T18:00:00Z"),
        &invocation("s1"),
    )
    .await
    .expect("first snapshot")
    .image
    .expect("first AMI");
    let first_snaps = snapshot_ids(&own_image(&ec2, &first).await.unwrap());
    assert!(!first_snaps.is_empty());

    // Mutations of the second run: CreateImage, CreateTags, DeregisterImage
    // (carried out, answer lost), then nothing more.
    tick().await;
    let cloud = faulty(&moto).with(Fault::DieAtMutation {
        k: 3,
        after_effect: true,
    });
    let dying = App {
        cloud: cloud.clone(),
        settings: app.settings.clone(),
    };
    let event = scheduled_at("2026-11-21T18:00:00Z");
    handle(&dying, &event, &invocation("s2"))
        .await
        .expect_err("dies at DeregisterImage");
    assert!(own_image(&ec2, &first).await.is_none(), "deregistered");
    for s in &first_snaps {
        assert!(snapshot_tags(&ec2, s).await.is_some(), "{s} left behind");
    }
    // Someone tags a backup of theirs as one of those orphans: its
    // description (EC2's, written once) says CreateImage never made it.
    let backup = tagged_backup(&ec2, &first).await;

    // The retry of the same event resumes: no new AMI, the orphans go.
    let report = handle(&app, &event, &invocation("s2"))
        .await
        .expect("retry succeeds");
    assert_eq!(
        report.step("create_image").map(|s| s.status),
        Some(StepStatus::AlreadyDone)
    );
    for s in &first_snaps {
        assert_eq!(
            report.step(&format!("orphan {s}")).map(|r| r.status),
            Some(StepStatus::Done),
            "{report:#?}"
        );
        assert!(snapshot_tags(&ec2, s).await.is_none(), "{s} still there");
    }
    assert_eq!(tool_images(&ec2).await.len(), 1);
    assert!(
        snapshot_tags(&ec2, &backup).await.is_some(),
        "the backup was deleted"
    );
    let left = report.step(&format!("orphan {backup}"));
    assert_eq!(
        left.map(|r| r.status),
        Some(StepStatus::Skipped),
        "{report:#?}"
    );
}

/// A snapshot of a new volume, described as a backup and tagged as the
/// tool tags the snapshots of AMI `image`.
async fn tagged_backup(ec2: &Client, image: &str) -> String {
    let volume = ec2
        .create_volume()
        .availability_zone(format!("{REGION}a"))
        .size(8)
        .send()
        .await
        .unwrap();
    let snapshot = ec2
        .create_snapshot()
        .volume_id(volume.volume_id().unwrap())
        .description("nightly backup of the accounts database")
        .send()
        .await
        .unwrap();
    let id = snapshot.snapshot_id().unwrap().to_owned();
    tag(ec2, &id, "Name", "sophos").await;
    tag(ec2, &id, "ec2-failover:created-by", "ec2-failover").await;
    tag(ec2, &id, "ec2-failover:image", image).await;
    id
}

#[tokio::test]
async fn without_any_usable_ami_the_failover_changes_nothing() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    for ami in [&w.old_ami, &w.new_ami] {
        ec2.deregister_image().image_id(ami).send().await.unwrap();
    }
    let app = app(&moto, settings(&w, &[]));
    let before = snapshot(&ec2).await;

    let err = handle(&app, &sample("sns-alarm.json"), &invocation("req-1"))
        .await
        .expect_err("no AMI to launch from");
    assert!(matches!(err, FailoverError::Missing { .. }), "{err:?}");
    assert_eq!(err.error_type(), "Permanent.ResourceMissing");
    let message = err.to_string();
    assert!(
        message.contains("AMI") && message.contains("Name=sophos"),
        "{message}"
    );
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(snapshot(&ec2).await, before, "nothing was stopped or moved");
}

#[tokio::test]
async fn dry_run_plans_and_no_running_appliance_refuses_without_changing_anything() {
    let moto = Moto::start();
    let ec2 = moto.ec2();
    let w = build_world(&ec2).await;
    let app = app(&moto, settings(&w, &[]));
    let older = handle(
        &app,
        &scheduled_at("2026-11-20T18:00:00Z"),
        &invocation("s1"),
    )
    .await
    .expect("snapshot")
    .image
    .expect("an AMI");
    tick().await;
    handle(
        &app,
        &scheduled_at("2026-11-21T18:00:00Z"),
        &invocation("s2"),
    )
    .await
    .expect("snapshot");
    let before = tool_images(&ec2).await;

    // DRY_RUN with a smaller retention: says what it would do, does nothing.
    let cloud = faulty(&moto);
    let planner = App {
        cloud: cloud.clone(),
        settings: settings(&w, &[("DRY_RUN", "true"), ("AMI_RETENTION", "1")]),
    };
    let report = handle(
        &planner,
        &scheduled_at("2026-11-22T18:00:00Z"),
        &invocation("s3"),
    )
    .await
    .expect("dry run succeeds");
    assert_eq!(report.outcome, Outcome::Planned, "{report:#?}");
    assert_eq!(
        report.step("create_image").map(|s| s.status),
        Some(StepStatus::Planned)
    );
    assert_eq!(
        report.step(&format!("prune {older}")).map(|s| s.status),
        Some(StepStatus::Planned),
        "{report:#?}"
    );
    assert!(
        cloud.calls().iter().all(|c| !c.mutating),
        "{:?}",
        cloud.calls()
    );
    assert_eq!(tool_images(&ec2).await, before);

    // No running appliance: nothing to take an AMI of, and nothing is pruned.
    ec2.stop_instances()
        .instance_ids(&w.sophos)
        .send()
        .await
        .unwrap();
    let err = handle(&app, &sample("manual-snapshot.json"), &invocation("m1"))
        .await
        .expect_err("no running instance");
    assert_eq!(err.error_type(), "Permanent.ResourceMissing", "{err}");
    assert!(err.to_string().contains("INSTANCE_NAME"), "{err}");
    assert_eq!(tool_images(&ec2).await, before);
}
