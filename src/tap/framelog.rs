//! [`FrameLog`]: turns the bytes a tap forwards into decoded frames, per connection and
//! direction, for the tap's live log. Pure: bytes and times in, [`LoggedFrame`]s out.
//!
//! With `--protocol auto` each direction's protocol is guessed from its first bytes
//! ([`detect`]) once [`DETECT_WINDOW`] bytes or the end of the stream are seen; a leading
//! hybrid-vsock `CONNECT`/`OK` line is decoded as a frame of its own. Memory per direction is the
//! decoder's unfinished frame (bounded by its maximum frame size) plus the detection window.

use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;

use crate::wire::Direction;
use crate::wire::detect::{DETECT_WINDOW, detect, handshake_line_len};
use crate::wire::error::WireError;
use crate::wire::keep_raw::keep_raw;
use crate::wire::protocol::Protocol;
use crate::wire::stream::{
    DecodeOptions, FrameDecoder, open_decoder, open_decoder_detecting_handshake,
};

/// One frame (or one framing error) seen on a tapped connection.
#[derive(Debug, Clone)]
pub struct LoggedFrame {
    /// Time since the tap started.
    pub at: Duration,
    /// The tap's connection number (1, 2, …).
    pub conn: u64,
    /// Which way it went.
    pub direction: Direction,
    /// The frame, or the error where a frame should have been.
    pub item: Result<crate::wire::DecodedFrame, WireError>,
}

impl LoggedFrame {
    /// One line: time, connection, arrow, type, size and key fields (or the error).
    pub fn line(&self) -> String {
        let t = self.at.as_secs_f64();
        let arrow = match self.direction {
            Direction::ToGuest => "host → guest",
            Direction::ToHost => "guest → host",
        };
        match &self.item {
            Ok(f) => format!(
                "{t:>10.6} #{} {arrow} {} {} B {}",
                self.conn, f.type_name, f.len, f.summary
            ),
            Err(e) => format!("{t:>10.6} #{} {arrow} ERROR {e}", self.conn),
        }
    }

    /// The frame as a JSON object (`time`, `conn`, `direction`, `offset`, `len`, `type`,
    /// `message`), or an error object (`error`, `kind`, `offset`, `hex`).
    pub fn to_json(&self) -> serde_json::Value {
        let dir = self.direction.name();
        let mut v = match &self.item {
            Ok(f) => serde_json::json!({
                "offset": f.offset, "len": f.len, "type": f.type_name, "summary": f.summary,
                "message": f.message,
            }),
            Err(e) => e.to_json(),
        };
        if let Some(obj) = v.as_object_mut() {
            obj.insert("time".into(), self.at.as_secs_f64().into());
            obj.insert("conn".into(), self.conn.into());
            obj.insert("direction".into(), dir.into());
        }
        v
    }
}

/// One direction of one connection.
enum Side {
    /// Waiting for enough bytes to guess the protocol.
    Detecting(BytesMut),
    /// Decoding.
    Decoding {
        decoder: Box<dyn FrameDecoder>,
        buf: BytesMut,
    },
    /// A framing error that the decoder cannot recover from: later bytes are not decoded.
    Stopped,
}

/// The frame decoders of every tapped connection.
pub struct FrameLog {
    protocol: Option<Protocol>,
    raw: usize,
    sides: HashMap<(u64, bool), Side>,
}

impl std::fmt::Debug for FrameLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameLog")
            .field("protocol", &self.protocol)
            .field("streams", &self.sides.len())
            .finish()
    }
}

fn key(conn: u64, d: Direction) -> (u64, bool) {
    (conn, d == Direction::ToGuest)
}

impl FrameLog {
    /// A log decoding `protocol`, or guessing each direction's when `None` (`auto`).
    pub fn new(protocol: Option<Protocol>) -> Self {
        Self {
            protocol,
            raw: 0,
            sides: HashMap::new(),
        }
    }

    /// Attach each frame's first `cap` bytes to it ([`crate::wire::DecodedFrame::raw`], for a
    /// hex dump); 0 (the default) copies nothing.
    pub fn keep_raw(mut self, cap: usize) -> Self {
        self.raw = cap;
        self
    }

    /// Feeds bytes forwarded on `conn` in `direction`; returns the frames they completed.
    pub fn push(
        &mut self,
        conn: u64,
        direction: Direction,
        bytes: &[u8],
        at: Duration,
    ) -> Vec<LoggedFrame> {
        let protocol = self.protocol.clone();
        let raw = self.raw;
        let side = self
            .sides
            .entry(key(conn, direction))
            .or_insert_with(|| match &protocol {
                Some(p) => Side::Decoding {
                    decoder: keep_raw(
                        open_decoder_detecting_handshake(
                            p,
                            &DecodeOptions {
                                direction: Some(direction),
                                ..DecodeOptions::default()
                            },
                        ),
                        raw,
                    ),
                    buf: BytesMut::new(),
                },
                None => Side::Detecting(BytesMut::new()),
            });
        let mut out = Vec::new();
        if let Side::Detecting(seen) = side {
            seen.extend_from_slice(bytes);
            let after_line = handshake_line_len(seen);
            if seen.len() < DETECT_WINDOW.min(after_line + 64) {
                return out;
            }
            let buf = std::mem::take(seen);
            *side = start_decoding(buf, direction, raw);
        } else if let Side::Decoding { buf, .. } = side {
            buf.extend_from_slice(bytes);
        }
        drain(side, conn, direction, at, false, &mut out);
        out
    }

