//! HTTP on the test side of the SDK: [`read_request`], which reads one whole HTTP/1.1 request
//! off a socket, and [`Proxy`], a fault-injecting proxy in front of moto.
//!
//! The proxy listens on 127.0.0.1 and forwards every request to moto byte for byte (a fresh
//! upstream connection per request), streaming moto's answer back as it came (`Content-Length`,
//! chunked, or up to the end of the connection). Requests for the one operation it is told to
//! fault ([`Proxy::inject`]) get the fault instead, in the service's own shape: the operation
//! is named by the `X-Amz-Target` header (JSON protocols: DynamoDB, SSM), the `Action=` form
//! parameter (query protocols: Auto Scaling, SNS) or the REST path (Route 53's `…/rrset`).
//!
//! ```ignore
//! let proxy = support::proxy::Proxy::start(&moto.endpoint());
//! proxy.inject("GetItem", Fault::Throttle, Mode::Once);   // the first GetItem is throttled
//! let config = sdk_config(&proxy.endpoint()).await;       // everything else reaches moto
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// Reads one HTTP/1.1 request: up to the end of the head (`\r\n\r\n`), then as many bytes of
/// body as its `Content-Length` says, however the client split its writes and TCP its
/// segments. Returns the raw request (what had arrived, when the peer closed first). Blocks
/// as the socket's read timeout allows.
pub fn read_request(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut request = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&request, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(request);
        }
        request.extend_from_slice(&chunk[..n]);
    };
    let length = header(&request[..head_end], "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    Ok(request)
}

/// The faults the proxy can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// 400 with the service's throttling code (DynamoDB `ProvisionedThroughputExceededException`,
    /// SSM `ThrottlingException`, query and REST-XML services `Throttling`).
    Throttle,
    /// A server fault: 500 `InternalServerError` (JSON services), 503 `ServiceUnavailable`
    /// (query and REST-XML services).
    ServerError,
    /// The request is read and never answered: the SDK's attempt timeout ends it.
    Timeout,
    /// The connection is closed without an answer.
    Refused,
    /// 400 `AccessDeniedException` (JSON services), 403 `AccessDenied` (the others).
    AccessDenied,
    /// 400 `ExpiredTokenException` (JSON services), 403 `ExpiredToken` (the others).
    ExpiredCredentials,
}

impl Fault {
    /// Every fault, in the order of the matrix's columns.
    pub const ALL: [Fault; 6] = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::Timeout,
        Fault::Refused,
        Fault::AccessDenied,
        Fault::ExpiredCredentials,
    ];

    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::ServerError => "5xx",
            Fault::Timeout => "timeout",
            Fault::Refused => "connection refused",
            Fault::AccessDenied => "access denied",
            Fault::ExpiredCredentials => "expired credentials",
        }
    }
}

/// How long a fault lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The first request of the operation only: an SDK retry gets through.
    Once,
    /// Every request of the operation until [`Proxy::lift`].
    Always,
}

/// The wire protocol of a request, which decides the shape of an error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `application/x-amz-json-1.0` (DynamoDB).
    Json10,
    /// `application/x-amz-json-1.1` (SSM).
    Json11,
    /// The query protocol (Auto Scaling, SNS): form-encoded `Action=…`, XML answers.
    Query,
    /// REST-XML (Route 53).
    RestXml,
}

#[derive(Debug, Default)]
struct State {
    plan: Option<(String, Fault, Mode)>,
    /// Requests seen, by operation.
    seen: BTreeMap<String, usize>,
    /// Requests that got the fault.
    injected: usize,
    /// `amz-sdk-invocation-id` of the faulted requests.
    faulted_invocations: BTreeSet<String>,
    /// Requests forwarded that were SDK retries of a faulted request.
    retried: usize,
    /// The longest moto took to answer a forwarded request, since the proxy started.
    slowest: Duration,
}

