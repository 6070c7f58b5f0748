//! Reading scenario files: TOML into [`Scenario`]s, then the checks serde cannot make (one
//! action per step, arguments and expectations that fit the action, names that exist). Every
//! error names the file and line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::model::{ChannelKind, Expect, Scenario, ScenarioFile, Step};

/// A scenario as loaded: where it came from, and the line of each step.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// The file (as given, or `builtin:NAME.toml`).
    pub file: String,
    /// Line of the `[[scenario]]` table.
    pub line: usize,
    /// The scenario.
    pub scenario: Scenario,
    /// Line of each step, in order.
    pub step_lines: Vec<usize>,
}

impl LoadedScenario {
    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.scenario.name
    }

    /// The steps.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.scenario.steps.iter().map(|s| s.get_ref())
    }
}

/// A scenario file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", if *line == 0 { String::new() } else { format!(":{line}") })]
pub struct LoadError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The actions a step may name, in the order the docs list them.
pub const ACTIONS: [&str; 11] = [
    "call", "wait", "vmm", "faults", "connect", "send", "recv", "close", "api", "frames", "join",
];

/// The host calls a `call` step may make.
pub const CALLS: [&str; 7] = ["ping", "exec", "read", "write", "shutdown", "info", "raw"];

/// The VMM actions a `vmm` step may take.
pub const VMM_ACTIONS: [&str; 5] = [
    "pause",
    "resume",
    "restart_guest",
    "start_guest",
    "stop_guest",
];

/// 1-based line of byte offset `at` in `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses one file's text. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<LoadedScenario>, LoadError> {
    let parsed: ScenarioFile = toml::from_str(text).map_err(|e| LoadError {
        file: file.to_string(),
        line: e.span().map_or(0, |s| line_of(text, s.start)),
        message: e.message().trim().to_string(),
    })?;
    let mut out = Vec::new();
    for spanned in parsed.scenarios {
        let line = line_of(text, spanned.span().start);
        let scenario = spanned.into_inner();
        let step_lines = scenario
            .steps
            .iter()
            .map(|s| line_of(text, s.span().start))
            .collect();
        let loaded = LoadedScenario {
            file: file.to_string(),
            line,
            scenario,
            step_lines,
        };
        check(&loaded)?;
        out.push(loaded);
    }
    if out.is_empty() {
        return Err(LoadError {
            file: file.to_string(),
            line: 0,
            message: "no [[scenario]] in this file".into(),
        });
    }
    Ok(out)
}

/// Reads and parses a file, or every `*.toml` file under a directory (sorted).
pub fn load_path(path: &Path) -> Result<Vec<LoadedScenario>, LoadError> {
    let io_err = |e: std::io::Error| LoadError {
        file: path.display().to_string(),
        line: 0,
        message: e.to_string(),
    };
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            out.extend(load_path(&f)?);
        }
        return Ok(out);
    }
    let text = std::fs::read_to_string(path).map_err(io_err)?;
    parse(&path.display().to_string(), &text)
}

/// Checks that names are unique across a suite.
pub fn check_unique(all: &[LoadedScenario]) -> Result<(), LoadError> {
    let mut seen = std::collections::BTreeMap::new();
    for s in all {
        if let Some((file, line)) = seen.insert(s.name().to_string(), (s.file.clone(), s.line)) {
            return Err(LoadError {
                file: s.file.clone(),
                line: s.line,
                message: format!(
                    "scenario name {:?} is already used at {file}:{line}",
                    s.name()
                ),
            });
        }
    }
    Ok(())
}

fn check(s: &LoadedScenario) -> Result<(), LoadError> {
    let at = |line: usize, message: String| LoadError {
        file: s.file.clone(),
        line,
        message,
    };
    let sc = &s.scenario;
    let name_ok = !sc.name.is_empty()
        && sc
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        return Err(at(
            s.line,
            format!("name {:?}: use snake_case (a-z, 0-9, _)", sc.name),
        ));
    }
    if let Some(m) = &sc.guest.loop_mode {
        m.parse::<crate::guest::LoopMode>()
            .map_err(|e| at(s.line, format!("guest.loop: {e}")))?;
    }
    if let Some(e) = &sc.guest.exec
        && e != "echo"
        && e != "real"
    {
        return Err(at(s.line, format!("guest.exec {e:?}: echo or real")));
    }
    if sc.channel.kind != ChannelKind::ChApi
        && (sc.channel.version.is_some() || sc.channel.codes.is_some())
    {
        return Err(at(
            s.line,
            "channel.version and channel.codes are for ch-api".into(),
        ));
    }
    if let Some(c) = &sc.channel.codes
        && c != "real"
        && c != "spec"
    {
        return Err(at(s.line, format!("channel.codes {c:?}: real or spec")));
    }
    let mut raw: BTreeSet<&str> = BTreeSet::new();
    let mut background: BTreeSet<&str> = BTreeSet::new();
    for (step, &line) in s.steps().zip(&s.step_lines) {
        check_step(step, sc, &mut raw, &mut background).map_err(|m| at(line, m))?;
    }
    Ok(())
}

