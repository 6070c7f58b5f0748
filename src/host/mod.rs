//! The host role: what a host-side client of a guest agent does around the wire (dialing,
//! retrying, timing out), modelled on the real clients listed in `PROTOCOLS.md`.

pub mod call;
pub mod dial;
pub mod error;
pub mod fcexec;
pub mod qga;
pub mod quantix;
pub mod retry;
pub mod volant;

pub use call::{CallOp, CallOutcome, call_once};
pub use dial::{DialOptions, Dialed, dial, dial_once};
pub use error::{ClientError, Phase};
pub use qga::QgaClient;
