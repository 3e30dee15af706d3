//! The reconcile engine every job runs on: look → plan → execute → report.
//!
//! A job looks at the world (one concurrent round of describes), decides with
//! pure functions what has to change ([`PlannedStep`]s of typed [`Change`]s),
//! and hands the plan to the [`Executor`], which makes the calls, or, in a dry
//! run, only reports them: dry run is decided there and nowhere else. Step
//! names are a [`Step`] enum (in [`crate::step`], below the engine, since the
//! report and the errors the engine writes name steps too), so reports,
//! metrics and errors agree. A job takes one [`Context`]: the executor, the
//! group's settings and the invocation's clock.

mod change;
mod context;
mod execute;
mod plan;

pub use crate::step::Step;
pub use change::{Change, Launch, LaunchAttempt, rule_text};
pub use context::Context;
pub use execute::{Applied, DEADLINE_MARGIN, Executor};
pub use plan::{Decision, PlannedStep};
