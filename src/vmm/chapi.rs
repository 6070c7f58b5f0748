//! The mock Cloud Hypervisor REST API (`guestwire vmm ch-api`): HTTP/1.1 on the `--api-socket`
//! Unix socket, base `/api/v1`, the endpoints of `cloud-hypervisor-openapi.yaml` (API 0.3.0, as
//! in CH v48/v49) that a host daemon drives a VM with: `vmm.ping`, `vmm.shutdown`, `vm.create`,
//! `vm.boot`, `vm.pause`, `vm.resume`, `vm.shutdown`, `vm.reboot`, `vm.delete`, `vm.info`,
//! `vm.counters`, `vm.snapshot`, `vm.restore`.
//!
//! - [`api`]: [`ChApi`], the pure core: a request in, a reply, a hold (the #816 wedge) or effects
//!   to carry out; [`state`]: the lifecycle and its [`Event`]s; [`errors`]: the real error
//!   chains; [`codes`]: real versus spec status codes; [`config`]: `VmConfig` checks;
//!   [`snapshot`]: the snapshot files; [`routes`]: which endpoint a request names.
//! - [`server`]: [`ChApiServer`], the Tokio adapter: the Unix socket, HTTP framing (the project's
//!   own [`crate::wire::http`] codec), deadlines, snapshot file IO, and the [`ChApiHooks`]
//!   ([`hooks`]) through which the rest of the mock VMM learns of vsock, pause and resume.

pub mod api;
pub mod codes;
pub mod config;
pub mod errors;
pub mod hooks;
pub mod routes;
pub mod server;
pub mod snapshot;
pub mod state;

#[cfg(test)]
mod scenario_tests;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod testkit;

pub use api::{ChApi, ChApiConfig, Effect, EffectFailure, Response, Step};
pub use codes::{ChVersion, CodeMode, Endpoint};
pub use config::{VmConfig, VsockConfig};
pub use hooks::{ChApiHooks, ChannelHooks, HookCall, HookFuture, NoHooks, RequestRecord};
pub use routes::Request;
pub use server::{ChApiHandle, ChApiServer, ServerConfig, ServerError, ServerExit};
pub use snapshot::SnapshotFiles;
pub use state::{Event, VmState};
