//! The qga encoder. Commands are written compactly with no trailing newline, as QMP clients do
//! (`{"execute":"guest-sync-delimited","arguments":{"id":1234}}`); replies are written the way
//! qemu-ga's `qobject_to_json` writes them, followed by `\n`: `", "` and `": "` separators, every
//! character outside printable ASCII escaped as `\uXXXX` (upper-case hex, surrogate pairs beyond
//! the BMP). So `{"return": 1234}\n` and the stray-0xFF error
//! `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}\n` come out
//! byte for byte. Two more details of qemu's writer are copied: the members of every object in a
//! reply come in the order of qemu's `QDict` hash buckets ([`qdict_bucket`]), which is why an
//! error with an id is written `{"id": 1, "error": …}` but a success `{"return": …, "id": 1}`; and
//! non-integer numbers are written with `%.17g` (`0.1` → `0.10000000000000001`, `1e3` → `1000`).
//! (Infinities, which qemu writes as `inf`, cannot be held by a `serde_json::Value`.)

use std::io;

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use serde_json::ser::{CharEscape, Formatter};

use super::super::codec::Encoder;
use super::super::error::EncodeError;
use super::super::frame::DEFAULT_MAX_FRAME;
use super::{DELIMITER, QgaMessage};

/// Encoder for qga messages.
#[derive(Debug, Clone)]
pub struct QgaEncoder {
    max: u64,
}

impl Default for QgaEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl QgaEncoder {
    /// An encoder that refuses messages over 16 MiB.
    pub fn new() -> Self {
        Self::with_max(DEFAULT_MAX_FRAME)
    }

    /// An encoder that refuses messages over `max` bytes.
    pub fn with_max(max: u64) -> Self {
        Self { max }
    }

    /// Appends a command, e.g. `{"execute":"guest-ping"}`.
    pub fn command(
        &mut self,
        execute: &str,
        arguments: Option<&Value>,
        id: Option<&Value>,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.encode(
            &QgaMessage::Command {
                execute: execute.into(),
                arguments: arguments.cloned(),
                id: id.cloned(),
            },
            dst,
        )
    }

    /// Appends `{"execute":"guest-sync-delimited","arguments":{"id":N}}`.
    pub fn sync_delimited(&mut self, id: i64, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode(&QgaMessage::sync_delimited(id), dst)
    }

    /// Appends a `{"return": …}\n` reply.
    pub fn reply_return(&mut self, value: &Value, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode(&QgaMessage::ret(value.clone()), dst)
    }

    /// Appends an `{"error": {"class": …, "desc": …}}\n` reply.
    pub fn reply_error(
        &mut self,
        class: &str,
        desc: &str,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.encode(&QgaMessage::error(class, desc), dst)
    }

    /// Appends the 0xFF delimiter (a client sends it to flush the agent's parser).
    pub fn delimiter(&mut self, dst: &mut BytesMut) {
        dst.put_u8(DELIMITER);
    }

    /// Appends qemu-ga's whole answer to `guest-sync-delimited`: `\xff{"return": N}\n`.
    pub fn sync_delimited_reply(&mut self, id: i64, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.delimiter(dst);
        self.reply_return(&Value::from(id), dst)
    }
}

impl Encoder<QgaMessage> for QgaEncoder {
    fn encode(&mut self, message: &QgaMessage, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let bytes = match message {
            QgaMessage::Delimiter => {
                dst.put_u8(DELIMITER);
                return Ok(());
            }
            QgaMessage::Command { .. } => serde_json::to_vec(&Wire(message)),
            QgaMessage::Return { .. } | QgaMessage::Error { .. } => to_qemu_json(&Wire(message)),
        }
        .map_err(|e| EncodeError::Serialize(e.to_string()))?;
        if bytes.len() as u64 > self.max {
            return Err(EncodeError::TooLarge {
                len: bytes.len() as u64,
                max: self.max,
            });
        }
        dst.put_slice(&bytes);
        if message.is_reply() {
            dst.put_u8(b'\n');
        }
        Ok(())
    }
}

/// Serialises `value` the way qemu's `qobject_to_json` does.
pub fn to_qemu_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, QemuFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// The wire shape of a message (not for [`QgaMessage::Delimiter`], which is not JSON).
pub(super) struct Wire<'a>(pub(super) &'a QgaMessage);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            class: &'a str,
            desc: &'a str,
        }
        let mut map = s.serialize_map(None)?;
        match self.0 {
            QgaMessage::Command {
                execute,
                arguments,
                id,
            } => {
                map.serialize_entry("execute", execute)?;
                if let Some(a) = arguments {
                    map.serialize_entry("arguments", a)?;
                }
                if let Some(id) = id {
                    map.serialize_entry("id", id)?;
                }
            }
            QgaMessage::Return { value, id } => {
                let value = ("return", Member::<ErrorBody>::Value(QdictOrder(value)));
                let id = id.as_ref().map(|id| Member::Value(QdictOrder(id)));
                for (k, v) in in_qdict_order(value, id) {
                    map.serialize_entry(k, &v)?;
                }
            }
            QgaMessage::Error { class, desc, id } => {
                let error = ("error", Member::Error(ErrorBody { class, desc }));
                let id = id.as_ref().map(|id| Member::Value(QdictOrder(id)));
                for (k, v) in in_qdict_order(error, id) {
                    map.serialize_entry(k, &v)?;
                }
            }
            QgaMessage::Delimiter => {}
        }
        map.end()
    }
}

