//! The mock qga agent against bytes measured on the real qemu-ga 7.2.22 (the recorded fixture
//! and the probes listed in `EXPECTED`), plus its exec, file and shutdown commands.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::guest::exec::ExecMode;

const FIXTURE_TO_GUEST: &[u8] = include_bytes!("../../../fixtures/streams/qga-to-guest.bin");
const FIXTURE_TO_HOST: &[u8] = include_bytes!("../../../fixtures/streams/qga-to-host.bin");

fn echo_cfg(root: Option<std::path::PathBuf>) -> Arc<GuestConfig> {
    Arc::new(GuestConfig {
        root,
        exec: ExecMode::Echo,
        ..GuestConfig::default()
    })
}

/// Sends `input`, half-closes, and returns everything the agent wrote before it saw the end.
async fn exchange(agent: &QgaAgent, input: &[u8]) -> Vec<u8> {
    let (mut host, guest) = tokio::io::duplex(1 << 20);
    let agent = agent.clone();
    let server = tokio::spawn(async move { agent.serve(guest).await });
    host.write_all(input).await.expect("write");
    host.shutdown().await.expect("shutdown");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), host.read_to_end(&mut out))
        .await
        .expect("agent answers within 10 s")
        .expect("read");
    server.await.expect("join").expect("serve");
    out
}

/// A connection kept open: write a request, read one reply line.
struct Conn {
    host: DuplexStream,
}

impl Conn {
    fn open(agent: &QgaAgent) -> Self {
        let (host, guest) = tokio::io::duplex(1 << 20);
        let agent = agent.clone();
        tokio::spawn(async move { agent.serve(guest).await });
        Self { host }
    }

    async fn call(&mut self, request: &str) -> Value {
        self.host
            .write_all(request.as_bytes())
            .await
            .expect("write");
        let mut line = Vec::new();
        let read = async {
            loop {
                let b = self.host.read_u8().await.expect("read");
                if b == b'\n' {
                    break;
                }
                line.push(b);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("reply within 10 s");
        serde_json::from_slice(&line).expect("reply is JSON")
    }
}

#[tokio::test]
async fn replays_the_recorded_session_byte_for_byte() {
    let agent = QgaAgent::new(echo_cfg(None));
    let got = exchange(&agent, FIXTURE_TO_GUEST).await;
    let split = |b: &[u8]| -> Vec<Vec<u8>> {
        b.split_inclusive(|&c| c == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    let (want, got) = (split(FIXTURE_TO_HOST), split(&got));
    assert_eq!(
        want.len(),
        got.len(),
        "{}",
        String::from_utf8_lossy(&got.concat())
    );
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if w.starts_with(b"{\"return\": {\"version\"") {
            // guest-info: the mock's own version and command list, in qemu's shape.
            let v: Value = serde_json::from_slice(g).expect("json");
            assert_eq!(v["return"]["version"], GuestConfig::default().version);
            assert_eq!(
                v["return"]["supported_commands"][0],
                json!({"enabled": true, "name": "guest-get-host-name", "success-response": true})
            );
            assert!(g.starts_with(b"{\"return\": {\"version\": \"guestwire-mock "));
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(w),
            String::from_utf8_lossy(g),
            "reply line {i}"
        );
        assert_eq!(w, g, "reply line {i}");
    }
}

/// Requests and qemu-ga 7.2.22's replies, measured.
const EXPECTED: &[(&[u8], &[u8])] = &[
    (b"{\"execute\":\"guest-ping\",\"id\":7}", b"{\"return\": {}, \"id\": 7}\n"),
    (
        b"{\"execute\":\"nope\",\"id\":1}",
        b"{\"id\": 1, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not been found\"}}\n",
    ),
    (
        b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1},\"id\":\"x\"}",
        b"\xff{\"return\": 1, \"id\": \"x\"}\n",
    ),
    (
        b"{\"execute\":\"guest-ping\",\"id\":[null,true,false,1.5e3,1E2,0.1,-2.5e-3,123456789012345678]}",
        b"{\"return\": {}, \"id\": [null, true, false, 1500, 100, 0.10000000000000001, -0.0025000000000000001, 123456789012345678]}\n",
    ),
    (
        b"{\"execute\":\"guest-ping\",\"id\":{\"a\":[1,2.5,true]}}",
        b"{\"return\": {}, \"id\": {\"a\": [1, 2.5, true]}}\n",
    ),
    (
        b"42\n",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}\n",
    ),
    (
        b"{}\n",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input lacks member 'execute'\"}}\n",
    ),
    (
        b"{\"id\":1,\"foo\":2}\n",
        b"{\"id\": 1, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'foo' is unexpected\"}}\n",
    ),
    (
        b"{\"execute\":1,\"id\":5}\n",
        b"{\"id\": 5, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'execute' must be a string\"}}\n",
    ),
    (
        b"{\"execute\":\"guest-ping\",\"arguments\":[]}\n",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'arguments' must be an object\"}}\n",
    ),
    (
        b"{\"exec-oob\":\"guest-ping\"}\n",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'exec-oob' is unexpected\"}}\n",
    ),
    (
        b"{\"execute\":\"guest-sync\"}\n",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'id' is missing\"}}\n",
    ),
    (
        b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1.5}}\n",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid parameter type for 'id', expected: integer\"}}\n",
    ),
    (
        b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":-9223372036854775808}}\n",
        b"{\"return\": -9223372036854775808}\n",
    ),
    (
        b"{\"execute\":\"guest-ping\",\"arguments\":{\"x\":1}}",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'x' is unexpected\"}}\n",
    ),
    (
        b"{\"execute\":\"caf\xc3\xa9\"}\n",
        b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command caf\\u00E9 has not been found\"}}\n",
    ),
    (
        b"{\"execute\":\"a\\ud83d\\ude00b\"}\n",
        b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command a\\uD83D\\uDE00b has not been found\"}}\n",
    ),
    (
        b"{\"execute\":\"a\xc0\x80b\"}\n",
        b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command a\\u0000b has not been found\"}}\n",
    ),
    (
        b"{\"execute\":\"x\\u0001\\u007f/\\/\"}\n",
        b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command x\\u0001\\u007F// has not been found\"}}\n",
    ),
    (b"{'execute':'guest-ping'}\n", b"{\"return\": {}}\n"),
    (
        b"{\"execute\":\"guest-p\xffing\"}",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"guest-p\\uFFFD'\"}}\n{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, expecting value\"}}\n",
    ),
    (
        b"-\n",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '-\\n'\"}}\n",
    ),
    (
        b"{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":12345}}",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"handle '12345' has not been found\"}}\n",
    ),
    (
        b"{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":999999}}",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid parameter 'pid'\"}}\n",
    ),
    (
        b"{\"execute\":\"guest-exec\",\"arguments\":{}}",
        b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'path' is missing\"}}\n",
    ),
];

