use super::*;

fn report(outcome: ProbeOutcome) -> ProbeReport {
    ProbeReport {
        endpoint: "unix:/run/vm.sock".into(),
        protocol: Some("quantix".into()),
        protocol_source: "--protocol".into(),
        outcome,
        ping_ms: Some(5),
        received: 0,
        first_bytes_hex: String::new(),
        detected: None,
        detect_reason: None,
        events: 0,
        hybrid_check: None,
    }
}

fn id(r: &ProbeReport) -> (FindingId, Severity) {
    let f = probe_findings("/run/vm.sock", "/run/vm.sock", r, 100);
    assert_eq!(f.len(), 1);
    (f[0].id, f[0].severity)
}

#[test]
fn answers_are_healthy_or_slow() {
    let mut r = report(ProbeOutcome::Answered {
        summary: "pong".into(),
    });
    assert_eq!(id(&r), (FindingId::AgentHealthy, Severity::Ok));
    r.ping_ms = Some(101);
    assert_eq!(id(&r), (FindingId::AgentSlow, Severity::Warning));
}

#[test]
fn first_bytes_of_another_framing_are_a_mismatch() {
    let mut r = report(ProbeOutcome::BadReply {
        kind: "malformed".into(),
        message: "bad magic".into(),
    });
    r.detected = Some("quantix-legacy".into());
    r.received = 10;
    let f = probe_findings("t", "/p", &r, 100);
    assert_eq!(f[0].id, FindingId::FramingMismatch);
    assert!(f[0].summary.contains("quantix-legacy"));
    // The same bytes with an answer are no mismatch.
    r.outcome = ProbeOutcome::Answered {
        summary: "pong".into(),
    };
    assert_eq!(id(&r).0, FindingId::AgentHealthy);
}

#[test]
fn a_timeout_after_unasked_bytes_is_guest_before_host() {
    let mut r = report(ProbeOutcome::TimedOut {
        phase: "request".into(),
    });
    assert_eq!(id(&r).0, FindingId::AgentNotAnswering);
    r.received = 203;
    r.events = 1;
    r.detected = Some("quantix".into());
    assert_eq!(id(&r).0, FindingId::GuestBeforeHost);
}

#[test]
fn handshake_failures_are_named() {
    assert_eq!(
        id(&report(ProbeOutcome::HandshakeEof { port: 5 })).0,
        FindingId::HybridHandshakeEof
    );
    assert_eq!(
        id(&report(ProbeOutcome::HandshakeNotOk {
            port: 5,
            line: "ERR".into()
        }))
        .0,
        FindingId::HandshakeWithoutOk
    );
}

#[test]
fn a_silent_close_on_a_plain_socket_points_at_hybrid_vsock() {
    let mut r = report(ProbeOutcome::Closed {
        phase: "request".into(),
    });
    assert_eq!(id(&r), (FindingId::VsockClientHybridVmm, Severity::Warning));
    r.hybrid_check = Some(HybridCheck {
        port: 1024,
        reply: "OK 1073741825".into(),
        ok: true,
    });
    assert_eq!(id(&r), (FindingId::VsockClientHybridVmm, Severity::Error));
    r.endpoint = "hvsock:/run/fc.vsock:1024".into();
    assert_eq!(id(&r).0, FindingId::ProbeFailed);
}

#[test]
fn connect_failures_map_to_the_passive_names() {
    for (kind, want) in [
        ("refused", FindingId::StaleSocket),
        ("busy", FindingId::ClientsQueued),
        ("no_such_socket", FindingId::PathMissing),
        ("weird", FindingId::ProbeFailed),
    ] {
        let r = report(ProbeOutcome::ConnectFailed {
            kind: kind.into(),
            message: "m".into(),
        });
        assert_eq!(id(&r).0, want, "{kind}");
    }
}
