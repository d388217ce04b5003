//! The dispatcher: loads the resource an event names, guards and waits as SPEC 4.1 says, and
//! drives the [`Engine`] — performing each task, condition and state write it asks for through
//! the [`Services`] — until processing stops.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tracing::Instrument;

use crate::clock::Deadline;
use crate::config::{Definition, StateId};
use crate::engine::{Action, Engine, EngineError, EventFacts, Feedback, Step, StopReason};
use crate::event::{Event, EventError, Parsed, Source, TERMINAL_COMMAND_STATUSES};
use crate::redact::Redactor;
use crate::report::{ErrorClass, Report};
use crate::services::{COMMAND_MARKER, Services};
use crate::store::{Node, StoreError};
use crate::tasks::{Resource, Scratch, TaskContext};

/// How often a command record is looked for while a status event waits for it.
const RECORD_POLL: Duration = Duration::from_millis(500);

/// Tunables of the dispatcher.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// How long a launching or command event waits at most for a new node to reach the
    /// initial state (cloud-init still running). Zero: do not wait — a node still waiting
    /// for cloud-init is then a timeout error at once.
    pub wait_timeout: Duration,
    /// How often the node is re-read while waiting.
    pub poll_interval: Duration,
    /// While a lifecycle event waits, a heartbeat is sent this often (zero: never).
    pub heartbeat_interval: Duration,
    /// Metadata merged under the event's `NotificationMetadata` (the event's keys win).
    pub default_metadata: Map<String, Value>,
    /// How long a status event of a command this library sent ([`COMMAND_MARKER`]) waits for
    /// the command's record when it arrives before the sender has stored it.
    pub record_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(60),
            default_metadata: Map::new(),
            record_wait: Duration::from_secs(10),
        }
    }
}

/// An error that ends an invocation before or outside the trigger loop.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The event is malformed.
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// The state store failed or holds a malformed item.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A new node did not reach the initial state in time.
    #[error(
        "node {node} is still {status:?} after waiting {waited_secs}s for state {initial:?} (cloud-init not finished)"
    )]
    WaitTimeout {
        /// The node.
        node: String,
        /// Its status when the wait ended.
        status: String,
        /// The state waited for.
        initial: String,
        /// How long it waited.
        waited_secs: u64,
    },
    /// A guard of SPEC 4.1 refused the event.
    #[error("{0}")]
    Guard(String),
    /// The engine ended with an error.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl DispatchError {
    /// True when retrying the event may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            DispatchError::InvalidEvent(_) | DispatchError::Guard(_) => false,
            DispatchError::Store(e) => e.is_retryable(),
            DispatchError::WaitTimeout { .. } => true,
            DispatchError::Engine(e) => e.is_retryable(),
        }
    }

    /// How the error is classed (exit code 2 for invalid input, 1 otherwise).
    pub fn class(&self) -> ErrorClass {
        match self {
            DispatchError::InvalidEvent(_) | DispatchError::Store(StoreError::Corrupt { .. }) => {
                ErrorClass::InvalidInput
            }
            _ => ErrorClass::Invocation,
        }
    }
}

/// Drives events through a [`Definition`] with a set of [`Services`].
#[derive(Debug, Clone)]
pub struct Dispatcher {
    def: Arc<Definition>,
    services: Services,
    options: Options,
}

impl Dispatcher {
    /// A dispatcher. The definition's `redact:` words are added to the services' redactor.
    pub fn new(def: Arc<Definition>, mut services: Services, options: Options) -> Self {
        if !def.redact_words().is_empty() {
            services.redactor = Redactor::with_extra(def.redact_words());
        }
        Dispatcher {
            def,
            services,
            options,
        }
    }

    /// The definition.
    pub fn definition(&self) -> &Definition {
        &self.def
    }

    /// The services.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Processes one parsed record: an event, a "not supported" outcome, or invalid input.
    pub async fn dispatch(&self, record: Result<Parsed, EventError>, deadline: Deadline) -> Report {
        match record {
            Ok(Parsed::Event(event)) => self.handle(*event, deadline).await,
            Ok(Parsed::NotSupported(ns)) => {
                tracing::info!(reason = %ns.reason, "event not supported; acknowledged");
                let mut r = Report::stopped(StopReason::NotSupported);
                r.not_supported = Some(ns.reason);
                r
            }
            Err(e) => error_report(Report::stopped(StopReason::Error), &e.into()),
        }
    }

