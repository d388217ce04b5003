//! Loading (SPEC 4.1) as decisions: which command record to read, whether the event was
//! delivered before (SPEC 9), which node to read, whether to wait for cloud-init and until
//! when, when to send a heartbeat, the claim of the node, and the guards.
//!
//! [`Loader`] is a sans-IO machine in the manner of `quinn-proto`: it never reads a clock or
//! sleeps. The driver asks [`Loader::poll`] what to do, does it, and answers with
//! [`Loader::record_read`], [`Loader::delivery_begun`], [`Loader::node_read`],
//! [`Loader::claimed`], [`Loader::heartbeat_sent`] or [`Loader::woke`], passing the time it
//! read; a [`LoadStep::Sleep`] names the instant the
//! machine wants to be woken. Every instant it asks for is bounded by the [`Deadline`] and by
//! the configured timeouts, so no wait outlives the invocation.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use lifecycle::{Deadline, Definition, Event};
//! use lifecycle::event::Source;
//! use lifecycle::load::{LoadRules, LoadStep, Loader};
//!
//! let def = Definition::from_yaml("- {source: backup, dest: null, triggers: [{name: run}]}").unwrap();
//! let event = Event::new(Source::Schedule, "backup");
//! let mut loader = Loader::new(&def, event, LoadRules::default(), Deadline::NONE);
//! match loader.poll() {
//!     LoadStep::Ready { state } => assert_eq!(def.state_name(state), "backup"),
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::config::{Definition, StateId};
use crate::delivery::{Begin, Claim, Resume, delivery_key, on_node};
use crate::event::{Event, Source, TERMINAL_COMMAND_STATUSES};
use crate::node::{CommandRecord, NEW_STATUSES, Node};
use crate::time::{Deadline, MIN_POLL};

/// The tunables of loading.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoadRules {
    /// How long a launching or command event waits at most for a new node to reach the
    /// initial state (cloud-init still running). Zero: do not wait — a node still waiting
    /// for cloud-init is then a timeout error at once.
    pub wait_timeout: Duration,
    /// How often the node is read again while waiting.
    pub poll_interval: Duration,
    /// While a lifecycle event waits, a heartbeat is sent this often (zero: never).
    pub heartbeat_interval: Duration,
    /// How long a status event of a command this library sent waits for the command's record
    /// when it arrives before the sender has stored it.
    pub record_wait: Duration,
    /// How often the record is looked for meanwhile.
    pub record_poll: Duration,
    /// Metadata merged under the event's `NotificationMetadata` (the event's keys win).
    pub default_metadata: Map<String, Value>,
    /// How many deliveries in a row may end with a transient fault of a task before the
    /// fault is handled as a permanent one, entering failure handling (SPEC 9; default 3).
    pub max_transient_attempts: u32,
    /// How long an event waits at most for another invocation that holds its node, or is
    /// processing the same event, before it ends retryable (SPEC 9; default 10 s). It looks
    /// again after one `record_poll`, then two, then every four.
    pub busy_wait: Duration,
    /// How long a lease lasts when the invocation has no deadline (the CLI; default 15 min).
    pub lease: Duration,
    /// How long a processed event is remembered, so a redelivery is recognised (default 24 h).
    pub remember: Duration,
    /// How long the tombstone of a removed node lasts (default 7 days).
    pub tombstone: Duration,
    /// A transient error within this long of the lifecycle action's timeout is handled at
    /// once instead of retried (SPEC 9; default 5 minutes).
    pub action_margin: Duration,
}

impl Default for LoadRules {
    fn default() -> Self {
        LoadRules {
            wait_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(60),
            record_wait: Duration::from_secs(10),
            record_poll: Duration::from_millis(500),
            default_metadata: Map::new(),
            max_transient_attempts: 3,
            busy_wait: Duration::from_secs(10),
            lease: Duration::from_secs(15 * 60),
            remember: Duration::from_secs(24 * 3600),
            tombstone: Duration::from_secs(7 * 24 * 3600),
            action_margin: Duration::from_secs(300),
        }
    }
}

