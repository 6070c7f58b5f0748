//! Snapshot tests of every view (ratatui's TestBackend + insta), fed from fixture captures.

mod support;

use guestwire_tui::keys::Action;
use guestwire_tui::sources::{SocketRow, SourceEvent};
use guestwire_tui::store::{Store, View};
use support::{line_is_red, loaded, render, text};

#[test]
fn frames_view_of_quantix_session() {
    let mut store = loaded("quantix-session.pcap", 1000);
    store.apply(Action::Top);
    insta::assert_snapshot!(text(&render(&store, 120, 24)));
}

#[test]
fn frames_view_shows_errors_in_red() {
    let mut store = loaded("faults/malformed-bad_magic.pcap", 1000);
    store.apply(Action::Top);
    let t = render(&store, 120, 16);
    let screen = text(&t);
    let y = screen
        .lines()
        .position(|l| l.contains("garbage"))
        .expect("an error row");
    assert!(line_is_red(&t, y as u16), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn detail_view_of_a_reply_with_latency() {
    let mut store = loaded("qga-session.pcap", 1000);
    store.apply(Action::Top);
    for _ in 0..store.frames().len() {
        if store.selected_row().is_some_and(|r| r.latency_ns.is_some()) {
            break;
        }
        store.apply(Action::Down);
    }
    assert!(store.selected_row().is_some_and(|r| r.latency_ns.is_some()));
    store.apply(Action::Open);
    assert_eq!(store.view, View::Detail);
    insta::assert_snapshot!(text(&render(&store, 100, 24)));
}

#[test]
fn stats_view_of_fcexec_run() {
    let mut store = loaded("fcexec-run.pcap", 1000);
    store.apply(Action::NextView);
    store.apply(Action::NextView);
    assert_eq!(store.view, View::Stats);
    insta::assert_snapshot!(text(&render(&store, 100, 30)));
}

#[test]
fn sockets_view_of_a_sample() {
    let mut store = Store::new(10, "scan /run/vm");
    store.ingest(SourceEvent::Sockets(vec![
        SocketRow {
            path: "/run/vm/qga.sock".into(),
            state: "listening".into(),
            peers: vec!["4242/qemu".into()],
            recv_q: 0,
            send_q: 0,
            history: vec![0, 0, 0],
            finding: None,
        },
        SocketRow {
            path: "/run/vm/agent.sock".into(),
            state: "connected".into(),
            peers: vec!["4242/qemu".into(), "77/agentctl".into()],
            recv_q: 4096,
            send_q: 12,
            history: vec![0, 512, 1024, 4096, 4096],
            finding: Some("stuck_reader".into()),
        },
    ]));
    store.view = View::Sockets;
    store.apply(Action::Down);
    insta::assert_snapshot!(text(&render(&store, 100, 12)));
}

#[test]
fn help_overlay_and_filter_prompt() {
    let mut store = loaded("quantix-session.pcap", 1000);
    store.apply(Action::ToggleHelp);
    store.apply(Action::StartFilter);
    for c in "pin".chars() {
        store.apply(Action::FilterChar(c));
    }
    insta::assert_snapshot!(text(&render(&store, 100, 20)));
}

#[test]
fn detail_view_hex_dump_of_a_quantix_frame() {
    let mut store = loaded("quantix-session.pcap", 1000);
    store.apply(Action::Top);
    store.apply(Action::Open);
    let row = store.selected_row().expect("a row");
    let raw = row.raw.clone().expect("bytes kept");
    assert_eq!(raw.len() as u64, row.size);
    let screen = text(&render(&store, 100, 30));
    assert!(screen.contains(" bytes ("), "{screen}");
    assert!(screen.contains("0000  "), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn detail_view_hex_dump_says_how_many_bytes_were_cut() {
    use guestwire::capture::{CaptureItem, ItemKind};
    use guestwire::wire::{DecodedFrame, Direction};
    use guestwire_tui::store::RAW_KEEP;
    let mut store = Store::new(10, "test");
    let len = RAW_KEEP as u64 + 904;
    store.ingest(SourceEvent::Item(CaptureItem {
        time_ns: 1,
        conn: 1,
        kind: ItemKind::Frame {
            direction: Direction::ToHost,
            frame: DecodedFrame {
                offset: 0,
                len,
                type_name: "data".into(),
                summary: String::new(),
                message: serde_json::Value::Null,
                correlation_id: None,
                raw: Some(vec![b'a'; RAW_KEEP].into()),
            },
        },
    }));
    store.apply(Action::Open);
    let rows = guestwire_tui::views::hexdump::lines(
        store
            .selected_row()
            .and_then(|r| r.raw.as_deref())
            .expect("raw"),
        len,
    );
    assert_eq!(rows.len(), RAW_KEEP / 16 + 1);
    assert_eq!(rows.last().map(String::as_str), Some("… 904 more bytes"));
}

/// A live source that has dropped `dropped` events and yields the fixture's items.
struct Lossy {
    inner: Vec<SourceEvent>,
    dropped: u64,
}

impl guestwire_tui::sources::Source for Lossy {
    fn poll(&mut self, _clock_ns: u64, max: usize, out: &mut Vec<SourceEvent>) -> bool {
        let n = max.min(self.inner.len());
        out.extend(self.inner.drain(..n));
        true
    }

    fn label(&self) -> String {
        "lossy".into()
    }

    fn live(&self) -> bool {
        true
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[test]
fn status_line_counts_evicted_frames_and_dropped_events() {
    use guestwire_tui::sources::Source;
    let mut fixture = support::source("quantix-session.pcap");
    let mut inner = Vec::new();
    for _ in 0..1000 {
        if !fixture.poll(u64::MAX, 1000, &mut inner) {
            break;
        }
    }
    let mut source = Lossy { inner, dropped: 0 };
    let mut store = Store::new(5, source.label());
    let mut buf = Vec::new();
    guestwire_tui::app::step(&mut store, &mut source, 0, &mut buf);
    assert_eq!(store.dropped(), 7);
    assert!(!support::text(&render(&store, 100, 8)).contains("events dropped"));
    source.dropped = 42;
    guestwire_tui::app::step(&mut store, &mut source, 0, &mut buf);
    let screen = text(&render(&store, 100, 8));
    assert!(
        screen.contains("5/5 frames (7 evicted, 42 events dropped)"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

/// A ping (even `i`) or its pong, `at_ns` into the run.
fn ping_pong(i: u64, at_ns: u64) -> SourceEvent {
    use guestwire::capture::{CaptureItem, ItemKind};
    use guestwire::wire::{DecodedFrame, Direction};
    let id = (i / 2).to_string();
    let (direction, type_name) = if i.is_multiple_of(2) {
        (Direction::ToGuest, "ping")
    } else {
        (Direction::ToHost, "pong")
    };
    SourceEvent::Item(CaptureItem {
        time_ns: 1_700_000_000_000_000_000 + at_ns,
        conn: 1,
        kind: ItemKind::Frame {
            direction,
            frame: DecodedFrame {
                offset: 0,
                len: 30,
                type_name: type_name.into(),
                summary: format!("id={id}"),
                message: serde_json::Value::Null,
                correlation_id: Some(id),
                raw: None,
            },
        },
    })
}

#[test]
fn stats_view_shows_the_moving_window_beside_the_totals() {
    let mut store = Store::new(100, "test");
    // 20 s at 100 frames/s, then 5 s at 20 frames/s (and one frame into the next second).
    for i in 0..2000 {
        store.ingest(ping_pong(i, i * 10_000_000));
    }
    for j in 0..101 {
        store.ingest(ping_pong(2000 + j, 20_000_000_000 + j * 50_000_000));
    }
    let w = store.window();
    assert_eq!((w.secs, w.frames_per_s, w.bytes_per_s), (10, 60, 1800));
    store.view = View::Stats;
    let screen = text(&render(&store, 100, 16));
    assert!(
        screen.contains("frames/s    20 last second, 60 over the last 10 s"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn faults_view_lists_the_menu_with_toggles_and_notices() {
    use guestwire_tui::faults::{FaultPanel, menu};
    let mut store = Store::new(10, "mock serial VMM (quantix) on unix:/tmp/tap.sock");
    store.faults = FaultPanel::new(
        "mock serial VMM (quantix)",
        menu(&["drop_frame:on_type=pong".into()]),
    );
    store.view = View::Faults;
    store.apply(Action::Down);
    store.apply(Action::Open);
    store.ingest(SourceEvent::Notice(
        "new connections get: bandwidth:rate=1024 drop_frame:on_type=pong".into(),
    ));
    let screen = text(&render(&store, 100, 40));
    assert!(screen.contains("[x] bandwidth:rate=1024"), "{screen}");
    assert!(screen.contains("[x] drop_frame:on_type=pong"), "{screen}");
    assert!(screen.contains("[ ] latency:latency=100ms"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn faults_view_without_a_mock_says_how_to_get_one() {
    let mut store = Store::new(10, "capture x");
    store.view = View::Faults;
    let screen = text(&render(&store, 100, 6));
    assert!(screen.contains("--mock serial|hvsock"), "{screen}");
}

#[test]
fn frames_view_draws_the_window_around_the_selection_of_a_full_ring() {
    let mut store = Store::new(10_000, "test");
    for i in 0..20_000 {
        store.ingest(ping_pong(i, i * 50_000));
    }
    assert_eq!(store.frames().len(), 10_000);
    let screen = text(&render(&store, 120, 12));
    let last = screen.lines().nth(10).unwrap_or_default();
    assert!(
        last.contains("pong") && last.contains("id=9999"),
        "{screen}"
    );
    store.apply(Action::Top);
    let screen = text(&render(&store, 120, 12));
    let first = screen.lines().nth(3).unwrap_or_default();
    assert!(
        first.contains("ping") && first.contains("id=5000"),
        "{screen}"
    );
}
