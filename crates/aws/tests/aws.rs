//! The AWS backends against moto's server over real HTTP, with the real AWS SDK for Rust.
//!
//! moto lacks some operations and is more lenient than AWS in places; `scripts/moto_server.py`
//! adds AWS-shaped versions (CompleteLifecycleAction, RecordLifecycleActionHeartbeat,
//! DescribeInstanceInformation, strict SendCommand and Route 53 DELETE). Tests that rely on
//! one of those say so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{Region, SdkConfig};
use lifecycle::config::declared::RecordAction;
use lifecycle::delivery::{
    Begin, Claim, Claiming, EntryWrite, Lease, NodeWrite, Reservation, Resume,
};
use lifecycle::event::{LifecycleData, LifecycleResult, LifecycleTransition};
use lifecycle::redact::Sensitive;
use lifecycle::{CommandRecord, Fault, FaultKind, Node};
use lifecycle_aws::{
    AutoScalingActions, DynamoStore, ParameterStore, Route53Dns, SnsReporter, SsmRunner, TYPE_INDEX,
};
use lifecycle_embedded::ManualClock;
use lifecycle_runtime::Clock;
use lifecycle_runtime::capability::{
    ActionState, CommandRunner, CommandStore, Deliveries, Dns, LifecycleActions, NodeStore,
    RecordChange, Reporter, Secrets, ShellCommand,
};
use serde_json::{Map, Value, json};
use support::{Moto, group};

const GROUP: &str = "workers";
const HOOK: &str = "workers-on-launch";

async fn table(config: &SdkConfig, name: &str) -> DynamoStore {
    let store = DynamoStore::new(config, name);
    store.init().await.unwrap();
    store
}

fn props(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("props takes an object"),
    }
}

fn node(id: &str, status: &str, extra: Value) -> Node {
    let mut properties = props(json!({"ItemType": "worker", "InstanceIp": "10.0.0.7"}));
    properties.extend(props(extra));
    Node {
        id: id.into(),
        status: status.into(),
        properties,
    }
}

#[tokio::test]
async fn init_is_idempotent_and_creates_the_type_index() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let store = table(&config, "state").await;
    store.init().await.unwrap();
    let d = aws_sdk_dynamodb::Client::new(&config)
        .describe_table()
        .table_name("state")
        .send()
        .await
        .unwrap();
    let t = d.table().unwrap();
    assert_eq!(t.key_schema()[0].attribute_name(), "Ident");
    assert!(
        t.global_secondary_indexes()
            .iter()
            .any(|i| i.index_name() == Some(TYPE_INDEX))
    );
}

#[tokio::test]
async fn nodes_round_trip_with_types_and_reserved_attribute_names() {
    let moto = Moto::shared();
    let store = table(&moto.sdk().await, "state").await;
    let n = node(
        "i-1",
        "ready",
        json!({"Status": "x", "Name": "n", "Token": "t", "Ttl": 60, "Debug": false,
               "Labels": ["a", "b"], "Meta": {"Size": 3, "Zone": null}}),
    );
    store.put(&n).await.unwrap();
    assert_eq!(store.get("i-1").await.unwrap(), Some(n.clone()));
    assert_eq!(store.get("i-missing").await.unwrap(), None);

    // Reserved words as property names in an update expression.
    store
        .set_properties(
            "i-1",
            &props(json!({"Status": "y", "Name": 7, "ItemStatus": "ignored"})),
        )
        .await
        .unwrap();
    let got = store.get("i-1").await.unwrap().unwrap();
    assert_eq!(got.properties["Status"], json!("y"));
    assert_eq!(got.properties["Name"], json!(7));
    assert_eq!(
        got.status, "ready",
        "set_properties never touches ItemStatus"
    );
    let missing = store
        .set_properties("i-none", &props(json!({"A": 1})))
        .await
        .unwrap_err();
    assert_eq!(
        missing,
        Fault::MissingNode {
            id: "i-none".into()
        }
    );
    assert_eq!(missing.kind(), FaultKind::NotFound);
    assert_eq!(
        store.get("i-none").await.unwrap(),
        None,
        "nothing was created"
    );
}

#[tokio::test]
async fn status_writes_are_compare_and_set() {
    let moto = Moto::shared();
    let store = table(&moto.sdk().await, "state").await;
    // A missing item counts as `new`, and the write creates it.
    store
        .set_status("i-1", "new", "finished_cloud_init", None)
        .await
        .unwrap();
    assert_eq!(
        store.get("i-1").await.unwrap().unwrap().status,
        "finished_cloud_init"
    );
    store
        .set_status("i-1", "finished_cloud_init", "joining", None)
        .await
        .unwrap();
    let lost = store
        .set_status("i-1", "finished_cloud_init", "joined", None)
        .await
        .unwrap_err();
    assert_eq!(
        lost,
        Fault::Conflict {
            id: "i-1".into(),
            expected: "finished_cloud_init".into(),
            found: "joining".into()
        }
    );
    let gone = store
        .set_status("i-2", "ready", "draining", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&gone, Fault::Conflict { found, .. } if found == "new"),
        "{gone:?}"
    );
    assert_eq!(
        store.get("i-2").await.unwrap(),
        None,
        "a lost write creates nothing"
    );
}

