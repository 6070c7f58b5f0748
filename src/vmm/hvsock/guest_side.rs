//! The guest side: what answers each guest port ([`Service`]: the in-process mock agent, the
//! user's agent listening on a socket, or the user's command run per connection), the task that
//! moves one connection's bytes between its guest stream and the muxer, and the user's agents'
//! processes (started, watched and killed with the VMM).

use std::future::poll_fn;
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

use super::config::{AGENT_START_DEADLINE, HvsockError};
use super::events::HvsockEvent;
use super::queues::Popped;
use super::state::{Shared, stopped};
use crate::channel::vsock::ConnId;
use crate::guest::serve_connection;
use crate::io::BoxStream;
use crate::io::fault_pump::PUMP_CHUNK;
use crate::wire::protocol::Protocol;

/// Buffer of the in-memory stream between the muxer and an in-process mock agent.
pub const GUEST_DUPLEX: usize = 64 * 1024;

/// How long a connection to a user's agent socket may take.
const AGENT_CONNECT_DEADLINE: Duration = Duration::from_secs(2);

/// How long a per-connection command has to exit after its input closed, before it is killed.
const CHILD_EXIT_GRACE: Duration = Duration::from_secs(2);

/// How a guest port is served, at run time.
#[derive(Debug, Clone)]
pub enum Service {
    /// The in-process mock agent of a protocol.
    Mock(Protocol),
    /// The user's agent, listening on this socket.
    AgentSocket(PathBuf),
    /// A command run per connection with its standard input and output as the stream.
    Inetd(String),
}

/// Tells the core when a guest task ends, however it ends.
struct GuestGuard {
    shared: Arc<Shared>,
    conn: ConnId,
}

impl Drop for GuestGuard {
    fn drop(&mut self) {
        self.shared.guest_gone(self.conn);
    }
}

/// Opens the guest side of an established host-initiated connection to `port` and runs it.
pub async fn open_guest(shared: Arc<Shared>, conn: ConnId, port: Option<u32>) {
    let _guard = GuestGuard {
        shared: shared.clone(),
        conn,
    };
    let service = port.and_then(|p| shared.services.get(&p)).cloned();
    let opened: Result<(BoxStream, Option<Child>), String> = match service {
        None => Err(format!("nothing serves guest port {port:?}")),
        Some(Service::Mock(protocol)) => {
            let (mine, agents) = tokio::io::duplex(GUEST_DUPLEX);
            let cfg = shared.config.guest.clone();
            shared.spawn(async move {
                let _ = serve_connection(&protocol, Box::new(agents), cfg).await;
            });
            Ok((Box::new(mine), None))
        }
        Some(Service::AgentSocket(path)) => {
            match tokio::time::timeout(AGENT_CONNECT_DEADLINE, UnixStream::connect(&path)).await {
                Ok(Ok(s)) => Ok((Box::new(s), None)),
                Ok(Err(e)) => Err(format!(
                    "connecting to the agent at {}: {e}",
                    path.display()
                )),
                Err(_) => Err(format!(
                    "the agent at {} did not accept within {AGENT_CONNECT_DEADLINE:?}",
                    path.display()
                )),
            }
        }
        Some(Service::Inetd(cmd)) => {
            let port = port.unwrap_or_default();
            spawn_command(&cmd, port, shared.config.cid, true)
                .map_err(|e| format!("starting {cmd:?}: {e}"))
                .and_then(
                    |mut child| match (child.stdout.take(), child.stdin.take()) {
                        (Some(out), Some(inp)) => {
                            let s: BoxStream = Box::new(tokio::io::join(out, inp));
                            Ok((s, Some(child)))
                        }
                        _ => Err(format!("{cmd:?} has no standard input or output")),
                    },
                )
        }
    };
    match opened {
        Ok((stream, child)) => run_guest(&shared, conn, stream, child).await,
        Err(error) => shared.emit(HvsockEvent::GuestError {
            conn: conn.0,
            error,
        }),
    }
}

/// Runs the guest's end of a guest-initiated connection.
pub async fn run_guest_end(shared: Arc<Shared>, conn: ConnId, stream: BoxStream) {
    let _guard = GuestGuard {
        shared: shared.clone(),
        conn,
    };
    run_guest(&shared, conn, stream, None).await;
}

/// Moves bytes between the guest stream and the muxer until the guest closes, the muxer resets
/// the guest side, or the VMM stops; then ends a per-connection command.
async fn run_guest(shared: &Arc<Shared>, conn: ConnId, stream: BoxStream, child: Option<Child>) {
    let mut stop = shared.stop.subscribe();
    let reset = {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let reader = async {
            let mut buf = vec![0u8; PUMP_CHUNK];
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let taken = poll_fn(|cx| {
                        let mut core = shared.lock();
                        shared.poll_guest_input(&mut core, conn, rest, cx)
                    })
                    .await;
                    match taken {
                        Ok(k) => rest = &rest[k..],
                        Err(_) => return,
                    }
                }
            }
        };
        let writer = async {
            loop {
                match poll_fn(|cx| shared.poll_guest_output(conn, PUMP_CHUNK, cx)).await {
                    Popped::Data(b) => {
                        if wr.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                    Popped::Eof => {
                        // The host closed: the guest sees EOF and may still finish.
                        let _ = wr.shutdown().await;
                        std::future::pending::<()>().await;
                    }
                    Popped::Reset => return,
                }
            }
        };
        tokio::select! {
            _ = reader => false,
            _ = writer => true,
            _ = poll_fn(|cx| shared.poll_guest_reset(conn, cx)) => true,
            _ = stopped(&mut stop) => true,
        }
    };
    if let Some(child) = child {
        end_child(child, !reset).await;
    }
}

