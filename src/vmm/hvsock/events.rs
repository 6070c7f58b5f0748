//! What the hybrid-vsock mock VMM reports: one [`HvsockEvent`] per thing that happens (printed as
//! one line, or one JSON object with `--json`), and [`HvsockSnapshot`], its whole state for
//! diagnosis and for a VMM snapshot.

use std::fmt;

use serde::Serialize;

use crate::channel::vsock::{ConnState, MuxSnapshot, Origin, RefuseReason};

/// `host` or `guest`: which side opened a connection.
pub fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Host => "host",
        Origin::Guest => "guest",
    }
}

/// A stable snake_case name for a refusal reason.
pub fn refusal_kind(r: &RefuseReason) -> &'static str {
    match r {
        RefuseReason::Malformed(_) => "malformed",
        RefuseReason::NoListener { .. } => "no_listener",
        RefuseReason::RequestTimeout => "request_timeout",
        RefuseReason::TooManyConnections => "too_many_connections",
        RefuseReason::PortsExhausted => "ports_exhausted",
        RefuseReason::HostRefused { .. } => "host_refused",
    }
}

/// One thing that happened in the mock VMM. `conn` is the muxer's connection number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HvsockEvent {
    /// The VMM listens on its socket (the first event).
    Listening {
        /// The socket path.
        socket: String,
        /// The guest's CID.
        cid: u32,
        /// The muxer's flavour.
        flavour: String,
        /// Each guest port and what serves it, as `PORT=SERVICE`.
        ports: Vec<String>,
    },
    /// A host process connected to the socket; its `CONNECT` is read next.
    HostConnected {
        /// The connection.
        conn: u64,
    },
    /// A connection is established: for a host-initiated one, after its `CONNECT` was answered
    /// with `ok`; for a guest-initiated one, after `<socket>_<host_port>` accepted it.
    Established {
        /// The connection.
        conn: u64,
        /// `host` or `guest`.
        origin: &'static str,
        /// The guest port.
        guest_port: u32,
        /// The host-side port (the one named in `OK` under Firecracker and Cloud Hypervisor).
        host_port: u32,
        /// The `OK` line sent, without its newline (host-initiated only).
        ok: Option<String>,
        /// What serves the guest port (`fcexec`, `cmd:…`; the caller's stream for a
        /// guest-initiated connection).
        service: String,
    },
    /// A connection attempt was refused: a host connection closed without a reply (no listener,
    /// malformed or split `CONNECT`, the 2000 ms request timeout, too many connections), or a
    /// guest-initiated one reset.
    Refused {
        /// The connection.
        conn: u64,
        /// `host` or `guest`.
        origin: &'static str,
        /// `no_listener`, `malformed`, `request_timeout`, `too_many_connections`,
        /// `ports_exhausted` or `host_refused`.
        kind: &'static str,
        /// The muxer's reason.
        reason: String,
    },
    /// An established connection ended.
    Closed {
        /// The connection.
        conn: u64,
        /// `host` or `guest`.
        origin: &'static str,
        /// Who ended it first: `host`, `guest`, `fault` (a fault reset or close) or `vmm` (a
        /// shutdown timeout, or the VMM stopping).
        by: &'static str,
        /// Bytes the muxer delivered to the guest.
        bytes_to_guest: u64,
        /// Bytes of guest data the muxer passed to the host (the `OK` line not counted).
        bytes_to_host: u64,
    },
    /// A fault ended a connection's stream.
    Fault {
        /// The connection.
        conn: u64,
        /// `reset` or `close`.
        action: &'static str,
        /// `to_guest` or `to_host`.
        direction: &'static str,
    },
    /// The VM paused: nothing moves on any connection.
    Paused {
        /// `api` or `fault` (`vm_pause`).
        by: &'static str,
        /// For a fault, how long.
        duration_ms: Option<u64>,
    },
    /// The VM resumed; what queued meanwhile moves on in order.
    Resumed {
        /// `api` or `fault`.
        by: &'static str,
    },
    /// A user's agent started and listens on its socket.
    AgentStarted {
        /// The guest port it serves.
        port: u32,
        /// Its process id.
        pid: Option<u32>,
        /// The socket it listens on.
        socket: String,
    },
    /// A user's agent exited; its port no longer listens.
    AgentExited {
        /// The guest port it served.
        port: u32,
        /// How it exited.
        status: String,
    },
    /// The guest side of a connection could not be opened or failed.
    GuestError {
        /// The connection.
        conn: u64,
        /// What went wrong.
        error: String,
    },
}

