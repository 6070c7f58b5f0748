//! The typed errors of the fault vocabulary: a `--fault` string (or scenario table) that does not
//! describe a fault, and a malformed variant that has no meaning for a protocol. Every message
//! says what was expected.

/// A fault description that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    /// The description is empty.
    #[error("empty fault; expected kind[:key=value,...], e.g. latency:latency=200ms")]
    Empty,
    /// The kind is not one of the known names.
    #[error("unknown fault kind {0:?}; expected one of: {known}", known = super::kind::KIND_NAMES.join(", "))]
    UnknownKind(String),
    /// `malformed` without a variant.
    #[error("malformed needs a variant, malformed:<variant>; expected one of: {known}", known = super::kind::MALFORMED_NAMES.join(", "))]
    MissingVariant,
    /// `malformed:` with a variant that is not known.
    #[error("unknown malformed variant {0:?}; expected one of: {known}", known = super::kind::MALFORMED_NAMES.join(", "))]
    UnknownVariant(String),
    /// An item that is not `key=value`.
    #[error("expected key=value, got {0:?}")]
    NotKeyValue(String),
    /// A key the kind does not take.
    #[error("{kind} does not take {key:?}; expected one of: {expected}")]
    UnknownKey {
        /// The fault kind.
        kind: &'static str,
        /// The key given.
        key: String,
        /// The keys the kind takes, comma-separated.
        expected: String,
    },
    /// A key given twice.
    #[error("{0:?} given twice")]
    DuplicateKey(String),
    /// A value that does not parse as the key requires.
    #[error("bad value {value:?} for {key}; expected {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What the value must be.
        expected: &'static str,
    },
}

/// A malformed variant asked of a protocol where that defect has no meaning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed:{variant} does not apply to {protocol}: {why}")]
pub struct MalformError {
    /// The variant's name.
    pub variant: &'static str,
    /// The protocol's name.
    pub protocol: String,
    /// Why not (or what the frame would have to be).
    pub why: &'static str,
}
