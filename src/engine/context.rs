//! What every job runs with, in one value: the group's settings, the
//! executor (which holds the group's cloud clients and decides dry run), the
//! invocation's clock and, through the executor, its deadline. A job takes a
//! `&Context` instead of each of these, so no job pairs one group's settings
//! with another's clients, and every job and follow-up of an invocation
//! reads the same time.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::Executor;
use crate::cloud::Cloud;
use crate::config::Settings;

#[derive(Debug, Clone, Copy)]
pub struct Context<'a, C> {
    pub settings: &'a Settings,
    pub exec: Executor<'a, C>,
    /// The invocation's time, read once: ages, cooldowns and AMI names agree.
    pub now: DateTime<Utc>,
}

impl<'a, C: Cloud> Context<'a, C> {
    /// A job's context: `dry_run` makes the executor only report its plan;
    /// `deadline` is when the invocation must have returned.
    pub fn new(
        cloud: &'a C,
        settings: &'a Settings,
        (dry_run, deadline): (bool, Option<Instant>),
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            settings,
            exec: Executor::new(cloud, dry_run, deadline),
            now,
        }
    }

    /// The group's cloud clients (the executor's): for looks, which a dry
    /// run makes too.
    pub fn cloud(&self) -> &'a C {
        self.exec.cloud()
    }

    /// When the invocation must have returned: waits and retries stop in time.
    pub fn deadline(&self) -> Option<Instant> {
        self.exec.deadline()
    }
}
