//! The qga encoder. Commands are written compactly with no trailing newline, as QMP clients do
//! (`{"execute":"guest-sync-delimited","arguments":{"id":1234}}`); replies are written the way
//! qemu-ga's `qobject_to_json` writes them, followed by `\n`: `", "` and `": "` separators, every
//! character outside printable ASCII escaped as `\uXXXX` (upper-case hex, surrogate pairs beyond
//! the BMP). So `{"return": 1234}\n` and the stray-0xFF error
//! `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}\n` come out
//! byte for byte. (Non-integer numbers are the exception: qemu prints doubles with `%.17g`,
//! serde_json with the shortest round-trip form.)

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
        let id = match self.0 {
            QgaMessage::Command {
                execute,
                arguments,
                id,
            } => {
                map.serialize_entry("execute", execute)?;
                if let Some(a) = arguments {
                    map.serialize_entry("arguments", a)?;
                }
                id
            }
            QgaMessage::Return { value, id } => {
                map.serialize_entry("return", value)?;
                id
            }
            QgaMessage::Error { class, desc, id } => {
                map.serialize_entry("error", &ErrorBody { class, desc })?;
                id
            }
            QgaMessage::Delimiter => &None,
        };
        if let Some(id) = id {
            map.serialize_entry("id", id)?;
        }
        map.end()
    }
}

/// qemu's JSON style: `", "` and `": "` separators, `\uXXXX` for everything outside
/// printable ASCII.
struct QemuFormatter;

impl Formatter for QemuFormatter {
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
