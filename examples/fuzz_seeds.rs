//! Writes the fuzz seed corpora under `fixtures/corpus/<target>/`, one file per seed, named after
//! what it is. Every seed is made with guestwire's own encoders (or, for qemu-ga, is the stream
//! recorded from the real agent), plus a few hostile ones (a 4 GiB length, the QTX1 magic read as
//! a length, one quantix framing inside the other, JSON inside protobuf frames, ...).
//!
//! Targets whose decoder takes a parameter from the first byte (see `guestwire::fuzzing`) get that
//! selector byte in front of the stream.
//!
//! Run from the repository root: `cargo run --example fuzz_seeds`. The output is deterministic;
//! commit it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use serde_json::{Value, json};

use guestwire::fuzzing::BYTE_TARGETS;
use guestwire::wire::Encoder;
use guestwire::wire::fcexec::{
    FcexecEncoder, FcexecMessage, GuestRequest, GuestResponse, LogLines,
};
use guestwire::wire::frame::{Endian, LpConfig, LpEncoder};
use guestwire::wire::http::{HttpEncoder, HttpMessage};
use guestwire::wire::hybrid::{Flavour, connect_line, ok_line};
use guestwire::wire::qga::{QgaEncoder, QgaMessage};
use guestwire::wire::quantix::{AgentMessage, LegacyEncoder, Payload, QuantixEncoder, Timestamp};

/// The corpus folders being written, and how much went into them.
struct Corpus {
    root: PathBuf,
    files: usize,
    bytes: usize,
}

impl Corpus {
    /// Empties the folder of every byte-oriented target under `root`.
    fn new(root: &Path) -> Self {
        for (target, _) in BYTE_TARGETS {
            let dir = root.join(target);
            if dir.exists() {
                fs::remove_dir_all(&dir).expect("clear an old corpus folder");
            }
        }
        Self {
            root: root.to_path_buf(),
            files: 0,
            bytes: 0,
        }
    }

    /// Writes one seed.
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        assert!(
            BYTE_TARGETS.iter().any(|(t, _)| *t == target),
            "no target {target}"
        );
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("corpus folder");
        let path = dir.join(name);
        assert!(!path.exists(), "two seeds named {target}/{name}");
        fs::write(&path, bytes).expect("write a seed");
        self.files += 1;
        self.bytes += bytes.len();
    }

    /// Writes one seed behind a selector byte.
    fn put_sel(&mut self, target: &str, name: &str, selector: u8, bytes: &[u8]) {
        let mut all = vec![selector];
        all.extend_from_slice(bytes);
        self.put(target, name, &all);
    }
}

