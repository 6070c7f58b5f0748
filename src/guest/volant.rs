//! The mock Volant agent (seed 000): an HTTP/1.1 server with JSON bodies, as the real agent
//! serves on vsock port 8080 (and TCP :8080).
//!
//! Routes:
//! - `GET /health` and `GET /healthz` → 200 `{"status":"ok"}`;
//! - `POST /v1/plugin/<plugin>/actions/<action>` → 200 `{"plugin","action","input"}`, where
//!   `input` echoes the JSON body (`null` when empty) and the names are percent-decoded. (The
//!   real agent forwards an action to the plugin's manifest path; the echo is the mock's.)
//! - a known path with another method → 405, anything else → 404, a body that is not JSON →
//!   400; every error body is `{"error": "…"}` (guestwire's shape: Volant's own is not recorded).
//! - bytes that are not HTTP → 400, then the connection closes.
//!
//! The real client sends one request per connection with `Connection: close`; the mock also keeps
//! a connection alive for more requests unless the request says `Connection: close` (or is
//! HTTP/1.0 without `keep-alive`), closing it after [`IDLE_TIMEOUT`] without a request.
//! [`GuestConfig::reply_delay`] is slept before every response.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::config::GuestConfig;
use super::error::{ConnectionReport, GuestError};
use crate::io::{FramedReader, FramedWriter, ReadError};
use crate::wire::http::{HttpDecoder, HttpEncoder, HttpKind, HttpMessage};
use crate::wire::{Encoder, WireError};

/// How long a kept-alive connection (or a new one) may stay without a request before the mock
/// closes it (a guestwire bound).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one response may take to write: the LimiQuantix agent's 10 s write timeout
/// (PROTOCOLS.md §2), the closest real figure.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most requests served on one kept-alive connection before the mock closes it.
pub const MAX_REQUESTS_PER_CONNECTION: u64 = 1000;

/// Serves one connection: requests until `Connection: close`, the end of the stream, a bad
/// request (answered 400), [`IDLE_TIMEOUT`] or [`MAX_REQUESTS_PER_CONNECTION`]. An error only
/// when the connection itself failed (reset, write timeout, a request cut short).
pub async fn serve_connection<S>(
    stream: S,
    cfg: Arc<GuestConfig>,
) -> Result<ConnectionReport, GuestError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, wr) = tokio::io::split(stream);
    let mut reader = FramedReader::new(rd, HttpDecoder::new(HttpKind::Request));
    let mut writer = FramedWriter::new(wr, ());
    let mut report = ConnectionReport::default();
    while report.requests < MAX_REQUESTS_PER_CONNECTION {
        let request = match reader.next_timeout(IDLE_TIMEOUT).await {
            None | Some(Err(ReadError::TimedOut { .. })) => break,
            Some(Ok(frame)) => frame.message,
            Some(Err(ReadError::Wire(e))) if !matches!(e, WireError::Truncated { .. }) => {
                report.bad_frames += 1;
                let body = json!({ "error": format!("bad request: {e}") });
                respond(&mut writer, &cfg, 400, &body, true).await?;
                break;
            }
            Some(Err(e)) => return Err(e.into()),
        };
        let HttpMessage::Request {
            method,
            path,
            version,
            body,
            ..
        } = &request
        else {
            // Not produced by a request decoder; answered like any bad request.
            report.bad_frames += 1;
            let body = json!({ "error": "expected a request" });
            respond(&mut writer, &cfg, 400, &body, true).await?;
            break;
        };
        let close =
            wants_close(&request, *version) || report.requests + 1 >= MAX_REQUESTS_PER_CONNECTION;
        let (status, reply) = route(method, path, body);
        respond(&mut writer, &cfg, status, &reply, close).await?;
        report.requests += 1;
        if close {
            break;
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer.get_mut().shutdown()).await;
    Ok(report)
}

/// Whether the connection ends after this request: `Connection: close`, or HTTP/1.0 without
/// `Connection: keep-alive`.
fn wants_close(request: &HttpMessage, version: u8) -> bool {
    let tokens = |name: &str| {
        request
            .headers()
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(name))
    };
    tokens("close") || (version == 0 && !tokens("keep-alive"))
}

