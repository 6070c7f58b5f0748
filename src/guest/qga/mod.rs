//! guestwire's mock `qga` agent: answers like the real qemu-ga 7.2 (Debian `qemu-guest-agent`),
//! byte for byte where `shared/VMLAB.md`, the recorded fixture `fixtures/streams/qga-to-host.bin`
//! and the interop tests show it.
//!
//! - Input goes through qemu's own JSON rules ([`json`]): a 0xFF (a client's flush) draws
//!   `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}`, garbage
//!   text one `GenericError` per token (`invalid keyword 'this'`, …), and the parser state
//!   carries over from one client connection to the next, as in qemu-ga.
//! - Requests are checked as qemu's QMP dispatcher checks them (`QMP input must be a JSON
//!   object`, `QMP input member 'x' is unexpected`, `QMP input lacks member 'execute'`, …); an
//!   `id` is echoed; an unknown command is `CommandNotFound`,
//!   `The command X has not been found`.
//! - Commands: `guest-ping` `{}`, `guest-sync` `N`, `guest-sync-delimited` (0xFF then `N`),
//!   `guest-info` (the mock's version and these commands), `guest-get-host-name`,
//!   `guest-exec`/`guest-exec-status` ([`exec`], through [`crate::guest::exec`] and the config's
//!   exec mode), `guest-file-open`/`-read`/`-write`/`-flush`/`-close` ([`files`], confined to the
//!   config's root), and `guest-shutdown`, which like qemu-ga's sends **no reply** on success
//!   (the mock records it and keeps serving).
//! - Replies are written by [`QgaEncoder`], which formats them as qemu does.
//! - One client at a time: a [`QgaAgent`] serves one connection after the other, and a second
//!   client waits (starved, as with qemu-ga) until the first one leaves.
//! - Of [`GuestConfig`], the mock uses `root`, `exec`, `reply_delay`, `version` and `hostname`.
//!   `loop_mode` does not apply: qemu-ga itself reads and writes in one loop (a reply that
//!   cannot be written stops it from reading), which is what the mock does; qga has no
//!   telemetry.

mod args;
pub mod exec;
pub mod files;
pub mod json;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::BytesMut;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::Mutex;

use self::args::Args;
use self::exec::ExecTable;
use self::files::FileTable;
use self::json::{Parsed, QemuJsonStream};
use super::config::GuestConfig;
use super::error::{ConnectionReport, GuestError};
use super::files::Sandbox;
use crate::io::{FramedWriter, Listener, ReadError};
use crate::wire::Encoder;
use crate::wire::qga::encoder::qdict_bucket;
use crate::wire::qga::{CLASS_COMMAND_NOT_FOUND, CLASS_GENERIC_ERROR, QgaEncoder, QgaMessage};

/// Bytes read from the host at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The commands the mock implements, in the order qemu-ga 7.2 lists them in `guest-info`, with
/// whether they answer on success (`success-response`).
pub const COMMANDS: &[(&str, bool)] = &[
    ("guest-get-host-name", true),
    ("guest-exec", true),
    ("guest-exec-status", true),
    ("guest-file-flush", true),
    ("guest-file-write", true),
    ("guest-file-read", true),
    ("guest-file-close", true),
    ("guest-file-open", true),
    ("guest-shutdown", false),
    ("guest-info", true),
    ("guest-ping", true),
    ("guest-sync", true),
    ("guest-sync-delimited", true),
];

/// The shutdown modes qemu-ga accepts.
const SHUTDOWN_MODES: &[&str] = &["halt", "powerdown", "reboot"];

/// State that outlives a connection, as in qemu-ga: the parser, open files, running commands.
#[derive(Debug, Default)]
struct Session {
    json: QemuJsonStream,
    files: FileTable,
    execs: ExecTable,
}

/// A mock qga agent: one configuration and one session, serving connections one at a time.
#[derive(Debug, Clone)]
pub struct QgaAgent {
    cfg: Arc<GuestConfig>,
    sandbox: Option<Sandbox>,
    session: Arc<Mutex<Session>>,
    shutdowns: Arc<std::sync::Mutex<Vec<String>>>,
}

