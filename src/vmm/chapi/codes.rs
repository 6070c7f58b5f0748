//! Status codes: what a real Cloud Hypervisor answers, and what its OpenAPI spec says it answers.
//! The two differ, and host daemons written against one break on the other.
//!
//! **Real** (`--codes real`, the default), from cloud-hypervisor's `vmm/src/api/http`:
//! - `400` for a body that does not deserialize (`HttpError::SerdeJsonDeserialize`), a body
//!   where none belongs or none where one does, and a wrong HTTP method (`HttpError::BadRequest`:
//!   the real server never answers 405);
//! - `404` for an unknown path (`["Not Found"]`);
//! - every error from the VMM itself (`HttpError::ApiError`) is `500`, with one exception that
//!   depends on the version: from v53.0 on (cloud-hypervisor#8320), errors whose root cause is
//!   `VmNotCreated` or `VmMissingConfig` are `404` (`vm.info`, `vm.boot`, `vm.reboot` with no
//!   VM). Up to v52 (so for the v48.0 and v49.0 this mock defaults to) they are `500` too.
//!   `VmNotRunning` stays `500` in every version (cloud-hypervisor#8678), and so does a second
//!   `vm.create` (`VmAlreadyCreated`: no version answers 409 for it; 409 came only for
//!   duplicate device ids, cloud-hypervisor#8665, and migrations, #8851);
//! - success: `204` for actions, `200` with a body for `vmm.ping`, `vm.info`, `vm.counters`,
//!   and `200` with no body for `vmm.shutdown`.
//!
//! **Spec** (`--codes spec`), from `cloud-hypervisor-openapi.yaml` (API 0.3.0): `404` when the
//! VM is not created, `405` when it is in the wrong state (the yaml documents 405 for pause,
//! resume, shutdown, reboot and snapshot; this mock uses it for every wrong-state error), `409`
//! for a second `vm.create`, `400` for a bad body, `204` for every action including
//! `vmm.shutdown`, and `405 Method Not Allowed` for a wrong method. Two literal readings of the
//! yaml: `vm.resume` on a VM that was never booted is `404` ("could not resume because it is not
//! booted yet"), and `vm.restore` when a VM exists is `404` ("because it is already created"); a
//! snapshot that cannot be read is `400` ("the restore configuration is not valid").
//!
//! Error bodies are the same in both modes: the JSON array of the error chain, outermost first,
//! as the real server writes it (`["Error from API", "The VM could not be paused", ...]`).

use std::fmt;
use std::str::FromStr;

use super::state::VmState;

/// Which status codes the mock answers with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CodeMode {
    /// What a real Cloud Hypervisor of the configured version answers (the default).
    #[default]
    Real,
    /// What the OpenAPI spec documents.
    Spec,
}

impl CodeMode {
    /// The name, as in `--codes`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Real => "real",
            Self::Spec => "spec",
        }
    }
}

impl fmt::Display for CodeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CodeMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "real" => Ok(Self::Real),
            "spec" => Ok(Self::Spec),
            other => Err(format!("unknown code mode {other:?}: real or spec")),
        }
    }
}

/// The first Cloud Hypervisor release that answers 404 for `VmNotCreated` / `VmMissingConfig`
/// (cloud-hypervisor#8320).
pub const FIRST_404_MAJOR: u32 = 53;

/// A Cloud Hypervisor release, `vMAJOR.MINOR` (e.g. `v48.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChVersion {
    /// The major version, e.g. 48.
    pub major: u32,
    /// The minor version, e.g. 0.
    pub minor: u32,
}

impl ChVersion {
    /// v48.0, the default (API 0.3.0, as in seed 002).
    pub const V48: Self = Self {
        major: 48,
        minor: 0,
    };

    /// `vmm.ping`'s `build_version`, e.g. `v48.0` (the real one is `git describe` output).
    pub fn build_version(self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }

    /// `vmm.ping`'s `version`, e.g. `48.0.0` (the real one is the crate version).
    pub fn version(self) -> String {
        format!("{}.{}.0", self.major, self.minor)
    }

