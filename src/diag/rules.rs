//! The passive rules: findings as pure functions of a [`TargetView`] and, with `--watch`, its
//! queue samples. No IO, no clock.

use super::finding::{Finding, FindingId, Severity};
use super::inspect::{PathState, SockEnd, TargetView};
use super::watch::{QueueSample, Trend, trend};

/// Bytes waiting in one socket, in a single look, that the rules call stuck (a reader drains a
/// socket long before this much piles up; QEMU's port takes ≈ 180 KB before it blocks).
pub const STUCK_BYTES: u32 = 64 * 1024;

/// Command names of the tools people leave connected to an agent socket while debugging.
pub const AD_HOC_CLIENTS: &[&str] = &[
    "socat",
    "nc",
    "ncat",
    "netcat",
    "nc.openbsd",
    "nc.traditional",
    "telnet",
    "minicom",
    "screen",
    "python",
    "python3",
    "perl",
    "ruby",
    "cat",
    "busybox",
];

fn is_ad_hoc(end: &SockEnd) -> bool {
    end.owners
        .iter()
        .any(|o| AD_HOC_CLIENTS.contains(&o.comm.as_str()) || o.comm.starts_with("python"))
}

fn pids(end: &SockEnd) -> String {
    let p: Vec<String> = end.owners.iter().map(|o| o.pid.to_string()).collect();
    if p.is_empty() {
        "PID".into()
    } else {
        p.join(" ")
    }
}

/// Whether a finding of `severity` or worse is among `findings`.
pub fn any_at_least(findings: &[Finding], severity: Severity) -> bool {
    findings.iter().any(|f| f.severity >= severity)
}

/// The passive findings for one target.
pub fn passive(view: &TargetView, samples: Option<&[QueueSample]>) -> Vec<Finding> {
    let t = view.target.shown.as_str();
    let p = view.target.path.display().to_string();
    let dir = view
        .target
        .path
        .parent()
        .map_or_else(|| ".".to_string(), |d| d.display().to_string());
    let mut out = Vec::new();
    match &view.path {
        PathState::Missing => {
            out.push(
                Finding::new(
                    FindingId::PathMissing,
                    Severity::Error,
                    t,
                    "nothing exists at the path",
                )
                .evidence(format!("stat {p}: no such file or directory"))
                .fix(format!("ls -la {dir}"))
                .fix("# is the VM running? is this the path in its <channel> / -chardev?")
                .fix("virsh dumpxml VM | grep -A3 \"<channel type='unix'\""),
            );
            return out;
        }
        PathState::NotASocket { kind } => {
            out.push(
                Finding::new(
                    FindingId::NotASocket,
                    Severity::Error,
                    t,
                    format!("the path is a {kind}, not a socket"),
                )
                .evidence(format!("stat {p}: {kind}"))
                .fix(format!("ls -la {p}"))
                .fix("# something replaced the VMM's socket: move it away and restart the VM")
                .fix(format!("mv {p} {p}.bad")),
            );
            return out;
        }
        PathState::PermissionDenied { detail } => {
            out.push(
                Finding::new(FindingId::PermissionDenied, Severity::Error, t, "this user may not connect to the socket")
                    .evidence(detail.clone())
                    .fix(format!("ls -la {p} {dir}"))
                    .fix(format!("sudo guestwire doctor {p}"))
                    .fix("# or run the host daemon as the socket's owner or group (libvirt: dynamic_ownership / the <seclabel>)"),
            );
            return out;
        }
        PathState::Socket { .. } => {}
    }
    let Some(listener) = &view.listener else {
        let mut f = Finding::new(
            FindingId::StaleSocket,
            Severity::Error,
            t,
            "a socket file that nothing listens on (stale)",
        )
        .evidence(format!(
            "{p} is a socket file, but no listening socket is bound to it (sock_diag)"
        ));
        if let Some(b) = &view.bound_not_listening {
            f = f.evidence(format!(
                "a {} socket is bound to it without listening, held by {}",
                b.sock.state_name(),
                b.holder()
            ));
        }
        out.push(
            f.fix(format!("ss -x -l -p | grep -F {p}   # prints nothing"))
                .fix("# the VMM that made it exited: restart the VM (or its VMM); the stale file can go")
                .fix(format!("rm {p}")),
        );
        return out;
    };
    let waiting = view.queued.len().max(listener.sock.rqueue as usize);
    if waiting > 0 {
        let mut f = Finding::new(
            FindingId::ClientsQueued,
            Severity::Warning,
            t,
            format!(
                "{waiting} client(s) wait in the accept queue: the VMM serves one client at a time"
            ),
        )
        .evidence(format!(
            "listener held by {}: accept queue {} of backlog {} (ss Recv-Q/Send-Q)",
            listener.holder(),
            listener.sock.rqueue,
            listener.sock.wqueue
        ));
        for q in &view.queued {
            f = f.evidence(format!("waiting: {}", q.holder()));
        }
        if let Some(q) = view.queued.first() {
            f = f.fix(format!(
                "kill {}   # a waiting client, once you know it is not the host daemon",
                pids(q)
            ));
        }
        out.push(f.fix(format!("ss -x -p | grep -F {p}")));
    }
    for (i, conn) in view.connections.iter().enumerate() {
        let Some(client) = &conn.client else { continue };
        let same_as_vmm = client
            .owners
            .iter()
            .any(|o| listener.owners.iter().any(|l| l.pid == o.pid));
        let ad_hoc = is_ad_hoc(client);
        if ad_hoc || same_as_vmm || (i == 0 && waiting > 0) {
            let why = if ad_hoc {
                "an ad-hoc tool holds the single-client socket"
            } else if same_as_vmm {
                "the VMM's own process holds a connection to its socket"
            } else {
                "this client holds the single-client socket while others wait"
            };
            let severity = if ad_hoc || same_as_vmm {
                Severity::Error
            } else {
                Severity::Warning
            };
            out.push(
                Finding::new(
                    FindingId::StaleClient,
                    severity,
                    t,
                    format!("{why}: {}", client.holder()),
                )
                .evidence(format!(
                    "connected client {} (socket {}) ↔ VMM end {} held by {}",
                    client.holder(),
                    client.sock.inode,
                    conn.vmm_end.sock.inode,
                    conn.vmm_end.holder()
                ))
                .evidence("the VMM accepts the next client only when this one leaves")
                .fix(format!("ss -x -p | grep -F {p}"))
                .fix(format!(
                    "kill {}   # the stale client; the host daemon reconnects",
                    pids(client)
                )),
            );
        }
    }
    if let Some(conn) = view.connections.first() {
        queue_rules(&mut out, t, conn, samples);
    }
    out
}

