//! Captures through their real interfaces: tshark 4.0 dissects what `CaptureWriter` writes as
//! vsock with the right CIDs, ports, ops and payload bytes (pcap and pcapng); `guestwire decode`
//! reads a capture recorded from live traffic (`fixtures/captures/quantix-session.pcap`, recorded
//! through the tap by `scripts/record-fixtures.sh`), as text and as JSON, reports bad captures in
//! place with exit 1, and follows a capture that another process is still writing.
//!
//! Without `tshark` the tshark tests are skipped with a message, except under `CI=true`, where CI
//! installs it (`scripts/install-deps.sh tshark`) and its absence fails them.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use guestwire::capture::vsockmon::DEFAULT_GUEST_CID;
use guestwire::capture::{CaptureFormat, CaptureWriter, Close, Flow, Side};
use guestwire::wire::Direction;
use guestwire::wire::Encoder as _;
use guestwire::wire::quantix::{AgentMessage, PingRequest, PongResponse, QuantixEncoder};

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");

/// How long a child process may take to show what a test waits for.
const DEADLINE: Duration = Duration::from_secs(20);

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/captures/quantix-session.pcap")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn decode(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("decode")
        .args(args)
        .output()
        .expect("run guestwire decode")
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    text(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn at(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn qtx(msg: &AgentMessage) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    QuantixEncoder::new().encode(msg, &mut b).expect("encode");
    b.to_vec()
}

fn ping(id: &str) -> Vec<u8> {
    qtx(&AgentMessage::new(id, PingRequest { sequence: 7 }))
}

fn pong(id: &str) -> Vec<u8> {
    qtx(&AgentMessage::new(
        id,
        PongResponse {
            sequence: 7,
            ..Default::default()
        },
    ))
}

/// Whether tshark can run here; under `CI=true` its absence is a failure.
fn have_tshark() -> bool {
    if Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("tshark is missing, but CI installs it (scripts/install-deps.sh tshark)");
    }
    eprintln!("SKIPPED: tshark not found; install the Debian package tshark to run this test");
    false
}

