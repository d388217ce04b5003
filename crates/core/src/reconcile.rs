//! The reconciliation sweep's decisions (issue 12), as a pure function: given the table's
//! nodes ([`NodeFacts`], read from items by [`facts`]), what Auto Scaling says of the
//! configured groups ([`Observed`]: their instances and lifecycle states, their hooks), the
//! settings ([`ReconcileSpec`]) and `now`, [`plan`] answers with one [`Finding`] per thing
//! worth saying — each an [`Action`] and its [`Reason`]. The runtime (`lifecycle-runtime`'s
//! `sweep`) performs the actions, each under a claim of its node (SPEC 9), and reports.
//!
//! The rules, per node (in key order):
//!
//! - **in `failure`**: listed ([`Action::ListFailure`]).
//! - **its instance is in no group** (not in the groups' listings, and
//!   `DescribeAutoScalingInstances` by its id knows nothing of it): removed or reported, as
//!   `gone:` says — unless an invocation holds it, or it changed within `stale_after` (a
//!   listing may lag behind a launch).
//! - **its instance waits** (`Pending:Wait` or `Terminating:Wait`) in a configured group,
//!   on the group's hook for that transition:
//!   - held by a live lease: left alone — the sweep never acts on a node another
//!     invocation holds;
//!   - unchanged for `complete_after`: the action is completed with the configured result
//!     (or the hook's `DefaultResult`), before the hook's own timeout;
//!   - else, with a command in flight (a command record names the node): a heartbeat when
//!     the action times out within `heartbeat_within` (the record's `ActionDueAt`), or when
//!     that time is not known; otherwise left alone;
//!   - else, unchanged for `stale_after`: driven again from its stored state, as a
//!     redelivery of its lifecycle event would ([`Action::Resume`]) — when such an event
//!     would be accepted (a launch for a node in the initial state, a termination for one
//!     that is not new, a state some transition leaves); otherwise listed as stuck;
//!   - a node with no `ChangedAt` (written by cloud-init, or before the attribute existed)
//!     has no known age: it is stamped with the sweep's time ([`Action::Stamp`]), so the
//!     next sweep judges it — a launch whose event was lost is resumed one `stale_after`
//!     later.
//! - **an instance waits with no node** (or a removed one): listed.
//!
//! Warm-pool wait states (`Warmed:*`) are left to their events.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::reconcile::{Gone, ReconcileSpec};
use crate::config::{Definition, FAILURE_STATE};
use crate::delivery::{
    ATTR_LEASE_OWNER, ATTR_LEASE_UNTIL, Item, epoch_secs, expired, from_epoch_ms, is_machinery,
    is_tombstone,
};
use crate::event::{LifecycleData, LifecycleResult, LifecycleTransition};
use crate::node::{ATTR_TYPE, CommandRecord, NEW_STATUSES, Node, TYPE_COMMAND, ident_of};

/// The lifecycle state of an instance waiting on a launch hook.
pub const PENDING_WAIT: &str = "Pending:Wait";
/// The lifecycle state of an instance waiting on a terminate hook.
pub const TERMINATING_WAIT: &str = "Terminating:Wait";

/// The transition an instance in `lifecycle_state` waits on: `Pending:Wait` and
/// `Terminating:Wait` only (warm-pool states are left to their events).
pub fn waits_on(lifecycle_state: &str) -> Option<LifecycleTransition> {
    match lifecycle_state {
        PENDING_WAIT => Some(LifecycleTransition::Launching),
        TERMINATING_WAIT => Some(LifecycleTransition::Terminating),
        _ => None,
    }
}

/// A command sent for a node whose status has not come back: its record is still in the
/// table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingCommand {
    /// The SSM command id.
    pub id: String,
    /// The lifecycle data the record carries (with `ActionDueAt`), if any.
    pub lifecycle: Option<LifecycleData>,
}

impl PendingCommand {
    /// When the lifecycle action times out, as the record knows it (`ActionDueAt`).
    pub fn due(&self) -> Option<SystemTime> {
        self.lifecycle
            .as_ref()
            .and_then(|l| l.due_at)
            .map(|s| from_epoch_ms(s.saturating_mul(1000)))
    }
}