/// A guard of SPEC 4.1.5 refused the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardRefusal {
    /// A launching lifecycle event for a node that is not new (and not leaving a warm pool).
    #[error("only new nodes can be launched: node {node} is in state {state:?}")]
    NotNew {
        /// The node.
        node: String,
        /// Its state.
        state: String,
    },
    /// A terminating lifecycle event for a node that is still new.
    #[error("new nodes cannot terminate: node {node} is in state {state:?}")]
    StillNew {
        /// The node.
        node: String,
        /// Its state.
        state: String,
    },
}

/// Why loading failed. Nothing has changed when it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
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
    /// A guard refused the event.
    #[error(transparent)]
    Guard(#[from] GuardRefusal),
    /// No transition leaves the current state.
    #[error("no trigger for state {state:?}")]
    NoTrigger {
        /// The state.
        state: String,
    },
    /// The invocation's deadline came while waiting; nothing changed, a retry waits again.
    #[error("the deadline came while waiting for {waiting_for}")]
    Deadline {
        /// What was waited for: cloud-init on a node, or a command record.
        waiting_for: String,
    },
    /// Another invocation holds the node, or is processing the same event, for longer than
    /// the wait allows; nothing changed, a retry tries again.
    #[error("{what}")]
    Busy {
        /// Who is busy, and until when.
        what: String,
    },
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadStep {
    /// Read the command record (it stays in the table until the event is processed); answer
    /// [`Loader::record_read`].
    ReadRecord {
        /// The SSM command id.
        command_id: String,
    },
    /// Begin the event's delivery record; answer [`Loader::delivery_begun`].
    BeginDelivery {
        /// The record's key ([`delivery_key`]).
        key: String,
    },
    /// Claim the node for this invocation (a conditional write with a lease), beginning the
    /// event's delivery entry on the node in the same write when `delivery` names it; answer
    /// [`Loader::claimed`].
    Claim {
        /// The instance id.
        id: String,
        /// The event's delivery key, when its delivery lives on the node
        /// ([`on_node`]).
        delivery: Option<String>,
        /// The statuses in which the node still waits for cloud-init, when the claim comes
        /// before the node was read (a launching lifecycle event): a node in one of them is
        /// not claimed, and loading waits for it ([`Claim::Waiting`]).
        waiting: Option<Vec<String>>,
    },
    /// Read the node (a consistent read); answer [`Loader::node_read`].
    ReadNode {
        /// The instance id.
        id: String,
    },
    /// Send a lifecycle heartbeat for the event's lifecycle action (a failure is only
    /// logged); answer [`Loader::heartbeat_sent`].
    Heartbeat,
    /// Sleep until this instant; answer [`Loader::woke`].
    Sleep {
        /// When to wake.
        until: SystemTime,
    },
    /// Loading is done: process the event from `state` ([`Loader::into_parts`]).
    Ready {
        /// The current state.
        state: StateId,
    },
    /// The event is acknowledged and not processed (SPEC 2.1, 2.5).
    NotSupported {
        /// What was seen.
        reason: String,
    },
    /// The event was processed already (SPEC 9): acknowledged, nothing changes.
    Duplicate {
        /// How the first processing ended.
        outcome: String,
    },
    /// Loading failed; nothing has changed (the command record is still in the table).
    Failed {
        /// Why.
        error: LoadError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing asked yet.
    Start,
    /// A read of the command record was asked for.
    Taking,
    /// No record yet for a status event of ours: sleep, then read again.
    RecordWait,
    /// The record question is settled; the delivery record is next.
    Begin,
    /// A begin of the delivery record was asked for.
    Beginning,
    /// Another invocation is processing the event: sleep, then begin again.
    BeginWait,
    /// The delivery is ours; the node is next.
    Node,
    /// A read of the node was asked for.
    Reading,
    /// The node is still in cloud-init: heartbeat if owed, then sleep, then read again.
    CloudInit,
    /// The node is read: claim it.
    Claim,
    /// A claim was asked for.
    Claiming,
    /// Another invocation holds the node: sleep, then claim again.
    ClaimWait,
    /// The node is ours: read the command record again, since another processing of the
    /// same status may have consumed it before this one got the node.
    Recheck,
    /// A sleep was asked for; then the phase named.
    Sleeping(SystemTime, Wake),
    /// The node is loaded: the current state and the guards decide.
    Decide,
}

/// What a sleep was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Take,
    Begin,
    Read,
    Claim,
}

/// A wait for cloud-init under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wait {
    started: SystemTime,
    until: SystemTime,
    /// `until` is the invocation's deadline, not the wait's own timeout.
    by_deadline: bool,
    last_beat: SystemTime,
}

