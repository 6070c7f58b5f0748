//! `guestwire doctor [SOCKET...] [--scan DIR...] [--watch SECS] [--probe] [--json]`: why an agent
//! "is not responding". Passive by default: it reads the kernel's socket tables and `/proc`, and
//! never connects to a socket unless `--probe` is given. Exit 0 when nothing is wrong, 1 when a
//! problem was found, 2 when nothing could be inspected.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{CliError, Outcome};
use crate::diag::probe::ProbeOptions;
use crate::diag::scan::{DEFAULT_SCAN_DIRS, config_dirs, config_path, scan, target_of};
use crate::diag::{DoctorOptions, Severity, examine, report};
use crate::wire::protocol::Protocol;

/// The arguments of `guestwire doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Sockets to examine: a path, unix:/path, or hvsock:/path:PORT (a hybrid-vsock socket and the
    /// guest port a probe asks for). Without any, the scan directories are searched.
    #[arg(value_name = "SOCKET")]
    pub sockets: Vec<String>,
    /// Search this directory (two levels deep) for sockets (repeatable) [default: /var/run/quantix-kvm/vms,
    /// /run/libvirt/qemu/channel and `scan = [...]` of $GUESTWIRE_CONFIG or ~/.config/guestwire/doctor.toml].
    #[arg(long = "scan", value_name = "DIR")]
    pub scan: Vec<PathBuf>,
    /// Sample the queue depths for this many seconds (host/guest not reading, no data flow).
    #[arg(long, value_name = "SECS")]
    pub watch: Option<f64>,
    /// Connect, handshake and ping each agent that no other client holds (the only mode that
    /// connects).
    #[arg(long)]
    pub probe: bool,
    /// The probe's protocol: quantix, quantix-legacy, fcexec, qga, volant, or auto (the agent's
    /// first bytes, then the socket's name).
    #[arg(long, value_name = "P", default_value = "auto", requires = "probe")]
    pub protocol: String,
    /// A ping slower than this is reported as agent_slow.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub slow_ms: u64,
    /// Deadline of each probe phase (connect, handshake, ping), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 3000, requires = "probe")]
    pub timeout_ms: u64,
    /// When a plain socket closes on the probe without a byte, ask it for this guest port with a
    /// hybrid-vsock CONNECT (to tell a hybrid-vsock muxer apart).
    #[arg(long, value_name = "PORT", requires = "probe")]
    pub vsock_port: Option<u32>,
    /// The report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn options(args: &DoctorArgs) -> Result<DoctorOptions, CliError> {
    let usage = |e: String| CliError::Usage(e);
    let mut targets = args
        .sockets
        .iter()
        .map(|s| target_of(s).map_err(|e| usage(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let explicit = !targets.is_empty() || !args.scan.is_empty();
    let dirs = if explicit {
        args.scan.clone()
    } else {
        let mut d: Vec<PathBuf> = DEFAULT_SCAN_DIRS.iter().map(PathBuf::from).collect();
        d.extend(config_dirs(config_path().as_deref()).map_err(|e| usage(e.to_string()))?);
        d
    };
    targets.extend(scan(&dirs));
    if targets.is_empty() {
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(usage(format!(
            "no sockets found under {}: name one, or --scan DIR",
            shown.join(", ")
        )));
    }
    let watch = match args.watch {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => return Err(usage("--watch takes 0 < SECS <= 3600".into())),
    };
    let probe = if args.probe {
        let protocol = match args.protocol.as_str() {
            "auto" => None,
            p => Some(
                p.parse::<Protocol>()
                    .map_err(|e| usage(format!("--protocol: {e}")))?,
            ),
        };
        Some(ProbeOptions {
            protocol,
            deadline: Duration::from_millis(args.timeout_ms.max(1)),
            vsock_port: args.vsock_port,
            ..ProbeOptions::default()
        })
    } else {
        None
    };
    Ok(DoctorOptions {
        targets,
        watch,
        probe,
        slow_ms: args.slow_ms,
    })
}

/// Runs `guestwire doctor`.
pub fn run(args: DoctorArgs) -> Result<Outcome, CliError> {
    let opts = options(&args)?;
    let runtime = super::runtime()?;
    let report = runtime.block_on(examine(&opts)).map_err(|e| CliError::Io {
        path: "socket tables (sock_diag and /proc/net/unix)".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    if args.json {
        println!("{}", report::json(&report));
    } else {
        print!("{}", report::text(&report));
    }
    Ok(if report.worst() >= Severity::Warning {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}