/// A realistic body for every quantix payload arm, in its JSON form.
fn arm_body(arm: &str) -> Value {
    match arm {
        "ping" => json!({"sequence": 1}),
        "execute" => json!({
            "command": "/bin/sh", "args": ["-c", "uname -a"], "working_directory": "/root",
            "environment": {"LANG": "C.UTF-8"}, "timeout_seconds": 30, "wait_for_exit": true,
            "run_as_user": "root", "max_output_bytes": 65536
        }),
        "file_write" => json!({
            "path": "/etc/hostname", "data": "dm0tMDEK", "mode": 420, "create_parents": true,
            "eof": true, "total_chunks": 1
        }),
        "file_read" => {
            json!({"path": "/var/log/syslog", "length": 4096, "chunk_size": 4096})
        }
        "shutdown" => json!({"type": 1, "delay_seconds": 5, "message": "host maintenance"}),
        "reset_password" => json!({
            "username": "admin", "new_password": "correct horse battery staple", "expire": true
        }),
        "configure_network" => json!({
            "netplan_config": "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n",
            "apply_now": true
        }),
        "quiesce" => json!({
            "mount_points": ["/", "/var/lib/postgresql"], "timeout_seconds": 60,
            "run_pre_freeze_scripts": true,
            "pre_freeze_script_dir": "/etc/limiquantix/pre-freeze.d"
        }),
        "thaw" => json!({
            "quiesce_token": "q-1f2e", "mount_points": ["/"], "run_post_thaw_scripts": true
        }),
        "sync_time" => json!({"force": true}),
        "list_directory" => json!({"path": "/home", "max_entries": 100}),
        "create_directory" => {
            json!({"path": "/opt/app/data", "create_parents": true, "mode": 493})
        }
        "file_delete" => json!({"path": "/tmp/old.log"}),
        "file_stat" => json!({"path": "/etc/os-release"}),
        "display_resize" => json!({"width": 1920, "height": 1080, "dpi": 96}),
        "clipboard_update" => json!({"data": "aGVsbG8=", "mime_type": "text/plain"}),
        "clipboard_get" => json!({"preferred_type": "CLIPBOARD_TYPE_TEXT"}),
        "list_processes" => json!({"filter": "nginx", "max_entries": 50}),
        "kill_process" => json!({"pid": 4242, "signal": 15}),
        "list_services" => json!({"filter": "ssh", "running_only": true}),
        "service_control" => json!({"name": "nginx", "action": 3}),
        "get_hardware_info" => json!({
            "include_cpu_details": true, "include_disk_details": true,
            "include_network_details": true
        }),
        "list_installed_software" => json!({"filter": "openssl", "max_entries": 20}),
        "agent_update" => json!({
            "target_version": "0.4.2", "binary_data": "f0VMRgIBAQA=", "chunk_number": 0,
            "checksum_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "total_size": 8_388_608
        }),
        "get_capabilities" => json!({}),
        "pong" => json!({"sequence": 1, "version": "0.4.1", "uptime_seconds": 86400}),
        "execute_response" => json!({
            "exit_code": 0, "stdout": "Linux vm-01 6.8.0-45-generic x86_64 GNU/Linux\n",
            "duration_ms": 12
        }),
        "file_write_response" => json!({"success": true, "bytes_written": 6}),
        "file_read_response" => json!({
            "success": true, "data": "TkFNRT0iVWJ1bnR1Ig==", "eof": true, "total_size": 13,
            "mode": 420
        }),
        "shutdown_response" => json!({"accepted": true}),
        "reset_password_response" => json!({"success": true}),
        "configure_network_response" => {
            json!({"success": false, "error": "netplan apply failed: exit status 1"})
        }
        "quiesce_response" => json!({
            "success": true, "quiesce_token": "q-1f2e",
            "frozen": [{"mount_point": "/", "device": "/dev/vda1", "filesystem": "ext4",
                        "frozen": true}]
        }),
        "thaw_response" => json!({
            "success": true, "thawed_mount_points": ["/"], "frozen_duration_ms": 850
        }),
        "sync_time_response" => {
            json!({"success": true, "offset_seconds": -0.25, "time_source": "host"})
        }
        "list_directory_response" => json!({
            "success": true, "total_entries": 1,
            "entries": [{"name": "alice", "path": "/home/alice", "is_directory": true,
                         "mode": 493, "owner": "alice", "group": "alice"}]
        }),
        "create_directory_response" => json!({"success": true}),
        "file_delete_response" => {
            json!({"success": false, "error": "no such file or directory"})
        }
        "file_stat_response" => json!({
            "success": true,
            "entry": {"name": "os-release", "path": "/etc/os-release", "is_symlink": true,
                      "size_bytes": 386, "mode": 511, "owner": "root", "group": "root",
                      "symlink_target": "../usr/lib/os-release"}
        }),
        "display_resize_response" => {
            json!({"success": true, "actual_width": 1920, "actual_height": 1080})
        }
        "clipboard_update_response" => json!({"success": true}),
        "clipboard_get_response" => {
            json!({"success": true, "data": "aGVsbG8=", "mime_type": "text/plain"})
        }
        "list_processes_response" => json!({
            "success": true,
            "processes": [{"pid": 1, "ppid": 0, "name": "systemd", "command_line": "/sbin/init",
                           "user": "root", "cpu_percent": 0.5, "memory_bytes": 12_582_912,
                           "state": "S", "thread_count": 1, "working_directory": "/"}]
        }),
        "kill_process_response" => json!({"success": true}),
        "list_services_response" => json!({
            "success": true,
            "services": [{"name": "ssh", "display_name": "OpenBSD Secure Shell server",
                          "state": "running", "pid": 812, "memory_bytes": 6_291_456}]
        }),
        "service_control_response" => json!({"success": true, "new_state": "running"}),
        "hardware_info_response" => json!({
            "success": true,
            "hardware": {
                "cpu": {"model": "AMD EPYC 7B13", "cores": 4, "threads": 8,
                        "frequency_mhz": 2450.0, "architecture": "x86_64",
                        "flags": ["sse4_2", "avx2"], "vendor": "AuthenticAMD", "sockets": 1},
                "memory": {"total_bytes": 8_589_934_592_u64, "available_bytes": 6_442_450_944_u64},
                "disks": [{"device": "/dev/vda", "model": "QEMU HARDDISK",
                           "size_bytes": 21_474_836_480_u64, "is_virtual": true,
                           "partitions": [{"device": "/dev/vda1", "mount_point": "/",
                                           "filesystem": "ext4",
                                           "size_bytes": 21_473_787_904_u64,
                                           "used_bytes": 5_368_709_120_u64}]}],
                "network_adapters": [{"name": "eth0", "mac_address": "52:54:00:12:34:56",
                                      "speed_mbps": 10000, "is_virtual": true,
                                      "driver": "virtio_net", "pci_address": "0000:00:03.0"}],
                "os": {"name": "Ubuntu", "version": "24.04", "kernel": "6.8.0-45-generic",
                       "architecture": "x86_64", "hostname": "vm-01"}
            }
        }),
        "list_installed_software_response" => json!({
            "success": true, "total_count": 1,
            "software": [{"name": "openssl", "version": "3.0.13-0ubuntu3",
                          "publisher": "Ubuntu Developers", "size_bytes": 2_097_152,
                          "package_type": "deb", "architecture": "amd64"}]
        }),
        "agent_update_response" => json!({
            "success": true, "current_version": "0.4.1", "restart_required": true,
            "progress_percent": 100
        }),
        "get_capabilities_response" => json!({
            "version": "0.4.1", "os": "linux", "architecture": "x86_64",
            "capabilities": ["execute", "file_read", "file_write", "quiesce"],
            "features": {"telemetry_interval": "5s"}, "build_commit": "a1b2c3d"
        }),
        "telemetry" => json!({
            "cpu_usage_percent": 12.5, "memory_total_bytes": 8_589_934_592_u64,
            "memory_used_bytes": 2_147_483_648_u64, "process_count": 142,
            "uptime_seconds": 86400, "hostname": "vm-01",
            "disks": [{"mount_point": "/", "filesystem": "ext4", "device": "/dev/vda1",
                       "total_bytes": 21_473_787_904_u64, "used_bytes": 5_368_709_120_u64,
                       "usage_percent": 25.0}],
            "interfaces": [{"name": "eth0", "mac_address": "52:54:00:12:34:56", "mtu": 1500,
                            "rx_bytes": 1_048_576, "tx_bytes": 524_288}]
        }),
        "agent_ready" => json!({
            "version": "0.4.1", "os_name": "Ubuntu", "os_version": "24.04",
            "kernel_version": "6.8.0-45-generic", "architecture": "x86_64", "hostname": "vm-01",
            "ip_addresses": ["10.0.0.5", "fe80::5054:ff:fe12:3456"],
            "capabilities": ["execute", "telemetry"]
        }),
        "error" => json!({
            "severity": 2, "code": "QUIESCE_TIMEOUT", "message": "fsfreeze timed out",
            "details": {"mount_point": "/var"}
        }),
        "clipboard_changed" => json!({"data": "aGVsbG8=", "mime_type": "text/plain"}),
        other => panic!("no seed body for quantix arm {other}: add one"),
    }
}

