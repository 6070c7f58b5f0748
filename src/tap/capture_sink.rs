//! `guestwire tap --capture OUT`: a [`TapSink`] that records every relayed connection into a
//! [`CaptureWriter`] (pcap or pcapng of LINKTYPE_VSOCK records, `docs/captures.md`), and
//! [`Fanout`], which hands each event to several sinks (the live log and the capture).
//!
//! Per connection: a connect record by the host when the upstream connection is up, one payload
//! record per forwarded chunk in each direction (the bytes as written to the far side, so faults
//! show as they were applied), and a disconnect by the sending side when a direction ends — a
//! reset for [`PumpEnd::FaultReset`], [`PumpEnd::Aborted`] and read errors, a shutdown
//! otherwise. A reset ends both directions, so nothing more is recorded for that connection.
//!
//! A failing capture (disk full, a closed pipe) never stops the relay: the first error is
//! reported once on stderr and later events are dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use super::proxy::{TapEvent, TapSink};
use crate::capture::vsockmon::{DEFAULT_GUEST_CID, DEFAULT_SERIAL_PORT};
use crate::capture::{CaptureWriter, Close, Flow, Side, WriteError};
use crate::io::Endpoint;
use crate::io::fault_pump::PumpEnd;

/// Which guest address a tap's captures record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestAddr {
    /// The guest's CID.
    pub cid: u64,
    /// The guest's port.
    pub port: u32,
}

impl GuestAddr {
    /// The guest address for a tap between `listen` and `upstream`: the port (and, for kernel
    /// vsock, the CID) of an `hvsock:`/`vsock:` upstream, else of an `hvsock:` listener, else
    /// `port` (default [`DEFAULT_SERIAL_PORT`]); the CID is `cid` (default
    /// [`DEFAULT_GUEST_CID`]) unless the upstream names one.
    pub fn for_tap(
        listen: &Endpoint,
        upstream: &Endpoint,
        cid: Option<u64>,
        port: Option<u32>,
    ) -> Self {
        let cid_or = cid.unwrap_or(DEFAULT_GUEST_CID);
        match (upstream, listen) {
            (Endpoint::Vsock { cid, port }, _) => Self {
                cid: u64::from(*cid),
                port: *port,
            },
            (Endpoint::Hvsock { port, .. }, _) | (_, Endpoint::Hvsock { port, .. }) => Self {
                cid: cid_or,
                port: *port,
            },
            _ => Self {
                cid: cid_or,
                port: port.unwrap_or(DEFAULT_SERIAL_PORT),
            },
        }
    }
}

/// Per-connection recording state.
#[derive(Debug)]
struct ConnState {
    flow: Flow,
    /// Directions ended so far.
    ended: u8,
    /// A reset was recorded: the connection is over in the capture.
    reset: bool,
}

/// Records the tap's connections into a capture.
#[derive(Debug)]
pub struct CaptureSink {
    writer: CaptureWriter,
    guest: GuestAddr,
    /// Wall-clock time of the tap's start (events carry the time since then).
    base: SystemTime,
    conns: Mutex<HashMap<u64, ConnState>>,
    failed: AtomicBool,
}

impl CaptureSink {
    /// A sink writing into `writer`, recording the guest as `guest`; event times are added to
    /// `base` (the wall-clock time the tap started).
    pub fn new(writer: CaptureWriter, guest: GuestAddr, base: SystemTime) -> Self {
        Self {
            writer,
            guest,
            base,
            conns: Mutex::new(HashMap::new()),
            failed: AtomicBool::new(false),
        }
    }

    /// The writer (for its statistics).
    pub fn writer(&self) -> &CaptureWriter {
        &self.writer
    }

    /// Whether a write failed (reported once on stderr; later events are dropped).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    fn check(&self, r: Result<(), WriteError>) {
        if let Err(e) = r
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            eprintln!(
                "guestwire: capture write failed, no longer recording (relay continues): {e}"
            );
        }
    }
}

/// How a direction that ended with `end` is recorded.
pub fn close_of(end: &PumpEnd) -> Close {
    match end {
        PumpEnd::FaultReset | PumpEnd::Aborted | PumpEnd::ReadError(_) => Close::Reset,
        PumpEnd::Eof | PumpEnd::FaultClose | PumpEnd::WriteError(_) => Close::Shutdown,
    }
}

impl TapSink for CaptureSink {
    fn on_event(&self, event: &TapEvent) {
        if self.failed() {
            return;
        }
        let mut conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            TapEvent::Connected { conn, at, .. } => {
                let flow = Flow::vsock(
                    self.writer.next_host_port(),
                    self.guest.cid,
                    self.guest.port,
                );
                conns.insert(
                    *conn,
                    ConnState {
                        flow,
                        ended: 0,
                        reset: false,
                    },
                );
                self.check(self.writer.connect(self.base + *at, &flow, Side::Host));
            }
            TapEvent::UpstreamFailed { .. } => {}
            TapEvent::Data {
                conn,
                direction,
                bytes,
                at,
            } => {
                if let Some(state) = conns.get(conn).filter(|s| !s.reset) {
                    let flow = state.flow;
                    self.check(
                        self.writer
                            .payload(self.base + *at, &flow, *direction, bytes),
                    );
                }
            }
            TapEvent::Ended {
                conn,
                direction,
                report,
                at,
            } => {
                let Some(state) = conns.get_mut(conn) else {
                    return;
                };
                state.ended += 1;
                let done = state.ended >= 2;
                if !state.reset {
                    let close = close_of(&report.end);
                    state.reset = close == Close::Reset;
                    let flow = state.flow;
                    let by = Side::sender(*direction);
                    self.check(self.writer.disconnect(self.base + *at, &flow, by, close));
                }
                if done {
                    conns.remove(conn);
                }
            }
        }
    }
}

/// Hands every event to each of its sinks, in order.
pub struct Fanout(pub Vec<Arc<dyn TapSink>>);

impl TapSink for Fanout {
    fn on_event(&self, event: &TapEvent) {
        for sink in &self.0 {
            sink.on_event(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_address_comes_from_the_vsock_end_else_the_flags() {
        let unix = |p: &str| Endpoint::Unix(p.into());
        let hv = Endpoint::Hvsock {
            path: "/v.sock".into(),
            port: 52,
        };
        assert_eq!(
            GuestAddr::for_tap(&unix("/a"), &hv, Some(7), Some(9)),
            GuestAddr { cid: 7, port: 52 }
        );
        assert_eq!(
            GuestAddr::for_tap(&hv, &unix("/b"), None, None),
            GuestAddr { cid: 3, port: 52 }
        );
        assert_eq!(
            GuestAddr::for_tap(&unix("/a"), &unix("/b"), None, Some(2)),
            GuestAddr { cid: 3, port: 2 }
        );
        assert_eq!(
            GuestAddr::for_tap(&unix("/a"), &unix("/b"), None, None),
            GuestAddr { cid: 3, port: 1 }
        );
    }

    #[test]
    fn resets_are_the_ends_that_drop_both_directions() {
        assert_eq!(close_of(&PumpEnd::FaultReset), Close::Reset);
        assert_eq!(close_of(&PumpEnd::Aborted), Close::Reset);
        assert_eq!(
            close_of(&PumpEnd::ReadError(std::io::ErrorKind::ConnectionReset)),
            Close::Reset
        );
        assert_eq!(close_of(&PumpEnd::Eof), Close::Shutdown);
        assert_eq!(close_of(&PumpEnd::FaultClose), Close::Shutdown);
    }
}
