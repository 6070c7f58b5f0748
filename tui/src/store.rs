//! The one state store of the UI: a bounded ring of the last frames, running statistics, socket
//! samples, and what the user chose (view, selection, filter, pause, follow, playback speed).
//! Pure: sources push events into it with their times, keys become [`Action`]s applied to it,
//! and views only read it.

use std::collections::VecDeque;

use guestwire::capture::{CaptureItem, ConnId, ItemKind, Summary};
use guestwire::wire::Direction;

use crate::faults::FaultPanel;
use crate::keys::Action;
use crate::pairing::Pairing;
use crate::rates::{Rates, Second, Window};
use crate::sources::{SocketRow, SourceEvent};
pub use crate::view::{Speed, View};

/// The default number of frames kept in memory.
pub const DEFAULT_RING: usize = 10_000;

/// The most bytes of each frame kept for the hex dump (the rest are counted, not kept).
pub const RAW_KEEP: usize = 4096;

/// How many samples of a socket's queue depth are kept (for its sparkline).
pub const QUEUE_HISTORY: usize = 60;

/// One row of the frame list: a decoded frame or bad bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRow {
    /// Sequence number since the start (stable while the ring moves).
    pub seq: u64,
    /// Capture time, nanoseconds since 1970.
    pub time_ns: u64,
    /// The connection.
    pub conn: ConnId,
    /// Which way (none for a bad record).
    pub direction: Option<Direction>,
    /// The message type, or the error kind.
    pub type_name: String,
    /// Key fields, or the error message.
    pub summary: String,
    /// Bytes on the wire (0 for an error).
    pub size: u64,
    /// For a reply: how long after its request it came.
    pub latency_ns: Option<u64>,
    /// Whether this row is bad input.
    pub error: bool,
    /// The correlation id, if any.
    pub id: Option<String>,
    /// The decoded message (or the error) as JSON.
    pub message: serde_json::Value,
    /// The frame's first bytes (at most [`RAW_KEEP`]), when the source kept them.
    pub raw: Option<bytes::Bytes>,
}

/// The state of the UI.
#[derive(Debug)]
pub struct Store {
    capacity: usize,
    frames: VecDeque<FrameRow>,
    next_seq: u64,
    dropped: u64,
    summary: Summary,
    first_ns: Option<u64>,
    last_ns: u64,
    bytes: [u64; 2],
    rates: Rates,
    pairing: Pairing,
    sockets: Vec<SocketRow>,
    notices: VecDeque<String>,
    /// The source's name, for the status line.
    pub source: String,
    /// The view shown.
    pub view: View,
    /// The selected row's sequence number.
    pub selected: Option<u64>,
    /// The selected socket row.
    pub socket_selected: usize,
    /// The applied filter (type or text, case-insensitive).
    pub filter: String,
    /// The filter being typed, while `/` is active.
    pub filter_input: Option<String>,
    /// Playback paused.
    pub paused: bool,
    /// The selection follows the newest frame.
    pub follow: bool,
    /// The help overlay is shown.
    pub help: bool,
    /// The user asked to quit.
    pub quit: bool,
    /// Capture playback speed.
    pub speed: Speed,
    /// Playback position: capture nanoseconds after the first record that are due.
    pub clock_ns: u64,
    /// The source has ended.
    pub ended: bool,
    /// Events the source dropped because the UI fell behind (as the source last reported).
    pub source_dropped: u64,
    /// The Faults view: the mock VMM's fault menu.
    pub faults: FaultPanel,
}

fn lower_contains(hay: &str, needle_lower: &str) -> bool {
    hay.to_lowercase().contains(needle_lower)
}

