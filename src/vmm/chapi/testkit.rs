//! Shared by the core's tests: an in-memory file system for snapshot effects, a driver that
//! runs a request to its end, and a core put into any state.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::api::{ChApi, ChApiConfig, Effect, EffectFailure, Response, Step};
use super::codes::{ChVersion, CodeMode, Endpoint};
use super::config::VmConfig;
use super::routes::Request;
use super::snapshot::{self, SnapshotFiles};
use super::state::{Event, VmState};
pub(super) const CONFIG: &str = r#"{"payload":{"kernel":"/vmlinux"},"vsock":{"cid":3,"socket":"/run/v.sock"},"disks":[{"path":"/d"}]}"#;
pub(super) const SNAP_DIR: &str = "/snap";
pub(super) const SNAPSHOT: &str = r#"{"destination_url":"file:///snap"}"#;
pub(super) const RESTORE: &str = r#"{"source_url":"file:///snap"}"#;

/// Snapshot directories and their files, for the effects.
#[derive(Default)]
pub(super) struct Fs {
    pub(super) dirs: HashSet<PathBuf>,
    pub(super) files: HashMap<PathBuf, SnapshotFiles>,
}

impl Fs {
    pub(super) fn with_snapshot() -> Self {
        let config = VmConfig::parse(CONFIG.as_bytes()).unwrap();
        let mut fs = Self::default();
        fs.dirs.insert(PathBuf::from(SNAP_DIR));
        fs.files.insert(
            PathBuf::from(SNAP_DIR),
            snapshot::encode(&config, VmState::Paused, &serde_json::json!({})),
        );
        fs
    }

    pub(super) fn perform(
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
pub(super) fn drive(
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

pub(super) fn call(api: &mut ChApi, fs: &mut Fs, endpoint: Endpoint, body: &str) -> Response {
    let path = format!("/api/v1/{}", endpoint.name());
    drive(api, fs, endpoint.method(), &path, body)
        .0
        .expect("a reply")
}

pub(super) fn api_in(state: Option<VmState>, codes: CodeMode, version: ChVersion) -> ChApi {
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

pub(super) fn body_for(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Create => CONFIG,
        Endpoint::Snapshot => SNAPSHOT,
        Endpoint::Restore => RESTORE,
        _ => "",
    }
}
