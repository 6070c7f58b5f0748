//! The in-process guest of the mock virtio-serial VMM: the mock agent of a protocol
//! ([`crate::guest::serve_connection`]) on a [`GuestPort`](super::streams::GuestPort), opened and
//! reopened as a real agent opens `/dev/virtio-ports/NAME`.
//!
//! On a real port, reads return end of file while no host client is connected, so an agent's
//! loop ends whenever the host leaves (or before any host came). What happens next depends on
//! the agent, and the two loop shapes of the mock agent behave as the two kinds of agent do:
//!
//! - **robust**: the agent reopens the device. Here the port is closed, and reopened as soon as
//!   a host client is accepted (a real robust agent polls or retries; waiting for the host
//!   instead of spinning is the same from the host's side), so the agent survives host
//!   disconnects and starts again with a fresh `AgentReady`.
//! - **naive** (seed 003): after its end-of-file spins the loop gives up and the agent stays
//!   down, as the LimiQuantix agent exits on end of file ("Connection closed by host"), until
//!   someone restarts it: [`SerialVmm::restart_guest`](super::SerialVmm::restart_guest)
//!   (`SIGUSR1` to `guestwire vmm serial`), the `systemctl restart` of seed 003's fix.
//!
//! A restart request also stops an agent that is running, and starts it again at once.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::event::SerialVmmEvent;
use super::port::SharedPort;
use crate::guest::{ConnectionReport, GuestConfig, GuestError, LoopMode, serve_connection};
use crate::wire::protocol::Protocol;

/// What the in-process guest runs.
pub(super) struct MockGuest {
    pub port: SharedPort,
    pub protocol: Protocol,
    pub config: Arc<GuestConfig>,
    pub restart: Arc<Notify>,
    pub cancel: CancellationToken,
    /// Cancelled when the agent's first run has ended (for `guest_before_host`'s gate).
    pub first_run_done: CancellationToken,
}

fn describe(result: &Result<ConnectionReport, GuestError>) -> String {
    match result {
        Ok(r) => format!(
            "its loop ended after {} requests, {} events, {} bad frames",
            r.requests, r.events, r.bad_frames
        ),
        Err(e) => format!("its loop failed: {e}"),
    }
}

/// Runs the mock agent until cancelled, reopening or waiting for a restart as its loop shape
/// says (see the module documentation).
pub(super) async fn run(g: MockGuest) {
    let mut start_now = true;
    loop {
        if !start_now {
            let robust = g.config.loop_mode == LoopMode::Robust;
            tokio::select! {
                () = g.port.wait_until(|m| m.snapshot().active.is_some()), if robust => {}
                () = g.restart.notified() => g.port.emit(SerialVmmEvent::GuestRestarting),
                () = g.cancel.cancelled() => return,
            }
        }
        start_now = false;
        let stream = match g.port.open_guest() {
            Ok(s) => s,
            Err(e) => {
                g.port.emit(SerialVmmEvent::Error {
                    message: format!("the guest cannot open the port: {e}"),
                });
                return;
            }
        };
        let session = stream.session();
        tokio::select! {
            result = serve_connection(&g.protocol, Box::new(stream), g.config.clone()) => {
                g.port.emit(SerialVmmEvent::GuestExited { reason: describe(&result) });
            }
            () = g.restart.notified() => {
                g.port.emit(SerialVmmEvent::GuestRestarting);
                start_now = true;
            }
            () = g.cancel.cancelled() => {
                g.port.close_guest(session);
                return;
            }
        }
        // The agent's tasks may still hold the stream: close this open for them.
        g.port.close_guest(session);
        g.first_run_done.cancel();
    }
}
