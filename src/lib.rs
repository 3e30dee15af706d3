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
//! [`jobs`] (failover, snapshot, checker-range sync: look → plan → execute) on
//! the [`engine`] (typed changes, one executor, dry run decided there) →
//! [`report`] (what happened, step by step) → [`metrics`] (one EMF line).
//! [`lookup`] holds the looks several jobs share; [`cloud`] is the small trait
//! over the AWS API that everything talks to.

pub mod cloud;
pub mod config;
pub mod engine;
pub mod error;
pub mod event;
pub mod fleet;
pub mod groups;
pub mod handler;
pub mod jobs;
pub mod lookup;
pub mod metrics;
pub mod report;
#[cfg(test)]
pub(crate) mod test_fixtures;

pub use config::Settings;
pub use error::FailoverError;
pub use fleet::{Fleet, Response, handle};
pub use handler::{App, Invocation};
pub use report::{Outcome, Report, StepStatus};
