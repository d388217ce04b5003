//! An operator's manual move of a node (`lifecycle set-state`): the same lease and
//! compare-and-set every event uses (SPEC 9), so it never races an invocation into a double
//! step, and a record on the node of who moved it, when and why.

use std::time::Duration;

use lifecycle::Fault;
use lifecycle::delivery::{Claim, Lease, epoch_secs};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::capability::Services;

/// Node attribute recording the last manual move: `{by, at, reason, from, to}`.
pub const ATTR_MANUAL_CHANGE: &str = "LastManualChange";

/// How long the operator's lease lasts: the move takes three writes.
const LEASE: Duration = Duration::from_secs(60);

/// A manual move that was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManualMove {
    /// The node.
    pub node: String,
    /// The state it was in.
    pub from: String,
    /// The state it is in now.
    pub to: String,
    /// Who moved it.
    pub by: String,
    /// When (epoch seconds).
    pub at: u64,
    /// Why, as the operator said.
    pub reason: Option<String>,
}

/// Why a manual move was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoveError {
    /// The node is not in the table.
    #[error("node {0} is not in the state table")]
    NoNode(String),
    /// The node was removed (a tombstone).
    #[error("node {0} was removed")]
    Removed(String),
    /// An invocation holds the node now.
    #[error(
        "node {node} is held by an invocation until {until} (epoch seconds); try again after it"
    )]
    Held {
        /// The node.
        node: String,
        /// When the lease ends.
        until: u64,
    },
    /// The node is not in the state the operator expected.
    #[error("node {node} is in {found:?}, not {expected:?}: nothing changed")]
    Conflict {
        /// The node.
        node: String,
        /// What `--from` said.
        expected: String,
        /// What the table holds.
        found: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Fault),
}

impl MoveError {
    /// What a retry can do: a held node and a failing store may be mended by waiting.
    pub fn is_transient(&self) -> bool {
        match self {
            MoveError::Held { .. } => true,
            MoveError::Store(f) => f.is_transient(),
            _ => false,
        }
    }
}

/// Moves node `id` from `from` to `to` for operator `by`: claims it (refused while an
/// invocation holds it), checks the state, records the move on the node
/// ([`ATTR_MANUAL_CHANGE`]), writes the state with the compare-and-set, releases it.
///
/// # Errors
/// A [`MoveError`]; nothing changed then.
pub async fn set_state(
    services: &Services,
    id: &str,
    (from, to): (&str, &str),
    by: &str,
    reason: Option<&str>,
) -> Result<ManualMove, MoveError> {
    let now = services.clock.now();
    let lease = Lease {
        owner: format!("operator:{by}:{:016x}", fastrand::u64(..)),
        until: now + LEASE,
    };
    let node = match services.nodes.claim(id, &lease, now).await? {
        Claim::Claimed { node, created } => {
            if created {
                services.nodes.release(id, &lease.owner).await?;
                return Err(MoveError::NoNode(id.to_owned()));
            }
            node
        }
        Claim::Held { until } => {
            return Err(MoveError::Held {
                node: id.to_owned(),
                until: epoch_secs(until),
            });
        }
        Claim::Removed => return Err(MoveError::Removed(id.to_owned())),
    };
    let moved = move_claimed(services, &node, (from, to), by, reason, &lease).await;
    if let Err(e) = services.nodes.release(id, &lease.owner).await {
        tracing::warn!(node = %id, error = %e, "could not release the node; the lease ends in a minute");
    }
    moved
}

async fn move_claimed(
    services: &Services,
    node: &lifecycle::Node,
    (from, to): (&str, &str),
    by: &str,
    reason: Option<&str>,
    lease: &Lease,
) -> Result<ManualMove, MoveError> {
    if node.status != from {
        return Err(MoveError::Conflict {
            node: node.id.clone(),
            expected: from.to_owned(),
            found: node.status.clone(),
        });
    }
    let done = ManualMove {
        node: node.id.clone(),
        from: from.to_owned(),
        to: to.to_owned(),
        by: by.to_owned(),
        at: epoch_secs(services.clock.now()),
        reason: reason.map(str::to_owned),
    };
    let mut record = Map::new();
    record.insert(ATTR_MANUAL_CHANGE.to_owned(), json!(done));
    services.nodes.set_properties(&node.id, &record).await?;
    match services
        .nodes
        .set_status(&node.id, from, to, Some(&lease.owner))
        .await
    {
        Ok(()) => {}
        Err(Fault::Conflict { found, .. }) => {
            return Err(MoveError::Conflict {
                node: node.id.clone(),
                expected: from.to_owned(),
                found,
            });
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(node = %node.id, %from, %to, %by, reason = reason.unwrap_or(""), "node moved by hand");
    Ok(done)
}

/// The record of the last manual move, as a node holds it.
pub fn last_manual_move(node: &lifecycle::Node) -> Option<&Value> {
    node.properties.get(ATTR_MANUAL_CHANGE)
}
