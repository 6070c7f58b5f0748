//! Listening on an [`Endpoint`] and accepting connections, for the mock guest, the mock VMM and
//! the tap.
//!
//! A Unix listener cleans up after crashed runs without ever harming a live one: a socket file at
//! the path is removed first only when a probe connection is refused (nothing listens: a stale
//! file, as QEMU and qemu-ga leave behind); a live socket is `AddrInUse`, and a path that is not a
//! socket is never touched. The listener removes its own socket file on drop, if it is still the
//! same file. `stdio` and `pty:` carry exactly one connection; `vsock:` binds with tokio-vsock.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use tokio::net::{TcpListener, UnixListener, UnixSocket, UnixStream};
use tokio_vsock::{VsockAddr, VsockListener};

use super::endpoint::Endpoint;
use super::hvsock::{VmmHandshake, handshake_vmm};
use super::pty::{Pty, PtyError};
use super::serial_port::SerialPortListener;
use super::stream::Connected;
use crate::wire::hybrid::{CONN_REQUEST_TIMEOUT_MS, Flavour, LocalPortAllocator};

/// The `listen()` backlog of [`Listener::bind_unix`] (mio's, which tokio's `UnixListener::bind`
/// uses).
pub const DEFAULT_UNIX_BACKLOG: u32 = 1024;

/// Why a listener could not be set up, or a connection not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Something is already listening on the address.
    #[error("{address} is in use: something is listening on it already")]
    AddrInUse {
        /// The socket path or `host:port`.
        address: String,
    },
    /// The path exists and is not a socket; it is left alone.
    #[error("{path} exists and is not a socket; not removing it")]
    NotASocket {
        /// The path.
        path: String,
    },
    /// No permission to bind.
    #[error("permission denied binding {path}")]
    PermissionDenied {
        /// The path or `host:port`.
        path: String,
    },
    /// The directory the socket should go in does not exist.
    #[error("cannot bind {path}: its directory does not exist")]
    NoSuchDirectory {
        /// The path.
        path: String,
    },
    /// The pseudo-terminal could not be set up.
    #[error(transparent)]
    Pty(#[from] PtyError),
    /// This kind of endpoint cannot be listened on by this function.
    #[error("cannot listen on {endpoint}: {reason}")]
    Unsupported {
        /// The endpoint address.
        endpoint: String,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// `stdio` and `pty:` carry one connection, and it was accepted already.
    #[error("{endpoint} carries a single connection, which was accepted already")]
    Exhausted {
        /// The endpoint address.
        endpoint: String,
    },
    /// Any other OS error.
    #[error("listening on {endpoint}: {source}")]
    Io {
        /// The endpoint address.
        endpoint: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ListenError {
    /// The error's kind as a stable snake_case name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AddrInUse { .. } => "addr_in_use",
            Self::NotASocket { .. } => "not_a_socket",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::NoSuchDirectory { .. } => "no_such_directory",
            Self::Pty(e) => e.kind(),
            Self::Unsupported { .. } => "unsupported",
            Self::Exhausted { .. } => "exhausted",
            Self::Io { .. } => "io",
        }
    }
}

/// A Unix socket file this process created, removed on drop if it is still the same file.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// Takes ownership of the socket file now at `path` (recognised later by device and inode).
    pub fn claim(path: &Path) -> io::Result<Self> {
        let md = std::fs::symlink_metadata(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            dev: md.dev(),
            ino: md.ino(),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|md| {
            md.file_type().is_socket() && md.dev() == self.dev && md.ino() == self.ino
        });
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[derive(Debug)]
enum Inner {
    Unix {
        listener: UnixListener,
        _file: SocketFile,
    },
    Hvsock {
        listener: UnixListener,
        _file: SocketFile,
        ports: Vec<u32>,
        flavour: Flavour,
        local_ports: LocalPortAllocator,
        refused: u64,
    },
    Tcp(TcpListener),
    Vsock(VsockListener),
    Stdio {
        taken: bool,
    },
    Pty(Pty),
    SerialPort(SerialPortListener),
}

/// A bound endpoint that accepts connections.
#[derive(Debug)]
pub struct Listener {
    inner: Inner,
    endpoint: Endpoint,
    /// `SO_SNDBUF` for each accepted Unix connection, if set.
    send_buffer: Option<usize>,
}

fn io_err(endpoint: &Endpoint, source: io::Error) -> ListenError {
    ListenError::Io {
        endpoint: endpoint.to_string(),
        source,
    }
}

fn classify_bind_error(endpoint: &Endpoint, address: String, source: io::Error) -> ListenError {
    match source.kind() {
        io::ErrorKind::AddrInUse => ListenError::AddrInUse { address },
        io::ErrorKind::PermissionDenied => ListenError::PermissionDenied { path: address },
        io::ErrorKind::NotFound => ListenError::NoSuchDirectory { path: address },
        _ if source.raw_os_error() == Some(Errno::ENOTDIR as i32) => {
            ListenError::NoSuchDirectory { path: address }
        }
        _ => io_err(endpoint, source),
    }
}

/// Clears the way for binding a Unix socket at `path`: removes a stale socket file, refuses a live
/// one and anything that is not a socket.
async fn clear_stale_socket(endpoint: &Endpoint, path: &Path) -> Result<(), ListenError> {
    let shown = path.display().to_string();
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(classify_bind_error(endpoint, shown, e)),
    };
    if !md.file_type().is_socket() {
        return Err(ListenError::NotASocket { path: shown });
    }
    // Unix connect never waits: it succeeds, is refused, or finds the backlog full (EAGAIN).
    match UnixStream::connect(path).await {
        Ok(_live) => Err(ListenError::AddrInUse { address: shown }),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(ListenError::AddrInUse { address: shown })
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(classify_bind_error(endpoint, shown, e)),
            }
        }
        Err(e) => Err(classify_bind_error(endpoint, shown, e)),
    }
}

