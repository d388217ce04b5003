//! The reconciliation sweep (issue 12): a scheduled run that compares the state table with
//! Auto Scaling and mends what no event will — the core decides
//! ([`lifecycle::reconcile::plan`]), this module performs, through the same capabilities and
//! under the same claims as an event (SPEC 9), and reports once per sweep.
//!
//! What it performs, each action only on a node it holds:
//!
//! - **resume**: a lifecycle event for the waiting action, built here, goes through
//!   [`Dispatcher::handle`] — the dispatcher claims the node exactly as for an event from
//!   AWS, so a racing event finds it busy (and the sweep, an event's node);
//! - **heartbeat**: claims the node, reads the command record again (gone: its status came
//!   back meanwhile, nothing to do), sends `RecordLifecycleActionHeartbeat` by instance id and
//!   writes the action's new due time on the record (`ActionDueAt`), so the next sweep and the
//!   command's status event know it; releases;
//! - **complete**: claims the node, checks it is still in the state the plan saw, sends
//!   `CompleteLifecycleAction` by instance id with the result; releases;
//! - **remove**: claims the node and replaces it with a tombstone ([`NodeStore::remove`]), as
//!   `remove_from_db` does.
//!
//! A claim refused (another invocation holds the node) skips the action: the next sweep
//! sees the node again.
//!
//! [`NodeStore::remove`]: crate::capability::NodeStore::remove

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use lifecycle::delivery::{Claim, Claiming, Item, Lease, epoch_ms, epoch_secs};
use lifecycle::event::{LifecycleTransition, Source};
use lifecycle::node::ATTR_CHANGED_AT;
use lifecycle::reconcile::{self, Action, ActionRef, Count, Finding, Observed};
use lifecycle::{Deadline, Event, Fault, FaultKind, StopReason};
use serde::Serialize;

use crate::capability::{ActionState, Services};
use crate::dispatch::Dispatcher;

/// How long the sweep's own claims last at most: each action is a few calls.
const LEASE: Duration = Duration::from_secs(60);

/// How long a node removed by the sweep stays a tombstone (as `remove_from_db`'s).
const TOMBSTONE: Duration = Duration::from_secs(7 * 24 * 3600);

/// `DescribeAutoScalingInstances` takes at most this many ids a call.
const LOOKUP_BATCH: usize = 50;

/// Reading the whole state table: the sweep compares every node. A `Scan` on DynamoDB (the
/// function's role needs `dynamodb:Scan` on the table), the items of the embedded store.
#[async_trait]
pub trait TableItems: Send + Sync {
    /// Every item of the table.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn items(&self) -> Result<Vec<Item>, Fault>;
}

/// Why a sweep could not run at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// The configuration has no `reconcile:` section.
    #[error(
        "the configuration has no `reconcile:` section: the sweep needs at least its `groups` (docs/CONFIGURATION.md)"
    )]
    NotConfigured,
    /// The table could not be read.
    #[error("cannot read the state table: {0}")]
    Table(Fault),
}

impl SweepError {
    /// What a retry can do.
    pub fn kind(&self) -> FaultKind {
        match self {
            SweepError::NotConfigured => FaultKind::Invalid,
            SweepError::Table(f) => f.kind(),
        }
    }
}

/// What became of one finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing to perform: a finding to read (or a dry run).
    Listed,
    /// A dry run: it would be performed.
    WouldDo,
    /// Performed.
    Done {
        /// What was done.
        detail: String,
    },
    /// AWS has no active lifecycle action for it any more (completed or timed out).
    NoActiveAction,
    /// Not performed: the node changed between the table's read and the claim.
    Skipped {
        /// Why.
        why: String,
    },
    /// The node was driven from its stored state (a resume): how that ended.
    Resumed {
        /// Why processing stopped.
        stopped_by: StopReason,
        /// The state it started from.
        initial_state: String,
        /// The state it ended in.
        final_state: String,
        /// The error, if any.
        error: Option<String>,
        /// Whether a retry can mend that error.
        retryable: bool,
    },
    /// It failed.
    Failed {
        /// The error.
        error: String,
        /// Whether a retry (the next sweep) can mend it.
        retryable: bool,
    },
    /// The deadline came first: the next sweep sees it again.
    NotReached,
}

