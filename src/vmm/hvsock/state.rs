//! The adapter's core: the pure muxer ([`VsockMuxer`]) and each connection's queues under one
//! lock, and the one place its events are carried out ([`Shared::drain`]). Everything here is
//! synchronous; the tasks in `host_conn` and `guest_side` poll it through wakers.
//!
//! Data path of a connection: host socket → (fault pump) → [`Shared::poll_host_input`] → muxer →
//! `to_guest` queue → guest stream, and guest stream → [`Shared::poll_guest_input`] → muxer →
//! `to_host` queue → (fault pump) → host socket. Each queue holds at most about
//! [`PIPE_LIMIT`] bytes beyond the muxer's own [`CONN_TX_BUF_SIZE`], so memory per connection is
//! bounded; a full queue stops the reader that feeds it (backpressure).
//!
//! Pausing ([`Shared::set_api_paused`], [`Shared::fault_pause`]) freezes the muxer (its events
//! stay queued) and the queues' readers, so nothing moves either way until the resume.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, broadcast, oneshot, watch};
use tokio::task::JoinSet;

use super::config::HvsockConfig;
use super::events::{
    ConnectionSnapshot, HvsockEvent, HvsockSnapshot, RefusalSnapshot, origin_name, refusal_kind,
    state_name,
};
use super::guest_side::Service;
use crate::channel::vsock::{CloseReason, ConnId, MuxEvent, Origin, RefuseReason, VsockMuxer};
use crate::io::BoxStream;
use crate::wire::hybrid::CONN_TX_BUF_SIZE;
use crate::wire::protocol::Protocol;

/// Most bytes a connection's queue holds before its feeder waits (one muxer buffer's worth).
pub const PIPE_LIMIT: usize = CONN_TX_BUF_SIZE as usize;

/// First guest-side port of guest-initiated connections (the Linux ephemeral range's start).
const FIRST_EPHEMERAL_PORT: u32 = 49152;

/// The clock the muxer is fed: tokio's, so that paused-clock tests control it.
pub fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}

fn park(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// How a queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeEnd {
    /// An orderly end: what is queued is still delivered.
    Eof,
    /// A reset: what is queued is dropped.
    Reset,
}

/// What a queue's reader gets.
#[derive(Debug)]
pub enum Popped {
    /// Bytes.
    Data(Bytes),
    /// The end, after every byte.
    Eof,
    /// A reset.
    Reset,
}

/// One direction's queue of bytes the muxer has released, waiting for their writer.
#[derive(Debug, Default)]
pub struct Pipe {
    chunks: VecDeque<Bytes>,
    len: usize,
    end: Option<PipeEnd>,
    reader: Option<Waker>,
}

impl Pipe {
    fn push(&mut self, bytes: Vec<u8>) {
        if self.end.is_some() || bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.chunks.push_back(Bytes::from(bytes));
        wake(&mut self.reader);
    }

    /// Ends the queue; a reset overrides an earlier orderly end and drops what is queued.
    fn finish(&mut self, end: PipeEnd) {
        match (self.end, end) {
            (Some(PipeEnd::Reset), _) | (Some(PipeEnd::Eof), PipeEnd::Eof) => {}
            _ => {
                if end == PipeEnd::Reset {
                    self.chunks.clear();
                    self.len = 0;
                }
                self.end = Some(end);
            }
        }
        wake(&mut self.reader);
    }

    fn poll_pop(&mut self, max: usize, cx: &Context<'_>) -> Poll<Popped> {
        if let Some(mut b) = self.chunks.pop_front() {
            if b.len() > max.max(1) {
                let rest = b.split_off(max.max(1));
                self.chunks.push_front(rest);
            }
            self.len -= b.len();
            return Poll::Ready(Popped::Data(b));
        }
        match self.end {
            Some(PipeEnd::Eof) => Poll::Ready(Popped::Eof),
            Some(PipeEnd::Reset) => Poll::Ready(Popped::Reset),
            None => {
                park(&mut self.reader, cx);
                Poll::Pending
            }
        }
    }

