//! Snapshots as the mock writes and reads them: a directory named by a `file://` URL with
//! `config.json` (the `VmConfig`) and `state.json` (the VM's state and counters), the two files
//! of the real VMM's snapshot (`SNAPSHOT_CONFIG_FILE`, `SNAPSHOT_STATE_FILE`; the real one adds
//! memory-range files, which a mock without guest memory has no use for). Pure: the server does
//! the file IO these describe.
//!
//! The real VMM accepts only `file://` URLs (`url_to_path`): anything else fails with "Could not
//! extract path from URL: `url`", and a destination that is not a directory with "Destination
//! is not a directory" (checked by the adapter, which can see the file system).

use std::path::PathBuf;

use serde_json::Value;

use super::config::VmConfig;
use super::state::VmState;

/// The snapshot's config file name (`SNAPSHOT_CONFIG_FILE`).
pub const CONFIG_FILE: &str = "config.json";

/// The snapshot's state file name (`SNAPSHOT_STATE_FILE`).
pub const STATE_FILE: &str = "state.json";

/// The largest snapshot file the server reads back (16 MiB): a `config.json` or `state.json`
/// beyond this is refused before it is read.
pub const MAX_SNAPSHOT_FILE: u64 = 16 * 1024 * 1024;

/// What the `id` field of a mock snapshot's `state.json` says.
pub const STATE_ID: &str = "guestwire-mock-vm";

/// The directory a `file://` URL names, or the real VMM's message for any other URL.
pub fn url_to_dir(url: &str) -> Result<PathBuf, String> {
    match url.strip_prefix("file://") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(format!("Could not extract path from URL: {url}")),
    }
}

/// The two files of a snapshot, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFiles {
    /// `config.json`.
    pub config: Vec<u8>,
    /// `state.json`.
    pub state: Vec<u8>,
}

/// The snapshot of a VM in `state` with `config` and `counters`.
pub fn encode(config: &VmConfig, state: VmState, counters: &Value) -> SnapshotFiles {
    let state = serde_json::json!({
        "id": STATE_ID,
        "state": state.name(),
        "counters": counters,
    });
    SnapshotFiles {
        config: config.to_bytes(),
        state: serde_json::to_vec_pretty(&state).unwrap_or_default(),
    }
}

/// The config of a snapshot read back, or why it cannot be restored.
pub fn decode(files: &SnapshotFiles) -> Result<VmConfig, String> {
    let state: Value = serde_json::from_slice(&files.state)
        .map_err(|e| format!("Error deserialising snapshot state: {e}"))?;
    if !state.is_object() {
        return Err("Error deserialising snapshot state: not a JSON object".into());
    }
    VmConfig::parse(&files.config).map_err(|e| format!("Error deserialising VmConfig: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_file_urls_name_a_directory() {
        assert_eq!(url_to_dir("file:///tmp/s"), Ok(PathBuf::from("/tmp/s")));
        assert_eq!(
            url_to_dir("http://x/s"),
            Err("Could not extract path from URL: http://x/s".into())
        );
        assert!(url_to_dir("file://").is_err());
    }

    #[test]
    fn a_snapshot_reads_back_its_config() {
        let c = VmConfig::parse(br#"{"payload":{"kernel":"/k"}}"#).unwrap();
        let files = encode(&c, VmState::Paused, &serde_json::json!({}));
        assert_eq!(decode(&files), Ok(c));
        let broken = SnapshotFiles {
            config: files.config.clone(),
            state: b"[1]".to_vec(),
        };
        assert!(decode(&broken).unwrap_err().contains("state"));
    }
}
