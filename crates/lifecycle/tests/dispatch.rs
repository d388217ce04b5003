//! Dispatcher behaviour around command records that the table-driven suite does not cover:
//! a record taken by an event that then fails before any state change is put back, so the
//! redelivered status event can resume.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{command, command_record, launch, node, registry_for};
use lifecycle::clock::{Deadline, ManualClock};
use lifecycle::config::Definition;
use lifecycle::dispatch::{Dispatcher, Options};
use lifecycle::engine::StopReason;
use lifecycle::services::{Recorder, Services};
use lifecycle::store::LocalStore;

const CONFIG: &str = r#"
transitions:
  - {source: finished_cloud_init, dest: joined, triggers: [{name: join, conditions: [is_command]}]}
"#;

fn dispatcher(store: &LocalStore, wait: Duration) -> Dispatcher {
    let def = Definition::from_yaml(CONFIG, &registry_for(CONFIG, &[])).unwrap();
    Dispatcher::new(
        Arc::new(def),
        Services::embedded(
            store.clone(),
            Recorder::default(),
            Arc::new(ManualClock::default()),
        ),
        Options {
            wait_timeout: wait,
            poll_interval: Duration::from_secs(5),
            ..Options::default()
        },
    )
}

#[tokio::test]
async fn a_record_taken_before_a_wait_timeout_is_put_back_and_the_retry_resumes() {
    let store = LocalStore::memory();
    store.insert_item(node("i-1", "pending")).unwrap();
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
        "record was not put back: {ids:?}"
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
    let store = LocalStore::memory();
    store
        .insert_item(node("i-1", "finished_cloud_init"))
        .unwrap();
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

fn ours(mut event: lifecycle::event::Event) -> lifecycle::event::Event {
    if let Some(c) = &mut event.command {
        c.commands = vec![
            lifecycle::services::COMMAND_MARKER.to_owned(),
            "/bin/true".to_owned(),
        ];
    }
    event
}

fn dispatcher_with_clock(store: &LocalStore, clock: Arc<common::CloudInitClock>) -> Dispatcher {
    let def = Definition::from_yaml(CONFIG, &registry_for(CONFIG, &[])).unwrap();
    Dispatcher::new(
        Arc::new(def),
        Services::embedded(store.clone(), Recorder::default(), clock),
        Options::default(),
    )
}

#[tokio::test]
async fn a_status_event_that_outruns_its_record_waits_for_it() {
    // SSM reports before the sender stored the record: the record appears after the
    // dispatcher's second poll.
    let store = LocalStore::memory();
    store
        .insert_item(node("i-1", "finished_cloud_init"))
        .unwrap();
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
    let store = LocalStore::memory();
    store
        .insert_item(node("i-1", "finished_cloud_init"))
        .unwrap();
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
    let store = LocalStore::memory();
    store
        .insert_item(node("i-1", "finished_cloud_init"))
        .unwrap();
    let recorder = Recorder::default();
    let d = Dispatcher::new(
        Arc::new(Definition::from_yaml(CFG, &lifecycle::tasks::Registry::builtin()).unwrap()),
        Services::embedded(
            store.clone(),
            recorder.clone(),
            Arc::new(ManualClock::default()),
        ),
        Options::default(),
    );
    let r = d.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:?}");
    let calls = recorder.calls();
    assert_eq!(calls[0].operation, "GetParameter");
    assert_eq!(calls[0].input["Name"], "/swarm/worker-token");
    let item = &store.items().unwrap()[0];
    assert_eq!(
        item["JoinToken"],
        lifecycle::services::simulated_parameter("/swarm/worker-token")
    );
}