#[tokio::test]
async fn racing_writers_cannot_both_advance_a_node() {
    let moto = Moto::shared();
    let store = Arc::new(table(&moto.sdk().await, "state").await);
    store.put(&node("i-1", "ready", json!({}))).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.set_status("i-1", "ready", &format!("draining-{i}"), None)
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(Fault::Conflict { found, .. }) => assert!(found.starts_with("draining-")),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1, "exactly one writer advances the node");
}

#[tokio::test]
async fn racing_claims_leave_one_holder_and_only_it_writes() {
    let moto = Moto::shared();
    let store = Arc::new(table(&moto.sdk().await, "state").await);
    store
        .put(&node("i-race", "ready", json!({})))
        .await
        .unwrap();
    let now = SystemTime::now();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let lease = lease(&format!("owner-{i}"), now + Duration::from_secs(60));
            let claim = s
                .claim("i-race", &lease, Claiming::LEASE_ONLY, now)
                .await
                .unwrap();
            (lease, claim)
        }));
    }
    let mut holders = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (lease, Claim::Claimed { node, created, .. }) => {
                assert_eq!((node.status.as_str(), created), ("ready", false));
                holders.push(lease);
            }
            (_, Claim::Held { .. }) => {}
            (_, other) => panic!("{other:?}"),
        }
    }
    assert_eq!(holders.len(), 1, "exactly one claim wins");
    let holder = &holders[0];
    let other = store
        .set_status("i-race", "ready", "draining", Some("owner-x"))
        .await
        .unwrap_err();
    assert!(matches!(other, Fault::Conflict { .. }), "{other:?}");
    store
        .set_status("i-race", "ready", "draining", Some(&holder.owner))
        .await
        .unwrap();
}

fn lease(owner: &str, until: SystemTime) -> Lease {
    Lease {
        owner: owner.into(),
        until,
    }
}

