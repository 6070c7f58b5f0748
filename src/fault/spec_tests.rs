//! Tests of the fault vocabulary: every kind, trigger and malformed variant round-trips through
//! the CLI form and the serde form; every error says what was expected.

use std::time::Duration;

use super::*;

fn rt(s: &str) -> FaultSpec {
    let spec: FaultSpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(spec.to_string(), s, "display of {s}");
    let back: FaultSpec = spec.to_string().parse().expect("reparse");
    assert_eq!(back, spec);
    let json = serde_json::to_value(&spec).expect("serialize");
    let de: FaultSpec = serde_json::from_value(json.clone()).expect("deserialize");
    assert_eq!(de, spec, "serde of {s}: {json}");
    spec
}

#[test]
fn every_kind_round_trips() {
    let forms = [
        "latency:latency=200ms,jitter=10ms",
        "bandwidth:rate=1024",
        "slicer:average_size=4,size_variation=1,delay=1ms",
        "slow_close:delay=1s",
        "timeout:timeout=0s",
        "reset_peer:timeout=1500ms",
        "limit_data:bytes=10",
        "guest_before_host",
        "stale_client",
        "stale_socket",
        "reset_mid_stream",
        "drop_frame",
        "duplicate_frame",
        "reorder",
        "agent_hang",
        "agent_crash",
        "vm_pause:duration=2s",
        "ch_shutdown_wedge",
    ];
    assert_eq!(forms.len() + 1, KIND_NAMES.len());
    for f in forms {
        let spec = rt(f);
        assert!(KIND_NAMES.contains(&spec.kind.name()));
    }
    assert_eq!(
        rt("latency:latency=200ms,jitter=10ms").kind,
        FaultKind::Latency {
            latency: Duration::from_millis(200),
            jitter: Duration::from_millis(10)
        }
    );
}

#[test]
fn every_malformed_variant_round_trips() {
    for name in MALFORMED_NAMES {
        let spec = rt(&format!("malformed:{name}"));
        assert_eq!(
            spec.kind,
            FaultKind::Malformed(MalformedVariant::from_name(name).expect("known"))
        );
        rt(&format!("malformed:{name},direction=to_host,times=1"));
    }
}

#[test]
fn every_trigger_round_trips() {
    let s = rt(
        "drop_frame:direction=to_guest,after_bytes=5,after_frames=2,on_type=execute_response,at=1500ms,probability=0.25,times=3",
    );
    assert_eq!(s.direction, FaultDirection::ToGuest);
    assert_eq!(
        s.trigger,
        Trigger {
            after_bytes: Some(5),
            after_frames: Some(2),
            on_type: Some("execute_response".into()),
            at: Some(Duration::from_millis(1500)),
            probability: Some(0.25),
            times: Some(3),
        }
    );
    for t in [
        "after_bytes=1",
        "after_frames=0",
        "on_type=ping",
        "at=200ms",
        "probability=1",
        "times=7",
        "direction=to_host",
    ] {
        rt(&format!("agent_crash:{t}"));
    }
}

#[test]
fn defaults_and_alternative_spellings_parse() {
    let s: FaultSpec = "latency".parse().expect("bare kind");
    assert_eq!(s.to_string(), "latency:latency=0s,jitter=0s");
    let s: FaultSpec = "latency:jitter=1.5s,direction=both"
        .parse()
        .expect("any order");
    assert_eq!(s.to_string(), "latency:latency=0s,jitter=1500ms");
}

#[test]
fn toml_like_table_deserialises() {
    let v = serde_json::json!({"kind": "slicer", "average_size": 3, "delay": "5ms", "direction": "to_host", "probability": 0.5});
    let s: FaultSpec = serde_json::from_value(v).expect("table");
    assert_eq!(
        s.to_string(),
        "slicer:average_size=3,size_variation=0,delay=5ms,direction=to_host,probability=0.5"
    );
    let err =
        serde_json::from_value::<FaultSpec>(serde_json::json!({"rate": 1})).expect_err("no kind");
    assert!(err.to_string().contains("missing key \"kind\""), "{err}");
    let err = serde_json::from_value::<FaultSpec>(serde_json::json!({"kind": 3}))
        .expect_err("kind number");
    assert!(err.to_string().contains("kind must be a string"), "{err}");
    let err =
        serde_json::from_value::<FaultSpec>(serde_json::json!({"kind": "bandwidth", "speed": 1}))
            .expect_err("bad key");
    assert!(
        err.to_string()
            .contains("bandwidth does not take \"speed\""),
        "{err}"
    );
}

#[test]
fn every_error_says_what_was_expected() {
    let cases: &[(&str, FaultParseError, &str)] = &[
        ("", FaultParseError::Empty, "empty fault; expected kind[:key=value,...]"),
        ("jitter", FaultParseError::UnknownKind("jitter".into()), "unknown fault kind \"jitter\"; expected one of: latency, bandwidth"),
        ("malformed", FaultParseError::MissingVariant, "malformed needs a variant, malformed:<variant>; expected one of: bad_magic"),
        ("malformed:", FaultParseError::MissingVariant, "malformed needs a variant"),
        ("malformed:bad", FaultParseError::UnknownVariant("bad".into()), "unknown malformed variant \"bad\"; expected one of: bad_magic, oversize_length"),
        ("latency:200ms", FaultParseError::NotKeyValue("200ms".into()), "expected key=value, got \"200ms\""),
        ("latency:rate=1", FaultParseError::UnknownKey { kind: "latency", key: "rate".into(), expected: "latency, jitter, direction, after_bytes, after_frames, on_type, at, probability, times".into() }, "latency does not take \"rate\"; expected one of: latency, jitter, direction"),
        ("drop_frame:times=1,times=2", FaultParseError::DuplicateKey("times".into()), "\"times\" given twice"),
        ("latency:latency=5", FaultParseError::BadValue { key: "latency".into(), value: "5".into(), expected: super::duration::EXPECTED_DURATION }, "bad value \"5\" for latency; expected a duration such as 200ms or 1.5s"),
        ("bandwidth:rate=-1", FaultParseError::BadValue { key: "rate".into(), value: "-1".into(), expected: "a whole number (0 or more)" }, "bad value \"-1\" for rate; expected a whole number"),
        ("reorder:direction=up", FaultParseError::BadValue { key: "direction".into(), value: "up".into(), expected: "to_guest, to_host or both" }, "expected to_guest, to_host or both"),
        ("reorder:probability=1.5", FaultParseError::BadValue { key: "probability".into(), value: "1.5".into(), expected: "a probability from 0 to 1" }, "expected a probability from 0 to 1"),
        ("reorder:on_type=", FaultParseError::BadValue { key: "on_type".into(), value: "".into(), expected: "a frame type name such as ping or log" }, "expected a frame type name"),
        ("reorder:at=soon", FaultParseError::BadValue { key: "at".into(), value: "soon".into(), expected: super::duration::EXPECTED_DURATION }, "bad value \"soon\" for at"),
    ];
    for (input, want, text) in cases {
        let err = input.parse::<FaultSpec>().expect_err(input);
        assert_eq!(&err, want, "{input}");
        assert!(
            err.to_string().starts_with(text) || err.to_string().contains(text),
            "{input}: {err}"
        );
    }
}
