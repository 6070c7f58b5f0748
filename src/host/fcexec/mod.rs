//! The host client of seed 001's Firecracker exec agent (`fcexec`): `DialGuest` + `RunWorkload`.
//!
//! It follows the seed's requirements: dial (for `hvsock:` the `CONNECT 1024`/`OK` handshake)
//! with [`DialOptions`] (by default the seed's 5 attempts, 100 ms doubling), send the single
//! [`GuestRequest`], then read messages in a loop: each `{"type":"log"}` line goes to the caller's
//! callback **as it arrives**, and the `{"type":"result"}` ends the call with its
//! [`GuestResponse`]. One deadline, [`DialOptions::request_deadline`], bounds the whole operation
//! from the first dial attempt (the seed's "context deadline for the overall operation").
//!
//! Failures are [`RunError`]s: a [`ClientError`] of the usual kinds plus the log lines that had
//! arrived, so that a reset, an early close or a timeout mid-stream still shows what the workload
//! printed:
//! - reset → [`ClientError::Reset`], end of stream → [`ClientError::Closed`] (both in
//!   [`Phase::Request`]), the deadline → [`ClientError::TimedOut`] in the phase it caught;
//! - an unknown `type`, a result without a response, or an object without `type` →
//!   [`ClientError::Protocol`] (the seed's Go client treats a missing `type` as the unknown type
//!   `""`);
//! - anything else that does not decode → [`ClientError::Malformed`] with the raw bytes of the
//!   bad payload (frames are cut with [`LpDecoder`], so the payload is at hand whole).
//!
//! Every call dials its own connection and shares nothing, so calls may run concurrently (the
//! seed's "`DialGuest` must be safe to call concurrently").
//!
//! [`FcexecClient::call`] maps guestwire's protocol-independent operations onto fcexec; see
//! [`exec_request`] for how `exec` becomes a workload.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::call::{CallOp, CallOutcome};
use super::dial::{DialOptions, Dialed, dial};
use super::error::{ClientError, Phase};
use crate::io::{Endpoint, FramedReader, FramedWriter, ReadError};
use crate::wire::Direction;
use crate::wire::WireError;
use crate::wire::fcexec::{
    FcexecEncoder, FcexecMessage, GuestRequest, GuestResponse, decode_payload,
};
use crate::wire::frame::{LpConfig, LpDecoder};

pub use crate::guest::fcexec::EXEC_RUNTIME;
pub use crate::wire::fcexec::DEFAULT_PORT;

/// Most bytes of log lines a [`RunError`] or [`Workload`] keeps (the callback sees every line);
/// lines past it are counted in `dropped_logs`. A guestwire bound, so that a guest streaming
/// logs for the whole deadline cannot exhaust the host's memory: 16 MiB, one maximum frame.
pub const MAX_KEPT_LOG_BYTES: usize = 16 * 1024 * 1024;

/// How many of the last log lines [`RunError`]'s `Display` shows.
const SHOWN_LOG_LINES: usize = 5;

/// How many characters of each of those lines it shows.
const SHOWN_LINE_CHARS: usize = 200;

/// A failed workload run: the error, and the log lines received before it.
#[derive(Debug)]
pub struct RunError {
    /// What went wrong.
    pub error: ClientError,
    /// The log lines received before the failure, in order (at most [`MAX_KEPT_LOG_BYTES`]).
    pub logs: Vec<String>,
    /// Log lines received but not kept in `logs` (over [`MAX_KEPT_LOG_BYTES`]).
    pub dropped_logs: u64,
}

impl RunError {
    fn new(error: ClientError, logs: Logs) -> Self {
        Self {
            error,
            logs: logs.lines,
            dropped_logs: logs.dropped,
        }
    }

