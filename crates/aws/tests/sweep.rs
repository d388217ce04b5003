//! The reconciliation sweep against moto's server with the AWS backends: the real
//! `DescribeAutoScalingGroups`, `DescribeLifecycleHooks` and `DescribeAutoScalingInstances`,
//! and the harness's `RecordLifecycleActionHeartbeat` and `CompleteLifecycleAction` by
//! instance id (docs/AWS.md, testing against the emulator).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use lifecycle::delivery::epoch_ms;
use lifecycle::{Deadline, Definition};
use lifecycle_aws::DynamoStore;
use lifecycle_runtime::capability::{CommandStore, NodeStore};
use lifecycle_runtime::sweep::{Outcome, sweep};
use lifecycle_runtime::{Dispatcher, Options, Registry};
use serde_json::{Value, json};
use support::{Moto, group};

const GROUP: &str = "workers";
const TABLE: &str = "sweep-state";

const CONFIG: &str = r#"
transitions:
  - {source: finished_cloud_init, dest: joined, triggers: [{name: join, conditions: [is_launching], after: [complete_lifecycle_action]}]}
  - {source: joining, dest: ready, triggers: [{name: joined, conditions: [is_command], after: [complete_lifecycle_action]}]}
  - {source: [ready, joined], dest: removed, triggers: [{name: leave, conditions: [is_terminating], before: [complete_lifecycle_action], after: [remove_from_db]}]}
reconcile:
  groups: [workers]
  stale_after_seconds: 600
  complete_after_seconds: 2700
  gone: remove
"#;

async fn put(config: &aws_config::SdkConfig, item: Value) {
    let mut req = aws_sdk_dynamodb::Client::new(config)
        .put_item()
        .table_name(TABLE);
    for (k, v) in item.as_object().unwrap() {
        req = req.item(k, lifecycle_aws::to_attribute(v));
    }
    req.send().await.unwrap();
}

/// A node item last changed `age` seconds ago.
fn node(id: &str, status: &str, age: u64) -> Value {
    let at = SystemTime::now() - Duration::from_secs(age);
    json!({"Ident": id, "ItemStatus": status, "ItemType": "worker", "ChangedAt": epoch_ms(at)})
}

#[tokio::test]
async fn a_sweep_on_aws_resumes_heartbeats_completes_and_removes() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let store = DynamoStore::new(&config, TABLE);
    store.init().await.unwrap();
    let ids = group(
        &config,
        GROUP,
        4,
        &[
            ("workers-on-launch", support::LAUNCHING),
            ("workers-on-terminate", support::TERMINATING),
        ],
    )
    .await;
    let token = |n: u8| format!("00000000-0000-4000-8000-00000000000{n}");
    // ids[0]: its launch event was lost; ids[1]: a join command in flight; ids[2]: stuck
    // far too long; ids[3]: in service. "i-0123456789abcdef0" is in no group.
    for (i, id) in ids.iter().take(3).enumerate() {
        moto.register_lifecycle_action(
            GROUP,
            "workers-on-launch",
            id,
            &token(u8::try_from(i).unwrap()),
            support::LAUNCHING,
        );
    }
    put(&config, node(&ids[0], "finished_cloud_init", 700)).await;
    put(&config, node(&ids[1], "joining", 900)).await;
    put(
        &config,
        json!({"Ident": "cmd-join-1", "ItemType": "command", "RunningOn": ids[1], "EventName": "EC2 Instance-launch Lifecycle Action",
               "LifecycleData": {"EC2InstanceId": ids[1], "AutoScalingGroupName": GROUP, "LifecycleHookName": "workers-on-launch",
                                 "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "LifecycleActionToken": token(1)}}),
    )
    .await;
    put(&config, node(&ids[2], "joining", 4000)).await;
    put(&config, node(&ids[3], "ready", 90_000)).await;
    put(&config, node("i-0123456789abcdef0", "ready", 5000)).await;

    let services = lifecycle_aws::services(&config, TABLE, &lifecycle_aws::Timeouts::default());
    let def = Arc::new(Definition::from_yaml(CONFIG).unwrap());
    let dispatcher = Dispatcher::new(def, &Registry::new(), services, Options::default()).unwrap();
    let items = store.items().await.unwrap();
    let r = sweep(&dispatcher, &items, Deadline::NONE, false)
        .await
        .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let got: Vec<(&str, &str)> = r
        .findings
        .iter()
        .map(|e| (e.finding.node.as_str(), e.finding.action.name()))
        .collect();
    let mut expected = vec![
        (ids[0].as_str(), "resume"),
        (ids[1].as_str(), "heartbeat"),
        (ids[2].as_str(), "complete"),
        ("i-0123456789abcdef0", "remove"),
    ];
    expected.sort();
    assert_eq!(got, expected, "{r:#?}");
    for e in &r.findings {
        match &e.outcome {
            Outcome::Done { .. } => {}
            Outcome::Resumed {
                error: None,
                final_state,
                ..
            } => assert_eq!(final_state, "joined"),
            other => panic!("{}: {other:?}\n{r:#?}", e.finding.node),
        }
    }

    // What AWS saw: the resumed launch completed by its own trigger (CONTINUE), the stuck
    // one completed on purpose with the hook's default result, a heartbeat for the join.
    let actions: Value = serde_json::from_str(&moto.test_lifecycle_actions()).unwrap();
    let completed: Vec<(String, String)> = actions["completions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["instance"].as_str().unwrap().to_owned(),
                c["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        completed.contains(&(ids[0].clone(), "CONTINUE".into())),
        "{completed:?}"
    );
    assert!(
        completed.contains(&(ids[2].clone(), "ABANDON".into())),
        "{completed:?}"
    );
    assert_eq!(completed.len(), 2);
    let beats = actions["heartbeats"].as_array().unwrap();
    assert_eq!(beats.len(), 1, "{actions}");
    assert_eq!(beats[0]["instance"], ids[1].as_str());
    // The record knows when the action is due now: the hook's timeout from the heartbeat.
    let record = store
        .get_command("cmd-join-1", SystemTime::now())
        .await
        .unwrap()
        .unwrap();
    let due = record.lifecycle.unwrap().due_at.unwrap();
    let now = lifecycle::delivery::epoch_secs(SystemTime::now());
    assert!(
        (now + 3500..=now + 3600).contains(&due),
        "due {due}, now {now}"
    );
    // The gone node is a tombstone; the others are where they were, or moved on.
    assert!(
        store
            .get("i-0123456789abcdef0")
            .await
            .unwrap()
            .unwrap()
            .is_removed()
    );
    assert_eq!(store.get(&ids[0]).await.unwrap().unwrap().status, "joined");
    // Every lease the sweep took is released.
    for id in &ids {
        let item = aws_sdk_dynamodb::Client::new(&config)
            .get_item()
            .table_name(TABLE)
            .key("Ident", AttributeValue::S(id.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        assert!(
            item.item().unwrap().get("LeaseOwner").is_none(),
            "{id} still held: {item:?}"
        );
    }

    // The next sweep: the heartbeat holds for an hour, the rest is done.
    let items = store.items().await.unwrap();
    let r = sweep(&dispatcher, &items, Deadline::NONE, false)
        .await
        .unwrap();
    let acting: Vec<_> = r
        .findings
        .iter()
        .filter(|e| e.finding.action.acts())
        .map(|e| (&e.finding.node, e.finding.action.name()))
        .collect();
    assert!(acting.is_empty(), "{acting:?}\n{r:#?}");
    assert_eq!(r.states["ready"].nodes, 1, "{r:#?}");
    assert_eq!(r.states["joined"].nodes, 1, "{r:#?}");
}