impl Store {
    /// A store keeping the last `capacity` frames (at least 1).
    pub fn new(capacity: usize, source: impl Into<String>) -> Self {
        Self {
            capacity: capacity.max(1),
            frames: VecDeque::new(),
            next_seq: 0,
            dropped: 0,
            summary: Summary::new(),
            first_ns: None,
            last_ns: 0,
            bytes: [0; 2],
            rates: Rates::new(),
            pairing: Pairing::default(),
            sockets: Vec::new(),
            notices: VecDeque::new(),
            source: source.into(),
            view: View::Frames,
            selected: None,
            socket_selected: 0,
            filter: String::new(),
            filter_input: None,
            paused: false,
            follow: true,
            help: false,
            quit: false,
            speed: Speed::X1,
            clock_ns: 0,
            ended: false,
            source_dropped: 0,
            faults: FaultPanel::default(),
        }
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Frames that fell out of the ring (evicted: the capture file still has them).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The frames in the ring, oldest first.
    pub fn frames(&self) -> &VecDeque<FrameRow> {
        &self.frames
    }

    /// The whole-run summary (frames, errors, latency, unanswered requests).
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Frame bytes towards the guest and towards the host.
    pub fn bytes(&self) -> [u64; 2] {
        self.bytes
    }

    /// The first item's capture time.
    pub fn first_ns(&self) -> Option<u64> {
        self.first_ns
    }

    /// Per-second counts, oldest first (the last may be incomplete).
    pub fn seconds(&self) -> &VecDeque<Second> {
        self.rates.seconds()
    }

    /// The moving window: rates and reply latency over the last
    /// [`WINDOW_SECS`](crate::rates::WINDOW_SECS) seconds of capture time.
    pub fn window(&self) -> Window {
        self.rates.window()
    }

    /// The latest socket sample.
    pub fn sockets(&self) -> &[SocketRow] {
        &self.sockets
    }

    /// Recent notices from the source (newest last).
    pub fn notices(&self) -> &VecDeque<String> {
        &self.notices
    }

    /// Frames per second and bytes per second over the last complete second (the current one
    /// while it is the only one).
    pub fn rates(&self) -> (u64, u64) {
        self.rates.last_second()
    }

    /// Applies one event from a source.
    pub fn ingest(&mut self, event: SourceEvent) {
        match event {
            SourceEvent::Item(item) => self.item(item),
            SourceEvent::Sockets(rows) => {
                self.sockets = rows;
                if self.socket_selected >= self.sockets.len() {
                    self.socket_selected = self.sockets.len().saturating_sub(1);
                }
            }
            SourceEvent::Notice(text) => {
                if self.notices.len() >= 20 {
                    self.notices.pop_front();
                }
                self.notices.push_back(text);
            }
            SourceEvent::End => self.ended = true,
        }
    }

    fn item(&mut self, item: CaptureItem) {
        self.summary.observe(&item);
        self.first_ns.get_or_insert(item.time_ns);
        self.last_ns = self.last_ns.max(item.time_ns);
        let row = match item.kind {
            ItemKind::Frame { direction, frame } => {
                let d = match direction {
                    Direction::ToGuest => 0,
                    Direction::ToHost => 1,
                };
                self.bytes[d] += frame.len;
                let latency_ns = self.pairing.pair(
                    item.conn,
                    direction,
                    &frame.type_name,
                    &frame.correlation_id,
                    item.time_ns,
                );
                self.rates.frame(item.time_ns, frame.len, latency_ns);
                FrameRow {
                    seq: 0,
                    time_ns: item.time_ns,
                    conn: item.conn,
                    direction: Some(direction),
                    type_name: frame.type_name,
                    summary: frame.summary,
                    size: frame.len,
                    latency_ns,
                    error: false,
                    id: frame.correlation_id,
                    message: frame.message,
                    raw: frame.raw,
                }
            }
            ItemKind::Error { direction, error } => FrameRow {
                seq: 0,
                time_ns: item.time_ns,
                conn: item.conn,
                direction: Some(direction),
                type_name: error.kind().to_string(),
                summary: error.to_string(),
                size: 0,
                latency_ns: None,
                error: true,
                id: None,
                message: error.to_json(),
                raw: None,
            },
            ItemKind::BadRecord { error } => FrameRow {
                seq: 0,
                time_ns: item.time_ns,
                conn: item.conn,
                direction: None,
                type_name: "bad_record".into(),
                summary: error.to_string(),
                size: 0,
                latency_ns: None,
                error: true,
                id: None,
                message: error.to_json(),
                raw: None,
            },
            ItemKind::Snapped { direction, missing } => FrameRow {
                seq: 0,
                time_ns: item.time_ns,
                conn: item.conn,
                direction: Some(direction),
                type_name: "snapped".into(),
                summary: format!("{missing} bytes missing (snaplen)"),
                size: 0,
                latency_ns: None,
                error: true,
                id: None,
                message: serde_json::json!({ "missing": missing }),
                raw: None,
            },
            _ => return,
        };
        self.push_row(row);
    }

    fn push_row(&mut self, mut row: FrameRow) {
        row.seq = self.next_seq;
        self.next_seq += 1;
        if self.frames.len() == self.capacity
            && let Some(old) = self.frames.pop_front()
        {
            self.dropped += 1;
            if self.selected == Some(old.seq) {
                self.selected = self.frames.front().map(|r| r.seq);
            }
        }
        let shown = self.matches(&row);
        let seq = row.seq;
        self.frames.push_back(row);
        if shown && (self.follow || self.selected.is_none()) {
            self.selected = Some(seq);
        }
    }

    /// Whether a row passes the filter.
    pub fn matches(&self, row: &FrameRow) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let f = self.filter.to_lowercase();
        lower_contains(&row.type_name, &f) || lower_contains(&row.summary, &f)
    }

