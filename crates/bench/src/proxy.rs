//! The counting proxy: forwards every request to moto as it came, on one upstream connection
//! per client connection (keep-alive, as the SDKs use theirs), and counts it by service and
//! operation. `GET /__bench/take` answers the counts since the last take, as JSON, and
//! starts again from zero; nothing else is answered by the proxy itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{self, header};

/// Operations whose requests are kept whole (body and answer status) when asked: what the
/// burst checks per node.
const KEPT: &[&str] = &["ssm:SendCommand", "autoscaling:CompleteLifecycleAction"];

/// One kept request.
#[derive(Debug, Clone)]
pub struct Kept {
    /// `service:Operation`.
    pub operation: String,
    /// The status moto answered.
    pub status: u16,
    /// The request body.
    pub body: String,
}

/// What the proxy saw since the last take.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests by `service:Operation`.
    pub calls: BTreeMap<String, u64>,
    /// Requests moto answered with a status of 400 or more, by `service:Operation`.
    pub failed: BTreeMap<String, u64>,
    /// Time spent waiting for moto's answers (from sending the request upstream to the end
    /// of the answer), in milliseconds, by `service:Operation`.
    pub upstream_ms: BTreeMap<String, f64>,
    /// The kept requests, in the order they were answered.
    pub kept: Vec<Kept>,
    /// Every request in the order answered: operation, status and, for DynamoDB, what it
    /// touched (the key's kind, the update and condition expressions) — the evidence behind
    /// a count.
    pub sequence: Vec<Value>,
}

impl Tally {
    /// The counts as JSON: `{"calls": {...}, "failed": {...}}`.
    pub fn to_json(&self) -> Value {
        json!({
            "calls": self.calls,
            "failed": self.failed,
            "upstream_ms": self.upstream_ms,
            "sequence": self.sequence,
        })
    }
}

/// A running proxy; it serves until the process ends.
#[derive(Debug, Clone)]
pub struct Proxy {
    port: u16,
    tally: Arc<Mutex<Tally>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port;
    /// `keep` keeps the requests of [`KEPT`] operations whole.
    ///
    /// # Errors
    /// A non-loopback upstream, or no port to listen on.
    pub fn start(upstream: &str, keep: bool) -> anyhow::Result<Proxy> {
        let upstream = http::loopback_port(upstream)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let shared = tally.clone();
        thread::Builder::new()
            .name("bench-proxy".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let tally = shared.clone();
                    let _ = thread::Builder::new()
                        .name("bench-proxy-conn".into())
                        .spawn(move || serve(stream, upstream, &tally, keep));
                }
            })?;
        Ok(Proxy { port, tally })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What was seen since the last take; the counts start again from zero.
    pub fn take(&self) -> Tally {
        std::mem::take(&mut *lock(&self.tally))
    }
}

fn lock(tally: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(|e| e.into_inner())
}

