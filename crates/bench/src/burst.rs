//! The burst (issue 11, item 3): for each of `--nodes` instances of one Auto Scaling group,
//! a launch delivered twice at once, then — as soon as the command it sent can be seen — the
//! command's status events `InProgress`, `Success` and `Success` again, in a shuffled order,
//! at once: five events per node, every node at the same time, through one in-process
//! [`Dispatcher`] on the AWS backends, whose requests go through a counting proxy to moto.
//!
//! Checked afterwards: every node is `ready`; the states each node passed, over all its
//! reports, are the six of the chain, each once; at the proxy, exactly one successful
//! `SendCommand` and one successful `CompleteLifecycleAction` per node (and moto's own
//! record of completions agrees); no report is an invocation error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use lifecycle::event::parse_value;
use lifecycle::{Deadline, Definition};
use lifecycle_aws::{DynamoStore, Timeouts};
use lifecycle_runtime::{Dispatcher, Options, Registry, Report};
use serde_json::{Value, json};

use crate::http;
use crate::proxy::Proxy;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// The hooks are `GROUP-on-launch` and `GROUP-on-terminate`.
const GROUP: &str = "bench-workers";
const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
/// The chain of the SSM launch, in order, after `finished_cloud_init`.
const CHAIN: [&str; 6] = [
    "join_cluster",
    "joined_cluster",
    "updating_dns",
    "dns_updated",
    "completing_lifecycle",
    "ready",
];

/// Options of `lifecycle-bench burst`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// moto's endpoint, `http://127.0.0.1:PORT` (it is reset first).
    #[arg(long)]
    moto: String,
    /// The configuration: the SSM launch chain of scripts/bench.d/lifecycle-ssm.yaml.
    #[arg(long)]
    config: PathBuf,
    /// How many nodes (instances of the group); five events each.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// The state table.
    #[arg(long, default_value = "bench-lifecycle-state")]
    table: String,
    /// Worker threads of the async runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seed of the shuffles and jitter.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Write the figures as JSON to this file too.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs the burst and prints (and writes) its figures.
///
/// # Errors
/// A setup step that failed, or a check that did not hold.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let result = rt.block_on(burst(args))?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if result["ok"] != json!(true) {
        bail!("the burst's checks failed: {}", result["problems"]);
    }
    Ok(())
}

/// An SDK configuration for `endpoint` with fake credentials and the function's limits.
async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    let t = Timeouts::default();
    let limits = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(t.operation)
        .operation_attempt_timeout(t.attempt)
        .connect_timeout(t.connect)
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .timeout_config(limits)
        .load()
        .await
}

/// A query-protocol request straight to moto (the harness's own, never counted).
fn query(port: u16, service: &str, form: &str) -> anyhow::Result<(u16, String)> {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    Ok(http::request(
        port,
        "POST",
        "/",
        &[
            ("Authorization", auth.as_str()),
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ],
        form.as_bytes(),
    )?)
}

