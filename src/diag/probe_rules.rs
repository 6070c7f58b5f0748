//! What `--probe` observed ([`ProbeReport`], filled in by [`super::probe`]) and the findings it
//! implies, as a pure function ([`probe_findings`]).

use serde::Serialize;

use super::finding::{Finding, FindingId, Severity};

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// The agent answered the ping.
    Answered {
        /// The client's one-line summary (e.g. `pong seq=1 version=0.1.0`).
        summary: String,
    },
    /// Connecting failed (the host client's error kind: `refused`, `busy`, …).
    ConnectFailed {
        /// The kind.
        kind: String,
        /// The message.
        message: String,
    },
    /// `CONNECT <port>` was met with end of file.
    HandshakeEof {
        /// The guest port.
        port: u32,
    },
    /// `CONNECT <port>` was answered with something other than `OK`.
    HandshakeNotOk {
        /// The guest port.
        port: u32,
        /// What came back.
        line: String,
    },
    /// No answer within the deadline.
    TimedOut {
        /// The phase (`handshake` for qga's sync, `request`).
        phase: String,
    },
    /// The peer closed the connection before answering.
    Closed {
        /// The phase.
        phase: String,
    },
    /// The reply did not decode, or broke the protocol.
    BadReply {
        /// The client's error kind (`malformed`, `protocol`).
        kind: String,
        /// The message.
        message: String,
    },
    /// Anything else (reset, the agent's own error, …).
    Failed {
        /// The client's error kind.
        kind: String,
        /// The message.
        message: String,
    },
    /// The protocol could not be told (`--protocol auto` saw no bytes and the name says nothing).
    Undetermined {
        /// Why.
        reason: String,
    },
}

/// The second look when a plain connection was closed without a byte: does the socket answer a
/// hybrid-vsock `CONNECT`?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HybridCheck {
    /// The port asked for.
    pub port: u32,
    /// The line that came back (empty: end of file).
    pub reply: String,
    /// Whether it was `OK …`.
    pub ok: bool,
}

/// Everything one probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// The endpoint probed (`unix:…`, `hvsock:…:PORT`).
    pub endpoint: String,
    /// The protocol spoken, if one was chosen.
    pub protocol: Option<String>,
    /// Why that protocol (`--protocol`, detected from the first bytes, guessed from the name).
    pub protocol_source: String,
    /// How it ended.
    pub outcome: ProbeOutcome,
    /// Time from sending the ping to its answer (or to the failure), in milliseconds.
    pub ping_ms: Option<u64>,
    /// Bytes received from the agent in all.
    pub received: usize,
    /// The first bytes received (hex, at most 64).
    pub first_bytes_hex: String,
    /// What `wire::detect` made of the first bytes.
    pub detected: Option<String>,
    /// Its reason.
    pub detect_reason: Option<String>,
    /// Unsolicited messages (events) the client saw.
    pub events: u64,
    /// The hybrid-vsock check, when it was made.
    pub hybrid_check: Option<HybridCheck>,
}

fn fmt_ms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "?".into(), |m| format!("{m} ms"))
}

