//! Protocol-independent decoding: any codec behind one object-safe [`FrameDecoder`] that yields
//! [`DecodedFrame`]s, optionally after a hybrid-vsock handshake line. Used by `guestwire decode`,
//! the tap, captures and the TUI.

use bytes::BytesMut;

use super::codec::{DecodedFrame, Decoder, Describe, Direction};
use super::error::WireError;
use super::fcexec::FcexecDecoder;
use super::frame::{DEFAULT_MAX_FRAME, LpDecoder};
use super::http::{HttpDecoder, HttpKind, HttpLimits};
use super::hybrid::HandshakeDecoder;
use super::protocol::Protocol;
use super::qga::QgaDecoder;
use super::quantix::{LegacyDecoder, QuantixDecoder};
use super::raw::{RawData, RawDecoder};

/// A decoder of some protocol, yielding protocol-independent frames.
pub trait FrameDecoder: Send {
    /// Next frame or error, or `None` when more bytes are needed.
    fn decode(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>>;
    /// Next frame or error at end of stream (then `None`).
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>>;
    /// Bytes consumed so far.
    fn offset(&self) -> u64;
}

/// Wraps a typed decoder whose messages can describe themselves.
pub struct Erased<D> {
    decoder: D,
    lean: bool,
}

impl<D> Erased<D> {
    /// Frames with their whole message as JSON.
    pub fn new(decoder: D) -> Self {
        Self {
            decoder,
            lean: false,
        }
    }

    /// Frames without the JSON form of their message ([`DecodedFrame::lean_of`]) when `lean`.
    pub fn with_lean(decoder: D, lean: bool) -> Self {
        Self { decoder, lean }
    }

