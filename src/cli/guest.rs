//! `guestwire guest`: run the mock guest agent of a protocol on an endpoint, serving host clients
//! until interrupted (or after one connection with `--once`). One line per connection, or one JSON
//! object per connection with `--json`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{CliError, Outcome};
use crate::guest::exec::ExecMode;
use crate::guest::{GuestConfig, LoopMode, serve_connection};
use crate::io::{Endpoint, Listener};
use crate::wire::hybrid::Flavour;
use crate::wire::protocol::Protocol;

/// Arguments of `guestwire guest`.
#[derive(Debug, Args)]
pub struct GuestArgs {
    /// Where to serve: unix:PATH, hvsock:PATH:PORT (as a VMM plus its guest), tcp:HOST:PORT,
    /// pty:PATH, stdio, vsock:CID:PORT (inside a VM only).
    #[arg(long, short)]
    pub listen: String,
    /// quantix, quantix-legacy, fcexec, qga or volant.
    #[arg(long, short)]
    pub protocol: String,
    /// Root directory for the agent's file operations (none: file requests are refused).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// How exec requests run: real processes, or echo (stdout = the argv; deterministic).
    #[arg(long, value_enum, default_value = "real")]
    pub exec: ExecArg,
    /// Delay before every reply, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub reply_delay_ms: u64,
    /// Telemetry interval in seconds (quantix); 0 turns it off.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub telemetry: f64,
    /// The agent's main loop: robust, or naive (seed 003's single-threaded loop that stops
    /// reading while a write blocks).
    #[arg(long = "loop", value_name = "MODE", default_value = "robust")]
    pub loop_mode: LoopMode,
    /// For hvsock: which VMM's handshake to answer as (firecracker, cloud-hypervisor, vhost-device).
    #[arg(long, default_value = "firecracker")]
    pub flavour: Flavour,
    /// Serve one connection, then exit.
    #[arg(long)]
    pub once: bool,
    /// One JSON object per connection.
    #[arg(long)]
    pub json: bool,
}

/// `--exec` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecArg {
    /// Run programs for real (argv, no shell).
    Real,
    /// Run nothing: stdout is the argv joined by spaces.
    Echo,
}

/// Runs `guestwire guest`.
pub fn run(args: GuestArgs) -> Result<Outcome, CliError> {
    let endpoint: Endpoint = args
        .listen
        .parse()
        .map_err(|e| CliError::Usage(format!("--listen: {e}")))?;
    let protocol: Protocol = args
        .protocol
        .parse()
        .map_err(|e| CliError::Usage(format!("--protocol: {e}")))?;
    if !matches!(
        protocol,
        Protocol::Quantix
            | Protocol::QuantixLegacy
            | Protocol::Fcexec
            | Protocol::Qga
            | Protocol::Volant
    ) {
        return Err(CliError::Usage(format!(
            "there is no mock guest for {protocol}: quantix, quantix-legacy, fcexec, qga or volant"
        )));
    }
    if !(args.telemetry >= 0.0 && args.telemetry.is_finite()) {
        return Err(CliError::Usage(
            "--telemetry must be a number of seconds, 0 for none".into(),
        ));
    }
    let cfg = Arc::new(GuestConfig {
        root: args.root.clone(),
        exec: match args.exec {
            ExecArg::Real => ExecMode::Real,
            ExecArg::Echo => ExecMode::Echo,
        },
        reply_delay: Duration::from_millis(args.reply_delay_ms),
        telemetry_interval: (args.telemetry > 0.0).then(|| Duration::from_secs_f64(args.telemetry)),
        loop_mode: args.loop_mode,
        ..GuestConfig::default()
    });
    let runtime = super::runtime()?;
    runtime.block_on(serve(args, endpoint, protocol, cfg))
}

async fn serve(
    args: GuestArgs,
    endpoint: Endpoint,
    protocol: Protocol,
    cfg: Arc<GuestConfig>,
) -> Result<Outcome, CliError> {
    let bind_err =
        |e: crate::io::ListenError| CliError::Usage(format!("cannot listen on {endpoint}: {e}"));
    let mut listener = match &endpoint {
        Endpoint::Hvsock { path, port } => Listener::bind_hvsock(path, &[*port], args.flavour)
            .await
            .map_err(bind_err)?,
        other => Listener::bind(other).await.map_err(bind_err)?,
    };
    eprintln!(
        "guestwire: mock {protocol} guest listening on {}",
        listener.endpoint()
    );
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let conn = match accepted {
                    Ok(c) => c,
                    Err(crate::io::ListenError::Exhausted { .. }) => break,
                    Err(e) => {
                        eprintln!("guestwire: accept failed: {e}");
                        break;
                    }
                };
                let (protocol, cfg, json, peer) = (protocol.clone(), cfg.clone(), args.json, conn.peer.clone());
                tasks.spawn(async move {
                    let started = tokio::time::Instant::now();
                    let result = serve_connection(&protocol, conn.stream, cfg).await;
                    print_connection(&peer, &result, started.elapsed(), json);
                });
                if args.once {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("guestwire: interrupted, shutting down");
                tasks.abort_all();
                return Ok(Outcome::Ok);
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(Outcome::Ok)
}

fn print_connection(
    peer: &str,
    result: &Result<crate::guest::ConnectionReport, crate::guest::GuestError>,
    elapsed: Duration,
    json: bool,
) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let ms = elapsed.as_secs_f64() * 1000.0;
    let _ = match (result, json) {
        (Ok(r), true) => writeln!(
            out,
            "{}",
            serde_json::json!({"peer": peer, "ok": true, "elapsed_ms": ms, "requests": r.requests, "events": r.events, "bad_frames": r.bad_frames})
        ),
        (Err(e), true) => writeln!(
            out,
            "{}",
            serde_json::json!({"peer": peer, "ok": false, "elapsed_ms": ms, "error": e.to_string()})
        ),
        (Ok(r), false) => writeln!(
            out,
            "connection from {peer} closed after {ms:.1} ms: {} requests, {} events, {} bad frames",
            r.requests, r.events, r.bad_frames
        ),
        (Err(e), false) => writeln!(out, "connection from {peer} ended after {ms:.1} ms: {e}"),
    };
}
