//! The ch-api state machine as a table: every endpoint × every state (no VM, Created, Running,
//! Paused, Shutdown) × both code modes, with the status, the body's shape, the state afterwards
//! and the events, through the pure core with an in-memory file system for snapshots.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::api::{ChApi, ChApiConfig, Effect, EffectFailure, Response, Step};
use super::codes::{ChVersion, CodeMode, Endpoint};
use super::config::VmConfig;
use super::routes::Request;
use super::snapshot::{self, SnapshotFiles};
use super::state::{Event, VmState};

const CONFIG: &str = r#"{"payload":{"kernel":"/vmlinux"},"vsock":{"cid":3,"socket":"/run/v.sock"},"disks":[{"path":"/d"}]}"#;
const SNAP_DIR: &str = "/snap";
const SNAPSHOT: &str = r#"{"destination_url":"file:///snap"}"#;
const RESTORE: &str = r#"{"source_url":"file:///snap"}"#;

/// Snapshot directories and their files, for the effects.
#[derive(Default)]
struct Fs {
    dirs: HashSet<PathBuf>,
    files: HashMap<PathBuf, SnapshotFiles>,
}

impl Fs {
    fn with_snapshot() -> Self {
        let config = VmConfig::parse(CONFIG.as_bytes()).unwrap();
        let mut fs = Self::default();
        fs.dirs.insert(PathBuf::from(SNAP_DIR));
        fs.files.insert(
            PathBuf::from(SNAP_DIR),
            snapshot::encode(&config, VmState::Paused, &serde_json::json!({})),
        );
        fs
    }

    fn perform(
        &mut self,
        effects: Vec<Effect>,
        events: &mut Vec<Event>,
    ) -> Result<Option<SnapshotFiles>, EffectFailure> {
        let mut read = None;
        for effect in effects {
            match effect {
                Effect::Notify(e) => events.push(e),
                Effect::WriteSnapshot { dir, files } => {
                    if !self.dirs.contains(&dir) {
                        return Err(EffectFailure::new("Destination is not a directory"));
                    }
                    self.files.insert(dir, files);
                }
                Effect::ReadSnapshot { dir } => match self.files.get(&dir) {
                    Some(f) => read = Some(f.clone()),
                    None => {
                        return Err(EffectFailure::new("No such file or directory (os error 2)"));
                    }
                },
            }
        }
        Ok(read)
    }
}

/// Runs one request to its end: the response (`None`: held) and the events it caused.
fn drive(
    api: &mut ChApi,
    fs: &mut Fs,
    method: &str,
    path: &str,
    body: &str,
) -> (Option<Response>, Vec<Event>) {
    let mut events = Vec::new();
    let mut step = api.handle(&Request::new(method, path, body.as_bytes()));
    for _ in 0..4 {
        match step {
            Step::Reply(r) => return (Some(r), events),
            Step::Hold => return (None, events),
            Step::Effects(effects) => {
                let result = fs.perform(effects, &mut events);
                step = api.finish(result);
            }
        }
    }
    panic!("too many effect rounds");
}

fn call(api: &mut ChApi, fs: &mut Fs, endpoint: Endpoint, body: &str) -> Response {
    let path = format!("/api/v1/{}", endpoint.name());
    drive(api, fs, endpoint.method(), &path, body)
        .0
        .expect("a reply")
}

fn api_in(state: Option<VmState>, codes: CodeMode, version: ChVersion) -> ChApi {
    let mut api = ChApi::new(ChApiConfig {
        codes,
        version,
        pid: 42,
        ..ChApiConfig::default()
    });
    let mut fs = Fs::default();
    let steps: &[Endpoint] = match state {
        None => &[],
        Some(VmState::Created) => &[Endpoint::Create],
        Some(VmState::Running) => &[Endpoint::Create, Endpoint::Boot],
        Some(VmState::Paused) => &[Endpoint::Create, Endpoint::Boot, Endpoint::Pause],
        Some(VmState::Shutdown) => &[Endpoint::Create, Endpoint::Boot, Endpoint::Shutdown],
    };
    for e in steps {
        let body = if *e == Endpoint::Create { CONFIG } else { "" };
        let r = call(&mut api, &mut fs, *e, body);
        assert!(r.status < 300, "setting up {state:?}: {e} → {}", r.status);
    }
    assert_eq!(api.state(), state);
    api
}

