//! [`FaultPlan`]: a list of [`FaultSpec`]s, their counters and a seeded PRNG, asked by a proxy,
//! per direction, what to do with each chunk ([`on_bytes`](FaultPlan::on_bytes)), each frame
//! ([`on_frame`](FaultPlan::on_frame)) and the close ([`on_close`](FaultPlan::on_close)).
//! Pure: time is the `Duration` since the stream started, passed in; randomness (probability,
//! jitter, slice sizes) comes from the plan's seed, so a run is reproducible from it.
//!
//! Rules: specs are tried in order and the first that fires takes the chunk or frame (the others
//! see nothing of it); `after_bytes` splits a chunk at exactly that byte; a chunk or frame that
//! meets every other condition draws once for `probability`; a firing counts towards `times`
//! (`limit_data` fires when it closes; `vm_pause` fires once unless `times` says otherwise).
//! Once a direction is closed or reset, its input is dropped. Setup faults (`guest_before_host`,
//! `stale_client`, `stale_socket`, `ch_shutdown_wedge`) are for the mock VMM and agent, which
//! read them from [`setup_faults`](FaultPlan::setup_faults); they never touch a stream.

use std::time::Duration;

use bytes::Bytes;

use super::action::Action;
use super::kind::FaultKind;
use super::malform::malform_writes;
use super::rng::XorShift64;
use super::spec::FaultSpec;
use crate::wire::Direction;
use crate::wire::protocol::Protocol;

/// The pause between the two writes of `malformed:split_handshake`, long enough for a VMM to
/// read them separately.
pub const SPLIT_GAP: Duration = Duration::from_millis(10);

/// One spec and its counters.
#[derive(Debug, Clone)]
struct Entry {
    spec: FaultSpec,
    fired: u64,
    /// `limit_data`: bytes passed so far, per direction.
    passed: [u64; 2],
}

/// One direction's stream.
#[derive(Debug, Clone, Default)]
struct Stream {
    bytes: u64,
    frames: u64,
    closed: bool,
    held: Option<Bytes>,
}

/// The faults of one connection, and where each stands.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    entries: Vec<Entry>,
    protocol: Protocol,
    rng: XorShift64,
    streams: [Stream; 2],
}

fn idx(d: Direction) -> usize {
    match d {
        Direction::ToGuest => 0,
        Direction::ToHost => 1,
    }
}

fn len64(b: &[u8]) -> u64 {
    u64::try_from(b.len()).unwrap_or(u64::MAX)
}

impl FaultPlan {
    /// A plan for a connection speaking `protocol` (for `malformed`), with its PRNG seeded.
    pub fn new(specs: Vec<FaultSpec>, protocol: Protocol, seed: u64) -> Self {
        Self {
            entries: specs
                .into_iter()
                .map(|spec| Entry {
                    spec,
                    fired: 0,
                    passed: [0; 2],
                })
                .collect(),
            protocol,
            rng: XorShift64::new(seed),
            streams: Default::default(),
        }
    }

    /// The specs that the mock VMM or agent sets up rather than a proxy does to a stream.
    pub fn setup_faults(&self) -> impl Iterator<Item = &FaultSpec> {
        self.entries
            .iter()
            .map(|e| &e.spec)
            .filter(|s| s.kind.is_setup_fault())
    }

    /// Whether some fault in `direction` needs the stream cut into frames: a frame fault, or a
    /// trigger on frame type or frame count.
    pub fn needs_frames(&self, direction: Direction) -> bool {
        self.entries.iter().any(|e| {
            e.spec.direction.includes(direction)
                && !e.spec.kind.is_setup_fault()
                && (e.spec.kind.is_frame_fault()
                    || e.spec.trigger.on_type.is_some()
                    || e.spec.trigger.after_frames.is_some())
        })
    }

    /// Whether the plan has no stream fault at all (a proxy can copy bytes straight through).
    pub fn is_passthrough(&self) -> bool {
        self.entries.iter().all(|e| e.spec.kind.is_setup_fault())
    }

    /// How many times the `i`th spec has fired.
    pub fn fired(&self, i: usize) -> u64 {
        self.entries.get(i).map_or(0, |e| e.fired)
    }

    /// Whether the stream travelling `direction` has been closed or reset.
    pub fn is_closed(&self, direction: Direction) -> bool {
        self.streams[idx(direction)].closed
    }