/// What the dispatcher decided for one request.
enum Outcome {
    /// Write this reply (after a 0xFF when `delimited`).
    Reply { reply: QgaMessage, delimited: bool },
    /// Write nothing (`guest-shutdown`).
    Silent,
}

impl QgaAgent {
    /// An agent with `cfg`. File commands are refused (`Permission denied`) when `cfg.root` is
    /// `None` or not a directory.
    pub fn new(cfg: Arc<GuestConfig>) -> Self {
        let sandbox = cfg.root.as_ref().and_then(|r| Sandbox::new(r).ok());
        Self {
            cfg,
            sandbox,
            session: Arc::new(Mutex::new(Session::default())),
            shutdowns: Arc::default(),
        }
    }

    /// The shutdown modes asked for so far (`powerdown`, `halt`, `reboot`), oldest first.
    pub fn shutdowns(&self) -> Vec<String> {
        self.shutdowns
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Serves one connection until the host closes it. Waits while another connection is being
    /// served (qemu-ga's one client at a time).
    pub async fn serve<S>(&self, stream: S) -> Result<ConnectionReport, GuestError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut session = self.session.lock().await;
        let (mut rd, wr) = tokio::io::split(stream);
        let mut writer = FramedWriter::new(wr, QgaEncoder::new());
        let mut report = ConnectionReport::default();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut parsed = Vec::new();
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) => return Ok(report),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(GuestError::Read(read_error(source))),
            };
            session
                .json
                .feed(buf.get(..n).unwrap_or_default(), &mut parsed);
            for item in parsed.drain(..) {
                let outcome = match item {
                    Parsed::Error(desc) => {
                        report.bad_frames += 1;
                        Outcome::Reply {
                            reply: QgaMessage::error(CLASS_GENERIC_ERROR, desc),
                            delimited: false,
                        }
                    }
                    Parsed::Value(request) => {
                        report.requests += 1;
                        self.dispatch(&mut session, request).await
                    }
                };
                if let Outcome::Reply { reply, delimited } = outcome {
                    if !self.cfg.reply_delay.is_zero() {
                        tokio::time::sleep(self.cfg.reply_delay).await;
                    }
                    let mut bytes = BytesMut::new();
                    if delimited {
                        bytes.extend_from_slice(&[crate::wire::qga::DELIMITER]);
                    }
                    QgaEncoder::new()
                        .encode(&reply, &mut bytes)
                        .map_err(|e| GuestError::Write(e.into()))?;
                    writer.send_raw(&bytes).await?;
                }
            }
        }
    }

    /// qemu's `qmp_dispatch` for one parsed value.
    async fn dispatch(&self, session: &mut Session, request: Value) -> Outcome {
        let error = |class: &str, desc: String, id: Option<Value>| Outcome::Reply {
            reply: QgaMessage::Error {
                class: class.into(),
                desc,
                id,
            },
            delimited: false,
        };
        let Value::Object(dict) = request else {
            return error(
                CLASS_GENERIC_ERROR,
                "QMP input must be a JSON object".into(),
                None,
            );
        };
        let id = dict.get("id").cloned();
        if let Err(desc) = check_request(&dict) {
            return error(CLASS_GENERIC_ERROR, desc, id);
        }
        let command = dict
            .get("execute")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let empty = Map::new();
        let arguments = dict
            .get("arguments")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let args = Args::new(arguments);
        let result = match command {
            "guest-ping" => args.finish().map(|()| json!({})),
            "guest-sync" | "guest-sync-delimited" => {
                let mut args = args;
                match args.int("id").and_then(|n| args.finish().map(|()| n)) {
                    Ok(n) => {
                        return Outcome::Reply {
                            reply: QgaMessage::Return {
                                value: json!(n),
                                id,
                            },
                            delimited: command == "guest-sync-delimited",
                        };
                    }
                    Err(e) => Err(e),
                }
            }
            "guest-info" => args.finish().map(|()| self.info()),
            "guest-get-host-name" => args
                .finish()
                .map(|()| json!({ "host-name": self.cfg.hostname })),
            "guest-exec" => session.execs.start(self.cfg.exec, args),
            "guest-exec-status" => session.execs.status(args).await,
            "guest-file-open" => session.files.open(self.sandbox.as_ref(), args).await,
            "guest-file-read" => session.files.read(self.sandbox.as_ref(), args).await,
            "guest-file-write" => session.files.write(self.sandbox.as_ref(), args).await,
            "guest-file-flush" => session.files.flush(args),
            "guest-file-close" => session.files.close(args),
            "guest-shutdown" => {
                let mut args = args;
                let mode = args.opt_str("mode").map(|m| m.unwrap_or("powerdown"));
                match mode.and_then(|m| args.finish().map(|()| m)) {
                    Ok(m) if SHUTDOWN_MODES.contains(&m) => {
                        if let Ok(mut list) = self.shutdowns.lock() {
                            list.push(m.to_string());
                        }
                        return Outcome::Silent;
                    }
                    Ok(_) => Err("Parameter 'mode' expects 'halt', 'powerdown' or 'reboot'".into()),
                    Err(e) => Err(e),
                }
            }
            other => {
                return error(
                    CLASS_COMMAND_NOT_FOUND,
                    format!("The command {other} has not been found"),
                    id,
                );
            }
        };
        match result {
            Ok(value) => Outcome::Reply {
                reply: QgaMessage::Return { value, id },
                delimited: false,
            },
            Err(desc) => error(CLASS_GENERIC_ERROR, desc, id),
        }
    }

    /// The `guest-info` value.
    fn info(&self) -> Value {
        let commands: Vec<Value> = COMMANDS
            .iter()
            .map(|(name, success)| {
                json!({"enabled": true, "name": name, "success-response": success})
            })
            .collect();
        json!({ "version": self.cfg.version, "supported_commands": commands })
    }
}

