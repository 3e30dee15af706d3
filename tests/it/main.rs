//! The integration tests, one crate: every area is a module here, so the
//! shared helpers in `common` and the AWS SDK are compiled and linked once
//! instead of once per test file. `tests/log_lines.rs` stays a crate of its
//! own (it captures tracing output, which needs a process to itself).

mod common;

mod aws_rules;
mod az_outage;
mod bastion;
mod dashboard;
mod event_fuzz;
mod failback;
mod failover;
mod group_policy;
mod groups;
mod house;
mod iam_policy;
mod iam_reference;
mod in_process;
mod notifications;
mod one_job_per_group;
mod pause;
mod preflight;
mod provenance;
mod real_ec2;
mod reconcile;
mod resilience;
mod snapshot;
mod standby;
mod standby_binary;
mod template;