    /// Processes one event (SPEC 4).
    pub async fn handle(&self, event: Event, deadline: Deadline) -> Report {
        let span = tracing::info_span!(
            "event",
            name = %event.name,
            id = event.id.as_deref().unwrap_or(""),
        );
        self.handle_inner(event, deadline).instrument(span).await
    }

    async fn handle_inner(&self, mut event: Event, deadline: Deadline) -> Report {
        let mut report = Report::stopped(StopReason::Error);
        report.event_id = event.id.clone();
        report.warnings = event.warnings.clone();

        // 4.1.1: a command event resumes the event that sent the command. A status that is
        // not final must not consume the record (the parser already refuses it; this guards
        // events built by other means).
        let mut taken = None;
        if let Some(cmd) = &event.command {
            if !TERMINAL_COMMAND_STATUSES.contains(&cmd.status.as_str()) {
                let mut r = Report::stopped(StopReason::NotSupported);
                r.event = Some(event.name.clone());
                r.event_id = event.id.clone();
                r.not_supported = Some(format!(
                    "SSM status {} (command {}) is not final",
                    cmd.status, cmd.command_id
                ));
                return r;
            }
            match self.take_record(cmd, deadline).await {
                Ok(Some(record)) => {
                    tracing::info!(command = %record.id, event = %record.event_name, "command record taken");
                    // A record written without `EventName` keeps the event's own name.
                    if !record.event_name.is_empty() {
                        event.name = record.event_name.clone();
                    }
                    event.lifecycle = record.lifecycle.clone();
                    taken = Some(record);
                }
                Ok(None) => {
                    let mut r = Report::stopped(StopReason::NotSupported);
                    r.event = Some(event.name.clone());
                    r.event_id = event.id.clone();
                    r.not_supported = Some(
                        if cmd.commands.first().map(String::as_str) == Some(COMMAND_MARKER) {
                            format!(
                                "command {} has no record: already handled, or expired",
                                cmd.command_id
                            )
                        } else {
                            format!("command {} is not ours (no command record)", cmd.command_id)
                        },
                    );
                    tracing::info!(command = %cmd.command_id, "command not registered; not ours");
                    return r;
                }
                Err(e) => return error_report(report, &e.into()),
            }
        }
        if let Some(lc) = &mut event.lifecycle {
            for (k, v) in &self.options.default_metadata {
                lc.metadata.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        report.event = Some(event.name.clone());

        // 4.1.2: the node.
        let node_id = match (&event.lifecycle, &event.command) {
            (Some(lc), _) => Some(lc.instance_id.clone()),
            (None, Some(_)) => event.resource_instance().map(str::to_owned),
            (None, None) => None,
        };
        let mut resource = Resource {
            node: None,
            persisted: false,
        };
        if let Some(id) = &node_id {
            report.node = Some(id.clone());
            match self.services.nodes.get(id).await {
                Ok(node) => {
                    resource.node = Some(node.unwrap_or_else(|| Node::absent(id.clone())));
                    resource.persisted = true;
                }
                Err(e) => return error_report(report, &e.into()),
            }
        }

        let current = |resource: &Resource| {
            resource
                .node
                .as_ref()
                .map_or_else(|| event.name.clone(), |n| n.status.clone())
        };
        report.initial_state = current(&resource);
        report.final_state = report.initial_state.clone();

        // 4.1.4: wait for cloud-init; then 4.1.3 and 4.1.5: the current state and the guards.
        // Nothing has changed yet when one of these fails, so a taken command record is put
        // back: the redelivered status event can then resume.
        let state = match self.prepare(&event, &mut resource, deadline).await {
            Ok(state) => state,
            Err(e) => {
                report.initial_state = current(&resource);
                report.final_state = report.initial_state.clone();
                if let Some(record) = &taken
                    && let Err(put) = self.services.commands.put_command(record).await
                {
                    tracing::error!(command = %record.id, error = %put, "could not put the command record back");
                }
                return error_report(report, &e);
            }
        };
        report.initial_state = self.def.state_name(state).to_owned();
        report.final_state = report.initial_state.clone();

        // 4.2: the loop.
        let facts = EventFacts {
            is_command: event.is_command(),
            status_successful: event.status_successful(),
        };
        let mut engine = Engine::new(&self.def, state, facts);
        let mut scratch = Scratch::default();
        let mut step = engine.start();
        let finish = loop {
            let feedback = match step {
                Step::Finished(f) => break f,
                Step::Run(Action::Task { id }) => {
                    let failed = engine.failed();
                    let name = self.def.task_name(id);
                    let mut cx =
                        self.context(&event, failed, &mut resource, &mut scratch, deadline, name);
                    match self.def.task(id).run(&mut cx).await {
                        Ok(()) => Feedback::Done,
                        Err(e) => Feedback::Failed(e),
                    }
                }
                Step::Run(Action::Condition { id }) => {
                    let failed = engine.failed();
                    let name = self.def.condition_name(id);
                    let mut cx =
                        self.context(&event, failed, &mut resource, &mut scratch, deadline, name);
                    match self.def.condition(id).check(&mut cx).await {
                        Ok(b) => Feedback::Checked(b),
                        Err(e) => Feedback::Failed(e),
                    }
                }
                Step::Run(Action::Persist { from, to }) => {
                    self.persist(
                        &mut resource,
                        self.def.state_name(from),
                        self.def.state_name(to),
                    )
                    .await
                }
            };
            step = engine.resume(feedback);
        };

        report.final_state = self.def.state_name(engine.state()).to_owned();
        report.passed_states = engine
            .passed()
            .iter()
            .map(|s| self.def.state_name(*s).to_owned())
            .collect();
        report.tasks = engine.trace().iter().map(|s| (*s).to_owned()).collect();
        report.errors = engine.errors().to_vec();
        report.stopped_by = finish.reason;
        report.conflict = finish.conflict;
        if let Some(found) = &report.conflict {
            tracing::warn!(found = %found, "another invocation moved the node first; stopping");
        }
        match finish.error {
            Some(e) => error_report(report, &e.into()),
            None => report,
        }
    }

    /// What a task or condition named `name` sees.
    fn context<'a>(
        &'a self,
        event: &'a Event,
        event_failed: bool,
        resource: &'a mut Resource,
        scratch: &'a mut Scratch,
        deadline: Deadline,
        name: &'a str,
    ) -> TaskContext<'a> {
        TaskContext {
            event,
            event_failed,
            resource,
            scratch,
            services: &self.services,
            deadline,
            name,
        }
    }

