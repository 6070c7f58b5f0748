//! Cheap, bounded guesses about what a run of bytes is: protobuf wire format, JSON, text. Used by
//! every codec to name a framing mismatch ("this looks like protobuf") and by protocol detection.

/// Walks `data` as protobuf wire format: true when the whole run parses as fields with sane
/// numbers (1..=max_field) and wire types, and lengths that fit. Empty input is not protobuf.
pub fn looks_like_protobuf(data: &[u8], max_field: u64) -> bool {
    if data.is_empty() {
        return false;
    }
    let mut pos = 0usize;
    let mut fields = 0u32;
    while pos < data.len() {
        let Some((key, n)) = read_varint(&data[pos..]) else {
            return false;
        };
        pos += n;
        let field = key >> 3;
        if field == 0 || field > max_field {
            return false;
        }
        match key & 7 {
            0 => match read_varint(&data[pos..]) {
                Some((_, n)) => pos += n,
                None => return false,
            },
            1 => pos = pos.saturating_add(8),
            2 => match read_varint(&data[pos..]) {
                Some((len, n)) => {
                    let Ok(len) = usize::try_from(len) else {
                        return false;
                    };
                    pos = pos.saturating_add(n).saturating_add(len);
                }
                None => return false,
            },
            5 => pos = pos.saturating_add(4),
            _ => return false,
        }
        if pos > data.len() {
            return false;
        }
        fields += 1;
        if fields > 100_000 {
            break;
        }
    }
    true
}

/// Reads one protobuf varint: the value and how many bytes it took.
pub fn read_varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, b) in data.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// True when `data` (after leading ASCII white space) starts like a JSON object or array.
pub fn looks_like_json(data: &[u8]) -> bool {
    let t = trim_start(data);
    matches!(t.first(), Some(b'{' | b'['))
        && t.get(1).is_none_or(|b| {
            b.is_ascii_whitespace() || matches!(b, b'"' | b'}' | b']' | b'{' | b'[')
        })
}

/// True when every byte of a non-empty `data` is printable ASCII or common white space.
pub fn looks_like_text(data: &[u8]) -> bool {
    !data.is_empty()
        && data
            .iter()
            .all(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

fn trim_start(data: &[u8]) -> &[u8] {
    let skip = data.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &data[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_walk() {
        // field 1 (string "ab"), field 10 (empty message)
        assert!(looks_like_protobuf(
            &[0x0a, 0x02, b'a', b'b', 0x52, 0x00],
            200
        ));
        assert!(!looks_like_protobuf(b"{\"type\":\"log\"}", 200));
        assert!(
            !looks_like_protobuf(&[0x0a, 0x05, b'a'], 200),
            "length past the end"
        );
        assert!(!looks_like_protobuf(&[], 200));
    }

    #[test]
    fn json_and_text() {
        assert!(looks_like_json(b"  {\"a\":1}"));
        assert!(looks_like_json(b"{}"));
        assert!(!looks_like_json(&[0x7b, 0x01]));
        assert!(looks_like_text(b"CONNECT 52\n"));
        assert!(!looks_like_text(&[0x51, 0x54, 0x58, 0x01]));
    }
}
