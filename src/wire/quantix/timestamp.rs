//! Our own `google.protobuf.Timestamp` (`seconds = 1`, `nanos = 2`, the same wire shape as the
//! well-known type the agent imports), with its JSON form.
//!
//! JSON: an RFC 3339 string in UTC (`2026-11-22T10:00:00.5Z`, the fraction trimmed of trailing
//! zeros) when the instant lies in the years 1 to 9999 and `nanos` is in `0..1e9`, as protobuf's
//! JSON mapping writes it; any other value a peer sends is written as
//! `{"seconds": …, "nanos": …}` so that nothing is lost. Both forms are read back; strings may
//! carry a `±HH:MM` offset. The day/civil-date conversion is Howard Hinnant's `days_from_civil`
//! algorithm; every step on peer-supplied numbers is range-checked first, so no input panics.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};

/// A point in time: seconds since the Unix epoch plus nanoseconds (`google.protobuf.Timestamp`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Non-negative fraction of a second in nanoseconds (0..=999,999,999 when valid).
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// Seconds of 0001-01-01T00:00:00Z, the earliest instant written as an RFC 3339 string.
pub const MIN_RFC3339_SECONDS: i64 = -62_135_596_800;
/// Seconds of 9999-12-31T23:59:59Z, the latest instant written as an RFC 3339 string.
pub const MAX_RFC3339_SECONDS: i64 = 253_402_300_799;

const SECONDS_PER_DAY: i64 = 86_400;
const NANOS_PER_SECOND: i32 = 1_000_000_000;

impl Timestamp {
    /// A timestamp of `seconds` and `nanos`.
    pub fn new(seconds: i64, nanos: i32) -> Self {
        Self { seconds, nanos }
    }

    /// Whether the value can be written as an RFC 3339 string (years 1–9999, nanos in range).
    pub fn is_rfc3339_range(&self) -> bool {
        (MIN_RFC3339_SECONDS..=MAX_RFC3339_SECONDS).contains(&self.seconds)
            && (0..NANOS_PER_SECOND).contains(&self.nanos)
    }

    /// The RFC 3339 UTC form, e.g. `2026-11-22T10:00:00.5Z`, or `None` out of range.
    pub fn to_rfc3339(&self) -> Option<String> {
        if !self.is_rfc3339_range() {
            return None;
        }
        let days = self.seconds.div_euclid(SECONDS_PER_DAY);
        let secs = self.seconds.rem_euclid(SECONDS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let mut out = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        if self.nanos > 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push('Z');
        Some(out)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (1 to 9 fraction digits).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        if !matches!(b.get(10), Some(b'T' | b't' | b' '))
            || b.get(13) != Some(&b':')
            || b.get(16) != Some(&b':')
        {
            return None;
        }
        let year = digits(b, 0, 4)?;
        let month = digits(b, 5, 2)?;
        let day = digits(b, 8, 2)?;
        let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
        if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut pos = 19;
        let mut nanos: i64 = 0;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while b.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            let n = pos - start;
            if n == 0 || n > 9 {
                return None;
            }
            nanos = digits(b, start, n)? * 10_i64.pow((9 - n) as u32);
        }
        let offset = match b.get(pos..)? {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest.get(2) == Some(&b':') => {
                let (oh, om) = (digits(rest, 0, 2)?, digits(rest, 3, 2)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let off = oh * 3600 + om * 60;
                if *sign == b'+' { off } else { -off }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let seconds = days
            .checked_mul(SECONDS_PER_DAY)?
            .checked_add(hour * 3600 + minute * 60 + second)?
            .checked_sub(offset)?;
        Some(Self {
            seconds,
            nanos: i32::try_from(nanos).ok()?,
        })
    }
}

/// `n` ASCII digits of `b` from `at`, as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let run = b.get(at..at.checked_add(n)?)?;
    run.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12, day 1–31).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (only called in RFC 3339 range).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_rfc3339() {
            Some(s) => f.write_str(&s),
            None => write!(f, "{}s+{}ns", self.seconds, self.nanos),
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Some(text) = self.to_rfc3339() {
            return s.serialize_str(&text);
        }
        let mut st = s.serialize_struct("Timestamp", 2)?;
        st.serialize_field("seconds", &self.seconds)?;
        st.serialize_field("nanos", &self.nanos)?;
        st.end()
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl<'de> Visitor<'de> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp string or {\"seconds\": …, \"nanos\": …}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        Timestamp::parse_rfc3339(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Timestamp, A::Error> {
        let mut ts = Timestamp::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "seconds" => ts.seconds = map.next_value()?,
                "nanos" => ts.nanos = map.next_value()?,
                other => return Err(de::Error::unknown_field(other, &["seconds", "nanos"])),
            }
        }
        Ok(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_both_ways() {
        let ts = Timestamp::parse_rfc3339("2026-11-22T10:00:00.5Z").expect("parse");
        assert_eq!(ts.nanos, 500_000_000);
        assert_eq!(ts.to_rfc3339().as_deref(), Some("2026-11-22T10:00:00.5Z"));
        assert_eq!(
            Timestamp::new(0, 0).to_rfc3339().as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            Timestamp::new(MIN_RFC3339_SECONDS, 0)
                .to_rfc3339()
                .as_deref(),
            Some("0001-01-01T00:00:00Z")
        );
        assert_eq!(
            Timestamp::new(MAX_RFC3339_SECONDS, 999_999_999)
                .to_rfc3339()
                .as_deref(),
            Some("9999-12-31T23:59:59.999999999Z")
        );
        assert_eq!(
            Timestamp::new(MAX_RFC3339_SECONDS + 1, 0).to_rfc3339(),
            None
        );
        assert_eq!(Timestamp::new(0, -1).to_rfc3339(), None);
        let leap = Timestamp::parse_rfc3339("2024-02-29T23:59:59+01:00").expect("offset");
        assert_eq!(leap.to_rfc3339().as_deref(), Some("2024-02-29T22:59:59Z"));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00.1234567890Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+1:00",
            "2026-01-01",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_day_of_the_range_round_trips() {
        let mut day = MIN_RFC3339_SECONDS / SECONDS_PER_DAY;
        while day <= MAX_RFC3339_SECONDS / SECONDS_PER_DAY {
            let ts = Timestamp::new(day * SECONDS_PER_DAY + 3723, 1000);
            let text = ts.to_rfc3339().expect("in range");
            assert_eq!(Timestamp::parse_rfc3339(&text), Some(ts), "{text}");
            day += 97;
        }
    }

    #[test]
    fn json_uses_the_string_in_range_and_the_object_outside() {
        let ts = Timestamp::new(1_795_341_600, 500_000_000);
        let v = serde_json::to_value(ts).expect("json");
        assert_eq!(v, serde_json::json!("2026-11-22T10:00:00.5Z"));
        for odd in [
            Timestamp::new(i64::MAX, i32::MIN),
            Timestamp::new(i64::MIN, 0),
            Timestamp::new(0, NANOS_PER_SECOND),
        ] {
            let v = serde_json::to_value(odd).expect("json");
            assert_eq!(
                v,
                serde_json::json!({"seconds": odd.seconds, "nanos": odd.nanos})
            );
            assert_eq!(serde_json::from_value::<Timestamp>(v).expect("back"), odd);
        }
        let from_obj: Timestamp =
            serde_json::from_str(r#"{"seconds": 5, "nanos": 7}"#).expect("object form");
        assert_eq!(from_obj, Timestamp::new(5, 7));
        assert!(serde_json::from_str::<Timestamp>(r#""yesterday""#).is_err());
    }
}
