//! The views in tab order, and the playback speeds.

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The live frame list.
    Frames,
    /// The selected frame's fields.
    Detail,
    /// Rates, latency, errors.
    Stats,
    /// Socket state from a scan.
    Sockets,
    /// The mock VMM's faults, toggled live.
    Faults,
}

impl View {
    /// All views in tab order.
    pub const ALL: [View; 5] = [
        View::Frames,
        View::Detail,
        View::Stats,
        View::Sockets,
        View::Faults,
    ];

    /// The tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::Frames => "Frames",
            View::Detail => "Detail",
            View::Stats => "Stats",
            View::Sockets => "Sockets",
            View::Faults => "Faults",
        }
    }

    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// Playback speed of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    /// Real time.
    X1,
    /// Ten times real time.
    X10,
    /// As fast as the file reads.
    Max,
}

impl Speed {
    /// The label shown in the status line.
    pub fn label(self) -> &'static str {
        match self {
            Speed::X1 => "1x",
            Speed::X10 => "10x",
            Speed::Max => "max",
        }
    }

    /// The next speed in the 1× → 10× → max cycle.
    pub fn next(self) -> Self {
        match self {
            Speed::X1 => Speed::X10,
            Speed::X10 => Speed::Max,
            Speed::Max => Speed::X1,
        }
    }
}