impl Listener {
    /// Binds `endpoint`. Must be called from within a Tokio runtime.
    ///
    /// `unix:` removes a stale socket file first (see the module documentation); `tcp:` with
    /// port 0 picks a free port, which [`endpoint`](Self::endpoint) then shows; `pty:` creates the
    /// pseudo-terminal and its link; `stdio` offers standard input and output as one connection.
    /// `serial:PATH` serves the guest end of a virtio-serial port, one host session per
    /// [`accept`](Self::accept) (see [`SerialPortListener`]).
    /// `hvsock:PATH:PORT` listens on PATH as a Firecracker-flavoured VMM serving guest port PORT
    /// (see [`bind_hvsock`](Self::bind_hvsock) for other flavours and several ports).
    pub async fn bind(endpoint: &Endpoint) -> Result<Self, ListenError> {
        match endpoint {
            Endpoint::Unix(path) => Self::bind_unix(path).await,
            Endpoint::Hvsock { path, port } => {
                Self::bind_hvsock(path, &[*port], Flavour::Firecracker).await
            }
            Endpoint::Tcp { host, port } => {
                let listener = TcpListener::bind((host.as_str(), *port))
                    .await
                    .map_err(|e| classify_bind_error(endpoint, endpoint.to_string(), e))?;
                let local = listener.local_addr().map_err(|e| io_err(endpoint, e))?;
                Ok(Self {
                    send_buffer: None,
                    inner: Inner::Tcp(listener),
                    endpoint: Endpoint::Tcp {
                        host: local.ip().to_string(),
                        port: local.port(),
                    },
                })
            }
            Endpoint::Vsock { cid, port } => {
                let listener = VsockListener::bind(VsockAddr::new(*cid, *port))
                    .map_err(|e| classify_bind_error(endpoint, endpoint.to_string(), e))?;
                let local = listener.local_addr().map_err(|e| io_err(endpoint, e))?;
                Ok(Self {
                    send_buffer: None,
                    inner: Inner::Vsock(listener),
                    endpoint: Endpoint::Vsock {
                        cid: local.cid(),
                        port: local.port(),
                    },
                })
            }
            Endpoint::Pty(link) => Ok(Self {
                send_buffer: None,
                inner: Inner::Pty(Pty::open(link)?),
                endpoint: endpoint.clone(),
            }),
            Endpoint::SerialPort(path) => Ok(Self {
                send_buffer: None,
                inner: Inner::SerialPort(
                    SerialPortListener::new(path).map_err(|e| io_err(endpoint, e))?,
                ),
                endpoint: endpoint.clone(),
            }),
            Endpoint::Stdio => Ok(Self {
                send_buffer: None,
                inner: Inner::Stdio { taken: false },
                endpoint: Endpoint::Stdio,
            }),
        }
    }