    /// The rows that pass the filter, oldest first.
    pub fn visible(&self) -> Vec<&FrameRow> {
        self.frames.iter().filter(|r| self.matches(r)).collect()
    }

    /// The selected row, if it is still in the ring.
    pub fn selected_row(&self) -> Option<&FrameRow> {
        let seq = self.selected?;
        let first = self.frames.front()?.seq;
        let i = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.frames.get(i)
    }

    /// Advances the playback clock by `elapsed_ns` of real time (scaled by the speed) unless
    /// paused.
    pub fn advance(&mut self, elapsed_ns: u64) {
        if self.paused {
            return;
        }
        self.clock_ns = match self.speed {
            Speed::X1 => self.clock_ns.saturating_add(elapsed_ns),
            Speed::X10 => self.clock_ns.saturating_add(elapsed_ns.saturating_mul(10)),
            Speed::Max => u64::MAX,
        };
    }

    fn move_selection(&mut self, delta: isize) {
        let visible: Vec<u64> = self.visible().iter().map(|r| r.seq).collect();
        if visible.is_empty() {
            return;
        }
        let cur = self
            .selected
            .and_then(|s| visible.iter().position(|r| *r == s))
            .unwrap_or(visible.len() - 1);
        let next = cur.saturating_add_signed(delta).min(visible.len() - 1);
        self.selected = Some(visible[next]);
    }

    fn move_socket(&mut self, delta: isize) {
        let n = self.sockets.len();
        if n > 0 {
            self.socket_selected = self.socket_selected.saturating_add_signed(delta).min(n - 1);
        }
    }

    /// Applies one user action.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Quit => self.quit = true,
            Action::NextView => self.view = View::ALL[(self.view.index() + 1) % View::ALL.len()],
            Action::PrevView => {
                self.view = View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()]
            }
            Action::Down | Action::Up | Action::Top | Action::Bottom
                if self.view == View::Sockets =>
            {
                match action {
                    Action::Down => self.move_socket(1),
                    Action::Up => self.move_socket(-1),
                    Action::Top => self.socket_selected = 0,
                    _ => self.socket_selected = self.sockets.len().saturating_sub(1),
                }
            }
            Action::Down
            | Action::Up
            | Action::Top
            | Action::Bottom
            | Action::Open
            | Action::TogglePause
                if self.view == View::Faults =>
            {
                match action {
                    Action::Down => self.faults.move_by(1),
                    Action::Up => self.faults.move_by(-1),
                    Action::Top => self.faults.jump(false),
                    Action::Bottom => self.faults.jump(true),
                    _ => self.faults.toggle(),
                }
            }
            Action::Down => self.move_selection(1),
            Action::Up => {
                self.follow = false;
                self.move_selection(-1)
            }
            Action::Top => {
                self.follow = false;
                self.selected = self.visible().first().map(|r| r.seq);
            }
            Action::Bottom => {
                self.follow = true;
                self.selected = self.visible().last().map(|r| r.seq);
            }
            Action::Open => {
                if self.view == View::Frames && self.selected_row().is_some() {
                    self.follow = false;
                    self.view = View::Detail;
                }
            }
            Action::Back => {
                if self.help {
                    self.help = false;
                } else if self.view == View::Detail {
                    self.view = View::Frames;
                } else if !self.filter.is_empty() {
                    self.filter.clear();
                }
            }
            Action::StartFilter => self.filter_input = Some(self.filter.clone()),
            Action::FilterChar(c) => {
                if let Some(f) = &mut self.filter_input {
                    f.push(c);
                }
            }
            Action::FilterBackspace => {
                if let Some(f) = &mut self.filter_input {
                    f.pop();
                }
            }
            Action::FilterApply => {
                if let Some(f) = self.filter_input.take() {
                    self.filter = f;
                    let keep = self.selected_row().is_some_and(|r| self.matches(r));
                    if !keep {
                        self.selected = self.visible().last().map(|r| r.seq);
                    }
                }
            }
            Action::FilterCancel => self.filter_input = None,
            Action::TogglePause => self.paused = !self.paused,
            Action::ToggleFollow => {
                self.follow = !self.follow;
                if self.follow {
                    self.selected = self.visible().last().map(|r| r.seq);
                }
            }
            Action::ToggleHelp => self.help = !self.help,
            Action::CycleSpeed => self.speed = self.speed.next(),
        }
    }
}
