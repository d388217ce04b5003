//! The dispatcher: the driver of the core's two machines. It performs what the [`Loader`]
//! asks (read a record, begin the delivery, read and claim a node, sleep, heartbeat) and then
//! what the [`Engine`] asks (run a task, evaluate a condition, persist a state with a
//! compare-and-set), through the [`Services`], and feeds every result back; at the end it
//! settles what SPEC 9 says an ending settles (the delivery record, the lease, the command
//! record). It decides nothing itself.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use lifecycle::config::report::ReportSpec;
use lifecycle::config::template::TransitionFacts;
use lifecycle::config::{StateId, TaskKind};
use lifecycle::delivery::{
    Begin, Claiming, EntryWrite, Lease, NodeWrite, Resume, action_due, epoch_ms, epoch_secs,
    too_near,
};
use lifecycle::engine::{Action, EngineError, EventFacts, Feedback, Step, StopReason};
use lifecycle::event::EventError;
use lifecycle::event::Source;
use lifecycle::load::{LoadError, LoadRules, LoadStep, Loaded, Loader};
use lifecycle::node::{ATTR_CHANGED_AT, ATTR_TRANSIENT_ATTEMPTS, ATTR_TYPE, TYPE_UNKNOWN};
use lifecycle::time::parse_utc;
use lifecycle::{
    ConfigErrors, Deadline, Definition, Engine, Event, Fault, FaultKind, Node, Parsed,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::Instrument;

use crate::capability::Services;
use crate::report::Report;
use crate::tasks::{Bound, Registry, Resource, Scratch, TaskContext};

/// Tunables of the dispatcher: the loading rules (SPEC 4.1) — how long and how often to wait
/// for cloud-init and for a command record, heartbeats, default metadata. Everything else the
/// dispatcher does is decided by the definition.
pub type Options = LoadRules;

/// An error that ends an invocation before or outside the trigger loop.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The event is malformed.
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// The state store failed, or holds a malformed item, while loading.
    #[error(transparent)]
    Store(#[from] Fault),
    /// Loading refused the event, or a wait for cloud-init ran out.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The engine ended with an error.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl DispatchError {
    /// What a retry can do: the one classification every exit code and batch response
    /// follows.
    pub fn kind(&self) -> FaultKind {
        match self {
            DispatchError::InvalidEvent(_) => FaultKind::Invalid,
            DispatchError::Store(f) => f.kind(),
            DispatchError::Load(
                LoadError::WaitTimeout { .. } | LoadError::Deadline { .. } | LoadError::Busy { .. },
            ) => FaultKind::Transient,
            DispatchError::Load(_) => FaultKind::Permanent,
            DispatchError::Engine(e) => e.kind(),
        }
    }

    /// `deadline` when the invocation's deadline ended processing, `error` otherwise.
    pub fn stop_reason(&self) -> StopReason {
        match self {
            DispatchError::Load(LoadError::Deadline { .. })
            | DispatchError::Engine(EngineError::Deadline { .. }) => StopReason::Deadline,
            _ => StopReason::Error,
        }
    }
}

/// Drives events through a [`Definition`] with a set of [`Services`].
#[derive(Debug, Clone)]
pub struct Dispatcher {
    def: Arc<Definition>,
    bound: Bound,
    services: Services,
    options: Options,
}

impl Dispatcher {
    /// A dispatcher: every name of `def` bound once — built-in and declared ones to the
    /// runtime's tasks, external ones to `registry`. The definition's `redact:` words are
    /// added to the services' redactor (whatever the embedding program set stays).
    ///
    /// # Errors
    /// Every use of an external name `registry` lacks (SPEC 3.1).
    pub fn new(
        def: Arc<Definition>,
        registry: &Registry,
        mut services: Services,
        options: Options,
    ) -> Result<Self, ConfigErrors> {
        let bound = Bound::new(&def, registry)?;
        services.redactor = services.redactor.extended(def.redact_words());
        Ok(Dispatcher {
            def,
            bound,
            services,
            options,
        })
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
            event = %event.name,
            event_id = event.id.as_deref().unwrap_or(""),
        );
        self.handle_inner(event, deadline).instrument(span).await
    }

    async fn handle_inner(&self, event: Event, deadline: Deadline) -> Report {
        let mut report = Report::stopped(StopReason::Error);
        report.event_id = event.id.clone();
        report.warnings = event.warnings.clone();

        // The invocation's token: every conditional write carries it (SPEC 9).
        let lease = Lease {
            owner: new_token(),
            until: deadline.min_with(self.services.clock.now(), self.options.lease),
        };

        // 4.1: loading, as the loader decides. Heartbeats sent (while loading, and while
        // tasks run) push the lifecycle action's timeout back: the last one's time is kept.
        let beat = AtomicU64::new(0);
        let mut loader = Loader::new(&self.def, event, self.options.clone(), deadline);
        let loading = self.load(&mut loader, &mut report, &lease, &beat).await;
        let mut loaded = loader.into_parts();
        let state = match loading {
            Ok(Some(state)) => state,
            Ok(None) => {
                let last = (NodeWrite::default(), None);
                self.settle(&mut loaded, &lease, &report, (false, true), last)
                    .await;
                return report;
            }
            Err(e) => {
                let report = error_report(report, &e);
                self.publish_summary(&loaded.event, loaded.node.as_ref(), &report)
                    .await;
                let last = (NodeWrite::default(), None);
                self.settle(&mut loaded, &lease, &report, (false, true), last)
                    .await;
                return report;
            }
        };
        if let Some(record) = &loaded.record {
            tracing::info!(command = %record.id, event = %record.event_name, "command record read");
        }
        let mut event = loaded.event.clone();
        // The hook's timeout is read when it is needed: before a task that may record it (a
        // command's record carries it), or for a transient fault (is it too near?).
        let mut hook_timeout: Option<Option<Duration>> = None;
        let mut resource = Resource {
            persisted: loaded.node.is_some(),
            node: loaded.node.clone(),
        };
        report.initial_state = self.def.state_name(state).to_owned();
        report.final_state = report.initial_state.clone();

        // 4.2: the loop, as the engine decides. A transient fault ends the record retryable
        // until the node's deliveries in a row reach max_transient_attempts (SPEC 9).
        let attempts = resource.node.as_ref().map_or(0, Node::transient_attempts);
        let facts = EventFacts {
            is_command: event.is_command(),
            status_successful: event.status_successful(),
            transient_retry: attempts.saturating_add(1) < self.options.max_transient_attempts,
        };
        let mut engine = self
            .engine(state, loaded.resume.as_ref(), facts)
            .deferring();
        let mut scratch = Scratch::default();
        let mut step = engine.start();
        let finish = loop {
            // The deadline is checked before every task and condition (a state write always
            // goes through): every state entered so far is persisted — now, or by the final
            // write — so a retry resumes from the current state.
            let work = matches!(
                step,
                Step::Run(Action::Task { .. } | Action::Condition { .. })
            );
            if work && deadline.passed(self.services.clock.now()) {
                step = engine.deadline_reached();
            }
            // Tasks and conditions see the state the engine is in, written or not yet.
            if work && let Some(node) = resource.node.as_mut() {
                self.def
                    .state_name(engine.state())
                    .clone_into(&mut node.status);
            }
            let feedback = match step {
                Step::Finished(f) => break f,
                Step::Run(Action::Task { id }) => {
                    if hook_timeout.is_none() && !matches!(self.def.task(id), TaskKind::Builtin(_))
                    {
                        self.timeout_once(&mut hook_timeout, &mut event, &beat)
                            .await;
                    }
                    let name = self.def.task_name(id);
                    let transition = self.transition_facts(&engine);
                    let mut cx = self.context(
                        &event,
                        engine.failed(),
                        &mut resource,
                        &mut scratch,
                        (deadline, &lease, transition),
                        name,
                    );
                    let work = self.bound.task(id).run(&mut cx);
                    match keeping_alive(&self.services, &event, &self.options, &beat, work).await {
                        Ok(()) => Feedback::Done,
                        Err(e) => Feedback::Failed(
                            self.near_timeout(e, &mut event, &mut hook_timeout, &beat)
                                .await,
                        ),
                    }
                }
                Step::Run(Action::Condition { id }) => {
                    let name = self.def.condition_name(id);
                    let transition = self.transition_facts(&engine);
                    let mut cx = self.context(
                        &event,
                        engine.failed(),
                        &mut resource,
                        &mut scratch,
                        (deadline, &lease, transition),
                        name,
                    );
                    let checked = self.bound.condition(id).check(&mut cx).await;
                    match checked {
                        Ok(b) => Feedback::Checked(b),
                        Err(e) => Feedback::Failed(
                            self.near_timeout(e, &mut event, &mut hook_timeout, &beat)
                                .await,
                        ),
                    }
                }
                Step::Run(Action::Persist { from, to }) => {
                    // A deferred state written before a task whose repetition matters, with
                    // the transition that entered it, so a redelivery after a crash knows the
                    // write was its own and resumes there (SPEC 9).
                    let marker = self.marker(&engine);
                    self.persist(
                        &mut resource,
                        &event,
                        (self.def.state_name(from), self.def.state_name(to)),
                        (&lease.owner, &loaded, marker),
                    )
                    .await
                }
            };
            step = engine.resume(feedback);
        };

        // Triggers with a report of their own: those that fired, and those that failed.
        let mut reporting: Vec<(&ReportSpec, TransitionFacts)> = engine
            .fired()
            .filter_map(|(g, from, dest)| {
                let facts = TransitionFacts {
                    trigger: g.name.clone(),
                    source: self.def.state_name(from).to_owned(),
                    dest: dest.map(|d| self.def.state_name(d).to_owned()),
                    error: None,
                };
                Some((g.report.as_ref()?, facts))
            })
            .collect();
        for e in engine.errors() {
            let spec = self
                .def
                .candidates(engine.start_state())
                .iter()
                .chain(engine.passed().iter().flat_map(|s| self.def.candidates(*s)))
                .map(|c| self.def.resolve(*c).1)
                .find(|g| g.name == e.trigger)
                .and_then(|g| g.report.as_ref());
            if let Some(spec) = spec
                && !reporting.iter().any(|(_, t)| t.trigger == e.trigger)
            {
                let facts = TransitionFacts {
                    trigger: e.trigger.clone(),
                    ..TransitionFacts::default()
                };
                reporting.push((spec, facts));
            }
        }
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
        let transient = matches!(finish.error.as_deref(), Some(EngineError::Task { error, .. }) if error.is_transient());
        report.transient_attempts = if transient {
            attempts.saturating_add(1)
        } else {
            0
        };
        let report = match finish.error {
            Some(e) => error_report(report, &(*e).into()),
            None => report,
        };
        self.publish_summary(&event, resource.node.as_ref(), &report)
            .await;
        for (spec, facts) in reporting {
            self.publish_trigger_report(spec, &event, resource.node.as_ref(), &report, facts)
                .await;
        }
        let commit_open = engine.commit_open();
        let last = self.last_write(&engine, &resource, &event, attempts, &report);
        let marker = self.marker(&engine);
        if loaded.node.is_some() && !resource.persisted {
            // `remove_from_db` replaced the node, its lease and its delivery entry with a
            // tombstone: nothing is left to write or release.
            loaded.claim_created = None;
        }
        self.settle(
            &mut loaded,
            &lease,
            &report,
            (true, commit_open),
            (last, marker),
        )
        .await;
        report
    }

    /// The transition that entered the engine's current state in this processing, as the
    /// marker a redelivery resumes from: its `after` tasks still to run while the commit is
    /// open, done otherwise.
    fn marker(&self, engine: &Engine<'_>) -> Option<Resume> {
        let (from, trigger, to) = engine.entered_by()?;
        Some(Resume {
            from: self.def.state_name(from).to_owned(),
            trigger: trigger.to_owned(),
            to: self.def.state_name(to).to_owned(),
            after_done: !engine.commit_open(),
        })
    }

    /// What the final write of a node processed by the engine carries besides the release and
    /// the delivery entry: the state reached if it is not written yet (with `ItemType` and
    /// `ChangedAt`), and the count of transient faults in a row when it changed. Empty for a
    /// node this processing removed.
    fn last_write(
        &self,
        engine: &Engine<'_>,
        resource: &Resource,
        event: &Event,
        attempts_before: u32,
        report: &Report,
    ) -> NodeWrite {
        let mut last = NodeWrite::default();
        let Some(node) = resource.node.as_ref().filter(|_| resource.persisted) else {
            return last;
        };
        if let Some((stored, now)) = engine.unwritten() {
            last.status = Some((
                self.def.state_name(stored).to_owned(),
                self.def.state_name(now).to_owned(),
            ));
            last.properties = self.written_with(node, event);
        }
        if report.transient_attempts != attempts_before {
            last.properties.insert(
                ATTR_TRANSIENT_ATTEMPTS.to_owned(),
                report.transient_attempts.into(),
            );
        }
        last
    }

    /// The properties every state write carries: when it changed and, for a node the table
    /// does not type yet (created by this event, or by a status write from cloud-init), its
    /// `ItemType` — the lifecycle metadata's `type`, else `unknown` — so node queries see it.
    fn written_with(
        &self,
        node: &Node,
        event: &Event,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut props = serde_json::Map::new();
        if node.item_type().is_none() {
            props.insert(ATTR_TYPE.to_owned(), item_type(event).into());
        }
        props.insert(
            ATTR_CHANGED_AT.to_owned(),
            epoch_ms(self.services.clock.now()).into(),
        );
        props
    }

    /// A trigger's own report (`report:` on the trigger): one message when it fired or failed
    /// — the trigger, the state it left, where it leads, its errors, the node (masked).
    async fn publish_trigger_report(
        &self,
        spec: &ReportSpec,
        event: &Event,
        node: Option<&Node>,
        report: &Report,
        mut facts: TransitionFacts,
    ) {
        let errors: Vec<_> = report
            .errors
            .iter()
            .filter(|e| e.trigger == facts.trigger)
            .collect();
        facts.error = errors.last().map(|e| e.message.clone());
        let failed = errors.iter().any(|e| !e.ignored);
        let default_subject = format!(
            "{}: {} -> {}{}",
            facts.trigger,
            facts.source,
            facts.dest.as_deref().unwrap_or("(internal)"),
            if failed { " (failed)" } else { "" }
        );
        let message = serde_json::json!({
            "event": report.event.as_deref().unwrap_or(&event.name),
            "event_id": report.event_id,
            "node": self.masked(node),
            "trigger": facts.trigger,
            "source": facts.source,
            "dest": facts.dest,
            "errors": errors,
            "final_state": report.final_state,
            "stopped_by": report.stopped_by,
            "failed": failed,
        });
        self.publish(spec, event, node, Some(&facts), default_subject, &message)
            .await;
    }

    /// A node as reports show it: its properties with secrets masked.
    fn masked(&self, node: Option<&Node>) -> serde_json::Value {
        node.map_or(serde_json::Value::Null, |n| {
            serde_json::json!({
                "Ident": n.id,
                "ItemStatus": n.status,
                "properties": self.services.redactor.for_node(n).redact_map(&n.properties),
            })
        })
    }

    /// Renders `spec`'s topic and subject (`default_subject` without one) and publishes
    /// `message`; best effort: what fails is logged.
    async fn publish(
        &self,
        spec: &ReportSpec,
        event: &Event,
        node: Option<&Node>,
        transition: Option<&TransitionFacts>,
        default_subject: String,
        message: &serde_json::Value,
    ) {
        let aliases = std::collections::BTreeMap::new();
        let values = lifecycle::config::template::Values {
            event,
            node,
            aliases: &aliases,
            redactor: &self.services.redactor,
            transition,
        };
        let topic = match spec.topic_arn.render(&values) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "report: the topic could not be rendered; nothing sent");
                return;
            }
        };
        let subject = match &spec.subject {
            Some(t) => t.render(&values).map(|s| s.shown().to_owned()),
            None => Ok(default_subject),
        };
        let subject = crate::tasks::declared::sns_report::subject(&subject.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "report: the subject could not be rendered; using the event's name");
            event.name.clone()
        }));
        if let Err(e) = self
            .services
            .reporter
            .publish(&topic, &subject, &message.to_string())
            .await
        {
            tracing::warn!(error = %e.scrubbed([&topic]), "report: the message could not be published");
        }
    }

    /// The built-in reporting (SPEC 5, `report:`): after an event that moved its node or met
    /// an error (ignored ones included), one summary to the topic — the event, the node
    /// with its properties (secrets masked), the states passed, the tasks run, every error
    /// with its trigger and task, how processing stopped. Best effort: a failed publish is
    /// logged, and changes nothing.
    async fn publish_summary(&self, event: &Event, node: Option<&Node>, report: &Report) {
        let Some(spec) = self.def.report() else {
            return;
        };
        let failed = report.error.is_some() || report.errors.iter().any(|e| !e.ignored);
        // Nothing moved and nothing failed for good: no news (a retryable end with nothing
        // done — another invocation busy with the node, say — comes back anyway).
        let quiet = report.passed_states.is_empty() && report.errors.is_empty();
        if quiet && (report.error.is_none() || report.retryable) {
            return;
        }
        let default_subject = format!(
            "{}: {} {} -> {}{}",
            report.event.as_deref().unwrap_or(&event.name),
            report.node.as_deref().unwrap_or("-"),
            report.initial_state,
            report.final_state,
            if failed { " (failed)" } else { "" }
        );
        let message = serde_json::json!({
            "event": report.event.as_deref().unwrap_or(&event.name),
            "event_id": report.event_id,
            "node": self.masked(node),
            "initial_state": report.initial_state,
            "final_state": report.final_state,
            "passed_states": report.passed_states,
            "tasks": report.tasks,
            "errors": report.errors,
            "error": report.error,
            "stopped_by": report.stopped_by,
            "failed": failed,
        });
        self.publish(spec, event, node, None, default_subject, &message)
            .await;
    }

    /// The engine for an event starting in `state`: one that resumes the transition an
    /// earlier, dead processing of the same event committed — its `after` tasks first — when
    /// the node is in that transition's destination; a fresh one otherwise.
    fn engine(&self, state: StateId, resume: Option<&Resume>, facts: EventFacts) -> Engine<'_> {
        // A marker whose `after` tasks all ran: past the guards, afresh from the state.
        let resumed = resume.filter(|r| !r.after_done).and_then(|r| {
            let from = self.def.state_id(&r.from)?;
            let to = self.def.state_id(&r.to).filter(|to| *to == state)?;
            Engine::after_commit(&self.def, from, &r.trigger, to, facts)
        });
        resumed.unwrap_or_else(|| Engine::new(&self.def, state, facts))
    }

    /// Reads the hook's heartbeat timeout once, into `slot` (`None` inside for an event
    /// without a lifecycle action, or when it cannot be read: then only
    /// `max_transient_attempts` limits retries), after recording in the event's lifecycle data
    /// when the action is due — from a command record, or the event's time plus the timeout —
    /// so the records of commands it sends carry it.
    async fn timeout_once(
        &self,
        slot: &mut Option<Option<Duration>>,
        event: &mut Event,
        beat: &AtomicU64,
    ) -> Option<Duration> {
        if let Some(known) = *slot {
            return known;
        }
        let timeout = self.action_timeout(event, beat).await;
        *slot = Some(timeout);
        timeout
    }

    async fn action_timeout(&self, event: &mut Event, beat: &AtomicU64) -> Option<Duration> {
        let lc = event.lifecycle.as_ref()?;
        let timeout = match self
            .services
            .lifecycle
            .heartbeat_timeout(&lc.auto_scaling_group, &lc.hook_name)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the hook's heartbeat timeout; retries are limited by max_transient_attempts alone");
                None
            }
        };
        let from_event = (event.source == Source::AutoScaling && event.command.is_none())
            .then(|| event.time.as_deref().and_then(parse_utc))
            .flatten()
            .zip(timeout)
            .map(|(at, t)| epoch_secs(at + t));
        let last_beat = last_beat(beat);
        if let Some(lc) = event.lifecycle.as_mut() {
            lc.due_at = action_due(lc.due_at.or(from_event), last_beat, timeout);
        }
        timeout
    }

    /// A transient fault near the lifecycle action's timeout becomes a permanent one: a retry
    /// would likely come too late, so failure handling sends the configured result now
    /// (SPEC 9).
    async fn near_timeout(
        &self,
        fault: Fault,
        event: &mut Event,
        timeout: &mut Option<Option<Duration>>,
        beat: &AtomicU64,
    ) -> Fault {
        if !fault.is_transient() || event.lifecycle.is_none() {
            return fault;
        }
        let timeout = self.timeout_once(timeout, event, beat).await;
        let Some(lc) = &event.lifecycle else {
            return fault;
        };
        let last_beat = last_beat(beat);
        let due = action_due(lc.due_at, last_beat, timeout);
        match too_near(due, self.services.clock.now(), self.options.action_margin) {
            Some(left) => {
                tracing::warn!(error = %fault, left_secs = left, "transient error near the lifecycle action's timeout: handled now, not retried");
                Fault::permanent(format!(
                    "{fault} (not retried: the lifecycle action times out in {left} s)"
                ))
            }
            None => fault,
        }
    }

    /// What an ending settles (SPEC 9), in this order, each best effort — what fails here is
    /// logged, and expires on its own: the node gets its final write (`last`: the state
    /// reached, if not written yet, and its properties; `marker`: the transition that entered
    /// it, for a retry to resume), which releases the lease and — for a
    /// lifecycle event — ends its delivery entry on the node in the same write; the command
    /// record is consumed when the engine ran and the end is not retryable; a delivery record
    /// of its own is marked done (remembered for `remember`), or given up when the end is
    /// retryable, so the retry runs (and resumes a transition this processing committed).
    async fn settle(
        &self,
        loaded: &mut Loaded,
        lease: &Lease,
        report: &Report,
        (ran, keep_resume): (bool, bool),
        (mut last, marker): (NodeWrite, Option<Resume>),
    ) {
        let retry = report.retryable;
        let now = self.services.clock.now();
        let ending = if retry {
            // The transition this processing entered, for the retry to resume; without one,
            // the marker the delivery holds stays.
            EntryWrite::Forget {
                now,
                resume: marker,
            }
        } else {
            let outcome = match report.final_state.as_str() {
                "" => report.stopped_by.to_string(),
                state => format!("{} in {state}", report.stopped_by),
            };
            let expires = now + self.options.remember;
            EntryWrite::Done { outcome, expires }
        };
        let key = loaded.delivery.take();
        if loaded.claim_created.is_some()
            && let Some(node) = &loaded.node
        {
            last.delivery = key
                .clone()
                .filter(|_| loaded.delivery_on_node)
                .map(|k| (k, ending.clone()));
            last.prune = std::mem::take(&mut loaded.stale);
            last.release = true;
            if let Err(e) = self
                .services
                .nodes
                .write(&node.id, &lease.owner, &last)
                .await
            {
                tracing::warn!(node = %node.id, error = %e, "could not write the node's last state and release it; the lease ends at the deadline");
            }
        }
        // After the node's write, never before: a crash in between leaves the record for the
        // redelivery, which finds the node moved on; the other way round, the state reached
        // would be lost with the record.
        if ran
            && !retry
            && let Some(record) = loaded.record.take()
        {
            match self.services.commands.delete_command(&record.id).await {
                Ok(()) => tracing::info!(command = %record.id, "command record consumed"),
                Err(e) => {
                    tracing::warn!(command = %record.id, error = %e, "could not consume the command record; it expires")
                }
            }
        }
        let Some(key) = key.filter(|_| !loaded.delivery_on_node) else {
            return;
        };
        let settled = match ending {
            EntryWrite::Forget {
                now,
                resume: Some(marker),
            } => {
                // The transition this processing entered goes on the record, for the retry
                // to resume (its state may have been written only now, by the final write).
                match self
                    .services
                    .deliveries
                    .mark(&key, &lease.owner, &marker)
                    .await
                {
                    Ok(()) => {
                        self.services
                            .deliveries
                            .forget(&key, &lease.owner, now, true)
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            EntryWrite::Forget { now, resume: None } => {
                self.services
                    .deliveries
                    .forget(&key, &lease.owner, now, keep_resume)
                    .await
            }
            EntryWrite::Done { outcome, expires } => {
                self.services
                    .deliveries
                    .finish(&key, &lease.owner, &outcome, expires)
                    .await
            }
            EntryWrite::Mark(_) => Ok(()),
        };
        if let Err(e) = settled {
            tracing::warn!(delivery = %key, error = %e, "could not settle the delivery record; it expires at the deadline");
        }
    }

    /// What a task or condition named `name` sees.
    fn context<'a>(
        &'a self,
        event: &'a Event,
        event_failed: bool,
        resource: &'a mut Resource,
        scratch: &'a mut Scratch,
        (deadline, lease, transition): (Deadline, &'a Lease, Option<TransitionFacts>),
        name: &'a str,
    ) -> TaskContext<'a> {
        TaskContext {
            event,
            event_failed,
            resource,
            scratch,
            services: &self.services,
            deadline,
            lease,
            rules: &self.options,
            transition,
            name,
        }
    }

    /// The transition the engine is running, for `{transition.FIELD}` placeholders.
    fn transition_facts(&self, engine: &Engine<'_>) -> Option<TransitionFacts> {
        let (trigger, from, dest) = engine.current_transition()?;
        Some(TransitionFacts {
            trigger: trigger.to_owned(),
            source: self.def.state_name(from).to_owned(),
            dest: dest.map(|d| self.def.state_name(d).to_owned()),
            error: engine.errors().last().map(|e| e.message.clone()),
        })
    }

    /// Performs what the loader asks until it is done: `Some(state)` to process from, `None`
    /// when the event is not supported (the report says why).
    async fn load(
        &self,
        loader: &mut Loader<'_>,
        report: &mut Report,
        lease: &Lease,
        beat: &AtomicU64,
    ) -> Result<Option<lifecycle::config::StateId>, DispatchError> {
        let clock = &self.services.clock;
        loop {
            match loader.poll() {
                LoadStep::ReadRecord { command_id } => {
                    let record = self
                        .services
                        .commands
                        .get_command(&command_id, clock.now())
                        .await?;
                    loader.record_read(record, clock.now());
                }
                LoadStep::BeginDelivery { key } => {
                    let begin = self
                        .services
                        .deliveries
                        .begin(&key, lease, clock.now())
                        .await?;
                    // `begin` wrote a fresh record: the transition an earlier processing
                    // committed goes on it again, so that should this processing end
                    // retryable too (the same `after` task still failing), its retry resumes
                    // the transition as well. Best effort: without it, this processing still
                    // resumes.
                    if let Begin::Resume(resume) = &begin
                        && let Err(e) = self
                            .services
                            .deliveries
                            .mark(&key, &lease.owner, resume)
                            .await
                    {
                        tracing::warn!(delivery = %key, error = %e, "could not record the resumed transition again");
                    }
                    loader.delivery_begun(begin, clock.now());
                }
                LoadStep::ReadNode { id } => {
                    report.node = Some(id.clone());
                    let node = self.services.nodes.get(&id).await?;
                    loader.node_read(node, clock.now());
                }
                LoadStep::Claim {
                    id,
                    delivery,
                    waiting,
                } => {
                    report.node = Some(id.clone());
                    let with = Claiming {
                        delivery: delivery.as_deref(),
                        waiting: waiting.as_deref(),
                    };
                    let claim = self
                        .services
                        .nodes
                        .claim(&id, lease, with, clock.now())
                        .await?;
                    loader.claimed(claim, clock.now());
                }
                LoadStep::Heartbeat => {
                    if let Some(lc) = &loader.event().lifecycle {
                        match self.services.lifecycle.heartbeat(lc).await {
                            Ok(_) => beat.store(epoch_secs(clock.now()), Ordering::Relaxed),
                            Err(e) => {
                                tracing::warn!(error = %e, "lifecycle heartbeat failed while waiting")
                            }
                        }
                    }
                    loader.heartbeat_sent(clock.now());
                }
                LoadStep::Sleep { until } => {
                    let before = clock.now();
                    clock.sleep_until(until).await;
                    let now = clock.now();
                    let waited = now.duration_since(before).unwrap_or_default();
                    report.waited_ms += u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
                    loader.woke(now);
                }
                LoadStep::Ready { state } => {
                    report.event = Some(loader.event().name.clone());
                    return Ok(Some(state));
                }
                LoadStep::NotSupported { reason } => {
                    tracing::info!(%reason, "event not supported; acknowledged");
                    report.stopped_by = StopReason::NotSupported;
                    report.event = Some(loader.event().name.clone());
                    report.not_supported = Some(reason);
                    return Ok(None);
                }
                LoadStep::Duplicate { outcome } => {
                    report.stopped_by = StopReason::Duplicate;
                    report.event = Some(loader.event().name.clone());
                    report.duplicate = Some(outcome);
                    return Ok(None);
                }
                LoadStep::Failed { error } => {
                    report.event = Some(loader.event().name.clone());
                    report.initial_state = loader.current_state().to_owned();
                    report.final_state = report.initial_state.clone();
                    // Nothing has changed: the command record is still there for the retry.
                    return Err(error.into());
                }
            }
        }
    }

    /// Writes a deferred state change with a compare-and-set — with the marker of the
    /// transition that entered it, on the delivery entry — or keeps it in memory for a
    /// resource that is not persisted.
    async fn persist(
        &self,
        resource: &mut Resource,
        event: &Event,
        (from, to): (&str, &str),
        (owner, loaded, marker): (&str, &Loaded, Option<Resume>),
    ) -> Feedback {
        let Some(node) = resource.node.as_mut() else {
            return Feedback::Persisted;
        };
        if resource.persisted {
            let mut write = NodeWrite {
                status: Some((from.to_owned(), to.to_owned())),
                properties: self.written_with(node, event),
                ..NodeWrite::default()
            };
            if let (Some(key), Some(marker)) = (&loaded.delivery, marker) {
                if loaded.delivery_on_node {
                    write.delivery = Some((key.clone(), EntryWrite::Mark(marker)));
                } else if let Err(e) = self.services.deliveries.mark(key, owner, &marker).await {
                    return Feedback::PersistFailed(e);
                }
            }
            match self.services.nodes.write(&node.id, owner, &write).await {
                Ok(()) => {}
                Err(Fault::Conflict { found, .. }) => return Feedback::Conflict { found },
                Err(e) => return Feedback::PersistFailed(e),
            }
            node.properties.extend(write.properties);
        }
        node.status = to.to_owned();
        Feedback::Persisted
    }
}

/// Runs `work` — a task, which may wait on our own work: the SSM agent, a snapshot, the
/// scaling activity — while, for an event with a lifecycle action, a heartbeat keeps the
/// action alive every `heartbeat_interval` (SPEC 8). A task that ends before the first
/// interval sends none. A failed heartbeat is logged; the task goes on.
async fn keeping_alive<T>(
    services: &Services,
    event: &Event,
    options: &Options,
    beat: &AtomicU64,
    work: impl Future<Output = T>,
) -> T {
    let interval = options.heartbeat_interval;
    let Some(action) = event.lifecycle.as_ref().filter(|_| !interval.is_zero()) else {
        return work.await;
    };
    let beats = async {
        loop {
            services.clock.sleep(interval).await;
            match services.lifecycle.heartbeat(action).await {
                Ok(_) => {
                    beat.store(epoch_secs(services.clock.now()), Ordering::Relaxed);
                    tracing::info!(instance = %action.instance_id, "lifecycle heartbeat while a task runs")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lifecycle heartbeat failed while a task runs")
                }
            }
            // Let the task run between two heartbeats, whatever the clock does.
            yield_once().await;
        }
    };
    let mut work = std::pin::pin!(work);
    let mut beats = std::pin::pin!(beats);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = work.as_mut().poll(cx) {
            return Poll::Ready(done);
        }
        // The heartbeats never end: only the task decides when this is over.
        let _ = beats.as_mut().poll(cx);
        Poll::Pending
    })
    .await
}

/// The `ItemType` a node gets when the table has none for it: the lifecycle metadata's
/// `type` (as the original's hooks carry it), else `unknown`.
fn item_type(event: &Event) -> String {
    event
        .lifecycle
        .as_ref()
        .and_then(|l| l.metadata.get("type"))
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(TYPE_UNKNOWN)
        .to_owned()
}

/// The last heartbeat this invocation sent (epoch seconds), if any.
fn last_beat(beat: &AtomicU64) -> Option<u64> {
    Some(beat.load(Ordering::Relaxed)).filter(|b| *b > 0)
}

/// A token unique to one processing of one event: 128 random bits.
fn new_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// A future that is pending once, then ready.
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

fn error_report(mut report: Report, e: &DispatchError) -> Report {
    let kind = e.kind();
    let reason = e.stop_reason();
    if reason == StopReason::Deadline {
        tracing::warn!(error = %e, "deadline reached; the state so far is persisted");
    } else {
        tracing::error!(error = %e, kind = %kind, "invocation failed");
    }
    report.fail(e, kind);
    report.stopped_by = reason;
    report
}
