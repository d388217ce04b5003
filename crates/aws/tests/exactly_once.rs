//! SPEC 9 against moto's server: real HTTP, the real SDK, DynamoDB's conditional writes (the
//! harness makes moto's writes atomic, as DynamoDB's are). Many handlers at once on one node
//! and one event: each step is taken once, the hook completed once, each command sent once,
//! and no handler ends in an invocation error.
//!
//! Counted at the emulator: commands by `ListCommands`, completions by the harness's
//! `DescribeTestLifecycleActions` (CompleteLifecycleAction is the harness's AWS-shaped
//! addition; moto lacks it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use lifecycle::engine::StopReason;
use lifecycle::event::{Parsed, parse_value};
use lifecycle::{Deadline, Definition, Event};
use lifecycle_aws::{DynamoStore, Timeouts};
use lifecycle_runtime::{Dispatcher, Options, Registry, Report};
use serde_json::Value;
use support::{Moto, MotoGuard};

const TABLE: &str = "lifecycle";
const GROUP: &str = "workers";
const LAUNCH_TOKEN: &str = "11111111-2222-4333-8444-555555555555";
const TERMINATE_TOKEN: &str = "66666666-7777-4888-9999-000000000000";

const CONFIG: &str = r#"
tasks:
  join:
    ssm_command: {commands: ["echo join {node.InstanceIp}"], comment: join}
transitions:
  - {source: finished_cloud_init, dest: joining, stop_after_state_change: true, triggers: [{name: launch, conditions: [is_launching], before: [join]}]}
  - {source: joining, dest: ready, triggers: [{name: joined, conditions: [is_command], after: [complete_lifecycle_action]}]}
  - {source: ready, dest: removed, triggers: [{name: leave, conditions: [is_terminating], after: [remove_from_db, complete_lifecycle_action]}]}
  - {source: failure, dest: abandoned, triggers: [{name: give_up, ignore_errors: true, before: [complete_lifecycle_action]}]}
"#;

struct World {
    moto: MotoGuard,
    config: aws_config::SdkConfig,
    instance: String,
    dispatcher: Dispatcher,
}

async fn world() -> World {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    DynamoStore::new(&config, TABLE).init().await.unwrap();
    let instance = support::group(
        &config,
        GROUP,
        1,
        &[
            ("workers-on-launch", support::LAUNCHING),
            ("workers-on-terminate", support::TERMINATING),
        ],
    )
    .await
    .remove(0);
    aws_sdk_dynamodb::Client::new(&config)
        .put_item()
        .table_name(TABLE)
        .item("Ident", AttributeValue::S(instance.clone()))
        .item(
            "ItemStatus",
            AttributeValue::S("finished_cloud_init".into()),
        )
        .item("ItemType", AttributeValue::S("worker".into()))
        .item("InstanceIp", AttributeValue::S("10.0.0.7".into()))
        .send()
        .await
        .unwrap();
    moto.register_lifecycle_action(
        GROUP,
        "workers-on-launch",
        &instance,
        LAUNCH_TOKEN,
        support::LAUNCHING,
    );
    let services = lifecycle_aws::services(&config, TABLE, &Timeouts::default());
    let def = Definition::from_yaml(CONFIG).unwrap();
    let mut options = Options::default();
    // Generous for a loaded emulator: a waiting duplicate must see the first one finish.
    options.busy_wait = std::time::Duration::from_secs(60);
    let dispatcher = Dispatcher::new(Arc::new(def), &Registry::new(), services, options).unwrap();
    World {
        moto,
        config,
        instance,
        dispatcher,
    }
}

fn event(json: &Value) -> Event {
    match parse_value(json).remove(0) {
        Ok(Parsed::Event(e)) => *e,
        other => panic!("not an event: {other:?}"),
    }
}

impl World {
    fn launch(&self, id: &str) -> Event {
        event(&support::lifecycle_event(
            id,
            GROUP,
            GROUP,
            &self.instance,
            true,
            LAUNCH_TOKEN,
        ))
    }

    fn terminate(&self, id: &str) -> Event {
        event(&support::lifecycle_event(
            id,
            GROUP,
            GROUP,
            &self.instance,
            false,
            TERMINATE_TOKEN,
        ))
    }

