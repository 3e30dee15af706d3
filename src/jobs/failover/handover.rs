//! Whose incident it is ([`plan::hands`]), acted on: an incident moved by
//! hand is handed over, once, and a complete move leaves its mark on the
//! replacement so a later hand move is recognised as one.
//!
//! Neither mark is worth failing a failover for: a hand-over whose tag EC2
//! refuses still stands down (doing nothing is the safe side), and a missing
//! move mark only keeps the incident open, so the next reconcile finishes it
//! (finding every step done) and writes the mark again.

use std::time::Instant;

use chrono::SecondsFormat;

use super::Failover;
use crate::cloud::{Cloud, Instance, TAG_HANDED_OVER, TAG_MOVED_AT, Tag};
use crate::engine::{Change, Decision, PlannedStep, Step};
use crate::error::FailoverError;
use crate::lookup::World;
use crate::replacement::{self as plan, ContinueReason, Hands, Situation};
use crate::report::{Outcome, StepLog, StepStatus};

/// Whether this run acts on its incident.
pub(super) enum Whose {
    Ours,
    /// Stand down, with this outcome and why.
    Not(Outcome, String),
}

impl<C: Cloud> Failover<'_, C> {
    /// Decides (and, for a hand move just found, records) who acts on the
    /// incident.
    pub(super) async fn whose(
        &self,
        world: &World,
        situation: &Situation,
        log: &mut StepLog,
    ) -> Result<Whose, FailoverError> {
        let (settings, incident) = (self.ctx.settings, &self.req.incident);
        let t = Instant::now();
        match plan::hands(world, settings, situation, self.req.finishing) {
            Hands::Ours if self.req.finishing && !resumes_its_own(situation) => {
                let why = format!(
                    "incident {incident} has no replacement of its own left to finish; nothing new is launched for it"
                );
                Ok(Whose::Not(Outcome::Ignored, why))
            }
            Hands::Ours => Ok(Whose::Ours),
            Hands::HandedOver(at) => {
                let why = format!(
                    "incident {incident} was handed to a human at {at} (its floating IP, a route or the DNS record was moved by hand); the function stands down for it until a new incident"
                );
                log.record(Step::HandOver, StepStatus::AlreadyDone, why.clone(), t);
                Ok(Whose::Not(Outcome::Ignored, why))
            }
            Hands::MovedByHand(found) => {
                let why = format!(
                    "moved by hand since incident {incident}'s own move: {}",
                    found.join("; ")
                );
                Ok(self.hand_over(situation, why, log).await)
            }
            Hands::HeldByRunning(found) => {
                let why = format!(
                    "incident {incident}'s move never completed, and what it left is held by a running instance: {} (moved by hand, or the failed instance came back first; it carries the traffic)",
                    found.join("; ")
                );
                Ok(self.hand_over(situation, why, log).await)
            }
        }
    }

    /// Marks the replacement handed over; `found` says what is where.
    async fn hand_over(&self, situation: &Situation, found: String, log: &mut StepLog) -> Whose {
        let why = format!(
            "{found}; the incident is handed to you: nothing is moved back and nothing is stopped until a new incident"
        );
        tracing::warn!(%why, "handed over: standing down");
        if let Situation::Continue { replacement, .. } = situation {
            let step = self.mark(&replacement.id, TAG_HANDED_OVER, Step::HandOver);
            if let Err(e) = self.ctx.exec.in_order(&[step], log).await {
                tracing::warn!(error = %e, "could not mark the hand-over; standing down all the same");
            }
        }
        Whose::Not(self.ctx.exec.outcome(Outcome::HandedOver), why)
    }

    /// After a complete move: the replacement's mark that it is done (`None`
    /// in a dry run, which plans it for the replacement to be).
    pub(super) async fn mark_moved(&self, replacement: Option<&Instance>, log: &mut StepLog) {
        let id = match replacement {
            Some(r) if r.tag(TAG_MOVED_AT).is_some() => return,
            Some(r) => r.id.as_str(),
            None => "(replacement)",
        };
        let step = self.mark(id, TAG_MOVED_AT, Step::MarkMoved);
        if let Err(e) = self.ctx.exec.in_order(&[step], log).await {
            tracing::warn!(error = %e, "could not mark the move complete; the next reconcile finishes the incident and marks it");
        }
    }

    /// CreateTags of one of the replacement's marks, valued now.
    fn mark(&self, instance: &str, key: &str, step: Step) -> PlannedStep {
        let why = match step {
            Step::HandOver => "its move was undone by hand",
            _ => "its incident's move is complete",
        };
        let now = self.ctx.now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let change = Change::MarkInstance {
            instance: instance.to_owned(),
            tag: Tag::new(key, now),
            why,
        };
        PlannedStep::new(step, Decision::Make(change))
    }
}

/// The incident's own replacement exists: there is something to finish.
fn resumes_its_own(situation: &Situation) -> bool {
    matches!(
        situation,
        Situation::Continue {
            why: ContinueReason::SameIncident,
            ..
        }
    )
}