    /// Binds a Unix stream socket at `path`, removing a stale socket file first.
    ///
    /// The hook for `hvsock:` on the VMM side: bind here, then answer the handshake on each
    /// accepted stream.
    pub async fn bind_unix(path: &Path) -> Result<Self, ListenError> {
        Self::bind_unix_with_backlog(path, DEFAULT_UNIX_BACKLOG).await
    }

    /// [`bind_unix`](Self::bind_unix) with a chosen `listen()` backlog. Linux lets `backlog + 1`
    /// connections wait to be accepted and refuses further non-blocking connects with `EAGAIN`:
    /// the mock VMM listens with QEMU's backlog of 1 so that clients queue and are refused as
    /// under QEMU.
    pub async fn bind_unix_with_backlog(path: &Path, backlog: u32) -> Result<Self, ListenError> {
        let endpoint = Endpoint::Unix(path.to_path_buf());
        let shown = path.display().to_string();
        clear_stale_socket(&endpoint, path).await?;
        let socket = UnixSocket::new_stream().map_err(|e| io_err(&endpoint, e))?;
        socket.bind(path).map_err(|e| {
            if e.kind() == io::ErrorKind::AddrInUse && !is_socket(path) {
                // Created between our look and our bind: still not ours to touch.
                ListenError::NotASocket {
                    path: shown.clone(),
                }
            } else {
                classify_bind_error(&endpoint, shown.clone(), e)
            }
        })?;
        let file = SocketFile::claim(path).map_err(|e| io_err(&endpoint, e))?;
        // On error, dropping `file` removes the socket file just created.
        let listener = socket.listen(backlog).map_err(|e| io_err(&endpoint, e))?;
        Ok(Self {
            send_buffer: None,
            inner: Inner::Unix {
                listener,
                _file: file,
            },
            endpoint,
        })
    }

    /// Binds a Unix socket at `path` and answers the hybrid-vsock handshake on each accepted
    /// connection as a VMM of `flavour` would, for the guest `ports` given: [`accept`](Self::accept)
    /// returns only connections whose `CONNECT` named one of them (the others are closed without a
    /// word after at most [`CONN_REQUEST_TIMEOUT_MS`], as the real VMMs do).
    pub async fn bind_hvsock(
        path: &Path,
        ports: &[u32],
        flavour: Flavour,
    ) -> Result<Self, ListenError> {
        let unix = Self::bind_unix(path).await?;
        let Inner::Unix { listener, _file } = unix.inner else {
            return Err(io_err(
                &unix.endpoint,
                io::Error::other("bind_unix gave a non-Unix listener"),
            ));
        };
        Ok(Self {
            send_buffer: None,
            inner: Inner::Hvsock {
                listener,
                _file,
                ports: ports.to_vec(),
                flavour,
                local_ports: LocalPortAllocator::new(),
                refused: 0,
            },
            endpoint: Endpoint::Hvsock {
                path: path.to_path_buf(),
                port: ports.first().copied().unwrap_or(0),
            },
        })
    }

    /// Sets `SO_SNDBUF` on every Unix connection accepted from now on (other endpoints ignore
    /// it). The mock virtio-serial VMM keeps the kernel's buffer at its minimum because its model
    /// already holds the host socket's share of the data in flight.
    pub fn set_send_buffer(&mut self, bytes: usize) {
        self.send_buffer = Some(bytes);
    }

    /// How many hybrid-vsock connections were closed at the handshake (bad command, unserved port).
    pub fn refused_handshakes(&self) -> u64 {
        match &self.inner {
            Inner::Hvsock { refused, .. } => *refused,
            _ => 0,
        }
    }

