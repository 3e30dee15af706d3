//! Notices through the AWS SDK: SNS Publish to the notification topic and
//! EventBridge PutEvents on the bus, both in the function's own region.
//!
//! PutEvents answers 200 even when it refused entries (`FailedEntryCount`):
//! a refused entry is turned into an error here, once, so nothing above
//! believes an event went out that did not.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use futures::future::BoxFuture;

use super::errors::{cloud_error, done};
use crate::cloud::notices::{Announcer, BusEvent, EVENT_SOURCE};
use crate::cloud::{CloudError, Operation};

/// PutEvents takes at most this many entries per call.
const ENTRIES_PER_CALL: usize = 10;

/// The notification topic and the event bus, through the AWS SDK.
#[derive(Clone, Debug)]
pub struct SdkAnnouncer {
    sns: aws_sdk_sns::Client,
    eventbridge: aws_sdk_eventbridge::Client,
    topic_arn: Option<String>,
    event_bus: Option<String>,
}

impl SdkAnnouncer {
    /// `None` for either: nothing goes there.
    pub fn new(
        conf: &aws_config::SdkConfig,
        topic_arn: Option<String>,
        event_bus: Option<String>,
    ) -> Self {
        Self {
            sns: aws_sdk_sns::Client::new(conf),
            eventbridge: aws_sdk_eventbridge::Client::new(conf),
            topic_arn,
            event_bus,
        }
    }

    async fn put(&self, bus: &str, batch: &[BusEvent]) -> Result<(), CloudError> {
        const OP: Operation = Operation::PutEvents;
        let entries = batch.iter().map(|e| {
            PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(EVENT_SOURCE)
                .detail_type(&e.detail_type)
                .detail(&e.detail)
                .build()
        });
        let out = self
            .eventbridge
            .put_events()
            .set_entries(Some(entries.collect()))
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        if out.failed_entry_count() == 0 {
            return Ok(());
        }
        let refused: Vec<String> = out
            .entries()
            .iter()
            .zip(batch)
            .filter_map(|(answer, sent)| {
                answer.error_code().map(|code| {
                    format!(
                        "{} ({code}: {})",
                        sent.detail_type,
                        answer.error_message().unwrap_or("no message")
                    )
                })
            })
            .collect();
        let mut e = CloudError::service(
            OP,
            "FailedEntry",
            format!("EventBridge refused {}", refused.join("; ")),
        );
        // EventBridge's documented entry errors are mostly throttling and
        // internal failures: sending again can help.
        e.retryable = true;
        Err(e)
    }
}

impl Announcer for SdkAnnouncer {
    fn mail<'a>(
        &'a self,
        subject: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move {
            let Some(topic) = &self.topic_arn else {
                return Ok(());
            };
            let answer = self
                .sns
                .publish()
                .topic_arn(topic)
                .subject(subject)
                .message(body)
                .send()
                .await;
            done(Operation::Publish, answer)
        })
    }

    fn events<'a>(&'a self, all: &'a [BusEvent]) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move {
            let Some(bus) = &self.event_bus else {
                return Ok(());
            };
            for batch in all.chunks(ENTRIES_PER_CALL) {
                self.put(bus, batch).await?;
            }
            Ok(())
        })
    }

    fn mails(&self) -> bool {
        self.topic_arn.is_some()
    }

    fn sends_events(&self) -> bool {
        self.event_bus.is_some()
    }
}
