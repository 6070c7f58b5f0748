//! proptest strategies for quantix messages (test only): arbitrary strings, bytes, maps,
//! timestamps in and out of the RFC 3339 range, known and unknown enum values, the core messages
//! in full, a spread of nested ones (telemetry, directory listings, hardware), and an empty
//! payload of every one of the 54 arms.

use bytes::Bytes;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;

use super::timestamp::{MAX_RFC3339_SECONDS, MIN_RFC3339_SECONDS};
use super::*;

fn text() -> impl Strategy<Value = String> {
    "(?s).{0,10}"
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..3)
}

fn map() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
    btree_map(text(), text(), 0..3)
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

/// Doubles that survive a trip through JSON text exactly.
fn double() -> impl Strategy<Value = f64> {
    any::<i32>().prop_map(|v| f64::from(v) / 8.0)
}

/// Known enum values mostly, any `i32` sometimes.
fn enum_value() -> impl Strategy<Value = i32> {
    prop_oneof![3 => 0..7i32, 1 => any::<i32>()]
}

fn timestamp() -> impl Strategy<Value = Option<Timestamp>> {
    option::of(prop_oneof![
        (
            MIN_RFC3339_SECONDS..=MAX_RFC3339_SECONDS,
            0..1_000_000_000i32
        )
            .prop_map(|(s, n)| Timestamp::new(s, n)),
        (any::<i64>(), any::<i32>()).prop_map(|(s, n)| Timestamp::new(s, n)),
    ])
}

fn execute() -> impl Strategy<Value = ExecuteRequest> {
    (
        (text(), texts(), text(), map(), any::<u32>()),
        (any::<bool>(), text(), any::<u32>(), text(), any::<bool>()),
    )
        .prop_map(
            |((command, args, wd, env, timeout), (wait, user, max, group, supp))| ExecuteRequest {
                command,
                args,
                working_directory: wd,
                environment: env,
                timeout_seconds: timeout,
                wait_for_exit: wait,
                run_as_user: user,
                max_output_bytes: max,
                run_as_group: group,
                include_supplementary_groups: supp,
            },
        )
}

fn execute_response() -> impl Strategy<Value = ExecuteResponse> {
    (
        any::<i32>(),
        text(),
        text(),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
        text(),
    )
        .prop_map(
            |(exit_code, stdout, stderr, truncated, timed_out, duration_ms, error)| {
                ExecuteResponse {
                    exit_code,
                    stdout,
                    stderr,
                    truncated,
                    timed_out,
                    duration_ms,
                    error,
                }
            },
        )
}

