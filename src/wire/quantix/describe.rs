//! [`Describe`] for [`AgentMessage`]: the arm's proto name as the type, the key fields of each
//! arm on one short line (`id=7 seq=3`, `id=9 cmd="uname -a" args=2`, `exit=0 stdout=12B`,
//! `cpu=3.5% mem=1.2/4.0GiB`, `path=/etc/hosts len=4096 eof`), the serde JSON, and the
//! `message_id` as the correlation id (the LimiQuantix host keys pending requests by it).
//!
//! Strings come from the peer, so a summary quotes anything that is not a plain word and cuts it
//! at [`MAX_TEXT`] characters: one message is always one line.

use std::fmt::Write as _;

use super::enums::{
    ClipboardType, ErrorSeverity, ProtoEnum, ServiceAction, ShutdownType, UpdateState,
};
use super::envelope::{AgentMessage, Payload};
use crate::wire::codec::Describe;

/// Longest piece of peer text a summary shows before cutting it with `…`.
pub const MAX_TEXT: usize = 40;

/// Type name of a message without a payload.
pub const NO_PAYLOAD: &str = "none";

/// Builds a summary from `key=value` parts.
#[derive(Default)]
struct Line(String);

impl Line {
    fn push(&mut self, part: impl AsRef<str>) -> &mut Self {
        let part = part.as_ref();
        if !part.is_empty() {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(part);
        }
        self
    }

    fn kv(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    /// ` key=` (the separator only after a first part).
    fn key(&mut self, key: &str) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(key);
        self.0.push('=');
    }

    /// `key=value` only when the value is not its default (0, empty).
    fn nz(&mut self, key: &str, value: u64) -> &mut Self {
        if value != 0 {
            self.kv(key, value);
        }
        self
    }

    /// A bare word when the flag is set.
    fn flag(&mut self, word: &str, set: bool) -> &mut Self {
        if set {
            self.push(word);
        }
        self
    }

    /// `key=text` when the text is non-empty (quoted unless a plain word).
    fn text(&mut self, key: &str, value: &str) -> &mut Self {
        if is_plain(value) {
            // The common case (ids, versions, names) without the allocation of `word`.
            self.key(key);
            self.0.push_str(value);
        } else if !value.is_empty() {
            self.kv(key, quote(value));
        }
        self
    }

    /// `key="text"` when non-empty, always quoted.
    fn quoted(&mut self, key: &str, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.kv(key, quote(value));
        }
        self
    }

    /// `ok`, or `failed` with the error.
    fn outcome(&mut self, success: bool, error: &str) -> &mut Self {
        self.push(if success { "ok" } else { "failed" });
        self.quoted("error", error)
    }
}

fn cut(s: &str) -> (&str, bool) {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

/// Peer text, always as a quoted, escaped, bounded string.
fn quote(s: &str) -> String {
    let (head, more) = cut(s);
    let mut out = format!("{head:?}");
    if more {
        out.push('…');
    }
    out
}

/// Peer text as is when it is a short plain word (paths, names), otherwise [`quote`]d.
fn word(s: &str) -> String {
    if is_plain(s) { s.to_string() } else { quote(s) }
}

/// Whether [`word`] shows `s` as is: a non-empty printable-ASCII word of at most [`MAX_TEXT`]
/// characters without `"`.
fn is_plain(s: &str) -> bool {
    // Printable ASCII is one byte per character, so the byte length is the character count.
    !s.is_empty() && s.len() <= MAX_TEXT && s.bytes().all(|c| c.is_ascii_graphic() && c != b'"')
}

/// Bytes as `12B`, `4.0KiB`, `1.2MiB`, `3.5GiB`.
fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1}{unit}")
}

fn gib(n: u64) -> f64 {
    n as f64 / (1u64 << 30) as f64
}

