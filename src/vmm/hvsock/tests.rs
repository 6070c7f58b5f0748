//! Library-level tests of the hybrid-vsock mock VMM, over real Unix sockets in a tempdir with
//! the real host clients: the 2000 ms request timeout, `vm_pause` and the API's pause on tokio's
//! paused clock, guest-initiated connections, and clean-up. The CLI tests are in
//! `tests/vmm_hvsock.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;
use tokio::time::{Instant, timeout};

use super::*;
use crate::guest::GuestConfig;
use crate::host::DialOptions;
use crate::host::quantix::{Framing, QuantixClient};
use crate::host::retry::RetryPolicy;
use crate::io::Endpoint;
use crate::wire::hybrid::{CONN_REQUEST_TIMEOUT_MS, Flavour};
use crate::wire::protocol::Protocol;

/// Bound on every wait (virtual under a paused clock).
const DEADLINE: Duration = Duration::from_secs(120);

fn quiet_guest() -> Arc<GuestConfig> {
    Arc::new(GuestConfig {
        telemetry_interval: None,
        ..GuestConfig::default()
    })
}

fn config(dir: &tempfile::TempDir, flavour: Flavour) -> HvsockConfig {
    let mut c = HvsockConfig::new(dir.path().join("v.sock"))
        .with_port(52, GuestService::Mock(Protocol::Quantix));
    c.flavour = flavour;
    c.guest = quiet_guest();
    c
}

fn opts() -> DialOptions {
    let mut o = DialOptions {
        retry: RetryPolicy::once(),
        ..DialOptions::default()
    };
    o.deadlines.ping = Some(Duration::from_secs(60));
    o
}

async fn next_matching(
    rx: &mut broadcast::Receiver<HvsockEvent>,
    want: impl Fn(&HvsockEvent) -> bool,
) -> HvsockEvent {
    loop {
        let e = timeout(DEADLINE, rx.recv())
            .await
            .expect("event deadline")
            .expect("event");
        if want(&e) {
            return e;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_host_that_sends_no_command_is_closed_silently_after_the_request_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    for flavour in Flavour::ALL {
        let vmm = HvsockVmm::start(config(&dir, flavour))
            .await
            .expect("start");
        let mut events = vmm.subscribe();
        // Nothing, then half a command with no newline: both time out.
        for sent in [&b""[..], b"CONNECT 5"] {
            // Firecracker's first read must hold the whole command: half of one is malformed.
            let cut = flavour == Flavour::Firecracker && !sent.is_empty();
            let mut s = UnixStream::connect(vmm.socket_path())
                .await
                .expect("connect");
            s.write_all(sent).await.expect("write");
            let t0 = Instant::now();
            let mut rest = Vec::new();
            timeout(DEADLINE, s.read_to_end(&mut rest))
                .await
                .expect("deadline")
                .expect("EOF");
            assert!(rest.is_empty(), "{flavour}: closed without a reply");
            let waited = t0.elapsed();
            let e = next_matching(&mut events, |e| matches!(e, HvsockEvent::Refused { .. })).await;
            let HvsockEvent::Refused {
                kind,
                origin: "host",
                ..
            } = e
            else {
                panic!("{flavour} {sent:?}: {e:?}");
            };
            if cut {
                assert_eq!(kind, "malformed", "{flavour} {sent:?}");
                assert!(waited < Duration::from_millis(CONN_REQUEST_TIMEOUT_MS));
            } else {
                assert_eq!(kind, "request_timeout", "{flavour} {sent:?}");
                assert!(
                    waited >= Duration::from_millis(CONN_REQUEST_TIMEOUT_MS),
                    "{flavour} {sent:?}: closed after {waited:?}"
                );
            }
        }
        assert_eq!(vmm.snapshot().refused_total, 2);
        vmm.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn vm_pause_holds_the_ping_until_the_pause_is_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir, Flavour::Firecracker);
    cfg.faults = vec![
        "vm_pause:duration=30s,direction=to_guest,on_type=ping"
            .parse()
            .expect("spec"),
    ];
    let vmm = HvsockVmm::start(cfg).await.expect("start");
    let mut events = vmm.subscribe();
    let ep = Endpoint::Hvsock {
        path: vmm.socket_path().to_path_buf(),
        port: 52,
    };
    let client = QuantixClient::connect(&ep, opts(), Framing::Qtx1)
        .await
        .expect("connect");
    let t0 = Instant::now();
    let pong = timeout(DEADLINE, client.ping())
        .await
        .expect("deadline")
        .expect("pong");
    assert_eq!(pong.sequence, 1);
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(30), "answered after {took:?}");
    let paused = next_matching(&mut events, |e| matches!(e, HvsockEvent::Paused { .. })).await;
    assert_eq!(
        paused,
        HvsockEvent::Paused {
            by: "fault",
            duration_ms: Some(30_000)
        }
    );
    next_matching(&mut events, |e| {
        matches!(e, HvsockEvent::Resumed { by: "fault" })
    })
    .await;
    assert!(!vmm.is_paused());
    // Once only: the next ping is not held.
    let t1 = Instant::now();
    timeout(DEADLINE, client.ping())
        .await
        .expect("deadline")
        .expect("pong");
    assert!(t1.elapsed() < Duration::from_secs(30));
    drop(client);
    vmm.stop().await;
}

#[tokio::test(start_paused = true)]
async fn pause_freezes_the_channel_both_ways_and_resume_releases_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vmm = HvsockVmm::start(config(&dir, Flavour::CloudHypervisor))
        .await
        .expect("start");
    let ep = Endpoint::Hvsock {
        path: vmm.socket_path().to_path_buf(),
        port: 52,
    };
    let client = Arc::new(
        QuantixClient::connect(&ep, opts(), Framing::Qtx1)
            .await
            .expect("connect"),
    );
    timeout(DEADLINE, client.ping())
        .await
        .expect("deadline")
        .expect("pong before the pause");
    vmm.pause();
    assert!(vmm.is_paused());
    let c = client.clone();
    let ping = tokio::spawn(async move { c.ping().await });
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(!ping.is_finished(), "nothing moves while paused");
    let snap = vmm.snapshot();
    assert!(snap.paused);
    let conn = snap.connections.first().expect("one connection");
    assert_eq!(conn.state, "Established");
    assert!(conn.queued_to_guest > 0, "the ping queues: {snap:?}");
    // A new connection gets no OK while paused either.
    let mut s = UnixStream::connect(vmm.socket_path())
        .await
        .expect("connect");
    s.write_all(b"CONNECT 52\n").await.expect("write");
    let mut ok = [0u8; 14];
    assert!(
        timeout(Duration::from_secs(5), s.read_exact(&mut ok))
            .await
            .is_err(),
        "no OK while paused"
    );
    vmm.resume();
    let pong = timeout(DEADLINE, ping)
        .await
        .expect("deadline")
        .expect("join")
        .expect("pong after the resume");
    assert_eq!(pong.sequence, 2);
    timeout(DEADLINE, s.read_exact(&mut ok))
        .await
        .expect("deadline")
        .expect("OK after the resume");
    assert_eq!(&ok, b"OK 1073741825\n");
    vmm.stop().await;
}

