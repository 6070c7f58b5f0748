//! `guestwire tap --upstream EP --listen EP [--protocol P|auto] [--fault SPEC]... [--json]`:
//! relays host clients to the upstream endpoint, byte-exact, and logs every frame as it passes
//! (one line each, or one JSON object with `--json`). `--takeover PATH` moves a VMM's socket
//! aside, listens in its place and puts it back on exit; `--restore PATH` undoes a takeover
//! left behind by a killed tap. `--capture OUT` records every connection into a pcap (or pcapng)
//! as it is relayed (`--cid`, `--port`: the guest address written when the endpoints give none).
//!
//! The log never slows the relay: lines go through a bounded queue to a printer thread, and
//! lines that do not fit are counted and reported instead of blocking the pumps.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use clap::Args;

use super::{CliError, Outcome};
use crate::capture::CaptureWriter;
use crate::fault::FaultSpec;
use crate::io::Endpoint;
use crate::tap::{
    CaptureSink, Fanout, FrameLog, GuestAddr, Takeover, TapConfig, TapEvent, TapSink, proxy,
};
use crate::wire::hybrid::Flavour;
use crate::wire::protocol::Protocol;

/// Log lines that may wait for the printer before new ones are dropped.
pub const LOG_QUEUE: usize = 65_536;

/// Arguments of `guestwire tap`.
#[derive(Debug, Args)]
pub struct TapArgs {
    /// Where the host daemon's connections arrive: unix:PATH, or hvsock:PATH:PORT (the tap
    /// answers the handshake as a VMM would).
    #[arg(long, short, required_unless_present_any = ["takeover", "restore"])]
    pub listen: Option<String>,
    /// Where to relay them: the VMM's socket (unix:PATH, hvsock:PATH:PORT) or an agent.
    #[arg(long, short, required_unless_present_any = ["takeover", "restore"])]
    pub upstream: Option<String>,
    /// Move the socket at PATH aside, listen at PATH, relay to the moved socket, and move it
    /// back on exit (see docs/captures.md for the risks).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["listen", "upstream", "restore"])]
    pub takeover: Option<PathBuf>,
    /// Put back a socket left at PATH.guestwire-orig by a killed `--takeover`, then exit.
    #[arg(long, value_name = "PATH")]
    pub restore: Option<PathBuf>,
    /// The protocol for the log and for frame faults, or auto (guessed per direction).
    #[arg(long, short, default_value = "auto")]
    pub protocol: String,
    /// A fault applied to every connection (repeatable), e.g. `latency:latency=50ms`.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// Seed of the fault plans' randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// For an hvsock: listener, which VMM's handshake to answer as.
    #[arg(long, default_value = "firecracker")]
    pub flavour: Flavour,
    /// Deadline for connecting upstream, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub connect_timeout_ms: u64,
    /// Exit after this many connections have been served.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<u64>,
    /// No frame log, only connection lines.
    #[arg(long)]
    pub quiet: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Record every connection into OUT (pcap, or pcapng for a name ending in .pcapng) as
    /// LINKTYPE_VSOCK records (see docs/captures.md).
    #[arg(long, value_name = "OUT")]
    pub capture: Option<PathBuf>,
    /// The guest CID written into the capture (a vsock: upstream names its own).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub cid: u64,
    /// The guest port written into the capture when neither end is hvsock: (e.g. the
    /// virtio-serial port number, or the hvsock port behind a transparent unix socket).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub port: u32,
}

