//! `guestwire vmm hvsock`: a mock hybrid-vsock VMM over real Unix sockets — what Firecracker,
//! Cloud Hypervisor or vhost-device-vsock expose as their `uds_path` — driving the pure muxer
//! [`VsockMuxer`](crate::channel::vsock::VsockMuxer) with tokio.
//!
//! - **Host side:** a Unix listener at the socket (stale files handled by
//!   [`Listener::bind_unix`]). Each host connection's bytes go to the muxer as they are read,
//!   with `now`, so it parses `CONNECT <port>` by the flavour's rules (Firecracker drops a
//!   command split across reads, Cloud Hypervisor keeps it), answers `OK <n>` with the flavour's
//!   number, closes without a word when no guest listens or after the 2000 ms request timeout,
//!   and holds at most 1023 connections.
//! - **Guest side:** per guest port, guestwire's in-process mock agent
//!   ([`crate::guest::serve_connection`] on an in-memory stream per connection) or the user's
//!   agent ([`GuestService::Command`]). Guest-initiated connections dial `<socket>_<port>`
//!   ([`HvsockVmm::guest_connect`]).
//! - **Faults:** every host connection gets its own [`FaultPlan`](crate::fault::FaultPlan) from
//!   [`HvsockConfig::faults`], shared by its two directions and carried out by
//!   [`crate::io::fault_pump::pump`]; the `to_guest` stage reads the `CONNECT` line as the VMM
//!   does (see `host_conn`). `vm_pause` pauses the whole VM; a fault reset drops both directions
//!   at once and resets the guest side (`agent_crash`); `agent_hang` holds the stream.
//! - **Pause:** [`HvsockVmm::pause`] freezes every connection both ways (bytes queue in the
//!   muxer, bounded by its buffers); [`HvsockVmm::resume`] releases them in order.
//!
//! ```no_run
//! # async fn demo() -> Result<(), guestwire::vmm::hvsock::HvsockError> {
//! use guestwire::vmm::hvsock::{GuestService, HvsockConfig, HvsockVmm};
//! use guestwire::wire::hybrid::Flavour;
//! use guestwire::wire::protocol::Protocol;
//!
//! let mut cfg = HvsockConfig::new("/run/vm/vsock.sock")
//!     .with_port(1024, GuestService::Mock(Protocol::Fcexec));
//! cfg.flavour = Flavour::CloudHypervisor;
//! cfg.faults.push("latency:latency=50ms".parse().expect("a fault spec"));
//! let vmm = HvsockVmm::start(cfg).await?;
//! let mut events = vmm.subscribe();
//! vmm.pause(); // vm.pause: frames queue, nothing moves
//! vmm.resume();
//! println!("{}", vmm.snapshot().to_json());
//! # let _ = events.try_recv();
//! vmm.stop().await; // connections end, agents reaped, socket removed
//! # Ok(()) }
//! ```
//!
//! Submodules: `config` (configuration, errors), `events` (events, snapshot), `queues` (a
//! connection's queues), `state` (the muxer and queues under one lock, and the events carried
//! out), `control` (pause, guest-initiated connections, snapshot), `streams` (the async streams
//! over the core), `host_conn` (the host side), `guest_side` (the guest side and agents).

mod config;
mod control;
mod events;
mod guest_side;
mod host_conn;
mod queues;
mod state;
mod streams;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::DuplexStream;
use tokio::sync::broadcast;

pub use self::config::{
    AGENT_START_DEADLINE, DEFAULT_CID, GuestService, HvsockConfig, HvsockError, parse_guest_port,
};
pub use self::events::{
    ConnectionSnapshot, HvsockEvent, HvsockSnapshot, RefusalSnapshot, origin_name, refusal_kind,
};
use self::guest_side::{AgentDir, Service, start_agent, watch_agent};
use self::state::Shared;
use crate::io::Listener;

/// How many events wait for a slow subscriber before the oldest are dropped (it then learns
/// how many it missed).
pub const EVENT_CAPACITY: usize = 4096;

/// How long [`HvsockVmm::stop`] lets connections and agents wind down before aborting them.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running hybrid-vsock mock VMM. Stop it with [`stop`](Self::stop) to end every connection,
/// kill and reap the user's agents and remove the socket files; dropping it aborts its tasks.
#[derive(Debug)]
pub struct HvsockVmm {
    shared: Arc<Shared>,
    first_events: Mutex<Option<broadcast::Receiver<HvsockEvent>>>,
    _agent_dir: Option<AgentDir>,
}

