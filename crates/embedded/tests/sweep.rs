//! The reconciliation sweep (issue 12) through the real dispatcher on the local store, with
//! scripted Auto Scaling groups: what it resumes, heartbeats, completes, removes and lists,
//! that a dry run performs nothing, and that a sweep racing an event on one node never takes
//! a step twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lifecycle::delivery::{Claim, Claiming, Lease, epoch_ms};
use lifecycle::event::{LifecycleResult, LifecycleTransition};
use lifecycle::reconcile::{Hook, Instance, PENDING_WAIT, TERMINATING_WAIT};
use lifecycle::{Deadline, Definition, Fault, StopReason};
use lifecycle_embedded::{LocalStore, ManualClock, Recorder};
use lifecycle_runtime::capability::{CommandStore, NodeStore};
use lifecycle_runtime::sweep::{Outcome, SweepReport, sweep};
use lifecycle_runtime::{Clock, Dispatcher, Options, Registry, Task, TaskContext};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, Semaphore};

const GROUP: &str = common::GROUP;

const CONFIG: &str = r#"
tasks:
  join:
    ssm_command:
      commands: ["docker swarm join"]
transitions:
  - source: finished_cloud_init
    dest: joining
    stop_after_state_change: true
    triggers: [{name: join, conditions: [is_launching], before: [gate, join]}]
  - source: joining
    dest: ready
    triggers: [{name: joined, conditions: [is_command], after: [complete_lifecycle_action]}]
  - source: ready
    dest: removed
    triggers: [{name: leave, conditions: [is_terminating], before: [complete_lifecycle_action], after: [remove_from_db]}]
reconcile:
  groups: [asg-workers]
  stale_after_seconds: 600
  complete_after_seconds: 2700
  heartbeat_within_seconds: 900
  gone: remove
"#;

/// A task that waits for a permit when the gate is closed, telling who waits that it got
/// there: it holds an invocation inside its transition, with the node claimed.
struct Gate {
    closed: std::sync::atomic::AtomicBool,
    permits: Semaphore,
    reached: Notify,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            closed: std::sync::atomic::AtomicBool::new(false),
            permits: Semaphore::new(0),
            reached: Notify::new(),
        }
    }
}

#[async_trait]
impl Task for Gate {
    async fn run(&self, _cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            self.reached.notify_one();
            let permit = self
                .permits
                .acquire()
                .await
                .map_err(|e| Fault::permanent(e.to_string()))?;
            permit.forget();
        }
        Ok(())
    }
}

struct World {
    store: LocalStore,
    recorder: Recorder,
    clock: Arc<ManualClock>,
    gate: Arc<Gate>,
    dispatcher: Dispatcher,
}

impl World {
    fn new() -> Self {
        let store = LocalStore::memory();
        let recorder = Recorder::default();
        let clock = Arc::new(ManualClock::default());
        let gate = Arc::new(Gate::default());
        let mut registry = Registry::new();
        registry.register_task("gate", gate.clone());
        let def = Arc::new(Definition::from_yaml(CONFIG).unwrap());
        let services = lifecycle_embedded::services(store.clone(), recorder.clone(), clock.clone());
        // No heartbeats while a task runs: on a manual clock they would race time ahead while
        // the gate holds an invocation.
        let mut options = Options::default();
        options.heartbeat_interval = Duration::ZERO;
        let dispatcher = Dispatcher::new(def, &registry, services, options).unwrap();
        World {
            store,
            recorder,
            clock,
            gate,
            dispatcher,
        }
    }

    /// Node `id` in `status`, last changed `age` seconds ago.
    fn node(&self, id: &str, status: &str, age: u64) {
        let mut item = common::node(id, status);
        let at = self.clock.now() - Duration::from_secs(age);
        item.insert("ChangedAt".into(), json!(epoch_ms(at)));
        self.store.insert_item(item).unwrap();
    }

