//! The AWS calls one event costs, counted at the HTTP layer by a proxy in front of moto's
//! server (every attempt the SDK makes passes through it): the fewest calls that keep SPEC 9.
//! A lifecycle event claims its node and records the event in one conditional write — which
//! returns the node, so there is no read (refused while cloud-init runs, it serves as the
//! read) — runs its side effects, and settles in one final conditional write; the states in
//! between, where no side effect whose repetition matters ran, are not written on their own.
//!
//! The six-step launch is the scenario the Python original is measured on (61 calls there).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use lifecycle::engine::StopReason;
use lifecycle::event::{Parsed, parse_value};
use lifecycle::{Deadline, Definition, Event, Node};
use lifecycle_aws::{DynamoStore, Timeouts};
use lifecycle_runtime::{Dispatcher, Options, Registry};
use serde_json::Value;
use support::Moto;
use support::proxy::Proxy;

const TABLE: &str = "calls";
const GROUP: &str = "bench-workers";
const LAUNCH_TOKEN: &str = "aaaaaaaa-2222-4333-8444-555555555555";
const TERMINATE_TOKEN: &str = "bbbbbbbb-7777-4888-9999-000000000000";

/// The original's benchmark chain: six transitions with no tasks but the last one's
/// completion; termination in three, the last completing and removing the node.
const CONFIG: &str = r"
transitions:
  - {source: finished_cloud_init, dest: join_cluster, triggers: [{name: join, conditions: [is_launching]}]}
  - {source: join_cluster, dest: joined_cluster, triggers: [{name: joined}]}
  - {source: joined_cluster, dest: updating_dns, triggers: [{name: update_dns}]}
  - {source: updating_dns, dest: dns_updated, triggers: [{name: dns_done}]}
  - {source: dns_updated, dest: completing_lifecycle, triggers: [{name: complete}]}
  - {source: completing_lifecycle, dest: ready, triggers: [{name: ready, after: [complete_lifecycle_action]}]}
  - {source: ready, dest: offline, triggers: [{name: offline, conditions: [is_terminating]}]}
  - {source: offline, dest: removed_from_cluster, triggers: [{name: leave}]}
  - {source: removed_from_cluster, dest: terminating_complete, triggers: [{name: done, after: [complete_lifecycle_action, remove_from_db]}]}
";

fn event(value: &Value) -> Event {
    match parse_value(value).pop() {
        Some(Ok(Parsed::Event(e))) => *e,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_six_step_launch_costs_four_calls_and_a_termination_three() {
    let moto = Moto::shared();
    let direct = moto.sdk().await;
    DynamoStore::new(&direct, TABLE).init().await.unwrap();
    let instance = support::group(
        &direct,
        GROUP,
        1,
        &[
            ("bench-workers-on-launch", support::LAUNCHING),
            ("bench-workers-on-terminate", support::TERMINATING),
        ],
    )
    .await
    .remove(0);
    let mut node = Node::absent(&instance);
    node.status = "finished_cloud_init".into();
    node.properties
        .insert("ItemType".into(), Value::from("worker"));
    lifecycle_runtime::capability::NodeStore::put(&DynamoStore::new(&direct, TABLE), &node)
        .await
        .unwrap();
    moto.register_lifecycle_action(
        GROUP,
        "bench-workers-on-launch",
        &instance,
        LAUNCH_TOKEN,
        support::LAUNCHING,
    );

    // Everything the dispatcher sends goes through the counting proxy.
    let proxy = Proxy::start(&moto.endpoint());
    let config = support::sdk_config(&proxy.endpoint()).await;
    let services = lifecycle_aws::services(&config, TABLE, &Timeouts::default());
    let def = Arc::new(Definition::from_yaml(CONFIG).unwrap());
    let d = Dispatcher::new(def, &Registry::new(), services, Options::default()).unwrap();
    let calls = |before: &BTreeMap<String, usize>| -> BTreeMap<String, usize> {
        proxy
            .seen()
            .into_iter()
            .map(|(op, n)| (op.clone(), n - before.get(&op).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    let expect = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };

    let launch = event(&support::lifecycle_event(
        "launch",
        GROUP,
        GROUP,
        &instance,
        true,
        LAUNCH_TOKEN,
    ));
    let before = proxy.seen();
    let r = d.handle(launch.clone(), Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:#?}");
    assert_eq!(r.final_state, "ready");
    assert_eq!(r.passed_states.len(), 6);
    let launch_calls = calls(&before);
    eprintln!("six-step launch: {launch_calls:?}");
    assert_eq!(
        launch_calls,
        expect(&[
            // The claim, recording the event on the node and returning it; the final write
            // of `ready`, ending the event's entry and releasing the node.
            ("UpdateItem", 2),
            ("CompleteLifecycleAction", 1),
            // SPEC 5: the launch's scaling activity, waited for after the completion.
            ("DescribeScalingActivities", 1),
        ])
    );
    assert_eq!(moto.completions().len(), 1);

    // A redelivery: the refused claim, nothing else.
    let before = proxy.seen();
    let again = d.handle(launch, Deadline::NONE).await;
    assert_eq!(again.stopped_by, StopReason::Duplicate, "{again:#?}");
    assert_eq!(calls(&before), expect(&[("UpdateItem", 1)]));

    moto.register_lifecycle_action(
        GROUP,
        "bench-workers-on-terminate",
        &instance,
        TERMINATE_TOKEN,
        support::TERMINATING,
    );
    let before = proxy.seen();
    let r = d
        .handle(
            event(&support::lifecycle_event(
                "terminate",
                GROUP,
                GROUP,
                &instance,
                false,
                TERMINATE_TOKEN,
            )),
            Deadline::NONE,
        )
        .await;
    assert_eq!(r.error, None, "{r:#?}");
    assert_eq!(r.final_state, "terminating_complete");
    let terminate_calls = calls(&before);
    eprintln!("three-step termination: {terminate_calls:?}");
    assert_eq!(
        terminate_calls,
        expect(&[
            ("UpdateItem", 1),
            ("CompleteLifecycleAction", 1),
            // The tombstone replaces the node, its final write included.
            ("PutItem", 1),
        ])
    );
    assert_eq!(moto.completions().len(), 2);
}
