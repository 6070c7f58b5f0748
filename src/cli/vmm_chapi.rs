//! `guestwire vmm chapi` (being built).

use clap::Args;

use super::{CliError, Outcome};

/// The arguments of `guestwire vmm chapi`.
#[derive(Debug, Args)]
pub struct ChApiArgs {}

/// Runs the mock VMM's chapi channel.
pub fn run(_args: ChApiArgs) -> Result<Outcome, CliError> {
    Err(CliError::Usage(
        "guestwire vmm chapi is not built yet".into(),
    ))
}
