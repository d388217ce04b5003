//! The fault matrix (SPEC 9, "transient is not failure"): every AWS operation the backends
//! call in a launch / command status / termination flow × {throttle, 5xx, timeout, connection
//! refused, access denied, expired credentials}. Each cell runs the real flow through the real
//! [`Dispatcher`] and `lifecycle_aws::services` against moto, behind a proxy that faults that
//! one operation ([`support::proxy`]), and asserts in every cell:
//!
//! - the node's state is never lost nor corrupted: its item is readable after every
//!   invocation, its status one of the flow's states (or the tombstone after the removal);
//! - a transient fault never ABANDONs the lifecycle action of a healthy node;
//! - the command is sent at most once;
//! - a transient fault ends either in the SDK's retry, in a tolerated best-effort call, or in a
//!   retryable end with the state persisted — and once the fault is lifted, the redelivered
//!   event finishes the flow;
//! - a permanent one ends with an error that names the operation.
//!
//! Transient faults run twice: on the first request of the operation only (the SDK's standard
//! retry mode, 3 attempts, gets through), then on every request until the flow ends retryable
//! (the fault is then lifted and the event delivered again). Access denied runs once, held.
//!
//! The outcome of each cell goes into a Markdown table that must equal the one in
//! `docs/RELIABILITY.md` between `<!-- fault-matrix:begin -->` and `<!-- fault-matrix:end -->`;
//! `UPDATE_FAULT_MATRIX=1 cargo test -p lifecycle-aws --test fault_matrix` rewrites it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use lifecycle::delivery::{DELIVERY_PREFIX, delivery_key, send_key};
use lifecycle::event::{Parsed, parse_value};
use lifecycle::{Deadline, Definition, Event, FaultKind};
use lifecycle_aws::{AutoScalingActions, DynamoStore, SsmRunner, Timeouts};
use lifecycle_embedded::ManualClock;
use lifecycle_runtime::capability::CommandStore;
use lifecycle_runtime::{Clock, Dispatcher, Options, Registry, Report};
use support::proxy::{Fault, Mode, Proxy};
use support::{Moto, MotoGuard};

const TABLE: &str = "lifecycle";
/// Cells run this many at a time, each on resources of its own (table, group, zone, topic,
/// parameter), so the waits of the timeout cells overlap.
const PARALLEL: usize = 15;

/// The operations of the flow, in the table's order.
const OPERATIONS: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "CompleteLifecycleAction",
    "RecordLifecycleActionHeartbeat",
    "DescribeLifecycleHooks",
    "DescribeScalingActivities",
    "DescribeInstanceInformation",
    "SendCommand",
    "ListCommands",
    "GetParameter",
    "ChangeResourceRecordSets",
    "ListResourceRecordSets",
    "Publish",
];

/// The flow: a launch that reads a parameter, counts the workers (a node query), sends a
/// heartbeat and the join command; the command's status publishes a DNS record, reports to
/// SNS and completes the launch (then waits for the scaling activity); a termination withdraws
/// the record, completes and removes the node. `failure` ABANDONs the action.
const CONFIG: &str = r#"
tasks:
  token:
    read_parameter: {name: "PARAMETER", property: JoinToken}
  join:
    ssm_command: {commands: ["echo join {node.InstanceIp}"], comment: join, wait_online_seconds: 5}
  publish:
    route53: {zone_id: "ZONE", upsert: [{name: "{node.Ident}.swarm.example.internal", value: "{node.InstanceIp}"}]}
  withdraw:
    route53: {zone_id: "ZONE", delete: [{name: "{node.Ident}.swarm.example.internal", value: "{node.InstanceIp}"}]}
  report:
    sns_report: {topic_arn: "TOPIC", subject: "{event.name}"}
  workers:
    node_count: {item_type: worker, min: 1}
transitions:
  - {source: finished_cloud_init, dest: joining, stop_after_state_change: true, triggers: [{name: launch, conditions: [is_launching, workers], before: [record_lifecycle_action_heartbeat, token, join]}]}
  - {source: joining, dest: ready, triggers: [{name: joined, conditions: [is_command], after: [publish, report, complete_lifecycle_action]}]}
  - {source: ready, dest: removed, triggers: [{name: leave, conditions: [is_terminating], after: [withdraw, complete_lifecycle_action, remove_from_db]}]}
  - {source: failure, dest: abandoned, triggers: [{name: give_up, ignore_errors: true, before: [complete_lifecycle_action]}]}
