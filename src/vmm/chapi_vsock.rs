//! [`VsockBridge`]: the Cloud Hypervisor API mock's hooks that give a VM created with a `vsock`
//! config its hybrid-vsock socket: at boot (and restore, and the second half of a reboot) a
//! Cloud-Hypervisor-flavoured [`HvsockVmm`] starts on `vsock.socket` with the configured guest
//! services behind it; pause freezes its channels (frames queue), resume releases them;
//! shutdown, delete and `vmm.shutdown` stop it and remove its socket.
//!
//! A socket that cannot be bound fails the request that asked for it (a 500 whose error chain
//! ends with the reason), as a real VMM's boot fails.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::chapi::{ChApiHooks, Event, HookFuture, RequestRecord};
use super::hvsock::{GuestService, HvsockConfig, HvsockVmm};
use crate::fault::FaultSpec;
use crate::guest::GuestConfig;
use crate::wire::hybrid::Flavour;

/// What the VM's guest serves on its vsock ports, and how.
#[derive(Debug, Clone)]
pub struct GuestPlan {
    /// Guest port → service.
    pub ports: BTreeMap<u32, GuestService>,
    /// How the in-process mock agents behave.
    pub guest: Arc<GuestConfig>,
    /// Stream and frame faults on every vsock connection.
    pub faults: Vec<FaultSpec>,
    /// Seed of the fault plans.
    pub seed: u64,
}

/// Hooks that run the VM's hybrid vsock, then pass every event and request to `inner` (the
/// printer of `guestwire vmm ch-api`, or nothing).
pub struct VsockBridge {
    plan: GuestPlan,
    vm: Mutex<Option<HvsockVmm>>,
    inner: Arc<dyn ChApiHooks>,
}

impl std::fmt::Debug for VsockBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VsockBridge")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl VsockBridge {
    /// A bridge that serves `plan` behind every booted VM's vsock socket.
    pub fn new(plan: GuestPlan, inner: Arc<dyn ChApiHooks>) -> Self {
        Self {
            plan,
            vm: Mutex::new(None),
            inner,
        }
    }

    /// Whether a VM's vsock is up and paused (`None`: no vsock running).
    pub async fn is_paused(&self) -> Option<bool> {
        self.vm.lock().await.as_ref().map(HvsockVmm::is_paused)
    }

    /// Stops the vsock VMM, if one runs (also called when the API stops).
    pub async fn stop(&self) {
        if let Some(vm) = self.vm.lock().await.take() {
            vm.stop().await;
        }
    }

    async fn apply(&self, event: &Event) -> Result<(), String> {
        let mut vm = self.vm.lock().await;
        match event {
            Event::VsockUp { cid, socket } => {
                if let Some(old) = vm.take() {
                    old.stop().await;
                }
                let mut config = HvsockConfig::new(socket);
                config.cid =
                    u32::try_from(*cid).map_err(|_| format!("vsock cid {cid} too large"))?;
                config.flavour = Flavour::CloudHypervisor;
                config.ports = self.plan.ports.clone();
                config.guest = self.plan.guest.clone();
                config.faults = self.plan.faults.clone();
                config.seed = self.plan.seed;
                let started = HvsockVmm::start(config)
                    .await
                    .map_err(|e| format!("Failed to create vsock device: {e}"))?;
                *vm = Some(started);
            }
            Event::VsockDown { .. } | Event::VmmShutdown => {
                if let Some(old) = vm.take() {
                    old.stop().await;
                }
            }
            Event::Paused => {
                if let Some(v) = vm.as_ref() {
                    v.pause();
                }
            }
            Event::Resumed => {
                if let Some(v) = vm.as_ref() {
                    v.resume();
                }
            }
        }
        Ok(())
    }
}

impl ChApiHooks for VsockBridge {
    fn on_event(&self, event: &Event) -> HookFuture<'_> {
        let event = event.clone();
        Box::pin(async move {
            self.apply(&event).await?;
            self.inner.on_event(&event).await
        })
    }

    fn on_request(&self, record: &RequestRecord) {
        self.inner.on_request(record);
    }
}
