//! Whole-file reads and writes over qemu-ga's handle-based commands: `guest-file-open`, then
//! `guest-file-read`/`guest-file-write` in chunks of [`FILE_CHUNK`] (base64), then
//! `guest-file-close`, all within one request deadline. The handle is closed after a failure too,
//! unless the stream is out of step (then the agent keeps it open, as qemu-ga keeps handles of
//! vanished clients).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{FILE_CHUNK, QgaClient};
use crate::host::error::{ClientError, Phase};

impl QgaClient {
    /// Reads the whole file at `path` (`guest-file-open` `r`, reads until `eof`, close), within
    /// the request deadline.
    pub async fn file_read(&mut self, path: &str) -> Result<Vec<u8>, ClientError> {
        let until = Instant::now() + self.opts.request_deadline();
        let handle = self.open(path, "r", until).await?;
        let mut data = Vec::new();
        let result = async {
            loop {
                let left = self.left(until, "guest-file-read")?;
                let r = self
                    .execute_within(
                        "guest-file-read",
                        Some(json!({ "handle": handle, "count": FILE_CHUNK })),
                        left,
                    )
                    .await?;
                let chunk = r.get("buf-b64").and_then(Value::as_str).unwrap_or_default();
                let bytes = STANDARD.decode(chunk).map_err(|e| ClientError::Protocol {
                    reason: format!("guest-file-read: bad base64: {e}"),
                })?;
                let eof = r.get("eof").and_then(Value::as_bool).unwrap_or(true);
                let empty = bytes.is_empty();
                data.extend_from_slice(&bytes);
                if eof || empty {
                    return Ok(());
                }
            }
        }
        .await;
        self.close(handle, until, result).await?;
        Ok(data)
    }

    /// Writes `data` to `path` (`guest-file-open` `w`, writes, close), within the request
    /// deadline; returns the bytes written.
    pub async fn file_write(&mut self, path: &str, data: &[u8]) -> Result<u64, ClientError> {
        let until = Instant::now() + self.opts.request_deadline();
        let handle = self.open(path, "w", until).await?;
        let mut written = 0u64;
        let result = async {
            for chunk in data.chunks(FILE_CHUNK) {
                let left = self.left(until, "guest-file-write")?;
                let r = self
                    .execute_within(
                        "guest-file-write",
                        Some(json!({ "handle": handle, "buf-b64": STANDARD.encode(chunk) })),
                        left,
                    )
                    .await?;
                let n = r.get("count").and_then(Value::as_u64).unwrap_or(0);
                written += n;
                if n != chunk.len() as u64 {
                    return Err(ClientError::Protocol {
                        reason: format!("guest-file-write wrote {n} of {} bytes", chunk.len()),
                    });
                }
            }
            Ok(())
        }
        .await;
        self.close(handle, until, result).await?;
        Ok(written)
    }

    fn left(&self, until: Instant, what: &str) -> Result<Duration, ClientError> {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(ClientError::TimedOut {
                phase: Phase::Request,
                after: self.opts.request_deadline(),
                detail: format!("{what} did not finish"),
            })
        } else {
            Ok(left)
        }
    }

    async fn open(&mut self, path: &str, mode: &str, until: Instant) -> Result<i64, ClientError> {
        let left = self.left(until, "guest-file-open")?;
        let v = self
            .execute_within(
                "guest-file-open",
                Some(json!({ "path": path, "mode": mode })),
                left,
            )
            .await?;
        v.as_i64().ok_or_else(|| ClientError::Protocol {
            reason: format!("guest-file-open returned no handle: {v}"),
        })
    }

    /// Closes `handle` unless the stream is out of step; `result`'s error wins over the close's.
    async fn close(
        &mut self,
        handle: i64,
        until: Instant,
        result: Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        if self.needs_sync {
            return result;
        }
        let left = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let closed = self
            .execute_within("guest-file-close", Some(json!({ "handle": handle })), left)
            .await;
        result.and(closed.map(drop))
    }
}
