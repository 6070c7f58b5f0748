//! A scenario's world: the channel (a mock serial port, a hybrid-vsock VMM, or a Cloud
//! Hypervisor API server whose VM gets a hybrid-vsock socket), the guest behind it (the mock
//! agent or the user's command), all in the scenario's private directory; and how the host
//! reaches it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::{ChannelKind, Scenario};
use crate::fault::{FaultKind, FaultSpec};
use crate::guest::GuestConfig;
use crate::guest::exec::ExecMode;
use crate::io::Endpoint;
use crate::vmm::chapi::{ChApiHandle, ChApiHooks, ChApiServer, ChVersion, CodeMode, ServerConfig};
use crate::vmm::chapi_vsock::{GuestPlan, VsockBridge};
use crate::vmm::hvsock::{GuestService, HvsockConfig, HvsockVmm};
use crate::vmm::serial::{GuestSide, SerialVmm, SerialVmmConfig};
use crate::wire::hybrid::Flavour;
use crate::wire::protocol::Protocol;

/// The virtio-serial port name a protocol's agent uses.
pub fn default_port_name(protocol: &Protocol) -> &'static str {
    match protocol {
        Protocol::Qga => "org.qemu.guest_agent.0",
        _ => "org.quantix.agent.0",
    }
}

/// The vsock port a protocol's agent listens on.
pub fn default_vsock_port(protocol: &Protocol) -> u32 {
    match protocol {
        Protocol::Volant => 8080,
        _ => 1024,
    }
}

/// Overrides from the command line for conformance runs.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--guest-cmd`: the user's agent replaces the mock guest.
    pub guest_cmd: Option<String>,
    /// `--host-cmd`: the user's host client replaces the built-in one.
    pub host_cmd: Option<String>,
}

/// Why a world could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the {what}: {reason}")]
pub struct WorldError {
    /// What was being set up.
    pub what: &'static str,
    /// Why it failed.
    pub reason: String,
}

fn err(what: &'static str) -> impl Fn(String) -> WorldError {
    move |reason| WorldError { what, reason }
}

/// The running channel.
pub enum Channel {
    /// A mock virtio-serial port.
    Serial(SerialVmm),
    /// A mock hybrid-vsock VMM.
    Hvsock(HvsockVmm),
    /// A mock Cloud Hypervisor API, and the bridge running its VM's vsock.
    ChApi {
        /// The server.
        handle: ChApiHandle,
        /// The VM's vsock, once booted.
        bridge: Arc<VsockBridge>,
    },
}

/// A scenario's running world.
pub struct World {
    /// The scenario's private directory.
    pub dir: PathBuf,
    /// The channel.
    pub channel: Channel,
    /// Where host calls and raw connections go.
    pub host_endpoint: Endpoint,
    /// The socket raw connections dial (for hvsock: with no handshake).
    pub host_socket: PathBuf,
    /// The API socket (ch-api).
    pub api_socket: Option<PathBuf>,
    /// The guest port (hvsock / ch-api), or the capture's port number for serial.
    pub guest_port: u32,
    /// The guest's CID.
    pub cid: u32,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("dir", &self.dir)
            .field("host_endpoint", &self.host_endpoint.to_string())
            .finish_non_exhaustive()
    }
}

/// The mock guest's behaviour for a scenario.
pub fn guest_config(sc: &Scenario, dir: &Path) -> Result<GuestConfig, WorldError> {
    let mut c = GuestConfig::default();
    let root = dir.join("guest-root");
    std::fs::create_dir_all(&root).map_err(|e| err("guest root")(e.to_string()))?;
    c.root = Some(root);
    c.exec = match sc.guest.exec.as_deref() {
        Some("real") => ExecMode::Real,
        _ => ExecMode::Echo,
    };
    if let Some(m) = &sc.guest.loop_mode {
        c.loop_mode = m.parse().map_err(err("guest loop"))?;
    }
    c.telemetry_interval = sc.guest.telemetry.map(|d| d.0);
    if let Some(d) = sc.guest.reply_delay {
        c.reply_delay = d.0;
    }
    Ok(c)
}

