//! Where notices go and what was already told.
//!
//! [`Announcer`]: mail through the notification topic (SNS Publish) and
//! events on an EventBridge bus (PutEvents). [`ToldMemory`]: the last
//! fingerprint told per group and channel, kept in the lease table (a row
//! `told#<group>` beside the group's lease), so every invocation, on any
//! process, knows what the group's operators were already told.

use std::collections::BTreeMap;
use std::fmt::Debug;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::CloudError;

/// What every event of this function says it comes from.
pub const EVENT_SOURCE: &str = "ec2-failover";

/// One EventBridge event: its detail-type and its detail (a JSON object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEvent {
    pub detail_type: String,
    pub detail: String,
}

/// Mail and events. Object-safe, like [`super::lease::LeaseTable`].
pub trait Announcer: Send + Sync + Debug {
    /// Publishes one message to the notification topic.
    fn mail<'a>(&'a self, subject: &'a str, body: &'a str)
    -> BoxFuture<'a, Result<(), CloudError>>;

    /// Puts `events` on the bus, source [`EVENT_SOURCE`]; an entry EventBridge
    /// refuses is an error.
    fn events<'a>(&'a self, events: &'a [BusEvent]) -> BoxFuture<'a, Result<(), CloudError>>;

    /// Whether mail has somewhere to go (a topic is configured).
    fn mails(&self) -> bool;

    /// Whether events have somewhere to go (a bus is configured).
    fn sends_events(&self) -> bool;
}

/// Per channel (`failover`, `fence`, ...): the fingerprint last told, and when.
pub type Told = BTreeMap<String, (String, DateTime<Utc>)>;

/// What a group's operators were told, by channel.
pub trait ToldMemory: Send + Sync + Debug {
    fn told<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Told, CloudError>>;

    /// Replaces the group's record with `told`.
    fn remember<'a>(
        &'a self,
        group: &'a str,
        told: &'a Told,
    ) -> BoxFuture<'a, Result<(), CloudError>>;
}
