//! The VM's lifecycle as Cloud Hypervisor's VMM runs it: pure functions from the state before a
//! request to the state after it and the side effects ([`Event`]s), or the VMM's error.
//!
//! The real VMM keeps a config (`vm.create`) and, once booted, a `Vm` object; `vm.shutdown`
//! drops the `Vm` but keeps the config, so a shut-down VM behaves exactly like a created one
//! (`vm.boot` boots it again; `vm.pause` says "VM is not running"), and the real `vm.info`
//! reports it as `Created`. This model names that state [`VmState::Shutdown`] and reports it as
//! `Shutdown` only in spec mode. `VmState::valid_transition` (vm.rs) allows Created → Running |
//! Paused | Shutdown, Running → Paused | Shutdown, Paused → Running | Shutdown, Shutdown →
//! Running; the requests below reach only the transitions the API can cause:
//!
//! | request | no VM | Created / Shutdown | Running | Paused |
//! |---|---|---|---|---|
//! | boot | VmMissingConfig | → Running | InvalidStateTransition | → Running (boot resumes) |
//! | pause | VmNotRunning | VmNotRunning | → Paused | Pause(Paused→Paused) |
//! | resume | VmNotRunning | VmNotRunning | Resume(Running→Running) | → Running |
//! | shutdown | VmNotRunning | VmNotRunning | → Shutdown | → Shutdown |
//! | reboot | VmNotCreated | VmNotCreated | → Running | → Running |
//! | delete | ok, nothing | → no VM | → no VM | → no VM |

use std::path::PathBuf;

use super::config::VmConfig;
use super::errors::VmError;

/// The states of `vmm::vm::VmState` that the API can reach (`BreakPoint` needs gdb).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmState {
    /// Created (config stored), not booted.
    Created,
    /// Booted and running.
    Running,
    /// Booted, then shut down with `vm.shutdown`: the config is kept, the VM is not.
    Shutdown,
    /// Paused.
    Paused,
}

impl VmState {
    /// Every state, in the order of the OpenAPI `VmState` enum.
    pub const ALL: [Self; 4] = [Self::Created, Self::Running, Self::Shutdown, Self::Paused];

    /// The name, as in `VmState` (and `Debug` of the real enum).
    pub fn name(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Running => "Running",
            Self::Shutdown => "Shutdown",
            Self::Paused => "Paused",
        }
    }

    /// Whether the real VMM holds a booted `Vm` object in this state (Running or Paused).
    pub fn is_booted(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
}

/// A side effect of a request, for whoever plays the rest of the VMM (the vsock device and the
/// guest behind it). Delivered through [`Effect::Notify`](super::api::Effect::Notify) before the
/// request's reply is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// The VM booted (or was restored) with a `vsock` device: its hybrid-vsock socket should now
    /// exist at `socket`, with the guest of context id `cid` behind it.
    VsockUp {
        /// The guest's context id (≥ 3).
        cid: u64,
        /// The host-side Unix socket of the hybrid vsock.
        socket: PathBuf,
    },
    /// The VM with a `vsock` device was shut down, rebooted or deleted: its socket goes away.
    VsockDown {
        /// The guest's context id.
        cid: u64,
        /// The host-side Unix socket of the hybrid vsock.
        socket: PathBuf,
    },
    /// The VM was paused (or restored paused): the guest's channels freeze, frames queue.
    Paused,
    /// The VM was resumed: the guest's channels run again.
    Resumed,
    /// `vmm.shutdown`: the VMM exits after this reply.
    VmmShutdown,
}

impl Event {
    /// The event's name, snake_case.
    pub fn name(&self) -> &'static str {
        match self {
            Self::VsockUp { .. } => "vsock_up",
            Self::VsockDown { .. } => "vsock_down",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::VmmShutdown => "vmm_shutdown",
        }
    }

    /// The event as one JSON object, `{"event": name, ...fields}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::VsockUp { cid, socket } | Self::VsockDown { cid, socket } => {
                serde_json::json!({"event": self.name(), "cid": cid, "socket": socket})
            }
            _ => serde_json::json!({"event": self.name()}),
        }
    }
}

/// A lifecycle request that changes the VM's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// `vm.boot`.
    Boot,
    /// `vm.pause`.
    Pause,
    /// `vm.resume`.
    Resume,
    /// `vm.shutdown`.
    Shutdown,
    /// `vm.reboot`.
    Reboot,
    /// `vm.delete`.
    Delete,
}

