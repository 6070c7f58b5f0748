//! `quantix`: the LimiQuantix guest agent protocol (package `limiquantix.agent.v1`) — protobuf
//! `AgentMessage`s over virtio-serial, framed either as the agent's current code does
//! (`QTX1` magic `51 54 58 01`, u32 big-endian length, 16 MiB max, resync by scanning for the
//! magic) or as the seed documents describe it (`quantix-legacy`: u32 big-endian length only).
//!
//! The messages are hand-written prost structs (no protoc, no build script) whose fields,
//! numbers and enum values are those of the agent's `agent.proto`; every message also has the
//! JSON form described in [`json`] and [`Timestamp`].
//!
//! - [`envelope`]: `AgentMessage`, the `Payload` oneof and the request/response pairing;
//! - one file per message family: [`core`], [`events`], [`snapshot`], [`files`], [`desktop`],
//!   [`system`], [`inventory`], [`agent`]; the enums in [`enums`];
//! - [`codec`]: the two framings' decoders and encoders, naming each framing mismatch;
//!   [`payload`]: what a frame's payload must be;
//! - [`describe`]: one-line summaries for the CLI, captures and the TUI.

pub mod agent;
pub mod codec;
pub mod core;
pub mod describe;
pub mod desktop;
pub mod enums;
pub mod envelope;
pub mod events;
pub mod files;
pub mod inventory;
pub mod json;
pub mod payload;
pub mod snapshot;
pub mod system;
pub mod timestamp;

pub use self::core::*;
pub use agent::*;
pub use codec::{
    FOUND_LEGACY, FOUND_QTX1, LegacyDecoder, LegacyEncoder, MAGIC_AS_LENGTH, MAX_MESSAGE,
    QTX1_MAGIC, QUANTIX, QUANTIX_LEGACY, QuantixDecoder, QuantixEncoder, check_legacy_start,
    legacy_config, qtx1_config,
};
pub use desktop::*;
pub use enums::*;
pub use envelope::{AgentMessage, MessageKind, PACKAGE, Payload, RESPONSE_FIELD_OFFSET};
pub use events::*;
pub use files::*;
pub use inventory::*;
pub use payload::{SHARE_PAYLOAD_MIN, decode_payload, decode_payload_bytes};
pub use snapshot::*;
pub use system::*;
pub use timestamp::Timestamp;

#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod strategies;
