//! `examine`: the whole doctor run. Read the socket tables once, look at each target, walk
//! `/proc` once for the holders, then (if asked) sample the queues over time and probe the agents
//! that nobody else is connected to; the findings come from the pure rules.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use super::dump::{
    DumpError, UnixSource, VsockTable, unix_sockets, unix_sockets_netlink, vsock_sockets,
};
use super::finding::{Finding, FindingId, Severity, worst_first};
use super::inspect::{Target, TargetView, check_path, related_inodes, view};
use super::probe::{ProbeOptions, probe};
use super::probe_rules::{ProbeReport, probe_findings};
use super::procfd::owners;
use super::rules::{any_at_least, passive, socket_ok};
use super::sockets::SocketTable;
use super::vsock_rules::vsock_findings;
use super::watch::{QueueSample, Watched, period_for, sample, sample_over};
use crate::io::Endpoint;

/// What to do.
#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    /// The sockets.
    pub targets: Vec<Target>,
    /// `--watch`: how long to sample the queues.
    pub watch: Option<Duration>,
    /// `--probe`: how to probe (None: passive only, nothing is connected to).
    pub probe: Option<ProbeOptions>,
    /// `--slow-ms`: a ping slower than this is `agent_slow`.
    pub slow_ms: u64,
}

/// One target's part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// What was seen passively.
    pub view: TargetView,
    /// The queue samples (`--watch`).
    pub samples: Vec<QueueSample>,
    /// The probe (`--probe`), when it ran.
    pub probe: Option<ProbeReport>,
    /// Its findings, worst first.
    pub findings: Vec<Finding>,
}

/// The whole run's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where the Unix socket table came from.
    pub unix_source: UnixSource,
    /// Why sock_diag was not used, on fallback.
    pub fallback_reason: Option<String>,
    /// Unix sockets on the host (this network namespace).
    pub unix_sockets: usize,
    /// The vsock sockets, or why they are unknown.
    pub vsock: VsockTable,
    /// Per target.
    pub targets: Vec<TargetReport>,
    /// Findings about the host rather than one socket (AF_VSOCK clients).
    pub host_findings: Vec<Finding>,
    /// What could not be done, for the reader (e.g. `--watch` without sock_diag).
    pub notes: Vec<String>,
}

impl Report {
    /// Every finding, worst first.
    pub fn findings(&self) -> Vec<Finding> {
        let mut all: Vec<Finding> = self
            .targets
            .iter()
            .flat_map(|t| t.findings.clone())
            .chain(self.host_findings.iter().cloned())
            .collect();
        worst_first(&mut all);
        all
    }

    /// The worst severity found (`Ok` when there are no findings).
    pub fn worst(&self) -> Severity {
        self.targets
            .iter()
            .flat_map(|t| t.findings.iter().map(|f| f.severity))
            .chain(self.host_findings.iter().map(|f| f.severity))
            .max()
            .unwrap_or(Severity::Ok)
    }
}

/// Merges findings with the same id: the worst severity, all evidence, each fix once.
pub fn merge(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for f in findings {
        match out
            .iter_mut()
            .find(|o| o.id == f.id && o.target == f.target)
        {
            Some(o) => {
                o.severity = o.severity.max(f.severity);
                o.evidence.extend(f.evidence);
                for x in f.fix {
                    if !o.fix.contains(&x) {
                        o.fix.push(x);
                    }
                }
            }
            None => out.push(f),
        }
    }
    worst_first(&mut out);
    out
}

fn watched(v: &TargetView) -> Watched {
    let conn = v.connections.first();
    Watched {
        listener: v.listener.as_ref().map(|l| l.sock.inode),
        vmm_end: conn.map(|c| c.vmm_end.sock.inode),
        client: conn.and_then(|c| c.client.as_ref()).map(|c| c.sock.inode),
    }
}

