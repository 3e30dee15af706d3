//! ec2-failover keeps a single-instance appliance (VPN gateway, NAT instance,
//! SSH bastion) reachable: when its health check alarms, it stops the failed
//! instance, launches a replacement from the newest tagged AMI in another
//! Availability Zone, moves the floating (Elastic) IP to it and re-points the
//! VPC routes.
//!
//! The crate reads like the pipeline:
//! [`config`] and [`groups`] (environment → validated settings, once) →
//! [`event`] (payload → trigger, before any AWS call) →
//! [`fleet`] (the front door: which group does the trigger concern?) →
//! [`handler`] (which job, if any, does it call for?) →
//! [`jobs`] (failover, standby, preflight, fence, snapshot, checker-range
//! sync, reconcile: look → plan → execute) on the [`engine`] (typed changes,
//! one executor, dry run decided there) → [`report`] (what happened, step by
//! step, each a [`step`]) → [`metrics`] (one EMF line).
//! [`lookup`] holds the looks several jobs share and [`replacement`] the
//! replacement's plan, so no job imports another; [`cloud`] is the small
//! trait over the AWS API that everything talks to. Nothing imports upward
//! (a test in `layers.rs` reads the source to hold it).

pub mod cloud;
pub mod config;
pub mod engine;
pub mod error;
pub mod event;
pub mod fleet;
pub mod groups;
pub mod handler;
pub mod jobs;
#[cfg(test)]
mod layers;
pub mod lease;
pub mod lookup;
pub mod metrics;
pub mod notice;
pub mod notify;
pub mod pause;
pub mod replacement;
pub mod report;
pub mod step;
#[cfg(test)]
pub(crate) mod test_fixtures;

pub use config::Settings;
pub use error::FailoverError;
pub use fleet::{Fleet, Response, handle};
pub use handler::{App, Invocation};
pub use report::{Outcome, Report, StepStatus};
