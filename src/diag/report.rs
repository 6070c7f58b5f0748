//! The doctor's output: a short human report (worst finding first, evidence, the fix as
//! commands) and the JSON form. Pure: both are functions of a [`Report`].

use std::fmt::Write;

use super::doctor::Report;
use super::dump::{UnixSource, VsockTable};
use super::finding::Severity;

/// The human report.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let findings = r.findings();
    let problems = findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .count();
    let _ = writeln!(
        out,
        "guestwire doctor: {} socket(s) examined, {} problem(s)",
        r.targets.len(),
        problems
    );
    for f in &findings {
        let _ = writeln!(out, "\n[{}] {}: {}", f.severity, f.id, f.target);
        let _ = writeln!(out, "  {}", f.summary);
        for e in &f.evidence {
            let _ = writeln!(out, "  - {e}");
        }
        if !f.fix.is_empty() {
            let _ = writeln!(out, "  fix:");
            for c in &f.fix {
                let _ = writeln!(out, "    {c}");
            }
        }
        let _ = writeln!(out, "  see: docs/failure-modes.md#{}", f.id);
    }
    let source = match r.unix_source {
        UnixSource::SockDiag => "sock_diag".to_string(),
        UnixSource::ProcNetUnix => format!(
            "/proc/net/unix (no peers or queues: {})",
            r.fallback_reason.clone().unwrap_or_default()
        ),
    };
    let vsock = match &r.vsock {
        VsockTable::Unavailable { reason } => format!("vsock: unavailable ({reason})"),
        VsockTable::Sockets { sockets } => format!("vsock: {} socket(s)", sockets.len()),
    };
    let _ = writeln!(
        out,
        "\n{} Unix sockets on this host ({source}); {vsock}",
        r.unix_sockets
    );
    out
}

/// The JSON form: the findings worst first, then every target's details.
pub fn json(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "worst": r.worst(),
        "findings": r.findings(),
        "unix_source": r.unix_source,
        "fallback_reason": r.fallback_reason,
        "unix_sockets": r.unix_sockets,
        "vsock": r.vsock,
        "targets": r.targets,
    })
}
