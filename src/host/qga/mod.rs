//! The `qga` host client: what libvirt and other qemu-ga clients do, with guestwire's deadlines.
//!
//! - [`QgaClient::connect`] dials (with [`dial`]'s retries), then **syncs**: it writes a 0xFF (which
//!   flushes whatever half-message the agent's parser holds; qemu-ga answers it with a stray-0xFF
//!   `GenericError`) and `guest-sync-delimited {"id": N}`, and skips everything until the 0xFF
//!   and the `{"return": N}` ([`SyncWaiter`]), within the handshake deadline. N starts at a
//!   random-ish value and counts up, so no id is ever reused by a client.
//! - After any timeout, malformed reply or unexpected message the stream is out of step: the
//!   next call syncs again first.
//! - [`QgaClient::execute`] sends one command and reads one reply under the request deadline
//!   (ping: the ping deadline); an `error` reply is [`ClientError::Agent`] with qemu's class and
//!   desc.
//! - `guest-exec` returns a pid: [`QgaClient::exec`] polls `guest-exec-status` with backoff
//!   ([`EXEC_POLL_INITIAL`] doubling to [`EXEC_POLL_MAX`]) until `exited`, the whole within one
//!   deadline, and decodes the base64 output. qemu-ga has no exec timeout of its own: a command
//!   still running at the deadline keeps running in the guest.
//! - Files go through `guest-file-open`/`-read`/`-write`/`-close` in chunks of [`FILE_CHUNK`].
//! - qemu-ga sends **no reply** to a successful `guest-shutdown` (nor to `guest-suspend-*`):
//!   [`QgaClient::shutdown`] sends the command followed by a `guest-sync-delimited`; an error reply
//!   before the sync's reply is the command's failure, the sync's reply (or the connection
//!   closing, or silence until the deadline, as the guest goes down) its success.

mod files;
#[cfg(test)]
mod tests;
mod types;

pub use types::{ExecStatus, GuestInfo, ShutdownOutcome, SupportedCommand};
use types::{parse_exec_status, parse_info};

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::call::{CallOp, CallOutcome};
use super::dial::{DialOptions, dial};
use super::error::{ClientError, Phase};
use crate::io::{BoxStream, Endpoint, FramedReader, ReadError};
use crate::wire::qga::{QgaDecoder, QgaEncoder, QgaMessage, SyncStep, SyncWaiter};
use crate::wire::{Encoder, WireError};

/// First pause between two `guest-exec-status` polls.
pub const EXEC_POLL_INITIAL: Duration = Duration::from_millis(10);
/// Longest pause between two `guest-exec-status` polls.
pub const EXEC_POLL_MAX: Duration = Duration::from_millis(500);
/// Bytes per `guest-file-read`/`guest-file-write` (qemu-ga accepts up to 48 MiB; 1 MiB keeps a
/// reply, base64 included, well under the decoder's 16 MiB).
pub const FILE_CHUNK: usize = 1024 * 1024;
/// Most messages one wait skips before giving up (a bound on a peer that floods stray replies).
pub const MAX_SKIPPED: u64 = 1 << 16;
/// Commands qemu-ga never answers when they succeed (`success-response: false`).
pub const NO_SUCCESS_RESPONSE: &[&str] = &[
    "guest-shutdown",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
];

/// A connected, synced qga client.
pub struct QgaClient {
    reader: FramedReader<BoxStream, QgaDecoder>,
    encoder: QgaEncoder,
    opts: DialOptions,
    next_id: i64,
    needs_sync: bool,
    last_sync: Option<i64>,
    skipped: u64,
}

impl std::fmt::Debug for QgaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QgaClient")
            .field("next_id", &self.next_id)
            .field("needs_sync", &self.needs_sync)
            .field("last_sync", &self.last_sync)
            .finish_non_exhaustive()
    }
}

/// A random-ish first sync id in `[1, 2^31)`, so that two clients rarely share ids.
fn first_sync_id() -> i64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    ((h.finish() & 0x7FFF_FFFF) as i64).max(1)
}

