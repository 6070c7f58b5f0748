//! HTTP messages (volant, ch-api) back from their decoded JSON form (`HttpMessage::to_json`):
//! `method`/`path` or `status`/`reason`, `version` (`HTTP/1.x`), `headers` as `[name, value]`
//! pairs, and the body by `body_encoding` (`json`: written compactly again, `utf8`, `base64`).
//! The encoder writes a `Content-Length` for the body as re-encoded, so a JSON body whose
//! recorded spacing differed is still a well-formed message (only `--strict` sees the length).

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::wire::codec::Encoder as _;
use crate::wire::http::{HttpEncoder, HttpMessage};

/// Rebuilds the message, or says what is missing.
pub fn message_from_json(v: &Value) -> Result<HttpMessage, String> {
    let version = match v.get("version").and_then(Value::as_str) {
        Some("HTTP/1.0") => 0,
        Some("HTTP/1.1") | None => 1,
        Some(other) => return Err(format!("version {other:?} is not HTTP/1.0 or HTTP/1.1")),
    };
    let headers = match v.get("headers") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|h| match h.as_array().map(Vec::as_slice) {
                Some([Value::String(n), Value::String(v)]) => Ok((n.clone(), v.clone())),
                _ => Err(format!("header {h} is not a [name, value] pair")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("headers {other} is not an array")),
    };
    let body = body_from_json(v)?;
    if let Some(method) = v.get("method").and_then(Value::as_str) {
        let path = v
            .get("path")
            .and_then(Value::as_str)
            .ok_or("a request without a path")?;
        return Ok(HttpMessage::Request {
            method: method.to_string(),
            path: path.to_string(),
            version,
            headers,
            body,
        });
    }
    let status = v
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or("neither a request (method) nor a response (status)")?;
    let reason = v.get("reason").and_then(Value::as_str).unwrap_or_default();
    Ok(HttpMessage::Response {
        status,
        reason: reason.to_string(),
        version,
        headers,
        body,
    })
}

fn body_from_json(v: &Value) -> Result<Bytes, String> {
    let Some(body) = v.get("body") else {
        return Ok(Bytes::new());
    };
    match (v.get("body_encoding").and_then(Value::as_str), body) {
        (Some("json"), json) => serde_json::to_vec(json)
            .map(Bytes::from)
            .map_err(|e| e.to_string()),
        (Some("utf8") | None, Value::String(s)) => Ok(Bytes::from(s.clone().into_bytes())),
        (Some("base64"), Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Bytes::from)
            .map_err(|e| format!("body: {e}")),
        (encoding, _) => Err(format!("body with encoding {encoding:?} cannot be rebuilt")),
    }
}

/// Encodes the message given as JSON.
pub fn encode(v: &Value) -> Result<Bytes, String> {
    let msg = message_from_json(v)?;
    let mut out = BytesMut::new();
    HttpEncoder::new()
        .encode(&msg, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::Describe;

    #[test]
    fn a_request_and_a_response_round_trip_through_their_json() {
        let req = HttpMessage::request("POST", "/v1/plugin/x/actions/run", &b"{\"a\":1}"[..])
            .with_header("Host", "localhost")
            .with_header("Content-Type", "application/json");
        let back = message_from_json(&req.to_json()).unwrap();
        assert_eq!(back.to_json(), req.to_json());
        let resp = HttpMessage::response(500, &b"not json \xff"[..]).with_header("X-A", "b");
        let back = message_from_json(&resp.to_json()).unwrap();
        assert_eq!(back.body(), resp.body());
        assert_eq!(back.to_json(), resp.to_json());
        assert!(
            encode(&resp.to_json())
                .unwrap()
                .starts_with(b"HTTP/1.1 500 ")
        );
    }

    #[test]
    fn nonsense_is_a_reason_not_a_panic() {
        assert!(message_from_json(&serde_json::json!({"headers": 3})).is_err());
        assert!(message_from_json(&serde_json::json!({"status": 70000})).is_err());
        assert!(
            message_from_json(&serde_json::json!({"method": "GET", "path": "/",
                "body_encoding": "base64", "body": "!!"}))
            .is_err()
        );
    }
}