/// Replaces `{dir}` (the scenario's private directory) and `{vsock}` (the VM's vsock socket
/// path under ch-api) in `text`.
pub fn expand(text: &str, dir: &Path) -> String {
    text.replace("{dir}", &dir.display().to_string())
        .replace("{vsock}", &dir.join("vsock.sock").display().to_string())
}

impl World {
    /// Starts the scenario's channel and guest in `dir` (which must exist).
    pub async fn start(sc: &Scenario, dir: &Path, over: &Overrides) -> Result<Self, WorldError> {
        let faults: Vec<FaultSpec> = sc.channel.faults.iter().map(|f| f.0.clone()).collect();
        let seed = sc.channel.seed.unwrap_or(1);
        let guest_cmd = over
            .guest_cmd
            .clone()
            .or_else(|| sc.guest.command.clone())
            .map(|c| expand(&c, dir));
        let running = sc.guest.running.unwrap_or(true);
        let config = Arc::new(guest_config(sc, dir)?);
        let guest_protocol = sc
            .guest
            .protocol
            .clone()
            .unwrap_or_else(|| sc.protocol.clone());
        let port = sc
            .channel
            .port
            .unwrap_or_else(|| default_vsock_port(&sc.protocol));
        match sc.channel.kind {
            ChannelKind::Serial => {
                let socket = dir.join("vm.sock");
                let name = sc
                    .channel
                    .port_name
                    .clone()
                    .unwrap_or_else(|| default_port_name(&sc.protocol).to_string());
                let guest = match (running, guest_cmd) {
                    (false, _) => GuestSide::None,
                    (true, Some(command)) => GuestSide::Command {
                        command,
                        device_dir: Some(dir.join("dev")),
                    },
                    (true, None) => GuestSide::Mock {
                        protocol: guest_protocol.clone(),
                        config,
                    },
                };
                if matches!(guest, GuestSide::Command { .. }) {
                    std::fs::create_dir_all(dir.join("dev"))
                        .map_err(|e| err("device directory")(e.to_string()))?;
                }
                let mut cfg = SerialVmmConfig::new(&socket, name, guest);
                cfg.faults = faults;
                cfg.protocol = sc.protocol.clone();
                cfg.seed = seed;
                let vmm = SerialVmm::start(cfg)
                    .await
                    .map_err(|e| err("serial port")(e.to_string()))?;
                Ok(Self {
                    dir: dir.to_path_buf(),
                    channel: Channel::Serial(vmm),
                    host_endpoint: Endpoint::Unix(socket.clone()),
                    host_socket: socket,
                    api_socket: None,
                    guest_port: crate::capture::vsockmon::DEFAULT_SERIAL_PORT,
                    cid: crate::vmm::hvsock::DEFAULT_CID,
                })
            }
            ChannelKind::Hvsock => {
                let socket = dir.join("v.sock");
                let mut cfg = HvsockConfig::new(&socket);
                if running {
                    let service = match guest_cmd {
                        Some(c) => GuestService::Command(c),
                        None => GuestService::Mock(guest_protocol.clone()),
                    };
                    cfg = cfg.with_port(port, service);
                }
                cfg.flavour = sc.channel.flavour.unwrap_or(Flavour::Firecracker);
                cfg.guest = config;
                cfg.faults = faults;
                cfg.fault_protocol = Some(sc.protocol.clone());
                cfg.seed = seed;
                let cid = cfg.cid;
                let vmm = HvsockVmm::start(cfg)
                    .await
                    .map_err(|e| err("hybrid-vsock VMM")(e.to_string()))?;
                if running && sc.channel.listening == Some(false) {
                    vmm.set_listening(port, false);
                }
                Ok(Self {
                    dir: dir.to_path_buf(),
                    channel: Channel::Hvsock(vmm),
                    host_endpoint: Endpoint::Hvsock {
                        path: socket.clone(),
                        port,
                    },
                    host_socket: socket,
                    api_socket: None,
                    guest_port: port,
                    cid,
                })
            }
            ChannelKind::ChApi => {
                let api = dir.join("api.sock");
                let mut cfg = ServerConfig::new(&api);
                let version = sc.channel.version.as_deref().unwrap_or("v49.0");
                cfg.api.version = version
                    .parse::<ChVersion>()
                    .map_err(err("ch-api version"))?;
                cfg.api.codes = match sc.channel.codes.as_deref() {
                    Some("spec") => CodeMode::Spec,
                    _ => CodeMode::Real,
                };
                let mut stream = Vec::new();
                for f in faults {
                    if f.kind == FaultKind::ChShutdownWedge {
                        cfg.api.shutdown_wedge = true;
                    } else if f.kind.is_setup_fault() {
                        return Err(err("ch-api")(format!(
                            "{} is not a fault of the ch-api channel",
                            f.kind.name()
                        )));
                    } else {
                        stream.push(f);
                    }
                }
                let mut ports = BTreeMap::new();
                if running {
                    let service = match guest_cmd {
                        Some(c) => GuestService::Command(c),
                        None => GuestService::Mock(guest_protocol.clone()),
                    };
                    ports.insert(port, service);
                }
                let plan = GuestPlan {
                    ports,
                    guest: config,
                    faults: stream,
                    seed,
                };
                let none: Arc<dyn ChApiHooks> = Arc::new(crate::vmm::chapi::NoHooks);
                let bridge = Arc::new(VsockBridge::new(plan, none));
                let handle = ChApiServer::start(cfg, bridge.clone())
                    .await
                    .map_err(|e| err("ch-api server")(e.to_string()))?;
                let vsock = dir.join("vsock.sock");
                Ok(Self {
                    dir: dir.to_path_buf(),
                    channel: Channel::ChApi { handle, bridge },
                    host_endpoint: Endpoint::Hvsock {
                        path: vsock.clone(),
                        port,
                    },
                    host_socket: vsock,
                    api_socket: Some(api),
                    guest_port: port,
                    cid: crate::vmm::hvsock::DEFAULT_CID,
                })
            }
        }
    }