    fn view<M: Describe>(&self, frame: &super::codec::Frame<M>) -> DecodedFrame {
        if self.lean {
            DecodedFrame::lean_of(frame)
        } else {
            DecodedFrame::of(frame)
        }
    }
}

impl<D> FrameDecoder for Erased<D>
where
    D: Decoder + Send,
    D::Message: Describe,
{
    fn decode(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        let item = self.decoder.decode(buf)?;
        Some(item.map(|f| self.view(&f)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        let item = self.decoder.decode_eof(buf)?;
        Some(item.map(|f| self.view(&f)))
    }

    fn offset(&self) -> u64 {
        self.decoder.offset()
    }
}

/// How to build a decoder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Which way the stream flows (`None`: infer from the messages).
    pub direction: Option<Direction>,
    /// Largest frame accepted (`None`: the protocol's default).
    pub max_frame: Option<u64>,
    /// The stream starts with a hybrid-vsock handshake line.
    pub handshake: bool,
    /// Leave every frame's `message` as `null` ([`DecodedFrame::lean_of`]): building the JSON
    /// form is the costliest part of decoding, and text output, counting and summaries never
    /// read it.
    pub lean: bool,
}

/// Runs `first` until it stops yielding (it decodes a prefix such as a handshake line), then
/// `then`, with offsets counted from the start of the whole stream.
pub struct Chain {
    first: Option<Box<dyn FrameDecoder>>,
    then: Box<dyn FrameDecoder>,
    base: u64,
}

impl Chain {
    /// Decodes with `first` until it has nothing more to say, then with `then`.
    pub fn new(first: Box<dyn FrameDecoder>, then: Box<dyn FrameDecoder>) -> Self {
        Self {
            first: Some(first),
            then,
            base: 0,
        }
    }

    fn shift(&self, item: Result<DecodedFrame, WireError>) -> Result<DecodedFrame, WireError> {
        match item {
            Ok(mut f) => {
                f.offset += self.base;
                Ok(f)
            }
            Err(e) => Err(e.shifted(self.base)),
        }
    }

    fn step(&mut self, buf: &mut BytesMut, eof: bool) -> Option<Result<DecodedFrame, WireError>> {
        if let Some(first) = &mut self.first {
            let item = if eof {
                first.decode_eof(buf)
            } else {
                first.decode(buf)
            };
            match item {
                Some(item) => {
                    let failed = item.is_err();
                    if failed || first.offset() > 0 {
                        // The prefix is done (decoded or refused): hand over.
                        self.base = first.offset();
                        self.first = None;
                    }
                    return Some(item);
                }
                None if eof || first.offset() > 0 => {
                    self.base = first.offset();
                    self.first = None;
                }
                None => return None,
            }
        }
        let item = if eof {
            self.then.decode_eof(buf)
        } else {
            self.then.decode(buf)
        };
        item.map(|i| self.shift(i))
    }
}

impl FrameDecoder for Chain {
    fn decode(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        self.step(buf, false)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        self.step(buf, true)
    }

    fn offset(&self) -> u64 {
        match &self.first {
            Some(first) => first.offset(),
            None => self.base + self.then.offset(),
        }
    }
}

/// A hybrid-vsock handshake line whose direction is decided by its first byte (`C`/`c` for the
/// host's `CONNECT`, anything else for the VMM's `OK`), for streams of unknown direction.
struct AnyHandshake {
    decoder: Option<HandshakeDecoder>,
    direction: Option<Direction>,
}

impl AnyHandshake {
    fn pick(&mut self, buf: &BytesMut) -> Option<&mut HandshakeDecoder> {
        if self.decoder.is_none() {
            let first = *buf.first()?;
            let dir = self
                .direction
                .unwrap_or(if first.eq_ignore_ascii_case(&b'c') {
                    Direction::ToGuest
                } else {
                    Direction::ToHost
                });
            self.decoder = Some(HandshakeDecoder::new(dir));
        }
        self.decoder.as_mut()
    }
}

impl FrameDecoder for AnyHandshake {
    fn decode(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        let d = self.pick(buf)?;
        d.decode(buf).map(|r| r.map(|f| DecodedFrame::of(&f)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        let d = self.pick(buf)?;
        d.decode_eof(buf).map(|r| r.map(|f| DecodedFrame::of(&f)))
    }

    fn offset(&self) -> u64 {
        self.decoder.as_ref().map_or(0, |d| d.offset())
    }
}

/// Whether `bytes` could still grow into a hybrid-vsock handshake line (`CONNECT <digits>\n`, any
/// case, or `OK <digits>\n`): a proper prefix of one, with no newline yet.
pub fn could_become_handshake(bytes: &[u8]) -> bool {
    if bytes.len() >= 64 || bytes.contains(&b'\n') {
        return false;
    }
    let digits_after = |n: usize| {
        bytes
            .get(n..)
            .is_none_or(|r| r.iter().all(|b| b.is_ascii_digit() || *b == b'\r'))
    };
    let prefix_of = |word: &[u8]| {
        let k = bytes.len().min(word.len());
        bytes[..k].eq_ignore_ascii_case(&word[..k])
            && (bytes.len() <= word.len() || digits_after(word.len()))
    };
    prefix_of(b"CONNECT ") || prefix_of(b"OK ")
}

/// A decoder that first finds out whether the stream starts with a hybrid-vsock handshake line
/// (buffering at most one line), then decodes `protocol` after it, or from the first byte.
struct OptionalHandshake {
    protocol: Protocol,
    opts: DecodeOptions,
    inner: Option<Box<dyn FrameDecoder>>,
}

impl OptionalHandshake {
    fn pick(&mut self, buf: &BytesMut, eof: bool) -> Option<&mut Box<dyn FrameDecoder>> {
        if self.inner.is_none() {
            if buf.is_empty() || (!eof && could_become_handshake(buf)) {
                return None;
            }
            let handshake = super::detect::handshake_line_len(buf) > 0;
            let opts = DecodeOptions {
                handshake,
                ..self.opts.clone()
            };
            self.inner = Some(open_decoder(&self.protocol, &opts));
        }
        self.inner.as_mut()
    }
}

impl FrameDecoder for OptionalHandshake {
    fn decode(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        self.pick(buf, false)?.decode(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        self.pick(buf, true)?.decode_eof(buf)
    }

    fn offset(&self) -> u64 {
        self.inner.as_ref().map_or(0, |d| d.offset())
    }
}

/// Builds the decoder for `protocol`, after a hybrid-vsock handshake line if the stream starts
/// with one (`opts.handshake` is ignored: the first bytes decide).
pub fn open_decoder_detecting_handshake(
    protocol: &Protocol,
    opts: &DecodeOptions,
) -> Box<dyn FrameDecoder> {
    Box::new(OptionalHandshake {
        protocol: protocol.clone(),
        opts: opts.clone(),
        inner: None,
    })
}

/// Frames of a custom length-prefixed protocol, described as opaque data.
struct LpFrames(LpDecoder);

impl Decoder for LpFrames {
    type Message = RawData;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<super::codec::Decoded<RawData>> {
        self.0.decode(buf).map(|r| r.map(|f| f.map(RawData)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<super::codec::Decoded<RawData>> {
        self.0.decode_eof(buf).map(|r| r.map(|f| f.map(RawData)))
    }

    fn offset(&self) -> u64 {
        self.0.offset()
    }
}

/// Builds the decoder for `protocol` (after a handshake line when `opts.handshake`).
pub fn open_decoder(protocol: &Protocol, opts: &DecodeOptions) -> Box<dyn FrameDecoder> {
    let inner = protocol_decoder(protocol, opts);
    if opts.handshake {
        let first = Box::new(AnyHandshake {
            decoder: None,
            direction: opts.direction,
        });
        Box::new(Chain::new(first, inner))
    } else {
        inner
    }
}

fn protocol_decoder(protocol: &Protocol, opts: &DecodeOptions) -> Box<dyn FrameDecoder> {
    let max = opts.max_frame;
    let lean = opts.lean;
    let http = |opts: &DecodeOptions| -> Box<dyn FrameDecoder> {
        let kind = match opts.direction {
            Some(Direction::ToGuest) => HttpKind::Request,
            Some(Direction::ToHost) => HttpKind::Response,
            None => HttpKind::Auto,
        };
        let mut limits = HttpLimits::default();
        if let Some(max) = opts.max_frame {
            limits.max_body = max;
        }
        Box::new(Erased::with_lean(
            HttpDecoder::with_limits(kind, limits),
            opts.lean,
        ))
    };
    match protocol {
        Protocol::Quantix => Box::new(Erased::with_lean(
            match max {
                Some(m) => QuantixDecoder::with_max(m),
                None => QuantixDecoder::new(),
            },
            lean,
        )),
        Protocol::QuantixLegacy => Box::new(Erased::with_lean(
            match max {
                Some(m) => LegacyDecoder::with_max(m),
                None => LegacyDecoder::new(),
            },
            lean,
        )),
        Protocol::Fcexec => Box::new(Erased::with_lean(
            FcexecDecoder::with_max(opts.direction, max.unwrap_or(DEFAULT_MAX_FRAME)),
            lean,
        )),
        Protocol::Qga => Box::new(Erased::with_lean(
            QgaDecoder::with_max(max.unwrap_or(DEFAULT_MAX_FRAME)),
            lean,
        )),
        Protocol::Volant | Protocol::ChApi => http(opts),
        Protocol::Raw => Box::new(Erased::with_lean(RawDecoder::new(), lean)),
        Protocol::Lp(cfg) => {
            let mut cfg = cfg.clone();
            if let Some(m) = max {
                cfg.max = m;
            }
            Box::new(Erased::with_lean(LpFrames(LpDecoder::new(cfg)), lean))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_line_is_decoded_only_when_the_stream_has_one() {
        let opts = DecodeOptions::default();
        let message = crate::wire::quantix::AgentMessage::new(
            "1",
            crate::wire::quantix::PingRequest { sequence: 1 },
        );
        let ping = crate::wire::quantix::QuantixEncoder::new()
            .to_bytes(&message)
            .expect("encode");
        let with_line = [&b"OK 1073741824\n"[..], &ping[..]].concat();
        for (stream, first) in [(&with_line[..], "ok"), (&ping[..], "")] {
            let mut d = open_decoder_detecting_handshake(&Protocol::Quantix, &opts);
            let mut buf = BytesMut::new();
            let mut items = Vec::new();
            for b in stream {
                buf.extend_from_slice(&[*b]);
                while let Some(i) = d.decode(&mut buf) {
                    items.push(i);
                }
            }
            let types: Vec<String> = items
                .iter()
                .map(|i| i.as_ref().map_or("ERR".into(), |f| f.type_name.clone()))
                .collect();
            if first.is_empty() {
                assert_eq!(types.len(), 1, "{types:?}");
                assert_ne!(types[0], "ok");
                assert_ne!(types[0], "ERR");
            } else {
                assert_eq!(types.len(), 2, "{types:?}");
                assert_eq!(types[0], first);
            }
        }
        assert!(could_become_handshake(b"CONN"));
        assert!(could_become_handshake(b"connect 5"));
        assert!(could_become_handshake(b"OK 12"));
        assert!(!could_become_handshake(b"QTX"));
        assert!(!could_become_handshake(b"OK x"));
    }
}