/// The findings a probe implies, for the target shown as `t` at `path`.
pub fn probe_findings(t: &str, path: &str, r: &ProbeReport, slow_ms: u64) -> Vec<Finding> {
    let proto = r.protocol.clone().unwrap_or_else(|| "?".into());
    let base = |id, sev, summary: String| {
        Finding::new(id, sev, t, summary).evidence(format!(
            "probe: {} speaking {proto} ({})",
            r.endpoint, r.protocol_source
        ))
    };
    let mismatch = r
        .detected
        .as_ref()
        .filter(|d| Some(*d) != r.protocol.as_ref() && d.as_str() != "raw");
    if let (Some(seen), false) = (mismatch, matches!(r.outcome, ProbeOutcome::Answered { .. })) {
        return vec![
            base(
                FindingId::FramingMismatch,
                Severity::Error,
                format!("the agent speaks {seen}, the client spoke {proto}"),
            )
            .evidence(format!(
                "first bytes from the agent: {} ({})",
                r.first_bytes_hex,
                r.detect_reason.clone().unwrap_or_default()
            ))
            .evidence(format!("the probe failed: {}", outcome_text(&r.outcome)))
            .fix(format!(
                "guestwire call --connect {} --protocol {seen} ping",
                r.endpoint
            ))
            .fix(format!(
                "# configure the host daemon for {seen} framing, or update the agent to {proto}"
            )),
        ];
    }
    let f = match &r.outcome {
        ProbeOutcome::Answered { summary } => {
            let slow = r.ping_ms.is_some_and(|m| m > slow_ms);
            let (id, sev, what) = if slow {
                (FindingId::AgentSlow, Severity::Warning, format!("the agent answered slowly ({}, over {slow_ms} ms)", fmt_ms(r.ping_ms)))
            } else {
                (FindingId::AgentHealthy, Severity::Ok, format!("the agent answered in {}", fmt_ms(r.ping_ms)))
            };
            let f = base(id, sev, what).evidence(format!("answer: {summary}"));
            if slow {
                f.fix("# is the guest overloaded, or the VM paused/throttled? inside the VM:")
                    .fix("top -b -n1 | head -20")
                    .fix(format!("guestwire doctor {t} --probe --slow-ms {slow_ms}   # again, to compare"))
            } else {
                f
            }
        }
        ProbeOutcome::ConnectFailed { kind, message } => {
            let (id, sev) = match kind.as_str() {
                "refused" => (FindingId::StaleSocket, Severity::Error),
                "no_such_socket" => (FindingId::PathMissing, Severity::Error),
                "permission_denied" => (FindingId::PermissionDenied, Severity::Error),
                "not_a_socket" => (FindingId::NotASocket, Severity::Error),
                "busy" => (FindingId::ClientsQueued, Severity::Warning),
                _ => (FindingId::ProbeFailed, Severity::Error),
            };
            base(id, sev, format!("connecting failed: {kind}"))
                .evidence(message.clone())
                .fix(format!("ss -x -p | grep -F {path}"))
        }
        ProbeOutcome::HandshakeEof { port } => base(
            FindingId::HybridHandshakeEof,
            Severity::Error,
            format!("CONNECT {port} was closed without an answer: nothing listens on guest port {port}"),
        )
        .evidence(format!("sent \"CONNECT {port}\\n\", got end of file and no OK line"))
        .fix(format!("# inside the VM: is the agent running and listening on vsock port {port}?"))
        .fix("ss --vsock -l -p   # inside the VM")
        .fix(format!("guestwire call --connect {} --protocol {proto} ping   # once it listens", r.endpoint)),
        ProbeOutcome::HandshakeNotOk { port, line } => base(
            FindingId::HandshakeWithoutOk,
            Severity::Error,
            format!("CONNECT {port} was answered without OK"),
        )
        .evidence(format!("sent \"CONNECT {port}\\n\", got {line:?}"))
        .fix("# the socket is not a hybrid-vsock muxer, or speaks another dialect: check the VMM's vsock uds_path")
        .fix(format!("timeout 2 socat - UNIX-CONNECT:{path} <<< 'CONNECT {port}'")),
        ProbeOutcome::TimedOut { phase } => {
            if r.received > 0 || r.events > 0 {
                base(
                    FindingId::GuestBeforeHost,
                    Severity::Error,
                    "the agent wrote, but does not answer: it started before the host and is stuck".into(),
                )
                .evidence(format!(
                    "{} bytes ({} event(s)) arrived unasked, then no answer in the {phase} phase",
                    r.received, r.events
                ))
                .evidence(format!("first bytes: {}", r.first_bytes_hex))
                .fix("# inside the VM, now that the host is connected:")
                .fix("systemctl restart quantix-kvm-agent")
                .fix("# for good: start the host daemon before the agent, or use an agent that does not block on writes")
            } else {
                base(
                    FindingId::AgentNotAnswering,
                    Severity::Error,
                    format!("no answer in the {phase} phase"),
                )
                .evidence(format!("nothing arrived within the deadline ({} bytes)", r.received))
                .fix("# inside the VM: is the agent running?")
                .fix("systemctl status quantix-kvm-agent qemu-guest-agent")
                .fix(format!("guestwire doctor {t} --watch 5   # are bytes waiting in either direction?"))
            }
        }
        ProbeOutcome::Closed { phase } if r.received == 0 && !r.endpoint.starts_with("hvsock:") => {
            let (sev, how) = match &r.hybrid_check {
                Some(h) if h.ok => (Severity::Error, format!("confirmed: \"CONNECT {}\" was answered {:?}", h.port, h.reply)),
                Some(h) => (Severity::Warning, format!("\"CONNECT {}\" got {:?}: no agent on that port, or not a muxer", h.port, h.reply)),
                None => (Severity::Warning, "suspected: give --vsock-port PORT to confirm with a CONNECT".to_string()),
            };
            let port = r.hybrid_check.as_ref().map_or_else(|| "PORT".to_string(), |h| h.port.to_string());
            base(
                FindingId::VsockClientHybridVmm,
                sev,
                "the socket closed on the client's first bytes without a word: a hybrid-vsock muxer expects CONNECT <port> first".into(),
            )
            .evidence(format!("plain {proto} request → end of file in the {phase} phase, 0 bytes back"))
            .evidence(how)
            .fix("# this VMM (Firecracker, Cloud Hypervisor, vhost-device-vsock --uds-path) offers vsock only as hybrid vsock:")
            .fix("# an AF_VSOCK client (vsock:CID:PORT) or a plain Unix client cannot reach the guest; use the handshake")
            .fix(format!("guestwire call --connect hvsock:{path}:{port} --protocol {proto} ping"))
        }
        ProbeOutcome::Closed { phase } => base(
            FindingId::ProbeFailed,
            Severity::Error,
            format!("the agent closed the connection in the {phase} phase"),
        )
        .evidence(format!("{} bytes arrived first: {}", r.received, r.first_bytes_hex))
        .fix("# inside the VM: the agent's log says why it dropped the connection"),
        ProbeOutcome::BadReply { kind, message } => base(
            FindingId::FramingMismatch,
            Severity::Error,
            format!("the reply does not decode as {proto} ({kind})"),
        )
        .evidence(message.clone())
        .evidence(format!("first bytes: {}", r.first_bytes_hex))
        .fix(format!("guestwire call --connect {} --protocol auto ping", r.endpoint)),
        ProbeOutcome::Failed { kind, message } => {
            base(FindingId::ProbeFailed, Severity::Error, format!("the probe failed: {kind}"))
                .evidence(message.clone())
        }
        ProbeOutcome::Undetermined { reason } => base(
            FindingId::ProbeSkipped,
            Severity::Info,
            "the probe could not tell which protocol to speak".into(),
        )
        .evidence(reason.clone())
        .fix(format!("guestwire doctor {t} --probe --protocol qga   # or quantix, fcexec, …")),
    };
    vec![f]
}

fn outcome_text(o: &ProbeOutcome) -> String {
    match o {
        ProbeOutcome::Answered { summary } => format!("answered: {summary}"),
        ProbeOutcome::ConnectFailed { message, .. }
        | ProbeOutcome::BadReply { message, .. }
        | ProbeOutcome::Failed { message, .. } => message.clone(),
        ProbeOutcome::HandshakeEof { port } => format!("CONNECT {port}: end of file"),
        ProbeOutcome::HandshakeNotOk { line, .. } => format!("handshake answered {line:?}"),
        ProbeOutcome::TimedOut { phase } => format!("timed out in the {phase} phase"),
        ProbeOutcome::Closed { phase } => format!("closed in the {phase} phase"),
        ProbeOutcome::Undetermined { reason } => reason.clone(),
    }
}

#[cfg(test)]
#[path = "probe_rules_tests.rs"]
mod tests;
