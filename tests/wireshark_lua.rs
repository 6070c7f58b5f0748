//! The Wireshark Lua dissector in `docs/wireshark/guestwire.lua` stays in step with the codecs, and
//! tshark running it names the frames of the recorded fixtures (quantix, fcexec, the real qemu-ga).
//! Without `tshark` those tests are skipped with a message, except under `CI=true`.

use guestwire::wire::quantix::Payload;

const LUA: &str = include_str!("../docs/wireshark/guestwire.lua");

#[test]
fn the_lua_arm_table_names_every_quantix_payload_arm_by_its_field_number() {
    for (field, name) in Payload::ARMS {
        let entry = format!("[{field}] = \"{name}\",");
        assert!(LUA.contains(&entry), "guestwire.lua lacks `{entry}`");
    }
    let entries = LUA.matches("] = \"").count();
    assert_eq!(
        entries,
        Payload::ARMS.len(),
        "guestwire.lua has arms the codec lacks"
    );
}

/// Whether tshark can run here; under `CI=true` its absence is a failure.
fn have_tshark() -> bool {
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("tshark is missing, but CI installs it (scripts/install-deps.sh tshark)");
    }
    eprintln!("SKIPPED: tshark not found; install the Debian package tshark to run this test");
    false
}

/// Every `guestwire.protocol` / `guestwire.type` value the Lua dissector shows in a fixture
/// recorded by `scripts/record-fixtures.sh` (a record holding several frames lists them with
/// commas).
fn lua_fields(fixture: &str) -> (Vec<String>, Vec<String>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/captures")
        .join(fixture);
    let lua = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/wireshark/guestwire.lua");
    let out = std::process::Command::new("tshark")
        .arg("-X")
        .arg(format!("lua_script:{}", lua.display()))
        .arg("-r")
        .arg(&path)
        .args([
            "-T",
            "fields",
            "-e",
            "guestwire.protocol",
            "-e",
            "guestwire.type",
        ])
        .output()
        .expect("run tshark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut protocols = Vec::new();
    let mut types = Vec::new();
    for line in stdout.lines() {
        let mut cols = line.split('\t');
        let p = cols.next().unwrap_or_default();
        let t = cols.next().unwrap_or_default();
        protocols.extend(p.split(',').filter(|s| !s.is_empty()).map(str::to_string));
        types.extend(t.split(',').filter(|s| !s.is_empty()).map(str::to_string));
    }
    (protocols, types)
}

#[test]
fn tshark_with_the_lua_dissector_names_the_quantix_session_frames() {
    if !have_tshark() {
        return;
    }
    let (protocols, types) = lua_fields("quantix-session.pcap");
    assert!(protocols.iter().all(|p| p == "quantix"), "{protocols:?}");
    for want in [
        "agent_ready",
        "ping",
        "pong",
        "execute",
        "execute_response",
        "shutdown",
    ] {
        assert!(types.iter().any(|t| t == want), "no {want} in {types:?}");
    }
}

#[test]
fn tshark_with_the_lua_dissector_names_the_fcexec_run_frames() {
    if !have_tshark() {
        return;
    }
    let (protocols, types) = lua_fields("fcexec-run.pcap");
    assert!(
        protocols.iter().any(|p| p == "hybrid-vsock"),
        "{protocols:?}"
    );
    assert!(protocols.iter().any(|p| p == "fcexec"), "{protocols:?}");
    for want in ["connect", "ok", "request", "log", "result"] {
        assert!(types.iter().any(|t| t == want), "no {want} in {types:?}");
    }
}

#[test]
fn tshark_with_the_lua_dissector_names_the_real_qemu_ga_session() {
    if !have_tshark() {
        return;
    }
    let (protocols, types) = lua_fields("qga-session.pcap");
    assert!(protocols.iter().all(|p| p == "qga"), "{protocols:?}");
    for want in ["guest-sync-delimited", "guest-ping", "guest-info", "return"] {
        assert!(types.iter().any(|t| t == want), "no {want} in {types:?}");
    }
}
