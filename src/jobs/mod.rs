//! The jobs, each look → plan → execute → report on the [`crate::engine`]:
//! [`failover`] moves the appliance, [`snapshot`] takes and prunes its AMIs,
//! [`checker_ranges`] keeps a security group open to Route 53's checkers,
//! [`fence`] stops replaced instances that run again. [`reconcile`] is the one
//! composite: it follows the alarm into a failover, then fences. Otherwise a
//! job never imports another job; what they share is in [`crate::lookup`].

pub mod checker_ranges;
pub mod failover;
pub mod fence;
pub mod reconcile;
pub mod snapshot;
