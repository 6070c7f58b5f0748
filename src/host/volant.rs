//! The host client of the Volant agent (seed 000): HTTP/1.1 with JSON bodies, one request per
//! connection, as `vsock.Client.DoJSON` does over AF_VSOCK (CID 3, port 8080).
//!
//! Each [`VolantClient::request`] dials its own connection (no retry by default: the real client
//! has none), sends one request with `Connection: close`, reads one response and closes. One
//! deadline, [`DialOptions::request_deadline`] (30 s by default, Volant's), bounds the whole
//! request from the dial. A 2xx reply returns its JSON body (`null` when empty); any other
//! status is [`ClientError::Agent`] with `code = "http <status>"` and the body as the message —
//! the real client's error text is `http <status>: <body>`, which [`agent_error_text`] rebuilds.
//!
//! guestwire reaches the agent over any endpoint (`unix:`, `hvsock:PATH:8080`, `tcp:`); the real
//! client's AF_VSOCK cannot reach a Cloud Hypervisor guest, which offers only hybrid vsock
//! (PROTOCOLS.md §1).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::call::{CallOp, CallOutcome};
use super::dial::{DialOptions, dial};
use super::error::{ClientError, Phase};
use super::retry::{Deadlines, RetryPolicy};
use crate::io::{Endpoint, FramedReader, FramedWriter};
use crate::wire::hex::HexPreview;
use crate::wire::http::{HttpDecoder, HttpEncoder, HttpKind, HttpMessage};
use crate::wire::{Encoder, WireError};

/// The agent's vsock (and TCP) port (seed 000).
pub const DEFAULT_PORT: u32 = 8080;

/// The guest CID the seed's `AgentRequestVsockDefault` uses.
pub const DEFAULT_CID: u32 = 3;

/// The health-check path (the mock also serves `/healthz`).
pub const HEALTH_PATH: &str = "/health";

/// The `Host` header sent: the agent ignores it, and a vsock peer has no host name.
pub const HOST_HEADER: &str = "vsock";

/// Most informational (1xx) responses skipped before the final one.
const MAX_INFORMATIONAL: usize = 8;

/// Volant's client options: one attempt (the real client does not retry) and its 30 s request
/// deadline.
pub fn default_options() -> DialOptions {
    DialOptions {
        retry: RetryPolicy::once(),
        deadlines: Deadlines::volant(),
        hooks: super::dial::DialHooks::default(),
    }
}

/// The real client's text for an HTTP error: `http <status>: <body>` (for an
/// [`ClientError::Agent`] from this client; `None` for other errors).
pub fn agent_error_text(error: &ClientError) -> Option<String> {
    match error {
        ClientError::Agent { code, message } if code.starts_with("http ") => {
            Some(format!("{code}: {message}"))
        }
        _ => None,
    }
}

/// A response: its status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The JSON body (`null` when empty).
    pub body: Value,
}

/// A host client of one Volant agent.
#[derive(Debug, Clone)]
pub struct VolantClient {
    endpoint: Endpoint,
    opts: DialOptions,
}

impl VolantClient {
    /// A client of the agent at `endpoint`; [`default_options`] are the real client's.
    pub fn new(endpoint: Endpoint, opts: DialOptions) -> Self {
        Self { endpoint, opts }
    }

    /// The agent's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// One request on its own connection: `body` (if any) is sent as JSON; a 2xx reply's JSON
    /// body is returned (`null` when empty), any other status is [`ClientError::Agent`].
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let deadline = self.opts.request_deadline();
        self.send(method, path, body.as_ref(), deadline)
            .await
            .map(|r| r.body)
    }

    /// Like [`request`](Self::request), with the status, under `deadline`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        deadline: Duration,
    ) -> Result<Reply, ClientError> {
        let frame = encode(method, path, body)?;
        let at = Instant::now() + deadline;
        let dialed = match tokio::time::timeout_at(at, dial(&self.endpoint, &self.opts)).await {
            Ok(dialed) => dialed?,
            Err(_) => {
                return Err(ClientError::TimedOut {
                    phase: Phase::Connect,
                    after: deadline,
                    detail: "the request deadline passed while dialing".into(),
                });
            }
        };
        exchange_until(dialed.stream, &frame, at, deadline).await
    }

    /// The health check: `GET /health`, which must answer 200; returns its JSON body.
    pub async fn health(&self) -> Result<Value, ClientError> {
        let deadline = self.opts.request_deadline();
        let reply = self.send("GET", HEALTH_PATH, None, deadline).await?;
        if reply.status != 200 {
            return Err(ClientError::Protocol {
                reason: format!(
                    "health check answered {} (a Volant health check needs 200)",
                    reply.status
                ),
            });
        }
        Ok(reply.body)
    }

    /// Runs a protocol-independent operation:
    /// - `ping` → [`health`](Self::health);
    /// - `exec PROGRAM ACTION ARGS…` → `POST /v1/plugin/<PROGRAM>/actions/<ACTION>` with body
    ///   `{"args": [ARGS…]}` (Volant has no command execution: its unit of work is a plugin
    ///   action; see [`plugin_action_path`]); a timeout longer than the request deadline
    ///   extends it;
    /// - `raw JSON` → `{"method", "path", "body"}` (body optional) sent as is;
    /// - anything else → [`ClientError::Invalid`].
    pub async fn call(&self, op: &CallOp) -> Result<CallOutcome, ClientError> {
        let base = self.opts.request_deadline();
        let (method, path, body, deadline) = match op {
            CallOp::Ping => {
                let body = self.health().await?;
                return Ok(CallOutcome {
                    summary: format!("healthy: 200 {body}"),
                    reply: body,
                    ..CallOutcome::default()
                });
            }
            CallOp::Exec {
                program,
                args,
                timeout,
            } => {
                let Some((action, rest)) = args.split_first() else {
                    return Err(ClientError::Invalid(
                        "volant exec needs PLUGIN ACTION [ARGS…] (a plugin action, not a command)"
                            .into(),
                    ));
                };
                let path = plugin_action_path(program, action)?;
                let deadline = timeout.map_or(base, |t| t.max(base));
                (
                    "POST".to_string(),
                    path,
                    Some(json!({ "args": rest })),
                    deadline,
                )
            }
            CallOp::Raw { json } => {
                let (method, path, body) = parse_raw(json)?;
                (method, path, body, base)
            }
            other => {
                return Err(ClientError::Invalid(format!(
                    "volant has no {} operation (its API is health and plugin actions: use \
                     ping, exec PLUGIN ACTION [ARGS…] or raw)",
                    other.name()
                )));
            }
        };
        let reply = self.send(&method, &path, body.as_ref(), deadline).await?;
        Ok(CallOutcome {
            summary: format!("{} {method} {path}", reply.status),
            reply: reply.body,
            ..CallOutcome::default()
        })
    }
}

