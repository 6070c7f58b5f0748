//! [`SharedPort`]: the pure model [`SerialPort`] behind a lock, shared by the host connections
//! and the guest side of the mock VMM, with async streams over it (in [`super::streams`]):
//! [`GuestPort`] (the guest's `/dev/virtio-ports/NAME`) and [`HostPort`] (QEMU's end of one host
//! client's socket).
//!
//! Every stream operation is one call into the model under the lock. An operation that cannot
//! proceed (nothing to read, no room, no host client) registers its task's waker under the same
//! lock and returns `Pending`; any operation that changes the model wakes every registered task,
//! which then asks the model again. No polling with sleeps, no lost wake-ups. The model's
//! events are translated into [`SerialVmmEvent`]s and broadcast as they happen.
//!
//! The `guest_before_host` fault lives here too (see [`SharedPort::arm_guest_before_host`]).

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::io::ReadBuf;
use tokio::sync::broadcast;

use super::event::SerialVmmEvent;
use super::streams::{GuestPort, HostPort};
use crate::channel::serial::{
    ClientId, GuestRead, GuestWrite, HostConnect, PORT_QUEUE_SLOTS, PORT_WRITE_MAX, SerialError,
    SerialEvent, SerialPort, SerialSnapshot,
};

/// Events buffered for each subscriber before the oldest are dropped (a slow reader lags).
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// Guest writes taken while no host client has ever connected, under `guest_before_host`.
#[derive(Debug, Default)]
struct PreHost {
    /// Still taking writes: no host client has been accepted yet.
    armed: bool,
    /// Writes taken so far (at most [`PORT_QUEUE_SLOTS`]).
    writes: usize,
    /// Bytes taken and not yet read by the first host client.
    bytes: VecDeque<u8>,
    /// The first host client, which reads `bytes` before anything else.
    owner: Option<ClientId>,
}

#[derive(Debug)]
struct Inner {
    model: SerialPort,
    wakers: Vec<Waker>,
    /// The guest's current open of the port (0: closed).
    session: u64,
    next_session: u64,
    prehost: PreHost,
    /// Who each host client is (`pid 42 uid 0`), for the events.
    peers: HashMap<ClientId, String>,
}

/// The model of one virtio-serial port, shared by the tasks of a mock VMM. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedPort {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<SerialVmmEvent>,
}

impl Default for SharedPort {
    fn default() -> Self {
        Self::new()
    }
}

fn broken(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, what.to_string())
}

/// Registers `waker` unless it is registered already.
fn register(wakers: &mut Vec<Waker>, waker: &Waker) {
    if !wakers.iter().any(|w| w.will_wake(waker)) {
        wakers.push(waker.clone());
    }
}

impl SharedPort {
    /// A port with the guest's device closed and no host client.
    pub fn new() -> Self {
        Self::with_model(SerialPort::new())
    }

    /// [`new`](Self::new) taking at most `bytes` of a client's writes ahead of the guest (see
    /// [`SerialPort::with_host_write_share`]).
    pub fn with_host_write_share(bytes: usize) -> Self {
        Self::with_model(SerialPort::with_host_write_share(bytes))
    }

