//! The async adapter for one case: connect (with the hybrid-vsock handshake unless the case
//! brings its own `CONNECT` line), send the case's writes, read whatever comes back under a
//! deadline into a bounded buffer, close. Every byte both ways is recorded with its time, for
//! the capture. Every wait has a deadline.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::case::Case;
use super::verdict::{Exchange, ReplyCheck};
use crate::capture::vsockmon::Side;
use crate::capture::writer::Close;
use crate::fault::SPLIT_GAP;
use crate::io::stream::BoxStream;
use crate::io::{Endpoint, connect, connect_unix};
use crate::wire::Direction;
use crate::wire::protocol::Protocol;

/// Longest hybrid-vsock `OK` line read (Firecracker's reply is at most 14 bytes).
const OK_LINE_MAX: usize = 64;

/// Deadlines and bounds of one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeOptions {
    /// Connecting, and the hybrid-vsock handshake, each.
    pub connect_timeout: Duration,
    /// Writing the case's bytes.
    pub write_timeout: Duration,
    /// How long to wait for the reply to a valid request (and, at most, for anything).
    pub read_timeout: Duration,
    /// When no reply is due: how long the peer may stay quiet before the exchange ends.
    pub settle: Duration,
    /// Most bytes kept from the peer per case.
    pub read_limit: usize,
}

impl Default for ExchangeOptions {
    /// 5 s to connect and to write, 2 s for a reply, 100 ms of quiet, 1 MiB read.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(2),
            settle: Duration::from_millis(100),
            read_limit: 1 << 20,
        }
    }
}

/// One recorded event of a case's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The host connected.
    Connect,
    /// Bytes went one way.
    Payload(Direction, Bytes),
    /// A side closed (or reset).
    Close(Side, Close),
}

/// What running a case gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseRun {
    /// How the exchange went.
    pub exchange: Exchange,
    /// Its events, timed, in order.
    pub events: Vec<(SystemTime, Recorded)>,
}

impl CaseRun {
    fn note(&mut self, event: Recorded) {
        self.events.push((SystemTime::now(), event));
    }

    /// The bytes the peer sent, joined.
    pub fn received(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Recorded::Payload(Direction::ToHost, b) => Some(&b[..]),
                _ => None,
            })
            .collect::<Vec<_>>()
            .concat()
    }
}

/// Connects for a case: raw to the VMM socket for a case with its own `CONNECT` line, else the
/// handshake here (recorded), else [`connect`].
async fn open(
    endpoint: &Endpoint,
    case: &Case,
    opts: &ExchangeOptions,
    run: &mut CaseRun,
    check: &mut ReplyCheck,
) -> Result<BoxStream, String> {
    let Endpoint::Hvsock { path, port } = endpoint else {
        return connect(endpoint, opts.connect_timeout)
            .await
            .map_err(|e| e.to_string());
    };
    let mut s = connect_unix(path, opts.connect_timeout)
        .await
        .map_err(|e| e.to_string())?;
    run.note(Recorded::Connect);
    if case.raw_handshake {
        return Ok(Box::new(s));
    }
    let line = format!("CONNECT {port}\n");
    let io = async {
        s.write_all(line.as_bytes()).await?;
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\n") && got.len() < OK_LINE_MAX {
            if s.read(&mut byte).await? == 0 {
                break;
            }
            got.push(byte[0]);
        }
        Ok::<_, std::io::Error>(got)
    };
    let got = tokio::time::timeout(opts.connect_timeout, io).await;
    run.exchange.sent += line.len() as u64;
    run.note(Recorded::Payload(
        Direction::ToGuest,
        Bytes::from(line.into_bytes()),
    ));
    let got = match got {
        Err(_) => return Err(format!("no OK line within {:?}", opts.connect_timeout)),
        Ok(Err(e)) => return Err(format!("handshake: {e}")),
        Ok(Ok(got)) => got,
    };
    if !got.is_empty() {
        check.feed(&got);
        run.note(Recorded::Payload(
            Direction::ToHost,
            Bytes::from(got.clone()),
        ));
    }
    if got.starts_with(b"OK ") && got.ends_with(b"\n") {
        Ok(Box::new(s))
    } else {
        run.note(Recorded::Close(Side::Guest, Close::Shutdown));
        Err(format!(
            "hybrid-vsock handshake for port {port} refused: {:?}",
            String::from_utf8_lossy(&got)
        ))
    }
}

/// Runs `case` against `endpoint`: connect, send, read back, close.
pub async fn run_case(
    endpoint: &Endpoint,
    protocol: &Protocol,
    case: &Case,
    opts: &ExchangeOptions,
) -> CaseRun {
    let mut run = CaseRun::default();
    let mut check = ReplyCheck::new(protocol);
    let stream = match open(endpoint, case, opts, &mut run, &mut check).await {
        Ok(s) => s,
        Err(e) => {
            run.exchange.connect_error = Some(e);
            run.exchange.replies = check.replies();
            return run;
        }
    };
    if !matches!(endpoint, Endpoint::Hvsock { .. }) {
        run.note(Recorded::Connect);
    }
    talk(stream, case, opts, &mut run, &mut check).await;
    run.exchange.replies = check.replies();
    run.exchange.decode_error = check.error().map(ToString::to_string);
    run
}