    /// The endpoint as bound (for `tcp:` and `vsock:`, with the real address and port).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Waits for the next connection.
    ///
    /// `stdio` and `pty:` return their single connection once, then
    /// [`ListenError::Exhausted`].
    pub async fn accept(&mut self) -> Result<Connected, ListenError> {
        let local = self.endpoint.to_string();
        match &mut self.inner {
            Inner::Unix { listener, .. } => {
                let (stream, addr) = listener
                    .accept()
                    .await
                    .map_err(|e| io_err(&self.endpoint, e))?;
                if let Some(bytes) = self.send_buffer {
                    rustix::net::sockopt::set_socket_send_buffer_size(&stream, bytes)
                        .map_err(|e| io_err(&self.endpoint, e.into()))?;
                }
                let peer = match (stream.peer_cred(), addr.as_pathname()) {
                    (Ok(cred), _) => match cred.pid() {
                        Some(pid) => format!("pid {pid} uid {}", cred.uid()),
                        None => format!("uid {}", cred.uid()),
                    },
                    (Err(_), Some(path)) => format!("unix:{}", path.display()),
                    (Err(_), None) => "unnamed".to_string(),
                };
                Ok(Connected::new(stream, peer, local))
            }
            Inner::Hvsock {
                listener,
                ports,
                flavour,
                local_ports,
                refused,
                ..
            } => loop {
                let (stream, _addr) = listener
                    .accept()
                    .await
                    .map_err(|e| io_err(&self.endpoint, e))?;
                let pid = stream.peer_cred().ok().and_then(|c| c.pid());
                let flavour = *flavour;
                let answer = |port: u32| {
                    if !ports.contains(&port) {
                        return None;
                    }
                    match flavour {
                        Flavour::VhostDevice => Some(port),
                        _ => local_ports.allocate(),
                    }
                };
                let deadline = Duration::from_millis(CONN_REQUEST_TIMEOUT_MS);
                match handshake_vmm(stream, flavour, deadline, answer).await {
                    VmmHandshake::Accepted { stream, port } => {
                        let peer = match pid {
                            Some(pid) => format!("pid {pid} via CONNECT {port}"),
                            None => format!("CONNECT {port}"),
                        };
                        return Ok(Connected::new(stream, peer, local));
                    }
                    VmmHandshake::Closed { .. } => *refused += 1,
                }
            },
            Inner::Tcp(listener) => {
                let (stream, addr) = listener
                    .accept()
                    .await
                    .map_err(|e| io_err(&self.endpoint, e))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| io_err(&self.endpoint, e))?;
                Ok(Connected::new(stream, addr.to_string(), local))
            }
            Inner::Vsock(listener) => {
                let (stream, addr) = listener
                    .accept()
                    .await
                    .map_err(|e| io_err(&self.endpoint, e))?;
                let peer = format!("vsock:{}:{}", addr.cid(), addr.port());
                Ok(Connected::new(stream, peer, local))
            }
            Inner::Stdio { taken } => {
                if std::mem::replace(taken, true) {
                    return Err(ListenError::Exhausted { endpoint: local });
                }
                let stream = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
                Ok(Connected::new(stream, "stdio", local))
            }
            Inner::SerialPort(port) => {
                let stream = port.accept().await.map_err(|e| io_err(&self.endpoint, e))?;
                Ok(Connected::new(stream, "host", local))
            }
            Inner::Pty(pty) => {
                let master = pty.take_master().ok_or_else(|| ListenError::Exhausted {
                    endpoint: local.clone(),
                })?;
                let peer = format!("agent at {}", pty.slave_path().display());
                Ok(Connected::new(master, peer, local))
            }
        }
    }
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|md| md.file_type().is_socket())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stdio_is_one_connection() {
        let mut l = Listener::bind(&Endpoint::Stdio).await.expect("bind");
        let c = l.accept().await.expect("first");
        assert_eq!(c.peer, "stdio");
        assert_eq!(l.accept().await.expect_err("second").kind(), "exhausted");
    }

    #[tokio::test]
    async fn pty_is_one_connection_and_its_link_goes_with_the_listener() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("port");
        let mut l = Listener::bind(&Endpoint::Pty(link.clone()))
            .await
            .expect("bind");
        let c = l.accept().await.expect("master");
        assert!(c.peer.contains("/dev/pts/"), "{}", c.peer);
        assert_eq!(l.accept().await.expect_err("second").kind(), "exhausted");
        assert!(std::fs::symlink_metadata(&link).is_ok());
        drop(l);
        assert!(std::fs::symlink_metadata(&link).is_err());
    }

    #[tokio::test]
    async fn unix_bind_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Listener::bind_unix(&dir.path().join("no/such/dir.sock"))
            .await
            .expect_err("no dir");
        assert_eq!(e.kind(), "no_such_directory");
        // A directory at the path is not a socket and stays.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("dir");
        let e = Listener::bind_unix(&sub).await.expect_err("dir");
        assert_eq!(e.kind(), "not_a_socket");
        assert!(sub.is_dir());
    }
}
