//! SPEC 9 on the embedded store: one test per way the issue "Exactly-once under at-least-once
//! delivery" found the dispatcher repeating or losing work. Each failed before the delivery
//! records, leases, send guards and tombstones (`lifecycle::delivery`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use common::{command_on, launch, node, scheduled, terminate};
use lifecycle::config::Definition;
use lifecycle::delivery::{Claim, Claiming, Lease, NodeWrite, key_line, send_key};
use lifecycle::engine::StopReason;
use lifecycle::event::{COMMAND_MARKER, Event};
use lifecycle::{Deadline, Fault, Node};
use lifecycle_embedded::{LocalStore, ManualClock, Recorder};
use lifecycle_runtime::capability::{CommandStore, NodeStore};
use lifecycle_runtime::{Call, Clock, Dispatcher, Options, Registry, Report, Services};
use serde_json::{Map, Value};

/// A launch sends the join command; its status completes the hook; a termination removes the
/// node; a failed join abandons.
const CONFIG: &str = r#"
tasks:
  join:
    ssm_command: {commands: ["echo join {node.InstanceIp}"], comment: join}
  members:
    node_count: {item_type: worker, status: ready, min: 0}
  report:
    sns_report: {topic_arn: "arn:aws:sns:eu-west-1:123456789012:ops"}
transitions:
  - {source: finished_cloud_init, dest: joining, stop_after_state_change: true, triggers: [{name: launch, conditions: [is_launching, members], before: [join]}]}
  - {source: joining, dest: ready, triggers: [{name: joined, conditions: [is_command], after: [complete_lifecycle_action]}]}
  - {source: ready, dest: removed, triggers: [{name: leave, conditions: [is_terminating], after: [remove_from_db, complete_lifecycle_action]}]}
  - {source: failure, dest: abandoned, triggers: [{name: give_up, ignore_errors: true, before: [complete_lifecycle_action]}]}
  - {source: nightly, dest: null, triggers: [{name: run, before: [report]}]}
"#;

struct World {
    store: LocalStore,
    recorder: Recorder,
    clock: Arc<ManualClock>,
}

impl World {
    fn new() -> Self {
        let store = LocalStore::memory();
        store
            .insert_item(node("i-1", "finished_cloud_init"))
            .unwrap();
        World {
            store,
            recorder: Recorder::default(),
            clock: Arc::new(ManualClock::default()),
        }
    }

    fn services(&self) -> Services {
        lifecycle_embedded::services(
            self.store.clone(),
            self.recorder.clone(),
            self.clock.clone(),
        )
    }

    fn dispatcher(&self) -> Dispatcher {
        self.dispatcher_with(self.services())
    }

    fn dispatcher_with(&self, services: Services) -> Dispatcher {
        let def = Definition::from_yaml(CONFIG).unwrap();
        Dispatcher::new(
            Arc::new(def),
            &Registry::new(),
            services,
            Options::default(),
        )
        .unwrap()
    }

    fn calls(&self, operation: &str) -> Vec<Call> {
        self.recorder.calls_to(operation)
    }

    fn status(&self, id: &str) -> Option<Value> {
        self.store
            .item(id)
            .unwrap()
            .and_then(|i| i.get("ItemStatus").cloned())
    }

    fn command_records(&self) -> Vec<Map<String, Value>> {
        self.store
            .items()
            .unwrap()
            .into_iter()
            .filter(|i| i.get("ItemType").and_then(Value::as_str) == Some("command"))
            .collect()
    }

    /// The status event of the one command sent so far, as SSM would deliver it.
    fn status_event(&self, status: &str, id: &str) -> Event {
        let sent = self.calls("SendCommand");
        let command_id = sent[0].input["CommandId"].as_str().unwrap().to_owned();
        let mut e = command_on(&command_id, status, "i-1");
        e.id = Some(id.to_owned());
        if let Some(c) = &mut e.command {
            c.commands = vec![COMMAND_MARKER.to_owned()];
        }
        e
    }
}

