//! A pure model of a QEMU virtio-serial port exposed as a host Unix socket
//! (`-chardev socket,id=c0,path=…,server=on,wait=off -device virtserialport,chardev=c0,name=…`),
//! copying what QEMU 7.2.22 with a Debian 6.1 guest kernel was measured to do (`VMLAB.md`,
//! "virtio-serial port exposed as a Unix socket"):
//!
//! - guest writes while no host client is connected: **0 bytes accepted** (a blocking writer waits
//!   and loses nothing); guest reads while no host client is connected: **EOF at once**
//!   (poll: `POLLIN|POLLHUP`);
//! - host connected but not reading: the guest queues [`PORT_QUEUE_SLOTS`] ×
//!   min(write size, [`PORT_WRITE_MAX`]) bytes plus the host socket's buffer
//!   ([`HOST_SOCKET_BUFFER`], ≈ 180 KB) before it blocks (4 KiB writes: 524,288 + 180,224 B);
//! - host writes before the guest opens the port: ≈ 180 KB accepted, all delivered on open;
//! - one host client at a time: later clients connect (listen backlog [`LISTEN_BACKLOG`], so
//!   [`MAX_PENDING_CLIENTS`] wait) but are starved; one more is refused (`EAGAIN`);
//! - when the active client leaves, QEMU throws away the data in flight (unread in its socket, plus
//!   the guest's queued writes) without telling the guest and accepts the next client, which gets
//!   the stream from the middle, at a guest write boundary.
//!
//! Sans-IO in the quinn-proto style: inputs are method calls (`host_*`, `guest_*`), outputs are
//! return values and polled events ([`SerialPort::poll_event`]); no IO, no clock. Memory is bounded
//! by the caps above and [`EVENT_LOG_CAP`].
//!
//! Not measured, so modelled simply: host → guest data waits in the client's socket buffer only
//! (the guest's receive virtqueue is not modelled), and what the active client wrote that the guest
//! had not read yet is dropped with it when it disconnects (reported in
//! [`SerialEvent::DataDiscarded::unread_by_guest`]).

use std::collections::VecDeque;
use std::fmt;

/// Buffers in the port's guest → host virtqueue: the guest can have this many writes queued
/// (`VMLAB.md`: "128 × min(write size, 32 KiB) bytes into the port's queue").
pub const PORT_QUEUE_SLOTS: usize = 128;

/// Largest guest write taken in one buffer (Linux `virtio_console` caps one `write()` at 32 KiB;
/// `VMLAB.md`: "min(write size, 32 KiB)"). A longer write is accepted partially.
pub const PORT_WRITE_MAX: usize = 32 * 1024;

/// Bytes the host Unix socket holds in each direction (`VMLAB.md`: "≈ 180 KB"; the exact figure
/// is 704,512 − 524,288 = 180,224 B from the 4 KiB-write measurement).
pub const HOST_SOCKET_BUFFER: usize = 180_224;

/// QEMU's `listen()` backlog on the chardev socket (`VMLAB.md`: "listen backlog 1").
pub const LISTEN_BACKLOG: usize = 1;

/// Clients that can wait to be accepted: Linux admits backlog + 1 pending connections
/// (`VMLAB.md`: a second and a third client connect, a fourth gets `EAGAIN`).
pub const MAX_PENDING_CLIENTS: usize = LISTEN_BACKLOG + 1;

/// Events kept for [`SerialPort::poll_event`]; older ones are dropped (and counted) beyond this.
pub const EVENT_LOG_CAP: usize = 1024;

/// A host client of the port's Unix socket. Ids are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(u64);

impl ClientId {
    /// The id's number (1 for the first client, counting up).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}", self.0)
    }
}

/// The outcome of a host client's `connect()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostConnect {
    /// Connected and accepted by QEMU: data flows.
    Accepted(ClientId),
    /// Connected (the kernel queued it) but not accepted: starved until the active client leaves.
    Queued(ClientId),
    /// The listen queue is full: a non-blocking `connect()` gets `EAGAIN`.
    WouldBlock,
}

