//! The selected frame: its header fields and its decoded message as a tree, and below them its
//! bytes as a hex dump (the first [`RAW_KEEP`](crate::store::RAW_KEEP) of them).

use guestwire::capture::summary::human_ns;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use serde_json::Value;

use super::frames::{arrow, rel_time};
use super::hexdump;
use crate::store::Store;

/// The most tree lines built (a hostile message may be huge).
const MAX_LINES: usize = 2_000;

/// Appends `v` as an indented tree under `key`.
pub fn tree(key: &str, v: &Value, depth: usize, out: &mut Vec<String>) {
    if out.len() >= MAX_LINES {
        return;
    }
    let pad = "  ".repeat(depth);
    match v {
        Value::Object(m) => {
            out.push(format!("{pad}▾ {key}"));
            for (k, v) in m {
                tree(k, v, depth + 1, out);
            }
        }
        Value::Array(a) => {
            out.push(format!("{pad}▾ {key} [{}]", a.len()));
            for (i, v) in a.iter().enumerate() {
                tree(&i.to_string(), v, depth + 1, out);
            }
        }
        other => out.push(format!("{pad}{key}: {other}")),
    }
}

/// Draws the detail of the selected frame into `area`.
pub fn draw(f: &mut Frame, area: Rect, store: &Store) {
    let block = Block::new().borders(Borders::TOP).title(" detail ");
    let Some(r) = store.selected_row() else {
        f.render_widget(Paragraph::new("no frame selected").block(block), area);
        return;
    };
    let mut lines = vec![
        format!(
            "seq {}  time {}  conn {}  {}",
            r.seq,
            rel_time(store, r.time_ns),
            r.conn,
            arrow(r.direction)
        ),
        format!(
            "type {}  size {}  id {}",
            r.type_name,
            r.size,
            r.id.as_deref().unwrap_or("-")
        ),
    ];
    if let Some(l) = r.latency_ns {
        lines.push(format!("reply latency {}", human_ns(l)));
    }
    lines.push(format!("summary {}", r.summary));
    lines.push(String::new());
    tree("message", &r.message, 0, &mut lines);
    let style = if r.error {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    let hex = match &r.raw {
        Some(raw) => hexdump::lines(raw, r.size),
        None => vec!["(no bytes kept for this row)".to_string()],
    };
    // The hex dump gets what it needs, up to half the height; the tree the rest.
    let hex_height = u16::try_from(hex.len() + 1)
        .unwrap_or(u16::MAX)
        .min(area.height / 2);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(hex_height)]).areas(area);
    let text: Vec<Line> = lines.into_iter().map(Line::from).collect();
    f.render_widget(
        Paragraph::new(text)
            .style(style)
            .block(block)
            .wrap(Wrap { trim: false }),
        top,
    );
    let text: Vec<Line> = hex.into_iter().map(Line::from).collect();
    f.render_widget(
        Paragraph::new(text).block(
            Block::new()
                .borders(Borders::TOP)
                .title(format!(" bytes ({}) ", r.size)),
        ),
        bottom,
    );
}
