//! Connecting to an [`Endpoint`] within a deadline, with the failure named the way a user needs
//! it: no socket at the path, a stale socket file nobody listens on (`ECONNREFUSED`), a file that
//! is not a socket, a full listen backlog (another client holds a single-client socket, as QEMU's
//! virtio-serial chardev allows one client at a time), permission denied, timed out.
//!
//! `hvsock:` is a Unix connect followed by the hybrid-vsock `CONNECT <port>` / `OK <n>` handshake,
//! which lives in `wire::hybrid`; until it is wired in here, [`connect`] refuses `hvsock:` and
//! callers run the handshake themselves over [`connect_unix`].

use std::future::Future;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use tokio::net::{TcpStream, UnixStream};

use super::endpoint::Endpoint;
use super::fd::FdStream;
use super::stream::BoxStream;

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing exists at the path (`ENOENT`, or a path component is not a directory).
    #[error("{path} does not exist: is the VM (or mock) running, and is this the right path?")]
    NoSuchSocket {
        /// The path.
        path: String,
    },
    /// The socket exists but nothing listens on it (`ECONNREFUSED`): a stale socket file left by a
    /// VMM that exited, or, for TCP and vsock, no listener on the port.
    #[error(
        "connection to {path} refused: nothing is listening (a stale socket file left by a VMM that exited?)"
    )]
    Refused {
        /// The socket path, `host:port` or `cid:port`.
        path: String,
    },
    /// No permission to connect to or open the path.
    #[error("permission denied on {path}: check its mode and owner, and the directories above it")]
    PermissionDenied {
        /// The path.
        path: String,
    },
    /// The path exists but is not a socket (for `pty:`, not a terminal or other character device).
    #[error("{path} exists but is not a socket (for pty:, not a terminal)")]
    NotASocket {
        /// The path.
        path: String,
    },
    /// The socket's listen backlog is full (`EAGAIN`): typically another client holds a
    /// single-client socket and further clients queue until the backlog fills.
    #[error(
        "{path} is busy: its listen backlog is full (another client probably holds this single-client socket)"
    )]
    Busy {
        /// The socket path.
        path: String,
    },
    /// The connection was not made within the deadline.
    #[error("connecting to {endpoint} timed out after {after:?}")]
    TimedOut {
        /// The endpoint address.
        endpoint: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The endpoint kind cannot be connected to by this function.
    #[error("cannot connect to {endpoint}: {reason}")]
    Unsupported {
        /// The endpoint address.
        endpoint: String,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// AF_VSOCK reaches no guest with this CID (`ENODEV`, `EHOSTUNREACH`, `ENETUNREACH`), or the
    /// host has no vsock transport at all (`EAFNOSUPPORT`): typically a VMM that offers vsock
    /// only as a hybrid Unix socket (Firecracker, Cloud Hypervisor), which AF_VSOCK cannot reach.
    #[error(
        "no AF_VSOCK device reaches CID {cid} ({source}): if the VMM exposes the guest's vsock as a Unix socket (Firecracker / Cloud Hypervisor hybrid vsock), dial hvsock:<uds_path>:{port} instead"
    )]
    NoVsockDevice {
        /// The CID dialed.
        cid: u32,
        /// The port dialed.
        port: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The hybrid-vsock handshake (`CONNECT <port>` / `OK <n>`) failed.
    #[error(transparent)]
    Handshake(#[from] super::hvsock::HandshakeError),
    /// Any other OS error.
    #[error("connecting to {endpoint}: {source}")]
    Io {
        /// The endpoint address.
        endpoint: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ConnectError {
    /// The error's kind as a stable snake_case name (used as `error` in JSON output).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoSuchSocket { .. } => "no_such_socket",
            Self::Refused { .. } => "refused",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::NotASocket { .. } => "not_a_socket",
            Self::Busy { .. } => "busy",
            Self::TimedOut { .. } => "timed_out",
            Self::Unsupported { .. } => "unsupported",
            Self::NoVsockDevice { .. } => "no_vsock_device",
            Self::Handshake(e) => e.kind(),
            Self::Io { .. } => "io",
        }
    }
}

/// Whether `path` exists and is something other than a socket (following symlinks, as
/// `connect(2)` does).
fn exists_but_not_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|md| !md.file_type().is_socket())
}

