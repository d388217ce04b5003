#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests of the `lifecycle` binary against the command-line contract (SPEC 7) and
//! the behaviour it exposes (SPEC 2–4, 6).
//!
//! Every test runs the built binary. Inputs are the examples (`examples/`), the event fixtures
//! of the core crate (`crates/core/tests/fixtures/`) and small files under `tests/data/`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// paths

fn manifest(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .to_str()
        .expect("paths are UTF-8")
        .to_owned()
}

/// A file under `tests/data/`.
fn data(name: &str) -> String {
    manifest(&format!("tests/data/{name}"))
}

/// An event fixture of the core crate.
fn fixture(name: &str) -> String {
    manifest(&format!("../core/tests/fixtures/{name}"))
}

/// A file of the Docker Swarm example.
fn swarm(rel: &str) -> String {
    manifest(&format!("../../examples/docker-swarm/{rel}"))
}

/// A file of the Kafka example.
fn kafka(rel: &str) -> String {
    manifest(&format!("../../examples/kafka/{rel}"))
}

fn swarm_event(name: &str) -> String {
    swarm(&format!("events/{name}"))
}

/// A fresh directory, removed when dropped.
fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("lifecycle-cli-test-{tag}-"))
        .tempdir()
        .expect("create temp dir")
}

/// The path of `name` inside `dir`, as a string argument.
fn file_in(dir: &TempDir, name: &str) -> String {
    dir.path().join(name).to_str().expect("UTF-8").to_owned()
}

// ---------------------------------------------------------------------------------------------
// running the binary

/// What one run of `lifecycle` produced.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// stdout parsed as exactly one JSON value (serde_json refuses trailing non-whitespace).
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not exactly one JSON value ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// stdout as one report object, its shape checked against SPEC 7.
    fn report(&self) -> Value {
        let v = self.json();
        assert_report_shape(&v);
        v
    }

    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `lifecycle ARGS` with `RUST_LOG` unset (or set to `rust_log`).
fn run_with_log(args: &[&str], rust_log: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifecycle"));
    cmd.args(args).env_remove("RUST_LOG");
    if let Some(level) = rust_log {
        cmd.env("RUST_LOG", level);
    }
    let out = cmd.output().expect("run the lifecycle binary");
    Run {
        code: out.status.code().expect("the binary exits with a code"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn run(args: &[&str]) -> Run {
    run_with_log(args, None)
}

/// `lifecycle simulate --format json ARGS`.
fn simulate_json(args: &[&str]) -> Run {
    let mut all = vec!["simulate", "--format", "json"];
    all.extend_from_slice(args);
    run(&all)
}

// ---------------------------------------------------------------------------------------------
// report helpers

const STOP_REASONS: &[&str] = &[
    "no_trigger",
    "no_state_change",
    "stop_after_state_change",
    "stop_after_trigger",
    "failure_unhandled",
    "error",
    "not_supported",
    "conflict",
    "deadline",
    "duplicate",
];

/// SPEC 7: at least `initial_state: str, final_state: str, passed_states: [str], tasks: [str],
/// stopped_by: str, error: str|null`, `stopped_by` one of the documented values.
fn assert_report_shape(v: &Value) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("a report is a JSON object: {v}"));
    for key in ["initial_state", "final_state", "stopped_by"] {
        assert!(
            obj.get(key).is_some_and(Value::is_string),
            "`{key}` must be a string: {v}"
        );
    }
    for key in ["passed_states", "tasks"] {
        let list = obj
            .get(key)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("`{key}` must be a list: {v}"));
        assert!(
            list.iter().all(Value::is_string),
            "`{key}` must hold strings: {v}"
        );
    }
    let error = obj
        .get("error")
        .unwrap_or_else(|| panic!("no `error`: {v}"));
    assert!(
        error.is_string() || error.is_null(),
        "`error` must be a string or null: {v}"
    );
    let stopped_by = obj["stopped_by"].as_str().unwrap();
    assert!(
        STOP_REASONS.contains(&stopped_by),
        "undocumented stopped_by {stopped_by:?}: {v}"
    );
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string: {v}"))
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not a list: {v}"))
        .iter()
        .map(|x| x.as_str().expect("a string").to_owned())
        .collect()
}

fn error_text(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("`error` is not set: {v}"))
}

/// The recorded AWS calls as `service:Operation`.
fn calls(v: &Value) -> Vec<String> {
    v["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("`calls` is not a list: {v}"))
        .iter()
        .map(|c| format!("{}:{}", s(c, "service"), s(c, "operation")))
        .collect()
}

/// The inputs of the recorded calls of one operation.
fn call_inputs<'a>(v: &'a Value, operation: &str) -> Vec<&'a Value> {
    v["calls"]
        .as_array()
        .expect("`calls` is a list")
        .iter()
        .filter(|c| c["operation"] == operation)
        .map(|c| &c["input"])
        .collect()
}

fn assert_contains(haystack: &str, needle: &str, what: &str) {
    assert!(
        haystack.contains(needle),
        "{what} should mention {needle:?}:\n{haystack}"
    );
}

/// The swarm manager's `WorkerToken` from `examples/docker-swarm/nodes.json`.
fn swarm_worker_token() -> String {
    let text = std::fs::read_to_string(swarm("nodes.json")).expect("read nodes.json");
    let nodes: Value = serde_json::from_str(&text).expect("nodes.json is JSON");
    let token = nodes
        .as_array()
        .expect("an array of nodes")
        .iter()
        .find_map(|n| n["WorkerToken"].as_str())
        .expect("a node with a WorkerToken");
    assert!(token.len() > 20, "a real-looking token: {token}");
    token.to_owned()
}

const SWARM_STATES: &[&str] = &[
    "finished_cloud_init",
    "joining",
    "joined",
    "labelled",
    "dns_updated",
    "ready",
    "draining",
    "drained",
    "leaving",
    "left",
    "removed",
    "failure",
    "abandoned",
];

// =============================================================================================
// 1. validate

#[test]
fn validate_accepts_both_examples() {
    // --strict: both deploy as the Lambda, which registers no tasks of its own.
    for config in [swarm("lifecycle.yaml"), kafka("lifecycle.yaml")] {
        let r = run(&["validate", "--strict", "--config", &config]);
        r.expect_code(0);
        assert_contains(&r.stdout, "valid", "validate's stdout");
    }
}

#[test]
fn validate_warns_about_unknown_names_naming_transition_and_trigger() {
    let r = run(&["validate", "--config", &data("unknown-names.yaml")]);
    r.expect_code(0);
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 2, "one warning per name:\n{}", r.stderr);
    for (name, key) in [
        ("configure_node", "before"),
        ("cluster_is_healthy", "conditions"),
    ] {
        let line = warnings
            .iter()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no warning names {name}:\n{}", r.stderr));
        assert_contains(line, "transitions[0]", "the warning");
        assert_contains(line, "trigger configure", "the warning (trigger name)");
        assert_contains(line, key, "the warning (key)");
    }
}

#[test]
fn validate_strict_refuses_unknown_names() {
    let r = run(&[
        "validate",
        "--strict",
        "--config",
        &data("unknown-names.yaml"),
    ]);
    r.expect_code(2);
    assert_contains(&r.stderr, "configure_node", "stderr");
    assert_contains(&r.stderr, "cluster_is_healthy", "stderr");
    assert_contains(&r.stderr, "trigger configure", "stderr");
}

/// The first line of `text` that mentions `needle` (to check what one error names).
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line mentions {needle:?}:\n{text}"))
}