#[tokio::test]
async fn a_guest_initiated_connection_reaches_the_host_listener_on_socket_underscore_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vmm = HvsockVmm::start(config(&dir, Flavour::VhostDevice))
        .await
        .expect("start");
    let mut events = vmm.subscribe();
    let host_path = dir.path().join("v.sock_5000");
    let listener = UnixListener::bind(&host_path).expect("bind host listener");
    let mut guest = timeout(DEADLINE, vmm.guest_connect(5000))
        .await
        .expect("deadline")
        .expect("connected");
    let (mut host, _) = timeout(DEADLINE, listener.accept())
        .await
        .expect("deadline")
        .expect("accept");
    guest.write_all(b"from the guest").await.expect("write");
    let mut got = [0u8; 14];
    timeout(DEADLINE, host.read_exact(&mut got))
        .await
        .expect("deadline")
        .expect("read");
    assert_eq!(&got, b"from the guest");
    host.write_all(b"from the host").await.expect("write");
    let mut back = [0u8; 13];
    timeout(DEADLINE, guest.read_exact(&mut back))
        .await
        .expect("deadline")
        .expect("read");
    assert_eq!(&back, b"from the host");
    let e = next_matching(&mut events, |e| {
        matches!(e, HvsockEvent::Established { .. })
    })
    .await;
    assert!(
        matches!(
            e,
            HvsockEvent::Established {
                origin: "guest",
                host_port: 5000,
                ..
            }
        ),
        "{e:?}"
    );
    // The host hangs up: the guest reads EOF.
    drop(host);
    let mut rest = Vec::new();
    timeout(DEADLINE, guest.read_to_end(&mut rest))
        .await
        .expect("deadline")
        .expect("EOF");
    assert!(rest.is_empty());
    drop(guest);
    let closed = next_matching(&mut events, |e| matches!(e, HvsockEvent::Closed { .. })).await;
    assert!(
        matches!(
            closed,
            HvsockEvent::Closed {
                origin: "guest",
                by: "host",
                bytes_to_guest: 13,
                bytes_to_host: 14,
                ..
            }
        ),
        "{closed:?}"
    );
    // Nothing listens on <socket>_5001: the guest is refused.
    let err = timeout(DEADLINE, vmm.guest_connect(5001))
        .await
        .expect("deadline")
        .expect_err("refused");
    assert_eq!(err.kind(), "guest_connect_refused", "{err}");
    assert!(err.to_string().contains("v.sock_5001"), "{err}");
    let e = next_matching(&mut events, |e| matches!(e, HvsockEvent::Refused { .. })).await;
    assert!(
        matches!(
            e,
            HvsockEvent::Refused {
                origin: "guest",
                kind: "host_refused",
                ..
            }
        ),
        "{e:?}"
    );
    vmm.stop().await;
    drop(listener);
}

