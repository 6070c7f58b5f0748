//! `qga`: the QEMU guest agent protocol (qemu-ga 7.2, the "alternative path" of seed 003).
//!
//! A stream of JSON objects in the QMP style with optional white space between them: requests
//! `{"execute": cmd, "arguments": {…}, "id": any}`, replies `{"return": …}` or
//! `{"error": {"class", "desc"}}` followed by `\n`. The byte `0xFF` (never valid in UTF-8 JSON) is
//! a delimiter: qemu-ga writes it before the reply to `guest-sync-delimited`, and a client may send
//! it to flush the agent's parser (qemu-ga then answers with a stray-0xFF `GenericError` before the
//! real reply). See `shared/VMLAB.md` for the exact bytes measured on qemu-ga 7.2.22.
//!
//! - [`decoder`]: the incremental, split-invariant [`QgaDecoder`] with 0xFF/newline resync;
//! - [`parse`]: [`parse_message`], one complete object to a message;
//! - [`encoder`]: [`QgaEncoder`], which writes commands compactly and replies byte for byte as
//!   qemu-ga does;
//! - [`sync`]: [`SyncWaiter`], the pure `guest-sync-delimited` tracker a host client runs after
//!   connecting and after any timeout.

pub mod decoder;
pub mod encoder;
pub mod parse;
pub mod sync;
#[cfg(test)]
mod tests;

use serde_json::Value;

use super::codec::Describe;

pub use decoder::{MAX_DEPTH, QgaDecoder};
pub use encoder::QgaEncoder;
pub use parse::parse_message;
pub use sync::{SyncStep, SyncWaiter};

/// The delimiter byte.
pub const DELIMITER: u8 = 0xFF;

/// Error class of most qemu-ga errors, including JSON parse errors.
pub const CLASS_GENERIC_ERROR: &str = "GenericError";

/// Error class of a command the agent does not have.
pub const CLASS_COMMAND_NOT_FOUND: &str = "CommandNotFound";

/// qemu-ga's `desc` for a request preceded by a 0xFF byte (the byte, invalid UTF-8, is shown as
/// U+FFFD and written as `\uFFFD`).
pub const STRAY_DELIMITER_DESC: &str = "JSON parse error, stray '\u{FFFD}'";

/// The command that makes qemu-ga write 0xFF before its reply.
pub const GUEST_SYNC_DELIMITED: &str = "guest-sync-delimited";

/// One qga message, either way.
#[derive(Debug, Clone, PartialEq)]
pub enum QgaMessage {
    /// A request: `{"execute": …, "arguments": …, "id": …}`.
    Command {
        /// The command name, e.g. `guest-ping`.
        execute: String,
        /// The arguments, as sent (QMP wants an object).
        arguments: Option<Value>,
        /// The client's id, echoed in the reply.
        id: Option<Value>,
    },
    /// A successful reply: `{"return": …}`.
    Return {
        /// The returned value.
        value: Value,
        /// The request's id, when it had one.
        id: Option<Value>,
    },
    /// A failed reply: `{"error": {"class": …, "desc": …}}`.
    Error {
        /// The error class, e.g. `GenericError`, `CommandNotFound`.
        class: String,
        /// The human-readable description.
        desc: String,
        /// The request's id, when it had one.
        id: Option<Value>,
    },
    /// A 0xFF byte.
    Delimiter,
}

impl QgaMessage {
    /// A command without an id.
    pub fn command(execute: impl Into<String>, arguments: Option<Value>) -> Self {
        Self::Command {
            execute: execute.into(),
            arguments,
            id: None,
        }
    }

    /// `{"execute":"guest-ping"}`.
    pub fn ping() -> Self {
        Self::command("guest-ping", None)
    }

    /// `{"execute":"guest-sync-delimited","arguments":{"id":N}}`.
    pub fn sync_delimited(id: i64) -> Self {
        Self::command(GUEST_SYNC_DELIMITED, Some(serde_json::json!({ "id": id })))
    }

    /// `{"execute":"guest-sync","arguments":{"id":N}}` (answered without a 0xFF).
    pub fn sync(id: i64) -> Self {
        Self::command("guest-sync", Some(serde_json::json!({ "id": id })))
    }

    /// A `return` reply without an id.
    pub fn ret(value: Value) -> Self {
        Self::Return { value, id: None }
    }

    /// An `error` reply without an id.
    pub fn error(class: impl Into<String>, desc: impl Into<String>) -> Self {
        Self::Error {
            class: class.into(),
            desc: desc.into(),
            id: None,
        }
    }

    /// qemu-ga's reply to an unknown command: class `CommandNotFound`,
    /// `The command NAME has not been found`.
    pub fn command_not_found(command: &str) -> Self {
        Self::error(
            CLASS_COMMAND_NOT_FOUND,
            format!("The command {command} has not been found"),
        )
    }

    /// qemu-ga's reply to a request preceded by a 0xFF byte (then it answers the request).
    pub fn stray_delimiter_error() -> Self {
        Self::error(CLASS_GENERIC_ERROR, STRAY_DELIMITER_DESC)
    }

    /// qemu-ga's parse error for a stray token, `JSON parse error, stray 'TOKEN'`.
    pub fn stray_token_error(token: &str) -> Self {
        Self::error(
            CLASS_GENERIC_ERROR,
            format!("JSON parse error, stray '{token}'"),
        )
    }

    /// The message's `id`, if any.
    pub fn id(&self) -> Option<&Value> {
        match self {
            Self::Command { id, .. } | Self::Return { id, .. } | Self::Error { id, .. } => {
                id.as_ref()
            }
            Self::Delimiter => None,
        }
    }

    /// Whether this is a reply (`return` or `error`).
    pub fn is_reply(&self) -> bool {
        matches!(self, Self::Return { .. } | Self::Error { .. })
    }
}

impl Describe for QgaMessage {
    fn type_name(&self) -> String {
        match self {
            Self::Command { execute, .. } => execute.clone(),
            Self::Return { .. } => "return".into(),
            Self::Error { .. } => "error".into(),
            Self::Delimiter => "delimiter".into(),
        }
    }

    fn summary(&self) -> String {
        let mut s = match self {
            Self::Command {
                execute, arguments, ..
            } => match arguments {
                Some(a) => format!("{} {}", one_line(execute, 40), clip(&a.to_string(), 80)),
                None => one_line(execute, 40),
            },
            Self::Return { value, .. } => format!("return {}", clip(&value.to_string(), 80)),
            Self::Error { class, desc, .. } => {
                format!("{}: {}", one_line(class, 40), one_line(desc, 80))
            }
            Self::Delimiter => "0xff".into(),
        };
        if let Some(id) = self.id() {
            s.push_str(&format!(" id={}", clip(&id.to_string(), 40)));
        }
        s
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Delimiter => serde_json::json!({ "delimiter": "0xff" }),
            _ => serde_json::to_value(encoder::Wire(self))
                .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() })),
        }
    }

    fn correlation_id(&self) -> Option<String> {
        self.id().map(|id| match id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `s` clipped and with control characters escaped, so that it stays on one line.
fn one_line(s: &str, max: usize) -> String {
    let clipped = clip(s, max);
    if clipped.chars().any(char::is_control) {
        clipped
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        clipped
    }
}
