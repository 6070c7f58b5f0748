//! `guestwire decode` through the real binary: fixtures, every protocol, hostile input, exit
//! codes and bounded memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/streams")
        .join(name)
}

/// Runs `guestwire decode ARGS` with standard input from `stdin`, under a 1 GiB address-space
/// limit (so an allocation of a claimed 4 GiB frame would crash the process instead of passing).
fn decode(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("prlimit")
        .arg("--as=1073741824")
        .arg("--")
        .arg(BIN)
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn guestwire");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Deterministic pseudo-random bytes (xorshift), so hostile-input tests are repeatable.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn real_qemu_ga_replies_decode_cleanly() {
    let bytes = std::fs::read(fixture("qga-to-host.bin")).expect("fixture");
    let out = decode(&["--protocol", "qga", "--json"], &bytes);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let frames = json_lines(&out);
    let types: Vec<&str> = frames.iter().filter_map(|f| f["type"].as_str()).collect();
    assert!(types.contains(&"delimiter"), "{types:?}");
    assert!(types.contains(&"return"));
    assert!(types.contains(&"error"));
    let sync = frames
        .iter()
        .find(|f| f["type"] == "return" && f["message"]["return"] == 4242)
        .expect("the guest-sync-delimited reply");
    assert!(sync["offset"].as_u64().is_some());
    assert!(
        frames
            .iter()
            .all(|f| f["len"].as_u64().is_some() && f.get("message").is_some())
    );
}

#[test]
fn garbage_in_a_real_qga_request_stream_is_a_typed_error_and_exit_1() {
    let bytes = std::fs::read(fixture("qga-to-guest.bin")).expect("fixture");
    let out = decode(&["--protocol", "qga", "--json"], &bytes);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let lines = json_lines(&out);
    let err = lines
        .iter()
        .find(|l| l.get("error").is_some())
        .expect("an error line");
    let hex = err["hex"].as_str().expect("hex");
    assert!(
        hex.starts_with(&guestwire::wire::hex::to_hex(b"this")),
        "{err}"
    );
    let offset = err["offset"].as_u64().expect("offset") as usize;
    assert_eq!(&bytes[offset..offset + 4], b"this");
    assert!(lines.iter().any(|l| l["type"] == "guest-sync-delimited"));
}