fn ok(r: &Report) {
    assert_eq!(r.error, None, "{r:#?}");
}

#[tokio::test]
async fn a_redelivered_launch_after_it_finished_is_a_duplicate_not_an_error() {
    // Before: the second delivery failed the launch guard ("only new nodes can be launched"),
    // an invocation error Lambda retries, then dead-letters.
    let w = World::new();
    let d = w.dispatcher();
    ok(&d.handle(launch("i-1"), Deadline::NONE).await);
    ok(&d
        .handle(w.status_event("Success", "evt-s"), Deadline::NONE)
        .await);
    assert_eq!(w.status("i-1"), Some("ready".into()));

    let again = d.handle(launch("i-1"), Deadline::NONE).await;
    ok(&again);
    assert_eq!(again.stopped_by, StopReason::Duplicate, "{again:#?}");
    assert_eq!(
        again.duplicate.as_deref(),
        Some("stop_after_state_change in joining")
    );
    // The same lifecycle action in an event with another id: the same action, a duplicate.
    let mut other_id = launch("i-1");
    other_id.id = Some("evt-other".into());
    let again = d.handle(other_id, Deadline::NONE).await;
    assert_eq!(again.stopped_by, StopReason::Duplicate, "{again:#?}");
    assert_eq!(w.calls("SendCommand").len(), 1, "the join was sent once");
    assert_eq!(w.calls("CompleteLifecycleAction").len(), 1);
    assert_eq!(w.status("i-1"), Some("ready".into()));
}

#[tokio::test]
async fn a_second_termination_after_remove_from_db_is_acknowledged_and_a_late_event_recreates_nothing()
 {
    // Before: "new nodes cannot terminate" (the node was deleted, so it read as new), and a
    // late status event recreated the node with no expiry.
    let w = World::new();
    let d = w.dispatcher();
    ok(&d.handle(launch("i-1"), Deadline::NONE).await);
    ok(&d
        .handle(w.status_event("Success", "evt-s"), Deadline::NONE)
        .await);
    let r = d.handle(terminate("i-1"), Deadline::NONE).await;
    ok(&r);
    assert_eq!(r.final_state, "removed");
    // The termination's delivery entry went with the node; its tombstone answers instead.
    let again = d.handle(terminate("i-1"), Deadline::NONE).await;
    ok(&again);
    assert_eq!(again.stopped_by, StopReason::NotSupported, "{again:#?}");

    // A late event for the removed node, with an id never seen: not supported, and the
    // tombstone stays a tombstone.
    let late = d
        .handle(w.status_event("Failed", "evt-late"), Deadline::NONE)
        .await;
    ok(&late);
    assert_eq!(late.stopped_by, StopReason::NotSupported, "{late:#?}");
    let item = w.store.item("i-1").unwrap().unwrap();
    assert_eq!(item.get("Removed"), Some(&Value::Bool(true)), "{item:?}");
    assert!(item.get("ItemStatus").is_none(), "recreated: {item:?}");
    assert!(item.get("ExpiresAt").is_some(), "a tombstone expires");
    assert_eq!(w.calls("CompleteLifecycleAction").len(), 2);
}

#[tokio::test]
async fn a_scheduled_event_delivered_twice_reports_once() {
    let w = World::new();
    let d = w.dispatcher();
    ok(&d.handle(scheduled("nightly"), Deadline::NONE).await);
    let again = d.handle(scheduled("nightly"), Deadline::NONE).await;
    assert_eq!(again.stopped_by, StopReason::Duplicate, "{again:#?}");
    assert_eq!(w.calls("Publish").len(), 1);
}

