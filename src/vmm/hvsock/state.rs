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
//! Pausing (`control`: `Shared::set_api_paused`, `Shared::fault_pause`) freezes the muxer (its events
//! stay queued) and the queues' readers, so nothing moves either way until the resume.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinSet;

use super::config::HvsockConfig;
use super::events::{HvsockEvent, origin_name, refusal_kind};
use super::guest_side::Service;
use super::queues::{ConnIo, Handshake, PipeEnd, Popped, park, wake};
use crate::channel::vsock::{CloseReason, ConnId, MuxEvent, Origin, RefuseReason, VsockMuxer};
use crate::wire::hybrid::CONN_TX_BUF_SIZE;
use crate::wire::protocol::Protocol;

/// Most bytes a connection's queue holds before its feeder waits (one muxer buffer's worth).
pub const PIPE_LIMIT: usize = CONN_TX_BUF_SIZE as usize;

/// The clock the muxer is fed: tokio's, so that paused-clock tests control it.
pub fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// The muxer and the connections' queues.
pub struct Core {
    /// The pure muxer model.
    pub mux: VsockMuxer,
    /// The adapter's side of each connection.
    pub conns: HashMap<ConnId, ConnIo>,
    pub(super) api_paused: bool,
    pub(super) fault_pauses: u32,
    pub(super) resume_wakers: Vec<Waker>,
    pub(super) guest_ports_used: u32,
}

impl Core {
    /// Whether the VM is paused (by the API or a fault).
    pub fn paused(&self) -> bool {
        self.api_paused || self.fault_pauses > 0
    }

    pub(super) fn park_until_resume(&mut self, cx: &Context<'_>) {
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
    /// The stream faults new host connections get (starts as the configuration's).
    pub live_faults: crate::fault::LiveFaults,
    /// How each guest port is served.
    pub services: BTreeMap<u32, Service>,
    pub(super) events: broadcast::Sender<HvsockEvent>,
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
            live_faults: crate::fault::LiveFaults::new(config.faults.clone()),
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
        // Not once stopping, nor outside a runtime (a task dropped during a runtime's shutdown).
        if self.is_stopping() || tokio::runtime::Handle::try_current().is_err() {
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

    pub(super) fn finish_if_done(&self, core: &mut Core, conn: ConnId) {
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
}

/// Waits until the VMM is stopping.
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn broken() -> io::Error {
    io::Error::from(io::ErrorKind::BrokenPipe)
}

pub(super) fn refused_event(conn: ConnId, origin: Origin, reason: &RefuseReason) -> HvsockEvent {
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
