//! `guestwire test` through the real binary: the built-in suite passes, a failing scenario is
//! reported with its file, line, first diverging frame and a capture that decodes, bad files are
//! usage errors with file:line, partitions shard the suite exactly, JUnit and JSON reports, and
//! conformance runs against real implementations (qemu-ga, the example agent and host client).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use support::{BIN, example};

fn gw(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run guestwire")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `N scenarios: P passed, F failed, …` → (N, P, F).
fn totals(stdout: &str) -> (usize, usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.contains(" scenarios: "))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1], nums[2])
}

#[test]
fn the_built_in_suite_passes_and_writes_junit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("reports/junit.xml");
    let o = gw(
        &["test", "--junit", junit.to_str().expect("utf-8")],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let (n, passed, failed) = totals(&out);
    assert!(n >= 40, "the built-in suite has at least 40 scenarios: {n}");
    assert_eq!((passed, failed), (n, 0), "{out}");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        xml.contains(&format!("tests=\"{n}\" failures=\"0\" errors=\"0\"")),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), n);
    // Passing scenarios leave no capture behind.
    assert!(!dir.path().join("guestwire-results").exists());
}

const FAILING: &str = r#"
[[scenario]]
name = "expects_busy_but_the_port_is_free"
proves = "nothing: this one must fail"
protocol = "quantix"
channel = { kind = "serial" }

[[scenario.step]]
call = "ping"

[[scenario.step]]
call = "ping"
expect = { error = "busy" }
"#;

#[test]
fn a_failing_scenario_names_its_step_and_first_frame_and_keeps_a_capture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mine.toml");
    std::fs::write(&file, FAILING).expect("write");
    let junit = dir.path().join("j.xml");
    let o = gw(
        &["test", "mine.toml", "--junit", "j.xml", "--out", "results"],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("FAIL  expects_busy_but_the_port_is_free"),
        "{out}"
    );
    assert!(out.contains("at mine.toml:11 step 2 (call ping)"), "{out}");
    assert!(out.contains("expected busy, but it succeeded"), "{out}");
    assert!(out.contains("first diverging frame: frame #"), "{out}");
    let capture = dir
        .path()
        .join("results/expects_busy_but_the_port_is_free.pcap");
    assert!(
        out.contains("results/expects_busy_but_the_port_is_free.pcap"),
        "{out}"
    );
    let d = gw(&["decode", capture.to_str().expect("utf-8")], dir.path());
    let (decoded, derr) = text(&d);
    assert_eq!(d.status.code(), Some(0), "{decoded}\n{derr}");
    assert_eq!(decoded.matches("←  pong").count(), 2, "{decoded}");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<failure message=\"expected busy, but it succeeded"),
        "{xml}"
    );
}

#[test]
fn bad_scenario_files_are_usage_errors_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[[scenario]]\nname = \"x\"\nproves = \"x\"\nprotocol = \"quantix\"\nchannel = { kind = \"serial\" }\ncolour = \"red\"\n",
            "bad.toml:6",
            "unknown field `colour`",
        ),
        (
            "[[scenario]]\nname = \"x\"\nproves = \"x\"\nprotocol = \"quantix\"\nchannel = { kind = \"serial\", faults = [\"latency:latency=fast\"] }\n",
            "bad.toml:5",
            "latency",
        ),
        (
            "[[scenario]]\nname = \"x\"\nproves = \"x\"\nprotocol = \"quantix\"\nchannel = { kind = \"serial\" }\n\n[[scenario.step]]\ncall = \"ping\"\nwait = \"1s\"\n",
            "bad.toml:7",
            "a step has one action",
        ),
        (
            "[[scenario]]\nname = \"x\"\nproves = \"x\"\nprotocol = \"quantix\"\nchannel = { kind = \"serial\" }\n\n[[scenario.step]]\nsend = \"nobody\"\ntext = \"hi\"\n",
            "bad.toml:7",
            "no raw connection \"nobody\"",
        ),
    ];
    for (body, at, says) in cases {
        std::fs::write(dir.path().join("bad.toml"), body).expect("write");
        let o = gw(&["test", "bad.toml"], dir.path());
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{body}\n{out}\n{err}");
        assert!(
            err.contains(at) && err.contains(says),
            "{at} / {says}:\n{err}"
        );
    }
}