/// The loading machine for one event. See the module docs for the protocol.
#[derive(Debug)]
pub struct Loader<'d> {
    def: &'d Definition,
    rules: LoadRules,
    deadline: Deadline,
    event: Event,
    record: Option<CommandRecord>,
    node: Option<Node>,
    phase: Phase,
    /// The time the driver last reported.
    now: Option<SystemTime>,
    /// How long a status event of ours waits for its record, and whether that bound is the
    /// invocation's deadline.
    record_until: Option<(SystemTime, bool)>,
    wait: Option<Wait>,
    beat_owed: bool,
    /// The delivery record begun, if any.
    delivery: Option<String>,
    /// Expired delivery entries of other events on the node's item.
    stale: Vec<String>,
    /// How long to wait for a busy delivery record or node, and whether that bound is the
    /// invocation's deadline; and what the waiter saw last.
    busy_until: Option<(SystemTime, bool)>,
    busy: Option<String>,
    /// How many times the waiter for a busy node or delivery has looked so far.
    busy_polls: u32,
    /// The claim created the node's item.
    created: Option<bool>,
    /// What an earlier, dead processing of the event was committing.
    resume: Option<Resume>,
    end: Option<LoadStep>,
}

/// What loading produced, for the engine and the tasks.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Loaded {
    /// The event, renamed and given lifecycle data by its command record, default metadata
    /// merged in.
    pub event: Event,
    /// The node, when the event names one (a node not in the table reads as status `new`).
    pub node: Option<Node>,
    /// The command record read, if any: the driver consumes it once the event is processed.
    pub record: Option<CommandRecord>,
    /// The key of the delivery record begun, if any: the driver ends it — in the node's final
    /// write when it lives on the node ([`Loaded::delivery_on_node`]).
    pub delivery: Option<String>,
    /// The delivery is an entry on the node's item, not a record of its own.
    pub delivery_on_node: bool,
    /// Expired delivery entries of other events on the node, for the final write to drop.
    pub stale: Vec<String>,
    /// `Some` when the node was claimed: the driver releases it. `true` when the claim
    /// created the node's item (there was no node).
    pub claim_created: Option<bool>,
    /// The transition an earlier processing of the event died committing: when the node is
    /// in its `to` state, its `after` tasks are run first (SPEC 9).
    pub resume: Option<Resume>,
}

impl<'d> Loader<'d> {
    /// A loader for `event`.
    pub fn new(def: &'d Definition, event: Event, rules: LoadRules, deadline: Deadline) -> Self {
        Loader {
            def,
            rules,
            deadline,
            event,
            record: None,
            node: None,
            phase: Phase::Start,
            now: None,
            record_until: None,
            wait: None,
            beat_owed: false,
            delivery: None,
            stale: Vec::new(),
            busy_until: None,
            busy: None,
            busy_polls: 0,
            created: None,
            resume: None,
            end: None,
        }
    }

    /// The event as loading has shaped it so far.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The node as last read.
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    /// The state processing would start from now: the node's status, or the event's name.
    pub fn current_state(&self) -> &str {
        self.node
            .as_ref()
            .map_or(self.event.name.as_str(), |n| n.status.as_str())
    }

    /// The event, node and record, once [`LoadStep::Ready`].
    pub fn into_parts(self) -> Loaded {
        let delivery_on_node = self.delivery.is_some() && on_node(&self.event);
        Loaded {
            event: self.event,
            node: self.node,
            record: self.record,
            delivery_on_node,
            delivery: self.delivery,
            stale: self.stale,
            claim_created: self.created,
            resume: self.resume,
        }
    }

