//! Core of **autoscaling-lifecycle**: drive EC2 Auto Scaling instances through a state machine
//! that the operator configures — the pure part, with no I/O, no async runtime and no AWS.
//!
//! An incoming AWS event ([`event`]) names one resource — usually a node, an item in the state
//! table ([`node`]). The configuration ([`config`]) is compiled once into an immutable
//! [`Definition`]: plain data that says which triggers lead from each state and which tasks
//! and conditions they run, by name. Two sans-IO machines decide what processing one event
//! means and never perform it:
//! - [`load`] — SPEC 4.1: which command record to take, which node to read, whether to wait
//!   for cloud-init and until when, the guards;
//! - [`engine`] — SPEC 4.2 and 4.3: the trigger loop, errors and failure handling.
//!
//! [`reconcile`] decides, the same way, what the scheduled reconciliation sweep does about the
//! nodes that the table and Auto Scaling disagree on.
//!
//! A driver (the `lifecycle-runtime` crate) performs what they ask — reads a node, runs a
//! task, persists a state with a compare-and-set — and feeds the results back. Every failure
//! a driver reports is a [`Fault`], whose [`FaultKind`] is the one retry policy.
//!
//! ```
//! use lifecycle::Definition;
//! use lifecycle::engine::{Action, Engine, EventFacts, Feedback, Step, StopReason};
//!
//! let def = Definition::from_yaml(
//!     "- {source: a, dest: b, triggers: [{name: go, conditions: [is_launching]}]}",
//! ).unwrap();
//! let mut engine = Engine::new(&def, def.initial(), EventFacts::default());
//! let mut step = engine.start();
//! let finish = loop {
//!     step = match step {
//!         Step::Run(Action::Condition { .. }) => engine.resume(Feedback::Checked(true)),
//!         Step::Run(Action::Persist { .. }) => engine.resume(Feedback::Persisted),
//!         Step::Run(Action::Task { .. }) => engine.resume(Feedback::Done),
//!         Step::Finished(f) => break f,
//!     };
//! };
//! assert_eq!(def.state_name(engine.state()), "b");
//! assert_eq!(finish.reason, StopReason::NoTrigger);
//! assert_eq!(engine.trace(), ["is_launching"]);
//! ```

pub mod config;
pub mod delivery;
pub mod engine;
pub mod event;
pub mod fault;
pub mod graph;
pub mod load;
pub mod node;
pub mod reconcile;
pub mod redact;
pub mod time;

pub use config::{ConfigErrors, Definition, RawConfig};
pub use engine::{Engine, StopReason};
pub use event::{Event, EventError, LifecycleData, Parsed};
pub use fault::{Fault, FaultKind};
pub use node::{CommandRecord, Node};
pub use redact::{Redactor, Sensitive};
pub use time::Deadline;
