//! A pure model of a hybrid-vsock muxer: the part of a VMM that bridges host Unix-socket
//! connections to guest vsock connections. No IO, no clock, no tokio: every input is a method
//! call that takes `now`, every output is polled ([`VsockMuxer::poll_event`],
//! [`VsockMuxer::poll_timeout`]), in the sans-IO style of quinn-proto. A tokio adapter owns the
//! sockets and the timer and drives this model.
//!
//! What it copies, and from where:
//!
//! - **Firecracker** (`src/vmm/src/devices/virtio/vsock/`): the split between the connection
//!   state machine (`csm/`) and the muxer (`unix/muxer.rs`); the connection states
//!   ([`ConnState`]: `LocalInit`, `PeerInit`, `Established`, `LocalClosed`, `PeerClosed`,
//!   `Killed`); the limits in [`crate::wire::hybrid`] — [`MAX_CONNECTIONS`] (1023 live
//!   connections, further host connections accepted then closed), [`CONN_TX_BUF_SIZE`] (64 KiB
//!   per connection and direction), [`CONN_CREDIT_UPDATE_THRESHOLD`] (a credit update to the guest
//!   every 4 KiB the host consumed), [`CONN_REQUEST_TIMEOUT_MS`] (a host connection with no
//!   complete `CONNECT` after 2000 ms is killed) and [`CONN_SHUTDOWN_TIMEOUT_MS`]; a rejected or
//!   unanswerable `CONNECT` closes the host connection **with no message**.
//! - **Cloud Hypervisor** (`virtio-devices/src/vsock/unix/muxer.rs`): the same muxer, but partial
//!   commands are kept across reads (the per-flavour [`ConnectParser`]).
//! - **vhost-device-vsock** 0.3.0 (`VMLAB.md`): `OK <guest port>` instead of a host-side port, and
//!   a guest connection to host port `P` dials `<uds_path>_P`.
//!
//! The `CONNECT` parsing itself, per flavour, is [`ConnectParser`]; the reply is [`ok_line`]; the
//! host-side ports come from [`LocalPortAllocator`].
//!
//! Simplifications: the guest's answer to a connection request is immediate (whether it listens
//! is known from [`VsockMuxer::guest_listen`]), so a host connection is `LocalInit` only while its
//! command is being read, and the request timeout covers that read. Data leaves a connection's
//! buffer when the adapter polls the event carrying it.
//!
//! Memory is bounded: at most [`MAX_CONNECTIONS`] connections, [`CONN_TX_BUF_SIZE`] bytes queued
//! per connection and direction, [`MAX_PENDING_DATA_EVENTS`] data events, [`MAX_LISTENERS`]
//! listening ports and [`MAX_RECENT_REFUSALS`] remembered refusals.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::wire::hybrid::{
    CONN_CREDIT_UPDATE_THRESHOLD, CONN_REQUEST_TIMEOUT_MS, CONN_SHUTDOWN_TIMEOUT_MS,
    CONN_TX_BUF_SIZE, ConnectOutcome, ConnectParser, Flavour, LocalPortAllocator, MAX_CONNECTIONS,
    ok_line,
};

mod types;

pub use types::{
    CloseReason, ConnId, ConnSnapshot, ConnState, MuxError, MuxEvent, MuxSnapshot, Origin, Refusal,
    RefuseReason,
};

/// Most data events ([`MuxEvent::WriteToHost`], [`MuxEvent::DeliverToGuest`]) waiting to be
/// polled; a send that would need another one is refused (backpressure). guestwire's own bound:
/// adjacent sends on one connection and direction share an event, so this only bites when the
/// adapter stops polling.
pub const MAX_PENDING_DATA_EVENTS: usize = 4096;

/// Most guest ports listening at once (guestwire's own bound).
pub const MAX_LISTENERS: usize = 4096;

/// How many recent refusals [`VsockMuxer::snapshot`] remembers.
pub const MAX_RECENT_REFUSALS: usize = 64;

