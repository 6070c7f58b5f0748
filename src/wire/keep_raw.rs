//! [`KeepRaw`]: a [`FrameDecoder`] wrapper that attaches each frame's first bytes to it
//! ([`DecodedFrame::raw`]), for views that show a hex dump (the TUI's Detail view). Opt-in: the
//! plain decoders copy nothing, so `guestwire decode` pays nothing for it.
//!
//! Before each decode call it copies at most `cap` (+ 64) bytes from the front of the buffer (the
//! decoders consume whole frames from the front); a frame that lies entirely within what the
//! call consumed gets its first `min(len, cap)` bytes. A frame whose bytes were consumed by an
//! earlier call (a decoder that took a header before its body arrived) gets no bytes rather
//! than wrong ones.

use bytes::{Bytes, BytesMut};

use super::codec::DecodedFrame;
use super::error::WireError;
use super::stream::FrameDecoder;

/// Bytes copied beyond the cap, for separators before a frame.
const SLACK: usize = 64;

/// Wraps a decoder so its frames carry their first `cap` bytes.
pub struct KeepRaw {
    inner: Box<dyn FrameDecoder>,
    cap: usize,
}

/// `decoder`, keeping at most `cap` bytes of each frame (unchanged when `cap` is 0).
pub fn keep_raw(decoder: Box<dyn FrameDecoder>, cap: usize) -> Box<dyn FrameDecoder> {
    if cap == 0 {
        decoder
    } else {
        Box::new(KeepRaw {
            inner: decoder,
            cap,
        })
    }
}

impl KeepRaw {
    fn step(&mut self, buf: &mut BytesMut, eof: bool) -> Option<Result<DecodedFrame, WireError>> {
        // A little more than the cap: a frame may start after separator bytes (qga's newline).
        let head = Bytes::copy_from_slice(&buf[..buf.len().min(self.cap + SLACK)]);
        let before = self.inner.offset();
        let item = if eof {
            self.inner.decode_eof(buf)
        } else {
            self.inner.decode(buf)
        };
        let after = self.inner.offset();
        item.map(|r| {
            r.map(|mut f| {
                let end = f.offset.saturating_add(f.len);
                if f.offset >= before && end <= after {
                    let start = usize::try_from(f.offset - before).unwrap_or(usize::MAX);
                    let len = usize::try_from(f.len).unwrap_or(usize::MAX).min(self.cap);
                    if start < head.len() {
                        f.raw = Some(head.slice(start..head.len().min(start.saturating_add(len))));
                    }
                }
                f
            })
        })
    }
}

impl FrameDecoder for KeepRaw {
    fn decode(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        self.step(buf, false)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Result<DecodedFrame, WireError>> {
        self.step(buf, true)
    }

    fn offset(&self) -> u64 {
        self.inner.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::protocol::Protocol;
    use crate::wire::stream::{DecodeOptions, open_decoder};

    fn decode_all(cap: usize, input: &[u8]) -> Vec<DecodedFrame> {
        let d = open_decoder(&Protocol::Qga, &DecodeOptions::default());
        let mut d = keep_raw(d, cap);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        for _ in 0..100 {
            match d.decode_eof(&mut buf) {
                Some(Ok(f)) => out.push(f),
                Some(Err(e)) => panic!("{e}"),
                None => break,
            }
        }
        out
    }

    #[test]
    fn frames_carry_their_own_bytes_cut_at_the_cap() {
        let input = b"{\"execute\":\"guest-ping\"}\n{\"execute\":\"guest-info\"}\n";
        let frames = decode_all(4096, input);
        assert_eq!(frames.len(), 2);
        let first = frames[0].raw.as_deref().expect("raw");
        assert_eq!(first, b"{\"execute\":\"guest-ping\"}");
        assert_eq!(first.len() as u64, frames[0].len);
        let second = frames[1].raw.as_deref().expect("raw");
        assert!(second.starts_with(b"{\"execute\":\"guest-info\"}"));
        let cut = decode_all(5, input);
        assert_eq!(cut[1].raw.as_deref(), Some(&b"{\"exe"[..]));
        assert!(decode_all(0, input).iter().all(|f| f.raw.is_none()));
    }
}
