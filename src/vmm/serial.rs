//! The mock QEMU virtio-serial port (`guestwire vmm serial`): a host Unix socket served as QEMU's
//! `-chardev socket,server=on,wait=off` serves it, a guest side that is either the in-process
//! mock agent or the user's agent on a pty standing in for `/dev/virtio-ports/NAME`, and the
//! pure model [`crate::channel::serial::SerialPort`] between them, so that both sides see what
//! they would see under QEMU 7.2 (`VMLAB.md`): one host client at a time, later ones starved and
//! the fourth refused, guest writes waiting while no host is connected, guest reads at end of
//! file meanwhile, in-flight data discarded when a client leaves.
//!
//! - [`port`]: the model behind a lock; [`streams`]: the async streams over it ([`GuestPort`],
//!   [`HostPort`]);
//! - [`host`]: the socket server (why the kernel's listen queue holds the waiting clients) and
//!   the data path through the fault pumps;
//! - [`guest`]: the in-process agent and when it reopens the port; [`agent`]: `--guest-cmd`;
//! - [`event`]: what is reported, one line or one JSON object per event.
//!
//! # Faults
//! Stream and frame faults (`latency`, `drop_frame`, `malformed:*`, `agent_hang`, `agent_crash`,
//! `vm_pause`, …) act between each host client's socket and the model, through one
//! [`FaultPlan`] per connection (seeded with `seed + client number`).
//! The setup faults:
//! - `guest_before_host`: the guest starts, and writes, before any host client is let in; the
//!   port takes those writes (see [`SharedPort::arm_guest_before_host`]) and the guest's reads
//!   meanwhile see end of file. The first client is accepted once the guest's first run has
//!   ended (in-process) or its first write was taken (`--guest-cmd`), or after
//!   [`GUEST_HEAD_START`]; clients connecting earlier wait in the listen queue. With the naive
//!   loop the agent gives up and the host's requests time out until the agent is restarted
//!   (seed 003, failure 1); the robust agent reopens the port and answers.
//! - `stale_client`: the VMM connects a client of its own first and never reads from it, so it
//!   holds the port and real clients are starved, then refused (seed 003, failure 2).
//! - `stale_socket`: the VMM binds the socket and closes it at once without removing the file,
//!   as a crashed QEMU leaves it: connecting is refused (`ECONNREFUSED`). Nothing else runs;
//!   the file is removed when the VMM stops.

pub mod agent;
pub mod event;
pub mod guest;
pub mod host;
pub mod port;
pub mod streams;

#[cfg(test)]
mod tests;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use event::SerialVmmEvent;
pub use port::SharedPort;
pub use streams::{GuestPort, HostPort};

use crate::channel::serial::SerialSnapshot;
use crate::fault::{FaultKind, FaultPlan, FaultSpec};
use crate::guest::GuestConfig;
use crate::io::listen::SocketFile;
use crate::io::{ListenError, Listener, Pty, PtyError};
use crate::wire::Direction;
use crate::wire::protocol::Protocol;

/// The seed of the fault plans unless one is given.
pub const DEFAULT_SEED: u64 = 1;

/// Longest head start the guest gets under `guest_before_host` before host clients are let in.
pub const GUEST_HEAD_START: Duration = Duration::from_secs(5);

/// How long [`SerialVmm::stop`] waits for its tasks (the agent's stop grace included).
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// What stands on the guest side of the port.
#[derive(Debug, Clone)]
pub enum GuestSide {
    /// Nothing: the port is never opened (an agent that is not running).
    None,
    /// The in-process mock agent of a protocol.
    Mock {
        /// quantix, quantix-legacy, fcexec, qga or volant.
        protocol: Protocol,
        /// How it behaves.
        config: Arc<GuestConfig>,
    },
    /// The user's agent, run as `/bin/sh -c COMMAND` with `{device}` replaced by the pty link.
    Command {
        /// The command line.
        command: String,
        /// Where the device link goes (`DIR/PORT_NAME`); `None`: a fresh temporary directory.
        device_dir: Option<PathBuf>,
    },
}

