//! `guest-exec` and `guest-exec-status` as qemu-ga 7.2 answers them: `guest-exec` starts the
//! program and returns `{"pid": N}` at once; `guest-exec-status` answers `{"exited": false}` while
//! it runs, then once `{"exitcode": N, "out-data": "<base64>", "out-truncated": false,
//! "exited": true}` (or `"signal": N` instead of `exitcode` when a signal ended it; `out-data` /
//! `err-data` only when output was captured and is not empty), after which the pid is forgotten
//! (`Invalid parameter 'pid'`). A program that cannot be started is refused by `guest-exec` with
//! glib's message, as qemu-ga does.
//!
//! The pids are the mock's own numbers (from [`FIRST_PID`]), not the host's; `env` is added to the
//! mock's environment (qemu-ga replaces it); `input-data` (stdin) is not supported.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::args::{ArgError, Args};
use crate::guest::exec::{ExecMode, ExecResult, ExecSpec};

/// qemu-ga's `GUEST_EXEC_MAX_OUTPUT`: output kept per stream (16 MiB).
pub const GUEST_EXEC_MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// The first pid the mock hands out.
pub const FIRST_PID: i64 = 4096;

/// The commands started and not yet reported as exited.
#[derive(Debug)]
pub(super) struct ExecTable {
    next_pid: i64,
    running: BTreeMap<i64, Running>,
}

#[derive(Debug)]
struct Running {
    capture: bool,
    task: JoinHandle<ExecResult>,
}

impl Default for ExecTable {
    fn default() -> Self {
        Self {
            next_pid: FIRST_PID,
            running: BTreeMap::new(),
        }
    }
}

impl Drop for ExecTable {
    fn drop(&mut self) {
        // Dropping the running future kills its child (`kill_on_drop`).
        for r in self.running.values() {
            r.task.abort();
        }
    }
}

impl ExecTable {
    /// `guest-exec {path, arg?, env?, input-data?, capture-output?}`.
    pub(super) fn start(&mut self, mode: ExecMode, mut args: Args<'_>) -> Result<Value, ArgError> {
        let path = args.str("path")?.to_string();
        let argv = args.opt_str_list("arg")?.unwrap_or_default();
        let env = args.opt_str_list("env")?.unwrap_or_default();
        let input = args.opt_str("input-data")?;
        let capture = args.opt_bool("capture-output")?.unwrap_or(false);
        args.finish()?;
        if input.is_some() {
            return Err("guestwire's mock qga does not support 'input-data'".into());
        }
        if mode == ExecMode::Real {
            spawn_check(&path)?;
        }
        let mut spec = ExecSpec::new(path)
            .args(argv)
            .max_output_bytes(GUEST_EXEC_MAX_OUTPUT);
        for pair in env {
            if let Some((k, v)) = pair.split_once('=') {
                spec = spec.env(k, v);
            }
        }
        let pid = self.next_pid;
        self.next_pid += 1;
        let task = tokio::spawn(async move { mode.run(&spec).await });
        self.running.insert(pid, Running { capture, task });
        Ok(json!({ "pid": pid }))
    }

    /// `guest-exec-status {pid}`.
    pub(super) async fn status(&mut self, mut args: Args<'_>) -> Result<Value, ArgError> {
        let pid = args.int("pid")?;
        args.finish()?;
        let invalid = || "Invalid parameter 'pid'".to_string();
        let done = self
            .running
            .get(&pid)
            .ok_or_else(invalid)?
            .task
            .is_finished();
        if !done {
            return Ok(json!({ "exited": false }));
        }
        let Running { capture, task } = self.running.remove(&pid).ok_or_else(invalid)?;
        let result = task.await.unwrap_or_else(|e| ExecResult {
            exit_code: crate::guest::exec::NO_EXIT_CODE,
            error: Some(e.to_string()),
            ..ExecResult::default()
        });
        Ok(status_json(&result, capture))
    }
}

/// The `guest-exec-status` reply for a finished command.
fn status_json(r: &ExecResult, capture: bool) -> Value {
    let mut m = Map::new();
    m.insert("exited".into(), Value::Bool(true));
    match r.signal {
        Some(signal) => m.insert("signal".into(), json!(signal)),
        None => m.insert("exitcode".into(), json!(r.exit_code)),
    };
    if capture {
        for (name, data, total) in [
            ("out", &r.stdout, r.stdout_total),
            ("err", &r.stderr, r.stderr_total),
        ] {
            if !data.is_empty() {
                m.insert(format!("{name}-data"), json!(STANDARD.encode(data)));
                m.insert(
                    format!("{name}-truncated"),
                    json!(total > data.len() as u64),
                );
            }
        }
    }
    Value::Object(m)
}

/// Refuses what `g_spawn_async` (with `G_SPAWN_SEARCH_PATH`) cannot start, with its message.
fn spawn_check(path: &str) -> Result<(), ArgError> {
    use std::os::unix::fs::PermissionsExt;
    let candidate = if path.contains('/') {
        Some(PathBuf::from(path))
    } else {
        std::env::var_os("PATH").and_then(|dirs| {
            std::env::split_paths(&dirs)
                .map(|d| d.join(path))
                .find(|p| p.is_file())
        })
    };
    let errno = match candidate.map(std::fs::metadata) {
        None => nix::errno::Errno::ENOENT,
        Some(Err(e)) => nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        Some(Ok(md)) if !md.is_file() || md.permissions().mode() & 0o111 == 0 => {
            nix::errno::Errno::EACCES
        }
        Some(Ok(_)) => return Ok(()),
    };
    Err(format!(
        "Guest agent command failed, error was 'Failed to execute child process \u{201C}{path}\u{201D} ({})'",
        super::strerror(errno)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_follow_qemu_ga() {
        let r = ExecResult {
            exit_code: 3,
            stdout: b"out\n".to_vec(),
            stdout_total: 4,
            stderr: b"err\n".to_vec(),
            stderr_total: 9,
            ..ExecResult::default()
        };
        assert_eq!(
            status_json(&r, true),
            json!({"exitcode": 3, "out-data": "b3V0Cg==", "out-truncated": false,
                   "err-data": "ZXJyCg==", "err-truncated": true, "exited": true})
        );
        assert_eq!(
            status_json(&r, false),
            json!({"exitcode": 3, "exited": true})
        );
        let killed = ExecResult {
            exit_code: -1,
            signal: Some(9),
            ..ExecResult::default()
        };
        assert_eq!(
            status_json(&killed, true),
            json!({"signal": 9, "exited": true})
        );
    }

    #[test]
    fn unstartable_programs_get_glibs_message() {
        assert_eq!(
            spawn_check("/nonexistent/prog").expect_err("missing"),
            "Guest agent command failed, error was 'Failed to execute child process \u{201C}/nonexistent/prog\u{201D} (No such file or directory)'"
        );
        assert!(spawn_check("/bin/echo").is_ok());
        assert!(spawn_check("echo").is_ok(), "found in PATH");
        assert!(
            spawn_check("/")
                .expect_err("directory")
                .ends_with("(Permission denied)'")
        );
    }
}
