//! A local AWS Lambda Runtime API (the HTTP interface a custom runtime polls), enough to run
//! the real `bootstrap` binary as Lambda would: `GET /2018-06-01/runtime/invocation/next`
//! hands out the queued payloads with their request id and deadline, and the function's
//! `.../response`, `.../error` and `/runtime/init/error` posts are recorded. Loopback only.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `POST .../response`.
    Response(Value),
    /// `POST .../error`.
    Error(Value),
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value, u64)>,
    answers: HashMap<String, Answer>,
    init_error: Option<Value>,
    next_id: u64,
}

/// The API server; it stops with the test binary.
#[derive(Clone)]
pub struct RuntimeApi {
    port: u16,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl RuntimeApi {
    /// Starts the server on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the runtime API");
        let port = listener.local_addr().expect("its address").port();
        let api = RuntimeApi {
            port,
            state: Arc::default(),
        };
        let server = api.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let api = server.clone();
                thread::spawn(move || api.serve(stream));
            }
        });
        api
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the function.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Queues `payload` with `budget` before its deadline and waits (at most `wait`) for the
    /// function's answer.
    pub fn invoke(&self, payload: Value, budget: Duration, wait: Duration) -> Answer {
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().expect("state");
        s.next_id += 1;
        let id = format!("req-{}", s.next_id);
        let deadline = SystemTime::now() + budget;
        let ms = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64;
        s.queue.push_back((id.clone(), payload, ms));
        cv.notify_all();
        let started = Instant::now();
        loop {
            if let Some(a) = s.answers.remove(&id) {
                return a;
            }
            let left = wait.saturating_sub(started.elapsed());
            assert!(!left.is_zero(), "no answer to {id} within {wait:?}");
            s = cv.wait_timeout(s, left).expect("state").0;
        }
    }

    /// The init error the function posted, if any.
    pub fn init_error(&self) -> Option<Value> {
        self.state.0.lock().expect("state").init_error.clone()
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let mut writer = stream;
        while let Some((method, path, body)) = read_request(&mut reader) {
            let (status, headers, answer) = self.route(&method, &path, body);
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n",
                answer.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            if writer.write_all(head.as_bytes()).is_err()
                || writer.write_all(answer.as_bytes()).is_err()
            {
                return;
            }
        }
    }

    fn route(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> (&'static str, Vec<(String, String)>, String) {
        let (lock, cv) = &*self.state;
        let json = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
        if method == "GET" && path == "/2018-06-01/runtime/invocation/next" {
            let mut s = lock.lock().expect("state");
            loop {
                if let Some((id, payload, deadline)) = s.queue.pop_front() {
                    let headers = vec![
                        ("Lambda-Runtime-Aws-Request-Id".to_owned(), id),
                        (
                            "Lambda-Runtime-Deadline-Ms".to_owned(),
                            deadline.to_string(),
                        ),
                        (
                            "Lambda-Runtime-Invoked-Function-Arn".to_owned(),
                            "arn:aws:lambda:us-east-1:123456789012:function:lifecycle".to_owned(),
                        ),
                        (
                            "Lambda-Runtime-Trace-Id".to_owned(),
                            "Root=1-00000000-000000000000000000000000".to_owned(),
                        ),
                    ];
                    return ("200 OK", headers, payload.to_string());
                }
                s = cv.wait(s).expect("state");
            }
        }
        let mut s = lock.lock().expect("state");
        if method == "POST" && path == "/2018-06-01/runtime/init/error" {
            s.init_error = Some(json());
            cv.notify_all();
            return ("202 Accepted", vec![], "{\"status\":\"OK\"}".into());
        }
        if let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") {
            if let Some(id) = rest.strip_suffix("/response") {
                s.answers.insert(id.to_owned(), Answer::Response(json()));
                cv.notify_all();
                return ("202 Accepted", vec![], "{\"status\":\"OK\"}".into());
            }
            if let Some(id) = rest.strip_suffix("/error") {
                s.answers.insert(id.to_owned(), Answer::Error(json()));
                cv.notify_all();
                return ("202 Accepted", vec![], "{\"status\":\"OK\"}".into());
            }
        }
        ("404 Not Found", vec![], "{}".into())
    }
}

/// One HTTP/1.1 request: method, path and body (by `Content-Length` or chunked).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse().ok()?;
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some((method, path, body))
}