    fn with_model(model: SerialPort) -> Self {
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        Self {
            inner: Arc::new(Mutex::new(Inner {
                model,
                wakers: Vec::new(),
                session: 0,
                next_session: 0,
                prehost: PreHost::default(),
                peers: HashMap::new(),
            })),
            events,
        }
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SerialVmmEvent> {
        self.events.subscribe()
    }

    /// Sends an event of the VMM's own (not the model's) to the subscribers.
    pub fn emit(&self, event: SerialVmmEvent) {
        let _ = self.events.send(event);
    }

    /// The model's queue depths, clients and counters.
    pub fn snapshot(&self) -> SerialSnapshot {
        self.lock().model.snapshot()
    }

    /// The `guest_before_host` fault: until the first host client is accepted, the port takes
    /// the guest's writes (up to [`PORT_QUEUE_SLOTS`] writes of at most [`PORT_WRITE_MAX`] bytes
    /// each; further writes block) instead of taking none, so that the guest's writes "succeed"
    /// and its next reads see end of file, and the first host client receives those writes
    /// before anything else. Seed 003's account of failure 1 ("the guest agent starts and fills
    /// the write buffer before the host connects"), and what an agent writing through a
    /// write-behind file (the LimiQuantix agent's `tokio::fs::File`) sees: `write()` returns at
    /// once while nothing is connected.
    pub fn arm_guest_before_host(&self) {
        self.lock().prehost.armed = true;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the model's events and, when the model changed, wakes every waiting task.
    fn finish(&self, mut inner: MutexGuard<'_, Inner>, changed: bool) {
        while let Some(e) = inner.model.poll_event() {
            let event = translate(&inner.peers, e);
            let _ = self.events.send(event);
        }
        let wakers = if changed {
            std::mem::take(&mut inner.wakers)
        } else {
            Vec::new()
        };
        drop(inner);
        for w in wakers {
            w.wake();
        }
    }

    /// A host client connects (QEMU accepted it, or the kernel queued it); `peer` says who it
    /// is. Returns the model's answer and, for a client that connected, its stream.
    pub fn connect_host(&self, peer: &str) -> (HostConnect, Option<HostPort>) {
        let mut inner = self.lock();
        let outcome = inner.model.host_connect();
        if let Some(id) = outcome.client() {
            inner.peers.insert(id, peer.to_string());
        }
        if let HostConnect::Accepted(id) = outcome
            && inner.prehost.armed
        {
            inner.prehost.armed = false;
            inner.prehost.owner = Some(id);
        }
        // Translate ClientAccepted with the peer known: events are drained in `finish`.
        self.finish(inner, true);
        let port = outcome.client().map(|id| HostPort::new(self.clone(), id));
        (outcome, port)
    }

    pub(super) fn disconnect_host(&self, id: ClientId) {
        let mut inner = self.lock();
        if inner.model.host_disconnect(id).is_err() {
            return;
        }
        if inner.prehost.owner == Some(id) {
            inner.prehost.owner = None;
            let lost = inner.prehost.bytes.len();
            inner.prehost.bytes.clear();
            if lost > 0 {
                let _ = self.events.send(SerialVmmEvent::GuestBeforeHostDiscarded {
                    client: id.get(),
                    bytes: lost as u64,
                });
            }
        }
        inner.peers.remove(&id);
        self.finish(inner, true);
    }

    /// The guest opens its device: a stream for it.
    pub fn open_guest(&self) -> Result<GuestPort, SerialError> {
        let mut inner = self.lock();
        inner.model.guest_open()?;
        inner.next_session += 1;
        inner.session = inner.next_session;
        let session = inner.session;
        self.finish(inner, true);
        Ok(GuestPort::new(self.clone(), session))
    }

    /// The guest closes the device it opened as `session`; nothing if that open is over already.
    pub fn close_guest(&self, session: u64) {
        let mut inner = self.lock();
        if inner.session != session || session == 0 {
            return;
        }
        inner.session = 0;
        let _ = inner.model.guest_close();
        self.finish(inner, true);
    }

    /// Waits until `pred` holds for the model (checked now and after every change).
    pub async fn wait_until(&self, pred: impl Fn(&SerialPort) -> bool) {
        poll_fn(|cx| {
            let mut inner = self.lock();
            if pred(&inner.model) {
                Poll::Ready(())
            } else {
                register(&mut inner.wakers, cx.waker());
                Poll::Pending
            }
        })
        .await;
    }

    /// Whether a host client is accepted.
    pub fn host_active(&self) -> bool {
        self.lock().model.snapshot().active.is_some()
    }

    /// A guest read into `buf` for the open `session` (`None`: whatever open is current; while
    /// the port is closed it waits). `eof_waits`: wait for a host client instead of reporting
    /// end of file while none is connected (a pty cannot say end of file).
    pub(super) fn poll_guest_read(
        &self,
        cx: &mut Context<'_>,
        session: Option<u64>,
        eof_waits: bool,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.lock();
        match session {
            Some(s) if s != inner.session => return Poll::Ready(Err(broken("port closed"))),
            None if inner.session == 0 => {
                register(&mut inner.wakers, cx.waker());
                return Poll::Pending;
            }
            _ => {}
        }
        match inner.model.guest_read(buf.remaining()) {
            Ok(GuestRead::Data(data)) => {
                buf.put_slice(&data);
                self.finish(inner, true);
                Poll::Ready(Ok(()))
            }
            Ok(GuestRead::Eof) if !eof_waits => Poll::Ready(Ok(())),
            Ok(GuestRead::Eof | GuestRead::WouldBlock) => {
                register(&mut inner.wakers, cx.waker());
                Poll::Pending
            }
            Err(_) => Poll::Ready(Err(broken("port closed"))),
        }
    }

    /// A guest write for `session` (`None`: whatever open is current; waits while closed).
    pub(super) fn poll_guest_write(
        &self,
        cx: &mut Context<'_>,
        session: Option<u64>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut inner = self.lock();
        match session {
            Some(s) if s != inner.session => return Poll::Ready(Err(broken("port closed"))),
            None if inner.session == 0 => {
                register(&mut inner.wakers, cx.waker());
                return Poll::Pending;
            }
            _ => {}
        }
        if let Some(n) = take_before_host(&mut inner, data) {
            let _ = self.events.send(SerialVmmEvent::GuestBeforeHost {
                bytes: n as u64,
                writes: inner.prehost.writes as u64,
            });
            self.finish(inner, true);
            return Poll::Ready(Ok(n));
        }
        match inner.model.guest_write(data) {
            Ok(GuestWrite::Accepted(n)) => {
                self.finish(inner, n > 0);
                Poll::Ready(Ok(n))
            }
            Ok(GuestWrite::WouldBlock) => {
                register(&mut inner.wakers, cx.waker());
                // Publishes GuestBlocked; wakes nobody.
                self.finish(inner, false);
                Poll::Pending
            }
            Err(_) => Poll::Ready(Err(broken("port closed"))),
        }
    }

    /// Waits until a guest write would take bytes (for the pty pump, which reads the agent's
    /// output only when the port can take it).
    pub(super) async fn wait_guest_writable(&self) {
        poll_fn(|cx| {
            let mut inner = self.lock();
            let p = &inner.prehost;
            let early = p.armed && p.writes < PORT_QUEUE_SLOTS && inner.session != 0;
            if early || inner.model.guest_poll().writable {
                Poll::Ready(())
            } else {
                register(&mut inner.wakers, cx.waker());
                Poll::Pending
            }
        })
        .await;
    }

    /// Waits until the guest has written before any host client connected
    /// (`guest_before_host`).
    pub(super) async fn wait_early_write(&self) {
        poll_fn(|cx| {
            let mut inner = self.lock();
            if inner.prehost.writes > 0 {
                Poll::Ready(())
            } else {
                register(&mut inner.wakers, cx.waker());
                Poll::Pending
            }
        })
        .await;
    }

    /// A guest read for the pty pump: any open session, waiting through end of file.
    pub(super) async fn read_for_pty(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            let mut rb = ReadBuf::new(buf);
            match self.poll_guest_read(cx, None, true, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// A guest write of all of `data` for the pty pump, into any open session.
    pub(super) async fn write_all_for_pty(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = poll_fn(|cx| self.poll_guest_write(cx, None, data)).await?;
            data = data.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    pub(super) fn poll_host_read(
        &self,
        cx: &mut Context<'_>,
        id: ClientId,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.lock();
        if inner.prehost.owner == Some(id) && !inner.prehost.bytes.is_empty() {
            let n = buf.remaining().min(inner.prehost.bytes.len());
            let taken: Vec<u8> = inner.prehost.bytes.drain(..n).collect();
            buf.put_slice(&taken);
            return Poll::Ready(Ok(()));
        }
        match inner.model.host_read(id, buf.remaining()) {
            Ok(data) if data.is_empty() && buf.remaining() > 0 => {
                register(&mut inner.wakers, cx.waker());
                Poll::Pending
            }
            Ok(data) => {
                buf.put_slice(&data);
                self.finish(inner, true);
                Poll::Ready(Ok(()))
            }
            // Disconnected: end of stream.
            Err(_) => Poll::Ready(Ok(())),
        }
    }

    pub(super) fn poll_host_write(
        &self,
        cx: &mut Context<'_>,
        id: ClientId,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut inner = self.lock();
        match inner.model.host_write(id, data) {
            Ok(0) if !data.is_empty() => {
                register(&mut inner.wakers, cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                self.finish(inner, true);
                Poll::Ready(Ok(n))
            }
            Err(_) => Poll::Ready(Err(broken("host client disconnected"))),
        }
    }
}

/// Under `guest_before_host`, takes a write while no host client has ever been accepted;
/// `None` when the model decides.
fn take_before_host(inner: &mut Inner, data: &[u8]) -> Option<usize> {
    let p = &mut inner.prehost;
    if !p.armed || data.is_empty() || p.writes >= PORT_QUEUE_SLOTS {
        return None;
    }
    let n = data.len().min(PORT_WRITE_MAX);
    p.bytes.extend(&data[..n]);
    p.writes += 1;
    Some(n)
}

fn translate(peers: &HashMap<ClientId, String>, e: SerialEvent) -> SerialVmmEvent {
    match e {
        SerialEvent::ClientAccepted { client } => SerialVmmEvent::ClientAccepted {
            client: client.get(),
            peer: peers.get(&client).cloned().unwrap_or_default(),
        },
        SerialEvent::ClientQueued { client } => SerialVmmEvent::ClientQueued {
            client: client.get(),
        },
        SerialEvent::ClientRefused => SerialVmmEvent::ClientRefused,
        SerialEvent::ClientDisconnected { client, was_active } => {
            SerialVmmEvent::ClientDisconnected {
                client: client.get(),
                was_active,
            }
        }
        SerialEvent::DataDiscarded {
            client,
            bytes,
            unread_by_guest,
        } => SerialVmmEvent::DataDiscarded {
            client: client.get(),
            bytes,
            unread_by_guest,
        },
        SerialEvent::GuestOpened => SerialVmmEvent::GuestOpened,
        SerialEvent::GuestClosed => SerialVmmEvent::GuestClosed,
        SerialEvent::GuestBlocked => SerialVmmEvent::GuestBlocked,
        SerialEvent::GuestUnblocked => SerialVmmEvent::GuestUnblocked,
    }
}
