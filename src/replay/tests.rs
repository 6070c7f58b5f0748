//! Unit tests of the guest and host replays on a small hand-built session.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use serde_json::{Value, json};

use super::*;
use crate::wire::protocol::Protocol;
use crate::wire::stream::{DecodeOptions, open_decoder};
use crate::wire::{DecodedFrame, Direction};

/// A recorded frame whose message is in the decoder's canonical JSON form.
fn frame(direction: Direction, ms: u64, type_name: &str, message: Value) -> RecordedFrame {
    let message = live(message).message;
    let id = message["message_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from);
    RecordedFrame {
        direction,
        at: Duration::from_millis(ms),
        type_name: type_name.into(),
        message,
        correlation_id: id,
        len: 0,
    }
}

fn session() -> Session {
    use Direction::{ToGuest, ToHost};
    Session::new(
        1,
        Protocol::Quantix,
        vec![
            frame(
                ToHost,
                1,
                "agent_ready",
                json!({"message_id": "", "agent_ready": {"hostname": "a"}}),
            ),
            frame(
                ToGuest,
                5,
                "ping",
                json!({"message_id": "1", "ping": {"sequence": 1}}),
            ),
            frame(
                ToHost,
                6,
                "pong",
                json!({"message_id": "1", "pong": {"sequence": 1, "version": "v"}}),
            ),
        ],
    )
}

fn decode(bytes: &[u8]) -> DecodedFrame {
    let mut dec = open_decoder(&Protocol::Quantix, &DecodeOptions::default());
    let mut buf = BytesMut::from(bytes);
    dec.decode(&mut buf).unwrap().unwrap()
}

fn live(message: Value) -> DecodedFrame {
    let bytes = codec::encode(&Protocol::Quantix, "", &message).unwrap();
    decode(&bytes)
}

#[test]
fn guest_answers_with_the_live_ids_once_per_recorded_request() {
    let s = Arc::new(session());
    assert_eq!(s.unsolicited, vec![0]);
    let mut g = ReplayGuest::new(s);
    let sched = g.unsolicited().unwrap();
    assert_eq!(sched[0].at, Duration::from_millis(1));
    assert_eq!(decode(&sched[0].bytes).type_name, "agent_ready");
    let ping = live(json!({"message_id": "42", "ping": {"sequence": 7}}));
    let GuestOutcome::Reply { frames, .. } = g.on_request(&ping).unwrap() else {
        panic!("no reply");
    };
    let pong = decode(&frames[0].1);
    assert_eq!(pong.message["message_id"], "42");
    assert_eq!(pong.message["pong"]["sequence"], 7);
    assert_eq!(pong.message["pong"]["version"], "v");
    assert_eq!(
        g.on_request(&ping).unwrap(),
        GuestOutcome::NoMatch {
            type_name: "ping".into()
        }
    );
}

#[test]
fn host_waits_for_the_recorded_unsolicited_frames_then_diffs() {
    let mut h = ReplayHost::new(
        session(),
        DiffOptions::for_protocol(&Protocol::Quantix, &[], false),
    );
    assert_eq!(h.next_action().unwrap(), HostAction::Wait);
    h.on_live(live(
        json!({"message_id": "", "agent_ready": {"hostname": "b"}}),
    ));
    assert!(
        matches!(h.next_action().unwrap(), HostAction::Send { ref type_name, .. } if type_name == "ping")
    );
    assert_eq!(h.next_action().unwrap(), HostAction::Wait);
    h.give_up_waiting();
    assert_eq!(h.next_action().unwrap(), HostAction::Done);
    let diffs: Vec<String> = h.report().diffs.iter().map(ToString::to_string).collect();
    assert_eq!(
        diffs,
        vec![
            r#"#1 agent_ready: agent_ready.hostname: recorded "a", live "b""#.to_string(),
            "#2 pong: missing (no live frame)".to_string(),
        ]
    );
}

#[test]
fn host_matches_replies_by_id_and_flags_unrecorded_types() {
    let mut h = ReplayHost::new(
        session(),
        DiffOptions::for_protocol(&Protocol::Quantix, &[], false),
    );
    h.on_live(live(
        json!({"message_id": "", "agent_ready": {"hostname": "a"}}),
    ));
    assert!(matches!(h.next_action().unwrap(), HostAction::Send { .. }));
    h.on_live(live(json!({"message_id": "", "telemetry": {}})));
    h.on_live(live(
        json!({"message_id": "1", "pong": {"sequence": 1, "version": "v"}}),
    ));
    assert_eq!(h.next_action().unwrap(), HostAction::Done);
    let r = h.report();
    assert_eq!(r.compared, 2);
    let diffs: Vec<String> = r.diffs.iter().map(ToString::to_string).collect();
    assert_eq!(diffs, vec!["+ telemetry: extra live frame"]);
}
