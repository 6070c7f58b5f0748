//! `fcexec`: the Firecracker exec agent of seed 001 (length-prefixed JSON over hybrid vsock,
//! default guest port 1024).
//!
//! Framing is a u32 big-endian length and a UTF-8 JSON payload of at most 16 MiB
//! ([`DEFAULT_MAX_FRAME`](super::frame::DEFAULT_MAX_FRAME), configurable), with no magic, so there
//! is nothing to resynchronise on: after an oversize length or a framing mismatch the decoder
//! reports it once and discards the rest of the stream.
//!
//! The host sends one [`GuestRequest`] (a JSON object with no `type` key); the guest answers with
//! any number of `{"type":"log","line":"…"}` and then one
//! `{"type":"result","response":{"exit_code","output","error","log_lines"}}`. An unknown `type`
//! or a result without a response is a protocol error. Field names and types follow the seed's Go
//! structs: `[]byte` fields travel as standard base64 strings (`null` for a nil slice), maps and
//! strings may be `null`, unknown keys are ignored.
//!
//! The codec lives in [`codec`]; this file holds the messages and their [`Describe`] view.

pub mod codec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::codec::{Describe, Direction};

pub use codec::{FcexecDecoder, FcexecEncoder, decode_payload};

/// The default guest vsock port of the seed 001 agent.
pub const DEFAULT_PORT: u32 = 1024;

/// The host's workload request (host → guest), seed 001's `GuestRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuestRequest {
    /// The language runtime, e.g. `python`.
    #[serde(deserialize_with = "null_default")]
    pub runtime: String,
    /// Inline source code.
    #[serde(deserialize_with = "null_default")]
    pub code: String,
    /// A code archive (base64 in JSON, as Go encodes `[]byte`).
    #[serde(with = "go_bytes")]
    pub code_archive: Vec<u8>,
    /// Standard input for the workload (base64 in JSON).
    #[serde(with = "go_bytes")]
    pub input: Vec<u8>,
    /// Environment variables.
    #[serde(deserialize_with = "null_default")]
    pub env: BTreeMap<String, String>,
    /// The file or function to run.
    #[serde(deserialize_with = "null_default")]
    pub entrypoint: String,
    /// The workload's timeout in seconds.
    #[serde(deserialize_with = "null_default")]
    pub timeout_s: u64,
}

/// The final result (guest → host), the `response` of a `{"type":"result"}` message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuestResponse {
    /// The workload's exit code.
    #[serde(deserialize_with = "null_default")]
    pub exit_code: i32,
    /// What the workload printed.
    #[serde(deserialize_with = "null_default")]
    pub output: String,
    /// An error description (empty when none).
    #[serde(deserialize_with = "null_default")]
    pub error: String,
    /// The log lines as the agent reported them, or `None` when the key was absent (or `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_lines: Option<LogLines>,
}

/// `log_lines` as sent: the real agent's shape is not documented, so both a count and a list
/// are accepted and kept as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLines {
    /// A number of lines.
    Count(u64),
    /// The lines themselves.
    Lines(Vec<String>),
}

impl LogLines {
    /// How many lines, whichever form was sent.
    pub fn len(&self) -> u64 {
        match self {
            Self::Count(n) => *n,
            Self::Lines(lines) => lines.len() as u64,
        }
    }

    /// Whether there are no lines.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Serialize for LogLines {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Count(n) => s.serialize_u64(*n),
            Self::Lines(lines) => lines.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LogLines {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LogLines;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a line count or a list of strings")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<LogLines, E> {
                Ok(LogLines::Count(n))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LogLines, A::Error> {
                let mut lines = Vec::new();
                while let Some(line) = seq.next_element::<String>()? {
                    lines.push(line);
                }
                Ok(LogLines::Lines(lines))
            }
        }
        d.deserialize_any(V)
    }
}

/// One fcexec message, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcexecMessage {
    /// The workload request (host → guest).
    Request(GuestRequest),
    /// One log line (guest → host).
    Log {
        /// The line.
        line: String,
    },
    /// The final result (guest → host).
    Result(GuestResponse),
}

/// The wire shape of the guest's messages (the request has no `type` tag).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum GuestOut<'a> {
    Log { line: &'a str },
    Result { response: &'a GuestResponse },
}

impl FcexecMessage {
    /// The direction this message travels.
    pub fn direction(&self) -> Direction {
        match self {
            Self::Request(_) => Direction::ToGuest,
            Self::Log { .. } | Self::Result(_) => Direction::ToHost,
        }
    }

    /// The JSON payload as it goes on the wire (without the length prefix).
    pub fn to_payload(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Self::Request(req) => serde_json::to_vec(req),
            Self::Log { line } => serde_json::to_vec(&GuestOut::Log { line }),
            Self::Result(response) => serde_json::to_vec(&GuestOut::Result { response }),
        }
    }
}

impl Describe for FcexecMessage {
    fn type_name(&self) -> String {
        match self {
            Self::Request(_) => "request",
            Self::Log { .. } => "log",
            Self::Result(_) => "result",
        }
        .to_string()
    }

    fn summary(&self) -> String {
        match self {
            Self::Request(r) => {
                let mut s = format!(
                    "runtime={} entrypoint={} code={}B timeout={}s",
                    word(&r.runtime),
                    word(&r.entrypoint),
                    r.code.len(),
                    r.timeout_s
                );
                if !r.code_archive.is_empty() {
                    s.push_str(&format!(" archive={}B", r.code_archive.len()));
                }
                if !r.input.is_empty() {
                    s.push_str(&format!(" input={}B", r.input.len()));
                }
                if !r.env.is_empty() {
                    s.push_str(&format!(" env={}", r.env.len()));
                }
                s
            }
            Self::Log { line } => format!("line={:?}", clip(line, 60)),
            Self::Result(r) => {
                let mut s = format!(
                    "exit={} output={}B error={:?}",
                    r.exit_code,
                    r.output.len(),
                    clip(&r.error, 60)
                );
                match &r.log_lines {
                    Some(LogLines::Count(n)) => s.push_str(&format!(" log_lines={n}")),
                    Some(LogLines::Lines(l)) => {
                        s.push_str(&format!(" log_lines={} (list)", l.len()))
                    }
                    None => {}
                }
                s
            }
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let v = match self {
            Self::Request(req) => serde_json::to_value(req),
            Self::Log { line } => serde_json::to_value(GuestOut::Log { line }),
            Self::Result(response) => serde_json::to_value(GuestOut::Result { response }),
        };
        v.unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A field value for a summary: bare when it is a short plain word, quoted otherwise.
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if plain {
        s.to_string()
    } else {
        format!("{:?}", clip(s, 40))
    }
}

/// Deserialises `null` as the type's default, as Go's `encoding/json` leaves a field untouched.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go's `[]byte` in JSON: a standard (padded) base64 string, `null` for a nil slice.
mod go_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => STANDARD
                .decode(s.as_bytes())
                .map_err(|e| de::Error::custom(format!("bad base64: {e}"))),
        }
    }
}