/// One realistic message of every payload arm, with its arm name.
fn quantix_messages() -> Vec<(&'static str, AgentMessage)> {
    Payload::ARMS
        .iter()
        .map(|&(field, arm)| {
            // A response carries its request's id; events carry none.
            let id = match field {
                10..=49 => format!("req-{field}"),
                50..=99 => format!("req-{}", field - 40),
                _ => String::new(),
            };
            let mut envelope = serde_json::Map::new();
            envelope.insert("message_id".into(), id.into());
            envelope.insert(arm.into(), arm_body(arm));
            let msg: AgentMessage = serde_json::from_value(Value::Object(envelope))
                .unwrap_or_else(|e| panic!("seed for {arm}: {e}"));
            (
                arm,
                msg.with_timestamp(Timestamp::new(1_732_233_600, 250_000_000)),
            )
        })
        .collect()
}

fn qtx(msgs: &[&AgentMessage]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for m in msgs {
        QuantixEncoder::new().encode(m, &mut out).expect("qtx1");
    }
    out.to_vec()
}

fn legacy(msgs: &[&AgentMessage]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for m in msgs {
        LegacyEncoder::new().encode(m, &mut out).expect("legacy");
    }
    out.to_vec()
}

/// A frame of `cfg` around `payload`.
fn lp(cfg: LpConfig, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    LpEncoder::new(cfg).encode(payload, &mut out).expect("lp");
    out.to_vec()
}

