//! What a hybrid-vsock mock VMM is made of ([`HvsockConfig`]): its socket, the guest's CID, the
//! flavour of muxer, what serves each guest port ([`GuestService`]), the mock guest's behaviour
//! and the faults; and the typed errors of starting and driving one ([`HvsockError`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::channel::vsock::MuxError;
use crate::fault::{FaultKind, FaultSpec};
use crate::guest::{GuestConfig, has_mock_agent};
use crate::io::ListenError;
use crate::wire::hybrid::Flavour;
use crate::wire::protocol::Protocol;

/// The guest CID a Firecracker VM gets when none is configured (the first CID free for guests).
pub const DEFAULT_CID: u32 = 3;

/// How long a user's agent spawned with `{socket}` has to start listening on its socket.
pub const AGENT_START_DEADLINE: Duration = Duration::from_secs(10);

/// What answers connections to one guest port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestService {
    /// guestwire's in-process mock agent of this protocol, one per connection.
    Mock(Protocol),
    /// The user's agent, a shell command line (`/bin/sh -c`). With `{socket}` in it, it is
    /// started once with `{socket}` replaced by a Unix socket path it must listen on, and each
    /// vsock connection is a connection to that socket; without, it runs once per connection,
    /// inetd-style, with its standard input and output as the vsock stream. `{port}` is replaced
    /// by the guest port.
    Command(String),
}

impl GuestService {
    /// The protocol the service speaks, when guestwire knows it (the mock agents).
    pub fn protocol(&self) -> Option<&Protocol> {
        match self {
            Self::Mock(p) => Some(p),
            Self::Command(_) => None,
        }
    }

    /// Whether this is a user's agent started once and listening on `{socket}`.
    pub fn is_socket_agent(&self) -> bool {
        matches!(self, Self::Command(c) if c.contains("{socket}"))
    }
}

impl fmt::Display for GuestService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mock(p) => write!(f, "{p}"),
            Self::Command(c) => write!(f, "cmd:{c}"),
        }
    }
}

/// Parses `PORT=PROTOCOL` or `PORT=cmd:CMD`, as `--guest-port` takes them.
pub fn parse_guest_port(spec: &str) -> Result<(u32, GuestService), HvsockError> {
    let bad = |reason: String| HvsockError::BadPortSpec {
        spec: spec.to_string(),
        reason,
    };
    let (port, service) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected PORT=PROTOCOL or PORT=cmd:CMD".into()))?;
    let port: u32 = port
        .trim()
        .parse()
        .map_err(|_| bad(format!("{port:?} is not a port number")))?;
    if let Some(cmd) = service.strip_prefix("cmd:") {
        if cmd.trim().is_empty() {
            return Err(bad("cmd: needs a command".into()));
        }
        return Ok((port, GuestService::Command(cmd.to_string())));
    }
    let protocol: Protocol = service.parse().map_err(|e| bad(format!("{e}")))?;
    if !has_mock_agent(&protocol) {
        return Err(bad(format!(
            "there is no mock guest for {protocol}: quantix, quantix-legacy, fcexec, qga or volant"
        )));
    }
    Ok((port, GuestService::Mock(protocol)))
}

/// A hybrid-vsock mock VMM's configuration.
#[derive(Debug, Clone)]
pub struct HvsockConfig {
    /// The host Unix socket (Firecracker's `uds_path`); guest-initiated connections dial
    /// `<socket>_<port>`.
    pub socket: PathBuf,
    /// The guest's CID (in events and snapshots).
    pub cid: u32,
    /// Whose muxer to behave as.
    pub flavour: Flavour,
    /// What serves each guest port; a `CONNECT` to any other port is closed without a word.
    pub ports: BTreeMap<u32, GuestService>,
    /// How the in-process mock agents behave.
    pub guest: Arc<GuestConfig>,
    /// Stream and frame faults, applied to every host connection (each gets its own plan).
    pub faults: Vec<FaultSpec>,
    /// The protocol faults cut frames by; `None`: the guest ports' protocol when they agree.
    pub fault_protocol: Option<Protocol>,
    /// Seed of the fault plans' PRNG (connection `n` uses `seed + n`).
    pub seed: u64,
}

impl HvsockConfig {
    /// A Firecracker-flavoured VMM on `socket` for CID [`DEFAULT_CID`], with no guest port, the
    /// mock guest's default behaviour and no faults.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            cid: DEFAULT_CID,
            flavour: Flavour::Firecracker,
            ports: BTreeMap::new(),
            guest: Arc::new(GuestConfig::default()),
            faults: Vec::new(),
            fault_protocol: None,
            seed: 1,
        }
    }

    /// Adds (or replaces) what serves `port`.
    pub fn with_port(mut self, port: u32, service: GuestService) -> Self {
        self.ports.insert(port, service);
        self
    }

    /// The protocol the fault plans frame by: [`Self::fault_protocol`], else the one protocol the
    /// mock guest ports speak, else `raw`. An error when faults need frames and the ports speak
    /// several protocols or none that guestwire knows.
    pub fn resolved_fault_protocol(&self) -> Result<Protocol, HvsockError> {
        if let Some(p) = &self.fault_protocol {
            return Ok(p.clone());
        }
        let mut known: Vec<&Protocol> = Vec::new();
        for p in self.ports.values().filter_map(GuestService::protocol) {
            if !known.contains(&p) {
                known.push(p);
            }
        }
        let unknown = self.ports.values().any(|s| s.protocol().is_none());
        let needs_frames = self.faults.iter().any(|f| {
            f.kind.is_frame_fault()
                || f.trigger.on_type.is_some()
                || f.trigger.after_frames.is_some()
        });
        match (known.as_slice(), unknown) {
            ([one], false) => Ok((*one).clone()),
            _ if !needs_frames => Ok(Protocol::Raw),
            _ => Err(HvsockError::FaultProtocol(
                "frame faults need the protocol to cut frames by: give it with --fault-protocol \
                 (the guest ports speak several protocols, or run commands)"
                    .into(),
            )),
        }
    }

    /// Checks the faults: setup faults (`guest_before_host`, `stale_client`, `stale_socket`,
    /// `ch_shutdown_wedge`) belong to other channels.
    pub fn check_faults(&self) -> Result<(), HvsockError> {
        for f in &self.faults {
            if f.kind.is_setup_fault() {
                return Err(HvsockError::UnsupportedFault(f.to_string()));
            }
            if matches!(f.kind, FaultKind::VmPause { duration } if duration.is_zero()) {
                return Err(HvsockError::UnsupportedFault(format!(
                    "{f} (vm_pause needs duration=, e.g. vm_pause:duration=500ms)"
                )));
            }
        }
        Ok(())
    }
}