impl QgaClient {
    /// Dials `endpoint` and syncs (see the module documentation).
    pub async fn connect(endpoint: &Endpoint, opts: DialOptions) -> Result<Self, ClientError> {
        let dialed = dial(endpoint, &opts).await?;
        Self::from_stream(dialed.stream, opts).await
    }

    /// Syncs on an already connected stream (whatever was written on it before).
    pub async fn from_stream(stream: BoxStream, opts: DialOptions) -> Result<Self, ClientError> {
        let mut client = Self::new_unsynced(stream, opts, first_sync_id());
        client.sync().await?;
        Ok(client)
    }

    /// A client that has not synced yet and whose first sync id is `first_id` (for tests).
    fn new_unsynced(stream: BoxStream, opts: DialOptions, first_id: i64) -> Self {
        Self {
            reader: FramedReader::new(stream, QgaDecoder::new()),
            encoder: QgaEncoder::new(),
            opts,
            next_id: first_id,
            needs_sync: true,
            last_sync: None,
            skipped: 0,
        }
    }

    /// The id of the last successful sync.
    pub fn last_sync_id(&self) -> Option<i64> {
        self.last_sync
    }

    /// How many stray messages the syncs so far skipped.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Whether the next call syncs first.
    pub fn needs_sync(&self) -> bool {
        self.needs_sync
    }

    fn fresh_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// Syncs now: 0xFF + `guest-sync-delimited` with a fresh id, then skips to its reply, within
    /// the handshake deadline. Returns the id.
    pub async fn sync(&mut self) -> Result<i64, ClientError> {
        let deadline = self.opts.handshake_deadline();
        let until = Instant::now() + deadline;
        let mut waiter = SyncWaiter::new(self.fresh_id());
        let mut buf = BytesMut::new();
        self.encoder.delimiter(&mut buf);
        self.encode(&waiter.request(), &mut buf)?;
        self.needs_sync = true;
        self.write(&buf, until, deadline, Phase::Handshake).await?;
        let id = waiter.id();
        let what = || format!("no reply to guest-sync-delimited {id}");
        loop {
            if waiter.skipped() > MAX_SKIPPED {
                return Err(ClientError::Protocol {
                    reason: format!("{} stray messages before the sync reply", waiter.skipped()),
                });
            }
            let item = self.next(until, deadline, Phase::Handshake, &what).await?;
            let step = match item {
                Ok(message) => waiter.feed(&message),
                Err(error) => {
                    let item = Err(error);
                    waiter.feed_decoded(&item)
                }
            };
            if let SyncStep::Synced { .. } = step {
                self.skipped += waiter.skipped();
                self.needs_sync = false;
                self.last_sync = Some(id);
                return Ok(id);
            }
        }
    }

    /// The next message, or a wire error to skip; end, reset, IO errors and the deadline are
    /// failures.
    async fn next(
        &mut self,
        until: Instant,
        deadline: Duration,
        phase: Phase,
        what: &(dyn Fn() -> String + Sync),
    ) -> Result<Result<QgaMessage, WireError>, ClientError> {
        let timed_out = || ClientError::TimedOut {
            phase,
            after: deadline,
            detail: what(),
        };
        let now = Instant::now();
        if now >= until {
            return Err(timed_out());
        }
        match self.reader.next_timeout(until - now).await {
            None => Err(ClientError::Closed {
                phase,
                detail: what(),
            }),
            Some(Ok(frame)) => Ok(Ok(frame.message)),
            Some(Err(ReadError::Wire(e))) if !matches!(e, WireError::Truncated { .. }) => {
                Ok(Err(e))
            }
            Some(Err(ReadError::TimedOut { .. })) => Err(timed_out()),
            Some(Err(e)) => Err(ClientError::from_read(phase, e, None)),
        }
    }