    /// Whether this release answers 404 for errors rooted in `VmNotCreated` / `VmMissingConfig`.
    pub fn not_created_is_404(self) -> bool {
        self.major >= FIRST_404_MAJOR
    }
}

impl Default for ChVersion {
    fn default() -> Self {
        Self::V48
    }
}

impl fmt::Display for ChVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

impl FromStr for ChVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("bad version {s:?}: expected vMAJOR.MINOR, e.g. v48.0 or v49.0");
        let rest = s.strip_prefix('v').ok_or_else(bad)?;
        let (major, minor) = rest.split_once('.').ok_or_else(bad)?;
        let num = |p: &str| {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u32>().ok())
                .flatten()
                .ok_or_else(bad)
        };
        Ok(Self {
            major: num(major)?,
            minor: num(minor)?,
        })
    }
}

/// Why a request failed, as the status-code tables see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The body does not deserialize or validate, or is missing or unexpected.
    BadRequest,
    /// The root cause is `VmNotCreated` or `VmMissingConfig`.
    NotCreated,
    /// The root cause is `VmNotRunning`: the VM was never booted, or was shut down.
    NotRunning,
    /// The VM exists but is in the wrong state (`InvalidStateTransition`, snapshot while running).
    WrongState,
    /// A VM exists already (`VmAlreadyCreated`).
    AlreadyCreated,
    /// Anything else: a snapshot that cannot be written or read, a hook that failed.
    Internal,
}

/// The endpoints the mock serves, under `/api/v1/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET vmm.ping`.
    VmmPing,
    /// `PUT vmm.shutdown`.
    VmmShutdown,
    /// `PUT vm.create`.
    Create,
    /// `PUT vm.boot`.
    Boot,
    /// `PUT vm.pause`.
    Pause,
    /// `PUT vm.resume`.
    Resume,
    /// `PUT vm.shutdown`.
    Shutdown,
    /// `PUT vm.reboot`.
    Reboot,
    /// `PUT vm.delete`.
    Delete,
    /// `GET vm.info`.
    Info,
    /// `GET vm.counters`.
    Counters,
    /// `PUT vm.snapshot`.
    Snapshot,
    /// `PUT vm.restore`.
    Restore,
}

impl Endpoint {
    /// Every endpoint, in the order of the list.
    pub const ALL: [Self; 13] = [
        Self::VmmPing,
        Self::VmmShutdown,
        Self::Create,
        Self::Boot,
        Self::Pause,
        Self::Resume,
        Self::Shutdown,
        Self::Reboot,
        Self::Delete,
        Self::Info,
        Self::Counters,
        Self::Snapshot,
        Self::Restore,
    ];

