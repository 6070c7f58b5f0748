//! Structure-aware fuzzing of a live peer (`guestwire fuzz`): a guest agent reached through its
//! host socket is sent a deterministic sequence of cases — valid requests from the protocol's
//! encoders, the fault generators' malformed variants, byte-level and field-level mutations —
//! each on a fresh connection and each followed by a liveness probe, and whatever kills it,
//! hangs it, or makes it answer nonsense is saved as a replayable capture with its seed.
//!
//! The pure core: [`requests`] (harmless valid requests and their encoding), [`mutate`]
//! (byte-level), [`structured`] (protobuf and JSON fields), [`case`] (the seeded [`Generator`]:
//! seed + index → [`Case`]), [`safety`] (no case may ask the agent to change anything),
//! [`verdict`] (decoding replies, judging a case). The tokio adapters: [`exchange`] (one case
//! over a real connection, recorded), [`mod@probe`] (the ping), [`session`] (the run), [`save`]
//! (findings as pcap + JSON).

pub mod case;
pub mod exchange;
pub mod mutate;
pub mod probe;
pub mod requests;
pub mod safety;
pub mod save;
pub mod session;
pub mod structured;
pub mod verdict;

pub use case::{Case, Family, Generator, Target, UnsupportedProtocol};
pub use exchange::{CaseRun, ExchangeOptions, Recorded, run_case};
pub use probe::probe;
pub use save::{SaveError, SavedFinding, record_case, reproduce_command, save_finding};
pub use session::{
    CaseReport, DEFAULT_OUT, DEFAULT_PROBE_TIMEOUT, DEFAULT_RUNS, FuzzConfig, SessionError,
    Summary, run,
};
pub use verdict::{Exchange, Finding, FindingKind, ProbeResult, ReplyCheck, judge};