    /// What to do with a chunk of the byte stream travelling `direction` (for a proxy that does
    /// not frame the stream; frame faults never fire here).
    pub fn on_bytes(&mut self, direction: Direction, bytes: &[u8], now: Duration) -> Vec<Action> {
        let d = idx(direction);
        let start = self.streams[d].bytes;
        let end = start.saturating_add(len64(bytes));
        let mut cuts: Vec<u64> = self
            .entries
            .iter()
            .filter(|e| e.spec.direction.includes(direction))
            .filter_map(|e| e.spec.trigger.after_bytes)
            .filter(|n| *n > start && *n < end)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = Vec::new();
        let mut from = 0usize;
        for cut in cuts.into_iter().chain([end]) {
            let to = usize::try_from(cut - start).unwrap_or(bytes.len());
            let piece = bytes.get(from..to).unwrap_or_default();
            out.extend(self.on_piece(direction, piece, now, None));
            from = to;
        }
        out
    }

    /// What to do with one whole frame travelling `direction`, of the type its decoder names
    /// (`Describe::type_name`). Frame faults fire here, and so do stream faults (on the frame's
    /// bytes), except that `after_bytes` does not split a frame.
    pub fn on_frame(
        &mut self,
        direction: Direction,
        frame_type: &str,
        frame: &[u8],
        now: Duration,
    ) -> Vec<Action> {
        let held = self.streams[idx(direction)].held.take();
        let mut out = self.on_piece(direction, frame, now, Some(frame_type));
        if let Some(h) = held {
            // The held frame goes out after this one, but before any close or reset.
            let at = out
                .iter()
                .position(|a| matches!(a, Action::Close | Action::Reset))
                .unwrap_or(out.len());
            out.insert(at, Action::Forward(h));
        }
        out
    }

    /// What to do when the stream travelling `direction` ends: release a frame held by
    /// `reorder`, wait out `slow_close`, then close.
    pub fn on_close(&mut self, direction: Direction, now: Duration) -> Vec<Action> {
        let d = idx(direction);
        if self.streams[d].closed {
            return Vec::new();
        }
        let mut out: Vec<Action> = self.streams[d]
            .held
            .take()
            .map(Action::Forward)
            .into_iter()
            .collect();
        for i in 0..self.entries.len() {
            if let FaultKind::SlowClose { delay } = self.entries[i].spec.kind
                && self.fires(i, direction, now, None)
            {
                self.entries[i].fired += 1;
                out.push(Action::Delay(delay, Bytes::new()));
            }
        }
        out.push(Action::Close);
        self.streams[d].closed = true;
        out
    }

    /// Whether spec `i` fires now (every condition, then the probability draw); counts nothing.
    fn fires(
        &mut self,
        i: usize,
        direction: Direction,
        now: Duration,
        frame_type: Option<&str>,
    ) -> bool {
        let s = &self.streams[idx(direction)];
        let e = &self.entries[i];
        let t = &e.spec.trigger;
        let once = matches!(e.spec.kind, FaultKind::VmPause { .. });
        let times = t.times.unwrap_or(if once { 1 } else { u64::MAX });
        let armed = e.spec.direction.includes(direction)
            && e.fired < times
            && t.after_bytes.is_none_or(|n| s.bytes >= n)
            && t.after_frames.is_none_or(|n| s.frames >= n)
            && t.on_type.as_deref().is_none_or(|ty| frame_type == Some(ty))
            && t.at.is_none_or(|at| now >= at);
        match (armed, t.probability) {
            (false, _) => false,
            (true, None) => true,
            (true, Some(p)) => self.rng.next_f64() < p,
        }
    }

    fn on_piece(
        &mut self,
        direction: Direction,
        piece: &[u8],
        now: Duration,
        frame_type: Option<&str>,
    ) -> Vec<Action> {
        let d = idx(direction);
        if piece.is_empty() {
            return Vec::new();
        }
        if self.streams[d].closed {
            return vec![Action::Drop(piece.len())];
        }
        let mut out = None;
        for i in 0..self.entries.len() {
            let kind = &self.entries[i].spec.kind;
            let skip = kind.is_setup_fault()
                || matches!(kind, FaultKind::SlowClose { .. })
                || (kind.is_frame_fault() && frame_type.is_none());
            if skip || !self.fires(i, direction, now, frame_type) {
                continue;
            }
            if let Some(actions) = self.apply(i, direction, piece) {
                out = Some(actions);
                break;
            }
        }
        let s = &mut self.streams[d];
        s.bytes = s.bytes.saturating_add(len64(piece));
        if frame_type.is_some() {
            s.frames += 1;
        }
        out.unwrap_or_else(|| vec![Action::Forward(Bytes::copy_from_slice(piece))])
    }

