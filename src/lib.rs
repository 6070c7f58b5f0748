//! guestwire: a diagnostic and fuzz-testing harness for the channels between a virtual machine's
//! host and the agent inside it (virtio-serial ports exposed as Unix sockets, hybrid vsock, AF_VSOCK)
//! and the agent protocols spoken over them.
//!
//! Layers point downward only: [`wire`] (pure codecs) ← [`channel`] (pure channel models) ← [`io`]
//! ← roles ← harness ← [`cli`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod channel;
pub mod cli;
pub mod diag;
pub mod fault;
pub mod fuzzing;
pub mod guest;
pub mod host;
pub mod io;
pub mod livefuzz;
pub mod replay;
pub mod scenario;
pub mod tap;
pub mod vmm;
pub mod wire;
