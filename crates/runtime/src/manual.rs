//! An operator's manual move of a node (`lifecycle set-state`): the same lease and
//! compare-and-set every event uses (SPEC 9), so it never races an invocation into a double
//! step, and a record on the node of who moved it, when and why.

use std::time::Duration;

use lifecycle::Fault;
use lifecycle::delivery::{Claim, Claiming, Lease, NodeWrite, epoch_ms, epoch_secs};
use lifecycle::node::ATTR_CHANGED_AT;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::capability::Services;

/// Node attribute recording the last manual move: `{by, at, reason, from, to}`.
pub const ATTR_MANUAL_CHANGE: &str = "LastManualChange";

/// How long the operator's lease lasts: the move takes two writes.
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
    let node = match services
        .nodes
        .claim(id, &lease, Claiming::LEASE_ONLY, now)
        .await?
    {
        Claim::Claimed { node, created, .. } => {
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
        // Not asked for: the claim named no delivery and no waiting.
        Claim::Done { .. } | Claim::Waiting { .. } => {
            return Err(MoveError::NoNode(id.to_owned()));
        }
    };
    let moved = move_claimed(services, &node, (from, to), by, reason, &lease).await;
    // The move's write released the node; a refused move did not.
    if moved.is_err()
        && let Err(e) = services.nodes.release(id, &lease.owner).await
    {
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
    // One write: the state, the record of who moved it, when it changed, and the release.
    let mut properties = Map::new();
    properties.insert(ATTR_MANUAL_CHANGE.to_owned(), json!(done));
    properties.insert(
        ATTR_CHANGED_AT.to_owned(),
        epoch_ms(services.clock.now()).into(),
    );
    let write = NodeWrite {
        status: Some((from.to_owned(), to.to_owned())),
        properties,
        release: true,
        ..NodeWrite::default()
    };
    match services.nodes.write(&node.id, &lease.owner, &write).await {
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

/// One node as an operator sees it (`lifecycle nodes`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    /// The instance id.
    pub node: String,
    /// Its state.
    pub state: String,
    /// `ItemType`, when it has one.
    pub item_type: Option<String>,
    /// The invocation holding it, if any: its token and when the lease ends (epoch seconds).
    pub lease: Option<(String, u64)>,
    /// When its state last changed (`ChangedAt`, epoch seconds), if known.
    pub changed_at: Option<u64>,
    /// How long ago that was, in seconds, if known.
    pub age_secs: Option<u64>,
    /// Commands sent for it whose status has not come back yet (command ids).
    pub pending_commands: Vec<String>,
    /// Deliveries in a row that ended with a transient fault.
    pub transient_attempts: u32,
    /// The last manual move, if any.
    pub last_manual_change: Option<Value>,
    /// What needs a look: `failure` (stopped in the failure state), `stale-lease` (a lease
    /// past its end: its invocation died), `untyped` (no `ItemType`: node queries miss it),
    /// `retrying` (transient faults in a row), `stale` (unchanged for `stale_after` while it
    /// waits: a command in flight, or cloud-init's state).
    pub flags: Vec<&'static str>,
}

/// Every node of a table's `items`, as an operator sees it, in key order; `item_type`
/// keeps those of one type. Tombstones, delivery records, send guards and command records are
/// not nodes (command records show as a node's pending commands); a malformed item is
/// skipped (and logged). A node that waits — on a command in flight, or in one of
/// cloud-init's states — and has not changed for `stale_after` is flagged `stale`.
pub fn fleet(
    items: &[Map<String, Value>],
    item_type: Option<&str>,
    now: std::time::SystemTime,
    stale_after: Duration,
) -> Vec<NodeView> {
    use lifecycle::delivery::{ATTR_LEASE_OWNER, ATTR_LEASE_UNTIL, is_machinery, is_tombstone};
    use lifecycle::node::{ATTR_TYPE, TYPE_COMMAND};
    let is_command =
        |i: &Map<String, Value>| i.get(ATTR_TYPE).and_then(Value::as_str) == Some(TYPE_COMMAND);
    let mut pending: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for item in items.iter().filter(|i| is_command(i)) {
        if let Ok(record) = lifecycle::CommandRecord::from_item(item) {
            for instance in &record.running_on {
                pending
                    .entry(instance.clone())
                    .or_default()
                    .push(record.id.clone());
            }
            if let Some(lc) = &record.lifecycle
                && !record.running_on.contains(&lc.instance_id)
            {
                pending
                    .entry(lc.instance_id.clone())
                    .or_default()
                    .push(record.id.clone());
            }
        }
    }
    let now_ms = lifecycle::delivery::epoch_ms(now);
    let mut views: Vec<NodeView> = items
        .iter()
        .filter(|i| !is_command(i) && !is_machinery(i) && !is_tombstone(i))
        .filter_map(|item| {
            let lease = item
                .get(ATTR_LEASE_OWNER)
                .and_then(Value::as_str)
                .map(|owner| {
                    let until = item
                        .get(ATTR_LEASE_UNTIL)
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    (owner.to_owned(), until)
                });
            let node = lifecycle::Node::from_query_item(item.clone())?;
            let mut flags = Vec::new();
            if node.status == lifecycle::config::FAILURE_STATE {
                flags.push("failure");
            }
            if lease.as_ref().is_some_and(|(_, until)| *until <= now_ms) {
                flags.push("stale-lease");
            }
            if node.item_type().is_none() {
                flags.push("untyped");
            }
            if node.transient_attempts() > 0 {
                flags.push("retrying");
            }
            let pending_commands = pending.remove(&node.id).unwrap_or_default();
            let changed_at = node.changed_at();
            let age = changed_at.map(|at| now.duration_since(at).unwrap_or_default());
            let waits = !pending_commands.is_empty() || node.is_new();
            if waits && age.is_some_and(|a| a >= stale_after) {
                flags.push("stale");
            }
            Some(NodeView {
                pending_commands,
                changed_at: changed_at.map(epoch_secs),
                age_secs: age.map(|a| a.as_secs()),
                item_type: node.item_type().map(str::to_owned),
                lease: lease.map(|(owner, until)| (owner, until / 1000)),
                transient_attempts: node.transient_attempts(),
                last_manual_change: last_manual_move(&node).cloned(),
                state: node.status,
                node: node.id,
                flags,
            })
        })
        .filter(|v| item_type.is_none_or(|t| v.item_type.as_deref() == Some(t)))
        .collect();
    views.sort_by(|a, b| a.node.cmp(&b.node));
    views
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn the_fleet_flags_what_needs_a_look() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1000);
        let items = vec![
            item(json!({"Ident": "cmd-1", "ItemType": "command", "RunningOn": "i-1"})),
            item(json!({"Ident": "delivery#event#e1", "Delivery": "done"})),
            item(json!({"Ident": "i-0", "Removed": true, "ExpiresAt": 5000})),
            item(json!({"Ident": "i-1", "ItemStatus": "joining", "ItemType": "worker"})),
            item(
                json!({"Ident": "i-2", "ItemStatus": "failure", "ItemType": "worker",
                        "LeaseOwner": "dead", "LeaseUntil": 999_000, "TransientAttempts": 2}),
            ),
            item(json!({"Ident": "i-3", "ItemStatus": "ready"})),
            item(json!({"Ident": "i-4", "ItemStatus": 7})),
        ];
        let views = fleet(&items, None, now, Duration::from_secs(600));
        let ids: Vec<&str> = views.iter().map(|v| v.node.as_str()).collect();
        assert_eq!(
            ids,
            ["i-1", "i-2", "i-3"],
            "no tombstone, record or bad item"
        );
        assert_eq!(views[0].pending_commands, ["cmd-1"]);
        assert!(views[0].flags.is_empty());
        assert_eq!(views[1].flags, ["failure", "stale-lease", "retrying"]);
        assert_eq!(views[1].lease, Some(("dead".into(), 999)));
        assert_eq!(views[2].flags, ["untyped"]);
        assert_eq!(
            fleet(&items, Some("worker"), now, Duration::from_secs(600)).len(),
            2
        );
        assert_eq!(views[0].age_secs, None, "no ChangedAt");
    }

    #[test]
    fn the_age_of_the_last_change_and_stale_waits() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(10_000);
        let items = vec![
            item(json!({"Ident": "cmd-1", "ItemType": "command", "RunningOn": "i-1"})),
            item(json!({"Ident": "i-1", "ItemStatus": "joining", "ChangedAt": 9_000_000})),
            item(json!({"Ident": "i-2", "ItemStatus": "ready", "ChangedAt": 1_000_000})),
            item(json!({"Ident": "i-3", "ItemStatus": "pending", "ChangedAt": 9_500_000})),
            item(
                json!({"Ident": "i-4", "ItemStatus": "finished_cloud_init", "ChangedAt": 9_300_000}),
            ),
        ];
        let views = fleet(&items, None, now, Duration::from_secs(600));
        let ages: Vec<Option<u64>> = views.iter().map(|v| v.age_secs).collect();
        assert_eq!(ages, [Some(1000), Some(9000), Some(500), Some(700)]);
        assert_eq!(views[0].changed_at, Some(9000));
        assert!(
            views[0].flags.contains(&"stale"),
            "a command in flight for 1000 s"
        );
        assert!(!views[1].flags.contains(&"stale"), "ready is not waiting");
        assert!(!views[2].flags.contains(&"stale"), "500 s is not long yet");
        assert!(
            views[3].flags.contains(&"stale"),
            "cloud-init's state for 700 s"
        );
    }
}
