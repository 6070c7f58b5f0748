//! The closing summary of a decoded capture: frames per type, bytes per direction, errors,
//! request → reply latency (p50/p99), unanswered requests, closes and resets. Pure: fed the
//! [`CaptureItem`]s in order.
//!
//! Requests and replies are paired per connection by the codecs' correlation ids
//! ([`DecodedFrame::correlation_id`](crate::wire::DecodedFrame), e.g. quantix `message_id`, qga
//! `id`): a frame towards the guest with an id is a request, a frame towards the host with the
//! same id its reply, and a frame towards the host whose id matches no request is unsolicited (an
//! event). Frames without ids are paired in order (the first unanswered request gets the next
//! reply), except those that are never requests or replies: fcexec `log` lines, qga delimiters,
//! raw data, and the qga commands that have no reply on success (`guest-shutdown`,
//! `guest-suspend-*`). Latency is from the record that completed the request to the record that
//! completed its reply; latencies are kept in a bounded [`LatencyHistogram`] (exact for the first
//! 4096 pairs, then percentiles within 0.2 %).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use super::fasthash::FastMap;
use super::item::{CaptureItem, ConnId, ItemKind};
use super::latency::LatencyHistogram;
use crate::wire::{DecodedFrame, Direction};

/// How many unanswered requests the summary lists (all are counted).
pub const UNANSWERED_LISTED: usize = 20;

/// The most requests awaiting a reply at once; beyond it the oldest count as unanswered.
pub const MAX_OUTSTANDING: usize = 100_000;

/// Frame types that are neither requests nor replies (the TUI's pairing uses the same list).
pub const NOT_PAIRED: &[&str] = &[
    "log",
    "delimiter",
    "data",
    "guest-shutdown",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
];

/// A request still waiting for its reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outstanding {
    /// Its connection.
    pub conn: ConnId,
    /// Its type.
    pub r#type: String,
    /// Its correlation id, if it has one.
    pub id: Option<String>,
    /// When it was complete.
    pub time_ns: u64,
}

/// A request waiting for its reply (its connection and id are the keys it is filed under).
#[derive(Debug, Clone, Copy)]
struct Waiting {
    /// Index into `Summary::types`.
    r#type: u32,
    time_ns: u64,
}

/// The summary being accumulated.
#[derive(Debug, Default)]
pub struct Summary {
    connections: u64,
    protocols: BTreeMap<String, u64>,
    frames: u64,
    frames_by_type: BTreeMap<String, u64>,
    frame_bytes: [u64; 2],
    errors: u64,
    errors_by_kind: BTreeMap<String, u64>,
    bad_records: u64,
    snapped: u64,
    after_close: u64,
    closes: u64,
    resets: u64,
    ended: BTreeMap<String, u64>,
    /// Requests waiting for a reply with their id, per connection (looked up by `&str`: no
    /// allocation per reply).
    by_id: FastMap<ConnId, HashMap<String, Waiting>>,
    in_order: FastMap<ConnId, VecDeque<Waiting>>,
    /// The request types seen, interned: a waiting request holds an index, not a copy.
    types: Vec<String>,
    type_ids: HashMap<String, u32>,
    outstanding: usize,
    latencies: LatencyHistogram,
    unsolicited: u64,
    unanswered: u64,
    unanswered_listed: Vec<Outstanding>,
}

/// Latency percentiles, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Latency {
    /// Request/reply pairs.
    pub count: u64,
    /// Median (nearest rank; within 0.2 % beyond 4096 pairs).
    pub p50: u64,
    /// 99th percentile (nearest rank; within 0.2 % beyond 4096 pairs).
    pub p99: u64,
    /// The slowest.
    pub max: u64,
}

fn dir_idx(d: Direction) -> usize {
    match d {
        Direction::ToGuest => 0,
        Direction::ToHost => 1,
    }
}

impl Latency {
    /// The percentiles of `h` (`None` when it is empty).
    pub fn of(h: &LatencyHistogram) -> Option<Self> {
        Some(Self {
            count: h.count(),
            p50: h.percentile(50)?,
            p99: h.percentile(99)?,
            max: h.max(),
        })
    }
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Self {
        Self::default()
    }