    /// The error's stable kind (the [`ClientError`]'s).
    pub fn kind(&self) -> &'static str {
        self.error.kind()
    }

    /// The error as JSON: the [`ClientError`]'s JSON plus `logs` (and `dropped_logs` when some
    /// were not kept).
    pub fn to_json(&self) -> Value {
        let mut v = self.error.to_json();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("logs".into(), json!(self.logs));
            if self.dropped_logs > 0 {
                obj.insert("dropped_logs".into(), json!(self.dropped_logs));
            }
        }
        v
    }
}

impl fmt::Display for RunError {
    /// The error, then how many log lines had arrived and the last few of them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        let total = self.logs.len() as u64 + self.dropped_logs;
        if total == 0 {
            return write!(f, "; no log lines had arrived");
        }
        let s = if total == 1 { "" } else { "s" };
        write!(f, "; {total} log line{s} had arrived")?;
        let shown = &self.logs[self.logs.len().saturating_sub(SHOWN_LOG_LINES)..];
        if shown.len() as u64 == total {
            write!(f, ": ")?;
        } else {
            write!(f, ", the last kept: ")?;
        }
        for (i, line) in shown.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{:?}", clip(line))?;
        }
        Ok(())
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// At most [`SHOWN_LINE_CHARS`] characters of `line`, with `…` when cut.
fn clip(line: &str) -> String {
    match line.char_indices().nth(SHOWN_LINE_CHARS) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// A finished workload run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The guest's final result.
    pub response: GuestResponse,
    /// The log lines, in order (at most [`MAX_KEPT_LOG_BYTES`]; the callback saw them all).
    pub logs: Vec<String>,
    /// Log lines received but not kept in `logs`.
    pub dropped_logs: u64,
    /// Dial attempts made (1 when the first succeeded).
    pub attempts: u32,
}

/// The log lines kept so far.
#[derive(Debug, Default)]
struct Logs {
    lines: Vec<String>,
    bytes: usize,
    dropped: u64,
}

impl Logs {
    fn push(&mut self, line: String) {
        if self.bytes.saturating_add(line.len()) > MAX_KEPT_LOG_BYTES {
            self.dropped += 1;
        } else {
            self.bytes += line.len();
            self.lines.push(line);
        }
    }

    fn count(&self) -> u64 {
        self.lines.len() as u64 + self.dropped
    }

    /// "3 log lines had arrived" (empty for none).
    fn detail(&self) -> String {
        match self.count() {
            0 => String::new(),
            1 => "1 log line had arrived".into(),
            n => format!("{n} log lines had arrived"),
        }
    }
}

/// A host client of one fcexec agent.
#[derive(Debug, Clone)]
pub struct FcexecClient {
    endpoint: Endpoint,
    opts: DialOptions,
}

impl FcexecClient {
    /// A client of the agent at `endpoint` (usually `hvsock:PATH:1024`).
    pub fn new(endpoint: Endpoint, opts: DialOptions) -> Self {
        Self { endpoint, opts }
    }

    /// The agent's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The dial options.
    pub fn options(&self) -> &DialOptions {
        &self.opts
    }

    /// Runs one workload: dial, send `request`, pass each log line to `on_log` as it arrives,
    /// return the result with the lines and the number of dial attempts.
    pub async fn run(
        &self,
        request: &GuestRequest,
        on_log: impl FnMut(&str),
    ) -> Result<Workload, RunError> {
        run_full(&self.endpoint, &self.opts, request, on_log).await
    }