#[tokio::test]
async fn the_loser_of_a_race_runs_nothing_and_leaves_nothing() {
    // Before: `before` tasks ran ahead of the compare-and-set, so the loser had sent its join
    // and stored its record; that command's `Failed` later abandoned a healthy node.
    let w = World::new();
    let d = w.dispatcher();
    // Another invocation holds the node (it claimed it first and is still working).
    let now = w.clock.now();
    let other = Lease {
        owner: "the-winner".into(),
        until: now + Duration::from_secs(300),
    };
    assert!(matches!(
        w.store
            .claim("i-1", &other, Claiming::LEASE_ONLY, now)
            .await
            .unwrap(),
        Claim::Claimed { .. }
    ));
    let lost = d.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(lost.stopped_by, StopReason::Error, "{lost:#?}");
    assert!(lost.retryable, "the loser's event comes back: {lost:#?}");
    assert!(
        lost.error
            .unwrap()
            .contains("another invocation holds node i-1")
    );
    assert!(w.calls("SendCommand").is_empty(), "the loser sent nothing");
    assert!(w.command_records().is_empty(), "the loser left no record");
    assert!(lost.tasks.is_empty(), "the loser ran nothing");

    // The winner lets go; the redelivered event runs, once.
    w.store.release("i-1", "the-winner").await.unwrap();
    let r = d.handle(launch("i-1"), Deadline::NONE).await;
    ok(&r);
    assert_eq!(r.final_state, "joining");
    assert_eq!(w.calls("SendCommand").len(), 1);
}

/// A node store whose reads fail (transiently) a set number of times, and whose status
/// writes can replay themselves as an SDK retry would after a lost response.
struct Flaky {
    inner: LocalStore,
    failing_reads: AtomicU32,
    replay_writes: bool,
}

#[async_trait]
impl NodeStore for Flaky {
    async fn get(&self, id: &str) -> Result<Option<Node>, Fault> {
        if self
            .failing_reads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Fault::transient("GetItem: connection reset (injected)"));
        }
        self.inner.get(id).await
    }
    async fn put(&self, node: &Node) -> Result<(), Fault> {
        self.inner.put(node).await
    }
    async fn claim(
        &self,
        id: &str,
        lease: &Lease,
        with: Claiming<'_>,
        now: SystemTime,
    ) -> Result<Claim, Fault> {
        self.inner.claim(id, lease, with, now).await
    }
    async fn write(&self, id: &str, owner: &str, write: &NodeWrite) -> Result<(), Fault> {
        self.inner.write(id, owner, write).await
    }
    async fn release(&self, id: &str, owner: &str) -> Result<(), Fault> {
        self.inner.release(id, owner).await
    }
    async fn set_status(
        &self,
        id: &str,
        expected: &str,
        new: &str,
        owner: Option<&str>,
    ) -> Result<(), Fault> {
        let first = self.inner.set_status(id, expected, new, owner).await;
        if !self.replay_writes {
            return first;
        }
        // The first attempt went through and its response was lost; the retry is what the
        // caller sees.
        self.inner.set_status(id, expected, new, owner).await
    }
    async fn set_properties(&self, id: &str, properties: &Map<String, Value>) -> Result<(), Fault> {
        self.inner.set_properties(id, properties).await
    }
    async fn remove(&self, id: &str, until: SystemTime) -> Result<(), Fault> {
        self.inner.remove(id, until).await
    }
    async fn by_type(&self, item_type: &str) -> Result<Vec<Node>, Fault> {
        self.inner.by_type(item_type).await
    }
}

#[tokio::test]
async fn a_command_record_survives_a_failed_node_read_and_the_retry_resumes() {
    // Before: the record was taken (deleted) before the node was read; when that read failed
    // the retried status event was "not ours" and the node stuck in `joining`.
    let w = World::new();
    ok(&w.dispatcher().handle(launch("i-1"), Deadline::NONE).await);
    let mut services = w.services();
    services.nodes = Arc::new(Flaky {
        inner: w.store.clone(),
        failing_reads: AtomicU32::new(1),
        replay_writes: false,
    });
    let d = w.dispatcher_with(services);
    let status = w.status_event("Success", "evt-s");
    let failed = d.handle(status.clone(), Deadline::NONE).await;
    assert!(failed.retryable, "{failed:#?}");
    assert_eq!(w.command_records().len(), 1, "the record is still there");
    let retry = d.handle(status, Deadline::NONE).await;
    ok(&retry);
    assert_eq!(retry.final_state, "ready");
    assert!(w.command_records().is_empty(), "consumed once processed");
}

