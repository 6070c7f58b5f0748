//! When a fault fires: [`Trigger`], the conditions of a `--fault` (all that are set must hold).
//! `after_bytes`/`after_frames` count the stream in the fault's direction, `on_type` matches a
//! frame's [`Describe::type_name`](crate::wire::Describe::type_name), `at` compares with the time
//! since the stream started, `probability` is decided by the plan's seeded PRNG, and `times` caps
//! how often the fault fires ("fail the first N requests", which toxiproxy cannot say).

use std::time::Duration;

/// The trigger keys, in display order.
pub const TRIGGER_KEYS: &[&str] = &[
    "after_bytes",
    "after_frames",
    "on_type",
    "at",
    "probability",
    "times",
];

/// The conditions under which a fault fires. The default fires always.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trigger {
    /// Only once this many bytes have passed in the fault's direction (the fault starts exactly
    /// at that byte, even inside a chunk).
    pub after_bytes: Option<u64>,
    /// Only once this many frames have passed in the fault's direction.
    pub after_frames: Option<u64>,
    /// Only on frames of this type, e.g. `ping`, `execute_response`, `log`.
    pub on_type: Option<String>,
    /// Only from this time since the start of the stream.
    pub at: Option<Duration>,
    /// Only with this probability (0..=1), per chunk or frame, decided by the plan's PRNG.
    pub probability: Option<f64>,
    /// At most this many times.
    pub times: Option<u64>,
}

impl Trigger {
    /// Whether every condition is unset.
    pub fn is_always(&self) -> bool {
        *self == Self::default()
    }
}
