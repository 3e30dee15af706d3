//! A plan: what a job decided, step by step, before anything is changed.

use super::{Change, Step};

/// What one step found it has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The world is already as wanted; say how.
    AlreadyDone(String),
    /// Not ours to change; say why.
    LeaveAlone(String),
    /// A decision that needed no call (a summary of what is kept, ...).
    Noted(String),
    Make(Change),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    pub step: Step,
    /// The one resource of several this step is about (`rtb-1 10.0.0.0/8`).
    pub subject: Option<String>,
    pub decision: Decision,
}

impl PlannedStep {
    pub fn new(step: Step, decision: Decision) -> Self {
        Self {
            step,
            subject: None,
            decision,
        }
    }

    pub fn on(step: Step, subject: impl Into<String>, decision: Decision) -> Self {
        Self {
            step,
            subject: Some(subject.into()),
            decision,
        }
    }
}