/// A random UUID (version 4 shape), as lifecycle action tokens are.
fn uuid(rng: &mut fastrand::Rng) -> String {
    let a = rng.u128(..);
    let hex = format!("{a:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn lifecycle_event(id: &str, instance: &str, token: &str) -> Value {
    json!({
        "version": "0", "id": id,
        "detail-type": "EC2 Instance-launch Lifecycle Action",
        "source": "aws.autoscaling", "account": ACCOUNT, "time": "2026-11-30T10:00:00Z",
        "region": REGION,
        "resources": [format!("arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:1:autoScalingGroupName/{GROUP}")],
        "detail": {
            "LifecycleActionToken": token,
            "AutoScalingGroupName": GROUP,
            "LifecycleHookName": format!("{GROUP}-on-launch"),
            "EC2InstanceId": instance,
            "LifecycleTransition": LAUNCHING,
        }
    })
}

fn status_event(id: &str, command: &str, instance: &str, status: &str) -> Value {
    json!({
        "version": "0", "id": id,
        "detail-type": "EC2 Command Status-change Notification",
        "source": "aws.ssm", "account": ACCOUNT, "time": "2026-11-30T10:01:00Z",
        "region": REGION,
        "resources": [format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance}")],
        "detail": {
            "command-id": command,
            "document-name": "AWS-RunShellScript",
            "parameters": json!({"commands": ["# sent by autoscaling-lifecycle"]}).to_string(),
            "status": status,
        }
    })
}

/// What one delivery gave.
struct Delivery {
    node: usize,
    kind: &'static str,
    latency: Duration,
    report: Report,
}

async fn deliver(
    d: Arc<Dispatcher>,
    node: usize,
    kind: &'static str,
    event: Value,
) -> anyhow::Result<Delivery> {
    let record = parse_value(&event)
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no record in the {kind} event"))?;
    let started = Instant::now();
    let report = d.dispatch(record, Deadline::NONE).await;
    Ok(Delivery {
        node,
        kind,
        latency: started.elapsed(),
        report,
    })
}

/// Every delivery at once, each on a task of its own; answers in order.
async fn at_once(
    d: &Arc<Dispatcher>,
    node: usize,
    events: Vec<(&'static str, Value)>,
) -> anyhow::Result<Vec<Delivery>> {
    let tasks: Vec<_> = events
        .into_iter()
        .map(|(kind, event)| tokio::spawn(deliver(d.clone(), node, kind, event)))
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(
            t.await
                .map_err(|e| anyhow!("a delivery task failed: {e}"))??,
        );
    }
    Ok(out)
}

/// The commands SSM holds for `instance` (straight to moto).
async fn commands_of(ssm: &aws_sdk_ssm::Client, instance: &str) -> anyhow::Result<Vec<String>> {
    let listed = ssm
        .list_commands()
        .instance_id(instance)
        .send()
        .await
        .context("ListCommands")?;
    Ok(listed
        .commands()
        .iter()
        .filter_map(|c| c.command_id().map(str::to_owned))
        .collect())
}

/// One node's five events: the launch twice at once, then its command's three status events
/// shuffled, at once.
async fn node_events(
    d: Arc<Dispatcher>,
    ssm: aws_sdk_ssm::Client,
    node: usize,
    instance: String,
    token: String,
    seed: u64,
) -> anyhow::Result<Vec<Delivery>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    tokio::time::sleep(Duration::from_micros(rng.u64(0..2000))).await;
    let launch = lifecycle_event(&format!("launch-{node}"), &instance, &token);
    let mut out = at_once(
        &d,
        node,
        vec![("launch", launch.clone()), ("launch (duplicate)", launch)],
    )
    .await?;
    // The event source would send the status events once the command ran; poll for it
    // (straight to moto, not counted), bounded.
    let started = Instant::now();
    let command = loop {
        let sent = commands_of(&ssm, &instance).await?;
        if let Some(c) = sent.first() {
            break c.clone();
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("node {node} ({instance}): no command sent after its launch");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut statuses = [
        ("InProgress", "status InProgress", format!("st-{node}-1")),
        ("Success", "status Success", format!("st-{node}-2")),
        (
            "Success",
            "status Success (duplicate)",
            format!("st-{node}-2"),
        ),
    ];
    rng.shuffle(&mut statuses);
    let events = statuses
        .iter()
        .map(|(status, kind, id)| (*kind, status_event(id, &command, &instance, status)))
        .collect();
    out.extend(at_once(&d, node, events).await?);
    Ok(out)
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

async fn burst(args: &Args) -> anyhow::Result<Value> {
    let moto_port = http::loopback_port(&args.moto)?;
    let (status, body) = http::request(moto_port, "POST", "/moto-api/reset", &[], b"")?;
    if status != 200 {
        bail!("moto reset: {status} {body}");
    }
    let direct = sdk(&args.moto).await;
    let n = args.nodes;
    let mut rng = fastrand::Rng::with_seed(args.seed);

    // The world: table, topic, group of n instances with hooks, node items, active actions.
    DynamoStore::new(&direct, &args.table)
        .init()
        .await
        .map_err(|e| anyhow!("table: {e}"))?;
    aws_sdk_sns::Client::new(&direct)
        .create_topic()
        .name("bench-lifecycle-reports")
        .send()
        .await
        .context("CreateTopic")?;
    let asg = aws_sdk_autoscaling::Client::new(&direct);
    asg.create_launch_configuration()
        .launch_configuration_name(format!("{GROUP}-lc"))
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .context("CreateLaunchConfiguration")?;
    let size = i32::try_from(n).context("too many nodes")?;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(GROUP)
        .launch_configuration_name(format!("{GROUP}-lc"))
        .min_size(0)
        .max_size(size)
        .desired_capacity(size)
        .availability_zones(format!("{REGION}a"))
        .send()
        .await
        .context("CreateAutoScalingGroup")?;
    for (suffix, transition) in [("on-launch", LAUNCHING), ("on-terminate", TERMINATING)] {
        asg.put_lifecycle_hook()
            .auto_scaling_group_name(GROUP)
            .lifecycle_hook_name(format!("{GROUP}-{suffix}"))
            .lifecycle_transition(transition)
            .heartbeat_timeout(900)
            .send()
            .await
            .context("PutLifecycleHook")?;
    }
    let groups = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(GROUP)
        .send()
        .await
        .context("DescribeAutoScalingGroups")?;
    let instances: Vec<String> = groups
        .auto_scaling_groups()
        .first()
        .map(|g| {
            g.instances()
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if instances.len() != n {
        bail!("the group has {} instances, not {n}", instances.len());
    }
    let ddb = aws_sdk_dynamodb::Client::new(&direct);
    let mut tokens = Vec::with_capacity(n);
    for (i, instance) in instances.iter().enumerate() {
        ddb.put_item()
            .table_name(&args.table)
            .item("Ident", AttributeValue::S(instance.clone()))
            .item(
                "ItemStatus",
                AttributeValue::S("finished_cloud_init".into()),
            )
            .item("ItemType", AttributeValue::S("worker".into()))
            .item(
                "InstanceIp",
                AttributeValue::S(format!("10.1.{}.{}", i / 250, i % 250 + 1)),
            )
            .item(
                "WorkerToken",
                AttributeValue::S("SWMTKN-1-bench0secret0never0logged".into()),
            )
            .send()
            .await
            .context("PutItem (node)")?;
        let token = uuid(&mut rng);
        let form = format!(
            "Action=RegisterTestLifecycleAction&Version=2011-01-01&AutoScalingGroupName={GROUP}&LifecycleHookName={GROUP}-on-launch&InstanceId={instance}&LifecycleActionToken={token}&LifecycleTransition=autoscaling%3AEC2_INSTANCE_LAUNCHING"
        );
        let (status, body) = query(moto_port, "autoscaling", &form)?;
        if status != 200 {
            bail!("RegisterTestLifecycleAction: {status} {body}");
        }
        tokens.push(token);
    }

    // The dispatcher, on the AWS backends, through the counting proxy.
    let proxy = Proxy::start(&args.moto, true)?;
    let counted = sdk(&proxy.endpoint()).await;
    let yaml = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let def =
        Definition::from_yaml(&yaml).map_err(|e| anyhow!("{}: {e}", args.config.display()))?;
    let services = lifecycle_aws::services(&counted, &args.table, &Timeouts::default());
    let mut options = Options::default();
    options.busy_wait = Duration::from_secs(60);
    let dispatcher = Arc::new(
        Dispatcher::new(Arc::new(def), &Registry::new(), services, options)
            .map_err(|e| anyhow!("{e}"))?,
    );
    let ssm = aws_sdk_ssm::Client::new(&direct);
    let _ = proxy.take();

    let started = Instant::now();
    let tasks: Vec<_> = instances
        .iter()
        .zip(&tokens)
        .enumerate()
        .map(|(i, (instance, token))| {
            tokio::spawn(node_events(
                dispatcher.clone(),
                ssm.clone(),
                i,
                instance.clone(),
                token.clone(),
                args.seed.wrapping_mul(1000).wrapping_add(i as u64),
            ))
        })
        .collect();
    let mut deliveries = Vec::with_capacity(n * 5);
    let mut problems: Vec<String> = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(d)) => deliveries.extend(d),
            Ok(Err(e)) => problems.push(format!("{e:#}")),
            Err(e) => problems.push(format!("a node's task failed: {e}")),
        }
    }
    let wall = started.elapsed();
    let tally = proxy.take();

    // Checks.
    let mut passed: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut stopped: BTreeMap<String, u64> = BTreeMap::new();
    for d in &deliveries {
        passed
            .entry(d.node)
            .or_default()
            .extend(d.report.passed_states.iter().cloned());
        let reason = serde_json::to_value(d.report.stopped_by)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", d.report.stopped_by));
        *stopped.entry(format!("{}: {reason}", d.kind)).or_default() += 1;
        if let Some(e) = &d.report.error {
            problems.push(format!("node {} {}: invocation error {e}", d.node, d.kind));
        }
    }
    let mut transitions = 0usize;
    for (i, instance) in instances.iter().enumerate() {
        let states = passed.remove(&i).unwrap_or_default();
        transitions += states.len();
        let mut sorted = states.clone();
        sorted.sort();
        let mut expected: Vec<String> = CHAIN.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        if sorted != expected {
            problems.push(format!("node {i} ({instance}) passed {states:?}"));
        }
    }
    let mut sends: BTreeMap<String, u64> = BTreeMap::new();
    let mut completes: BTreeMap<String, u64> = BTreeMap::new();
    let by_token: BTreeMap<&str, &str> = tokens
        .iter()
        .map(String::as_str)
        .zip(instances.iter().map(String::as_str))
        .collect();
    for k in tally.kept.iter().filter(|k| k.status < 300) {
        if k.operation == "ssm:SendCommand" {
            let body: Value = serde_json::from_str(&k.body).unwrap_or(Value::Null);
            let mut ids: Vec<String> = body["InstanceIds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for t in body["Targets"].as_array().into_iter().flatten() {
                if t["Key"] == "InstanceIds" {
                    ids.extend(
                        t["Values"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str().map(str::to_owned)),
                    );
                }
            }
            for id in ids {
                *sends.entry(id).or_default() += 1;
            }
        } else {
            let field = |name: &str| {
                k.body
                    .split('&')
                    .find_map(|p| p.strip_prefix(&format!("{name}=")).map(str::to_owned))
            };
            let instance = field("InstanceId").or_else(|| {
                field("LifecycleActionToken")
                    .and_then(|t| by_token.get(t.as_str()).map(|i| (*i).to_owned()))
            });
            *completes
                .entry(instance.unwrap_or_else(|| "?".into()))
                .or_default() += 1;
        }
    }
    let (status, body) = query(
        moto_port,
        "autoscaling",
        "Action=DescribeTestLifecycleActions&Version=2011-01-01",
    )?;
    let moto_completions: Value = if status == 200 {
        serde_json::from_str(&body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let mut moto_completed: BTreeMap<String, u64> = BTreeMap::new();
    for c in moto_completions["completions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(i) = c["instance"].as_str() {
            *moto_completed.entry(i.to_owned()).or_default() += 1;
        }
    }
    let mut ready = 0usize;
    for (i, instance) in instances.iter().enumerate() {
        let item = ddb
            .get_item()
            .table_name(&args.table)
            .key("Ident", AttributeValue::S(instance.clone()))
            .consistent_read(true)
            .send()
            .await
            .context("GetItem (check)")?;
        let state = item
            .item()
            .and_then(|i| i.get("ItemStatus"))
            .and_then(|s| s.as_s().ok())
            .cloned();
        if state.as_deref() == Some("ready") {
            ready += 1;
        } else {
            problems.push(format!("node {i} ({instance}) ended in {state:?}"));
        }
        for (what, counts) in [
            ("SendCommand", &sends),
            ("CompleteLifecycleAction", &completes),
            ("moto's completions", &moto_completed),
        ] {
            let c = counts.get(instance).copied().unwrap_or(0);
            if c != 1 {
                problems.push(format!("node {i} ({instance}): {c} × {what}"));
            }
        }
    }

    let mut latencies: Vec<Duration> = deliveries.iter().map(|d| d.latency).collect();
    latencies.sort();
    let events = deliveries.len();
    let secs = wall.as_secs_f64();
    let total_calls: u64 = tally.calls.values().sum();
    problems.truncate(20);
    Ok(json!({
        "ok": problems.is_empty() && events == n * 5,
        "nodes": n,
        "events": events,
        "wall_s": secs,
        "events_per_s": events as f64 / secs,
        "transitions": transitions,
        "transitions_per_s": transitions as f64 / secs,
        "latency_ms": {
            "p50": percentile(&latencies, 0.5),
            "p90": percentile(&latencies, 0.9),
            "p99": percentile(&latencies, 0.99),
            "max": percentile(&latencies, 1.0),
        },
        "nodes_ready": ready,
        "send_command_per_node": histogram(&sends, &instances),
        "complete_per_node": histogram(&completes, &instances),
        "moto_completions_per_node": histogram(&moto_completed, &instances),
        "stopped_by": stopped,
        "calls": tally.calls,
        "failed_calls": tally.failed,
        "calls_per_event": total_calls as f64 / events.max(1) as f64,
        "problems": problems,
    }))
}

/// How many nodes had each count: `{"1": 100}` when every node had exactly one.
fn histogram(counts: &BTreeMap<String, u64>, instances: &[String]) -> BTreeMap<String, u64> {
    let mut h = BTreeMap::new();
    for i in instances {
        *h.entry(counts.get(i).copied().unwrap_or(0).to_string())
            .or_default() += 1;
    }
    h
}
