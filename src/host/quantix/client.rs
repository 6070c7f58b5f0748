//! The quantix host client's connection: a background reader task that decodes frames and routes
//! them, and a request path that correlates replies by `message_id`, as the LimiQuantix node
//! daemon does (PROTOCOLS.md §2: pending requests keyed by `message_id`; telemetry, agent_ready
//! and error are events that never answer a request).
//!
//! # Routing
//! - A **response** whose `message_id` is pending completes that request; a response of the
//!   wrong arm fails it with [`ClientError::Protocol`]. A response nobody waits for (a late reply
//!   after a timeout, an id never sent) is counted in [`ClientStats::unmatched`] and dropped.
//! - An **event** goes to the event queue ([`EventReceiver`]) and never completes a request,
//!   whatever its `message_id`. One exception, by design: an `ErrorEvent` whose
//!   `details["request_id"]` names a pending request (the form guestwire's mock agent uses to
//!   refuse a request it does not implement) *also* fails that request with
//!   [`ClientError::Agent`] (code = the event's `code`), so the caller does not wait for its
//!   deadline. An error event that names no pending request leaves pending requests alone.
//! - A **request** from the agent is a protocol violation: it fails the pending request with its
//!   id, if any, else it is counted as unmatched.
//! - A whole frame whose payload is not protobuf fails every pending request (any of them may
//!   have lost its reply) with [`ClientError::Malformed`] and the frame's raw payload bytes. A
//!   payload that is protobuf but of an arm this version does not know (a newer agent) fails only
//!   the pending request with its `message_id`, if any.
//! - Bytes the decoder skips between frames (`QTX1` resynchronising on the magic, e.g. after a
//!   torn frame) are counted in [`ClientStats::malformed`] and fail nothing: the reply may still
//!   follow. With the legacy framing a bad length ends decoding for good, so every pending
//!   request fails with `Malformed` and every later one with [`ClientError::Protocol`].
//!
//! # Ends
//! A reset fails every pending request (and every later one) with [`ClientError::Reset`], an end
//! of stream with [`ClientError::Closed`], both in [`Phase::Request`] with what had arrived.
//!
//! # Writes
//! Requests are written whole under one lock. A deadline that fires in the middle of a write
//! leaves part of a frame on the stream: with `QTX1` the agent's reader resynchronises on the
//! next magic, so the client carries on; with the legacy framing the stream is lost, so every
//! later request fails with [`ClientError::Protocol`].

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use prost::Message as _;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::events::{DEFAULT_EVENT_CAPACITY, EventQueue, EventReceiver};
use super::framing::{FrameDecoder, FrameEncoder, Framing, Payloaded, timestamp_now};
use crate::host::dial::{DialOptions, dial};
use crate::host::error::{ClientError, Phase};
use crate::io::{BoxStream, Endpoint, FramedReader, ReadError};
use crate::wire::quantix::{AgentMessage, MessageKind, Payload};
use crate::wire::{Encoder, WireError};

/// Largest file [`QuantixClient::read_file`] assembles by default: 64 MiB.
pub const DEFAULT_MAX_READ: u64 = 64 * 1024 * 1024;

/// Settings of a client beyond the dial options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    /// Events held before the oldest is dropped.
    pub event_capacity: usize,
    /// Largest file `read_file` assembles.
    pub max_read_size: u64,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            event_capacity: DEFAULT_EVENT_CAPACITY,
            max_read_size: DEFAULT_MAX_READ,
        }
    }
}

/// What the reader task has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Frames read (good and bad).
    pub frames: u64,
    /// Replies handed to their requests (right arm or not).
    pub replies: u64,
    /// Events queued.
    pub events: u64,
    /// Frames whose payload is not an `AgentMessage`, and garbage runs skipped by the decoder.
    pub malformed: u64,
    /// Responses (or stray requests) that matched no pending request.
    pub unmatched: u64,
}

/// Why the connection is no longer usable.
#[derive(Debug, Clone)]
enum Terminal {
    Closed(String),
    Reset(String),
    Io(io::ErrorKind, String),
    Broken(String),
    /// The stream broke on bad bytes: every later request gets the same error and bytes.
    Undecodable(WireError, Bytes),
}

