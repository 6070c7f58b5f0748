//! The user's agent as the guest of the mock virtio-serial VMM (`--guest-cmd CMD`): a
//! pseudo-terminal stands in for `/dev/virtio-ports/NAME` (its slave end linked at
//! `DIR/NAME`, which replaces `{device}` in CMD), and its master end is the guest side of the
//! port model.
//!
//! - The command runs as `/bin/sh -c CMD` in a process group of its own, with `{device}`
//!   replaced by the shell-quoted link path (also in `$GUESTWIRE_DEVICE`), stdin from
//!   `/dev/null` and stdout sent to this process's stderr (so `--json` output stays clean).
//! - The port counts as open while the agent runs (a pty cannot tell when the agent opens or
//!   closes its end). The agent's output is read from the master only when the port can take
//!   it (a host client is connected and the queue has room), so the agent's writes block as on
//!   the real port once the terminal's own small buffer is full.
//! - A pty cannot report end of file to a reader without hanging up for good, so while no host
//!   client is connected the agent's reads simply wait, where a real port would return 0.
//! - Stopping (and restarting) sends `SIGTERM` to the agent's process group, `SIGKILL` after
//!   [`AGENT_STOP_GRACE`], and reaps it. If the agent exits by itself it stays down until a
//!   restart is requested.

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::event::SerialVmmEvent;
use super::port::SharedPort;
use crate::channel::serial::PORT_WRITE_MAX;
use crate::io::{FdStream, Pty};

/// How long the agent has to exit after `SIGTERM` before its process group gets `SIGKILL`.
pub const AGENT_STOP_GRACE: Duration = Duration::from_secs(1);

/// What the agent side runs.
pub(super) struct AgentGuest {
    pub port: SharedPort,
    pub command: String,
    pub pty: Pty,
    pub restart: Arc<Notify>,
    pub cancel: CancellationToken,
}

/// `s` quoted for `/bin/sh`.
pub(super) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// CMD with every `{device}` replaced by the quoted device path.
pub(super) fn expand(command: &str, device: &Path) -> String {
    command.replace("{device}", &shell_quote(&device.display().to_string()))
}

fn spawn(command: &str, device: &Path) -> io::Result<Child> {
    let stdout = std::io::stderr().as_fd().try_clone_to_owned()?;
    Command::new("/bin/sh")
        .arg("-c")
        .arg(expand(command, device))
        .env("GUESTWIRE_DEVICE", device)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
}

fn describe(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("cannot wait for it: {e}"),
    }
}

/// Stops the agent: `SIGTERM` to its group, `SIGKILL` after the grace, then reaps it.
async fn stop(child: &mut Child, pid: u32) -> String {
    let group = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pgid) = group {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::TERM);
    }
    match tokio::time::timeout(AGENT_STOP_GRACE, child.wait()).await {
        Ok(status) => describe(status),
        Err(_) => {
            if let Some(pgid) = group {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            let _ = child.start_kill();
            describe(child.wait().await)
        }
    }
}

/// Runs the agent until cancelled, restarting it on request.
pub(super) async fn run(mut a: AgentGuest) {
    let device = a.pty.link().to_path_buf();
    let Some(master) = a.pty.take_master() else {
        return;
    };
    let (rd, wr) = tokio::io::split(master);
    let pumps = tokio::spawn(pump(a.port.clone(), rd, wr));
    run_agent(&a, &device).await;
    pumps.abort();
    let _ = pumps.await;
}

async fn run_agent(a: &AgentGuest, device: &Path) {
    let mut start_now = true;
    loop {
        if !start_now {
            tokio::select! {
                () = a.restart.notified() => a.port.emit(SerialVmmEvent::GuestRestarting),
                () = a.cancel.cancelled() => return,
            }
        }
        start_now = false;
        let open = match a.port.open_guest() {
            Ok(open) => open,
            Err(e) => {
                a.port.emit(SerialVmmEvent::Error {
                    message: format!("the agent's port cannot be opened: {e}"),
                });
                return;
            }
        };
        let mut child = match spawn(&a.command, device) {
            Ok(c) => c,
            Err(e) => {
                a.port.emit(SerialVmmEvent::Error {
                    message: format!("cannot start the agent command: {e}"),
                });
                drop(open);
                continue;
            }
        };
        let pid = child.id().unwrap_or(0);
        a.port.emit(SerialVmmEvent::AgentSpawned {
            pid,
            device: PathBuf::from(device),
        });
        let status = tokio::select! {
            status = child.wait() => describe(status),
            () = a.restart.notified() => {
                a.port.emit(SerialVmmEvent::GuestRestarting);
                start_now = true;
                stop(&mut child, pid).await
            }
            () = a.cancel.cancelled() => {
                let status = stop(&mut child, pid).await;
                a.port.emit(SerialVmmEvent::AgentExited { pid, status });
                return;
            }
        };
        a.port.emit(SerialVmmEvent::AgentExited { pid, status });
        drop(open);
    }
}

/// Moves bytes between the pty master and the port, both ways, until one way fails.
async fn pump(port: SharedPort, rd: ReadHalf<FdStream>, wr: WriteHalf<FdStream>) {
    let result = tokio::select! {
        r = agent_to_port(&port, rd) => r,
        r = port_to_agent(&port, wr) => r,
    };
    if let Err(e) = result {
        port.emit(SerialVmmEvent::Error {
            message: format!("the agent's pty failed: {e}"),
        });
    }
}

async fn agent_to_port(port: &SharedPort, mut rd: ReadHalf<FdStream>) -> io::Result<()> {
    let mut buf = vec![0u8; PORT_WRITE_MAX];
    loop {
        port.wait_guest_writable().await;
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            // The terminal hung up: cannot happen while the pty holds its slave end.
            return Ok(());
        }
        port.write_all_for_pty(&buf[..n]).await?;
    }
}

async fn port_to_agent(port: &SharedPort, mut wr: WriteHalf<FdStream>) -> io::Result<()> {
    let mut buf = vec![0u8; PORT_WRITE_MAX];
    loop {
        let n = port.read_for_pty(&mut buf).await?;
        wr.write_all(&buf[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_is_quoted_for_the_shell() {
        let cmd = expand("agent --dev {device} -v", Path::new("/tmp/a b/it's"));
        assert_eq!(cmd, r"agent --dev '/tmp/a b/it'\''s' -v");
        assert_eq!(expand("agent", Path::new("/x")), "agent");
    }
}