/// The fault-injecting proxy: one listener for the life of the test binary.
#[derive(Debug, Clone)]
pub struct Proxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port, injecting
    /// nothing yet.
    pub fn start(upstream: &str) -> Proxy {
        let upstream: u16 = upstream
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("not http://127.0.0.1:PORT: {upstream}"));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let state = shared.clone();
                    let _ = thread::Builder::new()
                        .name("fault-proxy-conn".into())
                        .spawn(move || serve(stream, upstream, &state));
                }
            })
            .expect("spawn the proxy");
        Proxy { port, state }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// From now on, requests for `operation` get `fault` (once, or until lifted); the counts
    /// start again from zero.
    pub fn inject(&self, operation: &str, fault: Fault, mode: Mode) {
        let mut st = self.lock();
        *st = State {
            plan: Some((operation.to_owned(), fault, mode)),
            slowest: st.slowest,
            ..State::default()
        };
    }

    /// The longest moto took to answer a forwarded request since the proxy started: what a
    /// short SDK attempt timeout must leave room for.
    pub fn slowest(&self) -> Duration {
        self.lock().slowest
    }

    /// Ends the fault: every request reaches moto again.
    pub fn lift(&self) {
        self.lock().plan = None;
    }

    /// How many requests got the fault.
    pub fn injected(&self) -> usize {
        self.lock().injected
    }

    /// How many SDK retries of a faulted request were forwarded to moto.
    pub fn retried(&self) -> usize {
        self.lock().retried
    }

    /// Requests seen since the last [`Proxy::inject`], by operation.
    pub fn seen(&self) -> BTreeMap<String, usize> {
        self.lock().seen.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One client connection: its requests in turn (the SDK keeps connections alive).
fn serve(mut client: TcpStream, upstream: u16, state: &Mutex<State>) {
    loop {
        let request = match read_request(&mut client) {
            Ok(r) if find(&r, b"\r\n\r\n").is_some() => r,
            _ => return,
        };
        let (operation, protocol) = identify(&request);
        let invocation = header(&request, "amz-sdk-invocation-id").map(str::to_owned);
        let fault = {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            *st.seen.entry(operation.clone()).or_default() += 1;
            let fault = match &st.plan {
                Some((op, fault, mode)) if *op == operation => Some((*fault, *mode)),
                _ => None,
            };
            match fault {
                Some((fault, mode)) => {
                    st.injected += 1;
                    if mode == Mode::Once {
                        st.plan = None;
                    }
                    if let Some(id) = invocation {
                        st.faulted_invocations.insert(id);
                    }
                    Some(fault)
                }
                None => {
                    if invocation.is_some_and(|id| st.faulted_invocations.contains(&id)) {
                        st.retried += 1;
                    }
                    None
                }
            }
        };
        match fault {
            None => match timed(|| forward(&request, upstream), state) {
                Ok((response, keep_alive)) => {
                    if client.write_all(&response).is_err() || !keep_alive {
                        return;
                    }
                }
                Err(e) => {
                    eprintln!("fault-proxy: {operation} to moto failed: {e}");
                    return;
                }
            },
            Some(Fault::Timeout) => {
                // Never answer: wait for the client to give up and close.
                let _ = client.set_read_timeout(Some(Duration::from_secs(120)));
                let mut sink = [0u8; 1024];
                while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
            Some(Fault::Refused) => {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            Some(fault) => {
                let service = service(&request);
                if client
                    .write_all(&error_response(fault, protocol, &operation, &service))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Runs `f`, keeping the longest it took in `state`.
fn timed<T>(f: impl FnOnce() -> T, state: &Mutex<State>) -> T {
    let started = std::time::Instant::now();
    let out = f();
    let took = started.elapsed();
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.slowest = st.slowest.max(took);
    out
}

/// The operation a request calls, and its protocol.
fn identify(request: &[u8]) -> (String, Protocol) {
    let head_end = find(request, b"\r\n\r\n").map_or(request.len(), |i| i + 4);
    if let Some(target) = header(request, "x-amz-target") {
        let (prefix, op) = target.split_once('.').unwrap_or(("", target));
        let protocol = if prefix.starts_with("DynamoDB") {
            Protocol::Json10
        } else {
            Protocol::Json11
        };
        return (op.to_owned(), protocol);
    }
    let body = String::from_utf8_lossy(&request[head_end..]);
    if let Some(action) = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
    {
        return (action.to_owned(), Protocol::Query);
    }
    let line =
        String::from_utf8_lossy(&request[..find(request, b"\r\n").unwrap_or(0)]).into_owned();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let path = path
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    let op = match method {
        _ if !path.ends_with("/rrset") => format!("{method} {path}"),
        "POST" => "ChangeResourceRecordSets".to_owned(),
        _ => "ListResourceRecordSets".to_owned(),
    };
    (op, Protocol::RestXml)
}

/// The SigV4 signing name of a request's service (`dynamodb`, `ssm`, `autoscaling`, ...),
/// from the credential scope of its `Authorization` header.
fn service(request: &[u8]) -> String {
    header(request, "authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("aws")
        .to_owned()
}

/// The answer AWS gives for `fault` to `operation` of `service`, in `protocol`'s shape.
fn error_response(fault: Fault, protocol: Protocol, operation: &str, service: &str) -> Vec<u8> {
    let json = matches!(protocol, Protocol::Json10 | Protocol::Json11);
    let denied = format!(
        "User: arn:aws:sts::123456789012:assumed-role/lifecycle/function is not authorized to perform: {service}:{operation}"
    );
    let expired = "The security token included in the request is expired".to_owned();
    let (status, code, message) = match (fault, protocol) {
        (Fault::Throttle, Protocol::Json10) => (
            400,
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.".to_owned(),
        ),
        (Fault::Throttle, Protocol::Json11) => {
            (400, "ThrottlingException", "Rate exceeded".to_owned())
        }
        (Fault::Throttle, _) => (400, "Throttling", "Rate exceeded".to_owned()),
        (Fault::ServerError, _) if json => (
            500,
            "InternalServerError",
            "Internal server error".to_owned(),
        ),
        (Fault::ServerError, _) => (
            503,
            "ServiceUnavailable",
            "Service is unavailable".to_owned(),
        ),
        (Fault::AccessDenied, _) if json => (400, "AccessDeniedException", denied),
        (Fault::AccessDenied, _) => (403, "AccessDenied", denied),
        (Fault::ExpiredCredentials, _) if json => (400, "ExpiredTokenException", expired),
        (Fault::ExpiredCredentials, _) => (403, "ExpiredToken", expired),
        (Fault::Timeout | Fault::Refused, _) => unreachable!("{fault:?} has no answer"),
    };
    let (content_type, body) = match protocol {
        Protocol::Json10 | Protocol::Json11 => {
            let kind = if protocol == Protocol::Json10 {
                let namespace = if code.starts_with("ProvisionedThroughput") {
                    "com.amazonaws.dynamodb.v20120810"
                } else {
                    "com.amazon.coral.service"
                };
                format!("{namespace}#{code}")
            } else {
                code.to_owned()
            };
            let content_type = if protocol == Protocol::Json10 {
                "application/x-amz-json-1.0"
            } else {
                "application/x-amz-json-1.1"
            };
            (
                content_type,
                serde_json::json!({"__type": kind, "message": message}).to_string(),
            )
        }
        Protocol::Query | Protocol::RestXml => {
            let namespace = match service {
                "route53" => "https://route53.amazonaws.com/doc/2013-04-01/",
                "sns" => "http://sns.amazonaws.com/doc/2010-03-31/",
                _ => "http://autoscaling.amazonaws.com/doc/2011-01-01/",
            };
            let party = if status >= 500 { "Receiver" } else { "Sender" };
            (
                "text/xml",
                format!(
                    "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{party}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
                ),
            )
        }
    };
    format!(
        "HTTP/1.1 {status} Fault\r\nContent-Type: {content_type}\r\nx-amzn-RequestId: fault-proxy\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` to moto on a connection of its own and reads the whole answer: the bytes as
/// they came, and whether the client's connection may carry another request.
fn forward(request: &[u8], upstream: u16) -> std::io::Result<(Vec<u8>, bool)> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    up.write_all(request)?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = find(&response, b"\r\n\r\n") {
            break i + 4;
        }
        let n = up.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "moto closed before the end of its answer's head",
            ));
        }
        response.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let http10 = head.starts_with("HTTP/1.0");
    let connection = header(&response[..head_end], "connection").map(str::to_ascii_lowercase);
    let mut keep_alive = match connection.as_deref() {
        Some("close") => false,
        Some("keep-alive") => true,
        _ => !http10,
    };
    let head_request = request.starts_with(b"HEAD ");
    let chunked = header(&response[..head_end], "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length =
        header(&response[..head_end], "content-length").and_then(|v| v.parse::<usize>().ok());
    let mut more = |response: &mut Vec<u8>| -> std::io::Result<bool> {
        let n = up.read(&mut chunk)?;
        response.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    };
    if head_request || status / 100 == 1 || status == 204 || status == 304 {
        response.truncate(head_end);
    } else if chunked {
        while chunked_end(&response[head_end..]).is_none() {
            if !more(&mut response)? {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "moto closed in the middle of a chunked answer",
                ));
            }
        }
        let end = head_end + chunked_end(&response[head_end..]).unwrap_or(0);
        response.truncate(end);
    } else if let Some(length) = length {
        while response.len() < head_end + length {
            if !more(&mut response)? {
                break;
            }
        }
        response.truncate(head_end + length);
    } else {
        // No length: the answer ends with the connection, and so does the client's.
        while more(&mut response)? {}
        keep_alive = false;
    }
    Ok((response, keep_alive))
}

/// The length of a complete chunked body at the start of `body` (chunks, the last chunk, the
/// trailers and the final CRLF); `None` while incomplete.
fn chunked_end(body: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = at + find(&body[at..], b"\r\n")?;
        let size_text = std::str::from_utf8(&body[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers, each ending in CRLF, then an empty line.
            loop {
                let end = at + find(&body[at..], b"\r\n")?;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Some(at);
                }
            }
        }
        at += size + 2;
        if at > body.len() {
            return None;
        }
    }
}

/// The value of the first header `name` (case-insensitive) in the head of `message`.
fn header<'a>(message: &'a [u8], name: &str) -> Option<&'a str> {
    let head_end = find(message, b"\r\n\r\n").unwrap_or(message.len());
    std::str::from_utf8(&message[..head_end])
        .ok()?
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
