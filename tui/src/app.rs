//! The terminal loop: advance the playback clock, pull due events from the source into the store,
//! draw, and turn keys into actions. The only part that touches the terminal.

use std::io;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyEventKind};
use ratatui::DefaultTerminal;

use crate::keys;
use crate::sources::Source;
use crate::store::Store;
use crate::views;

/// How long the loop waits for a key before it redraws: at least 20 redraws per second.
pub const TICK: Duration = Duration::from_millis(50);

/// The most events moved from the source into the store per tick (keeps redraws coming when a
/// source floods).
pub const EVENTS_PER_TICK: usize = 100_000;

/// One step without the terminal: advance the clock by `elapsed_ns`, pull due events, and hand
/// a changed fault list to the source.
pub fn step(
    store: &mut Store,
    source: &mut dyn Source,
    elapsed_ns: u64,
    buf: &mut Vec<crate::sources::SourceEvent>,
) {
    store.advance(elapsed_ns);
    store.source_dropped = source.dropped();
    if store.paused && !source.live() {
        return;
    }
    buf.clear();
    source.poll(store.clock_ns, EVENTS_PER_TICK, buf);
    for e in buf.drain(..) {
        store.ingest(e);
    }
    if let Some(specs) = store.faults.take_change() {
        let notice = match source.set_faults(&specs) {
            Ok(()) if specs.is_empty() => "faults off for new connections".to_string(),
            Ok(()) => format!("new connections get: {}", specs.join(" ")),
            Err(e) => format!("faults not changed: {e}"),
        };
        store.ingest(crate::sources::SourceEvent::Notice(notice));
    }
}

/// Runs the UI on `terminal` until the user quits.
pub fn run(
    terminal: &mut DefaultTerminal,
    store: &mut Store,
    source: &mut dyn Source,
) -> io::Result<()> {
    let mut last = Instant::now();
    let mut buf = Vec::new();
    while !store.quit {
        let now = Instant::now();
        let elapsed = u64::try_from(now.duration_since(last).as_nanos()).unwrap_or(u64::MAX);
        last = now;
        step(store, source, elapsed, &mut buf);
        terminal.draw(|f| views::draw(f, store))?;
        if event::poll(TICK)?
            && let Event::Key(k) = event::read()?
            && k.kind != KeyEventKind::Release
            && let Some(a) = keys::action(k, store.filter_input.is_some())
        {
            store.apply(a);
        }
    }
    Ok(())
}
