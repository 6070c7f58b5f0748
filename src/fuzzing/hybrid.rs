//! The hybrid-vsock handshake entry: the VMM side ([`ConnectParser`], one flavour at a time, fed
//! reads whose sizes come from the data), the client side ([`OkParser`]) and the captured-stream
//! [`HandshakeDecoder`].

use bytes::BytesMut;

use super::{FUZZ_MAX_FRAME, check_decoder, describe_all, selector, split_points};
use crate::wire::WireError;
use crate::wire::codec::Direction;
use crate::wire::hybrid::{
    CONNECT_BUF_SIZE, ConnectOutcome, ConnectParser, Flavour, HandshakeDecoder, MAX_OK_LINE,
    OkParser, RejectReason, connect_line, parse_connect_line, parse_ok_line,
};

/// Fuzz entry: the hybrid-vsock handshake. The first byte picks the side: 0–2 a VMM's
/// [`ConnectParser`] (Firecracker, Cloud Hypervisor, vhost-device), 3 the client's [`OkParser`],
/// 4 the [`HandshakeDecoder`] (bit 3: the `OK` line rather than `CONNECT`).
pub fn decode_hybrid(data: &[u8]) {
    let Some((sel, rest)) = selector(data) else {
        return;
    };
    match sel % 5 {
        i @ 0..=2 => check_connect(Flavour::ALL[usize::from(i)], rest),
        3 => check_ok(rest),
        _ => {
            let direction = if sel & 8 == 0 {
                Direction::ToGuest
            } else {
                Direction::ToHost
            };
            // The decoder leaves everything after its line in the buffer, by design.
            let bound = FUZZ_MAX_FRAME.max(rest.len() as u64);
            let items = check_decoder(|| HandshakeDecoder::new(direction), rest, bound);
            assert!(items.len() <= 1, "more than one handshake line: {items:?}");
            describe_all(&items);
        }
    }
}

/// The final outcome of feeding `reads` to a parser (then EOF if it is still undecided), with the
/// index of the read that decided it.
fn run_connect(flavour: Flavour, reads: &[&[u8]]) -> (ConnectOutcome, Option<usize>) {
    let mut parser = ConnectParser::new(flavour);
    let mut decided = None;
    let mut outcome = ConnectOutcome::NeedMore;
    for (i, read) in reads.iter().enumerate() {
        outcome = parser.on_read(read);
        if outcome.is_final() {
            decided = Some(i);
            break;
        }
    }
    if decided.is_none() {
        outcome = parser.on_eof();
        assert!(
            matches!(
                outcome,
                ConnectOutcome::Reject {
                    reason: RejectReason::Eof,
                    ..
                }
            ),
            "EOF before a decision must reject: {outcome:?}"
        );
    }
    assert!(parser.is_done());
    assert_eq!(
        parser.on_read(b"CONNECT 1\n"),
        ConnectOutcome::Reject {
            reason: RejectReason::Finished,
            line: Vec::new()
        },
        "a finished parser must refuse further reads"
    );
    (outcome, decided)
}

/// `line` in the form [`connect_line`] writes it: upper-case keyword, no `\r`, no leading zeros.
fn canonical_connect(line: &[u8]) -> Vec<u8> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let digits = body.get(b"connect ".len()..).unwrap_or_default();
    let first = digits
        .iter()
        .position(|d| *d != b'0')
        .unwrap_or(digits.len().saturating_sub(1));
    let mut out = b"CONNECT ".to_vec();
    out.extend_from_slice(digits.get(first..).unwrap_or_default());
    out.push(b'\n');
    out
}

