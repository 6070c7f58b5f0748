//! `guestwire vmm hvsock`: a mock hybrid-vsock VMM (Firecracker, Cloud Hypervisor or
//! vhost-device-vsock) on a Unix socket, with the mock guest or the user's agent behind each
//! guest port, and faults. One line per event (connect, OK, refusal, timeout, close with byte
//! counts), or one JSON object per event with `--json`. Runs until interrupted (SIGINT or
//! SIGTERM), or until the first host connection ends with `--once`; the socket files and the
//! agents' processes are cleaned up either way.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::broadcast::error::RecvError;

use super::guest_opts::{GuestBehaviourArgs, mock_guest_protocol};
use super::{CliError, Outcome};
use crate::fault::FaultSpec;
use crate::guest::serve_connection;
use crate::vmm::hvsock::{DEFAULT_CID, HvsockConfig, HvsockEvent, HvsockVmm, parse_guest_port};
use crate::wire::hybrid::Flavour;
use crate::wire::protocol::Protocol;

/// The arguments of `guestwire vmm hvsock`.
#[derive(Debug, Args)]
pub struct HvsockArgs {
    /// The hybrid-vsock Unix socket (Firecracker's `uds_path`); a stale socket file is replaced.
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// The guest's CID.
    #[arg(long, default_value_t = DEFAULT_CID)]
    pub cid: u32,
    /// Whose muxer to behave as: firecracker, cloud-hypervisor or vhost-device.
    #[arg(long, default_value = "firecracker")]
    pub flavour: Flavour,
    /// What serves a guest port (repeatable): PORT=PROTOCOL for the mock agent (quantix,
    /// quantix-legacy, fcexec, qga, volant), or PORT=cmd:CMD for your agent — with {socket} in
    /// CMD it is started once and must listen on that Unix socket, else it runs per connection
    /// with its stdin/stdout as the stream; {port} is replaced by the port.
    #[arg(long = "guest-port", value_name = "PORT=P|PORT=cmd:CMD")]
    pub guest_ports: Vec<String>,
    /// At start, a guest process connects to the host on PORT (the VMM dials SOCKET_PORT) and
    /// the mock agent of PROTOCOL serves that connection (repeatable).
    #[arg(long = "guest-connect", value_name = "PORT=PROTOCOL")]
    pub guest_connect: Vec<String>,
    /// A fault, 'kind[:key=value,...]' (repeatable), applied to every host connection.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// The protocol frame faults cut frames by (default: the guest ports' protocol).
    #[arg(long, value_name = "PROTOCOL")]
    pub fault_protocol: Option<String>,
    /// Seed of the faults' random choices (connection N uses SEED+N).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How the mock guest behaves.
    #[command(flatten)]
    pub behaviour: GuestBehaviourArgs,
    /// Exit after the first host connection ends.
    #[arg(long)]
    pub once: bool,
    /// One JSON object per event.
    #[arg(long)]
    pub json: bool,
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

/// The VMM's configuration from the arguments, and the guest-initiated connections to make.
fn config_of(args: &HvsockArgs) -> Result<(HvsockConfig, Vec<(u32, Protocol)>), CliError> {
    let mut cfg = HvsockConfig::new(&args.socket);
    cfg.cid = args.cid;
    cfg.flavour = args.flavour;
    cfg.seed = args.seed;
    cfg.guest = Arc::new(args.behaviour.to_config()?);
    for spec in &args.guest_ports {
        let (port, service) = parse_guest_port(spec).map_err(usage)?;
        if cfg.ports.insert(port, service).is_some() {
            return Err(usage(format!("guest port {port} is given twice")));
        }
    }
    for spec in &args.faults {
        let f: FaultSpec = spec
            .parse()
            .map_err(|e| usage(format!("--fault {spec:?}: {e}")))?;
        cfg.faults.push(f);
    }
    cfg.fault_protocol = args
        .fault_protocol
        .as_deref()
        .map(|p| {
            p.parse::<Protocol>()
                .map_err(|e| usage(format!("--fault-protocol: {e}")))
        })
        .transpose()?;
    let mut connects = Vec::new();
    for spec in &args.guest_connect {
        let (port, protocol) = spec
            .split_once('=')
            .ok_or_else(|| usage(format!("--guest-connect {spec:?}: expected PORT=PROTOCOL")))?;
        let port: u32 = port
            .parse()
            .map_err(|_| usage(format!("--guest-connect {spec:?}: bad port")))?;
        connects.push((port, mock_guest_protocol(protocol)?));
    }
    Ok((cfg, connects))
}

/// Runs the mock VMM's hvsock channel.
pub fn run(args: HvsockArgs) -> Result<Outcome, CliError> {
    let (cfg, connects) = config_of(&args)?;
    let runtime = super::runtime()?;
    runtime.block_on(serve(cfg, connects, args.once, args.json))
}

fn print(event: &HvsockEvent, json: bool) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = if json {
        writeln!(out, "{}", serde_json::to_string(event).unwrap_or_default())
    } else {
        writeln!(out, "{event}")
    };
}

/// Whether `event` ends a host connection (for `--once`).
fn ends_host_connection(event: &HvsockEvent) -> bool {
    matches!(
        event,
        HvsockEvent::Closed { origin: "host", .. } | HvsockEvent::Refused { origin: "host", .. }
    )
}

async fn serve(
    cfg: HvsockConfig,
    connects: Vec<(u32, Protocol)>,
    once: bool,
    json: bool,
) -> Result<Outcome, CliError> {
    let guest_cfg = cfg.guest.clone();
    let vmm = HvsockVmm::start(cfg).await.map_err(usage)?;
    let mut events = vmm.subscribe();
    let mut agents = tokio::task::JoinSet::new();
    for (port, protocol) in connects {
        // Refusals are reported as events.
        if let Ok(stream) = vmm.guest_connect(port).await {
            let cfg = guest_cfg.clone();
            agents.spawn(async move {
                let _ = serve_connection(&protocol, Box::new(stream), cfg).await;
            });
        }
    }
    let mut term = signal(SignalKind::terminate()).map_err(|source| CliError::Io {
        path: "SIGTERM handler".into(),
        source,
    })?;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(e) => {
                    print(&e, json);
                    if once && ends_host_connection(&e) {
                        break;
                    }
                }
                Err(RecvError::Lagged(n)) => eprintln!("guestwire: {n} events not shown (output too slow)"),
                Err(RecvError::Closed) => break,
            },
            _ = &mut interrupted => break,
            _ = term.recv() => break,
        }
    }
    vmm.stop().await;
    agents.abort_all();
    while agents.join_next().await.is_some() {}
    while let Ok(e) = events.try_recv() {
        print(&e, json);
    }
    Ok(Outcome::Ok)
}
