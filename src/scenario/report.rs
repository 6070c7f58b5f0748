//! Reports of a suite run: one line per scenario (plain, for CI logs), a progress line on a
//! terminal, the failure details, a JUnit XML file and a JSON document.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use super::execute::{ScenarioResult, Verdict};

/// Counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Scenarios run or skipped.
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Could not run.
    pub errors: usize,
    /// Skipped.
    pub skipped: usize,
}

impl Totals {
    /// Counts `results`.
    pub fn of(results: &[ScenarioResult]) -> Self {
        let mut t = Self {
            total: results.len(),
            ..Self::default()
        };
        for r in results {
            match r.verdict {
                Verdict::Passed => t.passed += 1,
                Verdict::Failed => t.failed += 1,
                Verdict::Error => t.errors += 1,
                Verdict::Skipped => t.skipped += 1,
            }
        }
        t
    }

    /// Whether the run is green.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.errors == 0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One line for a finished scenario: `PASS name (12.3 ms wall, 30.0 s scenario time)`.
pub fn line(r: &ScenarioResult) -> String {
    let head = match r.verdict {
        Verdict::Passed => "PASS",
        Verdict::Failed => "FAIL",
        Verdict::Error => "ERROR",
        Verdict::Skipped => "SKIP",
    };
    format!(
        "{head:5} {} ({:.1} ms wall, {:.3} s {} clock)",
        r.name,
        ms(r.wall_time),
        r.scenario_time.as_secs_f64(),
        r.clock
    )
}

/// The details of a failing scenario, indented under its line.
pub fn details(r: &ScenarioResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "      proves: {}", r.proves);
    if let Some(f) = &r.failure {
        let at = r
            .location
            .rsplit_once(':')
            .map_or(r.location.as_str(), |(file, _)| file);
        if f.step == 0 {
            let _ = writeln!(out, "      at {} (setup)", r.location);
        } else {
            let _ = writeln!(
                out,
                "      at {at}:{} step {} ({})",
                f.line, f.step, f.action
            );
        }
        for p in &f.problems {
            let _ = writeln!(out, "      - {p}");
        }
        if let Some(d) = &f.divergence {
            let _ = writeln!(out, "      first diverging frame: {d}");
        }
    }
    if let Some(c) = &r.capture {
        let _ = writeln!(out, "      capture: {} (guestwire decode {0})", c.display());
    }
    out
}

/// The closing summary line.
pub fn summary(t: &Totals, wall: Duration) -> String {
    format!(
        "{} scenarios: {} passed, {} failed, {} errors, {} skipped in {:.2} s",
        t.total,
        t.passed,
        t.failed,
        t.errors,
        t.skipped,
        wall.as_secs_f64()
    )
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no place for most control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The run as JUnit XML (one `<testsuite>`; classname is the scenario's file).
pub fn junit(results: &[ScenarioResult], wall: Duration) -> String {
    let t = Totals::of(results);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"guestwire\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        t.total,
        t.failed,
        t.errors,
        t.skipped,
        wall.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"guestwire\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        t.total,
        t.failed,
        t.errors,
        t.skipped,
        wall.as_secs_f64()
    );
    for r in results {
        let file = r
            .location
            .rsplit_once(':')
            .map_or(r.location.as_str(), |(f, _)| f);
        let class = std::path::Path::new(file)
            .file_stem()
            .map_or_else(|| file.to_string(), |s| s.to_string_lossy().into_owned());
        let _ = write!(
            out,
            "    <testcase classname=\"guestwire.{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
            xml_escape(&class),
            xml_escape(&r.name),
            xml_escape(file),
            r.wall_time.as_secs_f64()
        );
        let text = details(r);
        match r.verdict {
            Verdict::Passed => out.push_str(" />\n"),
            Verdict::Skipped => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\" />\n    </testcase>",
                    xml_escape(r.skip_reason.as_deref().unwrap_or("skipped"))
                );
            }
            Verdict::Failed | Verdict::Error => {
                let tag = if r.verdict == Verdict::Failed {
                    "failure"
                } else {
                    "error"
                };
                let message = r
                    .failure
                    .as_ref()
                    .and_then(|f| f.problems.first())
                    .map_or("failed", String::as_str);
                let _ = writeln!(
                    out,
                    ">\n      <{tag} message=\"{}\">{}</{tag}>",
                    xml_escape(message),
                    xml_escape(&text)
                );
                if let Some(c) = &r.capture {
                    let _ = writeln!(
                        out,
                        "      <system-out>[[ATTACHMENT|{}]]</system-out>",
                        xml_escape(&c.display().to_string())
                    );
                }
                out.push_str("    </testcase>\n");
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The run as one JSON document.
pub fn to_json(results: &[ScenarioResult], wall: Duration) -> serde_json::Value {
    let t = Totals::of(results);
    json!({
        "total": t.total,
        "passed": t.passed,
        "failed": t.failed,
        "errors": t.errors,
        "skipped": t.skipped,
        "wall_ms": ms(wall),
        "scenarios": results.iter().map(|r| json!({
            "name": r.name,
            "location": r.location,
            "proves": r.proves,
            "verdict": r.verdict.name(),
            "steps_run": r.steps_run,
            "clock": r.clock,
            "scenario_time_ms": ms(r.scenario_time),
            "wall_ms": ms(r.wall_time),
            "capture": r.capture.as_ref().map(|c| c.display().to_string()),
            "failure": r.failure.as_ref().map(|f| json!({
                "step": f.step,
                "line": f.line,
                "action": f.action,
                "problems": f.problems,
                "first_diverging_frame": f.divergence,
            })),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::execute::Failure;

    fn result(name: &str, verdict: Verdict) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            location: "scenarios/x.toml:3".into(),
            proves: "a & b".into(),
            verdict,
            steps_run: 1,
            failure: (verdict == Verdict::Failed).then(|| Failure {
                step: 1,
                line: 9,
                action: "call ping".into(),
                problems: vec!["expected success, got timed_out: <late>".into()],
                divergence: Some("frame #2".into()),
            }),
            capture: None,
            clock: "paused",
            scenario_time: Duration::from_secs(30),
            wall_time: Duration::from_millis(5),
            skip_reason: None,
        }
    }

    #[test]
    fn junit_counts_and_escapes() {
        let rs = [
            result("ok_one", Verdict::Passed),
            result("bad_one", Verdict::Failed),
        ];
        let x = junit(&rs, Duration::from_secs(1));
        assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"0\""), "{x}");
        assert!(
            x.contains("<testcase classname=\"guestwire.x\" name=\"ok_one\""),
            "{x}"
        );
        assert!(
            x.contains("message=\"expected success, got timed_out: &lt;late&gt;\""),
            "{x}"
        );
        assert!(
            x.contains("at scenarios/x.toml:9 step 1 (call ping)"),
            "{x}"
        );
        let t = Totals::of(&rs);
        assert!(!t.ok());
        assert_eq!(to_json(&rs, Duration::ZERO)["failed"], 1);
    }
}
