//! What the mock quantix agent answers, whatever its loop: the AgentReady and telemetry it
//! sends unasked, and the reply to each request (PROTOCOLS.md §2).
//!
//! - `ping` → `pong` with the sequence, the configured version and the connection's uptime;
//! - `execute` → [`guest::exec`](crate::guest::exec) in the configured [`ExecMode`]
//!   (`command` + `args`, never through a shell; `timeout_seconds`, `max_output_bytes` → the
//!   `truncated` flag; `working_directory` and `environment` as given). `wait_for_exit` and the
//!   `run_as_*` fields are ignored: the mock always waits, as itself;
//! - `file_write` (the first chunk at offset 0 replaces the file, as the real agent does),
//!   `file_read` (one chunk per request from `offset`, numbered `offset / chunk_size`),
//!   `file_stat`, `list_directory`, `create_directory`, `file_delete` → a
//!   [`Sandbox`] on the configured root; an escape or any other failure is the reply's
//!   `error` text with `success` false, and so is "no root";
//! - `shutdown` → accepted (for a known type), and nothing happens: the mock keeps serving;
//! - `get_capabilities` → the requests above, the framing and the loop shape;
//! - **any other request** → an `ErrorEvent` (severity ERROR, code `UNIMPLEMENTED`, details
//!   `request_id` = the request's `message_id` and `request` = its arm), which guestwire's host
//!   client turns into an agent error for that request.
//!
//! Messages from the host that are not requests (responses, events) are ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use tokio::time::Instant;

use crate::guest::config::{GuestConfig, LoopMode};
use crate::guest::exec::ExecSpec;
use crate::guest::files::{
    DEFAULT_CHUNK_SIZE, FileInfo, FileKind, MAX_CHUNK_SIZE, ReadChunk, Sandbox, SandboxError,
    WriteOptions,
};
use crate::host::quantix::{Framing, timestamp_now, timestamp_of};
use crate::wire::quantix::{
    AgentMessage, AgentReadyEvent, CreateDirectoryRequest, CreateDirectoryResponse, DirectoryEntry,
    DiskUsage, ErrorEvent, ErrorSeverity, ExecuteRequest, ExecuteResponse, FileDeleteRequest,
    FileDeleteResponse, FileReadRequest, FileReadResponse, FileStatRequest, FileStatResponse,
    FileWriteRequest, FileWriteResponse, GetCapabilitiesResponse, ListDirectoryRequest,
    ListDirectoryResponse, MAX_MESSAGE, MessageKind, Payload, PongResponse, ShutdownRequest,
    ShutdownResponse, ShutdownType, TelemetryReport,
};

/// The requests the mock implements, as `get_capabilities` and AgentReady list them.
pub const CAPABILITIES: &[&str] = &[
    "ping",
    "execute",
    "file_write",
    "file_read",
    "file_stat",
    "list_directory",
    "create_directory",
    "file_delete",
    "shutdown",
    "get_capabilities",
];

/// The `code` of the error event that refuses an unimplemented request.
pub const UNIMPLEMENTED: &str = "UNIMPLEMENTED";

/// What a handled message produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The reply to a request.
    Reply(AgentMessage),
    /// An error event refusing a request the mock does not implement.
    Refusal(AgentMessage),
}

impl Answer {
    /// The message to write.
    pub fn message(&self) -> &AgentMessage {
        match self {
            Self::Reply(m) | Self::Refusal(m) => m,
        }
    }
}

/// The mock agent of one connection.
#[derive(Debug)]
pub struct Agent {
    cfg: Arc<GuestConfig>,
    framing: Framing,
    sandbox: Result<Sandbox, String>,
    started: Instant,
}