/// Why the hybrid-vsock mock VMM could not start, or an operation on it failed.
#[derive(Debug, thiserror::Error)]
pub enum HvsockError {
    /// The host socket could not be bound.
    #[error("cannot listen on {path}: {source}")]
    Listen {
        /// The socket path.
        path: String,
        /// Why.
        #[source]
        source: ListenError,
    },
    /// A `--guest-port` that does not parse.
    #[error("bad guest port {spec:?}: {reason}")]
    BadPortSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// The user's agent for a port did not start.
    #[error("the agent for guest port {port} did not start: {reason}")]
    Agent {
        /// The guest port.
        port: u32,
        /// What happened.
        reason: String,
    },
    /// The faults need a protocol that cannot be worked out.
    #[error("{0}")]
    FaultProtocol(String),
    /// A fault that does not apply to a hybrid-vsock channel.
    #[error("fault {0} does not apply to a hybrid-vsock VMM")]
    UnsupportedFault(String),
    /// A guest-initiated connection was refused: nothing listens on `<socket>_<port>`, or it did
    /// not answer in time.
    #[error("guest connection to host port {host_port} ({path}) refused: {reason}")]
    GuestConnectRefused {
        /// The host port the guest dialled.
        host_port: u32,
        /// The socket path dialled.
        path: String,
        /// Why.
        reason: String,
    },
    /// The muxer refused the operation.
    #[error(transparent)]
    Mux(#[from] MuxError),
    /// The VMM has stopped.
    #[error("the hybrid-vsock VMM has stopped")]
    Stopped,
    /// Another OS error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl HvsockError {
    /// A stable snake_case name for the error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Listen { source, .. } => source.kind(),
            Self::BadPortSpec { .. } => "bad_port_spec",
            Self::Agent { .. } => "agent_failed",
            Self::FaultProtocol(_) => "fault_protocol",
            Self::UnsupportedFault(_) => "unsupported_fault",
            Self::GuestConnectRefused { .. } => "guest_connect_refused",
            Self::Mux(_) => "mux",
            Self::Stopped => "stopped",
            Self::Io { .. } => "io",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_port_specs() {
        assert_eq!(
            parse_guest_port("1024=fcexec").expect("mock"),
            (1024, GuestService::Mock(Protocol::Fcexec))
        );
        let (port, s) = parse_guest_port("52=cmd:agent --listen {socket}").expect("cmd");
        assert_eq!(port, 52);
        assert!(s.is_socket_agent());
        assert_eq!(s.to_string(), "cmd:agent --listen {socket}");
        assert!(!GuestService::Command("cat".into()).is_socket_agent());
        for bad in ["1024", "x=fcexec", "1=raw", "1=cmd:", "1=nope"] {
            let e = parse_guest_port(bad).expect_err(bad);
            assert_eq!(e.kind(), "bad_port_spec", "{bad}: {e}");
        }
    }

    #[test]
    fn fault_protocol_is_the_ports_one_or_must_be_given() {
        let mut c = HvsockConfig::new("/x")
            .with_port(1, GuestService::Mock(Protocol::Quantix))
            .with_port(2, GuestService::Mock(Protocol::Quantix));
        assert_eq!(c.resolved_fault_protocol().expect("one"), Protocol::Quantix);
        c = c.with_port(3, GuestService::Command("cat".into()));
        assert_eq!(c.resolved_fault_protocol().expect("raw"), Protocol::Raw);
        c.faults.push("drop_frame".parse().expect("spec"));
        assert_eq!(
            c.resolved_fault_protocol().expect_err("ambiguous").kind(),
            "fault_protocol"
        );
        c.fault_protocol = Some(Protocol::Fcexec);
        assert_eq!(
            c.resolved_fault_protocol().expect("given"),
            Protocol::Fcexec
        );
    }

    #[test]
    fn setup_faults_are_refused() {
        let mut c = HvsockConfig::new("/x");
        c.faults.push("stale_client".parse().expect("spec"));
        assert_eq!(
            c.check_faults().expect_err("setup").kind(),
            "unsupported_fault"
        );
        c.faults = vec!["vm_pause".parse().expect("spec")];
        assert_eq!(
            c.check_faults().expect_err("no duration").kind(),
            "unsupported_fault"
        );
        c.faults = vec!["vm_pause:duration=1s".parse().expect("spec")];
        c.check_faults().expect("ok");
    }
}
