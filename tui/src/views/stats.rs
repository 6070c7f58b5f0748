//! Rates (last second and moving window), latency (all and moving window), errors and
//! unanswered requests.

use guestwire::capture::summary::{Latency, human_ns};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};

use crate::rates::WINDOW_SECS;
use crate::store::Store;

fn latency(l: &Latency) -> String {
    format!(
        "p50 {}  p99 {}  max {}  ({} pairs)",
        human_ns(l.p50),
        human_ns(l.p99),
        human_ns(l.max),
        l.count
    )
}

/// The stats as text lines: totals, the last second, and the moving window.
pub fn lines(store: &Store) -> Vec<String> {
    let s = store.summary();
    let (fps, bps) = store.rates();
    let w = store.window();
    let [tg, th] = store.bytes();
    let mut out = vec![
        format!("frames      {}", s.frames()),
        format!(
            "frames/s    {fps} last second, {} over the last {} s",
            w.frames_per_s, w.secs
        ),
        format!(
            "bytes/s     {bps} last second, {} over the last {} s",
            w.bytes_per_s, w.secs
        ),
        format!("bytes       → guest {tg}  ← host {th}"),
        format!("errors      {}", s.errors()),
    ];
    out.push(match s.latency() {
        Some(l) => format!("latency     {}  (all)", latency(&l)),
        None => "latency     -".into(),
    });
    out.push(match &w.latency {
        Some(l) => format!("            {}  (last {} s)", latency(l), WINDOW_SECS),
        None => format!("            -  (last {WINDOW_SECS} s)"),
    });
    out.push(format!("unanswered  {}", s.unanswered().0));
    out.push(format!("resets      {}", s.resets()));
    out.push(String::new());
    out.push("by type".into());
    for (t, n) in s.frames_by_type() {
        out.push(format!("  {t:<24} {n}"));
    }
    out
}

/// Draws the stats into `area`.
pub fn draw(f: &mut Frame, area: Rect, store: &Store) {
    let [top, spark] = Layout::vertical([Constraint::Min(1), Constraint::Length(4)]).areas(area);
    let text: Vec<Line> = lines(store).into_iter().map(Line::from).collect();
    f.render_widget(
        Paragraph::new(text).block(Block::new().borders(Borders::TOP).title(" stats ")),
        top,
    );
    let data: Vec<u64> = store.seconds().iter().map(|s| s.frames).collect();
    f.render_widget(
        Sparkline::default()
            .block(Block::new().borders(Borders::TOP).title(" frames/s "))
            .data(&data),
        spark,
    );
}