/// How to run a mock virtio-serial port.
#[derive(Debug, Clone)]
pub struct SerialVmmConfig {
    /// The host Unix socket (a stale socket file there is replaced; a live one is an error).
    pub socket: PathBuf,
    /// The port's name: the device link's file name, e.g. `org.quantix.agent.0`.
    pub port_name: String,
    /// The guest side.
    pub guest: GuestSide,
    /// Faults, stream and setup ones alike.
    pub faults: Vec<FaultSpec>,
    /// The protocol on the port, for frame faults (`raw`: none).
    pub protocol: Protocol,
    /// Seed of the fault plans' random choices.
    pub seed: u64,
}

impl SerialVmmConfig {
    /// A port at `socket` named `port_name` with `guest` behind it, no faults.
    pub fn new(socket: impl Into<PathBuf>, port_name: impl Into<String>, guest: GuestSide) -> Self {
        let protocol = match &guest {
            GuestSide::Mock { protocol, .. } => protocol.clone(),
            _ => Protocol::Raw,
        };
        Self {
            socket: socket.into(),
            port_name: port_name.into(),
            guest,
            faults: Vec::new(),
            protocol,
            seed: DEFAULT_SEED,
        }
    }
}

/// Why a mock port could not start.
#[derive(Debug, thiserror::Error)]
pub enum SerialVmmError {
    /// The host socket could not be bound.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The agent's pty could not be set up.
    #[error(transparent)]
    Pty(#[from] PtyError),
    /// The port name cannot be a file name.
    #[error("port name {0:?} cannot name a device file: use letters, digits, '.', '_' or '-'")]
    BadPortName(String),
    /// A fault that makes no sense on a virtio-serial port.
    #[error("{0} is not a fault of a virtio-serial port")]
    UnsupportedFault(String),
    /// Frame faults without a protocol to cut frames with.
    #[error("{0} needs frames: give the port's protocol (--protocol, or --guest)")]
    NeedsProtocol(String),
    /// A file-system step failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A task of the VMM, before it is spawned.
type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A running mock virtio-serial port. Stop it with [`stop`](Self::stop); dropping it cancels its
/// tasks (the agent command is then killed by `kill_on_drop`, without the `SIGTERM` grace).
#[derive(Debug)]
pub struct SerialVmm {
    port: SharedPort,
    cancel: CancellationToken,
    first_done: CancellationToken,
    tasks: JoinSet<()>,
    restart: Arc<Notify>,
    events: Option<broadcast::Receiver<SerialVmmEvent>>,
    socket: PathBuf,
    device: Option<PathBuf>,
    stale_file: Option<SocketFile>,
    temp_dir: Option<PathBuf>,
    faults: crate::fault::LiveFaults,
    protocol: Protocol,
}

fn check_port_name(name: &str) -> Result<(), SerialVmmError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SerialVmmError::BadPortName(name.to_string()))
    }
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SerialVmmError {
    let path = path.to_path_buf();
    move |source| SerialVmmError::Io { what, path, source }
}