    /// The actions of spec `i` for `piece`, counting the firing; `None` when it does not apply
    /// after all (a `malformed` variant the frame cannot take, `limit_data` not reached yet).
    fn apply(&mut self, i: usize, direction: Direction, piece: &[u8]) -> Option<Vec<Action>> {
        let d = idx(direction);
        let bytes = Bytes::copy_from_slice(piece);
        let len = piece.len();
        let mut close = false;
        let actions = match self.entries[i].spec.kind.clone() {
            FaultKind::Latency { latency, jitter } => {
                vec![Action::Delay(self.jittered(latency, jitter), bytes)]
            }
            FaultKind::Bandwidth { rate: 0 } | FaultKind::AgentHang => vec![Action::Hold],
            FaultKind::Bandwidth { rate } => {
                let nanos = u128::from(len64(piece)) * 1_000_000_000 / u128::from(rate);
                let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
                vec![Action::Delay(Duration::from_nanos(nanos), bytes)]
            }
            FaultKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => self.slice(&bytes, average_size, size_variation, delay),
            FaultKind::Timeout { timeout } if timeout.is_zero() => vec![Action::Hold],
            FaultKind::Timeout { timeout } => {
                close = true;
                vec![
                    Action::Hold,
                    Action::Delay(timeout, Bytes::new()),
                    Action::Close,
                ]
            }
            FaultKind::ResetPeer { timeout } => {
                close = true;
                let mut v = vec![Action::Drop(len)];
                if !timeout.is_zero() {
                    v.push(Action::Delay(timeout, Bytes::new()));
                }
                v.push(Action::Reset);
                v
            }
            FaultKind::LimitData { bytes: limit } => {
                let passed = self.entries[i].passed[d];
                let room = usize::try_from(limit.saturating_sub(passed)).unwrap_or(usize::MAX);
                if room > len {
                    self.entries[i].passed[d] = passed.saturating_add(len64(piece));
                    return Some(vec![Action::Forward(bytes)]);
                }
                close = true;
                let mut v = Vec::new();
                if room > 0 {
                    v.push(Action::Forward(bytes.slice(..room)));
                }
                if room < len {
                    v.push(Action::Drop(len - room));
                }
                v.push(Action::Close);
                v
            }
            FaultKind::ResetMidStream => {
                close = true;
                let half = len / 2;
                let mut v = Vec::new();
                if half > 0 {
                    v.push(Action::Forward(bytes.slice(..half)));
                }
                v.extend([Action::Drop(len - half), Action::Reset]);
                v
            }
            FaultKind::AgentCrash => {
                close = true;
                vec![Action::Drop(len), Action::Reset]
            }
            FaultKind::VmPause { duration } => vec![Action::Delay(duration, bytes)],
            FaultKind::DropFrame => vec![Action::Drop(len)],
            FaultKind::DuplicateFrame => {
                vec![Action::Forward(bytes.clone()), Action::Forward(bytes)]
            }
            FaultKind::Reorder => {
                self.streams[d].held = Some(bytes);
                Vec::new()
            }
            FaultKind::Malformed(variant) => {
                let m = malform_writes(variant, &self.protocol, piece).ok()?;
                let mut v = Vec::new();
                for (n, w) in m.writes.into_iter().enumerate() {
                    v.push(if n == 0 {
                        Action::Forward(w)
                    } else {
                        Action::Delay(SPLIT_GAP, w)
                    });
                }
                if m.close {
                    close = true;
                    v.push(Action::Close);
                }
                v
            }
            FaultKind::SlowClose { .. }
            | FaultKind::GuestBeforeHost
            | FaultKind::StaleClient
            | FaultKind::StaleSocket
            | FaultKind::ChShutdownWedge => return None,
        };
        self.entries[i].fired += 1;
        if close {
            self.streams[d].closed = true;
        }
        Some(actions)
    }

    /// `latency` ± a uniform draw within `jitter` (never below zero).
    fn jittered(&mut self, latency: Duration, jitter: Duration) -> Duration {
        if jitter.is_zero() {
            return latency;
        }
        let j = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX / 2);
        let r = self.rng.below_inclusive(j.saturating_mul(2));
        let base = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(base.saturating_add(r).saturating_sub(j))
    }

    /// `slicer`: chunks of `average` ± `variation` bytes (at least 1), `delay` apart.
    fn slice(
        &mut self,
        bytes: &Bytes,
        average: u64,
        variation: u64,
        delay: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            let size = if variation == 0 {
                average
            } else {
                let r = self.rng.below_inclusive(variation.saturating_mul(2));
                average.saturating_add(r).saturating_sub(variation)
            };
            let size = usize::try_from(size.max(1)).unwrap_or(usize::MAX);
            let end = at.saturating_add(size).min(bytes.len());
            let chunk = bytes.slice(at..end);
            out.push(if at == 0 || delay.is_zero() {
                Action::Forward(chunk)
            } else {
                Action::Delay(delay, chunk)
            });
            at = end;
        }
        out
    }
}
