//! HTTP/1.1, just enough for the layer: reading a request, parsing moto's
//! answer (chunked or not), rendering EC2's error answers.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::xml::{element_text, escape};

/// Reads one request: its head (up to the blank line) and a body of
/// `Content-Length` bytes.
pub(super) async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&request, b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    Some((head, request[head_end..head_end + length].to_vec()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (case-insensitive) in an HTTP head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// An answer from moto: status, head lines (status line first) and body.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub status: u16,
    pub head: Vec<String>,
    pub body: Vec<u8>,
}

impl Upstream {
    pub(super) fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The answer as bytes, with its own `Content-Length` and `Connection: close`.
    pub fn render(&self) -> Vec<u8> {
        let mut out = String::new();
        for (i, line) in self.head.iter().enumerate() {
            let lower = line.to_ascii_lowercase();
            let framing = ["content-length:", "transfer-encoding:", "connection:"]
                .iter()
                .any(|h| lower.starts_with(h));
            if i == 0 || !framing {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Parses a complete HTTP/1.1 response (moto closes the connection after it);
/// a chunked body is decoded.
pub fn parse_response(raw: &[u8]) -> Option<Upstream> {
    let head_end = find(raw, b"\r\n\r\n")?;
    let head_text = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let head: Vec<String> = head_text.split("\r\n").map(str::to_owned).collect();
    let status = head.first()?.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &raw[head_end + 4..];
    let chunked = header(&head_text, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        match header(&head_text, "content-length").and_then(|v| v.parse::<usize>().ok()) {
            Some(n) => rest.get(..n)?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Some(Upstream { status, head, body })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// EC2's error answer: `<Response><Errors><Error>` with the documented status.
pub fn error_response(status: u16, code: &str, message: &str, request_id: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        escape(code),
        escape(message),
        escape(request_id)
    );
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nx-amzn-RequestId: {request_id}\r\nConnection: close\r\n\r\n{body}",
        reason_phrase(status),
        body.len()
    )
    .into_bytes()
}

/// EC2's answer to `action`: `<{action}Response>` holding `elements`.
pub fn ok_response(action: &str, elements: &str, request_id: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>{}</requestId>{elements}</{action}Response>",
        escape(request_id)
    );
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nx-amzn-RequestId: {request_id}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(super) fn plain_response(status: u16, text: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        reason_phrase(status),
        text.len()
    )
    .into_bytes()
}

/// Status and error code (or `OK`) of a rendered answer.
pub(super) fn status_and_code(answer: &[u8]) -> (u16, String) {
    match parse_response(answer) {
        Some(a) if a.status == 200 => (200, "OK".to_owned()),
        Some(a) => (
            a.status,
            error_code(&a.body).unwrap_or_else(|| a.status.to_string()),
        ),
        None => (0, "unparsable".to_owned()),
    }
}

/// The `<Code>` of an EC2 error body.
pub fn error_code(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    element_text(&text, "Code").map(str::to_owned)
}
