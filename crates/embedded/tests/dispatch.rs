//! Dispatcher behaviour the table-driven suite does not cover: command records (read, and
//! consumed only once the event is processed, so a redelivered status event can resume),
//! waits, deadlines, heartbeats, redaction and transient faults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{command, command_record, launch, node, registry_for, terminate};
use lifecycle::config::Definition;
use lifecycle::engine::StopReason;
use lifecycle::event::{COMMAND_MARKER, Event};
use lifecycle::{Deadline, Redactor};
use lifecycle_embedded::{LocalStore, ManualClock, Recorder, simulated_parameter};
use lifecycle_runtime::capability::NodeStore;
use lifecycle_runtime::{Clock, Dispatcher, Options, Registry, Services};

const CONFIG: &str = r#"
transitions:
  - {source: finished_cloud_init, dest: joined, triggers: [{name: join, conditions: [is_command]}]}
"#;

fn dispatcher(store: &LocalStore, wait: Duration) -> Dispatcher {
    let mut options = Options::default();
    options.wait_timeout = wait;
    options.poll_interval = Duration::from_secs(5);
    build(
        CONFIG,
        &registry_for(CONFIG, &[]),
        embedded(
            store,
            &Recorder::default(),
            Arc::new(ManualClock::default()),
        ),
        options,
    )
}

/// A local store holding one node.
fn store_with(id: &str, status: &str) -> LocalStore {
    let store = LocalStore::memory();
    store.insert_item(node(id, status)).unwrap();
    store
}

fn embedded(store: &LocalStore, recorder: &Recorder, clock: Arc<dyn Clock>) -> Services {
    lifecycle_embedded::services(store.clone(), recorder.clone(), clock)
}

fn build(config: &str, registry: &Registry, services: Services, options: Options) -> Dispatcher {
    let def = Definition::from_yaml(config).unwrap();
    Dispatcher::new(Arc::new(def), registry, services, options).unwrap()
}

#[tokio::test]
async fn a_record_read_before_a_wait_timeout_stays_and_the_retry_resumes() {
    let store = store_with("i-1", "pending");
    store
        .insert_item(command_record("cmd-1", &launch("i-1"), "i-1"))
        .unwrap();
    let d = dispatcher(&store, Duration::from_secs(30));

    let first = d.handle(command("cmd-1", "Success"), Deadline::NONE).await;
    assert_eq!(first.stopped_by, StopReason::Error);
    assert!(first.retryable, "{first:?}");
    assert_eq!(first.initial_state, "pending");
    let ids: Vec<_> = store
        .items()
        .unwrap()
        .iter()
        .map(|i| i["Ident"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.contains(&"cmd-1".to_owned()),
        "the record is gone: {ids:?}"
    );

    // Cloud-init finishes; the redelivered status event now resumes the launch.
    store
        .insert_item(node("i-1", "finished_cloud_init"))
        .unwrap();
    let retry = d.handle(command("cmd-1", "Success"), Deadline::NONE).await;
    assert_eq!(retry.error, None);
    assert_eq!(retry.final_state, "joined");
    assert_eq!(retry.event.as_deref(), Some(launch("i-1").name.as_str()));
}

#[tokio::test]
async fn a_non_final_status_never_consumes_the_record() {
    let store = store_with("i-1", "finished_cloud_init");
    store
        .insert_item(command_record("cmd-1", &launch("i-1"), "i-1"))
        .unwrap();
    let d = dispatcher(&store, Duration::ZERO);
    let r = d
        .handle(command("cmd-1", "InProgress"), Deadline::NONE)
        .await;
    assert_eq!(r.stopped_by, StopReason::NotSupported);
    assert_eq!(store.items().unwrap().len(), 2);
}

fn ours(mut event: Event) -> Event {
    if let Some(c) = &mut event.command {
        c.commands = vec![COMMAND_MARKER.to_owned(), "/bin/true".to_owned()];
    }
    event
}

fn dispatcher_with_clock(store: &LocalStore, clock: Arc<common::CloudInitClock>) -> Dispatcher {
    build(
        CONFIG,
        &registry_for(CONFIG, &[]),
        embedded(store, &Recorder::default(), clock),
        Options::default(),
    )
}

#[tokio::test]
async fn a_status_event_that_outruns_its_record_waits_for_it() {
    // SSM reports before the sender stored the record: the record appears after the
    // dispatcher's second poll.
    let store = store_with("i-1", "finished_cloud_init");
    let clock = Arc::new(common::CloudInitClock::new(
        store.clone(),
        Some((2, command_record("cmd-1", &launch("i-1"), "i-1"))),
    ));
    let d = dispatcher_with_clock(&store, clock.clone());
    let r = d
        .handle(ours(command("cmd-1", "Success")), Deadline::NONE)
        .await;
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.final_state, "joined");
    assert_eq!(clock.sleeps(), 2);
}

