//! The interposing proxy: accepts host clients on one endpoint, connects each to the upstream
//! endpoint (the VMM's socket, or an agent), and copies both directions through
//! [`pump_observed`], so that faults apply and every forwarded chunk reaches the
//! [`TapSink`]s (the live frame log, the capture writer, the TUI) in order.
//!
//! Byte-exact and in order: each direction is one pump that writes a chunk before it reads the
//! next, so a slow side slows the other and memory stays at one chunk per direction
//! ([`PUMP_CHUNK`](crate::io::fault_pump::PUMP_CHUNK)). When a direction ends, its
//! [`PumpReport`] says how many bytes got through and why it stopped. A reset (a fault, or an IO
//! error) drops both directions at once; an end of stream is passed on as a half-close and the
//! other direction runs on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::fault::{FaultPlan, FaultSpec, FaultStage};
use crate::io::fault_pump::{PumpEnd, PumpReport, SharedPlan, pump_observed, share};
use crate::io::{Endpoint, ListenError, Listener, connect};
use crate::wire::Direction;
use crate::wire::hybrid::Flavour;
use crate::wire::protocol::Protocol;

/// How the tap runs.
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// Where host clients connect (`unix:`, or `hvsock:PATH:PORT` to answer the handshake as a VMM).
    pub listen: Endpoint,
    /// Where each connection is relayed (`unix:`, `hvsock:PATH:PORT`, `tcp:`).
    pub upstream: Endpoint,
    /// The handshake flavour when `listen` is `hvsock:`.
    pub flavour: Flavour,
    /// Faults applied to every connection (each connection has its own plan and counters).
    pub faults: Vec<FaultSpec>,
    /// The protocol, for frame faults (`None`: raw; frame faults then never fire).
    pub protocol: Option<Protocol>,
    /// Seed of each connection's fault plan (connection `n` uses `seed + n`).
    pub seed: u64,
    /// Deadline for connecting upstream.
    pub connect_deadline: Duration,
    /// Stop accepting after this many connections (then wait for them to finish).
    pub max_connections: Option<u64>,
}

/// Something that happened on the tap, in order per connection and direction.
#[derive(Debug, Clone)]
pub enum TapEvent {
    /// A host client connected and the upstream connection is up.
    Connected {
        /// Connection number (1, 2, …).
        conn: u64,
        /// The host client, as the listener describes it.
        peer: String,
        /// Time since the tap started.
        at: Duration,
    },
    /// Connecting upstream failed; the host client was closed.
    UpstreamFailed {
        /// Connection number.
        conn: u64,
        /// Why.
        error: String,
        /// Time since the tap started.
        at: Duration,
    },
    /// Bytes were forwarded.
    Data {
        /// Connection number.
        conn: u64,
        /// `ToGuest`: host client → upstream; `ToHost`: upstream → host client.
        direction: Direction,
        /// The bytes, as written to the far side.
        bytes: bytes::Bytes,
        /// Time since the tap started.
        at: Duration,
    },
    /// One direction ended.
    Ended {
        /// Connection number.
        conn: u64,
        /// Which direction.
        direction: Direction,
        /// How far it got and why it stopped.
        report: PumpReport,
        /// Time since the tap started.
        at: Duration,
    },
}

/// Receives the tap's events (called from the pumps' tasks: keep it quick, never block long).
pub trait TapSink: Send + Sync {
    /// One event.
    fn on_event(&self, event: &TapEvent);
}

/// What a tap run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapSummary {
    /// Host connections accepted.
    pub connections: u64,
    /// Connections whose upstream could not be reached.
    pub upstream_failures: u64,
    /// Bytes forwarded host → upstream.
    pub bytes_to_guest: u64,
    /// Bytes forwarded upstream → host.
    pub bytes_to_host: u64,
}

/// Errors that stop the tap as a whole.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The listen endpoint could not be bound.
    #[error("cannot listen on {endpoint}: {source}")]
    Listen {
        /// The endpoint.
        endpoint: String,
        /// Why.
        source: ListenError,
    },
}

/// Binds the listen endpoint.
pub async fn bind(config: &TapConfig) -> Result<Listener, TapError> {
    let r = match &config.listen {
        Endpoint::Hvsock { path, port } => {
            Listener::bind_hvsock(path, &[*port], config.flavour).await
        }
        other => Listener::bind(other).await,
    };
    r.map_err(|source| TapError::Listen {
        endpoint: config.listen.to_string(),
        source,
    })
}