/// What the sweep knows of one node from the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeFacts {
    /// The instance id.
    pub id: String,
    /// Its state (empty for a tombstone).
    pub state: String,
    /// `ItemType`, when it has one.
    pub item_type: Option<String>,
    /// When its state last changed (`ChangedAt`), if known.
    pub changed_at: Option<SystemTime>,
    /// The lease on it: its holder and when it ends (live or not).
    pub lease: Option<(String, SystemTime)>,
    /// True for a tombstone: the node was removed.
    pub removed: bool,
    /// Commands sent for it whose status has not come back.
    pub pending: Vec<PendingCommand>,
}

impl NodeFacts {
    /// The holder of a lease still live at `now`, and when it ends.
    pub fn held(&self, now: SystemTime) -> Option<(&str, SystemTime)> {
        self.lease
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(owner, until)| (owner.as_str(), *until))
    }

    /// How long ago its state last changed; `None` when unknown.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.changed_at
            .map(|at| now.duration_since(at).unwrap_or_default())
    }
}

/// The nodes of a table's items, in key order, each with its pending commands: delivery
/// records, send guards and expired command records are not nodes; tombstones are (marked
/// removed); a malformed item is skipped (and logged).
pub fn facts(items: &[Item], now: SystemTime) -> Vec<NodeFacts> {
    let is_command = |i: &Item| i.get(ATTR_TYPE).and_then(Value::as_str) == Some(TYPE_COMMAND);
    let mut pending: BTreeMap<String, Vec<PendingCommand>> = BTreeMap::new();
    for item in items.iter().filter(|i| is_command(i) && !expired(i, now)) {
        let Ok(record) = CommandRecord::from_item(item) else {
            continue;
        };
        let mut on: BTreeSet<&String> = record.running_on.iter().collect();
        if let Some(lc) = &record.lifecycle {
            on.insert(&lc.instance_id);
        }
        for instance in on {
            pending
                .entry(instance.clone())
                .or_default()
                .push(PendingCommand {
                    id: record.id.clone(),
                    lifecycle: record.lifecycle.clone(),
                });
        }
    }
    let mut nodes: Vec<NodeFacts> = items
        .iter()
        .filter(|i| !is_command(i) && !is_machinery(i))
        .filter_map(|item| {
            let lease = item
                .get(ATTR_LEASE_OWNER)
                .and_then(Value::as_str)
                .map(|owner| {
                    let until = item.get(ATTR_LEASE_UNTIL).and_then(Value::as_u64);
                    (owner.to_owned(), from_epoch_ms(until.unwrap_or(0)))
                });
            if is_tombstone(item) {
                return Some(NodeFacts {
                    id: ident_of(item).ok()?,
                    state: String::new(),
                    item_type: None,
                    changed_at: crate::node::changed_at(item),
                    lease,
                    removed: true,
                    pending: Vec::new(),
                });
            }
            let node = Node::from_query_item(item.clone())?;
            Some(NodeFacts {
                pending: pending.remove(&node.id).unwrap_or_default(),
                item_type: node.item_type().map(str::to_owned),
                changed_at: node.changed_at(),
                lease,
                removed: false,
                state: node.status,
                id: node.id,
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    nodes
}

/// An instance, as Auto Scaling reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    /// The instance id.
    pub id: String,
    /// Its group.
    pub group: String,
    /// Its lifecycle state (`InService`, `Pending:Wait`, `Terminating:Wait`, ...).
    pub lifecycle_state: String,
}

/// A lifecycle hook of a group, as `DescribeLifecycleHooks` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hook {
    /// The group.
    pub group: String,
    /// The hook's name.
    pub name: String,
    /// The transition it holds instances in.
    pub transition: LifecycleTransition,
    /// How long an action waits without a heartbeat.
    pub heartbeat_timeout: Option<Duration>,
    /// What Auto Scaling does when the action times out.
    pub default_result: LifecycleResult,
    /// Its `NotificationMetadata`, decoded (what a lifecycle event of it carries).
    #[serde(skip)]
    pub metadata: Map<String, Value>,
}

/// What Auto Scaling says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observed {
    /// The configured groups' instances, and any instance looked up by id.
    pub instances: Vec<Instance>,
    /// Node ids looked up by instance id (`DescribeAutoScalingInstances`) because no
    /// group's listing had them: those not among `instances` are in no group at all.
    pub looked_up: BTreeSet<String>,
    /// The configured groups' lifecycle hooks.
    pub hooks: Vec<Hook>,
}

/// Which lifecycle action the sweep acts on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRef {
    /// The group.
    pub group: String,
    /// The hook.
    pub hook: String,
    /// The transition.
    pub transition: LifecycleTransition,
    /// The hook's `NotificationMetadata` (what its lifecycle events carry).
    #[serde(skip)]
    pub metadata: Map<String, Value>,
}