/// Runs `guestwire tap`.
pub fn run(args: TapArgs) -> Result<Outcome, CliError> {
    if let Some(path) = &args.restore {
        Takeover::recover(path).map_err(|e| CliError::Usage(e.to_string()))?;
        eprintln!("guestwire: restored {}", path.display());
        return Ok(Outcome::Ok);
    }
    let protocol = match args.protocol.as_str() {
        "auto" => None,
        p => Some(
            p.parse::<Protocol>()
                .map_err(|e| CliError::Usage(format!("--protocol: {e}")))?,
        ),
    };
    let faults = args
        .faults
        .iter()
        .map(|s| {
            s.parse::<FaultSpec>()
                .map_err(|e| CliError::Usage(format!("--fault {s}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let parse = |flag: &str, v: &Option<String>| -> Result<Endpoint, CliError> {
        v.as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e| CliError::Usage(format!("--{flag}: {e}")))
    };
    let takeover = match &args.takeover {
        Some(path) => Some(Takeover::engage(path).map_err(|e| CliError::Usage(e.to_string()))?),
        None => None,
    };
    let (listen, upstream) = match &takeover {
        Some(t) => (
            Endpoint::Unix(t.path().to_path_buf()),
            Endpoint::Unix(t.moved().to_path_buf()),
        ),
        None => (
            parse("listen", &args.listen)?,
            parse("upstream", &args.upstream)?,
        ),
    };
    let config = TapConfig {
        listen,
        upstream,
        flavour: args.flavour,
        faults,
        protocol: protocol.clone(),
        seed: args.seed,
        connect_deadline: Duration::from_millis(args.connect_timeout_ms),
        max_connections: args.max_connections,
    };
    let capture = match &args.capture {
        Some(path) => {
            let writer = CaptureWriter::create(path)
                .map_err(|e| CliError::Usage(format!("--capture {}: {e}", path.display())))?;
            let guest = GuestAddr::for_tap(
                &config.listen,
                &config.upstream,
                Some(args.cid),
                Some(args.port),
            );
            Some(Arc::new(CaptureSink::new(writer, guest, SystemTime::now())))
        }
        None => None,
    };
    let (tx, printer) = spawn_printer();
    let log = Arc::new(LogSink {
        log: Mutex::new(FrameLog::new(protocol)),
        json: args.json,
        quiet: args.quiet,
        tx,
        dropped: std::sync::atomic::AtomicU64::new(0),
    });
    let sink: Arc<dyn TapSink> = match &capture {
        Some(c) => Arc::new(Fanout(vec![log.clone(), c.clone()])),
        None => log.clone(),
    };
    let runtime = super::runtime()?;
    let result = runtime.block_on(async {
        let listener = proxy::bind(&config)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        eprintln!(
            "guestwire: tap listening on {}, relaying to {}",
            config.listen, config.upstream
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("guestwire: interrupted, shutting down");
        };
        Ok::<_, CliError>(proxy::run(config, listener, sink.clone(), shutdown).await)
    });
    // The listener is closed: now the moved socket can go back.
    let restored = takeover.map(Takeover::restore);
    let dropped = log.dropped.load(std::sync::atomic::Ordering::Relaxed);
    drop(sink);
    drop(log);
    let _ = printer.join();
    let summary = result?;
    eprintln!(
        "guestwire: {} connections ({} upstream failures), {} B host → guest, {} B guest → host{}",
        summary.connections,
        summary.upstream_failures,
        summary.bytes_to_guest,
        summary.bytes_to_host,
        if dropped > 0 {
            format!(", {dropped} log lines dropped (stdout too slow)")
        } else {
            String::new()
        }
    );
    if let Some(c) = &capture {
        let stats = c.writer().stats();
        eprintln!(
            "guestwire: capture: {} records, {} B{}",
            stats.records,
            stats.file_bytes,
            if c.failed() {
                " (incomplete: a write failed)"
            } else {
                ""
            }
        );
    }
    if let Some(Err(e)) = restored {
        return Err(CliError::Usage(format!("restoring the socket: {e}")));
    }
    Ok(Outcome::Ok)
}

fn spawn_printer() -> (SyncSender<String>, std::thread::JoinHandle<()>) {
    let (tx, rx) = sync_channel::<String>(LOG_QUEUE);
    let handle = std::thread::spawn(move || {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        while let Ok(first) = rx.recv() {
            // Write what is queued, then flush, so a live log is live but batched under load.
            let mut next = Some(first);
            while let Some(line) = next {
                if writeln!(out, "{line}").is_err() {
                    return;
                }
                next = rx.try_recv().ok();
            }
            if out.flush().is_err() {
                return;
            }
        }
    });
    (tx, handle)
}

/// Turns tap events into log lines for the printer thread.
struct LogSink {
    log: Mutex<FrameLog>,
    json: bool,
    quiet: bool,
    tx: SyncSender<String>,
    dropped: std::sync::atomic::AtomicU64,
}

impl LogSink {
    fn emit(&self, line: String) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl TapSink for LogSink {
    fn on_event(&self, event: &TapEvent) {
        let json = self.json;
        match event {
            TapEvent::Connected { conn, peer, at } => self.emit(if json {
                serde_json::json!({"event": "connected", "conn": conn, "peer": peer, "time": at.as_secs_f64()}).to_string()
            } else {
                format!("{:>10.6} #{conn} connected from {peer}", at.as_secs_f64())
            }),
            TapEvent::UpstreamFailed { conn, error, at } => self.emit(if json {
                serde_json::json!({"event": "upstream_failed", "conn": conn, "error": error, "time": at.as_secs_f64()}).to_string()
            } else {
                format!("{:>10.6} #{conn} upstream failed: {error}", at.as_secs_f64())
            }),
            TapEvent::Data {
                conn,
                direction,
                bytes,
                at,
            } if !self.quiet => {
                let frames = self
                    .log
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(*conn, *direction, bytes, *at);
                for f in frames {
                    self.emit(if json { f.to_json().to_string() } else { f.line() });
                }
            }
            TapEvent::Data { .. } => {}
            TapEvent::Ended {
                conn,
                direction,
                report,
                at,
            } => {
                let frames = self
                    .log
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .finish(*conn, *direction, *at);
                if !self.quiet {
                    for f in frames {
                        self.emit(if json { f.to_json().to_string() } else { f.line() });
                    }
                }
                let end = format!("{:?}", report.end);
                self.emit(if json {
                    serde_json::json!({"event": "ended", "conn": conn, "direction": direction.name(),
                        "bytes": report.bytes_written, "dropped": report.bytes_dropped, "end": end,
                        "time": at.as_secs_f64()}).to_string()
                } else {
                    format!(
                        "{:>10.6} #{conn} {} ended after {} B ({} dropped): {end}",
                        at.as_secs_f64(),
                        direction.name(),
                        report.bytes_written,
                        report.bytes_dropped
                    )
                });
            }
        }
    }
}