async fn talk<S>(
    mut stream: S,
    case: &Case,
    opts: &ExchangeOptions,
    run: &mut CaseRun,
    check: &mut ReplyCheck,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut peer_gone = false;
    for (i, w) in case.writes.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(SPLIT_GAP).await;
        }
        run.note(Recorded::Payload(Direction::ToGuest, w.clone()));
        match tokio::time::timeout(opts.write_timeout, stream.write_all(w)).await {
            Ok(Ok(())) => run.exchange.sent += w.len() as u64,
            // A peer that stops reading or closes while a case is written is not a finding by
            // itself: the probe tells whether it is still alive.
            Ok(Err(_)) | Err(_) => {
                peer_gone = true;
                break;
            }
        }
    }
    if case.half_close && !peer_gone {
        let _ = tokio::time::timeout(opts.write_timeout, stream.shutdown()).await;
    }
    read_back(&mut stream, case, opts, run, check).await;
    if !run.exchange.peer_closed {
        run.note(Recorded::Close(Side::Host, Close::Shutdown));
    }
}

async fn read_back<S>(
    stream: &mut S,
    case: &Case,
    opts: &ExchangeOptions,
    run: &mut CaseRun,
    check: &mut ReplyCheck,
) where
    S: AsyncRead + Unpin,
{
    let start = tokio::time::Instant::now();
    // A deadline past the clock's range is a day away (still a deadline).
    let end = start
        .checked_add(opts.read_timeout)
        .unwrap_or(start + Duration::from_secs(86_400));
    let mut buf = vec![0u8; 64 * 1024];
    let mut kept = 0usize;
    while kept < opts.read_limit {
        let now = tokio::time::Instant::now();
        if now >= end {
            break;
        }
        let waiting_for_reply = case.expect_reply && check.replies() == 0;
        let wait = if waiting_for_reply {
            end - now
        } else {
            opts.settle.min(end - now)
        };
        let room = buf.len().min(opts.read_limit - kept);
        match tokio::time::timeout(wait, stream.read(&mut buf[..room])).await {
            Err(_) => break,
            Ok(Ok(0)) => {
                run.exchange.peer_closed = true;
                check.eof();
                run.note(Recorded::Close(Side::Guest, Close::Shutdown));
                break;
            }
            Ok(Ok(n)) => {
                kept += n;
                run.exchange.received += n as u64;
                check.feed(&buf[..n]);
                run.note(Recorded::Payload(
                    Direction::ToHost,
                    Bytes::copy_from_slice(&buf[..n]),
                ));
                if case.expect_reply && check.replies() > 0 {
                    break;
                }
            }
            Ok(Err(_)) => {
                run.exchange.peer_closed = true;
                run.note(Recorded::Close(Side::Guest, Close::Reset));
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::livefuzz::case::Family;

    fn case(bytes: &'static [u8], expect_reply: bool) -> Case {
        Case {
            index: 0,
            family: Family::Valid,
            description: "t".into(),
            writes: vec![Bytes::from_static(bytes)],
            half_close: false,
            raw_handshake: false,
            expect_reply,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_ends_the_exchange_at_the_read_deadline() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let opts = ExchangeOptions::default();
        let mut run = CaseRun::default();
        let mut check = ReplyCheck::new(&Protocol::Qga);
        let c = case(b"{\"execute\":\"guest-ping\"}\n", true);
        let peer = tokio::spawn(async move {
            let mut got = vec![0u8; 64];
            let n = theirs.read(&mut got).await.expect("read");
            tokio::time::sleep(Duration::from_secs(3600)).await;
            n
        });
        talk(ours, &c, &opts, &mut run, &mut check).await;
        assert_eq!(run.exchange.sent, c.input().len() as u64);
        assert!(!run.exchange.peer_closed);
        assert_eq!(check.replies(), 0);
        peer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_then_a_close_is_recorded_both_ways() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let opts = ExchangeOptions::default();
        let mut run = CaseRun::default();
        let mut check = ReplyCheck::new(&Protocol::Qga);
        let c = case(b"{\"execute\":\"guest-ping\"}\n", false);
        let peer = tokio::spawn(async move {
            let mut got = vec![0u8; 64];
            let _ = theirs.read(&mut got).await;
            theirs
                .write_all(b"{\"return\": {}}\n")
                .await
                .expect("write");
        });
        talk(ours, &c, &opts, &mut run, &mut check).await;
        peer.await.expect("peer");
        assert_eq!(check.replies(), 1);
        assert!(run.exchange.peer_closed);
        assert_eq!(run.received(), b"{\"return\": {}}\n");
        assert!(matches!(
            run.events.last(),
            Some((_, Recorded::Close(Side::Guest, Close::Shutdown)))
        ));
    }
}
