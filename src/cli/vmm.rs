//! `guestwire vmm serial|hvsock|ch-api`: the mock VMM, one file per channel kind.

use clap::{Args, Subcommand};

use super::{CliError, Outcome};

/// `guestwire vmm`.
#[derive(Debug, Args)]
pub struct VmmArgs {
    /// The channel to stand up.
    #[command(subcommand)]
    pub channel: VmmCommand,
}

/// The kinds of mock VMM.
#[derive(Debug, Subcommand)]
pub enum VmmCommand {
    /// A QEMU virtio-serial port exposed as a host Unix socket.
    Serial(super::vmm_serial::SerialArgs),
    /// A Firecracker / Cloud Hypervisor / vhost-device-vsock hybrid-vsock Unix socket.
    Hvsock(super::vmm_hvsock::HvsockArgs),
    /// The Cloud Hypervisor REST API on a Unix socket.
    #[command(name = "ch-api")]
    ChApi(super::vmm_chapi::ChApiArgs),
}

/// Runs `guestwire vmm`.
pub fn run(args: VmmArgs) -> Result<Outcome, CliError> {
    match args.channel {
        VmmCommand::Serial(a) => super::vmm_serial::run(a),
        VmmCommand::Hvsock(a) => super::vmm_hvsock::run(a),
        VmmCommand::ChApi(a) => super::vmm_chapi::run(a),
    }
}
