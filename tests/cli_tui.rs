//! `guestwire tui`: runs `guestwire-tui` found beside the binary or in PATH, or says it is not
//! installed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");

/// A copy of the guestwire binary alone in a fresh directory.
fn lone_copy(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("guestwire");
    std::fs::copy(BIN, &p).expect("copy");
    p
}

#[test]
fn tui_without_guestwire_tui_says_it_is_not_installed() {
    let dir = tempfile::tempdir().expect("dir");
    let empty = tempfile::tempdir().expect("dir");
    let bin = lone_copy(dir.path());
    let out = Command::new(bin)
        .args(["tui", "--capture", "x.pcap"])
        .env("PATH", empty.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("guestwire-tui, which is not installed"),
        "{err}"
    );
    assert!(err.contains("cargo install --path tui"), "{err}");
}

#[test]
fn tui_runs_guestwire_tui_beside_it_with_every_argument_and_its_exit_status() {
    let dir = tempfile::tempdir().expect("dir");
    let empty = tempfile::tempdir().expect("dir");
    let bin = lone_copy(dir.path());
    let fake = dir.path().join("guestwire-tui");
    std::fs::write(
        &fake,
        "#!/bin/sh\nfor a in \"$@\"; do echo \"arg:$a\"; done\nexit 7\n",
    )
    .expect("write");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = Command::new(bin)
        .args(["tui", "--capture", "a b.pcap", "--help"])
        .env("PATH", empty.path())
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "arg:--capture\narg:a b.pcap\narg:--help\n");
    assert_eq!(out.status.code(), Some(7));
}