#[derive(Debug)]
struct Conn {
    origin: Origin,
    state: ConnState,
    parser: Option<ConnectParser>,
    guest_port: Option<u32>,
    host_port: Option<u32>,
    /// The host port came from the allocator and must be released.
    local_port: Option<u32>,
    deadline: Option<Instant>,
    queued_to_host: u32,
    queued_to_guest: u32,
    fwd_cnt: u32,
    last_credit_fwd_cnt: u32,
}

impl Conn {
    fn new(origin: Origin, state: ConnState, deadline: Instant) -> Self {
        Self {
            origin,
            state,
            parser: None,
            guest_port: None,
            host_port: None,
            local_port: None,
            deadline: Some(deadline),
            queued_to_host: 0,
            queued_to_guest: 0,
            fwd_cnt: 0,
            last_credit_fwd_cnt: 0,
        }
    }
}

/// An event and whether it carries guest data (which counts toward credit once polled).
#[derive(Debug)]
struct Queued {
    event: MuxEvent,
    guest_data: bool,
}

/// The muxer model. See the module documentation.
#[derive(Debug)]
pub struct VsockMuxer {
    flavour: Flavour,
    conns: BTreeMap<ConnId, Conn>,
    next_id: u64,
    listening: BTreeSet<u32>,
    ports: LocalPortAllocator,
    events: VecDeque<Queued>,
    data_events: usize,
    paused: bool,
    refused_total: u64,
    recent_refusals: VecDeque<Refusal>,
}

fn request_timeout() -> Duration {
    Duration::from_millis(CONN_REQUEST_TIMEOUT_MS)
}

impl VsockMuxer {
    /// A muxer that behaves as `flavour`'s does, with nothing listening.
    pub fn new(flavour: Flavour) -> Self {
        Self {
            flavour,
            conns: BTreeMap::new(),
            next_id: 0,
            listening: BTreeSet::new(),
            ports: LocalPortAllocator::new(),
            events: VecDeque::new(),
            data_events: 0,
            paused: false,
            refused_total: 0,
            recent_refusals: VecDeque::new(),
        }
    }

    /// The flavour followed.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// A guest process listens on `port` (idempotent).
    pub fn guest_listen(&mut self, port: u32) -> Result<(), MuxError> {
        if !self.listening.contains(&port) && self.listening.len() >= MAX_LISTENERS {
            return Err(MuxError::TooManyListeners);
        }
        self.listening.insert(port);
        Ok(())
    }

    /// The guest stops listening on `port` (idempotent); live connections stay.
    pub fn guest_unlisten(&mut self, port: u32) {
        self.listening.remove(&port);
    }

    fn new_id(&mut self) -> ConnId {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        id
    }

    /// A host process connected to `uds_path`. Beyond [`MAX_CONNECTIONS`] live connections the
    /// connection is accepted and closed at once, as Firecracker does.
    pub fn host_connect(&mut self, now: Instant) -> ConnId {
        let id = self.new_id();
        if self.conns.len() >= MAX_CONNECTIONS {
            self.refuse(id, Origin::Host, RefuseReason::TooManyConnections);
            return id;
        }
        let mut conn = Conn::new(Origin::Host, ConnState::LocalInit, now + request_timeout());
        conn.parser = Some(ConnectParser::new(self.flavour));
        self.conns.insert(id, conn);
        id
    }

    /// Feeds what one `read()` of the host connection returned (empty: EOF). While the
    /// `CONNECT` command is read this drives the flavour's [`ConnectParser`]; once established,
    /// it is the same as [`Self::host_send`]. Returns how many bytes were taken; the rest is
    /// backpressure (only payload after the command can be left over).
    pub fn host_read_chunk(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        now: Instant,
    ) -> Result<usize, MuxError> {
        let state = self.conn_mut(conn)?.state;
        if state != ConnState::LocalInit {
            if bytes.is_empty() {
                return self.host_close(conn, now).map(|()| 0);
            }
            return self.host_send(conn, bytes);
        }
        let c = self.conn_mut(conn)?;
        let Some(parser) = c.parser.as_mut() else {
            return Err(MuxError::WrongState {
                conn,
                state: c.state,
                op: "host_read_chunk",
            });
        };
        match parser.on_read(bytes) {
            ConnectOutcome::NeedMore => Ok(bytes.len()),
            ConnectOutcome::Reject { reason, .. } => {
                self.kill_host(conn, RefuseReason::Malformed(reason));
                Ok(bytes.len())
            }
            ConnectOutcome::Connect { port, rest } => Ok(self
                .accept_connect(conn, port, &rest)
                .map_or(bytes.len(), |taken| bytes.len() - rest.len() + taken)),
        }
    }

