//! The two quantix framings as one choice ([`Framing`]), with a frame decoder that keeps each
//! frame's raw payload ([`FrameDecoder`]) and an encoder for either ([`FrameEncoder`]).
//!
//! Both the host client and the mock guest frame with [`LpDecoder`] and decode the payload
//! separately with [`decode_payload`], so that a frame whose payload is not an `AgentMessage`
//! can be reported with its raw bytes (a [`ClientError::Malformed`](crate::host::ClientError)
//! carries them), not just the bounded preview of a [`WireError`].

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use crate::wire::frame::{LpConfig, LpDecoder};
use crate::wire::quantix::{
    AgentMessage, LegacyEncoder, MAX_MESSAGE, QUANTIX, QUANTIX_LEGACY, QuantixEncoder, Timestamp,
    check_legacy_start, decode_payload, legacy_config, qtx1_config,
};
use crate::wire::{Decoded, Decoder, EncodeError, Encoder, WireError};

/// The wall-clock time as a protobuf timestamp, as both sides stamp their messages.
pub fn timestamp_now() -> Timestamp {
    timestamp_of(SystemTime::now())
}

/// A system time as a protobuf timestamp (times before 1970 become the epoch).
pub fn timestamp_of(time: SystemTime) -> Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp::new(
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        i32::try_from(since.subsec_nanos()).unwrap_or(0),
    )
}

/// How quantix frames are laid out on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Framing {
    /// The agent's current code: `QTX1` magic `51 54 58 01`, u32 BE length, protobuf; readers
    /// resynchronise on the magic.
    #[default]
    Qtx1,
    /// As the seed documents describe it (`quantix-legacy`): u32 BE length, protobuf, no magic.
    Legacy,
}

impl Framing {
    /// The protocol's registry name: `quantix` or `quantix-legacy`.
    pub fn protocol(self) -> &'static str {
        match self {
            Self::Qtx1 => QUANTIX,
            Self::Legacy => QUANTIX_LEGACY,
        }
    }

    /// The length-prefix shape, with the 16 MiB maximum.
    pub fn lp_config(self) -> LpConfig {
        match self {
            Self::Qtx1 => qtx1_config(MAX_MESSAGE),
            Self::Legacy => legacy_config(MAX_MESSAGE),
        }
    }

    /// A frame decoder for this framing.
    pub fn decoder(self) -> FrameDecoder {
        FrameDecoder::new(self)
    }

    /// An encoder for this framing.
    pub fn encoder(self) -> FrameEncoder {
        match self {
            Self::Qtx1 => FrameEncoder::Qtx1(QuantixEncoder::new()),
            Self::Legacy => FrameEncoder::Legacy(LegacyEncoder::new()),
        }
    }

    /// Encodes one message as a whole frame.
    pub fn encode(self, message: &AgentMessage) -> Result<BytesMut, EncodeError> {
        let mut out = BytesMut::new();
        self.encoder().encode(message, &mut out)?;
        Ok(out)
    }
}

impl FromStr for Framing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "quantix" | "qtx1" => Ok(Self::Qtx1),
            "quantix-legacy" | "legacy" => Ok(Self::Legacy),
            _ => Err(format!(
                "unknown quantix framing {s:?}: quantix (qtx1) or quantix-legacy (legacy)"
            )),
        }
    }
}

impl std::fmt::Display for Framing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.protocol())
    }
}

/// A decoded frame payload: the message, or why the payload is not one, with the raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Payloaded {
    /// A well-formed `AgentMessage` with a known arm.
    Message(AgentMessage),
    /// The frame was whole but its payload is not an `AgentMessage` of a known arm.
    Bad {
        /// What is wrong (offset, kind, preview).
        error: WireError,
        /// The frame's whole payload.
        raw: Bytes,
    },
}

/// Splits a stream into quantix frames and yields each frame's raw payload; see
/// [`FrameDecoder::payload`] to turn one into a message.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    inner: LpDecoder,
    framing: Framing,
    /// QTX1 only: the start of the stream has not been checked for a legacy frame yet.
    start_pending: bool,
    /// The stream turned out to be legacy-framed: nothing more is decoded.
    mismatch: bool,
}