#[test]
fn validate_prints_every_error_of_a_configuration_at_once() {
    let r = run(&["validate", "--config", &data("many-errors.yaml")]);
    r.expect_code(2);
    let e = &r.stderr;
    // unknown key: names the transition and the key
    let l = line_with(e, "colour");
    assert_contains(l, "transitions[0]", "the unknown-key error");
    // `conditions: always`: names transition, trigger and key
    let l = line_with(e, "always");
    assert_contains(l, "transitions[1]", "the not-a-list error");
    assert_contains(l, "serve", "the not-a-list error");
    assert_contains(l, "conditions", "the not-a-list error");
    // reserved trigger name: names transition, trigger and key
    let l = line_with(e, "reserved");
    assert_contains(l, "transitions[0]", "the reserved-name error");
    assert_contains(l, "key name", "the reserved-name error");
    // duplicate destination: names both transitions and the key
    let l = line_with(e, "joined` is already");
    assert_contains(l, "transitions[2]", "the duplicate-dest error");
    assert_contains(l, "transitions[0]", "the duplicate-dest error");
    assert_contains(l, "dest", "the duplicate-dest error");
}

#[test]
fn validate_prints_every_shape_error() {
    let r = run(&["validate", "--config", &data("shape-errors.yaml")]);
    r.expect_code(2);
    let e = &r.stderr;
    assert_contains(
        line_with(e, "colour"),
        "top level",
        "the top-level unknown key",
    );
    assert_contains(
        line_with(e, "flavour"),
        "transitions[0]",
        "the transition's unknown key",
    );
    let l = line_with(e, "sparkle");
    assert_contains(l, "transitions[0]", "the trigger's unknown key");
    assert_contains(l, "join", "the trigger's unknown key");
    let l = line_with(e, "always");
    assert_contains(l, "trigger join", "the not-a-list error");
    assert_contains(l, "conditions", "the not-a-list error");
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
}

#[test]
fn validate_prints_every_semantic_error() {
    let r = run(&["validate", "--config", &data("semantic-errors.yaml")]);
    r.expect_code(2);
    let e = &r.stderr;
    let l = line_with(e, "reserved");
    assert_contains(l, "transitions[0]", "the reserved-name error");
    assert_contains(l, "key name", "the reserved-name error");
    let l = line_with(e, "already the destination");
    assert_contains(l, "transitions[1]", "the duplicate-dest error");
    assert_contains(l, "transitions[0]", "the duplicate-dest error");
    assert_contains(l, "key dest", "the duplicate-dest error");
}

#[test]
fn validate_refuses_a_file_that_is_not_yaml() {
    let r = run(&["validate", "--config", &data("not-yaml.yaml")]);
    r.expect_code(2);
    assert_contains(&r.stderr, "YAML", "stderr");
    assert_contains(&r.stderr, "not-yaml.yaml", "stderr");
}

#[test]
fn validate_refuses_a_missing_file() {
    let dir = temp_dir("validate-missing");
    let missing = file_in(&dir, "no-such-config.yaml");
    let r = run(&["validate", "--config", &missing]);
    r.expect_code(2);
    assert_contains(&r.stderr, "no-such-config.yaml", "stderr");
}

// =============================================================================================
// 2. graph

#[test]
fn graph_mermaid_shows_every_state_and_the_initial_state() {
    let r = run(&["graph", "--config", &swarm("lifecycle.yaml")]);
    r.expect_code(0);
    let out = &r.stdout;
    assert!(
        out.trim_start().starts_with("stateDiagram-v2"),
        "a Mermaid state diagram:\n{out}"
    );
    for state in SWARM_STATES {
        assert_contains(out, state, "the Mermaid diagram");
    }
    let initial = line_with(out, "[*] -->");
    assert_contains(initial, "finished_cloud_init", "the initial-state arrow");

    let explicit = run(&[
        "graph",
        "--config",
        &swarm("lifecycle.yaml"),
        "--format",
        "mermaid",
    ]);
    explicit.expect_code(0);
    assert_eq!(explicit.stdout, r.stdout, "mermaid is the default format");
}

#[test]
fn graph_draws_a_configuration_with_unregistered_names() {
    // `snapshot_volumes` is registered by the operator's program, not built in
    let r = run(&["graph", "--config", &data("registered-backup.yaml")]);
    r.expect_code(0);
    assert_contains(&r.stdout, "backed_up", "the diagram");
}

#[test]
fn graph_dot_is_a_digraph() {
    let r = run(&[
        "graph",
        "--config",
        &swarm("lifecycle.yaml"),
        "--format",
        "dot",
    ]);
    r.expect_code(0);
    assert!(
        r.stdout.trim_start().starts_with("digraph"),
        "a Graphviz digraph:\n{}",
        r.stdout
    );
    for state in SWARM_STATES {
        assert_contains(&r.stdout, &format!("\"{state}\""), "the dot diagram");
    }
    assert_contains(
        &r.stdout,
        "\"finished_cloud_init\" -> \"joining\"",
        "the dot diagram",
    );
}

#[test]
fn graph_refuses_an_invalid_configuration() {
    for config in ["semantic-errors.yaml", "shape-errors.yaml", "not-yaml.yaml"] {
        let r = run(&["graph", "--config", &data(config)]);
        r.expect_code(2);
        assert!(r.stdout.is_empty(), "no diagram for {config}: {}", r.stdout);
        assert_contains(&r.stderr, config, "stderr");
    }
}

// =============================================================================================
// 3. simulate: the JSON report, logs on stderr, secrets

#[test]
fn simulate_swarm_launch_prints_one_json_report_and_logs_only_to_stderr() {
    let r = run_with_log(
        &[
            "simulate",
            "--config",
            &swarm("lifecycle.yaml"),
            "--event",
            &swarm_event("launch-worker.json"),
            "--nodes",
            &swarm("nodes.json"),
            "--format",
            "json",
        ],
        Some("info"),
    );
    r.expect_code(0);
    let v = r.report();
    assert_eq!(s(&v, "initial_state"), "finished_cloud_init");
    assert_eq!(s(&v, "final_state"), "joining");
    assert_eq!(strings(&v, "passed_states"), ["joining"]);
    assert_eq!(s(&v, "stopped_by"), "stop_after_state_change");
    assert!(v["error"].is_null(), "no error: {v}");
    let tasks = strings(&v, "tasks");
    assert!(tasks.contains(&"join_swarm".to_owned()), "{tasks:?}");
    assert!(
        calls(&v).contains(&"ssm:SendCommand".to_owned()),
        "the join command would be sent: {v}"
    );
    // the logs exist, and they are on stderr (4.2: "transitioning S → D via NAME")
    assert_contains(&r.stderr, "transitioning", "stderr at RUST_LOG=info");
    assert!(
        !r.stdout.contains("INFO") && !r.stdout.contains("transitioning"),
        "no log line on stdout:\n{}",
        r.stdout
    );
}

#[test]
fn simulate_stdout_stays_pure_json_at_trace_level() {
    let r = run_with_log(
        &[
            "simulate",
            "--config",
            &swarm("lifecycle.yaml"),
            "--event",
            &swarm_event("launch-worker.json"),
            "--nodes",
            &swarm("nodes.json"),
            "--format",
            "json",
        ],
        Some("trace"),
    );
    r.expect_code(0);
    r.report();
    for marker in ["TRACE", "DEBUG", "INFO", "WARN"] {
        assert!(
            !r.stdout.contains(marker),
            "log marker {marker} on stdout:\n{}",
            r.stdout
        );
    }
}