    /// Takes the command record of a status event. A command this library sent (its first
    /// line is [`COMMAND_MARKER`]) may report before the sender has stored its record — SSM
    /// is fast — so its record is waited for, bounded by `record_wait` and the deadline.
    async fn take_record(
        &self,
        cmd: &crate::event::CommandStatus,
        deadline: Deadline,
    ) -> Result<Option<crate::store::CommandRecord>, StoreError> {
        let commands = &self.services.commands;
        if let Some(record) = commands.take_command(&cmd.command_id).await? {
            return Ok(Some(record));
        }
        if cmd.commands.first().map(String::as_str) != Some(COMMAND_MARKER) {
            return Ok(None);
        }
        let clock = &self.services.clock;
        let until = deadline.min_with(clock.now(), self.options.record_wait);
        tracing::info!(command = %cmd.command_id, "our command, but no record yet: waiting for it");
        loop {
            let now = clock.now();
            if now >= until {
                return Ok(None);
            }
            let left = until.duration_since(now).unwrap_or_default();
            clock.sleep(RECORD_POLL.min(left)).await;
            if let Some(record) = commands.take_command(&cmd.command_id).await? {
                return Ok(Some(record));
            }
        }
    }

    /// Waits for cloud-init when needed, then finds the current state and applies the guards.
    async fn prepare(
        &self,
        event: &Event,
        resource: &mut Resource,
        deadline: Deadline,
    ) -> Result<StateId, DispatchError> {
        self.wait_for_initial(event, resource, deadline).await?;
        let state_name = resource
            .node
            .as_ref()
            .map_or_else(|| event.name.clone(), |n| n.status.clone());
        self.guard(event, resource, &state_name)?;
        match self.def.state_id(&state_name) {
            Some(state) if !self.def.candidates(state).is_empty() => Ok(state),
            _ => Err(DispatchError::Guard(format!(
                "no trigger for state {state_name:?}"
            ))),
        }
    }