    /// What the driver does next. Asking again before answering repeats the question.
    pub fn poll(&mut self) -> LoadStep {
        if let Some(end) = &self.end {
            return end.clone();
        }
        match self.phase {
            Phase::Start => match &self.event.command {
                Some(cmd) => {
                    // 4.1.1: a status that is not final must not consume the record (the
                    // parser already refuses it; this guards events built by other means).
                    if !TERMINAL_COMMAND_STATUSES.contains(&cmd.status.as_str()) {
                        let reason = format!(
                            "SSM status {} (command {}) is not final",
                            cmd.status, cmd.command_id
                        );
                        return self.finish(LoadStep::NotSupported { reason });
                    }
                    // A status of a command this library sent (its marker line) begins its
                    // delivery first, so a redelivery after the record was consumed is
                    // recognised as a duplicate; anyone else's is looked up without a write.
                    self.phase = if self.event.is_our_command() {
                        Phase::Begin
                    } else {
                        Phase::Taking
                    };
                    self.poll()
                }
                None => {
                    self.phase = Phase::Begin;
                    self.poll()
                }
            },
            Phase::Taking => LoadStep::ReadRecord {
                command_id: self.command_id(),
            },
            Phase::RecordWait => {
                let until = self.record_until.map_or(self.now(), |(until, _)| until);
                let wake = self.now() + self.rules.record_poll.max(MIN_POLL);
                self.sleep(wake.min(until), Wake::Take)
            }
            // A lifecycle event's delivery is begun by the claim, on the node.
            Phase::Begin => match delivery_key(&self.event)
                .filter(|_| self.delivery.is_none() && !on_node(&self.event))
            {
                Some(key) => {
                    self.phase = Phase::Beginning;
                    LoadStep::BeginDelivery { key }
                }
                None => {
                    self.phase = Phase::Node;
                    self.poll()
                }
            },
            Phase::Beginning => LoadStep::BeginDelivery {
                key: delivery_key(&self.event).unwrap_or_default(),
            },
            Phase::BeginWait => self.busy_sleep(Wake::Begin),
            Phase::Claim => {
                self.phase = Phase::Claiming;
                self.claim_step()
            }
            Phase::Claiming => self.claim_step(),
            Phase::ClaimWait => self.busy_sleep(Wake::Claim),
            Phase::Recheck => LoadStep::ReadRecord {
                command_id: self.command_id(),
            },
            Phase::Node => {
                self.merge_default_metadata();
                // 4.1.2: the node of the lifecycle data (also from a command record), else of
                // a command event's resources, else none.
                let id = match (&self.event.lifecycle, &self.event.command) {
                    (Some(lc), _) => Some(lc.instance_id.clone()),
                    (None, Some(_)) => self.event.resource_instance().map(str::to_owned),
                    (None, None) => None,
                };
                match id {
                    // A lifecycle event claims its node first: the claim returns the node and
                    // records the event in one write, and a duplicate stops there.
                    Some(_) if on_node(&self.event) && self.created.is_none() => {
                        self.phase = Phase::Claiming;
                        self.claim_step()
                    }
                    Some(id) => {
                        self.phase = Phase::Reading;
                        LoadStep::ReadNode { id }
                    }
                    None => self.decide(),
                }
            }
            Phase::Reading => LoadStep::ReadNode { id: self.node_id() },
            Phase::CloudInit => {
                let now = self.now();
                let Some(wait) = self.wait else {
                    self.phase = self.after_node();
                    return self.poll();
                };
                if self.beat_owed {
                    self.beat_owed = false;
                    self.wait = Some(Wait {
                        last_beat: now,
                        ..wait
                    });
                    return LoadStep::Heartbeat;
                }
                if now >= wait.until && wait.by_deadline {
                    let waiting_for = format!(
                        "node {} to reach {:?} (still {:?})",
                        self.node_id(),
                        self.def.initial_state(),
                        self.current_state()
                    );
                    return self.fail(LoadError::Deadline { waiting_for });
                }
                if now >= wait.until {
                    let error = LoadError::WaitTimeout {
                        node: self.node_id(),
                        status: self.current_state().to_owned(),
                        initial: self.def.initial_state().to_owned(),
                        waited_secs: now
                            .duration_since(wait.started)
                            .unwrap_or_default()
                            .as_secs(),
                    };
                    return self.fail(error);
                }
                let wake = now + self.rules.poll_interval.max(MIN_POLL);
                let until = wait.until;
                self.sleep(wake.min(until), Wake::Read)
            }
            Phase::Sleeping(until, _) => LoadStep::Sleep { until },
            Phase::Decide => self.decide(),
        }
    }

