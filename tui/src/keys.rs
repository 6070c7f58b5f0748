//! Pure key → action mapping, with the keys users know from termshark, k9s and tokio-console.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave (`q`, ctrl-c).
    Quit,
    /// The next view (tab).
    NextView,
    /// The previous view (shift-tab).
    PrevView,
    /// Select the next row (`j`, down).
    Down,
    /// Select the previous row (`k`, up).
    Up,
    /// Select the first row (`g`, home).
    Top,
    /// Select the last row and follow (`G`, end).
    Bottom,
    /// Open the selected frame's detail (enter).
    Open,
    /// Back out: close help, leave the detail, clear the filter (esc).
    Back,
    /// Start typing a filter (`/`).
    StartFilter,
    /// A character of the filter being typed.
    FilterChar(char),
    /// Delete the filter's last character.
    FilterBackspace,
    /// Apply the typed filter (enter).
    FilterApply,
    /// Stop typing, keep the old filter (esc).
    FilterCancel,
    /// Pause or resume (space).
    TogglePause,
    /// Follow the newest frame or not (`f`).
    ToggleFollow,
    /// Show or hide the help (`?`).
    ToggleHelp,
    /// Playback speed 1× → 10× → max (`s`).
    CycleSpeed,
}

/// The action of `key`; `filtering` is true while a filter is being typed.
pub fn action(key: KeyEvent, filtering: bool) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if filtering {
        return match key.code {
            KeyCode::Enter => Some(Action::FilterApply),
            KeyCode::Esc => Some(Action::FilterCancel),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) => Some(Action::FilterChar(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Tab => Action::NextView,
        KeyCode::BackTab => Action::PrevView,
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::Char('g') | KeyCode::Home => Action::Top,
        KeyCode::Char('G') | KeyCode::End => Action::Bottom,
        KeyCode::Enter => Action::Open,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('f') => Action::ToggleFollow,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('s') => Action::CycleSpeed,
        _ => return None,
    })
}

/// The help text: one line per key.
pub const HELP: &[(&str, &str)] = &[
    ("tab / shift-tab", "next / previous view"),
    ("j k / down up", "select next / previous"),
    ("g / G", "first / last (G follows)"),
    ("enter", "frame detail; Faults: toggle"),
    ("esc", "back, clear filter"),
    ("/", "filter by type or text"),
    ("space", "pause / resume; Faults: toggle"),
    ("f", "follow newest"),
    ("s", "speed 1x / 10x / max"),
    ("?", "this help"),
    ("q", "quit"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions_and_filter_mode_takes_text() {
        assert_eq!(action(k(KeyCode::Char('q')), false), Some(Action::Quit));
        assert_eq!(
            action(k(KeyCode::Char('q')), true),
            Some(Action::FilterChar('q'))
        );
        assert_eq!(action(k(KeyCode::BackTab), false), Some(Action::PrevView));
        assert_eq!(action(k(KeyCode::Char('G')), false), Some(Action::Bottom));
        assert_eq!(action(k(KeyCode::Enter), true), Some(Action::FilterApply));
        assert_eq!(action(k(KeyCode::Char('x')), false), None);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(ctrl_c, true), Some(Action::Quit));
    }
}
