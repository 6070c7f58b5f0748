//! The valid requests live fuzzing starts from, per protocol, in each protocol's JSON form, and
//! their encoding into frames with the protocol's own encoders.
//!
//! Every template is **harmless on a real guest**: liveness and read-only queries (quantix ping,
//! capabilities, inventories; qga `guest-ping`, `guest-info`, `guest-get-*`), file operations only
//! on a path that does not exist, fcexec workloads only in the `echo` runtime (which a real agent
//! does not have), Volant only health checks and an action of a plugin named `guestwire-fuzz`.
//! The mutations of [`super::mutate`] and [`super::structured`] start from these, and
//! [`super::safety`] refuses any case that decodes to something else.

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use crate::wire::Encoder;
use crate::wire::frame::DEFAULT_MAX_FRAME;
use crate::wire::http::{HttpEncoder, HttpMessage};
use crate::wire::protocol::Protocol;
use crate::wire::quantix::{AgentMessage, LegacyEncoder, QuantixEncoder};

/// A path no guest has, for the file-reading templates.
pub const MISSING_PATH: &str = "/nonexistent/guestwire-fuzz";

/// The Volant plugin the action template names (no real agent has it).
pub const VOLANT_PLUGIN: &str = "guestwire-fuzz";

/// The fcexec runtime of every template: the mock's `echo`, which no real agent has.
pub const FCEXEC_RUNTIME: &str = "echo";

/// Why a request could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode a {protocol} request: {reason}")]
pub struct EncodeRequestError {
    /// The protocol.
    pub protocol: String,
    /// What went wrong.
    pub reason: String,
}

/// One valid request: a name for case descriptions and the message in the protocol's JSON form
/// (quantix `AgentMessage` JSON, a qga command object, an fcexec `GuestRequest`, and for Volant
/// `{"method","path","body"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Short name, e.g. `ping`, `guest-info`, `health`.
    pub name: &'static str,
    /// The request as JSON.
    pub json: Value,
}

fn t(name: &'static str, json: Value) -> Template {
    Template { name, json }
}

/// Whether live fuzzing knows `protocol`'s requests.
pub fn supported(protocol: &Protocol) -> bool {
    matches!(
        protocol,
        Protocol::Quantix
            | Protocol::QuantixLegacy
            | Protocol::Fcexec
            | Protocol::Qga
            | Protocol::Volant
    )
}

/// The valid request templates of `protocol` (empty for one live fuzzing does not know).
/// `id` is used as the request id (quantix `message_id`, qga `id` and sync ids).
pub fn templates(protocol: &Protocol, id: u64) -> Vec<Template> {
    let sid = id.to_string();
    match protocol {
        Protocol::Quantix | Protocol::QuantixLegacy => vec![
            t("ping", json!({"message_id": sid, "ping": {"sequence": id}})),
            t(
                "get_capabilities",
                json!({"message_id": sid, "get_capabilities": {}}),
            ),
            t(
                "file_read",
                json!({"message_id": sid, "file_read": {"path": MISSING_PATH, "length": 16}}),
            ),
            t(
                "file_stat",
                json!({"message_id": sid, "file_stat": {"path": MISSING_PATH}}),
            ),
            t(
                "list_directory",
                json!({"message_id": sid, "list_directory": {"path": MISSING_PATH, "max_entries": 4}}),
            ),
            t(
                "get_hardware_info",
                json!({"message_id": sid, "get_hardware_info": {"include_cpu_details": true}}),
            ),
            t(
                "list_processes",
                json!({"message_id": sid, "list_processes": {"filter": "guestwire", "max_entries": 2}}),
            ),
        ],
        Protocol::Qga => vec![
            t("guest-ping", json!({"execute": "guest-ping"})),
            t("guest-info", json!({"execute": "guest-info", "id": id})),
            t(
                "guest-sync",
                json!({"execute": "guest-sync", "arguments": {"id": id}}),
            ),
            t(
                "guest-sync-delimited",
                json!({"execute": "guest-sync-delimited", "arguments": {"id": id}}),
            ),
            t("guest-get-time", json!({"execute": "guest-get-time"})),
            t("guest-get-osinfo", json!({"execute": "guest-get-osinfo"})),
            t(
                "guest-get-host-name",
                json!({"execute": "guest-get-host-name"}),
            ),
        ],
        Protocol::Fcexec => vec![
            t(
                "echo",
                json!({"runtime": FCEXEC_RUNTIME, "code": "guestwire\nfuzz", "timeout_s": 5}),
            ),
            t(
                "echo-env",
                json!({"runtime": FCEXEC_RUNTIME, "code": "one line", "env": {"GW": "1"},
                       "input": "aW5wdXQ=", "entrypoint": "main", "timeout_s": 1}),
            ),
        ],
        Protocol::Volant => vec![
            t("health", json!({"method": "GET", "path": "/health"})),
            t("healthz", json!({"method": "GET", "path": "/healthz"})),
            t(
                "action",
                json!({"method": "POST",
                       "path": format!("/v1/plugin/{VOLANT_PLUGIN}/actions/probe"),
                       "body": {"input": "guestwire", "n": [1, 2, 3]}}),
            ),
        ],
        _ => Vec::new(),
    }
}