#[tokio::test]
async fn a_status_event_of_a_command_already_handled_is_not_supported_after_a_bounded_wait() {
    let store = store_with("i-1", "finished_cloud_init");
    let clock = Arc::new(common::CloudInitClock::new(store.clone(), None));
    let d = dispatcher_with_clock(&store, clock.clone());
    let r = d
        .handle(ours(command("cmd-1", "Success")), Deadline::NONE)
        .await;
    assert_eq!(r.stopped_by, StopReason::NotSupported);
    assert!(r.not_supported.unwrap().contains("already handled"));
    assert_eq!(clock.elapsed(), Options::default().record_wait);

    // Someone else's command is not waited for at all.
    let clock = Arc::new(common::CloudInitClock::new(store.clone(), None));
    let d = dispatcher_with_clock(&store, clock.clone());
    let r = d.handle(command("cmd-2", "Success"), Deadline::NONE).await;
    assert_eq!(r.stopped_by, StopReason::NotSupported);
    assert_eq!(clock.sleeps(), 0);
}

#[tokio::test]
async fn read_parameter_stores_the_value_as_a_node_property() {
    const CFG: &str = r#"
tasks:
  fetch_token:
    read_parameter: {name: "/swarm/{node.ItemType}-token", property: JoinToken}
transitions:
  - {source: finished_cloud_init, dest: joined, triggers: [{name: join, before: [fetch_token]}]}
"#;
    let store = store_with("i-1", "finished_cloud_init");
    let recorder = Recorder::default();
    let d = build(
        CFG,
        &Registry::new(),
        embedded(&store, &recorder, Arc::new(ManualClock::default())),
        Options::default(),
    );
    let r = d.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:?}");
    let calls = recorder.calls();
    assert_eq!(calls[0].operation, "GetParameter");
    assert_eq!(calls[0].input["Name"], "/swarm/worker-token");
    let item = &store.item("i-1").unwrap().unwrap();
    assert_eq!(
        item["JoinToken"],
        simulated_parameter("/swarm/worker-token")
    );
}

#[tokio::test]
async fn a_redactor_the_program_set_stays_when_the_configuration_adds_words() {
    // The embedding program marks `ApiKey` secret; the configuration adds `joinkey`. Both
    // must hold: neither replaces the other.
    const CFG: &str = r#"
redact: [joinkey]
tasks:
  fetch:
    read_parameter: {name: /swarm/join, property: SwarmJoinKey}
transitions:
  - {source: finished_cloud_init, dest: joined, triggers: [{name: join, before: [fetch]}]}
"#;
    let store = LocalStore::memory();
    let mut services = embedded(
        &store,
        &Recorder::default(),
        Arc::new(ManualClock::default()),
    );
    services.redactor = Redactor::with_extra(["apikey"]);
    let d = build(CFG, &Registry::new(), services, Options::default());
    let r = d.services().redactor.clone();
    assert!(r.is_secret("ApiKey"));
    assert!(r.is_secret("SwarmJoinKey"));
    assert!(r.is_secret("JoinToken"));
    assert!(!r.is_secret("InstanceIp"));
}

#[test]
fn a_definition_with_names_the_registry_lacks_is_refused_when_bound() {
    const CFG: &str = "- {source: a, dest: b, triggers: [{name: go, before: [drain_swarm]}]}";
    let def = Arc::new(Definition::from_yaml(CFG).unwrap());
    let services = embedded(
        &LocalStore::memory(),
        &Recorder::default(),
        Arc::new(ManualClock::default()),
    );
    let err = Dispatcher::new(def, &Registry::new(), services, Options::default()).unwrap_err();
    assert_eq!(
        err.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "transitions[0] (a -> b), trigger go, key before: unknown task `drain_swarm`: nothing registers it"
        ]
    );
}

/// A task that takes `0` of the clock's time, as a slow task would.
struct Slow(Duration);

