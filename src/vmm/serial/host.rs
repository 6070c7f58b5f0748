//! The host side of the mock virtio-serial VMM: QEMU's chardev socket server.
//!
//! # One client at a time, over a real socket
//! QEMU listens with a backlog of 1 and accepts the next client only once the accepted one has
//! left; the others wait in the kernel's listen queue, connected but starved, and once that
//! queue is full (backlog + 1 = 2 waiting) a non-blocking `connect()` gets `EAGAIN`
//! (`VMLAB.md`). The mock VMM does exactly the same thing rather than imitating it: it listens
//! with [`LISTEN_BACKLOG`] and accepts only while the model has no active client. So the
//! second and third clients connect and are starved by the kernel itself, and the fourth is
//! refused by the kernel itself with a real `EAGAIN` (what the host client reports as `busy`,
//! seed 003's "Resource temporarily unavailable"). Accepting every client and closing the
//! fourth would show the fourth a successful `connect()` followed by end of file, which no
//! real QEMU does. The cost: waiting clients are invisible until accepted (no `client_queued`
//! event); `ss -x` shows them as QEMU's would be shown.
//!
//! # The data path
//! Each accepted client is a [`HostPort`] of the model. Without stream faults, bytes are copied
//! both ways between the socket and it; with faults, one [`pump`] per direction carries out a
//! [`FaultPlan`] (one plan per connection, shared by both directions) between the socket and
//! the model. End of file from the client, or a fault's close or reset in either direction,
//! ends the connection: the model then discards the data in flight, as QEMU does when a client
//! leaves (QEMU also treats end of file on the socket as the client leaving).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::UnixStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::event::SerialVmmEvent;
use super::port::SharedPort;
use super::streams::HostPort;
use crate::channel::serial::LISTEN_BACKLOG;
use crate::fault::{FaultPlan, FaultStage};
use crate::io::fault_pump::{PumpReport, pump, share};
use crate::io::{BoxStream, Listener};
use crate::wire::Direction;
use crate::wire::protocol::Protocol;

/// The listen backlog of the host socket: QEMU's.
pub const HOST_LISTEN_BACKLOG: u32 = LISTEN_BACKLOG as u32;

/// Bytes copied at a time between a client's socket and the model, each way, when there are no
/// faults: one page, so that little sits in this process between the two. It is also all the
/// model takes of a client's writes ahead of the guest: the client's own socket buffer holds the
/// rest, as under QEMU (a client's unread bytes are charged to the client's socket; measured
/// against a real VM: QEMU holds 180,224 B, the mock 188,416 B).
pub const COPY_CHUNK: usize = 4096;

/// `SO_SNDBUF` asked for on each accepted client socket (the kernel doubles it): two pages. The
/// model already holds the host socket's share of the data in flight
/// ([`crate::channel::serial::HOST_SOCKET_BUFFER`], what QEMU's socket holds); with the kernel's
/// default buffer on top, a client that leaves without reading lost ≈ 256 KiB more than under
/// QEMU (966,656 B against 704,512 B, found by `tests/real_vm_vs_mock.rs`). The kernel's minimum
/// matched QEMU more closely but let only one or two writes be in flight, which cut pipelined
/// pings to 69 % of direct.
pub const KERNEL_SEND_BUFFER: usize = 8 * 1024;

/// Pause after a failed `accept()` (e.g. out of descriptors) before the next one.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What the host side runs with.
pub(super) struct HostSide {
    pub port: SharedPort,
    pub listener: Listener,
    /// Stream faults, applied to every connection.
    pub faults: crate::fault::LiveFaults,
    pub protocol: Protocol,
    pub seed: u64,
    /// The `stale_client`: the VMM's own connection, never read, held while the VMM runs.
    pub stale: Option<UnixStream>,
    pub cancel: CancellationToken,
    /// Cancelled when the first real client's connection ends (`--once`).
    pub first_done: CancellationToken,
    /// Waited for before the first accept (the guest's head start under `guest_before_host`).
    pub gate: Option<tokio::task::JoinHandle<()>>,
}

/// Accepts clients one at a time and drives each until it leaves, until cancelled.
pub(super) async fn serve(mut h: HostSide) {
    if let Some(gate) = h.gate.take() {
        tokio::select! {
            _ = gate => {}
            () = h.cancel.cancelled() => return,
        }
    }
    let mut stale_id = None;
    loop {
        tokio::select! {
            () = h.port.wait_until(|m| m.snapshot().active.is_none()) => {}
            () = h.cancel.cancelled() => return,
        }
        let accepted = tokio::select! {
            a = h.listener.accept() => a,
            () = h.cancel.cancelled() => return,
        };
        let conn = match accepted {
            Ok(c) => c,
            Err(e) => {
                h.port.emit(SerialVmmEvent::Error {
                    message: format!("accept failed: {e}"),
                });
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let (_, port) = h.port.connect_host(&conn.peer);
        let Some(port) = port else {
            // No client is active, so the model accepts: unreachable in practice.
            continue;
        };
        let id = port.client().get();
        if h.stale.is_some() && stale_id.is_none() {
            stale_id = Some(id);
            h.port.emit(SerialVmmEvent::StaleClient { client: id });
        }
        let plan = FaultPlan::new(h.faults.get(), h.protocol.clone(), h.seed.wrapping_add(id));
        tokio::select! {
            ended = drive(conn.stream, port, plan, &h.protocol) => {
                if let Some((to_guest, to_host)) = ended {
                    h.port.emit(SerialVmmEvent::ConnectionEnded {
                        client: id,
                        to_guest: end_of(&to_guest),
                        to_host: end_of(&to_host),
                    });
                }
            }
            () = h.cancel.cancelled() => return,
        }
        if stale_id != Some(id) {
            h.first_done.cancel();
        }
    }
}

fn end_of(r: &Option<PumpReport>) -> String {
    match r {
        Some(r) => format!(
            "{:?} after {} bytes read, {} written, {} dropped",
            r.end, r.bytes_read, r.bytes_written, r.bytes_dropped
        ),
        None => "cut short".to_string(),
    }
}

/// Carries one client's connection until either direction ends. With faults, returns how far
/// each direction got (`None` for the one cut short).
async fn drive(
    socket: BoxStream,
    port: HostPort,
    plan: FaultPlan,
    protocol: &Protocol,
) -> Option<(Option<PumpReport>, Option<PumpReport>)> {
    let (sr, sw) = tokio::io::split(socket);
    let (hr, hw) = tokio::io::split(port);
    if plan.is_passthrough() {
        tokio::select! {
            _ = copy(sr, hw) => {}
            _ = copy(hr, sw) => {}
        }
        return None;
    }
    let to_guest = FaultStage::for_plan(&plan, Direction::ToGuest, protocol, false);
    let to_host = FaultStage::for_plan(&plan, Direction::ToHost, protocol, false);
    let plan = share(plan);
    let started = Instant::now();
    let up = pump(sr, hw, plan.clone(), to_guest, started);
    let down = pump(hr, sw, plan, to_host, started);
    tokio::select! {
        r = up => Some((Some(r), None)),
        r = down => Some((None, Some(r))),
    }
}

async fn copy<R, W>(reader: R, mut writer: W) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(COPY_CHUNK, reader);
    tokio::io::copy_buf(&mut reader, &mut writer).await
}
