//! Writes the byte-stream fixtures in `fixtures/streams/` for the agent protocols that have no
//! real peer on a development machine (quantix, fcexec, volant, ch-api), using guestwire's own
//! encoders, so that what is committed is real framing and never hand-typed bytes. (The qga
//! streams come from the real qemu-ga: `scripts/record-qga-stream.py`.)
//!
//! Run from the repository root: `cargo run --example record_streams`.

use std::fs;
use std::path::Path;

use bytes::BytesMut;
use guestwire::wire::Encoder;
use guestwire::wire::fcexec::{FcexecEncoder, FcexecMessage, GuestRequest, GuestResponse};
use guestwire::wire::http::{HttpEncoder, HttpMessage};
use guestwire::wire::hybrid::connect_line;
use guestwire::wire::quantix::{
    AgentMessage, AgentReadyEvent, ErrorEvent, ExecuteRequest, ExecuteResponse, FileReadRequest,
    FileReadResponse, FileWriteRequest, FileWriteResponse, LegacyEncoder, PingRequest,
    PongResponse, QuantixEncoder, ShutdownRequest, ShutdownResponse, TelemetryReport, Timestamp,
};

fn at(seconds: i64) -> Timestamp {
    Timestamp {
        seconds: 1_795_000_000 + seconds,
        nanos: 0,
    }
}

fn quantix_to_guest() -> Vec<AgentMessage> {
    vec![
        AgentMessage::new("1", PingRequest { sequence: 1 }).with_timestamp(at(1)),
        AgentMessage::new(
            "2",
            ExecuteRequest {
                command: "uname".into(),
                args: vec!["-a".into()],
                timeout_seconds: 10,
                wait_for_exit: true,
                max_output_bytes: 1 << 20,
                ..Default::default()
            },
        )
        .with_timestamp(at(2)),
        AgentMessage::new(
            "3",
            FileWriteRequest {
                path: "/etc/motd".into(),
                data: bytes::Bytes::from_static(b"hello from the host\n"),
                eof: true,
                mode: 0o644,
                total_chunks: 1,
                ..Default::default()
            },
        )
        .with_timestamp(at(3)),
        AgentMessage::new(
            "4",
            FileReadRequest {
                path: "/etc/hostname".into(),
                chunk_size: 65536,
                ..Default::default()
            },
        )
        .with_timestamp(at(4)),
        AgentMessage::new(
            "5",
            ShutdownRequest {
                r#type: 1,
                delay_seconds: 5,
                message: "maintenance".into(),
            },
        )
        .with_timestamp(at(5)),
    ]
}

fn quantix_to_host() -> Vec<AgentMessage> {
    vec![
        AgentMessage::new(
            "ready-1",
            AgentReadyEvent {
                version: "0.1.0".into(),
                os_name: "Debian GNU/Linux".into(),
                os_version: "12".into(),
                kernel_version: "6.1.0-28-amd64".into(),
                architecture: "x86_64".into(),
                hostname: "vm-42".into(),
                ip_addresses: vec!["10.0.2.15".into()],
                capabilities: vec!["exec".into(), "file".into(), "telemetry".into()],
            },
        )
        .with_timestamp(at(0)),
        AgentMessage::new(
            "tel-1",
            TelemetryReport {
                cpu_usage_percent: 3.5,
                memory_total_bytes: 4 << 30,
                memory_used_bytes: 1_288_490_188,
                memory_available_bytes: 2_800_000_000,
                load_avg_1: 0.08,
                process_count: 97,
                uptime_seconds: 42,
                hostname: "vm-42".into(),
                ..Default::default()
            },
        )
        .with_timestamp(at(1)),
        AgentMessage::new(
            "1",
            PongResponse {
                sequence: 1,
                version: "0.1.0".into(),
                uptime_seconds: 43,
            },
        )
        .with_timestamp(at(1)),
        AgentMessage::new(
            "2",
            ExecuteResponse {
                exit_code: 0,
                stdout: "Linux vm-42 6.1.0-28-amd64 #1 SMP Debian x86_64 GNU/Linux\n".into(),
                duration_ms: 3,
                ..Default::default()
            },
        )
        .with_timestamp(at(2)),
        AgentMessage::new(
            "3",
            FileWriteResponse {
                success: true,
                bytes_written: 20,
                ..Default::default()
            },
        )
        .with_timestamp(at(3)),
        AgentMessage::new(
            "4",
            FileReadResponse {
                success: true,
                data: bytes::Bytes::from_static(b"vm-42\n"),
                eof: true,
                total_size: 6,
                mode: 0o644,
                ..Default::default()
            },
        )
        .with_timestamp(at(4)),
        AgentMessage::new(
            "tel-2",
            TelemetryReport {
                cpu_usage_percent: 1.25,
                memory_total_bytes: 4 << 30,
                memory_used_bytes: 1_300_000_000,
                uptime_seconds: 47,
                hostname: "vm-42".into(),
                ..Default::default()
            },
        )
        .with_timestamp(at(5)),
        AgentMessage::new(
            "5",
            ShutdownResponse {
                accepted: true,
                error: String::new(),
            },
        )
        .with_timestamp(at(5)),
        AgentMessage::new(
            "err-1",
            ErrorEvent {
                severity: 1,
                code: "UNSUPPORTED".into(),
                message: "request list_services is not implemented".into(),
                details: Default::default(),
            },
        )
        .with_timestamp(at(6)),
    ]
}

