//! [`SerialVmmEvent`]: what the mock virtio-serial VMM reports, one line each on its standard
//! output (`Display`), or one JSON object each with `--json` (`serde`, tagged by `"event"`).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// One thing the mock VMM's port, host side or guest side did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SerialVmmEvent {
    /// The host socket is up (and, with a spawned agent, its device link).
    Listening {
        /// The host Unix socket.
        socket: PathBuf,
        /// The pty link standing in for `/dev/virtio-ports/NAME`, when an agent command runs.
        device: Option<PathBuf>,
        /// The port's name.
        port_name: String,
    },
    /// A host client was accepted: data now flows between it and the guest.
    ClientAccepted {
        /// The client's number (1 for the first).
        client: u64,
        /// Who it is (`pid 42 uid 1000`).
        peer: String,
    },
    /// A host client connected but waits, starved (the model's queue; over the real socket,
    /// waiting clients sit in the kernel's listen queue and are not seen until accepted).
    ClientQueued {
        /// The client's number.
        client: u64,
    },
    /// A host client was refused (the model's listen queue was full).
    ClientRefused,
    /// A host client disconnected.
    ClientDisconnected {
        /// The client's number.
        client: u64,
        /// Whether it was the accepted one.
        was_active: bool,
    },
    /// The accepted client left and the data in flight was thrown away, as QEMU does.
    DataDiscarded {
        /// The client that left.
        client: u64,
        /// Guest → host bytes lost (unread by the client, plus the guest's queued writes).
        bytes: u64,
        /// Host → guest bytes the guest had not read.
        unread_by_guest: u64,
    },
    /// The guest opened the port.
    GuestOpened,
    /// The guest closed the port.
    GuestClosed,
    /// A guest write found no room or no host client: the guest's writer waits.
    GuestBlocked,
    /// Room appeared: the guest's writer resumes.
    GuestUnblocked,
    /// `guest_before_host`: a guest write taken while no host client has connected yet.
    GuestBeforeHost {
        /// Bytes taken by this write.
        bytes: u64,
        /// Writes taken so far.
        writes: u64,
    },
    /// `guest_before_host`: the first host client left before reading the early writes.
    GuestBeforeHostDiscarded {
        /// The client.
        client: u64,
        /// Early bytes it never read.
        bytes: u64,
    },
    /// The in-process mock agent's loop ended (it no longer serves the port).
    GuestExited {
        /// Why: the loop's report or error.
        reason: String,
    },
    /// The guest agent is being restarted (on request).
    GuestRestarting,
    /// The agent command was started.
    AgentSpawned {
        /// Its process id (and process group).
        pid: u32,
        /// The device link it was given.
        device: PathBuf,
    },
    /// The agent command ended.
    AgentExited {
        /// Its process id.
        pid: u32,
        /// How it ended.
        status: String,
    },
    /// `stale_client`: the VMM's own client holds the port without reading.
    StaleClient {
        /// The client's number.
        client: u64,
    },
    /// `stale_socket`: the socket file exists and nothing listens on it.
    StaleSocket {
        /// The socket path.
        socket: PathBuf,
    },
    /// A host connection through the fault pumps ended.
    ConnectionEnded {
        /// The client.
        client: u64,
        /// How the host → guest direction ended.
        to_guest: String,
        /// How the guest → host direction ended.
        to_host: String,
    },
    /// Something failed that does not stop the VMM.
    Error {
        /// What.
        message: String,
    },
    /// The VMM stopped.
    Stopped {
        /// Guest → host bytes read by host clients.
        delivered_to_host: u64,
        /// Host → guest bytes read by the guest.
        delivered_to_guest: u64,
        /// Guest → host bytes thrown away by disconnects.
        discarded: u64,
    },
}

impl SerialVmmEvent {
    /// The event as one JSON object, `{"event": "client_accepted", ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| {
            serde_json::json!({"event": "error", "message": format!("unserialisable event: {e}")})
        })
    }
}

impl fmt::Display for SerialVmmEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listening {
                socket,
                device,
                port_name,
            } => {
                write!(f, "port {port_name}: listening on {}", socket.display())?;
                if let Some(d) = device {
                    write!(f, ", device {}", d.display())?;
                }
                Ok(())
            }
            Self::ClientAccepted { client, peer } if peer.is_empty() => {
                write!(f, "client {client} accepted")
            }
            Self::ClientAccepted { client, peer } => write!(f, "client {client} accepted ({peer})"),
            Self::ClientQueued { client } => write!(f, "client {client} queued (starved)"),
            Self::ClientRefused => write!(f, "client refused: listen queue full"),
            Self::ClientDisconnected { client, was_active } => write!(
                f,
                "client {client} disconnected{}",
                if *was_active { "" } else { " (was queued)" }
            ),
            Self::DataDiscarded {
                client,
                bytes: 0,
                unread_by_guest: 0,
            } => write!(f, "client {client} left: nothing in flight"),
            Self::DataDiscarded {
                client,
                bytes,
                unread_by_guest,
            } => write!(
                f,
                "client {client} left: {bytes} bytes in flight to the host discarded, \
                 {unread_by_guest} bytes unread by the guest"
            ),
            Self::GuestOpened => write!(f, "guest opened the port"),
            Self::GuestClosed => write!(f, "guest closed the port"),
            Self::GuestBlocked => write!(f, "guest blocked: its write waits"),
            Self::GuestUnblocked => write!(f, "guest unblocked"),
            Self::GuestBeforeHost { bytes, writes } => write!(
                f,
                "guest_before_host: guest write of {bytes} bytes taken with no host ({writes} so far)"
            ),
            Self::GuestBeforeHostDiscarded { client, bytes } => write!(
                f,
                "guest_before_host: client {client} left before reading {bytes} early bytes"
            ),
            Self::GuestExited { reason } => write!(f, "guest agent stopped: {reason}"),
            Self::GuestRestarting => write!(f, "guest agent restarting"),
            Self::AgentSpawned { pid, device } => {
                write!(f, "agent pid {pid} started on {}", device.display())
            }
            Self::AgentExited { pid, status } => write!(f, "agent pid {pid} exited: {status}"),
            Self::StaleClient { client } => {
                write!(
                    f,
                    "stale_client: client {client} is the VMM's own, holding the port"
                )
            }
            Self::StaleSocket { socket } => write!(
                f,
                "stale_socket: {} exists and nothing listens on it",
                socket.display()
            ),
            Self::ConnectionEnded {
                client,
                to_guest,
                to_host,
            } => write!(
                f,
                "client {client} connection ended: to guest {to_guest}, to host {to_host}"
            ),
            Self::Error { message } => write!(f, "error: {message}"),
            Self::Stopped {
                delivered_to_host,
                delivered_to_guest,
                discarded,
            } => write!(
                f,
                "stopped: {delivered_to_host} bytes to the host, {delivered_to_guest} to the guest, \
                 {discarded} discarded"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_tagged_by_event_and_text_names_the_numbers() {
        let e = SerialVmmEvent::DataDiscarded {
            client: 1,
            bytes: 4096,
            unread_by_guest: 3,
        };
        let v = e.to_json();
        assert_eq!(v["event"], "data_discarded");
        assert_eq!(v["bytes"], 4096);
        assert!(e.to_string().contains("4096 bytes"), "{e}");
        assert_eq!(
            SerialVmmEvent::GuestBlocked.to_json()["event"],
            "guest_blocked"
        );
    }
}
