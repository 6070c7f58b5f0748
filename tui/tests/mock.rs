//! A tap driving a mock VMM over real Unix sockets: toggling a fault in the Faults view (keys
//! → store → `app::step` → the VMM's live fault list) changes what a real quantix client gets on
//! its next connection, and toggling it off restores it.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use guestwire::host::DialOptions;
use guestwire::host::quantix::{Framing, QuantixClient};
use guestwire::wire::Direction;
use guestwire::wire::protocol::Protocol;
use guestwire_tui::app::step;
use guestwire_tui::faults::{FaultPanel, menu};
use guestwire_tui::keys::action;
use guestwire_tui::sources::Source;
use guestwire_tui::sources::mock::{MockConfig, MockKind, MockSource};
use guestwire_tui::store::{Store, View};

fn press(store: &mut Store, code: KeyCode) {
    if let Some(a) = action(KeyEvent::new(code, KeyModifiers::NONE), false) {
        store.apply(a);
    }
}

/// The correlation ids of the pongs the client got on `conn`, as the tap saw them.
fn pong_ids(store: &Store, conn: u64) -> Vec<String> {
    store
        .frames()
        .iter()
        .filter(|r| r.conn == conn && r.direction == Some(Direction::ToHost))
        .filter(|r| r.type_name == "pong")
        .filter_map(|r| r.id.clone())
        .collect()
}

/// Steps the UI until `done` holds (bounded by a deadline).
fn step_until(store: &mut Store, src: &mut MockSource, what: &str, done: impl Fn(&Store) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = Vec::new();
    while !done(store) {
        assert!(Instant::now() < deadline, "{what}: {:#?}", store.frames());
        step(store, src, 0, &mut buf);
        std::thread::yield_now();
    }
}

/// Two pings on a fresh connection; returns when both are answered.
fn two_pings(rt: &tokio::runtime::Runtime, src: &MockSource) {
    rt.block_on(async {
        let client = QuantixClient::connect(src.listen(), DialOptions::default(), Framing::Qtx1)
            .await
            .expect("connect through the tap");
        client.ping().await.expect("first ping");
        client.ping().await.expect("second ping");
    });
}

fn toggle_duplicate_frame(store: &mut Store, src: &mut MockSource) {
    let i = store
        .faults
        .menu
        .iter()
        .position(|t| t.spec == "duplicate_frame")
        .expect("duplicate_frame in the menu");
    press(store, KeyCode::Char('g'));
    for _ in 0..i {
        press(store, KeyCode::Char('j'));
    }
    press(store, KeyCode::Enter);
    step(store, src, 0, &mut Vec::new());
}

fn toggling_changes_what_the_client_gets(kind: MockKind) {
    let mut src = MockSource::start(MockConfig {
        kind,
        protocol: Protocol::Quantix,
        listen: None,
        faults: Vec::new(),
        capture: None,
    })
    .expect("mock VMM and tap");
    let mut store = Store::new(1000, src.label());
    store.faults = FaultPanel::new(src.target(), menu(&[]));
    store.view = View::Faults;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // Connection 1, no fault: one pong per ping.
    two_pings(&rt, &src);
    step_until(&mut store, &mut src, "conn 1 pongs", |s| {
        pong_ids(s, 1).len() >= 2
    });
    assert_eq!(pong_ids(&store, 1).len(), 2, "{:#?}", store.frames());

    // Connection 2, duplicate_frame on: the client gets a pong twice.
    toggle_duplicate_frame(&mut store, &mut src);
    let notice = store.notices().back().cloned().unwrap_or_default();
    assert!(notice.contains("duplicate_frame"), "{notice}");
    two_pings(&rt, &src);
    step_until(&mut store, &mut src, "a duplicated pong on conn 2", |s| {
        let ids = pong_ids(s, 2);
        ids.iter()
            .any(|id| ids.iter().filter(|x| *x == id).count() > 1)
    });

    // Connection 3, the fault off again: each pong once. The ToHost stream is in order, so
    // once the second pong is there, a duplicate of the first would be too.
    toggle_duplicate_frame(&mut store, &mut src);
    assert_eq!(store.faults.menu.iter().filter(|t| t.on).count(), 0);
    two_pings(&rt, &src);
    step_until(&mut store, &mut src, "conn 3 pongs", |s| {
        pong_ids(s, 3).len() >= 2
    });
    let ids = pong_ids(&store, 3);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    let dir = src.dir().to_path_buf();
    drop(src);
    assert!(!dir.exists(), "the private directory is removed");
}

#[test]
fn serial_mock_fault_toggle_changes_what_a_real_client_sees() {
    toggling_changes_what_the_client_gets(MockKind::Serial);
}

#[test]
fn hvsock_mock_fault_toggle_changes_what_a_real_client_sees() {
    toggling_changes_what_the_client_gets(MockKind::Hvsock);
}