/// `/v1/plugin/<plugin>/actions/<action>`, each name percent-encoded (anything but
/// `A-Z a-z 0-9 - . _ ~`), as the seed's docs show the route. Empty names are refused.
pub fn plugin_action_path(plugin: &str, action: &str) -> Result<String, ClientError> {
    if plugin.is_empty() || action.is_empty() {
        return Err(ClientError::Invalid(
            "a plugin action needs a plugin and an action name".into(),
        ));
    }
    Ok(format!(
        "/v1/plugin/{}/actions/{}",
        percent_encode(plugin),
        percent_encode(action)
    ))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `{"method", "path", "body"}`.
fn parse_raw(json: &str) -> Result<(String, String, Option<Value>), ClientError> {
    let invalid = |why: &str| {
        ClientError::Invalid(format!(
            "raw volant JSON must be {{\"method\", \"path\", \"body\"}}: {why}"
        ))
    };
    let value: Value = serde_json::from_str(json).map_err(|e| invalid(&e.to_string()))?;
    let Value::Object(mut map) = value else {
        return Err(invalid("not an object"));
    };
    let method = match map.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(invalid("\"method\" must be a string")),
    };
    let path = match map.remove("path") {
        Some(Value::String(p)) if p.starts_with('/') => p,
        _ => return Err(invalid("\"path\" must be a string starting with /")),
    };
    let body = map.remove("body").filter(|b| !b.is_null());
    Ok((method, path, body))
}

/// Encodes the request (before dialing, so a request that cannot be sent never connects).
fn encode(method: &str, path: &str, body: Option<&Value>) -> Result<Bytes, ClientError> {
    let bytes = match body {
        Some(b) => serde_json::to_vec(b)
            .map_err(|e| ClientError::Invalid(format!("cannot encode the body: {e}")))?,
        None => Vec::new(),
    };
    let mut message = HttpMessage::request(method, path, bytes)
        .with_header("Host", HOST_HEADER)
        .with_header("Accept", "application/json")
        .with_header("Connection", "close");
    if body.is_some() {
        message = message.with_header("Content-Type", "application/json");
    }
    let mut buf = BytesMut::new();
    HttpEncoder::new()
        .encode(&message, &mut buf)
        .map_err(|e| ClientError::Invalid(format!("cannot send {method} {path}: {e}")))?;
    Ok(buf.freeze())
}

/// One exchange on an already connected `stream` (past any handshake): send `method path` with
/// `body`, read the response, within `deadline`. What [`VolantClient::send`] does after dialing;
/// for tests over in-memory streams and end-to-end fuzzing.
pub async fn request_on<S>(
    stream: S,
    method: &str,
    path: &str,
    body: Option<&Value>,
    deadline: Duration,
) -> Result<Reply, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = encode(method, path, body)?;
    exchange_until(stream, &frame, Instant::now() + deadline, deadline).await
}

async fn exchange_until<S>(
    stream: S,
    frame: &[u8],
    at: Instant,
    after: Duration,
) -> Result<Reply, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout_at(at, exchange(stream, frame)).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::TimedOut {
            phase: Phase::Request,
            after,
            detail: "no complete HTTP response".into(),
        }),
    }
}