fn quantix_seeds(c: &mut Corpus) -> (Vec<u8>, Vec<u8>) {
    let msgs = quantix_messages();
    for (arm, m) in &msgs {
        c.put("decode_quantix", &format!("qtx1-{arm}.bin"), &qtx(&[m]));
        c.put(
            "decode_quantix_legacy",
            &format!("legacy-{arm}.bin"),
            &legacy(&[m]),
        );
    }
    let by = |name: &str| &msgs.iter().find(|(a, _)| *a == name).expect("arm").1;
    let session = [
        by("agent_ready"),
        by("ping"),
        by("pong"),
        by("execute"),
        by("execute_response"),
        by("telemetry"),
    ];
    let qtx_session = qtx(&session);
    let legacy_session = legacy(&session);
    c.put("decode_quantix", "qtx1-session.bin", &qtx_session);
    c.put(
        "decode_quantix_legacy",
        "legacy-session.bin",
        &legacy_session,
    );

    let ping = qtx(&[by("ping")]);
    let legacy_ping = legacy(&[by("ping")]);
    let json = br#"{"type":"log","line":"hello"}"#;
    let hostile: [(&str, Vec<u8>); 8] = [
        (
            "qtx1-length-4gib.bin",
            [&b"QTX\x01\xff\xff\xff\xff"[..], &ping].concat(),
        ),
        (
            "qtx1-magic-as-length.bin",
            [&b"QTX\x01QTX\x01"[..], &ping].concat(),
        ),
        (
            "qtx1-zero-length.bin",
            [&b"QTX\x01\0\0\0\0"[..], &ping].concat(),
        ),
        (
            "legacy-frame-in-qtx1-stream.bin",
            [&legacy_ping[..], &ping].concat(),
        ),
        ("json-in-qtx1-frame.bin", lp(quantix_cfg(), json)),
        (
            "garbage-then-qtx1.bin",
            [&b"\x00\x13\x37garbage"[..], &ping].concat(),
        ),
        ("qtx1-truncated.bin", ping[..ping.len() - 3].to_vec()),
        (
            "qtx1-unknown-arm.bin",
            lp(quantix_cfg(), b"\x0a\x011\xaa\x0c\x00"),
        ),
    ];
    for (name, bytes) in &hostile {
        c.put("decode_quantix", name, bytes);
    }
    let legacy_hostile: [(&str, Vec<u8>); 5] = [
        (
            "legacy-length-4gib.bin",
            b"\xff\xff\xff\xff\x0a\x01\x31".to_vec(),
        ),
        (
            "qtx1-in-legacy-stream.bin",
            [&legacy_ping[..], &ping].concat(),
        ),
        ("json-in-legacy-frame.bin", lp(LpConfig::u32_be(), json)),
        (
            "legacy-zero-length.bin",
            [&b"\0\0\0\0"[..], &legacy_ping].concat(),
        ),
        (
            "legacy-not-protobuf.bin",
            lp(LpConfig::u32_be(), b"\xff\xfe\xfd\xfc"),
        ),
    ];
    for (name, bytes) in &legacy_hostile {
        c.put("decode_quantix_legacy", name, bytes);
    }
    (qtx_session, legacy_session)
}

fn quantix_cfg() -> LpConfig {
    LpConfig {
        magic: b"QTX\x01".to_vec(),
        ..LpConfig::u32_be()
    }
}

