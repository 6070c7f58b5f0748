//! What the qga client's typed helpers return, and their lenient parsing from qemu-ga's JSON
//! (missing optional fields take qemu-ga's defaults).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::host::error::ClientError;

/// What `guest-exec-status` reported for a finished command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecStatus {
    /// The pid `guest-exec` returned.
    pub pid: i64,
    /// The exit code, when the command exited normally.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Captured standard output (empty without capture).
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
    /// The agent cut standard output (qemu-ga keeps 16 MiB).
    pub stdout_truncated: bool,
    /// The agent cut standard error.
    pub stderr_truncated: bool,
}

/// One entry of `guest-info`'s `supported_commands`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedCommand {
    /// The command, e.g. `guest-exec`.
    pub name: String,
    /// Whether the agent allows it (`-b` blocks commands).
    pub enabled: bool,
    /// Whether it answers on success (`false` for `guest-shutdown`).
    pub success_response: bool,
}

/// `guest-info`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestInfo {
    /// The agent's version, e.g. `7.2.22`.
    pub version: String,
    /// The commands it knows.
    pub supported_commands: Vec<SupportedCommand>,
}

/// How a shutdown request ended; all of them mean the agent accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// No error, and the agent answered the sync that followed.
    Confirmed,
    /// The connection closed before the sync's reply (the guest went down).
    Disconnected,
    /// Nothing came back before the deadline (the guest is going down).
    NoReply,
}

pub(super) fn parse_info(v: &Value) -> Result<GuestInfo, ClientError> {
    let version = v
        .get("version")
        .and_then(Value::as_str)
        .ok_or_else(|| ClientError::Protocol {
            reason: format!("guest-info without a version: {v}"),
        })?
        .to_string();
    let supported_commands = v
        .get("supported_commands")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| {
                    Some(SupportedCommand {
                        name: c.get("name")?.as_str()?.to_string(),
                        enabled: c.get("enabled").and_then(Value::as_bool).unwrap_or(true),
                        success_response: c
                            .get("success-response")
                            .and_then(Value::as_bool)
                            .unwrap_or(true),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(GuestInfo {
        version,
        supported_commands,
    })
}

pub(super) fn parse_exec_status(pid: i64, v: &Value) -> Result<ExecStatus, ClientError> {
    let int = |k: &str| {
        v.get(k)
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
    };
    let data = |k: &str| -> Result<Vec<u8>, ClientError> {
        match v.get(k).and_then(Value::as_str) {
            Some(b64) => STANDARD.decode(b64).map_err(|e| ClientError::Protocol {
                reason: format!("guest-exec-status: bad base64 in {k}: {e}"),
            }),
            None => Ok(Vec::new()),
        }
    };
    let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    Ok(ExecStatus {
        pid,
        exit_code: int("exitcode"),
        signal: int("signal"),
        stdout: data("out-data")?,
        stderr: data("err-data")?,
        stdout_truncated: flag("out-truncated"),
        stderr_truncated: flag("err-truncated"),
    })
}
