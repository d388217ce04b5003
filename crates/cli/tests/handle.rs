//! `lifecycle init` and `lifecycle handle` end to end against moto's server: a worker's whole
//! launch and termination, event by event, through the built binary with the real AWS SDK.
//! Lifecycle actions are made active with the harness's test-only action (moto never puts an
//! instance into Pending:Wait) and completed through its AWS-shaped CompleteLifecycleAction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../aws/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use support::{Moto, MotoGuard};

const GROUP: &str = "swarm-workers";
const TABLE: &str = "swarm-state";
const SECRET: &str = "SWMTKN-1-handle0test0secret0never0printed";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn lifecycle(moto: &MotoGuard, args: &[&str]) -> Run {
    lifecycle_with(moto, args, &[])
}

/// [`lifecycle`] with extra environment variables, set after moto's.
fn lifecycle_with(moto: &MotoGuard, args: &[&str], env: &[(&str, String)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_lifecycle"))
        .args(args)
        .envs(moto.env())
        .env("RUST_LOG", "debug")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `lifecycle handle --format json` on `event` (written into `dir`) with the test
/// configuration.
fn run_handle(moto: &MotoGuard, dir: &Path, event: &Value) -> Run {
    run_handle_with(moto, dir, event, &[])
}

/// [`run_handle`] with extra environment variables.
fn run_handle_with(moto: &MotoGuard, dir: &Path, event: &Value, env: &[(&str, String)]) -> Run {
    let path = dir.join("event.json");
    std::fs::write(&path, event.to_string()).unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-worker.yaml");
    lifecycle_with(
        moto,
        &[
            "handle",
            "--config",
            config.to_str().unwrap(),
            "--event",
            path.to_str().unwrap(),
            "--table",
            TABLE,
            "--format",
            "json",
        ],
        env,
    )
}

/// [`run_handle`] that must succeed; its report, checked free of the secret.
fn handle(moto: &MotoGuard, dir: &Path, event: &Value) -> Value {
    let run = run_handle(moto, dir, event);
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    assert_eq!(run.code, 0, "{report:#}\n{}", run.stderr);
    report
}

/// A lifecycle event of the workers' hooks, with the hosted zone in its metadata.
fn lifecycle_event(id: &str, instance: &str, launching: bool, token: &str, zone: &str) -> Value {
    let mut event = support::lifecycle_event(id, GROUP, "workers", instance, launching, token);
    event["detail"]["NotificationMetadata"] = json!(json!({"zone": zone}).to_string());
    event
}

/// A status event of a command whose shell lines the event does not carry back.
fn status_event(id: &str, command: &str, instance: &str, status: &str) -> Value {
    support::status_event(id, command, instance, status, "(as sent)")
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lifecycle-handle-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_worker_launches_and_terminates_through_lifecycle_handle() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let dir = scratch_dir("flow");

    // The table, twice: init is idempotent.
    for _ in 0..2 {
        let run = lifecycle(&moto, &["init", "--table", TABLE]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }

    // A group with launch and terminate hooks, its instance, a hosted zone.
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
    let r53 = aws_sdk_route53::Client::new(&config);
    let zone = r53
        .create_hosted_zone()
        .name("swarm.example.internal")
        .caller_reference("handle-test")
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .to_owned();

    // Cloud-init registered the node.
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    ddb.put_item()
        .table_name(TABLE)
        .item("Ident", AttributeValue::S(instance.clone()))
        .item(
            "ItemStatus",
            AttributeValue::S("finished_cloud_init".into()),
        )
        .item("ItemType", AttributeValue::S("worker".into()))
        .item("InstanceIp", AttributeValue::S("10.0.0.7".into()))
        .item("JoinToken", AttributeValue::S(SECRET.into()))
        .send()
        .await
        .unwrap();
    let status_of = || async {
        ddb.get_item()
            .table_name(TABLE)
            .key("Ident", AttributeValue::S(instance.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item()
            .and_then(|i| i.get("ItemStatus").and_then(|s| s.as_s().ok().cloned()))
    };

    // Launch: the join command is sent and the node waits in `joining`.
    let launch_token = "11111111-2222-4333-8444-555555555555";
    moto.register_lifecycle_action(
        GROUP,
        "workers-on-launch",
        &instance,
        launch_token,
        support::LAUNCHING,
    );
    let r = handle(
        &moto,
        &dir,
        &lifecycle_event("e-launch", &instance, true, launch_token, &zone),
    );
    assert_eq!(r["final_state"], "joining", "{r:#}");
    assert_eq!(r["stopped_by"], "stop_after_state_change");
    assert_eq!(status_of().await.as_deref(), Some("joining"));
    let sent = support::sent_commands(&config).await;
    assert_eq!(sent.len(), 1);
    let join = sent[0].clone();
    // The command reached SSM with the token; the stored record has it masked.
    let record = ddb
        .get_item()
        .table_name(TABLE)
        .key("Ident", AttributeValue::S(join.clone()))
        .send()
        .await
        .unwrap();
    let stored = format!("{:?}", record.item().unwrap());
    assert!(
        !stored.contains(SECRET) && stored.contains("***"),
        "{stored}"
    );

    // The join succeeded: DNS published, hook completed with CONTINUE, node ready.
    let r = handle(
        &moto,
        &dir,
        &status_event("e-join", &join, &instance, "Success"),
    );
    assert_eq!(r["initial_state"], "joining", "{r:#}");
    assert_eq!(r["final_state"], "ready", "{r:#}");
    assert_eq!(r["event"], "EC2 Instance-launch Lifecycle Action");
    assert_eq!(status_of().await.as_deref(), Some("ready"));
    let done = moto.completions();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["result"], "CONTINUE");
    assert_eq!(done[0]["hook"], "workers-on-launch");
    let names: Vec<String> = r53
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .unwrap()
        .resource_record_sets()
        .iter()
        .filter(|r| r.r#type().as_str() == "A")
        .map(|r| r.name().to_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // The same status event delivered again: the record was taken, nothing repeats.
    let r = handle(
        &moto,
        &dir,
        &status_event("e-join", &join, &instance, "Success"),
    );
    assert_eq!(r["stopped_by"], "not_supported", "{r:#}");
    assert_eq!(moto.completions().len(), 1);

    // Terminate: leave command, then DNS withdrawn, hook completed, node forgotten.
    let term_token = "66666666-7777-4888-8999-aaaaaaaaaaaa";
    moto.register_lifecycle_action(
        GROUP,
        "workers-on-terminate",
        &instance,
        term_token,
        support::TERMINATING,
    );
    let r = handle(
        &moto,
        &dir,
        &lifecycle_event("e-term", &instance, false, term_token, &zone),
    );
    assert_eq!(r["final_state"], "leaving", "{r:#}");
    let leave = support::sent_commands(&config)
        .await
        .into_iter()
        .find(|c| *c != join)
        .unwrap();
    let r = handle(
        &moto,
        &dir,
        &status_event("e-leave", &leave, &instance, "Success"),
    );
    assert_eq!(r["final_state"], "removed", "{r:#}");
    assert_eq!(r["passed_states"], json!(["removed"]));
    assert_eq!(
        status_of().await,
        None,
        "the node is forgotten and not recreated"
    );
    let done = moto.completions();
    assert_eq!(done.len(), 2);
    assert_eq!(done[1]["hook"], "workers-on-terminate");
    assert_eq!(done[1]["result"], "CONTINUE");

    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn handle_refuses_to_launch_a_node_that_is_not_new() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let dir = scratch_dir("race");
    assert_eq!(lifecycle(&moto, &["init", "--table", TABLE]).code, 0);
    // A launch event for a node already past its launch (a late duplicate): the guard
    // refuses it and nothing is written.
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    ddb.put_item()
        .table_name(TABLE)
        .item("Ident", AttributeValue::S("i-0abc".into()))
        .item("ItemStatus", AttributeValue::S("ready".into()))
        .send()
        .await
        .unwrap();
    let run = run_handle(
        &moto,
        &dir,
        &lifecycle_event("e1", "i-0abc", true, "t", "Z1"),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("only new nodes can be launched"),
        "{r:#}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn handle_without_a_reachable_aws_fails_with_a_retryable_error() {
    let moto = Moto::shared();
    let dir = scratch_dir("down");
    // A closed loopback port: the table read fails at the transport.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let run = run_handle_with(
        &moto,
        &dir,
        &lifecycle_event("e1", "i-0abc", true, "t", "Z1"),
        &[("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r["retryable"], true, "{r:#}");
    assert_eq!(r["error_kind"], "transient");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn set_state_moves_a_node_in_dynamodb_and_records_who_and_why() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    assert_eq!(lifecycle(&moto, &["init", "--table", TABLE]).code, 0);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    ddb.put_item()
        .table_name(TABLE)
        .item("Ident", AttributeValue::S("i-0abc".into()))
        .item("ItemStatus", AttributeValue::S("failure".into()))
        .item("ItemType", AttributeValue::S("worker".into()))
        .send()
        .await
        .unwrap();
    let run = lifecycle_with(
        &moto,
        &[
            "set-state",
            "--table",
            TABLE,
            "--node",
            "i-0abc",
            "--from",
            "failure",
            "--to",
            "ready",
            "--reason",
            "rejoined by hand",
            "--format",
            "json",
        ],
        &[("LIFECYCLE_OPERATOR", "alice".into())],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let item = ddb
        .get_item()
        .table_name(TABLE)
        .key("Ident", AttributeValue::S("i-0abc".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    assert_eq!(item["ItemStatus"].as_s().unwrap(), "ready");
    let change = item["LastManualChange"].as_m().unwrap();
    assert_eq!(change["by"].as_s().unwrap(), "alice");
    assert_eq!(change["reason"].as_s().unwrap(), "rejoined by hand");
    assert!(!item.contains_key("LeaseOwner"), "the lease is released");
    // Compare-and-set on --from.
    let again = lifecycle(
        &moto,
        &[
            "set-state",
            "--table",
            TABLE,
            "--node",
            "i-0abc",
            "--from",
            "failure",
            "--to",
            "ready",
        ],
    );
    assert_eq!(again.code, 1, "{}", again.stderr);
    // The listing reads the table (a Scan) and shows the move.
    let listed = lifecycle(&moto, &["nodes", "--table", TABLE, "--format", "json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let nodes: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(nodes[0]["node"], "i-0abc", "{nodes}");
    assert_eq!(nodes[0]["state"], "ready");
    assert_eq!(nodes[0]["last_manual_change"]["by"], "alice");
}

/// `graph --table` draws the fleet in DynamoDB; `replay --table` rehearses (`--dry-run`: a
/// copy in memory, nothing written or called) and then runs a processed launch again — its
/// delivery record dropped, its command not sent twice.
#[tokio::test]
async fn graph_and_replay_read_and_drive_dynamodb() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let dir = scratch_dir("graph-replay");
    assert_eq!(lifecycle(&moto, &["init", "--table", TABLE]).code, 0);
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
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    for (id, status) in [
        (instance.as_str(), "finished_cloud_init"),
        ("i-0failed", "failure"),
    ] {
        ddb.put_item()
            .table_name(TABLE)
            .item("Ident", AttributeValue::S(id.into()))
            .item("ItemStatus", AttributeValue::S(status.into()))
            .item("ItemType", AttributeValue::S("worker".into()))
            .item("InstanceIp", AttributeValue::S("10.0.0.7".into()))
            .item("JoinToken", AttributeValue::S(SECRET.into()))
            .send()
            .await
            .unwrap();
    }
    let token = "11111111-2222-4333-8444-555555555555";
    moto.register_lifecycle_action(
        GROUP,
        "workers-on-launch",
        &instance,
        token,
        support::LAUNCHING,
    );
    let launch = lifecycle_event("e-launch", &instance, true, token, "Z1");
    let r = handle(&moto, &dir, &launch);
    assert_eq!(r["final_state"], "joining", "{r:#}");
    assert_eq!(support::sent_commands(&config).await.len(), 1);

    // The picture: one node joining, one stuck in failure.
    let config_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-worker.yaml");
    let config_file = config_file.to_str().unwrap();
    let graph = lifecycle(&moto, &["graph", "--config", config_file, "--table", TABLE]);
    assert_eq!(graph.code, 0, "{}", graph.stderr);
    assert!(graph.stdout.contains("joining · 1"), "{}", graph.stdout);
    assert!(
        graph.stdout.contains("failure · 1 (1 stuck)"),
        "{}",
        graph.stdout
    );
    assert!(
        graph.stdout.contains("class s_failure stuck"),
        "{}",
        graph.stdout
    );
    let dot = lifecycle(
        &moto,
        &[
            "graph",
            "--config",
            config_file,
            "--table",
            TABLE,
            "--format",
            "dot",
        ],
    );
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    assert!(
        dot.stdout.contains("\"joining\" [label=\"joining · 1\""),
        "{}",
        dot.stdout
    );

    // Rewind the node, then rehearse the launch on a copy: the join runs, and — the copy
    // holds the send guard — would not be sent again.
    let moved = lifecycle(
        &moto,
        &[
            "set-state",
            "--table",
            TABLE,
            "--node",
            &instance,
            "--from",
            "joining",
            "--to",
            "finished_cloud_init",
        ],
    );
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    let event_file = dir.join("replayed.json");
    std::fs::write(&event_file, launch.to_string()).unwrap();
    let event_file = event_file.to_str().unwrap();
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--config",
            config_file,
            "--event",
            event_file,
            "--table",
            TABLE,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        lifecycle(&moto, &args)
    };
    let dry = replay(&["--dry-run"]);
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    let d: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(d["final_state"], "joining", "{d:#}");
    assert!(
        d["tasks"].as_array().unwrap().iter().any(|t| t == "join"),
        "{d:#}"
    );
    assert!(
        !d["calls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["operation"] == "SendCommand"),
        "{d:#}"
    );
    assert!(
        !dry.stdout.contains(SECRET),
        "the rehearsal masks the token"
    );
    let status = |id: &str| {
        let ddb = ddb.clone();
        let id = id.to_owned();
        async move {
            ddb.get_item()
                .table_name(TABLE)
                .key("Ident", AttributeValue::S(id))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item()
                .and_then(|i| i.get("ItemStatus").and_then(|s| s.as_s().ok().cloned()))
        }
    };
    assert_eq!(
        status(&instance).await.as_deref(),
        Some("finished_cloud_init"),
        "the dry run wrote nothing"
    );
    assert_eq!(
        support::sent_commands(&config).await.len(),
        1,
        "the dry run sent nothing"
    );

    // For real: not a duplicate (its record is dropped), and the join is not sent twice.
    let real = replay(&[]);
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    let r: Value = serde_json::from_str(&real.stdout).unwrap();
    assert_eq!(r["stopped_by"], "stop_after_state_change", "{r:#}");
    assert_eq!(status(&instance).await.as_deref(), Some("joining"));
    assert_eq!(
        support::sent_commands(&config).await.len(),
        1,
        "the send guard held"
    );
}
