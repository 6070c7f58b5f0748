//! A bounded hex preview of offending bytes, carried by every [`WireError`](super::WireError).

use std::fmt;

/// How many bytes of offending data an error keeps for display.
pub const PREVIEW_BYTES: usize = 64;

/// Up to [`PREVIEW_BYTES`] bytes of data, shown as hex, plus how many bytes there were in all.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct HexPreview {
    bytes: Vec<u8>,
    total: u64,
}

impl HexPreview {
    /// Keeps the first [`PREVIEW_BYTES`] bytes of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::with_total(data, data.len() as u64)
    }

    /// Keeps the first [`PREVIEW_BYTES`] bytes of `data`, recording that the offending run was
    /// `total` bytes long (it may be longer than what was at hand).
    pub fn with_total(data: &[u8], total: u64) -> Self {
        let keep = data.len().min(PREVIEW_BYTES);
        Self {
            bytes: data[..keep].to_vec(),
            total: total.max(keep as u64),
        }
    }

    /// The bytes kept (at most [`PREVIEW_BYTES`]).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How long the offending run was in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept bytes as lowercase hex with no separators (for JSON).
    pub fn to_hex(&self) -> String {
        to_hex(&self.bytes)
    }
}

/// Bytes from hex digits; whitespace between pairs is ignored (`"51 54 58 01"`).
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    let nibble = |b: u8, at: usize| match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        _ => Err(format!("{:?} at digit {at} is not a hex digit", b as char)),
    };
    digits
        .chunks_exact(2)
        .enumerate()
        .map(|(i, p)| Ok(nibble(p[0], 2 * i)? << 4 | nibble(p[1], 2 * i + 1)?))
        .collect()
}

/// Lowercase hex of `data`, no separators.
pub fn to_hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

impl fmt::Display for HexPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.bytes.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        if self.total > self.bytes.len() as u64 {
            write!(f, " … ({} bytes)", self.total)?;
        }
        Ok(())
    }
}

impl fmt::Debug for HexPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexPreview({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_hex_reads_back_to_hex() {
        assert_eq!(from_hex("51 54 58 01").expect("hex"), b"QTX\x01");
        assert_eq!(to_hex(&from_hex("00ffAb").expect("hex")), "00ffab");
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
    }

    #[test]
    fn preview_is_bounded_and_counts_the_rest() {
        let data = vec![0xabu8; 1000];
        let p = HexPreview::of(&data);
        assert_eq!(p.bytes().len(), PREVIEW_BYTES);
        assert_eq!(p.total(), 1000);
        assert!(p.to_string().ends_with("… (1000 bytes)"));
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(to_hex(&[0x51, 0x54, 0x58, 0x01]), "51545801");
        assert_eq!(HexPreview::of(&[0, 255]).to_string(), "00 ff");
    }
}
