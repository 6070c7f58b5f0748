//! Running commands for the mock guest agent: the body of LimiQuantix's `execute` (PROTOCOLS.md
//! §2: `ExecuteRequest { command, args, working_directory, environment, timeout_seconds,
//! max_output_bytes }` → `ExecuteResponse { exit_code, stdout, stderr, truncated, timed_out,
//! duration_ms, error }`), and of seed 001's and qga's exec commands.
//!
//! - The program runs with its argv as given (`tokio::process`), **never through a shell**; a
//!   caller who wants a shell passes `/bin/sh` and `-c` itself. stdin is `/dev/null`; the
//!   environment is the agent's own, with [`ExecSpec::environment`] on top.
//! - stdout and stderr are read concurrently; each keeps its first `max_output_bytes` bytes and
//!   reads and discards the rest, so the child never blocks on a full pipe (`truncated` says so).
//! - The child leads its own process group. On timeout the whole group gets `SIGKILL`, then the
//!   child is reaped (no zombie) and `timed_out` is set. When the child exits but descendants
//!   still hold the pipes, they get [`OUTPUT_DRAIN_GRACE`] to finish and are then killed the same
//!   way, so a background job cannot hold a reply forever. If the future is dropped, the child is
//!   killed (`kill_on_drop`) and tokio reaps it in the background.
//! - Exit code: the process's own code; **-1 when a signal ended it** (what Go's
//!   `ProcessState.ExitCode()` and Rust agents' `status.code().unwrap_or(-1)` report), with the
//!   signal in [`ExecResult::signal`]. A program that cannot be started gives exit code -1 and
//!   [`ExecResult::error`], not a Rust error.
//!
//! [`ExecMode::Echo`] answers without running anything, deterministically, for tests.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

/// Per-stream output cap when the request gives none (a guestwire choice: 1 MiB).
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// How long, after the child exits, descendants holding its stdout/stderr may keep them open
/// before their process group is killed.
pub const OUTPUT_DRAIN_GRACE: Duration = Duration::from_millis(200);
/// Exit code reported when there is no exit code: killed by a signal, or never started.
pub const NO_EXIT_CODE: i32 = -1;
/// Size of each read from a pipe.
const READ_CHUNK: usize = 16 * 1024;

/// A command to run: the protocol-independent fields of an execute request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSpec {
    /// The program: a path, or a name looked up in `PATH`.
    pub program: String,
    /// Arguments, passed as argv[1..] without any shell interpretation.
    pub args: Vec<String>,
    /// Working directory; `None` keeps the agent's.
    pub working_directory: Option<PathBuf>,
    /// Variables set on top of the agent's environment.
    pub environment: BTreeMap<String, String>,
    /// Kill the command after this long; `None` waits for ever.
    pub timeout: Option<Duration>,
    /// Bytes kept per stream (stdout and stderr each); `None` means
    /// [`DEFAULT_MAX_OUTPUT_BYTES`].
    pub max_output_bytes: Option<usize>,
}

impl ExecSpec {
    /// A spec running `program` with no arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            ..Self::default()
        }
    }

    /// Appends one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.environment.insert(key.into(), value.into());
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn working_directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_directory = Some(dir.into());
        self
    }

    /// Sets the timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the per-stream output cap.
    #[must_use]
    pub fn max_output_bytes(mut self, max: usize) -> Self {
        self.max_output_bytes = Some(max);
        self
    }

    fn cap(&self) -> usize {
        self.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES)
    }
}

