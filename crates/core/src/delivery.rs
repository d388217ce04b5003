//! Delivery guarantees (SPEC 9) as data and decisions: the items that make processing
//! exactly-once under at-least-once delivery, and what each conditional write of them decides.
//!
//! Four kinds of item and attribute share the state table with nodes and command records:
//!
//! - **The delivery** of an event, keyed by the lifecycle action token of a lifecycle event
//!   from Auto Scaling, else by the innermost event id ([`delivery_key`]). A lifecycle
//!   action's is an **entry on its node's item** (an attribute named by the key, [`on_node`]),
//!   begun by the same conditional write that claims the node ([`claim`]) and ended by the
//!   node's final write ([`write_node`]); any other event's is a **record of its own**
//!   (`delivery#<key>`), written before anything else. Either is `in_progress` until the
//!   invocation's deadline, so a crashed invocation never blocks its retry; `done` with the
//!   outcome and a day's expiry once processing ended; expired at once when it ended
//!   retryable, so the retry runs (and resumes the transition it had entered). A second
//!   delivery finds it and stops as a duplicate.
//! - **The lease** on a node (`LeaseOwner`, `LeaseUntil` on the node's own item): taken before
//!   the first side effect, ending at the invocation's deadline. Only its holder runs tasks
//!   and writes the node's state; everyone else waits for it (bounded) or stops having done
//!   nothing. The holder writes the node only before a task whose repetition matters and at
//!   the end ([`NodeWrite`]): states in between are not written on their own.
//! - **The send guard** (`send#<key>`): written before an SSM command is sent, holding the
//!   command id once sent, so a command goes out at most once per transition and node.
//! - **The tombstone**: what `remove_from_db` leaves in place of a node (`Removed`, with an
//!   expiry), so a late event does not bring the node back.
//!
//! Every write carries the invocation's token ([`Lease::owner`]) and accepts finding its own
//! token: when the SDK retries a conditional write whose first attempt succeeded but whose
//! response was lost, the retry recognises the write as its own instead of taking it for a
//! conflict.
//!
//! The functions here are the contract, over items as JSON maps: the embedded store applies
//! them as they are; the DynamoDB store writes each as a condition expression (docs/AWS.md
//! lists them side by side). Both are tested against the same expectations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::event::{Event, LifecycleTransition, Source};
use crate::fault::Fault;
use crate::node::{ATTR_IDENT, ATTR_STATUS, ATTR_TYPE, Node, STATUS_NEW};

/// Node attribute: the token of the invocation holding the node.
pub const ATTR_LEASE_OWNER: &str = "LeaseOwner";
/// Node attribute: when the lease ends (epoch milliseconds).
pub const ATTR_LEASE_UNTIL: &str = "LeaseUntil";
/// Node attribute: the node was removed (`remove_from_db`); the item is a tombstone.
pub const ATTR_REMOVED: &str = "Removed";
/// The attribute that holds an item's expiry (epoch seconds), DynamoDB's TTL attribute.
pub const ATTR_EXPIRES: &str = "ExpiresAt";
/// Delivery record attribute: [`IN_PROGRESS`] or [`DONE`].
pub const ATTR_DELIVERY: &str = "Delivery";
/// Delivery record and send guard attribute: the token of the invocation that wrote it.
pub const ATTR_OWNER: &str = "Owner";
/// Delivery record attribute: how the first processing ended (`stopped_by`, final state).
pub const ATTR_OUTCOME: &str = "Outcome";
/// Send guard attribute: the SSM command id, once sent.
pub const ATTR_COMMAND_ID: &str = "CommandId";
/// Delivery record attribute: the transition about to be committed, whose `after` tasks a
/// redelivery must run if this processing dies after the state write ([`Resume`]).
pub const ATTR_RESUME: &str = "Resume";

/// A delivery record whose processing is under way.
pub const IN_PROGRESS: &str = "in_progress";
/// A delivery record whose processing ended.
pub const DONE: &str = "done";

/// Key prefix of delivery records.
pub const DELIVERY_PREFIX: &str = "delivery#";
/// Key prefix of send guards.
pub const SEND_PREFIX: &str = "send#";

/// The node attributes that belong to the delivery machinery, not to the operator: never
/// shown as properties, never written by tasks.
pub const INTERNAL_ATTRIBUTES: &[&str] = &[ATTR_LEASE_OWNER, ATTR_LEASE_UNTIL];

/// An item of the state table: attribute name → JSON value.
pub type Item = Map<String, Value>;

/// The invocation acting on the table: its token, and when what it holds is released
/// without it (its deadline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// A token unique to the invocation (and to the record, in a batch).
    pub owner: String,
    /// When the lease, and an in-progress delivery record, end.
    pub until: SystemTime,
}

/// A transition an earlier processing of the event was committing: if the node is in `to`,
/// the state write happened and the trigger's `after` tasks may not have run — the
/// redelivery runs them (they are idempotent: guarded sends, UPSERTs, gone DELETEs,
/// completions of an action no longer active).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resume {
    /// The state the transition left.
    pub from: String,
    /// The trigger that fired.
    pub trigger: String,
    /// The state it entered.
    pub to: String,
    /// The trigger's `after` tasks all ran: a redelivery starts afresh from `to` — past the
    /// launch and termination guards, which the first processing passed — instead of running
    /// them again. Absent in markers written before it existed: they ran, to be safe, again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_done: bool,
}

