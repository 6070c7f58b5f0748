//! `guestwire vmm ch-api`: the mock Cloud Hypervisor REST API on a Unix socket, until Ctrl-C,
//! SIGTERM or `vmm.shutdown` (exit 0 either way; the socket file is removed). One line per request
//! (`PUT /api/v1/vm.boot → 204`) and per event (`event vsock_up cid=3 socket=/run/v.sock`) on
//! standard output, or one JSON object each with `--json`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::{CliError, Outcome};
use crate::fault::{FaultKind, FaultSpec};
use crate::vmm::chapi::{
    ChApiHandle, ChApiHooks, ChApiServer, ChVersion, CodeMode, Event, RequestRecord, ServerConfig,
    ServerExit,
};
use crate::vmm::chapi_vsock::{GuestPlan, VsockBridge};
use crate::vmm::hvsock::parse_guest_port;

/// `--codes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodesArg {
    /// What a real Cloud Hypervisor answers (500 for state errors, error-chain bodies).
    Real,
    /// What the OpenAPI spec documents (404 not created, 405 wrong state, 409 duplicate).
    Spec,
}

/// The arguments of `guestwire vmm ch-api`.
#[derive(Debug, Args)]
pub struct ChApiArgs {
    /// The Unix socket to serve the API on (as cloud-hypervisor --api-socket).
    #[arg(long, value_name = "PATH")]
    pub api_socket: PathBuf,
    /// The release to answer as: v48.0 or v49.0 (any vMAJOR.MINOR; from v53.0 on, errors of a
    /// VM that is not created are 404 in real mode).
    #[arg(long, default_value = "v48.0")]
    pub version: String,
    /// Status codes: the real server's, or the OpenAPI spec's.
    #[arg(long, value_enum, default_value = "real")]
    pub codes: CodesArg,
    /// A fault (repeatable). ch_shutdown_wedge: vmm.shutdown on a paused VM never answers, and
    /// no later request does (cloud-hypervisor#816). Stream and frame faults (latency,
    /// drop_frame, malformed:…, …) apply to every connection of the VM's hybrid vsock.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// What the guest serves on its vsock ports once a VM with a `vsock` config boots:
    /// PORT=PROTOCOL (the mock agent) or PORT=cmd:CMD (your agent; see `vmm hvsock`). Repeatable.
    #[arg(
        long = "guest-port",
        value_name = "PORT=SERVICE",
        default_value = "1024=fcexec"
    )]
    pub guest_ports: Vec<String>,
    /// Seed of the vsock fault plans.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How the mock agents behind the vsock behave.
    #[command(flatten)]
    pub behaviour: Box<super::guest_opts::GuestBehaviourArgs>,
    /// The largest request body, in bytes; larger ones get 413 unread.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body: u64,
    /// One JSON object per request and per event.
    #[arg(long)]
    pub json: bool,
}

/// Prints requests and events.
struct Printer {
    json: bool,
}

impl Printer {
    fn line(&self, text: &str) {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

impl ChApiHooks for Printer {
    fn on_event(&self, event: &Event) -> crate::vmm::chapi::HookFuture<'_> {
        if self.json {
            self.line(&event.to_json().to_string());
        } else {
            let detail = match event {
                Event::VsockUp { cid, socket } | Event::VsockDown { cid, socket } => {
                    format!(" cid={cid} socket={}", socket.display())
                }
                _ => String::new(),
            };
            self.line(&format!("event {}{detail}", event.name()));
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn on_request(&self, record: &RequestRecord) {
        if self.json {
            self.line(&record.to_json().to_string());
        } else {
            self.line(&record.line());
        }
    }
}

/// Splits `--fault`s into the API's wedge and the vsock's stream faults.
fn split_faults(faults: &[String]) -> Result<(bool, Vec<FaultSpec>), CliError> {
    let mut wedge = false;
    let mut stream = Vec::new();
    for text in faults {
        let spec: FaultSpec = text
            .parse()
            .map_err(|e| CliError::Usage(format!("--fault {text}: {e}")))?;
        match spec.kind {
            FaultKind::ChShutdownWedge if spec == FaultSpec::new(FaultKind::ChShutdownWedge) => {
                wedge = true;
            }
            FaultKind::ChShutdownWedge => {
                return Err(CliError::Usage(format!(
                    "--fault {text}: ch_shutdown_wedge takes no trigger or direction: it strikes \
                     at the first vmm.shutdown on a paused VM"
                )));
            }
            ref other if other.is_setup_fault() => {
                return Err(CliError::Usage(format!(
                    "--fault {}: not a fault of the ch-api: it takes ch_shutdown_wedge and \
                     stream or frame faults for the VM's vsock",
                    other.name()
                )));
            }
            _ => stream.push(spec),
        }
    }
    Ok((wedge, stream))
}

/// Runs `guestwire vmm ch-api`.
pub fn run(args: ChApiArgs) -> Result<Outcome, CliError> {
    let version: ChVersion = args
        .version
        .parse()
        .map_err(|e: String| CliError::Usage(format!("--version: {e}")))?;
    let mut config = ServerConfig::new(&args.api_socket);
    config.api.version = version;
    config.api.codes = match args.codes {
        CodesArg::Real => CodeMode::Real,
        CodesArg::Spec => CodeMode::Spec,
    };
    let (wedge, stream_faults) = split_faults(&args.faults)?;
    config.api.shutdown_wedge = wedge;
    config.max_body = args.max_body;
    let mut ports = BTreeMap::new();
    for spec in &args.guest_ports {
        let (port, service) =
            parse_guest_port(spec).map_err(|e| CliError::Usage(format!("--guest-port: {e}")))?;
        ports.insert(port, service);
    }
    let plan = GuestPlan {
        ports,
        guest: Arc::new(args.behaviour.to_config()?),
        faults: stream_faults,
        seed: args.seed,
    };
    let printer: Arc<dyn ChApiHooks> = Arc::new(Printer { json: args.json });
    let hooks = Arc::new(VsockBridge::new(plan, printer));
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let mut handle = ChApiServer::start(config.clone(), hooks.clone())
            .await
            .map_err(|e| CliError::Usage(format!("cannot serve the API: {e}")))?;
        eprintln!(
            "guestwire: mock Cloud Hypervisor {version} API ({} codes{}) on {}",
            config.api.codes,
            if config.api.shutdown_wedge {
                ", ch_shutdown_wedge"
            } else {
                ""
            },
            args.api_socket.display()
        );
        let outcome = serve(&mut handle).await;
        hooks.stop().await;
        outcome
    })
}

async fn serve(handle: &mut ChApiHandle) -> Result<Outcome, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|source| CliError::Io {
        path: "SIGTERM handler".into(),
        source,
    })?;
    let exit = tokio::select! {
        exit = handle.wait() => exit,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("guestwire: interrupted, shutting down");
            handle.stop();
            handle.wait().await
        }
        _ = term.recv() => {
            eprintln!("guestwire: terminated, shutting down");
            handle.stop();
            handle.wait().await
        }
    };
    match exit {
        ServerExit::VmmShutdown => {
            eprintln!("guestwire: vmm.shutdown, exiting");
            Ok(Outcome::Ok)
        }
        ServerExit::Stopped => Ok(Outcome::Ok),
        ServerExit::AcceptFailed => {
            eprintln!("guestwire: accepting connections failed");
            Ok(Outcome::Failed)
        }
    }
}
