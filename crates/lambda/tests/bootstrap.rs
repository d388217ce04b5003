//! The built `bootstrap` run as Lambda runs it: a local Runtime API hands it payloads, moto's
//! server on 127.0.0.1 is its AWS. One container's life: init once, then an EventBridge
//! launch, the SNS-wrapped status event of the command it sent, and an SQS batch with a good
//! record, a foreign one and one that can only be mended by a retry — whose `messageId` alone
//! is named in `batchItemFailures`. A scheduled event of the `reconcile:` rule, which runs the
//! sweep. And an init with an invalid configuration, which fails naming every error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_api;
#[path = "../../aws/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use runtime_api::{Answer, RuntimeApi};
use serde_json::{Value, json};
use support::{Moto, MotoGuard};

const GROUP: &str = "swarm-workers";
const TABLE: &str = "swarm-state";
const SECRET: &str = "SWMTKN-1-lambda0test0secret0never0logged";
const WAIT: Duration = Duration::from_secs(60);

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

/// `bootstrap` started against `api`, as Lambda starts it, with its output in `logs`.
fn start(api: &RuntimeApi, env: &[(&str, String)], logs: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "lifecycle")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::fs::File::create(logs.join("stdout")).unwrap())
        .stderr(std::fs::File::create(logs.join("stderr")).unwrap())
        .spawn()
        .expect("start bootstrap")
}

fn output(logs: &Path) -> String {
    let out = std::fs::read_to_string(logs.join("stdout")).unwrap_or_default();
    let err = std::fs::read_to_string(logs.join("stderr")).unwrap_or_default();
    format!("{out}\n{err}")
}

fn lifecycle_event(id: &str, instance: &str, launching: bool, token: &str) -> Value {
    support::lifecycle_event(id, GROUP, "workers", instance, launching, token)
}

/// A successful status event of a command of ours.
fn status_event(id: &str, command: &str, instance: &str) -> Value {
    support::status_event(
        id,
        command,
        instance,
        "Success",
        "# sent by autoscaling-lifecycle",
    )
}

fn sns(message: &Value) -> Value {
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:lifecycle:sub",
        "Sns": {
            "Type": "Notification",
            "MessageId": "sns-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:lifecycle",
            "Message": message.to_string(),
            "Timestamp": "2026-11-29T10:01:01.000Z"
        }
    }]})
}

fn sqs_record(message_id: &str, body: &Value) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": "handle",
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lifecycle",
        "awsRegion": "us-east-1"
    })
}

async fn put_node(moto: &MotoGuard, instance: &str, status: &str) {
    aws_sdk_dynamodb::Client::new(&moto.sdk().await)
        .put_item()
        .table_name(TABLE)
        .item("Ident", AttributeValue::S(instance.into()))
        .item("ItemStatus", AttributeValue::S(status.into()))
        .item("ItemType", AttributeValue::S("worker".into()))
        .item("JoinToken", AttributeValue::S(SECRET.into()))
        .send()
        .await
        .unwrap();
}