    /// Writes a state change with a compare-and-set, or keeps it in memory for a resource
    /// that is not persisted.
    async fn persist(&self, resource: &mut Resource, from: &str, to: &str) -> Feedback {
        let Some(node) = resource.node.as_mut() else {
            return Feedback::Persisted;
        };
        if resource.persisted {
            match self.services.nodes.set_status(&node.id, from, to).await {
                Ok(()) => {}
                Err(StoreError::Conflict { found, .. }) => return Feedback::Conflict { found },
                Err(e) => {
                    return Feedback::PersistFailed {
                        retryable: e.is_retryable(),
                        message: e.to_string(),
                    };
                }
            }
        }
        node.status = to.to_owned();
        Feedback::Persisted
    }

    /// SPEC 4.1.4: a launching lifecycle event or a command event that finds its node new but
    /// not yet in the initial state waits for it, bounded by the timeout and the deadline,
    /// sending lifecycle heartbeats while it waits.
    async fn wait_for_initial(
        &self,
        event: &Event,
        resource: &mut Resource,
        deadline: Deadline,
    ) -> Result<(), DispatchError> {
        let initial = self.def.initial_state();
        let must_wait = |n: &Node| n.is_new() && n.status != initial;
        let Some(node) = resource.node.as_ref() else {
            return Ok(());
        };
        // A command event resuming a termination is terminating: it never waits either.
        let applies = !event.is_terminating()
            && ((event.is_launching() && event.source == Source::AutoScaling)
                || event.is_command());
        if !applies || !must_wait(node) {
            return Ok(());
        }
        let clock = &self.services.clock;
        let started = clock.now();
        let until = deadline.min_with(started, self.options.wait_timeout);
        let mut last_beat = started;
        tracing::info!(node = %node.id, status = %node.status, initial = %initial, "waiting for cloud-init");
        loop {
            let now = clock.now();
            if now >= until {
                let node = resource
                    .node
                    .as_ref()
                    .map_or_else(Default::default, |n| n.id.clone());
                let status = resource
                    .node
                    .as_ref()
                    .map_or_else(Default::default, |n| n.status.clone());
                return Err(DispatchError::WaitTimeout {
                    node,
                    status,
                    initial: initial.to_owned(),
                    waited_secs: now.duration_since(started).unwrap_or_default().as_secs(),
                });
            }
            let left = until.duration_since(now).unwrap_or_default();
            clock.sleep(self.options.poll_interval.min(left)).await;
            let id = resource
                .node
                .as_ref()
                .map_or_else(String::new, |n| n.id.clone());
            let fresh = self
                .services
                .nodes
                .get(&id)
                .await?
                .unwrap_or_else(|| Node::absent(id.clone()));
            if !must_wait(&fresh) {
                tracing::info!(node = %fresh.id, status = %fresh.status, "cloud-init finished");
                resource.node = Some(fresh);
                return Ok(());
            }
            resource.node = Some(fresh);
            let now = clock.now();
            if !self.options.heartbeat_interval.is_zero()
                && now.duration_since(last_beat).unwrap_or_default()
                    >= self.options.heartbeat_interval
                && let Some(lc) = &event.lifecycle
            {
                last_beat = now;
                if let Err(e) = self.services.lifecycle.heartbeat(lc).await {
                    tracing::warn!(error = %e, "lifecycle heartbeat failed while waiting");
                }
            }
        }
    }

    /// SPEC 4.1.5: the launch and termination guards.
    fn guard(&self, event: &Event, resource: &Resource, state: &str) -> Result<(), DispatchError> {
        let (Some(lc), Some(node)) = (&event.lifecycle, &resource.node) else {
            return Ok(());
        };
        if event.source != Source::AutoScaling {
            return Ok(());
        }
        if event.is_launching() && !node.is_new() && !lc.is_from_warm_pool() {
            return Err(DispatchError::Guard(format!(
                "only new nodes can be launched: node {} is in state {state:?}",
                node.id
            )));
        }
        if event.is_terminating() && node.is_new() {
            return Err(DispatchError::Guard(format!(
                "new nodes cannot terminate: node {} is in state {state:?}",
                node.id
            )));
        }
        Ok(())
    }
}

fn error_report(mut report: Report, e: &DispatchError) -> Report {
    tracing::error!(error = %e, retryable = e.is_retryable(), "invocation failed");
    report.stopped_by = StopReason::Error;
    report.error = Some(e.to_string());
    report.error_class = Some(e.class());
    report.retryable = e.is_retryable();
    report
}
