//! A live tap: the proxy of `guestwire tap` ([`guestwire::tap::proxy`]) runs on a background
//! runtime, its forwarded bytes are decoded by a [`FrameLog`] into items for the store, and
//! (with a capture path) every byte is also written to the capture file. The UI's channel is
//! bounded: when the UI falls behind, items for it are dropped and counted — the capture file
//! still gets every byte.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use guestwire::capture::{CaptureItem, CaptureWriter, ItemKind};
use guestwire::tap::proxy::{self, TapConfig, TapEvent, TapSink};
use guestwire::tap::{CaptureSink, Fanout, FrameLog, GuestAddr, LoggedFrame};

use super::{Source, SourceEvent};
use crate::store::RAW_KEEP;

/// Items queued for the UI at most.
pub const UI_QUEUE: usize = 65_536;

/// How long starting the tap may take (binding the listener).
const START_DEADLINE: Duration = Duration::from_secs(10);

/// How long stopping waits for open relays to finish.
const STOP_DEADLINE: Duration = Duration::from_secs(3);

/// Tells the starter the tap's thread has ended, however it ends.
struct DoneGuard(SyncSender<()>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.0.try_send(());
    }
}

/// Decodes the tap's bytes for the UI.
struct UiSink {
    tx: SyncSender<SourceEvent>,
    log: Mutex<FrameLog>,
    base_ns: u64,
    dropped: Arc<AtomicU64>,
}

impl UiSink {
    fn send(&self, e: SourceEvent) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(e) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn frames(&self, frames: Vec<LoggedFrame>) {
        for f in frames {
            let time_ns = self
                .base_ns
                .saturating_add(u64::try_from(f.at.as_nanos()).unwrap_or(u64::MAX));
            let kind = match f.item {
                Ok(frame) => ItemKind::Frame {
                    direction: f.direction,
                    frame,
                },
                Err(error) => ItemKind::Error {
                    direction: f.direction,
                    error,
                },
            };
            self.send(SourceEvent::Item(CaptureItem {
                time_ns,
                conn: f.conn,
                kind,
            }));
        }
    }
}

impl TapSink for UiSink {
    fn on_event(&self, event: &TapEvent) {
        let Ok(mut log) = self.log.lock() else {
            return;
        };
        match event {
            TapEvent::Data {
                conn,
                direction,
                bytes,
                at,
            } => {
                let frames = log.push(*conn, *direction, bytes, *at);
                drop(log);
                self.frames(frames);
            }
            TapEvent::Ended {
                conn,
                direction,
                at,
                ..
            } => {
                let frames = log.finish(*conn, *direction, *at);
                drop(log);
                self.frames(frames);
            }
            TapEvent::Connected { conn, peer, .. } => {
                drop(log);
                self.send(SourceEvent::Notice(format!(
                    "#{conn} connected from {peer}"
                )));
            }
            TapEvent::UpstreamFailed { conn, error, .. } => {
                drop(log);
                self.send(SourceEvent::Notice(format!(
                    "#{conn} upstream failed: {error}"
                )));
            }
        }
    }
}

/// A running tap.
pub struct TapSource {
    rx: Receiver<SourceEvent>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Receiver<()>,
    dropped: Arc<AtomicU64>,
    name: String,
}

impl TapSource {
    /// Binds the listener and starts relaying; with `capture`, every byte is also written there.
    pub fn start(config: TapConfig, capture: Option<&Path>) -> Result<Self, String> {
        let base = SystemTime::now();
        let base_ns = base
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let (tx, rx) = sync_channel(UI_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let ui: Arc<dyn TapSink> = Arc::new(UiSink {
            tx,
            log: Mutex::new(FrameLog::new(config.protocol.clone()).keep_raw(RAW_KEEP)),
            base_ns,
            dropped: dropped.clone(),
        });
        let sink: Arc<dyn TapSink> = match capture {
            Some(path) => {
                let writer = CaptureWriter::create(path)
                    .map_err(|e| format!("--capture {}: {e}", path.display()))?;
                let guest = GuestAddr::for_tap(&config.listen, &config.upstream, None, None);
                let cap = Arc::new(CaptureSink::new(writer, guest, base));
                Arc::new(Fanout(vec![ui, cap]))
            }
            None => ui,
        };
        let name = format!("tap {} → {}", config.listen, config.upstream);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = sync_channel::<Result<(), String>>(1);
        let (done_tx, done) = sync_channel::<()>(1);
        std::thread::spawn(move || {
            let _done = DoneGuard(done_tx);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match proxy::bind(&config).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let shutdown = async {
                    let _ = stop_rx.await;
                };
                proxy::run(config, listener, sink, shutdown).await;
            });
        });
        match ready_rx.recv_timeout(START_DEADLINE) {
            Ok(Ok(())) => Ok(Self {
                rx,
                stop: Some(stop_tx),
                done,
                dropped,
                name,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the tap did not start in time".into()),
        }
    }

    /// Items the UI could not keep up with (the capture file has them).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops accepting, waits for the relays to finish, and closes the capture.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // Open connections may hold the relay: wait a bounded time, then leave it to the
        // process's exit.
        let _ = self.done.recv_timeout(STOP_DEADLINE);
    }
}

impl Drop for TapSource {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Source for TapSource {
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
        self.name.clone()
    }

    fn live(&self) -> bool {
        true
    }

    fn dropped(&self) -> u64 {
        TapSource::dropped(self)
    }
}
