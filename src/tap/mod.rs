//! `guestwire tap`: an interposing proxy between a host daemon and the VMM socket (or agent) it
//! talks to, forwarding every byte in order, applying faults, and showing each frame as it
//! passes.
//!
//! - [`proxy`]: the relay ([`proxy::run`]) and its event stream ([`proxy::TapEvent`],
//!   [`proxy::TapSink`]);
//! - [`framelog`]: the live per-connection frame decoder behind the log lines;
//! - [`capture_sink`]: `--capture OUT`, recording every connection into a pcap;
//! - [`takeover`]: `--takeover PATH`, for when the daemon cannot be re-pointed.

pub mod capture_sink;
pub mod framelog;
pub mod inline;
pub mod proxy;
pub mod takeover;

pub use capture_sink::{CaptureSink, Fanout, GuestAddr};
pub use framelog::{FrameLog, LoggedFrame};
pub use proxy::{TapConfig, TapError, TapEvent, TapSink, TapSummary};
pub use takeover::{Takeover, TakeoverError};