fn summarise(p: &Payload, l: &mut Line) {
    use Payload as P;
    match p {
        P::Ping(m) => {
            l.kv("seq", m.sequence);
        }
        P::Execute(m) => {
            l.kv("cmd", quote(&m.command))
                .kv("args", m.args.len())
                .nz("env", m.environment.len() as u64)
                .text("cwd", &m.working_directory)
                .text("user", &m.run_as_user)
                .text("group", &m.run_as_group)
                .nz("timeout_s", u64::from(m.timeout_seconds))
                .flag("wait", m.wait_for_exit);
        }
        P::FileWrite(m) => {
            l.kv("path", word(&m.path))
                .kv("len", m.data.len())
                .nz("off", m.offset)
                .flag("append", m.append)
                .flag("eof", m.eof);
            if m.total_chunks != 0 {
                l.kv("chunk", format!("{}/{}", m.chunk_number, m.total_chunks));
            }
        }
        P::FileRead(m) => {
            l.kv("path", word(&m.path))
                .nz("off", m.offset)
                .nz("len", m.length)
                .nz("chunk_size", u64::from(m.chunk_size));
        }
        P::Shutdown(m) => {
            l.kv("type", ShutdownType::label(m.r#type))
                .nz("delay_s", u64::from(m.delay_seconds))
                .quoted("msg", &m.message);
        }
        P::ResetPassword(m) => {
            l.text("user", &m.username).flag("expire", m.expire);
        }
        P::ConfigureNetwork(m) => {
            l.kv("netplan", size(m.netplan_config.len() as u64))
                .flag("apply", m.apply_now);
        }
        P::Quiesce(m) => {
            l.kv("mounts", m.mount_points.len())
                .nz("timeout_s", u64::from(m.timeout_seconds))
                .flag("scripts", m.run_pre_freeze_scripts);
        }
        P::Thaw(m) => {
            l.text("token", &m.quiesce_token)
                .kv("mounts", m.mount_points.len())
                .flag("scripts", m.run_post_thaw_scripts);
        }
        P::SyncTime(m) => {
            l.flag("force", m.force);
            if let Some(t) = &m.set_time {
                l.kv("set", t);
            }
        }
        P::ListDirectory(m) => {
            l.kv("path", word(&m.path))
                .flag("hidden", m.include_hidden)
                .nz("max", u64::from(m.max_entries))
                .text("cont", &m.continuation_token);
        }
        P::CreateDirectory(m) => {
            l.kv("path", word(&m.path))
                .flag("parents", m.create_parents);
            if m.mode != 0 {
                l.kv("mode", format!("{:o}", m.mode));
            }
        }
        P::FileDelete(m) => {
            l.kv("path", word(&m.path)).flag("recursive", m.recursive);
        }
        P::FileStat(m) => {
            l.kv("path", word(&m.path));
        }
        P::DisplayResize(m) => {
            l.push(format!("{}x{}", m.width, m.height))
                .nz("dpi", u64::from(m.dpi))
                .text("display", &m.display_id);
        }
        P::ClipboardUpdate(m) => {
            l.kv("type", ClipboardType::label(m.r#type))
                .kv("data", size(m.data.len() as u64))
                .text("mime", &m.mime_type);
        }
        P::ClipboardGet(m) => {
            l.kv("type", ClipboardType::label(m.preferred_type));
        }
        P::ListProcesses(m) => {
            l.text("filter", &m.filter)
                .flag("threads", m.include_threads)
                .nz("max", u64::from(m.max_entries));
        }
        P::KillProcess(m) => {
            l.kv("pid", m.pid).kv("sig", m.signal);
        }
        P::ListServices(m) => {
            l.text("filter", &m.filter).flag("running", m.running_only);
        }
        P::ServiceControl(m) => {
            l.text("name", &m.name)
                .kv("action", ServiceAction::label(m.action));
        }
        P::GetHardwareInfo(m) => {
            l.flag("cpu", m.include_cpu_details)
                .flag("disk", m.include_disk_details)
                .flag("net", m.include_network_details);
        }
        P::ListInstalledSoftware(m) => {
            l.text("filter", &m.filter)
                .nz("max", u64::from(m.max_entries));
        }
        P::AgentUpdate(m) => {
            l.text("version", &m.target_version)
                .kv("chunk", m.chunk_number)
                .kv("data", size(m.binary_data.len() as u64))
                .nz("total", m.total_size)
                .flag("last", m.is_last_chunk);
        }
        P::GetCapabilities(_) => {}
        P::Pong(m) => {
            l.kv("seq", m.sequence)
                .text("version", &m.version)
                .nz("up_s", m.uptime_seconds);
        }
        P::ExecuteResponse(m) => {
            l.kv("exit", m.exit_code)
                .kv("stdout", size(m.stdout.len() as u64));
            if !m.stderr.is_empty() {
                l.kv("stderr", size(m.stderr.len() as u64));
            }
            l.nz("ms", m.duration_ms)
                .flag("timed_out", m.timed_out)
                .flag("truncated", m.truncated)
                .quoted("error", &m.error);
        }
        P::FileWriteResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("written", m.bytes_written)
                .nz("chunk", u64::from(m.chunk_number));
        }
        P::FileReadResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("len", m.data.len())
                .nz("off", m.offset)
                .nz("total", m.total_size)
                .flag("eof", m.eof);
        }
        P::ShutdownResponse(m) => {
            l.push(if m.accepted { "accepted" } else { "rejected" })
                .quoted("error", &m.error);
        }
        P::ResetPasswordResponse(m) => {
            l.outcome(m.success, &m.error);
        }
        P::ConfigureNetworkResponse(m) => {
            l.outcome(m.success, &m.error);
        }
        P::QuiesceResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("frozen", m.frozen.iter().filter(|f| f.frozen).count())
                .text("token", &m.quiesce_token);
        }
        P::ThawResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("thawed", m.thawed_mount_points.len())
                .nz("frozen_ms", m.frozen_duration_ms);
        }
        P::SyncTimeResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("offset", format!("{:.3}s", m.offset_seconds))
                .text("source", &m.time_source);
        }
        P::ListDirectoryResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("entries", m.entries.len())
                .flag("more", !m.continuation_token.is_empty());
        }
        P::CreateDirectoryResponse(m) => {
            l.outcome(m.success, &m.error);
        }
        P::FileDeleteResponse(m) => {
            l.outcome(m.success, &m.error);
        }
        P::FileStatResponse(m) => {
            l.outcome(m.success, &m.error);
            if let Some(e) = &m.entry {
                l.kv("path", word(&e.path))
                    .kv("size", e.size_bytes)
                    .flag("dir", e.is_directory)
                    .flag("symlink", e.is_symlink);
            }
        }
        P::DisplayResizeResponse(m) => {
            l.outcome(m.success, &m.error)
                .push(format!("{}x{}", m.actual_width, m.actual_height));
        }
        P::ClipboardUpdateResponse(m) => {
            l.outcome(m.success, &m.error);
        }
        P::ClipboardGetResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("type", ClipboardType::label(m.r#type))
                .kv("data", size(m.data.len() as u64));
        }
        P::ListProcessesResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("processes", m.processes.len());
        }
        P::KillProcessResponse(m) => {
            l.outcome(m.success, &m.error);
        }
        P::ListServicesResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("services", m.services.len());
        }
        P::ServiceControlResponse(m) => {
            l.outcome(m.success, &m.error).text("state", &m.new_state);
        }
        P::HardwareInfoResponse(m) => {
            l.outcome(m.success, &m.error);
            if let Some(hw) = &m.hardware {
                if let Some(cpu) = &hw.cpu {
                    l.kv("cpus", cpu.threads);
                }
                if let Some(mem) = &hw.memory {
                    l.kv("mem", format!("{:.1}GiB", gib(mem.total_bytes)));
                }
                l.kv("disks", hw.disks.len())
                    .kv("nics", hw.network_adapters.len());
            }
        }
        P::ListInstalledSoftwareResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("packages", m.software.len());
        }
        P::AgentUpdateResponse(m) => {
            l.outcome(m.success, &m.error)
                .kv("state", UpdateState::label(m.state))
                .kv("progress", format!("{}%", m.progress_percent))
                .flag("restart", m.restart_required);
        }
        P::GetCapabilitiesResponse(m) => {
            l.text("version", &m.version)
                .text("os", &m.os)
                .kv("caps", m.capabilities.len());
        }
        P::Telemetry(m) => {
            l.kv("cpu", format!("{:.1}%", m.cpu_usage_percent))
                .kv(
                    "mem",
                    format!(
                        "{:.1}/{:.1}GiB",
                        gib(m.memory_used_bytes),
                        gib(m.memory_total_bytes)
                    ),
                )
                .kv("load", format!("{:.2}", m.load_avg_1))
                .kv("disks", m.disks.len())
                .kv("ifaces", m.interfaces.len())
                .text("host", &m.hostname);
        }
        P::AgentReady(m) => {
            l.text("version", &m.version)
                .quoted("os", format!("{} {}", m.os_name, m.os_version).trim())
                .text("arch", &m.architecture)
                .text("host", &m.hostname)
                .kv("caps", m.capabilities.len());
        }
        P::Error(m) => {
            l.kv("severity", ErrorSeverity::label(m.severity))
                .text("code", &m.code)
                .quoted("msg", &m.message);
        }
        P::ClipboardChanged(m) => {
            l.kv("type", ClipboardType::label(m.r#type))
                .kv("data", size(m.data.len() as u64))
                .text("mime", &m.mime_type);
        }
    }
}