/// qemu's `qmp_dispatch_check_obj` (without out-of-band support, as in qemu-ga), which looks at
/// the members in its `QDict` order.
fn check_request(dict: &Map<String, Value>) -> Result<(), String> {
    let mut members: Vec<(&String, &Value)> = dict.iter().collect();
    members.sort_by_key(|(name, _)| qdict_bucket(name));
    for (name, value) in members {
        match name.as_str() {
            "execute" if !value.is_string() => {
                return Err("QMP input member 'execute' must be a string".into());
            }
            "arguments" if !value.is_object() => {
                return Err("QMP input member 'arguments' must be an object".into());
            }
            "execute" | "arguments" | "id" => {}
            other => return Err(format!("QMP input member '{other}' is unexpected")),
        }
    }
    if !dict.contains_key("execute") {
        return Err("QMP input lacks member 'execute'".into());
    }
    Ok(())
}

/// The C library's `strerror` text for `errno` (what qemu-ga puts in its messages), e.g.
/// `Bad file descriptor`.
fn strerror(errno: nix::errno::Errno) -> String {
    let text = std::io::Error::from_raw_os_error(errno as i32).to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text.get(..cut).unwrap_or(&text).to_string(),
        None => text,
    }
}

fn read_error(source: std::io::Error) -> ReadError {
    if matches!(
        source.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    ) {
        ReadError::Reset { partial_bytes: 0 }
    } else {
        ReadError::Io {
            source,
            partial_bytes: 0,
        }
    }
}

/// Serves one connection with a fresh agent (its own parser, files and commands).
pub async fn serve_connection<S>(
    stream: S,
    cfg: Arc<GuestConfig>,
) -> Result<ConnectionReport, GuestError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    QgaAgent::new(cfg).serve(stream).await
}

/// Accepts connections on `listener` for ever and serves each with `agent` (one at a time; the
/// others wait). Returns only when accepting fails; abort the task to stop it.
pub async fn serve_listener(
    mut listener: Listener,
    agent: QgaAgent,
) -> Result<(), crate::io::ListenError> {
    loop {
        let conn = listener.accept().await?;
        let agent = agent.clone();
        tokio::spawn(async move { agent.serve(conn.stream).await });
    }
}
