use proptest::prelude::*;

use super::*;
use crate::diag::sockets::STATE_LISTEN;

fn attr(kind: u16, v: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(v);
    while a.len() % 4 != 0 {
        a.push(0);
    }
    a
}

fn msg(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

fn listener_msg() -> Vec<u8> {
    let mut p = vec![AF_UNIX, 1, STATE_LISTEN, 0];
    p.extend_from_slice(&4242u32.to_ne_bytes());
    p.extend_from_slice(&[0xff; 8]);
    p.extend(attr(UNIX_DIAG_NAME, b"/run/vm.sock"));
    p.extend(attr(UNIX_DIAG_VFS, &u32s(&[777, 0x800001])));
    p.extend(attr(UNIX_DIAG_ICONS, &u32s(&[5001, 5002])));
    p.extend(attr(UNIX_DIAG_RQLEN, &u32s(&[2, 1])));
    p.extend(attr(UNIX_DIAG_UID, &u32s(&[0])));
    p.extend(attr(99, b"ignored"));
    msg(SOCK_DIAG_BY_FAMILY, &p)
}

#[test]
fn a_listener_with_every_attribute_parses() {
    let mut buf = listener_msg();
    buf.extend(msg(NLMSG_DONE, &0u32.to_ne_bytes()));
    let batch = parse_unix(&buf).expect("parse");
    assert!(batch.done);
    let s = &batch.items[0];
    assert_eq!(s.inode, 4242);
    assert!(s.is_listening());
    assert_eq!(s.name.as_deref(), Some("/run/vm.sock"));
    assert_eq!(s.vfs, Some((777, 0x800001)));
    assert_eq!(s.icons, vec![5001, 5002]);
    assert_eq!((s.rqueue, s.wqueue), (2, 1));
    assert_eq!(s.uid, Some(0));
    assert_eq!(s.peer, None);
}

#[test]
fn abstract_names_and_peers() {
    let mut p = vec![AF_UNIX, 1, 1, 0];
    p.extend_from_slice(&10u32.to_ne_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend(attr(UNIX_DIAG_NAME, b"\0hidden"));
    p.extend(attr(UNIX_DIAG_PEER, &u32s(&[11])));
    let batch = parse_unix(&msg(SOCK_DIAG_BY_FAMILY, &p)).expect("parse");
    assert!(!batch.done);
    assert_eq!(batch.items[0].name.as_deref(), Some("@hidden"));
    assert_eq!(batch.items[0].peer, Some(11));
}

#[test]
fn the_request_is_a_dump_of_everything() {
    let r = unix_dump_request(7);
    assert_eq!(r.len(), 40);
    assert_eq!(u32_at(&r, 0), Some(40));
    assert_eq!(u16_at(&r, 4), Some(SOCK_DIAG_BY_FAMILY));
    assert_eq!(u16_at(&r, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
    assert_eq!(r[16], AF_UNIX);
    assert_eq!(vsock_dump_request(1)[16], AF_VSOCK);
}

#[test]
fn kernel_errors_and_truncation_are_typed() {
    let err = msg(NLMSG_ERROR, &(-2i32).to_ne_bytes());
    assert_eq!(parse_unix(&err), Err(NetlinkError::Kernel { errno: 2 }));
    let whole = listener_msg();
    let cut = &whole[..whole.len() - 8];
    assert!(matches!(
        parse_unix(cut),
        Err(NetlinkError::Truncated {
            what: "netlink message",
            offset: 0,
            ..
        })
    ));
    // An attribute claiming more than the message holds.
    let mut p = vec![AF_UNIX, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(&200u16.to_ne_bytes());
    p.extend_from_slice(&UNIX_DIAG_NAME.to_ne_bytes());
    assert!(matches!(
        parse_unix(&msg(SOCK_DIAG_BY_FAMILY, &p)),
        Err(NetlinkError::Truncated {
            what: "unix_diag attribute",
            offset: 32,
            ..
        })
    ));
    assert!(matches!(
        parse_vsock(&msg(SOCK_DIAG_BY_FAMILY, &[40, 1])),
        Err(NetlinkError::Truncated { offset: 16, .. })
    ));
}

#[test]
fn vsock_records_parse() {
    let mut p = vec![AF_VSOCK, 1, STATE_LISTEN, 0];
    p.extend(u32s(&[2, 1024, u32::MAX, u32::MAX, 31337, 0, 0]));
    let batch = parse_vsock(&msg(SOCK_DIAG_BY_FAMILY, &p)).expect("parse");
    let v = &batch.items[0];
    assert_eq!((v.src_cid, v.src_port, v.inode), (2, 1024, 31337));
}

proptest! {
    #[test]
    fn hostile_buffers_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_unix(&buf);
        let _ = parse_vsock(&buf);
    }

    #[test]
    fn mutated_real_messages_never_panic(flip in 0usize..64, byte in any::<u8>()) {
        let mut buf = listener_msg();
        let i = flip % buf.len();
        buf[i] = byte;
        let _ = parse_unix(&buf);
    }
}
