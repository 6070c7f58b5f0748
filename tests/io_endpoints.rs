//! Real-socket tests of `guestwire::io`: Unix sockets in a temporary directory, TCP on loopback,
//! pseudo-terminals. Never AF_VSOCK (this machine is itself a VM: CID 2 is its real host). Every
//! wait has a deadline.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use guestwire::io::{
    BoxStream, ConnectError, Connected, Endpoint, FramedReader, FramedWriter, ListenError,
    Listener, ReadError, connect,
};
use guestwire::wire::Encoder;
use guestwire::wire::frame::{LpConfig, LpDecoder, LpEncoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(10);

fn unix(path: &Path) -> Endpoint {
    Endpoint::Unix(path.to_path_buf())
}

async fn connect_err(ep: &Endpoint) -> ConnectError {
    match connect(ep, DEADLINE).await {
        Ok(_) => panic!("connecting to {ep} should fail"),
        Err(e) => e,
    }
}

/// Connects to `ep` while `listener` accepts; both within the deadline.
async fn pair(
    listener: &mut Listener,
    ep: &Endpoint,
) -> (
    Result<BoxStream, ConnectError>,
    Result<Connected, ListenError>,
) {
    let (client, server) = tokio::join!(connect(ep, DEADLINE), async {
        timeout(DEADLINE, listener.accept())
            .await
            .expect("accept deadline")
    });
    (client, server)
}

/// Sends `msg` one way and back the other way.
async fn ping_pong<A, B>(a: &mut A, b: &mut B, msg: &[u8])
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut got = vec![0u8; msg.len()];
    timeout(DEADLINE, a.write_all(msg))
        .await
        .expect("deadline")
        .expect("write a");
    timeout(DEADLINE, b.read_exact(&mut got))
        .await
        .expect("deadline")
        .expect("read b");
    assert_eq!(got, msg);
    timeout(DEADLINE, b.write_all(msg))
        .await
        .expect("deadline")
        .expect("write b");
    timeout(DEADLINE, a.read_exact(&mut got))
        .await
        .expect("deadline")
        .expect("read a");
    assert_eq!(got, msg);
}

#[tokio::test]
async fn unix_connect_and_accept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("agent.sock");
    let mut listener = Listener::bind(&unix(&path)).await.expect("bind");
    assert_eq!(listener.endpoint(), &unix(&path));
    let (client, server) = pair(&mut listener, &unix(&path)).await;
    let mut client = client.expect("connect");
    let mut server = server.expect("accept");
    assert_eq!(
        server.peer,
        format!(
            "pid {} uid {}",
            std::process::id(),
            std::fs::metadata("/proc/self").expect("proc").uid()
        )
    );
    assert_eq!(server.local, format!("unix:{}", path.display()));
    ping_pong(&mut client, &mut server.stream, b"hello over unix").await;
    drop(listener);
    assert!(
        !path.exists(),
        "the listener removes its socket file on drop"
    );
}

#[tokio::test]
async fn missing_socket_is_no_such_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = connect_err(&unix(&dir.path().join("nope.sock"))).await;
    assert!(matches!(&e, ConnectError::NoSuchSocket { .. }), "{e:?}");
    assert_eq!(e.kind(), "no_such_socket");
    let e = connect_err(&unix(&dir.path().join("no/dir/x.sock"))).await;
    assert_eq!(e.kind(), "no_such_socket");
}

#[tokio::test]
async fn stale_socket_is_refused_and_bind_cleans_it_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("std bind"));
    assert!(
        path.exists(),
        "std leaves the socket file behind, as QEMU does"
    );

    let e = connect_err(&unix(&path)).await;
    assert!(
        matches!(&e, ConnectError::Refused { path: p } if p == &path.display().to_string()),
        "{e:?}"
    );
    assert_eq!(e.kind(), "refused");
    assert!(e.to_string().contains("stale"), "{e}");

    let mut listener = Listener::bind(&unix(&path))
        .await
        .expect("bind over a stale file");
    let (client, server) = pair(&mut listener, &unix(&path)).await;
    ping_pong(
        &mut client.expect("connect"),
        &mut server.expect("accept").stream,
        b"fresh",
    )
    .await;
}

#[tokio::test]
async fn a_regular_file_is_not_a_socket_and_is_never_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("file.sock");
    std::fs::write(&path, b"precious").expect("file");

    let e = connect_err(&unix(&path)).await;
    assert!(matches!(&e, ConnectError::NotASocket { .. }), "{e:?}");
    assert_eq!(e.kind(), "not_a_socket");

    let e = Listener::bind(&unix(&path))
        .await
        .expect_err("not a socket");
    assert!(matches!(&e, ListenError::NotASocket { .. }), "{e:?}");
    assert_eq!(std::fs::read(&path).expect("still there"), b"precious");
}

