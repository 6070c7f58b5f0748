//! The quantix client's operations: typed requests with the LimiQuantix deadlines (ping 5 s,
//! others 30 s, execute = its own timeout + 5 s), chunked file transfer in 64 KiB chunks, and
//! [`QuantixClient::call`], which maps the CLI's [`CallOp`]s onto them.
//!
//! File reads follow the real agent: each `FileReadRequest` returns one chunk from its `offset`,
//! and the client asks again from the next offset until a chunk says `eof`. The real agent
//! always reports `chunk_number` 0; guestwire's mock numbers chunks by offset; both are
//! accepted, anything else is a protocol error, as is a chunk at the wrong offset, a chunk
//! larger than asked for, or an empty chunk without `eof` (no progress).

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::client::QuantixClient;
use crate::host::call::{CallOp, CallOutcome};
use crate::host::error::ClientError;
use crate::wire::Describe;
use crate::wire::quantix::{
    AgentMessage, ExecuteRequest, ExecuteResponse, FileReadRequest, FileReadResponse,
    FileWriteRequest, FileWriteResponse, GetCapabilitiesRequest, GetCapabilitiesResponse,
    MessageKind, Payload, PingRequest, PongResponse, ProtoEnum, ShutdownRequest, ShutdownResponse,
    ShutdownType,
};

/// Size of each chunk `read_file` asks for and `write_file` sends: 64 KiB.
pub const FILE_CHUNK: usize = 64 * 1024;

/// A file read with [`QuantixClient::read_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileData {
    /// The contents.
    pub data: Bytes,
    /// The size the agent reported (of the file when the last chunk was read).
    pub total_size: u64,
    /// Permission bits the agent reported.
    pub mode: u32,
    /// Chunks (requests) it took.
    pub chunks: u32,
}

/// Takes the typed payload out of a reply whose arm the reader already checked.
fn arm<T>(reply: AgentMessage, pick: impl FnOnce(Payload) -> Option<T>) -> Result<T, ClientError> {
    let name = reply.payload_name().unwrap_or("nothing");
    reply
        .payload
        .and_then(pick)
        .ok_or_else(|| ClientError::Protocol {
            reason: format!("unexpected reply {name}"),
        })
}

fn protocol(reason: String) -> ClientError {
    ClientError::Protocol { reason }
}

impl QuantixClient {
    /// The deadline of a request: ping, execute (its own timeout + grace) or any other.
    pub fn deadline_for(&self, payload: &Payload) -> Duration {
        let opts = self.options();
        match payload {
            Payload::Ping(_) => opts.ping_deadline(),
            Payload::Execute(req) if req.timeout_seconds > 0 => opts
                .deadlines
                .execute(Duration::from_secs(u64::from(req.timeout_seconds)))
                .unwrap_or_else(|| opts.request_deadline()),
            _ => opts.request_deadline(),
        }
    }

    /// Sends any request arm and returns the whole reply, under the request's deadline
    /// ([`deadline_for`](Self::deadline_for)).
    pub async fn request(&self, payload: Payload) -> Result<AgentMessage, ClientError> {
        let deadline = self.deadline_for(&payload);
        self.request_within(payload, deadline).await
    }

    /// Pings the agent (deadline: `ping_deadline()`, 5 s for LimiQuantix); the pong must echo
    /// the sequence number.
    pub async fn ping(&self) -> Result<PongResponse, ClientError> {
        let sequence = self.next_sequence();
        let reply = self.request(PingRequest { sequence }.into()).await?;
        let pong = arm(reply, |p| match p {
            Payload::Pong(p) => Some(p),
            _ => None,
        })?;
        if pong.sequence != sequence {
            return Err(protocol(format!(
                "pong carries sequence {} for ping {sequence}",
                pong.sequence
            )));
        }
        Ok(pong)
    }

    /// Runs a command (deadline: its `timeout_seconds` + the execute grace, or the request
    /// deadline when it has none). A failing command is a normal reply: look at `exit_code`,
    /// `timed_out` and `error`.
    pub async fn execute(&self, request: ExecuteRequest) -> Result<ExecuteResponse, ClientError> {
        let reply = self.request(request.into()).await?;
        arm(reply, |p| match p {
            Payload::ExecuteResponse(r) => Some(r),
            _ => None,
        })
    }