    fn encode(&mut self, message: &QgaMessage, buf: &mut BytesMut) -> Result<(), ClientError> {
        self.encoder
            .encode(message, buf)
            .map_err(|e| ClientError::Invalid(e.to_string()))
    }

    async fn write(
        &mut self,
        bytes: &[u8],
        until: Instant,
        deadline: Duration,
        phase: Phase,
    ) -> Result<(), ClientError> {
        let stream = self.reader.get_mut();
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout_at(until, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(match source.kind() {
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionAborted => ClientError::Reset {
                    phase,
                    detail: "while writing the request".into(),
                },
                _ => ClientError::Io { phase, source },
            }),
            Err(_) => {
                self.needs_sync = true;
                Err(ClientError::TimedOut {
                    phase,
                    after: deadline,
                    detail: "writing the request (is the agent reading?)".into(),
                })
            }
        }
    }

    async fn ensure_synced(&mut self) -> Result<(), ClientError> {
        if self.needs_sync {
            self.sync().await?;
        }
        Ok(())
    }

    /// Runs `command` with `arguments` and returns its `return` value, under the request
    /// deadline.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, ClientError> {
        let deadline = self.opts.request_deadline();
        self.execute_within(command, arguments, deadline).await
    }

    /// [`execute`](Self::execute) with its own deadline.
    pub async fn execute_within(
        &mut self,
        command: &str,
        arguments: Option<Value>,
        deadline: Duration,
    ) -> Result<Value, ClientError> {
        self.request(&QgaMessage::command(command, arguments), deadline)
            .await
    }

    /// Sends one request and reads its reply.
    async fn request(
        &mut self,
        message: &QgaMessage,
        deadline: Duration,
    ) -> Result<Value, ClientError> {
        self.ensure_synced().await?;
        let until = Instant::now() + deadline;
        let mut buf = BytesMut::new();
        self.encode(message, &mut buf)?;
        self.write(&buf, until, deadline, Phase::Request).await?;
        let name = message_name(message);
        let what = || format!("no reply to {name}");
        let mut skipped = 0u64;
        loop {
            let item = match self.next(until, deadline, Phase::Request, &what).await {
                Ok(item) => item,
                Err(e) => {
                    self.needs_sync = true;
                    return Err(e);
                }
            };
            match item {
                Ok(QgaMessage::Return { value, .. }) => return Ok(value),
                Ok(QgaMessage::Error { class, desc, .. }) => {
                    return Err(ClientError::Agent {
                        code: class,
                        message: desc,
                    });
                }
                Ok(QgaMessage::Delimiter) if skipped < MAX_SKIPPED => skipped += 1,
                Ok(QgaMessage::Delimiter) => {
                    self.needs_sync = true;
                    return Err(ClientError::Protocol {
                        reason: format!("{skipped} 0xFF bytes instead of a reply to {name}"),
                    });
                }
                Ok(QgaMessage::Command { execute, .. }) => {
                    self.needs_sync = true;
                    return Err(ClientError::Protocol {
                        reason: format!("the agent sent a command ({execute}) instead of a reply"),
                    });
                }
                Err(error) => {
                    self.needs_sync = true;
                    let raw = Bytes::copy_from_slice(error.bytes().bytes());
                    return Err(ClientError::Malformed { error, raw });
                }
            }
        }
    }

    /// `guest-ping`, under the ping deadline.
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        let deadline = self.opts.ping_deadline();
        self.execute_within("guest-ping", None, deadline)
            .await
            .map(drop)
    }

    /// `guest-info`.
    pub async fn info(&mut self) -> Result<GuestInfo, ClientError> {
        let v = self.execute("guest-info", None).await?;
        parse_info(&v)
    }

    /// `guest-exec` of `path` with `args` (capturing the output when `capture`), then
    /// `guest-exec-status` until it exits, all within the request deadline.
    pub async fn exec(
        &mut self,
        path: &str,
        args: &[String],
        capture: bool,
    ) -> Result<ExecStatus, ClientError> {
        let deadline = self.opts.request_deadline();
        self.exec_within(path, args, capture, deadline).await
    }

    /// [`exec`](Self::exec) with its own deadline for the whole (start and polls).
    pub async fn exec_within(
        &mut self,
        path: &str,
        args: &[String],
        capture: bool,
        deadline: Duration,
    ) -> Result<ExecStatus, ClientError> {
        let until = Instant::now() + deadline;
        let mut arguments = json!({ "path": path, "capture-output": capture });
        if !args.is_empty() {
            arguments["arg"] = json!(args);
        }
        let started = self
            .execute_within("guest-exec", Some(arguments), deadline)
            .await?;
        let pid =
            started
                .get("pid")
                .and_then(Value::as_i64)
                .ok_or_else(|| ClientError::Protocol {
                    reason: format!("guest-exec returned no pid: {started}"),
                })?;
        let mut pause = EXEC_POLL_INITIAL;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::TimedOut {
                    phase: Phase::Request,
                    after: deadline,
                    detail: format!("guest-exec pid {pid} has not exited"),
                });
            }
            let status = self
                .execute_within("guest-exec-status", Some(json!({ "pid": pid })), left)
                .await?;
            if status.get("exited").and_then(Value::as_bool) == Some(true) {
                return parse_exec_status(pid, &status);
            }
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(EXEC_POLL_MAX);
        }
    }

    /// `guest-shutdown` with qemu-ga's `mode` (`powerdown`, `halt`, `reboot`; `None`: the
    /// agent's default, powerdown), which gets no reply when it succeeds.
    pub async fn shutdown(&mut self, mode: Option<&str>) -> Result<ShutdownOutcome, ClientError> {
        let arguments = mode.map(|m| json!({ "mode": m }));
        self.execute_no_reply(&QgaMessage::command("guest-shutdown", arguments))
            .await
    }

    /// Sends a command that answers only on failure, followed by a `guest-sync-delimited`.
    async fn execute_no_reply(
        &mut self,
        message: &QgaMessage,
    ) -> Result<ShutdownOutcome, ClientError> {
        self.ensure_synced().await?;
        let deadline = self.opts.request_deadline();
        let until = Instant::now() + deadline;
        let mut waiter = SyncWaiter::new(self.fresh_id());
        let mut buf = BytesMut::new();
        self.encode(message, &mut buf)?;
        self.encode(&waiter.request(), &mut buf)?;
        self.needs_sync = true;
        self.write(&buf, until, deadline, Phase::Request).await?;
        let name = message_name(message);
        let what = || format!("no reply after {name}");
        let mut failure = None;
        loop {
            if waiter.skipped() > MAX_SKIPPED {
                return Err(ClientError::Protocol {
                    reason: format!("{} stray messages after {name}", waiter.skipped()),
                });
            }
            let item = match self.next(until, deadline, Phase::Request, &what).await {
                Ok(item) => item,
                Err(ClientError::TimedOut { .. }) => return Ok(ShutdownOutcome::NoReply),
                Err(ClientError::Closed { .. } | ClientError::Reset { .. }) => {
                    return Ok(ShutdownOutcome::Disconnected);
                }
                Err(e) => return Err(e),
            };
            if let Ok(QgaMessage::Error { class, desc, .. }) = &item
                && failure.is_none()
            {
                failure = Some(ClientError::Agent {
                    code: class.clone(),
                    message: desc.clone(),
                });
            }
            let step = match item {
                Ok(m) => waiter.feed(&m),
                Err(e) => waiter.feed_decoded(&Err(e)),
            };
            if let SyncStep::Synced { .. } = step {
                self.needs_sync = false;
                self.last_sync = Some(waiter.id());
                return match failure {
                    Some(e) => Err(e),
                    None => Ok(ShutdownOutcome::Confirmed),
                };
            }
        }
    }

    /// Runs a CLI operation.
    pub async fn call(&mut self, op: &CallOp) -> Result<CallOutcome, ClientError> {
        match op {
            CallOp::Ping => {
                self.ping().await?;
                Ok(outcome("pong", json!({})))
            }
            CallOp::Info => {
                let v = self.execute("guest-info", None).await?;
                let info = parse_info(&v)?;
                let summary = format!(
                    "qemu-ga {} with {} commands",
                    info.version,
                    info.supported_commands.len()
                );
                Ok(outcome(&summary, v))
            }
            CallOp::Exec {
                program,
                args,
                timeout,
            } => {
                let deadline = match timeout {
                    Some(t) => *t + self.opts.deadlines.execute_grace.unwrap_or(Duration::ZERO),
                    None => self.opts.request_deadline(),
                };
                let st = self.exec_within(program, args, true, deadline).await?;
                let (summary, code) = match (st.exit_code, st.signal) {
                    (Some(c), _) => (format!("pid {} exited with {c}", st.pid), c),
                    (None, Some(s)) => (format!("pid {} killed by signal {s}", st.pid), 128 + s),
                    (None, None) => (format!("pid {} exited", st.pid), -1),
                };
                let reply = json!({
                    "pid": st.pid, "exitcode": st.exit_code, "signal": st.signal,
                    "stdout": String::from_utf8_lossy(&st.stdout),
                    "stderr": String::from_utf8_lossy(&st.stderr),
                    "stdout-truncated": st.stdout_truncated, "stderr-truncated": st.stderr_truncated,
                });
                Ok(CallOutcome {
                    data: Some(Bytes::from(st.stdout)),
                    exit_code: Some(code),
                    ..outcome(&summary, reply)
                })
            }
            CallOp::Read { path } => {
                let data = self.file_read(path).await?;
                let summary = format!("read {} bytes from {path}", data.len());
                Ok(CallOutcome {
                    data: Some(Bytes::from(data)),
                    ..outcome(&summary, json!({ "path": path }))
                })
            }
            CallOp::Write { path, data } => {
                let n = self.file_write(path, data).await?;
                let summary = format!("wrote {n} bytes to {path}");
                Ok(outcome(&summary, json!({ "path": path, "count": n })))
            }
            CallOp::Shutdown { mode } => {
                let qga_mode = match mode.as_str() {
                    "poweroff" | "powerdown" => "powerdown",
                    other => other,
                };
                let how = self.shutdown(Some(qga_mode)).await?;
                let summary = format!("guest-shutdown {qga_mode} accepted ({how:?})");
                Ok(outcome(&summary, json!({ "mode": qga_mode })))
            }
            CallOp::Raw { json } => self.raw(json).await,
        }
    }

    /// A qga command given as JSON text (an object with a string `execute`).
    async fn raw(&mut self, text: &str) -> Result<CallOutcome, ClientError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ClientError::Invalid(format!("raw qga command: {e}")))?;
        let Some(execute) = value.get("execute").and_then(Value::as_str) else {
            return Err(ClientError::Invalid(
                "a raw qga command is an object with a string \"execute\"".into(),
            ));
        };
        let message = QgaMessage::Command {
            execute: execute.to_string(),
            arguments: value.get("arguments").cloned(),
            id: value.get("id").cloned(),
        };
        if NO_SUCCESS_RESPONSE.contains(&execute) {
            let how = self.execute_no_reply(&message).await?;
            return Ok(outcome(&format!("{execute} accepted ({how:?})"), json!({})));
        }
        let deadline = self.opts.request_deadline();
        let v = self.request(&message, deadline).await?;
        Ok(outcome(&format!("{execute} returned"), v))
    }
}

fn message_name(message: &QgaMessage) -> String {
    match message {
        QgaMessage::Command { execute, .. } => execute.clone(),
        other => format!("{other:?}"),
    }
}

fn outcome(summary: &str, reply: Value) -> CallOutcome {
    CallOutcome {
        summary: summary.to_string(),
        reply,
        ..CallOutcome::default()
    }
}
