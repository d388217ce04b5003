//! Just enough HTTP/1.1 for the proxy and the harness's own requests to moto: read one
//! request, read one response, find a header.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Reads one request: the head, then `Content-Length` bytes of body. `Ok(None)` when the
/// peer closed before a request began.
pub fn read_request(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut request = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = find(&request, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
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
    Ok(Some(request))
}

/// Reads one whole response to `request` from `up`: the bytes as they came, and whether the
/// connection may carry another request.
pub fn read_response(up: &mut TcpStream, request: &[u8]) -> std::io::Result<(Vec<u8>, bool)> {
    let mut response = Vec::new();
    let mut chunk = [0u8; 16384];
    let eof = |what: &str| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what.to_owned());
    let head_end = loop {
        if let Some(i) = find(&response, b"\r\n\r\n") {
            break i + 4;
        }
        let n = up.read(&mut chunk)?;
        if n == 0 {
            return Err(eof("closed before the end of the answer's head"));
        }
        response.extend_from_slice(&chunk[..n]);
    };
    let head = &response[..head_end];
    let status = status(head);
    let connection = header(head, "connection").map(str::to_ascii_lowercase);
    let mut keep_alive = match connection.as_deref() {
        Some("close") => false,
        Some("keep-alive") => true,
        _ => !head.starts_with(b"HTTP/1.0"),
    };
    let chunked = header(head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = header(head, "content-length").and_then(|v| v.parse::<usize>().ok());
    if request.starts_with(b"HEAD ") || status / 100 == 1 || status == 204 || status == 304 {
        response.truncate(head_end);
    } else if chunked {
        loop {
            if let Some(end) = chunked_end(&response[head_end..]) {
                response.truncate(head_end + end);
                break;
            }
            let n = up.read(&mut chunk)?;
            if n == 0 {
                return Err(eof("closed in the middle of a chunked answer"));
            }
            response.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(length) = length {
        while response.len() < head_end + length {
            let n = up.read(&mut chunk)?;
            if n == 0 {
                return Err(eof("closed before the end of the answer's body"));
            }
            response.extend_from_slice(&chunk[..n]);
        }
        response.truncate(head_end + length);
    } else {
        loop {
            let n = up.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            response.extend_from_slice(&chunk[..n]);
        }
        keep_alive = false;
    }
    Ok((response, keep_alive))
}

/// The status code of a response head (0 when unreadable).
pub fn status(head: &[u8]) -> u16 {
    std::str::from_utf8(&head[..find(head, b"\r\n").unwrap_or(head.len())])
        .ok()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The body of a message (after the head).
pub fn body(message: &[u8]) -> &[u8] {
    find(message, b"\r\n\r\n").map_or(&[][..], |i| &message[i + 4..])
}

/// The length of a complete chunked body at the start of `body`; `None` while incomplete.
fn chunked_end(body: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = at + find(body.get(at..)?, b"\r\n")?;
        let size_text = std::str::from_utf8(&body[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            loop {
                let end = at + find(body.get(at..)?, b"\r\n")?;
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
pub fn header<'a>(message: &'a [u8], name: &str) -> Option<&'a str> {
    let head_end = find(message, b"\r\n\r\n").unwrap_or(message.len());
    std::str::from_utf8(&message[..head_end])
        .ok()?
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// The first position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request to `127.0.0.1:port` on a connection of its own: status and body.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let (response, _) = read_response(&mut s, head.as_bytes())?;
    Ok((
        status(&response),
        String::from_utf8_lossy(self::body(&response)).into_owned(),
    ))
}

/// The port of `http://127.0.0.1:PORT`; anything but a loopback address is refused.
pub fn loopback_port(url: &str) -> anyhow::Result<u16> {
    let rest = url
        .trim_end_matches('/')
        .strip_prefix("http://127.0.0.1:")
        .ok_or_else(|| anyhow::anyhow!("not http://127.0.0.1:PORT: {url}"))?;
    rest.parse()
        .map_err(|e| anyhow::anyhow!("bad port in {url}: {e}"))
}
