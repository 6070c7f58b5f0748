//! The captures of the mock VMMs' faults (`fixtures/captures/faults/`, recorded through the tap
//! by `scripts/record-fixtures.sh`) decode to what each fault does on the wire, through
//! `guestwire decode --json`.

mod support;

use serde_json::Value;
use support::run;

/// Decodes `fixtures/captures/faults/NAME.pcap`: exit code, the items, the summary.
fn decode(name: &str) -> (i32, Vec<Value>, Value) {
    let path = format!(
        "{}/fixtures/captures/faults/{name}.pcap",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, out) = run(&["decode", "--json", &path]);
    let mut items: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let summary = items.pop().expect("a summary")["summary"].clone();
    assert!(summary.is_object(), "{out}");
    (code, items, summary)
}

fn frames(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .filter(|i| i["event"] == "frame")
        .map(|i| {
            (
                i["direction"].as_str().unwrap_or_default().to_string(),
                i["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn guest_before_host_leaves_the_ping_unanswered() {
    let (code, items, s) = decode("guest_before_host");
    assert_eq!(code, 0, "{s}");
    let f = frames(&items);
    assert!(f.contains(&("to_guest".into(), "ping".into())), "{f:?}");
    assert!(!f.iter().any(|(_, t)| t == "pong"), "{f:?}");
    assert_eq!(s["unanswered"], 1, "{s}");
}

#[test]
fn stale_client_gets_nothing_back() {
    let (code, items, s) = decode("stale_client");
    assert_eq!(code, 0, "{s}");
    assert_eq!(
        frames(&items),
        [("to_guest".to_string(), "ping".to_string())]
    );
    assert_eq!(s["bytes"]["to_host"], 0, "{s}");
    assert_eq!(s["unanswered"], 1, "{s}");
}

#[test]
fn vm_pause_holds_the_ok_line_for_the_pause_then_the_exec_completes() {
    let (code, items, s) = decode("vm_pause");
    assert_eq!(code, 0, "{s}");
    let time = |t: &str| {
        items
            .iter()
            .find(|i| i["type"] == t)
            .and_then(|i| i["rel_ns"].as_u64())
            .unwrap_or_else(|| panic!("no {t} frame: {items:?}"))
    };
    // The recorded pause is 300 ms (`vm_pause:duration=300ms`).
    assert!(time("ok") - time("connect") >= 300_000_000, "{items:?}");
    assert_eq!(s["frames_by_type"]["result"], 1, "{s}");
    assert_eq!(s["unanswered"], 0, "{s}");
}

#[test]
fn bad_json_is_a_malformed_error_in_place_of_the_result() {
    let (code, items, s) = decode("malformed-bad_json");
    assert_eq!(code, 1, "{s}");
    let err = items
        .iter()
        .find(|i| i["event"] == "error")
        .expect("an error item");
    assert_eq!(err["error"], "malformed", "{err}");
    assert_eq!(err["direction"], "to_host", "{err}");
    assert!(s["frames_by_type"].get("result").is_none(), "{s}");
    assert_eq!(s["unanswered"], 1, "{s}");
}

#[test]
fn split_handshake_and_no_newline_show_the_connect_line_as_the_muxer_got_it() {
    let (_, items, s) = decode("malformed-split_handshake");
    let data: Vec<&Value> = items.iter().filter(|i| i["event"] == "frame").collect();
    assert_eq!(data.len(), 1, "{items:?}");
    assert_eq!(data[0]["message"]["text"], "CONN", "the first write only");
    assert_eq!(s["bytes"]["to_host"], 0, "the muxer closed without OK: {s}");
    let (_, items, s) = decode("malformed-no_newline");
    let data: Vec<&Value> = items.iter().filter(|i| i["event"] == "frame").collect();
    assert_eq!(data.len(), 1, "{items:?}");
    assert_eq!(data[0]["message"]["text"], "CONNECT 1024", "no newline");
    assert_eq!(s["bytes"]["to_host"], 0, "{s}");
}

#[test]
fn ch_shutdown_wedge_answers_nothing_after_vmm_shutdown_on_the_paused_vm() {
    let (code, items, s) = decode("ch_shutdown_wedge");
    assert_eq!(code, 0, "{s}");
    let paths: Vec<&str> = items
        .iter()
        .filter(|i| i["type"] == "request")
        .filter_map(|i| i["message"]["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "/api/v1/vm.create",
            "/api/v1/vm.boot",
            "/api/v1/vm.pause",
            "/api/v1/vmm.shutdown",
            "/api/v1/vmm.ping"
        ]
    );
    assert_eq!(s["frames_by_type"]["response"], 3, "{s}");
    assert_eq!(s["unanswered"], 2, "{s}");
}