fn file_write() -> impl Strategy<Value = FileWriteRequest> {
    (
        (text(), blob(), any::<u64>(), any::<bool>(), any::<bool>()),
        (any::<u32>(), any::<bool>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |((path, data, offset, append, eof), (mode, parents, chunk, total))| FileWriteRequest {
                path,
                data,
                offset,
                append,
                eof,
                mode,
                create_parents: parents,
                chunk_number: chunk,
                total_chunks: total,
            },
        )
}

fn file_read_response() -> impl Strategy<Value = FileReadResponse> {
    (
        (
            any::<bool>(),
            blob(),
            any::<bool>(),
            any::<u64>(),
            any::<u64>(),
        ),
        (any::<u32>(), text(), any::<u32>(), timestamp()),
    )
        .prop_map(
            |((success, data, eof, total, offset), (chunk, error, mode, at))| FileReadResponse {
                success,
                data,
                eof,
                total_size: total,
                offset,
                chunk_number: chunk,
                error,
                mode,
                modified_at: at,
            },
        )
}

fn telemetry() -> impl Strategy<Value = TelemetryReport> {
    let disk = (
        text(),
        text(),
        text(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        double(),
    )
        .prop_map(
            |(mount_point, filesystem, device, total, used, avail, pct)| DiskUsage {
                mount_point,
                filesystem,
                device,
                total_bytes: total,
                used_bytes: used,
                available_bytes: avail,
                usage_percent: pct,
            },
        );
    let iface = (
        (text(), text(), texts(), texts(), enum_value()),
        (
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |((name, mac, v4, v6, state), (mtu, rx, tx, rxp, txp))| InterfaceInfo {
                name,
                mac_address: mac,
                ipv4_addresses: v4,
                ipv6_addresses: v6,
                state,
                mtu,
                rx_bytes: rx,
                tx_bytes: tx,
                rx_packets: rxp,
                tx_packets: txp,
            },
        );
    (
        (
            double(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        ),
        (vec(disk, 0..3), vec(iface, 0..3)),
        (
            double(),
            double(),
            double(),
            any::<u32>(),
            any::<u64>(),
            text(),
        ),
    )
        .prop_map(
            |((cpu, mt, mu, ma, st, su), (disks, interfaces), (l1, l5, l15, pc, up, host))| {
                TelemetryReport {
                    cpu_usage_percent: cpu,
                    memory_total_bytes: mt,
                    memory_used_bytes: mu,
                    memory_available_bytes: ma,
                    swap_total_bytes: st,
                    swap_used_bytes: su,
                    disks,
                    interfaces,
                    load_avg_1: l1,
                    load_avg_5: l5,
                    load_avg_15: l15,
                    process_count: pc,
                    uptime_seconds: up,
                    hostname: host,
                }
            },
        )
}

fn directory_listing() -> impl Strategy<Value = ListDirectoryResponse> {
    let entry = (
        (
            text(),
            text(),
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
            any::<u32>(),
        ),
        (timestamp(), timestamp(), text(), text(), text()),
    )
        .prop_map(
            |((name, path, dir, link, size, mode), (m, c, owner, group, target))| DirectoryEntry {
                name,
                path,
                is_directory: dir,
                is_symlink: link,
                size_bytes: size,
                mode,
                modified_at: m,
                created_at: c,
                owner,
                group,
                symlink_target: target,
            },
        );
    (
        any::<bool>(),
        vec(entry, 0..3),
        text(),
        text(),
        any::<u32>(),
    )
        .prop_map(
            |(success, entries, cont, error, total)| ListDirectoryResponse {
                success,
                entries,
                continuation_token: cont,
                error,
                total_entries: total,
            },
        )
}

fn hardware() -> impl Strategy<Value = GetHardwareInfoResponse> {
    let cpu = (text(), any::<u32>(), double(), texts(), any::<u64>()).prop_map(
        |(model, threads, mhz, flags, l3)| CpuInfo {
            model,
            threads,
            frequency_mhz: mhz,
            flags,
            l3_cache_bytes: l3,
            ..Default::default()
        },
    );
    let partition =
        (text(), text(), any::<u64>()).prop_map(|(device, label, size)| PartitionInfo {
            device,
            label,
            size_bytes: size,
            ..Default::default()
        });
    let disk = (text(), any::<bool>(), vec(partition, 0..2)).prop_map(
        |(device, is_virtual, partitions)| DiskInfo {
            device,
            is_virtual,
            partitions,
            ..Default::default()
        },
    );
    let os = (text(), timestamp(), timestamp()).prop_map(|(name, install, boot)| OsInfo {
        name,
        install_date: install,
        last_boot: boot,
        ..Default::default()
    });
    let hw = (
        option::of(cpu),
        any::<u64>(),
        vec(disk, 0..2),
        option::of(os),
    )
        .prop_map(|(cpu, mem, disks, os)| HardwareInfo {
            cpu,
            memory: Some(MemoryInfo {
                total_bytes: mem,
                ..Default::default()
            }),
            disks,
            os,
            ..Default::default()
        });
    (any::<bool>(), option::of(hw), text()).prop_map(|(success, hardware, error)| {
        GetHardwareInfoResponse {
            success,
            hardware: hardware.map(Box::new),
            error,
        }
    })
}

/// An empty payload of any arm (all 54), through the JSON form.
fn any_empty_arm() -> impl Strategy<Value = Payload> {
    select(Payload::ARMS).prop_map(|(_, name)| {
        serde_json::from_value(serde_json::json!({ name: {} })).expect("every arm from JSON")
    })
}

fn payload() -> impl Strategy<Value = Payload> {
    Union::new(vec![
        any::<u64>()
            .prop_map(|sequence| PingRequest { sequence }.into())
            .boxed(),
        (any::<u64>(), text(), any::<u64>())
            .prop_map(|(sequence, version, up)| {
                PongResponse {
                    sequence,
                    version,
                    uptime_seconds: up,
                }
                .into()
            })
            .boxed(),
        execute().prop_map(Payload::from).boxed(),
        execute_response().prop_map(Payload::from).boxed(),
        file_write().prop_map(Payload::from).boxed(),
        (any::<bool>(), any::<u64>(), text(), any::<u32>())
            .prop_map(|(success, written, error, chunk)| {
                FileWriteResponse {
                    success,
                    bytes_written: written,
                    error,
                    chunk_number: chunk,
                }
                .into()
            })
            .boxed(),
        (text(), any::<u64>(), any::<u64>(), any::<u32>())
            .prop_map(|(path, offset, length, chunk_size)| {
                FileReadRequest {
                    path,
                    offset,
                    length,
                    chunk_size,
                }
                .into()
            })
            .boxed(),
        file_read_response().prop_map(Payload::from).boxed(),
        (enum_value(), any::<u32>(), text())
            .prop_map(|(r#type, delay, message)| {
                ShutdownRequest {
                    r#type,
                    delay_seconds: delay,
                    message,
                }
                .into()
            })
            .boxed(),
        (any::<bool>(), text())
            .prop_map(|(accepted, error)| ShutdownResponse { accepted, error }.into())
            .boxed(),
        telemetry().prop_map(Payload::from).boxed(),
        (text(), text(), text(), text(), texts(), texts())
            .prop_map(|(version, os_name, kernel, host, ips, caps)| {
                AgentReadyEvent {
                    version,
                    os_name,
                    kernel_version: kernel,
                    hostname: host,
                    ip_addresses: ips,
                    capabilities: caps,
                    ..Default::default()
                }
                .into()
            })
            .boxed(),
        (enum_value(), text(), text(), map())
            .prop_map(|(severity, code, message, details)| {
                ErrorEvent {
                    severity,
                    code,
                    message,
                    details,
                }
                .into()
            })
            .boxed(),
        (enum_value(), blob(), text())
            .prop_map(|(r#type, data, mime_type)| {
                ClipboardChangedEvent {
                    r#type,
                    data,
                    mime_type,
                }
                .into()
            })
            .boxed(),
        directory_listing().prop_map(Payload::from).boxed(),
        hardware().prop_map(Payload::from).boxed(),
        (text(), blob(), any::<u32>(), any::<bool>(), any::<u64>())
            .prop_map(|(version, data, chunk, last, total)| {
                AgentUpdateRequest {
                    target_version: version,
                    binary_data: data,
                    chunk_number: chunk,
                    is_last_chunk: last,
                    total_size: total,
                    ..Default::default()
                }
                .into()
            })
            .boxed(),
        (text(), texts(), map())
            .prop_map(|(version, capabilities, features)| {
                GetCapabilitiesResponse {
                    version,
                    capabilities,
                    features,
                    ..Default::default()
                }
                .into()
            })
            .boxed(),
        (any::<bool>(), double(), timestamp(), text())
            .prop_map(|(success, offset, now, source)| {
                SyncTimeResponse {
                    success,
                    offset_seconds: offset,
                    current_time: now,
                    time_source: source,
                    ..Default::default()
                }
                .into()
            })
            .boxed(),
        (text(), enum_value())
            .prop_map(|(name, action)| ServiceControlRequest { name, action }.into())
            .boxed(),
        (enum_value(), any::<u32>(), any::<bool>(), text())
            .prop_map(|(state, progress, restart, version)| {
                AgentUpdateResponse {
                    state,
                    progress_percent: progress,
                    restart_required: restart,
                    current_version: version,
                    ..Default::default()
                }
                .into()
            })
            .boxed(),
        any_empty_arm().boxed(),
        any_empty_arm().boxed(),
    ])
}

pub(super) fn message() -> impl Strategy<Value = AgentMessage> {
    (text(), timestamp(), payload()).prop_map(|(message_id, timestamp, payload)| AgentMessage {
        message_id,
        timestamp,
        payload: Some(payload),
    })
}