/// The delivery contract of SPEC 9 ([`lifecycle::delivery`]), the same on both stores.
async fn delivery_contract<S: NodeStore + CommandStore + Deliveries>(store: &S, tag: &str) {
    let now = SystemTime::now();
    let soon = now + Duration::from_secs(60);
    let a = lease("a", soon);
    let b = lease("b", soon);
    let key = format!("delivery#event#{tag}");

    // Delivery records: one processing at a time, a duplicate once done; our own write again
    // (a lost response retried) is ours; a crashed one expires at its deadline.
    assert_eq!(store.begin(&key, &a, now).await.unwrap(), Begin::Begun);
    assert_eq!(
        store.begin(&key, &a, now).await.unwrap(),
        Begin::Begun,
        "ours"
    );
    assert!(matches!(
        store.begin(&key, &b, now).await.unwrap(),
        Begin::InProgress { .. }
    ));
    assert_eq!(
        store
            .begin(&key, &b, soon + Duration::from_secs(5))
            .await
            .unwrap(),
        Begin::Begun,
        "expired at the deadline"
    );
    store
        .finish(&key, "a", "not ours any more", soon)
        .await
        .unwrap();
    store
        .finish(
            &key,
            "b",
            "no_state_change in ready",
            now + Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert_eq!(
        store.begin(&key, &a, now).await.unwrap(),
        Begin::Done {
            outcome: "no_state_change in ready".into()
        }
    );
    let retry = format!("delivery#event#{tag}-retry");
    assert_eq!(store.begin(&retry, &a, now).await.unwrap(), Begin::Begun);
    store.forget(&retry, "b", now, true).await.unwrap();
    assert!(matches!(
        store.begin(&retry, &b, now).await.unwrap(),
        Begin::InProgress { .. }
    ));
    store.forget(&retry, "a", now, true).await.unwrap();
    assert_eq!(
        store.begin(&retry, &b, now).await.unwrap(),
        Begin::Begun,
        "forgotten"
    );
    // A processing that committed a transition and then ended retryable (a transient fault
    // in an `after` task): its retry begins at once and resumes the transition, as after a
    // crash, so the `after` tasks run.
    let committed = format!("delivery#event#{tag}-committed");
    assert_eq!(
        store.begin(&committed, &a, now).await.unwrap(),
        Begin::Begun
    );
    let resume = Resume {
        from: "joining".into(),
        trigger: "joined".into(),
        to: "ready".into(),
        after_done: false,
    };
    store.mark(&committed, "a", &resume).await.unwrap();
    store.forget(&committed, "a", now, true).await.unwrap();
    assert_eq!(
        store.begin(&committed, &b, now).await.unwrap(),
        Begin::Resume(resume),
        "the retry of a committed transition resumes it"
    );

    // Leases: a missing node is created bare and deleted on release.
    let id = format!("i-{tag}");
    match store
        .claim(&id, &a, Claiming::LEASE_ONLY, now)
        .await
        .unwrap()
    {
        Claim::Claimed { node, created, .. } => {
            assert_eq!((node.status.as_str(), created), ("new", true))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .claim(&id, &b, Claiming::LEASE_ONLY, now)
            .await
            .unwrap(),
        Claim::Held { .. }
    ));
    store.release(&id, "b").await.unwrap();
    assert!(
        matches!(
            store
                .claim(&id, &b, Claiming::LEASE_ONLY, now)
                .await
                .unwrap(),
            Claim::Held { .. }
        ),
        "another's release changes nothing"
    );
    store.release(&id, "a").await.unwrap();
    assert_eq!(
        store.get(&id).await.unwrap(),
        None,
        "a bare claim leaves nothing"
    );

    // A status write under the lease; the same write again is our lost response, not a
    // conflict; a write without the lease conflicts.
    assert!(matches!(
        store
            .claim(&id, &a, Claiming::LEASE_ONLY, now)
            .await
            .unwrap(),
        Claim::Claimed { .. }
    ));
    store
        .set_status(&id, "new", "pending", Some("a"))
        .await
        .unwrap();
    store
        .set_status(&id, "new", "pending", Some("a"))
        .await
        .expect("our own write, retried, is ours");
    assert!(matches!(
        store.set_status(&id, "pending", "ready", Some("b")).await,
        Err(Fault::Conflict { .. })
    ));
    let node = store.get(&id).await.unwrap().unwrap();
    assert!(
        !node.properties.contains_key("LeaseOwner"),
        "the lease is not a property: {node:?}"
    );
    store.release(&id, "a").await.unwrap();
    assert_eq!(store.get(&id).await.unwrap().unwrap().status, "pending");
    // The lease is gone: anyone may claim.
    assert!(matches!(
        store
            .claim(&id, &b, Claiming::LEASE_ONLY, now)
            .await
            .unwrap(),
        Claim::Claimed { .. }
    ));
    // A tombstone: never claimed again, never written, invisible to queries.
    store
        .remove(&id, now + Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim(&id, &a, Claiming::LEASE_ONLY, now)
            .await
            .unwrap(),
        Claim::Removed
    );
    assert!(store.get(&id).await.unwrap().unwrap().is_removed());
    assert!(store.set_status(&id, "new", "ready", None).await.is_err());
    assert!(
        store
            .set_properties(&id, &props(json!({"InstanceIp": "10.0.0.1"})))
            .await
            .is_err()
    );

    // A lifecycle event's delivery lives on its node: one claim records it, one final write
    // settles it with the state reached, and a redelivery is a duplicate; a processing that
    // died having marked a transition is resumed by the next claim.
    let id = format!("i-{tag}-launch");
    let key = format!("delivery#action#{tag}-token#launching");
    store
        .put(&self::node(
            &id,
            "finished_cloud_init",
            json!({"ItemType": "worker"}),
        ))
        .await
        .unwrap();
    let Claim::Claimed { resume: None, .. } = store
        .claim(&id, &a, Claiming::delivery(&key), now)
        .await
        .unwrap()
    else {
        panic!("a first claim with a delivery entry");
    };
    assert!(
        matches!(
            store
                .claim(&id, &b, Claiming::delivery(&key), now)
                .await
                .unwrap(),
            Claim::Held { .. }
        ),
        "a second delivery while the first runs"
    );
    let entry = store.get(&id).await.unwrap().unwrap();
    assert!(
        entry.properties.keys().all(|k| !k.starts_with("delivery#")),
        "the entry is not a property: {entry:?}"
    );
    let marker = Resume {
        from: "finished_cloud_init".into(),
        trigger: "join".into(),
        to: "joining".into(),
        after_done: false,
    };
    let flush = NodeWrite {
        status: Some(("finished_cloud_init".into(), "joining".into())),
        delivery: Some((key.clone(), EntryWrite::Mark(marker.clone()))),
        ..NodeWrite::default()
    };
    store.write(&id, "a", &flush).await.unwrap();
    store
        .write(&id, "a", &flush)
        .await
        .expect("our own flush, retried, is ours");
    assert!(matches!(
        store.write(&id, "b", &flush).await,
        Err(Fault::Conflict { .. })
    ));
    // "a" dies: after its lease, the redelivery claims the node and resumes the transition.
    let late = now + Duration::from_secs(3600);
    let c = lease("c", late + Duration::from_secs(600));
    match store
        .claim(&id, &c, Claiming::delivery(&key), late)
        .await
        .unwrap()
    {
        Claim::Claimed { node, resume, .. } => {
            assert_eq!(node.status, "joining");
            assert_eq!(resume, Some(marker));
        }
        other => panic!("{other:?}"),
    }
    let last = NodeWrite {
        status: Some(("joining".into(), "ready".into())),
        properties: props(json!({"ChangedAt": 1})),
        delivery: Some((
            key.clone(),
            EntryWrite::Done {
                outcome: "no_trigger in ready".into(),
                expires: late + Duration::from_secs(86_400),
            },
        )),
        release: true,
        ..NodeWrite::default()
    };
    store.write(&id, "c", &last).await.unwrap();
    store
        .write(&id, "c", &last)
        .await
        .expect("our own final write, retried after a lost response, is ours");
    let done = store.get(&id).await.unwrap().unwrap();
    assert_eq!(done.status, "ready");
    assert!(!done.properties.contains_key("LeaseOwner"));
    assert_eq!(
        store
            .claim(&id, &b, Claiming::delivery(&key), late)
            .await
            .unwrap(),
        Claim::Done {
            outcome: "no_trigger in ready".into()
        },
        "a redelivery after the end is a duplicate"
    );
    // A claim for an instance with no node, settled without a state: nothing is left.
    let ghost = format!("i-{tag}-ghost");
    assert!(matches!(
        store
            .claim(&ghost, &a, Claiming::delivery(&key), now)
            .await
            .unwrap(),
        Claim::Claimed { created: true, .. }
    ));
    let bare = NodeWrite {
        release: true,
        ..last.clone()
    };
    let bare = NodeWrite {
        status: None,
        properties: Map::new(),
        ..bare
    };
    store.write(&ghost, "a", &bare).await.unwrap();
    assert_eq!(store.get(&ghost).await.unwrap(), None);

    // A launch claims before it reads: while cloud-init runs (or no node is there yet) the
    // claim is refused and writes nothing — cloud-init's last write may replace the item —
    // and the node found comes back as the read.
    let waiting: Vec<String> = vec!["new".into(), "pending".into()];
    let early = Claiming {
        delivery: Some(&key),
        waiting: Some(&waiting),
    };
    let booting = format!("i-{tag}-booting");
    match store.claim(&booting, &a, early, now).await.unwrap() {
        Claim::Waiting { node } => assert_eq!(node.status, "new"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.get(&booting).await.unwrap(), None, "nothing created");
    store
        .put(&self::node(&booting, "pending", json!({})))
        .await
        .unwrap();
    match store.claim(&booting, &a, early, now).await.unwrap() {
        Claim::Waiting { node } => assert_eq!(node.status, "pending"),
        other => panic!("{other:?}"),
    }
    // Nothing written: another may claim at once (no lease of "a"), and the delivery is
    // still free for "a" itself (no entry).
    assert!(matches!(
        store
            .claim(&booting, &b, Claiming::LEASE_ONLY, now)
            .await
            .unwrap(),
        Claim::Claimed { .. }
    ));
    store.release(&booting, "b").await.unwrap();
    store
        .put(&self::node(&booting, "finished_cloud_init", json!({})))
        .await
        .unwrap();
    assert!(matches!(
        store.claim(&booting, &a, early, now).await.unwrap(),
        Claim::Claimed { created: false, .. }
    ));

    // Send guards: once reserved, another finds it unknown; once sent, everyone finds the id.
    let guard = format!("send#{tag}");
    let later = now + Duration::from_secs(3600);
    assert_eq!(
        store.reserve_send(&guard, "a", later, now).await.unwrap(),
        Reservation::Fresh
    );
    assert_eq!(
        store.reserve_send(&guard, "a", later, now).await.unwrap(),
        Reservation::Fresh,
        "ours"
    );
    assert_eq!(
        store.reserve_send(&guard, "b", later, now).await.unwrap(),
        Reservation::Unknown
    );
    store.take_over_send(&guard, "b", later).await.unwrap();
    store.release_send(&guard, "a").await.unwrap();
    assert_eq!(
        store.reserve_send(&guard, "b", later, now).await.unwrap(),
        Reservation::Fresh,
        "taken over; another's release changes nothing"
    );
    store.mark_sent(&guard, "cmd-9", later).await.unwrap();
    store.release_send(&guard, "b").await.unwrap();
    assert_eq!(
        store.reserve_send(&guard, "a", later, now).await.unwrap(),
        Reservation::Sent {
            command_id: "cmd-9".into()
        }
    );
}

#[tokio::test]
async fn the_delivery_contract_holds_on_dynamodb() {
    let moto = Moto::shared();
    let store = table(&moto.sdk().await, "state").await;
    delivery_contract(&store, "dynamo").await;
    // An operator's replay drops a done record, never one in progress.
    let now = SystemTime::now();
    let a = lease("a", now + Duration::from_secs(60));
    assert_eq!(
        store.begin("delivery#event#r", &a, now).await.unwrap(),
        Begin::Begun
    );
    assert!(
        !store
            .forget_for_replay("delivery#event#r", None, now)
            .await
            .unwrap()
    );
    store
        .finish(
            "delivery#event#r",
            "a",
            "done",
            now + Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert!(
        store
            .forget_for_replay("delivery#event#r", None, now)
            .await
            .unwrap()
    );
    let b = lease("b", now + Duration::from_secs(60));
    assert_eq!(
        store.begin("delivery#event#r", &b, now).await.unwrap(),
        Begin::Begun
    );
    assert!(
        !store
            .forget_for_replay("delivery#event#none", None, now)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_delivery_contract_holds_on_the_local_store() {
    delivery_contract(&lifecycle_embedded::LocalStore::memory(), "local").await;
}

#[tokio::test]
async fn command_records_are_taken_atomically_and_never_confused_with_nodes() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let store = table(&config, "state").await;
    let lifecycle = LifecycleData {
        instance_id: "i-1".into(),
        auto_scaling_group: GROUP.into(),
        hook_name: HOOK.into(),
        token: Some("tok".into()),
        transition: LifecycleTransition::Launching,
        metadata: props(json!({"type": "worker", "ttl": 60})),
        origin: None,
        destination: None,
        due_at: None,
    };
    let record = CommandRecord {
        id: "cmd-1".into(),
        running_on: vec!["i-1".into()],
        comment: "join".into(),
        commands: vec!["docker swarm join --token *** 10.0.0.1:2377".into()],
        event_name: "EC2 Instance-launch Lifecycle Action".into(),
        lifecycle: Some(lifecycle),
    };
    store.put_command(&record).await.unwrap();
    // The raw item keeps typed values and carries a TTL.
    let raw = aws_sdk_dynamodb::Client::new(&config)
        .get_item()
        .table_name("state")
        .key(
            "Ident",
            aws_sdk_dynamodb::types::AttributeValue::S("cmd-1".into()),
        )
        .send()
        .await
        .unwrap();
    let item = raw.item().unwrap();
    assert!(item.contains_key("ExpiresAt"));
    assert_eq!(item["ItemType"].as_s().unwrap(), "command");
    let now = SystemTime::now();
    assert_eq!(
        store.get_command("cmd-1", now).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        store.get_command("cmd-1", now).await.unwrap(),
        Some(record.clone()),
        "reading does not consume"
    );
    store.delete_command("cmd-1").await.unwrap();
    store.delete_command("cmd-1").await.unwrap();
    assert_eq!(
        store.get_command("cmd-1", now).await.unwrap(),
        None,
        "consumed once"
    );

    // A record past its expiry that TTL has not deleted yet (it deletes lazily) is not read:
    // its command is long over.
    store.put_command(&record).await.unwrap();
    aws_sdk_dynamodb::Client::new(&config)
        .update_item()
        .table_name("state")
        .key(
            "Ident",
            aws_sdk_dynamodb::types::AttributeValue::S("cmd-1".into()),
        )
        .update_expression("SET ExpiresAt = :past")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::N("1700000000".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.get_command("cmd-1", now).await.unwrap(),
        None,
        "expired"
    );

    // A node's id is not a command: nothing is deleted.
    store.put(&node("i-9", "ready", json!({}))).await.unwrap();
    let e = store.get_command("i-9", now).await.unwrap_err();
    assert!(matches!(e, Fault::Corrupt { .. }), "{e:?}");
    store.delete_command("i-9").await.unwrap();
    assert!(store.get("i-9").await.unwrap().is_some());
}

#[tokio::test]
async fn queries_by_type_read_every_page() {
    let moto = Moto::shared();
    let store = table(&moto.sdk().await, "state").await.with_page_size(7);
    for i in 0..30 {
        store
            .put(&node(&format!("i-w{i:02}"), "ready", json!({})))
            .await
            .unwrap();
    }
    let mut manager = node("i-m", "ready", json!({}));
    manager
        .properties
        .insert("ItemType".into(), json!("manager"));
    store.put(&manager).await.unwrap();
    let workers = store.by_type("worker").await.unwrap();
    assert_eq!(workers.len(), 30, "more items than one page");
    assert!(
        workers.windows(2).all(|w| w[0].id < w[1].id),
        "in key order"
    );
    assert_eq!(store.by_type("manager").await.unwrap().len(), 1);
    assert!(store.by_type("nothing").await.unwrap().is_empty());
}

fn launch_data(instance: &str, token: Option<&str>) -> LifecycleData {
    LifecycleData {
        instance_id: instance.into(),
        auto_scaling_group: GROUP.into(),
        hook_name: HOOK.into(),
        token: token.map(str::to_owned),
        transition: LifecycleTransition::Launching,
        metadata: Map::new(),
        origin: None,
        destination: None,
        due_at: None,
    }
}

const TOKEN: &str = "c0a7f2b4-1d3e-4f5a-8b6c-7d8e9f0a1b2c";

#[tokio::test]
async fn completing_a_lifecycle_action_once_then_no_active_action() {
    // CompleteLifecycleAction comes from the harness's moto extension.
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let ids = group(&config, GROUP, 1, &[(HOOK, support::LAUNCHING)]).await;
    moto.register_lifecycle_action(GROUP, HOOK, &ids[0], TOKEN, support::LAUNCHING);
    let asg = AutoScalingActions::new(&config, Arc::new(ManualClock::default()));
    let data = launch_data(&ids[0], Some(TOKEN));
    assert_eq!(asg.heartbeat(&data).await.unwrap(), ActionState::Done);
    assert_eq!(
        asg.complete(&data, LifecycleResult::Continue)
            .await
            .unwrap(),
        ActionState::Done
    );
    let done = moto.completions();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["result"], "CONTINUE");
    // AWS rejects a second completion ("No active Lifecycle Action found"): a typed outcome,
    // reached after falling back from the token to the instance id.
    assert_eq!(
        asg.complete(&data, LifecycleResult::Continue)
            .await
            .unwrap(),
        ActionState::NoActiveAction
    );
    assert_eq!(
        asg.heartbeat(&data).await.unwrap(),
        ActionState::NoActiveAction
    );
    assert_eq!(moto.completions().len(), 1);
}

#[tokio::test]
async fn a_stale_token_falls_back_to_the_instance_id() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let ids = group(&config, GROUP, 1, &[(HOOK, support::LAUNCHING)]).await;
    moto.register_lifecycle_action(GROUP, HOOK, &ids[0], TOKEN, support::LAUNCHING);
    let asg = AutoScalingActions::new(&config, Arc::new(ManualClock::default()));
    let stale = launch_data(&ids[0], Some("0f0f0f0f-1d3e-4f5a-8b6c-7d8e9f0a1b2c"));
    assert_eq!(
        asg.complete(&stale, LifecycleResult::Abandon)
            .await
            .unwrap(),
        ActionState::Done
    );
    let done = moto.completions();
    assert_eq!(done[0]["result"], "ABANDON");
    assert_eq!(done[0]["instance"], ids[0].as_str());
}

#[tokio::test]
async fn a_dead_warm_pool_token_never_completes_the_instances_next_action() {
    // Issue "Transient faults are not failures", warm pools: an instance entering a warm pool
    // and later leaving it gets two launch actions. A late pool-entry event whose token is
    // dead must not complete, by instance id, the action that now waits to put the instance
    // in service. The harness reports the wait state AWS does (DescribeAutoScalingInstances).
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let ids = group(&config, GROUP, 1, &[(HOOK, support::LAUNCHING)]).await;
    moto.register_lifecycle_action(GROUP, HOOK, &ids[0], TOKEN, support::LAUNCHING);
    let asg = AutoScalingActions::new(&config, Arc::new(ManualClock::default()));
    let mut stale_entry = launch_data(&ids[0], Some("0f0f0f0f-1d3e-4f5a-8b6c-7d8e9f0a1b2c"));
    stale_entry.destination = Some("WarmPool".into());
    assert_eq!(
        asg.complete(&stale_entry, LifecycleResult::Abandon)
            .await
            .unwrap(),
        ActionState::NoActiveAction
    );
    assert!(
        moto.completions().is_empty(),
        "the launch into service still waits"
    );
    // The action of that entry itself, waiting in Warmed:Pending:Wait, is completed by id.
    let pool = "workers-pool";
    let ids = group(&config, pool, 1, &[(HOOK, support::LAUNCHING)]).await;
    let r = moto.autoscaling(
        "RegisterTestLifecycleAction",
        &[
            ("AutoScalingGroupName", pool),
            ("LifecycleHookName", HOOK),
            ("InstanceId", &ids[0]),
            (
                "LifecycleActionToken",
                "1b1b1b1b-1d3e-4f5a-8b6c-7d8e9f0a1b2c",
            ),
            ("LifecycleTransition", support::LAUNCHING),
            ("Destination", "WarmPool"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut entry = launch_data(&ids[0], Some("0f0f0f0f-1d3e-4f5a-8b6c-7d8e9f0a1b2c"));
    entry.auto_scaling_group = pool.into();
    entry.destination = Some("WarmPool".into());
    assert_eq!(
        asg.complete(&entry, LifecycleResult::Continue)
            .await
            .unwrap(),
        ActionState::Done
    );
    assert_eq!(moto.completions().len(), 1);
}

#[tokio::test]
async fn an_unknown_group_is_an_error_that_retrying_cannot_fix() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let asg = AutoScalingActions::new(&config, Arc::new(ManualClock::default()));
    let e = asg
        .complete(&launch_data("i-1", None), LifecycleResult::Continue)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FaultKind::Permanent, "{e:?}");
    assert_eq!(e.code(), Some("ValidationError"), "{e:?}");
    assert!(e.to_string().contains("CompleteLifecycleAction"), "{e}");
}

#[tokio::test]
async fn scale_in_protection_is_set_and_cleared() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let ids = group(&config, GROUP, 1, &[(HOOK, support::LAUNCHING)]).await;
    let asg = AutoScalingActions::new(&config, Arc::new(ManualClock::default()));
    let client = aws_sdk_autoscaling::Client::new(&config);
    let instance = asg.instance(&ids[0]).await.unwrap().unwrap();
    assert_eq!(instance.group, GROUP);
    assert_eq!(instance.lifecycle_state, "InService");
    assert_eq!(asg.instance("i-0123456789abcdef0").await.unwrap(), None);
    for want in [true, false] {
        asg.set_protection(GROUP, &ids, want).await.unwrap();
        let d = client
            .describe_auto_scaling_instances()
            .instance_ids(&ids[0])
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.auto_scaling_instances()[0].protected_from_scale_in(),
            Some(want)
        );
    }
}

#[tokio::test]
async fn activity_wait_ends_when_the_launch_is_complete() {
    // DescribeScalingActivities comes from the harness (moto returns nothing).
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let ids = group(&config, GROUP, 1, &[(HOOK, support::LAUNCHING)]).await;
    let asg = AutoScalingActions::new(&config, Arc::new(ManualClock::default()));
    asg.wait_for_activity(
        &launch_data(&ids[0], None),
        SystemTime::now() + Duration::from_secs(30),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn commands_wait_for_the_agent_and_are_sent() {
    // DescribeInstanceInformation and the strict SendCommand come from the harness.
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let ids = group(&config, GROUP, 1, &[(HOOK, support::LAUNCHING)]).await;
    let clock = Arc::new(ManualClock::default());
    let ssm = SsmRunner::new(&config, clock.clone());
    let until = clock.now() + Duration::from_secs(60);
    ssm.wait_online(&ids, until).await.unwrap();
    let cmd = ShellCommand {
        instance_ids: ids.clone(),
        commands: vec![Sensitive::new("echo s3cr3t".into(), "echo ***".into())],
        comment: "x".repeat(150),
        execution_timeout: None,
        idempotency_key: "k".into(),
    };
    let id = ssm.send(&cmd).await.unwrap();
    let listed = aws_sdk_ssm::Client::new(&config)
        .list_commands()
        .command_id(&id)
        .send()
        .await
        .unwrap();
    let sent = &listed.commands()[0];
    assert_eq!(
        sent.comment().unwrap().chars().count(),
        100,
        "SSM's comment limit"
    );
    assert_eq!(
        sent.parameters().unwrap()["commands"],
        vec!["echo s3cr3t".to_owned()],
        "the real text reaches AWS"
    );
    assert_eq!(
        sent.parameters().unwrap()["executionTimeout"],
        vec!["600".to_owned()],
        "the command's timeout is explicit (the runner's default), so it cannot race the hook's"
    );
    assert_eq!(
        sent.timeout_seconds(),
        Some(600),
        "the delivery timeout is explicit too (SSM's default is an hour)"
    );
    assert!(
        sent.cloud_watch_output_config().is_none(),
        "no log group configured"
    );
    // With a log group, the output goes to CloudWatch Logs, to be read after the fact.
    let logged = SsmRunner::new(&config, clock.clone())
        .with_output_log_group(Some("/lifecycle/commands".into()))
        .send(&ShellCommand {
            idempotency_key: "k2".into(),
            ..cmd.clone()
        })
        .await
        .unwrap();
    let listed = aws_sdk_ssm::Client::new(&config)
        .list_commands()
        .command_id(&logged)
        .send()
        .await
        .unwrap();
    let output = listed.commands()[0].cloud_watch_output_config().unwrap();
    assert_eq!(
        output.cloud_watch_log_group_name(),
        Some("/lifecycle/commands")
    );
    assert!(output.cloud_watch_output_enabled());

    // An agent that is not online: the wait ends at its bound (simulated time) with an error a
    // retry can fix.
    moto.set_agent_status(&ids[0], "ConnectionLost");
    let until = clock.now() + Duration::from_secs(60);
    let e = ssm.wait_online(&ids, until).await.unwrap_err();
    assert!(
        e.kind() == FaultKind::Transient && e.to_string().contains("not online"),
        "{e:?}"
    );

    // An instance SSM does not know: InvalidInstanceId, which AWS also answers for an agent
    // that has not registered yet — so a retry may mend it (transient), and its retries run
    // out for an instance that never existed.
    let unknown = ShellCommand {
        instance_ids: vec!["i-0123456789abcdef0".into()],
        ..cmd
    };
    let e = ssm.send(&unknown).await.unwrap_err();
    assert!(
        e.kind() == FaultKind::Transient && e.code() == Some("InvalidInstanceId"),
        "{e:?}"
    );
    assert!(e.to_string().contains("InvalidInstanceId"), "{e}");
}

#[tokio::test]
async fn reports_go_to_the_topic_in_its_own_region() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let eu = aws_sdk_sns::config::Builder::from(&config)
        .region(Region::new("eu-central-1"))
        .build();
    let topic = aws_sdk_sns::Client::from_conf(eu)
        .create_topic()
        .name("lifecycle")
        .send()
        .await
        .unwrap();
    let arn = topic.topic_arn().unwrap();
    assert!(arn.contains(":eu-central-1:"));
    let reporter = SnsReporter::new(&config);
    reporter
        .publish(&Sensitive::plain(arn), "subject", "message")
        .await
        .unwrap();
    let e = reporter
        .publish(
            &Sensitive::plain("arn:aws:sns:eu-central-1:123456789012:missing"),
            "s",
            "m",
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FaultKind::Permanent, "{e:?}");
    let e = reporter
        .publish(&Sensitive::plain("not-an-arn"), "s", "m")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not an SNS topic ARN"), "{e}");
    assert_eq!(e.kind(), FaultKind::Permanent, "{e:?}");
}

#[tokio::test]
async fn dns_changes_apply_as_one_batch_stale_deletes_are_refused_gone_ones_succeed() {
    // The strict DELETE comes from the harness (moto accepts any DELETE).
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let r53 = aws_sdk_route53::Client::new(&config);
    let zone = r53
        .create_hosted_zone()
        .name("swarm.example.internal")
        .caller_reference("test")
        .send()
        .await
        .unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().to_owned();
    let dns = Route53Dns::new(&config);
    let rec = |action, value: &str| RecordChange {
        action,
        name: Sensitive::plain("i-1.swarm.example.internal"),
        record_type: "A".into(),
        ttl: 60,
        values: vec![Sensitive::plain(value)],
    };
    let zone_id = Sensitive::plain(zone_id);
    dns.change(
        &zone_id,
        &[
            rec(RecordAction::Upsert, "10.0.0.7"),
            RecordChange {
                name: Sensitive::plain("i-2.swarm.example.internal"),
                ..rec(RecordAction::Upsert, "10.0.0.8")
            },
        ],
    )
    .await
    .unwrap();
    let a_records = || async {
        r53.list_resource_record_sets()
            .hosted_zone_id(zone_id.expose())
            .send()
            .await
            .unwrap()
            .resource_record_sets()
            .iter()
            .filter(|r| r.r#type().as_str() == "A")
            .map(|r| r.name().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(a_records().await.len(), 2);
    let stale = dns
        .change(&zone_id, &[rec(RecordAction::Delete, "10.9.9.9")])
        .await
        .unwrap_err();
    assert!(
        stale.to_string().contains("InvalidChangeBatch"),
        "{stale:?}"
    );
    assert_eq!(stale.code(), Some("InvalidChangeBatch"), "{stale:?}");
    assert_eq!(stale.kind(), FaultKind::Permanent);
    dns.change(&zone_id, &[rec(RecordAction::Delete, "10.0.0.7")])
        .await
        .unwrap();
    assert_eq!(a_records().await.len(), 1);
    // SPEC 9: deleting a record that is already gone succeeds (a redelivered termination
    // repeats its DELETE); failed before: InvalidChangeBatch, permanent.
    dns.change(&zone_id, &[rec(RecordAction::Delete, "10.0.0.7")])
        .await
        .unwrap();
    // In a batch, the gone DELETE is dropped and the rest applied.
    dns.change(
        &zone_id,
        &[
            rec(RecordAction::Delete, "10.0.0.7"),
            RecordChange {
                name: Sensitive::plain("i-3.swarm.example.internal"),
                ..rec(RecordAction::Upsert, "10.0.0.9")
            },
        ],
    )
    .await
    .unwrap();
    assert_eq!(a_records().await.len(), 2);
}

#[tokio::test]
async fn secure_parameters_are_read_decrypted() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name("/swarm/worker-token")
        .value("SWMTKN-1-from-parameter-store")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let store = ParameterStore::new(&config);
    assert_eq!(
        store
            .read(&Sensitive::plain("/swarm/worker-token"), true)
            .await
            .unwrap(),
        "SWMTKN-1-from-parameter-store"
    );
    let e = store
        .read(&Sensitive::plain("/swarm/missing"), true)
        .await
        .unwrap_err();
    assert!(
        e.kind() == FaultKind::NotFound && e.to_string().contains("ParameterNotFound"),
        "{e:?}"
    );
}