impl Describe for AgentMessage {
    fn type_name(&self) -> String {
        self.payload_name().unwrap_or(NO_PAYLOAD).to_string()
    }

    fn summary(&self) -> String {
        let mut line = Line(String::with_capacity(64));
        line.text("id", &self.message_id);
        if let Some(p) = &self.payload {
            summarise(p, &mut line);
        }
        line.0
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .unwrap_or_else(|e| serde_json::json!({ "error": format!("cannot serialise: {e}") }))
    }

    fn correlation_id(&self) -> Option<String> {
        (!self.message_id.is_empty()).then(|| self.message_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::quantix::*;

    fn summary(p: impl Into<Payload>) -> String {
        AgentMessage::new("7", p).summary()
    }

    #[test]
    fn summaries_show_the_key_fields() {
        assert_eq!(summary(PingRequest { sequence: 3 }), "id=7 seq=3");
        let exec = ExecuteRequest {
            command: "uname -a".into(),
            args: vec!["-x".into(), "-y".into()],
            ..Default::default()
        };
        assert_eq!(summary(exec), "id=7 cmd=\"uname -a\" args=2");
        let out = ExecuteResponse {
            stdout: "Linux guest\n".into(),
            ..Default::default()
        };
        assert_eq!(summary(out), "id=7 exit=0 stdout=12B");
        let tel = TelemetryReport {
            cpu_usage_percent: 3.5,
            memory_used_bytes: 1_288_490_189,
            memory_total_bytes: 4 << 30,
            ..Default::default()
        };
        assert!(summary(tel).starts_with("id=7 cpu=3.5% mem=1.2/4.0GiB"));
        let write = FileWriteRequest {
            path: "/etc/hosts".into(),
            data: vec![0u8; 4096].into(),
            eof: true,
            ..Default::default()
        };
        assert_eq!(summary(write), "id=7 path=/etc/hosts len=4096 eof");
        let shut = ShutdownRequest {
            r#type: ShutdownType::Reboot as i32,
            ..Default::default()
        };
        assert_eq!(summary(shut), "id=7 type=REBOOT");
    }

    #[test]
    fn peer_text_stays_on_one_bounded_line() {
        let err = ErrorEvent {
            message: format!("line one\nline two {}", "x".repeat(100)),
            code: "has space".into(),
            ..Default::default()
        };
        let s = AgentMessage {
            payload: Some(err.into()),
            ..Default::default()
        }
        .summary();
        assert!(!s.contains('\n'), "{s}");
        assert!(s.contains("code=\"has space\""), "{s}");
        assert!(s.ends_with("…"), "{s}");
        assert!(s.len() < 120, "{s}");
    }

    #[test]
    fn describe_names_ids_and_json() {
        let msg = AgentMessage::new("42", GetHardwareInfoRequest::default());
        assert_eq!(msg.type_name(), "get_hardware_info");
        assert_eq!(msg.correlation_id().as_deref(), Some("42"));
        assert_eq!(
            msg.to_json(),
            serde_json::json!({"message_id": "42", "timestamp": null, "get_hardware_info": {
                "include_cpu_details": false, "include_disk_details": false,
                "include_network_details": false}})
        );
        let empty = AgentMessage::default();
        assert_eq!(empty.type_name(), "none");
        assert_eq!(empty.correlation_id(), None);
        assert_eq!(empty.summary(), "");
    }

    #[test]
    fn every_arm_has_a_summary_that_fits_on_a_line() {
        for (field, name) in Payload::ARMS {
            let json = serde_json::json!({ "message_id": "1", *name: {} });
            let msg: AgentMessage = serde_json::from_value(json).expect("empty arm from JSON");
            assert_eq!(
                msg.payload.as_ref().map(Payload::field_number),
                Some(*field)
            );
            let s = msg.summary();
            assert!(s.starts_with("id=1") && !s.contains('\n'), "{name}: {s}");
        }
    }
}
