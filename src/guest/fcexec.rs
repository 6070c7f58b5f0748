//! The mock fcexec agent: seed 001's guest side (length-prefixed JSON, default vsock port 1024).
//!
//! One workload per connection, as the seed's agent does: read one [`GuestRequest`], stream its
//! output as `{"type":"log","line"}` messages, then send one `{"type":"result","response"}` and
//! close. [`GuestConfig::reply_delay`] is slept before every message (so it separates the log
//! lines, which lets tests show that a client streams them).
//!
//! The real agent's runtimes (e.g. `python` with the source in `code`) are not emulated; the
//! mock has two deterministic ones:
//! - **echo** (any request when [`GuestConfig::exec`] is [`ExecMode::Echo`], or `runtime =
//!   "echo"`): each line of `code` becomes a log line; the result has exit code 0 and the lines
//!   (each ending in `\n`) as output;
//! - **exec** (`runtime = "exec"` with [`ExecMode::Real`]): runs `entrypoint` with the arguments
//!   given as a JSON array of strings in `code` through [`crate::guest::exec::run`] (never a
//!   shell), with `env` on top of the agent's environment and `timeout_s` as the timeout
//!   (0: none); then each stdout line becomes a log line and the result carries the exit code,
//!   stdout as output and an error (the start failure, the timeout, or stderr). The lines are
//!   sent once the program has exited, because `guest::exec` collects output rather than
//!   streaming it. `input` is not fed to the program (its stdin is `/dev/null`).
//!
//! Anything else, and a request that does not decode, is answered with a result whose exit code
//! is -1 and whose `error` says what is wrong; then the connection closes.
//! [`GuestConfig::loop_mode`] does not apply: there is nothing to read after the request.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::config::GuestConfig;
use super::error::{ConnectionReport, GuestError};
use super::exec::{ExecMode, ExecSpec, NO_EXIT_CODE};
use crate::io::{FramedReader, FramedWriter, ReadError, WriteError};
use crate::wire::fcexec::{
    FcexecDecoder, FcexecEncoder, FcexecMessage, GuestRequest, GuestResponse, LogLines,
};
use crate::wire::{Describe, Direction, WireError};

/// The mock's runtime that runs a program: `entrypoint` with the JSON array in `code` as its
/// arguments (what the host's `exec` maps to).
pub const EXEC_RUNTIME: &str = "exec";

/// The mock's runtime that echoes `code` line by line, whatever the exec mode.
pub const ECHO_RUNTIME: &str = "echo";

/// How long the mock waits for the request before closing the connection (a guestwire bound;
/// the seed's agent waits as long as the host keeps the connection).
pub const REQUEST_WAIT: Duration = Duration::from_secs(60);

/// How long one message may take to write before the connection is given up: the LimiQuantix
/// agent's 10 s write timeout (PROTOCOLS.md §2), the closest real figure.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one host connection: one request, its log lines, one result. Returns how it went; an
/// error only when the connection itself failed (reset, write timeout), never for a bad request.
pub async fn serve_connection<S>(
    stream: S,
    cfg: Arc<GuestConfig>,
) -> Result<ConnectionReport, GuestError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, wr) = tokio::io::split(stream);
    let mut reader = FramedReader::new(rd, FcexecDecoder::new(Some(Direction::ToGuest)));
    let mut out = Out::new(wr);
    let mut report = ConnectionReport::default();

    let request = match reader.next_timeout(REQUEST_WAIT).await {
        None => return Ok(report),
        Some(Ok(frame)) => match frame.message {
            FcexecMessage::Request(request) => request,
            // Not produced with a direction set; answered like any bad request.
            other => {
                report.bad_frames += 1;
                let why = format!(
                    "expected a GuestRequest, got a {:?} message",
                    other.type_name()
                );
                out.refuse(&cfg, why).await?;
                return Ok(report);
            }
        },
        Some(Err(ReadError::Wire(e))) if !matches!(e, WireError::Truncated { .. }) => {
            report.bad_frames += 1;
            out.refuse(&cfg, format!("malformed request: {e}")).await?;
            return Ok(report);
        }
        Some(Err(ReadError::TimedOut { .. })) => return Ok(report),
        Some(Err(e)) => return Err(e.into()),
    };
    report.requests = 1;

    let (lines, mut response) = match plan(&request, cfg.exec) {
        Plan::Echo(lines) => {
            let output = lines.iter().map(|l| format!("{l}\n")).collect();
            let response = GuestResponse {
                exit_code: 0,
                output,
                ..GuestResponse::default()
            };
            (lines, response)
        }
        Plan::Exec(spec) => {
            let result = ExecMode::Real.run(&spec).await;
            let output = result.stdout_lossy();
            let lines: Vec<String> = output.lines().map(str::to_string).collect();
            let error = match (&result.error, result.timed_out) {
                (Some(e), _) => e.clone(),
                (None, true) => format!("timed out after {}s", request.timeout_s),
                (None, false) => result.stderr_lossy(),
            };
            let response = GuestResponse {
                exit_code: result.exit_code,
                output,
                error,
                log_lines: None,
            };
            (lines, response)
        }
        Plan::Refuse(why) => {
            out.refuse(&cfg, why).await?;
            return Ok(report);
        }
    };
    for line in &lines {
        pause(&cfg).await;
        out.log(line).await?;
    }
    response.log_lines = Some(LogLines::Count(lines.len() as u64));
    pause(&cfg).await;
    out.result(&response).await?;
    out.close().await;
    Ok(report)
}

