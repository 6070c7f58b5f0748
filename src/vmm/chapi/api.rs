//! [`ChApi`], the pure core of the mock Cloud Hypervisor API: requests in, [`Step`]s out. No IO
//! and no clock.
//!
//! A request ends in one of three ways. [`Step::Reply`]: the response to write. [`Step::Hold`]:
//! the cloud-hypervisor#816 wedge is on, so the connection is held open and never answered.
//! [`Step::Effects`]: the adapter must carry out the [`Effect`]s in order (tell the hooks about
//! [`Event`]s, write or read a snapshot's files) and then call [`ChApi::finish`] with the result,
//! which gives the next `Step`. The state change of a request is committed only when its effects
//! succeed; if one fails, the request fails (a 500 with the failure in its error chain, as a real
//! boot fails when its vsock device cannot be set up) and the state stays as it was. Effects
//! already carried out before the failing one are not undone.
//!
//! Requests are handled one at a time, as the real VMM's single API thread does: between
//! [`ChApi::handle`] returning `Effects` and [`ChApi::finish`], no other request may be handled
//! (one that is gets a 500 and the pending one is dropped).

mod bodies;
mod transfer;

use std::path::PathBuf;

use serde_json::{Value, json};

use super::codes::{
    ChVersion, CodeMode, Endpoint, FailureKind, TOO_LARGE_STATUS, UNKNOWN_PATH_STATUS,
    failure_status,
};
use super::config::VmConfig;
use super::errors::{
    BAD_REQUEST, ERROR_FROM_API, NOT_FOUND, VmError, api_chain, api_context, deserialize_chain,
};
use super::routes::{Request, Route, route};
use super::snapshot::SnapshotFiles;
use super::state::{Event, Lifecycle, VmState, lifecycle, vsock_down};

/// The cargo features a default release build of cloud-hypervisor reports in `vmm.ping`.
pub const DEFAULT_FEATURES: [&str; 2] = ["kvm", "io_uring"];

/// How the mock behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChApiConfig {
    /// The release to answer as (`vmm.ping`'s versions, and which real codes apply).
    pub version: ChVersion,
    /// Real or spec status codes.
    pub codes: CodeMode,
    /// The cloud-hypervisor#816 wedge (`--fault ch_shutdown_wedge`): `vmm.shutdown` on a
    /// paused VM never answers, and neither does any request after it.
    pub shutdown_wedge: bool,
    /// The process id `vmm.ping` reports.
    pub pid: u32,
    /// The features `vmm.ping` reports.
    pub features: Vec<String>,
}

impl Default for ChApiConfig {
    fn default() -> Self {
        Self {
            version: ChVersion::default(),
            codes: CodeMode::default(),
            shutdown_wedge: false,
            pid: 0,
            features: DEFAULT_FEATURES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers beyond the ones every response has (`Server`, `Content-Type`), e.g. `Allow`.
    pub headers: Vec<(String, String)>,
    /// The body (JSON, or empty).
    pub body: Vec<u8>,
    /// Whether the server stops after writing this (`vmm.shutdown`).
    pub stop_server: bool,
}

impl Response {
    fn new(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
            stop_server: false,
        }
    }

    fn json(status: u16, body: &Value) -> Self {
        Self::new(status, serde_json::to_vec(body).unwrap_or_default())
    }

    /// An error response: the chain as a JSON array of strings.
    fn chain(status: u16, chain: &[String]) -> Self {
        Self::new(status, serde_json::to_vec(chain).unwrap_or_default())
    }

    /// The body parsed as JSON (`None` when empty or not JSON).
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Something the adapter must do before the request can be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Tell the hooks; their failure fails the request.
    Notify(Event),
    /// Write a snapshot's files into `dir`, which must be an existing directory (else fail with
    /// "Destination is not a directory", the real VMM's words).
    WriteSnapshot {
        /// The destination directory.
        dir: PathBuf,
        /// The files.
        files: SnapshotFiles,
    },
    /// Read a snapshot's files back from `dir`; pass them to [`ChApi::finish`].
    ReadSnapshot {
        /// The source directory.
        dir: PathBuf,
    },
}

/// Why an effect failed: messages, outermost first (e.g. `["No such file or directory (os
/// error 2)"]`); the core puts the real VMM's context in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectFailure {
    /// The messages.
    pub chain: Vec<String>,
}

impl EffectFailure {
    /// A failure with one message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            chain: vec![message.into()],
        }
    }
}

/// What the adapter does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write this response.
    Reply(Response),
    /// Write nothing, ever: hold the connection open until the server stops (the #816 wedge).
    Hold,
    /// Carry these out in order, then call [`ChApi::finish`].
    Effects(Vec<Effect>),
}

