//! The host-wide vsock rule (pure): an AF_VSOCK socket on this host that connects to a guest,
//! while the host has no vhost-vsock device, reaches nothing. Such hosts (Firecracker, Cloud
//! Hypervisor, vhost-device-vsock with `--uds-path`) offer a guest's vsock only as hybrid vsock on
//! a Unix socket. Needs `vsock_diag` (see [`super::dump::vsock_sockets`]).

use super::dump::VsockTable;
use super::finding::{Finding, FindingId, Severity};
use super::sockets::{STATE_LISTEN, VsockSock};

/// The lowest guest CID (0 hypervisor, 1 local, 2 host).
pub const FIRST_GUEST_CID: u32 = 3;

fn state_name(s: &VsockSock) -> &'static str {
    match s.state {
        1 => "connected",
        2 => "connecting",
        7 => "closed",
        _ => "other",
    }
}

/// Findings about the host's AF_VSOCK sockets; `vhost_vsock` says whether `/dev/vhost-vsock`
/// exists.
pub fn vsock_findings(table: &VsockTable, vhost_vsock: bool) -> Vec<Finding> {
    let VsockTable::Sockets { sockets } = table else {
        return Vec::new();
    };
    if vhost_vsock {
        return Vec::new();
    }
    sockets
        .iter()
        .filter(|s| s.state != STATE_LISTEN && s.dst_cid >= FIRST_GUEST_CID && s.dst_cid != u32::MAX)
        .map(|s| {
            let target = format!("vsock:{}:{}", s.dst_cid, s.dst_port);
            Finding::new(
                FindingId::VsockClientHybridVmm,
                Severity::Warning,
                &target,
                "an AF_VSOCK client on a host without vhost-vsock: the guest is only reachable as hybrid vsock",
            )
            .evidence(format!(
                "AF_VSOCK socket (inode {}) {} to CID {} port {}, but /dev/vhost-vsock does not exist",
                s.inode,
                state_name(s),
                s.dst_cid,
                s.dst_port
            ))
            .fix("ss --vsock -p   # which process holds it")
            .fix("# connect through the VMM's hybrid-vsock Unix socket instead:")
            .fix(format!(
                "guestwire call --connect hvsock:UDS_PATH:{} --protocol P ping",
                s.dst_port
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(state: u8, dst_cid: u32) -> VsockSock {
        VsockSock {
            state,
            src_cid: 2,
            src_port: 50000,
            dst_cid,
            dst_port: 1024,
            inode: 77,
            ..VsockSock::default()
        }
    }

    #[test]
    fn a_client_to_a_guest_without_vhost_vsock_is_flagged() {
        let t = VsockTable::Sockets {
            sockets: vec![sock(2, 3), sock(STATE_LISTEN, u32::MAX), sock(1, 2)],
        };
        let f = vsock_findings(&t, false);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].target, "vsock:3:1024");
        assert_eq!(f[0].id, FindingId::VsockClientHybridVmm);
        assert!(vsock_findings(&t, true).is_empty());
        let unknown = VsockTable::Unavailable { reason: "x".into() };
        assert!(vsock_findings(&unknown, false).is_empty());
    }
}