    /// The group's instances (id, lifecycle state) and its two hooks.
    fn group(&self, instances: &[(&str, &str)]) {
        let hook = |name: &str, transition, result| Hook {
            group: GROUP.into(),
            name: name.into(),
            transition,
            heartbeat_timeout: Some(Duration::from_secs(3600)),
            default_result: result,
            metadata: Map::new(),
        };
        self.recorder.script_group(
            GROUP,
            instances
                .iter()
                .map(|(id, state)| Instance {
                    id: (*id).into(),
                    group: GROUP.into(),
                    lifecycle_state: (*state).into(),
                })
                .collect(),
            vec![
                hook(
                    "launch",
                    LifecycleTransition::Launching,
                    LifecycleResult::Abandon,
                ),
                hook(
                    "terminate",
                    LifecycleTransition::Terminating,
                    LifecycleResult::Continue,
                ),
            ],
        );
    }

    async fn sweep(&self, dry_run: bool) -> SweepReport {
        let items = self.store.items().unwrap();
        sweep(&self.dispatcher, &items, Deadline::NONE, dry_run)
            .await
            .unwrap()
    }

    /// The node's status; `None` when it is not there or removed (a tombstone).
    async fn status(&self, id: &str) -> Option<String> {
        self.store
            .get(id)
            .await
            .unwrap()
            .filter(|n| !n.is_removed())
            .map(|n| n.status)
    }

    fn calls(&self, operation: &str) -> Vec<Value> {
        self.recorder
            .calls_to(operation)
            .into_iter()
            .map(|c| c.input)
            .collect()
    }
}

/// (node, action, outcome) of each finding.
fn summary(r: &SweepReport) -> Vec<(String, &'static str, String)> {
    r.findings
        .iter()
        .map(|e| {
            let outcome = serde_json::to_value(&e.outcome).unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_owned();
            (e.finding.node.clone(), e.finding.action.name(), outcome)
        })
        .collect()
}