#[derive(Debug, Clone)]
struct Vm {
    config: VmConfig,
    state: VmState,
}

#[derive(Debug)]
enum Pending {
    /// Commit `next` and answer `reply` once the effects succeed; on failure answer with
    /// `prefix` + the failure's chain.
    Commit {
        endpoint: Endpoint,
        before: Option<VmState>,
        next: Option<Vm>,
        reply: Response,
        prefix: Vec<String>,
    },
    /// A snapshot is being read back for `vm.restore`.
    Restore { resume: bool },
}

/// The mock Cloud Hypervisor API: its VM and its answers.
#[derive(Debug)]
pub struct ChApi {
    config: ChApiConfig,
    vm: Option<Vm>,
    wedged: bool,
    pending: Option<Pending>,
}

impl ChApi {
    /// A VMM with no VM.
    pub fn new(config: ChApiConfig) -> Self {
        Self {
            config,
            vm: None,
            wedged: false,
            pending: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ChApiConfig {
        &self.config
    }

    /// The VM's state (`None`: no VM).
    pub fn state(&self) -> Option<VmState> {
        self.vm.as_ref().map(|vm| vm.state)
    }

    /// The VM's config, if there is a VM.
    pub fn vm_config(&self) -> Option<&VmConfig> {
        self.vm.as_ref().map(|vm| &vm.config)
    }

    /// Whether the #816 wedge has struck: nothing will be answered any more.
    pub fn is_wedged(&self) -> bool {
        self.wedged
    }

    /// Handles one request.
    pub fn handle(&mut self, request: &Request<'_>) -> Step {
        if self.wedged {
            return Step::Hold;
        }
        if self.pending.take().is_some() {
            return Step::Reply(Response::chain(500, &["Internal Server Error".into()]));
        }
        let mode = self.config.codes;
        let endpoint = match route(request.method, request.path) {
            Route::Endpoint(e) => e,
            Route::UnknownPath => {
                return Step::Reply(Response::chain(UNKNOWN_PATH_STATUS, &[NOT_FOUND.into()]));
            }
            Route::WrongMethod(e) => {
                return Step::Reply(bodies::wrong_method(mode, e, request.method));
            }
        };
        let before = self.state();
        match endpoint {
            Endpoint::VmmPing => Step::Reply(Response::json(200, &self.ping())),
            Endpoint::VmmShutdown => self.vmm_shutdown(before),
            Endpoint::Create => self.create(request.body),
            Endpoint::Boot => self.lifecycle(endpoint, Lifecycle::Boot, request.body),
            Endpoint::Pause => self.lifecycle(endpoint, Lifecycle::Pause, request.body),
            Endpoint::Resume => self.lifecycle(endpoint, Lifecycle::Resume, request.body),
            Endpoint::Shutdown => self.lifecycle(endpoint, Lifecycle::Shutdown, request.body),
            Endpoint::Reboot => self.lifecycle(endpoint, Lifecycle::Reboot, request.body),
            Endpoint::Delete => self.lifecycle(endpoint, Lifecycle::Delete, request.body),
            Endpoint::Info => self.info(),
            Endpoint::Counters => self.counters(),
            Endpoint::Snapshot => self.snapshot(request.body),
            Endpoint::Restore => self.restore(request.body),
        }
    }

    /// The answer to a request whose body is over the server's limit (the body unread).
    pub fn too_large(&self, limit: u64) -> Response {
        Response::chain(
            TOO_LARGE_STATUS,
            &[format!(
                "Request payload exceeds the limit of {limit} bytes"
            )],
        )
    }

    /// Continues the request whose [`Step::Effects`] the adapter carried out: `Ok` with the
    /// snapshot's files for a [`Effect::ReadSnapshot`] (else `None`), or the first failure.
    pub fn finish(&mut self, result: Result<Option<SnapshotFiles>, EffectFailure>) -> Step {
        match self.pending.take() {
            None => Step::Reply(Response::chain(500, &["Internal Server Error".into()])),
            Some(Pending::Commit {
                endpoint,
                before,
                next,
                reply,
                mut prefix,
            }) => match result {
                Ok(_) => {
                    self.vm = next;
                    Step::Reply(reply)
                }
                Err(failure) => {
                    prefix.extend(failure.chain);
                    let status = self.failure_status(endpoint, before, FailureKind::Internal);
                    Step::Reply(Response::chain(status, &prefix))
                }
            },
            Some(Pending::Restore { resume }) => self.restore_read(resume, result),
        }
    }

    fn failure_status(
        &self,
        endpoint: Endpoint,
        before: Option<VmState>,
        kind: FailureKind,
    ) -> u16 {
        failure_status(
            self.config.codes,
            self.config.version,
            endpoint,
            before,
            kind,
        )
    }

    fn fail(&self, endpoint: Endpoint, error: &VmError) -> Step {
        let status = self.failure_status(endpoint, self.state(), error.kind());
        Step::Reply(Response::chain(status, &api_chain(endpoint, error)))
    }

    fn bad_request(&self, endpoint: Endpoint, chain: &[String]) -> Step {
        let status = self.failure_status(endpoint, self.state(), FailureKind::BadRequest);
        Step::Reply(Response::chain(status, chain))
    }

    /// Commits `next` with `reply` now, or after the `events` are delivered.
    fn commit(
        &mut self,
        endpoint: Endpoint,
        next: Option<Vm>,
        events: Vec<Event>,
        reply: Response,
    ) -> Step {
        if events.is_empty() {
            self.vm = next;
            return Step::Reply(reply);
        }
        self.pending = Some(Pending::Commit {
            endpoint,
            before: self.state(),
            next,
            reply,
            prefix: vec![ERROR_FROM_API.into(), api_context(endpoint).into()],
        });
        Step::Effects(events.into_iter().map(Effect::Notify).collect())
    }

    fn success(&self, endpoint: Endpoint) -> Response {
        Response::new(endpoint.success_status(self.config.codes), Vec::new())
    }

    fn ping(&self) -> Value {
        json!({
            "build_version": self.config.version.build_version(),
            "version": self.config.version.version(),
            "pid": self.config.pid,
            "features": self.config.features,
        })
    }

    fn vmm_shutdown(&mut self, before: Option<VmState>) -> Step {
        if self.config.shutdown_wedge && before == Some(VmState::Paused) {
            self.wedged = true;
            return Step::Hold;
        }
        let mut events = Vec::new();
        if let Some(vm) = self.vm.as_ref().filter(|vm| vm.state.is_booted()) {
            events.extend(vsock_down(&vm.config));
        }
        events.push(Event::VmmShutdown);
        let mut reply = self.success(Endpoint::VmmShutdown);
        reply.stop_server = true;
        self.commit(Endpoint::VmmShutdown, None, events, reply)
    }

    fn create(&mut self, body: &[u8]) -> Step {
        if body.is_empty() {
            // The real VmCreate handler answers a bodiless PUT with a bare 400.
            let status =
                self.failure_status(Endpoint::Create, self.state(), FailureKind::BadRequest);
            return Step::Reply(Response::new(status, Vec::new()));
        }
        let config = match VmConfig::parse(body) {
            Ok(c) => c,
            Err(e) => return self.bad_request(Endpoint::Create, &deserialize_chain(&e.0)),
        };
        if self.vm.is_some() {
            return self.fail(Endpoint::Create, &VmError::AlreadyCreated);
        }
        let vm = Vm {
            config,
            state: VmState::Created,
        };
        let reply = self.success(Endpoint::Create);
        self.commit(Endpoint::Create, Some(vm), Vec::new(), reply)
    }

    fn lifecycle(&mut self, endpoint: Endpoint, request: Lifecycle, body: &[u8]) -> Step {
        if !body.is_empty() {
            return self.bad_request(endpoint, &[BAD_REQUEST.into()]);
        }
        let config = self.vm.as_ref().map(|vm| vm.config.clone());
        match lifecycle(self.state(), config.as_ref(), request) {
            Ok(t) => {
                let next = match (t.next, config) {
                    (Some(state), Some(config)) => Some(Vm { config, state }),
                    _ => None,
                };
                let reply = self.success(endpoint);
                self.commit(endpoint, next, t.events, reply)
            }
            Err(e) => self.fail(endpoint, &e),
        }
    }

    /// The state `vm.info` reports: the real VMM has no `Vm` after a shutdown and says Created.
    fn reported_state(&self, state: VmState) -> VmState {
        match (self.config.codes, state) {
            (CodeMode::Real, VmState::Shutdown) => VmState::Created,
            _ => state,
        }
    }

    fn info(&self) -> Step {
        let Some(vm) = &self.vm else {
            return self.fail(Endpoint::Info, &VmError::NotCreated);
        };
        let mut info = json!({
            "config": vm.config.to_json(),
            "state": self.reported_state(vm.state).name(),
            "memory_actual_size": vm.config.memory_size(),
        });
        if vm.state.is_booted()
            && let Some(o) = info.as_object_mut()
        {
            o.insert("device_tree".into(), bodies::device_tree(&vm.config));
        }
        Step::Reply(Response::json(200, &info))
    }

    fn counters(&self) -> Step {
        match &self.vm {
            Some(vm) if vm.state.is_booted() => {
                Step::Reply(Response::json(200, &bodies::counters(&vm.config)))
            }
            _ => self.fail(Endpoint::Counters, &VmError::NotRunning),
        }
    }
}
