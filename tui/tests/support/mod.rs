//! Shared helpers: a store fed from a fixture capture, and the screen as text.

#![allow(dead_code)]

use std::fs::File;
use std::io::BufReader;

use guestwire::capture::ProtocolChoice;
use guestwire_tui::sources::capture::CaptureSource;
use guestwire_tui::sources::{Source, SourceEvent};
use guestwire_tui::store::Store;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

/// The path of a fixture capture.
pub fn fixture(name: &str) -> String {
    format!("{}/../fixtures/captures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A capture source over a fixture.
pub fn source(name: &str) -> CaptureSource<BufReader<File>> {
    let f = File::open(fixture(name)).expect("fixture");
    CaptureSource::new(BufReader::new(f), ProtocolChoice::Auto, name)
}

/// A store with the whole fixture played into it (bounded loop).
pub fn loaded(name: &str, ring: usize) -> Store {
    loaded_path(&fixture(name), name, ring)
}

/// A store with the whole capture at `path` played into it (bounded loop).
pub fn loaded_path(path: &str, name: &str, ring: usize) -> Store {
    let f = File::open(path).expect("capture");
    let mut src = CaptureSource::new(BufReader::new(f), ProtocolChoice::Auto, name);
    let mut store = Store::new(ring, src.label());
    let mut buf: Vec<SourceEvent> = Vec::new();
    for _ in 0..10_000 {
        let more = src.poll(u64::MAX, 1000, &mut buf);
        for e in buf.drain(..) {
            store.ingest(e);
        }
        if !more {
            return store;
        }
    }
    panic!("fixture {name} did not end");
}

/// Draws the store on a `w`×`h` test terminal.
pub fn render(store: &Store, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| guestwire_tui::views::draw(f, store))
        .expect("draw");
    t
}

/// The screen as text lines.
pub fn text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Whether any cell of line `y` is drawn red.
pub fn line_is_red(t: &Terminal<TestBackend>, y: u16) -> bool {
    let buf = t.backend().buffer();
    (0..buf.area.width).any(|x| buf[(x, y)].fg == Color::Red)
}
