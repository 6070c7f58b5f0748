//! [`ChApiServer`]: the Tokio adapter that serves [`ChApi`] on a Unix socket.
//!
//! HTTP/1.1 with keep-alive (many requests per connection, pipelining allowed), framed by the
//! project's own [`HttpDecoder`]/[`HttpEncoder`]: a body over [`ServerConfig::max_body`] is
//! refused with 413 as soon as its `Content-Length` is seen, before any of it is read, and the
//! connection is closed; `Expect: 100-continue` is answered. Requests are handled one at a time
//! across all connections (the core sits behind one lock), as the real VMM's single API thread
//! handles them. Responses carry `Server: Cloud Hypervisor API` and `Content-Type:
//! application/json`, as the real ones do.
//!
//! Every wait has a deadline: an idle keep-alive connection is closed after
//! [`ServerConfig::idle_timeout`], a request must arrive whole within
//! [`ServerConfig::request_timeout`] of its first byte, a hook must answer within
//! [`ServerConfig::hook_timeout`], snapshot file IO must finish within
//! [`ServerConfig::io_timeout`], and a reply must be written within
//! [`ServerConfig::write_timeout`]. The one exception is the #816 wedge, whose point is a
//! request that is never answered: such a connection is held (not read, not written, no timer,
//! no spinning) until the server stops, and no new connection is accepted (the real server's
//! API thread is stuck, so later clients connect into the listen backlog and hear nothing).
//!
//! The server stops when asked ([`ChApiHandle::stop`], e.g. on Ctrl-C) or after answering
//! `vmm.shutdown`; it then stops accepting, gives connections a short grace period to finish
//! their replies, and removes its socket file.

mod effects;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{ChApi, ChApiConfig, EffectFailure, Response, Step};
use super::hooks::{ChApiHooks, RequestRecord};
use super::routes::Request;
use super::state::VmState;
use crate::io::stream::BoxStream;
use crate::io::{Connected, ListenError, Listener};
use crate::wire::codec::{Decoder, Encoder};
use crate::wire::error::WireError;
use crate::wire::http::{
    DEFAULT_MAX_HEAD, DEFAULT_MAX_HEADERS, HttpDecoder, HttpEncoder, HttpKind, HttpLimits,
    HttpMessage,
};

/// The `Server` header of every response, as the real server sends it.
pub const SERVER_HEADER: &str = "Cloud Hypervisor API";

/// How long connections get to finish their replies once the server stops.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// The most effect rounds one request may take (restore takes two: read, then notify).
const MAX_EFFECT_ROUNDS: usize = 4;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The Unix socket to serve on (a stale socket file there is replaced, a live one refused).
    pub api_socket: PathBuf,
    /// How the API behaves.
    pub api: ChApiConfig,
    /// The largest request body accepted (default 1 MiB); larger ones get 413 unread.
    pub max_body: u64,
    /// How long a keep-alive connection may sit with no request (default 300 s: longer than the
    /// idle timeouts of common clients' pools, e.g. Go's 90 s, so that the client, as with the
    /// real server, is the one that closes an idle connection).
    pub idle_timeout: Duration,
    /// How long a request may take to arrive, from its first byte (default 10 s).
    pub request_timeout: Duration,
    /// How long writing a reply may take (default 10 s).
    pub write_timeout: Duration,
    /// How long a hook may take to answer an event (default 10 s).
    pub hook_timeout: Duration,
    /// How long writing or reading a snapshot may take (default 30 s).
    pub io_timeout: Duration,
    /// How many connections may be open at once (default 64); more get 503 and are closed.
    pub max_connections: usize,
}

impl ServerConfig {
    /// The defaults, serving on `api_socket`, with `vmm.ping` reporting this process's id.
    pub fn new(api_socket: impl Into<PathBuf>) -> Self {
        Self {
            api_socket: api_socket.into(),
            api: ChApiConfig {
                pid: std::process::id(),
                ..ChApiConfig::default()
            },
            max_body: 1024 * 1024,
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            hook_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            max_connections: 64,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket could not be bound.
    #[error(transparent)]
    Listen(#[from] ListenError),
}

/// Why the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerExit {
    /// It answered `vmm.shutdown`.
    VmmShutdown,
    /// It was asked to stop ([`ChApiHandle::stop`]).
    Stopped,
    /// Accepting connections failed.
    AcceptFailed,
}

struct Shared {
    core: Mutex<ChApi>,
    hooks: Arc<dyn ChApiHooks>,
    config: ServerConfig,
    stop: CancellationToken,
    /// Cancelled when the #816 wedge strikes: from then on nothing is accepted, as the real
    /// server's stuck API thread accepts nothing (clients' connects land in the backlog).
    wedged: CancellationToken,
    vmm_shutdown: AtomicBool,
}

impl Shared {
    fn new(config: ServerConfig, hooks: Arc<dyn ChApiHooks>) -> Arc<Self> {
        Arc::new(Self {
            core: Mutex::new(ChApi::new(config.api.clone())),
            hooks,
            stop: CancellationToken::new(),
            wedged: CancellationToken::new(),
            vmm_shutdown: AtomicBool::new(false),
            config,
        })
    }
}

/// The mock Cloud Hypervisor API server.
#[derive(Debug, Clone, Copy)]
pub struct ChApiServer;

impl ChApiServer {
    /// Binds `config.api_socket` and serves in a background task until stopped or until
    /// `vmm.shutdown`. `hooks` hear of every event and request.
    pub async fn start(
        config: ServerConfig,
        hooks: Arc<dyn ChApiHooks>,
    ) -> Result<ChApiHandle, ServerError> {
        let listener = Listener::bind_unix(&config.api_socket).await?;
        let shared = Shared::new(config, hooks);
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(ChApiHandle {
            shared,
            task: Some(task),
            exit: None,
        })
    }
}

/// A running server.
pub struct ChApiHandle {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<ServerExit>>,
    exit: Option<ServerExit>,
}

impl std::fmt::Debug for ChApiHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChApiHandle")
            .field("socket", &self.shared.config.api_socket)
            .finish_non_exhaustive()
    }
}