"#;

/// Every state the flow knows.
const STATES: &[&str] = &[
    "finished_cloud_init",
    "joining",
    "ready",
    "removed",
    "failure",
    "abandoned",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Launch,
    Status,
    Terminate,
}

impl Step {
    const ALL: [Step; 3] = [Step::Launch, Step::Status, Step::Terminate];

    fn name(self) -> &'static str {
        match self {
            Step::Launch => "launch",
            Step::Status => "status",
            Step::Terminate => "terminate",
        }
    }
}

/// How a cell ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The flow never called the operation.
    NotReached,
    /// The SDK's retry got through; the flow ran as without the fault.
    Retried,
    /// The caller got past the failed call (a best-effort call, logged; or a poll that polls
    /// again): the flow ran to its end in one pass.
    Tolerated,
    /// The invocation ended retryable at `step`, its state persisted; the redelivery after the
    /// fault was lifted finished the flow.
    Retryable(Step),
    /// The invocation ended with a permanent error at `step` naming the operation
    /// (`excerpt`), the node in `state`.
    Permanent {
        step: Step,
        excerpt: String,
        state: String,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::NotReached => write!(f, "not reached"),
            Outcome::Retried => write!(f, "retried"),
            Outcome::Tolerated => write!(f, "tolerated"),
            Outcome::Retryable(step) => write!(f, "retryable at {} → resumed", step.name()),
            Outcome::Permanent {
                step,
                excerpt,
                state,
            } => write!(f, "permanent at {}: `{excerpt}` → {state}", step.name()),
        }
    }
}

/// One cell's world: its own group, instance, table, zone, topic and parameter on the shared
/// moto, and a dispatcher whose SDK goes through `proxy`.
struct Cell {
    direct: aws_config::SdkConfig,
    table: String,
    group: String,
    instance: String,
    zone: String,
    launch_token: String,
    terminate_token: String,
    clock: Arc<ManualClock>,
    dispatcher: Dispatcher,
}

/// The SDK as the function would run it: the standard retry mode with 3 attempts (short
/// backoffs, to keep the matrix fast), and for the timeout cells a short attempt timeout.
async fn proxied_config(endpoint: &str, fault: Fault) -> aws_config::SdkConfig {
    let (attempt, operation) = if fault == Fault::Timeout {
        (Duration::from_secs(1), Duration::from_secs(2))
    } else {
        (Duration::from_secs(10), Duration::from_secs(30))
    };
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(support::REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(50)),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(attempt)
                .operation_timeout(operation)
                .connect_timeout(Duration::from_secs(1))
                .build(),
        )
        .load()
        .await
}