#[async_trait::async_trait]
impl lifecycle_runtime::Task for Slow {
    async fn run(
        &self,
        cx: &mut lifecycle_runtime::TaskContext<'_>,
    ) -> Result<(), lifecycle::Fault> {
        cx.services.clock.sleep(self.0).await;
        Ok(())
    }
}

#[tokio::test]
async fn the_deadline_stops_processing_before_the_next_task_with_the_state_persisted() {
    // SPEC 8: when the deadline comes, the state reached so far is persisted and the record
    // ends with `stopped_by: deadline`, retryable; the retry resumes from that state.
    const CFG: &str = r#"
transitions:
  - {source: serving, dest: draining, triggers: [{name: drain, after: [slow]}]}
  - {source: draining, dest: gone, triggers: [{name: gone, before: [never]}]}
"#;
    let store = store_with("i-1", "serving");
    let clock = Arc::new(ManualClock::default());
    let mut registry = Registry::new();
    registry.register_task("slow", Arc::new(Slow(Duration::from_secs(30))));
    registry.register_task("never", Arc::new(Slow(Duration::ZERO)));
    let d = build(
        CFG,
        &registry,
        embedded(&store, &Recorder::default(), clock.clone()),
        Options::default(),
    );
    let deadline = Deadline::at(clock.now() + Duration::from_secs(10));
    let r = d.handle(terminate("i-1"), deadline).await;
    assert_eq!(r.stopped_by, StopReason::Deadline, "{r:?}");
    assert!(r.retryable, "{r:?}");
    assert_eq!(r.error_kind, Some(lifecycle::FaultKind::Transient));
    assert_eq!(r.passed_states, ["draining"]);
    assert_eq!(r.tasks, ["slow"], "the task after the deadline did not run");
    assert_eq!(
        store.item("i-1").unwrap().unwrap()["ItemStatus"],
        "draining"
    );
    assert!(r.error.unwrap().contains("state draining"));

    // The redelivered event, with time, resumes from `draining`.
    let r = d.handle(terminate("i-1"), Deadline::NONE).await;
    assert_eq!(r.initial_state, "draining", "{r:?}");
    assert_eq!(r.final_state, "gone");
    assert_eq!(r.tasks, ["never"]);
}

#[tokio::test]
async fn a_record_wait_cut_by_the_deadline_is_retryable_not_dropped() {
    // A status event of ours whose record has not appeared when the deadline comes must be
    // retried (the record may yet be stored), not acknowledged as "not ours".
    let store = store_with("i-1", "finished_cloud_init");
    let clock = Arc::new(common::CloudInitClock::new(store.clone(), None));
    let d = dispatcher_with_clock(&store, clock.clone());
    let deadline = Deadline::at(clock.now() + Duration::from_secs(3));
    let r = d.handle(ours(command("cmd-1", "Success")), deadline).await;
    assert_eq!(r.stopped_by, StopReason::Deadline, "{r:?}");
    assert!(r.retryable);
    assert_eq!(clock.elapsed(), Duration::from_secs(3));
}

/// Time on tokio's clock (paused in the test: it advances only when every task waits), as
/// the AWS runtime's clock does in a Lambda.
struct TokioTestClock {
    start: std::time::SystemTime,
    origin: tokio::time::Instant,
}