#[tokio::test]
async fn a_live_socket_is_never_unlinked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.sock");
    let mut first = Listener::bind(&unix(&path)).await.expect("bind");
    // The second bind's probe connects to the live listener; accept that probe so it is drained.
    let ep = unix(&path);
    let (second, probe) = tokio::join!(Listener::bind(&ep), async {
        timeout(DEADLINE, first.accept()).await.expect("deadline")
    });
    let e = second.expect_err("in use");
    assert_eq!(e.kind(), "addr_in_use", "{e}");
    drop(probe);
    assert!(path.exists());
    let (client, server) = pair(&mut first, &unix(&path)).await;
    ping_pong(
        &mut client.expect("connect"),
        &mut server.expect("accept").stream,
        b"still mine",
    )
    .await;
}

#[tokio::test]
async fn a_socket_file_replaced_by_someone_else_survives_the_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.sock");
    let listener = Listener::bind(&unix(&path)).await.expect("bind");
    std::fs::remove_file(&path).expect("rm");
    std::fs::write(&path, b"other").expect("file");
    drop(listener);
    assert_eq!(std::fs::read(&path).expect("kept"), b"other");
}

#[tokio::test]
async fn permission_denied_on_a_socket_without_write_access() {
    if std::fs::metadata("/proc/self").expect("proc").uid() == 0 {
        eprintln!("skipped: root bypasses file permissions");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("locked.sock");
    let _listener = Listener::bind(&unix(&path)).await.expect("bind");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    assert_eq!(connect_err(&unix(&path)).await.kind(), "permission_denied");
}

#[tokio::test]
async fn tcp_on_loopback() {
    let mut listener = Listener::bind(&"tcp:127.0.0.1:0".parse().expect("endpoint"))
        .await
        .expect("bind");
    let ep = listener.endpoint().clone();
    let Endpoint::Tcp { host, port } = &ep else {
        panic!("{ep:?}");
    };
    assert_eq!(host, "127.0.0.1");
    assert_ne!(*port, 0, "the real port is reported");
    let (client, server) = pair(&mut listener, &ep).await;
    let mut server = server.expect("accept");
    assert!(server.peer.starts_with("127.0.0.1:"), "{}", server.peer);
    ping_pong(&mut client.expect("connect"), &mut server.stream, b"tcp").await;

    // Nothing listens on the port once the listener is gone.
    drop(listener);
    let e = connect_err(&ep).await;
    assert_eq!(e.kind(), "refused", "{e}");
}

#[tokio::test]
async fn tcp_on_ipv6_loopback_when_available() {
    let Ok(mut listener) = Listener::bind(&"tcp:[::1]:0".parse().expect("endpoint")).await else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let ep = listener.endpoint().clone();
    assert!(ep.to_string().starts_with("tcp:[::1]:"), "{ep}");
    let (client, server) = pair(&mut listener, &ep).await;
    ping_pong(
        &mut client.expect("connect"),
        &mut server.expect("accept").stream,
        b"v6",
    )
    .await;
}

#[tokio::test]
async fn framed_frames_over_a_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("framed.sock");
    let mut listener = Listener::bind(&unix(&path)).await.expect("bind");
    let (client, server) = pair(&mut listener, &unix(&path)).await;
    let mut writer =
        FramedWriter::new(client.expect("connect"), LpEncoder::new(LpConfig::u32_be()));
    let mut reader = FramedReader::new(
        server.expect("accept").stream,
        LpDecoder::new(LpConfig::u32_be()),
    );
    let big = vec![0x5Au8; 200_000];
    let send = async {
        for p in [&b"ping"[..], &big[..], &b"bye"[..]] {
            writer.send(p).await.expect("send");
        }
        drop(writer);
    };
    let recv = async {
        let mut got = Vec::new();
        while let Some(item) = reader.next_timeout(DEADLINE).await {
            got.push(item.expect("frame").message.len());
            assert!(got.len() <= 3);
        }
        got
    };
    let ((), got) = tokio::join!(send, recv);
    assert_eq!(got, vec![4, 200_000, 3]);
}

