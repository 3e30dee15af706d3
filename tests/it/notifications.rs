//! Issue 22's done-when for notices: the template's wiring (schedules, the
//! async invoke config's destinations, the topic's subscriptions) rendered as
//! data, and the real binary run against moto through the EC2-like layer,
//! which logs every SNS Publish and EventBridge PutEvents the function makes.
//! A day of the default schedules, whose jobs change nothing, sends nothing
//! to the e-mail subscription; one failover sends one message with a readable
//! subject and one `Failover Completed` event.

use crate::common::template;

use aws_sdk_cloudwatch::types::StateValue;
use serde_json::Value as Json;
use serde_yaml::Value;

use crate::common;
use common::alarmed::{deploy_telling, set_state, sns_event};
use common::ec2_like::{Ec2Like, Exchange, param};

/// What the template wires between the function and the e-mail subscription.
#[derive(Debug)]
struct Wiring {
    /// Each schedule's input and its runs a day, with the defaults.
    schedules: Vec<(String, u64)>,
    /// Lambda sends each successful async invocation's record to the topic.
    on_success_to_topic: bool,
    /// Lambda sends each failed one's (after the retries) to the topic.
    on_failure_to_topic: bool,
    /// The e-mail subscription takes every message (no filter policy).
    email_takes_all: bool,
}

/// `!Ref X`'s X.
fn reference(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    }
}

/// Runs a day of an EventBridge schedule expression.
fn per_day(expression: &str) -> u64 {
    let rate = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a default schedule this test cannot count: {expression}"));
    let (n, unit) = rate.split_once(' ').unwrap();
    let n: u64 = n.parse().unwrap();
    let minutes = match unit.trim_end_matches('s') {
        "minute" => 1,
        "hour" => 60,
        "day" => 1440,
        other => panic!("unit {other}"),
    };
    1440 / (n * minutes)
}