impl ActionRef {
    /// The lifecycle data of this action for `instance`, addressed by instance id (no
    /// token: `CompleteLifecycleAction` and `RecordLifecycleActionHeartbeat` take either).
    pub fn data(&self, instance: &str) -> LifecycleData {
        LifecycleData {
            instance_id: instance.to_owned(),
            auto_scaling_group: self.group.clone(),
            hook_name: self.hook.clone(),
            token: None,
            transition: self.transition,
            metadata: self.metadata.clone(),
            origin: None,
            destination: None,
            due_at: None,
        }
    }
}

/// What the sweep does about a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Remove the node, leaving a tombstone (its instance is gone; `gone: remove`).
    Remove,
    /// Report the node whose instance is gone (`gone: report`).
    ReportGone,
    /// List the node stuck in `failure`.
    ListFailure,
    /// Drive the node from its stored state with a lifecycle event of the action, as a
    /// redelivery would.
    Resume {
        /// The action waiting.
        of: ActionRef,
    },
    /// `RecordLifecycleActionHeartbeat`: keep the action waiting on work in flight alive.
    Heartbeat {
        /// The action.
        of: ActionRef,
        /// The command in flight.
        command: String,
        /// When the action will time out after the heartbeat (epoch seconds), when the
        /// hook's timeout is known: the command record carries it on.
        next_due: Option<u64>,
    },
    /// `CompleteLifecycleAction` with `result`, before the hook's own timeout.
    Complete {
        /// The action.
        of: ActionRef,
        /// The result.
        result: LifecycleResult,
    },
    /// Record the sweep's time as the node's last change (`ChangedAt`): its age was not
    /// known, and is counted from now on.
    Stamp,
    /// Nothing to do (yet): reported only.
    LeaveAlone,
}

impl Action {
    /// The action's name, as the report shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Remove => "remove",
            Action::ReportGone => "report_gone",
            Action::ListFailure => "list_failure",
            Action::Resume { .. } => "resume",
            Action::Heartbeat { .. } => "heartbeat",
            Action::Complete { .. } => "complete",
            Action::Stamp => "stamp",
            Action::LeaveAlone => "leave_alone",
        }
    }

    /// True when performing it changes something (in the table or in Auto Scaling).
    pub fn acts(&self) -> bool {
        matches!(
            self,
            Action::Remove
                | Action::Stamp
                | Action::Resume { .. }
                | Action::Heartbeat { .. }
                | Action::Complete { .. }
        )
    }
}

