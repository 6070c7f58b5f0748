//! Running one scenario: its world, a capture of every host connection, the steps in order with
//! their deadlines, the verdict, and — when it fails — the kept capture and the first frame
//! where it diverged.
//!
//! Built-in peers run in-process on a current-thread runtime under tokio's paused clock, so a
//! 30 s protocol timeout takes no wall time; a scenario with a user's command (agent or host
//! client) runs in real time. A wall-clock watchdog ends a scenario that stops making progress.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::expect::{self, Observed};
use super::host_tap::HostTap;
use super::load::LoadedScenario;
use super::model::{ConformanceSide, Step};
use super::raw::RawConn;
use super::world::{Overrides, World, expand};
use super::{api, call, frames};
use crate::capture::CaptureWriter;
use crate::host::DialOptions;
use crate::io::Endpoint;
use crate::tap::capture_sink::{CaptureSink, GuestAddr};
use crate::tap::inline::InlineTap;
use crate::wire::protocol::Protocol;

/// A step's deadline when it gives none.
pub const DEFAULT_STEP_DEADLINE: Duration = Duration::from_secs(60);

/// A `recv` step's deadline when it gives none.
pub const DEFAULT_RECV_DEADLINE: Duration = Duration::from_secs(2);

/// A scenario's deadline when it gives none (scenario time).
pub const DEFAULT_SCENARIO_DEADLINE: Duration = Duration::from_secs(300);

/// Wall-clock time a paused-clock scenario may take before the watchdog calls it hung.
pub const PAUSED_WALL_LIMIT: Duration = Duration::from_secs(60);

/// How a scenario's run came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every step held.
    Passed,
    /// A step did not hold.
    Failed,
    /// The world could not be set up, or the run hung.
    Error,
    /// Not run here (a conformance run for the other side, or a partition).
    Skipped,
}

impl Verdict {
    /// `passed`, `failed`, `error`, `skipped`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }
}

/// Where and why a scenario failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// 1-based step number (0: setup).
    pub step: usize,
    /// The step's line in the file.
    pub line: usize,
    /// The step's action, e.g. `call ping`.
    pub action: String,
    /// What did not hold.
    pub problems: Vec<String>,
    /// The first frame where it diverged.
    pub divergence: Option<String>,
}

/// A scenario's result.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub name: String,
    /// Its file and line.
    pub location: String,
    /// What it proves.
    pub proves: String,
    /// How it came out.
    pub verdict: Verdict,
    /// Steps that ran.
    pub steps_run: usize,
    /// Why it failed.
    pub failure: Option<Failure>,
    /// The capture kept for a failing scenario (or with `keep_captures`).
    pub capture: Option<PathBuf>,
    /// `paused` or `real`.
    pub clock: &'static str,
    /// Time in the scenario's clock.
    pub scenario_time: Duration,
    /// Wall time.
    pub wall_time: Duration,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
}

/// How scenarios run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Conformance overrides.
    pub overrides: Overrides,
    /// Where failing scenarios' captures are kept.
    pub out_dir: PathBuf,
    /// Keep every capture, not only failing ones.
    pub keep_captures: bool,
}

/// Whether the scenario runs with real processes (and so in real time).
pub fn uses_processes(s: &LoadedScenario, over: &Overrides) -> bool {
    let sc = &s.scenario;
    let conf = sc.conformance;
    sc.guest.command.is_some()
        || sc.host.command.is_some()
        || (conf == Some(ConformanceSide::Guest) && over.guest_cmd.is_some())
        || (conf == Some(ConformanceSide::Host) && over.host_cmd.is_some())
}