#[tokio::test]
async fn stop_removes_the_socket_and_a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.sock");
    // A stale socket file: bound, then its listener gone.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale"));
    assert!(path.exists());
    let vmm = HvsockVmm::start(config(&dir, Flavour::Firecracker))
        .await
        .expect("start over a stale file");
    // A live VMM is not replaced.
    let err = HvsockVmm::start(config(&dir, Flavour::Firecracker))
        .await
        .expect_err("in use");
    assert_eq!(err.kind(), "addr_in_use", "{err}");
    vmm.stop().await;
    assert!(!path.exists(), "the socket file is removed");
}

#[tokio::test]
async fn a_socket_agent_is_started_served_and_killed_with_the_vmm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("agent.pid");
    // A stand-in agent that only creates its socket path and waits: this checks the start,
    // the event and the clean-up (the CLI tests serve requests through a real agent).
    let cmd = format!(
        "echo $$ > {}; touch {{socket}}; exec sleep 60",
        pidfile.display()
    );
    let mut cfg = config(&dir, Flavour::Firecracker);
    cfg.ports.insert(7, GuestService::Command(cmd));
    let vmm = HvsockVmm::start(cfg).await.expect("start");
    let mut events = vmm.subscribe();
    let e = next_matching(&mut events, |e| {
        matches!(e, HvsockEvent::AgentStarted { .. })
    })
    .await;
    let HvsockEvent::AgentStarted {
        port: 7, socket, ..
    } = e
    else {
        panic!("{e:?}");
    };
    assert!(socket.ends_with("agent-7.sock"), "{socket}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("number");
    vmm.stop().await;
    let gone =
        rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid).expect("pid"))
            .is_err();
    assert!(gone, "the agent is killed and reaped");
    assert!(!std::path::Path::new(&socket).exists());
}

/// Raises the soft limit on open files to at least `want` (up to the hard limit); returns
/// whether `want` is allowed.
fn allow_open_files(want: u64) -> bool {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|c| c >= want) {
        return true;
    }
    let max = limit.maximum.unwrap_or(u64::MAX);
    let raised = Rlimit {
        current: Some(want.min(max)),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).is_ok() && max >= want
}

#[tokio::test(start_paused = true)]
async fn beyond_1023_live_connections_a_host_connection_is_accepted_and_closed() {
    use crate::wire::hybrid::MAX_CONNECTIONS;
    // Two descriptors per connection (ours and the VMM's), plus headroom.
    let needed = 2 * (MAX_CONNECTIONS as u64 + 1) + 256;
    assert!(
        allow_open_files(needed),
        "this test needs {needed} open files (ulimit -n)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let vmm = HvsockVmm::start(config(&dir, Flavour::Firecracker))
        .await
        .expect("start");
    let mut events = vmm.subscribe();
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        held.push(
            UnixStream::connect(vmm.socket_path())
                .await
                .expect("connect"),
        );
        next_matching(&mut events, |e| {
            matches!(e, HvsockEvent::HostConnected { .. })
        })
        .await;
    }
    assert_eq!(vmm.snapshot().connections.len(), MAX_CONNECTIONS);
    let mut extra = UnixStream::connect(vmm.socket_path())
        .await
        .expect("connect");
    extra.write_all(b"CONNECT 52\n").await.expect("write");
    let mut rest = Vec::new();
    // Closed unread, so the kernel may turn the close into a reset, as under Firecracker.
    match timeout(DEADLINE, extra.read_to_end(&mut rest))
        .await
        .expect("deadline")
    {
        Ok(_) => assert!(rest.is_empty(), "closed without a reply"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    let e = next_matching(&mut events, |e| matches!(e, HvsockEvent::Refused { .. })).await;
    assert!(
        matches!(
            e,
            HvsockEvent::Refused {
                kind: "too_many_connections",
                ..
            }
        ),
        "{e:?}"
    );
    // One goes away: its place is free again.
    drop(held.pop());
    next_matching(&mut events, |e| matches!(e, HvsockEvent::Refused { .. })).await;
    let mut again = UnixStream::connect(vmm.socket_path())
        .await
        .expect("connect");
    again.write_all(b"CONNECT 52\n").await.expect("write");
    let mut ok = [0u8; 3];
    timeout(DEADLINE, again.read_exact(&mut ok))
        .await
        .expect("deadline")
        .expect("OK");
    assert_eq!(&ok, b"OK ");
    drop(held);
    vmm.stop().await;
}
