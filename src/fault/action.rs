//! [`Action`]: what a fault plan tells a proxy to do with the bytes it was given. A proxy runs a
//! plan's actions in order; each `Delay` waits its time after the previous action.

use std::time::Duration;

use bytes::Bytes;

/// One step for the proxy, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes now.
    Forward(Bytes),
    /// Wait this long after the previous action, then write these bytes (none: just wait).
    Delay(Duration, Bytes),
    /// Discard this many bytes of the input.
    Drop(usize),
    /// Close the stream in this direction (a FIN).
    Close,
    /// Reset the connection (connection reset by peer).
    Reset,
    /// Blackhole: swallow the input and keep the connection open.
    Hold,
}
