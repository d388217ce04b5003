//! Stand-ins for tasks and conditions a configuration names but no registry provides, so that
//! `lifecycle simulate` can run a configuration written for a program that registers its own
//! (SPEC 7: `--outcome NAME=ok|error|true|false`).

use std::sync::Arc;

use async_trait::async_trait;

use super::{Condition, Registry, Task, TaskContext, TaskError};

/// What a simulated task or condition does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A task succeeds.
    Ok,
    /// A task or condition fails with an error.
    Error,
    /// A condition holds.
    True,
    /// A condition does not hold.
    False,
}

impl Outcome {
    /// Parses `ok`, `error`, `true`, `false`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Outcome::Ok),
            "error" => Some(Outcome::Error),
            "true" => Some(Outcome::True),
            "false" => Some(Outcome::False),
            _ => None,
        }
    }

    /// Whether this outcome fits a task (`ok`, `error`).
    pub fn fits_task(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Error)
    }

    /// Whether this outcome fits a condition (`true`, `false`, `error`).
    pub fn fits_condition(self) -> bool {
        matches!(self, Outcome::True | Outcome::False | Outcome::Error)
    }
}

/// A task that does nothing but succeed or fail as told.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedTask(pub Outcome);

#[async_trait]
impl Task for SimulatedTask {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        match self.0 {
            Outcome::Error => Err(TaskError::failed(format!(
                "{} failed (simulated outcome)",
                cx.name
            ))),
            _ => Ok(()),
        }
    }
}

/// A condition that holds, does not hold, or fails as told.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedCondition(pub Outcome);

#[async_trait]
impl Condition for SimulatedCondition {
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, TaskError> {
        match self.0 {
            Outcome::Error => Err(TaskError::failed(format!(
                "{} failed (simulated outcome)",
                cx.name
            ))),
            Outcome::False => Ok(false),
            _ => Ok(true),
        }
    }
}

/// Registers a simulated stand-in for every name in `tasks`/`conditions` that `registry` and
/// `declared` do not provide; `outcome(name)` gives its behaviour (default: `ok` / `true`).
/// Returns the names it registered, tasks first.
pub fn fill_unknown(
    registry: &mut Registry,
    declared: &[String],
    tasks: &[String],
    conditions: &[String],
    outcome: impl Fn(&str) -> Option<Outcome>,
) -> Vec<String> {
    let mut added = Vec::new();
    for name in tasks {
        if !registry.contains(name) && !declared.contains(name) {
            let o = outcome(name).unwrap_or(Outcome::Ok);
            registry.register_task(name.clone(), Arc::new(SimulatedTask(o)));
            added.push(name.clone());
        }
    }
    for name in conditions {
        if !registry.contains(name) && !declared.contains(name) {
            let o = outcome(name).unwrap_or(Outcome::True);
            registry.register_condition(name.clone(), Arc::new(SimulatedCondition(o)));
            added.push(name.clone());
        }
    }
    added
}
