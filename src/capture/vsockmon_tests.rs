use super::*;

fn header(op: Op) -> Header {
    Header {
        src: VsockAddr {
            cid: HOST_CID,
            port: 49152,
        },
        dst: VsockAddr { cid: 3, port: 1024 },
        op,
        transport: Transport::NoInfo,
        len: 0,
    }
}

#[test]
fn header_layout_is_the_kernels() {
    let mut out = Vec::new();
    header(Op::Payload).encode(&mut out);
    assert_eq!(out.len(), HEADER_LEN);
    let mut want = Vec::new();
    want.extend(2u64.to_le_bytes());
    want.extend(3u64.to_le_bytes());
    want.extend(49152u32.to_le_bytes());
    want.extend(1024u32.to_le_bytes());
    want.extend(4u16.to_le_bytes());
    want.extend(1u16.to_le_bytes());
    want.extend(0u16.to_le_bytes());
    want.extend([0, 0]);
    assert_eq!(out, want);
}

#[test]
fn round_trip_with_payload_longer_than_u16() {
    for op in [
        Op::Unknown,
        Op::Connect,
        Op::Disconnect,
        Op::Control,
        Op::Payload,
    ] {
        let mut out = Vec::new();
        header(op).encode(&mut out);
        out.extend(vec![7u8; 70_000]);
        let p = parse(&Bytes::from(out), 24).expect("parses");
        assert_eq!(p.header, header(op));
        assert_eq!(p.payload.len(), 70_000);
        assert!(p.transport_header.is_empty());
    }
}

#[test]
fn virtio_transport_header_round_trips() {
    let v = VirtioHeader {
        src: VsockAddr { cid: 3, port: 1024 },
        dst: VsockAddr {
            cid: 2,
            port: 49152,
        },
        len: 0,
        kind: VIRTIO_TYPE_STREAM,
        op: VIRTIO_OP_RST,
        flags: 0,
    };
    let mut out = Vec::new();
    Header {
        transport: Transport::Virtio,
        len: VIRTIO_HEADER_LEN as u16,
        ..header(Op::Disconnect)
    }
    .encode(&mut out);
    v.encode(&mut out);
    assert_eq!(out.len(), HEADER_LEN + VIRTIO_HEADER_LEN);
    let p = parse(&Bytes::from(out), 0).expect("parses");
    assert_eq!(p.virtio(), Some(v));
    assert!(p.payload.is_empty());
}

#[test]
fn hostile_headers_are_typed_errors() {
    let short = Bytes::from_static(&[1, 2, 3]);
    assert!(matches!(
        parse(&short, 40),
        Err(VsockmonError::Short {
            offset: 40,
            len: 3,
            ..
        })
    ));
    let mut out = Vec::new();
    header(Op::Payload).encode(&mut out);
    let mut bad_op = out.clone();
    bad_op[24] = 9;
    assert!(matches!(
        parse(&Bytes::from(bad_op), 0),
        Err(VsockmonError::UnknownOp { op: 9, .. })
    ));
    let mut bad_transport = out.clone();
    bad_transport[26] = 7;
    assert!(matches!(
        parse(&Bytes::from(bad_transport), 0),
        Err(VsockmonError::UnknownTransport { transport: 7, .. })
    ));
    let mut bad_len = out.clone();
    bad_len[28] = 0xff;
    bad_len[29] = 0xff;
    bad_len.extend([0u8; 10]);
    let err = parse(&Bytes::from(bad_len), 100).expect_err("bad len");
    assert!(matches!(
        err,
        VsockmonError::BadLen {
            len: 0xffff,
            available: 10,
            offset: 100,
            ..
        }
    ));
    assert!(err.to_string().contains("offset 100"));
    assert_eq!(err.bytes().bytes().len(), HEADER_LEN);
}

#[test]
fn flows_put_the_host_at_cid_2() {
    let f = Flow::serial(DEFAULT_SERIAL_PORT, DEFAULT_GUEST_CID);
    assert_eq!(f.ends(Direction::ToGuest).0.cid, HOST_CID);
    assert_eq!(f.ends(Direction::ToHost).0.cid, DEFAULT_GUEST_CID);
    assert_eq!(f.host.port, f.guest.port);
    let v = Flow::vsock(49152, 7, 1024);
    assert_eq!(v.ends(Direction::ToHost), (v.guest, v.host));
}