/// Encodes a request given in the protocol's JSON form (see [`Template`]) into one frame.
pub fn encode(protocol: &Protocol, json: &Value) -> Result<Bytes, EncodeRequestError> {
    let bad = |reason: String| EncodeRequestError {
        protocol: protocol.to_string(),
        reason,
    };
    match protocol {
        Protocol::Quantix | Protocol::QuantixLegacy => {
            let msg: AgentMessage =
                serde_json::from_value(json.clone()).map_err(|e| bad(e.to_string()))?;
            let bytes = if *protocol == Protocol::Quantix {
                QuantixEncoder::new().to_bytes(&msg)
            } else {
                LegacyEncoder::new().to_bytes(&msg)
            };
            bytes.map(BytesMut::freeze).map_err(|e| bad(e.to_string()))
        }
        Protocol::Fcexec => {
            let payload = serde_json::to_vec(json).map_err(|e| bad(e.to_string()))?;
            Ok(length_prefixed(&payload))
        }
        Protocol::Qga => {
            let mut out = serde_json::to_vec(json).map_err(|e| bad(e.to_string()))?;
            out.push(b'\n');
            Ok(Bytes::from(out))
        }
        Protocol::Volant => {
            let method = json.get("method").and_then(Value::as_str).unwrap_or("GET");
            let path = json.get("path").and_then(Value::as_str).unwrap_or("/");
            let body = match json.get("body") {
                None | Some(Value::Null) => Vec::new(),
                Some(b) => serde_json::to_vec(b).map_err(|e| bad(e.to_string()))?,
            };
            let with_body = !body.is_empty();
            let mut message = HttpMessage::request(method, path, body)
                .with_header("Host", "localhost")
                .with_header("Accept", "application/json")
                .with_header("Connection", "close");
            if with_body {
                message = message.with_header("Content-Type", "application/json");
            }
            let mut out = BytesMut::new();
            HttpEncoder::new()
                .encode(&message, &mut out)
                .map_err(|e| bad(e.to_string()))?;
            Ok(out.freeze())
        }
        other => Err(bad(format!("live fuzzing does not know {other}"))),
    }
}

/// A u32 big-endian length and `payload` (the length saturates; callers keep payloads under
/// [`DEFAULT_MAX_FRAME`]).
pub fn length_prefixed(payload: &[u8]) -> Bytes {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|n| u64::from(*n) <= DEFAULT_MAX_FRAME)
        .unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Direction;
    use crate::wire::stream::{DecodeOptions, open_decoder};

    #[test]
    fn every_template_encodes_to_a_frame_our_decoder_reads_back() {
        for protocol in [
            Protocol::Quantix,
            Protocol::QuantixLegacy,
            Protocol::Fcexec,
            Protocol::Qga,
            Protocol::Volant,
        ] {
            let all = templates(&protocol, 7);
            assert!(all.len() >= 2, "{protocol}");
            for tpl in all {
                let bytes = encode(&protocol, &tpl.json).expect("encode");
                let mut d = open_decoder(
                    &protocol,
                    &DecodeOptions {
                        direction: Some(Direction::ToGuest),
                        ..DecodeOptions::default()
                    },
                );
                let mut buf = BytesMut::from(&bytes[..]);
                let frame = d.decode(&mut buf).expect("a frame").expect("decodes");
                assert!(d.decode(&mut buf).is_none(), "{protocol} {}", tpl.name);
                assert!(
                    buf.iter().all(u8::is_ascii_whitespace),
                    "{protocol} {}: one whole frame",
                    tpl.name
                );
                assert!(!frame.type_name.is_empty());
            }
        }
        assert!(templates(&Protocol::Raw, 1).is_empty());
        assert!(encode(&Protocol::Raw, &json!({})).is_err());
    }
}