/// What to do with a request.
enum Plan {
    /// Echo these lines.
    Echo(Vec<String>),
    /// Run this program.
    Exec(ExecSpec),
    /// Answer with exit code -1 and this error.
    Refuse(String),
}

fn plan(request: &GuestRequest, mode: ExecMode) -> Plan {
    if mode == ExecMode::Echo || request.runtime == ECHO_RUNTIME {
        return Plan::Echo(request.code.lines().map(str::to_string).collect());
    }
    if request.runtime != EXEC_RUNTIME {
        return Plan::Refuse(format!(
            "the mock fcexec agent has no runtime {:?} (it runs {EXEC_RUNTIME:?}: entrypoint \
             with the JSON array in code as arguments, and {ECHO_RUNTIME:?})",
            request.runtime
        ));
    }
    if request.entrypoint.is_empty() {
        return Plan::Refuse("runtime \"exec\" needs an entrypoint (the program to run)".into());
    }
    let args: Vec<String> = if request.code.trim().is_empty() {
        Vec::new()
    } else {
        match serde_json::from_str(&request.code) {
            Ok(args) => args,
            Err(e) => {
                return Plan::Refuse(format!(
                    "runtime \"exec\" takes its arguments as a JSON array of strings in code: {e}"
                ));
            }
        }
    };
    let mut spec = ExecSpec::new(request.entrypoint.clone()).args(args);
    spec.environment = request.env.clone();
    if request.timeout_s > 0 {
        spec.timeout = Some(Duration::from_secs(request.timeout_s));
    }
    Plan::Exec(spec)
}

/// Sleeps [`GuestConfig::reply_delay`] (a free function: a `&self` held across the sleep would
/// make the connection future need a `Sync` stream).
async fn pause(cfg: &GuestConfig) {
    if !cfg.reply_delay.is_zero() {
        tokio::time::sleep(cfg.reply_delay).await;
    }
}

/// The guest's writing half: encodes and writes whole messages, each under [`WRITE_TIMEOUT`].
struct Out<W> {
    writer: FramedWriter<W, ()>,
    encoder: FcexecEncoder,
    buf: BytesMut,
}

impl<W: AsyncWrite + Unpin> Out<W> {
    fn new(w: W) -> Self {
        Self {
            writer: FramedWriter::new(w, ()),
            encoder: FcexecEncoder::new(),
            buf: BytesMut::new(),
        }
    }

    async fn write(&mut self) -> Result<(), GuestError> {
        let frame = self.buf.split().freeze();
        match tokio::time::timeout(WRITE_TIMEOUT, self.writer.send_raw(&frame)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(GuestError::WriteTimedOut(WRITE_TIMEOUT)),
        }
    }

    async fn log(&mut self, line: &str) -> Result<(), GuestError> {
        self.encoder
            .encode_log(line, &mut self.buf)
            .map_err(WriteError::Encode)?;
        self.write().await
    }

    async fn result(&mut self, response: &GuestResponse) -> Result<(), GuestError> {
        self.encoder
            .encode_result(response, &mut self.buf)
            .map_err(WriteError::Encode)?;
        self.write().await
    }

    /// Answers with exit code -1 and `error`, then closes.
    async fn refuse(&mut self, cfg: &GuestConfig, error: String) -> Result<(), GuestError> {
        let response = GuestResponse {
            exit_code: NO_EXIT_CODE,
            error,
            log_lines: Some(LogLines::Count(0)),
            ..GuestResponse::default()
        };
        pause(cfg).await;
        self.result(&response).await?;
        self.close().await;
        Ok(())
    }

