//! A classic hex dump (offset, 16 bytes in two groups of 8, ASCII) of a frame's kept bytes.

use guestwire::wire::raw::printable;

/// The dump of `bytes`, the first of a frame of `total` bytes; ends with `… N more bytes` when
/// `bytes` is shorter.
pub fn lines(bytes: &[u8], total: u64) -> Vec<String> {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(16) + 1);
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut hex = String::with_capacity(50);
        for j in 0..16 {
            if j == 8 {
                hex.push(' ');
            }
            match chunk.get(j) {
                Some(b) => hex.push_str(&format!("{b:02x} ")),
                None => hex.push_str("   "),
            }
        }
        let ascii: String = chunk.iter().map(|&b| printable(b)).collect();
        out.push(format!("{:04x}  {hex} |{ascii}|", i * 16));
    }
    let more = total.saturating_sub(bytes.len() as u64);
    if more > 0 {
        out.push(format!("… {more} more bytes"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_sixteen_with_ascii_and_the_cut_said() {
        let bytes: Vec<u8> = (0x30..0x30 + 18).collect();
        let l = lines(&bytes, 20);
        assert_eq!(
            l[0],
            "0000  30 31 32 33 34 35 36 37  38 39 3a 3b 3c 3d 3e 3f  |0123456789:;<=>?|"
        );
        assert_eq!(
            l[1],
            "0010  40 41                                             |@A|"
        );
        assert_eq!(l[2], "… 2 more bytes");
        assert_eq!(
            lines(&[0, 0x7f], 2),
            ["0000  00 7f                                             |..|"]
        );
    }
}
