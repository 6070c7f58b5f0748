//! HTTP/1.1 framing for the agent protocols that speak it: `volant` (one request per connection
//! over vsock port 8080, seed 000) and `ch-api` (the Cloud Hypervisor REST API on its
//! `--api-socket`, base `/api/v1`, seed 002).
//!
//! [`HttpDecoder`] parses heads with `httparse` and bodies by `Content-Length`, by
//! `Transfer-Encoding: chunked`, or (responses only) by the end of the stream; [`HttpEncoder`]
//! writes messages with a `Content-Length`. [`HttpMessage`] is the decoded message, with helpers
//! for JSON bodies and ch-api endpoint names.

mod decoder;
mod encoder;
mod framing;

use base64::Engine as _;
use bytes::Bytes;

use super::codec::Describe;

pub use decoder::{HttpDecoder, HttpKind, HttpLimits};
pub use encoder::HttpEncoder;

/// Default maximum size of a message head (start line and headers): 64 KiB.
pub const DEFAULT_MAX_HEAD: usize = 64 * 1024;

/// Default maximum number of headers in one message: 100.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Default maximum body size: 16 MiB.
pub const DEFAULT_MAX_BODY: u64 = 16 * 1024 * 1024;

/// The path prefix of every Cloud Hypervisor API endpoint.
pub const CH_API_PREFIX: &str = "/api/v1/";

/// One HTTP/1.x message.
///
/// Header names and values are kept as sent (in order, duplicates included); bytes that are not
/// UTF-8 (obs-text) are replaced with U+FFFD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpMessage {
    /// A request.
    Request {
        /// The method, e.g. `PUT`.
        method: String,
        /// The request target, e.g. `/api/v1/vm.boot`.
        path: String,
        /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
        version: u8,
        /// The headers, in order.
        headers: Vec<(String, String)>,
        /// The body (de-chunked).
        body: Bytes,
    },
    /// A response.
    Response {
        /// The status code, e.g. 200.
        status: u16,
        /// The reason phrase, e.g. `OK` (may be empty).
        reason: String,
        /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
        version: u8,
        /// The headers, in order.
        headers: Vec<(String, String)>,
        /// The body (de-chunked).
        body: Bytes,
    },
}

impl HttpMessage {
    /// An HTTP/1.1 request with no headers.
    pub fn request(method: &str, path: &str, body: impl Into<Bytes>) -> Self {
        Self::Request {
            method: method.to_string(),
            path: path.to_string(),
            version: 1,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// An HTTP/1.1 response with the status's usual reason phrase and no headers.
    pub fn response(status: u16, body: impl Into<Bytes>) -> Self {
        Self::Response {
            status,
            reason: reason_phrase(status).to_string(),
            version: 1,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers_mut()
            .push((name.to_string(), value.to_string()));
        self
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        match self {
            Self::Request { headers, .. } | Self::Response { headers, .. } => headers,
        }
    }

    /// The headers, mutable.
    pub fn headers_mut(&mut self) -> &mut Vec<(String, String)> {
        match self {
            Self::Request { headers, .. } | Self::Response { headers, .. } => headers,
        }
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        match self {
            Self::Request { body, .. } | Self::Response { body, .. } => body,
        }
    }

    /// The minor HTTP version.
    pub fn version(&self) -> u8 {
        match self {
            Self::Request { version, .. } | Self::Response { version, .. } => *version,
        }
    }

    /// The body parsed as JSON, when it is non-empty JSON.
    pub fn json_body(&self) -> Option<serde_json::Value> {
        let body = self.body();
        if body.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        serde_json::from_slice(body).ok()
    }

    /// For a request to the Cloud Hypervisor API, the endpoint: `/api/v1/vm.boot` → `vm.boot`.
    pub fn ch_api_endpoint(&self) -> Option<&str> {
        match self {
            Self::Request { path, .. } => ch_api_endpoint(path),
            Self::Response { .. } => None,
        }
    }

    /// Whether this is a response with a 2xx status (volant turns any other into an error).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Response { status, .. } if (200..300).contains(status))
    }
}

/// The Cloud Hypervisor endpoint named by a request path (`/api/v1/vm.boot?x` → `vm.boot`), or
/// `None` when the path is not under [`CH_API_PREFIX`].
pub fn ch_api_endpoint(path: &str) -> Option<&str> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let name = path.strip_prefix(CH_API_PREFIX)?.trim_end_matches('/');
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The usual reason phrase of a status code (empty when unknown).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Whether a response with this status never has a body (1xx, 204, 304).
pub fn status_has_no_body(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Size for summaries: `0B`, `123B`, `4.0KiB`, `2.5MiB`.
fn human_size(n: usize) -> String {
    match n {
        0..1024 => format!("{n}B"),
        1024..1_048_576 => format!("{:.1}KiB", n as f64 / 1024.0),
        _ => format!("{:.1}MiB", n as f64 / 1_048_576.0),
    }
}

impl Describe for HttpMessage {
    fn type_name(&self) -> String {
        match self {
            Self::Request { .. } => "request".into(),
            Self::Response { .. } => "response".into(),
        }
    }

    fn summary(&self) -> String {
        match self {
            Self::Request {
                method, path, body, ..
            } => format!("{method} {path} {}", human_size(body.len())),
            Self::Response {
                status,
                reason,
                body,
                ..
            } if reason.is_empty() => format!("{status} {}", human_size(body.len())),
            Self::Response {
                status,
                reason,
                body,
                ..
            } => format!("{status} {reason} {}", human_size(body.len())),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = match self {
            Self::Request {
                method,
                path,
                version,
                ..
            } => {
                let mut v = serde_json::json!({
                    "method": method,
                    "path": path,
                    "version": format!("HTTP/1.{version}"),
                });
                if let (Some(ep), Some(o)) = (ch_api_endpoint(path), v.as_object_mut()) {
                    o.insert("endpoint".into(), ep.into());
                }
                v
            }
            Self::Response {
                status,
                reason,
                version,
                ..
            } => serde_json::json!({
                "status": status,
                "reason": reason,
                "version": format!("HTTP/1.{version}"),
            }),
        };
        let Some(o) = v.as_object_mut() else {
            return v;
        };
        let headers: Vec<serde_json::Value> = self
            .headers()
            .iter()
            .map(|(n, v)| serde_json::json!([n, v]))
            .collect();
        o.insert("headers".into(), headers.into());
        let body = self.body();
        o.insert("body_len".into(), body.len().into());
        if !body.is_empty() {
            let (encoding, value) = if let Some(json) = self.json_body() {
                ("json", json)
            } else if let Ok(text) = std::str::from_utf8(body) {
                ("utf8", serde_json::Value::String(text.to_string()))
            } else {
                let b64 = base64::engine::general_purpose::STANDARD.encode(body);
                ("base64", serde_json::Value::String(b64))
            };
            o.insert("body_encoding".into(), encoding.into());
            o.insert("body".into(), value);
        }
        v
    }
}

#[cfg(test)]
mod tests;
