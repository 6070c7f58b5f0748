//! `guestwire fuzz`: structure-aware fuzzing of a live guest agent through its host socket
//! (see [`crate::livefuzz`]). Progress lines and a summary, or one JSON object with `--json`;
//! every finding saved under `--out` as `finding-<n>-<kind>.pcap` + `finding-<n>.json`. Exit 0
//! when nothing was found, 1 when something was, 2 when the run could not be made (bad
//! arguments, a peer that does not answer before the first case, findings that cannot be saved).

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

use super::{CliError, Outcome};
use crate::capture::CaptureWriter;
use crate::io::Endpoint;
use crate::livefuzz::{
    CaseReport, DEFAULT_OUT, DEFAULT_RUNS, ExchangeOptions, FuzzConfig, Summary, record_case,
    requests, save_finding,
};
use crate::wire::protocol::Protocol;

/// Arguments of `guestwire fuzz`.
#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Where the agent is: unix:PATH (virtio-serial), hvsock:PATH:PORT (hybrid vsock),
    /// tcp:HOST:PORT, pty:PATH, vsock:CID:PORT.
    #[arg(long, short)]
    pub connect: String,
    /// quantix, quantix-legacy, fcexec, qga or volant.
    #[arg(long, short)]
    pub protocol: String,
    /// How many cases to run (cases 0 to N-1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RUNS)]
    pub runs: u64,
    /// The seed: the same seed gives the same cases.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Run only case K of the seed (to reproduce a finding).
    #[arg(long, value_name = "K")]
    pub case: Option<u64>,
    /// Where findings are saved.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Go on after a hung peer (a dead one always ends the run).
    #[arg(long)]
    pub keep_going: bool,
    /// Deadline of the liveness probe after each case, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub probe_timeout: f64,
    /// Deadline for connecting (and the hybrid-vsock handshake), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub connect_timeout: f64,
    /// How long to wait for the reply to a valid request, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub read_timeout: f64,
    /// When no reply is due, how long the peer may stay quiet before a case ends, in ms.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub settle_ms: u64,
    /// Also record every case's connection into this capture (pcap, or pcapng by extension).
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// Print the result as one JSON object (and no progress lines).
    #[arg(long)]
    pub json: bool,
}

/// A line on standard output that never panics: a closed pipe (`| head`) must not stop a run
/// whose findings are still being saved.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The longest deadline accepted: a day.
const MAX_DEADLINE: Duration = Duration::from_secs(86_400);

fn secs(s: f64, what: &str) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero() && *d <= MAX_DEADLINE)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{what} must be a positive number of seconds, at most {}",
                MAX_DEADLINE.as_secs()
            ))
        })
}

/// The run's configuration from the arguments.
pub fn config_of(args: &FuzzArgs) -> Result<FuzzConfig, CliError> {
    let endpoint: Endpoint = args
        .connect
        .parse()
        .map_err(|e| CliError::Usage(format!("--connect: {e}")))?;
    if matches!(endpoint, Endpoint::Stdio) {
        return Err(CliError::Usage(
            "--connect: stdio cannot be fuzzed (every case needs a fresh connection)".into(),
        ));
    }
    let protocol: Protocol = args
        .protocol
        .parse()
        .map_err(|e| CliError::Usage(format!("--protocol: {e}")))?;
    if !requests::supported(&protocol) {
        return Err(CliError::Usage(format!(
            "--protocol: live fuzzing does not know {protocol}: quantix, quantix-legacy, fcexec, qga or volant"
        )));
    }
    if args.runs == 0 && args.case.is_none() {
        return Err(CliError::Usage("--runs must be at least 1".into()));
    }
    Ok(FuzzConfig {
        endpoint,
        protocol,
        seed: args.seed,
        runs: args.runs,
        only_case: args.case,
        keep_going: args.keep_going,
        probe_timeout: secs(args.probe_timeout, "--probe-timeout")?,
        exchange: ExchangeOptions {
            connect_timeout: secs(args.connect_timeout, "--connect-timeout")?,
            write_timeout: secs(args.connect_timeout, "--connect-timeout")?,
            read_timeout: secs(args.read_timeout, "--read-timeout")?,
            settle: Duration::from_millis(args.settle_ms.max(1)),
            ..ExchangeOptions::default()
        },
    })
}

/// A progress line every this many cases (and at the end).
fn progress_step(total: u64) -> u64 {
    (total / 10).clamp(1, 100)
}

