//! The engine: a pure state machine that decides, one step at a time, what processing one
//! event means (SPEC 4.2, 4.3). It performs no I/O.
//!
//! The driver (the runtime's dispatcher) calls [`Engine::start`], performs the [`Action`] it gets
//! (run a task, evaluate a condition, persist a state), and hands the result back with
//! [`Engine::resume`], until the engine returns [`Step::Finished`]. The engine keeps the
//! current state, the passed states, the trace of tasks and conditions run, and the errors it
//! reported.
//!
//! ```
//! use lifecycle::config::Definition;
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

use std::fmt;

use serde::Serialize;

use crate::config::{Candidate, CondId, Definition, StateId, TaskId, Transition, Trigger};
use crate::fault::{Fault, FaultKind};

/// Why processing stopped (`stopped_by` in reports; SPEC 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// The state has no trigger.
    NoTrigger,
    /// No trigger changed the state.
    NoStateChange,
    /// A transition with `stop_after_state_change` was taken.
    StopAfterStateChange,
    /// A trigger with `stop_after_trigger` fired.
    StopAfterTrigger,
    /// Processing stopped in `failure` (a warning; the invocation succeeds).
    FailureUnhandled,
    /// The invocation ended with an error.
    Error,
    /// The event is not for us.
    NotSupported,
    /// Another invocation moved the node first (compare-and-set lost).
    Conflict,
    /// The invocation's deadline came first: the state reached so far is persisted, and a
    /// retry resumes from it (SPEC 8).
    Deadline,
    /// The event was processed already, or is being processed by another invocation: nothing
    /// changed, no side effect was repeated (SPEC 9).
    Duplicate,
}

impl StopReason {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::NoTrigger => "no_trigger",
            StopReason::NoStateChange => "no_state_change",
            StopReason::StopAfterStateChange => "stop_after_state_change",
            StopReason::StopAfterTrigger => "stop_after_trigger",
            StopReason::FailureUnhandled => "failure_unhandled",
            StopReason::Error => "error",
            StopReason::NotSupported => "not_supported",
            StopReason::Conflict => "conflict",
            StopReason::Deadline => "deadline",
            StopReason::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that ended processing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A task or condition failed while failure handling was already under way.
    #[error("trigger {trigger}: {name} failed during failure handling: {error}")]
    Task {
        /// The trigger.
        trigger: String,
        /// The task or condition.
        name: String,
        /// What it said.
        error: Fault,
    },
    /// A command event whose command did not succeed reached a trigger during failure handling.
    #[error("trigger {trigger}: command was not successful (during failure handling)")]
    CommandNotSuccessful {
        /// The trigger.
        trigger: String,
    },
    /// One event tried to enter a state twice.
    #[error("state {state} entered twice while processing one event: {}", path.join(" -> "))]
    Cycle {
        /// The state entered again.
        state: String,
        /// The states this event passed, ending with the repeated one.
        path: Vec<String>,
    },
    /// Writing a state failed (not a conflict: the store itself failed).
    #[error("persisting state {state} failed: {error}")]
    Persist {
        /// The state that could not be written.
        state: String,
        /// What the store said.
        error: Fault,
    },
    /// The invocation's deadline came before processing ended.
    #[error("the deadline came in state {state}; a retry resumes from it")]
    Deadline {
        /// The state reached (and persisted).
        state: String,
    },
    /// The driver answered an action with feedback of another kind: a bug in the driver.
    #[error("driver answered {feedback} to a request to {pending}")]
    Protocol {
        /// What the engine asked.
        pending: String,
        /// What it got.
        feedback: String,
    },
}

impl EngineError {
    /// What a retry can do: a transient fault of a task or the store stays transient;
    /// everything else is permanent (retrying the same event ends the same way).
    pub fn kind(&self) -> FaultKind {
        match self {
            EngineError::Task { error, .. } | EngineError::Persist { error, .. }
                if error.is_transient() =>
            {
                FaultKind::Transient
            }
            EngineError::Deadline { .. } => FaultKind::Transient,
            _ => FaultKind::Permanent,
        }
    }
}

/// An error reported during processing and handled (ignored, or leading into `failure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportedError {
    /// The trigger it happened in.
    pub trigger: String,
    /// The task or condition, when one failed (`None` for "command was not successful").
    pub task: Option<String>,
    /// What went wrong.
    pub message: String,
    /// True when the trigger had `ignore_errors`.
    pub ignored: bool,
}

