//! Key-driven state tests on the store, fed from fixture captures.

mod support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use guestwire_tui::app::step;
use guestwire_tui::keys::{Action, action};
use guestwire_tui::sources::Source;
use guestwire_tui::store::{Speed, Store, View};
use support::{loaded, source};

fn press(store: &mut Store, code: KeyCode) {
    let k = KeyEvent::new(code, KeyModifiers::NONE);
    if let Some(a) = action(k, store.filter_input.is_some()) {
        store.apply(a);
    }
}

#[test]
fn the_ring_keeps_only_the_last_n_frames() {
    let all = loaded("quantix-session.pcap", 100_000);
    let total = all.frames().len();
    assert!(total > 5, "{total}");
    let small = loaded("quantix-session.pcap", 3);
    assert_eq!(small.frames().len(), 3);
    assert_eq!(small.dropped(), (total - 3) as u64);
    let last: Vec<u64> = small.frames().iter().map(|r| r.seq).collect();
    assert_eq!(
        last,
        vec![total as u64 - 3, total as u64 - 2, total as u64 - 1]
    );
    // The summary still counts everything.
    assert_eq!(small.summary().frames(), all.summary().frames());
}

#[test]
fn jk_g_and_shift_g_move_the_selection_and_follow() {
    let mut store = loaded("quantix-session.pcap", 1000);
    let n = store.frames().len() as u64;
    assert!(store.follow);
    assert_eq!(store.selected, Some(n - 1));
    press(&mut store, KeyCode::Char('g'));
    assert_eq!(store.selected, Some(0));
    assert!(!store.follow);
    press(&mut store, KeyCode::Char('j'));
    press(&mut store, KeyCode::Char('j'));
    press(&mut store, KeyCode::Char('k'));
    assert_eq!(store.selected, Some(1));
    press(&mut store, KeyCode::Char('k'));
    press(&mut store, KeyCode::Char('k'));
    assert_eq!(store.selected, Some(0));
    press(&mut store, KeyCode::Char('G'));
    assert_eq!(store.selected, Some(n - 1));
    assert!(store.follow);
}

#[test]
fn tab_cycles_views_and_enter_esc_open_and_close_detail() {
    let mut store = loaded("qga-session.pcap", 1000);
    press(&mut store, KeyCode::Tab);
    assert_eq!(store.view, View::Detail);
    press(&mut store, KeyCode::Tab);
    press(&mut store, KeyCode::Tab);
    assert_eq!(store.view, View::Sockets);
    press(&mut store, KeyCode::Tab);
    assert_eq!(store.view, View::Faults);
    press(&mut store, KeyCode::Tab);
    assert_eq!(store.view, View::Frames);
    press(&mut store, KeyCode::BackTab);
    assert_eq!(store.view, View::Faults);
    for _ in 0..4 {
        press(&mut store, KeyCode::BackTab);
    }
    assert_eq!(store.view, View::Frames);
    press(&mut store, KeyCode::Enter);
    assert_eq!(store.view, View::Detail);
    press(&mut store, KeyCode::Esc);
    assert_eq!(store.view, View::Frames);
    press(&mut store, KeyCode::Char('?'));
    assert!(store.help);
    press(&mut store, KeyCode::Esc);
    assert!(!store.help);
    press(&mut store, KeyCode::Char('q'));
    assert!(store.quit);
}

#[test]
fn slash_filters_by_type_and_esc_clears() {
    let mut store = loaded("qga-session.pcap", 1000);
    let all = store.visible().len();
    let wanted = store.frames()[0].type_name.clone();
    press(&mut store, KeyCode::Char('/'));
    for c in wanted.chars() {
        press(&mut store, KeyCode::Char(c));
    }
    // While typing, `q` is text, not quit.
    press(&mut store, KeyCode::Char('q'));
    press(&mut store, KeyCode::Backspace);
    assert!(!store.quit);
    press(&mut store, KeyCode::Enter);
    assert_eq!(store.filter, wanted);
    let shown = store.visible();
    assert!(
        !shown.is_empty() && shown.len() < all,
        "{} of {all}",
        shown.len()
    );
    assert!(
        shown
            .iter()
            .all(|r| r.type_name.contains(&wanted) || r.summary.contains(&wanted))
    );
    let sel = store.selected_row().expect("selection");
    assert!(store.matches(sel));
    press(&mut store, KeyCode::Esc);
    assert!(store.filter.is_empty());
    assert_eq!(store.visible().len(), all);
}

