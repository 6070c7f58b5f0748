use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use bytes::BytesMut;

use super::*;
use crate::capture::parser::{CaptureParser, FileFormat, Record};
use crate::capture::vsockmon::{DEFAULT_GUEST_CID, VirtioHeader};

const T0: u64 = 1_795_000_000_123_456_789;

fn flow() -> Flow {
    Flow::vsock(49152, 3, 1024)
}

fn parse_all(bytes: &[u8]) -> Vec<Record> {
    let mut p = CaptureParser::new();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(item) = p.finish(&mut buf) {
        out.push(item.expect("valid record"));
    }
    out
}

fn session(format: CaptureFormat) -> Vec<u8> {
    let mut enc = RecordEncoder::new(format);
    let mut out = Vec::new();
    enc.file_header(&mut out).expect("header");
    let f = flow();
    let events = [
        Event::Connect { by: Side::Host },
        Event::Payload {
            direction: Direction::ToGuest,
            data: b"ping",
        },
        Event::Payload {
            direction: Direction::ToHost,
            data: b"pong!",
        },
        Event::Disconnect {
            by: Side::Host,
            close: Close::Shutdown,
        },
    ];
    for (i, e) in events.into_iter().enumerate() {
        enc.event(&mut out, T0 + i as u64, &f, e).expect("event");
    }
    out
}

#[test]
fn pcap_header_is_nanosecond_vsock() {
    let out = session(CaptureFormat::Pcap);
    assert_eq!(&out[..4], &0xa1b2_3c4du32.to_le_bytes());
    assert_eq!(&out[4..8], &[2, 0, 4, 0]);
    assert_eq!(&out[16..20], &65535u32.to_le_bytes());
    assert_eq!(&out[20..24], &271u32.to_le_bytes());
}

#[test]
fn records_round_trip_with_nanosecond_times() {
    for format in [CaptureFormat::Pcap, CaptureFormat::PcapNg] {
        let records = parse_all(&session(format));
        assert_eq!(records.len(), 4, "{format:?}");
        let f = flow();
        let ops: Vec<Op> = records.iter().map(|r| r.vsock.header.op).collect();
        assert_eq!(ops, [Op::Connect, Op::Payload, Op::Payload, Op::Disconnect]);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.time_ns, T0 + i as u64, "{format:?} record {i}");
            assert_eq!(r.index, i as u64 + 1);
            assert_eq!(r.snapped, 0);
            assert_eq!(r.vsock.header.transport, Transport::NoInfo);
        }
        assert_eq!(
            (records[1].vsock.header.src, records[1].vsock.header.dst),
            (f.host, f.guest)
        );
        assert_eq!(&records[1].vsock.payload[..], b"ping");
        assert_eq!(
            (records[2].vsock.header.src, records[2].vsock.header.dst),
            (f.guest, f.host)
        );
        assert_eq!(&records[2].vsock.payload[..], b"pong!");
    }
}

#[test]
fn pcapng_declares_nanosecond_resolution() {
    let out = session(CaptureFormat::PcapNg);
    let mut p = CaptureParser::new();
    let mut buf = BytesMut::from(&out[..]);
    assert!(p.next(&mut buf).is_some());
    assert_eq!(p.format(), Some(FileFormat::PcapNg));
    // The interface description block: type 1, then linktype 271 and the option if_tsresol = 9.
    let idb = u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize;
    assert_eq!(&out[idb..idb + 4], &[1, 0, 0, 0]);
    let body = &out[idb + 8..];
    assert_eq!(&body[..2], &271u16.to_le_bytes());
    assert_eq!(&body[8..13], &[9, 0, 1, 0, 9]);
    // pcap-file reads it too.
    let mut r = pcap_file::pcapng::PcapNgReader::new(&out[..]).expect("pcap-file reads it");
    let mut packets = 0;
    while let Some(b) = r.next_block() {
        if let pcap_file::pcapng::Block::EnhancedPacket(p) = b.expect("block") {
            assert_eq!(p.timestamp, Duration::from_nanos(T0 + packets));
            packets += 1;
        }
    }
    assert_eq!(packets, 4);
}