/// What the engine asks the driver to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run a task; answer [`Feedback::Done`] or [`Feedback::Failed`].
    Task {
        /// The task.
        id: TaskId,
    },
    /// Evaluate a condition; answer [`Feedback::Checked`] or [`Feedback::Failed`].
    Condition {
        /// The condition.
        id: CondId,
    },
    /// Write the state change `from` → `to` (or, for a resource kept in memory, just accept
    /// it); answer [`Feedback::Persisted`], [`Feedback::Conflict`] or
    /// [`Feedback::PersistFailed`].
    Persist {
        /// The state read.
        from: StateId,
        /// The new state.
        to: StateId,
    },
}

/// The result of an [`Action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// The task succeeded.
    Done,
    /// The condition's value.
    Checked(bool),
    /// The task or condition failed.
    Failed(Fault),
    /// The state was written.
    Persisted,
    /// The compare-and-set lost: the table holds `found`.
    Conflict {
        /// The status found.
        found: String,
    },
    /// The store failed.
    PersistFailed(Fault),
}

/// How processing ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// Why.
    pub reason: StopReason,
    /// The error, when `reason` is [`StopReason::Error`].
    pub error: Option<Box<EngineError>>,
    /// The status found, when `reason` is [`StopReason::Conflict`].
    pub conflict: Option<String>,
}

/// One step of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Perform this and [`Engine::resume`] with its result.
    Run(Action),
    /// Processing is over.
    Finished(Finish),
}

/// What the engine needs to know about the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFacts {
    /// An SSM command status event.
    pub is_command: bool,
    /// The event's own success (a command event: status `Success`).
    pub status_successful: bool,
    /// A transient fault of a task or condition ends processing, retryable, with the state
    /// reached persisted, instead of entering failure handling (SPEC 9: transient is not
    /// failure). The driver turns this off once the record's deliveries have reached
    /// `max_transient_attempts`: the fault is then handled as a permanent one.
    pub transient_retry: bool,
}