impl Terminal {
    fn error(&self) -> ClientError {
        match self {
            Self::Closed(detail) => ClientError::Closed {
                phase: Phase::Request,
                detail: detail.clone(),
            },
            Self::Reset(detail) => ClientError::Reset {
                phase: Phase::Request,
                detail: detail.clone(),
            },
            Self::Io(kind, msg) => ClientError::Io {
                phase: Phase::Request,
                source: io::Error::new(*kind, msg.clone()),
            },
            Self::Broken(reason) => ClientError::Protocol {
                reason: reason.clone(),
            },
            Self::Undecodable(error, raw) => ClientError::Malformed {
                error: error.clone(),
                raw: raw.clone(),
            },
        }
    }
}

type Reply = Result<AgentMessage, ClientError>;

/// A request waiting for its reply.
#[derive(Debug)]
struct Pending {
    request: &'static str,
    response_field: u32,
    tx: oneshot::Sender<Reply>,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<String, Pending>,
    terminal: Option<Terminal>,
    stats: ClientStats,
}

/// State shared by the client and its reader task.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

/// Takes a request out of the pending map when its future ends or is dropped.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: &'a str,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.with(|s| s.pending.remove(self.id));
    }
}

/// The write side: the stream and how far the current frame got.
struct WriteSide {
    stream: WriteHalf<BoxStream>,
    encoder: FrameEncoder,
    buf: BytesMut,
    /// Bytes of the frame being written (0 when none is).
    frame_len: usize,
    /// Bytes of it written so far.
    written: usize,
}

/// A quantix host client on one connection. Cheap to share behind an `Arc`: every method takes
/// `&self`, and requests may run concurrently.
pub struct QuantixClient {
    shared: Arc<Shared>,
    writer: tokio::sync::Mutex<WriteSide>,
    events: EventReceiver,
    reader: JoinHandle<()>,
    next_id: AtomicU64,
    next_seq: AtomicU64,
    opts: DialOptions,
    framing: Framing,
    settings: ClientSettings,
}

