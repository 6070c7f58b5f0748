//! The protocol-independent shape of a host call, as `guestwire call` and scenarios use it: an
//! operation ([`CallOp`]) sent by a protocol's client, and its outcome ([`CallOutcome`]).

use std::time::Duration;

use bytes::Bytes;

/// What to ask the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOp {
    /// A liveness check: quantix ping/pong, qga `guest-ping`, volant's health GET; for fcexec,
    /// which has no ping, a successful dial and handshake.
    Ping,
    /// Run a program with arguments (never through a shell unless the program is one).
    Exec {
        /// Program.
        program: String,
        /// Arguments.
        args: Vec<String>,
        /// The command's own timeout (the request deadline is this plus the client's grace).
        timeout: Option<Duration>,
    },
    /// Read a file from the guest.
    Read {
        /// Guest path.
        path: String,
    },
    /// Write a file in the guest.
    Write {
        /// Guest path.
        path: String,
        /// Contents.
        data: Bytes,
    },
    /// Ask the guest to shut down (`poweroff`, `reboot` or `halt`).
    Shutdown {
        /// The kind of shutdown.
        mode: String,
    },
    /// Ask the agent who it is: quantix capabilities (and its AgentReady event), qga `guest-info`.
    Info,
    /// Send a request given as JSON in the protocol's own JSON form (quantix AgentMessage JSON,
    /// a qga command object, an fcexec GuestRequest, `{"method","path","body"}` for HTTP).
    Raw {
        /// The JSON text.
        json: String,
    },
}

impl CallOp {
    /// The operation's name as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Exec { .. } => "exec",
            Self::Read { .. } => "read",
            Self::Write { .. } => "write",
            Self::Shutdown { .. } => "shutdown",
            Self::Info => "info",
            Self::Raw { .. } => "raw",
        }
    }
}

/// What a successful call returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallOutcome {
    /// One line for humans, e.g. `pong seq=1 version=0.1.0`.
    pub summary: String,
    /// The reply as JSON (the decoded message(s)).
    pub reply: serde_json::Value,
    /// Unsolicited messages that arrived meanwhile (telemetry, agent_ready, error events, logs).
    pub events: Vec<serde_json::Value>,
    /// Bytes the call produced for the user (file contents, command stdout), printed raw by the
    /// CLI when asked.
    pub data: Option<Bytes>,
    /// For exec: the command's exit code, which `guestwire call` reflects in its own status.
    pub exit_code: Option<i32>,
}

/// Makes one call with the client of `protocol`: dial `endpoint`, send `op`, return its outcome.
/// The protocols with a host client are quantix, quantix-legacy, fcexec, qga and volant.
pub async fn call_once(
    protocol: &crate::wire::protocol::Protocol,
    endpoint: &crate::io::Endpoint,
    opts: &super::DialOptions,
    op: &CallOp,
) -> Result<CallOutcome, super::ClientError> {
    use crate::wire::protocol::Protocol;
    match protocol {
        Protocol::Quantix | Protocol::QuantixLegacy => {
            let framing = if *protocol == Protocol::Quantix {
                super::quantix::Framing::Qtx1
            } else {
                super::quantix::Framing::Legacy
            };
            let client =
                super::quantix::QuantixClient::connect(endpoint, opts.clone(), framing).await?;
            client.call(op).await
        }
        Protocol::Fcexec => {
            super::fcexec::FcexecClient::new(endpoint.clone(), opts.clone())
                .call(op)
                .await
        }
        Protocol::Volant => {
            super::volant::VolantClient::new(endpoint.clone(), opts.clone())
                .call(op)
                .await
        }
        Protocol::Qga => {
            let mut client = super::qga::QgaClient::connect(endpoint, opts.clone()).await?;
            client.call(op).await
        }
        other => Err(super::ClientError::Invalid(format!(
            "there is no host client for {other}: quantix, quantix-legacy, fcexec, qga or volant"
        ))),
    }
}
