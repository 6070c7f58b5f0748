//! How the mock guest behaves, whatever its protocol: where its files live, how it runs commands,
//! how fast it answers, and whether its main loop is the robust one or the naive single-threaded
//! loop of seed 003 that stops reading requests while a write blocks.

use std::path::PathBuf;
use std::time::Duration;

use super::exec::ExecMode;

/// The shape of the agent's main loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoopMode {
    /// Reading requests and writing replies/events are independent (the default): a blocked
    /// write never stops requests from being read.
    #[default]
    Robust,
    /// One loop does everything, as the agent of seed 003 does: a write that blocks (the host is
    /// not reading, or no host is connected) stops the agent from reading requests, and a read
    /// that returns EOF is retried at once (a busy loop while no host is connected).
    Naive,
}

impl std::str::FromStr for LoopMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "robust" => Ok(Self::Robust),
            "naive" => Ok(Self::Naive),
            _ => Err(format!("unknown loop {s:?}: robust or naive")),
        }
    }
}

/// The mock guest's behaviour.
#[derive(Debug, Clone)]
pub struct GuestConfig {
    /// Root directory for file operations (`None`: file operations are refused).
    pub root: Option<PathBuf>,
    /// How commands run: real processes, or the deterministic echo mode for tests.
    pub exec: ExecMode,
    /// Delay before every reply.
    pub reply_delay: Duration,
    /// Interval between unsolicited telemetry (quantix); `None` for none.
    pub telemetry_interval: Option<Duration>,
    /// The main loop's shape.
    pub loop_mode: LoopMode,
    /// The version the agent reports.
    pub version: String,
    /// The hostname the agent reports.
    pub hostname: String,
}

/// The LimiQuantix agent's telemetry interval (PROTOCOLS.md): every 5 s.
pub const QUANTIX_TELEMETRY_INTERVAL: Duration = Duration::from_secs(5);

impl Default for GuestConfig {
    fn default() -> Self {
        Self {
            root: None,
            exec: ExecMode::Real,
            reply_delay: Duration::ZERO,
            telemetry_interval: Some(QUANTIX_TELEMETRY_INTERVAL),
            loop_mode: LoopMode::Robust,
            version: concat!("guestwire-mock ", env!("CARGO_PKG_VERSION")).to_string(),
            hostname: "guestwire-guest".to_string(),
        }
    }
}