    /// Reads a whole file in 64 KiB chunks, refusing one larger than the client's
    /// `max_read_size`; an agent-side failure is [`ClientError::Agent`] with code
    /// `file_read_failed`.
    pub async fn read_file(&self, path: &str) -> Result<FileData, ClientError> {
        let max = self.settings().max_read_size;
        let chunk = FILE_CHUNK as u64;
        // One request per chunk, plus the final (possibly empty) one.
        let max_chunks = max / chunk + 2;
        let mut data = BytesMut::new();
        let mut offset = 0u64;
        let mut last = FileReadResponse::default();
        for n in 0..max_chunks {
            let request = FileReadRequest {
                path: path.to_owned(),
                offset,
                length: chunk,
                chunk_size: FILE_CHUNK as u32,
            };
            let reply = self.request(request.into()).await?;
            let resp = arm(reply, |p| match p {
                Payload::FileReadResponse(r) => Some(r),
                _ => None,
            })?;
            if !resp.success {
                return Err(ClientError::Agent {
                    code: "file_read_failed".into(),
                    message: resp.error,
                });
            }
            let number = u64::from(resp.chunk_number);
            if resp.offset != offset || (number != 0 && number != n) {
                return Err(protocol(format!(
                    "asked for chunk {n} at offset {offset} of {path}, got chunk {number} at offset {}",
                    resp.offset
                )));
            }
            let len = resp.data.len() as u64;
            if len > chunk {
                return Err(protocol(format!(
                    "asked for at most {chunk} bytes of {path}, got {len}"
                )));
            }
            if offset + len > max {
                return Err(ClientError::Invalid(format!(
                    "{path} is larger than the {max}-byte read limit"
                )));
            }
            data.extend_from_slice(&resp.data);
            offset += len;
            if resp.eof {
                return Ok(FileData {
                    data: data.freeze(),
                    total_size: resp.total_size,
                    mode: resp.mode,
                    chunks: u32::try_from(n + 1).unwrap_or(u32::MAX),
                });
            }
            if len == 0 {
                return Err(protocol(format!(
                    "chunk {n} of {path} is empty but not the end of the file"
                )));
            }
            last = resp;
        }
        Err(ClientError::Invalid(format!(
            "{path} is larger than the {max}-byte read limit (size {} reported)",
            last.total_size
        )))
    }