/// Runs `guestwire fuzz`.
pub fn run(args: FuzzArgs) -> Result<Outcome, CliError> {
    let cfg = config_of(&args)?;
    let capture = args
        .capture
        .as_ref()
        .map(|p| {
            CaptureWriter::create(p).map_err(|e| CliError::Io {
                path: p.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })
        })
        .transpose()?;
    let total = if cfg.only_case.is_some() { 1 } else { cfg.runs };
    let step = progress_step(total);
    let human = !args.json;
    if human {
        let what = match cfg.only_case {
            Some(k) => format!("case {k}"),
            None => format!("{total} cases"),
        };
        say!(
            "fuzzing {} at {} with seed {}: {what}",
            cfg.protocol,
            cfg.endpoint,
            cfg.seed
        );
    }
    let mut findings: Vec<Value> = Vec::new();
    let mut failure: Option<CliError> = None;
    let started = Instant::now();
    let on_case = |report: &CaseReport| {
        if let Some(w) = &capture
            && let Err(e) = record_case(w, &cfg.endpoint, report)
        {
            eprintln!("guestwire: capture write failed, no longer recording: {e}");
        }
        if let Some(f) = &report.finding {
            let n = findings.len() as u64 + 1;
            match save_finding(&args.out, n, report, &cfg) {
                Ok(saved) => {
                    if human {
                        say!(
                            "FINDING {n}: {} at case {} ({}): {}",
                            f.kind.name(),
                            report.case.index,
                            report.case.description,
                            f.detail
                        );
                        say!(
                            "  saved {} and {}",
                            saved.pcap.display(),
                            saved.json.display()
                        );
                        say!(
                            "  reproduce: {}",
                            saved.value["reproduce"].as_str().unwrap_or_default()
                        );
                    }
                    findings.push(saved.value);
                }
                Err(e) => {
                    failure = Some(CliError::Io {
                        path: args.out.display().to_string(),
                        source: std::io::Error::other(e.to_string()),
                    });
                    return ControlFlow::Break(());
                }
            }
        }
        let done = report.case.index + 1 - cfg.only_case.unwrap_or(0);
        if human && (done.is_multiple_of(step) || done == total) {
            say!("  {done}/{total} cases, {} findings", findings.len());
            let _ = std::io::stdout().flush();
        }
        ControlFlow::Continue(())
    };
    let runtime = super::runtime()?;
    let result = runtime.block_on(crate::livefuzz::run(&cfg, on_case));
    let elapsed = started.elapsed();
    if let Some(e) = failure {
        return Err(e);
    }
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            if args.json {
                let v = json!({"ok": false, "error": e.to_string(), "protocol": cfg.protocol.to_string(),
                               "endpoint": cfg.endpoint.to_string(), "seed": cfg.seed});
                say!("{v}");
            }
            return Err(CliError::Usage(e.to_string()));
        }
    };
    Ok(report(&args, &cfg, &summary, findings, elapsed))
}

fn report(
    args: &FuzzArgs,
    cfg: &FuzzConfig,
    summary: &Summary,
    findings: Vec<Value>,
    elapsed: Duration,
) -> Outcome {
    let ms = elapsed.as_secs_f64() * 1000.0;
    if args.json {
        let v = json!({
            "ok": findings.is_empty(),
            "protocol": cfg.protocol.to_string(),
            "endpoint": cfg.endpoint.to_string(),
            "seed": cfg.seed,
            "case": cfg.only_case,
            "cases": summary.cases,
            "by_family": summary.by_family,
            "answered": summary.answered,
            "findings": findings,
            "by_kind": summary.by_kind,
            "stopped_by": summary.stopped_by.map(|k| k.name()),
            "out": args.out.display().to_string(),
            "elapsed_ms": ms,
        });
        say!("{v}");
    } else {
        let families: Vec<String> = summary
            .by_family
            .iter()
            .map(|(k, v)| match *k {
                "valid" => format!("{k} {v}, {} answered", summary.answered),
                _ => format!("{k} {v}"),
            })
            .collect();
        say!(
            "{} cases ({}) in {:.1} s: {} findings{}",
            summary.cases,
            families.join(", "),
            ms / 1000.0,
            summary.findings,
            match summary.stopped_by {
                Some(k) => format!(", stopped: the peer is {}", k.name()),
                None => String::new(),
            }
        );
        if !findings.is_empty() {
            say!("findings saved in {}", args.out.display());
        }
    }
    if findings.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Failed
    }
}
