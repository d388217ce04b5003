//! Stand-ins for tasks and conditions a configuration names but neither builds in nor
//! declares, so that `lifecycle simulate` can run a configuration written for a program that
//! registers its own (SPEC 7: `--outcome NAME=ok|error|true|false`).

use std::sync::Arc;

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::{ConditionKind, Definition, TaskKind};
use lifecycle_runtime::{Condition, Registry, Task, TaskContext};

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
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        match self.0 {
            Outcome::Error => Err(Fault::permanent(format!(
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
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, Fault> {
        match self.0 {
            Outcome::Error => Err(Fault::permanent(format!(
                "{} failed (simulated outcome)",
                cx.name
            ))),
            Outcome::False => Ok(false),
            _ => Ok(true),
        }
    }
}

/// A registry with a simulated stand-in for every external name of `def` (SPEC 3.1);
/// `outcome(name)` gives its behaviour (default: `ok` for a task, `true` for a condition).
pub fn stand_ins(def: &Definition, outcome: impl Fn(&str) -> Option<Outcome>) -> Registry {
    let mut registry = Registry::new();
    for (_, name, kind) in def.tasks() {
        if matches!(kind, TaskKind::External) {
            let o = outcome(name).unwrap_or(Outcome::Ok);
            registry.register_task(name, Arc::new(SimulatedTask(o)));
        }
    }
    for (_, name, kind) in def.conditions() {
        if matches!(kind, ConditionKind::External) {
            let o = outcome(name).unwrap_or(Outcome::True);
            registry.register_condition(name, Arc::new(SimulatedCondition(o)));
        }
    }
    registry
}
