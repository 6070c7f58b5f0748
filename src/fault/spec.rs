//! [`FaultSpec`]: one fault as the CLI writes it, `--fault 'kind[:key=value,...]'`
//! (`malformed:<variant>[,key=value,...]` for malformed frames), and as a scenario's TOML table
//! writes it (`kind = "latency"`, `latency = "200ms"`, `direction = "to_guest"`, …: the same keys).
//! Parse and display round-trip; unknown keys and bad values are [`FaultParseError`]s.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::duration::{EXPECTED_DURATION, format_duration, parse_duration};
use super::error::FaultParseError;
use super::kind::{FaultKind, MalformedVariant};
use super::trigger::{TRIGGER_KEYS, Trigger};
use crate::wire::Direction;

/// Which way a fault applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum FaultDirection {
    /// Host → guest only.
    ToGuest,
    /// Guest → host only.
    ToHost,
    /// Both ways (the default).
    #[default]
    Both,
}

impl FaultDirection {
    /// Whether a stream travelling `d` is affected.
    pub fn includes(self, d: Direction) -> bool {
        matches!(
            (self, d),
            (Self::Both, _)
                | (Self::ToGuest, Direction::ToGuest)
                | (Self::ToHost, Direction::ToHost)
        )
    }

    /// The name, as in `direction=`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ToGuest => "to_guest",
            Self::ToHost => "to_host",
            Self::Both => "both",
        }
    }
}

/// One fault: what, which way, when.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// What the fault does.
    pub kind: FaultKind,
    /// Which way it applies.
    pub direction: FaultDirection,
    /// When it fires.
    pub trigger: Trigger,
}

impl FaultSpec {
    /// A fault that fires always, both ways.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            direction: FaultDirection::Both,
            trigger: Trigger::default(),
        }
    }

    /// Builds a spec from a kind head (`latency`, `malformed:bad_magic`) and its `key=value`
    /// items, in order; the shared core of the CLI and serde forms.
    pub fn from_parts<'a>(
        head: &str,
        items: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FaultParseError> {
        let mut spec = Self::new(parse_head(head)?);
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in items {
            if seen.contains(&key) {
                return Err(FaultParseError::DuplicateKey(key.to_string()));
            }
            seen.push(key);
            spec.set(key, value)?;
        }
        Ok(spec)
    }

    /// The kind head: the kind's name, with `:<variant>` for `malformed`.
    pub fn head(&self) -> String {
        match &self.kind {
            FaultKind::Malformed(v) => format!("malformed:{v}"),
            k => k.name().to_string(),
        }
    }

    /// Every `key=value` pair of the spec (attributes, then `direction` unless `both`, then the
    /// trigger's set conditions), as [`Display`](fmt::Display) writes them.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = kind_pairs(&self.kind);
        if self.direction != FaultDirection::Both {
            out.push(("direction", self.direction.name().to_string()));
        }
        let t = &self.trigger;
        let num = |v: Option<u64>| v.map(|n| n.to_string());
        for (key, value) in TRIGGER_KEYS.iter().zip([
            num(t.after_bytes),
            num(t.after_frames),
            t.on_type.clone(),
            t.at.map(format_duration),
            t.probability.map(|p| p.to_string()),
            num(t.times),
        ]) {
            if let Some(v) = value {
                out.push((key, v));
            }
        }
        out
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), FaultParseError> {
        let t = &mut self.trigger;
        match key {
            "direction" => {
                self.direction = match value {
                    "to_guest" => FaultDirection::ToGuest,
                    "to_host" => FaultDirection::ToHost,
                    "both" => FaultDirection::Both,
                    _ => return Err(bad(key, value, "to_guest, to_host or both")),
                }
            }
            "after_bytes" => t.after_bytes = Some(count(key, value)?),
            "after_frames" => t.after_frames = Some(count(key, value)?),
            "times" => t.times = Some(count(key, value)?),
            "on_type" => {
                if value.is_empty() || value.contains([',', '=', ':']) {
                    return Err(bad(key, value, "a frame type name such as ping or log"));
                }
                t.on_type = Some(value.to_string());
            }
            "at" => t.at = Some(duration(key, value)?),
            "probability" => {
                let p: f64 = value
                    .parse()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| bad(key, value, "a probability from 0 to 1"))?;
                t.probability = Some(p);
            }
            _ => set_attribute(&mut self.kind, key, value)?,
        }
        Ok(())
    }
}

fn bad(key: &str, value: &str, expected: &'static str) -> FaultParseError {
    FaultParseError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        expected,
    }
}

fn count(key: &str, value: &str) -> Result<u64, FaultParseError> {
    value
        .parse()
        .map_err(|_| bad(key, value, "a whole number (0 or more)"))
}

fn duration(key: &str, value: &str) -> Result<Duration, FaultParseError> {
    parse_duration(value).ok_or_else(|| bad(key, value, EXPECTED_DURATION))
}

fn parse_head(head: &str) -> Result<FaultKind, FaultParseError> {
    if head.is_empty() {
        return Err(FaultParseError::Empty);
    }
    if head == "malformed" {
        return Err(FaultParseError::MissingVariant);
    }
    if let Some(v) = head.strip_prefix("malformed:") {
        return MalformedVariant::from_name(v)
            .map(FaultKind::Malformed)
            .ok_or_else(|| FaultParseError::UnknownVariant(v.to_string()));
    }
    FaultKind::default_of(head).ok_or_else(|| FaultParseError::UnknownKind(head.to_string()))
}

