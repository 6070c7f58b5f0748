//! The `guestwire-tui` binary's argument errors (before the terminal is touched).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_guestwire-tui");

#[test]
fn tui_without_a_source_says_what_to_give() {
    let out = Command::new(BIN).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("give --capture FILE, --scan DIR|SOCKET, --tap or --mock"),
        "{err}"
    );
}

#[test]
fn tui_with_a_missing_capture_names_it() {
    let out = Command::new(BIN)
        .args(["--capture", "/nonexistent/x.pcap"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/x.pcap"), "{err}");
}

#[test]
fn tui_tap_needs_listen_and_upstream() {
    let out = Command::new(BIN).args(["--tap"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen"), "{err}");
}

#[test]
fn tui_mock_refuses_an_unknown_kind_and_guest() {
    let out = Command::new(BIN)
        .args(["--mock", "qemu"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--mock must be serial or hvsock"), "{err}");
    let out = Command::new(BIN)
        .args(["--mock", "serial", "--guest", "nope"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--guest"), "{err}");
}
