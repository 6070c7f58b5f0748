//! Writing captures: nanosecond pcap (magic 0xa1b23c4d) or pcapng (`if_tsresol` 9) with link
//! type 271, LINKTYPE_VSOCK, one `af_vsockmon_hdr` record per connect, disconnect and chunk of
//! payload in each direction, as `docs/captures.md` describes.
//!
//! [`RecordEncoder`] is pure: it turns an [`Event`] at a time into file bytes (through pcap-file
//! 2.x's record and block writers). [`CaptureWriter`] is the shared handle the tap and recorders
//! use: a cheap clone of an `Arc<Mutex<..>>` around the file, so several connections write into
//! one capture. Each event becomes one `write(2)` of its records, made before the call returns:
//! nothing is buffered in the process, so a crash (panic, abort, SIGKILL) loses at most the event
//! being written. There is no fsync (the kernel's page cache survives a crash of the process,
//! not of the machine). The lock is held for one encode and one write to a local file — a few
//! microseconds — which is what a proxy pays per chunk; a writer on a filesystem that can stall
//! (NFS) would stall the proxy too, so captures belong on local disk. After a failed write the
//! writer refuses every later event ([`WriteError::Closed`]): the file may end in a partial
//! record, and appending more would make the rest unreadable.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use byteorder::LittleEndian;
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::pcapng::PcapNgBlock;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::{DataLink, Endianness, TsResolution};

use super::error::WriteError;
use super::vsockmon::{
    Flow, HEADER_LEN, Header, MAX_PAYLOAD_PER_RECORD, Op, SNAPLEN, Side, Transport,
    VIRTIO_HEADER_LEN, VIRTIO_OP_RST, VIRTIO_TYPE_STREAM, VirtioHeader,
};
use crate::wire::Direction;

/// The file format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic pcap with nanosecond timestamps.
    Pcap,
    /// pcapng with one LINKTYPE_VSOCK interface whose `if_tsresol` is 9 (nanoseconds).
    PcapNg,
}

impl CaptureFormat {
    /// pcapng for a path ending in `.pcapng`, else pcap.
    pub fn for_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pcapng") => Self::PcapNg,
            _ => Self::Pcap,
        }
    }
}

/// How a side ended its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// An orderly close (end of stream): written with transport `no_info`.
    Shutdown,
    /// A reset (ECONNRESET, a killed peer): written with a `virtio_vsock_hdr` whose op is RST,
    /// which is how Linux's vsockmon shows one.
    Reset,
}

/// Something that happened on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// `by` opened the connection.
    Connect {
        /// The side that connected (usually the host).
        by: Side,
    },
    /// Bytes went one way.
    Payload {
        /// Which way.
        direction: Direction,
        /// The bytes, as one read or write carried them.
        data: &'a [u8],
    },
    /// `by` ended the connection.
    Disconnect {
        /// The side that closed or reset.
        by: Side,
        /// How.
        close: Close,
    },
}

/// Nanoseconds since 1970 of `at`, if pcap can hold it.
pub fn time_ns(at: SystemTime) -> Result<u64, WriteError> {
    let d = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| WriteError::Timestamp(format!("{at:?}")))?;
    if d.as_secs() > u64::from(u32::MAX) {
        return Err(WriteError::Timestamp(format!("{at:?}")));
    }
    Ok(d.as_secs() * 1_000_000_000 + u64::from(d.subsec_nanos()))
}

/// Turns events into capture file bytes. Pure.
#[derive(Debug, Clone)]
pub struct RecordEncoder {
    format: CaptureFormat,
    scratch: Vec<u8>,
}

fn encode_err(e: impl std::fmt::Display) -> WriteError {
    WriteError::Encode(e.to_string())
}

impl RecordEncoder {
    /// An encoder for `format`.
    pub fn new(format: CaptureFormat) -> Self {
        Self {
            format,
            scratch: Vec::with_capacity(HEADER_LEN + VIRTIO_HEADER_LEN),
        }
    }

    /// The format written.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Appends the file header (pcap: the 24-byte header; pcapng: the section header and the
    /// interface description, with `if_tsresol` 9, which pcap-file does not add by itself).
    pub fn file_header(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        match self.format {
            CaptureFormat::Pcap => {
                let header = PcapHeader {
                    version_major: 2,
                    version_minor: 4,
                    ts_correction: 0,
                    ts_accuracy: 0,
                    snaplen: SNAPLEN,
                    datalink: DataLink::VSOCK,
                    ts_resolution: TsResolution::NanoSecond,
                    endianness: Endianness::Little,
                };
                header.write_to(out).map_err(encode_err)?;
            }
            CaptureFormat::PcapNg => {
                let section = SectionHeaderBlock {
                    endianness: Endianness::Little,
                    ..Default::default()
                };
                let interface = InterfaceDescriptionBlock {
                    linktype: DataLink::VSOCK,
                    snaplen: SNAPLEN,
                    options: vec![InterfaceDescriptionOption::IfTsResol(9)],
                };
                for block in [section.into_block(), interface.into_block()] {
                    block.write_to::<LittleEndian, _>(out).map_err(encode_err)?;
                }
            }
        }
        Ok(())
    }