#[async_trait::async_trait]
impl Clock for TokioTestClock {
    fn now(&self) -> std::time::SystemTime {
        self.start + self.origin.elapsed()
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_task_of_a_lifecycle_event_keeps_the_action_alive_with_heartbeats() {
    // SPEC 8: while the lifecycle action waits on our work (here a task that takes 35 s, as
    // a wait for the SSM agent or a snapshot does), a heartbeat goes out every interval.
    const CFG: &str = r#"
transitions:
  - {source: serving, dest: drained, triggers: [{name: drain, before: [slow]}]}
"#;
    let store = store_with("i-1", "serving");
    let recorder = Recorder::default();
    let clock = Arc::new(TokioTestClock {
        start: std::time::SystemTime::UNIX_EPOCH,
        origin: tokio::time::Instant::now(),
    });
    let mut registry = Registry::new();
    registry.register_task("slow", Arc::new(Slow(Duration::from_secs(35))));
    let mut options = Options::default();
    options.heartbeat_interval = Duration::from_secs(10);
    let d = build(
        CFG,
        &registry,
        embedded(&store, &recorder, clock),
        options.clone(),
    );
    let r = d.handle(terminate("i-1"), Deadline::NONE).await;
    assert_eq!(r.final_state, "drained", "{r:?}");
    let beats: Vec<_> = recorder.calls_to("RecordLifecycleActionHeartbeat");
    assert_eq!(beats.len(), 3, "at 10, 20 and 30 s: {beats:?}");
    assert_eq!(beats[0].input["LifecycleActionToken"], "token-i-1");

    // A scheduled event has no lifecycle action: nothing to keep alive.
    const SCHEDULED: &str = r#"
transitions:
  - {source: nightly, dest: null, triggers: [{name: run, before: [slow]}]}
"#;
    let recorder = Recorder::default();
    let clock = Arc::new(TokioTestClock {
        start: std::time::SystemTime::UNIX_EPOCH,
        origin: tokio::time::Instant::now(),
    });
    let d = build(
        SCHEDULED,
        &registry,
        embedded(&store, &recorder, clock),
        options,
    );
    let r = d.handle(common::scheduled("nightly"), Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:?}");
    assert!(recorder.calls().is_empty(), "{:?}", recorder.calls());
}

#[tokio::test]
async fn a_scheduled_snapshot_by_volume_id_needs_no_node() {
    // A scheduled event names no node: a snapshot there names its volume by id (a device
    // needs the node's instance to look it up).
    const CFG: &str = r#"
tasks:
  snapshot_volumes:
    ec2_snapshot: {volume_id: vol-0123456789abcdef0, tags: {Purpose: backup, Rule: "{event.name}"}}
  snapshot_root:
    ec2_snapshot: {device: /dev/xvda}
transitions:
  - {source: backup, dest: backed_up, triggers: [{name: snapshot, before: [snapshot_volumes]}]}
  - {source: root, dest: rooted, triggers: [{name: snapshot_root, before: [snapshot_root]}]}
"#;
    let store = LocalStore::memory();
    let recorder = Recorder::default();
    let d = build(
        CFG,
        &Registry::new(),
        embedded(&store, &recorder, Arc::new(ManualClock::default())),
        Options::default(),
    );
    let r = d.handle(common::scheduled("backup"), Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.final_state, "backed_up");
    let calls = recorder.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].operation, "CreateSnapshot");
    assert_eq!(calls[0].input["VolumeId"], "vol-0123456789abcdef0");
    assert_eq!(
        calls[0].input["TagSpecifications"][0]["Tags"][1],
        serde_json::json!({"Key": "Rule", "Value": "backup"})
    );

    // By device, a nodeless event fails with a clear error (and enters failure handling).
    let r = d.handle(common::scheduled("root"), Deadline::NONE).await;
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(
        r.errors[0].message.contains("the event has no node"),
        "{r:?}"
    );
}

/// Auto Scaling as the recorder has it, with parts of it scripted: a scaling activity that
/// never completes, the instance's lifecycle states (each `DescribeAutoScalingInstances`
/// takes the next one; the last one stays), a hook's heartbeat timeout.
#[derive(Default)]
struct Actions {
    recorder: Recorder,
    activity_stalls: bool,
    states: std::sync::Mutex<Vec<&'static str>>,
    hook_timeout: Option<Duration>,
}