impl HvsockVmm {
    /// Starts the user's agents (those with `{socket}`), binds the socket and starts serving.
    /// Must be called within a tokio runtime.
    pub async fn start(config: HvsockConfig) -> Result<Self, HvsockError> {
        config.check_faults()?;
        let fault_protocol = config.resolved_fault_protocol()?;
        let mut services = BTreeMap::new();
        let mut agents = Vec::new();
        let mut agent_dir: Option<AgentDir> = None;
        for (port, service) in &config.ports {
            let run = match service {
                GuestService::Mock(p) => Service::Mock(p.clone()),
                GuestService::Command(cmd) if service.is_socket_agent() => {
                    let dir = match &agent_dir {
                        Some(d) => d,
                        None => agent_dir.insert(AgentDir::create()?),
                    };
                    let agent = start_agent(cmd, *port, config.cid, dir.path()).await?;
                    let socket = agent.socket.clone();
                    agents.push(agent);
                    Service::AgentSocket(socket)
                }
                GuestService::Command(cmd) => Service::Inetd(cmd.clone()),
            };
            services.insert(*port, run);
        }
        let listener = Listener::bind_unix(&config.socket)
            .await
            .map_err(|source| HvsockError::Listen {
                path: config.socket.display().to_string(),
                source,
            })?;
        let (tx, rx) = broadcast::channel(EVENT_CAPACITY);
        let shared = Shared::new(config, fault_protocol, services, tx);
        let c = &shared.config;
        shared.emit(HvsockEvent::Listening {
            socket: c.socket.display().to_string(),
            cid: c.cid,
            flavour: c.flavour.to_string(),
            ports: c.ports.iter().map(|(p, s)| format!("{p}={s}")).collect(),
        });
        {
            let mut core = shared.lock();
            for port in shared.services.keys() {
                core.mux.guest_listen(*port)?;
            }
        }
        for agent in agents {
            shared.emit(HvsockEvent::AgentStarted {
                port: agent.port,
                pid: agent.pid(),
                socket: agent.socket.display().to_string(),
            });
            shared.spawn(watch_agent(shared.clone(), agent));
        }
        shared.spawn(host_conn::timer_loop(shared.clone()));
        shared.spawn(host_conn::accept_loop(shared.clone(), listener));
        Ok(Self {
            shared,
            first_events: Mutex::new(Some(rx)),
            _agent_dir: agent_dir,
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &HvsockConfig {
        &self.shared.config
    }

    /// The host socket.
    pub fn socket_path(&self) -> &Path {
        &self.shared.config.socket
    }

    /// Events from now on. The first call also gets every event since the start.
    pub fn subscribe(&self) -> broadcast::Receiver<HvsockEvent> {
        let first = self
            .first_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        first.unwrap_or_else(|| self.shared.subscribe())
    }

    /// Pauses the VM (`vm.pause`): nothing moves on any connection, either way; host bytes and
    /// guest bytes queue in the muxer (at most its 64 KiB per connection and direction, then the
    /// writers wait); handshakes get no `OK` until the resume.
    pub fn pause(&self) {
        self.shared.set_api_paused(true);
    }

    /// Resumes the VM (`vm.resume`): what queued moves on, in order.
    pub fn resume(&self) {
        self.shared.set_api_paused(false);
    }

    /// Whether the VM is paused (by [`pause`](Self::pause) or a `vm_pause` fault).
    pub fn is_paused(&self) -> bool {
        self.shared.lock().paused()
    }

    /// Replaces the stream and frame faults: host connections made from now on get a plan of
    /// `faults` (ones already open keep theirs).
    pub fn set_stream_faults(&self, faults: Vec<crate::fault::FaultSpec>) {
        self.shared.live_faults.set(faults);
    }

    /// Starts or stops listening on a guest port that has a service (an agent that is not up
    /// yet, or that went away): a `CONNECT` to a port nobody listens on is closed without a
    /// word. Returns `false` when the port has no service.
    pub fn set_listening(&self, port: u32, listening: bool) -> bool {
        if !self.shared.services.contains_key(&port) {
            return false;
        }
        let mut core = self.shared.lock();
        if listening {
            core.mux.guest_listen(port).is_ok()
        } else {
            core.mux.guest_unlisten(port);
            true
        }
    }

    /// The VMM's state: ports, connections with their queues and byte counts, refusals.
    pub fn snapshot(&self) -> HvsockSnapshot {
        self.shared.snapshot()
    }

    /// A guest process connects to the host (CID 2) on `host_port`: the VMM dials
    /// `<socket>_<host_port>`. Returns the guest process's end of the connection once the host
    /// listener accepted it, or [`HvsockError::GuestConnectRefused`] when nothing listens there
    /// (or it did not answer within the 2000 ms request timeout).
    pub async fn guest_connect(&self, host_port: u32) -> Result<DuplexStream, HvsockError> {
        let (mine, theirs) = tokio::io::duplex(guest_side::GUEST_DUPLEX);
        match self.shared.guest_connect(host_port, Box::new(mine)).await {
            Ok(()) => Ok(theirs),
            Err(reason) => Err(HvsockError::GuestConnectRefused {
                host_port,
                path: host_conn::host_path(&self.shared.config.socket, &format!("_{host_port}"))
                    .display()
                    .to_string(),
                reason,
            }),
        }
    }

    /// Stops: no new connections; every connection ends (the guest side first gets its
    /// chance to close, then whatever is left after [`STOP_GRACE`] is aborted); the user's
    /// agents are killed and reaped; the socket file and the agents' directory are removed.
    pub async fn stop(self) {
        let _ = self.shared.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        loop {
            let mut tasks = self.shared.take_tasks();
            if tasks.is_empty() {
                break;
            }
            loop {
                match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        tasks.abort_all();
                        while tasks.join_next().await.is_some() {}
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for HvsockVmm {
    fn drop(&mut self) {
        let _ = self.shared.stop.send_replace(true);
        self.shared.take_tasks().abort_all();
    }
}