/// What [`begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The delivery record is ours: process the event.
    Begun,
    /// The delivery record is ours, and an earlier processing of the event died while
    /// committing this transition: process the event, resuming it.
    Resume(Resume),
    /// The event was processed already.
    Done {
        /// How that processing ended.
        outcome: String,
    },
    /// Another invocation is processing the event now.
    InProgress {
        /// When its record expires.
        until: SystemTime,
    },
}

/// What a claim of a node found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The node is ours until the lease ends: here it is, as stored.
    Claimed {
        /// The node (status `new` when it was not in the table).
        node: Node,
        /// True when the claim created the item: there was no node.
        created: bool,
        /// The claim began the event's delivery entry, and an earlier processing of the
        /// event died (or ended retryable) having committed this transition: resume it.
        resume: Option<Resume>,
        /// Expired delivery entries of other events on the item: the final write drops them.
        stale: Vec<String>,
    },
    /// Another invocation holds the node (or is processing the same event).
    Held {
        /// When its lease ends.
        until: SystemTime,
    },
    /// The node was removed: the item is a tombstone.
    Removed,
    /// The event's delivery entry on the node says it was processed already.
    Done {
        /// How that processing ended.
        outcome: String,
    },
    /// The claim was asked to wait for cloud-init, and the node is still in it: nothing was
    /// written; here is the node as found (status `new` when it is not in the table).
    Waiting {
        /// The node.
        node: Node,
    },
}

/// What a reservation of a send found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The guard is ours: send.
    Fresh,
    /// The command was sent already, with this id.
    Sent {
        /// The SSM command id.
        command_id: String,
    },
    /// Another invocation reserved the send and did not record a command id: it may have
    /// sent it (and died, or lost the response). Look for the command before sending.
    Unknown,
}

/// The key of an event's delivery record: the lifecycle action token (with its transition)
/// for a lifecycle event from Auto Scaling — one action may come in events with different
/// ids — else the innermost event id; `None` for an event without either (it is processed
/// every time).
pub fn delivery_key(event: &Event) -> Option<String> {
    let action = event
        .lifecycle
        .as_ref()
        .filter(|_| event.source == Source::AutoScaling && event.command.is_none())
        .and_then(|l| Some((l.token.as_deref().filter(|t| !t.is_empty())?, l.transition)));
    match (action, event.id.as_deref().filter(|id| !id.is_empty())) {
        (Some((token, transition)), _) => {
            let kind = match transition {
                LifecycleTransition::Launching => "launching",
                LifecycleTransition::Terminating => "terminating",
            };
            Some(format!("{DELIVERY_PREFIX}action#{token}#{kind}"))
        }
        (None, Some(id)) => Some(format!("{DELIVERY_PREFIX}event#{id}")),
        (None, None) => None,
    }
}

/// The lifecycle action's timeout (epoch seconds) as far as this invocation knows it: when it
/// was due (the event's time plus the hook's heartbeat timeout, or what a command record
/// carried), pushed back by the last heartbeat this invocation sent. Never later than the
/// real one.
pub fn action_due(
    known: Option<u64>,
    last_beat: Option<u64>,
    timeout: Option<Duration>,
) -> Option<u64> {
    let by_beat = last_beat
        .zip(timeout)
        .map(|(b, t)| b.saturating_add(t.as_secs()));
    match (known, by_beat) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// SPEC 9: a transient error is retried — unless the lifecycle action times out within
/// `margin`: a retry would likely come too late, so the error is handled now, and the
/// configuration's failure triggers send its result on purpose. `Some(seconds left)` when
/// it is too near.
pub fn too_near(due: Option<u64>, now: SystemTime, margin: Duration) -> Option<u64> {
    let left = due?.saturating_sub(epoch_secs(now));
    (left < margin.as_secs()).then_some(left)
}

/// The key of a send guard for a command's idempotency key.
pub fn send_key(idempotency_key: &str) -> String {
    format!("{SEND_PREFIX}{idempotency_key}")
}

/// The second line of every command this library sends: `# key <idempotency key>`. It is
/// how a send whose outcome was lost is found again in SSM.
pub fn key_line(key: &str) -> String {
    format!("# key {key}")
}

/// An instant as epoch milliseconds (0 before the epoch).
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An instant as epoch seconds (DynamoDB's TTL unit).
pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Epoch milliseconds as an instant.
pub fn from_epoch_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name).and_then(Value::as_u64)
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(Value::as_str)
}

/// True when the item has expired (`ExpiresAt`, epoch seconds, is before `now`): DynamoDB's
/// TTL deletes lazily, so an expired item may still be read and must count as absent.
pub fn expired(item: &Item, now: SystemTime) -> bool {
    number(item, ATTR_EXPIRES).is_some_and(|at| at < epoch_secs(now))
}

/// The owner of a live lease on `item` other than `owner`, with its end.
fn held_by_other(item: &Item, owner: &str, now: SystemTime) -> Option<SystemTime> {
    let holder = string(item, ATTR_LEASE_OWNER)?;
    let until = number(item, ATTR_LEASE_UNTIL).unwrap_or(0);
    (holder != owner && until > epoch_ms(now)).then(|| from_epoch_ms(until))
}

/// True when the item is a tombstone.
pub fn is_tombstone(item: &Item) -> bool {
    item.get(ATTR_REMOVED).and_then(Value::as_bool) == Some(true)
}