#[async_trait::async_trait]
impl lifecycle_runtime::capability::LifecycleActions for Actions {
    async fn complete(
        &self,
        data: &lifecycle::LifecycleData,
        result: lifecycle::event::LifecycleResult,
    ) -> Result<lifecycle_runtime::capability::ActionState, lifecycle::Fault> {
        self.recorder.complete(data, result).await
    }
    async fn heartbeat(
        &self,
        data: &lifecycle::LifecycleData,
    ) -> Result<lifecycle_runtime::capability::ActionState, lifecycle::Fault> {
        self.recorder.heartbeat(data).await
    }
    async fn wait_for_activity(
        &self,
        data: &lifecycle::LifecycleData,
        until: std::time::SystemTime,
    ) -> Result<(), lifecycle::Fault> {
        if self.activity_stalls {
            return Err(lifecycle::Fault::transient(
                "scaling activity of i-1 still at 30% when the wait ran out",
            ));
        }
        self.recorder.wait_for_activity(data, until).await
    }
    async fn heartbeat_timeout(
        &self,
        group: &str,
        hook: &str,
    ) -> Result<Option<Duration>, lifecycle::Fault> {
        match self.hook_timeout {
            Some(t) => Ok(Some(t)),
            None => self.recorder.heartbeat_timeout(group, hook).await,
        }
    }
    async fn instance(
        &self,
        id: &str,
    ) -> Result<Option<lifecycle_runtime::capability::GroupInstance>, lifecycle::Fault> {
        let known = self.recorder.instance(id).await?;
        let mut states = self.states.lock().unwrap();
        let state = match states.len() {
            0 => return Ok(known),
            1 => states[0],
            _ => states.remove(0),
        };
        Ok(Some(lifecycle_runtime::capability::GroupInstance {
            group: common::GROUP.into(),
            lifecycle_state: state.into(),
        }))
    }
    async fn instances(
        &self,
        ids: &[String],
    ) -> Result<Vec<lifecycle::reconcile::Instance>, lifecycle::Fault> {
        self.recorder.instances(ids).await
    }
    async fn group_instances(
        &self,
        group: &str,
    ) -> Result<Vec<lifecycle::reconcile::Instance>, lifecycle::Fault> {
        self.recorder.group_instances(group).await
    }
    async fn hooks(
        &self,
        group: &str,
    ) -> Result<Vec<lifecycle::reconcile::Hook>, lifecycle::Fault> {
        self.recorder.hooks(group).await
    }
    async fn set_protection(
        &self,
        group: &str,
        ids: &[String],
        protected: bool,
    ) -> Result<(), lifecycle::Fault> {
        self.recorder.set_protection(group, ids, protected).await
    }
}