#[tokio::test]
async fn a_lost_response_to_our_own_status_write_is_ours_and_the_hook_is_completed() {
    // Before: the SDK's retry of a conditional write whose first attempt succeeded failed its
    // condition against our own write: a conflict, so `complete_lifecycle_action` (an
    // `after` task) never ran and the hook waited for its timeout.
    let w = World::new();
    ok(&w.dispatcher().handle(launch("i-1"), Deadline::NONE).await);
    let mut services = w.services();
    services.nodes = Arc::new(Flaky {
        inner: w.store.clone(),
        failing_reads: AtomicU32::new(0),
        replay_writes: true,
    });
    let r = w
        .dispatcher_with(services)
        .handle(w.status_event("Success", "evt-s"), Deadline::NONE)
        .await;
    ok(&r);
    assert_eq!(r.stopped_by, StopReason::NoStateChange, "{r:#?}");
    assert_eq!(r.final_state, "ready");
    assert_eq!(w.calls("CompleteLifecycleAction").len(), 1);
}

#[tokio::test]
async fn a_redelivery_after_a_crash_between_send_and_state_write_sends_nothing_again() {
    // Before: `SsmRunner::send` ignored the idempotency key, so a redelivered launch whose
    // first processing died after SendCommand ran the join twice.
    let w = World::new();
    let d = w.dispatcher();
    ok(&d.handle(launch("i-1"), Deadline::NONE).await);
    let sent = w.calls("SendCommand");
    assert_eq!(sent.len(), 1);
    // The crash: the state write and the settling never happened. Put the node back where
    // it was and forget the delivery (its in-progress record would have expired).
    w.store
        .insert_item(node("i-1", "finished_cloud_init"))
        .unwrap();
    for item in w.store.items().unwrap() {
        let id = item["Ident"].as_str().unwrap();
        if id.starts_with("delivery#") {
            w.store.insert_item(tombstone_free(id)).unwrap();
        }
    }
    let again = d.handle(launch("i-1"), Deadline::NONE).await;
    ok(&again);
    assert_eq!(again.final_state, "joining");
    assert_eq!(w.calls("SendCommand").len(), 1, "not sent twice");
    assert_eq!(w.command_records().len(), 1, "its record, stored again");
}

/// An expired delivery record in place of `id`: what a crashed invocation leaves.
fn tombstone_free(id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Ident".into(), id.into());
    m.insert("Delivery".into(), "in_progress".into());
    m.insert("Owner".into(), "crashed".into());
    m.insert("ExpiresAt".into(), 1.into());
    m
}

#[tokio::test]
async fn a_send_whose_outcome_was_lost_is_found_in_ssm_not_sent_again() {
    // The guard was reserved by a crashed invocation that never recorded the command id:
    // the command is looked up by its key line; found, it is not sent again.
    let w = World::new();
    ok(&w.dispatcher().handle(launch("i-1"), Deadline::NONE).await);
    let sent = w.calls("SendCommand");
    let key_line_sent = sent[0].input["Parameters"]["commands"][1]
        .as_str()
        .unwrap()
        .to_owned();
    let key = key_line_sent.trim_start_matches("# key ").to_owned();
    assert_eq!(key_line(&key), key_line_sent);
    // Roll back as if the invocation had died right after SendCommand: the guard without
    // the command id, owned by the dead invocation; the node and the delivery as before.
    let guard = send_key(&key);
    let mut g = Map::new();
    g.insert("Ident".into(), guard.clone().into());
    g.insert("Owner".into(), "crashed".into());
    g.insert("ExpiresAt".into(), 4_000_000_000u64.into());
    w.store.insert_item(g).unwrap();
    w.store
        .insert_item(node("i-1", "finished_cloud_init"))
        .unwrap();
    for item in w.store.items().unwrap() {
        let id = item["Ident"].as_str().unwrap().to_owned();
        if id.starts_with("delivery#") {
            w.store.insert_item(tombstone_free(&id)).unwrap();
        }
        if item.get("ItemType").and_then(Value::as_str) == Some("command") {
            w.store.delete_command(&id).await.unwrap();
        }
    }
    let again = w.dispatcher().handle(launch("i-1"), Deadline::NONE).await;
    ok(&again);
    assert_eq!(w.calls("SendCommand").len(), 1, "found, not sent again");
    assert_eq!(w.command_records().len(), 1);
    let g = w.store.item(&guard).unwrap().unwrap();
    assert_eq!(g["CommandId"], sent[0].input["CommandId"]);
}