/// Why a finding was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The instance is in no Auto Scaling group.
    Gone,
    /// The instance is in no group, but the node changed recently: judged at a later sweep.
    GoneRecently {
        /// Seconds since the node's last change.
        age_secs: u64,
    },
    /// The node is in `failure`.
    Failure,
    /// Another invocation holds the node.
    Held {
        /// Its token.
        owner: String,
        /// When its lease ends (epoch seconds).
        until: u64,
    },
    /// The node has made no progress for `stale_after`.
    Stale {
        /// Seconds since its last change.
        age_secs: u64,
        /// `stale_after`, in seconds.
        limit_secs: u64,
    },
    /// The node has made no progress for `complete_after`.
    Overdue {
        /// Seconds since its last change.
        age_secs: u64,
        /// `complete_after`, in seconds.
        limit_secs: u64,
    },
    /// A command is in flight and the action times out within `heartbeat_within`.
    DueSoon {
        /// The command.
        command: String,
        /// Seconds until the action times out (0 when past).
        due_in_secs: u64,
    },
    /// A command is in flight and when the action times out is not known.
    DueUnknown {
        /// The command.
        command: String,
    },
    /// A command is in flight and the action has time left.
    InFlight {
        /// The command.
        command: String,
        /// Seconds until the action times out.
        due_in_secs: u64,
    },
    /// The node is stale, but a lifecycle event would be refused in its state.
    NotResumable {
        /// Seconds since its last change.
        age_secs: u64,
        /// Why.
        why: String,
    },
    /// The node has no `ChangedAt`: its age is not known; counted from this sweep on.
    AgeUnknown,
    /// The instance waits, and the table has no node for it.
    NoNode,
    /// The instance waits, and its node was removed.
    Removed,
    /// The group has no hook for the transition (or not the one configured).
    NoHook {
        /// The group.
        group: String,
        /// The transition.
        transition: LifecycleTransition,
    },
    /// The group has several hooks for the transition and the configuration names none.
    AmbiguousHook {
        /// The group.
        group: String,
        /// The transition.
        transition: LifecycleTransition,
        /// The hooks.
        hooks: Vec<String>,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Gone => f.write_str("the instance is in no Auto Scaling group"),
            Reason::GoneRecently { age_secs } => write!(
                f,
                "the instance is in no group, but the node changed {age_secs} s ago: judged at a later sweep"
            ),
            Reason::Failure => f.write_str("the node is in failure"),
            Reason::Held { owner, until } => {
                write!(f, "held by {owner} until {until} (epoch s): left alone")
            }
            Reason::Stale {
                age_secs,
                limit_secs,
            } => write!(
                f,
                "no progress for {age_secs} s (stale after {limit_secs} s)"
            ),
            Reason::Overdue {
                age_secs,
                limit_secs,
            } => write!(
                f,
                "no progress for {age_secs} s (completed after {limit_secs} s)"
            ),
            Reason::DueSoon {
                command,
                due_in_secs,
            } => write!(
                f,
                "command {command} in flight; the action times out in {due_in_secs} s"
            ),
            Reason::DueUnknown { command } => write!(
                f,
                "command {command} in flight; when the action times out is not known"
            ),
            Reason::InFlight {
                command,
                due_in_secs,
            } => write!(
                f,
                "command {command} in flight; the action has {due_in_secs} s left"
            ),
            Reason::NotResumable { age_secs, why } => {
                write!(f, "no progress for {age_secs} s, and {why}")
            }
            Reason::AgeUnknown => f.write_str(
                "the node has no ChangedAt: its age is not known, and is counted from this sweep",
            ),
            Reason::NoNode => f.write_str("the instance waits and the table has no node for it"),
            Reason::Removed => f.write_str("the instance waits and its node was removed"),
            Reason::NoHook { group, transition } => write!(
                f,
                "group {group} has no hook for {} (or not the configured one)",
                transition.as_str()
            ),
            Reason::AmbiguousHook {
                group,
                transition,
                hooks,
            } => write!(
                f,
                "group {group} has several hooks for {} ({}): name one in reconcile.groups",
                transition.as_str(),
                hooks.join(", ")
            ),
        }
    }
}

/// One thing the sweep found, and what it does about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The node (the instance id).
    pub node: String,
    /// The node's state, when there is a node.
    pub state: Option<String>,
    /// The instance's lifecycle state, when Auto Scaling knows the instance.
    pub instance_state: Option<String>,
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: Reason,
}

/// The nodes in one state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// How many.
    pub nodes: usize,
    /// How many of them are stuck: in `failure`, gone, or waiting with no progress for
    /// `stale_after`.
    pub stuck: usize,
}

/// What one sweep found and means to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// The findings, in node order.
    pub findings: Vec<Finding>,
    /// The nodes in each state (tombstones not counted).
    pub states: BTreeMap<String, Count>,
}

/// The node ids (not tombstones) that no listed instance has: they must be looked up by
/// instance id before [`plan`] can tell whether they are gone.
pub fn unlisted<'a>(nodes: &'a [NodeFacts], instances: &[Instance]) -> Vec<&'a str> {
    let known: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    nodes
        .iter()
        .filter(|n| !n.removed && !known.contains(n.id.as_str()))
        .map(|n| n.id.as_str())
        .collect()
}

