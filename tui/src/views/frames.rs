//! The frame list: time, direction, connection, type, size, reply latency, summary; errors in red.

use guestwire::capture::summary::human_ns;
use guestwire::wire::Direction;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Row, Table, TableState};

use crate::store::{FrameRow, Store};

/// The direction as an arrow: `→` towards the guest, `←` towards the host.
pub fn arrow(d: Option<Direction>) -> &'static str {
    match d {
        Some(Direction::ToGuest) => "→",
        Some(Direction::ToHost) => "←",
        None => "·",
    }
}

/// Seconds since the first item, with microseconds.
pub fn rel_time(store: &Store, time_ns: u64) -> String {
    let t = time_ns.saturating_sub(store.first_ns().unwrap_or(time_ns));
    format!("{}.{:06}", t / 1_000_000_000, (t % 1_000_000_000) / 1_000)
}

fn row<'a>(store: &Store, r: &'a FrameRow) -> Row<'a> {
    let cells = vec![
        rel_time(store, r.time_ns),
        arrow(r.direction).to_string(),
        r.conn.to_string(),
        r.type_name.clone(),
        if r.error {
            String::new()
        } else {
            r.size.to_string()
        },
        r.latency_ns.map(human_ns).unwrap_or_default(),
        r.summary.clone(),
    ];
    let row = Row::new(cells);
    if r.error {
        row.style(Style::new().fg(Color::Red))
    } else {
        row
    }
}

/// Draws the list into `area`. Only the rows that fit are built (the ring may hold many
/// thousands): the window ends at the selection once it is below the first screenful.
pub fn draw(f: &mut Frame, area: Rect, store: &Store) {
    let visible = store.visible();
    let selected = store
        .selected
        .and_then(|s| visible.iter().position(|r| r.seq == s));
    // The block's top border and the header take two lines.
    let height = usize::from(area.height.saturating_sub(2)).max(1);
    let start = selected.map_or(0, |s| (s + 1).saturating_sub(height));
    let end = (start + height).min(visible.len());
    let rows: Vec<Row> = visible[start..end].iter().map(|r| row(store, r)).collect();
    let selected = selected.map(|s| s - start);
    let widths = [
        Constraint::Length(10),
        Constraint::Length(1),
        Constraint::Length(4),
        Constraint::Length(20),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Min(10),
    ];
    let header = Row::new(["time", "", "conn", "type", "size", "latency", "summary"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let table = Table::new(rows, widths)
        .header(header)
        .block(
            Block::new()
                .borders(Borders::TOP)
                .title(format!(" {} frames shown ", visible.len())),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(selected);
    f.render_stateful_widget(table, area, &mut state);
}
