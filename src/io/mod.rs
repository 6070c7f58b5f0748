//! Tokio adapters between the pure layers and real channels: endpoint addresses and their one
//! parser ([`endpoint`]), connecting ([`mod@connect`]) and listening ([`listen`]) on Unix sockets,
//! TCP, AF_VSOCK, pseudo-terminals ([`pty`]) and stdio, one boxed duplex stream type for all of
//! them ([`stream`]), and framed streams over the sans-IO codecs ([`framed`]).
//!
//! This layer sits on [`crate::wire`] and below the roles (host client, mock guest, mock VMM).

pub mod connect;
pub mod endpoint;
pub mod fault_pump;
pub mod fd;
pub mod framed;
pub mod hvsock;
pub mod listen;
pub mod pty;
pub mod serial_port;
pub mod stream;

pub use connect::{ConnectError, connect, connect_unix};
pub use endpoint::{Endpoint, EndpointError};
pub use fd::FdStream;
pub use framed::{FramedReader, FramedWriter, READ_CHUNK, ReadError, WriteError};
pub use hvsock::{HandshakeError, Prefixed, VmmHandshake, handshake_client, handshake_vmm};
pub use listen::{ListenError, Listener};
pub use pty::{Pty, PtyError};
pub use serial_port::SerialPortListener;
pub use stream::{AsyncReadWrite, BoxStream, Connected};
