//! SPEC 9, "Secrets stay secret downstream": a value rendered from a secret property, or a
//! decrypted parameter, is secret too — masked in every log, report, `calls` list, SNS
//! message, error and stored command record, whichever property name it is stored under, in
//! this invocation and in later ones; only the AWS call itself carries it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{command, launch, node, terminate};
use lifecycle::config::Definition;
use lifecycle::node::ATTR_SECRET_PROPERTIES;
use lifecycle::{Deadline, Fault, Sensitive};
use lifecycle_embedded::{LocalStore, ManualClock, Recorder};
use lifecycle_runtime::capability::{
    CommandRunner, Dns, RecordChange, Reporter, Secrets, ShellCommand, SnapshotRequest, Snapshots,
};
use lifecycle_runtime::{Call, Dispatcher, Options, Registry, Report, Services};
use serde_json::{Map, Value, json};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// A local store holding node `i-1` in `status`, with `extra` properties.
fn store_with(status: &str, extra: Value) -> LocalStore {
    let mut item = node("i-1", status);
    if let Value::Object(m) = extra {
        item.extend(m);
    }
    let store = LocalStore::memory();
    store.insert_item(item).unwrap();
    store
}

fn dispatcher(config: &str, services: Services) -> Dispatcher {
    let def = Definition::from_yaml(config).unwrap();
    Dispatcher::new(
        Arc::new(def),
        &Registry::new(),
        services,
        Options::default(),
    )
    .unwrap()
}

fn recorded(store: &LocalStore, recorder: &Recorder) -> Services {
    lifecycle_embedded::services(
        store.clone(),
        recorder.clone(),
        Arc::new(ManualClock::default()),
    )
}

/// The `Message` of every SNS publish recorded.
fn sns_messages(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.operation == "Publish")
        .map(|c| c.input["Message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn node_item(store: &LocalStore) -> Map<String, Value> {
    store
        .items()
        .unwrap()
        .into_iter()
        .find(|i| i["Ident"] == "i-1")
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// (a) a route53 value rendered from a secret property

#[tokio::test]
async fn a_route53_value_rendered_from_a_secret_is_masked_in_calls() {
    const CFG: &str = r#"
tasks:
  publish_token:
    route53:
      zone_id: Z0123456789
      upsert: [{name: "{node.Ident}.swarm.example", type: TXT, value: "\"join {node.WorkerToken}\""}]
transitions:
  - {source: finished_cloud_init, dest: joined, triggers: [{name: join, before: [publish_token]}]}
"#;
    let store = store_with(
        "finished_cloud_init",
        json!({"WorkerToken": "SWMTKN-1-route53"}),
    );
    let recorder = Recorder::default();
    let d = dispatcher(CFG, recorded(&store, &recorder));
    let r = d.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:?}");
    let calls = recorder.calls();
    let change = calls
        .iter()
        .find(|c| c.operation == "ChangeResourceRecordSets")
        .unwrap();
    let set = &change.input["ChangeBatch"]["Changes"][0]["ResourceRecordSet"];
    assert_eq!(set["Name"], "i-1.swarm.example");
    assert_eq!(set["ResourceRecords"][0]["Value"], "\"join ***\"");
    let all = serde_json::to_string(&calls).unwrap();
    assert!(!all.contains("SWMTKN-1-route53"), "{all}");
}

// ---------------------------------------------------------------------------------------------
// (b) a secret-derived value stored under an innocent name, reported now and later

const REMEMBER: &str = r#"
tasks:
  remember:
    set_properties:
      properties: {JoinCommand: "docker swarm join --token {node.WorkerToken}", Address: "{node.InstanceIp}"}
  report:
    sns_report: {topic_arn: "arn:aws:sns:eu-west-1:123456789012:lifecycle", message: "joining with: {node.JoinCommand}"}
  report_node:
    sns_report: {topic_arn: "arn:aws:sns:eu-west-1:123456789012:lifecycle"}
transitions:
  - source: finished_cloud_init
    dest: joined
    triggers: [{name: join, before: [remember], after: [report, report_node], stop_after_trigger: true}]
  - {source: joined, dest: ready, triggers: [{name: ready, after: [report, report_node]}]}
"#;

#[tokio::test]
async fn a_secret_stored_under_an_innocent_name_stays_masked_now_and_in_later_events() {
    const TOKEN: &str = "SWMTKN-1-remembered";
    let store = store_with("finished_cloud_init", json!({"WorkerToken": TOKEN}));

    // The same invocation.
    let recorder = Recorder::default();
    let first = dispatcher(REMEMBER, recorded(&store, &recorder));
    let r = first.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.final_state, "joined");
    let messages = sns_messages(&recorder.calls());
    assert_eq!(messages.len(), 2, "{r:?} {:?}", recorder.calls());
    assert_eq!(messages[0], "joining with: ***");
    let summary: Value = serde_json::from_str(&messages[1]).unwrap();
    assert_eq!(summary["node"]["properties"]["JoinCommand"], "***");
    assert_eq!(summary["node"]["properties"]["WorkerToken"], "***");
    assert_eq!(summary["node"]["properties"]["Address"], "10.0.0.10");

    // The node keeps the real value, and remembers that it is secret.
    let item = node_item(&store);
    assert_eq!(
        item["JoinCommand"],
        format!("docker swarm join --token {TOKEN}")
    );
    assert_eq!(item[ATTR_SECRET_PROPERTIES], json!(["JoinCommand"]));

    // A later invocation: a new dispatcher over the same table.
    let recorder = Recorder::default();
    let later = dispatcher(REMEMBER, recorded(&store, &recorder));
    let r = later.handle(terminate("i-1"), Deadline::NONE).await;
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.final_state, "ready");
    let messages = sns_messages(&recorder.calls());
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0], "joining with: ***");
    let summary: Value = serde_json::from_str(&messages[1]).unwrap();
    assert_eq!(summary["node"]["properties"]["JoinCommand"], "***");
    for m in &messages {
        assert!(!m.contains(TOKEN), "{m}");
    }
}

