//! The jobs, each look → plan → execute → report on the [`crate::engine`]:
//! [`failover`] moves the appliance, [`snapshot`] takes and prunes its AMIs,
//! [`checker_ranges`] keeps a security group open to Route 53's checkers.
//! A job never imports another job; what they share is in [`crate::lookup`].

pub mod checker_ranges;
pub mod failover;
pub mod snapshot;