impl std::fmt::Debug for QuantixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantixClient")
            .field("framing", &self.framing)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for QuantixClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl QuantixClient {
    /// Dials `endpoint` (with `opts`' retries and connect/handshake deadlines) and starts the
    /// client on the stream.
    pub async fn connect(
        endpoint: &Endpoint,
        opts: DialOptions,
        framing: Framing,
    ) -> Result<Self, ClientError> {
        let dialed = dial(endpoint, &opts).await?;
        Ok(Self::from_stream(dialed.stream, opts, framing))
    }

    /// Starts a client on an already connected stream (spawns the reader task: call it inside a
    /// Tokio runtime).
    pub fn from_stream(stream: BoxStream, opts: DialOptions, framing: Framing) -> Self {
        Self::with_settings(stream, opts, framing, ClientSettings::default())
    }

    /// [`from_stream`](Self::from_stream) with other [`ClientSettings`].
    pub fn with_settings(
        stream: BoxStream,
        opts: DialOptions,
        framing: Framing,
        settings: ClientSettings,
    ) -> Self {
        let (read, write) = tokio::io::split(stream);
        let shared = Arc::new(Shared::default());
        let queue = EventQueue::new(settings.event_capacity);
        let reader = FramedReader::new(read, framing.decoder());
        let task = tokio::spawn(read_loop(reader, shared.clone(), queue.clone()));
        Self {
            shared,
            writer: tokio::sync::Mutex::new(WriteSide {
                stream: write,
                encoder: framing.encoder(),
                buf: BytesMut::new(),
                frame_len: 0,
                written: 0,
            }),
            events: EventReceiver::new(queue),
            reader: task,
            next_id: AtomicU64::new(1),
            next_seq: AtomicU64::new(1),
            opts,
            framing,
            settings,
        }
    }

    /// The framing spoken.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The dial options (and so the deadlines) in use.
    pub fn options(&self) -> &DialOptions {
        &self.opts
    }

    /// The settings in use.
    pub fn settings(&self) -> ClientSettings {
        self.settings
    }

    /// The event receiver (telemetry, agent_ready, error, clipboard_changed).
    pub fn events(&self) -> EventReceiver {
        self.events.clone()
    }

    /// What the reader task has seen so far.
    pub fn stats(&self) -> ClientStats {
        self.shared.with(|s| s.stats)
    }

    /// Requests waiting for a reply.
    pub fn pending(&self) -> usize {
        self.shared.with(|s| s.pending.len())
    }

    /// A fresh ping sequence number.
    pub(super) fn next_sequence(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `payload` (a request arm) and waits up to `deadline` for its reply, whole.
    pub async fn request_within(
        &self,
        payload: Payload,
        deadline: Duration,
    ) -> Result<AgentMessage, ClientError> {
        let request = payload.name();
        let (Some(response_field), Some(response)) =
            (payload.response_field_number(), payload.response_name())
        else {
            return Err(ClientError::Invalid(format!(
                "{request} is a {}, not a request",
                payload.kind().as_str()
            )));
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = oneshot::channel();
        let frames_before = self.shared.with(|s| {
            if let Some(t) = &s.terminal {
                return Err(t.error());
            }
            s.pending.insert(
                id.clone(),
                Pending {
                    request,
                    response_field,
                    tx,
                },
            );
            Ok((s.stats.frames, s.stats.malformed))
        })?;
        // Removes the entry however this future ends, even if the caller drops it.
        let guard = PendingGuard {
            shared: &self.shared,
            id: &id,
        };
        let message = AgentMessage::new(id.clone(), payload).with_timestamp(timestamp_now());
        let exchange = async {
            self.send(&message).await?;
            match rx.await {
                Ok(reply) => reply,
                // The reader task ended without answering (it was aborted).
                Err(_) => Err(self.terminal_error()),
            }
        };
        let result = tokio::time::timeout(deadline, exchange).await;
        drop(guard);
        let stats = self.stats();
        match result {
            Ok(reply) => reply,
            Err(_elapsed) => Err(ClientError::TimedOut {
                phase: Phase::Request,
                after: deadline,
                detail: format!(
                    "no {response} for {request} id={id}; {} frames arrived meanwhile, {} bad",
                    stats.frames.saturating_sub(frames_before.0),
                    stats.malformed.saturating_sub(frames_before.1)
                ),
            }),
        }
    }

    fn terminal_error(&self) -> ClientError {
        self.shared
            .with(|s| s.terminal.as_ref().map(Terminal::error))
            .unwrap_or_else(|| ClientError::Closed {
                phase: Phase::Request,
                detail: "the client's reader stopped".into(),
            })
    }

    /// Writes one request frame whole.
    async fn send(&self, message: &AgentMessage) -> Result<(), ClientError> {
        let mut w = self.writer.lock().await;
        if w.written < w.frame_len {
            // An earlier write was cancelled by its deadline in the middle of its frame.
            let torn = format!(
                "an earlier request's write was cut off after {} of {} bytes",
                w.written, w.frame_len
            );
            if self.framing == Framing::Legacy {
                return Err(ClientError::Protocol {
                    reason: format!("{torn}; without a magic the agent cannot resynchronise"),
                });
            }
            // QTX1: the agent's reader skips the torn frame up to the next magic.
            w.frame_len = 0;
            w.written = 0;
        }
        let WriteSide {
            stream,
            encoder,
            buf,
            frame_len,
            written,
        } = &mut *w;
        buf.clear();
        encoder
            .encode(message, buf)
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        *frame_len = buf.len();
        *written = 0;
        while *written < *frame_len {
            let chunk = buf.get(*written..).unwrap_or_default();
            match stream.write(chunk).await {
                Ok(0) => return Err(self.write_failed(io::ErrorKind::WriteZero.into(), *written)),
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.write_failed(e, *written)),
            }
        }
        stream
            .flush()
            .await
            .map_err(|e| self.write_failed(e, *written))?;
        *frame_len = 0;
        *written = 0;
        Ok(())
    }

    fn write_failed(&self, e: io::Error, written: usize) -> ClientError {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::WriteZero => {
                // The reader usually knows more (what had arrived); prefer its verdict.
                self.shared
                    .with(|s| s.terminal.as_ref().map(Terminal::error))
                    .unwrap_or_else(|| ClientError::Reset {
                        phase: Phase::Request,
                        detail: format!("{written} bytes of the request written"),
                    })
            }
            _ => ClientError::Io {
                phase: Phase::Request,
                source: e,
            },
        }
    }
}

