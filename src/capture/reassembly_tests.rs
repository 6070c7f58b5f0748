use proptest::prelude::*;

use super::*;
use crate::capture::parser::CaptureParser;
use crate::capture::vsockmon::Flow;
use crate::capture::writer::{CaptureFormat, Close, Event, RecordEncoder};
use crate::wire::Encoder as _;
use crate::wire::fcexec::{FcexecEncoder, GuestRequest, GuestResponse};
use crate::wire::protocol::Protocol;
use crate::wire::quantix::{
    AgentMessage, AgentReadyEvent, PingRequest, PongResponse, QuantixEncoder,
};

/// Writes events into an in-memory capture and reads its records back.
struct Script {
    enc: RecordEncoder,
    out: Vec<u8>,
    t: u64,
}

impl Script {
    fn new() -> Self {
        let enc = RecordEncoder::new(CaptureFormat::Pcap);
        let mut out = Vec::new();
        enc.file_header(&mut out).expect("header");
        Self { enc, out, t: 1_000 }
    }

    fn ev(&mut self, flow: &Flow, e: Event<'_>) -> &mut Self {
        self.t += 1_000;
        self.enc
            .event(&mut self.out, self.t, flow, e)
            .expect("event");
        self
    }

    fn connect(&mut self, f: &Flow) -> &mut Self {
        self.ev(f, Event::Connect { by: Side::Host })
    }

    fn send(&mut self, f: &Flow, direction: Direction, data: &[u8]) -> &mut Self {
        self.ev(f, Event::Payload { direction, data })
    }

    fn close(&mut self, f: &Flow, by: Side, close: Close) -> &mut Self {
        self.ev(f, Event::Disconnect { by, close })
    }

    fn records(&self) -> Vec<Record> {
        let mut p = CaptureParser::new();
        let mut buf = BytesMut::from(&self.out[..]);
        let mut out = Vec::new();
        while let Some(r) = p.finish(&mut buf) {
            out.push(r.expect("record"));
        }
        out
    }

    fn items(&self, choice: ProtocolChoice) -> Vec<CaptureItem> {
        run(&self.records(), choice)
    }
}

fn run(records: &[Record], choice: ProtocolChoice) -> Vec<CaptureItem> {
    let mut r = Reassembler::new(choice, None);
    let mut out = Vec::new();
    for rec in records {
        r.push(rec);
        while let Some(i) = r.poll() {
            out.push(i);
        }
    }
    r.finish();
    while let Some(i) = r.poll() {
        out.push(i);
    }
    out
}

/// `conn:event[:direction-arrow type]` per item, for compact assertions.
fn shape(items: &[CaptureItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| match &i.kind {
            ItemKind::Frame { direction, frame } => {
                format!("{}:{}{}", i.conn, direction.arrow(), frame.type_name)
            }
            ItemKind::Error { direction, error } => {
                format!("{}:{}!{}", i.conn, direction.arrow(), error.kind())
            }
            ItemKind::Protocol { protocol, .. } => format!("{}:protocol {protocol}", i.conn),
            ItemKind::Ended { reason } => format!("{}:end {}", i.conn, reason.name()),
            ItemKind::Closed { by, reset } => {
                format!(
                    "{}:close {}{}",
                    i.conn,
                    by.name(),
                    if *reset { " reset" } else { "" }
                )
            }
            k => format!("{}:{}", i.conn, k.name()),
        })
        .collect()
}

fn qtx(msg: &AgentMessage) -> Vec<u8> {
    let mut b = BytesMut::new();
    QuantixEncoder::new().encode(msg, &mut b).expect("encode");
    b.to_vec()
}

fn ready() -> Vec<u8> {
    qtx(&AgentMessage::new(
        "ready-1",
        AgentReadyEvent {
            version: "1.0".into(),
            ..Default::default()
        },
    ))
}

fn ping(id: &str) -> Vec<u8> {
    qtx(&AgentMessage::new(id, PingRequest { sequence: 1 }))
}

fn pong(id: &str) -> Vec<u8> {
    qtx(&AgentMessage::new(
        id,
        PongResponse {
            sequence: 1,
            ..Default::default()
        },
    ))
}

const TG: Direction = Direction::ToGuest;
const TH: Direction = Direction::ToHost;