/// The mock's answer to `method path` with `body`: a status and a JSON body.
pub fn route(method: &str, path: &str, body: &Bytes) -> (u16, Value) {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path == "/health" || path == "/healthz" {
        if method != "GET" {
            return not_allowed(method, path, "GET");
        }
        return (200, json!({ "status": "ok" }));
    }
    let segments: Vec<&str> = path.split('/').collect();
    if let ["", "v1", "plugin", plugin, "actions", action] = segments.as_slice()
        && !plugin.is_empty()
        && !action.is_empty()
    {
        if method != "POST" {
            return not_allowed(method, path, "POST");
        }
        let (Some(plugin), Some(action)) = (percent_decode(plugin), percent_decode(action)) else {
            return (400, json!({ "error": "bad percent-encoding in the path" }));
        };
        let input = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(v) => v,
                Err(e) => {
                    return (
                        400,
                        json!({ "error": format!("the body is not JSON: {e}") }),
                    );
                }
            }
        };
        return (
            200,
            json!({ "plugin": plugin, "action": action, "input": input }),
        );
    }
    (404, json!({ "error": "not found", "path": path }))
}

fn not_allowed(method: &str, path: &str, allowed: &str) -> (u16, Value) {
    (
        405,
        json!({ "error": format!("{method} is not allowed on {path} (use {allowed})") }),
    )
}

/// Decodes `%XX` escapes; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Writes one JSON response (after the configured delay), under [`WRITE_TIMEOUT`].
async fn respond<W: AsyncWrite + Unpin>(
    writer: &mut FramedWriter<W, ()>,
    cfg: &GuestConfig,
    status: u16,
    body: &Value,
    close: bool,
) -> Result<(), GuestError> {
    if !cfg.reply_delay.is_zero() {
        tokio::time::sleep(cfg.reply_delay).await;
    }
    let mut message = HttpMessage::response(status, body.to_string())
        .with_header("Content-Type", "application/json");
    if close {
        message = message.with_header("Connection", "close");
    }
    let mut buf = BytesMut::new();
    HttpEncoder::new()
        .encode(&message, &mut buf)
        .map_err(crate::io::WriteError::Encode)?;
    match tokio::time::timeout(WRITE_TIMEOUT, writer.send_raw(&buf)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(GuestError::WriteTimedOut(WRITE_TIMEOUT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let empty = Bytes::new();
        assert_eq!(
            route("GET", "/health", &empty),
            (200, json!({"status": "ok"}))
        );
        assert_eq!(route("GET", "/healthz?x=1", &empty).0, 200);
        assert_eq!(route("POST", "/health", &empty).0, 405);
        let body = Bytes::from_static(b"{\"k\":[1]}");
        assert_eq!(
            route("POST", "/v1/plugin/my%20p/actions/go", &body),
            (
                200,
                json!({"plugin": "my p", "action": "go", "input": {"k": [1]}})
            )
        );
        assert_eq!(
            route("POST", "/v1/plugin/p/actions/a", &empty).1["input"],
            Value::Null
        );
        assert_eq!(route("GET", "/v1/plugin/p/actions/a", &empty).0, 405);
        assert_eq!(
            route("POST", "/v1/plugin/p/actions/a", &Bytes::from_static(b"{")).0,
            400
        );
        assert_eq!(route("POST", "/v1/plugin/%zz/actions/a", &empty).0, 400);
        assert_eq!(route("POST", "/v1/plugin//actions/a", &empty).0, 404);
        assert_eq!(route("GET", "/nope", &empty).0, 404);
    }

    #[test]
    fn connection_close_rules() {
        let req = |v: u8, conn: Option<&str>| {
            let mut m = HttpMessage::request("GET", "/", Bytes::new());
            if let HttpMessage::Request { version, .. } = &mut m {
                *version = v;
            }
            if let Some(c) = conn {
                m = m.with_header("Connection", c);
            }
            m
        };
        assert!(!wants_close(&req(1, None), 1));
        assert!(wants_close(&req(1, Some("Close")), 1));
        assert!(wants_close(&req(1, Some("upgrade, close")), 1));
        assert!(wants_close(&req(0, None), 0));
        assert!(!wants_close(&req(0, Some("keep-alive")), 0));
    }
}
