//! The liveness probe between cases: one ping through the protocol's host client on a fresh
//! connection ([`call_once`] with [`CallOp::Ping`]; for fcexec, which has no ping, a workload in
//! the `echo` runtime, whose result — even a refusal — shows the agent alive), one attempt,
//! every phase under the probe's deadline, and the whole under a bound of its own.

use std::time::Duration;

use super::requests::FCEXEC_RUNTIME;
use super::verdict::ProbeResult;
use crate::host::retry::{Deadlines, RetryPolicy};
use crate::host::{CallOp, ClientError, DialOptions, call_once};
use crate::io::Endpoint;
use crate::wire::protocol::Protocol;

/// The request a probe makes of `protocol`'s agent.
pub fn probe_op(protocol: &Protocol) -> CallOp {
    match protocol {
        Protocol::Fcexec => CallOp::Raw {
            json: format!(r#"{{"runtime":"{FCEXEC_RUNTIME}","code":"guestwire-probe"}}"#),
        },
        _ => CallOp::Ping,
    }
}

/// What a client error says about the peer's liveness.
pub fn classify(e: &ClientError) -> ProbeResult {
    match e {
        ClientError::GaveUp { last, .. } => classify(last),
        ClientError::Agent { .. } => ProbeResult::Alive,
        ClientError::NoSuchSocket { .. }
        | ClientError::Refused { .. }
        | ClientError::NotASocket { .. }
        | ClientError::Closed { .. }
        | ClientError::Reset { .. }
        | ClientError::HandshakeFailed { .. } => ProbeResult::Dead(e.to_string()),
        ClientError::TimedOut { .. } | ClientError::Busy { .. } => ProbeResult::Hung(e.to_string()),
        ClientError::Malformed { .. } => ProbeResult::Undecodable(e.to_string()),
        _ => ProbeResult::Failed(format!("{}: {e}", e.kind())),
    }
}

/// Probes the agent at `endpoint`: alive, dead, hung (no answer within `timeout`), or worse.
pub async fn probe(protocol: &Protocol, endpoint: &Endpoint, timeout: Duration) -> ProbeResult {
    let opts = DialOptions {
        retry: RetryPolicy::once(),
        deadlines: Deadlines {
            connect: Some(timeout),
            handshake: Some(timeout),
            request: Some(timeout),
            ping: Some(timeout),
            execute_grace: None,
        },
        hooks: crate::host::dial::DialHooks::default(),
    };
    // Connect, handshake and request each have `timeout`; this bounds them all together.
    let bound = timeout
        .saturating_mul(3)
        .saturating_add(Duration::from_secs(1));
    match tokio::time::timeout(
        bound,
        call_once(protocol, endpoint, &opts, &probe_op(protocol)),
    )
    .await
    {
        Err(_) => ProbeResult::Hung(format!("no answer to the probe within {bound:?}")),
        Ok(Ok(_)) => ProbeResult::Alive,
        Ok(Err(e)) => classify(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Phase;

    #[test]
    fn errors_map_to_liveness() {
        let refused = ClientError::Refused { path: "x".into() };
        assert!(matches!(classify(&refused), ProbeResult::Dead(_)));
        let gave_up = ClientError::GaveUp {
            attempts: 1,
            last: Box::new(ClientError::TimedOut {
                phase: Phase::Request,
                after: Duration::from_secs(5),
                detail: String::new(),
            }),
        };
        assert!(matches!(classify(&gave_up), ProbeResult::Hung(_)));
        let agent = ClientError::Agent {
            code: "CommandNotFound".into(),
            message: "no".into(),
        };
        assert_eq!(classify(&agent), ProbeResult::Alive);
        let proto = ClientError::Protocol {
            reason: "odd".into(),
        };
        assert!(matches!(classify(&proto), ProbeResult::Failed(_)));
    }

    #[tokio::test]
    async fn a_missing_socket_is_dead() {
        let ep: Endpoint = "unix:/nonexistent/guestwire-probe.sock"
            .parse()
            .expect("ep");
        let r = probe(&Protocol::Qga, &ep, Duration::from_secs(1)).await;
        assert!(matches!(r, ProbeResult::Dead(_)), "{r:?}");
    }
}