// ---------------------------------------------------------------------------------------------
// (c) the canary: distinctive secrets everywhere they could go, looked for everywhere

/// In a node property that is secret by name.
const CANARY_TOKEN: &str = "CANARY-7f3a9c-worker-token";
/// In a node property that is secret by the configuration's `redact:` words.
const CANARY_API: &str = "CANARY-2be41d-api-key";
/// The value of an SSM parameter read with decryption into an innocent name.
const CANARY_PARAM: &str = "CANARY-91c2e8-decrypted-parameter";
const CANARIES: [&str; 3] = [CANARY_TOKEN, CANARY_API, CANARY_PARAM];

const CANARY_CONFIG: &str = r#"
redact: [apikey]
tasks:
  fetch_key:
    read_parameter: {name: /cluster/key, property: ClusterKey}
  remember:
    set_properties:
      properties:
        JoinCommand: "join --token {node.WorkerToken} --key {node.ClusterKey}"
        Label: "ip-{node.InstanceIp}"
  join:
    ssm_command:
      commands:
        - "docker swarm join --token {node.WorkerToken} {node.InstanceIp}:2377"
        - "echo {node.ClusterKey} {node.ApiKey} > /etc/cluster"
        - "{node.JoinCommand}"
      comment: "join {node.WorkerToken}"
  publish_dns:
    route53:
      zone_id: Z0123456789
      upsert:
        - {name: "{node.Ident}.key.example", type: TXT, value: "\"{node.ClusterKey}\""}
        - {name: "{node.Ident}.ip.example", value: "{node.InstanceIp}"}
  deferred_dns:
    route53:
      zone_id: Z0123456789
      defer: true
      upsert: [{name: "{node.Ident}.join.example", type: TXT, value: "\"{node.JoinCommand}\""}]
  snapshot:
    ec2_snapshot: {device: /dev/xvdf, description: "backup {node.WorkerToken}", tags: {Key: "{node.ClusterKey}", Api: "{node.ApiKey}"}}
  report:
    sns_report:
      topic_arn: "arn:aws:sns:eu-west-1:123456789012:lifecycle"
      subject: "{event.name} {node.WorkerToken}"
      message: "cmd={node.JoinCommand} key={node.ClusterKey} api={node.ApiKey} label={node.Label}"
  report_node:
    sns_report: {topic_arn: "arn:aws:sns:eu-west-1:123456789012:lifecycle"}
  rejected_dns:
    route53:
      zone_id: ZREJECT
      upsert: [{name: "{node.Ident}.bad.example", type: TXT, value: "{node.ClusterKey}/{node.WorkerToken}"}]
transitions:
  - source: finished_cloud_init
    dest: joining
    triggers:
      - name: join
        before: [fetch_key, remember, join, publish_dns, deferred_dns, apply_dns_changes, snapshot]
        after: [report, report_node]
        stop_after_trigger: true
  - {source: joining, dest: ready, triggers: [{name: ready, after: [report, report_node]}]}
  - {source: ready, dest: checked, triggers: [{name: check, ignore_errors: true, before: [rejected_dns]}]}