#[test]
fn simulate_never_prints_the_swarm_worker_token() {
    let token = swarm_worker_token();
    for format in ["text", "json"] {
        for level in [None, Some("info"), Some("trace")] {
            let r = run_with_log(
                &[
                    "simulate",
                    "--config",
                    &swarm("lifecycle.yaml"),
                    "--event",
                    &swarm_event("launch-worker.json"),
                    "--nodes",
                    &swarm("nodes.json"),
                    "--format",
                    format,
                ],
                level,
            );
            r.expect_code(0);
            assert!(
                !r.stdout.contains(&token) && !r.stderr.contains(&token),
                "the WorkerToken leaked (format {format}, RUST_LOG {level:?}):\nstdout:\n{}\nstderr:\n{}",
                r.stdout,
                r.stderr
            );
            // the command is still reported, with the secret masked
            assert_contains(&r.stdout, "docker swarm join --token", "the report");
            assert_contains(&r.stdout, "10.3.1.10:2377", "the report");
        }
    }
}

/// SPEC 6: properties whose name contains token, secret, password or credential
/// (case-insensitive) never appear in logs, reports or CLI output. The failure path publishes
/// the node in an SNS report, so every property is exposed to the redaction.
#[test]
fn simulate_redacts_secret_properties_in_reports_and_logs() {
    let secrets = [
        "SECRET-join-token-0001",
        "SECRET-db-password-0002",
        "SECRET-api-credential-0003",
        "SECRET-vault-secret-0004",
    ];
    for format in ["text", "json"] {
        let r = run_with_log(
            &[
                "simulate",
                "--config",
                &swarm("lifecycle.yaml"),
                "--event",
                &swarm_event("launch-worker.json"),
                // no manager: join_swarm fails and report_failure publishes the node
                "--nodes",
                &data("worker-with-secrets.json"),
                "--format",
                format,
            ],
            Some("trace"),
        );
        r.expect_code(0);
        assert_contains(&r.stdout, "Publish", "the report");
        assert_contains(&r.stdout, "10.3.5.44", "the published node");
        for secret in secrets {
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret),
                "{secret} leaked ({format}):\nstdout:\n{}\nstderr:\n{}",
                r.stdout,
                r.stderr
            );
        }
    }
}