    /// The name after `/api/v1/`, e.g. `vm.boot`.
    pub fn name(self) -> &'static str {
        match self {
            Self::VmmPing => "vmm.ping",
            Self::VmmShutdown => "vmm.shutdown",
            Self::Create => "vm.create",
            Self::Boot => "vm.boot",
            Self::Pause => "vm.pause",
            Self::Resume => "vm.resume",
            Self::Shutdown => "vm.shutdown",
            Self::Reboot => "vm.reboot",
            Self::Delete => "vm.delete",
            Self::Info => "vm.info",
            Self::Counters => "vm.counters",
            Self::Snapshot => "vm.snapshot",
            Self::Restore => "vm.restore",
        }
    }

    /// The endpoint named `name` (after `/api/v1/`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The one method the endpoint answers.
    pub fn method(self) -> &'static str {
        match self {
            Self::VmmPing | Self::Info | Self::Counters => "GET",
            _ => "PUT",
        }
    }

    /// Whether the endpoint has its own handler in the real server (`VmCreate`, `VmInfo`,
    /// `VmmPing`, `VmmShutdown`) rather than the shared `VmActionHandler`. It matters for a wrong
    /// method: the own handlers answer 400 with `["Bad Request"]` for any other method, the shared
    /// one answers GET/PUT mix-ups that way but any other method with a bare 400 and no body.
    pub fn has_own_handler(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Info | Self::VmmPing | Self::VmmShutdown
        )
    }

    /// The status of a success: 200 for the endpoints that answer with a body (and, in the real
    /// server, `vmm.shutdown`, whose handler answers `200 OK` with no body), else 204.
    pub fn success_status(self, mode: CodeMode) -> u16 {
        match (self, mode) {
            (Self::VmmPing | Self::Info | Self::Counters, _) => 200,
            (Self::VmmShutdown, CodeMode::Real) => 200,
            _ => 204,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The status of a failed request.
///
/// `before` is the VM's state when the request came in (`None`: no VM).
pub fn failure_status(
    mode: CodeMode,
    version: ChVersion,
    endpoint: Endpoint,
    before: Option<VmState>,
    kind: FailureKind,
) -> u16 {
    match mode {
        CodeMode::Real => match kind {
            FailureKind::BadRequest => 400,
            FailureKind::NotCreated if version.not_created_is_404() => 404,
            _ => 500,
        },
        CodeMode::Spec => spec_failure_status(endpoint, before, kind),
    }
}

fn spec_failure_status(endpoint: Endpoint, before: Option<VmState>, kind: FailureKind) -> u16 {
    let never_booted = matches!(before, Some(VmState::Created | VmState::Shutdown));
    match (kind, endpoint) {
        (FailureKind::BadRequest, _) => 400,
        (FailureKind::AlreadyCreated, Endpoint::Restore) => 404,
        (FailureKind::AlreadyCreated, _) => 409,
        (FailureKind::Internal, Endpoint::Restore) => 400,
        (FailureKind::Internal, _) => 500,
        (FailureKind::NotCreated | FailureKind::NotRunning, _) if before.is_none() => 404,
        (FailureKind::NotRunning, Endpoint::Resume) if never_booted => 404,
        (FailureKind::NotCreated | FailureKind::NotRunning | FailureKind::WrongState, _) => 405,
    }
}

/// The status for a request whose method the endpoint does not answer.
pub fn wrong_method_status(mode: CodeMode) -> u16 {
    match mode {
        CodeMode::Real => 400,
        CodeMode::Spec => 405,
    }
}

/// The status for a request body over the size limit (both modes).
pub const TOO_LARGE_STATUS: u16 = 413;

/// The status for a path that names no endpoint (both modes).
pub const UNKNOWN_PATH_STATUS: u16 = 404;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_print() {
        let v: ChVersion = "v49.0".parse().unwrap();
        assert_eq!(
            v,
            ChVersion {
                major: 49,
                minor: 0
            }
        );
        assert_eq!(v.to_string(), "v49.0");
        assert_eq!(v.version(), "49.0.0");
        for bad in ["49.0", "v49", "v.0", "v49.x", "v-1.0", "v49.0.1", ""] {
            assert!(bad.parse::<ChVersion>().is_err(), "{bad}");
        }
        assert!(!ChVersion::V48.not_created_is_404());
        assert!("v53.0".parse::<ChVersion>().unwrap().not_created_is_404());
    }

    #[test]
    fn endpoint_names_round_trip() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_name(e.name()), Some(e));
        }
        assert_eq!(Endpoint::from_name("vm.add-disk"), None);
    }

    #[test]
    fn not_created_is_500_before_v53_and_404_after() {
        let v53: ChVersion = "v53.0".parse().unwrap();
        let s = |v| {
            failure_status(
                CodeMode::Real,
                v,
                Endpoint::Info,
                None,
                FailureKind::NotCreated,
            )
        };
        assert_eq!(s(ChVersion::V48), 500);
        assert_eq!(s(v53), 404);
        // VmNotRunning stays 500 even in v53 (cloud-hypervisor#8678).
        let pause = failure_status(
            CodeMode::Real,
            v53,
            Endpoint::Pause,
            None,
            FailureKind::NotRunning,
        );
        assert_eq!(pause, 500);
    }
}
