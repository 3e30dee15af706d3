//! ec2-failover keeps a single-instance appliance (VPN gateway, NAT instance,
//! SSH bastion) reachable: when its health check alarms, it stops the failed
//! instance, launches a replacement from the newest tagged AMI in another
//! Availability Zone, moves the floating (Elastic) IP to it and re-points the
//! VPC routes.
//!
//! The crate reads like the pipeline:
//! [`config`] (environment → validated settings, once) →
//! [`event`] (payload → trigger, before any AWS call) →
//! [`handler`] (does the trigger call for action?) →
//! [`failover`] (discover, plan, act; each step a reconcile) →
//! [`report`] (what happened, step by step) → [`metrics`] (one EMF line).
//! [`stamp`] takes the AMIs failovers launch from, on a schedule, and prunes old ones.
//! [`cloud`] is the small trait over the EC2 API that the pipeline talks to.
//! [`checker_ranges`] keeps a security group open to Route 53's health checkers.

pub mod checker_ranges;
pub mod cloud;
pub mod config;
pub mod error;
pub mod event;
pub mod failover;
pub mod fleet;
pub mod groups;
pub mod handler;
pub mod metrics;
pub mod report;
pub mod stamp;

pub use config::Settings;
pub use error::FailoverError;
pub use fleet::{Fleet, Response, handle};
pub use handler::{App, Invocation};
pub use report::{Outcome, Report, StepStatus};
