//! Telling people, once: a job's notices ([`crate::notice`]) that are news
//! for the group go out as one mail to the notification topic (the most
//! important notice's subject, the others listed in its body) and one
//! EventBridge event each; then the memory (the lease table's
//! `told#<group>` row) keeps each channel's fingerprint.
//!
//! A notice is news when its channel last told another fingerprint, or the
//! same one more than [`REMIND_AFTER`] ago: a failure that persists is told
//! again at most once a day, a daily preflight's failing item daily. Telling
//! never fails the job: a notice that could not be sent is a failed `notify`
//! step in the report (and a warning in the log), and, not remembered, it is
//! tried again by the next run that has it. Without a lease table nothing is
//! remembered and every run tells what it has.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};

use crate::cloud::CloudError;
use crate::cloud::notices::{Announcer, BusEvent, Told, ToldMemory};
use crate::notice::Notice;
use crate::report::{StepLog, StepRecord, StepStatus};
use crate::step::Step;

/// How long the same news stays told.
pub const REMIND_AFTER: TimeDelta = TimeDelta::hours(23);

/// Where notices go, and what was told.
#[derive(Debug, Clone)]
pub struct Notifier {
    out: Arc<dyn Announcer>,
    memory: Option<Arc<dyn ToldMemory>>,
}

impl Notifier {
    pub fn new(out: Arc<dyn Announcer>, memory: Option<Arc<dyn ToldMemory>>) -> Self {
        Self { out, memory }
    }

    /// Tells `group`'s news among `notices`: the report's `notify` step, or
    /// `None` when there was nothing to tell (no AWS call is made).
    pub async fn tell(
        &self,
        group: &str,
        notices: &[Notice],
        now: DateTime<Utc>,
    ) -> Option<StepRecord> {
        // A catch-up needs a memory to say it was never told.
        let notices: Vec<&Notice> = notices
            .iter()
            .filter(|n| !n.catch_up || self.memory.is_some())
            .collect();
        if notices.is_empty() {
            return None;
        }
        let t = Instant::now();
        let mut told = self.told(group).await;
        let fresh: Vec<&Notice> = notices
            .iter()
            .copied()
            .filter(|n| news(&told, n, now))
            .collect();
        let (status, detail) = match fresh.first() {
            None => (
                StepStatus::AlreadyDone,
                format!("already told: {}", subjects(notices.into_iter())),
            ),
            Some(headline) => match self.send(headline, &fresh).await {
                Ok(sent) => {
                    for n in &fresh {
                        told.insert(n.kind.channel().to_owned(), (n.fingerprint.clone(), now));
                    }
                    (
                        StepStatus::Done,
                        format!("{sent}{}", self.remember(group, &told).await),
                    )
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notice not sent");
                    (
                        StepStatus::Failed,
                        format!("not told ({e}): {}", subjects(fresh.into_iter())),
                    )
                }
            },
        };
        let mut log = StepLog::new();
        log.record(Step::Notify, status, detail, t);
        log.into_records().pop()
    }

    /// The group's memory; an unreadable one is empty (better told twice).
    async fn told(&self, group: &str) -> Told {
        let Some(memory) = &self.memory else {
            return Told::new();
        };
        memory.told(group).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "what was told is unknown; telling again");
            Told::new()
        })
    }

    /// One mail (the headline, the rest listed) and one event per notice.
    async fn send(&self, headline: &Notice, fresh: &[&Notice]) -> Result<String, CloudError> {
        let mut body = headline.body.clone();
        if fresh.len() > 1 {
            body.push_str("\nAlso:\n");
            for n in &fresh[1..] {
                body.push_str(&format!("  - {}\n", n.subject));
            }
        }
        let events: Vec<BusEvent> = fresh
            .iter()
            .map(|n| BusEvent {
                detail_type: n.kind.detail_type().to_owned(),
                detail: n.detail.to_string(),
            })
            .collect();
        let (mailed, put) = futures::join!(
            self.out.mail(&headline.subject, &body),
            self.out.events(&events)
        );
        mailed?;
        put?;
        let mut sent = Vec::new();
        if self.out.mails() {
            sent.push(format!("mailed {:?}", headline.subject));
        }
        if self.out.sends_events() {
            let kinds: Vec<&str> = events.iter().map(|e| e.detail_type.as_str()).collect();
            sent.push(format!("events {}", kinds.join(", ")));
        }
        Ok(sent.join("; "))
    }

    /// Keeps `told` for the group; the step's detail says when it could not.
    async fn remember(&self, group: &str, told: &Told) -> String {
        let Some(memory) = &self.memory else {
            return String::new();
        };
        match memory.remember(group, told).await {
            Ok(()) => String::new(),
            Err(e) => {
                tracing::warn!(error = %e, "what was told is not remembered");
                format!(" (not remembered: {e}; the next run may tell it again)")
            }
        }
    }
}

/// True when `notice` is not what its channel last told, or was told long
/// ago (a catch-up is never a reminder).
fn news(told: &Told, notice: &Notice, now: DateTime<Utc>) -> bool {
    match told.get(notice.kind.channel()) {
        Some((fingerprint, at)) => {
            *fingerprint != notice.fingerprint || (!notice.catch_up && now - *at > REMIND_AFTER)
        }
        None => true,
    }
}

fn subjects<'a>(notices: impl Iterator<Item = &'a Notice>) -> String {
    notices
        .map(|n| n.subject.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}