/// Runs one scenario to its verdict on the calling thread (with its own runtime and a watchdog
/// thread).
pub fn run_scenario(s: &LoadedScenario, opts: &RunOptions) -> ScenarioResult {
    let real = uses_processes(s, &opts.overrides);
    let wall_start = std::time::Instant::now();
    let base = ScenarioResult {
        name: s.name().to_string(),
        location: format!("{}:{}", s.file, s.line),
        proves: s.scenario.proves.clone(),
        verdict: Verdict::Error,
        steps_run: 0,
        failure: None,
        capture: None,
        clock: if real { "real" } else { "paused" },
        scenario_time: Duration::ZERO,
        wall_time: Duration::ZERO,
        skip_reason: None,
    };
    let setup_error = |msg: String| ScenarioResult {
        failure: Some(Failure {
            step: 0,
            line: s.line,
            action: "setup".into(),
            problems: vec![msg],
            divergence: None,
        }),
        wall_time: wall_start.elapsed(),
        ..base.clone()
    };
    let dir = match tempfile::Builder::new()
        .prefix(&format!("gw-{}-", &s.name()[..s.name().len().min(24)]))
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => return setup_error(format!("cannot make a directory: {e}")),
    };
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if !real {
        builder.start_paused(true);
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => return setup_error(format!("cannot start a runtime: {e}")),
    };
    let deadline = s
        .scenario
        .deadline
        .map_or(DEFAULT_SCENARIO_DEADLINE, |d| d.0);
    let wall_limit = if real {
        deadline + Duration::from_secs(30)
    } else {
        PAUSED_WALL_LIMIT
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let scenario = s.clone();
    let run_opts = opts.clone();
    let dir_path = dir.path().to_path_buf();
    let worker = std::thread::Builder::new()
        .name(format!("scenario {}", s.name()))
        .spawn(move || {
            let out = runtime.block_on(async {
                let started = Instant::now();
                let run = run_steps(&scenario, &run_opts, &dir_path);
                let r = tokio::time::timeout(deadline, run).await;
                (r, started.elapsed())
            });
            // Tasks still running (a hung peer) are dropped with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(1));
            let _ = tx.send(out);
        });
    if let Err(e) = worker {
        return setup_error(format!("cannot start a thread: {e}"));
    }
    let mut result = match rx.recv_timeout(wall_limit) {
        Err(_) => {
            // The worker is abandoned (its runtime owns nothing outside the temp dir, which is
            // leaked rather than removed under it).
            let _ = dir.keep();
            return setup_error(format!(
                "no verdict after {wall_limit:?} of wall time: the scenario hung"
            ));
        }
        Ok((Err(_), t)) => ScenarioResult {
            scenario_time: t,
            ..setup_error(format!(
                "the scenario ran over its deadline of {deadline:?}"
            ))
        },
        Ok((Ok(done), t)) => ScenarioResult {
            verdict: done.verdict,
            steps_run: done.steps_run,
            failure: done.failure,
            scenario_time: t,
            ..base.clone()
        },
    };
    result.wall_time = wall_start.elapsed();
    let capture = dir.path().join("capture.pcap");
    if capture.exists() && (result.verdict != Verdict::Passed || opts.keep_captures) {
        let kept = opts.out_dir.join(format!("{}.pcap", s.name()));
        let moved = std::fs::create_dir_all(&opts.out_dir)
            .and_then(|()| std::fs::copy(&capture, &kept).map(|_| ()));
        if moved.is_ok() {
            result.capture = Some(kept);
        }
    }
    result
}

/// What the steps came to.
struct StepsDone {
    verdict: Verdict,
    steps_run: usize,
    failure: Option<Failure>,
}

/// The state of a scenario's run.
struct Run<'a> {
    s: &'a LoadedScenario,
    world: &'a World,
    protocol: Protocol,
    tap: InlineTap,
    capture: PathBuf,
    /// Capture time of `clock_zero` (for naming frames by step).
    base: SystemTime,
    clock_zero: Instant,
    raws: HashMap<String, RawConn>,
    background: HashMap<String, JoinHandle<Observed>>,
    host_cmd: Option<String>,
    /// What the user's host client dials (the relay in front of the channel).
    host_cmd_endpoint: Option<Endpoint>,
}