    /// The stream `direction` of `conn` ended: decodes what is left and forgets the stream.
    pub fn finish(&mut self, conn: u64, direction: Direction, at: Duration) -> Vec<LoggedFrame> {
        let mut out = Vec::new();
        if let Some(mut side) = self.sides.remove(&key(conn, direction)) {
            if let Side::Detecting(seen) = side {
                if seen.is_empty() {
                    return out;
                }
                side = start_decoding(seen, direction, self.raw);
            }
            drain(&mut side, conn, direction, at, true, &mut out);
        }
        out
    }
}

fn decoder_for(
    protocol: &Protocol,
    direction: Direction,
    handshake: bool,
) -> Box<dyn FrameDecoder> {
    open_decoder(
        protocol,
        &DecodeOptions {
            direction: Some(direction),
            max_frame: None,
            handshake,
            lean: false,
        },
    )
}

fn start_decoding(buf: BytesMut, direction: Direction, raw: usize) -> Side {
    let guess = detect(&buf);
    let protocol = guess.protocol.unwrap_or(Protocol::Raw);
    Side::Decoding {
        decoder: keep_raw(
            decoder_for(&protocol, direction, guess.handshake_len > 0),
            raw,
        ),
        buf,
    }
}

fn drain(
    side: &mut Side,
    conn: u64,
    direction: Direction,
    at: Duration,
    eof: bool,
    out: &mut Vec<LoggedFrame>,
) {
    let Side::Decoding { decoder, buf } = side else {
        return;
    };
    // Bounded: a frame consumes bytes; an error that consumed nothing stops the stream's log
    // (the decoder cannot go on), so the loop ends within the buffer's length.
    loop {
        let (offset, len) = (decoder.offset(), buf.len());
        let item = if eof {
            decoder.decode_eof(buf)
        } else {
            decoder.decode(buf)
        };
        let Some(item) = item else { return };
        let stuck = item.is_err() && decoder.offset() == offset && buf.len() == len;
        out.push(LoggedFrame {
            at,
            conn,
            direction,
            item,
        });
        if stuck {
            *side = Side::Stopped;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUANTIX_TO_HOST: &[u8] = include_bytes!("../../fixtures/streams/quantix-to-host.bin");

    #[test]
    fn auto_detects_quantix_and_logs_the_same_frames_whatever_the_chunking() {
        let whole = {
            let mut log = FrameLog::new(None);
            let mut v = log.push(1, Direction::ToHost, QUANTIX_TO_HOST, Duration::ZERO);
            v.extend(log.finish(1, Direction::ToHost, Duration::ZERO));
            v
        };
        let mut log = FrameLog::new(None);
        let mut bytewise = Vec::new();
        for b in QUANTIX_TO_HOST {
            bytewise.extend(log.push(1, Direction::ToHost, &[*b], Duration::ZERO));
        }
        bytewise.extend(log.finish(1, Direction::ToHost, Duration::ZERO));
        let types = |v: &[LoggedFrame]| -> Vec<String> {
            v.iter()
                .map(|f| {
                    f.item
                        .as_ref()
                        .map_or("ERR".into(), |f| f.type_name.clone())
                })
                .collect()
        };
        assert!(
            types(&whole).contains(&"agent_ready".to_string()),
            "{:?}",
            types(&whole)
        );
        assert!(whole.iter().all(|f| f.item.is_ok()));
        assert_eq!(types(&whole), types(&bytewise));
    }

    #[test]
    fn a_connect_line_is_a_frame_of_its_own() {
        let mut log = FrameLog::new(Some(Protocol::Quantix));
        let mut stream = b"OK 1073741824\n".to_vec();
        stream.extend_from_slice(QUANTIX_TO_HOST);
        let v = log.push(3, Direction::ToHost, &stream, Duration::ZERO);
        let first = v
            .first()
            .and_then(|f| f.item.as_ref().ok())
            .map(|f| f.type_name.clone());
        assert_eq!(first.as_deref(), Some("ok"));
        assert!(v[0].line().contains("#3 guest → host"));
    }

    #[test]
    fn hostile_bytes_give_errors_not_panics_and_memory_stays_bounded() {
        let mut log = FrameLog::new(Some(Protocol::Quantix));
        let junk = vec![0x51u8; 200_000];
        let v = log.push(1, Direction::ToHost, &junk, Duration::ZERO);
        assert!(v.iter().any(|f| f.item.is_err()));
        let _ = log.finish(1, Direction::ToHost, Duration::ZERO);
    }
}
