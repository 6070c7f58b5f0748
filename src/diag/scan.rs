//! Which sockets to look at: the ones named, else every socket file under the scan directories
//! (the usual places, plus `scan = [...]` from the config file), two levels deep (libvirt puts
//! each VM's channels in a directory of its own).
//!
//! The config file is `$GUESTWIRE_CONFIG`, else `$XDG_CONFIG_HOME/guestwire/doctor.toml`, else
//! `~/.config/guestwire/doctor.toml`; its one key is `scan`, a list of directories.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::inspect::Target;
use crate::io::Endpoint;

/// Where QEMU sockets usually are: LimiQuantix's VM directory, libvirt's channel directory.
pub const DEFAULT_SCAN_DIRS: &[&str] = &["/var/run/quantix-kvm/vms", "/run/libvirt/qemu/channel"];

/// How deep the scan goes below each directory.
pub const SCAN_DEPTH: usize = 2;

/// Most sockets one scan collects.
pub const MAX_SCAN: usize = 100_000;

/// A config file or target that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The config file does not parse.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A SOCKET argument is not a path, `unix:` or `hvsock:` address.
    #[error("{0}: give a path, unix:/path or hvsock:/path:PORT")]
    Target(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    scan: Vec<PathBuf>,
}

/// The config file's path from the environment (it need not exist).
pub fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GUESTWIRE_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("guestwire").join("doctor.toml"))
}

/// The `scan` directories of the config file's text.
pub fn parse_config(text: &str, path: &str) -> Result<Vec<PathBuf>, ScanError> {
    toml::from_str::<ConfigFile>(text)
        .map(|c| c.scan)
        .map_err(|e| ScanError::Config {
            path: path.into(),
            message: e.to_string(),
        })
}

/// The scan directories from the config file at `path`, if it exists.
pub fn config_dirs(path: Option<&Path>) -> Result<Vec<PathBuf>, ScanError> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_config(&text, &path.display().to_string()),
        Err(_) => Ok(Vec::new()),
    }
}

/// A SOCKET argument as a target: a path, `unix:/path` or `hvsock:/path:PORT`.
pub fn target_of(arg: &str) -> Result<Target, ScanError> {
    if !arg.contains(':') || arg.starts_with('/') || arg.starts_with('.') {
        return Ok(Target::unix(arg));
    }
    match arg.parse::<Endpoint>() {
        Ok(Endpoint::Unix(path)) => Ok(Target::unix(path)),
        Ok(Endpoint::Hvsock { path, port }) => Ok(Target {
            shown: arg.to_string(),
            path,
            hvsock_port: Some(port),
        }),
        _ => Err(ScanError::Target(arg.into())),
    }
}

/// Every socket file under `dirs` (depth [`SCAN_DEPTH`]), sorted, at most [`MAX_SCAN`].
pub fn scan(dirs: &[PathBuf]) -> Vec<Target> {
    let mut found = Vec::new();
    for d in dirs {
        walk(d, SCAN_DEPTH, &mut found);
    }
    found.sort();
    found.dedup();
    found.into_iter().map(Target::unix).collect()
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if found.len() >= MAX_SCAN {
            return;
        }
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_socket() {
            found.push(e.path());
        } else if ft.is_dir() && depth > 1 {
            walk(&e.path(), depth - 1, found);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn config_lists_scan_dirs_and_rejects_unknown_keys() {
        let dirs = parse_config("scan = [\"/a\", \"/b/c\"]\n", "x").expect("parse");
        assert_eq!(dirs, vec![PathBuf::from("/a"), PathBuf::from("/b/c")]);
        assert!(parse_config("scna = []", "x").is_err());
        assert_eq!(parse_config("", "x").expect("empty"), Vec::<PathBuf>::new());
    }

    #[test]
    fn targets_parse() {
        assert_eq!(target_of("/run/x.sock").expect("path").hvsock_port, None);
        let t = target_of("hvsock:/run/fc.vsock:1024").expect("hvsock");
        assert_eq!(
            (t.path.to_str(), t.hvsock_port),
            (Some("/run/fc.vsock"), Some(1024))
        );
        assert!(target_of("tcp:localhost:1").is_err());
    }

    #[test]
    fn the_scan_finds_sockets_two_levels_deep_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vm = dir.path().join("1-vm");
        let deep = vm.join("deeper");
        std::fs::create_dir_all(&deep).expect("mkdir");
        let _a = UnixListener::bind(dir.path().join("a.sock")).expect("a");
        let _b = UnixListener::bind(vm.join("org.qemu.guest_agent.0")).expect("b");
        let _c = UnixListener::bind(deep.join("c.sock")).expect("c");
        std::fs::write(dir.path().join("file"), b"").expect("file");
        let found: Vec<_> = scan(&[dir.path().to_path_buf()])
            .into_iter()
            .map(|t| t.path)
            .collect();
        assert_eq!(
            found,
            vec![
                dir.path().join("1-vm/org.qemu.guest_agent.0"),
                dir.path().join("a.sock")
            ]
        );
    }
}