/// Ends a per-connection command: after its input closed it has [`CHILD_EXIT_GRACE`] to exit
/// (`graceful`), else (or at once) its process group is killed; it is always reaped.
///
/// A group is only signalled while its leader is not reaped: until then its id cannot name
/// another process group, whereas after it Linux may hand the id to a new process.
async fn end_child(mut child: Child, graceful: bool) {
    let group = group_of(&child);
    if graceful
        && tokio::time::timeout(CHILD_EXIT_GRACE, child.wait())
            .await
            .is_ok()
    {
        return;
    }
    kill_group(group);
    let _ = child.start_kill();
    let _ = tokio::time::timeout(CHILD_EXIT_GRACE, child.wait()).await;
}

/// The child's process group id (its pid, thanks to `process_group(0)`).
fn group_of(child: &Child) -> Option<rustix::process::Pid> {
    child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
}

fn kill_group(group: Option<rustix::process::Pid>) {
    if let Some(pgid) = group {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

/// Starts `cmd` under `/bin/sh -c` in its own process group, with `{port}` replaced, the port
/// and CID in `GUESTWIRE_VSOCK_PORT` / `GUESTWIRE_CID`, and its output on our standard error
/// (`piped`: standard input and output are the vsock stream instead).
fn spawn_command(cmd: &str, port: u32, cid: u32, piped: bool) -> std::io::Result<Child> {
    let cmd = cmd.replace("{port}", &port.to_string());
    let stderr = || -> std::io::Result<Stdio> {
        Ok(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
    };
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(&cmd)
        .env("GUESTWIRE_VSOCK_PORT", port.to_string())
        .env("GUESTWIRE_CID", cid.to_string())
        .stderr(stderr()?)
        .process_group(0)
        .kill_on_drop(true);
    if piped {
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
    } else {
        c.stdin(Stdio::null()).stdout(stderr()?);
    }
    c.spawn()
}

/// A private directory for the agents' sockets, removed on drop.
#[derive(Debug)]
pub struct AgentDir(PathBuf);

impl AgentDir {
    /// Creates `$TMPDIR/guestwire-hvsock-<pid>-<n>` (mode 0700).
    pub fn create() -> Result<Self, HvsockError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        let mut last = None;
        for _ in 0..16 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("guestwire-hvsock-{}-{n}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) => last = Some(e),
            }
        }
        Err(HvsockError::Io {
            what: format!(
                "creating a directory for agent sockets in {}",
                base.display()
            ),
            source: last.unwrap_or_else(|| std::io::Error::other("no attempt")),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for AgentDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A user's agent started with `{socket}`: its process, killed (group and all) on drop unless
/// handed to [`watch_agent`].
#[derive(Debug)]
pub struct Agent {
    /// The guest port it serves.
    pub port: u32,
    /// The socket it listens on.
    pub socket: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// The agent's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            kill_group(group_of(child));
            let _ = child.start_kill();
        }
    }
}

/// Starts the agent for `port`: `{socket}` becomes a socket path in `dir`, and the agent has
/// [`AGENT_START_DEADLINE`] to create it.
pub async fn start_agent(cmd: &str, port: u32, cid: u32, dir: &Path) -> Result<Agent, HvsockError> {
    let socket = dir.join(format!("agent-{port}.sock"));
    let failed = |reason: String| HvsockError::Agent { port, reason };
    let shown = socket
        .to_str()
        .ok_or_else(|| failed(format!("{} is not UTF-8", socket.display())))?;
    let child = spawn_command(&cmd.replace("{socket}", shown), port, cid, false)
        .map_err(|e| failed(format!("starting {cmd:?}: {e}")))?;
    let mut agent = Agent {
        port,
        socket: socket.clone(),
        child: Some(child),
    };
    let deadline = tokio::time::Instant::now() + AGENT_START_DEADLINE;
    loop {
        if std::fs::symlink_metadata(&socket).is_ok() {
            return Ok(agent);
        }
        if let Some(Ok(Some(status))) = agent.child.as_mut().map(Child::try_wait) {
            return Err(failed(format!(
                "it exited ({status}) before listening on {shown}"
            )));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(failed(format!(
                "no socket at {shown} within {AGENT_START_DEADLINE:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Watches a running agent: when it exits its port stops listening; when the VMM stops it is
/// killed and reaped.
pub async fn watch_agent(shared: Arc<Shared>, mut agent: Agent) {
    let Some(mut child) = agent.child.take() else {
        return;
    };
    let group = group_of(&child);
    let mut stop = shared.stop.subscribe();
    tokio::select! {
        status = child.wait() => {
            shared.lock().mux.guest_unlisten(agent.port);
            shared.emit(HvsockEvent::AgentExited {
                port: agent.port,
                status: status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            });
        }
        _ = stopped(&mut stop) => {
            kill_group(group);
            let _ = child.start_kill();
            let _ = tokio::time::timeout(CHILD_EXIT_GRACE, child.wait()).await;
        }
    }
}