/// The fcexec streams: (to the guest, to the host).
fn fcexec_seeds(c: &mut Corpus) -> (Vec<u8>, Vec<u8>) {
    let mut enc = FcexecEncoder::new();
    let request = GuestRequest {
        runtime: "python".into(),
        code: "import sys\nprint(sys.stdin.read().upper())\n".into(),
        code_archive: b"PK\x03\x04\x14\x00\x00\x00".to_vec(),
        input: b"hello from the host\n".to_vec(),
        env: BTreeMap::from([("PYTHONUNBUFFERED".into(), "1".into())]),
        entrypoint: "main.py".into(),
        timeout_s: 30,
    };
    let mut to_guest = BytesMut::new();
    enc.encode_request(&request, &mut to_guest)
        .expect("request");
    let mut to_host = BytesMut::new();
    enc.encode_log("starting python 3.12", &mut to_host)
        .expect("log");
    enc.encode_log("HELLO FROM THE HOST", &mut to_host)
        .expect("log");
    let result = GuestResponse {
        exit_code: 0,
        output: "HELLO FROM THE HOST\n".into(),
        error: String::new(),
        log_lines: Some(LogLines::Count(2)),
    };
    enc.encode_result(&result, &mut to_host).expect("result");
    let mut failed = BytesMut::new();
    let listed = GuestResponse {
        exit_code: 1,
        output: String::new(),
        error: "Traceback (most recent call last): ZeroDivisionError".into(),
        log_lines: Some(LogLines::Lines(vec!["a".into(), "b".into()])),
    };
    enc.encode(&FcexecMessage::Result(listed), &mut failed)
        .expect("result");

    // Selector: 0 either direction, 1 to the guest, 2 to the host.
    c.put_sel("decode_fcexec", "request.bin", 1, &to_guest);
    c.put_sel("decode_fcexec", "logs-and-result.bin", 2, &to_host);
    c.put_sel("decode_fcexec", "result-with-log-list.bin", 2, &failed);
    c.put_sel(
        "decode_fcexec",
        "any-direction-exchange.bin",
        0,
        &[&to_guest[..], &to_host].concat(),
    );
    c.put_sel("decode_fcexec", "wrong-direction.bin", 1, &to_host);
    let ping = qtx(&[&AgentMessage::new(
        "1",
        guestwire::wire::quantix::PingRequest { sequence: 1 },
    )]);
    c.put_sel("decode_fcexec", "qtx1-in-fcexec.bin", 0, &ping);
    c.put_sel("decode_fcexec", "protobuf-in-fcexec.bin", 0, &ping[4..]);
    c.put_sel("decode_fcexec", "length-4gib.bin", 0, b"\xff\xff\xff\xff{}");
    c.put_sel(
        "decode_fcexec",
        "unknown-type.bin",
        2,
        &lp(LpConfig::u32_be(), br#"{"type":"progress","pct":50}"#),
    );
    (to_guest.to_vec(), to_host.to_vec())
}

/// The qga streams: (to the guest, to the host), both recorded from qemu-ga 7.2.
fn qga_seeds(c: &mut Corpus) -> (Vec<u8>, Vec<u8>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/streams");
    let recorded_to_guest = fs::read(root.join("qga-to-guest.bin")).expect("fixture");
    let recorded_to_host = fs::read(root.join("qga-to-host.bin")).expect("fixture");
    c.put(
        "decode_qga",
        "recorded-qga-to-guest.bin",
        &recorded_to_guest,
    );
    c.put("decode_qga", "recorded-qga-to-host.bin", &recorded_to_host);

    let mut enc = QgaEncoder::new();
    let mut commands = BytesMut::new();
    enc.delimiter(&mut commands);
    enc.sync_delimited(4242, &mut commands).expect("sync");
    for msg in [
        QgaMessage::ping(),
        QgaMessage::command("guest-info", None),
        QgaMessage::command(
            "guest-exec",
            Some(json!({"path": "/bin/ls", "arg": ["-l", "/"], "capture-output": true})),
        ),
        QgaMessage::Command {
            execute: "guest-exec-status".into(),
            arguments: Some(json!({"pid": 1234})),
            id: Some(json!("req-7")),
        },
        QgaMessage::command("guest-file-open", Some(json!({"path": "/etc/hostname"}))),
    ] {
        enc.encode(&msg, &mut commands).expect("command");
    }
    c.put("decode_qga", "commands.bin", &commands);

    let mut replies = BytesMut::new();
    enc.encode(&QgaMessage::stray_delimiter_error(), &mut replies)
        .expect("reply");
    enc.sync_delimited_reply(4242, &mut replies).expect("reply");
    enc.reply_return(&json!({}), &mut replies).expect("reply");
    enc.reply_return(&json!({"pid": 1234}), &mut replies)
        .expect("reply");
    enc.reply_return(
        &json!({"exited": true, "exitcode": 0, "out-data": "dG90YWwgMAo="}),
        &mut replies,
    )
    .expect("reply");
    enc.encode(
        &QgaMessage::command_not_found("guest-no-such-command"),
        &mut replies,
    )
    .expect("reply");
    enc.encode(
        &QgaMessage::Return {
            value: json!("vm-01 \u{1F600}"),
            id: Some(json!("req-7")),
        },
        &mut replies,
    )
    .expect("reply");
    c.put("decode_qga", "replies.bin", &replies);

    let ping = qtx(&[&AgentMessage::new(
        "1",
        guestwire::wire::quantix::PingRequest { sequence: 1 },
    )]);
    c.put(
        "decode_qga",
        "qtx1-in-qga.bin",
        &[&ping[..], b"\n{\"return\": {}}\n"].concat(),
    );
    let deep = format!("{{\"return\": {}{}}}\n", "[".repeat(200), "]".repeat(200));
    c.put("decode_qga", "too-deep.bin", deep.as_bytes());
    c.put(
        "decode_qga",
        "unterminated.bin",
        b"{\"execute\": \"guest-ping\"",
    );
    c.put(
        "decode_qga",
        "connect-line-in-qga.bin",
        b"CONNECT 1024\n{\"execute\":\"guest-ping\"}",
    );
    (commands.to_vec(), replies.to_vec())
}

/// The HTTP streams: (ch-api requests, ch-api responses, volant request, volant response).
fn http_seeds(c: &mut Corpus) -> [Vec<u8>; 4] {
    let mut enc = HttpEncoder::new();
    let encode = |enc: &mut HttpEncoder, msgs: &[HttpMessage]| {
        let mut out = BytesMut::new();
        for m in msgs {
            enc.encode(m, &mut out).expect("http");
        }
        out.to_vec()
    };
    let vm_config = json!({
        "cpus": {"boot_vcpus": 2, "max_vcpus": 2},
        "memory": {"size": 1_073_741_824},
        "payload": {"kernel": "/var/lib/vms/vmlinux", "cmdline": "console=ttyS0 root=/dev/vda1"},
        "disks": [{"path": "/var/lib/vms/rootfs.img"}],
        "vsock": {"cid": 3, "socket": "/run/vm-01/vsock.sock"}
    })
    .to_string();
    let req = |method: &str, path: &str, body: &str| {
        let m = HttpMessage::request(method, path, body.to_string())
            .with_header("Host", "localhost")
            .with_header("Accept", "*/*");
        if body.is_empty() {
            m
        } else {
            m.with_header("Content-Type", "application/json")
        }
    };
    let requests = encode(
        &mut enc,
        &[
            req("GET", "/api/v1/vmm.ping", ""),
            req("PUT", "/api/v1/vm.create", &vm_config),
            req("PUT", "/api/v1/vm.boot", ""),
            req("GET", "/api/v1/vm.info", ""),
        ],
    );
    let info = json!({"config": serde_json::from_str::<Value>(&vm_config).expect("json"),
                      "state": "Running", "memory_actual_size": 1_073_741_824})
    .to_string();
    let responses = encode(
        &mut enc,
        &[
            HttpMessage::response(
                200,
                r#"{"build_version":"v42.0","version":"42.0","pid":4242}"#,
            )
            .with_header("Content-Type", "application/json"),
            HttpMessage::response(204, ""),
            HttpMessage::response(204, ""),
            HttpMessage::response(200, info.clone())
                .with_header("Content-Type", "application/json"),
            HttpMessage::response(500, "Error from API: VM is not created")
                .with_header("Content-Type", "text/plain"),
        ],
    );
    // Cloud Hypervisor's responses are not chunked; hyper-based peers (volant) may be.
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for piece in info.as_bytes().chunks(64) {
        chunked.extend(format!("{:x}\r\n", piece.len()).bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let volant_req = encode(
        &mut enc,
        &[req(
            "POST",
            "/v1/plugin/python/actions/run",
            r#"{"code":"print(1+1)","timeout":30}"#,
        )],
    );
    let volant_resp = encode(
        &mut enc,
        &[
            HttpMessage::response(200, r#"{"stdout":"2\n","exit_code":0}"#)
                .with_header("Content-Type", "application/json"),
        ],
    );

    // Selector: 0 requests, 1 responses, 2 decided by the stream.
    c.put_sel("decode_http", "ch-api-requests.bin", 0, &requests);
    c.put_sel("decode_http", "ch-api-responses.bin", 1, &responses);
    c.put_sel("decode_http", "chunked-response.bin", 1, &chunked);
    c.put_sel("decode_http", "volant-request-auto.bin", 2, &volant_req);
    c.put_sel("decode_http", "volant-response-auto.bin", 2, &volant_resp);
    c.put_sel(
        "decode_http",
        "content-length-4gib.bin",
        1,
        b"HTTP/1.1 200 OK\r\nContent-Length: 4294967296\r\n\r\n{}",
    );
    c.put_sel(
        "decode_http",
        "response-to-eof.bin",
        1,
        b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until the end",
    );
    c.put_sel(
        "decode_http",
        "qtx1-in-http.bin",
        2,
        b"QTX\x01\x00\x00\x00\x02\x52\x00",
    );
    c.put_sel(
        "decode_http",
        "bad-chunk-size.bin",
        1,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    );
    [requests, responses, volant_req, volant_resp]
}

fn hybrid_seeds(c: &mut Corpus, fcexec_request: &[u8], qtx_session: &[u8]) {
    // Selector: 0-2 ConnectParser per flavour, 3 OkParser, 4 HandshakeDecoder CONNECT, 9 OK.
    for (sel, flavour) in Flavour::ALL.into_iter().enumerate() {
        let name = flavour.name();
        let sel = sel as u8;
        c.put_sel(
            "decode_hybrid",
            &format!("{name}-connect-then-payload.bin"),
            sel,
            &[&connect_line(1024)[..], fcexec_request].concat(),
        );
        c.put_sel(
            "decode_hybrid",
            &format!("{name}-connect-lowercase.bin"),
            sel,
            b"connect 52\n",
        );
        c.put_sel(
            "decode_hybrid",
            &format!("{name}-connect-port-overflow.bin"),
            sel,
            b"CONNECT 4294967296\n",
        );
        c.put_sel(
            "decode_hybrid",
            &format!("{name}-ok-reply.bin"),
            3,
            &[&ok_line(flavour, 1024, 1_073_741_824)[..], qtx_session].concat(),
        );
    }
    c.put_sel("decode_hybrid", "connect-crlf.bin", 1, b"CONNECT 1024\r\n");
    c.put_sel(
        "decode_hybrid",
        "connect-no-newline.bin",
        0,
        b"CONNECT 1024",
    );
    c.put_sel(
        "decode_hybrid",
        "connect-two-spaces.bin",
        2,
        b"CONNECT  1024\n",
    );
    c.put_sel("decode_hybrid", "connect-too-long.bin", 1, &[b'9'; 40]);
    c.put_sel("decode_hybrid", "ok-without-space.bin", 3, b"OK1024\n");
    c.put_sel("decode_hybrid", "ok-too-long.bin", 3, &[b'7'; 80]);
    c.put_sel(
        "decode_hybrid",
        "handshake-connect-line.bin",
        4,
        &[&connect_line(1024)[..], fcexec_request].concat(),
    );
    c.put_sel(
        "decode_hybrid",
        "handshake-ok-line.bin",
        9,
        &ok_line(Flavour::Firecracker, 1024, 1_073_741_825),
    );
}

fn any_seeds(
    c: &mut Corpus,
    qtx_session: &[u8],
    legacy_session: &[u8],
    fcexec: &(Vec<u8>, Vec<u8>),
    qga: &(Vec<u8>, Vec<u8>),
    http: &[Vec<u8>; 4],
) {
    // Selector: bits 0-2 protocol, bits 3-4 direction (1 to guest, 2 to host), bit 5 handshake.
    const TO_GUEST: u8 = 1 << 3;
    const TO_HOST: u8 = 2 << 3;
    const HANDSHAKE: u8 = 1 << 5;
    let connect = connect_line(1024);
    let ok = ok_line(Flavour::Firecracker, 1024, 1_073_741_824);
    let seeds: [(&str, u8, Vec<u8>); 13] = [
        ("quantix.bin", 0, qtx_session.to_vec()),
        (
            "quantix-after-ok.bin",
            TO_HOST | HANDSHAKE,
            [&ok[..], qtx_session].concat(),
        ),
        ("quantix-legacy.bin", 1, legacy_session.to_vec()),
        ("fcexec-to-guest.bin", 2 | TO_GUEST, fcexec.0.clone()),
        ("fcexec-to-host.bin", 2 | TO_HOST, fcexec.1.clone()),
        (
            "fcexec-after-connect.bin",
            2 | HANDSHAKE,
            [&connect[..], &fcexec.0].concat(),
        ),
        ("volant-request.bin", 3 | TO_GUEST, http[2].clone()),
        ("volant-response.bin", 3 | TO_HOST, http[3].clone()),
        ("qga-commands.bin", 4, qga.0.clone()),
        ("qga-replies.bin", 4 | TO_HOST, qga.1.clone()),
        ("ch-api-requests.bin", 5 | TO_GUEST, http[0].clone()),
        ("ch-api-responses.bin", 5, http[1].clone()),
        (
            "raw-after-connect.bin",
            6 | HANDSHAKE,
            [&connect[..], b"raw bytes\x00\xff"].concat(),
        ),
    ];
    for (name, sel, bytes) in &seeds {
        c.put_sel("decode_any", name, *sel, bytes);
    }
    // lp: the next byte is the configuration (see `decode_lp`).
    let lp_frames = lp(
        LpConfig {
            width: 2,
            endian: Endian::Little,
            ..LpConfig::u32_be()
        },
        b"custom agent frame",
    );
    c.put(
        "decode_any",
        "lp-u16-le.bin",
        &[&[7u8, 0x05][..], &lp_frames].concat(),
    );

    for (name, _, bytes) in &seeds {
        c.put("detect_protocol", name, bytes);
    }
}

fn lp_seeds(c: &mut Corpus) {
    // Selector: bits 0-1 width (1, 2, 4, 8), bit 2 little-endian, bit 3 QTX1 magic, bit 4 empty
    // frames allowed.
    for sel in [0x00u8, 0x01, 0x02, 0x03, 0x05, 0x0a, 0x16] {
        let cfg = LpConfig {
            width: [1, 2, 4, 8][usize::from(sel & 3)],
            endian: if sel & 4 == 0 {
                Endian::Big
            } else {
                Endian::Little
            },
            magic: if sel & 8 == 0 {
                Vec::new()
            } else {
                b"QTX\x01".to_vec()
            },
            max: 4096,
            allow_empty: sel & 16 != 0,
        };
        let mut frames = lp(cfg.clone(), b"first frame");
        frames.extend(lp(cfg.clone(), &[0xab; 200]));
        if cfg.allow_empty {
            frames.extend(lp(cfg.clone(), b""));
        }
        c.put_sel("decode_lp", &format!("frames-{sel:02x}.bin"), sel, &frames);
    }
    c.put_sel(
        "decode_lp",
        "u32-be-length-4gib.bin",
        0x02,
        b"\xff\xff\xff\xff\x01",
    );
    c.put_sel("decode_lp", "u64-be-huge.bin", 0x03, &[0xff; 9]);
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus");
    let mut c = Corpus::new(&root);
    let (qtx_session, legacy_session) = quantix_seeds(&mut c);
    let fcexec = fcexec_seeds(&mut c);
    let qga = qga_seeds(&mut c);
    let http = http_seeds(&mut c);
    hybrid_seeds(&mut c, &fcexec.0, &qtx_session);
    any_seeds(&mut c, &qtx_session, &legacy_session, &fcexec, &qga, &http);
    lp_seeds(&mut c);
    println!(
        "wrote {} seeds, {} bytes, under {}",
        c.files,
        c.bytes,
        root.display()
    );
}
