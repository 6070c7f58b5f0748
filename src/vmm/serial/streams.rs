//! The async streams over a [`SharedPort`]: [`GuestPort`], the guest's end, and [`HostPort`],
//! QEMU's end of one host client's socket. Each poll is one call into the model (see
//! [`super::port`] for how waiting tasks are woken).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::port::SharedPort;
use crate::channel::serial::ClientId;

/// The guest's end of the port, as an agent sees `/dev/virtio-ports/NAME`: reads return end of
/// file at once while no host client is connected; writes take nothing (the write waits) while
/// none is, and wait for room when the port's queue is full. Dropping it closes the port.
#[derive(Debug)]
pub struct GuestPort {
    shared: SharedPort,
    session: u64,
}

impl GuestPort {
    pub(super) fn new(shared: SharedPort, session: u64) -> Self {
        Self { shared, session }
    }

    /// This open's number (for [`SharedPort::close_guest`]).
    pub fn session(&self) -> u64 {
        self.session
    }
}

impl Drop for GuestPort {
    fn drop(&mut self) {
        self.shared.close_guest(self.session);
    }
}

impl AsyncRead for GuestPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.shared
            .poll_guest_read(cx, Some(self.session), false, buf)
    }
}

impl AsyncWrite for GuestPort {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.shared.poll_guest_write(cx, Some(self.session), buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A character device has no half-close.
        Poll::Ready(Ok(()))
    }
}

/// QEMU's end of one host client's socket: reads give what the guest wrote (end of stream once
/// the client is gone), writes go towards the guest. Shutting it down or dropping it is the
/// client's disconnect, as QEMU treats end of file on the socket.
#[derive(Debug)]
pub struct HostPort {
    shared: SharedPort,
    id: ClientId,
}

impl HostPort {
    pub(super) fn new(shared: SharedPort, id: ClientId) -> Self {
        Self { shared, id }
    }

    /// The client's id in the model.
    pub fn client(&self) -> ClientId {
        self.id
    }
}

impl Drop for HostPort {
    fn drop(&mut self) {
        self.shared.disconnect_host(self.id);
    }
}

impl AsyncRead for HostPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.shared.poll_host_read(cx, self.id, buf)
    }
}

impl AsyncWrite for HostPort {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.shared.poll_host_write(cx, self.id, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shared.disconnect_host(self.id);
        Poll::Ready(Ok(()))
    }
}
