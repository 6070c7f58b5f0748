//! [`FaultStage`]: one direction of a proxied stream between the bytes read and a [`FaultPlan`].
//! It cuts the stream into the pieces the plan is asked about: whole frames when a fault needs
//! them (frame faults, `on_type`, `after_frames`), else each chunk as it was read.
//!
//! Framing uses the protocol's decoder ([`open_decoder`]), optionally after a hybrid-vsock
//! `CONNECT`/`OK` line (which is then a frame of its own, so `malformed:split_handshake` can hit
//! it). Bytes the decoder skips or rejects pass on as plain bytes, and after the first error
//! the stage stops framing that direction: a fault proxy must forward what it cannot parse, not
//! stall on it. Memory is bounded by the decoder's maximum frame size plus one read.
//!
//! Pure: no IO, no clock; `now` is the time since the stream started.

use std::time::Duration;

use bytes::BytesMut;

use super::action::Action;
use super::plan::FaultPlan;
use crate::wire::Direction;
use crate::wire::protocol::Protocol;
use crate::wire::stream::{
    DecodeOptions, FrameDecoder, open_decoder, open_decoder_detecting_handshake,
};

/// One direction's framing state in front of a fault plan.
pub struct FaultStage {
    direction: Direction,
    framer: Option<Framer>,
}

/// The decoder, its buffer, and a copy of the raw bytes not yet handed to the plan.
struct Framer {
    decoder: Box<dyn FrameDecoder>,
    /// What the decoder has not consumed.
    buf: BytesMut,
    /// Raw bytes from stream offset `raw_base` on, not yet handed to the plan.
    raw: BytesMut,
    raw_base: u64,
}

impl std::fmt::Debug for FaultStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultStage")
            .field("direction", &self.direction)
            .field("framing", &self.framer.is_some())
            .finish()
    }
}

impl FaultStage {
    /// A stage for `direction` of a stream speaking `protocol`, framing it only when `plan`
    /// has a fault that needs frames. `handshake`: the stream may start with a hybrid-vsock
    /// line (decoded as a frame of its own when it does).
    pub fn for_plan(
        plan: &FaultPlan,
        direction: Direction,
        protocol: &Protocol,
        handshake: bool,
    ) -> Self {
        Self::new(direction, protocol, plan.needs_frames(direction), handshake)
    }

    /// A stage that frames the stream when `frame_aware`, else passes chunks as read.
    pub fn new(
        direction: Direction,
        protocol: &Protocol,
        frame_aware: bool,
        handshake: bool,
    ) -> Self {
        let opts = DecodeOptions {
            direction: Some(direction),
            max_frame: None,
            handshake: false,
            lean: false,
        };
        let framer = frame_aware.then(|| Framer {
            decoder: if handshake {
                open_decoder_detecting_handshake(protocol, &opts)
            } else {
                open_decoder(protocol, &opts)
            },
            buf: BytesMut::new(),
            raw: BytesMut::new(),
            raw_base: 0,
        });
        Self { direction, framer }
    }

    /// The direction this stage carries.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Whether the stage is cutting the stream into frames (false after a framing error).
    pub fn is_framing(&self) -> bool {
        self.framer.is_some()
    }

    /// Bytes held until their frame is complete.
    pub fn buffered(&self) -> usize {
        self.framer.as_ref().map_or(0, |f| f.raw.len())
    }

    /// The actions for the next chunk read from the stream.
    pub fn push(&mut self, plan: &mut FaultPlan, bytes: &[u8], now: Duration) -> Vec<Action> {
        let Some(framer) = self.framer.as_mut() else {
            return plan.on_bytes(self.direction, bytes, now);
        };
        framer.buf.extend_from_slice(bytes);
        framer.raw.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            match framer.decoder.decode(&mut framer.buf) {
                None => break,
                Some(Ok(frame)) => {
                    out.extend(framer.pass_bytes_before(plan, self.direction, frame.offset, now));
                    let end = frame.offset.saturating_add(frame.len);
                    let piece = framer.take_until(end);
                    out.extend(plan.on_frame(self.direction, &frame.type_name, &piece, now));
                }
                Some(Err(_)) => {
                    // Stop framing: everything not yet handed on goes as plain bytes.
                    let rest = std::mem::take(&mut framer.raw);
                    self.framer = None;
                    out.extend(plan.on_bytes(self.direction, &rest, now));
                    break;
                }
            }
        }
        out
    }

    /// The actions at the end of the stream: bytes of an unfinished frame go on as they are,
    /// then the plan's close.
    pub fn finish(&mut self, plan: &mut FaultPlan, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(framer) = self.framer.take() {
            let rest = framer.raw;
            if !rest.is_empty() {
                out.extend(plan.on_bytes(self.direction, &rest, now));
            }
        }
        out.extend(plan.on_close(self.direction, now));
        out
    }
}