/// Names an error from connecting to (or opening) a filesystem path.
pub(crate) fn classify_path_error(endpoint: &str, path: &Path, source: io::Error) -> ConnectError {
    let shown = path.display().to_string();
    let errno = source.raw_os_error();
    if errno == Some(Errno::ENOENT as i32) || errno == Some(Errno::ENOTDIR as i32) {
        return ConnectError::NoSuchSocket { path: shown };
    }
    if errno == Some(Errno::ENOTSOCK as i32) {
        return ConnectError::NotASocket { path: shown };
    }
    match source.kind() {
        io::ErrorKind::NotFound => ConnectError::NoSuchSocket { path: shown },
        // Linux answers ECONNREFUSED for a regular file too: look before calling it stale.
        io::ErrorKind::ConnectionRefused if exists_but_not_socket(path) => {
            ConnectError::NotASocket { path: shown }
        }
        io::ErrorKind::ConnectionRefused => ConnectError::Refused { path: shown },
        io::ErrorKind::PermissionDenied => ConnectError::PermissionDenied { path: shown },
        io::ErrorKind::WouldBlock => ConnectError::Busy { path: shown },
        _ => ConnectError::Io {
            endpoint: endpoint.into(),
            source,
        },
    }
}

/// Names an error from connecting to a network address (`host:port`, `cid:port`).
fn classify_net_error(endpoint: &str, address: String, source: io::Error) -> ConnectError {
    match source.kind() {
        io::ErrorKind::ConnectionRefused => ConnectError::Refused { path: address },
        io::ErrorKind::PermissionDenied => ConnectError::PermissionDenied { path: address },
        _ => ConnectError::Io {
            endpoint: endpoint.into(),
            source,
        },
    }
}

/// Names an error from an AF_VSOCK `connect(2)` to `cid:port`.
pub fn classify_vsock_error(
    endpoint: &str,
    cid: u32,
    port: u32,
    source: io::Error,
) -> ConnectError {
    let no_device = [
        Errno::ENODEV,
        Errno::EHOSTUNREACH,
        Errno::ENETUNREACH,
        Errno::EAFNOSUPPORT,
        Errno::EADDRNOTAVAIL,
    ];
    match source.raw_os_error() {
        Some(n) if no_device.iter().any(|e| *e as i32 == n) => {
            ConnectError::NoVsockDevice { cid, port, source }
        }
        _ => classify_net_error(endpoint, format!("{cid}:{port}"), source),
    }
}

/// Runs `fut` within `deadline`, turning a timeout into [`ConnectError::TimedOut`].
async fn within<T, F>(endpoint: &str, deadline: Duration, fut: F) -> Result<T, ConnectError>
where
    F: Future<Output = Result<T, ConnectError>>,
{
    match tokio::time::timeout(deadline, fut).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ConnectError::TimedOut {
            endpoint: endpoint.into(),
            after: deadline,
        }),
    }
}

/// Connects to a Unix stream socket within `deadline`.
///
/// The hook for `hvsock:`: connect here, then run the hybrid-vsock handshake on the stream.
pub async fn connect_unix(path: &Path, deadline: Duration) -> Result<UnixStream, ConnectError> {
    let endpoint = format!("unix:{}", path.display());
    within(&endpoint, deadline, async {
        UnixStream::connect(path)
            .await
            .map_err(|e| classify_path_error(&endpoint, path, e))
    })
    .await
}

/// Opens a terminal (or other character device) by path, e.g. the slave end behind a `pty:` link.
fn open_pty(endpoint: &str, path: &Path) -> Result<FdStream, ConnectError> {
    let md = std::fs::metadata(path).map_err(|e| classify_path_error(endpoint, path, e))?;
    if !md.file_type().is_char_device() {
        return Err(ConnectError::NotASocket {
            path: path.display().to_string(),
        });
    }
    FdStream::open(path).map_err(|e| classify_path_error(endpoint, path, e))
}

