//! An `api` step: one HTTP/1.1 request to the Cloud Hypervisor API socket, `Connection: close`,
//! the response read to its end (bounded) and parsed with `httparse`.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::expect::Observed;

/// Largest response read.
pub const MAX_RESPONSE: usize = 1 << 20;

/// The request bytes for `"METHOD endpoint"` with an optional JSON body.
pub fn request_bytes(method: &str, endpoint: &str, body: Option<&str>) -> Vec<u8> {
    let path = if endpoint.starts_with('/') {
        endpoint.to_string()
    } else {
        format!("/api/v1/{endpoint}")
    };
    let body = body.unwrap_or("");
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\nConnection: close\r\n"
    );
    if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
        out.push_str("Content-Type: application/json\r\n");
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// Parses a complete response: status and body (by `Content-Length`, else to the end).
pub fn parse_response(bytes: &[u8]) -> Result<(u16, String), String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the response ended in its head".into()),
        Err(e) => return Err(format!("bad response: {e}")),
    };
    let status = r.code.unwrap_or(0);
    let len = r
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    let rest = &bytes[head..];
    let body = match len {
        Some(n) => &rest[..n.min(rest.len())],
        None => rest,
    };
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

/// Sends the request and reads the response within `within`.
pub async fn request(socket: &Path, api: &str, body: Option<&str>, within: Duration) -> Observed {
    let start = Instant::now();
    let (method, endpoint) = api.split_once(' ').unwrap_or(("GET", api));
    let bytes = request_bytes(method, endpoint.trim(), body);
    let exchange = async {
        let mut s = tokio::net::UnixStream::connect(socket).await?;
        s.write_all(&bytes).await?;
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 || out.len() >= MAX_RESPONSE {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            // A complete response with a body of Content-Length: stop at once.
            if let Ok((_, b)) = parse_response(&out)
                && has_full_body(&out, b.len())
            {
                break;
            }
        }
        Ok::<_, std::io::Error>(out)
    };
    let r = tokio::time::timeout(within, exchange).await;
    let elapsed = start.elapsed();
    let failed = |kind: &str, message: String| Observed {
        ok: false,
        error_kind: Some(kind.into()),
        error_message: Some(message),
        elapsed,
        ..Observed::default()
    };
    match r {
        Err(_) => failed("timed_out", format!("no response within {within:?}")),
        Ok(Err(e)) => failed(&super::raw::io_kind(&e), e.to_string()),
        Ok(Ok(bytes)) => match parse_response(&bytes) {
            Ok((status, body)) => Observed {
                ok: (200..300).contains(&status),
                error_kind: (!(200..300).contains(&status)).then(|| format!("http_{status}")),
                error_message: (!(200..300).contains(&status)).then(|| body.clone()),
                status: Some(status),
                body: Some(body),
                elapsed,
                ..Observed::default()
            },
            Err(e) => failed("malformed", e),
        },
    }
}

fn has_full_body(bytes: &[u8], body_len: usize) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = r.parse(bytes) else {
        return false;
    };
    r.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .is_some_and(|n| body_len >= n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses() {
        let r = request_bytes("PUT", "vm.boot", None);
        assert_eq!(
            String::from_utf8_lossy(&r),
            "PUT /api/v1/vm.boot HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n"
        );
        let (status, body) = parse_response(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nerror!",
        )
        .expect("parse");
        assert_eq!((status, body.as_str()), (500, "error"));
        assert!(parse_response(b"HTTP/1.1 20").is_err());
    }
}
