//! Reassembly: turns a capture's records, in file order, into each connection's two byte streams
//! and decodes them with the wire codecs ([`open_decoder`]), yielding [`CaptureItem`]s — opens,
//! protocol decisions, frames, errors in place, closes — in capture order. Pure (sans-IO): feed
//! records with [`Reassembler::push`], take items with [`Reassembler::poll`], and call
//! [`Reassembler::finish`] at the end of the capture.
//!
//! Connections are keyed by their (host, guest) address pair and delimited by connect and
//! disconnect records. The host end is the one at CID 2 (when neither or both ends are, the
//! connecting end, else the lower address). A second connect from the other side is the accept of
//! the first (Linux's vsockmon records both); a connect from the same side on a connection that
//! already carried bytes starts a new connection. Payload without a connect opens a connection
//! too (the capture began mid-connection). A disconnect ends its sender's stream (a half close);
//! a reset (a disconnect with a virtio RST header) ends both; the connection ends when both
//! sides have closed.
//!
//! Memory is bounded: each stream holds at most its decoder's unfinished frame (bounded by the
//! codec's maximum frame size) plus one record; before the protocol is decided a connection holds
//! at most [`PENDING_MAX`] bytes; at most [`MAX_OPEN_CONNECTIONS`] connections are open at once
//! (opening one more gives up the oldest, [`EndReason::Evicted`]).

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};

use super::detect::{ProtocolChoice, decide};
use super::error::CaptureError;
use super::fasthash::FastMap;
use super::item::{CaptureItem, ConnId, EndReason, ItemKind};
use super::parser::Record;
use super::vsockmon::{HOST_CID, MAX_PAYLOAD_PER_RECORD, Op, Side, VIRTIO_OP_RST, VsockAddr};
use crate::wire::Direction;
use crate::wire::detect::DETECT_WINDOW;
use crate::wire::keep_raw::keep_raw;
use crate::wire::stream::{DecodeOptions, FrameDecoder, open_decoder};

/// The most connections decoded at once; opening one more ends the oldest.
pub const MAX_OPEN_CONNECTIONS: usize = 64;

/// The most bytes a connection buffers while its protocol is undecided: both streams' detection
/// windows plus a maximal record each.
pub const PENDING_MAX: usize = 2 * (DETECT_WINDOW + 64 + MAX_PAYLOAD_PER_RECORD);

/// How much of each stream's start is kept for the protocol decision.
const PREFIX_MAX: usize = DETECT_WINDOW + 64;

fn idx(d: Direction) -> usize {
    match d {
        Direction::ToGuest => 0,
        Direction::ToHost => 1,
    }
}

const DIRECTIONS: [Direction; 2] = [Direction::ToGuest, Direction::ToHost];

struct Stream {
    decoder: Box<dyn FrameDecoder>,
    buf: BytesMut,
    done: bool,
}

enum State {
    /// Protocol undecided: the records so far, in order, and each stream's first bytes.
    Pending {
        queue: VecDeque<(Direction, u64, Bytes)>,
        prefix: [Vec<u8>; 2],
        bytes: usize,
    },
    Decoding([Stream; 2]),
}

struct Conn {
    id: ConnId,
    key: (VsockAddr, VsockAddr),
    initiator: Option<Side>,
    saw_payload: bool,
    /// Per direction: its sender disconnected.
    closed: [bool; 2],
    state: State,
}

/// Where the items go.
struct Out<'a> {
    items: &'a mut VecDeque<CaptureItem>,
    conn: ConnId,
}

impl Out<'_> {
    fn push(&mut self, time_ns: u64, kind: ItemKind) {
        self.items.push_back(CaptureItem {
            time_ns,
            conn: self.conn,
            kind,
        });
    }
}

fn drain(stream: &mut Stream, direction: Direction, time: u64, eof: bool, out: &mut Out<'_>) {
    loop {
        let item = if eof {
            stream.decoder.decode_eof(&mut stream.buf)
        } else {
            stream.decoder.decode(&mut stream.buf)
        };
        let Some(item) = item else { break };
        let kind = match item {
            Ok(frame) => ItemKind::Frame { direction, frame },
            Err(error) => ItemKind::Error { direction, error },
        };
        out.push(time, kind);
    }
    if eof {
        stream.done = true;
    }
}

impl Conn {
    /// Decides the protocol if the bytes so far allow (or `force`), then replays the queue.
    fn try_decide(&mut self, ctx: &Ctx<'_>, force: bool, out: &mut Out<'_>) {
        let State::Pending {
            queue,
            prefix,
            bytes,
        } = &mut self.state
        else {
            return;
        };
        let ended = force || *bytes > PENDING_MAX || self.closed.iter().all(|c| *c);
        let Some(decision) = decide(ctx.choice, &prefix[0], &prefix[1], ended) else {
            return;
        };
        let time = queue.front().map_or(0, |(_, t, _)| *t);
        out.push(
            time,
            ItemKind::Protocol {
                protocol: decision.protocol.clone(),
                handshake: decision.handshake,
                reason: decision.reason,
            },
        );
        let open = |direction| Stream {
            decoder: keep_raw(
                open_decoder(
                    &decision.protocol,
                    &DecodeOptions {
                        direction: Some(direction),
                        max_frame: ctx.max_frame,
                        handshake: decision.handshake,
                        lean: ctx.lean,
                    },
                ),
                ctx.raw,
            ),
            buf: BytesMut::new(),
            done: false,
        };
        let queue = std::mem::take(queue);
        let mut streams = [open(Direction::ToGuest), open(Direction::ToHost)];
        for (direction, time, data) in queue {
            let s = &mut streams[idx(direction)];
            s.buf.extend_from_slice(&data);
            drain(s, direction, time, false, out);
        }
        self.state = State::Decoding(streams);
    }