fn body_for(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Create => CONFIG,
        Endpoint::Snapshot => SNAPSHOT,
        Endpoint::Restore => RESTORE,
        _ => "",
    }
}

/// What a body must look like.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Empty,
    /// A JSON object with these keys (and no others).
    Keys(&'static [&'static str]),
    /// A JSON array of strings starting "Error from API" and ending with this.
    Chain(&'static str),
}

/// The expected cell: real status, spec status, shape, state afterwards (`Same` = unchanged),
/// event names.
struct Cell {
    real: u16,
    spec: u16,
    shape: Shape,
    after: Option<Option<VmState>>,
    events: &'static [&'static str],
}

const PING: &[&str] = &["build_version", "version", "pid", "features"];
const INFO: &[&str] = &["config", "state", "memory_actual_size"];
const INFO_BOOTED: &[&str] = &["config", "state", "memory_actual_size", "device_tree"];
const COUNTERS: &[&str] = &["_disk0"];

fn ok(status: u16, after: Option<Option<VmState>>, events: &'static [&'static str]) -> Cell {
    Cell {
        real: status,
        spec: status,
        shape: Shape::Empty,
        after,
        events,
    }
}

fn err(real: u16, spec: u16, last: &'static str) -> Cell {
    Cell {
        real,
        spec,
        shape: Shape::Chain(last),
        after: None,
        events: &[],
    }
}

fn expected(endpoint: Endpoint, state: Option<VmState>) -> Cell {
    use VmState::{Created, Paused, Running, Shutdown};
    let not_running = "VM is not running";
    let booted = matches!(state, Some(Running | Paused));
    let down: &'static [&'static str] = if booted { &["vsock_down"] } else { &[] };
    match (endpoint, state) {
        (Endpoint::VmmPing, _) => Cell {
            shape: Shape::Keys(PING),
            ..ok(200, None, &[])
        },
        (Endpoint::VmmShutdown, _) => Cell {
            real: 200,
            spec: 204,
            shape: Shape::Empty,
            after: Some(None),
            events: if booted {
                &["vsock_down", "vmm_shutdown"]
            } else {
                &["vmm_shutdown"]
            },
        },
        (Endpoint::Create, None) => ok(204, Some(Some(Created)), &[]),
        (Endpoint::Create, Some(_)) => err(500, 409, "VM is already created"),
        (Endpoint::Boot, None) => err(500, 404, "VM config is missing"),
        (Endpoint::Boot, Some(Created | Shutdown)) => ok(204, Some(Some(Running)), &["vsock_up"]),
        (Endpoint::Boot, Some(Running)) => {
            err(500, 405, "invalid VM state transition: Running to Running")
        }
        (Endpoint::Boot, Some(Paused)) => ok(204, Some(Some(Running)), &["resumed"]),
        (Endpoint::Pause, None) => err(500, 404, not_running),
        (Endpoint::Pause, Some(Created | Shutdown)) => err(500, 405, not_running),
        (Endpoint::Pause, Some(Running)) => ok(204, Some(Some(Paused)), &["paused"]),
        (Endpoint::Pause, Some(Paused)) => err(
            500,
            405,
            "Invalid transition: InvalidStateTransition(Paused, Paused)",
        ),
        (Endpoint::Resume, None | Some(Created | Shutdown)) => err(500, 404, not_running),
        (Endpoint::Resume, Some(Running)) => err(
            500,
            405,
            "Invalid transition: InvalidStateTransition(Running, Running)",
        ),
        (Endpoint::Resume, Some(Paused)) => ok(204, Some(Some(Running)), &["resumed"]),
        (Endpoint::Shutdown, None) => err(500, 404, not_running),
        (Endpoint::Shutdown, Some(Created | Shutdown)) => err(500, 405, not_running),
        (Endpoint::Shutdown, Some(Running | Paused)) => {
            ok(204, Some(Some(Shutdown)), &["vsock_down"])
        }
        (Endpoint::Reboot, None) => err(500, 404, "VM is not created"),
        (Endpoint::Reboot, Some(Created | Shutdown)) => err(500, 405, "VM is not created"),
        (Endpoint::Reboot, Some(Running | Paused)) => {
            ok(204, Some(Some(Running)), &["vsock_down", "vsock_up"])
        }
        (Endpoint::Delete, _) => ok(204, Some(None), down),
        (Endpoint::Info, None) => err(500, 404, "VM is not created"),
        (Endpoint::Info, Some(s)) => Cell {
            shape: Shape::Keys(if s.is_booted() { INFO_BOOTED } else { INFO }),
            ..ok(200, None, &[])
        },
        (Endpoint::Counters, None) => err(500, 404, not_running),
        (Endpoint::Counters, Some(Created | Shutdown)) => err(500, 405, not_running),
        (Endpoint::Counters, Some(Running | Paused)) => Cell {
            shape: Shape::Keys(COUNTERS),
            ..ok(200, None, &[])
        },
        (Endpoint::Snapshot, None) => err(500, 404, not_running),
        (Endpoint::Snapshot, Some(Created | Shutdown)) => err(500, 405, not_running),
        (Endpoint::Snapshot, Some(Running)) => {
            err(500, 405, "Trying to snapshot while VM is running")
        }
        (Endpoint::Snapshot, Some(Paused)) => ok(204, None, &[]),
        (Endpoint::Restore, None) => ok(204, Some(Some(Paused)), &["vsock_up", "paused"]),
        (Endpoint::Restore, Some(_)) => err(500, 404, "VM is already created"),
    }
}

