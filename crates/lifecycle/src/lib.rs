//! Core of **autoscaling-lifecycle**: drive EC2 Auto Scaling instances through a state machine
//! that the operator configures.
//!
//! An incoming AWS event ([`event`]) names one resource — usually a node, an item in the state
//! table ([`store`]). The resource's stored status is its current state; the configuration
//! ([`config`]), compiled once into an immutable [`config::Definition`], says which triggers
//! lead from that state and which tasks ([`tasks`]) and conditions they run. The engine
//! ([`engine`]) is a pure state machine: it decides what happens next and never performs I/O.
//! The dispatcher ([`dispatch`]) is the driver that performs what the engine asks — runs a
//! task, evaluates a condition, persists a state with a compare-and-set write — through one
//! small trait per capability, and feeds the results back.
//!
//! ```
//! use lifecycle::config::{Definition, RawConfig};
//! use lifecycle::tasks::Registry;
//!
//! let yaml = r#"
//! transitions:
//!   - source: finished_cloud_init
//!     dest: ready
//!     triggers: [{name: complete, after: [complete_lifecycle_action]}]
//! "#;
//! let raw = RawConfig::from_yaml(yaml).unwrap();
//! let def = Definition::compile(&raw, &Registry::builtin()).unwrap();
//! assert_eq!(def.initial_state(), "finished_cloud_init");
//! ```

pub mod clock;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod event;
pub mod graph;
pub mod redact;
pub mod report;
pub mod services;
pub mod store;
pub mod tasks;
