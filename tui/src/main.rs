//! `guestwire-tui`: the terminal UI (also run as `guestwire tui ...`).

use std::fs::File;
use std::process::ExitCode;

use clap::Parser;
use guestwire::capture::ProtocolChoice;
use guestwire::wire::protocol::Protocol;
use guestwire_tui::sources::Source;
use guestwire_tui::sources::capture::CaptureSource;
use guestwire_tui::sources::scan::{ScanSource, targets_of};
use guestwire_tui::store::{DEFAULT_RING, Speed, Store, View};

/// Terminal UI for guestwire: frame flow from a capture, live socket state.
#[derive(Debug, Parser)]
#[command(name = "guestwire-tui", version)]
struct Args {
    /// Play back this capture file (pcap or pcapng).
    #[arg(long, value_name = "FILE")]
    capture: Option<String>,
    /// Show the sockets under this directory (two levels deep), or this socket, refreshed every
    /// second (passive: nothing is connected to).
    #[arg(long, value_name = "DIR|SOCKET", conflicts_with = "capture")]
    scan: Option<String>,
    /// Playback speed: 1, 10 or max.
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    speed: Speed,
    /// Start paused.
    #[arg(long)]
    paused: bool,
    /// Frames kept in memory (the full history stays in the capture file).
    #[arg(long, default_value_t = DEFAULT_RING)]
    ring: usize,
    /// Protocol of the connections: auto or a protocol name.
    #[arg(long, default_value = "auto")]
    protocol: String,
}

fn parse_speed(s: &str) -> Result<Speed, String> {
    match s {
        "1" | "1x" => Ok(Speed::X1),
        "10" | "10x" => Ok(Speed::X10),
        "max" => Ok(Speed::Max),
        _ => Err(format!("speed must be 1, 10 or max, not {s:?}")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guestwire-tui: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let choice = if args.protocol == "auto" {
        ProtocolChoice::Auto
    } else {
        ProtocolChoice::Fixed(
            args.protocol
                .parse::<Protocol>()
                .map_err(|e| e.to_string())?,
        )
    };
    let (mut source, view): (Box<dyn Source>, View) = match (args.capture, args.scan) {
        (Some(path), _) => {
            let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            let reader = std::io::BufReader::new(file);
            (
                Box::new(CaptureSource::new(reader, choice, path)),
                View::Frames,
            )
        }
        (None, Some(arg)) => {
            let targets = targets_of(&arg);
            if targets.is_empty() {
                return Err(format!("{arg}: no sockets found"));
            }
            (Box::new(ScanSource::start(targets, arg)), View::Sockets)
        }
        (None, None) => {
            return Err("nothing to show: give --capture FILE or --scan DIR|SOCKET".into());
        }
    };
    let mut store = Store::new(args.ring, source.label());
    store.speed = args.speed;
    store.paused = args.paused;
    store.view = view;
    let mut terminal = ratatui::init();
    let result = guestwire_tui::app::run(&mut terminal, &mut store, source.as_mut());
    ratatui::restore();
    result.map_err(|e| e.to_string())
}