    fn data(
        &mut self,
        direction: Direction,
        time: u64,
        data: Bytes,
        ctx: &Ctx<'_>,
        out: &mut Out<'_>,
    ) {
        match &mut self.state {
            State::Pending {
                queue,
                prefix,
                bytes,
            } => {
                let p = &mut prefix[idx(direction)];
                let room = PREFIX_MAX.saturating_sub(p.len());
                p.extend_from_slice(&data[..data.len().min(room)]);
                *bytes += data.len();
                queue.push_back((direction, time, data));
                self.try_decide(ctx, false, out);
            }
            State::Decoding(streams) => {
                let s = &mut streams[idx(direction)];
                s.buf.extend_from_slice(&data);
                drain(s, direction, time, false, out);
            }
        }
    }

    /// Ends `direction`'s stream (or both), flushing its decoder.
    fn finish(&mut self, which: Option<Direction>, time: u64, ctx: &Ctx<'_>, out: &mut Out<'_>) {
        self.try_decide(ctx, true, out);
        if let State::Decoding(streams) = &mut self.state {
            for d in DIRECTIONS {
                let s = &mut streams[idx(d)];
                if !s.done && which.is_none_or(|w| w == d) {
                    drain(s, d, time, true, out);
                }
            }
        }
    }
}

struct Ctx<'a> {
    choice: &'a ProtocolChoice,
    max_frame: Option<u64>,
    lean: bool,
    raw: usize,
}

/// Reassembles and decodes a capture's connections.
pub struct Reassembler {
    choice: ProtocolChoice,
    max_frame: Option<u64>,
    lean: bool,
    raw: usize,
    by_key: FastMap<(VsockAddr, VsockAddr), ConnId>,
    conns: BTreeMap<ConnId, Conn>,
    next_id: ConnId,
    items: VecDeque<CaptureItem>,
    last_time: u64,
    bytes: [u64; 2],
}

impl std::fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembler")
            .field("choice", &self.choice)
            .field("open", &self.conns.len())
            .field("seen", &(self.next_id - 1))
            .finish()
    }
}

impl Reassembler {
    /// A reassembler decoding with `choice`; `max_frame` overrides the codecs' maximum frame
    /// size.
    pub fn new(choice: ProtocolChoice, max_frame: Option<u64>) -> Self {
        Self {
            choice,
            max_frame,
            lean: false,
            raw: 0,
            by_key: FastMap::default(),
            conns: BTreeMap::new(),
            next_id: 1,
            items: VecDeque::new(),
            last_time: 0,
            bytes: [0; 2],
        }
    }

    /// Decode without building each frame's JSON form (`message` is `null`; see
    /// [`DecodeOptions::lean`]): for output that never prints it. Set before the first push.
    pub fn lean(mut self, lean: bool) -> Self {
        self.lean = lean;
        self
    }

    /// Attach each frame's first `cap` bytes to it ([`DecodedFrame::raw`](crate::wire::DecodedFrame),
    /// for a hex dump); 0 (the default) copies nothing. Set before the first push.
    pub fn keep_raw(mut self, cap: usize) -> Self {
        self.raw = cap;
        self
    }

