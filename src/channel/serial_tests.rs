//! One test per measured fact of `VMLAB.md`'s virtio-serial section, plus misuse, bounds and a
//! property test that a single reading client gets the guest's bytes exactly, in order.

use proptest::prelude::*;

use super::serial::*;

/// Byte `i` of a test stream: not periodic at any power of two, so misordered chunks show.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i % 251) as u8
}

fn stream(start: usize, len: usize) -> Vec<u8> {
    (start..start + len).map(pattern).collect()
}

fn events(port: &mut SerialPort) -> Vec<SerialEvent> {
    std::iter::from_fn(|| port.poll_event()).collect()
}

fn accepted(w: GuestWrite) -> usize {
    match w {
        GuestWrite::Accepted(n) => n,
        GuestWrite::WouldBlock => 0,
    }
}

/// Guest writes of `size` bytes, each starting with its 4-byte big-endian index, until one blocks;
/// returns how many writes were taken.
fn fill_with_numbered_writes(port: &mut SerialPort, size: usize, first: u32) -> u32 {
    let mut i = first;
    loop {
        let mut w = vec![0xAB; size];
        w[..4].copy_from_slice(&i.to_be_bytes());
        match port.guest_write(&w).unwrap() {
            GuestWrite::Accepted(n) => assert_eq!(n, size.min(PORT_WRITE_MAX)),
            GuestWrite::WouldBlock => return i - first,
        }
        i += 1;
    }
}

#[test]
fn guest_write_without_host_takes_nothing_then_16_mib_arrive_intact() {
    const TOTAL: usize = 16 << 20;
    let mut port = SerialPort::new();
    port.guest_open().unwrap();
    let data = stream(0, TOTAL);

    // No host client: 0 bytes accepted, however often the writer retries.
    for _ in 0..3 {
        assert_eq!(
            port.guest_write(&data[..4096]).unwrap(),
            GuestWrite::WouldBlock
        );
    }
    assert!(!port.guest_poll().writable);
    assert_eq!(
        events(&mut port),
        [SerialEvent::GuestOpened, SerialEvent::GuestBlocked]
    );

    // A host connects: the blocked writer resumes at once.
    let HostConnect::Accepted(host) = port.host_connect() else {
        panic!("first client queued")
    };
    assert_eq!(
        events(&mut port),
        [
            SerialEvent::ClientAccepted { client: host },
            SerialEvent::GuestUnblocked
        ]
    );

    let (mut sent, mut got) = (0, Vec::with_capacity(TOTAL));
    while got.len() < TOTAL {
        while sent < TOTAL {
            let end = (sent + 48 * 1024).min(TOTAL);
            match port.guest_write(&data[sent..end]).unwrap() {
                GuestWrite::Accepted(n) => sent += n,
                GuestWrite::WouldBlock => break,
            }
        }
        got.extend(port.host_read(host, 100_000).unwrap());
    }
    assert!(got == data, "16 MiB arrived out of order or altered");
    let snap = port.snapshot();
    assert_eq!(snap.delivered_to_host, TOTAL as u64);
    assert_eq!(snap.discarded_total, 0);
}

#[test]
fn guest_read_is_eof_at_once_while_no_host() {
    let mut port = SerialPort::new();
    port.guest_open().unwrap();
    assert_eq!(port.guest_read(4096).unwrap(), GuestRead::Eof);
    assert_eq!(
        port.guest_read(4096).unwrap(),
        GuestRead::Eof,
        "a naive agent busy-loops"
    );
    assert_eq!(
        port.guest_poll(),
        GuestPoll {
            readable: true,
            writable: false,
            hangup: true
        },
        "POLLIN|POLLHUP"
    );

    let host = port.host_connect().client().unwrap();
    assert_eq!(port.guest_read(4096).unwrap(), GuestRead::WouldBlock);
    assert_eq!(
        port.guest_poll(),
        GuestPoll {
            readable: false,
            writable: true,
            hangup: false
        }
    );
    assert_eq!(port.host_write(host, b"ping\n").unwrap(), 5);
    assert!(port.guest_poll().readable);
    assert_eq!(
        port.guest_read(4096).unwrap(),
        GuestRead::Data(b"ping\n".to_vec())
    );

    port.host_disconnect(host).unwrap();
    assert_eq!(port.guest_read(4096).unwrap(), GuestRead::Eof);
}

