//! `guestwire-tui`: the terminal UI (also run as `guestwire tui ...`).

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use guestwire::capture::ProtocolChoice;
use guestwire::io::Endpoint;
use guestwire::tap::TapConfig;
use guestwire::wire::hybrid::Flavour;
use guestwire::wire::protocol::Protocol;
use guestwire_tui::faults::{self, FaultPanel};
use guestwire_tui::sources::Source;
use guestwire_tui::sources::capture::CaptureSource;
use guestwire_tui::sources::mock::{MockConfig, MockKind, MockSource};
use guestwire_tui::sources::scan::{ScanSource, targets_of};
use guestwire_tui::sources::tap::TapSource;
use guestwire_tui::store::{DEFAULT_RING, Speed, Store, View};

/// Terminal UI for guestwire: frame flow from a capture, live socket state.
#[derive(Debug, Parser)]
#[command(name = "guestwire-tui", version)]
struct Args {
    /// Play back this capture file (pcap or pcapng); with --tap or --mock, write the capture here.
    #[arg(long, value_name = "FILE")]
    capture: Option<String>,
    /// Run a live tap: accept host clients on --listen and relay them to --upstream.
    #[arg(long, requires_all = ["listen", "upstream"], conflicts_with = "scan")]
    tap: bool,
    /// Run a mock VMM (serial: a virtio-serial port; hvsock: Firecracker-style hybrid vsock, the
    /// agent on port 1024) with the mock agent of --guest, and a tap in front of it on --listen
    /// (default: a socket in a private temporary directory, shown in the status line). Its
    /// faults are toggled live in the Faults view; --fault turns one on from the start.
    #[arg(long, value_name = "serial|hvsock", conflicts_with_all = ["tap", "scan"])]
    mock: Option<MockKind>,
    /// The mock agent's protocol (with --mock).
    #[arg(
        long,
        value_name = "PROTOCOL",
        default_value = "quantix",
        requires = "mock"
    )]
    guest: String,
    /// A fault on from the start (with --mock; repeatable), `kind[:key=value,...]`; it joins
    /// the Faults view's menu.
    #[arg(long = "fault", value_name = "SPEC", requires = "mock")]
    faults: Vec<String>,
    /// The tap's listening endpoint (unix:/path, hvsock:/path:PORT).
    #[arg(long, value_name = "EP")]
    listen: Option<String>,
    /// The tap's upstream endpoint (unix:/path, hvsock:/path:PORT, tcp:HOST:PORT).
    #[arg(long, value_name = "EP")]
    upstream: Option<String>,
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
    let mut panel = FaultPanel::default();
    let (mut source, view): (Box<dyn Source>, View) = match (args.capture, args.scan) {
        (capture, _) if args.mock.is_some() => {
            let protocol: Protocol = args.guest.parse().map_err(|e| format!("--guest: {e}"))?;
            let menu = faults::menu(&args.faults);
            let config = MockConfig {
                kind: args.mock.unwrap_or(MockKind::Serial),
                protocol,
                listen: args
                    .listen
                    .map(|l| l.parse().map_err(|e| format!("--listen: {e}")))
                    .transpose()?,
                faults: faults::active(&menu).map_err(|e| format!("--fault {e}"))?,
                capture: capture.map(Into::into),
            };
            let mock = MockSource::start(config)?;
            panel = FaultPanel::new(mock.target(), menu);
            (Box::new(mock), View::Frames)
        }
        (capture, _) if args.tap => {
            let ep = |flag: &str, v: Option<String>| -> Result<Endpoint, String> {
                v.unwrap_or_default()
                    .parse()
                    .map_err(|e| format!("--{flag}: {e}"))
            };
            let config = TapConfig {
                listen: ep("listen", args.listen)?,
                upstream: ep("upstream", args.upstream)?,
                flavour: Flavour::Firecracker,
                faults: Vec::new(),
                protocol: match &choice {
                    ProtocolChoice::Auto => None,
                    ProtocolChoice::Fixed(p) => Some(p.clone()),
                },
                seed: 0,
                connect_deadline: Duration::from_secs(5),
                max_connections: None,
            };
            let tap = TapSource::start(config, capture.as_deref().map(Path::new))?;
            (Box::new(tap), View::Frames)
        }
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
            return Err(
                "nothing to show: give --capture FILE, --scan DIR|SOCKET, --tap or --mock".into(),
            );
        }
    };
    let mut store = Store::new(args.ring, source.label());
    store.speed = args.speed;
    store.paused = args.paused;
    store.view = view;
    store.faults = panel;
    let mut terminal = ratatui::init();
    let result = guestwire_tui::app::run(&mut terminal, &mut store, source.as_mut());
    ratatui::restore();
    result.map_err(|e| e.to_string())
}