fn encode_all<E: Encoder<M>, M>(mut enc: E, msgs: &[M]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for m in msgs {
        if let Err(e) = enc.encode(m, &mut out) {
            panic!("fixture message does not encode: {e}");
        }
    }
    out.to_vec()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    if let Err(e) = fs::write(&path, bytes) {
        panic!("{}: {e}", path.display());
    }
    println!("{:>7} bytes  {}", bytes.len(), path.display());
}

fn main() {
    let dir = Path::new("fixtures/streams");
    if let Err(e) = fs::create_dir_all(dir) {
        panic!("{}: {e}", dir.display());
    }

    write(
        dir,
        "quantix-to-guest.bin",
        &encode_all(QuantixEncoder::new(), &quantix_to_guest()),
    );
    write(
        dir,
        "quantix-to-host.bin",
        &encode_all(QuantixEncoder::new(), &quantix_to_host()),
    );
    write(
        dir,
        "quantix-legacy-to-host.bin",
        &encode_all(LegacyEncoder::new(), &quantix_to_host()),
    );

    let request = FcexecMessage::Request(GuestRequest {
        runtime: "python3".into(),
        code: "import sys\nfor i in range(5): print('step', i)\n".into(),
        entrypoint: "main.py".into(),
        timeout_s: 30,
        ..Default::default()
    });
    let mut to_guest = connect_line(1024);
    to_guest.extend(encode_all(FcexecEncoder::new(), &[request]));
    write(dir, "fcexec-to-guest.bin", &to_guest);
    let mut replies: Vec<FcexecMessage> = (0..5)
        .map(|i| FcexecMessage::Log {
            line: format!("step {i}"),
        })
        .collect();
    replies.push(FcexecMessage::Result(GuestResponse {
        exit_code: 0,
        output: "step 0\nstep 1\nstep 2\nstep 3\nstep 4\n".into(),
        error: String::new(),
        log_lines: None,
    }));
    let mut to_host = b"OK 1073741824\n".to_vec();
    to_host.extend(encode_all(FcexecEncoder::new(), &replies));
    write(dir, "fcexec-to-host.bin", &to_host);

    let ch_requests = vec![
        HttpMessage::request("GET", "/api/v1/vmm.ping", Vec::new()),
        HttpMessage::request(
            "PUT",
            "/api/v1/vm.create",
            br#"{"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":268435456},"payload":{"kernel":"/var/lib/vm/vmlinux"},"vsock":{"cid":3,"socket":"/run/vm/vsock.sock"}}"#.to_vec(),
        )
        .with_header("Content-Type", "application/json"),
        HttpMessage::request("PUT", "/api/v1/vm.boot", Vec::new()),
        HttpMessage::request("PUT", "/api/v1/vm.pause", Vec::new()),
    ];
    write(
        dir,
        "ch-api-to-vmm.bin",
        &encode_all(HttpEncoder::new(), &ch_requests),
    );
    let ch_replies = vec![
        HttpMessage::response(200, br#"{"build_version":"v48.0","version":"48.0.0","pid":4242,"features":["kvm"]}"#.to_vec())
            .with_header("Content-Type", "application/json"),
        HttpMessage::response(204, Vec::new()),
        HttpMessage::response(204, Vec::new()),
        HttpMessage::response(
            500,
            br#"["Error from API","The VM could not be paused","Invalid state: VM is not running"]"#.to_vec(),
        )
        .with_header("Content-Type", "application/json"),
    ];
    write(
        dir,
        "ch-api-from-vmm.bin",
        &encode_all(HttpEncoder::new(), &ch_replies),
    );

    let volant = HttpMessage::request(
        "POST",
        "/v1/plugin/my-plugin/actions/process",
        br#"{"input":"data"}"#.to_vec(),
    )
    .with_header("Host", "vsock")
    .with_header("Content-Type", "application/json");
    write(
        dir,
        "volant-to-guest.bin",
        &encode_all(HttpEncoder::new(), &[volant]),
    );
}