    /// The answer to [`LoadStep::ReadRecord`]: the record, or `None` when there is none.
    pub fn record_read(&mut self, record: Option<CommandRecord>, now: SystemTime) {
        self.now = Some(now);
        if self.phase == Phase::Recheck {
            match record {
                Some(record) => {
                    self.record = Some(record);
                    self.phase = Phase::Decide;
                }
                None => {
                    let outcome = format!(
                        "another processing of command {} consumed its record",
                        self.command_id()
                    );
                    self.finish(LoadStep::Duplicate { outcome });
                }
            }
            return;
        }
        if let Some(record) = record {
            // A record written without `EventName` keeps the event's own name.
            if !record.event_name.is_empty() {
                self.event.name = record.event_name.clone();
            }
            self.event.lifecycle = record.lifecycle.clone();
            self.record = Some(record);
            self.phase = Phase::Begin;
            return;
        }
        // A command this library sent may report before the sender has stored its record —
        // SSM is fast — so its record is waited for, bounded; anyone else's is not ours.
        let (until, by_deadline) = match self.record_until {
            Some(bound) => bound,
            None if self.event.is_our_command() => {
                tracing::info!(command = %self.command_id(), "our command, but no record yet: waiting for it");
                *self.record_until.insert((
                    self.deadline.min_with(now, self.rules.record_wait),
                    self.deadline.cuts(now, self.rules.record_wait),
                ))
            }
            None => {
                let reason = format!(
                    "command {} is not ours (no command record)",
                    self.command_id()
                );
                self.finish(LoadStep::NotSupported { reason });
                return;
            }
        };
        if now >= until && by_deadline {
            let waiting_for = format!("the record of command {}", self.command_id());
            self.fail(LoadError::Deadline { waiting_for });
        } else if now >= until {
            let reason = format!(
                "command {} has no record: already handled, or expired",
                self.command_id()
            );
            self.finish(LoadStep::NotSupported { reason });
        } else {
            self.phase = Phase::RecordWait;
        }
    }

    /// The answer to [`LoadStep::BeginDelivery`]: what the delivery record said.
    pub fn delivery_begun(&mut self, begin: Begin, now: SystemTime) {
        self.now = Some(now);
        match begin {
            Begin::Resume(resume) => {
                self.resume_from(resume);
                self.delivery_begun(Begin::Begun, now);
            }
            Begin::Begun => {
                self.delivery = delivery_key(&self.event);
                self.busy_until = None;
                self.busy_polls = 0;
                self.phase = if self.event.command.is_some() && self.record.is_none() {
                    Phase::Taking
                } else {
                    Phase::Node
                };
            }
            Begin::Done { outcome } => {
                tracing::info!(%outcome, "event already processed: a duplicate delivery");
                self.finish(LoadStep::Duplicate { outcome });
            }
            Begin::InProgress { until } => {
                self.busy = Some(format!(
                    "another invocation is processing this event (until {})",
                    crate::delivery::epoch_secs(until)
                ));
                self.phase = Phase::BeginWait;
            }
        }
    }

    /// The answer to [`LoadStep::Claim`]: what the claim found.
    pub fn claimed(&mut self, claim: Claim, now: SystemTime) {
        self.now = Some(now);
        match claim {
            Claim::Claimed {
                node,
                created,
                resume,
                stale,
            } => {
                if on_node(&self.event) {
                    self.delivery = delivery_key(&self.event);
                    if let Some(resume) = resume {
                        self.resume_from(resume);
                    }
                }
                self.stale = stale;
                self.created = Some(created);
                self.busy_until = None;
                self.busy_polls = 0;
                if on_node(&self.event) {
                    // Claimed before it was read: a new node may still wait for cloud-init,
                    // the lease held (a duplicate meanwhile finds it busy).
                    self.node_read(Some(node), now);
                    return;
                }
                self.node = Some(node);
                self.phase = if self.record.is_some() {
                    Phase::Recheck
                } else {
                    Phase::Decide
                };
            }
            Claim::Held { until } => {
                self.busy = Some(format!(
                    "another invocation holds node {} (until {})",
                    self.node_id(),
                    crate::delivery::epoch_secs(until)
                ));
                self.phase = Phase::ClaimWait;
            }
            Claim::Removed => {
                let reason = format!(
                    "node {} was removed; a late event does not bring it back",
                    self.node_id()
                );
                self.finish(LoadStep::NotSupported { reason });
            }
            Claim::Done { outcome } => {
                tracing::info!(%outcome, "event already processed: a duplicate delivery");
                self.finish(LoadStep::Duplicate { outcome });
            }
            // Nothing written: the claim served as the read of a node still in cloud-init.
            Claim::Waiting { node } => self.node_read(Some(node), now),
        }
    }

