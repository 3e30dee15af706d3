//! Issue 22's done-when for the pause, through the real binary against moto:
//! pause, then the alarm: nothing changes and the held failover is told once
//! (beside the pause's own mail); resume: the reconcile fails over.

use serde_json::json;

use crate::common;
use common::alarmed::{deploy_telling, sns_event};
use common::ec2_like::{Ec2Like, param};
use common::snapshot;

fn subjects(layer: &Ec2Like) -> Vec<String> {
    layer
        .log()
        .into_iter()
        .filter(|x| x.action == "Publish" && x.result == "OK")
        .map(|x| param(&x.params, "Subject").unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn pause_then_alarm_changes_nothing_and_tells_once_then_resume_lets_the_reconcile_act() {
    let d = deploy_telling(Ec2Like::builder().client_tokens(), &[]).await;
    let ec2 = d.moto.ec2();
    let pause = json!({"action": "pause", "minutes": 30, "reason": "maintenance window"});
    let paused = d.invoke(&pause.to_string()).await;
    assert_eq!(paused.json()["outcome"], "paused", "{}", paused.body);
    let before = snapshot(&ec2).await;

    let event = sns_event(&d.moto).await;
    for _ in 0..2 {
        let held = d.invoke(&event).await;
        assert_eq!(held.json()["outcome"], "planned", "{}", held.body);
        assert_eq!(d.reconcile().await["outcome"], "planned");
    }
    assert_eq!(snapshot(&ec2).await, before, "nothing changed while paused");
    assert_eq!(d.layer.count("RunInstances", "OK"), 0);
    let told = subjects(&d.layer);
    assert_eq!(
        told.len(),
        2,
        "the pause, then the held alarm once: {told:#?}"
    );
    assert!(
        told[1].starts_with("sophos: a failover was held back"),
        "{told:#?}"
    );

    let resumed = d.invoke(&json!({"action": "resume"}).to_string()).await;
    assert_eq!(resumed.json()["outcome"], "resumed", "{}", resumed.body);
    let acted = d.reconcile().await;
    assert_eq!(acted["outcome"], "failed_over", "{acted:#}");
    common::assert_failed_over_once(&ec2, &d.w).await;
}
