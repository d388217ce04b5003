//! A local AWS for the integration tests: one moto server per test binary
//! (`scripts/moto_server.py`, installed by `scripts/ensure-moto`), reached over real HTTP on
//! 127.0.0.1, and raw HTTP helpers for its test-only operations.
//!
//! ```ignore
//! mod support;
//! let moto = support::Moto::shared(); // starts moto once, then: one test at a time, reset
//! let env = moto.env();               // AWS_ENDPOINT_URL, AWS_REGION, ... for a child process
//! moto.register_lifecycle_action("asg", "hook", "i-0123", TOKEN, support::LAUNCHING);
//! ```
//!
//! The server reads its standard input until end-of-file and then exits: the pipe stays open
//! for the life of the test binary, so the server never outlives it, even after a crash.

// Each test binary uses only part of this module.
#![allow(dead_code)]

pub mod proxy;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

/// The region every test uses.
pub const REGION: &str = "us-east-1";
/// `LifecycleTransition` of a launching instance.
pub const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
/// `LifecycleTransition` of a terminating instance.
pub const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

/// How long moto may take to start (imports, first bind).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one raw request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The moto server of this test binary.
pub struct Moto {
    port: u16,
    /// Never dropped (it lives in a static): its stdin pipe is what keeps the server alive.
    _process: Mutex<(Child, ChildStdin)>,
}

/// Exclusive use of the shared moto server, reset when acquired. Tests that use moto hold
/// one for their whole run, so they run one at a time. It is `Send` and `Sync`: a test may
/// share it (in an `Arc`) with tasks of its own.
pub struct MotoGuard {
    moto: &'static Moto,
    _lock: Exclusive,
}

/// The one test of this binary that may use moto now: taken in [`Moto::shared`], given back
/// when dropped (a `std` `MutexGuard` would do, but it cannot cross threads).
struct Exclusive;

static TAKEN: Mutex<bool> = Mutex::new(false);
static GIVEN_BACK: Condvar = Condvar::new();

impl Exclusive {
    fn take() -> Exclusive {
        // A test that panicked while holding the flag leaves it poisoned, and moto in some
        // state: the reset after taking discards that, so a poisoned flag is as good.
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        while *taken {
            taken = GIVEN_BACK.wait(taken).unwrap_or_else(|e| e.into_inner());
        }
        *taken = true;
        Exclusive
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        *TAKEN.lock().unwrap_or_else(|e| e.into_inner()) = false;
        GIVEN_BACK.notify_one();
    }
}

/// A raw HTTP response: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The body, decoded as UTF-8 (lossily).
    pub body: String,
}

impl Response {
    /// The text of the first `<tag>…</tag>` element of an XML body, if any.
    pub fn xml_text(&self, tag: &str) -> Option<&str> {
        let open = format!("<{tag}>");
        let start = self.body.find(&open)? + open.len();
        let end = self.body[start..].find(&format!("</{tag}>"))? + start;
        Some(&self.body[start..end])
    }
}

static SERVER: OnceLock<Moto> = OnceLock::new();

impl Moto {
    /// The shared server, started on first use, locked for this test and reset.
    pub fn shared() -> MotoGuard {
        let lock = Exclusive::take();
        let moto = SERVER.get_or_init(Moto::start);
        let guard = MotoGuard { moto, _lock: lock };
        guard.reset();
        guard
    }

    fn start() -> Moto {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        let script = root.join("scripts/moto_server.py");
        if !python.exists() {
            panic!(
                "moto is not installed: {} is missing; run scripts/ensure-moto",
                python.display()
            );
        }
        let port = free_port();
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--port")
            .arg(port.to_string())
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => (stdin, stdout),
            _ => panic!("moto's stdin and stdout are piped"),
        };

        // Read stdout on a thread, so a server that hangs cannot hang the tests; the thread
        // keeps draining stdout afterwards, so the pipe never fills up.
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::Builder::new()
            .name("moto-stdout".into())
            .spawn(move || {
                let mut ready_tx = Some(ready_tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match ready_tx.take() {
                        Some(tx) => {
                            let _ = tx.send(line);
                        }
                        None => eprintln!("moto: {line}"),
                    }
                }
            })
            .unwrap_or_else(|e| panic!("cannot spawn moto's stdout reader: {e}"));

        let line = match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!(
                    "moto did not say `ready` ({e}; exit status: {status}); its stderr is above"
                );
            }
        };
        let port = match line.strip_prefix("ready ").map(str::parse::<u16>) {
            Some(Ok(ready_port)) => ready_port,
            _ => {
                let _ = child.kill();
                panic!("moto said {line:?} instead of `ready {port}`");
            }
        };
        Moto {
            port,
            _process: Mutex::new((child, stdin)),
        }
    }
}