    /// An earlier processing of this event died (or ended retryable) having entered the
    /// marker's transition: this one resumes it.
    fn resume_from(&mut self, resume: Resume) {
        tracing::warn!(from = %resume.from, to = %resume.to, trigger = %resume.trigger, "an earlier processing of this event died committing a transition; resuming it");
        self.resume = Some(resume);
    }

    /// Where loading goes once the node is read and needs no wait: the claim, or — the claim
    /// made already (a lifecycle event claims first) — the recheck of the record, or the
    /// decision.
    fn after_node(&self) -> Phase {
        match self.created {
            None => Phase::Claim,
            Some(_) if self.record.is_some() => Phase::Recheck,
            Some(_) => Phase::Decide,
        }
    }

    fn claim_step(&self) -> LoadStep {
        let first = on_node(&self.event) && self.waits_for_cloud_init();
        LoadStep::Claim {
            id: self.node_id(),
            delivery: delivery_key(&self.event).filter(|_| on_node(&self.event)),
            waiting: first.then(|| {
                NEW_STATUSES
                    .iter()
                    .filter(|s| **s != self.def.initial_state())
                    .map(|s| (*s).to_owned())
                    .collect()
            }),
        }
    }

    /// The answer to [`LoadStep::ReadNode`]: the node, or `None` when it is not in the table.
    pub fn node_read(&mut self, node: Option<Node>, now: SystemTime) {
        self.now = Some(now);
        let node = node.unwrap_or_else(|| Node::absent(self.node_id()));
        if node.is_removed() {
            let reason = format!(
                "node {} was removed; a late event does not bring it back",
                node.id
            );
            self.node = Some(node);
            self.finish(LoadStep::NotSupported { reason });
            return;
        }
        let must_wait = self.must_wait(&node);
        self.node = Some(node);
        if !must_wait {
            if self.wait.is_some() {
                tracing::info!(node = %self.node_id(), status = %self.current_state(), "cloud-init finished");
            }
            self.phase = self.after_node();
            return;
        }
        match &self.wait {
            None => {
                tracing::info!(node = %self.node_id(), status = %self.current_state(), initial = %self.def.initial_state(), "waiting for cloud-init");
                self.wait = Some(Wait {
                    started: now,
                    until: self.deadline.min_with(now, self.rules.wait_timeout),
                    by_deadline: self.deadline.cuts(now, self.rules.wait_timeout),
                    last_beat: now,
                });
            }
            Some(w) => {
                let interval = self.rules.heartbeat_interval;
                self.beat_owed = !interval.is_zero()
                    && self.event.lifecycle.is_some()
                    && now.duration_since(w.last_beat).unwrap_or_default() >= interval;
            }
        }
        self.phase = Phase::CloudInit;
    }

    /// The answer to [`LoadStep::Heartbeat`].
    pub fn heartbeat_sent(&mut self, now: SystemTime) {
        self.now = Some(now);
    }

    /// The answer to [`LoadStep::Sleep`]: the time on waking.
    pub fn woke(&mut self, now: SystemTime) {
        self.now = Some(now);
        if let Phase::Sleeping(_, resume) = self.phase {
            self.phase = match resume {
                Wake::Take => Phase::Taking,
                Wake::Begin => Phase::Beginning,
                Wake::Read => Phase::Reading,
                Wake::Claim => Phase::Claiming,
            };
        }
    }

