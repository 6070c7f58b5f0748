//! The mock guest's behaviour flags, shared by `guestwire guest` and the mock VMM's in-process
//! guests (`guestwire vmm serial|hvsock --guest P`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::guest::exec::ExecMode;
use crate::guest::{GuestConfig, LoopMode};
use crate::wire::protocol::Protocol;

/// How the mock guest behaves.
#[derive(Debug, Clone, Args)]
pub struct GuestBehaviourArgs {
    /// Root directory for the agent's file operations (none: file requests are refused).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// How exec requests run: real processes, or echo (stdout = the argv; deterministic).
    #[arg(long, value_enum, default_value = "real")]
    pub exec: ExecArg,
    /// Delay before every reply, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub reply_delay_ms: u64,
    /// Telemetry interval in seconds (quantix); 0 turns it off.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub telemetry: f64,
    /// The agent's main loop: robust, or naive (seed 003's single-threaded loop that stops
    /// reading while a write blocks).
    #[arg(long = "loop", value_name = "MODE", default_value = "robust")]
    pub loop_mode: LoopMode,
}

/// `--exec` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecArg {
    /// Run programs for real (argv, no shell).
    Real,
    /// Run nothing: stdout is the argv joined by spaces.
    Echo,
}

impl GuestBehaviourArgs {
    /// The mock guest's configuration, or a usage error for a bad value.
    pub fn to_config(&self) -> Result<GuestConfig, CliError> {
        if !(self.telemetry >= 0.0 && self.telemetry.is_finite()) {
            return Err(CliError::Usage(
                "--telemetry must be a number of seconds, 0 for none".into(),
            ));
        }
        Ok(GuestConfig {
            root: self.root.clone(),
            exec: match self.exec {
                ExecArg::Real => ExecMode::Real,
                ExecArg::Echo => ExecMode::Echo,
            },
            reply_delay: Duration::from_millis(self.reply_delay_ms),
            telemetry_interval: (self.telemetry > 0.0)
                .then(|| Duration::from_secs_f64(self.telemetry)),
            loop_mode: self.loop_mode,
            ..GuestConfig::default()
        })
    }
}

/// Parses a `--protocol` for which a mock guest exists, or says which do.
pub fn mock_guest_protocol(name: &str) -> Result<Protocol, CliError> {
    let protocol: Protocol = name
        .parse()
        .map_err(|e| CliError::Usage(format!("--protocol: {e}")))?;
    if matches!(
        protocol,
        Protocol::Quantix
            | Protocol::QuantixLegacy
            | Protocol::Fcexec
            | Protocol::Qga
            | Protocol::Volant
    ) {
        Ok(protocol)
    } else {
        Err(CliError::Usage(format!(
            "there is no mock guest for {protocol}: quantix, quantix-legacy, fcexec, qga or volant"
        )))
    }
}