impl HostConnect {
    /// The new client's id, if it connected.
    pub fn client(self) -> Option<ClientId> {
        match self {
            Self::Accepted(id) | Self::Queued(id) => Some(id),
            Self::WouldBlock => None,
        }
    }
}

/// The outcome of a guest `write()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestWrite {
    /// This many bytes were taken (at most [`PORT_WRITE_MAX`]).
    Accepted(usize),
    /// Nothing was taken (`EAGAIN`; a blocking writer would wait).
    WouldBlock,
}

/// The outcome of a guest `read()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestRead {
    /// Bytes from the active host client.
    Data(Vec<u8>),
    /// `read()` returned 0: no host client is connected.
    Eof,
    /// A host client is connected but has sent nothing (`EAGAIN`).
    WouldBlock,
}

/// What `poll()` on the guest's port device would report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuestPoll {
    /// `POLLIN`: a read would not block (data, or EOF while no host is connected).
    pub readable: bool,
    /// `POLLOUT`: a write would take at least one byte.
    pub writable: bool,
    /// `POLLHUP`: no host client is connected.
    pub hangup: bool,
}

/// Misuse of the model (not a channel condition: those are return values and events).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    /// The client id was never handed out, or that client has disconnected.
    #[error("unknown host client: {0} (never connected, or already disconnected)")]
    UnknownClient(ClientId),
    /// The guest used the port without having it open (never opened, or closed).
    #[error("the guest used the port while it is not open")]
    GuestNotOpen,
    /// The guest opened the port twice.
    #[error("the guest opened the port while it is already open")]
    GuestAlreadyOpen,
}

/// Something the port did, for the doctor and the TUI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialEvent {
    /// QEMU accepted this client: data now flows between it and the guest.
    ClientAccepted {
        /// The client.
        client: ClientId,
    },
    /// This client connected but waits in the listen queue, starved.
    ClientQueued {
        /// The client.
        client: ClientId,
    },
    /// A client's `connect()` got `EAGAIN` (listen queue full).
    ClientRefused,
    /// A client disconnected.
    ClientDisconnected {
        /// The client.
        client: ClientId,
        /// Whether it was the accepted one (else it was still queued).
        was_active: bool,
    },
    /// The active client left and QEMU threw away the data in flight, without telling the guest.
    DataDiscarded {
        /// The client that left.
        client: ClientId,
        /// Guest → host bytes lost: unread in its socket plus the guest's queued writes.
        bytes: u64,
        /// Host → guest bytes it had sent that the guest had not read (not measured; see module doc).
        unread_by_guest: u64,
    },
    /// The guest opened the port.
    GuestOpened,
    /// The guest closed the port.
    GuestClosed,
    /// A guest write found no room (or no host client): a blocking writer now waits.
    GuestBlocked,
    /// Room appeared after [`SerialEvent::GuestBlocked`]: a blocked writer resumes.
    GuestUnblocked,
}

/// A host client's place in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Accepted by QEMU.
    Active,
    /// Connected, waiting in the listen queue.
    Queued,
}

/// Queue depths of one host client (the `ss -x` view of its socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSnapshot {
    /// The client.
    pub client: ClientId,
    /// Accepted or queued.
    pub state: ClientState,
    /// Guest → host bytes in its socket that it has not read (its `Recv-Q`).
    pub to_host_bytes: usize,
    /// Host → guest bytes it wrote that the guest has not read (for a queued client: all it wrote).
    pub to_guest_bytes: usize,
}