/// What running a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecResult {
    /// The exit code; [`NO_EXIT_CODE`] (-1) when a signal ended the process or it never started.
    pub exit_code: i32,
    /// The signal that ended the process, if one did (9 after a timeout).
    pub signal: Option<i32>,
    /// The first `max_output_bytes` bytes of stdout.
    pub stdout: Vec<u8>,
    /// The first `max_output_bytes` bytes of stderr.
    pub stderr: Vec<u8>,
    /// How many bytes the process wrote to stdout, kept or not.
    pub stdout_total: u64,
    /// How many bytes the process wrote to stderr, kept or not.
    pub stderr_total: u64,
    /// True when either stream was cut at the cap.
    pub truncated: bool,
    /// True when the timeout killed the process.
    pub timed_out: bool,
    /// From spawning to reaping (zero in [`ExecMode::Echo`]).
    pub duration: Duration,
    /// Why the command could not be run or observed (spawn or wait failure, pipe read error).
    pub error: Option<String>,
}

impl ExecResult {
    /// True when the process ran and exited with code 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && self.signal.is_none() && self.error.is_none() && !self.timed_out
    }

    /// stdout as text (invalid UTF-8, e.g. a character cut by the cap, becomes U+FFFD), as the
    /// `string stdout` of an `ExecuteResponse` needs it.
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text; see [`ExecResult::stdout_lossy`].
    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn failed(error: String, duration: Duration) -> Self {
        Self {
            exit_code: NO_EXIT_CODE,
            duration,
            error: Some(error),
            ..Self::default()
        }
    }
}

/// How the mock guest executes commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMode {
    /// Run the program for real.
    Real,
    /// Run nothing: stdout is the argv joined by spaces (cut at the cap), exit code 0, zero
    /// duration. Deterministic, for tests and fuzzing.
    Echo,
}

impl ExecMode {
    /// Runs `spec` in this mode. Never fails: problems are in [`ExecResult::error`].
    pub async fn run(self, spec: &ExecSpec) -> ExecResult {
        match self {
            Self::Real => run(spec).await,
            Self::Echo => echo(spec),
        }
    }
}

/// [`ExecMode::Echo`]'s result for `spec`.
pub fn echo(spec: &ExecSpec) -> ExecResult {
    let mut text = spec.program.clone();
    for arg in &spec.args {
        text.push(' ');
        text.push_str(arg);
    }
    let total = text.len();
    let mut stdout = text.into_bytes();
    let truncated = stdout.len() > spec.cap();
    stdout.truncate(spec.cap());
    ExecResult {
        exit_code: 0,
        stdout,
        stdout_total: total as u64,
        truncated,
        ..ExecResult::default()
    }
}

/// Runs `spec` for real ([`ExecMode::Real`]); see the module docs for the guarantees.
pub async fn run(spec: &ExecSpec) -> ExecResult {
    let cap = spec.cap();
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(&spec.environment)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &spec.working_directory {
        cmd.current_dir(dir);
    }
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return ExecResult::failed(
                format!("failed to start {:?}: {e}", spec.program),
                start.elapsed(),
            );
        }
    };
    let group = process_group_of(&child);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stdout = capture(child.stdout.take(), cap, stop_rx.clone());
    let stderr = capture(child.stderr.take(), cap, stop_rx);
    let readers = async move { tokio::join!(stdout, stderr) };
    tokio::pin!(readers);

    // Read both pipes while waiting for the child (or killing it at the timeout).
    let mut outputs = None;
    let (status, timed_out) = {
        let waiter = wait_or_kill(&mut child, group, spec.timeout);
        tokio::pin!(waiter);
        loop {
            tokio::select! {
                done = &mut waiter => break done,
                out = &mut readers, if outputs.is_none() => outputs = Some(out),
            }
        }
    };
    let duration = start.elapsed();

    // The child is reaped; descendants may still hold the pipes.
    let (out, err) = match outputs {
        Some(out) => out,
        None => match tokio::time::timeout(OUTPUT_DRAIN_GRACE, &mut readers).await {
            Ok(out) => out,
            Err(_) => {
                kill_group(group);
                let _ = stop_tx.send(true);
                readers.await
            }
        },
    };

    let mut result = ExecResult {
        exit_code: NO_EXIT_CODE,
        truncated: out.truncated || err.truncated,
        stdout_total: out.total,
        stderr_total: err.total,
        stdout: out.data,
        stderr: err.data,
        timed_out,
        duration,
        ..ExecResult::default()
    };
    match status {
        Ok(status) => {
            result.exit_code = status.code().unwrap_or(NO_EXIT_CODE);
            result.signal = status.signal();
        }
        Err(e) => result.error = Some(format!("waiting for {:?}: {e}", spec.program)),
    }
    let read_errors: Vec<String> = [("stdout", out.error), ("stderr", err.error)]
        .into_iter()
        .filter_map(|(name, e)| e.map(|e| format!("reading {name}: {e}")))
        .collect();
    if result.error.is_none() && !read_errors.is_empty() {
        result.error = Some(read_errors.join("; "));
    }
    result
}