/// Why a probe would do harm or tell nothing, if it would.
fn skip_reason(v: &TargetView, passive: &[Finding]) -> Option<String> {
    if any_at_least(passive, Severity::Error)
        && !passive.iter().all(|f| f.id == FindingId::StaleClient)
    {
        return Some("the passive look already found what stops a client".into());
    }
    if v.target.hvsock_port.is_some() {
        return None; // a hybrid muxer takes many clients
    }
    if let Some(c) = v.connections.first().and_then(|c| c.client.as_ref()) {
        return Some(format!(
            "{} holds this single-client socket: a probe would only wait behind it (and, when it \
             leaves, take the guest's bytes meant for it)",
            c.holder()
        ));
    }
    if !v.queued.is_empty() {
        return Some("clients already wait in the accept queue".into());
    }
    None
}

/// Runs the doctor. Fails only when no socket table can be read at all.
pub async fn examine(opts: &DoctorOptions) -> Result<Report, DumpError> {
    let (socks, unix_source, fallback_reason) = unix_sockets()?;
    let table = SocketTable::new(socks);
    let vsock = vsock_sockets();
    let states: Vec<_> = opts.targets.iter().map(|t| check_path(&t.path)).collect();
    let mut wanted = HashSet::new();
    for (t, s) in opts.targets.iter().zip(&states) {
        wanted.extend(related_inodes(&t.path, s, &table));
    }
    let holders = owners(&wanted);
    let views: Vec<TargetView> = opts
        .targets
        .iter()
        .zip(states)
        .map(|(t, s)| view(t.clone(), s, &table, &holders))
        .collect();
    let mut samples: Vec<Vec<QueueSample>> = vec![Vec::new(); views.len()];
    let mut notes = Vec::new();
    if opts.watch.is_some() && unix_source != UnixSource::SockDiag {
        notes.push(
            "--watch skipped: /proc/net/unix has no queue lengths (sock_diag is needed)".into(),
        );
    }
    if let (Some(d), UnixSource::SockDiag) = (opts.watch, unix_source) {
        let follow: Vec<Watched> = views.iter().map(watched).collect();
        let rounds = sample_over(d, period_for(d), |ms| {
            let t = SocketTable::new(unix_sockets_netlink().unwrap_or_default());
            follow.iter().map(|w| sample(&t, w, ms)).collect::<Vec<_>>()
        })
        .await;
        for round in rounds {
            for (i, s) in round.into_iter().enumerate() {
                samples[i].push(s);
            }
        }
    }
    let mut targets = Vec::new();
    for (v, s) in views.into_iter().zip(samples) {
        let mut findings = passive(&v, opts.watch.map(|_| s.as_slice()));
        let mut probe_report = None;
        if let Some(p) = &opts.probe {
            match skip_reason(&v, &findings) {
                Some(why) => findings.push(
                    Finding::new(
                        FindingId::ProbeSkipped,
                        Severity::Info,
                        &v.target.shown,
                        "the probe was not run",
                    )
                    .evidence(why),
                ),
                None => {
                    let ep = match v.target.hvsock_port {
                        Some(port) => Endpoint::Hvsock {
                            path: v.target.path.clone(),
                            port,
                        },
                        None => Endpoint::Unix(v.target.path.clone()),
                    };
                    let r = probe(&ep, p).await;
                    findings.extend(probe_findings(
                        &v.target.shown,
                        &v.target.path.display().to_string(),
                        &r,
                        opts.slow_ms,
                    ));
                    probe_report = Some(r);
                }
            }
        }
        let answered = findings
            .iter()
            .any(|f| matches!(f.id, FindingId::AgentHealthy | FindingId::AgentSlow));
        if !any_at_least(&findings, Severity::Warning)
            && !answered
            && let Some(ok) = socket_ok(&v)
        {
            findings.push(ok);
        }
        targets.push(TargetReport {
            view: v,
            samples: s,
            probe: probe_report,
            findings: merge(findings),
        });
    }
    Ok(Report {
        unix_source,
        fallback_reason,
        unix_sockets: table.len(),
        host_findings: vsock_findings(&vsock, std::path::Path::new("/dev/vhost-vsock").exists()),
        vsock,
        targets,
        notes,
    })
}
