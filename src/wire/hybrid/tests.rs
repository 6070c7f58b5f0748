//! Tests for the hybrid-vsock handshake: every flavour's reading rules, the client's reply
//! parser, the one-line decoder, and property tests for round trips and split invariance.

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::wire::codec::split_at_cuts;
use crate::wire::codec::{decode_all, decode_chunks};

fn connect(port: u32, rest: &[u8]) -> ConnectOutcome {
    ConnectOutcome::Connect {
        port,
        rest: rest.to_vec(),
    }
}

fn reject_reason(o: &ConnectOutcome) -> RejectReason {
    match o {
        ConnectOutcome::Reject { reason, .. } => *reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn flavour_names_round_trip() {
    for f in Flavour::ALL {
        assert_eq!(f.to_string().parse::<Flavour>(), Ok(f));
    }
    assert_eq!(
        "Cloud-Hypervisor".parse::<Flavour>(),
        Ok(Flavour::CloudHypervisor)
    );
    assert!("qemu".parse::<Flavour>().is_err());
}

#[test]
fn every_flavour_accepts_a_whole_command_in_any_case() {
    for f in Flavour::ALL {
        for cmd in [&b"CONNECT 52\n"[..], b"connect 52\n", b"CoNnEcT 52\r\n"] {
            let mut p = ConnectParser::new(f);
            assert_eq!(p.on_read(cmd), connect(52, b""), "{f} {cmd:?}");
            assert!(p.is_done());
        }
    }
}

#[test]
fn payload_after_the_newline_is_kept_for_the_guest() {
    for f in Flavour::ALL {
        let mut p = ConnectParser::new(f);
        assert_eq!(
            p.on_read(b"CONNECT 1024\n\x00\x00\x00\x02{}"),
            connect(1024, b"\x00\x00\x00\x02{}"),
            "{f}"
        );
    }
}

#[test]
fn firecracker_drops_a_command_split_across_writes() {
    let mut p = ConnectParser::new(Flavour::Firecracker);
    let o = p.on_read(b"CONNECT 5");
    assert_eq!(reject_reason(&o), RejectReason::SplitCommand);
    assert_eq!(
        reject_reason(&p.on_read(b"2\n")),
        RejectReason::Finished,
        "nothing after the decision"
    );
    // Even a first read shorter than "connect 0\n".
    let mut p = ConnectParser::new(Flavour::Firecracker);
    assert_eq!(reject_reason(&p.on_read(b"C")), RejectReason::SplitCommand);
}

#[test]
fn buffered_flavours_join_a_split_command() {
    for f in [Flavour::CloudHypervisor, Flavour::VhostDevice] {
        let mut p = ConnectParser::new(f);
        assert_eq!(p.on_read(b"CONN"), ConnectOutcome::NeedMore);
        assert_eq!(p.on_read(b"ECT 5"), ConnectOutcome::NeedMore);
        assert_eq!(p.on_read(b"2\nhello"), connect(52, b"hello"), "{f}");
    }
}

#[test]
fn the_32_byte_buffer_limit() {
    // 31 bytes + newline fits exactly.
    let fits = format!("CONNECT {}\n", "0".repeat(21) + "52");
    assert_eq!(fits.len(), CONNECT_BUF_SIZE);
    let long = format!("CONNECT {}\n", "0".repeat(22) + "52");
    for f in Flavour::ALL {
        assert_eq!(
            ConnectParser::new(f).on_read(fits.as_bytes()),
            connect(52, b"")
        );
        let o = ConnectParser::new(f).on_read(long.as_bytes());
        assert_eq!(
            reject_reason(&o),
            RejectReason::TooLong { limit: 32 },
            "{f}"
        );
        if let ConnectOutcome::Reject { line, .. } = o {
            assert_eq!(line.len(), CONNECT_BUF_SIZE, "the line is bounded");
        }
    }
    // Cloud Hypervisor counts across reads.
    let mut p = ConnectParser::new(Flavour::CloudHypervisor);
    assert_eq!(p.on_read(b"CONNECT 0000000000"), ConnectOutcome::NeedMore);
    assert_eq!(
        reject_reason(&p.on_read(b"00000000000000052\n")),
        RejectReason::TooLong { limit: 32 }
    );
}

#[test]
fn eof_and_zero_byte_reads_reject() {
    for f in Flavour::ALL {
        let mut p = ConnectParser::new(f);
        assert_eq!(reject_reason(&p.on_read(b"")), RejectReason::Eof);
        let mut p = ConnectParser::new(f);
        assert_eq!(reject_reason(&p.on_eof()), RejectReason::Eof);
    }
    let mut p = ConnectParser::new(Flavour::CloudHypervisor);
    assert_eq!(p.on_read(b"CONNECT 5"), ConnectOutcome::NeedMore);
    match p.on_eof() {
        ConnectOutcome::Reject { reason, line } => {
            assert_eq!(reason, RejectReason::Eof);
            assert_eq!(line, b"CONNECT 5");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cloud_hypervisor_rejects_a_bad_keyword_before_the_newline() {
    let mut p = ConnectParser::new(Flavour::CloudHypervisor);
    assert_eq!(
        p.on_read(b"HELLO"),
        ConnectOutcome::NeedMore,
        "fewer than 8 bytes"
    );
    assert_eq!(
        p.on_read(b" WORLD"),
        ConnectOutcome::Reject {
            reason: RejectReason::NotConnect,
            line: b"HELLO WO".to_vec()
        }
    );
    // vhost-device waits for the newline, then closes.
    let mut p = ConnectParser::new(Flavour::VhostDevice);
    assert_eq!(p.on_read(b"HELLO"), ConnectOutcome::NeedMore);
    assert_eq!(reject_reason(&p.on_read(b"\n")), RejectReason::NotConnect);
}

#[test]
fn junk_ports_are_rejected() {
    let cases: &[(&[u8], RejectReason)] = &[
        (
            b"CONNECT abc\n",
            RejectReason::BadPort("the port is not a decimal number"),
        ),
        (b"CONNECT +52\n", RejectReason::BadPort("signed port")),
        (b"CONNECT -1\n", RejectReason::BadPort("signed port")),
        (
            b"CONNECT 4294967296\n",
            RejectReason::BadPort("the port does not fit in 32 bits"),
        ),
        (
            b"CONNECT 52 x\n",
            RejectReason::BadPort("trailing garbage after the port"),
        ),
        (
            b"CONNECT 52x\n",
            RejectReason::BadPort("trailing garbage after the port"),
        ),
        (
            b"CONNECT  52\n",
            RejectReason::BadPort("extra white space before the port"),
        ),
        (
            b"CONNECT \n",
            RejectReason::BadPort("no port after the keyword"),
        ),
        (b"CONNECT52\n", RejectReason::MissingSpace),
        (b"CONNECT\t52\n", RejectReason::MissingSpace),
        (b"CONNECT\n", RejectReason::MissingSpace),
        (b"CONNECTS 5\n", RejectReason::NotConnect),
        (b"HELLO\n", RejectReason::NotConnect),
        (b"\n", RejectReason::NotConnect),
    ];
    for (cmd, want) in cases {
        assert_eq!(parse_connect_line(cmd), Err(*want), "{cmd:?}");
        for f in Flavour::ALL {
            let o = ConnectParser::new(f).on_read(cmd);
            let got = reject_reason(&o);
            if f == Flavour::CloudHypervisor && *want == RejectReason::MissingSpace {
                assert_eq!(got, RejectReason::NotConnect, "CH checks the prefix first");
            } else {
                assert_eq!(got, *want, "{f} {cmd:?}");
            }
        }
    }
    assert_eq!(parse_connect_line(b"CONNECT 4294967295\n"), Ok(u32::MAX));
    assert_eq!(parse_connect_line(b"CONNECT 0\n"), Ok(0));
}

#[test]
fn reject_becomes_a_bad_handshake_error() {
    let e = RejectReason::SplitCommand.to_wire_error(b"CONNECT 5");
    assert_eq!(e.kind(), "bad_handshake");
    assert!(e.to_string().contains("split across writes"), "{e}");
}

#[test]
fn ok_lines_per_flavour() {
    assert_eq!(
        ok_line(Flavour::Firecracker, 52, 1 << 30),
        b"OK 1073741824\n"
    );
    assert_eq!(
        ok_line(Flavour::CloudHypervisor, 52, 1 << 30),
        b"OK 1073741824\n"
    );
    assert_eq!(ok_line(Flavour::VhostDevice, 52, 1 << 30), b"OK 52\n");
    assert_eq!(connect_line(1024), b"CONNECT 1024\n");
}

#[test]
fn local_ports_round_robin_and_skip_used_ones() {
    let mut a = LocalPortAllocator::new();
    assert_eq!(a.allocate(), Some(LOCAL_PORT_START));
    assert_eq!(a.allocate(), Some(LOCAL_PORT_START + 1));
    a.release(LOCAL_PORT_START);
    assert!(!a.is_in_use(LOCAL_PORT_START));
    assert_eq!(
        a.allocate(),
        Some(LOCAL_PORT_START + 2),
        "round robin, not lowest free"
    );
    // Wrap from the top of the range back to the start, skipping a port in use.
    let mut a = LocalPortAllocator::new();
    assert_eq!(a.allocate(), Some(LOCAL_PORT_START));
    a.last = LOCAL_PORT_END - 1;
    assert_eq!(a.allocate(), Some(LOCAL_PORT_START + 1));
    assert_eq!(a.in_use_count(), 2);
}

fn ok_parse(chunks: &[&[u8]]) -> (Option<Result<u32, WireError>>, BytesMut) {
    let mut p = OkParser::new();
    let mut buf = BytesMut::new();
    let mut result = None;
    for c in chunks {
        buf.extend_from_slice(c);
        if result.is_none() {
            result = p.parse(&mut buf);
        }
    }
    if result.is_none() {
        result = p.parse_eof(&mut buf);
    }
    (result, buf)
}

#[test]
fn ok_reply_keeps_the_guest_bytes_after_it() {
    let (r, rest) = ok_parse(&[b"OK 10737", b"41824\n\x00\x00\x00\x05hello"]);
    assert_eq!(r, Some(Ok(1 << 30)));
    assert_eq!(&rest[..], b"\x00\x00\x00\x05hello");
    let (r, rest) = ok_parse(&[b"OK 52\r\n"]);
    assert_eq!(r, Some(Ok(52)));
    assert!(rest.is_empty());
}

#[test]
fn ok_reply_errors() {
    let bad = |chunks: &[&[u8]]| -> String {
        match ok_parse(chunks).0 {
            Some(Err(e @ WireError::BadHandshake { .. })) => e.to_string(),
            other => panic!("expected a bad handshake, got {other:?}"),
        }
    };
    assert!(bad(&[]).contains("is the agent running in the guest?"));
    assert!(bad(&[b"OK 5"]).contains("middle of its reply"));
    assert!(bad(&[b"OK52\n"]).contains("without the space"));
    assert!(bad(&[b"OK\n"]).contains("without the space"));
    assert!(bad(&[b"ok 52\n"]).contains("does not start with"));
    assert!(bad(&[b"ERR no listener\n"]).contains("does not start with"));
    assert!(bad(&[b"OK -5\n"]).contains("signed port"));
    assert!(bad(&[b"OK 5 6\n"]).contains("trailing garbage"));
    let long = [b'O'; 200];
    assert!(bad(&[&long]).contains("first 64 bytes"));
    // The over-long check fires at 64 bytes, without waiting for more.
    let mut p = OkParser::new();
    let mut buf = BytesMut::from(&[b'x'; 64][..]);
    assert!(matches!(p.parse(&mut buf), Some(Err(_))));
    assert!(p.is_done());
    assert_eq!(p.parse(&mut buf), None);
    assert_eq!(p.parse_eof(&mut buf), None);
}

#[test]
fn handshake_decoder_yields_one_line_and_leaves_the_rest() {
    let mut d = HandshakeDecoder::new(Direction::ToGuest);
    let mut buf = BytesMut::from(&b"CONNECT 52\nQTX\x01\x00\x00\x00\x00"[..]);
    let f = d.decode(&mut buf).expect("a frame").expect("ok");
    assert_eq!(f.message, HandshakeLine::Connect { port: 52 });
    assert_eq!((f.offset, f.wire_len), (0, 11));
    assert_eq!(d.decode(&mut buf), None);
    assert_eq!(d.decode_eof(&mut buf), None);
    assert_eq!(&buf[..], b"QTX\x01\x00\x00\x00\x00");
    assert_eq!(d.offset(), 11);

    let got = decode_all(
        &mut HandshakeDecoder::new(Direction::ToHost),
        b"OK 1073741824\n",
    );
    let f = got[0].as_ref().expect("ok");
    assert_eq!(f.message, HandshakeLine::Ok { port: 1 << 30 });
    assert_eq!(f.message.type_name(), "ok");
    assert_eq!(f.message.summary(), "port=1073741824");
    assert_eq!(
        f.message.to_json(),
        serde_json::json!({"port": 1073741824u32})
    );
    assert_eq!(HandshakeLine::Connect { port: 1 }.type_name(), "connect");
}

#[test]
fn handshake_decoder_errors() {
    let kinds = |dir, s: &[u8]| -> Vec<String> {
        decode_all(&mut HandshakeDecoder::new(dir), s)
            .into_iter()
            .map(|r| match r {
                Ok(f) => format!("frame {:?}", f.message),
                Err(e) => e.to_string(),
            })
            .collect()
    };
    let e = kinds(Direction::ToHost, b"");
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("nothing listens"), "{e:?}");
    let e = kinds(Direction::ToGuest, b"");
    assert!(e[0].contains("without sending a CONNECT"), "{e:?}");
    let e = kinds(Direction::ToGuest, b"CONNECT 5");
    assert!(e[0].contains("inside the handshake line"), "{e:?}");
    let e = kinds(Direction::ToGuest, b"OK 5\n");
    assert!(e[0].contains("does not start with CONNECT"), "{e:?}");
    let e = kinds(Direction::ToHost, b"CONNECT 5\n");
    assert!(e[0].contains("does not start with"), "{e:?}");
    let e = kinds(Direction::ToGuest, &[0u8; 100]);
    assert_eq!(e.len(), 1, "one report, then nothing: {e:?}");
    assert!(e[0].contains("first 32 bytes"), "{e:?}");
}

fn outcomes_to_strings<M: std::fmt::Debug>(v: Vec<Decoded<M>>) -> Vec<String> {
    v.into_iter().map(|r| format!("{r:?}")).collect()
}

fn handshake_stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<u32>().prop_map(connect_line),
        any::<u32>().prop_map(|p| format!("OK {p}\n").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..100),
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(p, tail)| {
            let mut v = format!("OK {p}\n").into_bytes();
            v.extend(tail);
            v
        }),
        "[A-Za-z0-9 +\\-\r\n]{0,80}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn handshake_lines_round_trip(port in any::<u32>(), f in 0usize..3) {
        let flavour = Flavour::ALL[f];
        prop_assert_eq!(ConnectParser::new(flavour).on_read(&connect_line(port)), connect(port, b""));
        let got = decode_all(&mut HandshakeDecoder::new(Direction::ToGuest), &connect_line(port));
        prop_assert_eq!(got.len(), 1);
        prop_assert_eq!(&got[0].as_ref().expect("frame").message, &HandshakeLine::Connect { port });
        let reply = ok_line(flavour, port, port);
        let got = decode_all(&mut HandshakeDecoder::new(Direction::ToHost), &reply);
        prop_assert_eq!(&got[0].as_ref().expect("frame").message, &HandshakeLine::Ok { port });
        prop_assert_eq!(ok_parse(&[&reply]).0, Some(Ok(port)));
    }

    #[test]
    fn ok_parser_is_split_invariant(data in handshake_stream(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let whole = ok_parse(&[&data]);
        let chunks = split_at_cuts(&data, &cuts);
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(ok_parse(&refs), whole);
    }

    #[test]
    fn handshake_decoder_is_split_invariant(data in handshake_stream(), cuts in proptest::collection::vec(any::<usize>(), 0..8), to_host in any::<bool>()) {
        let dir = if to_host { Direction::ToHost } else { Direction::ToGuest };
        let whole = outcomes_to_strings(decode_all(&mut HandshakeDecoder::new(dir), &data));
        let split = outcomes_to_strings(decode_chunks(&mut HandshakeDecoder::new(dir), split_at_cuts(&data, &cuts)));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn buffered_connect_parsing_is_split_invariant(data in handshake_stream(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        // Cloud Hypervisor and vhost-device give the same port and payload whatever the reads;
        // rejection reasons may differ only in that a split command can still be too long later.
        for f in [Flavour::CloudHypervisor, Flavour::VhostDevice] {
            let run = |chunks: Vec<Vec<u8>>| {
                let mut p = ConnectParser::new(f);
                let mut rest = Vec::new();
                let mut outcome = None;
                for c in chunks {
                    if outcome.is_some() {
                        rest.extend(c);
                        continue;
                    }
                    match p.on_read(&c) {
                        ConnectOutcome::NeedMore => {}
                        ConnectOutcome::Connect { port, rest: r } => {
                            rest.extend(r);
                            outcome = Some(Ok(port));
                        }
                        ConnectOutcome::Reject { reason, line } => outcome = Some(Err((reason, line))),
                    }
                }
                let outcome = outcome.unwrap_or_else(|| match p.on_eof() {
                    ConnectOutcome::Reject { reason, line } => Err((reason, line)),
                    other => panic!("eof gave {other:?}"),
                });
                if outcome.is_err() { rest.clear(); }
                (outcome, rest)
            };
            let whole = run(vec![data.clone()]);
            let split = run(split_at_cuts(&data, &cuts).into_iter().filter(|c| !c.is_empty()).collect());
            prop_assert_eq!(split, whole);
        }
    }

    #[test]
    fn garbage_never_panics_and_stays_bounded(data in proptest::collection::vec(any::<u8>(), 0..300), f in 0usize..3) {
        let mut p = ConnectParser::new(Flavour::ALL[f]);
        for c in data.chunks(7) {
            match p.on_read(c) {
                ConnectOutcome::NeedMore => prop_assert!(p.partial.len() < CONNECT_BUF_SIZE),
                ConnectOutcome::Reject { line, .. } => prop_assert!(line.len() <= CONNECT_BUF_SIZE),
                ConnectOutcome::Connect { .. } => {}
            }
        }
        let _ = p.on_eof();
        let mut ok = OkParser::new();
        let mut buf = BytesMut::from(&data[..]);
        let _ = ok.parse_eof(&mut buf);
        let _ = decode_all(&mut HandshakeDecoder::new(Direction::ToGuest), &data);
        let _ = decode_all(&mut HandshakeDecoder::new(Direction::ToHost), &data);
    }
}