#[tokio::test]
async fn a_peer_reset_mid_frame_is_reported_with_the_partial_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reset.sock");
    let mut listener = Listener::bind(&unix(&path)).await.expect("bind");
    let (client, server) = pair(&mut listener, &unix(&path)).await;
    let mut peer = server.expect("accept").stream;
    let mut reader =
        FramedReader::new(client.expect("connect"), LpDecoder::new(LpConfig::u32_be()));

    // The reader sends a request the peer never reads; the peer writes half a frame and goes
    // away with that request unread, which Linux reports to the reader as ECONNRESET.
    reader
        .get_mut()
        .write_all(b"unread request")
        .await
        .expect("request");
    let mut half = BytesMut::new();
    LpEncoder::new(LpConfig::u32_be())
        .encode(&b"a reply cut short"[..], &mut half)
        .expect("encode");
    peer.write_all(&half[..10]).await.expect("half");
    peer.flush().await.expect("flush");
    drop(peer);

    match reader.next_timeout(DEADLINE).await {
        Some(Err(ReadError::Reset { partial_bytes: 10 })) => {}
        other => panic!("expected a reset with 10 partial bytes, got {other:?}"),
    }
    assert_eq!(reader.buffered(), &half[..10]);
}

#[tokio::test]
async fn a_peer_closing_mid_frame_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("eof.sock");
    let mut listener = Listener::bind(&unix(&path)).await.expect("bind");
    let (client, server) = pair(&mut listener, &unix(&path)).await;
    let mut peer = server.expect("accept").stream;
    peer.write_all(&[0, 0, 0, 50, 1, 2, 3])
        .await
        .expect("write");
    drop(peer);
    let mut reader =
        FramedReader::new(client.expect("connect"), LpDecoder::new(LpConfig::u32_be()));
    let e = reader
        .next_timeout(DEADLINE)
        .await
        .expect("item")
        .expect_err("truncated");
    assert!(e.is_truncated(), "{e}");
    assert!(reader.next_timeout(DEADLINE).await.is_none());
}

#[tokio::test]
async fn pty_endpoint_carries_frames_between_host_and_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("org.quantix.agent.0");
    let ep = Endpoint::Pty(link.clone());
    let mut listener = Listener::bind(&ep).await.expect("bind pty");
    let host = timeout(DEADLINE, listener.accept())
        .await
        .expect("deadline")
        .expect("master");
    // The "agent" opens the link as it would open /dev/virtio-ports/<name>.
    let agent = connect(&ep, DEADLINE).await.expect("open the link");

    let mut to_agent = FramedWriter::new(host.stream, LpEncoder::new(LpConfig::u32_be()));
    let mut agent_reader = FramedReader::new(agent, LpDecoder::new(LpConfig::u32_be()));
    // Bytes a cooked terminal would mangle: CR, LF, ^C, ^D, ^S, ^Q, DEL, 0xFF.
    let payload = [b'\r', b'\n', 3, 4, 0x13, 0x11, 0x7f, 0xff, 0];
    to_agent.send(&payload[..]).await.expect("send");
    let f = agent_reader
        .next_timeout(DEADLINE)
        .await
        .expect("item")
        .expect("frame");
    assert_eq!(&f.message[..], &payload);

    drop(listener);
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link removed with the listener"
    );
}

#[tokio::test]
async fn hvsock_listener_and_client_handshake_end_to_end() {
    use guestwire::io::{Endpoint, Listener, connect};
    use guestwire::wire::hybrid::Flavour;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.sock");
    let mut listener = Listener::bind_hvsock(&path, &[1024, 52], Flavour::Firecracker)
        .await
        .expect("bind");
    let server = tokio::spawn(async move {
        // The first connection asks for a port nobody serves and is closed; accept skips it.
        let mut conn = listener.accept().await.expect("accept");
        assert!(conn.peer.contains("CONNECT 52"), "{}", conn.peer);
        let mut buf = [0u8; 4];
        conn.stream.read_exact(&mut buf).await.expect("read");
        conn.stream.write_all(&buf).await.expect("echo");
        listener.refused_handshakes()
    });

    let unserved: Endpoint = format!("hvsock:{}:7", path.display())
        .parse()
        .expect("endpoint");
    let err = connect(&unserved, Duration::from_secs(5))
        .await
        .err()
        .expect("unserved port");
    assert_eq!(err.kind(), "handshake_failed", "{err}");
    assert!(err.to_string().contains("guest port 7"), "{err}");

    let ep: Endpoint = format!("hvsock:{}:52", path.display())
        .parse()
        .expect("endpoint");
    let mut stream = connect(&ep, Duration::from_secs(5)).await.expect("connect");
    stream.write_all(b"ping").await.expect("write");
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).await.expect("echo");
    assert_eq!(&echo, b"ping");
    assert_eq!(server.await.expect("server"), 1, "one handshake refused");
}
