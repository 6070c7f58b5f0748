//! The host role: what a host-side client of a guest agent does around the wire (dialing,
//! retrying, timing out), modelled on the real clients listed in `PROTOCOLS.md`.

pub mod retry;
