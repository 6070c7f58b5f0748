//! `guestwire guest`: run the mock guest agent of a protocol on an endpoint, serving host clients
//! until interrupted (or after one connection with `--once`). One line per connection, or one JSON
//! object per connection with `--json`; on stderr when serving stdio, whose stdout is the protocol.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::guest_opts::{GuestBehaviourArgs, mock_guest_protocol};
use super::{CliError, Outcome};
use crate::guest::{GuestConfig, serve_connection};
use crate::io::{Endpoint, Listener};
use crate::wire::hybrid::Flavour;
use crate::wire::protocol::Protocol;

/// Arguments of `guestwire guest`.
#[derive(Debug, Args)]
pub struct GuestArgs {
    /// Where to serve: unix:PATH, hvsock:PATH:PORT (as a VMM plus its guest), tcp:HOST:PORT,
    /// pty:PATH, stdio; inside a VM: vsock:CID:PORT, or serial:/dev/virtio-ports/NAME (the guest
    /// end of a virtio-serial port: one session per host connection, waiting while no host is
    /// connected).
    #[arg(long, short)]
    pub listen: String,
    /// quantix, quantix-legacy, fcexec, qga or volant.
    #[arg(long, short)]
    pub protocol: String,
    /// How the agent behaves.
    #[command(flatten)]
    pub behaviour: GuestBehaviourArgs,
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

/// Runs `guestwire guest`.
pub fn run(args: GuestArgs) -> Result<Outcome, CliError> {
    let endpoint: Endpoint = args
        .listen
        .parse()
        .map_err(|e| CliError::Usage(format!("--listen: {e}")))?;
    let protocol = mock_guest_protocol(&args.protocol)?;
    let cfg = Arc::new(args.behaviour.to_config()?);
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
                // On stdio the protocol owns stdout: the report goes to stderr.
                let to_stderr = matches!(endpoint, Endpoint::Stdio);
                tasks.spawn(async move {
                    let started = tokio::time::Instant::now();
                    let result = serve_connection(&protocol, conn.stream, cfg).await;
                    print_connection(&peer, &result, started.elapsed(), json, to_stderr);
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
    to_stderr: bool,
) {
    let mut out: Box<dyn Write> = if to_stderr {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    };
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
