use std::path::PathBuf;

use super::*;
use crate::diag::inspect::{Connection, Target};
use crate::diag::procfd::Owner;
use crate::diag::sockets::UnixSock;

fn end(inode: u32, rqueue: u32, pid: u32, comm: &str) -> SockEnd {
    SockEnd {
        sock: UnixSock {
            inode,
            state: 1,
            rqueue,
            ..UnixSock::default()
        },
        owners: vec![Owner {
            pid,
            comm: comm.into(),
            fd: 3,
        }],
    }
}

fn listening(queued: usize) -> TargetView {
    let mut l = end(1, queued as u32, 100, "qemu-system-x86");
    l.sock.state = 10;
    l.sock.wqueue = 1;
    TargetView {
        target: Target::unix("/run/vm.sock"),
        path: PathState::Socket {
            ino: 9,
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
        listener: Some(l),
        bound_not_listening: None,
        connections: Vec::new(),
        queued: (0..queued)
            .map(|i| end(50 + i as u32, 0, 300 + i as u32, "qx-node"))
            .collect(),
    }
}

fn connected(client_rq: u32, vmm_rq: u32, comm: &str) -> TargetView {
    let mut v = listening(0);
    v.connections.push(Connection {
        vmm_end: end(2, vmm_rq, 100, "qemu-system-x86"),
        client: Some(end(3, client_rq, 200, comm)),
    });
    v
}

fn ids(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.id.name()).collect()
}

fn samples(to_host: &[u32], to_guest: &[u32]) -> Vec<QueueSample> {
    to_host
        .iter()
        .zip(to_guest)
        .enumerate()
        .map(|(i, (h, g))| QueueSample {
            at_ms: i as u64 * 100,
            accept_queue: 0,
            to_host: Some(*h),
            to_guest: Some(*g),
        })
        .collect()
}

#[test]
fn path_problems_stop_the_rules() {
    let mut v = listening(0);
    v.path = PathState::Missing;
    assert_eq!(ids(&passive(&v, None)), ["path_missing"]);
    v.path = PathState::NotASocket {
        kind: "directory".into(),
    };
    assert_eq!(ids(&passive(&v, None)), ["not_a_socket"]);
    v.path = PathState::PermissionDenied { detail: "x".into() };
    assert_eq!(ids(&passive(&v, None)), ["permission_denied"]);
}

#[test]
fn no_listener_is_a_stale_socket_with_rm_as_the_fix() {
    let mut v = listening(0);
    v.listener = None;
    let f = passive(&v, None);
    assert_eq!(ids(&f), ["stale_socket"]);
    assert!(f[0].fix.iter().any(|c| c == "rm /run/vm.sock"));
}

#[test]
fn an_ad_hoc_client_is_stale_and_named() {
    let f = passive(&connected(0, 0, "socat"), None);
    assert_eq!(ids(&f), ["stale_client"]);
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0].summary.contains("pid 200 (socat)"));
    assert!(f[0].fix.iter().any(|c| c.starts_with("kill 200")));
    // The host daemon holding it, with nobody waiting, is fine.
    assert!(passive(&connected(0, 0, "qx-node"), None).is_empty());
}

#[test]
fn queued_clients_name_the_holder_too() {
    let mut v = connected(0, 0, "qx-node");
    v.queued = listening(2).queued;
    let f = passive(&v, None);
    assert_eq!(ids(&f), ["clients_queued", "stale_client"]);
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("pid 301 (qx-node)"))
    );
    assert_eq!(f[1].severity, Severity::Warning);
}

#[test]
fn one_look_flags_only_large_queues() {
    assert!(passive(&connected(100, 100, "qx-node"), None).is_empty());
    let f = passive(&connected(STUCK_BYTES, 0, "qx-node"), None);
    assert_eq!(ids(&f), ["host_not_reading"]);
    assert_eq!(f[0].severity, Severity::Warning);
    let f = passive(&connected(0, STUCK_BYTES, "qx-node"), None);
    assert_eq!(ids(&f), ["guest_not_reading"]);
}

#[test]
fn samples_tell_growing_stuck_and_moving_apart() {
    let v = connected(0, 0, "qx-node");
    let grow = samples(&[10, 20, 30], &[0, 0, 0]);
    assert_eq!(ids(&passive(&v, Some(&grow))), ["host_not_reading"]);
    let stuck_guest = samples(&[0, 0, 0], &[500, 500, 500]);
    let f = passive(&v, Some(&stuck_guest));
    assert_eq!(ids(&f), ["guest_not_reading"]);
    assert_eq!(f[0].severity, Severity::Error);
    let frozen = samples(&[203, 203, 203], &[0, 0, 0]);
    assert_eq!(ids(&passive(&v, Some(&frozen))), ["connected_no_flow"]);
    let moving = samples(&[100, 0, 100], &[5, 0, 0]);
    assert!(passive(&v, Some(&moving)).is_empty());
}

#[test]
fn socket_ok_describes_the_quiet_state() {
    let f = socket_ok(&listening(0)).expect("ok");
    assert_eq!(f.id, FindingId::SocketOk);
    assert!(f.summary.contains("no host client"));
    let mut v = listening(0);
    v.listener = v.listener.map(|mut l| {
        l.owners[0].comm = "firecracker".into();
        l
    });
    assert!(
        socket_ok(&v)
            .expect("ok")
            .evidence
            .iter()
            .any(|e| e.contains("hybrid"))
    );
    let mut gone = listening(0);
    gone.target.path = PathBuf::from("/x");
    gone.listener = None;
    assert!(socket_ok(&gone).is_none());
}
