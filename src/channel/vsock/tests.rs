//! Tests for the hybrid-vsock muxer model, per flavour, with constructed `Instant`s (no sleeping).

use std::time::{Duration, Instant};

use super::*;
use crate::wire::hybrid::{LOCAL_PORT_START, RejectReason};

fn ms(t0: Instant, n: u64) -> Instant {
    t0 + Duration::from_millis(n)
}

fn drain(m: &mut VsockMuxer) -> Vec<MuxEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn muxer(flavour: Flavour, listen: &[u32]) -> VsockMuxer {
    let mut m = VsockMuxer::new(flavour);
    for &p in listen {
        m.guest_listen(p).unwrap();
    }
    m
}

fn state(m: &VsockMuxer, conn: ConnId) -> Option<ConnState> {
    m.snapshot()
        .connections
        .iter()
        .find(|c| c.conn == conn)
        .map(|c| c.state)
}

fn ok(conn: ConnId, n: u32) -> MuxEvent {
    MuxEvent::WriteToHost {
        conn,
        bytes: format!("OK {n}\n").into_bytes(),
    }
}

fn closed(conn: ConnId, reason: RefuseReason) -> MuxEvent {
    MuxEvent::CloseHost {
        conn,
        reason: CloseReason::Refused(reason),
    }
}

/// The `OK` number each flavour answers for guest port `port` on its first connection.
fn ok_number(flavour: Flavour, port: u32) -> u32 {
    match flavour {
        Flavour::Firecracker | Flavour::CloudHypervisor => LOCAL_PORT_START,
        Flavour::VhostDevice => port,
    }
}

/// A host connection established to guest port 52.
fn established(flavour: Flavour, t0: Instant) -> (VsockMuxer, ConnId) {
    let mut m = muxer(flavour, &[52]);
    let c = m.host_connect(t0);
    m.host_read_chunk(c, b"CONNECT 52\n", t0).unwrap();
    assert_eq!(drain(&mut m), vec![ok(c, ok_number(flavour, 52))]);
    (m, c)
}

#[test]
fn connect_is_answered_with_the_flavours_ok_number_and_payload_goes_to_the_guest() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let mut m = muxer(f, &[1234]);
        let c = m.host_connect(t0);
        assert_eq!(state(&m, c), Some(ConnState::LocalInit));
        assert_eq!(m.host_read_chunk(c, b"CONNECT 1234\nhello", t0), Ok(18));
        assert_eq!(
            drain(&mut m),
            vec![
                ok(c, ok_number(f, 1234)),
                MuxEvent::DeliverToGuest {
                    conn: c,
                    port: 1234,
                    bytes: b"hello".to_vec(),
                },
            ],
            "{f}"
        );
        let snap = m.snapshot();
        assert_eq!(snap.connections[0].state, ConnState::Established);
        assert_eq!(snap.connections[0].guest_port, Some(1234));
        assert_eq!(snap.connections[0].host_port, Some(ok_number(f, 1234)));
        assert_eq!(m.poll_timeout(), None);
    }
}

#[test]
fn firecracker_and_cloud_hypervisor_hand_out_successive_local_ports() {
    for f in [Flavour::Firecracker, Flavour::CloudHypervisor] {
        let t0 = Instant::now();
        let mut m = muxer(f, &[7]);
        let a = m.host_connect(t0);
        let b = m.host_connect(t0);
        m.host_read_chunk(a, b"CONNECT 7\n", t0).unwrap();
        m.host_read_chunk(b, b"CONNECT 7\n", t0).unwrap();
        assert_eq!(
            drain(&mut m),
            vec![ok(a, LOCAL_PORT_START), ok(b, LOCAL_PORT_START + 1)]
        );
    }
}

#[test]
fn lowercase_connect_is_accepted() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let mut m = muxer(f, &[52]);
        let c = m.host_connect(t0);
        m.host_read_chunk(c, b"connect 52\n", t0).unwrap();
        assert_eq!(drain(&mut m), vec![ok(c, ok_number(f, 52))], "{f}");
    }
}

