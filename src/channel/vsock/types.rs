//! The muxer model's public vocabulary: connection ids and states, the events it asks its
//! adapter to carry out, refusal reasons, errors and the diagnostic snapshot.

use std::fmt;

use super::MAX_LISTENERS;
use crate::wire::hybrid::{CONN_REQUEST_TIMEOUT_MS, Flavour, MAX_CONNECTIONS, RejectReason};

/// One connection through the muxer, host- or guest-initiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A connection's state, with Firecracker's names (`csm::ConnState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Host-initiated, the `CONNECT` command not read yet.
    LocalInit,
    /// Guest-initiated, waiting for the host-side connect to `<uds_path>_<port>`.
    PeerInit,
    /// Both sides connected: data flows.
    Established,
    /// The host closed its side; waiting for the guest to close (or the shutdown timeout).
    LocalClosed,
    /// The guest closed its side; the host connection closes once the queued data is out.
    PeerClosed,
    /// Killed: the closing event is queued and the connection goes away once it is polled.
    Killed,
}

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A host process connected to `uds_path` and sends `CONNECT`.
    Host,
    /// A guest process connected to the host (CID 2).
    Guest,
}

/// Why a connection attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// The `CONNECT` command was malformed, split (Firecracker) or cut by EOF.
    Malformed(RejectReason),
    /// Nothing in the guest listens on the port the command named.
    NoListener {
        /// The guest port asked for.
        port: u32,
    },
    /// No complete command within [`CONN_REQUEST_TIMEOUT_MS`], or no host-side answer to a
    /// guest-initiated connection within it.
    RequestTimeout,
    /// [`MAX_CONNECTIONS`] connections were live.
    TooManyConnections,
    /// Every host-side port in `[2^30, 2^31)` was in use.
    PortsExhausted,
    /// Guest-initiated: nothing listens on `<uds_path>_<host_port>` on the host.
    HostRefused {
        /// The host port the guest asked for.
        host_port: u32,
    },
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(r) => write!(f, "malformed CONNECT: {r}"),
            Self::NoListener { port } => write!(f, "nothing in the guest listens on port {port}"),
            Self::RequestTimeout => write!(
                f,
                "no complete handshake within {CONN_REQUEST_TIMEOUT_MS} ms"
            ),
            Self::TooManyConnections => {
                write!(f, "{MAX_CONNECTIONS} connections already live")
            }
            Self::PortsExhausted => f.write_str("no free host-side port"),
            Self::HostRefused { host_port } => {
                write!(f, "nothing on the host listens on <uds_path>_{host_port}")
            }
        }
    }
}

/// Why the model closes a host connection ([`MuxEvent::CloseHost`]). The host sees a plain EOF in
/// every case; the reason is for diagnosis only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The handshake was refused.
    Refused(RefuseReason),
    /// The guest closed the connection.
    GuestClosed,
}

/// What the adapter must do next, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxEvent {
    /// Write these bytes to the host connection (the `OK` line, or data from the guest).
    WriteToHost {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Hand these bytes to the guest socket on `port`.
    DeliverToGuest {
        /// The connection.
        conn: ConnId,
        /// The guest port.
        port: u32,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close the host connection without writing anything.
    CloseHost {
        /// The connection.
        conn: ConnId,
        /// Why (not sent on the wire).
        reason: CloseReason,
    },
    /// Reset the guest side of the connection (a vsock RST).
    ResetGuest {
        /// The connection.
        conn: ConnId,
    },
    /// Tell the guest the host closed its side (a vsock SHUTDOWN).
    ShutdownGuest {
        /// The connection.
        conn: ConnId,
    },
    /// Tell the guest how much the host consumed (a vsock CREDIT_UPDATE).
    CreditUpdate {
        /// The connection.
        conn: ConnId,
        /// The host's buffer for this connection: [`CONN_TX_BUF_SIZE`](crate::wire::hybrid::CONN_TX_BUF_SIZE).
        buf_alloc: u32,
        /// Bytes from the guest written to the host so far (wrapping).
        fwd_cnt: u32,
    },
    /// Connect to the host Unix socket `<uds_path><path_suffix>` for a guest-initiated
    /// connection; answer with [`VsockMuxer::host_side_connected`](super::VsockMuxer::host_side_connected) or
    /// [`VsockMuxer::host_side_refused`](super::VsockMuxer::host_side_refused).
    ConnectToHost {
        /// The connection.
        conn: ConnId,
        /// `_<host_port>`.
        path_suffix: String,
    },
}

/// Misuse of the model by its adapter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// No such live connection.
    #[error("{0}: no such connection")]
    UnknownConnection(ConnId),
    /// The operation does not apply in the connection's state.
    #[error("{conn}: {op} is not allowed in state {state:?}")]
    WrongState {
        /// The connection.
        conn: ConnId,
        /// Its state.
        state: ConnState,
        /// The operation attempted.
        op: &'static str,
    },
    /// [`MAX_LISTENERS`] guest ports already listen.
    #[error("too many listening guest ports (at most {MAX_LISTENERS})")]
    TooManyListeners,
}

/// One refused handshake, for [`MuxSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The connection.
    pub conn: ConnId,
    /// Which side opened it.
    pub origin: Origin,
    /// Why it was refused.
    pub reason: RefuseReason,
}

/// One connection, as [`VsockMuxer::snapshot`](super::VsockMuxer::snapshot) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSnapshot {
    /// The connection.
    pub conn: ConnId,
    /// Which side opened it.
    pub origin: Origin,
    /// Its state.
    pub state: ConnState,
    /// The guest port, once known.
    pub guest_port: Option<u32>,
    /// The host-side port: the local port named in `OK` (Firecracker, Cloud Hypervisor), or
    /// the port a guest-initiated connection dials.
    pub host_port: Option<u32>,
    /// Bytes from the guest waiting to be written to the host.
    pub queued_to_host: u32,
    /// Bytes from the host waiting to be delivered to the guest.
    pub queued_to_guest: u32,
    /// Bytes from the guest written to the host so far (wrapping).
    pub fwd_cnt: u32,
}

/// The whole muxer, for diagnosis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxSnapshot {
    /// The flavour followed.
    pub flavour: Flavour,
    /// Whether delivery is paused.
    pub paused: bool,
    /// Guest ports listening, ascending.
    pub listening: Vec<u32>,
    /// Live connections, by id.
    pub connections: Vec<ConnSnapshot>,
    /// Events waiting to be polled.
    pub pending_events: usize,
    /// Handshakes refused since the start.
    pub refused_total: u64,
    /// The last [`MAX_RECENT_REFUSALS`](super::MAX_RECENT_REFUSALS) refusals, oldest first.
    pub recent_refusals: Vec<Refusal>,
}
