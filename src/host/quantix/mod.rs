//! The `quantix` host client: what the LimiQuantix node daemon does on an agent's virtio-serial
//! socket (PROTOCOLS.md §2), usable as a library and by `guestwire call`.
//!
//! - [`framing`]: the `QTX1` and legacy framings as one [`Framing`] choice;
//! - [`client`]: the connection — a reader task routing replies by `message_id` and events to a
//!   bounded queue, the per-request deadlines, and what a reset, an end of stream or a bad frame
//!   does to pending requests;
//! - [`ops`]: ping, execute, chunked file read/write, shutdown, capabilities, raw requests, and
//!   [`QuantixClient::call`] for the CLI's operations;
//! - [`events`]: the event queue.
//!
//! ```no_run
//! # async fn demo() -> Result<(), guestwire::host::ClientError> {
//! use guestwire::host::DialOptions;
//! use guestwire::host::quantix::{Framing, QuantixClient};
//! use guestwire::io::Endpoint;
//!
//! let ep = Endpoint::Unix("/run/vm.agent.sock".into());
//! let client = QuantixClient::connect(&ep, DialOptions::default(), Framing::Qtx1).await?;
//! let pong = client.ping().await?;
//! println!("agent {} up {}s", pong.version, pong.uptime_seconds);
//! # Ok(()) }
//! ```

pub mod client;
pub mod events;
pub mod framing;
pub mod ops;

pub use client::{ClientSettings, ClientStats, DEFAULT_MAX_READ, QuantixClient};
pub use events::{DEFAULT_EVENT_CAPACITY, EventReceiver};
pub use framing::{FrameDecoder, FrameEncoder, Framing, Payloaded, timestamp_now, timestamp_of};
pub use ops::{FILE_CHUNK, FileData};