#[tokio::test]
async fn a_launch_whose_scaling_activity_lingers_is_still_completed_and_not_failed() {
    // SPEC 5: after a CONTINUE, the wait for the scaling activity is best effort; an activity
    // below 100 % (warm-up, load balancer checks) must not send a healthy node into failure
    // handling, where most configurations would ABANDON an action AWS already accepted.
    const CFG: &str = r#"
transitions:
  - {source: finished_cloud_init, dest: ready, triggers: [{name: complete, before: [complete_lifecycle_action]}]}
  - {source: failure, dest: abandoned, triggers: [{name: give_up, ignore_errors: true, before: [complete_lifecycle_action]}]}
"#;
    let store = store_with("i-1", "finished_cloud_init");
    let recorder = Recorder::default();
    let mut services = embedded(&store, &recorder, Arc::new(ManualClock::default()));
    services.lifecycle = Arc::new(Actions {
        recorder: recorder.clone(),
        activity_stalls: true,
        ..Actions::default()
    });
    let d = build(CFG, &Registry::new(), services, Options::default());
    let r = d.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(r.final_state, "ready", "{r:?}");
    assert!(r.errors.is_empty(), "{r:?}");
    let completions: Vec<String> = recorder
        .calls_to("CompleteLifecycleAction")
        .iter()
        .map(|c| {
            c.input["LifecycleActionResult"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(completions, ["CONTINUE"], "completed once, never abandoned");
}

/// A task that fails as throttled AWS calls do.
struct Throttled;

#[async_trait::async_trait]
impl lifecycle_runtime::Task for Throttled {
    async fn run(
        &self,
        _: &mut lifecycle_runtime::TaskContext<'_>,
    ) -> Result<(), lifecycle::Fault> {
        Err(lifecycle::Fault::Service {
            operation: "ChangeResourceRecordSets".into(),
            code: Some("Throttling".into()),
            status: Some(400),
            message: "Rate exceeded".into(),
            kind: lifecycle::FaultKind::Transient,
        })
    }
}

#[tokio::test]
async fn a_transient_fault_ends_the_record_retryable_until_max_transient_attempts() {
    // SPEC 9: throttling is not a failure. The first deliveries end retryable with the state
    // persisted and nothing abandoned; the third (max_transient_attempts = 3) handles the
    // fault as a permanent one.
    const CFG: &str = r#"
transitions:
  - {source: serving, dest: draining, triggers: [{name: drain, after: [publish_dns]}]}
  - {source: draining, dest: drained, triggers: [{name: next, before: [publish_dns]}]}
  - {source: failure, dest: failed, triggers: [{name: give_up, ignore_errors: true, before: [complete_lifecycle_action]}]}
"#;
    let store = store_with("i-1", "serving");
    let recorder = Recorder::default();
    let mut registry = Registry::new();
    registry.register_task("publish_dns", Arc::new(Throttled));
    let d = build(
        CFG,
        &registry,
        embedded(&store, &recorder, Arc::new(ManualClock::default())),
        Options::default(),
    );
    let status = || store.item("i-1").unwrap().unwrap()["ItemStatus"].clone();
    let attempts = || store.item("i-1").unwrap().unwrap()["TransientAttempts"].clone();

    let r = d.handle(terminate("i-1"), Deadline::NONE).await;
    assert_eq!(r.stopped_by, StopReason::Error, "{r:?}");
    assert!(r.retryable);
    assert_eq!(
        r.passed_states,
        ["draining"],
        "the state reached is persisted"
    );
    assert!(r.errors.is_empty(), "no failure handling: {r:?}");
    assert_eq!(r.transient_attempts, 1);
    assert_eq!((status(), attempts()), ("draining".into(), 1.into()));

    let r = d.handle(terminate("i-1"), Deadline::NONE).await;
    assert!(r.retryable, "{r:?}");
    assert_eq!(r.initial_state, "draining");
    assert_eq!(r.transient_attempts, 2);
    assert_eq!((status(), attempts()), ("draining".into(), 2.into()));
    assert!(
        recorder.calls().is_empty(),
        "nothing completed or abandoned yet"
    );

    // The third delivery in a row: the fault is handled as a permanent one.
    let r = d.handle(terminate("i-1"), Deadline::NONE).await;
    assert_eq!(r.passed_states, ["failure", "failed"], "{r:?}");
    assert!(!r.retryable);
    assert_eq!(r.transient_attempts, 0, "counted afresh");
    assert_eq!(attempts(), 0);
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].message.contains("Throttling"), "{r:?}");
}

#[tokio::test]
async fn a_node_created_by_its_first_status_write_is_typed_and_queries_see_it() {
    // Issue "Transient faults are not failures": a node the first status write created had no
    // `ItemType`, so the type index (node queries, `node_count`) could not see it.
    const CFG: &str = r#"
transitions:
  - {source: new, dest: registered, triggers: [{name: register, conditions: [is_launching]}]}
"#;
    let store = LocalStore::memory();
    let d = build(
        CFG,
        &Registry::new(),
        embedded(
            &store,
            &Recorder::default(),
            Arc::new(ManualClock::default()),
        ),
        Options::default(),
    );
    let mut typed = launch("i-1");
    if let Some(lc) = &mut typed.lifecycle {
        lc.metadata.insert("type".into(), "manager".into());
    }
    let r = d.handle(typed, Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:?}");
    let managers = store.by_type("manager").await.unwrap();
    assert_eq!(managers.len(), 1, "{:?}", store.items());
    assert_eq!(managers[0].status, "registered");
    // Without a `type` in the metadata: `unknown`, as the original typed it.
    let r = d.handle(launch("i-2"), Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(store.by_type("unknown").await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_item_type_that_is_not_a_non_empty_string_is_refused_before_any_write() {
    // DynamoDB refuses it with a ValidationException (it keys the type index); both stores
    // refuse it first, naming it.
    let store = store_with("i-1", "ready");
    for bad in [serde_json::json!(""), serde_json::json!(7)] {
        let mut props = serde_json::Map::new();
        props.insert("ItemType".into(), bad.clone());
        let e = store.set_properties("i-1", &props).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("`ItemType` must be a non-empty string"),
            "{e}"
        );
        assert_eq!(store.item("i-1").unwrap().unwrap()["ItemType"], "worker");
    }
}

#[tokio::test]
async fn protect_from_scale_in_follows_the_instances_lifecycle_state() {
    // Issue "Transient faults are not failures": the original waited for the instance to be
    // in service; AWS refuses protection for an instance in a warm pool; and an instance
    // waiting on this very event's hook cannot be in service before the hook is completed.
    const CFG: &str = r#"
transitions:
  - {source: finished_cloud_init, dest: ready, triggers: [{name: go, after: [protect_from_scale_in]}]}
"#;
    let run = |states: Vec<&'static str>| async move {
        let store = store_with("i-1", "finished_cloud_init");
        let recorder = Recorder::default();
        let mut services = embedded(&store, &recorder, Arc::new(ManualClock::default()));
        services.lifecycle = Arc::new(Actions {
            recorder: recorder.clone(),
            states: std::sync::Mutex::new(states),
            ..Actions::default()
        });
        let d = build(CFG, &Registry::new(), services, Options::default());
        let r = d.handle(launch("i-1"), Deadline::NONE).await;
        let protected = recorder.calls_to("SetInstanceProtection").len();
        (r, protected)
    };
    // Launching, then in service: waited for, then protected.
    let (r, protected) = run(vec!["Pending", "Pending:Proceed", "InService"]).await;
    assert_eq!(r.errors, vec![], "{r:?}");
    assert_eq!(protected, 1);
    assert!(r.waited_ms == 0, "a task's wait is not the loader's");
    // In a warm pool: left alone, not an error.
    let (r, protected) = run(vec!["Warmed:Pending:Wait"]).await;
    assert_eq!((r.errors.len(), protected), (0, 0), "{r:?}");
    // Waiting on this event's own hook: a permanent error that names the fix.
    let (r, protected) = run(vec!["Pending:Wait"]).await;
    assert_eq!(protected, 0);
    let message = &r.errors[0].message;
    assert!(
        message.contains("run protect_from_scale_in after complete_lifecycle_action"),
        "{r:?}"
    );
    // Never in service within the wait: retryable, not a failure (SPEC 9).
    let (r, protected) = run(vec!["Pending"]).await;
    assert_eq!(protected, 0);
    assert!(r.retryable, "{r:?}");
    assert!(r.errors.is_empty(), "{r:?}");
}

#[tokio::test]
async fn a_transient_fault_near_the_actions_timeout_is_handled_now() {
    // SPEC 9: retrying is right while the lifecycle action has time left; within
    // `action_margin` (5 min) of its timeout, a retry would come too late and the hook would
    // apply its default on its own: the fault enters failure handling at once, whose
    // triggers send the configured result on purpose.
    const CFG: &str = r#"
transitions:
  - {source: serving, dest: draining, triggers: [{name: drain, after: [publish_dns]}]}
  - {source: failure, dest: failed, triggers: [{name: give_up, ignore_errors: true, before: [complete_lifecycle_action]}]}
"#;
    let run = |elapsed: u64| async move {
        let store = store_with("i-1", "serving");
        let recorder = Recorder::default();
        let clock = Arc::new(ManualClock::default());
        // The event's time is the clock's start; the hook's heartbeat timeout 10 minutes.
        clock.advance(Duration::from_secs(elapsed));
        let mut services = embedded(&store, &recorder, clock);
        services.lifecycle = Arc::new(Actions {
            recorder: recorder.clone(),
            hook_timeout: Some(Duration::from_secs(600)),
            ..Actions::default()
        });
        let mut registry = Registry::new();
        registry.register_task("publish_dns", Arc::new(Throttled));
        let d = build(CFG, &registry, services, Options::default());
        let r = d.handle(terminate("i-1"), Deadline::NONE).await;
        let completions: Vec<_> = recorder.calls_to("CompleteLifecycleAction");
        (r, completions)
    };
    // 4 minutes in, 6 left: retried.
    let (r, completions) = run(240).await;
    assert!(r.retryable, "{r:?}");
    assert!(completions.is_empty());
    // 6 minutes in, 4 left: handled now; the failure trigger completes the hook.
    let (r, completions) = run(360).await;
    assert!(!r.retryable, "{r:?}");
    assert_eq!(r.final_state, "failed", "{r:?}");
    assert!(
        r.errors[0]
            .message
            .contains("not retried: the lifecycle action times out in 240 s"),
        "{r:?}"
    );
    // The configured result for a failed event (for a termination, either ends it).
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0].input["LifecycleActionResult"], "ABANDON");
}