async fn run_steps(s: &LoadedScenario, opts: &RunOptions, dir: &Path) -> StepsDone {
    let fail_setup = |msg: String| StepsDone {
        verdict: Verdict::Error,
        steps_run: 0,
        failure: Some(Failure {
            step: 0,
            line: s.line,
            action: "setup".into(),
            problems: vec![msg],
            divergence: None,
        }),
    };
    let sc = &s.scenario;
    let mut over = opts.overrides.clone();
    if sc.conformance != Some(ConformanceSide::Guest) {
        over.guest_cmd = None;
    }
    let world = match World::start(sc, dir, &over).await {
        Ok(w) => w,
        Err(e) => return fail_setup(e.to_string()),
    };
    let capture = dir.join("capture.pcap");
    let writer = match CaptureWriter::create(&capture) {
        Ok(w) => w,
        Err(e) => {
            world.stop().await;
            return fail_setup(format!("cannot write the capture: {e}"));
        }
    };
    let base = SystemTime::now();
    let guest = GuestAddr {
        cid: u64::from(world.cid),
        port: world.guest_port,
    };
    let sink: Arc<dyn crate::tap::proxy::TapSink> = Arc::new(CaptureSink::new(writer, guest, base));
    let tap = InlineTap::new(sink.clone());
    let host_cmd = match sc.conformance {
        Some(ConformanceSide::Host) => opts.overrides.host_cmd.clone(),
        _ => None,
    }
    .or_else(|| sc.host.command.clone());
    let host_tap = match &host_cmd {
        Some(_) => match HostTap::start(
            dir.join("host-tap.sock"),
            world.host_socket.clone(),
            &world.host_endpoint,
            sink,
        )
        .await
        {
            Ok(t) => Some(t),
            Err(e) => {
                world.stop().await;
                return fail_setup(format!("cannot start the host client's relay: {e}"));
            }
        },
        None => None,
    };
    let mut run = Run {
        s,
        world: &world,
        protocol: sc.protocol.clone(),
        tap,
        capture,
        base,
        clock_zero: Instant::now(),
        raws: HashMap::new(),
        background: HashMap::new(),
        host_cmd,
        host_cmd_endpoint: host_tap.as_ref().map(|t| t.endpoint.clone()),
    };
    let mut done = StepsDone {
        verdict: Verdict::Passed,
        steps_run: 0,
        failure: None,
    };
    for (i, (step, &line)) in s.steps().zip(&s.step_lines).enumerate() {
        let since_ns = run.now_ns();
        let problems = run.step(step).await;
        done.steps_run = i + 1;
        if !problems.is_empty() {
            let divergence = frames::read_frames(&run.capture, &run.protocol)
                .ok()
                .map(|f| frames::first_divergence(&f, since_ns));
            done.verdict = Verdict::Failed;
            done.failure = Some(Failure {
                step: i + 1,
                line,
                action: describe(step),
                problems,
                divergence,
            });
            break;
        }
    }
    for (_, h) in run.background.drain() {
        h.abort();
    }
    for (_, c) in run.raws.drain() {
        c.close().await;
    }
    drop(run);
    if let Some(t) = host_tap {
        t.stop().await;
    }
    world.stop().await;
    done
}

