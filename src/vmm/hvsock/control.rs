//! The VMM-wide controls on the core: pausing and resuming (the API's and `vm_pause`'s),
//! guest-initiated connections, and the snapshot.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::events::{
    ConnectionSnapshot, HvsockEvent, HvsockSnapshot, RefusalSnapshot, origin_name, refusal_kind,
    state_name,
};
use super::queues::{ConnIo, Handshake};
use super::state::{Core, Shared, now};
use crate::channel::vsock::{ConnId, Origin};
use crate::io::BoxStream;

/// First guest-side port of guest-initiated connections (the Linux ephemeral range's start).
const FIRST_EPHEMERAL_PORT: u32 = 49152;

impl Shared {
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