/// `tshark -r FILE -T fields -e F...`, one row of fields per packet.
fn tshark_fields(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(out.status.success(), "tshark: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// The records the tshark test writes: (src_cid, dst_cid, src_port, dst_port, op, payload).
type Row = (u64, u64, u32, u32, u16, Vec<u8>);

fn write_known_capture(path: &Path) -> Vec<Row> {
    let w = CaptureWriter::create(path).expect("create");
    let serial = Flow::serial(2, DEFAULT_GUEST_CID);
    let vsock = Flow::vsock(w.next_host_port(), 7, 1024);
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let p = ping("1");
    let q = pong("1");
    let t = 1_795_000_000_000_000_001;
    w.connect(at(t), &serial, Side::Host).expect("w");
    w.payload(at(t + 1), &serial, Direction::ToGuest, &p)
        .expect("w");
    w.payload(at(t + 2), &serial, Direction::ToHost, &q)
        .expect("w");
    w.connect(at(t + 3), &vsock, Side::Host).expect("w");
    w.payload(at(t + 4), &vsock, Direction::ToHost, &big)
        .expect("w");
    w.disconnect(at(t + 5), &vsock, Side::Guest, Close::Reset)
        .expect("w");
    w.disconnect(at(t + 6), &serial, Side::Host, Close::Shutdown)
        .expect("w");
    let (h, g) = (serial.host, serial.guest);
    let (vh, vg) = (vsock.host, vsock.guest);
    let split = 65535 - 32;
    vec![
        (h.cid, g.cid, h.port, g.port, 1, vec![]),
        (h.cid, g.cid, h.port, g.port, 4, p),
        (g.cid, h.cid, g.port, h.port, 4, q),
        (vh.cid, vg.cid, vh.port, vg.port, 1, vec![]),
        (vg.cid, vh.cid, vg.port, vh.port, 4, big[..split].to_vec()),
        (vg.cid, vh.cid, vg.port, vh.port, 4, big[split..].to_vec()),
        (vg.cid, vh.cid, vg.port, vh.port, 2, vec![]),
        (h.cid, g.cid, h.port, g.port, 2, vec![]),
    ]
}

#[test]
fn tshark_dissects_our_captures_as_vsock() {
    if !have_tshark() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["known.pcap", "known.pcapng"] {
        let path = dir.path().join(name);
        let want = write_known_capture(&path);
        let rows = tshark_fields(
            &path,
            &[
                "vsock.src_cid",
                "vsock.dst_cid",
                "vsock.src_port",
                "vsock.dst_port",
                "vsock.op",
                "vsock.payload",
                "frame.time_epoch",
                "vsock.trans",
            ],
        );
        assert_eq!(rows.len(), want.len(), "{name}: {rows:?}");
        for (i, (row, w)) in rows.iter().zip(&want).enumerate() {
            let got = (
                row[0].parse::<u64>().expect("src_cid"),
                row[1].parse::<u64>().expect("dst_cid"),
                row[2].parse::<u32>().expect("src_port"),
                row[3].parse::<u32>().expect("dst_port"),
                row[4].parse::<u16>().expect("op"),
                row[5].replace(':', ""),
            );
            let want_row = (w.0, w.1, w.2, w.3, w.4, guestwire::wire::hex::to_hex(&w.5));
            assert_eq!(got, want_row, "{name} record {}", i + 1);
            // Nanosecond timestamps survive (pcapng thanks to if_tsresol = 9).
            let frac = row[6].split('.').nth(1).expect("fraction");
            let want_ns = [1u64, 2, 3, 4, 5, 5, 6, 7][i];
            assert_eq!(frac, format!("{want_ns:09}"), "{name} record {}", i + 1);
        }
        // The reset is shown with its virtio header (transport 2), the rest as no_info (1).
        let transports: Vec<&str> = rows.iter().map(|r| r[7].as_str()).collect();
        assert_eq!(
            transports,
            ["1", "1", "1", "1", "1", "1", "2", "1"],
            "{name}"
        );
    }
}

#[test]
fn tshark_reads_the_recorded_fixture() {
    if !have_tshark() {
        return;
    }
    let rows = tshark_fields(&fixture(), &["vsock.src_cid", "vsock.dst_cid", "vsock.op"]);
    assert!(rows.len() >= 10, "{rows:?}");
    assert_eq!(rows[0], ["2", "3", "1"], "a connect from the host first");
    assert!(rows.iter().all(|r| (r[0] == "2") != (r[1] == "2")));
    assert!(rows.iter().any(|r| r[0] == "3" && r[2] == "4"));
}

#[test]
fn decode_prints_the_recorded_session_as_text() {
    let out = decode(&[fixture().to_str().expect("path")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let expect_in_order = [
        // The tap's host end: a port per connection from 49152 (docs/captures.md).
        "open host 2:49152 ↔ guest 3:1 (host connected)",
        "protocol quantix",
        "←  agent_ready",
        "→  ping",
        "←  pong",
        "→  execute",
        "←  execute_response",
        "→  file_write",
        "←  file_write_response",
        "→  file_read",
        "←  file_read_response",
        "→  shutdown",
        "←  shutdown_response",
        "host closed",
        "end (closed)",
        "summary: ",
    ];
    let mut from = 0;
    for want in expect_in_order {
        let at = stdout[from..]
            .find(want)
            .unwrap_or_else(|| panic!("{want:?} missing (after byte {from}):\n{stdout}"));
        from += at + want.len();
    }
    assert!(stdout.contains("←  telemetry"), "{stdout}");
    assert!(stdout.contains("request→reply: 5 pairs, p50 "), "{stdout}");
    assert!(stdout.contains("unanswered requests: 0"), "{stdout}");
    assert!(stdout.contains("closes: 2, resets: 0"), "{stdout}");
    assert!(stdout.contains(" 0 errors"), "{stdout}");
}

#[test]
fn decode_json_has_one_object_per_frame_and_a_summary() {
    let out = decode(&["--json", fixture().to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = json_lines(&out.stdout);
    let (summary, items) = lines.split_last().expect("lines");
    let frames: Vec<&serde_json::Value> = items.iter().filter(|l| l["event"] == "frame").collect();
    assert_eq!(frames.len(), 12);
    for f in &frames {
        assert_eq!(f["conn"], 1);
        assert!(f["time_ns"].as_u64().is_some() && f["offset"].as_u64().is_some());
        assert!(f["len"].as_u64().is_some() && f["message"].is_object());
        assert!(f["summary"].is_string());
    }
    let ping = frames.iter().find(|f| f["type"] == "ping").expect("ping");
    assert_eq!(ping["direction"], "to_guest");
    assert_eq!(ping["offset"], 0, "the host sent nothing before the ping");
    let pong = frames.iter().find(|f| f["type"] == "pong").expect("pong");
    assert_eq!(pong["direction"], "to_host");
    assert_eq!(pong["id"], ping["id"]);
    assert!(pong["time_ns"].as_u64() >= ping["time_ns"].as_u64());
    let s = &summary["summary"];
    assert_eq!(s["frames"], 12);
    assert_eq!(s["frames_by_type"]["file_read_response"], 1);
    assert_eq!(s["connections"], 1);
    assert_eq!(s["protocols"]["quantix"], 1);
    assert_eq!(s["latency_ns"]["count"], 5);
    assert!(s["latency_ns"]["p50"].as_u64() <= s["latency_ns"]["p99"].as_u64());
    assert_eq!(s["unanswered"], 0);
    assert_eq!(s["unsolicited"], 2);
    assert_eq!(s["errors"], 0);
    assert!(s["bytes"]["to_guest"].as_u64().is_some_and(|b| b > 100));
    assert_eq!(s["closes"], 2);
    assert_eq!(s["ended"]["closed"], 1);
}

#[test]
fn decode_with_a_fixed_protocol_and_pcapng() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.pcapng");
    let w = CaptureWriter::create(&path).expect("create");
    assert_eq!(w.format(), CaptureFormat::PcapNg);
    let f = Flow::vsock(49152, 3, 1024);
    let mut req = b"CONNECT 1024\n".to_vec();
    req.extend(ping("a"));
    let mut rep = b"OK 1024\n".to_vec();
    rep.extend(pong("a"));
    w.connect(at(10), &f, Side::Host).expect("w");
    w.payload(at(11), &f, Direction::ToGuest, &req).expect("w");
    w.payload(at(12), &f, Direction::ToHost, &rep).expect("w");
    drop(w);
    let out = decode(&["--json", "--protocol", "quantix", path.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = json_lines(&out.stdout);
    let types: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "frame")
        .filter_map(|l| l["type"].as_str())
        .collect();
    assert_eq!(types, ["connect", "ping", "ok", "pong"]);
    let proto = lines.iter().find(|l| l["event"] == "protocol").expect("p");
    assert_eq!(proto["handshake"], true);
    let summary = &lines.last().expect("summary")["summary"];
    assert_eq!(
        summary["latency_ns"]["count"], 2,
        "connect→ok and ping→pong"
    );
    assert_eq!(summary["ended"]["capture_ended"], 1);
}

#[test]
fn bad_captures_are_reported_in_place_with_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.pcap");
    let w = CaptureWriter::create(&path).expect("create");
    let f = Flow::serial(1, 3);
    w.connect(at(1), &f, Side::Host).expect("w");
    w.payload(at(2), &f, Direction::ToGuest, &ping("1"))
        .expect("w");
    w.payload(at(3), &f, Direction::ToHost, b"QTX\x01\xff\xff\xff\xffjunk")
        .expect("w");
    w.payload(at(4), &f, Direction::ToGuest, &ping("2"))
        .expect("w");
    drop(w);
    // A crash mid-record: the file ends inside the last record.
    let mut bytes = std::fs::read(&path).expect("read");
    let whole = bytes.len();
    bytes.truncate(whole - 5);
    std::fs::write(&path, &bytes).expect("write");
    let out = decode(&["--json", path.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines = json_lines(&out.stdout);
    let oversize = lines
        .iter()
        .find(|l| l["event"] == "error")
        .expect("a wire error in place");
    assert_eq!(oversize["error"], "oversize");
    assert_eq!(oversize["direction"], "to_host");
    assert_eq!(oversize["offset"], 0);
    assert!(
        oversize["hex"]
            .as_str()
            .expect("hex")
            .starts_with("51545801ffffffff")
    );
    let cut = lines
        .iter()
        .find(|l| l["event"] == "bad_record")
        .expect("the cut record");
    assert_eq!(cut["error"], "truncated_record");
    let off = cut["offset"].as_u64().expect("offset") as usize;
    assert!(off > 24 && off < whole - 5, "{cut}");
    let s = &lines.last().expect("summary")["summary"];
    assert_eq!(s["bad_records"], 1);
    assert_eq!(s["unanswered"], 1, "ping 1 got no answer");
    // Text mode shows the same in place.
    let out = decode(&[path.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ERROR oversize"), "{stdout}");
    assert!(stdout.contains("ERROR truncated_record"), "{stdout}");
}

#[test]
fn capture_usage_errors_exit_2() {
    let fx = fixture();
    let fx = fx.to_str().expect("p");
    let out = decode(&["--direction", "to-guest", fx]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("raw streams"));
    let out = decode(&["--follow"]);
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw.bin");
    std::fs::write(&raw, b"not a capture at all").expect("write");
    let out = decode(&["--follow", raw.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pcap"));
}

/// A `guestwire decode --follow` child, killed and reaped on drop; its stdout lines arrive on a
/// channel.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Follower {
    fn start(path: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["decode", "--follow", "--json"])
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Lines until one satisfies `want`; panics at the deadline.
    fn until(
        &self,
        what: &str,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let end = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}; saw {seen:?}"));
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            seen.push(v.clone());
            if want(&v) {
                return seen;
            }
        }
    }

    /// The lines left once the child has exited (its stdout closed).
    fn rest(&self) -> Vec<String> {
        let end = Instant::now() + DEADLINE;
        let mut out = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => out.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return out,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("stdout still open after exit"),
            }
        }
    }

    /// SIGTERM, then the exit status within the deadline.
    fn stop(&mut self) -> Option<i32> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < end,
                "no exit within {DEADLINE:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn follow_reads_a_capture_while_it_is_written() {
    use guestwire::capture::{Event, RecordEncoder};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.pcap");
    // The follower starts before the file has even a header.
    std::fs::write(&path, b"").expect("create");
    let mut f = Follower::start(&path);

    let flow = Flow::serial(1, 3);
    let mut enc = RecordEncoder::new(CaptureFormat::Pcap);
    let mut head = Vec::new();
    enc.file_header(&mut head).expect("header");
    enc.event(&mut head, 100, &flow, Event::Connect { by: Side::Host })
        .expect("encode");
    let p = ping("1");
    let ping_event = Event::Payload {
        direction: Direction::ToGuest,
        data: &p,
    };
    enc.event(&mut head, 101, &flow, ping_event)
        .expect("encode");
    let mut pong_record = Vec::new();
    let q = pong("1");
    let pong_event = Event::Payload {
        direction: Direction::ToHost,
        data: &q,
    };
    enc.event(&mut pong_record, 102, &flow, pong_event)
        .expect("encode");
    // Everything up to the ping, and the first 20 bytes of the pong's record: the follower
    // prints the ping, then meets a partially written record, which it must wait out.
    head.extend_from_slice(&pong_record[..20]);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    file.write_all(&head).expect("write");
    f.until("the ping", |v| v["type"] == "ping");
    file.write_all(&pong_record[20..]).expect("write");
    let seen = f.until("the pong", |v| v["type"] == "pong");
    assert!(
        seen.iter()
            .all(|v| v["event"] != "bad_record" && v["event"] != "error"),
        "{seen:?}"
    );

    let code = f.stop();
    let rest = f.rest();
    let summary: serde_json::Value =
        serde_json::from_str(rest.last().expect("a summary after SIGTERM")).expect("JSON");
    assert_eq!(summary["summary"]["frames"], 2, "{summary}");
    assert_eq!(summary["summary"]["latency_ns"]["count"], 1);
    assert_eq!(summary["summary"]["errors"], 0);
    assert_eq!(code, Some(0));
}
