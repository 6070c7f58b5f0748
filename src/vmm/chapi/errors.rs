//! The error chains the real server writes as its error bodies, message for message.
//!
//! cloud-hypervisor's `error_response` walks an error's `source()` chain and writes each
//! `Display` as one string of a JSON array, outermost first: `HttpError::ApiError` ("Error from
//! API"), then the endpoint's `ApiError` ("The VM could not be paused"), then the VMM's
//! `vm::Error` ("VM is not running", "Cannot pause VM", ...) and what it wraps. The texts here are
//! those of `vmm/src/api/mod.rs`, `vmm/src/vm.rs` and `vm-migration` in the v4x releases (after
//! the error messages lost their `: {0}` suffixes), e.g. a second pause:
//! `["Error from API","The VM could not be paused","Cannot pause VM","Failed to pause migratable
//! component","Invalid transition: InvalidStateTransition(Paused, Paused)"]`.

use super::codes::{Endpoint, FailureKind};
use super::state::VmState;

/// `HttpError::ApiError`: the head of every chain that comes from the VMM.
pub const ERROR_FROM_API: &str = "Error from API";

/// `HttpError::SerdeJsonDeserialize`: the head of a chain for a body that does not deserialize.
pub const FAILED_TO_DESERIALIZE: &str = "Failed to deserialize JSON";

/// `HttpError::BadRequest`: a wrong method, or a body where none belongs.
pub const BAD_REQUEST: &str = "Bad Request";

/// `HttpError::NotFound`: a path that names no endpoint.
pub const NOT_FOUND: &str = "Not Found";

/// What a snapshot or restore failure of the transport says (`MigratableError::MigrateSend`;
/// the real server uses it for reading a snapshot back too).
pub const MIGRATE_SEND: &str = "Failed to send migratable component snapshot";

/// An error from the VMM (`vmm::vm::Error`), the root of an `ApiError` chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmError {
    /// `VmMissingConfig`: boot with no `vm.create` before.
    MissingConfig,
    /// `VmNotCreated`: the VM (config) does not exist.
    NotCreated,
    /// `VmAlreadyCreated`: a VM (config) exists already.
    AlreadyCreated,
    /// `VmNotRunning`: no booted VM (never booted, or shut down).
    NotRunning,
    /// `InvalidStateTransition`, straight from `valid_transition` (boot of a running VM).
    InvalidTransition {
        /// The state the VM is in.
        from: VmState,
        /// The state asked for.
        to: VmState,
    },
    /// `Pause(MigratableError::Pause(..))` wrapping an invalid transition (pause when paused).
    Pause {
        /// The state the VM is in.
        from: VmState,
    },
    /// `Resume(MigratableError::Resume(..))` wrapping an invalid transition (resume when running).
    Resume {
        /// The state the VM is in.
        from: VmState,
    },
    /// `Snapshot(MigratableError::Snapshot(..))`: a snapshot of a VM that is not paused.
    SnapshotNotPaused,
    /// A failure outside the state machine (snapshot IO, a hook), as a chain of messages.
    Other {
        /// The messages, outermost first.
        chain: Vec<String>,
        /// How the code tables see it.
        kind: FailureKind,
    },
}

impl VmError {
    /// The messages of the chain from this error down, outermost first.
    pub fn messages(&self) -> Vec<String> {
        let transition = |from: VmState, to: VmState| {
            format!(
                "Invalid transition: InvalidStateTransition({}, {})",
                from.name(),
                to.name()
            )
        };
        match self {
            Self::MissingConfig => vec!["VM config is missing".into()],
            Self::NotCreated => vec!["VM is not created".into()],
            Self::AlreadyCreated => vec!["VM is already created".into()],
            Self::NotRunning => vec!["VM is not running".into()],
            Self::InvalidTransition { from, to } => vec![format!(
                "invalid VM state transition: {} to {}",
                from.name(),
                to.name()
            )],
            Self::Pause { from } => vec![
                "Cannot pause VM".into(),
                "Failed to pause migratable component".into(),
                transition(*from, VmState::Paused),
            ],
            Self::Resume { from } => vec![
                "Cannot resume VM".into(),
                "Failed to resume migratable component".into(),
                transition(*from, VmState::Running),
            ],
            Self::SnapshotNotPaused => vec![
                "Cannot snapshot VM".into(),
                "Failed to snapshot migratable component".into(),
                "Trying to snapshot while VM is running".into(),
            ],
            Self::Other { chain, .. } => chain.clone(),
        }
    }

    /// How the status-code tables classify this error.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::MissingConfig | Self::NotCreated => FailureKind::NotCreated,
            Self::AlreadyCreated => FailureKind::AlreadyCreated,
            Self::NotRunning => FailureKind::NotRunning,
            Self::InvalidTransition { .. }
            | Self::Pause { .. }
            | Self::Resume { .. }
            | Self::SnapshotNotPaused => FailureKind::WrongState,
            Self::Other { kind, .. } => *kind,
        }
    }
}

/// The `ApiError` message an endpoint's VMM errors are wrapped in.
pub fn api_context(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Create => "The VM could not be created",
        Endpoint::Boot => "The VM could not boot",
        Endpoint::Pause => "The VM could not be paused",
        Endpoint::Resume => "The VM could not resume",
        Endpoint::Shutdown => "The VM could not shutdown",
        Endpoint::Reboot => "The VM could not reboot",
        Endpoint::Delete => "The VM could not be deleted",
        Endpoint::Info | Endpoint::Counters => "The VM info is not available",
        Endpoint::Snapshot => "The VM could not be snapshotted",
        Endpoint::Restore => "The VM could not be restored",
        Endpoint::VmmShutdown | Endpoint::VmmPing => "The VMM could not shutdown",
    }
}

/// The whole chain of a VMM error on `endpoint`: `["Error from API", context, ...]`.
pub fn api_chain(endpoint: Endpoint, error: &VmError) -> Vec<String> {
    let mut chain = vec![
        ERROR_FROM_API.to_string(),
        api_context(endpoint).to_string(),
    ];
    chain.extend(error.messages());
    chain
}

/// The chain of a body that does not deserialize: `["Failed to deserialize JSON", why]`.
pub fn deserialize_chain(why: &str) -> Vec<String> {
    vec![FAILED_TO_DESERIALIZE.to_string(), why.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_pause_reads_as_the_real_one() {
        let chain = api_chain(
            Endpoint::Pause,
            &VmError::Pause {
                from: VmState::Paused,
            },
        );
        assert_eq!(
            serde_json::to_string(&chain).unwrap(),
            r#"["Error from API","The VM could not be paused","Cannot pause VM","Failed to pause migratable component","Invalid transition: InvalidStateTransition(Paused, Paused)"]"#
        );
    }
}