/// The transition a delivery record says was being committed, if any ([`Resume`]).
pub fn resume_of(record: &Item) -> Option<Resume> {
    serde_json::from_value(record.get(ATTR_RESUME)?.clone()).ok()
}

/// What beginning found when the write went through: [`Begin::Resume`] when the record it
/// replaced (expired: its processing died) was committing a transition.
pub fn begun(old: Option<&Item>) -> Begin {
    old.filter(|o| string(o, ATTR_DELIVERY) == Some(IN_PROGRESS))
        .and_then(resume_of)
        .map_or(Begin::Begun, Begin::Resume)
}

/// Recording on `owner`'s delivery record the transition about to be committed; `None` when
/// the record is not `owner`'s.
pub fn mark(old: Option<&Item>, owner: &str, resume: &Resume) -> Option<Item> {
    let old = old.filter(|o| string(o, ATTR_OWNER) == Some(owner))?;
    let mut item = old.clone();
    item.insert(
        ATTR_RESUME.into(),
        serde_json::to_value(resume).unwrap_or(Value::Null),
    );
    Some(item)
}

/// Beginning a delivery: the record to write, or what stops it. The condition: no record, an
/// expired one, or one of ours. (What the replaced record said: [`begun`].)
///
/// # Errors
/// [`Begin::Done`] or [`Begin::InProgress`] when the record belongs to another processing.
pub fn begin(key: &str, old: Option<&Item>, lease: &Lease, now: SystemTime) -> Result<Item, Begin> {
    if let Some(old) = old.filter(|o| !expired(o, now))
        && string(old, ATTR_OWNER) != Some(lease.owner.as_str())
    {
        return Err(match string(old, ATTR_DELIVERY) {
            Some(DONE) => Begin::Done {
                outcome: string(old, ATTR_OUTCOME).unwrap_or_default().to_owned(),
            },
            _ => Begin::InProgress {
                until: from_epoch_ms(number(old, ATTR_EXPIRES).unwrap_or(0) * 1000),
            },
        });
    }
    let mut item = Item::new();
    item.insert(ATTR_IDENT.into(), key.into());
    item.insert(ATTR_DELIVERY.into(), IN_PROGRESS.into());
    item.insert(ATTR_OWNER.into(), lease.owner.clone().into());
    // Rounded up: the record never expires before the invocation's deadline.
    item.insert(ATTR_EXPIRES.into(), (epoch_secs(lease.until) + 1).into());
    Ok(item)
}

/// Ending a delivery that will not be retried: the record becomes `done`, with the outcome,
/// until `expires`. `None` when the record is not ours any more (it expired and another
/// invocation took it): nothing to write.
pub fn finish(old: Option<&Item>, owner: &str, outcome: &str, expires: SystemTime) -> Option<Item> {
    let old = old.filter(|o| string(o, ATTR_OWNER) == Some(owner))?;
    let mut item = old.clone();
    item.insert(ATTR_DELIVERY.into(), DONE.into());
    item.insert(ATTR_OUTCOME.into(), outcome.into());
    item.insert(ATTR_EXPIRES.into(), epoch_secs(expires).into());
    Some(item)
}

/// True when a delivery record may be given up by `owner` (processing ended retryable: the
/// retry must run).
pub fn may_forget(old: Option<&Item>, owner: &str) -> bool {
    old.is_some_and(|o| string(o, ATTR_OWNER) == Some(owner))
}

/// True when an operator's replay may drop the delivery record `old` so the event runs
/// again: its processing is done, or it expired (its invocation died). One in progress is
/// left alone: the replay then waits for it like any second delivery.
pub fn may_replay(old: Option<&Item>, now: SystemTime) -> bool {
    old.is_some_and(|o| string(o, ATTR_DELIVERY) == Some(DONE) || expired(o, now))
}

/// An operator's replay on a node's item: the item without the delivery entry `key` when
/// [`may_replay`] allows dropping it; `None` when there is nothing to drop.
pub fn drop_entry_for_replay(old: Option<&Item>, key: &str, now: SystemTime) -> Option<Item> {
    let old = old?;
    let entry = old.get(key).and_then(Value::as_object);
    if !may_replay(entry, now) {
        return None;
    }
    let mut item = old.clone();
    item.remove(key);
    Some(item)
}

/// Giving up a delivery that ended retryable: `owner`'s record, expired as of `now` so the
/// retry begins at once, still `in_progress` and still holding the transition it was
/// committing — a retry after the state write then resumes it and runs the trigger's `after`
/// tasks ([`begun`]), as a retry after a crash does. (Deleting the record would lose that: the
/// retry would find the node in the new state and run nothing.) `None` when the record is not
/// ours any more: nothing to write.
pub fn forget(old: Option<&Item>, owner: &str, now: SystemTime, keep_resume: bool) -> Option<Item> {
    let old = old.filter(|o| may_forget(Some(o), owner))?;
    let mut item = old.clone();
    if !keep_resume {
        // The committed transition's `after` tasks all ran: the retry starts afresh.
        item.remove(ATTR_RESUME);
    }
    item.insert(
        ATTR_EXPIRES.into(),
        epoch_secs(now).saturating_sub(1).into(),
    );
    Some(item)
}

