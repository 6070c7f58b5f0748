//! Re-encoding recorded messages, and rewriting a recorded reply's ids to a live request's.
//!
//! Ids rewritten ([`rewrite_reply_ids`]): quantix and quantix-legacy `message_id` (the reply's
//! becomes the live request's) and a pong's `sequence` (the live ping's); qga `id` and the
//! `return` of `guest-sync` / `guest-sync-delimited` (the live request's `arguments.id`). fcexec
//! has no ids. Timestamps are left as recorded.
//!
//! Encoding ([`encode`]) goes from the JSON form a decoder produced back to bytes: quantix
//! through its protobuf types, fcexec by framing the JSON again, qga by parsing the JSON as a qga
//! message and writing it as qemu-ga / a QMP client would (a `delimiter` frame is the 0xFF byte),
//! volant and ch-api through [`super::codec_http`].

use bytes::Bytes;
use serde_json::Value;

use super::error::ReplayError;
use crate::wire::codec::Encoder as _;
use crate::wire::frame::DEFAULT_MAX_FRAME;
use crate::wire::protocol::Protocol;
use crate::wire::qga::{QgaEncoder, QgaMessage, parse_message};
use crate::wire::quantix::{AgentMessage, LegacyEncoder, QuantixEncoder};

/// Whether replay can encode frames of `protocol`.
pub fn can_encode(protocol: &Protocol) -> bool {
    matches!(
        protocol,
        Protocol::Quantix
            | Protocol::QuantixLegacy
            | Protocol::Fcexec
            | Protocol::Qga
            | Protocol::Volant
            | Protocol::ChApi
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
        Protocol::Qga => {
            let msg = if type_name == "delimiter" {
                QgaMessage::Delimiter
            } else {
                let json = serde_json::to_vec(message).map_err(|e| bad(e.to_string()))?;
                parse_message(&json, 0).map_err(|e| bad(e.to_string()))?
            };
            let mut out = bytes::BytesMut::new();
            QgaEncoder::new()
                .encode(&msg, &mut out)
                .map_err(|e| bad(e.to_string()))?;
            Ok(out.freeze())
        }
        Protocol::Volant | Protocol::ChApi => super::codec_http::encode(message).map_err(bad),
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
        let e = encode(&Protocol::Raw, "bytes", &json!({})).unwrap_err();
        assert_eq!(e.kind(), "unsupported");
    }

    /// Decodes `bytes` as qga flowing `direction`: (type, JSON) of every frame.
    fn qga_frames(bytes: &[u8], direction: crate::wire::Direction) -> Vec<(String, Value)> {
        let mut d = open_decoder(
            &Protocol::Qga,
            &DecodeOptions {
                direction: Some(direction),
                ..DecodeOptions::default()
            },
        );
        let mut buf = bytes::BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = d.decode(&mut buf) {
            let f = f.expect("a good frame");
            out.push((f.type_name, f.message));
        }
        out
    }

    #[test]
    fn qga_replies_re_encode_byte_for_byte_as_qemu_ga_writes_them() {
        use crate::wire::Direction::ToHost;
        let recorded = b"\xff{\"return\": 4242}\n{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}\n";
        let mut again = Vec::new();
        for (t, m) in qga_frames(recorded, ToHost) {
            again.extend_from_slice(&encode(&Protocol::Qga, &t, &m).expect("encode"));
        }
        assert_eq!(again, recorded);
    }

    #[test]
    fn qga_commands_re_encode_to_the_same_command() {
        use crate::wire::Direction::ToGuest;
        let sent = br#"{"execute":"guest-sync-delimited","arguments":{"id":7},"id":"a"}"#;
        let frames = qga_frames(sent, ToGuest);
        assert_eq!(frames.len(), 1);
        let bytes = encode(&Protocol::Qga, &frames[0].0, &frames[0].1).unwrap();
        assert_eq!(qga_frames(&bytes, ToGuest), frames);
        let bad = encode(&Protocol::Qga, "x", &json!({"neither": 1})).unwrap_err();
        assert_eq!(bad.kind(), "encode");
    }

    #[test]
    fn a_volant_request_re_encodes_with_its_body_and_a_fresh_length() {
        let req = json!({"method": "POST", "path": "/v1/plugin/x/actions/a",
            "version": "HTTP/1.1", "headers": [["Host", "guest"], ["Content-Length", "999"]],
            "body_len": 9, "body_encoding": "json", "body": {"a": [1]}});
        let bytes = encode(&Protocol::Volant, "request", &req).unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(
            text.starts_with("POST /v1/plugin/x/actions/a HTTP/1.1\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 9\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n{\"a\":[1]}"), "{text}");
    }
}
