//! The UI side of the 20,000 frames/s figure: how fast the store ingests decoded frames with
//! its ring full, and how fast the Frames view redraws a full ring (TestBackend, 120×40).
//! Run: `cargo run --release -p guestwire-tui --example ui_throughput`.

use std::time::Instant;

use guestwire::capture::{CaptureItem, ItemKind};
use guestwire::wire::{DecodedFrame, Direction};
use guestwire_tui::sources::SourceEvent;
use guestwire_tui::store::{DEFAULT_RING, Store};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn item(i: u64) -> SourceEvent {
    let direction = if i.is_multiple_of(2) {
        Direction::ToGuest
    } else {
        Direction::ToHost
    };
    let id = (i / 2).to_string();
    SourceEvent::Item(CaptureItem {
        time_ns: 1_700_000_000_000_000_000 + i * 50_000,
        conn: 1 + i % 4,
        kind: ItemKind::Frame {
            direction,
            frame: DecodedFrame {
                offset: i * 64,
                len: 64,
                type_name: if i.is_multiple_of(2) { "ping" } else { "pong" }.into(),
                summary: format!("id={id} seq={i}"),
                message: serde_json::json!({ "id": id }),
                correlation_id: Some(id),
                raw: None,
            },
        },
    })
}

fn main() {
    let n = 400_000u64;
    let mut store = Store::new(DEFAULT_RING, "bench");
    let t = Instant::now();
    for i in 0..n {
        store.ingest(item(i));
    }
    let ingest = t.elapsed().as_secs_f64();
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let draws = 200;
    let t = Instant::now();
    for i in 0..draws {
        store.ingest(item(n + i));
        term.draw(|f| guestwire_tui::views::draw(f, &store))
            .expect("draw");
    }
    let draw = t.elapsed().as_secs_f64();
    println!(
        "ingest: {n} frames in {ingest:.3} s = {:.0} frames/s (ring {DEFAULT_RING}, {} dropped)",
        n as f64 / ingest,
        store.dropped()
    );
    println!(
        "redraw: {draws} Frames views of a full ring in {draw:.3} s = {:.1} redraws/s",
        f64::from(draws as u32) / draw
    );
}