async fn status_of(moto: &MotoGuard, instance: &str) -> Option<String> {
    aws_sdk_dynamodb::Client::new(&moto.sdk().await)
        .get_item()
        .table_name(TABLE)
        .key("Ident", AttributeValue::S(instance.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .and_then(|i| i.get("ItemStatus").and_then(|s| s.as_s().ok().cloned()))
}

fn response(answer: Answer, logs: &Path) -> Value {
    match answer {
        Answer::Response(v) => v,
        Answer::Error(e) => panic!("the invocation failed: {e}\n{}", output(logs)),
    }
}

#[tokio::test]
async fn one_container_runs_a_launch_a_status_event_and_an_sqs_batch() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    lifecycle_aws::DynamoStore::new(&config, TABLE)
        .init()
        .await
        .unwrap();
    let instances = support::group(
        &config,
        GROUP,
        2,
        &[
            ("workers-on-launch", support::LAUNCHING),
            ("workers-on-terminate", support::TERMINATING),
        ],
    )
    .await;
    let (first, second) = (instances[0].clone(), instances[1].clone());
    put_node(&moto, &first, "finished_cloud_init").await;

    let api = RuntimeApi::start();
    let logs = tempfile::tempdir().unwrap();
    let mut env = moto.env();
    env.push(("LIFECYCLE_TABLE", TABLE.into()));
    env.push(("LIFECYCLE_CONFIG", data("worker.yaml")));
    // A node still in cloud-init is not waited for: its launch fails at once, retryably.
    env.push(("LIFECYCLE_WAIT_TIMEOUT_SECONDS", "0".into()));
    let mut child = start(&api, &env, logs.path());

    // An EventBridge launch, delivered directly: the join command goes out.
    let token = "11111111-2222-4333-8444-555555555555";
    moto.register_lifecycle_action(
        GROUP,
        "workers-on-launch",
        &first,
        token,
        support::LAUNCHING,
    );
    let r = response(
        api.invoke(lifecycle_event("e-launch", &first, true, token), WAIT, WAIT),
        logs.path(),
    );
    assert_eq!(r["stopped_by"], json!(["stop_after_state_change"]), "{r}");
    assert_eq!(status_of(&moto, &first).await.as_deref(), Some("joining"));
    let join = support::sent_commands(&config).await.remove(0);

    // Its status event, wrapped in SNS: the hook is completed with CONTINUE.
    let r = response(
        api.invoke(sns(&status_event("e-join", &join, &first)), WAIT, WAIT),
        logs.path(),
    );
    assert_eq!(r["records"], 1, "{r}");
    assert_eq!(status_of(&moto, &first).await.as_deref(), Some("ready"));
    let done = moto.completions();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["result"], "CONTINUE");

    // An SQS batch: the first node's termination (good), a foreign message (not ours: not
    // retried), and a launch for a node still in cloud-init (retryable: named alone).
    put_node(&moto, &second, "pending").await;
    let term = "66666666-7777-4888-8999-aaaaaaaaaaaa";
    moto.register_lifecycle_action(
        GROUP,
        "workers-on-terminate",
        &first,
        term,
        support::TERMINATING,
    );
    let batch = json!({"Records": [
        sqs_record("m-good", &lifecycle_event("e-term", &first, false, term)),
        sqs_record("m-foreign", &json!({"hello": "world"})),
        sqs_record("m-retry", &lifecycle_event("e-launch-2", &second, true, "77777777-2222-4333-8444-555555555555")),
    ]});
    let r = response(api.invoke(batch, WAIT, WAIT), logs.path());
    assert_eq!(
        r,
        json!({"batchItemFailures": [{"itemIdentifier": "m-retry"}]}),
        "{}",
        output(logs.path())
    );
    assert_eq!(status_of(&moto, &first).await.as_deref(), Some("leaving"));
    assert_eq!(status_of(&moto, &second).await.as_deref(), Some("pending"));

    // A retryable failure of a directly delivered event fails the invocation (Lambda then
    // retries it, then hands it to the on-failure destination).
    let answer = api.invoke(
        lifecycle_event(
            "e-launch-2",
            &second,
            true,
            "77777777-2222-4333-8444-555555555555",
        ),
        WAIT,
        WAIT,
    );
    match answer {
        Answer::Error(e) => assert!(e.to_string().contains("cloud-init"), "{e}"),
        other => panic!("expected a failed invocation: {other:?}"),
    }

    child.kill().ok();
    child.wait().ok();
    let out = output(logs.path());
    // Initialised once, one JSON log line per record, metrics in EMF, no secret anywhere.
    assert_eq!(out.matches("\"message\":\"ready\"").count(), 1, "{out}");
    assert!(out.contains("\"request_id\":\"req-3\""), "{out}");
    assert!(out.contains("\"CloudWatchMetrics\""), "{out}");
    assert!(out.contains("\"Outcome\":\"not_supported\""), "{out}");
    assert!(!out.contains(SECRET), "a secret reached the logs");
}