/// Reads frames until the stream ends, routing each.
async fn read_loop(
    mut reader: FramedReader<ReadHalf<BoxStream>, FrameDecoder>,
    shared: Arc<Shared>,
    events: Arc<EventQueue>,
) {
    let terminal = loop {
        match reader.next().await {
            None => {
                let frames = shared.with(|s| s.stats.frames);
                break Terminal::Closed(format!("after {frames} frames"));
            }
            Some(Ok(frame)) => {
                shared.with(|s| s.stats.frames += 1);
                match reader.decoder().payload(frame.message, frame.offset) {
                    Payloaded::Message(msg) => route(&shared, &events, msg),
                    Payloaded::Bad { error, raw } => malformed(&shared, error, raw, false),
                }
            }
            Some(Err(ReadError::Wire(error))) if !matches!(error, WireError::Truncated { .. }) => {
                // Bytes skipped between frames: with QTX1 the decoder resynchronises and the
                // reply may still follow (a torn frame from a cancelled write is followed by
                // whole ones), so pending requests keep waiting; with nothing to resynchronise
                // on, they all fail now.
                if reader.decoder().is_failed() {
                    let raw = Bytes::copy_from_slice(error.bytes().bytes());
                    malformed(&shared, error.clone(), raw.clone(), true);
                    break Terminal::Undecodable(error, raw);
                }
                shared.with(|s| s.stats.malformed += 1);
            }
            Some(Err(e)) => {
                let frames = shared.with(|s| s.stats.frames);
                break match ClientError::from_read(Phase::Request, e, None) {
                    ClientError::Reset { detail, .. } => {
                        Terminal::Reset(join_detail(frames, &detail))
                    }
                    ClientError::Closed { detail, .. } => {
                        Terminal::Closed(join_detail(frames, &detail))
                    }
                    ClientError::Io { source, .. } => {
                        Terminal::Io(source.kind(), source.to_string())
                    }
                    other => Terminal::Broken(other.to_string()),
                };
            }
        }
    };
    let waiting: Vec<Pending> = shared.with(|s| {
        s.terminal = Some(terminal.clone());
        s.pending.drain().map(|(_, p)| p).collect()
    });
    for p in waiting {
        let _ = p.tx.send(Err(terminal.error()));
    }
    events.close();
}

fn join_detail(frames: u64, detail: &str) -> String {
    if detail.is_empty() {
        format!("after {frames} frames")
    } else {
        format!("after {frames} frames; {detail}")
    }
}

/// Routes one well-formed message (see the module docs).
fn route(shared: &Shared, events: &EventQueue, msg: AgentMessage) {
    match msg.kind() {
        Some(MessageKind::Event) | None => {
            let refused = match &msg.payload {
                Some(Payload::Error(ev)) => ev
                    .details
                    .get("request_id")
                    .and_then(|id| shared.with(|s| s.pending.remove(id)))
                    .map(|p| (p, ev.code.clone(), ev.message.clone())),
                _ => None,
            };
            shared.with(|s| s.stats.events += 1);
            if let Some((p, code, message)) = refused {
                let _ = p.tx.send(Err(ClientError::Agent { code, message }));
            }
            events.push(msg);
        }
        Some(kind) => {
            let waiting = shared.with(|s| {
                let p = s.pending.remove(&msg.message_id);
                match p {
                    Some(_) => s.stats.replies += 1,
                    None => s.stats.unmatched += 1,
                }
                p
            });
            let Some(p) = waiting else { return };
            let field = msg.payload.as_ref().map_or(0, Payload::field_number);
            let reply = if kind == MessageKind::Response && field == p.response_field {
                Ok(msg)
            } else {
                Err(ClientError::Protocol {
                    reason: format!(
                        "{} id={} was answered with {} instead of {}",
                        p.request,
                        msg.message_id,
                        msg.payload_name().unwrap_or("nothing"),
                        Payload::name_of(p.response_field).unwrap_or("its response"),
                    ),
                })
            };
            let _ = p.tx.send(reply);
        }
    }
}

/// Fails the request a bad frame belongs to (by the id it still carries), else every pending
/// one. `framing`: the error is about the framing (skipped bytes), not a whole frame's payload.
fn malformed(shared: &Shared, error: WireError, raw: Bytes, framing: bool) {
    // A payload prost reads but whose arm this version does not know (a newer agent's event or
    // reply) belongs to its id only; one that is not protobuf at all could be anyone's reply.
    let decoded = (!framing)
        .then(|| AgentMessage::decode(&raw[..]).ok())
        .flatten();
    let targets: Vec<Pending> = shared.with(|s| {
        s.stats.malformed += 1;
        match decoded {
            Some(m) => s.pending.remove(&m.message_id).into_iter().collect(),
            None => s.pending.drain().map(|(_, p)| p).collect(),
        }
    });
    for p in targets {
        let _ = p.tx.send(Err(ClientError::Malformed {
            error: error.clone(),
            raw: raw.clone(),
        }));
    }
}
