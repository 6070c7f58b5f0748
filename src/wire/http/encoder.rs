//! Writes [`HttpMessage`]s as HTTP/1.x bytes with a `Content-Length` (never chunked), refusing
//! anything that would not decode back to the same message.

use bytes::{BufMut, BytesMut};

use super::{DEFAULT_MAX_BODY, HttpMessage, status_has_no_body};
use crate::wire::codec::Encoder;
use crate::wire::error::EncodeError;

/// Encoder for HTTP/1.x requests and responses.
///
/// Any `Content-Length` or `Transfer-Encoding` header in the message is replaced by a
/// `Content-Length` for the actual body. Requests carry it when they have a body or are `POST`,
/// `PUT` or `PATCH`; responses always, except 1xx, 204 and 304, which cannot have a body.
#[derive(Debug, Clone)]
pub struct HttpEncoder {
    max_body: u64,
}

impl Default for HttpEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpEncoder {
    /// An encoder with the default 16 MiB body limit.
    pub fn new() -> Self {
        Self::with_max_body(DEFAULT_MAX_BODY)
    }

    /// An encoder that refuses bodies over `max_body` bytes.
    pub fn with_max_body(max_body: u64) -> Self {
        Self { max_body }
    }
}

fn bad(what: String) -> EncodeError {
    EncodeError::Serialize(what)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_value(name: &str, value: &str) -> Result<(), EncodeError> {
    if !is_token(name) {
        return Err(bad(format!("header name {name:?} is not a token")));
    }
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(bad(format!("header {name} has control characters")));
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err(bad(format!(
            "header {name} has white space at its ends, which a parser strips"
        )));
    }
    Ok(())
}

impl Encoder<HttpMessage> for HttpEncoder {
    fn encode(&mut self, message: &HttpMessage, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let body = message.body();
        if body.len() as u64 > self.max_body {
            return Err(EncodeError::TooLarge {
                len: body.len() as u64,
                max: self.max_body,
            });
        }
        let version = message.version();
        if version > 1 {
            return Err(bad(format!("HTTP/1.{version} is not HTTP/1.0 or 1.1")));
        }
        let mut head = String::new();
        let with_length = match message {
            HttpMessage::Request { method, path, .. } => {
                if !is_token(method) {
                    return Err(bad(format!("method {method:?} is not a token")));
                }
                if path.is_empty() || !path.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(bad(format!("request target {path:?} is not printable")));
                }
                head.push_str(&format!("{method} {path} HTTP/1.{version}\r\n"));
                !body.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH")
            }
            HttpMessage::Response { status, reason, .. } => {
                if !(100..=999).contains(status) {
                    return Err(bad(format!("status {status} is not three digits")));
                }
                if reason.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                    return Err(bad(format!("reason {reason:?} has control characters")));
                }
                head.push_str(&format!("HTTP/1.{version} {status} {reason}\r\n"));
                if status_has_no_body(*status) {
                    if !body.is_empty() {
                        return Err(bad(format!("a {status} response cannot carry a body")));
                    }
                    false
                } else {
                    true
                }
            }
        };
        for (name, value) in message.headers() {
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                continue;
            }
            check_value(name, value)?;
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if with_length {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        dst.reserve(head.len() + body.len());
        dst.put_slice(head.as_bytes());
        dst.put_slice(body);
        Ok(())
    }
}