/// What a claim does besides taking the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Claiming<'a> {
    /// Begin this delivery entry on the node in the same write ([`on_node`]).
    pub delivery: Option<&'a str>,
    /// Refuse while the node's status is one of these — cloud-init still runs (`new` stands
    /// for a node not in the table or without a status): [`Claim::Waiting`].
    pub waiting: Option<&'a [String]>,
}

impl<'a> Claiming<'a> {
    /// The lease alone (the CLI's `set-state`, the sweep).
    pub const LEASE_ONLY: Claiming<'static> = Claiming {
        delivery: None,
        waiting: None,
    };

    /// The lease and the delivery entry `key`.
    pub fn delivery(key: &'a str) -> Self {
        Claiming {
            delivery: Some(key),
            waiting: None,
        }
    }
}

/// What a claim writes: the node's item with the lease (and the delivery entry, when the
/// event's delivery lives on the node), and what the claim learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The item to write.
    pub item: Item,
    /// What an earlier, dead processing of the same event was committing ([`Resume`]).
    pub resume: Option<Resume>,
    /// Expired delivery entries of other events on the item, for the final write to drop.
    pub stale: Vec<String>,
}

/// Claiming a node: the item to write, or what stops it. The condition: not a tombstone, no
/// live lease of another invocation, and — when `delivery` names the event's delivery entry
/// on the node (a lifecycle event: [`on_node`]) — no entry of another processing that is done
/// or still live ([`begin`]'s rule). A missing item is created (status `new`). One write
/// thus both claims the node and records the event.
///
/// With `waiting` — the statuses in which a node still waits for cloud-init (`new` standing
/// for a node not in the table or without a status) — a node in one of them is not claimed
/// ([`Claim::Waiting`]): a lifecycle event claims before it reads, and cloud-init's last
/// write may replace the whole item, lease and delivery entry included.
///
/// # Errors
/// [`Claim::Held`], [`Claim::Removed`], [`Claim::Done`] or [`Claim::Waiting`]: the store's
/// answer as it is (never the large [`Claim::Claimed`]).
#[allow(clippy::result_large_err)]
pub fn claim(
    id: &str,
    old: Option<&Item>,
    lease: &Lease,
    with: Claiming<'_>,
    now: SystemTime,
) -> Result<Claimed, Claim> {
    let Claiming { delivery, waiting } = with;
    if let Some(old) = old {
        if is_tombstone(old) {
            return Err(Claim::Removed);
        }
        if let Some(until) = held_by_other(old, &lease.owner, now) {
            return Err(Claim::Held { until });
        }
    }
    if let Some(waiting) = waiting {
        let status = old
            .and_then(|o| string(o, ATTR_STATUS))
            .unwrap_or(STATUS_NEW);
        if waiting.iter().any(|w| w == status) {
            let node = match old {
                Some(o) => Node::from_item(o.clone()).unwrap_or_else(|_| Node::absent(id)),
                None => Node::absent(id),
            };
            return Err(Claim::Waiting { node });
        }
    }
    let mut item = old.cloned().unwrap_or_default();
    item.insert(ATTR_IDENT.into(), id.into());
    item.insert(ATTR_LEASE_OWNER.into(), lease.owner.clone().into());
    item.insert(ATTR_LEASE_UNTIL.into(), epoch_ms(lease.until).into());
    let mut resume = None;
    if let Some(key) = delivery {
        let entry = old.and_then(|o| o.get(key)).and_then(Value::as_object);
        let mut fresh = begin(key, entry, lease, now).map_err(|found| match found {
            Begin::Done { outcome } => Claim::Done { outcome },
            Begin::InProgress { until } => Claim::Held { until },
            Begin::Begun | Begin::Resume(_) => Claim::Held { until: now },
        })?;
        fresh.remove(ATTR_IDENT);
        if let Begin::Resume(r) = begun(entry) {
            fresh.insert(
                ATTR_RESUME.into(),
                serde_json::to_value(&r).unwrap_or(Value::Null),
            );
            resume = Some(r);
        }
        item.insert(key.to_owned(), Value::Object(fresh));
    }
    let stale = item
        .iter()
        .filter(|(k, v)| {
            k.starts_with(DELIVERY_PREFIX)
                && Some(k.as_str()) != delivery
                && v.as_object().is_none_or(|e| expired(e, now))
        })
        .map(|(k, _)| k.clone())
        .collect();
    Ok(Claimed {
        item,
        resume,
        stale,
    })
}

/// The node a claimed item holds, and whether the claim created it.
///
/// # Errors
/// [`Fault::Corrupt`] for an item that is not a node.
pub fn claimed(claim: Claimed, existed: bool) -> Result<Claim, Fault> {
    Ok(Claim::Claimed {
        node: Node::from_item(claim.item)?,
        created: !existed,
        resume: claim.resume,
        stale: claim.stale,
    })
}

/// True when an event's delivery entry lives on its node's item rather than in a delivery
/// record of its own: a lifecycle event (not a command's status) — its node is known before
/// anything is read, so the claim records the event in the same write. Others (command
/// status events, scheduled events) keep a delivery record.
pub fn on_node(event: &Event) -> bool {
    event.lifecycle.is_some() && event.command.is_none()
}