/// One client connection: its requests in turn, over one upstream connection.
fn serve(mut client: TcpStream, upstream: u16, tally: &Mutex<Tally>, keep: bool) {
    let _ = client.set_nodelay(true);
    let mut up: Option<TcpStream> = None;
    loop {
        let request = match http::read_request(&mut client) {
            Ok(Some(r)) => r,
            _ => return,
        };
        if request.starts_with(b"GET /__bench/take ") {
            let taken = std::mem::take(&mut *lock(tally));
            let body = taken.to_json().to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if client.write_all(answer.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let operation = identify(&request);
        let sent = std::time::Instant::now();
        let answer = exchange(&mut up, upstream, &request);
        let waited = sent.elapsed().as_secs_f64() * 1e3;
        let (response, keep_alive) = match answer {
            Ok(r) => r,
            Err(e) => {
                eprintln!("bench-proxy: {operation} to moto failed: {e}");
                return;
            }
        };
        let status = http::status(&response);
        {
            let mut t = lock(tally);
            *t.calls.entry(operation.clone()).or_default() += 1;
            *t.upstream_ms.entry(operation.clone()).or_default() += waited;
            if status >= 400 {
                *t.failed.entry(operation.clone()).or_default() += 1;
            }
            let mut step = json!({"op": operation, "status": status});
            if operation.starts_with("dynamodb:") {
                step["detail"] = dynamo_detail(http::body(&request));
            }
            t.sequence.push(step);
            if keep && KEPT.contains(&operation.as_str()) {
                t.kept.push(Kept {
                    operation,
                    status,
                    body: String::from_utf8_lossy(http::body(&request)).into_owned(),
                });
            }
        }
        // moto closing its side ends the client's connection too, as it would directly.
        if client.write_all(&response).is_err() || !keep_alive {
            return;
        }
    }
}

/// Sends `request` upstream on the connection kept for this client (a new one when there is
/// none, or when the kept one turns out closed) and reads the answer.
fn exchange(
    up: &mut Option<TcpStream>,
    upstream: u16,
    request: &[u8],
) -> std::io::Result<(Vec<u8>, bool)> {
    for attempt in 0..2 {
        let stream = match up {
            Some(s) => s,
            None => {
                let s = TcpStream::connect(("127.0.0.1", upstream))?;
                s.set_read_timeout(Some(Duration::from_secs(120)))?;
                s.set_nodelay(true)?;
                up.insert(s)
            }
        };
        let sent = stream.write_all(request);
        let answer = sent.and_then(|()| http::read_response(stream, request));
        match answer {
            Ok((response, keep_alive)) => {
                if !keep_alive {
                    *up = None;
                }
                return Ok((response, keep_alive));
            }
            // A kept connection moto closed meanwhile: once more on a fresh one.
            Err(_) if attempt == 0 => *up = None,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("unreachable: two attempts"))
}

/// What a DynamoDB request touched: the kind of item (by the shape of its key: an instance,
/// a delivery record, ...), its update and condition expressions.
fn dynamo_detail(body: &[u8]) -> Value {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Value::Null;
    };
    let key = v["Key"]["Ident"]["S"]
        .as_str()
        .or_else(|| v["Item"]["Ident"]["S"].as_str())
        .map(|k| {
            // The kind of key, not the key: `i-…`, `delivery#…`, a command id, ...
            let cut = k.find(['#', ':', '/']).map_or(k.len().min(2), |i| i + 1);
            format!("{}…", &k[..cut])
        });
    json!({
        "key": key,
        "update": v["UpdateExpression"],
        "condition": v["ConditionExpression"],
        "item_type": v["Item"]["ItemType"]["S"],
    })
}

/// `service:Operation` of a request: the service from the SigV4 credential scope of its
/// `Authorization` header, the operation from `X-Amz-Target` (JSON protocols), `Action=`
/// (query protocols) or the method and path (REST: Route 53, moto's own API).
fn identify(request: &[u8]) -> String {
    let service = header(request, "authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("http")
        .to_owned();
    let operation = if let Some(target) = header(request, "x-amz-target") {
        target.rsplit('.').next().unwrap_or(target).to_owned()
    } else if let Some(action) = String::from_utf8_lossy(http::body(request))
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action=").map(str::to_owned))
    {
        action
    } else {
        let line = String::from_utf8_lossy(&request[..http::find(request, b"\r\n").unwrap_or(0)])
            .into_owned();
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default();
        if path.ends_with("/rrset") || path.ends_with("/rrset/") {
            if method == "POST" {
                "ChangeResourceRecordSets".to_owned()
            } else {
                "ListResourceRecordSets".to_owned()
            }
        } else {
            format!("{method} {path}")
        }
    };
    format!("{service}:{operation}")
}

#[cfg(test)]
mod tests {
    use super::identify;

    #[test]
    fn operations_are_named_by_service_and_operation() {
        let auth = "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";
        let get = format!(
            "POST / HTTP/1.1\r\n{auth}\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n\r\n{{}}"
        );
        assert_eq!(identify(get.as_bytes()), "dynamodb:GetItem");
        let query = "POST / HTTP/1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/autoscaling/aws4_request\r\n\r\nAction=CompleteLifecycleAction&Version=2011-01-01";
        assert_eq!(
            identify(query.as_bytes()),
            "autoscaling:CompleteLifecycleAction"
        );
    }
}