#[tokio::test]
async fn a_stalled_launch_is_resumed_then_its_command_heartbeaten_until_its_due_time_is_far() {
    let w = World::new();
    w.node("i-1", "finished_cloud_init", 700);
    w.group(&[("i-1", PENDING_WAIT)]);

    let r = w.sweep(false).await;
    assert_eq!(
        summary(&r),
        [("i-1".into(), "resume", "resumed".into())],
        "{r:#?}"
    );
    match &r.findings[0].outcome {
        Outcome::Resumed {
            stopped_by,
            final_state,
            error,
            ..
        } => {
            assert_eq!(*stopped_by, StopReason::StopAfterStateChange);
            assert_eq!(final_state, "joining");
            assert_eq!(*error, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.status("i-1").await.as_deref(), Some("joining"));
    assert_eq!(w.calls("SendCommand").len(), 1);
    assert_eq!(r.states["finished_cloud_init"].stuck, 1);

    // The command is in flight; its record does not know when the action is due: heartbeat,
    // and the record learns it.
    let r = w.sweep(false).await;
    assert_eq!(
        summary(&r),
        [("i-1".into(), "heartbeat", "done".into())],
        "{r:#?}"
    );
    let beats = w.calls("RecordLifecycleActionHeartbeat");
    assert_eq!(beats.len(), 1);
    assert_eq!(beats[0]["InstanceId"], "i-1");
    assert_eq!(beats[0]["LifecycleHookName"], "launch");
    let command_id = w.calls("SendCommand")[0]["CommandId"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = w
        .store
        .get_command(&command_id, w.clock.now())
        .await
        .unwrap()
        .unwrap();
    let due = record.lifecycle.unwrap().due_at.unwrap();
    assert_eq!(due, lifecycle::delivery::epoch_secs(w.clock.now()) + 3600);

    // An hour ahead: nothing to do yet. Then 45 minutes on, within heartbeat_within: again.
    let r = w.sweep(false).await;
    assert_eq!(
        summary(&r),
        [("i-1".into(), "leave_alone", "listed".into())]
    );
    w.clock.advance(Duration::from_secs(45 * 60));
    // ... but by then the node has not changed for 700 s + 45 min > complete_after: the action
    // is completed with the hook's default result instead.
    let r = w.sweep(false).await;
    assert_eq!(
        summary(&r),
        [("i-1".into(), "complete", "done".into())],
        "{r:#?}"
    );
    let done = w.calls("CompleteLifecycleAction");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["LifecycleActionResult"], "ABANDON");
    assert_eq!(
        w.recorder.lifecycle_state("i-1").as_deref(),
        Some("Terminating")
    );
    assert_eq!(w.calls("RecordLifecycleActionHeartbeat").len(), 1);
}

#[tokio::test]
async fn gone_nodes_are_removed_failures_listed_overdue_actions_completed() {
    let w = World::new();
    w.node("i-2", "joining", 3000); // waiting far too long, no command
    w.node("i-3", "ready", 5000); // its instance is in no group
    w.node("i-4", "failure", 5000); // in service, in failure
    w.node("i-6", "ready", 700); // terminating, stale: resumed
    w.group(&[
        ("i-2", PENDING_WAIT),
        ("i-4", "InService"),
        ("i-5", PENDING_WAIT), // no node yet
        ("i-6", TERMINATING_WAIT),
    ]);
    let r = w.sweep(false).await;
    assert_eq!(
        summary(&r),
        [
            ("i-2".into(), "complete", "done".into()),
            ("i-3".into(), "remove", "done".into()),
            ("i-4".into(), "list_failure", "listed".into()),
            ("i-5".into(), "leave_alone", "listed".into()),
            ("i-6".into(), "resume", "resumed".into()),
        ],
        "{r:#?}"
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.failures(), 0);
    // i-2's launch abandoned, by instance id; i-6's termination completed by its own
    // trigger, and the node removed by it.
    let completions = w.calls("CompleteLifecycleAction");
    assert_eq!(completions.len(), 2, "{completions:?}");
    assert_eq!(completions[0]["InstanceId"], "i-2");
    assert_eq!(completions[0]["LifecycleActionResult"], "ABANDON");
    assert_eq!(completions[1]["InstanceId"], "i-6");
    assert_eq!(completions[1]["LifecycleActionResult"], "CONTINUE");
    assert_eq!(w.status("i-3").await, None, "removed: a tombstone");
    assert!(matches!(
        w.store
            .claim(
                "i-3",
                &lease("late-event", &w),
                Claiming::LEASE_ONLY,
                w.clock.now()
            )
            .await
            .unwrap(),
        Claim::Removed
    ));
    assert_eq!(w.status("i-6").await, None, "removed by remove_from_db");
    assert_eq!(w.status("i-4").await.as_deref(), Some("failure"));
    // The lookup that told i-3 was gone asked for the unlisted nodes only.
    let lookups = w.calls("DescribeAutoScalingInstances");
    assert_eq!(lookups.last().unwrap()["InstanceIds"], json!(["i-3"]));

    // Again: nothing left to act on.
    let r = w.sweep(false).await;
    let acted: Vec<_> = summary(&r)
        .into_iter()
        .filter(|(_, _, o)| o != "listed")
        .collect();
    assert!(acted.is_empty(), "{acted:?}");
}

fn lease(owner: &str, w: &World) -> Lease {
    Lease {
        owner: owner.into(),
        until: w.clock.now() + Duration::from_secs(300),
    }
}

#[tokio::test]
async fn a_dry_run_performs_nothing_and_a_held_node_is_left_alone() {
    let w = World::new();
    w.node("i-1", "finished_cloud_init", 700);
    w.node("i-2", "joining", 3000);
    w.node("i-3", "ready", 5000);
    w.group(&[("i-1", PENDING_WAIT), ("i-2", PENDING_WAIT)]);
    let before = w.store.items().unwrap();
    let r = w.sweep(true).await;
    assert!(r.dry_run);
    assert_eq!(
        summary(&r),
        [
            ("i-1".into(), "resume", "would_do".into()),
            ("i-2".into(), "complete", "would_do".into()),
            ("i-3".into(), "remove", "would_do".into()),
        ]
    );
    assert_eq!(w.store.items().unwrap(), before, "nothing written");
    for op in [
        "SendCommand",
        "CompleteLifecycleAction",
        "RecordLifecycleActionHeartbeat",
    ] {
        assert!(w.calls(op).is_empty(), "{op}");
    }

    // Another invocation holds i-2: the sweep leaves it alone (and says so).
    assert!(matches!(
        w.store
            .claim(
                "i-2",
                &lease("the-event", &w),
                Claiming::LEASE_ONLY,
                w.clock.now()
            )
            .await
            .unwrap(),
        Claim::Claimed { .. }
    ));
    let r = w.sweep(false).await;
    let i2 = r.findings.iter().find(|e| e.finding.node == "i-2").unwrap();
    assert_eq!(i2.finding.action.name(), "leave_alone");
    assert!(i2.why.contains("held by the-event"), "{}", i2.why);
    assert!(w.calls("CompleteLifecycleAction").is_empty());
}

#[tokio::test]
async fn a_configuration_without_reconcile_is_a_typed_error() {
    let def =
        Arc::new(Definition::from_yaml("- {source: a, dest: b, triggers: [{name: go}]}").unwrap());
    let services = lifecycle_embedded::services(
        LocalStore::memory(),
        Recorder::default(),
        Arc::new(ManualClock::default()),
    );
    let d = Dispatcher::new(def, &Registry::new(), services, Options::default()).unwrap();
    let e = sweep(&d, &[], Deadline::NONE, false).await.unwrap_err();
    assert_eq!(e, lifecycle_runtime::sweep::SweepError::NotConfigured);
    assert!(e.to_string().contains("reconcile:"));
}

#[tokio::test]
async fn an_unknown_group_is_reported_and_its_nodes_are_not_judged_gone_on_it() {
    let w = World::new();
    w.node("i-1", "ready", 5000);
    // No group scripted: the listing fails; the lookup by id still finds nothing, so i-1 is
    // gone — found by the lookup, not by the failed listing.
    let r = w.sweep(true).await;
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(
        r.errors[0].contains("no Auto Scaling group \"asg-workers\""),
        "{:?}",
        r.errors
    );
    assert_eq!(summary(&r), [("i-1".into(), "remove", "would_do".into())]);
}

/// The sweep read the table before an event claimed the node; the event holds it (inside its
/// transition) while the sweep resumes it: the sweep's dispatcher finds it busy and runs
/// nothing. The other way round, the event finds the sweep's resume busy. Either way the
/// step is taken once: one join sent, one state write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_and_an_event_racing_on_one_node_take_the_step_once() {
    // The event first.
    let w = Arc::new(World::new());
    w.node("i-1", "finished_cloud_init", 700);
    w.group(&[("i-1", PENDING_WAIT)]);
    let items = w.store.items().unwrap();
    w.gate
        .closed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let reached = w.gate.reached.notified();
    let event = {
        let w = w.clone();
        tokio::spawn(async move {
            w.dispatcher
                .handle(common::launch("i-1"), Deadline::NONE)
                .await
        })
    };
    reached.await;
    let r = sweep(&w.dispatcher, &items, Deadline::NONE, false)
        .await
        .unwrap();
    match &r.findings[0].outcome {
        Outcome::Resumed {
            error, retryable, ..
        } => {
            assert!(
                error
                    .as_deref()
                    .unwrap_or("")
                    .contains("another invocation holds node i-1"),
                "{r:#?}"
            );
            assert!(*retryable);
        }
        other => panic!("{other:?}"),
    }
    assert!(w.calls("SendCommand").is_empty(), "the sweep ran nothing");
    assert_eq!(
        w.status("i-1").await.as_deref(),
        Some("finished_cloud_init")
    );
    w.gate.permits.add_permits(1);
    let e = event.await.unwrap();
    assert_eq!(e.final_state, "joining", "{e:#?}");
    assert_eq!(w.calls("SendCommand").len(), 1);

    // The sweep first.
    let w = Arc::new(World::new());
    w.node("i-1", "finished_cloud_init", 700);
    w.group(&[("i-1", PENDING_WAIT)]);
    w.gate
        .closed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let reached = w.gate.reached.notified();
    let swept = {
        let w = w.clone();
        tokio::spawn(async move {
            let items = w.store.items().unwrap();
            sweep(&w.dispatcher, &items, Deadline::NONE, false)
                .await
                .unwrap()
        })
    };
    reached.await;
    let lost = w
        .dispatcher
        .handle(common::launch("i-1"), Deadline::NONE)
        .await;
    assert!(lost.retryable, "{lost:#?}");
    assert!(lost.tasks.is_empty(), "the event ran nothing: {lost:#?}");
    w.gate.permits.add_permits(1);
    let r = swept.await.unwrap();
    assert_eq!(
        summary(&r),
        [("i-1".into(), "resume", "resumed".into())],
        "{r:#?}"
    );
    assert_eq!(w.calls("SendCommand").len(), 1);
    // The event's retry: the node has moved on; a launch is refused, nothing runs twice.
    w.gate
        .closed
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let retry = w
        .dispatcher
        .handle(common::launch("i-1"), Deadline::NONE)
        .await;
    assert!(retry.tasks.is_empty(), "{retry:#?}");
    assert_eq!(w.calls("SendCommand").len(), 1);
    assert_eq!(w.status("i-1").await.as_deref(), Some("joining"));
}

/// Many sweeps and events at once on fresh nodes, in whatever order the scheduler picks:
/// each node takes its step exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_sweeps_and_events_never_double_step() {
    for round in 0..20 {
        let w = Arc::new(World::new());
        w.node("i-1", "finished_cloud_init", 700);
        w.group(&[("i-1", PENDING_WAIT)]);
        let items = w.store.items().unwrap();
        let mut tasks = Vec::new();
        for k in 0..4 {
            let w = w.clone();
            let items = items.clone();
            tasks.push(tokio::spawn(async move {
                if k % 2 == 0 {
                    sweep(&w.dispatcher, &items, Deadline::NONE, false)
                        .await
                        .unwrap();
                } else {
                    w.dispatcher
                        .handle(common::launch("i-1"), Deadline::NONE)
                        .await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(w.calls("SendCommand").len(), 1, "round {round}");
        assert_eq!(
            w.status("i-1").await.as_deref(),
            Some("joining"),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn a_node_cloud_init_wrote_without_changed_at_is_stamped_then_resumed_a_stale_after_later() {
    // The node's item came from cloud-init (no ChangedAt) and its launch event was lost: the
    // first sweep starts counting its age, a later one resumes it.
    let w = World::new();
    w.store
        .insert_item(common::node("i-7", "finished_cloud_init"))
        .unwrap();
    w.group(&[("i-7", PENDING_WAIT)]);
    let r = w.sweep(false).await;
    assert_eq!(
        summary(&r),
        [("i-7".into(), "stamp", "done".into())],
        "{r:#?}"
    );
    let stamped = w.store.get("i-7").await.unwrap().unwrap();
    assert_eq!(stamped.changed_at(), Some(w.clock.now()));
    assert_eq!(
        stamped.status, "finished_cloud_init",
        "the state is untouched"
    );
    // Not stale yet: left to its event.
    w.clock.advance(Duration::from_secs(300));
    assert!(summary(&w.sweep(false).await).is_empty());
    // Stale: resumed.
    w.clock.advance(Duration::from_secs(301));
    let r = w.sweep(false).await;
    assert_eq!(
        summary(&r),
        [("i-7".into(), "resume", "resumed".into())],
        "{r:#?}"
    );
    assert_eq!(w.status("i-7").await.as_deref(), Some("joining"));
    assert_eq!(w.calls("SendCommand").len(), 1);
}