/// A VMM's `CONNECT` parser never panics, decides within [`CONNECT_BUF_SIZE`] bytes, never reads
/// past the `\n`, and accepts only a port that round-trips through [`connect_line`]; the
/// flavours that keep partial commands decide the same whatever the reads.
fn check_connect(flavour: Flavour, data: &[u8]) {
    let reads = split_points(data);
    let (outcome, decided) = run_connect(flavour, &reads);
    match &outcome {
        ConnectOutcome::Connect { port, rest } => {
            let i = decided.expect("a connect comes from a read");
            let read = reads[i];
            assert!(read.ends_with(rest), "rest is not the end of the read");
            let fed: usize = reads[..=i].iter().map(|r| r.len()).sum();
            let line = &data[..fed - rest.len()];
            assert!(line.len() <= CONNECT_BUF_SIZE, "a command past the buffer");
            assert_eq!(
                memchr::memchr(b'\n', line),
                Some(line.len() - 1),
                "the command must end at its first newline"
            );
            if flavour == Flavour::Firecracker {
                assert_eq!(i, 0, "Firecracker decides on the first read");
            }
            assert_eq!(parse_connect_line(line), Ok(*port));
            let canonical = connect_line(*port);
            assert_eq!(
                canonical_connect(line),
                canonical,
                "accepted port {port} does not round-trip through connect_line"
            );
            let mut fresh = ConnectParser::new(flavour);
            assert_eq!(
                fresh.on_read(&canonical),
                ConnectOutcome::Connect {
                    port: *port,
                    rest: Vec::new()
                }
            );
        }
        ConnectOutcome::Reject { line, .. } => {
            assert!(
                line.len() <= CONNECT_BUF_SIZE,
                "a rejected line past the buffer"
            );
        }
        ConnectOutcome::NeedMore => unreachable!("run_connect returns a final outcome"),
    }
    if !flavour.keeps_partial_commands() || data.is_empty() {
        return;
    }
    let (whole, _) = run_connect(flavour, &[data]);
    match (&outcome, &whole) {
        (ConnectOutcome::Connect { port, rest }, ConnectOutcome::Connect { port: p, rest: r }) => {
            assert_eq!(port, p, "the split changed the port");
            let i = decided.expect("a connect comes from a read");
            let after: Vec<u8> = [&rest[..], &reads[i + 1..].concat()].concat();
            assert_eq!(&after, r, "the split changed what follows the command");
        }
        (a, b) => assert_eq!(a, b, "the split changed the outcome"),
    }
}

/// Feeds `reads` to an [`OkParser`] (then the end of the stream): its result and what is left.
fn run_ok(reads: &[&[u8]]) -> (Result<u32, WireError>, BytesMut) {
    let mut parser = OkParser::new();
    let mut buf = BytesMut::new();
    let mut result = None;
    for read in reads {
        buf.extend_from_slice(read);
        if result.is_none() {
            result = parser.parse(&mut buf);
        }
    }
    let result = match result {
        Some(r) => r,
        None => parser.parse_eof(&mut buf).expect("EOF gives a result"),
    };
    assert!(parser.is_done());
    assert!(parser.parse(&mut buf).is_none(), "a second result");
    assert!(
        parser.parse_eof(&mut buf).is_none(),
        "a second result at EOF"
    );
    (result, buf)
}

/// The client's `OK` parser gives the same result and leaves the same bytes whatever the reads,
/// consumes at most [`MAX_OK_LINE`] bytes, and accepts only ports that round-trip.
fn check_ok(data: &[u8]) {
    let whole = run_ok(&[data]);
    assert_eq!(
        whole,
        run_ok(&split_points(data)),
        "a split changed the OK reply"
    );
    if data.len() <= 512 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(whole, run_ok(&bytes), "byte-at-a-time changed the OK reply");
    }
    let (result, left) = whole;
    assert!(
        data.ends_with(&left),
        "the parser must leave the tail of the stream"
    );
    if let Ok(port) = result {
        let consumed = data.len() - left.len();
        assert!(consumed <= MAX_OK_LINE);
        assert_eq!(parse_ok_line(&data[..consumed]), Ok(port));
        assert_eq!(parse_ok_line(format!("OK {port}\n").as_bytes()), Ok(port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_side_survives_real_and_hostile_lines() {
        for sel in 0..10u8 {
            for line in [
                &b"CONNECT 1024\nhello"[..],
                b"connect 0007\r\n",
                b"CONNECT 4294967296\n",
                b"OK 1073741824\n\x00\x00\x00\x02{}",
                b"OK1\n",
                b"connect",
                &[b'x'; 100],
            ] {
                decode_hybrid(&[&[sel][..], line].concat());
            }
        }
    }

    #[test]
    fn canonical_form_of_accepted_lines() {
        assert_eq!(canonical_connect(b"connect 0007\r\n"), b"CONNECT 7\n");
        assert_eq!(canonical_connect(b"CONNECT 0\n"), b"CONNECT 0\n");
        assert_eq!(canonical_connect(b"Connect 000\n"), b"CONNECT 0\n");
    }
}