/// The schedule rule of `reconcile:` runs the sweep: a node whose launch event was lost is
/// driven from its stored state, the sweep's report is one log line, and the nodes in each
/// state are metrics for the dashboard.
#[tokio::test]
async fn a_scheduled_event_of_the_reconcile_rule_runs_the_sweep() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    lifecycle_aws::DynamoStore::new(&config, TABLE)
        .init()
        .await
        .unwrap();
    let instances = support::group(
        &config,
        GROUP,
        1,
        &[("workers-on-launch", support::LAUNCHING)],
    )
    .await;
    let worker = instances[0].clone();
    moto.register_lifecycle_action(
        GROUP,
        "workers-on-launch",
        &worker,
        "11111111-2222-4333-8444-000000000001",
        support::LAUNCHING,
    );
    put_node(&moto, &worker, "finished_cloud_init").await;
    // Its last change was 20 minutes ago (stale after 10).
    let changed = std::time::SystemTime::now() - Duration::from_secs(1200);
    aws_sdk_dynamodb::Client::new(&config)
        .update_item()
        .table_name(TABLE)
        .key("Ident", AttributeValue::S(worker.clone()))
        .update_expression("SET ChangedAt = :t")
        .expression_attribute_values(
            ":t",
            AttributeValue::N(lifecycle::delivery::epoch_ms(changed).to_string()),
        )
        .send()
        .await
        .unwrap();

    let api = RuntimeApi::start();
    let logs = tempfile::tempdir().unwrap();
    let mut env = moto.env();
    env.push(("LIFECYCLE_TABLE", TABLE.into()));
    env.push(("LIFECYCLE_CONFIG", data("sweep.yaml")));
    let mut child = start(&api, &env, logs.path());
    let scheduled = json!({
        "version": "0", "id": "sched-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-29T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/swarm-reconcile"], "detail": {}
    });
    let r = response(api.invoke(scheduled, WAIT, WAIT), logs.path());
    assert_eq!(r["records"], 1, "{r}");
    assert_eq!(status_of(&moto, &worker).await.as_deref(), Some("joining"));
    assert_eq!(support::sent_commands(&config).await.len(), 1);
    child.kill().ok();
    child.wait().ok();
    let out = output(logs.path());
    assert!(out.contains("\"message\":\"sweep report\""), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("\"State\":\"finished_cloud_init\"")
                && l.contains("\"Nodes\":1")
                && l.contains("\"StuckNodes\":1")),
        "{out}"
    );
    assert!(out.contains("\"SweepResumes\":1"), "{out}");
    assert!(!out.contains(SECRET), "a secret reached the logs");
}

#[test]
fn an_invalid_configuration_fails_the_init_naming_every_error() {
    let api = RuntimeApi::start();
    let logs = tempfile::tempdir().unwrap();
    let env = [
        ("LIFECYCLE_TABLE", TABLE.to_owned()),
        ("LIFECYCLE_CONFIG", data("invalid.yaml")),
        ("AWS_REGION", "us-east-1".to_owned()),
    ];
    let mut child = start(&api, &env, logs.path());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < WAIT, "bootstrap did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let out = output(logs.path());
    assert!(out.contains("init failed"), "{out}");
    assert!(out.contains("unknown key `colour`"), "{out}");
    assert!(
        out.contains("`trigger` is a reserved trigger name"),
        "{out}"
    );

    // A name nothing provides fails the init too: the function registers no tasks.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lifecycle.yaml");
    std::fs::write(
        &config,
        "- {source: a, dest: b, triggers: [{name: go, before: [drain_swarm]}]}\n",
    )
    .unwrap();
    let env = [
        ("LIFECYCLE_TABLE", TABLE.to_owned()),
        ("LIFECYCLE_CONFIG", config.to_str().unwrap().to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ];
    let mut child = start(&api, &env, logs.path());
    let status = child.wait().unwrap();
    assert!(!status.success());
    let out = output(logs.path());
    assert!(out.contains("unknown task `drain_swarm`"), "{out}");

    // And so does a bad environment, every variable named.
    let env = [
        ("LIFECYCLE_DEADLINE_MARGIN_MS", "soon".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ];
    let mut child = start(&api, &env, logs.path());
    assert!(!child.wait().unwrap().success());
    let out = output(logs.path());
    assert!(out.contains("LIFECYCLE_TABLE"), "{out}");
    assert!(out.contains("LIFECYCLE_DEADLINE_MARGIN_MS"), "{out}");
}
