//! A named finding: what is wrong (or fine), how bad, the evidence, and the fix as commands. Every
//! [`FindingId`] has a section of the same name in `docs/failure-modes.md`.

use std::fmt;

use serde::Serialize;

/// How bad a finding is; the report lists the worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Fine.
    Ok,
    /// Worth knowing; not a problem by itself.
    Info,
    /// Probably a problem.
    Warning,
    /// A problem: the agent cannot be reached this way.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
        })
    }
}

macro_rules! finding_ids {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The catalogue of findings (`docs/failure-modes.md`, one section each).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FindingId {
            $($(#[$doc])* $variant,)*
        }

        impl FindingId {
            /// Every finding.
            pub const ALL: &'static [FindingId] = &[$(FindingId::$variant,)*];

            /// The stable snake_case name (JSON `id`, the section title in the catalogue).
            pub fn name(self) -> &'static str {
                match self {
                    $(FindingId::$variant => $name,)*
                }
            }
        }
    };
}

finding_ids! {
    /// Nothing exists at the path.
    PathMissing => "path_missing",
    /// The path is not a socket.
    NotASocket => "not_a_socket",
    /// This user may not connect.
    PermissionDenied => "permission_denied",
    /// A socket file nothing listens on.
    StaleSocket => "stale_socket",
    /// A client holds the single-client socket (a leftover socat, nc, …, or one others wait behind).
    StaleClient => "stale_client",
    /// Clients wait in the accept queue.
    ClientsQueued => "clients_queued",
    /// The guest's bytes pile up in the host client's socket.
    HostNotReading => "host_not_reading",
    /// The host's bytes wait in the VMM's socket: the guest does not take them.
    GuestNotReading => "guest_not_reading",
    /// Connected, and the same bytes wait throughout: nothing moves either way.
    ConnectedNoFlow => "connected_no_flow",
    /// The agent wrote before the host connected and now does not answer.
    GuestBeforeHost => "guest_before_host",
    /// The agent speaks another framing than the client.
    FramingMismatch => "framing_mismatch",
    /// The hybrid-vsock `CONNECT` was closed without an answer: nothing listens on that port.
    HybridHandshakeEof => "hybrid_handshake_eof",
    /// The hybrid-vsock `CONNECT` was answered with something other than `OK`.
    HandshakeWithoutOk => "handshake_without_ok",
    /// The socket is a hybrid-vsock muxer: a plain (AF_VSOCK-style) client gets nothing.
    VsockClientHybridVmm => "vsock_client_hybrid_vmm",
    /// The agent did not answer within the deadline.
    AgentNotAnswering => "agent_not_answering",
    /// The agent answered, slowly.
    AgentSlow => "agent_slow",
    /// The agent answered.
    AgentHealthy => "agent_healthy",
    /// Passively, nothing wrong is visible.
    SocketOk => "socket_ok",
    /// The probe was not run on this socket.
    ProbeSkipped => "probe_skipped",
    /// The probe failed in a way no other finding names.
    ProbeFailed => "probe_failed",
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for FindingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One finding about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which.
    pub id: FindingId,
    /// How bad.
    pub severity: Severity,
    /// The target it is about (as shown).
    pub target: String,
    /// One line for humans.
    pub summary: String,
    /// What was seen.
    pub evidence: Vec<String>,
    /// What to do, as commands (comments start with `#`).
    pub fix: Vec<String>,
}

impl Finding {
    /// A finding with no evidence or fix yet.
    pub fn new(
        id: FindingId,
        severity: Severity,
        target: &str,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            id,
            severity,
            target: target.to_string(),
            summary: summary.into(),
            evidence: Vec::new(),
            fix: Vec::new(),
        }
    }

    /// Adds a line of evidence.
    pub fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }

    /// Adds a fix command.
    pub fn fix(mut self, cmd: impl Into<String>) -> Self {
        self.fix.push(cmd.into());
        self
    }
}

/// Sorts worst first (stable: ties keep their order).
pub fn worst_first(findings: &mut [Finding]) {
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finding_has_a_section_in_the_catalogue() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/failure-modes.md"
        ))
        .expect("docs/failure-modes.md");
        for id in FindingId::ALL {
            assert!(
                doc.contains(&format!("\n## {}\n", id.name())),
                "no section for {id}"
            );
        }
    }

    #[test]
    fn worst_comes_first() {
        let mut f = vec![
            Finding::new(FindingId::SocketOk, Severity::Ok, "a", "x"),
            Finding::new(FindingId::StaleSocket, Severity::Error, "b", "x"),
            Finding::new(FindingId::ClientsQueued, Severity::Warning, "c", "x"),
        ];
        worst_first(&mut f);
        let ids: Vec<_> = f.iter().map(|f| f.id).collect();
        assert_eq!(
            ids,
            [
                FindingId::StaleSocket,
                FindingId::ClientsQueued,
                FindingId::SocketOk
            ]
        );
    }
}