/// Releasing a node: the item without the lease, `None` to delete it (the claim created it
/// and nothing was written since: no status, no type), or `Err(())` when the lease is not
/// `owner`'s (it ended and another invocation holds the node, or the node was removed):
/// nothing to change.
#[allow(clippy::result_unit_err)]
pub fn release(old: Option<&Item>, owner: &str) -> Result<Option<Item>, ()> {
    let old = old
        .filter(|o| string(o, ATTR_LEASE_OWNER) == Some(owner))
        .ok_or(())?;
    if is_bare(old) {
        return Ok(None);
    }
    let mut item = old.clone();
    for a in INTERNAL_ATTRIBUTES {
        item.remove(*a);
    }
    Ok(Some(item))
}

/// True when an item holds nothing but its key, a lease and delivery entries: what a claim
/// of a node that was not in the table leaves.
pub fn is_bare(item: &Item) -> bool {
    item.keys().all(|k| k == ATTR_IDENT || is_internal(k))
}

/// True for an attribute of the delivery machinery on a node's item — the lease, and the
/// delivery entries of its lifecycle events — never shown as a property, never written by a
/// task.
pub fn is_internal(name: &str) -> bool {
    INTERNAL_ATTRIBUTES.contains(&name) || name.starts_with(DELIVERY_PREFIX)
}

/// What a write to a delivery entry on the node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryWrite {
    /// Record the transition being committed (before a side effect whose repetition matters).
    Mark(Resume),
    /// Processing ended for good: `done`, with its outcome, remembered until `expires`.
    Done {
        /// `stopped_by`, and the final state.
        outcome: String,
        /// When a redelivery is no longer recognised.
        expires: SystemTime,
    },
    /// Processing ended retryable: the entry expires as of `now`, so the retry begins at once,
    /// holding `resume` (`None`: whatever marker it holds stays) for the retry to resume.
    Forget {
        /// Now.
        now: SystemTime,
        /// The transition the retry resumes.
        resume: Option<Resume>,
    },
}

/// One write by the invocation holding a node (SPEC 9): the state reached (compare-and-set
/// on the state the table holds), properties, its delivery entry, dropping expired entries,
/// and — the final write — the release of the lease. Intermediate states between which no
/// side effect ran are never written on their own: the engine defers them, so a whole
/// launch is one such write at the end.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeWrite {
    /// `(expected, new)`: the status the table holds and the one to write.
    pub status: Option<(String, String)>,
    /// Properties to set (`ItemType`, `TransientAttempts`, `ChangedAt`).
    pub properties: Item,
    /// The event's delivery entry on the node, and what to write in it.
    pub delivery: Option<(String, EntryWrite)>,
    /// Delivery entries to drop (expired ones of other events).
    pub prune: Vec<String>,
    /// Release the lease (the final write); a node the claim created and nothing was written
    /// to is deleted.
    pub release: bool,
}

/// What [`write_node`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// Write this item.
    Item(Item),
    /// Delete the item: the claim created it and nothing of a node was ever written.
    Delete,
    /// Nothing to write: the write was made already (our own, whose response was lost), or
    /// the node was removed by this processing.
    Unchanged,
}

/// A write by `owner`, the lease holder: the item to write, or the conflict. The condition:
/// the item is a node (not a tombstone) under `owner`'s lease, in the expected status.
/// Finding it without our lease but in the state this very write leaves — the entry ours and
/// settled, the status the new one — is our own write whose response was lost
/// ([`Written::Unchanged`]).
///
/// # Errors
/// [`Fault::Conflict`] naming the status found.
pub fn write_node(
    id: &str,
    old: Option<&Item>,
    owner: &str,
    w: &NodeWrite,
) -> Result<Written, Fault> {
    let found = old
        .and_then(|o| string(o, ATTR_STATUS))
        .unwrap_or(STATUS_NEW)
        .to_owned();
    let conflict = |found: String| Fault::Conflict {
        id: id.to_owned(),
        expected: w
            .status
            .as_ref()
            .map_or_else(|| found.clone(), |(e, _)| e.clone()),
        found,
    };
    let Some(old) = old.filter(|o| !is_tombstone(o)) else {
        // Removed (by this processing's `remove_from_db`, or the item is gone): a final
        // write without a state to record has nothing left to do.
        return if w.status.is_none() && w.release {
            Ok(Written::Unchanged)
        } else {
            Err(conflict(if old.is_some() {
                "(removed)".into()
            } else {
                found
            }))
        };
    };
    if string(old, ATTR_LEASE_OWNER) != Some(owner) {
        return if w.release && written_already(old, owner, w, &found) {
            Ok(Written::Unchanged)
        } else {
            Err(conflict(found))
        };
    }
    if let Some((expected, new)) = &w.status
        && found != *expected
        && found != *new
    {
        return Err(conflict(found));
    }
    let mut item = old.clone();
    if let Some((_, new)) = &w.status {
        item.insert(ATTR_STATUS.into(), new.clone().into());
    }
    for (k, v) in &w.properties {
        if k != ATTR_IDENT && k != ATTR_STATUS && !is_internal(k) {
            item.insert(k.clone(), v.clone());
        }
    }
    if let Some((key, write)) = &w.delivery
        && let Some(entry) = item.get_mut(key).and_then(Value::as_object_mut)
    {
        write_entry(entry, write);
    }
    for k in &w.prune {
        item.remove(k);
    }
    if w.release {
        if is_bare(&item) {
            return Ok(Written::Delete);
        }
        for a in INTERNAL_ATTRIBUTES {
            item.remove(*a);
        }
    }
    Ok(Written::Item(item))
}