    fn give_up(&mut self, conn: ConnId, id: Option<String>, w: Waiting) {
        self.unanswered += 1;
        if self.unanswered_listed.len() < UNANSWERED_LISTED {
            let o = self.outstanding_of(conn, id, w);
            self.unanswered_listed.push(o);
        }
    }

    fn outstanding_of(&self, conn: ConnId, id: Option<String>, w: Waiting) -> Outstanding {
        Outstanding {
            conn,
            r#type: self
                .types
                .get(w.r#type as usize)
                .cloned()
                .unwrap_or_default(),
            id,
            time_ns: w.time_ns,
        }
    }

    /// The interned index of request type `name`.
    fn type_id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.type_ids.get(name) {
            return i;
        }
        let i = u32::try_from(self.types.len()).unwrap_or(u32::MAX);
        self.types.push(name.to_string());
        self.type_ids.insert(name.to_string(), i);
        i
    }

    /// Takes one item.
    pub fn observe(&mut self, item: &CaptureItem) {
        match &item.kind {
            ItemKind::Opened { .. } => self.connections += 1,
            ItemKind::Protocol { protocol, .. } => {
                *self.protocols.entry(protocol.to_string()).or_default() += 1;
            }
            ItemKind::Frame { direction, frame } => {
                self.frames += 1;
                match self.frames_by_type.get_mut(frame.type_name.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        self.frames_by_type.insert(frame.type_name.clone(), 1);
                    }
                }
                self.frame_bytes[dir_idx(*direction)] += frame.len;
                self.pair(item.conn, item.time_ns, *direction, frame);
            }
            ItemKind::Error { error, .. } => {
                self.errors += 1;
                *self
                    .errors_by_kind
                    .entry(error.kind().to_string())
                    .or_default() += 1;
            }
            ItemKind::BadRecord { error } => {
                self.bad_records += 1;
                *self
                    .errors_by_kind
                    .entry(error.kind().to_string())
                    .or_default() += 1;
            }
            ItemKind::Snapped { .. } => self.snapped += 1,
            ItemKind::AfterClose { .. } => self.after_close += 1,
            ItemKind::Closed { reset: true, .. } => self.resets += 1,
            ItemKind::Closed { reset: false, .. } => self.closes += 1,
            ItemKind::Ended { reason } => {
                *self.ended.entry(reason.name().to_string()).or_default() += 1;
                self.conn_ended(item.conn);
            }
        }
    }

    fn conn_ended(&mut self, conn: ConnId) {
        let mut left: Vec<(Option<String>, Waiting)> = self
            .in_order
            .remove(&conn)
            .unwrap_or_default()
            .into_iter()
            .map(|w| (None, w))
            .collect();
        if let Some(waiting) = self.by_id.remove(&conn) {
            left.extend(waiting.into_iter().map(|(id, w)| (Some(id), w)));
        }
        left.sort_by_key(|(_, w)| w.time_ns);
        self.outstanding -= left.len().min(self.outstanding);
        for (id, w) in left {
            self.give_up(conn, id, w);
        }
    }

    fn pair(&mut self, conn: ConnId, time: u64, direction: Direction, frame: &DecodedFrame) {
        if NOT_PAIRED.contains(&frame.type_name.as_str()) {
            return;
        }
        match direction {
            Direction::ToGuest => {
                let w = Waiting {
                    r#type: self.type_id(&frame.type_name),
                    time_ns: time,
                };
                if self.outstanding >= MAX_OUTSTANDING {
                    self.give_up(conn, frame.correlation_id.clone(), w);
                    return;
                }
                self.outstanding += 1;
                match &frame.correlation_id {
                    Some(id) => {
                        let waiting = self.by_id.entry(conn).or_default();
                        if let Some(old) = waiting.insert(id.clone(), w) {
                            self.outstanding -= 1;
                            self.give_up(conn, Some(id.clone()), old);
                        }
                    }
                    None => self.in_order.entry(conn).or_default().push_back(w),
                }
            }
            Direction::ToHost => {
                let request = match &frame.correlation_id {
                    Some(id) => self
                        .by_id
                        .get_mut(&conn)
                        .and_then(|waiting| waiting.remove(id.as_str())),
                    None => self.in_order.get_mut(&conn).and_then(VecDeque::pop_front),
                };
                match request {
                    Some(r) => {
                        self.outstanding -= 1;
                        self.latencies.record(time.saturating_sub(r.time_ns));
                    }
                    None => self.unsolicited += 1,
                }
            }
        }
    }

    /// Frames decoded.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Wire errors plus bad records (what makes `guestwire decode` exit 1).
    pub fn errors(&self) -> u64 {
        self.errors + self.bad_records + self.snapped + self.after_close
    }

    /// Frames per type.
    pub fn frames_by_type(&self) -> &BTreeMap<String, u64> {
        &self.frames_by_type
    }

    /// Resets seen.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Request → reply latency so far (`None` without a pair): exact for the first
    /// [`EXACT_MAX`](super::latency::EXACT_MAX) pairs, then within 0.2 % (bounded memory; see
    /// [`LatencyHistogram`]).
    pub fn latency(&self) -> Option<Latency> {
        Latency::of(&self.latencies)
    }

    /// The latencies themselves.
    pub fn latencies(&self) -> &LatencyHistogram {
        &self.latencies
    }

    /// Requests without a reply: those of ended connections, plus (all counted as unanswered
    /// here) those still waiting. Returns the count and the first [`UNANSWERED_LISTED`].
    pub fn unanswered(&self) -> (u64, Vec<Outstanding>) {
        let mut listed = self.unanswered_listed.clone();
        let mut waiting: Vec<(ConnId, Option<&String>, Waiting)> = self
            .by_id
            .iter()
            .flat_map(|(c, m)| m.iter().map(|(id, w)| (*c, Some(id), *w)))
            .chain(
                self.in_order
                    .iter()
                    .flat_map(|(c, q)| q.iter().map(|w| (*c, None, *w))),
            )
            .collect();
        waiting.sort_by_key(|(c, _, w)| (w.time_ns, *c));
        for (c, id, w) in waiting
            .iter()
            .take(UNANSWERED_LISTED.saturating_sub(listed.len()))
        {
            listed.push(self.outstanding_of(*c, id.cloned(), *w));
        }
        (self.unanswered + waiting.len() as u64, listed)
    }

    /// The summary as one JSON object (under `summary`), with the stream byte counts the
    /// reassembler measured (`bytes`: towards the guest, towards the host).
    pub fn to_json(&self, bytes: [u64; 2], records: u64) -> serde_json::Value {
        let (unanswered, listed) = self.unanswered();
        serde_json::json!({ "summary": {
            "records": records,
            "connections": self.connections,
            "protocols": self.protocols,
            "frames": self.frames,
            "frames_by_type": self.frames_by_type,
            "bytes": { "to_guest": bytes[0], "to_host": bytes[1] },
            "frame_bytes": { "to_guest": self.frame_bytes[0], "to_host": self.frame_bytes[1] },
            "errors": self.errors,
            "bad_records": self.bad_records,
            "snapped_records": self.snapped,
            "bytes_after_close": self.after_close,
            "errors_by_kind": self.errors_by_kind,
            "latency_ns": self.latency(),
            "unanswered": unanswered,
            "unanswered_requests": listed,
            "unsolicited": self.unsolicited,
            "closes": self.closes,
            "resets": self.resets,
            "ended": self.ended,
        }})
    }

    /// The summary as text lines.
    pub fn to_text(&self, bytes: [u64; 2], records: u64) -> String {
        let mut s = String::new();
        let join = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "summary: {records} records, {} connections ({}), {} frames, {} errors",
            self.connections,
            join(&self.protocols),
            self.frames,
            self.errors()
        );
        let _ = writeln!(s, "  frames: {}", join(&self.frames_by_type));
        let _ = writeln!(s, "  bytes: {} to guest, {} to host", bytes[0], bytes[1]);
        if !self.errors_by_kind.is_empty() {
            let _ = writeln!(s, "  errors: {}", join(&self.errors_by_kind));
        }
        match self.latency() {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "  request→reply: {} pairs, p50 {}, p99 {}, max {}",
                    l.count,
                    human_ns(l.p50),
                    human_ns(l.p99),
                    human_ns(l.max)
                );
            }
            None => {
                let _ = writeln!(s, "  request→reply: no pairs");
            }
        }
        let (unanswered, listed) = self.unanswered();
        let _ = writeln!(
            s,
            "  unanswered requests: {unanswered}; unsolicited frames from the guest: {}",
            self.unsolicited
        );
        for o in &listed {
            let _ = writeln!(
                s,
                "    #{} {}{}",
                o.conn,
                o.r#type,
                o.id.as_deref()
                    .map(|i| format!(" id={i}"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(
            s,
            "  closes: {}, resets: {}; connections ended: {}",
            self.closes,
            self.resets,
            join(&self.ended)
        );
        s
    }
}

/// `1.234 ms`-style durations.
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.3} ms", ns as f64 / 1e6),
        _ => format!("{:.3} s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(t: &str, id: Option<&str>) -> DecodedFrame {
        DecodedFrame {
            offset: 0,
            len: 10,
            type_name: t.into(),
            summary: String::new(),
            message: serde_json::Value::Null,
            correlation_id: id.map(str::to_string),
            raw: None,
        }
    }

    fn item(conn: ConnId, time_ns: u64, direction: Direction, f: DecodedFrame) -> CaptureItem {
        CaptureItem {
            time_ns,
            conn,
            kind: ItemKind::Frame {
                direction,
                frame: f,
            },
        }
    }

    #[test]
    fn ids_pair_requests_with_replies_and_events_stay_unsolicited() {
        let mut s = Summary::new();
        s.observe(&item(1, 100, Direction::ToGuest, frame("ping", Some("1"))));
        s.observe(&item(
            1,
            150,
            Direction::ToHost,
            frame("telemetry", Some("t")),
        ));
        s.observe(&item(
            1,
            200,
            Direction::ToGuest,
            frame("execute", Some("2")),
        ));
        s.observe(&item(1, 300, Direction::ToHost, frame("pong", Some("1"))));
        s.observe(&item(
            1,
            1200,
            Direction::ToHost,
            frame("execute_response", Some("2")),
        ));
        s.observe(&item(
            1,
            1300,
            Direction::ToGuest,
            frame("shutdown", Some("3")),
        ));
        let l = s.latency().expect("pairs");
        assert_eq!((l.count, l.p50, l.p99, l.max), (2, 200, 1000, 1000));
        assert_eq!(s.unsolicited, 1);
        let (n, listed) = s.unanswered();
        assert_eq!(n, 1);
        assert_eq!(listed[0].r#type, "shutdown");
    }

    #[test]
    fn frames_without_ids_pair_in_order_skipping_logs() {
        let mut s = Summary::new();
        s.observe(&item(2, 0, Direction::ToGuest, frame("request", None)));
        s.observe(&item(2, 5, Direction::ToHost, frame("log", None)));
        s.observe(&item(2, 9, Direction::ToHost, frame("result", None)));
        assert_eq!(s.latency().map(|l| l.p50), Some(9));
        assert_eq!(s.unanswered().0, 0);
    }

    #[test]
    fn an_ended_connection_makes_its_requests_unanswered() {
        let mut s = Summary::new();
        s.observe(&item(3, 0, Direction::ToGuest, frame("request", None)));
        s.observe(&CaptureItem {
            time_ns: 10,
            conn: 3,
            kind: ItemKind::Ended {
                reason: super::super::item::EndReason::Reset,
            },
        });
        assert_eq!(s.unanswered().0, 1);
        assert_eq!(s.outstanding, 0);
        let text = s.to_text([1, 2], 3);
        assert!(text.contains("unanswered requests: 1"), "{text}");
        let v = s.to_json([1, 2], 3);
        assert_eq!(v["summary"]["unanswered"], 1);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut h = LatencyHistogram::new();
        (1..=100).for_each(|v| h.record(v));
        let l = Latency::of(&h).expect("values");
        assert_eq!((l.p50, l.p99, l.max), (50, 99, 100));
    }
}
