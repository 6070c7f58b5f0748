//! Durations as the fault vocabulary writes them: a decimal number and a unit, `ms` or `s`
//! (`200ms`, `1.5s`, `0s`), exact to the nanosecond. Display gives the shortest exact form, so
//! parse and display round-trip.

use std::time::Duration;

/// What a duration value must look like, for error messages.
pub const EXPECTED_DURATION: &str = "a duration such as 200ms or 1.5s (units: ms, s)";

/// Parses `N[.F]ms` or `N[.F]s` exactly; `None` for anything else (or sub-nanosecond precision).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000u128)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000_000u128)
    } else {
        return None;
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (num.contains('.') && frac.is_empty()) {
        return None;
    }
    let int: u128 = int.parse().ok()?;
    let mut nanos = int.checked_mul(scale)?;
    if !frac.is_empty() {
        let exp = u32::try_from(frac.len()).ok()?;
        let den = 10u128.checked_pow(exp)?;
        let f: u128 = frac.parse().ok()?;
        let part = f.checked_mul(scale)?;
        if !part.is_multiple_of(den) {
            return None;
        }
        nanos = nanos.checked_add(part / den)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    let sub = u32::try_from(nanos % 1_000_000_000).ok()?;
    Some(Duration::new(secs, sub))
}

/// Formats a duration in the form [`parse_duration`] reads back: whole seconds as `Ns`, whole
/// milliseconds as `Nms`, anything finer as a decimal number of seconds.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        let frac = format!("{:09}", d.subsec_nanos());
        format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_exactly() {
        assert_eq!(parse_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("0.000001ms"), Some(Duration::from_nanos(1)));
        for bad in [
            "",
            "5",
            "ms",
            "1.s",
            ".5s",
            "-1s",
            "1m",
            "1.0000000001s",
            "1 s",
            "abc",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_shortest_and_round_trips() {
        for (d, s) in [
            (Duration::from_secs(3), "3s"),
            (Duration::from_millis(200), "200ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(1500), "0.0015s"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(format_duration(d), s);
            assert_eq!(parse_duration(s), Some(d));
        }
    }
}
