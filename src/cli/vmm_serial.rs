//! `guestwire vmm serial` (being built).

use clap::Args;

use super::{CliError, Outcome};

/// The arguments of `guestwire vmm serial`.
#[derive(Debug, Args)]
pub struct SerialArgs {}

/// Runs the mock VMM's serial channel.
pub fn run(_args: SerialArgs) -> Result<Outcome, CliError> {
    Err(CliError::Usage(
        "guestwire vmm serial is not built yet".into(),
    ))
}
