//! A tap driving a mock VMM (`--mock serial|hvsock --guest PROTOCOL`): guestwire's in-process
//! mock VMM (the library behind `guestwire vmm serial` / `guestwire vmm hvsock`) runs with the
//! mock agent as its guest, and a [`TapSource`] listens in front of it. Its faults can be
//! replaced while it runs ([`Source::set_faults`]): connections made from then on get the new
//! list (those already open keep theirs).
//!
//! The VMM's socket lives in a private directory that is removed on drop; so is the tap's,
//! unless `--listen` names one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use guestwire::fault::FaultSpec;
use guestwire::guest::GuestConfig;
use guestwire::io::Endpoint;
use guestwire::tap::TapConfig;
use guestwire::vmm::hvsock::{GuestService, HvsockConfig, HvsockVmm};
use guestwire::vmm::serial::{GuestSide, SerialVmm, SerialVmmConfig};
use guestwire::wire::hybrid::Flavour;
use guestwire::wire::protocol::Protocol;

use super::tap::TapSource;
use super::{Source, SourceEvent};

/// The guest port the hvsock mock serves the agent on.
pub const HVSOCK_PORT: u32 = 1024;

/// How long stopping the VMM may take.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Which mock VMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MockKind {
    /// A virtio-serial port (QEMU's chardev socket).
    Serial,
    /// Hybrid vsock (Firecracker's `uds_path`), the agent on port [`HVSOCK_PORT`].
    Hvsock,
}

impl std::str::FromStr for MockKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "serial" => Ok(Self::Serial),
            "hvsock" => Ok(Self::Hvsock),
            _ => Err(format!("--mock must be serial or hvsock, not {s:?}")),
        }
    }
}

impl MockKind {
    fn name(self) -> &'static str {
        match self {
            Self::Serial => "serial",
            Self::Hvsock => "hvsock",
        }
    }
}

/// How to start a mock.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Which VMM.
    pub kind: MockKind,
    /// The mock agent's protocol.
    pub protocol: Protocol,
    /// Where host clients connect (default: `unix:` a socket in a private directory).
    pub listen: Option<Endpoint>,
    /// Faults on from the start.
    pub faults: Vec<FaultSpec>,
    /// Write every tapped byte to this capture.
    pub capture: Option<PathBuf>,
}

enum Vmm {
    Serial(SerialVmm),
    Hvsock(HvsockVmm),
}

/// A private directory, removed on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for n in 0..100u32 {
            let dir = base.join(format!("guestwire-tui-{}-{n}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("{}: {e}", dir.display())),
            }
        }
        Err(format!("no free directory name in {}", base.display()))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tap in front of a running mock VMM.
pub struct MockSource {
    tap: Option<TapSource>,
    vmm: Option<Vmm>,
    runtime: tokio::runtime::Runtime,
    listen: Endpoint,
    target: String,
    name: String,
    _dir: PrivateDir,
}

impl MockSource {
    /// Starts the VMM with the mock agent, then the tap in front of it. It runs them on a
    /// runtime of its own: call it (and drop the source) outside any Tokio runtime.
    pub fn start(config: MockConfig) -> Result<Self, String> {
        let dir = PrivateDir::create()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let socket = dir.0.join("vmm.sock");
        let guest = Arc::new(GuestConfig::default());
        let (vmm, upstream) = match config.kind {
            MockKind::Serial => {
                let side = GuestSide::Mock {
                    protocol: config.protocol.clone(),
                    config: guest,
                };
                let mut cfg = SerialVmmConfig::new(&socket, "org.guestwire.port.0", side);
                cfg.faults = config.faults.clone();
                let vmm = runtime
                    .block_on(SerialVmm::start(cfg))
                    .map_err(|e| format!("mock serial VMM: {e}"))?;
                (Vmm::Serial(vmm), Endpoint::Unix(socket.clone()))
            }
            MockKind::Hvsock => {
                let mut cfg = HvsockConfig::new(&socket)
                    .with_port(HVSOCK_PORT, GuestService::Mock(config.protocol.clone()));
                cfg.guest = guest;
                cfg.faults = config.faults.clone();
                let vmm = runtime
                    .block_on(HvsockVmm::start(cfg))
                    .map_err(|e| format!("mock hvsock VMM: {e}"))?;
                let up = Endpoint::Hvsock {
                    path: socket.clone(),
                    port: HVSOCK_PORT,
                };
                (Vmm::Hvsock(vmm), up)
            }
        };
        let listen = config
            .listen
            .clone()
            .unwrap_or_else(|| Endpoint::Unix(dir.0.join("tap.sock")));
        let tap_config = TapConfig {
            listen: listen.clone(),
            upstream,
            flavour: Flavour::Firecracker,
            faults: Vec::new(),
            protocol: Some(config.protocol.clone()),
            seed: 0,
            connect_deadline: Duration::from_secs(5),
            max_connections: None,
        };
        let target = format!("mock {} VMM ({})", config.kind.name(), config.protocol);
        let mut me = Self {
            tap: None,
            vmm: Some(vmm),
            runtime,
            name: format!("{target} on {listen}"),
            target,
            listen,
            _dir: dir,
        };
        me.tap = Some(TapSource::start(tap_config, config.capture.as_deref())?);
        Ok(me)
    }

    /// What the faults apply to, e.g. `mock serial VMM (quantix)`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Where host clients connect.
    pub fn listen(&self) -> &Endpoint {
        &self.listen
    }

    /// The directory of the VMM's socket (removed on drop).
    pub fn dir(&self) -> &Path {
        &self._dir.0
    }
}

impl Drop for MockSource {
    fn drop(&mut self) {
        drop(self.tap.take());
        let Some(vmm) = self.vmm.take() else { return };
        self.runtime.block_on(async {
            let stop = async {
                match vmm {
                    Vmm::Serial(v) => {
                        v.stop().await;
                    }
                    Vmm::Hvsock(v) => v.stop().await,
                }
            };
            let _ = tokio::time::timeout(STOP_DEADLINE, stop).await;
        });
    }
}

impl Source for MockSource {
    fn poll(&mut self, clock_ns: u64, max: usize, out: &mut Vec<SourceEvent>) -> bool {
        match &mut self.tap {
            Some(t) => t.poll(clock_ns, max, out),
            None => false,
        }
    }

    fn label(&self) -> String {
        self.name.clone()
    }

    fn live(&self) -> bool {
        true
    }

    fn dropped(&self) -> u64 {
        self.tap.as_ref().map_or(0, TapSource::dropped)
    }

    fn set_faults(&mut self, specs: &[String]) -> Result<(), String> {
        let faults = specs
            .iter()
            .map(|s| s.parse::<FaultSpec>().map_err(|e| format!("{s}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        match &self.vmm {
            Some(Vmm::Serial(v)) => v.set_stream_faults(faults).map_err(|e| e.to_string()),
            Some(Vmm::Hvsock(v)) => {
                v.set_stream_faults(faults);
                Ok(())
            }
            None => Err("the mock VMM has stopped".into()),
        }
    }
}
