//! A fuzzing run: check that the peer is alive, then for each case of the budget (or the one
//! case of `--case`) run it, probe the peer, judge, and hand the report to the caller; stop at a
//! dead peer, and at a hung one unless told to keep going.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Duration;

use super::case::{Case, Generator, Target, UnsupportedProtocol};
use super::exchange::{CaseRun, ExchangeOptions, run_case};
use super::probe::probe;
use super::verdict::{Finding, FindingKind, ProbeResult, judge};
use crate::io::Endpoint;
use crate::wire::protocol::Protocol;

/// The liveness probe's default deadline (`--probe-timeout`).
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default budget of cases (`--runs`).
pub const DEFAULT_RUNS: u64 = 1000;

/// Where findings go by default (`--out`).
pub const DEFAULT_OUT: &str = "guestwire-findings";

/// What to fuzz, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzConfig {
    /// Where the agent is.
    pub endpoint: Endpoint,
    /// Its protocol.
    pub protocol: Protocol,
    /// The seed of the cases.
    pub seed: u64,
    /// How many cases (cases `0..runs`).
    pub runs: u64,
    /// Run only this case (reproduction).
    pub only_case: Option<u64>,
    /// Go on after a hung peer.
    pub keep_going: bool,
    /// The liveness probe's deadline.
    pub probe_timeout: Duration,
    /// The exchanges' deadlines and bounds.
    pub exchange: ExchangeOptions,
}

impl FuzzConfig {
    /// The generator's target.
    pub fn target(&self) -> Target {
        Target {
            protocol: self.protocol.clone(),
            hvsock_port: match &self.endpoint {
                Endpoint::Hvsock { port, .. } => Some(*port),
                _ => None,
            },
        }
    }
}

/// One case, run and judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// The case.
    pub case: Case,
    /// Its exchange and recorded events.
    pub run: CaseRun,
    /// What the probe after it found.
    pub probe: ProbeResult,
    /// The finding, if any.
    pub finding: Option<Finding>,
}

/// Why a run could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The protocol has no generator.
    #[error(transparent)]
    Unsupported(#[from] UnsupportedProtocol),
    /// The peer did not answer the first probe, before any case.
    #[error("the peer is not answering before any case was sent: {0}")]
    NotReady(String),
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cases run.
    pub cases: u64,
    /// Findings, all kinds.
    pub findings: u64,
    /// Findings per kind name.
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Cases per family name.
    pub by_family: BTreeMap<&'static str, u64>,
    /// Valid requests that were answered (a peer that answers none is probably not speaking
    /// the protocol given).
    pub answered: u64,
    /// The finding that ended the run before its budget, if one did.
    pub stopped_by: Option<FindingKind>,
}

fn describe(p: &ProbeResult) -> String {
    match p {
        ProbeResult::Alive => "alive".into(),
        ProbeResult::Dead(w)
        | ProbeResult::Hung(w)
        | ProbeResult::Undecodable(w)
        | ProbeResult::Failed(w) => w.clone(),
    }
}

/// Probes until the peer answers, as seed 001's `DialGuest` retries: [`READY_ATTEMPTS`]
/// attempts, 100 ms apart and doubling (an agent that is still starting is not a finding).
async fn wait_ready(cfg: &FuzzConfig) -> Result<(), SessionError> {
    let mut delay = Duration::from_millis(100);
    let mut last = ProbeResult::Alive;
    for attempt in 0..READY_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        last = probe(&cfg.protocol, &cfg.endpoint, cfg.probe_timeout).await;
        if last == ProbeResult::Alive {
            return Ok(());
        }
    }
    Err(SessionError::NotReady(describe(&last)))
}

/// How many probes the peer gets to answer before the first case.
pub const READY_ATTEMPTS: u32 = 5;

/// Runs the cases of `cfg`, calling `on_case` after each; `on_case` may break to stop the run.
pub async fn run<F>(cfg: &FuzzConfig, mut on_case: F) -> Result<Summary, SessionError>
where
    F: FnMut(&CaseReport) -> ControlFlow<()>,
{
    let generator = Generator::new(cfg.target(), cfg.seed)?;
    wait_ready(cfg).await?;
    let indices = match cfg.only_case {
        Some(k) => k..k.saturating_add(1),
        None => 0..cfg.runs,
    };
    let mut summary = Summary::default();
    for index in indices {
        let case = generator.case(index);
        let run = run_case(&cfg.endpoint, &cfg.protocol, &case, &cfg.exchange).await;
        let probed = probe(&cfg.protocol, &cfg.endpoint, cfg.probe_timeout).await;
        let finding = judge(&case, &run.exchange, &probed);
        summary.cases += 1;
        *summary.by_family.entry(case.family.name()).or_default() += 1;
        if case.expect_reply && run.exchange.replies > 0 {
            summary.answered += 1;
        }
        let stop = finding
            .as_ref()
            .is_some_and(|f| f.kind.stops(cfg.keep_going));
        if let Some(f) = &finding {
            summary.findings += 1;
            *summary.by_kind.entry(f.kind.name()).or_default() += 1;
            if stop {
                summary.stopped_by = Some(f.kind);
            }
        }
        let report = CaseReport {
            case,
            run,
            probe: probed,
            finding,
        };
        if on_case(&report).is_break() || stop {
            break;
        }
    }
    Ok(summary)
}