#[tokio::test]
async fn a_malformed_item_of_another_node_does_not_move_this_one() {
    // Before: the node query of `members` failed on another node's bad item, and this
    // node went to `failure`, then `abandoned`.
    let w = World::new();
    let mut bad = node("i-2", "ready");
    bad.insert("ItemStatus".into(), 42.into());
    w.store.insert_item(bad).unwrap();
    let r = w.dispatcher().handle(launch("i-1"), Deadline::NONE).await;
    ok(&r);
    assert!(r.errors.is_empty(), "{r:#?}");
    assert_eq!(r.final_state, "joining");
}

#[tokio::test]
async fn an_operators_move_uses_the_lease_and_is_recorded() {
    use lifecycle_runtime::manual::{MoveError, set_state};
    let w = World::new();
    let services = w.services();
    // Held by an invocation: refused, retryable, nothing changed.
    let now = w.clock.now();
    let busy = Lease {
        owner: "an-invocation".into(),
        until: now + Duration::from_secs(60),
    };
    w.store
        .claim("i-1", &busy, Claiming::LEASE_ONLY, now)
        .await
        .unwrap();
    let e = set_state(
        &services,
        "i-1",
        ("finished_cloud_init", "ready"),
        "ops",
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, MoveError::Held { .. }) && e.is_transient(),
        "{e}"
    );
    w.store.release("i-1", "an-invocation").await.unwrap();
    // Not in the state said: refused, nothing changed.
    let e = set_state(&services, "i-1", ("ready", "leaving"), "ops", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, MoveError::Conflict { found, .. } if found == "finished_cloud_init"),
        "{e}"
    );
    assert_eq!(w.status("i-1"), Some("finished_cloud_init".into()));
    // Moved, recorded, and the lease released.
    let m = set_state(
        &services,
        "i-1",
        ("finished_cloud_init", "ready"),
        "ops",
        Some("joined by hand"),
    )
    .await
    .unwrap();
    assert_eq!(
        (m.from.as_str(), m.to.as_str()),
        ("finished_cloud_init", "ready")
    );
    let item = w.store.item("i-1").unwrap().unwrap();
    assert_eq!(item["ItemStatus"], "ready");
    assert_eq!(item["LastManualChange"]["reason"], "joined by hand");
    assert_eq!(item["LastManualChange"]["by"], "ops");
    assert!(!item.contains_key("LeaseOwner"), "{item:?}");
    // A node that is not there, or was removed: refused, and nothing is created.
    let e = set_state(&services, "i-9", ("new", "ready"), "ops", None)
        .await
        .unwrap_err();
    assert!(matches!(e, MoveError::NoNode(_)), "{e}");
    assert_eq!(w.store.item("i-9").unwrap(), None);
    w.store
        .remove("i-1", now + Duration::from_secs(3600))
        .await
        .unwrap();
    let e = set_state(&services, "i-1", ("ready", "leaving"), "ops", None)
        .await
        .unwrap_err();
    assert!(matches!(e, MoveError::Removed(_)), "{e}");
}
