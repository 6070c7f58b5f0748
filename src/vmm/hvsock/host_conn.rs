//! The host side: accepting host connections on the socket, the task of each host connection
//! (its two directions through the fault plan, or copied straight when there are no stream
//! faults), the guest-initiated connections to `<socket>_<port>`, and the muxer's timer.
//!
//! Fault placement: the `to_guest` stage sits between the host socket and the muxer's `CONNECT`
//! parser and frames the stream after a handshake line (`handshake: true`), so
//! `malformed:split_handshake` and `malformed:no_newline` hit the host's command as the VMM
//! reads it; the `to_host` stage sees only guest data (the `OK` line is written before it).

use std::future::poll_fn;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use super::events::HvsockEvent;
use super::queues::ConnIo;
use super::state::{Shared, now, stopped};
use super::streams::{HostWriter, MuxWriter, PauseWatch, PipeReader, copy, plan_specs};
use crate::channel::vsock::ConnId;
use crate::fault::{FaultPlan, FaultStage};
use crate::io::fault_pump::{PumpEnd, PumpReport, pump, share};
use crate::io::{BoxStream, Listener};
use crate::wire::Direction;
use crate::wire::hybrid::CONN_REQUEST_TIMEOUT_MS;

/// Pause after a failed `accept` (e.g. out of descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts host connections until the VMM stops; the socket file goes with the listener.
pub async fn accept_loop(shared: Arc<Shared>, mut listener: Listener) {
    let mut stop = shared.stop.subscribe();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            accepted = listener.accept() => match accepted {
                Ok(c) => {
                    let conn = {
                        let mut core = shared.lock();
                        let conn = core.mux.host_connect(now());
                        core.conns.insert(conn, ConnIo::host());
                        shared.emit(HvsockEvent::HostConnected { conn: conn.0 });
                        shared.drain(&mut core);
                        conn
                    };
                    shared.timer.notify_one();
                    shared.spawn(run_host_conn(shared.clone(), conn, c.stream, true));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
}

/// Calls the muxer's `handle_timeout` at each deadline it asks for (the 2000 ms request
/// timeout, the shutdown timeout), until the VMM stops.
pub async fn timer_loop(shared: Arc<Shared>) {
    let mut stop = shared.stop.subscribe();
    loop {
        let next = shared.lock().mux.poll_timeout();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stopped(&mut stop) => return,
            _ = shared.timer.notified() => {}
            _ = sleep => {
                let mut core = shared.lock();
                core.mux.handle_timeout(now());
                shared.drain(&mut core);
            }
        }
    }
}

/// Tells the core when a host task ends, however it ends.
struct HostGuard {
    shared: Arc<Shared>,
    conn: ConnId,
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        self.shared.host_gone(self.conn);
    }
}

fn report(end: PumpEnd) -> PumpReport {
    PumpReport {
        bytes_read: 0,
        bytes_written: 0,
        bytes_dropped: 0,
        end,
    }
}

/// One host connection: host socket → muxer and muxer → host socket, through the fault plan.
/// `handshake`: the host sends `CONNECT` first (host-initiated); otherwise the stream is data
/// from the start (the host side of a guest-initiated connection).
pub async fn run_host_conn(shared: Arc<Shared>, conn: ConnId, stream: BoxStream, handshake: bool) {
    let _guard = HostGuard {
        shared: shared.clone(),
        conn,
    };
    let started = tokio::time::Instant::now();
    let protocol = shared.fault_protocol.clone();
    let (specs, pauses) = plan_specs(&shared.live_faults.get());
    let plan = FaultPlan::new(
        specs,
        protocol.clone(),
        shared.config.seed.wrapping_add(conn.0),
    );
    let passthrough = plan.is_passthrough();
    let guest_stage = FaultStage::for_plan(&plan, Direction::ToGuest, &protocol, handshake);
    let host_stage = FaultStage::for_plan(&plan, Direction::ToHost, &protocol, false);
    let plan = share(plan);
    let watch = PauseWatch::new(&plan, pauses);
    let (rd, wr) = tokio::io::split(stream);
    let mux_writer = MuxWriter::new(shared.clone(), conn, watch.clone());
    let host_writer = HostWriter::new(shared.clone(), wr, watch);
    let guest_plan = plan.clone();
    let to_guest = async move {
        if passthrough {
            copy(rd, mux_writer).await
        } else {
            pump(rd, mux_writer, guest_plan, guest_stage, started).await
        }
    };
    let host_shared = shared.clone();
    let to_host = async move {
        let mut w = host_writer;
        if handshake {
            match poll_fn(|cx| host_shared.poll_handshake(conn, cx)).await {
                Some(line) => {
                    if let Err(e) = w.write_all(&line).await {
                        return report(PumpEnd::WriteError(e.kind()));
                    }
                }
                None => {
                    // Refused: closed without a word, as the real VMMs do.
                    let _ = w.shutdown().await;
                    return report(PumpEnd::Eof);
                }
            }
        }
        let r = PipeReader::new(host_shared.clone(), conn);
        if passthrough {
            copy(r, w).await
        } else {
            pump(r, w, plan, host_stage, started).await
        }
    };
    let mut stop = shared.stop.subscribe();
    tokio::pin!(to_guest, to_host);
    let mut to_guest_done = false;
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            r = &mut to_guest, if !to_guest_done => {
                to_guest_done = true;
                if ended_by_fault(&shared, conn, &r, "to_guest") {
                    return;
                }
            }
            r = &mut to_host => {
                ended_by_fault(&shared, conn, &r, "to_host");
                return;
            }
        }
    }
}

/// Reports a fault that ended one direction; `true` for a reset, which drops both at once.
fn ended_by_fault(shared: &Arc<Shared>, conn: ConnId, r: &PumpReport, dir: &'static str) -> bool {
    match r.end {
        PumpEnd::FaultReset => {
            shared.fault_reset(conn, dir);
            true
        }
        PumpEnd::FaultClose => {
            shared.emit(HvsockEvent::Fault {
                conn: conn.0,
                action: "close",
                direction: dir,
            });
            false
        }
        _ => false,
    }
}

/// `<socket><suffix>`, e.g. `/run/v.sock_5000`.
pub fn host_path(socket: &Path, suffix: &str) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The muxer asked to connect to `<socket><suffix>` for a guest-initiated connection.
pub async fn connect_to_host(shared: Arc<Shared>, conn: ConnId, suffix: String) {
    let path = host_path(&shared.config.socket, &suffix);
    let deadline = Duration::from_millis(CONN_REQUEST_TIMEOUT_MS);
    let connected = tokio::time::timeout(deadline, UnixStream::connect(&path)).await;
    let mut core = shared.lock();
    match connected {
        Ok(Ok(stream)) => {
            let Some(guest) = shared.host_side_connected(&mut core, conn) else {
                return;
            };
            shared.spawn(super::guest_side::run_guest_end(
                shared.clone(),
                conn,
                guest,
            ));
            shared.spawn(run_host_conn(shared.clone(), conn, Box::new(stream), false));
        }
        _ => {
            let _ = core.mux.host_side_refused(conn);
            shared.drain(&mut core);
        }
    }
}