/// SPEC 9: a value rendered from a secret property, or a decrypted parameter, is secret too,
/// under whatever name it is stored — masked in the report, its calls and SNS messages and the
/// logs (TRACE included), in the invocation that stored it and in a later one (`--store`).
#[test]
fn simulate_keeps_secret_derived_values_masked_across_invocations() {
    // The node's secrets (by name, and by the configuration's `redact:` word), and the
    // recorder's stand-in for the decrypted parameter `/cluster/key`.
    let canaries = [
        "CANARY-cli-5d1e-worker-token",
        "CANARY-cli-a07b-api-key",
        "simulated-value-of:/cluster/key",
    ];
    for format in ["json", "text"] {
        let dir = temp_dir(&format!("secrets-{format}"));
        let store = file_in(&dir, "state.redb");
        let config = data("secrets-taint.yaml");
        let nodes = data("worker-with-canary.json");
        let mut runs = Vec::new();
        for (event, extra) in [
            ("launch-worker.json", vec!["--nodes", nodes.as_str()]),
            ("terminate-worker.json", vec![]),
        ] {
            let event = swarm_event(event);
            let mut args = vec![
                "simulate", "--config", &config, "--event", &event, "--store", &store, "--format",
                format,
            ];
            args.extend(extra);
            let r = run_with_log(&args, Some("trace"));
            r.expect_code(0);
            for canary in canaries {
                assert!(
                    !r.stdout.contains(canary) && !r.stderr.contains(canary),
                    "{canary} leaked ({format}):\nstdout:\n{}\nstderr:\n{}",
                    r.stdout,
                    r.stderr
                );
            }
            assert_contains(&r.stderr, "transitioning", "the logs at RUST_LOG=trace");
            runs.push(r);
        }
        if format == "json" {
            for r in &runs {
                let v = r.report();
                assert!(v["error"].is_null(), "{v}");
                let published = call_inputs(&v, "Publish");
                assert_eq!(published.len(), 2, "{v}");
                assert_eq!(
                    published[0]["Message"], "cmd=*** key=*** api=*** label=ip-10.3.5.44",
                    "{v}"
                );
            }
            let v = runs[0].report();
            let sent = call_inputs(&v, "SendCommand");
            assert_eq!(
                sent[0]["Parameters"]["commands"][2],
                // a stored secret-derived property is masked whole
                "*** 10.3.5.44:2377",
                "{v}"
            );
            assert_eq!(sent[0]["Comment"], "join ***", "{v}");
            let dns = call_inputs(&v, "ChangeResourceRecordSets");
            assert_eq!(
                dns[0]["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["ResourceRecords"][0]["Value"],
                "\"***\"",
                "{v}"
            );
            assert_eq!(s(&runs[1].report(), "final_state"), "leaving");
        } else {
            assert_contains(
                &runs[1].stdout,
                "cmd=*** key=*** api=***",
                "the later report",
            );
        }
    }
}

// =============================================================================================
// 4. resuming across invocations with --store

fn swarm_step(store: &str, event: &str, extra: &[&str]) -> Value {
    let config = swarm("lifecycle.yaml");
    let event = swarm_event(event);
    let mut args = vec!["--config", &config, "--event", &event, "--store", store];
    args.extend_from_slice(extra);
    let r = simulate_json(&args);
    r.expect_code(0);
    r.report()
}

#[test]
fn simulate_resumes_the_swarm_lifecycle_from_a_store() {
    let dir = temp_dir("swarm-resume");
    let store = file_in(&dir, "state.redb");
    let nodes = swarm("nodes.json");
    const WORKER: &str = "i-0a1b2c3d4e5f60042";
    const MANAGER: &str = "i-0a1b2c3d4e5f60001";

    // launch: finished_cloud_init -> joining, the join command sent to the worker
    let v = swarm_step(&store, "launch-worker.json", &["--nodes", &nodes]);
    assert_eq!(s(&v, "final_state"), "joining");
    let sent = call_inputs(&v, "SendCommand");
    assert_eq!(sent.len(), 1, "{v}");
    assert_eq!(sent[0]["InstanceIds"], serde_json::json!([WORKER]));

    // the join command succeeded: joining -> ... -> ready, the hook completed with CONTINUE
    let v = swarm_step(&store, "join-succeeded.json", &[]);
    assert_eq!(s(&v, "initial_state"), "joining");
    assert_eq!(s(&v, "final_state"), "ready");
    assert_eq!(
        strings(&v, "passed_states"),
        ["joined", "labelled", "dns_updated", "ready"]
    );
    assert!(v["error"].is_null(), "{v}");
    // 2.5: the command event takes the name of the event that sent the command
    assert_eq!(s(&v, "event"), "EC2 Instance-launch Lifecycle Action");
    assert_eq!(s(&v, "node"), WORKER);
    let tasks = strings(&v, "tasks");
    for t in ["label_node", "publish_dns", "complete_lifecycle_action"] {
        assert!(tasks.contains(&t.to_owned()), "{t} ran: {tasks:?}");
    }
    let completed = call_inputs(&v, "CompleteLifecycleAction");
    assert_eq!(completed.len(), 1, "{v}");
    assert_eq!(completed[0]["LifecycleActionResult"], "CONTINUE");
    assert_eq!(
        completed[0]["LifecycleHookName"],
        "docker-swarm-worker-on-launch"
    );

    // terminate: ready -> draining, the drain command sent to the manager
    let v = swarm_step(&store, "terminate-worker.json", &[]);
    assert_eq!(s(&v, "initial_state"), "ready");
    assert_eq!(s(&v, "final_state"), "draining");
    assert_eq!(s(&v, "stopped_by"), "stop_after_state_change");
    let sent = call_inputs(&v, "SendCommand");
    assert_eq!(sent.len(), 1, "{v}");
    assert_eq!(sent[0]["InstanceIds"], serde_json::json!([MANAGER]));

    // the drain succeeded (the SSM event names the manager; 4.1.2: the worker is loaded)
    let v = swarm_step(&store, "drain-succeeded.json", &[]);
    assert_eq!(s(&v, "node"), WORKER);
    assert_eq!(s(&v, "initial_state"), "draining");
    assert_eq!(s(&v, "final_state"), "leaving");
    assert_eq!(strings(&v, "passed_states"), ["drained", "leaving"]);
    assert_eq!(s(&v, "stopped_by"), "stop_after_state_change");

    // the leave succeeded: leaving -> left -> removed, hook completed, node forgotten
    let v = swarm_step(&store, "leave-succeeded.json", &[]);
    assert_eq!(s(&v, "initial_state"), "leaving");
    assert_eq!(s(&v, "final_state"), "removed");
    assert_eq!(strings(&v, "passed_states"), ["left", "removed"]);
    let tasks = strings(&v, "tasks");
    for t in [
        "withdraw_dns",
        "complete_lifecycle_action",
        "remove_from_db",
    ] {
        assert!(tasks.contains(&t.to_owned()), "{t} ran: {tasks:?}");
    }
    let completed = call_inputs(&v, "CompleteLifecycleAction");
    assert_eq!(completed.len(), 1, "{v}");
    assert_eq!(completed[0]["LifecycleActionResult"], "CONTINUE");
    assert_eq!(
        completed[0]["LifecycleHookName"],
        "docker-swarm-worker-on-terminate"
    );

    // the same status event again: recognised as a duplicate, exit 0 (SPEC 9)
    let v = swarm_step(&store, "leave-succeeded.json", &[]);
    assert_eq!(s(&v, "stopped_by"), "duplicate");
    assert_eq!(s(&v, "duplicate"), "no_trigger in removed");
    assert!(v["error"].is_null(), "{v}");
    assert!(calls(&v).is_empty(), "no side effect: {v}");
}

#[test]
fn simulate_failed_join_abandons_the_launch() {
    let dir = temp_dir("swarm-join-failed");
    let store = file_in(&dir, "state.redb");
    swarm_step(
        &store,
        "launch-worker.json",
        &["--nodes", &swarm("nodes.json")],
    );

    let v = swarm_step(&store, "join-failed.json", &[]);
    assert_eq!(s(&v, "initial_state"), "joining");
    assert_eq!(s(&v, "final_state"), "abandoned");
    assert_eq!(strings(&v, "passed_states"), ["failure", "abandoned"]);
    assert!(
        v["error"].is_null(),
        "failure handling is not an error: {v}"
    );
    let errors = v["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["trigger"] == "join_finished"),
        "the failed trigger is reported: {v}"
    );
    let completed = call_inputs(&v, "CompleteLifecycleAction");
    assert_eq!(completed.len(), 1, "{v}");
    assert_eq!(completed[0]["LifecycleActionResult"], "ABANDON");
    assert!(
        calls(&v).contains(&"sns:Publish".to_owned()),
        "the failure is reported: {v}"
    );
}

// =============================================================================================
// 5. exit codes

#[test]
fn simulate_event_that_is_not_json_is_invalid_input() {
    let args = [
        "--config",
        &swarm("lifecycle.yaml"),
        "--event",
        &data("not-json.json"),
    ];
    let r = simulate_json(&args);
    r.expect_code(2);
    let v = r.report();
    assert_eq!(s(&v, "stopped_by"), "error");
    assert_contains(error_text(&v), "JSON", "the error");

    let mut text_args = vec!["simulate", "--format", "text"];
    text_args.extend_from_slice(&args);
    let r = run(&text_args);
    r.expect_code(2);
    assert_contains(&r.stderr, "JSON", "stderr");
}

#[test]
fn simulate_event_missing_the_instance_id_names_the_field() {
    let r = simulate_json(&[
        "--config",
        &swarm("lifecycle.yaml"),
        "--event",
        &data("launch-missing-instance-id.json"),
        "--nodes",
        &swarm("nodes.json"),
    ]);
    r.expect_code(2);
    let v = r.report();
    assert_contains(error_text(&v), "detail.EC2InstanceId", "the error");
    assert!(calls(&v).is_empty(), "{v}");
}

#[test]
fn simulate_not_supported_events_exit_zero() {
    for event in [
        fixture("foreign-source.json"),
        fixture("hook-test-notification.json"),
        // a non-terminal SSM status must not consume anything
        fixture("eventbridge-ssm-inprogress.json"),
        // a command nobody registered: someone else's
        swarm_event("join-succeeded.json"),
    ] {
        let r = simulate_json(&[
            "--config",
            &swarm("lifecycle.yaml"),
            "--event",
            &event,
            "--nodes",
            &swarm("nodes.json"),
        ]);
        r.expect_code(0);
        let v = r.report();
        assert_eq!(s(&v, "stopped_by"), "not_supported", "{event}: {v}");
        assert!(v["error"].is_null(), "{event}: {v}");
        assert!(calls(&v).is_empty(), "{event}: {v}");
    }
}

#[test]
fn simulate_terminating_a_new_node_is_an_invocation_error() {
    // the worker in nodes.json is in finished_cloud_init: new
    let r = simulate_json(&[
        "--config",
        &swarm("lifecycle.yaml"),
        "--event",
        &swarm_event("terminate-worker.json"),
        "--nodes",
        &swarm("nodes.json"),
    ]);
    r.expect_code(1);
    let v = r.report();
    assert_eq!(s(&v, "stopped_by"), "error");
    assert_contains(error_text(&v), "new nodes cannot terminate", "the error");
    assert!(strings(&v, "passed_states").is_empty(), "{v}");
    assert!(calls(&v).is_empty(), "{v}");
}

#[test]
fn simulate_launching_a_ready_node_is_an_invocation_error() {
    let r = simulate_json(&[
        "--config",
        &swarm("lifecycle.yaml"),
        "--event",
        &swarm_event("launch-worker.json"),
        "--nodes",
        &data("worker-ready.json"),
    ]);
    r.expect_code(1);
    let v = r.report();
    assert_eq!(s(&v, "initial_state"), "ready");
    assert_contains(
        error_text(&v),
        "only new nodes can be launched",
        "the error",
    );
    assert!(calls(&v).is_empty(), "{v}");
}

#[test]
fn simulate_launch_from_a_warm_pool_passes_the_guard() {
    // 4.1.5: an instance leaving a warm pool (Origin: WarmPool) was launched before
    let r = simulate_json(&[
        "--config",
        &swarm("lifecycle.yaml"),
        "--event",
        &fixture("sqs-launch.json"),
        "--nodes",
        &data("warm-pool-worker-ready.json"),
    ]);
    r.expect_code(0);
    let v = r.report();
    assert_eq!(s(&v, "initial_state"), "ready");
    assert!(v["error"].is_null(), "{v}");
}

#[test]
fn simulate_batch_prints_one_report_per_record_in_order() {
    // sqs-batch.json: a scheduled rule `hourly-reconcile` (no such state in the swarm config:
    // "no trigger for the current state fails", exit 1), a launch without EC2InstanceId
    // (invalid input, exit 2) and a Pending SSM status (not supported, exit 0).
    let r = simulate_json(&[
        "--config",
        &swarm("lifecycle.yaml"),
        "--event",
        &fixture("sqs-batch.json"),
    ]);
    r.expect_code(2);
    let v = r.json();
    let reports = v.as_array().expect("a batch prints a JSON array");
    assert_eq!(reports.len(), 3, "{v}");
    for report in reports {
        assert_report_shape(report);
    }
    assert_eq!(s(&reports[0], "initial_state"), "hourly-reconcile");
    assert_eq!(s(&reports[0], "stopped_by"), "error");
    assert_contains(error_text(&reports[0]), "no trigger", "record 1");
    assert_eq!(s(&reports[1], "stopped_by"), "error");
    assert_contains(
        error_text(&reports[1]),
        "Records[1].detail.EC2InstanceId",
        "record 2",
    );
    assert_eq!(s(&reports[2], "stopped_by"), "not_supported");
    assert!(reports[2]["error"].is_null(), "record 3");
}

#[test]
fn simulate_invalid_configuration_still_prints_one_json_object() {
    let r = simulate_json(&[
        "--config",
        &data("semantic-errors.yaml"),
        "--event",
        &swarm_event("launch-worker.json"),
    ]);
    r.expect_code(2);
    let v = r.report();
    assert_contains(error_text(&v), "reserved", "the error");
}

#[test]
fn simulate_missing_event_file_is_invalid_input() {
    let dir = temp_dir("missing-event");
    let missing = file_in(&dir, "no-such-event.json");
    let r = simulate_json(&["--config", &swarm("lifecycle.yaml"), "--event", &missing]);
    r.expect_code(2);
    let v = r.report();
    assert_contains(error_text(&v), "no-such-event.json", "the error");
}

// =============================================================================================
// 6. --outcome

fn kafka_backup(extra: &[&str]) -> Run {
    let config = data("registered-backup.yaml");
    let event = kafka("events/backup-scheduled.json");
    let mut args = vec!["--config", config.as_str(), "--event", event.as_str()];
    args.extend_from_slice(extra);
    simulate_json(&args)
}

#[test]
fn simulate_task_outcome_error_enters_failure_handling() {
    let r = kafka_backup(&["--outcome", "snapshot_volumes=error"]);
    r.expect_code(0);
    let v = r.report();
    assert_eq!(s(&v, "initial_state"), "backup");
    assert_eq!(strings(&v, "passed_states"), ["failure", "failed"]);
    assert_eq!(s(&v, "final_state"), "failed");
    // `failed` has no transition: processing stops there, handled
    assert_eq!(s(&v, "stopped_by"), "no_trigger");
    assert!(v["error"].is_null(), "{v}");
    let errors = v["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e["trigger"] == "snapshot" && e["task"] == "snapshot_volumes"),
        "the failed task is reported: {v}"
    );
}

#[test]
fn simulate_task_outcome_ok_is_the_default() {
    for extra in [&["--outcome", "snapshot_volumes=ok"][..], &[][..]] {
        let r = kafka_backup(extra);
        r.expect_code(0);
        let v = r.report();
        assert_eq!(s(&v, "final_state"), "backed_up", "{extra:?}");
        assert_eq!(strings(&v, "passed_states"), ["backed_up"]);
        assert_eq!(strings(&v, "tasks"), ["snapshot_volumes"]);
        assert!(v["error"].is_null(), "{v}");
    }
}

#[test]
fn simulate_condition_outcomes() {
    let run_with = |outcome: &[&str]| {
        let config = data("outcomes.yaml");
        let event = kafka("events/backup-scheduled.json");
        let mut args = vec!["--config", config.as_str(), "--event", event.as_str()];
        args.extend_from_slice(outcome);
        simulate_json(&args)
    };
    // default: conditions are true
    let r = run_with(&[]);
    r.expect_code(0);
    let v = r.report();
    assert_eq!(s(&v, "final_state"), "backed_up");
    assert_eq!(
        strings(&v, "tasks"),
        ["cluster_is_healthy", "snapshot_volumes"]
    );

    // false: the trigger does not fire, no error
    let r = run_with(&["--outcome", "cluster_is_healthy=false"]);
    r.expect_code(0);
    let v = r.report();
    assert_eq!(s(&v, "final_state"), "backup");
    assert!(strings(&v, "passed_states").is_empty(), "{v}");
    assert_eq!(strings(&v, "tasks"), ["cluster_is_healthy"]);
    assert!(v["error"].is_null(), "{v}");

    // error: failure handling
    let r = run_with(&["--outcome", "cluster_is_healthy=error"]);
    r.expect_code(0);
    let v = r.report();
    assert_eq!(strings(&v, "passed_states"), ["failure", "gave_up"]);

    // a condition does not take a task's outcome
    run_with(&["--outcome", "cluster_is_healthy=ok"]).expect_code(2);
}

#[test]
fn simulate_refuses_bad_outcome_flags() {
    for (flag, mention) in [
        ("nope", "nope"),
        ("snapshot_volumes=maybe", "maybe"),
        ("snapshot_volumes=true", "snapshot_volumes"),
        (
            "complete_lifecycle_action=error",
            "complete_lifecycle_action",
        ),
        ("not_in_config=ok", "not_in_config"),
    ] {
        let r = kafka_backup(&["--outcome", flag]);
        r.expect_code(2);
        assert_contains(&r.stderr, mention, &format!("stderr for --outcome {flag}"));
        let v = r.report();
        assert_contains(error_text(&v), "--outcome", "the JSON error");
    }
}

// =============================================================================================
// 7. --nodes and --commands

#[test]
fn simulate_refuses_malformed_node_files() {
    for (file, mention) in [
        ("node-missing-ident.json", "Ident"),
        ("node-status-not-string.json", "ItemStatus"),
        ("not-json.json", "not JSON"),
        ("node-not-an-object.json", "[1]"),
    ] {
        let r = simulate_json(&[
            "--config",
            &swarm("lifecycle.yaml"),
            "--event",
            &swarm_event("launch-worker.json"),
            "--nodes",
            &data(file),
        ]);
        r.expect_code(2);
        assert_contains(&r.stderr, mention, &format!("stderr for {file}"));
        assert_contains(&r.stderr, file, &format!("stderr for {file}"));
        let v = r.report();
        assert_contains(error_text(&v), mention, &format!("the error for {file}"));
    }
}

#[test]
fn simulate_refuses_malformed_command_files() {
    for (file, mention) in [
        ("command-missing-ident.json", "Ident"),
        ("command-bad-commands.json", "Commands"),
        ("not-json.json", "not JSON"),
    ] {
        let r = simulate_json(&[
            "--config",
            &swarm("lifecycle.yaml"),
            "--event",
            &swarm_event("join-succeeded.json"),
            "--commands",
            &data(file),
        ]);
        r.expect_code(2);
        assert_contains(&r.stderr, mention, &format!("stderr for {file}"));
        assert_contains(&r.stderr, file, &format!("stderr for {file}"));
    }
}

fn node_fixture_secrets() -> Vec<String> {
    let text = std::fs::read_to_string(fixture("node-worker-ready.json")).expect("read node");
    let node: Value = serde_json::from_str(&text).expect("JSON");
    ["WorkerToken", "ManagerToken"]
        .iter()
        .map(|k| node[k].as_str().expect("a token").to_owned())
        .collect()
}

/// Seeds a command record and its node, then feeds the command's status event.
fn resume_seeded_command(commands: &str) -> Run {
    run_with_log(
        &[
            "simulate",
            "--format",
            "json",
            "--config",
            &data("commands.yaml"),
            "--event",
            &fixture("sns-command-status-change.json"),
            "--commands",
            commands,
            "--nodes",
            &data("node-worker-joining.json"),
        ],
        Some("trace"),
    )
}

fn assert_resumed_from_record(r: &Run) -> Value {
    r.expect_code(0);
    let v = r.report();
    // 4.1.2: the node of the record's lifecycle data, not the instance in `resources`
    assert_eq!(s(&v, "node"), "i-007de616626a946ce", "{v}");
    assert_eq!(s(&v, "initial_state"), "joining");
    assert_eq!(s(&v, "final_state"), "joined");
    assert_eq!(strings(&v, "passed_states"), ["joined"]);
    // 4.1.1: is_launching comes from the lifecycle event that sent the command
    let tasks = strings(&v, "tasks");
    assert_eq!(
        &tasks[..3],
        ["is_command", "is_launching", "is_terminating"]
    );
    assert!(v["error"].is_null(), "{v}");
    for secret in node_fixture_secrets() {
        assert!(
            !r.stdout.contains(&secret) && !r.stderr.contains(&secret),
            "a token of node-worker-ready.json leaked"
        );
    }
    v
}

#[test]
fn simulate_resumes_from_a_seeded_command_record() {
    let r = resume_seeded_command(&data("command-join-cluster-named.json"));
    let v = assert_resumed_from_record(&r);
    // 2.3 / 2.5: the event is renamed from the record's EventName
    assert_eq!(s(&v, "event"), "EC2 Instance-launch Lifecycle Action");
}

#[test]
fn simulate_reads_command_records_tolerantly() {
    // NotificationMetadata as a JSON string, Commands and RunningOn as lists, no ItemType
    let r = resume_seeded_command(&data("command-join-cluster-tolerant.json"));
    let v = assert_resumed_from_record(&r);
    assert_eq!(s(&v, "event"), "EC2 Instance-launch Lifecycle Action");
}

#[test]
fn simulate_resumes_from_the_real_command_record_fixture() {
    let r = resume_seeded_command(&fixture("command-join-cluster.json"));
    let v = assert_resumed_from_record(&r);
    assert!(!s(&v, "event").is_empty(), "{v}");
}

// =============================================================================================
// 8. --wait-timeout

fn launch_pending(extra: &[&str]) -> Run {
    let config = swarm("lifecycle.yaml");
    let event = swarm_event("launch-worker.json");
    let nodes = data("worker-pending.json");
    let mut args = vec!["--config", &config, "--event", &event, "--nodes", &nodes];
    args.extend_from_slice(extra);
    simulate_json(&args)
}

#[test]
fn simulate_waits_for_a_pending_node_then_times_out() {
    let r = launch_pending(&["--wait-timeout", "30"]);
    r.expect_code(1);
    let v = r.report();
    assert_eq!(s(&v, "stopped_by"), "error");
    let e = error_text(&v);
    assert_contains(e, "waiting", "the error");
    assert_contains(e, "30s", "the error");
    assert_contains(e, "finished_cloud_init", "the error");
    assert!(strings(&v, "passed_states").is_empty(), "{v}");
    assert!(
        !calls(&v).contains(&"ssm:SendCommand".to_owned()),
        "nothing was sent: {v}"
    );
}

#[test]
fn simulate_does_not_wait_by_default() {
    // SPEC 4.1.4: "lifecycle simulate has nothing to wait for: its default timeout is zero";
    // a node still new is then at once a timeout, an invocation error.
    let r = launch_pending(&[]);
    r.expect_code(1);
    let v = r.report();
    assert_contains(error_text(&v), "0s", "the error");
    assert!(calls(&v).is_empty(), "no heartbeat, no command: {v}");
}

#[test]
fn simulate_long_wait_sends_heartbeats() {
    // SPEC 4.1.4: a lifecycle action that waits long is kept alive with heartbeats
    let r = launch_pending(&["--wait-timeout", "600"]);
    r.expect_code(1);
    let v = r.report();
    assert!(
        calls(&v).contains(&"autoscaling:RecordLifecycleActionHeartbeat".to_owned()),
        "{v}"
    );
}

#[test]
fn simulate_terminating_event_never_waits() {
    let r = simulate_json(&[
        "--config",
        &swarm("lifecycle.yaml"),
        "--event",
        &swarm_event("terminate-worker.json"),
        "--nodes",
        &data("worker-pending.json"),
        "--wait-timeout",
        "600",
    ]);
    r.expect_code(1);
    let v = r.report();
    let e = error_text(&v);
    assert_contains(e, "new nodes cannot terminate", "the error");
    assert!(calls(&v).is_empty(), "no heartbeat: {v}");
}

// =============================================================================================
// 9. --help

#[test]
fn help_lists_the_subcommands() {
    let r = run(&["--help"]);
    r.expect_code(0);
    for sub in ["validate", "graph", "simulate"] {
        assert_contains(&r.stdout, sub, "lifecycle --help");
    }
}

#[test]
fn help_of_each_subcommand_explains_every_flag() {
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str]);
    let cases: &[Case] = &[
        ("validate", &["--config", "--strict"], &[]),
        ("graph", &["--config", "--format"], &["mermaid", "dot"]),
        (
            "simulate",
            &[
                "--config",
                "--event",
                "--nodes",
                "--commands",
                "--outcome",
                "--format",
                "--store",
                "--wait-timeout",
            ],
            &["text", "json", "ok", "error", "true", "false"],
        ),
    ];
    for (sub, flags, values) in cases {
        let r = run(&[sub, "--help"]);
        r.expect_code(0);
        let lines: Vec<&str> = r.stdout.lines().collect();
        for flag in *flags {
            let at = lines
                .iter()
                .position(|l| l.trim_start().starts_with(flag))
                .unwrap_or_else(|| panic!("{sub} --help lists no {flag}:\n{}", r.stdout));
            // explained: a description follows the flag, on its line or the next
            let rest = lines[at].split_whitespace().skip(2).count();
            let next = lines.get(at + 1).map_or("", |l| l.trim());
            let explained = rest > 0 || (!next.is_empty() && !next.starts_with('-'));
            assert!(
                explained,
                "{sub} --help does not explain {flag}:\n{}",
                r.stdout
            );
        }
        for value in *values {
            assert_contains(&r.stdout, value, &format!("{sub} --help"));
        }
    }
}