/// The sweep's decisions (the rules are in the module's documentation).
pub fn plan(
    def: &Definition,
    spec: &ReconcileSpec,
    nodes: &[NodeFacts],
    observed: &Observed,
    now: SystemTime,
) -> Plan {
    let mut out = Plan::default();
    let instances: BTreeMap<&str, &Instance> = observed
        .instances
        .iter()
        .map(|i| (i.id.as_str(), i))
        .collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for node in nodes {
        seen.insert(node.id.as_str());
        let instance = instances.get(node.id.as_str()).copied();
        if node.removed {
            if let Some(i) = instance
                && waits_in_configured(spec, i).is_some()
            {
                out.findings
                    .push(finding(node, Some(i), Action::LeaveAlone, Reason::Removed));
            }
            continue;
        }
        let mut stuck = false;
        if node.state == FAILURE_STATE {
            stuck = true;
            out.findings.push(finding(
                node,
                instance,
                Action::ListFailure,
                Reason::Failure,
            ));
        }
        let age = node.age(now);
        let held = node.held(now).map(|(owner, until)| Reason::Held {
            owner: owner.to_owned(),
            until: epoch_secs(until),
        });
        let Some(instance) = instance else {
            if observed.looked_up.contains(&node.id) {
                stuck = true;
                let (action, reason) = match (held, age) {
                    (Some(held), _) => (Action::LeaveAlone, held),
                    (None, Some(a)) if a < spec.stale_after => (
                        Action::LeaveAlone,
                        Reason::GoneRecently {
                            age_secs: a.as_secs(),
                        },
                    ),
                    (None, _) => match spec.gone {
                        Gone::Remove => (Action::Remove, Reason::Gone),
                        Gone::Report => (Action::ReportGone, Reason::Gone),
                    },
                };
                out.findings.push(finding(node, None, action, reason));
            }
            count(&mut out, node, stuck);
            continue;
        };
        let Some(transition) = waits_in_configured(spec, instance) else {
            count(&mut out, node, stuck);
            continue;
        };
        let of = match hook(spec, observed, &instance.group, transition) {
            Ok(h) => h,
            Err(reason) => {
                out.findings
                    .push(finding(node, Some(instance), Action::LeaveAlone, reason));
                count(&mut out, node, stuck);
                continue;
            }
        };
        stuck |= age.is_some_and(|a| a >= spec.stale_after);
        count(&mut out, node, stuck);
        if let Some(held) = held {
            out.findings
                .push(finding(node, Some(instance), Action::LeaveAlone, held));
            continue;
        }
        let (action, reason) = waiting(def, spec, node, of, age, now);
        if let (Some(action), Some(reason)) = (action, reason) {
            out.findings
                .push(finding(node, Some(instance), action, reason));
        }
    }
    for i in &observed.instances {
        if !seen.contains(i.id.as_str()) && waits_in_configured(spec, i).is_some() {
            out.findings.push(Finding {
                node: i.id.clone(),
                state: None,
                instance_state: Some(i.lifecycle_state.clone()),
                action: Action::LeaveAlone,
                reason: Reason::NoNode,
            });
        }
    }
    out.findings.sort_by(|a, b| a.node.cmp(&b.node));
    out
}

/// What to do about a node whose instance waits on `of` and that nobody holds.
fn waiting(
    def: &Definition,
    spec: &ReconcileSpec,
    node: &NodeFacts,
    of: (ActionRef, Option<Duration>, LifecycleResult),
    age: Option<Duration>,
    now: SystemTime,
) -> (Option<Action>, Option<Reason>) {
    let (of, timeout, default_result) = of;
    let overdue = spec.complete_after.zip(age).filter(|(c, a)| a >= c);
    if let Some((limit, age)) = overdue {
        let result = spec.result_for(of.transition).unwrap_or(default_result);
        return (
            Some(Action::Complete { of, result }),
            Some(Reason::Overdue {
                age_secs: age.as_secs(),
                limit_secs: limit.as_secs(),
            }),
        );
    }
    if let Some(command) = node.pending.first() {
        let next_due = timeout.map(|t| epoch_secs(now + t));
        let heartbeat = |reason| {
            (
                Some(Action::Heartbeat {
                    of: of.clone(),
                    command: command.id.clone(),
                    next_due,
                }),
                Some(reason),
            )
        };
        return match command.due() {
            None => heartbeat(Reason::DueUnknown {
                command: command.id.clone(),
            }),
            Some(due) => {
                let left = due.duration_since(now).unwrap_or_default();
                if left <= spec.heartbeat_within {
                    heartbeat(Reason::DueSoon {
                        command: command.id.clone(),
                        due_in_secs: left.as_secs(),
                    })
                } else {
                    (
                        Some(Action::LeaveAlone),
                        Some(Reason::InFlight {
                            command: command.id.clone(),
                            due_in_secs: left.as_secs(),
                        }),
                    )
                }
            }
        };
    }
    let Some(age) = age else {
        return (Some(Action::Stamp), Some(Reason::AgeUnknown));
    };
    if age < spec.stale_after {
        return (None, None);
    }
    match resumable(def, &node.state, of.transition) {
        Ok(()) => (
            Some(Action::Resume { of }),
            Some(Reason::Stale {
                age_secs: age.as_secs(),
                limit_secs: spec.stale_after.as_secs(),
            }),
        ),
        Err(why) => (
            Some(Action::LeaveAlone),
            Some(Reason::NotResumable {
                age_secs: age.as_secs(),
                why,
            }),
        ),
    }
}

