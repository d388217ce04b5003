//! The compiled, immutable state machine: plain data — ids and names — that the engine walks
//! and the runtime binds to the tasks it can run.

use std::collections::HashMap;

use serde::Serialize;

use super::builtin::{BuiltinTask, Predicate};
use super::declared::{DeclaredCondition, DeclaredTask};
use super::error::{ConfigError, ConfigErrorKind};

/// An interned state. Only a [`Definition`] makes them, so every id indexes its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct StateId(pub(crate) u32);

impl StateId {
    /// The state's position in [`Definition::states`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A task of a [`Definition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TaskId(pub(crate) u32);

impl TaskId {
    /// The task's position in the definition's task table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A condition of a [`Definition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct CondId(pub(crate) u32);

impl CondId {
    /// The condition's position in the definition's condition table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a name is used: as a task (`prepare`, `before`, `after`) or as a condition
/// (`conditions`, `unless`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A task.
    Task,
    /// A condition.
    Condition,
}

impl Role {
    /// `task` or `condition`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Task => "task",
            Role::Condition => "condition",
        }
    }
}

/// What a task name stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A built-in task (SPEC 5).
    Builtin(BuiltinTask),
    /// A task declared in the configuration's `tasks:` section.
    Declared(DeclaredTask),
    /// A name the configuration neither builds in nor declares: the program that runs the
    /// definition must register it.
    External,
}

/// What a condition name stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    /// An event predicate (SPEC 2.3).
    Builtin(Predicate),
    /// A condition declared in the configuration's `tasks:` section.
    Declared(DeclaredCondition),
    /// A name the program that runs the definition must register.
    External,
}

/// A compiled trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Trigger {
    /// Its name.
    pub name: String,
    /// `prepare` tasks.
    pub prepare: Vec<TaskId>,
    /// `conditions`.
    pub conditions: Vec<CondId>,
    /// `unless`.
    pub unless: Vec<CondId>,
    /// `before` tasks.
    pub before: Vec<TaskId>,
    /// `after` tasks.
    pub after: Vec<TaskId>,
    /// `stop_after_trigger`.
    pub stop_after_trigger: bool,
    /// `ignore_errors`.
    pub ignore_errors: bool,
    /// `report`: a message of its own to a topic when this trigger fires or fails.
    pub report: Option<super::report::ReportSpec>,
}

/// A compiled transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Transition {
    /// Where it may start.
    pub sources: Vec<StateId>,
    /// Where it leads (`None`: internal).
    pub dest: Option<StateId>,
    /// Its triggers, in configuration order.
    pub triggers: Vec<Trigger>,
    /// `stop_after_state_change`.
    pub stop_after_state_change: bool,
}

/// One way out of a state: a trigger of a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub(crate) transition: u32,
    pub(crate) trigger: u32,
}

impl Candidate {
    /// The transition's position in [`Definition::transitions`].
    pub fn transition_index(self) -> usize {
        self.transition as usize
    }
}

/// A compiled, immutable state machine: states interned, triggers ordered, every task and
/// condition name classified. Plain data: it can be cloned, compared and serialised, and it
/// holds nothing that runs — the runtime binds names to tasks where events are dispatched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Definition {
    pub(crate) states: Vec<String>,
    #[serde(skip)]
    pub(crate) state_ids: HashMap<String, StateId>,
    pub(crate) initial: StateId,
    pub(crate) failure: StateId,
    pub(crate) transitions: Vec<Transition>,
    #[serde(skip)]
    pub(crate) candidates: Vec<Vec<Candidate>>,
    pub(crate) tasks: Vec<(String, TaskKind)>,
    pub(crate) conditions: Vec<(String, ConditionKind)>,
    pub(crate) redact: Vec<String>,
    pub(crate) report: Option<super::report::ReportSpec>,
    pub(crate) reconcile: Option<super::reconcile::ReconcileSpec>,
}

impl Definition {
    /// Every state, in order of first appearance, `failure` included.
    pub fn states(&self) -> &[String] {
        &self.states
    }

    /// The name of a state.
    pub fn state_name(&self, id: StateId) -> &str {
        self.states.get(id.index()).map_or("?", String::as_str)
    }

    /// Looks a state up by name.
    pub fn state_id(&self, name: &str) -> Option<StateId> {
        self.state_ids.get(name).copied()
    }

    /// The initial state's name.
    pub fn initial_state(&self) -> &str {
        self.state_name(self.initial)
    }

    /// The initial state.
    pub fn initial(&self) -> StateId {
        self.initial
    }

    /// The `failure` state.
    pub fn failure(&self) -> StateId {
        self.failure
    }

    /// The transitions, in configuration order.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// The ways out of `state`, in trigger order (SPEC 4.2).
    pub fn candidates(&self, state: StateId) -> &[Candidate] {
        self.candidates
            .get(state.index())
            .map_or(&[], Vec::as_slice)
    }

    /// The transition and trigger a candidate names.
    pub fn resolve(&self, c: Candidate) -> (&Transition, &Trigger) {
        let t = &self.transitions[c.transition as usize];
        (t, &t.triggers[c.trigger as usize])
    }