// =============================================================================================
// set-state: an operator's move, rehearsed on an embedded store file

#[test]
fn set_state_moves_a_node_on_a_store_file_compare_and_set() {
    let dir = temp_dir("set-state");
    let store = file_in(&dir, "state.redb");
    // The swarm worker's launch leaves it `joining` in the store.
    let v = swarm_step(
        &store,
        "launch-worker.json",
        &["--nodes", &swarm("nodes.json")],
    );
    assert_eq!(s(&v, "final_state"), "joining");
    const WORKER: &str = "i-0a1b2c3d4e5f60042";
    let moved = run(&[
        "set-state",
        "--store",
        &store,
        "--node",
        WORKER,
        "--from",
        "joining",
        "--to",
        "ready",
        "--reason",
        "join confirmed by hand",
        "--format",
        "json",
    ]);
    moved.expect_code(0);
    let m = moved.json();
    assert_eq!(m["moved"]["to"], "ready", "{m}");
    assert_eq!(m["moved"]["reason"], "join confirmed by hand");
    // The same move again: the node is no longer `joining`, nothing changes, exit 1.
    let again = run(&[
        "set-state",
        "--store",
        &store,
        "--node",
        WORKER,
        "--from",
        "joining",
        "--to",
        "ready",
    ]);
    again.expect_code(1);
    assert_contains(&again.stderr, "is in \"ready\", not \"joining\"", "stderr");
    // Flags that make no sense: exit 2, nothing changes.
    run(&[
        "set-state",
        "--store",
        &store,
        "--node",
        WORKER,
        "--from",
        "ready",
        "--to",
        "ready",
    ])
    .expect_code(2);
    run(&["set-state", "--node", WORKER, "--from", "a", "--to", "b"]).expect_code(2);
    // The terminate event now runs from `ready`.
    let v = swarm_step(&store, "terminate-worker.json", &[]);
    assert_eq!(s(&v, "initial_state"), "ready");
}

