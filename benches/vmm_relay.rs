//! Frames crossing the mock VMM with no faults, beside a direct Unix socket, in one run. The
//! same mock quantix agent answers in every row (telemetry off), so the differences are the
//! VMM's:
//!
//! - `direct`: `guestwire guest --listen unix:…` (the agent on the socket itself);
//! - `serial`: `guestwire vmm serial --guest quantix` (the virtio-serial port model between);
//! - `hvsock`: `guestwire vmm hvsock --guest-port 52=quantix` (the hybrid-vsock muxer between;
//!   the client does `CONNECT 52` first).
//!
//! `pipelined_pings`: 1,000 pings with up to 64 outstanding — frames per second one way and
//! back (throughput); `ping_round_trip`: one ping, one pong (latency). Client in this process
//! (blocking), peers as release binaries in their own processes, as in use.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use divan::Bencher;
use divan::counter::ItemsCount;
use guestwire::wire::Decoder;
use guestwire::wire::quantix::{AgentMessage, PingRequest, QuantixDecoder, QuantixEncoder};

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");
const PATHS: &[&str] = &["direct", "serial", "hvsock"];
const PIPELINE: usize = 1000;
const WINDOW: usize = 64;

fn main() {
    divan::main();
}

struct Peer {
    child: Child,
    _dir: tempfile::TempDir,
    socket: PathBuf,
    handshake: bool,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no socket");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
}

fn peer(kind: &str) -> Peer {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("vm.sock");
    let s = socket.display().to_string();
    let args: Vec<String> = match kind {
        "direct" => vec![
            "guest".into(),
            "--listen".into(),
            format!("unix:{s}"),
            "--protocol".into(),
            "quantix".into(),
        ],
        "serial" => vec![
            "vmm".into(),
            "serial".into(),
            "--socket".into(),
            s,
            "--port-name".into(),
            "org.quantix.agent.0".into(),
            "--guest".into(),
            "quantix".into(),
        ],
        _ => vec![
            "vmm".into(),
            "hvsock".into(),
            "--socket".into(),
            s,
            "--guest-port".into(),
            "52=quantix".into(),
        ],
    };
    let child = Command::new(BIN)
        .args(&args)
        .args(["--telemetry", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn guestwire");
    wait_for(&socket);
    Peer {
        child,
        _dir: dir,
        socket,
        handshake: kind == "hvsock",
    }
}

/// A connected client with its decoder; reads past the agent's `agent_ready`.
struct Client {
    stream: UnixStream,
    decoder: QuantixDecoder,
    buf: BytesMut,
    encoder: QuantixEncoder,
    seq: u64,
}

impl Client {
    fn connect(peer: &Peer) -> Self {
        let mut stream = UnixStream::connect(&peer.socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = BytesMut::new();
        if peer.handshake {
            stream.write_all(b"CONNECT 52\n").expect("connect line");
            let mut r = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            r.read_line(&mut line).expect("OK line");
            assert!(line.starts_with("OK "), "{line:?}");
            buf.extend_from_slice(r.buffer());
        }
        let mut c = Self {
            stream,
            decoder: QuantixDecoder::new(),
            buf,
            encoder: QuantixEncoder::new(),
            seq: 0,
        };
        // Settle: one ping answered means the agent is up (agent_ready is skipped on the way).
        c.send_ping();
        c.recv_pong();
        c
    }

    fn send_ping(&mut self) {
        self.seq += 1;
        let m = AgentMessage::new(self.seq.to_string(), PingRequest { sequence: self.seq });
        let bytes = self.encoder.to_bytes(&m).expect("encode");
        self.stream.write_all(&bytes).expect("write");
    }

    fn recv_pong(&mut self) {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf) {
                let frame = frame.expect("a good frame");
                if frame.message.payload.as_ref().map(|p| p.name()) == Some("pong") {
                    return;
                }
                continue;
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "the peer closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[divan::bench(args = PATHS, sample_count = 10, sample_size = 1)]
fn pipelined_pings(bencher: Bencher, kind: &str) {
    let p = peer(kind);
    let mut c = Client::connect(&p);
    bencher.counter(ItemsCount::new(PIPELINE)).bench_local(|| {
        let (mut sent, mut got) = (0, 0);
        while got < PIPELINE {
            while sent < PIPELINE && sent - got < WINDOW {
                c.send_ping();
                sent += 1;
            }
            c.recv_pong();
            got += 1;
        }
    });
}

#[divan::bench(args = PATHS, sample_count = 30, sample_size = 100)]
fn ping_round_trip(bencher: Bencher, kind: &str) {
    let p = peer(kind);
    let mut c = Client::connect(&p);
    bencher.bench_local(|| {
        c.send_ping();
        c.recv_pong();
    });
}