fn actions_of(step: &Step) -> Vec<&'static str> {
    let present = [
        step.call.is_some(),
        step.wait.is_some(),
        step.vmm.is_some(),
        step.faults.is_some(),
        step.connect.is_some(),
        step.send.is_some(),
        step.recv.is_some(),
        step.close.is_some(),
        step.api.is_some(),
        step.frames.is_some(),
        step.join.is_some(),
    ];
    ACTIONS
        .iter()
        .zip(present)
        .filter_map(|(a, p)| p.then_some(*a))
        .collect()
}

/// The expectation keys that are set.
fn expect_keys(e: &Expect) -> Vec<&'static str> {
    let mut k = Vec::new();
    let mut add = |set: bool, name: &'static str| {
        if set {
            k.push(name);
        }
    };
    add(e.ok.is_some(), "ok");
    add(e.error.is_some(), "error");
    add(e.error_contains.is_some(), "error_contains");
    add(e.summary_contains.is_some(), "summary_contains");
    add(!e.reply.is_empty(), "reply");
    add(!e.reply_has.is_empty(), "reply_has");
    add(e.exit_code.is_some(), "exit_code");
    add(e.data.is_some(), "data");
    add(e.events_min.is_some(), "events_min");
    add(e.events_max.is_some(), "events_max");
    add(e.not_before.is_some(), "not_before");
    add(e.contains.is_some(), "contains");
    add(e.excludes.is_some(), "excludes");
    add(e.eof.is_some(), "eof");
    add(e.silent.is_some(), "silent");
    add(!e.frame_types.is_empty(), "frame_types");
    add(e.status.is_some(), "status");
    add(e.body_contains.is_some(), "body_contains");
    k
}

/// Which expectation keys each action accepts.
fn allowed_expect(action: &str) -> &'static [&'static str] {
    const CALL: &[&str] = &[
        "ok",
        "error",
        "error_contains",
        "summary_contains",
        "reply",
        "reply_has",
        "exit_code",
        "data",
        "events_min",
        "events_max",
        "not_before",
    ];
    match action {
        "call" | "join" => CALL,
        "connect" => &["ok", "error", "error_contains", "not_before"],
        "send" => &["ok", "error"],
        "recv" => &[
            "contains",
            "excludes",
            "eof",
            "silent",
            "frame_types",
            "not_before",
            "error",
        ],
        "api" => &["ok", "status", "body_contains", "not_before", "error"],
        _ => &[],
    }
}

/// Which argument keys each action accepts.
fn args_of(step: &Step) -> Vec<&'static str> {
    let mut k = Vec::new();
    let mut add = |set: bool, name: &'static str| {
        if set {
            k.push(name);
        }
    };
    add(step.side.is_some(), "side");
    add(step.name.is_some(), "name");
    add(step.background.is_some(), "background");
    add(step.program.is_some(), "program");
    add(step.args.is_some(), "args");
    add(step.path.is_some(), "path");
    add(step.text.is_some(), "text");
    add(step.hex.is_some(), "hex");
    add(step.json.is_some(), "json");
    add(step.mode.is_some(), "mode");
    add(step.timeout.is_some(), "timeout");
    add(step.via.is_some(), "via");
    add(step.within.is_some(), "within");
    k
}

fn allowed_args(action: &str, call: Option<&str>) -> &'static [&'static str] {
    match (action, call) {
        ("call", Some("exec")) => &[
            "name",
            "background",
            "program",
            "args",
            "timeout",
            "within",
            "via",
        ],
        ("call", Some("read")) => &["name", "background", "path", "within", "via"],
        ("call", Some("write")) => &["name", "background", "path", "text", "within", "via"],
        ("call", Some("shutdown")) => &["name", "background", "mode", "within", "via"],
        ("call", Some("raw")) => &["name", "background", "json", "within", "via"],
        ("call", _) => &["name", "background", "within", "via"],
        ("send", _) => &["text", "hex", "json", "within"],
        ("connect", _) => &["within", "side"],
        ("recv" | "join", _) => &["within"],
        ("api", _) => &["text", "within"],
        _ => &[],
    }
}

