//! `guestwire call`: one request to a guest agent through the host client, with timings; human
//! output or `--json`. Exit 0 when the call succeeded, 1 when it failed (the error's kind is
//! printed, and in JSON is `error.kind`), 2 on usage errors.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};

use super::{CliError, Outcome};
use crate::host::retry::RetryPolicy;
use crate::host::{CallOp, CallOutcome, ClientError, DialOptions, call_once};
use crate::io::Endpoint;
use crate::wire::protocol::Protocol;

/// Arguments of `guestwire call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Where the agent is: unix:PATH, hvsock:PATH:PORT, vsock:CID:PORT, tcp:HOST:PORT, pty:PATH.
    #[arg(long, short)]
    pub connect: String,
    /// quantix, quantix-legacy, fcexec, qga or volant.
    #[arg(long, short)]
    pub protocol: String,
    /// Deadline for the reply, in seconds (default: the protocol's real client's).
    #[arg(long, global = true, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Deadline for connecting and for the hybrid-vsock handshake, each, in seconds.
    #[arg(long, global = true, value_name = "SECS")]
    pub connect_timeout: Option<f64>,
    /// Connection attempts (default 5, 100 ms apart and doubling, as seed 001's DialGuest).
    #[arg(long, global = true, value_name = "N")]
    pub attempts: Option<u32>,
    /// For exec: exit 1 when the command's own exit code is not 0.
    #[arg(long, global = true)]
    pub check_exit: bool,
    /// Print the result as one JSON object.
    #[arg(long, global = true)]
    pub json: bool,
    /// The request.
    #[command(subcommand)]
    pub op: OpArg,
}