#[test]
fn pcap_file_reads_our_pcap() {
    let out = session(CaptureFormat::Pcap);
    let mut r = pcap_file::pcap::PcapReader::new(&out[..]).expect("pcap-file reads it");
    assert_eq!(r.header().datalink, pcap_file::DataLink::VSOCK);
    assert_eq!(
        r.header().ts_resolution,
        pcap_file::TsResolution::NanoSecond
    );
    let p = r.next_packet().expect("a packet").expect("valid");
    assert_eq!(p.timestamp, Duration::from_nanos(T0));
    assert_eq!(p.data.len(), HEADER_LEN);
}

#[test]
fn big_chunks_are_split_to_fit_the_snaplen() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    let mut enc = RecordEncoder::new(CaptureFormat::Pcap);
    let mut out = Vec::new();
    enc.file_header(&mut out).expect("header");
    let n = enc
        .event(
            &mut out,
            T0,
            &flow(),
            Event::Payload {
                direction: Direction::ToHost,
                data: &data,
            },
        )
        .expect("event");
    assert_eq!(n, 4);
    let records = parse_all(&out);
    assert!(records.iter().all(|r| r.orig_len <= SNAPLEN));
    let joined: Vec<u8> = records
        .iter()
        .flat_map(|r| r.vsock.payload.to_vec())
        .collect();
    assert_eq!(joined, data);
    // An empty chunk writes nothing.
    let before = out.len();
    let empty = Event::Payload {
        direction: Direction::ToHost,
        data: &[],
    };
    assert_eq!(enc.event(&mut out, T0, &flow(), empty).expect("event"), 0);
    assert_eq!(out.len(), before);
}

#[test]
fn a_reset_carries_a_virtio_rst_header() {
    let mut enc = RecordEncoder::new(CaptureFormat::Pcap);
    let mut out = Vec::new();
    enc.file_header(&mut out).expect("header");
    let reset = Event::Disconnect {
        by: Side::Guest,
        close: Close::Reset,
    };
    enc.event(&mut out, T0, &flow(), reset).expect("event");
    let r = &parse_all(&out)[0];
    assert_eq!(r.vsock.header.transport, Transport::Virtio);
    assert_eq!(r.vsock.header.src, flow().guest);
    let v: VirtioHeader = r.vsock.virtio().expect("virtio header");
    assert_eq!(
        (v.op, v.src, v.dst),
        (VIRTIO_OP_RST, flow().guest, flow().host)
    );
}

#[test]
fn times_pcap_cannot_hold_are_refused() {
    assert!(matches!(
        time_ns(UNIX_EPOCH - Duration::from_secs(1)),
        Err(WriteError::Timestamp(_))
    ));
    assert!(time_ns(UNIX_EPOCH + Duration::from_secs(1 << 33)).is_err());
    assert_eq!(
        time_ns(UNIX_EPOCH + Duration::new(5, 7)).ok(),
        Some(5_000_000_007)
    );
    let mut enc = RecordEncoder::new(CaptureFormat::Pcap);
    let late = (u64::from(u32::MAX) + 1) * 1_000_000_000;
    let connect = Event::Connect { by: Side::Host };
    assert!(enc.event(&mut Vec::new(), late, &flow(), connect).is_err());
    let mut ng = RecordEncoder::new(CaptureFormat::PcapNg);
    assert!(ng.event(&mut Vec::new(), late, &flow(), connect).is_ok());
}