    /// Runs a protocol-independent operation:
    /// - `exec PROGRAM ARGS` → the workload [`exec_request`] builds (its deadline is the
    ///   command's timeout plus the options' execute grace when a timeout is given);
    /// - `raw JSON` → the JSON as a [`GuestRequest`] (an object without `type`);
    /// - `ping` → dial (and for `hvsock:` the handshake) only, then close: **fcexec has no ping**,
    ///   so this shows that something accepts connections on the port, not that the agent works;
    /// - anything else → [`ClientError::Invalid`]: fcexec has no such operation.
    ///
    /// A failed run returns its [`ClientError`], whose detail counts the log lines received;
    /// use [`run`](Self::run) to get the lines themselves.
    pub async fn call(&self, op: &CallOp) -> Result<CallOutcome, ClientError> {
        match op {
            CallOp::Ping => {
                let deadline = self.opts.request_deadline();
                let dialed =
                    dial_within(&self.endpoint, &self.opts, Instant::now() + deadline).await?;
                let attempts = dialed.attempts;
                drop(dialed);
                let s = if attempts == 1 { "" } else { "s" };
                Ok(CallOutcome {
                    summary: format!(
                        "connected after {attempts} attempt{s} (fcexec has no ping: this checks \
                         the dial and hybrid-vsock handshake only, not the agent)"
                    ),
                    reply: json!({ "connected": true, "attempts": attempts }),
                    ..CallOutcome::default()
                })
            }
            CallOp::Exec {
                program,
                args,
                timeout,
            } => {
                let request = exec_request(program, args, *timeout)?;
                let mut opts = self.opts.clone();
                if let Some(t) = timeout {
                    let deadline = opts
                        .deadlines
                        .execute(*t)
                        .unwrap_or(opts.request_deadline());
                    opts.deadlines.request = Some(deadline);
                }
                let run = run_full(&self.endpoint, &opts, &request, |_| {}).await;
                run.map(outcome).map_err(|e| e.error)
            }
            CallOp::Raw { json } => {
                let request = match decode_payload(json.as_bytes(), 0, Some(Direction::ToGuest)) {
                    Ok(FcexecMessage::Request(r)) => r,
                    Ok(other) => {
                        return Err(ClientError::Invalid(format!(
                            "raw fcexec JSON must be a GuestRequest, not a {:?} message",
                            crate::wire::Describe::type_name(&other)
                        )));
                    }
                    Err(e) => {
                        return Err(ClientError::Invalid(format!(
                            "raw fcexec JSON is not a GuestRequest: {e}"
                        )));
                    }
                };
                let run = run_full(&self.endpoint, &self.opts, &request, |_| {}).await;
                run.map(outcome).map_err(|e| e.error)
            }
            other => Err(ClientError::Invalid(format!(
                "fcexec has no {} operation: it runs one workload per connection \
                 (use exec or raw; ping only dials)",
                other.name()
            ))),
        }
    }
}

/// The workload `call`'s `exec PROGRAM ARGS` sends. fcexec has no "run this program" request:
/// its `runtime` names a language runtime of the real agent (e.g. `python`, with the source in
/// `code`). guestwire maps exec onto the mock agent's own runtime [`EXEC_RUNTIME`]:
/// `runtime = "exec"`, `entrypoint = PROGRAM`, `code` = the arguments as a JSON array string
/// (`["-c","echo hi"]`), `timeout_s` = the timeout rounded up to whole seconds (0 for none).
/// A real fcexec agent will refuse or misread this runtime.
pub fn exec_request(
    program: &str,
    args: &[String],
    timeout: Option<Duration>,
) -> Result<GuestRequest, ClientError> {
    if program.is_empty() {
        return Err(ClientError::Invalid("exec needs a program".into()));
    }
    let code = serde_json::to_string(args)
        .map_err(|e| ClientError::Invalid(format!("cannot encode the arguments: {e}")))?;
    let timeout_s = timeout.map_or(0, |t| {
        let secs = t.as_secs();
        if t.subsec_nanos() > 0 {
            secs.saturating_add(1)
        } else {
            secs
        }
    });
    Ok(GuestRequest {
        runtime: EXEC_RUNTIME.to_string(),
        code,
        entrypoint: program.to_string(),
        timeout_s,
        ..GuestRequest::default()
    })
}