fn check_shape(what: &str, r: &Response, shape: Shape) {
    let json = r.body_json();
    match shape {
        Shape::Empty => assert!(r.body.is_empty(), "{what}: body {:?}", r.body_json()),
        Shape::Keys(keys) => {
            let obj = json
                .as_ref()
                .and_then(|j| j.as_object())
                .unwrap_or_else(|| panic!("{what}: not an object: {json:?}"));
            let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
            let mut want = keys.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{what}");
        }
        Shape::Chain(last) => {
            let chain: Vec<String> = json
                .and_then(|j| serde_json::from_value(j).ok())
                .unwrap_or_else(|| panic!("{what}: not a JSON array of strings"));
            assert_eq!(
                chain.first().map(String::as_str),
                Some("Error from API"),
                "{what}"
            );
            assert_eq!(
                chain.last().map(String::as_str),
                Some(last),
                "{what}: {chain:?}"
            );
        }
    }
}

const STATES: [Option<VmState>; 5] = [
    None,
    Some(VmState::Created),
    Some(VmState::Running),
    Some(VmState::Paused),
    Some(VmState::Shutdown),
];

#[test]
fn every_endpoint_in_every_state_in_both_code_modes() {
    let mut cells = 0;
    for mode in [CodeMode::Real, CodeMode::Spec] {
        for state in STATES {
            for endpoint in Endpoint::ALL {
                let what = format!("{mode} {endpoint} in {state:?}");
                let mut api = api_in(state, mode, ChVersion::V48);
                let mut fs = Fs::with_snapshot();
                let path = format!("/api/v1/{}", endpoint.name());
                let (reply, events) = drive(
                    &mut api,
                    &mut fs,
                    endpoint.method(),
                    &path,
                    body_for(endpoint),
                );
                let r = reply.unwrap_or_else(|| panic!("{what}: held"));
                let cell = expected(endpoint, state);
                let status = match mode {
                    CodeMode::Real => cell.real,
                    CodeMode::Spec => cell.spec,
                };
                assert_eq!(r.status, status, "{what}: {:?}", r.body_json());
                check_shape(&what, &r, cell.shape);
                assert_eq!(
                    api.state(),
                    cell.after.unwrap_or(state),
                    "{what}: state after"
                );
                let names: Vec<&str> = events.iter().map(Event::name).collect();
                assert_eq!(names, cell.events, "{what}: events");
                assert_eq!(r.stop_server, endpoint == Endpoint::VmmShutdown, "{what}");
                cells += 1;
            }
        }
    }
    assert_eq!(cells, 2 * 5 * 13);
}