#[tokio::test]
async fn built_in_reporting_sends_one_summary_per_event_with_errors_and_transitions() {
    // SPEC 5: configured once (`report:`), a summary per event that moved its node or met an
    // error — ignored ones too — with the node's properties, secrets masked; and
    // `{transition.*}` placeholders let a failure report say what failed where.
    const CFG: &str = r#"
report:
  topic_arn: "arn:aws:sns:eu-west-1:123456789012:lifecycle"
tasks:
  tell:
    sns_report:
      topic_arn: "arn:aws:sns:eu-west-1:123456789012:pager"
      subject: "failed: {transition.trigger} from {transition.source}"
      message: "{transition.error}"
transitions:
  - {source: finished_cloud_init, dest: joined, triggers: [{name: join, before: [t_err_join]}]}
  - {source: failure, dest: abandoned, triggers: [{name: give_up, ignore_errors: true, before: [tell]}]}
"#;
    let store = LocalStore::memory();
    let mut item = node("i-1", "finished_cloud_init");
    item.insert("JoinToken".into(), "SWMTKN-canary".into());
    store.insert_item(item).unwrap();
    let recorder = Recorder::default();
    let d = build(
        CFG,
        &registry_for(CFG, &[]),
        embedded(&store, &recorder, Arc::new(ManualClock::default())),
        Options::default(),
    );
    let r = d.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(r.final_state, "abandoned", "{r:?}");
    let published: Vec<_> = recorder.calls_to("Publish");
    assert_eq!(published.len(), 2, "{published:#?}");
    // The failure trigger's own report names its trigger and state, and the error.
    assert_eq!(
        published[0].input["Subject"],
        "failed: give_up from failure"
    );
    assert_eq!(
        published[0].input["Message"],
        "t_err_join failed (scripted)"
    );
    // The summary: one, after the event, with every transition and error.
    let summary = &published[1].input;
    assert_eq!(
        summary["TopicArn"],
        "arn:aws:sns:eu-west-1:123456789012:lifecycle"
    );
    assert_eq!(
        summary["Subject"],
        "EC2 Instance-launch Lifecycle Action: i-1 finished_cloud_init -> abandoned (failed)"
    );
    let message: serde_json::Value =
        serde_json::from_str(summary["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        message["passed_states"],
        serde_json::json!(["failure", "abandoned"])
    );
    assert_eq!(message["errors"][0]["task"], "t_err_join");
    assert_eq!(message["node"]["properties"]["JoinToken"], "***");
    assert!(!summary.to_string().contains("SWMTKN-canary"));

    // A duplicate delivery changes nothing, and reports nothing.
    let again = d.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(again.stopped_by, StopReason::Duplicate);
    let published = recorder.calls_to("Publish").len();
    assert_eq!(published, 2);
}

#[test]
fn a_report_section_is_checked_like_the_rest() {
    for (cfg, want) in [
        (
            "report: {topic: x}\ntransitions: [{source: a, dest: b, triggers: [{name: go}]}]",
            "unknown field `topic`",
        ),
        (
            "report: {topic_arn: \"\"}\ntransitions: [{source: a, dest: b, triggers: [{name: go}]}]",
            "must name a topic",
        ),
        (
            "report: {topic_arn: \"{nope.x}\"}\ntransitions: [{source: a, dest: b, triggers: [{name: go}]}]",
            "unknown placeholder",
        ),
    ] {
        let e = Definition::from_yaml(cfg).unwrap_err().to_string();
        assert!(e.contains("key report") && e.contains(want), "{e}");
    }
}

#[tokio::test]
async fn a_trigger_with_a_report_of_its_own_reports_when_it_fires_or_fails() {
    // SPEC 5 / issue "Transient faults are not failures": reporting configured per trigger.
    const CFG: &str = r#"
transitions:
  - {source: finished_cloud_init, dest: joined, triggers: [{name: join, before: [t_err_join], report: {topic_arn: "arn:aws:sns:eu-west-1:123456789012:joins"}}]}
  - {source: failure, dest: abandoned, triggers: [{name: give_up, ignore_errors: true, report: {topic_arn: "arn:aws:sns:eu-west-1:123456789012:ops", subject: "gave up on {node.Ident}: {transition.source} -> {transition.dest}"}}]}
"#;
    let store = store_with("i-1", "finished_cloud_init");
    let recorder = Recorder::default();
    let d = build(
        CFG,
        &registry_for(CFG, &[]),
        embedded(&store, &recorder, Arc::new(ManualClock::default())),
        Options::default(),
    );
    let r = d.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(r.final_state, "abandoned", "{r:?}");
    let published: Vec<_> = recorder
        .calls_to("Publish")
        .into_iter()
        .map(|c| c.input)
        .collect();
    assert_eq!(published.len(), 2, "{published:#?}");
    // In the order they fired: the trigger that failed — its error, marked failed...
    assert_eq!(
        published[0]["TopicArn"],
        "arn:aws:sns:eu-west-1:123456789012:joins"
    );
    assert_eq!(
        published[0]["Subject"],
        "join: finished_cloud_init -> joined (failed)"
    );
    // ...then the failure trigger, with its own subject.
    assert_eq!(
        published[1]["Subject"],
        "gave up on i-1: failure -> abandoned"
    );
    let message: serde_json::Value =
        serde_json::from_str(published[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["trigger"], "join");
    assert_eq!(message["failed"], true);
    assert_eq!(message["errors"][0]["task"], "t_err_join");
}
