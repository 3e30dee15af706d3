//! A group's pause, kept in the lease table (a row `pause#<group>` beside the
//! group's lease): every invocation, on any process, reads it before it
//! changes the group, and it ends by itself at `until`.
//!
//! Why the lease table, not a tag on the appliance or an SSM parameter: every
//! job that changes a group already reads and writes this table (no new
//! permission, no new client); the pause outlives a failover, which replaces
//! the instance a tag would sit on; and the pause is written under the
//! group's lease, so when the pause answers, no job is midway through a change.

use std::fmt::Debug;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::CloudError;

/// Hands off a group until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub group: String,
    pub until: DateTime<Utc>,
    pub reason: String,
    /// The request id of the invocation that paused it.
    pub by: String,
}

pub trait PauseBook: Send + Sync + Debug {
    /// The group's pause, expired or not (the caller compares `until`).
    fn pause<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Option<Pause>, CloudError>>;

    /// Sets (or replaces) the group's pause.
    fn set_pause<'a>(&'a self, pause: &'a Pause) -> BoxFuture<'a, Result<(), CloudError>>;

    /// Removes the group's pause; `false` when there was none.
    fn clear_pause<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<bool, CloudError>>;
}
