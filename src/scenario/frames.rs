//! The frames a scenario's capture recorded, for `frames` steps and for naming the first frame
//! where a failing scenario went wrong.

use std::path::Path;

use super::model::FramesCheck;
use crate::capture::{CaptureReader, ItemKind, ProtocolChoice, Reassembler};
use crate::wire::protocol::Protocol;

/// The type name a decode error is listed under (bytes that are no frame of the protocol;
/// distinct from a protocol's own error messages, such as qga's `error`).
pub const DECODE_ERROR: &str = "decode_error";

/// One frame (or decode error) of the capture, in capture order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFrame {
    /// 1-based index among the capture's frames and errors.
    pub index: usize,
    /// Time since the capture's first record, in nanoseconds.
    pub time_ns: u64,
    /// Capture time (nanoseconds since 1970).
    pub at_ns: u64,
    /// Connection number.
    pub conn: u64,
    /// `to_guest` or `to_host`.
    pub direction: &'static str,
    /// The frame's type (`error` for a decode error).
    pub type_name: String,
    /// Key fields, or the error.
    pub summary: String,
}

impl RecordedFrame {
    /// `to_host:pong`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.direction, self.type_name)
    }

    /// Whether this frame is what `pattern` (`to_host:pong` or `pong`) names.
    pub fn is(&self, pattern: &str) -> bool {
        match pattern.split_once(':') {
            Some((d, t)) => d == self.direction && t == self.type_name,
            None => pattern == self.type_name,
        }
    }

    /// One line for reports.
    pub fn line(&self) -> String {
        format!(
            "frame #{} at {:.6}s conn {} {} {} {}",
            self.index,
            self.time_ns as f64 / 1e9,
            self.conn,
            self.direction,
            self.type_name,
            self.summary
        )
    }
}

/// Reads every frame of the capture at `path`, decoded as `protocol`.
pub fn read_frames(path: &Path, protocol: &Protocol) -> Result<Vec<RecordedFrame>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = CaptureReader::new(std::io::BufReader::new(file));
    let mut re = Reassembler::new(ProtocolChoice::Fixed(protocol.clone()), None);
    let mut out = Vec::new();
    let mut first: Option<u64> = None;
    let mut take = |re: &mut Reassembler, out: &mut Vec<RecordedFrame>| {
        while let Some(item) = re.poll() {
            let t0 = *first.get_or_insert(item.time_ns);
            let (direction, type_name, summary) = match &item.kind {
                ItemKind::Frame { direction, frame } => (
                    direction.name(),
                    frame.type_name.clone(),
                    frame.summary.clone(),
                ),
                ItemKind::Error { direction, error } => (
                    direction.name(),
                    DECODE_ERROR.to_string(),
                    error.to_string(),
                ),
                _ => continue,
            };
            out.push(RecordedFrame {
                index: out.len() + 1,
                time_ns: item.time_ns.saturating_sub(t0),
                at_ns: item.time_ns,
                conn: item.conn,
                direction,
                type_name,
                summary,
            });
        }
    };
    while let Some(record) = reader.next_record() {
        match record {
            Ok(r) => re.push(&r),
            // The record in flight when the check ran: stop there.
            Err(_) => break,
        }
        take(&mut re, &mut out);
    }
    re.finish();
    take(&mut re, &mut out);
    Ok(out)
}

/// Checks a `frames` step against the frames recorded so far.
pub fn check(frames: &[RecordedFrame], c: &FramesCheck) -> Vec<String> {
    let mut bad = Vec::new();
    let listing = || {
        frames
            .iter()
            .map(RecordedFrame::label)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for want in &c.seen {
        if !frames.iter().any(|f| f.is(want)) {
            bad.push(format!("expected a {want} frame; frames: [{}]", listing()));
        }
    }
    for unwanted in &c.not_seen {
        if let Some(f) = frames.iter().find(|f| f.is(unwanted)) {
            bad.push(format!("expected no {unwanted} frame, got {}", f.line()));
        }
    }
    let mut at = 0;
    for (i, want) in c.order.iter().enumerate() {
        match frames[at..].iter().position(|f| f.is(want)) {
            Some(p) => at += p + 1,
            None => {
                bad.push(format!(
                    "expected {want} (#{} of the order) after frame #{at}; frames: [{}]",
                    i + 1,
                    listing()
                ));
                break;
            }
        }
    }
    let errors = frames
        .iter()
        .filter(|f| f.type_name == DECODE_ERROR)
        .count();
    if let Some(max) = c.errors_max
        && errors > max
    {
        bad.push(format!(
            "expected at most {max} decode errors, got {errors}"
        ));
    }
    if let Some(min) = c.errors_min
        && errors < min
    {
        bad.push(format!(
            "expected at least {min} decode errors, got {errors}"
        ));
    }
    bad
}

/// The first frame where a failing step diverged: its first decode error, else the last frame
/// the guest sent during it, else the last frame before it (nothing came back). `since_ns`: the
/// step's start in capture time.
pub fn first_divergence(frames: &[RecordedFrame], since_ns: u64) -> String {
    let start = frames.partition_point(|f| f.at_ns < since_ns);
    let during = &frames[start..];
    if let Some(e) = during.iter().find(|f| f.type_name == DECODE_ERROR) {
        return e.line();
    }
    if let Some(f) = during.iter().rev().find(|f| f.direction == "to_host") {
        return format!("{} (the last reply during the failing step)", f.line());
    }
    match during.last().or(frames.last()) {
        Some(f) => format!("{} (nothing came back after it)", f.line()),
        None => "no frame was recorded".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(index: usize, direction: &'static str, t: &str) -> RecordedFrame {
        RecordedFrame {
            index,
            time_ns: index as u64 * 1000,
            at_ns: index as u64 * 1000,
            conn: 1,
            direction,
            type_name: t.into(),
            summary: String::new(),
        }
    }

    #[test]
    fn seen_not_seen_and_order() {
        let frames = [
            f(1, "to_host", "agent_ready"),
            f(2, "to_guest", "ping"),
            f(3, "to_host", "pong"),
        ];
        let ok = FramesCheck {
            seen: vec!["to_host:pong".into(), "ping".into()],
            not_seen: vec!["telemetry".into()],
            order: vec!["agent_ready".into(), "to_host:pong".into()],
            errors_max: Some(0),
            ..FramesCheck::default()
        };
        assert!(check(&frames, &ok).is_empty());
        let bad = FramesCheck {
            order: vec!["pong".into(), "ping".into()],
            not_seen: vec!["to_guest:ping".into()],
            ..FramesCheck::default()
        };
        assert_eq!(check(&frames, &bad).len(), 2);
        assert!(first_divergence(&frames, 2000).contains("#3"));
        assert!(first_divergence(&frames, 3001).contains("nothing came back"));
    }
}