#[test]
fn a_command_split_across_reads_is_dropped_by_firecracker_only() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let mut m = muxer(f, &[52]);
        let c = m.host_connect(t0);
        m.host_read_chunk(c, b"CONN", t0).unwrap();
        m.host_read_chunk(c, b"ECT 52\n", ms(t0, 1))
            .unwrap_or_default();
        let events = drain(&mut m);
        if f == Flavour::Firecracker {
            assert_eq!(
                events,
                vec![closed(
                    c,
                    RefuseReason::Malformed(RejectReason::SplitCommand)
                )]
            );
            assert_eq!(state(&m, c), None);
            assert_eq!(m.snapshot().refused_total, 1);
        } else {
            assert_eq!(events, vec![ok(c, ok_number(f, 52))], "{f}");
        }
    }
}

#[test]
fn a_missing_newline_then_eof_closes_silently() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let mut m = muxer(f, &[52]);
        let c = m.host_connect(t0);
        m.host_read_chunk(c, b"CONNECT 52", t0).unwrap();
        if f == Flavour::Firecracker {
            // The read held no newline: already dropped as a split command; the EOF after
            // it changes nothing.
            assert_eq!(m.host_read_chunk(c, b"", t0), Ok(0));
            assert_eq!(
                drain(&mut m),
                vec![closed(
                    c,
                    RefuseReason::Malformed(RejectReason::SplitCommand)
                )]
            );
            continue;
        }
        assert_eq!(m.poll_event(), None, "{f}: still waiting");
        m.host_read_chunk(c, b"", t0).unwrap();
        assert_eq!(
            drain(&mut m),
            vec![closed(c, RefuseReason::Malformed(RejectReason::Eof))],
            "{f}"
        );
        assert!(m.snapshot().connections.is_empty());
    }
}

#[test]
fn no_listener_closes_the_host_connection_with_no_message() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let mut m = muxer(f, &[52]);
        m.guest_unlisten(52);
        let c = m.host_connect(t0);
        m.host_read_chunk(c, b"CONNECT 52\n", t0).unwrap();
        // Only a close: nothing is written to the host.
        assert_eq!(
            drain(&mut m),
            vec![closed(c, RefuseReason::NoListener { port: 52 })]
        );
        let snap = m.snapshot();
        assert!(snap.connections.is_empty());
        assert_eq!(
            snap.recent_refusals,
            vec![Refusal {
                conn: c,
                origin: Origin::Host,
                reason: RefuseReason::NoListener { port: 52 },
            }]
        );
    }
}

#[test]
fn a_malformed_command_closes_silently() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let mut m = muxer(f, &[52]);
        let c = m.host_connect(t0);
        m.host_read_chunk(c, b"HELLO WORLD\n", t0).unwrap();
        let events = drain(&mut m);
        assert!(
            matches!(
                events.as_slice(),
                [MuxEvent::CloseHost {
                    reason: CloseReason::Refused(RefuseReason::Malformed(_)),
                    ..
                }]
            ),
            "{f}: {events:?}"
        );
    }
}

#[test]
fn an_incomplete_command_is_killed_at_exactly_2000_ms() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let mut m = muxer(f, &[52]);
        let c = m.host_connect(t0);
        assert_eq!(m.poll_timeout(), Some(ms(t0, CONN_REQUEST_TIMEOUT_MS)));
        m.handle_timeout(ms(t0, 1999));
        assert_eq!(m.poll_event(), None);
        assert_eq!(state(&m, c), Some(ConnState::LocalInit));
        m.handle_timeout(ms(t0, 2000));
        assert_eq!(state(&m, c), Some(ConnState::Killed));
        assert_eq!(drain(&mut m), vec![closed(c, RefuseReason::RequestTimeout)]);
        assert_eq!(m.poll_timeout(), None);
        assert!(m.snapshot().connections.is_empty());
    }
}

