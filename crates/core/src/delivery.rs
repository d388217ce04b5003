//! Delivery guarantees (SPEC 9) as data and decisions: the items that make processing
//! exactly-once under at-least-once delivery, and what each conditional write of them decides.
//!
//! Four kinds of item share the state table with nodes and command records:
//!
//! - **The delivery record** (`delivery#<key>`): one per event, keyed by the lifecycle
//!   action token of a lifecycle event from Auto Scaling, else by the innermost event id
//!   ([`delivery_key`]). Written `in_progress` before anything else, expiring at the
//!   invocation's deadline, so a crashed invocation never blocks its retry; `done` with the
//!   outcome and a day's expiry once processing ended; expired at once when it ended
//!   retryable, so the retry runs (and resumes a transition it had committed). A second
//!   delivery finds it and stops as a duplicate.
//! - **The lease** on a node (`LeaseOwner`, `LeaseUntil` on the node's own item): taken before
//!   the first side effect, ending at the invocation's deadline. Only its holder runs tasks
//!   and writes the node's state; everyone else waits for it (bounded) or stops having done
//!   nothing.
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
    },
    /// Another invocation holds the node.
    Held {
        /// When its lease ends.
        until: SystemTime,
    },
    /// The node was removed: the item is a tombstone.
    Removed,
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

/// Claiming a node: the item to write, or what stops it. The condition: not a tombstone,
/// and no live lease of another invocation. A missing item is created (status `new`).
///
/// # Errors
/// [`Claim::Held`] or [`Claim::Removed`].
pub fn claim(id: &str, old: Option<&Item>, lease: &Lease, now: SystemTime) -> Result<Item, Claim> {
    if let Some(old) = old {
        if is_tombstone(old) {
            return Err(Claim::Removed);
        }
        if let Some(until) = held_by_other(old, &lease.owner, now) {
            return Err(Claim::Held { until });
        }
    }
    let mut item = old.cloned().unwrap_or_default();
    item.insert(ATTR_IDENT.into(), id.into());
    item.insert(ATTR_LEASE_OWNER.into(), lease.owner.clone().into());
    item.insert(ATTR_LEASE_UNTIL.into(), epoch_ms(lease.until).into());
    Ok(item)
}

/// The node a claimed item holds, and whether the claim created it.
///
/// # Errors
/// [`Fault::Corrupt`] for an item that is not a node.
pub fn claimed(item: Item, existed: bool) -> Result<Claim, Fault> {
    Ok(Claim::Claimed {
        node: Node::from_item(item)?,
        created: !existed,
    })
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

/// True when an item holds nothing but its key and a lease: what a claim of a node that was
/// not in the table leaves.
pub fn is_bare(item: &Item) -> bool {
    item.keys()
        .all(|k| k == ATTR_IDENT || INTERNAL_ATTRIBUTES.contains(&k.as_str()))
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
        let item = claim("i-1", None, &a, at(0)).unwrap();
        assert!(is_bare(&item));
        let b = lease("b", 20_000);
        assert_eq!(
            claim("i-1", Some(&item), &b, at(5_000)),
            Err(Claim::Held { until: at(10_000) })
        );
        assert!(claim("i-1", Some(&item), &a, at(5_000)).is_ok());
        assert!(claim("i-1", Some(&item), &b, at(10_001)).is_ok());
        let t = tombstone("i-1", at(0));
        assert_eq!(claim("i-1", Some(&t), &a, at(0)), Err(Claim::Removed));
        // A bare claim is deleted on release; a node keeps its item without the lease.
        assert_eq!(release(Some(&item), "a"), Ok(None));
        assert_eq!(release(Some(&item), "b"), Err(()));
        let mut node = item.clone();
        node.insert(ATTR_STATUS.into(), "ready".into());
        let released = release(Some(&node), "a").unwrap().unwrap();
        assert!(!released.contains_key(ATTR_LEASE_OWNER));
        assert_eq!(released.get(ATTR_STATUS), Some(&Value::from("ready")));
    }

    #[test]
    fn status_writes_need_the_lease_and_recognise_their_own_lost_response() {
        let a = lease("a", 10_000);
        let item = claim("i-1", None, &a, at(0)).unwrap();
        let written = set_status("i-1", Some(&item), "new", "pending", Some("a"))
            .unwrap()
            .unwrap();
        // The SDK's retry of the same write finds it done: ours.
        assert_eq!(
            set_status("i-1", Some(&written), "new", "pending", Some("a")),
            Ok(None)
        );
        // Anyone else conflicts, whatever the status.
        assert!(matches!(
            set_status("i-1", Some(&written), "pending", "ready", Some("b")),
            Err(Fault::Conflict { .. })
        ));
        assert!(matches!(
            set_status("i-1", Some(&written), "new", "pending", Some("b")),
            Err(Fault::Conflict { .. })
        ));
        // Without an owner (an operator's write) only the status counts.
        assert!(
            set_status("i-1", Some(&written), "pending", "ready", None)
                .unwrap()
                .is_some()
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