impl Agent {
    /// The agent for a connection starting now; opens the sandbox on `cfg.root`.
    pub fn new(cfg: Arc<GuestConfig>, framing: Framing) -> Self {
        let sandbox = match &cfg.root {
            None => {
                Err("file operations are disabled: the mock guest has no root directory".into())
            }
            Some(root) => Sandbox::new(root).map_err(|e| e.to_string()),
        };
        Self {
            cfg,
            framing,
            sandbox,
            started: Instant::now(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GuestConfig {
        &self.cfg
    }

    /// Waits `cfg.reply_delay` (not at all when it is zero: a zero-length Tokio sleep still
    /// waits for the timer's next 1 ms tick).
    pub async fn reply_delay(&self) {
        if !self.cfg.reply_delay.is_zero() {
            tokio::time::sleep(self.cfg.reply_delay).await;
        }
    }

    fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The AgentReady event written on connect.
    pub fn ready(&self) -> AgentMessage {
        let event = AgentReadyEvent {
            version: self.cfg.version.clone(),
            os_name: std::env::consts::OS.to_string(),
            architecture: std::env::consts::ARCH.to_string(),
            hostname: self.cfg.hostname.clone(),
            capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            ..AgentReadyEvent::default()
        };
        AgentMessage::new("", event).with_timestamp(timestamp_now())
    }

    /// A telemetry report (fixed, plausible figures; the uptime is the connection's).
    pub fn telemetry(&self) -> AgentMessage {
        const GIB: u64 = 1 << 30;
        let report = TelemetryReport {
            cpu_usage_percent: 1.5,
            memory_total_bytes: 2 * GIB,
            memory_used_bytes: GIB / 2,
            memory_available_bytes: 3 * GIB / 2,
            disks: vec![DiskUsage {
                mount_point: "/".into(),
                filesystem: "ext4".into(),
                device: "/dev/vda1".into(),
                total_bytes: 10 * GIB,
                used_bytes: 2 * GIB,
                available_bytes: 8 * GIB,
                usage_percent: 20.0,
            }],
            load_avg_1: 0.05,
            process_count: 42,
            uptime_seconds: self.uptime(),
            hostname: self.cfg.hostname.clone(),
            ..TelemetryReport::default()
        };
        AgentMessage::new("", report).with_timestamp(timestamp_now())
    }

    /// Answers one message from the host; `None` for anything that is not a request.
    pub async fn handle(&self, message: AgentMessage) -> Option<Answer> {
        let id = message.message_id;
        let payload = message.payload?;
        if payload.kind() != MessageKind::Request {
            return None;
        }
        let reply: Payload = match payload {
            Payload::Ping(p) => PongResponse {
                sequence: p.sequence,
                version: self.cfg.version.clone(),
                uptime_seconds: self.uptime(),
            }
            .into(),
            Payload::Execute(r) => self.execute(r).await.into(),
            Payload::FileWrite(r) => self.file_write(r).await.into(),
            Payload::FileRead(r) => self.file_read(r).await.into(),
            Payload::FileStat(r) => self.file_stat(r).await.into(),
            Payload::ListDirectory(r) => self.list_directory(r).await.into(),
            Payload::CreateDirectory(r) => self.create_directory(r).await.into(),
            Payload::FileDelete(r) => self.file_delete(r).await.into(),
            Payload::Shutdown(r) => shutdown(&r).into(),
            Payload::GetCapabilities(_) => self.capabilities().into(),
            other => return Some(Answer::Refusal(unimplemented(&id, other.name()))),
        };
        Some(Answer::Reply(
            AgentMessage::new(id, reply).with_timestamp(timestamp_now()),
        ))
    }

    async fn execute(&self, r: ExecuteRequest) -> ExecuteResponse {
        let mut spec = ExecSpec::new(r.command).args(r.args);
        spec.environment = r.environment;
        if !r.working_directory.is_empty() {
            spec.working_directory = Some(PathBuf::from(r.working_directory));
        }
        if r.timeout_seconds > 0 {
            spec.timeout = Some(Duration::from_secs(u64::from(r.timeout_seconds)));
        }
        if r.max_output_bytes > 0 {
            spec.max_output_bytes = usize::try_from(r.max_output_bytes).ok();
        }
        let result = self.cfg.exec.run(&spec).await;
        ExecuteResponse {
            exit_code: result.exit_code,
            stdout: result.stdout_lossy(),
            stderr: result.stderr_lossy(),
            truncated: result.truncated,
            timed_out: result.timed_out,
            duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
            error: result.error.unwrap_or_default(),
        }
    }

    /// Runs a blocking sandbox operation; the error is the reply's text.
    async fn files<T, F>(&self, op: F) -> Result<T, String>
    where
        F: FnOnce(&Sandbox) -> Result<T, SandboxError> + Send + 'static,
        T: Send + 'static,
    {
        let sandbox = self.sandbox.as_ref().map_err(Clone::clone)?;
        sandbox.run(op).await.map_err(|e| e.to_string())
    }

    async fn file_write(&self, r: FileWriteRequest) -> FileWriteResponse {
        let opts = WriteOptions {
            offset: r.offset,
            append: r.append,
            truncate: !r.append && r.offset == 0 && r.chunk_number == 0,
            create_parents: r.create_parents,
            mode: (r.mode != 0).then_some(r.mode),
        };
        let (path, data) = (r.path, r.data);
        match self.files(move |s| s.write(&path, &data, &opts)).await {
            Ok(n) => FileWriteResponse {
                success: true,
                bytes_written: n,
                chunk_number: r.chunk_number,
                ..FileWriteResponse::default()
            },
            Err(error) => FileWriteResponse {
                error,
                chunk_number: r.chunk_number,
                ..FileWriteResponse::default()
            },
        }
    }

    async fn file_read(&self, r: FileReadRequest) -> FileReadResponse {
        let chunk_size = match r.chunk_size {
            0 => DEFAULT_CHUNK_SIZE,
            n => n.min(MAX_CHUNK_SIZE),
        };
        let (path, offset, length) = (r.path, r.offset, r.length);
        let read = self
            .files(move |s| {
                let mut file = s.read(&path, offset, length, chunk_size)?;
                let chunk = file.next().transpose()?;
                Ok((file.total_size, file.mode, file.modified, chunk))
            })
            .await;
        match read {
            Ok((total_size, mode, modified, chunk)) => {
                let chunk = chunk.unwrap_or_else(|| ReadChunk {
                    chunk_number: 0,
                    offset,
                    data: Vec::new(),
                    eof: true,
                    last: true,
                });
                FileReadResponse {
                    success: true,
                    eof: chunk.eof,
                    total_size,
                    offset: chunk.offset,
                    chunk_number: u32::try_from(chunk.offset / u64::from(chunk_size))
                        .unwrap_or(u32::MAX),
                    data: chunk.data.into(),
                    mode,
                    modified_at: modified.map(timestamp_of),
                    ..FileReadResponse::default()
                }
            }
            Err(error) => FileReadResponse {
                error,
                eof: true,
                offset,
                ..FileReadResponse::default()
            },
        }
    }

    async fn file_stat(&self, r: FileStatRequest) -> FileStatResponse {
        let path = r.path;
        match self.files(move |s| s.stat(&path)).await {
            Ok(info) => FileStatResponse {
                success: true,
                entry: Some(entry(&info)),
                ..FileStatResponse::default()
            },
            Err(error) => FileStatResponse {
                error,
                ..FileStatResponse::default()
            },
        }
    }

    async fn list_directory(&self, r: ListDirectoryRequest) -> ListDirectoryResponse {
        let (path, hidden) = (r.path, r.include_hidden);
        let max = usize::try_from(r.max_entries).unwrap_or(usize::MAX);
        match self.files(move |s| s.list(&path, hidden, max)).await {
            Ok(listing) => ListDirectoryResponse {
                success: true,
                entries: listing.entries.iter().map(entry).collect(),
                total_entries: u32::try_from(listing.total).unwrap_or(u32::MAX),
                ..ListDirectoryResponse::default()
            },
            Err(error) => ListDirectoryResponse {
                error,
                ..ListDirectoryResponse::default()
            },
        }
    }

    async fn create_directory(&self, r: CreateDirectoryRequest) -> CreateDirectoryResponse {
        let (path, parents, mode) = (r.path, r.create_parents, (r.mode != 0).then_some(r.mode));
        match self.files(move |s| s.mkdir(&path, parents, mode)).await {
            Ok(()) => CreateDirectoryResponse {
                success: true,
                error: String::new(),
            },
            Err(error) => CreateDirectoryResponse {
                success: false,
                error,
            },
        }
    }

    async fn file_delete(&self, r: FileDeleteRequest) -> FileDeleteResponse {
        let (path, recursive) = (r.path, r.recursive);
        match self.files(move |s| s.delete(&path, recursive)).await {
            Ok(()) => FileDeleteResponse {
                success: true,
                error: String::new(),
            },
            Err(error) => FileDeleteResponse {
                success: false,
                error,
            },
        }
    }

    fn capabilities(&self) -> GetCapabilitiesResponse {
        let loop_mode = match self.cfg.loop_mode {
            LoopMode::Robust => "robust",
            LoopMode::Naive => "naive",
        };
        GetCapabilitiesResponse {
            version: self.cfg.version.clone(),
            os: std::env::consts::OS.to_string(),
            architecture: std::env::consts::ARCH.to_string(),
            capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            features: BTreeMap::from([
                ("mock".to_string(), "guestwire".to_string()),
                ("framing".to_string(), self.framing.protocol().to_string()),
                ("loop".to_string(), loop_mode.to_string()),
            ]),
            ..GetCapabilitiesResponse::default()
        }
    }
}

fn shutdown(r: &ShutdownRequest) -> ShutdownResponse {
    match ShutdownType::try_from(r.r#type) {
        Ok(_) => ShutdownResponse {
            accepted: true,
            error: String::new(),
        },
        Err(_) => ShutdownResponse {
            accepted: false,
            error: format!("unknown shutdown type {}", r.r#type),
        },
    }
}

/// The error event refusing request `id` of arm `request`.
pub fn unimplemented(id: &str, request: &str) -> AgentMessage {
    let event = ErrorEvent {
        severity: ErrorSeverity::Error.into(),
        code: UNIMPLEMENTED.to_string(),
        message: format!("the guestwire mock agent does not implement {request}"),
        details: BTreeMap::from([
            ("request_id".to_string(), id.to_string()),
            ("request".to_string(), request.to_string()),
        ]),
    };
    AgentMessage::new("", event).with_timestamp(timestamp_now())
}

/// The `code` of the error event that replaces a reply too large for one frame.
pub const REPLY_TOO_LARGE: &str = "REPLY_TOO_LARGE";

impl Answer {
    /// This answer, or, when its reply cannot fit the 16 MiB frame maximum (a huge command
    /// output or file chunk), an error event saying so for the same request.
    pub fn fit(self) -> Self {
        let message = self.message();
        let len = message.encoded_len();
        if len as u64 <= MAX_MESSAGE {
            return self;
        }
        let request = message
            .payload
            .as_ref()
            .and_then(Payload::request_name)
            .unwrap_or("");
        let mut event = unimplemented(&message.message_id, request);
        if let Some(Payload::Error(e)) = &mut event.payload {
            e.code = REPLY_TOO_LARGE.to_string();
            e.message = format!("the reply is {len} bytes, over the {MAX_MESSAGE}-byte maximum");
        }
        Self::Refusal(event)
    }
}

fn entry(info: &FileInfo) -> DirectoryEntry {
    DirectoryEntry {
        name: info.name.clone(),
        path: info.path.clone(),
        is_directory: info.kind == FileKind::Directory,
        is_symlink: info.kind == FileKind::Symlink,
        size_bytes: info.size,
        mode: info.mode,
        modified_at: info.modified.map(timestamp_of),
        ..DirectoryEntry::default()
    }
}