fn outcome(w: Workload) -> CallOutcome {
    let r = &w.response;
    let lines = w.logs.len() as u64 + w.dropped_logs;
    let s = if lines == 1 { "" } else { "s" };
    let mut summary = format!("exit {} after {lines} log line{s}", r.exit_code);
    if !r.error.is_empty() {
        summary.push_str(&format!(", error: {}", r.error));
    }
    CallOutcome {
        summary,
        reply: serde_json::to_value(r).unwrap_or(Value::Null),
        events: w
            .logs
            .iter()
            .map(|line| json!({ "type": "log", "line": line }))
            .collect(),
        data: Some(Bytes::from(r.output.clone().into_bytes())),
        exit_code: Some(r.exit_code),
    }
}

/// Seed 001's `RunWorkload`: dials `endpoint`, sends `request`, passes each log line to `on_log`
/// as it arrives and returns the final result. See the module documentation for the errors.
pub async fn run_workload(
    endpoint: &Endpoint,
    opts: &DialOptions,
    request: &GuestRequest,
    on_log: impl FnMut(&str),
) -> Result<GuestResponse, RunError> {
    run_full(endpoint, opts, request, on_log)
        .await
        .map(|w| w.response)
}

/// Dials within the overall deadline; the error of a deadline that passed while dialing is
/// [`ClientError::TimedOut`] in [`Phase::Connect`].
async fn dial_within(
    endpoint: &Endpoint,
    opts: &DialOptions,
    deadline: Instant,
) -> Result<Dialed, ClientError> {
    match tokio::time::timeout_at(deadline, dial(endpoint, opts)).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::TimedOut {
            phase: Phase::Connect,
            after: opts.request_deadline(),
            detail: "the overall deadline passed while dialing (connect and handshake, retried)"
                .into(),
        }),
    }
}

async fn run_full(
    endpoint: &Endpoint,
    opts: &DialOptions,
    request: &GuestRequest,
    mut on_log: impl FnMut(&str),
) -> Result<Workload, RunError> {
    let deadline = Instant::now() + opts.request_deadline();
    let frame = encode(request).map_err(|e| RunError::new(e, Logs::default()))?;
    let after = opts.request_deadline();
    let dialed = dial_within(endpoint, opts, deadline)
        .await
        .map_err(|e| RunError::new(e, Logs::default()))?;
    let attempts = dialed.attempts;
    let mut logs = Logs::default();
    let result = exchange_until(
        dialed.stream,
        &frame,
        deadline,
        after,
        &mut on_log,
        &mut logs,
    )
    .await;
    match result {
        Ok(response) => Ok(Workload {
            response,
            logs: logs.lines,
            dropped_logs: logs.dropped,
            attempts,
        }),
        Err(e) => Err(RunError::new(e, logs)),
    }
}

/// The exchange on an already connected `stream` (past any handshake): send `request`, stream the
/// log lines to `on_log`, return the result, all within `deadline`. What [`run_workload`] does
/// after dialing; for tests over in-memory streams and end-to-end fuzzing.
pub async fn run_on<S>(
    stream: S,
    request: &GuestRequest,
    deadline: Duration,
    mut on_log: impl FnMut(&str),
) -> Result<GuestResponse, RunError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = encode(request).map_err(|e| RunError::new(e, Logs::default()))?;
    let mut logs = Logs::default();
    let at = Instant::now() + deadline;
    exchange_until(stream, &frame, at, deadline, &mut on_log, &mut logs)
        .await
        .map_err(|e| RunError::new(e, logs))
}

fn encode(request: &GuestRequest) -> Result<Bytes, ClientError> {
    let mut buf = BytesMut::new();
    FcexecEncoder::new()
        .encode_request(request, &mut buf)
        .map_err(|e| ClientError::Invalid(format!("cannot send the request: {e}")))?;
    Ok(buf.freeze())
}

