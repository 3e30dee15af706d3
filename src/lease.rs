//! One job at a time per group, any number of groups at once.
//!
//! A reserved concurrency of 1 kept two jobs off one appliance, and made the
//! whole deployment one slot: in an AZ outage every group's alarm queued behind
//! the others'. Instead, a job that may change its group first takes the
//! group's lease in the lease table (`LOCK_TABLE`), waits for it while another
//! invocation holds it, and gives it back when done. Looks that change nothing
//! (plan, preflight, a dry run) take no lease and never wait.
//!
//! A lease lasts until its holder's Lambda deadline plus [`MARGIN_DELTA`]: Lambda has
//! ended the holder by then, so a holder that crashed blocks its group at most
//! until its own timeout, and the next invocation takes the expired lease over.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::cloud::lease::{Claim, Lease, LeaseTable};
use crate::error::FailoverError;
use crate::step::Step;

/// How long past its holder's deadline a lease lasts: the holder's clock and
/// the taker's may differ by a little, and its last call may still land.
const MARGIN_DELTA: TimeDelta = TimeDelta::seconds(30);
/// A lease taken with no deadline known (a local run) lasts as long as
/// Lambda's longest invocation.
const NO_DEADLINE_HOLD: Duration = Duration::from_secs(900);
/// Without `LOCK_WAIT_SECONDS`, an invocation waits until this long before its
/// deadline, so the job still has time once it holds the group (a duplicate
/// alarm then finds its work done within seconds).
const LEFT_FOR_THE_JOB: Duration = Duration::from_secs(60);
/// The wait with neither a deadline nor `LOCK_WAIT_SECONDS`.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// Between two tries: this, plus up to as much again at random, so waiters
/// that started together do not ask together.
const POLL: Duration = Duration::from_millis(500);

/// The deployment's lease table and how long to wait for a held group.
#[derive(Debug, Clone)]
pub struct Locks {
    table: Arc<dyn LeaseTable>,
    /// `LOCK_WAIT_SECONDS`; `None`: as long as the deadline allows.
    wait: Option<Duration>,
    /// Tells this process's leases from another's under the same request id.
    nonce: String,
}

/// A group's lease, held until [`Holding::release`].
#[derive(Debug)]
pub struct Holding<'a> {
    locks: &'a Locks,
    lease: Lease,
}

fn random() -> u64 {
    RandomState::new().build_hasher().finish()
}

impl Locks {
    pub fn new(table: Arc<dyn LeaseTable>, wait: Option<Duration>) -> Self {
        Self {
            table,
            wait,
            nonce: format!("{:08x}", random() as u32),
        }
    }

    /// Takes `group`'s lease for `incident`, waiting while another holds it;
    /// `Retryable.GroupBusy` when the wait is over and it is still held.
    pub async fn take(
        &self,
        group: &str,
        incident: &str,
        request_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Holding<'_>, FailoverError> {
        let started = Instant::now();
        let request_id = if request_id.is_empty() {
            "local"
        } else {
            request_id
        };
        let lease = Lease {
            group: group.to_owned(),
            holder: format!("{request_id}#{}", self.nonce),
            incident: incident.to_owned(),
            until: wall_clock(deadline.unwrap_or(started + NO_DEADLINE_HOLD))
                .checked_add_signed(MARGIN_DELTA)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        let wait_until = self.wait_until(deadline, started);
        let mut told = false;
        loop {
            let answer = self.table.claim(&lease, Utc::now()).await;
            let held = match answer.map_err(FailoverError::during(Step::Lease, group))? {
                Claim::Taken => {
                    tracing::info!(until = %rfc3339(lease.until), "took the group's lease");
                    return Ok(Holding { locks: self, lease });
                }
                Claim::Held(other) => Some(other),
                Claim::Freed => None,
            };
            let now = Instant::now();
            if let Some(other) = held.as_ref().filter(|_| now >= wait_until) {
                return Err(busy(other, now - started));
            }
            if let Some(other) = held.as_ref().filter(|_| !told) {
                told = true;
                tracing::info!(holder = other.request_id(), incident = %other.incident,
                    until = %rfc3339(other.until), "the group is held; waiting for it");
            }
            let pause = POLL + Duration::from_millis(random() % POLL.as_millis() as u64);
            tokio::time::sleep(pause.min(wait_until.saturating_duration_since(now))).await;
        }
    }

    /// When to give up waiting: after `LOCK_WAIT_SECONDS`, and in any case
    /// while the job still has [`LEFT_FOR_THE_JOB`] before its deadline.
    fn wait_until(&self, deadline: Option<Instant>, started: Instant) -> Instant {
        let by_deadline = deadline.map(|d| {
            let left = d.saturating_duration_since(started);
            started + left.saturating_sub(LEFT_FOR_THE_JOB)
        });
        match (self.wait, by_deadline) {
            (Some(wait), Some(by_deadline)) => (started + wait).min(by_deadline),
            (Some(wait), None) => started + wait,
            (None, Some(by_deadline)) => by_deadline,
            (None, None) => started + DEFAULT_WAIT,
        }
    }
}

impl Holding<'_> {
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Gives the lease back. A failure is logged, not returned: the job's
    /// outcome stands, and the lease expires by itself.
    pub async fn release(self) {
        match self.locks.table.release(&self.lease).await {
            Ok(true) => tracing::info!("gave the group's lease back"),
            Ok(false) => tracing::warn!(
                until = %rfc3339(self.lease.until),
                "the group's lease had expired and another invocation took it over while this one ran"
            ),
            Err(e) => tracing::warn!(error = %e, until = %rfc3339(self.lease.until),
                "could not give the group's lease back; it expires by itself"),
        }
    }
}

