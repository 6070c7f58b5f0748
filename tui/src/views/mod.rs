//! Views: they only draw the [`Store`]. [`draw`] lays out the tabs, the current view, the status
//! line and the help overlay.

pub mod detail;
pub mod faults;
pub mod frames;
pub mod hexdump;
pub mod sockets;
pub mod stats;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs};

use crate::keys::HELP;
use crate::store::{Store, View};

/// Draws the whole screen.
pub fn draw(f: &mut Frame, store: &Store) {
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let titles = View::ALL.iter().map(|v| v.title());
    let selected = View::ALL.iter().position(|v| *v == store.view).unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        tabs,
    );
    match store.view {
        View::Frames => frames::draw(f, body, store),
        View::Detail => detail::draw(f, body, store),
        View::Stats => stats::draw(f, body, store),
        View::Sockets => sockets::draw(f, body, store),
        View::Faults => faults::draw(f, body, store),
    }
    f.render_widget(Paragraph::new(status_line(store)), status);
    if store.help {
        help(f, body);
    }
}

/// The status line: source, playback, follow, filter, ring use, frames evicted from the ring and
/// events the source dropped because the UI fell behind.
pub fn status_line(store: &Store) -> String {
    let state = if store.ended {
        "ended"
    } else if store.paused {
        "paused"
    } else {
        "playing"
    };
    let filter = match &store.filter_input {
        Some(f) => format!(" /{f}_"),
        None if !store.filter.is_empty() => format!(" filter:{}", store.filter),
        None => String::new(),
    };
    let mut lost = Vec::new();
    if store.dropped() > 0 {
        lost.push(format!("{} evicted", store.dropped()));
    }
    if store.source_dropped > 0 {
        lost.push(format!("{} events dropped", store.source_dropped));
    }
    let lost = if lost.is_empty() {
        String::new()
    } else {
        format!(" ({})", lost.join(", "))
    };
    format!(
        "{} | {state} {} | {}{} | {}/{} frames{lost} | ? help",
        store.source,
        store.speed.label(),
        if store.follow { "follow" } else { "manual" },
        filter,
        store.frames().len(),
        store.capacity(),
    )
}

fn help(f: &mut Frame, area: Rect) {
    let w = 52.min(area.width);
    let h = (HELP.len() as u16 + 2).min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| Line::from(format!("{k:<16} {what}")))
        .collect();
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" keys ")),
        rect,
    );
}