#[test]
fn nodes_lists_the_fleet_with_what_needs_a_look() {
    let dir = temp_dir("nodes");
    let store = file_in(&dir, "state.redb");
    let v = swarm_step(
        &store,
        "launch-worker.json",
        &["--nodes", &swarm("nodes.json")],
    );
    assert_eq!(s(&v, "final_state"), "joining");
    let listed = run(&["nodes", "--store", &store, "--format", "json"]);
    listed.expect_code(0);
    let nodes = listed.json();
    let worker = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "i-0a1b2c3d4e5f60042")
        .unwrap_or_else(|| panic!("{nodes}"));
    assert_eq!(worker["state"], "joining");
    assert_eq!(worker["item_type"], "worker");
    // The join command it waits for.
    assert_eq!(
        worker["pending_commands"].as_array().unwrap().len(),
        1,
        "{worker}"
    );
    assert!(worker["lease"].is_null(), "released: {worker}");
    // Only managers.
    let managers = run(&[
        "nodes", "--store", &store, "--type", "manager", "--format", "json",
    ])
    .json();
    assert!(
        managers
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["item_type"] == "manager"),
        "{managers}"
    );
    // Text: a header, a line per node, a count.
    let text = run(&["nodes", "--store", &store]);
    text.expect_code(0);
    assert_contains(&text.stdout, "i-0a1b2c3d4e5f60042", "stdout");
    assert_contains(&text.stdout, "node(s)", "stdout");
    run(&["nodes"]).expect_code(2);
}

