//! The lease table (`LOCK_TABLE`): one lease per failover group, so two jobs
//! never change one appliance at once while different groups run side by side.
//!
//! A lease is a row keyed by the group, written only with conditional writes:
//! taken when the group has none or only an expired one, given back only by its
//! holder. It expires at its holder's Lambda deadline plus a margin, by which
//! time Lambda has ended the holder, so a crashed holder blocks its group at
//! most until its own timeout. The production table is DynamoDB
//! ([`super::sdk::SdkLeases`]); tests also use [`super::memory::MemoryLeases`].

use std::fmt::Debug;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::CloudError;

/// Who holds a group, for which incident, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub group: String,
    /// The invocation's request id and a nonce of its process: a duplicate
    /// delivery under the same request id is still another holder.
    pub holder: String,
    pub incident: String,
    pub until: DateTime<Utc>,
}

impl Lease {
    /// The request id part of the holder, as an operator finds it in the logs.
    pub fn request_id(&self) -> &str {
        self.holder
            .rsplit_once('#')
            .map_or(self.holder.as_str(), |(id, _)| id)
    }
}

/// The answer to taking a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Taken,
    /// Someone else holds the group (as the table said right after).
    Held(Lease),
    /// It was held when asked, and free a moment later: ask again.
    Freed,
}

/// The table of leases. Object-safe (boxed futures): the fleet holds one for
/// every group, whatever the cloud implementation is.
pub trait LeaseTable: Send + Sync + Debug {
    /// Takes `lease` when its group has no lease, or one that expired before `now`.
    fn claim<'a>(
        &'a self,
        lease: &'a Lease,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Claim, CloudError>>;

    /// Gives `lease` back; `false` when its holder no longer held it (it
    /// expired and another invocation took the group over).
    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, CloudError>>;
}
