//! A deliberately fragile quantix agent (QTX1 framing) for the live-fuzzing tests: it answers
//! pings, and on one specific malformed input it "crashes" (closes its listening socket, so
//! connects are refused, as when a real agent process dies) or hangs (stops serving, so
//! connects queue and nothing answers, as a real agent stuck in a loop). Its bug is the one a
//! naive agent has: it trusts the length field.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use guestwire::wire::quantix::{AgentMessage, Payload, PongResponse, QuantixEncoder};
use prost::Message;

/// The QTX1 magic.
const MAGIC: &[u8; 4] = b"QTX\x01";
/// The framing's maximum, over which the fragile agent "crashes".
const MAX: u32 = 16 * 1024 * 1024;
/// How long a connection's read may wait (bounds every connection thread).
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the accept loop sleeps between polls; with [`MAX_POLLS`], bounds the loop to 120 s.
const POLL: Duration = Duration::from_millis(5);
const MAX_POLLS: u32 = 24_000;

/// What breaks the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// A length field over 16 MiB kills it (it would allocate that much and abort).
    DiesOnOversizeLength,
    /// A zero-length frame makes it spin: it stops serving everyone.
    HangsOnZeroLength,
}

/// The running agent; stopped (and its accept thread joined) on drop.
pub struct Fragile {
    stop: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Fragile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Fragile {
    /// Starts the agent on a Unix socket at `path` (a stale socket file there is replaced).
    pub fn start(path: &Path, weakness: Weakness) -> Self {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).expect("bind fragile agent");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let broken = Arc::new(AtomicBool::new(false));
        let (s, b) = (stop.clone(), broken.clone());
        let thread = std::thread::spawn(move || accept_loop(listener, weakness, &s, &b));
        Self {
            stop,
            broken,
            thread: Some(thread),
        }
    }

    /// Whether its weakness has been hit.
    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }
}

fn accept_loop(
    listener: UnixListener,
    weakness: Weakness,
    stop: &Arc<AtomicBool>,
    broken: &Arc<AtomicBool>,
) {
    for _ in 0..MAX_POLLS {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if broken.load(Ordering::SeqCst) {
            match weakness {
                // Dropping the listener closes the socket: connects are refused from now on.
                Weakness::DiesOnOversizeLength => return,
                // Keep the socket, serve nobody: connects queue in the backlog.
                Weakness::HangsOnZeroLength => {
                    std::thread::sleep(POLL);
                    continue;
                }
            }
        }
        match listener.accept() {
            Ok((conn, _)) => {
                let b = broken.clone();
                std::thread::spawn(move || serve(conn, weakness, &b));
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn serve(mut conn: UnixStream, weakness: Weakness, broken: &Arc<AtomicBool>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
    loop {
        if broken.load(Ordering::SeqCst) {
            if weakness == Weakness::HangsOnZeroLength {
                // Hung: take what comes, answer nothing, until the peer gives up (or 10 s).
                let mut sink = Vec::new();
                let _ = (&mut conn).take(1 << 20).read_to_end(&mut sink);
            }
            return;
        }
        let mut head = [0u8; 8];
        if conn.read_exact(&mut head).is_err() || &head[..4] != MAGIC {
            return;
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        match (weakness, len) {
            (Weakness::DiesOnOversizeLength, l) if l > MAX => {
                broken.store(true, Ordering::SeqCst);
                return;
            }
            (Weakness::HangsOnZeroLength, 0) => {
                broken.store(true, Ordering::SeqCst);
                return;
            }
            (_, l) if l > MAX => return,
            _ => {}
        }
        let mut payload = vec![0u8; len as usize];
        if conn.read_exact(&mut payload).is_err() {
            return;
        }
        let Ok(msg) = AgentMessage::decode(&payload[..]) else {
            continue;
        };
        if let Some(Payload::Ping(ping)) = msg.payload {
            let pong = AgentMessage {
                message_id: msg.message_id,
                timestamp: None,
                payload: Some(Payload::Pong(PongResponse {
                    sequence: ping.sequence,
                    version: "fragile-0.1".into(),
                    uptime_seconds: 1,
                })),
            };
            let Ok(bytes) = QuantixEncoder::new().to_bytes(&pong) else {
                return;
            };
            if conn.write_all(&bytes).is_err() {
                return;
            }
        }
    }
}