#[test]
fn the_1024th_connection_is_accepted_then_closed() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let mut m = muxer(f, &[52]);
        let live: Vec<ConnId> = (0..MAX_CONNECTIONS).map(|_| m.host_connect(t0)).collect();
        assert_eq!(m.poll_event(), None);
        let extra = m.host_connect(t0);
        assert_eq!(
            drain(&mut m),
            vec![closed(extra, RefuseReason::TooManyConnections)]
        );
        assert_eq!(m.snapshot().connections.len(), MAX_CONNECTIONS);
        // The guest side is bounded too: a guest connect now gets a reset.
        let g = m.guest_connect(1000, 5000, t0);
        assert_eq!(drain(&mut m), vec![MuxEvent::ResetGuest { conn: g }]);
        // One closing frees a slot.
        m.host_read_chunk(live[0], b"", t0).unwrap();
        drain(&mut m);
        let next = m.host_connect(t0);
        assert_eq!(state(&m, next), Some(ConnState::LocalInit));
    }
}

#[test]
fn guest_initiated_connects_to_the_port_suffix_and_is_reset_when_refused() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let mut m = muxer(f, &[]);
        let a = m.guest_connect(1025, 9000, t0);
        assert_eq!(state(&m, a), Some(ConnState::PeerInit));
        assert_eq!(
            drain(&mut m),
            vec![MuxEvent::ConnectToHost {
                conn: a,
                path_suffix: "_9000".into(),
            }]
        );
        m.host_side_connected(a).unwrap();
        assert_eq!(state(&m, a), Some(ConnState::Established));
        assert_eq!(m.guest_send(a, b"ping"), Ok(4));
        assert_eq!(m.host_send(a, b"pong"), Ok(4));
        assert_eq!(
            drain(&mut m),
            vec![
                MuxEvent::WriteToHost {
                    conn: a,
                    bytes: b"ping".to_vec(),
                },
                MuxEvent::DeliverToGuest {
                    conn: a,
                    port: 1025,
                    bytes: b"pong".to_vec(),
                },
            ]
        );

        let b = m.guest_connect(1026, 9001, t0);
        drain(&mut m);
        m.host_side_refused(b).unwrap();
        assert_eq!(drain(&mut m), vec![MuxEvent::ResetGuest { conn: b }]);
        assert_eq!(state(&m, b), None);
        assert_eq!(
            m.snapshot().recent_refusals[0].reason,
            RefuseReason::HostRefused { host_port: 9001 }
        );
        assert_eq!(
            m.host_side_connected(b),
            Err(MuxError::UnknownConnection(b))
        );
    }
}

#[test]
fn an_unanswered_guest_connect_is_reset_after_the_request_timeout() {
    let t0 = Instant::now();
    let mut m = muxer(Flavour::Firecracker, &[]);
    let g = m.guest_connect(1025, 9000, t0);
    drain(&mut m);
    m.handle_timeout(ms(t0, CONN_REQUEST_TIMEOUT_MS));
    assert_eq!(drain(&mut m), vec![MuxEvent::ResetGuest { conn: g }]);
}

#[test]
fn tx_buffers_push_back_at_64_kib() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let (mut m, c) = established(f, t0);
        let big = vec![7u8; 70_000];
        let cap = CONN_TX_BUF_SIZE as usize;
        assert_eq!(m.guest_send(c, &big), Ok(cap));
        assert_eq!(m.guest_send(c, b"x"), Ok(0));
        assert_eq!(m.host_send(c, &big), Ok(cap));
        assert_eq!(m.host_send(c, b"x"), Ok(0));
        let snap = m.snapshot();
        assert_eq!(snap.connections[0].queued_to_host, CONN_TX_BUF_SIZE);
        assert_eq!(snap.connections[0].queued_to_guest, CONN_TX_BUF_SIZE);
        // Polling the data frees the buffer.
        let total: usize = drain(&mut m)
            .iter()
            .map(|e| match e {
                MuxEvent::WriteToHost { bytes, .. } | MuxEvent::DeliverToGuest { bytes, .. } => {
                    bytes.len()
                }
                _ => 0,
            })
            .sum();
        assert_eq!(total, 2 * cap);
        assert_eq!(m.guest_send(c, b"x"), Ok(1));
    }
}