/// The child's process group id (its pid, thanks to `process_group(0)`), taken before it is
/// reaped. Linux does not reuse a pid while it names a live process group, so killing this
/// group later reaches only the child's remaining descendants.
fn process_group_of(child: &Child) -> Option<rustix::process::Pid> {
    child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
}

/// `SIGKILL` to a process group; errors (typically: the group is already gone) are ignored.
fn kill_group(group: Option<rustix::process::Pid>) {
    if let Some(pgid) = group {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

/// Waits for the child; at the timeout kills its process group (and the child itself, in case it
/// left the group), then reaps it. Returns the status and whether the timeout fired.
async fn wait_or_kill(
    child: &mut Child,
    group: Option<rustix::process::Pid>,
    timeout: Option<Duration>,
) -> (io::Result<ExitStatus>, bool) {
    let Some(limit) = timeout else {
        return (child.wait().await, false);
    };
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => (status, false),
        Err(_) => {
            kill_group(group);
            let _ = child.start_kill();
            (child.wait().await, true)
        }
    }
}

/// What one pipe produced.
#[derive(Debug, Default)]
struct Captured {
    data: Vec<u8>,
    total: u64,
    truncated: bool,
    error: Option<String>,
}

/// Reads `reader` to its end (or until `stop` turns true), keeping the first `cap` bytes and
/// discarding the rest.
async fn capture<R: AsyncRead + Unpin>(
    reader: Option<R>,
    cap: usize,
    mut stop: watch::Receiver<bool>,
) -> Captured {
    let mut captured = Captured::default();
    let Some(mut reader) = reader else {
        return captured;
    };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = tokio::select! {
            // Stop first: a descendant that writes without pause must not keep us reading.
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            read = reader.read(&mut buf) => match read {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    captured.error = Some(e.to_string());
                    break;
                }
            },
        };
        captured.total += n as u64;
        let keep = n.min(cap.saturating_sub(captured.data.len()));
        captured.data.extend_from_slice(&buf[..keep]);
        captured.truncated |= keep < n;
    }
    captured
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ExecSpec {
        ExecSpec::new("/bin/sh").args(["-c", script])
    }

    #[tokio::test]
    async fn echo_mode_joins_argv_and_runs_nothing() {
        let spec = ExecSpec::new("rm").args(["-rf", "/ important"]);
        let result = ExecMode::Echo.run(&spec).await;
        assert_eq!(result.stdout_lossy(), "rm -rf / important");
        assert_eq!(result.exit_code, 0);
        assert_eq!(result.duration, Duration::ZERO);
        assert!(result.success() && !result.truncated);

        let capped = ExecMode::Echo.run(&spec.max_output_bytes(5)).await;
        assert_eq!(capped.stdout, b"rm -r");
        assert!(capped.truncated);
        assert_eq!(capped.stdout_total, 18);
    }

    #[tokio::test]
    async fn real_run_captures_stdout() {
        let result = ExecMode::Real.run(&sh("printf hi")).await;
        assert_eq!(result.stdout, b"hi");
        assert!(result.stderr.is_empty());
        assert_eq!(result.exit_code, 0);
        assert!(result.success(), "{result:?}");
    }

    #[tokio::test]
    async fn stderr_and_exit_code() {
        let result = run(&sh("printf out; printf err >&2; exit 3")).await;
        assert_eq!(result.stdout, b"out");
        assert_eq!(result.stderr, b"err");
        assert_eq!((result.exit_code, result.signal), (3, None));
        assert!(!result.success());
        assert_eq!(result.error, None);
    }

    #[tokio::test]
    async fn argv_is_never_interpreted_by_a_shell() {
        let spec = ExecSpec::new("printf").args(["%s|%s|%s", "$(id)", "*;", "a b"]);
        let result = run(&spec).await;
        assert_eq!(result.stdout_lossy(), "$(id)|*;|a b");
    }

    #[tokio::test]
    async fn working_directory_and_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let canonical = std::fs::canonicalize(dir.path()).expect("canonical");
        let spec = sh(r#"printf '%s %s' "$(pwd -P)" "$GUESTWIRE_TEST""#)
            .working_directory(dir.path())
            .env("GUESTWIRE_TEST", "value with spaces");
        let result = run(&spec).await;
        assert_eq!(
            result.stdout_lossy(),
            format!("{} value with spaces", canonical.display())
        );
    }

    #[tokio::test]
    async fn large_output_is_capped_and_drained() {
        let spec = sh("head -c 1000000 /dev/zero; head -c 300000 /dev/zero >&2")
            .max_output_bytes(1000)
            .timeout(Duration::from_secs(60));
        let result = run(&spec).await;
        assert_eq!(result.stdout.len(), 1000);
        assert_eq!(result.stderr.len(), 1000);
        assert_eq!(result.stdout_total, 1_000_000);
        assert_eq!(result.stderr_total, 300_000);
        assert!(result.truncated);
        assert!(!result.timed_out, "the child must not block on a full pipe");
        assert_eq!(result.exit_code, 0);
    }

    #[tokio::test]
    async fn timeout_kills_and_reaps() {
        let spec = ExecSpec::new("sleep")
            .arg("30")
            .timeout(Duration::from_millis(200));
        let result = run(&spec).await;
        assert!(result.timed_out);
        assert_eq!(result.exit_code, NO_EXIT_CODE);
        assert_eq!(result.signal, Some(9));
        assert!(!result.success());
    }

    #[tokio::test]
    async fn timeout_kills_descendants_holding_the_pipes() {
        // The shell's children inherit stdout; only killing the group lets the pipes close.
        let spec = sh("sleep 30 & sleep 30; echo never").timeout(Duration::from_millis(200));
        let result = run(&spec).await;
        assert!(result.timed_out);
        assert!(result.stdout.is_empty());
    }

    #[tokio::test]
    async fn background_job_holding_stdout_does_not_hold_the_reply() {
        let result = run(&sh("sleep 30 & printf done")).await;
        assert!(!result.timed_out);
        assert_eq!(result.stdout, b"done");
        assert_eq!(result.exit_code, 0);
    }

    #[tokio::test]
    async fn signal_gives_minus_one_and_the_signal() {
        let result = run(&sh("kill -TERM $$")).await;
        assert_eq!(result.exit_code, NO_EXIT_CODE);
        assert_eq!(result.signal, Some(15));
        assert!(!result.timed_out);
    }

    #[tokio::test]
    async fn nonexistent_program_is_a_result_not_a_panic() {
        let result = run(&ExecSpec::new("/nonexistent/guestwire-no-such-program")).await;
        assert_eq!(result.exit_code, NO_EXIT_CODE);
        let error = result.error.as_deref().expect("error set");
        assert!(error.contains("failed to start"), "{error}");
        assert!(!result.success());

        let bad_dir = ExecSpec::new("true").working_directory("/nonexistent/guestwire-dir");
        assert!(run(&bad_dir).await.error.is_some());
        let nul = ExecSpec::new("printf").arg("a\0b");
        assert!(run(&nul).await.error.is_some());
    }
}