fn set_attribute(kind: &mut FaultKind, key: &str, value: &str) -> Result<(), FaultParseError> {
    let name = kind.name();
    let keys = kind.attribute_keys();
    match (kind, key) {
        (FaultKind::Latency { latency: d, .. }, "latency")
        | (FaultKind::Latency { jitter: d, .. }, "jitter")
        | (FaultKind::Slicer { delay: d, .. }, "delay")
        | (FaultKind::SlowClose { delay: d }, "delay")
        | (FaultKind::Timeout { timeout: d }, "timeout")
        | (FaultKind::ResetPeer { timeout: d }, "timeout")
        | (FaultKind::VmPause { duration: d }, "duration") => *d = duration(key, value)?,
        (FaultKind::Bandwidth { rate: n }, "rate")
        | (
            FaultKind::Slicer {
                average_size: n, ..
            },
            "average_size",
        )
        | (
            FaultKind::Slicer {
                size_variation: n, ..
            },
            "size_variation",
        )
        | (FaultKind::LimitData { bytes: n }, "bytes") => *n = count(key, value)?,
        _ => {
            let expected: Vec<&str> = keys
                .iter()
                .copied()
                .chain(["direction"])
                .chain(TRIGGER_KEYS.iter().copied())
                .collect();
            return Err(FaultParseError::UnknownKey {
                kind: name,
                key: key.to_string(),
                expected: expected.join(", "),
            });
        }
    }
    Ok(())
}

fn kind_pairs(kind: &FaultKind) -> Vec<(&'static str, String)> {
    let d = |d: &Duration| format_duration(*d);
    match kind {
        FaultKind::Latency { latency, jitter } => {
            vec![("latency", d(latency)), ("jitter", d(jitter))]
        }
        FaultKind::Bandwidth { rate } => vec![("rate", rate.to_string())],
        FaultKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => vec![
            ("average_size", average_size.to_string()),
            ("size_variation", size_variation.to_string()),
            ("delay", d(delay)),
        ],
        FaultKind::SlowClose { delay } => vec![("delay", d(delay))],
        FaultKind::Timeout { timeout } | FaultKind::ResetPeer { timeout } => {
            vec![("timeout", d(timeout))]
        }
        FaultKind::LimitData { bytes } => vec![("bytes", bytes.to_string())],
        FaultKind::VmPause { duration } => vec![("duration", d(duration))],
        _ => Vec::new(),
    }
}

impl FromStr for FaultSpec {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (head, rest) = match s.split_once(':') {
            Some(("malformed", rest)) => {
                let (variant, rest) = rest.split_once(',').unwrap_or((rest, ""));
                if variant.is_empty() {
                    return Err(FaultParseError::MissingVariant);
                }
                (format!("malformed:{variant}"), rest)
            }
            Some((head, rest)) => (head.to_string(), rest),
            None => (s.to_string(), ""),
        };
        let items = rest
            .split(',')
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.split_once('=')
                    .ok_or_else(|| FaultParseError::NotKeyValue(item.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_parts(&head, items)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.head())?;
        let sep = if matches!(self.kind, FaultKind::Malformed(_)) {
            ","
        } else {
            ":"
        };
        for (i, (key, value)) in self.pairs().iter().enumerate() {
            write!(f, "{}{key}={value}", if i == 0 { sep } else { "," })?;
        }
        Ok(())
    }
}

/// A scalar of a scenario's fault table: TOML or JSON numbers, strings and booleans.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(u64),
    Float(f64),
    Str(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Str(s) => f.write_str(s),
        }
    }
}

/// Deserialises the table form: a `kind` key (`"malformed:bad_magic"` for malformed frames) and
/// the same keys as the CLI form, with strings or numbers as values.
impl<'de> serde::Deserialize<'de> for FaultSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = BTreeMap::<String, Scalar>::deserialize(d)?;
        let kind = match table.remove("kind") {
            Some(Scalar::Str(k)) => k,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "kind must be a string, got {other}"
                )));
            }
            None => return Err(D::Error::custom("missing key \"kind\"")),
        };
        let values: Vec<(String, String)> =
            table.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        Self::from_parts(&kind, values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(D::Error::custom)
    }
}

/// Serialises the table form that [`Deserialize`](serde::Deserialize) reads: `kind` and the
/// `key=value` pairs of [`FaultSpec::pairs`], counts as numbers and everything else as strings.
impl serde::Serialize for FaultSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let pairs = self.pairs();
        let mut map = s.serialize_map(Some(pairs.len() + 1))?;
        map.serialize_entry("kind", &self.head())?;
        for (key, value) in pairs {
            match value.parse::<u64>() {
                Ok(n) if key != "on_type" => map.serialize_entry(key, &n)?,
                _ => match value.parse::<f64>() {
                    Ok(x) if key == "probability" => map.serialize_entry(key, &x)?,
                    _ => map.serialize_entry(key, &value)?,
                },
            }
        }
        map.end()
    }
}
