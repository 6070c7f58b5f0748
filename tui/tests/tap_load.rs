//! No frame missing under a bounded load: 5,000 quantix pings written at once through a real tap
//! (Unix sockets in a tempdir, a sink upstream) reach both the store and the capture file.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use guestwire::host::quantix::Framing;
use guestwire::io::Endpoint;
use guestwire::tap::TapConfig;
use guestwire::wire::hybrid::Flavour;
use guestwire::wire::protocol::Protocol;
use guestwire::wire::quantix::{AgentMessage, Payload, PingRequest};
use guestwire_tui::app::step;
use guestwire_tui::sources::Source;
use guestwire_tui::sources::tap::TapSource;
use guestwire_tui::store::Store;

const PINGS: u64 = 5_000;

fn pings(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let m = AgentMessage {
            message_id: i.to_string(),
            timestamp: None,
            payload: Some(Payload::Ping(PingRequest { sequence: i })),
        };
        out.extend_from_slice(&Framing::Qtx1.encode(&m).expect("encode"));
    }
    out
}

#[test]
fn every_frame_of_a_burst_reaches_the_store_and_the_capture() {
    let dir = tempfile::tempdir().expect("dir");
    let up = dir.path().join("sink.sock");
    let listen = dir.path().join("tap.sock");
    let cap = dir.path().join("load.pcap");
    let sink = UnixListener::bind(&up).expect("bind");
    let sink_thread = std::thread::spawn(move || {
        let (mut s, _) = sink.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        loop {
            match s.read(&mut buf).expect("read") {
                0 => return total,
                n => total += n,
            }
        }
    });
    let config = TapConfig {
        listen: Endpoint::Unix(listen.clone()),
        upstream: Endpoint::Unix(up),
        flavour: Flavour::Firecracker,
        faults: Vec::new(),
        protocol: Some(Protocol::Quantix),
        seed: 0,
        connect_deadline: Duration::from_secs(5),
        max_connections: None,
    };
    let mut tap = TapSource::start(config, Some(&cap)).expect("tap");
    let mut store = Store::new(1000, tap.label());
    let bytes = pings(PINGS);
    {
        let mut c = UnixStream::connect(&listen).expect("connect");
        c.write_all(&bytes).expect("write");
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        c.read_to_end(&mut rest).expect("the tap closes");
    }
    assert_eq!(sink_thread.join().expect("sink"), bytes.len());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = Vec::new();
    while store.summary().frames() < PINGS {
        assert!(
            Instant::now() < deadline,
            "{} frames",
            store.summary().frames()
        );
        step(&mut store, &mut tap, 0, &mut buf);
        std::thread::yield_now();
    }
    assert_eq!(store.summary().frames(), PINGS);
    assert_eq!(store.source_dropped, 0);
    assert_eq!(
        store.dropped(),
        PINGS - 1000,
        "the ring keeps the last 1000"
    );
    tap.stop();
    let from_file = support::loaded_path(cap.to_str().expect("utf8"), "load.pcap", 10);
    assert_eq!(from_file.summary().frames(), PINGS);
    assert_eq!(from_file.summary().errors(), 0);
    assert_eq!(
        from_file.summary().frames_by_type().get("ping"),
        Some(&PINGS)
    );
}