    /// A valid `CONNECT port`: establish or refuse. Returns how much of `rest` was taken, or
    /// `None` when refused.
    fn accept_connect(&mut self, id: ConnId, port: u32, rest: &[u8]) -> Option<usize> {
        if !self.listening.contains(&port) {
            self.kill_host(id, RefuseReason::NoListener { port });
            return None;
        }
        let local = match self.flavour {
            Flavour::Firecracker | Flavour::CloudHypervisor => match self.ports.allocate() {
                Some(p) => Some(p),
                None => {
                    self.kill_host(id, RefuseReason::PortsExhausted);
                    return None;
                }
            },
            Flavour::VhostDevice => None,
        };
        let c = self.conns.get_mut(&id)?;
        c.state = ConnState::Established;
        c.parser = None;
        c.deadline = None;
        c.guest_port = Some(port);
        c.local_port = local;
        c.host_port = Some(local.unwrap_or(port));
        let line = ok_line(self.flavour, port, local.unwrap_or(port));
        self.events.push_back(Queued {
            event: MuxEvent::WriteToHost {
                conn: id,
                bytes: line,
            },
            guest_data: false,
        });
        Some(self.push_data(id, Direction::ToGuest, rest))
    }

    /// A guest process connects to the host (CID 2) on `host_port`: the adapter is asked to
    /// connect to `<uds_path>_<host_port>` ([`MuxEvent::ConnectToHost`]). Beyond
    /// [`MAX_CONNECTIONS`] the guest gets a reset instead.
    pub fn guest_connect(&mut self, guest_port: u32, host_port: u32, now: Instant) -> ConnId {
        let id = self.new_id();
        if self.conns.len() >= MAX_CONNECTIONS {
            self.refuse(id, Origin::Guest, RefuseReason::TooManyConnections);
            return id;
        }
        let mut conn = Conn::new(Origin::Guest, ConnState::PeerInit, now + request_timeout());
        conn.guest_port = Some(guest_port);
        conn.host_port = Some(host_port);
        self.conns.insert(id, conn);
        self.push_control(MuxEvent::ConnectToHost {
            conn: id,
            path_suffix: format!("_{host_port}"),
        });
        id
    }

    /// The adapter's connect to `<uds_path>_<port>` succeeded: the connection is established.
    pub fn host_side_connected(&mut self, conn: ConnId) -> Result<(), MuxError> {
        let c = self.expect_state(conn, ConnState::PeerInit, "host_side_connected")?;
        c.state = ConnState::Established;
        c.deadline = None;
        Ok(())
    }

    /// The adapter's connect to `<uds_path>_<port>` failed: the guest gets a reset.
    pub fn host_side_refused(&mut self, conn: ConnId) -> Result<(), MuxError> {
        let c = self.expect_state(conn, ConnState::PeerInit, "host_side_refused")?;
        let host_port = c.host_port.unwrap_or_default();
        self.kill_guest(conn, RefuseReason::HostRefused { host_port });
        Ok(())
    }

    /// Data from the guest for the host. Returns how many bytes were accepted: at most what is
    /// free of the connection's [`CONN_TX_BUF_SIZE`] buffer; the rest is backpressure.
    pub fn guest_send(&mut self, conn: ConnId, bytes: &[u8]) -> Result<usize, MuxError> {
        self.expect_state(conn, ConnState::Established, "guest_send")?;
        Ok(self.push_data(conn, Direction::ToHost, bytes))
    }

    /// Data from the host for the guest, on an established connection. Returns how many bytes
    /// were accepted, as [`Self::guest_send`].
    pub fn host_send(&mut self, conn: ConnId, bytes: &[u8]) -> Result<usize, MuxError> {
        self.expect_state(conn, ConnState::Established, "host_send")?;
        Ok(self.push_data(conn, Direction::ToGuest, bytes))
    }