/// The whole port's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialSnapshot {
    /// The guest has the port open.
    pub guest_open: bool,
    /// The guest's last write would have blocked and no room has appeared since.
    pub guest_blocked: bool,
    /// Guest → host bytes in the port's queue, not yet passed to the host socket.
    pub guest_queue_bytes: usize,
    /// Guest writes (virtqueue buffers) in the port's queue, at most [`PORT_QUEUE_SLOTS`].
    pub guest_queue_writes: usize,
    /// The accepted client.
    pub active: Option<ClientId>,
    /// Clients waiting to be accepted, oldest first.
    pub queued: Vec<ClientId>,
    /// Every connected client: the active one first, then the queued ones.
    pub clients: Vec<ClientSnapshot>,
    /// Guest → host bytes thrown away by disconnects so far.
    pub discarded_total: u64,
    /// Guest → host bytes thrown away by the last disconnect of an active client.
    pub discarded_last: u64,
    /// Host → guest bytes thrown away by disconnects so far (see module doc).
    pub discarded_to_guest_total: u64,
    /// Guest → host bytes read by host clients so far.
    pub delivered_to_host: u64,
    /// Host → guest bytes read by the guest so far.
    pub delivered_to_guest: u64,
    /// Connects refused with `EAGAIN` so far.
    pub refused_total: u64,
    /// Events dropped because the log was full ([`EVENT_LOG_CAP`]).
    pub events_dropped: u64,
}

/// One host client's socket.
#[derive(Debug)]
struct Client {
    id: ClientId,
    /// Guest → host bytes QEMU wrote and the client has not read.
    to_host: VecDeque<u8>,
    /// Host → guest bytes the client wrote and QEMU has not passed on.
    to_guest: VecDeque<u8>,
}

impl Client {
    fn new(id: ClientId) -> Self {
        Self {
            id,
            to_host: VecDeque::new(),
            to_guest: VecDeque::new(),
        }
    }

    fn snapshot(&self, state: ClientState) -> ClientSnapshot {
        ClientSnapshot {
            client: self.id,
            state,
            to_host_bytes: self.to_host.len(),
            to_guest_bytes: self.to_guest.len(),
        }
    }
}

/// The model: one virtio-serial port, its guest side and its host socket's clients.
#[derive(Debug, Default)]
pub struct SerialPort {
    next_id: u64,
    active: Option<Client>,
    queued: VecDeque<Client>,
    guest_open: bool,
    guest_blocked: bool,
    /// Guest writes not yet passed to the host socket, one entry per write (virtqueue buffer).
    port_queue: VecDeque<Vec<u8>>,
    /// Bytes of the front write already passed to the host socket.
    port_queue_head: usize,
    /// Bytes in `port_queue` not yet passed on.
    port_queue_bytes: usize,
    events: VecDeque<SerialEvent>,
    events_dropped: u64,
    discarded_total: u64,
    discarded_last: u64,
    discarded_to_guest_total: u64,
    delivered_to_host: u64,
    delivered_to_guest: u64,
    refused_total: u64,
    /// What the host socket holds of a client's writes; 0 means [`HOST_SOCKET_BUFFER`].
    host_write_share: usize,
}

impl SerialPort {
    /// A port with the guest's device closed and no host client.
    pub fn new() -> Self {
        Self::default()
    }

    /// A port that takes at most `bytes` (at least 1) of a host client's writes ahead of the
    /// guest instead of [`HOST_SOCKET_BUFFER`]. An adapter that reads the client's real socket
    /// uses a small share: the client's own socket buffer then holds the rest, as under QEMU,
    /// instead of adding to it.
    pub fn with_host_write_share(bytes: usize) -> Self {
        Self {
            host_write_share: bytes.max(1),
            ..Self::default()
        }
    }

    /// A host client connects to the socket: accepted if none is, queued (starved) if the listen
    /// queue has room, else refused with `EAGAIN`.
    pub fn host_connect(&mut self) -> HostConnect {
        if self.active.is_some() && self.queued.len() >= MAX_PENDING_CLIENTS {
            self.refused_total += 1;
            self.push_event(SerialEvent::ClientRefused);
            return HostConnect::WouldBlock;
        }
        self.next_id += 1;
        let id = ClientId(self.next_id);
        if self.active.is_none() {
            self.active = Some(Client::new(id));
            self.push_event(SerialEvent::ClientAccepted { client: id });
            self.settle();
            HostConnect::Accepted(id)
        } else {
            self.queued.push_back(Client::new(id));
            self.push_event(SerialEvent::ClientQueued { client: id });
            HostConnect::Queued(id)
        }
    }

