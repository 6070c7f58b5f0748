//! The port's async streams under tokio's paused clock: what blocks, what wakes it, what ends.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use super::*;
use crate::channel::serial::{HOST_SOCKET_BUFFER, HostConnect};

/// Long enough that only a wait that never ends reaches it (the clock is paused: no real time).
const NEVER: Duration = Duration::from_secs(3600);

fn events(rx: &mut broadcast::Receiver<SerialVmmEvent>) -> Vec<SerialVmmEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_guest_write_waits_for_a_host_and_reads_see_eof_meanwhile() {
    let port = SharedPort::new();
    let mut rx = port.subscribe();
    let mut guest = port.open_guest().expect("open");

    // No host: reading ends at once, writing takes nothing and waits.
    let mut buf = [0u8; 16];
    let n = timeout(NEVER, guest.read(&mut buf)).await.expect("eof");
    assert_eq!(n.expect("read"), 0);
    let (mut gr, mut gw) = tokio::io::split(guest);
    let mut writer = tokio::spawn(async move {
        gw.write_all(b"hello").await.expect("write");
        gw
    });
    assert!(
        timeout(Duration::from_secs(60), &mut writer).await.is_err(),
        "the write must wait while no host is connected"
    );
    assert!(events(&mut rx).contains(&SerialVmmEvent::GuestBlocked));

    // A host connects: the write completes and the host reads it.
    let (outcome, host) = port.connect_host("test");
    assert!(matches!(outcome, HostConnect::Accepted(_)));
    let mut host = host.expect("host port");
    let _gw = timeout(NEVER, writer)
        .await
        .expect("write done")
        .expect("task");
    let mut got = [0u8; 5];
    timeout(NEVER, host.read_exact(&mut got))
        .await
        .expect("deadline")
        .expect("read");
    assert_eq!(&got, b"hello");
    let seen = events(&mut rx);
    assert!(seen.contains(&SerialVmmEvent::GuestUnblocked), "{seen:?}");

    // With a host connected and nothing sent, a guest read waits; host bytes wake it.
    let read = tokio::spawn(async move {
        let mut b = [0u8; 3];
        gr.read_exact(&mut b).await.expect("read");
        b
    });
    host.write_all(b"abc").await.expect("host write");
    assert_eq!(
        &timeout(NEVER, read).await.expect("deadline").expect("task"),
        b"abc"
    );
}

#[tokio::test(start_paused = true)]
async fn the_host_leaving_discards_what_it_did_not_read_and_the_guest_sees_eof() {
    let port = SharedPort::new();
    let mut rx = port.subscribe();
    let mut guest = port.open_guest().expect("open");
    let (_, host) = port.connect_host("one");
    let host = host.expect("host");
    guest.write_all(&[7u8; 1000]).await.expect("write");
    drop(host);
    let seen = events(&mut rx);
    assert!(
        seen.iter().any(|e| matches!(
            e,
            SerialVmmEvent::DataDiscarded {
                client: 1,
                bytes: 1000,
                ..
            }
        )),
        "{seen:?}"
    );
    let mut buf = [0u8; 8];
    assert_eq!(guest.read(&mut buf).await.expect("read"), 0);

    // The next client gets only what the guest writes from now on.
    let (_, host) = port.connect_host("two");
    let mut host = host.expect("host");
    guest.write_all(b"fresh").await.expect("write");
    let mut got = [0u8; 5];
    host.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"fresh");
}

#[tokio::test(start_paused = true)]
async fn a_host_that_does_not_read_eventually_blocks_the_guest() {
    let port = SharedPort::new();
    let mut guest = port.open_guest().expect("open");
    let (_, host) = port.connect_host("slow");
    let mut host = host.expect("host");
    let chunk = vec![1u8; 4096];
    let mut written = 0usize;
    loop {
        match timeout(Duration::from_secs(1), guest.write(&chunk)).await {
            Ok(n) => written += n.expect("write"),
            Err(_) => break,
        }
        assert!(written < 10 << 20, "the guest never blocked");
    }
    // 128 queued writes plus the host socket's buffer (VMLAB.md: 524,288 + 180,224 B).
    assert_eq!(written, 128 * 4096 + HOST_SOCKET_BUFFER);
    // Reading frees room and the blocked writer resumes.
    let mut sink = vec![0u8; 8192];
    host.read_exact(&mut sink).await.expect("read");
    timeout(NEVER, guest.write(&chunk))
        .await
        .expect("resumes")
        .expect("write");
}

#[tokio::test(start_paused = true)]
async fn guest_before_host_takes_early_writes_for_the_first_client_only() {
    let port = SharedPort::new();
    port.arm_guest_before_host();
    let mut guest = port.open_guest().expect("open");
    timeout(NEVER, guest.write_all(b"ready"))
        .await
        .expect("taken with no host")
        .expect("write");
    let mut buf = [0u8; 4];
    assert_eq!(guest.read(&mut buf).await.expect("read"), 0, "still EOF");

    let (_, first) = port.connect_host("first");
    let mut first = first.expect("host");
    guest.write_all(b"+live").await.expect("write");
    let mut got = [0u8; 10];
    first.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"ready+live");
    drop(first);

    // Disarmed once a host came: with none connected, writes wait again.
    let write = timeout(Duration::from_secs(60), guest.write_all(b"x")).await;
    assert!(write.is_err(), "a write with no host must wait");
}

#[tokio::test(start_paused = true)]
async fn a_closed_open_is_over_for_its_stream() {
    let port = SharedPort::new();
    let mut old = port.open_guest().expect("open");
    port.close_guest(old.session());
    let mut new = port.open_guest().expect("reopen");
    assert!(old.write(b"x").await.is_err());
    drop(old);
    // Dropping the old stream did not close the new open.
    let (_, host) = port.connect_host("h");
    let mut host = host.expect("host");
    new.write_all(b"ok").await.expect("write");
    let mut got = [0u8; 2];
    host.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"ok");
}