#[test]
fn payload_after_the_command_beyond_the_buffer_is_left_over() {
    let t0 = Instant::now();
    let mut m = muxer(Flavour::CloudHypervisor, &[52]);
    let c = m.host_connect(t0);
    let mut read = b"CONNECT 52\n".to_vec();
    read.extend(vec![0u8; CONN_TX_BUF_SIZE as usize + 10]);
    assert_eq!(m.host_read_chunk(c, &read, t0), Ok(read.len() - 10));
}

#[test]
fn pause_holds_data_and_resume_releases_it_in_order() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let (mut m, c) = established(f, t0);
        m.pause();
        assert!(m.is_paused());
        m.guest_send(c, b"one").unwrap();
        m.host_send(c, b"two").unwrap();
        m.guest_send(c, b"three").unwrap();
        assert_eq!(m.poll_event(), None);
        assert!(m.snapshot().paused);
        assert_eq!(m.snapshot().connections[0].queued_to_host, 8);
        m.resume();
        assert_eq!(
            drain(&mut m),
            vec![
                MuxEvent::WriteToHost {
                    conn: c,
                    bytes: b"one".to_vec(),
                },
                MuxEvent::DeliverToGuest {
                    conn: c,
                    port: 52,
                    bytes: b"two".to_vec(),
                },
                MuxEvent::WriteToHost {
                    conn: c,
                    bytes: b"three".to_vec(),
                },
            ]
        );
    }
}

#[test]
fn paused_queues_stay_bounded() {
    let t0 = Instant::now();
    let (mut m, c) = established(Flavour::Firecracker, t0);
    m.pause();
    let mut accepted = 0;
    for _ in 0..200_000 {
        accepted += m.guest_send(c, b"a").unwrap();
        accepted += m.host_send(c, b"b").unwrap();
    }
    assert!(accepted <= 2 * CONN_TX_BUF_SIZE as usize);
    assert!(m.snapshot().pending_events <= MAX_PENDING_DATA_EVENTS);
}

#[test]
fn a_credit_update_follows_every_4_kib_written_to_the_host() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        let (mut m, c) = established(f, t0);
        let step = CONN_CREDIT_UPDATE_THRESHOLD as usize;
        m.guest_send(c, &vec![1; step - 1]).unwrap();
        assert!(matches!(
            drain(&mut m).as_slice(),
            [MuxEvent::WriteToHost { .. }]
        ));
        m.guest_send(c, &[1]).unwrap();
        let credit = |fwd_cnt| MuxEvent::CreditUpdate {
            conn: c,
            buf_alloc: CONN_TX_BUF_SIZE,
            fwd_cnt,
        };
        assert_eq!(
            drain(&mut m),
            vec![
                MuxEvent::WriteToHost {
                    conn: c,
                    bytes: vec![1],
                },
                credit(CONN_CREDIT_UPDATE_THRESHOLD),
            ]
        );
        m.guest_send(c, &vec![2; step]).unwrap();
        let events = drain(&mut m);
        assert_eq!(events[1], credit(2 * CONN_CREDIT_UPDATE_THRESHOLD));
        // Host-to-guest data earns the guest no credit from the host.
        m.host_send(c, &vec![3; step]).unwrap();
        assert_eq!(drain(&mut m).len(), 1);
    }
}