impl ChApiHandle {
    /// The socket the server listens on.
    pub fn socket(&self) -> &Path {
        &self.shared.config.api_socket
    }

    /// Asks the server to stop (idempotent); [`wait`](Self::wait) for it.
    pub fn stop(&self) {
        self.shared.stop.cancel();
    }

    /// The VM's state now (`None`: no VM). Waits for a request in progress to finish.
    pub async fn state(&self) -> Option<VmState> {
        self.shared.core.lock().await.state()
    }

    /// Whether the #816 wedge has struck.
    pub async fn is_wedged(&self) -> bool {
        self.shared.core.lock().await.is_wedged()
    }

    /// Waits until the server has stopped and removed its socket (cancel-safe: may be called
    /// again after a `select!` dropped it, and after the server stopped).
    pub async fn wait(&mut self) -> ServerExit {
        if let Some(exit) = self.exit {
            return exit;
        }
        let exit = match self.task.as_mut() {
            Some(task) => task.await.unwrap_or(ServerExit::Stopped),
            None => ServerExit::Stopped,
        };
        self.task = None;
        self.exit = Some(exit);
        exit
    }
}

async fn accept_loop(mut listener: Listener, shared: Arc<Shared>) -> ServerExit {
    let mut conns = JoinSet::new();
    let mut accepting = true;
    let exit = loop {
        tokio::select! {
            () = shared.stop.cancelled() => break ServerExit::Stopped,
            () = shared.wedged.cancelled(), if accepting => accepting = false,
            accepted = listener.accept(), if accepting => match accepted {
                Ok(conn) if conns.len() >= shared.config.max_connections => {
                    conns.spawn(refuse_busy(conn, shared.config.write_timeout));
                }
                Ok(conn) => {
                    conns.spawn(serve_connection(conn, shared.clone()));
                }
                Err(_) => break ServerExit::AcceptFailed,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    };
    drop(listener);
    shared.stop.cancel();
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.shutdown().await;
    }
    if shared.vmm_shutdown.load(Ordering::SeqCst) {
        ServerExit::VmmShutdown
    } else {
        exit
    }
}

/// micro_http's answer when its connection table is full.
async fn refuse_busy(conn: Connected, write_timeout: Duration) {
    let mut stream = conn.stream;
    let body = serde_json::to_vec(&["Too many open connections"]).unwrap_or_default();
    let response = Response {
        status: 503,
        headers: Vec::new(),
        body,
        stop_server: false,
    };
    let _ = write_response(&mut stream, &response, true, write_timeout).await;
}

/// What a connection does after a request.
enum Flow {
    KeepAlive,
    Close,
    Hold,
}

async fn serve_connection(conn: Connected, shared: Arc<Shared>) {
    let Connected {
        mut stream, peer, ..
    } = conn;
    let cfg = &shared.config;
    let limits = HttpLimits {
        max_head: DEFAULT_MAX_HEAD,
        max_headers: DEFAULT_MAX_HEADERS,
        max_body: cfg.max_body,
    };
    let mut decoder = HttpDecoder::with_limits(HttpKind::Request, limits);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    // The decoder's offset where the last request ended: while it has not moved, the buffer
    // starts at a request's first byte.
    let mut boundary = decoder.offset();
    let mut request_started: Option<Instant> = None;
    loop {
        if decoder.offset() == boundary && wants_continue(&buf) {
            let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
            if write_all(&mut stream, interim, cfg.write_timeout)
                .await
                .is_err()
            {
                return;
            }
        }
        match decoder.decode(&mut buf) {
            Some(Ok(frame)) => {
                boundary = decoder.offset();
                request_started = None;
                match handle_message(&mut stream, frame.message, &shared, &peer).await {
                    Flow::KeepAlive => continue,
                    Flow::Close => return,
                    Flow::Hold => {
                        shared.stop.cancelled().await;
                        return;
                    }
                }
            }
            Some(Err(e)) => {
                bad_stream(&mut stream, &e, &shared, &peer).await;
                return;
            }
            None => {}
        }
        let idle = decoder.offset() == boundary && buf.is_empty();
        let deadline = if idle {
            Instant::now() + cfg.idle_timeout
        } else {
            *request_started.get_or_insert_with(Instant::now) + cfg.request_timeout
        };
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => r,
            () = shared.stop.cancelled() => return,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// Whether the buffer starts with a complete head that asks for `100 Continue` and whose body
/// has not all arrived.
fn wants_continue(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; DEFAULT_MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = req.parse(buf) else {
        return false;
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let expects = header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    expects && length.is_some_and(|len| buf.len() < head_len.saturating_add(len))
}

async fn bad_stream(stream: &mut BoxStream, error: &WireError, shared: &Shared, peer: &str) {
    let started = Instant::now();
    let response = match error {
        WireError::Oversize { .. } => shared.core.lock().await.too_large(shared.config.max_body),
        other => Response {
            status: 400,
            headers: Vec::new(),
            body: serde_json::to_vec(&[other.to_string()]).unwrap_or_default(),
            stop_server: false,
        },
    };
    let _ = write_response(stream, &response, true, shared.config.write_timeout).await;
    shared.hooks.on_request(&RequestRecord {
        method: "-".into(),
        path: "-".into(),
        status: Some(response.status),
        peer: peer.to_string(),
        elapsed: started.elapsed(),
    });
}

async fn handle_message(
    stream: &mut BoxStream,
    message: HttpMessage,
    shared: &Shared,
    peer: &str,
) -> Flow {
    let HttpMessage::Request {
        method,
        path,
        version,
        headers,
        body,
    } = message
    else {
        return Flow::Close;
    };
    let connection = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .map(|(_, v)| v.to_ascii_lowercase());
    let close = match connection.as_deref() {
        Some(v) if v.contains("close") => true,
        Some(v) if v.contains("keep-alive") => false,
        _ => version == 0,
    };
    let started = Instant::now();
    let request = Request::new(&method, &path, &body);
    let reply = {
        let mut core = shared.core.lock().await;
        run_request(&mut core, &request, shared).await
    };
    let record = |status| RequestRecord {
        method: method.clone(),
        path: path.clone(),
        status,
        peer: peer.to_string(),
        elapsed: started.elapsed(),
    };
    let Some(response) = reply else {
        shared.wedged.cancel();
        shared.hooks.on_request(&record(None));
        return Flow::Hold;
    };
    let close = close || response.stop_server;
    let written = write_response(stream, &response, close, shared.config.write_timeout).await;
    shared.hooks.on_request(&record(Some(response.status)));
    if response.stop_server {
        shared.vmm_shutdown.store(true, Ordering::SeqCst);
        shared.stop.cancel();
    }
    if close || written.is_err() {
        Flow::Close
    } else {
        Flow::KeepAlive
    }
}

/// Runs a request through the core, carrying out its effects; `None` means hold.
async fn run_request(core: &mut ChApi, request: &Request<'_>, shared: &Shared) -> Option<Response> {
    let mut step = core.handle(request);
    for _ in 0..MAX_EFFECT_ROUNDS {
        match step {
            Step::Reply(response) => return Some(response),
            Step::Hold => return None,
            Step::Effects(effects) => {
                let result = effects::perform(effects, shared).await;
                step = core.finish(result);
            }
        }
    }
    match step {
        Step::Reply(response) => Some(response),
        Step::Hold => None,
        Step::Effects(_) => {
            let _ = core.finish(Err(EffectFailure::new("too many effect rounds")));
            Some(Response {
                status: 500,
                headers: Vec::new(),
                body: serde_json::to_vec(&["Internal Server Error"]).unwrap_or_default(),
                stop_server: false,
            })
        }
    }
}

async fn write_all(stream: &mut BoxStream, bytes: &[u8], timeout: Duration) -> io::Result<()> {
    match tokio::time::timeout(timeout, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not take the reply in time",
        )),
    }
}

/// Writes `response` with the real server's headers; with `close`, says so and shuts the
/// write side down after.
async fn write_response(
    stream: &mut BoxStream,
    response: &Response,
    close: bool,
    timeout: Duration,
) -> io::Result<()> {
    let mut message = HttpMessage::response(response.status, response.body.clone())
        .with_header("Server", SERVER_HEADER)
        .with_header("Connection", if close { "close" } else { "keep-alive" })
        .with_header("Content-Type", "application/json");
    for (name, value) in &response.headers {
        message = message.with_header(name, value);
    }
    let mut out = BytesMut::new();
    HttpEncoder::new()
        .encode(&message, &mut out)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    write_all(stream, &out, timeout).await?;
    if close {
        let _ = stream.shutdown().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
