//! `guestwire tui ARGS...`: runs `guestwire-tui ARGS...` the way git runs external subcommands —
//! the binary next to this one first, then the one in `PATH` — replacing this process, so the
//! terminal, signals and exit status are the UI's own.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, Outcome};

/// The external binary's name.
pub const TUI_BINARY: &str = "guestwire-tui";

/// The arguments of `guestwire tui`: everything is passed on unread.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct TuiArgs {
    /// The arguments for `guestwire-tui` (see `guestwire tui --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where `guestwire-tui` is: in `exe_dir` (this binary's directory), else in the first
/// directory of `path` (a `PATH` value) that has it.
pub fn find_tui(exe_dir: Option<&Path>, path: Option<&OsStr>) -> Option<PathBuf> {
    let beside = exe_dir.map(|d| d.join(TUI_BINARY));
    let in_path = path
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(TUI_BINARY));
    beside.into_iter().chain(in_path).find(|p| is_executable(p))
}

/// Runs `guestwire-tui` in place of this process; returns only when it cannot.
pub fn run(args: TuiArgs) -> Result<Outcome, CliError> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().ok();
    let exe_dir = exe.as_deref().and_then(Path::parent);
    let path = std::env::var_os("PATH");
    let Some(tui) = find_tui(exe_dir, path.as_deref()) else {
        let beside = exe_dir.map_or_else(|| "this binary".into(), |d| d.display().to_string());
        return Err(CliError::Usage(format!(
            "`guestwire tui` needs {TUI_BINARY}, which is not installed (looked in {beside} and \
             in PATH); install it with `cargo install --path tui` from the guestwire sources"
        )));
    };
    let err = std::process::Command::new(&tui).args(&args.args).exec();
    Err(CliError::Io {
        path: tui.display().to_string(),
        source: err,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

    #[test]
    fn tui_passes_every_argument_on() {
        let cli = Cli::try_parse_from([
            "guestwire",
            "tui",
            "--capture",
            "x.pcap",
            "--speed",
            "max",
            "--help",
            "-q",
        ])
        .expect("parse");
        let Command::Tui(a) = cli.command else {
            panic!("not tui: {:?}", cli.command)
        };
        let want: Vec<OsString> = ["--capture", "x.pcap", "--speed", "max", "--help", "-q"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(a.args, want);
    }

    #[test]
    fn find_tui_prefers_the_binary_beside_then_path() {
        use std::os::unix::fs::PermissionsExt;
        let beside = tempfile::tempdir().expect("dir");
        let in_path = tempfile::tempdir().expect("dir");
        let make = |d: &Path, mode: u32| {
            let p = d.join(TUI_BINARY);
            std::fs::write(&p, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            p
        };
        let path = std::env::join_paths([in_path.path()]).expect("join");
        assert_eq!(find_tui(Some(beside.path()), Some(&path)), None);
        let p2 = make(in_path.path(), 0o755);
        assert_eq!(find_tui(Some(beside.path()), Some(&path)), Some(p2.clone()));
        // Not executable beside: skipped.
        let p1 = make(beside.path(), 0o644);
        assert_eq!(find_tui(Some(beside.path()), Some(&path)), Some(p2));
        std::fs::set_permissions(&p1, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(find_tui(Some(beside.path()), Some(&path)), Some(p1));
    }
}
