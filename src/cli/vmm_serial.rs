//! `guestwire vmm serial`: a mock QEMU virtio-serial port on a host Unix socket, with the mock
//! agent (`--guest P`), the user's agent on a pty (`--guest-cmd CMD`) or nothing on the guest
//! side, and faults (`--fault SPEC`, repeatable). One line per event on stdout (one JSON object
//! each with `--json`), until interrupted (`SIGINT`/`SIGTERM`), or until the first host client
//! leaves with `--once`. `SIGUSR1` restarts the guest agent. The socket file, the device link
//! and the agent process are cleaned up on every exit.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::guest_opts::{GuestBehaviourArgs, mock_guest_protocol};
use super::{CliError, Outcome};
use crate::fault::FaultSpec;
use crate::vmm::serial::{DEFAULT_SEED, GuestSide, SerialVmm, SerialVmmConfig, SerialVmmEvent};
use crate::wire::protocol::Protocol;

/// The arguments of `guestwire vmm serial`.
#[derive(Debug, Args)]
pub struct SerialArgs {
    /// The host Unix socket, as QEMU's `-chardev socket,path=PATH,server=on,wait=off`.
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// The port's name (`/dev/virtio-ports/NAME`; the device link's file name)
    /// [default: org.quantix.agent.0 for quantix, org.qemu.guest_agent.0 for qga,
    /// org.guestwire.port.0 otherwise].
    #[arg(long, value_name = "NAME")]
    pub port_name: Option<String>,
    /// Run the mock agent of this protocol as the guest (quantix, quantix-legacy, fcexec, qga,
    /// volant).
    #[arg(long, value_name = "PROTOCOL", conflicts_with = "guest_cmd")]
    pub guest: Option<String>,
    /// Run this command (through /bin/sh) as the guest agent; `{device}` is replaced by the path
    /// of the pty that stands in for the port's device.
    #[arg(long, value_name = "CMD")]
    pub guest_cmd: Option<String>,
    /// Where the device link goes with --guest-cmd [default: a new temporary directory].
    #[arg(long, value_name = "DIR", requires = "guest_cmd")]
    pub device_dir: Option<PathBuf>,
    /// How the mock agent behaves (with --guest). Boxed: `vmm`'s subcommands stay small.
    #[command(flatten)]
    pub behaviour: Box<GuestBehaviourArgs>,
    /// A fault, `kind[:key=value,...]`, e.g. `drop_frame:on_type=ping`, `guest_before_host`,
    /// `stale_client` (repeatable).
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// The port's protocol, for frame faults [default: --guest's, else raw].
    #[arg(long, value_name = "PROTOCOL")]
    pub protocol: Option<String>,
    /// Seed of the faults' random choices.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Exit once the first host client has disconnected.
    #[arg(long)]
    pub once: bool,
    /// One JSON object per event.
    #[arg(long)]
    pub json: bool,
}

fn default_port_name(protocol: Option<&Protocol>) -> &'static str {
    match protocol {
        Some(Protocol::Quantix | Protocol::QuantixLegacy) => "org.quantix.agent.0",
        Some(Protocol::Qga) => "org.qemu.guest_agent.0",
        _ => "org.guestwire.port.0",
    }
}

fn config(args: &SerialArgs) -> Result<SerialVmmConfig, CliError> {
    let guest_protocol = args.guest.as_deref().map(mock_guest_protocol).transpose()?;
    let protocol: Option<Protocol> = match &args.protocol {
        Some(p) => Some(
            p.parse()
                .map_err(|e| CliError::Usage(format!("--protocol: {e}")))?,
        ),
        None => guest_protocol.clone(),
    };
    let guest = match (&guest_protocol, &args.guest_cmd) {
        (Some(p), _) => GuestSide::Mock {
            protocol: p.clone(),
            config: Arc::new(args.behaviour.to_config()?),
        },
        (None, Some(cmd)) => GuestSide::Command {
            command: cmd.clone(),
            device_dir: args.device_dir.clone(),
        },
        (None, None) => GuestSide::None,
    };
    let faults = args
        .faults
        .iter()
        .map(|f| {
            f.parse::<FaultSpec>()
                .map_err(|e| CliError::Usage(format!("--fault {f}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let port_name = args
        .port_name
        .clone()
        .unwrap_or_else(|| default_port_name(protocol.as_ref()).to_string());
    let mut cfg = SerialVmmConfig::new(args.socket.clone(), port_name, guest);
    cfg.faults = faults;
    cfg.protocol = protocol.unwrap_or(Protocol::Raw);
    cfg.seed = args.seed;
    Ok(cfg)
}

/// Runs the mock VMM's serial channel.
pub fn run(args: SerialArgs) -> Result<Outcome, CliError> {
    let cfg = config(&args)?;
    let runtime = super::runtime()?;
    runtime.block_on(serve(cfg, args.once, args.json))
}

fn print(event: &SerialVmmEvent, json: bool) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = if json {
        writeln!(out, "{}", event.to_json())
    } else {
        writeln!(out, "{event}")
    };
    let _ = out.flush();
}

async fn serve(cfg: SerialVmmConfig, once: bool, json: bool) -> Result<Outcome, CliError> {
    let sig = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|source| CliError::Io {
            path: format!("{name} handler"),
            source,
        })
    };
    // Installed before the socket exists, so a signal sent once it does is never fatal.
    let mut interrupt = sig(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = sig(SignalKind::terminate(), "SIGTERM")?;
    let mut restart = sig(SignalKind::user_defined1(), "SIGUSR1")?;
    let socket = cfg.socket.display().to_string();
    let mut vmm = SerialVmm::start(cfg)
        .await
        .map_err(|e| CliError::Usage(format!("cannot start the port at {socket}: {e}")))?;
    let Some(mut events) = vmm.take_events() else {
        return Err(CliError::Usage("the port's events are gone".into()));
    };
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => print(&ev, json),
                Err(RecvError::Lagged(n)) => print(
                    &SerialVmmEvent::Error { message: format!("{n} events not shown (output too slow)") },
                    json,
                ),
                Err(RecvError::Closed) => break,
            },
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = restart.recv() => vmm.restart_guest(),
            () = vmm.first_client_done(), if once => break,
        }
    }
    vmm.stop().await;
    loop {
        match events.try_recv() {
            Ok(ev) => print(&ev, json),
            Err(TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    Ok(Outcome::Ok)
}
