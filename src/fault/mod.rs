//! Pure fault plans: what to do to which bytes or frames of a stream, and when. No IO and no
//! clock: time comes in as the [`Duration`](std::time::Duration) since the stream started. One
//! vocabulary, named like toxiproxy's toxics where the meaning is the same, for the mock VMM, the
//! tap and scenario files.
//!
//! - [`spec`]: [`FaultSpec`], parsed from `--fault 'kind[:key=value,...]'` or a scenario table;
//!   [`kind`]: [`FaultKind`] and [`MalformedVariant`]; [`trigger`]: [`Trigger`];
//!   [`duration`]: `200ms` / `1.5s`; [`error`]: the typed errors.
//! - [`plan`]: [`FaultPlan`], asked per chunk, frame and close for [`Action`]s ([`action`]),
//!   with its seeded [`rng`].
//! - [`malform`]: each `malformed:<variant>` as a pure rewrite of one frame, per protocol.

pub mod action;
pub mod duration;
pub mod error;
pub mod kind;
pub mod live;
pub mod malform;
pub mod plan;
pub mod rng;
pub mod spec;
pub mod stage;
pub mod trigger;

#[cfg(test)]
mod malform_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod spec_tests;

pub use action::Action;
pub use error::{FaultParseError, MalformError};
pub use kind::{FaultKind, KIND_NAMES, MALFORMED_NAMES, MalformedVariant};
pub use live::LiveFaults;
pub use malform::{Malformed, malform, malform_writes};
pub use plan::{FaultPlan, SPLIT_GAP};
pub use rng::XorShift64;
pub use spec::{FaultDirection, FaultSpec};
pub use stage::FaultStage;
pub use trigger::{TRIGGER_KEYS, Trigger};