#[test]
fn playback_follows_the_clock_and_space_pauses_it() {
    let mut src = source("quantix-session.pcap");
    let mut store = Store::new(1000, src.label());
    let mut buf = Vec::new();
    // Nothing is due before the clock has started: only items at the first record's time.
    step(&mut store, &mut src, 0, &mut buf);
    let at_start = store.summary().frames();
    press(&mut store, KeyCode::Char(' '));
    assert!(store.paused);
    for _ in 0..100 {
        step(&mut store, &mut src, 10_000_000_000, &mut buf);
    }
    assert_eq!(store.summary().frames(), at_start, "paused playback moved");
    assert_eq!(store.clock_ns, 0);
    press(&mut store, KeyCode::Char(' '));
    press(&mut store, KeyCode::Char('s'));
    press(&mut store, KeyCode::Char('s'));
    assert_eq!(store.speed, Speed::Max);
    for _ in 0..100 {
        step(&mut store, &mut src, 1, &mut buf);
        if store.ended {
            break;
        }
    }
    assert!(store.ended);
    let all = loaded("quantix-session.pcap", 1000);
    assert_eq!(store.summary().frames(), all.summary().frames());
}

#[test]
fn speed_ten_runs_the_clock_ten_times_faster() {
    let mut store = Store::new(10, "x");
    store.advance(5);
    assert_eq!(store.clock_ns, 5);
    store.apply(Action::CycleSpeed);
    store.advance(5);
    assert_eq!(store.clock_ns, 55);
}

#[test]
fn faults_view_keys_toggle_entries_and_hand_the_list_over_once() {
    use guestwire_tui::faults::{FaultPanel, menu};
    let mut store = loaded("quantix-session.pcap", 1000);
    store.faults = FaultPanel::new("mock", menu(&[]));
    for _ in 0..4 {
        press(&mut store, KeyCode::Tab);
    }
    assert_eq!(store.view, View::Faults);
    let paused = store.paused;
    press(&mut store, KeyCode::Char('j'));
    press(&mut store, KeyCode::Char('j'));
    press(&mut store, KeyCode::Enter);
    assert_eq!(store.view, View::Faults, "enter toggles, it opens nothing");
    let third = store.faults.menu[2].spec.clone();
    assert_eq!(store.faults.take_change(), Some(vec![third.clone()]));
    assert_eq!(store.faults.take_change(), None, "handed over once");
    press(&mut store, KeyCode::Char('G'));
    press(&mut store, KeyCode::Char(' '));
    assert_eq!(
        store.paused, paused,
        "space toggles the fault, not the pause"
    );
    let last = store.faults.menu.last().expect("entries").spec.clone();
    assert_eq!(store.faults.take_change(), Some(vec![third.clone(), last]));
    press(&mut store, KeyCode::Char('G'));
    press(&mut store, KeyCode::Enter);
    press(&mut store, KeyCode::Char('g'));
    press(&mut store, KeyCode::Char('j'));
    press(&mut store, KeyCode::Char('j'));
    press(&mut store, KeyCode::Char(' '));
    assert_eq!(store.faults.take_change(), Some(Vec::new()));
    // Without a mock VMM the source refuses, and says so.
    store.faults.toggle();
    let mut src = source("quantix-session.pcap");
    step(&mut store, &mut src, 0, &mut Vec::new());
    let notice = store.notices().back().cloned().unwrap_or_default();
    assert!(notice.contains("--mock"), "{notice}");
}