    /// Replaces the channel's stream faults for connections made from now on.
    pub fn set_faults(&self, faults: Vec<FaultSpec>) -> Result<(), String> {
        match &self.channel {
            Channel::Serial(vmm) => vmm.set_stream_faults(faults).map_err(|e| e.to_string()),
            Channel::Hvsock(vmm) => {
                vmm.set_stream_faults(faults);
                Ok(())
            }
            Channel::ChApi { .. } => {
                Err("faults on a ch-api channel are given at the start (channel.faults)".into())
            }
        }
    }

    /// Opens the guest's end of the serial port (the scenario plays the agent).
    pub fn open_guest(&self) -> Result<crate::io::BoxStream, String> {
        match &self.channel {
            Channel::Serial(vmm) => vmm
                .port()
                .open_guest()
                .map(|p| Box::new(p) as crate::io::BoxStream)
                .map_err(|e| format!("the guest cannot open the port: {e}")),
            _ => Err("only a serial port has a guest end to open".into()),
        }
    }

    /// Carries out a `vmm` step.
    pub fn vmm_action(&self, action: &str) -> Result<(), String> {
        match (&self.channel, action) {
            (Channel::Hvsock(vmm), "pause") => vmm.pause(),
            (Channel::Hvsock(vmm), "resume") => vmm.resume(),
            (Channel::Hvsock(vmm), "start_guest") => {
                if !vmm.set_listening(self.guest_port, true) {
                    return Err("no guest agent on the port to start".into());
                }
            }
            (Channel::Hvsock(vmm), "stop_guest") => {
                vmm.set_listening(self.guest_port, false);
            }
            (Channel::Serial(vmm), "restart_guest") => vmm.restart_guest(),
            (_, other) => {
                return Err(format!("vmm {other:?} is not available on this channel"));
            }
        }
        Ok(())
    }

    /// Stops everything and removes the sockets.
    pub async fn stop(self) {
        match self.channel {
            Channel::Serial(vmm) => {
                vmm.stop().await;
            }
            Channel::Hvsock(vmm) => vmm.stop().await,
            Channel::ChApi { handle, bridge } => {
                handle.stop();
                bridge.stop().await;
            }
        }
    }
}