/// What a successful lifecycle request leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state afterwards; `None` when there is no VM afterwards.
    pub next: Option<VmState>,
    /// The side effects, in order.
    pub events: Vec<Event>,
}

/// The vsock events of `config`, if it has a `vsock` device.
pub fn vsock_up(config: &VmConfig) -> Option<Event> {
    config.vsock().map(|v| Event::VsockUp {
        cid: v.cid,
        socket: v.socket.clone(),
    })
}

/// The event that takes `config`'s vsock socket away, if it has one.
pub fn vsock_down(config: &VmConfig) -> Option<Event> {
    config.vsock().map(|v| Event::VsockDown {
        cid: v.cid,
        socket: v.socket.clone(),
    })
}

/// Applies a lifecycle request to a VM in state `before` (`None`: no VM) with `config`.
pub fn lifecycle(
    before: Option<VmState>,
    config: Option<&VmConfig>,
    request: Lifecycle,
) -> Result<Transition, VmError> {
    use VmState::{Created, Paused, Running, Shutdown};
    let up = || config.and_then(vsock_up).into_iter().collect::<Vec<_>>();
    let down = || config.and_then(vsock_down).into_iter().collect::<Vec<_>>();
    let to = |next: VmState, events: Vec<Event>| {
        Ok(Transition {
            next: Some(next),
            events,
        })
    };
    match (request, before) {
        (Lifecycle::Boot, None) => Err(VmError::MissingConfig),
        (Lifecycle::Boot, Some(Created | Shutdown)) => to(Running, up()),
        (Lifecycle::Boot, Some(Paused)) => to(Running, vec![Event::Resumed]),
        (Lifecycle::Boot, Some(Running)) => Err(VmError::InvalidTransition {
            from: Running,
            to: Running,
        }),

        (Lifecycle::Pause | Lifecycle::Resume | Lifecycle::Shutdown, None | Some(Created))
        | (Lifecycle::Pause | Lifecycle::Resume | Lifecycle::Shutdown, Some(Shutdown)) => {
            Err(VmError::NotRunning)
        }
        (Lifecycle::Pause, Some(Running)) => to(Paused, vec![Event::Paused]),
        (Lifecycle::Pause, Some(Paused)) => Err(VmError::Pause { from: Paused }),
        (Lifecycle::Resume, Some(Paused)) => to(Running, vec![Event::Resumed]),
        (Lifecycle::Resume, Some(Running)) => Err(VmError::Resume { from: Running }),
        (Lifecycle::Shutdown, Some(Running | Paused)) => to(Shutdown, down()),

        (Lifecycle::Reboot, None | Some(Created | Shutdown)) => Err(VmError::NotCreated),
        (Lifecycle::Reboot, Some(Running | Paused)) => {
            let mut events = down();
            events.extend(up());
            to(Running, events)
        }

        (Lifecycle::Delete, None) => Ok(Transition {
            next: None,
            events: Vec::new(),
        }),
        (Lifecycle::Delete, Some(state)) => Ok(Transition {
            next: None,
            events: if state.is_booted() {
                down()
            } else {
                Vec::new()
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VmConfig {
        VmConfig::parse(br#"{"payload":{"kernel":"/k"},"vsock":{"cid":3,"socket":"/tmp/v.sock"}}"#)
            .unwrap()
    }

    #[test]
    fn reboot_takes_the_vsock_down_and_up_again() {
        let c = cfg();
        let t = lifecycle(Some(VmState::Paused), Some(&c), Lifecycle::Reboot).unwrap();
        assert_eq!(t.next, Some(VmState::Running));
        assert_eq!(
            t.events.iter().map(Event::name).collect::<Vec<_>>(),
            ["vsock_down", "vsock_up"]
        );
    }

    #[test]
    fn a_shut_down_vm_boots_again_and_cannot_be_paused() {
        let c = cfg();
        let t = lifecycle(Some(VmState::Shutdown), Some(&c), Lifecycle::Boot).unwrap();
        assert_eq!(t.next, Some(VmState::Running));
        assert_eq!(
            lifecycle(Some(VmState::Shutdown), Some(&c), Lifecycle::Pause),
            Err(VmError::NotRunning)
        );
    }
}