    /// The host closed its connection. During the handshake this is EOF on the command (and
    /// nothing after a kill); once
    /// established the guest is told ([`MuxEvent::ShutdownGuest`]), data still queued for the
    /// host is dropped, and the guest has [`CONN_SHUTDOWN_TIMEOUT_MS`] to close before a reset.
    pub fn host_close(&mut self, conn: ConnId, now: Instant) -> Result<(), MuxError> {
        let state = self.conn_mut(conn)?.state;
        match state {
            ConnState::LocalInit => {
                self.host_read_chunk(conn, &[], now)?;
            }
            ConnState::PeerInit => {
                let host_port = self.conn_mut(conn)?.host_port.unwrap_or_default();
                self.kill_guest(conn, RefuseReason::HostRefused { host_port });
            }
            ConnState::Established => {
                self.purge(conn, Some(Direction::ToHost));
                let c = self.conn_mut(conn)?;
                c.state = ConnState::LocalClosed;
                c.deadline = Some(now + Duration::from_millis(CONN_SHUTDOWN_TIMEOUT_MS));
                self.push_control(MuxEvent::ShutdownGuest { conn });
            }
            ConnState::PeerClosed => {
                // Both sides are done: nothing more to write to the host.
                self.purge(conn, None);
                self.remove(conn);
            }
            // Already closing: the host's EOF after a kill changes nothing.
            ConnState::Killed => {}
            ConnState::LocalClosed => {
                return Err(MuxError::WrongState {
                    conn,
                    state,
                    op: "host_close",
                });
            }
        }
        Ok(())
    }

    /// The guest closed its side. Once established, data still queued for the host is written
    /// first, then the host connection closes ([`CloseReason::GuestClosed`]); after the host
    /// closed first, this ends the connection.
    pub fn guest_close(&mut self, conn: ConnId) -> Result<(), MuxError> {
        let state = self.conn_mut(conn)?.state;
        match state {
            ConnState::Established => {
                self.purge(conn, Some(Direction::ToGuest));
                self.conn_mut(conn)?.state = ConnState::PeerClosed;
                self.push_control(MuxEvent::CloseHost {
                    conn,
                    reason: CloseReason::GuestClosed,
                });
            }
            ConnState::LocalClosed => {
                self.purge(conn, None);
                self.remove(conn);
            }
            ConnState::PeerInit => {
                // The guest gave up first: a ConnectToHost not yet polled is withdrawn; one
                // already polled meets UnknownConnection when the adapter answers it.
                self.events.retain(
                    |q| !matches!(&q.event, MuxEvent::ConnectToHost { conn: c, .. } if *c == conn),
                );
                self.remove(conn);
            }
            ConnState::LocalInit | ConnState::PeerClosed | ConnState::Killed => {
                return Err(MuxError::WrongState {
                    conn,
                    state,
                    op: "guest_close",
                });
            }
        }
        Ok(())
    }

