//! Pure channel models (no IO, no clock): the transports between host and guest as state
//! machines that take bytes, events and `now`, and return events and deadlines. Tokio adapters
//! in [`crate::io`] drive them.

pub mod vsock;