#[test]
fn auto_detection_says_what_it_saw() {
    let bytes = std::fs::read(fixture("qga-to-host.bin")).expect("fixture");
    let out = decode(&[], &bytes);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("detected qga"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_4_gib_length_prefix_is_an_error_not_an_allocation() {
    let mut stream = vec![0xff, 0xff, 0xff, 0xff];
    stream.extend(noise(1000, 7));
    for protocol in ["quantix-legacy", "fcexec", "lp:4:be", "lp:8:le"] {
        let out = decode(&["--protocol", protocol, "--json"], &stream);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{protocol}: {}",
            text(&out.stderr)
        );
        let first = &json_lines(&out)[0];
        assert_eq!(first["error"], "oversize", "{protocol}: {first}");
        assert_eq!(first["offset"], 0);
        assert!(first["hex"].as_str().expect("hex").starts_with("ffffffff"));
    }
}

#[test]
fn hostile_bytes_never_crash_any_protocol() {
    let protocols = [
        "quantix",
        "quantix-legacy",
        "fcexec",
        "qga",
        "volant",
        "ch-api",
        "raw",
        "lp:2:le:1K",
        "auto",
    ];
    for (i, protocol) in protocols.iter().enumerate() {
        let data = noise(300_000, 0x5eed + i as u64);
        let out = decode(&["--protocol", protocol], &data);
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{protocol}: {stderr}");
        match *protocol {
            "raw" => assert_eq!(out.status.code(), Some(0), "{protocol}: {stderr}"),
            "auto" => assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{protocol}: {stderr}"
            ),
            _ => assert_eq!(out.status.code(), Some(1), "{protocol}: {stderr}"),
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = decode(&["--protocol", "carrier-pigeon"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown protocol"));
    let out = decode(&["/no/such/file"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/no/such/file"));
    let out = decode(&["--protocol", "lp:3:be"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn empty_input_is_clean() {
    let out = decode(&["--protocol", "qga"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

fn types_of(out: &Output) -> Vec<String> {
    json_lines(out)
        .iter()
        .map(|l| {
            l["type"]
                .as_str()
                .or(l["error"].as_str())
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

#[test]
fn every_fixture_stream_decodes_cleanly_with_auto_detection() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "quantix-to-guest.bin",
            "quantix",
            &["ping", "execute", "file_write", "file_read", "shutdown"],
        ),
        (
            "quantix-to-host.bin",
            "quantix",
            &[
                "agent_ready",
                "telemetry",
                "pong",
                "execute_response",
                "file_write_response",
                "file_read_response",
                "telemetry",
                "shutdown_response",
                "error",
            ],
        ),
        (
            "quantix-legacy-to-host.bin",
            "quantix-legacy",
            &["agent_ready", "telemetry", "pong"],
        ),
        ("fcexec-to-guest.bin", "fcexec", &["connect", "request"]),
        (
            "fcexec-to-host.bin",
            "fcexec",
            &["ok", "log", "log", "log", "log", "log", "result"],
        ),
        (
            "ch-api-to-vmm.bin",
            "ch-api",
            &["request", "request", "request", "request"],
        ),
        ("volant-to-guest.bin", "volant", &["request"]),
    ];
    for (file, detected, expected) in cases {
        let bytes = std::fs::read(fixture(file)).expect("fixture");
        let out = decode(&["--json"], &bytes);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&format!("detected {detected}")),
            "{file}: {}",
            text(&out.stderr)
        );
        let types = types_of(&out);
        assert_eq!(&types[..expected.len()], *expected, "{file}");
    }
}

#[test]
fn quantix_json_carries_the_whole_message_with_names_and_base64() {
    let bytes = std::fs::read(fixture("quantix-to-guest.bin")).expect("fixture");
    let out = decode(&["--protocol", "quantix", "--json"], &bytes);
    let lines = json_lines(&out);
    let write = lines
        .iter()
        .find(|l| l["type"] == "file_write")
        .expect("file_write");
    assert_eq!(
        write["message"]["file_write"]["data"],
        "aGVsbG8gZnJvbSB0aGUgaG9zdAo="
    );
    assert_eq!(write["message"]["message_id"], "3");
    let shutdown = lines
        .iter()
        .find(|l| l["type"] == "shutdown")
        .expect("shutdown");
    assert_eq!(
        shutdown["message"]["shutdown"]["type"],
        "SHUTDOWN_TYPE_REBOOT"
    );
    assert!(
        shutdown["message"]["timestamp"]
            .as_str()
            .expect("RFC 3339")
            .ends_with('Z')
    );
}

#[test]
fn framing_mismatches_are_named() {
    let qtx1 = std::fs::read(fixture("quantix-to-host.bin")).expect("fixture");
    let out = decode(&["--protocol", "quantix-legacy", "--json"], &qtx1);
    assert_eq!(out.status.code(), Some(1));
    let first = &json_lines(&out)[0];
    assert_eq!(first["error"], "framing_mismatch");
    assert!(
        first["found"].as_str().expect("found").contains("1.36 GB"),
        "{first}"
    );

    let legacy = std::fs::read(fixture("quantix-legacy-to-host.bin")).expect("fixture");
    let out = decode(&["--protocol", "quantix", "--json"], &legacy);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json_lines(&out)[0]["found"]
            .as_str()
            .expect("found")
            .contains("legacy")
    );

    let out = decode(&["--protocol", "fcexec", "--json"], &legacy);
    assert!(
        json_lines(&out)[0]["found"]
            .as_str()
            .expect("found")
            .contains("protobuf")
    );

    let json = std::fs::read(fixture("fcexec-to-host.bin")).expect("fixture");
    let out = decode(
        &["--protocol", "quantix-legacy", "--handshake", "--json"],
        &json,
    );
    let lines = json_lines(&out);
    assert_eq!(lines[0]["type"], "ok");
    assert_eq!(lines[1]["error"], "framing_mismatch");
    assert_eq!(
        lines[1]["offset"], 14,
        "offsets count from the start of the stream, handshake included"
    );

    let out = decode(&["--protocol", "fcexec", "--json"], &json);
    let first = &json_lines(&out)[0];
    assert_eq!(first["error"], "oversize");
    assert!(
        first["message"]
            .as_str()
            .expect("message")
            .contains("OK reply that was not stripped"),
        "{first}"
    );
}