/// One finding of the sweep and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The finding: node, states, action and reason.
    #[serde(flatten)]
    pub finding: Finding,
    /// The reason, in words.
    pub why: String,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One report per sweep: what it found and what it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SweepReport {
    /// The sweep's id (the token of its claims, the id of the events it resumes with).
    pub sweep: String,
    /// When it ran (epoch seconds).
    pub at: u64,
    /// True when nothing was performed.
    pub dry_run: bool,
    /// The groups compared.
    pub groups: Vec<String>,
    /// The instances Auto Scaling listed or looked up.
    pub instances: usize,
    /// The nodes in each state, and how many of them are stuck.
    pub states: BTreeMap<String, Count>,
    /// Every finding with its outcome, in node order.
    pub findings: Vec<Entry>,
    /// How many findings of each action there were (`resume`, `heartbeat`, ...).
    pub actions: BTreeMap<&'static str, usize>,
    /// What could not be read (a group's listing, its hooks, a lookup): nodes it concerns are
    /// judged at the next sweep.
    pub errors: Vec<String>,
}

impl SweepReport {
    /// An empty report of sweep `sweep` that ran at `at` (epoch seconds) over `groups`: no
    /// node, no finding yet.
    pub fn new(sweep: impl Into<String>, at: u64, dry_run: bool, groups: Vec<String>) -> Self {
        SweepReport {
            sweep: sweep.into(),
            at,
            dry_run,
            groups,
            instances: 0,
            states: BTreeMap::new(),
            findings: Vec::new(),
            actions: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// How many performed actions failed (resumes that ended in an error included).
    pub fn failures(&self) -> usize {
        self.findings
            .iter()
            .filter(|e| match &e.outcome {
                Outcome::Failed { .. } => true,
                Outcome::Resumed { error, .. } => error.is_some(),
                _ => false,
            })
            .count()
    }
}

/// Runs one sweep over `items` (the whole table) with `dispatcher`'s definition and
/// services, within `deadline`; with `dry_run` it performs nothing and reports what it would
/// do.
///
/// # Errors
/// [`SweepError::NotConfigured`] when the definition has no `reconcile:` section. Everything
/// else is reported in the [`SweepReport`].
pub async fn sweep(
    dispatcher: &Dispatcher,
    items: &[Item],
    deadline: Deadline,
    dry_run: bool,
) -> Result<SweepReport, SweepError> {
    let def = dispatcher.definition();
    let spec = def.reconcile().ok_or(SweepError::NotConfigured)?;
    let services = dispatcher.services();
    let now = services.clock.now();
    let id = format!("sweep-{:016x}", fastrand::u64(..));
    let nodes = reconcile::facts(items, now);

    let mut observed = Observed::default();
    let mut errors = Vec::new();
    for g in &spec.groups {
        match services.lifecycle.group_instances(&g.name).await {
            Ok(instances) => observed.instances.extend(instances),
            Err(e) => errors.push(format!("group {}: {e}", g.name)),
        }
        match services.lifecycle.hooks(&g.name).await {
            Ok(hooks) => observed.hooks.extend(hooks),
            Err(e) => errors.push(format!("hooks of group {}: {e}", g.name)),
        }
    }
    let unlisted: Vec<String> = reconcile::unlisted(&nodes, &observed.instances)
        .into_iter()
        .map(str::to_owned)
        .collect();
    for chunk in unlisted.chunks(LOOKUP_BATCH) {
        match services.lifecycle.instances(chunk).await {
            Ok(found) => {
                observed.looked_up.extend(chunk.iter().cloned());
                observed.instances.extend(found);
            }
            Err(e) => errors.push(format!(
                "looking up {} node(s) by instance id: {e}",
                chunk.len()
            )),
        }
    }
    for e in &errors {
        tracing::warn!(sweep = %id, error = %e, "sweep: could not read; judged at the next sweep");
    }

    let plan = reconcile::plan(def, spec, &nodes, &observed, now);
    let mut actions: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut findings = Vec::with_capacity(plan.findings.len());
    for finding in plan.findings {
        *actions.entry(finding.action.name()).or_default() += 1;
        let outcome = if !finding.action.acts() {
            Outcome::Listed
        } else if dry_run {
            Outcome::WouldDo
        } else if deadline.passed(services.clock.now()) {
            Outcome::NotReached
        } else {
            perform(dispatcher, &id, &finding, deadline).await
        };
        tracing::info!(
            sweep = %id,
            node = %finding.node,
            action = finding.action.name(),
            reason = %finding.reason,
            outcome = ?outcome,
            "sweep finding"
        );
        findings.push(Entry {
            why: finding.reason.to_string(),
            finding,
            outcome,
        });
    }
    let groups = spec.groups.iter().map(|g| g.name.clone()).collect();
    let mut report = SweepReport::new(id, epoch_secs(now), dry_run, groups);
    report.instances = observed.instances.len();
    report.states = plan.states;
    report.findings = findings;
    report.actions = actions;
    report.errors = errors;
    Ok(report)
}

/// Performs one acting finding.
async fn perform(
    dispatcher: &Dispatcher,
    sweep: &str,
    finding: &Finding,
    deadline: Deadline,
) -> Outcome {
    let services = dispatcher.services();
    match &finding.action {
        Action::Resume { of } => {
            let event = lifecycle_event(sweep, &finding.node, of);
            let r = dispatcher.handle(event, deadline).await;
            Outcome::Resumed {
                stopped_by: r.stopped_by,
                initial_state: r.initial_state,
                final_state: r.final_state,
                error: r.error,
                retryable: r.retryable,
            }
        }
        Action::Remove => {
            claimed(services, sweep, finding, deadline, |_| async {
                let until = services.clock.now() + TOMBSTONE;
                services.nodes.remove(&finding.node, until).await?;
                Ok(Outcome::Done {
                    detail: format!("removed; a tombstone until {} (epoch s)", epoch_secs(until)),
                })
            })
            .await
        }
        Action::Heartbeat {
            of,
            command,
            next_due,
        } => {
            claimed(services, sweep, finding, deadline, |_| async {
                let now = services.clock.now();
                let Some(mut record) = services.commands.get_command(command, now).await? else {
                    return Ok(Outcome::Skipped {
                        why: format!("command {command}'s status came back meanwhile"),
                    });
                };
                match services
                    .lifecycle
                    .heartbeat(&of.data(&finding.node))
                    .await?
                {
                    ActionState::NoActiveAction => Ok(Outcome::NoActiveAction),
                    ActionState::Done => {
                        let mut detail = "heartbeat sent".to_owned();
                        if let (Some(due), Some(lc)) = (next_due, record.lifecycle.as_mut()) {
                            lc.due_at = Some(*due);
                            services.commands.put_command(&record).await?;
                            detail =
                                format!("heartbeat sent; the action is due at {due} (epoch s)");
                        }
                        Ok(Outcome::Done { detail })
                    }
                }
            })
            .await
        }
        Action::Complete { of, result } => {
            claimed(services, sweep, finding, deadline, |node| async move {
                if finding.state.as_deref() != Some(node.status.as_str()) {
                    return Ok(Outcome::Skipped {
                        why: format!("the node moved to {:?} meanwhile", node.status),
                    });
                }
                match services
                    .lifecycle
                    .complete(&of.data(&finding.node), *result)
                    .await?
                {
                    ActionState::NoActiveAction => Ok(Outcome::NoActiveAction),
                    ActionState::Done => Ok(Outcome::Done {
                        detail: format!("completed with {}", result.as_str()),
                    }),
                }
            })
            .await
        }
        Action::Stamp => {
            claimed(services, sweep, finding, deadline, |node| async move {
                if node.changed_at().is_some() {
                    return Ok(Outcome::Skipped {
                        why: "the node changed meanwhile".into(),
                    });
                }
                let now = services.clock.now();
                let mut stamp = serde_json::Map::new();
                stamp.insert(ATTR_CHANGED_AT.to_owned(), epoch_ms(now).into());
                services.nodes.set_properties(&finding.node, &stamp).await?;
                Ok(Outcome::Done {
                    detail: format!("its age counted from {} (epoch s)", epoch_secs(now)),
                })
            })
            .await
        }
        Action::ReportGone | Action::ListFailure | Action::LeaveAlone => Outcome::Listed,
    }
}

/// Runs `work` on the node while the sweep holds it: claims it (a held node, a removed one
/// or one that is not there any more is skipped), runs, releases.
async fn claimed<'a, F, Fut>(
    services: &'a Services,
    sweep: &str,
    finding: &'a Finding,
    deadline: Deadline,
    work: F,
) -> Outcome
where
    F: FnOnce(lifecycle::Node) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome, Fault>> + 'a,
{
    let now = services.clock.now();
    let lease = Lease {
        owner: format!("{sweep}:{}", finding.node),
        until: deadline.min_with(now, LEASE),
    };
    let id = finding.node.as_str();
    let node = match services
        .nodes
        .claim(id, &lease, Claiming::LEASE_ONLY, now)
        .await
    {
        Ok(Claim::Claimed { node, created, .. }) => {
            if created && !matches!(finding.action, Action::Remove) {
                release(services, id, &lease).await;
                return Outcome::Skipped {
                    why: "the node is not in the table any more".into(),
                };
            }
            node
        }
        Ok(Claim::Held { until }) => {
            return Outcome::Skipped {
                why: format!(
                    "an invocation holds the node until {} (epoch s)",
                    epoch_secs(until)
                ),
            };
        }
        Ok(Claim::Removed) => {
            return Outcome::Skipped {
                why: "the node was removed meanwhile".into(),
            };
        }
        // Not asked for: the claim named no delivery and no waiting.
        Ok(Claim::Done { .. } | Claim::Waiting { .. }) => {
            return Outcome::Skipped {
                why: "the claim found an event done".into(),
            };
        }
        Err(e) => return failed(&e),
    };
    let outcome = work(node).await.unwrap_or_else(|e| failed(&e));
    // A removed node's tombstone holds no lease: nothing to release.
    if !matches!(
        (&finding.action, &outcome),
        (Action::Remove, Outcome::Done { .. })
    ) {
        release(services, id, &lease).await;
    }
    outcome
}

async fn release(services: &Services, id: &str, lease: &Lease) {
    if let Err(e) = services.nodes.release(id, &lease.owner).await {
        tracing::warn!(node = %id, error = %e, "sweep: could not release the node; the lease ends in a minute");
    }
}

fn failed(e: &Fault) -> Outcome {
    Outcome::Failed {
        error: e.to_string(),
        retryable: e.is_transient(),
    }
}

/// The lifecycle event a resume drives the node with: the action's transition, group and
/// hook (with the hook's notification metadata), addressed by instance id, with an id of its
/// own — a new delivery, not a duplicate of the one that was lost.
pub fn lifecycle_event(sweep: &str, node: &str, of: &ActionRef) -> Event {
    let name = match of.transition {
        LifecycleTransition::Launching => "EC2 Instance-launch Lifecycle Action",
        LifecycleTransition::Terminating => "EC2 Instance-terminate Lifecycle Action",
    };
    let mut event = Event::new(Source::AutoScaling, name);
    event.id = Some(format!("{sweep}:{node}"));
    event.lifecycle = Some(of.data(node));
    event
}