    fn now(&self) -> SystemTime {
        self.now.unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn sleep(&mut self, until: SystemTime, resume: Wake) -> LoadStep {
        self.phase = Phase::Sleeping(until, resume);
        LoadStep::Sleep { until }
    }

    /// Waits, bounded, for another invocation that holds the node or processes the same
    /// event; ends retryable when it does not let go in time.
    fn busy_sleep(&mut self, resume: Wake) -> LoadStep {
        let now = self.now();
        let (until, by_deadline) = *self.busy_until.get_or_insert((
            self.deadline.min_with(now, self.rules.busy_wait),
            self.deadline.cuts(now, self.rules.busy_wait),
        ));
        let what = self.busy.clone().unwrap_or_default();
        if now >= until && by_deadline {
            return self.fail(LoadError::Deadline { waiting_for: what });
        }
        if now >= until {
            return self.fail(LoadError::Busy { what });
        }
        // Backing off — 1, 2, 4 times the poll interval, then every 4: each look is a
        // conditional write refused (and, on DynamoDB, paid for), and the first holder mostly
        // lets go at once or not for a long while.
        let factor = 1u32 << self.busy_polls.min(2);
        self.busy_polls = self.busy_polls.saturating_add(1);
        let wake = now + self.rules.record_poll.max(MIN_POLL) * factor;
        self.sleep(wake.min(until), resume)
    }

    fn command_id(&self) -> String {
        self.event
            .command
            .as_ref()
            .map(|c| c.command_id.clone())
            .unwrap_or_default()
    }

    fn node_id(&self) -> String {
        match (&self.node, &self.event.lifecycle) {
            (Some(n), _) => n.id.clone(),
            (None, Some(lc)) => lc.instance_id.clone(),
            (None, None) => self
                .event
                .resource_instance()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    fn merge_default_metadata(&mut self) {
        if let Some(lc) = &mut self.event.lifecycle {
            for (k, v) in &self.rules.default_metadata {
                lc.metadata.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }

    /// 4.1.4: a launching lifecycle event from Auto Scaling, or a command event, that finds
    /// its node new but not yet in the initial state waits for it. A terminating event —
    /// also a command event resuming a termination — never waits.
    fn must_wait(&self, node: &Node) -> bool {
        self.waits_for_cloud_init() && node.is_new() && node.status != self.def.initial_state()
    }

    /// True when the event waits for a new node's cloud-init (4.1.4).
    fn waits_for_cloud_init(&self) -> bool {
        let e = &self.event;
        !e.is_terminating()
            && ((e.is_launching() && e.source == Source::AutoScaling) || e.is_command())
    }

    /// 4.1.3 and 4.1.5: the current state and the guards.
    fn decide(&mut self) -> LoadStep {
        let state_name = self.current_state().to_owned();
        // An earlier processing of this event passed the guards and committed the node's
        // state: resuming it is not a second launch or termination.
        let resuming = self.resume.as_ref().is_some_and(|r| r.to == state_name);
        if !resuming && let Err(refusal) = self.guard(&state_name) {
            return self.fail(LoadError::Guard(refusal));
        }
        match self.def.state_id(&state_name) {
            // Resuming runs the `after` tasks of the transition into this state, whatever
            // leaves it.
            Some(state) if resuming || !self.def.candidates(state).is_empty() => {
                self.finish(LoadStep::Ready { state })
            }
            _ => self.fail(LoadError::NoTrigger { state: state_name }),
        }
    }

    fn guard(&self, state: &str) -> Result<(), GuardRefusal> {
        let (Some(lc), Some(node)) = (&self.event.lifecycle, &self.node) else {
            return Ok(());
        };
        if self.event.source != Source::AutoScaling {
            return Ok(());
        }
        if self.event.is_launching() && !node.is_new() && !lc.is_from_warm_pool() {
            return Err(GuardRefusal::NotNew {
                node: node.id.clone(),
                state: state.to_owned(),
            });
        }
        if self.event.is_terminating() && node.is_new() {
            return Err(GuardRefusal::StillNew {
                node: node.id.clone(),
                state: state.to_owned(),
            });
        }
        Ok(())
    }

    fn fail(&mut self, error: LoadError) -> LoadStep {
        self.finish(LoadStep::Failed { error })
    }

    fn finish(&mut self, step: LoadStep) -> LoadStep {
        self.end = Some(step.clone());
        step
    }
}