#[test]
fn wrong_method_and_unknown_path_in_every_state() {
    for mode in [CodeMode::Real, CodeMode::Spec] {
        for state in STATES {
            let mut api = api_in(state, mode, ChVersion::V48);
            let mut fs = Fs::default();
            for endpoint in Endpoint::ALL {
                let method = if endpoint.method() == "GET" {
                    "PUT"
                } else {
                    "GET"
                };
                let path = format!("/api/v1/{}", endpoint.name());
                let r = drive(&mut api, &mut fs, method, &path, "")
                    .0
                    .expect("a reply");
                let (status, chain) = match mode {
                    CodeMode::Real => (400, r#"["Bad Request"]"#),
                    CodeMode::Spec => (405, r#"["Method Not Allowed"]"#),
                };
                assert_eq!(r.status, status, "{mode} {method} {endpoint} in {state:?}");
                assert_eq!(String::from_utf8_lossy(&r.body), chain);
                let allow = r.headers.iter().find(|(n, _)| n == "Allow");
                assert_eq!(allow.is_some(), mode == CodeMode::Spec);
            }
            let r = drive(&mut api, &mut fs, "PUT", "/api/v1/vm.fly", "")
                .0
                .expect("reply");
            assert_eq!(
                (r.status, r.body.as_slice()),
                (404, &br#"["Not Found"]"#[..])
            );
            assert_eq!(api.state(), state, "{mode}: nothing changed in {state:?}");
        }
    }
}

#[test]
fn the_real_server_answers_other_methods_on_action_endpoints_with_a_bare_400() {
    let mut api = api_in(None, CodeMode::Real, ChVersion::V48);
    let mut fs = Fs::default();
    let r = drive(&mut api, &mut fs, "POST", "/api/v1/vm.boot", "")
        .0
        .expect("reply");
    assert_eq!((r.status, r.body.len()), (400, 0));
    let r = drive(&mut api, &mut fs, "POST", "/api/v1/vm.create", "")
        .0
        .expect("reply");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (400, &br#"["Bad Request"]"#[..])
    );
}

#[test]
fn from_v53_not_created_is_404_but_not_running_stays_500() {
    let v53: ChVersion = "v53.0".parse().unwrap();
    let mut fs = Fs::default();
    for (endpoint, state, status) in [
        (Endpoint::Info, None, 404),
        (Endpoint::Boot, None, 404),
        (Endpoint::Reboot, Some(VmState::Created), 404),
        (Endpoint::Pause, None, 500),
        (Endpoint::Create, Some(VmState::Created), 500),
    ] {
        let mut api = api_in(state, CodeMode::Real, v53);
        let r = call(&mut api, &mut fs, endpoint, body_for(endpoint));
        assert_eq!(r.status, status, "{endpoint} in {state:?}");
    }
}

#[test]
fn info_reports_a_shut_down_vm_as_created_in_real_mode_only() {
    let mut fs = Fs::default();
    for (mode, name) in [(CodeMode::Real, "Created"), (CodeMode::Spec, "Shutdown")] {
        let mut api = api_in(Some(VmState::Shutdown), mode, ChVersion::V48);
        let info = call(&mut api, &mut fs, Endpoint::Info, "")
            .body_json()
            .unwrap();
        assert_eq!(info["state"], name, "{mode}");
        assert_eq!(info["config"]["vsock"]["cid"], 3);
    }
}

#[test]
fn bodies_that_do_not_belong_or_do_not_parse_are_400_in_both_modes() {
    let mut fs = Fs::default();
    for mode in [CodeMode::Real, CodeMode::Spec] {
        let mut api = api_in(None, mode, ChVersion::V48);
        let cases = [
            (
                Endpoint::Create,
                "{",
                "EOF while parsing an object at line 1 column 1",
            ),
            (Endpoint::Create, "{}", "missing field `payload`"),
            (
                Endpoint::Create,
                r#"{"payload":{"kernel":"/k"},"vsock":{"cid":2,"socket":"/s"}}"#,
                "invalid value for `cid`: integer `2`, expected an integer from 3 to 4294967294",
            ),
            (Endpoint::Snapshot, "{}", "missing field `destination_url`"),
            (Endpoint::Restore, "[]", "invalid type, expected a struct"),
            (Endpoint::Boot, "{}", "Bad Request"),
            (Endpoint::Snapshot, "", "Bad Request"),
        ];
        for (endpoint, body, last) in cases {
            let r = call(&mut api, &mut fs, endpoint, body);
            assert_eq!(r.status, 400, "{mode} {endpoint} {body:?}");
            let chain: Vec<String> = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(chain.last().map(String::as_str), Some(last), "{chain:?}");
        }
        // vm.create with no body at all: the real handler's bare 400.
        let r = call(&mut api, &mut fs, Endpoint::Create, "");
        assert_eq!((r.status, r.body.len()), (400, 0));
        assert_eq!(api.state(), None);
    }
}

#[test]
fn the_wedge_holds_vmm_shutdown_on_a_paused_vm_and_everything_after() {
    let mut api = api_in(Some(VmState::Paused), CodeMode::Real, ChVersion::V48);
    let mut fs = Fs::default();
    let mut wedged = ChApi::new(ChApiConfig {
        shutdown_wedge: true,
        ..api.config().clone()
    });
    // Without the fault: answered.
    assert_eq!(
        call(&mut api, &mut fs, Endpoint::VmmShutdown, "").status,
        200
    );
    // With it, but not paused: answered.
    assert_eq!(
        call(&mut wedged, &mut fs, Endpoint::VmmShutdown, "").status,
        200
    );
    let mut wedged = ChApi::new(ChApiConfig {
        shutdown_wedge: true,
        ..api.config().clone()
    });
    for e in [Endpoint::Create, Endpoint::Boot, Endpoint::Pause] {
        call(&mut wedged, &mut fs, e, body_for(e));
    }
    let (reply, events) = drive(&mut wedged, &mut fs, "PUT", "/api/v1/vmm.shutdown", "");
    assert_eq!((reply, events), (None, Vec::new()));
    assert!(wedged.is_wedged());
    for e in Endpoint::ALL {
        let path = format!("/api/v1/{}", e.name());
        assert_eq!(
            drive(&mut wedged, &mut fs, e.method(), &path, "").0,
            None,
            "{e}"
        );
    }
    assert_eq!(drive(&mut wedged, &mut fs, "GET", "/nowhere", "").0, None);
}

#[test]
fn a_snapshot_restores_paused_with_its_vsock_and_resume_true_restores_running() {
    let mut fs = Fs::with_snapshot();
    fs.dirs.insert(PathBuf::from("/other"));
    let mut api = api_in(Some(VmState::Paused), CodeMode::Real, ChVersion::V48);
    let r = call(
        &mut api,
        &mut fs,
        Endpoint::Snapshot,
        r#"{"destination_url":"file:///other"}"#,
    );
    assert_eq!(r.status, 204);
    let written = fs.files.get(Path::new("/other")).expect("written").clone();
    let state: serde_json::Value = serde_json::from_slice(&written.state).unwrap();
    assert_eq!(state["state"], "Paused");
    assert!(state["counters"]["_disk0"].is_object(), "{state}");

    let mut fresh = api_in(None, CodeMode::Real, ChVersion::V48);
    let (r, events) = drive(
        &mut fresh,
        &mut fs,
        "PUT",
        "/api/v1/vm.restore",
        r#"{"source_url":"file:///other"}"#,
    );
    assert_eq!(r.map(|r| r.status), Some(204));
    assert_eq!(
        events,
        [
            Event::VsockUp {
                cid: 3,
                socket: PathBuf::from("/run/v.sock")
            },
            Event::Paused
        ]
    );
    assert_eq!(fresh.vm_config(), api.vm_config());

    let mut resumed = api_in(None, CodeMode::Real, ChVersion::V48);
    let body = r#"{"source_url":"file:///other","resume":true}"#;
    let (r, events) = drive(&mut resumed, &mut fs, "PUT", "/api/v1/vm.restore", body);
    assert_eq!(r.map(|r| r.status), Some(204));
    assert_eq!(
        events.iter().map(Event::name).collect::<Vec<_>>(),
        ["vsock_up"]
    );
    assert_eq!(resumed.state(), Some(VmState::Running));
}

#[test]
fn snapshot_and_restore_failures_carry_the_real_chains() {
    for (mode, status) in [(CodeMode::Real, 500), (CodeMode::Spec, 500)] {
        let mut fs = Fs::default();
        let mut api = api_in(Some(VmState::Paused), mode, ChVersion::V48);
        let r = call(
            &mut api,
            &mut fs,
            Endpoint::Snapshot,
            r#"{"destination_url":"http://x"}"#,
        );
        assert_eq!(r.status, status);
        assert_eq!(
            r.body_json().unwrap(),
            serde_json::json!([
                "Error from API",
                "The VM could not be snapshotted",
                "Cannot send VM snapshot",
                "Failed to send migratable component snapshot",
                "Could not extract path from URL: http://x"
            ])
        );
        let r = call(&mut api, &mut fs, Endpoint::Snapshot, SNAPSHOT);
        assert_eq!(r.status, status);
        let chain = r.body_json().unwrap();
        assert_eq!(chain[4], "Destination is not a directory", "{chain}");
        assert_eq!(api.state(), Some(VmState::Paused));
    }
    for (mode, status) in [(CodeMode::Real, 500), (CodeMode::Spec, 400)] {
        let mut fs = Fs::default();
        let mut api = api_in(None, mode, ChVersion::V48);
        let r = call(&mut api, &mut fs, Endpoint::Restore, RESTORE);
        assert_eq!(r.status, status, "{mode}");
        assert_eq!(
            r.body_json().unwrap(),
            serde_json::json!([
                "Error from API",
                "The VM could not be restored",
                "Cannot restore VM",
                "Failed to send migratable component snapshot",
                "No such file or directory (os error 2)"
            ])
        );
        assert_eq!(api.state(), None);
    }
}

#[test]
fn a_failing_hook_fails_the_request_and_keeps_the_state() {
    let mut api = api_in(Some(VmState::Created), CodeMode::Real, ChVersion::V48);
    let step = api.handle(&Request::new("PUT", "/api/v1/vm.boot", b""));
    assert!(
        matches!(step, Step::Effects(ref e) if matches!(e[..], [Effect::Notify(Event::VsockUp { .. })]))
    );
    let step = api.finish(Err(EffectFailure::new("cannot bind /run/v.sock")));
    let Step::Reply(r) = step else {
        panic!("{step:?}")
    };
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body_json().unwrap(),
        serde_json::json!([
            "Error from API",
            "The VM could not boot",
            "cannot bind /run/v.sock"
        ])
    );
    assert_eq!(api.state(), Some(VmState::Created));
}

#[test]
fn ping_reports_the_configured_version() {
    let mut fs = Fs::default();
    let mut api = api_in(None, CodeMode::Real, "v49.0".parse().unwrap());
    let ping = call(&mut api, &mut fs, Endpoint::VmmPing, "")
        .body_json()
        .unwrap();
    assert_eq!(ping["build_version"], "v49.0");
    assert_eq!(ping["version"], "49.0.0");
    assert_eq!(ping["pid"], 42);
}