/// Runs the tap on a bound listener until `shutdown` completes (or `max_connections` have been
/// served), then waits for open connections to end if `drain`, else drops them.
pub async fn run<F>(
    config: TapConfig,
    mut listener: Listener,
    sink: Arc<dyn TapSink>,
    shutdown: F,
) -> TapSummary
where
    F: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let config = Arc::new(config);
    let mut tasks: JoinSet<ConnSummary> = JoinSet::new();
    let mut summary = TapSummary::default();
    let mut next = 0u64;
    tokio::pin!(shutdown);
    loop {
        if config.max_connections.is_some_and(|m| next >= m) {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let Ok(client) = accepted else { break };
                next += 1;
                let (config, sink) = (config.clone(), sink.clone());
                tasks.spawn(relay(next, client, config, sink, started));
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => add(&mut summary, done),
            () = &mut shutdown => {
                tasks.abort_all();
                break;
            }
        }
    }
    drop(listener);
    while let Some(done) = tasks.join_next().await {
        add(&mut summary, done);
    }
    summary
}

/// What one connection did.
#[derive(Debug, Default)]
struct ConnSummary {
    upstream_failed: bool,
    to_guest: u64,
    to_host: u64,
}

fn add(summary: &mut TapSummary, done: Result<ConnSummary, tokio::task::JoinError>) {
    summary.connections += 1;
    if let Ok(c) = done {
        summary.upstream_failures += u64::from(c.upstream_failed);
        summary.bytes_to_guest += c.to_guest;
        summary.bytes_to_host += c.to_host;
    }
}

async fn relay(
    conn: u64,
    client: crate::io::Connected,
    config: Arc<TapConfig>,
    sink: Arc<dyn TapSink>,
    started: Instant,
) -> ConnSummary {
    let upstream = match connect(&config.upstream, config.connect_deadline).await {
        Ok(s) => s,
        Err(e) => {
            sink.on_event(&TapEvent::UpstreamFailed {
                conn,
                error: e.to_string(),
                at: started.elapsed(),
            });
            return ConnSummary {
                upstream_failed: true,
                ..ConnSummary::default()
            };
        }
    };
    sink.on_event(&TapEvent::Connected {
        conn,
        peer: client.peer.clone(),
        at: started.elapsed(),
    });
    let protocol = config.protocol.clone().unwrap_or(Protocol::Raw);
    let plan = share(FaultPlan::new(
        config.faults.clone(),
        protocol.clone(),
        config.seed.wrapping_add(conn),
    ));
    let (client_r, client_w) = tokio::io::split(client.stream);
    let (up_r, up_w) = tokio::io::split(upstream);
    let (to_guest, to_host) = {
        let direction = |d: Direction| {
            let p = plan
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // A listener that answers the handshake itself has already consumed it.
            let handshake =
                d == Direction::ToGuest && !matches!(config.listen, Endpoint::Hvsock { .. });
            FaultStage::for_plan(&p, d, &protocol, handshake)
        };
        (direction(Direction::ToGuest), direction(Direction::ToHost))
    };
    let (sent_g, sent_h) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let a = one_way(
        conn, client_r, up_w, &plan, to_guest, &sink, started, &sent_g,
    );
    let b = one_way(
        conn, up_r, client_w, &plan, to_host, &sink, started, &sent_h,
    );
    tokio::pin!(a, b);
    // A reset or an IO error on one side ends both: the other pump is dropped (with its
    // halves of the two sockets) and reported as aborted where it stood.
    let aborted = |direction: Direction, sent: &AtomicU64| {
        let n = sent.load(Ordering::Relaxed);
        let report = PumpReport {
            bytes_read: n,
            bytes_written: n,
            bytes_dropped: 0,
            end: PumpEnd::Aborted,
        };
        sink.on_event(&TapEvent::Ended {
            conn,
            direction,
            report,
            at: started.elapsed(),
        });
    };
    tokio::select! {
        ra = &mut a => {
            if ends_both(&ra) {
                aborted(Direction::ToHost, &sent_h);
            } else {
                b.await;
            }
        }
        rb = &mut b => {
            if ends_both(&rb) {
                aborted(Direction::ToGuest, &sent_g);
            } else {
                a.await;
            }
        }
    }
    ConnSummary {
        upstream_failed: false,
        to_guest: sent_g.load(Ordering::Relaxed),
        to_host: sent_h.load(Ordering::Relaxed),
    }
}

fn ends_both(r: &PumpReport) -> bool {
    matches!(
        r.end,
        PumpEnd::FaultReset | PumpEnd::ReadError(_) | PumpEnd::WriteError(_)
    )
}

#[allow(clippy::too_many_arguments)] // one call site each way; a struct would only rename them
async fn one_way<R, W>(
    conn: u64,
    reader: R,
    writer: W,
    plan: &SharedPlan,
    stage: FaultStage,
    sink: &Arc<dyn TapSink>,
    started: Instant,
    sent: &AtomicU64,
) -> PumpReport
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let direction = stage.direction();
    let report = pump_observed(reader, writer, plan.clone(), stage, started, |bytes| {
        sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        sink.on_event(&TapEvent::Data {
            conn,
            direction,
            bytes: bytes::Bytes::copy_from_slice(bytes),
            at: started.elapsed(),
        });
    })
    .await;
    sink.on_event(&TapEvent::Ended {
        conn,
        direction,
        report: report.clone(),
        at: started.elapsed(),
    });
    report
}