    /// A host client writes: returns how many bytes its socket took (0 when its buffer of
    /// [`HOST_SOCKET_BUFFER`] bytes is full). A queued client's bytes wait until it is accepted.
    pub fn host_write(&mut self, client: ClientId, bytes: &[u8]) -> Result<usize, SerialError> {
        let share = match self.host_write_share {
            0 => HOST_SOCKET_BUFFER,
            n => n,
        };
        let c = self.client_mut(client)?;
        let n = bytes.len().min(share.saturating_sub(c.to_guest.len()));
        c.to_guest.extend(&bytes[..n]);
        Ok(n)
    }

    /// A host client reads up to `max` bytes from the guest. Empty when there is nothing
    /// (`EAGAIN`); a queued client always gets nothing.
    pub fn host_read(&mut self, client: ClientId, max: usize) -> Result<Vec<u8>, SerialError> {
        let c = self.client_mut(client)?;
        let n = max.min(c.to_host.len());
        let out: Vec<u8> = c.to_host.drain(..n).collect();
        self.delivered_to_host += n as u64;
        self.settle();
        Ok(out)
    }

    /// A host client disconnects. If it was the active one, the data in flight is thrown away
    /// (reported as [`SerialEvent::DataDiscarded`]) and the next queued client is accepted.
    pub fn host_disconnect(&mut self, client: ClientId) -> Result<(), SerialError> {
        match &self.active {
            Some(active) if active.id == client => {}
            _ => {
                let pos = self
                    .queued
                    .iter()
                    .position(|c| c.id == client)
                    .ok_or(SerialError::UnknownClient(client))?;
                self.queued.remove(pos);
                self.push_event(SerialEvent::ClientDisconnected {
                    client,
                    was_active: false,
                });
                return Ok(());
            }
        }
        let Some(gone) = self.active.take() else {
            return Err(SerialError::UnknownClient(client));
        };
        let bytes = (gone.to_host.len() + self.port_queue_bytes) as u64;
        let unread_by_guest = gone.to_guest.len() as u64;
        self.port_queue.clear();
        self.port_queue_head = 0;
        self.port_queue_bytes = 0;
        self.discarded_total += bytes;
        self.discarded_last = bytes;
        self.discarded_to_guest_total += unread_by_guest;
        self.push_event(SerialEvent::ClientDisconnected {
            client,
            was_active: true,
        });
        self.push_event(SerialEvent::DataDiscarded {
            client,
            bytes,
            unread_by_guest,
        });
        if let Some(next) = self.queued.pop_front() {
            let id = next.id;
            self.active = Some(next);
            self.push_event(SerialEvent::ClientAccepted { client: id });
        }
        self.settle();
        Ok(())
    }

    /// The guest opens the port's device.
    pub fn guest_open(&mut self) -> Result<(), SerialError> {
        if self.guest_open {
            return Err(SerialError::GuestAlreadyOpen);
        }
        self.guest_open = true;
        self.push_event(SerialEvent::GuestOpened);
        Ok(())
    }

    /// The guest closes the port's device. Writes already queued still flow to the host.
    pub fn guest_close(&mut self) -> Result<(), SerialError> {
        if !self.guest_open {
            return Err(SerialError::GuestNotOpen);
        }
        self.guest_open = false;
        self.guest_blocked = false;
        self.push_event(SerialEvent::GuestClosed);
        Ok(())
    }

    /// The guest writes: takes up to [`PORT_WRITE_MAX`] bytes as one queued write, or nothing
    /// while no host client is connected or the port's queue is full.
    pub fn guest_write(&mut self, bytes: &[u8]) -> Result<GuestWrite, SerialError> {
        if !self.guest_open {
            return Err(SerialError::GuestNotOpen);
        }
        if bytes.is_empty() {
            return Ok(GuestWrite::Accepted(0));
        }
        if !self.guest_writable() {
            if !self.guest_blocked {
                self.guest_blocked = true;
                self.push_event(SerialEvent::GuestBlocked);
            }
            return Ok(GuestWrite::WouldBlock);
        }
        let n = bytes.len().min(PORT_WRITE_MAX);
        self.port_queue.push_back(bytes[..n].to_vec());
        self.port_queue_bytes += n;
        self.settle();
        Ok(GuestWrite::Accepted(n))
    }