    /// Freezes delivery in both directions (the VMM's `vm.pause`): [`Self::poll_event`] yields
    /// nothing until [`Self::resume`]. Sends keep queueing, bounded by the same buffers.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Ends a [`Self::pause`]: queued events come out in their original order.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Whether delivery is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The next thing the adapter must do, or `None` (always `None` while paused). Data leaves
    /// its connection's buffer here; every [`CONN_CREDIT_UPDATE_THRESHOLD`] bytes of guest data
    /// written to the host a [`MuxEvent::CreditUpdate`] follows.
    pub fn poll_event(&mut self) -> Option<MuxEvent> {
        if self.paused {
            return None;
        }
        let Queued { event, guest_data } = self.events.pop_front()?;
        match &event {
            MuxEvent::WriteToHost { conn, bytes } if guest_data => {
                self.data_events = self.data_events.saturating_sub(1);
                let n = len_u32(bytes.len());
                if let Some(c) = self.conns.get_mut(conn) {
                    c.queued_to_host = c.queued_to_host.saturating_sub(n);
                    c.fwd_cnt = c.fwd_cnt.wrapping_add(n);
                    if c.fwd_cnt.wrapping_sub(c.last_credit_fwd_cnt) >= CONN_CREDIT_UPDATE_THRESHOLD
                    {
                        c.last_credit_fwd_cnt = c.fwd_cnt;
                        let update = MuxEvent::CreditUpdate {
                            conn: *conn,
                            buf_alloc: CONN_TX_BUF_SIZE,
                            fwd_cnt: c.fwd_cnt,
                        };
                        self.events.push_front(Queued {
                            event: update,
                            guest_data: false,
                        });
                    }
                }
            }
            MuxEvent::DeliverToGuest { conn, bytes, .. } => {
                self.data_events = self.data_events.saturating_sub(1);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.queued_to_guest = c.queued_to_guest.saturating_sub(len_u32(bytes.len()));
                }
            }
            MuxEvent::CloseHost { conn, .. } | MuxEvent::ResetGuest { conn } => {
                let conn = *conn;
                if self
                    .conns
                    .get(&conn)
                    .is_some_and(|c| matches!(c.state, ConnState::Killed | ConnState::PeerClosed))
                {
                    self.remove(conn);
                }
            }
            _ => {}
        }
        Some(event)
    }

    /// The next deadline [`Self::handle_timeout`] must be called at, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns.values().filter_map(|c| c.deadline).min()
    }

    /// Kills every connection whose deadline is at or before `now`: a host connection with no
    /// complete command after [`CONN_REQUEST_TIMEOUT_MS`] is closed silently, a guest-initiated
    /// one the host never answered is reset, as is a guest that did not close within
    /// [`CONN_SHUTDOWN_TIMEOUT_MS`] of the host closing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<(ConnId, ConnState)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(id, c)| (*id, c.state))
            .collect();
        for (id, state) in due {
            match state {
                ConnState::LocalInit => self.kill_host(id, RefuseReason::RequestTimeout),
                ConnState::PeerInit => self.kill_guest(id, RefuseReason::RequestTimeout),
                _ => {
                    self.purge(id, None);
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.state = ConnState::Killed;
                        c.deadline = None;
                    }
                    self.push_control(MuxEvent::ResetGuest { conn: id });
                }
            }
        }
    }

    /// Live connections, listeners, queues and refusals, for diagnosis.
    pub fn snapshot(&self) -> MuxSnapshot {
        MuxSnapshot {
            flavour: self.flavour,
            paused: self.paused,
            listening: self.listening.iter().copied().collect(),
            connections: self
                .conns
                .iter()
                .map(|(id, c)| ConnSnapshot {
                    conn: *id,
                    origin: c.origin,
                    state: c.state,
                    guest_port: c.guest_port,
                    host_port: c.host_port,
                    queued_to_host: c.queued_to_host,
                    queued_to_guest: c.queued_to_guest,
                    fwd_cnt: c.fwd_cnt,
                })
                .collect(),
            pending_events: self.events.len(),
            refused_total: self.refused_total,
            recent_refusals: self.recent_refusals.iter().copied().collect(),
        }
    }

    fn conn_mut(&mut self, conn: ConnId) -> Result<&mut Conn, MuxError> {
        self.conns
            .get_mut(&conn)
            .ok_or(MuxError::UnknownConnection(conn))
    }

    fn expect_state(
        &mut self,
        conn: ConnId,
        want: ConnState,
        op: &'static str,
    ) -> Result<&mut Conn, MuxError> {
        let c = self.conn_mut(conn)?;
        if c.state != want {
            return Err(MuxError::WrongState {
                conn,
                state: c.state,
                op,
            });
        }
        Ok(c)
    }

    fn push_control(&mut self, event: MuxEvent) {
        self.events.push_back(Queued {
            event,
            guest_data: false,
        });
    }

    /// Queues up to the free buffer space of `bytes` in direction `dir`; returns how many.
    fn push_data(&mut self, id: ConnId, dir: Direction, bytes: &[u8]) -> usize {
        let Some(c) = self.conns.get_mut(&id) else {
            return 0;
        };
        let queued = match dir {
            Direction::ToHost => &mut c.queued_to_host,
            Direction::ToGuest => &mut c.queued_to_guest,
        };
        let free = CONN_TX_BUF_SIZE.saturating_sub(*queued) as usize;
        let take = bytes.len().min(free);
        if take == 0 {
            return 0;
        }
        let chunk = &bytes[..take];
        // Extend the last event when it is data for the same connection and direction.
        if let Some(last) = self.events.back_mut() {
            match (&mut last.event, dir) {
                (MuxEvent::WriteToHost { conn, bytes }, Direction::ToHost)
                    if *conn == id && last.guest_data =>
                {
                    bytes.extend_from_slice(chunk);
                    *queued += len_u32(take);
                    return take;
                }
                (MuxEvent::DeliverToGuest { conn, bytes, .. }, Direction::ToGuest)
                    if *conn == id =>
                {
                    bytes.extend_from_slice(chunk);
                    *queued += len_u32(take);
                    return take;
                }
                _ => {}
            }
        }
        if self.data_events >= MAX_PENDING_DATA_EVENTS {
            return 0;
        }
        *queued += len_u32(take);
        let event = match dir {
            Direction::ToHost => MuxEvent::WriteToHost {
                conn: id,
                bytes: chunk.to_vec(),
            },
            Direction::ToGuest => MuxEvent::DeliverToGuest {
                conn: id,
                port: c.guest_port.unwrap_or_default(),
                bytes: chunk.to_vec(),
            },
        };
        self.data_events += 1;
        self.events.push_back(Queued {
            event,
            guest_data: dir == Direction::ToHost,
        });
        take
    }

    /// Drops queued data of `conn` (in one direction, or both when `None`).
    fn purge(&mut self, conn: ConnId, dir: Option<Direction>) {
        let before = self.events.len();
        self.events.retain(|q| match &q.event {
            MuxEvent::WriteToHost { conn: c, .. } if q.guest_data => {
                !(*c == conn && dir != Some(Direction::ToGuest))
            }
            MuxEvent::DeliverToGuest { conn: c, .. } => {
                !(*c == conn && dir != Some(Direction::ToHost))
            }
            _ => true,
        });
        self.data_events = self.data_events.saturating_sub(before - self.events.len());
        if let Some(c) = self.conns.get_mut(&conn) {
            if dir != Some(Direction::ToGuest) {
                c.queued_to_host = 0;
            }
            if dir != Some(Direction::ToHost) {
                c.queued_to_guest = 0;
            }
        }
    }

    fn record_refusal(&mut self, conn: ConnId, origin: Origin, reason: RefuseReason) {
        self.refused_total += 1;
        if self.recent_refusals.len() == MAX_RECENT_REFUSALS {
            self.recent_refusals.pop_front();
        }
        self.recent_refusals.push_back(Refusal {
            conn,
            origin,
            reason,
        });
    }

    /// A connection that never became live: record it and queue its close or reset.
    fn refuse(&mut self, conn: ConnId, origin: Origin, reason: RefuseReason) {
        self.record_refusal(conn, origin, reason);
        self.push_control(match origin {
            Origin::Host => MuxEvent::CloseHost {
                conn,
                reason: CloseReason::Refused(reason),
            },
            Origin::Guest => MuxEvent::ResetGuest { conn },
        });
    }

    /// Refuses a host-initiated connection: the host connection closes with no message.
    fn kill_host(&mut self, conn: ConnId, reason: RefuseReason) {
        self.kill(conn, Origin::Host, reason);
    }

    /// Refuses a guest-initiated connection: the guest gets a reset.
    fn kill_guest(&mut self, conn: ConnId, reason: RefuseReason) {
        self.kill(conn, Origin::Guest, reason);
    }

    fn kill(&mut self, conn: ConnId, origin: Origin, reason: RefuseReason) {
        self.purge(conn, None);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Killed;
            c.parser = None;
            c.deadline = None;
        }
        self.refuse(conn, origin, reason);
    }

    fn remove(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn)
            && let Some(port) = c.local_port
        {
            self.ports.release(port);
        }
    }
}

/// Which way data travels through the muxer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToHost,
    ToGuest,
}

/// A length already bounded by [`CONN_TX_BUF_SIZE`], as `u32`.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
