//! The fault menu of the Faults view: every stream and frame fault of guestwire's fault
//! vocabulary ([`guestwire::fault`]) that can change while a mock VMM runs, each with
//! parameters that show an effect, plus the user's own `--fault` specs. Pure.
//!
//! Setup faults (`guest_before_host`, `stale_client`, `stale_socket`, `ch_shutdown_wedge`) are
//! not in it: they shape how the VMM starts and cannot be toggled on a running one.

use guestwire::fault::{FaultSpec, MALFORMED_NAMES};

/// One entry: a fault spec (as `--fault` writes it) and whether it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultToggle {
    /// The spec, e.g. `drop_frame` or `latency:latency=100ms`.
    pub spec: String,
    /// Whether new connections get it.
    pub on: bool,
}

/// The stream faults of the menu, before the malformed variants.
const STREAM: &[&str] = &[
    "latency:latency=100ms",
    "bandwidth:rate=1024",
    "slicer:average_size=4,delay=1ms",
    "slow_close:delay=1s",
    "timeout",
    "reset_peer:timeout=1s",
    "limit_data:bytes=1024",
    "reset_mid_stream",
];

/// The frame and VM faults of the menu, after the malformed variants.
const FRAME: &[&str] = &[
    "drop_frame",
    "duplicate_frame",
    "reorder",
    "agent_hang",
    "agent_crash",
    "vm_pause:duration=2s",
];

/// Every spec of the default menu, in order.
pub fn default_specs() -> Vec<String> {
    STREAM
        .iter()
        .map(|s| s.to_string())
        .chain(MALFORMED_NAMES.iter().map(|v| format!("malformed:{v}")))
        .chain(FRAME.iter().map(|s| s.to_string()))
        .collect()
}

/// The menu: the defaults (off), then each of `extra` (on) unless it is one of them (then that
/// entry is on).
pub fn menu(extra: &[String]) -> Vec<FaultToggle> {
    let mut out: Vec<FaultToggle> = default_specs()
        .into_iter()
        .map(|spec| FaultToggle { spec, on: false })
        .collect();
    for e in extra {
        match out.iter_mut().find(|t| t.spec == *e) {
            Some(t) => t.on = true,
            None => out.push(FaultToggle {
                spec: e.clone(),
                on: true,
            }),
        }
    }
    out
}

/// The specs that are on, parsed.
pub fn active(menu: &[FaultToggle]) -> Result<Vec<FaultSpec>, String> {
    menu.iter()
        .filter(|t| t.on)
        .map(|t| {
            t.spec
                .parse::<FaultSpec>()
                .map_err(|e| format!("{}: {e}", t.spec))
        })
        .collect()
}

/// The Faults view's state: the menu, the selection, and whether the list changed since the
/// source last took it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPanel {
    /// What the faults apply to (e.g. `mock serial VMM (quantix)`); `None`: no mock VMM runs.
    pub target: Option<String>,
    /// The entries.
    pub menu: Vec<FaultToggle>,
    /// The selected entry.
    pub selected: usize,
    changed: bool,
}

impl FaultPanel {
    /// A panel for `target` with `menu`.
    pub fn new(target: impl Into<String>, menu: Vec<FaultToggle>) -> Self {
        Self {
            target: Some(target.into()),
            menu,
            selected: 0,
            changed: false,
        }
    }

    /// Moves the selection by `delta`, within the menu.
    pub fn move_by(&mut self, delta: isize) {
        let n = self.menu.len();
        if n > 0 {
            self.selected = self.selected.saturating_add_signed(delta).min(n - 1);
        }
    }

    /// Selects the first (`false`) or last (`true`) entry.
    pub fn jump(&mut self, last: bool) {
        self.selected = if last {
            self.menu.len().saturating_sub(1)
        } else {
            0
        };
    }

    /// Turns the selected entry on or off.
    pub fn toggle(&mut self) {
        if let Some(t) = self.menu.get_mut(self.selected) {
            t.on = !t.on;
            self.changed = true;
        }
    }

    /// The specs that are on, once after each change (for the source to apply).
    pub fn take_change(&mut self) -> Option<Vec<String>> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        Some(
            self.menu
                .iter()
                .filter(|t| t.on)
                .map(|t| t.spec.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_and_none_is_a_setup_fault() {
        let m = menu(&[]);
        assert_eq!(m.len(), STREAM.len() + MALFORMED_NAMES.len() + FRAME.len());
        for t in &m {
            let f: FaultSpec = t.spec.parse().expect("spec");
            assert!(!f.kind.is_setup_fault(), "{}", t.spec);
        }
        assert!(active(&m).expect("parses").is_empty());
    }

    #[test]
    fn extra_specs_are_on_and_join_or_extend_the_menu() {
        let m = menu(&["drop_frame".into(), "drop_frame:on_type=pong".into()]);
        let on: Vec<&str> = m.iter().filter(|t| t.on).map(|t| t.spec.as_str()).collect();
        assert_eq!(on, ["drop_frame", "drop_frame:on_type=pong"]);
        assert_eq!(active(&m).expect("parses").len(), 2);
    }
}
