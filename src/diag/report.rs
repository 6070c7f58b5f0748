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
    let mut ok_lines = false;
    for f in &findings {
        if f.severity == Severity::Ok {
            // Fine: one line each (a scan of many healthy sockets stays readable).
            if !ok_lines {
                ok_lines = true;
                let _ = writeln!(out);
            }
            let _ = writeln!(
                out,
                "[{}] {}: {}: {}",
                f.severity, f.id, f.target, f.summary
            );
            continue;
        }
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
    for n in &r.notes {
        let _ = writeln!(out, "\nnote: {n}");
    }
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
        "notes": r.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::finding::{Finding, FindingId};

    #[test]
    fn problems_come_first_with_their_fix_and_ok_lines_last() {
        let r = Report {
            unix_source: UnixSource::SockDiag,
            fallback_reason: None,
            unix_sockets: 3,
            vsock: VsockTable::Unavailable {
                reason: "not loaded".into(),
            },
            targets: Vec::new(),
            notes: vec!["a note".into()],
            host_findings: vec![
                Finding::new(FindingId::SocketOk, Severity::Ok, "/a", "listening"),
                Finding::new(FindingId::StaleSocket, Severity::Error, "/b", "stale")
                    .evidence("no listener")
                    .fix("rm /b"),
            ],
        };
        let t = text(&r);
        let stale = t.find("[ERROR] stale_socket: /b").expect("error shown");
        let ok = t.find("[ok] socket_ok: /a: listening").expect("ok line");
        assert!(stale < ok, "{t}");
        assert!(t.contains("  - no listener\n  fix:\n    rm /b\n"), "{t}");
        assert!(t.contains("1 problem(s)"), "{t}");
        assert!(t.contains("note: a note"), "{t}");
        assert!(t.contains("vsock: unavailable (not loaded)"), "{t}");
        let j = json(&r);
        assert_eq!(j["worst"], "error");
        assert_eq!(j["findings"][0]["id"], "stale_socket");
    }
}