#[test]
fn closing_from_either_side() {
    for f in Flavour::ALL {
        let t0 = Instant::now();
        // The guest closes: queued data first, then the host connection closes.
        let (mut m, c) = established(f, t0);
        m.guest_send(c, b"bye").unwrap();
        m.guest_close(c).unwrap();
        assert_eq!(state(&m, c), Some(ConnState::PeerClosed));
        assert_eq!(
            drain(&mut m),
            vec![
                MuxEvent::WriteToHost {
                    conn: c,
                    bytes: b"bye".to_vec(),
                },
                MuxEvent::CloseHost {
                    conn: c,
                    reason: CloseReason::GuestClosed,
                },
            ]
        );
        assert!(m.snapshot().connections.is_empty());

        // The host closes: the guest is told, and reset if it does not close in time.
        let (mut m, c) = established(f, t0);
        m.host_close(c, t0).unwrap();
        assert_eq!(state(&m, c), Some(ConnState::LocalClosed));
        assert_eq!(drain(&mut m), vec![MuxEvent::ShutdownGuest { conn: c }]);
        assert_eq!(m.guest_send(c, b"late").map_err(|_| ()), Err(()));
        m.handle_timeout(ms(t0, CONN_SHUTDOWN_TIMEOUT_MS));
        assert_eq!(drain(&mut m), vec![MuxEvent::ResetGuest { conn: c }]);
        assert!(m.snapshot().connections.is_empty());

        // The host closes and the guest follows: gone with no reset.
        let (mut m, c) = established(f, t0);
        m.host_close(c, t0).unwrap();
        m.guest_close(c).unwrap();
        assert_eq!(drain(&mut m), vec![MuxEvent::ShutdownGuest { conn: c }]);
        assert!(m.snapshot().connections.is_empty());
    }
}

#[test]
fn ports_are_released_when_connections_end() {
    let t0 = Instant::now();
    let (mut m, c) = established(Flavour::Firecracker, t0);
    m.guest_close(c).unwrap();
    drain(&mut m);
    assert_eq!(m.ports.in_use_count(), 0);
}

#[test]
fn misuse_is_a_typed_error() {
    let t0 = Instant::now();
    let mut m = muxer(Flavour::VhostDevice, &[52]);
    assert_eq!(
        m.guest_send(ConnId(99), b"x"),
        Err(MuxError::UnknownConnection(ConnId(99)))
    );
    let c = m.host_connect(t0);
    assert_eq!(
        m.host_send(c, b"x"),
        Err(MuxError::WrongState {
            conn: c,
            state: ConnState::LocalInit,
            op: "host_send",
        })
    );
    assert!(matches!(m.guest_close(c), Err(MuxError::WrongState { .. })));
    assert!(matches!(
        m.host_side_connected(c),
        Err(MuxError::WrongState { .. })
    ));
    for p in 0..MAX_LISTENERS as u32 {
        m.guest_listen(p).unwrap();
    }
    assert_eq!(m.guest_listen(u32::MAX), Err(MuxError::TooManyListeners));
    assert_eq!(m.guest_listen(0), Ok(()));
}

#[test]
fn once_established_host_reads_are_data() {
    let t0 = Instant::now();
    let (mut m, c) = established(Flavour::VhostDevice, t0);
    assert_eq!(m.host_read_chunk(c, b"more", t0), Ok(4));
    assert_eq!(
        drain(&mut m),
        vec![MuxEvent::DeliverToGuest {
            conn: c,
            port: 52,
            bytes: b"more".to_vec(),
        }]
    );
}

#[test]
fn a_guest_giving_up_before_the_host_answers_withdraws_the_connect() {
    let t0 = Instant::now();
    let mut m = muxer(Flavour::CloudHypervisor, &[]);
    let g = m.guest_connect(1025, 9000, t0);
    m.guest_close(g).unwrap();
    assert_eq!(m.poll_event(), None);
    assert_eq!(
        m.host_side_connected(g),
        Err(MuxError::UnknownConnection(g))
    );
}