#[test]
fn a_quantix_session_decodes_in_capture_order() {
    let f = Flow::serial(1, 3);
    let mut s = Script::new();
    s.connect(&f)
        .send(&f, TH, &ready())
        .send(&f, TG, &ping("1"))
        .send(&f, TH, &pong("1"))
        .close(&f, Side::Host, Close::Shutdown)
        .close(&f, Side::Guest, Close::Shutdown);
    let items = s.items(ProtocolChoice::Auto);
    assert_eq!(
        shape(&items),
        [
            "1:open",
            "1:protocol quantix",
            "1:←agent_ready",
            "1:→ping",
            "1:←pong",
            "1:close host",
            "1:close guest",
            "1:end closed"
        ]
    );
    // Each frame carries the time of the record that completed it, and its stream offset.
    let ping = items
        .iter()
        .find_map(|i| match &i.kind {
            ItemKind::Frame { frame, .. } if frame.type_name == "ping" => Some((i.time_ns, frame)),
            _ => None,
        })
        .expect("ping");
    assert_eq!(ping.0, 4_000);
    assert_eq!(ping.1.offset, 0);
    assert_eq!(ping.1.correlation_id.as_deref(), Some("1"));
    match &items[0].kind {
        ItemKind::Opened { host, guest, by } => {
            assert_eq!((*host, *guest, *by), (f.host, f.guest, Some(Side::Host)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn frames_split_over_many_records_are_reassembled() {
    let f = Flow::vsock(49152, 3, 1024);
    let mut bytes = ping("a");
    bytes.extend(ping("b"));
    let mut s = Script::new();
    s.connect(&f);
    for chunk in bytes.chunks(3) {
        s.send(&f, TG, chunk);
    }
    let items = s.items(ProtocolChoice::Fixed(Protocol::Quantix));
    let frames: Vec<String> = shape(&items)
        .into_iter()
        .filter(|x| x.contains('→'))
        .collect();
    assert_eq!(frames, ["1:→ping", "1:→ping"]);
    assert!(shape(&items).contains(&"1:end capture_ended".to_string()));
}

#[test]
fn hybrid_vsock_handshakes_are_decoded_then_the_protocol() {
    let f = Flow::vsock(49152, 3, 52);
    let mut req = crate::wire::hybrid::connect_line(52);
    let mut enc = FcexecEncoder::new();
    let mut b = BytesMut::new();
    enc.encode_request(&GuestRequest::default(), &mut b)
        .expect("req");
    req.extend_from_slice(&b);
    let mut reply = b"OK 1073741824\n".to_vec();
    let mut b = BytesMut::new();
    enc.encode_log("hello", &mut b).expect("log");
    enc.encode_result(&GuestResponse::default(), &mut b)
        .expect("result");
    reply.extend_from_slice(&b);
    let mut s = Script::new();
    s.connect(&f).send(&f, TG, &req).send(&f, TH, &reply);
    let items = s.items(ProtocolChoice::Auto);
    let got = shape(&items);
    assert_eq!(
        &got[..6],
        [
            "1:open",
            "1:protocol fcexec",
            "1:→connect",
            "1:→request",
            "1:←ok",
            "1:←log"
        ]
    );
    assert!(matches!(
        &items[1].kind,
        ItemKind::Protocol {
            handshake: true,
            ..
        }
    ));
}

#[test]
fn concurrent_connections_keep_their_own_streams() {
    let a = Flow::vsock(49152, 3, 1024);
    let b = Flow::vsock(49153, 3, 1024);
    let p1 = ping("1");
    let p2 = ping("2");
    let mut s = Script::new();
    s.connect(&a)
        .connect(&b)
        .send(&a, TG, &p1[..5])
        .send(&b, TG, &p2[..7])
        .send(&a, TG, &p1[5..])
        .send(&b, TG, &p2[7..])
        .send(&b, TH, &pong("2"))
        .send(&a, TH, &pong("1"));
    let items = s.items(ProtocolChoice::Auto);
    let frames: Vec<(ConnId, Option<String>)> = items
        .iter()
        .filter_map(|i| match &i.kind {
            ItemKind::Frame { frame, .. } => Some((i.conn, frame.correlation_id.clone())),
            _ => None,
        })
        .collect();
    let id = |c: ConnId, s: &str| (c, Some(s.to_string()));
    assert_eq!(frames, [id(1, "1"), id(2, "2"), id(2, "2"), id(1, "1")]);
}

#[test]
fn a_reset_ends_both_streams_and_shows_the_cut_frame() {
    let f = Flow::vsock(49152, 3, 1024);
    let p = ping("1");
    let mut s = Script::new();
    s.connect(&f)
        .send(&f, TG, &p)
        .send(&f, TH, &pong("1")[..6])
        .close(&f, Side::Guest, Close::Reset)
        .send(&f, TG, &p);
    let got = shape(&s.items(ProtocolChoice::Auto));
    assert_eq!(
        got,
        [
            "1:open",
            "1:protocol quantix",
            "1:→ping",
            "1:close guest reset",
            "1:←!truncated",
            "1:end reset",
            "2:open",
            "2:protocol quantix",
            "2:→ping",
            "2:end capture_ended"
        ]
    );
}

#[test]
fn half_close_then_stray_bytes_are_reported() {
    let f = Flow::vsock(49152, 3, 1024);
    let mut s = Script::new();
    s.connect(&f)
        .send(&f, TG, &ping("1"))
        .close(&f, Side::Host, Close::Shutdown)
        .send(&f, TH, &pong("1"))
        .send(&f, TG, b"late");
    let items = s.items(ProtocolChoice::Auto);
    let got = shape(&items);
    assert!(got.contains(&"1:←pong".to_string()), "{got:?}");
    let stray = items
        .iter()
        .find(|i| matches!(i.kind, ItemKind::AfterClose { .. }))
        .expect("after close");
    assert!(stray.kind.is_error());
    assert_eq!(got.last().map(String::as_str), Some("1:end capture_ended"));
}

#[test]
fn an_accept_from_the_guest_is_not_a_new_connection() {
    let f = Flow::vsock(49152, 3, 1024);
    let mut s = Script::new();
    s.connect(&f)
        .ev(&f, Event::Connect { by: Side::Guest })
        .send(&f, TG, &ping("1"))
        .connect(&f)
        .send(&f, TG, &ping("2"));
    let got = shape(&s.items(ProtocolChoice::Auto));
    assert_eq!(
        got,
        [
            "1:open",
            "1:protocol quantix",
            "1:→ping",
            "1:end reconnected",
            "2:open",
            "2:protocol quantix",
            "2:→ping",
            "2:end capture_ended"
        ]
    );
}

#[test]
fn a_capture_started_mid_connection_still_decodes() {
    let f = Flow::vsock(49152, 3, 1024);
    let mut s = Script::new();
    s.send(&f, TH, &pong("9"));
    let items = s.items(ProtocolChoice::Auto);
    assert!(matches!(items[0].kind, ItemKind::Opened { by: None, .. }));
    assert_eq!(shape(&items)[2], "1:←pong");
}

#[test]
fn too_many_open_connections_evict_the_oldest() {
    let mut s = Script::new();
    for port in 0..=MAX_OPEN_CONNECTIONS as u32 {
        s.connect(&Flow::vsock(50000 + port, 3, 1024));
    }
    let got = shape(&s.items(ProtocolChoice::Auto));
    assert_eq!(got[MAX_OPEN_CONNECTIONS], "1:end evicted");
    assert_eq!(got.iter().filter(|x| x.ends_with("end evicted")).count(), 1);
}

#[test]
fn undecidable_bytes_are_bounded_and_decoded_raw() {
    let f = Flow::vsock(49152, 3, 1024);
    let mut s = Script::new();
    s.connect(&f).send(&f, TG, b"CONN");
    for _ in 0..5 {
        s.send(&f, TH, &[7u8; 60_000]);
    }
    let items = s.items(ProtocolChoice::Auto);
    let decided = items
        .iter()
        .position(|i| matches!(i.kind, ItemKind::Protocol { .. }))
        .expect("decided");
    // Decided before the capture ended: the pending buffer is bounded.
    assert!(
        items[decided + 1..]
            .iter()
            .any(|i| matches!(i.kind, ItemKind::Frame { .. }))
    );
}

/// Random sequences of records on a few addresses.
fn records_strategy() -> impl Strategy<Value = Vec<(u8, u8, bool, Vec<u8>)>> {
    proptest::collection::vec(
        (
            0u8..4,
            0u8..4,
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        ),
        0..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_record_sequence_is_handled_without_panic(script in records_strategy()) {
        let flows = [Flow::vsock(1, 3, 1), Flow::vsock(2, 3, 1), Flow::serial(1, 3)];
        let mut s = Script::new();
        for (which, op, guest, data) in &script {
            let f = flows[usize::from(*which) % flows.len()];
            let side = if *guest { Side::Guest } else { Side::Host };
            match op {
                0 => s.ev(&f, Event::Connect { by: side }),
                1 => s.ev(&f, Event::Disconnect { by: side, close: if data.len() % 2 == 0 { Close::Shutdown } else { Close::Reset } }),
                _ => s.ev(&f, Event::Payload { direction: side.sends(), data }),
            };
        }
        for choice in [ProtocolChoice::Auto, ProtocolChoice::Fixed(Protocol::Qga)] {
            let items = s.items(choice);
            let opened = items.iter().filter(|i| matches!(i.kind, ItemKind::Opened { .. })).count();
            let ended = items.iter().filter(|i| matches!(i.kind, ItemKind::Ended { .. })).count();
            prop_assert_eq!(opened, ended, "every connection ends once");
        }
    }
}