/// The requests `guestwire call` can make.
#[derive(Debug, Subcommand)]
pub enum OpArg {
    /// Liveness check (quantix ping, qga guest-ping, volant health; fcexec: dial + handshake).
    Ping,
    /// Run a program in the guest (argv, no shell).
    Exec {
        /// The command's own timeout in seconds.
        #[arg(long, value_name = "SECS")]
        exec_timeout: Option<f64>,
        /// Program to run.
        program: String,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Read a file from the guest (printed to stdout, or saved with --output).
    Read {
        /// Guest path.
        path: String,
        /// Save to this file instead of printing.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Write a file in the guest.
    Write {
        /// Guest path.
        path: String,
        /// The contents as text.
        #[arg(long, conflicts_with = "from")]
        data: Option<String>,
        /// Take the contents from this local file.
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Ask the guest to shut down.
    Shutdown {
        /// poweroff, reboot or halt.
        #[arg(long, default_value = "poweroff")]
        mode: String,
    },
    /// Ask the agent who it is (quantix capabilities, qga guest-info, volant health).
    Info,
    /// Send a request given as JSON in the protocol's own JSON form.
    Raw {
        /// The JSON (e.g. '{"message_id":"1","ping":{"sequence":7}}' for quantix).
        #[arg(value_name = "JSON")]
        request: String,
    },
}

fn secs(s: f64, what: &str) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| CliError::Usage(format!("{what} must be a positive number of seconds")))
}

fn op_of(arg: &OpArg) -> Result<CallOp, CliError> {
    Ok(match arg {
        OpArg::Ping => CallOp::Ping,
        OpArg::Exec {
            exec_timeout,
            program,
            args,
        } => CallOp::Exec {
            program: program.clone(),
            args: args.clone(),
            timeout: exec_timeout
                .map(|s| secs(s, "--exec-timeout"))
                .transpose()?,
        },
        OpArg::Read { path, .. } => CallOp::Read { path: path.clone() },
        OpArg::Write { path, data, from } => {
            let data = match (data, from) {
                (Some(d), None) => Bytes::from(d.clone().into_bytes()),
                (None, Some(f)) => {
                    Bytes::from(std::fs::read(f).map_err(|source| CliError::Io {
                        path: f.display().to_string(),
                        source,
                    })?)
                }
                _ => {
                    return Err(CliError::Usage(
                        "write needs --data TEXT or --from FILE".into(),
                    ));
                }
            };
            CallOp::Write {
                path: path.clone(),
                data,
            }
        }
        OpArg::Shutdown { mode } => match mode.as_str() {
            "poweroff" | "reboot" | "halt" => CallOp::Shutdown { mode: mode.clone() },
            _ => {
                return Err(CliError::Usage(format!(
                    "unknown shutdown mode {mode:?}: poweroff, reboot or halt"
                )));
            }
        },
        OpArg::Info => CallOp::Info,
        OpArg::Raw { request } => {
            serde_json::from_str::<serde_json::Value>(request)
                .map_err(|e| CliError::Usage(format!("raw request is not JSON: {e}")))?;
            CallOp::Raw {
                json: request.clone(),
            }
        }
    })
}

/// Runs `guestwire call`.
pub fn run(args: CallArgs) -> Result<Outcome, CliError> {
    let endpoint: Endpoint = args
        .connect
        .parse()
        .map_err(|e| CliError::Usage(format!("--connect: {e}")))?;
    let protocol: Protocol = args
        .protocol
        .parse()
        .map_err(|e| CliError::Usage(format!("--protocol: {e}")))?;
    let op = op_of(&args.op)?;
    let mut opts = DialOptions::default();
    if let Some(t) = args.timeout {
        let t = secs(t, "--timeout")?;
        opts.deadlines.request = Some(t);
        opts.deadlines.ping = Some(t);
    }
    if let Some(t) = args.connect_timeout {
        let t = secs(t, "--connect-timeout")?;
        opts.deadlines.connect = Some(t);
        opts.deadlines.handshake = Some(t);
    }
    if let Some(n) = args.attempts {
        opts.retry = RetryPolicy {
            attempts: n.max(1),
            ..opts.retry
        };
    }
    let runtime = super::runtime()?;
    let started = std::time::Instant::now();
    let result = runtime.block_on(call_once(&protocol, &endpoint, &opts, &op));
    let elapsed = started.elapsed();
    report(&args, &op, &protocol, result, elapsed)
}

fn report(
    args: &CallArgs,
    op: &CallOp,
    protocol: &Protocol,
    result: Result<CallOutcome, ClientError>,
    elapsed: Duration,
) -> Result<Outcome, CliError> {
    let out_err = |source| CliError::Io {
        path: "-".into(),
        source,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let ms = elapsed.as_secs_f64() * 1000.0;
    match result {
        Ok(outcome) => {
            if let (
                OpArg::Read {
                    output: Some(path), ..
                },
                Some(data),
            ) = (&args.op, &outcome.data)
            {
                std::fs::write(path, data).map_err(|source| CliError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
            }
            let failed_exit = args.check_exit && outcome.exit_code.is_some_and(|c| c != 0);
            if args.json {
                let v = serde_json::json!({
                    "ok": !failed_exit,
                    "protocol": protocol.to_string(),
                    "op": op.name(),
                    "elapsed_ms": ms,
                    "summary": outcome.summary,
                    "reply": outcome.reply,
                    "events": outcome.events,
                    "exit_code": outcome.exit_code,
                });
                writeln!(out, "{v}").map_err(out_err)?;
            } else {
                writeln!(
                    out,
                    "ok {} {} in {ms:.1} ms: {}",
                    protocol,
                    op.name(),
                    outcome.summary
                )
                .map_err(out_err)?;
                for e in &outcome.events {
                    writeln!(out, "  event: {}", event_name(e)).map_err(out_err)?;
                }
                let print_data = matches!(
                    &args.op,
                    OpArg::Read { output: None, .. } | OpArg::Exec { .. }
                );
                if let (true, Some(data)) = (print_data, &outcome.data) {
                    out.write_all(data).map_err(out_err)?;
                }
            }
            Ok(if failed_exit {
                Outcome::Failed
            } else {
                Outcome::Ok
            })
        }
        Err(e) => {
            if args.json {
                let v = serde_json::json!({
                    "ok": false,
                    "protocol": protocol.to_string(),
                    "op": op.name(),
                    "elapsed_ms": ms,
                    "error": e.to_json(),
                });
                writeln!(out, "{v}").map_err(out_err)?;
            } else {
                eprintln!(
                    "FAILED {} {} after {ms:.1} ms: {}: {e}",
                    protocol,
                    op.name(),
                    e.kind()
                );
            }
            Ok(Outcome::Failed)
        }
    }
}

/// A short name for an unsolicited message in human output: its type (the first key that is not
/// an id or a timestamp) and, for log lines, the line.
fn event_name(e: &serde_json::Value) -> String {
    let Some(obj) = e.as_object() else {
        return e.to_string();
    };
    if let Some(line) = obj.get("line").and_then(|l| l.as_str()) {
        return format!("log {line:?}");
    }
    obj.keys()
        .find(|k| !matches!(k.as_str(), "message_id" | "timestamp" | "id"))
        .cloned()
        .unwrap_or_else(|| e.to_string())
}