/// Applies `write` to a delivery entry.
fn write_entry(entry: &mut Item, write: &EntryWrite) {
    match write {
        EntryWrite::Mark(r) => {
            entry.insert(
                ATTR_RESUME.into(),
                serde_json::to_value(r).unwrap_or(Value::Null),
            );
        }
        EntryWrite::Done { outcome, expires } => {
            entry.insert(ATTR_DELIVERY.into(), DONE.into());
            entry.insert(ATTR_OUTCOME.into(), outcome.clone().into());
            entry.insert(ATTR_EXPIRES.into(), epoch_secs(*expires).into());
            entry.remove(ATTR_RESUME);
        }
        EntryWrite::Forget { now, resume } => {
            entry.insert(
                ATTR_EXPIRES.into(),
                epoch_secs(*now).saturating_sub(1).into(),
            );
            if let Some(r) = resume {
                entry.insert(
                    ATTR_RESUME.into(),
                    serde_json::to_value(r).unwrap_or(Value::Null),
                );
            }
        }
    }
}

/// True when `old` is already what `owner`'s final write leaves: its delivery entry ours and
/// settled as the write settles it, and the status the new one.
fn written_already(old: &Item, owner: &str, w: &NodeWrite, found: &str) -> bool {
    let status_ok = w.status.as_ref().is_none_or(|(_, new)| new == found);
    let entry_ok = match &w.delivery {
        None => w.status.is_some(),
        Some((key, write)) => old
            .get(key)
            .and_then(Value::as_object)
            .filter(|e| string(e, ATTR_OWNER) == Some(owner))
            .is_some_and(|e| match write {
                EntryWrite::Done { .. } => string(e, ATTR_DELIVERY) == Some(DONE),
                EntryWrite::Forget { now, .. } => expired(e, *now),
                EntryWrite::Mark(_) => false,
            }),
    };
    status_ok && entry_ok
}

/// A node's status write by the lease holder `owner` (or by anyone, `None`, for a node
/// nobody claims: the CLI's `set-state`). The condition: the status is still `expected` (a
/// missing item or status counts as `new`) and, for an owner, the lease is still `owner`'s.
/// Finding the status already `new` under `owner`'s lease is our own write whose response
/// was lost: it succeeds without change (`Ok(None)`).
///
/// # Errors
/// [`Fault::Conflict`] naming the status found.
pub fn set_status(
    id: &str,
    old: Option<&Item>,
    expected: &str,
    new: &str,
    owner: Option<&str>,
) -> Result<Option<Item>, Fault> {
    let found = old
        .and_then(|o| string(o, ATTR_STATUS))
        .unwrap_or(STATUS_NEW)
        .to_owned();
    let holder = old.and_then(|o| string(o, ATTR_LEASE_OWNER));
    let ours = owner.is_none_or(|me| holder == Some(me));
    if ours && owner.is_some() && found == new && found != expected {
        return Ok(None);
    }
    if found != expected || !ours || old.is_some_and(is_tombstone) {
        return Err(Fault::Conflict {
            id: id.to_owned(),
            expected: expected.to_owned(),
            found,
        });
    }
    let mut item = old.cloned().unwrap_or_default();
    item.insert(ATTR_IDENT.into(), id.into());
    item.insert(ATTR_STATUS.into(), new.into());
    Ok(Some(item))
}

/// The tombstone `remove_from_db` leaves for node `id`, expiring at `expires`. It has no
/// `ItemType`, so no node query sees it.
pub fn tombstone(id: &str, expires: SystemTime) -> Item {
    let mut item = Item::new();
    item.insert(ATTR_IDENT.into(), id.into());
    item.insert(ATTR_REMOVED.into(), true.into());
    item.insert(ATTR_EXPIRES.into(), epoch_secs(expires).into());
    item
}

/// Reserving a send: the guard to write, or what was found. The condition: no guard, an
/// expired one, or one of ours without a command id.
///
/// # Errors
/// [`Reservation::Sent`] or [`Reservation::Unknown`].
pub fn reserve(
    key: &str,
    old: Option<&Item>,
    owner: &str,
    expires: SystemTime,
    now: SystemTime,
) -> Result<Item, Reservation> {
    if let Some(old) = old.filter(|o| !expired(o, now)) {
        if let Some(id) = string(old, ATTR_COMMAND_ID) {
            return Err(Reservation::Sent {
                command_id: id.to_owned(),
            });
        }
        if string(old, ATTR_OWNER) != Some(owner) {
            return Err(Reservation::Unknown);
        }
    }
    let mut item = Item::new();
    item.insert(ATTR_IDENT.into(), key.into());
    item.insert(ATTR_OWNER.into(), owner.into());
    item.insert(ATTR_EXPIRES.into(), epoch_secs(expires).into());
    Ok(item)
}

/// Taking over a guard found [`Reservation::Unknown`] once the command was looked for and not
/// found: the guard becomes `owner`'s.
pub fn take_over(old: Option<&Item>, key: &str, owner: &str, expires: SystemTime) -> Item {
    let mut item = old.cloned().unwrap_or_default();
    item.insert(ATTR_IDENT.into(), key.into());
    item.insert(ATTR_OWNER.into(), owner.into());
    item.insert(ATTR_EXPIRES.into(), epoch_secs(expires).into());
    item.remove(ATTR_COMMAND_ID);
    item
}

