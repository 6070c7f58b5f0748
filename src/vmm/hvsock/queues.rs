//! Each connection's side in the adapter: the two queues of bytes the muxer released ([`Pipe`],
//! one per direction, with the end they reached), the handshake's outcome ([`Handshake`]), the
//! wakers of the tasks waiting on them, and the byte counts ([`ConnIo`]).

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::channel::vsock::Origin;
use crate::io::BoxStream;

pub(super) fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}

pub(super) fn park(slot: &mut Option<Waker>, cx: &Context<'_>) {
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
    pub(super) len: usize,
    end: Option<PipeEnd>,
    reader: Option<Waker>,
}

impl Pipe {
    pub(super) fn push(&mut self, bytes: Vec<u8>) {
        if self.end.is_some() || bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.chunks.push_back(Bytes::from(bytes));
        wake(&mut self.reader);
    }

    /// Ends the queue; a reset overrides an earlier orderly end and drops what is queued.
    pub(super) fn finish(&mut self, end: PipeEnd) {
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

    pub(super) fn poll_pop(&mut self, max: usize, cx: &Context<'_>) -> Poll<Popped> {
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

    pub(super) fn poll_reset(&mut self, cx: &Context<'_>) -> Poll<()> {
        if self.end == Some(PipeEnd::Reset) {
            return Poll::Ready(());
        }
        park(&mut self.reader, cx);
        Poll::Pending
    }

    pub(super) fn wake(&mut self) {
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
    pub(super) origin: Origin,
    pub(super) guest_port: Option<u32>,
    pub(super) host_port: Option<u32>,
    pub(super) handshake: Handshake,
    pub(super) host_waiter: Option<Waker>,
    pub(super) to_host: Pipe,
    pub(super) to_guest: Pipe,
    /// The host side's feeder, waiting for room.
    pub(super) host_in: Option<Waker>,
    /// The guest side's feeder, waiting for room.
    pub(super) guest_in: Option<Waker>,
    pub(super) host_open: bool,
    pub(super) guest_open: bool,
    pub(super) host_closed: bool,
    pub(super) guest_closed: bool,
    pub(super) established: bool,
    pub(super) first_close: Option<&'static str>,
    pub(super) bytes_to_guest: u64,
    pub(super) bytes_to_host: u64,
    /// Guest-initiated: the guest's end of the stream until the host side answers.
    pub(super) pending_guest: Option<BoxStream>,
    pub(super) connect_waiter: Option<oneshot::Sender<Result<(), String>>>,
}

impl ConnIo {
    pub(super) fn new(origin: Origin, handshake: Handshake) -> Self {
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

    pub(super) fn wake_all(&mut self) {
        wake(&mut self.host_waiter);
        wake(&mut self.host_in);
        wake(&mut self.guest_in);
        self.to_host.wake();
        self.to_guest.wake();
    }
}