fn check_step<'a>(
    step: &'a Step,
    sc: &Scenario,
    raw: &mut BTreeSet<&'a str>,
    background: &mut BTreeSet<&'a str>,
) -> Result<(), String> {
    let actions = actions_of(step);
    let action = match actions.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "a step needs one action key: {}",
                ACTIONS.join(", ")
            ));
        }
        many => {
            return Err(format!(
                "a step has one action, this one has {}",
                many.join(" and ")
            ));
        }
    };
    let call = step.call.as_deref();
    if let Some(c) = call
        && !CALLS.contains(&c)
    {
        return Err(format!("call {c:?}: one of {}", CALLS.join(", ")));
    }
    let allowed = allowed_args(action, call);
    for a in args_of(step) {
        if !allowed.contains(&a) {
            return Err(format!("{a} does not apply to a {action} step"));
        }
    }
    if let Some(e) = &step.expect {
        let allowed = allowed_expect(action);
        for k in expect_keys(e) {
            if !allowed.contains(&k) {
                return Err(format!("expect.{k} does not apply to a {action} step"));
            }
        }
        if e.ok == Some(true) && e.error.is_some() {
            return Err("expect.ok = true contradicts expect.error".into());
        }
    }
    match action {
        "call" => {
            match call {
                Some("exec") if step.program.is_none() => return Err("exec needs program".into()),
                Some("read") if step.path.is_none() => return Err("read needs path".into()),
                Some("write") if step.path.is_none() || step.text.is_none() => {
                    return Err("write needs path and text".into());
                }
                Some("raw") if step.json.is_none() => return Err("raw needs json".into()),
                _ => {}
            }
            if let Some(via) = &step.via {
                via.parse::<crate::io::Endpoint>()
                    .map_err(|e| format!("via {via:?}: {e}"))?;
            }
            if step.background == Some(true) {
                let Some(n) = step.name.as_deref() else {
                    return Err("a background call needs a name".into());
                };
                if !background.insert(n) {
                    return Err(format!("background call {n:?} is already named"));
                }
                if step.expect.is_some() {
                    return Err("a background call's expect goes on its join step".into());
                }
            }
        }
        "vmm" => {
            let v = step.vmm.as_deref().unwrap_or_default();
            if !VMM_ACTIONS.contains(&v) {
                return Err(format!("vmm {v:?}: one of {}", VMM_ACTIONS.join(", ")));
            }
            if matches!(v, "pause" | "resume") && sc.channel.kind != ChannelKind::Hvsock {
                return Err(format!(
                    "vmm {v:?} is for hvsock channels (ch-api: use api = \"PUT vm.{v}\")"
                ));
            }
        }
        "connect" => {
            match step.side.as_deref() {
                None | Some("host") => {}
                Some("guest") => {
                    if sc.channel.kind != ChannelKind::Serial || sc.guest.running != Some(false) {
                        return Err(
                            "side = \"guest\" needs a serial channel with guest.running = false \
                             (the scenario plays the guest)"
                                .into(),
                        );
                    }
                }
                Some(other) => return Err(format!("side {other:?}: host or guest")),
            }
            let n = step.connect.as_deref().unwrap_or_default();
            if !raw.insert(n) {
                return Err(format!("raw connection {n:?} is already open"));
            }
        }
        "send" | "recv" | "close" => {
            let n = step
                .send
                .as_deref()
                .or(step.recv.as_deref())
                .or(step.close.as_deref())
                .unwrap_or_default();
            if !raw.contains(n) {
                return Err(format!(
                    "no raw connection {n:?} (open it with connect = {n:?})"
                ));
            }
            if action == "close" {
                raw.remove(n);
            }
            if action == "send" {
                let given = [&step.text, &step.hex, &step.json]
                    .iter()
                    .filter(|x| x.is_some())
                    .count();
                if given != 1 {
                    return Err("send needs exactly one of text, hex, json".into());
                }
                if let Some(h) = &step.hex {
                    crate::wire::hex::from_hex(h).map_err(|e| format!("hex: {e}"))?;
                }
            }
        }
        "api" => {
            if sc.channel.kind != ChannelKind::ChApi {
                return Err("api steps need a ch-api channel".into());
            }
            let a = step.api.as_deref().unwrap_or_default();
            let ok = a.split_once(' ').is_some_and(|(m, p)| {
                matches!(m, "GET" | "PUT" | "POST" | "PATCH" | "DELETE") && !p.is_empty()
            });
            if !ok {
                return Err(format!(
                    "api {a:?}: \"METHOD endpoint\", e.g. \"PUT vm.boot\""
                ));
            }
        }
        "join" => {
            let n = step.join.as_deref().unwrap_or_default();
            if !background.remove(n) {
                return Err(format!("no background call {n:?} to join"));
            }
        }
        _ => {}
    }
    Ok(())
}