impl Framer {
    /// Hands the raw bytes before stream offset `offset` (skipped by the decoder) to the plan.
    fn pass_bytes_before(
        &mut self,
        plan: &mut FaultPlan,
        direction: Direction,
        offset: u64,
        now: Duration,
    ) -> Vec<Action> {
        let skipped = self.take_until(offset);
        if skipped.is_empty() {
            Vec::new()
        } else {
            plan.on_bytes(direction, &skipped, now)
        }
    }

    /// Removes and returns the raw bytes up to stream offset `end`.
    fn take_until(&mut self, end: u64) -> BytesMut {
        let n = usize::try_from(end.saturating_sub(self.raw_base))
            .unwrap_or(usize::MAX)
            .min(self.raw.len());
        self.raw_base = self
            .raw_base
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        self.raw.split_to(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::spec::FaultSpec;
    use crate::wire::quantix::{AgentMessage, PingRequest, QuantixEncoder};

    fn ping_frames(n: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let m = AgentMessage::new(i.to_string(), PingRequest { sequence: i });
                QuantixEncoder::new().to_bytes(&m).expect("encode").to_vec()
            })
            .collect()
    }

    fn plan(spec: &str) -> FaultPlan {
        let spec: FaultSpec = spec.parse().expect("spec");
        FaultPlan::new(vec![spec], Protocol::Quantix, 1)
    }

    fn forwarded(actions: &[Action]) -> Vec<u8> {
        actions
            .iter()
            .flat_map(|a| match a {
                Action::Forward(b) | Action::Delay(_, b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn without_frame_faults_chunks_pass_as_read() {
        let mut p = plan("latency:latency=5ms");
        let mut s = FaultStage::for_plan(&p, Direction::ToGuest, &Protocol::Quantix, false);
        assert!(!s.is_framing());
        let a = s.push(&mut p, b"abc", Duration::ZERO);
        assert_eq!(
            a,
            vec![Action::Delay(
                Duration::from_millis(5),
                bytes::Bytes::from_static(b"abc")
            )]
        );
    }

    #[test]
    fn drop_frame_drops_exactly_the_second_frame_across_byte_at_a_time_reads() {
        let frames = ping_frames(3);
        let stream: Vec<u8> = frames.concat();
        let mut p = plan("drop_frame:after_frames=1,times=1");
        let mut s = FaultStage::for_plan(&p, Direction::ToGuest, &Protocol::Quantix, false);
        assert!(s.is_framing());
        let mut out = Vec::new();
        for b in &stream {
            out.extend(s.push(&mut p, std::slice::from_ref(b), Duration::ZERO));
        }
        out.extend(s.finish(&mut p, Duration::ZERO));
        let expect = [frames[0].clone(), frames[2].clone()].concat();
        assert_eq!(forwarded(&out), expect);
        assert_eq!(out.last(), Some(&Action::Close));
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn garbage_stops_framing_and_passes_every_byte_on() {
        let mut p = plan("drop_frame:on_type=nothing");
        let mut s = FaultStage::for_plan(&p, Direction::ToHost, &Protocol::Quantix, false);
        let junk = vec![0xAB; 100];
        let mut out = s.push(&mut p, &junk, Duration::ZERO);
        out.extend(s.finish(&mut p, Duration::ZERO));
        assert_eq!(forwarded(&out), junk);
    }

    #[test]
    fn split_handshake_hits_the_connect_line_only() {
        let frames = ping_frames(1);
        let mut stream = b"CONNECT 52\n".to_vec();
        stream.extend_from_slice(&frames[0]);
        let mut p = plan("malformed:split_handshake");
        let mut s = FaultStage::for_plan(&p, Direction::ToGuest, &Protocol::Quantix, true);
        let out = s.push(&mut p, &stream, Duration::ZERO);
        assert_eq!(forwarded(&out), stream);
        assert!(
            matches!(&out[1], Action::Delay(d, b) if *d == crate::fault::SPLIT_GAP && b.as_ref() == b"ECT 52\n"),
            "{out:?}"
        );
    }
}