/// A top-level member of a reply.
#[derive(Serialize)]
#[serde(untagged)]
enum Member<'a, E> {
    Value(QdictOrder<'a>),
    Error(E),
}

/// The reply's member and the optional `id`, in qemu's order.
fn in_qdict_order<V>(first: (&'static str, V), id: Option<V>) -> Vec<(&'static str, V)> {
    // Within one bucket the later insertion comes first, and qemu inserts `id` last.
    let id_first = qdict_bucket("id") <= qdict_bucket(first.0);
    match id {
        None => vec![first],
        Some(id) if id_first => vec![("id", id), first],
        Some(id) => vec![first, ("id", id)],
    }
}

/// qemu's `QDICT_BUCKET_MAX`.
const QDICT_BUCKETS: u32 = 512;

/// The hash bucket qemu's `QDict` puts `key` in (`tdb_hash(key) % QDICT_BUCKET_MAX`). A QDict is
/// iterated, and so written, bucket by bucket, and within a bucket the latest insertion first.
pub fn qdict_bucket(key: &str) -> u32 {
    let bytes = key.as_bytes();
    let mut value = 0x238F_13AFu32.wrapping_mul(bytes.len() as u32);
    for (i, &b) in bytes.iter().enumerate() {
        value = value.wrapping_add(u32::from(b) << (i * 5 % 24));
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345) % QDICT_BUCKETS
}

/// A JSON value whose objects serialise in qemu's `QDict` order. Members of one bucket are taken
/// as inserted in the map's order (so written in reverse), as qemu would write them.
struct QdictOrder<'a>(&'a Value);

impl Serialize for QdictOrder<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(obj) => {
                let mut members: Vec<(usize, &String, &Value)> = obj
                    .iter()
                    .enumerate()
                    .map(|(i, (k, v))| (i, k, v))
                    .collect();
                members.sort_by_key(|(i, k, _)| (qdict_bucket(k), std::cmp::Reverse(*i)));
                let mut map = s.serialize_map(Some(members.len()))?;
                for (_, k, v) in members {
                    map.serialize_entry(k, &QdictOrder(v))?;
                }
                map.end()
            }
            Value::Array(items) => s.collect_seq(items.iter().map(QdictOrder)),
            other => other.serialize(s),
        }
    }
}

/// qemu's JSON style: `", "` and `": "` separators, `\uXXXX` for everything outside
/// printable ASCII.
struct QemuFormatter;

impl Formatter for QemuFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(format_g17(value).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut plain = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..'\u{7f}').contains(&c) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[plain..i])?;
            plain = i + c.len_utf8();
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{:04X}", unit)?;
            }
        }
        w.write_all(&fragment.as_bytes()[plain..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            CharEscape::Quote => w.write_all(b"\\\""),
            CharEscape::ReverseSolidus => w.write_all(b"\\\\"),
            CharEscape::Solidus => w.write_all(b"/"),
            CharEscape::Backspace => w.write_all(b"\\b"),
            CharEscape::FormFeed => w.write_all(b"\\f"),
            CharEscape::LineFeed => w.write_all(b"\\n"),
            CharEscape::CarriageReturn => w.write_all(b"\\r"),
            CharEscape::Tab => w.write_all(b"\\t"),
            CharEscape::AsciiControl(b) => write!(w, "\\u{:04X}", b),
        }
    }
}

/// C's `printf("%.17g", value)` for a finite `value`, as qemu writes doubles.
pub fn format_g17(value: f64) -> String {
    const PRECISION: i32 = 17;
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    if !value.is_finite() {
        return if value.is_nan() {
            "nan".to_string()
        } else if value < 0.0 {
            "-inf".to_string()
        } else {
            "inf".to_string()
        };
    }
    // The exponent %e would print, after rounding to 17 significant digits.
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, value);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..PRECISION).contains(&exp) {
        let decimals = usize::try_from(PRECISION - 1 - exp).unwrap_or(0);
        strip_fraction_zeros(format!("{value:.decimals$}"))
    } else {
        let mantissa = strip_fraction_zeros(mantissa.to_string());
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// `%g`'s removal of trailing zeros after a decimal point (and of the point itself).
fn strip_fraction_zeros(mut s: String) -> String {
    if s.contains('.') {
        let kept = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(kept);
    }
    s
}