#[test]
fn host_not_reading_4k_writes_queue_524288_plus_socket_buffer() {
    let mut port = SerialPort::new();
    let host = port.host_connect().client().unwrap();
    port.guest_open().unwrap();

    let writes = fill_with_numbered_writes(&mut port, 4096, 0) as usize;
    assert_eq!(writes * 4096, 128 * 4096 + HOST_SOCKET_BUFFER);
    assert_eq!(writes * 4096, 704_512, "VMLAB.md's measured total");

    let snap = port.snapshot();
    assert_eq!(snap.guest_queue_bytes, 524_288);
    assert_eq!(snap.guest_queue_writes, PORT_QUEUE_SLOTS);
    assert_eq!(snap.clients[0].to_host_bytes, HOST_SOCKET_BUFFER);
    assert!(snap.guest_blocked);

    // The host reads one write's worth: the guest can write exactly one more.
    let _ = port.events_drain();
    assert_eq!(port.host_read(host, 4096).unwrap().len(), 4096);
    assert_eq!(port.poll_event(), Some(SerialEvent::GuestUnblocked));
    assert_eq!(fill_with_numbered_writes(&mut port, 4096, writes as u32), 1);
}

#[test]
fn host_not_reading_large_writes_are_capped_at_32_kib_each() {
    let mut port = SerialPort::new();
    port.host_connect();
    port.guest_open().unwrap();
    let writes = fill_with_numbered_writes(&mut port, 64 * 1024, 0) as usize;
    let total = writes * PORT_WRITE_MAX;
    // 128 × 32 KiB in the queue; the socket takes whole 32 KiB writes and part of one more, whose
    // remainder still holds a queue slot, so the total is within one write of the formula.
    let formula = PORT_QUEUE_SLOTS * PORT_WRITE_MAX + HOST_SOCKET_BUFFER;
    assert!(
        total <= formula && formula - total < PORT_WRITE_MAX,
        "{total} vs {formula}"
    );
    let snap = port.snapshot();
    assert_eq!(snap.clients[0].to_host_bytes, HOST_SOCKET_BUFFER);
    assert_eq!(snap.guest_queue_writes, PORT_QUEUE_SLOTS);
}

#[test]
fn host_writes_before_guest_opens_about_180_kb_then_all_delivered() {
    let mut port = SerialPort::new();
    let host = port.host_connect().client().unwrap();
    let data = stream(0, 1 << 20);
    assert_eq!(port.host_write(host, &data).unwrap(), HOST_SOCKET_BUFFER);
    assert_eq!(
        port.host_write(host, &data[HOST_SOCKET_BUFFER..]).unwrap(),
        0,
        "buffer full"
    );
    assert_eq!(
        port.snapshot().clients[0].to_guest_bytes,
        HOST_SOCKET_BUFFER
    );

    port.guest_open().unwrap();
    let mut got = Vec::new();
    while let GuestRead::Data(chunk) = port.guest_read(10_000).unwrap() {
        got.extend(chunk);
    }
    assert_eq!(got, data[..HOST_SOCKET_BUFFER]);
    assert_eq!(port.guest_read(10_000).unwrap(), GuestRead::WouldBlock);
}