fn listed(args: &[&str]) -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = gw(args, dir.path());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    out.lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[test]
fn partitions_shard_the_suite_exactly_and_filters_select() {
    let all = listed(&["test", "--list"]);
    let mut union = BTreeSet::new();
    let mut sizes = Vec::new();
    for k in 1..=3 {
        let shard = listed(&["test", "--list", "--partition", &format!("{k}/3")]);
        assert!(union.is_disjoint(&shard), "shards overlap");
        sizes.push(shard.len());
        union.extend(shard);
    }
    assert_eq!(union, all);
    assert!(
        sizes.iter().max().expect("3") - sizes.iter().min().expect("3") <= 1,
        "{sizes:?}"
    );
    let qga = listed(&["test", "--list", "--filter", "protocol:qga"]);
    assert!(
        !qga.is_empty() && qga.iter().all(|n| n.starts_with("qga_")),
        "{qga:?}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let o = gw(&["test", "--filter", "no-such-scenario"], dir.path());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn json_report_lists_every_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = gw(&["test", "--json", "--filter", "tag:smoke"], dir.path());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON document");
    let n = v["total"].as_u64().expect("total");
    assert!(n >= 5, "{v}");
    assert_eq!(v["passed"], n);
    let scenarios = v["scenarios"].as_array().expect("scenarios");
    assert!(
        scenarios
            .iter()
            .all(|s| s["verdict"] == "passed" && s["clock"] == "paused"),
        "{v}"
    );
}

fn qemu_ga() -> Option<&'static str> {
    let path = "/usr/sbin/qemu-ga";
    if Path::new(path).exists() {
        return Some(path);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI installs qemu-guest-agent"
    );
    eprintln!("SKIPPED: {path} not found (Debian package qemu-guest-agent)");
    None
}

#[test]
fn the_qga_conformance_scenarios_pass_against_the_real_qemu_ga() {
    let Some(qga) = qemu_ga() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let cmd = format!(
        "{qga} -m virtio-serial -p {{device}} -t {{dir}} -b guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,guest-set-time,guest-fsfreeze-freeze,guest-set-user-password"
    );
    let o = gw(
        &["test", "--protocol", "qga", "--guest-cmd", &cmd],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let (n, passed, _) = totals(&out);
    assert!(n >= 5 && passed == n, "{out}");
    assert!(
        out.contains("real clock"),
        "a process runs in real time: {out}"
    );
}

#[test]
fn the_example_agent_and_host_client_pass_their_conformance_scenarios() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = example("quantix_agent");
    let o = gw(
        &[
            "test",
            "--protocol",
            "quantix",
            "--guest-cmd",
            &format!("{} {{device}}", agent.display()),
        ],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(totals(&out).0 >= 2, "{out}");
    let host = example("quantix_host");
    let o = gw(
        &[
            "test",
            "--protocol",
            "quantix",
            "--host-cmd",
            &format!("{} {{socket}} {{op}} {{args}}", host.display()),
        ],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(totals(&out).0 >= 5, "{out}");
}

#[test]
fn a_host_client_that_never_fails_is_caught() {
    // `true` claims success for everything: the scenarios that need a failure must fail.
    let dir = tempfile::tempdir().expect("tempdir");
    let o = gw(
        &["test", "--protocol", "quantix", "--host-cmd", "true"],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("FAIL  host_client_gives_up_on_a_lost_reply"),
        "{out}"
    );
    assert!(
        out.contains("FAIL  host_client_pings_the_agent"),
        "a ping that never happened has no frames: {out}"
    );
}