fn busy(other: &Lease, waited: Duration) -> FailoverError {
    FailoverError::GroupBusy {
        group: other.group.clone(),
        holder: other.request_id().to_owned(),
        incident: other.incident.clone(),
        until: rfc3339(other.until),
        waited_s: waited.as_secs(),
    }
}

/// An instant of this process as wall-clock time (what another process can read).
fn wall_clock(at: Instant) -> DateTime<Utc> {
    let now = Instant::now();
    let ahead = at.saturating_duration_since(now);
    let behind = now.saturating_duration_since(at);
    let delta = |d: Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
    Utc::now()
        .checked_add_signed(delta(ahead))
        .and_then(|t| t.checked_sub_signed(delta(behind)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::memory::{LeaseEvent, MemoryLeases};

    fn locks(table: &MemoryLeases, wait: Option<Duration>) -> Locks {
        Locks::new(Arc::new(table.clone()), wait)
    }

    fn dead_holder(until: DateTime<Utc>) -> Lease {
        Lease {
            group: "sophos".into(),
            holder: "req-dead#0000".into(),
            incident: "alarm-1".into(),
            until,
        }
    }

    #[tokio::test]
    async fn a_free_group_is_taken_until_the_deadline_and_given_back() {
        let table = MemoryLeases::default();
        let locks = locks(&table, None);
        let deadline = Instant::now() + Duration::from_secs(600);
        let held = locks
            .take("sophos", "alarm-1", "req-1", Some(deadline))
            .await
            .unwrap();
        let row = table.row("sophos").expect("the lease is in the table");
        assert!(row.holder.starts_with("req-1#"), "{row:?}");
        assert_eq!(row.request_id(), "req-1");
        let expected = Utc::now() + TimeDelta::seconds(630);
        assert!((row.until - expected).num_seconds().abs() <= 2, "{row:?}");
        held.release().await;
        assert_eq!(table.row("sophos"), None);
        assert!(matches!(
            table.history()[..],
            [LeaseEvent::Taken { .. }, LeaseEvent::Released { .. }]
        ));
    }

    #[tokio::test]
    async fn a_held_group_is_waited_for_then_named_busy() {
        let table = MemoryLeases::default();
        table.plant(dead_holder(Utc::now() + TimeDelta::seconds(600)));
        let started = Instant::now();
        let e = locks(&table, Some(Duration::from_secs(2)))
            .take("sophos", "alarm-2", "req-2", None)
            .await
            .unwrap_err();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
            "{waited:?}"
        );
        assert_eq!(e.error_type(), "Retryable.GroupBusy");
        let text = e.to_string();
        assert!(
            text.contains("req-dead") && text.contains("alarm-1"),
            "{text}"
        );
        assert_eq!(
            table.row("sophos").map(|l| l.holder),
            Some("req-dead#0000".into())
        );
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_its_late_release_changes_nothing() {
        let table = MemoryLeases::default();
        let dead = dead_holder(Utc::now() - TimeDelta::seconds(1));
        table.plant(dead.clone());
        let locks = locks(&table, Some(Duration::ZERO));
        let held = locks
            .take("sophos", "alarm-2", "req-2", None)
            .await
            .unwrap();
        assert!(
            !table.release(&dead).await.unwrap(),
            "the old holder no longer holds it"
        );
        assert_eq!(table.row("sophos").as_ref(), Some(held.lease()));
    }

    #[tokio::test]
    async fn a_waiter_takes_the_group_when_its_holder_gives_it_back() {
        let table = MemoryLeases::default();
        let first = locks(&table, None);
        let held = first
            .take("sophos", "alarm-1", "req-1", None)
            .await
            .unwrap();
        let first_holder = held.lease().holder.clone();
        let second = locks(&table, Some(Duration::from_secs(10)));
        let waiter = second.take("sophos", "alarm-1", "req-1", None);
        let release = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            held.release().await;
        };
        let (taken, ()) = tokio::join!(waiter, release);
        let taken = taken.expect("taken once given back");
        assert_ne!(
            taken.lease().holder,
            first_holder,
            "a duplicate under one request id is another holder"
        );
        let history = table.history();
        assert!(
            matches!(
                history[..],
                [
                    LeaseEvent::Taken { .. },
                    LeaseEvent::Released { .. },
                    LeaseEvent::Taken { .. }
                ]
            ),
            "{history:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_table_fails_the_job_before_it_changes_anything() {
        let table = MemoryLeases::default();
        table.fail_next_claim("AccessDeniedException");
        let e = locks(&table, None)
            .take("sophos", "alarm-1", "req-1", None)
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "Permanent.AwsCallFailed");
        assert!(e.to_string().contains("step lease on sophos"), "{e}");
    }

    #[test]
    fn the_wait_ends_in_time_for_the_job() {
        let table = MemoryLeases::default();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(600);
        let by_deadline = locks(&table, None).wait_until(Some(deadline), started);
        assert_eq!(by_deadline, started + Duration::from_secs(540));
        let asked = locks(&table, Some(Duration::from_secs(2))).wait_until(Some(deadline), started);
        assert_eq!(asked, started + Duration::from_secs(2));
        let short = started + Duration::from_secs(30);
        assert_eq!(
            locks(&table, Some(Duration::from_secs(900))).wait_until(Some(short), started),
            started
        );
        assert_eq!(
            locks(&table, None).wait_until(None, started),
            started + DEFAULT_WAIT
        );
    }
}