    fn poll_reset(&mut self, cx: &Context<'_>) -> Poll<()> {
        if self.end == Some(PipeEnd::Reset) {
            return Poll::Ready(());
        }
        park(&mut self.reader, cx);
        Poll::Pending
    }

    fn wake(&mut self) {
        wake(&mut self.reader);
    }
}

/// Where a host-initiated connection's handshake stands.
#[derive(Debug)]
pub enum Handshake {
    /// The `CONNECT` command is being read.
    Pending,
    /// Answered: the `OK` line, until the host task takes it to write (`None` after, and for
    /// guest-initiated connections).
    Answered(Option<Bytes>),
    /// Refused: the host connection closes without a reply.
    Refused,
}

/// The adapter's side of one muxer connection.
pub struct ConnIo {
    origin: Origin,
    guest_port: Option<u32>,
    host_port: Option<u32>,
    handshake: Handshake,
    host_waiter: Option<Waker>,
    to_host: Pipe,
    to_guest: Pipe,
    /// The host side's feeder, waiting for room.
    host_in: Option<Waker>,
    /// The guest side's feeder, waiting for room.
    guest_in: Option<Waker>,
    host_open: bool,
    guest_open: bool,
    host_closed: bool,
    guest_closed: bool,
    established: bool,
    first_close: Option<&'static str>,
    bytes_to_guest: u64,
    bytes_to_host: u64,
    /// Guest-initiated: the guest's end of the stream until the host side answers.
    pending_guest: Option<BoxStream>,
    connect_waiter: Option<oneshot::Sender<Result<(), String>>>,
}

impl ConnIo {
    fn new(origin: Origin, handshake: Handshake) -> Self {
        Self {
            origin,
            guest_port: None,
            host_port: None,
            handshake,
            host_waiter: None,
            to_host: Pipe::default(),
            to_guest: Pipe::default(),
            host_in: None,
            guest_in: None,
            host_open: false,
            guest_open: false,
            host_closed: false,
            guest_closed: false,
            established: false,
            first_close: None,
            bytes_to_guest: 0,
            bytes_to_host: 0,
            pending_guest: None,
            connect_waiter: None,
        }
    }

    /// A host process's connection; its task is running.
    pub fn host() -> Self {
        let mut c = Self::new(Origin::Host, Handshake::Pending);
        c.host_open = true;
        c
    }

    fn wake_all(&mut self) {
        wake(&mut self.host_waiter);
        wake(&mut self.host_in);
        wake(&mut self.guest_in);
        self.to_host.wake();
        self.to_guest.wake();
    }
}

/// The muxer and the connections' queues.
pub struct Core {
    /// The pure muxer model.
    pub mux: VsockMuxer,
    /// The adapter's side of each connection.
    pub conns: HashMap<ConnId, ConnIo>,
    api_paused: bool,
    fault_pauses: u32,
    resume_wakers: Vec<Waker>,
    guest_ports_used: u32,
}

impl Core {
    /// Whether the VM is paused (by the API or a fault).
    pub fn paused(&self) -> bool {
        self.api_paused || self.fault_pauses > 0
    }

    fn park_until_resume(&mut self, cx: &Context<'_>) {
        if !self.resume_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            self.resume_wakers.push(cx.waker().clone());
        }
    }
}