/// A fresh private directory for the device link.
fn make_temp_dir() -> Result<PathBuf, SerialVmmError> {
    let base = std::env::temp_dir();
    let mut last = None;
    for n in 0..100u32 {
        let dir = base.join(format!("guestwire-serial-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_error("creating", &dir)(e)),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no free name"));
    Err(io_error("creating a directory in", &base)(e))
}

/// Checks the faults and splits off the setup ones.
fn sort_faults(
    faults: &[FaultSpec],
    protocol: &Protocol,
) -> Result<(Vec<FaultSpec>, Vec<FaultKind>), SerialVmmError> {
    let mut stream = Vec::new();
    let mut setup = Vec::new();
    for f in faults {
        match f.kind {
            FaultKind::ChShutdownWedge => {
                return Err(SerialVmmError::UnsupportedFault(f.kind.name().into()));
            }
            ref k if k.is_setup_fault() => setup.push(k.clone()),
            _ => stream.push(f.clone()),
        }
    }
    if *protocol == Protocol::Raw {
        for f in &stream {
            let one = FaultPlan::new(vec![f.clone()], Protocol::Raw, 0);
            if one.needs_frames(Direction::ToGuest) || one.needs_frames(Direction::ToHost) {
                return Err(SerialVmmError::NeedsProtocol(f.to_string()));
            }
        }
    }
    Ok((stream, setup))
}

/// Leaves a socket file at `path` that nothing listens on.
async fn make_stale_socket(path: &Path) -> Result<SocketFile, SerialVmmError> {
    // Refuses a live socket or a non-socket, clears an old stale file; then lets it go.
    drop(Listener::bind_unix(path).await?);
    let listener =
        std::os::unix::net::UnixListener::bind(path).map_err(io_error("binding", path))?;
    drop(listener);
    SocketFile::claim(path).map_err(io_error("looking at", path))
}

impl SerialVmm {
    /// Binds the socket, starts the guest side and serves host clients. Must be called from
    /// within a Tokio runtime.
    pub async fn start(config: SerialVmmConfig) -> Result<Self, SerialVmmError> {
        check_port_name(&config.port_name)?;
        let (stream_faults, setup) = sort_faults(&config.faults, &config.protocol)?;
        let port = SharedPort::with_host_write_share(host::COPY_CHUNK);
        let mut vmm = Self {
            events: Some(port.subscribe()),
            port,
            cancel: CancellationToken::new(),
            first_done: CancellationToken::new(),
            tasks: JoinSet::new(),
            restart: Arc::new(Notify::new()),
            socket: config.socket.clone(),
            device: None,
            stale_file: None,
            temp_dir: None,
            faults: crate::fault::LiveFaults::new(stream_faults),
            protocol: config.protocol.clone(),
        };
        if setup.contains(&FaultKind::StaleSocket) {
            vmm.stale_file = Some(make_stale_socket(&config.socket).await?);
            vmm.port.emit(SerialVmmEvent::StaleSocket {
                socket: config.socket.clone(),
            });
            return Ok(vmm);
        }
        let mut listener =
            Listener::bind_unix_with_backlog(&config.socket, host::HOST_LISTEN_BACKLOG).await?;
        listener.set_send_buffer(host::KERNEL_SEND_BUFFER);
        let before_host = setup.contains(&FaultKind::GuestBeforeHost);
        if before_host {
            vmm.port.arm_guest_before_host();
        }
        let (guest, gate) = vmm.prepare_guest(&config, before_host)?;
        vmm.port.emit(SerialVmmEvent::Listening {
            socket: config.socket.clone(),
            device: vmm.device.clone(),
            port_name: config.port_name.clone(),
        });
        if let Some(guest) = guest {
            vmm.tasks.spawn(guest);
        }
        let gate = gate.map(tokio::spawn);
        let stale = if setup.contains(&FaultKind::StaleClient) {
            let s = tokio::net::UnixStream::connect(&config.socket)
                .await
                .map_err(io_error("connecting the stale client to", &config.socket))?;
            Some(s)
        } else {
            None
        };
        vmm.tasks.spawn(host::serve(host::HostSide {
            port: vmm.port.clone(),
            listener,
            faults: vmm.faults.clone(),
            protocol: config.protocol.clone(),
            seed: config.seed,
            stale,
            cancel: vmm.cancel.clone(),
            first_done: vmm.first_done.clone(),
            gate,
        }));
        Ok(vmm)
    }

    /// Sets up the guest side: returns its task, and the gate the host side waits for under
    /// `guest_before_host`.
    fn prepare_guest(
        &mut self,
        config: &SerialVmmConfig,
        before_host: bool,
    ) -> Result<(Option<Task>, Option<Task>), SerialVmmError> {
        let gate = |wait: CancellationToken| -> Option<Task> {
            Some(Box::pin(async move {
                let _ = tokio::time::timeout(GUEST_HEAD_START, wait.cancelled()).await;
            }))
        };
        match &config.guest {
            GuestSide::None => Ok((None, None)),
            GuestSide::Mock { protocol, config } => {
                let first_run_done = CancellationToken::new();
                let task: Task = Box::pin(guest::run(guest::MockGuest {
                    port: self.port.clone(),
                    protocol: protocol.clone(),
                    config: config.clone(),
                    restart: self.restart.clone(),
                    cancel: self.cancel.clone(),
                    first_run_done: first_run_done.clone(),
                }));
                let gate = if before_host {
                    gate(first_run_done)
                } else {
                    None
                };
                Ok((Some(task), gate))
            }
            GuestSide::Command {
                command,
                device_dir,
            } => {
                let dir = match device_dir {
                    Some(d) => d.clone(),
                    None => {
                        let d = make_temp_dir()?;
                        self.temp_dir = Some(d.clone());
                        d
                    }
                };
                let pty = Pty::open(&dir.join(&config.port_name))?;
                self.device = Some(pty.link().to_path_buf());
                let task: Task = Box::pin(agent::run(agent::AgentGuest {
                    port: self.port.clone(),
                    command: command.clone(),
                    pty,
                    restart: self.restart.clone(),
                    cancel: self.cancel.clone(),
                }));
                if !before_host {
                    return Ok((Some(task), None));
                }
                let port = self.port.clone();
                let first_write: Task = Box::pin(async move {
                    let _ = tokio::time::timeout(GUEST_HEAD_START, port.wait_early_write()).await;
                });
                Ok((Some(task), Some(first_write)))
            }
        }
    }

    /// The receiver of every event since the start (once; `None` afterwards).
    pub fn take_events(&mut self) -> Option<broadcast::Receiver<SerialVmmEvent>> {
        self.events.take()
    }

    /// A receiver of the events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SerialVmmEvent> {
        self.port.subscribe()
    }

    /// The host socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The device link given to the agent command, if one runs.
    pub fn device(&self) -> Option<&Path> {
        self.device.as_deref()
    }

    /// The port model shared by both sides (its snapshot: queue depths, clients, counters).
    pub fn port(&self) -> &SharedPort {
        &self.port
    }

    /// Restarts the guest agent (in-process or command): stops it if it runs, starts it again.
    pub fn restart_guest(&self) {
        self.restart.notify_one();
    }

    /// Replaces the stream and frame faults: clients that connect from now on get the new plan
    /// (setup faults such as `guest_before_host` cannot be changed while the port runs).
    pub fn set_stream_faults(&self, faults: Vec<FaultSpec>) -> Result<(), SerialVmmError> {
        let (stream, setup) = sort_faults(&faults, &self.protocol)?;
        if let Some(k) = setup.first() {
            return Err(SerialVmmError::UnsupportedFault(format!(
                "{} (a setup fault: give it at start)",
                k.name()
            )));
        }
        self.faults.set(stream);
        Ok(())
    }

    /// Resolves once the first host client (not the `stale_client`) has disconnected.
    pub async fn first_client_done(&self) {
        self.first_done.cancelled().await;
    }

    /// Stops everything: the host side (the socket file is removed), the guest (the agent
    /// command is stopped and reaped), and returns the port's final snapshot.
    pub async fn stop(mut self) -> SerialSnapshot {
        self.cancel.cancel();
        let tasks = &mut self.tasks;
        let joined = tokio::time::timeout(STOP_DEADLINE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if joined.is_err() {
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        let snapshot = self.port.snapshot();
        self.port.emit(SerialVmmEvent::Stopped {
            delivered_to_host: snapshot.delivered_to_host,
            delivered_to_guest: snapshot.delivered_to_guest,
            discarded: snapshot.discarded_total,
        });
        self.stale_file = None;
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir(dir);
        }
        snapshot
    }
}

impl Drop for SerialVmm {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.tasks.abort_all();
        if let Some(dir) = self.temp_dir.take() {
            // The link inside goes with the pty, possibly later: best effort.
            let _ = std::fs::remove_dir(dir);
        }
    }
}