async fn exchange_until<S, F>(
    stream: S,
    frame: &[u8],
    deadline: Instant,
    after: Duration,
    on_log: &mut F,
    logs: &mut Logs,
) -> Result<GuestResponse, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(&str),
{
    let exchange = exchange(stream, frame, on_log, logs);
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::TimedOut {
            phase: Phase::Request,
            after,
            detail: {
                let d = logs.detail();
                if d.is_empty() {
                    "no result and no log lines had arrived".into()
                } else {
                    format!("no result; {d}")
                }
            },
        }),
    }
}

async fn exchange<S, F>(
    stream: S,
    frame: &[u8],
    on_log: &mut F,
    logs: &mut Logs,
) -> Result<GuestResponse, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(&str),
{
    let mut reader = FramedReader::new(stream, LpDecoder::new(LpConfig::u32_be()));
    FramedWriter::new(reader.get_mut(), ())
        .send_raw(frame)
        .await
        .map_err(|e| ClientError::from_write(Phase::Request, e))?;
    // Bounded by the caller's deadline: every turn consumes a whole frame of the stream.
    loop {
        let frame = match reader.next().await {
            None => {
                return Err(ClientError::Closed {
                    phase: Phase::Request,
                    detail: join_detail(&logs.detail(), "before the result"),
                });
            }
            Some(Err(e)) => return Err(read_error(e, logs)),
            Some(Ok(frame)) => frame,
        };
        match classify(&frame.message, frame.offset)? {
            Incoming::Log(line) => {
                on_log(&line);
                logs.push(line);
            }
            Incoming::Result(response) => return Ok(response),
        }
    }
}

fn join_detail(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (false, true) => a.to_string(),
        (false, false) => format!("{a}, {b}"),
    }
}

/// A read failure, with the number of log lines received in its detail.
fn read_error(e: ReadError, logs: &Logs) -> ClientError {
    let lines = logs.detail();
    match ClientError::from_read(Phase::Request, e, None) {
        ClientError::Reset { phase, detail } => ClientError::Reset {
            phase,
            detail: join_detail(&lines, &detail),
        },
        ClientError::Closed { phase, detail } => ClientError::Closed {
            phase,
            detail: join_detail(&lines, &detail),
        },
        other => other,
    }
}

/// A guest message the client acts on.
enum Incoming {
    Log(String),
    Result(GuestResponse),
}

/// Decodes one guest payload: a protocol violation is [`ClientError::Protocol`], anything else
/// that does not decode is [`ClientError::Malformed`] with the payload's raw bytes.
fn classify(payload: &Bytes, offset: u64) -> Result<Incoming, ClientError> {
    match decode_payload(payload, offset, Some(Direction::ToHost)) {
        Ok(FcexecMessage::Log { line }) => Ok(Incoming::Log(line)),
        Ok(FcexecMessage::Result(response)) => Ok(Incoming::Result(response)),
        // Not produced with a direction set; kept for completeness.
        Ok(FcexecMessage::Request(_)) => Err(ClientError::Protocol {
            reason: "the guest sent a request".into(),
        }),
        Err(WireError::UnknownType { type_name, .. }) => Err(ClientError::Protocol {
            reason: format!("unknown message type {type_name:?} (expected \"log\" or \"result\")"),
        }),
        Err(error) => Err(match protocol_violation(payload) {
            Some(reason) => ClientError::Protocol { reason },
            None => ClientError::Malformed {
                error,
                raw: payload.clone(),
            },
        }),
    }
}

/// For a payload the decoder refused: whether it is well-formed JSON that breaks the protocol
/// (a result without a response, an object without `type`) rather than malformed data.
fn protocol_violation(payload: &[u8]) -> Option<String> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(payload) else {
        return None;
    };
    match map.get("type") {
        None => Some(
            "a message without \"type\" (only the host's request has none; the guest sends \
             \"log\" and \"result\")"
                .into(),
        ),
        Some(Value::String(t)) if t == "result" => match map.get("response") {
            None | Some(Value::Null) => Some("a result without a response".into()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests;