impl FrameDecoder {
    /// A decoder for `framing` with the 16 MiB maximum.
    pub fn new(framing: Framing) -> Self {
        Self {
            inner: LpDecoder::new(framing.lp_config()),
            framing,
            start_pending: framing == Framing::Qtx1,
            mismatch: false,
        }
    }

    /// The legacy-start check (QTX1 only): a stream that starts with a legacy frame is reported
    /// once as a framing mismatch, and then not decoded any further.
    fn check_start(&mut self, buf: &mut BytesMut, eof: bool) -> Option<Option<Decoded<Bytes>>> {
        if self.mismatch {
            buf.clear();
            return Some(None);
        }
        if !self.start_pending {
            return None;
        }
        let verdict = check_legacy_start(buf, eof, self.inner.offset(), self.inner.config().max);
        match verdict {
            None => Some(None),
            Some(None) => {
                self.start_pending = false;
                None
            }
            Some(Some(err)) => {
                self.start_pending = false;
                self.mismatch = true;
                buf.clear();
                Some(Some(Err(err)))
            }
        }
    }

    /// The framing read.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the decoder gave up on the stream (legacy framing after a bad length: with no
    /// magic there is nothing to resynchronise on).
    pub fn is_failed(&self) -> bool {
        self.inner.is_failed() || self.mismatch
    }

    /// Decodes one frame's payload (`offset`: the frame's stream offset).
    pub fn payload(&self, raw: Bytes, offset: u64) -> Payloaded {
        match decode_payload(&raw, offset, self.framing.protocol()) {
            Ok(message) => Payloaded::Message(message),
            Err(error) => Payloaded::Bad { error, raw },
        }
    }
}

impl Decoder for FrameDecoder {
    type Message = Bytes;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<Bytes>> {
        if let Some(verdict) = self.check_start(buf, false) {
            return verdict;
        }
        self.inner.decode(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<Bytes>> {
        if let Some(verdict) = self.check_start(buf, true) {
            return verdict;
        }
        self.inner.decode_eof(buf)
    }

    fn offset(&self) -> u64 {
        self.inner.offset()
    }
}

/// An encoder for either framing.
#[derive(Debug, Clone)]
pub enum FrameEncoder {
    /// `QTX1` frames.
    Qtx1(QuantixEncoder),
    /// Legacy frames.
    Legacy(LegacyEncoder),
}

impl Encoder<AgentMessage> for FrameEncoder {
    fn encode(&mut self, message: &AgentMessage, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Self::Qtx1(e) => e.encode(message, dst),
            Self::Legacy(e) => e.encode(message, dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::decode_all;
    use crate::wire::quantix::PingRequest;

    #[test]
    fn both_framings_round_trip_and_keep_bad_payloads_whole() {
        for framing in [Framing::Qtx1, Framing::Legacy] {
            let msg = AgentMessage::new("7", PingRequest { sequence: 3 });
            let mut stream = framing.encode(&msg).expect("encode").to_vec();
            let bad = [0xffu8; 40];
            match framing {
                Framing::Qtx1 => stream.extend_from_slice(b"QTX\x01"),
                Framing::Legacy => {}
            }
            stream.extend_from_slice(&(bad.len() as u32).to_be_bytes());
            stream.extend_from_slice(&bad);
            let mut dec = framing.decoder();
            let frames = decode_all(&mut dec, &stream);
            assert_eq!(frames.len(), 2, "{framing}");
            let first = frames[0].clone().expect("frame");
            assert_eq!(
                dec.payload(first.message, first.offset),
                Payloaded::Message(msg)
            );
            let second = frames[1].clone().expect("frame");
            match dec.payload(second.message, second.offset) {
                Payloaded::Bad { raw, error } => {
                    assert_eq!(&raw[..], &bad[..]);
                    assert_eq!(error.kind(), "malformed");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!("legacy".parse::<Framing>(), Ok(Framing::Legacy));
        assert_eq!(Framing::Qtx1.to_string(), "quantix");
        assert!("x".parse::<Framing>().is_err());
    }
}
