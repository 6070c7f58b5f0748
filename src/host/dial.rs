//! Dialing an agent: connect (and for `hvsock:` the `CONNECT`/`OK` handshake) under per-phase
//! deadlines, retried with backoff as the real clients do (seed 001's `DialGuest`: 5 attempts,
//! 100 ms doubling, any dial or handshake error retried).

use std::time::Duration;

use tokio::time::Instant;

use super::error::{ClientError, Phase};
use super::retry::{Deadlines, RetryPolicy, retry_if};
use crate::io::{BoxStream, Endpoint, connect, connect_unix, handshake_client};

/// Deadline used for a phase whose [`Deadlines`] entry is `None` (so that no wait is unbounded).
pub const FALLBACK_DEADLINE: Duration = Duration::from_secs(30);

/// How to dial.
#[derive(Debug, Clone)]
pub struct DialOptions {
    /// Retry schedule for connect and handshake failures.
    pub retry: RetryPolicy,
    /// Per-phase deadlines.
    pub deadlines: Deadlines,
    /// Hooks around dialing (recording, a modelled host vsock); none by default.
    pub hooks: DialHooks,
}

/// What AF_VSOCK `connect(2)` answers on a modelled host: the OS error for `(cid, port)`.
pub type VsockModel = std::sync::Arc<dyn Fn(u32, u32) -> std::io::Error + Send + Sync>;

/// Hooks around dialing, for the scenario runner and tests.
#[derive(Clone, Default)]
pub struct DialHooks {
    /// Records every connection (from before any handshake) as the client sees it.
    pub tap: Option<crate::tap::inline::InlineTap>,
    /// Answers `vsock:` dials instead of the kernel: a modelled host (e.g. one whose VMM
    /// offers only hybrid vsock, so there is no vhost-vsock device for the CID). The error is
    /// classified exactly as a real `connect(2)` error would be.
    pub vsock: Option<VsockModel>,
}

impl std::fmt::Debug for DialHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialHooks")
            .field("tap", &self.tap.is_some())
            .field("vsock", &self.vsock.is_some())
            .finish()
    }
}

impl Default for DialOptions {
    /// Seed 001's schedule (5 attempts, 100 ms doubling) with hypeman's 5 s connect and 5 s
    /// handshake deadlines, and LimiQuantix's 30 s request deadline.
    fn default() -> Self {
        let mut deadlines = Deadlines::hypeman();
        deadlines.request = Deadlines::limiquantix().request;
        deadlines.ping = Deadlines::limiquantix().ping;
        deadlines.execute_grace = Deadlines::limiquantix().execute_grace;
        Self {
            retry: RetryPolicy::firecracker_dial(),
            deadlines,
            hooks: DialHooks::default(),
        }
    }
}

impl DialOptions {
    /// The connect deadline (or the fallback).
    pub fn connect_deadline(&self) -> Duration {
        self.deadlines.connect.unwrap_or(FALLBACK_DEADLINE)
    }

    /// The handshake deadline (or the fallback).
    pub fn handshake_deadline(&self) -> Duration {
        self.deadlines.handshake.unwrap_or(FALLBACK_DEADLINE)
    }

    /// The request deadline (or the fallback).
    pub fn request_deadline(&self) -> Duration {
        self.deadlines.request.unwrap_or(FALLBACK_DEADLINE)
    }

    /// The ping deadline: `ping`, else `request`, else the fallback.
    pub fn ping_deadline(&self) -> Duration {
        self.deadlines
            .ping
            .or(self.deadlines.request)
            .unwrap_or(FALLBACK_DEADLINE)
    }
}

/// A connected stream and how it was obtained.
pub struct Dialed {
    /// The stream, past any channel handshake (bytes after `OK` are in front of it).
    pub stream: BoxStream,
    /// Attempts made (1 when the first succeeded).
    pub attempts: u32,
    /// Time from the first attempt to success.
    pub elapsed: Duration,
}

impl std::fmt::Debug for Dialed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialed")
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed)
            .finish_non_exhaustive()
    }
}

/// One attempt: connect, then for `hvsock:` the handshake, each under its own deadline.
pub async fn dial_once(endpoint: &Endpoint, opts: &DialOptions) -> Result<BoxStream, ClientError> {
    let tap = |stream: BoxStream| match &opts.hooks.tap {
        Some(tap) => tap.wrap(stream, &endpoint.to_string()),
        None => stream,
    };
    match endpoint {
        Endpoint::Hvsock { path, port } => {
            let stream = tap(Box::new(connect_unix(path, opts.connect_deadline()).await?));
            let (stream, _ok) = handshake_client(stream, *port, opts.handshake_deadline()).await?;
            Ok(Box::new(stream))
        }
        Endpoint::Vsock { cid, port } if opts.hooks.vsock.is_some() => {
            let model = opts.hooks.vsock.as_ref().map(|m| m(*cid, *port));
            let source = model.unwrap_or_else(|| std::io::Error::other("no model"));
            Err(crate::io::connect::classify_vsock_error(
                &endpoint.to_string(),
                *cid,
                *port,
                source,
            )
            .into())
        }
        other => Ok(tap(connect(other, opts.connect_deadline()).await?)),
    }
}

/// Dials `endpoint`, retrying connect and handshake failures by `opts.retry`.
pub async fn dial(endpoint: &Endpoint, opts: &DialOptions) -> Result<Dialed, ClientError> {
    let start = Instant::now();
    let mut attempts = 0u32;
    let result = retry_if(&opts.retry, ClientError::is_retryable, || {
        attempts += 1;
        dial_once(endpoint, opts)
    })
    .await;
    match result {
        Ok(stream) => Ok(Dialed {
            stream,
            attempts,
            elapsed: start.elapsed(),
        }),
        Err(e) => {
            let n = e.attempts.len() as u32;
            let last = e.into_last().unwrap_or(ClientError::Io {
                phase: Phase::Connect,
                source: std::io::Error::other("no attempt was made"),
            });
            Err(if n > 1 {
                ClientError::GaveUp {
                    attempts: n,
                    last: Box::new(last),
                }
            } else {
                last
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Listener;
    use crate::wire::hybrid::Flavour;

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_socket_appears() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("late.sock");
        let ep = Endpoint::Unix(path.clone());
        let binder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let mut l = Listener::bind_unix(&path).await.expect("bind");
            let _c = l.accept().await.expect("accept");
        });
        let dialed = dial(&ep, &DialOptions::default()).await.expect("dial");
        // Attempts at 0, 100, 300 ms: the socket appears at 250 ms.
        assert_eq!(dialed.attempts, 3);
        drop(dialed);
        binder.await.expect("binder");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_with_every_attempt_counted() {
        let ep = Endpoint::Unix("/nonexistent/guestwire.sock".into());
        let err = dial(&ep, &DialOptions::default())
            .await
            .expect_err("no socket");
        assert_eq!(err.kind(), "no_such_socket");
        assert!(
            matches!(err, ClientError::GaveUp { attempts: 5, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn hvsock_with_nobody_on_the_port_is_a_handshake_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.sock");
        let mut l = Listener::bind_hvsock(&path, &[1024], Flavour::Firecracker)
            .await
            .expect("bind");
        tokio::spawn(async move { l.accept().await });
        let ep = Endpoint::Hvsock { path, port: 9 };
        let opts = DialOptions {
            retry: RetryPolicy::once(),
            ..DialOptions::default()
        };
        let err = dial(&ep, &opts).await.expect_err("unserved");
        assert_eq!(err.kind(), "handshake_failed");
        assert!(err.to_string().contains("port 9"), "{err}");
    }
}