impl fmt::Display for HvsockEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listening {
                socket,
                cid,
                flavour,
                ports,
            } => {
                let ports = if ports.is_empty() {
                    "none".to_string()
                } else {
                    ports.join(", ")
                };
                write!(
                    f,
                    "listening on {socket} as {flavour} (guest cid {cid}); guest ports: {ports}"
                )
            }
            Self::HostConnected { conn } => write!(f, "conn#{conn} host connected"),
            Self::Established {
                conn,
                origin,
                guest_port,
                host_port,
                ok,
                service,
            } => match ok {
                Some(ok) => write!(
                    f,
                    "conn#{conn} established: guest port {guest_port} ({service}), answered {ok:?}"
                ),
                None => write!(
                    f,
                    "conn#{conn} established ({origin}-initiated): guest port {guest_port} \
                     to host port {host_port} ({service})"
                ),
            },
            Self::Refused {
                conn,
                origin,
                kind,
                reason,
            } => {
                let what = if *kind == "request_timeout" {
                    "timeout"
                } else {
                    "refused"
                };
                let how = if *origin == "host" {
                    "closed without a reply"
                } else {
                    "the guest gets a reset"
                };
                write!(f, "conn#{conn} {what} ({kind}): {reason}; {how}")
            }
            Self::Closed {
                conn,
                by,
                bytes_to_guest,
                bytes_to_host,
                ..
            } => write!(
                f,
                "conn#{conn} closed by the {by}: {bytes_to_guest} bytes to the guest, \
                 {bytes_to_host} bytes to the host"
            ),
            Self::Fault {
                conn,
                action,
                direction,
            } => write!(f, "conn#{conn} fault: {action} ({direction})"),
            Self::Paused { by, duration_ms } => match duration_ms {
                Some(ms) => write!(f, "paused by {by} for {ms} ms"),
                None => write!(f, "paused by {by}"),
            },
            Self::Resumed { by } => write!(f, "resumed by {by}"),
            Self::AgentStarted { port, pid, socket } => {
                let pid = pid.map_or_else(|| "?".to_string(), |p| p.to_string());
                write!(f, "agent for port {port} started (pid {pid}) on {socket}")
            }
            Self::AgentExited { port, status } => {
                write!(
                    f,
                    "agent for port {port} exited ({status}); the port no longer listens"
                )
            }
            Self::GuestError { conn, error } => write!(f, "conn#{conn} guest side: {error}"),
        }
    }
}

/// One connection in a [`HvsockSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionSnapshot {
    /// The connection.
    pub conn: u64,
    /// `host` or `guest`.
    pub origin: &'static str,
    /// The muxer's state (Firecracker's names: `LocalInit`, `Established`, …).
    pub state: String,
    /// The guest port, once known.
    pub guest_port: Option<u32>,
    /// The host-side port, once known.
    pub host_port: Option<u32>,
    /// Guest bytes queued in the muxer for the host.
    pub queued_to_host: u32,
    /// Host bytes queued in the muxer for the guest.
    pub queued_to_guest: u32,
    /// Bytes delivered to the guest so far.
    pub bytes_to_guest: u64,
    /// Guest bytes passed to the host so far.
    pub bytes_to_host: u64,
}

/// A refused connection in a [`HvsockSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalSnapshot {
    /// The connection.
    pub conn: u64,
    /// `host` or `guest`.
    pub origin: &'static str,
    /// The refusal's kind (as in [`HvsockEvent::Refused`]).
    pub kind: &'static str,
    /// The muxer's reason.
    pub reason: String,
}

/// The mock VMM's whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HvsockSnapshot {
    /// The host socket.
    pub socket: String,
    /// The guest's CID.
    pub cid: u32,
    /// The muxer's flavour.
    pub flavour: String,
    /// Whether the VM is paused.
    pub paused: bool,
    /// Each configured guest port and what serves it.
    pub ports: Vec<(u32, String)>,
    /// Guest ports listening now (an agent that exited no longer does).
    pub listening: Vec<u32>,
    /// Live connections.
    pub connections: Vec<ConnectionSnapshot>,
    /// Connections refused since the start.
    pub refused_total: u64,
    /// The last refusals, oldest first.
    pub recent_refusals: Vec<RefusalSnapshot>,
    /// The muxer's own snapshot.
    #[serde(skip)]
    pub mux: MuxSnapshot,
}

impl HvsockSnapshot {
    /// The snapshot as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// A connection state's name.
pub fn state_name(s: ConnState) -> String {
    format!("{s:?}")
}
