//! The runtime of **autoscaling-lifecycle**: the driver that performs what the core's pure
//! machines decide.
//!
//! The [`Dispatcher`] takes one event, runs the core's loader (SPEC 4.1) and engine
//! (SPEC 4.2, 4.3), and does what they ask through [`Services`]: one small trait per
//! capability ([`capability`]), each failing with the core's [`lifecycle::Fault`]. The
//! [`tasks`] module holds the task and condition traits, the runtime's built-in and declared
//! tasks, and the [`Registry`] a program fills for names of its own. [`clock`] is time,
//! injected, with the one wait helper [`poll_until`]; [`report`] is what one event came to;
//! [`manual`] is an operator's move of a node, under the same lease as an event's; [`sweep`] is
//! the scheduled reconciliation sweep, which performs what the core's `reconcile` decides.
//!
//! Implementations of the capabilities live elsewhere: `lifecycle-embedded` (a local store
//! and a recorder of AWS calls) and `lifecycle-aws` (the AWS SDK).

pub mod capability;
pub mod clock;
pub mod dispatch;
pub mod manual;
pub mod report;
pub mod sweep;
pub mod tasks;

pub use capability::Services;
pub use clock::{Clock, poll_until};
pub use dispatch::{DispatchError, Dispatcher, Options};
pub use report::{Call, Report};
pub use tasks::{Condition, Registry, Task, TaskContext};