/// Everything the VMM's tasks share.
pub struct Shared {
    core: Mutex<Core>,
    /// Wakes the timer task when a deadline may have moved.
    pub timer: Notify,
    /// The configuration.
    pub config: HvsockConfig,
    /// The protocol fault plans frame by.
    pub fault_protocol: Protocol,
    /// How each guest port is served.
    pub services: BTreeMap<u32, Service>,
    events: broadcast::Sender<HvsockEvent>,
    tasks: Mutex<JoinSet<()>>,
    /// `true` once the VMM is stopping.
    pub stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("socket", &self.config.socket)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The shared state of a VMM about to start.
    pub fn new(
        config: HvsockConfig,
        fault_protocol: Protocol,
        services: BTreeMap<u32, Service>,
        events: broadcast::Sender<HvsockEvent>,
    ) -> Arc<Self> {
        Arc::new(Self {
            core: Mutex::new(Core {
                mux: VsockMuxer::new(config.flavour),
                conns: HashMap::new(),
                api_paused: false,
                fault_pauses: 0,
                resume_wakers: Vec::new(),
                guest_ports_used: 0,
            }),
            timer: Notify::new(),
            config,
            fault_protocol,
            services,
            events,
            tasks: Mutex::new(JoinSet::new()),
            stop: watch::channel(false).0,
        })
    }

    /// The core, locked. Never held across an await.
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reports an event (dropped when nobody listens).
    pub fn emit(&self, event: HvsockEvent) {
        let _ = self.events.send(event);
    }

    /// A new receiver of events.
    pub fn subscribe(&self) -> broadcast::Receiver<HvsockEvent> {
        self.events.subscribe()
    }