/// Recording the command id on a guard.
pub fn mark_sent(old: Option<&Item>, key: &str, command_id: &str, expires: SystemTime) -> Item {
    let mut item = old.cloned().unwrap_or_default();
    item.insert(ATTR_IDENT.into(), key.into());
    item.insert(ATTR_COMMAND_ID.into(), command_id.into());
    item.insert(ATTR_EXPIRES.into(), epoch_secs(expires).into());
    item
}

/// True when an item is one of the delivery machinery's own (a delivery record or a send
/// guard), not a node or a command record.
pub fn is_machinery(item: &Item) -> bool {
    string(item, ATTR_IDENT)
        .is_some_and(|id| id.starts_with(DELIVERY_PREFIX) || id.starts_with(SEND_PREFIX))
        && !item.contains_key(ATTR_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(owner: &str, until_ms: u64) -> Lease {
        Lease {
            owner: owner.into(),
            until: from_epoch_ms(until_ms),
        }
    }

    fn at(ms: u64) -> SystemTime {
        from_epoch_ms(ms)
    }

    #[test]
    fn a_second_begin_sees_the_first_in_progress_then_done() {
        let a = lease("a", 60_000);
        let rec = begin("k", None, &a, at(0)).unwrap();
        let b = lease("b", 60_000);
        assert!(matches!(
            begin("k", Some(&rec), &b, at(1_000)),
            Err(Begin::InProgress { .. })
        ));
        // Our own retried write is ours.
        assert!(begin("k", Some(&rec), &a, at(1_000)).is_ok());
        let done = finish(Some(&rec), "a", "no_state_change", at(86_400_000)).unwrap();
        assert_eq!(
            begin("k", Some(&done), &b, at(2_000)),
            Err(Begin::Done {
                outcome: "no_state_change".into()
            })
        );
        // A crashed invocation's record expires at its deadline.
        assert!(begin("k", Some(&rec), &b, at(62_000)).is_ok());
        // Not ours any more: nothing to finish or forget.
        assert_eq!(finish(Some(&rec), "b", "x", at(0)), None);
        assert!(!may_forget(Some(&rec), "b"));
    }

    #[test]
    fn a_claim_excludes_others_until_the_lease_ends_and_refuses_tombstones() {
        let a = lease("a", 10_000);
        let item = claim("i-1", None, &a, Claiming::LEASE_ONLY, at(0))
            .unwrap()
            .item;
        assert!(is_bare(&item));
        let b = lease("b", 20_000);
        assert_eq!(
            claim("i-1", Some(&item), &b, Claiming::LEASE_ONLY, at(5_000)),
            Err(Claim::Held { until: at(10_000) })
        );
        assert!(claim("i-1", Some(&item), &a, Claiming::LEASE_ONLY, at(5_000)).is_ok());
        assert!(claim("i-1", Some(&item), &b, Claiming::LEASE_ONLY, at(10_001)).is_ok());
        let t = tombstone("i-1", at(0));
        assert_eq!(
            claim("i-1", Some(&t), &a, Claiming::LEASE_ONLY, at(0)),
            Err(Claim::Removed)
        );
        // A bare claim is deleted on release; a node keeps its item without the lease.
        assert_eq!(release(Some(&item), "a"), Ok(None));
        assert_eq!(release(Some(&item), "b"), Err(()));
        let mut node = item.clone();
        node.insert(ATTR_STATUS.into(), "ready".into());
        let released = release(Some(&node), "a").unwrap().unwrap();
        assert!(!released.contains_key(ATTR_LEASE_OWNER));
        assert_eq!(released.get(ATTR_STATUS), Some(&Value::from("ready")));
    }

    fn node(status: &str) -> Item {
        let mut item = Item::new();
        item.insert(ATTR_IDENT.into(), "i-1".into());
        item.insert(ATTR_STATUS.into(), status.into());
        item
    }

    fn final_write(key: &str, status: Option<(&str, &str)>, outcome: &str) -> NodeWrite {
        NodeWrite {
            status: status.map(|(a, b)| (a.to_owned(), b.to_owned())),
            delivery: Some((
                key.to_owned(),
                EntryWrite::Done {
                    outcome: outcome.into(),
                    expires: at(86_400_000),
                },
            )),
            release: true,
            ..NodeWrite::default()
        }
    }

    fn written(w: Result<Written, Fault>) -> Item {
        match w {
            Ok(Written::Item(item)) => item,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_claim_records_the_event_on_the_node_and_a_redelivery_is_a_duplicate() {
        let key = "delivery#action#t#launching";
        let a = lease("a", 60_000);
        let claimed = claim(
            "i-1",
            Some(&node("finished_cloud_init")),
            &a,
            Claiming::delivery(key),
            at(0),
        )
        .unwrap();
        assert_eq!(claimed.resume, None);
        let item = claimed.item;
        // The entry is not a property of the node.
        let n = Node::from_item(item.clone()).unwrap();
        assert!(n.properties.is_empty(), "{:?}", n.properties);
        // While it runs, a second delivery is held off, as by the lease.
        let b = lease("b", 70_000);
        assert!(matches!(
            claim("i-1", Some(&item), &b, Claiming::delivery(key), at(1_000)),
            Err(Claim::Held { .. })
        ));
        // One final write: the state reached, the entry done, the lease released.
        let w = final_write(
            key,
            Some(("finished_cloud_init", "ready")),
            "no_trigger in ready",
        );
        let done = written(write_node("i-1", Some(&item), "a", &w));
        assert!(!done.contains_key(ATTR_LEASE_OWNER));
        assert_eq!(done.get(ATTR_STATUS), Some(&Value::from("ready")));
        assert_eq!(
            claim("i-1", Some(&done), &b, Claiming::delivery(key), at(2_000)),
            Err(Claim::Done {
                outcome: "no_trigger in ready".into()
            })
        );
        // Another event of the node is not held up by it.
        assert!(
            claim(
                "i-1",
                Some(&done),
                &b,
                Claiming::delivery("delivery#event#x"),
                at(2_000)
            )
            .is_ok()
        );
        // The SDK's retry of the final write, whose response was lost, finds it made: ours.
        assert_eq!(
            write_node("i-1", Some(&done), "a", &w),
            Ok(Written::Unchanged)
        );
        // Anyone else's final write conflicts.
        assert!(matches!(
            write_node("i-1", Some(&done), "b", &w),
            Err(Fault::Conflict { .. })
        ));
    }

    #[test]
    fn a_redelivery_after_a_crash_resumes_the_marked_transition_and_prunes_stale_entries() {
        let key = "delivery#action#t#launching";
        let a = lease("a", 60_000);
        let mut old = node("finished_cloud_init");
        let mut stale = Item::new();
        stale.insert(ATTR_EXPIRES.into(), 1.into());
        old.insert("delivery#event#old".into(), Value::Object(stale));
        let claimed = claim("i-1", Some(&old), &a, Claiming::delivery(key), at(10_000)).unwrap();
        assert_eq!(claimed.stale, vec!["delivery#event#old".to_owned()]);
        let marker = Resume {
            from: "finished_cloud_init".into(),
            trigger: "join".into(),
            to: "joining".into(),
            after_done: false,
        };
        // A flush before a task whose repetition matters: the state and the marker.
        let flush = NodeWrite {
            status: Some(("finished_cloud_init".into(), "joining".into())),
            delivery: Some((key.into(), EntryWrite::Mark(marker.clone()))),
            ..NodeWrite::default()
        };
        let flushed = written(write_node("i-1", Some(&claimed.item), "a", &flush));
        // The invocation dies; its lease and entry expire. The redelivery resumes.
        let b = lease("b", 200_000);
        let again = claim(
            "i-1",
            Some(&flushed),
            &b,
            Claiming::delivery(key),
            at(62_000),
        )
        .unwrap();
        assert_eq!(again.resume, Some(marker));
        // Its final write drops the stale entry, and a bare item would go entirely.
        let mut w = final_write(key, Some(("joining", "ready")), "x");
        w.prune = again.stale.clone();
        let done = written(write_node("i-1", Some(&again.item), "b", &w));
        assert!(!done.contains_key("delivery#event#old"));
        let bare = claim("i-2", None, &a, Claiming::delivery(key), at(0))
            .unwrap()
            .item;
        assert_eq!(
            write_node("i-2", Some(&bare), "a", &final_write(key, None, "x")),
            Ok(Written::Delete)
        );
    }

    #[test]
    fn a_write_needs_the_lease_and_the_status_written_last() {
        let a = lease("a", 60_000);
        let item = claim("i-1", Some(&node("ready")), &a, Claiming::LEASE_ONLY, at(0))
            .unwrap()
            .item;
        let w = NodeWrite {
            status: Some(("offline".into(), "drained".into())),
            ..NodeWrite::default()
        };
        assert!(matches!(
            write_node("i-1", Some(&item), "a", &w),
            Err(Fault::Conflict { found, .. }) if found == "ready"
        ));
        let w = NodeWrite {
            status: Some(("ready".into(), "offline".into())),
            ..NodeWrite::default()
        };
        let moved = written(write_node("i-1", Some(&item), "a", &w));
        // Our own write again (a lost response) is ours; another's is not.
        assert!(write_node("i-1", Some(&moved), "a", &w).is_ok());
        assert!(write_node("i-1", Some(&moved), "b", &w).is_err());
        // A node removed by this processing: the final write has nothing left to do.
        let t = tombstone("i-1", at(0));
        let last = NodeWrite {
            release: true,
            ..NodeWrite::default()
        };
        assert_eq!(
            write_node("i-1", Some(&t), "a", &last),
            Ok(Written::Unchanged)
        );
    }

    #[test]
    fn a_send_is_reserved_once() {
        let g = reserve("send#k", None, "a", at(100_000), at(0)).unwrap();
        assert_eq!(
            reserve("send#k", Some(&g), "b", at(100_000), at(0)),
            Err(Reservation::Unknown)
        );
        assert!(reserve("send#k", Some(&g), "a", at(100_000), at(0)).is_ok());
        let sent = mark_sent(Some(&g), "send#k", "cmd-1", at(100_000));
        assert_eq!(
            reserve("send#k", Some(&sent), "a", at(100_000), at(0)),
            Err(Reservation::Sent {
                command_id: "cmd-1".into()
            })
        );
        let mine = take_over(Some(&g), "send#k", "b", at(100_000));
        assert!(reserve("send#k", Some(&mine), "b", at(100_000), at(0)).is_ok());
    }
}