#[test]
fn every_event_is_in_the_file_before_the_call_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.pcap");
    let w = CaptureWriter::create(&path).expect("create");
    let f = Flow::serial(1, DEFAULT_GUEST_CID);
    w.connect(UNIX_EPOCH + Duration::from_secs(10), &f, Side::Host)
        .expect("connect");
    for i in 0..5u8 {
        let at = UNIX_EPOCH + Duration::from_nanos(10_000_000_000 + u64::from(i));
        w.payload(at, &f, Direction::ToGuest, &[i; 3])
            .expect("payload");
        // Read the file while the writer is alive and unflushed by anyone else.
        let records = parse_all(&std::fs::read(&path).expect("read"));
        assert_eq!(records.len(), 2 + usize::from(i));
        let last = records.last().expect("a record");
        assert_eq!(&last.vsock.payload[..], &[i; 3]);
        assert_eq!(last.time_ns, 10_000_000_000 + u64::from(i));
    }
    let s = w.stats();
    assert_eq!((s.records, s.to_guest_bytes, s.to_host_bytes), (6, 15, 0));
    assert_eq!(s.file_bytes, std::fs::metadata(&path).expect("meta").len());
    drop(w);
}

#[test]
fn the_extension_picks_the_format() {
    assert_eq!(
        CaptureFormat::for_path(Path::new("a.pcapng")),
        CaptureFormat::PcapNg
    );
    assert_eq!(
        CaptureFormat::for_path(Path::new("a.PCAPNG")),
        CaptureFormat::PcapNg
    );
    assert_eq!(
        CaptureFormat::for_path(Path::new("a.pcap")),
        CaptureFormat::Pcap
    );
    assert_eq!(CaptureFormat::for_path(Path::new("a")), CaptureFormat::Pcap);
}

/// A sink that fails after `ok` writes.
struct Failing {
    ok: usize,
}

impl Write for Failing {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::other("disk full"));
        }
        self.ok -= 1;
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_write_closes_the_capture() {
    let w = CaptureWriter::new(Box::new(Failing { ok: 1 }), CaptureFormat::Pcap).expect("header");
    let at = UNIX_EPOCH + Duration::from_secs(1);
    assert!(matches!(
        w.connect(at, &flow(), Side::Host),
        Err(WriteError::Io(_))
    ));
    assert!(w.is_closed());
    assert!(matches!(
        w.payload(at, &flow(), Direction::ToGuest, b"x"),
        Err(WriteError::Closed)
    ));
}

#[test]
fn connections_on_several_threads_share_one_capture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.pcapng");
    let w = CaptureWriter::create(&path).expect("create");
    assert_eq!(w.format(), CaptureFormat::PcapNg);
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let w = w.clone();
            std::thread::spawn(move || {
                let f = Flow::vsock(w.next_host_port(), 3, 1024);
                let at = UNIX_EPOCH + Duration::from_secs(100);
                w.connect(at, &f, Side::Host).expect("connect");
                for i in 0..50u32 {
                    let data = vec![t as u8; 1 + (i as usize * 997) % 70_000];
                    w.payload(at, &f, Direction::ToGuest, &data)
                        .expect("payload");
                }
                w.disconnect(at, &f, Side::Host, Close::Shutdown)
                    .expect("disconnect");
                f.host.port
            })
        })
        .collect();
    let mut ports: Vec<u32> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4, "distinct host ports");
    let records = parse_all(&std::fs::read(&path).expect("read"));
    for port in ports {
        let payload: usize = records
            .iter()
            .filter(|r| r.vsock.header.src.port == port && r.vsock.header.op == Op::Payload)
            .map(|r| r.vsock.payload.len())
            .sum();
        let want: usize = (0..50).map(|i| 1 + (i * 997) % 70_000).sum();
        assert_eq!(payload, want);
    }
}

#[test]
fn host_ports_wrap_within_the_dynamic_range() {
    let w = CaptureWriter::new(Box::new(std::io::sink()), CaptureFormat::Pcap).expect("w");
    let first = w.next_host_port();
    assert_eq!(first, FIRST_HOST_PORT);
    for _ in 0..16382 {
        w.next_host_port();
    }
    assert_eq!(w.next_host_port(), 65535);
    assert_eq!(w.next_host_port(), FIRST_HOST_PORT);
}
