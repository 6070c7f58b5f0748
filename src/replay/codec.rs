//! Re-encoding recorded messages, and rewriting a recorded reply's ids to a live request's.
//!
//! Ids rewritten ([`rewrite_reply_ids`]): quantix and quantix-legacy `message_id` (the reply's
//! becomes the live request's) and a pong's `sequence` (the live ping's); qga `id` and the
//! `return` of `guest-sync` / `guest-sync-delimited` (the live request's `arguments.id`). fcexec
//! has no ids. Timestamps are left as recorded.

use bytes::Bytes;
use serde_json::Value;

use super::error::ReplayError;
use crate::wire::frame::DEFAULT_MAX_FRAME;
use crate::wire::protocol::Protocol;
use crate::wire::quantix::{AgentMessage, LegacyEncoder, QuantixEncoder};

/// Whether replay can encode frames of `protocol`.
pub fn can_encode(protocol: &Protocol) -> bool {
    matches!(
        protocol,
        Protocol::Quantix | Protocol::QuantixLegacy | Protocol::Fcexec
    )
}

/// Encodes a message given as the JSON its decoder produced (`DecodedFrame::message`).
pub fn encode(protocol: &Protocol, type_name: &str, message: &Value) -> Result<Bytes, ReplayError> {
    let bad = |reason: String| ReplayError::Encode {
        type_name: type_name.to_string(),
        reason,
    };
    match protocol {
        Protocol::Quantix | Protocol::QuantixLegacy => {
            let msg: AgentMessage =
                serde_json::from_value(message.clone()).map_err(|e| bad(e.to_string()))?;
            let bytes = if *protocol == Protocol::Quantix {
                QuantixEncoder::new().to_bytes(&msg)
            } else {
                LegacyEncoder::new().to_bytes(&msg)
            };
            bytes.map(|b| b.freeze()).map_err(|e| bad(e.to_string()))
        }
        Protocol::Fcexec => {
            // The JSON form of an fcexec message is its wire JSON: frame it again.
            let json = serde_json::to_vec(message).map_err(|e| bad(e.to_string()))?;
            let len = u32::try_from(json.len())
                .ok()
                .filter(|n| u64::from(*n) <= DEFAULT_MAX_FRAME)
                .ok_or_else(|| {
                    bad(format!(
                        "{} bytes of JSON is over the maximum frame",
                        json.len()
                    ))
                })?;
            let mut out = Vec::with_capacity(4 + json.len());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&json);
            Ok(Bytes::from(out))
        }
        other => Err(ReplayError::Unsupported(other.to_string())),
    }
}

/// Rewrites the ids of a recorded reply (`reply`, JSON) to those of the live request it now
/// answers (`live`, JSON).
pub fn rewrite_reply_ids(protocol: &Protocol, reply: &mut Value, live: &Value) {
    match protocol {
        Protocol::Quantix | Protocol::QuantixLegacy => {
            if let (Some(r), Some(id)) = (reply.as_object_mut(), live.get("message_id"))
                && r.contains_key("message_id")
            {
                r.insert("message_id".into(), id.clone());
            }
            let seq = live.get("ping").and_then(|p| p.get("sequence"));
            if let (Some(pong), Some(seq)) =
                (reply.get_mut("pong").and_then(Value::as_object_mut), seq)
            {
                pong.insert("sequence".into(), seq.clone());
            }
        }
        Protocol::Qga => {
            let Some(r) = reply.as_object_mut() else {
                return;
            };
            if let Some(id) = live.get("id")
                && r.contains_key("id")
            {
                r.insert("id".into(), id.clone());
            }
            let sync = live
                .get("execute")
                .and_then(Value::as_str)
                .is_some_and(|c| c == "guest-sync" || c == "guest-sync-delimited");
            let sync_id = live.get("arguments").and_then(|a| a.get("id"));
            if let (true, Some(id)) = (sync, sync_id)
                && r.contains_key("return")
            {
                r.insert("return".into(), id.clone());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::quantix::QuantixDecoder;
    use crate::wire::stream::{DecodeOptions, open_decoder};
    use serde_json::json;

    #[test]
    fn an_fcexec_message_re_encodes_to_a_frame_that_decodes_to_the_same_json() {
        let log = json!({"type": "log", "line": "hello fixtures"});
        let bytes = encode(&Protocol::Fcexec, "log", &log).expect("encode");
        let mut d = open_decoder(
            &Protocol::Fcexec,
            &DecodeOptions {
                direction: Some(crate::wire::Direction::ToHost),
                ..DecodeOptions::default()
            },
        );
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        let frame = d.decode(&mut buf).expect("a frame").expect("a good frame");
        assert_eq!(frame.type_name, "log");
        assert_eq!(frame.message, log);
        assert!(buf.is_empty());
    }

    #[test]
    fn quantix_reply_takes_the_live_message_id_and_ping_sequence() {
        let mut pong = json!({"message_id": "1", "timestamp": null,
            "pong": {"sequence": 1, "uptime_seconds": 0, "version": "v"}});
        let live = json!({"message_id": "77", "timestamp": null, "ping": {"sequence": 9}});
        rewrite_reply_ids(&Protocol::Quantix, &mut pong, &live);
        assert_eq!(pong["message_id"], "77");
        assert_eq!(pong["pong"]["sequence"], 9);
        assert_eq!(pong["pong"]["version"], "v");
    }

    #[test]
    fn qga_sync_reply_returns_the_live_sync_id() {
        let mut reply = json!({"return": 111});
        let live = json!({"execute": "guest-sync-delimited", "arguments": {"id": 4242}});
        rewrite_reply_ids(&Protocol::Qga, &mut reply, &live);
        assert_eq!(reply["return"], 4242);
        let mut other = json!({"return": {}});
        rewrite_reply_ids(
            &Protocol::Qga,
            &mut other,
            &json!({"execute": "guest-ping"}),
        );
        assert_eq!(other["return"], json!({}));
    }

    #[test]
    fn quantix_json_round_trips_through_the_encoder_and_decoder() {
        let msg = json!({"message_id": "5", "timestamp": "2026-11-22T03:24:36.614835531Z",
            "shutdown_response": {"accepted": true, "error": ""}});
        let bytes = encode(&Protocol::Quantix, "shutdown_response", &msg).unwrap();
        let mut dec = open_decoder(&Protocol::Quantix, &DecodeOptions::default());
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        let frame = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.type_name, "shutdown_response");
        assert_eq!(frame.message, msg);
        let _ = QuantixDecoder::new();
    }

    #[test]
    fn unsupported_protocols_are_a_typed_error() {
        let e = encode(&Protocol::Qga, "guest-ping", &json!({})).unwrap_err();
        assert_eq!(e.kind(), "unsupported");
    }
}
