//! The mock VMM's faults: the menu with each entry on or off, and the latest notices (what the
//! VMM took, or why not).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};

use crate::store::Store;

/// Draws the fault menu into `area`.
pub fn draw(f: &mut Frame, area: Rect, store: &Store) {
    let panel = &store.faults;
    let Some(target) = &panel.target else {
        f.render_widget(
            Paragraph::new(
                "no mock VMM: run with --mock serial|hvsock --guest PROTOCOL to toggle faults live",
            )
            .block(Block::new().borders(Borders::TOP).title(" faults ")),
            area,
        );
        return;
    };
    let [list, notes] = Layout::vertical([Constraint::Min(1), Constraint::Length(4)]).areas(area);
    let items: Vec<ListItem> = panel
        .menu
        .iter()
        .map(|t| {
            let item = ListItem::new(format!("[{}] {}", if t.on { "x" } else { " " }, t.spec));
            if t.on {
                item.style(Style::new().fg(Color::Yellow))
            } else {
                item
            }
        })
        .collect();
    let on = panel.menu.iter().filter(|t| t.on).count();
    let title =
        format!(" faults of the {target}: {on} on; enter/space toggles, new connections get them ");
    let mut state = ListState::default().with_selected(Some(panel.selected));
    f.render_stateful_widget(
        List::new(items)
            .block(Block::new().borders(Borders::TOP).title(title))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        list,
        &mut state,
    );
    let lines: Vec<Line> = store
        .notices()
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|n| Line::from(n.as_str()))
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::TOP).title(" notices ")),
        notes,
    );
}
