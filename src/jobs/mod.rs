//! The jobs, siblings, each look → plan → execute → report on the
//! [`crate::engine`]: [`failover`] moves the appliance, [`standby`] keeps a
//! second instance ready for it, [`preflight`] proves a failover would work,
//! [`fence`] stops replaced instances that run again, [`snapshot`] takes and
//! prunes its AMIs, [`checker_ranges`] keeps a security group open to Route
//! 53's checkers, and [`reconcile`] follows the alarm's state.
//!
//! A job never imports another job, so each reads on its own and a change to
//! one cannot break another: what several need is below them, in
//! [`crate::lookup`] (looks) and [`crate::replacement`] (the replacement's
//! plan). What runs after what (the fence and the standby's upkeep after a
//! failover, ...) is declared once, in [`chain`], the one module that
//! composes jobs; `src/layers.rs` tests both.

pub mod chain;
pub mod checker_ranges;
pub mod failover;
pub mod fence;
pub mod preflight;
pub mod reconcile;
pub mod snapshot;
pub mod standby;
