//! [`LeaseTable`] in memory, with DynamoDB's conditional-write rules (tests only).
//!
//! Besides the table it keeps a history of every lease taken and given back,
//! so a test can show that no two holders of one group overlapped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::cloud::lease::{Claim, Lease, LeaseTable};
use crate::cloud::notices::{Told, ToldMemory};
use crate::cloud::pause::{Pause, PauseBook};
use crate::cloud::{CloudError, Operation};

/// What happened to a lease, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEvent {
    Taken { lease: Lease, at: DateTime<Utc> },
    Released { lease: Lease, at: DateTime<Utc> },
}

#[derive(Debug, Default)]
struct Table {
    rows: BTreeMap<String, Lease>,
    history: Vec<LeaseEvent>,
    /// Fail the next claims with this error code (e.g. throttling).
    failing: Vec<String>,
    /// What each group's operators were told (the `told#<group>` rows).
    told: BTreeMap<String, Told>,
    /// The groups' pauses (the `pause#<group>` rows).
    pauses: BTreeMap<String, Pause>,
}

/// The lease table in memory. Clones share one table.
#[derive(Debug, Clone, Default)]
pub struct MemoryLeases {
    table: Arc<Mutex<Table>>,
}

impl MemoryLeases {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a lease in the table as if its holder had taken it (and died).
    pub fn plant(&self, lease: Lease) {
        self.lock().rows.insert(lease.group.clone(), lease);
    }

    /// The lease the table holds for `group`.
    pub fn row(&self, group: &str) -> Option<Lease> {
        self.lock().rows.get(group).cloned()
    }

    pub fn history(&self) -> Vec<LeaseEvent> {
        self.lock().history.clone()
    }

    /// The next claim fails with AWS error `code`.
    pub fn fail_next_claim(&self, code: &str) {
        self.lock().failing.push(code.to_owned());
    }
}

impl LeaseTable for MemoryLeases {
    fn claim<'a>(
        &'a self,
        lease: &'a Lease,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Claim, CloudError>> {
        Box::pin(async move {
            let mut table = self.lock();
            if let Some(code) = table.failing.pop() {
                return Err(CloudError::service(Operation::PutItem, &code, "injected"));
            }
            if let Some(held) = table.rows.get(&lease.group).filter(|h| h.until >= now) {
                return Ok(Claim::Held(held.clone()));
            }
            table.rows.insert(lease.group.clone(), lease.clone());
            table.history.push(LeaseEvent::Taken {
                lease: lease.clone(),
                at: Utc::now(),
            });
            Ok(Claim::Taken)
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, CloudError>> {
        Box::pin(async move {
            let mut table = self.lock();
            if table
                .rows
                .get(&lease.group)
                .is_none_or(|h| h.holder != lease.holder)
            {
                return Ok(false);
            }
            table.rows.remove(&lease.group);
            table.history.push(LeaseEvent::Released {
                lease: lease.clone(),
                at: Utc::now(),
            });
            Ok(true)
        })
    }
}

impl ToldMemory for MemoryLeases {
    fn told<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Told, CloudError>> {
        Box::pin(async move { Ok(self.lock().told.get(group).cloned().unwrap_or_default()) })
    }

    fn remember<'a>(
        &'a self,
        group: &'a str,
        told: &'a Told,
    ) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move {
            self.lock().told.insert(group.to_owned(), told.clone());
            Ok(())
        })
    }
}

impl PauseBook for MemoryLeases {
    fn pause<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Option<Pause>, CloudError>> {
        Box::pin(async move { Ok(self.lock().pauses.get(group).cloned()) })
    }

    fn set_pause<'a>(&'a self, pause: &'a Pause) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move {
            self.lock()
                .pauses
                .insert(pause.group.clone(), pause.clone());
            Ok(())
        })
    }

    fn clear_pause<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<bool, CloudError>> {
        Box::pin(async move { Ok(self.lock().pauses.remove(group).is_some()) })
    }
}
