//! `guestwire test`: runs scenarios — the built-in suite when no path is given — and reports a
//! verdict per scenario (plain lines in CI, a progress bar on a terminal), a summary, optionally
//! JUnit XML and JSON. Exit 0 when everything passed, 1 when a scenario failed, 2 when the
//! scenarios could not be loaded or nothing was selected.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::Args;

use super::{CliError, Outcome};
use crate::scenario::execute::{RunOptions, ScenarioResult, Verdict};
use crate::scenario::model::ConformanceSide;
use crate::scenario::report::{self, Totals};
use crate::scenario::suite::{Selection, parse_partition, run_all, select};
use crate::scenario::world::Overrides;
use crate::scenario::{LoadedScenario, builtin, load};
use crate::wire::protocol::Protocol;

/// Arguments of `guestwire test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Scenario files or directories (default: the built-in suite).
    pub paths: Vec<PathBuf>,
    /// Run only scenarios matching this (repeatable; any match): a substring of the name, or
    /// tag:T, protocol:P, channel:C, file:F.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Run the K-th of N shards of the selection (1-based), e.g. 2/4 in a CI matrix.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<String>,
    /// Run your agent in place of the mock guest in the conformance scenarios: a shell command
    /// with {device} (virtio-serial) or {socket} and {port} (hybrid vsock). Needs --protocol.
    #[arg(long, value_name = "CMD", conflicts_with = "host_cmd")]
    pub guest_cmd: Option<String>,
    /// Run your host client in place of the built-in one in the conformance scenarios, once per
    /// call: a shell command with {endpoint} {socket} {port} {protocol} {op} {args}; exit 0 for
    /// success, and optionally one JSON line like `guestwire call --json`. Needs --protocol.
    #[arg(long, value_name = "CMD")]
    pub host_cmd: Option<String>,
    /// The protocol your implementation speaks (with --guest-cmd / --host-cmd).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Write a JUnit XML report here (its directory is created if need be).
    #[arg(long, value_name = "OUT")]
    pub junit: Option<PathBuf>,
    /// Print the results as one JSON document instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Scenarios run at once (default: twice the CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Where failing scenarios' captures are kept.
    #[arg(long, value_name = "DIR", default_value = "guestwire-results")]
    pub out: PathBuf,
    /// Keep the capture of every scenario, not only the failing ones.
    #[arg(long)]
    pub keep_captures: bool,
    /// List the selected scenarios and what each proves, without running them.
    #[arg(long)]
    pub list: bool,
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<LoadedScenario>, CliError> {
    let all = if paths.is_empty() {
        builtin::load().map_err(|e| CliError::Usage(e.to_string()))?
    } else {
        let mut all = Vec::new();
        for p in paths {
            all.extend(load::load_path(p).map_err(|e| CliError::Usage(e.to_string()))?);
        }
        load::check_unique(&all).map_err(|e| CliError::Usage(e.to_string()))?;
        all
    };
    Ok(all)
}

fn selection(args: &TestArgs) -> Result<Selection, CliError> {
    let partition = args
        .partition
        .as_deref()
        .map(parse_partition)
        .transpose()
        .map_err(CliError::Usage)?;
    let conformance = match (&args.guest_cmd, &args.host_cmd) {
        (Some(_), _) => Some(ConformanceSide::Guest),
        (_, Some(_)) => Some(ConformanceSide::Host),
        _ => None,
    };
    let protocol: Option<Protocol> = args
        .protocol
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--protocol: {e}")))?;
    if conformance.is_some() && protocol.is_none() {
        return Err(CliError::Usage(
            "--guest-cmd and --host-cmd need --protocol: the protocol your implementation speaks"
                .into(),
        ));
    }
    Ok(Selection {
        filters: args.filter.clone(),
        partition,
        conformance,
        protocol,
    })
}

/// Runs `guestwire test`.
pub fn run(args: TestArgs) -> Result<Outcome, CliError> {
    let all = load_all(&args.paths)?;
    let sel = selection(&args)?;
    let chosen = select(&all, &sel);
    if chosen.is_empty() {
        return Err(CliError::Usage(format!(
            "no scenario selected (of {}): check --filter, --partition and --protocol",
            all.len()
        )));
    }
    let stdout = std::io::stdout();
    if args.list {
        let mut out = stdout.lock();
        for s in &chosen {
            let _ = writeln!(
                out,
                "{}  ({}:{})\n    {}",
                s.name(),
                s.file,
                s.line,
                s.scenario.proves
            );
        }
        return Ok(Outcome::Ok);
    }
    let opts = RunOptions {
        overrides: Overrides {
            guest_cmd: args.guest_cmd.clone(),
            host_cmd: args.host_cmd.clone(),
        },
        out_dir: args.out.clone(),
        keep_captures: args.keep_captures,
    };
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let jobs = args.jobs.unwrap_or(cpus * 2).max(1);
    let bar = !args.json && std::io::stderr().is_terminal();
    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let total = chosen.len();
    let started = Instant::now();
    let on_done = |r: &ScenarioResult| {
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        let bad = r.verdict == Verdict::Failed || r.verdict == Verdict::Error;
        let f = failed.fetch_add(usize::from(bad), Ordering::Relaxed) + usize::from(bad);
        if args.json {
            return;
        }
        let mut err = std::io::stderr().lock();
        if bar {
            let _ = write!(err, "\r\x1b[2K");
        }
        if bar && !bad {
            // On a terminal only failures scroll; the bar shows the rest.
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", report::line(r));
            if bad {
                let _ = write!(out, "{}", report::details(r));
            }
            let _ = out.flush();
        }
        if bar {
            let width = 30;
            let filled = n * width / total.max(1);
            let _ = write!(
                err,
                "[{}{}] {n}/{total} {f} failed  {}",
                "=".repeat(filled),
                " ".repeat(width - filled),
                r.name
            );
            let _ = err.flush();
        }
    };
    let results = run_all(&chosen, &opts, jobs, &on_done);
    let wall = started.elapsed();
    if bar {
        eprint!("\r\x1b[2K");
    }
    let totals = Totals::of(&results);
    if let Some(path) = &args.junit {
        let io = |source| CliError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, report::junit(&results, wall)).map_err(io)?;
    }
    let mut out = stdout.lock();
    let io = |source| CliError::Io {
        path: "-".into(),
        source,
    };
    if args.json {
        writeln!(out, "{}", report::to_json(&results, wall)).map_err(io)?;
    } else {
        if bar {
            for r in results.iter().filter(|r| r.verdict == Verdict::Passed) {
                writeln!(out, "{}", report::line(r)).map_err(io)?;
            }
        }
        writeln!(out, "{}", report::summary(&totals, wall)).map_err(io)?;
    }
    Ok(if totals.ok() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}