/// Whether a lifecycle event of `transition` would be accepted for a node in `state`
/// (the loading guards of SPEC 4.1.5, and a transition out of the state); why not, if not.
pub fn resumable(
    def: &Definition,
    state: &str,
    transition: LifecycleTransition,
) -> Result<(), String> {
    let Some(id) = def.state_id(state) else {
        return Err(format!("the configuration has no state {state:?}"));
    };
    let new = NEW_STATUSES.contains(&state);
    match transition {
        LifecycleTransition::Launching if !new => {
            return Err(format!(
                "a launch would be refused: only new nodes can be launched (the node is {state:?})"
            ));
        }
        LifecycleTransition::Launching if state != def.initial_state() => {
            return Err(format!(
                "cloud-init has not finished (the node is {state:?}, not {:?})",
                def.initial_state()
            ));
        }
        LifecycleTransition::Terminating if new => {
            return Err(format!(
                "a termination would be refused: new nodes cannot terminate (the node is {state:?})"
            ));
        }
        _ => {}
    }
    if def.candidates(id).is_empty() {
        return Err(format!("no transition leaves {state:?}"));
    }
    Ok(())
}

/// The transition `instance` waits on, when it is in a configured group.
fn waits_in_configured(spec: &ReconcileSpec, instance: &Instance) -> Option<LifecycleTransition> {
    spec.group(&instance.group)?;
    waits_on(&instance.lifecycle_state)
}

/// The hook an instance of `group` waits on for `transition`: the one configured, else the
/// group's only one; with its timeout and default result.
fn hook(
    spec: &ReconcileSpec,
    observed: &Observed,
    group: &str,
    transition: LifecycleTransition,
) -> Result<(ActionRef, Option<Duration>, LifecycleResult), Reason> {
    let named = spec.group(group).and_then(|g| g.hook_for(transition));
    let candidates: Vec<&Hook> = observed
        .hooks
        .iter()
        .filter(|h| h.group == group && h.transition == transition)
        .filter(|h| named.is_none_or(|n| h.name == n))
        .collect();
    match candidates.as_slice() {
        [h] => Ok((
            ActionRef {
                group: group.to_owned(),
                hook: h.name.clone(),
                transition,
                metadata: h.metadata.clone(),
            },
            h.heartbeat_timeout,
            h.default_result,
        )),
        [] => Err(Reason::NoHook {
            group: group.to_owned(),
            transition,
        }),
        many => Err(Reason::AmbiguousHook {
            group: group.to_owned(),
            transition,
            hooks: many.iter().map(|h| h.name.clone()).collect(),
        }),
    }
}

fn finding(
    node: &NodeFacts,
    instance: Option<&Instance>,
    action: Action,
    reason: Reason,
) -> Finding {
    Finding {
        node: node.id.clone(),
        state: (!node.removed).then(|| node.state.clone()),
        instance_state: instance.map(|i| i.lifecycle_state.clone()),
        action,
        reason,
    }
}

fn count(plan: &mut Plan, node: &NodeFacts, stuck: bool) {
    let c = plan.states.entry(node.state.clone()).or_default();
    c.nodes += 1;
    c.stuck += usize::from(stuck);
}

#[cfg(test)]
mod tests;
