//! `vm.snapshot` and `vm.restore`: the requests whose effects are file IO.

use serde_json::Value;

use super::{ChApi, Effect, EffectFailure, Pending, Response, Step, Vm, bodies};
use crate::vmm::chapi::codes::{Endpoint, FailureKind};
use crate::vmm::chapi::errors::{ERROR_FROM_API, MIGRATE_SEND, VmError, api_chain, api_context};
use crate::vmm::chapi::snapshot::{self, SnapshotFiles};
use crate::vmm::chapi::state::{Event, VmState, vsock_up};

impl ChApi {
    pub(super) fn snapshot(&mut self, body: &[u8]) -> Step {
        let endpoint = Endpoint::Snapshot;
        let url = match bodies::url_field(body, "destination_url") {
            Ok(url) => url,
            Err(chain) => return self.bad_request(endpoint, &chain),
        };
        let vm = match &self.vm {
            Some(vm) if vm.state == VmState::Paused => vm.clone(),
            Some(vm) if vm.state == VmState::Running => {
                return self.fail(endpoint, &VmError::SnapshotNotPaused);
            }
            _ => return self.fail(endpoint, &VmError::NotRunning),
        };
        let mut prefix = api_chain(
            endpoint,
            &VmError::Other {
                chain: vec!["Cannot send VM snapshot".into(), MIGRATE_SEND.into()],
                kind: FailureKind::Internal,
            },
        );
        let dir = match snapshot::url_to_dir(&url) {
            Ok(dir) => dir,
            Err(why) => {
                prefix.push(why);
                let status = self.failure_status(endpoint, self.state(), FailureKind::Internal);
                return Step::Reply(Response::chain(status, &prefix));
            }
        };
        let files = snapshot::encode(&vm.config, vm.state, &bodies::counters(&vm.config));
        self.pending = Some(Pending::Commit {
            endpoint,
            before: Some(vm.state),
            next: Some(vm),
            reply: self.success(endpoint),
            prefix,
        });
        Step::Effects(vec![Effect::WriteSnapshot { dir, files }])
    }

    fn restore_prefix() -> Vec<String> {
        vec![
            ERROR_FROM_API.into(),
            api_context(Endpoint::Restore).into(),
            "Cannot restore VM".into(),
        ]
    }

    fn restore_failed(&self, chain: Vec<String>) -> Step {
        let status = self.failure_status(Endpoint::Restore, None, FailureKind::Internal);
        Step::Reply(Response::chain(status, &chain))
    }

    pub(super) fn restore(&mut self, body: &[u8]) -> Step {
        let endpoint = Endpoint::Restore;
        let url = match bodies::url_field(body, "source_url") {
            Ok(url) => url,
            Err(chain) => return self.bad_request(endpoint, &chain),
        };
        let resume = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("resume").and_then(Value::as_bool))
            .unwrap_or(false);
        if self.vm.is_some() {
            return self.fail(endpoint, &VmError::AlreadyCreated);
        }
        match snapshot::url_to_dir(&url) {
            Ok(dir) => {
                self.pending = Some(Pending::Restore { resume });
                Step::Effects(vec![Effect::ReadSnapshot { dir }])
            }
            Err(why) => {
                let mut chain = Self::restore_prefix();
                chain.extend([MIGRATE_SEND.to_string(), why]);
                self.restore_failed(chain)
            }
        }
    }

    pub(super) fn restore_read(
        &mut self,
        resume: bool,
        result: Result<Option<SnapshotFiles>, EffectFailure>,
    ) -> Step {
        let mut chain = Self::restore_prefix();
        let files = match result {
            Ok(Some(files)) => files,
            Ok(None) => {
                chain.extend([
                    MIGRATE_SEND.to_string(),
                    "no snapshot files were read".into(),
                ]);
                return self.restore_failed(chain);
            }
            Err(failure) => {
                chain.push(MIGRATE_SEND.into());
                chain.extend(failure.chain);
                return self.restore_failed(chain);
            }
        };
        let config = match snapshot::decode(&files) {
            Ok(config) => config,
            Err(why) => {
                chain.extend([
                    "Failed to receive migratable component snapshot".to_string(),
                    why,
                ]);
                return self.restore_failed(chain);
            }
        };
        let state = if resume {
            VmState::Running
        } else {
            VmState::Paused
        };
        let mut events: Vec<Event> = vsock_up(&config).into_iter().collect();
        if !resume {
            events.push(Event::Paused);
        }
        let reply = self.success(Endpoint::Restore);
        self.commit(Endpoint::Restore, Some(Vm { config, state }), events, reply)
    }
}