"#;

/// What reached "AWS": the real payload of every call the capabilities below received.
type WireLog = Arc<Mutex<Vec<String>>>;

/// The AWS side as the test sees it: each call's real payload is kept (it is what AWS would
/// get), then the call is recorded by the [`Recorder`] (which keeps only the shown form).
/// Parameter Store answers [`CANARY_PARAM`]; the hosted zone `ZREJECT` refuses its batch with
/// an error that echoes the value, as Route 53's `InvalidChangeBatch` does.
#[derive(Clone)]
struct Wire {
    recorder: Recorder,
    log: WireLog,
}

impl Wire {
    fn keep(&self, text: String) {
        self.log.lock().unwrap().push(text);
    }
}

#[async_trait]
impl CommandRunner for Wire {
    async fn wait_online(
        &self,
        instance_ids: &[String],
        until: std::time::SystemTime,
    ) -> Result<(), Fault> {
        self.recorder.wait_online(instance_ids, until).await
    }

    async fn send(&self, command: &ShellCommand) -> Result<String, Fault> {
        for c in &command.commands {
            self.keep(format!("SendCommand {}", c.expose()));
        }
        self.recorder.send(command).await
    }

    async fn find_sent(&self, instance_ids: &[String], key: &str) -> Result<Option<String>, Fault> {
        self.recorder.find_sent(instance_ids, key).await
    }
}

#[async_trait]
impl Dns for Wire {
    async fn change(&self, zone_id: &Sensitive, changes: &[RecordChange]) -> Result<(), Fault> {
        for c in changes {
            for v in &c.values {
                self.keep(format!("Route53 {} {}", c.name.expose(), v.expose()));
            }
        }
        if zone_id.expose() == "ZREJECT" {
            let value = changes[0].values[0].expose();
            return Err(Fault::Service {
                operation: "ChangeResourceRecordSets".into(),
                code: Some("InvalidChangeBatch".into()),
                status: Some(400),
                message: format!("Invalid Resource Record: encountered with '{value}'"),
                kind: lifecycle::FaultKind::Invalid,
            });
        }
        self.recorder.change(zone_id, changes).await
    }
}

#[async_trait]
impl Reporter for Wire {
    async fn publish(
        &self,
        topic_arn: &Sensitive,
        subject: &str,
        message: &str,
    ) -> Result<(), Fault> {
        self.recorder.publish(topic_arn, subject, message).await
    }
}

#[async_trait]
impl Secrets for Wire {
    async fn read(&self, name: &Sensitive, decrypt: bool) -> Result<String, Fault> {
        self.recorder.read(name, decrypt).await?;
        Ok(CANARY_PARAM.to_owned())
    }
}

#[async_trait]
impl Snapshots for Wire {
    async fn create(&self, request: &SnapshotRequest) -> Result<String, Fault> {
        self.recorder.create(request).await
    }

    async fn wait_completed(
        &self,
        snapshot_id: &str,
        until: std::time::SystemTime,
    ) -> Result<(), Fault> {
        self.recorder.wait_completed(snapshot_id, until).await
    }
}

/// Every log line, every level.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn assert_no_canary(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(
            !text.contains(canary),
            "{canary} leaked into {what}:\n{text}"
        );
    }
}

fn canary_services(store: &LocalStore, wire: &Wire) -> Services {
    let clock = Arc::new(ManualClock::default());
    Services::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(wire.recorder.clone()),
        Arc::new(wire.clone()),
        Arc::new(wire.clone()),
        Arc::new(wire.clone()),
        Arc::new(wire.clone()),
        Some(Arc::new(wire.clone())),
        clock,
    )
}

