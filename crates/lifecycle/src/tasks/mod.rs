//! Tasks and conditions: the work a trigger does and the checks that decide whether it fires.
//!
//! A [`Task`] or [`Condition`] is registered by name in a [`Registry`]; a configuration refers
//! to it by that name, and [`crate::config::Definition::compile`] refuses names the registry
//! does not know. Built-ins ([`Registry::builtin`]) cover SPEC 5 and the event predicates of
//! SPEC 2.3; the configuration's `tasks:` section declares more from built-in kinds
//! ([`declared`]); a program embedding the library registers its own.

mod builtin;
pub mod declared;
pub mod simulated;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::clock::Deadline;
use crate::event::Event;
use crate::services::{LifecycleResult, RecordChange, Services};
use crate::store::{Node, StoreError};

/// A task or condition failed. Says whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// What went wrong, for the operator.
    pub message: String,
    /// True when a retry can help (throttling, timeouts, 5xx, a wait that ran out).
    pub retryable: bool,
}

impl TaskError {
    /// An error a retry cannot fix.
    pub fn failed(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            retryable: false,
        }
    }

    /// An error a retry may fix.
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            retryable: true,
        }
    }
}

impl From<StoreError> for TaskError {
    fn from(e: StoreError) -> Self {
        TaskError {
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }
}

/// The resource an event operates on: the node, if any, and whether its state changes are
/// written to the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The node (possibly one that is not in the table yet: status `new`).
    pub node: Option<Node>,
    /// True while state changes are persisted (a node was loaded and not removed).
    pub persisted: bool,
}

/// Work collected during one event and applied together (e.g. one Route 53 batch per event).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scratch {
    /// DNS changes waiting to be applied, by hosted zone.
    pub dns: BTreeMap<String, Vec<RecordChange>>,
    /// Named query results (nodes), for placeholders.
    pub queries: BTreeMap<String, Vec<Node>>,
}

/// What a task or condition sees and may change.
pub struct TaskContext<'a> {
    /// The event being processed.
    pub event: &'a Event,
    /// True once the event has been marked failed during processing.
    pub event_failed: bool,
    /// The resource.
    pub resource: &'a mut Resource,
    /// Collected work.
    pub scratch: &'a mut Scratch,
    /// The capabilities.
    pub services: &'a Services,
    /// No wait may outlive this.
    pub deadline: Deadline,
    /// The registered name the task or condition runs under.
    pub name: &'a str,
}

impl TaskContext<'_> {
    /// True when the event is successful (SPEC 2.3): not marked failed, and for a command event
    /// its status is `Success`.
    pub fn is_successful(&self) -> bool {
        !self.event_failed && self.event.status_successful()
    }

    /// The lifecycle result (SPEC 2.3): `CONTINUE` when the event has not failed and it is a
    /// termination or successful; otherwise `ABANDON`.
    pub fn lifecycle_result(&self) -> LifecycleResult {
        if !self.event_failed && (self.event.is_terminating() || self.is_successful()) {
            LifecycleResult::Continue
        } else {
            LifecycleResult::Abandon
        }
    }

    /// The node, or an error naming the task that needed one.
    ///
    /// # Errors
    /// When the event has no node.
    pub fn node(&self) -> Result<&Node, TaskError> {
        self.resource
            .node
            .as_ref()
            .ok_or_else(|| TaskError::failed(format!("{}: the event has no node", self.name)))
    }

    /// Sets properties on the node, in memory and (while persisted) in the table.
    ///
    /// # Errors
    /// When there is no node, or the store fails.
    pub async fn set_properties(
        &mut self,
        properties: Map<String, Value>,
    ) -> Result<(), TaskError> {
        let persisted = self.resource.persisted;
        let name = self.name.to_owned();
        let node = self
            .resource
            .node
            .as_mut()
            .ok_or_else(|| TaskError::failed(format!("{name}: the event has no node")))?;
        if persisted {
            self.services
                .nodes
                .set_properties(&node.id, &properties)
                .await?;
        }
        node.properties.extend(properties);
        Ok(())
    }
}

/// A unit of work run by a trigger (`prepare`, `before`, `after`).
#[async_trait]
pub trait Task: Send + Sync {
    /// Does the work.
    ///
    /// # Errors
    /// A [`TaskError`]; the engine then follows SPEC 4.3.
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError>;
}

/// A check that decides whether a trigger fires (`conditions`, `unless`).
#[async_trait]
pub trait Condition: Send + Sync {
    /// Evaluates the check.
    ///
    /// # Errors
    /// A [`TaskError`]; the engine then follows SPEC 4.3.
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, TaskError>;
}

/// A named task or condition.
#[derive(Clone)]
pub enum Registered {
    /// A task.
    Task(Arc<dyn Task>),
    /// A condition.
    Condition(Arc<dyn Condition>),
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Registered::Task(_) => "Task",
            Registered::Condition(_) => "Condition",
        })
    }
}

/// Names → tasks and conditions.
#[derive(Clone, Default, Debug)]
pub struct Registry {
    entries: BTreeMap<String, Registered>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in tasks (SPEC 5) and event predicates (SPEC 2.3, 4.1).
    pub fn builtin() -> Self {
        let mut r = Registry::new();
        builtin::register(&mut r);
        r
    }

    /// Registers (or replaces) a task.
    pub fn register_task(&mut self, name: impl Into<String>, task: Arc<dyn Task>) -> &mut Self {
        self.entries.insert(name.into(), Registered::Task(task));
        self
    }

    /// Registers (or replaces) a condition.
    pub fn register_condition(
        &mut self,
        name: impl Into<String>,
        condition: Arc<dyn Condition>,
    ) -> &mut Self {
        self.entries
            .insert(name.into(), Registered::Condition(condition));
        self
    }

    /// Looks a name up.
    pub fn get(&self, name: &str) -> Option<&Registered> {
        self.entries.get(name)
    }

    /// True when `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Every registered name with whether it is a task (`true`) or a condition.
    pub fn names(&self) -> impl Iterator<Item = (&str, bool)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_str(), matches!(v, Registered::Task(_))))
    }
}

/// The names of the built-in tasks.
pub const BUILTIN_TASKS: &[&str] = builtin::TASKS;
/// The names of the built-in conditions.
pub const BUILTIN_CONDITIONS: &[&str] = builtin::CONDITIONS;