    /// The guest reads up to `max` bytes: data from the active client, EOF at once while no host
    /// client is connected, or `WouldBlock` when the connected client has sent nothing.
    pub fn guest_read(&mut self, max: usize) -> Result<GuestRead, SerialError> {
        if !self.guest_open {
            return Err(SerialError::GuestNotOpen);
        }
        let Some(active) = self.active.as_mut() else {
            return Ok(GuestRead::Eof);
        };
        if active.to_guest.is_empty() && max > 0 {
            return Ok(GuestRead::WouldBlock);
        }
        let n = max.min(active.to_guest.len());
        let out: Vec<u8> = active.to_guest.drain(..n).collect();
        self.delivered_to_guest += n as u64;
        Ok(GuestRead::Data(out))
    }

    /// What `poll()` on the guest's device would report (all false while the port is closed).
    pub fn guest_poll(&self) -> GuestPoll {
        if !self.guest_open {
            return GuestPoll::default();
        }
        match &self.active {
            None => GuestPoll {
                readable: true,
                writable: false,
                hangup: true,
            },
            Some(active) => GuestPoll {
                readable: !active.to_guest.is_empty(),
                writable: self.guest_writable(),
                hangup: false,
            },
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<SerialEvent> {
        self.events.pop_front()
    }

    /// Queue depths, clients and counters, for the doctor and the TUI.
    pub fn snapshot(&self) -> SerialSnapshot {
        let clients = self
            .active
            .iter()
            .map(|c| c.snapshot(ClientState::Active))
            .chain(self.queued.iter().map(|c| c.snapshot(ClientState::Queued)))
            .collect();
        SerialSnapshot {
            guest_open: self.guest_open,
            guest_blocked: self.guest_blocked,
            guest_queue_bytes: self.port_queue_bytes,
            guest_queue_writes: self.port_queue.len(),
            active: self.active.as_ref().map(|c| c.id),
            queued: self.queued.iter().map(|c| c.id).collect(),
            clients,
            discarded_total: self.discarded_total,
            discarded_last: self.discarded_last,
            discarded_to_guest_total: self.discarded_to_guest_total,
            delivered_to_host: self.delivered_to_host,
            delivered_to_guest: self.delivered_to_guest,
            refused_total: self.refused_total,
            events_dropped: self.events_dropped,
        }
    }

    /// Whether a guest write would take at least one byte.
    fn guest_writable(&self) -> bool {
        self.guest_open && self.active.is_some() && self.port_queue.len() < PORT_QUEUE_SLOTS
    }

    fn client_mut(&mut self, id: ClientId) -> Result<&mut Client, SerialError> {
        match self.active.as_mut() {
            Some(active) if active.id == id => Ok(active),
            _ => self
                .queued
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or(SerialError::UnknownClient(id)),
        }
    }

    /// QEMU passes queued guest writes to the active client's socket while it has room (partial
    /// writes included), then a blocked guest writer resumes if room appeared.
    fn settle(&mut self) {
        if let Some(active) = self.active.as_mut() {
            while let Some(front) = self.port_queue.front() {
                let room = HOST_SOCKET_BUFFER - active.to_host.len();
                if room == 0 {
                    break;
                }
                let rest = &front[self.port_queue_head..];
                let n = rest.len().min(room);
                active.to_host.extend(&rest[..n]);
                let done = n == rest.len();
                self.port_queue_bytes -= n;
                if done {
                    self.port_queue.pop_front();
                    self.port_queue_head = 0;
                } else {
                    self.port_queue_head += n;
                }
            }
        }
        if self.guest_blocked && self.guest_writable() {
            self.guest_blocked = false;
            self.push_event(SerialEvent::GuestUnblocked);
        }
    }

    fn push_event(&mut self, event: SerialEvent) {
        if self.events.len() >= EVENT_LOG_CAP {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }
}