/// Connects to `endpoint` within `deadline` and returns the stream.
///
/// `unix:`, `tcp:` (with `TCP_NODELAY`), `vsock:` (kernel AF_VSOCK), `pty:` and `serial:` (open the
/// character device at the path), `stdio` (standard input and output), and `hvsock:` (connect to the VMM's Unix
/// socket, then `CONNECT <port>` / `OK <n>` within the same deadline; bytes after the `OK` line
/// are kept in front of the stream).
pub async fn connect(endpoint: &Endpoint, deadline: Duration) -> Result<BoxStream, ConnectError> {
    let shown = endpoint.to_string();
    match endpoint {
        Endpoint::Unix(path) => Ok(Box::new(connect_unix(path, deadline).await?)),
        Endpoint::Hvsock { path, port } => {
            let stream = connect_unix(path, deadline).await?;
            let (stream, _ok) = super::hvsock::handshake_client(stream, *port, deadline).await?;
            Ok(Box::new(stream))
        }
        Endpoint::Tcp { host, port } => {
            let address = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let stream = within(&shown, deadline, async {
                TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| classify_net_error(&shown, address.clone(), e))
            })
            .await?;
            // Agent protocols are small request/reply frames: do not wait to coalesce them.
            stream
                .set_nodelay(true)
                .map_err(|source| ConnectError::Io {
                    endpoint: shown.clone(),
                    source,
                })?;
            Ok(Box::new(stream))
        }
        Endpoint::Vsock { cid, port } => {
            let addr = tokio_vsock::VsockAddr::new(*cid, *port);
            let stream = within(&shown, deadline, async {
                tokio_vsock::VsockStream::connect(addr)
                    .await
                    .map_err(|e| classify_vsock_error(&shown, *cid, *port, e))
            })
            .await?;
            Ok(Box::new(stream))
        }
        Endpoint::Pty(path) | Endpoint::SerialPort(path) => Ok(Box::new(open_pty(&shown, path)?)),
        Endpoint::Stdio => Ok(Box::new(tokio::io::join(
            tokio::io::stdin(),
            tokio::io::stdout(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e as i32)
    }

    #[test]
    fn errors_are_classified() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.sock");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("file");
        let cases = [
            (&missing, Errno::ENOENT, "no_such_socket"),
            (&missing, Errno::ENOTDIR, "no_such_socket"),
            (&missing, Errno::ECONNREFUSED, "refused"),
            (&file, Errno::ECONNREFUSED, "not_a_socket"),
            (&missing, Errno::ENOTSOCK, "not_a_socket"),
            (&missing, Errno::EACCES, "permission_denied"),
            (&missing, Errno::EPERM, "permission_denied"),
            (&missing, Errno::EAGAIN, "busy"),
            (&missing, Errno::EMFILE, "io"),
        ];
        for (path, e, kind) in cases {
            let err = classify_path_error("unix:x", path, errno(e));
            assert_eq!(err.kind(), kind, "{e:?}: {err}");
        }
        let refused = classify_net_error("tcp:h:1", "h:1".into(), errno(Errno::ECONNREFUSED));
        assert_eq!(refused.kind(), "refused");
        assert!(refused.to_string().contains("h:1"));
        let other = classify_net_error("tcp:h:1", "h:1".into(), errno(Errno::ENETUNREACH));
        assert_eq!(other.kind(), "io");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connect_that_never_completes_times_out_at_the_deadline() {
        let start = tokio::time::Instant::now();
        let deadline = Duration::from_secs(5);
        let result: Result<(), _> = within("unix:/x", deadline, std::future::pending()).await;
        match result {
            Err(ConnectError::TimedOut { endpoint, after }) => {
                assert_eq!((endpoint.as_str(), after), ("unix:/x", deadline));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(
            start.elapsed(),
            deadline,
            "paused clock: exactly the deadline"
        );
    }

    #[tokio::test]
    async fn hvsock_to_a_missing_socket_is_no_such_socket() {
        let ep: Endpoint = "hvsock:/nonexistent/v.sock:1024".parse().expect("endpoint");
        let e = connect(&ep, Duration::from_secs(1))
            .await
            .err()
            .expect("refused");
        assert_eq!(e.kind(), "no_such_socket");
    }

    #[tokio::test]
    async fn pty_connect_needs_a_terminal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("file");
        let ep = Endpoint::Pty(file);
        let e = connect(&ep, Duration::from_secs(1))
            .await
            .err()
            .expect("err");
        assert_eq!(e.kind(), "not_a_socket");
        let ep = Endpoint::Pty(dir.path().join("missing"));
        let e = connect(&ep, Duration::from_secs(1))
            .await
            .err()
            .expect("err");
        assert_eq!(e.kind(), "no_such_socket");
    }
}