impl Default for EventFacts {
    fn default() -> Self {
        EventFacts {
            is_command: false,
            status_successful: true,
            transient_retry: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Prepare,
    Implicit,
    Conditions,
    Unless,
    Before,
    Enter,
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// The trigger's own state change.
    Normal,
    /// `ignore_errors` forcing the destination after an error.
    Forced,
    /// Entering `failure` after an error.
    Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Task,
    Condition {
        unless: bool,
    },
    Persist {
        to: StateId,
        entry: Entry,
    },
    /// The deferred state is being written before this task runs.
    Flush {
        task: TaskId,
    },
}

/// The state machine for one event. See the module docs for the protocol.
#[derive(Debug)]
pub struct Engine<'d> {
    def: &'d Definition,
    start: StateId,
    state: StateId,
    passed: Vec<StateId>,
    trace: Vec<&'d str>,
    errors: Vec<ReportedError>,
    facts: EventFacts,
    failed: bool,
    cands: &'d [Candidate],
    ci: usize,
    stage: Stage,
    idx: usize,
    changed: bool,
    /// The current candidate's checks passed: it fired.
    fired: bool,
    /// The state the current candidate was tried from.
    from: StateId,
    /// The triggers that fired, in order, with the state each left.
    fired_log: Vec<(Candidate, StateId)>,
    /// A transition was committed and its `after` tasks have not all run yet.
    commit_open: bool,
    /// State writes are deferred ([`Engine::deferring`]).
    defer: bool,
    /// The state the table holds, as far as this engine wrote it.
    stored: StateId,
    /// How many of `passed` the table holds.
    written: usize,
    /// The trigger's own transition that entered the current state in this processing.
    entered_by: Option<(StateId, &'d str, StateId)>,
    pending: Pending,
    finished: Option<Finish>,
}

impl<'d> Engine<'d> {
    /// An engine for one event, starting in `state`.
    pub fn new(def: &'d Definition, state: StateId, facts: EventFacts) -> Self {
        Engine {
            def,
            start: state,
            state,
            passed: Vec::new(),
            trace: Vec::new(),
            errors: Vec::new(),
            facts,
            failed: false,
            cands: def.candidates(state),
            ci: 0,
            stage: Stage::Prepare,
            idx: 0,
            changed: false,
            fired: false,
            from: state,
            fired_log: Vec::new(),
            commit_open: false,
            defer: false,
            stored: state,
            written: 0,
            entered_by: None,
            pending: Pending::None,
            finished: None,
        }
    }

    /// The same engine, deferring state writes: a state entered is kept in memory, and the
    /// engine asks for a write ([`Action::Persist`] from the state the table holds to the
    /// current one) only before a task whose repetition matters
    /// ([`Definition::task_repeatable`]). What is left unwritten at the end
    /// ([`Engine::unwritten`]) the driver writes in its final write. A crash in between
    /// leaves the table in an earlier state, from which a redelivery runs again only tasks
    /// that may be repeated. SPEC 9: the fewest writes that stay exactly-once.
    #[must_use]
    pub fn deferring(mut self) -> Self {
        self.defer = true;
        self
    }

    /// `(stored, current)` when the current state is not written yet (deferred writes).
    pub fn unwritten(&self) -> Option<(StateId, StateId)> {
        (self.stored != self.state).then_some((self.stored, self.state))
    }

    /// The trigger's own transition that entered the current state in this processing —
    /// `(from, trigger, to)` — what a driver records with a write so a redelivery after a
    /// crash resumes it ([`Engine::after_commit`]); `None` when the current state was not
    /// entered by one (nothing moved yet, or `failure` / an `ignore_errors` destination).
    pub fn entered_by(&self) -> Option<(StateId, &'d str, StateId)> {
        self.entered_by
    }

    /// True while a transition is committed and its trigger's `after` tasks have not all run:
    /// a retry must resume it ([`Engine::after_commit`]); false once they have, so a retry
    /// starts afresh from the state reached.
    pub fn commit_open(&self) -> bool {
        self.commit_open
    }

    /// The triggers that fired, in order: each trigger, the state it left, where its
    /// transition leads (`None`: internal).
    pub fn fired(&self) -> impl Iterator<Item = (&'d Trigger, StateId, Option<StateId>)> + '_ {
        self.fired_log.iter().map(|(c, from)| {
            let (t, g) = self.def.resolve(*c);
            (g, *from, t.dest)
        })
    }

    /// The trigger being tried or run now, the state it was tried from, and where its
    /// transition leads (`None`: internal): what `{transition.trigger}`, `{transition.source}`
    /// and `{transition.dest}` render.
    pub fn current_transition(&self) -> Option<(&'d str, StateId, Option<StateId>)> {
        let c = self.cands.get(self.ci)?;
        let (t, g) = self.def.resolve(*c);
        Some((g.name.as_str(), self.from, t.dest))
    }

    /// An engine for one event whose earlier processing died after committing the transition
    /// `from` → `to` along trigger `trigger`: it starts with that trigger's `after` tasks, in
    /// `to`, then goes on as processing would have (SPEC 9). `None` when the definition has no
    /// such transition (the configuration changed since): process the event as usual.
    pub fn after_commit(
        def: &'d Definition,
        from: StateId,
        trigger: &str,
        to: StateId,
        facts: EventFacts,
    ) -> Option<Self> {
        let cands = def.candidates(from);
        let ci = cands.iter().position(|c| {
            let (t, g) = def.resolve(*c);
            g.name == trigger && t.dest == Some(to)
        })?;
        let mut engine = Engine::new(def, from, facts);
        engine.from = from;
        engine.state = to;
        engine.stored = to;
        engine.entered_by = Some((from, def.resolve(cands[ci]).1.name.as_str(), to));
        engine.ci = ci;
        engine.stage = Stage::After;
        engine.changed = true;
        engine.fired = true;
        engine.commit_open = true;
        if def.resolve(cands[ci]).0.stop_after_state_change {
            // The first processing stopped right after the write: so does this one.
            engine.finished = Some(Finish {
                reason: StopReason::StopAfterStateChange,
                error: None,
                conflict: None,
            });
        }
        Some(engine)
    }

    /// The state processing started from.
    pub fn start_state(&self) -> StateId {
        self.start
    }

    /// The current state.
    pub fn state(&self) -> StateId {
        self.state
    }

    /// The states entered so far, in order.
    pub fn passed(&self) -> &[StateId] {
        &self.passed
    }

    /// The tasks and conditions run so far, in order.
    pub fn trace(&self) -> &[&'d str] {
        &self.trace
    }

    /// The errors reported and handled so far.
    pub fn errors(&self) -> &[ReportedError] {
        &self.errors
    }

    /// True once the event has been marked failed.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The first step.
    pub fn start(&mut self) -> Step {
        if let Some(f) = &self.finished {
            return Step::Finished(f.clone());
        }
        if self.cands.is_empty() {
            return self.finish(StopReason::NoTrigger, None);
        }
        self.advance()
    }

    /// Ends processing because the invocation's deadline came (the driver checks it before
    /// each action it performs): every state entered so far is persisted — written, or left
    /// for the driver's final write ([`Engine::unwritten`]) — so a retry resumes from the
    /// current state. Answer this instead of performing the pending action.
    pub fn deadline_reached(&mut self) -> Step {
        if let Some(f) = &self.finished {
            return Step::Finished(f.clone());
        }
        // The action asked for was not performed: it leaves the trace.
        if matches!(
            std::mem::replace(&mut self.pending, Pending::None),
            Pending::Task | Pending::Condition { .. }
        ) {
            self.trace.pop();
        }
        let state = self.def.state_name(self.state).to_owned();
        let f = Finish {
            reason: StopReason::Deadline,
            error: Some(Box::new(EngineError::Deadline { state })),
            conflict: None,
        };
        self.finished = Some(f.clone());
        Step::Finished(f)
    }

    /// Feeds back the result of the last [`Action`] and returns the next step.
    pub fn resume(&mut self, feedback: Feedback) -> Step {
        if let Some(f) = &self.finished {
            return Step::Finished(f.clone());
        }
        let pending = std::mem::replace(&mut self.pending, Pending::None);
        match (pending, feedback) {
            (Pending::Task, Feedback::Done) => self.advance(),
            (Pending::Task | Pending::Condition { .. }, Feedback::Failed(e)) => {
                let name = self.trace.last().map(|s| (*s).to_owned());
                self.trigger_error(name, e.to_string(), Some(e))
            }
            (Pending::Condition { unless }, Feedback::Checked(value)) => {
                if value == unless {
                    self.next_candidate();
                }
                self.advance()
            }
            (Pending::Persist { to, entry }, Feedback::Persisted) => {
                self.stored = to;
                self.entered(to, entry)
            }
            (Pending::Flush { task }, Feedback::Persisted) => {
                self.stored = self.state;
                self.written = self.passed.len();
                self.run_task(task)
            }
            (Pending::Flush { .. }, Feedback::Conflict { found }) => {
                self.unwind();
                let f = Finish {
                    reason: StopReason::Conflict,
                    error: None,
                    conflict: Some(found),
                };
                self.finished = Some(f.clone());
                Step::Finished(f)
            }
            (Pending::Persist { .. }, Feedback::Conflict { found }) => {
                let f = Finish {
                    reason: StopReason::Conflict,
                    error: None,
                    conflict: Some(found),
                };
                self.finished = Some(f.clone());
                Step::Finished(f)
            }
            (Pending::Persist { to, .. }, Feedback::PersistFailed(error)) => {
                let e = EngineError::Persist {
                    state: self.def.state_name(to).to_owned(),
                    error,
                };
                self.finish(StopReason::Error, Some(e))
            }
            (Pending::Flush { .. }, Feedback::PersistFailed(error)) => {
                let e = EngineError::Persist {
                    state: self.def.state_name(self.state).to_owned(),
                    error,
                };
                self.unwind();
                self.finish(StopReason::Error, Some(e))
            }
            (pending, feedback) => {
                // A driver bug: the answer does not match the question. End safely.
                let e = EngineError::Protocol {
                    pending: format!("{pending:?}"),
                    feedback: format!("{feedback:?}"),
                };
                self.finish(StopReason::Error, Some(e))
            }
        }
    }

    fn current(&self) -> (&'d Transition, &'d Trigger) {
        self.def.resolve(self.cands[self.ci])
    }

    fn in_failure(&self) -> bool {
        self.failed || self.state == self.def.failure()
    }

    fn finish(&mut self, reason: StopReason, error: Option<EngineError>) -> Step {
        let reason = match reason {
            StopReason::NoTrigger
            | StopReason::NoStateChange
            | StopReason::StopAfterStateChange
            | StopReason::StopAfterTrigger
                if self.state == self.def.failure() =>
            {
                StopReason::FailureUnhandled
            }
            other => other,
        };
        if reason == StopReason::FailureUnhandled {
            tracing::warn!(state = %self.def.state_name(self.state), "stopped in failure: no trigger handled it");
        }
        let f = Finish {
            reason,
            error: error.map(Box::new),
            conflict: None,
        };
        self.finished = Some(f.clone());
        Step::Finished(f)
    }

    fn new_round(&mut self) -> Step {
        self.from = self.state;
        self.cands = self.def.candidates(self.state);
        self.ci = 0;
        self.stage = Stage::Prepare;
        self.idx = 0;
        self.changed = false;
        self.fired = false;
        if self.cands.is_empty() {
            return self.finish(StopReason::NoTrigger, None);
        }
        self.advance()
    }

    /// Moves to the next way out. Once a trigger name fired along one of its transitions,
    /// its other transitions from this state are not tried in this pass (SPEC 4.2); they sit
    /// right after it, since candidates are ordered by trigger name first.
    fn next_candidate(&mut self) {
        let fired_name = self.fired.then(|| self.current().1.name.as_str());
        self.ci += 1;
        if let Some(name) = fired_name {
            while self.ci < self.cands.len() && self.current().1.name == name {
                self.ci += 1;
            }
        }
        self.stage = Stage::Prepare;
        self.idx = 0;
        self.changed = false;
        self.fired = false;
        self.from = self.state;
    }

    fn run_task(&mut self, id: TaskId) -> Step {
        if self.defer && self.stored != self.state && !self.def.task_repeatable(id) {
            // A side effect whose repetition matters: the state reached is written first, so
            // a redelivery after a crash does not run it again from an earlier state.
            self.pending = Pending::Flush { task: id };
            return Step::Run(Action::Persist {
                from: self.stored,
                to: self.state,
            });
        }
        self.trace.push(self.def.task_name(id));
        self.pending = Pending::Task;
        Step::Run(Action::Task { id })
    }

    fn run_condition(&mut self, id: CondId, unless: bool) -> Step {
        self.trace.push(self.def.condition_name(id));
        self.pending = Pending::Condition { unless };
        Step::Run(Action::Condition { id })
    }

    fn enter(&mut self, to: StateId, entry: Entry) -> Step {
        if to == self.start || self.passed.contains(&to) {
            let mut path: Vec<String> = std::iter::once(self.start)
                .chain(self.passed.iter().copied())
                .map(|s| self.def.state_name(s).to_owned())
                .collect();
            path.push(self.def.state_name(to).to_owned());
            let e = EngineError::Cycle {
                state: self.def.state_name(to).to_owned(),
                path,
            };
            return self.finish(StopReason::Error, Some(e));
        }
        if self.defer {
            // Kept in memory: written before the next task whose repetition matters, or by
            // the driver's final write ([`Engine::unwritten`]).
            return self.entered(to, entry);
        }
        self.pending = Pending::Persist { to, entry };
        Step::Run(Action::Persist {
            from: self.state,
            to,
        })
    }

    /// A deferred write failed: the states entered since the last write were never stored, so
    /// the engine is back where the table is.
    fn unwind(&mut self) {
        self.state = self.stored;
        self.passed.truncate(self.written);
        self.commit_open = false;
        self.entered_by = None;
    }

    /// The state `to` is entered (written, or kept in memory while deferring).
    fn entered(&mut self, to: StateId, entry: Entry) -> Step {
        let from = self.state;
        self.state = to;
        self.passed.push(to);
        if !self.defer {
            self.written = self.passed.len();
        }
        match entry {
            Entry::Normal => {
                self.changed = true;
                let (t, g) = self.current();
                self.entered_by = Some((from, g.name.as_str(), to));
                if t.stop_after_state_change {
                    return self.finish(StopReason::StopAfterStateChange, None);
                }
                self.commit_open = true;
                self.stage = Stage::After;
                self.idx = 0;
                self.advance()
            }
            Entry::Forced | Entry::Failure => {
                self.entered_by = None;
                self.new_round()
            }
        }
    }

    /// An error inside the current trigger (SPEC 4.3).
    fn trigger_error(
        &mut self,
        task: Option<String>,
        message: String,
        cause: Option<Fault>,
    ) -> Step {
        let (t, g) = self.current();
        if g.ignore_errors {
            tracing::warn!(trigger = %g.name, task = ?task, error = %message, "error ignored");
            self.errors.push(ReportedError {
                trigger: g.name.clone(),
                task,
                message,
                ignored: true,
            });
            if !self.changed
                && let Some(d) = t.dest
            {
                return self.enter(d, Entry::Forced);
            }
            if self.changed {
                return self.new_round();
            }
            self.next_candidate();
            return self.advance();
        }
        if self.in_failure() {
            let e = match (task, cause) {
                (Some(name), Some(error)) => EngineError::Task {
                    trigger: g.name.clone(),
                    name,
                    error,
                },
                _ => EngineError::CommandNotSuccessful {
                    trigger: g.name.clone(),
                },
            };
            tracing::error!(error = %e, "error during failure handling");
            return self.finish(StopReason::Error, Some(e));
        }
        if self.facts.transient_retry
            && let (Some(name), Some(error)) = (&task, &cause)
            && error.is_transient()
        {
            // A retry can mend it: end here, retryable, rather than fail a healthy node.
            tracing::warn!(trigger = %g.name, task = %name, error = %message, "transient error: ending, retryable");
            let e = EngineError::Task {
                trigger: g.name.clone(),
                name: name.clone(),
                error: error.clone(),
            };
            return self.finish(StopReason::Error, Some(e));
        }
        tracing::error!(trigger = %g.name, task = ?task, error = %message, "error: entering failure handling");
        self.errors.push(ReportedError {
            trigger: g.name.clone(),
            task,
            message,
            ignored: false,
        });
        self.failed = true;
        let failure = self.def.failure();
        self.enter(failure, Entry::Failure)
    }

    fn advance(&mut self) -> Step {
        loop {
            if self.ci >= self.cands.len() {
                return self.finish(StopReason::NoStateChange, None);
            }
            let (t, g) = self.current();
            match self.stage {
                Stage::Prepare => {
                    if let Some(&id) = g.prepare.get(self.idx) {
                        self.idx += 1;
                        return self.run_task(id);
                    }
                    self.stage = Stage::Implicit;
                    self.idx = 0;
                }
                Stage::Implicit => {
                    self.stage = Stage::Conditions;
                    let successful = self.facts.status_successful && !self.failed;
                    if !g.ignore_errors && !successful {
                        if self.facts.is_command {
                            return self.trigger_error(
                                None,
                                "command was not successful".into(),
                                None,
                            );
                        }
                        self.next_candidate();
                    }
                }
                Stage::Conditions => {
                    if let Some(&id) = g.conditions.get(self.idx) {
                        self.idx += 1;
                        return self.run_condition(id, false);
                    }
                    self.stage = Stage::Unless;
                    self.idx = 0;
                }
                Stage::Unless => {
                    if let Some(&id) = g.unless.get(self.idx) {
                        self.idx += 1;
                        return self.run_condition(id, true);
                    }
                    self.stage = Stage::Before;
                    self.idx = 0;
                    self.fired = true;
                    self.fired_log.push((self.cands[self.ci], self.from));
                    tracing::info!(
                        from = %self.def.state_name(self.state),
                        to = %t.dest.map_or("(internal)", |d| self.def.state_name(d)),
                        trigger = %g.name,
                        "transitioning"
                    );
                }
                Stage::Before => {
                    if let Some(&id) = g.before.get(self.idx) {
                        self.idx += 1;
                        return self.run_task(id);
                    }
                    self.stage = Stage::Enter;
                    self.idx = 0;
                }
                Stage::Enter => match t.dest {
                    Some(d) => return self.enter(d, Entry::Normal),
                    None => {
                        self.stage = Stage::After;
                        self.idx = 0;
                    }
                },
                Stage::After => {
                    if let Some(&id) = g.after.get(self.idx) {
                        self.idx += 1;
                        return self.run_task(id);
                    }
                    self.commit_open = false;
                    tracing::info!(
                        state = %self.def.state_name(self.state),
                        trigger = %g.name,
                        "transitioned"
                    );
                    if g.stop_after_trigger {
                        return self.finish(StopReason::StopAfterTrigger, None);
                    }
                    if self.changed {
                        return self.new_round();
                    }
                    self.next_candidate();
                }
            }
        }
    }
}