#[test]
fn second_client_starved_third_connects_fourth_refused() {
    let mut port = SerialPort::new();
    port.guest_open().unwrap();
    let c1 = port.host_connect();
    let c2 = port.host_connect();
    let c3 = port.host_connect();
    let (HostConnect::Accepted(c1), HostConnect::Queued(c2), HostConnect::Queued(c3)) =
        (c1, c2, c3)
    else {
        panic!("expected accepted, queued, queued: {c1:?} {c2:?} {c3:?}");
    };
    assert_eq!(port.host_connect(), HostConnect::WouldBlock);
    assert_eq!(
        events(&mut port),
        [
            SerialEvent::GuestOpened,
            SerialEvent::ClientAccepted { client: c1 },
            SerialEvent::ClientQueued { client: c2 },
            SerialEvent::ClientQueued { client: c3 },
            SerialEvent::ClientRefused,
        ]
    );

    // c2 is starved: it receives nothing, and what it sends waits.
    assert_eq!(
        port.guest_write(b"to the host").unwrap(),
        GuestWrite::Accepted(11)
    );
    assert_eq!(port.host_read(c2, 100).unwrap(), b"");
    assert_eq!(port.host_write(c2, b"from c2").unwrap(), 7);
    assert_eq!(port.guest_read(100).unwrap(), GuestRead::WouldBlock);
    assert_eq!(port.host_read(c1, 100).unwrap(), b"to the host");

    let snap = port.snapshot();
    assert_eq!(snap.active, Some(c1));
    assert_eq!(snap.queued, [c2, c3]);
    assert_eq!(snap.refused_total, 1);
    assert_eq!(snap.clients[1].state, ClientState::Queued);
    assert_eq!(snap.clients[1].to_guest_bytes, 7);

    // A queued client may leave; the listen queue then has room again.
    port.host_disconnect(c3).unwrap();
    assert_eq!(
        port.poll_event(),
        Some(SerialEvent::ClientDisconnected {
            client: c3,
            was_active: false
        })
    );
    assert!(matches!(port.host_connect(), HostConnect::Queued(_)));
}

#[test]
fn first_client_leaving_discards_in_flight_data_next_gets_stream_from_the_middle() {
    let mut port = SerialPort::new();
    let c1 = port.host_connect().client().unwrap();
    let c2 = port.host_connect().client().unwrap();
    port.guest_open().unwrap();
    assert_eq!(port.host_write(c2, b"c2 waited").unwrap(), 9);

    let writes = fill_with_numbered_writes(&mut port, 4096, 0);
    let _ = port.events_drain();
    port.host_disconnect(c1).unwrap();
    assert_eq!(
        events(&mut port),
        [
            SerialEvent::ClientDisconnected {
                client: c1,
                was_active: true
            },
            SerialEvent::DataDiscarded {
                client: c1,
                bytes: 704_512,
                unread_by_guest: 0
            },
            SerialEvent::ClientAccepted { client: c2 },
            SerialEvent::GuestUnblocked,
        ],
        "the guest is not told about the loss"
    );
    let snap = port.snapshot();
    assert_eq!(
        (snap.discarded_last, snap.discarded_total),
        (704_512, 704_512)
    );
    assert_eq!((snap.guest_queue_bytes, snap.active), (0, Some(c2)));

    // c2 gets the stream from the guest's next write on, starting at its boundary.
    assert_eq!(fill_with_numbered_writes(&mut port, 4096, writes), writes);
    let got = port.host_read(c2, 8192).unwrap();
    assert_eq!(got[..4], writes.to_be_bytes());
    assert_eq!(got[4096..4100], (writes + 1).to_be_bytes());
    // And what c2 sent while it waited now reaches the guest.
    assert_eq!(
        port.guest_read(100).unwrap(),
        GuestRead::Data(b"c2 waited".to_vec())
    );
}

#[test]
fn discard_after_partial_read_still_resumes_at_a_write_boundary() {
    let mut port = SerialPort::new();
    let c1 = port.host_connect().client().unwrap();
    let c2 = port.host_connect().client().unwrap();
    port.guest_open().unwrap();
    let writes = fill_with_numbered_writes(&mut port, 4096, 0);
    let read = port.host_read(c1, 1000).unwrap().len() as u64;
    // Reading made room: QEMU moved part of the next queued write into the socket.
    let sent = u64::from(writes) * 4096;
    assert_eq!(port.host_write(c1, b"unread").unwrap(), 6);
    port.host_disconnect(c1).unwrap();
    let snap = port.snapshot();
    assert_eq!(
        snap.discarded_last,
        sent - read,
        "every byte is read or discarded"
    );
    assert_eq!(snap.discarded_to_guest_total, 6);

    assert!(matches!(
        port.guest_write(&[7; 4096]).unwrap(),
        GuestWrite::Accepted(4096)
    ));
    assert_eq!(
        port.host_read(c2, 10_000).unwrap(),
        [7; 4096],
        "no tail of a discarded write"
    );
}

