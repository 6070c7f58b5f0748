use proptest::prelude::*;

use super::*;
use crate::capture::vsockmon::{Header, Op, Transport, VsockAddr};
use crate::capture::writer::{CaptureFormat, Event, RecordEncoder};
use crate::capture::{Flow, Side};
use crate::wire::Direction;

fn vsock_data(op: Op, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Header {
        src: VsockAddr { cid: 2, port: 5 },
        dst: VsockAddr { cid: 3, port: 6 },
        op,
        transport: Transport::NoInfo,
        len: 0,
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

/// A classic pcap file built field by field.
fn pcap(big: bool, nanos: bool, linktype: u32, records: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let w32 = |out: &mut Vec<u8>, v: u32| {
        out.extend(if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    let w16 = |out: &mut Vec<u8>, v: u16| {
        out.extend(if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    let mut out = Vec::new();
    w32(&mut out, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut out, 2);
    w16(&mut out, 4);
    w32(&mut out, 0);
    w32(&mut out, 0);
    w32(&mut out, 65535);
    w32(&mut out, linktype);
    for (sec, frac, data) in records {
        w32(&mut out, *sec);
        w32(&mut out, *frac);
        w32(&mut out, data.len() as u32);
        w32(&mut out, data.len() as u32);
        out.extend_from_slice(data);
    }
    out
}

fn all(bytes: &[u8]) -> Vec<Result<Record, CaptureError>> {
    let mut p = CaptureParser::new();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(item) = p.finish(&mut buf) {
        out.push(item);
    }
    out
}

#[test]
fn microsecond_and_big_endian_files_read_too() {
    for big in [false, true] {
        for nanos in [false, true] {
            let frac = if nanos { 999_999_999 } else { 999_999 };
            let f = pcap(
                big,
                nanos,
                271,
                &[(7, frac, vsock_data(Op::Payload, b"hi"))],
            );
            let got = all(&f);
            assert_eq!(got.len(), 1);
            let r = got[0].as_ref().expect("record");
            let want = if nanos { 7_999_999_999 } else { 7_999_999_000 };
            assert_eq!(r.time_ns, want, "big={big} nanos={nanos}");
            assert_eq!(&r.vsock.payload[..], b"hi");
            assert_eq!(r.offset, 24);
        }
    }
    assert_eq!(
        sniff_format(&pcap(true, false, 271, &[])),
        Some(FileFormat::Pcap {
            nanos: false,
            big_endian: true
        })
    );
}

#[test]
fn a_partial_last_record_waits_then_is_reported_at_the_end() {
    let f = pcap(
        false,
        true,
        271,
        &[(1, 0, vsock_data(Op::Payload, b"abcdef"))],
    );
    let cut = &f[..f.len() - 3];
    let mut p = CaptureParser::new();
    let mut buf = BytesMut::from(cut);
    assert!(p.next(&mut buf).is_none(), "waits for the rest");
    assert!(!p.is_failed());
    // The rest arrives: the record is whole.
    buf.extend_from_slice(&f[f.len() - 3..]);
    let r = p.next(&mut buf).expect("record").expect("valid");
    assert_eq!(&r.vsock.payload[..], b"abcdef");
    // Cut for good: a typed error at the record's offset.
    let got = all(cut);
    match &got[..] {
        [
            Err(CaptureError::Truncated {
                offset: 24,
                expected,
                available,
                ..
            }),
        ] => {
            assert_eq!(*expected, (f.len() - 24) as u64);
            assert_eq!(*available, (cut.len() - 24) as u64);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &all(&f[..30])[..],
        [Err(CaptureError::Truncated { expected: 16, .. })]
    ));
}

#[test]
fn a_huge_record_length_is_an_error_not_an_allocation() {
    let mut f = pcap(false, true, 271, &[]);
    f.extend(1u32.to_le_bytes());
    f.extend(0u32.to_le_bytes());
    f.extend(0xffff_fff0u32.to_le_bytes());
    f.extend(0xffff_fff0u32.to_le_bytes());
    f.extend([0u8; 100]);
    let mut p = CaptureParser::new();
    let mut buf = BytesMut::from(&f[..]);
    match p.next(&mut buf) {
        Some(Err(e @ CaptureError::Oversize { offset: 24, .. })) => {
            assert!(e.is_fatal());
            assert_eq!(e.bytes().bytes().len(), 16);
        }
        other => panic!("{other:?}"),
    }
    assert!(buf.capacity() < 4096, "nothing reserved for the claim");
    assert!(p.next(&mut buf).is_none());
    assert!(p.finish(&mut buf).is_none());
}

#[test]
fn other_files_and_link_types_are_refused() {
    assert!(matches!(
        &all(b"hello world, not a capture")[..],
        [Err(CaptureError::NotACapture { .. })]
    ));
    let eth = pcap(false, true, 1, &[(1, 0, vec![0; 40])]);
    match &all(&eth)[..] {
        [Err(e @ CaptureError::LinkType { linktype: 1, .. })] => assert!(e.is_fatal()),
        other => panic!("{other:?}"),
    }
    assert!(all(b"").is_empty());
}

#[test]
fn bad_records_are_skipped_and_reading_goes_on() {
    let mut bad_len = vsock_data(Op::Payload, b"");
    bad_len[28] = 200;
    let f = pcap(
        false,
        true,
        271,
        &[
            (1, 2_000_000_000, vsock_data(Op::Payload, b"x")),
            (1, 0, bad_len),
            (1, 0, vec![1, 2, 3]),
            (2, 0, vsock_data(Op::Payload, b"ok")),
        ],
    );
    let got = all(&f);
    assert_eq!(got.len(), 4);
    assert!(matches!(&got[0], Err(CaptureError::BadRecord { .. })));
    assert!(matches!(&got[1], Err(CaptureError::Vsockmon(_))));
    assert!(matches!(&got[2], Err(CaptureError::Vsockmon(_))));
    let r = got[3].as_ref().expect("record");
    assert_eq!((r.index, &r.vsock.payload[..]), (4, &b"ok"[..]));
}

/// A pcapng block.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = 12 + body.len().div_ceil(4) * 4;
    let mut out = Vec::new();
    out.extend(kind.to_le_bytes());
    out.extend((total as u32).to_le_bytes());
    out.extend_from_slice(body);
    out.resize(total - 4, 0);
    out.extend((total as u32).to_le_bytes());
    out
}

fn shb() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(0x1a2b_3c4du32.to_le_bytes());
    body.extend([1, 0, 0, 0]);
    body.extend((-1i64).to_le_bytes());
    block(0x0a0d_0d0a, &body)
}

fn idb(linktype: u16, options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(linktype.to_le_bytes());
    body.extend([0, 0]);
    body.extend(0u32.to_le_bytes());
    for (code, value) in options {
        body.extend(code.to_le_bytes());
        body.extend((value.len() as u16).to_le_bytes());
        body.extend_from_slice(value);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    block(1, &body)
}

fn epb(iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(iface.to_le_bytes());
    body.extend(((ts >> 32) as u32).to_le_bytes());
    body.extend((ts as u32).to_le_bytes());
    body.extend((data.len() as u32).to_le_bytes());
    body.extend((data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    block(6, &body)
}

#[test]
fn pcapng_timestamps_follow_if_tsresol_and_if_tsoffset() {
    let mut f = shb();
    f.extend(idb(271, &[]));
    f.extend(idb(271, &[(9, vec![0x80 | 10])]));
    f.extend(idb(
        271,
        &[(9, vec![9]), (14, 100i64.to_le_bytes().to_vec())],
    ));
    f.extend(idb(1, &[]));
    f.extend(epb(0, 5_000_001, &vsock_data(Op::Payload, b"a")));
    f.extend(epb(1, 3 * 1024 + 512, &vsock_data(Op::Payload, b"b")));
    f.extend(epb(2, 7, &vsock_data(Op::Payload, b"c")));
    f.extend(epb(3, 7, &[0u8; 60]));
    f.extend(epb(9, 7, &vsock_data(Op::Payload, b"d")));
    let got = all(&f);
    assert!(matches!(
        &got[0],
        Err(CaptureError::LinkType {
            interface: Some(3),
            linktype: 1,
            ..
        })
    ));
    let times: Vec<u64> = got[1..4]
        .iter()
        .map(|r| r.as_ref().expect("record").time_ns)
        .collect();
    assert_eq!(times, [5_000_001_000, 3_500_000_000, 100_000_000_007]);
    assert!(matches!(&got[4], Err(CaptureError::BadRecord { .. })));
    assert_eq!(got.len(), 5, "the ethernet packet is skipped");
    assert_eq!(got[3].as_ref().expect("record").index, 3);
}

#[test]
fn broken_pcapng_framing_is_fatal_and_typed() {
    let mut odd = shb();
    let mut b = epb(0, 1, b"x");
    b[4] = 13;
    odd.extend(b);
    assert!(matches!(
        &all(&odd)[..],
        [Err(CaptureError::BadBlock { .. })]
    ));
    let mut trailer = shb();
    let mut b = epb(0, 1, b"xxxx");
    let n = b.len();
    b[n - 4] ^= 4;
    trailer.extend(b);
    assert!(matches!(
        &all(&trailer)[..],
        [Err(CaptureError::BadBlock { .. })]
    ));
    let mut huge = shb();
    huge.extend(6u32.to_le_bytes());
    huge.extend(0x7fff_fff0u32.to_le_bytes());
    huge.extend([0u8; 32]);
    assert!(matches!(
        &all(&huge)[..],
        [Err(CaptureError::Oversize { .. })]
    ));
    let mut caplen = shb();
    caplen.extend(idb(271, &[]));
    let mut b = epb(0, 1, b"abcd");
    b[20] = 200;
    caplen.extend(b);
    assert!(matches!(
        &all(&caplen)[..],
        [Err(CaptureError::BadRecord { .. })]
    ));
}

#[test]
fn a_second_section_resets_the_interfaces() {
    let mut f = shb();
    f.extend(idb(271, &[(9, vec![9])]));
    f.extend(epb(0, 5, &vsock_data(Op::Payload, b"a")));
    f.extend(shb());
    f.extend(epb(0, 5, &vsock_data(Op::Payload, b"b")));
    let got = all(&f);
    assert!(got[0].is_ok());
    assert!(matches!(&got[1], Err(CaptureError::BadRecord { .. })));
}

fn written(format: CaptureFormat) -> Vec<u8> {
    let mut enc = RecordEncoder::new(format);
    let mut out = Vec::new();
    enc.file_header(&mut out).expect("header");
    let f = Flow::vsock(49152, 3, 1024);
    enc.event(&mut out, 1, &f, Event::Connect { by: Side::Host })
        .expect("e");
    for i in 0..20u8 {
        let data = vec![i; usize::from(i) * 5];
        let direction = if i % 2 == 0 {
            Direction::ToGuest
        } else {
            Direction::ToHost
        };
        enc.event(
            &mut out,
            2 + u64::from(i),
            &f,
            Event::Payload {
                direction,
                data: &data,
            },
        )
        .expect("e");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = all(&data);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        ng in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut f = if ng { shb() } else { pcap(false, true, 271, &[]) };
        if ng {
            f.extend(idb(271, &[]));
        }
        f.extend(data);
        let _ = all(&f);
    }

    #[test]
    fn mutated_captures_never_panic(
        ng in any::<bool>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut f = written(if ng { CaptureFormat::PcapNg } else { CaptureFormat::Pcap });
        for (at, v) in flips {
            let n = f.len();
            f[at % n] = v;
        }
        let _ = all(&f);
    }

    #[test]
    fn any_split_gives_the_same_records(
        ng in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let f = written(if ng { CaptureFormat::PcapNg } else { CaptureFormat::Pcap });
        let whole = all(&f);
        let mut p = CaptureParser::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in crate::wire::codec::split_at_cuts(&f, &cuts) {
            buf.extend_from_slice(&piece);
            while let Some(item) = p.next(&mut buf) {
                got.push(item);
            }
        }
        while let Some(item) = p.finish(&mut buf) {
            got.push(item);
        }
        prop_assert_eq!(got, whole);
    }
}
