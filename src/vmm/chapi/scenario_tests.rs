//! The core through whole scenarios: versions, bodies, the wedge, snapshots, failing effects.

use std::path::{Path, PathBuf};

use super::api::{ChApi, ChApiConfig, Effect, EffectFailure, Step};
use super::codes::{ChVersion, CodeMode, Endpoint};
use super::routes::Request;
use super::state::{Event, VmState};
use super::testkit::{Fs, RESTORE, SNAPSHOT, api_in, body_for, call, drive};

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