    /// Writes a whole file in 64 KiB chunks (`chunk_number`, `total_chunks`, `eof` on the last;
    /// the first chunk at offset 0 replaces the file). Each [`FileWriteResponse`] must succeed,
    /// name its chunk and count its bytes. Returns the bytes written.
    pub async fn write_file(&self, path: &str, data: &[u8]) -> Result<u64, ClientError> {
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(FILE_CHUNK).collect()
        };
        let total = u32::try_from(chunks.len())
            .map_err(|_| ClientError::Invalid(format!("{} bytes is too large", data.len())))?;
        let mut written = 0u64;
        for (i, piece) in (0u32..).zip(chunks) {
            let request = FileWriteRequest {
                path: path.to_owned(),
                data: Bytes::copy_from_slice(piece),
                offset: written,
                eof: i + 1 == total,
                chunk_number: i,
                total_chunks: total,
                ..FileWriteRequest::default()
            };
            let reply = self.request(request.into()).await?;
            let resp: FileWriteResponse = arm(reply, |p| match p {
                Payload::FileWriteResponse(r) => Some(r),
                _ => None,
            })?;
            if !resp.success {
                return Err(ClientError::Agent {
                    code: "file_write_failed".into(),
                    message: resp.error,
                });
            }
            if resp.chunk_number != i || resp.bytes_written != piece.len() as u64 {
                return Err(protocol(format!(
                    "chunk {i} of {path} ({} bytes) was acknowledged as chunk {} with {} bytes",
                    piece.len(),
                    resp.chunk_number,
                    resp.bytes_written
                )));
            }
            written += resp.bytes_written;
        }
        Ok(written)
    }

    /// Asks the guest to shut down; a refusal is [`ClientError::Agent`] with code
    /// `shutdown_refused`.
    pub async fn shutdown(&self, kind: ShutdownType) -> Result<ShutdownResponse, ClientError> {
        let request = ShutdownRequest {
            r#type: kind.into(),
            ..ShutdownRequest::default()
        };
        let reply = self.request(request.into()).await?;
        let resp = arm(reply, |p| match p {
            Payload::ShutdownResponse(r) => Some(r),
            _ => None,
        })?;
        if !resp.accepted {
            return Err(ClientError::Agent {
                code: "shutdown_refused".into(),
                message: resp.error,
            });
        }
        Ok(resp)
    }

    /// The agent's capabilities (`get_capabilities`).
    pub async fn capabilities(&self) -> Result<GetCapabilitiesResponse, ClientError> {
        let reply = self.request(GetCapabilitiesRequest {}.into()).await?;
        arm(reply, |p| match p {
            Payload::GetCapabilitiesResponse(r) => Some(r),
            _ => None,
        })
    }

    /// Runs one CLI operation. `info` is `get_capabilities`; `raw` takes an `AgentMessage` in
    /// its JSON form whose arm must be a request (its `message_id` is replaced by the client's
    /// own, which pairs the reply). The outcome's `events` are the events queued when the call
    /// ended (so they are taken from [`events`](Self::events)).
    pub async fn call(&self, op: &CallOp) -> Result<CallOutcome, ClientError> {
        let mut out = match op {
            CallOp::Ping => {
                let pong = self.ping().await?;
                CallOutcome {
                    summary: format!(
                        "pong seq={} version={} uptime={}s",
                        pong.sequence, pong.version, pong.uptime_seconds
                    ),
                    reply: to_json(&pong),
                    ..CallOutcome::default()
                }
            }
            CallOp::Exec {
                program,
                args,
                timeout,
            } => {
                let request = ExecuteRequest {
                    command: program.clone(),
                    args: args.clone(),
                    timeout_seconds: timeout.map_or(0, seconds_up),
                    wait_for_exit: true,
                    ..ExecuteRequest::default()
                };
                let resp = self.execute(request).await?;
                let mut summary = format!(
                    "exit={} stdout={}B stderr={}B {}ms",
                    resp.exit_code,
                    resp.stdout.len(),
                    resp.stderr.len(),
                    resp.duration_ms
                );
                for (flag, word) in [(resp.truncated, "truncated"), (resp.timed_out, "timed_out")] {
                    if flag {
                        summary.push(' ');
                        summary.push_str(word);
                    }
                }
                if !resp.error.is_empty() {
                    summary.push_str(&format!(" error={:?}", resp.error));
                }
                CallOutcome {
                    summary,
                    reply: to_json(&resp),
                    data: Some(Bytes::from(resp.stdout.clone().into_bytes())),
                    exit_code: Some(resp.exit_code),
                    ..CallOutcome::default()
                }
            }
            CallOp::Read { path } => {
                let file = self.read_file(path).await?;
                CallOutcome {
                    summary: format!(
                        "read {} bytes of {path} in {} chunks",
                        file.data.len(),
                        file.chunks
                    ),
                    reply: serde_json::json!({
                        "path": path,
                        "size": file.data.len(),
                        "total_size": file.total_size,
                        "mode": file.mode,
                        "chunks": file.chunks,
                    }),
                    data: Some(file.data),
                    ..CallOutcome::default()
                }
            }
            CallOp::Write { path, data } => {
                let written = self.write_file(path, data).await?;
                let chunks = data.len().div_ceil(FILE_CHUNK).max(1);
                CallOutcome {
                    summary: format!("wrote {written} bytes to {path} in {chunks} chunks"),
                    reply: serde_json::json!({
                        "path": path,
                        "bytes_written": written,
                        "chunks": chunks,
                    }),
                    ..CallOutcome::default()
                }
            }
            CallOp::Shutdown { mode } => {
                let kind = ShutdownType::from_proto_name(&format!(
                    "{}{}",
                    ShutdownType::PREFIX,
                    mode.to_ascii_uppercase()
                ))
                .ok_or_else(|| {
                    ClientError::Invalid(format!(
                        "unknown shutdown mode {mode:?}: poweroff, reboot or halt"
                    ))
                })?;
                let resp = self.shutdown(kind).await?;
                CallOutcome {
                    summary: format!("shutdown ({mode}) accepted"),
                    reply: to_json(&resp),
                    ..CallOutcome::default()
                }
            }
            CallOp::Info => {
                let caps = self.capabilities().await?;
                CallOutcome {
                    summary: format!(
                        "version={} os={} arch={} capabilities={}",
                        caps.version,
                        caps.os,
                        caps.architecture,
                        caps.capabilities.len()
                    ),
                    reply: to_json(&caps),
                    ..CallOutcome::default()
                }
            }
            CallOp::Raw { json } => {
                let msg: AgentMessage = serde_json::from_str(json).map_err(|e| {
                    ClientError::Invalid(format!("not a quantix AgentMessage in JSON: {e}"))
                })?;
                let payload = msg
                    .payload
                    .ok_or_else(|| ClientError::Invalid("the message has no payload arm".into()))?;
                if payload.kind() != MessageKind::Request {
                    return Err(ClientError::Invalid(format!(
                        "{} is a {}; only requests can be sent",
                        payload.name(),
                        payload.kind().as_str()
                    )));
                }
                let reply = self.request(payload).await?;
                CallOutcome {
                    summary: format!("{} {}", reply.type_name(), reply.summary()),
                    reply: reply.to_json(),
                    ..CallOutcome::default()
                }
            }
        };
        out.events = self
            .events()
            .drain()
            .iter()
            .map(Describe::to_json)
            .collect();
        Ok(out)
    }
}

/// A duration in whole seconds, rounded up (a 1.5 s timeout must not become 1 s).
fn seconds_up(d: Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value)
        .unwrap_or_else(|e| serde_json::json!({ "error": format!("cannot serialise: {e}") }))
}
