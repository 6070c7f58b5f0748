//! `guestwire vmm hvsock` (being built).

use clap::Args;

use super::{CliError, Outcome};

/// The arguments of `guestwire vmm hvsock`.
#[derive(Debug, Args)]
pub struct HvsockArgs {}

/// Runs the mock VMM's hvsock channel.
pub fn run(_args: HvsockArgs) -> Result<Outcome, CliError> {
    Err(CliError::Usage(
        "guestwire vmm hvsock is not built yet".into(),
    ))
}