    /// The next item, if any.
    pub fn poll(&mut self) -> Option<CaptureItem> {
        self.items.pop_front()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Connections seen so far.
    pub fn connections_seen(&self) -> u64 {
        self.next_id - 1
    }

    /// Payload bytes seen so far: towards the guest, towards the host.
    pub fn bytes(&self) -> [u64; 2] {
        self.bytes
    }

    /// Notes a bad record (or a bad file) in place.
    pub fn push_error(&mut self, error: CaptureError) {
        self.items.push_back(CaptureItem {
            time_ns: self.last_time,
            conn: 0,
            kind: ItemKind::BadRecord { error },
        });
    }

    /// Which address is the host's, and which way a record from `src` to `dst` goes.
    fn orient(
        &self,
        src: VsockAddr,
        dst: VsockAddr,
        connect: bool,
    ) -> (VsockAddr, VsockAddr, Direction) {
        let forward = (src, dst, Direction::ToGuest);
        let backward = (dst, src, Direction::ToHost);
        match (src.cid == HOST_CID, dst.cid == HOST_CID) {
            (true, false) => forward,
            (false, true) => backward,
            _ if self.by_key.contains_key(&(src, dst)) => forward,
            _ if self.by_key.contains_key(&(dst, src)) => backward,
            _ if connect || (src.cid, src.port) <= (dst.cid, dst.port) => forward,
            _ => backward,
        }
    }

    fn open(&mut self, key: (VsockAddr, VsockAddr), by: Option<Side>, time: u64) -> ConnId {
        if self.conns.len() >= MAX_OPEN_CONNECTIONS
            && let Some(oldest) = self.conns.keys().next().copied()
        {
            self.end(oldest, EndReason::Evicted, time);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            id,
            Conn {
                id,
                key,
                initiator: by,
                saw_payload: false,
                closed: [false; 2],
                state: State::Pending {
                    queue: VecDeque::new(),
                    prefix: [Vec::new(), Vec::new()],
                    bytes: 0,
                },
            },
        );
        self.by_key.insert(key, id);
        self.items.push_back(CaptureItem {
            time_ns: time,
            conn: id,
            kind: ItemKind::Opened {
                host: key.0,
                guest: key.1,
                by,
            },
        });
        id
    }

    fn end(&mut self, id: ConnId, reason: EndReason, time: u64) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        if self.by_key.get(&conn.key) == Some(&id) {
            self.by_key.remove(&conn.key);
        }
        let ctx = Ctx {
            choice: &self.choice,
            max_frame: self.max_frame,
            lean: self.lean,
            raw: self.raw,
        };
        let mut out = Out {
            items: &mut self.items,
            conn: conn.id,
        };
        conn.finish(None, time, &ctx, &mut out);
        out.push(time, ItemKind::Ended { reason });
    }

    /// Takes one record, in file order.
    pub fn push(&mut self, record: &Record) {
        let time = record.time_ns;
        self.last_time = time;
        let h = &record.vsock.header;
        let connect = h.op == Op::Connect;
        if !matches!(h.op, Op::Connect | Op::Payload | Op::Disconnect) {
            return; // control and unknown records carry no stream bytes
        }
        let (host, guest, direction) = self.orient(h.src, h.dst, connect);
        let key = (host, guest);
        let by = Side::sender(direction);
        let existing = self.by_key.get(&key).copied();
        match h.op {
            Op::Connect => {
                if let Some(id) = existing {
                    let Some(c) = self.conns.get(&id) else { return };
                    let fresh = !c.saw_payload && c.closed == [false; 2];
                    if c.initiator.is_some_and(|i| i != by) && fresh {
                        return; // the accept of the connection (vsockmon's RESPONSE)
                    }
                    if fresh && c.initiator == Some(by) {
                        return; // a repeated request
                    }
                    self.end(id, EndReason::Reconnected, time);
                }
                self.open(key, Some(by), time);
            }
            Op::Payload => {
                let id = match existing {
                    Some(id) => id,
                    None => self.open(key, None, time),
                };
                self.payload(id, direction, record);
            }
            _ => {
                let reset = record.vsock.virtio().is_some_and(|v| v.op == VIRTIO_OP_RST);
                if let Some(id) = existing {
                    self.disconnect(id, by, reset, time);
                }
            }
        }
    }

    fn payload(&mut self, id: ConnId, direction: Direction, record: &Record) {
        let time = record.time_ns;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let ctx = Ctx {
            choice: &self.choice,
            max_frame: self.max_frame,
            lean: self.lean,
            raw: self.raw,
        };
        let mut out = Out {
            items: &mut self.items,
            conn: id,
        };
        let data = record.vsock.payload.clone();
        if conn.closed[idx(direction)] {
            out.push(
                time,
                ItemKind::AfterClose {
                    direction,
                    bytes: data.len() as u64,
                },
            );
            return;
        }
        if data.is_empty() && record.snapped == 0 {
            return;
        }
        conn.saw_payload = true;
        self.bytes[idx(direction)] += data.len() as u64;
        conn.data(direction, time, data, &ctx, &mut out);
        if record.snapped > 0 {
            out.push(
                time,
                ItemKind::Snapped {
                    direction,
                    missing: record.snapped,
                },
            );
        }
    }

    fn disconnect(&mut self, id: ConnId, by: Side, reset: bool, time: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let ctx = Ctx {
            choice: &self.choice,
            max_frame: self.max_frame,
            lean: self.lean,
            raw: self.raw,
        };
        let mut out = Out {
            items: &mut self.items,
            conn: id,
        };
        out.push(time, ItemKind::Closed { by, reset });
        if reset {
            conn.closed = [true; 2];
            self.end(id, EndReason::Reset, time);
            return;
        }
        let direction = by.sends();
        conn.closed[idx(direction)] = true;
        conn.finish(Some(direction), time, &ctx, &mut out);
        if conn.closed == [true; 2] {
            self.end(id, EndReason::Closed, time);
        }
    }

    /// The capture ended: flushes every open connection ([`EndReason::CaptureEnded`]), so that a
    /// frame cut short shows as truncated.
    pub fn finish(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.end(id, EndReason::CaptureEnded, self.last_time);
        }
    }
}

#[cfg(test)]
#[path = "reassembly_tests.rs"]
mod tests;
