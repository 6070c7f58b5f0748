//! Running a suite: choosing scenarios (`--filter`, `--partition K/N`, conformance runs), running
//! them in parallel on worker threads, and handing each result to a reporter as it finishes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::execute::{RunOptions, ScenarioResult, run_scenario};
use super::load::LoadedScenario;
use super::model::ConformanceSide;
use crate::wire::protocol::Protocol;

/// Which scenarios to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Patterns; a scenario runs if it matches any (all run when empty): a substring of its
    /// name, or `tag:T`, `protocol:P`, `channel:C`, `file:F` (substring of the file name).
    pub filters: Vec<String>,
    /// `(k, n)`: run the k-th of n shards (1-based).
    pub partition: Option<(usize, usize)>,
    /// A conformance run: only scenarios whose `conformance` side this is.
    pub conformance: Option<ConformanceSide>,
    /// With a conformance run: only scenarios of this protocol.
    pub protocol: Option<Protocol>,
}

/// Parses `K/N` (1 ≤ K ≤ N).
pub fn parse_partition(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--partition {text:?}: K/N with 1 <= K <= N, e.g. 2/4");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

fn matches(s: &LoadedScenario, pattern: &str) -> bool {
    let sc = &s.scenario;
    match pattern.split_once(':') {
        Some(("tag", t)) => sc.tags.iter().any(|x| x == t),
        Some(("protocol", p)) => sc.protocol.to_string() == p,
        Some(("channel", c)) => sc.channel.kind.name() == c,
        Some(("file", f)) => s.file.contains(f),
        _ => sc.name.contains(pattern),
    }
}

/// The scenarios `sel` picks, in a stable order (by name).
pub fn select<'a>(all: &'a [LoadedScenario], sel: &Selection) -> Vec<&'a LoadedScenario> {
    let mut chosen: Vec<&LoadedScenario> = all
        .iter()
        .filter(|s| sel.filters.is_empty() || sel.filters.iter().any(|p| matches(s, p)))
        .filter(|s| match sel.conformance {
            Some(side) => {
                s.scenario.conformance == Some(side)
                    && sel
                        .protocol
                        .as_ref()
                        .is_none_or(|p| *p == s.scenario.protocol)
            }
            None => true,
        })
        .collect();
    chosen.sort_by(|a, b| a.name().cmp(b.name()));
    if let Some((k, n)) = sel.partition {
        chosen = chosen
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % n == k - 1)
            .map(|(_, s)| s)
            .collect();
    }
    chosen
}

/// Runs `scenarios` on `jobs` worker threads; `on_done` sees each result as it finishes (from
/// the worker threads, one at a time). Returns the results in the scenarios' order.
pub fn run_all(
    scenarios: &[&LoadedScenario],
    opts: &RunOptions,
    jobs: usize,
    on_done: &(dyn Fn(&ScenarioResult) + Sync),
) -> Vec<ScenarioResult> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<ScenarioResult>>> = Mutex::new(vec![None; scenarios.len()]);
    let report = Mutex::new(());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, scenarios.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = scenarios.get(i) else { break };
                    let r = run_scenario(s, opts);
                    {
                        let _one_at_a_time = report.lock().unwrap_or_else(|e| e.into_inner());
                        on_done(&r);
                    }
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load::parse;

    fn suite() -> Vec<LoadedScenario> {
        let text = r#"
[[scenario]]
name = "b_ping"
proves = "x"
tags = ["smoke"]
protocol = "quantix"
conformance = "guest"
channel = { kind = "serial" }
[[scenario.step]]
call = "ping"

[[scenario]]
name = "a_exec"
proves = "x"
protocol = "fcexec"
channel = { kind = "hvsock" }
[[scenario.step]]
call = "ping"

[[scenario]]
name = "c_qga"
proves = "x"
protocol = "qga"
conformance = "guest"
channel = { kind = "serial" }
[[scenario.step]]
call = "ping"
"#;
        parse("t.toml", text).expect("parse")
    }

    fn names(v: &[&LoadedScenario]) -> Vec<String> {
        v.iter().map(|s| s.name().to_string()).collect()
    }

    #[test]
    fn filters_partitions_and_conformance() {
        let all = suite();
        assert_eq!(
            names(&select(&all, &Selection::default())),
            ["a_exec", "b_ping", "c_qga"]
        );
        let f = |p: &str| Selection {
            filters: vec![p.into()],
            ..Selection::default()
        };
        assert_eq!(names(&select(&all, &f("tag:smoke"))), ["b_ping"]);
        assert_eq!(names(&select(&all, &f("protocol:fcexec"))), ["a_exec"]);
        assert_eq!(
            names(&select(&all, &f("channel:serial"))),
            ["b_ping", "c_qga"]
        );
        assert_eq!(names(&select(&all, &f("qga"))), ["c_qga"]);
        let shards: Vec<Vec<String>> = (1..=2)
            .map(|k| {
                names(&select(
                    &all,
                    &Selection {
                        partition: Some((k, 2)),
                        ..Selection::default()
                    },
                ))
            })
            .collect();
        assert_eq!(shards, [vec!["a_exec", "c_qga"], vec!["b_ping"]]);
        let conf = Selection {
            conformance: Some(ConformanceSide::Guest),
            protocol: Some(Protocol::Qga),
            ..Selection::default()
        };
        assert_eq!(names(&select(&all, &conf)), ["c_qga"]);
        assert_eq!(parse_partition("2/4"), Ok((2, 4)));
        assert!(parse_partition("0/4").is_err());
        assert!(parse_partition("5/4").is_err());
    }
}
