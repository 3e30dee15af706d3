//! The whole function in process: the public front door (`handle`) over the
//! in-memory cloud (`MemoryCloud`, AWS's documented rules), with faults
//! injected by `FaultyCloud`. No Python, no moto, no sleeping: the crash at
//! every mutating call of every job, idempotence, dry runs, the flap guard,
//! capacity fallback and fleet routing, each in a few milliseconds.
//!
//! Assertions look at the world and at the report's outcome, step names and
//! statuses, never at the wording of step details.

mod crash_matrix;
mod eventual_consistency;
mod fleet_routing;
mod idempotence;
mod incidents;
mod launching;
mod like_the_original;
mod notices;
mod one_job_per_group;
mod pause;
mod planned;
mod two_legs;
mod worlds;
