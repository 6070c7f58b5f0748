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
pub struct Erased<D>(pub D);

impl<D> FrameDecoder for Erased<D>
where
    D: Decoder + Send,
    D::Message: Describe,
{
    fn decode(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        self.0.decode(buf).map(|r| r.map(|f| DecodedFrame::of(&f)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        self.0
            .decode_eof(buf)
            .map(|r| r.map(|f| DecodedFrame::of(&f)))
    }

    fn offset(&self) -> u64 {
        self.0.offset()
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
        Box::new(Erased(HttpDecoder::with_limits(kind, limits)))
    };
    match protocol {
        Protocol::Quantix => Box::new(Erased(match max {
            Some(m) => QuantixDecoder::with_max(m),
            None => QuantixDecoder::new(),
        })),
        Protocol::QuantixLegacy => Box::new(Erased(match max {
            Some(m) => LegacyDecoder::with_max(m),
            None => LegacyDecoder::new(),
        })),
        Protocol::Fcexec => Box::new(Erased(FcexecDecoder::with_max(
            opts.direction,
            max.unwrap_or(DEFAULT_MAX_FRAME),
        ))),
        Protocol::Qga => Box::new(Erased(QgaDecoder::with_max(
            max.unwrap_or(DEFAULT_MAX_FRAME),
        ))),
        Protocol::Volant | Protocol::ChApi => http(opts),
        Protocol::Raw => Box::new(Erased(RawDecoder::new())),
        Protocol::Lp(cfg) => {
            let mut cfg = cfg.clone();
            if let Some(m) = max {
                cfg.max = m;
            }
            Box::new(Erased(LpFrames(LpDecoder::new(cfg))))
        }
    }
}