fn queue_rules(
    out: &mut Vec<Finding>,
    t: &str,
    conn: &super::inspect::Connection,
    samples: Option<&[QueueSample]>,
) {
    let client = conn.client.as_ref();
    let host = client.map_or_else(|| "the host client".to_string(), SockEnd::holder);
    let (to_host, to_guest): (Vec<u32>, Vec<u32>) = match samples {
        Some(s) if !s.is_empty() => (
            s.iter().filter_map(|x| x.to_host).collect(),
            s.iter().filter_map(|x| x.to_guest).collect(),
        ),
        _ => (
            client.map(|c| c.sock.rqueue).into_iter().collect(),
            vec![conn.vmm_end.sock.rqueue],
        ),
    };
    let watched = samples.is_some_and(|s| s.len() >= 2);
    let series = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(" → ");
    let (th, tg) = if watched {
        (trend(&to_host), trend(&to_guest))
    } else {
        let big = |v: &[u32]| {
            if v.iter().any(|x| *x >= STUCK_BYTES) {
                Trend::Growing
            } else {
                Trend::Zero
            }
        };
        (big(&to_host), big(&to_guest))
    };
    let how = if watched {
        "sampled"
    } else {
        "one look, below the --watch confirmation"
    };
    let sev = if watched {
        Severity::Error
    } else {
        Severity::Warning
    };
    if th == Trend::Growing {
        out.push(
            Finding::new(
                FindingId::HostNotReading,
                sev,
                t,
                format!("the guest's bytes pile up unread in {host}'s socket"),
            )
            .evidence(format!(
                "host client Recv-Q ({how}): {} bytes",
                series(&to_host)
            ))
            .evidence("the guest writes; the host process does not read")
            .fix(format!(
                "ss -x -p | grep -F '{}'   # Recv-Q of the host's socket",
                t
            ))
            .fix("# the host daemon is stuck or not reading this connection: restart it")
            .fix(format!(
                "kill {}",
                client.map_or_else(|| "PID".to_string(), pids)
            )),
        );
    }
    if matches!(tg, Trend::Growing | Trend::Stuck) {
        out.push(
            Finding::new(
                FindingId::GuestNotReading,
                sev,
                t,
                "the host's bytes wait in the VMM's socket: the guest does not read the port",
            )
            .evidence(format!(
                "VMM end Recv-Q ({how}): {} bytes (= the host client's Send-Q)",
                series(&to_guest)
            ))
            .evidence("the VMM only takes what the guest's virtio queue has room for")
            .fix("# inside the VM: is the agent running and reading its port?")
            .fix("systemctl status quantix-kvm-agent qemu-guest-agent")
            .fix("lsof /dev/virtio-ports/*"),
        );
    } else if watched && th == Trend::Stuck {
        out.push(
            Finding::new(FindingId::ConnectedNoFlow, Severity::Warning, t, format!("connected, but nothing moves: the same bytes wait in {host}'s socket"))
                .evidence(format!("host client Recv-Q (sampled): {} bytes, unchanged", series(&to_host)))
                .evidence("the guest wrote them and stopped; the host never read them")
                .fix(format!("ss -x -p | grep -F '{}'", t))
                .fix("# restart the host daemon's connection; if pings still time out, restart the agent in the VM"),
        );
    }
}

/// The finding for a socket with nothing wrong visible (when nothing else was found).
pub fn socket_ok(view: &TargetView) -> Option<Finding> {
    let listener = view.listener.as_ref()?;
    let t = view.target.shown.as_str();
    let mut f = Finding::new(
        FindingId::SocketOk,
        Severity::Ok,
        t,
        match view.connections.first().and_then(|c| c.client.as_ref()) {
            Some(c) => format!("listening; {} is connected; queues empty", c.holder()),
            None => "listening; no host client connected".to_string(),
        },
    )
    .evidence(format!(
        "listener held by {} (socket {})",
        listener.holder(),
        listener.sock.inode
    ));
    if is_hybrid_muxer(listener) {
        f = f.evidence("the listener is a hybrid-vsock muxer: clients must send CONNECT <port> first (hvsock:PATH:PORT)");
    }
    Some(f.fix(format!(
        "guestwire doctor {t} --probe   # to ask the agent itself"
    )))
}

/// Whether the process holding `end` is a VMM known to offer hybrid vsock on a Unix socket.
pub fn is_hybrid_muxer(end: &SockEnd) -> bool {
    end.owners.iter().any(|o| {
        matches!(
            o.comm.as_str(),
            "firecracker" | "cloud-hyperviso" | "cloud-hypervisor"
        ) || o.comm.starts_with("vhost-device-vs")
    })
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
