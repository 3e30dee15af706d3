//! [`Announcer`] in memory (tests only): keeps every mail and event, and can
//! refuse the next sends as SNS or EventBridge would.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;

use crate::cloud::notices::{Announcer, BusEvent};
use crate::cloud::{CloudError, Operation};

/// One message published to the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Default)]
struct Sent {
    mail: Vec<Mail>,
    events: Vec<BusEvent>,
    /// Refuse the next sends with this error code.
    failing: Vec<String>,
}

/// A topic and a bus in memory. Clones share what was sent.
#[derive(Debug, Clone, Default)]
pub struct MemoryAnnouncer {
    sent: Arc<Mutex<Sent>>,
}

impl MemoryAnnouncer {
    fn lock(&self) -> MutexGuard<'_, Sent> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mail(&self) -> Vec<Mail> {
        self.lock().mail.clone()
    }

    pub fn events(&self) -> Vec<BusEvent> {
        self.lock().events.clone()
    }

    /// The next send (mail or events) fails with AWS error `code`.
    pub fn fail_next(&self, code: &str) {
        self.lock().failing.push(code.to_owned());
    }

    fn refused(&self, op: Operation) -> Result<(), CloudError> {
        match self.lock().failing.pop() {
            Some(code) => Err(CloudError::service(op, &code, "injected")),
            None => Ok(()),
        }
    }
}

impl Announcer for MemoryAnnouncer {
    fn mail<'a>(
        &'a self,
        subject: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move {
            self.refused(Operation::Publish)?;
            self.lock().mail.push(Mail {
                subject: subject.to_owned(),
                body: body.to_owned(),
            });
            Ok(())
        })
    }

    fn events<'a>(&'a self, events: &'a [BusEvent]) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move {
            self.refused(Operation::PutEvents)?;
            self.lock().events.extend_from_slice(events);
            Ok(())
        })
    }

    fn mails(&self) -> bool {
        true
    }

    fn sends_events(&self) -> bool {
        true
    }
}