async fn exchange<S>(stream: S, frame: &[u8]) -> Result<Reply, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut reader = FramedReader::new(stream, HttpDecoder::new(HttpKind::Response));
    FramedWriter::new(reader.get_mut(), ())
        .send_raw(frame)
        .await
        .map_err(|e| ClientError::from_write(Phase::Request, e))?;
    for _ in 0..=MAX_INFORMATIONAL {
        let frame = match reader.next().await {
            None => {
                return Err(ClientError::Closed {
                    phase: Phase::Request,
                    detail: "no HTTP response".into(),
                });
            }
            Some(Err(e)) => return Err(ClientError::from_read(Phase::Request, e, None)),
            Some(Ok(frame)) => frame,
        };
        let HttpMessage::Response { status, body, .. } = frame.message else {
            return Err(ClientError::Protocol {
                reason: "the agent sent a request instead of a response".into(),
            });
        };
        if (100..200).contains(&status) {
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(ClientError::Agent {
                code: format!("http {status}"),
                message: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        return json_body(&body, frame.offset).map(|body| Reply { status, body });
    }
    Err(ClientError::Protocol {
        reason: format!("more than {MAX_INFORMATIONAL} informational (1xx) responses"),
    })
}

/// A 2xx body as JSON: `null` when empty, [`ClientError::Malformed`] with the raw body when it is
/// not JSON.
fn json_body(body: &Bytes, offset: u64) -> Result<Value, ClientError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| ClientError::Malformed {
        error: WireError::Malformed {
            offset,
            format: "json",
            reason: format!("the response body is not JSON: {e}"),
            bytes: HexPreview::of(body),
        },
        raw: body.clone(),
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Runs one request against a scripted server that answers `reply`; returns what the server
    /// received and the client's result.
    async fn against(
        reply: &'static [u8],
        body: Option<Value>,
    ) -> (String, Result<Reply, ClientError>) {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let script = async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read until the head (and, for this test, any small body) has arrived.
            loop {
                let n = server.read(&mut buf).await.expect("read");
                got.extend_from_slice(&buf[..n]);
                if n == 0 || got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            server.write_all(reply).await.expect("reply");
            drop(server);
            String::from_utf8_lossy(&got).into_owned()
        };
        let call = request_on(
            client,
            "POST",
            "/v1/x",
            body.as_ref(),
            Duration::from_secs(5),
        );
        let (result, sent) = tokio::join!(call, script);
        (sent, result)
    }

    #[tokio::test]
    async fn sends_connection_close_and_json() {
        let (sent, result) = against(
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
            Some(json!({"a": 1})),
        )
        .await;
        assert!(sent.starts_with("POST /v1/x HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("Connection: close\r\n"), "{sent}");
        assert!(
            sent.contains("Content-Type: application/json\r\n"),
            "{sent}"
        );
        let reply = result.expect("reply");
        assert_eq!(reply.body, json!({"ok": true}));
    }

    #[tokio::test]
    async fn error_status_is_an_agent_error_with_the_real_text() {
        let (_, result) = against(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy",
            None,
        )
        .await;
        let err = result.expect_err("503");
        assert_eq!(err.kind(), "agent_error");
        assert_eq!(agent_error_text(&err).as_deref(), Some("http 503: busy"));
    }

    #[tokio::test]
    async fn body_until_eof_and_empty_body() {
        let (_, result) = against(b"HTTP/1.1 200 OK\r\n\r\n[1,2]", None).await;
        assert_eq!(result.expect("eof body").body, json!([1, 2]));
        let (_, result) = against(b"HTTP/1.1 204 No Content\r\n\r\n", None).await;
        assert_eq!(result.expect("204").body, Value::Null);
    }

    #[tokio::test]
    async fn non_json_body_is_malformed_with_raw_bytes() {
        let (_, result) = against(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", None).await;
        match result.expect_err("not json") {
            ClientError::Malformed { raw, .. } => assert_eq!(&raw[..], b"abc"),
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn skips_informational_responses() {
        let (_, result) = against(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            None,
        )
        .await;
        assert_eq!(result.expect("200").body, json!({}));
    }

    #[tokio::test]
    async fn garbage_reply_is_malformed() {
        let (_, result) = against(b"\x00\x00\x00\x05hello", None).await;
        assert_eq!(result.expect_err("garbage").kind(), "malformed");
    }

    #[test]
    fn paths_and_raw() {
        assert_eq!(
            plugin_action_path("my plugin", "run/now").expect("path"),
            "/v1/plugin/my%20plugin/actions/run%2Fnow"
        );
        assert!(plugin_action_path("", "a").is_err());
        let (m, p, b) = parse_raw(r#"{"method":"PUT","path":"/x","body":{"k":1}}"#).expect("raw");
        assert_eq!(
            (m.as_str(), p.as_str(), b),
            ("PUT", "/x", Some(json!({"k": 1})))
        );
        assert_eq!(
            parse_raw(r#"{"path":"/x"}"#).expect_err("no method").kind(),
            "invalid"
        );
        assert_eq!(
            parse_raw(r#"{"method":"GET","path":"x"}"#)
                .expect_err("relative")
                .kind(),
            "invalid"
        );
    }
}
