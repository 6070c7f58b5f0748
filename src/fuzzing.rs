//! Entry points for the fuzz targets in `fuzz/` (each target is a three-line shim over one of
//! these). The same functions run in the tests over the committed corpora, so a harness cannot
//! drift from the code it exercises.
//!
//! Every decoder entry point checks the invariants all codecs promise, and panics (which libFuzzer
//! reports as a crash) when one breaks:
//! - decoding arbitrary bytes never panics;
//! - any split of the stream gives exactly the same frames and errors as one piece;
//! - the buffer never holds more than one maximum frame plus a constant.

use std::fmt::Debug;

use bytes::BytesMut;

use crate::wire::{Decoded, Decoder};

/// The maximum frame size the fuzz targets configure, small so that bounds are meaningful.
pub const FUZZ_MAX_FRAME: u64 = 4096;

/// Slack allowed on top of one maximum frame in a decoder's buffer: a header, a read chunk and
/// the allocator's rounding.
const BUFFER_SLACK: usize = 64 * 1024;

/// Decodes `chunks` with `decoder`, checking after every drained chunk that the buffer holds at
/// most `max_frame + chunk + slack` bytes (length and capacity).
pub fn decode_bounded<D: Decoder>(
    decoder: &mut D,
    chunks: &[&[u8]],
    max_frame: u64,
) -> Vec<Decoded<D::Message>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(item) = decoder.decode(&mut buf) {
            out.push(item);
        }
        let bound = max_frame as usize + chunk.len() + BUFFER_SLACK;
        assert!(
            buf.len() <= bound && buf.capacity() <= 2 * bound,
            "decoder buffer grew past its bound: len {} capacity {} bound {bound}",
            buf.len(),
            buf.capacity()
        );
    }
    while let Some(item) = decoder.decode_eof(&mut buf) {
        out.push(item);
        assert!(out.len() < 10_000_000, "decode_eof does not terminate");
    }
    out
}

/// Splits `data` into chunks whose sizes follow a pattern seeded by the data itself, so that every
/// input also exercises an irregular split.
pub fn split_points(data: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = data;
    let mut seed = data
        .iter()
        .fold(0x9e37_79b9u32, |h, b| h.rotate_left(5) ^ u32::from(*b));
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed as usize % 97 + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
    }
    chunks
}

/// Checks the common invariants of a decoder on `data`: no panic, the bound, and that one piece,
/// byte-at-a-time and an irregular split all give the same result. Returns the result.
pub fn check_decoder<D, F>(make: F, data: &[u8], max_frame: u64) -> Vec<Decoded<D::Message>>
where
    D: Decoder,
    D::Message: PartialEq + Debug,
    F: Fn() -> D,
{
    let whole = decode_bounded(&mut make(), &[data], max_frame);
    let split = decode_bounded(&mut make(), &split_points(data), max_frame);
    assert_eq!(whole, split, "an irregular split changed the result");
    if data.len() <= 4096 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        let single = decode_bounded(&mut make(), &bytes, max_frame);
        assert_eq!(whole, single, "byte-at-a-time decoding changed the result");
    }
    whole
}

/// Fuzz entry: the generic length-prefixed framer, its configuration taken from the first byte.
pub fn decode_lp(data: &[u8]) {
    use crate::wire::frame::{Endian, LpConfig, LpDecoder};
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let cfg = LpConfig {
        width: [1, 2, 4, 8][(sel & 3) as usize],
        endian: if sel & 4 == 0 {
            Endian::Big
        } else {
            Endian::Little
        },
        magic: if sel & 8 == 0 {
            Vec::new()
        } else {
            b"QTX\x01".to_vec()
        },
        max: FUZZ_MAX_FRAME,
        allow_empty: sel & 16 != 0,
    };
    check_decoder(|| LpDecoder::new(cfg.clone()), rest, FUZZ_MAX_FRAME);
}

/// Fuzz entry: protocol detection never panics and is stable under truncation to its window.
pub fn detect_protocol(data: &[u8]) {
    use crate::wire::detect::{DETECT_WINDOW, detect};
    let d = detect(data);
    assert!(d.handshake_len <= data.len());
    if data.len() > DETECT_WINDOW {
        assert_eq!(
            detect(&data[..DETECT_WINDOW]).handshake_len,
            d.handshake_len
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_cover_the_input() {
        let data: Vec<u8> = (0..=255).cycle().take(5000).collect();
        let chunks = split_points(&data);
        assert!(chunks.len() > 10);
        assert_eq!(chunks.concat(), data);
    }

    #[test]
    fn lp_entry_survives_hostile_input() {
        decode_lp(&[
            0x08, 0xff, 0xff, 0xff, 0xff, b'Q', b'T', b'X', 1, 0, 0, 0, 1, 7,
        ]);
        decode_lp(&[0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        detect_protocol(b"CONNECT 1\n");
    }
}