#[test]
fn replay_runs_a_processed_event_again_and_dry_run_changes_nothing() {
    let dir = temp_dir("replay");
    let store = file_in(&dir, "state.redb");
    const WORKER: &str = "i-0a1b2c3d4e5f60042";
    let config = swarm("lifecycle.yaml");
    let launch = swarm_event("launch-worker.json");
    let v = swarm_step(
        &store,
        "launch-worker.json",
        &["--nodes", &swarm("nodes.json")],
    );
    assert_eq!(s(&v, "final_state"), "joining");
    // Delivered again, it is a duplicate.
    let again = simulate_json(&["--config", &config, "--event", &launch, "--store", &store]);
    assert_eq!(s(&again.report(), "stopped_by"), "duplicate");
    // The operator rewinds the node, then rehearses the launch on a copy.
    run(&[
        "set-state",
        "--store",
        &store,
        "--node",
        WORKER,
        "--from",
        "joining",
        "--to",
        "finished_cloud_init",
    ])
    .expect_code(0);
    let dry = run(&[
        "replay",
        "--config",
        &config,
        "--event",
        &launch,
        "--store",
        &store,
        "--dry-run",
        "--format",
        "json",
    ]);
    dry.expect_code(0);
    let v = dry.report();
    assert_eq!(s(&v, "final_state"), "joining", "{v}");
    // The join was sent already (its send guard is copied too): the dry run, like the
    // replay, would not send it twice.
    assert!(call_inputs(&v, "SendCommand").is_empty(), "{v}");
    assert_eq!(strings(&v, "tasks"), ["is_launching", "join_swarm"]);
    let listed = run(&["nodes", "--store", &store, "--format", "json"]).json();
    let worker = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == WORKER)
        .unwrap();
    assert_eq!(
        worker["state"], "finished_cloud_init",
        "a dry run changes nothing"
    );
    // The replay itself: not a duplicate; the join it already sent is not sent twice.
    let real = run(&[
        "replay", "--config", &config, "--event", &launch, "--store", &store, "--format", "json",
    ]);
    real.expect_code(0);
    let v = real.report();
    assert_eq!(s(&v, "final_state"), "joining", "{v}");
    assert!(call_inputs(&v, "SendCommand").is_empty(), "{v}");
}

#[test]
fn graph_counts_the_nodes_of_a_store_in_each_state() {
    let dir = temp_dir("graph-counts");
    let store = file_in(&dir, "state.redb");
    let v = swarm_step(
        &store,
        "launch-worker.json",
        &["--nodes", &swarm("nodes.json")],
    );
    assert_eq!(s(&v, "final_state"), "joining");
    let config = swarm("lifecycle.yaml");
    let g = run(&["graph", "--config", &config, "--store", &store]);
    g.expect_code(0);
    assert_contains(&g.stdout, "joining · 1", "the worker waits in joining");
    // Without a table or a store: the plain diagram, as SPEC 7 has it.
    let plain = run(&["graph", "--config", &config]);
    plain.expect_code(0);
    assert!(!plain.stdout.contains(" · "), "{}", plain.stdout);
    let dot = run(&[
        "graph", "--config", &config, "--format", "dot", "--store", &store,
    ]);
    assert_contains(&dot.stdout, "[label=\"joining · 1\"]", "dot");
}

// ---------------------------------------------------------------------------------------------
// reconcile: the sweep, rehearsed on an embedded store file

