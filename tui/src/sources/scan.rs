//! A socket scan refreshed every second: [`guestwire::diag::examine`] (passive: it reads the
//! kernel's socket tables and `/proc`, and never connects) on a background thread, turned into
//! [`SocketRow`]s by the pure [`rows_of`].

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::Duration;

use guestwire::diag::inspect::{PathState, SockEnd, Target};
use guestwire::diag::{DoctorOptions, Report, examine};

use super::{SocketRow, Source, SourceEvent};
use crate::store::QUEUE_HISTORY;

/// How often the sockets are examined.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The targets of `--scan DIR|SOCKET`: the sockets under a directory (two levels deep), or the
/// socket itself.
pub fn targets_of(arg: &str) -> Vec<Target> {
    let p = PathBuf::from(arg);
    if p.is_dir() {
        guestwire::diag::scan::scan(&[p])
    } else {
        vec![Target::unix(p)]
    }
}

fn peers(ends: &[&SockEnd]) -> Vec<String> {
    let mut out: Vec<String> = ends
        .iter()
        .flat_map(|e| e.owners.iter().map(|o| format!("{}/{}", o.pid, o.comm)))
        .collect();
    out.dedup();
    out
}

/// The rows of a report: one per target (its listener) and one per accepted connection.
/// `history` keeps each row's recent receive-queue depths (rows that vanish are forgotten).
pub fn rows_of(report: &Report, history: &mut HashMap<String, VecDeque<u64>>) -> Vec<SocketRow> {
    let mut rows = Vec::new();
    for t in &report.targets {
        let v = &t.view;
        let finding = t.findings.first().map(|f| f.id.name().to_string());
        let state = match (&v.path, &v.listener) {
            (PathState::Missing, _) => "missing".to_string(),
            (PathState::NotASocket { kind }, _) => format!("not socket ({kind})"),
            (PathState::PermissionDenied { .. }, _) => "denied".to_string(),
            (_, Some(l)) => l.sock.state_name().to_string(),
            (_, None) => "no listener".to_string(),
        };
        let (recv_q, send_q) = v.listener.as_ref().map_or((0, 0), |l| {
            (u64::from(l.sock.rqueue), u64::from(l.sock.wqueue))
        });
        let listener: Vec<&SockEnd> = v.listener.iter().collect();
        rows.push(SocketRow {
            path: v.target.shown.clone(),
            state,
            peers: peers(&listener),
            recv_q,
            send_q,
            history: Vec::new(),
            finding,
        });
        for (i, c) in v.connections.iter().enumerate() {
            let mut ends = vec![&c.vmm_end];
            ends.extend(c.client.iter());
            let client_q = c.client.as_ref().map_or(0, |e| u64::from(e.sock.rqueue));
            rows.push(SocketRow {
                path: format!("{} #{}", v.target.shown, i + 1),
                state: c.vmm_end.sock.state_name().to_string(),
                peers: peers(&ends),
                recv_q: u64::from(c.vmm_end.sock.rqueue),
                send_q: client_q,
                history: Vec::new(),
                finding: None,
            });
        }
    }
    history.retain(|k, _| rows.iter().any(|r| &r.path == k));
    for r in &mut rows {
        let h = history.entry(r.path.clone()).or_default();
        if h.len() == QUEUE_HISTORY {
            h.pop_front();
        }
        h.push_back(r.recv_q);
        r.history = h.iter().copied().collect();
    }
    rows
}

/// Examines `targets` every [`REFRESH`] on a thread until the receiver is gone.
fn scan_loop(targets: Vec<Target>, tx: SyncSender<SourceEvent>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = tx.send(SourceEvent::Notice(format!("scan: {e}")));
            return;
        }
    };
    let opts = DoctorOptions {
        targets,
        watch: None,
        probe: None,
        slow_ms: 1000,
    };
    let mut history = HashMap::new();
    loop {
        let event = match rt.block_on(examine(&opts)) {
            Ok(report) => SourceEvent::Sockets(rows_of(&report, &mut history)),
            Err(e) => SourceEvent::Notice(format!("scan: {e}")),
        };
        if tx.send(event).is_err() {
            return;
        }
        std::thread::sleep(REFRESH);
    }
}

/// A socket scan, refreshed every second.
pub struct ScanSource {
    rx: Receiver<SourceEvent>,
    name: String,
}

impl ScanSource {
    /// Starts scanning `targets` (shown as `name`).
    pub fn start(targets: Vec<Target>, name: impl Into<String>) -> Self {
        let (tx, rx) = sync_channel(2);
        std::thread::spawn(move || scan_loop(targets, tx));
        Self {
            rx,
            name: name.into(),
        }
    }
}

impl Source for ScanSource {
    fn poll(&mut self, _clock_ns: u64, max: usize, out: &mut Vec<SourceEvent>) -> bool {
        for _ in 0..max {
            match self.rx.try_recv() {
                Ok(e) => out.push(e),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => {
                    out.push(SourceEvent::End);
                    return false;
                }
            }
        }
        true
    }

    fn label(&self) -> String {
        format!("scan {}", self.name)
    }

    fn live(&self) -> bool {
        true
    }
}
