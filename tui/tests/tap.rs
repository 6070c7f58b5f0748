//! The live tap source: a real tap between Unix sockets in a tempdir, a qga exchange through it,
//! frames in the store and in the capture file.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use guestwire::io::Endpoint;
use guestwire::tap::TapConfig;
use guestwire::wire::hybrid::Flavour;
use guestwire::wire::protocol::Protocol;
use guestwire_tui::sources::Source;
use guestwire_tui::sources::tap::TapSource;
use guestwire_tui::store::Store;

#[test]
fn tap_frames_reach_the_store_and_the_capture() {
    let dir = tempfile::tempdir().expect("dir");
    let up = dir.path().join("agent.sock");
    let listen = dir.path().join("tap.sock");
    let cap = dir.path().join("tap.pcap");
    let agent = UnixListener::bind(&up).expect("bind");
    let agent_thread = std::thread::spawn(move || {
        let (s, _) = agent.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut line = String::new();
        r.read_line(&mut line).expect("read");
        (&s).write_all(b"{\"return\": {}}\n").expect("write");
        line.clear();
        let _ = r.read_line(&mut line);
    });
    let config = TapConfig {
        listen: Endpoint::Unix(listen.clone()),
        upstream: Endpoint::Unix(up.clone()),
        flavour: Flavour::Firecracker,
        faults: Vec::new(),
        protocol: Some(Protocol::Qga),
        seed: 0,
        connect_deadline: Duration::from_secs(5),
        max_connections: None,
    };
    let mut tap = TapSource::start(config, Some(&cap)).expect("tap");
    let mut store = Store::new(100, tap.label());
    {
        let c = UnixStream::connect(&listen).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        (&c).write_all(b"{\"execute\": \"guest-ping\"}\n")
            .expect("write");
        let mut reply = String::new();
        BufReader::new(&c).read_line(&mut reply).expect("reply");
        assert!(reply.contains("return"), "{reply}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = Vec::new();
    while store.summary().frames() < 2 {
        assert!(Instant::now() < deadline, "frames: {:?}", store.frames());
        tap.poll(0, 100, &mut buf);
        for e in buf.drain(..) {
            store.ingest(e);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let types: Vec<&str> = store
        .frames()
        .iter()
        .map(|r| r.type_name.as_str())
        .collect();
    assert_eq!(types, ["guest-ping", "return"], "{:?}", store.frames());
    assert!(store.frames()[1].latency_ns.is_some());
    assert_eq!(tap.dropped(), 0);
    tap.stop();
    agent_thread.join().expect("agent");
    let from_file = support::loaded_path(cap.to_str().expect("utf8"), "tap.pcap", 100);
    let types: Vec<&str> = from_file
        .frames()
        .iter()
        .map(|r| r.type_name.as_str())
        .collect();
    assert_eq!(types, ["guest-ping", "return"]);
}
