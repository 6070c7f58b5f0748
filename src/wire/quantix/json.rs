//! Serde helpers that give the quantix messages the JSON shape of protobuf's JSON mapping (as
//! `protojson` and `pbjson` write it), except that field names stay snake_case and 64-bit
//! integers stay numbers:
//!
//! - bytes as standard base64 strings ([`base64_bytes`]);
//! - enums by their proto value name, or the bare number for a value this version does not know;
//!   both forms are accepted on input ([`enum_ser`], [`enum_de`]);
//! - doubles as numbers, and the non-finite ones as `"NaN"`, `"Infinity"`, `"-Infinity"` (plain
//!   serde_json would write `null` and could not read it back) ([`double`]).
//!
//! - the envelope as `{"message_id": "7", "timestamp": null | "…", "ping": {"sequence": 3}}`:
//!   the oneof flattened under the arm's proto name, as protobuf's JSON mapping does. On input,
//!   missing fields take their defaults; a key that is neither a field nor an arm, or a second
//!   arm, is an error (a misspelt arm would otherwise silently give an empty message).
//!
//! The timestamp's shape lives with [`Timestamp`](super::Timestamp) itself.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};

use super::enums::ProtoEnum;
use super::envelope::{AgentMessage, Payload};

/// Bytes fields as standard (padded) base64 strings.
pub mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the bytes as a base64 string.
    pub fn serialize<S: Serializer>(data: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    /// Reads a base64 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(|e| serde::de::Error::custom(format!("bad base64: {e}")))
    }
}

/// Writes an enum field (a raw `i32`) as its proto name, or as the number when unknown.
pub fn enum_ser<E: ProtoEnum, S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
    match E::name_of(*value) {
        Some(name) => s.serialize_str(name),
        None => s.serialize_i32(*value),
    }
}

/// Reads an enum field from its proto name or from any `i32` number.
pub fn enum_de<'de, E: ProtoEnum, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    d.deserialize_any(EnumVisitor::<E>(PhantomData))
}

struct EnumVisitor<E>(PhantomData<E>);

impl<E: ProtoEnum> Visitor<'_> for EnumVisitor<E> {
    type Value = i32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an enum value name ({}…) or an int32", E::PREFIX)
    }

    fn visit_str<Er: de::Error>(self, v: &str) -> Result<i32, Er> {
        E::from_proto_name(v)
            .map(Into::into)
            .ok_or_else(|| Er::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_i64<Er: de::Error>(self, v: i64) -> Result<i32, Er> {
        i32::try_from(v).map_err(|_| Er::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_u64<Er: de::Error>(self, v: u64) -> Result<i32, Er> {
        i32::try_from(v).map_err(|_| Er::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
}

/// Doubles as JSON numbers, with `"NaN"`, `"Infinity"` and `"-Infinity"` for the non-finite ones.
pub mod double {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;

    /// Writes a double; non-finite values as strings.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*v)
        }
    }

    /// Reads a number, or one of the strings `NaN`, `Infinity`, `-Infinity`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(DoubleVisitor)
    }

    struct DoubleVisitor;

    impl Visitor<'_> for DoubleVisitor {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
}

impl serde::Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        self.serialize_entry(&mut map)?;
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let msg = d.deserialize_map(EnvelopeVisitor { bare_payload: true })?;
        msg.payload
            .ok_or_else(|| de::Error::custom("expected an object with one payload arm"))
    }
}

impl serde::Serialize for AgentMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2 + usize::from(self.payload.is_some())))?;
        map.serialize_entry("message_id", &self.message_id)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        if let Some(payload) = &self.payload {
            payload.serialize_entry(&mut map)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for AgentMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor {
            bare_payload: false,
        })
    }
}

/// Reads an envelope, or (with `bare_payload`) just `{"arm": {…}}`.
struct EnvelopeVisitor {
    bare_payload: bool,
}

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = AgentMessage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AgentMessage object: message_id, timestamp and one payload arm")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AgentMessage, A::Error> {
        let mut msg = AgentMessage::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "message_id" if !self.bare_payload => msg.message_id = map.next_value()?,
                "timestamp" if !self.bare_payload => msg.timestamp = map.next_value()?,
                name => {
                    let Some(arm) = Payload::deserialize_arm(name, &mut map)? else {
                        return Err(de::Error::custom(format!(
                            "unknown AgentMessage field or payload arm {name:?}"
                        )));
                    };
                    if let Some(first) = &msg.payload {
                        return Err(de::Error::custom(format!(
                            "two payload arms in one AgentMessage: {} and {name}",
                            first.name()
                        )));
                    }
                    msg.payload = Some(arm);
                }
            }
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde::{Deserialize, Serialize};

    use super::super::enums::ShutdownType;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Probe {
        #[serde(with = "super::base64_bytes")]
        data: Bytes,
        #[serde(
            serialize_with = "super::enum_ser::<ShutdownType, _>",
            deserialize_with = "super::enum_de::<ShutdownType, _>"
        )]
        kind: i32,
        #[serde(with = "super::double")]
        x: f64,
    }

    /// Found by the `decode_quantix` fuzz target
    /// (`fixtures/crashes/quantix-telemetry-double-json-ulp.bin`): a telemetry report's
    /// `cpu_usage_percent` of 6.653062250012736e-111 came back one ULP off from its JSON form,
    /// because serde_json's default float parser is not exact (fixed by its `float_roundtrip`
    /// feature).
    #[test]
    fn doubles_read_back_bit_for_bit() {
        for bits in [
            0x2910_0000_0000_0000_u64, // 6.653062250012736e-111
            f64::MIN_POSITIVE.to_bits(),
            1,                     // the smallest subnormal
            0x000f_ffff_ffff_ffff, // the largest subnormal
            f64::MAX.to_bits(),
            (0.1f64 + 0.2).to_bits(),
            (-0.0f64).to_bits(),
        ] {
            let p = Probe {
                x: f64::from_bits(bits),
                ..Probe::default()
            };
            let text = serde_json::to_string(&p).expect("json");
            let back: Probe = serde_json::from_str(&text).expect("back");
            assert_eq!(back.x.to_bits(), bits, "{text}");
        }
    }

    #[test]
    fn bytes_enums_and_doubles() {
        let p = Probe {
            data: Bytes::from_static(b"hi\x00"),
            kind: 1,
            x: f64::NEG_INFINITY,
        };
        let v = serde_json::to_value(&p).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"data": "aGkA", "kind": "SHUTDOWN_TYPE_REBOOT", "x": "-Infinity"})
        );
        assert_eq!(serde_json::from_value::<Probe>(v).expect("back"), p);

        let unknown = Probe {
            kind: 9,
            ..Probe::default()
        };
        let v = serde_json::to_value(&unknown).expect("json");
        assert_eq!(v["kind"], 9);
        assert_eq!(serde_json::from_value::<Probe>(v).expect("back"), unknown);

        let p: Probe = serde_json::from_str(r#"{"kind": 2, "x": "NaN"}"#).expect("numeric enum");
        assert_eq!(p.kind, 2);
        assert!(p.x.is_nan());
        assert!(serde_json::from_str::<Probe>(r#"{"kind": "REBOOT"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"kind": 3000000000}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"data": "%%"}"#).is_err());
    }
}
