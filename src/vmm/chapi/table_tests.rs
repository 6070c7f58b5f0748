//! The ch-api state machine as a table: every endpoint × every state (no VM, Created, Running,
//! Paused, Shutdown) × both code modes, with the status, the body's shape, the state afterwards
//! and the events, through the pure core with an in-memory file system for snapshots.

use super::api::Response;
use super::codes::{ChVersion, CodeMode, Endpoint};
use super::state::{Event, VmState};
use super::testkit::{Fs, api_in, body_for, drive};

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