impl MotoGuard {
    /// The TCP port moto listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.moto.port
    }

    /// `http://127.0.0.1:PORT`, the endpoint of every AWS service.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.moto.port)
    }

    /// The environment a child process (`lifecycle handle`) needs to use moto as its AWS.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_MAX_ATTEMPTS", "1".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// Forgets everything moto holds (`POST /moto-api/reset`); done by [`Moto::shared`].
    pub fn reset(&self) {
        let response = self.request("POST", "/moto-api/reset", &[], b"");
        assert_eq!(response.status, 200, "moto reset failed: {}", response.body);
    }

    /// Makes a lifecycle action active (test-only `RegisterTestLifecycleAction`), as AWS does
    /// when an instance enters `Pending:Wait` / `Terminating:Wait`. The group and hook must
    /// exist (`CreateAutoScalingGroup`, `PutLifecycleHook`); `token` is a 36-character UUID.
    pub fn register_lifecycle_action(
        &self,
        group: &str,
        hook: &str,
        instance: &str,
        token: &str,
        transition: &str,
    ) {
        let response = self.autoscaling(
            "RegisterTestLifecycleAction",
            &[
                ("AutoScalingGroupName", group),
                ("LifecycleHookName", hook),
                ("InstanceId", instance),
                ("LifecycleActionToken", token),
                ("LifecycleTransition", transition),
            ],
        );
        assert_eq!(
            response.status, 200,
            "RegisterTestLifecycleAction failed: {}",
            response.body
        );
    }

    /// The JSON text of `DescribeTestLifecycleActions`:
    /// `{"active": [...], "completions": [...], "heartbeats": [...]}`, each entry with
    /// `group`, `hook`, `instance`, `token`, `transition` (completions add `result`).
    pub fn test_lifecycle_actions(&self) -> String {
        let response = self.autoscaling("DescribeTestLifecycleActions", &[]);
        assert_eq!(
            response.status, 200,
            "DescribeTestLifecycleActions failed: {}",
            response.body
        );
        response.body
    }

    /// The completions `DescribeTestLifecycleActions` recorded, oldest first.
    pub fn completions(&self) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&self.test_lifecycle_actions())
            .expect("DescribeTestLifecycleActions answers JSON");
        v["completions"].as_array().cloned().unwrap_or_default()
    }

    /// Sets the SSM agent status (`Online`, `ConnectionLost`, `Inactive`) of a running
    /// instance, as `DescribeInstanceInformation` reports it and `SendCommand` checks it.
    pub fn set_agent_status(&self, instance: &str, status: &str) {
        let body = format!(
            "{{\"InstanceId\":{},\"PingStatus\":{}}}",
            json_string(instance),
            json_string(status)
        );
        let response = self.ssm("SetTestAgentStatus", &body);
        assert_eq!(
            response.status, 200,
            "SetTestAgentStatus failed: {}",
            response.body
        );
    }

    /// An Auto Scaling query-protocol request (`Action=...&Version=2011-01-01&...`).
    pub fn autoscaling(&self, action: &str, params: &[(&str, &str)]) -> Response {
        self.query("autoscaling", action, "2011-01-01", params)
    }

    /// An EC2 query-protocol request (`Action=...&Version=2016-11-15&...`).
    pub fn ec2(&self, action: &str, params: &[(&str, &str)]) -> Response {
        self.query("ec2", action, "2016-11-15", params)
    }

    /// A query-protocol request (form-encoded POST) to `service` (its SigV4 signing name).
    pub fn query(
        &self,
        service: &str,
        action: &str,
        version: &str,
        params: &[(&str, &str)],
    ) -> Response {
        let mut form = format!("Action={}&Version={}", encode(action), encode(version));
        for (name, value) in params {
            let _ = write!(form, "&{}={}", encode(name), encode(value));
        }
        let auth = authorization(service);
        self.request(
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
        )
    }

    /// An SSM JSON 1.1 request (`X-Amz-Target: AmazonSSM.<operation>`).
    pub fn ssm(&self, operation: &str, json_body: &str) -> Response {
        self.json("ssm", &format!("AmazonSSM.{operation}"), json_body)
    }

    /// A JSON 1.1 request to `service` (its SigV4 signing name) with the given target.
    pub fn json(&self, service: &str, target: &str, json_body: &str) -> Response {
        let auth = authorization(service);
        self.request(
            "POST",
            "/",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", target),
            ],
            json_body.as_bytes(),
        )
    }

    /// One HTTP/1.1 request to moto (`Connection: close`), answered in full.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http(self.moto.port, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} to moto failed: {e}"))
    }
}

/// `<repo>/`: two levels above this crate's manifest.
fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.ancestors().nth(2) {
        Some(root) => root.to_path_buf(),
        None => panic!("{} has no grandparent", manifest.display()),
    }
}

/// A port that was free a moment ago (the listener is dropped before moto binds it).
fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
    match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no local address: {e}"),
    }
}