fn wiring() -> Wiring {
    let t = template();
    let default_of = |p: &str| {
        t["Parameters"][p]["Default"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let resources = t["Resources"].as_mapping().unwrap();
    let of_type = |ty: &'static str| {
        resources
            .values()
            .filter(move |r| r["Type"].as_str() == Some(ty))
    };
    let schedules = of_type("AWS::Events::Rule")
        .filter_map(|r| {
            let expression = &r["Properties"]["ScheduleExpression"];
            let expression = reference(expression)
                .map_or_else(|| expression.as_str().unwrap_or("").to_owned(), default_of);
            // An empty default is no schedule (the rule's condition is false).
            (!expression.is_empty()).then(|| {
                let input = r["Properties"]["Targets"][0]["Input"].as_str().unwrap();
                (input.to_owned(), per_day(&expression))
            })
        })
        .collect();
    let destinations =
        &t["Resources"]["FailoverFunction"]["Properties"]["EventInvokeConfig"]["DestinationConfig"];
    let to_topic =
        |on: &str| reference(&destinations[on]["Destination"]) == Some("NotificationTopic");
    let email_takes_all = of_type("AWS::SNS::Subscription").any(|s| {
        let p = &s["Properties"];
        reference(&p["TopicArn"]) == Some("NotificationTopic")
            && p["Protocol"].as_str() == Some("email")
            && p["FilterPolicy"].is_null()
    });
    Wiring {
        schedules,
        on_success_to_topic: to_topic("OnSuccess"),
        on_failure_to_topic: to_topic("OnFailure"),
        email_takes_all,
    }
}

/// The function's Publish calls through the layer, from `since` on: (subject, body).
fn mails(layer: &Ec2Like, since: usize) -> Vec<(String, String)> {
    sent(layer, since, "Publish")
        .map(|x| {
            let p = |n| param(&x.params, n).unwrap_or_default().to_owned();
            (p("Subject"), p("Message"))
        })
        .collect()
}

/// The detail-types of the function's PutEvents entries from `since` on.
fn events(layer: &Ec2Like, since: usize) -> Vec<(String, Json)> {
    sent(layer, since, "PutEvents")
        .flat_map(|x| {
            let body: Json = serde_json::from_str(param(&x.params, "json").unwrap()).unwrap();
            let entries = body["Entries"].as_array().cloned().unwrap_or_default();
            entries.into_iter().map(|e| {
                assert_eq!(e["Source"], "ec2-failover", "{e}");
                let detail = serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap();
                (e["DetailType"].as_str().unwrap().to_owned(), detail)
            })
        })
        .collect()
}

fn sent(layer: &Ec2Like, since: usize, action: &str) -> impl Iterator<Item = Exchange> {
    let action = action.to_owned();
    layer
        .log()
        .into_iter()
        .skip(since)
        .filter(move |x| x.action == action && x.result == "OK")
}

/// What reaches the e-mail subscription for one async invocation: what the
/// function published, and Lambda's destination record.
fn to_email(w: &Wiring, published: usize, succeeded: bool) -> usize {
    if !w.email_takes_all {
        return 0;
    }
    let record = if succeeded {
        w.on_success_to_topic
    } else {
        w.on_failure_to_topic
    };
    published + usize::from(record)
}

#[tokio::test]
async fn a_quiet_day_mails_no_one_and_a_failover_mails_once_with_a_readable_subject() {
    let w = wiring();
    assert!(w.email_takes_all && w.on_failure_to_topic, "{w:?}");
    assert!(
        w.schedules
            .iter()
            .any(|(input, n)| input.contains("reconcile") && *n == 1440),
        "the reconcile runs every minute: {w:?}"
    );
    let d = deploy_telling(Ec2Like::builder().client_tokens(), &[]).await;
    set_state(&d.moto, StateValue::Ok).await;

    // Each schedule's job, twice (as every run of the day would): the mail
    // of a day is its runs times what one run sends.
    let mut day = 0;
    for (input, runs) in &w.schedules {
        for _ in 0..2 {
            let since = d.layer.log().len();
            let answer = d.invoke(input).await;
            let sent = to_email(&w, mails(&d.layer, since).len(), answer.ok);
            assert_eq!(
                sent,
                0,
                "{input}: {:?} {}",
                mails(&d.layer, since),
                answer.body
            );
            day += runs * sent as u64;
        }
    }
    assert_eq!(day, 0);
    assert!(events(&d.layer, 0).is_empty(), "{:?}", events(&d.layer, 0));

    set_state(&d.moto, StateValue::Alarm).await;
    let event = sns_event(&d.moto).await;
    let since = d.layer.log().len();
    let failover = d.invoke(&event).await;
    assert_eq!(
        failover.json()["outcome"],
        "failed_over",
        "{}",
        failover.body
    );
    let mail = mails(&d.layer, since);
    assert_eq!(to_email(&w, mail.len(), failover.ok), 1, "{mail:#?}");
    let (subject, body) = &mail[0];
    let report = failover.json();
    let expected = format!(
        "sophos: failed over from {} to {} in ",
        report["old_availability_zone"].as_str().unwrap(),
        report["availability_zone"].as_str().unwrap()
    );
    assert!(
        subject.starts_with(&expected) && subject.ends_with(" s"),
        "{subject}"
    );
    assert!(body.contains("What to do:"), "{body}");
    let told = events(&d.layer, since);
    let completed: Vec<_> = told
        .iter()
        .filter(|(t, _)| t == "Failover Completed")
        .collect();
    assert_eq!(completed.len(), 1, "{told:#?}");
    assert_eq!(completed[0].1["new_instance"], report["new_instance"]);
    assert_eq!(completed[0].1["group"], "sophos");

    // The duplicate delivery and the reconciles that follow tell nothing more.
    let since = d.layer.log().len();
    assert!(d.invoke(&event).await.ok);
    d.reconcile().await;
    d.reconcile().await;
    assert_eq!(mails(&d.layer, since), vec![]);
    assert_eq!(events(&d.layer, since), vec![]);
}