    /// Appends one record: `header`, then `transport`, then `payload` (which must fit in the
    /// snaplen with them).
    pub fn record(
        &mut self,
        out: &mut Vec<u8>,
        time_ns: u64,
        header: &Header,
        transport: &[u8],
        payload: &[u8],
    ) -> Result<(), WriteError> {
        self.scratch.clear();
        header.encode(&mut self.scratch);
        self.scratch.extend_from_slice(transport);
        self.scratch.extend_from_slice(payload);
        let len = u32::try_from(self.scratch.len()).map_err(encode_err)?;
        let ts = Duration::from_nanos(time_ns);
        match self.format {
            CaptureFormat::Pcap => {
                PcapPacket::new(ts, len, &self.scratch)
                    .write_to::<_, LittleEndian>(out, TsResolution::NanoSecond, SNAPLEN)
                    .map_err(encode_err)?;
            }
            CaptureFormat::PcapNg => {
                let block = EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: ts,
                    original_len: len,
                    data: std::borrow::Cow::Borrowed(&self.scratch),
                    options: Vec::new(),
                };
                block
                    .into_block()
                    .write_to::<LittleEndian, _>(out)
                    .map_err(encode_err)?;
            }
        }
        Ok(())
    }

    /// Appends the records of `event` on `flow` at `time_ns` (pcap: at most 2¹⁰⁶ seconds);
    /// payload longer than [`MAX_PAYLOAD_PER_RECORD`] is split into several records. Returns
    /// how many records were written (0 for an empty payload).
    pub fn event(
        &mut self,
        out: &mut Vec<u8>,
        time_ns: u64,
        flow: &Flow,
        event: Event<'_>,
    ) -> Result<usize, WriteError> {
        if self.format == CaptureFormat::Pcap && time_ns / 1_000_000_000 > u64::from(u32::MAX) {
            return Err(WriteError::Timestamp(format!("{time_ns} ns since 1970")));
        }
        let header = |direction: Direction, op: Op| {
            let (src, dst) = flow.ends(direction);
            Header {
                src,
                dst,
                op,
                transport: Transport::NoInfo,
                len: 0,
            }
        };
        match event {
            Event::Connect { by } => {
                self.record(out, time_ns, &header(by.sends(), Op::Connect), &[], &[])?;
                Ok(1)
            }
            Event::Payload { direction, data } => {
                let h = header(direction, Op::Payload);
                let mut n = 0;
                for chunk in data.chunks(MAX_PAYLOAD_PER_RECORD) {
                    self.record(out, time_ns, &h, &[], chunk)?;
                    n += 1;
                }
                Ok(n)
            }
            Event::Disconnect {
                by,
                close: Close::Shutdown,
            } => {
                self.record(out, time_ns, &header(by.sends(), Op::Disconnect), &[], &[])?;
                Ok(1)
            }
            Event::Disconnect {
                by,
                close: Close::Reset,
            } => {
                let mut h = header(by.sends(), Op::Disconnect);
                h.transport = Transport::Virtio;
                h.len = VIRTIO_HEADER_LEN as u16;
                let mut virtio = Vec::with_capacity(VIRTIO_HEADER_LEN);
                VirtioHeader {
                    src: h.src,
                    dst: h.dst,
                    len: 0,
                    kind: VIRTIO_TYPE_STREAM,
                    op: VIRTIO_OP_RST,
                    flags: 0,
                }
                .encode(&mut virtio);
                self.record(out, time_ns, &h, &virtio, &[])?;
                Ok(1)
            }
        }
    }
}

/// What a writer has written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records written.
    pub records: u64,
    /// Payload bytes written, towards the guest.
    pub to_guest_bytes: u64,
    /// Payload bytes written, towards the host.
    pub to_host_bytes: u64,
    /// File bytes written, header included.
    pub file_bytes: u64,
}

struct Inner {
    out: Box<dyn Write + Send>,
    encoder: RecordEncoder,
    buf: Vec<u8>,
    closed: bool,
    stats: WriterStats,
}

/// The first host port [`CaptureWriter::next_host_port`] hands out: 49152, the start of the
/// dynamic port range.
pub const FIRST_HOST_PORT: u32 = 49152;