/// The groups' instances and hooks as the AWS CLI prints them: the worker waits on its
/// launch hook; the manager is in service in a group the sweep does not compare.
fn swarm_fleet(dir: &TempDir, worker_state: &str) -> String {
    let path = file_in(dir, "fleet.json");
    let fleet = serde_json::json!({
        "AutoScalingGroups": [
            {"AutoScalingGroupName": "docker-swarm-worker",
             "Instances": [{"InstanceId": "i-0a1b2c3d4e5f60042", "LifecycleState": worker_state}]},
            {"AutoScalingGroupName": "docker-swarm-manager",
             "Instances": [{"InstanceId": "i-0a1b2c3d4e5f60001", "LifecycleState": "InService"}]},
        ],
        "LifecycleHooks": [
            {"AutoScalingGroupName": "docker-swarm-worker", "LifecycleHookName": "docker-swarm-worker-on-launch",
             "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "HeartbeatTimeout": 3600, "DefaultResult": "ABANDON"},
            {"AutoScalingGroupName": "docker-swarm-worker", "LifecycleHookName": "docker-swarm-worker-on-terminate",
             "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "HeartbeatTimeout": 3600, "DefaultResult": "CONTINUE"},
        ],
    });
    std::fs::write(&path, fleet.to_string()).unwrap();
    path
}

#[test]
fn reconcile_heartbeats_a_join_in_flight_on_a_store_and_a_dry_run_changes_nothing() {
    let dir = temp_dir("reconcile");
    let store = file_in(&dir, "state.redb");
    const WORKER: &str = "i-0a1b2c3d4e5f60042";
    let config = swarm("lifecycle.yaml");
    let v = swarm_step(
        &store,
        "launch-worker.json",
        &["--nodes", &swarm("nodes.json")],
    );
    assert_eq!(s(&v, "final_state"), "joining");
    let fleet = swarm_fleet(&dir, "Pending:Wait");
    let sweep = |extra: &[&str]| {
        let mut args = vec![
            "reconcile",
            "--config",
            &config,
            "--store",
            &store,
            "--instances",
            &fleet,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    // Rehearsed: the heartbeat it would send, nothing sent.
    let dry = sweep(&["--dry-run"]);
    dry.expect_code(0);
    let d = dry.json();
    assert_eq!(d["dry_run"], true, "{d}");
    assert_eq!(d["findings"][0]["node"], WORKER, "{d}");
    assert_eq!(d["findings"][0]["action"]["kind"], "heartbeat", "{d}");
    assert_eq!(d["findings"][0]["outcome"], "would_do", "{d}");
    assert!(
        !dry.stdout.contains("RecordLifecycleActionHeartbeat"),
        "{}",
        dry.stdout
    );
    // The manager, in a group not compared, is looked up and found: not gone.
    assert_eq!(d["findings"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["states"]["joining"]["nodes"], 1, "{d}");

    // Performed: the heartbeat goes out by instance id on the launch hook.
    let done = sweep(&[]);
    done.expect_code(0);
    let r = done.json();
    assert_eq!(r["findings"][0]["outcome"], "done", "{r}");
    let beat = r["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["operation"] == "RecordLifecycleActionHeartbeat")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(beat["input"]["InstanceId"], WORKER);
    assert_eq!(
        beat["input"]["LifecycleHookName"],
        "docker-swarm-worker-on-launch"
    );

    // Text: the table of states and the finding.
    let text = run(&[
        "reconcile",
        "--config",
        &config,
        "--store",
        &store,
        "--instances",
        &fleet,
        "--dry-run",
    ]);
    text.expect_code(0);
    assert_contains(&text.stdout, "STATE", "stdout");
    assert_contains(&text.stdout, WORKER, "stdout");
    // The instance in service: nothing to say about the worker.
    let fleet = swarm_fleet(&dir, "InService");
    let quiet = run(&[
        "reconcile",
        "--config",
        &config,
        "--store",
        &store,
        "--instances",
        &fleet,
    ]);
    quiet.expect_code(0);
    assert_contains(&quiet.stdout, "nothing to report", "stdout");
}

#[test]
fn reconcile_refuses_bad_input_by_name_and_changes_nothing() {
    let dir = temp_dir("reconcile-bad");
    let store = file_in(&dir, "state.redb");
    let fleet = swarm_fleet(&dir, "Pending:Wait");
    // No reconcile: section.
    let kafka = kafka("lifecycle.yaml");
    let r = run(&[
        "reconcile",
        "--config",
        &kafka,
        "--store",
        &store,
        "--instances",
        &fleet,
    ]);
    r.expect_code(2);
    assert_contains(&r.stderr, "no `reconcile:` section", "stderr");
    // A bad reconcile: section names the field.
    let config = file_in(&dir, "bad.yaml");
    std::fs::write(
        &config,
        "transitions: [{source: a, dest: b, triggers: [{name: go}]}]\nreconcile: {groups: [g], gone: delete}\n",
    )
    .unwrap();
    let r = run(&[
        "reconcile",
        "--config",
        &config,
        "--store",
        &store,
        "--instances",
        &fleet,
    ]);
    r.expect_code(2);
    assert_contains(&r.stderr, "key reconcile.gone", "stderr");
    // A bad instances file names the field.
    let bad = file_in(&dir, "bad-fleet.json");
    std::fs::write(&bad, r#"{"AutoScalingGroups": [{"AutoScalingGroupName": "g", "Instances": [{"InstanceId": 7}]}]}"#).unwrap();
    let r = run(&[
        "reconcile",
        "--config",
        &swarm("lifecycle.yaml"),
        "--store",
        &store,
        "--instances",
        &bad,
    ]);
    r.expect_code(2);
    assert_contains(
        &r.stderr,
        "AutoScalingGroups[0].Instances[0].InstanceId",
        "stderr",
    );
    // --store needs --instances; one of --table and --store.
    run(&[
        "reconcile",
        "--config",
        &swarm("lifecycle.yaml"),
        "--store",
        &store,
    ])
    .expect_code(2);
    run(&["reconcile", "--config", &swarm("lifecycle.yaml")]).expect_code(2);
}

#[test]
fn graph_svg_is_drawn_without_graphviz_with_the_fleet_counted() {
    // No Graphviz on PATH: the layout is done in Rust.
    let empty = temp_dir("no-dot");
    let draw = |extra: &[&str]| {
        let mut args = vec!["graph", "--config", "", "--format", "svg"];
        let config = swarm("lifecycle.yaml");
        args[2] = &config;
        args.extend_from_slice(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_lifecycle"))
            .args(&args)
            .env("PATH", empty.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let svg = draw(&[]);
    assert!(svg.starts_with("<?xml"), "{svg}");
    for state in [
        "finished_cloud_init",
        "joining",
        "ready",
        "draining",
        "abandoned",
    ] {
        assert_contains(&svg, state, "the diagram");
    }
    // With a store: the states carry their nodes.
    let dir = temp_dir("svg-fleet");
    let store = file_in(&dir, "state.redb");
    swarm_step(
        &store,
        "launch-worker.json",
        &["--nodes", &swarm("nodes.json")],
    );
    let svg = draw(&["--store", &store]);
    assert_contains(&svg, "joining", "the diagram");
    assert_contains(&svg, "joining · 1", "the diagram");
}

#[test]
fn replay_node_drives_a_node_from_its_stored_state_on_a_store() {
    let dir = temp_dir("replay-node");
    let store = file_in(&dir, "state.redb");
    const WORKER: &str = "i-0a1b2c3d4e5f60042";
    let config = swarm("lifecycle.yaml");
    // The worker registered itself; its launch event was lost.
    let v = swarm_step(
        &store,
        "launch-worker.json",
        &["--nodes", &swarm("nodes.json")],
    );
    assert_eq!(s(&v, "final_state"), "joining");
    run(&[
        "set-state",
        "--store",
        &store,
        "--node",
        WORKER,
        "--from",
        "joining",
        "--to",
        "finished_cloud_init",
    ])
    .expect_code(0);
    let fleet = swarm_fleet(&dir, "Pending:Wait");
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--config",
            &config,
            "--node",
            WORKER,
            "--store",
            &store,
            "--instances",
            &fleet,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let r = replay(&[]);
    r.expect_code(0);
    let report = r.report();
    assert_eq!(
        s(&report, "initial_state"),
        "finished_cloud_init",
        "{report}"
    );
    assert_eq!(s(&report, "final_state"), "joining", "{report}");
    assert_eq!(report["event"], "EC2 Instance-launch Lifecycle Action");
    // An instance that waits on nothing: nothing to redeliver, exit 2.
    let fleet = swarm_fleet(&dir, "InService");
    let r = run(&[
        "replay",
        "--config",
        &config,
        "--node",
        WORKER,
        "--store",
        &store,
        "--instances",
        &fleet,
    ]);
    r.expect_code(2);
    assert_contains(&r.stderr, "not waiting on a lifecycle hook", "stderr");
    // --event or --node, not both; --instances only with --node.
    run(&["replay", "--config", &config, "--store", &store]).expect_code(2);
}