    /// A task's name.
    pub fn task_name(&self, id: TaskId) -> &str {
        &self.tasks[id.index()].0
    }

    /// What a task stands for.
    pub fn task(&self, id: TaskId) -> &TaskKind {
        &self.tasks[id.index()].1
    }

    /// True when running the task a second time — a redelivery after a crash runs again the
    /// tasks since the last state write — does no harm, so no state write is owed before it
    /// ([`Engine::deferring`](crate::Engine::deferring)): every built-in task (a completion
    /// of an action no longer active is a no-op, protection and DNS UPSERTs are idempotent, a
    /// DELETE of a record already gone succeeds, a tombstone is written again), and the
    /// declared tasks that say so ([`DeclaredTask::repeatable`]). Tasks the program registers
    /// are not: nothing is known of them.
    pub fn task_repeatable(&self, id: TaskId) -> bool {
        match self.task(id) {
            TaskKind::Builtin(_) => true,
            TaskKind::Declared(d) => d.repeatable(),
            TaskKind::External => false,
        }
    }

    /// Every task, in order of first use.
    pub fn tasks(&self) -> impl ExactSizeIterator<Item = (TaskId, &str, &TaskKind)> {
        self.tasks
            .iter()
            .enumerate()
            .map(|(i, (n, k))| (TaskId(i as u32), n.as_str(), k))
    }

    /// A condition's name.
    pub fn condition_name(&self, id: CondId) -> &str {
        &self.conditions[id.index()].0
    }

    /// What a condition stands for.
    pub fn condition(&self, id: CondId) -> &ConditionKind {
        &self.conditions[id.index()].1
    }

    /// Every condition, in order of first use.
    pub fn conditions(&self) -> impl ExactSizeIterator<Item = (CondId, &str, &ConditionKind)> {
        self.conditions
            .iter()
            .enumerate()
            .map(|(i, (n, k))| (CondId(i as u32), n.as_str(), k))
    }

    /// Extra secret words from the configuration's `redact:` key.
    pub fn redact_words(&self) -> &[String] {
        &self.redact
    }

    /// The built-in SNS reporting (`report:`), when configured.
    pub fn report(&self) -> Option<&super::report::ReportSpec> {
        self.report.as_ref()
    }

    /// The reconciliation sweep's settings (`reconcile:`), when configured.
    pub fn reconcile(&self) -> Option<&super::reconcile::ReconcileSpec> {
        self.reconcile.as_ref()
    }

    /// The uses of external names (neither built in nor declared) that a program does not
    /// provide, given `registered`: what a name is registered as, if anything. One
    /// [`ConfigErrorKind::UnknownName`] (or [`ConfigErrorKind::WrongKind`]) per use, naming
    /// the transition, trigger and key, in configuration order. `lifecycle validate` reports
    /// them as warnings; a program binding the definition refuses them (SPEC 3.1).
    pub fn unregistered(&self, registered: impl Fn(&str) -> Option<Role>) -> Vec<ConfigError> {
        let task_external =
            |id: &TaskId| matches!(self.task(*id), TaskKind::External).then(|| self.task_name(*id));
        let cond_external = |id: &CondId| {
            matches!(self.condition(*id), ConditionKind::External).then(|| self.condition_name(*id))
        };
        let mut errors = Vec::new();
        for (i, t) in self.transitions.iter().enumerate() {
            let label = self.transition_label(i);
            for g in &t.triggers {
                let uses: [(&str, Role, Vec<&str>); 5] = [
                    (
                        "prepare",
                        Role::Task,
                        g.prepare.iter().filter_map(task_external).collect(),
                    ),
                    (
                        "conditions",
                        Role::Condition,
                        g.conditions.iter().filter_map(cond_external).collect(),
                    ),
                    (
                        "unless",
                        Role::Condition,
                        g.unless.iter().filter_map(cond_external).collect(),
                    ),
                    (
                        "before",
                        Role::Task,
                        g.before.iter().filter_map(task_external).collect(),
                    ),
                    (
                        "after",
                        Role::Task,
                        g.after.iter().filter_map(task_external).collect(),
                    ),
                ];
                for (key, role, names) in uses {
                    for name in names {
                        let (kind, message) = match registered(name) {
                            Some(r) if r == role => continue,
                            Some(r) => (
                                ConfigErrorKind::WrongKind,
                                format!("`{name}` is a {}, not a {}", r.as_str(), role.as_str()),
                            ),
                            None => (
                                ConfigErrorKind::UnknownName,
                                format!("unknown {} `{name}`: nothing registers it", role.as_str()),
                            ),
                        };
                        errors.push(ConfigError {
                            kind,
                            location: format!("{label}, trigger {}, key {key}", g.name),
                            message,
                        });
                    }
                }
            }
        }
        errors
    }

    /// `transitions[i] (a|b -> c)`: how errors name a transition.
    pub(crate) fn transition_label(&self, i: usize) -> String {
        let t = &self.transitions[i];
        let sources: Vec<&str> = t.sources.iter().map(|s| self.state_name(*s)).collect();
        format!(
            "transitions[{i}] ({} -> {})",
            sources.join("|"),
            t.dest.map_or("null", |d| self.state_name(d))
        )
    }
}
