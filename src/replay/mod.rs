//! Replay of a recorded connection (pure, sans-IO): a capture's connection loaded into a
//! [`Session`] of recorded frames, then served either as the guest ([`ReplayGuest`]: answer
//! live requests with the recorded replies, ids rewritten to the live ones, and the recorded
//! unsolicited frames at their recorded times) or as the host ([`ReplayHost`]: send the recorded
//! requests in order and [`diff`] the live replies against the recorded ones).
//!
//! The IO adapters are in `cli/replay.rs`; `docs/captures.md` describes `guestwire replay`.
//! Encoding frames back to bytes ([`codec::encode`]) is supported for quantix,
//! quantix-legacy, fcexec, qga, volant and ch-api; raw and `lp:` streams load and diff, but
//! cannot be re-encoded (their frames carry no message to rebuild).

pub mod codec;
pub mod codec_http;
pub mod diff;
pub mod error;
pub mod guest;
pub mod host;
pub mod session;

pub use diff::{DiffEntry, DiffOptions, Report};
pub use error::ReplayError;
pub use guest::{GuestOutcome, ReplayGuest, Scheduled};
pub use host::{HostAction, ReplayHost};
pub use session::{RecordedFrame, Session, SessionBuilder, Step};

#[cfg(test)]
mod tests;
