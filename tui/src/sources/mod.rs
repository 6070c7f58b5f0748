//! Where events come from, behind one trait so tests can feed the store: a capture file played
//! back ([`capture::CaptureSource`]), and (later) a socket scan and a live tap.

pub mod capture;
pub mod mock;
pub mod scan;
pub mod tap;

use guestwire::capture::CaptureItem;

/// One socket of a scan, as the Sockets view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketRow {
    /// The socket's path.
    pub path: String,
    /// Its state (listening, connected, …).
    pub state: String,
    /// Peers as `pid/command`.
    pub peers: Vec<String>,
    /// Receive queue bytes.
    pub recv_q: u64,
    /// Send queue bytes.
    pub send_q: u64,
    /// Recent receive-queue depths, oldest first.
    pub history: Vec<u64>,
    /// The doctor's worst finding, if any (its id).
    pub finding: Option<String>,
}

/// What a source yields.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    /// A decoded frame, an error or a connection event.
    Item(CaptureItem),
    /// A new sample of the sockets.
    Sockets(Vec<SocketRow>),
    /// Something to tell the user (e.g. a read error).
    Notice(String),
    /// The source has nothing more.
    End,
}

/// A source of events.
pub trait Source {
    /// Moves into `out` at most `max` events that are due when the playback clock reads
    /// `clock_ns` (capture nanoseconds after the first record; live sources ignore it).
    /// Returns false once the source has ended (after yielding [`SourceEvent::End`]).
    fn poll(&mut self, clock_ns: u64, max: usize, out: &mut Vec<SourceEvent>) -> bool;

    /// A short name for the status line.
    fn label(&self) -> String;

    /// Whether events arrive on their own (a tap, a scan): pausing then freezes nothing but
    /// the playback of a file.
    fn live(&self) -> bool {
        false
    }

    /// Events the source had to drop because the UI fell behind (its queue to the UI is
    /// bounded); 0 for sources that never drop.
    fn dropped(&self) -> u64 {
        0
    }

    /// Replaces the faults new connections get (`--fault` specs); only a tap driving a mock
    /// VMM has faults to set.
    fn set_faults(&mut self, specs: &[String]) -> Result<(), String> {
        let _ = specs;
        Err(
            "faults can be toggled only when the tap drives a mock VMM (--mock serial|hvsock)"
                .into(),
        )
    }
}