#[test]
fn misuse_is_a_typed_error() {
    let mut port = SerialPort::new();
    assert_eq!(port.guest_write(b"x"), Err(SerialError::GuestNotOpen));
    assert_eq!(port.guest_read(1), Err(SerialError::GuestNotOpen));
    assert_eq!(port.guest_close(), Err(SerialError::GuestNotOpen));
    port.guest_open().unwrap();
    assert_eq!(port.guest_open(), Err(SerialError::GuestAlreadyOpen));
    port.guest_close().unwrap();
    assert_eq!(
        port.guest_write(b"x"),
        Err(SerialError::GuestNotOpen),
        "write after close"
    );

    let c1 = port.host_connect().client().unwrap();
    port.host_disconnect(c1).unwrap();
    assert_eq!(
        port.host_write(c1, b"x"),
        Err(SerialError::UnknownClient(c1))
    );
    assert_eq!(port.host_read(c1, 1), Err(SerialError::UnknownClient(c1)));
    assert_eq!(
        port.host_disconnect(c1),
        Err(SerialError::UnknownClient(c1))
    );
    let err = SerialError::UnknownClient(c1).to_string();
    assert!(err.contains("client 1"), "{err}");
}

#[test]
fn guest_close_keeps_queued_writes_flowing_and_reopen_works() {
    let mut port = SerialPort::new();
    let host = port.host_connect().client().unwrap();
    port.guest_open().unwrap();
    assert_eq!(port.guest_write(b"bye").unwrap(), GuestWrite::Accepted(3));
    port.guest_close().unwrap();
    assert_eq!(port.guest_poll(), GuestPoll::default());
    assert_eq!(port.host_read(host, 10).unwrap(), b"bye");
    port.guest_open().unwrap();
    assert_eq!(port.guest_write(b"hi").unwrap(), GuestWrite::Accepted(2));
    assert_eq!(port.host_read(host, 10).unwrap(), b"hi");
}

#[test]
fn event_log_is_bounded() {
    let mut port = SerialPort::new();
    for _ in 0..3 {
        port.host_connect();
    }
    for _ in 0..EVENT_LOG_CAP + 10 {
        assert_eq!(port.host_connect(), HostConnect::WouldBlock);
    }
    let snap = port.snapshot();
    assert_eq!(snap.events_dropped, 13);
    assert_eq!(snap.refused_total, EVENT_LOG_CAP as u64 + 10);
    assert_eq!(events(&mut port).len(), EVENT_LOG_CAP);
}

/// Test-only helper: drop the events so far.
trait DrainEvents {
    fn events_drain(&mut self) -> usize;
}

impl DrainEvents for SerialPort {
    fn events_drain(&mut self) -> usize {
        std::iter::from_fn(|| self.poll_event()).count()
    }
}

proptest! {
    // 64 cases keep this under a few seconds in a debug build (each case moves up to ~2 MB).
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn one_reading_client_gets_the_guest_bytes_exactly_in_order(
        ops in prop::collection::vec((0usize..40_000, 0usize..100_000, any::<bool>()), 1..50),
        host_first in any::<bool>(),
        offset in 0usize..1_000_000,
    ) {
        let mut port = SerialPort::new();
        let mut host = None;
        if host_first {
            host = port.host_connect().client();
        }
        port.guest_open().unwrap();
        let (mut sent, mut got) = (Vec::new(), Vec::new());
        for (write_len, read_max, connect_now) in ops {
            if host.is_none() && connect_now {
                host = port.host_connect().client();
            }
            let chunk = stream(offset + sent.len(), write_len);
            let n = accepted(port.guest_write(&chunk).unwrap());
            prop_assert!(n <= PORT_WRITE_MAX);
            if host.is_none() {
                prop_assert_eq!(n, 0, "nothing accepted without a host");
            }
            sent.extend_from_slice(&chunk[..n]);
            if let Some(h) = host {
                got.extend(port.host_read(h, read_max).unwrap());
            }
            let snap = port.snapshot();
            prop_assert!(snap.guest_queue_writes <= PORT_QUEUE_SLOTS);
            prop_assert!(snap.clients.iter().all(|c| c.to_host_bytes <= HOST_SOCKET_BUFFER));
        }
        if let Some(h) = host {
            loop {
                let chunk = port.host_read(h, 1 << 20).unwrap();
                if chunk.is_empty() {
                    break;
                }
                got.extend(chunk);
            }
        }
        prop_assert!(got == sent, "got {} bytes, sent {}", got.len(), sent.len());
        prop_assert_eq!(port.snapshot().discarded_total, 0);
    }
}