async fn cell(moto: &MotoGuard, k: usize, proxy: &Proxy, fault: Fault) -> Cell {
    let direct = moto.sdk().await;
    let table = format!("{TABLE}-{k}");
    let group = format!("workers-{k}");
    DynamoStore::new(&direct, &table).init().await.unwrap();
    let instance = support::group(
        &direct,
        &group,
        1,
        &[
            (&format!("{group}-on-launch"), support::LAUNCHING),
            (&format!("{group}-on-terminate"), support::TERMINATING),
        ],
    )
    .await
    .remove(0);
    aws_sdk_dynamodb::Client::new(&direct)
        .put_item()
        .table_name(&table)
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
    let launch_token = format!("11111111-2222-4333-8444-{k:012}");
    let terminate_token = format!("66666666-7777-4888-9999-{k:012}");
    moto.register_lifecycle_action(
        &group,
        &format!("{group}-on-launch"),
        &instance,
        &launch_token,
        support::LAUNCHING,
    );
    let zone = aws_sdk_route53::Client::new(&direct)
        .create_hosted_zone()
        .name("swarm.example.internal")
        .caller_reference(format!("cell-{k}"))
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .to_owned();
    let topic = aws_sdk_sns::Client::new(&direct)
        .create_topic()
        .name(format!("reports-{k}"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let parameter = format!("/swarm/{k}/join-token");
    aws_sdk_ssm::Client::new(&direct)
        .put_parameter()
        .name(&parameter)
        .value("SWMTKN-1-test")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();

    let config = proxied_config(&proxy.endpoint(), fault).await;
    let mut services = lifecycle_aws::services(&config, &table, &Timeouts::default());
    // One manual clock for the dispatcher and the backends' polls (the SSM agent, the scaling
    // activity): no wait of the flow takes real time.
    // It starts at the events' time: a lifecycle action is due its hook's heartbeat timeout
    // after its event, and a transient fault near that is handled at once (SPEC 9).
    let events_time =
        lifecycle::time::parse_utc("2026-11-27T10:00:00Z").unwrap_or_else(SystemTime::now);
    let clock = Arc::new(ManualClock::at(events_time));
    services.clock = clock.clone();
    services.lifecycle = Arc::new(AutoScalingActions::new(&config, clock.clone()));
    services.runner = Arc::new(SsmRunner::new(&config, clock.clone()));
    let yaml = CONFIG
        .replace("ZONE", &zone)
        .replace("TOPIC", &topic)
        .replace("PARAMETER", &parameter);
    let def = Definition::from_yaml(&yaml).unwrap();
    let mut options = Options::default();
    // Heartbeats while a task runs would fire on every poll of the manual clock; the flow
    // sends its heartbeat as a task instead.
    options.heartbeat_interval = Duration::ZERO;
    let dispatcher = Dispatcher::new(Arc::new(def), &Registry::new(), services, options).unwrap();
    Cell {
        direct,
        table,
        group,
        instance,
        zone,
        launch_token,
        terminate_token,
        clock,
        dispatcher,
    }
}

fn parse(json: &serde_json::Value) -> Event {
    match parse_value(json).remove(0) {
        Ok(Parsed::Event(e)) => *e,
        other => panic!("not an event: {other:?}"),
    }
}

impl Cell {
    async fn event(&self, step: Step) -> Event {
        match step {
            Step::Launch => parse(&support::lifecycle_event(
                "launch",
                &self.group,
                &self.group,
                &self.instance,
                true,
                &self.launch_token,
            )),
            Step::Status => {
                let sent = self.sent().await;
                assert_eq!(
                    sent.len(),
                    1,
                    "one join command before its status: {sent:?}"
                );
                parse(&support::status_event(
                    "status",
                    &sent[0],
                    &self.instance,
                    "Success",
                    "# sent by autoscaling-lifecycle",
                ))
            }
            Step::Terminate => parse(&support::lifecycle_event(
                "terminate",
                &self.group,
                &self.group,
                &self.instance,
                false,
                &self.terminate_token,
            )),
        }
    }

    /// One delivery, as a Lambda with a minute to run would make it.
    async fn handle(&self, event: Event) -> Report {
        let deadline = Deadline::at(self.clock.now() + Duration::from_secs(60));
        self.dispatcher.handle(event, deadline).await
    }

    /// The node's item as stored: `Ok(status)`, `Err(())` for the tombstone; panics when the
    /// item is gone.
    async fn stored(&self, ctx: &str) -> Result<String, ()> {
        let item = aws_sdk_dynamodb::Client::new(&self.direct)
            .get_item()
            .table_name(&self.table)
            .key("Ident", AttributeValue::S(self.instance.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item()
            .cloned()
            .unwrap_or_else(|| panic!("{ctx}: the node's item is gone: the state was lost"));
        if item.contains_key("Removed") {
            return Err(());
        }
        let status = item
            .get("ItemStatus")
            .and_then(|s| s.as_s().ok())
            .unwrap_or_else(|| panic!("{ctx}: the node has no status: {item:?}"));
        Ok(status.clone())
    }

    /// The commands sent to this cell's instance.
    async fn sent(&self) -> Vec<String> {
        let listed = aws_sdk_ssm::Client::new(&self.direct)
            .list_commands()
            .instance_id(&self.instance)
            .send()
            .await
            .unwrap();
        listed
            .commands()
            .iter()
            .filter_map(|c| c.command_id().map(str::to_owned))
            .collect()
    }

    /// The results of the completions of this cell's lifecycle actions, oldest first.
    fn completions(&self, moto: &MotoGuard) -> Vec<String> {
        moto.completions()
            .iter()
            .filter(|c| c["instance"] == self.instance.as_str())
            .map(|c| c["result"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The invariants that hold after every invocation of every cell.
    async fn check(&self, moto: &MotoGuard, ctx: &str, fault: Fault, report: &Report) {
        match self.stored(ctx).await {
            Ok(status) => assert!(
                STATES.contains(&status.as_str()),
                "{ctx}: the node's status {status:?} is no state of the flow"
            ),
            Err(()) => assert_eq!(
                report.final_state, "removed",
                "{ctx}: a tombstone before the removal: {report:#?}"
            ),
        }
        if fault != Fault::AccessDenied {
            let completions = self.completions(moto);
            assert!(
                completions.iter().all(|r| r != "ABANDON"),
                "{ctx}: a transient fault abandoned a healthy node: {completions:?}, {report:#?}"
            );
        }
        let sent = self.sent().await;
        assert!(
            sent.len() <= 1,
            "{ctx}: the command was sent twice: {sent:?}"
        );
    }

    /// The end of a flow that completed: the join sent once, both actions completed with
    /// CONTINUE, the DNS record withdrawn, the node removed.
    async fn completed(&self, moto: &MotoGuard, ctx: &str) {
        assert_eq!(
            self.stored(ctx).await,
            Err(()),
            "{ctx}: the node is removed"
        );
        assert_eq!(self.sent().await.len(), 1, "{ctx}: the join is sent once");
        assert_eq!(
            self.completions(moto),
            ["CONTINUE", "CONTINUE"],
            "{ctx}: launch and termination completed"
        );
        let records = aws_sdk_route53::Client::new(&self.direct)
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone)
            .send()
            .await
            .unwrap();
        assert!(
            !records
                .resource_record_sets()
                .iter()
                .any(|r| r.r#type().as_str() == "A"),
            "{ctx}: the DNS record is withdrawn: {records:?}"
        );
    }

    /// A send guard of a delivery that died without knowing whether its `SendCommand` went
    /// through: the launch then looks for the command in `ListCommands` before sending.
    async fn plant_lost_send(&self) {
        let launch = self.event(Step::Launch).await;
        let action = delivery_key(&launch).unwrap();
        let key = format!(
            "{}/join/{}/finished_cloud_init",
            action.trim_start_matches(DELIVERY_PREFIX),
            self.instance
        );
        let now = self.clock.now();
        let reserved = DynamoStore::new(&self.direct, &self.table)
            .reserve_send(
                &send_key(&key),
                "a-dead-invocation",
                now + Duration::from_secs(3600),
                now,
            )
            .await
            .unwrap();
        assert_eq!(reserved, lifecycle::delivery::Reservation::Fresh);
    }

    /// Deletes the published DNS record behind the flow's back, as a termination that died
    /// after its DELETE leaves it: the next DELETE is refused and the record looked up.
    async fn drop_record(&self) {
        use aws_sdk_route53::types::{
            Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
        };
        let set = ResourceRecordSet::builder()
            .name(format!("{}.swarm.example.internal", self.instance))
            .r#type(RrType::A)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value("10.0.0.7").build().unwrap())
            .build()
            .unwrap();
        let change = Change::builder()
            .action(ChangeAction::Delete)
            .resource_record_set(set)
            .build()
            .unwrap();
        aws_sdk_route53::Client::new(&self.direct)
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone)
            .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
            .send()
            .await
            .unwrap();
    }
}

/// Runs the flow of one cell with `fault` on `op`, asserting the invariants, and says how it
/// ended.
async fn run(
    moto: Arc<MotoGuard>,
    k: usize,
    proxy: Proxy,
    (op, fault, mode): (&'static str, Fault, Mode),
) -> Outcome {
    let moto = moto.as_ref();
    let c = cell(moto, k, &proxy, fault).await;
    if op == "ListCommands" {
        c.plant_lost_send().await;
    }
    proxy.inject(op, fault, mode);
    let mut ended = None;
    for step in Step::ALL {
        let ctx = format!("{op} × {} ({mode:?}), {}", fault.label(), step.name());
        if step == Step::Terminate {
            moto.register_lifecycle_action(
                &c.group,
                &format!("{}-on-terminate", c.group),
                &c.instance,
                &c.terminate_token,
                support::TERMINATING,
            );
            if op == "ListResourceRecordSets" {
                c.drop_record().await;
            }
        }
        let before = c.stored(&ctx).await;
        let event = c.event(step).await;
        let report = c.handle(event.clone()).await;
        c.check(moto, &ctx, fault, &report).await;
        // An error that entered failure handling (handled: the invocation itself ends well),
        // or one that ended the invocation.
        let handled = report.errors.iter().find(|e| !e.ignored);
        let error = match (&report.error, handled) {
            (Some(error), _) if report.retryable => error.clone(),
            (_, Some(handled)) => handled.message.clone(),
            (Some(error), None) => error.clone(),
            (None, None) => continue,
        };
        if report.retryable {
            // The state reached is persisted (or, when the fault came before the node was
            // read, the state is what it was).
            let stored = c.stored(&ctx).await;
            let expected = if report.final_state.is_empty() {
                before
            } else {
                Ok(report.final_state.clone())
            };
            assert_eq!(
                stored.unwrap_or_else(|()| "removed".into()),
                expected.unwrap_or_else(|()| "removed".into()),
                "{ctx}: the state persisted is the one reported: {report:#?}"
            );
            assert_ne!(fault, Fault::AccessDenied, "{ctx}: {report:#?}");
            ended.get_or_insert(Outcome::Retryable(step));
            proxy.lift();
            // The redelivery comes after the invocation's deadline, as Lambda's retry does.
            c.clock.advance(Duration::from_secs(120));
            let again = c.handle(event).await;
            let ctx = format!("{ctx}, redelivered");
            c.check(moto, &ctx, fault, &again).await;
            assert_eq!(again.error, None, "{ctx}: {again:#?}");
            assert!(again.errors.is_empty(), "{ctx}: {again:#?}");
        } else {
            // Only access denied may be permanent: it ended the invocation, or entered
            // failure handling.
            assert_eq!(fault, Fault::AccessDenied, "{ctx}: {report:#?}");
            if report.error.is_some() {
                assert_eq!(
                    report.error_kind,
                    Some(FaultKind::Permanent),
                    "{ctx}: {report:#?}"
                );
            }
            let at = error
                .find(&format!("{op}: "))
                .unwrap_or_else(|| panic!("{ctx}: the error names {op}: {error}"));
            let excerpt = error[at..]
                .splitn(3, ": ")
                .take(2)
                .collect::<Vec<_>>()
                .join(": ");
            let state = c.stored(&ctx).await.unwrap_or_else(|()| "removed".into());
            ended = Some(Outcome::Permanent {
                step,
                excerpt,
                state,
            });
            break;
        }
    }
    let injected = proxy.injected();
    let retried = proxy.retried();
    proxy.lift();
    let ctx = format!("{op} × {} ({mode:?})", fault.label());
    match ended {
        Some(permanent @ Outcome::Permanent { .. }) => permanent,
        ended => {
            c.completed(moto, &ctx).await;
            match ended {
                Some(retryable) => retryable,
                None if injected == 0 => Outcome::NotReached,
                None if retried > 0 => Outcome::Retried,
                None => Outcome::Tolerated,
            }
        }
    }
}

/// The runs: every operation × every fault, transient ones once and held.
fn runs() -> Vec<(&'static str, Fault, Mode)> {
    let mut runs = Vec::new();
    for fault in Fault::ALL {
        let modes: &[Mode] = if fault == Fault::AccessDenied {
            &[Mode::Always]
        } else {
            &[Mode::Once, Mode::Always]
        };
        for &mode in modes {
            for op in OPERATIONS {
                runs.push((*op, fault, mode));
            }
        }
    }
    runs
}

fn table(outcomes: &BTreeMap<(&str, Fault, bool), Outcome>) -> String {
    let mut out = String::from("| operation |");
    for fault in Fault::ALL {
        out.push_str(&format!(" {} |", fault.label()));
    }
    out.push_str("\n|---|");
    for _ in Fault::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for op in OPERATIONS {
        out.push_str(&format!("| `{op}` |"));
        for fault in Fault::ALL {
            let held = &outcomes[&(*op, fault, true)];
            let cell = match outcomes.get(&(*op, fault, false)) {
                Some(once) => format!("{once} / {held}"),
                None => held.to_string(),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

const BEGIN: &str = "<!-- fault-matrix:begin -->\n";
const END: &str = "<!-- fault-matrix:end -->";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_under_every_fault() {
    let started = Instant::now();
    let runs = runs();
    let mut outcomes = BTreeMap::new();
    let mut failures = Vec::new();
    let mut proxies: Vec<Proxy> = Vec::new();
    for batch in runs.chunks(PARALLEL) {
        let batch_started = Instant::now();
        let moto = Arc::new(Moto::shared());
        while proxies.len() < batch.len() {
            proxies.push(Proxy::start(&moto.endpoint()));
        }
        let tasks: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(k, &cell)| {
                let (moto, proxy) = (moto.clone(), proxies[k].clone());
                let run = async move {
                    let started = Instant::now();
                    let outcome = run(moto, k, proxy, cell).await;
                    (outcome, started.elapsed())
                };
                (cell, tokio::spawn(run))
            })
            .collect();
        for ((op, fault, mode), task) in tasks {
            match task.await {
                Ok((outcome, took)) => {
                    eprintln!("{op} × {} ({mode:?}): {outcome} in {took:?}", fault.label());
                    outcomes.insert((op, fault, mode == Mode::Always), outcome);
                }
                Err(e) => failures.push(format!("{op} × {} ({mode:?}): {e}", fault.label())),
            }
        }
        eprintln!(
            "{} × {} ({:?}): {:?}",
            batch.len(),
            batch[0].1.label(),
            batch[0].2,
            batch_started.elapsed()
        );
    }
    eprintln!(
        "{} runs in {:?}; moto's slowest answer: {:?}",
        runs.len(),
        started.elapsed(),
        proxies.iter().map(Proxy::slowest).max().unwrap_or_default()
    );
    assert!(
        failures.is_empty(),
        "cells failed (their panics are above):\n{}",
        failures.join("\n")
    );
    let table = table(&outcomes);
    eprintln!("{table}");

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/RELIABILITY.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/RELIABILITY.md has no {BEGIN:?} … {END:?} section");
    };
    let current = &doc[begin + BEGIN.len()..end];
    if current != table {
        if std::env::var("UPDATE_FAULT_MATRIX").as_deref() == Ok("1") {
            let updated = format!("{}{table}{}", &doc[..begin + BEGIN.len()], &doc[end..]);
            std::fs::write(path, updated).unwrap();
            eprintln!("docs/RELIABILITY.md: the fault matrix is updated");
        } else {
            panic!(
                "docs/RELIABILITY.md's fault matrix is stale; run with UPDATE_FAULT_MATRIX=1 to \
                 rewrite it. Expected:\n{table}"
            );
        }
    }
}

/// A transient fault in an `after` task — here the completion of the launch, after the
/// command's status moved the node to `ready` — ends the record retryable with `ready`
/// persisted; the retry resumes the committed transition and runs its `after` tasks, and so
/// does the retry of a retry that failed the same way. (The retry used to find the node in
/// `ready`, with the delivery record deleted, and complete nothing: the launch waited for
/// the hook's timeout.)
#[tokio::test]
async fn a_transient_fault_after_the_commit_is_resumed_by_the_retry() {
    let moto = Moto::shared();
    let proxy = Proxy::start(&moto.endpoint());
    let c = cell(&moto, 0, &proxy, Fault::Throttle).await;
    let launch = c.handle(c.event(Step::Launch).await).await;
    assert_eq!(launch.error, None, "{launch:#?}");
    assert_eq!(c.stored("launch").await, Ok("joining".into()));

    proxy.inject("CompleteLifecycleAction", Fault::Throttle, Mode::Always);
    let status = c.event(Step::Status).await;
    let report = c.handle(status.clone()).await;
    assert!(report.retryable, "{report:#?}");
    assert_eq!(report.final_state, "ready");
    assert_eq!(c.stored("status").await, Ok("ready".into()));
    assert!(c.completions(&moto).is_empty());

    // Still throttled at the first retry: it resumes the transition, fails the same way, and
    // its own retry resumes it again.
    c.clock.advance(Duration::from_secs(120));
    let retry = c.handle(status.clone()).await;
    assert!(retry.retryable, "{retry:#?}");
    assert_eq!(
        retry.tasks,
        ["publish", "report", "complete_lifecycle_action"]
    );
    assert!(c.completions(&moto).is_empty());

    proxy.lift();
    c.clock.advance(Duration::from_secs(120));
    let again = c.handle(status.clone()).await;
    assert_eq!(again.error, None, "{again:#?}");
    assert_eq!(
        again.tasks[..3],
        ["publish", "report", "complete_lifecycle_action"],
        "the transition's `after` tasks, resumed: {again:#?}"
    );
    assert_eq!(
        c.completions(&moto),
        ["CONTINUE"],
        "the launch is completed"
    );
    // Done now: a further delivery is a duplicate.
    let duplicate = c.handle(status).await;
    assert_eq!(
        duplicate.stopped_by,
        lifecycle::engine::StopReason::Duplicate,
        "{duplicate:#?}"
    );
}
