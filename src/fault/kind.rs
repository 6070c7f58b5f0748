//! What a fault does: [`FaultKind`], named and attributed like toxiproxy's toxics where the
//! meaning is the same (`latency{latency,jitter}`, `bandwidth{rate}`,
//! `slicer{average_size,size_variation,delay}`, `slow_close{delay}`, `timeout{timeout}`,
//! `reset_peer{timeout}`, `limit_data{bytes}`), plus guestwire's own protocol-aware and
//! VM-level faults, and the [`MalformedVariant`]s of `malformed:<variant>`.

use std::fmt;
use std::time::Duration;

/// Every kind name, in the order of [`FaultKind`].
pub const KIND_NAMES: &[&str] = &[
    "latency",
    "bandwidth",
    "slicer",
    "slow_close",
    "timeout",
    "reset_peer",
    "limit_data",
    "guest_before_host",
    "stale_client",
    "stale_socket",
    "reset_mid_stream",
    "malformed",
    "drop_frame",
    "duplicate_frame",
    "reorder",
    "agent_hang",
    "agent_crash",
    "vm_pause",
    "ch_shutdown_wedge",
];

/// Every malformed variant name, in the order of [`MalformedVariant::ALL`].
pub const MALFORMED_NAMES: &[&str] = &[
    "bad_magic",
    "oversize_length",
    "zero_length",
    "truncated",
    "bad_protobuf",
    "bad_json",
    "unknown_type",
    "garbage",
    "split_handshake",
    "no_newline",
];

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// toxiproxy `latency`: each chunk waits `latency` ± a uniform `jitter`.
    Latency {
        /// The added delay.
        latency: Duration,
        /// The largest random deviation either way.
        jitter: Duration,
    },
    /// toxiproxy `bandwidth`: at most `rate` bytes per second (each chunk waits len/rate).
    Bandwidth {
        /// Bytes per second (0 stops the stream, as toxiproxy does).
        rate: u64,
    },
    /// toxiproxy `slicer`: chunks of `average_size` ± `size_variation` bytes, `delay` apart.
    Slicer {
        /// Mean chunk size in bytes (at least 1 is used).
        average_size: u64,
        /// Largest random deviation of a chunk's size.
        size_variation: u64,
        /// Pause between chunks.
        delay: Duration,
    },
    /// toxiproxy `slow_close`: the close waits `delay`.
    SlowClose {
        /// How long the close is delayed.
        delay: Duration,
    },
    /// toxiproxy `timeout`: a blackhole; data is held, and the connection closed after `timeout`
    /// (never, when 0).
    Timeout {
        /// When to close after the first held byte (0: never).
        timeout: Duration,
    },
    /// toxiproxy `reset_peer`: a TCP-style reset (connection reset by peer) after `timeout`.
    ResetPeer {
        /// Wait before the reset.
        timeout: Duration,
    },
    /// toxiproxy `limit_data`: close once `bytes` bytes have passed.
    LimitData {
        /// How many bytes pass before the close.
        bytes: u64,
    },
    /// The guest writes while no host is connected until the channel ring is full.
    GuestBeforeHost,
    /// Another client holds the single-client socket.
    StaleClient,
    /// The socket path exists and nothing listens on it.
    StaleSocket,
    /// A reset half-way through a chunk or frame.
    ResetMidStream,
    /// The frame is rewritten into a malformed variant (see `malform`).
    Malformed(MalformedVariant),
    /// The frame is not delivered.
    DropFrame,
    /// The frame is delivered twice.
    DuplicateFrame,
    /// The frame is delivered after the next one.
    Reorder,
    /// The agent stops answering (its output is held).
    AgentHang,
    /// The agent process dies (its connection is reset).
    AgentCrash,
    /// The VM is paused for `duration`: nothing moves, then everything resumes.
    VmPause {
        /// How long the VM stays paused.
        duration: Duration,
    },
    /// cloud-hypervisor#816: `vmm.shutdown` on a paused VM never replies and freezes later calls.
    ChShutdownWedge,
}