/// A capture being written, shared by every connection that records into it (clone it).
#[derive(Clone)]
pub struct CaptureWriter {
    inner: Arc<Mutex<Inner>>,
    ports: Arc<AtomicU32>,
    format: CaptureFormat,
}

impl std::fmt::Debug for CaptureWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureWriter")
            .field("format", &self.format)
            .field("stats", &self.stats())
            .finish()
    }
}

impl CaptureWriter {
    /// Creates (or truncates) `path` and writes the file header; pcapng when the path ends in
    /// `.pcapng`, else pcap.
    pub fn create(path: &Path) -> Result<Self, WriteError> {
        Self::create_as(path, CaptureFormat::for_path(path))
    }

    /// Creates (or truncates) `path` as `format` and writes the file header.
    pub fn create_as(path: &Path, format: CaptureFormat) -> Result<Self, WriteError> {
        let file = File::create(path)?;
        Self::new(Box::new(file), format)
    }

    /// Writes the file header to `out` and returns the writer. `out` should not buffer (or
    /// every record's durability is the buffer's, not the writer's).
    pub fn new(mut out: Box<dyn Write + Send>, format: CaptureFormat) -> Result<Self, WriteError> {
        let encoder = RecordEncoder::new(format);
        let mut buf = Vec::with_capacity(4096);
        encoder.file_header(&mut buf)?;
        out.write_all(&buf)?;
        let stats = WriterStats {
            file_bytes: buf.len() as u64,
            ..WriterStats::default()
        };
        buf.clear();
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                out,
                encoder,
                buf,
                closed: false,
                stats,
            })),
            ports: Arc::new(AtomicU32::new(0)),
            format,
        })
    }

    /// The format being written.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves nothing half-done in memory (the file is
        // protected by `closed`), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `event` on `flow` at `at`, in one write.
    pub fn write(&self, at: SystemTime, flow: &Flow, event: Event<'_>) -> Result<(), WriteError> {
        let t = time_ns(at)?;
        self.write_ns(t, flow, event)
    }

    /// Records `event` on `flow` at `time_ns` nanoseconds since 1970, in one write.
    pub fn write_ns(&self, time_ns: u64, flow: &Flow, event: Event<'_>) -> Result<(), WriteError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.closed {
            return Err(WriteError::Closed);
        }
        inner.buf.clear();
        let records = inner.encoder.event(&mut inner.buf, time_ns, flow, event)?;
        if records == 0 {
            return Ok(());
        }
        if let Err(e) = inner
            .out
            .write_all(&inner.buf)
            .and_then(|()| inner.out.flush())
        {
            inner.closed = true;
            return Err(WriteError::Io(e));
        }
        let stats = &mut inner.stats;
        stats.records += records as u64;
        stats.file_bytes += inner.buf.len() as u64;
        if let Event::Payload { direction, data } = event {
            match direction {
                Direction::ToGuest => stats.to_guest_bytes += data.len() as u64,
                Direction::ToHost => stats.to_host_bytes += data.len() as u64,
            }
        }
        if inner.buf.capacity() > 4 * (SNAPLEN as usize + 64) {
            // One huge chunk should not pin its buffer for the capture's lifetime.
            inner.buf = Vec::with_capacity(4096);
        }
        Ok(())
    }

    /// Records that `by` connected.
    pub fn connect(&self, at: SystemTime, flow: &Flow, by: Side) -> Result<(), WriteError> {
        self.write(at, flow, Event::Connect { by })
    }

    /// Records one chunk of bytes going `direction`.
    pub fn payload(
        &self,
        at: SystemTime,
        flow: &Flow,
        direction: Direction,
        data: &[u8],
    ) -> Result<(), WriteError> {
        self.write(at, flow, Event::Payload { direction, data })
    }

    /// Records that `by` closed or reset the connection.
    pub fn disconnect(
        &self,
        at: SystemTime,
        flow: &Flow,
        by: Side,
        close: Close,
    ) -> Result<(), WriteError> {
        self.write(at, flow, Event::Disconnect { by, close })
    }

    /// A host port for a new connection's [`Flow`], distinct from the last 16383 handed out:
    /// counts up from [`FIRST_HOST_PORT`] and wraps at 65535 (for channels whose host end has
    /// no port of its own, such as hybrid vsock).
    pub fn next_host_port(&self) -> u32 {
        let n = self.ports.fetch_add(1, Ordering::Relaxed);
        FIRST_HOST_PORT + n % (65536 - FIRST_HOST_PORT)
    }

    /// What has been written so far.
    pub fn stats(&self) -> WriterStats {
        self.lock().stats
    }

    /// Whether an earlier write failed (every later event is refused).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
