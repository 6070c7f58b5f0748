//! One boxed duplex byte stream for every transport (Unix, TCP, vsock, pty, stdio), so that the
//! roles above (host client, mock guest, tap) are written once, plus [`Connected`], which says
//! what a stream is connected to.

use std::fmt;

use tokio::io::{AsyncRead, AsyncWrite};

/// Anything that reads and writes bytes asynchronously. Implemented for every such type.
pub trait AsyncReadWrite: AsyncRead + AsyncWrite {}

impl<T: AsyncRead + AsyncWrite + ?Sized> AsyncReadWrite for T {}

/// A duplex byte stream of any transport.
pub type BoxStream = Box<dyn AsyncReadWrite + Send + Unpin>;

/// A stream and a description of both of its ends, for logs, reports and the TUI.
pub struct Connected {
    /// The stream.
    pub stream: BoxStream,
    /// The other end, e.g. `127.0.0.1:40312`, `pid 4242 uid 1000`, `vsock:3:1024`.
    pub peer: String,
    /// This end, usually the endpoint address, e.g. `unix:/run/vm.sock`.
    pub local: String,
}

impl fmt::Debug for Connected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connected")
            .field("peer", &self.peer)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Connected {
    /// Boxes `stream` with its description.
    pub fn new<S>(stream: S, peer: impl Into<String>, local: impl Into<String>) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Self {
            stream: Box::new(stream),
            peer: peer.into(),
            local: local.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn boxes_any_duplex() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut c = Connected::new(a, "peer", "local");
        assert!(format!("{c:?}").contains("peer"));
        c.stream.write_all(b"hi").await.expect("write");
        let mut got = [0u8; 2];
        b.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"hi");
    }
}