    /// Shuts the write side down (bounded; a peer that is gone is not an error here).
    async fn close(&mut self) {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.writer.get_mut().shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::wire::decode_all;

    fn cfg(exec: ExecMode) -> Arc<GuestConfig> {
        Arc::new(GuestConfig {
            exec,
            ..GuestConfig::default()
        })
    }

    /// Sends `bytes` to a mock agent and returns what it answered (decoded) and its report.
    async fn exchange(
        bytes: Vec<u8>,
        cfg: Arc<GuestConfig>,
    ) -> (Vec<FcexecMessage>, ConnectionReport) {
        let (mut host, guest) = tokio::io::duplex(1 << 16);
        let serve = tokio::spawn(serve_connection(guest, cfg));
        host.write_all(&bytes).await.expect("request");
        host.shutdown().await.expect("half-close");
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), host.read_to_end(&mut got))
            .await
            .expect("deadline")
            .expect("read");
        let report = serve.await.expect("join").expect("serve");
        let mut dec = FcexecDecoder::new(Some(Direction::ToHost));
        let msgs = decode_all(&mut dec, &got)
            .into_iter()
            .map(|r| r.expect("frame").message)
            .collect();
        (msgs, report)
    }

    fn request(r: &GuestRequest) -> Vec<u8> {
        let mut buf = BytesMut::new();
        FcexecEncoder::new()
            .encode_request(r, &mut buf)
            .expect("encode");
        buf.to_vec()
    }

    fn result(msgs: &[FcexecMessage]) -> &GuestResponse {
        match msgs.last() {
            Some(FcexecMessage::Result(r)) => r,
            other => panic!("no result: {other:?}"),
        }
    }

    #[tokio::test]
    async fn echo_runtime_streams_each_line() {
        let r = GuestRequest {
            runtime: "echo".into(),
            code: "a\nb\nc".into(),
            ..GuestRequest::default()
        };
        let (msgs, report) = exchange(request(&r), cfg(ExecMode::Real)).await;
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[0], FcexecMessage::Log { line: "a".into() });
        let res = result(&msgs);
        assert_eq!(res.exit_code, 0);
        assert_eq!(res.output, "a\nb\nc\n");
        assert_eq!(res.log_lines, Some(LogLines::Count(3)));
        assert_eq!(report.requests, 1);
    }

    #[tokio::test]
    async fn malformed_request_gets_a_failed_result() {
        let mut bytes = 5u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"{nope");
        let (msgs, report) = exchange(bytes, cfg(ExecMode::Echo)).await;
        assert_eq!(msgs.len(), 1);
        let res = result(&msgs);
        assert_eq!(res.exit_code, -1);
        assert!(res.error.contains("malformed request"), "{}", res.error);
        assert_eq!(report.bad_frames, 1);
        assert_eq!(report.requests, 0);
    }

    #[tokio::test]
    async fn a_guest_message_instead_of_a_request_is_refused() {
        let mut buf = BytesMut::new();
        FcexecEncoder::new()
            .encode_log("x", &mut buf)
            .expect("encode");
        let (msgs, report) = exchange(buf.to_vec(), cfg(ExecMode::Echo)).await;
        assert!(result(&msgs).error.contains("wrong direction"));
        assert_eq!(report.bad_frames, 1);
    }

    #[tokio::test]
    async fn unknown_runtime_and_bad_arguments_are_refused() {
        let python = GuestRequest {
            runtime: "python".into(),
            code: "print(1)".into(),
            ..GuestRequest::default()
        };
        let (msgs, _) = exchange(request(&python), cfg(ExecMode::Real)).await;
        assert_eq!(result(&msgs).exit_code, -1);
        assert!(result(&msgs).error.contains("no runtime \"python\""));
        let bad_args = GuestRequest {
            runtime: "exec".into(),
            entrypoint: "/bin/echo".into(),
            code: "not json".into(),
            ..GuestRequest::default()
        };
        let (msgs, _) = exchange(request(&bad_args), cfg(ExecMode::Real)).await;
        assert!(result(&msgs).error.contains("JSON array"));
    }

    #[tokio::test]
    async fn exec_runs_the_program_and_logs_its_stdout() {
        let r = GuestRequest {
            runtime: "exec".into(),
            entrypoint: "/bin/sh".into(),
            code: r#"["-c","echo one; echo two; echo oops >&2; exit 3"]"#.into(),
            timeout_s: 10,
            ..GuestRequest::default()
        };
        let (msgs, _) = exchange(request(&r), cfg(ExecMode::Real)).await;
        assert_eq!(msgs[0], FcexecMessage::Log { line: "one".into() });
        assert_eq!(msgs[1], FcexecMessage::Log { line: "two".into() });
        let res = result(&msgs);
        assert_eq!(res.exit_code, 3);
        assert_eq!(res.output, "one\ntwo\n");
        assert_eq!(res.error, "oops\n");
    }

    #[tokio::test]
    async fn eof_before_a_request_is_a_quiet_end() {
        let (msgs, report) = exchange(Vec::new(), cfg(ExecMode::Echo)).await;
        assert!(msgs.is_empty());
        assert_eq!(report, ConnectionReport::default());
    }
}