    /// Whether the VMM is stopping.
    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Runs `fut` as one of the VMM's tasks (not once it is stopping).
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.is_stopping() {
            return;
        }
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(fut);
    }

    /// The tasks spawned so far, for [`HvsockVmm::stop`](super::HvsockVmm::stop) to wait for.
    pub fn take_tasks(&self) -> JoinSet<()> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Carries out every event the muxer has for the adapter (nothing while paused).
    pub fn drain(self: &Arc<Self>, core: &mut Core) {
        while let Some(event) = core.mux.poll_event() {
            match event {
                MuxEvent::WriteToHost { conn, bytes } => self.on_write_to_host(core, conn, bytes),
                MuxEvent::DeliverToGuest { conn, bytes, .. } => {
                    if let Some(io) = core.conns.get_mut(&conn) {
                        io.bytes_to_guest += bytes.len() as u64;
                        io.to_guest.push(bytes);
                        wake(&mut io.host_in);
                    }
                }
                MuxEvent::CloseHost { conn, reason } => self.on_close_host(core, conn, reason),
                MuxEvent::ResetGuest { conn } => self.on_reset_guest(core, conn),
                MuxEvent::ShutdownGuest { conn } => {
                    if let Some(io) = core.conns.get_mut(&conn) {
                        io.to_guest.finish(PipeEnd::Eof);
                    }
                }
                MuxEvent::CreditUpdate { .. } => {}
                MuxEvent::ConnectToHost { conn, path_suffix } => self.spawn(
                    super::host_conn::connect_to_host(self.clone(), conn, path_suffix),
                ),
            }
        }
    }

    fn on_write_to_host(self: &Arc<Self>, core: &mut Core, conn: ConnId, bytes: Vec<u8>) {
        let pending = core
            .conns
            .get(&conn)
            .is_some_and(|io| matches!(io.handshake, Handshake::Pending));
        if !pending {
            if let Some(io) = core.conns.get_mut(&conn) {
                io.bytes_to_host += bytes.len() as u64;
                io.to_host.push(bytes);
                wake(&mut io.guest_in);
            }
            return;
        }
        // The muxer's first write to a host-initiated connection is its `OK` line.
        let (guest_port, host_port) = ports_of(&core.mux, conn);
        let Some(io) = core.conns.get_mut(&conn) else {
            return;
        };
        let line = Bytes::from(bytes);
        io.handshake = Handshake::Answered(Some(line.clone()));
        io.guest_port = guest_port;
        io.host_port = host_port;
        io.established = true;
        io.guest_open = true;
        wake(&mut io.host_waiter);
        let service = guest_port
            .and_then(|p| self.config.ports.get(&p))
            .map_or_else(|| "?".to_string(), ToString::to_string);
        self.emit(HvsockEvent::Established {
            conn: conn.0,
            origin: "host",
            guest_port: guest_port.unwrap_or_default(),
            host_port: host_port.unwrap_or_default(),
            ok: Some(String::from_utf8_lossy(&line).trim_end().to_string()),
            service,
        });
        self.spawn(super::guest_side::open_guest(
            self.clone(),
            conn,
            guest_port,
        ));
    }

    fn on_close_host(self: &Arc<Self>, core: &mut Core, conn: ConnId, reason: CloseReason) {
        let Some(io) = core.conns.get_mut(&conn) else {
            return;
        };
        io.to_host.finish(PipeEnd::Eof);
        io.wake_all();
        if let CloseReason::Refused(r) = reason {
            if matches!(io.handshake, Handshake::Pending) {
                io.handshake = Handshake::Refused;
            }
            self.emit(refused_event(conn, Origin::Host, &r));
        }
    }

    fn on_reset_guest(self: &Arc<Self>, core: &mut Core, conn: ConnId) {
        let never_live = core
            .conns
            .get(&conn)
            .is_some_and(|io| io.connect_waiter.is_some());
        let refusal = never_live.then(|| refusal_of(&core.mux, conn)).flatten();
        let Some(io) = core.conns.get_mut(&conn) else {
            return;
        };
        io.to_guest.finish(PipeEnd::Reset);
        io.first_close.get_or_insert("vmm");
        io.wake_all();
        if let Some(waiter) = io.connect_waiter.take() {
            // A guest-initiated connection that never became live.
            let reason = refusal.unwrap_or(RefuseReason::RequestTimeout);
            let _ = waiter.send(Err(reason.to_string()));
            io.pending_guest = None;
            io.guest_open = false;
            self.emit(refused_event(conn, Origin::Guest, &reason));
            self.finish_if_done(core, conn);
        }
    }

    /// The host side is done with `conn` (EOF, error, fault or its task ending): the muxer is
    /// told once; nothing more is written to the host.
    pub fn host_close(self: &Arc<Self>, core: &mut Core, conn: ConnId, by: &'static str) {
        let Some(io) = core.conns.get_mut(&conn) else {
            return;
        };
        if io.host_closed {
            return;
        }
        io.host_closed = true;
        io.first_close.get_or_insert(by);
        io.to_host.finish(PipeEnd::Eof);
        io.wake_all();
        let _ = core.mux.host_close(conn, now());
        self.timer.notify_one();
        self.drain(core);
    }

    /// The guest side is done with `conn`: the muxer is told once.
    pub fn guest_close(self: &Arc<Self>, core: &mut Core, conn: ConnId) {
        let Some(io) = core.conns.get_mut(&conn) else {
            return;
        };
        if io.guest_closed {
            return;
        }
        io.guest_closed = true;
        io.first_close.get_or_insert("guest");
        io.wake_all();
        let _ = core.mux.guest_close(conn);
        self.drain(core);
    }

    /// The host task of `conn` ended.
    pub fn host_gone(self: &Arc<Self>, conn: ConnId) {
        let mut core = self.lock();
        self.host_close(&mut core, conn, "host");
        if let Some(io) = core.conns.get_mut(&conn) {
            io.host_open = false;
        }
        self.finish_if_done(&mut core, conn);
    }

    /// The guest task of `conn` ended.
    pub fn guest_gone(self: &Arc<Self>, conn: ConnId) {
        let mut core = self.lock();
        self.guest_close(&mut core, conn);
        if let Some(io) = core.conns.get_mut(&conn) {
            io.guest_open = false;
        }
        self.finish_if_done(&mut core, conn);
    }

    fn finish_if_done(&self, core: &mut Core, conn: ConnId) {
        let done = core
            .conns
            .get(&conn)
            .is_some_and(|io| !io.host_open && !io.guest_open);
        if !done {
            return;
        }
        if let Some(io) = core.conns.remove(&conn)
            && io.established
        {
            self.emit(HvsockEvent::Closed {
                conn: conn.0,
                origin: origin_name(io.origin),
                by: io.first_close.unwrap_or("vmm"),
                bytes_to_guest: io.bytes_to_guest,
                bytes_to_host: io.bytes_to_host,
            });
        }
    }

    /// A fault reset `conn` (`reset_peer`, `reset_mid_stream`, `agent_crash`): both directions
    /// go at once, the guest's with a reset.
    pub fn fault_reset(self: &Arc<Self>, conn: ConnId, direction: &'static str) {
        let mut core = self.lock();
        if let Some(io) = core.conns.get_mut(&conn) {
            io.to_guest.finish(PipeEnd::Reset);
            io.first_close.get_or_insert("fault");
        }
        self.emit(HvsockEvent::Fault {
            conn: conn.0,
            action: "reset",
            direction,
        });
        self.host_close(&mut core, conn, "fault");
    }

    /// Host bytes for the muxer (the `CONNECT` command, then data for the guest). Pending while
    /// the muxer or the `to_guest` queue is full.
    pub fn poll_host_input(
        self: &Arc<Self>,
        core: &mut Core,
        conn: ConnId,
        buf: &[u8],
        cx: &Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let Some(io) = core.conns.get_mut(&conn) else {
            return Poll::Ready(Err(broken()));
        };
        if io.host_closed {
            return Poll::Ready(Err(broken()));
        }
        if io.to_guest.len >= PIPE_LIMIT {
            park(&mut io.host_in, cx);
            return Poll::Pending;
        }
        match core.mux.host_read_chunk(conn, buf, now()) {
            Ok(0) => {
                if let Some(io) = core.conns.get_mut(&conn) {
                    park(&mut io.host_in, cx);
                }
                self.drain(core);
                Poll::Pending
            }
            Ok(n) => {
                self.drain(core);
                Poll::Ready(Ok(n))
            }
            Err(_) => Poll::Ready(Err(broken())),
        }
    }

    /// Guest bytes for the muxer. Pending while the muxer or the `to_host` queue is full.
    pub fn poll_guest_input(
        self: &Arc<Self>,
        core: &mut Core,
        conn: ConnId,
        buf: &[u8],
        cx: &Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let Some(io) = core.conns.get_mut(&conn) else {
            return Poll::Ready(Err(broken()));
        };
        if io.guest_closed {
            return Poll::Ready(Err(broken()));
        }
        if io.to_host.len >= PIPE_LIMIT {
            park(&mut io.guest_in, cx);
            return Poll::Pending;
        }
        match core.mux.guest_send(conn, buf) {
            Ok(0) => {
                if let Some(io) = core.conns.get_mut(&conn) {
                    park(&mut io.guest_in, cx);
                }
                self.drain(core);
                Poll::Pending
            }
            Ok(n) => {
                self.drain(core);
                Poll::Ready(Ok(n))
            }
            Err(_) => Poll::Ready(Err(broken())),
        }
    }

    /// The next bytes for the host socket (gated by pause). A gone connection reads as EOF.
    pub fn poll_host_output(&self, conn: ConnId, max: usize, cx: &Context<'_>) -> Poll<Popped> {
        let mut core = self.lock();
        if core.paused() {
            core.park_until_resume(cx);
            return Poll::Pending;
        }
        let Some(io) = core.conns.get_mut(&conn) else {
            return Poll::Ready(Popped::Eof);
        };
        let popped = io.to_host.poll_pop(max, cx);
        if matches!(popped, Poll::Ready(Popped::Data(_))) {
            wake(&mut io.guest_in);
        }
        popped
    }

    /// The next bytes for the guest stream (gated by pause). A gone connection reads as a reset.
    pub fn poll_guest_output(&self, conn: ConnId, max: usize, cx: &Context<'_>) -> Poll<Popped> {
        let mut core = self.lock();
        if core.paused() {
            core.park_until_resume(cx);
            return Poll::Pending;
        }
        let Some(io) = core.conns.get_mut(&conn) else {
            return Poll::Ready(Popped::Reset);
        };
        let popped = io.to_guest.poll_pop(max, cx);
        if matches!(popped, Poll::Ready(Popped::Data(_))) {
            wake(&mut io.host_in);
        }
        popped
    }

    /// Ready once the guest side of `conn` is reset (or the connection is gone).
    pub fn poll_guest_reset(&self, conn: ConnId, cx: &Context<'_>) -> Poll<()> {
        let mut core = self.lock();
        match core.conns.get_mut(&conn) {
            Some(io) => io.to_guest.poll_reset(cx),
            None => Poll::Ready(()),
        }
    }

    /// The handshake's outcome for a host-initiated connection: the `OK` line to write, or
    /// `None` when it was refused (close without a reply).
    pub fn poll_handshake(&self, conn: ConnId, cx: &Context<'_>) -> Poll<Option<Bytes>> {
        let mut core = self.lock();
        let Some(io) = core.conns.get_mut(&conn) else {
            return Poll::Ready(None);
        };
        match &mut io.handshake {
            Handshake::Answered(line) => Poll::Ready(Some(line.take().unwrap_or_default())),
            Handshake::Refused => Poll::Ready(None),
            Handshake::Pending => {
                park(&mut io.host_waiter, cx);
                Poll::Pending
            }
        }
    }

    /// Ready while the VM runs.
    pub fn poll_unpaused(&self, cx: &Context<'_>) -> Poll<()> {
        let mut core = self.lock();
        if core.paused() {
            core.park_until_resume(cx);
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// Pauses or resumes the VM on the API's behalf.
    pub fn set_api_paused(self: &Arc<Self>, paused: bool) {
        let mut core = self.lock();
        if core.api_paused == paused {
            return;
        }
        core.api_paused = paused;
        self.emit(if paused {
            HvsockEvent::Paused {
                by: "api",
                duration_ms: None,
            }
        } else {
            HvsockEvent::Resumed { by: "api" }
        });
        self.apply_pause(&mut core);
    }

    /// `vm_pause`: the VM pauses for `duration`, then resumes (unless the API paused it too).
    pub fn fault_pause(self: &Arc<Self>, duration: Duration) {
        {
            let mut core = self.lock();
            core.fault_pauses += 1;
            self.emit(HvsockEvent::Paused {
                by: "fault",
                duration_ms: Some(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
            });
            self.apply_pause(&mut core);
        }
        let me = self.clone();
        self.spawn(async move {
            tokio::time::sleep(duration).await;
            let mut core = me.lock();
            core.fault_pauses = core.fault_pauses.saturating_sub(1);
            me.emit(HvsockEvent::Resumed { by: "fault" });
            me.apply_pause(&mut core);
        });
    }

    fn apply_pause(self: &Arc<Self>, core: &mut Core) {
        if core.paused() {
            core.mux.pause();
            return;
        }
        core.mux.resume();
        self.drain(core);
        for w in core.resume_wakers.drain(..) {
            w.wake();
        }
        for io in core.conns.values_mut() {
            io.wake_all();
        }
    }

    /// Opens a guest-initiated connection to host port `host_port`: returns the guest's end
    /// once `<socket>_<host_port>` accepted it, or why not.
    pub async fn guest_connect(
        self: &Arc<Self>,
        host_port: u32,
        guest_end: BoxStream,
    ) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        {
            let mut core = self.lock();
            if self.is_stopping() {
                return Err("the VMM is stopping".into());
            }
            let guest_port = FIRST_EPHEMERAL_PORT + core.guest_ports_used % 16384;
            core.guest_ports_used = core.guest_ports_used.wrapping_add(1);
            let conn = core.mux.guest_connect(guest_port, host_port, now());
            let mut io = ConnIo::new(Origin::Guest, Handshake::Answered(None));
            io.guest_port = Some(guest_port);
            io.host_port = Some(host_port);
            io.guest_open = true;
            io.pending_guest = Some(guest_end);
            io.connect_waiter = Some(tx);
            core.conns.insert(conn, io);
            self.timer.notify_one();
            self.drain(&mut core);
        }
        rx.await
            .unwrap_or_else(|_| Err("the VMM stopped before the host answered".into()))
    }

    /// The host side of a guest-initiated connection answered: the connection is live. Returns
    /// the guest's end to run, or `None` when the guest already gave up.
    pub fn host_side_connected(
        self: &Arc<Self>,
        core: &mut Core,
        conn: ConnId,
    ) -> Option<BoxStream> {
        core.mux.host_side_connected(conn).ok()?;
        let io = core.conns.get_mut(&conn)?;
        io.host_open = true;
        io.established = true;
        let guest = io.pending_guest.take();
        if let Some(w) = io.connect_waiter.take() {
            let _ = w.send(Ok(()));
        }
        self.emit(HvsockEvent::Established {
            conn: conn.0,
            origin: "guest",
            guest_port: io.guest_port.unwrap_or_default(),
            host_port: io.host_port.unwrap_or_default(),
            ok: None,
            service: "guest stream".into(),
        });
        self.drain(core);
        guest
    }

    /// The VMM's state.
    pub fn snapshot(&self) -> HvsockSnapshot {
        let core = self.lock();
        let mux = core.mux.snapshot();
        let connections = mux
            .connections
            .iter()
            .map(|c| {
                let io = core.conns.get(&c.conn);
                ConnectionSnapshot {
                    conn: c.conn.0,
                    origin: origin_name(c.origin),
                    state: state_name(c.state),
                    guest_port: c.guest_port,
                    host_port: c.host_port,
                    queued_to_host: c.queued_to_host,
                    queued_to_guest: c.queued_to_guest,
                    bytes_to_guest: io.map_or(0, |io| io.bytes_to_guest),
                    bytes_to_host: io.map_or(0, |io| io.bytes_to_host),
                }
            })
            .collect();
        let recent_refusals = mux
            .recent_refusals
            .iter()
            .map(|r| RefusalSnapshot {
                conn: r.conn.0,
                origin: origin_name(r.origin),
                kind: refusal_kind(&r.reason),
                reason: r.reason.to_string(),
            })
            .collect();
        HvsockSnapshot {
            socket: self.config.socket.display().to_string(),
            cid: self.config.cid,
            flavour: self.config.flavour.to_string(),
            paused: core.paused(),
            ports: self
                .config
                .ports
                .iter()
                .map(|(p, s)| (*p, s.to_string()))
                .collect(),
            listening: mux.listening.clone(),
            connections,
            refused_total: mux.refused_total,
            recent_refusals,
            mux,
        }
    }
}

/// Waits until the VMM is stopping.
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn broken() -> io::Error {
    io::Error::from(io::ErrorKind::BrokenPipe)
}

fn refused_event(conn: ConnId, origin: Origin, reason: &RefuseReason) -> HvsockEvent {
    HvsockEvent::Refused {
        conn: conn.0,
        origin: origin_name(origin),
        kind: refusal_kind(reason),
        reason: reason.to_string(),
    }
}

/// The guest and host ports the muxer has for `conn`.
fn ports_of(mux: &VsockMuxer, conn: ConnId) -> (Option<u32>, Option<u32>) {
    mux.snapshot()
        .connections
        .into_iter()
        .find(|c| c.conn == conn)
        .map_or((None, None), |c| (c.guest_port, c.host_port))
}

/// Why the muxer refused `conn`, if it remembers.
fn refusal_of(mux: &VsockMuxer, conn: ConnId) -> Option<RefuseReason> {
    mux.snapshot()
        .recent_refusals
        .iter()
        .rev()
        .find(|r| r.conn == conn)
        .map(|r| r.reason)
}