impl FaultKind {
    /// The kind's name, as in `--fault`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Latency { .. } => "latency",
            Self::Bandwidth { .. } => "bandwidth",
            Self::Slicer { .. } => "slicer",
            Self::SlowClose { .. } => "slow_close",
            Self::Timeout { .. } => "timeout",
            Self::ResetPeer { .. } => "reset_peer",
            Self::LimitData { .. } => "limit_data",
            Self::GuestBeforeHost => "guest_before_host",
            Self::StaleClient => "stale_client",
            Self::StaleSocket => "stale_socket",
            Self::ResetMidStream => "reset_mid_stream",
            Self::Malformed(_) => "malformed",
            Self::DropFrame => "drop_frame",
            Self::DuplicateFrame => "duplicate_frame",
            Self::Reorder => "reorder",
            Self::AgentHang => "agent_hang",
            Self::AgentCrash => "agent_crash",
            Self::VmPause { .. } => "vm_pause",
            Self::ChShutdownWedge => "ch_shutdown_wedge",
        }
    }

    /// The kind with its default attributes (toxiproxy's zero defaults), from its name;
    /// `malformed` is not built here (it needs a variant).
    pub fn default_of(name: &str) -> Option<Self> {
        let z = Duration::ZERO;
        Some(match name {
            "latency" => Self::Latency {
                latency: z,
                jitter: z,
            },
            "bandwidth" => Self::Bandwidth { rate: 0 },
            "slicer" => Self::Slicer {
                average_size: 0,
                size_variation: 0,
                delay: z,
            },
            "slow_close" => Self::SlowClose { delay: z },
            "timeout" => Self::Timeout { timeout: z },
            "reset_peer" => Self::ResetPeer { timeout: z },
            "limit_data" => Self::LimitData { bytes: 0 },
            "guest_before_host" => Self::GuestBeforeHost,
            "stale_client" => Self::StaleClient,
            "stale_socket" => Self::StaleSocket,
            "reset_mid_stream" => Self::ResetMidStream,
            "drop_frame" => Self::DropFrame,
            "duplicate_frame" => Self::DuplicateFrame,
            "reorder" => Self::Reorder,
            "agent_hang" => Self::AgentHang,
            "agent_crash" => Self::AgentCrash,
            "vm_pause" => Self::VmPause { duration: z },
            "ch_shutdown_wedge" => Self::ChShutdownWedge,
            _ => return None,
        })
    }

    /// The attribute keys this kind takes.
    pub fn attribute_keys(&self) -> &'static [&'static str] {
        match self {
            Self::Latency { .. } => &["latency", "jitter"],
            Self::Bandwidth { .. } => &["rate"],
            Self::Slicer { .. } => &["average_size", "size_variation", "delay"],
            Self::SlowClose { .. } => &["delay"],
            Self::Timeout { .. } | Self::ResetPeer { .. } => &["timeout"],
            Self::LimitData { .. } => &["bytes"],
            Self::VmPause { .. } => &["duration"],
            _ => &[],
        }
    }

    /// Whether this kind acts on whole frames (so it needs `on_frame`, not `on_bytes`).
    pub fn is_frame_fault(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_) | Self::DropFrame | Self::DuplicateFrame | Self::Reorder
        )
    }

    /// Whether this kind is set up by the mock VMM or agent rather than done to a stream
    /// (`guest_before_host`, `stale_client`, `stale_socket`, `ch_shutdown_wedge`).
    pub fn is_setup_fault(&self) -> bool {
        matches!(
            self,
            Self::GuestBeforeHost | Self::StaleClient | Self::StaleSocket | Self::ChShutdownWedge
        )
    }
}

/// A `malformed:<variant>` defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MalformedVariant {
    /// The frame's magic is flipped.
    BadMagic,
    /// The length field says 4 GiB − 1 (or the body is longer than any maximum).
    OversizeLength,
    /// The length field says 0 and the payload is gone.
    ZeroLength,
    /// The payload is cut short and the stream closed.
    Truncated,
    /// The payload is not protobuf.
    BadProtobuf,
    /// The payload is not JSON.
    BadJson,
    /// A well-formed message of a type the protocol does not define.
    UnknownType,
    /// Bytes that are no frame at all come first.
    Garbage,
    /// A hybrid-vsock `CONNECT` line is split into two writes.
    SplitHandshake,
    /// A line-terminated message loses its newline.
    NoNewline,
}

impl MalformedVariant {
    /// Every variant, in the order of [`MALFORMED_NAMES`].
    pub const ALL: [Self; 10] = [
        Self::BadMagic,
        Self::OversizeLength,
        Self::ZeroLength,
        Self::Truncated,
        Self::BadProtobuf,
        Self::BadJson,
        Self::UnknownType,
        Self::Garbage,
        Self::SplitHandshake,
        Self::NoNewline,
    ];

    /// The variant's name.
    pub fn name(self) -> &'static str {
        let i = Self::ALL.iter().position(|v| *v == self).unwrap_or(0);
        MALFORMED_NAMES.get(i).copied().unwrap_or("bad_magic")
    }

    /// The variant named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        let i = MALFORMED_NAMES.iter().position(|n| *n == name)?;
        Self::ALL.get(i).copied()
    }
}

impl fmt::Display for MalformedVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
