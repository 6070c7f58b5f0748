//! Sockets from a scan: path, state, peers, queues with a sparkline of recent depth, the doctor's
//! finding as a badge.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table, TableState};

use crate::store::Store;

/// Draws the sockets into `area`.
pub fn draw(f: &mut Frame, area: Rect, store: &Store) {
    let sockets = store.sockets();
    if sockets.is_empty() {
        f.render_widget(
            Paragraph::new("no socket sample (run with --scan DIR|SOCKET)")
                .block(Block::new().borders(Borders::TOP).title(" sockets ")),
            area,
        );
        return;
    }
    let [list, spark] = Layout::vertical([Constraint::Min(1), Constraint::Length(4)]).areas(area);
    let rows: Vec<Row> = sockets
        .iter()
        .map(|s| {
            let badge = s
                .finding
                .clone()
                .map(|f| format!("[{f}]"))
                .unwrap_or_default();
            let row = Row::new(vec![
                s.path.clone(),
                s.state.clone(),
                s.peers.join(","),
                s.recv_q.to_string(),
                s.send_q.to_string(),
                badge,
            ]);
            if s.finding.is_some() {
                row.style(Style::new().fg(Color::Yellow))
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Min(20),
        Constraint::Length(10),
        Constraint::Length(20),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(24),
    ];
    let header = Row::new(["path", "state", "peers", "recv-q", "send-q", "finding"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::new().borders(Borders::TOP).title(" sockets "))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(Some(store.socket_selected));
    f.render_stateful_widget(table, list, &mut state);
    let history = sockets
        .get(store.socket_selected)
        .map(|s| s.history.clone())
        .unwrap_or_default();
    f.render_widget(
        Sparkline::default()
            .block(Block::new().borders(Borders::TOP).title(" recv-q depth "))
            .data(&history),
        spark,
    );
}