#[tokio::test]
async fn answers_like_qemu_ga_measured() {
    for (input, want) in EXPECTED {
        let agent = QgaAgent::new(echo_cfg(None));
        let got = exchange(&agent, input).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want),
            "request {}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(&got[..], *want);
    }
}

#[tokio::test]
async fn parser_state_outlives_a_connection() {
    let agent = QgaAgent::new(echo_cfg(None));
    assert!(exchange(&agent, b"{\"execute\":").await.is_empty());
    assert_eq!(
        exchange(&agent, b"\"guest-ping\"}").await,
        b"{\"return\": {}}\n"
    );
}

#[tokio::test]
async fn exec_in_echo_mode_then_status_once() {
    let agent = QgaAgent::new(echo_cfg(None));
    let mut c = Conn::open(&agent);
    let r = c
        .call(r#"{"execute":"guest-exec","arguments":{"path":"/bin/echo","arg":["hi"],"capture-output":true}}"#)
        .await;
    let pid = r["return"]["pid"].as_i64().expect("pid");
    assert_eq!(pid, exec::FIRST_PID);
    let status = format!(r#"{{"execute":"guest-exec-status","arguments":{{"pid":{pid}}}}}"#);
    let mut done = Value::Null;
    for _ in 0..100 {
        done = c.call(&status).await;
        if done["return"]["exited"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        done["return"],
        json!({"exitcode": 0, "exited": true, "out-data": "L2Jpbi9lY2hvIGhp", "out-truncated": false})
    );
    assert_eq!(
        c.call(&status).await["error"]["desc"],
        "Invalid parameter 'pid'"
    );
    let r = c
        .call(r#"{"execute":"guest-exec","arguments":{"path":"x","input-data":"aGk="}}"#)
        .await;
    assert_eq!(r["error"]["class"], "GenericError");
}

#[tokio::test]
async fn files_round_trip_inside_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = QgaAgent::new(echo_cfg(Some(dir.path().to_path_buf())));
    let mut c = Conn::open(&agent);
    let h = c
        .call(r#"{"execute":"guest-file-open","arguments":{"path":"/f.txt","mode":"w"}}"#)
        .await["return"]
        .as_i64()
        .expect("handle");
    assert_eq!(h, files::FIRST_HANDLE);
    let w = format!(
        r#"{{"execute":"guest-file-write","arguments":{{"handle":{h},"buf-b64":"aGVsbG8gd29ybGQ="}}}}"#
    );
    assert_eq!(
        c.call(&w).await,
        json!({"return": {"count": 11, "eof": false}})
    );
    let r = format!(r#"{{"execute":"guest-file-read","arguments":{{"handle":{h}}}}}"#);
    assert_eq!(
        c.call(&r).await["error"]["desc"],
        "failed to read file: Bad file descriptor"
    );
    let close = format!(r#"{{"execute":"guest-file-close","arguments":{{"handle":{h}}}}}"#);
    assert_eq!(c.call(&close).await, json!({"return": {}}));
    assert_eq!(
        c.call(&close).await["error"]["desc"],
        format!("handle '{h}' has not been found")
    );
    assert_eq!(
        std::fs::read(dir.path().join("f.txt")).expect("on disk"),
        b"hello world"
    );

    let h = c
        .call(r#"{"execute":"guest-file-open","arguments":{"path":"/f.txt"}}"#)
        .await["return"]
        .as_i64()
        .expect("handle");
    let read = |count: Option<u64>| match count {
        Some(n) => {
            format!(r#"{{"execute":"guest-file-read","arguments":{{"handle":{h},"count":{n}}}}}"#)
        }
        None => format!(r#"{{"execute":"guest-file-read","arguments":{{"handle":{h}}}}}"#),
    };
    assert_eq!(
        c.call(&read(Some(5))).await["return"],
        json!({"count": 5, "buf-b64": "aGVsbG8=", "eof": false})
    );
    assert_eq!(
        c.call(&read(None)).await["return"],
        json!({"count": 6, "buf-b64": "IHdvcmxk", "eof": true})
    );
    assert_eq!(
        c.call(&read(None)).await["return"],
        json!({"count": 0, "buf-b64": "", "eof": true})
    );
    assert_eq!(
        c.call(&read(Some(50331649))).await["error"]["desc"],
        "value '50331649' is invalid for argument count"
    );

    let r = c
        .call(r#"{"execute":"guest-file-open","arguments":{"path":"/missing"}}"#)
        .await;
    assert_eq!(
        r["error"]["desc"],
        "failed to open file '/missing' (mode: 'r'): No such file or directory"
    );
    let r = c
        .call(r#"{"execute":"guest-file-open","arguments":{"path":"/../../etc/passwd"}}"#)
        .await;
    assert_eq!(
        r["error"]["desc"],
        "failed to open file '/../../etc/passwd' (mode: 'r'): Permission denied"
    );
    let r = c
        .call(r#"{"execute":"guest-file-open","arguments":{"path":"/f.txt","mode":"zz"}}"#)
        .await;
    assert_eq!(r["error"]["desc"], "invalid file open mode 'zz'");
}

#[tokio::test]
async fn shutdown_is_silent_and_recorded() {
    let agent = QgaAgent::new(echo_cfg(None));
    let got = exchange(
        &agent,
        b"{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"reboot\"}}{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"off\"}}{\"execute\":\"guest-sync\",\"arguments\":{\"id\":3}}",
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'mode' expects 'halt', 'powerdown' or 'reboot'\"}}\n{\"return\": 3}\n"
    );
    assert_eq!(agent.shutdowns(), vec!["reboot".to_string()]);
}

#[tokio::test]
async fn one_client_at_a_time() {
    let agent = QgaAgent::new(echo_cfg(None));
    let mut first = Conn::open(&agent);
    assert_eq!(
        first.call(r#"{"execute":"guest-ping"}"#).await["return"],
        json!({})
    );
    let (mut second, guest) = tokio::io::duplex(4096);
    let a2 = agent.clone();
    tokio::spawn(async move { a2.serve(guest).await });
    second
        .write_all(br#"{"execute":"guest-ping"}"#)
        .await
        .expect("write");
    let mut b = [0u8; 1];
    let starved = tokio::time::timeout(Duration::from_millis(100), second.read(&mut b)).await;
    assert!(starved.is_err(), "the second client waits");
    drop(first);
    let mut line = [0u8; 15];
    tokio::time::timeout(Duration::from_secs(10), second.read_exact(&mut line))
        .await
        .expect("served after the first left")
        .expect("read");
    assert_eq!(&line, b"{\"return\": {}}\n");
}