    fn status(&self, id: &str, command: &str) -> Event {
        event(&support::status_event(
            id,
            command,
            &self.instance,
            "Success",
            "# sent by autoscaling-lifecycle",
        ))
    }

    /// Every event handled at once, each on its own task.
    async fn at_once(&self, events: Vec<Event>) -> Vec<Report> {
        let tasks: Vec<_> = events
            .into_iter()
            .map(|e| {
                let d = self.dispatcher.clone();
                tokio::spawn(async move { d.handle(e, Deadline::NONE).await })
            })
            .collect();
        let mut reports = Vec::with_capacity(tasks.len());
        for t in tasks {
            reports.push(t.await.unwrap());
        }
        reports
    }

    async fn status_of(&self) -> Option<String> {
        aws_sdk_dynamodb::Client::new(&self.config)
            .get_item()
            .table_name(TABLE)
            .key("Ident", AttributeValue::S(self.instance.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item()
            .and_then(|i| i.get("ItemStatus").and_then(|s| s.as_s().ok().cloned()))
    }
}

/// Exactly one report advanced the node; every other one stopped as a duplicate or a
/// conflict; none is an invocation error.
fn one_advanced(reports: &[Report], step: &str) {
    let errors: Vec<_> = reports.iter().filter(|r| r.error.is_some()).collect();
    assert!(errors.is_empty(), "{step}: invocation errors: {errors:#?}");
    let advanced: Vec<_> = reports
        .iter()
        .filter(|r| !r.passed_states.is_empty())
        .collect();
    assert_eq!(advanced.len(), 1, "{step}: {advanced:#?}");
    for r in reports.iter().filter(|r| r.passed_states.is_empty()) {
        // A duplicate, a conflict, or — once the termination removed the node, taking its
        // delivery entries with it — the tombstone's "removed".
        let removed = r
            .not_supported
            .as_deref()
            .is_some_and(|n| n.contains("was removed"));
        assert!(
            matches!(r.stopped_by, StopReason::Duplicate | StopReason::Conflict) || removed,
            "{step}: {r:#?}"
        );
    }
    let waited = reports.iter().filter(|r| r.waited_ms > 0).count();
    eprintln!(
        "{step}: {} deliveries, 1 advanced, {} duplicates ({waited} of them waited for the first)",
        reports.len(),
        reports.len() - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_handlers_racing_on_one_node_take_each_step_once() {
    let w = world().await;
    // Launch: sixteen deliveries of the lifecycle action, each in an event of its own id.
    let launches = (0..16).map(|i| w.launch(&format!("launch-{i}"))).collect();
    let reports = w.at_once(launches).await;
    one_advanced(&reports, "launch");
    assert_eq!(w.status_of().await.as_deref(), Some("joining"));
    let sent = support::sent_commands(&w.config).await;
    assert_eq!(sent.len(), 1, "one join command: {sent:?}");

    // The join's status, sixteen times with ids of their own: sixteen delivery records, so
    // the node's lease decides; the losers find the record consumed.
    let statuses = (0..16)
        .map(|i| w.status(&format!("status-{i}"), &sent[0]))
        .collect();
    let reports = w.at_once(statuses).await;
    one_advanced(&reports, "join succeeded");
    assert_eq!(w.status_of().await.as_deref(), Some("ready"));
    assert_eq!(
        w.moto.completions().len(),
        1,
        "the launch hook completed once"
    );

    // Termination, sixteen times.
    w.moto.register_lifecycle_action(
        GROUP,
        "workers-on-terminate",
        &w.instance,
        TERMINATE_TOKEN,
        support::TERMINATING,
    );
    let terminations = (0..16).map(|i| w.terminate(&format!("term-{i}"))).collect();
    let reports = w.at_once(terminations).await;
    one_advanced(&reports, "terminate");
    assert_eq!(
        w.status_of().await,
        None,
        "removed, a tombstone in its place"
    );
    let completions = w.moto.completions();
    assert_eq!(completions.len(), 2, "{completions:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_deliveries_of_one_event_send_once_and_complete_once() {
    let w = world().await;
    // 200 at once, then 800 one after another: 1,000 deliveries of the same launch event.
    let mut reports = w
        .at_once((0..200).map(|_| w.launch("launch")).collect())
        .await;
    for _ in 0..800 {
        reports.push(
            w.dispatcher
                .handle(w.launch("launch"), Deadline::NONE)
                .await,
        );
    }
    one_advanced(&reports, "launch");
    let sent = support::sent_commands(&w.config).await;
    assert_eq!(sent.len(), 1, "one SendCommand: {sent:?}");

    // The command's status, 200 at once then 800 one after another: the hook completed once.
    let mut reports = w
        .at_once((0..200).map(|_| w.status("status", &sent[0])).collect())
        .await;
    for _ in 0..800 {
        reports.push(
            w.dispatcher
                .handle(w.status("status", &sent[0]), Deadline::NONE)
                .await,
        );
    }
    one_advanced(&reports, "join succeeded");
    assert_eq!(w.status_of().await.as_deref(), Some("ready"));
    assert_eq!(w.moto.completions().len(), 1, "one CompleteLifecycleAction");
    assert_eq!(support::sent_commands(&w.config).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Crash and resume: a stop after every AWS call of a full lifecycle, then the redelivery.

mod crash {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, SystemTime};

    use async_trait::async_trait;
    use lifecycle::config::declared::RecordAction;
    use lifecycle::delivery::{Begin, Claim, Claiming, Lease, NodeWrite, Reservation, Resume};
    use lifecycle::event::{LifecycleData, LifecycleResult};
    use lifecycle::{CommandRecord, Fault, Node, Sensitive};
    use lifecycle_runtime::Services;
    use lifecycle_runtime::capability::{
        ActionState, CommandRunner, CommandStore, Deliveries, Dns, GroupInstance, LifecycleActions,
        NodeStore, RecordChange, Reporter, Secrets, ShellCommand,
    };
    use serde_json::{Map, Value};

    /// Every capability of `inner`, counting the calls that went through; once `at` calls
    /// went through, the process "dies": every later call never returns, and the test drops
    /// the invocation at that point, so nothing after the `at`th call happens.
    pub struct Crashing {
        pub inner: Services,
        pub at: usize,
        pub calls: AtomicUsize,
        pub dead: AtomicBool,
        pub log: Mutex<Vec<&'static str>>,
    }

    impl Crashing {
        async fn gate(&self) {
            if self.dead.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
        }

        fn done<T>(&self, op: &'static str, r: T) -> T {
            if let Ok(mut log) = self.log.lock() {
                log.push(op);
            }
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
                self.dead.store(true, Ordering::SeqCst);
            }
            r
        }
    }

    macro_rules! through {
        ($self:ident, $op:literal, $call:expr) => {{
            $self.gate().await;
            let r = $call.await;
            $self.done($op, r)
        }};
    }

    #[async_trait]
    impl NodeStore for Crashing {
        async fn get(&self, id: &str) -> Result<Option<Node>, Fault> {
            through!(self, "GetNode", self.inner.nodes.get(id))
        }
        async fn put(&self, node: &Node) -> Result<(), Fault> {
            through!(self, "PutNode", self.inner.nodes.put(node))
        }
        async fn claim(
            &self,
            id: &str,
            lease: &Lease,
            with: Claiming<'_>,
            now: SystemTime,
        ) -> Result<Claim, Fault> {
            through!(self, "Claim", self.inner.nodes.claim(id, lease, with, now))
        }
        async fn write(&self, id: &str, owner: &str, w: &NodeWrite) -> Result<(), Fault> {
            through!(self, "WriteNode", self.inner.nodes.write(id, owner, w))
        }
        async fn release(&self, id: &str, owner: &str) -> Result<(), Fault> {
            through!(self, "Release", self.inner.nodes.release(id, owner))
        }
        async fn set_status(
            &self,
            id: &str,
            expected: &str,
            new: &str,
            owner: Option<&str>,
        ) -> Result<(), Fault> {
            through!(
                self,
                "SetStatus",
                self.inner.nodes.set_status(id, expected, new, owner)
            )
        }
        async fn set_properties(&self, id: &str, p: &Map<String, Value>) -> Result<(), Fault> {
            through!(
                self,
                "SetProperties",
                self.inner.nodes.set_properties(id, p)
            )
        }
        async fn remove(&self, id: &str, until: SystemTime) -> Result<(), Fault> {
            through!(self, "Remove", self.inner.nodes.remove(id, until))
        }
        async fn by_type(&self, t: &str) -> Result<Vec<Node>, Fault> {
            through!(self, "ByType", self.inner.nodes.by_type(t))
        }
    }

    #[async_trait]
    impl CommandStore for Crashing {
        async fn put_command(&self, r: &CommandRecord) -> Result<(), Fault> {
            through!(self, "PutCommand", self.inner.commands.put_command(r))
        }
        async fn get_command(
            &self,
            id: &str,
            now: SystemTime,
        ) -> Result<Option<CommandRecord>, Fault> {
            through!(self, "GetCommand", self.inner.commands.get_command(id, now))
        }
        async fn delete_command(&self, id: &str) -> Result<(), Fault> {
            through!(
                self,
                "DeleteCommand",
                self.inner.commands.delete_command(id)
            )
        }
        async fn reserve_send(
            &self,
            key: &str,
            owner: &str,
            expires: SystemTime,
            now: SystemTime,
        ) -> Result<Reservation, Fault> {
            through!(
                self,
                "ReserveSend",
                self.inner.commands.reserve_send(key, owner, expires, now)
            )
        }
        async fn take_over_send(
            &self,
            key: &str,
            owner: &str,
            expires: SystemTime,
        ) -> Result<(), Fault> {
            through!(
                self,
                "TakeOverSend",
                self.inner.commands.take_over_send(key, owner, expires)
            )
        }
        async fn mark_sent(&self, key: &str, id: &str, expires: SystemTime) -> Result<(), Fault> {
            through!(
                self,
                "MarkSent",
                self.inner.commands.mark_sent(key, id, expires)
            )
        }
        async fn release_send(&self, key: &str, owner: &str) -> Result<(), Fault> {
            through!(
                self,
                "ReleaseSend",
                self.inner.commands.release_send(key, owner)
            )
        }
    }

    #[async_trait]
    impl Deliveries for Crashing {
        async fn begin(&self, key: &str, lease: &Lease, now: SystemTime) -> Result<Begin, Fault> {
            through!(self, "Begin", self.inner.deliveries.begin(key, lease, now))
        }
        async fn mark(&self, key: &str, owner: &str, resume: &Resume) -> Result<(), Fault> {
            through!(self, "Mark", self.inner.deliveries.mark(key, owner, resume))
        }
        async fn finish(
            &self,
            key: &str,
            owner: &str,
            outcome: &str,
            expires: SystemTime,
        ) -> Result<(), Fault> {
            through!(
                self,
                "Finish",
                self.inner.deliveries.finish(key, owner, outcome, expires)
            )
        }
        async fn forget(
            &self,
            key: &str,
            owner: &str,
            now: SystemTime,
            keep_resume: bool,
        ) -> Result<(), Fault> {
            through!(
                self,
                "Forget",
                self.inner.deliveries.forget(key, owner, now, keep_resume)
            )
        }
    }

    #[async_trait]
    impl LifecycleActions for Crashing {
        async fn complete(
            &self,
            data: &LifecycleData,
            result: LifecycleResult,
        ) -> Result<ActionState, Fault> {
            through!(
                self,
                "CompleteLifecycleAction",
                self.inner.lifecycle.complete(data, result)
            )
        }
        async fn heartbeat(&self, data: &LifecycleData) -> Result<ActionState, Fault> {
            through!(self, "Heartbeat", self.inner.lifecycle.heartbeat(data))
        }
        async fn wait_for_activity(
            &self,
            data: &LifecycleData,
            until: SystemTime,
        ) -> Result<(), Fault> {
            through!(
                self,
                "WaitForActivity",
                self.inner.lifecycle.wait_for_activity(data, until)
            )
        }
        async fn heartbeat_timeout(
            &self,
            group: &str,
            hook: &str,
        ) -> Result<Option<Duration>, Fault> {
            through!(
                self,
                "DescribeLifecycleHooks",
                self.inner.lifecycle.heartbeat_timeout(group, hook)
            )
        }
        async fn instance(&self, id: &str) -> Result<Option<GroupInstance>, Fault> {
            through!(
                self,
                "DescribeAutoScalingInstances",
                self.inner.lifecycle.instance(id)
            )
        }
        async fn instances(
            &self,
            ids: &[String],
        ) -> Result<Vec<lifecycle::reconcile::Instance>, Fault> {
            through!(
                self,
                "DescribeAutoScalingInstances",
                self.inner.lifecycle.instances(ids)
            )
        }
        async fn group_instances(
            &self,
            group: &str,
        ) -> Result<Vec<lifecycle::reconcile::Instance>, Fault> {
            through!(
                self,
                "DescribeAutoScalingGroups",
                self.inner.lifecycle.group_instances(group)
            )
        }
        async fn hooks(&self, group: &str) -> Result<Vec<lifecycle::reconcile::Hook>, Fault> {
            through!(
                self,
                "DescribeLifecycleHooks",
                self.inner.lifecycle.hooks(group)
            )
        }
        async fn set_protection(
            &self,
            group: &str,
            ids: &[String],
            protected: bool,
        ) -> Result<(), Fault> {
            through!(
                self,
                "SetProtection",
                self.inner.lifecycle.set_protection(group, ids, protected)
            )
        }
    }

    #[async_trait]
    impl CommandRunner for Crashing {
        async fn wait_online(&self, ids: &[String], until: SystemTime) -> Result<(), Fault> {
            through!(
                self,
                "WaitOnline",
                self.inner.runner.wait_online(ids, until)
            )
        }
        async fn send(&self, c: &ShellCommand) -> Result<String, Fault> {
            through!(self, "SendCommand", self.inner.runner.send(c))
        }
        async fn find_sent(&self, ids: &[String], key: &str) -> Result<Option<String>, Fault> {
            through!(self, "FindSent", self.inner.runner.find_sent(ids, key))
        }
    }

    #[async_trait]
    impl Dns for Crashing {
        async fn change(&self, zone: &Sensitive, changes: &[RecordChange]) -> Result<(), Fault> {
            through!(
                self,
                "ChangeResourceRecordSets",
                self.inner.dns.change(zone, changes)
            )
        }
    }

    #[async_trait]
    impl Reporter for Crashing {
        async fn publish(
            &self,
            topic: &Sensitive,
            subject: &str,
            message: &str,
        ) -> Result<(), Fault> {
            through!(
                self,
                "Publish",
                self.inner.reporter.publish(topic, subject, message)
            )
        }
    }

    #[async_trait]
    impl Secrets for Crashing {
        async fn read(&self, name: &Sensitive, decrypt: bool) -> Result<String, Fault> {
            through!(self, "GetParameter", self.inner.secrets.read(name, decrypt))
        }
    }

    /// Unused here, but a record action is what the DNS tasks build.
    pub const _DELETE: RecordAction = RecordAction::Delete;

    /// A clock for the dispatcher's leases and expiries that starts at the real time and is
    /// moved past a dead invocation's lease by hand.
    pub fn later(clock: &lifecycle_embedded::ManualClock) {
        clock.advance(Duration::from_secs(20 * 60));
    }
}

const CRASH_CONFIG: &str = r#"
tasks:
  join:
    ssm_command: {commands: ["echo join {node.InstanceIp}"], comment: join}
  publish:
    route53: {zone_id: "ZONE", upsert: [{name: "{node.Ident}.swarm.example.internal", value: "{node.InstanceIp}"}]}
  withdraw:
    route53: {zone_id: "ZONE", delete: [{name: "{node.Ident}.swarm.example.internal", value: "{node.InstanceIp}"}]}
transitions:
  - {source: finished_cloud_init, dest: joining, stop_after_state_change: true, triggers: [{name: launch, conditions: [is_launching], before: [join]}]}
  - {source: joining, dest: ready, triggers: [{name: joined, conditions: [is_command], after: [publish, complete_lifecycle_action]}]}
  - {source: ready, dest: removed, triggers: [{name: leave, conditions: [is_terminating], after: [withdraw, complete_lifecycle_action, remove_from_db]}]}
  - {source: failure, dest: abandoned, triggers: [{name: give_up, ignore_errors: true, before: [complete_lifecycle_action]}]}
"#;

/// One step of the lifecycle, run with a crash after the `at`th AWS call: `Some(report)` when
/// it ended first, `None` when it died.
async fn run_crashing(
    w: &World,
    zone: &str,
    clock: &Arc<lifecycle_embedded::ManualClock>,
    event: Event,
    at: usize,
) -> (Option<Report>, Vec<&'static str>) {
    let mut inner = lifecycle_aws::services(&w.config, TABLE, &Timeouts::default());
    inner.clock = clock.clone();
    let crashing = Arc::new(crash::Crashing {
        inner: inner.clone(),
        at,
        calls: Default::default(),
        dead: Default::default(),
        log: Default::default(),
    });
    let services = lifecycle_runtime::Services::new(
        crashing.clone(),
        crashing.clone(),
        crashing.clone(),
        crashing.clone(),
        crashing.clone(),
        crashing.clone(),
        crashing.clone(),
        crashing.clone(),
        None,
        clock.clone(),
    );
    let def = Definition::from_yaml(&CRASH_CONFIG.replace("ZONE", zone)).unwrap();
    let d = Dispatcher::new(
        Arc::new(def),
        &Registry::new(),
        services,
        Options::default(),
    )
    .unwrap();
    let handled = d.handle(event, Deadline::NONE);
    tokio::pin!(handled);
    let watch = crashing.clone();
    let died = async move {
        while !watch.dead.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    };
    let report = tokio::select! {
        biased;
        r = &mut handled => Some(r),
        () = died => None,
    };
    let log = crashing.log.lock().unwrap().clone();
    (report, log)
}

#[tokio::test]
async fn a_crash_after_any_aws_call_then_the_redelivery_ends_as_without_the_crash() {
    let mut crash_points = 0;
    for step in 0..3 {
        for at in 1.. {
            let w = world().await;
            let zone = aws_sdk_route53::Client::new(&w.config)
                .create_hosted_zone()
                .name("swarm.example.internal")
                .caller_reference(format!("crash-{step}-{at}"))
                .send()
                .await
                .unwrap()
                .hosted_zone()
                .unwrap()
                .id()
                .to_owned();
            let clock = Arc::new(lifecycle_embedded::ManualClock::at(
                std::time::SystemTime::now(),
            ));
            let mut died_at = None;
            // Every step in order; `step` dies after `at` calls, then is delivered again.
            for s in 0..3 {
                let event = match s {
                    0 => w.launch("launch"),
                    1 => {
                        let sent = support::sent_commands(&w.config).await;
                        w.status("status", &sent[0])
                    }
                    _ => {
                        w.moto.register_lifecycle_action(
                            GROUP,
                            "workers-on-terminate",
                            &w.instance,
                            TERMINATE_TOKEN,
                            support::TERMINATING,
                        );
                        w.terminate("terminate")
                    }
                };
                let crash_at = if s == step { at } else { usize::MAX };
                let (report, log) = run_crashing(&w, &zone, &clock, event.clone(), crash_at).await;
                match report {
                    Some(r) => assert_eq!(r.error, None, "step {s}: {r:#?}"),
                    None => {
                        died_at = Some(log.last().copied().unwrap_or("?"));
                        // The dead invocation's lease and record end at its deadline.
                        crash::later(&clock);
                        let (again, _) = run_crashing(&w, &zone, &clock, event, usize::MAX).await;
                        let again = again.expect("no crash injected");
                        assert_eq!(
                            again.error, None,
                            "step {s}, redelivered after a crash after call {at} ({died_at:?}): {again:#?}"
                        );
                    }
                }
            }
            let Some(op) = died_at else {
                // The step made fewer than `at` calls: every crash point of it was tried.
                break;
            };
            crash_points += 1;
            let ctx = format!("crash in step {step} after call {at} ({op})");
            // The same end as without a crash: the node removed (a tombstone), the join sent
            // once, each hook completed once, the DNS record published and withdrawn.
            assert_eq!(w.status_of().await, None, "{ctx}");
            assert_eq!(support::sent_commands(&w.config).await.len(), 1, "{ctx}");
            let completions = w.moto.completions();
            assert_eq!(completions.len(), 2, "{ctx}: {completions:#?}");
            let records = aws_sdk_route53::Client::new(&w.config)
                .list_resource_record_sets()
                .hosted_zone_id(&zone)
                .send()
                .await
                .unwrap();
            assert!(
                !records
                    .resource_record_sets()
                    .iter()
                    .any(|r| r.r#type().as_str() == "A"),
                "{ctx}: {records:?}"
            );
        }
    }
    eprintln!("crash points tried: {crash_points}");
    assert!(crash_points >= 25, "{crash_points} crash points");
}
