//! Turning one complete JSON object into a [`QgaMessage`]: `execute` makes a command, `return`
//! a success reply, `error` (an object with string `class` and `desc`) a failed one, checked in
//! that order; `id` is kept when present. Any other object is [`WireError::UnknownType`], named by
//! its first key as sent (serde_json's own map sorts keys, so the first key is captured while
//! parsing).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::super::error::WireError;
use super::super::hex::HexPreview;
use super::QgaMessage;

/// Parses one complete JSON object into a [`QgaMessage`]. `offset` is the object's stream offset,
/// used in errors.
pub fn parse_message(json: &[u8], offset: u64) -> Result<QgaMessage, WireError> {
    let malformed = |reason: String| WireError::Malformed {
        offset,
        format: "json",
        reason,
        bytes: HexPreview::of(json),
    };
    let TopObject { first_key, mut map } =
        serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))?;
    if let Some(execute) = map.remove("execute") {
        let Value::String(execute) = execute else {
            return Err(malformed("\"execute\" must be a string".into()));
        };
        return Ok(QgaMessage::Command {
            execute,
            arguments: map.remove("arguments"),
            id: map.remove("id"),
        });
    }
    if let Some(value) = map.remove("return") {
        return Ok(QgaMessage::Return {
            value,
            id: map.remove("id"),
        });
    }
    if let Some(error) = map.remove("error") {
        let field = |k: &str| error.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(class), Some(desc)) = (field("class"), field("desc")) else {
            return Err(malformed(
                "\"error\" must be an object with string \"class\" and \"desc\"".into(),
            ));
        };
        return Ok(QgaMessage::Error {
            class,
            desc,
            id: map.remove("id"),
        });
    }
    Err(WireError::UnknownType {
        offset,
        type_name: first_key.unwrap_or_else(|| "{}".into()),
        bytes: HexPreview::of(json),
    })
}

/// A top-level JSON object that remembers its first key (serde_json's map is sorted).
struct TopObject {
    first_key: Option<String>,
    map: Map<String, Value>,
}

impl<'de> Deserialize<'de> for TopObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<TopObject, A::Error> {
                let mut first_key = None;
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    let value = access.next_value::<Value>()?;
                    if first_key.is_none() {
                        first_key = Some(key.clone());
                    }
                    map.insert(key, value);
                }
                Ok(TopObject { first_key, map })
            }
        }
        d.deserialize_map(V)
    }
}