#[tokio::test]
async fn canaries_reach_aws_and_nothing_else() {
    let logs = Logs::default();
    let _guard = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish()
        .set_default();

    let store = store_with(
        "finished_cloud_init",
        json!({"WorkerToken": CANARY_TOKEN, "ApiKey": CANARY_API}),
    );
    let wire = Wire {
        recorder: Recorder::default(),
        log: WireLog::default(),
    };

    // The launch: the parameter is read, values are rendered and stored, the command sent.
    let d = dispatcher(CANARY_CONFIG, canary_services(&store, &wire));
    let launched = d.handle(launch("i-1"), Deadline::NONE).await;
    assert_eq!(launched.error, None, "{launched:?}");
    assert_eq!(launched.final_state, "joining");
    let records: Vec<Map<String, Value>> = store
        .items()
        .unwrap()
        .into_iter()
        .filter(|i| i.get("ItemType").and_then(Value::as_str) == Some("command"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = serde_json::to_string(&records).unwrap();
    assert_no_canary("the stored command record", &record);
    assert!(
        record.contains("docker swarm join --token *** 10.0.0.10:2377"),
        "{record}"
    );
    let command_id = records[0]["Ident"].as_str().unwrap().to_owned();

    // A later invocation: the command's status event, on a new dispatcher. Route 53 refuses
    // a batch with an error that echoes the secret; the trigger ignores the error.
    let d = dispatcher(CANARY_CONFIG, canary_services(&store, &wire));
    let done = d
        .handle(command(&command_id, "Success"), Deadline::NONE)
        .await;
    assert_eq!(done.error, None, "{done:?}");
    assert_eq!(done.final_state, "checked");
    assert_eq!(done.errors.len(), 1, "{done:?}");
    assert!(
        done.errors[0]
            .message
            .contains("encountered with '***/***'"),
        "{:?}",
        done.errors[0]
    );

    // Reports (errors included), as the CLI and the Lambda would print them.
    for r in [&launched, &done] {
        assert_no_canary("a report", &serde_json::to_string(r).unwrap());
    }
    let mut failed = Report::failed(
        done.errors[0].message.clone(),
        lifecycle::FaultKind::Invalid,
    );
    failed.errors = done.errors.clone();
    assert_no_canary("an error report", &serde_json::to_string(&failed).unwrap());

    // The recorded calls, SNS messages among them.
    let calls = wire.recorder.calls();
    let shown = serde_json::to_string(&calls).unwrap();
    assert_no_canary("the recorded calls", &shown);
    let messages = sns_messages(&calls);
    assert_eq!(messages.len(), 4, "{messages:?} {done:?}");
    for m in &messages {
        assert_no_canary("an SNS message", m);
    }
    assert_eq!(
        messages[0], "cmd=*** key=*** api=*** label=ip-10.0.0.10",
        "same invocation"
    );
    assert_eq!(messages[2], messages[0], "later invocation");
    let summary: Value = serde_json::from_str(&messages[3]).unwrap();
    for p in ["WorkerToken", "ApiKey", "ClusterKey", "JoinCommand"] {
        assert_eq!(summary["node"]["properties"][p], "***", "{p}: {summary}");
    }
    assert_eq!(summary["node"]["properties"]["Label"], "ip-10.0.0.10");
    let subjects: Vec<&Value> = calls
        .iter()
        .filter(|c| c.operation == "Publish" && c.input["Message"] == messages[0])
        .map(|c| &c.input["Subject"])
        .collect();
    assert_eq!(subjects.len(), 2);
    for s in subjects {
        assert_eq!(s, "EC2 Instance-launch Lifecycle Action ***");
    }
    assert!(shown.contains("join ***"), "the SSM comment: {shown}");

    // Every log line, TRACE included.
    let log = logs.text();
    assert!(log.contains("command sent and registered"), "{log}");
    assert!(log.contains("encountered with '***/***'"), "{log}");
    assert_no_canary("the logs", &log);

    // Only the AWS calls themselves carried the secrets.
    let wired = wire.log.lock().unwrap().join("\n");
    for expected in [
        format!("SendCommand docker swarm join --token {CANARY_TOKEN} 10.0.0.10:2377"),
        format!("SendCommand echo {CANARY_PARAM} {CANARY_API} > /etc/cluster"),
        format!("SendCommand join --token {CANARY_TOKEN} --key {CANARY_PARAM}"),
        format!("Route53 i-1.key.example \"{CANARY_PARAM}\""),
        format!("Route53 i-1.join.example \"join --token {CANARY_TOKEN} --key {CANARY_PARAM}\""),
        format!("Route53 i-1.bad.example {CANARY_PARAM}/{CANARY_TOKEN}"),
    ] {
        assert!(wired.contains(&expected), "{expected} not sent:\n{wired}");
    }

    // The node keeps the real values (later tasks need them) and which of them are secret.
    let item = node_item(&store);
    assert_eq!(item["ClusterKey"], CANARY_PARAM);
    assert_eq!(
        item["JoinCommand"],
        format!("join --token {CANARY_TOKEN} --key {CANARY_PARAM}")
    );
    assert_eq!(
        item[ATTR_SECRET_PROPERTIES],
        json!(["ClusterKey", "JoinCommand"])
    );
}