/// A SigV4-shaped `Authorization` header: moto routes on its credential scope
/// (`.../REGION/SERVICE/aws4_request`) and does not check the signature.
fn authorization(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, \
         SignedHeaders=host, Signature=0"
    )
}

/// Percent-encoding for form values: everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;

    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut payload = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.trim().eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            } else if name.eq_ignore_ascii_case("content-length")
                && let Ok(length) = value.trim().parse::<usize>()
            {
                payload = &payload[..length.min(payload.len())];
            }
        }
    }
    let body = if chunked {
        dechunk(payload).ok_or_else(|| invalid("bad chunked body"))?
    } else {
        payload.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// An AWS SDK configuration for `endpoint`: test credentials, [`REGION`], SDK retries off (an
/// emulator's error is never worth a retry, and a fault test must see the first answer).
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

impl MotoGuard {
    /// An AWS SDK configuration pointing at this moto.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        sdk_config(&self.endpoint()).await
    }
}

/// A launch configuration, an Auto Scaling group `name` of `size` instances and its lifecycle
/// `hooks` (hook name, transition), through the SDK (moto implements these); returns the
/// group's instance ids.
pub async fn group(
    config: &aws_config::SdkConfig,
    name: &str,
    size: i32,
    hooks: &[(&str, &str)],
) -> Vec<String> {
    let asg = aws_sdk_autoscaling::Client::new(config);
    asg.create_launch_configuration()
        .launch_configuration_name(format!("{name}-lc"))
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .expect("CreateLaunchConfiguration");
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(format!("{name}-lc"))
        .min_size(0)
        .max_size(size + 1)
        .desired_capacity(size)
        .availability_zones(format!("{REGION}a"))
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    for (hook, transition) in hooks {
        asg.put_lifecycle_hook()
            .auto_scaling_group_name(name)
            .lifecycle_hook_name(*hook)
            .lifecycle_transition(*transition)
            .send()
            .await
            .expect("PutLifecycleHook");
    }
    let groups = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    groups
        .auto_scaling_groups()
        .first()
        .map(|g| {
            g.instances()
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The ids of the SSM commands sent so far, oldest first.
pub async fn sent_commands(config: &aws_config::SdkConfig) -> Vec<String> {
    let listed = aws_sdk_ssm::Client::new(config)
        .list_commands()
        .send()
        .await
        .expect("ListCommands");
    let mut sent: Vec<(String, f64)> = listed
        .commands()
        .iter()
        .filter_map(|c| {
            let id = c.command_id()?.to_owned();
            Some((id, c.requested_date_time().map_or(0.0, |t| t.as_secs_f64())))
        })
        .collect();
    sent.sort_by(|a, b| a.1.total_cmp(&b.1));
    sent.into_iter().map(|(id, _)| id).collect()
}

/// An EventBridge lifecycle action event: the hook `HOOK_PREFIX-on-launch` or
/// `HOOK_PREFIX-on-terminate` of `group` waits on `instance` with `token`.
pub fn lifecycle_event(
    id: &str,
    group: &str,
    hook_prefix: &str,
    instance: &str,
    launching: bool,
    token: &str,
) -> serde_json::Value {
    let (kind, transition, hook) = if launching {
        ("launch", LAUNCHING, "on-launch")
    } else {
        ("terminate", TERMINATING, "on-terminate")
    };
    serde_json::json!({
        "version": "0",
        "id": id,
        "detail-type": format!("EC2 Instance-{kind} Lifecycle Action"),
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": "2026-11-27T10:00:00Z",
        "region": REGION,
        "resources": [format!("arn:aws:autoscaling:{REGION}:123456789012:autoScalingGroup:1:autoScalingGroupName/{group}")],
        "detail": {
            "LifecycleActionToken": token,
            "AutoScalingGroupName": group,
            "LifecycleHookName": format!("{hook_prefix}-{hook}"),
            "EC2InstanceId": instance,
            "LifecycleTransition": transition,
        }
    })
}

/// An EventBridge SSM status event of `command` on `instance`, whose first shell line was
/// `first_line` (the marker `# sent by autoscaling-lifecycle` makes it one of ours).
pub fn status_event(
    id: &str,
    command: &str,
    instance: &str,
    status: &str,
    first_line: &str,
) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": id,
        "detail-type": "EC2 Command Status-change Notification",
        "source": "aws.ssm",
        "account": "123456789012",
        "time": "2026-11-27T10:01:00Z",
        "region": REGION,
        "resources": [format!("arn:aws:ec2:{REGION}:123456789012:instance/{instance}")],
        "detail": {
            "command-id": command,
            "document-name": "AWS-RunShellScript",
            "parameters": serde_json::json!({"commands": [first_line]}).to_string(),
            "status": status
        }
    })
}
