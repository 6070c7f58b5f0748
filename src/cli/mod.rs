//! The `guestwire` command line: one file per subcommand. Every subcommand has `--json`; exit
//! status 0 means ok, 1 a failed check (bad frames, failed call, problem found), 2 a usage or
//! environment error.

pub mod call;
pub mod decode;
pub mod decode_capture;
pub mod doctor;
pub mod fuzz;
pub mod guest;
pub mod guest_opts;
pub mod replay;
pub mod tap;
pub mod test;
pub mod tui;
pub mod vmm;
pub mod vmm_chapi;
pub mod vmm_hvsock;
pub mod vmm_serial;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// guestwire: test, break and diagnose the channels between a VM's host and its guest agent.
#[derive(Debug, Parser)]
#[command(name = "guestwire", version, about, max_term_width = 100)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode a raw byte stream or a pcap/pcapng capture into frames, one line per frame.
    Decode(decode::DecodeArgs),
    /// Run a mock guest agent on an endpoint.
    Guest(guest::GuestArgs),
    /// Send one request to a guest agent through the host client.
    Call(call::CallArgs),
    /// Relay a host daemon's connections to a VMM socket or agent, logging every frame.
    Tap(tap::TapArgs),
    /// Run a mock VMM: a virtio-serial port, a hybrid-vsock socket or the Cloud Hypervisor API.
    Vmm(vmm::VmmArgs),
    /// Replay a capture's connection: serve its guest side, or send its host side and diff.
    Replay(replay::ReplayArgs),
    /// Run scenarios (default: the built-in suite) against the mock peers or your own agent or
    /// host client, with a verdict per scenario and JUnit/JSON reports.
    Test(test::TestArgs),
    /// Fuzz a live agent: mutated and malformed frames, each followed by a liveness probe.
    Fuzz(fuzz::FuzzArgs),
    /// Diagnose an unresponsive agent: sockets, clients, queues (passive), or a probe.
    Doctor(doctor::DoctorArgs),
    /// The terminal UI: frame flow and socket state (runs `guestwire-tui`, installed apart).
    Tui(tui::TuiArgs),
}

/// How a subcommand ended, as the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out (exit 0).
    Ok,
    /// A check failed: bad frames, a failed call, a problem found (exit 1).
    Failed,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
        }
    }
}

/// A usage or environment error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An input or output file could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path (or `-` for standard input/output).
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
}

/// The Tokio runtime the networked subcommands run on (two workers: the machines this runs on
/// are small, and a harness must not starve the agent it tests).
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: "tokio runtime".into(),
            source,
        })
}

/// Parses the command line, runs the subcommand and maps the result to an exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            eprintln!("guestwire: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Guest(args) => guest::run(args),
        Command::Call(args) => call::run(args),
        Command::Tap(args) => tap::run(args),
        Command::Vmm(args) => vmm::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Test(args) => test::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Tui(args) => tui::run(args),
    }
}