/// A step's action in a few words: `call ping`, `vmm pause`, `recv c1`.
pub fn describe(step: &Step) -> String {
    let pairs: [(&str, Option<String>); 11] = [
        ("call", step.call.clone()),
        ("wait", step.wait.map(|d| format!("{:?}", d.0))),
        ("vmm", step.vmm.clone()),
        (
            "faults",
            step.faults.as_ref().map(|f| {
                f.iter()
                    .map(|f| f.0.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        ),
        ("connect", step.connect.clone()),
        ("send", step.send.clone()),
        ("recv", step.recv.clone()),
        ("close", step.close.clone()),
        ("api", step.api.clone()),
        ("frames", step.frames.as_ref().map(|_| String::new())),
        ("join", step.join.clone()),
    ];
    pairs
        .into_iter()
        .find_map(|(k, v)| v.map(|v| format!("{k} {v}").trim_end().to_string()))
        .unwrap_or_else(|| "?".into())
}

impl Run<'_> {
    fn now_ns(&self) -> u64 {
        let at = self.base + self.clock_zero.elapsed();
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    fn within(step: &Step, default: Duration) -> Duration {
        step.within.map_or(default, |d| d.0)
    }

    fn dial_options(&self) -> DialOptions {
        let mut o = call::dial_options(&self.s.scenario.host, &self.protocol);
        o.hooks.tap = Some(self.tap.clone());
        o
    }

    /// The endpoint a call dials, and its options.
    fn call_target(&self, step: &Step) -> (Endpoint, DialOptions) {
        let mut opts = self.dial_options();
        let endpoint = match &step.via {
            Some(via) => {
                let text = expand(via, &self.world.dir);
                text.parse()
                    .unwrap_or_else(|_| self.world.host_endpoint.clone())
            }
            None => self.world.host_endpoint.clone(),
        };
        if matches!(endpoint, Endpoint::Vsock { .. }) {
            // Never the real AF_VSOCK: the modelled host has the scenario's channel only, which
            // offers no vhost-vsock device (a hybrid-only VMM), so connect(2) says ENODEV.
            opts.hooks.vsock = Some(Arc::new(|_cid, _port| {
                std::io::Error::from_raw_os_error(nix::errno::Errno::ENODEV as i32)
            }));
        }
        (endpoint, opts)
    }

    async fn call(&self, step: &Step) -> Observed {
        let op = call::op_of(step);
        let within = Self::within(step, DEFAULT_STEP_DEADLINE);
        let (endpoint, opts) = self.call_target(step);
        match &self.host_cmd {
            Some(template) => {
                let endpoint = self.host_cmd_endpoint.clone().unwrap_or(endpoint);
                let line = call::host_command_line(template, &endpoint, &self.protocol, &op);
                call::command(line, within).await
            }
            None => call::builtin(self.protocol.clone(), endpoint, opts, op, within).await,
        }
    }

    fn spawn_call(&self, step: &Step) -> JoinHandle<Observed> {
        let op = call::op_of(step);
        let within = Self::within(step, DEFAULT_STEP_DEADLINE);
        let (endpoint, opts) = self.call_target(step);
        match &self.host_cmd {
            Some(template) => {
                let endpoint = self.host_cmd_endpoint.clone().unwrap_or(endpoint);
                let line = call::host_command_line(template, &endpoint, &self.protocol, &op);
                tokio::spawn(call::command(line, within))
            }
            None => tokio::spawn(call::builtin(
                self.protocol.clone(),
                endpoint,
                opts,
                op,
                within,
            )),
        }
    }

    /// Runs one step; returns what did not hold.
    async fn step(&mut self, step: &Step) -> Vec<String> {
        let empty = super::model::Expect::default();
        let expect = step.expect.as_ref().unwrap_or(&empty);
        if step.call.is_some() {
            if step.background == Some(true) {
                let name = step.name.clone().unwrap_or_default();
                let handle = self.spawn_call(step);
                self.background.insert(name, handle);
                // Let it start before the next step.
                tokio::task::yield_now().await;
                return Vec::new();
            }
            let o = self.call(step).await;
            return expect::check(expect, &o, true);
        }
        if let Some(name) = &step.join {
            let Some(handle) = self.background.remove(name) else {
                return vec![format!("no background call {name:?}")];
            };
            let within = Self::within(step, DEFAULT_STEP_DEADLINE);
            return match tokio::time::timeout(within, handle).await {
                Ok(Ok(o)) => expect::check(expect, &o, true),
                Ok(Err(e)) => vec![format!("the background call failed to run: {e}")],
                Err(_) => vec![format!(
                    "the background call had no outcome within {within:?}"
                )],
            };
        }
        if let Some(d) = step.wait {
            tokio::time::sleep(d.0).await;
            return Vec::new();
        }
        if let Some(action) = &step.vmm {
            return match self.world.vmm_action(action) {
                Ok(()) => {
                    tokio::task::yield_now().await;
                    Vec::new()
                }
                Err(e) => vec![e],
            };
        }
        if let Some(faults) = &step.faults {
            let specs = faults.iter().map(|f| f.0.clone()).collect();
            return match self.world.set_faults(specs) {
                Ok(()) => Vec::new(),
                Err(e) => vec![e],
            };
        }
        if let Some(name) = &step.connect {
            return self.connect(name, step, expect).await;
        }
        if let Some(name) = &step.send {
            let bytes = match self.send_bytes(step) {
                Ok(b) => b,
                Err(e) => return vec![e],
            };
            let Some(conn) = self.raws.get_mut(name) else {
                return vec![format!("no raw connection {name:?}")];
            };
            let o = conn
                .send(&bytes, Self::within(step, DEFAULT_STEP_DEADLINE))
                .await;
            // Give the peer its turn to read this write on its own (split writes stay split).
            tokio::task::yield_now().await;
            return expect::check(expect, &o, true);
        }
        if let Some(name) = &step.recv {
            let protocol = self.protocol.clone();
            let Some(conn) = self.raws.get_mut(name) else {
                return vec![format!("no raw connection {name:?}")];
            };
            let within = Self::within(step, DEFAULT_RECV_DEADLINE);
            let (o, mut bad) = conn.recv(expect, &protocol, within).await;
            if let Some(d) = expect.not_before
                && o.elapsed < d.0
            {
                bad.push(format!(
                    "expected it to take at least {:?}, it took {:?}",
                    d.0, o.elapsed
                ));
            }
            return bad;
        }
        if let Some(name) = &step.close {
            if let Some(conn) = self.raws.remove(name) {
                conn.close().await;
            }
            tokio::task::yield_now().await;
            return Vec::new();
        }
        if let Some(a) = &step.api {
            let Some(socket) = &self.world.api_socket else {
                return vec!["no API socket on this channel".into()];
            };
            let body = step.text.as_deref().map(|b| expand(b, &self.world.dir));
            let within = Self::within(step, DEFAULT_STEP_DEADLINE);
            let o = api::request(socket, a, body.as_deref(), within).await;
            if expect.status.is_some() && expect.ok.is_none() && expect.error.is_none() {
                // An expected status says it all: a 500 can be the expected answer.
                let mut bad = expect::check(
                    expect,
                    &Observed {
                        ok: true,
                        ..o.clone()
                    },
                    true,
                );
                bad.retain(|b| !b.starts_with("expected success"));
                return bad;
            }
            return expect::check(expect, &o, true);
        }
        if let Some(check) = &step.frames {
            return match frames::read_frames(&self.capture, &self.protocol) {
                Ok(f) => frames::check(&f, check),
                Err(e) => vec![format!("cannot read the capture: {e}")],
            };
        }
        vec!["a step with no action".into()]
    }

    async fn connect(
        &mut self,
        name: &str,
        step: &Step,
        expect: &super::model::Expect,
    ) -> Vec<String> {
        let within = Self::within(step, Duration::from_secs(5));
        let start = Instant::now();
        if step.side.as_deref() == Some("guest") {
            let o = match self.world.open_guest() {
                Ok(stream) => {
                    let conn = RawConn::reading(stream, crate::wire::Direction::ToGuest);
                    self.raws.insert(name.to_string(), conn);
                    Observed {
                        ok: true,
                        ..Observed::default()
                    }
                }
                Err(e) => Observed {
                    error_kind: Some("guest_open".into()),
                    error_message: Some(e),
                    ..Observed::default()
                },
            };
            tokio::task::yield_now().await;
            return expect::check(expect, &o, true);
        }
        let socket = self.world.host_socket.clone();
        let r = crate::io::connect_unix(&socket, within).await;
        let o = match r {
            Ok(s) => {
                let stream = self
                    .tap
                    .wrap(Box::new(s), &format!("unix:{}", socket.display()));
                self.raws.insert(name.to_string(), RawConn::new(stream));
                Observed {
                    ok: true,
                    elapsed: start.elapsed(),
                    ..Observed::default()
                }
            }
            Err(e) => Observed {
                ok: false,
                error_kind: Some(e.kind().to_string()),
                error_message: Some(e.to_string()),
                elapsed: start.elapsed(),
                ..Observed::default()
            },
        };
        tokio::task::yield_now().await;
        expect::check(expect, &o, true)
    }

    fn send_bytes(&self, step: &Step) -> Result<Vec<u8>, String> {
        if let Some(t) = &step.text {
            return Ok(t.clone().into_bytes());
        }
        if let Some(h) = &step.hex {
            return crate::wire::hex::from_hex(h).map_err(|e| format!("hex: {e}"));
        }
        if let Some(j) = &step.json {
            let v: serde_json::Value = serde_json::from_str(j).map_err(|e| format!("json: {e}"))?;
            return match self.protocol {
                Protocol::Qga | Protocol::Raw => Ok(j.clone().into_bytes()),
                _ => crate::replay::codec::encode(&self.protocol, "message", &v)
                    .map(|b| b.to_vec())
                    .map_err(|e| e.to_string()),
            };
        }
        Err("send needs text, hex or json".into())
    }
}
