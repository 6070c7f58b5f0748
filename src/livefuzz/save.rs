//! Writing what a run found: a case's connection as a capture (the tap's pcap format, so
//! `guestwire decode` and `guestwire replay` read it), and each finding as
//! `finding-<n>-<kind>.pcap` plus `finding-<n>.json` (seed, case, description, the input in hex,
//! and the command line that runs that one case again).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::exchange::Recorded;
use super::session::{CaseReport, FuzzConfig};
use crate::capture::vsockmon::{DEFAULT_GUEST_CID, DEFAULT_SERIAL_PORT};
use crate::capture::{CaptureWriter, Event, Flow, WriteError};
use crate::io::Endpoint;
use crate::wire::hex::to_hex;

/// Most input bytes written as hex into a finding's JSON (the whole input is in its pcap).
pub const MAX_JSON_HEX: usize = 1 << 20;

/// Why a finding could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The directory or a file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The capture could not be written.
    #[error("{path}: {source}")]
    Capture {
        /// The path.
        path: String,
        /// The capture error.
        source: WriteError,
    },
}

/// The files of one saved finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFinding {
    /// The capture of the case's connection.
    pub pcap: PathBuf,
    /// The JSON description.
    pub json: PathBuf,
    /// What the JSON holds.
    pub value: Value,
}

/// The guest port a capture names for `endpoint`: the hybrid-vsock port, else the virtio-serial
/// convention's port 1.
fn guest_port(endpoint: &Endpoint) -> u32 {
    match endpoint {
        Endpoint::Hvsock { port, .. } => *port,
        _ => DEFAULT_SERIAL_PORT,
    }
}

/// Writes a case's events into `writer` as one connection of its own.
pub fn record_case(
    writer: &CaptureWriter,
    endpoint: &Endpoint,
    report: &CaseReport,
) -> Result<(), WriteError> {
    let flow = Flow::vsock(
        writer.next_host_port(),
        DEFAULT_GUEST_CID,
        guest_port(endpoint),
    );
    for (at, event) in &report.run.events {
        let event = match event {
            Recorded::Connect => Event::Connect {
                by: crate::capture::Side::Host,
            },
            Recorded::Payload(direction, data) => Event::Payload {
                direction: *direction,
                data,
            },
            Recorded::Close(by, close) => Event::Disconnect {
                by: *by,
                close: *close,
            },
        };
        writer.write(*at, &flow, event)?;
    }
    Ok(())
}

/// A word for a shell: as is when plain, else in single quotes.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:=,@+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The command line that runs case `index` of `cfg` again.
pub fn reproduce_command(cfg: &FuzzConfig, index: u64, out: &Path) -> String {
    let mut words = vec![
        "guestwire".to_string(),
        "fuzz".into(),
        "--connect".into(),
        shell_word(&cfg.endpoint.to_string()),
        "--protocol".into(),
        shell_word(&cfg.protocol.to_string()),
        "--seed".into(),
        cfg.seed.to_string(),
        "--case".into(),
        index.to_string(),
        "--out".into(),
        shell_word(&out.display().to_string()),
    ];
    if cfg.probe_timeout != super::session::DEFAULT_PROBE_TIMEOUT {
        words.push("--probe-timeout".into());
        words.push(format!("{}", cfg.probe_timeout.as_secs_f64()));
    }
    words.join(" ")
}

/// The JSON of finding `n`.
pub fn finding_json(
    n: u64,
    report: &CaseReport,
    cfg: &FuzzConfig,
    out: &Path,
    pcap: &str,
) -> Value {
    let input = report.case.input();
    let received = report.run.received();
    let cut = |b: &[u8]| to_hex(&b[..b.len().min(MAX_JSON_HEX)]);
    let (kind, detail) = report
        .finding
        .as_ref()
        .map_or(("none", String::new()), |f| {
            (f.kind.name(), f.detail.clone())
        });
    json!({
        "finding": n,
        "kind": kind,
        "detail": detail,
        "protocol": cfg.protocol.to_string(),
        "endpoint": cfg.endpoint.to_string(),
        "seed": cfg.seed,
        "case": report.case.index,
        "family": report.case.family.name(),
        "description": report.case.description,
        "input_len": input.len(),
        "input_hex": cut(&input),
        "input_hex_truncated": input.len() > MAX_JSON_HEX,
        "writes": report.case.writes.iter().map(|w| w.len()).collect::<Vec<_>>(),
        "half_close": report.case.half_close,
        "received_len": received.len(),
        "received_hex": cut(&received),
        "peer_closed": report.run.exchange.peer_closed,
        "connect_error": report.run.exchange.connect_error,
        "pcap": pcap,
        "reproduce": reproduce_command(cfg, report.case.index, out),
    })
}

/// Saves finding number `n` (from 1) under `dir`, creating it if needed.
pub fn save_finding(
    dir: &Path,
    n: u64,
    report: &CaseReport,
    cfg: &FuzzConfig,
) -> Result<SavedFinding, SaveError> {
    std::fs::create_dir_all(dir).map_err(|source| SaveError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let kind = report.finding.as_ref().map_or("none", |f| f.kind.name());
    let pcap_name = format!("finding-{n}-{kind}.pcap");
    let pcap = dir.join(&pcap_name);
    let capture_err = |source| SaveError::Capture {
        path: pcap.display().to_string(),
        source,
    };
    let writer = CaptureWriter::create(&pcap).map_err(capture_err)?;
    record_case(&writer, &cfg.endpoint, report).map_err(capture_err)?;
    let value = finding_json(n, report, cfg, dir, &pcap_name);
    let json_path = dir.join(format!("finding-{n}.json"));
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    std::fs::write(&json_path, text + "\n").map_err(|source| SaveError::Io {
        path: json_path.display().to_string(),
        source,
    })?;
    Ok(SavedFinding {
        pcap,
        json: json_path,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("unix:/tmp/a.sock"), "unix:/tmp/a.sock");
        assert_eq!(shell_word("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
