//! Captures: pcap and pcapng files of LINKTYPE_VSOCK (271) records, which Wireshark and tshark
//! dissect as vsock, written by the tap and recorders and read back into decoded frames.
//!
//! - [`vsockmon`]: the 32-byte `af_vsockmon_hdr` of every record, and the address conventions
//!   ([`Flow`]: host CID 2, guest CID ≥ 3; virtio-serial channels as CID 2 ↔ the VM's CID on the
//!   port number).
//! - [`writer`]: [`CaptureWriter`], the shared, flushed-per-event writer (pcap with nanosecond
//!   timestamps, or pcapng with `if_tsresol` 9), over the pure [`RecordEncoder`].
//! - [`parser`] (pure) and [`reader`] (IO, `--follow`): records out of pcap or pcapng files.
//! - [`reassembly`] (pure): records → each connection's two streams → frames via the wire codecs,
//!   as [`CaptureItem`]s; [`detect`] picks each connection's protocol; [`summary`] pairs requests
//!   with replies and counts.
//!
//! `docs/captures.md` is the user-facing description.

pub mod detect;
pub mod error;
pub mod fasthash;
pub mod item;
pub mod latency;
pub mod parser;
pub mod reader;
pub mod reassembly;
pub mod summary;
pub mod vsockmon;
pub mod writer;

pub use detect::ProtocolChoice;
pub use error::{CaptureError, ReadError, WriteError};
pub use item::{CaptureItem, ConnId, EndReason, ItemKind};
pub use latency::LatencyHistogram;
pub use parser::{CaptureParser, FileFormat, Record, sniff_format};
pub use reader::CaptureReader;
pub use reassembly::Reassembler;
pub use summary::Summary;
pub use vsockmon::{Flow, Side, VsockAddr};
pub use writer::{CaptureFormat, CaptureWriter, Close, Event, RecordEncoder};
